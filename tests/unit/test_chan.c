/*
 * Sealed channel tests.  The first half plays the far end by hand: frames
 * are sealed with tether_seal_* under keys from tether_seal_derive, exactly
 * as docs/protocol.md specifies, and fed to tether_chan_open, so these tests
 * also check that chan.c follows the spec rather than merely agreeing with
 * itself.  A known-answer frame computed outside this code base (Python's
 * "cryptography" package) pins the whole key schedule and sealing.
 *
 * The second half runs two real links over TLS on loopback (one process,
 * one uv loop) to cover tether_chan_send, tether_chan_consumed and link.c:
 * an exec exchange, bulk output under window credits, a pin mismatch, an
 * oversized frame and orderly close on both ends.
 */
#include <dirent.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <uv.h>

#include <tether/alloc.h>
#include <tether/buf.h>
#include <tether/chan.h>
#include <tether/err.h>
#include <tether/frame.h>
#include <tether/link.h>
#include <tether/proto.h>
#include <tether/seal.h>
#include <tether/tls.h>

#define HDR TETHER_FRAME_HEADER_LEN
#define TAG TETHER_SEAL_TAG_LEN
#define MIB (1024u * 1024)

/* Fixed session key and open nonces, the same as in the fuzz targets. */
static uint8_t ke[16];
static uint8_t nonce_c[TETHER_SEAL_NONCE_LEN];
static uint8_t nonce_a[TETHER_SEAL_NONCE_LEN];

static void init_keys(void)
{
	size_t i;

	for (i = 0; i < sizeof(ke); i++)
		ke[i] = (uint8_t)i;
	for (i = 0; i < TETHER_SEAL_NONCE_LEN; i++) {
		nonce_c[i] = (uint8_t)(0xc0 ^ i);
		nonce_a[i] = (uint8_t)(0xa0 ^ i);
	}
}

static void fini(void)
{
	tether_alloc_fail_after(0);
}

TestSuite(chan, .init = init_keys, .fini = fini);

/* clang-format off */
/*
 * Known answers for Ke = 00..0f, nonce_c[i] = 0xc0 ^ i, nonce_a[i] =
 * 0xa0 ^ i, channel 1, computed with HKDF-SHA256 and ChaCha20-Poly1305 from
 * Python's cryptography package following docs/protocol.md:
 * kat_stdout = a2c counter 0, STDOUT "hello"; kat_eof = a2c counter 1,
 * EOF(1); kat_exec = c2a counter 0, EXEC ["ls", "-la"].
 */
static const uint8_t kat_stdout[] = {
	0x00, 0x00, 0x00, 0x16, 0x02, 0x00, 0x00, 0x00,
	0x00, 0x01, 0x10, 0x43, 0x82, 0x03, 0xcf, 0xcf,
	0xe4, 0x0b, 0x8d, 0x09, 0x8c, 0x1a, 0x32, 0xc3,
	0x5c, 0xeb, 0xc9, 0xbb, 0xbd, 0x8f, 0x78, 0x86,
};

static const uint8_t kat_eof[] = {
	0x00, 0x00, 0x00, 0x12, 0x02, 0x00, 0x00, 0x00,
	0x00, 0x01, 0x49, 0x0a, 0xab, 0xfb, 0x69, 0x51,
	0x7c, 0x50, 0x11, 0xb1, 0xc5, 0x10, 0x87, 0x07,
	0x10, 0x0e, 0xa5, 0x9c,
};

static const uint8_t kat_exec[] = {
	0x00, 0x00, 0x00, 0x22, 0x02, 0x00, 0x00, 0x00,
	0x00, 0x01, 0x9a, 0x01, 0x85, 0xbe, 0x95, 0xd6,
	0x81, 0x25, 0xbf, 0xd8, 0x57, 0xb1, 0xec, 0xe6,
	0x9d, 0x8d, 0x39, 0xd7, 0x32, 0x55, 0x98, 0x8e,
	0x41, 0x0d, 0xd8, 0x8d, 0x93, 0xfa, 0xab, 0xf1,
	0x86, 0x40, 0x7b, 0xcf,
};
/* clang-format on */

static struct tether_chan *new_chan(uint32_t id, bool console)
{
	struct tether_chan *c;

	c = tether_chan_new(id, console, ke, sizeof(ke), nonce_c, nonce_a);
	cr_assert_not_null(c);
	return c;
}

/* The far end's sealer for one channel and direction, per the spec. */
static struct tether_seal *new_sealer(uint32_t channel,
				      enum tether_seal_dir dir)
{
	uint8_t key[TETHER_SEAL_KEY_LEN];
	struct tether_seal *s;

	cr_assert_eq(tether_seal_derive(ke, sizeof(ke), nonce_c, nonce_a,
					channel, dir, key),
		     0);
	s = tether_seal_new(key);
	cr_assert_not_null(s);
	return s;
}

struct sealed {
	uint8_t *raw;
	size_t len;
};

/*
 * A DATA frame on wire_channel whose payload seals [msg | body] with
 * aad_channel in the header used as associated data (the two differ only
 * when a test forges a header).
 */
static struct sealed seal_forged(struct tether_seal *s, uint32_t wire_channel,
				 uint32_t aad_channel, uint8_t aad_type,
				 uint8_t msg, const void *body, size_t len)
{
	size_t plen = 1 + len;
	uint8_t aad[HDR];
	struct sealed f;

	f.len = HDR + plen + TAG;
	f.raw = malloc(f.len);
	cr_assert_not_null(f.raw);
	tether_frame_header_pack(f.raw, TETHER_FRAME_DATA, 0, wire_channel,
				 (uint32_t)(plen + TAG));
	tether_frame_header_pack(aad, aad_type, 0, aad_channel,
				 (uint32_t)(plen + TAG));
	f.raw[HDR] = msg;
	if (len > 0)
		memcpy(f.raw + HDR + 1, body, len);
	cr_assert_eq(
	    tether_seal_encrypt(s, aad, HDR, f.raw + HDR, plen, f.raw + HDR),
	    0);
	return f;
}

static struct sealed seal_msg(struct tether_seal *s, uint32_t channel,
			      uint8_t msg, const void *body, size_t len)
{
	return seal_forged(s, channel, channel, TETHER_FRAME_DATA, msg, body,
			   len);
}

static struct sealed seal_u32(struct tether_seal *s, uint32_t channel,
			      uint8_t msg, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16),
			(uint8_t)(v >> 8), (uint8_t)v};

	return seal_msg(s, channel, msg, b, sizeof(b));
}

