/*
 * libFuzzer target for the frame decoder, the first code that hostile bytes
 * reach on every connection.
 *
 * Input: byte 0 holds k = (b0 & 7), the number of chunk-size bytes that
 * follow, and a scale flag (b0 & 8: chunk sizes times 61); the rest is the
 * byte stream.  The stream is decoded twice per payload limit (pre-auth and
 * full): once whole from a read-only view, once fed into a growing buffer in
 * the chunk sizes given, as a socket would deliver it.  Both must yield the
 * same frames and the same final error, and every step must respect the
 * decoder's contract (docs/protocol.md, "Frames"; frame.h).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tether/buf.h>
#include <tether/err.h>
#include <tether/frame.h>

#include "fuzz.h"

#define HDR TETHER_FRAME_HEADER_LEN
#define CHUNK_MAX (256 * 61)

struct seen {
	size_t off; /* offset of the frame in the stream */
	size_t raw_len;
};

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static int header_ok(uint8_t type, uint8_t flags, uint32_t channel)
{
	if (flags != 0)
		return 0;
	if (type == TETHER_FRAME_CTRL || type == TETHER_FRAME_ERROR)
		return channel == 0;
	if (type == TETHER_FRAME_DATA)
		return channel != 0;
	return 0;
}

/*
 * One decode step from in, which held avail bytes starting at p.  Checks
 * the result against what the header says; returns the decoder's result.
 */
static int step(struct tether_buf *in, size_t max, struct tether_frame *f)
{
	size_t avail = tether_buf_len(in), limit;
	const uint8_t *p = tether_buf_ptr(in);
	uint8_t hdr[HDR];
	uint32_t declared = 0;
	int r;

	limit = max < TETHER_FRAME_MAX ? max : TETHER_FRAME_MAX;
	r = tether_frame_decode(in, max, f);
	if (avail >= HDR)
		declared = be32(p);
	if (r != 0) {
		/* A failed decode consumes nothing and returns nothing. */
		CHECK(tether_buf_len(in) == avail);
		CHECK(f->raw == NULL && f->payload == NULL);
		CHECK(f->raw_len == 0 && f->len == 0);
	}
	switch (r) {
	case 0:
		CHECK(avail >= HDR);
		CHECK(f->len == declared);
		CHECK(f->len <= limit);
		CHECK(f->raw == p);
		CHECK(f->raw_len == HDR + (size_t)f->len);
		CHECK(f->raw_len <= avail);
		CHECK(f->payload == f->raw + HDR);
		CHECK(header_ok(f->type, f->flags, f->channel));
		tether_frame_header_pack(hdr, f->type, f->flags, f->channel,
					 f->len);
		CHECK(memcmp(hdr, p, HDR) == 0);
		CHECK(tether_buf_len(in) == avail - f->raw_len);
		break;
	case TETHER_ERR_INCOMPLETE:
		/* Only a short header or a valid one still awaiting payload. */
		if (avail >= HDR) {
			CHECK(declared <= limit);
			CHECK(header_ok(p[4], p[5], be32(p + 6)));
			CHECK(avail < HDR + (size_t)declared);
		}
		break;
	case TETHER_ERR_TOO_LARGE:
		/* Decided from the header alone. */
		CHECK(avail >= HDR);
		CHECK(declared > limit);
		break;
	case TETHER_ERR_PROTOCOL:
		CHECK(avail >= HDR);
		CHECK(declared <= limit);
		CHECK(!header_ok(p[4], p[5], be32(p + 6)));
		break;
	default:
		CHECK(!"unexpected decoder result");
	}
	return r;
}

/* Whole-stream decode; fills seen[] and returns the final result. */
static int decode_whole(const uint8_t *s, size_t n, size_t max,
			struct seen *seen, size_t *nseen)
{
	struct tether_buf *in = tether_buf_from(s, n);
	struct tether_frame f;
	int r;

	CHECK(in != NULL);
	*nseen = 0;
	while ((r = step(in, max, &f)) == 0) {
		seen[*nseen].off = (size_t)(f.raw - s);
		seen[*nseen].raw_len = f.raw_len;
		(*nseen)++;
	}
	tether_buf_free(in);
	return r;
}

static void decode_chunked(const uint8_t *s, size_t n, size_t max,
			   const uint8_t *sizes, size_t nsizes, size_t scale,
			   const struct seen *seen, size_t nseen, int final)
{
	struct tether_buf *in;
	struct tether_frame f;
	size_t fed = 0, consumed = 0, i = 0, idx = 0, chunk;
	int r = TETHER_ERR_INCOMPLETE;

	in = tether_buf_new(HDR + TETHER_FRAME_MAX + CHUNK_MAX);
	CHECK(in != NULL);
	while (fed < n) {
		/* No sizes given: socket-sized reads. */
		chunk = nsizes > 0 ? ((size_t)sizes[i++ % nsizes] + 1) * scale
				   : CHUNK_MAX;
		if (chunk > n - fed)
			chunk = n - fed;
		/* Never over the cap: decode drains complete frames first. */
		CHECK(tether_buf_put(in, s + fed, chunk) == 0);
		fed += chunk;
		while ((r = step(in, max, &f)) == 0) {
			CHECK(idx < nseen);
			CHECK(f.raw_len == seen[idx].raw_len);
			CHECK(consumed == seen[idx].off);
			CHECK(memcmp(f.raw, s + seen[idx].off, f.raw_len) == 0);
			consumed += f.raw_len;
			CHECK(consumed <= fed);
			idx++;
		}
		CHECK(tether_buf_len(in) == fed - consumed);
		if (r != TETHER_ERR_INCOMPLETE)
			break; /* the connection would be closed here */
	}
	/* Same frames, same verdict as decoding the stream in one piece. */
	CHECK(idx == nseen);
	CHECK(r == final);
	tether_buf_free(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t maxes[] = {TETHER_FRAME_MAX_PREAUTH,
				       TETHER_FRAME_MAX};
	const uint8_t *sizes, *s;
	size_t nsizes, scale, n, nseen, i;
	struct seen *seen;
	int final;

	if (size == 0)
		return 0;
	nsizes = data[0] & 7;
	scale = (data[0] & 8) ? 61 : 1;
	if (nsizes > size - 1)
		nsizes = size - 1;
	sizes = data + 1;
	s = data + 1 + nsizes;
	n = size - 1 - nsizes;
	/* Each frame is at least a header long. */
	seen = malloc((n / HDR + 1) * sizeof(*seen));
	if (seen == NULL)
		return 0;
	for (i = 0; i < sizeof(maxes) / sizeof(maxes[0]); i++) {
		final = decode_whole(s, n, maxes[i], seen, &nseen);
		decode_chunked(s, n, maxes[i], sizes, nsizes, scale, seen,
			       nseen, final);
	}
	free(seen);
	return 0;
}
