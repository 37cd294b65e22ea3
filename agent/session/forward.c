/*
 * Forward channels, agent side (docs/protocol.md, "Forwarding"): the
 * console's FORWARD names a TCP target, the customer's policy decides
 * (127.0.0.1:22 and localhost:22, what --allow-forward adds, and for
 * anything else a question on the terminal), and the agent connects with
 * libuv and pumps bytes: STDIN to the target, what the target sends as
 * STDOUT.  Every request is reported to the relay for the audit trail.
 *
 * Flow control is the same as for a child's pipes (exec.c): the TCP
 * stream is read only while the channel's send window and the relay link
 * have room, and STDIN is credited back only once written to the target,
 * so neither end can make the agent buffer more than one window.
 *
 * chan.c owns the channel and hands this file the channel as a struct
 * agent_forward_io.  A question to the customer goes through the
 * terminal (term.c), which asks one at a time.  The forward owns its handles (a
 * timer, the TCP connection, a pending name lookup) and is freed only once the
 * last of them is closed.
 */
#include <inttypes.h>
#include <stddef.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <tether/alloc.h>
#include <tether/buf.h>
#include <tether/err.h>
#include <tether/id.h>
#include <tether/log.h>
#include <tether/msg.h>

#include "diag/text.h"
#include "session/cli.h"
#include "session/forward.h"
#include "session/term.h"

/* "[host]:65535"; the host is at most TETHER_MSG_HOST_MAX bytes. */
#define TARGET_MAX (TETHER_MSG_HOST_MAX + 9)
/* How long the customer has to answer, and the connection to come up. */
#define ASK_TIMEOUT_MS 60000
#define CONNECT_TIMEOUT_MS 10000
#define ERROR_MAX 1000
/* The other name of the default target. */
#define LOCALHOST "localhost"

enum fwd_state {
	FWD_ASKING,	/* the customer is asked (or will be, after others) */
	FWD_CONNECTING, /* looking up the name or connecting */
	FWD_OPEN,	/* connected: bytes flow */
	FWD_OVER, /* done was reported; waiting for agent_forward_close() */
};

/* One attempt at one of the addresses the name resolved to. */
struct fwd_conn {
	uv_tcp_t tcp;
	uv_connect_t req;
	struct agent_forward *f;
};

/* STDIN bytes on their way to the target (or waiting for it). */
struct fwd_write {
	uv_write_t req;
	struct fwd_write *next; /* while queued before the connection */
	struct agent_forward *f;
	size_t len;
	uint8_t data[];
};

struct agent_forward {
	uv_loop_t *loop;
	struct agent_term *term;
	uint32_t channel;
	char technician[TETHER_ID_NAME_MAX + 1];
	struct agent_forward_io io;
	struct agent_targets *granted; /* the session's, borrowed */
	char host[TETHER_MSG_HOST_MAX + 1];
	uint16_t port;
	char target[TARGET_MAX]; /* "host:port", for messages */
	enum fwd_state state;
	bool closing;	      /* agent_forward_close() was called */
	const char *over_why; /* for io.done, once the timer fires */
	int refs;	      /* open handles and pending requests */

	/* Asking: the question, and its text. */
	struct agent_question q;
	char question[TETHER_ID_NAME_MAX + TARGET_MAX + 64];
	/* The connection's deadline, then io.done. */
	uv_timer_t timer;

	/* Connecting. */
	uv_getaddrinfo_t gai;
	bool gai_pending;
	struct addrinfo *ai_list;
	struct addrinfo *ai_next; /* the next address to try */
	int last_err;		  /* libuv's, from the last attempt */
	struct fwd_conn *conn;	  /* the attempt, then the connection */
	struct fwd_write *queue;  /* STDIN before the connection */
	struct fwd_write **queue_tail;

	/* Open. */
	bool reading;
	bool rx_eof;	     /* the target closed its side (EOF(1) sent) */
	bool tx_eof;	     /* EOF(0) or CLOSE from the console */
	bool tx_done;	     /* the write side is shut down (or broken) */
	bool tx_shutting;    /* uv_shutdown() called */
	bool console_closed; /* the console's CLOSE: it reads no more */
	uv_shutdown_t shutdown_req;
	bool connected; /* the customer was told; tell the end too */
	uint64_t started_ms;
	uint64_t bytes_in; /* from the technician to the target */
	uint64_t bytes_out;
};

