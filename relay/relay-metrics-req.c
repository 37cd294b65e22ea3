/*
 * Metrics listener requests (relay-metrics-req.h): http-parser keeps the
 * parse state between reads; only the URL is kept, in a fixed buffer, so
 * a request costs the same whatever the client sends.
 */
#include <http_parser.h>
#include <stdbool.h>
#include <string.h>

#include <tether/alloc.h>
#include <tether/err.h>

#include "relay-metrics-req.h"

struct relay_metrics_req {
	http_parser parser;
	size_t received;
	int result; /* what feed returns: 0 until the request is decided */
	int status;
	const char *reason;
	char url[RELAY_METRICS_URL_MAX + 1];
	size_t url_len;
	bool url_too_long;
};

static void decide(struct relay_metrics_req *q, int result, int status,
		   const char *reason)
{
	q->result = result;
	q->status = status;
	q->reason = reason;
}

static int on_url(http_parser *hp, const char *at, size_t len)
{
	struct relay_metrics_req *q = hp->data;

	/* The URL comes in pieces when it spans reads. */
	if (len >= sizeof(q->url) - q->url_len) {
		q->url_too_long = true;
		return 1;
	}
	memcpy(q->url + q->url_len, at, len);
	q->url_len += len;
	q->url[q->url_len] = '\0';
	return 0;
}

static int on_message_complete(http_parser *hp)
{
	struct relay_metrics_req *q = hp->data;
	char *query = strchr(q->url, '?');

	if (query != NULL)
		*query = '\0';
	if (hp->method != HTTP_GET && hp->method != HTTP_HEAD)
		decide(q, TETHER_ERR_PROTOCOL, 405, "Method Not Allowed");
	else if (strcmp(q->url, "/metrics") == 0)
		decide(q, RELAY_METRICS_PAGE_METRICS, 200, "OK");
	else if (strcmp(q->url, "/healthz") == 0)
		decide(q, RELAY_METRICS_PAGE_HEALTHZ, 200, "OK");
	else
		decide(q, TETHER_ERR_NOT_FOUND, 404, "Not Found");
	/* One request per connection: stop the parser here. */
	return 1;
}

static const http_parser_settings settings = {
    .on_url = on_url,
    .on_message_complete = on_message_complete,
};

struct relay_metrics_req *relay_metrics_req_new(void)
{
	struct relay_metrics_req *q = tether_calloc(1, sizeof(*q));

	if (q == NULL)
		return NULL;
	http_parser_init(&q->parser, HTTP_REQUEST);
	q->parser.data = q;
	q->reason = "";
	return q;
}

void relay_metrics_req_free(struct relay_metrics_req *q)
{
	tether_free(q);
}

int relay_metrics_req_feed(struct relay_metrics_req *q, const char *data,
			   size_t len)
{
	size_t done;

	/* http-parser takes len 0 for the end of the stream: not ours. */
	if (q->result != 0 || len == 0)
		return q->result;
	q->received += len;
	done = http_parser_execute(&q->parser, &settings, data, len);
	if (q->result != 0)
		return q->result;
	if (q->url_too_long)
		decide(q, TETHER_ERR_TOO_LARGE, 414, "URI Too Long");
	else if (HTTP_PARSER_ERRNO(&q->parser) != HPE_OK || done != len)
		decide(q, TETHER_ERR_FORMAT, 400, "Bad Request");
	else if (q->received > RELAY_METRICS_REQUEST_MAX)
		decide(q, TETHER_ERR_TOO_LARGE, 431,
		       "Request Header Fields Too Large");
	return q->result;
}

int relay_metrics_req_status(const struct relay_metrics_req *q,
			     const char **reason)
{
	if (reason != NULL)
		*reason = q->reason;
	return q->status;
}
