/*
 * `tether sftp T-N [USER@][HOST][:PORT] get|put|ls ...`: files to and from
 * the customer's sshd over SFTP, through the same forward channel, host
 * key check and authentication as `tether ssh` (console_ssh_run(); this
 * file is only the body that runs on its ssh thread once authenticated).
 *
 * The main thread keeps the relay connection alive meanwhile.  libssh2
 * splits SFTP reads and writes into 30000-byte requests and pipelines
 * only what one call covers, so the calls get megabytes at a time: a
 * write is handed everything not yet acknowledged plus fresh data, a
 * read asks for a whole buffer and libssh2 reads ahead of it.
 *
 * Nothing appears half written under a final name: put writes
 * REMOTE.tether-part and renames it, get writes LOCAL.tether-part and
 * renames it; a failed entry removes its part file.  Exit status as
 * `tether put/get`: 0, 1 when some entries failed (the server's reason,
 * "REMOTE: No such file"), 255 when the connection or the SSH side
 * failed, 2 for bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <libssh2.h>
#include <libssh2_sftp.h>

#include <tether/alloc.h>
#include <tether/proto.h>
#include <tether/text.h>
#include <tether/xfer.h>

#include "console.h"

#define EXIT_SOME_FAILED 1
/* Per call: enough requests in flight to hide the round trips. */
#define XFER_BUF (4u << 20)
#define PART_SUFFIX ".tether-part"
#define NAME_BYTES 4096

static const char sftp_usage[] =
    "Usage: tether sftp T-N [USER@][HOST][:PORT] [-i KEY] [--accept-new]\n"
    "                   [-q] [--json] get REMOTE... LOCAL\n"
    "       tether sftp T-N [USER@][HOST][:PORT] [OPTIONS] put LOCAL... "
    "REMOTE\n"
    "       tether sftp T-N [USER@][HOST][:PORT] [OPTIONS] ls [-l] [-a] "
    "[REMOTE]\n"
    "\n"
    "Copies files from (get) or to (put) the SSH server at HOST:PORT\n"
    "(default 127.0.0.1:22) as seen from the machine whose agent joined\n"
    "T-N, over SFTP as USER (default: you), or lists a remote directory\n"
    "(ls).  Host key and authentication as `tether ssh`.  Relative remote\n"
    "paths are relative to USER's home.  A destination that is an\n"
    "existing directory receives the files under their own names.  Files\n"
    "keep their mode and mtime and appear under their final name only\n"
    "once complete.\n"
    "\n"
    "Options:\n"
    "  -i KEY            private key file to offer\n"
    "      --accept-new  trust and remember an unknown host key\n"
    "      --host-key-alias NAME  the host's name in known_hosts\n"
    "  -q, --quiet       no progress display\n"
    "      --json        print a summary (or the listing) as JSON\n"
    "  -l                ls: long format (mode, size, mtime)\n"
    "  -a                ls: names starting with a dot too\n"
    "  -h, --help        show this help\n"
    "\n"
    "Exit status: 0, 1 when some files failed (each says why), 2 for bad\n"
    "usage, 255 when the connection or the SSH session failed.\n";

static const char sftp_need[] =
    "expected T-N [USER@][HOST][:PORT] get|put|ls ...";

enum op { OP_GET, OP_PUT, OP_LS };

struct sftp_cmd {
	struct console_ssh j;
	enum op op;
	bool quiet;
	bool json;
	bool long_format;
	bool all;
	struct console_args args; /* the ticket and the operands */
	char **srcs;		  /* get, put: the sources */
	int nsrc;
	const char *dest; /* get, put: the destination; ls: the path */
	/* While the body runs. */
	LIBSSH2_SESSION *s;
	LIBSSH2_SFTP *sftp;
	bool lost; /* the session failed: j.error says why */
	bool dest_dir;
	uint8_t *buf;
	struct console_progress progress;
	json_t *out; /* --json: files, or ls entries */
	bool json_nomem;
	uint64_t failures;
	uint64_t bytes;
	double seconds;
};

