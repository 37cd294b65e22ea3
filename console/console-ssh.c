/*
 * `tether ssh T-N [USER@][HOST][:PORT] [-i KEY] [--accept-new]
 * [-- COMMAND...]`: an SSH login to the customer's sshd through a forward
 * channel, end to end (the relay carries SSH ciphertext inside our seal).
 *
 * Two threads.  The main one runs console-forward.c's bridge on the libuv
 * loop: one forward channel tied to one end of a socket pair.  The other
 * runs libssh2 on the other end: blocking while it greets the server,
 * checks the host key and authenticates (console-sshauth.c; its questions
 * may take a person minutes, while the loop keeps the relay connection
 * alive), then non-blocking with poll() between the socket, standard input
 * and a pipe SIGWINCH writes to.  When the SSH session ends, that thread
 * closes its end; the bridge sends EOF(0) and the channel winds down.
 * Nothing is printed by the main thread while the other one may have the
 * terminal: errors are kept and printed once both are done, the bridge's
 * (the cause) before the SSH side's (the consequence).  The connection,
 * the thread and that reporting (console_ssh_run()), the destination and
 * the -i/--accept-new options are shared with `tether sftp`, which only
 * brings its own body for the thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libssh2.h>

#include <tether/alloc.h>
#include <tether/proto.h>

#include "console.h"

/* How long the channel may take to wind down after the SSH session. */
#define WIND_DOWN_MS 2000
#define IO_CHUNK 32768

static const char ssh_usage[] =
    "Usage: tether ssh T-N [USER@][HOST][:PORT] [-i KEY] [--accept-new]\n"
    "                  [--host-key-alias NAME] [-- COMMAND...]\n"
    "\n"
    "Logs in to the SSH server at HOST:PORT (default 127.0.0.1:22) as\n"
    "seen from the machine whose agent joined T-N, as USER (default: you),\n"
    "and runs COMMAND or, without one, a shell (with a terminal when\n"
    "standard input is one; ~. then disconnects, ~? lists the escapes).\n"
    "The host key is checked\n"
    "against ~/.ssh/known_hosts under the name tether.T-N.HOST[.PORT], or\n"
    "NAME; authentication tries ssh-agent, then KEY\n"
    "or ~/.ssh/id_ed25519, id_ecdsa, id_rsa, then a password on the\n"
    "terminal.  Exits with the remote status (128 + signal if it was\n"
    "killed), 255 for errors, 2 for bad usage.\n"
    "\n"
    "Options:\n"
    "  -i KEY          private key file to offer\n"
    "      --accept-new  trust and remember an unknown host key\n"
    "      --host-key-alias NAME  the host's name in known_hosts, to keep\n"
    "                  one key across tickets (as OpenSSH's HostKeyAlias)\n"
    "  -h, --help      show this help\n";

/* SIGWINCH's way to the ssh thread (async-signal-safe). */
static int winch_pipe[2] = {-1, -1};

static void on_winch(int sig)
{
	int saved = errno;
	char b = 0;
	ssize_t r;

	(void)sig;
	r = write(winch_pipe[1], &b, 1);
	(void)r;
	errno = saved;
}

void console_ssh_wait_socket(LIBSSH2_SESSION *s, int fd)
{
	struct pollfd p = {.fd = fd, .events = 0};
	int dir = libssh2_session_block_directions(s);

	if (dir & LIBSSH2_SESSION_BLOCK_INBOUND)
		p.events |= POLLIN;
	if (dir & LIBSSH2_SESSION_BLOCK_OUTBOUND)
		p.events |= POLLOUT;
	if (p.events == 0)
		p.events = POLLIN;
	poll(&p, 1, 1000);
}

