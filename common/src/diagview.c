/*
 * The diagnostics summary (tether/diagview.h), one renderer for `tether
 * diag` and `tether-agent diag`.  The bundle comes from a customer's
 * machine, maybe a hostile one, so every string is printed through
 * tether_text_print_clean(), and the summary tolerates any section being
 * missing, of another shape, or {"error": ...}: members are looked up
 * under the names our collector uses and a few others.
 */
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include <tether/alloc.h>
#include <tether/diagview.h>
#include <tether/text.h>

/* How many rows of the long lists the summary shows. */
#define DIAG_TOP_ROWS 5
#define DIAG_LOG_ROWS 5
#define DIAG_PORT_ROWS 20
#define DIAG_IFACE_ROWS 16

/* ---- Reading the bundle: tolerant of other shapes ---- */

/* The first member of obj among names (NULL-terminated) that exists. */
static const json_t *pick(const json_t *obj, const char *const *names)
{
	const json_t *v;

	for (; *names != NULL; names++) {
		v = json_object_get(obj, *names);
		if (v != NULL && !json_is_null(v))
			return v;
	}
	return NULL;
}

#define PICK(obj, ...) pick((obj), (const char *const[]){__VA_ARGS__, NULL})

static const char *pick_str(const json_t *obj, const char *const *names)
{
	return json_string_value(pick(obj, names));
}

#define PICK_STR(obj, ...)                                                     \
	pick_str((obj), (const char *const[]){__VA_ARGS__, NULL})

/* A number member (integer or real); false if there is none. */
static bool pick_num(const json_t *obj, const char *const *names, double *out)
{
	const json_t *v = pick(obj, names);

	if (!json_is_number(v))
		return false;
	*out = json_number_value(v);
	return true;
}

#define PICK_NUM(obj, out, ...)                                                \
	pick_num((obj), (const char *const[]){__VA_ARGS__, NULL}, (out))

/* The list in a section: the section itself, or its first array member. */
static const json_t *section_list(const json_t *sec, const char *const *names)
{
	const json_t *v;

	if (json_is_array(sec))
		return sec;
	v = pick(sec, names);
	return json_is_array(v) ? v : NULL;
}

#define SECTION_LIST(sec, ...)                                                 \
	section_list((sec), (const char *const[]){__VA_ARGS__, NULL})

static const json_t *section(const json_t *bundle, const char *name)
{
	const json_t *s =
	    json_object_get(json_object_get(bundle, "sections"), name);

	/* An unreadable section is listed at the end, not shown empty. */
	if (json_is_object(s) && json_object_get(s, "error") != NULL)
		return NULL;
	return s;
}

static void print_str(FILE *fp, const char *s)
{
	tether_text_print_clean(fp, s != NULL && s[0] != '\0' ? s : "-");
}

static void size_str(double v, char *out, size_t len)
{
	if (v < 0 || !isfinite(v))
		snprintf(out, len, "-");
	else
		tether_text_size((uint64_t)v, out, len);
}

/* A percentage: given as such, or used of total. */
static bool percent(const json_t *o, double *pct, const char *const *given,
		    const char *const *used, const char *const *total)
{
	double u, t;

	if (pick_num(o, given, pct))
		return true;
	if (!pick_num(o, used, &u) || !pick_num(o, total, &t) || t <= 0)
		return false;
	*pct = u * 100 / t;
	return true;
}

static void pct_str(bool known, double pct, char *out, size_t len)
{
	if (known)
		snprintf(out, len, "%.0f%%", pct);
	else
		snprintf(out, len, "-");
}

/* ---- The summary ---- */

static void severity(FILE *fp, bool color, const char *sev)
{
	bool crit = sev != NULL && strcmp(sev, "critical") == 0;

	if (color)
		fputs(crit ? "\033[1;31m" : "\033[33m", fp);
	fputs(crit ? "CRITICAL" : "WARNING ", fp);
	if (color)
		fputs("\033[0m", fp);
}

/* Critical ones first, then the rest, each group in the bundle's order. */
static void print_problems(FILE *fp, bool color, const json_t *bundle)
{
	const json_t *problems = json_object_get(bundle, "problems"), *p;
	int pass;
	size_t i;

	if (json_array_size(problems) == 0) {
		fprintf(fp, "no problems found\n");
		return;
	}
	for (pass = 0; pass < 2; pass++) {
		json_array_foreach (problems, i, p) {
			const char *sev =
			    json_string_value(json_object_get(p, "severity"));
			bool crit = sev != NULL && strcmp(sev, "critical") == 0;

			if (crit != (pass == 0))
				continue;
			severity(fp, color, sev);
			fputs("  ", fp);
			print_str(
			    fp, json_string_value(json_object_get(p, "what")));
			fputc('\n', fp);
		}
	}
}

