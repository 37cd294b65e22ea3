/*
 * pty-echo: keystroke echo latency of an interactive remote-shell client.
 *
 *   pty-echo [-n COUNT] [-w WARMUP] [-l LABEL] -- CLIENT [ARGS...]
 *
 * Runs CLIENT (`tether shell T-1`, `ssh -t host`, ...) on a new pseudo
 * terminal, as a person's terminal would, waits until it has put that
 * terminal in raw mode (its session is up), then types a command that
 * turns the remote terminal's canonical mode off while keeping its echo
 * (`stty -icanon echo; ...; exec cat >/dev/null`), so that each byte typed
 * comes straight back from the remote line discipline.  Then it types one
 * byte at a time and measures the time until that byte is read back:
 * client -> (relay or ssh hops) -> remote PTY -> back.  WARMUP keystrokes
 * are not counted.  Prints one line:
 *
 *   LABEL n=2000 p50=... p90=... p99=... max=... mean=... (microseconds)
 *
 * Built by bench/shell-latency with cc; not part of the test suite.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define READY_MS 30000
#define KEY_MS 5000
#define SETTLE_MS 300

/*
 * The marker is split in the typed line ("RE""ADY") so that the echo of
 * the command itself never looks like its output.  The leading space
 * keeps the line out of history where HISTCONTROL ignores such lines.
 */
static const char setup_line[] =
    " stty -icanon echo -echoctl; echo PTY-ECHO-RE\"\"ADY; "
    "exec cat >/dev/null\r";
static const char ready_marker[] = "PTY-ECHO-READY";

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void die(const char *what)
{
	fprintf(stderr, "pty-echo: %s: %s\n", what, strerror(errno));
	exit(1);
}

static long parse_count(const char *s, const char *what)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 0 || v > 10000000) {
		fprintf(stderr, "pty-echo: bad %s: %s\n", what, s);
		exit(2);
	}
	return v;
}

static void write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n) {
		ssize_t w = write(fd, c, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			die("write to the client's terminal");
		c += w;
		n -= (size_t)w;
	}
}

/* Reads what is there within ms; bytes read, 0 on timeout, -1 at EOF. */
static ssize_t read_some(int fd, char *buf, size_t len, int ms)
{
	struct pollfd pf = {.fd = fd, .events = POLLIN};
	ssize_t n;
	int r;

	do
		r = poll(&pf, 1, ms);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		die("poll");
	if (r == 0)
		return 0;
	n = read(fd, buf, len);
	if (n < 0 && errno == EIO)
		return -1; /* the client has gone: its side is closed */
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n < 0)
		die("read from the client's terminal");
	return n == 0 ? -1 : n;
}

/* Keeps the client's last output for error messages. */
static char tail[2048];
static size_t tail_len;

static void keep_tail(const char *p, size_t n)
{
	if (n >= sizeof(tail)) {
		p += n - sizeof(tail);
		n = sizeof(tail);
	}
	if (tail_len + n > sizeof(tail)) {
		size_t drop = tail_len + n - sizeof(tail);

		memmove(tail, tail + drop, tail_len - drop);
		tail_len -= drop;
	}
	memcpy(tail + tail_len, p, n);
	tail_len += n;
}

static void fail_with_tail(const char *why)
{
	fprintf(stderr, "pty-echo: %s; the client's last output:\n%.*s\n", why,
		(int)tail_len, tail);
	exit(1);
}

/* The client has switched its terminal (our slave) out of canonical mode. */
static void wait_raw(int master, pid_t child)
{
	int64_t deadline = now_us() + (int64_t)READY_MS * 1000;
	struct termios t;
	char buf[4096];
	ssize_t n;

	for (;;) {
		/* Linux: the master reports the slave's settings. */
		if (tcgetattr(master, &t) == 0 && !(t.c_lflag & ICANON))
			return;
		n = read_some(master, buf, sizeof(buf), 20);
		if (n > 0)
			keep_tail(buf, (size_t)n);
		if (n < 0 || waitpid(child, NULL, WNOHANG) == child)
			fail_with_tail("the client exited before its session "
				       "was up");
		if (now_us() > deadline)
			fail_with_tail("the client did not put the terminal "
				       "in raw mode in time");
	}
}

