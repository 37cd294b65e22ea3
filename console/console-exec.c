/*
 * `tether exec T-N -- CMD [ARGS...]`: attaches to the ticket's session,
 * gets the session key (pairing first if the agent has just joined), opens
 * a sealed exec channel and runs CMD remotely: EXEC, then standard input as
 * STDIN chunks and EOF(0); STDOUT and STDERR are written to fds 1 and 2 as
 * they come and credited back with WINDOW once written.  The remote status
 * (exit code, or 128 + signal) becomes ours when CLOSE arrives; anything
 * that ends the channel before CLOSE is "connection lost", status 255.
 *
 * Flow control both ways: standard input is read only while the channel
 * has send window and the link's queue is under the high-water mark
 * (resumed by WINDOW and by the link's drain callback); output is written
 * with blocking writes, so a slow reader of our stdout slows the frames we
 * take in, which stops the credit the agent needs to send more.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <string.h>
#include <unistd.h>

#include <tether/alloc.h>
#include <tether/buf.h>
#include <tether/chan.h>
#include <tether/crypto.h>
#include <tether/err.h>
#include <tether/link.h>
#include <tether/proto.h>

#include "console.h"

#define REMOTE_ERROR_MAX 1024

static const char exec_usage[] =
	"Usage: tether exec T-N -- CMD [ARGS...]\n"
	"\n"
	"Runs CMD (no shell) on the machine whose agent joined T-N, with this\n"
	"standard input, output and error, and exits with its status (128 +\n"
	"signal if it was killed; 255 for tether's own errors).\n";

struct exec_run {
	struct console_client *c;
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
	bool got_close;
	bool failed;
	int status;
};

/* Plaintext of one STDIN chunk: used by one read at a time. */
static uint8_t stdin_buf[TETHER_CHANNEL_CHUNK];

static void stdin_pump(struct exec_run *e);

static bool running(const struct exec_run *e)
{
	return !e->failed && !e->got_close && e->c->link != NULL;
}

/* Ends the run with one reported reason (the first one wins). */
static void fail(struct exec_run *e, const char *what, const char *detail)
{
	if (e->failed || e->got_close)
		return;
	e->failed = true;
	fputs("tether: ", stderr);
	fputs(what, stderr);
	if (detail != NULL)
		console_print_clean(stderr, detail);
	fputc('\n', stderr);
}

static void stdin_stop(struct exec_run *e)
{
	if (e->in_reading) {
		uv_read_stop((uv_stream_t *)&e->in);
		e->in_reading = false;
	}
}

/* A send failed: the link is going away, or something worse. */
static void send_failed(struct exec_run *e, int r)
{
	if (r != TETHER_ERR_CLOSED) {
		fail(e, "cannot send: ", tether_strerror(r));
		return;
	}
	/*
	 * The link is closing; its close callback has the reason, and the
	 * run loop reports it once that has run.  Just stop feeding it.
	 */
	e->in_done = true;
	stdin_stop(e);
}

static void stdin_eof(struct exec_run *e)
{
	int r;

	stdin_stop(e);
	if (e->in_done)
		return;
	e->in_done = true;
	if (!running(e))
		return;
	r = tether_chan_send_u8(e->chan, e->c->link, TETHER_MSG_EOF, 0);
	if (r != 0)
		send_failed(e, r);
}

static void stdin_data(struct exec_run *e, const uint8_t *p, size_t n)
{
	int r;

	if (!running(e))
		return;
	r = tether_chan_send(e->chan, e->c->link, TETHER_MSG_STDIN, p, n);
	if (r != 0)
		send_failed(e, r);
}

static void stdin_read_failed(struct exec_run *e, int uverr)
{
	console_error("reading standard input: %s", uv_strerror(uverr));
	stdin_eof(e);
}

/* What the next read may take: a chunk, within the peer's credit. */
static size_t stdin_room(const struct exec_run *e)
{
	size_t w = tether_chan_send_window(e->chan);

	return w < sizeof(stdin_buf) ? w : sizeof(stdin_buf);
}

static void on_stdin_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct exec_run *e = h->data;

	(void)suggested;
	*buf = uv_buf_init((char *)stdin_buf, (unsigned int)stdin_room(e));
}

static void on_stdin_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct exec_run *e = s->data;

	if (nread > 0)
		stdin_data(e, (const uint8_t *)buf->base, (size_t)nread);
	else if (nread == UV_EOF)
		stdin_eof(e);
	else if (nread < 0 && nread != UV_ENOBUFS)
		stdin_read_failed(e, (int)nread);
	stdin_pump(e);
}

