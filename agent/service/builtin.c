/*
 * The built-in checks: disk, inodes, memory, swap, load, process, tcp_port,
 * tls_cert_expiry, file_age and systemd_unit (docs/agent-config.md).  All
 * but systemd_unit run on the thread pool and may block there, each within
 * its own timeout where the system lets us bound it; they touch nothing
 * but their struct agent_builtin copy and their result.  Their output reads
 * like a Nagios plugin's: "DISK OK - / 42.1% used (...) | perfdata".
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <tether/alloc.h>
#include <tether/ctrl.h>
#include <tether/err.h>
#include <tether/num.h>

#include "service/builtin.h"
#include "session/term.h"

#define PERF_MAX 512

/* Which keys a built-in takes. */
#define K_PATH 0x1u
#define K_HOST 0x2u
#define K_PORT 0x4u
#define K_SERVERNAME 0x8u
#define K_NAME 0x10u
#define K_MATCH 0x20u
#define K_UNIT 0x40u
#define K_PER_CPU 0x80u
#define K_THRESHOLDS 0x100u

static const struct builtin_def {
	const char *name;
	const char *label; /* the output's first word */
	enum agent_builtin_kind kind;
	unsigned keys;
	const char *warn; /* default thresholds (NULL: none) */
	const char *crit;
} defs[] = {
    {"disk", "DISK", AGENT_BUILTIN_DISK, K_PATH | K_THRESHOLDS, "80", "90"},
    {"inodes", "INODES", AGENT_BUILTIN_INODES, K_PATH | K_THRESHOLDS, "80",
     "90"},
    {"memory", "MEMORY", AGENT_BUILTIN_MEMORY, K_THRESHOLDS, "90", "95"},
    {"swap", "SWAP", AGENT_BUILTIN_SWAP, K_THRESHOLDS, "50", "80"},
    {"load", "LOAD", AGENT_BUILTIN_LOAD, K_PER_CPU | K_THRESHOLDS, NULL, NULL},
    {"process", "PROCS", AGENT_BUILTIN_PROCESS, K_NAME | K_MATCH | K_THRESHOLDS,
     NULL, "1:"},
    {"tcp_port", "TCP", AGENT_BUILTIN_TCP_PORT, K_HOST | K_PORT | K_THRESHOLDS,
     NULL, NULL},
    {"tls_cert_expiry", "TLS", AGENT_BUILTIN_TLS_CERT_EXPIRY,
     K_HOST | K_PORT | K_SERVERNAME | K_THRESHOLDS, "30:", "7:"},
    {"file_age", "FILE_AGE", AGENT_BUILTIN_FILE_AGE, K_PATH | K_THRESHOLDS,
     "3600", "86400"},
    {"systemd_unit", "SYSTEMD", AGENT_BUILTIN_SYSTEMD_UNIT, K_UNIT, NULL, NULL},
};

static const struct builtin_def *def_of(enum agent_builtin_kind kind)
{
	size_t i;

	for (i = 0; i < sizeof(defs) / sizeof(defs[0]); i++)
		if (defs[i].kind == kind)
			return &defs[i];
	return &defs[0];
}

int agent_builtin_init(struct agent_builtin *b, const char *name)
{
	size_t i;

	memset(b, 0, sizeof(*b));
	for (i = 0; i < sizeof(defs) / sizeof(defs[0]); i++) {
		if (strcmp(defs[i].name, name) == 0) {
			b->kind = defs[i].kind;
			b->timeout_ms = 10000;
			return 0;
		}
	}
	return TETHER_ERR_NOT_FOUND;
}

static int copy(char *dst, size_t len, const char *v, const char **why)
{
	if (strlen(v) >= len) {
		*why = "too long";
		return TETHER_ERR_TOO_LARGE;
	}
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

/* systemctl takes it as an argument: no options, no odd characters. */
static bool unit_valid(const char *s)
{
	if (*s == '\0' || *s == '-')
		return false;
	for (; *s != '\0'; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= '0' && *s <= '9') || strchr(":_.@-\\", *s)))
			return false;
	return true;
}