/* Decodes raw as the link would and opens it on c. */
static int open_raw(struct tether_chan *c, const uint8_t *raw, size_t len,
		    uint8_t *msg, const uint8_t **body, size_t *blen)
{
	struct tether_buf *in = tether_buf_from(raw, len);
	struct tether_frame f;
	int r;

	cr_assert_not_null(in);
	cr_assert_eq(tether_frame_decode(in, TETHER_FRAME_MAX, &f), 0);
	cr_assert_eq(tether_buf_len(in), 0);
	r = tether_chan_open(c, &f, msg, body, blen);
	tether_buf_free(in);
	return r;
}

static int open_sealed(struct tether_chan *c, struct sealed f, uint8_t *msg,
		       const uint8_t **body, size_t *blen)
{
	return open_raw(c, f.raw, f.len, msg, body, blen);
}

/* Opens f, expects msg with the given body, and frees f. */
static void expect_open(struct tether_chan *c, struct sealed f, uint8_t want,
			const void *want_body, size_t want_len)
{
	const uint8_t *body;
	uint8_t msg;
	size_t len;

	cr_assert_eq(open_sealed(c, f, &msg, &body, &len), 0);
	cr_assert_eq(msg, want);
	cr_assert_eq(len, want_len);
	if (want_len > 0)
		cr_assert(memcmp(body, want_body, want_len) == 0);
	free(f.raw);
}

static void expect_open_fails(struct tether_chan *c, struct sealed f, int err)
{
	const uint8_t *body;
	uint8_t msg;
	size_t len;

	cr_assert_eq(open_sealed(c, f, &msg, &body, &len), err);
	free(f.raw);
}

Test(chan, known_answer_frames_open)
{
	struct tether_chan *con = new_chan(1, true);
	struct tether_chan *agent = new_chan(1, false);
	const uint8_t *body;
	struct tether_buf *b;
	uint8_t msg, v8;
	uint32_t argc;
	size_t len;
	char *arg;

	cr_assert_eq(
	    open_raw(con, kat_stdout, sizeof(kat_stdout), &msg, &body, &len),
	    0);
	cr_assert_eq(msg, TETHER_MSG_STDOUT);
	cr_assert_eq(len, 5);
	cr_assert(memcmp(body, "hello", 5) == 0);
	cr_assert_eq(open_raw(con, kat_eof, sizeof(kat_eof), &msg, &body, &len),
		     0);
	cr_assert_eq(msg, TETHER_MSG_EOF);
	cr_assert_eq(len, 1);
	v8 = body[0];
	cr_assert_eq(v8, 1);

	cr_assert_eq(
	    open_raw(agent, kat_exec, sizeof(kat_exec), &msg, &body, &len), 0);
	cr_assert_eq(msg, TETHER_MSG_EXEC);
	b = tether_buf_from(body, len);
	cr_assert_not_null(b);
	cr_assert_eq(tether_buf_get_u32(b, &argc), 0);
	cr_assert_eq(argc, 2);
	cr_assert_eq(tether_buf_get_cstring(b, &arg, NULL, 64), 0);
	cr_assert_str_eq(arg, "ls");
	tether_free(arg);
	cr_assert_eq(tether_buf_get_cstring(b, &arg, NULL, 64), 0);
	cr_assert_str_eq(arg, "-la");
	tether_free(arg);
	cr_assert_eq(tether_buf_get_end(b), 0);
	tether_buf_free(b);
	tether_chan_free(con);
	tether_chan_free(agent);
}

Test(chan, directions_are_separate_keys)
{
	struct tether_chan *con = new_chan(1, true);
	const uint8_t *body;
	uint8_t msg;
	size_t len;

	/* The console cannot open what the console itself would send. */
	cr_assert_eq(
	    open_raw(con, kat_exec, sizeof(kat_exec), &msg, &body, &len),
	    TETHER_ERR_AUTH);
	/* And the failure did not move its counter. */
	cr_assert_eq(
	    open_raw(con, kat_stdout, sizeof(kat_stdout), &msg, &body, &len),
	    0);
	tether_chan_free(con);
}

Test(chan, id_and_initial_window)
{
	struct tether_chan *c = new_chan(42, true);

	cr_assert_eq(tether_chan_id(c), 42);
	cr_assert_eq(tether_chan_send_window(c), TETHER_CHANNEL_WINDOW);
	tether_chan_free(c);
	tether_chan_free(NULL);
}

Test(chan, file_channels_raise_the_window_before_data_only)
{
	struct tether_chan *c = new_chan(7, true);

	cr_assert_eq(tether_chan_set_window(c, 1024), TETHER_ERR_INVALID);
	cr_assert_eq(tether_chan_set_window(c, TETHER_CHANNEL_WINDOW_MAX + 1),
		     TETHER_ERR_INVALID);
	cr_assert_eq(tether_chan_set_window(c, TETHER_FILE_WINDOW), 0);
	cr_assert_eq(tether_chan_send_window(c), TETHER_FILE_WINDOW);
	tether_chan_free(c);
}

Test(chan, new_rejects_missing_key)
{
	cr_assert_null(tether_chan_new(1, true, NULL, 16, nonce_c, nonce_a));
	cr_assert_null(tether_chan_new(1, true, ke, 0, nonce_c, nonce_a));
}

Test(chan, new_survives_every_allocation_failure)
{
	struct tether_chan *c = NULL;
	unsigned long n;

	/* LeakSanitizer (if on) catches a leak on any failure path. */
	for (n = 1; n < 32; n++) {
		tether_alloc_fail_after(n);
		c = tether_chan_new(3, false, ke, sizeof(ke), nonce_c, nonce_a);
		tether_alloc_fail_after(0);
		if (c != NULL)
			break;
	}
	cr_assert_not_null(c, "tether_chan_new never succeeded");
	cr_assert_gt(n, 1);
	tether_chan_free(c);
}

Test(chan, open_messages_in_order)
{
	struct tether_seal *s = new_sealer(7, TETHER_SEAL_AGENT_TO_CONSOLE);
	struct tether_chan *con = new_chan(7, true);
	static const uint8_t exit_body[] = {0, 0, 0, 0, 3};

	expect_open(con, seal_msg(s, 7, TETHER_MSG_STDOUT, "out", 3),
		    TETHER_MSG_STDOUT, "out", 3);
	expect_open(con, seal_msg(s, 7, TETHER_MSG_STDERR, "err", 3),
		    TETHER_MSG_STDERR, "err", 3);
	expect_open(con, seal_msg(s, 7, TETHER_MSG_EOF, "\x01", 1),
		    TETHER_MSG_EOF, "\x01", 1);
	expect_open(con, seal_msg(s, 7, TETHER_MSG_EXIT, exit_body, 5),
		    TETHER_MSG_EXIT, exit_body, 5);
	/* The smallest legal frame: a message byte and the tag. */
	expect_open(con, seal_msg(s, 7, TETHER_MSG_CLOSE, NULL, 0),
		    TETHER_MSG_CLOSE, NULL, 0);
	tether_seal_free(s);
	tether_chan_free(con);
}

