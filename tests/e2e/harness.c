/*
 * End-to-end test harness (see harness.h): temporary directories, child
 * processes with captured output and timeouts, the relay's lifecycle, and
 * the console steps every test needs.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"
#include "../require.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <sqlite3.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <tether/num.h>

extern char **environ;

#define MAX_CHILDREN 64
#define MAX_ARGS 64
#define RELAY_START_MS 10000
/* For a relay, agent or console to exit after SIGTERM or SIGINT. */
#define STOP_MS 5000
#define POLL_SLICE_MS 50
/* Most of the failure message that h_teardown() gives Criterion. */
#define TEARDOWN_MSG_MAX 16384

/* What a child is: tether programs are stopped gently and judged. */
enum prog { PROG_OTHER, PROG_RELAY, PROG_AGENT, PROG_CONSOLE };

struct child {
	pid_t pid; /* 0: a free slot */
	enum prog prog;
	char what[64]; /* "tether-agent join", for messages */
};

/* State of the current test; Criterion gives each test its own process. */
static char tmpdir[H_PATH_MAX];
static char config_env[H_PATH_MAX + 32];
static struct child children[MAX_CHILDREN];
static unsigned agent_seq;
/* DIR/sanitizer and the options that send reports there (unset: none). */
static char san_dir[H_PATH_MAX];
static char *san_asan_env;
static char *san_ubsan_env;
/*
 * Who the next spawned child runs as (0: as we do); set around one spawn
 * like the RLIMIT_FSIZE of proc_start_fsize().
 */
static uid_t spawn_uid;
static gid_t spawn_gid;

/* ---- Small utilities --------------------------------------------------- */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* snprintf that asserts the result fits. */
static void fmt(char *buf, size_t len, const char *f, ...)
    __attribute__((format(printf, 3, 4)));
static void fmt(char *buf, size_t len, const char *f, ...)
{
	va_list ap;
	int n;

	va_start(ap, f);
	n = vsnprintf(buf, len, f, ap);
	va_end(ap);
	cr_assert(n >= 0 && (size_t)n < len, "string too long for buffer: %s",
		  f);
}

struct h_buf {
	char *p;
	size_t len;
	size_t cap;
};

/* Makes room for n more bytes plus a NUL. */
static char *buf_room(struct h_buf *b, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;

		while (cap < b->len + n + 1)
			cap *= 2;
		b->p = realloc(b->p, cap);
		cr_assert(b->p, "out of memory");
		b->cap = cap;
	}
	return b->p + b->len;
}

static void buf_finish(struct h_buf *b)
{
	buf_room(b, 0);
	b->p[b->len] = '\0';
}

static int wait_status(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return -1;
}

/* snprintf appended to b; output that does not fit is cut. */
static void buf_add(struct h_buf *b, const char *f, ...)
    __attribute__((format(printf, 2, 3)));
static void buf_add(struct h_buf *b, const char *f, ...)
{
	va_list ap;
	int n;

	va_start(ap, f);
	n = vsnprintf(NULL, 0, f, ap);
	va_end(ap);
	if (n <= 0)
		return;
	va_start(ap, f);
	vsnprintf(buf_room(b, (size_t)n), (size_t)n + 1, f, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* Which tether program argv starts, if any (by the paths meson gives). */
static enum prog prog_of(const char *const *argv)
{
	static const struct {
		const char *var;
		enum prog prog;
	} progs[] = {
	    {"TETHER_RELAY_BIN", PROG_RELAY},
	    {"TETHER_AGENT_BIN", PROG_AGENT},
	    {"TETHER_CONSOLE_BIN", PROG_CONSOLE},
	};

	for (size_t i = 0; i < sizeof(progs) / sizeof(progs[0]); i++) {
		const char *bin = getenv(progs[i].var);

		if (bin && strcmp(bin, argv[0]) == 0)
			return progs[i].prog;
	}
	return PROG_OTHER;
}

static void track(pid_t pid, const char *const *argv)
{
	const char *name = strrchr(argv[0], '/');

	name = name ? name + 1 : argv[0];
	for (int i = 0; i < MAX_CHILDREN; i++) {
		if (children[i].pid == 0) {
			children[i].pid = pid;
			children[i].prog = prog_of(argv);
			snprintf(children[i].what, sizeof(children[i].what),
				 "%s%s%s", name, argv[1] ? " " : "",
				 argv[1] ? argv[1] : "");
			return;
		}
	}
	cr_assert_fail("too many child processes");
}

static void untrack(pid_t pid)
{
	for (int i = 0; i < MAX_CHILDREN; i++)
		if (children[i].pid == pid)
			children[i].pid = 0;
}

/* Kills a child and its process group (it is a session leader). */
static void kill_reap(pid_t pid)
{
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) == -1 && errno == EINTR)
		;
	untrack(pid);
}

/* Argument vector as one line, for failure messages. */
static const char *argv_str(const char *const *argv, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (int i = 0; argv[i] && off + 1 < len; i++) {
		int n = snprintf(buf + off, len - off, "%s%s", i ? " " : "",
				 argv[i]);

		if (n < 0)
			break;
		off += (size_t)n;
	}
	return buf;
}

/* Does env entry e set the same variable as entry x ("NAME=...")? */
static bool same_name(const char *e, const char *x)
{
	const char *eq = strchr(x, '=');
	size_t n = eq ? (size_t)(eq - x) : strlen(x);

	return strncmp(e, x, n) == 0 && e[n] == '=';
}

static bool overridden(const char *e, const char *const *extra, size_t from,
		       size_t n)
{
	for (size_t i = from; i < n; i++)
		if (same_name(e, extra[i]))
			return true;
	return false;
}

/*
 * The child's environment: ours, then first (may be NULL), then env; a
 * later entry replaces an earlier one of the same name.
 */
static char **make_env(const char *first, const char *const *env)
{
	const char *extra[MAX_ARGS];
	size_t n = 0, ne = 0, k = 0;
	char **out;

	/* First, so that a test can still set options of its own. */
	if (san_asan_env)
		extra[n++] = san_asan_env;
	if (san_ubsan_env)
		extra[n++] = san_ubsan_env;
	if (first)
		extra[n++] = first;
	for (size_t i = 0; env && env[i]; i++) {
		cr_assert(n < MAX_ARGS, "too many environment entries");
		extra[n++] = env[i];
	}
	while (environ[ne])
		ne++;
	out = calloc(ne + n + 1, sizeof(*out));
	cr_assert(out, "out of memory");
	for (size_t i = 0; i < ne; i++)
		if (!overridden(environ[i], extra, 0, n))
			out[k++] = environ[i];
	for (size_t i = 0; i < n; i++)
		if (!overridden(extra[i], extra, i + 1, n))
			out[k++] = (char *)extra[i];
	out[k] = NULL;
	return out;
}

/*
 * Child side of spawn(): its own session (no controlling terminal, so
 * prompts cannot block, and one process group to kill), killed with us,
 * default signal dispositions, and only the three standard descriptors.
 */
static void child_exec(const char *const *argv, char **envp, pid_t parent,
		       const int fds[3])
{
	sigset_t none;
	int hi[3];

	setsid();
	/* First: a change of credentials clears the parent-death signal. */
	if (spawn_uid != 0 &&
	    (setgroups(0, NULL) != 0 || setgid(spawn_gid) != 0 ||
	     setuid(spawn_uid) != 0)) {
		dprintf(fds[2], "harness: cannot become uid %d gid %d: %s\n",
			(int)spawn_uid, (int)spawn_gid, strerror(errno));
		_exit(127);
	}
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
	signal(SIGPIPE, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* Move out of the way first in case one of them is 0, 1 or 2. */
	for (int i = 0; i < 3; i++)
		hi[i] = fcntl(fds[i], F_DUPFD, 100);
	for (int i = 0; i < 3; i++)
		if (hi[i] < 0 || dup2(hi[i], i) < 0)
			_exit(127);
	close_range(3, ~0U, 0);
	execvpe(argv[0], (char *const *)argv, envp);
	dprintf(2, "harness: cannot execute %s: %s\n", argv[0],
		strerror(errno));
	_exit(127);
}

static pid_t spawn(const char *const *argv, const char *first,
		   const char *const *env, const int fds[3])
{
	char **envp = make_env(first, env);
	pid_t parent = getpid();
	pid_t pid;

	pid = fork();
	cr_assert(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0)
		child_exec(argv, envp, parent, fds);
	free(envp);
	track(pid, argv);
	return pid;
}

static int open_cloexec(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC, 0600);

	cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
	return fd;
}

/* ---- Setup and teardown ------------------------------------------------ */

long long h_number(const char *s, char **end)
{
	const char *p = s;
	int64_t v = 0;

	if (tether_num_scan_i64(&p, &v) != 0) {
		p = s;
		v = 0;
	}
	if (end != NULL)
		*end = (char *)p;
	return v;
}

const char *h_dir(void)
{
	return tmpdir;
}

const char *h_path(char *buf, size_t len, const char *name)
{
	fmt(buf, len, "%s/%s", tmpdir, name);
	return buf;
}

static const char *bin(const char *var)
{
	const char *p = getenv(var);

	cr_assert(p && *p, "%s is not set (run the tests with meson test)",
		  var);
	return p;
}

