/*
 * Forward channels (docs/protocol.md, "Forwarding") and `tether forward
 * T-N [LOCALPORT:]HOST:PORT`, the console's `ssh -L`.
 *
 * The bridge: one relay connection with the session key (struct
 * console_forward) carries any number of forward channels, each tied to one
 * local stream (an accepted TCP connection, or the socketpair end that
 * `tether ssh` gives libssh2's thread).  A channel is opened without
 * waiting (several may be opening at once, so the loop never nests):
 * "open" goes out, its answer comes back through the client's hooks
 * (decoded there as the open's), then
 * FORWARD; the local stream is read only once CONNECTED came, and then
 * only while the channel has send window and the link is under its
 * high-water mark.  STDOUT bodies are copied into uv_write requests and
 * credited with WINDOW once the local side took them, so a slow local
 * reader slows the target, never our memory (at most one window per
 * channel is queued).  EOF(0) follows the local EOF, a shutdown follows
 * EOF(1); the agent's CLOSE ends the channel once our writes are out.  A
 * local error, or the end of the command, closes a live channel with the
 * relay's "close" request instead.
 *
 * Errors about one channel are printed as they happen ("tether: remote:
 * ..."), or, for `tether ssh`, kept (the first one) to be printed after
 * the terminal is restored.
 */
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <tether/alloc.h>
#include <tether/buf.h>
#include <tether/chan.h>
#include <tether/crypto.h>
#include <tether/err.h>
#include <tether/link.h>
#include <tether/msg.h>
#include <tether/proto.h>

#include "console.h"

enum conn_state {
	CONN_OPENING,	 /* "open" sent, no answer yet */
	CONN_CONNECTING, /* FORWARD sent, waiting for CONNECTED */
	CONN_OPEN,	 /* bytes flow */
	CONN_DONE,	 /* the channel is over; the local side closes */
};

struct fwd_conn {
	struct fwd_conn *next;
	struct console_forward *f;
	union {
		uv_handle_t handle;
		uv_stream_t stream;
		uv_tcp_t tcp;
		uv_pipe_t pipe;
	} local;
	bool local_ready;   /* the handle is initialised (close it) */
	bool local_closing; /* uv_close called */
	bool local_closed;  /* its close callback ran */
	uv_shutdown_t shut;
	bool shut_busy;
	enum conn_state state;
	int64_t open_id;	      /* while CONN_OPENING */
	struct tether_ctrl_open open; /* the request, with our nonce */
	struct tether_chan *chan;
	uint32_t channel;
	size_t queued; /* STDOUT bytes in uv_write requests */
	bool reading;
	bool local_eof;	 /* EOF(0) sent */
	bool remote_eof; /* EOF(1) came */
	bool got_close;	 /* the agent's CLOSE came */
	bool dead;	 /* send nothing more on the channel */
	bool abandon;	 /* local side gone while opening: close on answer */
};

/* One STDOUT body on its way to the local stream. */
struct fwd_write {
	uv_write_t req;
	struct fwd_conn *conn;
	size_t len;
	uint8_t data[];
};

struct console_forward {
	struct console_client c;
	char host[CONSOLE_HOST_MAX];
	int port;
	int64_t session;
	uint8_t ke[TETHER_SPAKE2_KE_LEN];
	struct fwd_conn *conns;
	bool keep_errors;
	char failure[TETHER_MSG_ERROR_MAX + 64]; /* the first kept error */
};

/* Local bytes on their way out: one read at a time uses it. */
static uint8_t read_buf[TETHER_CHANNEL_CHUNK];

static void conn_pump(struct fwd_conn *k);
static size_t conn_window(const struct fwd_conn *k);
static void conn_check(struct fwd_conn *k);

/*
 * One line about a channel: printed now (`tether forward`), or kept until
 * the command has restored the terminal (`tether ssh`).  text may come
 * from the agent: it is printed cleaned.
 */
static void report(struct console_forward *f, const char *what,
		   const char *text)
{
	if (f->keep_errors) {
		if (f->failure[0] == '\0')
			snprintf(f->failure, sizeof(f->failure), "%s%s", what,
				 text);
		return;
	}
	console_error_text(what, text);
}