/* Signal names as SSH sends them ("TERM"), to 128 + number. */
static int signal_status(const char *name)
{
	static const struct {
		const char *name;
		int sig;
	} sigs[] = {
	    {"HUP", SIGHUP},   {"INT", SIGINT},	  {"QUIT", SIGQUIT},
	    {"ILL", SIGILL},   {"ABRT", SIGABRT}, {"FPE", SIGFPE},
	    {"KILL", SIGKILL}, {"SEGV", SIGSEGV}, {"PIPE", SIGPIPE},
	    {"ALRM", SIGALRM}, {"TERM", SIGTERM}, {"USR1", SIGUSR1},
	    {"USR2", SIGUSR2},
	};
	size_t i;

	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (strcmp(name, sigs[i].name) == 0)
			return 128 + sigs[i].sig;
	return CONSOLE_EXIT_FAIL;
}

/*
 * libssh2 in non-blocking mode insists that a call which returned EAGAIN
 * while a packet was half sent is repeated, with the same arguments,
 * before any other: a read in between would queue its window adjustment
 * behind the half-sent data and break the session.  So each step below
 * that ends that way is remembered and tried first next time round.
 */
enum step {
	STEP_NONE,
	STEP_READ_OUT,
	STEP_READ_ERR,
	STEP_WRITE,
	STEP_EOF,
	STEP_RESIZE,
};

struct pump {
	struct console_ssh *j;
	LIBSSH2_SESSION *s;
	LIBSSH2_CHANNEL *ch;
	enum step pending;
	uint8_t out[IO_CHUNK];
	uint8_t in[IO_CHUNK + 1]; /* one held-back "~" more than a read */
	uint8_t raw[IO_CHUNK];
	size_t inlen, inoff;
	bool in_eof, eof_sent, winch;
	struct console_tty_escapes esc;
	const char *what; /* the step that failed */
};

static bool half_sent(struct pump *p)
{
	return (libssh2_session_block_directions(p->s) &
		LIBSSH2_SESSION_BLOCK_OUTBOUND) != 0;
}

/*
 * One step: 1 done (or nothing to do), 0 blocked (try again after poll),
 * a negative libssh2 error.
 */
static int run_step(struct pump *p, enum step st)
{
	uint16_t cols, rows;
	ssize_t n;
	int rc, stream;

	switch (st) {
	case STEP_READ_OUT:
	case STEP_READ_ERR:
		p->what = "read";
		stream = st == STEP_READ_OUT ? 0 : SSH_EXTENDED_DATA_STDERR;
		while ((n = libssh2_channel_read_ex(
			    p->ch, stream, (char *)p->out, sizeof(p->out))) > 0)
			console_fd_write_all(stream == 0 ? STDOUT_FILENO
							 : STDERR_FILENO,
					     p->out, (size_t)n);
		if (n == LIBSSH2_ERROR_EAGAIN)
			return half_sent(p) ? 0 : 1;
		return n < 0 ? (int)n : 1;
	case STEP_WRITE:
		p->what = "write";
		while (p->inlen > 0) {
			n = libssh2_channel_write_ex(
			    p->ch, 0, (char *)p->in + p->inoff, p->inlen);
			if (n == LIBSSH2_ERROR_EAGAIN)
				return half_sent(p) ? 0 : 1;
			if (n < 0)
				return (int)n;
			p->inoff += (size_t)n;
			p->inlen -= (size_t)n;
		}
		return 1;
	case STEP_EOF:
		p->what = "eof";
		if (p->inlen > 0 || !p->in_eof || p->eof_sent)
			return 1;
		rc = libssh2_channel_send_eof(p->ch);
		if (rc == LIBSSH2_ERROR_EAGAIN)
			return half_sent(p) ? 0 : 1;
		if (rc < 0)
			return rc;
		p->eof_sent = true;
		return 1;
	case STEP_RESIZE:
		p->what = "resize";
		if (!p->winch)
			return 1;
		console_tty_size(STDIN_FILENO, &cols, &rows);
		rc = libssh2_channel_request_pty_size(p->ch, cols, rows);
		if (rc == LIBSSH2_ERROR_EAGAIN)
			return half_sent(p) ? 0 : 1;
		/* A server that refuses a size is no reason to stop. */
		p->winch = false;
		return 1;
	default:
		return 1;
	}
}