static void print_uptime(FILE *fp, const json_t *up)
{
	double s;
	unsigned long secs;

	if (!PICK_NUM(up, &s, "seconds", "uptime_s", "uptime_seconds",
		      "uptime") ||
	    s < 0)
		return;
	secs = (unsigned long)s;
	fprintf(fp, "Uptime:    ");
	if (secs >= 86400)
		fprintf(fp, "%lu day%s, ", secs / 86400,
			secs / 86400 == 1 ? "" : "s");
	fprintf(fp, "%lu:%02lu\n", secs / 3600 % 24, secs / 60 % 60);
}

static void print_system(FILE *fp, const json_t *bundle)
{
	const json_t *os = section(bundle, "os");
	const json_t *cpu = section(bundle, "cpu");
	const json_t *load, *lo;
	double n, l1, l5, l15;
	const char *s;

	if (os != NULL) {
		fprintf(fp, "Host:      ");
		print_str(fp, PICK_STR(os, "hostname", "host", "nodename"));
		fputc('\n', fp);
		fprintf(fp, "OS:        ");
		print_str(fp,
			  PICK_STR(os, "pretty_name", "name", "distro", "os"));
		fputc('\n', fp);
		fprintf(fp, "Kernel:    ");
		print_str(fp,
			  PICK_STR(os, "kernel", "release", "kernel_release"));
		s = PICK_STR(os, "arch", "machine", "architecture");
		if (s != NULL) {
			fputc(' ', fp);
			tether_text_print_clean(fp, s);
		}
		fputc('\n', fp);
	}
	print_uptime(fp, section(bundle, "uptime"));
	if (cpu == NULL)
		return;
	fprintf(fp, "CPUs:      ");
	if (PICK_NUM(cpu, &n, "count", "cpus", "online", "ncpu"))
		fprintf(fp, "%.0f", n);
	else
		fputc('-', fp);
	s = PICK_STR(cpu, "model", "model_name");
	if (s != NULL) {
		fputs(" (", fp);
		tether_text_print_clean(fp, s);
		fputc(')', fp);
	}
	load = PICK(cpu, "load", "loadavg", "load_average");
	lo = json_is_object(load) ? load : cpu;
	if (json_array_size(load) >= 3) {
		fprintf(fp, ", load %.2f %.2f %.2f",
			json_number_value(json_array_get(load, 0)),
			json_number_value(json_array_get(load, 1)),
			json_number_value(json_array_get(load, 2)));
	} else if (PICK_NUM(lo, &l1, "load1", "1m", "one") &&
		   PICK_NUM(lo, &l5, "load5", "5m", "five") &&
		   PICK_NUM(lo, &l15, "load15", "15m", "fifteen")) {
		fprintf(fp, ", load %.2f %.2f %.2f", l1, l5, l15);
	}
	if (PICK_NUM(cpu, &n, "usage_pct", "busy_pct"))
		fprintf(fp, ", %.0f%% busy", n);
	fputc('\n', fp);
}

/* Bytes used: given, or total less what is available; -1 if unknown. */
static double used_of(const json_t *m, double total, const char *const *used,
		      const char *const *avail)
{
	double v;

	if (pick_num(m, used, &v))
		return v;
	return pick_num(m, avail, &v) ? total - v : -1;
}

static void print_memory(FILE *fp, const json_t *bundle)
{
	const json_t *m = section(bundle, "memory");
	char used_s[32], total_s[32];
	double total, used;

	if (m == NULL)
		return;
	fprintf(fp, "Memory:    ");
	if (PICK_NUM(m, &total, "total", "total_bytes", "mem_total")) {
		used = used_of(
		    m, total, (const char *const[]){"used", "used_bytes", NULL},
		    (const char *const[]){"available", "available_bytes",
					  "mem_available", NULL});
		size_str(used, used_s, sizeof(used_s));
		size_str(total, total_s, sizeof(total_s));
		fprintf(fp, "%s of %s used", used_s, total_s);
		if (used >= 0 && total > 0)
			fprintf(fp, " (%.0f%%)", used * 100 / total);
	} else {
		fputc('-', fp);
	}
	fputc('\n', fp);
	fprintf(fp, "Swap:      ");
	if (PICK_NUM(m, &total, "swap_total", "swap_total_bytes") &&
	    total > 0) {
		used = used_of(
		    m, total,
		    (const char *const[]){"swap_used", "swap_used_bytes", NULL},
		    (const char *const[]){"swap_free", "swap_free_bytes",
					  NULL});
		size_str(used, used_s, sizeof(used_s));
		size_str(total, total_s, sizeof(total_s));
		fprintf(fp, "%s of %s used", used_s, total_s);
		if (used >= 0)
			fprintf(fp, " (%.0f%%)", used * 100 / total);
	} else {
		fprintf(fp, "none");
	}
	fputc('\n', fp);
}