const char *h_relay_bin(void)
{
	return bin("TETHER_RELAY_BIN");
}

const char *h_agent_bin(void)
{
	return bin("TETHER_AGENT_BIN");
}

const char *h_console_bin(void)
{
	return bin("TETHER_CONSOLE_BIN");
}

static bool env_is_1(const char *var)
{
	const char *p = getenv(var);

	return p && strcmp(p, "1") == 0;
}

bool h_test_hooks(void)
{
	return env_is_1("TETHER_TEST_HOOKS");
}

void h_tool_missing(const char *why)
{
	cr_assert(!test_tools_required(),
		  "%s; it is required here (CI or TETHER_REQUIRE_TOOLS=1)",
		  why);
}

bool h_sanitized(void)
{
	return env_is_1("TETHER_SANITIZE");
}

bool h_leak_detect(void)
{
	return env_is_1("TETHER_LEAK_DETECT");
}

/*
 * "VAR=<ours>:<extra>log_path=DIR/sanitizer/report": the sanitizer adds
 * ".PID" to the path.  A later option overrides an earlier one, so ours
 * come first and extra and log_path win.
 */
static char *san_options(const char *var, const char *extra)
{
	const char *ours = getenv(var);
	char *s = NULL;

	if (asprintf(&s, "%s=%s%s%slog_path=%s/report", var, ours ? ours : "",
		     ours && *ours ? ":" : "", extra, san_dir) < 0)
		s = NULL;
	cr_assert(s, "out of memory");
	return s;
}

/* Sanitizer reports go to DIR/sanitizer, where anyone may write. */
static void san_setup(void)
{
	h_path(san_dir, sizeof(san_dir), "sanitizer");
	/*
	 * Mode 1777: a program that a test runs as another user (nobody)
	 * writes its report here too.
	 */
	cr_assert(mkdir(san_dir, 0700) == 0 && chmod(san_dir, 01777) == 0,
		  "mkdir %s: %s", san_dir, strerror(errno));
	/*
	 * The test binary records whole stacks (tests/meson.build); the
	 * programs are much busier, and their reports need no more than
	 * the frames of our own code, which all have frame pointers.
	 */
	san_asan_env = san_options("ASAN_OPTIONS", "fast_unwind_on_malloc=1:");
	san_ubsan_env = san_options("UBSAN_OPTIONS", "");
}

static void san_free(void)
{
	free(san_asan_env);
	free(san_ubsan_env);
	san_asan_env = san_ubsan_env = NULL;
	san_dir[0] = '\0';
}

/* "report.PID": the pid, or 0 if the name is not one of those. */
static pid_t report_pid(const char *name)
{
	static const char pre[] = "report.";
	char *end;
	long v;

	if (strncmp(name, pre, sizeof(pre) - 1) != 0)
		return 0;
	errno = 0;
	v = h_number(name + sizeof(pre) - 1, &end);
	if (errno || *end || v <= 0 || v > INT_MAX)
		return 0;
	return (pid_t)v;
}

/* Appends the reports of pid (0: all) to b; true if there was one. */
static bool collect_reports(struct h_buf *b, pid_t pid, bool consume)
{
	char path[H_PATH_MAX + 300];
	struct dirent *e;
	bool found = false;
	DIR *d;

	if (!san_dir[0] || (d = opendir(san_dir)) == NULL)
		return false;
	while ((e = readdir(d)) != NULL) {
		pid_t from = report_pid(e->d_name);
		char *text;

		if (from == 0 || (pid != 0 && from != pid))
			continue;
		fmt(path, sizeof(path), "%s/%s", san_dir, e->d_name);
		text = h_read_file(path, NULL);
		buf_add(b, "sanitizer report of pid %d (%s):\n%s\n", (int)from,
			path, text ? text : "(unreadable)");
		free(text);
		found = true;
		if (consume)
			unlink(path);
	}
	closedir(d);
	return found;
}

char *h_sanitizer_reports(pid_t pid, bool consume)
{
	struct h_buf b = {0};

	if (!collect_reports(&b, pid, consume))
		return NULL;
	buf_finish(&b);
	return b.p;
}

void h_setup(void)
{
	char cfg[H_PATH_MAX];

	/* A child that closes its stdin early must not kill the test. */
	signal(SIGPIPE, SIG_IGN);
	fmt(tmpdir, sizeof(tmpdir), "/tmp/tether-e2e-XXXXXX");
	cr_assert(mkdtemp(tmpdir), "mkdtemp: %s", strerror(errno));
	h_path(cfg, sizeof(cfg), "config");
	cr_assert(mkdir(cfg, 0700) == 0, "mkdir %s: %s", cfg, strerror(errno));
	fmt(config_env, sizeof(config_env), "XDG_CONFIG_HOME=%s", cfg);
	if (h_sanitized())
		san_setup();
}