int agent_builtin_set(struct agent_builtin *b, const char *key,
		      const char *value, const char **why)
{
	unsigned keys = def_of(b->kind)->keys;

	*why = NULL;
	if ((keys & K_THRESHOLDS) &&
	    (strcmp(key, "warning") == 0 || strcmp(key, "critical") == 0)) {
		struct agent_range *r = key[0] == 'w' ? &b->warn : &b->crit;

		if (agent_range_parse(value, r) != 0) {
			*why = "not a range: want N, N:, ~:N, N:M or @N:M";
			return TETHER_ERR_FORMAT;
		}
		return 0;
	}
	if ((keys & K_PATH) && strcmp(key, "path") == 0) {
		if (value[0] != '/') {
			*why = "not an absolute path";
			return TETHER_ERR_FORMAT;
		}
		return copy(b->path, sizeof(b->path), value, why);
	}
	if ((keys & K_HOST) && strcmp(key, "host") == 0)
		return copy(b->host, sizeof(b->host), value, why);
	if ((keys & K_SERVERNAME) && strcmp(key, "servername") == 0)
		return copy(b->servername, sizeof(b->servername), value, why);
	if ((keys & K_PORT) && strcmp(key, "port") == 0) {
		if (agent_port_parse(value, &b->port) != 0) {
			*why = "want 1 to 65535";
			return TETHER_ERR_FORMAT;
		}
		return 0;
	}
	if ((keys & K_NAME) && strcmp(key, "name") == 0)
		return copy(b->name, sizeof(b->name), value, why);
	if ((keys & K_MATCH) && strcmp(key, "match") == 0)
		return copy(b->match, sizeof(b->match), value, why);
	if ((keys & K_UNIT) && strcmp(key, "unit") == 0) {
		if (!unit_valid(value)) {
			*why = "not a unit name";
			return TETHER_ERR_FORMAT;
		}
		return copy(b->unit, sizeof(b->unit), value, why);
	}
	if ((keys & K_PER_CPU) && strcmp(key, "per_cpu") == 0) {
		if (strcmp(value, "yes") == 0 || strcmp(value, "true") == 0)
			b->per_cpu = true;
		else if (strcmp(value, "no") == 0 ||
			 strcmp(value, "false") == 0)
			b->per_cpu = false;
		else {
			*why = "want yes or no";
			return TETHER_ERR_FORMAT;
		}
		return 0;
	}
	return TETHER_ERR_INVALID;
}

static long cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? n : 1;
}

int agent_builtin_finish(struct agent_builtin *b, const char **why)
{
	const struct builtin_def *d = def_of(b->kind);
	char w[32], c[32];

	*why = NULL;
	/* Both defaults or none: a lone default would surprise. */
	if (!b->warn.set && !b->crit.set && b->kind == AGENT_BUILTIN_LOAD) {
		long n = b->per_cpu ? 1 : cpus();

		snprintf(w, sizeof(w), "%ld", 2 * n);
		snprintf(c, sizeof(c), "%ld", 4 * n);
		agent_range_parse(w, &b->warn);
		agent_range_parse(c, &b->crit);
	} else if (!b->warn.set && !b->crit.set) {
		if (d->warn != NULL)
			agent_range_parse(d->warn, &b->warn);
		if (d->crit != NULL)
			agent_range_parse(d->crit, &b->crit);
	}
	switch (b->kind) {
	case AGENT_BUILTIN_DISK:
	case AGENT_BUILTIN_INODES:
		if (b->path[0] == '\0')
			memcpy(b->path, "/", 2);
		break;
	case AGENT_BUILTIN_FILE_AGE:
		if (b->path[0] == '\0')
			*why = "file_age needs path = FILE";
		break;
	case AGENT_BUILTIN_PROCESS:
		if ((b->name[0] == '\0') == (b->match[0] == '\0'))
			*why = "process needs either name or match";
		break;
	case AGENT_BUILTIN_TCP_PORT:
	case AGENT_BUILTIN_TLS_CERT_EXPIRY:
		if (b->host[0] == '\0')
			memcpy(b->host, "127.0.0.1", 10);
		if (b->port == 0 && b->kind == AGENT_BUILTIN_TLS_CERT_EXPIRY)
			b->port = 443;
		if (b->port == 0)
			*why = "tcp_port needs port = N";
		break;
	case AGENT_BUILTIN_SYSTEMD_UNIT:
		if (b->unit[0] == '\0')
			*why = "systemd_unit needs unit = NAME";
		break;
	default:
		break;
	}
	return *why != NULL ? TETHER_ERR_INVALID : 0;
}