/* One file's transfer, for its summary line. */
struct entry {
	const char *remote;
	const char *local;
	uint64_t size;
	uint64_t done;
	EVP_MD_CTX *md;
	char sha256[2 * 32 + 1];
	double start;
	char reason[512];
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* SFTP status codes (draft-ietf-secsh-filexfer), in words. */
static const char *fx_words(unsigned long code)
{
	switch (code) {
	case LIBSSH2_FX_EOF:
		return "End of file";
	case LIBSSH2_FX_NO_SUCH_FILE:
	case LIBSSH2_FX_NO_SUCH_PATH:
		return "No such file";
	case LIBSSH2_FX_PERMISSION_DENIED:
		return "Permission denied";
	case LIBSSH2_FX_OP_UNSUPPORTED:
		return "Operation unsupported";
	case LIBSSH2_FX_FILE_ALREADY_EXISTS:
		return "File exists";
	case LIBSSH2_FX_WRITE_PROTECT:
		return "Read-only file system";
	case LIBSSH2_FX_NO_SPACE_ON_FILESYSTEM:
		return "No space left on device";
	case LIBSSH2_FX_QUOTA_EXCEEDED:
		return "Disk quota exceeded";
	case LIBSSH2_FX_DIR_NOT_EMPTY:
		return "Directory not empty";
	case LIBSSH2_FX_NOT_A_DIRECTORY:
		return "Not a directory";
	case LIBSSH2_FX_INVALID_FILENAME:
		return "Invalid file name";
	case LIBSSH2_FX_LINK_LOOP:
		return "Too many levels of symbolic links";
	default:
		/* OpenSSH's server says FAILURE for most errno values. */
		return "Failure";
	}
}

/*
 * After a libssh2 SFTP call failed: true with the server's reason when it
 * answered with an error status (the entry failed, the session goes on);
 * false when the session itself failed (reported, x->lost set).
 */
static bool remote_reason(struct sftp_cmd *x, char *out, size_t len)
{
	if (libssh2_session_last_errno(x->s) == LIBSSH2_ERROR_SFTP_PROTOCOL) {
		snprintf(out, len, "%s",
			 fx_words(libssh2_sftp_last_error(x->sftp)));
		return true;
	}
	console_ssh_error(&x->j, "connection to the SSH server lost: %s",
			  console_ssh_last_error(x->s));
	x->lost = true;
	return false;
}

/*
 * The SFTP server was killed by a signal: OpenSSH may then keep the
 * channel open for good, waiting for window space we would never get.
 */
static bool server_killed(struct sftp_cmd *x, LIBSSH2_CHANNEL *ch)
{
	char *sig = NULL;
	size_t len = 0;

	libssh2_channel_get_exit_signal(ch, &sig, &len, NULL, NULL, NULL, NULL);
	if (sig == NULL)
		return false;
	libssh2_free(x->s, sig);
	return true;
}

/*
 * The session is non-blocking and every wait comes here: libssh2 (1.10)
 * would wait forever, blocking, for replies on a channel the server
 * closed (its SFTP server died, say of a file size limit).  true to call
 * again; false with x->lost set when the SFTP channel is gone.
 */
static bool wait_more(struct sftp_cmd *x)
{
	LIBSSH2_CHANNEL *ch;

	if (x->lost || libssh2_session_last_errno(x->s) != LIBSSH2_ERROR_EAGAIN)
		return false;
	ch = libssh2_sftp_get_channel(x->sftp);
	if (ch != NULL && (libssh2_channel_eof(ch) || server_killed(x, ch))) {
		console_ssh_error(&x->j, "the SSH server ended the SFTP "
					 "session");
		x->lost = true;
		return false;
	}
	console_ssh_wait_socket(x->s, x->j.fd);
	return true;
}

/* The calls used here, each until it no longer would block. */
static int remote_stat(struct sftp_cmd *x, const char *path, int type,
		       LIBSSH2_SFTP_ATTRIBUTES *a)
{
	int rc;

	do
		rc = libssh2_sftp_stat_ex(x->sftp, path,
					  (unsigned int)strlen(path), type, a);
	while (rc == LIBSSH2_ERROR_EAGAIN && wait_more(x));
	return rc;
}

static LIBSSH2_SFTP_HANDLE *remote_open(struct sftp_cmd *x, const char *path,
					unsigned long flags, long mode,
					int type)
{
	LIBSSH2_SFTP_HANDLE *h;

	do
		h = libssh2_sftp_open_ex(x->sftp, path,
					 (unsigned int)strlen(path), flags,
					 mode, type);
	while (h == NULL && wait_more(x));
	return h;
}

static int remote_close(struct sftp_cmd *x, LIBSSH2_SFTP_HANDLE *h)
{
	int rc;

	/*
	 * A lost SFTP channel never answers: cut our end of the socket so
	 * that libssh2 fails at once and still frees what the handle holds
	 * (its queued writes).
	 */
	if (x->lost)
		shutdown(x->j.fd, SHUT_RDWR);
	do
		rc = libssh2_sftp_close_handle(h);
	while (rc == LIBSSH2_ERROR_EAGAIN && wait_more(x));
	return rc;
}

static int remote_setstat(struct sftp_cmd *x, LIBSSH2_SFTP_HANDLE *h,
			  LIBSSH2_SFTP_ATTRIBUTES *a)
{
	int rc;

	do
		rc = libssh2_sftp_fstat_ex(h, a, 1);
	while (rc == LIBSSH2_ERROR_EAGAIN && wait_more(x));
	return rc;
}

static int remote_unlink(struct sftp_cmd *x, const char *path)
{
	int rc;

	do
		rc = libssh2_sftp_unlink_ex(x->sftp, path,
					    (unsigned int)strlen(path));
	while (rc == LIBSSH2_ERROR_EAGAIN && wait_more(x));
	return rc;
}

static int remote_rename(struct sftp_cmd *x, const char *from, const char *to)
{
	long flags = LIBSSH2_SFTP_RENAME_OVERWRITE |
		     LIBSSH2_SFTP_RENAME_ATOMIC | LIBSSH2_SFTP_RENAME_NATIVE;
	int rc;

	do
		rc = libssh2_sftp_rename_ex(x->sftp, from,
					    (unsigned int)strlen(from), to,
					    (unsigned int)strlen(to), flags);
	while (rc == LIBSSH2_ERROR_EAGAIN && wait_more(x));
	return rc;
}

static int remote_readlink(struct sftp_cmd *x, const char *path, char *out,
			   size_t len)
{
	int rc;

	do
		rc = libssh2_sftp_symlink_ex(
		    x->sftp, path, (unsigned int)strlen(path), out,
		    (unsigned int)len - 1, LIBSSH2_SFTP_READLINK);
	while (rc == LIBSSH2_ERROR_EAGAIN && wait_more(x));
	if (rc >= 0)
		out[rc] = '\0';
	return rc;
}

/* dir/name, or dest itself when it is not a directory; NULL: no memory. */
static char *target_path(const char *dest, bool dir, const char *src)
{
	char name[NAME_BYTES];
	size_t dl = strlen(dest), n;
	char *p;

	if (!dir)
		return tether_strdup(dest);
	tether_xfer_base_name(src, name, sizeof(name));
	n = dl + 1 + strlen(name) + 1;
	p = tether_malloc(n);
	if (p != NULL)
		snprintf(p, n, "%s%s%s", dest,
			 dl > 0 && dest[dl - 1] == '/' ? "" : "/", name);
	return p;
}

static char *part_path(const char *target)
{
	size_t n = strlen(target) + sizeof(PART_SUFFIX);
	char *p = tether_malloc(n);

	if (p != NULL)
		snprintf(p, n, "%s%s", target, PART_SUFFIX);
	return p;
}

static void json_append(struct sftp_cmd *x, json_t *o)
{
	if (o == NULL || json_array_append_new(x->out, o) != 0)
		x->json_nomem = true;
}

/* One entry is over: the failure line or the finished progress line. */
static void entry_done(struct sftp_cmd *x, struct entry *e, bool ok)
{
	uint64_t ms = (uint64_t)((now_s() - e->start) * 1000 + 0.5);

	if (!ok) {
		x->failures++;
		console_progress_clear(&x->progress);
		console_error_text("", e->reason);
	} else {
		x->bytes += e->size;
		console_progress_file_done(&x->progress, e->remote, e->size, 0,
					   e->size, ms);
	}
	/* ls lists entries in x->out, not transfers. */
	if (x->out == NULL || x->json_nomem || x->op == OP_LS)
		return;
	json_append(x, json_pack("{s:o, s:o, s:I, s:s, s:I, s:b, s:o}", "path",
				 console_json_path(e->remote), "local",
				 console_json_path(e->local), "size",
				 (json_int_t)e->size, "sha256",
				 ok ? e->sha256 : "", "ms", (json_int_t)ms,
				 "ok", ok, "reason",
				 console_json_path(ok ? "" : e->reason)));
}

static void entry_fail(struct entry *e, const char *path, const char *why)
{
	if (e->reason[0] == '\0')
		snprintf(e->reason, sizeof(e->reason), "%s: %s", path, why);
}

/* The server's reason for why, as "path: reason"; false once lost. */
static bool fail_remote(struct sftp_cmd *x, struct entry *e, const char *path)
{
	char why[128];

	if (!remote_reason(x, why, sizeof(why)))
		return false;
	entry_fail(e, path, why);
	return true;
}

static void digest_end(struct entry *e)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0, i;

