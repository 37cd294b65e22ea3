/*
 * File channels, agent side (docs/protocol.md, "File transfer"): the
 * console's GET or PUT, the customer's policy on where a technician may
 * write and read (--allow-write, --allow-read), and for each finished
 * entry a line for the customer and an audit record for the relay.  The
 * transfer itself is the shared engine (tether/xfer.h); chan.c owns the
 * channel, hands this file its sealed messages and gives it the channel
 * as a struct agent_file_io, whose struct tether_xfer_io the engine gets.
 *
 * The policy is checked on resolved paths (realpath), so neither "..",
 * nor a symlink, nor a relative path leads outside a root, and the engine
 * is given the path that was checked: below it, it follows no symlinks.
 */
#include <errno.h>
#include <glob.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <tether/alloc.h>
#include <tether/buf.h>
#include <tether/crypto.h>
#include <tether/err.h>
#include <tether/id.h>
#include <tether/log.h>
#include <tether/msg.h>

#include "diag/text.h"
#include "session/exec.h"
#include "session/file.h"
#include "session/term.h"

/* How much of a path or a list of paths the customer is shown. */
#define SHOW_MAX 1024
/*
 * Our ERROR text: the console takes up to TETHER_MSG_ERROR_MAX bytes and
 * shows the rest of a long path no better.
 */
#define ERROR_MAX 1000
/* glob(3) metacharacters, escaped in the home directory's name. */
#define GLOB_SPECIAL "*?[\\"

struct agent_file {
	const struct agent_file_policy *policy;
	struct agent_term *term;
	uint32_t channel;
	char technician[TETHER_ID_NAME_MAX + 1];
	bool put; /* PUT: we receive; GET: we send */
	/* The channel (ours too, for ERROR and reports), the engine's cbs. */
	struct agent_file_io io;
	struct tether_xfer_cbs cbs;
	struct tether_xfer_send *send;
	struct tether_xfer_recv *recv;
};

/*
 * A cleaned copy of text from the peer or the file system, whole (unlike
 * agent_text_clean() into a fixed buffer): audit records keep full paths.
 */
static char *clean_dup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *out = tether_malloc(n);

	/* Cleaning never lengthens: one '?' per byte it replaces. */
	if (out != NULL)
		agent_text_clean(s, out, n);
	return out;
}

static int64_t i64(uint64_t v)
{
	return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v;
}

/*
 * The relay's record of one entry.  Paths are bytes and JSON wants UTF-8,
 * so they are cleaned as for the terminal: a record with '?' beats none.
 */
static void audit(struct agent_file *f, const struct tether_xfer_file *x)
{
	const char *where =
	    x->local != NULL && x->local[0] != '\0' ? x->local : x->path;
	char *path = clean_dup(where != NULL ? where : "");
	char *reason = clean_dup(x->reason != NULL ? x->reason : "");
	struct tether_ctrl_xfer_report r = {
	    .channel = f->channel,
	    .direction = f->put ? TETHER_XFER_DIR_PUT : TETHER_XFER_DIR_GET,
	    .path = path,
	    .type = (enum tether_xfer_type)x->type,
	    .size = i64(x->size),
	    .offset = i64(x->offset),
	    .sent = i64(x->sent),
	    .ms = i64(x->ms),
	    .ok = x->ok,
	    .reason = reason,
	};

	r.has_sha256 =
	    tether_hex_decode(x->sha256, r.sha256, sizeof(r.sha256)) == 0;
	if (path == NULL || reason == NULL ||
	    f->io.report(f->io.chan.arg, &r) == TETHER_ERR_INVALID)
		tether_log_warn("channel %u: cannot build the audit record",
				f->channel);
	tether_free(path);
	tether_free(reason);
}

