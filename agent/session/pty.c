/*
 * Shells on a pseudo-terminal for shell channels.  forkpty() puts the
 * child in its own session with the pty as its controlling terminal; the
 * master is driven from the loop with uv_poll and non-blocking reads and
 * writes, so a shell that does not read its input never blocks the agent.
 * As in exec.c, output is read only as far as the credit the
 * channel grants, and nothing here knows about links, keys or messages.
 *
 * A terminal has one output stream (stdout and stderr merge), reported
 * as AGENT_STDOUT; its end is reported as EOF of both streams.  The end
 * of the technician's input is not passed on: a terminal has no end of
 * file, only the EOF character, which would be wrong for binary input.
 *
 * The end: the master reads EIO once every slave descriptor is closed.
 * Once the shell itself is reaped, an empty master counts as the end too,
 * as with sshd: a background job that still holds the terminal must not
 * keep the channel open, and closing the master hangs it up.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pty.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <tether/alloc.h>
#include <tether/err.h>
#include <tether/log.h>

#include "diag/text.h"
#include "session/exec.h"
#include "session/pty.h"

#define KILL_GRACE_MS 2000
/* Once the shell is reaped, how long its last output may take to go. */
#define DRAIN_GRACE_MS 5000
#define TERM_MAX 64
#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

/* Technician input the terminal has not taken yet. */
struct pty_chunk {
	struct pty_chunk *next;
	size_t len;
	size_t off; /* bytes already written */
	uint8_t data[];
};

struct agent_pty {
	uv_poll_t poll; /* on the master */
	uv_signal_t sigchld;
	uv_timer_t timer; /* SIGKILL grace, or the drain deadline */
	const struct agent_proc_cbs *cbs;
	void *ctx;
	int master; /* -1 once closed */
	pid_t pid;
	int handles; /* initialised handles not yet closed */
	int events;  /* what the poll watches now */
	size_t credit;
	struct pty_chunk *head;
	struct pty_chunk *tail;
	bool polling;	   /* poll handle initialised */
	bool in_read;	   /* inside read_master(): no nesting */
	bool stdin_shut;   /* no input after what is queued */
	bool stdin_broken; /* the terminal takes no input any more */
	bool eof;	   /* no more output */
	bool exited;	   /* reaped */
	bool killing;
	bool released; /* handles being closed; no callbacks but on_closed */
	bool spawned;  /* on_closed is owed */
};

/* One buffer for every pty: each read is sealed and queued at once. */
static uint8_t read_buf[AGENT_PROC_CHUNK];

static void update_poll(struct agent_pty *p);

static void on_handle_closed(uv_handle_t *h)
{
	struct agent_pty *p = h->data;

	if (--p->handles > 0)
		return;
	if (p->spawned && p->cbs->on_closed != NULL)
		p->cbs->on_closed(p->ctx);
	tether_free(p);
}

static void on_poll_closed(uv_handle_t *h)
{
	struct agent_pty *p = h->data;

	/* Only now may the descriptor go: libuv watched it until here. */
	close(p->master);
	p->master = -1;
	on_handle_closed(h);
}

static void close_handle(uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, on_handle_closed);
}

/* Closing the master hangs up the terminal (SIGHUP to its session). */
static void close_master(struct agent_pty *p)
{
	if (p->polling) {
		if (!uv_is_closing((uv_handle_t *)&p->poll))
			uv_close((uv_handle_t *)&p->poll, on_poll_closed);
	} else if (p->master >= 0) {
		close(p->master);
		p->master = -1;
	}
}

/* Drops queued input, crediting it unless no callbacks are wanted. */
static void drop_input(struct agent_pty *p, bool credit)
{
	struct pty_chunk *c;

	while ((c = p->head) != NULL) {
		p->head = c->next;
		if (credit)
			p->cbs->on_written(p->ctx, c->len - c->off);
		tether_free(c);
	}
	p->tail = NULL;
}

