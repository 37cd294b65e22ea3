/*
 * The channel driver: one sealed channel on a ticket, shared by `tether
 * exec`, `shell`, `put`, `get` and `diag`.  It connects, attaches to the
 * ticket's session (console-session.c), opens a channel of the command's
 * kind, lets the command send its opening message (EXEC, SHELL, PUT,
 * GET), then streams: standard input as STDIN chunks and EOF(0); STDOUT
 * and STDERR to the command's output sink (by default our fds 1 and 2),
 * credited back with WINDOW once it took them.  When CLOSE arrives the
 * sink's end says what the run came to (by default the remote status, exit
 * code or 128 + signal); anything that ends the channel before CLOSE is
 * "connection lost", status 255.  The sink's after may then use the still
 * open connection for a follow-up request (diag saves its bundle so).
 *
 * Flow control both ways: standard input is read only while the channel
 * has send window and the link's queue is under the high-water mark
 * (resumed by WINDOW and by the link's drain callback); output is written
 * with blocking writes, so a slow reader of our stdout slows the frames we
 * take in, which stops the credit the agent needs to send more.
 *
 * The command may rewrite standard input before it is sent (the shell's
 * escapes) and is told when the stream is over before anything about the
 * outcome is printed, so that a raw terminal is restored first.  The
 * failure that ends a run is kept and printed only then, for that reason.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <tether/buf.h>
#include <tether/chan.h>
#include <tether/crypto.h>
#include <tether/err.h>
#include <tether/link.h>
#include <tether/msg.h>
#include <tether/proto.h>

#include "console.h"

struct console_run {
	struct console_client c;
	const struct console_run_ops *ops;
	int64_t ticket;
	const char *ticket_name;
	struct tether_chan *chan;
	uint32_t channel;
	/* Standard input: a stream handle, or file reads (uv_fs_read). */
	uv_handle_type in_kind;
	union {
		uv_pipe_t pipe;
		uv_tty_t tty;
	} in;
	uv_fs_t fs_req;
	int in_flags; /* fd 0's flags, restored at the end; -1 if unknown */
	bool in_open;
	bool in_reading;
	bool fs_busy;
	bool in_done; /* EOF(0) sent, or no more input to send */
	bool out_broken[3];
	/* Outcome. */
	bool got_exit;
	bool got_error; /* the remote said why in an ERROR, printed then */
	bool got_close;
	bool failed;
	bool disconnected; /* the user ended it (the shell's "~.") */
	int status;
	char failure[2 * CONSOLE_REASON_MAX]; /* why, printed at the end */
};

/* Plaintext of one STDIN chunk: used by one read at a time. */
static uint8_t stdin_buf[TETHER_CHANNEL_CHUNK];

static void stdin_pump(struct console_run *r);

static bool running(const struct console_run *r)
{
	return !r->failed && !r->got_close && !r->disconnected &&
	       console_client_link(&r->c) != NULL;
}

/* Ends the run with one reason (the first one wins), printed at the end. */
static void fail(struct console_run *r, const char *what, const char *detail)
{
	if (r->failed || r->got_close || r->disconnected)
		return;
	r->failed = true;
	snprintf(r->failure, sizeof(r->failure), "%s%s", what,
		 detail != NULL ? detail : "");
}

static void stdin_stop(struct console_run *r)
{
	if (r->in_reading) {
		uv_read_stop((uv_stream_t *)&r->in);
		r->in_reading = false;
	}
}

/* A send failed: the link is going away, or something worse. */
static void send_failed(struct console_run *r, int err)
{
	if (err != TETHER_ERR_CLOSED) {
		fail(r, "cannot send: ", tether_strerror(err));
		return;
	}
	/*
	 * The link is closing; its close callback has the reason, and the
	 * run loop reports it once that has run.  Just stop feeding it.
	 */
	r->in_done = true;
	stdin_stop(r);
}

static void stdin_eof(struct console_run *r)
{
	int err;

	stdin_stop(r);
	if (r->in_done)
		return;
	r->in_done = true;
	if (!running(r))
		return;
	err = console_session_send_eof(r->chan, console_client_link(&r->c));
	if (err != 0)
		send_failed(r, err);
}