static int rm_one(const char *path, const struct stat *sb, int flag,
		  struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

/* Signals that mean the program crashed (or a sanitizer aborted it). */
static bool crash_signal(int sig)
{
	return sig == SIGSEGV || sig == SIGABRT || sig == SIGBUS ||
	       sig == SIGILL || sig == SIGFPE || sig == SIGTRAP ||
	       sig == SIGSYS;
}

/*
 * Appends to b why the end of a tether program was not clean.  status is
 * as h_res.status, -1 if it is still running; sent is the signal it was
 * stopped with, 0 if it had ended by itself (then only a crash counts).
 * Consoles may die of sent: only `tether forward` handles SIGTERM.
 */
static void judge_exit(struct h_buf *b, const char *what, pid_t pid,
		       bool may_die, int status, int sent)
{
	int sig = status >= 128 ? status - 128 : 0;

	if (status < 0) {
		buf_add(b, "%s (pid %d) still running %d ms after %s\n", what,
			(int)pid, STOP_MS, strsignal(sent));
	} else if (sig && sig == sent && !may_die) {
		buf_add(b,
			"%s (pid %d) died of %s: it never ran its exit "
			"path (nor the leak check)\n",
			what, (int)pid, strsignal(sig));
	} else if (sig && (crash_signal(sig) || (sent && sig != sent))) {
		buf_add(b, "%s (pid %d) killed by signal %d (%s)\n", what,
			(int)pid, sig, strsignal(sig));
	} else if (!sig && sent && status != 0 && !may_die) {
		buf_add(b, "%s (pid %d) exited with %d after %s\n", what,
			(int)pid, status, strsignal(sent));
	}
}

/* waitpid without blocking: status as h_res.status, -1 if running. */
static int try_reap(pid_t pid)
{
	int st;
	pid_t w;

	while ((w = waitpid(pid, &st, WNOHANG)) == -1 && errno == EINTR)
		;
	if (w == pid)
		return wait_status(st);
	return w == 0 ? -1 : 0;
}

/*
 * Ends every child: tether programs with SIGTERM and STOP_MS to exit
 * (all at once, so that teardown takes one wait, not one per program),
 * the rest with SIGKILL.  What was not clean goes to b.
 */
static void stop_children(struct h_buf *b)
{
	int status[MAX_CHILDREN], sent[MAX_CHILDREN];
	int64_t deadline = now_ms() + STOP_MS;
	bool waiting = true;

	for (int i = 0; i < MAX_CHILDREN; i++) {
		struct child *c = &children[i];

		status[i] = -1;
		sent[i] = 0;
		if (c->pid == 0)
			continue;
		if (c->prog == PROG_OTHER) {
			kill_reap(c->pid);
			continue;
		}
		status[i] = try_reap(c->pid);
		if (status[i] < 0) {
			sent[i] = SIGTERM;
			kill(c->pid, SIGTERM);
		}
	}
	while (waiting) {
		waiting = false;
		for (int i = 0; i < MAX_CHILDREN; i++) {
			if (children[i].pid == 0 || status[i] >= 0)
				continue;
			status[i] = try_reap(children[i].pid);
			waiting = waiting || status[i] < 0;
		}
		if (waiting && now_ms() >= deadline)
			break;
		if (waiting)
			sleep_ms(20);
	}
	for (int i = 0; i < MAX_CHILDREN; i++) {
		struct child *c = &children[i];

		if (c->pid == 0)
			continue;
		judge_exit(b, c->what, c->pid, c->prog == PROG_CONSOLE,
			   status[i], sent[i]);
		/* Reaped or not, whatever it left in its group goes too. */
		kill_reap(c->pid);
	}
}

void h_teardown(void)
{
	static char msg[TEARDOWN_MSG_MAX];
	struct h_buf why = {0};

	stop_children(&why);
	collect_reports(&why, 0, false);
	san_free();
	msg[0] = '\0';
	if (why.len) {
		buf_finish(&why);
		snprintf(msg, sizeof(msg), "%s", why.p);
	}
	free(why.p);
	if (tmpdir[0]) {
		if (getenv("TETHER_KEEP_TMP"))
			fprintf(stderr, "harness: kept %s\n", tmpdir);
		else
			nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	}
	/* Tests that skip call this themselves; .fini may follow. */
	tmpdir[0] = '\0';
	/* Last: the assertion leaves this function. */
	cr_assert(msg[0] == '\0', "at the end of the test:\n%s", msg);
}

/* ---- Running to completion --------------------------------------------- */

/* Reads what is there; false at EOF or error. */
static bool drain(int fd, struct h_buf *b)
{
	for (;;) {
		ssize_t n = read(fd, buf_room(b, 65536), 65536);

		if (n > 0) {
			b->len += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 && errno == EAGAIN;
	}
}

struct run_io {
	int out, err, in; /* parent ends, -1 once closed */
	const uint8_t *in_data;
	size_t in_left;
	struct h_buf ob, eb;
};

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void feed_stdin(struct run_io *io)
{
	while (io->in >= 0 && io->in_left) {
		ssize_t n = write(io->in, io->in_data, io->in_left);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0) {
			/* The command did not want (all of) its input. */
			close_fd(&io->in);
			return;
		}
		io->in_data += n;
		io->in_left -= (size_t)n;
	}
	close_fd(&io->in);
}

static void poll_io(struct run_io *io, int ms)
{
	struct pollfd pf[3];
	int n = 0;

	if (io->out >= 0)
		pf[n++] = (struct pollfd){.fd = io->out, .events = POLLIN};
	if (io->err >= 0)
		pf[n++] = (struct pollfd){.fd = io->err, .events = POLLIN};
	if (io->in >= 0)
		pf[n++] = (struct pollfd){.fd = io->in, .events = POLLOUT};
	if (n == 0) {
		sleep_ms(ms);
		return;
	}
	poll(pf, (nfds_t)n, ms);
	if (io->out >= 0 && !drain(io->out, &io->ob))
		close_fd(&io->out);
	if (io->err >= 0 && !drain(io->err, &io->eb))
		close_fd(&io->err);
	feed_stdin(io);
}

static void nonblock(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static void run_spawn(pid_t *pid, struct run_io *io, const struct h_opts *o,
		      const char *first, const char *const *argv)
{
	int fds[3], p[2];

	if (o->stdin_data) {
		cr_assert(pipe2(p, O_CLOEXEC) == 0, "pipe");
		fds[0] = p[0];
		io->in = p[1];
		io->in_data = o->stdin_data;
		io->in_left = o->stdin_len;
		nonblock(io->in);
	} else {
		fds[0] = open_cloexec(
		    o->stdin_file ? o->stdin_file : "/dev/null", O_RDONLY);
	}
	if (o->stdout_file) {
		fds[1] =
		    open_cloexec(o->stdout_file, O_WRONLY | O_CREAT | O_TRUNC);
	} else {
		cr_assert(pipe2(p, O_CLOEXEC) == 0, "pipe");
		fds[1] = p[1];
		io->out = p[0];
		nonblock(io->out);
	}
	cr_assert(pipe2(p, O_CLOEXEC) == 0, "pipe");
	fds[2] = p[1];
	io->err = p[0];
	nonblock(io->err);
	*pid = spawn(argv, first, o->env, fds);
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	/* An empty stdin is an immediate EOF. */
	feed_stdin(io);
}

static void run_common(struct h_res *res, const struct h_opts *o,
		       const char *first, const char *const *argv)
{
	static const struct h_opts none;
	struct run_io io = {.out = -1, .err = -1, .in = -1};
	int timeout, st = 0;
	int64_t deadline;
	char line[1024];
	pid_t pid, w;

	memset(res, 0, sizeof(*res));
	if (!o)
		o = &none;
	timeout = o->timeout_ms ? o->timeout_ms : H_RUN_TIMEOUT_MS;
	run_spawn(&pid, &io, o, first, argv);
	deadline = now_ms() + timeout;
	for (;;) {
		w = waitpid(pid, &st, WNOHANG);
		if (w == pid)
			break;
		if (now_ms() >= deadline) {
			kill_reap(pid);
			buf_finish(&io.eb);
			cr_assert_fail(
			    "timed out after %d ms: %s\nstderr: %s", timeout,
			    argv_str(argv, line, sizeof(line)), io.eb.p);
		}
		poll_io(&io, POLL_SLICE_MS);
	}
	untrack(pid);
	/* It has exited, so what it wrote is in the pipes; grandchildren
	 * that kept them open do not hold us up. */
	if (io.out >= 0)
		drain(io.out, &io.ob);
	if (io.err >= 0)
		drain(io.err, &io.eb);
	close_fd(&io.out);
	close_fd(&io.err);
	close_fd(&io.in);
	buf_finish(&io.ob);
	buf_finish(&io.eb);
	res->status = wait_status(st);
	res->out = io.ob.p;
	res->out_len = io.ob.len;
	res->err = io.eb.p;
	res->err_len = io.eb.len;
}

void h_run(struct h_res *res, const struct h_opts *o, const char *const *argv)
{
	run_common(res, o, NULL, argv);
}

void h_res_free(struct h_res *res)
{
	free(res->out);
	free(res->err);
	memset(res, 0, sizeof(*res));
}

/* Runs the console with args (after argv[0]) and the test's config. */
static void console_run(struct h_res *res, const struct h_opts *o,
			const char *const *args, bool ok)
{
	const char *argv[MAX_ARGS + 2];
	char line[1024];
	int n = 0;

	argv[n++] = h_console_bin();
	for (int i = 0; args[i]; i++) {
		cr_assert(n < MAX_ARGS, "too many arguments");
		argv[n++] = args[i];
	}
	argv[n] = NULL;
	run_common(res, o, config_env, argv);
	if (ok)
		cr_assert_eq(res->status, 0,
			     "%s: exit status %d, expected 0\nstderr: %s",
			     argv_str(argv, line, sizeof(line)), res->status,
			     res->err);
}

static void console_v(struct h_res *res, const struct h_opts *o, bool ok,
		      va_list ap)
{
	const char *args[MAX_ARGS + 1];
	const char *a;
	int n = 0;

	while ((a = va_arg(ap, const char *)) != NULL) {
		cr_assert(n < MAX_ARGS, "too many arguments");
		args[n++] = a;
	}
	args[n] = NULL;
	console_run(res, o, args, ok);
}

void h_exec(struct h_res *res, const struct h_opts *o, const char *ticket,
	    const char *const *cmd)
{
	const char *args[MAX_ARGS + 1] = {"exec", ticket, "--"};
	int n = 3;

	for (int i = 0; cmd[i]; i++) {
		cr_assert(n < MAX_ARGS, "too many arguments");
		args[n++] = cmd[i];
	}
	args[n] = NULL;
	console_run(res, o, args, false);
}

void h_console(struct h_res *res, const struct h_opts *o, ...)
{
	va_list ap;

	va_start(ap, o);
	console_v(res, o, false, ap);
	va_end(ap);
}

void h_console_ok(struct h_res *res, const struct h_opts *o, ...)
{
	va_list ap;

	va_start(ap, o);
	console_v(res, o, true, ap);
	va_end(ap);
}

void h_expect(const struct h_res *res, int status, const char *out,
	      const char *err, const char *what)
{
	cr_assert_eq(res->status, status,
		     "%s: status %d, expected %d\nstdout: %s\nstderr: %s", what,
		     res->status, status, res->out, res->err);
	if (out)
		cr_assert_str_eq(res->out, out,
				 "%s: stdout \"%s\", expected \"%s\"\n"
				 "stderr: %s",
				 what, res->out, out, res->err);
	if (err)
		cr_assert_str_eq(res->err, err,
				 "%s: stderr \"%s\", expected \"%s\"", what,
				 res->err, err);
}

void h_expect_fail(const struct h_res *res, int status, const char *part,
		   const char *what)
{
	if (status >= 0)
		cr_assert_eq(res->status, status,
			     "%s: status %d, expected %d\nstderr: %s", what,
			     res->status, status, res->err);
	else
		cr_assert_neq(res->status, 0,
			      "%s: succeeded, expected a failure\n"
			      "stdout: %s\nstderr: %s",
			      what, res->out, res->err);
	cr_assert(strstr(res->err, part),
		  "%s: stderr does not mention \"%s\": \"%s\"", what, part,
		  res->err);
}

/* ---- Background processes ---------------------------------------------- */

/*
 * Starts argv with stdin from /dev/null, stdout in out_path (truncated) and
 * stderr appended to err_path (a restarted relay keeps one log).
 */
static void proc_spawn(struct h_proc *p, const char *out_path,
		       const char *err_path, const char *const *argv,
		       const char *first, const char *const *env)
{
	int fds[3];

	memset(p, 0, sizeof(*p));
	fmt(p->out, sizeof(p->out), "%s", out_path);
	fmt(p->err, sizeof(p->err), "%s", err_path);
	fds[0] = open_cloexec("/dev/null", O_RDONLY);
	fds[1] = open_cloexec(p->out, O_WRONLY | O_CREAT | O_TRUNC);
	fds[2] = open_cloexec(p->err, O_WRONLY | O_CREAT | O_APPEND);
	p->pid = spawn(argv, first, env, fds);
	p->ran_as = p->pid;
	for (int i = 0; i < 3; i++)
		close(fds[i]);
}

static void proc_spawn_tag(struct h_proc *p, const char *tag,
			   const char *const *argv, const char *first,
			   const char *const *env)
{
	char name[128], out[H_PATH_MAX], err[H_PATH_MAX];

	fmt(name, sizeof(name), "%s.out", tag);
	h_path(out, sizeof(out), name);
	fmt(name, sizeof(name), "%s.err", tag);
	h_path(err, sizeof(err), name);
	/* A tag names one process: a stale log would mislead. */
	unlink(err);
	proc_spawn(p, out, err, argv, first, env);
}

void h_proc_start(struct h_proc *p, const char *tag, const char *const *argv,
		  const char *const *env)
{
	proc_spawn_tag(p, tag, argv, NULL, env);
}

void h_console_start(struct h_proc *p, const char *tag, ...)
{
	const char *argv[MAX_ARGS + 2];
	const char *a;
	va_list ap;
	int n = 0;

	argv[n++] = h_console_bin();
	va_start(ap, tag);
	while ((a = va_arg(ap, const char *)) != NULL) {
		cr_assert(n < MAX_ARGS, "too many arguments");
		argv[n++] = a;
	}
	va_end(ap);
	argv[n] = NULL;
	proc_spawn_tag(p, tag, argv, config_env, NULL);
}

/* Reaps p if it has exited; true if it has (now or before). */
static bool proc_reaped(struct h_proc *p)
{
	int st;

	if (p->pid == 0)
		return true;
	if (waitpid(p->pid, &st, WNOHANG) != p->pid)
		return false;
	untrack(p->pid);
	p->pid = 0;
	p->status = wait_status(st);
	return true;
}

int h_proc_wait(struct h_proc *p, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;

	while (!proc_reaped(p)) {
		if (now_ms() >= deadline)
			return -1;
		sleep_ms(20);
	}
	return p->status;
}

bool h_proc_alive(struct h_proc *p)
{
	return !proc_reaped(p);
}

void h_proc_signal(struct h_proc *p, int sig)
{
	if (p->pid)
		kill(p->pid, sig);
}

void h_proc_kill(struct h_proc *p)
{
	if (proc_reaped(p))
		return;
	kill_reap(p->pid);
	p->pid = 0;
	p->status = 128 + SIGKILL;
}

/* The child's name for messages (before it is reaped and untracked). */
static const char *child_what(pid_t pid, char *buf, size_t len)
{
	for (int i = 0; pid && i < MAX_CHILDREN; i++)
		if (children[i].pid == pid)
			return children[i].what;
	fmt(buf, len, "pid %d", (int)pid);
	return buf;
}

char *h_proc_stop_why(struct h_proc *p, int sig)
{
	struct h_buf b = {0};
	char what[sizeof(children[0].what)], pid_name[32];
	int sent = 0, st;

	/* Copied: reaping it frees the slot. */
	fmt(what, sizeof(what), "%s",
	    child_what(p->pid, pid_name, sizeof(pid_name)));
	if (h_proc_alive(p)) {
		sent = sig;
		h_proc_signal(p, sig);
	}
	st = h_proc_wait(p, STOP_MS);
	if (st < 0)
		h_proc_kill(p);
	judge_exit(&b, what, p->ran_as, false, st, sent);
	collect_reports(&b, p->ran_as, true);
	if (b.len == 0)
		return NULL;
	buf_finish(&b);
	return b.p;
}

void h_proc_stop(struct h_proc *p, int sig)
{
	char *why = h_proc_stop_why(p, sig);
	char *out;

	if (why == NULL)
		return;
	out = h_proc_output(p);
	cr_assert_fail("%s\noutput: %s", why, out);
}

char *h_proc_output(const struct h_proc *p)
{
	char *o = h_read_file(p->out, NULL);
	char *e = h_read_file(p->err, NULL);
	char *s = NULL;

	if (asprintf(&s, "[stdout] %s[stderr] %s", o ? o : "", e ? e : "") < 0)
		s = NULL;
	free(o);
	free(e);
	cr_assert(s, "out of memory");
	return s;
}

bool h_proc_wait_output(const struct h_proc *p, const char *needle,
			int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	size_t n = strlen(needle);

	for (;;) {
		if (h_file_contains(p->out, needle, n) ||
		    h_file_contains(p->err, needle, n))
			return true;
		if (now_ms() >= deadline)
			return false;
		sleep_ms(POLL_SLICE_MS);
	}
}

/* ---- Files ------------------------------------------------------------- */

char *h_read_file(const char *path, size_t *len)
{
	struct h_buf b = {0};
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return NULL;
	for (;;) {
		n = read(fd, buf_room(&b, 65536), 65536);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		b.len += (size_t)n;
	}
	close(fd);
	buf_finish(&b);
	if (len)
		*len = b.len;
	return b.p;
}

bool h_file_contains(const char *path, const void *needle, size_t n)
{
	size_t len;
	char *s = h_read_file(path, &len);
	bool found = s && memmem(s, len, needle, n) != NULL;

	free(s);
	return found;
}

void h_write_random(const char *path, size_t len)
{
	static unsigned char chunk[1 << 20];
	int fd = open_cloexec(path, O_WRONLY | O_CREAT | O_TRUNC);

	while (len) {
		size_t n = len < sizeof(chunk) ? len : sizeof(chunk);

		cr_assert(RAND_bytes(chunk, (int)n) == 1, "RAND_bytes");
		cr_assert(write(fd, chunk, n) == (ssize_t)n, "write %s: %s",
			  path, strerror(errno));
		len -= n;
	}
	close(fd);
}

void h_sha256_file(const char *path, char hex[65])
{
	static unsigned char chunk[1 << 20];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int fd = open_cloexec(path, O_RDONLY);
	ssize_t n;

	cr_assert(ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1,
		  "EVP_DigestInit");
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		EVP_DigestUpdate(ctx, chunk, (size_t)n);
	close(fd);
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	for (unsigned int i = 0; i < mdlen && i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	hex[64] = '\0';
}

char *h_chomp(char *s)
{
	size_t n = strlen(s);

	if (n && s[n - 1] == '\n')
		s[n - 1] = '\0';
	return s;
}

/* ---- The relay --------------------------------------------------------- */

static void copy_json_str(json_t *obj, const char *key, char *out, size_t len,
			  const char *text)
{
	const char *v = json_string_value(json_object_get(obj, key));

	cr_assert(v, "no string \"%s\" in: %s", key, text);
	fmt(out, len, "%s", v);
}

void h_relay_init(struct h_relay *r, const char *name)
{
	const char *argv[] = {h_relay_bin(), "init",   "--data",
			      r->data,	     "--json", NULL};
	json_error_t jerr;
	struct h_res res;
	char log[64];
	json_t *j;

	memset(r, 0, sizeof(*r));
	h_path(r->data, sizeof(r->data), name);
	fmt(log, sizeof(log), "%s.log", name);
	h_path(r->log, sizeof(r->log), log);
	h_run(&res, NULL, argv);
	cr_assert_eq(res.status, 0, "tether-relay init: status %d\n%s",
		     res.status, res.err);
	j = json_loads(res.out, 0, &jerr);
	cr_assert(json_is_object(j), "tether-relay init --json: not JSON: %s",
		  res.out);
	copy_json_str(j, "fingerprint", r->fingerprint, sizeof(r->fingerprint),
		      res.out);
	copy_json_str(j, "admin_token", r->admin_token, sizeof(r->admin_token),
		      res.out);
	cr_assert(strncmp(r->fingerprint, "SHA256:", 7) == 0,
		  "init fingerprint %s", r->fingerprint);
	cr_assert(strncmp(r->admin_token, "tt_", 3) == 0, "init token %s",
		  r->admin_token);
	json_decref(j);
	h_res_free(&res);
}

/*
 * Parses "tether-relay listening on ADDR fingerprint FP\n" into r;
 * false if the line is not complete yet.
 */
static bool parse_listening(struct h_relay *r, const char *s)
{
	static const char pre[] = "tether-relay listening on ";
	static const char mid[] = " fingerprint ";
	const char *nl = strchr(s, '\n');
	const char *addr, *sp, *colon;
	char *end;
	long port;

	if (!nl)
		return false;
	cr_assert(strncmp(s, pre, sizeof(pre) - 1) == 0,
		  "unexpected first line from tether-relay run: %s", s);
	addr = s + sizeof(pre) - 1;
	sp = strchr(addr, ' ');
	cr_assert(sp && sp < nl && strncmp(sp, mid, sizeof(mid) - 1) == 0,
		  "unexpected first line from tether-relay run: %s", s);
	cr_assert((size_t)(sp - addr) < sizeof(r->addr), "address too long");
	memcpy(r->addr, addr, (size_t)(sp - addr));
	r->addr[sp - addr] = '\0';
	colon = strrchr(r->addr, ':');
	cr_assert(colon, "no port in %s", r->addr);
	errno = 0;
	port = h_number(colon + 1, &end);
	cr_assert(errno == 0 && *end == '\0' && port > 0 && port < 65536,
		  "bad port in %s", r->addr);
	r->port = (int)port;
	sp += sizeof(mid) - 1;
	cr_assert((size_t)(nl - sp) == strlen(r->fingerprint) &&
		      strncmp(sp, r->fingerprint, (size_t)(nl - sp)) == 0,
		  "relay says fingerprint %.*s, init said %s", (int)(nl - sp),
		  sp, r->fingerprint);
	return true;
}

void h_relay_start(struct h_relay *r, const char *listen,
		   const char *const *env)
{
	h_relay_start_ex(r, listen, NULL, env);
}

/* The most arguments h_relay_start_ex() passes after run's own. */
#define RELAY_EXTRA_ARGS 8

void h_relay_start_ex(struct h_relay *r, const char *listen,
		      const char *const *args, const char *const *env)
{
	const char *argv[6 + RELAY_EXTRA_ARGS + 1] = {
	    h_relay_bin(), "run",      "--data",
	    r->data,	   "--listen", listen ? listen : "127.0.0.1:0"};
	size_t n = 6;
	int64_t deadline = now_ms() + RELAY_START_MS;
	char stdout_path[H_PATH_MAX + 8];
	char *out;

	for (; args != NULL && *args != NULL; args++) {
		cr_assert(n < 6 + RELAY_EXTRA_ARGS,
			  "h_relay_start_ex: more than %d arguments",
			  RELAY_EXTRA_ARGS);
		argv[n++] = *args;
	}
	argv[n] = NULL;
	fmt(stdout_path, sizeof(stdout_path), "%s.out", r->data);
	proc_spawn(&r->proc, stdout_path, r->log, argv, NULL, env);
	for (;;) {
		out = h_read_file(r->proc.out, NULL);
		if (out && parse_listening(r, out))
			break;
		free(out);
		if (!h_proc_alive(&r->proc)) {
			out = h_proc_output(&r->proc);
			cr_assert_fail("tether-relay run exited with %d: %s",
				       r->proc.status, out);
		}
		if (now_ms() >= deadline) {
			out = h_proc_output(&r->proc);
			cr_assert_fail("tether-relay run: no listening line "
				       "within %d ms: %s",
				       RELAY_START_MS, out);
		}
		sleep_ms(20);
	}
	free(out);
}

void h_relay_up(struct h_relay *r, const char *const *env)
{
	h_relay_init(r, "relay");
	h_relay_start(r, NULL, env);
}

void h_relay_stop(struct h_relay *r)
{
	cr_assert(h_proc_alive(&r->proc), "tether-relay died (status %d)",
		  r->proc.status);
	h_proc_stop(&r->proc, SIGTERM);
}

bool h_relay_alive(struct h_relay *r)
{
	return h_proc_alive(&r->proc);
}

void h_technician_add(const struct h_relay *r, const char *name,
		      const char *role, char *token, size_t len)
{
	const char *argv[] = {h_relay_bin(), "technician", "add",    name,
			      "--role",	     role,	   "--data", r->data,
			      "--json",	     NULL};
	json_error_t jerr;
	struct h_res res;
	const char *v;
	json_t *j;

	h_run(&res, NULL, argv);
	h_expect(&res, 0, NULL, NULL, "tether-relay technician add");
	j = json_loads(res.out, 0, &jerr);
	cr_assert(json_is_object(j), "technician add --json: %s", res.out);
	v = json_string_value(json_object_get(j, "name"));
	cr_assert(v && !strcmp(v, name), "technician add --json: %s", res.out);
	v = json_string_value(json_object_get(j, "role"));
	cr_assert(v && !strcmp(v, role), "technician add --json: %s", res.out);
	copy_json_str(j, "token", token, len, res.out);
	cr_assert(strncmp(token, "tt_", 3) == 0, "technician token %s", token);
	json_decref(j);
	h_res_free(&res);
}

struct sqlite3 *h_db_open(const struct h_relay *r)
{
	char db[H_PATH_MAX + 16];
	sqlite3 *h = NULL;

	fmt(db, sizeof(db), "%s/tether.db", r->data);
	cr_assert_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL),
		     SQLITE_OK, "%s", db);
	sqlite3_busy_timeout(h, 2000);
	return h;
}

/* ---- User actions ------------------------------------------------------ */

void h_technician_token(const struct h_relay *r, const char *name, char *token,
			size_t len)
{
	const char *argv[] = {h_relay_bin(), "technician", "token",  name,
			      "--data",	     r->data,	   "--json", NULL};
	struct h_res res;
	const char *v;
	json_t *j;

	h_run(&res, NULL, argv);
	h_expect(&res, 0, NULL, NULL, "tether-relay technician token");
	j = json_loads(res.out, 0, NULL);
	cr_assert(json_is_object(j), "technician token --json: %s", res.out);
	v = json_string_value(json_object_get(j, "name"));
	cr_assert(v && !strcmp(v, name), "technician token --json: %s",
		  res.out);
	cr_assert(json_integer_value(json_object_get(j, "id")) > 0,
		  "technician token --json: %s", res.out);
	copy_json_str(j, "token", token, len, res.out);
	cr_assert(strncmp(token, "tt_", 3) == 0, "technician token %s", token);
	json_decref(j);
	h_res_free(&res);
}

void h_login_as(const struct h_relay *r, const char *token)
{
	char cfg[H_PATH_MAX], path[H_PATH_MAX + 32];
	struct h_res res;

	/* Another technician at this desk: their sessions stay. */
	h_path(cfg, sizeof(cfg), "config");
	fmt(path, sizeof(path), "%s/tether/config.json", cfg);
	unlink(path);
	fmt(path, sizeof(path), "%s/tether/technician.key", cfg);
	unlink(path);
	h_console_ok(&res, NULL, "login", r->addr, "--token", token,
		     "--fingerprint", r->fingerprint, NULL);
	h_res_free(&res);
}

void h_login(const struct h_relay *r)
{
	char token[H_TOKEN_MAX];

	/* init's token is spent by the first login: each takes a new one. */
	h_technician_token(r, "admin", token, sizeof(token));
	h_login_as(r, token);
}

static void copy_line(struct h_res *res, char *out, size_t len,
		      const char *what)
{
	h_chomp(res->out);
	cr_assert(res->out[0] && !strchr(res->out, '\n'),
		  "%s: expected one line on stdout, got \"%s\"", what,
		  res->out);
	fmt(out, len, "%s", res->out);
}

void h_ticket_new(const char *title, char *id, size_t len)
{
	struct h_res res;

	h_console_ok(&res, NULL, "ticket", "new", title, NULL);
	copy_line(&res, id, len, "tether ticket new");
	cr_assert(strncmp(id, "T-", 2) == 0, "ticket id \"%s\"", id);
	h_res_free(&res);
}

void h_invite(const char *ticket, const char *expires, char *code, size_t len)
{
	struct h_res res;

	if (expires)
		h_console_ok(&res, NULL, "invite", ticket, "--expires", expires,
			     NULL);
	else
		h_console_ok(&res, NULL, "invite", ticket, NULL);
	copy_line(&res, code, len, "tether invite");
	h_res_free(&res);
}

json_t *h_ticket_show(const char *ticket)
{
	json_error_t jerr;
	struct h_res res;
	json_t *j, *t;

	h_console_ok(&res, NULL, "ticket", "show", ticket, "--all", "--json",
		     NULL);
	j = json_loads(res.out, 0, &jerr);
	cr_assert(json_is_object(j), "ticket show --json: not an object: %s",
		  res.out);
	/* Accept the bare ticket or the relay's {"ticket": ...} answer. */
	t = json_object_get(j, "ticket");
	if (json_is_object(t)) {
		json_incref(t);
		json_decref(j);
		j = t;
	}
	h_res_free(&res);
	return j;
}

bool h_audit_has(json_t *ticket, const char *part)
{
	json_t *audit = json_object_get(ticket, "audit");
	json_t *ev;
	size_t i;

	json_array_foreach (audit, i, ev) {
		const char *name =
		    json_string_value(json_object_get(ev, "event"));

		if (name && strstr(name, part))
			return true;
	}
	return false;
}

char *h_audit_names(json_t *ticket)
{
	json_t *audit = json_object_get(ticket, "audit");
	struct h_buf b = {0};
	json_t *ev;
	size_t i;

	json_array_foreach (audit, i, ev) {
		const char *name =
		    json_string_value(json_object_get(ev, "event"));
		size_t n;

		if (!name)
			name = "?";
		n = strlen(name);
		memcpy(buf_room(&b, n + 1), name, n);
		b.len += n;
		b.p[b.len++] = ',';
	}
	buf_finish(&b);
	return b.p;
}

/* Is some session of the ticket joined or (after an attach) paired? */
static bool has_joined(json_t *t)
{
	json_t *sessions = json_object_get(t, "sessions");
	json_t *s;
	size_t i;

	json_array_foreach (sessions, i, s) {
		const char *st = json_string_value(json_object_get(s, "state"));

		if (st && (!strcmp(st, "joined") || !strcmp(st, "paired")))
			return true;
	}
	return false;
}

void h_wait_joined(const char *ticket, int timeout_ms,
		   const struct h_proc *agent)
{
	int64_t deadline = now_ms() + timeout_ms;
	char *dump, *out;
	json_t *t;

	for (;;) {
		t = h_ticket_show(ticket);
		if (has_joined(t))
			break;
		if (now_ms() >= deadline) {
			dump = json_dumps(t, JSON_COMPACT);
			out = agent ? h_proc_output(agent) : strdup("");
			cr_assert_fail("no joined session on %s after %d ms: "
				       "%s\nagent: %s",
				       ticket, timeout_ms, dump, out);
		}
		json_decref(t);
		sleep_ms(200);
	}
	json_decref(t);
}

void h_agent_start_opts(struct h_proc *p, const struct h_relay *r,
			const char *code, const char *fp, bool yes)
{
	const char *argv[10] = {h_agent_bin(), "join", code, "--relay",
				r->addr};
	char tag[32], dir[H_PATH_MAX], env[H_PATH_MAX + 32];
	const char *envv[] = {env, NULL};
	int n = 5;

	if (!fp)
		fp = r->fingerprint;
	if (*fp) {
		argv[n++] = "--fingerprint";
		argv[n++] = fp;
	}
	if (yes)
		argv[n++] = "--yes";
	argv[n] = NULL;
	/* Each agent gets its own config home, away from the console's. */
	fmt(tag, sizeof(tag), "agent%u", ++agent_seq);
	fmt(env, sizeof(env), "XDG_CONFIG_HOME=%s",
	    h_path(dir, sizeof(dir), tag));
	cr_assert(mkdir(dir, 0700) == 0, "mkdir %s", dir);
	h_proc_start(p, tag, argv, envv);
}

void h_agent_start(struct h_proc *p, const struct h_relay *r, const char *code,
		   const char *fp)
{
	h_agent_start_opts(p, r, code, fp, true);
}

void h_session_start(struct h_session *s, const char *title,
		     const char *const *relay_env)
{
	h_session_start_ex(s, title, relay_env, NULL);
}

/*
 * Starts argv as h_proc_start() does, under RLIMIT_FSIZE fsize with
 * SIGXFSZ ignored.  Both are inherited through fork and exec, so they
 * are set here for the moment of the fork and put back at once; nothing
 * in between writes a file.
 */
static void proc_start_fsize(struct h_proc *p, const char *tag,
			     const char *const *argv, const char *const *env,
			     unsigned long long fsize)
{
	struct sigaction ign = {.sa_handler = SIG_IGN}, old_sa;
	struct rlimit old_rl, rl;

	cr_assert(getrlimit(RLIMIT_FSIZE, &old_rl) == 0, "getrlimit: %s",
		  strerror(errno));
	rl = old_rl;
	rl.rlim_cur = (rlim_t)fsize;
	cr_assert(old_rl.rlim_max == RLIM_INFINITY ||
		      rl.rlim_cur <= old_rl.rlim_max,
		  "RLIMIT_FSIZE %llu is over the hard limit", fsize);
	sigaction(SIGXFSZ, &ign, &old_sa);
	cr_assert(setrlimit(RLIMIT_FSIZE, &rl) == 0, "setrlimit: %s",
		  strerror(errno));
	h_proc_start(p, tag, argv, env);
	setrlimit(RLIMIT_FSIZE, &old_rl);
	sigaction(SIGXFSZ, &old_sa, NULL);
}

void h_agent_start_ex(struct h_proc *p, const struct h_relay *r,
		      const char *code, const struct h_agent_opts *o)
{
	const char *argv[MAX_ARGS + 1] = {
	    h_agent_bin(), "join",	    code,	    "--relay",
	    r->addr,	   "--fingerprint", r->fingerprint, "--yes"};
	const char *envv[MAX_ARGS + 1];
	char tag[32], dir[H_PATH_MAX], env[H_PATH_MAX + 32];
	int n = 8, ne = 0;

	for (int i = 0; o && o->args && o->args[i]; i++) {
		cr_assert(n < MAX_ARGS, "too many agent arguments");
		argv[n++] = o->args[i];
	}
	argv[n] = NULL;
	fmt(tag, sizeof(tag), "agent%u", ++agent_seq);
	fmt(env, sizeof(env), "XDG_CONFIG_HOME=%s",
	    h_path(dir, sizeof(dir), tag));
	cr_assert(mkdir(dir, 0700) == 0, "mkdir %s", dir);
	envv[ne++] = env;
	for (int i = 0; o && o->env && o->env[i]; i++) {
		cr_assert(ne < MAX_ARGS, "too many agent environment entries");
		envv[ne++] = o->env[i];
	}
	envv[ne] = NULL;
	if (o && o->uid) {
		cr_assert(chown(dir, o->uid, o->gid) == 0, "chown %s: %s", dir,
			  strerror(errno));
		spawn_uid = o->uid;
		spawn_gid = o->gid;
	}
	if (o && o->fsize)
		proc_start_fsize(p, tag, argv, envv, o->fsize);
	else
		h_proc_start(p, tag, argv, envv);
	spawn_uid = 0;
	spawn_gid = 0;
}

void h_nobody(uid_t *uid, gid_t *gid)
{
	struct passwd *pw = getpwnam("nobody");

	*uid = pw ? pw->pw_uid : 65534;
	*gid = pw ? pw->pw_gid : 65534;
}

void h_session_start_ex(struct h_session *s, const char *title,
			const char *const *relay_env,
			const struct h_agent_opts *o)
{
	memset(s, 0, sizeof(*s));
	h_relay_up(&s->relay, relay_env);
	h_login(&s->relay);
	h_ticket_new(title, s->ticket, sizeof(s->ticket));
	h_invite(s->ticket, NULL, s->code, sizeof(s->code));
	h_agent_start_ex(&s->agent, &s->relay, s->code, o);
	h_wait_joined(s->ticket, 15000, &s->agent);
}

/* ---- Processes by pid (/proc) ------------------------------------------ */

/*
 * Reads /proc/PID/stat: "pid (comm) state ppid ...".  The name may hold
 * spaces and parentheses, so it ends at the last ')'.  False if the
 * process is gone.
 */
static bool pid_stat(pid_t pid, char *comm, size_t comm_len, char *state,
		     pid_t *ppid)
{
	char path[64], *s, *open_p, *close_p, *end;
	long v;

	fmt(path, sizeof(path), "/proc/%d/stat", (int)pid);
	s = h_read_file(path, NULL);
	if (!s)
		return false;
	open_p = strchr(s, '(');
	close_p = strrchr(s, ')');
	if (!open_p || !close_p || close_p < open_p || close_p[1] != ' ' ||
	    !close_p[2] || close_p[3] != ' ') {
		free(s);
		return false;
	}
	if (comm) {
		size_t n = (size_t)(close_p - open_p - 1);

		if (n >= comm_len)
			n = comm_len - 1;
		memcpy(comm, open_p + 1, n);
		comm[n] = '\0';
	}
	if (state)
		*state = close_p[2];
	errno = 0;
	v = h_number(close_p + 4, &end);
	if (ppid)
		*ppid = (errno == 0 && end != close_p + 4) ? (pid_t)v : 0;
	free(s);
	return true;
}

char h_pid_state(pid_t pid)
{
	char st = 0;

	if (pid <= 0 || !pid_stat(pid, NULL, 0, &st, NULL))
		return 0;
	return st;
}

char h_pid_wait_gone(pid_t pid, int timeout_ms, bool zombie_ok)
{
	int64_t deadline = now_ms() + timeout_ms;
	char st;

	for (;;) {
		st = h_pid_state(pid);
		if (st == 0 || (zombie_ok && st == 'Z'))
			return 0;
		if (now_ms() >= deadline)
			return st;
		sleep_ms(POLL_SLICE_MS);
	}
}

/* Parses a decimal pid (a /proc entry name); 0 if it is not one. */
static pid_t parse_pid(const char *s)
{
	char *end;
	long v;

	if (*s < '0' || *s > '9')
		return 0;
	errno = 0;
	v = h_number(s, &end);
	if (errno || *end || v <= 0 || v > INT_MAX)
		return 0;
	return (pid_t)v;
}

static pid_t find_child(pid_t parent, const char *comm)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	pid_t found = 0;

	cr_assert(d, "opendir /proc: %s", strerror(errno));
	while (!found && (e = readdir(d)) != NULL) {
		pid_t pid = parse_pid(e->d_name), ppid = 0;
		char name[64];

		if (pid && pid_stat(pid, name, sizeof(name), NULL, &ppid) &&
		    ppid == parent && !strcmp(name, comm))
			found = pid;
	}
	closedir(d);
	return found;
}

