/*
 * Nagios threshold ranges and performance data, as the plugin guidelines
 * define them (https://nagios-plugins.org/doc/guidelines.html).  Both come
 * from config files and from plugins we did not write: anything malformed
 * is rejected (ranges) or skipped (perfdata entries), never trusted.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <tether/alloc.h>
#include <tether/err.h>

#include "agent.h"

#define PERF_LABEL_MAX 128
#define PERF_FIELD_MAX 64

/*
 * A decimal number filling all of s[0..n) ([-+]digits[.digits][e[-+]digits]),
 * in *v.  strtod alone would also take "inf", "nan" and hex.
 */
static int parse_number(const char *s, size_t n, double *v)
{
	char buf[PERF_FIELD_MAX];
	size_t i = 0, digits = 0;
	char *end;

	if (n == 0 || n >= sizeof(buf))
		return TETHER_ERR_FORMAT;
	if (s[i] == '-' || s[i] == '+')
		i++;
	for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
		digits++;
	if (i < n && s[i] == '.')
		for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
			digits++;
	if (digits == 0)
		return TETHER_ERR_FORMAT;
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		size_t exp = 0;

		i++;
		if (i < n && (s[i] == '-' || s[i] == '+'))
			i++;
		for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
			exp++;
		if (exp == 0)
			return TETHER_ERR_FORMAT;
	}
	if (i != n)
		return TETHER_ERR_FORMAT;
	memcpy(buf, s, n);
	buf[n] = '\0';
	errno = 0;
	*v = strtod(buf, &end);
	if (errno != 0 || *end != '\0' || !(*v > -1e308 && *v < 1e308))
		return TETHER_ERR_FORMAT;
	return 0;
}

int agent_range_parse(const char *s, struct agent_range *r)
{
	const char *p = s, *colon;
	size_t n = strlen(s);

	memset(r, 0, sizeof(*r));
	if (n == 0 || n >= sizeof(r->text))
		return TETHER_ERR_FORMAT;
	if (*p == '@') {
		r->inside = true;
		p++;
	}
	colon = strchr(p, ':');
	if (colon == NULL) {
		/* "10" is 0:10. */
		if (parse_number(p, strlen(p), &r->hi) != 0)
			return TETHER_ERR_FORMAT;
		r->lo = 0;
	} else {
		size_t ln = (size_t)(colon - p);

		if (ln == 1 && p[0] == '~')
			r->lo_inf = true;
		else if (parse_number(p, ln, &r->lo) != 0)
			return TETHER_ERR_FORMAT;
		if (colon[1] == '\0')
			r->hi_inf = true;
		else if (parse_number(colon + 1, strlen(colon + 1), &r->hi) !=
			 0)
			return TETHER_ERR_FORMAT;
	}
	if (!r->lo_inf && !r->hi_inf && r->lo > r->hi)
		return TETHER_ERR_FORMAT;
	memcpy(r->text, s, n + 1);
	r->set = true;
	return 0;
}

bool agent_range_alert(const struct agent_range *r, double v)
{
	bool in;

	if (!r->set)
		return false;
	in = (r->lo_inf || v >= r->lo) && (r->hi_inf || v <= r->hi);
	return r->inside ? in : !in;
}

static bool blank(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

/* Whole numbers print as such ("42", not "42.0"). */
static json_t *number(double v)
{
	if (v > -9007199254740992.0 && v < 9007199254740992.0 &&
	    v == (double)(json_int_t)v)
		return json_integer((json_int_t)v);
	return json_real(v);
}

/* A number field, or null when empty or not a number. */
static json_t *number_or_null(const char *s, size_t n)
{
	double v;

	if (parse_number(s, n, &v) != 0)
		return json_null();
	return number(v);
}

/* A range field as written, or null when empty or not a range. */
static json_t *range_or_null(const char *s, size_t n)
{
	struct agent_range r;
	char buf[AGENT_RANGE_TEXT_MAX];

	if (n == 0 || n >= sizeof(buf))
		return json_null();
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (agent_range_parse(buf, &r) != 0)
		return json_null();
	return json_string(buf);
}

/*
 * "value[UOM];warn;crit;min;max" (s[0..n)) into an entry with label; NULL
 * if the value is malformed.  "U" is a value that could not be had.
 */
static json_t *perf_entry(const char *label, const char *s, size_t n)
{
	const char *f[5] = {NULL};
	size_t fl[5] = {0}, i, k, vl;
	char uom[16] = "";
	json_t *e, *value;
	double v;

	for (k = 0, i = 0; k < 5; k++) {
		size_t start = i;

		while (i < n && s[i] != ';')
			i++;
		f[k] = s + start;
		fl[k] = i - start;
		if (i >= n)
			break;
		i++;
	}
	if (fl[0] == 1 && f[0][0] == 'U') {
		value = json_null();
	} else {
		/* The value is the longest number prefix; the rest its UOM. */
		for (vl = fl[0]; vl > 0; vl--)
			if (parse_number(f[0], vl, &v) == 0)
				break;
		if (vl == 0 || fl[0] - vl >= sizeof(uom))
			return NULL;
		for (i = vl; i < fl[0]; i++) {
			char ch = f[0][i];

			if (!((ch >= 'A' && ch <= 'Z') ||
			      (ch >= 'a' && ch <= 'z') || ch == '%'))
				return NULL;
		}
		memcpy(uom, f[0] + vl, fl[0] - vl);
		uom[fl[0] - vl] = '\0';
		value = number(v);
	}
	e = json_pack(
	    "{s:s, s:o, s:s, s:o, s:o, s:o, s:o}", "label", label, "value",
	    value, "uom", uom, "warn", range_or_null(f[1], fl[1]), "crit",
	    range_or_null(f[2], fl[2]), "min", number_or_null(f[3], fl[3]),
	    "max", number_or_null(f[4], fl[4]));
	return e;
}

/*
 * A label at *pp: 'quoted' ('' is a quote) or up to '='.  Returns its
 * length in out, -1 if malformed (then *pp is past the bad entry).
 */
static int perf_label(const char **pp, char *out, size_t outlen)
{
	const char *p = *pp;
	size_t n = 0;

	if (*p == '\'') {
		for (p++;; p++) {
			if (*p == '\0') {
				*pp = p;
				return -1;
			}
			if (*p == '\'') {
				if (p[1] != '\'')
					break;
				p++;
			}
			if (n + 1 < outlen)
				out[n++] = *p;
		}
		p++;
	} else {
		for (; *p != '=' && *p != '\0' && !blank(*p); p++)
			if (n + 1 < outlen)
				out[n++] = *p;
	}
	out[n] = '\0';
	*pp = p;
	if (*p != '=' || n == 0)
		return -1;
	*pp = p + 1;
	return (int)n;
}

json_t *agent_perfdata_parse(const char *text)
{
	json_t *arr = json_array(), *e;
	char label[PERF_LABEL_MAX];
	const char *p = text;

	if (arr == NULL)
		return NULL;
	while (p != NULL && *p != '\0') {
		const char *v;

		while (blank(*p))
			p++;
		if (*p == '\0')
			break;
		if (perf_label(&p, label, sizeof(label)) < 0) {
			/* Skip to the next blank: one bad entry only. */
			while (*p != '\0' && !blank(*p))
				p++;
			continue;
		}
		v = p;
		while (*p != '\0' && !blank(*p))
			p++;
		e = perf_entry(label, v, (size_t)(p - v));
		if (e != NULL && json_array_append_new(arr, e) != 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}
