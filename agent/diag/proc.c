/*
 * Diagnostics collectors for what runs: the busiest processes (CPU over
 * the sample, resident memory), failed systemd units and recent error
 * logs (docs/diagnostics.md).  systemctl and journalctl are the only way
 * to ask systemd and the journal, so they run under agent_diag_run()'s
 * timeout; everything else is /proc.  Command lines and log lines are
 * redacted before they go into the bundle.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <tether/alloc.h>
#include <tether/err.h>
#include <tether/num.h>

#include "diag/input.h"
#include "diag/proc.h"
#include "diag/redact.h"

#define TOP_N 10
#define CMDLINE_READ 4096
#define CMDLINE_MAX 512
#define LOG_LINES 50
#define LOG_LINE_MAX 512
#define LOG_TAIL (256u * 1024)
#define UNITS_MAX 50
#define SYSTEMCTL_TIMEOUT_MS 2000
#define JOURNALCTL_TIMEOUT_MS 2000

/*
 * /proc/PID/stat: the command name (between the first '(' and the last
 * ')', since the name may hold either) and the fields after it, split in
 * place; how many fields, 0 if malformed.
 */
static size_t parse_stat(char *text, char **comm, char **f, size_t max)
{
	char *open = strchr(text, '('), *close = strrchr(text, ')');

	if (open == NULL || close == NULL || close < open)
		return 0;
	*close = '\0';
	*comm = open + 1;
	return agent_diag_fields(close + 1, f, max);
}

/* utime + stime (fields 14 and 15) and rss (24) of /proc/PID/stat. */
static bool read_stat(const char *pid, char *comm, size_t commlen,
		      uint64_t *ticks, uint64_t *rss)
{
	char path[64], *text = NULL, *name, *f[22];
	uint64_t ut, st;
	const char *p;
	bool ok = false;

	snprintf(path, sizeof(path), "/proc/%s/stat", pid);
	if (agent_diag_read(path, 4096, &text, NULL) != 0)
		return false;
	/* f[0] is field 3 (state). */
	if (parse_stat(text, &name, f, 22) == 22) {
		p = f[11];
		ok = tether_num_scan_u64(&p, &ut) == 0;
		p = f[12];
		ok = ok && tether_num_scan_u64(&p, &st) == 0;
		p = f[21];
		ok = ok && tether_num_scan_u64(&p, rss) == 0;
		*ticks = ut + st;
		if (comm != NULL)
			snprintf(comm, commlen, "%s", name);
	}
	tether_free(text);
	return ok;
}

static int cmp_pid(const void *a, const void *b)
{
	const struct agent_diag_pticks *x = a, *y = b;

	return (x->pid > y->pid) - (x->pid < y->pid);
}

/* A /proc entry named for a process: its pid in *pid. */
static bool is_pid(const char *s, int *pid)
{
	uint64_t v;

	if (tether_num_parse_u64(s, 1, INT32_MAX, &v) != 0)
		return false;
	*pid = (int)v;
	return true;
}

void agent_diag_snap_procs(struct agent_diag_snap *s)
{
	struct agent_diag_pticks *p = NULL, *np;
	size_t n = 0, cap = 0;
	char pbuf[PATH_MAX];
	struct dirent *de;
	uint64_t ticks, rss;
	int pid;
	DIR *d;

	s->procs = NULL;
	s->nprocs = 0;
	d = opendir(agent_diag_path("/proc", pbuf, sizeof(pbuf)));
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (!is_pid(de->d_name, &pid) ||
		    !read_stat(de->d_name, NULL, 0, &ticks, &rss))
			continue;
		if (n == cap) {
			cap = cap == 0 ? 256 : cap * 2;
			np = tether_reallocarray(p, cap, sizeof(*p));
			if (np == NULL)
				break;
			p = np;
		}
		p[n].pid = pid;
		p[n].ticks = ticks;
		p[n].rss = rss;
		n++;
	}
	closedir(d);
	if (p != NULL)
		qsort(p, n, sizeof(*p), cmp_pid);
	s->procs = p;
	s->nprocs = n;
}