pid_t h_pid_child(pid_t parent, const char *comm, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	pid_t pid;

	for (;;) {
		pid = find_child(parent, comm);
		if (pid || now_ms() >= deadline)
			return pid;
		sleep_ms(POLL_SLICE_MS);
	}
}

int h_pid_fds(pid_t pid, char **list)
{
	struct h_buf b = {0};
	char dir[64], path[128], target[H_PATH_MAX];
	struct dirent *e;
	int count = 0;
	DIR *d;

	fmt(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	d = opendir(dir);
	if (!d) {
		if (list)
			*list = strdup("");
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		ssize_t n;
		int w;

		if (e->d_name[0] == '.')
			continue;
		count++;
		if (!list)
			continue;
		fmt(path, sizeof(path), "%s/%s", dir, e->d_name);
		n = readlink(path, target, sizeof(target) - 1);
		target[n < 0 ? 0 : n] = '\0';
		w = snprintf(buf_room(&b, 600), 600, "%s -> %s\n", e->d_name,
			     target);
		if (w > 0)
			b.len += (size_t)w < 600 ? (size_t)w : 599;
	}
	closedir(d);
	if (list) {
		buf_finish(&b);
		*list = b.p;
	}
	return count;
}

char *h_wait_file(const char *path, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	size_t len;
	char *s;

	for (;;) {
		s = h_read_file(path, &len);
		if (s && len)
			return s;
		free(s);
		if (now_ms() >= deadline)
			return NULL;
		sleep_ms(POLL_SLICE_MS);
	}
}

json_t *h_audit_event(json_t *ticket, const char *event, const char *kind)
{
	json_t *audit = json_object_get(ticket, "audit");
	json_t *ev;
	size_t i;

	json_array_foreach (audit, i, ev) {
		const char *name =
		    json_string_value(json_object_get(ev, "event"));
		json_t *detail = json_object_get(ev, "detail");
		const char *k =
		    json_string_value(json_object_get(detail, "kind"));

		if (!name || strcmp(name, event))
			continue;
		if (!kind || (k && !strcmp(k, kind)))
			return ev;
	}
	return NULL;
}

/* ---- A real terminal: a private tmux server ---------------------------- */

#define TMUX_START_MS 5000
#define TMUX_MAX_ARGS 32

bool h_tmux_available(void)
{
	const char *argv[] = {"tmux", "-V", NULL};
	struct h_res res;
	bool ok;

	h_run(&res, NULL, argv);
	ok = res.status == 0 && strncmp(res.out, "tmux ", 5) == 0;
	h_res_free(&res);
	return ok;
}

/* Runs tmux -S SOCK with args; the caller checks the status. */
static void tmux_run(struct h_tmux *t, struct h_res *res,
		     const char *const *args)
{
	const char *argv[TMUX_MAX_ARGS + 4] = {"tmux", "-S", t->sock};
	int n = 3;

	for (int i = 0; args[i]; i++) {
		cr_assert(n < TMUX_MAX_ARGS, "too many tmux arguments");
		argv[n++] = args[i];
	}
	argv[n] = NULL;
	h_run(res, NULL, argv);
}

/* As tmux_run, asserting success; res may be NULL. */
static void tmux_ok(struct h_tmux *t, struct h_res *res,
		    const char *const *args)
{
	struct h_res own;
	char line[1024];

	if (!res)
		res = &own;
	tmux_run(t, res, args);
	cr_assert_eq(res->status, 0, "tmux %s: status %d: %s",
		     argv_str(args, line, sizeof(line)), res->status, res->err);
	if (res == &own)
		h_res_free(&own);
}

void h_tmux_start(struct h_tmux *t)
{
	const char *argv[] = {"tmux", "-D",	   "-S", t->sock,
			      "-f",   "/dev/null", NULL};
	const char *ls[] = {"list-sessions", NULL};
	/* Our own tmux, if the tests run inside one, is not the target. */
	const char *env[] = {"TMUX=", NULL};
	int64_t deadline;
	struct h_res res;
	char *out;
	int st;

	memset(t, 0, sizeof(*t));
	h_path(t->sock, sizeof(t->sock), "tmux.sock");
	h_proc_start(&t->server, "tmux", argv, env);
	/*
	 * Until the server listens, a client would start a server of its
	 * own on the socket; list-sessions never does, and succeeds (with
	 * no sessions) once ours answers.
	 */
	deadline = now_ms() + TMUX_START_MS;
	for (;;) {
		tmux_run(t, &res, ls);
		st = res.status;
		h_res_free(&res);
		if (st == 0)
			break;
		if (!h_proc_alive(&t->server)) {
			out = h_proc_output(&t->server);
			cr_assert_fail("tmux -D exited with %d: %s",
				       t->server.status, out);
		}
		cr_assert(now_ms() < deadline,
			  "tmux server not answering after %d ms",
			  TMUX_START_MS);
		sleep_ms(POLL_SLICE_MS);
	}
}

void h_tmux_stop(struct h_tmux *t)
{
	const char *args[] = {"kill-server", NULL};
	struct h_res res;

	if (!t->sock[0] || t->server.pid == 0)
		return;
	if (h_proc_alive(&t->server)) {
		tmux_run(t, &res, args);
		h_res_free(&res);
	}
	if (h_proc_wait(&t->server, 3000) < 0)
		h_proc_kill(&t->server);
}

void h_tmux_cmd(struct h_tmux *t, struct h_res *res, ...)
{
	const char *args[TMUX_MAX_ARGS + 1];
	const char *a;
	va_list ap;
	int n = 0;

	va_start(ap, res);
	while ((a = va_arg(ap, const char *)) != NULL) {
		cr_assert(n < TMUX_MAX_ARGS, "too many tmux arguments");
		args[n++] = a;
	}
	va_end(ap);
	args[n] = NULL;
	tmux_ok(t, res, args);
}

void h_term_new(struct h_tmux *t, const char *name, int cols, int rows,
		const char *const *env, const char *const *argv)
{
	const char *args[TMUX_MAX_ARGS + 1] = {"new-session", "-d", "-s", name,
					       "-x"};
	char x[16], y[16];
	int n = 5;

	fmt(x, sizeof(x), "%d", cols);
	fmt(y, sizeof(y), "%d", rows);
	args[n++] = x;
	args[n++] = "-y";
	args[n++] = y;
	for (int i = 0; env && env[i]; i++) {
		cr_assert(n + 2 < TMUX_MAX_ARGS, "too many tmux arguments");
		args[n++] = "-e";
		args[n++] = env[i];
	}
	/* More than one word: tmux runs them directly, without a shell. */
	for (int i = 0; argv[i]; i++) {
		cr_assert(n < TMUX_MAX_ARGS, "too many tmux arguments");
		args[n++] = argv[i];
	}
	args[n] = NULL;
	tmux_ok(t, NULL, args);
}

void h_term_type(struct h_tmux *t, const char *name, const char *text)
{
	h_tmux_cmd(t, NULL, "send-keys", "-t", name, "-l", text, NULL);
}

void h_term_key(struct h_tmux *t, const char *name, const char *key)
{
	h_tmux_cmd(t, NULL, "send-keys", "-t", name, key, NULL);
}

char *h_term_screen(struct h_tmux *t, const char *name, bool history)
{
	struct h_res res;
	char *s;

	if (history)
		h_tmux_cmd(t, &res, "capture-pane", "-p", "-J", "-t", name,
			   "-S", "-", NULL);
	else
		h_tmux_cmd(t, &res, "capture-pane", "-p", "-J", "-t", name,
			   NULL);
	s = res.out;
	res.out = NULL;
	h_res_free(&res);
	return s;
}

bool h_term_wait(struct h_tmux *t, const char *name, const char *needle,
		 int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;

	for (;;) {
		char *s = h_term_screen(t, name, true);
		bool found = strstr(s, needle) != NULL;

		free(s);
		if (found)
			return true;
		if (now_ms() >= deadline)
			return false;
		sleep_ms(POLL_SLICE_MS);
	}
}

void h_term_resize(struct h_tmux *t, const char *name, int cols, int rows)
{
	char x[16], y[16];

	fmt(x, sizeof(x), "%d", cols);
	fmt(y, sizeof(y), "%d", rows);
	h_tmux_cmd(t, NULL, "resize-window", "-t", name, "-x", x, "-y", y,
		   NULL);
}

/* display-message -p FORMAT for the pane, as a number. */
static long term_number(struct h_tmux *t, const char *name, const char *f)
{
	struct h_res res;
	char *end;
	long v;

	h_tmux_cmd(t, &res, "display-message", "-p", "-t", name, f, NULL);
	errno = 0;
	v = h_number(res.out, &end);
	cr_assert(errno == 0 && end != res.out && (*end == '\n' || !*end),
		  "tmux display-message %s: \"%s\"", f, res.out);
	h_res_free(&res);
	return v;
}

void h_term_size(struct h_tmux *t, const char *name, int *cols, int *rows)
{
	*cols = (int)term_number(t, name, "#{pane_width}");
	*rows = (int)term_number(t, name, "#{pane_height}");
}

pid_t h_term_pid(struct h_tmux *t, const char *name)
{
	return (pid_t)term_number(t, name, "#{pane_pid}");
}

/* ---- OpenSSH: a throwaway sshd on loopback, keys ----------------------- */

#define SSHD_BIN "/usr/sbin/sshd"
#define SSHD_START_MS 10000
#define SSHD_STOP_MS 3000
/* A free port can be taken by someone else before sshd binds it. */
#define SSHD_TRIES 5

bool h_sshd_available(void)
{
	/* /dev/null is no key: ssh-keygen fails, but not with 127. */
	const char *argv[] = {"ssh-keygen", "-l", "-f", "/dev/null", NULL};
	struct h_res res;
	bool ok;

	if (access(SSHD_BIN, X_OK) != 0)
		return false;
	h_run(&res, NULL, argv);
	ok = res.status != 127;
	h_res_free(&res);
	return ok;
}

const char *h_user_name(char *buf, size_t len)
{
	struct passwd *pw = getpwuid(geteuid());

	cr_assert(pw && pw->pw_name, "no passwd entry for uid %d",
		  (int)geteuid());
	fmt(buf, len, "%s", pw->pw_name);
	return buf;
}

int h_free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t alen = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int port;

	cr_assert(fd >= 0, "socket: %s", strerror(errno));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0,
		  "bind 127.0.0.1:0: %s", strerror(errno));
	cr_assert(getsockname(fd, (struct sockaddr *)&a, &alen) == 0,
		  "getsockname: %s", strerror(errno));
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