/*
 * Runs the steps in order, starting with the one left half done; 0 when
 * all went as far as they could, else the failing step's error.
 */
static int run_steps(struct pump *p)
{
	static const enum step order[] = {STEP_READ_OUT, STEP_READ_ERR,
					  STEP_WRITE, STEP_EOF, STEP_RESIZE};
	size_t i;
	int rc;

	if (p->pending != STEP_NONE) {
		rc = run_step(p, p->pending);
		if (rc <= 0)
			return rc;
		p->pending = STEP_NONE;
	}
	for (i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		rc = run_step(p, order[i]);
		if (rc < 0)
			return rc;
		if (rc == 0) {
			p->pending = order[i];
			return 0;
		}
	}
	return 0;
}

/* Standard input, when poll() says so: false once "~." was typed. */
static bool read_input(struct pump *p)
{
	ssize_t n = read(STDIN_FILENO, p->raw, sizeof(p->raw));
	size_t m;

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return true;
	if (n <= 0) {
		p->in_eof = true;
		return true;
	}
	p->inoff = 0;
	if (!p->j->pty) {
		memcpy(p->in, p->raw, (size_t)n);
		p->inlen = (size_t)n;
		return true;
	}
	if (console_tty_escapes_filter(&p->esc, p->raw, (size_t)n, p->in, &m)) {
		p->inlen = 0;
		return false;
	}
	p->inlen = m;
	return true;
}

/* The session's bytes both ways until the remote side's EOF. */
static int pump(struct console_ssh *j, LIBSSH2_SESSION *s, LIBSSH2_CHANNEL *ch)
{
	static struct pump p;
	struct pollfd fds[3];
	char b[64];
	ssize_t n;
	int rc;

	memset(&p, 0, sizeof(p));
	p.j = j;
	p.s = s;
	p.ch = ch;
	p.esc.line_start = true;
	libssh2_session_set_blocking(s, 0);
	for (;;) {
		rc = run_steps(&p);
		if (rc < 0)
			goto lost;
		if (p.pending == STEP_NONE && libssh2_channel_eof(ch))
			break;
		fds[0].fd = j->fd;
		fds[0].events = POLLIN;
		if (half_sent(&p))
			fds[0].events |= POLLOUT;
		/* Input only once the last of it is out. */
		fds[1].fd = p.in_eof || p.inlen > 0 ? -1 : STDIN_FILENO;
		fds[1].events = POLLIN;
		fds[2].fd = winch_pipe[0];
		fds[2].events = POLLIN;
		fds[0].revents = fds[1].revents = fds[2].revents = 0;
		/* A timeout as a safety net for data libssh2 holds already. */
		if (poll(fds, 3, 1000) < 0 && errno != EINTR) {
			p.what = "poll";
			rc = 0;
			goto lost;
		}
		if (fds[2].revents & POLLIN) {
			n = read(winch_pipe[0], b, sizeof(b));
			(void)n;
			p.winch = j->pty;
		}
		if ((fds[1].revents & (POLLIN | POLLHUP | POLLERR)) &&
		    !read_input(&p)) {
			j->bye = true;
			return -1;
		}
	}
	/* What came with the EOF, then the status. */
	run_step(&p, STEP_READ_OUT);
	run_step(&p, STEP_READ_ERR);
	return 0;
lost:
	console_ssh_error(j, "connection to the SSH server lost: %s (%s: %d)",
			  console_ssh_last_error(s), p.what, rc);
	return -1;
}

