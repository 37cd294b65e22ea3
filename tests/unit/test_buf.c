/*
 * Byte buffer tests.  Every wire byte is parsed through tether_buf, so the
 * contract is checked to the letter: big-endian encodings, a failed get
 * consumes nothing, a failed put leaves the buffer as it was, max_size is
 * never exceeded and size arithmetic cannot be wrapped around.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include <tether/alloc.h>
#include <tether/buf.h>
#include <tether/err.h>

static void fini(void)
{
	/* A test that fails midway must not leave allocations failing. */
	tether_alloc_fail_after(0);
}

TestSuite(buf, .fini = fini);

static struct tether_buf *new_buf(size_t max)
{
	struct tether_buf *b = tether_buf_new(max);

	cr_assert_not_null(b);
	return b;
}

/* Appends raw bytes and checks they went in. */
static void put_bytes(struct tether_buf *b, const void *p, size_t n)
{
	cr_assert_eq(tether_buf_put(b, p, n), 0);
}

static void assert_contents(const struct tether_buf *b, const void *want,
			    size_t n)
{
	cr_assert_eq(tether_buf_len(b), n, "len %zu, want %zu",
		     tether_buf_len(b), n);
	if (n > 0)
		cr_assert(memcmp(tether_buf_ptr(b), want, n) == 0);
}

/* Deterministic byte stream (xorshift32) so failures reproduce. */
static uint8_t pattern(size_t i)
{
	uint32_t x = (uint32_t)i * 2654435761u + 0x9e3779b9u;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return (uint8_t)(x >> 11);
}

Test(buf, new_starts_empty)
{
	struct tether_buf *b = new_buf(100);

	cr_assert_eq(tether_buf_len(b), 0);
	cr_assert_eq(tether_buf_max_size(b), 100);
	cr_assert_eq(tether_buf_get_end(b), 0);
	tether_buf_free(b);
}

/*
 * A buffer that never allocated has no storage; asking for its (empty)
 * contents must still be well defined (clang's UBSan checks NULL + 0).
 */
Test(buf, empty_buffer_ptr_and_ops_are_defined)
{
	struct tether_buf *b = new_buf(16);
	uint8_t v;

	(void)tether_buf_ptr(b);
	cr_assert_eq(tether_buf_get(b, NULL, 0), 0);
	cr_assert_eq(tether_buf_consume(b, 0), 0);
	cr_assert_eq(tether_buf_consume_end(b, 0), 0);
	cr_assert_eq(tether_buf_peek_u8(b, 0, &v), TETHER_ERR_INCOMPLETE);
	tether_buf_reset(b);
	cr_assert_eq(tether_buf_len(b), 0);
	tether_buf_free(b);
}

Test(buf, new_rejects_max_over_limit)
{
	cr_assert_null(tether_buf_new((size_t)TETHER_BUF_SIZE_MAX + 1));
	cr_assert_null(tether_buf_new(SIZE_MAX));
}

Test(buf, free_null_is_fine)
{
	tether_buf_free(NULL);
}

Test(buf, put_get_u8_round_trip)
{
	static const uint8_t want[] = {0x00, 0xab, 0xff};
	struct tether_buf *b = new_buf(64);
	uint8_t v;

	cr_assert_eq(tether_buf_put_u8(b, 0x00), 0);
	cr_assert_eq(tether_buf_put_u8(b, 0xab), 0);
	cr_assert_eq(tether_buf_put_u8(b, 0xff), 0);
	assert_contents(b, want, sizeof(want));
	cr_assert_eq(tether_buf_get_u8(b, &v), 0);
	cr_assert_eq(v, 0x00);
	cr_assert_eq(tether_buf_get_u8(b, &v), 0);
	cr_assert_eq(v, 0xab);
	cr_assert_eq(tether_buf_get_u8(b, &v), 0);
	cr_assert_eq(v, 0xff);
	cr_assert_eq(tether_buf_len(b), 0);
	tether_buf_free(b);
}

Test(buf, put_get_u16_big_endian)
{
	static const uint8_t want[] = {0x12, 0x34, 0xff, 0xfe};
	struct tether_buf *b = new_buf(64);
	uint16_t v;

	cr_assert_eq(tether_buf_put_u16(b, 0x1234), 0);
	cr_assert_eq(tether_buf_put_u16(b, 0xfffe), 0);
	assert_contents(b, want, sizeof(want));
	cr_assert_eq(tether_buf_get_u16(b, &v), 0);
	cr_assert_eq(v, 0x1234);
	cr_assert_eq(tether_buf_get_u16(b, &v), 0);
	cr_assert_eq(v, 0xfffe);
	cr_assert_eq(tether_buf_len(b), 0);
	tether_buf_free(b);
}

