/*
 * How the diagnostics collectors read the machine (docs/diagnostics.md):
 * files that may be missing or forbidden, tools run without a shell under
 * a hard time limit, and the JSON values made of what was read (strings
 * made valid, errors in words, times).  Nothing here fails a collection:
 * what cannot be read becomes {"error": why}.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <tether/alloc.h>
#include <tether/err.h>

#include "diag/input.h"
#include "diag/text.h"

/* When tools must be done by; 0 outside a collection. */
static uint64_t deadline_ms;

void agent_diag_set_deadline(uint64_t ms)
{
	deadline_ms = ms;
}

uint64_t agent_diag_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

const char *agent_diag_path(const char *path, char *buf, size_t len)
{
#ifdef TETHER_TEST_HOOKS
	static const char *const tops[] = {"/etc/", "/proc/", "/sys/", "/run/",
					   "/var/"};
	const char *root = getenv("TETHER_TEST_DIAG_ROOT");
	size_t i;
	int n;

	if (root == NULL || root[0] == '\0')
		return path;
	for (i = 0; i < sizeof(tops) / sizeof(tops[0]); i++) {
		if (strncmp(path, tops[i], strlen(tops[i])) != 0)
			continue;
		n = snprintf(buf, len, "%s%s", root, path);
		return n > 0 && (size_t)n < len ? buf : "/nonexistent";
	}
#else
	(void)buf;
	(void)len;
#endif
	return path;
}

int agent_diag_read(const char *path, size_t max, char **out, size_t *len)
{
	char pbuf[PATH_MAX];
	size_t n = 0, cap = 4096;
	char *buf, *nb;
	ssize_t r;
	int fd, err = 0;

	*out = NULL;
	if (len != NULL)
		*len = 0;
	fd = open(agent_diag_path(path, pbuf, sizeof(pbuf)),
		  O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (cap > max)
		cap = max;
	buf = tether_malloc(cap + 1);
	if (buf == NULL) {
		close(fd);
		return -ENOMEM;
	}
	/* /proc files say they are empty: read until the end, or max. */
	while (n < max) {
		if (n == cap) {
			cap = cap * 2 > max ? max : cap * 2;
			nb = tether_reallocarray(buf, cap + 1, 1);
			if (nb == NULL) {
				err = ENOMEM;
				break;
			}
			buf = nb;
		}
		r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			err = errno;
			break;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	if (err != 0) {
		tether_free(buf);
		return -err;
	}
	buf[n] = '\0';
	*out = buf;
	if (len != NULL)
		*len = n;
	return 0;
}

json_t *agent_diag_error(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return json_pack("{s:o}", "error", agent_diag_str(msg, sizeof(msg)));
}

json_t *agent_diag_errno(int err, const char *path)
{
	char why[128];

	if (err == EACCES || err == EPERM)
		return agent_diag_error("permission denied: %s", path);
	if (err == ENOENT)
		return agent_diag_error("not found: %s", path);
	snprintf(why, sizeof(why), "%s", strerror(err));
	/* "is a directory: PATH" reads better in a sentence. */
	if (why[0] >= 'A' && why[0] <= 'Z')
		why[0] = (char)(why[0] - 'A' + 'a');
	return agent_diag_error("%s: %s", why, path);
}

json_t *agent_diag_str(const char *s, size_t max)
{
	size_t n = strnlen(s, max);
	json_t *j;
	char *buf;

	buf = tether_malloc(n + 1);
	if (buf == NULL)
		return NULL;
	n = agent_text_clean_n(s, n, AGENT_TEXT_TABS, buf, n + 1);
	j = json_stringn(buf, n);
	tether_free(buf);
	return j;
}

size_t agent_diag_fields(char *line, char **f, size_t max)
{
	size_t n = 0;
	char *p = line;

	while (n < max) {
		while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
			p++;
		if (*p == '\0')
			break;
		f[n++] = p;
		while (*p != '\0' && *p != ' ' && *p != '\t' && *p != '\n' &&
		       *p != '\r')
			p++;
		if (*p == '\0')
			break;
		*p++ = '\0';
	}
	return n;
}

/*
 * The tool's environment: ours without colours, pagers or translations
 * (built before fork, since the child may only make async-signal-safe
 * calls).  NULL without memory.
 */
static char **tool_env(void)
{
	static char *const set[] = {"LC_ALL=C", "SYSTEMD_COLORS=0",
				    "SYSTEMD_PAGER=", "PAGER=cat"};
	extern char **environ;
	size_t n = 0, i, j, o = 0, kl;
	char **env;
	bool skip;

	while (environ[n] != NULL)
		n++;
	env = tether_calloc(n + sizeof(set) / sizeof(set[0]) + 1, sizeof(*env));
	if (env == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		skip = false;
		for (j = 0; j < sizeof(set) / sizeof(set[0]); j++) {
			kl = (size_t)(strchr(set[j], '=') - set[j]) + 1;
			if (strncmp(environ[i], set[j], kl) == 0)
				skip = true;
		}
		if (!skip)
			env[o++] = environ[i];
	}
	for (j = 0; j < sizeof(set) / sizeof(set[0]); j++)
		env[o++] = set[j];
	return env;
}

/* In the child: stdin and stderr on /dev/null, stdout on the pipe. */
static void child_exec(char *const argv[], char **env, int out_fd, int err_fd)
{
	int null, e;

	setpgid(0, 0);
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0 || dup2(null, 0) < 0 || dup2(out_fd, 1) < 0 ||
	    dup2(null, 2) < 0) {
		e = errno;
		(void)!write(err_fd, &e, sizeof(e));
		_exit(127);
	}
	execvpe(argv[0], argv, env);
	e = errno;
	(void)!write(err_fd, &e, sizeof(e));
	_exit(127);
}

/* Waits for pid until the time is up, then kills its process group. */
static int reap(pid_t pid, uint64_t until, int *status)
{
	int st;
	pid_t r;

	for (;;) {
		r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR)
			return TETHER_ERR_SYS;
		if (agent_diag_now_ms() >= until) {
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
				;
			return TETHER_ERR_EXPIRED;
		}
		usleep(10000);
	}
	if (WIFEXITED(st))
		*status = WEXITSTATUS(st);
	else
		*status = 128 + WTERMSIG(st);
	return 0;
}

