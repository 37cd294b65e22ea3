/*
 * Sealed message bodies (see msg.h): every byte goes through struct
 * tether_buf, every decoder reads one whole body and ends with
 * tether_buf_get_end().
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <tether/alloc.h>
#include <tether/buf.h>
#include <tether/crypto.h>
#include <tether/err.h>
#include <tether/msg.h>
#include <tether/proto.h>
#include <tether/seal.h>

/* The flags GET and PUT may carry; others would change what happens. */
#define XFER_FLAGS (TETHER_XFER_RECURSIVE | TETHER_XFER_NO_COMPRESS)

/* ---- Helpers ------------------------------------------------------------ */

/* Decoded strings are ours, whatever const the struct gives them. */
static void free_str(const char *s)
{
	tether_free((void *)(uintptr_t)s);
}

/* A NULL-terminated word array from get_words(); NULL is fine. */
static void free_words(char **v)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; v[i] != NULL; i++)
		tether_free(v[i]);
	tether_free(v);
}

static int put_str(struct tether_buf *b, const char *s)
{
	return tether_buf_put_cstring(b, s != NULL ? s : "");
}

/*
 * The end of every encoder: a failure drops whatever it appended after
 * start, so that the caller's buffer is as it was.
 */
static int put_done(struct tether_buf *b, size_t start, int r)
{
	if (r != 0)
		tether_buf_consume_end(b, tether_buf_len(b) - start);
	return r;
}

static int put_words(struct tether_buf *b, uint32_t n, char *const *v)
{
	uint32_t i;
	int r;

	r = tether_buf_put_u32(b, n);
	for (i = 0; i < n && r == 0; i++)
		r = put_str(b, v[i]);
	return r;
}

static int get_str(struct tether_buf *b, const char **sp, size_t max_len)
{
	char *s;
	int r;

	r = tether_buf_get_cstring(b, &s, NULL, max_len);
	*sp = s;
	return r;
}

/*
 * u32 n, then n cstrings into a NULL-terminated array.  n is checked
 * against its cap and against what the rest of the body could hold (a
 * word takes 4 bytes at least) before the array is allocated, and each
 * word against its cap and what is left of max_total before it is
 * copied, so a hostile count or length costs nothing.
 */
static int get_words(struct tether_buf *b, uint32_t max_n, size_t max_word,
		     size_t max_total, uint32_t *np, char ***vp)
{
	size_t total = 0, wlen, cap;
	char **v;
	uint32_t n, i;
	int r;

	*np = 0;
	*vp = NULL;
	if ((r = tether_buf_get_u32(b, &n)) != 0)
		return r;
	if (n > max_n)
		return TETHER_ERR_TOO_LARGE;
	if (n > tether_buf_len(b) / 4)
		return TETHER_ERR_INCOMPLETE;
	v = tether_calloc((size_t)n + 1, sizeof(*v));
	if (v == NULL)
		return TETHER_ERR_NOMEM;
	for (i = 0; i < n; i++) {
		cap =
		    max_total - total < max_word ? max_total - total : max_word;
		if ((r = tether_buf_get_cstring(b, &v[i], &wlen, cap)) != 0) {
			free_words(v);
			return r;
		}
		total += wlen;
	}
	*np = n;
	*vp = v;
	return TETHER_OK;
}

/* The end of every decoder: the body must be used up exactly. */
static int get_done(struct tether_buf *b, int r)
{
	if (r == 0)
		r = tether_buf_get_end(b);
	tether_buf_free(b);
	return r;
}

/* ---- Encoders ----------------------------------------------------------- */

int tether_msg_encode_exec(struct tether_buf *b,
			   const struct tether_msg_exec *m)
{
	size_t start = tether_buf_len(b);

	return put_done(b, start, put_words(b, m->argc, m->argv));
}

