/*
 * The relay's HTTP side door: /metrics in the Prometheus text exposition
 * format and /healthz, on a listener of its own (default 127.0.0.1:9464).
 * Requests are parsed by relay-metrics-req.c (http-parser) and bounded in
 * size and time; bad input gets a 4xx and the connection is closed,
 * nothing else happens.
 */
#include <stdarg.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <tether/alloc.h>
#include <tether/buf.h>
#include <tether/err.h>
#include <tether/log.h>
#include <tether/proto.h>

#include "relay-metrics-req.h"
#include "relay.h"

#define METRICS_TIMEOUT_MS 5000
#define METRICS_BODY_MAX (1u * 1024 * 1024)

struct metrics_conn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_write_t wreq;
	struct relay_metrics_req *req;
	struct relay *relay;
	struct tether_buf *out;
	int handles;
	bool answered;
};

static void conn_closed(uv_handle_t *h)
{
	struct metrics_conn *c = h->data;

	if (--c->handles > 0)
		return;
	relay_metrics_req_free(c->req);
	tether_buf_free(c->out);
	tether_free(c);
}

static void conn_close(struct metrics_conn *c)
{
	if (uv_is_closing((uv_handle_t *)&c->tcp))
		return;
	uv_close((uv_handle_t *)&c->tcp, conn_closed);
	uv_close((uv_handle_t *)&c->timer, conn_closed);
}

static void metrics_written(uv_write_t *req, int status)
{
	(void)status;
	conn_close(req->data);
}

static void emit(struct tether_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void emit(struct tether_buf *b, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n > 0 && (size_t)n < sizeof(line))
		tether_buf_put(b, line, (size_t)n);
}

static void respond(struct metrics_conn *c, int code, const char *reason,
		    const char *type, const struct tether_buf *body)
{
	size_t len = body != NULL ? tether_buf_len(body) : strlen(reason) + 1;
	uv_buf_t b;

	c->answered = true;
	uv_read_stop((uv_stream_t *)&c->tcp);
	tether_buf_reset(c->out);
	emit(c->out,
	     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
	     "Connection: close\r\n\r\n",
	     code, reason, type, len);
	if (body != NULL)
		tether_buf_put(c->out, tether_buf_ptr(body), len);
	else
		emit(c->out, "%s\n", reason);
	b = uv_buf_init((char *)tether_buf_ptr(c->out),
			(unsigned int)tether_buf_len(c->out));
	c->wreq.data = c;
	if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1,
		     metrics_written) != 0)
		conn_close(c);
}