/* The customer's line for one entry: what crossed, or why it did not. */
static void tell(struct agent_file *f, const struct tether_xfer_file *x)
{
	char shown[SHOW_MAX], why[TETHER_MSG_REASON_MAX], what[32];
	char off[32], at[64] = "";
	const char *where =
	    x->local != NULL && x->local[0] != '\0' ? x->local : x->path;

	agent_text_clean(where != NULL ? where : "?", shown, sizeof(shown));
	if (!x->ok) {
		agent_text_clean(x->reason != NULL && x->reason[0] != '\0'
				     ? x->reason
				     : "failed",
				 why, sizeof(why));
		agent_term_say(f->term, "%s could not %s %s: %s", f->technician,
			       f->put ? "send" : "receive", shown, why);
		return;
	}
	if (x->type == TETHER_XFER_DIR) {
		snprintf(what, sizeof(what), "directory");
	} else if (x->type == TETHER_XFER_SYMLINK) {
		snprintf(what, sizeof(what), "symlink");
	} else {
		agent_term_size(x->size, what, sizeof(what));
		if (x->offset > 0) {
			agent_term_size(x->offset, off, sizeof(off));
			snprintf(at, sizeof(at), ", resumed at %s", off);
		}
	}
	agent_term_say(f->term, "%s %s %s (%s%s)", f->technician,
		       f->put ? "sent" : "receives", shown, what, at);
}

/* The engine's on_file: an entry is finished, ok or not. */
static void on_file(void *arg, const struct tether_xfer_file *x)
{
	struct agent_file *f = arg;

	tell(f, x);
	audit(f, x);
}

/* Paths and patterns: every one relative to the user's home. */

/*
 * path made absolute: a relative one (empty included) is relative to the
 * home directory, whose glob(3) metacharacters are escaped when the
 * result is a pattern.  0 or ENAMETOOLONG.
 */
static int absolute(const char *path, bool pattern, char *out, size_t outlen)
{
	const char *home = path[0] == '/' ? "" : agent_work_dir();
	size_t pos = 0, n, i;

	/* Room for an escape, the character, a '/' and the NUL. */
	for (i = 0; home[i] != '\0'; i++) {
		if (pos + 4 > outlen)
			return ENAMETOOLONG;
		if (pattern && strchr(GLOB_SPECIAL, home[i]) != NULL)
			out[pos++] = '\\';
		out[pos++] = home[i];
	}
	if (pos > 0 && out[pos - 1] != '/' && path[0] != '\0')
		out[pos++] = '/';
	n = strlen(path);
	if (pos + n >= outlen)
		return ENAMETOOLONG;
	memcpy(out + pos, path, n + 1);
	return 0;
}

/*
 * The absolute path without symlinks, "." or "..": realpath() if it
 * exists, else realpath() of its parent plus its last component (a name
 * still to be created).  NULL, or why it cannot be resolved.
 */
static const char *resolve(const char *path, char *out, size_t outlen)
{
	char tmp[PATH_MAX], parent[PATH_MAX];
	const char *dir, *last;
	struct stat st;
	char *slash;
	size_t n;
	int len;

	if (realpath(path, tmp) != NULL) {
		len = snprintf(out, outlen, "%s", tmp);
		return len < 0 || (size_t)len >= outlen ? strerror(ENAMETOOLONG)
							: NULL;
	}
	if (errno != ENOENT)
		return strerror(errno);
	n = strlen(path);
	while (n > 1 && path[n - 1] == '/')
		n--;
	if (n >= sizeof(tmp))
		return strerror(ENAMETOOLONG);
	memcpy(tmp, path, n);
	tmp[n] = '\0';
	/* A symlink to nowhere: where a write lands would be its target's. */
	if (lstat(tmp, &st) == 0)
		return "a symbolic link to a missing file";
	slash = strrchr(tmp, '/');
	if (slash == NULL)
		return strerror(ENOENT);
	last = slash + 1;
	/* "x/." or "x/.." that does not exist: neither does x. */
	if (last[0] == '\0' || strcmp(last, ".") == 0 ||
	    strcmp(last, "..") == 0)
		return strerror(ENOENT);
	dir = slash == tmp ? "/" : tmp;
	*slash = '\0';
	if (realpath(dir, parent) == NULL)
		return strerror(errno);
	len = snprintf(out, outlen, "%s%s%s", parent,
		       strcmp(parent, "/") == 0 ? "" : "/", last);
	return len < 0 || (size_t)len >= outlen ? strerror(ENAMETOOLONG) : NULL;
}