Test(chan, agent_end_opens_console_messages)
{
	struct tether_seal *s = new_sealer(2, TETHER_SEAL_CONSOLE_TO_AGENT);
	struct tether_chan *agent = new_chan(2, false);

	expect_open(agent, seal_msg(s, 2, TETHER_MSG_STDIN, "typed\n", 6),
		    TETHER_MSG_STDIN, "typed\n", 6);
	expect_open(agent, seal_msg(s, 2, TETHER_MSG_EOF, "\x00", 1),
		    TETHER_MSG_EOF, "\x00", 1);
	tether_seal_free(s);
	tether_chan_free(agent);
}

Test(chan, replayed_frame_fails_auth)
{
	struct tether_seal *s = new_sealer(1, TETHER_SEAL_AGENT_TO_CONSOLE);
	struct tether_chan *con = new_chan(1, true);
	struct sealed a = seal_msg(s, 1, TETHER_MSG_STDOUT, "once", 4);
	struct sealed b = seal_msg(s, 1, TETHER_MSG_STDOUT, "twice", 5);
	const uint8_t *body;
	uint8_t msg;
	size_t len;

	cr_assert_eq(open_sealed(con, a, &msg, &body, &len), 0);
	cr_assert_eq(open_sealed(con, a, &msg, &body, &len), TETHER_ERR_AUTH);
	cr_assert_eq(msg, 0);
	cr_assert_null(body);
	cr_assert_eq(len, 0);
	/* The genuine next frame still opens: failures do not advance. */
	expect_open(con, b, TETHER_MSG_STDOUT, "twice", 5);
	free(a.raw);
	tether_seal_free(s);
	tether_chan_free(con);
}

Test(chan, reordered_and_dropped_frames_fail_auth)
{
	struct tether_seal *s = new_sealer(1, TETHER_SEAL_AGENT_TO_CONSOLE);
	struct tether_chan *con = new_chan(1, true);
	struct sealed a = seal_msg(s, 1, TETHER_MSG_STDOUT, "a", 1);
	struct sealed b = seal_msg(s, 1, TETHER_MSG_STDOUT, "b", 1);
	struct sealed c = seal_msg(s, 1, TETHER_MSG_STDOUT, "c", 1);
	const uint8_t *body;
	uint8_t msg;
	size_t len;

	cr_assert_eq(open_sealed(con, b, &msg, &body, &len), TETHER_ERR_AUTH);
	cr_assert_eq(open_sealed(con, c, &msg, &body, &len), TETHER_ERR_AUTH);
	expect_open(con, a, TETHER_MSG_STDOUT, "a", 1);
	/* b dropped: c must not open in its place. */
	cr_assert_eq(open_sealed(con, c, &msg, &body, &len), TETHER_ERR_AUTH);
	expect_open(con, b, TETHER_MSG_STDOUT, "b", 1);
	expect_open(con, c, TETHER_MSG_STDOUT, "c", 1);
	tether_seal_free(s);
	tether_chan_free(con);
}

Test(chan, tampered_payload_fails_auth)
{
	struct tether_seal *s = new_sealer(1, TETHER_SEAL_AGENT_TO_CONSOLE);
	struct tether_chan *con = new_chan(1, true);
	struct sealed a = seal_msg(s, 1, TETHER_MSG_STDOUT, "rm -rf /", 8);
	const uint8_t *body;
	uint8_t msg;
	size_t len;

	a.raw[HDR + 3] ^= 0x01;
	cr_assert_eq(open_sealed(con, a, &msg, &body, &len), TETHER_ERR_AUTH);
	a.raw[HDR + 3] ^= 0x01;
	a.raw[a.len - 1] ^= 0x80;
	cr_assert_eq(open_sealed(con, a, &msg, &body, &len), TETHER_ERR_AUTH);
	a.raw[a.len - 1] ^= 0x80;
	expect_open(con, a, TETHER_MSG_STDOUT, "rm -rf /", 8);
	tether_seal_free(s);
	tether_chan_free(con);
}

/*
 * The header is the associated data: a relay that rewrites it (moves a
 * frame sealed for channel 2 onto channel 1, or retypes it) is caught even
 * when the receiver's own checks on the header pass.
 */
Test(chan, modified_header_fails)
{
	struct tether_seal *s1 = new_sealer(1, TETHER_SEAL_AGENT_TO_CONSOLE);
	struct tether_chan *con = new_chan(1, true);

	/* Channel-1 key, but sealed under a header that said channel 2. */
	expect_open_fails(
	    con,
	    seal_forged(s1, 1, 2, TETHER_FRAME_DATA, TETHER_MSG_STDOUT, "x", 1),
	    TETHER_ERR_AUTH);
	tether_seal_free(s1);
	s1 = new_sealer(1, TETHER_SEAL_AGENT_TO_CONSOLE);
	/* Sealed as if it were a CTRL frame, delivered as DATA. */
	expect_open_fails(
	    con,
	    seal_forged(s1, 1, 1, TETHER_FRAME_CTRL, TETHER_MSG_STDOUT, "x", 1),
	    TETHER_ERR_AUTH);
	tether_seal_free(s1);
	tether_chan_free(con);
}

Test(chan, frame_moved_to_other_channel_fails_auth)
{
	struct tether_seal *s2 = new_sealer(2, TETHER_SEAL_AGENT_TO_CONSOLE);
	struct tether_chan *con1 = new_chan(1, true);
	struct sealed f = seal_msg(s2, 2, TETHER_MSG_STDOUT, "for 2", 5);

	/* Rewrite the channel in the header to 1: keys and AAD disagree. */
	f.raw[9] = 1;
	expect_open_fails(con1, f, TETHER_ERR_AUTH);
	tether_seal_free(s2);
	tether_chan_free(con1);
}

Test(chan, frame_for_other_channel_is_protocol_error)
{
	struct tether_seal *s2 = new_sealer(2, TETHER_SEAL_AGENT_TO_CONSOLE);
	struct tether_chan *con1 = new_chan(1, true);

	expect_open_fails(con1, seal_msg(s2, 2, TETHER_MSG_STDOUT, "x", 1),
			  TETHER_ERR_PROTOCOL);
	tether_seal_free(s2);
	tether_chan_free(con1);
}

