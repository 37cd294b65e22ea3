/*
 * Session codes: NAMEPLATE-word-word-word.  The nameplate is a short decimal
 * number the relay allocates and sees; the words come from a fixed list of
 * 256 (8 bits each) and never reach the relay.  The SPAKE2 password is the
 * words part of the normalised code ("orbit-tango-lumen").
 */
#ifndef TETHER_CODE_H
#define TETHER_CODE_H

#include <stdbool.h>
#include <stddef.h>

#define TETHER_CODE_WORDS 3
#define TETHER_CODE_WORDLIST_LEN 256
#define TETHER_CODE_NAMEPLATE_MAX 8 /* digits */
#define TETHER_CODE_MAX 96

/* The i-th word of the list (i < TETHER_CODE_WORDLIST_LEN). */
const char *tether_code_word(unsigned i);
/* Builds "NAMEPLATE-w1-w2-w3" with random words into out. */
int tether_code_generate(const char *nameplate, char *out, size_t outlen);
/*
 * Normalises a typed code (case, surrounding blanks, spaces for dashes) into
 * out and copies its nameplate into nameplate.  TETHER_ERR_FORMAT with a
 * message in *why (static string) for anything that is not a valid code.
 */
int tether_code_parse(const char *code, char *out, size_t outlen,
		      char *nameplate, size_t nplen, const char **why);
/* 1..8 digits, no leading zero. */
bool tether_code_nameplate_valid(const char *nameplate);

#endif /* TETHER_CODE_H */
