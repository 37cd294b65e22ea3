/*
 * End-to-end tests of `tether put` and `tether get` (docs/cli.md,
 * docs/protocol.md "File transfer") with the real programs on loopback.
 * The agent runs on this machine, so its side of every transfer is a
 * directory in the test's scratch directory that the test reads directly.
 *
 * Covered: round trips of empty, tiny, random and compressible files and
 * of a tree (contents by SHA-256, modes, mtimes, symlinks, odd names),
 * globs, resuming after the relay died mid-transfer, corruption caught by
 * the SHA-256 check (test hook), the agent's write and read policy and
 * the receiver's refusal to follow symlinks, a full disk, the audit trail
 * and what the customer is told, and what the console prints (--json, -q,
 * nothing without a terminal, progress and a summary on one).
 *
 * TETHER_E2E_BIG_MIB sets the size of the big files (default 300 MiB,
 * the size of a real support case's disk image or log bundle).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <regex.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <jansson.h>

#include "harness.h"

#define MIB (1024ull * 1024)
/* About 15 s there and back, in a plain build and under ASan alike. */
#define BIG_MIB_DEFAULT 300
/* Room for one transfer of the big file, sanitizers included. */
#define BIG_MS 240000
#define COMPRESSIBLE_SIZE (64 * MIB)
/* The resume test cuts the relay once this much has arrived. */
#define RESUME_CUT (32 * MIB)
/* How long the agent may take to come back after a relay restart. */
#define RECONNECT_MS 30000
#define AUDIT_MS 5000
/* The source mtime of every test file: a fixed time with nanoseconds. */
#define MTIME_SEC 1600000000
#define MTIME_NSEC 123456789L
/* The one BLOCK of slack a resume may re-send (TETHER_XFER_BLOCK). */
#define BLOCK_SLACK (192 * 1024)

static char mnt[H_PATH_MAX]; /* a tmpfs mounted by the test, or "" */
static struct h_tmux tmux;   /* the terminal of progress_on_terminal */

static void fini(void)
{
	h_tmux_stop(&tmux);
	if (mnt[0]) {
		umount2(mnt, MNT_DETACH);
		mnt[0] = '\0';
	}
	h_teardown();
}

TestSuite(file, .init = h_setup, .fini = fini);

/* ---- Scratch files ------------------------------------------------------ */

/* DIR/rel in buf (h_path, which asserts that it fits). */
static const char *sp(char *buf, size_t len, const char *rel)
{
	return h_path(buf, len, rel);
}

static void mkd(const char *rel, mode_t mode)
{
	char p[H_PATH_MAX];

	sp(p, sizeof(p), rel);
	cr_assert(mkdir(p, 0700) == 0, "mkdir %s: %s", p, strerror(errno));
	cr_assert(chmod(p, mode) == 0, "chmod %s: %s", p, strerror(errno));
}

static void set_time(const char *path, time_t sec, long nsec)
{
	struct timespec ts[2] = {{sec, nsec}, {sec, nsec}};

	cr_assert(utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) == 0,
		  "utimensat %s: %s", path, strerror(errno));
}

/* Writes len bytes of data to DIR/rel with mode and the test mtime. */
static void mkfile(const char *rel, const void *data, size_t len, mode_t mode)
{
	char p[H_PATH_MAX];
	int fd;

	sp(p, sizeof(p), rel);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	cr_assert(fd >= 0, "create %s: %s", p, strerror(errno));
	cr_assert(write(fd, data, len) == (ssize_t)len, "write %s: %s", p,
		  strerror(errno));
	cr_assert(close(fd) == 0, "close %s", p);
	cr_assert(chmod(p, mode) == 0, "chmod %s: %s", p, strerror(errno));
	set_time(p, MTIME_SEC, MTIME_NSEC);
}

static void mktext(const char *rel, const char *text, mode_t mode)
{
	mkfile(rel, text, strlen(text), mode);
}

/* size random bytes in DIR/rel with mode and the test mtime. */
static void mkrandom(const char *rel, uint64_t size, mode_t mode)
{
	char p[H_PATH_MAX];

	sp(p, sizeof(p), rel);
	h_write_random(p, (size_t)size);
	cr_assert(chmod(p, mode) == 0, "chmod %s: %s", p, strerror(errno));
	set_time(p, MTIME_SEC, MTIME_NSEC);
}

/* size bytes of one log line over and over: deflate shrinks it a lot. */
static void mkcompressible(const char *rel, uint64_t size)
{
	static const char line[] =
	    "2026-11-23T12:00:00Z tether-agent[4242]: printer queue "
	    "lp0 is stuck, retrying job 17 in 5 s\n";
	static char chunk[1 << 20];
	char p[H_PATH_MAX];
	size_t off = 0;
	int fd;

	while (off < sizeof(chunk)) {
		size_t n = sizeof(line) - 1;

		if (n > sizeof(chunk) - off)
			n = sizeof(chunk) - off;
		memcpy(chunk + off, line, n);
		off += n;
	}
	sp(p, sizeof(p), rel);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	cr_assert(fd >= 0, "create %s: %s", p, strerror(errno));
	for (uint64_t done = 0; done < size;) {
		size_t n = size - done < sizeof(chunk) ? (size_t)(size - done)
						       : sizeof(chunk);

		cr_assert(write(fd, chunk, n) == (ssize_t)n, "write %s: %s", p,
			  strerror(errno));
		done += n;
	}
	cr_assert(close(fd) == 0, "close %s", p);
	cr_assert(chmod(p, 0644) == 0, "chmod %s", p);
	set_time(p, MTIME_SEC, MTIME_NSEC);
}

static void mklink(const char *target, const char *rel)
{
	char p[H_PATH_MAX];

	sp(p, sizeof(p), rel);
	cr_assert(symlink(target, p) == 0, "symlink %s -> %s: %s", p, target,
		  strerror(errno));
}

static bool exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int not_dots(const struct dirent *e)
{
	return strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
}

/* The entries of dir sorted by name (-1 if unreadable); free_names(). */
static int names(const char *dir, struct dirent ***out)
{
	return scandir(dir, out, not_dots, by_name);
}

static void free_names(struct dirent **v, int n)
{
	for (int i = 0; i < n; i++)
		free(v[i]);
	if (n >= 0)
		free(v);
}

/*
 * The names in a directory, sorted, one per line ("\n" in a name written
 * as a backslash and n); "(missing)" if it cannot be read.  Caller frees.
 */
static char *listing(const char *dir)
{
	struct dirent **v = NULL;
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	int n = names(dir, &v);

	cr_assert(f, "open_memstream");
	if (n < 0)
		fputs("(missing)", f);
	for (int i = 0; i < n; i++) {
		for (const char *c = v[i]->d_name; *c; c++) {
			if (*c == '\n')
				fputs("\\n", f);
			else
				fputc(*c, f);
		}
		fputc('\n', f);
	}
	free_names(v, n);
	fclose(f);
	return out;
}

/* Asserts that DIR/rel holds exactly these names (sorted, "\n" each). */
static void expect_listing(const char *rel, const char *want, const char *what)
{
	char p[H_PATH_MAX];
	char *got;

	sp(p, sizeof(p), rel);
	got = listing(p);
	cr_assert_str_eq(got, want, "%s: %s holds\n%s\nexpected\n%s", what, p,
			 got, want);
	free(got);
}

/* A leftover .NAME.<16 hex>.tether-part in dir, into out; false if none. */
static bool find_part(const char *dir, const char *name, char *out, size_t len)
{
	char pat[H_PATH_MAX];
	struct dirent *e;
	bool found = false;
	DIR *d;

	snprintf(pat, sizeof(pat), ".%s.*.tether-part", name);
	d = opendir(dir);
	if (!d)
		return false;
	while (!found && (e = readdir(d)) != NULL) {
		if (fnmatch(pat, e->d_name, FNM_PERIOD) == 0) {
			int n = snprintf(out, len, "%s/%s", dir, e->d_name);

			cr_assert(n > 0 && (size_t)n < len, "path too long");
			found = true;
		}
	}
	closedir(d);
	return found;
}

/* Asserts that no *.tether-part is anywhere below dir. */
static void no_parts_below(const char *dir, const char *what)
{
	struct dirent *e;
	char p[2 * H_PATH_MAX];
	struct stat st;
	DIR *d = opendir(dir);

	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		cr_assert(fnmatch("*.tether-part", e->d_name, 0) != 0,
			  "%s: temporary file %s/%s left behind", what, dir,
			  e->d_name);
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
			no_parts_below(p, what);
	}
	closedir(d);
}

/* ---- Comparing files and trees ----------------------------------------- */