	if (EVP_DigestFinal_ex(e->md, md, &n) != 1 || n != 32)
		return;
	for (i = 0; i < n; i++) {
		e->sha256[2 * i] = hex[md[i] >> 4];
		e->sha256[2 * i + 1] = hex[md[i] & 15];
	}
	e->sha256[2 * n] = '\0';
}

static void progress(struct sftp_cmd *x, struct entry *e, size_t n)
{
	e->done += n;
	console_progress_update(&x->progress, e->remote, e->done, e->size,
				x->progress.total_done + n);
}

/*
 * put.
 */

/*
 * Writes the file at fd to h: everything not yet acknowledged goes back
 * to libssh2 with the fresh data behind it, so requests stay in flight
 * across calls.  0, or -1 with e->reason set (or the session lost).
 */
static int upload(struct sftp_cmd *x, struct entry *e, int fd,
		  LIBSSH2_SFTP_HANDLE *h, const char *part)
{
	size_t off = 0, len = 0;
	bool eof = false;
	ssize_t n;

	for (;;) {
		if (!eof && len < XFER_BUF) {
			n = read(fd, x->buf + len, XFER_BUF - len);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				entry_fail(e, e->local, strerror(errno));
				return -1;
			}
			eof = n == 0;
			EVP_DigestUpdate(e->md, x->buf + len, (size_t)n);
			len += (size_t)n;
		}
		if (off == len && eof)
			return 0;
		n = libssh2_sftp_write(h, (char *)x->buf + off, len - off);
		if (n == LIBSSH2_ERROR_EAGAIN && wait_more(x))
			continue;
		if (n < 0) {
			fail_remote(x, e, part);
			return -1;
		}
		off += (size_t)n;
		progress(x, e, (size_t)n);
		/* Room for fresh data: move what is still unacknowledged. */
		if (off >= XFER_BUF / 2 || (off == len && !eof)) {
			memmove(x->buf, x->buf + off, len - off);
			len -= off;
			off = 0;
		}
	}
}

