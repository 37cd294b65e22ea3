/*
 * File transfer engine: the sender walks its sources and streams them, the
 * receiver writes them under temporary names, verifies and renames them
 * (protocol and guarantees: tether/xfer.h and docs/protocol.md, "File
 * transfer").  File I/O is blocking: a read or write of one block from the
 * page cache costs less than the event loop's own bookkeeping, and the
 * engine never holds more than one block in memory per direction.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <zlib.h>

#include <tether/alloc.h>
#include <tether/buf.h>
#include <tether/crypto.h>
#include <tether/err.h>
#include <tether/log.h>
#include <tether/msg.h>
#include <tether/num.h>
#include <tether/proto.h>
#include <tether/xfer.h>

/* Deflate a sample this big first; compress the block only if it shrank. */
#define SAMPLE_LEN (16u * 1024)
/* A compressed block (or sample) must be this much smaller to be used. */
#define GAIN(n) ((n) - (n) / 16)
/* Blocks sent raw, at most, before the next sample after failed ones. */
#define BACKOFF_MAX 64
/* Deflate or not: rates are compared over intervals this long... */
#define TUNE_MS 500
/* ...and a winner is kept for up to this many before trying again. */
#define TUNE_HOLD_MAX 32
/* Room for an ENTRY: fixed fields and two strings. */
#define ENTRY_MAX (64 + 2 * TETHER_MSG_PATH_MAX)
/* Directories whose mode and mtime the receiver sets at the end. */
#define FIXUPS_MAX (1u << 20)

/* A target the decoder lets through is one symlinkat() can make. */
_Static_assert(TETHER_MSG_TARGET_MAX == PATH_MAX - 1,
	       "symlink targets are capped at PATH_MAX - 1");

/* ---- Shared helpers ---------------------------------------------------- */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static EVP_MD_CTX *sha_new(void)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(ctx);
		ctx = NULL;
	}
	return ctx;
}

static int sha_restart(EVP_MD_CTX *ctx)
{
	return EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1
		   ? TETHER_OK
		   : TETHER_ERR_CRYPTO;
}

static int sha_final(EVP_MD_CTX *ctx, uint8_t out[TETHER_SHA256_LEN])
{
	unsigned int n = 0;

	return EVP_DigestFinal_ex(ctx, out, &n) == 1 && n == TETHER_SHA256_LEN
		   ? TETHER_OK
		   : TETHER_ERR_CRYPTO;
}

/*
 * Hashes [0, len) of fd into ctx with pread, so the file position does not
 * matter; buf is scratch of buflen bytes.  0, or -errno.
 */
static int hash_prefix(EVP_MD_CTX *ctx, int fd, uint64_t len, uint8_t *buf,
		       size_t buflen)
{
	uint64_t pos = 0;
	ssize_t n;

	while (pos < len) {
		size_t want = len - pos < buflen ? (size_t)(len - pos) : buflen;

		n = pread(fd, buf, want, (off_t)pos);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO; /* shorter than it said */
		if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1)
			return -ENOMEM;
		pos += (uint64_t)n;
	}
	return 0;
}

static bool valid_mtime(int64_t sec, uint32_t nsec)
{
	return nsec < 1000000000u && sec > -((int64_t)1 << 40) &&
	       sec < ((int64_t)1 << 40);
}

/*
 * A relative path a peer may name: '/'-joined non-empty parts, none "." or
 * "..", bounded length and depth.
 */
static bool valid_relpath(const char *p, size_t len)
{
	size_t i, start = 0, depth = 0;

	if (len == 0 || len > TETHER_MSG_PATH_MAX)
		return false;
	for (i = 0; i <= len; i++) {
		if (i < len && p[i] != '/')
			continue;
		if (i == start || (i - start == 1 && p[start] == '.') ||
		    (i - start == 2 && p[start] == '.' && p[start + 1] == '.'))
			return false;
		if (++depth > TETHER_XFER_DEPTH_MAX)
			return false;
		start = i + 1;
	}
	return true;
}

static void put_reason(char *out, size_t outlen, const char *what, int err)
{
	if (what != NULL && err != 0)
		snprintf(out, outlen, "%s: %s", what, strerror(err));
	else if (what != NULL)
		snprintf(out, outlen, "%s", what);
	else
		snprintf(out, outlen, "%s", strerror(err));
}

static void report(const struct tether_xfer_cbs *cbs,
		   const struct tether_xfer_file *f)
{
	if (cbs->on_file != NULL)
		cbs->on_file(cbs->arg, f);
}

/*
 * Sends msg with b's bytes as its body and frees b.  built is what
 * encoding into b returned (b NULL: it could not be allocated).
 */
static int send_built(const struct tether_xfer_io *io, uint8_t msg,
		      struct tether_buf *b, int built)
{
	int r = b == NULL ? TETHER_ERR_NOMEM : built;

	if (r == 0)
		r = io->send(io->arg, msg, tether_buf_ptr(b),
			     tether_buf_len(b));
	tether_buf_free(b);
	return r;
}

/*
 * A body from the peer that does not decode: the peer broke the
 * protocol.  Running out of memory while decoding it is ours.
 */
static int bad_body(int err)
{
	return err == TETHER_ERR_NOMEM ? err : TETHER_ERR_PROTOCOL;
}

const char *tether_xfer_type_name(int type)
{
	switch (type) {
	case TETHER_XFER_FILE:
		return "file";
	case TETHER_XFER_DIR:
		return "dir";
	case TETHER_XFER_SYMLINK:
		return "symlink";
	default:
		return "skip";
	}
}

/* ---- Sender ------------------------------------------------------------ */

enum send_state {
	SEND_IDLE,	  /* between entries */
	SEND_WAIT_ACCEPT, /* file ENTRY sent */
	SEND_DATA,	  /* streaming blocks */
	SEND_END,	  /* XFER_END sent */
};

/* A top-level source, or a SKIP the caller queued. */
struct send_src {
	struct send_src *next;
	char *path;
	char *name;
	char *reason; /* a SKIP */
};

/* An entry sent whose RESULT has not come yet. */
struct send_pend {
	struct send_pend *next;
	struct tether_xfer_file f; /* path and local point at the strings */
	char *path;
	char *local;
	uint64_t started;
};

/* One open directory of the tree being walked. */
struct send_level {
	DIR *dir;
	size_t rel_len;	  /* rel[] up to this directory */
	size_t local_len; /* local[] up to this directory */
};

struct tether_xfer_send {
	struct tether_xfer_io io;
	struct tether_xfer_cbs cbs;
	unsigned flags;
	enum send_state state;
	struct send_src *srcs, **srcs_tail;
	struct send_pend *pend, **pend_tail;
	struct send_level stack[TETHER_XFER_DEPTH_MAX];
	int depth;
	char rel[TETHER_MSG_PATH_MAX + NAME_MAX + 2];
	char local[PATH_MAX + TETHER_MSG_PATH_MAX + 2];
	/* The file being sent: its pend is the newest. */
	struct send_pend *cur;
	int fd;
	uint64_t pos;
	EVP_MD_CTX *sha;
	uint64_t total_done;
	uint64_t files_done;
	uint64_t failures;
	bool peer_end;
	/* Compression: the sample test's back-off. */
	z_stream z;
	bool z_ready;
	unsigned skip_left;
	unsigned backoff;
	/*
	 * Whether deflating pays: on a fast path the sender's CPU is the
	 * limit and zlib (~100 MB/s) slows it down, on a slow one it
	 * multiplies what the path carries.  So the two modes are timed
	 * against each other on the data itself (see tune()).
	 */
	bool z_off;	 /* deflate nothing for now */
	bool z_probing;	 /* this interval tries the other mode */
	bool z_fixed;	 /* test hook: never tune */
	unsigned z_hold; /* intervals before the next probe */
	unsigned z_hold_len;
	uint64_t iv_start;	 /* ms */
	uint64_t iv_bytes;	 /* content sent in this interval */
	uint64_t rate[2];	 /* content bytes/s: [0] deflating, [1] raw */
	struct tether_buf *blk;	 /* BLOCK body, raw; scratch between blocks */
	struct tether_buf *zblk; /* BLOCK body, deflated */
	uint8_t *msg;		 /* ENTRY and other small bodies */
	int64_t corrupt_at;	 /* test hook: file byte to flip, or -1 */
};

