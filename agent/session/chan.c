/*
 * Exec, shell, file, forward and diag channels, agent side (chan.h).  The
 * child of an exec or shell channel lives in exec.c (pipes: commands, and
 * shells without a terminal) behind struct agent_proc, or in pty.c (shells
 * on a pseudo-terminal) behind struct agent_pty; this file moves its
 * output within the channel's send window and credits its input once
 * written.  A file channel has no child: its messages go to file.c, which
 * gets the channel as a struct agent_file_io and says when the transfer
 * is over; this file sends CLOSE.  A forward channel's TCP connection is
 * forward.c's, which gets the channel as a struct agent_forward_io.  A
 * diag channel is an exec channel whose command this file chooses: the
 * agent's own collector (tether-agent diag) in a child.
 */
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <tether/alloc.h>
#include <tether/buf.h>
#include <tether/chan.h>
#include <tether/crypto.h>
#include <tether/err.h>
#include <tether/id.h>
#include <tether/log.h>
#include <tether/msg.h>

#include "diag/text.h"
#include "session/chan.h"
#include "session/cli.h"
#include "session/file.h"
#include "session/forward.h"
#include "session/term.h"

/* How much of the command line the customer sees. */
#define SHOW_ARGV_MAX 1024
#define REASON_MAX 128

enum chan_state {
	CH_WAIT_START, /* opened, the console's first message not in */
	CH_RUNNING,    /* the command, shell, transfer or forward runs */
	CH_DONE,       /* our CLOSE is sent (or never will be) */
};

struct agent_chans {
	struct agent_chans_cfg cfg;
	struct agent_chan *list;
	size_t n;
	bool paired;
	uint8_t ke[TETHER_SPAKE2_KE_LEN];
	size_t ke_len;
	unsigned caps;
	/* Forward targets the customer allowed when asked (forward.h). */
	struct agent_targets granted;
	bool freeing;
};

struct agent_chan {
	struct agent_chan *next;
	struct agent_chans *cs;
	uint32_t id;
	struct tether_chan *tc;
	enum tether_kind kind;
	/* The child, until its on_closed: on pipes, or on a terminal. */
	struct agent_proc *proc;
	struct agent_pty *pty;
	/* A file channel's transfer, once started. */
	struct agent_file *file;
	/* A forward channel's connection, once asked for; freed by closed. */
	struct agent_forward *fwd;
	enum chan_state state;
	bool dead; /* the relay forgot it, or the link is gone: send nothing */
	bool eof[3];
	bool exited;
	int how;
	uint32_t value;
	char technician[TETHER_ID_NAME_MAX + 1];
	/* A shell the customer was told about, for the closing line. */
	bool shell_shown;
	uint64_t started_ms;
	uint64_t bytes_in;
	uint64_t bytes_out;
};

static const struct agent_chan_io *io_of(const struct agent_chan *ch)
{
	return &ch->cs->cfg.io;
}

static struct agent_term *term_of(const struct agent_chan *ch)
{
	return ch->cs->cfg.term;
}

static struct agent_chan *find(struct agent_chans *cs, uint32_t id)
{
	struct agent_chan *ch;

	for (ch = cs->list; ch != NULL; ch = ch->next)
		if (ch->id == id)
			return ch;
	return NULL;
}

/* The child, whichever kind it is: small dispatchers. */
static bool has_child(const struct agent_chan *ch)
{
	return ch->proc != NULL || ch->pty != NULL;
}

static void child_set_credit(struct agent_chan *ch, size_t credit)
{
	if (ch->pty != NULL)
		agent_pty_set_credit(ch->pty, credit);
	else if (ch->proc != NULL)
		agent_proc_set_credit(ch->proc, credit);
}

static int child_write(struct agent_chan *ch, const void *data, size_t len)
{
	if (ch->pty != NULL)
		return agent_pty_write(ch->pty, data, len);
	return agent_proc_write(ch->proc, data, len);
}

static void child_close_stdin(struct agent_chan *ch)
{
	if (ch->pty != NULL)
		agent_pty_close_stdin(ch->pty);
	else if (ch->proc != NULL)
		agent_proc_close_stdin(ch->proc);
}

static void table_maybe_free(struct agent_chans *cs)
{
	if (!cs->freeing || cs->list != NULL)
		return;
	tether_wipe(cs->ke, sizeof(cs->ke));
	agent_targets_free(&cs->granted);
	tether_free(cs);
}

static void chan_free(struct agent_chan *ch)
{
	struct agent_chans *cs = ch->cs;
	struct agent_chan **pp;

	for (pp = &cs->list; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == ch) {
			*pp = ch->next;
			cs->n--;
			break;
		}
	}
	agent_file_free(ch->file);
	tether_chan_free(ch->tc);
	tether_free(ch);
	table_maybe_free(cs);
}