/*
 * part, complete, becomes target.  SFTP v3 (OpenSSH) renames do not
 * replace: an existing file is removed first, so the old one is gone a
 * moment before the new one takes its name, never replaced by half.
 */
static int finish_put(struct sftp_cmd *x, struct entry *e, const char *part,
		      const char *target)
{
	LIBSSH2_SFTP_ATTRIBUTES a;

	if (remote_rename(x, part, target) == 0)
		return 0;
	if (!fail_remote(x, e, target))
		return -1;
	if (remote_stat(x, target, LIBSSH2_SFTP_LSTAT, &a) != 0 ||
	    LIBSSH2_SFTP_S_ISDIR(a.permissions) ||
	    remote_unlink(x, target) != 0 ||
	    remote_rename(x, part, target) != 0) {
		/* The first reason stands, unless the session went since. */
		if (libssh2_session_last_errno(x->s) !=
		    LIBSSH2_ERROR_SFTP_PROTOCOL)
			(void)fail_remote(x, e, target);
		return -1;
	}
	e->reason[0] = '\0';
	return 0;
}

static void put_one(struct sftp_cmd *x, const char *local)
{
	LIBSSH2_SFTP_ATTRIBUTES a;
	LIBSSH2_SFTP_HANDLE *h = NULL;
	struct entry e = {.local = local, .start = now_s()};
	char *target = NULL, *part = NULL;
	struct stat st;
	bool ok = false, made = false;
	int fd;

	fd = open(local, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		entry_fail(&e, local, strerror(errno));
		e.remote = x->dest;
		goto out;
	}
	target = target_path(x->dest, x->dest_dir, local);
	part = target != NULL ? part_path(target) : NULL;
	e.md = EVP_MD_CTX_new();
	e.remote = target != NULL ? target : x->dest;
	if (part == NULL || e.md == NULL ||
	    EVP_DigestInit_ex(e.md, EVP_sha256(), NULL) != 1) {
		entry_fail(&e, local, "out of memory");
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		snprintf(e.reason, sizeof(e.reason),
			 "%s is a directory (-r is not supported)", local);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		entry_fail(&e, local, "not a regular file");
		goto out;
	}
	e.size = (uint64_t)st.st_size;
	/* A directory in the way would only fail at the rename. */
	if (remote_stat(x, target, LIBSSH2_SFTP_STAT, &a) == 0 &&
	    LIBSSH2_SFTP_S_ISDIR(a.permissions)) {
		entry_fail(&e, target, "Is a directory");
		goto out;
	}
	h = remote_open(
	    x, part, LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_TRUNC,
	    0600, LIBSSH2_SFTP_OPENFILE);
	if (h == NULL) {
		fail_remote(x, &e, part);
		goto out;
	}
	made = true;
	console_progress_update(&x->progress, e.remote, 0, e.size,
				x->progress.total_done);
	if (upload(x, &e, fd, h, part) != 0)
		goto out;
	/* Mode and times on the handle, before anyone sees the name. */
	memset(&a, 0, sizeof(a));
	a.flags = LIBSSH2_SFTP_ATTR_PERMISSIONS | LIBSSH2_SFTP_ATTR_ACMODTIME;
	a.permissions = st.st_mode & 0777;
	a.atime = (unsigned long)st.st_atime;
	a.mtime = (unsigned long)st.st_mtime;
	if (remote_setstat(x, h, &a) != 0 && !fail_remote(x, &e, part))
		goto out;
	if (e.reason[0] != '\0')
		goto out;
	if (remote_close(x, h) != 0) {
		h = NULL;
		fail_remote(x, &e, part);
		goto out;
	}
	h = NULL;
	if (finish_put(x, &e, part, target) != 0)
		goto out;
	made = false;
	digest_end(&e);
	ok = true;
out:
	if (h != NULL)
		remote_close(x, h);
	if (made && !x->lost)
		remote_unlink(x, part);
	if (fd >= 0)
		close(fd);
	if (!x->lost)
		entry_done(x, &e, ok);
	EVP_MD_CTX_free(e.md);
	tether_free(target);
	tether_free(part);
}

/*
 * get.
 */

/* Reads h into fd; 0, or -1 with e->reason set (or the session lost). */
static int download(struct sftp_cmd *x, struct entry *e, LIBSSH2_SFTP_HANDLE *h,
		    int fd, const char *part)
{
	ssize_t n;

	for (;;) {
		n = libssh2_sftp_read(h, (char *)x->buf, XFER_BUF);
		if (n == LIBSSH2_ERROR_EAGAIN && wait_more(x))
			continue;
		if (n <= 0)
			break;
		EVP_DigestUpdate(e->md, x->buf, (size_t)n);
		if (console_fd_write_all(fd, x->buf, (size_t)n) != 0) {
			entry_fail(e, part, strerror(errno));
			return -1;
		}
		progress(x, e, (size_t)n);
	}
	if (n < 0) {
		fail_remote(x, e, e->remote);
		return -1;
	}
	return 0;
}

