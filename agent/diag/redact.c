/*
 * Redaction of secrets in text that leaves the machine in a diagnostics
 * bundle (log lines, command lines): docs/diagnostics.md, "Redaction".
 *
 * A hand-rolled single pass rather than regular expressions: every rule
 * starts at a place the scanner reaches anyway (a word, "://", a PEM
 * marker) and consumes what it looks at, so no byte is examined more than
 * a few times and a megabyte of hostile text costs milliseconds.  Rules
 * err towards redacting: a false positive hides a harmless word, a false
 * negative ships a password.
 */
#include <stdbool.h>
#include <string.h>

#include <tether/alloc.h>

#include "diag/redact.h"

#define MARK "[REDACTED]"
/* Longest key part compared; longer parts are compared by their end. */
#define PART_MAX 32

struct out {
	char *p;
	size_t len;
	size_t cap;
	bool oom;
};

/* Commands whose short options carry secrets, seen on the current line. */
enum {
	CMD_MYSQL = 1,	 /* -pSECRET */
	CMD_SSHPASS = 2, /* -p SECRET, -pSECRET */
	CMD_REDIS = 4,	 /* -a SECRET, -aSECRET */
	CMD_CURL = 8,	 /* -u USER:SECRET, --user USER:SECRET */
};

struct scan {
	const char *s;
	size_t n;
	size_t i;
	unsigned cmds;
	struct out o;
};

/* What a key names, which decides how its value is cut out. */
enum key_class {
	KEY_NONE,
	KEY_SECRET, /* one token or quoted string */
	KEY_PWD,    /* like KEY_SECRET, but a path is the working directory */
	KEY_AUTH,   /* Authorization: keep the scheme, hide the credentials */
	KEY_COOKIE, /* the whole header value */
};