static struct tether_link *link_of(const struct console_forward *f)
{
	return console_client_link(&f->c);
}

static bool link_up(const struct console_forward *f)
{
	return link_of(f) != NULL;
}

static void on_local_closed(uv_handle_t *h)
{
	struct fwd_conn *k = h->data;

	k->local_closed = true;
	conn_check(k);
}

static void local_close(struct fwd_conn *k)
{
	if (k->local_closing)
		return;
	k->local_closing = true;
	k->reading = false;
	if (k->local_ready)
		uv_close(&k->local.handle, on_local_closed);
	else
		k->local_closed = true;
}

/*
 * Frees k once nothing refers to it any more: its handle is closed and
 * no open answer is still to come.
 */
static void conn_check(struct fwd_conn *k)
{
	struct fwd_conn **pp;

	if (k->state == CONN_DONE && k->queued == 0 && !k->shut_busy)
		local_close(k);
	if (!k->local_closed || k->state == CONN_OPENING)
		return;
	for (pp = &k->f->conns; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == k) {
			*pp = k->next;
			break;
		}
	}
	tether_chan_free(k->chan);
	tether_free(k);
}

/*
 * Ends the channel from our side (the local stream failed or is gone, or
 * the command ends): the relay's "close" tells the agent to drop its end.
 */
static void conn_abort(struct fwd_conn *k)
{
	const struct tether_ctrl_channel_ref close = {.channel = k->channel};

	if (k->state == CONN_OPENING) {
		k->abandon = true;
		local_close(k);
		return;
	}
	if (!k->dead && link_up(k->f))
		console_client_request(&k->f->c, TETHER_CTRL_CLOSE, &close);
	k->dead = true;
	k->state = CONN_DONE;
	local_close(k);
}

/* The channel is over without our doing: no more sends, close locally. */
static void conn_over(struct fwd_conn *k)
{
	k->dead = true;
	k->state = CONN_DONE;
	conn_check(k);
}

static void conn_send_failed(struct fwd_conn *k, int err)
{
	/* A closing link is reported once, by whoever runs the loop. */
	if (err != TETHER_ERR_CLOSED)
		report(k->f, "cannot send: ", tether_strerror(err));
	conn_abort(k);
}

static void conn_protocol_error(struct fwd_conn *k, const char *what)
{
	report(k->f, "channel protocol error: ", what);
	conn_abort(k);
}

static void on_read_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct fwd_conn *k = h->data;
	size_t w = conn_window(k);

	(void)suggested;
	if (w > sizeof(read_buf))
		w = sizeof(read_buf);
	*buf = uv_buf_init((char *)read_buf, (unsigned int)w);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct fwd_conn *k = s->data;
	int err;

	if (nread > 0 && !k->dead) {
		err = tether_chan_send(k->chan, link_of(k->f), TETHER_MSG_STDIN,
				       buf->base, (size_t)nread);
		if (err != 0) {
			conn_send_failed(k, err);
			return;
		}
	} else if (nread == UV_EOF) {
		k->local_eof = true;
		err = k->dead
			  ? 0
			  : console_session_send_eof(k->chan, link_of(k->f));
		if (err != 0) {
			conn_send_failed(k, err);
			return;
		}
	} else if (nread < 0 && nread != UV_ENOBUFS) {
		/* Reset by the local peer: nothing more will cross. */
		conn_abort(k);
		return;
	}
	conn_pump(k);
}

/* Reads the local side exactly while there is somewhere to put it. */
static void conn_pump(struct fwd_conn *k)
{
	bool can = k->state == CONN_OPEN && !k->dead && !k->local_eof &&
		   !k->local_closing && conn_window(k) > 0;

	if (!can && k->reading) {
		uv_read_stop(&k->local.stream);
		k->reading = false;
	} else if (can && !k->reading) {
		if (uv_read_start(&k->local.stream, on_read_alloc, on_read) !=
		    0) {
			conn_abort(k);
			return;
		}
		k->reading = true;
	}
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	struct fwd_conn *k = req->data;

	(void)status;
	k->shut_busy = false;
	conn_check(k);
}