static int open_session(struct console_ssh *j, LIBSSH2_SESSION *s,
			LIBSSH2_CHANNEL **chp)
{
	const char *term = getenv("TERM");
	LIBSSH2_CHANNEL *ch;
	uint16_t cols, rows;
	int rc;

	*chp = NULL;
	ch = libssh2_channel_open_session(s);
	if (ch == NULL) {
		console_ssh_error(j, "cannot open a session: %s",
				  console_ssh_last_error(s));
		return -1;
	}
	*chp = ch;
	if (j->pty) {
		if (term == NULL || term[0] == '\0')
			term = "xterm-256color";
		console_tty_size(STDIN_FILENO, &cols, &rows);
		if (libssh2_channel_request_pty_ex(
			ch, term, (unsigned int)strlen(term), NULL, 0, cols,
			rows, 0, 0) != 0) {
			console_ssh_error(j,
					  "the server refused a terminal: %s",
					  console_ssh_last_error(s));
			return -1;
		}
	}
	if (j->command != NULL)
		rc = libssh2_channel_exec(ch, j->command);
	else
		rc = libssh2_channel_shell(ch);
	if (rc != 0) {
		console_ssh_error(j, "the server refused to run %s: %s",
				  j->command != NULL ? "the command"
						     : "a shell",
				  console_ssh_last_error(s));
		return -1;
	}
	return 0;
}

/* The remote status once the channel is over. */
static void collect_status(struct console_ssh *j, LIBSSH2_SESSION *s,
			   LIBSSH2_CHANNEL *ch)
{
	char *sig = NULL;
	size_t siglen = 0;

	while (libssh2_channel_close(ch) == LIBSSH2_ERROR_EAGAIN)
		console_ssh_wait_socket(s, j->fd);
	while (libssh2_channel_wait_closed(ch) == LIBSSH2_ERROR_EAGAIN)
		console_ssh_wait_socket(s, j->fd);
	libssh2_channel_get_exit_signal(ch, &sig, &siglen, NULL, NULL, NULL,
					NULL);
	if (sig != NULL && siglen > 0)
		j->status = signal_status(sig);
	else
		j->status = libssh2_channel_get_exit_status(ch) & 0xff;
	libssh2_free(s, sig);
	j->ok = true;
}

/*
 * `tether ssh`'s part once authenticated: the session channel, the
 * terminal if any, the bytes both ways and the remote status.
 */
static void shell_body(struct console_ssh *j, LIBSSH2_SESSION *s, void *arg)
{
	LIBSSH2_CHANNEL *ch = NULL;
	bool raw = false;

	(void)arg;
	if (open_session(j, s, &ch) != 0)
		goto out;
	if (j->pty) {
		raw = console_tty_raw(STDIN_FILENO) == 0;
		if (!raw) {
			console_ssh_error(j, "cannot put the terminal in raw "
					     "mode");
			goto out;
		}
	}
	if (pump(j, s, ch) == 0)
		collect_status(j, s, ch);
out:
	if (raw)
		console_tty_restore();
	libssh2_session_set_blocking(s, 1);
	if (ch != NULL)
		libssh2_channel_free(ch);
}

/*
 * The ssh thread: greeting, host key and authentication on a blocking
 * session, then the command's body (which leaves the session blocking).
 */
static void *ssh_thread(void *arg)
{
	struct console_ssh *j = arg;
	LIBSSH2_SESSION *s;

	s = console_ssh_session_new(j);
	if (s == NULL) {
		console_ssh_error(j, "out of memory");
		goto out;
	}
	libssh2_session_set_blocking(s, 1);
	if (libssh2_session_handshake(s, j->fd) != 0) {
		console_ssh_error(j, "SSH handshake failed: %s",
				  console_ssh_last_error(s));
		goto out_free;
	}
	if (console_ssh_host_key(j, s) != 0 || console_ssh_auth(j, s) != 0)
		goto out_disconnect;
	j->body(j, s, j->body_arg);
out_disconnect:
	libssh2_session_set_blocking(s, 1);
	libssh2_session_disconnect(s, "bye");
out_free:
	libssh2_session_free(s);
out:
	/* The bridge sees the end of the stream: EOF(0) to the target. */
	close(j->fd);
	j->fd = -1;
	return NULL;
}

/*
 * The main thread: the bridge until the ssh thread is done, then a short
 * wind-down for the channel.
 */
