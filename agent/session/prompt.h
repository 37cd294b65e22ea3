/*
 * Yes/no questions read from the controlling terminal without blocking
 * the event loop (term.c asks them, one at a time).
 */
#ifndef TETHER_AGENT_SESSION_PROMPT_H
#define TETHER_AGENT_SESSION_PROMPT_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

struct agent_prompt;

/* The longest answer kept as typed (a list of capabilities fits). */
#define AGENT_PROMPT_LINE_MAX 64

/*
 * Writes question to the controlling terminal and reads one line without
 * blocking the loop; cb gets whether the answer was y/yes, and the line
 * with the blanks around it taken off (borrowed for the call; "" at the
 * end of input or for an answer too long to keep).  The prompt frees
 * itself after cb.  TETHER_ERR_NOT_FOUND if there is no terminal.
 */
int agent_prompt_start(uv_loop_t *loop, const char *question,
		       void (*cb)(void *ctx, bool yes, const char *line),
		       void *ctx, struct agent_prompt **out);
/*
 * Writes all n bytes of data to fd (the terminal, or the file the live
 * view goes to), through EINTR; it stops at an error or a full
 * non-blocking terminal, which a question or a mirror survives.
 */
void agent_prompt_write_all(int fd, const void *data, size_t n);
/* Drops the prompt without calling its cb.  NULL is fine. */
void agent_prompt_cancel(struct agent_prompt *p);

#endif /* TETHER_AGENT_SESSION_PROMPT_H */