int tether_msg_encode_shell(struct tether_buf *b,
			    const struct tether_msg_shell *m)
{
	size_t start = tether_buf_len(b);
	int r;

	r = tether_buf_put_u8(b, m->flags);
	if (r == 0)
		r = put_str(b, m->term);
	if (r == 0)
		r = tether_buf_put_u16(b, m->cols);
	if (r == 0)
		r = tether_buf_put_u16(b, m->rows);
	if (r == 0)
		r = put_words(b, m->argc, m->argv);
	return put_done(b, start, r);
}

int tether_msg_encode_resize(struct tether_buf *b,
			     const struct tether_msg_resize *m)
{
	size_t start = tether_buf_len(b);
	int r;

	r = tether_buf_put_u16(b, m->cols);
	if (r == 0)
		r = tether_buf_put_u16(b, m->rows);
	return put_done(b, start, r);
}

int tether_msg_encode_exit(struct tether_buf *b,
			   const struct tether_msg_exit *m)
{
	size_t start = tether_buf_len(b);
	int r;

	r = tether_buf_put_u8(b, m->how);
	if (r == 0)
		r = tether_buf_put_u32(b, m->value);
	return put_done(b, start, r);
}

int tether_msg_encode_eof(struct tether_buf *b, const struct tether_msg_eof *m)
{
	return tether_buf_put_u8(b, m->stream);
}

int tether_msg_encode_error(struct tether_buf *b,
			    const struct tether_msg_error *m)
{
	return put_str(b, m->reason);
}

int tether_msg_encode_window(struct tether_buf *b,
			     const struct tether_msg_window *m)
{
	return tether_buf_put_u32(b, m->credit);
}

int tether_msg_encode_forward(struct tether_buf *b,
			      const struct tether_msg_forward *m)
{
	size_t start = tether_buf_len(b);
	int r;

	r = put_str(b, m->host);
	if (r == 0)
		r = tether_buf_put_u16(b, m->port);
	return put_done(b, start, r);
}

int tether_msg_encode_info(struct tether_buf *b,
			   const struct tether_msg_info *m)
{
	size_t start = tether_buf_len(b);

	return put_done(b, start, put_str(b, m->info));
}

int tether_msg_encode_get(struct tether_buf *b, const struct tether_msg_get *m)
{
	size_t start = tether_buf_len(b);
	int r;

	r = tether_buf_put_u8(b, m->flags);
	if (r == 0)
		r = put_words(b, m->n, m->paths);
	return put_done(b, start, r);
}

int tether_msg_encode_put(struct tether_buf *b, const struct tether_msg_put *m)
{
	size_t start = tether_buf_len(b);
	int r;

	r = tether_buf_put_u8(b, m->flags);
	if (r == 0)
		r = put_str(b, m->dest);
	return put_done(b, start, r);
}

int tether_msg_encode_entry(struct tether_buf *b,
			    const struct tether_msg_entry *m)
{
	size_t start = tether_buf_len(b);
	int r;

	r = tether_buf_put_u8(b, m->type);
	if (r == 0)
		r = put_str(b, m->path);
	if (r == 0)
		r = tether_buf_put_u32(b, m->mode);
	if (r == 0)
		r = tether_buf_put_u64(b, (uint64_t)m->mtime_sec);
	if (r == 0)
		r = tether_buf_put_u32(b, m->mtime_nsec);
	if (r == 0)
		r = tether_buf_put_u64(b, m->size);
	if (r == 0)
		r = put_str(b, m->target);
	return put_done(b, start, r);
}

int tether_msg_encode_accept(struct tether_buf *b,
			     const struct tether_msg_accept *m)
{
	return tether_buf_put_u64(b, m->offset);
}

int tether_msg_encode_block(struct tether_buf *b,
			    const struct tether_msg_block *m)
{
	size_t start = tether_buf_len(b);
	int r;

	r = tether_buf_put_u8(b, m->encoding);
	if (r == 0)
		r = tether_buf_put(b, m->data, m->len);
	return put_done(b, start, r);
}