Test(buf, put_get_u32_big_endian)
{
	static const uint8_t want[] = {0xde, 0xad, 0xbe, 0xef,
				       0x00, 0x00, 0x00, 0x01};
	struct tether_buf *b = new_buf(64);
	uint32_t v;

	cr_assert_eq(tether_buf_put_u32(b, 0xdeadbeef), 0);
	cr_assert_eq(tether_buf_put_u32(b, 1), 0);
	assert_contents(b, want, sizeof(want));
	cr_assert_eq(tether_buf_get_u32(b, &v), 0);
	cr_assert_eq(v, 0xdeadbeef);
	cr_assert_eq(tether_buf_get_u32(b, &v), 0);
	cr_assert_eq(v, 1);
	tether_buf_free(b);
}

Test(buf, put_get_u64_big_endian)
{
	static const uint8_t want[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
				       0x07, 0x08, 0xff, 0xff, 0xff, 0xff,
				       0xff, 0xff, 0xff, 0xff};
	struct tether_buf *b = new_buf(64);
	uint64_t v;

	cr_assert_eq(tether_buf_put_u64(b, 0x0102030405060708ull), 0);
	cr_assert_eq(tether_buf_put_u64(b, UINT64_MAX), 0);
	assert_contents(b, want, sizeof(want));
	cr_assert_eq(tether_buf_get_u64(b, &v), 0);
	cr_assert_eq(v, 0x0102030405060708ull);
	cr_assert_eq(tether_buf_get_u64(b, &v), 0);
	cr_assert_eq(v, UINT64_MAX);
	tether_buf_free(b);
}

Test(buf, get_bytes_and_skip)
{
	struct tether_buf *b = new_buf(64);
	char out[4];

	put_bytes(b, "abcdefg", 7);
	cr_assert_eq(tether_buf_get(b, out, 3), 0);
	cr_assert(memcmp(out, "abc", 3) == 0);
	/* A NULL destination skips the bytes. */
	cr_assert_eq(tether_buf_get(b, NULL, 2), 0);
	assert_contents(b, "fg", 2);
	cr_assert_eq(tether_buf_get(b, out, 0), 0);
	assert_contents(b, "fg", 2);
	tether_buf_free(b);
}

/*
 * Each getter is offered one byte less than it needs, from a buffer that
 * holds readable bytes at a non-zero read offset, and must leave it alone.
 */
Test(buf, get_u8_truncated_does_not_consume)
{
	struct tether_buf *b = new_buf(64);
	uint8_t v = 0x55;

	cr_assert_eq(tether_buf_get_u8(b, &v), TETHER_ERR_INCOMPLETE);
	cr_assert_eq(tether_buf_len(b), 0);
	put_bytes(b, "\x01", 1);
	cr_assert_eq(tether_buf_get_u8(b, &v), 0);
	cr_assert_eq(tether_buf_get_u8(b, &v), TETHER_ERR_INCOMPLETE);
	cr_assert_eq(tether_buf_len(b), 0);
	tether_buf_free(b);
}

Test(buf, get_u16_truncated_does_not_consume)
{
	struct tether_buf *b = new_buf(64);
	uint16_t v;

	put_bytes(b, "x\xab", 2);
	cr_assert_eq(tether_buf_consume(b, 1), 0);
	cr_assert_eq(tether_buf_get_u16(b, &v), TETHER_ERR_INCOMPLETE);
	assert_contents(b, "\xab", 1);
	put_bytes(b, "\xcd", 1);
	cr_assert_eq(tether_buf_get_u16(b, &v), 0);
	cr_assert_eq(v, 0xabcd);
	tether_buf_free(b);
}

Test(buf, get_u32_truncated_does_not_consume)
{
	struct tether_buf *b = new_buf(64);
	uint32_t v;
	size_t i;

	for (i = 0; i < 4; i++) {
		cr_assert_eq(tether_buf_get_u32(b, &v), TETHER_ERR_INCOMPLETE);
		cr_assert_eq(tether_buf_len(b), i);
		cr_assert_eq(tether_buf_put_u8(b, (uint8_t)(0x10 + i)), 0);
	}
	cr_assert_eq(tether_buf_get_u32(b, &v), 0);
	cr_assert_eq(v, 0x10111213);
	tether_buf_free(b);
}

