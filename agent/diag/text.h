/*
 * Text from the machine or the network made safe to show and to send:
 * valid UTF-8 without control characters, and the words of a usage error.
 * The lowest room of the agent, since everything above needs it: the customer's
 * terminal lines (names, titles, command lines, paths from the technician), the
 * strings of the diagnostics bundle and the status lines of health checks.
 */
#ifndef TETHER_AGENT_DIAG_TEXT_H
#define TETHER_AGENT_DIAG_TEXT_H

#include <stddef.h>

/* The name the agent's lines and messages start with. */
#define AGENT_PROG "tether-agent"

/* agent_text_clean_n() flags: a tab becomes a space, not '?'. */
#define AGENT_TEXT_TABS 0x1u

/*
 * A command line that is wrong: "WHO: MSG: ARG" (the parts given) and
 * the usage on stderr; returns the exit status for it, 2.
 */
int agent_text_usage(const char *who, const char *usage, const char *msg,
		     const char *arg);

/*
 * Copies in (NUL-terminated) into out (outlen bytes, always terminated
 * when outlen > 0): every control character (C0, DEL, and C1 encoded in
 * UTF-8) and every byte that is not part of valid UTF-8 becomes '?'
 * (no overlong forms, surrogates or code points above U+10FFFF); cut on
 * a character boundary where out is too small.
 */
void agent_text_clean(const char *in, char *out, size_t outlen);
/*
 * The same for at most n bytes of in (fewer at a NUL), with flags;
 * returns the bytes written before the NUL.  The output is never longer
 * than the input, so outlen n + 1 takes all of it.
 */
size_t agent_text_clean_n(const char *in, size_t n, unsigned flags, char *out,
			  size_t outlen);

#endif /* TETHER_AGENT_DIAG_TEXT_H */
