/*
 * Text for people's terminals from what other people (or machines) wrote:
 * ticket titles, names, relay messages and diagnostics come from the
 * network, so an escape sequence in them must not reach a terminal as one.
 * Shared by the console and the agent.
 */
#ifndef TETHER_TEXT_H
#define TETHER_TEXT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Writes s (NULL prints nothing) with every control character as '?'. */
void tether_text_print_clean(FILE *fp, const char *s);
/* Columns s takes on a terminal: UTF-8 continuation bytes take none. */
size_t tether_text_width(const char *s);
/* "512 B", "9.5 KiB", "123 MiB", ... into out. */
void tether_text_size(uint64_t n, char *out, size_t len);

#endif /* TETHER_TEXT_H */
