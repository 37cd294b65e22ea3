/*
 * One request to the relay's metrics listener (relay-metrics.c): HTTP/1.x
 * parsed with http-parser as its bytes arrive, bounded in size, and turned
 * into what the listener answers, a page or an error status.  It is apart
 * from the listener so that tests/fuzz/fuzz_metrics_http.c parses requests
 * with the code the listener runs; it needs no relay, loop or socket.
 */
#ifndef RELAY_METRICS_REQ_H
#define RELAY_METRICS_REQ_H

#include <stddef.h>

/*
 * Bytes a client may send without completing a request: past this, after
 * the read that crossed it, the request is refused (431).
 */
#define RELAY_METRICS_REQUEST_MAX (16u * 1024)
/* The longest URL (the query included); a longer one is refused (414). */
#define RELAY_METRICS_URL_MAX 255

/* What a complete GET or HEAD request asks for. */
enum relay_metrics_page {
	RELAY_METRICS_PAGE_METRICS = 1, /* /metrics */
	RELAY_METRICS_PAGE_HEALTHZ,	/* /healthz */
};

struct relay_metrics_req;

/* A request with nothing read yet; NULL when out of memory. */
struct relay_metrics_req *relay_metrics_req_new(void);
void relay_metrics_req_free(struct relay_metrics_req *q);

/*
 * The next len bytes from the client (one read's worth: the size cap is
 * checked after each call, as the listener reads).  Returns 0 while the
 * request is incomplete; a relay_metrics_page once it is complete and
 * asks for one; or the negative TETHER_ERR_* of the error it is answered
 * with, whose HTTP status relay_metrics_req_status() gives:
 *   TETHER_ERR_FORMAT     400, not HTTP
 *   TETHER_ERR_NOT_FOUND  404, no such page
 *   TETHER_ERR_PROTOCOL   405, a method other than GET and HEAD
 *   TETHER_ERR_TOO_LARGE  414, the URL is too long; 431, the request is
 * Bytes after a complete request are not read: one request per
 * connection.  Once the result is not 0 it is final, and later calls
 * return it again without reading.  len 0 reads nothing.
 */
int relay_metrics_req_feed(struct relay_metrics_req *q, const char *data,
			   size_t len);

/*
 * The HTTP status the request is answered with and its reason phrase
 * (*reason, when reason is not NULL): 200 "OK" for a page, the error's
 * status as above, or 0 "" while the request is incomplete.
 */
int relay_metrics_req_status(const struct relay_metrics_req *q,
			     const char **reason);

#endif /* RELAY_METRICS_REQ_H */
