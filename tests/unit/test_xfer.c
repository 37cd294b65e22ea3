/*
 * The transfer engine with a sender and a receiver wired back to back in
 * memory (no link, no seal): what lands on disk, resume, verification,
 * compression, hostile paths and a sender that breaks the protocol.
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <tether/alloc.h>
#include <tether/crypto.h>
#include <tether/err.h>
#include <tether/proto.h>
#include <tether/xfer.h>

#define WINDOW (4u * 1024 * 1024)

struct qmsg {
	struct qmsg *next;
	uint8_t msg;
	size_t len;
	uint8_t body[];
};

/* One direction of the pipe. */
struct queue {
	struct qmsg *head, **tail;
};

struct pair {
	struct tether_xfer_send *s;
	struct tether_xfer_recv *r;
	struct queue to_recv, to_send;
	size_t window; /* sender's credit */
	uint64_t files_ok, files_failed;
	uint64_t sent, wire, offset;
	char last_reason[TETHER_MSG_REASON_MAX];
	char last_sha[65];
	/* Test knobs. */
	long corrupt_block; /* flip a byte in this BLOCK (1-based), or 0 */
	long blocks;
	long stop_after_blocks; /* stop delivering after this many, or 0 */
};

static char dir[64];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/tether-xfer-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "chmod -R u+rwx '%s'; rm -rf '%s'", dir,
		 dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", dir);
}

TestSuite(xfer, .init = setup, .fini = teardown);

static const char *at(char *buf, const char *name)
{
	snprintf(buf, PATH_MAX, "%s/%s", dir, name);
	return buf;
}

static void push(struct queue *q, uint8_t msg, const void *body, size_t len)
{
	struct qmsg *m = malloc(sizeof(*m) + len + 1);

	cr_assert_not_null(m);
	m->next = NULL;
	m->msg = msg;
	m->len = len;
	if (len > 0)
		memcpy(m->body, body, len);
	if (q->tail == NULL)
		q->tail = &q->head;
	*q->tail = m;
	q->tail = &m->next;
}

static struct qmsg *pop(struct queue *q)
{
	struct qmsg *m = q->head;

	if (m != NULL) {
		q->head = m->next;
		if (q->head == NULL)
			q->tail = &q->head;
	}
	return m;
}

static void drain_queue(struct queue *q)
{
	struct qmsg *m;

	while ((m = pop(q)) != NULL)
		free(m);
}

static int s_send(void *arg, uint8_t msg, const void *body, size_t len)
{
	struct pair *p = arg;

	if (msg == TETHER_MSG_BLOCK) {
		cr_assert_leq(len, p->window, "block beyond the window");
		p->window -= len;
	}
	push(&p->to_recv, msg, body, len);
	return 0;
}

static size_t s_window(void *arg)
{
	return ((struct pair *)arg)->window;
}

static int r_send(void *arg, uint8_t msg, const void *body, size_t len)
{
	push(&((struct pair *)arg)->to_send, msg, body, len);
	return 0;
}

static size_t r_window(void *arg)
{
	(void)arg;
	return WINDOW;
}

static int r_consumed(void *arg, size_t n)
{
	struct pair *p = arg;

	p->window += n;
	cr_assert_leq(p->window, WINDOW);
	return 0;
}

static int s_consumed(void *arg, size_t n)
{
	(void)arg;
	(void)n;
	cr_assert_fail("the sender consumes nothing");
	return 0;
}

static void on_file(void *arg, const struct tether_xfer_file *f)
{
	struct pair *p = arg;

	if (f->ok) {
		p->files_ok++;
		snprintf(p->last_sha, sizeof(p->last_sha), "%s", f->sha256);
	} else {
		p->files_failed++;
		snprintf(p->last_reason, sizeof(p->last_reason), "%s: %s",
			 f->path, f->reason);
	}
	p->sent += f->sent;
	p->wire += f->wire;
	p->offset += f->offset;
}