/*
 * Sends standard input bytes at once, one STDIN message per call: a
 * keystroke must not wait for more.  The caller stays within the window
 * (stdin_room() kept the read that much smaller than the credit).
 */
void console_run_input(struct console_run *r, const uint8_t *p, size_t n)
{
	int err;

	if (n == 0 || !running(r))
		return;
	err = tether_chan_send(r->chan, console_client_link(&r->c),
			       TETHER_MSG_STDIN, p, n);
	if (err != 0)
		send_failed(r, err);
}

/* Standard input as read: through the command's filter, if it has one. */
static void stdin_data(struct console_run *r, const uint8_t *p, size_t n)
{
	if (r->ops->input != NULL)
		r->ops->input(r, r->ops->arg, p, n);
	else
		console_run_input(r, p, n);
}

static void stdin_read_failed(struct console_run *r, int uverr)
{
	console_error("reading standard input: %s", uv_strerror(uverr));
	stdin_eof(r);
}

/*
 * What the next read may take: a chunk, within the peer's credit, less
 * what the command's filter may add to it.
 */
static size_t stdin_room(const struct console_run *r)
{
	size_t w = tether_chan_send_window(r->chan);

	if (w > sizeof(stdin_buf))
		w = sizeof(stdin_buf);
	return w > r->ops->input_slack ? w - r->ops->input_slack : 0;
}

static void on_stdin_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct console_run *r = h->data;

	(void)suggested;
	*buf = uv_buf_init((char *)stdin_buf, (unsigned int)stdin_room(r));
}

static void on_stdin_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct console_run *r = s->data;

	if (nread > 0)
		stdin_data(r, (const uint8_t *)buf->base, (size_t)nread);
	else if (nread == UV_EOF)
		stdin_eof(r);
	else if (nread < 0 && nread != UV_ENOBUFS)
		stdin_read_failed(r, (int)nread);
	stdin_pump(r);
}

static void on_stdin_fs(uv_fs_t *req)
{
	struct console_run *r = req->data;
	ssize_t n = req->result;

	uv_fs_req_cleanup(req);
	r->fs_busy = false;
	if (n > 0)
		stdin_data(r, stdin_buf, (size_t)n);
	else if (n == 0)
		stdin_eof(r);
	else
		stdin_read_failed(r, (int)n);
	stdin_pump(r);
}

/* Reads standard input exactly while there is somewhere to put it. */
static void stdin_pump(struct console_run *r)
{
	bool can = running(r) && !r->in_done && stdin_room(r) > 0 &&
		   !tether_link_over_high_water(console_client_link(&r->c));
	uv_buf_t b;
	int err;

	if (r->in_kind == UV_FILE) {
		if (!can || r->fs_busy)
			return;
		b = uv_buf_init((char *)stdin_buf, (unsigned int)stdin_room(r));
		r->fs_req.data = r;
		err = uv_fs_read(&r->c.loop, &r->fs_req, STDIN_FILENO, &b, 1,
				 -1, on_stdin_fs);
		if (err != 0)
			stdin_read_failed(r, err);
		else
			r->fs_busy = true;
	} else if (r->in_open) {
		if (!can) {
			stdin_stop(r);
		} else if (!r->in_reading) {
			err = uv_read_start((uv_stream_t *)&r->in,
					    on_stdin_alloc, on_stdin_read);
			if (err != 0)
				stdin_read_failed(r, err);
			else
				r->in_reading = true;
		}
	}
}

