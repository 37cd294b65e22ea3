/*
 * Unit tests for the metrics listener's request parser
 * (relay/relay-metrics-req.c): what each request is answered, however
 * its bytes arrive, and the bounds on the URL and on the whole request.
 * No relay and no socket: bytes in, the answer out.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tether/err.h>

#include "relay-metrics-req.h"

/* The result of req sent in reads of at most chunk bytes (0: one read). */
static int answer(const char *req, size_t len, size_t chunk, int *status)
{
	struct relay_metrics_req *q = relay_metrics_req_new();
	size_t off = 0, k;
	int r = 0;

	cr_assert_not_null(q);
	while (r == 0 && off < len) {
		k = chunk == 0 || chunk > len - off ? len - off : chunk;
		r = relay_metrics_req_feed(q, req + off, k);
		off += k;
	}
	*status = relay_metrics_req_status(q, NULL);
	relay_metrics_req_free(q);
	return r;
}

static void expect(const char *req, size_t chunk, int result, int status)
{
	int got_status, got = answer(req, strlen(req), chunk, &got_status);

	cr_assert_eq(got, result, "%s in reads of %zu: %d, not %d", req, chunk,
		     got, result);
	cr_assert_eq(got_status, status, "%s in reads of %zu: %d, not %d", req,
		     chunk, got_status, status);
}

Test(relay_metrics_req, pages_and_errors)
{
	static const size_t chunks[] = {0, 1, 2, 7};
	size_t i;

	for (i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		expect("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", chunks[i],
		       RELAY_METRICS_PAGE_METRICS, 200);
		expect("HEAD /healthz HTTP/1.0\r\n\r\n", chunks[i],
		       RELAY_METRICS_PAGE_HEALTHZ, 200);
		expect("GET /metrics?name=x HTTP/1.1\r\n\r\n", chunks[i],
		       RELAY_METRICS_PAGE_METRICS, 200);
		expect("GET /nope HTTP/1.1\r\n\r\n", chunks[i],
		       TETHER_ERR_NOT_FOUND, 404);
		expect("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
		       chunks[i], TETHER_ERR_PROTOCOL, 405);
		expect("\x16\x03\x01garbage\r\n\r\n", chunks[i],
		       TETHER_ERR_FORMAT, 400);
		expect("GET /metrics HTTP/1.1\r\nHost:", chunks[i], 0, 0);
	}
}

Test(relay_metrics_req, the_url_is_capped_across_reads)
{
	char req[RELAY_METRICS_URL_MAX + 64];
	int n;

	/* At the cap: a URL, just not a page. */
	n = snprintf(req, sizeof(req), "GET /%0*d HTTP/1.1\r\n\r\n",
		     RELAY_METRICS_URL_MAX - 1, 0);
	cr_assert_lt((size_t)n, sizeof(req));
	expect(req, 0, TETHER_ERR_NOT_FOUND, 404);
	expect(req, 3, TETHER_ERR_NOT_FOUND, 404);
	/* One more byte, in one read or in many, is too long. */
	n = snprintf(req, sizeof(req), "GET /%0*d HTTP/1.1\r\n\r\n",
		     RELAY_METRICS_URL_MAX, 0);
	cr_assert_lt((size_t)n, sizeof(req));
	expect(req, 0, TETHER_ERR_TOO_LARGE, 414);
	expect(req, 3, TETHER_ERR_TOO_LARGE, 414);
	/*
	 * Too long and a bad byte past the cap: http-parser hands the URL
	 * over at the end of a read or of the URL, so in one read the bad
	 * byte is seen first.  Refused either way.
	 */
	n = snprintf(req, sizeof(req), "GET /%0*d\x01 HTTP/1.1\r\n\r\n",
		     RELAY_METRICS_URL_MAX + 10, 0);
	cr_assert_lt((size_t)n, sizeof(req));
	expect(req, 0, TETHER_ERR_FORMAT, 400);
	expect(req, 3, TETHER_ERR_TOO_LARGE, 414);
}

Test(relay_metrics_req, the_request_is_capped_after_the_read_that_crosses)
{
	static const char head[] = "GET /metrics HTTP/1.1\r\nX-Pad: ";
	size_t len = RELAY_METRICS_REQUEST_MAX + 100;
	char *req = malloc(len + 5);
	int status;

	cr_assert_not_null(req);
	memcpy(req, head, sizeof(head) - 1);
	memset(req + sizeof(head) - 1, 'x', len - (sizeof(head) - 1));
	/* Unfinished past the cap: refused, with the read that crossed. */
	cr_assert_eq(answer(req, len, 4096, &status), TETHER_ERR_TOO_LARGE);
	cr_assert_eq(status, 431);
	/* Finished within the read that crossed it: answered. */
	memcpy(req + len, "\r\n\r\n", 4);
	cr_assert_eq(answer(req, len + 4, 0, &status),
		     RELAY_METRICS_PAGE_METRICS);
	cr_assert_eq(status, 200);
	free(req);
}

Test(relay_metrics_req, the_answer_is_final)
{
	static const char get[] = "GET /healthz HTTP/1.1\r\n\r\n";
	struct relay_metrics_req *q = relay_metrics_req_new();
	const char *reason = NULL;

	cr_assert_not_null(q);
	cr_assert_eq(relay_metrics_req_status(q, &reason), 0);
	cr_assert_str_eq(reason, "");
	/* len 0 reads nothing: it is not the end of the stream. */
	cr_assert_eq(relay_metrics_req_feed(q, "", 0), 0);
	cr_assert_eq(relay_metrics_req_feed(q, get, sizeof(get) - 1),
		     RELAY_METRICS_PAGE_HEALTHZ);
	cr_assert_eq(relay_metrics_req_feed(q, "garbage", 7),
		     RELAY_METRICS_PAGE_HEALTHZ);
	cr_assert_eq(relay_metrics_req_status(q, &reason), 200);
	cr_assert_str_eq(reason, "OK");
	relay_metrics_req_free(q);
}
