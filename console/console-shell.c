/*
 * `tether shell T-N [-- COMMAND [ARGS...]]`: an interactive shell (or
 * COMMAND) on a shell channel.  Its own part is the SHELL message, and,
 * when standard input is a terminal, what makes the remote side feel like
 * one: a PTY of our window's size, RESIZE on SIGWINCH, the local terminal
 * in raw mode for the whole stream, and ssh's escapes ("~." and friends,
 * only right after a newline).  Without a terminal it is exec with a
 * shell: no PTY, stdout and stderr apart, stdin forwarded up to its end.
 * The session, the channel and the streaming are console-run.c's.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <tether/buf.h>
#include <tether/chan.h>
#include <tether/msg.h>
#include <tether/proto.h>

#include "console.h"

static const char shell_usage[] =
    "Usage: tether shell T-N [-- COMMAND [ARGS...]]\n"
    "\n"
    "Opens the customer's login shell (or runs COMMAND) on the machine\n"
    "whose agent joined T-N.  When standard input is a terminal, the\n"
    "remote side gets one too, of this window's size, and this terminal\n"
    "is put in raw mode until the end; otherwise standard output and\n"
    "error stay apart and standard input is forwarded up to its end.\n"
    "Exits with the remote status (128 + signal if it was killed; 255\n"
    "for tether's own errors and for ~.).\n"
    "\n"
    "Escapes, on a terminal, typed right after a newline:\n"
    "  ~.  disconnect\n"
    "  ~?  list the escapes\n"
    "  ~~  send a single ~\n";

struct shell {
	int argc;
	char **argv;
	bool pty; /* stdin is a terminal: PTY, raw mode, escapes */
	struct console_run *run;
	struct console_tty_escapes esc; /* carried from one read to the next */
	bool bye;			/* "~." */
	/* Window size: the watcher and the last size the agent got. */
	uv_signal_t winch;
	bool winch_ready;
	uint16_t cols;
	uint16_t rows;
};

/* Filtered input: at most one held-back "~" more than what was read. */
static uint8_t escaped_buf[TETHER_CHANNEL_CHUNK + 1];

/* Sends what was read, less the escapes (console-tty.c). */
static void shell_input(struct console_run *r, void *arg, const uint8_t *p,
			size_t n)
{
	struct shell *s = arg;
	size_t m = 0;

	if (console_tty_escapes_filter(&s->esc, p, n, escaped_buf, &m)) {
		console_run_input(r, escaped_buf, m);
		s->bye = true;
		console_run_disconnect(r);
		return;
	}
	console_run_input(r, escaped_buf, m);
}

/* RESIZE: the window's new size. */
static void on_winch(uv_signal_t *h, int signum)
{
	struct shell *s = h->data;
	struct tether_msg_resize m;
	struct tether_buf *b;
	uint16_t cols, rows;
	int built = 0;

	(void)signum;
	/* Several signals may have come for one change, or none for ours. */
	if (console_tty_size(STDIN_FILENO, &cols, &rows) != 0 ||
	    (cols == s->cols && rows == s->rows))
		return;
	s->cols = cols;
	s->rows = rows;
	m.cols = cols;
	m.rows = rows;
	b = tether_buf_new(2 * sizeof(uint16_t));
	if (b != NULL)
		built = tether_msg_encode_resize(b, &m);
	console_run_send(s->run, TETHER_MSG_RESIZE, b, built);
}

/*
 * SHELL: a PTY or not, TERM, the window's size and the command (none:
 * the login shell).  0, or the error from encoding it.
 */
static int build_shell(const struct shell *s, struct tether_buf *b)
{
	struct tether_msg_shell m;

	m.flags = s->pty ? TETHER_SHELL_PTY : 0;
	m.term = getenv("TERM");
	/* A terminal that says nothing about itself is most likely this. */
	if (m.term == NULL || m.term[0] == '\0')
		m.term = s->pty ? "xterm-256color" : "dumb";
	m.cols = s->cols;
	m.rows = s->rows;
	m.argc = (uint32_t)s->argc;
	m.argv = s->argv;
	return tether_msg_encode_shell(b, &m);
}

static int shell_start(struct console_run *r, void *arg)
{
	struct shell *s = arg;
	struct tether_buf *b = NULL;
	int built = 0, ret = -1;

	s->run = r;
	if (s->pty && uv_signal_init(console_run_loop(r), &s->winch) == 0) {
		/* Watch before measuring, so that no change falls between. */
		s->winch_ready = true;
		s->winch.data = s;
		uv_signal_start(&s->winch, on_winch, SIGWINCH);
	}
	console_tty_size(STDIN_FILENO, &s->cols, &s->rows);
	b = tether_buf_new(TETHER_CHAN_BODY_MAX);
	if (b != NULL)
		built = build_shell(s, b);
	/* Raw only once there is something to send: errors print plainly. */
	if (b != NULL && built == 0 && s->pty &&
	    console_tty_raw(STDIN_FILENO) != 0) {
		tether_buf_free(b);
		goto out;
	}
	ret = console_run_send(r, TETHER_MSG_SHELL, b, built);
out:
	return ret;
}

static void shell_finish(struct console_run *r, void *arg)
{
	struct shell *s = arg;

	if (s->winch_ready) {
		uv_close((uv_handle_t *)&s->winch, NULL);
		s->winch_ready = false;
	}
	console_tty_restore();
	if (s->bye)
		fprintf(stderr, "Connection to %s closed.\n",
			console_run_ticket(r));
}

static const struct console_opts shell_opts = {
    .name = "shell",
    .usage = shell_usage,
    .flags = CONSOLE_OPTS_TICKET | CONSOLE_OPTS_IN_ORDER,
    .min = 1,
    .max = -1,
    .need = "expected T-N",
};

int console_shell(int argc, char **argv)
{
	struct console_run_ops ops;
	struct console_args args;
	struct shell s;
	int ret;

	ret = console_opts_parse(&shell_opts, argc, argv, NULL, &args);
	if (ret >= 0)
		return ret;
	memset(&s, 0, sizeof(s));
	s.argc = args.argc;
	s.argv = args.argv;
	s.pty = isatty(STDIN_FILENO) == 1;
	s.esc.line_start = true;
	memset(&ops, 0, sizeof(ops));
	ops.kind = TETHER_KIND_SHELL;
	ops.start = shell_start;
	ops.finish = shell_finish;
	ops.arg = &s;
	if (s.pty) {
		ops.input = shell_input;
		ops.input_slack = 1;
	}
	return console_run(args.ticket, args.ticket_name, &ops);
}
