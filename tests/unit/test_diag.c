/*
 * Unit tests for the diagnostics collector (agent/agent-diag*.c) on the
 * machine that runs them: every section is there (a value or an error),
 * problems are well formed, the collection is fast and small enough to
 * pack, unreadable files become error entries, and a password on a real
 * process's command line never reaches the bundle.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <tether/alloc.h>
#include <tether/bundle.h>
#include <tether/err.h>
#include <tether/proto.h>

#include "diag/diag.h"
#include "diag/input.h"
#include "diag/proc.h"

static const char *const section_names[] = {
    "os",	 "uptime",  "cpu",    "memory",	  "disks",
    "mounts",	 "network", "routes", "dns",	  "listening",
    "processes", "systemd", "logs",   "packages", "time",
};

static double seconds_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) +
	       (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static json_t *collect(double *secs)
{
	struct timespec t0;
	json_t *b;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	b = agent_diag_collect();
	if (secs != NULL)
		*secs = seconds_since(&t0);
	cr_assert_not_null(b);
	return b;
}

static json_t *section(const json_t *b, const char *name)
{
	json_t *s = json_object_get(json_object_get(b, "sections"), name);

	cr_assert(json_is_object(s), "section %s missing", name);
	return s;
}

static bool is_error(const json_t *s)
{
	return json_is_string(json_object_get(s, "error"));
}

Test(diag, every_section_present_and_fast)
{
	const char *when;
	double secs;
	json_t *b = collect(&secs);
	size_t i;

	cr_expect_lt(secs, 5.0, "collection took %.2f s", secs);
	cr_expect_eq(json_integer_value(json_object_get(b, "version")), 1);
	when = json_string_value(json_object_get(b, "collected_at"));
	cr_assert_not_null(when);
	cr_expect_eq(strlen(when), 20, "not ISO-8601 UTC: %s", when);
	cr_expect_eq(when[19], 'Z');
	cr_expect(json_is_integer(json_object_get(b, "duration_ms")));
	cr_expect_lt(json_integer_value(json_object_get(b, "duration_ms")),
		     5000);
	for (i = 0; i < sizeof(section_names) / sizeof(section_names[0]); i++) {
		json_t *s = section(b, section_names[i]);

		/* Either a value or a reason, never an empty object. */
		cr_expect_gt(json_object_size(s), 0, "%s is empty",
			     section_names[i]);
	}
	cr_expect_eq(json_object_size(json_object_get(b, "sections")),
		     sizeof(section_names) / sizeof(section_names[0]));
	json_decref(b);
}

/* What Linux always has, read the way the bundle says. */
Test(diag, sections_hold_this_machine)
{
	json_t *b = collect(NULL), *s, *v;
	char host[256];
	size_t i;

	s = section(b, "os");
	cr_expect(json_is_string(json_object_get(s, "kernel")));
	cr_assert_eq(gethostname(host, sizeof(host)), 0);
	cr_expect_str_eq(json_string_value(json_object_get(s, "hostname")),
			 host);
	s = section(b, "cpu");
	cr_assert(!is_error(s));
	cr_expect_eq(json_integer_value(json_object_get(s, "count")),
		     sysconf(_SC_NPROCESSORS_ONLN));
	cr_expect_eq(json_array_size(json_object_get(s, "load")), 3);
	v = json_object_get(s, "usage_pct");
	cr_expect(json_is_number(v) && json_number_value(v) >= 0 &&
		  json_number_value(v) <= 100);
	s = section(b, "memory");
	cr_assert(!is_error(s));
	cr_expect_gt(json_integer_value(json_object_get(s, "total")), 0);
	cr_expect_leq(json_integer_value(json_object_get(s, "available")),
		      json_integer_value(json_object_get(s, "total")));
	s = section(b, "uptime");
	cr_expect_gt(json_integer_value(json_object_get(s, "seconds")), 0);
	/* The filesystem the tests run on is one of the disks. */
	s = section(b, "disks");
	cr_expect_gt(json_array_size(json_object_get(s, "filesystems")), 0);
	json_array_foreach (json_object_get(s, "filesystems"), i, v) {
		if (json_object_get(v, "use_pct") == NULL)
			continue;
		cr_expect_leq(json_integer_value(json_object_get(v, "use_pct")),
			      100);
		cr_expect_str_neq(
		    json_string_value(json_object_get(v, "fstype")), "proc");
	}
	s = section(b, "network");
	cr_expect_gt(json_array_size(json_object_get(s, "interfaces")), 0);
	s = section(b, "processes");
	cr_expect_gt(json_integer_value(json_object_get(s, "count")), 0);
	cr_expect_gt(json_array_size(json_object_get(s, "top_rss")), 0);
	/* Without systemd, as in most containers, it says so. */
	if (access("/run/systemd/system", F_OK) != 0)
		cr_expect_str_eq(json_string_value(json_object_get(
				     section(b, "systemd"), "error")),
				 "systemd is not running");
	s = section(b, "time");
	cr_expect(json_is_boolean(json_object_get(s, "synchronised")));
	json_decref(b);
}

