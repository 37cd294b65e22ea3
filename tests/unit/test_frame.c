/*
 * Frame codec tests (docs/protocol.md, "Frames").  The decoder is the first
 * thing hostile bytes meet, so besides round trips we check that it judges
 * a frame by its header alone: an oversized or malformed header is refused
 * before any payload arrives, and nothing is consumed until a whole valid
 * frame is there.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include <tether/alloc.h>
#include <tether/buf.h>
#include <tether/err.h>
#include <tether/frame.h>

#define HDR TETHER_FRAME_HEADER_LEN

static void fini(void)
{
	tether_alloc_fail_after(0);
}

TestSuite(frame, .fini = fini);

static struct tether_buf *new_buf(size_t max)
{
	struct tether_buf *b = tether_buf_new(max);

	cr_assert_not_null(b);
	return b;
}

/* Builds a header by hand, independently of tether_frame_header_pack. */
static void raw_header(uint8_t h[HDR], uint32_t len, uint8_t type,
		       uint8_t flags, uint32_t channel)
{
	h[0] = (uint8_t)(len >> 24);
	h[1] = (uint8_t)(len >> 16);
	h[2] = (uint8_t)(len >> 8);
	h[3] = (uint8_t)len;
	h[4] = type;
	h[5] = flags;
	h[6] = (uint8_t)(channel >> 24);
	h[7] = (uint8_t)(channel >> 16);
	h[8] = (uint8_t)(channel >> 8);
	h[9] = (uint8_t)channel;
}

/* Decodes one frame and checks every field against what was encoded. */
static void expect_frame(struct tether_buf *in, size_t max, uint8_t type,
			 uint32_t channel, const void *payload, size_t len)
{
	const uint8_t *start = tether_buf_ptr(in);
	size_t before = tether_buf_len(in);
	struct tether_frame f;

	cr_assert_eq(tether_frame_decode(in, max, &f), 0);
	cr_assert_eq(f.type, type);
	cr_assert_eq(f.flags, 0);
	cr_assert_eq(f.channel, channel);
	cr_assert_eq(f.len, len);
	cr_assert_eq(f.raw, start);
	cr_assert_eq(f.raw_len, HDR + len);
	cr_assert_eq(f.payload, f.raw + HDR);
	if (len > 0)
		cr_assert(memcmp(f.payload, payload, len) == 0);
	cr_assert_eq(tether_buf_len(in), before - f.raw_len);
}

/* Header-only decode that must fail with err and consume nothing. */
static void expect_header_error(uint32_t len, uint8_t type, uint8_t flags,
				uint32_t channel, size_t max, int err)
{
	uint8_t h[HDR];
	struct tether_buf *in;
	struct tether_frame f;
	int r;

	raw_header(h, len, type, flags, channel);
	in = tether_buf_from(h, sizeof(h));
	cr_assert_not_null(in);
	r = tether_frame_decode(in, max, &f);
	cr_assert_eq(r, err,
		     "len %u type %u flags %u channel %u: got %d, want %d", len,
		     type, flags, channel, r, err);
	cr_assert_eq(tether_buf_len(in), HDR);
	cr_assert_null(f.raw);
	cr_assert_null(f.payload);
	cr_assert_eq(f.raw_len, 0);
	tether_buf_free(in);
}

Test(frame, header_pack_exact_bytes)
{
	static const uint8_t want[HDR] = {0x00, 0x01, 0x02, 0x03, 0x02,
					  0x00, 0xa0, 0xb1, 0xc2, 0xd3};
	uint8_t h[HDR];

	tether_frame_header_pack(h, TETHER_FRAME_DATA, 0, 0xa0b1c2d3,
				 0x00010203);
	cr_assert(memcmp(h, want, HDR) == 0);
}

Test(frame, encode_exact_bytes)
{
	static const uint8_t want[] = {0x00, 0x00, 0x00, 0x03, 0x02, 0x00, 0x01,
				       0x02, 0x03, 0x04, 'a',  'b',  'c'};
	struct tether_buf *out = new_buf(1024);

	cr_assert_eq(tether_frame_encode(out, TETHER_FRAME_DATA, 0, 0x01020304,
					 "abc", 3),
		     0);
	cr_assert_eq(tether_buf_len(out), sizeof(want));
	cr_assert(memcmp(tether_buf_ptr(out), want, sizeof(want)) == 0);
	tether_buf_free(out);
}

