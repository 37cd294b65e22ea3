/*
 * libFuzzer target for the file transfer engine (common/src/xfer.c) and
 * the codecs of its messages (common/src/msg.c): the real receiver that
 * the agent runs for `tether put` and the console for `tether get`, fed
 * what a hostile sender can send (ENTRY, BLOCK raw or deflated, FILE_END,
 * SKIP, XFER_END), and the real sender, fed what a hostile receiver can
 * answer (ACCEPT, RESULT, XFER_END).  Messages arrive as the channel
 * delivers them once opened, with no link and no seal.
 *
 * The receiver writes into d/ of a scratch directory, emptied after each
 * input whatever modes it was given; the sender reads a tree made there
 * once, src/: a.txt (compressible), d/ with the files b and c (which
 * does not compress) and a FIFO p, and s/ with the symlink l (apart, so
 * that whatever order readdir() gives, a sender's entries need the same
 * answers).
 *
 * Input: byte 0 picks the engine and its setup.
 *   bit 7 clear, the receiver:
 *     bit 0  the destination is d/x, not there yet, which names the one
 *            top-level entry (as "tether put f host:newname" does)
 *     bit 1  it expects names, as `tether get` does: "*.txt" and "d"
 *            (bit 2 clear), or "." whose name cannot be told (bit 2 set)
 *     bit 3  ... and asked for them with TETHER_XFER_RECURSIVE
 *   bit 7 set, the sender, of src/a.txt, src/d and src/s:
 *     bit 0  TETHER_XFER_RECURSIVE
 *     bit 1  TETHER_XFER_NO_COMPRESS
 *     bit 2  also a source the caller refused and one that is not there
 * The rest is records "u8 message | u16 length | body" (a length past the
 * end takes what is left).  Message 0xfe is the link breaking instead:
 * the engine is freed and a new one started with the same setup, as the
 * next attempt of a transfer is (so the receiver resumes; a symlink left
 * as d/x goes first, or the next attempt would follow it).  For the
 * sender, 0xff is channel credit: a u32 body sets its window (any other
 * body closes it) and the sender is pumped, as a WINDOW message would.
 * The first error an engine returns ends the input, as it closes the
 * channel in the agent and the console.
 *
 * Invariants: every body that decodes encodes back to the same bytes, and
 * one that does not is refused with a documented error and an empty
 * struct, and never taken by an engine; what an engine sends is a message
 * of its side that decodes, the sender's BLOCKs within its window and the
 * receiver's ACCEPT within the file; the receiver credits back exactly
 * the BLOCK it was handed, once, and sends XFER_END once, as its last
 * message; every finished entry is reported consistently, and counted
 * among the failures if it failed; and nothing lands outside d/ (in the
 * d/x setup, nothing in d/ but x and its temporary files).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <tether/buf.h>
#include <tether/err.h>
#include <tether/msg.h>
#include <tether/proto.h>
#include <tether/xfer.h>

#include "fuzz.h"

#define REC_BREAK 0xfe
#define REC_WINDOW 0xff
/* The sender's window until the input says otherwise. */
#define WINDOW (4u * 1024 * 1024)
/* Room for any body an engine sends but BLOCK. */
#define BODY_MAX (64 + 2 * TETHER_MSG_PATH_MAX)

struct fuzz {
	bool sender;
	uint8_t setup;
	struct tether_xfer_send *s;
	struct tether_xfer_recv *r;
	size_t window;
	/* The receiver: the BLOCK being input, and whether it was credited. */
	bool in_block;
	size_t block_len;
	bool credited;
	bool ended;	     /* XFER_END went */
	uint64_t failures;   /* entries reported failed or skipped */
	uint64_t entry_size; /* of the last file ENTRY input */
};

/* What every input shares: the scratch tree, and whether to trace. */
static bool verbose;
static char dir[] = "/tmp/tether-fuzz-xfer-XXXXXX";
static char dest_dir[sizeof(dir) + 2];
static char dest_as[sizeof(dir) + 4];
static char src_a[sizeof(dir) + 10];
static char src_d[sizeof(dir) + 6];
static char src_s[sizeof(dir) + 6];
static char src_gone[sizeof(dir) + 10];

/* ---- Codecs ------------------------------------------------------------ */