static void on_stdin_fs(uv_fs_t *req)
{
	struct exec_run *e = req->data;
	ssize_t n = req->result;

	uv_fs_req_cleanup(req);
	e->fs_busy = false;
	if (n > 0)
		stdin_data(e, stdin_buf, (size_t)n);
	else if (n == 0)
		stdin_eof(e);
	else
		stdin_read_failed(e, (int)n);
	stdin_pump(e);
}

/* Reads standard input exactly while there is somewhere to put it. */
static void stdin_pump(struct exec_run *e)
{
	bool can = running(e) && !e->in_done && stdin_room(e) > 0 &&
		   !tether_link_over_high_water(e->c->link);
	uv_buf_t b;
	int r;

	if (e->in_kind == UV_FILE) {
		if (!can || e->fs_busy)
			return;
		b = uv_buf_init((char *)stdin_buf, (unsigned int)stdin_room(e));
		e->fs_req.data = e;
		r = uv_fs_read(&e->c->loop, &e->fs_req, STDIN_FILENO, &b, 1, -1,
			       on_stdin_fs);
		if (r != 0)
			stdin_read_failed(e, r);
		else
			e->fs_busy = true;
	} else if (e->in_open) {
		if (!can) {
			stdin_stop(e);
		} else if (!e->in_reading) {
			r = uv_read_start((uv_stream_t *)&e->in, on_stdin_alloc,
					  on_stdin_read);
			if (r != 0)
				stdin_read_failed(e, r);
			else
				e->in_reading = true;
		}
	}
}

/* Picks how to read fd 0: it may be a file, pipe, socket, tty or closed. */
static void stdin_setup(struct exec_run *e)
{
	uv_loop_t *loop = &e->c->loop;
	int r = 0;

	e->in_flags = fcntl(STDIN_FILENO, F_GETFL);
	e->in_kind = uv_guess_handle(STDIN_FILENO);
	e->in.pipe.data = e;
	switch (e->in_kind) {
	case UV_TTY:
		r = uv_tty_init(loop, &e->in.tty, STDIN_FILENO, 1);
		e->in_open = r == 0;
		break;
	case UV_NAMED_PIPE:
	case UV_TCP:
		r = uv_pipe_init(loop, &e->in.pipe, 0);
		if (r == 0) {
			e->in_open = true;
			r = uv_pipe_open(&e->in.pipe, STDIN_FILENO);
		}
		break;
	case UV_FILE:
		break;
	default:
		/* Closed or unreadable: the command gets an empty input. */
		e->in_kind = UV_UNKNOWN_HANDLE;
		stdin_eof(e);
		return;
	}
	e->in.pipe.data = e;
	if (r != 0)
		stdin_read_failed(e, r);
}

static void stdin_cleanup(struct exec_run *e)
{
	stdin_stop(e);
	if (e->in_open)
		uv_close((uv_handle_t *)&e->in, NULL);
	e->in_open = false;
}

/* Writes a STDOUT/STDERR body out and credits it back to the agent. */
static void deliver(struct exec_run *e, int fd, const uint8_t *p, size_t n)
{
	int r;

	if (!e->out_broken[fd]) {
		r = console_write_all(fd, p, n);
		if (r != 0) {
			/* Keep the command running; drop what nobody reads. */
			e->out_broken[fd] = true;
			if (r != -EPIPE)
				console_error("writing %s: %s",
					      fd == 1 ? "standard output"
						      : "standard error",
					      strerror(-r));
		}
	}
	r = tether_chan_consumed(e->chan, e->c->link, n);
	if (r != 0)
		send_failed(e, r);
}

static void on_exit_msg(struct exec_run *e, struct tether_buf *b)
{
	uint8_t how;
	uint32_t value;

	if (tether_buf_get_u8(b, &how) != 0 ||
	    tether_buf_get_u32(b, &value) != 0 ||
	    tether_buf_get_end(b) != 0 || how > 1) {
		fail(e, "channel protocol error: ", "malformed EXIT");
		return;
	}
	if (how == 1)
		value = value > 127 ? 255 : 128 + value;
	e->status = value > 255 ? 255 : (int)value;
	e->got_exit = true;
}