Test(buf, get_u64_truncated_does_not_consume)
{
	static const uint8_t seven[] = {1, 2, 3, 4, 5, 6, 7};
	struct tether_buf *b = new_buf(64);
	uint64_t v;

	put_bytes(b, seven, sizeof(seven));
	cr_assert_eq(tether_buf_get_u64(b, &v), TETHER_ERR_INCOMPLETE);
	assert_contents(b, seven, sizeof(seven));
	tether_buf_free(b);
}

Test(buf, get_bytes_truncated_does_not_consume)
{
	struct tether_buf *b = new_buf(64);
	char out[8] = "zzzzzzz";

	put_bytes(b, "abc", 3);
	cr_assert_eq(tether_buf_get(b, out, 4), TETHER_ERR_INCOMPLETE);
	cr_assert_eq(tether_buf_get(b, NULL, SIZE_MAX), TETHER_ERR_INCOMPLETE);
	assert_contents(b, "abc", 3);
	cr_assert_str_eq(out, "zzzzzzz");
	tether_buf_free(b);
}

Test(buf, peek_does_not_consume)
{
	struct tether_buf *b = new_buf(64);
	uint32_t v32;
	uint8_t v8;

	put_bytes(b, "\x01\x02\x03\x04\x05", 5);
	cr_assert_eq(tether_buf_peek_u8(b, 4, &v8), 0);
	cr_assert_eq(v8, 5);
	cr_assert_eq(tether_buf_peek_u32(b, 1, &v32), 0);
	cr_assert_eq(v32, 0x02030405);
	cr_assert_eq(tether_buf_peek_u8(b, 5, &v8), TETHER_ERR_INCOMPLETE);
	cr_assert_eq(tether_buf_peek_u32(b, 2, &v32), TETHER_ERR_INCOMPLETE);
	/* Offsets near SIZE_MAX must not wrap into range. */
	cr_assert_eq(tether_buf_peek_u8(b, SIZE_MAX, &v8),
		     TETHER_ERR_INCOMPLETE);
	cr_assert_eq(tether_buf_peek_u32(b, SIZE_MAX - 2, &v32),
		     TETHER_ERR_INCOMPLETE);
	cr_assert_eq(tether_buf_len(b), 5);
	tether_buf_free(b);
}

Test(buf, max_size_enforced)
{
	struct tether_buf *b = new_buf(10);
	uint8_t *p;

	put_bytes(b, "0123456789", 10);
	cr_assert_eq(tether_buf_put_u8(b, 'x'), TETHER_ERR_TOO_LARGE);
	cr_assert_eq(tether_buf_put_u16(b, 1), TETHER_ERR_TOO_LARGE);
	cr_assert_eq(tether_buf_put_u32(b, 1), TETHER_ERR_TOO_LARGE);
	cr_assert_eq(tether_buf_put_u64(b, 1), TETHER_ERR_TOO_LARGE);
	cr_assert_eq(tether_buf_put(b, "x", 1), TETHER_ERR_TOO_LARGE);
	cr_assert_eq(tether_buf_put_cstring(b, ""), TETHER_ERR_TOO_LARGE);
	cr_assert_eq(tether_buf_reserve(b, 1, &p), TETHER_ERR_TOO_LARGE);
	cr_assert_null(p);
	assert_contents(b, "0123456789", 10);
	/* Consumed space is free again: the cap is on unread bytes. */
	cr_assert_eq(tether_buf_consume(b, 4), 0);
	cr_assert_eq(tether_buf_put_u32(b, 0x61626364), 0);
	assert_contents(b, "456789abcd", 10);
	cr_assert_eq(tether_buf_put_u8(b, 'e'), TETHER_ERR_TOO_LARGE);
	assert_contents(b, "456789abcd", 10);
	tether_buf_free(b);
}

Test(buf, put_over_max_leaves_buffer_unchanged)
{
	struct tether_buf *b = new_buf(300);
	uint8_t big[301];

	memset(big, 'q', sizeof(big));
	put_bytes(b, "head", 4);
	cr_assert_eq(tether_buf_put(b, big, 297), TETHER_ERR_TOO_LARGE);
	cr_assert_eq(tether_buf_put(b, big, sizeof(big)), TETHER_ERR_TOO_LARGE);
	cr_assert_eq(tether_buf_put_string(b, big, 293), TETHER_ERR_TOO_LARGE);
	assert_contents(b, "head", 4);
	cr_assert_eq(tether_buf_put(b, big, 296), 0);
	cr_assert_eq(tether_buf_len(b), 300);
	tether_buf_free(b);
}