/* The target's output goes out sealed before the next read (as in exec.c). */
static uint8_t read_buf[TETHER_CHANNEL_CHUNK];

static void connect_next(struct agent_forward *f);

/* ---- Targets ---------------------------------------------------------- */

/*
 * Letters, digits and "._-" (names), ':' (IPv6), '%' (an IPv6 scope):
 * nothing a terminal, a log or the resolver could take for more.
 */
static bool host_valid(const char *host)
{
	size_t i;

	if (host[0] == '\0' || host[0] == '-')
		return false;
	for (i = 0; host[i] != '\0'; i++) {
		char c = host[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '-' ||
		      c == '_' || c == ':' || c == '%'))
			return false;
	}
	return true;
}

/* The customer's policy; names are compared as written, not resolved. */
static bool allowed(const struct agent_targets *ts, const char *host,
		    uint16_t port)
{
	if (port == TETHER_FORWARD_PORT &&
	    (strcmp(host, TETHER_FORWARD_HOST) == 0 ||
	     strcasecmp(host, LOCALHOST) == 0))
		return true;
	return agent_targets_have(ts, host, port);
}

int agent_forward_allow(struct agent_targets *ts, const char *spec,
			const char **why)
{
	struct agent_target t;

	if (agent_target_parse(spec, 0, &t, why) != 0)
		return TETHER_ERR_FORMAT;
	/* Stricter than a config's target: no leading '-'. */
	if (!host_valid(t.host)) {
		*why = "invalid host name";
		return TETHER_ERR_FORMAT;
	}
	if (allowed(ts, t.host, t.port))
		return 0;
	if (agent_targets_add(ts, &t) != 0) {
		*why = "out of memory";
		return TETHER_ERR_NOMEM;
	}
	return 0;
}

void agent_forward_describe_policy(const struct agent_targets *ts, char *out,
				   size_t outlen)
{
	char one[TARGET_MAX];
	size_t pos, n, i;

	snprintf(out, outlen, "%s:%u, %s:%u", TETHER_FORWARD_HOST,
		 TETHER_FORWARD_PORT, LOCALHOST, TETHER_FORWARD_PORT);
	pos = strlen(out);
	for (i = 0; i < ts->n; i++) {
		agent_target_name(ts->t[i].host, ts->t[i].port, one,
				  sizeof(one));
		n = strlen(one);
		if (pos + n + 2 + 4 >= outlen) {
			snprintf(out + pos, outlen - pos, ", ...");
			return;
		}
		snprintf(out + pos, outlen - pos, ", %s", one);
		pos += n + 2;
	}
}

/* ---- Telling the console, the relay and the customer ------------------ */

static int send_msg(struct agent_forward *f, uint8_t msg, const void *body,
		    size_t len)
{
	return f->io.send(f->io.arg, msg, body, len);
}

/*
 * Sealed ERROR on io, best effort (the channel ends anyway): done(), or
 * chan.c after a refusal, closes it.
 */
static void io_send_error(const struct agent_forward_io *io, const char *text)
{
	const struct tether_msg_error m = {.reason = text};
	struct tether_buf *b = tether_buf_new(ERROR_MAX + 8);

	if (b != NULL && tether_msg_encode_error(b, &m) == 0)
		io->send(io->arg, TETHER_MSG_ERROR, tether_buf_ptr(b),
			 tether_buf_len(b));
	tether_buf_free(b);
}

static void send_error(struct agent_forward *f, const char *text)
{
	io_send_error(&f->io, text);
}

/*
 * The relay's record of the request: before chan.c's control close,
 * while the relay still knows the channel.  The host passed
 * host_valid() (or was cleaned), so it is plain text as JSON wants.
 */
static void report(const struct agent_forward_io *io, uint32_t channel,
		   const char *host, uint16_t port, bool ok, const char *reason)
{
	const struct tether_ctrl_forward_report r = {
	    .channel = channel,
	    .host = host,
	    .port = port,
	    .ok = ok,
	    .reason = reason != NULL ? reason : "",
	};

	if (io->report(io->arg, &r) == TETHER_ERR_INVALID)
		tether_log_warn("channel %u: cannot build the forward report",
				channel);
}

/* Who asked, for the customer's lines; the console's view of it. */
struct asker {
	struct agent_term *term;
	uint32_t channel;
	const char *technician;
	const struct agent_forward_io *io;
};

