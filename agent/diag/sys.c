/*
 * Diagnostics collectors for the machine itself: os, uptime, cpu,
 * memory, disks, mounts, packages and time (docs/diagnostics.md).  All
 * read /proc, /etc or kernel calls directly; none starts a program but
 * rpm, which has no file format worth parsing.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/timex.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <tether/alloc.h>
#include <tether/err.h>
#include <tether/num.h>

#include "diag/input.h"
#include "diag/os-release.h"
#include "diag/sys.h"

#define SMALL_FILE (64u * 1024)
#define MOUNTS_FILE (1024u * 1024)
#define MOUNTS_MAX 300
#define DISKS_MAX 200
#define MOUNT_FIELD_MAX 512
#define RPM_TIMEOUT_MS 2000

/* Filesystems without disk space of their own to report. */
static const char *const pseudo_fs[] = {
    "proc",
    "sysfs",
    "cgroup",
    "cgroup2",
    "devpts",
    "devtmpfs",
    "mqueue",
    "debugfs",
    "tracefs",
    "securityfs",
    "pstore",
    "bpf",
    "configfs",
    "fusectl",
    "hugetlbfs",
    "autofs",
    "binfmt_misc",
    "rpc_pipefs",
    "nsfs",
    "efivarfs",
    "selinuxfs",
    "ramfs",
    "fuse.lxcfs",
    "fuse.gvfsd-fuse",
    "fuse.portal",
    /* Read-only images are full by design. */
    "squashfs",
    "iso9660",
    "udf",
};

/* statvfs() on these can hang for as long as the server is away. */
static const char *const network_fs[] = {
    "nfs",	  "nfs4", "cifs",      "smb3", "smbfs",
    "fuse.sshfs", "ceph", "glusterfs", "afs",
};

struct mount_ent {
	char *dev;
	char *dir;
	char *type;
	char *opts;
};

static bool in_list(const char *s, const char *const *list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(s, list[i]) == 0)
			return true;
	return false;
}

/* "0.42" and the like; -1 if it is not a number. */
static double parse_double(const char *s)
{
	double d;

	if (tether_num_parse_double(s, strlen(s), &d) != 0)
		return -1;
	return d;
}

/* The value of "Key:  value" lines (meminfo, cpuinfo), or NULL. */
static const char *find_key(const char *text, const char *key, char *out,
			    size_t outlen)
{
	size_t kl = strlen(key), n;
	const char *p = text, *v, *e;

	while (p != NULL && *p != '\0') {
		if (strncmp(p, key, kl) == 0 &&
		    (p[kl] == ':' || p[kl] == ' ' || p[kl] == '\t')) {
			v = p + kl;
			while (*v == ' ' || *v == '\t' || *v == ':')
				v++;
			e = strchr(v, '\n');
			n = e != NULL ? (size_t)(e - v) : strlen(v);
			if (n >= outlen)
				n = outlen - 1;
			memcpy(out, v, n);
			out[n] = '\0';
			return out;
		}
		p = strchr(p, '\n');
		if (p != NULL)
			p++;
	}
	return NULL;
}

/* "MemTotal:  123 kB" in bytes; false if missing. */
static bool meminfo_bytes(const char *text, const char *key, uint64_t *v)
{
	char buf[64];
	const char *p = find_key(text, key, buf, sizeof(buf));

	if (p == NULL || tether_num_scan_u64(&p, v) != 0)
		return false;
	*v *= 1024;
	return true;
}

void agent_diag_snap_sys(struct agent_diag_snap *s)
{
	uint64_t v, total = 0;
	char *text = NULL;
	const char *p;
	char val[64];
	int i;

	s->ms = agent_diag_now_ms();
	s->cpu_ok = false;
	s->vm_ok = false;
	if (agent_diag_read("/proc/stat", 4096, &text, NULL) == 0 &&
	    strncmp(text, "cpu ", 4) == 0) {
		/* user nice system idle iowait irq softirq steal */
		p = text + 4;
		for (i = 0; i < 8 && tether_num_scan_u64(&p, &v) == 0; i++) {
			total += v;
			if (i == 3 || i == 4)
				s->cpu_idle += v;
		}
		s->cpu_total = total;
		s->cpu_ok = i >= 4;
	}
	tether_free(text);
	text = NULL;
	if (agent_diag_read("/proc/vmstat", SMALL_FILE, &text, NULL) == 0) {
		/* "pswpin 12": find_key takes "key value" too. */
		if (find_key(text, "pswpin", val, sizeof(val)) != NULL) {
			p = val;
			s->vm_ok = tether_num_scan_u64(&p, &s->pswpin) == 0;
		}
		if (find_key(text, "pswpout", val, sizeof(val)) != NULL) {
			p = val;
			s->vm_ok = s->vm_ok &&
				   tether_num_scan_u64(&p, &s->pswpout) == 0;
		}
	}
	tether_free(text);
}