static bool same_time(const struct stat *a, const struct stat *b)
{
	return a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Regular file b is a copy of a: bytes (SHA-256), mode and mtime. */
static void expect_copy(const char *a, const char *b, const char *what)
{
	char ha[65], hb[65];
	struct stat sa, sb;

	cr_assert(lstat(a, &sa) == 0, "%s: %s: %s", what, a, strerror(errno));
	cr_assert(lstat(b, &sb) == 0, "%s: %s did not arrive: %s", what, b,
		  strerror(errno));
	cr_assert(S_ISREG(sb.st_mode),
		  "%s: %s is not a regular file (mode "
		  "%o)",
		  what, b, (unsigned)sb.st_mode);
	cr_assert_eq(sb.st_size, sa.st_size, "%s: %s has %lld bytes, %s %lld",
		     what, b, (long long)sb.st_size, a, (long long)sa.st_size);
	h_sha256_file(a, ha);
	h_sha256_file(b, hb);
	cr_assert_str_eq(hb, ha, "%s: %s differs from %s (SHA-256)", what, b,
			 a);
	cr_assert_eq(sb.st_mode & 07777, sa.st_mode & 07777,
		     "%s: %s has mode %o, %s %o", what, b,
		     (unsigned)(sb.st_mode & 07777), a,
		     (unsigned)(sa.st_mode & 07777));
	cr_assert(same_time(&sa, &sb),
		  "%s: %s has mtime %lld.%09ld, %s %lld.%09ld", what, b,
		  (long long)sb.st_mtim.tv_sec, sb.st_mtim.tv_nsec, a,
		  (long long)sa.st_mtim.tv_sec, sa.st_mtim.tv_nsec);
}

static void expect_entry(const char *a, const char *b, const char *what);

/*
 * The entries of directory b are copies of those of a, walked with
 * lstat: the same names, types, modes, file contents and mtimes, symlink
 * targets.
 */
static void expect_tree(const char *a, const char *b, const char *what)
{
	char *la = listing(a), *lb = listing(b);
	char pa[2 * H_PATH_MAX], pb[2 * H_PATH_MAX];
	struct dirent **v = NULL;
	int n;

	cr_assert_str_eq(lb, la, "%s: %s holds\n%s\nbut %s holds\n%s", what, b,
			 lb, a, la);
	free(la);
	free(lb);
	n = names(a, &v);
	cr_assert(n >= 0, "%s: cannot list %s", what, a);
	for (int i = 0; i < n; i++) {
		snprintf(pa, sizeof(pa), "%s/%s", a, v[i]->d_name);
		snprintf(pb, sizeof(pb), "%s/%s", b, v[i]->d_name);
		expect_entry(pa, pb, what);
	}
	free_names(v, n);
}

static void expect_entry(const char *a, const char *b, const char *what)
{
	char ta[H_PATH_MAX], tb[H_PATH_MAX];
	struct stat sa, sb;
	ssize_t na, nb;

	cr_assert(lstat(a, &sa) == 0, "%s: %s: %s", what, a, strerror(errno));
	cr_assert(lstat(b, &sb) == 0, "%s: %s: %s", what, b, strerror(errno));
	cr_assert_eq(sb.st_mode & S_IFMT, sa.st_mode & S_IFMT,
		     "%s: %s is of type %o, %s of type %o", what, b,
		     (unsigned)(sb.st_mode & S_IFMT), a,
		     (unsigned)(sa.st_mode & S_IFMT));
	if (S_ISREG(sa.st_mode)) {
		expect_copy(a, b, what);
	} else if (S_ISLNK(sa.st_mode)) {
		na = readlink(a, ta, sizeof(ta) - 1);
		nb = readlink(b, tb, sizeof(tb) - 1);
		cr_assert(na >= 0 && nb >= 0, "%s: readlink %s, %s", what, a,
			  b);
		ta[na] = '\0';
		tb[nb] = '\0';
		cr_assert_str_eq(tb, ta,
				 "%s: symlink %s -> \"%s\", %s -> "
				 "\"%s\"",
				 what, b, tb, a, ta);
	} else if (S_ISDIR(sa.st_mode)) {
		cr_assert_eq(sb.st_mode & 07777, sa.st_mode & 07777,
			     "%s: directory %s has mode %o, %s %o", what, b,
			     (unsigned)(sb.st_mode & 07777), a,
			     (unsigned)(sa.st_mode & 07777));
		expect_tree(a, b, what);
		/* The contract asks for file mtimes; say so for directories. */
		if (!same_time(&sa, &sb))
			cr_log_warn("%s: directory %s has mtime %lld, %s %lld",
				    what, b, (long long)sb.st_mtim.tv_sec, a,
				    (long long)sa.st_mtim.tv_sec);
	}
}

/* ---- Sessions and commands ---------------------------------------------- */

/*
 * A relay, a console and an agent joined to a new ticket, with the
 * agent's options.  The agent's home is DIR/home: relative paths and the
 * default write policy stay inside the scratch directory.
 */
static void start(struct h_session *s, const char *title,
		  const struct h_agent_opts *o)
{
	char home[H_PATH_MAX];

	sp(home, sizeof(home), "home");
	if (!exists(home))
		mkd("home", 0700);
	setenv("HOME", home, 1);
	h_session_start_ex(s, title, NULL, o);
}

/* A test that cannot run here: cleaned up first (skips get no .fini). */
static void skip(const char *why)
{
	fini();
	cr_skip_test("%s", why);
}

/* TETHER_E2E_BIG_MIB, else the default, in bytes. */
static uint64_t big_size(void)
{
	const char *v = getenv("TETHER_E2E_BIG_MIB");
	unsigned long mib = BIG_MIB_DEFAULT;
	char *end;

	if (v && *v) {
		errno = 0;
		mib = h_number(v, &end);
		cr_assert(errno == 0 && *end == '\0' && mib > 0 && mib < 65536,
			  "TETHER_E2E_BIG_MIB=%s is not a size in MiB", v);
	}
	return mib * MIB;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* ---- The --json summary ------------------------------------------------- */

static const char *const summary_keys[] = {
    "ticket", "direction", "ok",      "files",	  "bytes",
    "sent",   "wire",	   "seconds", "failures",
};
static const char *const file_keys[] = {
    "path", "local", "type", "size", "sha256", "offset",
    "sent", "wire",  "ms",   "ok",   "reason",
};

static json_int_t jint(json_t *obj, const char *key, const char *text)
{
	json_t *v = json_object_get(obj, key);

	cr_assert(json_is_integer(v), "--json: \"%s\" is not an integer: %s",
		  key, text);
	return json_integer_value(v);
}

static const char *jstr(json_t *obj, const char *key, const char *text)
{
	const char *v = json_string_value(json_object_get(obj, key));

	cr_assert(v, "--json: \"%s\" is not a string: %s", key, text);
	return v;
}

static bool jtrue(json_t *obj, const char *key, const char *text)
{
	json_t *v = json_object_get(obj, key);

	cr_assert(json_is_boolean(v), "--json: \"%s\" is not a boolean: %s",
		  key, text);
	return json_is_true(v);
}

/*
 * Parses the summary of a put or get and checks that it has every
 * documented field, of the documented type where it is always the same.
 * The caller decrefs.
 */
static json_t *summary(const struct h_res *res, const char *ticket,
		       const char *direction)
{
	json_error_t jerr;
	json_t *j, *files, *f;
	size_t i;

	j = json_loads(res->out, 0, &jerr);
	cr_assert(json_is_object(j),
		  "--json: not a JSON object (%s): %s\n"
		  "stderr: %s",
		  jerr.text, res->out, res->err);
	for (i = 0; i < sizeof(summary_keys) / sizeof(summary_keys[0]); i++)
		cr_assert(json_object_get(j, summary_keys[i]),
			  "--json: no \"%s\": %s", summary_keys[i], res->out);
	cr_assert_str_eq(jstr(j, "ticket", res->out), ticket,
			 "--json ticket: %s", res->out);
	cr_assert_str_eq(jstr(j, "direction", res->out), direction,
			 "--json direction: %s", res->out);
	jint(j, "bytes", res->out);
	jint(j, "sent", res->out);
	jint(j, "wire", res->out);
	jint(j, "failures", res->out);
	cr_assert(json_is_number(json_object_get(j, "seconds")),
		  "--json: \"seconds\" is not a number: %s", res->out);
	files = json_object_get(j, "files");
	cr_assert(json_is_array(files),
		  "--json: \"files\" is not an array: "
		  "%s",
		  res->out);
	json_array_foreach (files, i, f) {
		cr_assert(json_is_object(f), "--json: files[%zu]: %s", i,
			  res->out);
		for (size_t k = 0; k < sizeof(file_keys) / sizeof(file_keys[0]);
		     k++)
			cr_assert(json_object_get(f, file_keys[k]),
				  "--json: files[%zu] has no \"%s\": %s", i,
				  file_keys[k], res->out);
		jstr(f, "path", res->out);
		jstr(f, "local", res->out);
		jstr(f, "type", res->out);
		if (jtrue(f, "ok", res->out))
			cr_assert_str_eq(jstr(f, "reason", res->out), "",
					 "--json: files[%zu] is ok with a "
					 "reason: %s",
					 i, res->out);
		else
			cr_assert_str_eq(jstr(f, "sha256", res->out), "",
					 "--json: files[%zu] failed with a "
					 "sha256: %s",
					 i, res->out);
	}
	cr_assert_eq(jtrue(j, "ok", res->out),
		     jint(j, "failures", res->out) == 0,
		     "--json: ok is not failures == 0: %s", res->out);
	return j;
}

/* Does entry path p name name (itself, or a path ending in /name)? */
static bool path_is(const char *p, const char *name)
{
	size_t lp = strlen(p), ln = strlen(name);

	return !strcmp(p, name) ||
	       (lp > ln && p[lp - ln - 1] == '/' && !strcmp(p + lp - ln, name));
}

/* The files[] entry for name; asserts there is one. */
static json_t *entry(json_t *j, const char *name, const char *text)
{
	json_t *f;
	size_t i;

	json_array_foreach (json_object_get(j, "files"), i, f) {
		const char *p = json_string_value(json_object_get(f, "path"));

		if (p && path_is(p, name))
			return f;
	}
	cr_assert_fail("--json: no entry for \"%s\": %s", name, text);
	return NULL;
}

/* Number of files[] entries of type type. */
static size_t count_type(json_t *j, const char *type)
{
	size_t i, n = 0;
	json_t *f;

	json_array_foreach (json_object_get(j, "files"), i, f) {
		const char *t = json_string_value(json_object_get(f, "type"));

		if (t && !strcmp(t, type))
			n++;
	}
	return n;
}

/*
 * A file entry that arrived whole from the start: verified with the
 * SHA-256 of local path src, all of size sent, on the wire at most 1%
 * more than sent (less when it compressed).
 */
static void expect_file_entry(json_t *j, const char *name, const char *src,
			      const char *text)
{
	json_t *f = entry(j, name, text);
	struct stat st;
	char hex[65];
	json_int_t size, sent, wire;

	cr_assert(stat(src, &st) == 0, "%s: %s", src, strerror(errno));
	h_sha256_file(src, hex);
	cr_assert_str_eq(jstr(f, "type", text), "file", "%s: type: %s", name,
			 text);
	cr_assert(jtrue(f, "ok", text), "%s: not ok: %s", name, text);
	size = jint(f, "size", text);
	cr_assert_eq(size, (json_int_t)st.st_size,
		     "%s: size %lld, file has "
		     "%lld: %s",
		     name, (long long)size, (long long)st.st_size, text);
	cr_assert_str_eq(jstr(f, "sha256", text), hex, "%s: sha256: %s", name,
			 text);
	cr_assert_eq(jint(f, "offset", text), 0, "%s: offset: %s", name, text);
	sent = jint(f, "sent", text);
	cr_assert_eq(sent, size, "%s: sent %lld of %lld: %s", name,
		     (long long)sent, (long long)size, text);
	wire = jint(f, "wire", text);
	cr_assert(wire <= sent + sent / 100 + 64,
		  "%s: %lld bytes on the wire for %lld sent: %s", name,
		  (long long)wire, (long long)sent, text);
	cr_assert(jint(f, "ms", text) >= 0, "%s: ms: %s", name, text);
}

/* Asserts the summary as a whole succeeded with n entries. */
static void expect_ok(json_t *j, size_t n, const char *text)
{
	cr_assert(jtrue(j, "ok", text), "--json: not ok: %s", text);
	cr_assert_eq(jint(j, "failures", text), 0, "--json failures: %s", text);
	cr_assert_eq(json_array_size(json_object_get(j, "files")), n,
		     "--json: expected %zu entries: %s", n, text);
}

/* ---- Round trips ------------------------------------------------------- */

/*
 * put --json DIR/local/NAME DIR/remote/, get --json DIR/remote/NAME
 * DIR/back/, and both copies must equal the source; no temporary file
 * stays.  wire_pct: the largest acceptable wire/sent in percent (0:
 * the checks of expect_file_entry, at most 1% over).
 */
static void round_trip(const struct h_session *s, const char *name,
		       int timeout_ms, int wire_pct)
{
	char src[H_PATH_MAX], remote[H_PATH_MAX], rfile[H_PATH_MAX];
	char back[H_PATH_MAX], bfile[H_PATH_MAX], rel[H_PATH_MAX];
	struct h_opts o = {.timeout_ms = timeout_ms};
	struct h_res res;
	json_t *j, *f;

	snprintf(rel, sizeof(rel), "local/%s", name);
	sp(src, sizeof(src), rel);
	sp(remote, sizeof(remote), "remote");
	sp(back, sizeof(back), "back");
	snprintf(rel, sizeof(rel), "remote/%s", name);
	sp(rfile, sizeof(rfile), rel);
	snprintf(rel, sizeof(rel), "back/%s", name);
	sp(bfile, sizeof(bfile), rel);

	h_console(&res, &o, "put", s->ticket, "--json", src, remote, NULL);
	h_expect(&res, 0, NULL, "", "tether put --json (no terminal)");
	j = summary(&res, s->ticket, "put");
	expect_ok(j, 1, res.out);
	if (wire_pct) {
		f = entry(j, name, res.out);
		cr_assert(jint(f, "wire", res.out) * 100 <=
			      jint(f, "sent", res.out) * wire_pct,
			  "put %s: wire over %d%% of sent: %s", name, wire_pct,
			  res.out);
	} else {
		expect_file_entry(j, name, src, res.out);
	}
	json_decref(j);
	h_res_free(&res);
	expect_copy(src, rfile, "put");
	no_parts_below(remote, "put");

	h_console(&res, &o, "get", s->ticket, "--json", rfile, back, NULL);
	h_expect(&res, 0, NULL, "", "tether get --json (no terminal)");
	j = summary(&res, s->ticket, "get");
	expect_ok(j, 1, res.out);
	if (wire_pct) {
		f = entry(j, name, res.out);
		cr_assert(jint(f, "wire", res.out) * 100 <=
			      jint(f, "sent", res.out) * wire_pct,
			  "get %s: wire over %d%% of sent: %s", name, wire_pct,
			  res.out);
	} else {
		expect_file_entry(j, name, rfile, res.out);
	}
	json_decref(j);
	h_res_free(&res);
	expect_copy(src, bfile, "get");
	no_parts_below(back, "get");
}

static void dirs_for_round_trips(void)
{
	mkd("local", 0755);
	mkd("remote", 0755);
	mkd("back", 0755);
}

Test(file, round_trip_small, .timeout = 120)
{
	struct h_session s;

	start(&s, "small files", NULL);
	dirs_for_round_trips();
	mkfile("local/empty", "", 0, 0644);
	mkfile("local/one", "x", 1, 0600);
	mkrandom("local/random-1m.bin", MIB, 0640);
	round_trip(&s, "empty", 0, 0);
	round_trip(&s, "one", 0, 0);
	round_trip(&s, "random-1m.bin", 0, 0);
	expect_listing("remote", "empty\none\nrandom-1m.bin\n",
		       "the agent's directory after the puts");
	expect_listing("back", "empty\none\nrandom-1m.bin\n",
		       "the local directory after the gets");
	h_relay_stop(&s.relay);
}

Test(file, round_trip_big, .timeout = 600)
{
	struct h_session s;
	int64_t t0;

	start(&s, "big file", NULL);
	dirs_for_round_trips();
	mkrandom("local/big.bin", big_size(), 0644);
	t0 = now_ms();
	round_trip(&s, "big.bin", BIG_MS, 0);
	cr_log_info("%llu MiB there and back in %lld ms",
		    (unsigned long long)(big_size() / MIB),
		    (long long)(now_ms() - t0));
	cr_assert(h_relay_alive(&s.relay), "relay died");
	h_relay_stop(&s.relay);
}

/* Text is deflated: far fewer bytes on the wire than content sent. */
Test(file, round_trip_compressible, .timeout = 300)
{
	char src[H_PATH_MAX], dst[H_PATH_MAX];
	struct h_opts o = {.timeout_ms = BIG_MS};
	struct h_session s;
	struct h_res res;
	json_t *j, *f;
	json_int_t sent, wire;

	/*
	 * On loopback raw blocks beat deflating (the sender's CPU is the
	 * limit), and the sender would find that out and stop; this test
	 * is about the deflating, so both senders keep at it.
	 */
	if (h_test_hooks())
		setenv("TETHER_TEST_XFER_ALWAYS_DEFLATE", "1", 1);
	start(&s, "log file", NULL);
	dirs_for_round_trips();
	mkcompressible("local/app.log", COMPRESSIBLE_SIZE);
	/* Both directions at most a tenth of the size on the wire. */
	round_trip(&s, "app.log", BIG_MS, h_test_hooks() ? 10 : 100);

	/* --no-compress: every byte crosses as it is. */
	sp(src, sizeof(src), "local/app.log");
	sp(dst, sizeof(dst), "remote/raw.log");
	h_console(&res, &o, "put", s.ticket, "--json", "--no-compress", src,
		  dst, NULL);
	h_expect(&res, 0, NULL, "", "tether put --no-compress --json");
	j = summary(&res, s.ticket, "put");
	expect_ok(j, 1, res.out);
	f = json_array_get(json_object_get(j, "files"), 0);
	sent = jint(f, "sent", res.out);
	wire = jint(f, "wire", res.out);
	cr_assert_eq(sent, (json_int_t)COMPRESSIBLE_SIZE, "sent: %s", res.out);
	cr_assert(wire >= sent && wire <= sent + sent / 100,
		  "--no-compress: %lld bytes on the wire for %lld: %s",
		  (long long)wire, (long long)sent, res.out);
	json_decref(j);
	h_res_free(&res);
	expect_copy(src, dst, "put --no-compress to a new name");

	/* The same for get: the agent sends, and does not deflate either. */
	sp(src, sizeof(src), "back/raw.log");
	h_console(&res, &o, "get", s.ticket, "--json", "--no-compress", dst,
		  src, NULL);
	h_expect(&res, 0, NULL, "", "tether get --no-compress --json");
	j = summary(&res, s.ticket, "get");
	expect_ok(j, 1, res.out);
	f = json_array_get(json_object_get(j, "files"), 0);
	sent = jint(f, "sent", res.out);
	wire = jint(f, "wire", res.out);
	cr_assert(wire >= sent && wire <= sent + sent / 100,
		  "get --no-compress: %lld bytes on the wire for %lld: %s",
		  (long long)wire, (long long)sent, res.out);
	json_decref(j);
	h_res_free(&res);
	expect_copy(dst, src, "get --no-compress to a new name");
	h_relay_stop(&s.relay);
}

/* ---- Trees -------------------------------------------------------------- */

#define NL_NAME "new\nline.txt"

/*
 * DIR/local/tree: nested directories, modes 0600/0644/0755 and 0700/0750,
 * names with a space, non-ASCII letters and a newline, an empty file and
 * directory, and relative symlinks (one dangling) that must travel as
 * symlinks.  5 directories below the top, 7 files, 3 symlinks.
 */
static void make_tree(void)
{
	mkd("local/tree", 0755);
	mkd("local/tree/sub", 0750);
	mkd("local/tree/sub/deeper", 0755);
	mkd("local/tree/café", 0755);
	mkd("local/tree/café/日本", 0700);
	mkd("local/tree/empty dir", 0755);
	mktext("local/tree/a.txt", "alpha\n", 0600);
	mktext("local/tree/run.sh", "#!/bin/sh\necho run\n", 0755);
	mkfile("local/tree/zero", "", 0, 0644);
	mktext("local/tree/sub/with space.txt", "spaced out\n", 0644);
	mkrandom("local/tree/sub/deeper/c.bin", 300 * 1024, 0640);
	mktext("local/tree/café/日本/名前.txt", "unicode\n", 0644);
	mktext("local/tree/" NL_NAME, "newline in the name\n", 0644);
	mklink("sub/deeper/c.bin", "local/tree/link");
	mklink("../a.txt", "local/tree/sub/up");
	mklink("nowhere/at/all", "local/tree/dangling");
	/* Distinct file mtimes, so that a mix-up shows. */
	{
		char p[H_PATH_MAX];

		set_time(sp(p, sizeof(p), "local/tree/run.sh"), 1500000000, 0);
		set_time(sp(p, sizeof(p), "local/tree/sub/with space.txt"),
			 1400000000, 999999999);
	}
}

Test(file, tree_round_trip, .timeout = 120)
{
	char tree[H_PATH_MAX], remote[H_PATH_MAX], rtree[H_PATH_MAX];
	char back[H_PATH_MAX], btree[H_PATH_MAX], cbin[H_PATH_MAX];
	struct h_session s;
	struct h_res res;
	json_t *j;

	start(&s, "tree", NULL);
	dirs_for_round_trips();
	make_tree();
	sp(tree, sizeof(tree), "local/tree");
	sp(remote, sizeof(remote), "remote");
	sp(rtree, sizeof(rtree), "remote/tree");
	sp(back, sizeof(back), "back");
	sp(btree, sizeof(btree), "back/tree");

	h_console(&res, NULL, "put", s.ticket, "-r", "--json", tree, remote,
		  NULL);
	h_expect(&res, 0, NULL, "", "tether put -r --json tree");
	j = summary(&res, s.ticket, "put");
	cr_assert(jtrue(j, "ok", res.out), "put -r: %s", res.out);
	cr_assert_eq(jint(j, "failures", res.out), 0, "put -r: %s", res.out);
	cr_assert_eq(count_type(j, "file"), 7, "put -r: 7 files: %s", res.out);
	cr_assert_eq(count_type(j, "symlink"), 3, "put -r: 3 symlinks: %s",
		     res.out);
	cr_assert(count_type(j, "dir") >= 5, "put -r: 5 directories: %s",
		  res.out);
	expect_file_entry(j, "c.bin",
			  sp(cbin, sizeof(cbin), "local/tree/sub/deeper/c.bin"),
			  res.out);
	json_decref(j);
	h_res_free(&res);
	expect_listing("remote", "tree\n", "put -r into a directory");
	expect_entry(tree, rtree, "put -r");

	h_console(&res, NULL, "get", s.ticket, "-r", "--json", rtree, back,
		  NULL);
	h_expect(&res, 0, NULL, "", "tether get -r --json tree");
	j = summary(&res, s.ticket, "get");
	cr_assert_eq(jint(j, "failures", res.out), 0, "get -r: %s", res.out);
	cr_assert_eq(count_type(j, "file"), 7, "get -r: 7 files: %s", res.out);
	cr_assert_eq(count_type(j, "symlink"), 3, "get -r: 3 symlinks: %s",
		     res.out);
	json_decref(j);
	h_res_free(&res);
	expect_listing("back", "tree\n", "get -r into a directory");
	expect_entry(tree, btree, "get -r");
	h_relay_stop(&s.relay);
}

/* A symlink named on the command line is followed; without -r a
 * directory is skipped with a reason. */
Test(file, named_symlink_and_directory, .timeout = 60)
{
	char alias[H_PATH_MAX], data[H_PATH_MAX], remote[H_PATH_MAX];
	char got[H_PATH_MAX], dir[H_PATH_MAX];
	struct h_session s;
	struct h_res res;
	struct stat st;

	start(&s, "symlink and dir", NULL);
	dirs_for_round_trips();
	mktext("local/data.txt", "the data\n", 0644);
	mklink("data.txt", "local/alias");
	mkd("local/dir", 0755);
	mktext("local/dir/inside.txt", "inside\n", 0644);
	sp(alias, sizeof(alias), "local/alias");
	sp(data, sizeof(data), "local/data.txt");
	sp(remote, sizeof(remote), "remote");
	sp(got, sizeof(got), "remote/alias");
	sp(dir, sizeof(dir), "local/dir");

	h_console(&res, NULL, "put", s.ticket, alias, remote, NULL);
	h_expect(&res, 0, "", "", "tether put of a named symlink");
	h_res_free(&res);
	cr_assert(lstat(got, &st) == 0 && S_ISREG(st.st_mode),
		  "a named symlink must arrive as the file it points to");
	cr_assert(h_file_contains(got, "the data\n", 9), "%s: wrong content",
		  got);

	h_console(&res, NULL, "put", s.ticket, dir, remote, NULL);
	h_expect_fail(&res, 1, "is a directory (use -r)",
		      "tether put of a directory without -r");
	cr_assert(strstr(res.err, "dir"),
		  "the message names the directory: "
		  "%s",
		  res.err);
	h_res_free(&res);
	expect_listing("remote", "alias\n",
		       "nothing arrives for a directory without -r");

	sp(remote, sizeof(remote), "remote/dir");
	mkd("remote/dir", 0755);
	h_console(&res, NULL, "get", s.ticket, remote, dir, NULL);
	h_expect_fail(&res, 1, "is a directory (use -r)",
		      "tether get of a directory without -r");
	h_res_free(&res);
	expect_listing("local/dir", "inside.txt\n",
		       "nothing arrives for a directory without -r (get)");
	h_relay_stop(&s.relay);
}

/* ---- Globs -------------------------------------------------------------- */

static void glob_get(const struct h_session *s, const char *pattern,
		     const char *into, const char *want)
{
	char pat[H_PATH_MAX], dest[H_PATH_MAX], what[H_PATH_MAX + 32];
	struct h_res res;

	sp(pat, sizeof(pat), pattern);
	mkd(into, 0755);
	sp(dest, sizeof(dest), into);
	snprintf(what, sizeof(what), "tether get '%s'", pattern);
	h_console(&res, NULL, "get", s->ticket, pat, dest, NULL);
	h_expect(&res, 0, "", "", what);
	h_res_free(&res);
	expect_listing(into, want, what);
}

Test(file, get_globs, .timeout = 60)
{
	char a[H_PATH_MAX], b[H_PATH_MAX];
	struct h_session s;

	start(&s, "globs", NULL);
	mkd("logs", 0755);
	mkd("logs/sub", 0755);
	mktext("logs/a.log", "a\n", 0644);
	mktext("logs/b.log", "b\n", 0644);
	mktext("logs/c.txt", "c\n", 0644);
	mktext("logs/.hidden.log", "hidden\n", 0644);
	mktext("logs/sub/d.log", "d\n", 0644);
	glob_get(&s, "logs/*.log", "got1", "a.log\nb.log\n");
	expect_copy(sp(a, sizeof(a), "logs/a.log"),
		    sp(b, sizeof(b), "got1/a.log"), "get glob");
	glob_get(&s, "logs/?.txt", "got2", "c.txt\n");
	glob_get(&s, "logs/[bc].*", "got3", "b.log\nc.txt\n");
	h_relay_stop(&s.relay);
}

/* ---- Resume -------------------------------------------------------------- */

/* Polls for the agent's partial file until it holds at least min bytes. */
static off_t wait_part(struct h_proc *put, const char *dir, const char *name,
		       off_t min, char *part, size_t len)
{
	int64_t deadline = now_ms() + BIG_MS;
	struct stat st;

	for (;;) {
		if (find_part(dir, name, part, len) && stat(part, &st) == 0 &&
		    st.st_size >= min)
			return st.st_size;
		cr_assert(h_proc_alive(put),
			  "the put ended (status %d) before %lld bytes were "
			  "in a temporary file in %s: %s",
			  put->status, (long long)min, dir, h_proc_output(put));
		cr_assert(now_ms() < deadline,
			  "no temporary file of %lld bytes in %s",
			  (long long)min, dir);
		sleep_ms(5);
	}
}

/* Waits until the agent is back: an exec works (or only "not connected"). */
static void wait_back(const char *ticket, const struct h_proc *agent)
{
	const char *cmd[] = {"true", NULL};
	int64_t deadline = now_ms() + RECONNECT_MS;
	struct h_res res;
	char *out;

	for (;;) {
		h_exec(&res, NULL, ticket, cmd);
		if (res.status == 0)
			break;
		if (now_ms() >= deadline) {
			out = h_proc_output(agent);
			cr_assert_fail("the agent is not back %d ms after the "
				       "relay restarted: %s\nagent: %s",
				       RECONNECT_MS, res.err, out);
		}
		h_res_free(&res);
		sleep_ms(300);
	}
	h_res_free(&res);
}

Test(file, resume_after_relay_dies, .timeout = 600)
{
	char src[H_PATH_MAX], remote[H_PATH_MAX], dst[H_PATH_MAX];
	char part[H_PATH_MAX], part2[H_PATH_MAX];
	struct h_opts o = {.timeout_ms = BIG_MS};
	uint64_t size = big_size();
	off_t seen, partial;
	json_int_t offset, sent;
	struct h_session s;
	struct h_proc put;
	struct h_res res;
	struct stat st;
	json_t *j, *f;
	char *out;
	int status;

	start(&s, "resume", NULL);
	dirs_for_round_trips();
	mkrandom("local/big.bin", size, 0640);
	sp(src, sizeof(src), "local/big.bin");
	sp(remote, sizeof(remote), "remote");
	sp(dst, sizeof(dst), "remote/big.bin");

	h_console_start(&put, "put1", "put", s.ticket, "--json", src, remote,
			NULL);
	seen = wait_part(&put, remote, "big.bin", (off_t)RESUME_CUT, part,
			 sizeof(part));
	h_proc_kill(&s.relay.proc);
	status = h_proc_wait(&put, 30000);
	out = h_proc_output(&put);
	cr_assert_eq(status, 255,
		     "put whose relay died: status %d, expected "
		     "255 (-1: still running): %s",
		     status, out);
	/* How it broke (reset, EOF) varies; that it says so does not. */
	cr_assert(strstr(out, "[stderr] tether: connection lost: "),
		  "put whose relay died does not say why: %s", out);
	free(out);
	out = h_read_file(put.out, NULL);
	cr_assert(out && !out[0],
		  "put --json printed a summary after the "
		  "connection broke: %s",
		  out);
	free(out);
	cr_assert(!exists(dst), "%s exists after a broken transfer", dst);

	h_relay_start(&s.relay, s.relay.addr, NULL);
	wait_back(s.ticket, &s.agent);
	/* The agent's old receiver is gone: the partial file is still. */
	cr_assert(find_part(remote, "big.bin", part2, sizeof(part2)),
		  "the partial file is gone after the agent reconnected: %s",
		  listing(remote));
	cr_assert_str_eq(part2, part, "the partial file changed its name");
	cr_assert(stat(part, &st) == 0, "stat %s", part);
	partial = st.st_size;
	cr_assert(partial >= seen && (uint64_t)partial < size,
		  "partial file of %lld bytes (saw %lld before the cut, "
		  "file %llu)",
		  (long long)partial, (long long)seen,
		  (unsigned long long)size);

	h_console(&res, &o, "put", s.ticket, "--json", src, remote, NULL);
	h_expect(&res, 0, NULL, NULL, "tether put --json again (resume)");
	j = summary(&res, s.ticket, "put");
	expect_ok(j, 1, res.out);
	f = entry(j, "big.bin", res.out);
	offset = jint(f, "offset", res.out);
	sent = jint(f, "sent", res.out);
	cr_log_info("resumed at %lld of %llu (partial file %lld), sent %lld",
		    (long long)offset, (unsigned long long)size,
		    (long long)partial, (long long)sent);
	cr_assert(offset > 0, "the second put started over: %s", res.out);
	cr_assert(offset <= partial && offset >= partial - BLOCK_SLACK,
		  "resumed at %lld, but %lld bytes were there: %s",
		  (long long)offset, (long long)partial, res.out);
	cr_assert(sent <= (json_int_t)size - offset + BLOCK_SLACK,
		  "sent %lld after resuming at %lld of %llu: %s",
		  (long long)sent, (long long)offset, (unsigned long long)size,
		  res.out);
	cr_assert(jtrue(f, "ok", res.out), "resumed file not ok: %s", res.out);
	json_decref(j);
	h_res_free(&res);
	expect_copy(src, dst, "resumed put");
	expect_listing("remote", "big.bin\n", "after the resumed put");
	h_relay_stop(&s.relay);
}

/* ---- Corruption (test hook) ---------------------------------------------- */

#define CORRUPT_ENV "TETHER_TEST_XFER_CORRUPT=123457"

static void need_hooks(void)
{
	if (!h_test_hooks())
		skip("needs a build with -Dtest_hooks=true "
		     "(TETHER_TEST_XFER_CORRUPT)");
}

/* Waits until the agent's output has one or the other; asserts it does. */
static void expect_agent_says(const struct h_proc *agent, const char *one,
			      const char *other, const char *what)
{
	int64_t deadline = now_ms() + 5000;
	char *out;

	for (;;) {
		out = h_proc_output(agent);
		if (strcasestr(out, one) || strcasestr(out, other))
			break;
		cr_assert(now_ms() < deadline,
			  "the agent does not tell the customer about %s "
			  "(\"%s\" or \"%s\"): %s",
			  what, one, other, out);
		free(out);
		sleep_ms(100);
	}
	free(out);
}

/* res failed for name because its SHA-256 did not match. */
static void expect_mismatch(const struct h_res *res, const char *name,
			    const char *what)
{
	cr_assert_eq(res->status, 1, "%s: status %d, expected 1\nstderr: %s",
		     what, res->status, res->err);
	cr_assert(strstr(res->err, name), "%s: stderr does not name %s: %s",
		  what, name, res->err);
	cr_assert(strcasestr(res->err, "SHA-256") ||
		      strcasestr(res->err, "verif"),
		  "%s: stderr does not speak of verification or SHA-256: %s",
		  what, res->err);
}

Test(file, corrupt_get_is_refused, .timeout = 60)
{
	static const char *const env[] = {CORRUPT_ENV, NULL};
	struct h_agent_opts ao = {.env = env};
	char src[H_PATH_MAX], back[H_PATH_MAX];
	struct h_session s;
	struct h_res res;
	json_t *j, *f;

	need_hooks();
	start(&s, "corrupt get", &ao);
	dirs_for_round_trips();
	mkrandom("remote/data.bin", MIB, 0644);
	sp(src, sizeof(src), "remote/data.bin");
	sp(back, sizeof(back), "back");

	h_console(&res, NULL, "get", s.ticket, "--json", src, back, NULL);
	expect_mismatch(&res, "data.bin", "tether get from a corrupting agent");
	j = summary(&res, s.ticket, "get");
	cr_assert(!jtrue(j, "ok", res.out), "--json ok: %s", res.out);
	cr_assert_eq(jint(j, "failures", res.out), 1, "--json: %s", res.out);
	f = entry(j, "data.bin", res.out);
	cr_assert(!jtrue(f, "ok", res.out), "--json entry ok: %s", res.out);
	cr_assert(jstr(f, "reason", res.out)[0], "--json: no reason: %s",
		  res.out);
	json_decref(j);
	h_res_free(&res);
	expect_listing("back", "",
		       "nothing unverified under the final name "
		       "and no temporary file");
	h_relay_stop(&s.relay);
}

Test(file, corrupt_put_is_refused, .timeout = 60)
{
	static const char *const env[] = {CORRUPT_ENV, NULL};
	struct h_opts bad = {.env = env};
	char src[H_PATH_MAX], remote[H_PATH_MAX], dst[H_PATH_MAX];
	struct h_session s;
	struct h_res res;

	need_hooks();
	start(&s, "corrupt put", NULL);
	dirs_for_round_trips();
	mkrandom("local/data.bin", MIB, 0644);
	sp(src, sizeof(src), "local/data.bin");
	sp(remote, sizeof(remote), "remote");
	sp(dst, sizeof(dst), "remote/data.bin");

	h_console(&res, &bad, "put", s.ticket, src, remote, NULL);
	expect_mismatch(&res, "data.bin",
			"tether put from a corrupting "
			"console");
	h_res_free(&res);
	expect_listing("remote", "",
		       "nothing unverified under the final "
		       "name and no temporary file");
	expect_agent_says(&s.agent, "SHA-256", "verif",
			  "the failed put, with its reason");

	/* Nothing of the bad copy lingers: the same put now just works. */
	h_console(&res, NULL, "put", s.ticket, src, remote, NULL);
	h_expect(&res, 0, "", "", "tether put after a corrupted one");
	h_res_free(&res);
	expect_copy(src, dst, "put after a corrupted one");
	h_relay_stop(&s.relay);
}

/* ---- Policy and refusals ------------------------------------------------- */

/* Polls the audit for an xfer event whose detail satisfies match. */
static json_t *wait_xfer_event(const char *ticket,
			       bool (*match)(json_t *detail, void *arg),
			       void *arg, char **names)
{
	int64_t deadline = now_ms() + AUDIT_MS;
	json_t *t, *ev;
	size_t i;

	for (;;) {
		t = h_ticket_show(ticket);
		json_array_foreach (json_object_get(t, "audit"), i, ev) {
			const char *name =
			    json_string_value(json_object_get(ev, "event"));

			if (name && !strcmp(name, "xfer") &&
			    match(json_object_get(ev, "detail"), arg)) {
				json_incref(ev);
				json_decref(t);
				return ev;
			}
		}
		if (now_ms() >= deadline) {
			*names = json_dumps(json_object_get(t, "audit"),
					    JSON_COMPACT);
			json_decref(t);
			return NULL;
		}
		json_decref(t);
		sleep_ms(200);
	}
}

static bool is_failed(json_t *detail, void *arg)
{
	(void)arg;
	return json_is_false(json_object_get(detail, "ok"));
}

Test(file, put_outside_allowed_is_refused, .timeout = 60)
{
	char src[H_PATH_MAX], target[H_PATH_MAX], *audit = NULL;
	char want[H_PATH_MAX + 64];
	struct h_session s;
	struct h_res res;
	bool written;
	json_t *ev;

	start(&s, "policy", NULL);
	dirs_for_round_trips();
	mktext("local/f", "should not be written\n", 0644);
	sp(src, sizeof(src), "local/f");
	/* A name of our own in /etc: only this test could create it. */
	snprintf(target, sizeof(target), "/etc/tether-e2e-%d-%s", (int)getpid(),
		 strrchr(h_dir(), '-') + 1);

	h_console(&res, NULL, "put", s.ticket, src, target, NULL);
	written = exists(target);
	if (written)
		unlink(target);
	cr_assert(!written, "%s was written: %s", target, res.err);
	snprintf(want, sizeof(want),
		 "tether: remote: %s: outside the allowed directories (",
		 target);
	h_expect_fail(&res, 255, want, "tether put to /etc");
	cr_assert_str_eq(res.out, "", "stdout after a refusal");
	h_res_free(&res);

	ev = wait_xfer_event(s.ticket, is_failed, NULL, &audit);
	cr_assert(ev, "no failed xfer event in the audit: %s", audit);
	json_decref(ev);
	h_relay_stop(&s.relay);
}

/*
 * With --allow-write DIR/allowed only: a destination that is, or is
 * reached through, a symlink out of it is refused; the home and /tmp
 * defaults no longer apply; inside it works.
 */
Test(file, put_through_symlink_is_refused, .timeout = 60)
{
	char allowed[H_PATH_MAX], src[H_PATH_MAX], dest[H_PATH_MAX];
	char outside[H_PATH_MAX];
	const char *args[] = {"--allow-write", allowed, NULL};
	struct h_agent_opts ao = {.args = args};
	struct h_session s;
	struct h_res res;

	sp(allowed, sizeof(allowed), "allowed");
	sp(outside, sizeof(outside), "outside");
	mkd("allowed", 0755);
	mkd("outside", 0755);
	start(&s, "symlinked destination", &ao);
	mkd("local", 0755);
	mklink(outside, "allowed/link");
	mktext("local/f", "payload\n", 0644);
	sp(src, sizeof(src), "local/f");

	sp(dest, sizeof(dest), "allowed/link");
	h_console(&res, NULL, "put", s.ticket, src, dest, NULL);
	h_expect_fail(&res, 255, "outside the allowed directories",
		      "tether put into a symlink to outside");
	h_res_free(&res);

	sp(dest, sizeof(dest), "allowed/link/new.txt");
	h_console(&res, NULL, "put", s.ticket, src, dest, NULL);
	h_expect_fail(&res, 255, "outside the allowed directories",
		      "tether put to a new name through a symlink");
	h_res_free(&res);
	expect_listing("outside", "", "nothing written through the symlink");

	/* The default roots are replaced: DIR itself is not allowed now. */
	sp(dest, sizeof(dest), "local/copy");
	h_console(&res, NULL, "put", s.ticket, src, dest, NULL);
	h_expect_fail(&res, 255, "outside the allowed directories",
		      "tether put outside --allow-write");
	h_res_free(&res);
	cr_assert(!exists(dest), "%s was written", dest);

	h_console(&res, NULL, "put", s.ticket, src, allowed, NULL);
	h_expect(&res, 0, "", "", "tether put inside --allow-write");
	h_res_free(&res);
	expect_listing("allowed", "f\nlink\n", "put inside --allow-write");
	h_relay_stop(&s.relay);
}

/*
 * A tree put into a destination where one of its directories already is
 * a symlink out of the allowed directory: that entry and what is below
 * it fail, the rest arrives, nothing is written outside.
 */
Test(file, tree_never_follows_symlinks_in_dest, .timeout = 60)
{
	char allowed[H_PATH_MAX], outside[H_PATH_MAX], tree[H_PATH_MAX];
	char dest[H_PATH_MAX], a[H_PATH_MAX], b[H_PATH_MAX];
	const char *args[] = {"--allow-write", allowed, NULL};
	struct h_agent_opts ao = {.args = args};
	struct h_session s;
	struct h_res res;

	sp(allowed, sizeof(allowed), "allowed");
	sp(outside, sizeof(outside), "outside");
	mkd("allowed", 0755);
	start(&s, "symlink in the tree", &ao);
	mkd("allowed/dest", 0755);
	mkd("allowed/dest/tree", 0755);
	mkd("outside", 0755);
	mklink(outside, "allowed/dest/tree/sub");
	mkd("local", 0755);
	mkd("local/tree", 0755);
	mkd("local/tree/sub", 0755);
	mktext("local/tree/a.txt", "a\n", 0644);
	mktext("local/tree/sub/b.txt", "b\n", 0644);
	sp(tree, sizeof(tree), "local/tree");
	sp(dest, sizeof(dest), "allowed/dest");

	h_console(&res, NULL, "put", s.ticket, "-r", tree, dest, NULL);
	h_expect_fail(&res, 1, "sub", "tether put -r over a symlink");
	h_res_free(&res);
	expect_listing("outside", "", "nothing written through the symlink");
	expect_copy(sp(a, sizeof(a), "local/tree/a.txt"),
		    sp(b, sizeof(b), "allowed/dest/tree/a.txt"),
		    "the rest of the tree");
	h_relay_stop(&s.relay);
}

/* --allow-read: sources outside it are refused, symlinks resolved. */
Test(file, get_outside_allowed_read_is_refused, .timeout = 60)
{
	char readable[H_PATH_MAX], p[H_PATH_MAX], back[H_PATH_MAX];
	char secret[H_PATH_MAX];
	const char *args[] = {"--allow-read", readable, NULL};
	struct h_agent_opts ao = {.args = args};
	struct h_session s;
	struct h_res res;

	sp(readable, sizeof(readable), "readable");
	mkd("readable", 0755);
	start(&s, "read policy", &ao);
	mkd("back", 0755);
	mktext("readable/ok.txt", "fine\n", 0644);
	mktext("secret.txt", "secret\n", 0644);
	sp(secret, sizeof(secret), "secret.txt");
	mklink(secret, "readable/sneaky");
	sp(back, sizeof(back), "back");

	h_console(&res, NULL, "get", s.ticket, secret, back, NULL);
	h_expect_fail(&res, 1, "outside the allowed directories",
		      "tether get outside --allow-read");
	h_res_free(&res);

	h_console(&res, NULL, "get", s.ticket,
		  sp(p, sizeof(p), "readable/../secret.txt"), back, NULL);
	h_expect_fail(&res, 1, "outside the allowed directories",
		      "tether get readable/../secret.txt");
	h_res_free(&res);

	h_console(&res, NULL, "get", s.ticket,
		  sp(p, sizeof(p), "readable/sneaky"), back, NULL);
	h_expect_fail(&res, 1, "outside the allowed directories",
		      "tether get of a symlink out of --allow-read");
	h_res_free(&res);
	expect_listing("back", "", "nothing outside --allow-read arrives");

	h_console(&res, NULL, "get", s.ticket,
		  sp(p, sizeof(p), "readable/ok.txt"), back, NULL);
	h_expect(&res, 0, "", "", "tether get inside --allow-read");
	h_res_free(&res);
	expect_listing("back", "ok.txt\n", "get inside --allow-read");
	h_relay_stop(&s.relay);
}

/* chown DIR/rel to uid:gid (asserts). */
static void own(const char *rel, uid_t uid, gid_t gid)
{
	char p[H_PATH_MAX];

	sp(p, sizeof(p), rel);
	cr_assert(chown(p, uid, gid) == 0, "chown %s: %s", p, strerror(errno));
}

/*
 * A directory its owner may not write to.  Root may write anywhere, so as
 * root (CI) the agent runs as nobody, which owns its home and both
 * directories as the customer would: the refusal is the permission bits,
 * and the writable twin shows that nothing else stands in the way.
 */
Test(file, permission_denied, .timeout = 60)
{
	char src[H_PATH_MAX], ro[H_PATH_MAX], rw[H_PATH_MAX];
	struct h_agent_opts o = {0};
	struct h_session s;
	struct h_res res;

	if (geteuid() == 0) {
		h_nobody(&o.uid, &o.gid);
		/* Lets nobody reach its home, the directories and the
		 * sanitizer report directory, and no more. */
		cr_assert(chmod(h_dir(), 0711) == 0, "chmod %s: %s", h_dir(),
			  strerror(errno));
		mkd("home", 0700);
		own("home", o.uid, o.gid);
	}
	start(&s, "permissions", &o);
	mkd("local", 0755);
	mkd("ro", 0500);
	mkd("rw", 0700);
	if (o.uid) {
		own("ro", o.uid, o.gid);
		own("rw", o.uid, o.gid);
	}
	mktext("local/f", "f\n", 0644);
	sp(src, sizeof(src), "local/f");
	sp(ro, sizeof(ro), "ro");
	sp(rw, sizeof(rw), "rw");
	h_console(&res, NULL, "put", s.ticket, src, ro, NULL);
	h_expect_fail(&res, 1, "Permission denied",
		      "tether put into a read-only directory");
	h_res_free(&res);
	expect_listing("ro", "", "nothing in the read-only directory");
	h_console(&res, NULL, "put", s.ticket, src, rw, NULL);
	h_expect(&res, 0, "", "", "tether put into its writable twin");
	h_res_free(&res);
	expect_listing("rw", "f\n", "the writable directory got the file");
	chmod(ro, 0700);
	h_relay_stop(&s.relay);
}

Test(file, get_missing_file, .timeout = 60)
{
	char missing[H_PATH_MAX], back[H_PATH_MAX], want[H_PATH_MAX + 64];
	struct h_session s;
	struct h_res res;

	start(&s, "missing", NULL);
	mkd("back", 0755);
	sp(missing, sizeof(missing), "no-such-file.txt");
	sp(back, sizeof(back), "back");
	h_console(&res, NULL, "get", s.ticket, missing, back, NULL);
	cr_assert_eq(res.status, 1,
		     "tether get of a missing file: status %d, "
		     "expected 1\nstderr: %s",
		     res.status, res.err);
	snprintf(want, sizeof(want), "tether: %s: No such file or directory\n",
		 missing);
	cr_assert(strstr(res.err, want), "expected \"%s\": %s", want, res.err);
	h_res_free(&res);
	expect_listing("back", "", "nothing arrives for a missing file");
	h_relay_stop(&s.relay);
}

Test(file, bad_usage, .timeout = 60)
{
	struct h_session s;
	struct h_res res;

	start(&s, "usage", NULL);
	h_console(&res, NULL, "put", s.ticket, NULL);
	h_expect_fail(&res, 2, "(see: tether put --help)",
		      "tether put without paths");
	h_res_free(&res);
	h_console(&res, NULL, "get", s.ticket, "only-one", NULL);
	h_expect_fail(&res, 2, "(see: tether get --help)",
		      "tether get with one path");
	h_res_free(&res);
	h_console(&res, NULL, "put", s.ticket, "--bogus", "a", "b", NULL);
	h_expect_fail(&res, 2, "(see: tether put --help)",
		      "tether put --bogus");
	h_res_free(&res);
	h_console(&res, NULL, "get", s.ticket, "a", "", NULL);
	h_expect_fail(&res, 2, "empty path", "tether get a ''");
	h_res_free(&res);
	h_relay_stop(&s.relay);
}

/* ---- A full disk --------------------------------------------------------- */

/*
 * A 1 MiB tmpfs on DIR/full; where mounting is not allowed, the agent
 * runs with RLIMIT_FSIZE 1 MiB instead.  Returns the agent options.
 */
static struct h_agent_opts small_disk(void)
{
	struct h_agent_opts ao = {0};
	char p[H_PATH_MAX];

	mkd("full", 0755);
	sp(p, sizeof(p), "full");
	if (mount("tmpfs", p, "tmpfs", MS_NOSUID | MS_NODEV,
		  "size=1m,mode=0755") == 0) {
		snprintf(mnt, sizeof(mnt), "%s", p);
	} else {
		cr_log_info("cannot mount a tmpfs (%s): RLIMIT_FSIZE instead",
			    strerror(errno));
		ao.fsize = MIB;
	}
	return ao;
}

Test(file, disk_full, .timeout = 120)
{
	char src[H_PATH_MAX], small[H_PATH_MAX], full[H_PATH_MAX];
	char dst[H_PATH_MAX];
	struct h_agent_opts ao;
	struct h_session s;
	struct h_res res;

	ao = small_disk();
	start(&s, "disk full", &ao);
	mkd("local", 0755);
	mkrandom("local/big.bin", 4 * MIB, 0644);
	mkrandom("local/small.bin", 16 * 1024, 0644);
	sp(src, sizeof(src), "local/big.bin");
	sp(small, sizeof(small), "local/small.bin");
	sp(full, sizeof(full), "full");
	sp(dst, sizeof(dst), "full/small.bin");

	h_console(&res, NULL, "put", s.ticket, src, full, NULL);
	cr_assert_eq(res.status, 1,
		     "put onto a full disk: status %d, "
		     "expected 1\nstderr: %s",
		     res.status, res.err);
	cr_assert(strstr(res.err, "No space left on device") ||
		      strstr(res.err, "File too large"),
		  "put onto a full disk: no clear reason: %s", res.err);
	cr_assert(strstr(res.err, "big.bin"), "the failure names the file: %s",
		  res.err);
	h_res_free(&res);
	expect_listing("full", "",
		       "nothing under the final name and no "
		       "temporary file after a full disk");
	cr_assert(h_proc_alive(&s.agent), "the agent died: %s",
		  h_proc_output(&s.agent));
	expect_agent_says(&s.agent, "No space left on device", "File too large",
			  "the full disk");

	h_console(&res, NULL, "put", s.ticket, small, full, NULL);
	h_expect(&res, 0, "", "", "tether put after a full disk");
	h_res_free(&res);
	expect_copy(small, dst, "put after a full disk");
	h_relay_stop(&s.relay);
}

/* ---- Audit, messages, output --------------------------------------------- */

struct want_xfer {
	const char *direction;
	const char *name;
	json_int_t size;
	const char *sha256;
};

static bool is_wanted(json_t *d, void *arg)
{
	const struct want_xfer *w = arg;
	const char *dir = json_string_value(json_object_get(d, "direction"));
	const char *path = json_string_value(json_object_get(d, "path"));

	return dir && !strcmp(dir, w->direction) && path &&
	       strstr(path, w->name);
}

static void expect_audited(const char *ticket, const struct want_xfer *w)
{
	char *audit = NULL, *text;
	json_t *ev, *d;
	const char *v;

	ev = wait_xfer_event(ticket, is_wanted, (void *)w, &audit);
	cr_assert(ev, "no xfer event for %s %s in the audit: %s", w->direction,
		  w->name, audit);
	d = json_object_get(ev, "detail");
	text = json_dumps(ev, JSON_COMPACT);
	cr_assert(json_is_true(json_object_get(d, "ok")), "audit: %s", text);
	cr_assert_eq(json_integer_value(json_object_get(d, "size")), w->size,
		     "audit size: %s", text);
	v = json_string_value(json_object_get(d, "sha256"));
	cr_assert(v && !strcmp(v, w->sha256), "audit sha256 (want %s): %s",
		  w->sha256, text);
	v = json_string_value(json_object_get(d, "type"));
	cr_assert(v && !strcmp(v, "file"), "audit type: %s", text);
	free(text);
	json_decref(ev);
}

Test(file, audit_and_customer_messages, .timeout = 60)
{
	char src[H_PATH_MAX], remote[H_PATH_MAX], rfile[H_PATH_MAX];
	char back[H_PATH_MAX], hex[65], say[H_PATH_MAX + 64];
	struct want_xfer w = {"put", "audited.bin", (json_int_t)MIB, hex};
	struct h_session s;
	struct h_res res;

	start(&s, "audit", NULL);
	dirs_for_round_trips();
	mkrandom("local/audited.bin", MIB, 0644);
	sp(src, sizeof(src), "local/audited.bin");
	sp(remote, sizeof(remote), "remote");
	sp(rfile, sizeof(rfile), "remote/audited.bin");
	sp(back, sizeof(back), "back");
	h_sha256_file(src, hex);

	h_console(&res, NULL, "put", s.ticket, src, remote, NULL);
	h_expect(&res, 0, "", "", "tether put");
	h_res_free(&res);
	expect_audited(s.ticket, &w);
	snprintf(say, sizeof(say), "admin sent %s (1.0 MiB)", rfile);
	cr_assert(h_proc_wait_output(&s.agent, say, 5000),
		  "the agent does not tell the customer \"%s\": %s", say,
		  h_proc_output(&s.agent));

	h_console(&res, NULL, "get", s.ticket, rfile, back, NULL);
	h_expect(&res, 0, "", "", "tether get");
	h_res_free(&res);
	w.direction = "get";
	expect_audited(s.ticket, &w);
	snprintf(say, sizeof(say), "admin receives %s (1.0 MiB)", rfile);
	cr_assert(h_proc_wait_output(&s.agent, say, 5000),
		  "the agent does not tell the customer \"%s\": %s", say,
		  h_proc_output(&s.agent));
	h_relay_stop(&s.relay);
}

/*
 * Without a terminal nothing on stderr (no progress) and nothing on
 * stdout; -q the same; --json a summary of two files.
 */
Test(file, output_without_terminal, .timeout = 60)
{
	char a[H_PATH_MAX], b[H_PATH_MAX], remote[H_PATH_MAX];
	char ra[H_PATH_MAX], back[H_PATH_MAX], want[H_PATH_MAX + 64];
	struct h_session s;
	struct h_res res;
	json_t *j;

	start(&s, "output", NULL);
	dirs_for_round_trips();
	mkrandom("local/a.bin", 2 * MIB, 0644);
	mkrandom("local/b.bin", 3 * MIB, 0600);
	sp(a, sizeof(a), "local/a.bin");
	sp(b, sizeof(b), "local/b.bin");
	sp(remote, sizeof(remote), "remote");
	sp(ra, sizeof(ra), "remote/a.bin");
	sp(back, sizeof(back), "back");

	h_console(&res, NULL, "put", s.ticket, a, remote, NULL);
	h_expect(&res, 0, "", "", "tether put (no terminal)");
	h_res_free(&res);
	h_console(&res, NULL, "get", s.ticket, ra, back, NULL);
	h_expect(&res, 0, "", "", "tether get (no terminal)");
	h_res_free(&res);
	h_console(&res, NULL, "get", s.ticket, "-q", ra, back, NULL);
	h_expect(&res, 0, "", "", "tether get -q (again, over the copy)");
	h_res_free(&res);
	expect_copy(a, sp(ra, sizeof(ra), "back/a.bin"), "get over a copy");

	h_console(&res, NULL, "put", s.ticket, "--json", "-q", a, b, remote,
		  NULL);
	h_expect(&res, 0, NULL, "", "tether put --json -q of two files");
	j = summary(&res, s.ticket, "put");
	expect_ok(j, 2, res.out);
	expect_file_entry(j, "a.bin", a, res.out);
	expect_file_entry(j, "b.bin", b, res.out);
	cr_assert_eq(jint(j, "bytes", res.out), (json_int_t)(5 * MIB),
		     "--json bytes: %s", res.out);
	cr_assert_eq(jint(j, "sent", res.out), (json_int_t)(5 * MIB),
		     "--json sent: %s", res.out);
	cr_assert(json_number_value(json_object_get(j, "seconds")) >= 0,
		  "--json seconds: %s", res.out);
	json_decref(j);
	h_res_free(&res);
	expect_copy(b, sp(ra, sizeof(ra), "remote/b.bin"), "second of two");

	/* Several REMOTEs need a directory: refused before connecting. */
	sp(ra, sizeof(ra), "back/not-a-dir");
	h_console(&res, NULL, "get", s.ticket, a, b, ra, NULL);
	snprintf(want, sizeof(want),
		 "tether: %s: not a directory (several REMOTEs need one)", ra);
	h_expect_fail(&res, 1, want, "tether get of two files onto one name");
	h_res_free(&res);
	cr_assert(!exists(ra), "%s was created", ra);

	/* Two items onto a name that is not a directory: the second fails. */
	sp(ra, sizeof(ra), "remote/not-a-dir");
	h_console(&res, NULL, "put", s.ticket, a, b, ra, NULL);
	h_expect_fail(&res, 1, "not a directory",
		      "tether put of two files onto one new name");
	cr_assert(strstr(res.err, "b.bin"), "the second item fails: %s",
		  res.err);
	h_res_free(&res);
	h_relay_stop(&s.relay);
}

static bool matches(const char *re, const char *text)
{
	regex_t rx;
	bool ok;

	cr_assert(regcomp(&rx, re, REG_EXTENDED | REG_NOSUB | REG_NEWLINE) == 0,
		  "regcomp %s", re);
	ok = regexec(&rx, text, 0, NULL, 0) == 0;
	regfree(&rx);
	return ok;
}

/*
 * Runs `tether put [flag] SRC DEST` in a terminal called name and returns
 * its screen once it printed its status (caller frees).
 */
static char *put_on_terminal(const struct h_session *s, const char *name,
			     const char *flag, const char *src,
			     const char *dest)
{
	static const char script[] = "\"$1\" put $5 \"$2\" \"$3\" \"$4\"; "
				     "echo \"status=$?\"; exec sleep 120";
	char cfg[H_PATH_MAX], xdg[H_PATH_MAX + 32];
	const char *env[] = {xdg, NULL};
	const char *argv[] = {"sh",	 "-c", script, "sh", h_console_bin(),
			      s->ticket, src,  dest,   flag, NULL};
	char *screen;

	snprintf(xdg, sizeof(xdg), "XDG_CONFIG_HOME=%s",
		 sp(cfg, sizeof(cfg), "config"));
	h_term_new(&tmux, name, 120, 30, env, argv);
	if (!h_term_wait(&tmux, name, "status=", 60000)) {
		screen = h_term_screen(&tmux, name, true);
		cr_assert_fail("tether put on a terminal did not finish: %s",
			       screen);
	}
	return h_term_screen(&tmux, name, true);
}

/*
 * On a terminal: a progress line per file that ends at 100% and a
 * summary; with -q nothing at all.
 */
Test(file, progress_on_terminal, .timeout = 120)
{
	char src[H_PATH_MAX], remote[H_PATH_MAX], dst[H_PATH_MAX];
	struct h_session s;
	char *screen;

	if (!h_tmux_available()) {
		h_tool_missing("tmux is not installed: the progress display "
			       "needs a terminal (apt-get install tmux)");
		skip("tmux is not installed: the progress display needs a "
		     "terminal (apt-get install tmux)");
	}
	start(&s, "progress", NULL);
	dirs_for_round_trips();
	mkrandom("local/big.bin", 32 * MIB, 0644);
	sp(src, sizeof(src), "local/big.bin");
	sp(remote, sizeof(remote), "remote");
	sp(dst, sizeof(dst), "remote/big.bin");
	h_tmux_start(&tmux);

	screen = put_on_terminal(&s, "progress", "", src, remote);
	cr_assert(strstr(screen, "status=0"), "tether put on a terminal: %s",
		  screen);
	cr_assert(matches("big\\.bin +100% +[0-9.]+ MiB / [0-9.]+ MiB +"
			  "[0-9.]+ MB/s",
			  screen),
		  "no finished progress line \"big.bin  100%%  32 MiB / 32 MiB "
		  " RATE MB/s ...\": %s",
		  screen);
	cr_assert(matches("^1 files?, [0-9.]+ MiB in [0-9.]+ s \\([0-9.]+ "
			  "MB/s\\)$",
			  screen),
		  "no summary \"1 files, 32 MiB in S s (RATE MB/s)\": %s",
		  screen);
	free(screen);
	expect_copy(src, dst, "put on a terminal");

	cr_assert(unlink(dst) == 0, "unlink %s", dst);
	screen = put_on_terminal(&s, "quiet", "-q", src, remote);
	cr_assert(strstr(screen, "status=0"), "tether put -q on a terminal: %s",
		  screen);
	cr_assert(!strstr(screen, "MB/s") && !strstr(screen, "%"),
		  "tether put -q printed progress: %s", screen);
	free(screen);
	expect_copy(src, dst, "put -q on a terminal");
	h_relay_stop(&s.relay);
}