/*
 * Empties a block buffer without wiping it: it holds file content, not
 * secrets, and wiping 192 KiB per block would cost.
 */
static void block_empty(struct tether_buf *b)
{
	tether_buf_consume(b, tether_buf_len(b));
}

/*
 * A buffer for BLOCK bodies, allocated in full at once: the file is read
 * straight into it, and a transfer that started does not run out of
 * memory at its first block.
 */
static struct tether_buf *block_new(void)
{
	struct tether_buf *b = tether_buf_new(1 + TETHER_XFER_BLOCK);
	uint8_t *p;

	if (b == NULL)
		return NULL;
	if (tether_buf_reserve(b, 1 + TETHER_XFER_BLOCK, &p) != 0) {
		tether_buf_free(b);
		return NULL;
	}
	block_empty(b);
	return b;
}

/* Scratch of 1 + TETHER_XFER_BLOCK bytes in s->blk, between blocks. */
static uint8_t *block_scratch(struct tether_xfer_send *s)
{
	uint8_t *p;

	block_empty(s->blk);
	if (tether_buf_reserve(s->blk, 1 + TETHER_XFER_BLOCK, &p) != 0)
		return NULL;
	return p;
}

struct tether_xfer_send *tether_xfer_send_new(const struct tether_xfer_io *io,
					      const struct tether_xfer_cbs *cbs,
					      unsigned flags)
{
	struct tether_xfer_send *s = tether_calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->io = *io;
	s->cbs = *cbs;
	s->flags = flags;
	s->fd = -1;
	s->srcs_tail = &s->srcs;
	s->pend_tail = &s->pend;
	s->corrupt_at = -1;
	s->z_hold_len = 1;
	s->blk = block_new();
	s->zblk = block_new();
	s->msg = tether_malloc(ENTRY_MAX);
	s->sha = sha_new();
	if (s->blk == NULL || s->zblk == NULL || s->msg == NULL ||
	    s->sha == NULL)
		goto fail;
	if ((flags & TETHER_XFER_NO_COMPRESS) == 0) {
		if (deflateInit(&s->z, 1) != Z_OK)
			goto fail;
		s->z_ready = true;
	}
#ifdef TETHER_TEST_HOOKS
	s->z_fixed = getenv("TETHER_TEST_XFER_ALWAYS_DEFLATE") != NULL;
	{
		const char *v = getenv("TETHER_TEST_XFER_CORRUPT");
		uint64_t n;

		if (v != NULL && tether_num_parse_u64(v, 0, INT64_MAX, &n) == 0)
			s->corrupt_at = (int64_t)n;
	}
#endif
	return s;
fail:
	tether_xfer_send_free(s);
	return NULL;
}

static void pend_free(struct send_pend *p)
{
	if (p == NULL)
		return;
	tether_free(p->path);
	tether_free(p->local);
	tether_free(p);
}

void tether_xfer_send_free(struct tether_xfer_send *s)
{
	struct send_src *src, *nsrc;
	struct send_pend *p, *np;

	if (s == NULL)
		return;
	for (src = s->srcs; src != NULL; src = nsrc) {
		nsrc = src->next;
		tether_free(src->path);
		tether_free(src->name);
		tether_free(src->reason);
		tether_free(src);
	}
	for (p = s->pend; p != NULL; p = np) {
		np = p->next;
		pend_free(p);
	}
	while (s->depth > 0)
		closedir(s->stack[--s->depth].dir);
	if (s->fd >= 0)
		close(s->fd);
	if (s->z_ready)
		deflateEnd(&s->z);
	EVP_MD_CTX_free(s->sha);
	tether_buf_free(s->blk);
	tether_buf_free(s->zblk);
	tether_free(s->msg);
	tether_free(s);
}

static int queue_src(struct tether_xfer_send *s, const char *path,
		     const char *name, const char *reason)
{
	struct send_src *src = tether_calloc(1, sizeof(*src));

	if (src == NULL)
		return TETHER_ERR_NOMEM;
	src->path = tether_strdup(path);
	src->name = name != NULL ? tether_strdup(name) : NULL;
	src->reason = reason != NULL ? tether_strdup(reason) : NULL;
	if (src->path == NULL || (name != NULL && src->name == NULL) ||
	    (reason != NULL && src->reason == NULL)) {
		tether_free(src->path);
		tether_free(src->name);
		tether_free(src->reason);
		tether_free(src);
		return TETHER_ERR_NOMEM;
	}
	*s->srcs_tail = src;
	s->srcs_tail = &src->next;
	return TETHER_OK;
}

int tether_xfer_send_add(struct tether_xfer_send *s, const char *path,
			 const char *name)
{
	return queue_src(s, path, name, NULL);
}

int tether_xfer_send_skip(struct tether_xfer_send *s, const char *path,
			  const char *reason)
{
	return queue_src(s, path, NULL, reason);
}

/* SKIP: reported here and told to the receiver; no answer comes. */
static int send_skip(struct tether_xfer_send *s, const char *path,
		     const char *local, const char *reason)
{
	const struct tether_msg_skip m = {.path = path, .reason = reason};
	struct tether_buf *b = tether_buf_new(ENTRY_MAX);
	struct tether_xfer_file f;
	int r;

	if (b == NULL)
		return TETHER_ERR_NOMEM;
	r = tether_msg_encode_skip(b, &m);
	if ((r = send_built(&s->io, TETHER_MSG_SKIP, b, r)) != 0)
		return r;
	memset(&f, 0, sizeof(f));
	f.path = path;
	f.local = local;
	f.reason = reason;
	s->failures++;
	report(&s->cbs, &f);
	return TETHER_OK;
}

/* Sends ENTRY for the entry at s->rel / s->local and queues its pend. */
static int send_entry(struct tether_xfer_send *s, int type,
		      const struct stat *st, const char *target)
{
	uint64_t size = type == TETHER_XFER_FILE ? (uint64_t)st->st_size : 0;
	const struct tether_msg_entry m = {
	    .type = (uint8_t)type,
	    .path = s->rel,
	    .mode = (uint32_t)(st->st_mode & 07777),
	    .mtime_sec = (int64_t)st->st_mtim.tv_sec,
	    .mtime_nsec = (uint32_t)st->st_mtim.tv_nsec,
	    .size = size,
	    .target = target,
	};
	struct tether_buf *b = tether_buf_new(ENTRY_MAX);
	struct send_pend *p;
	int r;

	if (b == NULL)
		return TETHER_ERR_NOMEM;
	r = tether_msg_encode_entry(b, &m);
	p = tether_calloc(1, sizeof(*p));
	if (p == NULL || (p->path = tether_strdup(s->rel)) == NULL ||
	    (p->local = tether_strdup(s->local)) == NULL) {
		pend_free(p);
		tether_buf_free(b);
		return TETHER_ERR_NOMEM;
	}
	if ((r = send_built(&s->io, TETHER_MSG_ENTRY, b, r)) != 0) {
		pend_free(p);
		return r;
	}
	p->f.type = type;
	p->f.path = p->path;
	p->f.local = p->local;
	p->f.size = size;
	p->f.reason = "";
	p->started = now_ms();
	*s->pend_tail = p;
	s->pend_tail = &p->next;
	if (type == TETHER_XFER_FILE)
		s->cur = p;
	return TETHER_OK;
}

/* The file at fd (already open) becomes the current one. */
static int start_file(struct tether_xfer_send *s, int fd, const struct stat *st)
{
	int r;

	s->fd = fd;
	s->pos = 0;
	if ((r = send_entry(s, TETHER_XFER_FILE, st, NULL)) != 0) {
		close(fd);
		s->fd = -1;
		return r;
	}
	s->state = SEND_WAIT_ACCEPT;
	return TETHER_OK;
}