/* path (resolved) is root or below it: /tmpx is not below /tmp. */
static bool under(const char *root, const char *path)
{
	size_t n = strlen(root);

	if (strcmp(root, "/") == 0)
		return true;
	return strncmp(path, root, n) == 0 &&
	       (path[n] == '\0' || path[n] == '/');
}

static bool in_roots(const struct agent_roots *roots, const char *path)
{
	size_t i;

	for (i = 0; i < roots->n; i++)
		if (under(roots->dirs[i], path))
			return true;
	return false;
}

/* roots joined with ", ", cut with "..." where out is too small. */
static void join_roots(const struct agent_roots *roots, char *out,
		       size_t outlen)
{
	size_t pos = 0, n, i;

	out[0] = '\0';
	for (i = 0; i < roots->n; i++) {
		n = strlen(roots->dirs[i]);
		/* Room for ", ", the root, and ", ..." after it. */
		if (pos + n + 8 >= outlen) {
			snprintf(out + pos, outlen - pos, "%s...",
				 i > 0 ? ", " : "");
			return;
		}
		pos += (size_t)snprintf(out + pos, outlen - pos, "%s%s",
					i > 0 ? ", " : "", roots->dirs[i]);
	}
}

/* "outside the allowed directories (ROOTS)", in TETHER_MSG_REASON_MAX. */
static void outside(const struct agent_roots *roots, char *out, size_t outlen)
{
	char list[TETHER_MSG_REASON_MAX - 40];

	join_roots(roots, list, sizeof(list));
	snprintf(out, outlen, "outside the allowed directories (%s)", list);
}

/* Sealed ERROR, best effort.  The caller closes the channel. */
static void send_error(struct agent_file *f, const char *text)
{
	const struct tether_msg_error m = {.reason = text};
	struct tether_buf *b = tether_buf_new(ERROR_MAX + 8);

	if (b != NULL && tether_msg_encode_error(b, &m) == 0)
		f->io.chan.send(f->io.chan.arg, TETHER_MSG_ERROR,
				tether_buf_ptr(b), tether_buf_len(b));
	tether_buf_free(b);
}

/* Why a whole PUT does not start. */
enum refusal {
	REFUSE_POLICY, /* outside the write roots */
	REFUSE_PATH,   /* the destination cannot be resolved */
	REFUSE_ENGINE, /* the receiver could not start; it names the path */
};

/*
 * The whole PUT is refused or impossible: the console gets ERROR "PATH:
 * REASON" (chan.c adds CLOSE), the customer a line, and the relay
 * an audit record as for a skipped entry.
 */
static void refuse_put(struct agent_file *f, const char *path,
		       const char *reason, enum refusal how)
{
	char text[ERROR_MAX], shown[SHOW_MAX], why[TETHER_MSG_REASON_MAX];
	struct tether_xfer_file x;

	if (how == REFUSE_ENGINE)
		snprintf(text, sizeof(text), "%s", reason);
	else
		snprintf(text, sizeof(text), "%s: %s", path, reason);
	agent_text_clean(path, shown, sizeof(shown));
	agent_text_clean(text, why, sizeof(why));
	if (how == REFUSE_POLICY)
		agent_term_say(f->term, "%s may not write to %s; refused",
			       f->technician, shown);
	else
		agent_term_say(f->term, "%s could not send files: %s",
			       f->technician, why);
	memset(&x, 0, sizeof(x));
	x.path = path;
	x.local = path;
	x.reason = reason;
	/* Audited before the ERROR that makes the console leave. */
	audit(f, &x);
	send_error(f, text);
}

