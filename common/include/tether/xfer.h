/*
 * File transfer engine (docs/protocol.md, "File transfer"), shared by the
 * console and the agent: whichever end reads the files is the sender and
 * the other the receiver, so `tether put` runs the sender in the console
 * and the receiver in the agent, and `tether get` the other way round.
 * The engine knows files, hashes, compression and the message bodies; it
 * knows nothing of links or keys: it sends sealed messages and reads the
 * channel's credit through struct tether_xfer_io.
 *
 * Sender -> receiver: ENTRY, BLOCK..., FILE_END for each file; ENTRY for
 * each directory and symlink; SKIP for a source it could not send; then
 * XFER_END.  Receiver -> sender: ACCEPT (the offset to start a file at, so
 * a broken transfer resumes) or RESULT (refused) for each file ENTRY, and
 * one RESULT for each FILE_END and each directory or symlink ENTRY; then
 * XFER_END once every result is out.  A RESULT for the file still being
 * sent tells the sender to stop it (FILE_END failed, not answered again).
 *
 * Bodies (big-endian; cstring = u32 length + bytes, no NUL; encoded,
 * decoded and capped by tether/msg.h):
 *   ENTRY    u8 type (TETHER_XFER_*), cstring path (relative, '/'-joined,
 *            no "", ".", ".." parts), u32 mode (07777), i64 mtime seconds,
 *            u32 mtime nanoseconds, u64 size (files; else 0), cstring
 *            symlink target (symlinks; else empty)
 *   ACCEPT   u64 offset (<= size)
 *   BLOCK    u8 encoding (TETHER_XFER_RAW | TETHER_XFER_DEFLATE), bytes:
 *            the next bytes of the file, raw or as one complete zlib
 *            stream of at most TETHER_XFER_BLOCK bytes
 *   FILE_END u8 ok; ok: 32-byte SHA-256 of the whole file (from offset 0);
 *            else cstring reason
 *   RESULT   u8 ok, cstring reason (empty when ok)
 *   SKIP     cstring path, cstring reason
 *   XFER_END empty
 * BLOCK is a data message: its body spends channel window, credited back
 * by the receiver once written.
 *
 * Files arrive under a temporary name next to their final one and are
 * renamed only after the SHA-256 matched and the data was fsync'ed; the
 * temporary name is derived from the entry (path, size, mtime), so running
 * the same transfer again finds it and resumes where it stopped.
 */
#ifndef TETHER_XFER_H
#define TETHER_XFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tether/msg.h>

/*
 * ENTRY types, BLOCK encodings and GET/PUT flags (TETHER_XFER_FILE,
 * TETHER_XFER_DEFLATE, TETHER_XFER_RECURSIVE, ...) are wire values of the
 * bodies, in tether/msg.h.
 */

/* Largest file content carried by one BLOCK (before compression). */
#define TETHER_XFER_BLOCK (192u * 1024)
/*
 * How deep a received path may go.  The bounds on the bodies themselves
 * (TETHER_MSG_PATH_MAX, _REASON_MAX, _PATTERNS_MAX, ...) are tether/msg.h's.
 */
#define TETHER_XFER_DEPTH_MAX 64

struct tether_xfer_send;
struct tether_xfer_recv;

/* How the engine talks to its channel; every call may be made at any time. */
struct tether_xfer_io {
	/* Seals and sends one message; 0 or TETHER_ERR_*. */
	int (*send)(void *arg, uint8_t msg, const void *body, size_t len);
	/*
	 * Data bytes (BLOCK bodies) that may be sent now: the channel's
	 * credit, or 0 while the link is over its high-water mark.
	 */
	size_t (*window)(void *arg);
	/* n received data bytes are on disk: credit them back. */
	int (*consumed)(void *arg, size_t n);
	void *arg;
};

/* One finished entry, as either end saw it; strings valid during the call. */
struct tether_xfer_file {
	int type;	   /* TETHER_XFER_FILE, _DIR, _SYMLINK; 0 for a SKIP */
	const char *path;  /* the entry's relative path (SKIP: the source) */
	const char *local; /* where it is on this machine ("" if unknown) */
	uint64_t size;
	uint64_t offset; /* resumed from here (0: from the start) */
	uint64_t sent;	 /* content bytes that crossed this time */
	uint64_t wire;	 /* BLOCK bytes that crossed (after deflate) */
	uint64_t ms;	 /* from ENTRY to RESULT */
	char sha256[65]; /* hex; "" unless a file that verified */
	bool ok;
	const char *reason; /* why not ok; "" when ok */
};