static void put(struct out *o, const char *s, size_t n)
{
	size_t cap;
	char *p;

	if (o->oom || n == 0)
		return;
	if (o->len + n + 1 > o->cap) {
		cap = o->cap * 2;
		while (cap < o->len + n + 1)
			cap *= 2;
		p = tether_reallocarray(o->p, cap, 1);
		if (p == NULL) {
			o->oom = true;
			return;
		}
		o->p = p;
		o->cap = cap;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

static void put_mark(struct out *o)
{
	put(o, MARK, strlen(MARK));
}

static bool is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

static bool is_upper(char c)
{
	return c >= 'A' && c <= 'Z';
}

static bool is_lower(char c)
{
	return c >= 'a' && c <= 'z';
}

static char lower(char c)
{
	return is_upper(c) ? (char)(c - 'A' + 'a') : c;
}

/* Characters of a word: keys, option names, tokens. */
static bool is_word(char c)
{
	return is_alnum(c) || c == '_' || c == '-' || c == '.';
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t';
}

static bool is_quote(char c)
{
	return c == '"' || c == '\'';
}

/* Ends an unquoted value. */
static bool ends_value(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\0' ||
	       c == '"' || c == '\'' || c == '&' || c == '<';
}

static bool starts_with(const char *s, size_t n, const char *prefix)
{
	size_t k = strlen(prefix);

	return n >= k && memcmp(s, prefix, k) == 0;
}

static bool eq_nocase(const char *s, size_t n, const char *word)
{
	size_t i;

	if (strlen(word) != n)
		return false;
	for (i = 0; i < n; i++)
		if (lower(s[i]) != word[i])
			return false;
	return true;
}

static bool ends_with(const char *s, size_t n, const char *suffix)
{
	size_t k = strlen(suffix);

	return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/*
 * The start of the part of key[0..n) that ends at n: parts are split at
 * '_', '-', '.' and where a lower-case letter meets an upper-case one
 * (db_password, X-Api-Key, keyStorePassword).
 */
static size_t part_start(const char *k, size_t n)
{
	size_t i = n;

	while (i > 0) {
		char c = k[i - 1];

		if (c == '_' || c == '-' || c == '.')
			break;
		if (is_upper(c) && i >= 2 && is_lower(k[i - 2])) {
			i--;
			break;
		}
		i--;
	}
	return i;
}

/* Lower-cased copy of at most the last PART_MAX characters. */
static size_t part_copy(const char *k, size_t from, size_t to, char *out)
{
	size_t n = to - from, i;

	if (n > PART_MAX)
		from = to - PART_MAX, n = PART_MAX;
	for (i = 0; i < n; i++)
		out[i] = lower(k[from + i]);
	return n;
}

static enum key_class classify(const char *k, size_t n)
{
	static const char *const secret_ends[] = {
	    "password", "passwd",    "passphrase", "secret",	 "token",
	    "apikey",	"accesskey", "secretkey",  "privatekey", "credentials",
	};
	static const char *const key_owners[] = {
	    "api",     "access",     "secret", "private",
	    "signing", "encryption", "master", "auth",
	};
	char last[PART_MAX], prev[PART_MAX];
	size_t ls, ln, ps, pn, i;

	/* Trailing separators (a sentence's full stop) are not the key. */
	while (n > 0 && (k[n - 1] == '.' || k[n - 1] == '-' || k[n - 1] == '_'))
		n--;
	ls = part_start(k, n);
	ln = part_copy(k, ls, n, last);
	if (ln == 0)
		return KEY_NONE;
	if (ln == 3 && memcmp(last, "pwd", 3) == 0)
		return KEY_PWD;
	if (ln == 13 && memcmp(last, "authorization", 13) == 0)
		return KEY_AUTH;
	if (ln == 6 && memcmp(last, "cookie", 6) == 0)
		return KEY_COOKIE;
	for (i = 0; i < sizeof(secret_ends) / sizeof(secret_ends[0]); i++)
		if (ends_with(last, ln, secret_ends[i]))
			return KEY_SECRET;
	if (!(ln == 3 && memcmp(last, "key", 3) == 0) || ls == 0)
		return KEY_NONE;
	/* api_key, access-key, secretKey: "key" owned by a word that says. */
	pn = ls;
	if (k[pn - 1] == '_' || k[pn - 1] == '-' || k[pn - 1] == '.')
		pn--;
	ps = part_start(k, pn);
	pn = part_copy(k, ps, pn, prev);
	for (i = 0; i < sizeof(key_owners) / sizeof(key_owners[0]); i++)
		if (pn == strlen(key_owners[i]) &&
		    memcmp(prev, key_owners[i], pn) == 0)
			return KEY_SECRET;
	return KEY_NONE;
}

/* Count of chars from s[0..n) in the base64url alphabet. */
static size_t b64url_run(const char *s, size_t n)
{
	size_t i = 0;

	while (i < n && (is_alnum(s[i]) || s[i] == '-' || s[i] == '_'))
		i++;
	return i;
}

static size_t alnum_run(const char *s, size_t n)
{
	size_t i = 0;

	while (i < n && is_alnum(s[i]))
		i++;
	return i;
}

/* eyJ<b64url>.eyJ<b64url>.<b64url>: the length of the JWT at s, or 0. */
static size_t jwt_len(const char *s, size_t n)
{
	size_t a, b, c;

	if (!starts_with(s, n, "eyJ"))
		return 0;
	a = b64url_run(s, n);
	if (a >= n || s[a] != '.' || !starts_with(s + a + 1, n - a - 1, "eyJ"))
		return 0;
	b = b64url_run(s + a + 1, n - a - 1);
	if (a + 1 + b >= n || s[a + 1 + b] != '.')
		return 0;
	c = b64url_run(s + a + 2 + b, n - a - 2 - b);
	return a + 2 + b + c;
}

/*
 * A well-known token shape at s (a word start): its length, or 0.  Each
 * needs enough characters after its prefix that words like "ghp_" in
 * prose stay.
 */
static size_t token_len(const char *s, size_t n)
{
	static const char *const gh[] = {"ghp_", "gho_", "ghs_", "ghu_",
					 "ghr_"};
	size_t i, k;

	if ((starts_with(s, n, "AKIA") || starts_with(s, n, "ASIA")) &&
	    n >= 20) {
		for (i = 4; i < 20; i++)
			if (!(is_upper(s[i]) || (s[i] >= '0' && s[i] <= '9')))
				break;
		if (i == 20 && (n == 20 || !is_alnum(s[20])))
			return 20;
	}
	for (i = 0; i < sizeof(gh) / sizeof(gh[0]); i++) {
		if (starts_with(s, n, gh[i])) {
			k = alnum_run(s + 4, n - 4);
			return k >= 20 ? 4 + k : 0;
		}
	}
	if (starts_with(s, n, "github_pat_")) {
		k = b64url_run(s + 11, n - 11);
		return k >= 20 ? 11 + k : 0;
	}
	if (n > 5 && starts_with(s, n, "xox") &&
	    (s[3] == 'a' || s[3] == 'b' || s[3] == 'p' || s[3] == 'r') &&
	    s[4] == '-') {
		k = b64url_run(s + 5, n - 5);
		return k >= 10 ? 5 + k : 0;
	}
	if (starts_with(s, n, "sk_live_") || starts_with(s, n, "rk_live_") ||
	    starts_with(s, n, "sk_test_")) {
		k = alnum_run(s + 8, n - 8);
		return k >= 10 ? 8 + k : 0;
	}
	if (starts_with(s, n, "AIza")) {
		k = b64url_run(s + 4, n - 4);
		return k >= 30 ? 4 + k : 0;
	}
	/* Our own: enrolment tokens tte_<base64url>, maybe padded. */
	if (starts_with(s, n, "tte_")) {
		k = b64url_run(s + 4, n - 4);
		if (k < 40)
			return 0;
		while (4 + k < n && s[4 + k] == '=')
			k++;
		return 4 + k;
	}
	/* ... and technician tokens tt_<id>_<hex secret>. */
	if (starts_with(s, n, "tt_")) {
		for (i = 3; i < n && s[i] >= '0' && s[i] <= '9'; i++)
			;
		if (i == 3 || i >= n || s[i] != '_')
			return 0;
		k = alnum_run(s + i + 1, n - i - 1);
		return k >= 32 ? i + 1 + k : 0;
	}
	return jwt_len(s, n);
}

/* End of an unquoted value starting at p, without trailing punctuation. */
static size_t value_end(const struct scan *sc, size_t p)
{
	size_t e = p;

	while (e < sc->n && !ends_value(sc->s[e]))
		e++;
	while (e > p + 1 && strchr(",;)]}>", sc->s[e - 1]) != NULL)
		e--;
	return e;
}

/* End of a quoted value whose quote is at q: the closing quote or EOL. */
static size_t quoted_end(const struct scan *sc, size_t q)
{
	char quote = sc->s[q];
	size_t e = q + 1;

	while (e < sc->n && sc->s[e] != quote && sc->s[e] != '\n') {
		if (quote == '"' && sc->s[e] == '\\' && e + 1 < sc->n &&
		    sc->s[e + 1] != '\n')
			e++;
		e++;
	}
	return e;
}

static size_t line_end(const struct scan *sc, size_t p, char quote)
{
	while (p < sc->n && sc->s[p] != '\n' && sc->s[p] != '\r' &&
	       (quote == '\0' || sc->s[p] != quote))
		p++;
	return p;
}

/* Copies s[i..from), the mark, and moves on to to. */
static void redact_span(struct scan *sc, size_t from, size_t to)
{
	put(&sc->o, sc->s + sc->i, from - sc->i);
	put_mark(&sc->o);
	sc->i = to;
}

/*
 * "passwd: all authentication tokens updated" is passwd(1) talking, not a
 * password: a lower-case word followed by more prose.
 */
static bool is_prose(const struct scan *sc, size_t v, size_t e)
{
	size_t p;

	for (p = v; p < e; p++)
		if (!is_lower(sc->s[p]))
			return false;
	return e + 1 < sc->n && sc->s[e] == ' ' && is_lower(sc->s[e + 1]);
}

/* Authorization: keep "Bearer ", hide what follows. */
static bool redact_auth(struct scan *sc, size_t v, char quote)
{
	size_t p = v, e;
	bool single = true;

	while (p < sc->n && (is_alnum(sc->s[p]) || sc->s[p] == '-'))
		p++;
	if (p > v && p + 1 < sc->n && sc->s[p] == ' ' &&
	    !ends_value(sc->s[p + 1])) {
		single = eq_nocase(sc->s + v, p - v, "bearer") ||
			 eq_nocase(sc->s + v, p - v, "basic") ||
			 eq_nocase(sc->s + v, p - v, "token");
		v = p + 1;
	}
	if (single) {
		e = v;
		while (e < sc->n && !ends_value(sc->s[e]) && sc->s[e] != ',')
			e++;
	} else {
		e = line_end(sc, v, quote);
	}
	if (e == v)
		return false;
	redact_span(sc, v, e);
	return true;
}

/*
 * The key s[i..k) is secret-looking: find its separator and value and
 * redact the value.  False if this is not a key and value after all.
 */
static bool redact_kv(struct scan *sc, size_t k, enum key_class cls)
{
	const char *s = sc->s;
	char open = sc->i > 0 ? s[sc->i - 1] : '\0';
	char quote = is_quote(open) ? open : '\0';
	size_t p = k, v, e;
	char sep = '\0';
	bool option = s[sc->i] == '-';

	/* "password": and 'password' => */
	if (quote != '\0' && p < sc->n && s[p] == quote) {
		p++;
		/* $config['password'] = */
		if (p < sc->n && s[p] == ']')
			p++;
	}
	/* <password>secret</password> */
	if (open == '<' && p < sc->n && s[p] == '>') {
		v = p + 1;
		e = v;
		while (e < sc->n && s[e] != '<' && s[e] != '\n')
			e++;
		if (e == v)
			return false;
		redact_span(sc, v, e);
		return true;
	}
	while (p < sc->n && is_space(s[p]))
		p++;
	if (p < sc->n && (s[p] == '=' || s[p] == ':')) {
		sep = s[p++];
		if (sep == '=' && p < sc->n && s[p] == '>')
			p++;
		/* pam_unix(passwd:chauthtok) is a service and a step. */
		if (sep == ':' && open == '(')
			return false;
		while (p < sc->n && is_space(s[p]))
			p++;
	} else if (!(option && p > k && cls != KEY_NONE)) {
		/* Only an option (--password VALUE) takes a spaced value. */
		return false;
	}
	if (p >= sc->n)
		return false;
	v = p;
	if (sep == '\0' && s[v] == '-')
		return false;
	/* Redacting twice changes nothing. */
	if (starts_with(s + v, sc->n - v, MARK))
		return false;
	if (cls == KEY_AUTH || cls == KEY_COOKIE) {
		if (is_quote(s[v]))
			quote = s[v++];
		if (cls == KEY_AUTH)
			return redact_auth(sc, v, quote);
		e = line_end(sc, v, quote);
		if (e == v)
			return false;
		redact_span(sc, v, e);
		return true;
	}
	if (is_quote(s[v])) {
		e = quoted_end(sc, v);
		v++;
	} else {
		if (cls == KEY_PWD && (s[v] == '/' || s[v] == '~'))
			return false;
		e = value_end(sc, v);
		if (sep == ':' && is_prose(sc, v, e))
			return false;
	}
	if (e == v)
		return false;
	redact_span(sc, v, e);
	return true;
}

/* Remembers commands whose short options carry secrets. */
static void note_command(struct scan *sc, const char *w, size_t n)
{
	static const char *const mysql[] = {
	    "mysql",	  "mysqldump",	  "mysqladmin",	   "mysqlimport",
	    "mysqlcheck", "mysqlshow",	  "mysqlpump",	   "mysqlsh",
	    "mariadb",	  "mariadb-dump", "mariadb-admin",
	};
	size_t i;

	for (i = 0; i < sizeof(mysql) / sizeof(mysql[0]); i++)
		if (eq_nocase(w, n, mysql[i]))
			sc->cmds |= CMD_MYSQL;
	if (eq_nocase(w, n, "sshpass"))
		sc->cmds |= CMD_SSHPASS;
	if (eq_nocase(w, n, "redis-cli"))
		sc->cmds |= CMD_REDIS;
	if (eq_nocase(w, n, "curl"))
		sc->cmds |= CMD_CURL;
}

/* Redacts from p to the end of the argument; false if it is empty. */
static bool redact_arg(struct scan *sc, size_t p, bool after_colon)
{
	size_t v = p, e;

	if (is_quote(sc->s[v]))
		v++;
	e = v;
	while (e < sc->n && !is_space(sc->s[e]) && sc->s[e] != '\n' &&
	       sc->s[e] != '\r' && !is_quote(sc->s[e]))
		e++;
	if (after_colon) {
		while (v < e && sc->s[v] != ':')
			v++;
		if (v == e)
			return false;
		v++;
	}
	if (e == v)
		return false;
	redact_span(sc, v, e);
	return true;
}

/*
 * mysql -pSECRET, sshpass -p SECRET, redis-cli -a SECRET, curl -u
 * USER:SECRET: the word at i is w[0..n).
 */
static bool redact_short_option(struct scan *sc, const char *w, size_t n)
{
	bool spaced = false;
	size_t p = sc->i + n;
	char opt;

	if (n < 2 || w[0] != '-')
		return false;
	if ((sc->cmds & CMD_CURL) != 0 &&
	    (starts_with(w, n, "-u") ||
	     (n == 6 && memcmp(w, "--user", 6) == 0)))
		opt = 'u';
	else if (w[1] == 'p' && (sc->cmds & (CMD_MYSQL | CMD_SSHPASS)) != 0)
		opt = 'p';
	else if (w[1] == 'a' && (sc->cmds & CMD_REDIS) != 0)
		opt = 'a';
	else
		return false;
	if (w[1] == '-' || n == 2) {
		/* The value is the next argument (not for mysql: a prompt). */
		if (opt == 'p' && (sc->cmds & CMD_SSHPASS) == 0)
			return false;
		if (opt == 'u' && w[1] == '-' && p < sc->n && sc->s[p] == '=')
			p++, spaced = true;
		while (p < sc->n && is_space(sc->s[p])) {
			p++;
			spaced = true;
		}
		if (!spaced || p >= sc->n || sc->s[p] == '-')
			return false;
		return redact_arg(sc, p, opt == 'u');
	}
	return redact_arg(sc, sc->i + 2, opt == 'u');
}

/* Copies the word s[i..e) on, stopping at a PEM marker inside it. */
static void copy_word(struct scan *sc, size_t e)
{
	const char *pem;

	pem = memmem(sc->s + sc->i + 1, e - sc->i - 1, "-----BEGIN ", 11);
	if (pem != NULL)
		e = (size_t)(pem - sc->s);
	put(&sc->o, sc->s + sc->i, e - sc->i);
	sc->i = e;
}

/* A word starts at i. */
static void scan_word(struct scan *sc)
{
	const char *w = sc->s + sc->i;
	size_t e = sc->i, n, t;
	enum key_class cls;

	while (e < sc->n && is_word(sc->s[e]))
		e++;
	n = e - sc->i;
	t = token_len(w, sc->n - sc->i);
	if (t > 0) {
		redact_span(sc, sc->i, sc->i + t);
		return;
	}
	if (sc->cmds != 0 && redact_short_option(sc, w, n))
		return;
	cls = classify(w, n);
	if (cls != KEY_NONE && redact_kv(sc, e, cls))
		return;
	note_command(sc, w, n);
	copy_word(sc, e);
}

/* -----BEGIN ... PRIVATE KEY----- at i: keep the markers only. */
static bool scan_pem(struct scan *sc)
{
	const char *s = sc->s + sc->i, *end, *lab;
	size_t n = sc->n - sc->i, b, body, stop;

	lab = memmem(s + 11, n - 11 < 80 ? n - 11 : 80, "-----", 5);
	if (lab == NULL || lab - s < 11 + 11 ||
	    memcmp(lab - 11, "PRIVATE KEY", 11) != 0)
		return false;
	b = (size_t)(lab - s) + 5;
	put(&sc->o, s, b);
	/* Keep the line breaks (real, or \n inside a JSON string). */
	body = b;
	while (body < n && (s[body] == '\r' || s[body] == '\n'))
		body++;
	if (body + 1 < n && s[body] == '\\' && s[body + 1] == 'n')
		body += 2;
	put(&sc->o, s + b, body - b);
	put_mark(&sc->o);
	end = memmem(s + body, n - body, "-----END ", 9);
	stop = end != NULL ? (size_t)(end - s) : n;
	if (stop >= 2 && stop > body && s[stop - 2] == '\\' &&
	    s[stop - 1] == 'n')
		stop -= 2;
	else
		while (stop > body &&
		       (s[stop - 1] == '\n' || s[stop - 1] == '\r'))
			stop--;
	sc->i += stop;
	return true;
}

/* scheme://user:pass@host at i (the "://"): keep the user. */
static void scan_url(struct scan *sc)
{
	size_t a = sc->i + 3, e = a, at = 0, c;

	while (e < sc->n && !ends_value(sc->s[e]) && sc->s[e] != '/' &&
	       sc->s[e] != '?' && sc->s[e] != '#' && sc->s[e] != '>') {
		if (sc->s[e] == '@')
			at = e;
		e++;
	}
	put(&sc->o, "://", 3);
	sc->i = a;
	if (at == 0)
		return;
	for (c = a; c < at && sc->s[c] != ':'; c++)
		;
	if (c == at || c + 1 == at)
		return;
	redact_span(sc, c + 1, at);
}

char *agent_redact(const char *text)
{
	struct scan sc;
	char c;

	memset(&sc, 0, sizeof(sc));
	sc.s = text;
	sc.n = strlen(text);
	sc.o.cap = sc.n + 64;
	sc.o.p = tether_malloc(sc.o.cap);
	if (sc.o.p == NULL)
		return NULL;
	while (sc.i < sc.n && !sc.o.oom) {
		c = sc.s[sc.i];
		if (c == '\n') {
			sc.cmds = 0;
		} else if (c == '-' &&
			   starts_with(sc.s + sc.i, sc.n - sc.i,
				       "-----BEGIN ") &&
			   scan_pem(&sc)) {
			continue;
		} else if (c == ':' &&
			   starts_with(sc.s + sc.i, sc.n - sc.i, "://")) {
			scan_url(&sc);
			continue;
		} else if (is_word(c) &&
			   (sc.i == 0 || !is_word(sc.s[sc.i - 1]))) {
			scan_word(&sc);
			continue;
		}
		put(&sc.o, &c, 1);
		sc.i++;
	}
	if (sc.o.oom) {
		tether_free(sc.o.p);
		return NULL;
	}
	sc.o.p[sc.o.len] = '\0';
	return sc.o.p;
}
