/*
 * Forward channels (docs/protocol.md, "Forwarding") and `tether forward
 * T-N [LOCALPORT:]HOST:PORT`, the console's `ssh -L`.
 *
 * The bridge: one relay connection with the session key (struct
 * console_fwd) carries any number of forward channels, each tied to one
 * local stream (an accepted TCP connection, or the socketpair end that
 * `tether ssh` gives libssh2's thread).  A channel is opened without
 * waiting (several may be opening at once, so the loop never nests):
 * "open" goes out, its answer comes back through the client's hooks, then
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
#include <stdarg.h>
#include <stdlib.h>
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
	struct console_fwd *f;
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
	json_int_t open_id; /* while CONN_OPENING */
	uint8_t nonce_c[TETHER_SEAL_NONCE_LEN];
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

struct console_fwd {
	struct console_client c;
	struct console_config cfg;
	char ticket[CONSOLE_TICKET_MAX];
	char host[CONSOLE_HOST_MAX];
	int port;
	json_t *session;
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
static void report(struct console_fwd *f, const char *what, const char *text)
{
	if (f->keep_errors) {
		if (f->failure[0] == '\0')
			snprintf(f->failure, sizeof(f->failure), "%s%s", what,
				 text);
		return;
	}
	fputs("tether: ", stderr);
	fputs(what, stderr);
	console_print_clean(stderr, text);
	fputs(console_eol(), stderr);
}

static bool link_up(const struct console_fwd *f)
{
	return f->c.link != NULL && !f->c.closed;
}

/* Sends a control request whose answer nobody waits for; its id, or 0. */
static json_int_t send_request(struct console_fwd *f, json_t *req)
{
	json_int_t id = ++f->c.next_id;
	int err = TETHER_ERR_NOMEM;

	if (req != NULL &&
	    json_object_set_new(req, "id", json_integer(id)) == 0)
		err = link_up(f) ? tether_link_send_json(f->c.link, req)
				 : TETHER_ERR_CLOSED;
	json_decref(req);
	return err == 0 ? id : 0;
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
	if (k->state == CONN_OPENING) {
		k->abandon = true;
		local_close(k);
		return;
	}
	if (!k->dead && link_up(k->f))
		send_request(k->f,
			     json_pack("{s:s, s:I}", "t", "close", "channel",
				       (json_int_t)k->channel));
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
		err = tether_chan_send(k->chan, k->f->c.link, TETHER_MSG_STDIN,
				       buf->base, (size_t)nread);
		if (err != 0) {
			conn_send_failed(k, err);
			return;
		}
	} else if (nread == UV_EOF) {
		k->local_eof = true;
		err =
		    k->dead ? 0 : console_send_stdin_eof(k->chan, k->f->c.link);
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
		err = tether_chan_consumed(k->chan, k->f->c.link, w->len);
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
		    tether_chan_consumed(k->chan, k->f->c.link, n) != 0)
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

static struct fwd_conn *find_channel(struct console_fwd *f, uint32_t channel)
{
	struct fwd_conn *k;