struct ssh_main {
	struct console_forward *f;
	uv_async_t done_async;
	uv_timer_t timer;
	volatile bool thread_done; /* set by the ssh thread, then woken */
	bool timed_out;
	bool lost_first; /* the relay went away while the SSH side ran */
};

struct thread_arg {
	struct console_ssh *j;
	struct ssh_main *m;
};

static void *thread_main(void *arg)
{
	struct thread_arg *t = arg;

	ssh_thread(t->j);
	__atomic_store_n(&t->m->thread_done, true, __ATOMIC_SEQ_CST);
	uv_async_send(&t->m->done_async);
	return NULL;
}

static void on_done_async(uv_async_t *h)
{
	(void)h;
}

static void on_timer(uv_timer_t *h)
{
	struct ssh_main *m = h->data;

	m->timed_out = true;
}

static bool done(struct ssh_main *m)
{
	return __atomic_load_n(&m->thread_done, __ATOMIC_SEQ_CST);
}

/* Runs the bridge and the ssh thread; 0, or -1 once reported. */
static int run_bridge(struct ssh_main *m, struct console_ssh *j, int fd)
{
	struct thread_arg t = {.j = j, .m = m};
	uv_loop_t *loop = console_forward_loop(m->f);
	struct sigaction sa;
	pthread_t th;
	bool stopped = false;

	if (uv_async_init(loop, &m->done_async, on_done_async) != 0) {
		console_error("cannot start the event loop");
		close(fd);
		close(j->fd);
		return -1;
	}
	uv_timer_init(loop, &m->timer);
	m->timer.data = m;
	if (console_forward_add_fd(m->f, fd) != 0) {
		console_ssh_error(j, "cannot bridge the SSH connection");
		close(j->fd);
		goto out;
	}
	if (j->pty && pipe2(winch_pipe, O_CLOEXEC | O_NONBLOCK) == 0) {
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_winch;
		sa.sa_flags = SA_RESTART;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGWINCH, &sa, NULL);
	}
	if (pthread_create(&th, NULL, thread_main, &t) != 0) {
		console_ssh_error(j, "cannot start a thread");
		close(j->fd);
		goto out;
	}
	while (!done(m)) {
		console_forward_run_once(m->f);
		if (!stopped && console_forward_lost(m->f)) {
			/* The ssh thread sees its socket close. */
			m->lost_first = true;
			stopped = true;
			console_forward_stop(m->f);
		}
	}
	pthread_join(th, NULL);
	uv_timer_start(&m->timer, on_timer, WIND_DOWN_MS, 0);
	while (console_forward_count(m->f) > 0 && !console_forward_lost(m->f) &&
	       !m->timed_out)
		console_forward_run_once(m->f);
out:
	if (winch_pipe[0] >= 0) {
		signal(SIGWINCH, SIG_DFL);
		close(winch_pipe[0]);
		close(winch_pipe[1]);
		winch_pipe[0] = winch_pipe[1] = -1;
	}
	uv_timer_stop(&m->timer);
	uv_close((uv_handle_t *)&m->timer, NULL);
	uv_close((uv_handle_t *)&m->done_async, NULL);
	return 0;
}

int console_ssh_parse_dest(const char *cmd, const char *arg, char *user,
			   size_t userlen, char *host, size_t hostlen,
			   int *port)
{
	const char *at = strrchr(arg, '@'), *h = arg, *end, *colon = NULL;
	uint64_t v;

	if (at != NULL) {
		if (at == arg || (size_t)(at - arg) >= userlen)
			goto bad;
		memcpy(user, arg, (size_t)(at - arg));
		user[at - arg] = '\0';
		h = at + 1;
	}
	if (h[0] == '[') {
		end = strchr(h, ']');
		if (end == NULL || (end[1] != '\0' && end[1] != ':'))
			goto bad;
		colon = end[1] == ':' ? end + 1 : NULL;
		h++;
	} else {
		colon = strchr(h, ':');
		if (colon != NULL && strchr(colon + 1, ':') != NULL)
			goto bad;
		end = colon != NULL ? colon : h + strlen(h);
	}
	if ((size_t)(end - h) >= hostlen)
		goto bad;
	if (end > h) {
		memcpy(host, h, (size_t)(end - h));
		host[end - h] = '\0';
	}
	if (colon != NULL) {
		if (console_opts_number(colon + 1, 1, 65535, &v) != 0)
			goto bad;
		*port = (int)v;
	}
	return 0;
bad:
	return console_usage_error(cmd,
				   "bad destination %s (expected "
				   "[USER@][HOST][:PORT])",
				   arg);
}