/* The control close of channel id, with an optional reason. */
static void send_close(struct agent_chans *cs, uint32_t id, const char *reason)
{
	const struct tether_ctrl_chan_close m = {.channel = id,
						 .reason = reason};

	cs->cfg.io.ctrl(cs->cfg.io.arg, TETHER_CTRL_CHAN_CLOSE, &m);
}

static int chan_send(struct agent_chan *ch, uint8_t msg, const void *body,
		     size_t len)
{
	const struct agent_chan_io *io = io_of(ch);

	if (ch->dead)
		return TETHER_ERR_CLOSED;
	return tether_chan_send_to(ch->tc, io->frame, io->arg, msg, body, len);
}

/*
 * Sends msg with b's bytes as its body and frees b.  built is what
 * encoding into b returned (b NULL: it could not be allocated).
 */
static int chan_send_built(struct agent_chan *ch, uint8_t msg,
			   struct tether_buf *b, int built)
{
	int r = b == NULL ? TETHER_ERR_NOMEM : built;

	if (r == 0)
		r = chan_send(ch, msg, tether_buf_ptr(b), tether_buf_len(b));
	tether_buf_free(b);
	return r;
}

/* Sealed ERROR, best effort: the channel is ending anyway. */
static void send_error(struct agent_chan *ch, const char *reason)
{
	const struct tether_msg_error m = {.reason = reason};
	struct tether_buf *b = tether_buf_new(1024);

	chan_send_built(ch, TETHER_MSG_ERROR, b,
			b != NULL ? tether_msg_encode_error(b, &m) : 0);
}

static void send_eof(struct agent_chan *ch, enum agent_stream s)
{
	const struct tether_msg_eof m = {.stream = (uint8_t)s};
	struct tether_buf *b = tether_buf_new(1);

	chan_send_built(ch, TETHER_MSG_EOF, b,
			b != NULL ? tether_msg_encode_eof(b, &m) : 0);
}

/* how: 0 exited with value, 1 killed by signal value. */
static void send_exit(struct agent_chan *ch, int how, uint32_t value)
{
	const struct tether_msg_exit m = {.how = (uint8_t)how, .value = value};
	struct tether_buf *b = tether_buf_new(5);

	chan_send_built(ch, TETHER_MSG_EXIT, b,
			b != NULL ? tether_msg_encode_exit(b, &m) : 0);
}

/* Our CLOSE and the control close: the channel is over on our side. */
static void send_closes(struct agent_chan *ch)
{
	chan_send(ch, TETHER_MSG_CLOSE, NULL, 0);
	send_close(ch->cs, ch->id, NULL);
}

/* "shell closed after ...", once per shell the customer was told of. */
static void shell_closed(struct agent_chan *ch)
{
	uint64_t secs;

	if (!ch->shell_shown)
		return;
	ch->shell_shown = false;
	secs = (uv_now(ch->cs->cfg.loop) - ch->started_ms) / 1000;
	agent_term_say(term_of(ch),
		       "shell closed after %" PRIu64 " s (%" PRIu64
		       " bytes in, %" PRIu64 " bytes out)",
		       secs, ch->bytes_in, ch->bytes_out);
}

/* Forgets the channel: stops its child; freed once that is gone. */
static void chan_drop(struct agent_chan *ch)
{
	ch->dead = true;
	ch->state = CH_DONE;
	shell_closed(ch);
	if (ch->pty != NULL)
		agent_pty_kill(ch->pty);
	else if (ch->proc != NULL)
		agent_proc_kill(ch->proc);
	else if (ch->fwd != NULL)
		agent_forward_close(ch->fwd);
	else
		chan_free(ch);
}

/* Ends the channel on both sides with a reason, best effort. */
static void chan_fail(struct agent_chan *ch, const char *reason)
{
	agent_term_warn(term_of(ch), "channel %u: %s", ch->id, reason);
	if (!ch->dead) {
		send_error(ch, reason);
		send_close(ch->cs, ch->id, reason);
	}
	chan_drop(ch);
}

/* The credit for output: the channel window, unless the link is full. */
static size_t send_credit(const struct agent_chan *ch)
{
	const struct agent_chan_io *io = io_of(ch);

	if (ch->dead || !io->room(io->arg))
		return 0;
	return tether_chan_send_window(ch->tc);
}

static void update_credit(struct agent_chan *ch)
{
	if (!has_child(ch) || ch->state != CH_RUNNING)
		return;
	child_set_credit(ch, send_credit(ch));
}

