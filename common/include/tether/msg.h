/*
 * Bodies of sealed channel messages (docs/protocol.md, "Key schedule and
 * sealed messages"): the plaintext after the message byte (enum tether_msg
 * in tether/proto.h).  This module is the one place that knows their wire
 * layout and their caps; the agent, the console and the transfer engine
 * build and read bodies only through it, and seal the result with
 * tether_chan_send().
 *
 * Wire: big-endian integers; "cstring" is a u32 length and that many
 * bytes, no NUL (one inside is refused).
 *
 * Encoders append one body to the caller's buffer b; on failure
 * (TETHER_ERR_TOO_LARGE when it does not fit under b's max_size,
 * TETHER_ERR_NOMEM) b is left as it was.  A NULL string is sent as an
 * empty one.  They apply none of the caps below: those are the
 * receiver's to enforce, so a sender that exceeds one (a command line of
 * 5000 words) is refused by the peer, with the peer's reason, as it
 * always was.
 *
 * Decoders read one whole body (body, len), which they never modify:
 * every field, then the end (bytes left over are TETHER_ERR_TRAILING_DATA).
 * They fail with TETHER_ERR_INCOMPLETE (the body ends early, or declares
 * more strings than it could hold), TETHER_ERR_TOO_LARGE (a count or a
 * string over its cap, refused before anything is allocated for it),
 * TETHER_ERR_FORMAT (a NUL inside a string, a field out of its range,
 * unknown flags) or TETHER_ERR_NOMEM.  The output struct is cleared on
 * entry and is all zero again after any failure.
 *
 * Ownership: a decoded struct owns its strings (NUL-terminated copies;
 * tether_msg_clear_*() frees them and zeroes the struct), so it outlives
 * the body.  The one exception is BLOCK, whose data is file content: it
 * is a pointer into the body, valid while the body is, never copied.  A
 * struct the caller fills for an encoder only lends its strings, which
 * the encoder reads and does not keep.
 *
 * STDIN, STDOUT and STDERR bodies are the bytes themselves; CLOSE,
 * CONNECTED and XFER_END have empty bodies, sent as (NULL, 0).
 */
#ifndef TETHER_MSG_H
#define TETHER_MSG_H

#include <stddef.h>
#include <stdint.h>

#include <tether/crypto.h>
#include <tether/frame.h>

struct tether_buf;

/*
 * Caps the decoders enforce.  EXEC and SHELL command lines: words, bytes
 * per word, and all words' bytes together (a frame's worth: no body that
 * fits in a frame is refused for it, but it bounds what a decoder copies
 * whatever it is handed).
 */
#define TETHER_MSG_ARGC_MAX 4096
#define TETHER_MSG_ARG_MAX (64u * 1024)
#define TETHER_MSG_ARGV_BYTES_MAX TETHER_FRAME_MAX
/* SHELL: the TERM value. */
#define TETHER_MSG_TERM_MAX 256
/* FORWARD: the host (a DNS name fits). */
#define TETHER_MSG_HOST_MAX 255
/* ERROR: the reason. */
#define TETHER_MSG_ERROR_MAX 1024
/* File transfer: relative paths (ENTRY, SKIP) and GET/PUT paths. */
#define TETHER_MSG_PATH_MAX 4096
/* ENTRY: a symlink's target (PATH_MAX - 1, what symlinkat() takes). */
#define TETHER_MSG_TARGET_MAX 4095
/* FILE_END, RESULT and SKIP: the reason. */
#define TETHER_MSG_REASON_MAX 512
/* GET: the paths or globs asked for. */
#define TETHER_MSG_PATTERNS_MAX 1024
/* INFO: the pairing info's JSON text (TETHER_CTRL_INFO_MAX). */
#define TETHER_MSG_INFO_MAX 4096

/* File transfer (the engine is tether/xfer.h).  ENTRY types. */
#define TETHER_XFER_FILE 1
#define TETHER_XFER_DIR 2
#define TETHER_XFER_SYMLINK 3

