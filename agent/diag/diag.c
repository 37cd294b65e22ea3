/*
 * tether-agent diag: the diagnostics bundle (docs/diagnostics.md).  This
 * file runs the collection (one sample of activity, then every section),
 * turns what it found into problems, prints or writes the result, and
 * holds the helpers every collector shares: reading a file that may be
 * missing or forbidden, and running a tool with a hard timeout.  The
 * collectors live in agent-diag-sys.c, agent-diag-net.c and
 * agent-diag-proc.c.  Nothing here may fail the collection: what cannot
 * be read becomes {"error": why}.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <tether/alloc.h>
#include <tether/diagview.h>
#include <tether/err.h>

#include "agent.h"

#define EXIT_USAGE 2
/* Tools are cut short so that the whole collection stays under 5 s. */
#define BUDGET_MS 4000
#define BUNDLE_VERSION 1
/* Percentages that make a problem. */
#define DISK_WARN 90
#define DISK_CRIT 95
#define MEM_WARN 10
#define MEM_CRIT 5
/* Failed units named in the problem line. */
#define UNITS_NAMED 3

static const char usage_text[] =
    "usage: " AGENT_PROG " diag [--json] [-o FILE]\n";

static const char help_text[] =
    "\n"
    "Collects a diagnostics report about this computer (system, disks,\n"
    "memory, network, listening ports, busiest processes, failed\n"
    "services, recent errors) and prints a summary, problems first.\n"
    "Passwords, tokens and keys in command lines and logs are replaced\n"
    "by [REDACTED].\n"
    "\n"
    "  --json      print the report as one line of JSON instead\n"
    "  -o FILE     also write the JSON report to FILE (mode 0600)\n";

/* When tools must be done by; 0 outside a collection. */
static uint64_t deadline_ms;

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

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned cp, min;
	size_t k, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		k = 2, cp = s[0] & 0x1f, min = 0x80;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		k = 3, cp = s[0] & 0x0f, min = 0x800;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		k = 4, cp = s[0] & 0x07, min = 0x10000;
	else
		return 0;
	if (k > n)
		return 0;
	for (i = 1; i < k; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return k;
}

json_t *agent_diag_str(const char *s, size_t max)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t n = strlen(s), i = 0, o = 0, k;
	json_t *j;
	char *buf;

	if (n > max)
		n = max;
	buf = tether_malloc(n + 1);
	if (buf == NULL)
		return NULL;
	while (i < n) {
		k = utf8_len(u + i, n - i);
		if (k == 0) {
			buf[o++] = '?';
			i++;
		} else if (k == 1 && (u[i] < 0x20 || u[i] == 0x7f)) {
			buf[o++] = u[i] == '\t' ? ' ' : '?';
			i++;
		} else {
			memcpy(buf + o, u + i, k);
			o += k;
			i += k;
		}
	}
	j = json_stringn(buf, o);
	tether_free(buf);
	return j;
}