/* Both engines: the receiver's callbacks count, the sender's are quiet. */
static void pair_new(struct pair *p, const char *dest, unsigned flags)
{
	static const struct tether_xfer_cbs quiet;
	struct tether_xfer_io sio = {s_send, s_window, s_consumed, p};
	struct tether_xfer_io rio = {r_send, r_window, r_consumed, p};
	struct tether_xfer_cbs rcbs = {on_file, NULL, p};
	char err[256];

	memset(p, 0, sizeof(*p));
	p->window = WINDOW;
	p->s = tether_xfer_send_new(&sio, &quiet, flags);
	cr_assert_not_null(p->s);
	p->r = tether_xfer_recv_new(dest, &rio, &rcbs, err, sizeof(err));
	cr_assert_not_null(p->r, "recv_new(%s): %s", dest, err);
}

static void pair_free(struct pair *p)
{
	tether_xfer_send_free(p->s);
	tether_xfer_recv_free(p->r);
	drain_queue(&p->to_recv);
	drain_queue(&p->to_send);
}

/*
 * Delivers messages both ways until the sender has the receiver's
 * XFER_END (0), or a delivery fails (its error), or the knobs stop it (1).
 */
static int run(struct pair *p)
{
	struct qmsg *m;
	int r = tether_xfer_send_pump(p->s);

	while (r == 0 && !tether_xfer_send_done(p->s)) {
		if ((m = pop(&p->to_recv)) != NULL) {
			if (m->msg == TETHER_MSG_BLOCK) {
				p->blocks++;
				if (p->stop_after_blocks > 0 &&
				    p->blocks > p->stop_after_blocks) {
					free(m);
					return 1;
				}
				if (p->blocks == p->corrupt_block)
					m->body[m->len / 2] ^= 0x40;
			}
			r = tether_xfer_recv_input(p->r, m->msg, m->body,
						   m->len);
			free(m);
		} else if ((m = pop(&p->to_send)) != NULL) {
			r = tether_xfer_send_input(p->s, m->msg, m->body,
						   m->len);
			free(m);
		} else {
			/* Credit came back: WINDOW would pump the sender. */
			r = tether_xfer_send_pump(p->s);
			if (r == 0 && p->to_recv.head == NULL &&
			    p->to_send.head == NULL)
				cr_assert_fail("stalled: nothing in flight");
		}
	}
	if (r == 0)
		cr_assert(tether_xfer_recv_done(p->r));
	return r;
}

static void write_file(const char *path, const void *data, size_t len,
		       mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	cr_assert_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
	chmod(path, mode);
}

static void random_file(const char *path, size_t len)
{
	uint8_t *b = malloc(len + 1);

	cr_assert_not_null(b);
	cr_assert_eq(tether_random(b, len + 1), 0);
	write_file(path, b, len, 0640);
	free(b);
}

static void text_file(const char *path, size_t len)
{
	static const char line[] = "2026-11-23 12:00:00 svc[42]: all good\n";
	char *b = malloc(len + 1);
	size_t i;

	cr_assert_not_null(b);
	for (i = 0; i < len; i++)
		b[i] = line[i % (sizeof(line) - 1)];
	write_file(path, b, len, 0644);
	free(b);
}

static void same_file(const char *a, const char *b)
{
	char cmd[3 * PATH_MAX];

	snprintf(cmd, sizeof(cmd), "cmp -s '%s' '%s'", a, b);
	cr_assert_eq(system(cmd), 0, "%s and %s differ", a, b);
}

static size_t count_parts(const char *d)
{
	DIR *dp = opendir(d);
	struct dirent *de;
	size_t n = 0;

	cr_assert_not_null(dp);
	while ((de = readdir(dp)) != NULL)
		if (strstr(de->d_name, ".tether-part") != NULL)
			n++;
	closedir(dp);
	return n;
}