/*
 * A refused target: the console gets ERROR "HOST:PORT: not allowed by
 * the customer's policy" whatever the cause, the audit trail the cause.
 */
static void refuse(const struct asker *k, const char *host, uint16_t port,
		   const char *target, const char *reason, const char *text)
{
	char err[ERROR_MAX];

	/*
	 * The report first: the console leaves on our ERROR, and the relay
	 * drops reports for channels that are gone.
	 */
	report(k->io, k->channel, host, port, false, reason);
	snprintf(err, sizeof(err), "%s: not allowed by the customer's policy",
		 target);
	io_send_error(k->io, err);
	agent_term_say(k->term, "%s asked to connect to %s, which %s; refused",
		       k->technician, target, text);
}

static void refuse_f(struct agent_forward *f, const char *reason,
		     const char *text)
{
	const struct asker k = {f->term, f->channel, f->technician, &f->io};

	refuse(&k, f->host, f->port, f->target, reason, text);
}

/* EOF(1): the target closed its side. */
static void send_eof(struct agent_forward *f)
{
	const struct tether_msg_eof m = {.stream = TETHER_MSG_STREAM_STDOUT};
	struct tether_buf *b = tether_buf_new(1);

	if (b != NULL && tether_msg_encode_eof(b, &m) == 0)
		send_msg(f, TETHER_MSG_EOF, tether_buf_ptr(b),
			 tether_buf_len(b));
	tether_buf_free(b);
}

static void on_over(uv_timer_t *h)
{
	struct agent_forward *f = h->data;

	if (!f->closing)
		f->io.done(f->io.arg, f->over_why);
}

static void update_reading(struct agent_forward *f);

/*
 * The forward ends by itself: chan.c closes the channel.  From the next
 * turn of the loop, so that no caller of ours (chan.c in the middle of a
 * message) sees its channel go away under it.
 */
static void over(struct agent_forward *f, const char *why)
{
	if (f->state == FWD_OVER || f->closing)
		return;
	f->state = FWD_OVER;
	f->over_why = why;
	update_reading(f);
	uv_timer_stop(&f->timer);
	uv_timer_start(&f->timer, on_over, 0, 0);
}

/* "forward to HOST:PORT closed after ...", once, for a connection made. */
static void say_closed(struct agent_forward *f)
{
	uint64_t secs;

	if (!f->connected)
		return;
	f->connected = false;
	secs = (uv_now(f->loop) - f->started_ms) / 1000;
	agent_term_say(f->term,
		       "forward to %s closed after %" PRIu64 " s (%" PRIu64
		       " bytes in, %" PRIu64 " out)",
		       f->target, secs, f->bytes_in, f->bytes_out);
}

/* ---- Lifetime ---------------------------------------------------------- */

static void release(struct agent_forward *f)
{
	struct fwd_write *w, *next;

	if (--f->refs > 0)
		return;
	for (w = f->queue; w != NULL; w = next) {
		next = w->next;
		tether_free(w);
	}
	if (f->ai_list != NULL)
		uv_freeaddrinfo(f->ai_list);
	f->io.closed(f->io.arg);
	tether_free(f);
}

static void on_timer_closed(uv_handle_t *h)
{
	release(h->data);
}

static void on_conn_closed(uv_handle_t *h)
{
	struct fwd_conn *c = h->data;
	struct agent_forward *f = c->f;

	tether_free(c);
	release(f);
}

static void conn_close(struct agent_forward *f)
{
	struct fwd_conn *c = f->conn;

	if (c == NULL)
		return;
	f->conn = NULL;
	f->reading = false;
	/* Pending writes and the shutdown get UV_ECANCELED first. */
	uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

/*
 * Takes f's question off the terminal (the customer is told) or out of
 * the queue.
 */
static void unask(struct agent_forward *f)
{
	if (f->state != FWD_ASKING)
		return;
	if (agent_term_withdraw(f->term, &f->q))
		agent_term_say(f->term, "the question about %s was withdrawn",
			       f->target);
}

void agent_forward_close(struct agent_forward *f)
{
	if (f == NULL || f->closing)
		return;
	f->closing = true;
	/* The forward's own lines: chan.c says nothing about it. */
	say_closed(f);
	unask(f);
	uv_timer_stop(&f->timer);
	uv_close((uv_handle_t *)&f->timer, on_timer_closed);
	/* Its callback still comes, and drops the reference. */
	if (f->gai_pending)
		uv_cancel((uv_req_t *)&f->gai);
	conn_close(f);
}

/* ---- Data ------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct fwd_conn *c = h->data;
	struct agent_forward *f = c->f;
	size_t n = f->io.window(f->io.arg);

	(void)suggested;
	/* Never read more than the channel may send right now. */
	if (n > sizeof(read_buf))
		n = sizeof(read_buf);
	*buf = uv_buf_init((char *)read_buf, (unsigned int)n);
}