bool agent_diag_u64(const char **p, uint64_t *v)
{
	const char *s = *p;
	uint64_t x = 0;

	while (*s == ' ' || *s == '\t')
		s++;
	if (*s < '0' || *s > '9')
		return false;
	while (*s >= '0' && *s <= '9') {
		if (x > (UINT64_MAX - 9) / 10)
			return false;
		x = x * 10 + (uint64_t)(*s - '0');
		s++;
	}
	*v = x;
	*p = s;
	return true;
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

/* Adds a section, or an error in its place when there was no memory. */
static void set_section(json_t *sections, const char *name, json_t *v)
{
	if (v == NULL)
		v = json_pack("{s:s}", "error", "out of memory");
	json_object_set_new(sections, name, v);
}

static void problem(json_t *list, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void problem(json_t *list, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	/* find_problems() sets the severity from the list it is in. */
	json_array_append_new(
	    list, json_pack("{s:s,s:s}", "severity", "", "what", what));
}

static json_int_t int_of(const json_t *o, const char *key, json_int_t dflt)
{
	json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? json_integer_value(v) : dflt;
}

static void disk_problems(const json_t *disks, json_t *crit, json_t *warn)
{
	const json_t *fs;
	const char *mnt;
	json_int_t use, inodes;
	size_t i;

	json_array_foreach(json_object_get(disks, "filesystems"), i, fs)
	{
		mnt = json_string_value(json_object_get(fs, "mountpoint"));
		use = int_of(fs, "use_pct", -1);
		inodes = int_of(fs, "inodes_use_pct", -1);
		if (mnt == NULL)
			continue;
		if (use >= DISK_WARN)
			problem(use >= DISK_CRIT ? crit : warn,
				"%s is %d%% full", mnt, (int)use);
		if (inodes >= DISK_WARN)
			problem(inodes >= DISK_CRIT ? crit : warn,
				"%s has used %d%% of its inodes", mnt,
				(int)inodes);
	}
}

static void memory_problems(const json_t *mem, const json_t *cpu, json_t *crit,
			    json_t *warn)
{
	json_int_t total = int_of(mem, "total", 0);
	json_int_t avail = int_of(mem, "available", 0);
	json_int_t swap = int_of(mem, "swap_total", 0);
	json_int_t sused = int_of(mem, "swap_used", 0);
	json_int_t sin = int_of(mem, "swap_in_pages", 0);
	json_int_t cpus = int_of(cpu, "count", 0);
	json_t *load = json_object_get(cpu, "load");
	double l1;

	if (total > 0 && avail * 100 < total * MEM_WARN)
		problem(avail * 100 < total * MEM_CRIT ? crit : warn,
			"only %d%% of memory is available",
			(int)(avail * 100 / total));
	if (swap > 0 && sused * 2 > swap && sin > 0)
		problem(crit,
			"swap storm: %d%% of swap in use and %lld pages "
			"swapped in during the sample",
			(int)(sused * 100 / swap), (long long)sin);
	if (cpus <= 0 || !json_is_number(json_array_get(load, 0)))
		return;
	l1 = json_number_value(json_array_get(load, 0));
	if (l1 > 2.0 * (double)cpus)
		problem(l1 > 4.0 * (double)cpus ? crit : warn,
			"load %.1f is over %d times the %d CPUs", l1,
			l1 > 4.0 * (double)cpus ? 4 : 2, (int)cpus);
}

static void systemd_problems(const json_t *sd, json_t *warn)
{
	json_t *failed = json_object_get(sd, "failed");
	char names[256] = "";
	size_t i, n = json_array_size(failed), pos = 0;
	const char *u;
	int w;

	if (n == 0)
		return;
	for (i = 0; i < n && i < UNITS_NAMED; i++) {
		u = json_string_value(
		    json_object_get(json_array_get(failed, i), "unit"));
		w = snprintf(names + pos, sizeof(names) - pos, "%s%s",
			     i > 0 ? ", " : "", u != NULL ? u : "?");
		if (w < 0 || (size_t)w >= sizeof(names) - pos)
			break;
		pos += (size_t)w;
	}
	problem(warn, "%zu systemd unit%s failed: %s%s", n, n == 1 ? "" : "s",
		names, n > UNITS_NAMED ? ", ..." : "");
}

/* Problems from the sections: critical ones first. */
static json_t *find_problems(const json_t *sections)
{
	json_t *crit = json_array(), *warn = json_array(), *all = json_array();
	const json_t *p;
	json_t *t;
	size_t i;

	if (crit == NULL || warn == NULL || all == NULL)
		goto out;
	disk_problems(json_object_get(sections, "disks"), crit, warn);
	memory_problems(json_object_get(sections, "memory"),
			json_object_get(sections, "cpu"), crit, warn);
	systemd_problems(json_object_get(sections, "systemd"), warn);
	t = json_object_get(json_object_get(sections, "time"), "synchronised");
	if (json_is_false(t))
		problem(warn, "the clock is not synchronised");
	json_array_foreach(crit, i, p)
	{
		json_object_set_new((json_t *)p, "severity",
				    json_string("critical"));
		json_array_append((json_t *)all, (json_t *)p);
	}
	json_array_foreach(warn, i, p)
	{
		json_object_set_new((json_t *)p, "severity",
				    json_string("warning"));
		json_array_append((json_t *)all, (json_t *)p);
	}
out:
	json_decref(crit);
	json_decref(warn);
	return all;
}

void agent_diag_iso_time(time_t t, char *out, size_t outlen)
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, outlen, "1970-01-01T00:00:00Z");
}