	for (k = f->conns; k != NULL; k = k->next)
		if (k->state != CONN_OPENING && k->channel == channel)
			return k;
	return NULL;
}

static void on_data(void *arg, const struct tether_frame *f)
{
	struct console_fwd *fw = arg;
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
	struct console_fwd *f = k->f;
	const struct tether_msg_forward m = {.host = f->host,
					     .port = (uint16_t)f->port};
	struct tether_buf *b = tether_buf_new(TETHER_CHAN_BODY_MAX);
	int err =
	    b != NULL ? tether_msg_encode_forward(b, &m) : TETHER_ERR_NOMEM;

	if (err == 0)
		err = tether_chan_send(k->chan, f->c.link, TETHER_MSG_FORWARD,
				       tether_buf_ptr(b), tether_buf_len(b));
	tether_buf_free(b);
	return err;
}

/* The relay's words for a refused open, as one line. */
static void report_refusal(struct console_fwd *f, const json_t *ans)
{
	const char *msg = console_json_str(ans, "message");
	const char *code = console_json_str(ans, "code");

	if (msg != NULL && msg[0] != '\0')
		report(f, "", msg);
	else
		report(f, "the relay refused the channel: ",
		       code != NULL ? code : "?");
}

static void open_answered(struct fwd_conn *k, json_t *ans)
{
	int err;

	if (strcmp(console_json_str(ans, "t"), "ok") != 0) {
		report_refusal(k->f, ans);
		k->state = CONN_DONE;
		k->dead = true;
		local_close(k);
		conn_check(k);
		return;
	}
	/* Reported inside; the local side just closes. */
	if (console_open_answer(ans, k->f->ke, k->nonce_c, &k->channel,
				&k->chan) != 0) {
		k->state = CONN_DONE;
		k->dead = true;
		local_close(k);
		conn_check(k);
		return;
	}
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

static void on_ctrl(void *arg, json_t *msg)
{
	struct console_fwd *f = arg;
	const char *t = console_json_str(msg, "t");
	json_int_t id = json_integer_value(json_object_get(msg, "id"));
	struct fwd_conn *k;
	const char *reason;

	if (strcmp(t, "ok") == 0 || strcmp(t, "err") == 0) {
		/* An open's answer; those to our "close" need nothing. */
		for (k = f->conns; k != NULL; k = k->next) {
			if (k->state == CONN_OPENING && k->open_id == id) {
				open_answered(k, msg);
				return;
			}
		}
		return;
	}
	if (strcmp(t, "close") != 0)
		return;
	k = find_channel(
	    f, (uint32_t)json_integer_value(json_object_get(msg, "channel")));
	if (k == NULL || k->got_close || k->dead)
		return;
	/* The relay gave the channel up before the agent's CLOSE. */
	reason = console_json_str(msg, "reason");
	report(f, "connection lost: ", reason != NULL ? reason : "closed");
	k->dead = true;
	k->state = CONN_DONE;
	local_close(k);
}

static void on_drain(void *arg)
{
	struct console_fwd *f = arg;
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
	    tether_link_over_high_water(k->f->c.link))
		return 0;
	return tether_chan_send_window(k->chan);
}

/* A new bridge for a local handle the caller has just initialised. */
static struct fwd_conn *conn_new(struct console_fwd *f)
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
static int conn_start(struct console_fwd *f, struct fwd_conn *k)
{
	json_t *req;

	k->local.handle.data = k;
	k->next = f->conns;
	f->conns = k;
	req = console_open_request(f->session, TETHER_KIND_NAME_FORWARD, k->nonce_c);
	k->open_id = req != NULL ? send_request(f, req) : 0;
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

int console_fwd_accept(struct console_fwd *f, uv_stream_t *server)
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

int console_fwd_add_fd(struct console_fwd *f, int fd)
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

struct console_fwd *console_fwd_new(const char *ticket, const char *host,
				    int port, bool keep_errors)
{
	struct console_fwd *f = tether_calloc(1, sizeof(*f));

	if (f == NULL) {
		console_error("out of memory");
		return NULL;
	}
	snprintf(f->ticket, sizeof(f->ticket), "%s", ticket);
	snprintf(f->host, sizeof(f->host), "%s", host);
	f->port = port;
	f->keep_errors = keep_errors;
	if (console_connect(&f->c, &f->cfg) != 0 ||
	    console_attach(&f->c, ticket, &f->session, f->ke) != 0) {
		console_fwd_free(f);
		return NULL;
	}
	f->c.hooks.on_data = on_data;
	f->c.hooks.on_ctrl = on_ctrl;
	f->c.hooks.on_drain = on_drain;
	f->c.hooks.arg = f;
	return f;
}

uv_loop_t *console_fwd_loop(struct console_fwd *f)
{
	return &f->c.loop;
}

void console_fwd_run_once(struct console_fwd *f)
{
	console_run_once(&f->c);
}

bool console_fwd_lost(const struct console_fwd *f)
{
	return !link_up(f);
}

size_t console_fwd_count(const struct console_fwd *f)
{
	const struct fwd_conn *k;
	size_t n = 0;

	for (k = f->conns; k != NULL; k = k->next)
		n++;
	return n;
}

const char *console_fwd_failure(const struct console_fwd *f)
{
	return f->failure[0] != '\0' ? f->failure : NULL;
}

void console_fwd_report_lost(const struct console_fwd *f)
{
	console_report_lost(&f->c);
}

/* Gives every channel up; their handles close as the loop runs. */
void console_fwd_stop(struct console_fwd *f)
{
	struct fwd_conn *k, *next;

	for (k = f->conns; k != NULL; k = next) {
		next = k->next;
		conn_abort(k);
	}
}

void console_fwd_free(struct console_fwd *f)
{
	struct fwd_conn *k;

	if (f == NULL)
		return;
	console_fwd_stop(f);
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
	json_decref(f->session);
	tether_wipe(f->ke, sizeof(f->ke));
	console_config_clear(&f->cfg);
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
	struct console_fwd *f;
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
	console_fwd_accept(x->f, server);
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
	char *num_end;
	long v;

	*lport = 0;
	/* "LOCALPORT:" only when a host and a port still follow. */
	v = strtol(p, &num_end, 10);
	if (num_end != p && *num_end == ':' && strchr(num_end + 1, ':') &&
	    p[0] != '-') {
		if (v < 0 || v > 65535)
			return console_usage_error(
			    "forward", "bad local port in %s", spec);
		*lport = (int)v;
		p = num_end + 1;
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
	v = strtol(colon + 1, &num_end, 10);
	if (colon[1] == '\0' || colon[1] == '-' || *num_end != '\0' || v < 1 ||
	    v > 65535)
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
	err = uv_tcp_init(console_fwd_loop(x->f), &x->server);
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

int console_forward(int argc, char **argv)
{
	char ticket[CONSOLE_TICKET_MAX], host[CONSOLE_HOST_MAX];
	struct forward_cmd x;
	int first, ret, lport = 0, port = 0, bound = 0;
	bool listening = false;

	ret = console_run_args("forward", forward_usage,
			       "expected T-N [LOCALPORT:]HOST:PORT", argc, argv,
			       ticket, sizeof(ticket), &first);
	if (ret >= 0)
		return ret;
	if (first != argc - 1)
		return console_usage_error(
		    "forward", "%s", "expected T-N [LOCALPORT:]HOST:PORT");
	ret = parse_spec(argv[first], &lport, host, sizeof(host), &port);
	if (ret != 0)
		return ret;

	memset(&x, 0, sizeof(x));
	x.f = console_fwd_new(ticket, host, port, false);
	if (x.f == NULL)
		return CONSOLE_EXIT_FAIL;
	ret = CONSOLE_EXIT_FAIL;
	if (start_listening(&x, lport, &bound) != 0)
		goto out;
	listening = true;
	uv_signal_init(console_fwd_loop(x.f), &x.sigint);
	uv_signal_init(console_fwd_loop(x.f), &x.sigterm);
	x.sigint.data = &x;
	x.sigterm.data = &x;
	uv_signal_start(&x.sigint, on_signal, SIGINT);
	uv_signal_start(&x.sigterm, on_signal, SIGTERM);
	printf("Forwarding 127.0.0.1:%d -> %s%s%s:%d through %s\n", bound,
	       strchr(host, ':') != NULL ? "[" : "", host,
	       strchr(host, ':') != NULL ? "]" : "", port, ticket);
	fflush(stdout);
	while (!x.stop && !console_fwd_lost(x.f))
		console_fwd_run_once(x.f);
	if (x.stop) {
		ret = 0;
	} else {
		console_fwd_report_lost(x.f);
	}
out:
	if (listening) {
		uv_close((uv_handle_t *)&x.sigint, NULL);
		uv_close((uv_handle_t *)&x.sigterm, NULL);
	}
	if (x.server.loop != NULL)
		uv_close((uv_handle_t *)&x.server, NULL);
	console_fwd_free(x.f);
	return ret;
}