/* Received data bytes are written out: the console may send more. */
static int credit_back(struct agent_chan *ch, size_t n)
{
	const struct agent_chan_io *io = io_of(ch);

	if (ch->dead)
		return TETHER_ERR_CLOSED;
	return tether_chan_consumed_to(ch->tc, io->frame, io->arg, n);
}

/* EXIT, CLOSE and the control close, once the command is all done. */
static void maybe_done(struct agent_chan *ch)
{
	struct agent_term *t = term_of(ch);

	if (ch->state != CH_RUNNING || !ch->exited || !ch->eof[AGENT_STDOUT] ||
	    !ch->eof[AGENT_STDERR])
		return;
	ch->state = CH_DONE;
	if (ch->kind == TETHER_KIND_SHELL)
		shell_closed(ch);
	else if (ch->kind == TETHER_KIND_DIAG && ch->how == 0 && ch->value == 0)
		; /* said when it started */
	else if (ch->kind == TETHER_KIND_DIAG)
		agent_term_say(t, "collecting diagnostics failed");
	else if (ch->how == 0)
		agent_term_say(t, "command exited with status %u", ch->value);
	else
		agent_term_say(t, "command killed by signal %u", ch->value);
	if (ch->dead)
		return;
	send_exit(ch, ch->how, ch->value);
	send_closes(ch);
}

static void proc_output(void *ctx, enum agent_stream s, const uint8_t *data,
			size_t len)
{
	struct agent_chan *ch = ctx;
	uint8_t msg = s == AGENT_STDOUT ? TETHER_MSG_STDOUT : TETHER_MSG_STDERR;
	int r;

	if (ch->dead)
		return;
	r = chan_send(ch, msg, data, len);
	if (r != 0) {
		/* A closing link aborts every channel by itself. */
		if (r != TETHER_ERR_CLOSED)
			chan_fail(ch, "cannot send output");
		return;
	}
	ch->bytes_out += len;
	/* The customer sees what the technician sees, as it goes. */
	if (ch->kind == TETHER_KIND_SHELL)
		agent_term_view(term_of(ch), data, len);
	update_credit(ch);
}

static void proc_eof(void *ctx, enum agent_stream s)
{
	struct agent_chan *ch = ctx;

	ch->eof[s] = true;
	if (!ch->dead)
		send_eof(ch, s);
	maybe_done(ch);
}

static void proc_written(void *ctx, size_t n)
{
	struct agent_chan *ch = ctx;

	/* After our CLOSE nothing more may go out, not even credit. */
	if (ch->state == CH_RUNNING)
		credit_back(ch, n);
}

static void proc_exit(void *ctx, int how, uint32_t value)
{
	struct agent_chan *ch = ctx;

	ch->exited = true;
	ch->how = how;
	ch->value = value;
	maybe_done(ch);
}

static void proc_closed(void *ctx)
{
	struct agent_chan *ch = ctx;

	ch->proc = NULL;
	ch->pty = NULL;
	chan_free(ch);
}

static const struct agent_proc_cbs proc_cbs = {
    .on_output = proc_output,
    .on_eof = proc_eof,
    .on_written = proc_written,
    .on_exit = proc_exit,
    .on_closed = proc_closed,
};

/*
 * An EXEC (tether/msg.h) naming a program: at least one word, the first
 * not empty.  On failure req is clear.
 */
static int parse_exec(const uint8_t *body, size_t len,
		      struct tether_msg_exec *req)
{
	int r = tether_msg_decode_exec(body, len, req);

	if (r == 0 && (req->argc == 0 || req->argv[0][0] == '\0')) {
		tether_msg_clear_exec(req);
		r = TETHER_ERR_FORMAT;
	}
	return r;
}

/*
 * What a shell says when it cannot run a command, sent as the command's
 * stderr, then status 127 (not found) or 126 (found but not runnable).
 * A terminal in raw mode on the console needs the carriage return.
 */
