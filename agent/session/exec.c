/*
 * Running one command for an exec channel (or a shell channel without a
 * terminal): uv_spawn with three pipes, no shell, in a new session (so the
 * customer's Ctrl-C and terminal stay out of it and the whole process group
 * can be stopped).  Output is read only as far as the credit the channel
 * grants, which is how the sealed channel's window and the relay link's
 * back-pressure reach the child.  Nothing here knows about links, keys or
 * messages.
 */
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <tether/alloc.h>
#include <tether/err.h>

#include "session/exec.h"

#define KILL_GRACE_MS 2000

enum {
	PIPE_IN,
	PIPE_OUT,
	PIPE_ERR,
	NPIPES,
};

struct agent_proc {
	uv_process_t proc;
	uv_pipe_t pipes[NPIPES];
	uv_timer_t kill_timer;
	uv_shutdown_t shutdown_req;
	const struct agent_proc_cbs *cbs;
	void *ctx;
	int handles; /* initialised handles not yet closed */
	size_t credit;
	bool reading[NPIPES];
	bool eof[NPIPES];
	bool closing[NPIPES];
	bool stdin_shut;
	bool spawned;
	bool exited;
	bool killing;
	bool released; /* handles being closed; no callbacks but on_closed */
	int pid;
	int stop_signal;
};

struct proc_write {
	uv_write_t req;
	struct agent_proc *p;
	size_t len;
	uint8_t data[];
};

/*
 * One buffer for every pipe: a read is handed to the channel, which seals
 * and queues it, before the loop reads anything else.
 */
static uint8_t read_buf[AGENT_PROC_CHUNK];

static void on_handle_closed(uv_handle_t *h)
{
	struct agent_proc *p = h->data;

	if (--p->handles > 0)
		return;
	if (p->spawned && p->cbs->on_closed != NULL)
		p->cbs->on_closed(p->ctx);
	tether_free(p);
}

static void close_handle(uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, on_handle_closed);
}

static void close_pipe(struct agent_proc *p, int i)
{
	if (p->closing[i])
		return;
	p->closing[i] = true;
	p->reading[i] = false;
	close_handle((uv_handle_t *)&p->pipes[i]);
}

/* Everything is over: close what is left; on_closed follows. */
static void release(struct agent_proc *p)
{
	int i;

	if (p->released)
		return;
	p->released = true;
	for (i = 0; i < NPIPES; i++)
		close_pipe(p, i);
	uv_timer_stop(&p->kill_timer);
	close_handle((uv_handle_t *)&p->kill_timer);
	close_handle((uv_handle_t *)&p->proc);
}

/* Done once the child has exited and both output pipes reached EOF. */
static void maybe_release(struct agent_proc *p)
{
	if (p->exited && (p->killing || (p->eof[PIPE_OUT] && p->eof[PIPE_ERR])))
		release(p);
}

static enum agent_stream stream_of(int i)
{
	return i == PIPE_OUT ? AGENT_STDOUT : AGENT_STDERR;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct agent_proc *p = h->data;
	size_t n = p->credit < sizeof(read_buf) ? p->credit : sizeof(read_buf);

	(void)suggested;
	/* Never read more than the channel may send right now. */
	*buf = uv_buf_init((char *)read_buf, (unsigned int)n);
}

static void update_reading(struct agent_proc *p);

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct agent_proc *p = s->data;
	int i = (uv_pipe_t *)s == &p->pipes[PIPE_OUT] ? PIPE_OUT : PIPE_ERR;

	if (nread == 0 || p->killing)
		return;
	if (nread == UV_ENOBUFS) {
		/* Credit ran out between alloc and read. */
		update_reading(p);
		return;
	}
	if (nread < 0) {
		/* EOF, or an error that ends the stream just the same. */
		uv_read_stop(s);
		p->reading[i] = false;
		p->eof[i] = true;
		close_pipe(p, i);
		p->cbs->on_eof(p->ctx, stream_of(i));
		maybe_release(p);
		return;
	}
	p->credit -= (size_t)nread;
	if (p->credit == 0)
		update_reading(p);
	p->cbs->on_output(p->ctx, stream_of(i), (const uint8_t *)buf->base,
			  (size_t)nread);
}