/*
 * A small text table of at most 6 columns, two spaces between
 * columns; cells are cleaned copies cut at 200 bytes.
 */
#define SUM_COLS 6
#define SUM_CELL 200

struct sum_table {
	size_t ncol;
	size_t nrow;
	size_t cap;
	char (*cells)[SUM_COLS][SUM_CELL];
	bool failed;
};

static char (*sum_row(struct sum_table *t))[SUM_CELL]
{
	char(*cells)[SUM_COLS][SUM_CELL];

	if (t->failed)
		return NULL;
	if (t->nrow == t->cap) {
		cells = tether_reallocarray(t->cells, t->cap * 2 + 8,
					    sizeof(*cells));
		if (cells == NULL) {
			t->failed = true;
			return NULL;
		}
		t->cells = cells;
		t->cap = t->cap * 2 + 8;
	}
	memset(t->cells[t->nrow], 0, sizeof(t->cells[t->nrow]));
	return t->cells[t->nrow++];
}

static void sum_set(char *cell, const char *s)
{
	size_t i;

	snprintf(cell, SUM_CELL, "%s", s != NULL && s[0] != '\0' ? s : "-");
	for (i = 0; cell[i] != '\0'; i++)
		if ((unsigned char)cell[i] < 0x20 || cell[i] == 0x7f)
			cell[i] = '?';
}

/* The header row: t->ncol names. */
static void sum_head(struct sum_table *t, const char *const *head)
{
	char(*row)[SUM_CELL] = sum_row(t);
	size_t i;

	for (i = 0; row != NULL && i < t->ncol; i++)
		sum_set(row[i], head[i]);
}

static void sum_print(FILE *fp, struct sum_table *t)
{
	size_t width[SUM_COLS] = {0}, r, c, w;

	if (t->failed) {
		fputs("  (out of memory)\n", fp);
		tether_free(t->cells);
		t->cells = NULL;
		return;
	}
	for (r = 0; r < t->nrow; r++)
		for (c = 0; c < t->ncol; c++) {
			w = tether_text_width(t->cells[r][c]);
			if (w > width[c])
				width[c] = w;
		}
	for (r = 0; r < t->nrow; r++) {
		fputs("  ", fp);
		for (c = 0; c < t->ncol; c++) {
			fputs(t->cells[r][c], fp);
			if (c + 1 == t->ncol)
				break;
			for (w = tether_text_width(t->cells[r][c]);
			     w < width[c] + 2; w++)
				fputc(' ', fp);
		}
		fputc('\n', fp);
	}
	tether_free(t->cells);
	t->cells = NULL;
}