/* BLOCK encodings. */
#define TETHER_XFER_RAW 0
#define TETHER_XFER_DEFLATE 1

/* GET and PUT flags; also the sender's options. */
#define TETHER_XFER_RECURSIVE 0x01u   /* -r: directories and their trees */
#define TETHER_XFER_NO_COMPRESS 0x02u /* never deflate */

/* EXIT how. */
#define TETHER_MSG_EXIT_CODE 0
#define TETHER_MSG_EXIT_SIGNAL 1
/* EOF stream. */
#define TETHER_MSG_STREAM_STDIN 0
#define TETHER_MSG_STREAM_STDOUT 1
#define TETHER_MSG_STREAM_STDERR 2

/* EXEC: u32 argc, argc x cstring. */
struct tether_msg_exec {
	uint32_t argc;
	char **argv; /* argc words; decoded: NULL-terminated */
};

/*
 * SHELL: u8 flags, cstring TERM, u16 cols, u16 rows, u32 argc, argc x
 * cstring (argc 0: the user's login shell).
 */
struct tether_msg_shell {
	uint8_t flags; /* TETHER_SHELL_PTY; decoders refuse any other bit */
	const char *term;
	uint16_t cols;
	uint16_t rows;
	uint32_t argc;
	char **argv; /* as in struct tether_msg_exec */
};

/* RESIZE: u16 cols, u16 rows. */
struct tether_msg_resize {
	uint16_t cols;
	uint16_t rows;
};

/* EXIT: u8 how (TETHER_MSG_EXIT_*), u32 value (status or signal). */
struct tether_msg_exit {
	uint8_t how;
	uint32_t value;
};

/* EOF: u8 stream (TETHER_MSG_STREAM_*). */
struct tether_msg_eof {
	uint8_t stream;
};

/* ERROR: cstring reason. */
struct tether_msg_error {
	const char *reason;
};

/* WINDOW: u32 bytes of credit. */
struct tether_msg_window {
	uint32_t credit;
};

/* FORWARD: cstring host, u16 port. */
struct tether_msg_forward {
	const char *host;
	uint16_t port;
};

/*
 * INFO: cstring, the pairing info (JSON text of struct tether_ctrl_info).
 * Not a channel message: the plaintext that tether_msg_seal_info() seals
 * under the PAKE key for the agent, who reads it only after key
 * confirmation.
 */
struct tether_msg_info {
	const char *info;
};

/* GET: u8 flags (TETHER_XFER_RECURSIVE, _NO_COMPRESS), u32 n, n x cstring. */
struct tether_msg_get {
	uint8_t flags;
	uint32_t n;
	char **paths; /* n paths or globs; decoded: NULL-terminated */
};

/* PUT: u8 flags, cstring destination. */
struct tether_msg_put {
	uint8_t flags;
	const char *dest;
};

/*
 * ENTRY: u8 type (TETHER_XFER_FILE, _DIR, _SYMLINK), cstring path, u32
 * mode (07777), i64 mtime seconds, u32 mtime nanoseconds, u64 size,
 * cstring symlink target.  The decoder checks the type and the mode bits;
 * what the path, times and size must be is the receiver's business.
 */
struct tether_msg_entry {
	uint8_t type;
	const char *path;
	uint32_t mode;
	int64_t mtime_sec;
	uint32_t mtime_nsec;
	uint64_t size;
	const char *target; /* "" unless a symlink */
};

/* ACCEPT: u64 offset. */
struct tether_msg_accept {
	uint64_t offset;
};

/*
 * BLOCK: u8 encoding (TETHER_XFER_RAW, _DEFLATE), then the data up to the
 * end of the body (so it has no trailing data).  How much content one may
 * carry is the engine's rule (TETHER_XFER_BLOCK), checked after inflating.
 */