/*
 * Decodes body as msg with tether/msg.h and, when it decodes, encodes it
 * again: the same bytes must come back.  *sizep gets a file ENTRY's size.
 * Returns whether it decoded.
 */
static bool round_trip(uint8_t msg, const uint8_t *body, size_t len,
		       uint64_t *sizep)
{
	struct tether_buf *b = tether_buf_new(TETHER_FRAME_MAX);
	union {
		struct tether_msg_entry entry;
		struct tether_msg_accept accept;
		struct tether_msg_block block;
		struct tether_msg_file_end file_end;
		struct tether_msg_result result;
		struct tether_msg_skip skip;
	} m;
	static const uint8_t zero[sizeof(m)];
	size_t size = 0;
	int r, e;

	CHECK(b != NULL);
	switch (msg) {
	case TETHER_MSG_ENTRY:
		r = tether_msg_decode_entry(body, len, &m.entry);
		size = sizeof(m.entry);
		e = r == 0 ? tether_msg_encode_entry(b, &m.entry) : 0;
		if (r == 0 && m.entry.type == TETHER_XFER_FILE)
			*sizep = m.entry.size;
		tether_msg_clear_entry(&m.entry);
		break;
	case TETHER_MSG_ACCEPT:
		r = tether_msg_decode_accept(body, len, &m.accept);
		size = sizeof(m.accept);
		e = r == 0 ? tether_msg_encode_accept(b, &m.accept) : 0;
		break;
	case TETHER_MSG_BLOCK:
		r = tether_msg_decode_block(body, len, &m.block);
		size = sizeof(m.block);
		e = r == 0 ? tether_msg_encode_block(b, &m.block) : 0;
		break;
	case TETHER_MSG_FILE_END:
		r = tether_msg_decode_file_end(body, len, &m.file_end);
		size = sizeof(m.file_end);
		e = r == 0 ? tether_msg_encode_file_end(b, &m.file_end) : 0;
		tether_msg_clear_file_end(&m.file_end);
		break;
	case TETHER_MSG_RESULT:
		r = tether_msg_decode_result(body, len, &m.result);
		size = sizeof(m.result);
		e = r == 0 ? tether_msg_encode_result(b, &m.result) : 0;
		tether_msg_clear_result(&m.result);
		break;
	case TETHER_MSG_SKIP:
		r = tether_msg_decode_skip(body, len, &m.skip);
		size = sizeof(m.skip);
		e = r == 0 ? tether_msg_encode_skip(b, &m.skip) : 0;
		tether_msg_clear_skip(&m.skip);
		break;
	case TETHER_MSG_XFER_END:
		r = tether_msg_decode_empty(body, len);
		e = r == 0 ? tether_msg_encode_empty(b) : 0;
		break;
	default:
		tether_buf_free(b);
		return false;
	}
	if (r != 0) {
		/* One of the documented refusals, leaving nothing behind. */
		CHECK(r == TETHER_ERR_INCOMPLETE || r == TETHER_ERR_TOO_LARGE ||
		      r == TETHER_ERR_FORMAT || r == TETHER_ERR_TRAILING_DATA ||
		      r == TETHER_ERR_NOMEM);
		CHECK(memcmp(&m, zero, size) == 0);
	} else {
		CHECK(e == 0);
		CHECK(tether_buf_len(b) == len);
		CHECK(len == 0 || memcmp(tether_buf_ptr(b), body, len) == 0);
	}
	tether_buf_free(b);
	return r == 0;
}

/* ---- The channel, as each engine sees it ------------------------------- */

static int recv_send(void *arg, uint8_t msg, const void *body, size_t len)
{
	struct fuzz *z = arg;
	struct tether_msg_accept a;
	uint64_t ignored;

	if (verbose)
		fprintf(stderr, "  sends %u (%zu bytes)\n", msg, len);
	CHECK(!z->ended);
	CHECK(msg == TETHER_MSG_ACCEPT || msg == TETHER_MSG_RESULT ||
	      msg == TETHER_MSG_XFER_END);
	CHECK(len <= BODY_MAX);
	CHECK(round_trip(msg, body, len, &ignored));
	if (msg == TETHER_MSG_ACCEPT) {
		CHECK(tether_msg_decode_accept(body, len, &a) == 0);
		CHECK(a.offset <= z->entry_size);
	}
	z->ended = msg == TETHER_MSG_XFER_END;
	return 0;
}