static void spawn_failed(struct agent_chan *ch, const char *cmd, int err,
			 bool pty)
{
	const char *why = strerror(-err);
	const char *nl = pty ? "\r\n" : "\n";
	uint32_t status = err == UV_ENOENT ? 127 : 126;
	size_t cmdlen = strnlen(cmd, 256);
	struct tether_buf *b;

	agent_term_warn(term_of(ch), "cannot run %s: %s", cmd, why);
	b = tether_buf_new(1024);
	if (b != NULL &&
	    tether_buf_put(b, AGENT_PROG ": ", strlen(AGENT_PROG ": ")) == 0 &&
	    tether_buf_put(b, cmd, cmdlen) == 0 &&
	    tether_buf_put(b, ": ", 2) == 0 &&
	    tether_buf_put(b, why, strlen(why)) == 0 &&
	    tether_buf_put(b, nl, strlen(nl)) == 0 &&
	    tether_buf_len(b) <= tether_chan_send_window(ch->tc))
		chan_send(ch, TETHER_MSG_STDERR, tether_buf_ptr(b),
			  tether_buf_len(b));
	tether_buf_free(b);
	send_eof(ch, AGENT_STDOUT);
	send_eof(ch, AGENT_STDERR);
	send_exit(ch, TETHER_MSG_EXIT_CODE, status);
	send_closes(ch);
	if (ch->kind == TETHER_KIND_SHELL)
		shell_closed(ch);
	else
		agent_term_say(term_of(ch), "command exited with status %u",
			       status);
	ch->state = CH_DONE;
	chan_free(ch);
}

/* A command on pipes through the io, the channel its context. */
static int spawn(struct agent_chan *ch, const struct agent_spawn *sp)
{
	const struct agent_chan_io *io = io_of(ch);

	return io->spawn(io->arg, ch->cs->cfg.loop, sp, &proc_cbs, ch,
			 &ch->proc);
}

static void handle_exec(struct agent_chan *ch, const uint8_t *body, size_t len)
{
	struct tether_msg_exec req;
	char shown[SHOW_ARGV_MAX];
	struct agent_spawn sp;
	int r;

	if ((r = parse_exec(body, len, &req)) != 0) {
		chan_fail(ch, "malformed exec request");
		return;
	}
	agent_term_words(req.argv, req.argc, "", shown, sizeof(shown));
	agent_term_say(term_of(ch), "%s runs: %s", ch->technician, shown);
	sp.file = req.argv[0];
	sp.argv = req.argv;
	sp.stop_signal = SIGTERM;
	r = spawn(ch, &sp);
	if (r != 0) {
		spawn_failed(ch, req.argv[0], r, false);
		goto out;
	}
	ch->state = CH_RUNNING;
	update_credit(ch);
out:
	tether_msg_clear_exec(&req);
}

/*
 * DIAG: EXEC with no arguments (docs/protocol.md, "Diagnostics").  The
 * collector runs as a child so that a stuck read of /proc or a slow tool
 * cannot stall the loop; its output then flows as a command's does.
 */
static void handle_diag(struct agent_chan *ch, const uint8_t *body, size_t len)
{
	static char *const argv[] = {AGENT_PROG, "diag", "--json", NULL};
	struct tether_msg_exec req;
	struct agent_spawn sp;
	uint32_t argc;
	int r;

	r = tether_msg_decode_exec(body, len, &req);
	argc = req.argc;
	tether_msg_clear_exec(&req);
	if (r == TETHER_ERR_NOMEM) {
		chan_fail(ch, "out of memory");
		return;
	}
	if (r != 0 || argc != 0) {
		chan_fail(ch, "malformed diag request");
		return;
	}
	agent_term_say(term_of(ch), "%s collected diagnostics", ch->technician);
	sp.file = "/proc/self/exe";
	sp.argv = argv;
	sp.stop_signal = SIGTERM;
	r = spawn(ch, &sp);
	if (r != 0) {
		spawn_failed(ch, AGENT_PROG " diag", r, false);
		return;
	}
	ch->state = CH_RUNNING;
	update_credit(ch);
}

/*
 * A SHELL (tether/msg.h, which refuses unknown flags: they would change
 * what runs) with no words, for the login shell, or a program to run.
 * On failure req is clear.
 */
static int parse_shell(const uint8_t *body, size_t len,
		       struct tether_msg_shell *req)
{
	int r = tether_msg_decode_shell(body, len, req);

	if (r == 0 && req->argc > 0 && req->argv[0][0] == '\0') {
		tether_msg_clear_shell(req);
		r = TETHER_ERR_FORMAT;
	}
	return r;
}