static enum tether_check_state judge(const struct agent_builtin *b, double v)
{
	if (agent_range_alert(&b->crit, v))
		return TETHER_CHECK_CRITICAL;
	if (agent_range_alert(&b->warn, v))
		return TETHER_CHECK_WARNING;
	return TETHER_CHECK_OK;
}

/* "LABEL STATE - " then the formatted rest. */
static void say(const struct agent_builtin *b, struct agent_check_result *res,
		enum tether_check_state st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void say(const struct agent_builtin *b, struct agent_check_result *res,
		enum tether_check_state st, const char *fmt, ...)
{
	int n;
	va_list ap;

	res->state = st;
	n = snprintf(res->output, sizeof(res->output), "%s %s - ",
		     def_of(b->kind)->label,
		     tether_ctrl_name_of(check_state, st));
	if (n < 0 || (size_t)n >= sizeof(res->output))
		return;
	va_start(ap, fmt);
	vsnprintf(res->output + n, sizeof(res->output) - (size_t)n, fmt, ap);
	va_end(ap);
}

static void perf(struct agent_check_result *res, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void perf(struct agent_check_result *res, const char *fmt, ...)
{
	va_list ap;

	res->perf = tether_malloc(PERF_MAX);
	if (res->perf == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(res->perf, PERF_MAX, fmt, ap);
	va_end(ap);
}

/* Bytes as the customer reads sizes elsewhere ("12.3 GiB"). */
static void human(double bytes, char *out, size_t outlen)
{
	agent_term_size(bytes > 0 ? (uint64_t)bytes : 0, out, outlen);
}

static void sys_error(const struct agent_builtin *b,
		      struct agent_check_result *res,
		      enum tether_check_state st, const char *what, int e)
{
	char buf[128];

	say(b, res, st, "%s: %s", what, strerror_r(e, buf, sizeof(buf)));
}

static void run_disk(const struct agent_builtin *b,
		     struct agent_check_result *res)
{
	char used_h[32], size_h[32];
	struct statvfs sv;
	double used, avail, size, pct;

	if (statvfs(b->path, &sv) != 0) {
		sys_error(b, res, TETHER_CHECK_UNKNOWN, b->path, errno);
		return;
	}
	if (b->kind == AGENT_BUILTIN_INODES) {
		if (sv.f_files == 0) {
			say(b, res, TETHER_CHECK_OK,
			    "%s has no inode count (dynamic inodes)", b->path);
			return;
		}
		used = (double)(sv.f_files - sv.f_ffree);
		pct = 100.0 * used / (double)sv.f_files;
		say(b, res, judge(b, pct),
		    "%s %.1f%% of inodes used (%.0f of %.0f)", b->path, pct,
		    used, (double)sv.f_files);
		perf(res,
		     "inodes_used=%.0f;;;0;%.0f inodes_pct=%.2f%%;%s;%s;0;100",
		     used, (double)sv.f_files, pct, b->warn.text, b->crit.text);
		return;
	}
	/* As df: the reserved blocks count neither as used nor as free. */
	used = (double)(sv.f_blocks - sv.f_bfree) * (double)sv.f_frsize;
	avail = (double)sv.f_bavail * (double)sv.f_frsize;
	size = (double)sv.f_blocks * (double)sv.f_frsize;
	pct = used + avail > 0 ? 100.0 * used / (used + avail) : 0;
	human(used, used_h, sizeof(used_h));
	human(size, size_h, sizeof(size_h));
	say(b, res, judge(b, pct), "%s %.1f%% used (%s of %s)", b->path, pct,
	    used_h, size_h);
	perf(res, "used=%.0fB;;;0;%.0f used_pct=%.2f%%;%s;%s;0;100", used, size,
	     pct, b->warn.text, b->crit.text);
}

/* MemTotal and the like from /proc/meminfo, in bytes; -1 if absent. */
static int meminfo(const char *const *keys, double *vals, size_t n)
{
	char line[256];
	size_t i;
	FILE *f;

	for (i = 0; i < n; i++)
		vals[i] = -1;
	f = fopen("/proc/meminfo", "re");
	if (f == NULL)
		return TETHER_ERR_SYS;
	while (fgets(line, sizeof(line), f) != NULL) {
		for (i = 0; i < n; i++) {
			size_t kl = strlen(keys[i]);
			const char *p = line + kl + 1;
			uint64_t kib;

			if (strncmp(line, keys[i], kl) != 0 || line[kl] != ':')
				continue;
			if (tether_num_scan_u64(&p, &kib) == 0)
				vals[i] = (double)kib * 1024;
		}
	}
	fclose(f);
	return 0;
}

static void run_memory(const struct agent_builtin *b,
		       struct agent_check_result *res)
{
	static const char *const mem_keys[] = {"MemTotal", "MemAvailable"};
	static const char *const swap_keys[] = {"SwapTotal", "SwapFree"};
	bool swap = b->kind == AGENT_BUILTIN_SWAP;
	char used_h[32], total_h[32];
	double v[2], used, pct;

	if (meminfo(swap ? swap_keys : mem_keys, v, 2) != 0) {
		sys_error(b, res, TETHER_CHECK_UNKNOWN, "/proc/meminfo", errno);
		return;
	}
	if (swap && v[0] == 0) {
		say(b, res, TETHER_CHECK_OK, "no swap");
		return;
	}
	if (v[0] <= 0 || v[1] < 0) {
		say(b, res, TETHER_CHECK_UNKNOWN, "/proc/meminfo lacks %s",
		    swap ? "SwapTotal" : "MemAvailable");
		return;
	}
	used = v[0] - v[1];
	pct = 100.0 * used / v[0];
	human(used, used_h, sizeof(used_h));
	human(v[0], total_h, sizeof(total_h));
	say(b, res, judge(b, pct), "%.1f%% used (%s of %s)", pct, used_h,
	    total_h);
	perf(res, "used=%.0fB;;;0;%.0f used_pct=%.2f%%;%s;%s;0;100", used, v[0],
	     pct, b->warn.text, b->crit.text);
}

static void run_load(const struct agent_builtin *b,
		     struct agent_check_result *res)
{
	double l[3];
	long n = cpus();
	int i;

	if (getloadavg(l, 3) != 3) {
		say(b, res, TETHER_CHECK_UNKNOWN,
		    "cannot read the load average");
		return;
	}
	if (b->per_cpu)
		for (i = 0; i < 3; i++)
			l[i] /= (double)n;
	say(b, res, judge(b, l[0]),
	    "load average%s %.2f, %.2f, %.2f (%ld CPU%s)",
	    b->per_cpu ? " per CPU" : "", l[0], l[1], l[2], n,
	    n == 1 ? "" : "s");
	perf(res, "load1=%.2f;%s;%s;0 load5=%.2f;;;0 load15=%.2f;;;0", l[0],
	     b->warn.text, b->crit.text, l[1], l[2]);
}

/* Reads /proc/PID/FILE into buf, NULs (cmdline) turned into spaces. */
static size_t proc_read(const char *pid, const char *file, char *buf,
			size_t len)
{
	char path[64];
	ssize_t n;
	size_t i;
	int fd;

	snprintf(path, sizeof(path), "/proc/%s/%s", pid, file);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return 0;
	for (i = 0; i < (size_t)n; i++)
		if (buf[i] == '\0')
			buf[i] = ' ';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		n--;
	buf[n] = '\0';
	return (size_t)n;
}

static void run_process(const struct agent_builtin *b,
			struct agent_check_result *res)
{
	char self[32], buf[4096];
	struct dirent *de;
	unsigned count = 0;
	DIR *d;

	d = opendir("/proc");
	if (d == NULL) {
		sys_error(b, res, TETHER_CHECK_UNKNOWN, "/proc", errno);
		return;
	}
	snprintf(self, sizeof(self), "%ld", (long)getpid());
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		if (b->name[0] != '\0') {
			if (proc_read(de->d_name, "comm", buf, sizeof(buf)) >
				0 &&
			    strcmp(buf, b->name) == 0)
				count++;
			continue;
		}
		/* Our own command line may well hold the pattern. */
		if (strcmp(de->d_name, self) == 0)
			continue;
		if (proc_read(de->d_name, "cmdline", buf, sizeof(buf)) > 0 &&
		    strstr(buf, b->match) != NULL)
			count++;
	}
	closedir(d);
	say(b, res, judge(b, count), "%u process%s %s '%s'", count,
	    count == 1 ? "" : "es", b->name[0] != '\0' ? "named" : "matching",
	    b->name[0] != '\0' ? b->name : b->match);
	perf(res, "procs=%u;%s;%s;0", count, b->warn.text, b->crit.text);
}

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Connects to one address within the time left; 0 or an errno. */
static int connect_one(const struct addrinfo *ai, double deadline, int *fdp)
{
	struct pollfd pfd;
	socklen_t len = sizeof(int);
	int fd, e = 0, left;

	fd = socket(ai->ai_family,
		    ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    ai->ai_protocol);
	if (fd < 0)
		return errno;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		if (errno != EINPROGRESS) {
			e = errno;
			close(fd);
			return e;
		}
		pfd.fd = fd;
		pfd.events = POLLOUT;
		do {
			left = (int)((deadline - mono()) * 1000);
			if (left <= 0) {
				close(fd);
				return ETIMEDOUT;
			}
		} while ((e = poll(&pfd, 1, left)) < 0 && errno == EINTR);
		if (e == 0) {
			close(fd);
			return ETIMEDOUT;
		}
		e = 0;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) != 0)
			e = errno;
		if (e != 0) {
			close(fd);
			return e;
		}
	}
	*fdp = fd;
	return 0;
}

