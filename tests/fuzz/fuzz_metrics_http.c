/*
 * libFuzzer target for the requests the relay's metrics listener parses
 * (relay/relay-metrics-req.c, http-parser behind it): what anyone who can
 * reach 127.0.0.1:9464, or wherever --metrics-listen puts it, can send.
 * http-parser is the distribution's library, not instrumented: libFuzzer
 * sees this side's branches only, so the seeds and fuzz_metrics_http.dict
 * carry HTTP's words.
 *
 * Input: byte 0 says how the rest arrives.  Its low 7 bits are the
 * largest chunk (0: all of it in one read); each chunk is 1 to that many
 * bytes, the sizes drawn from a generator seeded with byte 0.  Bit 7 set
 * sends the rest over and over, as a client that never stops would,
 * until the request is decided.
 *
 * Invariants: every result is 0, a page, or one of the documented errors,
 * with its status and reason; a decided request stays decided; no
 * request stays undecided past RELAY_METRICS_REQUEST_MAX bytes, so a
 * client cannot make the listener read forever; and a request under the
 * cap gets the same answer however its bytes are split as it gets sent
 * in a single read (one exception, below).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tether/err.h>

#include "fuzz.h"
#include "relay-metrics-req.h"

/* The status and reason that go with a result, and that it is one. */
static void check_result(const struct relay_metrics_req *q, int r)
{
	const char *reason = NULL;
	int status = relay_metrics_req_status(q, &reason);

	CHECK(reason != NULL);
	switch (r) {
	case 0:
		CHECK(status == 0 && reason[0] == '\0');
		break;
	case RELAY_METRICS_PAGE_METRICS:
	case RELAY_METRICS_PAGE_HEALTHZ:
		CHECK(status == 200 && strcmp(reason, "OK") == 0);
		break;
	case TETHER_ERR_FORMAT:
		CHECK(status == 400);
		break;
	case TETHER_ERR_NOT_FOUND:
		CHECK(status == 404);
		break;
	case TETHER_ERR_PROTOCOL:
		CHECK(status == 405);
		break;
	case TETHER_ERR_TOO_LARGE:
		CHECK(status == 414 || status == 431);
		break;
	default:
		CHECK(!"an undocumented result");
	}
	if (r != 0)
		CHECK(reason[0] != '\0');
}

/* The next chunk size, 1..max, from a small LCG. */
static size_t next_chunk(uint32_t *state, size_t max)
{
	*state = *state * 1103515245u + 12345u;
	return 1 + (size_t)((*state >> 16) % max);
}

/*
 * Feeds p (n bytes) in chunks of at most max (0: whole), once or, when
 * cycling, until decided.  Returns the result; *statusp its status.
 */
static int feed(const uint8_t *p, size_t n, size_t max, bool cycle,
		uint32_t seed, int *statusp)
{
	struct relay_metrics_req *q = relay_metrics_req_new();
	size_t off = 0, total = 0, k;
	uint32_t state = seed;
	const char *reason;
	int r = 0, again;

	CHECK(q != NULL);
	check_result(q, 0);
	while (r == 0 && (off < n || (cycle && n > 0))) {
		if (off == n)
			off = 0;
		k = max == 0 ? n - off : next_chunk(&state, max);
		if (k > n - off)
			k = n - off;
		r = relay_metrics_req_feed(q, (const char *)p + off, k);
		check_result(q, r);
		off += k;
		total += k;
		/* Undecided is only ever under the cap. */
		if (r == 0)
			CHECK(total <= RELAY_METRICS_REQUEST_MAX);
	}
	/* Decided is final, and reads nothing more. */
	if (r != 0 && n > 0) {
		again = relay_metrics_req_feed(q, (const char *)p, n);
		CHECK(again == r);
		check_result(q, again);
	}
	CHECK(relay_metrics_req_feed(q, "", 0) == r);
	*statusp = relay_metrics_req_status(q, &reason);
	/* TETHER_FUZZ_VERBOSE=1 shows each answer, for seeds. */
	if (getenv("TETHER_FUZZ_VERBOSE") != NULL)
		fprintf(stderr, "%zu bytes in chunks of up to %zu: %d, %d %s\n",
			total, max, r, *statusp, reason);
	relay_metrics_req_free(q);
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t max;
	bool cycle;
	int r, r1, status, status1;

	if (size < 1)
		return 0;
	max = data[0] & 0x7f;
	cycle = (data[0] & 0x80) != 0;
	r = feed(data + 1, size - 1, max, cycle, data[0], &status);
	/*
	 * Under the cap, how the bytes were split does not matter, but for
	 * one thing: http-parser hands the URL over at the end of each read,
	 * so a URL both too long and malformed further on is refused as too
	 * long when the cut came first and as malformed otherwise.
	 */
	if (!cycle && max != 0 && size - 1 <= RELAY_METRICS_REQUEST_MAX) {
		r1 = feed(data + 1, size - 1, 0, false, 0, &status1);
		CHECK((r == r1 && status == status1) ||
		      (status1 == 400 && status == 414));
	}
	return 0;
}