Test(buf, check_reserve_overflow_safe)
{
	struct tether_buf *b = new_buf(1000);
	uint8_t *p = (uint8_t *)"sentinel";

	put_bytes(b, "0123456789", 10);
	cr_assert_eq(tether_buf_check_reserve(b, 990), 0);
	cr_assert_eq(tether_buf_check_reserve(b, 991), TETHER_ERR_TOO_LARGE);
	/* len + n would wrap to something small if computed naively. */
	cr_assert_eq(tether_buf_check_reserve(b, SIZE_MAX),
		     TETHER_ERR_TOO_LARGE);
	cr_assert_eq(tether_buf_check_reserve(b, SIZE_MAX - 5),
		     TETHER_ERR_TOO_LARGE);
	cr_assert_eq(tether_buf_check_reserve(b, SIZE_MAX - 9),
		     TETHER_ERR_TOO_LARGE);
	cr_assert_eq(tether_buf_reserve(b, SIZE_MAX, &p), TETHER_ERR_TOO_LARGE);
	cr_assert_null(p);
	cr_assert_eq(tether_buf_reserve(b, SIZE_MAX - 9, &p),
		     TETHER_ERR_TOO_LARGE);
	cr_assert_eq(tether_buf_put(b, "x", SIZE_MAX), TETHER_ERR_TOO_LARGE);
	assert_contents(b, "0123456789", 10);
	tether_buf_free(b);
}

Test(buf, reserve_counts_as_data)
{
	struct tether_buf *b = new_buf(64);
	uint8_t *p;

	put_bytes(b, "ab", 2);
	cr_assert_eq(tether_buf_reserve(b, 3, &p), 0);
	cr_assert_not_null(p);
	memcpy(p, "cde", 3);
	assert_contents(b, "abcde", 5);
	/* Reserve then give back the unused tail, as link.c does. */
	cr_assert_eq(tether_buf_reserve(b, 10, &p), 0);
	memcpy(p, "fg", 2);
	cr_assert_eq(tether_buf_consume_end(b, 8), 0);
	assert_contents(b, "abcdefg", 7);
	tether_buf_free(b);
}

Test(buf, put_string_and_cstring_encoding)
{
	static const char want[] = "\0\0\0\3"
				   "a\0b"
				   "\0\0\0\2"
				   "hi"
				   "\0\0\0\0";
	struct tether_buf *b = new_buf(64);

	cr_assert_eq(tether_buf_put_string(b, "a\0b", 3), 0);
	cr_assert_eq(tether_buf_put_cstring(b, "hi"), 0);
	cr_assert_eq(tether_buf_put_string(b, NULL, 0), 0);
	assert_contents(b, want, sizeof(want) - 1);
	tether_buf_free(b);
}

Test(buf, put_string_rejects_u32_overflow)
{
	struct tether_buf *b = new_buf(64);
	char dummy = 0;

	/* Never read: the length alone is refused. */
	cr_assert_eq(tether_buf_put_string(b, &dummy, (size_t)UINT32_MAX + 1),
		     TETHER_ERR_TOO_LARGE);
	cr_assert_eq(tether_buf_put_string(b, &dummy, SIZE_MAX),
		     TETHER_ERR_TOO_LARGE);
	cr_assert_eq(tether_buf_len(b), 0);
	tether_buf_free(b);
}

Test(buf, get_cstring_round_trip)
{
	struct tether_buf *b = new_buf(64);
	size_t len = 99;
	char *s;

	cr_assert_eq(tether_buf_put_cstring(b, "hello"), 0);
	cr_assert_eq(tether_buf_put_cstring(b, ""), 0);
	cr_assert_eq(tether_buf_put_cstring(b, "exact"), 0);
	cr_assert_eq(tether_buf_get_cstring(b, &s, &len, 64), 0);
	cr_assert_str_eq(s, "hello");
	cr_assert_eq(len, 5);
	tether_free(s);
	cr_assert_eq(tether_buf_get_cstring(b, &s, NULL, 64), 0);
	cr_assert_str_eq(s, "");
	tether_free(s);
	/* max_len is inclusive. */
	cr_assert_eq(tether_buf_get_cstring(b, &s, &len, 5), 0);
	cr_assert_str_eq(s, "exact");
	cr_assert_eq(len, 5);
	tether_free(s);
	cr_assert_eq(tether_buf_get_end(b), 0);
	tether_buf_free(b);
}