/* COMMAND words joined with spaces, as ssh sends them. */
static char *join_command(int argc, char **argv)
{
	size_t len = 1, off = 0, n;
	char *s;
	int i;

	for (i = 0; i < argc; i++)
		len += strlen(argv[i]) + 1;
	s = tether_malloc(len);
	if (s == NULL)
		return NULL;
	for (i = 0; i < argc; i++) {
		n = strlen(argv[i]);
		if (i > 0)
			s[off++] = ' ';
		memcpy(s + off, argv[i], n);
		off += n;
	}
	s[off] = '\0';
	return s;
}

int console_ssh_local_user(struct console_ssh *j, char *user, size_t userlen)
{
	struct passwd *pw = getpwuid(getuid());
	const char *home = getenv("HOME");
	const char *name = pw != NULL ? pw->pw_name : getenv("USER");

	if (home == NULL || home[0] == '\0')
		home = pw != NULL ? pw->pw_dir : NULL;
	if (user[0] == '\0' && name != NULL)
		snprintf(user, userlen, "%s", name);
	if (user[0] == '\0' || home == NULL) {
		console_error("cannot tell who you are here (no user name or "
			      "home directory)");
		return -1;
	}
	snprintf(j->home, sizeof(j->home), "%s", home);
	snprintf(j->known_hosts, sizeof(j->known_hosts), "%s/.ssh/known_hosts",
		 home);
	j->user = user;
	return 0;
}

bool console_ssh_option(struct console_ssh *j, int opt, char *arg)
{
	switch (opt) {
	case 'i':
		j->identity = arg;
		return true;
	case CONSOLE_SSH_OPT_ACCEPT_NEW:
		j->accept_new = true;
		return true;
	case CONSOLE_SSH_OPT_HOST_KEY_ALIAS:
		j->host_key_alias = arg;
		return true;
	default:
		return false;
	}
}

static const struct option ssh_longs[] = {
    {"accept-new", no_argument, NULL, CONSOLE_SSH_OPT_ACCEPT_NEW},
    {"host-key-alias", required_argument, NULL, CONSOLE_SSH_OPT_HOST_KEY_ALIAS},
    {NULL, 0, NULL, 0},
};

static int ssh_option(void *arg, int opt, char *optarg)
{
	console_ssh_option(arg, opt, optarg);
	return -1;
}

static const struct console_opts ssh_opts = {
    .name = "ssh",
    .usage = ssh_usage,
    .shorts = "i:",
    .longs = ssh_longs,
    .flags = CONSOLE_OPTS_TICKET | CONSOLE_OPTS_REST,
    .min = 1,
    .max = 2,
    .need = "expected T-N [USER@][HOST][:PORT] [-- COMMAND...]",
    .option = ssh_option,
};

/* Options and operands; -1 to go on, else the exit status to return. */
static int parse_args(struct console_ssh *j, int argc, char **argv,
		      struct console_args *a, char *user, char *host)
{
	int ret;

	ret = console_opts_parse(&ssh_opts, argc, argv, j, a);
	if (ret >= 0)
		return ret;
	if (a->argc == 1) {
		ret = console_ssh_parse_dest("ssh", a->argv[0], user,
					     CONSOLE_NAME_MAX, host,
					     CONSOLE_HOST_MAX, &j->port);
		if (ret != 0)
			return ret;
	}
	if (a->has_rest && a->rest_argc == 0)
		return console_usage_error("ssh", "expected COMMAND after --");
	if (a->has_rest) {
		j->command = join_command(a->rest_argc, a->rest_argv);
		if (j->command == NULL) {
			console_error("out of memory");
			return CONSOLE_EXIT_FAIL;
		}
	}
	return -1;
}