static int start_put(struct agent_file *f, const uint8_t *body, size_t len,
		     const char **why)
{
	char full[PATH_MAX], dest[PATH_MAX], reason[TETHER_MSG_REASON_MAX];
	struct tether_msg_put req;
	char shown[SHOW_MAX];
	const char *fail;
	int r;

	f->put = true;
	if ((r = tether_msg_decode_put(body, len, &req)) != 0) {
		*why = r == TETHER_ERR_NOMEM ? "out of memory"
					     : "malformed put request";
		return r;
	}
	r = AGENT_FILE_DONE;
	if (absolute(req.dest, false, full, sizeof(full)) != 0) {
		refuse_put(f, req.dest, strerror(ENAMETOOLONG), REFUSE_PATH);
		goto out;
	}
	if ((fail = resolve(full, dest, sizeof(dest))) != NULL) {
		refuse_put(f, full, fail, REFUSE_PATH);
		goto out;
	}
	if (!in_roots(&f->policy->write, dest)) {
		outside(&f->policy->write, reason, sizeof(reason));
		refuse_put(f, dest, reason, REFUSE_POLICY);
		goto out;
	}
	f->recv = tether_xfer_recv_new(dest, &f->io.chan, &f->cbs, reason,
				       sizeof(reason));
	if (f->recv == NULL) {
		refuse_put(f, dest, reason, REFUSE_ENGINE);
		goto out;
	}
	agent_text_clean(dest, shown, sizeof(shown));
	agent_term_say(f->term, "%s sends files to %s (channel %u)",
		       f->technician, shown, f->channel);
	r = AGENT_FILE_MORE;
out:
	tether_msg_clear_put(&req);
	return r;
}

/*
 * The name an entry is sent under: the last part of the path glob found,
 * so that a checked, resolved path is still sent under the name asked
 * for.  NULL (the engine's choice) where that part is no name.
 */
static const char *last_name(const char *path, char *out, size_t outlen)
{
	size_t n = strlen(path);
	const char *start;

	while (n > 1 && path[n - 1] == '/')
		n--;
	for (start = path + n; start > path && start[-1] != '/'; start--)
		;
	n -= (size_t)(start - path);
	if (n == 0 || n >= outlen || (n == 1 && start[0] == '.') ||
	    (n == 2 && start[0] == '.' && start[1] == '.'))
		return NULL;
	memcpy(out, start, n);
	out[n] = '\0';
	return out;
}

/* One match of a GET pattern: the read policy, then the engine. */
static int add_match(struct agent_file *f, const char *path)
{
	const struct agent_roots *roots = &f->policy->read;
	char real[PATH_MAX], reason[TETHER_MSG_REASON_MAX], name[NAME_MAX + 1];

	/* No roots: anything this user can read, as the engine finds it. */
	if (roots->n == 0)
		return tether_xfer_send_add(f->send, path, NULL);
	if (realpath(path, real) == NULL)
		return tether_xfer_send_skip(f->send, path, strerror(errno));
	if (!in_roots(roots, real)) {
		outside(roots, reason, sizeof(reason));
		return tether_xfer_send_skip(f->send, path, reason);
	}
	/* The file read is the one checked, not whatever path names later. */
	return tether_xfer_send_add(f->send, real,
				    last_name(path, name, sizeof(name)));
}

/* A GET pattern: glob(3) it; each match is a source, none is a SKIP. */
static int add_pattern(struct agent_file *f, const char *pat)
{
	char full[PATH_MAX + TETHER_MSG_PATH_MAX];
	glob_t g;
	size_t i;
	int r = 0, gr;

	if (absolute(pat, true, full, sizeof(full)) != 0)
		return tether_xfer_send_skip(f->send, pat,
					     strerror(ENAMETOOLONG));
	memset(&g, 0, sizeof(g));
	gr = glob(full, 0, NULL, &g);
	if (gr == GLOB_NOMATCH)
		r = tether_xfer_send_skip(f->send, pat, strerror(ENOENT));
	else if (gr == GLOB_NOSPACE)
		r = TETHER_ERR_NOMEM;
	else if (gr != 0)
		r = tether_xfer_send_skip(f->send, pat,
					  "cannot read the directories");
	for (i = 0; gr == 0 && r == 0 && i < g.gl_pathc; i++)
		r = add_match(f, g.gl_pathv[i]);
	globfree(&g);
	return r;
}