static void update_reading(struct agent_proc *p)
{
	int i;

	for (i = PIPE_OUT; i <= PIPE_ERR; i++) {
		bool want = p->credit > 0 && !p->eof[i] && !p->closing[i] &&
			    !p->killing;

		if (want && !p->reading[i]) {
			if (uv_read_start((uv_stream_t *)&p->pipes[i], on_alloc,
					  on_read) == 0)
				p->reading[i] = true;
		} else if (!want && p->reading[i]) {
			uv_read_stop((uv_stream_t *)&p->pipes[i]);
			p->reading[i] = false;
		}
	}
}

void agent_proc_set_credit(struct agent_proc *p, size_t credit)
{
	p->credit = credit;
	update_reading(p);
}

static void on_proc_exit(uv_process_t *h, int64_t status, int signo)
{
	struct agent_proc *p = h->data;

	p->exited = true;
	if (!p->killing) {
		if (signo != 0)
			p->cbs->on_exit(p->ctx, 1, (uint32_t)signo);
		else
			p->cbs->on_exit(p->ctx, 0, (uint32_t)status);
	}
	maybe_release(p);
}

static void on_write(uv_write_t *req, int status)
{
	struct proc_write *w = (struct proc_write *)req;
	struct agent_proc *p = w->p;

	(void)status;
	/*
	 * Written or not (the child may have closed stdin), the bytes are
	 * out of our hands: credit them so the console is not stalled.
	 */
	if (!p->killing)
		p->cbs->on_written(p->ctx, w->len);
	tether_free(w);
}

int agent_proc_write(struct agent_proc *p, const void *data, size_t len)
{
	struct proc_write *w;
	uv_buf_t b;
	int r;

	if (p->stdin_shut || p->closing[PIPE_IN] || p->killing) {
		/* Nowhere to write it: drop it, but credit it. */
		p->cbs->on_written(p->ctx, len);
		return 0;
	}
	w = tether_malloc(sizeof(*w) + len);
	if (w == NULL)
		return TETHER_ERR_NOMEM;
	w->p = p;
	w->len = len;
	memcpy(w->data, data, len);
	b = uv_buf_init((char *)w->data, (unsigned int)len);
	r = uv_write(&w->req, (uv_stream_t *)&p->pipes[PIPE_IN], &b, 1,
		     on_write);
	if (r < 0) {
		tether_free(w);
		p->cbs->on_written(p->ctx, len);
	}
	return 0;
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	struct agent_proc *p = req->data;

	(void)status;
	close_pipe(p, PIPE_IN);
}

void agent_proc_close_stdin(struct agent_proc *p)
{
	if (p->stdin_shut || p->closing[PIPE_IN])
		return;
	p->stdin_shut = true;
	p->shutdown_req.data = p;
	/* After the queued writes; the child then reads end of file. */
	if (uv_shutdown(&p->shutdown_req, (uv_stream_t *)&p->pipes[PIPE_IN],
			on_shutdown) != 0)
		close_pipe(p, PIPE_IN);
}

static void signal_group(struct agent_proc *p, int signo)
{
	/*
	 * The child leads its own process group (UV_PROCESS_DETACHED
	 * calls setsid), so this reaches what it started too.
	 */
	if (kill(-p->pid, signo) != 0 && !p->exited)
		uv_process_kill(&p->proc, signo);
}

static void on_kill_timer(uv_timer_t *t)
{
	struct agent_proc *p = t->data;

	signal_group(p, SIGKILL);
}