static void handle_shell(struct agent_chan *ch, const uint8_t *body, size_t len)
{
	char shell[PATH_MAX], arg0[NAME_MAX + 2], shown[SHOW_ARGV_MAX];
	char *login_argv[2] = {arg0, NULL};
	const struct agent_chan_io *io = io_of(ch);
	struct agent_term *t = term_of(ch);
	struct tether_msg_shell req;
	struct agent_pty_opts po;
	struct agent_spawn sp;
	char *const *argv;
	const char *file;
	bool pty;
	int r;

	if (parse_shell(body, len, &req) != 0) {
		chan_fail(ch, "malformed shell request");
		return;
	}
	pty = (req.flags & TETHER_SHELL_PTY) != 0;
	if (req.argv[0] == NULL) {
		agent_login_shell(shell, sizeof(shell), arg0, sizeof(arg0));
		file = shell;
		argv = login_argv;
	} else {
		file = req.argv[0];
		argv = req.argv;
	}
	agent_term_say(t, "%s opened a shell (channel %u)", ch->technician,
		       ch->id);
	if (req.argv[0] != NULL) {
		agent_term_words(req.argv, req.argc, "", shown, sizeof(shown));
		agent_term_say(t, "%s runs: %s", ch->technician, shown);
	}
	ch->shell_shown = true;
	ch->started_ms = uv_now(ch->cs->cfg.loop);
	agent_term_shell_opened(t);
	if (pty) {
		po.file = file;
		po.argv = argv;
		po.term = req.term;
		po.cols = req.cols;
		po.rows = req.rows;
		r = io->spawn_pty(io->arg, ch->cs->cfg.loop, &po, &proc_cbs, ch,
				  &ch->pty);
	} else {
		/* Like ssh -T: pipes, stdout and stderr apart. */
		sp.file = file;
		sp.argv = argv;
		sp.stop_signal = SIGHUP;
		r = spawn(ch, &sp);
	}
	if (r != 0) {
		spawn_failed(ch, file, r, pty);
		goto out;
	}
	ch->state = CH_RUNNING;
	update_credit(ch);
out:
	tether_msg_clear_shell(&req);
}

/* RESIZE: without a terminal it means nothing. */
static void handle_resize(struct agent_chan *ch, const uint8_t *body,
			  size_t len)
{
	struct tether_msg_resize m;
	int r = tether_msg_decode_resize(body, len, &m);

	if (r == TETHER_ERR_NOMEM) {
		chan_fail(ch, "out of memory");
		return;
	}
	if (r != 0) {
		chan_fail(ch, "malformed resize request");
		return;
	}
	if (ch->pty != NULL && ch->state == CH_RUNNING)
		agent_pty_resize(ch->pty, m.cols, m.rows);
}

/*
 * The channel as the transfer engine (struct tether_xfer_io) and a
 * forward (struct agent_forward_io) see it.
 */
static int io_send(void *arg, uint8_t msg, const void *body, size_t len)
{
	return chan_send(arg, msg, body, len);
}

static size_t io_window(void *arg)
{
	return send_credit(arg);
}

static int io_consumed(void *arg, size_t n)
{
	return credit_back(arg, n);
}

static int io_xfer_report(void *arg, const struct tether_ctrl_xfer_report *r)
{
	const struct agent_chan_io *io = io_of(arg);

	return io->ctrl(io->arg, TETHER_CTRL_XFER_REPORT, r);
}

static int io_forward_report(void *arg,
			     const struct tether_ctrl_forward_report *r)
{
	const struct agent_chan_io *io = io_of(arg);

	return io->ctrl(io->arg, TETHER_CTRL_FORWARD_REPORT, r);
}

/* What file.c said: go on, close the channel, or fail it. */
static void file_result(struct agent_chan *ch, int r, const char *why)
{
	if (r == AGENT_FILE_MORE)
		return;
	if (r == AGENT_FILE_DONE) {
		ch->state = CH_DONE;
		send_closes(ch);
		chan_drop(ch);
	} else if (r == TETHER_ERR_CLOSED) {
		/* The link is going away and takes every channel with it. */
		agent_term_say(term_of(ch),
			       "stopping the file transfer of channel %u",
			       ch->id);
		chan_drop(ch);
	} else {
		chan_fail(ch, why != NULL ? why : tether_strerror(r));
	}
}

/* GET or PUT starts the transfer; the rest is the engine's. */
static void file_msg(struct agent_chan *ch, uint8_t msg, const uint8_t *body,
		     size_t len)
{
	const struct agent_file_env env = {
	    .policy = ch->cs->cfg.files,
	    .term = term_of(ch),
	    .channel = ch->id,
	    .technician = ch->technician,
	    .io = {.chan = {.send = io_send,
			    .window = io_window,
			    .consumed = io_consumed,
			    .arg = ch},
		   .report = io_xfer_report},
	};
	const char *why = NULL;
	int r;

	if (ch->state == CH_WAIT_START) {
		ch->state = CH_RUNNING;
		r = agent_file_start(&env, msg, body, len, &ch->file, &why);
	} else {
		r = agent_file_input(ch->file, msg, body, len, &why);
	}
	file_result(ch, r, why);
}