/*
 * Connects to b's host and port before the timeout.  0 with the socket in
 * *fdp (non-blocking), else a CRITICAL result is already in res.
 */
static int tcp_connect(const struct agent_builtin *b,
		       struct agent_check_result *res, double start, int *fdp)
{
	struct addrinfo hints, *list = NULL, *ai;
	double deadline = start + b->timeout_ms / 1000.0;
	char port[8], ebuf[128];
	const char *why;
	int e = ETIMEDOUT;

	*fdp = -1;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof(port), "%u", b->port);
	e = getaddrinfo(b->host, port, &hints, &list);
	if (e != 0) {
		say(b, res, TETHER_CHECK_CRITICAL, "%s: %s", b->host,
		    gai_strerror(e));
		return TETHER_ERR_NOT_FOUND;
	}
	e = ETIMEDOUT;
	for (ai = list; ai != NULL; ai = ai->ai_next) {
		e = connect_one(ai, deadline, fdp);
		if (e == 0 || e == ETIMEDOUT)
			break;
	}
	freeaddrinfo(list);
	if (e == 0)
		return 0;
	if (e == ECONNREFUSED)
		why = "connection refused";
	else if (e == ETIMEDOUT)
		why = "timed out";
	else
		why = strerror_r(e, ebuf, sizeof(ebuf));
	say(b, res, TETHER_CHECK_CRITICAL, "%s port %u: %s", b->host, b->port,
	    why);
	return TETHER_ERR_SYS;
}