Test(chan, non_data_frame_is_protocol_error)
{
	struct tether_chan *con = new_chan(1, true);
	uint8_t payload[32] = {0};
	const uint8_t *body;
	struct tether_frame f;
	uint8_t raw[HDR + sizeof(payload)];
	uint8_t msg;
	size_t len;

	/* Hand-built: the decoder would refuse a CTRL frame on channel 1. */
	tether_frame_header_pack(raw, TETHER_FRAME_CTRL, 0, 1, sizeof(payload));
	memcpy(raw + HDR, payload, sizeof(payload));
	f.type = TETHER_FRAME_CTRL;
	f.flags = 0;
	f.channel = 1;
	f.len = sizeof(payload);
	f.raw = raw;
	f.raw_len = sizeof(raw);
	f.payload = raw + HDR;
	cr_assert_eq(tether_chan_open(con, &f, &msg, &body, &len),
		     TETHER_ERR_PROTOCOL);
	tether_chan_free(con);
}

Test(chan, too_short_frame_is_format_error)
{
	struct tether_chan *con = new_chan(1, true);
	uint8_t raw[HDR + TAG + 1];
	const uint8_t *body;
	uint8_t msg;
	size_t n, len;

	/* Anything shorter than message byte + tag cannot be a message. */
	memset(raw, 0, sizeof(raw));
	for (n = 0; n <= TAG; n++) {
		tether_frame_header_pack(raw, TETHER_FRAME_DATA, 0, 1,
					 (uint32_t)n);
		cr_assert_eq(open_raw(con, raw, HDR + n, &msg, &body, &len),
			     TETHER_ERR_FORMAT, "payload of %zu bytes", n);
	}
	tether_chan_free(con);
}

Test(chan, data_over_window_is_protocol_error)
{
	struct tether_seal *s = new_sealer(1, TETHER_SEAL_AGENT_TO_CONSOLE);
	struct tether_chan *con = new_chan(1, true);
	uint8_t *chunk = calloc(1, TETHER_CHANNEL_CHUNK);
	size_t sent = 0;

	cr_assert_not_null(chunk);
	/* Exactly the window is fine... */
	while (sent < TETHER_CHANNEL_WINDOW) {
		expect_open(con,
			    seal_msg(s, 1, TETHER_MSG_STDOUT, chunk,
				     TETHER_CHANNEL_CHUNK),
			    TETHER_MSG_STDOUT, chunk, TETHER_CHANNEL_CHUNK);
		sent += TETHER_CHANNEL_CHUNK;
	}
	/* ...control messages cost nothing... */
	expect_open(con, seal_msg(s, 1, TETHER_MSG_EOF, "\x01", 1),
		    TETHER_MSG_EOF, "\x01", 1);
	expect_open(con, seal_msg(s, 1, TETHER_MSG_STDERR, NULL, 0),
		    TETHER_MSG_STDERR, NULL, 0);
	/* ...one byte more of any data stream is not. */
	expect_open_fails(con, seal_msg(s, 1, TETHER_MSG_STDERR, "!", 1),
			  TETHER_ERR_PROTOCOL);
	free(chunk);
	tether_seal_free(s);
	tether_chan_free(con);
}

Test(chan, single_message_over_window_is_protocol_error)
{
	struct tether_seal *s = new_sealer(1, TETHER_SEAL_CONSOLE_TO_AGENT);
	struct tether_chan *agent = new_chan(1, false);
	uint8_t *chunk = calloc(1, TETHER_CHAN_BODY_MAX);
	size_t sent = 0;

	cr_assert_not_null(chunk);
	while (sent + TETHER_CHAN_BODY_MAX <= TETHER_CHANNEL_WINDOW) {
		expect_open(agent,
			    seal_msg(s, 1, TETHER_MSG_STDIN, chunk,
				     TETHER_CHAN_BODY_MAX),
			    TETHER_MSG_STDIN, chunk, TETHER_CHAN_BODY_MAX);
		sent += TETHER_CHAN_BODY_MAX;
	}
	/* Less than a full body left; a full one overshoots. */
	expect_open_fails(
	    agent,
	    seal_msg(s, 1, TETHER_MSG_STDIN, chunk, TETHER_CHAN_BODY_MAX),
	    TETHER_ERR_PROTOCOL);
	free(chunk);
	tether_seal_free(s);
	tether_chan_free(agent);
}

Test(chan, window_credit_beyond_max_is_protocol_error)
{
	struct tether_seal *s = new_sealer(1, TETHER_SEAL_AGENT_TO_CONSOLE);
	struct tether_chan *con = new_chan(1, true);
	static const uint8_t zero[4] = {0};

	/* Nothing spent yet, so any credit would exceed the window. */
	expect_open(con, seal_u32(s, 1, TETHER_MSG_WINDOW, 0),
		    TETHER_MSG_WINDOW, zero, 4);
	cr_assert_eq(tether_chan_send_window(con), TETHER_CHANNEL_WINDOW);
	expect_open_fails(con, seal_u32(s, 1, TETHER_MSG_WINDOW, 1),
			  TETHER_ERR_PROTOCOL);
	cr_assert_eq(tether_chan_send_window(con), TETHER_CHANNEL_WINDOW);
	tether_seal_free(s);
	tether_chan_free(con);
}

Test(chan, window_credit_huge_is_protocol_error)
{
	struct tether_seal *s = new_sealer(1, TETHER_SEAL_AGENT_TO_CONSOLE);
	struct tether_chan *con = new_chan(1, true);

	/* send_window + credit must not be allowed to wrap. */
	expect_open_fails(con, seal_u32(s, 1, TETHER_MSG_WINDOW, 0xffffffff),
			  TETHER_ERR_PROTOCOL);
	cr_assert_eq(tether_chan_send_window(con), TETHER_CHANNEL_WINDOW);
	tether_seal_free(s);
	tether_chan_free(con);
}

Test(chan, window_body_must_be_four_bytes)
{
	struct tether_seal *s = new_sealer(1, TETHER_SEAL_AGENT_TO_CONSOLE);
	struct tether_chan *con = new_chan(1, true);

	expect_open_fails(con, seal_msg(s, 1, TETHER_MSG_WINDOW, "\0\0\0", 3),
			  TETHER_ERR_FORMAT);
	tether_seal_free(s);
	s = new_sealer(1, TETHER_SEAL_AGENT_TO_CONSOLE);
	tether_chan_free(con);
	con = new_chan(1, true);
	expect_open_fails(con,
			  seal_msg(s, 1, TETHER_MSG_WINDOW, "\0\0\0\0\0", 5),
			  TETHER_ERR_FORMAT);
	tether_seal_free(s);
	tether_chan_free(con);
}

