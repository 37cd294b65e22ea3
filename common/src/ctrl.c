/*
 * Control messages: one schema per message, answer and part (the tables at
 * the end of this file), and one engine that checks and moves members
 * between JSON and the structs of tether/ctrl.h in both directions.  A
 * member is described once (name, kind, limits, where it lives in its
 * struct), so the encoder and the decoder cannot drift apart.
 */
#include <math.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <tether/alloc.h>
#include <tether/code.h>
#include <tether/crypto.h>
#include <tether/ctrl.h>
#include <tether/err.h>
#include <tether/id.h>
#include <tether/log.h>
#include <tether/msg.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- Names ---- */

/* X-macro expansions are not expressions: kept as written. */
/* clang-format off */
static const char *const type_names[] = {
#define TYPE_NAME_(name, wire, dirs) [TETHER_CTRL_##name] = wire,
	TETHER_CTRL_TYPE_MAP(TYPE_NAME_)
#undef TYPE_NAME_
};
static const unsigned type_dirs[] = {
#define TYPE_DIRS_(name, wire, dirs) [TETHER_CTRL_##name] = dirs,
	TETHER_CTRL_TYPE_MAP(TYPE_DIRS_)
#undef TYPE_DIRS_
};
_Static_assert(ARRAY_SIZE(type_names) == TETHER_CTRL_TYPES,
	       "one wire name per control message type");
_Static_assert(ARRAY_SIZE(type_dirs) == TETHER_CTRL_TYPES,
	       "directions for every control message type");

static const char *const code_names[] = {
#define CODE_NAME_(name, wire) [TETHER_CTRL_E_##name] = wire,
	TETHER_CTRL_CODE_MAP(CODE_NAME_)
#undef CODE_NAME_
};
_Static_assert(ARRAY_SIZE(code_names) == TETHER_CTRL_CODES,
	       "one wire name per error code");

/* clang-format on */

#define WORDS_DEF_(lname, uname, ...)                                          \
	const char *const tether_ctrl_##lname##_words[] = {__VA_ARGS__};       \
	const size_t tether_ctrl_##lname##_nwords =                            \
	    sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *);
TETHER_CTRL_WORD_LISTS(WORDS_DEF_)
#undef WORDS_DEF_

/* Each word list has one word per value of its enum (proto.h), in order. */
#define WORDS_COUNT_(lname, uname, ...)                                        \
	enum {                                                                 \
		lname##_nwords_ = sizeof((const char *[]){__VA_ARGS__}) /      \
				  sizeof(const char *)                         \
	};
TETHER_CTRL_WORD_LISTS(WORDS_COUNT_)
#undef WORDS_COUNT_
_Static_assert((int)role_nwords_ == (int)(TETHER_ROLE_AGENT + 1), "roles");
_Static_assert((int)kind_nwords_ == (int)(TETHER_KINDS), "channel kinds");
_Static_assert((int)check_state_nwords_ == (int)(TETHER_CHECK_UNKNOWN + 1),
	       "check states (Nagios numbering)");
_Static_assert((int)check_type_nwords_ == (int)(TETHER_CHECK_HARD + 1),
	       "check types");
_Static_assert((int)ticket_on_nwords_ == (int)(TETHER_TICKET_ON_NEVER + 1),
	       "ticket_on");
_Static_assert((int)xfer_dir_nwords_ == (int)(TETHER_XFER_DIR_GET + 1),
	       "directions");
_Static_assert((int)xfer_type_nwords_ == (int)(TETHER_XFER_TYPE_SYMLINK + 1),
	       "entry types (ENTRY numbering)");
_Static_assert((int)xfer_type_nwords_ == (int)(TETHER_XFER_SYMLINK + 1),
	       "entry types as msg.h numbers them");
_Static_assert((int)status_nwords_ == (int)(TETHER_TICKET_CLOSED + 1),
	       "ticket status");
_Static_assert((int)source_nwords_ == (int)(TETHER_SOURCE_HEALTH + 1),
	       "ticket source");
_Static_assert((int)tech_role_nwords_ == (int)(TETHER_TECH_AUDITOR + 1),
	       "tech roles");
_Static_assert((int)session_state_nwords_ == (int)(TETHER_SESSION_DECLINED + 1),
	       "session states");

const char *tether_ctrl_type_name(enum tether_ctrl_type t)
{
	return (unsigned)t < TETHER_CTRL_TYPES ? type_names[t] : NULL;
}

unsigned tether_ctrl_type_dirs(enum tether_ctrl_type t)
{
	return (unsigned)t < TETHER_CTRL_TYPES ? type_dirs[t] : 0;
}

const char *tether_ctrl_code_name(enum tether_ctrl_code c)
{
	return (unsigned)c < TETHER_CTRL_CODES ? code_names[c] : NULL;
}

int tether_ctrl_word(const char *const *words, size_t n, const char *s)
{
	size_t i;

	for (i = 0; s != NULL && i < n; i++)
		if (strcmp(s, words[i]) == 0)
			return (int)i;
	return -1;
}

const char *tether_ctrl_word_name(const char *const *words, size_t n, int v)
{
	return v >= 0 && (size_t)v < n ? words[v] : "?";
}

/* ---- Times ---- */

int tether_ctrl_time_format(int64_t t, char out[TETHER_CTRL_TIME_LEN])
{
	time_t tt = (time_t)t;
	struct tm tm;

	out[0] = '\0';
	if (t < 0 || !gmtime_r(&tt, &tm) || tm.tm_year > 9999 - 1900 ||
	    strftime(out, TETHER_CTRL_TIME_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm) !=
		TETHER_CTRL_TIME_LEN - 1)
		return TETHER_ERR_INVALID;
	return TETHER_OK;
}

/* Digits s[0..n) as a number, or -1. */
static int digits(const char *s, int n)
{
	int v = 0, i;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

int tether_ctrl_time_parse(const char *s, int64_t *t)
{
	static const int mdays[] = {31, 29, 31, 30, 31, 30,
				    31, 31, 30, 31, 30, 31};
	int y, mo, d, h, mi, sec, leap;
	int64_t days;

	*t = 0;
	if (s == NULL || strlen(s) != TETHER_CTRL_TIME_LEN - 1 || s[4] != '-' ||
	    s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' ||
	    s[19] != 'Z')
		return TETHER_ERR_FORMAT;
	y = digits(s, 4);
	mo = digits(s + 5, 2);
	d = digits(s + 8, 2);
	h = digits(s + 11, 2);
	mi = digits(s + 14, 2);
	sec = digits(s + 17, 2);
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
	    h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 59)
		return TETHER_ERR_FORMAT;
	leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (mo == 2 && d == 29 && !leap)
		return TETHER_ERR_FORMAT;
	/* Days from the civil date (Howard Hinnant's algorithm). */
	{
		int yy = mo <= 2 ? y - 1 : y;
		int era = yy / 400, yoe = yy - era * 400;
		int doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
		int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

		days = (int64_t)era * 146097 + doe - 719468;
	}
	*t = days * 86400 + h * 3600 + mi * 60 + sec;
	return TETHER_OK;
}

/* ---- The engine ---- */

enum kind {
	K_STR,	  /* const char * */
	K_INT,	  /* int64_t */
	K_BOOL,	  /* bool */
	K_REAL,	  /* double; NaN for null */
	K_HEX,	  /* uint8_t[max]: max bytes as 2*max hex digits */
	K_WORD,	  /* an enum from a word list, stored as int */
	K_TICKET, /* int64_t ticket id, "T-N" on the wire */
	K_TIME,	  /* int64_t Unix seconds, ISO-8601 on the wire */
	K_OBJ,	  /* a nested struct with its own schema */
	K_LIST,	  /* pointer to count nested structs */
	K_STRS,	  /* const char *const * and a count */
	K_LABELS, /* struct tether_ctrl_label * and a count; an object */
	K_JSON,	  /* json_t *, any value; borrowed both ways */
};

#define F_REQ 0x01u   /* must be there (and not NULL when encoding) */
#define F_NULL 0x02u  /* absent travels as null, and null reads as absent */
#define F_CLIP 0x04u  /* longer strings and lists are cut, not refused */
#define F_EMPTY 0x08u /* K_HEX: "" stands for absent */
#define F_ZERO 0x10u  /* K_INT, K_BOOL: 0, false travel as absent */

struct schema;

struct member {
	const char *name;
	unsigned char kind;
	unsigned char flags;
	unsigned short off;
	unsigned short has; /* offset + 1 of a presence bool; 0 for none */
	unsigned short cnt; /* offset + 1 of a size_t count (lists) */
	int64_t min;	    /* K_INT/K_TIME/K_TICKET: range; K_STR: length */
	int64_t max;	    /* ... K_HEX: bytes; lists: items */
	int64_t dflt;	    /* K_INT, K_WORD: the value when absent */
	const void *ref;    /* K_WORD: struct words; K_OBJ, K_LIST: schema */
};

struct words {
	const char *const *w;
	size_t n;
};

/* K_STR: a check beyond length, with what it wants in words. */
struct strcheck {
	bool (*ok)(const char *s);
	const char *what;
};

static const struct strcheck c_name = {tether_id_name_valid,
				       "a name (letters, digits, _.-)"};
static const struct strcheck c_nameplate = {tether_code_nameplate_valid,
					    "a nameplate"};
static const struct strcheck c_label = {tether_id_label_value_valid,
					"text without control characters"};

struct schema {
	const char *name;
	const struct member *m;
	size_t n;
	size_t size;	/* of the struct (list items) */
	bool root_list; /* a part whose JSON is its one member's value */
};

/*
 * Member macros: each checks at compile time that the field has the type
 * its kind moves (a mismatch is a comparison of distinct pointer types,
 * an error under -Werror, or an array of negative size).
 */
/* One macro per line reads as a table: kept as written. */
/* clang-format off */
#define TYPED_(T, f, type) (offsetof(T, f) + 0 * sizeof((type *)0 == &((T *)0)->f))
#define SIZED_(T, f, n)                                                        \
	(offsetof(T, f) + 0 * sizeof(char[sizeof(((T *)0)->f) == (n) ? 1 : -1]))
#define HAS_(T, h) (unsigned short)(TYPED_(T, h, bool) + 1)
#define CNT_(T, c) (unsigned short)(TYPED_(T, c, size_t) + 1)