void agent_diag_snap_free(struct agent_diag_snap *s)
{
	tether_free(s->procs);
	s->procs = NULL;
	s->nprocs = 0;
}

/* User names, looked up once per uid. */
static json_t *user_name(uid_t uid)
{
	static struct {
		uid_t uid;
		char name[64];
	} cache[32];
	static size_t ncache;
	char buf[1024], name[64];
	struct passwd pw, *res = NULL;
	size_t i;

	for (i = 0; i < ncache; i++)
		if (cache[i].uid == uid)
			return agent_diag_str(cache[i].name, 64);
	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) != 0 || res == NULL)
		snprintf(name, sizeof(name), "%u", (unsigned)uid);
	else
		snprintf(name, sizeof(name), "%.63s", pw.pw_name);
	if (ncache < sizeof(cache) / sizeof(cache[0])) {
		cache[ncache].uid = uid;
		memcpy(cache[ncache].name, name, sizeof(name));
		ncache++;
	}
	return agent_diag_str(name, sizeof(name));
}

/* The command line, arguments joined by spaces and redacted; or null. */
static json_t *cmdline_of(const char *pid)
{
	char path[64], *text = NULL, *red;
	size_t len, i;
	json_t *s;

	snprintf(path, sizeof(path), "/proc/%s/cmdline", pid);
	if (agent_diag_read(path, CMDLINE_READ, &text, &len) != 0)
		return json_null();
	while (len > 0 && text[len - 1] == '\0')
		len--;
	if (len == 0) {
		tether_free(text); /* a kernel thread */
		return json_null();
	}
	for (i = 0; i < len; i++)
		if (text[i] == '\0')
			text[i] = ' ';
	text[len] = '\0';
	/* Redacted whole, then cut: a cut could hide a key from its value. */
	red = agent_redact(text);
	tether_free(text);
	if (red == NULL)
		return NULL;
	s = agent_diag_str(red, CMDLINE_MAX);
	tether_free(red);
	return s;
}

json_t *agent_diag_process(int pid)
{
	char id[16], path[64], pbuf[PATH_MAX], comm[64];
	uint64_t ticks, rss;
	struct stat st;
	long page = sysconf(_SC_PAGESIZE);

	snprintf(id, sizeof(id), "%d", pid);
	snprintf(path, sizeof(path), "/proc/%d", pid);
	if (stat(agent_diag_path(path, pbuf, sizeof(pbuf)), &st) != 0 ||
	    !read_stat(id, comm, sizeof(comm), &ticks, &rss))
		return NULL;
	return json_pack(
	    "{s:i,s:o,s:o,s:o,s:I}", "pid", pid, "user", user_name(st.st_uid),
	    "name", agent_diag_str(comm, 64), "cmdline", cmdline_of(id), "rss",
	    (json_int_t)(rss * (uint64_t)(page > 0 ? page : 4096)));
}

/* A process with its CPU share over the sample. */
struct busy {
	int pid;
	double cpu;
	uint64_t rss;
};

static int cmp_cpu(const void *a, const void *b)
{
	const struct busy *x = a, *y = b;

	return (x->cpu < y->cpu) - (x->cpu > y->cpu);
}

static int cmp_rss(const void *a, const void *b)
{
	const struct busy *x = a, *y = b;

	return (x->rss < y->rss) - (x->rss > y->rss);
}

static json_t *top_list(const struct busy *v, size_t n, bool by_cpu)
{
	json_t *list = json_array(), *e;
	size_t i;

	for (i = 0; list != NULL && i < n && json_array_size(list) < TOP_N;
	     i++) {
		if (by_cpu && v[i].cpu <= 0.0)
			break;
		e = agent_diag_process(v[i].pid);
		if (e == NULL)
			continue; /* gone since the sample */
		json_object_set_new(
		    e, "cpu_pct",
		    json_real((double)(long long)(v[i].cpu * 10 + 0.5) / 10));
		json_array_append_new(list, e);
	}
	return list;
}