/* Picks how to read fd 0: it may be a file, pipe, socket, tty or closed. */
static void stdin_setup(struct console_run *r)
{
	uv_loop_t *loop = &r->c.loop;
	int err = 0;

	r->in_flags = fcntl(STDIN_FILENO, F_GETFL);
	r->in_kind = uv_guess_handle(STDIN_FILENO);
	switch (r->in_kind) {
	case UV_TTY:
		err = uv_tty_init(loop, &r->in.tty, STDIN_FILENO, 1);
		r->in_open = err == 0;
		break;
	case UV_NAMED_PIPE:
	case UV_TCP:
		err = uv_pipe_init(loop, &r->in.pipe, 0);
		if (err == 0) {
			r->in_open = true;
			err = uv_pipe_open(&r->in.pipe, STDIN_FILENO);
		}
		break;
	case UV_FILE:
		break;
	default:
		/* Closed or unreadable: the command gets an empty input. */
		r->in_kind = UV_UNKNOWN_HANDLE;
		stdin_eof(r);
		return;
	}
	r->in.pipe.data = r;
	if (err != 0)
		stdin_read_failed(r, err);
}

static void stdin_cleanup(struct console_run *r)
{
	stdin_stop(r);
	if (r->in_open)
		uv_close((uv_handle_t *)&r->in, NULL);
	r->in_open = false;
}

/* The default sink: a STDOUT/STDERR body to our own fd. */
static void write_out(struct console_run *r, int fd, const uint8_t *p, size_t n)
{
	int err;

	if (!r->out_broken[fd]) {
		err = console_fd_write_all(fd, p, n);
		if (err != 0) {
			/* Keep the command running; drop what nobody reads. */
			r->out_broken[fd] = true;
			if (err != -EPIPE)
				console_error("writing %s: %s",
					      fd == 1 ? "standard output"
						      : "standard error",
					      strerror(-err));
		}
	}
}

/* A STDOUT/STDERR body to the sink, credited back once it took it. */
static void deliver(struct console_run *r, int fd, const uint8_t *p, size_t n)
{
	int err;

	if (r->ops->output != NULL)
		r->ops->output(r, r->ops->arg, fd, p, n);
	else
		write_out(r, fd, p, n);
	if (!running(r))
		return;
	err = tether_chan_consumed(r->chan, console_client_link(&r->c), n);
	if (err != 0)
		send_failed(r, err);
}

/* Before a line of our own on standard error. */
static void clear(struct console_run *r)
{
	if (r->ops->clear != NULL)
		r->ops->clear(r, r->ops->arg);
}

/*
 * A body that did not decode (err, not 0) ends the run: "malformed
 * WHAT" from the agent, or our own lack of memory.
 */
static void bad_body(struct console_run *r, int err, const char *what)
{
	if (err == TETHER_ERR_NOMEM)
		fail(r, "out of memory", NULL);
	else
		fail(r, "channel protocol error: ", what);
}

/* EOF(1) or EOF(2): one of the command's outputs is over. */
static void on_eof_msg(struct console_run *r, const uint8_t *body, size_t len)
{
	struct tether_msg_eof m;
	int err = tether_msg_decode_eof(body, len, &m);

	if (err == 0 && m.stream == TETHER_MSG_STREAM_STDIN)
		err = TETHER_ERR_FORMAT;
	if (err != 0)
		bad_body(r, err, "malformed EOF");
}

static void on_exit_msg(struct console_run *r, const uint8_t *body, size_t len)
{
	struct tether_msg_exit m;
	uint32_t value;
	int err;

	if ((err = tether_msg_decode_exit(body, len, &m)) != 0) {
		bad_body(r, err, "malformed EXIT");
		return;
	}
	value = m.value;
	if (m.how == TETHER_MSG_EXIT_SIGNAL)
		value = value > 127 ? 255 : 128 + value;
	r->status = value > 255 ? 255 : (int)value;
	r->got_exit = true;
}

static void on_error_msg(struct console_run *r, const uint8_t *body, size_t len)
{
	struct tether_msg_error m;
	int err;

	if ((err = tether_msg_decode_error(body, len, &m)) != 0) {
		bad_body(r, err, "malformed ERROR");
		return;
	}
	/* The channel still ends with CLOSE; the status stays 255. */
	r->got_error = true;
	clear(r);
	console_error_text("remote: ", m.reason);
	tether_msg_clear_error(&m);
}