static size_t recv_window(void *arg)
{
	(void)arg;
	return WINDOW;
}

static int recv_consumed(void *arg, size_t n)
{
	struct fuzz *z = arg;

	CHECK(z->in_block && !z->credited && n == z->block_len);
	z->credited = true;
	return 0;
}

static int send_send(void *arg, uint8_t msg, const void *body, size_t len)
{
	struct fuzz *z = arg;
	uint64_t ignored;

	if (verbose)
		fprintf(stderr, "  sends %u (%zu bytes)\n", msg, len);
	CHECK(!z->ended);
	CHECK(msg == TETHER_MSG_ENTRY || msg == TETHER_MSG_BLOCK ||
	      msg == TETHER_MSG_FILE_END || msg == TETHER_MSG_SKIP ||
	      msg == TETHER_MSG_XFER_END);
	CHECK(round_trip(msg, body, len, &ignored));
	if (msg == TETHER_MSG_BLOCK) {
		CHECK(len <= z->window && len <= 1 + TETHER_XFER_BLOCK);
		z->window -= len;
	} else {
		CHECK(len <= BODY_MAX);
	}
	z->ended = msg == TETHER_MSG_XFER_END;
	return 0;
}

static size_t send_window(void *arg)
{
	return ((struct fuzz *)arg)->window;
}

static int send_consumed(void *arg, size_t n)
{
	(void)arg;
	(void)n;
	CHECK(!"the sender credits nothing back");
	return 0;
}

/* A finished entry, as either engine reports it. */
static void on_file(void *arg, const struct tether_xfer_file *f)
{
	struct fuzz *z = arg;

	CHECK(f->path != NULL && f->local != NULL && f->reason != NULL);
	if (verbose)
		fprintf(stderr, "  %s %s: %s %s\n",
			tether_xfer_type_name(f->type), f->path,
			f->ok ? "ok" : "failed", f->reason);
	CHECK(f->type >= 0 && f->type <= TETHER_XFER_SYMLINK);
	CHECK(f->offset <= f->size && f->sent <= f->size - f->offset);
	if (f->ok)
		CHECK(f->type != 0);
	if (f->ok && f->type == TETHER_XFER_FILE)
		CHECK(strlen(f->sha256) == 64);
	if (!f->ok) {
		CHECK(f->sha256[0] == '\0');
		z->failures++;
	}
	/* The receiver words its own outcomes; a SKIP's is the sender's. */
	if (!z->sender && f->type != 0)
		CHECK(f->ok == (f->reason[0] == '\0'));
}

static void on_progress(void *arg, const struct tether_xfer_progress *p)
{
	(void)arg;
	CHECK(p->file_done <= p->file_size);
}

/* ---- The scratch tree --------------------------------------------------- */

/* path with reps numbered lines of text. */
static void write_file(const char *path, const char *text, unsigned reps)
{
	FILE *fp = fopen(path, "w");
	unsigned i;

	CHECK(fp != NULL);
	for (i = 0; i < reps; i++)
		CHECK(fprintf(fp, "%u %s\n", i, text) > 0);
	CHECK(fclose(fp) == 0);
}

/* path with n bytes that do not compress (a fixed LCG's). */
static void write_noise(const char *path, size_t n)
{
	FILE *fp = fopen(path, "w");
	uint32_t x = 1;
	size_t i;

	CHECK(fp != NULL);
	for (i = 0; i < n; i++) {
		x = x * 1103515245u + 12345u;
		CHECK(fputc((int)(x >> 24), fp) != EOF);
	}
	CHECK(fclose(fp) == 0);
}

/*
 * Removes what is in the directory fd (which it takes), whatever modes a
 * sender gave it: a directory of mode 0 can be neither read nor emptied
 * until its owner gives the permissions back.
 */
static void empty_at(int fd)
{
	struct dirent *de;
	DIR *d = fdopendir(fd);
	int sub;

	if (d == NULL) {
		close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		/* Files and symlinks go; a symlink is never followed. */
		if (unlinkat(dirfd(d), de->d_name, 0) == 0 || errno != EISDIR)
			continue;
		fchmodat(dirfd(d), de->d_name, 0700, 0);
		sub = openat(dirfd(d), de->d_name,
			     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub >= 0)
			empty_at(sub);
		unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR);
	}
	closedir(d);
}

static void empty_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	CHECK(fd >= 0);
	empty_at(fd);
}

