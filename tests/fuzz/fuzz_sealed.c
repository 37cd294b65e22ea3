/*
 * libFuzzer target for the receiving side of a sealed channel: frame
 * decode, tether_chan_open (seal, message framing, credit windows) and the
 * decoding of opened message bodies by tether/msg.h, the decoders the
 * agent, the console and the transfer engine use.
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
 *          reaches window accounting and body decoding.  Here the result
 *          of each open is also predicted from docs/protocol.md and
 *          checked.
 *
 * Every body decoded must keep the decoders' contract: a failure leaves
 * the output all zero, and a success encodes back to exactly the bytes
 * it came from (so a decoder accepts nothing its encoder cannot make).
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
#include <tether/msg.h>
#include <tether/proto.h>
#include <tether/seal.h>

#include "fuzz.h"

#define HDR TETHER_FRAME_HEADER_LEN
#define TAG TETHER_SEAL_TAG_LEN
#define CHANNEL 1

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

/* The messages whose bodies spend window (tether_chan_send()). */
static bool is_data(uint8_t msg)
{
	return msg == TETHER_MSG_STDIN || msg == TETHER_MSG_STDOUT ||
	       msg == TETHER_MSG_STDERR || msg == TETHER_MSG_BLOCK;
}

static bool all_zero(const void *p, size_t n)
{
	const uint8_t *q = p;
	size_t i;

	for (i = 0; i < n; i++)
		if (q[i] != 0)
			return false;
	return true;
}

/* The encoder's output (r its result) is the body it was decoded from. */
static void same_bytes(struct tether_buf *out, int r, const uint8_t *body,
		       size_t len)
{
	CHECK(r == 0);
	CHECK(tether_buf_len(out) == len);
	CHECK(len == 0 || memcmp(tether_buf_ptr(out), body, len) == 0);
}

/*
 * Decodes body as a struct T with DECODE; on success encodes it back
 * into out with ENCODE and frees it with CLEAR (a no-op for the structs
 * that own nothing).
 */
#define ROUND_TRIP(T, DECODE, ENCODE, CLEAR)                                   \
	do {                                                                   \
		struct T m;                                                    \
		if (DECODE(body, len, &m) != 0) {                              \
			CHECK(all_zero(&m, sizeof(m)));                        \
			break;                                                 \
		}                                                              \
		same_bytes(out, ENCODE(out, &m), body, len);                   \
		CLEAR(&m);                                                     \
	} while (0)

#define NOTHING(m) ((void)(m))

/*
 * The body as the hex text "confirm" carries, opened as the agent opens
 * the sealed info: it must fail cleanly (no key made it), leaving no text.
 */
static void open_info(const uint8_t *body, size_t len)
{
	uint8_t ke[16], nc[TETHER_SEAL_NONCE_LEN], na[TETHER_SEAL_NONCE_LEN];
	char *hex = malloc(len + 1), *info = (char *)1;
	int r;

	if (hex == NULL)
		return;
	memcpy(hex, body, len);
	hex[len] = '\0';
	fixed_keys(ke, nc, na);
	r = tether_msg_open_info(ke, sizeof(ke), "7", hex, &info);
	CHECK((r == 0) == (info != NULL));
	tether_free(info);
	free(hex);
}