Test(frame, round_trip_ctrl)
{
	static const char hello[] =
	    "{\"t\":\"hello\",\"role\":\"agent\",\"version\":1}";
	struct tether_buf *b = new_buf(1024);

	cr_assert_eq(tether_frame_encode(b, TETHER_FRAME_CTRL, 0, 0, hello,
					 strlen(hello)),
		     0);
	expect_frame(b, TETHER_FRAME_MAX_PREAUTH, TETHER_FRAME_CTRL, 0, hello,
		     strlen(hello));
	cr_assert_eq(tether_buf_len(b), 0);
	tether_buf_free(b);
}

Test(frame, round_trip_data)
{
	struct tether_buf *b = new_buf(TETHER_FRAME_MAX + HDR);
	uint8_t *payload = malloc(TETHER_FRAME_MAX);
	size_t i;

	cr_assert_not_null(payload);
	for (i = 0; i < TETHER_FRAME_MAX; i++)
		payload[i] = (uint8_t)(i * 31 + (i >> 8));
	cr_assert_eq(tether_frame_encode(b, TETHER_FRAME_DATA, 0, 0xffffffff,
					 payload, 1000),
		     0);
	expect_frame(b, TETHER_FRAME_MAX, TETHER_FRAME_DATA, 0xffffffff,
		     payload, 1000);
	/* The largest allowed frame goes through whole. */
	cr_assert_eq(tether_frame_encode(b, TETHER_FRAME_DATA, 0, 1, payload,
					 TETHER_FRAME_MAX),
		     0);
	expect_frame(b, TETHER_FRAME_MAX, TETHER_FRAME_DATA, 1, payload,
		     TETHER_FRAME_MAX);
	free(payload);
	tether_buf_free(b);
}

Test(frame, round_trip_error)
{
	struct tether_buf *b = new_buf(1024);

	cr_assert_eq(tether_frame_encode(b, TETHER_FRAME_ERROR, 0, 0,
					 "invalid token", 13),
		     0);
	expect_frame(b, TETHER_FRAME_MAX_PREAUTH, TETHER_FRAME_ERROR, 0,
		     "invalid token", 13);
	tether_buf_free(b);
}

Test(frame, zero_length_payload)
{
	struct tether_buf *b = new_buf(64);
	struct tether_frame f;

	cr_assert_eq(tether_frame_encode(b, TETHER_FRAME_CTRL, 0, 0, NULL, 0),
		     0);
	cr_assert_eq(tether_buf_len(b), HDR);
	cr_assert_eq(tether_frame_decode(b, TETHER_FRAME_MAX, &f), 0);
	cr_assert_eq(f.len, 0);
	cr_assert_eq(f.raw_len, HDR);
	cr_assert_eq(tether_buf_len(b), 0);
	/* The next decode sees an empty buffer, not a phantom frame. */
	cr_assert_eq(tether_frame_decode(b, TETHER_FRAME_MAX, &f),
		     TETHER_ERR_INCOMPLETE);
	tether_buf_free(b);
}

Test(frame, back_to_back_frames_decode_in_order)
{
	struct tether_buf *b = new_buf(1024);
	struct tether_frame f;

	cr_assert_eq(tether_frame_encode(b, TETHER_FRAME_CTRL, 0, 0,
					 "{\"t\":\"ping\"}", 12),
		     0);
	cr_assert_eq(tether_frame_encode(b, TETHER_FRAME_DATA, 0, 5, "xyz", 3),
		     0);
	cr_assert_eq(tether_frame_encode(b, TETHER_FRAME_DATA, 0, 6, NULL, 0),
		     0);
	cr_assert_eq(tether_frame_encode(b, TETHER_FRAME_ERROR, 0, 0, "bye", 3),
		     0);
	/* Plus the first half of a fifth header. */
	cr_assert_eq(tether_buf_put(b, "\x00\x00\x00\x01\x01", 5), 0);
	expect_frame(b, 64, TETHER_FRAME_CTRL, 0, "{\"t\":\"ping\"}", 12);
	expect_frame(b, 64, TETHER_FRAME_DATA, 5, "xyz", 3);
	expect_frame(b, 64, TETHER_FRAME_DATA, 6, NULL, 0);
	expect_frame(b, 64, TETHER_FRAME_ERROR, 0, "bye", 3);
	cr_assert_eq(tether_frame_decode(b, 64, &f), TETHER_ERR_INCOMPLETE);
	cr_assert_eq(tether_buf_len(b), 5);
	tether_buf_free(b);
}