static void on_data(void *arg, const struct tether_frame *f)
{
	struct console_run *r = arg;
	const uint8_t *body;
	uint8_t msg;
	size_t len;
	int err;

	if (!running(r))
		return;
	err = tether_chan_open(r->chan, f, &msg, &body, &len);
	if (err == TETHER_ERR_AUTH) {
		fail(r, "channel integrity check failed", NULL);
		return;
	}
	if (err != 0) {
		fail(r, "channel protocol error: ", tether_strerror(err));
		return;
	}
	switch (msg) {
	case TETHER_MSG_STDOUT:
		deliver(r, STDOUT_FILENO, body, len);
		break;
	case TETHER_MSG_STDERR:
		deliver(r, STDERR_FILENO, body, len);
		break;
	case TETHER_MSG_EOF:
		on_eof_msg(r, body, len);
		break;
	case TETHER_MSG_EXIT:
		on_exit_msg(r, body, len);
		break;
	case TETHER_MSG_WINDOW:
		/* tether_chan_open() added the credit: maybe read again. */
		stdin_pump(r);
		if (r->ops->on_room != NULL)
			r->ops->on_room(r, r->ops->arg);
		break;
	case TETHER_MSG_ERROR:
		on_error_msg(r, body, len);
		break;
	case TETHER_MSG_CLOSE:
		if (tether_msg_decode_empty(body, len) != 0)
			fail(r, "channel protocol error: ", "malformed CLOSE");
		else
			r->got_close = true;
		break;
	default:
		if (r->ops->on_msg != NULL)
			r->ops->on_msg(r, r->ops->arg, msg, body, len);
		else
			fail(r,
			     "channel protocol error: ", "unexpected message");
		break;
	}
}

/* The relay closes our channel when the agent's connection goes away. */
static void on_ctrl(void *arg, struct tether_ctrl_msg *m)
{
	struct console_run *r = arg;
	const struct tether_ctrl_chan_close *cl = &m->body.chan_close;

	if (m->type != TETHER_CTRL_CHAN_CLOSE || cl->channel != r->channel)
		return;
	fail(r, "connection lost: ",
	     cl->reason != NULL ? cl->reason : "channel closed");
}

static void on_drain(void *arg)
{
	struct console_run *r = arg;

	stdin_pump(r);
	if (r->ops->on_room != NULL && running(r))
		r->ops->on_room(r, r->ops->arg);
}

int console_run_send(struct console_run *r, uint8_t msg, struct tether_buf *b,
		     int built)
{
	int err, ret = -1;

	if (b == NULL || built == TETHER_ERR_NOMEM) {
		console_error("out of memory");
		goto out;
	}
	if (built == TETHER_ERR_TOO_LARGE) {
		console_error("command line too long");
		goto out;
	}
	if (built != 0) {
		console_error("cannot build a message: %s",
			      tether_strerror(built));
		goto out;
	}
	ret = 0;
	/* Gone already: the run loop says so. */
	if (!running(r))
		goto out;
	/* A failed send is reported by the run loop, with its reason. */
	err = tether_chan_send(r->chan, console_client_link(&r->c), msg,
			       tether_buf_ptr(b), tether_buf_len(b));
	if (err != 0)
		send_failed(r, err);
out:
	tether_buf_free(b);
	return ret;
}

void console_run_fail(struct console_run *r, const char *what,
		      const char *detail)
{
	fail(r, what, detail);
}

void console_run_set_status(struct console_run *r, int status)
{
	r->status = status;
	r->got_exit = true;
}

bool console_run_active(const struct console_run *r)
{
	return running(r);
}

int console_run_send_msg(struct console_run *r, uint8_t msg, const void *body,
			 size_t len)
{
	int err;

	if (!running(r))
		return TETHER_ERR_CLOSED;
	err = tether_chan_send(r->chan, console_client_link(&r->c), msg, body,
			       len);
	if (err != 0)
		send_failed(r, err);
	return err;
}

size_t console_run_window(const struct console_run *r)
{
	if (!running(r) ||
	    tether_link_over_high_water(console_client_link(&r->c)))
		return 0;
	return tether_chan_send_window(r->chan);
}

int console_run_consumed(struct console_run *r, size_t n)
{
	int err;

	if (!running(r))
		return TETHER_ERR_CLOSED;
	err = tether_chan_consumed(r->chan, console_client_link(&r->c), n);
	if (err != 0)
		send_failed(r, err);
	return err;
}