/* A GET (tether/msg.h) asks for something: one path or glob at least. */
static int parse_get(const uint8_t *body, size_t len,
		     struct tether_msg_get *req)
{
	int r = tether_msg_decode_get(body, len, req);

	if (r == 0 && req->n == 0) {
		tether_msg_clear_get(req);
		r = TETHER_ERR_FORMAT;
	}
	return r;
}

static int start_get(struct agent_file *f, const uint8_t *body, size_t len,
		     const char **why)
{
	struct tether_msg_get req;
	char shown[SHOW_MAX];
	uint32_t i;
	int r;

	f->put = false;
	if ((r = parse_get(body, len, &req)) != 0) {
		*why = r == TETHER_ERR_NOMEM ? "out of memory"
					     : "malformed get request";
		return r;
	}
	f->send = tether_xfer_send_new(&f->io.chan, &f->cbs, req.flags);
	if (f->send == NULL) {
		*why = "out of memory";
		r = TETHER_ERR_NOMEM;
		goto out;
	}
	/* An empty pattern is the home directory itself. */
	agent_term_words(req.paths, req.n, ".", shown, sizeof(shown));
	agent_term_say(f->term, "%s asks for %s (channel %u)", f->technician,
		       shown, f->channel);
	for (i = 0; i < req.n && r == 0; i++)
		r = add_pattern(f, req.paths[i]);
	if (r != 0) {
		*why = "out of memory";
		goto out;
	}
	r = agent_file_pump(f, why);
out:
	tether_msg_clear_get(&req);
	return r;
}

/* Where the transfer stands after the engine ran: on, over, or failed. */
static int outcome(struct agent_file *f, int r, const char **why)
{
	if (r != 0) {
		switch (r) {
		case TETHER_ERR_NOMEM:
			*why = "out of memory";
			break;
		case TETHER_ERR_PROTOCOL:
		case TETHER_ERR_FORMAT:
		case TETHER_ERR_TRAILING_DATA:
		case TETHER_ERR_INCOMPLETE:
		case TETHER_ERR_TOO_LARGE:
			*why = "file transfer protocol error";
			break;
		default:
			*why = tether_strerror(r);
			break;
		}
		return r;
	}
	if (f->put ? tether_xfer_recv_done(f->recv)
		   : tether_xfer_send_done(f->send))
		return AGENT_FILE_DONE;
	return AGENT_FILE_MORE;
}

int agent_file_start(const struct agent_file_env *env, uint8_t msg,
		     const uint8_t *body, size_t len, struct agent_file **out,
		     const char **why)
{
	struct agent_file *f;
	int r;

	*out = NULL;
	*why = NULL;
	if (msg != TETHER_MSG_GET && msg != TETHER_MSG_PUT) {
		*why = "unexpected message";
		return TETHER_ERR_PROTOCOL;
	}
	f = tether_calloc(1, sizeof(*f));
	if (f == NULL) {
		*why = "out of memory";
		return TETHER_ERR_NOMEM;
	}
	f->policy = env->policy;
	f->term = env->term;
	f->channel = env->channel;
	snprintf(f->technician, sizeof(f->technician), "%s", env->technician);
	f->io = env->io;
	f->cbs.on_file = on_file;
	f->cbs.arg = f;
	if (msg == TETHER_MSG_PUT)
		r = start_put(f, body, len, why);
	else
		r = start_get(f, body, len, why);
	if (r == AGENT_FILE_MORE)
		*out = f;
	else
		agent_file_free(f);
	return r;
}