static void print_disks(FILE *fp, const json_t *bundle)
{
	const json_t *list = SECTION_LIST(section(bundle, "disks"),
					  "filesystems", "disks", "mounts");
	struct sum_table t = {.ncol = 5};
	char(*row)[SUM_CELL];
	char buf[64];
	const char *fstype, *dev;
	const json_t *d;
	double v;
	size_t i;
	bool known;

	if (list == NULL)
		return;
	fprintf(fp, "\nDisks:\n");
	sum_head(&t, (const char *const[]){"MOUNT", "SIZE", "USED", "INODES",
					   "FILESYSTEM"});
	json_array_foreach (list, i, d) {
		row = sum_row(&t);
		if (row == NULL)
			break;
		sum_set(row[0],
			PICK_STR(d, "mount", "mountpoint", "target", "path"));
		if (PICK_NUM(d, &v, "size", "size_bytes", "total",
			     "total_bytes", "bytes"))
			size_str(v, buf, sizeof(buf));
		else
			snprintf(buf, sizeof(buf), "-");
		sum_set(row[1], buf);
		known =
		    percent(d, &v,
			    (const char *const[]){"used_pct", "use_pct",
						  "used_percent", "pct", NULL},
			    (const char *const[]){"used", "used_bytes", NULL},
			    (const char *const[]){"size", "size_bytes", "total",
						  "total_bytes", NULL});
		pct_str(known, v, buf, sizeof(buf));
		sum_set(row[2], buf);
		known =
		    percent(d, &v,
			    (const char *const[]){
				"inodes_use_pct", "inodes_used_pct",
				"inodes_pct", "inode_pct", "iuse_pct", NULL},
			    (const char *const[]){"inodes_used", "iused", NULL},
			    (const char *const[]){"inodes", "inodes_total",
						  "itotal", NULL});
		pct_str(known, v, buf, sizeof(buf));
		sum_set(row[3], buf);
		fstype = PICK_STR(d, "fstype", "type", "fs");
		dev = PICK_STR(d, "device", "source", "dev");
		snprintf(buf, sizeof(buf), "%s %s",
			 fstype != NULL ? fstype : "", dev != NULL ? dev : "");
		sum_set(row[4], buf[0] == ' ' ? buf + 1 : buf);
	}
	sum_print(fp, &t);
}

/* Failed units: strings or objects naming them. */
static void print_failed_units(FILE *fp, const json_t *bundle)
{
	const json_t *sd = section(bundle, "systemd");
	const json_t *list = SECTION_LIST(sd, "failed", "failed_units");
	const json_t *u;
	const char *name;
	size_t i;

	if (sd == NULL)
		return;
	if (json_array_size(list) == 0) {
		fprintf(fp, "\nFailed units: none\n");
		return;
	}
	fprintf(fp, "\nFailed units:\n");
	json_array_foreach (list, i, u) {
		name = json_is_string(u) ? json_string_value(u)
					 : PICK_STR(u, "unit", "name", "id");
		fputs("  ", fp);
		print_str(fp, name);
		fputc('\n', fp);
	}
}

static void print_listening(FILE *fp, const json_t *bundle)
{
	const json_t *list = SECTION_LIST(section(bundle, "listening"),
					  "sockets", "ports", "listening");
	struct sum_table t = {.ncol = 4};
	char(*row)[SUM_CELL];
	char buf[64];
	const json_t *s;
	double port;
	size_t i;

	if (list == NULL)
		return;
	fprintf(fp, "\nListening:\n");
	sum_head(&t,
		 (const char *const[]){"PORT", "PROTO", "ADDRESS", "PROCESS"});
	json_array_foreach (list, i, s) {
		if (i >= DIAG_PORT_ROWS)
			break;
		row = sum_row(&t);
		if (row == NULL)
			break;
		if (PICK_NUM(s, &port, "port"))
			snprintf(buf, sizeof(buf), "%.0f", port);
		else
			snprintf(buf, sizeof(buf), "-");
		sum_set(row[0], buf);
		sum_set(row[1], PICK_STR(s, "proto", "protocol"));
		sum_set(row[2],
			PICK_STR(s, "address", "addr", "local", "host"));
		sum_set(row[3], PICK_STR(s, "process", "program", "comm",
					 "name", "command"));
	}
	sum_print(fp, &t);
	if (json_array_size(list) > DIAG_PORT_ROWS)
		fprintf(fp, "  (%zu more)\n",
			json_array_size(list) - DIAG_PORT_ROWS);
}

/* mem_total: the machine's memory, for a share from RSS; 0 if unknown. */
static void process_rows(FILE *fp, struct sum_table *t, const json_t *list,
			 double mem_total)
{
	char(*row)[SUM_CELL];
	const json_t *p;
	char buf[64];
	double v;
	size_t i;

	json_array_foreach (list, i, p) {
		if (i >= DIAG_TOP_ROWS)
			break;
		row = sum_row(t);
		if (row == NULL)
			return;
		if (PICK_NUM(p, &v, "pid"))
			snprintf(buf, sizeof(buf), "%.0f", v);
		else
			snprintf(buf, sizeof(buf), "-");
		sum_set(row[0], buf);
		sum_set(row[1], PICK_STR(p, "user", "owner"));
		if (PICK_NUM(p, &v, "cpu_pct", "cpu", "pcpu", "cpu_percent"))
			snprintf(buf, sizeof(buf), "%.1f", v);
		else
			snprintf(buf, sizeof(buf), "-");
		sum_set(row[2], buf);
		if (PICK_NUM(p, &v, "mem_pct", "mem", "pmem", "mem_percent"))
			snprintf(buf, sizeof(buf), "%.1f", v);
		else if (mem_total > 0 && PICK_NUM(p, &v, "rss", "rss_bytes"))
			snprintf(buf, sizeof(buf), "%.1f", v * 100 / mem_total);
		else
			snprintf(buf, sizeof(buf), "-");
		sum_set(row[3], buf);
		if (PICK_NUM(p, &v, "rss", "rss_bytes"))
			size_str(v, buf, sizeof(buf));
		else
			snprintf(buf, sizeof(buf), "-");
		sum_set(row[4], buf);
		sum_set(row[5], PICK_STR(p, "command", "comm", "name", "cmd"));
	}
}