/* Ends the stream without a word: the command says goodbye itself. */
void console_run_disconnect(struct console_run *r)
{
	if (!running(r))
		return;
	r->disconnected = true;
	stdin_stop(r);
}

uv_loop_t *console_run_loop(struct console_run *r)
{
	return &r->c.loop;
}

const char *console_run_ticket(const struct console_run *r)
{
	return r->ticket_name;
}

struct console_client *console_run_client(struct console_run *r)
{
	return &r->c;
}

void console_run_input_end(struct console_run *r)
{
	stdin_eof(r);
}

int console_run_status(const struct console_run_result *res)
{
	if (res->exited)
		return res->status;
	if (!res->error)
		console_error("the remote command ended without a status");
	return CONSOLE_EXIT_FAIL;
}

/* Why the run ended, once the command has cleaned up after itself. */
static int outcome(struct console_run *r)
{
	const struct console_run_result res = {
	    .exited = r->got_exit,
	    .error = r->got_error,
	    .status = r->status,
	};

	if (r->disconnected) {
		/* The command said goodbye in its own words. */
		return CONSOLE_EXIT_FAIL;
	}
	if (r->failed) {
		console_error_text("", r->failure);
		return CONSOLE_EXIT_FAIL;
	}
	if (!r->got_close) {
		console_client_report_lost(&r->c);
		return CONSOLE_EXIT_FAIL;
	}
	if (r->ops->end != NULL)
		return r->ops->end(r, r->ops->arg, &res);
	return console_run_status(&res);
}

/*
 * Runs the channel until CLOSE, a failure, the user's disconnect, or the
 * end of the connection; then the outcome and the sink's follow-up.
 */
static int stream(struct console_run *r)
{
	struct console_client *c = &r->c;
	bool started;
	int status;

	c->hooks.on_data = on_data;
	c->hooks.on_ctrl = on_ctrl;
	c->hooks.on_drain = on_drain;
	c->hooks.arg = r;
	started = r->ops->start(r, r->ops->arg) == 0;
	if (started) {
		if (!r->ops->no_stdin) {
			stdin_setup(r);
			stdin_pump(r);
		}
		while (running(r))
			console_client_run_once(c);
	}
	/* Before any word about the outcome: it may restore the terminal. */
	if (r->ops->finish != NULL)
		r->ops->finish(r, r->ops->arg);
	if (!started)
		return CONSOLE_EXIT_FAIL;
	status = outcome(r);
	/* The hooks stay: what still comes for the channel is dropped. */
	if (r->ops->after != NULL)
		status = r->ops->after(r, r->ops->arg, status);
	return status;
}

/* Attach, key, open, run: the connection is open. */
static int run_ticket(struct console_run *r)
{
	uint8_t ke[TETHER_SPAKE2_KE_LEN];
	int64_t session;
	int status = CONSOLE_EXIT_FAIL;

	if (console_session_attach(&r->c, r->ticket, r->ticket_name, &session,
				   ke) == 0 &&
	    console_session_open(&r->c, session, r->ops->kind, ke, &r->chan) ==
		0) {
		r->channel = tether_chan_id(r->chan);
		status = stream(r);
	}
	tether_wipe(ke, sizeof(ke));
	return status;
}

int console_run(int64_t ticket, const char *ticket_name,
		const struct console_run_ops *ops)
{
	struct console_run r;
	int status = CONSOLE_EXIT_FAIL;

	memset(&r, 0, sizeof(r));
	r.ops = ops;
	r.ticket = ticket;
	r.ticket_name = ticket_name;
	r.in_flags = -1;
	if (console_client_open(&r.c) == 0)
		status = run_ticket(&r);
	stdin_cleanup(&r);
	console_client_close(&r.c);
	tether_chan_free(r.chan);
	/* libuv made a shared fd 0 non-blocking; give it back as it was. */
	if (r.in_flags >= 0)
		fcntl(STDIN_FILENO, F_SETFL, r.in_flags);
	return status;
}