static void on_write(uv_write_t *req, int status)
{
	struct fwd_write *w = (struct fwd_write *)req;
	struct fwd_conn *k = w->conn;
	int err;

	k->queued -= w->len;
	if (status != 0) {
		/* The local side went away (or we closed it). */
		if (!k->local_closing)
			conn_abort(k);
	} else if (!k->dead) {
		err = tether_chan_consumed(k->chan, link_of(k->f), w->len);
		if (err != 0)
			conn_send_failed(k, err);
	}
	tether_free(w);
	conn_check(k);
}

/* A STDOUT body: to the local side, credited once it is written. */
static void deliver(struct fwd_conn *k, const uint8_t *p, size_t n)
{
	struct fwd_write *w;
	uv_buf_t b;

	if (k->local_closing || k->remote_eof) {
		/* Nobody to take it: credit it so the agent is not stuck. */
		if (!k->dead &&
		    tether_chan_consumed(k->chan, link_of(k->f), n) != 0)
			conn_abort(k);
		return;
	}
	w = tether_malloc(sizeof(*w) + n);
	if (w == NULL) {
		report(k->f, "out of memory", "");
		conn_abort(k);
		return;
	}
	w->conn = k;
	w->len = n;
	memcpy(w->data, p, n);
	b = uv_buf_init((char *)w->data, (unsigned int)n);
	if (uv_write(&w->req, &k->local.stream, &b, 1, on_write) != 0) {
		tether_free(w);
		conn_abort(k);
		return;
	}
	k->queued += n;
}

/* EOF(1): the target closed its side; so do we, after what is queued. */
static void remote_eof(struct fwd_conn *k)
{
	k->remote_eof = true;
	if (k->local_closing || k->shut_busy)
		return;
	k->shut.data = k;
	if (uv_shutdown(&k->shut, &k->local.stream, on_shutdown) == 0)
		k->shut_busy = true;
}

/*
 * A body that did not decode (err, not 0) ends the connection: "malformed
 * WHAT" from the agent, or our own lack of memory.
 */
static void bad_body(struct fwd_conn *k, int err, const char *what)
{
	if (err == TETHER_ERR_NOMEM) {
		report(k->f, "out of memory", "");
		conn_abort(k);
		return;
	}
	conn_protocol_error(k, what);
}

static void on_error_msg(struct fwd_conn *k, const uint8_t *body, size_t len)
{
	struct tether_msg_error m;
	int err;

	if ((err = tether_msg_decode_error(body, len, &m)) != 0) {
		bad_body(k, err, "malformed ERROR");
		return;
	}
	report(k->f, "remote: ", m.reason);
	tether_msg_clear_error(&m);
	/* CLOSE follows; nothing more goes to the local side. */
	k->state = CONN_DONE;
	local_close(k);
}

/* EOF(1): the target closed its side; the agent sends no other EOF. */
static void on_eof_msg(struct fwd_conn *k, const uint8_t *body, size_t len)
{
	struct tether_msg_eof m;
	int err = tether_msg_decode_eof(body, len, &m);

	if (err == 0 && m.stream != TETHER_MSG_STREAM_STDOUT)
		err = TETHER_ERR_FORMAT;
	if (err != 0)
		bad_body(k, err, "malformed EOF");
	else
		remote_eof(k);
}

static void conn_message(struct fwd_conn *k, uint8_t msg, const uint8_t *body,
			 size_t len)
{
	switch (msg) {
	case TETHER_MSG_CONNECTED:
		if (k->state != CONN_CONNECTING ||
		    tether_msg_decode_empty(body, len) != 0) {
			conn_protocol_error(k, "unexpected CONNECTED");
			break;
		}
		k->state = CONN_OPEN;
		conn_pump(k);
		break;
	case TETHER_MSG_STDOUT:
		if (k->state != CONN_OPEN && k->state != CONN_DONE) {
			conn_protocol_error(k, "data before CONNECTED");
			break;
		}
		deliver(k, body, len);
		break;
	case TETHER_MSG_EOF:
		on_eof_msg(k, body, len);
		break;
	case TETHER_MSG_WINDOW:
		/* tether_chan_open() added the credit. */
		conn_pump(k);
		break;
	case TETHER_MSG_ERROR:
		on_error_msg(k, body, len);
		break;
	case TETHER_MSG_CLOSE:
		k->got_close = true;
		conn_over(k);
		break;
	default:
		conn_protocol_error(k, "unexpected message");
		break;
	}
}