/*
 * Mode and times of a, closes *fdp, then the final name; 0 or -1
 * (e->reason).
 */
static int finish_get(struct entry *e, int *fdp,
		      const LIBSSH2_SFTP_ATTRIBUTES *a, const char *part,
		      const char *target)
{
	struct timespec ts[2] = {{0}, {0}};
	int fd = *fdp;

	if ((a->flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) &&
	    fchmod(fd, (mode_t)(a->permissions & 0777)) != 0) {
		entry_fail(e, part, strerror(errno));
		return -1;
	}
	if (a->flags & LIBSSH2_SFTP_ATTR_ACMODTIME) {
		ts[0].tv_sec = (time_t)a->atime;
		ts[1].tv_sec = (time_t)a->mtime;
		if (futimens(fd, ts) != 0) {
			entry_fail(e, part, strerror(errno));
			return -1;
		}
	}
	*fdp = -1;
	/* A write error may only show now (NFS, quotas). */
	if (close(fd) != 0) {
		entry_fail(e, part, strerror(errno));
		return -1;
	}
	if (rename(part, target) != 0) {
		entry_fail(e, target, strerror(errno));
		return -1;
	}
	return 0;
}

static void get_one(struct sftp_cmd *x, const char *remote)
{
	LIBSSH2_SFTP_ATTRIBUTES a;
	LIBSSH2_SFTP_HANDLE *h = NULL;
	struct entry e = {.remote = remote, .start = now_s()};
	char *target, *part = NULL;
	bool ok = false, made = false;
	int fd = -1;

	target = target_path(x->dest, x->dest_dir, remote);
	part = target != NULL ? part_path(target) : NULL;
	e.local = target != NULL ? target : x->dest;
	e.md = EVP_MD_CTX_new();
	if (part == NULL || e.md == NULL ||
	    EVP_DigestInit_ex(e.md, EVP_sha256(), NULL) != 1) {
		entry_fail(&e, remote, "out of memory");
		goto out;
	}
	if (remote_stat(x, remote, LIBSSH2_SFTP_STAT, &a) != 0) {
		fail_remote(x, &e, remote);
		goto out;
	}
	if (LIBSSH2_SFTP_S_ISDIR(a.permissions)) {
		snprintf(e.reason, sizeof(e.reason),
			 "%s is a directory (-r is not supported)", remote);
		goto out;
	}
	if (!LIBSSH2_SFTP_S_ISREG(a.permissions)) {
		entry_fail(&e, remote, "not a regular file");
		goto out;
	}
	e.size = a.filesize;
	h = remote_open(x, remote, LIBSSH2_FXF_READ, 0, LIBSSH2_SFTP_OPENFILE);
	if (h == NULL) {
		fail_remote(x, &e, remote);
		goto out;
	}
	fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
		  0600);
	if (fd < 0) {
		entry_fail(&e, part, strerror(errno));
		goto out;
	}
	made = true;
	console_progress_update(&x->progress, remote, 0, e.size,
				x->progress.total_done);
	if (download(x, &e, h, fd, part) != 0 ||
	    finish_get(&e, &fd, &a, part, target) != 0)
		goto out;
	made = false;
	/* The size may have changed while we read: say what arrived. */
	e.size = e.done;
	digest_end(&e);
	ok = true;
out:
	if (h != NULL)
		remote_close(x, h);
	if (fd >= 0)
		close(fd);
	/* What was written so far is no use to anyone. */
	if (made)
		unlink(part);
	if (!x->lost)
		entry_done(x, &e, ok);
	EVP_MD_CTX_free(e.md);
	tether_free(target);
	tether_free(part);
}

/*
 * ls.
 */

struct ls_entry {
	char *name;
	char *link; /* -l, symlinks: the target */
	LIBSSH2_SFTP_ATTRIBUTES a;
};

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct ls_entry *)a)->name,
		      ((const struct ls_entry *)b)->name);
}

/* "drwxr-xr-x", as ls -l writes it. */
static void mode_string(unsigned long m, char out[11])
{
	static const char rwx[] = "rwxrwxrwx";
	int i;

	out[0] = LIBSSH2_SFTP_S_ISDIR(m)    ? 'd'
		 : LIBSSH2_SFTP_S_ISLNK(m)  ? 'l'
		 : LIBSSH2_SFTP_S_ISCHR(m)  ? 'c'
		 : LIBSSH2_SFTP_S_ISBLK(m)  ? 'b'
		 : LIBSSH2_SFTP_S_ISFIFO(m) ? 'p'
		 : LIBSSH2_SFTP_S_ISSOCK(m) ? 's'
					    : '-';
	for (i = 0; i < 9; i++)
		out[i + 1] = m & (1ul << (8 - i)) ? rwx[i] : '-';
	if (m & 04000)
		out[3] = out[3] == 'x' ? 's' : 'S';
	if (m & 02000)
		out[6] = out[6] == 'x' ? 's' : 'S';
	if (m & 01000)
		out[9] = out[9] == 'x' ? 't' : 'T';
	out[10] = '\0';
}