int tether_msg_reserve_block(struct tether_buf *b, uint8_t encoding, size_t len,
			     uint8_t **datap)
{
	size_t start = tether_buf_len(b);
	int r;

	*datap = NULL;
	r = tether_buf_put_u8(b, encoding);
	if (r == 0)
		r = tether_buf_reserve(b, len, datap);
	return put_done(b, start, r);
}

int tether_msg_encode_file_end(struct tether_buf *b,
			       const struct tether_msg_file_end *m)
{
	size_t start = tether_buf_len(b);
	int r;

	r = tether_buf_put_u8(b, m->ok);
	if (r == 0 && m->ok)
		r = tether_buf_put(b, m->sha256, sizeof(m->sha256));
	else if (r == 0)
		r = put_str(b, m->reason);
	return put_done(b, start, r);
}

int tether_msg_encode_result(struct tether_buf *b,
			     const struct tether_msg_result *m)
{
	size_t start = tether_buf_len(b);
	int r;

	r = tether_buf_put_u8(b, m->ok);
	if (r == 0)
		r = put_str(b, m->reason);
	return put_done(b, start, r);
}

int tether_msg_encode_skip(struct tether_buf *b,
			   const struct tether_msg_skip *m)
{
	size_t start = tether_buf_len(b);
	int r;

	r = put_str(b, m->path);
	if (r == 0)
		r = put_str(b, m->reason);
	return put_done(b, start, r);
}

int tether_msg_encode_empty(struct tether_buf *b)
{
	(void)b;
	return TETHER_OK;
}

/* ---- Decoders ----------------------------------------------------------- */

int tether_msg_decode_exec(const uint8_t *body, size_t len,
			   struct tether_msg_exec *m)
{
	struct tether_buf *b;
	int r;

	memset(m, 0, sizeof(*m));
	if ((b = tether_buf_from(body, len)) == NULL)
		return TETHER_ERR_NOMEM;
	r = get_words(b, TETHER_MSG_ARGC_MAX, TETHER_MSG_ARG_MAX,
		      TETHER_MSG_ARGV_BYTES_MAX, &m->argc, &m->argv);
	if ((r = get_done(b, r)) != 0)
		tether_msg_clear_exec(m);
	return r;
}

int tether_msg_decode_shell(const uint8_t *body, size_t len,
			    struct tether_msg_shell *m)
{
	struct tether_buf *b;
	int r;

	memset(m, 0, sizeof(*m));
	if ((b = tether_buf_from(body, len)) == NULL)
		return TETHER_ERR_NOMEM;
	/* Unknown flags are refused: they would change what runs. */
	r = tether_buf_get_u8(b, &m->flags);
	if (r == 0 && (m->flags & ~TETHER_SHELL_PTY) != 0)
		r = TETHER_ERR_FORMAT;
	if (r == 0)
		r = get_str(b, &m->term, TETHER_MSG_TERM_MAX);
	if (r == 0)
		r = tether_buf_get_u16(b, &m->cols);
	if (r == 0)
		r = tether_buf_get_u16(b, &m->rows);
	if (r == 0)
		r = get_words(b, TETHER_MSG_ARGC_MAX, TETHER_MSG_ARG_MAX,
			      TETHER_MSG_ARGV_BYTES_MAX, &m->argc, &m->argv);
	if ((r = get_done(b, r)) != 0)
		tether_msg_clear_shell(m);
	return r;
}

int tether_msg_decode_resize(const uint8_t *body, size_t len,
			     struct tether_msg_resize *m)
{
	struct tether_buf *b;
	int r;

	memset(m, 0, sizeof(*m));
	if ((b = tether_buf_from(body, len)) == NULL)
		return TETHER_ERR_NOMEM;
	r = tether_buf_get_u16(b, &m->cols);
	if (r == 0)
		r = tether_buf_get_u16(b, &m->rows);
	if ((r = get_done(b, r)) != 0)
		memset(m, 0, sizeof(*m));
	return r;
}

int tether_msg_decode_exit(const uint8_t *body, size_t len,
			   struct tether_msg_exit *m)
{
	struct tether_buf *b;
	int r;