/* KEY=value of an os-release text into o as name. */
static void os_release_key(json_t *o, const char *text, const char *key,
			   const char *name)
{
	size_t kl = strlen(key), n;
	const char *line, *next;
	char v[256];

	for (line = text; line != NULL && *line != '\0'; line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			next++;
		if (strncmp(line, key, kl) != 0 || line[kl] != '=')
			continue;
		n = next != NULL ? (size_t)(next - 1 - (line + kl + 1))
				 : strlen(line + kl + 1);
		if (n >= sizeof(v))
			n = sizeof(v) - 1;
		memcpy(v, line + kl + 1, n);
		v[n] = '\0';
		agent_os_release_unquote(v);
		json_object_set_new(o, name, agent_diag_str(v, sizeof(v)));
	}
}

json_t *agent_diag_os(void)
{
	const char *path = "/etc/os-release";
	char *text = NULL;
	struct utsname u;
	json_t *o, *e;
	int r;

	o = json_pack("{s:n,s:n,s:n}", "pretty_name", "id", "version_id");
	if (o == NULL)
		return NULL;
	r = agent_diag_read(path, SMALL_FILE, &text, NULL);
	if (r == -ENOENT) {
		path = "/usr/lib/os-release";
		r = agent_diag_read(path, SMALL_FILE, &text, NULL);
	}
	if (r == 0) {
		os_release_key(o, text, "PRETTY_NAME", "pretty_name");
		os_release_key(o, text, "ID", "id");
		os_release_key(o, text, "VERSION_ID", "version_id");
	} else {
		e = agent_diag_errno(-r, path);
		json_object_set_new(
		    o, "errors", json_pack("[O]", json_object_get(e, "error")));
		json_decref(e);
	}
	tether_free(text);
	if (uname(&u) == 0) {
		json_object_set_new(o, "kernel",
				    agent_diag_str(u.release, 256));
		json_object_set_new(o, "kernel_version",
				    agent_diag_str(u.version, 256));
		json_object_set_new(o, "arch", agent_diag_str(u.machine, 64));
		json_object_set_new(o, "hostname",
				    agent_diag_str(u.nodename, 256));
	}
	return o;
}

json_t *agent_diag_uptime(void)
{
	char *text = NULL, boot[32];
	const char *p;
	uint64_t secs;
	int r;

	r = agent_diag_read("/proc/uptime", 256, &text, NULL);
	if (r != 0)
		return agent_diag_errno(-r, "/proc/uptime");
	p = text;
	if (tether_num_scan_u64(&p, &secs) != 0) {
		tether_free(text);
		return agent_diag_error("malformed /proc/uptime");
	}
	tether_free(text);
	agent_diag_iso_time(time(NULL) - (time_t)secs, boot, sizeof(boot));
	return json_pack("{s:I,s:s}", "seconds", (json_int_t)secs, "boot_time",
			 boot);
}

/* To one decimal, for percentages (never negative here). */
static double round1(double v)
{
	return (double)(long long)(v * 10.0 + 0.5) / 10.0;
}

/* The CPU model: x86 "model name", else what ARM and others call it. */
static json_t *cpu_model(json_t *errors)
{
	static const char *const keys[] = {"model name", "Model", "Hardware",
					   "cpu model",	 "cpu",	  "Processor"};
	char *text = NULL, val[256];
	json_t *e;
	size_t i;
	int r;

	r = agent_diag_read("/proc/cpuinfo", 16384, &text, NULL);
	if (r != 0) {
		e = agent_diag_errno(-r, "/proc/cpuinfo");
		json_array_append(errors, json_object_get(e, "error"));
		json_decref(e);
		return json_null();
	}
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (find_key(text, keys[i], val, sizeof(val)) != NULL) {
			tether_free(text);
			return agent_diag_str(val, sizeof(val));
		}
	}
	tether_free(text);
	return json_null();
}