Test(xfer, one_file_lands_verified_with_mode_and_mtime)
{
	char src[PATH_MAX], dst[PATH_MAX], a_[PATH_MAX], sum[65];
	struct timespec ts[2] = {{1700000000, 123456789},
				 {1700000000, 123456789}};
	struct stat a, b;
	uint8_t d[32];
	struct pair p;
	char *data;

	random_file(at(src, "in.bin"), 1000003);
	chmod(src, 0604);
	utimensat(AT_FDCWD, src, ts, 0);
	mkdir(at(dst, "out"), 0755);
	pair_new(&p, dst, 0);
	cr_assert_eq(tether_xfer_send_add(p.s, src, NULL), 0);
	cr_assert_eq(run(&p), 0);
	cr_assert_eq(p.files_ok, 1);
	cr_assert_eq(p.files_failed, 0);
	cr_assert_eq(p.sent, 1000003);
	pair_free(&p);

	at(dst, "out/in.bin");
	same_file(src, dst);
	cr_assert_eq(stat(src, &a), 0);
	cr_assert_eq(stat(dst, &b), 0);
	cr_assert_eq(b.st_mode & 07777, 0604);
	cr_assert_eq(b.st_mtim.tv_sec, a.st_mtim.tv_sec);
	cr_assert_eq(b.st_mtim.tv_nsec, a.st_mtim.tv_nsec);
	cr_assert_eq(count_parts(at(a_, "out")), 0);
	/* The reported hash is the file's. */
	data = malloc(1000003);
	cr_assert_not_null(data);
	cr_assert_eq(pread(open(src, O_RDONLY), data, 1000003, 0), 1000003);
	tether_sha256(data, 1000003, d);
	tether_hex_encode(d, 32, sum, sizeof(sum));
	cr_assert_str_eq(p.last_sha, sum);
	free(data);
}

Test(xfer, empty_and_one_byte_files)
{
	char src[PATH_MAX], dst[PATH_MAX];
	struct pair p;

	write_file(at(src, "empty"), "", 0, 0600);
	write_file(at(src, "one"), "x", 1, 0600);
	mkdir(at(dst, "out"), 0755);
	pair_new(&p, dst, 0);
	cr_assert_eq(tether_xfer_send_add(p.s, at(src, "empty"), NULL), 0);
	cr_assert_eq(tether_xfer_send_add(p.s, at(src, "one"), NULL), 0);
	cr_assert_eq(run(&p), 0);
	cr_assert_eq(p.files_ok, 2);
	pair_free(&p);
	same_file(at(src, "empty"), at(dst, "out/empty"));
	same_file(at(src, "one"), at(dst, "out/one"));
}

Test(xfer, destination_that_does_not_exist_names_the_item)
{
	char src[PATH_MAX], dst[PATH_MAX];
	struct pair p;

	random_file(at(src, "a"), 5000);
	random_file(at(src, "b"), 5000);
	pair_new(&p, at(dst, "renamed"), 0);
	cr_assert_eq(tether_xfer_send_add(p.s, at(src, "a"), NULL), 0);
	cr_assert_eq(tether_xfer_send_add(p.s, at(src, "b"), NULL), 0);
	cr_assert_eq(run(&p), 0);
	cr_assert_eq(p.files_ok, 1);
	cr_assert_eq(p.files_failed, 1);
	cr_assert(strstr(p.last_reason, "not a directory") != NULL, "%s",
		  p.last_reason);
	pair_free(&p);
	same_file(at(src, "a"), at(dst, "renamed"));
}

Test(xfer, compression_only_where_it_gains)
{
	char src[PATH_MAX], dst[PATH_MAX];
	struct pair p;

	text_file(at(src, "log"), 8 << 20);
	random_file(at(src, "rnd"), 8 << 20);
	mkdir(at(dst, "out"), 0755);
	/* In memory raw always wins the timing: keep deflating here. */
	setenv("TETHER_TEST_XFER_ALWAYS_DEFLATE", "1", 1);

	pair_new(&p, dst, 0);
	cr_assert_eq(tether_xfer_send_add(p.s, at(src, "log"), NULL), 0);
	cr_assert_eq(run(&p), 0);
	cr_assert_lt(p.wire, p.sent / 20, "text: %lu wire for %lu",
		     (unsigned long)p.wire, (unsigned long)p.sent);
	pair_free(&p);

	pair_new(&p, dst, 0);
	cr_assert_eq(tether_xfer_send_add(p.s, at(src, "rnd"), NULL), 0);
	cr_assert_eq(run(&p), 0);
	/* One encoding byte per block is all random data costs. */
	cr_assert_leq(p.wire, p.sent + p.sent / 1000);
	pair_free(&p);

	pair_new(&p, dst, TETHER_XFER_NO_COMPRESS);
	cr_assert_eq(tether_xfer_send_add(p.s, at(src, "log"), NULL), 0);
	cr_assert_eq(run(&p), 0);
	cr_assert_geq(p.wire, p.sent);
	pair_free(&p);
	same_file(at(src, "log"), at(dst, "out/log"));
	same_file(at(src, "rnd"), at(dst, "out/rnd"));
}