/* Both directions are over (or the console left): the channel ends. */
static void maybe_over(struct agent_forward *f)
{
	if (f->state == FWD_OPEN && f->tx_done &&
	    (f->rx_eof || f->console_closed))
		over(f, NULL);
}

/* The connection broke: no EOF(1), just the end of the channel. */
static void conn_failed(struct agent_forward *f, int err)
{
	tether_log_info("channel %u: %s: %s", f->channel, f->target,
			uv_strerror(err));
	agent_term_say(f->term, "the connection to %s failed: %s", f->target,
		       uv_strerror(err));
	over(f, NULL);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct fwd_conn *c = s->data;
	struct agent_forward *f = c->f;
	int r;

	if (nread == 0 || f->closing || f->state != FWD_OPEN)
		return;
	if (nread == UV_ENOBUFS) {
		/* The window or the link filled between alloc and read. */
		update_reading(f);
		return;
	}
	if (nread == UV_EOF) {
		uv_read_stop(s);
		f->reading = false;
		f->rx_eof = true;
		send_eof(f);
		maybe_over(f);
		return;
	}
	if (nread < 0) {
		conn_failed(f, (int)nread);
		return;
	}
	r = send_msg(f, TETHER_MSG_STDOUT, buf->base, (size_t)nread);
	if (r != 0) {
		/* A closing link aborts every channel by itself. */
		if (r != TETHER_ERR_CLOSED)
			over(f, "cannot send output");
		return;
	}
	f->bytes_out += (uint64_t)nread;
	update_reading(f);
}

static void update_reading(struct agent_forward *f)
{
	bool want = f->state == FWD_OPEN && !f->closing && f->conn != NULL &&
		    !f->rx_eof && !f->console_closed &&
		    f->io.window(f->io.arg) > 0;

	if (want && !f->reading) {
		if (uv_read_start((uv_stream_t *)&f->conn->tcp, on_alloc,
				  on_read) == 0)
			f->reading = true;
	} else if (!want && f->reading) {
		uv_read_stop((uv_stream_t *)&f->conn->tcp);
		f->reading = false;
	}
}

void agent_forward_pump(struct agent_forward *f)
{
	if (f != NULL)
		update_reading(f);
}

static void on_write(uv_write_t *req, int status)
{
	struct fwd_write *w = (struct fwd_write *)req;
	struct agent_forward *f = w->f;
	size_t len = w->len;

	tether_free(w);
	if (f->closing || f->state != FWD_OPEN)
		return;
	if (status < 0) {
		conn_failed(f, status);
		return;
	}
	/* Written: the console may send that much more. */
	if (f->io.consumed(f->io.arg, len) != 0)
		tether_log_debug("channel %u: cannot send credit", f->channel);
}

/* Hands w to the connection (which owns it from now on), or fails it. */
static void write_out(struct agent_forward *f, struct fwd_write *w)
{
	uv_buf_t b = uv_buf_init((char *)w->data, (unsigned int)w->len);
	int r;

	r = uv_write(&w->req, (uv_stream_t *)&f->conn->tcp, &b, 1, on_write);
	if (r == 0)
		return;
	tether_free(w);
	conn_failed(f, r);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	struct agent_forward *f = req->data;

	(void)status;
	if (f->closing || f->state != FWD_OPEN)
		return;
	f->tx_done = true;
	maybe_over(f);
}

/* EOF(0): the target reads end of file after what is queued. */
static void shut_write(struct agent_forward *f)
{
	int r;

	if (f->tx_shutting || f->tx_done || f->conn == NULL)
		return;
	f->tx_shutting = true;
	f->shutdown_req.data = f;
	r = uv_shutdown(&f->shutdown_req, (uv_stream_t *)&f->conn->tcp,
			on_shutdown);
	if (r != 0) {
		f->tx_done = true;
		maybe_over(f);
	}
}