int agent_file_input(struct agent_file *f, uint8_t msg, const uint8_t *body,
		     size_t len, const char **why)
{
	int r;

	*why = NULL;
	if (f->put) {
		r = tether_xfer_recv_input(f->recv, msg, body, len);
	} else {
		r = tether_xfer_send_input(f->send, msg, body, len);
		/* An ACCEPT lets a file's blocks go. */
		if (r == 0)
			r = tether_xfer_send_pump(f->send);
	}
	return outcome(f, r, why);
}

int agent_file_pump(struct agent_file *f, const char **why)
{
	int r = 0;

	*why = NULL;
	/* A receiver sends no data: nothing waits for window. */
	if (!f->put)
		r = tether_xfer_send_pump(f->send);
	return outcome(f, r, why);
}

void agent_file_free(struct agent_file *f)
{
	if (f == NULL)
		return;
	/* A partial file stays for the same transfer to resume. */
	tether_xfer_send_free(f->send);
	tether_xfer_recv_free(f->recv);
	tether_free(f);
}

/* The policy: roots resolved once, at startup. */

static int add_root(struct agent_roots *roots, const char *real)
{
	char **dirs, *copy;
	size_t i;

	for (i = 0; i < roots->n; i++)
		if (strcmp(roots->dirs[i], real) == 0)
			return 0;
	copy = tether_strdup(real);
	dirs = tether_reallocarray(roots->dirs, roots->n + 1, sizeof(*dirs));
	if (copy == NULL || dirs == NULL) {
		tether_free(copy);
		if (dirs != NULL)
			roots->dirs = dirs;
		return TETHER_ERR_NOMEM;
	}
	dirs[roots->n++] = copy;
	roots->dirs = dirs;
	return 0;
}

int agent_file_allow(struct agent_roots *roots, const char *dir,
		     const char **why)
{
	char real[PATH_MAX];
	struct stat st;
	int r;

	*why = NULL;
	if (realpath(dir, real) == NULL) {
		*why = strerror(errno);
		return TETHER_ERR_SYS;
	}
	/* A file as a root would let its parent directory be written. */
	if (stat(real, &st) != 0 || !S_ISDIR(st.st_mode)) {
		*why = strerror(ENOTDIR);
		return TETHER_ERR_INVALID;
	}
	r = add_root(roots, real);
	if (r != 0)
		*why = tether_strerror(r);
	return r;
}

int agent_file_policy_init(struct agent_file_policy *p)
{
	char real[PATH_MAX];
	int r;

	if (p->write.n > 0)
		return 0;
	/*
	 * The home directory and /tmp.  agent_work_dir() falls back to "/"
	 * for a user without a home: that would be everywhere, so not then.
	 */
	if (realpath(agent_work_dir(), real) != NULL &&
	    strcmp(real, "/") != 0 && (r = add_root(&p->write, real)) != 0)
		return r;
	if (realpath("/tmp", real) != NULL && strcmp(real, "/") != 0 &&
	    (r = add_root(&p->write, real)) != 0)
		return r;
	return 0;
}

void agent_file_describe_policy(const struct agent_file_policy *p, char *out,
				size_t outlen)
{
	char w[SHOW_MAX / 2], rd[SHOW_MAX / 2];

	join_roots(&p->write, w, sizeof(w));
	join_roots(&p->read, rd, sizeof(rd));
	snprintf(out, outlen, "write in %s and read %s%s",
		 p->write.n > 0 ? w : "no directory",
		 p->read.n > 0 ? "in " : "any file you can read",
		 p->read.n > 0 ? rd : "");
}

static void free_roots(struct agent_roots *roots)
{
	size_t i;

	for (i = 0; i < roots->n; i++)
		tether_free(roots->dirs[i]);
	tether_free(roots->dirs);
	roots->dirs = NULL;
	roots->n = 0;
}

void agent_file_policy_free(struct agent_file_policy *p)
{
	free_roots(&p->write);
	free_roots(&p->read);
}