static const char *type_name(unsigned long m)
{
	if (LIBSSH2_SFTP_S_ISREG(m))
		return "file";
	if (LIBSSH2_SFTP_S_ISDIR(m))
		return "dir";
	if (LIBSSH2_SFTP_S_ISLNK(m))
		return "symlink";
	return "other";
}

static void print_entries(struct sftp_cmd *x, struct ls_entry *v, size_t n)
{
	char mode[11], when[32], num[32];
	int width = 1, w;
	struct tm tm;
	time_t t;
	size_t i;

	for (i = 0; i < n; i++) {
		w = snprintf(num, sizeof(num), "%llu",
			     (unsigned long long)v[i].a.filesize);
		if (w > width)
			width = w;
	}
	for (i = 0; i < n; i++) {
		if (x->out != NULL) {
			mode_string(v[i].a.permissions, mode);
			snprintf(num, sizeof(num), "%04lo",
				 v[i].a.permissions & 07777);
			json_append(
			    x, json_pack("{s:o, s:s, s:s, s:I, s:I, s:o*}",
					 "name", console_json_path(v[i].name),
					 "type", type_name(v[i].a.permissions),
					 "mode", num, "size",
					 (json_int_t)v[i].a.filesize, "mtime",
					 (json_int_t)v[i].a.mtime, "target",
					 v[i].link != NULL
					     ? console_json_path(v[i].link)
					     : NULL));
			continue;
		}
		if (x->long_format) {
			mode_string(v[i].a.permissions, mode);
			t = (time_t)v[i].a.mtime;
			if (localtime_r(&t, &tm) == NULL ||
			    strftime(when, sizeof(when), "%Y-%m-%d %H:%M",
				     &tm) == 0)
				snprintf(when, sizeof(when), "?");
			printf("%s %*llu %s ", mode, width,
			       (unsigned long long)v[i].a.filesize, when);
		}
		tether_text_print_clean(stdout, v[i].name);
		if (x->long_format && v[i].link != NULL) {
			fputs(" -> ", stdout);
			tether_text_print_clean(stdout, v[i].link);
		}
		putchar('\n');
	}
}

/* The entries of the directory path into *vp; 0, 1 (failed: x->failures). */
static int read_dir(struct sftp_cmd *x, const char *path, struct ls_entry **vp,
		    size_t *np)
{
	LIBSSH2_SFTP_HANDLE *h;
	LIBSSH2_SFTP_ATTRIBUTES a;
	struct ls_entry *v = NULL, *nv;
	char name[NAME_BYTES], full[2 * NAME_BYTES + 2], link[NAME_BYTES];
	size_t n = 0, cap = 0;
	struct entry e = {.remote = path};
	int r, ret = -1;

	h = remote_open(x, path, 0, 0, LIBSSH2_SFTP_OPENDIR);
	if (h == NULL)
		goto fail;
	for (;;) {
		r = libssh2_sftp_readdir(h, name, sizeof(name), &a);
		if (r == LIBSSH2_ERROR_EAGAIN && wait_more(x))
			continue;
		if (r <= 0)
			break;
		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
		    (name[0] == '.' && !x->all))
			continue;
		if (n == cap) {
			cap = cap != 0 ? 2 * cap : 64;
			nv = tether_reallocarray(v, cap, sizeof(*v));
			if (nv == NULL)
				goto nomem;
			v = nv;
		}
		memset(&v[n], 0, sizeof(v[n]));
		v[n].a = a;
		v[n].name = tether_strdup(name);
		if (v[n++].name == NULL)
			goto nomem;
		if (!x->long_format && !x->json)
			continue;
		snprintf(full, sizeof(full), "%s/%s", path, name);
		if (LIBSSH2_SFTP_S_ISLNK(a.permissions) &&
		    remote_readlink(x, full, link, sizeof(link)) > 0)
			v[n - 1].link = tether_strdup(link);
	}
	if (r < 0)
		goto fail;
	remote_close(x, h);
	*vp = v;
	*np = n;
	return 0;
nomem:
	console_ssh_error(&x->j, "out of memory");
	x->lost = true;
	goto out;
fail:
	if (fail_remote(x, &e, path))
		entry_done(x, &e, false);
out:
	if (h != NULL)
		remote_close(x, h);
	while (n > 0) {
		n--;
		tether_free(v[n].name);
		tether_free(v[n].link);
	}
	tether_free(v);
	return ret;
}

