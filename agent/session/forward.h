/*
 * Forward channels, agent side (docs/protocol.md, "Forwarding"): one TCP
 * connection made on the console's behalf, within the customer's policy.
 * chan.c owns the channel and hands this file its sealed messages and the
 * channel itself as a struct agent_forward_io.
 */
#ifndef TETHER_AGENT_SESSION_FORWARD_H
#define TETHER_AGENT_SESSION_FORWARD_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include <tether/ctrl.h>

#include "session/cli.h"

struct agent_forward;
struct agent_term;

/*
 * A forward channel as forward.c sees it.  send, window and consumed are
 * as in struct tether_xfer_io; report sends the relay its record of the
 * request.  done: the forward ended by itself (a refusal or failure
 * already told the console with ERROR, the target hung up, both
 * directions finished); with why NULL chan.c sends CLOSE and the control
 * close, else it fails the channel with why.  closed: after
 * agent_forward_close(), every handle is closed and the forward is freed
 * once this returns.  Neither is called from within agent_forward_start(),
 * _input(), _pump() or _close().
 */
struct agent_forward_io {
	int (*send)(void *arg, uint8_t msg, const void *body, size_t len);
	size_t (*window)(void *arg);
	int (*consumed)(void *arg, size_t n);
	int (*report)(void *arg, const struct tether_ctrl_forward_report *r);
	void (*done)(void *arg, const char *why);
	void (*closed)(void *arg);
	void *arg;
};

/* Who a forward is for and what it may reach. */
struct agent_forward_env {
	uv_loop_t *loop;
	struct agent_term *term; /* lines and the customer's question */
	/* --allow-forward targets, besides TETHER_FORWARD_HOST, localhost. */
	const struct agent_targets *allowed;
	/*
	 * Targets the customer allowed when asked, for the whole session
	 * (the channel table's): not asked about again; a yes adds to it.
	 */
	struct agent_targets *granted;
	uint32_t channel;
	const char *technician; /* copied */
	struct agent_forward_io io;
};

/* What agent_forward_start() and _input() return besides errors. */
#define AGENT_FORWARD_MORE 0 /* the forward goes on */
#define AGENT_FORWARD_DONE 1 /* it is over: chan.c sends CLOSE */

/*
 * The console's first message on a forward channel (FORWARD): checks the
 * policy, asks the customer if need be, and starts connecting.
 * AGENT_FORWARD_MORE with the forward in *out (which later reports through
 * io.done); AGENT_FORWARD_DONE when the target was refused at once (ERROR
 * sent, the customer told, the refusal reported to the relay); or a
 * TETHER_ERR_* with why in *why (static text) for a malformed request or
 * no memory.  *out is set only with AGENT_FORWARD_MORE.
 */
int agent_forward_start(const struct agent_forward_env *env, uint8_t msg,
			const uint8_t *body, size_t len,
			struct agent_forward **out, const char **why);
/* Every later sealed message but WINDOW and ERROR (CLOSE too); as above. */
int agent_forward_input(struct agent_forward *f, uint8_t msg,
			const uint8_t *body, size_t len, const char **why);
/* Window came back or the link drained: read from the target again. */
void agent_forward_pump(struct agent_forward *f);
/*
 * Stops the forward (the question, the lookup, the connection), sending
 * nothing more; io.closed follows once every handle is closed.
 */
void agent_forward_close(struct agent_forward *f);
/* Adds HOST:PORT or [V6]:PORT (--allow-forward) to ts; why says why not. */
int agent_forward_allow(struct agent_targets *ts, const char *spec,
			const char **why);
/* "127.0.0.1:22, localhost:22, ..." for the customer, cut to fit out. */
void agent_forward_describe_policy(const struct agent_targets *ts, char *out,
				   size_t outlen);

#endif /* TETHER_AGENT_SESSION_FORWARD_H */