void agent_proc_kill(struct agent_proc *p)
{
	int i;

	if (p->killing)
		return;
	p->killing = true;
	/* Its output has nowhere to go any more. */
	for (i = 0; i < NPIPES; i++)
		close_pipe(p, i);
	if (p->exited) {
		/* Whatever it left behind in its group goes too. */
		kill(-p->pid, SIGKILL);
		release(p);
		return;
	}
	signal_group(p, p->stop_signal);
	/* A stopped job acts on nothing but SIGKILL until continued. */
	signal_group(p, SIGCONT);
	uv_timer_start(&p->kill_timer, on_kill_timer, KILL_GRACE_MS, 0);
}

static bool is_dir(const char *path)
{
	struct stat st;

	return path != NULL && path[0] == '/' && stat(path, &st) == 0 &&
	       S_ISDIR(st.st_mode) && access(path, X_OK) == 0;
}

const char *agent_work_dir(void)
{
	const char *home = getenv("HOME");
	struct passwd *pw;

	if (is_dir(home))
		return home;
	pw = getpwuid(geteuid());
	if (pw != NULL && is_dir(pw->pw_dir))
		return pw->pw_dir;
	return "/";
}

/* An absolute path to an executable file. */
static bool is_shell(const char *path)
{
	struct stat st;

	return path != NULL && path[0] == '/' && stat(path, &st) == 0 &&
	       S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

void agent_login_shell(char *path, size_t pathlen, char *arg0, size_t arg0len)
{
	const char *sh = getenv("SHELL"), *base;
	struct passwd *pw;
	int n;

	if (!is_shell(sh)) {
		pw = getpwuid(geteuid());
		sh = pw != NULL ? pw->pw_shell : NULL;
	}
	if (!is_shell(sh))
		sh = "/bin/sh";
	n = snprintf(path, pathlen, "%s", sh);
	if (n < 0 || (size_t)n >= pathlen)
		snprintf(path, pathlen, "/bin/sh");
	base = strrchr(path, '/');
	base = base != NULL ? base + 1 : path;
	snprintf(arg0, arg0len, "-%s", base);
}

int agent_proc_spawn(uv_loop_t *loop, const struct agent_spawn *sp,
		     const struct agent_proc_cbs *cbs, void *ctx,
		     struct agent_proc **out)
{
	uv_stdio_container_t stdio[NPIPES];
	uv_process_options_t opts;
	struct agent_proc *p;
	int i, r;

	*out = NULL;
	p = tether_calloc(1, sizeof(*p));
	if (p == NULL)
		return UV_ENOMEM;
	p->cbs = cbs;
	p->ctx = ctx;
	p->stop_signal = sp->stop_signal;
	for (i = 0; i < NPIPES; i++) {
		uv_pipe_init(loop, &p->pipes[i], 0);
		p->pipes[i].data = p;
		p->handles++;
	}
	uv_timer_init(loop, &p->kill_timer);
	p->kill_timer.data = p;
	p->handles++;

	memset(stdio, 0, sizeof(stdio));
	/* Flags are from the child's side: it reads 0, writes 1 and 2. */
	stdio[PIPE_IN].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
	stdio[PIPE_IN].data.stream = (uv_stream_t *)&p->pipes[PIPE_IN];
	for (i = PIPE_OUT; i <= PIPE_ERR; i++) {
		stdio[i].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
		stdio[i].data.stream = (uv_stream_t *)&p->pipes[i];
	}
	memset(&opts, 0, sizeof(opts));
	opts.file = sp->file;
	opts.args = (char **)sp->argv;
	opts.env = NULL; /* inherit */
	opts.cwd = agent_work_dir();
	opts.flags = UV_PROCESS_DETACHED;
	opts.stdio_count = NPIPES;
	opts.stdio = stdio;
	opts.exit_cb = on_proc_exit;

	p->proc.data = p;
	r = uv_spawn(loop, &p->proc, &opts);
	/* The process handle is initialised either way and must be closed. */
	p->handles++;
	if (r != 0) {
		/* No callbacks for a command that never ran. */
		p->killing = true;
		release(p);
		return r;
	}
	p->spawned = true;
	p->pid = p->proc.pid;
	*out = p;
	return 0;
}
