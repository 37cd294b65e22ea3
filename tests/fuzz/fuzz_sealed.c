/*
 * libFuzzer target for the receiving side of a sealed channel: frame
 * decode, tether_chan_open (seal, message framing, credit windows) and the
 * parsing of opened message bodies the way the agent and console do it.
 *
 * Random bytes almost never pass the Poly1305 tag, so the input picks one
 * of two modes with bit 1 of byte 0 (bit 0 picks the receiving end:
 * 0 console, 1 agent; the channel is always 1, keys and nonces are fixed):
 *
 *  raw:    the rest is a byte stream of frames, decoded and opened as
 *          they come; this attacks the framing and the authentication.
 *  sealed: the rest is records "u16 length | plaintext" (message byte and
 *          body); the harness seals each one for the receiving end as the
 *          peer would, so every message authenticates and the fuzzer
 *          reaches window accounting and body parsing.  Here the result of
 *          each open is also predicted from docs/protocol.md and checked.
 *
 * After the first failed open the channel is dead, as in the real peers.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tether/alloc.h>
#include <tether/buf.h>
#include <tether/chan.h>
#include <tether/err.h>
#include <tether/frame.h>
#include <tether/proto.h>
#include <tether/seal.h>

#include "fuzz.h"

#define HDR TETHER_FRAME_HEADER_LEN
#define TAG TETHER_SEAL_TAG_LEN
#define CHANNEL 1
/* The agent's caps on an EXEC request. */
#define ARGC_MAX 256
#define ARG_MAX 4096
#define REASON_MAX 1024

/* The same fixed keys as tests/unit/test_chan.c. */
static void fixed_keys(uint8_t ke[16], uint8_t nc[TETHER_SEAL_NONCE_LEN],
		       uint8_t na[TETHER_SEAL_NONCE_LEN])
{
	size_t i;

	for (i = 0; i < 16; i++)
		ke[i] = (uint8_t)i;
	for (i = 0; i < TETHER_SEAL_NONCE_LEN; i++) {
		nc[i] = (uint8_t)(0xc0 ^ i);
		na[i] = (uint8_t)(0xa0 ^ i);
	}
}

static bool is_data(uint8_t msg)
{
	return msg == TETHER_MSG_STDIN || msg == TETHER_MSG_STDOUT ||
	       msg == TETHER_MSG_STDERR;
}

/* Parses an EXEC body as the agent does; returns 0 if it is well formed. */
static int parse_exec(struct tether_buf *b)
{
	uint32_t argc, i;
	size_t len;
	char *arg;
	int r;

	if ((r = tether_buf_get_u32(b, &argc)) != 0)
		return r;
	if (argc == 0 || argc > ARGC_MAX)
		return TETHER_ERR_LIMIT;
	for (i = 0; i < argc; i++) {
		if ((r = tether_buf_get_cstring(b, &arg, &len, ARG_MAX)) != 0)
			return r;
		CHECK(arg != NULL && strlen(arg) == len && len <= ARG_MAX);
		tether_free(arg);
	}
	return tether_buf_get_end(b);
}

/* Parses any opened body by its message type; must never crash. */
static void parse_body(uint8_t msg, const uint8_t *body, size_t len)
{
	struct tether_buf *b = tether_buf_from(body, len);
	uint32_t v32;
	uint8_t v8;
	size_t n;
	char *s;

	if (b == NULL)
		return;
	switch (msg) {
	case TETHER_MSG_EXEC:
		(void)parse_exec(b);
		break;
	case TETHER_MSG_EOF:
		if (tether_buf_get_u8(b, &v8) == 0 && v8 <= 2)
			(void)tether_buf_get_end(b);
		break;
	case TETHER_MSG_EXIT:
		if (tether_buf_get_u8(b, &v8) == 0 &&
		    tether_buf_get_u32(b, &v32) == 0)
			(void)tether_buf_get_end(b);
		break;
	case TETHER_MSG_WINDOW:
		CHECK(tether_buf_get_u32(b, &v32) == 0);
		CHECK(tether_buf_get_end(b) == 0);
		break;
	case TETHER_MSG_ERROR:
		if (tether_buf_get_cstring(b, &s, &n, REASON_MAX) == 0) {
			CHECK(strlen(s) == n);
			tether_free(s);
		}
		break;
	default:
		/* Data and CLOSE: bytes or nothing, no structure. */
		(void)tether_buf_get(b, NULL, len);
		CHECK(tether_buf_get_end(b) == 0);
		break;
	}
	tether_buf_free(b);
}