/* Everything is over: close what is left; on_closed follows. */
static void release(struct agent_pty *p)
{
	if (p->released)
		return;
	p->released = true;
	drop_input(p, false);
	uv_timer_stop(&p->timer);
	close_handle((uv_handle_t *)&p->timer);
	uv_signal_stop(&p->sigchld);
	close_handle((uv_handle_t *)&p->sigchld);
	close_master(p);
}

static void maybe_release(struct agent_pty *p)
{
	if (p->exited && (p->eof || p->killing))
		release(p);
}

/* No more output: EOF of both streams, as a pty has only one. */
static void output_done(struct agent_pty *p)
{
	if (p->eof)
		return;
	p->eof = true;
	if (!p->killing) {
		p->cbs->on_eof(p->ctx, AGENT_STDOUT);
		p->cbs->on_eof(p->ctx, AGENT_STDERR);
	}
	maybe_release(p);
}

static void read_master(struct agent_pty *p)
{
	size_t want;
	ssize_t n;

	if (p->in_read)
		return;
	p->in_read = true;
	while (!p->eof && !p->killing && !p->released && p->credit > 0) {
		want =
		    p->credit < sizeof(read_buf) ? p->credit : sizeof(read_buf);
		n = read(p->master, read_buf, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (p->exited)
				output_done(p);
			break;
		}
		if (n <= 0) {
			/* EIO: every slave descriptor is closed. */
			output_done(p);
			break;
		}
		p->credit -= (size_t)n;
		/* Sent at once, whatever the size: typing must not wait. */
		p->cbs->on_output(p->ctx, AGENT_STDOUT, read_buf, (size_t)n);
		/*
		 * While the shell runs the poll calls again for more, which
		 * keeps several busy channels fair; after its exit, drain.
		 */
		if (!p->exited)
			break;
	}
	p->in_read = false;
}

/* Writes what the master takes now; returns the bytes written. */
static size_t write_some(struct agent_pty *p, const uint8_t *d, size_t len)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = write(p->master, d + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			/* EIO: the terminal was hung up. */
			p->stdin_broken = true;
			break;
		}
		done += (size_t)n;
	}
	return done;
}

static void write_queued(struct agent_pty *p)
{
	struct pty_chunk *c;
	size_t n;

	while ((c = p->head) != NULL && !p->stdin_broken) {
		n = write_some(p, c->data + c->off, c->len - c->off);
		c->off += n;
		/* Credit as the terminal takes it, not when all is in. */
		if (n > 0)
			p->cbs->on_written(p->ctx, n);
		if (p->killing || p->released)
			return;
		if (c->off < c->len)
			break;
		p->head = c->next;
		if (p->head == NULL)
			p->tail = NULL;
		tether_free(c);
	}
	if (p->stdin_broken)
		drop_input(p, true);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
	struct agent_pty *p = h->data;

	if (p->killing || p->released)
		return;
	if (status < 0) {
		/* POLLERR: libuv stopped watching; the terminal is unusable. */
		tether_log_debug("pty poll: %s", uv_strerror(status));
		p->events = 0;
		p->stdin_broken = true;
		drop_input(p, true);
		output_done(p);
		return;
	}
	if (events & UV_WRITABLE)
		write_queued(p);
	if (events & (UV_READABLE | UV_DISCONNECT))
		read_master(p);
	update_poll(p);
}

static void update_poll(struct agent_pty *p)
{
	int want = 0;

	if (!p->polling || p->killing || p->released)
		return;
	if (!p->eof && p->credit > 0)
		want |= UV_READABLE;
	if (p->head != NULL && !p->stdin_broken)
		want |= UV_WRITABLE;
	if (want == p->events)
		return;
	if (want == 0) {
		uv_poll_stop(&p->poll);
	} else if (uv_poll_start(&p->poll, want, on_poll) != 0) {
		tether_log_warn("cannot watch a terminal");
		return;
	}
	p->events = want;
}

void agent_pty_set_credit(struct agent_pty *p, size_t credit)
{
	if (p->killing || p->released)
		return;
	p->credit = credit;
	/*
	 * After the exit nothing may wake the poll (a background job can
	 * hold the terminal open), so look for what is left right away.
	 */
	if (p->exited && !p->in_read)
		read_master(p);
	update_poll(p);
}

