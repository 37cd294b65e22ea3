/*
 * Bounds-checked byte buffer (see buf.h).  The only place in the tree that
 * does pointer arithmetic on received bytes.  Readable data is d[off..end);
 * consumed space at the front is reclaimed lazily when more room is needed.
 */
#include <stdbool.h>
#include <string.h>

#include <openssl/crypto.h>

#include <tether/alloc.h>
#include <tether/buf.h>
#include <tether/err.h>

struct tether_buf {
	uint8_t *d;
	size_t off;	 /* read position */
	size_t end;	 /* end of data */
	size_t alloc;	 /* bytes allocated at d */
	size_t max_size; /* cap on end - off */
	bool readonly;	 /* wraps caller memory */
};

#define BUF_MIN_ALLOC 256

struct tether_buf *tether_buf_new(size_t max_size)
{
	struct tether_buf *b;

	if (max_size > TETHER_BUF_SIZE_MAX)
		return NULL;
	b = tether_calloc(1, sizeof(*b));
	if (b == NULL)
		return NULL;
	b->max_size = max_size;
	return b;
}

struct tether_buf *tether_buf_from(const void *data, size_t len)
{
	struct tether_buf *b = tether_calloc(1, sizeof(*b));

	if (b == NULL)
		return NULL;
	/* Never written through: every put checks readonly first. */
	b->d = (uint8_t *)(uintptr_t)data;
	b->end = b->alloc = b->max_size = len;
	b->readonly = true;
	return b;
}

void tether_buf_free(struct tether_buf *b)
{
	if (b == NULL)
		return;
	if (!b->readonly)
		tether_freezero(b->d, b->alloc);
	tether_freezero(b, sizeof(*b));
}

void tether_buf_reset(struct tether_buf *b)
{
	if (b->readonly) {
		b->off = b->end;
		return;
	}
	if (b->d != NULL)
		OPENSSL_cleanse(b->d, b->end);
	b->off = b->end = 0;
}

size_t tether_buf_len(const struct tether_buf *b)
{
	return b->end - b->off;
}

const uint8_t *tether_buf_ptr(const struct tether_buf *b)
{
	static const uint8_t empty;

	/* NULL + 0 is undefined in C; an unallocated buffer has no bytes. */
	if (b->d == NULL)
		return &empty;
	return b->d + b->off;
}

size_t tether_buf_max_size(const struct tether_buf *b)
{
	return b->max_size;
}

int tether_buf_check_reserve(const struct tether_buf *b, size_t len)
{
	if (b->readonly)
		return TETHER_ERR_INVALID;
	if (len > b->max_size || tether_buf_len(b) > b->max_size - len)
		return TETHER_ERR_TOO_LARGE;
	return TETHER_OK;
}

int tether_buf_reserve(struct tether_buf *b, size_t len, uint8_t **dpp)
{
	size_t need, nalloc;
	uint8_t *nd;
	int r;

	*dpp = NULL;
	if ((r = tether_buf_check_reserve(b, len)) != 0)
		return r;
	if (b->alloc - b->end < len && b->off > 0) {
		/* Slide the unread bytes to the front before growing. */
		memmove(b->d, b->d + b->off, b->end - b->off);
		b->end -= b->off;
		b->off = 0;
	}
	need = b->end + len;
	if (need > b->alloc) {
		nalloc = b->alloc < BUF_MIN_ALLOC ? BUF_MIN_ALLOC : b->alloc;
		while (nalloc < need)
			nalloc *= 2;
		if (nalloc > b->max_size && need <= b->max_size)
			nalloc = b->max_size < BUF_MIN_ALLOC ? BUF_MIN_ALLOC
							     : b->max_size;
		if (nalloc < need)
			nalloc = need;
		nd = tether_malloc(nalloc);
		if (nd == NULL)
			return TETHER_ERR_NOMEM;
		if (b->d != NULL) {
			memcpy(nd, b->d, b->end);
			tether_freezero(b->d, b->alloc);
		}
		b->d = nd;
		b->alloc = nalloc;
	}
	*dpp = b->d + b->end;
	b->end += len;
	return TETHER_OK;
}

int tether_buf_consume(struct tether_buf *b, size_t len)
{
	if (len > tether_buf_len(b))
		return TETHER_ERR_INCOMPLETE;
	b->off += len;
	if (b->off == b->end && !b->readonly)
		b->off = b->end = 0;
	return TETHER_OK;
}

int tether_buf_consume_end(struct tether_buf *b, size_t len)
{
	if (len > tether_buf_len(b))
		return TETHER_ERR_INCOMPLETE;
	b->end -= len;
	return TETHER_OK;
}

static uint64_t load_be(const uint8_t *p, size_t n)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

static void store_be(uint8_t *p, uint64_t v, size_t n)
{
	while (n-- > 0) {
		p[n] = (uint8_t)v;
		v >>= 8;
	}
}

static int get_be(struct tether_buf *b, size_t n, uint64_t *v)
{
	*v = 0;
	if (tether_buf_len(b) < n)
		return TETHER_ERR_INCOMPLETE;
	*v = load_be(tether_buf_ptr(b), n);
	b->off += n;
	return TETHER_OK;
}

int tether_buf_get_u8(struct tether_buf *b, uint8_t *v)
{
	uint64_t x;
	int r = get_be(b, 1, &x);

	*v = (uint8_t)x;
	return r;
}