json_t *agent_diag_processes(const struct agent_diag_snap *a,
			     const struct agent_diag_snap *b)
{
	const struct agent_diag_pticks *old;
	double secs = (double)(b->ms - a->ms) / 1000.0;
	long hz = sysconf(_SC_CLK_TCK);
	struct busy *v;
	json_t *o, *cpu, *rss;
	uint64_t d;
	size_t i;

	if (b->procs == NULL)
		return agent_diag_error("cannot list /proc");
	if (hz <= 0)
		hz = 100;
	if (secs <= 0)
		secs = 1;
	v = tether_calloc(b->nprocs + 1, sizeof(*v));
	if (v == NULL)
		return NULL;
	for (i = 0; i < b->nprocs; i++) {
		old = bsearch(&b->procs[i], a->procs, a->nprocs,
			      sizeof(*a->procs), cmp_pid);
		/* A process born during the sample used all it has. */
		d = old == NULL ? b->procs[i].ticks
		    : b->procs[i].ticks >= old->ticks
			? b->procs[i].ticks - old->ticks
			: 0;
		v[i].pid = b->procs[i].pid;
		v[i].cpu = 100.0 * (double)d / (double)hz / secs;
		v[i].rss = b->procs[i].rss;
	}
	qsort(v, b->nprocs, sizeof(*v), cmp_cpu);
	cpu = top_list(v, b->nprocs, true);
	qsort(v, b->nprocs, sizeof(*v), cmp_rss);
	rss = top_list(v, b->nprocs, false);
	tether_free(v);
	o = json_pack("{s:I,s:I,s:o,s:o}", "count", (json_int_t)b->nprocs,
		      "sample_ms", (json_int_t)(b->ms - a->ms), "top_cpu", cpu,
		      "top_rss", rss);
	return o;
}

static bool exists(const char *path)
{
	char pbuf[PATH_MAX];

	return access(agent_diag_path(path, pbuf, sizeof(pbuf)), F_OK) == 0;
}

/* Runs a tool; its output, or an error object in *err. */
static char *run_tool(char *const argv[], int timeout_ms, size_t max,
		      json_t **err)
{
	char *out = NULL;
	int status, r;

	*err = NULL;
	r = agent_diag_run(argv, timeout_ms, max, &out, &status);
	if (r == TETHER_ERR_EXPIRED)
		*err = agent_diag_error("%s timed out", argv[0]);
	else if (r == TETHER_ERR_NOT_FOUND)
		*err = agent_diag_error("%s not found", argv[0]);
	else if (r != 0)
		*err = agent_diag_error("cannot run %s: %s", argv[0],
					tether_strerror(r));
	else if (status != 0 && out[0] == '\0')
		*err = agent_diag_error("%s exited with status %d", argv[0],
					status);
	if (*err != NULL) {
		tether_free(out);
		return NULL;
	}
	return out;
}

json_t *agent_diag_systemd(void)
{
	char *argv[] = {"systemctl", "--failed",   "--no-legend",
			"--plain",   "--no-pager", NULL};
	char *out, *line, *next, *end, *f[5];
	json_t *list, *err;
	size_t n;

	if (!exists("/run/systemd/system"))
		return agent_diag_error("systemd is not running");
	out = run_tool(argv, SYSTEMCTL_TIMEOUT_MS, 64 * 1024, &err);
	if (out == NULL)
		return err;
	list = json_array();
	for (line = out; list != NULL && line != NULL && *line != '\0';
	     line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		/* Older systemctl marks failed units with a bullet anyway. */
		while (*line == ' ' || (unsigned char)*line >= 0x80 ||
		       *line == '*')
			line++;
		end = line + strlen(line);
		n = agent_diag_fields(line, f, 4);
		if (n < 4 || json_array_size(list) >= UNITS_MAX)
			continue;
		/* The description is the rest of the line. */
		f[4] = f[3] + strlen(f[3]);
		if (f[4] < end)
			f[4]++;
		while (*f[4] == ' ')
			f[4]++;
		json_array_append_new(
		    list, json_pack("{s:o,s:o,s:o,s:o,s:o}", "unit",
				    agent_diag_str(f[0], 256), "load",
				    agent_diag_str(f[1], 32), "active",
				    agent_diag_str(f[2], 32), "sub",
				    agent_diag_str(f[3], 32), "description",
				    agent_diag_str(f[4], 256)));
	}
	tether_free(out);
	return list != NULL ? json_pack("{s:o}", "failed", list) : NULL;
}