Test(buf, get_cstring_rejects_embedded_nul)
{
	struct tether_buf *b = new_buf(64);
	size_t len = 99;
	char *s = (char *)"sentinel";

	cr_assert_eq(tether_buf_put_string(b, "ab\0cd", 5), 0);
	cr_assert_eq(tether_buf_get_cstring(b, &s, &len, 64),
		     TETHER_ERR_FORMAT);
	cr_assert_null(s);
	cr_assert_eq(len, 0);
	cr_assert_eq(tether_buf_len(b), 9);
	tether_buf_reset(b);
	/* A trailing NUL counts as embedded too. */
	cr_assert_eq(tether_buf_put_string(b, "abc\0", 4), 0);
	cr_assert_eq(tether_buf_get_cstring(b, &s, NULL, 64),
		     TETHER_ERR_FORMAT);
	cr_assert_eq(tether_buf_len(b), 8);
	tether_buf_free(b);
}

Test(buf, get_cstring_over_max_len_does_not_allocate)
{
	struct tether_buf *b = new_buf(64);
	char *s = (char *)"sentinel";
	void *p;

	cr_assert_eq(tether_buf_put_cstring(b, "toolong"), 0);
	/*
	 * Arm the allocator to fail the next allocation: a TOO_LARGE answer
	 * (not NOMEM) and the hook still armed afterwards prove that no
	 * allocation was attempted.
	 */
	tether_alloc_fail_after(1);
	cr_assert_eq(tether_buf_get_cstring(b, &s, NULL, 6),
		     TETHER_ERR_TOO_LARGE);
	p = tether_malloc(1);
	tether_alloc_fail_after(0);
	cr_assert_null(p, "get_cstring allocated before checking max_len");
	cr_assert_null(s);
	cr_assert_eq(tether_buf_len(b), 11);
	tether_buf_free(b);
}

Test(buf, get_cstring_huge_length_too_large_before_incomplete)
{
	struct tether_buf *b = new_buf(64);
	char *s;

	/* A hostile length is refused as soon as it is seen. */
	cr_assert_eq(tether_buf_put_u32(b, 0xffffffff), 0);
	cr_assert_eq(tether_buf_get_cstring(b, &s, NULL, 1024),
		     TETHER_ERR_TOO_LARGE);
	cr_assert_eq(tether_buf_len(b), 4);
	tether_buf_free(b);
}

Test(buf, get_cstring_truncated_does_not_consume)
{
	struct tether_buf *b = new_buf(64);
	char *s = (char *)"sentinel";

	put_bytes(b, "\x00\x00\x00", 3);
	cr_assert_eq(tether_buf_get_cstring(b, &s, NULL, 64),
		     TETHER_ERR_INCOMPLETE);
	cr_assert_null(s);
	cr_assert_eq(tether_buf_len(b), 3);
	put_bytes(b,
		  "\x05"
		  "abcd",
		  5);
	cr_assert_eq(tether_buf_get_cstring(b, &s, NULL, 64),
		     TETHER_ERR_INCOMPLETE);
	cr_assert_eq(tether_buf_len(b), 8);
	put_bytes(b, "e", 1);
	cr_assert_eq(tether_buf_get_cstring(b, &s, NULL, 64), 0);
	cr_assert_str_eq(s, "abcde");
	tether_free(s);
	tether_buf_free(b);
}

Test(buf, get_cstring_nomem_does_not_consume)
{
	struct tether_buf *b = new_buf(64);
	char *s;

	cr_assert_eq(tether_buf_put_cstring(b, "abc"), 0);
	tether_alloc_fail_after(1);
	cr_assert_eq(tether_buf_get_cstring(b, &s, NULL, 64), TETHER_ERR_NOMEM);
	tether_alloc_fail_after(0);
	cr_assert_null(s);
	cr_assert_eq(tether_buf_len(b), 7);
	cr_assert_eq(tether_buf_get_cstring(b, &s, NULL, 64), 0);
	cr_assert_str_eq(s, "abc");
	tether_free(s);
	tether_buf_free(b);
}

Test(buf, get_string_direct)
{
	struct tether_buf *b = new_buf(64);
	const uint8_t *v;
	size_t len;

	cr_assert_eq(tether_buf_put_string(b, "a\0b", 3), 0);
	cr_assert_eq(tether_buf_put_string(b, "", 0), 0);
	put_bytes(b, "z", 1);
	cr_assert_eq(tether_buf_get_string_direct(b, &v, &len), 0);
	cr_assert_eq(len, 3);
	/* Not copied: embedded NULs are fine and v points into b. */
	cr_assert(memcmp(v, "a\0b", 3) == 0);
	cr_assert_eq(v + 3, tether_buf_ptr(b));
	cr_assert_eq(tether_buf_get_string_direct(b, &v, NULL), 0);
	assert_contents(b, "z", 1);
	tether_buf_free(b);
}

