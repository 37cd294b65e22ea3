/*
 * What the agent's channel tests and its fuzz target share to run the
 * real dispatch (agent/session/chan.c) without a network or children:
 * DATA frames made from raw bytes as the link would decode them, and
 * spawns that are refused.
 */
#ifndef TETHER_TESTS_AGENT_CHAN_FAKE_H
#define TETHER_TESTS_AGENT_CHAN_FAKE_H

#include <stddef.h>
#include <stdint.h>

#include <tether/frame.h>

#include "session/chan.h"

/* The DATA frame on channel whose raw bytes (header and payload) these are. */
static inline struct tether_frame fake_frame_of(uint32_t channel,
						const uint8_t *raw, size_t len)
{
	const struct tether_frame f = {
	    .type = TETHER_FRAME_DATA,
	    .channel = channel,
	    .len = (uint32_t)(len - TETHER_FRAME_HEADER_LEN),
	    .payload = raw + TETHER_FRAME_HEADER_LEN,
	    .raw = raw,
	    .raw_len = len,
	};

	return f;
}

/* struct agent_chan_io's spawns, refused as a denied exec would be. */
static inline int fake_no_spawn(void *arg, uv_loop_t *loop,
				const struct agent_spawn *sp,
				const struct agent_proc_cbs *cbs, void *ctx,
				struct agent_proc **out)
{
	(void)arg;
	(void)loop;
	(void)sp;
	(void)cbs;
	(void)ctx;
	*out = NULL;
	return UV_EACCES;
}

static inline int fake_no_spawn_pty(void *arg, uv_loop_t *loop,
				    const struct agent_pty_opts *o,
				    const struct agent_proc_cbs *cbs, void *ctx,
				    struct agent_pty **out)
{
	(void)arg;
	(void)loop;
	(void)o;
	(void)cbs;
	(void)ctx;
	*out = NULL;
	return UV_EACCES;
}

#endif /* TETHER_TESTS_AGENT_CHAN_FAKE_H */
