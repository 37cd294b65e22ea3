/*
 * Sealed message bodies (tether/msg.h).  For every body: the exact wire
 * bytes of docs/protocol.md in both directions, then the decoder's
 * contract on them: cut short at every length, trailing data, an empty
 * body, oversize fields refused before anything is allocated for them,
 * fields out of range, zero-length strings and counts, every allocation
 * failure, and an output left all zero by every failure.  Bodies are
 * decoded from heap copies of exactly their length, so that a sanitizer
 * sees any read past the end.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include <tether/alloc.h>
#include <tether/buf.h>
#include <tether/err.h>
#include <tether/frame.h>
#include <tether/msg.h>
#include <tether/seal.h>
#include <tether/proto.h>
#include <tether/xfer.h>

static void fini(void)
{
	/* A test that fails midway must not leave allocations failing. */
	tether_alloc_fail_after(0);
}

TestSuite(msg, .fini = fini);

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- Helpers ------------------------------------------------------------ */

static bool all_zero(const void *p, size_t n)
{
	const uint8_t *q = p;
	size_t i;

	for (i = 0; i < n; i++)
		if (q[i] != 0)
			return false;
	return true;
}

static struct tether_buf *new_buf(size_t max)
{
	struct tether_buf *b = tether_buf_new(max);

	cr_assert_not_null(b);
	return b;
}

static void assert_bytes(const struct tether_buf *b, const uint8_t *want,
			 size_t n)
{
	cr_assert_eq(tether_buf_len(b), n, "len %zu, want %zu",
		     tether_buf_len(b), n);
	if (n > 0)
		cr_assert(memcmp(tether_buf_ptr(b), want, n) == 0,
			  "encoded bytes differ");
}

/* A heap copy of exactly n bytes (never NULL, even for n == 0). */
static uint8_t *copy_of(const uint8_t *p, size_t n)
{
	uint8_t *c = malloc(n > 0 ? n : 1);

	cr_assert_not_null(c);
	if (n > 0)
		memcpy(c, p, n);
	return c;
}

/*
 * One decoder behind a common signature: decodes (from an exact-size
 * copy), checks that a failure left the output all zero, frees what a
 * success gave, and returns the decoder's result.
 */
typedef int (*decode_fn)(const uint8_t *body, size_t len);