Test(chan, send_refuses_oversized_body_before_touching_link)
{
	struct tether_chan *c = new_chan(1, true);

	/* Checked before the link is used, so no link is needed here. */
	cr_assert_eq(tether_chan_send(c, NULL, TETHER_MSG_STDIN, NULL,
				      TETHER_CHAN_BODY_MAX + 1),
		     TETHER_ERR_TOO_LARGE);
	cr_assert_eq(tether_chan_send_window(c), TETHER_CHANNEL_WINDOW);
	tether_chan_free(c);
}

/* ---- Real links on loopback ------------------------------------------ */

enum scenario {
	SC_EXEC,     /* EXEC, then STDOUT/EOF/EXIT/CLOSE back */
	SC_BULK,     /* bulk STDOUT under window credits */
	SC_PIN,	     /* client pins the wrong fingerprint */
	SC_TOOLARGE, /* client announces an oversized pre-auth frame */
	SC_BADTYPE,  /* client sends a frame of unknown type */
	SC_LIMITS,   /* client probes the send size limits, then closes */
};

struct peer;

struct end {
	struct peer *p;
	struct tether_link *link;
	struct tether_chan *chan;
	bool opened, closed;
	int close_reason;
	char close_text[256];
	size_t rx_data;	 /* STDOUT bytes received and checked */
	size_t tx_data;	 /* STDOUT bytes sent */
	size_t credit;	 /* WINDOW credit received */
	unsigned stalls; /* times the sender ran out of window */
	unsigned drains; /* on_drain calls */
	unsigned frames; /* DATA frames received */
	unsigned pauses; /* times reading was paused */
	bool sent_close, got_close, got_exit, got_eof, got_exec, got_pong;
};

struct peer {
	uv_loop_t loop;
	uv_tcp_t server;
	uv_timer_t deadline;
	uv_timer_t resume; /* restarts a paused console link */
	enum scenario sc;
	size_t bulk_total;
	unsigned pause_every; /* console pauses after every Nth frame */
	bool timed_out;
	struct end console, agent;
};

static char tmpdir[64];
static char cert_path[128];
static char key_path[128];
static char cert_fp[TETHER_TLS_FP_LEN];
static struct tether_tls_ctx *stls;
static struct tether_tls_ctx *ctls;
static struct tether_link_ctx *sctx;
static struct tether_link_ctx *cctx;

