/*
 * libFuzzer target for the small text parsers everything typed or read
 * goes through: session codes (code.h), identifiers (id.h: tickets,
 * fingerprints, names, labels) and numbers (num.h).  Each input is given,
 * as one NUL-terminated string, to every parser.
 *
 * Invariants: a failed parse writes nothing it promised not to and says
 * why; an accepted value formats back to its canonical spelling, and
 * parsing that spelling gives the same value; outputs never run past the
 * buffer sizes given (the buffers are exactly that size, on the heap, so
 * ASan sees an overrun); the predicates agree with a model written here
 * from their header comments.
 */
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include <tether/code.h>
#include <tether/err.h>
#include <tether/id.h>
#include <tether/num.h>

#include "fuzz.h"

#define NAME_CHARS                                                             \
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-"

/*
 * n bytes on the heap, so that one past the end is a redzone: a copy of
 * s, or zeros when s is NULL.
 */
static char *exact(const char *s, size_t n)
{
	char *p = calloc(n > 0 ? n : 1, 1);

	CHECK(p != NULL);
	if (s != NULL && n > 0)
		memcpy(p, s, n);
	return p;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool all_digits(const char *s)
{
	for (; *s != '\0'; s++)
		if (!is_digit(*s))
			return false;
	return true;
}

/* ---- Session codes ---- */

static bool model_nameplate(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= TETHER_CODE_NAMEPLATE_MAX && s[0] != '0' &&
	       all_digits(s);
}

static void code(const char *s, size_t len)
{
	char out[TETHER_CODE_MAX], again[TETHER_CODE_MAX];
	char np[TETHER_CODE_NAMEPLATE_MAX + 1],
	    np2[TETHER_CODE_NAMEPLATE_MAX + 1];
	char *small, *inplace, *npsmall;
	const char *why = "unset";
	size_t n;
	int r;

	CHECK(tether_code_nameplate_valid(s) == model_nameplate(s));
	r = tether_code_parse(s, out, sizeof(out), np, sizeof(np), &why);
	if (r != 0) {
		CHECK(r == TETHER_ERR_FORMAT);
		CHECK(why != NULL && why[0] != '\0');
		return;
	}
	CHECK(why == NULL);
	n = strlen(out);
	/* "NAMEPLATE-w-w-w", lower case, the nameplate valid and first. */
	CHECK(tether_code_nameplate_valid(np));
	CHECK(strncmp(out, np, strlen(np)) == 0 && out[strlen(np)] == '-');
	/* Normalising never lengthens what was typed. */
	CHECK(n <= len);
	/* The normalised code is a fixed point. */
	CHECK(tether_code_parse(out, again, sizeof(again), np2, sizeof(np2),
				&why) == 0);
	CHECK(strcmp(again, out) == 0 && strcmp(np2, np) == 0);
	/* One byte short of either output: refused, nothing past the end. */
	small = exact(NULL, n);
	CHECK(tether_code_parse(s, small, n, np2, sizeof(np2), &why) ==
	      TETHER_ERR_TOO_LARGE);
	free(small);
	npsmall = exact(NULL, strlen(np));
	CHECK(tether_code_parse(s, again, sizeof(again), npsmall, strlen(np),
				&why) == TETHER_ERR_TOO_LARGE);
	free(npsmall);
	/* In place, as the console does with the line it read. */
	inplace = exact(s, len + 1);
	CHECK(tether_code_parse(inplace, inplace, len + 1, np2, sizeof(np2),
				&why) == 0);
	CHECK(strcmp(inplace, out) == 0 && strcmp(np2, np) == 0);
	free(inplace);
}

/* ---- Identifiers ---- */

static void ticket(const char *s)
{
	char canon[TETHER_ID_TICKET_LEN], *small;
	int64_t id = -1, id2 = -1;
	size_t n;
	int r;

	r = tether_id_ticket_parse(s, &id);
	if (r != 0) {
		CHECK(r == TETHER_ERR_FORMAT && id == 0);
	} else {
		/* "T-N" or "t-N", N exactly as formatted. */
		CHECK(id >= 1);
		CHECK(tether_id_ticket_format(id, canon, sizeof(canon)) == 0);
		CHECK(s[0] == 'T' || s[0] == 't');
		CHECK(strcmp(canon + 1, s + 1) == 0);
		n = strlen(canon);
		small = exact(NULL, n);
		CHECK(tether_id_ticket_format(id, small, n) ==
		      TETHER_ERR_TOO_LARGE);
		CHECK(n == 0 || small[0] == '\0');
		free(small);
	}
	r = tether_id_ticket_parse_arg(s, &id2);
	if (r != 0) {
		CHECK(id2 == 0 && id == 0);
	} else if (is_digit(s[0])) {
		/* A bare N is the N of "T-N". */
		CHECK(tether_id_ticket_format(id2, canon, sizeof(canon)) == 0);
		CHECK(strcmp(canon + 2, s) == 0);
	} else {
		CHECK(id2 == id);
	}
}

static bool model_name(const char *s)
{
	size_t n;

	for (n = 0; s[n] != '\0'; n++)
		if (strchr(NAME_CHARS, s[n]) == NULL)
			return false;
	return n >= 1 && n <= TETHER_ID_NAME_MAX;
}

static bool model_label_value(const char *s)
{
	size_t n;

	for (n = 0; s[n] != '\0'; n++)
		if ((unsigned char)s[n] < 0x20 || s[n] == 0x7f)
			return false;
	return n <= TETHER_ID_LABEL_VALUE_MAX;
}

static void label(const char *s)
{
	char key[TETHER_ID_NAME_MAX + 1], *small;
	const char *value = "unset", *why = NULL, *eq;
	size_t kl;
	int r;

	r = tether_id_label_parse(s, key, sizeof(key), &value, &why);
	eq = strchr(s, '=');
	if (r != 0) {
		CHECK(r == TETHER_ERR_FORMAT);
		CHECK(value == NULL && key[0] == '\0');
		CHECK(why != NULL && why[0] != '\0');
		/* The models say no as well. */
		if (eq != NULL) {
			kl = (size_t)(eq - s);
			small = exact(s, kl + 1);
			small[kl] = '\0';
			CHECK(!model_name(small) || !model_label_value(eq + 1));
			free(small);
		}
		return;
	}
	CHECK(eq != NULL && value == eq + 1);
	kl = (size_t)(eq - s);
	CHECK(strlen(key) == kl && memcmp(key, s, kl) == 0);
	CHECK(model_name(key) && model_label_value(value));
	/* A key buffer one byte short refuses, and stays inside. */
	small = exact(NULL, kl);
	CHECK(tether_id_label_parse(s, small, kl, &value, &why) ==
	      TETHER_ERR_FORMAT);
	CHECK(value == NULL && (kl == 0 || small[0] == '\0'));
	free(small);
}

/*
 * The fingerprint of the first 32 bytes of the input (or fewer, zero
 * padded): whatever tether writes it must accept.
 */
static void fingerprint(const char *s, const uint8_t *data, size_t size)
{
	unsigned char raw[33] = {0}, b64[45], back[34];
	char fp[TETHER_ID_FINGERPRINT_LEN];
	bool valid = tether_id_fingerprint_valid(s);

	if (valid) {
		/* Canonical: decoding and encoding again gives s back. */
		CHECK(strlen(s) == TETHER_ID_FINGERPRINT_LEN - 1);
		memcpy(b64, s + 7, 43);
		b64[43] = '=';
		b64[44] = '\0';
		CHECK(EVP_DecodeBlock(back, b64, 44) == 33);
		CHECK(EVP_EncodeBlock(b64, back, 32) == 44);
		CHECK(memcmp(b64, s + 7, 43) == 0);
	}
	memcpy(raw, data, size < 32 ? size : 32);
	CHECK(EVP_EncodeBlock(b64, raw, 32) == 44);
	CHECK(snprintf(fp, sizeof(fp), "SHA256:%.43s", (const char *)b64) ==
	      TETHER_ID_FINGERPRINT_LEN - 1);
	CHECK(tether_id_fingerprint_valid(fp));
}

static void ids(const char *s, const uint8_t *data, size_t size)
{
	ticket(s);
	CHECK(tether_id_name_valid(s) == model_name(s));
	CHECK(tether_id_label_value_valid(s) == model_label_value(s));
	CHECK(tether_id_name_char(s[0]) ==
	      (s[0] != '\0' && strchr(NAME_CHARS, s[0]) != NULL));
	label(s);
	fingerprint(s, data, size);
}

/* ---- Numbers ---- */

static void parse_ints(const char *s)
{
	char canon[32];
	uint64_t u = 42, u2 = 42;
	int64_t i = 42;
	int r;

	r = tether_num_parse_u64(s, 0, UINT64_MAX, &u);
	if (r == 0) {
		snprintf(canon, sizeof(canon), "%" PRIu64, u);
		CHECK(strcmp(canon, s) == 0);
		/* A narrower range takes it or refuses it as too large. */
		r = tether_num_parse_u64(s, 1, 65535, &u2);
		if (u >= 1 && u <= 65535)
			CHECK(r == 0 && u2 == u);
		else
			CHECK(r == TETHER_ERR_TOO_LARGE && u2 == 42);
	} else {
		CHECK(r == TETHER_ERR_FORMAT || r == TETHER_ERR_TOO_LARGE);
		CHECK(u == 42);
		/* Too large only for digits that overflow. */
		if (r == TETHER_ERR_TOO_LARGE)
			CHECK(all_digits(s) && s[0] != '0' && strlen(s) >= 20);
	}
	r = tether_num_parse_i64(s, INT64_MIN, INT64_MAX, &i);
	if (r == 0) {
		snprintf(canon, sizeof(canon), "%" PRId64, i);
		CHECK(strcmp(canon, s) == 0);
	} else {
		CHECK(r == TETHER_ERR_FORMAT || r == TETHER_ERR_TOO_LARGE);
		CHECK(i == 42);
	}
}

/* The decimal digits [p, end) (leading zeros allowed) as a number. */
static uint64_t span_value(const char *p, const char *end)
{
	uint64_t v = 0;

	for (; p < end; p++) {
		CHECK(is_digit(*p));
		CHECK(v <= (UINT64_MAX - (uint64_t)(*p - '0')) / 10);
		v = v * 10 + (uint64_t)(*p - '0');
	}
	return v;
}

static bool is_hex(char c)
{
	return c != '\0' && strchr("0123456789abcdefABCDEF", c) != NULL;
}

/*
 * Scans s the way the /proc and command-output readers do: a value where
 * one starts, else skip a character.  kind 0: u64, 1: i64, 2: hex.
 */
static void scan(const char *s, int kind)
{
	const char *p = s, *before, *q;
	uint64_t u;
	int64_t i;
	bool neg;
	int r;

	while (*p != '\0') {
		before = p;
		u = 42;
		i = 42;
		if (kind == 0)
			r = tether_num_scan_u64(&p, &u);
		else if (kind == 1)
			r = tether_num_scan_i64(&p, &i);
		else
			r = tether_num_scan_hex(&p, &u);
		if (r != 0) {
			/* Nothing moved, nothing written. */
			CHECK(p == before && u == 42 && i == 42);
			p++;
			continue;
		}
		/* Blanks, a '-' for i64, then digits up to a non-digit. */
		q = before;
		while (*q == ' ' || *q == '\t')
			q++;
		neg = kind == 1 && *q == '-';
		q += neg;
		CHECK(p > q);
		if (kind == 2) {
			CHECK(!is_hex(*p));
			continue;
		}
		CHECK(!is_digit(*p));
		if (kind == 0)
			CHECK(u == span_value(q, p));
		else if (neg && span_value(q, p) == (uint64_t)INT64_MAX + 1)
			CHECK(i == INT64_MIN);
		else
			CHECK(i == (neg ? -1 : 1) * (int64_t)span_value(q, p));
	}
}

static void num(const char *s, const uint8_t *data, size_t size)
{
	double d = 42.0;
	int r;

	parse_ints(s);
	scan(s, 0);
	scan(s, 1);
	scan(s, 2);
	/* The raw bytes, NULs and all: the parser takes a length. */
	r = tether_num_parse_double((const char *)data, size, &d);
	if (r == 0)
		CHECK(isfinite(d));
	else
		CHECK(r == TETHER_ERR_FORMAT && d == 42.0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;
	size_t len;

	/* Codes, ids and numbers are short; long inputs only cost time. */
	if (size > 4096)
		return 0;
	s = exact(NULL, size + 1);
	if (size > 0)
		memcpy(s, data, size);
	len = strlen(s);
	code(s, len);
	ids(s, data, size);
	num(s, data, size);
	free(s);
	return 0;
}