/* Window or room on the link: a sending transfer goes on. */
static void file_pump(struct agent_chan *ch)
{
	const char *why = NULL;

	if (ch->file == NULL || ch->dead || ch->state != CH_RUNNING)
		return;
	file_result(ch, agent_file_pump(ch->file, &why), why);
}

/* What forward.c said or reported: go on, close, or fail. */
static void fwd_result(struct agent_chan *ch, int r, const char *why)
{
	if (r == AGENT_FORWARD_MORE)
		return;
	if (r == AGENT_FORWARD_DONE) {
		ch->state = CH_DONE;
		send_closes(ch);
		chan_drop(ch);
	} else {
		chan_fail(ch, why != NULL ? why : tether_strerror(r));
	}
}

static void fwd_done(void *arg, const char *why)
{
	struct agent_chan *ch = arg;

	if (ch->dead || ch->state == CH_DONE)
		return;
	fwd_result(ch, why == NULL ? AGENT_FORWARD_DONE : TETHER_ERR_SYS, why);
}

static void fwd_closed(void *arg)
{
	struct agent_chan *ch = arg;

	ch->fwd = NULL;
	chan_free(ch);
}

/* FORWARD starts the connection; STDIN, EOF and CLOSE go to it. */
static void fwd_msg(struct agent_chan *ch, uint8_t msg, const uint8_t *body,
		    size_t len)
{
	const struct agent_forward_env env = {
	    .loop = ch->cs->cfg.loop,
	    .term = term_of(ch),
	    .allowed = ch->cs->cfg.forwards,
	    .granted = &ch->cs->granted,
	    .channel = ch->id,
	    .technician = ch->technician,
	    .io = {.send = io_send,
		   .window = io_window,
		   .consumed = io_consumed,
		   .report = io_forward_report,
		   .done = fwd_done,
		   .closed = fwd_closed,
		   .arg = ch},
	};
	const char *why = NULL;
	int r;

	if (ch->state == CH_WAIT_START) {
		ch->state = CH_RUNNING;
		r = agent_forward_start(&env, msg, body, len, &ch->fwd, &why);
	} else {
		r = agent_forward_input(ch->fwd, msg, body, len, &why);
	}
	fwd_result(ch, r, why);
}

/* EOF(0), the end of the console's input: the only EOF it may send. */
static bool stdin_eof(const uint8_t *body, size_t len)
{
	struct tether_msg_eof m;

	return tether_msg_decode_eof(body, len, &m) == 0 &&
	       m.stream == TETHER_MSG_STREAM_STDIN;
}

/* Window or room on the link: whatever serves the channel goes on. */
static void pump(struct agent_chan *ch)
{
	if (ch->kind == TETHER_KIND_FILE)
		file_pump(ch);
	else if (ch->kind == TETHER_KIND_FORWARD)
		agent_forward_pump(ch->fwd);
	else
		update_credit(ch);
}

static void handle_msg(struct agent_chan *ch, uint8_t msg, const uint8_t *body,
		       size_t len)
{
	bool runs_exec =
	    ch->kind == TETHER_KIND_EXEC || ch->kind == TETHER_KIND_DIAG;

	/* Its own messages, and the end of its input, are the forward's. */
	if (ch->kind == TETHER_KIND_FORWARD && msg != TETHER_MSG_WINDOW &&
	    msg != TETHER_MSG_ERROR &&
	    (msg != TETHER_MSG_CLOSE || ch->state != CH_WAIT_START)) {
		fwd_msg(ch, msg, body, len);
		return;
	}
	switch (msg) {
	case TETHER_MSG_EXEC:
		if (ch->state != CH_WAIT_START || !runs_exec)
			break;
		if (ch->kind == TETHER_KIND_DIAG)
			handle_diag(ch, body, len);
		else
			handle_exec(ch, body, len);
		return;
	case TETHER_MSG_SHELL:
		if (ch->state != CH_WAIT_START || ch->kind != TETHER_KIND_SHELL)
			break;
		handle_shell(ch, body, len);
		return;
	case TETHER_MSG_RESIZE:
		if (ch->state == CH_WAIT_START || ch->kind != TETHER_KIND_SHELL)
			break;
		handle_resize(ch, body, len);
		return;
	case TETHER_MSG_STDIN:
		if (ch->state == CH_WAIT_START || ch->kind == TETHER_KIND_FILE)
			break;
		ch->bytes_in += len;
		if (!has_child(ch) || ch->state != CH_RUNNING) {
			proc_written(ch, len);
			return;
		}
		if (child_write(ch, body, len) != 0)
			chan_fail(ch, "out of memory");
		return;
	case TETHER_MSG_EOF:
		if (!stdin_eof(body, len) || ch->state == CH_WAIT_START ||
		    ch->kind == TETHER_KIND_FILE)
			break;
		/* On a terminal: no more input, but the shell goes on. */
		child_close_stdin(ch);
		return;
	case TETHER_MSG_WINDOW:
		/* tether_chan_open() has applied it. */
		pump(ch);
		return;
	case TETHER_MSG_CLOSE:
		if (ch->state == CH_WAIT_START) {
			/* Nothing ran; close our direction too. */
			send_closes(ch);
			chan_drop(ch);
		} else if (ch->kind == TETHER_KIND_FILE) {
			/*
			 * Before both XFER_ENDs: the console gave up.  A
			 * partial file stays for the next try to resume.
			 */
			agent_term_say(term_of(ch),
				       "%s stopped the file transfer (channel "
				       "%u)",
				       ch->technician, ch->id);
			file_result(ch, AGENT_FILE_DONE, NULL);
		} else {
			/* The console sends nothing more: that is EOF. */
			child_close_stdin(ch);
		}
		return;
	case TETHER_MSG_ERROR:
		agent_term_warn(term_of(ch),
				"channel %u: the console reported an error",
				ch->id);
		if (!ch->dead)
			send_close(ch->cs, ch->id, "console error");
		chan_drop(ch);
		return;
	default:
		/* GET, PUT, and the transfer's own messages. */
		if (ch->kind == TETHER_KIND_FILE) {
			file_msg(ch, msg, body, len);
			return;
		}
		break;
	}
	chan_fail(ch, "unexpected message");
}