static void run_ls(struct sftp_cmd *x)
{
	const char *path = x->dest != NULL ? x->dest : ".";
	struct entry e = {.remote = path};
	struct ls_entry one, *v = NULL;
	char link[NAME_BYTES];
	size_t n = 0, i;

	if (remote_stat(x, path, LIBSSH2_SFTP_STAT, &one.a) != 0) {
		if (fail_remote(x, &e, path))
			entry_done(x, &e, false);
		return;
	}
	if (!LIBSSH2_SFTP_S_ISDIR(one.a.permissions)) {
		/* As ls: a file is listed as itself. */
		remote_stat(x, path, LIBSSH2_SFTP_LSTAT, &one.a);
		one.name = (char *)path;
		one.link = NULL;
		if (LIBSSH2_SFTP_S_ISLNK(one.a.permissions) &&
		    remote_readlink(x, path, link, sizeof(link)) > 0)
			one.link = link;
		print_entries(x, &one, 1);
		return;
	}
	if (read_dir(x, path, &v, &n) != 0)
		return;
	qsort(v, n, sizeof(*v), by_name);
	print_entries(x, v, n);
	for (i = 0; i < n; i++) {
		tether_free(v[i].name);
		tether_free(v[i].link);
	}
	tether_free(v);
}

/*
 * The body.
 */

/* Whether path is a directory there; false (x->lost) if the session went. */
static bool remote_is_dir(struct sftp_cmd *x, const char *path)
{
	LIBSSH2_SFTP_ATTRIBUTES a;

	if (remote_stat(x, path, LIBSSH2_SFTP_STAT, &a) == 0)
		return LIBSSH2_SFTP_S_ISDIR(a.permissions);
	if (libssh2_session_last_errno(x->s) != LIBSSH2_ERROR_SFTP_PROTOCOL) {
		console_ssh_error(&x->j,
				  "connection to the SSH server lost: %s",
				  console_ssh_last_error(x->s));
		x->lost = true;
	}
	return false;
}

/* Several sources need a directory to land in; false once reported. */
static bool check_dest(struct sftp_cmd *x)
{
	struct stat st;

	if (x->op == OP_PUT)
		x->dest_dir = remote_is_dir(x, x->dest);
	else
		x->dest_dir = stat(x->dest, &st) == 0 && S_ISDIR(st.st_mode);
	if (x->lost || x->dest_dir || x->nsrc < 2)
		return !x->lost;
	x->failures++;
	fputs("tether: ", stderr);
	tether_text_print_clean(stderr, x->dest);
	fprintf(stderr, ": not a directory (several %s need one)\n",
		x->op == OP_PUT ? "LOCALs" : "REMOTEs");
	return false;
}

static void run_transfers(struct sftp_cmd *x)
{
	int i;

	x->buf = tether_malloc(XFER_BUF);
	if (x->buf == NULL) {
		console_ssh_error(&x->j, "out of memory");
		x->lost = true;
		return;
	}
	console_progress_init(&x->progress,
			      !x->quiet && isatty(STDERR_FILENO) == 1, false);
	if (check_dest(x))
		for (i = 0; i < x->nsrc && !x->lost; i++) {
			if (x->op == OP_PUT)
				put_one(x, x->srcs[i]);
			else
				get_one(x, x->srcs[i]);
		}
	x->seconds = console_progress_seconds(&x->progress);
	console_progress_finish(&x->progress, !x->lost && x->nsrc > 0);
	tether_free(x->buf);
	x->buf = NULL;
}

static void sftp_body(struct console_ssh *j, LIBSSH2_SESSION *s, void *arg)
{
	struct sftp_cmd *x = arg;

	x->s = s;
	x->sftp = libssh2_sftp_init(s);
	if (x->sftp == NULL) {
		console_ssh_error(j, "cannot start SFTP: %s",
				  console_ssh_last_error(s));
		return;
	}
	libssh2_session_set_blocking(s, 0);
	if (x->op == OP_LS)
		run_ls(x);
	else
		run_transfers(x);
	libssh2_session_set_blocking(s, 1);
	/* On a lost channel this fails at once (remote_close()), freeing. */
	if (x->lost) {
		shutdown(x->j.fd, SHUT_RDWR);
		libssh2_session_set_blocking(s, 0);
	}
	libssh2_sftp_shutdown(x->sftp);
	x->sftp = NULL;
	if (x->lost)
		return;
	j->status = x->failures > 0 ? EXIT_SOME_FAILED : 0;
	j->ok = true;
}

/* --json: the summary or the listing on standard output; 0 or -1. */
static int print_json(struct sftp_cmd *x)
{
	double secs = (double)(long long)(x->seconds * 1000 + 0.5) / 1000;
	json_t *o;
	int ret = -1;

	if (x->json_nomem) {
		console_error("out of memory");
		return -1;
	}
	if (x->op == OP_LS)
		o = json_pack(
		    "{s:o, s:O}", "path",
		    console_json_path(x->dest != NULL ? x->dest : "."),
		    "entries", x->out);
	else
		o = json_pack("{s:s, s:s, s:b, s:O, s:I, s:f, s:I}", "ticket",
			      x->args.ticket_name, "direction",
			      x->op == OP_PUT ? "put" : "get", "ok",
			      x->failures == 0, "files", x->out, "bytes",
			      (json_int_t)x->bytes, "seconds", secs, "failures",
			      (json_int_t)x->failures);
	if (o == NULL)
		console_error("out of memory");
	else
		ret = console_json_print(o);
	json_decref(o);
	return ret;
}