/* STDIN: to the target, or queued until there is one. */
static int input_data(struct agent_forward *f, const uint8_t *body, size_t len,
		      const char **why)
{
	struct fwd_write *w;

	f->bytes_in += len;
	if (f->tx_eof || f->tx_done || f->state == FWD_OVER) {
		/* Nowhere to write it: dropped, but credited. */
		if (f->state == FWD_OPEN)
			f->io.consumed(f->io.arg, len);
		return AGENT_FORWARD_MORE;
	}
	if (len == 0)
		return AGENT_FORWARD_MORE;
	w = tether_malloc(sizeof(*w) + len);
	if (w == NULL) {
		*why = "out of memory";
		return TETHER_ERR_NOMEM;
	}
	memset(w, 0, sizeof(*w));
	w->f = f;
	w->len = len;
	memcpy(w->data, body, len);
	if (f->state != FWD_OPEN) {
		/* The console need not wait for CONNECTED to send. */
		*f->queue_tail = w;
		f->queue_tail = &w->next;
		return AGENT_FORWARD_MORE;
	}
	write_out(f, w);
	return AGENT_FORWARD_MORE;
}

/* ---- Connecting --------------------------------------------------------- */

/* The target could not be reached: ERROR, audit, the customer's line. */
static void connect_failed(struct agent_forward *f, const char *reason)
{
	char err[ERROR_MAX];

	uv_timer_stop(&f->timer);
	/* Reported before the ERROR that makes the console leave. */
	report(&f->io, f->channel, f->host, f->port, false, reason);
	snprintf(err, sizeof(err), "%s: %s", f->target, reason);
	send_error(f, err);
	agent_term_say(f->term, "%s could not connect to %s: %s", f->technician,
		       f->target, reason);
	over(f, NULL);
}

static void on_connect(uv_connect_t *req, int status)
{
	struct fwd_conn *c = req->data;
	struct agent_forward *f = c->f;
	struct fwd_write *w, *next;

	if (f->closing || f->state != FWD_CONNECTING || c != f->conn)
		return;
	if (status < 0) {
		/* The next address, if the name had more. */
		f->last_err = status;
		conn_close(f);
		connect_next(f);
		return;
	}
	uv_timer_stop(&f->timer);
	uv_freeaddrinfo(f->ai_list);
	f->ai_list = f->ai_next = NULL;
	/* Interactive traffic (ssh) must not wait for Nagle. */
	uv_tcp_nodelay(&c->tcp, 1);
	f->state = FWD_OPEN;
	f->started_ms = uv_now(f->loop);
	f->connected = true;
	send_msg(f, TETHER_MSG_CONNECTED, NULL, 0);
	report(&f->io, f->channel, f->host, f->port, true, NULL);
	agent_term_say(f->term, "%s connected to %s (channel %u)",
		       f->technician, f->target, f->channel);
	w = f->queue;
	f->queue = NULL;
	f->queue_tail = &f->queue;
	for (; w != NULL; w = next) {
		next = w->next;
		if (f->state != FWD_OPEN || f->conn == NULL) {
			tether_free(w);
			continue;
		}
		write_out(f, w);
	}
	if (f->state != FWD_OPEN)
		return;
	if (f->tx_eof)
		shut_write(f);
	update_reading(f);
}

/* Tries the addresses in turn; the last error if none is left. */
static void connect_next(struct agent_forward *f)
{
	struct addrinfo *ai;
	struct fwd_conn *c;
	int r;

	while ((ai = f->ai_next) != NULL) {
		f->ai_next = ai->ai_next;
		if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
			continue;
		c = tether_calloc(1, sizeof(*c));
		if (c == NULL) {
			connect_failed(f, "out of memory");
			return;
		}
		c->f = f;
		r = uv_tcp_init(f->loop, &c->tcp);
		if (r != 0) {
			tether_free(c);
			connect_failed(f, uv_strerror(r));
			return;
		}
		c->tcp.data = c;
		c->req.data = c;
		f->refs++;
		f->conn = c;
		r = uv_tcp_connect(&c->req, &c->tcp, ai->ai_addr, on_connect);
		if (r == 0)
			return;
		f->last_err = r;
		conn_close(f);
	}
	connect_failed(
	    f, uv_strerror(f->last_err != 0 ? f->last_err : UV_EADDRNOTAVAIL));
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct agent_forward *f = req->data;

	f->gai_pending = false;
	if (f->closing || f->state != FWD_CONNECTING) {
		/* Closed, or timed out, meanwhile. */
		if (res != NULL)
			uv_freeaddrinfo(res);
	} else if (status < 0) {
		connect_failed(f, uv_strerror(status));
	} else {
		f->ai_list = f->ai_next = res;
		connect_next(f);
	}
	/* Last: once the forward is closed, this may free it. */
	release(f);
}

