/*
 * The attended session's channels (docs/protocol.md, "Key schedule and
 * sealed messages"): the relay's open and close, each channel's sealed
 * messages, and the flow between its credit windows and what serves it
 * (a command or shell, a file transfer, a TCP connection, the
 * diagnostics collector).
 *
 * Channels reach the relay, and start children, only through the struct
 * agent_chan_io the session gives them: they never see the session, its
 * link or its client.  That is also how the dispatch runs without a
 * network (tests/unit/test_agent_chan.c, tests/fuzz/fuzz_agent_chan.c),
 * with spawns refused.
 */
#ifndef TETHER_AGENT_SESSION_CHAN_H
#define TETHER_AGENT_SESSION_CHAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include <tether/ctrl.h>
#include <tether/frame.h>

#include "session/exec.h"
#include "session/pty.h"

struct agent_chans;
struct agent_file_policy;
struct agent_targets;
struct agent_term;

/* Concurrent channels one technician may keep open on this machine. */
#define AGENT_CHAN_MAX 64

/* A channel kind's bit in the caps the customer allowed. */
#define AGENT_CAP(kind) (1u << (kind))

/* The channels' way out: the relay link, and this machine's children. */
struct agent_chan_io {
	/* A control message to the relay; TETHER_ERR_CLOSED without a link. */
	int (*ctrl)(void *arg, enum tether_ctrl_type t, const void *body);
	/* One sealed DATA frame to the relay (a tether_chan_sink). */
	int (*frame)(void *arg, const uint8_t *frame, size_t len);
	/* The link is up and under its high-water mark: output may flow. */
	bool (*room)(void *arg);
	/* agent_proc_spawn() and agent_pty_spawn(), or a refusal (UV_E*). */
	int (*spawn)(void *arg, uv_loop_t *loop, const struct agent_spawn *sp,
		     const struct agent_proc_cbs *cbs, void *ctx,
		     struct agent_proc **out);
	int (*spawn_pty)(void *arg, uv_loop_t *loop,
			 const struct agent_pty_opts *o,
			 const struct agent_proc_cbs *cbs, void *ctx,
			 struct agent_pty **out);
	void *arg;
};

struct agent_chans_cfg {
	uv_loop_t *loop;
	struct agent_term *term;	       /* the customer's lines */
	const struct agent_file_policy *files; /* borrowed */
	const struct agent_targets *forwards;  /* borrowed */
	struct agent_chan_io io;
};

/* An empty table; NULL without memory. */
struct agent_chans *agent_chans_new(const struct agent_chans_cfg *cfg);
/*
 * The pairing is done: the session key Ke and the kinds the customer
 * allowed (AGENT_CAP() bits).  Before this every open is refused.
 */
void agent_chans_pair(struct agent_chans *cs, const uint8_t *ke, size_t ke_len,
		      unsigned caps);
/* The relay's open: answered with opened or open_failed. */
void agent_chans_open(struct agent_chans *cs,
		      const struct tether_ctrl_chan_open *m);
/* The relay's close: the console went away; stop what serves it. */
void agent_chans_close(struct agent_chans *cs,
		       const struct tether_ctrl_chan_close *m);
/* A DATA frame from the relay. */
void agent_chans_frame(struct agent_chans *cs, const struct tether_frame *f);
/* The link drained below its low-water mark: output may flow again. */
void agent_chans_drain(struct agent_chans *cs);
/* The link is gone or we are leaving: stop every channel, send nothing. */
void agent_chans_abort(struct agent_chans *cs);
/* Channels not yet freed (some wait for a child to go). */
size_t agent_chans_count(const struct agent_chans *cs);
/*
 * Aborts every channel and frees the table once the last is gone (run
 * the loop until then).  Ke is wiped.  NULL is fine.
 */
void agent_chans_free(struct agent_chans *cs);

#endif /* TETHER_AGENT_SESSION_CHAN_H */