static void on_error_msg(struct exec_run *e, struct tether_buf *b)
{
	char *reason = NULL;

	if (tether_buf_get_cstring(b, &reason, NULL, REMOTE_ERROR_MAX) != 0 ||
	    tether_buf_get_end(b) != 0) {
		fail(e, "channel protocol error: ", "malformed ERROR");
		return;
	}
	/* The channel still ends with CLOSE; the status stays 255. */
	fputs("tether: remote: ", stderr);
	console_print_clean(stderr, reason);
	fputc('\n', stderr);
	tether_free(reason);
}

static void on_data(void *arg, const struct tether_frame *f)
{
	struct exec_run *e = arg;
	const uint8_t *body;
	struct tether_buf *b;
	uint8_t msg, stream;
	size_t len;
	int r;

	if (!running(e))
		return;
	r = tether_chan_open(e->chan, f, &msg, &body, &len);
	if (r == TETHER_ERR_AUTH) {
		fail(e, "channel integrity check failed", NULL);
		return;
	}
	if (r != 0) {
		fail(e, "channel protocol error: ", tether_strerror(r));
		return;
	}
	b = tether_buf_from(body, len);
	if (b == NULL) {
		fail(e, "out of memory", NULL);
		return;
	}
	switch (msg) {
	case TETHER_MSG_STDOUT:
		deliver(e, STDOUT_FILENO, body, len);
		break;
	case TETHER_MSG_STDERR:
		deliver(e, STDERR_FILENO, body, len);
		break;
	case TETHER_MSG_EOF:
		if (tether_buf_get_u8(b, &stream) != 0 ||
		    tether_buf_get_end(b) != 0 || stream < 1 || stream > 2)
			fail(e, "channel protocol error: ", "malformed EOF");
		break;
	case TETHER_MSG_EXIT:
		on_exit_msg(e, b);
		break;
	case TETHER_MSG_WINDOW:
		/* tether_chan_open() added the credit: maybe read again. */
		stdin_pump(e);
		break;
	case TETHER_MSG_ERROR:
		on_error_msg(e, b);
		break;
	case TETHER_MSG_CLOSE:
		if (tether_buf_get_end(b) != 0)
			fail(e, "channel protocol error: ", "malformed CLOSE");
		else
			e->got_close = true;
		break;
	default:
		fail(e, "channel protocol error: ", "unexpected message");
		break;
	}
	tether_buf_free(b);
}

/* The relay closes our channel when the agent's connection goes away. */
static void on_ctrl(void *arg, json_t *msg)
{
	struct exec_run *e = arg;
	const char *reason = console_json_str(msg, "reason");

	if (strcmp(console_json_str(msg, "t"), "close") != 0 ||
	    json_integer_value(json_object_get(msg, "channel")) != e->channel)
		return;
	fail(e, "connection lost: ",
	     reason != NULL ? reason : "channel closed");
}

static void on_drain(void *arg)
{
	stdin_pump(arg);
}

static int send_exec(struct exec_run *e, int argc, char **argv)
{
	struct tether_buf *b = tether_buf_new(TETHER_CHAN_BODY_MAX);
	int i, r = b != NULL ? 0 : TETHER_ERR_NOMEM;

	/* Gone already: the run loop says so. */
	if (!running(e)) {
		tether_buf_free(b);
		return 0;
	}
	if (r == 0)
		r = tether_buf_put_u32(b, (uint32_t)argc);
	for (i = 0; i < argc && r == 0; i++)
		r = tether_buf_put_cstring(b, argv[i]);
	if (r == TETHER_ERR_TOO_LARGE) {
		console_error("command line too long");
	} else if (r != 0) {
		console_error("out of memory");
	} else {
		/* A failed send is reported by the run loop, with its reason. */
		r = tether_chan_send(e->chan, e->c->link, TETHER_MSG_EXEC,
				     tether_buf_ptr(b), tether_buf_len(b));
		if (r != 0)
			send_failed(e, r);
		r = 0;
	}
	tether_buf_free(b);
	return r == 0 ? 0 : -1;
}