static void run_tcp(const struct agent_builtin *b,
		    struct agent_check_result *res)
{
	double start = mono(), secs;
	int fd;

	if (tcp_connect(b, res, start, &fd) != 0)
		return;
	secs = mono() - start;
	close(fd);
	say(b, res, judge(b, secs),
	    "%s port %u accepted the connection in %.3f s", b->host, b->port,
	    secs);
	perf(res, "time=%.6fs;%s;%s;0;%.6f", secs, b->warn.text, b->crit.text,
	     b->timeout_ms / 1000.0);
}

/* Whether s is an IP address (no SNI for those). */
static bool is_ip(const char *s)
{
	struct addrinfo hints, *ai = NULL;

	memset(&hints, 0, sizeof(hints));
	hints.ai_flags = AI_NUMERICHOST;
	if (getaddrinfo(s, NULL, &hints, &ai) != 0)
		return false;
	freeaddrinfo(ai);
	return true;
}

/* The handshake on fd, blocking up to deadline; the peer's certificate. */
static X509 *tls_peer_cert(const struct agent_builtin *b, int fd,
			   double deadline)
{
	const char *sni = b->servername[0] != '\0' ? b->servername : b->host;
	double left = deadline - mono();
	struct timeval tv;
	SSL_CTX *ctx;
	X509 *cert = NULL;
	SSL *ssl = NULL;
	int fl;

	if (left <= 0)
		return NULL;
	tv.tv_sec = (time_t)left;
	tv.tv_usec = (suseconds_t)((left - (double)tv.tv_sec) * 1e6);
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0)
		return NULL;
	ERR_clear_error();
	ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL)
		goto out;
	/* It measures expiry: an expired or self-signed one must connect. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	ssl = SSL_new(ctx);
	if (ssl == NULL || SSL_set_fd(ssl, fd) != 1)
		goto out;
	if (!is_ip(sni))
		SSL_set_tlsext_host_name(ssl, sni);
	if (SSL_connect(ssl) != 1)
		goto out;
	cert = SSL_get1_peer_certificate(ssl);
	SSL_shutdown(ssl);
out:
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	ERR_clear_error();
	return cert;
}

static void run_tls(const struct agent_builtin *b,
		    struct agent_check_result *res)
{
	double start = mono(), days;
	const ASN1_TIME *na;
	char when[64] = "?";
	struct tm tm;
	int fd, d = 0, s = 0;
	X509 *cert;

	if (tcp_connect(b, res, start, &fd) != 0)
		return;
	cert = tls_peer_cert(b, fd, start + b->timeout_ms / 1000.0);
	close(fd);
	/*
	 * OpenSSL keeps per-thread random state until the thread exits, and
	 * libuv's pool threads never do: drop it, as a thread's end would.
	 */
	OPENSSL_thread_stop();
	if (cert == NULL) {
		say(b, res, TETHER_CHECK_CRITICAL,
		    "%s port %u: TLS handshake failed or timed out", b->host,
		    b->port);
		return;
	}
	na = X509_get0_notAfter(cert);
	if (na == NULL || ASN1_TIME_diff(&d, &s, NULL, na) != 1) {
		X509_free(cert);
		say(b, res, TETHER_CHECK_UNKNOWN,
		    "%s port %u: cannot read the certificate's expiry", b->host,
		    b->port);
		return;
	}
	if (ASN1_TIME_to_tm(na, &tm) == 1)
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M UTC", &tm);
	X509_free(cert);
	/* Whole days left, rounded down: 9.9 days is 9 (and -0.5 is -1). */
	days = d;
	if (s < 0 || (d < 0 && s > 0))
		days += s < 0 ? -1 : 0;
	if (days < 0)
		say(b, res, judge(b, days),
		    "%s port %u: certificate expired %.0f day%s ago (%s)",
		    b->host, b->port, -days, days == -1 ? "" : "s", when);
	else
		say(b, res, judge(b, days),
		    "%s port %u: certificate expires in %.0f day%s (%s)",
		    b->host, b->port, days, days == 1 ? "" : "s", when);
	perf(res, "days=%.0f;%s;%s", days, b->warn.text, b->crit.text);
}