json_t *agent_diag_collect(void)
{
	struct agent_diag_snap a, b;
	json_t *bundle = NULL, *sections;
	char when[32];
	uint64_t t0, waited;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	t0 = agent_diag_now_ms();
	deadline_ms = t0 + BUDGET_MS;
	agent_diag_iso_time(time(NULL), when, sizeof(when));
	sections = json_object();
	if (sections == NULL)
		goto out;
	agent_diag_snap_sys(&a);
	agent_diag_snap_procs(&a);
	/* The sample runs while the sections that need none are read. */
	set_section(sections, "os", agent_diag_os());
	set_section(sections, "uptime", agent_diag_uptime());
	/* Placeholders keep the documented order of the sections. */
	json_object_set_new(sections, "cpu", json_null());
	json_object_set_new(sections, "memory", json_null());
	set_section(sections, "disks", agent_diag_disks());
	set_section(sections, "mounts", agent_diag_mounts());
	set_section(sections, "network", agent_diag_network());
	set_section(sections, "routes", agent_diag_routes());
	set_section(sections, "dns", agent_diag_dns());
	set_section(sections, "listening", agent_diag_listening());
	json_object_set_new(sections, "processes", json_null());
	set_section(sections, "systemd", agent_diag_systemd());
	set_section(sections, "logs", agent_diag_logs());
	set_section(sections, "packages", agent_diag_packages());
	set_section(sections, "time", agent_diag_time());
	waited = agent_diag_now_ms() - a.ms;
	if (waited < AGENT_DIAG_SAMPLE_MS)
		usleep((useconds_t)(AGENT_DIAG_SAMPLE_MS - waited) * 1000);
	agent_diag_snap_sys(&b);
	agent_diag_snap_procs(&b);
	set_section(sections, "cpu", agent_diag_cpu(&a, &b));
	set_section(sections, "memory", agent_diag_memory(&a, &b));
	set_section(sections, "processes", agent_diag_processes(&a, &b));
	bundle = json_pack("{s:i,s:s,s:I,s:o,s:O}", "version", BUNDLE_VERSION,
			   "collected_at", when, "duration_ms",
			   (json_int_t)(agent_diag_now_ms() - t0), "problems",
			   find_problems(sections), "sections", sections);
out:
	deadline_ms = 0;
	agent_diag_snap_free(&a);
	agent_diag_snap_free(&b);
	json_decref(sections);
	return bundle;
}

/* The JSON text to FILE, created 0600 (an existing file is made so). */
static int write_file(const char *path, const char *text)
{
	size_t len = strlen(text), off = 0;
	ssize_t n;
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY,
		  0600);
	if (fd < 0)
		return -errno;
	if (fchmod(fd, 0600) != 0) {
		n = -errno;
		close(fd);
		return (int)n;
	}
	while (off < len) {
		n = write(fd, text + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			n = -errno;
			close(fd);
			return (int)n;
		}
		off += (size_t)n;
	}
	if (close(fd) != 0)
		return -errno;
	return 0;
}

static int usage(const char *msg, const char *arg)
{
	if (msg != NULL)
		fprintf(stderr, AGENT_PROG " diag: %s%s%s\n", msg,
			arg != NULL ? ": " : "", arg != NULL ? arg : "");
	fputs(usage_text, stderr);
	return EXIT_USAGE;
}

int agent_diag_main(int argc, char **argv)
{
	const char *file = NULL;
	bool as_json = false;
	json_t *bundle;
	char *text;
	int i, r;

	/* argv[1] is "diag". */
	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			as_json = true;
		} else if (strcmp(argv[i], "-o") == 0 ||
			   strcmp(argv[i], "--output") == 0) {
			if (i + 1 >= argc)
				return usage("option needs a value", argv[i]);
			file = argv[++i];
		} else if (strncmp(argv[i], "--output=", 9) == 0) {
			file = argv[i] + 9;
		} else if (strcmp(argv[i], "--help") == 0 ||
			   strcmp(argv[i], "-h") == 0) {
			fputs(usage_text, stdout);
			fputs(help_text, stdout);
			return 0;
		} else {
			return usage("unknown option", argv[i]);
		}
	}
	bundle = agent_diag_collect();
	text = bundle != NULL
		   ? json_dumps(bundle, JSON_COMPACT | JSON_REAL_PRECISION(10))
		   : NULL;
	if (text == NULL) {
		fprintf(stderr, AGENT_PROG " diag: out of memory\n");
		json_decref(bundle);
		return 1;
	}
	r = 0;
	if (file != NULL && (i = write_file(file, text)) != 0) {
		fprintf(stderr, AGENT_PROG " diag: cannot write %s: %s\n", file,
			strerror(-i));
		r = 1;
	}
	if (as_json)
		printf("%s\n", text);
	else
		tether_diagview_print(stdout, bundle,
				      &(struct tether_diagview_opts){
					  .color = isatty(STDOUT_FILENO) &&
						   getenv("NO_COLOR") == NULL});
	if (fflush(stdout) != 0 || ferror(stdout))
		r = 1;
	free(text);
	json_decref(bundle);
	return r;
}