/*
 * Every proper prefix of a valid frame is incomplete and consumes nothing,
 * both from a read-only view of the prefix and when the frame trickles into
 * a growing buffer one byte at a time.
 */
Test(frame, every_prefix_is_incomplete)
{
	static const char payload[] = "{\"t\":\"welcome\",\"version\":1}";
	uint8_t frame[HDR + sizeof(payload) - 1];
	struct tether_buf *ro, *grow = new_buf(1024);
	struct tether_frame f;
	size_t n;

	raw_header(frame, sizeof(payload) - 1, TETHER_FRAME_CTRL, 0, 0);
	memcpy(frame + HDR, payload, sizeof(payload) - 1);
	for (n = 0; n < sizeof(frame); n++) {
		ro = tether_buf_from(frame, n);
		cr_assert_not_null(ro);
		cr_assert_eq(tether_frame_decode(ro, TETHER_FRAME_MAX, &f),
			     TETHER_ERR_INCOMPLETE, "prefix %zu", n);
		cr_assert_eq(tether_buf_len(ro), n);
		cr_assert_null(f.raw);
		tether_buf_free(ro);

		cr_assert_eq(tether_frame_decode(grow, TETHER_FRAME_MAX, &f),
			     TETHER_ERR_INCOMPLETE, "trickle %zu", n);
		cr_assert_eq(tether_buf_len(grow), n);
		cr_assert_eq(tether_buf_put_u8(grow, frame[n]), 0);
	}
	expect_frame(grow, TETHER_FRAME_MAX, TETHER_FRAME_CTRL, 0, payload,
		     sizeof(payload) - 1);
	tether_buf_free(grow);
}

Test(frame, too_large_from_header_alone)
{
	/* Pre-auth: 16 KiB is fine (still incomplete), one more is not. */
	expect_header_error(TETHER_FRAME_MAX_PREAUTH, TETHER_FRAME_CTRL, 0, 0,
			    TETHER_FRAME_MAX_PREAUTH, TETHER_ERR_INCOMPLETE);
	expect_header_error(TETHER_FRAME_MAX_PREAUTH + 1, TETHER_FRAME_CTRL, 0,
			    0, TETHER_FRAME_MAX_PREAUTH, TETHER_ERR_TOO_LARGE);
	expect_header_error(TETHER_FRAME_MAX_PREAUTH + 1, TETHER_FRAME_DATA, 0,
			    1, TETHER_FRAME_MAX_PREAUTH, TETHER_ERR_TOO_LARGE);
	/* The same header is acceptable once the limit is raised. */
	expect_header_error(TETHER_FRAME_MAX_PREAUTH + 1, TETHER_FRAME_CTRL, 0,
			    0, TETHER_FRAME_MAX, TETHER_ERR_INCOMPLETE);
	expect_header_error(TETHER_FRAME_MAX, TETHER_FRAME_DATA, 0, 1,
			    TETHER_FRAME_MAX, TETHER_ERR_INCOMPLETE);
	expect_header_error(TETHER_FRAME_MAX + 1, TETHER_FRAME_DATA, 0, 1,
			    TETHER_FRAME_MAX, TETHER_ERR_TOO_LARGE);
	expect_header_error(0xffffffff, TETHER_FRAME_DATA, 0, 1,
			    TETHER_FRAME_MAX, TETHER_ERR_TOO_LARGE);
	/* A caller's larger max never lifts the protocol's hard cap. */
	expect_header_error(TETHER_FRAME_MAX + 1, TETHER_FRAME_DATA, 0, 1,
			    SIZE_MAX, TETHER_ERR_TOO_LARGE);
	expect_header_error(1, TETHER_FRAME_CTRL, 0, 0, 0,
			    TETHER_ERR_TOO_LARGE);
}