/* The last LOG_LINES lines of text worth keeping, redacted, into list. */
static void keep_lines(char *text, bool filter, json_t *list)
{
	char *lines[LOG_LINES], *line, *next, *red;
	size_t n = 0, i, first;

	for (line = text; line != NULL && *line != '\0'; line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		if (line[0] == '\0' || strncmp(line, "-- ", 3) == 0)
			continue;
		if (filter && strcasestr(line, "error") == NULL &&
		    strcasestr(line, "fail") == NULL &&
		    strcasestr(line, "crit") == NULL &&
		    strcasestr(line, "panic") == NULL)
			continue;
		lines[n % LOG_LINES] = line;
		n++;
	}
	first = n > LOG_LINES ? n - LOG_LINES : 0;
	for (i = first; i < n; i++) {
		red = agent_redact(lines[i % LOG_LINES]);
		if (red == NULL)
			continue;
		json_array_append_new(list, agent_diag_str(red, LOG_LINE_MAX));
		tether_free(red);
	}
}

/* The last LOG_TAIL bytes of a log file, from a line start. */
static int read_tail(const char *path, char **out)
{
	char pbuf[PATH_MAX], *buf, *nl;
	off_t size, from;
	ssize_t n;
	size_t len = 0;
	int fd, err;

	*out = NULL;
	fd = open(agent_diag_path(path, pbuf, sizeof(pbuf)),
		  O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	size = lseek(fd, 0, SEEK_END);
	from = size > (off_t)LOG_TAIL ? size - (off_t)LOG_TAIL : 0;
	buf = tether_malloc(LOG_TAIL + 1);
	if (size < 0 || buf == NULL) {
		err = size < 0 ? errno : ENOMEM;
		close(fd);
		tether_free(buf);
		return -err;
	}
	while (len < LOG_TAIL) {
		n = pread(fd, buf + len, LOG_TAIL - len, from + (off_t)len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	/* The first line is likely cut: drop it. */
	if (from > 0 && (nl = strchr(buf, '\n')) != NULL)
		memmove(buf, nl + 1, strlen(nl + 1) + 1);
	*out = buf;
	return 0;
}

json_t *agent_diag_logs(void)
{
	static const char *const files[] = {"/var/log/syslog",
					    "/var/log/messages"};
	char *argv[] = {"journalctl", "-p", "err",	 "-n", "50",
			"--no-pager", "-o", "short-iso", NULL};
	const char *src = NULL;
	char *text = NULL;
	json_t *lines, *err = NULL;
	size_t i;
	int r = -ENOENT;

	if (exists("/run/systemd/journal/socket")) {
		text = run_tool(argv, JOURNALCTL_TIMEOUT_MS, LOG_TAIL, &err);
		if (text == NULL)
			return err;
		src = "journalctl";
	} else {
		for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
			r = read_tail(files[i], &text);
			if (r != -ENOENT) {
				src = files[i];
				break;
			}
		}
		if (src == NULL)
			return agent_diag_error(
			    "no journal, /var/log/syslog or /var/log/messages");
		if (r != 0)
			return agent_diag_errno(-r, src);
	}
	lines = json_array();
	if (lines != NULL)
		keep_lines(text, src[0] == '/', lines);
	tether_free(text);
	return lines != NULL
		   ? json_pack("{s:s,s:o}", "source", src, "lines", lines)
		   : NULL;
}