int tether_buf_get_u16(struct tether_buf *b, uint16_t *v)
{
	uint64_t x;
	int r = get_be(b, 2, &x);

	*v = (uint16_t)x;
	return r;
}

int tether_buf_get_u32(struct tether_buf *b, uint32_t *v)
{
	uint64_t x;
	int r = get_be(b, 4, &x);

	*v = (uint32_t)x;
	return r;
}

int tether_buf_get_u64(struct tether_buf *b, uint64_t *v)
{
	return get_be(b, 8, v);
}

int tether_buf_get(struct tether_buf *b, void *v, size_t len)
{
	if (tether_buf_len(b) < len)
		return TETHER_ERR_INCOMPLETE;
	if (v != NULL && len > 0)
		memcpy(v, tether_buf_ptr(b), len);
	b->off += len;
	return TETHER_OK;
}

int tether_buf_get_string_direct(struct tether_buf *b, const uint8_t **valp,
				 size_t *lenp)
{
	uint32_t n;

	*valp = NULL;
	if (lenp != NULL)
		*lenp = 0;
	if (tether_buf_len(b) < 4)
		return TETHER_ERR_INCOMPLETE;
	n = (uint32_t)load_be(tether_buf_ptr(b), 4);
	if (tether_buf_len(b) - 4 < n)
		return TETHER_ERR_INCOMPLETE;
	*valp = tether_buf_ptr(b) + 4;
	if (lenp != NULL)
		*lenp = n;
	b->off += 4 + (size_t)n;
	return TETHER_OK;
}

int tether_buf_get_cstring(struct tether_buf *b, char **valp, size_t *lenp,
			   size_t max_len)
{
	uint32_t n;
	char *s;

	*valp = NULL;
	if (lenp != NULL)
		*lenp = 0;
	if (tether_buf_len(b) < 4)
		return TETHER_ERR_INCOMPLETE;
	n = (uint32_t)load_be(tether_buf_ptr(b), 4);
	if (n > max_len)
		return TETHER_ERR_TOO_LARGE;
	if (tether_buf_len(b) - 4 < n)
		return TETHER_ERR_INCOMPLETE;
	if (n > 0 && memchr(tether_buf_ptr(b) + 4, '\0', n) != NULL)
		return TETHER_ERR_FORMAT;
	s = tether_malloc((size_t)n + 1);
	if (s == NULL)
		return TETHER_ERR_NOMEM;
	memcpy(s, tether_buf_ptr(b) + 4, n);
	s[n] = '\0';
	b->off += 4 + (size_t)n;
	*valp = s;
	if (lenp != NULL)
		*lenp = n;
	return TETHER_OK;
}

int tether_buf_peek_u8(const struct tether_buf *b, size_t off, uint8_t *v)
{
	*v = 0;
	if (off >= tether_buf_len(b))
		return TETHER_ERR_INCOMPLETE;
	*v = tether_buf_ptr(b)[off];
	return TETHER_OK;
}

int tether_buf_peek_u32(const struct tether_buf *b, size_t off, uint32_t *v)
{
	*v = 0;
	if (off > tether_buf_len(b) || tether_buf_len(b) - off < 4)
		return TETHER_ERR_INCOMPLETE;
	*v = (uint32_t)load_be(tether_buf_ptr(b) + off, 4);
	return TETHER_OK;
}

int tether_buf_get_end(const struct tether_buf *b)
{
	return tether_buf_len(b) == 0 ? TETHER_OK : TETHER_ERR_TRAILING_DATA;
}

static int put_be(struct tether_buf *b, uint64_t v, size_t n)
{
	uint8_t *p;
	int r;

	if ((r = tether_buf_reserve(b, n, &p)) != 0)
		return r;
	store_be(p, v, n);
	return TETHER_OK;
}

int tether_buf_put_u8(struct tether_buf *b, uint8_t v)
{
	return put_be(b, v, 1);
}

int tether_buf_put_u16(struct tether_buf *b, uint16_t v)
{
	return put_be(b, v, 2);
}

int tether_buf_put_u32(struct tether_buf *b, uint32_t v)
{
	return put_be(b, v, 4);
}

int tether_buf_put_u64(struct tether_buf *b, uint64_t v)
{
	return put_be(b, v, 8);
}

int tether_buf_put(struct tether_buf *b, const void *v, size_t len)
{
	uint8_t *p;
	int r;

	if ((r = tether_buf_reserve(b, len, &p)) != 0)
		return r;
	if (len > 0)
		memcpy(p, v, len);
	return TETHER_OK;
}

int tether_buf_put_string(struct tether_buf *b, const void *v, size_t len)
{
	uint8_t *p;
	int r;

	if (len > UINT32_MAX)
		return TETHER_ERR_TOO_LARGE;
	if ((r = tether_buf_reserve(b, 4 + len, &p)) != 0)
		return r;
	store_be(p, len, 4);
	if (len > 0)
		memcpy(p + 4, v, len);
	return TETHER_OK;
}

int tether_buf_put_cstring(struct tether_buf *b, const char *s)
{
	return tether_buf_put_string(b, s, strlen(s));
}

int tether_buf_poke_u32(struct tether_buf *b, size_t off, uint32_t v)
{
	if (b->readonly)
		return TETHER_ERR_INVALID;
	if (off > tether_buf_len(b) || tether_buf_len(b) - off < 4)
		return TETHER_ERR_INCOMPLETE;
	store_be(b->d + b->off + off, v, 4);
	return TETHER_OK;
}
