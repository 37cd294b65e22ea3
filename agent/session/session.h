/*
 * The attended session (docs/protocol.md, "Agent messages" and
 * "Pairing"): on the relay client, hello and join, the customer's trust
 * in the relay and consent, SPAKE2 as party B and key confirmation,
 * resuming after a dropped connection, and the channels once paired.
 */
#ifndef TETHER_AGENT_SESSION_SESSION_H
#define TETHER_AGENT_SESSION_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include <tether/spake2.h>

#include "session/term.h"

struct agent_file_policy;
struct agent_targets;

/* What tether-agent join was given; borrowed while the session runs. */
struct agent_session_opts {
	const char *host;
	int port;
	const char *pin; /* "SHA256:...", or NULL to ask (or --yes) */
	bool yes;	 /* trust the relay and consent without asking */
	/* --allow: consent to these (1 << enum tether_kind) without asking */
	bool has_allow;
	unsigned allow;
	enum agent_view view;
	const struct agent_file_policy *files;
	const struct agent_targets *forwards;
	const char *nameplate;
	/* The SPAKE2 password scalar from the code's words (copied). */
	const uint8_t *w;
};

/*
 * Runs the session on loop until it ends (the customer leaves, the ticket
 * closes, a failure): the exit status, 0 for a normal end.  Every secret
 * it held is wiped when it returns.
 */
int agent_session_run(uv_loop_t *loop, const struct agent_session_opts *o);

#endif /* TETHER_AGENT_SESSION_SESSION_H */