bool h_port_wait(int port, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	struct sockaddr_in a = {.sin_family = AF_INET};

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	for (;;) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int rc;

		cr_assert(fd >= 0, "socket: %s", strerror(errno));
		rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
		close(fd);
		if (rc == 0)
			return true;
		if (now_ms() >= deadline)
			return false;
		sleep_ms(POLL_SLICE_MS);
	}
}

void h_ssh_keygen(const char *path, const char *comment)
{
	const char *argv[] = {"ssh-keygen", "-q",    "-t", "ed25519", "-N", "",
			      "-C",	    comment, "-f", path,      NULL};
	struct h_res res;

	h_run(&res, NULL, argv);
	h_expect(&res, 0, NULL, NULL, "ssh-keygen -t ed25519");
	h_res_free(&res);
}

char *h_ssh_pubkey(const char *pub_path)
{
	char *s = h_read_file(pub_path, NULL);
	char *sp;

	cr_assert(s, "cannot read %s: %s", pub_path, strerror(errno));
	/* "TYPE BASE64 COMMENT\n": keep the first two fields. */
	sp = strchr(s, ' ');
	cr_assert(sp, "not an OpenSSH public key in %s: %s", pub_path, s);
	sp += strcspn(sp + 1, " \n") + 1;
	*sp = '\0';
	return s;
}