#define STR(T, f, fl, lo, hi)                                                  \
	{#f, K_STR, fl, TYPED_(T, f, const char *), 0, 0, lo, hi, 0, NULL}
#define STRV(T, f, fl, lo, hi, check)                                          \
	{#f, K_STR, fl, TYPED_(T, f, const char *), 0, 0, lo, hi, 0, &check}
#define NAME(T, f, fl) STRV(T, f, fl, 1, TETHER_ID_NAME_MAX, c_name)
#define NAMEPLATE(T, f, fl)                                                    \
	STRV(T, f, fl, 1, TETHER_CTRL_NAMEPLATE_MAX, c_nameplate)
#define INT(T, f, fl, lo, hi, d)                                               \
	{#f, K_INT, fl, TYPED_(T, f, int64_t), 0, 0, lo, hi, d, NULL}
#define INT_H(T, f, fl, lo, hi, h)                                             \
	{#f, K_INT, fl, TYPED_(T, f, int64_t), HAS_(T, h), 0, lo, hi, 0, NULL}
#define BOOL(T, f, fl) {#f, K_BOOL, fl, TYPED_(T, f, bool), 0, 0, 0, 0, 0, NULL}
#define REAL(T, f, fl)                                                         \
	{#f, K_REAL, fl, TYPED_(T, f, double), 0, 0, 0, 0, 0, NULL}
#define HEX(T, f, fl, n) {#f, K_HEX, fl, SIZED_(T, f, n), 0, 0, 0, n, 0, NULL}
#define HEX_H(T, f, fl, n, h)                                                  \
	{#f, K_HEX, fl, SIZED_(T, f, n), HAS_(T, h), 0, 0, n, 0, NULL}
#define WORD(T, f, fl, list, d)                                                \
	{#f,  K_WORD, fl,	    SIZED_(T, f, sizeof(int)), 0, 0, 0, 0, d,  \
	 &list}
#define WORD_H(T, f, fl, list, h)                                              \
	{#f,	K_WORD, fl, SIZED_(T, f, sizeof(int)), HAS_(T, h), 0, 0, 0, 0, \
	 &list}
#define TICKET(T, f, fl)                                                       \
	{#f, K_TICKET, fl, TYPED_(T, f, int64_t), 0, 0, 1, INT64_MAX, 0, NULL}
#define TIME(T, f, fl)                                                         \
	{#f, K_TIME, fl, TYPED_(T, f, int64_t), 0, 0, 0, INT64_MAX, 0, NULL}
#define OBJ(T, f, fl, sch, h)                                                  \
	{#f, K_OBJ, fl, offsetof(T, f), HAS_(T, h), 0, 0, 0, 0, &sch}
#define OBJ_REQ(T, f, sch) {#f, K_OBJ, F_REQ, offsetof(T, f), 0, 0, 0, 0, 0, &sch}
#define LIST(T, f, c, fl, itype, sch, hi, h)                                   \
	{#f,	    K_LIST, fl, TYPED_(T, f, const itype *), h, CNT_(T, c), 0, \
	 hi,	    0,	    &sch}
#define STRS(T, f, c, fl, lo, hi, n)                                           \
	{#f, K_STRS, fl,	TYPED_(T, f, const char *const *), 0, CNT_(T, c), \
	 lo, hi,     n,		NULL}
#define LABELS(T, f, c, fl)                                                    \
	{#f,                                                                   \
	 K_LABELS,                                                             \
	 fl,                                                                   \
	 TYPED_(T, f, const struct tether_ctrl_label *),                       \
	 0,                                                                    \
	 CNT_(T, c),                                                           \
	 0,                                                                    \
	 TETHER_ID_LABEL_VALUE_MAX,                                            \
	 TETHER_CTRL_LABELS_MAX,                                               \
	 &c_label}
#define JSONV(T, f, fl) {#f, K_JSON, fl, TYPED_(T, f, json_t *), 0, 0, 0, 0, 0, NULL}

#define SCHEMA(var, T, ...)                                                    \
	static const struct member var##_m[] = {__VA_ARGS__};                  \
	static const struct schema var = {#var, var##_m, ARRAY_SIZE(var##_m),  \
					  sizeof(T), false}
#define EMPTY_SCHEMA(var)                                                      \
	static const struct schema var = {#var, NULL, 0, 0, false}

#define AT(base, off, type) ((type *)(void *)((char *)(base) + (off)))
#define CAT(base, off, type) ((const type *)(const void *)((const char *)(base) + (off)))
/* clang-format on */

/* A decoding context: where failures are worded and blocks are kept. */
struct dec {
	void **blocks;
	char *why;
	size_t whylen;
	const char *msg; /* the message's wire name, for why */
};

struct block {
	struct block *next;
	max_align_t data[];
};

static void *block_alloc(struct dec *d, size_t n, size_t size)
{
	struct block *b;

	if (size != 0 && n > (SIZE_MAX - sizeof(*b)) / size)
		return NULL;
	b = tether_calloc(1, sizeof(*b) + n * size);
	if (b == NULL)
		return NULL;
	b->next = *d->blocks;
	*d->blocks = b;
	return b->data;
}

static void blocks_free(void *head)
{
	struct block *b = head, *next;

	for (; b != NULL; b = next) {
		next = b->next;
		tether_free(b);
	}
}

__attribute__((format(printf, 3, 4))) static int fail(struct dec *d, int err,
						      const char *fmt, ...)
{
	va_list ap;
	int n;

	if (d->why == NULL || d->whylen == 0)
		return err;
	n = snprintf(d->why, d->whylen, "%s: ", d->msg);
	if (n < 0 || (size_t)n >= d->whylen)
		return err;
	va_start(ap, fmt);
	vsnprintf(d->why + n, d->whylen - (size_t)n, fmt, ap);
	va_end(ap);
	return err;
}

/* Length of s cut to at most max bytes, before a UTF-8 continuation. */
static size_t utf8_clip(const char *s, size_t n, size_t max)
{
	if (n <= max)
		return n;
	n = max;
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	return n;
}

static int dec_obj(struct dec *d, const struct schema *s, const json_t *obj,
		   void *out, bool top);

static int dec_str(struct dec *d, const struct member *m, const json_t *v,
		   const char **out)
{
	const char *s = json_string_value(v);
	size_t n = json_string_length(v), k;
	char *copy;

	if (s == NULL)
		return fail(d, TETHER_ERR_FORMAT,
			    "member \"%s\" is not a string", m->name);
	if ((int64_t)n < m->min)
		return fail(d, TETHER_ERR_FORMAT, "member \"%s\" is empty",
			    m->name);
	if ((int64_t)n > m->max) {
		if (!(m->flags & F_CLIP))
			return fail(d, TETHER_ERR_FORMAT,
				    "member \"%s\" is over %lld bytes", m->name,
				    (long long)m->max);
		k = utf8_clip(s, n, (size_t)m->max);
		copy = block_alloc(d, k + 1, 1);
		if (copy == NULL)
			return TETHER_ERR_NOMEM;
		memcpy(copy, s, k);
		copy[k] = '\0';
		s = copy;
	}
	if (m->ref != NULL && !((const struct strcheck *)m->ref)->ok(s))
		return fail(d, TETHER_ERR_FORMAT, "member \"%s\" is not %s",
			    m->name, ((const struct strcheck *)m->ref)->what);
	*out = s;
	return TETHER_OK;
}

static int dec_int(struct dec *d, const struct member *m, const json_t *v,
		   int64_t *out)
{
	json_int_t x;

	if (!json_is_integer(v))
		return fail(d, TETHER_ERR_FORMAT,
			    "member \"%s\" is not an integer", m->name);
	x = json_integer_value(v);
	if (x < m->min || x > m->max)
		return fail(d, TETHER_ERR_FORMAT,
			    "member \"%s\" is out of range", m->name);
	*out = x;
	return TETHER_OK;
}

static int dec_hex(struct dec *d, const struct member *m, const json_t *v,
		   uint8_t *out, bool *has)
{
	const char *s = json_string_value(v);

	if (s != NULL && s[0] == '\0' && (m->flags & F_EMPTY)) {
		*has = false;
		return TETHER_OK;
	}
	if (s == NULL || json_string_length(v) != 2 * (size_t)m->max ||
	    tether_hex_decode(s, out, (size_t)m->max) != 0)
		return fail(d, TETHER_ERR_FORMAT,
			    "member \"%s\" is not %lld bytes of hex", m->name,
			    (long long)m->max);
	*has = true;
	return TETHER_OK;
}

static int dec_list(struct dec *d, const struct member *m, const json_t *v,
		    void *base)
{
	const struct schema *s = m->ref;
	size_t n = json_array_size(v), i;
	char *items;
	int r;

	if (!json_is_array(v))
		return fail(d, TETHER_ERR_FORMAT,
			    "member \"%s\" is not an array", m->name);
	if ((int64_t)n > m->max) {
		if (!(m->flags & F_CLIP))
			return fail(d, TETHER_ERR_FORMAT,
				    "member \"%s\" has over %lld items",
				    m->name, (long long)m->max);
		n = (size_t)m->max;
	}
	items = n > 0 ? block_alloc(d, n, s->size) : NULL;
	if (n > 0 && items == NULL)
		return TETHER_ERR_NOMEM;
	for (i = 0; i < n; i++) {
		const json_t *e = json_array_get(v, i);

		if (!json_is_object(e))
			return fail(d, TETHER_ERR_FORMAT,
				    "member \"%s\" holds a non-object",
				    m->name);
		r = dec_obj(d, s, e, items + i * s->size, false);
		if (r != 0)
			return r;
	}
	*AT(base, m->off, const void *) = items;
	*AT(base, m->cnt - 1, size_t) = n;
	return TETHER_OK;
}

static int dec_strs(struct dec *d, const struct member *m, const json_t *v,
		    void *base)
{
	size_t n = json_array_size(v), i;
	const char **items;
	int r;

	if (!json_is_array(v))
		return fail(d, TETHER_ERR_FORMAT,
			    "member \"%s\" is not an array", m->name);
	if ((int64_t)n > m->dflt)
		return fail(d, TETHER_ERR_FORMAT,
			    "member \"%s\" has over %lld items", m->name,
			    (long long)m->dflt);
	items = n > 0 ? block_alloc(d, n, sizeof(*items)) : NULL;
	if (n > 0 && items == NULL)
		return TETHER_ERR_NOMEM;
	for (i = 0; i < n; i++) {
		r = dec_str(d, m, json_array_get(v, i), &items[i]);
		if (r != 0)
			return r;
	}
	*AT(base, m->off, const char **) = items;
	*AT(base, m->cnt - 1, size_t) = n;
	return TETHER_OK;
}

static int dec_labels(struct dec *d, const struct member *m, const json_t *v,
		      void *base)
{
	struct tether_ctrl_label *items;
	size_t n = json_object_size(v), i = 0;
	const char *key;
	json_t *val;
	int r;

	if (!json_is_object(v))
		return fail(d, TETHER_ERR_FORMAT,
			    "member \"%s\" is not an object", m->name);
	if ((int64_t)n > m->dflt)
		return fail(d, TETHER_ERR_FORMAT,
			    "member \"%s\" has over %lld entries", m->name,
			    (long long)m->dflt);
	items = n > 0 ? block_alloc(d, n, sizeof(*items)) : NULL;
	if (n > 0 && items == NULL)
		return TETHER_ERR_NOMEM;
	json_object_foreach ((json_t *)v, key, val) {
		if (!tether_id_name_valid(key))
			return fail(
			    d, TETHER_ERR_FORMAT,
			    "member \"%s\" has a key that is not a name",
			    m->name);
		items[i].key = key;
		r = dec_str(d, m, val, &items[i].value);
		if (r != 0)
			return r;
		i++;
	}
	*AT(base, m->off, const struct tether_ctrl_label *) = items;
	*AT(base, m->cnt - 1, size_t) = n;
	return TETHER_OK;
}

/* One member's value v (not NULL, not a null read as absent) into base. */
static int dec_value(struct dec *d, const struct member *m, const json_t *v,
		     void *base)
{
	const struct words *w;
	int64_t x;
	int r, i;

	switch ((enum kind)m->kind) {
	case K_STR:
		return dec_str(d, m, v, AT(base, m->off, const char *));
	case K_INT:
		r = dec_int(d, m, v, AT(base, m->off, int64_t));
		if (r == 0 && m->has != 0)
			*AT(base, m->has - 1, bool) = true;
		return r;
	case K_BOOL:
		if (!json_is_boolean(v))
			return fail(d, TETHER_ERR_FORMAT,
				    "member \"%s\" is not a boolean", m->name);
		*AT(base, m->off, bool) = json_is_true(v);
		return TETHER_OK;
	case K_REAL:
		if (!json_is_number(v))
			return fail(d, TETHER_ERR_FORMAT,
				    "member \"%s\" is not a number", m->name);
		*AT(base, m->off, double) = json_number_value(v);
		return TETHER_OK;
	case K_HEX: {
		bool has = false;

		r = dec_hex(d, m, v, AT(base, m->off, uint8_t), &has);
		if (r == 0 && m->has != 0)
			*AT(base, m->has - 1, bool) = has;
		return r;
	}
	case K_WORD:
		w = m->ref;
		i = tether_ctrl_word(w->w, w->n, json_string_value(v));
		if (i < 0)
			return fail(d, TETHER_ERR_FORMAT,
				    "member \"%s\" is not one of its words",
				    m->name);
		*AT(base, m->off, int) = i;
		if (m->has != 0)
			*AT(base, m->has - 1, bool) = true;
		return TETHER_OK;
	case K_TICKET:
		if (tether_id_ticket_parse(json_string_value(v), &x) != 0)
			return fail(d, TETHER_ERR_FORMAT,
				    "member \"%s\" is not a ticket (T-N)",
				    m->name);
		*AT(base, m->off, int64_t) = x;
		return TETHER_OK;
	case K_TIME:
		if (tether_ctrl_time_parse(json_string_value(v), &x) != 0)
			return fail(d, TETHER_ERR_FORMAT,
				    "member \"%s\" is not an ISO-8601 UTC time",
				    m->name);
		*AT(base, m->off, int64_t) = x;
		return TETHER_OK;
	case K_OBJ:
		if (!json_is_object(v))
			return fail(d, TETHER_ERR_FORMAT,
				    "member \"%s\" is not an object", m->name);
		r = dec_obj(d, m->ref, v, AT(base, m->off, char), false);
		if (r == 0 && m->has != 0)
			*AT(base, m->has - 1, bool) = true;
		return r;
	case K_LIST:
		r = dec_list(d, m, v, base);
		if (r == 0 && m->has != 0)
			*AT(base, m->has - 1, bool) = true;
		return r;
	case K_STRS:
		return dec_strs(d, m, v, base);
	case K_LABELS:
		return dec_labels(d, m, v, base);
	case K_JSON:
		*AT(base, m->off, const json_t *) = v;
		return TETHER_OK;
	}
	return TETHER_ERR_INTERNAL;
}

/* Sets an absent member to its default. */
static void dec_absent(const struct member *m, void *base)
{
	switch ((enum kind)m->kind) {
	case K_INT:
		*AT(base, m->off, int64_t) = m->dflt;
		break;
	case K_WORD:
		*AT(base, m->off, int) = (int)m->dflt;
		break;
	case K_REAL:
		*AT(base, m->off, double) = NAN;
		break;
	default:
		break; /* zeroed already: NULL, 0, false, no items */
	}
}

static const struct member *find_member(const struct schema *s, const char *key)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (strcmp(s->m[i].name, key) == 0)
			return &s->m[i];
	return NULL;
}

/*
 * obj's members into out (zeroed here): every member of s checked, every
 * key of obj known to s ("t" and "id" too, at the top).
 */
static int dec_obj(struct dec *d, const struct schema *s, const json_t *obj,
		   void *out, bool top)
{
	const char *key;
	json_t *v;
	size_t i;
	int r;

	if (s->size != 0)
		memset(out, 0, s->size);
	json_object_foreach ((json_t *)obj, key, v) {
		if (top && (strcmp(key, "t") == 0 || strcmp(key, "id") == 0))
			continue;
		if (find_member(s, key) == NULL)
			return fail(d, TETHER_ERR_PROTOCOL,
				    "unknown member \"%.40s\"", key);
	}
	for (i = 0; i < s->n; i++) {
		const struct member *m = &s->m[i];

		v = json_object_get(obj, m->name);
		if (v != NULL && json_is_null(v) && (m->flags & F_NULL))
			v = NULL;
		if (v == NULL) {
			if (m->flags & F_REQ)
				return fail(d, TETHER_ERR_FORMAT,
					    "member \"%s\" missing", m->name);
			dec_absent(m, out);
			continue;
		}
		r = dec_value(d, m, v, out);
		if (r != 0)
			return r;
	}
	/*
	 * Members that share a presence flag come together (a SPAKE2 half
	 * is both its element and its confirmation): one alone would leave
	 * the other reading as zeros.
	 */
	for (i = 0; i < s->n; i++) {
		const struct member *m = &s->m[i];

		v = json_object_get(obj, m->name);
		if (m->has != 0 && (v == NULL || json_is_null(v)) &&
		    *AT(out, m->has - 1, bool))
			return fail(d, TETHER_ERR_FORMAT,
				    "member \"%s\" missing", m->name);
	}
	return TETHER_OK;
}

/* ---- Encoding ---- */

/*
 * An encoding context: what is encoded, for the log, and why it failed
 * (no memory unless a value broke the schema).
 */
struct enc {
	const char *what;
	int err;
};

/* Why an encode failed goes to the log: the program built a bad body. */
__attribute__((format(printf, 2, 3))) static json_t *bad(struct enc *e,
							 const char *fmt, ...)
{
	char text[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	tether_log_err(TETHER_ERR_INVALID, "cannot encode %s: %s", e->what,
		       text);
	e->err = TETHER_ERR_INVALID;
	return NULL;
}

static json_t *enc_obj(struct enc *e, const struct schema *s, const void *in);

/*
 * Whether s[0..n) is well-formed UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing past U+10FFFF), as jansson requires.
 */
static bool utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, k, len;
	uint32_t c;

	while (i < n) {
		c = p[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			len = 2, c &= 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			len = 3, c &= 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			len = 4, c &= 0x07;
		else
			return false;
		if (n - i < len)
			return false;
		for (k = 1; k < len; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			c = (c << 6) | (p[i + k] & 0x3f);
		}
		if ((len == 3 && c < 0x800) || (len == 4 && c < 0x10000) ||
		    c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

static json_t *enc_str(struct enc *e, const struct member *m, const char *s)
{
	size_t n = strlen(s);
	json_t *v;

	if ((int64_t)n < m->min)
		return bad(e, "member \"%s\" is empty", m->name);
	if ((int64_t)n > m->max) {
		if (!(m->flags & F_CLIP))
			return bad(e, "member \"%s\" is over %lld bytes",
				   m->name, (long long)m->max);
		n = utf8_clip(s, n, (size_t)m->max);
	}
	if (m->ref != NULL && !((const struct strcheck *)m->ref)->ok(s))
		return bad(e, "member \"%s\" is not %s", m->name,
			   ((const struct strcheck *)m->ref)->what);
	v = json_stringn(s, n);
	/* jansson's NULL is no memory or text that is not UTF-8. */
	if (v == NULL && !utf8_valid(s, n))
		return bad(e, "member \"%s\" is not UTF-8", m->name);
	return v;
}

static json_t *enc_real(double v)
{
	if (!isfinite(v))
		return json_null();
	/* Integral values as integers, as a plugin would have written them. */
	if (v == floor(v) && fabs(v) < 9007199254740992.0)
		return json_integer((json_int_t)v);
	return json_real(v);
}

static json_t *enc_list(struct enc *e, const struct member *m, const void *base)
{
	const struct schema *s = m->ref;
	const char *items = *CAT(base, m->off, const char *);
	size_t n = *CAT(base, m->cnt - 1, size_t), i;
	json_t *arr, *v;

	if ((int64_t)n > m->max) {
		if (!(m->flags & F_CLIP))
			return bad(e, "member \"%s\" has over %lld items",
				   m->name, (long long)m->max);
		n = (size_t)m->max;
	}
	if (n > 0 && items == NULL)
		return bad(e, "member \"%s\" has no items", m->name);
	arr = json_array();
	for (i = 0; arr != NULL && i < n; i++) {
		v = enc_obj(e, s, items + i * s->size);
		if (v == NULL || json_array_append_new(arr, v) != 0) {
			json_decref(arr);
			arr = NULL;
		}
	}
	return arr;
}

static json_t *enc_strs(struct enc *e, const struct member *m, const void *base)
{
	const char *const *items = *CAT(base, m->off, const char *const *);
	size_t n = *CAT(base, m->cnt - 1, size_t), i;
	json_t *arr, *v;

	if ((int64_t)n > m->dflt)
		return bad(e, "member \"%s\" has over %lld items", m->name,
			   (long long)m->dflt);
	if (n > 0 && items == NULL)
		return bad(e, "member \"%s\" has no items", m->name);
	for (i = 0; i < n; i++)
		if (items[i] == NULL)
			return bad(e, "member \"%s\" has a NULL item", m->name);
	arr = json_array();
	for (i = 0; arr != NULL && i < n; i++) {
		v = enc_str(e, m, items[i]);
		if (v == NULL || json_array_append_new(arr, v) != 0) {
			json_decref(arr);
			arr = NULL;
		}
	}
	return arr;
}

static json_t *enc_labels(struct enc *e, const struct member *m,
			  const void *base)
{
	const struct tether_ctrl_label *items =
	    *CAT(base, m->off, const struct tether_ctrl_label *);
	size_t n = *CAT(base, m->cnt - 1, size_t), i;
	json_t *obj, *v;

	if ((int64_t)n > m->dflt)
		return bad(e, "member \"%s\" has over %lld entries", m->name,
			   (long long)m->dflt);
	if (n > 0 && items == NULL)
		return bad(e, "member \"%s\" has no entries", m->name);
	obj = json_object();
	for (i = 0; obj != NULL && i < n; i++) {
		if (!tether_id_name_valid(items[i].key) ||
		    items[i].value == NULL ||
		    json_object_get(obj, items[i].key) != NULL) {
			json_decref(obj);
			return bad(e, "member \"%s\" has a bad key", m->name);
		}
		v = enc_str(e, m, items[i].value);
		if (v == NULL || json_object_set_new(obj, items[i].key, v)) {
			json_decref(obj);
			obj = NULL;
		}
	}
	return obj;
}

/*
 * One member of base as a JSON value; *skip for an absent member that is
 * left out.  NULL (without skip) on a bad value or no memory.
 */
static json_t *enc_value(struct enc *e, const struct member *m,
			 const void *base, bool *skip)
{
	bool absent = m->has != 0 && !*CAT(base, m->has - 1, bool);
	char buf[2 * 128 + 1];
	const struct words *w;
	int64_t x;
	int i;

	*skip = false;
	switch ((enum kind)m->kind) {
	case K_STR: {
		const char *s = *CAT(base, m->off, const char *);

		if (s != NULL)
			return enc_str(e, m, s);
		absent = true;
		break;
	}
	case K_INT:
		if (absent)
			break;
		x = *CAT(base, m->off, int64_t);
		if (absent || (x == 0 && (m->flags & F_ZERO))) {
			absent = true;
			break;
		}
		if (x < m->min || x > m->max)
			return bad(e, "member \"%s\" is out of range", m->name);
		return json_integer(x);
	case K_BOOL:
		if (!*CAT(base, m->off, bool) && (m->flags & F_ZERO)) {
			absent = true;
			break;
		}
		return json_boolean(*CAT(base, m->off, bool));
	case K_REAL:
		if (isnan(*CAT(base, m->off, double)) && !(m->flags & F_REQ)) {
			absent = true;
			break;
		}
		return enc_real(*CAT(base, m->off, double));
	case K_HEX:
		if (absent && (m->flags & F_EMPTY))
			return json_string("");
		if (absent)
			break;
		if (tether_hex_encode(CAT(base, m->off, uint8_t),
				      (size_t)m->max, buf, sizeof(buf)) != 0)
			return bad(e, "member \"%s\" is too long", m->name);
		return json_string(buf);
	case K_WORD:
		if (absent)
			break;
		w = m->ref;
		i = *CAT(base, m->off, int);
		if (i < 0 || (size_t)i >= w->n)
			return bad(e, "member \"%s\" is not one of its words",
				   m->name);
		return json_string(w->w[i]);
	case K_TICKET:
		x = *CAT(base, m->off, int64_t);
		if (x == 0 && !(m->flags & F_REQ)) {
			absent = true;
			break;
		}
		if (tether_id_ticket_format(x, buf, sizeof(buf)) != 0)
			return bad(e, "member \"%s\" is not a ticket id",
				   m->name);
		return json_string(buf);
	case K_TIME:
		x = *CAT(base, m->off, int64_t);
		if (x == 0 && !(m->flags & F_REQ)) {
			absent = true;
			break;
		}
		if (tether_ctrl_time_format(x, buf) != 0)
			return bad(e, "member \"%s\" is not a time", m->name);
		return json_string(buf);
	case K_OBJ:
		if (absent)
			break;
		return enc_obj(e, m->ref, CAT(base, m->off, char));
	case K_LIST:
		if (absent)
			break;
		return enc_list(e, m, base);
	case K_STRS:
		return enc_strs(e, m, base);
	case K_LABELS:
		if (*CAT(base, m->cnt - 1, size_t) == 0 &&
		    !(m->flags & F_REQ)) {
			absent = true;
			break;
		}
		return enc_labels(e, m, base);
	case K_JSON: {
		json_t *v = *(json_t *const *)CAT(base, m->off, json_t *);

		if (v != NULL)
			return json_incref(v);
		absent = true;
		break;
	}
	}
	if (absent && (m->flags & F_REQ))
		return bad(e, "member \"%s\" missing", m->name);
	if (absent && (m->flags & F_NULL))
		return json_null();
	*skip = true;
	return NULL;
}

static json_t *enc_obj(struct enc *e, const struct schema *s, const void *in)
{
	json_t *obj = json_object(), *v;
	bool skip;
	size_t i;

	for (i = 0; obj != NULL && i < s->n; i++) {
		v = enc_value(e, &s->m[i], in, &skip);
		if (skip)
			continue;
		if (v == NULL || json_object_set_new(obj, s->m[i].name, v)) {
			json_decref(obj);
			obj = NULL;
		}
	}
	return obj;
}

/* The schemas are tables, one member per line: kept as written. */
/* clang-format off */
/* ---- Schemas: parts ---- */

/* The word lists as the engine sees them. */
#define WORDS_ENGINE_(lname, uname, ...)                                       \
	static const struct words w_##lname = {                                \
		tether_ctrl_##lname##_words,                                   \
		sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *)};
TETHER_CTRL_WORD_LISTS(WORDS_ENGINE_)
#undef WORDS_ENGINE_

#define OPTIONAL 0u
#define REQUIRED F_REQ

SCHEMA(s_facts, struct tether_ctrl_facts,
       STR(struct tether_ctrl_facts, hostname, F_CLIP, 0, TETHER_CTRL_FACT_MAX),
       STR(struct tether_ctrl_facts, os, F_CLIP, 0, TETHER_CTRL_FACT_MAX),
       STR(struct tether_ctrl_facts, user, F_CLIP, 0, TETHER_CTRL_FACT_MAX));

SCHEMA(s_info, struct tether_ctrl_info,
       NAME(struct tether_ctrl_info, technician, OPTIONAL),
       STR(struct tether_ctrl_info, ticket, OPTIONAL, 0, 32),
       STR(struct tether_ctrl_info, title, OPTIONAL, 0, TETHER_CTRL_TITLE_MAX),
       STRS(struct tether_ctrl_info, capabilities, ncapabilities, OPTIONAL, 1,
	    32, TETHER_CTRL_CAPS_MAX));

SCHEMA(s_perf, struct tether_ctrl_perf,
       STR(struct tether_ctrl_perf, label, REQUIRED, 1, 128),
       REAL(struct tether_ctrl_perf, value, F_NULL),
       STR(struct tether_ctrl_perf, uom, REQUIRED, 0, 16),
       STR(struct tether_ctrl_perf, warn, F_NULL, 0, 64),
       STR(struct tether_ctrl_perf, crit, F_NULL, 0, 64),
       REAL(struct tether_ctrl_perf, min, F_NULL),
       REAL(struct tether_ctrl_perf, max, F_NULL));

SCHEMA(s_session_row, struct tether_ctrl_session_row,
       NAMEPLATE(struct tether_ctrl_session_row, nameplate, REQUIRED),
       WORD(struct tether_ctrl_session_row, state, REQUIRED, w_session_state,
	    0),
       TIME(struct tether_ctrl_session_row, created_at, F_NULL),
       TIME(struct tether_ctrl_session_row, expires_at, F_NULL),
       OBJ(struct tether_ctrl_session_row, agent, F_NULL, s_facts, has_agent));

SCHEMA(s_audit_row, struct tether_ctrl_audit_row,
       INT(struct tether_ctrl_audit_row, id, F_ZERO, 0, INT64_MAX, 0),
       TIME(struct tether_ctrl_audit_row, ts, F_NULL),
       STR(struct tether_ctrl_audit_row, actor, REQUIRED, 1, 128),
       STR(struct tether_ctrl_audit_row, event, REQUIRED, 1, 64),
       JSONV(struct tether_ctrl_audit_row, detail, F_NULL));

SCHEMA(s_attachment_row, struct tether_ctrl_attachment_row,
       STR(struct tether_ctrl_attachment_row, kind, REQUIRED, 1, 32),
       STR(struct tether_ctrl_attachment_row, source, REQUIRED, 1, 128),
       TIME(struct tether_ctrl_attachment_row, created_at, F_NULL),
       INT(struct tether_ctrl_attachment_row, size, REQUIRED, 0, INT64_MAX,
	   0));

SCHEMA(s_comment_row, struct tether_ctrl_comment_row,
       INT(struct tether_ctrl_comment_row, id, REQUIRED, 1, INT64_MAX, 0),
       NAME(struct tether_ctrl_comment_row, by, REQUIRED),
       TIME(struct tether_ctrl_comment_row, at, F_NULL),
       STR(struct tether_ctrl_comment_row, text, REQUIRED, 1,
	   TETHER_CTRL_COMMENT_MAX));

SCHEMA(s_ticket, struct tether_ctrl_ticket,
       TICKET(struct tether_ctrl_ticket, id, REQUIRED),
       STR(struct tether_ctrl_ticket, title, REQUIRED, 1, 256),
       STR(struct tether_ctrl_ticket, customer, F_NULL, 0, 256),
       WORD(struct tether_ctrl_ticket, status, REQUIRED, w_status, 0),
       WORD(struct tether_ctrl_ticket, source, REQUIRED, w_source, 0),
       TIME(struct tether_ctrl_ticket, created_at, F_NULL),
       TIME(struct tether_ctrl_ticket, closed_at, F_NULL),
       STR(struct tether_ctrl_ticket, resolution, F_NULL, 0,
	   TETHER_CTRL_RESOLUTION_MAX),
       NAME(struct tether_ctrl_ticket, created_by, F_NULL),
       NAME(struct tether_ctrl_ticket, assignee, F_NULL),
       LIST(struct tether_ctrl_ticket, sessions, nsessions, OPTIONAL,
	    struct tether_ctrl_session_row, s_session_row, TETHER_CTRL_ROWS_MAX,
	    HAS_(struct tether_ctrl_ticket, has_detail)),
       LIST(struct tether_ctrl_ticket, attachments, nattachments, OPTIONAL,
	    struct tether_ctrl_attachment_row, s_attachment_row,
	    TETHER_CTRL_ROWS_MAX, HAS_(struct tether_ctrl_ticket, has_detail)),
       LIST(struct tether_ctrl_ticket, audit, naudit, OPTIONAL,
	    struct tether_ctrl_audit_row, s_audit_row, TETHER_CTRL_ROWS_MAX,
	    HAS_(struct tether_ctrl_ticket, has_detail)),
       INT(struct tether_ctrl_ticket, audit_more, F_ZERO, 0, INT64_MAX, 0),
       LIST(struct tether_ctrl_ticket, comments, ncomments, OPTIONAL,
	    struct tether_ctrl_comment_row, s_comment_row, TETHER_CTRL_ROWS_MAX,
	    HAS_(struct tether_ctrl_ticket, has_detail)),
       INT(struct tether_ctrl_ticket, comments_more, F_ZERO, 0, INT64_MAX,
	   0));

SCHEMA(s_agent_row, struct tether_ctrl_agent_row,
       NAME(struct tether_ctrl_agent_row, name, REQUIRED),
       LABELS(struct tether_ctrl_agent_row, labels, nlabels, F_NULL),
       OBJ(struct tether_ctrl_agent_row, facts, F_NULL, s_facts, has_facts),
       TIME(struct tether_ctrl_agent_row, enrolled_at, F_NULL),
       TIME(struct tether_ctrl_agent_row, last_seen, F_NULL),
       BOOL(struct tether_ctrl_agent_row, connected, REQUIRED),
       WORD_H(struct tether_ctrl_agent_row, worst, F_NULL, w_check_state,
	      has_worst),
       INT(struct tether_ctrl_agent_row, checks, REQUIRED, 0, INT64_MAX, 0));

SCHEMA(s_live_row, struct tether_ctrl_live_row,
       TICKET(struct tether_ctrl_live_row, ticket, REQUIRED),
       STR(struct tether_ctrl_live_row, title, REQUIRED, 1, 256),
       NAME(struct tether_ctrl_live_row, technician, F_NULL),
       NAMEPLATE(struct tether_ctrl_live_row, nameplate, REQUIRED),
       WORD(struct tether_ctrl_live_row, state, REQUIRED, w_session_state, 0),
       BOOL(struct tether_ctrl_live_row, connected, REQUIRED),
       STR(struct tether_ctrl_live_row, addr, F_NULL, 0, 64),
       TIME(struct tether_ctrl_live_row, since, F_NULL),
       OBJ(struct tether_ctrl_live_row, agent, F_NULL, s_facts, has_agent),
       STRS(struct tether_ctrl_live_row, channels, nchannels, REQUIRED, 1, 32,
	    TETHER_CTRL_LIVE_CHANNELS_MAX));

SCHEMA(s_check_row, struct tether_ctrl_check_row,
       NAME(struct tether_ctrl_check_row, agent, REQUIRED),
       NAME(struct tether_ctrl_check_row, check, REQUIRED),
       WORD(struct tether_ctrl_check_row, state, REQUIRED, w_check_state, 0),
       WORD(struct tether_ctrl_check_row, type, REQUIRED, w_check_type, 0),
       INT(struct tether_ctrl_check_row, attempt, REQUIRED, 0, INT32_MAX, 0),
       INT(struct tether_ctrl_check_row, max_attempts, REQUIRED, 0, INT32_MAX,
	   0),
       TIME(struct tether_ctrl_check_row, since, F_NULL),
       TIME(struct tether_ctrl_check_row, last, F_NULL),
       STR(struct tether_ctrl_check_row, output, F_NULL, 0,
	   TETHER_CTRL_OUTPUT_MAX),
       LIST(struct tether_ctrl_check_row, perfdata, nperfdata, OPTIONAL,
	    struct tether_ctrl_perf, s_perf, TETHER_CTRL_PERFDATA_MAX, 0),
       TICKET(struct tether_ctrl_check_row, ticket, F_NULL),
       BOOL(struct tether_ctrl_check_row, flapping, REQUIRED));

/* The list parts: one member, whose value is the whole JSON. */
static const struct member s_labels_m[] = {
	LABELS(struct tether_ctrl_labels, labels, nlabels, OPTIONAL)};
static const struct schema s_labels = {"labels", s_labels_m, 1,
				       sizeof(struct tether_ctrl_labels), true};
static const struct member s_perfdata_m[] = {
	LIST(struct tether_ctrl_perfdata, perfdata, nperfdata, F_CLIP,
	     struct tether_ctrl_perf, s_perf, TETHER_CTRL_PERFDATA_MAX, 0)};
static const struct schema s_perfdata = {"perfdata", s_perfdata_m, 1,
					 sizeof(struct tether_ctrl_perfdata),
					 true};

static const struct schema *const parts[] = {
	[TETHER_CTRL_PART_FACTS] = &s_facts,
	[TETHER_CTRL_PART_INFO] = &s_info,
	[TETHER_CTRL_PART_LABELS] = &s_labels,
	[TETHER_CTRL_PART_PERFDATA] = &s_perfdata,
	[TETHER_CTRL_PART_TICKET] = &s_ticket,
	[TETHER_CTRL_PART_AGENT_ROW] = &s_agent_row,
	[TETHER_CTRL_PART_CHECK_ROW] = &s_check_row,
	[TETHER_CTRL_PART_LIVE_ROW] = &s_live_row,
};
_Static_assert(ARRAY_SIZE(parts) == TETHER_CTRL_PARTS, "a schema per part");

/* ---- Schemas: messages ---- */

EMPTY_SCHEMA(s_empty);

SCHEMA(s_hello, struct tether_ctrl_hello,
       WORD(struct tether_ctrl_hello, role, REQUIRED, w_role, 0),
       INT(struct tether_ctrl_hello, version, REQUIRED, 0, INT32_MAX, 0),
       NAME(struct tether_ctrl_hello, technician, OPTIONAL),
       STR(struct tether_ctrl_hello, token, OPTIONAL, 1, TETHER_CTRL_TOKEN_MAX),
       HEX_H(struct tether_ctrl_hello, pubkey, OPTIONAL, TETHER_SIGN_PUB_LEN,
	     has_pubkey));

SCHEMA(s_welcome, struct tether_ctrl_welcome,
       INT(struct tether_ctrl_welcome, version, REQUIRED, 0, INT32_MAX, 0),
       HEX_H(struct tether_ctrl_welcome, challenge, OPTIONAL,
	     TETHER_AGENT_CHALLENGE_LEN, has_challenge));

static const struct words w_code = {code_names, TETHER_CTRL_CODES};

SCHEMA(s_err, struct tether_ctrl_err,
       WORD(struct tether_ctrl_err, code, REQUIRED, w_code, 0),
       STR(struct tether_ctrl_err, message, REQUIRED | F_CLIP, 0,
	   TETHER_CTRL_MESSAGE_MAX));

SCHEMA(s_ticket_new, struct tether_ctrl_ticket_new,
       STR(struct tether_ctrl_ticket_new, title, REQUIRED, 1,
	   TETHER_CTRL_TITLE_MAX),
       STR(struct tether_ctrl_ticket_new, customer, OPTIONAL, 0,
	   TETHER_CTRL_TITLE_MAX));

SCHEMA(s_ticket_list, struct tether_ctrl_ticket_list,
       WORD_H(struct tether_ctrl_ticket_list, status, OPTIONAL, w_status,
	      has_status),
       WORD_H(struct tether_ctrl_ticket_list, source, OPTIONAL, w_source,
	      has_source),
       STR(struct tether_ctrl_ticket_list, customer, OPTIONAL, 1,
	   TETHER_CTRL_TITLE_MAX),
       STR(struct tether_ctrl_ticket_list, search, OPTIONAL, 1,
	   TETHER_CTRL_TITLE_MAX),
       INT(struct tether_ctrl_ticket_list, limit, F_ZERO, 0,
	   TETHER_CTRL_PAGE_MAX, 0),
       TICKET(struct tether_ctrl_ticket_list, before, OPTIONAL),
       NAME(struct tether_ctrl_ticket_list, assignee, OPTIONAL),
       BOOL(struct tether_ctrl_ticket_list, assignee_me, F_ZERO),
       BOOL(struct tether_ctrl_ticket_list, unassigned, F_ZERO));

SCHEMA(s_ticket_show, struct tether_ctrl_ticket_show,
       TICKET(struct tether_ctrl_ticket_show, ticket, REQUIRED),
       INT(struct tether_ctrl_ticket_show, limit, F_ZERO, 0,
	   TETHER_CTRL_PAGE_MAX, 0),
       INT(struct tether_ctrl_ticket_show, before, F_ZERO, 0, INT64_MAX, 0),
       INT(struct tether_ctrl_ticket_show, after, F_ZERO, 0, INT64_MAX, 0));

SCHEMA(s_ticket_comment, struct tether_ctrl_ticket_comment,
       TICKET(struct tether_ctrl_ticket_comment, ticket, REQUIRED),
       STR(struct tether_ctrl_ticket_comment, text, REQUIRED, 1,
	   TETHER_CTRL_COMMENT_MAX));

SCHEMA(s_ticket_ref, struct tether_ctrl_ticket_ref,
       TICKET(struct tether_ctrl_ticket_ref, ticket, REQUIRED));

SCHEMA(s_ticket_close, struct tether_ctrl_ticket_close,
       TICKET(struct tether_ctrl_ticket_close, ticket, REQUIRED),
       STR(struct tether_ctrl_ticket_close, resolution, REQUIRED, 1,
	   TETHER_CTRL_RESOLUTION_MAX));

SCHEMA(s_invite, struct tether_ctrl_invite,
       TICKET(struct tether_ctrl_invite, ticket, REQUIRED),
       INT(struct tether_ctrl_invite, expires, OPTIONAL, 1,
	   TETHER_INVITE_TTL_MAX, TETHER_INVITE_TTL_DEFAULT),
       STR(struct tether_ctrl_invite, info, REQUIRED, 0, TETHER_CTRL_INFO_MAX),
       HEX(struct tether_ctrl_invite, pake, REQUIRED, TETHER_SPAKE2_ELEM_LEN));

SCHEMA(s_confirm, struct tether_ctrl_confirm,
       INT(struct tether_ctrl_confirm, session, REQUIRED, 1, INT64_MAX, 0),
       HEX(struct tether_ctrl_confirm, conf, REQUIRED, TETHER_SPAKE2_CONF_LEN),
       STR(struct tether_ctrl_confirm, info, REQUIRED, 1,
	   TETHER_CTRL_SEALED_INFO_MAX));

SCHEMA(s_session_ref, struct tether_ctrl_session_ref,
       INT(struct tether_ctrl_session_ref, session, REQUIRED, 1, INT64_MAX,
	   0));

SCHEMA(s_open, struct tether_ctrl_open,
       INT(struct tether_ctrl_open, session, REQUIRED, 1, INT64_MAX, 0),
       WORD(struct tether_ctrl_open, kind, REQUIRED, w_kind, 0),
       HEX(struct tether_ctrl_open, nonce, REQUIRED, TETHER_SEAL_NONCE_LEN));

SCHEMA(s_channel_ref, struct tether_ctrl_channel_ref,
       INT(struct tether_ctrl_channel_ref, channel, REQUIRED, 1, UINT32_MAX,
	   0));

SCHEMA(s_health, struct tether_ctrl_health,
       NAME(struct tether_ctrl_health, agent, OPTIONAL));

SCHEMA(s_diag_attach, struct tether_ctrl_diag_attach,
       TICKET(struct tether_ctrl_diag_attach, ticket, REQUIRED),
       STR(struct tether_ctrl_diag_attach, bundle, REQUIRED, 1,
	   TETHER_BUNDLE_MAX));

SCHEMA(s_chan_close, struct tether_ctrl_chan_close,
       INT(struct tether_ctrl_chan_close, channel, REQUIRED, 1, UINT32_MAX,
	   0),
       STR(struct tether_ctrl_chan_close, reason, F_CLIP, 0,
	   TETHER_CTRL_REASON_MAX));

SCHEMA(s_join, struct tether_ctrl_join,
       NAMEPLATE(struct tether_ctrl_join, nameplate, REQUIRED),
       OBJ(struct tether_ctrl_join, facts, OPTIONAL, s_facts, has_facts));

SCHEMA(s_join_ok, struct tether_ctrl_join_ok,
       INT(struct tether_ctrl_join_ok, session, REQUIRED, 1, INT64_MAX, 0),
       HEX(struct tether_ctrl_join_ok, pake_a, REQUIRED,
	   TETHER_SPAKE2_ELEM_LEN),
       INT(struct tether_ctrl_join_ok, expires_at, REQUIRED, 0, INT64_MAX, 0),
       NAMEPLATE(struct tether_ctrl_join_ok, nameplate, REQUIRED));

SCHEMA(s_pake, struct tether_ctrl_pake,
       HEX(struct tether_ctrl_pake, pake_b, REQUIRED, TETHER_SPAKE2_ELEM_LEN),
       HEX(struct tether_ctrl_pake, conf_b, REQUIRED, TETHER_SPAKE2_CONF_LEN));

SCHEMA(s_pake_ok, struct tether_ctrl_pake_ok,
       HEX(struct tether_ctrl_pake_ok, resume, REQUIRED,
	   TETHER_CTRL_RESUME_LEN));

SCHEMA(s_resume, struct tether_ctrl_resume,
       INT(struct tether_ctrl_resume, session, REQUIRED, 1, INT64_MAX, 0),
       HEX(struct tether_ctrl_resume, token, REQUIRED, TETHER_CTRL_RESUME_LEN));

SCHEMA(s_resume_ok, struct tether_ctrl_resume_ok,
       WORD(struct tether_ctrl_resume_ok, state, REQUIRED, w_session_state,
	    0));

SCHEMA(s_agent_confirm, struct tether_ctrl_agent_confirm,
       HEX(struct tether_ctrl_agent_confirm, conf, REQUIRED,
	   TETHER_SPAKE2_CONF_LEN),
       STR(struct tether_ctrl_agent_confirm, info, REQUIRED, 1,
	   TETHER_CTRL_SEALED_INFO_MAX));

SCHEMA(s_confirmed, struct tether_ctrl_confirmed,
       BOOL(struct tether_ctrl_confirmed, ok, REQUIRED),
       STRS(struct tether_ctrl_confirmed, allowed, nallowed, OPTIONAL, 1, 32,
	    TETHER_CTRL_CAPS_MAX),
       STRS(struct tether_ctrl_confirmed, requested, nrequested, OPTIONAL, 1,
	    32, TETHER_CTRL_CAPS_MAX));

SCHEMA(s_chan_open, struct tether_ctrl_chan_open,
       INT(struct tether_ctrl_chan_open, channel, REQUIRED, 1, UINT32_MAX, 0),
       WORD(struct tether_ctrl_chan_open, kind, REQUIRED, w_kind, 0),
       HEX(struct tether_ctrl_chan_open, nonce, REQUIRED,
	   TETHER_SEAL_NONCE_LEN),
       NAME(struct tether_ctrl_chan_open, technician, REQUIRED));

SCHEMA(s_opened, struct tether_ctrl_opened,
       INT(struct tether_ctrl_opened, channel, REQUIRED, 1, UINT32_MAX, 0),
       HEX(struct tether_ctrl_opened, nonce, REQUIRED, TETHER_SEAL_NONCE_LEN));

SCHEMA(s_open_failed, struct tether_ctrl_open_failed,
       INT(struct tether_ctrl_open_failed, channel, REQUIRED, 1, UINT32_MAX,
	   0),
       STR(struct tether_ctrl_open_failed, reason, F_CLIP, 0,
	   TETHER_CTRL_REASON_MAX));

SCHEMA(s_xfer_report, struct tether_ctrl_xfer_report,
       INT(struct tether_ctrl_xfer_report, channel, REQUIRED, 1, UINT32_MAX,
	   0),
       WORD(struct tether_ctrl_xfer_report, direction, REQUIRED, w_xfer_dir,
	    0),
       STR(struct tether_ctrl_xfer_report, path, REQUIRED | F_CLIP, 0,
	   TETHER_CTRL_PATH_MAX),
       WORD(struct tether_ctrl_xfer_report, type, REQUIRED, w_xfer_type, 0),
       INT(struct tether_ctrl_xfer_report, size, REQUIRED, 0, INT64_MAX, 0),
       HEX_H(struct tether_ctrl_xfer_report, sha256, REQUIRED | F_EMPTY, 32,
	     has_sha256),
       INT(struct tether_ctrl_xfer_report, offset, REQUIRED, 0, INT64_MAX, 0),
       INT(struct tether_ctrl_xfer_report, sent, REQUIRED, 0, INT64_MAX, 0),
       INT(struct tether_ctrl_xfer_report, ms, REQUIRED, 0, INT64_MAX, 0),
       BOOL(struct tether_ctrl_xfer_report, ok, REQUIRED),
       STR(struct tether_ctrl_xfer_report, reason, F_CLIP, 0,
	   TETHER_CTRL_REASON_MAX));

SCHEMA(s_forward_report, struct tether_ctrl_forward_report,
       INT(struct tether_ctrl_forward_report, channel, REQUIRED, 1,
	   UINT32_MAX, 0),
       STR(struct tether_ctrl_forward_report, host, REQUIRED, 0,
	   TETHER_CTRL_HOST_MAX),
       INT(struct tether_ctrl_forward_report, port, REQUIRED, 0, 65535, 0),
       BOOL(struct tether_ctrl_forward_report, ok, REQUIRED),
       STR(struct tether_ctrl_forward_report, reason, F_CLIP, 0,
	   TETHER_CTRL_REASON_MAX));

SCHEMA(s_ended, struct tether_ctrl_ended,
       STR(struct tether_ctrl_ended, reason, F_CLIP, 0,
	   TETHER_CTRL_REASON_MAX));

SCHEMA(s_enroll, struct tether_ctrl_enroll,
       STR(struct tether_ctrl_enroll, token, REQUIRED, 1,
	   TETHER_CTRL_TOKEN_MAX),
       NAME(struct tether_ctrl_enroll, name, REQUIRED),
       HEX(struct tether_ctrl_enroll, pubkey, REQUIRED, TETHER_SIGN_PUB_LEN),
       LABELS(struct tether_ctrl_enroll, labels, nlabels, OPTIONAL),
       OBJ(struct tether_ctrl_enroll, facts, OPTIONAL, s_facts, has_facts));

SCHEMA(s_enrolled, struct tether_ctrl_enrolled,
       NAME(struct tether_ctrl_enrolled, agent, REQUIRED));

SCHEMA(s_auth, struct tether_ctrl_auth,
       NAME(struct tether_ctrl_auth, agent, OPTIONAL),
       HEX(struct tether_ctrl_auth, sig, REQUIRED, TETHER_SIGN_SIG_LEN));

SCHEMA(s_auth_ok, struct tether_ctrl_auth_ok,
       INT_H(struct tether_ctrl_auth_ok, acked, OPTIONAL, 0, INT64_MAX,
	     has_acked),
       NAME(struct tether_ctrl_auth_ok, technician, OPTIONAL),
       WORD_H(struct tether_ctrl_auth_ok, role, OPTIONAL, w_tech_role,
	      has_role));

SCHEMA(s_check, struct tether_ctrl_check,
       INT(struct tether_ctrl_check, seq, REQUIRED, 1, INT64_MAX, 0),
       NAME(struct tether_ctrl_check, check, REQUIRED),
       WORD(struct tether_ctrl_check, state, REQUIRED, w_check_state, 0),
       WORD(struct tether_ctrl_check, type, REQUIRED, w_check_type, 0),
       INT(struct tether_ctrl_check, attempt, REQUIRED, 0, INT32_MAX, 0),
       INT(struct tether_ctrl_check, max_attempts, REQUIRED, 0, INT32_MAX, 0),
       STR(struct tether_ctrl_check, output, F_CLIP, 0, TETHER_CTRL_OUTPUT_MAX),
       LIST(struct tether_ctrl_check, perfdata, nperfdata, F_CLIP,
	    struct tether_ctrl_perf, s_perf, TETHER_CTRL_PERFDATA_MAX, 0),
       INT(struct tether_ctrl_check, ts, REQUIRED, INT64_MIN, INT64_MAX, 0),
       INT(struct tether_ctrl_check, duration_ms, OPTIONAL, 0, INT64_MAX, 0),
       WORD(struct tether_ctrl_check, ticket_on, OPTIONAL, w_ticket_on,
	    TETHER_TICKET_ON_CRITICAL),
       INT(struct tether_ctrl_check, dropped, OPTIONAL, 0, INT64_MAX, 0));

SCHEMA(s_check_ack, struct tether_ctrl_check_ack,
       INT(struct tether_ctrl_check_ack, seq, REQUIRED, 1, INT64_MAX, 0));

SCHEMA(s_diag_request, struct tether_ctrl_diag_request,
       TICKET(struct tether_ctrl_diag_request, ticket, REQUIRED));

SCHEMA(s_diag, struct tether_ctrl_diag,
       TICKET(struct tether_ctrl_diag, ticket, REQUIRED),
       STR(struct tether_ctrl_diag, bundle, OPTIONAL, 1, TETHER_BUNDLE_MAX),
       STR(struct tether_ctrl_diag, error, F_CLIP, 0, TETHER_CTRL_REASON_MAX));

SCHEMA(s_ticket_assign, struct tether_ctrl_ticket_assign,
       TICKET(struct tether_ctrl_ticket_assign, ticket, REQUIRED),
       NAME(struct tether_ctrl_ticket_assign, to, F_NULL),
       BOOL(struct tether_ctrl_ticket_assign, me, OPTIONAL));

SCHEMA(s_tech_add, struct tether_ctrl_tech_add,
       NAME(struct tether_ctrl_tech_add, name, REQUIRED),
       WORD(struct tether_ctrl_tech_add, role, OPTIONAL, w_tech_role,
	    TETHER_TECH_TECHNICIAN));

SCHEMA(s_tech_ref, struct tether_ctrl_tech_ref,
       NAME(struct tether_ctrl_tech_ref, name, REQUIRED));

SCHEMA(s_tech_role, struct tether_ctrl_tech_role,
       NAME(struct tether_ctrl_tech_role, name, REQUIRED),
       WORD(struct tether_ctrl_tech_role, role, REQUIRED, w_tech_role, 0));

SCHEMA(s_enroll_token, struct tether_ctrl_enroll_token,
       INT(struct tether_ctrl_enroll_token, ttl, OPTIONAL, 1, 30 * 86400,
	   TETHER_ENROLL_TTL_DEFAULT));

/* ---- Schemas: answers ---- */

SCHEMA(s_tech_row, struct tether_ctrl_tech_row,
       INT(struct tether_ctrl_tech_row, id, REQUIRED, 1, INT64_MAX, 0),
       NAME(struct tether_ctrl_tech_row, name, REQUIRED),
       WORD(struct tether_ctrl_tech_row, role, REQUIRED, w_tech_role, 0),
       TIME(struct tether_ctrl_tech_row, created_at, F_NULL));

SCHEMA(a_tech_add, struct tether_ctrl_tech_add_ok,
       OBJ_REQ(struct tether_ctrl_tech_add_ok, technician, s_tech_row),
       STR(struct tether_ctrl_tech_add_ok, token, REQUIRED, 1,
	   TETHER_CTRL_TOKEN_MAX));

SCHEMA(a_tech, struct tether_ctrl_tech_ok,
       OBJ_REQ(struct tether_ctrl_tech_ok, technician, s_tech_row),
       WORD_H(struct tether_ctrl_tech_ok, from, OPTIONAL, w_tech_role,
	      has_from));

SCHEMA(a_tech_list, struct tether_ctrl_tech_list_ok,
       LIST(struct tether_ctrl_tech_list_ok, technicians, ntechnicians,
	    REQUIRED, struct tether_ctrl_tech_row, s_tech_row,
	    TETHER_CTRL_ROWS_MAX, 0));

SCHEMA(a_enroll_token, struct tether_ctrl_enroll_token_ok,
       STR(struct tether_ctrl_enroll_token_ok, token, REQUIRED, 1,
	   TETHER_CTRL_TOKEN_MAX),
       TIME(struct tether_ctrl_enroll_token_ok, expires_at, REQUIRED),
       STR(struct tether_ctrl_enroll_token_ok, fingerprint, REQUIRED, 0, 128));

SCHEMA(a_ticket, struct tether_ctrl_ticket_ok,
       OBJ_REQ(struct tether_ctrl_ticket_ok, ticket, s_ticket));

SCHEMA(a_ticket_list, struct tether_ctrl_ticket_list_ok,
       LIST(struct tether_ctrl_ticket_list_ok, tickets, ntickets, REQUIRED,
	    struct tether_ctrl_ticket, s_ticket, TETHER_CTRL_ROWS_MAX, 0),
       INT(struct tether_ctrl_ticket_list_ok, more, OPTIONAL, 0, INT64_MAX,
	   0));

SCHEMA(a_ticket_comment, struct tether_ctrl_ticket_comment_ok,
       TICKET(struct tether_ctrl_ticket_comment_ok, ticket, REQUIRED),
       OBJ_REQ(struct tether_ctrl_ticket_comment_ok, comment, s_comment_row));

SCHEMA(s_burned, struct tether_ctrl_burned,
       NAMEPLATE(struct tether_ctrl_burned, nameplate, REQUIRED),
       TIME(struct tether_ctrl_burned, at, F_NULL),
       STR(struct tether_ctrl_burned, reason, F_NULL | F_CLIP, 0,
	   TETHER_CTRL_REASON_MAX));

/* "burned" travels only when there was one: older consoles read the rest. */
SCHEMA(a_pake_failed, struct tether_ctrl_pake_failed_ok,
       STR(struct tether_ctrl_pake_failed_ok, addr, OPTIONAL, 1,
	   TETHER_CTRL_ADDR_MAX));

SCHEMA(a_invite, struct tether_ctrl_invite_ok,
       NAMEPLATE(struct tether_ctrl_invite_ok, nameplate, REQUIRED),
       INT(struct tether_ctrl_invite_ok, session, REQUIRED, 1, INT64_MAX, 0),
       INT(struct tether_ctrl_invite_ok, expires_at, REQUIRED, 0, INT64_MAX,
	   0),
       OBJ(struct tether_ctrl_invite_ok, burned, OPTIONAL, s_burned,
	   has_burned));

SCHEMA(a_attach, struct tether_ctrl_attach_ok,
       INT(struct tether_ctrl_attach_ok, session, REQUIRED, 1, INT64_MAX, 0),
       WORD(struct tether_ctrl_attach_ok, state, REQUIRED, w_session_state, 0),
       NAMEPLATE(struct tether_ctrl_attach_ok, nameplate, REQUIRED),
       OBJ(struct tether_ctrl_attach_ok, agent, F_NULL, s_facts, has_agent),
       HEX_H(struct tether_ctrl_attach_ok, pake_b, OPTIONAL,
	     TETHER_SPAKE2_ELEM_LEN, has_pake),
       HEX_H(struct tether_ctrl_attach_ok, conf_b, OPTIONAL,
	     TETHER_SPAKE2_CONF_LEN, has_pake));

SCHEMA(a_open, struct tether_ctrl_open_ok,
       INT(struct tether_ctrl_open_ok, channel, REQUIRED, 1, UINT32_MAX, 0),
       HEX(struct tether_ctrl_open_ok, nonce, REQUIRED, TETHER_SEAL_NONCE_LEN));

SCHEMA(a_agents, struct tether_ctrl_agents_ok,
       LIST(struct tether_ctrl_agents_ok, agents, nagents, REQUIRED,
	    struct tether_ctrl_agent_row, s_agent_row, TETHER_CTRL_ROWS_MAX, 0));

SCHEMA(a_sessions, struct tether_ctrl_sessions_ok,
       LIST(struct tether_ctrl_sessions_ok, sessions, nsessions, REQUIRED,
	    struct tether_ctrl_live_row, s_live_row, TETHER_CTRL_ROWS_MAX, 0));

SCHEMA(a_health, struct tether_ctrl_health_ok,
       LIST(struct tether_ctrl_health_ok, checks, nchecks, REQUIRED,
	    struct tether_ctrl_check_row, s_check_row, TETHER_CTRL_ROWS_MAX, 0));

SCHEMA(a_diag_attach, struct tether_ctrl_diag_attach_ok,
       INT(struct tether_ctrl_diag_attach_ok, size, REQUIRED, 0, INT64_MAX,
	   0));

SCHEMA(a_diag_get, struct tether_ctrl_diag_get_ok,
       STR(struct tether_ctrl_diag_get_ok, bundle, REQUIRED, 1,
	   TETHER_BUNDLE_MAX),
       TIME(struct tether_ctrl_diag_get_ok, created_at, F_NULL),
       STR(struct tether_ctrl_diag_get_ok, source, REQUIRED, 1, 128));

/*
 * Each type's members and, for requests, its answer's.  A request is a
 * type with an answer; a type without a row here has no members.
 */
static const struct {
	const struct schema *body;
	const struct schema *answer;
} rows[TETHER_CTRL_TYPES] = {
	[TETHER_CTRL_PING] = {&s_empty, NULL},
	[TETHER_CTRL_PONG] = {&s_empty, NULL},
	[TETHER_CTRL_HELLO] = {&s_hello, NULL},
	[TETHER_CTRL_WELCOME] = {&s_welcome, NULL},
	[TETHER_CTRL_OK] = {&s_empty, NULL},
	[TETHER_CTRL_ERR] = {&s_err, NULL},
	[TETHER_CTRL_TICKET_NEW] = {&s_ticket_new, &a_ticket},
	[TETHER_CTRL_TICKET_LIST] = {&s_ticket_list, &a_ticket_list},
	[TETHER_CTRL_TICKET_SHOW] = {&s_ticket_show, &a_ticket},
	[TETHER_CTRL_TICKET_CLOSE] = {&s_ticket_close, &a_ticket},
	[TETHER_CTRL_INVITE] = {&s_invite, &a_invite},
	[TETHER_CTRL_ATTACH] = {&s_ticket_ref, &a_attach},
	[TETHER_CTRL_CONFIRM] = {&s_confirm, &s_empty},
	[TETHER_CTRL_PAKE_FAILED] = {&s_session_ref, &a_pake_failed},
	[TETHER_CTRL_OPEN] = {&s_open, &a_open},
	[TETHER_CTRL_CLOSE] = {&s_channel_ref, &s_empty},
	[TETHER_CTRL_AGENTS] = {&s_empty, &a_agents},
	[TETHER_CTRL_HEALTH] = {&s_health, &a_health},
	[TETHER_CTRL_DIAG_ATTACH] = {&s_diag_attach, &a_diag_attach},
	[TETHER_CTRL_DIAG_GET] = {&s_ticket_ref, &a_diag_get},
	[TETHER_CTRL_SESSIONS] = {&s_empty, &a_sessions},
	[TETHER_CTRL_TICKET_COMMENT] = {&s_ticket_comment, &a_ticket_comment},
	[TETHER_CTRL_TICKET_REOPEN] = {&s_ticket_ref, &a_ticket},
	[TETHER_CTRL_CHAN_CLOSE] = {&s_chan_close, NULL},
	[TETHER_CTRL_JOIN] = {&s_join, NULL},
	[TETHER_CTRL_JOIN_OK] = {&s_join_ok, NULL},
	[TETHER_CTRL_PAKE] = {&s_pake, NULL},
	[TETHER_CTRL_PAKE_OK] = {&s_pake_ok, NULL},
	[TETHER_CTRL_DECLINE] = {&s_empty, NULL},
	[TETHER_CTRL_RESUME] = {&s_resume, NULL},
	[TETHER_CTRL_RESUME_OK] = {&s_resume_ok, NULL},
	[TETHER_CTRL_AGENT_CONFIRM] = {&s_agent_confirm, NULL},
	[TETHER_CTRL_CONFIRMED] = {&s_confirmed, NULL},
	[TETHER_CTRL_CHAN_OPEN] = {&s_chan_open, NULL},
	[TETHER_CTRL_OPENED] = {&s_opened, NULL},
	[TETHER_CTRL_OPEN_FAILED] = {&s_open_failed, NULL},
	[TETHER_CTRL_XFER_REPORT] = {&s_xfer_report, NULL},
	[TETHER_CTRL_FORWARD_REPORT] = {&s_forward_report, NULL},
	[TETHER_CTRL_ENDED] = {&s_ended, NULL},
	[TETHER_CTRL_LEAVE] = {&s_empty, NULL},
	[TETHER_CTRL_ENROLL] = {&s_enroll, NULL},
	[TETHER_CTRL_ENROLLED] = {&s_enrolled, NULL},
	[TETHER_CTRL_AUTH] = {&s_auth, NULL},
	[TETHER_CTRL_AUTH_OK] = {&s_auth_ok, NULL},
	[TETHER_CTRL_CHECK] = {&s_check, NULL},
	[TETHER_CTRL_CHECK_ACK] = {&s_check_ack, NULL},
	[TETHER_CTRL_DIAG_REQUEST] = {&s_diag_request, NULL},
	[TETHER_CTRL_DIAG] = {&s_diag, NULL},
	[TETHER_CTRL_TICKET_ASSIGN] = {&s_ticket_assign, &a_ticket},
	[TETHER_CTRL_TECH_ADD] = {&s_tech_add, &a_tech_add},
	[TETHER_CTRL_TECH_REMOVE] = {&s_tech_ref, &a_tech},
	[TETHER_CTRL_TECH_LIST] = {&s_empty, &a_tech_list},
	[TETHER_CTRL_TECH_ROLE] = {&s_tech_role, &a_tech},
	[TETHER_CTRL_ENROLL_TOKEN] = {&s_enroll_token, &a_enroll_token},
};

/* clang-format on */

/* Requests carry an id, and so do their answers. */
static bool has_id(enum tether_ctrl_type t)
{
	return rows[t].answer != NULL || t == TETHER_CTRL_OK ||
	       t == TETHER_CTRL_ERR;
}

/* ---- Public codec ---- */

/*
 * Parses the payload; a member given twice is refused (which of two
 * values would count is exactly what a cheating peer would exploit), and
 * said so, since it is valid JSON.  d NULL: no reason is worded.
 */
static int load(struct dec *d, int code, const void *payload, size_t len,
		json_t **root)
{
	json_error_t jerr;
	const char *near;
	size_t n;

	*root = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &jerr);
	if (*root != NULL)
		return TETHER_OK;
	if (d == NULL)
		return code;
	/* jansson words it: duplicate object key near '"role"' */
	if (json_error_code(&jerr) != json_error_duplicate_key)
		return fail(d, code, "not JSON");
	/* jansson names only keys of up to 20 bytes. */
	near = strstr(jerr.text, "near '");
	if (near != NULL) {
		near += 6;
		n = strlen(near);
		if (n > 0 && near[n - 1] == '\'')
			n--;
		return fail(d, code, "duplicate member %.*s",
			    (int)(n > 64 ? 64 : n), near);
	}
	return fail(d, code, "duplicate member");
}

int tether_ctrl_decode(const void *payload, size_t len, unsigned dirs,
		       struct tether_ctrl_msg *m, char *why, size_t whylen)
{
	struct dec d = {.blocks = &m->blocks_,
			.why = why,
			.whylen = whylen,
			.msg = "control message"};
	const char *t;
	json_t *id;
	unsigned i;
	int r;

	memset(m, 0, sizeof(*m));
	m->type = TETHER_CTRL_TYPES;
	if (why != NULL && whylen > 0)
		why[0] = '\0';
	if (load(&d, TETHER_ERR_PROTOCOL, payload, len, &m->root_) != 0)
		return TETHER_ERR_PROTOCOL;
	if (!json_is_object(m->root_)) {
		r = fail(&d, TETHER_ERR_PROTOCOL, "not an object");
		goto out;
	}
	t = json_string_value(json_object_get(m->root_, "t"));
	if (t == NULL) {
		r = fail(&d, TETHER_ERR_PROTOCOL, "no type");
		goto out;
	}
	for (i = 0; i < TETHER_CTRL_TYPES; i++)
		if ((type_dirs[i] & dirs) != 0 && strcmp(type_names[i], t) == 0)
			break;
	if (i == TETHER_CTRL_TYPES) {
		r = fail(&d, TETHER_ERR_NOT_FOUND, "unknown type \"%.40s\"", t);
		goto out;
	}
	m->type = (enum tether_ctrl_type)i;
	d.msg = type_names[i];
	id = json_object_get(m->root_, "id");
	if (has_id(m->type)) {
		if (!json_is_integer(id) || json_integer_value(id) < 1) {
			r = fail(&d, TETHER_ERR_FORMAT, "no id");
			goto out;
		}
		m->id = json_integer_value(id);
	} else if (id != NULL) {
		r = fail(&d, TETHER_ERR_PROTOCOL, "unknown member \"id\"");
		goto out;
	}
	/* An answer's members are the request's to know. */
	if (m->type == TETHER_CTRL_OK)
		return TETHER_OK;
	r = dec_obj(&d, rows[i].body, m->root_, &m->body, true);
out:
	if (r != 0) {
		enum tether_ctrl_type keep = m->type;

		tether_ctrl_msg_free(m);
		m->type = keep;
	}
	return r;
}

int tether_ctrl_request_id(const void *payload, size_t len, int64_t *id)
{
	json_t *root, *v;
	int r = TETHER_ERR_NOT_FOUND;

	*id = 0;
	if (load(NULL, TETHER_ERR_PROTOCOL, payload, len, &root) != 0)
		return TETHER_ERR_PROTOCOL;
	v = json_is_object(root) ? json_object_get(root, "id") : NULL;
	if (json_is_integer(v) && json_integer_value(v) >= 1) {
		*id = json_integer_value(v);
		r = TETHER_OK;
	}
	json_decref(root);
	return r;
}

int tether_ctrl_decode_answer(struct tether_ctrl_msg *m,
			      enum tether_ctrl_type request, char *why,
			      size_t whylen)
{
	struct dec d = {
	    .blocks = &m->blocks_, .why = why, .whylen = whylen, .msg = "ok"};

	if (why != NULL && whylen > 0)
		why[0] = '\0';
	if (m->type != TETHER_CTRL_OK ||
	    (unsigned)request >= TETHER_CTRL_TYPES ||
	    rows[request].answer == NULL || m->root_ == NULL)
		return fail(&d, TETHER_ERR_STATE, "not an answer");
	d.msg = type_names[request];
	return dec_obj(&d, rows[request].answer, m->root_, &m->body, true);
}

void tether_ctrl_msg_free(struct tether_ctrl_msg *m)
{
	if (m == NULL)
		return;
	json_decref(m->root_);
	blocks_free(m->blocks_);
	memset(m, 0, sizeof(*m));
	m->type = TETHER_CTRL_TYPES;
}

/* The JSON of a message: "t", the id for requests and answers, members. */
static json_t *build(struct enc *e, enum tether_ctrl_type t,
		     const struct schema *s, int64_t id, const void *body)
{
	static const char zero[sizeof(union tether_ctrl_body)];
	json_t *obj;

	if (s->n > 0 && body == NULL)
		body = zero;
	if (has_id(t) && id < 1)
		return bad(e, "no id");
	obj = enc_obj(e, s, body);
	if (obj == NULL)
		return NULL;
	if (json_object_set_new(obj, "t", json_string(type_names[t])) != 0 ||
	    (has_id(t) && json_object_set_new(obj, "id", json_integer(id)))) {
		json_decref(obj);
		return NULL;
	}
	return obj;
}

static int dump(struct enc *e, json_t *obj, char **text, size_t *len)
{
	*text = NULL;
	if (len != NULL)
		*len = 0;
	if (obj == NULL)
		return e->err;
	*text = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	if (*text == NULL)
		return TETHER_ERR_NOMEM;
	if (len != NULL)
		*len = strlen(*text);
	return TETHER_OK;
}

static json_t *message_json(struct enc *e, enum tether_ctrl_type t, int64_t id,
			    const void *body)
{
	if ((unsigned)t >= TETHER_CTRL_TYPES || t == TETHER_CTRL_OK)
		return bad(e, "not a message type");
	e->what = type_names[t];
	return build(e, t, rows[t].body, id, body);
}

static json_t *answer_json(struct enc *e, enum tether_ctrl_type request,
			   int64_t id, const void *body)
{
	if ((unsigned)request >= TETHER_CTRL_TYPES ||
	    rows[request].answer == NULL)
		return bad(e, "not a request type");
	e->what = type_names[request];
	return build(e, TETHER_CTRL_OK, rows[request].answer, id, body);
}

json_t *tether_ctrl_to_json(enum tether_ctrl_type t, int64_t id,
			    const void *body)
{
	struct enc e = {"message", TETHER_ERR_NOMEM};

	return message_json(&e, t, id, body);
}

json_t *tether_ctrl_answer_to_json(enum tether_ctrl_type request, int64_t id,
				   const void *body)
{
	struct enc e = {"answer", TETHER_ERR_NOMEM};

	return answer_json(&e, request, id, body);
}

int tether_ctrl_encode(enum tether_ctrl_type t, int64_t id, const void *body,
		       char **text, size_t *len)
{
	struct enc e = {"message", TETHER_ERR_NOMEM};

	return dump(&e, message_json(&e, t, id, body), text, len);
}

int tether_ctrl_encode_answer(enum tether_ctrl_type request, int64_t id,
			      const void *body, char **text, size_t *len)
{
	struct enc e = {"answer", TETHER_ERR_NOMEM};

	return dump(&e, answer_json(&e, request, id, body), text, len);
}

int tether_ctrl_encode_err(int64_t id, enum tether_ctrl_code code,
			   const char *message, char **text, size_t *len)
{
	struct tether_ctrl_err e = {.code = code,
				    .message = message != NULL ? message : ""};

	return tether_ctrl_encode(TETHER_CTRL_ERR, id, &e, text, len);
}

/* ---- Parts ---- */

static json_t *part_json(struct enc *e, enum tether_ctrl_part part,
			 const void *body)
{
	const struct schema *s;
	bool skip;
	json_t *v;

	if ((unsigned)part >= TETHER_CTRL_PARTS || body == NULL)
		return bad(e, "no such part");
	s = parts[part];
	e->what = s->name;
	if (!s->root_list)
		return enc_obj(e, s, body);
	v = enc_value(e, &s->m[0], body, &skip);
	/* An empty list part is still a list. */
	if (skip)
		v = s->m[0].kind == K_LABELS ? json_object() : json_array();
	return v;
}

json_t *tether_ctrl_part_to_json(enum tether_ctrl_part part, const void *body)
{
	struct enc e = {"part", TETHER_ERR_NOMEM};

	return part_json(&e, part, body);
}

int tether_ctrl_part_encode(enum tether_ctrl_part part, const void *body,
			    char **text, size_t *len)
{
	struct enc e = {"part", TETHER_ERR_NOMEM};

	return dump(&e, part_json(&e, part, body), text, len);
}

int tether_ctrl_part_decode(enum tether_ctrl_part part, const void *text,
			    size_t len, struct tether_ctrl_part_msg *m,
			    char *why, size_t whylen)
{
	const struct schema *s;
	struct dec d = {.blocks = &m->blocks_, .why = why, .whylen = whylen};
	int r;

	memset(m, 0, sizeof(*m));
	m->part = part;
	if (why != NULL && whylen > 0)
		why[0] = '\0';
	if ((unsigned)part >= TETHER_CTRL_PARTS)
		return TETHER_ERR_INVALID;
	s = parts[part];
	d.msg = s->name;
	r = load(&d, TETHER_ERR_FORMAT, text, len, &m->root_);
	if (r != 0)
		return r;
	if (s->root_list)
		r = dec_value(&d, &s->m[0], m->root_, &m->body);
	else if (!json_is_object(m->root_))
		r = fail(&d, TETHER_ERR_FORMAT, "not an object");
	else
		r = dec_obj(&d, s, m->root_, &m->body, false);
	if (r != 0) {
		tether_ctrl_part_free(m);
		m->part = part;
	}
	return r;
}

void tether_ctrl_part_free(struct tether_ctrl_part_msg *m)
{
	if (m == NULL)
		return;
	json_decref(m->root_);
	blocks_free(m->blocks_);
	memset(m, 0, sizeof(*m));
}