void agent_chans_frame(struct agent_chans *cs, const struct tether_frame *f)
{
	struct agent_chan *ch = find(cs, f->channel);
	const uint8_t *body;
	uint8_t msg;
	size_t len;
	int r;

	/*
	 * Frames already in flight when we ended the channel are normal;
	 * frames for a channel never opened are the relay's mistake.
	 */
	if (ch == NULL || ch->dead || ch->state == CH_DONE) {
		tether_log_debug("data for channel %u ignored", f->channel);
		return;
	}
	r = tether_chan_open(ch->tc, f, &msg, &body, &len);
	if (r != 0) {
		chan_fail(ch, r == TETHER_ERR_AUTH ? "authentication failed"
						   : "protocol error");
		return;
	}
	handle_msg(ch, msg, body, len);
}

/* A channel kind in the customer's words. */
static const char *what_kind(enum tether_kind k)
{
	switch (k) {
	case TETHER_KIND_SHELL:
		return "a shell";
	case TETHER_KIND_FILE:
		return "a file transfer";
	case TETHER_KIND_FORWARD:
		return "a connection to a TCP port";
	case TETHER_KIND_DIAG:
		return "a diagnostics report";
	default:
		return "a command";
	}
}

/* Why an open is refused, or NULL; denied is room for the reason. */
static const char *refusal(struct agent_chans *cs,
			   const struct tether_ctrl_chan_open *m, char *denied,
			   size_t deniedlen)
{
	if (!cs->paired)
		return "not paired";
	if ((cs->caps & AGENT_CAP(m->kind)) == 0) {
		/* Consent covers what was asked for at the invite, no more. */
		snprintf(denied, deniedlen, "the customer did not allow %s",
			 tether_ctrl_name_of(kind, m->kind));
		agent_term_say(cs->cfg.term,
			       "%s asked for %s, which you did not allow; "
			       "refused",
			       m->technician, what_kind(m->kind));
		return denied;
	}
	if (find(cs, (uint32_t)m->channel) != NULL)
		return "channel in use";
	if (cs->n >= AGENT_CHAN_MAX)
		return "too many channels";
	return NULL;
}

void agent_chans_open(struct agent_chans *cs,
		      const struct tether_ctrl_chan_open *m)
{
	struct tether_ctrl_opened opened = {.channel = m->channel};
	struct tether_ctrl_open_failed failed = {.channel = m->channel};
	uint32_t id = (uint32_t)m->channel;
	struct agent_chan *ch = NULL;
	char denied[REASON_MAX];
	const char *why;

	why = refusal(cs, m, denied, sizeof(denied));
	if (why != NULL)
		goto fail;
	why = "internal error";
	ch = tether_calloc(1, sizeof(*ch));
	if (ch == NULL ||
	    tether_random(opened.nonce, sizeof(opened.nonce)) != 0)
		goto fail;
	ch->tc = tether_chan_new(id, false, cs->ke, cs->ke_len, m->nonce,
				 opened.nonce);
	/* File channels keep more in flight; the console does the same. */
	if (ch->tc == NULL ||
	    (m->kind == TETHER_KIND_FILE &&
	     tether_chan_set_window(ch->tc, TETHER_FILE_WINDOW) != 0))
		goto fail;
	ch->cs = cs;
	ch->id = id;
	ch->kind = m->kind;
	ch->state = CH_WAIT_START;
	snprintf(ch->technician, sizeof(ch->technician), "%s", m->technician);
	ch->next = cs->list;
	cs->list = ch;
	cs->n++;
	cs->cfg.io.ctrl(cs->cfg.io.arg, TETHER_CTRL_OPENED, &opened);
	return;
fail:
	if (ch != NULL) {
		tether_chan_free(ch->tc);
		tether_free(ch);
	}
	failed.reason = why;
	cs->cfg.io.ctrl(cs->cfg.io.arg, TETHER_CTRL_OPEN_FAILED, &failed);
}