/* Reads the child's stdout into buf (at most max) until EOF or until. */
static int drain(int fd, char *buf, size_t max, size_t *len, uint64_t until)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	char sink[4096];
	uint64_t now;
	ssize_t r;
	int pr;

	for (;;) {
		now = agent_diag_now_ms();
		if (now >= until)
			return TETHER_ERR_EXPIRED;
		pr = poll(&pfd, 1, (int)(until - now));
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr < 0)
			return TETHER_ERR_SYS;
		if (pr == 0)
			return TETHER_ERR_EXPIRED;
		/* Past the cap the output is read and dropped. */
		if (*len < max)
			r = read(fd, buf + *len, max - *len);
		else
			r = read(fd, sink, sizeof(sink));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return 0;
		if (*len < max)
			*len += (size_t)r;
	}
}

int agent_diag_run(char *const argv[], int timeout_ms, size_t max, char **out,
		   int *status)
{
	uint64_t now = agent_diag_now_ms(), until = now + (uint64_t)timeout_ms;
	int outp[2], errp[2], e, r;
	size_t len = 0;
	char *buf, **env;
	pid_t pid;
	ssize_t n;

	*out = NULL;
	*status = -1;
	if (deadline_ms != 0 && until > deadline_ms)
		until = deadline_ms;
	if (until <= now)
		return TETHER_ERR_EXPIRED;
	buf = tether_malloc(max + 1);
	env = tool_env();
	if (buf == NULL || env == NULL) {
		tether_free(buf);
		tether_free(env);
		return TETHER_ERR_NOMEM;
	}
	if (pipe2(outp, O_CLOEXEC) != 0) {
		tether_free(buf);
		tether_free(env);
		return TETHER_ERR_SYS;
	}
	if (pipe2(errp, O_CLOEXEC) != 0) {
		close(outp[0]);
		close(outp[1]);
		tether_free(buf);
		tether_free(env);
		return TETHER_ERR_SYS;
	}
	pid = fork();
	if (pid == 0)
		child_exec(argv, env, outp[1], errp[1]);
	tether_free(env);
	close(outp[1]);
	close(errp[1]);
	r = TETHER_ERR_SYS;
	if (pid < 0)
		goto out;
	/* The error pipe closes on exec: a word on it says exec failed. */
	do
		n = read(errp[0], &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t)sizeof(e)) {
		reap(pid, until, status);
		r = TETHER_ERR_NOT_FOUND;
		goto out;
	}
	r = drain(outp[0], buf, max, &len, until);
	if (r == TETHER_ERR_EXPIRED)
		until = 0;
	e = reap(pid, until, status);
	if (r == 0)
		r = e;
out:
	close(outp[0]);
	close(errp[0]);
	if (r != 0) {
		tether_free(buf);
		return r;
	}
	buf[len] = '\0';
	*out = buf;
	return 0;
}

void agent_diag_iso_time(time_t t, char *out, size_t outlen)
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, outlen, "1970-01-01T00:00:00Z");
}