Test(xfer, broken_transfer_resumes_from_the_partial_file)
{
	char src[PATH_MAX], dst[PATH_MAX];
	struct pair p;

	random_file(at(src, "big"), 20 << 20);
	mkdir(at(dst, "out"), 0755);
	pair_new(&p, dst, 0);
	p.stop_after_blocks = 40;
	cr_assert_eq(tether_xfer_send_add(p.s, at(src, "big"), NULL), 0);
	cr_assert_eq(run(&p), 1);
	pair_free(&p);
	cr_assert_eq(count_parts(at(dst, "out")), 1);
	cr_assert_eq(access(at(dst, "out/big"), F_OK), -1);

	pair_new(&p, at(dst, "out"), 0);
	cr_assert_eq(tether_xfer_send_add(p.s, at(src, "big"), NULL), 0);
	cr_assert_eq(run(&p), 0);
	cr_assert_eq(p.files_ok, 1);
	cr_assert_eq(p.offset, 40ull * TETHER_XFER_BLOCK);
	cr_assert_eq(p.sent, (20ull << 20) - p.offset);
	pair_free(&p);
	same_file(at(src, "big"), at(dst, "out/big"));
	cr_assert_eq(count_parts(at(dst, "out")), 0);
}

Test(xfer, a_changed_source_starts_over)
{
	char src[PATH_MAX], dst[PATH_MAX];
	struct timespec ts[2] = {{1600000000, 0}, {1600000000, 0}};
	struct pair p;

	random_file(at(src, "f"), 4 << 20);
	mkdir(at(dst, "out"), 0755);
	pair_new(&p, dst, 0);
	p.stop_after_blocks = 5;
	cr_assert_eq(tether_xfer_send_add(p.s, at(src, "f"), NULL), 0);
	cr_assert_eq(run(&p), 1);
	pair_free(&p);
	utimensat(AT_FDCWD, src, ts, 0);
	pair_new(&p, at(dst, "out"), 0);
	cr_assert_eq(tether_xfer_send_add(p.s, at(src, "f"), NULL), 0);
	cr_assert_eq(run(&p), 0);
	cr_assert_eq(p.offset, 0);
	pair_free(&p);
	same_file(at(src, "f"), at(dst, "out/f"));
}

Test(xfer, corruption_fails_verification_and_leaves_nothing)
{
	char src[PATH_MAX], dst[PATH_MAX];
	struct pair p;

	random_file(at(src, "f"), 1 << 20);
	mkdir(at(dst, "out"), 0755);
	pair_new(&p, dst, 0);
	p.corrupt_block = 3;
	cr_assert_eq(tether_xfer_send_add(p.s, at(src, "f"), NULL), 0);
	cr_assert_eq(run(&p), 0);
	cr_assert_eq(p.files_failed, 1);
	cr_assert(strstr(p.last_reason, "SHA-256 mismatch") != NULL, "%s",
		  p.last_reason);
	pair_free(&p);
	cr_assert_eq(access(at(dst, "out/f"), F_OK), -1);
	cr_assert_eq(count_parts(at(dst, "out")), 0);
}