Test(frame, decode_at_exact_preauth_limit)
{
	struct tether_buf *b = new_buf(TETHER_FRAME_MAX + HDR);
	uint8_t *payload = calloc(1, TETHER_FRAME_MAX_PREAUTH + 1);

	cr_assert_not_null(payload);
	cr_assert_eq(tether_frame_encode(b, TETHER_FRAME_CTRL, 0, 0, payload,
					 TETHER_FRAME_MAX_PREAUTH),
		     0);
	expect_frame(b, TETHER_FRAME_MAX_PREAUTH, TETHER_FRAME_CTRL, 0, payload,
		     TETHER_FRAME_MAX_PREAUTH);
	free(payload);
	tether_buf_free(b);
}

Test(frame, protocol_error_unknown_type)
{
	expect_header_error(0, 0, 0, 0, 64, TETHER_ERR_PROTOCOL);
	expect_header_error(0, 4, 0, 0, 64, TETHER_ERR_PROTOCOL);
	expect_header_error(0, 4, 0, 1, 64, TETHER_ERR_PROTOCOL);
	expect_header_error(5, 0xff, 0, 0, 64, TETHER_ERR_PROTOCOL);
}

Test(frame, protocol_error_nonzero_flags)
{
	expect_header_error(0, TETHER_FRAME_CTRL, 1, 0, 64,
			    TETHER_ERR_PROTOCOL);
	expect_header_error(3, TETHER_FRAME_DATA, 0x80, 1, 64,
			    TETHER_ERR_PROTOCOL);
	expect_header_error(3, TETHER_FRAME_ERROR, 0xff, 0, 64,
			    TETHER_ERR_PROTOCOL);
}

Test(frame, protocol_error_channel_mismatch)
{
	expect_header_error(0, TETHER_FRAME_CTRL, 0, 1, 64,
			    TETHER_ERR_PROTOCOL);
	expect_header_error(0, TETHER_FRAME_CTRL, 0, 0x80000000, 64,
			    TETHER_ERR_PROTOCOL);
	expect_header_error(0, TETHER_FRAME_ERROR, 0, 7, 64,
			    TETHER_ERR_PROTOCOL);
	expect_header_error(4, TETHER_FRAME_DATA, 0, 0, 64,
			    TETHER_ERR_PROTOCOL);
}

Test(frame, error_fields_cleared_on_failure)
{
	uint8_t frame[HDR + 2];
	struct tether_buf *in;
	struct tether_frame f;

	/* A stale frame in f must not survive a failed decode. */
	raw_header(frame, 2, TETHER_FRAME_DATA, 0, 9);
	frame[HDR] = 'h';
	frame[HDR + 1] = 'i';
	in = tether_buf_from(frame, sizeof(frame) - 1);
	cr_assert_not_null(in);
	memset(&f, 0xa5, sizeof(f));
	cr_assert_eq(tether_frame_decode(in, 64, &f), TETHER_ERR_INCOMPLETE);
	cr_assert_eq(f.type, 0);
	cr_assert_eq(f.channel, 0);
	cr_assert_eq(f.len, 0);
	cr_assert_null(f.payload);
	cr_assert_null(f.raw);
	cr_assert_eq(f.raw_len, 0);
	tether_buf_free(in);
}