int agent_pty_write(struct agent_pty *p, const void *data, size_t len)
{
	const uint8_t *d = data;
	struct pty_chunk *c;
	size_t n;

	if (p->killing || p->released)
		return 0;
	if (p->stdin_shut || p->stdin_broken) {
		/* Nowhere to write it: drop it, but credit it. */
		p->cbs->on_written(p->ctx, len);
		return 0;
	}
	if (p->head == NULL) {
		n = write_some(p, d, len);
		if (n > 0)
			p->cbs->on_written(p->ctx, n);
		if (p->stdin_broken)
			p->cbs->on_written(p->ctx, len - n);
		if (p->stdin_broken || n == len)
			return 0;
		d += n;
		len -= n;
	}
	/* Bounded by the channel window: credit goes back as it is written. */
	c = tether_malloc(sizeof(*c) + len);
	if (c == NULL)
		return TETHER_ERR_NOMEM;
	c->next = NULL;
	c->len = len;
	c->off = 0;
	memcpy(c->data, d, len);
	if (p->tail != NULL)
		p->tail->next = c;
	else
		p->head = c;
	p->tail = c;
	update_poll(p);
	return 0;
}

void agent_pty_close_stdin(struct agent_pty *p)
{
	p->stdin_shut = true;
}

void agent_pty_resize(struct agent_pty *p, uint16_t cols, uint16_t rows)
{
	struct winsize ws;

	if (p->killing || p->released || p->master < 0)
		return;
	memset(&ws, 0, sizeof(ws));
	ws.ws_col = cols;
	ws.ws_row = rows;
	if (ioctl(p->master, TIOCSWINSZ, &ws) != 0)
		tether_log_debug("TIOCSWINSZ: %s", strerror(errno));
}

static void signal_group(struct agent_pty *p, int signo)
{
	/* The shell leads its own session and process group. */
	if (kill(-p->pid, signo) != 0 && !p->exited)
		kill(p->pid, signo);
}

static void on_kill_timer(uv_timer_t *t)
{
	signal_group(t->data, SIGKILL);
}

static void on_drain_timer(uv_timer_t *t)
{
	struct agent_pty *p = t->data;

	tether_log_debug("pty output still coming after the shell exited");
	output_done(p);
}

void agent_pty_kill(struct agent_pty *p)
{
	if (p->killing || p->released)
		return;
	p->killing = true;
	drop_input(p, false);
	/* Hangs up the terminal: its session leader and foreground job. */
	close_master(p);
	if (p->exited) {
		signal_group(p, SIGKILL);
		release(p);
		return;
	}
	signal_group(p, SIGHUP);
	/* A stopped job acts on nothing but SIGKILL until continued. */
	signal_group(p, SIGCONT);
	uv_timer_start(&p->timer, on_kill_timer, KILL_GRACE_MS, 0);
}

static void on_sigchld(uv_signal_t *h, int signo)
{
	struct agent_pty *p = h->data;
	int status = 0, how;
	uint32_t value;
	pid_t r;

	(void)signo;
	if (p->exited)
		return;
	/* Only our own child: libuv reaps its own by pid as well. */
	do
		r = waitpid(p->pid, &status, WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r == 0 || (r < 0 && errno != ECHILD))
		return;
	p->exited = true;
	uv_signal_stop(&p->sigchld);
	uv_timer_stop(&p->timer);
	if (r < 0) {
		/* Someone else reaped it: the status is lost. */
		how = 0;
		value = 255;
	} else if (WIFSIGNALED(status)) {
		how = 1;
		value = (uint32_t)WTERMSIG(status);
	} else {
		how = 0;
		value = (uint32_t)WEXITSTATUS(status);
	}
	if (p->killing) {
		/* Whatever it left behind in its group goes too. */
		signal_group(p, SIGKILL);
		release(p);
		return;
	}
	p->cbs->on_exit(p->ctx, how, value);
	if (p->killing || p->released)
		return;
	if (!p->eof) {
		uv_timer_start(&p->timer, on_drain_timer, DRAIN_GRACE_MS, 0);
		read_master(p);
		update_poll(p);
	}
	maybe_release(p);
}