static struct fwd_conn *find_channel(struct console_forward *f,
				     uint32_t channel)
{
	struct fwd_conn *k;

	for (k = f->conns; k != NULL; k = k->next)
		if (k->state != CONN_OPENING && k->channel == channel)
			return k;
	return NULL;
}

static void on_data(void *arg, const struct tether_frame *f)
{
	struct console_forward *fw = arg;
	struct fwd_conn *k = find_channel(fw, f->channel);
	const uint8_t *body;
	uint8_t msg;
	size_t len;
	int err;

	/* Frames in flight when we gave a channel up are normal. */
	if (k == NULL || k->got_close || k->dead)
		return;
	err = tether_chan_open(k->chan, f, &msg, &body, &len);
	if (err == TETHER_ERR_AUTH) {
		report(fw, "channel integrity check failed", "");
		conn_abort(k);
		return;
	}
	if (err != 0) {
		conn_protocol_error(k, tether_strerror(err));
		return;
	}
	conn_message(k, msg, body, len);
}

/* FORWARD: the target. */
static int send_forward(struct fwd_conn *k)
{
	struct console_forward *f = k->f;
	const struct tether_msg_forward m = {.host = f->host,
					     .port = (uint16_t)f->port};
	struct tether_buf *b = tether_buf_new(TETHER_CHAN_BODY_MAX);
	int err =
	    b != NULL ? tether_msg_encode_forward(b, &m) : TETHER_ERR_NOMEM;

	if (err == 0)
		err = tether_chan_send(k->chan, link_of(f), TETHER_MSG_FORWARD,
				       tether_buf_ptr(b), tether_buf_len(b));
	tether_buf_free(b);
	return err;
}

/* The relay's words for a refused open, as one line. */
static void report_refusal(struct console_forward *f,
			   const struct tether_ctrl_err *e)
{
	if (e->message != NULL && e->message[0] != '\0')
		report(f, "", e->message);
	else
		report(f, "the relay refused the channel: ",
		       tether_ctrl_code_name(e->code));
}

/* The open is over without a channel: the local side just closes. */
static void open_failed(struct fwd_conn *k)
{
	k->state = CONN_DONE;
	k->dead = true;
	local_close(k);
	conn_check(k);
}

static void open_answered(struct fwd_conn *k, struct tether_ctrl_msg *m)
{
	char why[TETHER_CTRL_WHY_MAX];
	int err;

	if (m->type == TETHER_CTRL_ERR) {
		report_refusal(k->f, &m->body.err);
		open_failed(k);
		return;
	}
	if (tether_ctrl_decode_answer(m, TETHER_CTRL_OPEN, why, sizeof(why)) !=
	    0) {
		report(k->f, "the relay sent a malformed answer: ", why);
		open_failed(k);
		return;
	}
	/* Reported inside; the local side just closes. */
	if (console_session_open_answer(&m->body.open_ok, &k->open, k->f->ke,
					&k->chan) != 0) {
		open_failed(k);
		return;
	}
	k->channel = tether_chan_id(k->chan);
	k->state = CONN_CONNECTING;
	if (k->abandon) {
		conn_abort(k);
		conn_check(k);
		return;
	}
	err = send_forward(k);
	if (err != 0)
		conn_send_failed(k, err);
}

/* The relay closed a channel before the agent's CLOSE. */
static void channel_closed(struct console_forward *f,
			   const struct tether_ctrl_chan_close *cl)
{
	struct fwd_conn *k = find_channel(f, (uint32_t)cl->channel);

	if (k == NULL || k->got_close || k->dead)
		return;
	report(f,
	       "connection lost: ", cl->reason != NULL ? cl->reason : "closed");
	k->dead = true;
	k->state = CONN_DONE;
	local_close(k);
}