static void on_connect_timeout(uv_timer_t *h)
{
	struct agent_forward *f = h->data;

	if (f->state != FWD_CONNECTING || f->closing)
		return;
	/* A lookup or an attempt still running is dropped on close. */
	if (f->gai_pending)
		uv_cancel((uv_req_t *)&f->gai);
	conn_close(f);
	connect_failed(f, "connection timed out");
}

/* Allowed: look the name up (in libuv's thread pool) and connect. */
static void start_connect(struct agent_forward *f)
{
	struct addrinfo hints;
	char port[8];
	int r;

	f->state = FWD_CONNECTING;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%u", f->port);
	f->gai.data = f;
	uv_timer_start(&f->timer, on_connect_timeout, CONNECT_TIMEOUT_MS, 0);
	r = uv_getaddrinfo(f->loop, &f->gai, on_resolved, f->host, port,
			   &hints);
	if (r != 0) {
		connect_failed(f, uv_strerror(r));
		return;
	}
	f->gai_pending = true;
	f->refs++;
}

/* ---- Asking ------------------------------------------------------------- */

static void on_answered(struct agent_question *q, enum agent_answer a)
{
	struct agent_forward *f = q->arg;

	if (f->closing || f->state != FWD_ASKING)
		return;
	switch (a) {
	case AGENT_ANSWER_YES: {
		struct agent_target t = {.port = f->port};

		snprintf(t.host, sizeof(t.host), "%s", f->host);
		agent_term_say(f->term, "allowed: %s connects to %s",
			       f->technician, f->target);
		/* Once is enough: the session does not ask again. */
		if (f->granted != NULL &&
		    agent_targets_add(f->granted, &t) != 0)
			tether_log_warn("cannot remember %s as allowed",
					f->target);
		start_connect(f);
		return;
	}
	case AGENT_ANSWER_NO:
		refuse_f(f, "refused by the customer", "you did not allow");
		break;
	case AGENT_ANSWER_TIMEOUT:
		refuse_f(f, "the customer did not answer",
			 "was not answered in 60 s");
		break;
	case AGENT_ANSWER_NO_TERMINAL:
		refuse_f(f, "no terminal to ask the customer",
			 "could not be asked (no terminal)");
		break;
	}
	over(f, NULL);
}

/* A question, now or after those already waiting. */
static void ask(struct agent_forward *f)
{
	snprintf(f->question, sizeof(f->question),
		 "%s wants to connect to %s. Allow? [y/N] ", f->technician,
		 f->target);
	f->state = FWD_ASKING;
	f->q.text = f->question;
	f->q.timeout_ms = ASK_TIMEOUT_MS;
	f->q.answered = on_answered;
	f->q.arg = f;
	agent_term_ask(f->term, &f->q);
}

/* ---- The channel -------------------------------------------------------- */

/* A FORWARD (tether/msg.h) with a host (not empty) and a port (not 0). */
static int parse_forward(const uint8_t *body, size_t len, char *host,
			 size_t hostlen, uint16_t *port)
{
	struct tether_msg_forward m;
	size_t hl;
	int r;

	host[0] = '\0';
	*port = 0;
	if ((r = tether_msg_decode_forward(body, len, &m)) != 0)
		return r;
	hl = strlen(m.host);
	if (hl == 0 || hl >= hostlen || m.port == 0) {
		r = TETHER_ERR_FORMAT;
		goto out;
	}
	*port = m.port;
	/* "[::1]" as a URL would write it: the address inside. */
	if (m.host[0] == '[' && hl > 2 && m.host[hl - 1] == ']') {
		memcpy(host, m.host + 1, hl - 2);
		host[hl - 2] = '\0';
	} else {
		memcpy(host, m.host, hl + 1);
	}
out:
	tether_msg_clear_forward(&m);
	return r;
}