Test(buf, get_string_direct_truncated_does_not_consume)
{
	struct tether_buf *b = new_buf(64);
	const uint8_t *v = (const uint8_t *)"sentinel";
	size_t len = 99;

	put_bytes(b,
		  "\x00\x00\x00\x04"
		  "abc",
		  7);
	cr_assert_eq(tether_buf_get_string_direct(b, &v, &len),
		     TETHER_ERR_INCOMPLETE);
	cr_assert_null(v);
	cr_assert_eq(len, 0);
	cr_assert_eq(tether_buf_len(b), 7);
	tether_buf_reset(b);
	/* 4 + 0xffffffff must not wrap on any size_t. */
	put_bytes(b,
		  "\xff\xff\xff\xff"
		  "abc",
		  7);
	cr_assert_eq(tether_buf_get_string_direct(b, &v, &len),
		     TETHER_ERR_INCOMPLETE);
	cr_assert_eq(tether_buf_len(b), 7);
	tether_buf_reset(b);
	put_bytes(b, "\x00\x00", 2);
	cr_assert_eq(tether_buf_get_string_direct(b, &v, &len),
		     TETHER_ERR_INCOMPLETE);
	cr_assert_eq(tether_buf_len(b), 2);
	tether_buf_free(b);
}

Test(buf, get_end_trailing_data)
{
	struct tether_buf *b = new_buf(64);
	uint8_t v;

	cr_assert_eq(tether_buf_get_end(b), 0);
	cr_assert_eq(tether_buf_put_u16(b, 7), 0);
	cr_assert_eq(tether_buf_get_u8(b, &v), 0);
	cr_assert_eq(tether_buf_get_end(b), TETHER_ERR_TRAILING_DATA);
	cr_assert_eq(tether_buf_get_u8(b, &v), 0);
	cr_assert_eq(tether_buf_get_end(b), 0);
	tether_buf_free(b);
}

Test(buf, poke_u32)
{
	static const uint8_t want[] = {0x00, 0x00, 0x00, 0x03, 'a', 'b', 'c'};
	static const uint8_t want2[] = {0x00, 0x00, 0x00, 0x03,
					0xca, 0xfe, 0xba, 0xbe};
	struct tether_buf *b = new_buf(64);

	/* Length back-patching, as for a message with a u32 length prefix. */
	cr_assert_eq(tether_buf_put_u32(b, 0), 0);
	put_bytes(b, "abc", 3);
	cr_assert_eq(tether_buf_poke_u32(b, 0, (uint32_t)tether_buf_len(b) - 4),
		     0);
	assert_contents(b, want, sizeof(want));
	cr_assert_eq(tether_buf_poke_u32(b, 3, 0xcafebabe), 0);
	cr_assert_eq(tether_buf_poke_u32(b, 4, 1), TETHER_ERR_INCOMPLETE);
	cr_assert_eq(tether_buf_poke_u32(b, SIZE_MAX - 1, 1),
		     TETHER_ERR_INCOMPLETE);
	assert_contents(b, "\x00\x00\x00\xca\xfe\xba\xbe", 7);
	/* The offset is from the read position, not the allocation. */
	tether_buf_reset(b);
	put_bytes(b, "x\0\0\0\0wxyz", 9);
	cr_assert_eq(tether_buf_consume(b, 1), 0);
	cr_assert_eq(tether_buf_poke_u32(b, 0, 3), 0);
	cr_assert_eq(tether_buf_poke_u32(b, 4, 0xcafebabe), 0);
	assert_contents(b, want2, sizeof(want2));
	tether_buf_free(b);
}

Test(buf, from_reads_caller_memory)
{
	static const uint8_t data[] = {0, 0, 0, 2, 'o', 'k', 0x7f};
	struct tether_buf *b = tether_buf_from(data, sizeof(data));
	uint8_t v;
	char *s;

	cr_assert_not_null(b);
	cr_assert_eq(tether_buf_ptr(b), data);
	cr_assert_eq(tether_buf_len(b), sizeof(data));
	cr_assert_eq(tether_buf_get_cstring(b, &s, NULL, 16), 0);
	cr_assert_str_eq(s, "ok");
	tether_free(s);
	cr_assert_eq(tether_buf_get_u8(b, &v), 0);
	cr_assert_eq(v, 0x7f);
	cr_assert_eq(tether_buf_get_u8(b, &v), TETHER_ERR_INCOMPLETE);
	cr_assert_eq(tether_buf_get_end(b), 0);
	tether_buf_free(b);
}