Test(frame, decode_from_read_only_buffer)
{
	uint8_t frame[HDR + 2 + HDR];
	struct tether_buf *in;
	struct tether_frame f;

	raw_header(frame, 2, TETHER_FRAME_DATA, 0, 3);
	frame[HDR] = 'o';
	frame[HDR + 1] = 'k';
	raw_header(frame + HDR + 2, 0, TETHER_FRAME_CTRL, 0, 0);
	in = tether_buf_from(frame, sizeof(frame));
	cr_assert_not_null(in);
	cr_assert_eq(tether_frame_decode(in, 64, &f), 0);
	cr_assert_eq(f.raw, frame);
	cr_assert_eq(f.payload, frame + HDR);
	cr_assert_eq(f.channel, 3);
	cr_assert_eq(tether_frame_decode(in, 64, &f), 0);
	cr_assert_eq(f.raw, frame + HDR + 2);
	cr_assert_eq(f.type, TETHER_FRAME_CTRL);
	cr_assert_eq(tether_buf_len(in), 0);
	tether_buf_free(in);
}

Test(frame, encode_refuses_over_max)
{
	struct tether_buf *b = new_buf(TETHER_BUF_SIZE_MAX);
	uint8_t *payload = calloc(1, TETHER_FRAME_MAX + 1);

	cr_assert_not_null(payload);
	cr_assert_eq(tether_frame_encode(b, TETHER_FRAME_DATA, 0, 1, payload,
					 TETHER_FRAME_MAX + 1),
		     TETHER_ERR_TOO_LARGE);
	cr_assert_eq(
	    tether_frame_encode(b, TETHER_FRAME_DATA, 0, 1, payload, SIZE_MAX),
	    TETHER_ERR_TOO_LARGE);
	cr_assert_eq(tether_buf_len(b), 0);
	free(payload);
	tether_buf_free(b);
}

Test(frame, encode_refuses_bad_header)
{
	struct tether_buf *b = new_buf(1024);

	cr_assert_eq(tether_frame_encode(b, TETHER_FRAME_DATA, 0, 0, "x", 1),
		     TETHER_ERR_PROTOCOL);
	cr_assert_eq(tether_frame_encode(b, TETHER_FRAME_CTRL, 0, 2, "x", 1),
		     TETHER_ERR_PROTOCOL);
	cr_assert_eq(tether_frame_encode(b, TETHER_FRAME_CTRL, 1, 0, "x", 1),
		     TETHER_ERR_PROTOCOL);
	cr_assert_eq(tether_frame_encode(b, 9, 0, 0, "x", 1),
		     TETHER_ERR_PROTOCOL);
	cr_assert_eq(tether_buf_len(b), 0);
	tether_buf_free(b);
}

Test(frame, encode_into_full_buffer_leaves_it_unchanged)
{
	struct tether_buf *b = new_buf(HDR + 8);

	cr_assert_eq(tether_buf_put(b, "ab", 2), 0);
	/* Header fits, payload would not: nothing may be appended. */
	cr_assert_eq(
	    tether_frame_encode(b, TETHER_FRAME_CTRL, 0, 0, "1234567", 7),
	    TETHER_ERR_TOO_LARGE);
	cr_assert_eq(tether_buf_len(b), 2);
	cr_assert_eq(
	    tether_frame_encode(b, TETHER_FRAME_CTRL, 0, 0, "123456", 6), 0);
	cr_assert_eq(tether_buf_len(b), HDR + 8);
	tether_buf_free(b);
}

/*
 * Out of memory halfway through an encode must not leave a header without
 * its payload in out: whoever flushes out next would send a header that
 * swallows the following frame.  The buffer is first grown to 256 bytes
 * (room for a header but not the payload), so the next allocation is the
 * one the payload needs, and that one fails.
 */
Test(frame, encode_nomem_leaves_buffer_unchanged)
{
	struct tether_buf *b = new_buf(4096);
	uint8_t payload[1000];
	size_t left;
	int r;

	memset(payload, 'p', sizeof(payload));
	cr_assert_eq(tether_buf_put(b, payload, 100), 0);
	cr_assert_eq(tether_buf_consume(b, 100), 0);
	tether_alloc_fail_after(1);
	r = tether_frame_encode(b, TETHER_FRAME_DATA, 0, 1, payload,
				sizeof(payload));
	tether_alloc_fail_after(0);
	left = tether_buf_len(b);
	tether_buf_free(b);
	cr_assert_eq(r, TETHER_ERR_NOMEM);
	cr_assert_eq(left, 0,
		     "failed encode left %zu bytes (a lone header) in out",
		     left);
}
