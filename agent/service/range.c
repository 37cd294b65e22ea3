/*
 * Nagios threshold ranges and performance data, as the plugin guidelines
 * define them (https://nagios-plugins.org/doc/guidelines.html).  Both come
 * from config files and from plugins we did not write: anything malformed
 * is rejected (ranges) or skipped (perfdata entries), never trusted.
 */
#include <math.h>
#include <string.h>

#include <tether/alloc.h>
#include <tether/err.h>
#include <tether/num.h>

#include "diag/text.h"
#include "service/range.h"

#define PERF_LABEL_MAX 128
#define PERF_FIELD_MAX 64

/*
 * A decimal number filling all of s[0..n) ([-+]digits[.digits][e[-+]digits],
 * finite), in *v.
 */
static int parse_number(const char *s, size_t n, double *v)
{
	if (n >= PERF_FIELD_MAX)
		return TETHER_ERR_FORMAT;
	return tether_num_parse_double(s, n, v);
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

/* A number field, or NaN when empty or not a number. */
static double number_or_nan(const char *s, size_t n)
{
	double v;

	if (parse_number(s, n, &v) != 0)
		return NAN;
	return v;
}

/*
 * A range field as written, copied into *out; NULL when empty or not a
 * range.  0 or TETHER_ERR_NOMEM.
 */
static int range_copy(const char *s, size_t n, const char **out)
{
	struct agent_range r;
	char buf[AGENT_RANGE_TEXT_MAX];

	*out = NULL;
	if (n == 0 || n >= sizeof(buf))
		return 0;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (agent_range_parse(buf, &r) != 0)
		return 0;
	*out = tether_strdup(buf);
	return *out != NULL ? 0 : TETHER_ERR_NOMEM;
}

static void perf_clear(struct tether_ctrl_perf *e)
{
	/* The strings are ours: const only as the ctrl struct lends them. */
	tether_free((char *)e->label);
	tether_free((char *)e->uom);
	tether_free((char *)e->warn);
	tether_free((char *)e->crit);
	memset(e, 0, sizeof(*e));
}

/*
 * "value[UOM];warn;crit;min;max" (s[0..n)) into *e with label: 1 if the
 * value is malformed (skip the entry), 0, or TETHER_ERR_NOMEM.  "U" is a
 * value that could not be had.
 */
static int perf_entry(const char *label, const char *s, size_t n,
		      struct tether_ctrl_perf *e)
{
	const char *f[5] = {NULL};
	size_t fl[5] = {0}, i, k, vl;
	char uom[16] = "";
	double v = NAN;

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
	if (fl[0] != 1 || f[0][0] != 'U') {
		/* The value is the longest number prefix; the rest its UOM. */
		for (vl = fl[0]; vl > 0; vl--)
			if (parse_number(f[0], vl, &v) == 0)
				break;
		if (vl == 0 || fl[0] - vl >= sizeof(uom))
			return 1;
		for (i = vl; i < fl[0]; i++) {
			char ch = f[0][i];

			if (!((ch >= 'A' && ch <= 'Z') ||
			      (ch >= 'a' && ch <= 'z') || ch == '%'))
				return 1;
		}
		memcpy(uom, f[0] + vl, fl[0] - vl);
		uom[fl[0] - vl] = '\0';
	}
	memset(e, 0, sizeof(*e));
	e->value = v;
	e->min = number_or_nan(f[3], fl[3]);
	e->max = number_or_nan(f[4], fl[4]);
	e->label = tether_strdup(label);
	e->uom = tether_strdup(uom);
	if (e->label == NULL || e->uom == NULL ||
	    range_copy(f[1], fl[1], &e->warn) != 0 ||
	    range_copy(f[2], fl[2], &e->crit) != 0) {
		perf_clear(e);
		return TETHER_ERR_NOMEM;
	}
	return 0;
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

int agent_perfdata_parse(const char *text, struct agent_perfdata *out)
{
	struct tether_ctrl_perf e, *grown;
	char label[PERF_LABEL_MAX], clean[PERF_LABEL_MAX];
	const char *p = text;
	int r;

	out->v = NULL;
	out->n = 0;
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
		/* The message carries text: a control character becomes '?'. */
		agent_text_clean(label, clean, sizeof(clean));
		r = perf_entry(clean, v, (size_t)(p - v), &e);
		if (r == 1)
			continue;
		grown = r == 0 ? tether_reallocarray(out->v, out->n + 1,
						     sizeof(*out->v))
			       : NULL;
		if (grown == NULL) {
			if (r == 0)
				perf_clear(&e);
			agent_perfdata_free(out);
			return TETHER_ERR_NOMEM;
		}
		out->v = grown;
		out->v[out->n++] = e;
	}
	return 0;
}

void agent_perfdata_free(struct agent_perfdata *p)
{
	size_t i;

	for (i = 0; i < p->n; i++)
		perf_clear(&p->v[i]);
	tether_free(p->v);
	p->v = NULL;
	p->n = 0;
}