/* One table of processes under title; list NULL prints nothing. */
static void process_table(FILE *fp, const char *title, const json_t *list,
			  double mem_total)
{
	static const char *const head[] = {"PID",  "USER", "CPU%",
					   "MEM%", "RSS",  "COMMAND"};
	struct sum_table t = {.ncol = 6};

	if (json_array_size(list) == 0)
		return;
	fprintf(fp, "\n%s:\n", title);
	sum_head(&t, head);
	process_rows(fp, &t, list, mem_total);
	sum_print(fp, &t);
}

static void print_processes(FILE *fp, const json_t *bundle)
{
	const json_t *sec = section(bundle, "processes");
	double mem_total;

	if (!PICK_NUM(section(bundle, "memory"), &mem_total, "total",
		      "total_bytes", "mem_total"))
		mem_total = 0;
	process_table(fp, "Top processes by CPU",
		      SECTION_LIST(sec, "top_cpu", "by_cpu", "top", "list"),
		      mem_total);
	process_table(fp, "Top processes by memory",
		      json_is_object(sec)
			  ? PICK(sec, "top_rss", "top_mem", "by_mem")
			  : NULL,
		      mem_total);
}

/* The last few error lines of the system logs. */
static void print_logs(FILE *fp, const json_t *bundle)
{
	const json_t *sec = section(bundle, "logs");
	const json_t *list =
	    SECTION_LIST(sec, "errors", "recent_errors", "lines", "entries");
	const json_t *e;
	size_t n, i;
	const char *s;

	if (sec == NULL)
		return;
	n = json_array_size(list);
	if (n == 0) {
		fprintf(fp, "\nRecent errors in the logs: none\n");
		return;
	}
	fprintf(fp, "\nRecent errors in the logs:\n");
	for (i = n > DIAG_LOG_ROWS ? n - DIAG_LOG_ROWS : 0; i < n; i++) {
		e = json_array_get(list, i);
		fputs("  ", fp);
		if (json_is_string(e)) {
			print_str(fp, json_string_value(e));
		} else {
			s = PICK_STR(e, "ts", "time", "timestamp");
			if (s != NULL) {
				tether_text_print_clean(fp, s);
				fputc(' ', fp);
			}
			print_str(
			    fp, PICK_STR(e, "message", "line", "text", "msg"));
		}
		fputc('\n', fp);
	}
}

static void print_time(FILE *fp, const json_t *bundle)
{
	const json_t *tm = section(bundle, "time");
	const json_t *sync;
	const char *s;
	double us;

	if (tm == NULL)
		return;
	fprintf(fp, "\nTime:      ");
	sync = PICK(tm, "synchronised", "synchronized", "ntp_synchronized",
		    "synced", "ntp_synced");
	if (json_is_boolean(sync))
		fprintf(fp, "%s",
			json_is_true(sync) ? "synchronized"
					   : "NOT synchronized");
	else
		fprintf(fp, "synchronization unknown");
	s = PICK_STR(tm, "source", "ntp_service", "service");
	if (s != NULL) {
		fputs(" (", fp);
		tether_text_print_clean(fp, s);
		fputc(')', fp);
	}
	if (PICK_NUM(tm, &us, "offset_us"))
		fprintf(fp, ", offset %.1f ms", us / 1000);
	s = PICK_STR(tm, "timezone", "tz");
	if (s != NULL) {
		fputs(", timezone ", fp);
		tether_text_print_clean(fp, s);
	}
	fputc('\n', fp);
}