/* A terminal type name as terminfo spells them; else the child gets dumb. */
static bool term_ok(const char *t)
{
	size_t i;

	if (t == NULL || t[0] == '\0' || strlen(t) > TERM_MAX)
		return false;
	for (i = 0; t[i] != '\0'; i++) {
		char c = t[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		      c == '.' || c == '+'))
			return false;
	}
	return true;
}

static bool has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/*
 * The child's environment: ours with the technician's TERM, and without
 * our terminal's size (the shell asks its own terminal).  Built before
 * the fork so that the child only calls async-signal-safe functions.
 */
static char **child_env(const char *term, char **term_var)
{
	size_t n, i, j = 0, tlen;
	char **env;

	if (!term_ok(term))
		term = "dumb";
	for (n = 0; environ[n] != NULL; n++)
		;
	env = tether_calloc(n + 2, sizeof(*env));
	tlen = strlen("TERM=") + strlen(term) + 1;
	*term_var = tether_malloc(tlen);
	if (env == NULL || *term_var == NULL) {
		tether_free(env);
		tether_free(*term_var);
		*term_var = NULL;
		return NULL;
	}
	snprintf(*term_var, tlen, "TERM=%s", term);
	for (i = 0; i < n; i++) {
		if (has_prefix(environ[i], "TERM=") ||
		    has_prefix(environ[i], "COLUMNS=") ||
		    has_prefix(environ[i], "LINES="))
			continue;
		env[j++] = environ[i];
	}
	env[j++] = *term_var;
	env[j] = NULL;
	return env;
}

/* 0 if path is an executable file, else UV_ENOENT or UV_EACCES. */
static int runnable(const char *path)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return errno == EACCES ? UV_EACCES : UV_ENOENT;
	if (!S_ISREG(st.st_mode) || access(path, X_OK) != 0)
		return UV_EACCES;
	return 0;
}

/* dir/name into out, dir relative to cwd unless absolute. */
static int join_path(char *out, size_t outlen, const char *cwd, const char *dir,
		     size_t dirlen, const char *name)
{
	int n;

	if (dirlen == 0)
		n = snprintf(out, outlen, "%s/%s", cwd, name);
	else if (dir[0] == '/')
		n = snprintf(out, outlen, "%.*s/%s", (int)dirlen, dir, name);
	else
		n = snprintf(out, outlen, "%s/%.*s/%s", cwd, (int)dirlen, dir,
			     name);
	return n < 0 || (size_t)n >= outlen ? UV_ENAMETOOLONG : 0;
}

/*
 * The program's path, searched in PATH as execvp() would, but before the
 * fork: the child must not allocate, and a missing program is reported
 * like a failed exec channel (127).
 */
static int find_program(const char *file, const char *cwd, char *out,
			size_t outlen)
{
	const char *path, *dir, *end;
	int r, best = UV_ENOENT;

	if (file[0] == '\0')
		return UV_ENOENT;
	if (file[0] == '/') {
		r = snprintf(out, outlen, "%s", file);
		if (r < 0 || (size_t)r >= outlen)
			return UV_ENAMETOOLONG;
		return runnable(out);
	}
	if (strchr(file, '/') != NULL) {
		/* Relative to where the child starts, as uv_spawn has it. */
		r = join_path(out, outlen, cwd, "", 0, file);
		return r != 0 ? r : runnable(out);
	}
	path = getenv("PATH");
	if (path == NULL || path[0] == '\0')
		path = DEFAULT_PATH;
	for (dir = path;; dir = end + 1) {
		end = strchr(dir, ':');
		if (end == NULL)
			end = dir + strlen(dir);
		r = join_path(out, outlen, cwd, dir, (size_t)(end - dir), file);
		if (r == 0)
			r = runnable(out);
		if (r == 0)
			return 0;
		if (r == UV_EACCES)
			best = r;
		if (*end == '\0')
			break;
	}
	return best;
}