Test(diag, problems_well_formed_critical_first)
{
	json_t *b = collect(NULL), *p;
	bool seen_warning = false;
	const char *sev, *what;
	size_t i;

	cr_assert(json_is_array(json_object_get(b, "problems")));
	json_array_foreach (json_object_get(b, "problems"), i, p) {
		sev = json_string_value(json_object_get(p, "severity"));
		what = json_string_value(json_object_get(p, "what"));
		cr_assert_not_null(sev);
		cr_assert_not_null(what);
		cr_expect_gt(strlen(what), 0);
		cr_expect(strcmp(sev, "critical") == 0 ||
			      strcmp(sev, "warning") == 0,
			  "severity %s", sev);
		if (strcmp(sev, "warning") == 0)
			seen_warning = true;
		else
			cr_expect(!seen_warning, "critical after a warning");
	}
	json_decref(b);
}

Test(diag, bundle_packs_under_the_limit)
{
	json_t *b = collect(NULL);
	char *packed = NULL;

	cr_assert_eq(tether_bundle_pack(b, &packed), 0);
	cr_expect_lt(strlen(packed), TETHER_BUNDLE_MAX);
	tether_free(packed);
	json_decref(b);
}

/* A busy shell whose command line carries a password. */
static pid_t start_secret_process(void)
{
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", "while :; do :; done", "sh",
		      "--password", "hunter2xyz", (char *)NULL);
		_exit(127);
	}
	/* Until exec, the cmdline is still ours. */
	for (int i = 0; i < 200; i++) {
		char path[64], *text = NULL;
		size_t len;

		snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
		if (agent_diag_read(path, 4096, &text, &len) == 0 &&
		    memmem(text, len, "hunter2xyz", 10) != NULL) {
			tether_free(text);
			return pid;
		}
		tether_free(text);
		usleep(10000);
	}
	cr_assert_fail("the child never showed its command line");
	return -1;
}

static void stop(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

Test(diag, process_password_redacted)
{
	pid_t pid = start_secret_process();
	json_t *p = agent_diag_process((int)pid);
	const char *cmd;

	cr_assert_not_null(p);
	cmd = json_string_value(json_object_get(p, "cmdline"));
	cr_assert_not_null(cmd);
	cr_expect_null(strstr(cmd, "hunter2xyz"), "cmdline: %s", cmd);
	cr_expect_not_null(strstr(cmd, "--password [REDACTED]"), "cmdline: %s",
			   cmd);
	cr_expect_eq(json_integer_value(json_object_get(p, "pid")), pid);
	cr_expect_str_eq(json_string_value(json_object_get(p, "name")), "sh");
	json_decref(p);
	stop(pid);
}

Test(diag, bundle_never_shows_a_password)
{
	pid_t pid = start_secret_process();
	json_t *b = collect(NULL);
	char *text = json_dumps(b, JSON_COMPACT);

	stop(pid);
	cr_assert_not_null(text);
	cr_expect_null(strstr(text, "hunter2xyz"));
	free(text);
	json_decref(b);
}

/*
 * Unprivileged, the fds of other users' processes are closed to us:
 * the collection still succeeds and says how many it could not see.
 */
Test(diag, unprivileged_collection_succeeds)
{
	json_t *b, *l;

	if (geteuid() == 0) {
		cr_assert_eq(setgid(65534), 0);
		cr_assert_eq(setuid(65534), 0);
	}
	b = collect(NULL);
	l = section(b, "listening");
	if (!is_error(l) && json_array_size(json_object_get(l, "sockets")) > 0)
		cr_expect_gt(
		    json_integer_value(json_object_get(l, "owners_hidden")), 0);
	json_decref(b);
}

#ifdef TETHER_TEST_HOOKS
static void mkdirs(const char *root, const char *sub)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", root, sub);
	cr_assert(mkdir(path, 0755) == 0 || errno == EEXIST, "mkdir %s", path);
}

static void write_at(const char *root, const char *sub, const char *text,
		     mode_t mode)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", root, sub);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}
#endif

/*
 * TETHER_TEST_DIAG_ROOT puts a fake root before /etc, /proc, /sys, /run
 * and /var: there os-release is a directory, /proc is nearly empty and
 * the syslog holds a secret.  Every section still comes back.
 */