static void run_file_age(const struct agent_builtin *b,
			 struct agent_check_result *res)
{
	struct stat st;
	double age;

	if (stat(b->path, &st) != 0) {
		if (errno == ENOENT)
			say(b, res, TETHER_CHECK_CRITICAL, "%s: no such file",
			    b->path);
		else
			sys_error(b, res, TETHER_CHECK_CRITICAL, b->path,
				  errno);
		return;
	}
	age = difftime(time(NULL), st.st_mtime);
	if (age < 0)
		age = 0;
	say(b, res, judge(b, age), "%s is %.0f s old", b->path, age);
	perf(res, "age=%.0fs;%s;%s;0", age, b->warn.text, b->crit.text);
}

void agent_builtin_run(const struct agent_builtin *b,
		       struct agent_check_result *res)
{
	memset(res, 0, sizeof(*res));
	switch (b->kind) {
	case AGENT_BUILTIN_DISK:
	case AGENT_BUILTIN_INODES:
		run_disk(b, res);
		break;
	case AGENT_BUILTIN_MEMORY:
	case AGENT_BUILTIN_SWAP:
		run_memory(b, res);
		break;
	case AGENT_BUILTIN_LOAD:
		run_load(b, res);
		break;
	case AGENT_BUILTIN_PROCESS:
		run_process(b, res);
		break;
	case AGENT_BUILTIN_TCP_PORT:
		run_tcp(b, res);
		break;
	case AGENT_BUILTIN_TLS_CERT_EXPIRY:
		run_tls(b, res);
		break;
	case AGENT_BUILTIN_FILE_AGE:
		run_file_age(b, res);
		break;
	case AGENT_BUILTIN_SYSTEMD_UNIT:
		say(b, res, TETHER_CHECK_UNKNOWN, "not run on the thread pool");
		break;
	}
}