	memset(m, 0, sizeof(*m));
	if ((b = tether_buf_from(body, len)) == NULL)
		return TETHER_ERR_NOMEM;
	r = tether_buf_get_u8(b, &m->how);
	if (r == 0 && m->how > TETHER_MSG_EXIT_SIGNAL)
		r = TETHER_ERR_FORMAT;
	if (r == 0)
		r = tether_buf_get_u32(b, &m->value);
	if ((r = get_done(b, r)) != 0)
		memset(m, 0, sizeof(*m));
	return r;
}

int tether_msg_decode_eof(const uint8_t *body, size_t len,
			  struct tether_msg_eof *m)
{
	struct tether_buf *b;
	int r;

	memset(m, 0, sizeof(*m));
	if ((b = tether_buf_from(body, len)) == NULL)
		return TETHER_ERR_NOMEM;
	r = tether_buf_get_u8(b, &m->stream);
	if (r == 0 && m->stream > TETHER_MSG_STREAM_STDERR)
		r = TETHER_ERR_FORMAT;
	if ((r = get_done(b, r)) != 0)
		memset(m, 0, sizeof(*m));
	return r;
}

int tether_msg_decode_error(const uint8_t *body, size_t len,
			    struct tether_msg_error *m)
{
	struct tether_buf *b;
	int r;

	memset(m, 0, sizeof(*m));
	if ((b = tether_buf_from(body, len)) == NULL)
		return TETHER_ERR_NOMEM;
	r = get_str(b, &m->reason, TETHER_MSG_ERROR_MAX);
	if ((r = get_done(b, r)) != 0)
		tether_msg_clear_error(m);
	return r;
}

int tether_msg_decode_window(const uint8_t *body, size_t len,
			     struct tether_msg_window *m)
{
	struct tether_buf *b;
	int r;

	memset(m, 0, sizeof(*m));
	if ((b = tether_buf_from(body, len)) == NULL)
		return TETHER_ERR_NOMEM;
	r = tether_buf_get_u32(b, &m->credit);
	if ((r = get_done(b, r)) != 0)
		memset(m, 0, sizeof(*m));
	return r;
}

int tether_msg_decode_forward(const uint8_t *body, size_t len,
			      struct tether_msg_forward *m)
{
	struct tether_buf *b;
	int r;

	memset(m, 0, sizeof(*m));
	if ((b = tether_buf_from(body, len)) == NULL)
		return TETHER_ERR_NOMEM;
	r = get_str(b, &m->host, TETHER_MSG_HOST_MAX);
	if (r == 0)
		r = tether_buf_get_u16(b, &m->port);
	if ((r = get_done(b, r)) != 0)
		tether_msg_clear_forward(m);
	return r;
}

int tether_msg_decode_info(const uint8_t *body, size_t len,
			   struct tether_msg_info *m)
{
	struct tether_buf *b;
	int r;

	memset(m, 0, sizeof(*m));
	if ((b = tether_buf_from(body, len)) == NULL)
		return TETHER_ERR_NOMEM;
	r = get_str(b, &m->info, TETHER_MSG_INFO_MAX);
	if ((r = get_done(b, r)) != 0)
		tether_msg_clear_info(m);
	return r;
}

int tether_msg_decode_get(const uint8_t *body, size_t len,
			  struct tether_msg_get *m)
{
	struct tether_buf *b;
	int r;

	memset(m, 0, sizeof(*m));
	if ((b = tether_buf_from(body, len)) == NULL)
		return TETHER_ERR_NOMEM;
	/* Recursion is the sender's business; the flags are shared. */
	r = tether_buf_get_u8(b, &m->flags);
	if (r == 0 && (m->flags & ~XFER_FLAGS) != 0)
		r = TETHER_ERR_FORMAT;
	if (r == 0)
		r = get_words(b, TETHER_MSG_PATTERNS_MAX, TETHER_MSG_PATH_MAX,
			      SIZE_MAX, &m->n, &m->paths);
	if ((r = get_done(b, r)) != 0)
		tether_msg_clear_get(m);
	return r;
}