void agent_chans_close(struct agent_chans *cs,
		       const struct tether_ctrl_chan_close *m)
{
	struct agent_chan *ch = find(cs, (uint32_t)m->channel);
	struct agent_term *t = cs->cfg.term;
	/* The relay's word that the technician lost access, said as such. */
	bool removed = m->reason != NULL &&
		       strcmp(m->reason, TETHER_REASON_TECH_REMOVED) == 0;
	bool revoked =
	    m->reason != NULL && strncmp(m->reason, TETHER_REASON_REVOKED,
					 strlen(TETHER_REASON_REVOKED)) == 0;
	char said[TETHER_CTRL_REASON_MAX + 64];
	const char *why = removed ? "the technician was removed from the relay"
				  : "the technician went away";

	if (revoked) {
		/* The relay's words (names and a ticket), cleaned. */
		char clean[TETHER_CTRL_REASON_MAX];

		agent_text_clean(m->reason + strlen(TETHER_REASON_REVOKED),
				 clean, sizeof(clean));
		snprintf(said, sizeof(said),
			 "the technician's access was revoked (%s)", clean);
		why = said;
		removed = true;
	}

	if (ch == NULL || ch->dead)
		return;
	if (ch->state == CH_RUNNING && ch->kind == TETHER_KIND_SHELL)
		agent_term_say(t, "%s; closing the shell", why);
	else if (ch->state == CH_RUNNING && ch->kind == TETHER_KIND_FILE)
		agent_term_say(t, "%s; stopping the file transfer", why);
	else if (ch->state == CH_RUNNING && ch->kind != TETHER_KIND_FORWARD)
		agent_term_say(t, "%s; stopping the command", why);
	else if (removed && ch->kind == TETHER_KIND_FORWARD)
		agent_term_say(t, "%s; closing the forward", why);
	chan_drop(ch);
}

void agent_chans_drain(struct agent_chans *cs)
{
	struct agent_chan *ch, *next;

	/* A transfer may end here, and its channel with it. */
	for (ch = cs->list; ch != NULL; ch = next) {
		next = ch->next;
		pump(ch);
	}
}

void agent_chans_abort(struct agent_chans *cs)
{
	struct agent_term *t = cs->cfg.term;
	struct agent_chan *ch, *next;

	for (ch = cs->list; ch != NULL; ch = next) {
		next = ch->next;
		if (ch->dead)
			continue;
		if (ch->state == CH_RUNNING && ch->kind == TETHER_KIND_SHELL)
			agent_term_say(t, "closing the shell of channel %u",
				       ch->id);
		else if (ch->state == CH_RUNNING &&
			 ch->kind == TETHER_KIND_FILE)
			agent_term_say(t,
				       "stopping the file transfer of channel "
				       "%u",
				       ch->id);
		else if (ch->state == CH_RUNNING &&
			 ch->kind != TETHER_KIND_FORWARD)
			agent_term_say(t, "stopping the command of channel %u",
				       ch->id);
		chan_drop(ch);
	}
}

struct agent_chans *agent_chans_new(const struct agent_chans_cfg *cfg)
{
	struct agent_chans *cs = tether_calloc(1, sizeof(*cs));

	if (cs != NULL)
		cs->cfg = *cfg;
	return cs;
}

void agent_chans_pair(struct agent_chans *cs, const uint8_t *ke, size_t ke_len,
		      unsigned caps)
{
	if (ke_len > sizeof(cs->ke))
		return;
	memcpy(cs->ke, ke, ke_len);
	cs->ke_len = ke_len;
	cs->caps = caps;
	cs->paired = true;
}

size_t agent_chans_count(const struct agent_chans *cs)
{
	return cs->n;
}

void agent_chans_free(struct agent_chans *cs)
{
	if (cs == NULL)
		return;
	agent_chans_abort(cs);
	cs->freeing = true;
	table_maybe_free(cs);
}