/* Creates path empty (truncating it) with mode 0600. */
static void empty_file(const char *path)
{
	close(open_cloexec(path, O_WRONLY | O_CREAT | O_TRUNC));
}

void h_sshd_start(struct h_sshd *s, const char *name)
{
	char file[128], tag[128], needle[96];
	char listen[64], hostkey[H_PATH_MAX + 16], authkeys[H_PATH_MAX + 32];
	const char *argv[40];
	int64_t deadline;
	char *log;
	int n;

	memset(s, 0, sizeof(*s));
	h_user_name(s->user, sizeof(s->user));
	fmt(file, sizeof(file), "%s_host_key", name);
	h_path(s->host_key, sizeof(s->host_key), file);
	h_ssh_keygen(s->host_key, "tether-e2e-host");
	fmt(file, sizeof(file), "%s_authorized_keys", name);
	h_path(s->authorized, sizeof(s->authorized), file);
	empty_file(s->authorized);
	fmt(file, sizeof(file), "%s.log", name);
	h_path(s->log, sizeof(s->log), file);
	fmt(tag, sizeof(tag), "%s-proc", name);
	fmt(hostkey, sizeof(hostkey), "HostKey=%s", s->host_key);
	fmt(authkeys, sizeof(authkeys), "AuthorizedKeysFile=%s", s->authorized);
	/* As root sshd refuses to start without its privsep directory. */
	if (geteuid() == 0 && mkdir("/run/sshd", 0755) != 0)
		cr_assert(errno == EEXIST, "mkdir /run/sshd: %s",
			  strerror(errno));
	for (int attempt = 0; attempt < SSHD_TRIES; attempt++) {
		int port = h_free_port();

		fmt(listen, sizeof(listen), "ListenAddress=127.0.0.1:%d", port);
		n = 0;
		argv[n++] = SSHD_BIN; /* sshd re-executes itself: absolute */
		argv[n++] = "-D";
		argv[n++] = "-f";
		argv[n++] = "/dev/null";
		argv[n++] = "-E";
		argv[n++] = s->log;
		argv[n++] = "-o";
		argv[n++] = listen;
		argv[n++] = "-o";
		argv[n++] = hostkey;
		argv[n++] = "-o";
		argv[n++] = authkeys;
		argv[n++] = "-o";
		argv[n++] = "PidFile=none";
		argv[n++] = "-o";
		argv[n++] = "UsePAM=no";
		argv[n++] = "-o";
		argv[n++] = "StrictModes=no";
		argv[n++] = "-o";
		argv[n++] = "LogLevel=VERBOSE";
		argv[n++] = "-o";
		argv[n++] = "PrintMotd=no";
		argv[n++] = "-o";
		argv[n++] = "PrintLastLog=no";
		/* In-process, so no sftp-server binary is needed. */
		argv[n++] = "-o";
		argv[n++] = "Subsystem=sftp internal-sftp";
		if (geteuid() == 0) {
			argv[n++] = "-o";
			argv[n++] = "PermitRootLogin=yes";
		}
		argv[n] = NULL;
		h_proc_start(&s->proc, tag, argv, NULL);
		fmt(needle, sizeof(needle),
		    "Server listening on 127.0.0.1 port %d.", port);
		deadline = now_ms() + SSHD_START_MS;
		for (;;) {
			if (h_file_contains(s->log, needle, strlen(needle))) {
				s->port = port;
				return;
			}
			if (!h_proc_alive(&s->proc))
				break;
			if (now_ms() >= deadline) {
				h_proc_kill(&s->proc);
				log = h_read_file(s->log, NULL);
				cr_assert_fail("sshd not listening on port %d "
					       "after %d ms: %s",
					       port, SSHD_START_MS,
					       log ? log : "(no log)");
			}
			sleep_ms(20);
		}
		/* Exited: someone took the port, or a real failure. */
		if (h_file_contains(s->log, "Address already in use", 22))
			continue;
		log = h_read_file(s->log, NULL);
		cr_assert_fail("sshd exited with %d: %s\n%s", s->proc.status,
			       log ? log : "(no log)", h_proc_output(&s->proc));
	}
	cr_assert_fail("sshd: no free port after %d tries", SSHD_TRIES);
}