int tether_msg_decode_put(const uint8_t *body, size_t len,
			  struct tether_msg_put *m)
{
	struct tether_buf *b;
	int r;

	memset(m, 0, sizeof(*m));
	if ((b = tether_buf_from(body, len)) == NULL)
		return TETHER_ERR_NOMEM;
	r = tether_buf_get_u8(b, &m->flags);
	if (r == 0 && (m->flags & ~XFER_FLAGS) != 0)
		r = TETHER_ERR_FORMAT;
	if (r == 0)
		r = get_str(b, &m->dest, TETHER_MSG_PATH_MAX);
	if ((r = get_done(b, r)) != 0)
		tether_msg_clear_put(m);
	return r;
}

int tether_msg_decode_entry(const uint8_t *body, size_t len,
			    struct tether_msg_entry *m)
{
	struct tether_buf *b;
	uint64_t sec = 0;
	int r;

	memset(m, 0, sizeof(*m));
	if ((b = tether_buf_from(body, len)) == NULL)
		return TETHER_ERR_NOMEM;
	r = tether_buf_get_u8(b, &m->type);
	if (r == 0 &&
	    (m->type < TETHER_XFER_FILE || m->type > TETHER_XFER_SYMLINK))
		r = TETHER_ERR_FORMAT;
	if (r == 0)
		r = get_str(b, &m->path, TETHER_MSG_PATH_MAX);
	if (r == 0)
		r = tether_buf_get_u32(b, &m->mode);
	if (r == 0 && (m->mode & ~07777u) != 0)
		r = TETHER_ERR_FORMAT;
	if (r == 0)
		r = tether_buf_get_u64(b, &sec);
	m->mtime_sec = (int64_t)sec;
	if (r == 0)
		r = tether_buf_get_u32(b, &m->mtime_nsec);
	if (r == 0)
		r = tether_buf_get_u64(b, &m->size);
	if (r == 0)
		r = get_str(b, &m->target, TETHER_MSG_TARGET_MAX);
	if ((r = get_done(b, r)) != 0)
		tether_msg_clear_entry(m);
	return r;
}

int tether_msg_decode_accept(const uint8_t *body, size_t len,
			     struct tether_msg_accept *m)
{
	struct tether_buf *b;
	int r;

	memset(m, 0, sizeof(*m));
	if ((b = tether_buf_from(body, len)) == NULL)
		return TETHER_ERR_NOMEM;
	r = tether_buf_get_u64(b, &m->offset);
	if ((r = get_done(b, r)) != 0)
		memset(m, 0, sizeof(*m));
	return r;
}

int tether_msg_decode_block(const uint8_t *body, size_t len,
			    struct tether_msg_block *m)
{
	struct tether_buf *b;
	int r;

	memset(m, 0, sizeof(*m));
	if ((b = tether_buf_from(body, len)) == NULL)
		return TETHER_ERR_NOMEM;
	r = tether_buf_get_u8(b, &m->encoding);
	if (r == 0 && m->encoding > TETHER_XFER_DEFLATE)
		r = TETHER_ERR_FORMAT;
	if (r == 0) {
		/* The rest is the data, in place: blocks are big. */
		m->data = tether_buf_ptr(b);
		m->len = tether_buf_len(b);
		r = tether_buf_consume(b, m->len);
	}
	if ((r = get_done(b, r)) != 0)
		memset(m, 0, sizeof(*m));
	return r;
}

int tether_msg_decode_file_end(const uint8_t *body, size_t len,
			       struct tether_msg_file_end *m)
{
	struct tether_buf *b;
	int r;