Test(xfer, tree_with_symlinks_and_odd_names)
{
	char src[PATH_MAX], dst[PATH_MAX], a[PATH_MAX], b[PATH_MAX];
	char cmd[5 * PATH_MAX];
	struct pair p;

	mkdir(at(src, "t"), 0755);
	mkdir(at(src, "t/sub dir"), 0750);
	mkdir(at(src, "t/sub dir/deeper"), 0700);
	random_file(
	    at(src, "t/sub dir/deeper/r\303\251sum\303\251 \346\227\245"),
	    300000);
	text_file(at(src, "t/new\nline"), 1000);
	write_file(at(src, "t/exec"), "#!/bin/sh\n", 10, 0755);
	cr_assert_eq(symlink("sub dir/deeper", at(src, "t/link")), 0);
	cr_assert_eq(symlink("/etc/passwd", at(src, "t/abs")), 0);
	mkdir(at(dst, "out"), 0755);

	/* Without -r the directory is skipped, with a reason. */
	pair_new(&p, dst, 0);
	cr_assert_eq(tether_xfer_send_add(p.s, at(src, "t"), NULL), 0);
	cr_assert_eq(run(&p), 0);
	cr_assert_eq(p.files_failed, 1);
	cr_assert(strstr(p.last_reason, "use -r") != NULL);
	pair_free(&p);

	pair_new(&p, dst, TETHER_XFER_RECURSIVE);
	cr_assert_eq(tether_xfer_send_add(p.s, at(src, "t"), NULL), 0);
	cr_assert_eq(run(&p), 0);
	cr_assert_eq(p.files_failed, 0, "%s", p.last_reason);
	cr_assert_eq(p.files_ok, 8);
	pair_free(&p);

	/* Same names, types, modes, mtimes, contents and link targets. */
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && find . -printf '%%p %%y %%m %%T@ %%l\\n' | sort "
		 "> %s/a.txt && cd '%s' && find . -printf '%%p %%y %%m %%T@ "
		 "%%l\\n' | sort > %s/b.txt && cmp %s/a.txt %s/b.txt && "
		 "diff -r --no-dereference '%s' '%s'",
		 at(a, "t"), dir, at(b, "out/t"), dir, dir, dir, a, b);
	cr_assert_eq(system(cmd), 0, "trees differ: %s", cmd);
	cr_assert_eq(count_parts(at(dst, "out/t")), 0);
}

Test(xfer, never_writes_through_a_symlink_in_the_destination)
{
	char src[PATH_MAX], dst[PATH_MAX], outside[PATH_MAX];
	struct pair p;

	mkdir(at(src, "t"), 0755);
	random_file(at(src, "t/x"), 100);
	mkdir(at(outside, "outside"), 0755);
	mkdir(at(dst, "out"), 0755);
	/* out/t is a symlink to a directory outside. */
	cr_assert_eq(symlink(outside, at(dst, "out/t")), 0);
	pair_new(&p, at(dst, "out"), TETHER_XFER_RECURSIVE);
	cr_assert_eq(tether_xfer_send_add(p.s, at(src, "t"), NULL), 0);
	cr_assert_eq(run(&p), 0);
	cr_assert_eq(p.files_ok, 0);
	cr_assert_eq(p.files_failed, 2, "%s", p.last_reason);
	pair_free(&p);
	cr_assert_eq(access(at(dst, "outside/x"), F_OK), -1);
}

Test(xfer, full_disk_or_size_limit_leaves_nothing_behind)
{
	struct rlimit rl = {1 << 20, 1 << 20}, old;
	char src[PATH_MAX], dst[PATH_MAX];
	struct pair p;

	random_file(at(src, "f"), 3 << 20);
	random_file(at(src, "small"), 1000);
	mkdir(at(dst, "out"), 0755);
	signal(SIGXFSZ, SIG_IGN);
	cr_assert_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
	pair_new(&p, dst, 0);
	cr_assert_eq(tether_xfer_send_add(p.s, at(src, "f"), NULL), 0);
	cr_assert_eq(tether_xfer_send_add(p.s, at(src, "small"), NULL), 0);
	cr_assert_eq(run(&p), 0);
	setrlimit(RLIMIT_FSIZE, &old);
	cr_assert_eq(p.files_failed, 1);
	cr_assert_eq(p.files_ok, 1);
	cr_assert(strstr(p.last_reason, "File too large") != NULL, "%s",
		  p.last_reason);
	pair_free(&p);
	cr_assert_eq(access(at(dst, "out/f"), F_OK), -1);
	cr_assert_eq(count_parts(at(dst, "out")), 0);
	same_file(at(src, "small"), at(dst, "out/small"));
}