static void remove_dir(void)
{
	empty_dir(dir);
	rmdir(dir);
}

static void init_once(void)
{
	static bool done;
	char path[sizeof(dir) + 16];

	if (done)
		return;
	done = true;
	/* TETHER_FUZZ_VERBOSE=1 traces records and outcomes, for seeds. */
	verbose = getenv("TETHER_FUZZ_VERBOSE") != NULL;
	CHECK(mkdtemp(dir) != NULL);
	atexit(remove_dir);
	snprintf(dest_dir, sizeof(dest_dir), "%s/d", dir);
	snprintf(dest_as, sizeof(dest_as), "%s/d/x", dir);
	snprintf(src_a, sizeof(src_a), "%s/src/a.txt", dir);
	snprintf(src_d, sizeof(src_d), "%s/src/d", dir);
	snprintf(src_s, sizeof(src_s), "%s/src/s", dir);
	snprintf(src_gone, sizeof(src_gone), "%s/src/gone", dir);
	CHECK(mkdir(dest_dir, 0700) == 0);
	snprintf(path, sizeof(path), "%s/src", dir);
	CHECK(mkdir(path, 0700) == 0);
	CHECK(mkdir(src_d, 0755) == 0);
	CHECK(mkdir(src_s, 0750) == 0);
	/* Big enough to be worth deflating, small enough to be quick. */
	write_file(src_a, "a line of a file that compresses well", 600);
	snprintf(path, sizeof(path), "%s/b", src_d);
	write_file(path, "b", 1);
	snprintf(path, sizeof(path), "%s/c", src_d);
	write_noise(path, 300);
	snprintf(path, sizeof(path), "%s/p", src_d);
	CHECK(mkfifo(path, 0600) == 0);
	snprintf(path, sizeof(path), "%s/l", src_s);
	CHECK(symlink("../a.txt", path) == 0);
}

/*
 * Nothing is written beside d/; with d/x as the destination, nothing in
 * d/ but x and x's temporary files (".x.<hex>.tether-part").
 */
static void check_confined(const struct fuzz *z)
{
	static const char part[] = ".tether-part";
	struct dirent *de;
	size_t n;
	DIR *d;

	d = opendir(dir);
	CHECK(d != NULL);
	while ((de = readdir(d)) != NULL)
		CHECK(strcmp(de->d_name, ".") == 0 ||
		      strcmp(de->d_name, "..") == 0 ||
		      strcmp(de->d_name, "d") == 0 ||
		      strcmp(de->d_name, "src") == 0);
	closedir(d);
	if (z->sender || (z->setup & 0x01) == 0)
		return;
	d = opendir(dest_dir);
	CHECK(d != NULL);
	while ((de = readdir(d)) != NULL) {
		n = strlen(de->d_name);
		CHECK(strcmp(de->d_name, ".") == 0 ||
		      strcmp(de->d_name, "..") == 0 ||
		      strcmp(de->d_name, "x") == 0 ||
		      (strncmp(de->d_name, ".x.", 3) == 0 &&
		       n > sizeof(part) - 1 &&
		       strcmp(de->d_name + n - (sizeof(part) - 1), part) == 0));
	}
	closedir(d);
}

/* ---- The engines -------------------------------------------------------- */

static int start(struct fuzz *z)
{
	static char txt[] = "*.txt", d[] = "d", any[] = ".";
	static char *const named[] = {txt, d}, *const any_one[] = {any};
	const struct tether_xfer_cbs cbs = {on_file, on_progress, z};
	struct tether_xfer_io io;
	unsigned flags = 0;
	char err[256];
	int r = 0;

	z->ended = false;
	z->failures = 0;
	if (z->sender) {
		io = (struct tether_xfer_io){send_send, send_window,
					     send_consumed, z};
		if (z->setup & 0x01)
			flags |= TETHER_XFER_RECURSIVE;
		if (z->setup & 0x02)
			flags |= TETHER_XFER_NO_COMPRESS;
		z->window = WINDOW;
		z->s = tether_xfer_send_new(&io, &cbs, flags);
		CHECK(z->s != NULL);
		CHECK(tether_xfer_send_add(z->s, src_a, NULL) == 0);
		CHECK(tether_xfer_send_add(z->s, src_d, NULL) == 0);
		CHECK(tether_xfer_send_add(z->s, src_s, NULL) == 0);
		if (z->setup & 0x04) {
			CHECK(tether_xfer_send_skip(z->s, "secret",
						    "not allowed") == 0);
			CHECK(tether_xfer_send_add(z->s, src_gone, NULL) == 0);
		}
		return tether_xfer_send_pump(z->s);
	}
	io = (struct tether_xfer_io){recv_send, recv_window, recv_consumed, z};
	z->r = tether_xfer_recv_new((z->setup & 0x01) ? dest_as : dest_dir, &io,
				    &cbs, err, sizeof(err));
	CHECK(z->r != NULL);
	if (z->setup & 0x08)
		flags |= TETHER_XFER_RECURSIVE;
	if ((z->setup & 0x02) && (z->setup & 0x04))
		r = tether_xfer_recv_expect(z->r, any_one, 1, flags);
	else if (z->setup & 0x02)
		r = tether_xfer_recv_expect(z->r, named, 2, flags);
	CHECK(r == 0);
	return 0;
}