/* Reads until the output contains marker (or the deadline passes). */
static void wait_marker(int master, const char *marker, int ms)
{
	int64_t deadline = now_us() + (int64_t)ms * 1000;
	size_t mlen = strlen(marker);
	char buf[4096];
	ssize_t n;

	for (;;) {
		n = read_some(master, buf, sizeof(buf), 50);
		if (n < 0)
			fail_with_tail("the client exited");
		if (n > 0) {
			keep_tail(buf, (size_t)n);
			if (memmem(tail, tail_len, marker, mlen))
				return;
		}
		if (now_us() > deadline)
			fail_with_tail("no ready marker from the remote shell");
	}
}

/* Discards output until there has been none for ms. */
static void settle(int master, int ms)
{
	char buf[4096];
	ssize_t n;

	while ((n = read_some(master, buf, sizeof(buf), ms)) > 0)
		keep_tail(buf, (size_t)n);
	if (n < 0)
		fail_with_tail("the client exited");
}

/* One keystroke: the time until c has come back, in microseconds. */
static int64_t keystroke(int master, char c)
{
	int64_t start = now_us(), left;
	char buf[256];
	ssize_t n;

	write_all(master, &c, 1);
	for (;;) {
		left = KEY_MS - (now_us() - start) / 1000;
		if (left <= 0)
			fail_with_tail("a keystroke was not echoed in 5 s");
		n = read_some(master, buf, sizeof(buf), (int)left);
		if (n < 0)
			fail_with_tail("the client exited");
		if (n == 0)
			continue;
		keep_tail(buf, (size_t)n);
		if (memchr(buf, c, (size_t)n))
			return now_us() - start;
	}
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted v[0..n). */
static int64_t pct(const int64_t *v, size_t n, unsigned p)
{
	size_t rank = (n * p + 99) / 100;

	return v[rank ? rank - 1 : 0];
}

/* Ends the session as a person would, then makes sure the client is gone. */
static void finish(int master, pid_t child)
{
	int64_t deadline;
	char buf[4096];
	int st;

	write_all(master, "\003", 1); /* Ctrl-C ends cat */
	usleep(100 * 1000);
	write_all(master, " exit\r", 6);
	deadline = now_us() + 5000000;
	while (waitpid(child, &st, WNOHANG) != child) {
		if (now_us() > deadline) {
			kill(child, SIGKILL);
			waitpid(child, &st, 0);
			fprintf(stderr, "pty-echo: the client did not exit "
					"after `exit`; killed\n");
			break;
		}
		if (read_some(master, buf, sizeof(buf), 20) < 0)
			usleep(20 * 1000);
	}
	close(master);
}

static void usage(void)
{
	fprintf(stderr, "usage: pty-echo [-n COUNT] [-w WARMUP] [-l LABEL] "
			"-- CLIENT [ARGS...]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct winsize ws = {.ws_row = 24, .ws_col = 80};
	const char *label = "client";
	long count = 2000, warmup = 50;
	int64_t *lat, sum = 0;
	int master, opt;
	pid_t child;

	while ((opt = getopt(argc, argv, "+n:w:l:")) != -1) {
		switch (opt) {
		case 'n':
			count = parse_count(optarg, "count");
			break;
		case 'w':
			warmup = parse_count(optarg, "warm-up");
			break;
		case 'l':
			label = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind >= argc || count < 1)
		usage();
	lat = calloc((size_t)count, sizeof(*lat));
	if (!lat)
		die("calloc");

	child = forkpty(&master, NULL, NULL, &ws);
	if (child < 0)
		die("forkpty");
	if (child == 0) {
		execvp(argv[optind], argv + optind);
		fprintf(stderr, "pty-echo: cannot run %s: %s\n", argv[optind],
			strerror(errno));
		_exit(127);
	}
	signal(SIGPIPE, SIG_IGN);

	wait_raw(master, child);
	write_all(master, setup_line, sizeof(setup_line) - 1);
	wait_marker(master, ready_marker, READY_MS);
	settle(master, SETTLE_MS);

	for (long i = 0; i < warmup + count; i++) {
		/* Letters only: never an escape (~) or a control key. */
		int64_t us = keystroke(master, (char)('a' + i % 26));

		if (i >= warmup)
			lat[i - warmup] = us;
	}
	finish(master, child);

	for (long i = 0; i < count; i++)
		sum += lat[i];
	qsort(lat, (size_t)count, sizeof(*lat), cmp_i64);
	printf("%s n=%ld p50=%lld p90=%lld p99=%lld max=%lld mean=%lld "
	       "(microseconds)\n",
	       label, count, (long long)pct(lat, (size_t)count, 50),
	       (long long)pct(lat, (size_t)count, 90),
	       (long long)pct(lat, (size_t)count, 99),
	       (long long)lat[count - 1], (long long)(sum / count));
	free(lat);
	return 0;
}