/* A hostile sender: bad paths and malformed bodies end the transfer. */
Test(xfer, receiver_rejects_bad_entries)
{
	static const char *const bad[] = {"../x", "a/../../x", "/etc/x", "a//b",
					  ".",	  "a/",	       ""};
	char dst[PATH_MAX];
	uint8_t body[128];
	struct pair p;
	size_t i, n, k;

	mkdir(at(dst, "out"), 0755);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		pair_new(&p, dst, 0);
		n = 0;
		body[n++] = TETHER_XFER_FILE;
		k = strlen(bad[i]);
		body[n++] = 0, body[n++] = 0, body[n++] = 0;
		body[n++] = (uint8_t)k;
		memcpy(body + n, bad[i], k);
		n += k;
		memset(body + n, 0, 4 + 8 + 4 + 8 + 4);
		body[n + 2] = 0x01; /* mode 0400 */
		n += 4 + 8 + 4 + 8 + 4;
		cr_assert_eq(
		    tether_xfer_recv_input(p.r, TETHER_MSG_ENTRY, body, n),
		    TETHER_ERR_PROTOCOL, "path \"%s\"", bad[i]);
		/* Every truncation of it is refused too, never a crash. */
		for (k = 0; k < n; k++)
			cr_assert_eq(tether_xfer_recv_input(
					 p.r, TETHER_MSG_ENTRY, body, k),
				     TETHER_ERR_PROTOCOL, "\"%s\" cut at %zu",
				     bad[i], k);
		cr_assert_eq(tether_xfer_recv_input(p.r, TETHER_MSG_BLOCK,
						    (const uint8_t *)"\0x", 2),
			     TETHER_ERR_PROTOCOL);
		pair_free(&p);
	}
	cr_assert_eq(access(at(dst, "x"), F_OK), -1);
}

/* Sends one ENTRY straight to the receiver; returns its verdict. */
static int send_entry_raw(struct pair *p, uint8_t type, const char *path,
			  uint32_t mode)
{
	uint8_t body[256];
	size_t n = 0, k = strlen(path);

	body[n++] = type;
	body[n++] = 0, body[n++] = 0, body[n++] = 0, body[n++] = (uint8_t)k;
	memcpy(body + n, path, k);
	n += k;
	memset(body + n, 0, 4 + 8 + 4 + 8 + 4);
	body[n + 2] = (uint8_t)(mode >> 8);
	body[n + 3] = (uint8_t)mode;
	n += 4 + 8 + 4 + 8 + 4;
	return tether_xfer_recv_input(p->r, TETHER_MSG_ENTRY, body, n);
}

Test(xfer, get_takes_only_what_was_asked_for)
{
	char *pats[] = {"/var/log/*.log", "notes.txt"};
	char dst[PATH_MAX];
	struct pair p;

	mkdir(at(dst, "out"), 0755);
	pair_new(&p, dst, 0);
	cr_assert_eq(tether_xfer_recv_expect(p.r, pats, 2, 0), 0);
	cr_assert_eq(send_entry_raw(&p, TETHER_XFER_DIR, "x.log", 0755),
		     TETHER_ERR_PROTOCOL, "a directory without -r");
	pair_free(&p);

	pair_new(&p, dst, 0);
	cr_assert_eq(tether_xfer_recv_expect(p.r, pats, 2, 0), 0);
	cr_assert_eq(send_entry_raw(&p, TETHER_XFER_FILE, "a.log", 0644), 0);
	pair_free(&p);

	pair_new(&p, dst, 0);
	cr_assert_eq(tether_xfer_recv_expect(p.r, pats, 2, 0), 0);
	cr_assert_eq(send_entry_raw(&p, TETHER_XFER_FILE, ".bashrc", 0644),
		     TETHER_ERR_PROTOCOL);
	pair_free(&p);

	pair_new(&p, dst, 0);
	cr_assert_eq(tether_xfer_recv_expect(p.r, pats, 2, 0), 0);
	cr_assert_eq(send_entry_raw(&p, TETHER_XFER_FILE, ".x.log", 0644),
		     TETHER_ERR_PROTOCOL, "a leading dot must be asked for");
	pair_free(&p);

	pair_new(&p, dst, TETHER_XFER_RECURSIVE);
	cr_assert_eq(
	    tether_xfer_recv_expect(p.r, pats, 2, TETHER_XFER_RECURSIVE), 0);
	cr_assert_eq(
	    send_entry_raw(&p, TETHER_XFER_FILE, "notes.txt/../x", 0644),
	    TETHER_ERR_PROTOCOL);
	pair_free(&p);
	cr_assert_eq(access(at(dst, "out/.bashrc"), F_OK), -1);
}