static void link_setup(void)
{
	int n;

	init_keys();
	/* A peer that vanishes must not kill the test with SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
	n = snprintf(tmpdir, sizeof(tmpdir), "/tmp/tether-chan-XXXXXX");
	cr_assert(n > 0 && (size_t)n < sizeof(tmpdir));
	cr_assert_not_null(mkdtemp(tmpdir));
	n = snprintf(cert_path, sizeof(cert_path), "%s/relay.crt", tmpdir);
	cr_assert(n > 0 && (size_t)n < sizeof(cert_path));
	n = snprintf(key_path, sizeof(key_path), "%s/relay.key", tmpdir);
	cr_assert(n > 0 && (size_t)n < sizeof(key_path));
	cr_assert_eq(tether_tls_cert_generate(cert_path, key_path, "relay.test",
					      cert_fp),
		     0);
	stls = tether_tls_ctx_new_server(cert_path, key_path);
	ctls = tether_tls_ctx_new_client();
	cr_assert_not_null(stls);
	cr_assert_not_null(ctls);
	sctx = tether_link_ctx_new(stls);
	cctx = tether_link_ctx_new(ctls);
	cr_assert_not_null(sctx);
	cr_assert_not_null(cctx);
}

static void link_teardown(void)
{
	tether_alloc_fail_after(0);
	tether_link_ctx_free(sctx);
	tether_link_ctx_free(cctx);
	tether_tls_ctx_free(stls);
	tether_tls_ctx_free(ctls);
	sctx = cctx = NULL;
	stls = ctls = NULL;
	unlink(cert_path);
	unlink(key_path);
	rmdir(tmpdir);
}

TestSuite(link, .init = link_setup, .fini = link_teardown);

static uint8_t bulk_byte(size_t i)
{
	return (uint8_t)(i * 131 + (i >> 10) * 7);
}

static void maybe_finish(struct peer *p)
{
	if (!p->console.closed || !p->agent.closed)
		return;
	if (!uv_is_closing((uv_handle_t *)&p->server))
		uv_close((uv_handle_t *)&p->server, NULL);
	if (!uv_is_closing((uv_handle_t *)&p->deadline))
		uv_close((uv_handle_t *)&p->deadline, NULL);
	if (!uv_is_closing((uv_handle_t *)&p->resume))
		uv_close((uv_handle_t *)&p->resume, NULL);
}

static void on_close_cb(struct tether_link *l, int reason)
{
	struct end *e = tether_link_data(l);

	e->closed = true;
	e->close_reason = reason;
	snprintf(e->close_text, sizeof(e->close_text), "%s",
		 tether_link_close_reason(l));
	e->link = NULL;
	maybe_finish(e->p);
}

/* Agent side: sends STDOUT until the total, the window or the link stops. */
static void bulk_send(struct end *e)
{
	static uint8_t chunk[TETHER_CHANNEL_CHUNK];
	size_t n, i, before;

	if (e->link == NULL || !tether_link_is_open(e->link))
		return;
	while (e->tx_data < e->p->bulk_total) {
		n = e->p->bulk_total - e->tx_data;
		if (n > sizeof(chunk))
			n = sizeof(chunk);
		for (i = 0; i < n; i++)
			chunk[i] = bulk_byte(e->tx_data + i);
		before = tether_chan_send_window(e->chan);
		if (before < n) {
			/* Refused without spending: wait for WINDOW. */
			cr_assert_eq(tether_chan_send(e->chan, e->link,
						      TETHER_MSG_STDOUT, chunk,
						      n),
				     TETHER_ERR_AGAIN);
			cr_assert_eq(tether_chan_send_window(e->chan), before);
			e->stalls++;
			return;
		}
		if (tether_link_over_high_water(e->link))
			return; /* on_drain resumes */
		cr_assert_eq(tether_chan_send(e->chan, e->link,
					      TETHER_MSG_STDOUT, chunk, n),
			     0);
		cr_assert_eq(tether_chan_send_window(e->chan), before - n);
		e->tx_data += n;
	}
	if (!e->sent_close) {
		cr_assert_eq(tether_chan_send(e->chan, e->link,
					      TETHER_MSG_CLOSE, NULL, 0),
			     0);
		e->sent_close = true;
	}
}

static void send_exec(struct end *e)
{
	static const char *const argv[] = {"sh", "-c", "echo hi"};
	struct tether_buf *b = tether_buf_new(1024);
	json_t *ping;
	size_t i;

	cr_assert_not_null(b);
	ping = json_pack("{s:s}", "t", "ping");
	cr_assert_not_null(ping);
	cr_assert_eq(tether_link_send_json(e->link, ping), 0);
	json_decref(ping);
	cr_assert_eq(tether_buf_put_u32(b, 3), 0);
	for (i = 0; i < 3; i++)
		cr_assert_eq(tether_buf_put_cstring(b, argv[i]), 0);
	cr_assert_eq(tether_chan_send(e->chan, e->link, TETHER_MSG_EXEC,
				      tether_buf_ptr(b), tether_buf_len(b)),
		     0);
	tether_buf_free(b);
}

/*
 * Oversized sends are refused without writing anything.  The last check
 * passes a length that wraps hdr_len + len around to a small number: a
 * bounds check that adds before comparing lets it through to memcpy.
 */
static void probe_limits(struct tether_link *l)
{
	static uint8_t payload[16];
	size_t pending = tether_link_pending(l);
	uint8_t hdr[HDR];

	tether_frame_header_pack(hdr, TETHER_FRAME_CTRL, 0, 0, 0);
	cr_assert_eq(tether_link_send(l, TETHER_FRAME_CTRL, 0, payload,
				      TETHER_FRAME_MAX + 1),
		     TETHER_ERR_TOO_LARGE);
	cr_assert_eq(
	    tether_link_send2(l, hdr, HDR, payload, TETHER_FRAME_MAX + 1),
	    TETHER_ERR_TOO_LARGE);
	cr_assert_eq(tether_link_pending(l), pending);
	cr_assert_eq(
	    tether_link_send2(l, hdr, HDR, payload, SIZE_MAX - HDR + 4),
	    TETHER_ERR_TOO_LARGE);
	tether_link_close(l, 0);
}

static void on_open_cb(struct tether_link *l)
{
	struct end *e = tether_link_data(l);
	struct peer *p = e->p;
	char fp[TETHER_TLS_FP_LEN];
	uint8_t hdr[HDR];

	e->opened = true;
	cr_assert(tether_link_is_open(l));
	if (e == &p->console) {
		cr_assert_eq(tether_link_peer_fingerprint(l, fp), 0);
		cr_assert_str_eq(fp, cert_fp);
	} else {
		cr_assert_eq(strncmp(tether_link_peer(l), "127.0.0.1:", 10), 0,
			     "%s", tether_link_peer(l));
	}
	/* As after hello: the 64 KiB chunks need the full limit. */
	if (p->sc != SC_TOOLARGE && p->sc != SC_BADTYPE)
		tether_link_set_max_payload(l, TETHER_FRAME_MAX);
	if (e == &p->console && p->sc == SC_EXEC)
		send_exec(e);
	if (e == &p->agent && p->sc == SC_BULK)
		bulk_send(e);
	if (e == &p->console && p->sc == SC_TOOLARGE) {
		/* Only the header: the receiver must not wait for more. */
		tether_frame_header_pack(hdr, TETHER_FRAME_CTRL, 0, 0,
					 TETHER_FRAME_MAX_PREAUTH + 1);
		cr_assert_eq(tether_link_send_raw(l, hdr, sizeof(hdr)), 0);
	}
	if (e == &p->console && p->sc == SC_LIMITS)
		probe_limits(l);
	if (e == &p->console && p->sc == SC_BADTYPE) {
		tether_frame_header_pack(hdr, 9, 0, 0, 0);
		cr_assert_eq(tether_link_send_raw(l, hdr, sizeof(hdr)), 0);
	}
}

static void on_resume(uv_timer_t *t)
{
	struct peer *p = t->data;

	if (p->console.link != NULL)
		tether_link_resume(p->console.link);
}

static void agent_handle_exec(struct end *e, const uint8_t *body, size_t len)
{
	static const char *const want[] = {"sh", "-c", "echo hi"};
	static const uint8_t exit_body[] = {0, 0, 0, 0, 0};
	struct tether_buf *b = tether_buf_from(body, len);
	uint32_t argc, i;
	char *arg;

	cr_assert_not_null(b);
	cr_assert_eq(tether_buf_get_u32(b, &argc), 0);
	cr_assert_eq(argc, 3);
	for (i = 0; i < argc; i++) {
		cr_assert_eq(tether_buf_get_cstring(b, &arg, NULL, 4096), 0);
		cr_assert_str_eq(arg, want[i]);
		tether_free(arg);
	}
	cr_assert_eq(tether_buf_get_end(b), 0);
	tether_buf_free(b);
	e->got_exec = true;
	cr_assert_eq(
	    tether_chan_send(e->chan, e->link, TETHER_MSG_STDOUT, "hi\n", 3),
	    0);
	cr_assert_eq(tether_chan_send_u8(e->chan, e->link, TETHER_MSG_EOF, 1),
		     0);
	cr_assert_eq(tether_chan_send(e->chan, e->link, TETHER_MSG_EXIT,
				      exit_body, sizeof(exit_body)),
		     0);
	cr_assert_eq(
	    tether_chan_send(e->chan, e->link, TETHER_MSG_CLOSE, NULL, 0), 0);
}

static void handle_ctrl(struct end *e, const struct tether_frame *f)
{
	json_t *msg, *pong;
	const char *t;

	msg = json_loadb((const char *)f->payload, f->len, 0, NULL);
	cr_assert_not_null(msg);
	t = json_string_value(json_object_get(msg, "t"));
	cr_assert_not_null(t);
	if (strcmp(t, "ping") == 0) {
		pong = json_pack("{s:s}", "t", "pong");
		cr_assert_not_null(pong);
		cr_assert_eq(tether_link_send_json(e->link, pong), 0);
		json_decref(pong);
	} else {
		cr_assert_str_eq(t, "pong");
		e->got_pong = true;
	}
	json_decref(msg);
}

static void on_frame_cb(struct tether_link *l, const struct tether_frame *f)
{
	struct end *e = tether_link_data(l);
	struct peer *p = e->p;
	const uint8_t *body;
	uint8_t msg;
	size_t len, i;
	uint32_t credit;

	if (f->type == TETHER_FRAME_CTRL) {
		handle_ctrl(e, f);
		return;
	}
	cr_assert_eq(f->type, TETHER_FRAME_DATA);
	cr_assert_eq(f->channel, tether_chan_id(e->chan));
	cr_assert_eq(tether_chan_open(e->chan, f, &msg, &body, &len), 0);
	e->frames++;
	if (e == &p->console && p->pause_every > 0 &&
	    e->frames % p->pause_every == 0) {
		/* Stop reading mid-stream; a timer picks it up again. */
		tether_link_pause(l);
		e->pauses++;
		cr_assert_eq(uv_timer_start(&p->resume, on_resume, 1, 0), 0);
	}
	switch (msg) {
	case TETHER_MSG_EXEC:
		cr_assert_eq(e, &p->agent);
		agent_handle_exec(e, body, len);
		break;
	case TETHER_MSG_STDOUT:
		cr_assert_eq(e, &p->console);
		if (p->sc == SC_EXEC) {
			cr_assert_eq(len, 3);
			cr_assert(memcmp(body, "hi\n", 3) == 0);
		} else {
			cr_assert_leq(len, TETHER_CHANNEL_CHUNK);
			for (i = 0; i < len; i++)
				cr_assert_eq(body[i], bulk_byte(e->rx_data + i),
					     "byte %zu", e->rx_data + i);
		}
		e->rx_data += len;
		/* Written out: hand the credit back. */
		cr_assert_eq(tether_chan_consumed(e->chan, l, len), 0);
		break;
	case TETHER_MSG_EOF:
		cr_assert_eq(len, 1);
		cr_assert_eq(body[0], 1);
		e->got_eof = true;
		break;
	case TETHER_MSG_EXIT:
		cr_assert_eq(len, 5);
		e->got_exit = true;
		break;
	case TETHER_MSG_WINDOW:
		cr_assert_eq(len, 4);
		credit = (uint32_t)body[0] << 24 | (uint32_t)body[1] << 16 |
			 (uint32_t)body[2] << 8 | body[3];
		e->credit += credit;
		bulk_send(e);
		break;
	case TETHER_MSG_CLOSE:
		cr_assert_eq(len, 0);
		e->got_close = true;
		/* The console ends the conversation, as tether does. */
		tether_link_close(l, 0);
		cr_assert_not(tether_link_is_open(l));
		/* Closing twice is harmless and sending is refused. */
		tether_link_close(l, TETHER_ERR_INTERNAL);
		cr_assert_eq(tether_link_send(l, TETHER_FRAME_CTRL, 0, "{}", 2),
			     TETHER_ERR_CLOSED);
		cr_assert_eq(
		    tether_chan_send(e->chan, l, TETHER_MSG_CLOSE, NULL, 0),
		    TETHER_ERR_CLOSED);
		break;
	default:
		cr_assert_fail("unexpected message %u", msg);
	}
}

static void on_drain_cb(struct tether_link *l)
{
	struct end *e = tether_link_data(l);

	e->drains++;
	if (e == &e->p->agent && e->p->sc == SC_BULK)
		bulk_send(e);
}

static const struct tether_link_cbs cbs = {
    .on_open = on_open_cb,
    .on_frame = on_frame_cb,
    .on_drain = on_drain_cb,
    .on_close = on_close_cb,
};

static void on_connection(uv_stream_t *server, int status)
{
	struct peer *p = server->data;

	cr_assert_eq(status, 0);
	cr_assert_null(p->agent.link, "second connection");
	p->agent.link = tether_link_accept(server, sctx, &cbs, &p->agent);
	cr_assert_not_null(p->agent.link);
}

static void on_deadline(uv_timer_t *t)
{
	struct peer *p = t->data;

	p->timed_out = true;
	if (p->console.link != NULL)
		tether_link_close(p->console.link, TETHER_ERR_INTERNAL);
	if (p->agent.link != NULL)
		tether_link_close(p->agent.link, TETHER_ERR_INTERNAL);
	if (p->agent.link == NULL)
		p->agent.closed = true; /* never connected */
	maybe_finish(p);
}

/* Runs one scenario to the end: both links closed, loop empty. */
static void run_pair_paused(struct peer *p, enum scenario sc, size_t bulk_total,
			    unsigned pause_every, const char *pin)
{
	struct sockaddr_in addr;
	struct sockaddr_storage ss;
	int namelen = sizeof(ss), port;

	memset(p, 0, sizeof(*p));
	p->sc = sc;
	p->bulk_total = bulk_total;
	p->pause_every = pause_every;
	p->console.p = p->agent.p = p;
	p->console.chan = new_chan(1, true);
	p->agent.chan = new_chan(1, false);
	cr_assert_eq(uv_loop_init(&p->loop), 0);
	cr_assert_eq(uv_tcp_init(&p->loop, &p->server), 0);
	p->server.data = p;
	cr_assert_eq(uv_ip4_addr("127.0.0.1", 0, &addr), 0);
	cr_assert_eq(uv_tcp_bind(&p->server, (struct sockaddr *)&addr, 0), 0);
	cr_assert_eq(uv_listen((uv_stream_t *)&p->server, 4, on_connection), 0);
	cr_assert_eq(
	    uv_tcp_getsockname(&p->server, (struct sockaddr *)&ss, &namelen),
	    0);
	port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	cr_assert_eq(uv_timer_init(&p->loop, &p->deadline), 0);
	p->deadline.data = p;
	cr_assert_eq(uv_timer_start(&p->deadline, on_deadline, 60000, 0), 0);
	cr_assert_eq(uv_timer_init(&p->loop, &p->resume), 0);
	p->resume.data = p;
	p->console.link = tether_link_connect(&p->loop, cctx, "127.0.0.1", port,
					      pin, &cbs, &p->console);
	cr_assert_not_null(p->console.link);
	cr_assert_eq(uv_run(&p->loop, UV_RUN_DEFAULT), 0);
	cr_assert_not(p->timed_out, "scenario timed out");
	/* Every handle, link ones included, was closed. */
	cr_assert_eq(uv_loop_close(&p->loop), 0);
}

static void run_pair(struct peer *p, enum scenario sc, size_t bulk_total,
		     const char *pin)
{
	run_pair_paused(p, sc, bulk_total, 0, pin);
}

static void free_pair(struct peer *p)
{
	tether_chan_free(p->console.chan);
	tether_chan_free(p->agent.chan);
}

Test(link, exec_exchange_and_close_on_both_ends)
{
	struct peer p;

	run_pair(&p, SC_EXEC, 0, cert_fp);
	cr_assert(p.console.opened && p.agent.opened);
	cr_assert(p.agent.got_exec);
	cr_assert(p.console.got_pong);
	cr_assert_eq(p.console.rx_data, 3);
	cr_assert(p.console.got_eof && p.console.got_exit);
	cr_assert(p.console.got_close);
	cr_assert(p.console.closed && p.agent.closed);
	/* The console closed in order; the agent saw the peer go. */
	cr_assert_eq(p.console.close_reason, 0, "console: %s",
		     p.console.close_text);
	cr_assert_eq(p.agent.close_reason, TETHER_ERR_CLOSED, "agent: %s",
		     p.agent.close_text);
	free_pair(&p);
}

/*
 * 1 MiB of STDOUT in 64 KiB chunks.  The console credits it back with one
 * WINDOW of 1 MiB (a quarter window), which reaches the agent before the
 * console's close does, so the agent ends with its full window back.
 */
Test(link, bulk_1mib_with_window_credit)
{
	struct peer p;

	run_pair(&p, SC_BULK, MIB, cert_fp);
	cr_assert_eq(p.agent.tx_data, MIB);
	cr_assert_eq(p.console.rx_data, MIB);
	cr_assert(p.console.got_close);
	cr_assert_eq(p.agent.stalls, 0);
	cr_assert_eq(p.agent.credit, MIB);
	cr_assert_eq(tether_chan_send_window(p.agent.chan),
		     TETHER_CHANNEL_WINDOW);
	cr_assert_eq(p.console.close_reason, 0, "console: %s",
		     p.console.close_text);
	cr_assert_eq(p.agent.close_reason, TETHER_ERR_CLOSED, "agent: %s",
		     p.agent.close_text);
	free_pair(&p);
}

/*
 * More than a window's worth: the agent must stall on an empty window and
 * be restarted by the console's WINDOW credits, with no byte lost.
 */
Test(link, bulk_beyond_window_needs_credit)
{
	const size_t total = TETHER_CHANNEL_WINDOW + 2 * MIB + 12345;
	const size_t step = TETHER_CHANNEL_WINDOW / 4;
	struct peer p;

	run_pair(&p, SC_BULK, total, cert_fp);
	cr_assert_eq(p.agent.tx_data, total);
	cr_assert_eq(p.console.rx_data, total);
	cr_assert(p.console.got_close);
	cr_assert_geq(p.agent.stalls, 1);
	/* Credits come in quarter-window steps; the tail stays unacked. */
	cr_assert_eq(p.agent.credit, total - total % step);
	cr_assert_eq(tether_chan_send_window(p.agent.chan),
		     TETHER_CHANNEL_WINDOW - total % step);
	free_pair(&p);
}

Test(link, pause_resume_delivers_everything)
{
	const size_t total = 2 * MIB + 777;
	struct peer p;

	run_pair_paused(&p, SC_BULK, total, 3, cert_fp);
	cr_assert_eq(p.console.rx_data, total);
	cr_assert(p.console.got_close);
	cr_assert_geq(p.console.pauses, 10);
	cr_assert_eq(p.console.close_reason, 0, "console: %s",
		     p.console.close_text);
	free_pair(&p);
}

Test(link, pin_mismatch_closes_before_open)
{
	static const char wrong[] =
	    "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
	struct peer p;

	run_pair(&p, SC_PIN, 0, wrong);
	cr_assert_not(p.console.opened);
	cr_assert(p.console.closed);
	cr_assert_eq(p.console.close_reason, TETHER_ERR_FINGERPRINT, "%s",
		     p.console.close_text);
	cr_assert_not_null(strstr(p.console.close_text, cert_fp), "%s",
			   p.console.close_text);
	free_pair(&p);
}

Test(link, oversized_preauth_frame_gets_error_and_close)
{
	struct peer p;

	run_pair(&p, SC_TOOLARGE, 0, cert_fp);
	cr_assert(p.console.opened && p.agent.opened);
	cr_assert_eq(p.agent.close_reason, TETHER_ERR_TOO_LARGE, "agent: %s",
		     p.agent.close_text);
	/* The ERROR frame reached the console and became its reason. */
	cr_assert_eq(p.console.close_reason, TETHER_ERR_REFUSED, "console: %s",
		     p.console.close_text);
	cr_assert_str_eq(p.console.close_text, "frame too large");
	free_pair(&p);
}

static void refused_on_close(struct tether_link *l, int reason)
{
	struct end *e = tether_link_data(l);

	e->closed = true;
	e->close_reason = reason;
	snprintf(e->close_text, sizeof(e->close_text), "%s",
		 tether_link_close_reason(l));
}

static void refused_on_open(struct tether_link *l)
{
	struct end *e = tether_link_data(l);

	e->opened = true;
}

Test(link, connect_refused_reports_on_close)
{
	static const struct tether_link_cbs rcbs = {
	    .on_open = refused_on_open,
	    .on_frame = on_frame_cb,
	    .on_close = refused_on_close,
	};
	struct sockaddr_storage ss;
	struct sockaddr_in addr;
	int namelen = sizeof(ss), port;
	struct tether_link *l;
	uv_tcp_t probe;
	uv_loop_t loop;
	struct end e;

	/* Borrow a free port, then give it back so nobody listens there. */
	memset(&e, 0, sizeof(e));
	cr_assert_eq(uv_loop_init(&loop), 0);
	cr_assert_eq(uv_tcp_init(&loop, &probe), 0);
	cr_assert_eq(uv_ip4_addr("127.0.0.1", 0, &addr), 0);
	cr_assert_eq(uv_tcp_bind(&probe, (struct sockaddr *)&addr, 0), 0);
	cr_assert_eq(
	    uv_tcp_getsockname(&probe, (struct sockaddr *)&ss, &namelen), 0);
	port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	uv_close((uv_handle_t *)&probe, NULL);
	cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);

	l = tether_link_connect(&loop, cctx, "127.0.0.1", port, cert_fp, &rcbs,
				&e);
	cr_assert_not_null(l);
	cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
	cr_assert_not(e.opened);
	cr_assert(e.closed);
	cr_assert_eq(e.close_reason, TETHER_ERR_SYS, "%s", e.close_text);
	cr_assert_not_null(strstr(e.close_text, "cannot connect"), "%s",
			   e.close_text);
	cr_assert_eq(uv_loop_close(&loop), 0);
}

Test(link, unknown_frame_type_gets_error_and_close)
{
	struct peer p;

	run_pair(&p, SC_BADTYPE, 0, cert_fp);
	cr_assert_eq(p.agent.close_reason, TETHER_ERR_PROTOCOL, "agent: %s",
		     p.agent.close_text);
	cr_assert_eq(p.console.close_reason, TETHER_ERR_REFUSED, "console: %s",
		     p.console.close_text);
	cr_assert_str_eq(p.console.close_text, "malformed frame");
	free_pair(&p);
}

/*
 * Send size limits on an open link, including a length for which
 * hdr_len + len wraps: it must be refused, not handed to memcpy.
 */
Test(link, send2_rejects_wrapping_length)
{
	struct peer p;

	run_pair(&p, SC_LIMITS, 0, cert_fp);
	cr_assert(p.console.opened);
	cr_assert_eq(p.console.close_reason, 0, "console: %s",
		     p.console.close_text);
	free_pair(&p);
}