json_t *agent_diag_cpu(const struct agent_diag_snap *a,
		       const struct agent_diag_snap *b)
{
	json_t *o, *errors = json_array(), *usage = json_null();
	char *text = NULL, *f[3];
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	uint64_t dt, di;
	int r;

	r = agent_diag_read("/proc/loadavg", 256, &text, NULL);
	if (r != 0) {
		json_decref(errors);
		json_decref(usage);
		return agent_diag_errno(-r, "/proc/loadavg");
	}
	if (agent_diag_fields(text, f, 3) != 3) {
		tether_free(text);
		json_decref(errors);
		json_decref(usage);
		return agent_diag_error("malformed /proc/loadavg");
	}
	if (a->cpu_ok && b->cpu_ok && b->cpu_total > a->cpu_total) {
		dt = b->cpu_total - a->cpu_total;
		di = b->cpu_idle >= a->cpu_idle ? b->cpu_idle - a->cpu_idle : 0;
		if (di > dt)
			di = dt;
		json_decref(usage);
		usage =
		    json_real(round1(100.0 * (double)(dt - di) / (double)dt));
	} else if (!a->cpu_ok || !b->cpu_ok) {
		json_array_append_new(errors,
				      json_string("cannot read /proc/stat"));
	}
	o = json_pack("{s:o,s:I,s:[fff],s:o,s:I}", "model", cpu_model(errors),
		      "count", (json_int_t)(n > 0 ? n : 0), "load",
		      parse_double(f[0]), parse_double(f[1]),
		      parse_double(f[2]), "usage_pct", usage, "sample_ms",
		      (json_int_t)(b->ms - a->ms));
	tether_free(text);
	if (o != NULL && json_array_size(errors) > 0)
		json_object_set(o, "errors", errors);
	json_decref(errors);
	return o;
}

json_t *agent_diag_memory(const struct agent_diag_snap *a,
			  const struct agent_diag_snap *b)
{
	uint64_t total, avail, free_, buffers, cached, stotal = 0, sfree = 0;
	char *text = NULL;
	json_t *o;
	int r;

	r = agent_diag_read("/proc/meminfo", SMALL_FILE, &text, NULL);
	if (r != 0)
		return agent_diag_errno(-r, "/proc/meminfo");
	if (!meminfo_bytes(text, "MemTotal", &total) || total == 0) {
		tether_free(text);
		return agent_diag_error("malformed /proc/meminfo");
	}
	/* Kernels before 3.14 have no MemAvailable: estimate it. */
	if (!meminfo_bytes(text, "MemAvailable", &avail)) {
		avail = 0;
		if (meminfo_bytes(text, "MemFree", &free_))
			avail += free_;
		if (meminfo_bytes(text, "Buffers", &buffers))
			avail += buffers;
		if (meminfo_bytes(text, "Cached", &cached))
			avail += cached;
	}
	if (avail > total)
		avail = total;
	meminfo_bytes(text, "SwapTotal", &stotal);
	meminfo_bytes(text, "SwapFree", &sfree);
	if (sfree > stotal)
		sfree = stotal;
	tether_free(text);
	o = json_pack("{s:I,s:I,s:I,s:f,s:I,s:I}", "total", (json_int_t)total,
		      "available", (json_int_t)avail, "used",
		      (json_int_t)(total - avail), "available_pct",
		      round1(100.0 * (double)avail / (double)total),
		      "swap_total", (json_int_t)stotal, "swap_used",
		      (json_int_t)(stotal - sfree));
	if (o == NULL)
		return NULL;
	if (a->vm_ok && b->vm_ok) {
		json_object_set_new(
		    o, "swap_in_pages",
		    json_integer((json_int_t)(b->pswpin - a->pswpin)));
		json_object_set_new(
		    o, "swap_out_pages",
		    json_integer((json_int_t)(b->pswpout - a->pswpout)));
	} else {
		json_object_set_new(o, "swap_in_pages", json_null());
		json_object_set_new(o, "swap_out_pages", json_null());
		json_object_set_new(
		    o, "errors", json_pack("[s]", "cannot read /proc/vmstat"));
	}
	json_object_set_new(o, "sample_ms",
			    json_integer((json_int_t)(b->ms - a->ms)));
	return o;
}