void h_sshd_authorize(struct h_sshd *s, const char *pub_path)
{
	char *key = h_read_file(pub_path, NULL);
	size_t n;
	int fd;

	cr_assert(key && *key, "cannot read %s", pub_path);
	n = strlen(key);
	fd = open_cloexec(s->authorized, O_WRONLY | O_APPEND);
	cr_assert(write(fd, key, n) == (ssize_t)n, "write %s: %s",
		  s->authorized, strerror(errno));
	if (key[n - 1] != '\n')
		cr_assert(write(fd, "\n", 1) == 1, "write %s", s->authorized);
	close(fd);
	free(key);
}

void h_sshd_stop(struct h_sshd *s)
{
	if (s->proc.pid == 0)
		return;
	h_proc_signal(&s->proc, SIGTERM);
	if (h_proc_wait(&s->proc, SSHD_STOP_MS) < 0)
		h_proc_kill(&s->proc);
}

/* ---- Enrolled agents ---------------------------------------------------- */

void h_enroll_token(const struct h_relay *r, const char *ttl, char *token,
		    size_t len)
{
	const char *argv[] = {
	    h_relay_bin(), "enroll-token",	 "--data", r->data,
	    "--json",	   ttl ? "--ttl" : NULL, ttl,	   NULL};
	json_error_t jerr;
	struct h_res res;
	json_t *j;

	h_run(&res, NULL, argv);
	h_expect(&res, 0, NULL, NULL, "tether-relay enroll-token");
	j = json_loads(res.out, 0, &jerr);
	cr_assert(json_is_object(j), "enroll-token --json: %s", res.out);
	copy_json_str(j, "token", token, len, res.out);
	cr_assert(strncmp(token, "tte_", 4) == 0, "enrollment token %s", token);
	json_decref(j);
	h_res_free(&res);
}