int agent_forward_start(const struct agent_forward_env *env, uint8_t msg,
			const uint8_t *body, size_t len,
			struct agent_forward **out, const char **why)
{
	const struct asker k = {env->term, env->channel, env->technician,
				&env->io};
	char host[TETHER_MSG_HOST_MAX + 1], target[TARGET_MAX];
	char shown[TETHER_MSG_HOST_MAX + 1];
	struct agent_forward *f;
	uint16_t port;
	bool ok;
	int r;

	*out = NULL;
	*why = NULL;
	if (msg != TETHER_MSG_FORWARD) {
		*why = "unexpected message";
		return TETHER_ERR_PROTOCOL;
	}
	r = parse_forward(body, len, host, sizeof(host), &port);
	if (r == TETHER_ERR_NOMEM) {
		*why = "out of memory";
		return r;
	}
	if (r != 0) {
		*why = "malformed forward request";
		return r;
	}
	if (!host_valid(host)) {
		/* Cleaned, it is safe for the terminal and valid JSON. */
		agent_text_clean(host, shown, sizeof(shown));
		agent_target_name(shown, port, target, sizeof(target));
		refuse(&k, shown, port, target, "invalid host name",
		       "is not a valid host name");
		return AGENT_FORWARD_DONE;
	}
	agent_target_name(host, port, target, sizeof(target));
	ok = allowed(env->allowed, host, port);
	if (!ok && env->granted != NULL &&
	    agent_targets_have(env->granted, host, port)) {
		agent_term_say(env->term,
			       "%s connects to %s again (you allowed it "
			       "earlier in this session)",
			       env->technician, target);
		ok = true;
	}
	if (!ok && !agent_term_attended(env->term)) {
		refuse(&k, host, port, target,
		       "not allowed by the customer's policy",
		       "your policy does not allow");
		return AGENT_FORWARD_DONE;
	}
	f = tether_calloc(1, sizeof(*f));
	if (f == NULL) {
		*why = "out of memory";
		return TETHER_ERR_NOMEM;
	}
	f->loop = env->loop;
	f->term = env->term;
	f->channel = env->channel;
	snprintf(f->technician, sizeof(f->technician), "%s", env->technician);
	f->io = env->io;
	f->granted = env->granted;
	memcpy(f->host, host, sizeof(f->host));
	f->port = port;
	memcpy(f->target, target, sizeof(f->target));
	f->queue_tail = &f->queue;
	uv_timer_init(f->loop, &f->timer);
	f->timer.data = f;
	f->refs = 1;
	*out = f;
	if (ok)
		start_connect(f);
	else
		ask(f);
	return AGENT_FORWARD_MORE;
}

/* EOF(0), the end of the console's bytes: the only EOF it may send. */
static bool stdin_eof(const uint8_t *body, size_t len)
{
	struct tether_msg_eof m;

	return tether_msg_decode_eof(body, len, &m) == 0 &&
	       m.stream == TETHER_MSG_STREAM_STDIN;
}

int agent_forward_input(struct agent_forward *f, uint8_t msg,
			const uint8_t *body, size_t len, const char **why)
{
	*why = NULL;
	if (f->state == FWD_OVER || f->closing)
		return AGENT_FORWARD_MORE;
	switch (msg) {
	case TETHER_MSG_STDIN:
		return input_data(f, body, len, why);
	case TETHER_MSG_EOF:
		if (!stdin_eof(body, len))
			break;
		f->tx_eof = true;
		if (f->state == FWD_OPEN)
			shut_write(f);
		return AGENT_FORWARD_MORE;
	case TETHER_MSG_CLOSE:
		if (f->state != FWD_OPEN) {
			/* The console gave up before the connection. */
			report(&f->io, f->channel, f->host, f->port, false,
			       "cancelled by the technician");
			unask(f);
			f->state = FWD_OVER;
			return AGENT_FORWARD_DONE;
		}
		/* Queued bytes still reach the target, then the end. */
		f->tx_eof = true;
		f->console_closed = true;
		update_reading(f);
		shut_write(f);
		maybe_over(f);
		return AGENT_FORWARD_MORE;
	default:
		break;
	}
	*why = "unexpected message";
	return TETHER_ERR_PROTOCOL;
}