Test(diag, unreadable_files_become_errors)
{
#ifdef TETHER_TEST_HOOKS
	char root[] = "/tmp/tether-diag-XXXXXX";
	json_t *b, *s;
	const char *e;
	char *text;
	size_t i;

	cr_assert_not_null(mkdtemp(root));
	mkdirs(root, "etc");
	mkdirs(root, "etc/os-release");
	mkdirs(root, "proc");
	mkdirs(root, "var");
	mkdirs(root, "var/log");
	write_at(root, "proc/loadavg", "garbage", 0644);
	write_at(root, "var/log/syslog",
		 "Jan 1 00:00:01 h app: ok\n"
		 "Jan 1 00:00:02 h app: ERROR login password=hunter2xyz\n"
		 "Jan 1 00:00:03 h app: all good\n",
		 0600);
	setenv("TETHER_TEST_DIAG_ROOT", root, 1);
	b = collect(NULL);
	for (i = 0; i < sizeof(section_names) / sizeof(section_names[0]); i++)
		section(b, section_names[i]);
	e = json_string_value(
	    json_array_get(json_object_get(section(b, "os"), "errors"), 0));
	cr_expect_str_eq(e, "is a directory: /etc/os-release");
	cr_expect_str_eq(
	    json_string_value(json_object_get(section(b, "uptime"), "error")),
	    "not found: /proc/uptime");
	cr_expect_str_eq(
	    json_string_value(json_object_get(section(b, "cpu"), "error")),
	    "malformed /proc/loadavg");
	cr_expect_str_eq(
	    json_string_value(json_object_get(section(b, "dns"), "error")),
	    "not found: /etc/resolv.conf");
	cr_expect(is_error(section(b, "memory")));
	cr_expect(is_error(section(b, "mounts")));
	cr_expect(is_error(section(b, "disks")));
	cr_expect(is_error(section(b, "routes")));
	cr_expect(is_error(section(b, "listening")));
	cr_expect(is_error(section(b, "processes")));
	cr_expect(is_error(section(b, "packages")));
	s = section(b, "logs");
	cr_expect_str_eq(json_string_value(json_object_get(s, "source")),
			 "/var/log/syslog");
	cr_assert_eq(json_array_size(json_object_get(s, "lines")), 1);
	cr_expect_str_eq(
	    json_string_value(json_array_get(json_object_get(s, "lines"), 0)),
	    "Jan 1 00:00:02 h app: ERROR login password=[REDACTED]");
	text = json_dumps(b, JSON_COMPACT);
	cr_expect_null(strstr(text, "hunter2xyz"));
	free(text);
	json_decref(b);
#else
	cr_skip_test("needs -Dtest_hooks=true (TETHER_TEST_DIAG_ROOT)");
#endif
}

Test(diag, run_captures_caps_and_times_out)
{
	char *echo[] = {"echo", "hello", NULL};
	char *seq[] = {"seq", "1", "100000", NULL};
	char *sleep_[] = {"sleep", "10", NULL};
	char *none[] = {"/nonexistent/tool", NULL};
	struct timespec t0;
	char *out;
	int status;

	cr_assert_eq(agent_diag_run(echo, 2000, 1024, &out, &status), 0);
	cr_expect_str_eq(out, "hello\n");
	cr_expect_eq(status, 0);
	tether_free(out);
	cr_assert_eq(agent_diag_run(seq, 2000, 100, &out, &status), 0);
	cr_expect_eq(strlen(out), 100);
	cr_expect_eq(status, 0);
	tether_free(out);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cr_expect_eq(agent_diag_run(sleep_, 300, 1024, &out, &status),
		     TETHER_ERR_EXPIRED);
	cr_expect_null(out);
	cr_expect_lt(seconds_since(&t0), 1.5);
	cr_expect_eq(agent_diag_run(none, 300, 1024, &out, &status),
		     TETHER_ERR_NOT_FOUND);
}

Test(diag, main_writes_private_json_file)
{
	char path[] = "/tmp/tether-diag-out-XXXXXX";
	char *argv[] = {"tether-agent", "diag", "--json", "-o", path, NULL};
	json_error_t jerr;
	struct stat st;
	json_t *b;
	int fd;

	fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	fchmod(fd, 0644);
	close(fd);
	cr_assert_eq(agent_diag_main(5, argv), 0);
	cr_assert_eq(stat(path, &st), 0);
	cr_expect_eq(st.st_mode & 0777, 0600);
	b = json_load_file(path, 0, &jerr);
	cr_assert_not_null(b, "%s", jerr.text);
	cr_expect(json_is_object(json_object_get(b, "sections")));
	json_decref(b);
	unlink(path);
}

Test(diag, main_rejects_unknown_options)
{
	char *argv[] = {"tether-agent", "diag", "--frobnicate", NULL};

	cr_expect_eq(agent_diag_main(3, argv), 2);
}