struct tether_msg_block {
	uint8_t encoding;
	const uint8_t *data; /* decoded: points into the body */
	size_t len;
};

/* FILE_END: u8 ok; ok: the SHA-256 of the whole file, else cstring reason. */
struct tether_msg_file_end {
	uint8_t ok; /* 0 or 1 */
	uint8_t sha256[TETHER_SHA256_LEN];
	const char *reason; /* decoded: NULL when ok */
};

/* RESULT: u8 ok, cstring reason ("" when ok). */
struct tether_msg_result {
	uint8_t ok; /* 0 or 1 */
	const char *reason;
};

/* SKIP: cstring path, cstring reason. */
struct tether_msg_skip {
	const char *path;
	const char *reason;
};

/*
 * Encoders: append the body of m to b.  0, or TETHER_ERR_TOO_LARGE /
 * TETHER_ERR_NOMEM with b unchanged.  m and its strings stay the caller's.
 */
int tether_msg_encode_exec(struct tether_buf *b,
			   const struct tether_msg_exec *m);
int tether_msg_encode_shell(struct tether_buf *b,
			    const struct tether_msg_shell *m);
int tether_msg_encode_resize(struct tether_buf *b,
			     const struct tether_msg_resize *m);
int tether_msg_encode_exit(struct tether_buf *b,
			   const struct tether_msg_exit *m);
int tether_msg_encode_eof(struct tether_buf *b, const struct tether_msg_eof *m);
int tether_msg_encode_error(struct tether_buf *b,
			    const struct tether_msg_error *m);
int tether_msg_encode_window(struct tether_buf *b,
			     const struct tether_msg_window *m);
int tether_msg_encode_forward(struct tether_buf *b,
			      const struct tether_msg_forward *m);
int tether_msg_encode_info(struct tether_buf *b,
			   const struct tether_msg_info *m);
int tether_msg_encode_get(struct tether_buf *b, const struct tether_msg_get *m);
int tether_msg_encode_put(struct tether_buf *b, const struct tether_msg_put *m);
int tether_msg_encode_entry(struct tether_buf *b,
			    const struct tether_msg_entry *m);
int tether_msg_encode_accept(struct tether_buf *b,
			     const struct tether_msg_accept *m);
/* Copies m->len bytes of m->data after the encoding byte. */
int tether_msg_encode_block(struct tether_buf *b,
			    const struct tether_msg_block *m);
/*
 * BLOCK without a copy: appends the encoding byte and reserves len bytes
 * for the data, which the caller writes at *datap (valid until the next
 * modifying call on b) and may shorten with tether_buf_consume_end().
 * 0, or TETHER_ERR_TOO_LARGE / NOMEM with b unchanged and *datap NULL.
 */
int tether_msg_reserve_block(struct tether_buf *b, uint8_t encoding, size_t len,
			     uint8_t **datap);
/* m->sha256 when m->ok, else m->reason. */
int tether_msg_encode_file_end(struct tether_buf *b,
			       const struct tether_msg_file_end *m);
int tether_msg_encode_result(struct tether_buf *b,
			     const struct tether_msg_result *m);
int tether_msg_encode_skip(struct tether_buf *b,
			   const struct tether_msg_skip *m);
/* CLOSE, CONNECTED, XFER_END: appends nothing; always 0. */
int tether_msg_encode_empty(struct tether_buf *b);

/*
 * Decoders: one whole body into *m (cleared first).  0, or a negative
 * TETHER_ERR_* (see the top of this file) with *m all zero.  Where *m
 * holds strings the caller frees them with the matching
 * tether_msg_clear_*(); the others own nothing.
 */
int tether_msg_decode_exec(const uint8_t *body, size_t len,
			   struct tether_msg_exec *m);
int tether_msg_decode_shell(const uint8_t *body, size_t len,
			    struct tether_msg_shell *m);
int tether_msg_decode_resize(const uint8_t *body, size_t len,
			     struct tether_msg_resize *m);