static void on_ctrl(void *arg, struct tether_ctrl_msg *m)
{
	struct console_forward *f = arg;
	struct fwd_conn *k;

	if (m->type == TETHER_CTRL_CHAN_CLOSE) {
		channel_closed(f, &m->body.chan_close);
		return;
	}
	if (m->type != TETHER_CTRL_OK && m->type != TETHER_CTRL_ERR)
		return;
	/* An open's answer; those to our "close" need nothing. */
	for (k = f->conns; k != NULL; k = k->next) {
		if (k->state == CONN_OPENING && k->open_id == m->id) {
			open_answered(k, m);
			return;
		}
	}
}

static void on_drain(void *arg)
{
	struct console_forward *f = arg;
	struct fwd_conn *k, *next;

	for (k = f->conns; k != NULL; k = next) {
		next = k->next;
		conn_pump(k);
	}
}

/* STDIN bytes we may send now: 0 while the link is over high water. */
static size_t conn_window(const struct fwd_conn *k)
{
	if (k->chan == NULL || !link_up(k->f) ||
	    tether_link_over_high_water(link_of(k->f)))
		return 0;
	return tether_chan_send_window(k->chan);
}

/* A new bridge for a local handle the caller has just initialised. */
static struct fwd_conn *conn_new(struct console_forward *f)
{
	struct fwd_conn *k = tether_calloc(1, sizeof(*k));

	if (k == NULL) {
		report(f, "out of memory", "");
		return NULL;
	}
	k->f = f;
	k->state = CONN_OPENING;
	k->local.handle.data = k;
	return k;
}

/* Sends the open for k and links it in; the caller has set its handle. */
static int conn_start(struct console_forward *f, struct fwd_conn *k)
{
	k->local.handle.data = k;
	k->next = f->conns;
	f->conns = k;
	if (console_session_open_request(f->session, TETHER_KIND_FORWARD,
					 &k->open) == 0)
		k->open_id =
		    console_client_request(&f->c, TETHER_CTRL_OPEN, &k->open);
	if (k->open_id == 0) {
		/* Nothing is coming back for it: just close the local side. */
		k->state = CONN_DONE;
		k->dead = true;
		local_close(k);
		conn_check(k);
		return -1;
	}
	return 0;
}

int console_forward_accept(struct console_forward *f, uv_stream_t *server)
{
	struct fwd_conn *k = conn_new(f);

	if (k == NULL)
		return -1;
	if (uv_tcp_init(&f->c.loop, &k->local.tcp) != 0) {
		tether_free(k);
		return -1;
	}
	k->local_ready = true;
	k->local.handle.data = k;
	if (uv_accept(server, &k->local.stream) != 0) {
		k->next = f->conns;
		f->conns = k;
		k->state = CONN_DONE;
		k->dead = true;
		local_close(k);
		return -1;
	}
	uv_tcp_nodelay(&k->local.tcp, 1);
	return conn_start(f, k);
}

int console_forward_add_fd(struct console_forward *f, int fd)
{
	struct fwd_conn *k = conn_new(f);

	if (k == NULL)
		return -1;
	if (uv_pipe_init(&f->c.loop, &k->local.pipe, 0) != 0) {
		tether_free(k);
		return -1;
	}
	k->local_ready = true;
	k->local.handle.data = k;
	if (uv_pipe_open(&k->local.pipe, fd) != 0) {
		k->next = f->conns;
		f->conns = k;
		k->state = CONN_DONE;
		k->dead = true;
		local_close(k);
		report(f, "cannot use a socket pair", "");
		return -1;
	}
	return conn_start(f, k);
}

struct console_forward *console_forward_new(int64_t ticket,
					    const char *ticket_name,
					    const char *host, int port,
					    bool keep_errors)
{
	struct console_forward *f = tether_calloc(1, sizeof(*f));

	if (f == NULL) {
		console_error("out of memory");
		return NULL;
	}
	snprintf(f->host, sizeof(f->host), "%s", host);
	f->port = port;
	f->keep_errors = keep_errors;
	if (console_client_open(&f->c) != 0 ||
	    console_session_attach(&f->c, ticket, ticket_name, &f->session,
				   f->ke) != 0) {
		console_forward_free(f);
		return NULL;
	}
	f->c.hooks.on_data = on_data;
	f->c.hooks.on_ctrl = on_ctrl;
	f->c.hooks.on_drain = on_drain;
	f->c.hooks.arg = f;
	return f;
}