	memset(m, 0, sizeof(*m));
	if ((b = tether_buf_from(body, len)) == NULL)
		return TETHER_ERR_NOMEM;
	r = tether_buf_get_u8(b, &m->ok);
	if (r == 0 && m->ok > 1)
		r = TETHER_ERR_FORMAT;
	if (r == 0 && m->ok)
		r = tether_buf_get(b, m->sha256, sizeof(m->sha256));
	else if (r == 0)
		r = get_str(b, &m->reason, TETHER_MSG_REASON_MAX);
	if ((r = get_done(b, r)) != 0)
		tether_msg_clear_file_end(m);
	return r;
}

int tether_msg_decode_result(const uint8_t *body, size_t len,
			     struct tether_msg_result *m)
{
	struct tether_buf *b;
	int r;

	memset(m, 0, sizeof(*m));
	if ((b = tether_buf_from(body, len)) == NULL)
		return TETHER_ERR_NOMEM;
	r = tether_buf_get_u8(b, &m->ok);
	if (r == 0 && m->ok > 1)
		r = TETHER_ERR_FORMAT;
	if (r == 0)
		r = get_str(b, &m->reason, TETHER_MSG_REASON_MAX);
	if ((r = get_done(b, r)) != 0)
		tether_msg_clear_result(m);
	return r;
}

int tether_msg_decode_skip(const uint8_t *body, size_t len,
			   struct tether_msg_skip *m)
{
	struct tether_buf *b;
	int r;

	memset(m, 0, sizeof(*m));
	if ((b = tether_buf_from(body, len)) == NULL)
		return TETHER_ERR_NOMEM;
	r = get_str(b, &m->path, TETHER_MSG_PATH_MAX);
	if (r == 0)
		r = get_str(b, &m->reason, TETHER_MSG_REASON_MAX);
	if ((r = get_done(b, r)) != 0)
		tether_msg_clear_skip(m);
	return r;
}

int tether_msg_decode_empty(const uint8_t *body, size_t len)
{
	/* Nothing to read: the length alone says whether data trails. */
	(void)body;
	return len == 0 ? TETHER_OK : TETHER_ERR_TRAILING_DATA;
}

/* ---- Clearing ----------------------------------------------------------- */

void tether_msg_clear_exec(struct tether_msg_exec *m)
{
	free_words(m->argv);
	memset(m, 0, sizeof(*m));
}

void tether_msg_clear_shell(struct tether_msg_shell *m)
{
	free_str(m->term);
	free_words(m->argv);
	memset(m, 0, sizeof(*m));
}

void tether_msg_clear_error(struct tether_msg_error *m)
{
	free_str(m->reason);
	memset(m, 0, sizeof(*m));
}

void tether_msg_clear_forward(struct tether_msg_forward *m)
{
	free_str(m->host);
	memset(m, 0, sizeof(*m));
}

void tether_msg_clear_info(struct tether_msg_info *m)
{
	free_str(m->info);
	memset(m, 0, sizeof(*m));
}

void tether_msg_clear_get(struct tether_msg_get *m)
{
	free_words(m->paths);
	memset(m, 0, sizeof(*m));
}

void tether_msg_clear_put(struct tether_msg_put *m)
{
	free_str(m->dest);
	memset(m, 0, sizeof(*m));
}

void tether_msg_clear_entry(struct tether_msg_entry *m)
{
	free_str(m->path);
	free_str(m->target);
	memset(m, 0, sizeof(*m));
}

void tether_msg_clear_file_end(struct tether_msg_file_end *m)
{
	free_str(m->reason);
	memset(m, 0, sizeof(*m));
}

void tether_msg_clear_result(struct tether_msg_result *m)
{
	free_str(m->reason);
	memset(m, 0, sizeof(*m));
}

void tether_msg_clear_skip(struct tether_msg_skip *m)
{
	free_str(m->path);
	free_str(m->reason);
	memset(m, 0, sizeof(*m));
}

/* ---- The pairing info, sealed ------------------------------------------ */

static const char info_aad_label[] = "tether/1 pairing info ";

/* The info's seal: its own key from Ke. */
static struct tether_seal *info_seal(const uint8_t *ke, size_t ke_len)
{
	uint8_t key[TETHER_SEAL_KEY_LEN];
	struct tether_seal *s = NULL;