/* Opens f; checks the outputs agree with the result.  Returns the result. */
static int open_one(struct tether_chan *c, const struct tether_frame *f)
{
	const uint8_t *body;
	uint8_t msg;
	size_t len;
	int r;

	r = tether_chan_open(c, f, &msg, &body, &len);
	CHECK(tether_chan_send_window(c) <= TETHER_CHANNEL_WINDOW);
	if (f->type != TETHER_FRAME_DATA || f->channel != CHANNEL)
		CHECK(r == TETHER_ERR_PROTOCOL);
	else if (f->len < TAG + 1)
		CHECK(r == TETHER_ERR_FORMAT);
	if (r == 0) {
		CHECK(body != NULL);
		CHECK(len == f->len - TAG - 1);
		parse_body(msg, body, len);
	}
	return r;
}

static void run_raw(struct tether_chan *c, const uint8_t *s, size_t n)
{
	struct tether_buf *in = tether_buf_from(s, n);
	struct tether_frame f;

	if (in == NULL)
		return;
	while (tether_frame_decode(in, TETHER_FRAME_MAX, &f) == 0) {
		if (open_one(c, &f) != 0)
			break;
	}
	tether_buf_free(in);
}

/* What tether_chan_open must say, from the spec and our model of it. */
struct model {
	size_t recv_window;
	size_t send_window;
};

static int predict(struct model *m, const uint8_t *pt, size_t plen)
{
	uint32_t credit;
	size_t blen;

	if (plen == 0)
		return TETHER_ERR_FORMAT;
	blen = plen - 1;
	if (is_data(pt[0])) {
		if (blen > m->recv_window)
			return TETHER_ERR_PROTOCOL;
		m->recv_window -= blen;
	} else if (pt[0] == TETHER_MSG_WINDOW) {
		if (blen != 4)
			return TETHER_ERR_FORMAT;
		credit = (uint32_t)pt[1] << 24 | (uint32_t)pt[2] << 16 |
			 (uint32_t)pt[3] << 8 | pt[4];
		if (credit > TETHER_CHANNEL_WINDOW ||
		    m->send_window + credit > TETHER_CHANNEL_WINDOW)
			return TETHER_ERR_PROTOCOL;
		m->send_window += credit;
	}
	return 0;
}

static void run_sealed(struct tether_chan *c, bool agent, const uint8_t *ke,
		       const uint8_t *nc, const uint8_t *na, const uint8_t *s,
		       size_t n)
{
	uint8_t key[TETHER_SEAL_KEY_LEN];
	struct model m = {TETHER_CHANNEL_WINDOW, TETHER_CHANNEL_WINDOW};
	struct tether_seal *peer;
	struct tether_buf *wire;
	struct tether_frame f;
	size_t off = 0, plen;
	uint8_t *p;
	int r, want;

	/* The peer seals toward us: c2a if we are the agent. */
	CHECK(tether_seal_derive(ke, 16, nc, na, CHANNEL,
				 agent ? TETHER_SEAL_CONSOLE_TO_AGENT
				       : TETHER_SEAL_AGENT_TO_CONSOLE,
				 key) == 0);
	peer = tether_seal_new(key);
	wire = tether_buf_new(HDR + TETHER_FRAME_MAX);
	CHECK(peer != NULL && wire != NULL);
	while (n - off >= 2) {
		plen = (size_t)s[off] << 8 | s[off + 1];
		off += 2;
		if (plen > n - off)
			plen = n - off;
		tether_buf_reset(wire);
		CHECK(tether_buf_reserve(wire, HDR + plen + TAG, &p) == 0);
		tether_frame_header_pack(p, TETHER_FRAME_DATA, 0, CHANNEL,
					 (uint32_t)(plen + TAG));
		if (plen > 0)
			memcpy(p + HDR, s + off, plen);
		CHECK(tether_seal_encrypt(peer, p, HDR, p + HDR, plen,
					  p + HDR) == 0);
		want = predict(&m, s + off, plen);
		off += plen;
		CHECK(tether_frame_decode(wire, TETHER_FRAME_MAX, &f) == 0);
		r = open_one(c, &f);
		/* Genuine frames always authenticate. */
		CHECK(r != TETHER_ERR_AUTH);
		CHECK(r == want);
		if (r != 0)
			break;
		CHECK(tether_chan_send_window(c) == m.send_window);
	}
	tether_buf_free(wire);
	tether_seal_free(peer);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t ke[16], nc[TETHER_SEAL_NONCE_LEN], na[TETHER_SEAL_NONCE_LEN];
	struct tether_chan *c;
	bool agent;

	if (size == 0)
		return 0;
	agent = data[0] & 1;
	fixed_keys(ke, nc, na);
	c = tether_chan_new(CHANNEL, !agent, ke, sizeof(ke), nc, na);
	CHECK(c != NULL);
	if (data[0] & 2)
		run_sealed(c, agent, ke, nc, na, data + 1, size - 1);
	else
		run_raw(c, data + 1, size - 1);
	tether_chan_free(c);
	return 0;
}