static void stop(struct fuzz *z)
{
	/* The engine counts the failures it reported, no more, no less. */
	if (z->s != NULL)
		CHECK(tether_xfer_send_failures(z->s) == z->failures);
	if (z->r != NULL)
		CHECK(tether_xfer_recv_failures(z->r) == z->failures);
	tether_xfer_send_free(z->s);
	tether_xfer_recv_free(z->r);
	z->s = NULL;
	z->r = NULL;
}

/* One record for the engine; 0, or the error that ends the transfer. */
static int input(struct fuzz *z, uint8_t msg, const uint8_t *body, size_t len)
{
	struct stat st;
	uint32_t credit;
	bool decoded;
	int r;

	if (msg == REC_BREAK) {
		stop(z);
		/*
		 * A destination that is a symlink to a directory is
		 * followed (the user named it): one an attempt left as d/x
		 * would have the next write wherever it points.
		 */
		if (lstat(dest_as, &st) == 0 && S_ISLNK(st.st_mode))
			CHECK(unlink(dest_as) == 0);
		return start(z);
	}
	if (z->sender && msg == REC_WINDOW) {
		credit = len == 4 ? (uint32_t)body[0] << 24 |
					(uint32_t)body[1] << 16 |
					(uint32_t)body[2] << 8 | body[3]
				  : 0;
		z->window = credit;
		return tether_xfer_send_pump(z->s);
	}
	decoded = round_trip(msg, body, len, &z->entry_size);
	if (z->sender) {
		r = tether_xfer_send_input(z->s, msg, body, len);
		/* An ACCEPT lets a file's blocks go, as the agent pumps. */
		if (r == 0)
			r = tether_xfer_send_pump(z->s);
		if (r == 0 && msg == TETHER_MSG_XFER_END)
			CHECK(tether_xfer_send_done(z->s));
	} else {
		z->in_block = msg == TETHER_MSG_BLOCK;
		z->block_len = len;
		z->credited = false;
		r = tether_xfer_recv_input(z->r, msg, body, len);
		z->in_block = false;
		/* Every BLOCK the receiver takes is credited back. */
		if (r == 0 && msg == TETHER_MSG_BLOCK)
			CHECK(z->credited);
		CHECK(z->ended == tether_xfer_recv_done(z->r));
	}
	if (verbose)
		fprintf(stderr, "%s %u (%zu bytes): %s\n",
			z->sender ? "sender" : "receiver", msg, len,
			tether_strerror(r));
	/* A message that does not decode is never taken. */
	if (!decoded)
		CHECK(r != 0);
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz z;
	const uint8_t *p;
	size_t n, len;
	uint8_t msg;

	if (size < 1)
		return 0;
	init_once();
	memset(&z, 0, sizeof(z));
	z.sender = (data[0] & 0x80) != 0;
	z.setup = data[0] & 0x7f;
	p = data + 1;
	n = size - 1;
	if (start(&z) == 0) {
		while (n >= 3) {
			msg = p[0];
			len = (size_t)p[1] << 8 | p[2];
			p += 3;
			n -= 3;
			if (len > n)
				len = n;
			if (input(&z, msg, p, len) != 0)
				break;
			p += len;
			n -= len;
		}
	}
	stop(&z);
	check_confined(&z);
	empty_dir(dest_dir);
	return 0;
}