/* Opens an exec channel keyed from ke and both open nonces. */
static int open_channel(struct exec_run *e, const json_t *session,
			const uint8_t ke[TETHER_SPAKE2_KE_LEN])
{
	uint8_t nonce_c[TETHER_SEAL_NONCE_LEN], nonce_a[TETHER_SEAL_NONCE_LEN];
	char hex[2 * TETHER_SEAL_NONCE_LEN + 1];
	const char *peer_hex;
	json_int_t channel;
	json_t *ans = NULL;
	int r, ret = -1;

	if (tether_random(nonce_c, sizeof(nonce_c)) != 0 ||
	    tether_hex_encode(nonce_c, sizeof(nonce_c), hex, sizeof(hex))) {
		console_error("cannot draw a nonce");
		return -1;
	}
	r = console_request(e->c,
			    json_pack("{s:s, s:O, s:s, s:s}", "t", "open",
				      "session", session, "kind", "exec",
				      "nonce", hex),
			    &ans);
	if (r == CONSOLE_EREMOTE)
		console_report_answer(ans, NULL);
	if (r != 0)
		goto out;
	channel = json_integer_value(json_object_get(ans, "channel"));
	peer_hex = console_json_str(ans, "nonce");
	if (channel < 1 || channel > UINT32_MAX || peer_hex == NULL ||
	    strlen(peer_hex) != 2 * sizeof(nonce_a) ||
	    tether_hex_decode(peer_hex, nonce_a, sizeof(nonce_a)) != 0) {
		console_error("the relay sent a malformed open answer");
		goto out;
	}
	e->channel = (uint32_t)channel;
	e->chan = tether_chan_new(e->channel, true, ke, TETHER_SPAKE2_KE_LEN,
				  nonce_c, nonce_a);
	if (e->chan == NULL) {
		console_error("cannot set up the channel keys");
		goto out;
	}
	ret = 0;
out:
	json_decref(ans);
	return ret;
}

/* Runs the channel until CLOSE, a failure, or the end of the connection. */
static int run_channel(struct exec_run *e, int argc, char **argv)
{
	struct console_client *c = e->c;

	c->hooks.on_data = on_data;
	c->hooks.on_ctrl = on_ctrl;
	c->hooks.on_drain = on_drain;
	c->hooks.arg = e;
	if (send_exec(e, argc, argv) != 0)
		return CONSOLE_EXIT_FAIL;
	stdin_setup(e);
	stdin_pump(e);
	while (!e->got_close && !e->failed && !c->closed)
		console_run_once(c);
	if (e->failed)
		return CONSOLE_EXIT_FAIL;
	if (!e->got_close) {
		console_report_lost(c);
		return CONSOLE_EXIT_FAIL;
	}
	if (!e->got_exit) {
		console_error("the remote command ended without a status");
		return CONSOLE_EXIT_FAIL;
	}
	return e->status;
}

/* Attach, key, open, run: the connection is open. */
static int exec_ticket(struct exec_run *e, const char *ticket, int argc,
		       char **argv)
{
	uint8_t ke[TETHER_SPAKE2_KE_LEN];
	json_t *ans = NULL;
	int r, status = CONSOLE_EXIT_FAIL;

	r = console_request(e->c,
			    json_pack("{s:s, s:s}", "t", "attach", "ticket",
				      ticket),
			    &ans);
	if (r == CONSOLE_EREMOTE)
		console_report_answer(ans, ticket);
	if (r == 0 && console_pair_key(e->c, ticket, ans, ke) == 0 &&
	    open_channel(e, json_object_get(ans, "session"), ke) == 0)
		status = run_channel(e, argc, argv);
	tether_wipe(ke, sizeof(ke));
	json_decref(ans);
	return status;
}

int console_exec(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char ticket[CONSOLE_TICKET_MAX];
	struct console_config cfg;
	struct console_client c;
	struct exec_run e;
	int opt, status = CONSOLE_EXIT_FAIL;

	/* "+": stop at the first operand, CMD's own options are not ours. */
	optind = 0;
	while ((opt = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
		if (opt != 'h')
			return console_bad_option("exec", opt, argv);
		fputs(exec_usage, stdout);
		return 0;
	}
	if (optind >= argc)
		return console_usage_error("exec", "expected T-N -- CMD");
	if (console_ticket_arg("exec", argv[optind], ticket, sizeof(ticket)))
		return CONSOLE_EXIT_USAGE;
	optind++;
	if (optind < argc && strcmp(argv[optind], "--") == 0)
		optind++;
	if (optind >= argc)
		return console_usage_error("exec", "expected CMD after --");

	memset(&e, 0, sizeof(e));
	e.c = &c;
	e.in_flags = -1;
	if (console_connect(&c, &cfg) == 0)
		status = exec_ticket(&e, ticket, argc - optind, argv + optind);
	stdin_cleanup(&e);
	console_client_close(&c);
	console_config_clear(&cfg);
	tether_chan_free(e.chan);
	/* libuv made a shared fd 0 non-blocking; give it back as it was. */
	if (e.in_flags >= 0)
		fcntl(STDIN_FILENO, F_SETFL, e.in_flags);
	return status;
}