Test(buf, from_is_read_only)
{
	uint8_t data[] = {'a', 'b', 'c', 'd'};
	struct tether_buf *b = tether_buf_from(data, sizeof(data));
	uint8_t *p;

	cr_assert_not_null(b);
	cr_assert_eq(tether_buf_put_u8(b, 1), TETHER_ERR_INVALID);
	cr_assert_eq(tether_buf_put_u16(b, 1), TETHER_ERR_INVALID);
	cr_assert_eq(tether_buf_put_u32(b, 1), TETHER_ERR_INVALID);
	cr_assert_eq(tether_buf_put_u64(b, 1), TETHER_ERR_INVALID);
	cr_assert_eq(tether_buf_put(b, "x", 1), TETHER_ERR_INVALID);
	cr_assert_eq(tether_buf_put(b, NULL, 0), TETHER_ERR_INVALID);
	cr_assert_eq(tether_buf_put_cstring(b, "x"), TETHER_ERR_INVALID);
	cr_assert_eq(tether_buf_reserve(b, 1, &p), TETHER_ERR_INVALID);
	cr_assert_eq(tether_buf_check_reserve(b, 0), TETHER_ERR_INVALID);
	cr_assert_eq(tether_buf_poke_u32(b, 0, 0x31323334), TETHER_ERR_INVALID);
	/* Even after consuming, the caller's memory is never written. */
	cr_assert_eq(tether_buf_consume(b, 2), 0);
	cr_assert_eq(tether_buf_put(b, "xy", 2), TETHER_ERR_INVALID);
	cr_assert(memcmp(data, "abcd", 4) == 0);
	assert_contents(b, "cd", 2);
	tether_buf_free(b);
	cr_assert(memcmp(data, "abcd", 4) == 0);
}

Test(buf, consume_bounds)
{
	struct tether_buf *b = new_buf(64);

	put_bytes(b, "abcdef", 6);
	cr_assert_eq(tether_buf_consume(b, 7), TETHER_ERR_INCOMPLETE);
	cr_assert_eq(tether_buf_consume(b, SIZE_MAX), TETHER_ERR_INCOMPLETE);
	assert_contents(b, "abcdef", 6);
	cr_assert_eq(tether_buf_consume(b, 0), 0);
	cr_assert_eq(tether_buf_consume(b, 2), 0);
	assert_contents(b, "cdef", 4);
	cr_assert_eq(tether_buf_consume(b, 4), 0);
	cr_assert_eq(tether_buf_len(b), 0);
	cr_assert_eq(tether_buf_consume(b, 1), TETHER_ERR_INCOMPLETE);
	cr_assert_eq(tether_buf_consume(b, 0), 0);
	tether_buf_free(b);
}

Test(buf, consume_end_bounds)
{
	struct tether_buf *b = new_buf(64);

	put_bytes(b, "abcdef", 6);
	cr_assert_eq(tether_buf_consume(b, 1), 0);
	cr_assert_eq(tether_buf_consume_end(b, 6), TETHER_ERR_INCOMPLETE);
	cr_assert_eq(tether_buf_consume_end(b, SIZE_MAX),
		     TETHER_ERR_INCOMPLETE);
	assert_contents(b, "bcdef", 5);
	cr_assert_eq(tether_buf_consume_end(b, 2), 0);
	assert_contents(b, "bcd", 3);
	cr_assert_eq(tether_buf_consume_end(b, 3), 0);
	cr_assert_eq(tether_buf_len(b), 0);
	/* The buffer stays usable after being drained from the end. */
	put_bytes(b, "xyz", 3);
	assert_contents(b, "xyz", 3);
	tether_buf_free(b);
}

Test(buf, reset)
{
	uint8_t data[] = {1, 2, 3};
	struct tether_buf *b = new_buf(8);
	struct tether_buf *ro;

	put_bytes(b, "abcdefgh", 8);
	cr_assert_eq(tether_buf_consume(b, 3), 0);
	tether_buf_reset(b);
	cr_assert_eq(tether_buf_len(b), 0);
	cr_assert_eq(tether_buf_max_size(b), 8);
	/* The whole max_size is available again. */
	put_bytes(b, "ABCDEFGH", 8);
	assert_contents(b, "ABCDEFGH", 8);
	tether_buf_free(b);

	ro = tether_buf_from(data, sizeof(data));
	cr_assert_not_null(ro);
	tether_buf_reset(ro);
	cr_assert_eq(tether_buf_len(ro), 0);
	cr_assert(memcmp(data, "\x01\x02\x03", 3) == 0);
	tether_buf_free(ro);
}