#define CHECKED_DECODER(NAME, CLEAR)                                           \
	static int check_##NAME(const uint8_t *body, size_t len)               \
	{                                                                      \
		struct tether_msg_##NAME m;                                    \
		uint8_t *c = copy_of(body, len);                               \
		int r = tether_msg_decode_##NAME(c, len, &m);                  \
                                                                               \
		if (r != 0)                                                    \
			cr_assert(all_zero(&m, sizeof(m)),                     \
				  #NAME ": a failed decode left output");      \
		else                                                           \
			CLEAR(&m);                                             \
		free(c);                                                       \
		return r;                                                      \
	}

#define NOTHING(m) ((void)(m))

CHECKED_DECODER(exec, tether_msg_clear_exec)
CHECKED_DECODER(shell, tether_msg_clear_shell)
CHECKED_DECODER(resize, NOTHING)
CHECKED_DECODER(exit, NOTHING)
CHECKED_DECODER(eof, NOTHING)
CHECKED_DECODER(error, tether_msg_clear_error)
CHECKED_DECODER(window, NOTHING)
CHECKED_DECODER(forward, tether_msg_clear_forward)
CHECKED_DECODER(info, tether_msg_clear_info)
CHECKED_DECODER(get, tether_msg_clear_get)
CHECKED_DECODER(put, tether_msg_clear_put)
CHECKED_DECODER(entry, tether_msg_clear_entry)
CHECKED_DECODER(accept, NOTHING)
CHECKED_DECODER(block, NOTHING)
CHECKED_DECODER(file_end, tether_msg_clear_file_end)
CHECKED_DECODER(result, tether_msg_clear_result)
CHECKED_DECODER(skip, tether_msg_clear_skip)

static int check_empty(const uint8_t *body, size_t len)
{
	uint8_t *c = copy_of(body, len);
	int r = tether_msg_decode_empty(c, len);

	free(c);
	return r;
}

/*
 * body declares a field over its cap.  The decoder makes `before`
 * allocations of its own first (its reader, then the strings and arrays
 * ahead of that field); it must answer TETHER_ERR_TOO_LARGE without one
 * more, so the next allocation is still the one armed to fail.
 */
static void assert_refused_before_alloc(decode_fn decode, const uint8_t *body,
					size_t len, unsigned long before)
{
	void *p;
	int r;

	tether_alloc_fail_after(before + 1);
	r = decode(body, len);
	p = tether_malloc(1);
	tether_alloc_fail_after(0);
	cr_assert_eq(r, TETHER_ERR_TOO_LARGE, "got %s", tether_strerror(r));
	cr_assert_null(p, "the decoder allocated for an oversize field");
}

/* A body built with the buffer's own putters, for the bigger cases. */
static struct tether_buf *body_buf(void)
{
	return new_buf(TETHER_BUF_SIZE_MAX);
}

static void put_u8(struct tether_buf *b, uint8_t v)
{
	cr_assert_eq(tether_buf_put_u8(b, v), 0);
}

static void put_u16(struct tether_buf *b, uint16_t v)
{
	cr_assert_eq(tether_buf_put_u16(b, v), 0);
}

static void put_u32(struct tether_buf *b, uint32_t v)
{
	cr_assert_eq(tether_buf_put_u32(b, v), 0);
}

static void put_u64(struct tether_buf *b, uint64_t v)
{
	cr_assert_eq(tether_buf_put_u64(b, v), 0);
}

/* A string of n bytes of c, length first. */
static void put_fill(struct tether_buf *b, size_t n, char c)
{
	uint8_t *p;

	put_u32(b, (uint32_t)n);
	cr_assert_eq(tether_buf_reserve(b, n, &p), 0);
	memset(p, c, n);
}

static void put_str(struct tether_buf *b, const char *s)
{
	cr_assert_eq(tether_buf_put_cstring(b, s), 0);
}

static int decode_buf(decode_fn decode, const struct tether_buf *b)
{
	return decode(tether_buf_ptr(b), tether_buf_len(b));
}

static void assert_decode_buf(decode_fn decode, struct tether_buf *b, int want)
{
	int r = decode_buf(decode, b);

	cr_assert_eq(r, want, "got %s, want %s", tether_strerror(r),
		     tether_strerror(want));
	tether_buf_free(b);
}

/* ---- The wire bytes of one sample of every body ---------------------- */

static const uint8_t exec_wire[] = {
    0, 0, 0, 2, 0, 0, 0, 2, 'l', 's', 0, 0, 0, 2, '-', 'l',
};
static const uint8_t shell_wire[] = {
    1, 0,  0, 0, 5, 'x', 't', 'e', 'r', 'm', 0,	  80,
    0, 24, 0, 0, 0, 1,	 0,   0,   0,	2,   's', 'h',
};
static const uint8_t resize_wire[] = {0, 132, 0, 43};
static const uint8_t exit_wire[] = {1, 0, 0, 0, 9};
static const uint8_t eof_wire[] = {2};
static const uint8_t error_wire[] = {0, 0, 0, 2, 'n', 'o'};
static const uint8_t window_wire[] = {1, 2, 3, 4};
static const uint8_t forward_wire[] = {
    0, 0, 0, 9, '1', '2', '7', '.', '0', '.', '0', '.', '1', 0, 22,
};
static const uint8_t info_wire[] = {0, 0, 0, 2, '{', '}'};
static const uint8_t get_wire[] = {
    1, 0, 0, 0, 2, 0, 0, 0, 1, 'a', 0, 0, 0, 5, '*', '.', 'l', 'o', 'g',
};
static const uint8_t put_wire[] = {3, 0, 0, 0, 4, '/', 't', 'm', 'p'};
static const uint8_t entry_wire[] = {
    3,	  0,	0,    0,    3,	  'd',	'/',  'l', 0, 0, 1,   0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0,   0, 0, 5,   0,    0,
    0,	  0,	0,    0,    0,	  0,	0,    0,   0, 1, 't',
};
static const uint8_t accept_wire[] = {1, 2, 3, 4, 5, 6, 7, 8};
static const uint8_t block_wire[] = {1, 'z', 'z'};
static const uint8_t file_end_ok_wire[] = {
    1,	0,  1,	2,  3,	4,  5,	6,  7,	8,  9,	10, 11, 12, 13, 14, 15,
    16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
};
static const uint8_t file_end_fail_wire[] = {0, 0, 0, 0, 3, 'w', 'h', 'y'};
static const uint8_t result_wire[] = {0, 0, 0, 0, 4, 'f', 'u', 'l', 'l'};
static const uint8_t skip_wire[] = {0, 0, 0, 1, 'p', 0, 0, 0, 1, 'r'};

struct sample {
	const char *name;
	decode_fn decode;
	const uint8_t *body;
	size_t len;
	bool open_ended; /* BLOCK: its data runs to the end of the body */
};

#define SAMPLE(NAME, FN, WIRE)                                                 \
	{                                                                      \
		NAME, FN, WIRE, sizeof(WIRE), false                            \
	}

static const struct sample samples[] = {
    SAMPLE("exec", check_exec, exec_wire),
    SAMPLE("shell", check_shell, shell_wire),
    SAMPLE("resize", check_resize, resize_wire),
    SAMPLE("exit", check_exit, exit_wire),
    SAMPLE("eof", check_eof, eof_wire),
    SAMPLE("error", check_error, error_wire),
    SAMPLE("window", check_window, window_wire),
    SAMPLE("forward", check_forward, forward_wire),
    SAMPLE("info", check_info, info_wire),
    SAMPLE("get", check_get, get_wire),
    SAMPLE("put", check_put, put_wire),
    SAMPLE("entry", check_entry, entry_wire),
    SAMPLE("accept", check_accept, accept_wire),
    {"block", check_block, block_wire, sizeof(block_wire), true},
    SAMPLE("file_end ok", check_file_end, file_end_ok_wire),
    SAMPLE("file_end failed", check_file_end, file_end_fail_wire),
    SAMPLE("result", check_result, result_wire),
    SAMPLE("skip", check_skip, skip_wire),
    {"empty", check_empty, NULL, 0, false},
};

/* ---- Every body: the decoder's contract ------------------------------- */

Test(msg, every_sample_decodes)
{
	size_t i;
	int r;

	for (i = 0; i < ARRAY_LEN(samples); i++) {
		r = samples[i].decode(samples[i].body, samples[i].len);
		cr_assert_eq(r, 0, "%s: %s", samples[i].name,
			     tether_strerror(r));
	}
}

Test(msg, truncated_at_every_length_fails)
{
	const struct sample *s;
	size_t i, k;
	int r;

	for (i = 0; i < ARRAY_LEN(samples); i++) {
		s = &samples[i];
		for (k = 0; k < s->len; k++) {
			r = s->decode(s->body, k);
			/* A BLOCK cut after its encoding is a shorter BLOCK. */
			if (s->open_ended && k > 0)
				cr_assert_eq(r, 0, "%s cut to %zu: %s", s->name,
					     k, tether_strerror(r));
			else
				cr_assert_eq(r, TETHER_ERR_INCOMPLETE,
					     "%s cut to %zu: %s", s->name, k,
					     tether_strerror(r));
		}
	}
}

Test(msg, trailing_data_refused)
{
	const struct sample *s;
	uint8_t longer[64];
	size_t i;
	int r;

	for (i = 0; i < ARRAY_LEN(samples); i++) {
		s = &samples[i];
		cr_assert_lt(s->len, sizeof(longer));
		if (s->len > 0)
			memcpy(longer, s->body, s->len);
		longer[s->len] = 0;
		r = s->decode(longer, s->len + 1);
		/* A BLOCK has no end but the body's: the byte is data. */
		cr_assert_eq(r, s->open_ended ? 0 : TETHER_ERR_TRAILING_DATA,
			     "%s + 1: %s", s->name, tether_strerror(r));
	}
}

Test(msg, empty_body_is_only_an_empty_message)
{
	const struct sample *s;
	size_t i;
	int r;

	for (i = 0; i < ARRAY_LEN(samples); i++) {
		s = &samples[i];
		r = s->decode(NULL, 0);
		cr_assert_eq(r, s->len == 0 ? 0 : TETHER_ERR_INCOMPLETE,
			     "%s empty: %s", s->name, tether_strerror(r));
	}
}

Test(msg, every_allocation_failure_is_nomem)
{
	const struct sample *s;
	unsigned long n;
	size_t i;
	int r;

	/* LeakSanitizer (if on) catches a leak on any failure path. */
	for (i = 0; i < ARRAY_LEN(samples); i++) {
		s = &samples[i];
		for (n = 1; n < 16; n++) {
			tether_alloc_fail_after(n);
			r = s->decode(s->body, s->len);
			tether_alloc_fail_after(0);
			if (r == 0)
				break;
			cr_assert_eq(r, TETHER_ERR_NOMEM,
				     "%s, failing #%lu: %s", s->name, n,
				     tether_strerror(r));
		}
		cr_assert_lt(n, 16, "%s never decoded", s->name);
	}
}

/* ---- Encoders ---------------------------------------------------------- */

/* A failed encode leaves what was in the buffer, and only that. */
Test(msg, encode_failure_leaves_buffer_as_it_was)
{
	static char *argv[] = {"ls", "-l"};
	const struct tether_msg_exec m = {.argc = 2, .argv = argv};
	struct tether_buf *b = new_buf(8);

	cr_assert_eq(tether_buf_put(b, "ab", 2), 0);
	cr_assert_eq(tether_msg_encode_exec(b, &m), TETHER_ERR_TOO_LARGE);
	assert_bytes(b, (const uint8_t *)"ab", 2);
	tether_buf_free(b);

	b = new_buf(1024);
	tether_alloc_fail_after(1);
	cr_assert_eq(tether_msg_encode_exec(b, &m), TETHER_ERR_NOMEM);
	tether_alloc_fail_after(0);
	cr_assert_eq(tether_buf_len(b), 0);
	tether_buf_free(b);
}

Test(msg, encode_appends)
{
	const struct tether_msg_eof m = {.stream = 1};
	struct tether_buf *b = new_buf(16);

	cr_assert_eq(tether_buf_put_u8(b, 0xee), 0);
	cr_assert_eq(tether_msg_encode_eof(b, &m), 0);
	assert_bytes(b, (const uint8_t[]){0xee, 1}, 2);
	tether_buf_free(b);
}

/* A NULL string goes out as an empty one. */
Test(msg, encode_null_string_as_empty)
{
	const struct tether_msg_skip m = {.path = NULL, .reason = NULL};
	struct tether_buf *b = new_buf(64);

	cr_assert_eq(tether_msg_encode_skip(b, &m), 0);
	assert_bytes(b, (const uint8_t[]){0, 0, 0, 0, 0, 0, 0, 0}, 8);
	tether_buf_free(b);
}

Test(msg, encode_empty_appends_nothing)
{
	struct tether_buf *b = new_buf(16);

	cr_assert_eq(tether_msg_encode_empty(b), 0);
	cr_assert_eq(tether_buf_len(b), 0);
	tether_buf_free(b);
}

/* ---- EXEC -------------------------------------------------------------- */

Test(msg, exec_round_trip)
{
	static char *argv[] = {"ls", "-l"};
	const struct tether_msg_exec in = {.argc = 2, .argv = argv};
	struct tether_buf *b = new_buf(TETHER_FRAME_MAX);
	struct tether_msg_exec m;

	cr_assert_eq(tether_msg_encode_exec(b, &in), 0);
	assert_bytes(b, exec_wire, sizeof(exec_wire));
	cr_assert_eq(tether_msg_decode_exec(exec_wire, sizeof(exec_wire), &m),
		     0);
	cr_assert_eq(m.argc, 2);
	cr_assert_str_eq(m.argv[0], "ls");
	cr_assert_str_eq(m.argv[1], "-l");
	cr_assert_null(m.argv[2], "argv is NULL-terminated");
	tether_msg_clear_exec(&m);
	cr_assert(all_zero(&m, sizeof(m)));
	/* Clearing twice, or a zeroed struct, is harmless. */
	tether_msg_clear_exec(&m);
	tether_buf_free(b);
}

Test(msg, exec_zero_words_and_empty_words)
{
	static const uint8_t none[] = {0, 0, 0, 0};
	static const uint8_t empty[] = {0, 0, 0, 1, 0, 0, 0, 0};
	struct tether_msg_exec m;

	/* argc 0 is a diag request: the body's business is only its form. */
	cr_assert_eq(tether_msg_decode_exec(none, sizeof(none), &m), 0);
	cr_assert_eq(m.argc, 0);
	cr_assert_not_null(m.argv);
	cr_assert_null(m.argv[0]);
	tether_msg_clear_exec(&m);
	cr_assert_eq(tether_msg_decode_exec(empty, sizeof(empty), &m), 0);
	cr_assert_str_eq(m.argv[0], "");
	tether_msg_clear_exec(&m);
}

Test(msg, exec_nul_in_word_refused)
{
	static const uint8_t nul[] = {0, 0, 0, 1, 0, 0, 0, 2, 'a', 0};

	cr_assert_eq(check_exec(nul, sizeof(nul)), TETHER_ERR_FORMAT);
}

Test(msg, exec_caps)
{
	struct tether_buf *b;
	int i;

	/* Words: the count before the array. */
	b = body_buf();
	put_u32(b, TETHER_MSG_ARGC_MAX + 1);
	assert_refused_before_alloc(check_exec, tether_buf_ptr(b),
				    tether_buf_len(b), 1);
	tether_buf_free(b);
	/* More words than the body could hold: not even an array. */
	b = body_buf();
	put_u32(b, 3);
	put_str(b, "a");
	assert_decode_buf(check_exec, b, TETHER_ERR_INCOMPLETE);
	/* As many as allowed, all empty. */
	b = body_buf();
	put_u32(b, TETHER_MSG_ARGC_MAX);
	for (i = 0; i < TETHER_MSG_ARGC_MAX; i++)
		put_str(b, "");
	assert_decode_buf(check_exec, b, 0);
	/* One word over its cap, after the array. */
	b = body_buf();
	put_u32(b, 1);
	put_fill(b, TETHER_MSG_ARG_MAX + 1, 'x');
	assert_refused_before_alloc(check_exec, tether_buf_ptr(b),
				    tether_buf_len(b), 2);
	tether_buf_free(b);
	b = body_buf();
	put_u32(b, 1);
	put_fill(b, TETHER_MSG_ARG_MAX, 'x');
	assert_decode_buf(check_exec, b, 0);
	/* All words together: four of 64 KiB fill the cap, a fifth is over. */
	b = body_buf();
	put_u32(b, 4);
	for (i = 0; i < 4; i++)
		put_fill(b, TETHER_MSG_ARG_MAX, 'x');
	cr_assert_eq(4 * TETHER_MSG_ARG_MAX, TETHER_MSG_ARGV_BYTES_MAX);
	assert_decode_buf(check_exec, b, 0);
	b = body_buf();
	put_u32(b, 5);
	for (i = 0; i < 5; i++)
		put_fill(b, i < 4 ? TETHER_MSG_ARG_MAX : 1, 'x');
	assert_refused_before_alloc(check_exec, tether_buf_ptr(b),
				    tether_buf_len(b), 2 + 4);
	tether_buf_free(b);
}

/* ---- SHELL ------------------------------------------------------------- */

Test(msg, shell_round_trip)
{
	static char *argv[] = {"sh"};
	const struct tether_msg_shell in = {.flags = TETHER_SHELL_PTY,
					    .term = "xterm",
					    .cols = 80,
					    .rows = 24,
					    .argc = 1,
					    .argv = argv};
	struct tether_buf *b = new_buf(TETHER_FRAME_MAX);
	struct tether_msg_shell m;

	cr_assert_eq(tether_msg_encode_shell(b, &in), 0);
	assert_bytes(b, shell_wire, sizeof(shell_wire));
	cr_assert_eq(
	    tether_msg_decode_shell(shell_wire, sizeof(shell_wire), &m), 0);
	cr_assert_eq(m.flags, TETHER_SHELL_PTY);
	cr_assert_str_eq(m.term, "xterm");
	cr_assert_eq(m.cols, 80);
	cr_assert_eq(m.rows, 24);
	cr_assert_eq(m.argc, 1);
	cr_assert_str_eq(m.argv[0], "sh");
	cr_assert_null(m.argv[1]);
	tether_msg_clear_shell(&m);
	cr_assert(all_zero(&m, sizeof(m)));
	tether_buf_free(b);
}

Test(msg, shell_login_shell_and_empty_term)
{
	static const uint8_t login[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
	struct tether_msg_shell m;

	cr_assert_eq(tether_msg_decode_shell(login, sizeof(login), &m), 0);
	cr_assert_str_eq(m.term, "");
	cr_assert_eq(m.argc, 0);
	cr_assert_null(m.argv[0]);
	tether_msg_clear_shell(&m);
}

Test(msg, shell_unknown_flags_refused)
{
	uint8_t body[sizeof(shell_wire)];

	memcpy(body, shell_wire, sizeof(body));
	body[0] = TETHER_SHELL_PTY | 0x02;
	cr_assert_eq(check_shell(body, sizeof(body)), TETHER_ERR_FORMAT);
	body[0] = 0x80;
	cr_assert_eq(check_shell(body, sizeof(body)), TETHER_ERR_FORMAT);
}

Test(msg, shell_caps)
{
	struct tether_buf *b;

	b = body_buf();
	put_u8(b, 0);
	put_fill(b, TETHER_MSG_TERM_MAX + 1, 'x');
	assert_refused_before_alloc(check_shell, tether_buf_ptr(b),
				    tether_buf_len(b), 1);
	tether_buf_free(b);
	b = body_buf();
	put_u8(b, 0);
	put_fill(b, TETHER_MSG_TERM_MAX, 'x');
	put_u16(b, 0);
	put_u16(b, 0);
	put_u32(b, 0);
	assert_decode_buf(check_shell, b, 0);
	/* The words as EXEC's: the count after TERM's copy. */
	b = body_buf();
	put_u8(b, 0);
	put_str(b, "dumb");
	put_u16(b, 0);
	put_u16(b, 0);
	put_u32(b, TETHER_MSG_ARGC_MAX + 1);
	assert_refused_before_alloc(check_shell, tether_buf_ptr(b),
				    tether_buf_len(b), 2);
	tether_buf_free(b);
	b = body_buf();
	put_u8(b, 0);
	put_str(b, "dumb");
	put_u16(b, 0);
	put_u16(b, 0);
	put_u32(b, 1);
	put_fill(b, TETHER_MSG_ARG_MAX + 1, 'x');
	assert_refused_before_alloc(check_shell, tether_buf_ptr(b),
				    tether_buf_len(b), 3);
	tether_buf_free(b);
}

/* ---- RESIZE, EXIT, EOF, WINDOW, ACCEPT --------------------------------- */

Test(msg, resize_round_trip)
{
	const struct tether_msg_resize in = {.cols = 132, .rows = 43};
	struct tether_buf *b = new_buf(16);
	struct tether_msg_resize m;

	cr_assert_eq(tether_msg_encode_resize(b, &in), 0);
	assert_bytes(b, resize_wire, sizeof(resize_wire));
	cr_assert_eq(
	    tether_msg_decode_resize(resize_wire, sizeof(resize_wire), &m), 0);
	cr_assert_eq(m.cols, 132);
	cr_assert_eq(m.rows, 43);
	tether_buf_free(b);
}

Test(msg, exit_round_trip_and_range)
{
	const struct tether_msg_exit in = {.how = TETHER_MSG_EXIT_SIGNAL,
					   .value = 9};
	static const uint8_t code[] = {0, 0xff, 0xff, 0xff, 0xff};
	static const uint8_t bad_how[] = {2, 0, 0, 0, 0};
	struct tether_buf *b = new_buf(16);
	struct tether_msg_exit m;

	cr_assert_eq(tether_msg_encode_exit(b, &in), 0);
	assert_bytes(b, exit_wire, sizeof(exit_wire));
	cr_assert_eq(tether_msg_decode_exit(exit_wire, sizeof(exit_wire), &m),
		     0);
	cr_assert_eq(m.how, TETHER_MSG_EXIT_SIGNAL);
	cr_assert_eq(m.value, 9);
	cr_assert_eq(tether_msg_decode_exit(code, sizeof(code), &m), 0);
	cr_assert_eq(m.how, TETHER_MSG_EXIT_CODE);
	cr_assert_eq(m.value, UINT32_MAX);
	cr_assert_eq(check_exit(bad_how, sizeof(bad_how)), TETHER_ERR_FORMAT);
	tether_buf_free(b);
}

Test(msg, eof_round_trip_and_range)
{
	const struct tether_msg_eof in = {.stream = TETHER_MSG_STREAM_STDERR};
	struct tether_buf *b = new_buf(16);
	struct tether_msg_eof m;
	uint8_t s;

	cr_assert_eq(tether_msg_encode_eof(b, &in), 0);
	assert_bytes(b, eof_wire, sizeof(eof_wire));
	for (s = 0; s <= TETHER_MSG_STREAM_STDERR; s++) {
		cr_assert_eq(tether_msg_decode_eof(&s, 1, &m), 0);
		cr_assert_eq(m.stream, s);
	}
	s = 3;
	cr_assert_eq(check_eof(&s, 1), TETHER_ERR_FORMAT);
	s = 0xff;
	cr_assert_eq(check_eof(&s, 1), TETHER_ERR_FORMAT);
	tether_buf_free(b);
}

Test(msg, window_round_trip)
{
	const struct tether_msg_window in = {.credit = 0x01020304};
	static const uint8_t zero[] = {0, 0, 0, 0};
	struct tether_buf *b = new_buf(16);
	struct tether_msg_window m;

	cr_assert_eq(tether_msg_encode_window(b, &in), 0);
	assert_bytes(b, window_wire, sizeof(window_wire));
	cr_assert_eq(
	    tether_msg_decode_window(window_wire, sizeof(window_wire), &m), 0);
	cr_assert_eq(m.credit, 0x01020304);
	cr_assert_eq(tether_msg_decode_window(zero, sizeof(zero), &m), 0);
	cr_assert_eq(m.credit, 0);
	tether_buf_free(b);
}

Test(msg, accept_round_trip)
{
	const struct tether_msg_accept in = {.offset = 0x0102030405060708};
	struct tether_buf *b = new_buf(16);
	struct tether_msg_accept m;

	cr_assert_eq(tether_msg_encode_accept(b, &in), 0);
	assert_bytes(b, accept_wire, sizeof(accept_wire));
	cr_assert_eq(
	    tether_msg_decode_accept(accept_wire, sizeof(accept_wire), &m), 0);
	cr_assert_eq(m.offset, 0x0102030405060708);
	tether_buf_free(b);
}

/* ---- ERROR, FORWARD ---------------------------------------------------- */

Test(msg, error_round_trip_and_empty)
{
	const struct tether_msg_error in = {.reason = "no"};
	static const uint8_t empty[] = {0, 0, 0, 0};
	struct tether_buf *b = new_buf(64);
	struct tether_msg_error m;

	cr_assert_eq(tether_msg_encode_error(b, &in), 0);
	assert_bytes(b, error_wire, sizeof(error_wire));
	cr_assert_eq(
	    tether_msg_decode_error(error_wire, sizeof(error_wire), &m), 0);
	cr_assert_str_eq(m.reason, "no");
	tether_msg_clear_error(&m);
	cr_assert_eq(tether_msg_decode_error(empty, sizeof(empty), &m), 0);
	cr_assert_str_eq(m.reason, "");
	tether_msg_clear_error(&m);
	tether_buf_free(b);
}

Test(msg, error_cap)
{
	struct tether_buf *b = body_buf();

	put_fill(b, TETHER_MSG_ERROR_MAX + 1, 'e');
	assert_refused_before_alloc(check_error, tether_buf_ptr(b),
				    tether_buf_len(b), 1);
	tether_buf_free(b);
	b = body_buf();
	put_fill(b, TETHER_MSG_ERROR_MAX, 'e');
	assert_decode_buf(check_error, b, 0);
}

Test(msg, forward_round_trip_and_empty)
{
	const struct tether_msg_forward in = {.host = "127.0.0.1", .port = 22};
	static const uint8_t empty[] = {0, 0, 0, 0, 0, 0};
	struct tether_buf *b = new_buf(64);
	struct tether_msg_forward m;

	cr_assert_eq(tether_msg_encode_forward(b, &in), 0);
	assert_bytes(b, forward_wire, sizeof(forward_wire));
	cr_assert_eq(
	    tether_msg_decode_forward(forward_wire, sizeof(forward_wire), &m),
	    0);
	cr_assert_str_eq(m.host, "127.0.0.1");
	cr_assert_eq(m.port, 22);
	tether_msg_clear_forward(&m);
	/* Host "" and port 0 are well formed; the agent refuses them. */
	cr_assert_eq(tether_msg_decode_forward(empty, sizeof(empty), &m), 0);
	cr_assert_str_eq(m.host, "");
	cr_assert_eq(m.port, 0);
	tether_msg_clear_forward(&m);
	tether_buf_free(b);
}

Test(msg, forward_cap)
{
	struct tether_buf *b = body_buf();

	put_fill(b, TETHER_MSG_HOST_MAX + 1, 'h');
	put_u16(b, 22);
	assert_refused_before_alloc(check_forward, tether_buf_ptr(b),
				    tether_buf_len(b), 1);
	tether_buf_free(b);
	b = body_buf();
	put_fill(b, TETHER_MSG_HOST_MAX, 'h');
	put_u16(b, 22);
	assert_decode_buf(check_forward, b, 0);
}

/* ---- INFO (the pairing info, sealed apart from channels) ---------------- */

Test(msg, info_round_trip_and_cap)
{
	const struct tether_msg_info in = {.info = "{}"};
	struct tether_buf *b = new_buf(64);
	struct tether_msg_info m;

	cr_assert_eq(tether_msg_encode_info(b, &in), 0);
	assert_bytes(b, info_wire, sizeof(info_wire));
	cr_assert_eq(tether_msg_decode_info(info_wire, sizeof(info_wire), &m),
		     0);
	cr_assert_str_eq(m.info, "{}");
	tether_msg_clear_info(&m);
	tether_buf_free(b);

	b = body_buf();
	put_fill(b, TETHER_MSG_INFO_MAX + 1, 'i');
	assert_refused_before_alloc(check_info, tether_buf_ptr(b),
				    tether_buf_len(b), 1);
	tether_buf_free(b);
	b = body_buf();
	put_fill(b, TETHER_MSG_INFO_MAX, 'i');
	assert_decode_buf(check_info, b, 0);
}

/* ---- GET, PUT ---------------------------------------------------------- */

Test(msg, get_round_trip)
{
	static char *paths[] = {"a", "*.log"};
	const struct tether_msg_get in = {
	    .flags = TETHER_XFER_RECURSIVE, .n = 2, .paths = paths};
	struct tether_buf *b = new_buf(TETHER_FRAME_MAX);
	struct tether_msg_get m;

	cr_assert_eq(tether_msg_encode_get(b, &in), 0);
	assert_bytes(b, get_wire, sizeof(get_wire));
	cr_assert_eq(tether_msg_decode_get(get_wire, sizeof(get_wire), &m), 0);
	cr_assert_eq(m.flags, TETHER_XFER_RECURSIVE);
	cr_assert_eq(m.n, 2);
	cr_assert_str_eq(m.paths[0], "a");
	cr_assert_str_eq(m.paths[1], "*.log");
	cr_assert_null(m.paths[2]);
	tether_msg_clear_get(&m);
	cr_assert(all_zero(&m, sizeof(m)));
	tether_buf_free(b);
}

Test(msg, get_none_and_empty_path)
{
	static const uint8_t none[] = {0, 0, 0, 0, 0};
	static const uint8_t empty[] = {0, 0, 0, 0, 1, 0, 0, 0, 0};
	struct tether_msg_get m;

	/* Nothing asked for is well formed; the agent refuses it. */
	cr_assert_eq(tether_msg_decode_get(none, sizeof(none), &m), 0);
	cr_assert_eq(m.n, 0);
	tether_msg_clear_get(&m);
	cr_assert_eq(tether_msg_decode_get(empty, sizeof(empty), &m), 0);
	cr_assert_str_eq(m.paths[0], "");
	tether_msg_clear_get(&m);
}

Test(msg, get_put_flags)
{
	uint8_t body[sizeof(get_wire)];
	uint8_t pbody[sizeof(put_wire)];

	memcpy(body, get_wire, sizeof(body));
	memcpy(pbody, put_wire, sizeof(pbody));
	body[0] = TETHER_XFER_RECURSIVE | TETHER_XFER_NO_COMPRESS;
	pbody[0] = body[0];
	cr_assert_eq(check_get(body, sizeof(body)), 0);
	cr_assert_eq(check_put(pbody, sizeof(pbody)), 0);
	body[0] = pbody[0] = 0x04;
	cr_assert_eq(check_get(body, sizeof(body)), TETHER_ERR_FORMAT);
	cr_assert_eq(check_put(pbody, sizeof(pbody)), TETHER_ERR_FORMAT);
}

Test(msg, get_caps)
{
	struct tether_buf *b;

	b = body_buf();
	put_u8(b, 0);
	put_u32(b, TETHER_MSG_PATTERNS_MAX + 1);
	assert_refused_before_alloc(check_get, tether_buf_ptr(b),
				    tether_buf_len(b), 1);
	tether_buf_free(b);
	b = body_buf();
	put_u8(b, 0);
	put_u32(b, 1);
	put_fill(b, TETHER_MSG_PATH_MAX + 1, 'p');
	assert_refused_before_alloc(check_get, tether_buf_ptr(b),
				    tether_buf_len(b), 2);
	tether_buf_free(b);
	b = body_buf();
	put_u8(b, 0);
	put_u32(b, 1);
	put_fill(b, TETHER_MSG_PATH_MAX, 'p');
	assert_decode_buf(check_get, b, 0);
}

Test(msg, put_round_trip_and_empty)
{
	const struct tether_msg_put in = {.flags = 3, .dest = "/tmp"};
	static const uint8_t empty[] = {0, 0, 0, 0, 0};
	struct tether_buf *b = new_buf(64);
	struct tether_msg_put m;

	cr_assert_eq(tether_msg_encode_put(b, &in), 0);
	assert_bytes(b, put_wire, sizeof(put_wire));
	cr_assert_eq(tether_msg_decode_put(put_wire, sizeof(put_wire), &m), 0);
	cr_assert_eq(m.flags, 3);
	cr_assert_str_eq(m.dest, "/tmp");
	tether_msg_clear_put(&m);
	cr_assert_eq(tether_msg_decode_put(empty, sizeof(empty), &m), 0);
	cr_assert_str_eq(m.dest, "");
	tether_msg_clear_put(&m);
	tether_buf_free(b);
}

Test(msg, put_cap)
{
	struct tether_buf *b = body_buf();

	put_u8(b, 0);
	put_fill(b, TETHER_MSG_PATH_MAX + 1, 'p');
	assert_refused_before_alloc(check_put, tether_buf_ptr(b),
				    tether_buf_len(b), 1);
	tether_buf_free(b);
}

/* ---- ENTRY ------------------------------------------------------------- */

Test(msg, entry_round_trip)
{
	const struct tether_msg_entry in = {.type = TETHER_XFER_SYMLINK,
					    .path = "d/l",
					    .mode = 0777,
					    .mtime_sec = -1,
					    .mtime_nsec = 5,
					    .size = 0,
					    .target = "t"};
	struct tether_buf *b = new_buf(TETHER_FRAME_MAX);
	struct tether_msg_entry m;

	cr_assert_eq(tether_msg_encode_entry(b, &in), 0);
	assert_bytes(b, entry_wire, sizeof(entry_wire));
	cr_assert_eq(
	    tether_msg_decode_entry(entry_wire, sizeof(entry_wire), &m), 0);
	cr_assert_eq(m.type, TETHER_XFER_SYMLINK);
	cr_assert_str_eq(m.path, "d/l");
	cr_assert_eq(m.mode, 0777);
	cr_assert_eq(m.mtime_sec, -1);
	cr_assert_eq(m.mtime_nsec, 5);
	cr_assert_eq(m.size, 0);
	cr_assert_str_eq(m.target, "t");
	tether_msg_clear_entry(&m);
	cr_assert(all_zero(&m, sizeof(m)));
	tether_buf_free(b);
}

/* Empty strings and a NULL target: what is wrong with them is xfer's. */
Test(msg, entry_empty_strings)
{
	const struct tether_msg_entry in = {
	    .type = TETHER_XFER_FILE, .path = "", .size = UINT64_MAX};
	struct tether_buf *b = new_buf(TETHER_FRAME_MAX);
	struct tether_msg_entry m;

	cr_assert_eq(tether_msg_encode_entry(b, &in), 0);
	cr_assert_eq(
	    tether_msg_decode_entry(tether_buf_ptr(b), tether_buf_len(b), &m),
	    0);
	cr_assert_str_eq(m.path, "");
	cr_assert_str_eq(m.target, "");
	cr_assert_eq(m.size, UINT64_MAX);
	tether_msg_clear_entry(&m);
	tether_buf_free(b);
}

Test(msg, entry_type_and_mode_range)
{
	uint8_t body[sizeof(entry_wire)];

	memcpy(body, entry_wire, sizeof(body));
	body[0] = 0;
	cr_assert_eq(check_entry(body, sizeof(body)), TETHER_ERR_FORMAT);
	body[0] = TETHER_XFER_SYMLINK + 1;
	cr_assert_eq(check_entry(body, sizeof(body)), TETHER_ERR_FORMAT);
	body[0] = TETHER_XFER_FILE;
	cr_assert_eq(check_entry(body, sizeof(body)), 0);
	/* Mode 010777: a file type bit where only 07777 may be. */
	body[10] = 0x11;
	cr_assert_eq(check_entry(body, sizeof(body)), TETHER_ERR_FORMAT);
	body[10] = 0x0f;
	cr_assert_eq(check_entry(body, sizeof(body)), 0);
}

Test(msg, entry_caps)
{
	struct tether_buf *b;

	b = body_buf();
	put_u8(b, TETHER_XFER_FILE);
	put_fill(b, TETHER_MSG_PATH_MAX + 1, 'p');
	assert_refused_before_alloc(check_entry, tether_buf_ptr(b),
				    tether_buf_len(b), 1);
	tether_buf_free(b);
	b = body_buf();
	put_u8(b, TETHER_XFER_SYMLINK);
	put_fill(b, TETHER_MSG_PATH_MAX, 'p');
	put_u32(b, 0777);
	put_u64(b, 0);
	put_u32(b, 0);
	put_u64(b, 0);
	put_fill(b, TETHER_MSG_TARGET_MAX + 1, 't');
	assert_refused_before_alloc(check_entry, tether_buf_ptr(b),
				    tether_buf_len(b), 2);
	tether_buf_free(b);
	b = body_buf();
	put_u8(b, TETHER_XFER_SYMLINK);
	put_fill(b, TETHER_MSG_PATH_MAX, 'p');
	put_u32(b, 0777);
	put_u64(b, 0);
	put_u32(b, 0);
	put_u64(b, 0);
	put_fill(b, TETHER_MSG_TARGET_MAX, 't');
	assert_decode_buf(check_entry, b, 0);
}

/* ---- BLOCK ------------------------------------------------------------- */

Test(msg, block_round_trip_points_into_body)
{
	const struct tether_msg_block in = {.encoding = TETHER_XFER_DEFLATE,
					    .data = (const uint8_t *)"zz",
					    .len = 2};
	struct tether_buf *b = new_buf(16);
	struct tether_msg_block m;

	cr_assert_eq(tether_msg_encode_block(b, &in), 0);
	assert_bytes(b, block_wire, sizeof(block_wire));
	cr_assert_eq(
	    tether_msg_decode_block(block_wire, sizeof(block_wire), &m), 0);
	cr_assert_eq(m.encoding, TETHER_XFER_DEFLATE);
	cr_assert_eq(m.len, 2);
	/* No copy: the data is where it lies in the body. */
	cr_assert_eq(m.data, block_wire + 1);
	tether_buf_free(b);
}

Test(msg, block_without_data)
{
	static const uint8_t raw = TETHER_XFER_RAW;
	struct tether_msg_block m;

	cr_assert_eq(tether_msg_decode_block(&raw, 1, &m), 0);
	cr_assert_eq(m.encoding, TETHER_XFER_RAW);
	cr_assert_eq(m.len, 0);
}

Test(msg, block_encoding_range)
{
	static const uint8_t bad[] = {TETHER_XFER_DEFLATE + 1, 'x'};

	cr_assert_eq(check_block(bad, sizeof(bad)), TETHER_ERR_FORMAT);
}

Test(msg, reserve_block_writes_in_place)
{
	struct tether_buf *b = new_buf(1 + 8);
	uint8_t *data;

	cr_assert_eq(tether_msg_reserve_block(b, TETHER_XFER_RAW, 8, &data), 0);
	cr_assert_not_null(data);
	memcpy(data, "abcdefgh", 8);
	/* Shortened to what was filled. */
	cr_assert_eq(tether_buf_consume_end(b, 5), 0);
	assert_bytes(b, (const uint8_t[]){TETHER_XFER_RAW, 'a', 'b', 'c'}, 4);
	tether_buf_free(b);
}

Test(msg, reserve_block_failure_leaves_buffer)
{
	struct tether_buf *b = new_buf(1 + 8);
	uint8_t *data = (uint8_t *)"sentinel";

	cr_assert_eq(tether_buf_put_u8(b, 0xee), 0);
	cr_assert_eq(tether_msg_reserve_block(b, TETHER_XFER_RAW, 8, &data),
		     TETHER_ERR_TOO_LARGE);
	cr_assert_null(data);
	assert_bytes(b, (const uint8_t[]){0xee}, 1);
	tether_buf_free(b);
}

/* ---- FILE_END, RESULT, SKIP -------------------------------------------- */

Test(msg, file_end_round_trip)
{
	struct tether_msg_file_end in, m;
	struct tether_buf *b = new_buf(64);
	size_t i;

	memset(&in, 0, sizeof(in));
	in.ok = 1;
	for (i = 0; i < sizeof(in.sha256); i++)
		in.sha256[i] = (uint8_t)i;
	cr_assert_eq(tether_msg_encode_file_end(b, &in), 0);
	assert_bytes(b, file_end_ok_wire, sizeof(file_end_ok_wire));
	cr_assert_eq(tether_msg_decode_file_end(file_end_ok_wire,
						sizeof(file_end_ok_wire), &m),
		     0);
	cr_assert_eq(m.ok, 1);
	cr_assert(memcmp(m.sha256, in.sha256, sizeof(m.sha256)) == 0);
	cr_assert_null(m.reason);
	tether_msg_clear_file_end(&m);

	tether_buf_reset(b);
	memset(&in, 0, sizeof(in));
	in.reason = "why";
	cr_assert_eq(tether_msg_encode_file_end(b, &in), 0);
	assert_bytes(b, file_end_fail_wire, sizeof(file_end_fail_wire));
	cr_assert_eq(tether_msg_decode_file_end(file_end_fail_wire,
						sizeof(file_end_fail_wire), &m),
		     0);
	cr_assert_eq(m.ok, 0);
	cr_assert_str_eq(m.reason, "why");
	tether_msg_clear_file_end(&m);
	cr_assert(all_zero(&m, sizeof(m)));
	tether_buf_free(b);
}

Test(msg, file_end_ok_range_and_cap)
{
	static const uint8_t bad_ok[] = {2, 0, 0, 0, 0};
	static const uint8_t empty_reason[] = {0, 0, 0, 0, 0};
	struct tether_buf *b;

	cr_assert_eq(check_file_end(bad_ok, sizeof(bad_ok)), TETHER_ERR_FORMAT);
	cr_assert_eq(check_file_end(empty_reason, sizeof(empty_reason)), 0);
	b = body_buf();
	put_u8(b, 0);
	put_fill(b, TETHER_MSG_REASON_MAX + 1, 'r');
	assert_refused_before_alloc(check_file_end, tether_buf_ptr(b),
				    tether_buf_len(b), 1);
	tether_buf_free(b);
}

Test(msg, result_round_trip_and_empty)
{
	const struct tether_msg_result in = {.ok = 0, .reason = "full"};
	static const uint8_t ok[] = {1, 0, 0, 0, 0};
	struct tether_buf *b = new_buf(64);
	struct tether_msg_result m;

	cr_assert_eq(tether_msg_encode_result(b, &in), 0);
	assert_bytes(b, result_wire, sizeof(result_wire));
	cr_assert_eq(
	    tether_msg_decode_result(result_wire, sizeof(result_wire), &m), 0);
	cr_assert_eq(m.ok, 0);
	cr_assert_str_eq(m.reason, "full");
	tether_msg_clear_result(&m);
	cr_assert_eq(tether_msg_decode_result(ok, sizeof(ok), &m), 0);
	cr_assert_eq(m.ok, 1);
	cr_assert_str_eq(m.reason, "");
	tether_msg_clear_result(&m);
	tether_buf_free(b);
}

Test(msg, result_ok_range_and_cap)
{
	static const uint8_t bad_ok[] = {2, 0, 0, 0, 0};
	struct tether_buf *b;

	cr_assert_eq(check_result(bad_ok, sizeof(bad_ok)), TETHER_ERR_FORMAT);
	b = body_buf();
	put_u8(b, 0);
	put_fill(b, TETHER_MSG_REASON_MAX + 1, 'r');
	assert_refused_before_alloc(check_result, tether_buf_ptr(b),
				    tether_buf_len(b), 1);
	tether_buf_free(b);
	b = body_buf();
	put_u8(b, 0);
	put_fill(b, TETHER_MSG_REASON_MAX, 'r');
	assert_decode_buf(check_result, b, 0);
}

Test(msg, skip_round_trip_and_empty)
{
	const struct tether_msg_skip in = {.path = "p", .reason = "r"};
	static const uint8_t empty[] = {0, 0, 0, 0, 0, 0, 0, 0};
	struct tether_buf *b = new_buf(64);
	struct tether_msg_skip m;

	cr_assert_eq(tether_msg_encode_skip(b, &in), 0);
	assert_bytes(b, skip_wire, sizeof(skip_wire));
	cr_assert_eq(tether_msg_decode_skip(skip_wire, sizeof(skip_wire), &m),
		     0);
	cr_assert_str_eq(m.path, "p");
	cr_assert_str_eq(m.reason, "r");
	tether_msg_clear_skip(&m);
	cr_assert_eq(tether_msg_decode_skip(empty, sizeof(empty), &m), 0);
	cr_assert_str_eq(m.path, "");
	cr_assert_str_eq(m.reason, "");
	tether_msg_clear_skip(&m);
	tether_buf_free(b);
}

Test(msg, skip_caps)
{
	struct tether_buf *b;

	b = body_buf();
	put_fill(b, TETHER_MSG_PATH_MAX + 1, 'p');
	put_str(b, "r");
	assert_refused_before_alloc(check_skip, tether_buf_ptr(b),
				    tether_buf_len(b), 1);
	tether_buf_free(b);
	b = body_buf();
	put_str(b, "p");
	put_fill(b, TETHER_MSG_REASON_MAX + 1, 'r');
	assert_refused_before_alloc(check_skip, tether_buf_ptr(b),
				    tether_buf_len(b), 2);
	tether_buf_free(b);
}

/* ---- CLOSE, CONNECTED, XFER_END ---------------------------------------- */

Test(msg, empty_bodies)
{
	static const uint8_t one = 0;

	cr_assert_eq(tether_msg_decode_empty(NULL, 0), 0);
	cr_assert_eq(tether_msg_decode_empty(&one, 1),
		     TETHER_ERR_TRAILING_DATA);
}

/* ---- The pairing info, sealed ------------------------------------------ */

static const char info_text[] =
    "{\"technician\":\"alice\",\"ticket\":\"T-6\",\"title\":\"Secret "
    "project\",\"capabilities\":[\"exec\"]}";

static char *sealed_info(uint8_t fill, const char *nameplate)
{
	uint8_t ke[16];
	char *hex = NULL;

	memset(ke, fill, sizeof(ke));
	cr_assert_eq(
	    tether_msg_seal_info(ke, sizeof(ke), nameplate, info_text, &hex),
	    0);
	cr_assert_not_null(hex);
	return hex;
}

static int open_info(uint8_t fill, const char *nameplate, const char *hex,
		     char **info)
{
	uint8_t ke[16];

	memset(ke, fill, sizeof(ke));
	return tether_msg_open_info(ke, sizeof(ke), nameplate, hex, info);
}

Test(msg, info_opens_with_the_same_key_and_nameplate)
{
	char *hex = sealed_info(7, "42"), *info = NULL;

	/* The relay sees hex of body and tag, never the text. */
	cr_assert_eq(strlen(hex),
		     2 * (4 + strlen(info_text) + TETHER_SEAL_TAG_LEN));
	cr_assert_null(strstr(hex, "Secret"));
	cr_assert_eq(open_info(7, "42", hex, &info), 0);
	cr_assert_str_eq(info, info_text);
	tether_free(info);
	tether_free(hex);
}

/* Another code's key, another nameplate, one digit changed: nothing. */
Test(msg, info_refused_under_any_other_key_nameplate_or_change)
{
	char *hex = sealed_info(7, "42"), *info = (char *)1;
	size_t i;

	cr_assert_eq(open_info(8, "42", hex, &info), TETHER_ERR_AUTH);
	cr_assert_null(info);
	cr_assert_eq(open_info(7, "43", hex, &info), TETHER_ERR_AUTH);
	cr_assert_null(info);
	for (i = 0; i < strlen(hex); i += 7) {
		char saved = hex[i];

		hex[i] = saved == '0' ? '1' : '0';
		cr_assert_eq(open_info(7, "42", hex, &info), TETHER_ERR_AUTH,
			     "digit %zu changed", i);
		cr_assert_null(info);
		hex[i] = saved;
	}
	hex[strlen(hex) - 1] = '\0';
	cr_assert_eq(open_info(7, "42", hex, &info), TETHER_ERR_FORMAT);
	cr_assert_eq(open_info(7, "42", "zz", &info), TETHER_ERR_FORMAT);
	cr_assert_eq(open_info(7, "42", "", &info), TETHER_ERR_FORMAT);
	tether_free(hex);
}