	if (tether_seal_derive_info(ke, ke_len, key) == 0)
		s = tether_seal_new(key);
	tether_wipe(key, sizeof(key));
	return s;
}

/* "tether/1 pairing info " + nameplate: the info is for this code only. */
static struct tether_buf *info_aad(const char *nameplate)
{
	struct tether_buf *b = tether_buf_new(64);

	if (b != NULL &&
	    (tether_buf_put(b, info_aad_label, sizeof(info_aad_label) - 1) !=
		 0 ||
	     tether_buf_put(b, nameplate, strlen(nameplate)) != 0)) {
		tether_buf_free(b);
		b = NULL;
	}
	return b;
}

int tether_msg_seal_info(const uint8_t *ke, size_t ke_len,
			 const char *nameplate, const char *info, char **hex)
{
	const struct tether_msg_info m = {.info = info};
	struct tether_buf *body = NULL, *aad = NULL;
	struct tether_seal *s = NULL;
	uint8_t *sealed = NULL;
	size_t n = 0;
	int err;

	*hex = NULL;
	if (!ke || !nameplate || !info)
		return TETHER_ERR_INVALID;
	body = tether_buf_new(strlen(info) + 4);
	aad = info_aad(nameplate);
	s = info_seal(ke, ke_len);
	err = body && aad && s ? tether_msg_encode_info(body, &m)
			       : TETHER_ERR_NOMEM;
	if (!err) {
		n = tether_buf_len(body) + TETHER_SEAL_TAG_LEN;
		sealed = tether_malloc(n);
		*hex = tether_malloc(2 * n + 1);
		err = sealed && *hex ? 0 : TETHER_ERR_NOMEM;
	}
	if (!err)
		err = tether_seal_encrypt(
		    s, tether_buf_ptr(aad), tether_buf_len(aad),
		    tether_buf_ptr(body), tether_buf_len(body), sealed);
	if (!err)
		err = tether_hex_encode(sealed, n, *hex, 2 * n + 1);
	if (err) {
		tether_free(*hex);
		*hex = NULL;
	}
	tether_free(sealed);
	tether_seal_free(s);
	tether_buf_free(aad);
	tether_buf_free(body);
	return err;
}

int tether_msg_open_info(const uint8_t *ke, size_t ke_len,
			 const char *nameplate, const char *hex, char **info)
{
	struct tether_msg_info m = {0};
	struct tether_buf *aad = NULL;
	struct tether_seal *s = NULL;
	uint8_t *sealed = NULL, *plain = NULL;
	size_t hlen, n;
	int err;

	*info = NULL;
	if (!ke || !nameplate || !hex)
		return TETHER_ERR_INVALID;
	hlen = strlen(hex);
	if (hlen % 2 != 0 || hlen / 2 < TETHER_SEAL_TAG_LEN)
		return TETHER_ERR_FORMAT;
	n = hlen / 2;
	sealed = tether_malloc(n);
	plain = tether_malloc(n - TETHER_SEAL_TAG_LEN + 1);
	aad = info_aad(nameplate);
	s = info_seal(ke, ke_len);
	err = sealed && plain && aad && s ? 0 : TETHER_ERR_NOMEM;
	if (!err && tether_hex_decode(hex, sealed, n) != 0)
		err = TETHER_ERR_FORMAT;
	if (!err)
		err =
		    tether_seal_decrypt(s, tether_buf_ptr(aad),
					tether_buf_len(aad), sealed, n, plain);
	if (!err)
		err =
		    tether_msg_decode_info(plain, n - TETHER_SEAL_TAG_LEN, &m);
	if (!err) {
		*info = tether_strdup(m.info);
		err = *info ? 0 : TETHER_ERR_NOMEM;
	}
	tether_msg_clear_info(&m);
	if (plain)
		tether_freezero(plain, n - TETHER_SEAL_TAG_LEN + 1);
	tether_free(sealed);
	tether_seal_free(s);
	tether_buf_free(aad);
	return err;
}