Test(xfer, special_bits_are_dropped_and_existing_dirs_kept)
{
	char src[PATH_MAX], dst[PATH_MAX];
	struct stat st;
	struct pair p;

	mkdir(at(src, "t"), 0755);
	random_file(at(src, "t/suid"), 100);
	chmod(src, 04777);
	chmod(at(src, "t"), 01777);
	mkdir(at(dst, "out"), 0755);
	mkdir(at(dst, "out/t"), 0700);
	umask(022);
	pair_new(&p, at(dst, "out"), TETHER_XFER_RECURSIVE);
	cr_assert_eq(tether_xfer_send_add(p.s, at(src, "t"), NULL), 0);
	cr_assert_eq(run(&p), 0);
	pair_free(&p);
	cr_assert_eq(stat(at(dst, "out/t/suid"), &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0755, "mode %o", st.st_mode & 07777);
	cr_assert_eq(stat(at(dst, "out/t"), &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0700, "an existing directory changed");
}

Test(xfer, a_temp_file_that_is_not_plainly_ours_is_not_resumed)
{
	char src[PATH_MAX], dst[PATH_MAX], part[PATH_MAX];
	struct pair p;
	DIR *d;
	struct dirent *de;

	random_file(at(src, "f"), 4 << 20);
	mkdir(at(dst, "out"), 0755);
	pair_new(&p, dst, 0);
	p.stop_after_blocks = 5;
	cr_assert_eq(tether_xfer_send_add(p.s, at(src, "f"), NULL), 0);
	cr_assert_eq(run(&p), 1);
	pair_free(&p);
	/* Someone else could write it now. */
	d = opendir(at(dst, "out"));
	cr_assert_not_null(d);
	while ((de = readdir(d)) != NULL)
		if (strstr(de->d_name, ".tether-part") != NULL)
			snprintf(part, sizeof(part), "%s/out/%s", dir,
				 de->d_name);
	closedir(d);
	cr_assert_eq(chmod(part, 0666), 0);
	pair_new(&p, at(dst, "out"), 0);
	cr_assert_eq(tether_xfer_send_add(p.s, at(src, "f"), NULL), 0);
	cr_assert_eq(run(&p), 0);
	cr_assert_eq(p.offset, 0);
	cr_assert_eq(p.files_ok, 1);
	pair_free(&p);
	same_file(at(src, "f"), at(dst, "out/f"));
}

Test(xfer, a_failed_rename_fails_the_file_not_the_transfer)
{
	char src[PATH_MAX], dst[PATH_MAX];
	struct qmsg *m;
	struct pair p;
	int r = 0;

	random_file(at(src, "a"), 1000);
	random_file(at(src, "b"), 1000);
	mkdir(at(dst, "out"), 0755);
	pair_new(&p, dst, 0);
	cr_assert_eq(tether_xfer_send_add(p.s, at(src, "a"), NULL), 0);
	cr_assert_eq(tether_xfer_send_add(p.s, at(src, "b"), NULL), 0);
	cr_assert_eq(tether_xfer_send_pump(p.s), 0);
	/* ENTRY(a) in; then a directory appears where "a" is to go. */
	m = pop(&p.to_recv);
	cr_assert_eq(tether_xfer_recv_input(p.r, m->msg, m->body, m->len), 0);
	free(m);
	mkdir(at(dst, "out/a"), 0755);
	random_file(at(dst, "out/a/x"), 1);
	while (r == 0 && !tether_xfer_send_done(p.s)) {
		if ((m = pop(&p.to_recv)) != NULL)
			r = tether_xfer_recv_input(p.r, m->msg, m->body,
						   m->len);
		else if ((m = pop(&p.to_send)) != NULL)
			r = tether_xfer_send_input(p.s, m->msg, m->body,
						   m->len);
		else
			cr_assert_fail("stalled");
		free(m);
	}
	cr_assert_eq(r, 0, "%s", tether_strerror(r));
	cr_assert_eq(p.files_failed, 1);
	cr_assert_eq(p.files_ok, 1);
	pair_free(&p);
	same_file(at(src, "b"), at(dst, "out/b"));
}