/* Appends "/name" to the paths of the current level. */
static bool push_name(struct tether_xfer_send *s, const char *name)
{
	struct send_level *lv = &s->stack[s->depth - 1];
	size_t n = strlen(name);

	if (lv->rel_len + 1 + n >= TETHER_MSG_PATH_MAX ||
	    lv->local_len + 1 + n >= sizeof(s->local))
		return false;
	s->rel[lv->rel_len] = '/';
	memcpy(s->rel + lv->rel_len + 1, name, n + 1);
	s->local[lv->local_len] = '/';
	memcpy(s->local + lv->local_len + 1, name, n + 1);
	return true;
}

/* Opens directory fd as a new level of the walk (takes fd). */
static int push_dir(struct tether_xfer_send *s, int fd, char *why,
		    size_t whylen)
{
	struct send_level *lv;
	DIR *d;

	if (s->depth >= TETHER_XFER_DEPTH_MAX) {
		close(fd);
		snprintf(why, whylen, "directory tree too deep");
		return -1;
	}
	d = fdopendir(fd);
	if (d == NULL) {
		put_reason(why, whylen, NULL, errno);
		close(fd);
		return -1;
	}
	lv = &s->stack[s->depth++];
	lv->dir = d;
	lv->rel_len = strlen(s->rel);
	lv->local_len = strlen(s->local);
	return 0;
}

/*
 * Next entry from the open directory on top of the stack: 1 if one was
 * sent (or skipped), 0 if the directory is finished, or TETHER_ERR_*.
 */