/*
 * Pushes 1 MiB through a 20000-byte buffer in odd-sized puts interleaved
 * with odd-sized gets, so the buffer grows, compacts and wraps many times;
 * every byte must come out in order.
 */
Test(buf, growth_and_compaction_keep_data)
{
	const size_t total = 1024 * 1024, max = 20000;
	struct tether_buf *b = new_buf(max);
	uint8_t chunk[4099], out[4099];
	size_t in_off = 0, out_off = 0, step = 0, n, i;

	while (out_off < total) {
		n = 1 + 2 * ((step * 37) % 2050); /* odd, 1..4099 */
		if (n > total - in_off)
			n = total - in_off;
		if (n > 0 && tether_buf_len(b) + n <= max) {
			for (i = 0; i < n; i++)
				chunk[i] = pattern(in_off + i);
			put_bytes(b, chunk, n);
			in_off += n;
		} else if (n > 0) {
			cr_assert_eq(tether_buf_put(b, chunk, n),
				     TETHER_ERR_TOO_LARGE);
		}
		cr_assert_leq(tether_buf_len(b), max);
		n = 1 + 2 * ((step * 53 + 7) % 1500);
		if (n > tether_buf_len(b))
			n = tether_buf_len(b);
		cr_assert_eq(tether_buf_get(b, out, n), 0);
		for (i = 0; i < n; i++)
			cr_assert_eq(out[i], pattern(out_off + i),
				     "byte %zu differs", out_off + i);
		out_off += n;
		cr_assert_eq(tether_buf_len(b), in_off - out_off);
		step++;
	}
	cr_assert_eq(in_off, total);
	cr_assert_eq(tether_buf_get_end(b), 0);
	tether_buf_free(b);
}

/* Growth right up to an odd max_size, one byte at a time. */
Test(buf, grows_exactly_to_max)
{
	const size_t max = 1000;
	struct tether_buf *b = new_buf(max);
	size_t i;

	for (i = 0; i < max; i++)
		cr_assert_eq(tether_buf_put_u8(b, pattern(i)), 0);
	cr_assert_eq(tether_buf_put_u8(b, 0), TETHER_ERR_TOO_LARGE);
	for (i = 0; i < max; i++)
		cr_assert_eq(tether_buf_ptr(b)[i], pattern(i));
	tether_buf_free(b);
}

Test(buf, nomem_on_first_put_leaves_buffer_unchanged)
{
	struct tether_buf *b = new_buf(1024);

	tether_alloc_fail_after(1);
	cr_assert_eq(tether_buf_put_u32(b, 1), TETHER_ERR_NOMEM);
	tether_alloc_fail_after(0);
	cr_assert_eq(tether_buf_len(b), 0);
	cr_assert_eq(tether_buf_put_u32(b, 0x61626364), 0);
	assert_contents(b, "abcd", 4);
	tether_buf_free(b);
}

Test(buf, nomem_on_growth_leaves_buffer_unchanged)
{
	struct tether_buf *b = new_buf(1 << 20);
	uint8_t data[600], big[700];
	uint8_t *p = (uint8_t *)"sentinel";
	size_t i;

	for (i = 0; i < sizeof(data); i++)
		data[i] = pattern(i);
	memset(big, 'z', sizeof(big));
	put_bytes(b, data, sizeof(data));
	/* Read offset > 0 so the failed growth first compacts. */
	cr_assert_eq(tether_buf_consume(b, 17), 0);
	tether_alloc_fail_after(1);
	cr_assert_eq(tether_buf_put(b, big, sizeof(big)), TETHER_ERR_NOMEM);
	tether_alloc_fail_after(1);
	cr_assert_eq(tether_buf_put_string(b, big, sizeof(big)),
		     TETHER_ERR_NOMEM);
	tether_alloc_fail_after(1);
	cr_assert_eq(tether_buf_reserve(b, sizeof(big), &p), TETHER_ERR_NOMEM);
	cr_assert_null(p);
	tether_alloc_fail_after(0);
	assert_contents(b, data + 17, sizeof(data) - 17);
	/* And it still works once memory is back. */
	put_bytes(b, big, sizeof(big));
	cr_assert_eq(tether_buf_len(b), sizeof(data) - 17 + sizeof(big));
	cr_assert(memcmp(tether_buf_ptr(b), data + 17, sizeof(data) - 17) == 0);
	tether_buf_free(b);
}

Test(buf, nomem_on_new)
{
	tether_alloc_fail_after(1);
	cr_assert_null(tether_buf_new(64));
	tether_alloc_fail_after(1);
	cr_assert_null(tether_buf_from("x", 1));
	tether_alloc_fail_after(0);
}