static void gauge(struct tether_buf *b, const char *name, const char *help)
{
	emit(b, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
}

static void counter(struct tether_buf *b, const char *name, const char *help,
		    uint64_t v)
{
	emit(b, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name,
	     name, (unsigned long long)v);
}

static void peer_metrics(struct relay *r, struct tether_buf *b)
{
	static const char *const role_names[RELAY_ROLES] = {
	    [RELAY_PEER_NEW] = "unauthenticated",
	    [RELAY_PEER_CONSOLE] = "console",
	    [RELAY_PEER_AGENT] = "agent",
	};
	unsigned n[RELAY_ROLES] = {0}, i;
	struct relay_peer *p;

	for (p = r->peers; p != NULL; p = p->next)
		if (p->link != NULL)
			n[p->role]++;
	gauge(b, "tether_relay_connections", "Open connections by kind.");
	for (i = 0; i < RELAY_ROLES; i++)
		emit(b, "tether_relay_connections{kind=\"%s\"} %u\n",
		     role_names[i], n[i]);
	gauge(b, "tether_relay_agents_connected",
	      "Agents connected now (attended or enrolled).");
	emit(b, "tether_relay_agents_connected %u\n", n[RELAY_PEER_AGENT]);
}

static void channel_metrics(struct relay *r, struct tether_buf *b)
{
	unsigned n[TETHER_KINDS] = {0}, i, k;
	struct relay_channel *c;

	for (i = 0; i < RELAY_CHANNEL_BUCKETS; i++)
		for (c = r->channels[i]; c != NULL; c = c->next)
			if (c->opened && (unsigned)c->kind < TETHER_KINDS)
				n[c->kind]++;
	gauge(b, "tether_relay_channels", "Open end-to-end channels by kind.");
	for (k = 0; k < TETHER_KINDS; k++)
		emit(b, "tether_relay_channels{kind=\"%s\"} %u\n",
		     tether_ctrl_name_of(kind, k), n[k]);
}

/* Label values in lower case, like every other label here. */
static void lower(const char *s, char *out, size_t len)
{
	size_t k;

	for (k = 0; s[k] != '\0' && k < len - 1; k++)
		out[k] = (char)tolower((unsigned char)s[k]);
	out[k] = '\0';
}

/* The store's row counts as labelled gauges (rows of none left out). */
static void store_metrics(struct relay *r, struct tether_buf *b)
{
	struct relay_store_counts counts;
	char state[16];
	unsigned i, j;

	if (relay_store_counts(r->store, &counts) != 0)
		return;
	gauge(b, "tether_relay_sessions", "Sessions by state.");
	for (i = 0; i < RELAY_STORE_SESSION_STATES; i++)
		if (counts.sessions[i] > 0)
			emit(b, "tether_relay_sessions{state=\"%s\"} %lld\n",
			     tether_ctrl_name_of(session_state, i),
			     (long long)counts.sessions[i]);
	gauge(b, "tether_relay_tickets", "Tickets by status and source.");
	for (i = 0; i < RELAY_STORE_STATUSES; i++)
		for (j = 0; j < RELAY_STORE_SOURCES; j++)
			if (counts.tickets[i][j] > 0)
				emit(b,
				     "tether_relay_tickets{status=\"%s\","
				     "source=\"%s\"} %lld\n",
				     tether_ctrl_name_of(status, i),
				     tether_ctrl_name_of(source, j),
				     (long long)counts.tickets[i][j]);
	gauge(b, "tether_relay_checks",
	      "Health checks of enrolled agents by latest state.");
	for (i = 0; i < RELAY_STORE_CHECK_STATES; i++) {
		if (counts.checks[i] == 0)
			continue;
		lower(tether_ctrl_name_of(check_state, i), state,
		      sizeof(state));
		emit(b, "tether_relay_checks{state=\"%s\"} %lld\n", state,
		     (long long)counts.checks[i]);
	}
	gauge(b, "tether_relay_enrolled_agents", "Enrolled agents.");
	emit(b, "tether_relay_enrolled_agents %lld\n",
	     (long long)counts.agents);
	gauge(b, "tether_relay_enrolled_agents_connected",
	      "Enrolled agents connected and authenticated now.");
	emit(b, "tether_relay_enrolled_agents_connected %u\n",
	     relay_enrolled_connected(r));
}

static void serve_metrics(struct metrics_conn *c)
{
	struct relay *r = c->relay;
	struct tether_buf *b = tether_buf_new(METRICS_BODY_MAX);

	if (b == NULL) {
		respond(c, 503, "Service Unavailable", "text/plain", NULL);
		return;
	}
	peer_metrics(r, b);
	channel_metrics(r, b);
	store_metrics(r, b);
	counter(b, "tether_relay_handshakes_total", "TLS handshakes completed.",
		r->stats.handshakes);
	counter(b, "tether_relay_handshake_failures_total",
		"Connections that failed before TLS was up.",
		r->stats.handshake_failures);
	counter(b, "tether_relay_auth_failures_total",
		"Peers refused: a bad token, key or signature.",
		r->stats.auth_failures);
	counter(b, "tether_relay_code_failures_total",
		"Failed joins and resumes (wrong, expired or used codes).",
		r->stats.code_failures);
	counter(b, "tether_relay_pake_failures_total",
		"Key confirmations that failed (wrong code).",
		r->stats.pake_failures);
	counter(b, "tether_relay_protocol_errors_total",
		"Peers closed for breaking the protocol.",
		r->stats.protocol_errors);
	counter(b, "tether_relay_forwarded_bytes_total",
		"Sealed channel bytes forwarded.", r->stats.bytes_forwarded);
	counter(b, "tether_relay_forwarded_frames_total",
		"Sealed channel frames forwarded.", r->stats.frames_forwarded);
	respond(c, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", b);
	tether_buf_free(b);
}

static void metrics_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	static char rbuf[4096];

	(void)h;
	(void)suggested;
	*buf = uv_buf_init(rbuf, sizeof(rbuf));
}

static void metrics_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct metrics_conn *c = s->data;
	const char *reason;
	int r, code;

	if (n < 0) {
		conn_close(c);
		return;
	}
	if (n == 0 || c->answered)
		return;
	r = relay_metrics_req_feed(c->req, buf->base, (size_t)n);
	if (r == 0)
		return;
	if (r == RELAY_METRICS_PAGE_METRICS) {
		serve_metrics(c);
	} else if (r == RELAY_METRICS_PAGE_HEALTHZ) {
		respond(c, 200, "ok", "text/plain", NULL);
	} else {
		code = relay_metrics_req_status(c->req, &reason);
		respond(c, code, reason, "text/plain", NULL);
	}
}

static void metrics_timeout(uv_timer_t *t)
{
	struct metrics_conn *c = t->data;

	if (!c->answered)
		respond(c, 408, "Request Timeout", "text/plain", NULL);
}

static void metrics_accept(uv_stream_t *server, int status)
{
	struct relay *r = server->data;
	struct metrics_conn *c;

	if (status < 0)
		return;
	c = tether_calloc(1, sizeof(*c));
	if (c == NULL)
		return;
	c->relay = r;
	c->out = tether_buf_new(METRICS_BODY_MAX + 1024);
	c->req = relay_metrics_req_new();
	uv_tcp_init(server->loop, &c->tcp);
	uv_timer_init(server->loop, &c->timer);
	c->tcp.data = c->timer.data = c;
	c->handles = 2;
	if (c->out == NULL || c->req == NULL ||
	    uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
		conn_close(c);
		return;
	}
	uv_timer_start(&c->timer, metrics_timeout, METRICS_TIMEOUT_MS, 0);
	uv_read_start((uv_stream_t *)&c->tcp, metrics_alloc, metrics_read);
}

int relay_metrics_start(struct relay *r, const char *listen, bool required)
{
	char where[96];
	int rc;

	rc = relay_listen(r, &r->metrics, listen, 64, metrics_accept);
	r->metrics_on = true;
	if (rc == UV_EINVAL) {
		fprintf(stderr,
			"tether-relay: bad --metrics-listen address "
			"'%s' (want HOST:PORT or off)\n",
			listen);
		return TETHER_ERR_INVALID;
	}
	if (rc != 0) {
		if (required) {
			fprintf(stderr,
				"tether-relay: cannot serve metrics "
				"on %s: %s\n",
				listen, uv_strerror(rc));
			return TETHER_ERR_SYS;
		}
		tether_log_warn("metrics disabled: cannot listen on %s: %s",
				listen, uv_strerror(rc));
		uv_close((uv_handle_t *)&r->metrics, NULL);
		r->metrics_on = false;
		return TETHER_OK;
	}
	relay_sockname(&r->metrics, where, sizeof(where));
	printf("tether-relay metrics on http://%s/metrics\n", where);
	fflush(stdout);
	return TETHER_OK;
}
