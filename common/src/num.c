/*
 * Checked number parsing (tether/num.h).  Integers are read digit by digit
 * with overflow checks; floating point goes through strtod() on a bounded
 * copy, after checking the characters, since a correctly rounded decimal
 * conversion is not worth writing again.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <tether/err.h>
#include <tether/num.h>

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Digits at s (at least one) into *v; *end after them. */
static int digits_u64(const char *s, const char **end, uint64_t *v)
{
	uint64_t x = 0;
	const char *p = s;

	if (!is_digit(*p))
		return TETHER_ERR_FORMAT;
	for (; is_digit(*p); p++) {
		unsigned d = (unsigned)(*p - '0');

		if (x > (UINT64_MAX - d) / 10)
			return TETHER_ERR_TOO_LARGE;
		x = x * 10 + d;
	}
	*end = p;
	*v = x;
	return TETHER_OK;
}

int tether_num_parse_u64(const char *s, uint64_t min, uint64_t max,
			 uint64_t *out)
{
	const char *end;
	uint64_t v;
	int r;

	if (s == NULL || (s[0] == '0' && s[1] != '\0'))
		return TETHER_ERR_FORMAT;
	/*
	 * Digits only before any arithmetic: "99999999999999999999x" is no
	 * number, not a number too large.
	 */
	for (end = s; is_digit(*end); end++)
		;
	if (*end != '\0')
		return TETHER_ERR_FORMAT;
	r = digits_u64(s, &end, &v);
	if (r != 0)
		return r;
	if (v < min || v > max)
		return TETHER_ERR_TOO_LARGE;
	*out = v;
	return TETHER_OK;
}

int tether_num_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	bool neg = s != NULL && s[0] == '-';
	uint64_t v;
	int64_t x;
	int r;

	if (s == NULL)
		return TETHER_ERR_FORMAT;
	r = tether_num_parse_u64(
	    s + neg, 0, neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX,
	    &v);
	if (r != 0)
		return r;
	if (neg && v == 0)
		return TETHER_ERR_FORMAT; /* "-0" */
	x = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v)
		: (int64_t)v;
	if (x < min || x > max)
		return TETHER_ERR_TOO_LARGE;
	*out = x;
	return TETHER_OK;
}

int tether_num_scan_u64(const char **pp, uint64_t *out)
{
	const char *p = *pp, *end;
	uint64_t v;
	int r;

	while (*p == ' ' || *p == '\t')
		p++;
	r = digits_u64(p, &end, &v);
	if (r != 0)
		return r;
	*pp = end;
	*out = v;
	return TETHER_OK;
}

int tether_num_scan_i64(const char **pp, int64_t *out)
{
	const char *p = *pp, *end;
	bool neg;
	uint64_t v;

	while (*p == ' ' || *p == '\t')
		p++;
	neg = *p == '-';
	p += neg;
	/* The digits must follow the sign: "- 5" is no number. */
	if (digits_u64(p, &end, &v) != 0 ||
	    v > (neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX))
		return TETHER_ERR_FORMAT;
	*out = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v)
		   : (int64_t)v;
	*pp = end;
	return TETHER_OK;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int tether_num_scan_hex(const char **pp, uint64_t *out)
{
	const char *p = *pp;
	uint64_t x = 0;
	int d;

	while (*p == ' ' || *p == '\t')
		p++;
	if (hex_digit(*p) < 0)
		return TETHER_ERR_FORMAT;
	for (; (d = hex_digit(*p)) >= 0; p++) {
		if (x > UINT64_MAX >> 4)
			return TETHER_ERR_TOO_LARGE;
		x = x << 4 | (uint64_t)d;
	}
	*pp = p;
	*out = x;
	return TETHER_OK;
}

int tether_num_parse_double(const char *s, size_t n, double *out)
{
	char buf[64], *end;
	bool digit = false;
	double v;
	size_t i;

	if (s == NULL || n == 0 || n >= sizeof(buf))
		return TETHER_ERR_FORMAT;
	/* Only what a decimal number is made of: no "inf", "nan" or hex. */
	for (i = 0; i < n; i++) {
		char c = s[i];

		digit |= is_digit(c);
		if (!is_digit(c) && c != '.' && c != '-' && c != '+' &&
		    c != 'e' && c != 'E')
			return TETHER_ERR_FORMAT;
	}
	if (!digit)
		return TETHER_ERR_FORMAT;
	memcpy(buf, s, n);
	buf[n] = '\0';
	v = strtod(buf, &end);
	if (end != buf + n || !isfinite(v))
		return TETHER_ERR_FORMAT;
	*out = v;
	return TETHER_OK;
}