/* Undoes the octal escapes of /proc/self/mounts (\040 for a space). */
static void unescape(char *s)
{
	size_t i = 0, j = 0;

	while (s[i] != '\0') {
		if (s[i] == '\\' && s[i + 1] >= '0' && s[i + 1] <= '3' &&
		    s[i + 2] >= '0' && s[i + 2] <= '7' && s[i + 3] >= '0' &&
		    s[i + 3] <= '7') {
			s[j++] =
			    (char)((s[i + 1] - '0') * 64 +
				   (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
			i += 4;
		} else {
			s[j++] = s[i++];
		}
	}
	s[j] = '\0';
}

/*
 * The mount table, split in place in *text (freed by the caller): an
 * array of entries; 0, or a negative errno with nothing left to free.
 */
static int read_mounts(char **text, struct mount_ent **out, size_t *n)
{
	struct mount_ent *m;
	char *line, *next, *f[4];
	size_t cap = 64;
	int r;

	*out = NULL;
	*n = 0;
	r = agent_diag_read("/proc/self/mounts", MOUNTS_FILE, text, NULL);
	if (r != 0)
		return r;
	m = tether_calloc(cap, sizeof(*m));
	if (m == NULL) {
		tether_free(*text);
		*text = NULL;
		return -ENOMEM;
	}
	for (line = *text; line != NULL && *line != '\0'; line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		if (agent_diag_fields(line, f, 4) != 4)
			continue;
		if (*n == cap) {
			struct mount_ent *nm;

			nm = tether_reallocarray(m, cap * 2, sizeof(*m));
			if (nm == NULL)
				break;
			m = nm;
			cap *= 2;
		}
		unescape(f[0]);
		unescape(f[1]);
		m[*n].dev = f[0];
		m[*n].dir = f[1];
		m[*n].type = f[2];
		m[*n].opts = f[3];
		(*n)++;
	}
	*out = m;
	return 0;
}

/* Rounded up, as df does: 90.1 % used is 91 %. */
static json_int_t pct_up(uint64_t part, uint64_t whole)
{
	if (whole == 0)
		return 0;
	return (json_int_t)((part * 100 + whole - 1) / whole);
}

static bool has_option(const char *opts, const char *opt)
{
	size_t n = strlen(opt);
	const char *p = opts;

	while (p != NULL) {
		if (strncmp(p, opt, n) == 0 && (p[n] == ',' || p[n] == '\0'))
			return true;
		p = strchr(p, ',');
		if (p != NULL)
			p++;
	}
	return false;
}

/* One filesystem, or NULL if it is not worth a line (a duplicate). */
static json_t *disk_entry(const struct mount_ent *m, dev_t *seen, size_t *nseen)
{
	struct statvfs sv;
	struct stat st;
	uint64_t size, avail, freeb, used;
	json_t *o;
	size_t i;

	if (in_list(m->type, network_fs,
		    sizeof(network_fs) / sizeof(network_fs[0])))
		return json_pack("{s:o,s:o,s:s,s:b}", "mountpoint",
				 agent_diag_str(m->dir, MOUNT_FIELD_MAX),
				 "device",
				 agent_diag_str(m->dev, MOUNT_FIELD_MAX),
				 "fstype", m->type, "network", 1);
	/* Bind mounts show one filesystem many times: once is enough. */
	if (stat(m->dir, &st) != 0)
		return NULL;
	for (i = 0; i < *nseen; i++)
		if (seen[i] == st.st_dev)
			return NULL;
	seen[(*nseen)++] = st.st_dev;
	if (statvfs(m->dir, &sv) != 0 || sv.f_blocks == 0)
		return NULL;
	size = (uint64_t)sv.f_blocks * sv.f_frsize;
	avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	freeb = (uint64_t)sv.f_bfree * sv.f_frsize;
	used = size >= freeb ? size - freeb : 0;
	o = json_pack("{s:o,s:o,s:o,s:I,s:I,s:I,s:I}", "mountpoint",
		      agent_diag_str(m->dir, MOUNT_FIELD_MAX), "device",
		      agent_diag_str(m->dev, MOUNT_FIELD_MAX), "fstype",
		      agent_diag_str(m->type, 64), "size", (json_int_t)size,
		      "used", (json_int_t)used, "avail", (json_int_t)avail,
		      "use_pct", pct_up(used, used + avail));
	if (o == NULL)
		return NULL;
	if (sv.f_files > 0)
		json_object_set_new(
		    o, "inodes_use_pct",
		    json_integer(pct_up(sv.f_files - sv.f_ffree, sv.f_files)));
	else
		json_object_set_new(o, "inodes_use_pct", json_null());
	if (strcmp(m->type, "tmpfs") == 0)
		json_object_set_new(o, "tmpfs", json_true());
	if (has_option(m->opts, "ro"))
		json_object_set_new(o, "readonly", json_true());
	return o;
}

json_t *agent_diag_disks(void)
{
	struct mount_ent *m = NULL;
	json_t *list, *e;
	char *text = NULL;
	dev_t *seen = NULL;
	size_t n, i, nseen = 0;
	int r;

	r = read_mounts(&text, &m, &n);
	if (r != 0)
		return agent_diag_errno(-r, "/proc/self/mounts");
	list = json_array();
	seen = tether_calloc(n + 1, sizeof(*seen));
	if (list == NULL || seen == NULL)
		goto out;
	for (i = 0; i < n && json_array_size(list) < DISKS_MAX; i++) {
		if (in_list(m[i].type, pseudo_fs,
			    sizeof(pseudo_fs) / sizeof(pseudo_fs[0])))
			continue;
		e = disk_entry(&m[i], seen, &nseen);
		if (e != NULL)
			json_array_append_new(list, e);
	}
out:
	tether_free(seen);
	tether_free(m);
	tether_free(text);
	if (list == NULL)
		return NULL;
	return json_pack("{s:o}", "filesystems", list);
}

json_t *agent_diag_mounts(void)
{
	struct mount_ent *m = NULL;
	char *text = NULL;
	json_t *list, *o;
	size_t n, i;
	int r;

	r = read_mounts(&text, &m, &n);
	if (r != 0)
		return agent_diag_errno(-r, "/proc/self/mounts");
	list = json_array();
	for (i = 0; list != NULL && i < n && i < MOUNTS_MAX; i++)
		json_array_append_new(
		    list,
		    json_pack(
			"{s:o,s:o,s:o,s:o}", "device",
			agent_diag_str(m[i].dev, MOUNT_FIELD_MAX), "mountpoint",
			agent_diag_str(m[i].dir, MOUNT_FIELD_MAX), "fstype",
			agent_diag_str(m[i].type, 64), "options",
			agent_diag_str(m[i].opts, MOUNT_FIELD_MAX)));
	o = list != NULL
		? json_pack("{s:o,s:I}", "mounts", list, "truncated",
			    (json_int_t)(n > MOUNTS_MAX ? n - MOUNTS_MAX : 0))
		: NULL;
	tether_free(m);
	tether_free(text);
	return o;
}

/* Installed packages in dpkg's status file, read a line at a time. */
static json_t *dpkg_count(void)
{
	static const char want[] = "Status: install ok installed";
	const char *path = "/var/lib/dpkg/status";
	char pbuf[PATH_MAX], *line = NULL;
	size_t cap = 0;
	json_int_t n = 0;
	ssize_t len;
	FILE *fp;

	fp = fopen(agent_diag_path(path, pbuf, sizeof(pbuf)), "re");
	if (fp == NULL)
		return agent_diag_errno(errno, path);
	while ((len = getline(&line, &cap, fp)) > 0) {
		if (line[len - 1] == '\n')
			line[--len] = '\0';
		if (strcmp(line, want) == 0)
			n++;
	}
	/* getline()'s buffer is the C library's own. */
	free(line);
	fclose(fp);
	return json_pack("{s:s,s:I}", "manager", "dpkg", "installed", n);
}

static json_t *rpm_count(void)
{
	char *argv[] = {"rpm", "-qa", "--qf", ".", NULL};
	char *out = NULL;
	int status, r;
	json_t *o;

	r = agent_diag_run(argv, RPM_TIMEOUT_MS, 1024 * 1024, &out, &status);
	if (r == TETHER_ERR_EXPIRED)
		return agent_diag_error("rpm -qa timed out");
	if (r != 0)
		return agent_diag_error("cannot run rpm: %s",
					tether_strerror(r));
	if (status != 0) {
		tether_free(out);
		return agent_diag_error("rpm -qa exited with status %d",
					status);
	}
	o = json_pack("{s:s,s:I}", "manager", "rpm", "installed",
		      (json_int_t)strlen(out));
	tether_free(out);
	return o;
}

json_t *agent_diag_packages(void)
{
	char pbuf[PATH_MAX];

	if (access(agent_diag_path("/var/lib/dpkg/status", pbuf, sizeof(pbuf)),
		   F_OK) == 0)
		return dpkg_count();
	if (access(agent_diag_path("/var/lib/rpm", pbuf, sizeof(pbuf)), F_OK) ==
	    0)
		return rpm_count();
	return agent_diag_error("no dpkg or rpm package database");
}

json_t *agent_diag_time(void)
{
	struct timex tx;
	char now[32];
	double div;
	int state;

	memset(&tx, 0, sizeof(tx));
	/* modes 0 only reads: allowed without privileges. */
	state = ntp_adjtime(&tx);
	if (state < 0)
		return agent_diag_errno(errno, "ntp_adjtime");
	div = (tx.status & STA_NANO) != 0 ? 1000.0 : 1.0;
	agent_diag_iso_time(time(NULL), now, sizeof(now));
	return json_pack("{s:b,s:f,s:I,s:I,s:s}", "synchronised",
			 state != TIME_ERROR && (tx.status & STA_UNSYNC) == 0,
			 "offset_us", (double)tx.offset / div, "maxerror_us",
			 (json_int_t)tx.maxerror, "esterror_us",
			 (json_int_t)tx.esterror, "utc", now);
}