uv_loop_t *console_forward_loop(struct console_forward *f)
{
	return &f->c.loop;
}

void console_forward_run_once(struct console_forward *f)
{
	console_client_run_once(&f->c);
}

bool console_forward_lost(const struct console_forward *f)
{
	return !link_up(f);
}

size_t console_forward_count(const struct console_forward *f)
{
	const struct fwd_conn *k;
	size_t n = 0;

	for (k = f->conns; k != NULL; k = k->next)
		n++;
	return n;
}

const char *console_forward_failure(const struct console_forward *f)
{
	return f->failure[0] != '\0' ? f->failure : NULL;
}

void console_forward_report_lost(const struct console_forward *f)
{
	console_client_report_lost(&f->c);
}

/* Gives every channel up; their handles close as the loop runs. */
void console_forward_stop(struct console_forward *f)
{
	struct fwd_conn *k, *next;

	for (k = f->conns; k != NULL; k = next) {
		next = k->next;
		conn_abort(k);
	}
}

void console_forward_free(struct console_forward *f)
{
	struct fwd_conn *k;

	if (f == NULL)
		return;
	console_forward_stop(f);
	/* Nothing more comes in: no open is still waiting for an answer. */
	for (k = f->conns; k != NULL; k = k->next)
		if (k->state == CONN_OPENING)
			k->state = CONN_DONE;
	console_client_close(&f->c);
	while (f->conns != NULL) {
		k = f->conns;
		f->conns = k->next;
		tether_chan_free(k->chan);
		tether_free(k);
	}
	tether_wipe(f->ke, sizeof(f->ke));
	tether_free(f);
}

/*
 * `tether forward`.
 */

static const char forward_usage[] =
    "Usage: tether forward T-N [LOCALPORT:]HOST:PORT\n"
    "\n"
    "Listens on 127.0.0.1:LOCALPORT (0 or none: a free port) and carries\n"
    "each connection made to it to HOST:PORT as seen from the machine\n"
    "whose agent joined T-N (like ssh -L).  Prints\n"
    "  Forwarding 127.0.0.1:PORT -> HOST:PORT through T-N\n"
    "once listening.  Runs until Ctrl-C (exit 0); exits 255 when the\n"
    "relay connection is lost.\n";

struct forward_cmd {
	struct console_forward *f;
	uv_tcp_t server;
	uv_signal_t sigint;
	uv_signal_t sigterm;
	bool stop;
};

static void on_connection(uv_stream_t *server, int status)
{
	struct forward_cmd *x = server->data;

	if (status != 0) {
		console_error("accepting a connection: %s",
			      uv_strerror(status));
		return;
	}
	console_forward_accept(x->f, server);
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct forward_cmd *x = h->data;

	(void)signum;
	x->stop = true;
}

/*
 * [LOCALPORT:]HOST:PORT; HOST may be [IPV6].  0, or the usage status once
 * reported.
 */
static int parse_spec(const char *spec, int *lport, char *host, size_t hostlen,
		      int *port)
{
	const char *p = spec, *h, *end, *colon;
	size_t digits = strspn(spec, "0123456789");
	char num[32];
	uint64_t v;

	*lport = 0;
	/* "LOCALPORT:" only when a host and a port still follow. */
	if (digits > 0 && spec[digits] == ':' &&
	    strchr(spec + digits + 1, ':') != NULL) {
		snprintf(num, sizeof(num), "%.*s", (int)digits, spec);
		if (digits >= sizeof(num) ||
		    console_opts_number(num, 0, 65535, &v) != 0)
			return console_usage_error(
			    "forward", "bad local port in %s", spec);
		*lport = (int)v;
		p = spec + digits + 1;
	}
	if (p[0] == '[') {
		h = p + 1;
		end = strchr(h, ']');
		if (end == NULL || end[1] != ':')
			goto bad;
		colon = end + 1;
	} else {
		h = p;
		colon = strrchr(p, ':');
		end = colon;
		if (colon == NULL || memchr(p, ':', (size_t)(colon - p)))
			goto bad;
	}
	if (end == h || (size_t)(end - h) >= hostlen)
		goto bad;
	memcpy(host, h, (size_t)(end - h));
	host[end - h] = '\0';
	if (console_opts_number(colon + 1, 1, 65535, &v) != 0)
		goto bad;
	*port = (int)v;
	return 0;
bad:
	return console_usage_error("forward",
				   "bad target %s (expected "
				   "[LOCALPORT:]HOST:PORT)",
				   spec);
}