/* how must be TETHER_MSG_EXIT_CODE or _SIGNAL. */
int tether_msg_decode_exit(const uint8_t *body, size_t len,
			   struct tether_msg_exit *m);
/* stream must be one of TETHER_MSG_STREAM_*; which one is the caller's. */
int tether_msg_decode_eof(const uint8_t *body, size_t len,
			  struct tether_msg_eof *m);
int tether_msg_decode_error(const uint8_t *body, size_t len,
			    struct tether_msg_error *m);
int tether_msg_decode_window(const uint8_t *body, size_t len,
			     struct tether_msg_window *m);
int tether_msg_decode_forward(const uint8_t *body, size_t len,
			      struct tether_msg_forward *m);
int tether_msg_decode_info(const uint8_t *body, size_t len,
			   struct tether_msg_info *m);
int tether_msg_decode_get(const uint8_t *body, size_t len,
			  struct tether_msg_get *m);
int tether_msg_decode_put(const uint8_t *body, size_t len,
			  struct tether_msg_put *m);
int tether_msg_decode_entry(const uint8_t *body, size_t len,
			    struct tether_msg_entry *m);
int tether_msg_decode_accept(const uint8_t *body, size_t len,
			     struct tether_msg_accept *m);
/* m->data points into body (no copy); nothing to clear. */
int tether_msg_decode_block(const uint8_t *body, size_t len,
			    struct tether_msg_block *m);
int tether_msg_decode_file_end(const uint8_t *body, size_t len,
			       struct tether_msg_file_end *m);
int tether_msg_decode_result(const uint8_t *body, size_t len,
			     struct tether_msg_result *m);
int tether_msg_decode_skip(const uint8_t *body, size_t len,
			   struct tether_msg_skip *m);
/* CLOSE, CONNECTED, XFER_END: 0 for an empty body, else TRAILING_DATA. */
int tether_msg_decode_empty(const uint8_t *body, size_t len);

/*
 * The pairing info (docs/protocol.md, "Pairing"), sealed by the console
 * with its key confirmation and opened by the agent only after that
 * confirmation checked out: the INFO body under the key
 * tether_seal_derive_info() makes from Ke, used once (counter 0), AAD =
 * "tether/1 pairing info " + nameplate.  A wrong code gives another Ke,
 * so nothing of the info is readable without the words.
 *
 * tether_msg_seal_info(): *hex (lowercase hex of ciphertext and tag,
 * freed with tether_free()) is what "confirm" carries.
 * tether_msg_open_info(): *info (freed with tether_free()) is the JSON
 * text; TETHER_ERR_AUTH if it was altered or sealed under another key or
 * nameplate, TETHER_ERR_FORMAT for a hex text or body that is not one.
 */
int tether_msg_seal_info(const uint8_t *ke, size_t ke_len,
			 const char *nameplate, const char *info, char **hex);
int tether_msg_open_info(const uint8_t *ke, size_t ke_len,
			 const char *nameplate, const char *hex, char **info);

/*
 * Free what a decoder gave *m and zero it.  Safe on a zeroed struct and
 * after a failed decode; never on a struct the caller filled itself.
 */
void tether_msg_clear_exec(struct tether_msg_exec *m);
void tether_msg_clear_shell(struct tether_msg_shell *m);
void tether_msg_clear_error(struct tether_msg_error *m);
void tether_msg_clear_forward(struct tether_msg_forward *m);
void tether_msg_clear_info(struct tether_msg_info *m);
void tether_msg_clear_get(struct tether_msg_get *m);
void tether_msg_clear_put(struct tether_msg_put *m);
void tether_msg_clear_entry(struct tether_msg_entry *m);
void tether_msg_clear_file_end(struct tether_msg_file_end *m);
void tether_msg_clear_result(struct tether_msg_result *m);
void tether_msg_clear_skip(struct tether_msg_skip *m);

#endif /* TETHER_MSG_H */