static int walk_next(struct tether_xfer_send *s)
{
	struct send_level *lv = &s->stack[s->depth - 1];
	char why[TETHER_MSG_REASON_MAX], target[PATH_MAX];
	struct dirent *de;
	struct stat st;
	ssize_t n;
	int fd;

	for (;;) {
		errno = 0;
		de = readdir(lv->dir);
		if (de == NULL) {
			closedir(lv->dir);
			s->depth--;
			return 0;
		}
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0)
			break;
	}
	if (!push_name(s, de->d_name)) {
		s->rel[lv->rel_len] = '\0';
		s->local[lv->local_len] = '\0';
		return send_skip(s, de->d_name, s->local, "path too long");
	}
	if (fstatat(dirfd(lv->dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return send_skip(s, s->rel, s->local, strerror(errno));
	if (S_ISREG(st.st_mode)) {
		/* Non-blocking: a FIFO swapped in must not hang us. */
		fd = openat(dirfd(lv->dir), de->d_name,
			    O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC |
				O_NONBLOCK);
		if (fd < 0)
			return send_skip(s, s->rel, s->local, strerror(errno));
		/* What we stat'ed may have been swapped since. */
		if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
			close(fd);
			return send_skip(s, s->rel, s->local,
					 "changed while being read");
		}
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
		return start_file(s, fd, &st) == 0 ? 1 : TETHER_ERR_SYS;
	}
	if (S_ISLNK(st.st_mode)) {
		n = readlinkat(dirfd(lv->dir), de->d_name, target,
			       sizeof(target) - 1);
		if (n < 0)
			return send_skip(s, s->rel, s->local, strerror(errno));
		target[n] = '\0';
		return send_entry(s, TETHER_XFER_SYMLINK, &st, target) == 0
			   ? 1
			   : TETHER_ERR_NOMEM;
	}
	if (!S_ISDIR(st.st_mode))
		return send_skip(s, s->rel, s->local, "not a regular file");
	fd = openat(dirfd(lv->dir), de->d_name,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return send_skip(s, s->rel, s->local, strerror(errno));
	if (send_entry(s, TETHER_XFER_DIR, &st, NULL) != 0) {
		close(fd);
		return TETHER_ERR_NOMEM;
	}
	if (push_dir(s, fd, why, sizeof(why)) != 0)
		return send_skip(s, s->rel, s->local, why);
	return 1;
}

void tether_xfer_base_name(const char *path, char *out, size_t outlen)
{
	size_t end = strlen(path), start;

	while (end > 1 && path[end - 1] == '/')
		end--;
	start = end;
	while (start > 0 && path[start - 1] != '/')
		start--;
	if (end - start >= outlen)
		end = start + outlen - 1;
	memcpy(out, path + start, end - start);
	out[end - start] = '\0';
}

/* Starts the next top-level source: 1 if something was sent, 0 if none. */
static int next_source(struct tether_xfer_send *s)
{
	struct send_src *src = s->srcs;
	char why[TETHER_MSG_REASON_MAX], name[NAME_MAX + 1];
	struct stat st;
	int fd, r = 1;

	if (src == NULL)
		return 0;
	s->srcs = src->next;
	if (s->srcs == NULL)
		s->srcs_tail = &s->srcs;
	if (src->name != NULL)
		snprintf(name, sizeof(name), "%s", src->name);
	else
		tether_xfer_base_name(src->path, name, sizeof(name));
	snprintf(s->rel, sizeof(s->rel), "%s", name);
	snprintf(s->local, sizeof(s->local), "%s", src->path);
	if (src->reason != NULL) {
		r = send_skip(s, src->path, src->path, src->reason);
		goto out;
	}
	if (!valid_relpath(name, strlen(name)) || strchr(name, '/') != NULL) {
		r = send_skip(s, src->path, src->path, "not a file name");
		goto out;
	}
	/* A source the user named is followed if it is a symlink. */
	fd = open(src->path, O_RDONLY | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		r = send_skip(s, src->path, src->path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) != 0) {
		r = send_skip(s, src->path, src->path, strerror(errno));
		close(fd);
		goto out;
	}
	if (S_ISREG(st.st_mode)) {
		/* Blocking reads from here on. */
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
		r = start_file(s, fd, &st) == 0 ? 1 : TETHER_ERR_NOMEM;
	} else if (S_ISDIR(st.st_mode) &&
		   (s->flags & TETHER_XFER_RECURSIVE) == 0) {
		close(fd);
		r = send_skip(s, src->path, src->path,
			      "is a directory (use -r)");
	} else if (S_ISDIR(st.st_mode)) {
		if (send_entry(s, TETHER_XFER_DIR, &st, NULL) != 0) {
			close(fd);
			r = TETHER_ERR_NOMEM;
		} else if (push_dir(s, fd, why, sizeof(why)) != 0) {
			r = send_skip(s, src->path, src->path, why);
		}
	} else {
		close(fd);
		r = send_skip(s, src->path, src->path, "not a regular file");
	}
out:
	tether_free(src->path);
	tether_free(src->name);
	tether_free(src->reason);
	tether_free(src);
	return r < 0 ? r : 1;
}

/* Ends the current file with FILE_END; reason NULL means it all went. */
static int end_file(struct tether_xfer_send *s, const char *reason)
{
	struct tether_msg_file_end m;
	struct tether_buf *b;
	int r;

	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	s->state = SEND_IDLE;
	memset(&m, 0, sizeof(m));
	if (reason == NULL) {
		m.ok = 1;
		if ((r = sha_final(s->sha, m.sha256)) != 0)
			return r;
		tether_hex_encode(m.sha256, sizeof(m.sha256), s->cur->f.sha256,
				  sizeof(s->cur->f.sha256));
	} else {
		m.reason = reason;
	}
	s->cur = NULL;
	b = tether_buf_new(ENTRY_MAX);
	return send_built(&s->io, TETHER_MSG_FILE_END, b,
			  b != NULL ? tether_msg_encode_file_end(b, &m) : 0);
}

static void send_progress(struct tether_xfer_send *s)
{
	struct tether_xfer_progress p;

	if (s->cbs.on_progress == NULL)
		return;
	memset(&p, 0, sizeof(p));
	if (s->cur != NULL) {
		p.path = s->cur->path;
		p.file_size = s->cur->f.size;
		p.file_done = s->pos;
	}
	p.total_done = s->total_done;
	p.files_done = s->files_done;
	s->cbs.on_progress(s->cbs.arg, &p);
}

/*
 * Deflates the n bytes at data into a BLOCK body in s->zblk if that
 * gains enough; false to send the block raw.
 */
static bool maybe_deflate(struct tether_xfer_send *s, uint8_t *data, size_t n)
{
	size_t sample = n < SAMPLE_LEN ? n : SAMPLE_LEN;
	uint8_t *out;
	int zr;

	if (!s->z_ready || s->z_off || n < 64)
		return false;
	if (s->skip_left > 0) {
		s->skip_left--;
		return false;
	}
	block_empty(s->zblk);
	if (tether_msg_reserve_block(s->zblk, TETHER_XFER_DEFLATE, GAIN(n),
				     &out) != 0)
		return false;
	/* The sample: the block's start, compressed alone. */
	deflateReset(&s->z);
	s->z.next_in = data;
	s->z.avail_in = (uInt)sample;
	s->z.next_out = out;
	s->z.avail_out = (uInt)GAIN(sample);
	zr = deflate(&s->z, Z_FINISH);
	if (zr == Z_STREAM_END && sample < n) {
		deflateReset(&s->z);
		s->z.next_in = data;
		s->z.avail_in = (uInt)n;
		s->z.next_out = out;
		s->z.avail_out = (uInt)GAIN(n);
		zr = deflate(&s->z, Z_FINISH);
	}
	if (zr != Z_STREAM_END) {
		/* Incompressible: test less and less often. */
		s->backoff = s->backoff == 0 ? 1 : s->backoff * 2;
		if (s->backoff > BACKOFF_MAX)
			s->backoff = BACKOFF_MAX;
		s->skip_left = s->backoff;
		return false;
	}
	s->backoff = 0;
	/* The body ends where the stream did. */
	tether_buf_consume_end(s->zblk, GAIN(n) - s->z.total_out);
	return true;
}

/*
 * Every TUNE_MS of sending, the content rate of the mode in use is
 * noted; now and then the other mode gets one interval, and the faster
 * of the two is kept for a doubling number of intervals.  Random data
 * never gets here in earnest: the sample test already sends it raw.
 */
static void tune(struct tether_xfer_send *s, size_t n)
{
	uint64_t now = now_ms(), dt;
	bool best_off;

	if (!s->z_ready || s->z_fixed)
		return;
	if (s->iv_start == 0)
		s->iv_start = now;
	s->iv_bytes += n;
	dt = now - s->iv_start;
	if (dt < TUNE_MS)
		return;
	s->rate[s->z_off] = s->iv_bytes * 1000 / dt;
	s->iv_start = now;
	s->iv_bytes = 0;
	if (s->z_probing) {
		s->z_probing = false;
		best_off = s->rate[1] > s->rate[0];
		/* The same winner again: trust it longer. */
		s->z_hold_len =
		    best_off == s->z_off
			? (s->z_hold_len < TUNE_HOLD_MAX ? s->z_hold_len * 2
							 : TUNE_HOLD_MAX)
			: 2;
		s->z_off = best_off;
		s->z_hold = s->z_hold_len;
	} else if (s->z_hold > 0) {
		s->z_hold--;
	} else {
		s->z_probing = true;
		s->z_off = !s->z_off;
	}
}

/* Reads, hashes and sends the next block of the current file. */
static int send_block(struct tether_xfer_send *s)
{
	struct send_pend *p = s->cur;
	uint64_t left = p->f.size - s->pos;
	size_t n = left < TETHER_XFER_BLOCK ? (size_t)left : TETHER_XFER_BLOCK;
	struct tether_buf *body;
	size_t got = 0, len;
	uint8_t *data;
	ssize_t k;
	int r;

	/* Read straight into the body: a raw block is sent as it lies. */
	block_empty(s->blk);
	r = tether_msg_reserve_block(s->blk, TETHER_XFER_RAW, n, &data);
	if (r != 0)
		return r;
	while (got < n) {
		k = pread(s->fd, data + got, n - got, (off_t)(s->pos + got));
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return end_file(s, strerror(errno));
		if (k == 0)
			return end_file(s, "file shrank while being sent");
		got += (size_t)k;
	}
	if (EVP_DigestUpdate(s->sha, data, n) != 1)
		return TETHER_ERR_CRYPTO;
	if (s->corrupt_at >= 0 && (uint64_t)s->corrupt_at >= s->pos &&
	    (uint64_t)s->corrupt_at < s->pos + n)
		data[s->corrupt_at - (int64_t)s->pos] ^= 0x01;
	body = maybe_deflate(s, data, n) ? s->zblk : s->blk;
	len = tether_buf_len(body);
	r = s->io.send(s->io.arg, TETHER_MSG_BLOCK, tether_buf_ptr(body), len);
	if (r != 0)
		return r;
	s->pos += n;
	p->f.sent += n;
	p->f.wire += len;
	s->total_done += n;
	tune(s, n);
	send_progress(s);
	if (s->pos == p->f.size)
		return end_file(s, NULL);
	return TETHER_OK;
}

int tether_xfer_send_pump(struct tether_xfer_send *s)
{
	size_t need;
	int r;

	for (;;) {
		switch (s->state) {
		case SEND_WAIT_ACCEPT:
		case SEND_END:
			return TETHER_OK;
		case SEND_DATA:
			need = s->cur->f.size - s->pos < TETHER_XFER_BLOCK
				   ? (size_t)(s->cur->f.size - s->pos)
				   : TETHER_XFER_BLOCK;
			if (s->io.window(s->io.arg) < 1 + need)
				return TETHER_OK;
			if ((r = send_block(s)) != 0)
				return r;
			break;
		case SEND_IDLE:
			if (s->io.window(s->io.arg) == 0)
				return TETHER_OK; /* the link is full */
			if (s->depth > 0)
				r = walk_next(s);
			else
				r = next_source(s);
			if (r < 0)
				return r;
			if (r == 0 && s->depth == 0 && s->srcs == NULL) {
				s->state = SEND_END;
				return s->io.send(s->io.arg,
						  TETHER_MSG_XFER_END, NULL, 0);
			}
			break;
		}
	}
}

/* ACCEPT: hash what the receiver has, then stream the rest. */
static int on_accept(struct tether_xfer_send *s, const uint8_t *body,
		     size_t len)
{
	struct tether_msg_accept m;
	uint64_t off;
	uint8_t *scratch;
	int r;

	if (s->state != SEND_WAIT_ACCEPT || s->pend != s->cur)
		return TETHER_ERR_PROTOCOL;
	if ((r = tether_msg_decode_accept(body, len, &m)) != 0)
		return bad_body(r);
	off = m.offset;
	if (off > s->cur->f.size)
		return TETHER_ERR_PROTOCOL;
	if ((r = sha_restart(s->sha)) != 0)
		return r;
	s->cur->f.offset = off;
	s->state = SEND_DATA;
	if (off > 0) {
		if ((scratch = block_scratch(s)) == NULL)
			return TETHER_ERR_NOMEM;
		r = hash_prefix(s->sha, s->fd, off, scratch,
				1 + TETHER_XFER_BLOCK);
		if (r != 0)
			return end_file(s, strerror(-r));
		s->pos = off;
	}
	if (s->cur->f.size == off)
		return end_file(s, NULL);
	return TETHER_OK;
}

static int on_result(struct tether_xfer_send *s, const uint8_t *body,
		     size_t len)
{
	struct send_pend *p = s->pend;
	struct tether_msg_result m;
	bool ok;
	int r;

	if (p == NULL)
		return TETHER_ERR_PROTOCOL;
	if ((r = tether_msg_decode_result(body, len, &m)) != 0)
		return bad_body(r);
	ok = m.ok == 1;
	s->pend = p->next;
	if (s->pend == NULL)
		s->pend_tail = &s->pend;
	if (p == s->cur) {
		/* Refused before or during its data: stop it. */
		if (s->state == SEND_WAIT_ACCEPT) {
			close(s->fd);
			s->fd = -1;
			s->cur = NULL;
			s->state = SEND_IDLE;
		} else if (s->state == SEND_DATA) {
			r = end_file(s, "stopped by the receiver");
		}
		ok = false;
	}
	p->f.ok = ok;
	p->f.reason = m.reason;
	if (!p->f.ok)
		p->f.sha256[0] = '\0';
	p->f.ms = now_ms() - p->started;
	if (p->f.ok)
		s->files_done++;
	else
		s->failures++;
	report(&s->cbs, &p->f);
	tether_msg_clear_result(&m);
	pend_free(p);
	return r;
}

int tether_xfer_send_input(struct tether_xfer_send *s, uint8_t msg,
			   const uint8_t *body, size_t len)
{
	int r;

	if (s->peer_end)
		return TETHER_ERR_PROTOCOL;
	switch (msg) {
	case TETHER_MSG_ACCEPT:
		r = on_accept(s, body, len);
		break;
	case TETHER_MSG_RESULT:
		r = on_result(s, body, len);
		break;
	case TETHER_MSG_XFER_END:
		r = s->state == SEND_END && s->pend == NULL &&
			    tether_msg_decode_empty(body, len) == 0
			? TETHER_OK
			: TETHER_ERR_PROTOCOL;
		s->peer_end = r == TETHER_OK;
		break;
	default:
		r = TETHER_ERR_PROTOCOL;
		break;
	}
	if (r == TETHER_OK && !s->peer_end)
		r = tether_xfer_send_pump(s);
	return r;
}

bool tether_xfer_send_done(const struct tether_xfer_send *s)
{
	return s->peer_end;
}

uint64_t tether_xfer_send_failures(const struct tether_xfer_send *s)
{
	return s->failures;
}

/* ---- Receiver ---------------------------------------------------------- */

enum recv_state {
	RECV_IDLE,   /* between entries */
	RECV_DATA,   /* a file's blocks */
	RECV_FAILED, /* a file that failed: drop its blocks until FILE_END */
	RECV_DONE,   /* XFER_END answered */
};

/* A directory whose mode and mtime are set at the end. */
struct recv_fixup {
	char *rel;
	uint32_t mode;
	struct timespec mtime;
};

struct tether_xfer_recv {
	struct tether_xfer_io io;
	struct tether_xfer_cbs cbs;
	enum recv_state state;
	int rootfd;
	char *root;    /* shown in local paths */
	char *as_name; /* the destination names the one top-level entry */
	char *top;     /* that entry's name as the sender sent it */
	/* Parent directory cache: the last one opened. */
	char *dir_rel;
	int dirfd;
	/* The entry under way, as the sender sent it, and how it ends. */
	struct tether_msg_entry entry;
	struct tether_xfer_file f;
	char *path; /* as it lands (relative to the root) */
	char local[PATH_MAX + TETHER_MSG_PATH_MAX + 2];
	char leaf[NAME_MAX + 1];
	char tmp[NAME_MAX + 1];
	int fd;	  /* the temporary file */
	int fdir; /* its directory (a dup of dirfd) */
	uint64_t pos;
	uint32_t mode;
	struct timespec mtime;
	uint64_t started;
	EVP_MD_CTX *sha;
	z_stream z;
	bool z_ready;
	uint8_t *zout;
	struct recv_fixup *fixups;
	size_t nfixups;
	uint64_t total_done;
	uint64_t files_done;
	uint64_t failures;
	mode_t umask;
	/* The console's get: what the agent may send (NULL: anything). */
	char **expect;
	size_t nexpect;
	unsigned expect_flags;
	bool expect_any_one; /* a pattern whose name cannot be told */
	char *any_top;	     /* the name it turned out to be */
};

static int open_root(const char *dest, struct tether_xfer_recv *r, char *err,
		     size_t errlen)
{
	char name[NAME_MAX + 1], *parent;
	struct stat st;
	size_t len;

	/* An existing directory (a symlink to one counts: the user named it).
	 */
	if (stat(dest, &st) == 0 && S_ISDIR(st.st_mode)) {
		r->rootfd = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (r->rootfd < 0) {
			put_reason(err, errlen, dest, errno);
			return -1;
		}
		r->root = tether_strdup(dest);
		return r->root != NULL ? 0 : -1;
	}
	tether_xfer_base_name(dest, name, sizeof(name));
	if (name[0] == '\0' || strcmp(name, "/") == 0 ||
	    strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
		put_reason(err, errlen, dest, ENOTDIR);
		return -1;
	}
	len = strlen(dest);
	while (len > 0 && dest[len - 1] == '/')
		len--;
	while (len > 0 && dest[len - 1] != '/')
		len--;
	parent = len == 0 ? tether_strdup(".") : tether_malloc(len + 1);
	if (parent == NULL)
		return -1;
	if (len > 0) {
		memcpy(parent, dest, len);
		parent[len] = '\0';
	}
	r->rootfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (r->rootfd < 0) {
		put_reason(err, errlen, parent, errno);
		tether_free(parent);
		return -1;
	}
	/* Shown as "parent/name": drop the slash we kept. */
	if (len > 1)
		parent[len - 1] = '\0';
	r->root = parent;
	r->as_name = tether_strdup(name);
	return r->as_name != NULL ? 0 : -1;
}

struct tether_xfer_recv *tether_xfer_recv_new(const char *dest,
					      const struct tether_xfer_io *io,
					      const struct tether_xfer_cbs *cbs,
					      char *err, size_t errlen)
{
	struct tether_xfer_recv *r = tether_calloc(1, sizeof(*r));

	snprintf(err, errlen, "out of memory");
	if (r == NULL)
		return NULL;
	r->io = *io;
	r->cbs = *cbs;
	r->rootfd = r->dirfd = r->fd = r->fdir = -1;
	r->umask = umask(0);
	umask(r->umask);
	r->sha = sha_new();
	r->zout = tether_malloc(TETHER_XFER_BLOCK);
	if (r->sha == NULL || r->zout == NULL || inflateInit(&r->z) != Z_OK)
		goto fail;
	r->z_ready = true;
	if (open_root(dest, r, err, errlen) != 0)
		goto fail;
	return r;
fail:
	tether_xfer_recv_free(r);
	return NULL;
}

static void close_file(struct tether_xfer_recv *r, bool remove)
{
	if (r->fd >= 0) {
		close(r->fd);
		if (remove)
			unlinkat(r->fdir, r->tmp, 0);
	}
	if (r->fdir >= 0)
		close(r->fdir);
	r->fd = r->fdir = -1;
}

void tether_xfer_recv_free(struct tether_xfer_recv *r)
{
	size_t i;

	if (r == NULL)
		return;
	/* A file cut short stays under its temporary name: that is resume. */
	close_file(r, false);
	if (r->dirfd >= 0)
		close(r->dirfd);
	if (r->rootfd >= 0)
		close(r->rootfd);
	for (i = 0; i < r->nfixups; i++)
		tether_free(r->fixups[i].rel);
	tether_free(r->fixups);
	if (r->z_ready)
		inflateEnd(&r->z);
	EVP_MD_CTX_free(r->sha);
	tether_free(r->zout);
	tether_free(r->root);
	tether_free(r->as_name);
	tether_free(r->top);
	tether_free(r->dir_rel);
	tether_free(r->path);
	tether_msg_clear_entry(&r->entry);
	for (i = 0; i < r->nexpect; i++)
		tether_free(r->expect[i]);
	tether_free(r->expect);
	tether_free(r->any_top);
	tether_free(r);
}

int tether_xfer_recv_expect(struct tether_xfer_recv *r, char *const *patterns,
			    size_t n, unsigned flags)
{
	size_t i, len, start;
	char *last;

	r->expect_flags = flags;
	r->expect = tether_calloc(n + 1, sizeof(*r->expect));
	if (r->expect == NULL)
		return TETHER_ERR_NOMEM;
	for (i = 0; i < n; i++) {
		/* The pattern's last part, as the sender names the match. */
		len = strlen(patterns[i]);
		while (len > 1 && patterns[i][len - 1] == '/')
			len--;
		start = len;
		while (start > 0 && patterns[i][start - 1] != '/')
			start--;
		last = tether_malloc(len - start + 1);
		if (last == NULL)
			return TETHER_ERR_NOMEM;
		memcpy(last, patterns[i] + start, len - start);
		last[len - start] = '\0';
		if (last[0] == '\0' || strcmp(last, "/") == 0 ||
		    strcmp(last, ".") == 0 || strcmp(last, "..") == 0) {
			/* "", ".", ".." or "/": any one name will do. */
			r->expect_any_one = true;
			tether_free(last);
			continue;
		}
		r->expect[r->nexpect++] = last;
	}
	return TETHER_OK;
}

/*
 * A sender that was asked for names sends those names and nothing else:
 * without this a hostile one could write ".bashrc" next to what was asked.
 */
static bool expected(struct tether_xfer_recv *r,
		     const struct tether_msg_entry *e)
{
	size_t toplen = strcspn(e->path, "/"), i;
	char top[NAME_MAX + 1];

	if (r->expect == NULL)
		return true;
	if ((r->expect_flags & TETHER_XFER_RECURSIVE) == 0 &&
	    (e->path[toplen] != '\0' || e->type == TETHER_XFER_DIR))
		return false;
	if (toplen > NAME_MAX)
		return false;
	memcpy(top, e->path, toplen);
	top[toplen] = '\0';
	for (i = 0; i < r->nexpect; i++)
		if (fnmatch(r->expect[i], top, FNM_PERIOD) == 0)
			return true;
	if (!r->expect_any_one)
		return false;
	/* The one unpredictable name: the first top-level seen, only. */
	if (r->any_top == NULL) {
		r->any_top = tether_strdup(top);
		return r->any_top != NULL;
	}
	return strcmp(r->any_top, top) == 0;
}

static int send_result(struct tether_xfer_recv *r, bool ok, const char *reason)
{
	char why[TETHER_MSG_REASON_MAX + 1];
	const struct tether_msg_result m = {.ok = ok ? 1 : 0, .reason = why};
	struct tether_buf *b = tether_buf_new(16 + TETHER_MSG_REASON_MAX);

	/* Cut to what the sender takes: a long reason must not end it all. */
	snprintf(why, sizeof(why), "%s", reason);
	return send_built(&r->io, TETHER_MSG_RESULT, b,
			  b != NULL ? tether_msg_encode_result(b, &m) : 0);
}

/* Reports the entry in r->f and answers it. */
static int finish_entry(struct tether_xfer_recv *r, bool ok, const char *reason)
{
	r->f.ok = ok;
	r->f.reason = ok ? "" : reason;
	r->f.ms = now_ms() - r->started;
	if (ok)
		r->files_done++;
	else
		r->failures++;
	if (!ok)
		r->f.sha256[0] = '\0';
	report(&r->cbs, &r->f);
	return send_result(r, ok, ok ? "" : reason);
}

/*
 * The entry's path as it lands here: in "as" mode the top-level part is
 * replaced by the destination's name.  NULL (with why) if it cannot land.
 */
static char *map_path(struct tether_xfer_recv *r, const char *path,
		      const char **why)
{
	size_t toplen = strcspn(path, "/"), n;
	char *out;

	if (r->as_name == NULL)
		return tether_strdup(path);
	if (r->top == NULL) {
		r->top = tether_malloc(toplen + 1);
		if (r->top == NULL)
			return NULL;
		memcpy(r->top, path, toplen);
		r->top[toplen] = '\0';
	} else if (strlen(r->top) != toplen ||
		   memcmp(r->top, path, toplen) != 0) {
		*why = "the destination is not a directory";
		return NULL;
	}
	n = strlen(r->as_name) + strlen(path + toplen);
	if (n > TETHER_MSG_PATH_MAX) {
		*why = "path too long";
		return NULL;
	}
	out = tether_malloc(n + 1);
	if (out == NULL)
		return NULL;
	snprintf(out, n + 1, "%s%s", r->as_name, path + toplen);
	return out;
}

/*
 * Opens the directory holding rel (relative to the root), one part at a
 * time and never through a symlink; copies the last part into leaf.
 * Returns a borrowed fd (the cache's), or -errno.
 */
static int open_parent(struct tether_xfer_recv *r, const char *rel,
		       char leaf[NAME_MAX + 1])
{
	const char *slash = strrchr(rel, '/'), *p, *q;
	const char *base = slash != NULL ? slash + 1 : rel;
	size_t dlen = slash != NULL ? (size_t)(slash - rel) : 0;
	size_t blen = strlen(base);
	char part[NAME_MAX + 1];
	int fd, next;

	if (blen > NAME_MAX)
		return -ENAMETOOLONG;
	memcpy(leaf, base, blen + 1);
	if (dlen == 0)
		return r->rootfd;
	if (r->dir_rel != NULL && strlen(r->dir_rel) == dlen &&
	    memcmp(r->dir_rel, rel, dlen) == 0)
		return r->dirfd;
	if (r->dirfd >= 0)
		close(r->dirfd);
	tether_free(r->dir_rel);
	r->dir_rel = NULL;
	r->dirfd = -1;
	fd = r->rootfd;
	for (p = rel; p < rel + dlen; p = q + 1) {
		q = memchr(p, '/', (size_t)(rel + dlen - p));
		if (q == NULL)
			q = rel + dlen;
		if ((size_t)(q - p) > NAME_MAX) {
			next = -ENAMETOOLONG;
		} else {
			memcpy(part, p, (size_t)(q - p));
			part[q - p] = '\0';
			next = openat(fd, part,
				      O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
					  O_CLOEXEC);
			if (next < 0)
				next = errno == ELOOP ? -ENOTDIR : -errno;
		}
		if (fd != r->rootfd)
			close(fd);
		if (next < 0)
			return next;
		fd = next;
	}
	r->dir_rel = tether_malloc(dlen + 1);
	if (r->dir_rel == NULL) {
		close(fd);
		return -ENOMEM;
	}
	memcpy(r->dir_rel, rel, dlen);
	r->dir_rel[dlen] = '\0';
	r->dirfd = fd;
	return fd;
}

/* "root/path" for people, without doubling a root's trailing slash. */
static void show_local(struct tether_xfer_recv *r, const char *path)
{
	size_t n = strlen(r->root);

	snprintf(r->local, sizeof(r->local), "%s%s%s", r->root,
		 n > 0 && r->root[n - 1] == '/' ? "" : "/", path);
}

/* An ENTRY the receiver can act on; the decoder checked type and mode. */
static int parse_entry(const uint8_t *body, size_t len,
		       struct tether_msg_entry *e)
{
	int err;

	if ((err = tether_msg_decode_entry(body, len, e)) != 0)
		return bad_body(err);
	if (!valid_relpath(e->path, strlen(e->path)) ||
	    !valid_mtime(e->mtime_sec, e->mtime_nsec) ||
	    (e->type != TETHER_XFER_FILE && e->size != 0) ||
	    (e->type == TETHER_XFER_SYMLINK) != (e->target[0] != '\0') ||
	    e->size > (uint64_t)INT64_MAX) {
		tether_msg_clear_entry(e);
		return TETHER_ERR_PROTOCOL;
	}
	return TETHER_OK;
}

/*
 * The temporary name: ".NAME.<16 hex>.tether-part", the hex from the
 * entry's path, size and mtime, so the same transfer finds it again.
 */
static void temp_name(struct tether_xfer_recv *r,
		      const struct tether_msg_entry *e)
{
	uint8_t d[TETHER_SHA256_LEN];
	char hex[17], key[TETHER_MSG_PATH_MAX + 64], name[NAME_MAX + 1];
	size_t len;
	int n;

	n = snprintf(key, sizeof(key), "%s%c%llu%c%lld%c%u", e->path, 0,
		     (unsigned long long)e->size, 0, (long long)e->mtime_sec, 0,
		     e->mtime_nsec);
	tether_sha256(key, (size_t)n, d);
	tether_hex_encode(d, 8, hex, sizeof(hex));
	/* Room for ".", ".", the hex and ".tether-part": 30 bytes. */
	len = strnlen(r->leaf, NAME_MAX - 30);
	memcpy(name, r->leaf, len);
	name[len] = '\0';
	snprintf(r->tmp, sizeof(r->tmp), ".%.*s.%s.tether-part", (int)len, name,
		 hex);
}

/*
 * Opens the temporary file.  One left by an earlier run is resumed only
 * if it is plainly ours (our owner, one link, no access for others):
 * a file someone else can write could change under the hash.  Anything
 * else there is replaced by a new file.  The lock keeps two transfers of
 * the same file from writing it at once.  0 or an errno.
 */
static int open_temp(struct tether_xfer_recv *r, struct stat *st)
{
	const int flags = O_RDWR | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC;
	int fd, err;

	fd = openat(r->fdir, r->tmp, flags);
	if (fd >= 0 && (fstat(fd, st) != 0 || !S_ISREG(st->st_mode) ||
			st->st_uid != geteuid() || st->st_nlink != 1 ||
			(st->st_mode & 077) != 0)) {
		close(fd);
		fd = -1;
		if (unlinkat(r->fdir, r->tmp, 0) != 0 && errno != ENOENT)
			return errno;
	} else if (fd < 0 && errno != ENOENT) {
		/* A symlink or a directory in the way. */
		err = errno == ELOOP ? EEXIST : errno;
		if (unlinkat(r->fdir, r->tmp, 0) != 0)
			return err;
	}
	if (fd < 0) {
		fd = openat(r->fdir, r->tmp, flags | O_CREAT | O_EXCL, 0600);
		if (fd < 0)
			return errno;
		if (fstat(fd, st) != 0) {
			err = errno;
			close(fd);
			return err;
		}
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		err = errno;
		close(fd);
		return err == EWOULDBLOCK ? EWOULDBLOCK : err;
	}
	r->fd = fd;
	return 0;
}

/* Starts a file: opens or reopens its temporary file and ACCEPTs. */
static int recv_file(struct tether_xfer_recv *r,
		     const struct tether_msg_entry *e, int dfd)
{
	struct tether_msg_accept m;
	struct tether_buf *b;
	struct stat st;
	uint64_t have = 0;
	int err;

	if (fstatat(dfd, r->leaf, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISDIR(st.st_mode))
		return finish_entry(r, false, "a directory is in the way");
	temp_name(r, e);
	r->fdir = dup(dfd);
	if (r->fdir < 0)
		return finish_entry(r, false, strerror(errno));
	if ((err = open_temp(r, &st)) != 0) {
		close_file(r, false);
		return finish_entry(r, false,
				    err == EWOULDBLOCK
					? "another transfer of this file is "
					  "under way"
					: strerror(err));
	}
	if ((err = sha_restart(r->sha)) != 0) {
		close_file(r, false);
		return err;
	}
	if ((uint64_t)st.st_size <= e->size)
		have = (uint64_t)st.st_size;
	if (have > 0 &&
	    hash_prefix(r->sha, r->fd, have, r->zout, TETHER_XFER_BLOCK) != 0) {
		/* Unreadable leftovers: start over. */
		have = 0;
		if (sha_restart(r->sha) != 0) {
			close_file(r, true);
			return finish_entry(r, false, strerror(EIO));
		}
	}
	if (have != (uint64_t)st.st_size &&
	    ftruncate(r->fd, (off_t)have) != 0) {
		err = errno;
		close_file(r, true);
		return finish_entry(r, false, strerror(err));
	}
	r->pos = have;
	r->f.offset = have;
	r->state = RECV_DATA;
	m.offset = have;
	b = tether_buf_new(sizeof(m.offset));
	return send_built(&r->io, TETHER_MSG_ACCEPT, b,
			  b != NULL ? tether_msg_encode_accept(b, &m) : 0);
}

/*
 * The permissions a received entry gets: the sender's, without setuid,
 * setgid or sticky bits and within our umask, as tar gives a user.
 */
static mode_t safe_mode(const struct tether_xfer_recv *r, uint32_t mode)
{
	return (mode_t)(mode & 0777) & ~r->umask;
}

static int add_fixup(struct tether_xfer_recv *r, const char *rel,
		     const struct tether_msg_entry *e)
{
	struct recv_fixup *fx;

	if (r->nfixups >= FIXUPS_MAX)
		return TETHER_OK; /* keeps the defaults past that */
	fx = tether_reallocarray(r->fixups, r->nfixups + 1, sizeof(*fx));
	if (fx == NULL)
		return TETHER_ERR_NOMEM;
	r->fixups = fx;
	fx += r->nfixups;
	fx->rel = tether_strdup(rel);
	if (fx->rel == NULL)
		return TETHER_ERR_NOMEM;
	fx->mode = safe_mode(r, e->mode);
	fx->mtime.tv_sec = (time_t)e->mtime_sec;
	fx->mtime.tv_nsec = (long)e->mtime_nsec;
	r->nfixups++;
	return TETHER_OK;
}

static int recv_dir(struct tether_xfer_recv *r,
		    const struct tether_msg_entry *e, int dfd)
{
	struct stat st;
	int err;

	/*
	 * Owner-writable while we fill it; its own mode comes at the end.
	 * A directory that was there keeps its mode and mtime.
	 */
	if (mkdirat(dfd, r->leaf, 0700) != 0) {
		err = errno;
		if (err != EEXIST ||
		    fstatat(dfd, r->leaf, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
		    !S_ISDIR(st.st_mode))
			return finish_entry(r, false,
					    err == EEXIST
						? "a file is in the way"
						: strerror(err));
		return finish_entry(r, true, "");
	}
	if ((err = add_fixup(r, r->path, e)) != 0)
		return err;
	return finish_entry(r, true, "");
}

static int recv_symlink(struct tether_xfer_recv *r,
			const struct tether_msg_entry *e, int dfd)
{
	struct timespec ts[2];
	struct stat st;
	int err;

	if (fstatat(dfd, r->leaf, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISDIR(st.st_mode))
		return finish_entry(r, false, "a directory is in the way");
	temp_name(r, e);
	unlinkat(dfd, r->tmp, 0);
	if (symlinkat(e->target, dfd, r->tmp) != 0)
		return finish_entry(r, false, strerror(errno));
	ts[0].tv_sec = ts[1].tv_sec = (time_t)e->mtime_sec;
	ts[0].tv_nsec = ts[1].tv_nsec = (long)e->mtime_nsec;
	utimensat(dfd, r->tmp, ts, AT_SYMLINK_NOFOLLOW);
	if (renameat(dfd, r->tmp, dfd, r->leaf) != 0) {
		err = errno;
		unlinkat(dfd, r->tmp, 0);
		return finish_entry(r, false, strerror(err));
	}
	return finish_entry(r, true, "");
}

static int on_entry(struct tether_xfer_recv *r, const uint8_t *body, size_t len)
{
	const struct tether_msg_entry *e = &r->entry;
	const char *why = "out of memory";
	struct tether_msg_entry next;
	int dfd, err;

	if (r->state != RECV_IDLE)
		return TETHER_ERR_PROTOCOL;
	if ((err = parse_entry(body, len, &next)) != 0)
		return err;
	if (!expected(r, &next)) {
		tether_msg_clear_entry(&next);
		return TETHER_ERR_PROTOCOL;
	}
	/* The entry before is over: r->f and r->path no longer need it. */
	memset(&r->f, 0, sizeof(r->f));
	tether_msg_clear_entry(&r->entry);
	tether_free(r->path);
	r->entry = next;
	r->path = NULL;
	r->started = now_ms();
	r->f.type = e->type;
	r->f.path = e->path;
	r->f.size = e->size;
	r->f.local = r->local;
	snprintf(r->local, sizeof(r->local), "%s", e->path);
	r->path = map_path(r, e->path, &why);
	if (r->path == NULL)
		return finish_entry(r, false, why);
	show_local(r, r->path);
	r->mode = e->mode;
	r->mtime.tv_sec = (time_t)e->mtime_sec;
	r->mtime.tv_nsec = (long)e->mtime_nsec;
	dfd = open_parent(r, r->path, r->leaf);
	if (dfd < 0)
		return finish_entry(r, false, strerror(-dfd));
	if (e->type == TETHER_XFER_FILE)
		return recv_file(r, e, dfd);
	if (e->type == TETHER_XFER_DIR)
		return recv_dir(r, e, dfd);
	return recv_symlink(r, e, dfd);
}

/* A write failed or the data is bad: the file goes, the transfer goes on. */
static int fail_file(struct tether_xfer_recv *r, const char *reason)
{
	close_file(r, true);
	r->state = RECV_FAILED;
	return finish_entry(r, false, reason);
}

static void recv_progress(struct tether_xfer_recv *r)
{
	struct tether_xfer_progress p;

	if (r->cbs.on_progress == NULL)
		return;
	memset(&p, 0, sizeof(p));
	p.path = r->f.path;
	p.file_size = r->f.size;
	p.file_done = r->pos;
	p.total_done = r->total_done;
	p.files_done = r->files_done;
	r->cbs.on_progress(r->cbs.arg, &p);
}

static int write_all(int fd, const uint8_t *p, size_t n, uint64_t pos)
{
	ssize_t k;

	while (n > 0) {
		k = pwrite(fd, p, n, (off_t)pos);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return errno;
		p += k;
		n -= (size_t)k;
		pos += (uint64_t)k;
	}
	return 0;
}

static int on_block(struct tether_xfer_recv *r, const uint8_t *body, size_t len)
{
	struct tether_msg_block m;
	const uint8_t *data;
	size_t n;
	int err;

	if (r->state != RECV_DATA && r->state != RECV_FAILED)
		return TETHER_ERR_PROTOCOL;
	if ((err = tether_msg_decode_block(body, len, &m)) != 0)
		return bad_body(err);
	if ((err = r->io.consumed(r->io.arg, len)) != 0 &&
	    err != TETHER_ERR_CLOSED)
		return err;
	r->f.wire += len;
	if (r->state == RECV_FAILED)
		return TETHER_OK;
	if (m.encoding == TETHER_XFER_RAW) {
		data = m.data;
		n = m.len;
		if (n > TETHER_XFER_BLOCK)
			return TETHER_ERR_PROTOCOL;
	} else {
		inflateReset(&r->z);
		/* zlib's input is not const, but inflate() only reads it. */
		r->z.next_in = (uint8_t *)(uintptr_t)m.data;
		r->z.avail_in = (uInt)m.len;
		r->z.next_out = r->zout;
		r->z.avail_out = TETHER_XFER_BLOCK;
		if (inflate(&r->z, Z_FINISH) != Z_STREAM_END ||
		    r->z.avail_in != 0)
			return TETHER_ERR_PROTOCOL;
		data = r->zout;
		n = r->z.total_out;
	}
	if (n > r->f.size - r->pos)
		return TETHER_ERR_PROTOCOL;
	if ((err = write_all(r->fd, data, n, r->pos)) != 0)
		return fail_file(r, strerror(err));
	if (EVP_DigestUpdate(r->sha, data, n) != 1)
		return TETHER_ERR_CRYPTO;
	r->pos += n;
	r->f.sent += n;
	r->total_done += n;
	recv_progress(r);
	return TETHER_OK;
}

/* The data is all here and the hash matched: make it the real file. */
static int commit_file(struct tether_xfer_recv *r)
{
	struct timespec ts[2] = {r->mtime, r->mtime};
	int err = 0;

	if (fsync(r->fd) != 0 || fchmod(r->fd, safe_mode(r, r->mode)) != 0 ||
	    futimens(r->fd, ts) != 0)
		err = errno;
	if (err == 0 && renameat(r->fdir, r->tmp, r->fdir, r->leaf) != 0)
		err = errno;
	if (err != 0) {
		err = fail_file(r, strerror(err));
		/* FILE_END is in: nothing more of this file will come. */
		r->state = RECV_IDLE;
		return err;
	}
	close_file(r, false);
	r->state = RECV_IDLE;
	return finish_entry(r, true, "");
}

static int on_file_end(struct tether_xfer_recv *r, const uint8_t *body,
		       size_t len)
{
	char why[TETHER_MSG_REASON_MAX + 32];
	uint8_t got[TETHER_SHA256_LEN];
	struct tether_msg_file_end m;
	int err;

	if (r->state != RECV_DATA && r->state != RECV_FAILED)
		return TETHER_ERR_PROTOCOL;
	if ((err = tether_msg_decode_file_end(body, len, &m)) != 0)
		return bad_body(err);
	if (r->state == RECV_FAILED) {
		/* Answered when it failed. */
		tether_msg_clear_file_end(&m);
		r->state = RECV_IDLE;
		return TETHER_OK;
	}
	if (!m.ok) {
		snprintf(why, sizeof(why), "sender: %s", m.reason);
		tether_msg_clear_file_end(&m);
		err = fail_file(r, why);
		r->state = RECV_IDLE;
		return err;
	}
	if (r->pos != r->f.size)
		return TETHER_ERR_PROTOCOL;
	if ((err = sha_final(r->sha, got)) != 0)
		return err;
	if (!tether_ct_equal(got, m.sha256, sizeof(got))) {
		err = fail_file(r, "verification failed: SHA-256 mismatch");
		r->state = RECV_IDLE;
		return err;
	}
	tether_hex_encode(got, sizeof(got), r->f.sha256, sizeof(r->f.sha256));
	return commit_file(r);
}

static int on_skip(struct tether_xfer_recv *r, const uint8_t *body, size_t len)
{
	struct tether_msg_skip m;
	struct tether_xfer_file f;
	int err;

	if (r->state != RECV_IDLE)
		return TETHER_ERR_PROTOCOL;
	if ((err = tether_msg_decode_skip(body, len, &m)) != 0)
		return bad_body(err);
	memset(&f, 0, sizeof(f));
	f.path = m.path;
	f.local = "";
	f.reason = m.reason;
	r->failures++;
	report(&r->cbs, &f);
	tether_msg_clear_skip(&m);
	return TETHER_OK;
}

/* Directories get their modes and mtimes last, deepest first. */
static void apply_fixups(struct tether_xfer_recv *r)
{
	struct timespec ts[2];
	char leaf[NAME_MAX + 1];
	struct recv_fixup *fx;
	size_t i;
	int dfd, fd;

	for (i = r->nfixups; i-- > 0;) {
		fx = &r->fixups[i];
		dfd = open_parent(r, fx->rel, leaf);
		if (dfd < 0)
			continue;
		/* By fd: a symlink swapped in since is not followed. */
		fd = openat(dfd, leaf,
			    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue;
		ts[0] = ts[1] = fx->mtime;
		if (fchmod(fd, fx->mode) != 0 || futimens(fd, ts) != 0)
			tether_log_debug("cannot set the mode or mtime of %s",
					 fx->rel);
		close(fd);
	}
}

int tether_xfer_recv_input(struct tether_xfer_recv *r, uint8_t msg,
			   const uint8_t *body, size_t len)
{
	int err;

	if (r->state == RECV_DONE)
		return TETHER_ERR_PROTOCOL;
	switch (msg) {
	case TETHER_MSG_BLOCK:
		err = on_block(r, body, len);
		break;
	case TETHER_MSG_ENTRY:
		err = on_entry(r, body, len);
		break;
	case TETHER_MSG_FILE_END:
		err = on_file_end(r, body, len);
		break;
	case TETHER_MSG_SKIP:
		err = on_skip(r, body, len);
		break;
	case TETHER_MSG_XFER_END:
		if (r->state != RECV_IDLE ||
		    tether_msg_decode_empty(body, len) != 0) {
			err = TETHER_ERR_PROTOCOL;
			break;
		}
		apply_fixups(r);
		r->state = RECV_DONE;
		err = r->io.send(r->io.arg, TETHER_MSG_XFER_END, NULL, 0);
		break;
	default:
		err = TETHER_ERR_PROTOCOL;
		break;
	}
	return err;
}

bool tether_xfer_recv_done(const struct tether_xfer_recv *r)
{
	return r->state == RECV_DONE;
}

uint64_t tether_xfer_recv_failures(const struct tether_xfer_recv *r)
{
	return r->failures;
}