static void child_say(const char *s)
{
	ssize_t n = write(STDERR_FILENO, s, strlen(s));

	(void)n;
}

/* In the child: async-signal-safe calls only, then exec. */
static void child_exec(const char *path, char *const argv[], char *const envp[],
		       const char *cwd)
{
	sigset_t none;
	int i, err;

	/*
	 * Our dispositions (SIGPIPE ignored, libuv's handlers writing to
	 * the loop's pipe) must not reach the shell; exec keeps ignores.
	 */
	for (i = 1; i < NSIG; i++)
		signal(i, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (chdir(cwd) != 0 && chdir("/") != 0)
		_exit(126);
	execve(path, argv, envp);
	err = errno;
	child_say(AGENT_PROG ": cannot run ");
	child_say(path);
	child_say(err == ENOENT ? ": no such file or interpreter\r\n"
				: ": exec failed\r\n");
	_exit(err == ENOENT ? 127 : 126);
}

static int set_cloexec(int fd)
{
	int flags = fcntl(fd, F_GETFD);

	if (flags < 0 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0)
		return -1;
	return 0;
}

int agent_pty_spawn(uv_loop_t *loop, const struct agent_pty_opts *o,
		    const struct agent_proc_cbs *cbs, void *ctx,
		    struct agent_pty **out)
{
	char path[PATH_MAX], cwd[PATH_MAX];
	struct agent_pty *p = NULL;
	char *term_var = NULL;
	char **envp = NULL;
	sigset_t all, old;
	struct winsize ws;
	int master = -1, n, r, err;
	pid_t pid;

	*out = NULL;
	n = snprintf(cwd, sizeof(cwd), "%s", agent_work_dir());
	if (n < 0 || (size_t)n >= sizeof(cwd))
		snprintf(cwd, sizeof(cwd), "/");
	if ((r = find_program(o->file, cwd, path, sizeof(path))) != 0)
		goto out;
	envp = child_env(o->term, &term_var);
	p = tether_calloc(1, sizeof(*p));
	if (envp == NULL || p == NULL) {
		tether_free(p);
		r = UV_ENOMEM;
		goto out;
	}
	p->cbs = cbs;
	p->ctx = ctx;
	p->master = -1;
	uv_signal_init(loop, &p->sigchld);
	p->sigchld.data = p;
	p->handles++;
	uv_timer_init(loop, &p->timer);
	p->timer.data = p;
	p->handles++;
	/* Watching before the fork: an early exit cannot go unnoticed. */
	if ((r = uv_signal_start(&p->sigchld, on_sigchld, SIGCHLD)) != 0)
		goto fail;

	memset(&ws, 0, sizeof(ws));
	ws.ws_col = o->cols;
	ws.ws_row = o->rows;
	/* None of our handlers may run in the child before it resets them. */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid = forkpty(&master, NULL, NULL, &ws);
	if (pid == 0)
		child_exec(path, o->argv, envp, cwd);
	err = errno;
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid < 0) {
		r = -err;
		goto fail;
	}
	p->pid = pid;
	p->master = master;
	/*
	 * Later children must not inherit the master: a copy would keep
	 * this terminal alive (and readable) after we close it.
	 */
	if (set_cloexec(master) != 0 ||
	    uv_poll_init(loop, &p->poll, master) != 0) {
		/* Unusable: it goes, is reaped, and p frees itself. */
		p->killing = true;
		kill(pid, SIGKILL);
		close_master(p);
		r = UV_EIO;
		goto out;
	}
	p->poll.data = p;
	p->polling = true;
	p->handles++;
	p->spawned = true;
	*out = p;
	r = 0;
	goto out;
fail:
	/* No callbacks for a shell that never ran. */
	p->killing = true;
	release(p);
out:
	tether_free(envp);
	tether_free(term_var);
	return r;
}