/*
 * A known_hosts pattern must not hold blanks, commas or wildcards, and
 * the name is one word in the file.
 */
static bool alias_ok(const char *a)
{
	return a[0] != '\0' && strlen(a) < CONSOLE_HOST_MAX &&
	       strpbrk(a, " \t\r\n,*?!#[]") == NULL;
}

/*
 * The name the host key goes under in known_hosts.  Every customer's
 * sshd is "127.0.0.1" from where its agent stands, so OpenSSH's plain
 * name would make the second customer's key look like a changed one;
 * the default alias scopes it to the ticket (like OpenSSH's
 * HostKeyAlias), and --host-key-alias names a machine for good.
 */
static int known_name(struct console_ssh *j, const char *ticket)
{
	if (j->host_key_alias != NULL) {
		if (!alias_ok(j->host_key_alias)) {
			console_error("--host-key-alias: '%s' is not a "
				      "usable name (no blanks, commas, "
				      "brackets or wildcards)",
				      j->host_key_alias);
			return -1;
		}
		snprintf(j->known_name, sizeof(j->known_name), "%s",
			 j->host_key_alias);
	} else if (j->port == 22) {
		snprintf(j->known_name, sizeof(j->known_name), "tether.%s.%s",
			 ticket, j->host);
	} else {
		snprintf(j->known_name, sizeof(j->known_name),
			 "tether.%s.%s.%d", ticket, j->host, j->port);
	}
	return 0;
}

int console_ssh_run(struct console_ssh *j, int64_t ticket,
		    const char *ticket_name)
{
	struct ssh_main m;
	const char *failure;
	int sv[2], status = CONSOLE_EXIT_FAIL;

	if (known_name(j, ticket_name) != 0)
		return CONSOLE_EXIT_USAGE;

	if (libssh2_init(0) != 0) {
		console_error("cannot initialise libssh2");
		return status;
	}
	memset(&m, 0, sizeof(m));
	m.f = console_forward_new(ticket, ticket_name, j->host, j->port, true);
	if (m.f == NULL)
		goto out_exit;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
		console_error("cannot make a socket pair: %s", strerror(errno));
		goto out_fwd;
	}
	j->fd = sv[1];
	if (run_bridge(&m, j, sv[0]) != 0)
		goto out_fwd;
	failure = console_forward_failure(m.f);
	if (j->ok) {
		status = j->status;
	} else if (j->bye) {
		fprintf(stderr, "Connection to %s closed.\n", j->host);
	} else if (failure != NULL) {
		console_error_text("", failure);
	} else if (m.lost_first) {
		console_forward_report_lost(m.f);
	} else if (j->error[0] != '\0') {
		console_error_text("", j->error);
	} else {
		console_error("the SSH session ended without a status");
	}
out_fwd:
	console_forward_free(m.f);
out_exit:
	libssh2_exit();
	return status;
}

int console_ssh(int argc, char **argv)
{
	char user[CONSOLE_NAME_MAX] = "";
	char host[CONSOLE_HOST_MAX] = TETHER_FORWARD_HOST;
	struct console_args a;
	struct console_ssh j;
	int status;

	memset(&j, 0, sizeof(j));
	j.port = TETHER_FORWARD_PORT;
	j.fd = -1;
	status = parse_args(&j, argc, argv, &a, user, host);
	if (status >= 0)
		goto out_free;
	status = CONSOLE_EXIT_FAIL;
	if (console_ssh_local_user(&j, user, sizeof(user)) != 0)
		goto out_free;
	j.host = host;
	j.pty = j.command == NULL && isatty(STDIN_FILENO) == 1;
	j.body = shell_body;
	status = console_ssh_run(&j, a.ticket, a.ticket_name);
out_free:
	tether_free(j.command);
	return status;
}