bool agent_builtin_have_systemd(void)
{
	struct stat st;

	/* What sd_booted() looks at. */
	return lstat("/run/systemd/system", &st) == 0 && S_ISDIR(st.st_mode);
}

void agent_builtin_systemd_argv(const struct agent_builtin *b,
				const char *argv[6])
{
	argv[0] = access("/usr/bin/systemctl", X_OK) == 0 ? "/usr/bin/systemctl"
							  : "/bin/systemctl";
	argv[1] = "show";
	argv[2] = "--property=ActiveState";
	argv[3] = "--value";
	argv[4] = b->unit;
	argv[5] = NULL;
}

void agent_builtin_systemd_result(const struct agent_builtin *b,
				  const struct agent_plugin_end *e,
				  struct agent_check_result *res)
{
	char state[64];
	size_t n = 0;

	res->perf = NULL;
	if (e->timed_out) {
		say(b, res, TETHER_CHECK_UNKNOWN,
		    "systemctl timed out after %u s", b->timeout_ms / 1000);
		return;
	}
	while (n < e->outlen && n + 1 < sizeof(state) && e->out[n] != '\n') {
		state[n] = e->out[n];
		n++;
	}
	state[n] = '\0';
	if (e->how != 0 || e->value != 0 || n == 0) {
		say(b, res, TETHER_CHECK_UNKNOWN,
		    "systemctl show %s failed (%s %d)", b->unit,
		    e->how != 0 ? "signal" : "status", e->value);
		return;
	}
	if (strcmp(state, "active") == 0)
		say(b, res, TETHER_CHECK_OK, "%s is active", b->unit);
	else if (strcmp(state, "activating") == 0 ||
		 strcmp(state, "reloading") == 0 ||
		 strcmp(state, "deactivating") == 0)
		say(b, res, TETHER_CHECK_WARNING, "%s is %s", b->unit, state);
	else if (strcmp(state, "failed") == 0 || strcmp(state, "inactive") == 0)
		say(b, res, TETHER_CHECK_CRITICAL, "%s is %s", b->unit, state);
	else
		say(b, res, TETHER_CHECK_UNKNOWN, "%s is in state '%.40s'",
		    b->unit, state);
}