/* Decodes any opened body by its message type; must never crash. */
static void decode_body(struct tether_buf *out, uint8_t msg,
			const uint8_t *body, size_t len)
{
	struct tether_msg_block blk;

	tether_buf_reset(out);
	switch (msg) {
	case TETHER_MSG_EXEC:
		ROUND_TRIP(tether_msg_exec, tether_msg_decode_exec,
			   tether_msg_encode_exec, tether_msg_clear_exec);
		break;
	case TETHER_MSG_SHELL:
		ROUND_TRIP(tether_msg_shell, tether_msg_decode_shell,
			   tether_msg_encode_shell, tether_msg_clear_shell);
		break;
	case TETHER_MSG_RESIZE:
		ROUND_TRIP(tether_msg_resize, tether_msg_decode_resize,
			   tether_msg_encode_resize, NOTHING);
		break;
	case TETHER_MSG_EXIT:
		ROUND_TRIP(tether_msg_exit, tether_msg_decode_exit,
			   tether_msg_encode_exit, NOTHING);
		break;
	case TETHER_MSG_EOF:
		ROUND_TRIP(tether_msg_eof, tether_msg_decode_eof,
			   tether_msg_encode_eof, NOTHING);
		break;
	case TETHER_MSG_ERROR:
		ROUND_TRIP(tether_msg_error, tether_msg_decode_error,
			   tether_msg_encode_error, tether_msg_clear_error);
		break;
	case TETHER_MSG_WINDOW:
		/* tether_chan_open() let it through: it decodes. */
		ROUND_TRIP(tether_msg_window, tether_msg_decode_window,
			   tether_msg_encode_window, NOTHING);
		CHECK(len == 4);
		break;
	case TETHER_MSG_FORWARD:
		ROUND_TRIP(tether_msg_forward, tether_msg_decode_forward,
			   tether_msg_encode_forward, tether_msg_clear_forward);
		break;
	case TETHER_MSG_GET:
		ROUND_TRIP(tether_msg_get, tether_msg_decode_get,
			   tether_msg_encode_get, tether_msg_clear_get);
		break;
	case TETHER_MSG_PUT:
		ROUND_TRIP(tether_msg_put, tether_msg_decode_put,
			   tether_msg_encode_put, tether_msg_clear_put);
		break;
	case TETHER_MSG_ENTRY:
		ROUND_TRIP(tether_msg_entry, tether_msg_decode_entry,
			   tether_msg_encode_entry, tether_msg_clear_entry);
		break;
	case TETHER_MSG_ACCEPT:
		ROUND_TRIP(tether_msg_accept, tether_msg_decode_accept,
			   tether_msg_encode_accept, NOTHING);
		break;
	case TETHER_MSG_BLOCK:
		ROUND_TRIP(tether_msg_block, tether_msg_decode_block,
			   tether_msg_encode_block, NOTHING);
		/* The data is the body's own bytes, not a copy. */
		if (tether_msg_decode_block(body, len, &blk) == 0)
			CHECK(blk.data == body + 1 && blk.len == len - 1);
		break;
	case TETHER_MSG_FILE_END:
		ROUND_TRIP(tether_msg_file_end, tether_msg_decode_file_end,
			   tether_msg_encode_file_end,
			   tether_msg_clear_file_end);
		break;
	case TETHER_MSG_RESULT:
		ROUND_TRIP(tether_msg_result, tether_msg_decode_result,
			   tether_msg_encode_result, tether_msg_clear_result);
		break;
	case TETHER_MSG_SKIP:
		ROUND_TRIP(tether_msg_skip, tether_msg_decode_skip,
			   tether_msg_encode_skip, tether_msg_clear_skip);
		break;
	case TETHER_MSG_CLOSE:
	case TETHER_MSG_XFER_END:
	case TETHER_MSG_CONNECTED:
		CHECK((tether_msg_decode_empty(body, len) == 0) == (len == 0));
		break;
	default:
		/*
		 * Data, and types nobody sends: bytes with no structure, as
		 * a channel has them.  The pairing info's body is no channel
		 * message (the agent opens it from "confirm", seal.h), so
		 * these bodies feed its decoder, and its opener as hex text.
		 */
		ROUND_TRIP(tether_msg_info, tether_msg_decode_info,
			   tether_msg_encode_info, tether_msg_clear_info);
		open_info(body, len);
		break;
	}
}

/*
 * Opens f and decodes its body (out is scratch for re-encoding); checks
 * the outputs agree with the result.  Returns the result.
 */
static int open_one(struct tether_chan *c, struct tether_buf *out,
		    const struct tether_frame *f)
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
		decode_body(out, msg, body, len);
	}
	return r;
}

static void run_raw(struct tether_chan *c, struct tether_buf *out,
		    const uint8_t *s, size_t n)
{
	struct tether_buf *in = tether_buf_from(s, n);
	struct tether_frame f;

	if (in == NULL)
		return;
	while (tether_frame_decode(in, TETHER_FRAME_MAX, &f) == 0) {
		if (open_one(c, out, &f) != 0)
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

static void run_sealed(struct tether_chan *c, struct tether_buf *out,
		       bool agent, const uint8_t *ke, const uint8_t *nc,
		       const uint8_t *na, const uint8_t *s, size_t n)
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
		r = open_one(c, out, &f);
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
	struct tether_buf *out;
	bool agent;

	if (size == 0)
		return 0;
	agent = data[0] & 1;
	fixed_keys(ke, nc, na);
	c = tether_chan_new(CHANNEL, !agent, ke, sizeof(ke), nc, na);
	/* Re-encoded bodies: one can be as large as a frame. */
	out = tether_buf_new(TETHER_FRAME_MAX);
	CHECK(c != NULL && out != NULL);
	if (data[0] & 2)
		run_sealed(c, out, agent, ke, nc, na, data + 1, size - 1);
	else
		run_raw(c, out, data + 1, size - 1);
	tether_buf_free(out);
	tether_chan_free(c);
	return 0;
}
