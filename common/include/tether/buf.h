/*
 * Bounds-checked byte buffer, modelled on OpenSSH's sshbuf.  All wire data is
 * parsed through it: typed big-endian getters, and a failed get consumes
 * nothing.  A buffer has a hard max_size that puts can never exceed.
 */
#ifndef TETHER_BUF_H
#define TETHER_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tether_buf;

#define TETHER_BUF_SIZE_MAX (64u * 1024 * 1024)

/* New empty buffer that may grow to max_size bytes.  NULL on no memory. */
struct tether_buf *tether_buf_new(size_t max_size);
/*
 * New read-only buffer over caller memory (not copied).  Caller keeps data
 * alive and unchanged while the buffer lives.  Puts on it fail.
 */
struct tether_buf *tether_buf_from(const void *data, size_t len);
/* Wipes and frees the buffer.  NULL is fine. */
void tether_buf_free(struct tether_buf *b);
/* Empties the buffer (wiping the old bytes); keeps its allocation. */
void tether_buf_reset(struct tether_buf *b);

/* Bytes available to read. */
size_t tether_buf_len(const struct tether_buf *b);
/* Pointer to the readable bytes; valid until the next modifying call. */
const uint8_t *tether_buf_ptr(const struct tether_buf *b);
size_t tether_buf_max_size(const struct tether_buf *b);
/* 0 if len more bytes fit under max_size, else TETHER_ERR_TOO_LARGE. */
int tether_buf_check_reserve(const struct tether_buf *b, size_t len);
/*
 * Reserves len writable bytes at the end; *dpp points at them.  The bytes
 * count as data once this returns 0.  Pointer valid until next modify.
 */
int tether_buf_reserve(struct tether_buf *b, size_t len, uint8_t **dpp);
/* Drops len bytes from the front (TETHER_ERR_INCOMPLETE if fewer). */
int tether_buf_consume(struct tether_buf *b, size_t len);
/* Drops len bytes from the end. */
int tether_buf_consume_end(struct tether_buf *b, size_t len);

/* Getters: 0, or TETHER_ERR_INCOMPLETE with nothing consumed. */
int tether_buf_get_u8(struct tether_buf *b, uint8_t *v);
int tether_buf_get_u16(struct tether_buf *b, uint16_t *v);
int tether_buf_get_u32(struct tether_buf *b, uint32_t *v);
int tether_buf_get_u64(struct tether_buf *b, uint64_t *v);
/* Copies len bytes into v (v may be NULL to skip). */
int tether_buf_get(struct tether_buf *b, void *v, size_t len);
/*
 * u32-length-prefixed string.  *valp is a NUL-terminated copy the caller frees
 * with tether_free(); rejects embedded NULs (TETHER_ERR_FORMAT) and lengths
 * over max_len (TETHER_ERR_TOO_LARGE) before allocating.  *lenp may be NULL.
 */
int tether_buf_get_cstring(struct tether_buf *b, char **valp, size_t *lenp,
			   size_t max_len);
/*
 * u32-length-prefixed bytes, not copied: *valp points into b and is valid
 * until the next modifying call; the caller does not free it.
 */
int tether_buf_get_string_direct(struct tether_buf *b, const uint8_t **valp,
				 size_t *lenp);
/* Peek without consuming (offset from the read position). */
int tether_buf_peek_u8(const struct tether_buf *b, size_t off, uint8_t *v);
int tether_buf_peek_u32(const struct tether_buf *b, size_t off, uint32_t *v);
/* TETHER_ERR_TRAILING_DATA unless the buffer is empty. */
int tether_buf_get_end(const struct tether_buf *b);

/* Putters: 0, or TETHER_ERR_TOO_LARGE / NOMEM with the buffer unchanged. */
int tether_buf_put_u8(struct tether_buf *b, uint8_t v);
int tether_buf_put_u16(struct tether_buf *b, uint16_t v);
int tether_buf_put_u32(struct tether_buf *b, uint32_t v);
int tether_buf_put_u64(struct tether_buf *b, uint64_t v);
int tether_buf_put(struct tether_buf *b, const void *v, size_t len);
/* u32 length then bytes. */
int tether_buf_put_string(struct tether_buf *b, const void *v, size_t len);
int tether_buf_put_cstring(struct tether_buf *b, const char *s);
/* Overwrites a u32 at offset off from the read position (length back-patch). */
int tether_buf_poke_u32(struct tether_buf *b, size_t off, uint32_t v);

#endif /* TETHER_BUF_H */