void h_enroll(const struct h_relay *r, const char *name, const char *conf)
{
	char token[H_TOKEN_MAX];
	struct h_res res;

	h_enroll_token(r, NULL, token, sizeof(token));
	{
		const char *argv[] = {
		    h_agent_bin(), "enroll", "--relay",	      r->addr,
		    "--token",	   token,    "--fingerprint", r->fingerprint,
		    "--name",	   name,     "--config",      conf,
		    "--json",	   NULL};

		h_run(&res, NULL, argv);
	}
	h_expect(&res, 0, NULL, NULL, "tether-agent enroll");
	h_res_free(&res);
}

void h_append_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "a");

	cr_assert_not_null(fp, "open %s: %s", path, strerror(errno));
	cr_assert_eq(fputs(text, fp) >= 0, true);
	cr_assert_eq(fclose(fp), 0);
}

void h_agent_run(struct h_proc *p, const char *tag, const char *conf)
{
	const char *argv[] = {h_agent_bin(), "run", "--config",
			      conf,	     "-v",  NULL};

	h_proc_start(p, tag, argv, NULL);
}

json_t *h_health(const char *agent)
{
	json_error_t jerr;
	struct h_res res;
	json_t *j;

	if (agent)
		h_console_ok(&res, NULL, "health", agent, "--json", NULL);
	else
		h_console_ok(&res, NULL, "health", "--json", NULL);
	j = json_loads(res.out, 0, &jerr);
	cr_assert(json_is_array(j), "tether health --json: %s", res.out);
	h_res_free(&res);
	return j;
}

json_t *h_health_check(json_t *checks, const char *name)
{
	const char *c;
	json_t *row;
	size_t i;

	json_array_foreach (checks, i, row) {
		c = json_string_value(json_object_get(row, "check"));
		if (c && strcmp(c, name) == 0)
			return row;
	}
	return NULL;
}