static int start_listening(struct forward_cmd *x, int lport, int *bound)
{
	struct sockaddr_storage ss;
	struct sockaddr_in sin;
	int len = sizeof(ss), err;

	uv_ip4_addr("127.0.0.1", lport, &sin);
	err = uv_tcp_init(console_forward_loop(x->f), &x->server);
	if (err != 0) {
		console_error("cannot listen: %s", uv_strerror(err));
		return -1;
	}
	x->server.data = x;
	err = uv_tcp_bind(&x->server, (const struct sockaddr *)&sin, 0);
	if (err == 0)
		err = uv_listen((uv_stream_t *)&x->server, 128, on_connection);
	if (err == 0)
		err = uv_tcp_getsockname(&x->server, (struct sockaddr *)&ss,
					 &len);
	if (err != 0) {
		console_error("cannot listen on 127.0.0.1:%d: %s", lport,
			      uv_strerror(err));
		return -1;
	}
	*bound = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return 0;
}

static const struct console_opts forward_opts = {
    .name = "forward",
    .usage = forward_usage,
    .flags = CONSOLE_OPTS_TICKET | CONSOLE_OPTS_IN_ORDER,
    .min = 1,
    .max = -1,
    .need = "expected T-N [LOCALPORT:]HOST:PORT",
};

int console_forward(int argc, char **argv)
{
	char host[CONSOLE_HOST_MAX];
	struct console_args a;
	struct forward_cmd x;
	int ret, lport = 0, port = 0, bound = 0;
	bool listening = false;

	ret = console_opts_parse(&forward_opts, argc, argv, NULL, &a);
	if (ret >= 0)
		return ret;
	if (a.argc != 1)
		return console_usage_error("forward", "%s", forward_opts.need);
	ret = parse_spec(a.argv[0], &lport, host, sizeof(host), &port);
	if (ret != 0)
		return ret;

	memset(&x, 0, sizeof(x));
	x.f = console_forward_new(a.ticket, a.ticket_name, host, port, false);
	if (x.f == NULL)
		return CONSOLE_EXIT_FAIL;
	ret = CONSOLE_EXIT_FAIL;
	if (start_listening(&x, lport, &bound) != 0)
		goto out;
	listening = true;
	uv_signal_init(console_forward_loop(x.f), &x.sigint);
	uv_signal_init(console_forward_loop(x.f), &x.sigterm);
	x.sigint.data = &x;
	x.sigterm.data = &x;
	uv_signal_start(&x.sigint, on_signal, SIGINT);
	uv_signal_start(&x.sigterm, on_signal, SIGTERM);
	printf("Forwarding 127.0.0.1:%d -> %s%s%s:%d through %s\n", bound,
	       strchr(host, ':') != NULL ? "[" : "", host,
	       strchr(host, ':') != NULL ? "]" : "", port, a.ticket_name);
	fflush(stdout);
	while (!x.stop && !console_forward_lost(x.f))
		console_forward_run_once(x.f);
	if (x.stop)
		ret = 0;
	else
		console_forward_report_lost(x.f);
out:
	if (listening) {
		uv_close((uv_handle_t *)&x.sigint, NULL);
		uv_close((uv_handle_t *)&x.sigterm, NULL);
	}
	if (x.server.loop != NULL)
		uv_close((uv_handle_t *)&x.server, NULL);
	console_forward_free(x.f);
	return ret;
}
