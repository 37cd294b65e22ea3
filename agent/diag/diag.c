/*
 * tether-agent diag: the diagnostics bundle (docs/diagnostics.md).  This
 * file runs the collection (one sample of activity, then every section
 * from the collectors in sys.c, net.c and proc.c), turns what it found
 * into problems, and prints or writes the result.  Nothing here may fail
 * the collection: what cannot be read becomes {"error": why}.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <tether/alloc.h>
#include <tether/diagview.h>
#include <tether/err.h>

#include "diag/diag.h"
#include "diag/input.h"
#include "diag/net.h"
#include "diag/proc.h"
#include "diag/sys.h"
#include "diag/text.h"

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

	json_array_foreach (json_object_get(disks, "filesystems"), i, fs) {
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
	json_array_foreach (crit, i, p) {
		json_object_set_new((json_t *)p, "severity",
				    json_string("critical"));
		json_array_append((json_t *)all, (json_t *)p);
	}
	json_array_foreach (warn, i, p) {
		json_object_set_new((json_t *)p, "severity",
				    json_string("warning"));
		json_array_append((json_t *)all, (json_t *)p);
	}
out:
	json_decref(crit);
	json_decref(warn);
	return all;
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
	agent_diag_set_deadline(t0 + BUDGET_MS);
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
	agent_diag_set_deadline(0);
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
	return agent_text_usage(AGENT_PROG " diag", usage_text, msg, arg);
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
	tether_free(text);
	json_decref(bundle);
	return r;
}