/* Where a transfer stands, for progress displays. */
struct tether_xfer_progress {
	const char *path; /* the file under way, or NULL */
	uint64_t file_size;
	uint64_t file_done;  /* bytes of it that are across (incl. offset) */
	uint64_t total_done; /* content bytes across in this run, all files */
	uint64_t files_done;
};

/* "file", "dir", "symlink", or "skip" (type 0): for JSON and audit. */
const char *tether_xfer_type_name(int type);

struct tether_xfer_cbs {
	/* An entry finished, ok or not. */
	void (*on_file)(void *arg, const struct tether_xfer_file *f);
	/* Something moved; may be NULL.  Called often: rate-limit output. */
	void (*on_progress)(void *arg, const struct tether_xfer_progress *p);
	void *arg;
};

/*
 * Sender.  Sources are added first, then the peer's messages drive it:
 * tether_xfer_send_pump() sends whatever window allows and is called again
 * whenever window or the link's queue frees up.
 */
struct tether_xfer_send *tether_xfer_send_new(const struct tether_xfer_io *io,
					      const struct tether_xfer_cbs *cbs,
					      unsigned flags);
void tether_xfer_send_free(struct tether_xfer_send *s);
/*
 * Adds a top-level source: path is opened (a symlink named here is
 * followed, none below it), and sent as name (NULL: path's last part).
 * A source that cannot be sent is not an error here: it becomes a SKIP
 * with the reason.  0, or TETHER_ERR_NOMEM.
 */
int tether_xfer_send_add(struct tether_xfer_send *s, const char *path,
			 const char *name);
/* Queues a SKIP for a source the caller refused itself (policy, glob). */
int tether_xfer_send_skip(struct tether_xfer_send *s, const char *path,
			  const char *reason);
/* Sends until window, link or work run out.  0 or TETHER_ERR_*. */
int tether_xfer_send_pump(struct tether_xfer_send *s);
/*
 * One message from the receiver (ACCEPT, RESULT, XFER_END).  0, or
 * TETHER_ERR_PROTOCOL/FORMAT for a receiver that breaks the protocol.
 */
int tether_xfer_send_input(struct tether_xfer_send *s, uint8_t msg,
			   const uint8_t *body, size_t len);
/* The receiver's XFER_END is in: every result is known. */
bool tether_xfer_send_done(const struct tether_xfer_send *s);
/* Entries that failed or were skipped. */
uint64_t tether_xfer_send_failures(const struct tether_xfer_send *s);

/*
 * Receiver into dest: an existing directory receives the entries inside
 * it; any other path names the one top-level entry (its parent must be a
 * directory).  dest is resolved once, here; nothing below it is ever
 * reached through a symlink.  NULL with a reason in err (errlen bytes).
 */
struct tether_xfer_recv *tether_xfer_recv_new(const char *dest,
					      const struct tether_xfer_io *io,
					      const struct tether_xfer_cbs *cbs,
					      char *err, size_t errlen);
void tether_xfer_recv_free(struct tether_xfer_recv *r);
/*
 * For a receiver that asked for sources by name (`tether get`): every
 * entry must lie under a top-level name that matches the last part of
 * one of the n patterns (fnmatch, a leading dot only if the pattern has
 * one; patterns ending in "", ".", ".." or "/" allow one name, whatever
 * it is), and without TETHER_XFER_RECURSIVE be a plain top-level file or
 * symlink.  Anything else is a protocol error: a hostile sender cannot
 * write beside what was asked for.  Call before the first input; 0 or
 * TETHER_ERR_NOMEM.
 */
int tether_xfer_recv_expect(struct tether_xfer_recv *r, char *const *patterns,
			    size_t n, unsigned flags);
/*
 * One message from the sender (ENTRY, BLOCK, FILE_END, SKIP, XFER_END).
 * Failures of one file (disk full, permission) are answered with a RESULT
 * and do not fail the call; 0, or TETHER_ERR_PROTOCOL/FORMAT for a sender
 * that breaks the protocol, TETHER_ERR_NOMEM, or the send error.
 */
int tether_xfer_recv_input(struct tether_xfer_recv *r, uint8_t msg,
			   const uint8_t *body, size_t len);
/* XFER_END came and ours went: the transfer is over. */
bool tether_xfer_recv_done(const struct tether_xfer_recv *r);
uint64_t tether_xfer_recv_failures(const struct tether_xfer_recv *r);

/*
 * The last part of path ("a/b/" gives "b", "/" gives "/"), cut to fit
 * out (outlen >= 1).
 */
void tether_xfer_base_name(const char *path, char *out, size_t outlen);

#endif /* TETHER_XFER_H */