/*
 * Arguments.
 */

static bool verb(const char *s, enum op *op)
{
	if (strcmp(s, "get") == 0)
		*op = OP_GET;
	else if (strcmp(s, "put") == 0)
		*op = OP_PUT;
	else if (strcmp(s, "ls") == 0)
		*op = OP_LS;
	else
		return false;
	return true;
}

/* The operands after the options and T-N: [DEST] VERB ARGS... */
static int parse_operands(struct sftp_cmd *x, int nops, char **ops, char *user,
			  char *host)
{
	int i = 0, ret;

	/* A destination unless it is the verb: `USER@ls` names a host ls. */
	if (!verb(ops[0], &x->op)) {
		ret = console_ssh_parse_dest("sftp", ops[0], user,
					     CONSOLE_NAME_MAX, host,
					     CONSOLE_HOST_MAX, &x->j.port);
		if (ret != 0)
			return ret;
		if (nops < 2 || !verb(ops[1], &x->op))
			goto usage;
		i = 1;
	}
	ops += i + 1;
	nops -= i + 1;
	for (i = 0; i < nops; i++)
		if (ops[i][0] == '\0')
			return console_usage_error("sftp", "empty path");
	if (x->op == OP_LS) {
		if (nops > 1)
			return console_usage_error("sftp",
						   "ls takes one REMOTE");
		x->dest = nops == 1 ? ops[0] : NULL;
		return -1;
	}
	if (x->long_format || x->all)
		return console_usage_error("sftp", "-l and -a are for ls");
	if (nops < 2)
		return console_usage_error("sftp", "%s",
					   x->op == OP_PUT
					       ? "expected put LOCAL... REMOTE"
					       : "expected get REMOTE... "
						 "LOCAL");
	x->srcs = ops;
	x->nsrc = nops - 1;
	x->dest = ops[nops - 1];
	return -1;
usage:
	return console_usage_error("sftp", "%s", sftp_need);
}

static const struct option sftp_longs[] = {
    {"accept-new", no_argument, NULL, CONSOLE_SSH_OPT_ACCEPT_NEW},
    {"host-key-alias", required_argument, NULL, CONSOLE_SSH_OPT_HOST_KEY_ALIAS},
    {"quiet", no_argument, NULL, 'q'},
    {NULL, 0, NULL, 0},
};

static int sftp_option(void *arg, int opt, char *optarg)
{
	struct sftp_cmd *x = arg;

	if (console_ssh_option(&x->j, opt, optarg))
		return -1;
	if (opt == 'q')
		x->quiet = true;
	else if (opt == 'l')
		x->long_format = true;
	else
		x->all = true;
	return -1;
}

static const struct console_opts sftp_opts = {
    .name = "sftp",
    .usage = sftp_usage,
    .shorts = "i:qla",
    .longs = sftp_longs,
    .flags = CONSOLE_OPTS_JSON | CONSOLE_OPTS_TICKET,
    .min = 2,
    .max = -1,
    .need = sftp_need,
    .option = sftp_option,
};

/* Options and operands; -1 to go on, else the exit status to return. */
static int parse_args(struct sftp_cmd *x, int argc, char **argv, char *user,
		      char *host)
{
	int r = console_opts_parse(&sftp_opts, argc, argv, x, &x->args);

	if (r >= 0)
		return r;
	x->json = x->args.json;
	return parse_operands(x, x->args.argc, x->args.argv, user, host);
}

int console_sftp(int argc, char **argv)
{
	char user[CONSOLE_NAME_MAX] = "";
	char host[CONSOLE_HOST_MAX] = TETHER_FORWARD_HOST;
	struct sftp_cmd *x;
	int status;

	x = tether_calloc(1, sizeof(*x));
	if (x == NULL) {
		console_error("out of memory");
		return CONSOLE_EXIT_FAIL;
	}
	x->j.port = TETHER_FORWARD_PORT;
	x->j.fd = -1;
	status = parse_args(x, argc, argv, user, host);
	if (status >= 0)
		goto out;
	status = CONSOLE_EXIT_FAIL;
	if (console_ssh_local_user(&x->j, user, sizeof(user)) != 0)
		goto out;
	if (x->json && (x->out = json_array()) == NULL) {
		console_error("out of memory");
		goto out;
	}
	x->j.host = host;
	x->j.body = sftp_body;
	x->j.body_arg = x;
	status = console_ssh_run(&x->j, x->args.ticket, x->args.ticket_name);
	/*
	 * The outcome is known: a transfer's summary even when some entries
	 * failed; a listing only when there is one.
	 */
	if (x->json &&
	    (status == 0 || (status == EXIT_SOME_FAILED && x->op != OP_LS)) &&
	    print_json(x) != 0)
		status = CONSOLE_EXIT_FAIL;
out:
	json_decref(x->out);
	tether_free(x);
	return status;
}