static void print_packages(FILE *fp, const json_t *bundle)
{
	const json_t *pk = section(bundle, "packages");
	const char *s;
	double n;

	if (!PICK_NUM(pk, &n, "installed", "count"))
		return;
	fprintf(fp, "Packages:  %.0f installed", n);
	s = PICK_STR(pk, "manager");
	if (s != NULL) {
		fputs(" (", fp);
		tether_text_print_clean(fp, s);
		fputc(')', fp);
	}
	fputc('\n', fp);
}

/* Sections that could not be read, with the collector's reason. */
static void print_unavailable(FILE *fp, const json_t *bundle)
{
	const json_t *sections = json_object_get(bundle, "sections");
	const json_t *s, *why;
	const char *name;
	bool header = false;

	json_object_foreach ((json_t *)sections, name, s) {
		why = json_is_object(s) ? json_object_get(s, "error") : NULL;
		if (why == NULL)
			continue;
		if (!header)
			fprintf(fp, "\n");
		header = true;
		fprintf(fp, "unavailable: ");
		tether_text_print_clean(fp, name);
		fputs(": ", fp);
		print_str(fp, json_string_value(why));
		fputc('\n', fp);
	}
}

/* Interfaces with their addresses, the default routes and DNS servers. */
static void print_network(FILE *fp, const json_t *bundle)
{
	const json_t *ifaces =
	    SECTION_LIST(section(bundle, "network"), "interfaces", "links");
	const json_t *routes =
	    SECTION_LIST(section(bundle, "routes"), "routes", "table");
	const json_t *dns =
	    SECTION_LIST(section(bundle, "dns"), "nameservers", "servers");
	const json_t *ifc, *addrs, *addr, *r;
	const char *d;
	size_t i, j;

	if (ifaces == NULL && routes == NULL && dns == NULL)
		return;
	fprintf(fp, "\nNetwork:\n");
	json_array_foreach (ifaces, i, ifc) {
		if (i >= DIAG_IFACE_ROWS)
			break;
		fputs("  ", fp);
		print_str(fp, PICK_STR(ifc, "name", "ifname"));
		fputc(' ', fp);
		print_str(fp, PICK_STR(ifc, "state", "operstate"));
		addrs = PICK(ifc, "addresses", "addrs");
		json_array_foreach (addrs, j, addr) {
			fputc(' ', fp);
			print_str(fp, json_is_string(addr)
					  ? json_string_value(addr)
					  : PICK_STR(addr, "address", "addr"));
		}
		fputc('\n', fp);
	}
	json_array_foreach (routes, i, r) {
		d = PICK_STR(r, "destination", "dst");
		if (d == NULL ||
		    (strcmp(d, "0.0.0.0/0") != 0 && strcmp(d, "::/0") != 0 &&
		     strcmp(d, "default") != 0))
			continue;
		fputs("  default via ", fp);
		print_str(fp, PICK_STR(r, "gateway", "via"));
		fputs(" dev ", fp);
		print_str(fp, PICK_STR(r, "iface", "dev", "interface"));
		fputc('\n', fp);
	}
	if (json_array_size(dns) > 0) {
		fputs("  DNS", fp);
		json_array_foreach (dns, i, r) {
			fputc(' ', fp);
			print_str(fp, json_string_value(r));
		}
		fputc('\n', fp);
	}
}

void tether_diagview_print(FILE *fp, const json_t *bundle,
			   const struct tether_diagview_opts *o)
{
	const char *at =
	    json_string_value(json_object_get(bundle, "collected_at"));
	bool color = o != NULL && o->color;
	double ms;

	print_problems(fp, color, bundle);
	fprintf(fp, "\nDiagnostics of ");
	print_str(fp, o != NULL && o->subject != NULL ? o->subject
						      : "this machine");
	fprintf(fp, ", collected ");
	print_str(fp, at);
	if (PICK_NUM(bundle, &ms, "duration_ms"))
		fprintf(fp, " in %.1f s", ms / 1000);
	if (o != NULL && o->saved_at != NULL) {
		fputs("; saved ", fp);
		tether_text_print_clean(fp, o->saved_at);
		if (o->source != NULL) {
			fputs(" by ", fp);
			tether_text_print_clean(fp, o->source);
		}
	}
	fprintf(fp, "\n\n");
	print_system(fp, bundle);
	print_memory(fp, bundle);
	print_disks(fp, bundle);
	print_network(fp, bundle);
	print_failed_units(fp, bundle);
	print_listening(fp, bundle);
	print_processes(fp, bundle);
	print_logs(fp, bundle);
	print_time(fp, bundle);
	print_packages(fp, bundle);
	print_unavailable(fp, bundle);
}
