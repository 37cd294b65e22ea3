/*
 * The enrolled agent's config file (config.h): reading it line by line
 * into its identity keys and sections, and writing the identity back
 * through a temporary file with the sections kept verbatim.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <tether/alloc.h>
#include <tether/err.h>
#include <tether/id.h>

#include "service/config.h"

#define CONF_LINE_MAX 4096
#define CONF_FILE_MAX (1024 * 1024)

/* Collects the first error as "FILE:LINE: what"; returns r. */
static int conf_error(char *err, size_t errlen, const char *file, int line,
		      int r, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static int conf_error(char *err, size_t errlen, const char *file, int line,
		      int r, const char *fmt, ...)
{
	char what[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (err != NULL && errlen > 0) {
		if (line > 0)
			snprintf(err, errlen, "%s:%d: %s", file, line, what);
		else
			snprintf(err, errlen, "%s: %s", file, what);
	}
	return r;
}

void agent_config_default_path(char *out, size_t outlen)
{
	const char *xdg = getenv("XDG_CONFIG_HOME");
	const char *home = getenv("HOME");
	struct passwd *pw;

	if (geteuid() == 0) {
		snprintf(out, outlen, "/etc/tether/agent.conf");
		return;
	}
	if (xdg != NULL && xdg[0] == '/') {
		snprintf(out, outlen, "%s/tether/agent.conf", xdg);
		return;
	}
	if (home == NULL || home[0] != '/') {
		pw = getpwuid(geteuid());
		home = pw != NULL && pw->pw_dir != NULL ? pw->pw_dir : "/";
	}
	snprintf(out, outlen, "%s/.config/tether/agent.conf",
		 strcmp(home, "/") == 0 ? "" : home);
}

static bool is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

static char *trim(char *s)
{
	size_t n;

	while (is_space(*s))
		s++;
	n = strlen(s);
	while (n > 0 && is_space(s[n - 1]))
		s[--n] = '\0';
	return s;
}

/*
 * The value after '=': a double-quoted string (\" and \\ escaped) keeps
 * spaces and '#'; otherwise '#' at the start or after a blank begins a
 * comment.  Rewrites s in place; NULL with why on error.
 */
static char *parse_value(char *s, const char **why)
{
	char *r, *w;

	while (is_space(*s))
		s++;
	if (*s == '"') {
		for (r = w = s + 1; *r != '"'; r++) {
			if (*r == '\0') {
				*why = "unterminated quoted value";
				return NULL;
			}
			if (*r == '\\' && (r[1] == '"' || r[1] == '\\'))
				r++;
			*w++ = *r;
		}
		r++;
		while (is_space(*r))
			r++;
		if (*r != '\0' && *r != '#') {
			*why = "text after the closing quote";
			return NULL;
		}
		*w = '\0';
		return s + 1;
	}
	for (r = s; *r != '\0'; r++) {
		if (*r == '#' && (r == s || is_space(r[-1]))) {
			*r = '\0';
			break;
		}
	}
	s = trim(s);
	if (*s == '\0') {
		*why = "missing value";
		return NULL;
	}
	return s;
}

static int add_kv(struct agent_check_conf *cc, const char *key,
		  const char *value, int line)
{
	struct agent_kv *grown;

	grown = tether_reallocarray(cc->kv, cc->n + 1, sizeof(*cc->kv));
	if (grown == NULL)
		return TETHER_ERR_NOMEM;
	cc->kv = grown;
	grown[cc->n].key = tether_strdup(key);
	grown[cc->n].value = tether_strdup(value);
	grown[cc->n].line = line;
	if (grown[cc->n].key == NULL || grown[cc->n].value == NULL) {
		tether_free(grown[cc->n].key);
		tether_free(grown[cc->n].value);
		return TETHER_ERR_NOMEM;
	}
	cc->n++;
	return 0;
}

/* The directory part of path ("." if none), in out. */
static void dir_of(const char *path, char *out, size_t outlen)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		snprintf(out, outlen, ".");
	else if (slash == path)
		snprintf(out, outlen, "/");
	else
		snprintf(out, outlen, "%.*s", (int)(slash - path), path);
}

/* "relay = ..." and the other keys before the first section. */
static int top_key(struct agent_config *c, const char *key, const char *val,
		   int line, char *err, size_t errlen)
{
	char **slot = NULL;
	const char *why;

	if (strcmp(key, "relay") == 0) {
		struct agent_target t;

		if (agent_target_parse(val, 0, &t, &why) != 0)
			return conf_error(err, errlen, c->path, line,
					  TETHER_ERR_FORMAT,
					  "invalid relay '%s' (%s)", val, why);
		slot = &c->relay;
	} else if (strcmp(key, "fingerprint") == 0) {
		if (strncmp(val, "SHA256:", 7) != 0 || strlen(val) < 8 ||
		    strlen(val) >= TETHER_ID_FINGERPRINT_LEN)
			return conf_error(
			    err, errlen, c->path, line, TETHER_ERR_FORMAT,
			    "invalid fingerprint (want SHA256:...)");
		slot = &c->fingerprint;
	} else if (strcmp(key, "name") == 0) {
		if (!tether_id_name_valid(val))
			return conf_error(err, errlen, c->path, line,
					  TETHER_ERR_FORMAT,
					  "invalid name '%s' (1 to 64 of "
					  "A-Z a-z 0-9 _ . -)",
					  val);
		slot = &c->name;
	} else if (strcmp(key, "key") == 0) {
		char dir[1024], full[2048];

		if (val[0] != '/') {
			dir_of(c->path, dir, sizeof(dir));
			snprintf(full, sizeof(full), "%s/%s", dir, val);
			val = full;
		}
		if (c->key != NULL)
			return conf_error(err, errlen, c->path, line,
					  TETHER_ERR_EXISTS,
					  "duplicate key 'key'");
		c->key = tether_strdup(val);
		if (c->key == NULL)
			return TETHER_ERR_NOMEM;
		return 0;
	} else if (strcmp(key, "label") == 0) {
		char k[TETHER_ID_NAME_MAX + 1];
		const char *v;

		if (tether_id_label_parse(val, k, sizeof(k), &v, &why) != 0)
			return conf_error(err, errlen, c->path, line,
					  TETHER_ERR_FORMAT,
					  "invalid label (%s)", why);
		if (agent_labels_get(&c->labels, k) != NULL)
			return conf_error(err, errlen, c->path, line,
					  TETHER_ERR_EXISTS,
					  "duplicate label '%s'", k);
		return agent_labels_set(&c->labels, k, v);
	} else if (strcmp(key, "allow_forward") == 0) {
		struct agent_target t;

		if (agent_target_parse(val, 0, &t, &why) != 0)
			return conf_error(
			    err, errlen, c->path, line, TETHER_ERR_FORMAT,
			    "invalid allow_forward '%s' (%s)", val, why);
		return agent_targets_add(&c->forward_targets, &t);
	} else {
		return conf_error(err, errlen, c->path, line,
				  TETHER_ERR_INVALID, "unknown key '%s'", key);
	}
	if (*slot != NULL)
		return conf_error(err, errlen, c->path, line, TETHER_ERR_EXISTS,
				  "duplicate key '%s'", key);
	*slot = tether_strdup(val);
	return *slot == NULL ? TETHER_ERR_NOMEM : 0;
}

/* "[check NAME]": starts a new section. */
static int section(struct agent_config *c, char *s, int line, char *err,
		   size_t errlen)
{
	struct agent_check_conf *grown;
	char *end = strchr(s, ']'), *name;
	size_t i;

	if (end == NULL)
		return conf_error(err, errlen, c->path, line, TETHER_ERR_FORMAT,
				  "missing ']'");
	*end = '\0';
	end = trim(end + 1);
	if (*end != '\0' && *end != '#')
		return conf_error(err, errlen, c->path, line, TETHER_ERR_FORMAT,
				  "text after ']'");
	s = trim(s + 1);
	if (strncmp(s, "check", 5) != 0 || !is_space(s[5]))
		return conf_error(err, errlen, c->path, line,
				  TETHER_ERR_INVALID, "unknown section '%s'",
				  s);
	name = trim(s + 5);
	if (!tether_id_name_valid(name))
		return conf_error(err, errlen, c->path, line, TETHER_ERR_FORMAT,
				  "invalid check name '%s' (1 to 64 of A-Z "
				  "a-z 0-9 _ . -)",
				  name);
	for (i = 0; i < c->nchecks; i++)
		if (strcmp(c->checks[i].name, name) == 0)
			return conf_error(err, errlen, c->path, line,
					  TETHER_ERR_EXISTS,
					  "duplicate check '%s' (first on line "
					  "%d)",
					  name, c->checks[i].line);
	grown =
	    tether_reallocarray(c->checks, c->nchecks + 1, sizeof(*c->checks));
	if (grown == NULL)
		return TETHER_ERR_NOMEM;
	c->checks = grown;
	memset(&grown[c->nchecks], 0, sizeof(*grown));
	grown[c->nchecks].line = line;
	grown[c->nchecks].name = tether_strdup(name);
	if (grown[c->nchecks].name == NULL)
		return TETHER_ERR_NOMEM;
	c->nchecks++;
	return 0;
}

static int parse_line(struct agent_config *c, char *s, int line, char *err,
		      size_t errlen)
{
	const char *why = NULL;
	char *key, *val, *eq;
	size_t i;

	s = trim(s);
	if (*s == '\0' || *s == '#')
		return 0;
	if (*s == '[')
		return section(c, s, line, err, errlen);
	eq = strchr(s, '=');
	if (eq == NULL)
		return conf_error(err, errlen, c->path, line, TETHER_ERR_FORMAT,
				  "want KEY = VALUE");
	*eq = '\0';
	key = trim(s);
	for (i = 0; key[i] != '\0'; i++)
		if (!((key[i] >= 'a' && key[i] <= 'z') || key[i] == '_' ||
		      (key[i] >= '0' && key[i] <= '9')))
			return conf_error(err, errlen, c->path, line,
					  TETHER_ERR_INVALID,
					  "unknown key '%s'", key);
	if (i == 0)
		return conf_error(err, errlen, c->path, line, TETHER_ERR_FORMAT,
				  "missing key before '='");
	val = parse_value(eq + 1, &why);
	if (val == NULL)
		return conf_error(err, errlen, c->path, line, TETHER_ERR_FORMAT,
				  "%s for '%s'", why, key);
	if (c->nchecks == 0)
		return top_key(c, key, val, line, err, errlen);
	return add_kv(&c->checks[c->nchecks - 1], key, val, line);
}

int agent_config_load(const char *path, struct agent_config *c, char *err,
		      size_t errlen)
{
	char buf[CONF_LINE_MAX + 2], dir[1024];
	int r = TETHER_ERR_NOMEM, line = 0;
	FILE *f;

	memset(c, 0, sizeof(*c));
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	c->path = tether_strdup(path);
	if (c->path == NULL)
		goto out;
	f = fopen(path, "re");
	if (f == NULL) {
		r = conf_error(err, errlen, path, 0,
			       errno == ENOENT ? TETHER_ERR_NOT_FOUND
					       : TETHER_ERR_SYS,
			       "%s", strerror(errno));
		goto out;
	}
	while (fgets(buf, sizeof(buf), f) != NULL) {
		size_t n = strlen(buf);

		line++;
		if (n > CONF_LINE_MAX && buf[n - 1] != '\n') {
			r = conf_error(
			    err, errlen, path, line, TETHER_ERR_TOO_LARGE,
			    "line longer than %d bytes", CONF_LINE_MAX);
			break;
		}
		r = parse_line(c, buf, line, err, errlen);
		if (r != 0)
			break;
	}
	if (r == 0 && ferror(f))
		r = conf_error(err, errlen, path, 0, TETHER_ERR_SYS,
			       "read error");
	fclose(f);
	if (r == 0 && c->key == NULL) {
		char full[2048];

		dir_of(path, dir, sizeof(dir));
		snprintf(full, sizeof(full), "%s/agent.key", dir);
		c->key = tether_strdup(full);
		if (c->key == NULL)
			r = TETHER_ERR_NOMEM;
	}
out:
	if (r == TETHER_ERR_NOMEM && err != NULL && errlen > 0 &&
	    err[0] == '\0')
		snprintf(err, errlen, "%s: out of memory", path);
	if (r != 0)
		agent_config_free(c);
	return r;
}

void agent_config_free(struct agent_config *c)
{
	size_t i, j;

	if (c == NULL)
		return;
	for (i = 0; i < c->nchecks; i++) {
		for (j = 0; j < c->checks[i].n; j++) {
			tether_free(c->checks[i].kv[j].key);
			tether_free(c->checks[i].kv[j].value);
		}
		tether_free(c->checks[i].kv);
		tether_free(c->checks[i].name);
	}
	tether_free(c->checks);
	tether_free(c->path);
	tether_free(c->relay);
	tether_free(c->fingerprint);
	tether_free(c->name);
	tether_free(c->key);
	agent_labels_free(&c->labels);
	agent_targets_free(&c->forward_targets);
	memset(c, 0, sizeof(*c));
}

/* Writes "key = value", quoting value when it would not read back as is. */
static void put_kv(FILE *f, const char *key, const char *val)
{
	bool plain = val[0] != '\0' && val[0] != '"' && !is_space(val[0]) &&
		     !is_space(val[strlen(val) - 1]);
	const char *p;

	for (p = val; plain && *p != '\0'; p++)
		if (*p == '#' || *p == '\n')
			plain = false;
	if (plain) {
		fprintf(f, "%s = %s\n", key, val);
		return;
	}
	fprintf(f, "%s = \"", key);
	for (p = val; *p != '\0'; p++) {
		if (*p == '\n')
			continue;
		if (*p == '"' || *p == '\\')
			fputc('\\', f);
		fputc(*p, f);
	}
	fputs("\"\n", f);
}

/*
 * The key file as it reads back: left out when it is the default, relative
 * when it lies under the config's directory (so a moved directory works).
 */
static void put_key(FILE *f, const char *path, const char *key)
{
	char dir[1024];
	size_t n;

	dir_of(path, dir, sizeof(dir));
	n = strlen(dir);
	if (strncmp(key, dir, n) == 0 && key[n] == '/') {
		if (strcmp(key + n + 1, "agent.key") != 0)
			put_kv(f, "key", key + n + 1);
		return;
	}
	put_kv(f, "key", key);
}

/* mkdir -p of the directory holding path, new directories 0700. */
static int make_parent(const char *path)
{
	char dir[1024];
	size_t i;

	dir_of(path, dir, sizeof(dir));
	for (i = 1;; i++) {
		char ch = dir[i];

		if (ch != '/' && ch != '\0')
			continue;
		dir[i] = '\0';
		if (mkdir(dir, 0700) != 0 && errno != EEXIST)
			return TETHER_ERR_SYS;
		dir[i] = ch;
		if (ch == '\0')
			return 0;
	}
}

/*
 * The [check] sections of the file now at path, verbatim from the first
 * section line to the end; an empty string when there is no such file.
 */
static char *read_sections(const char *path, int *r)
{
	char *text = NULL, *start;
	size_t len = 0;
	FILE *f;
	long sz;

	*r = 0;
	f = fopen(path, "re");
	if (f == NULL) {
		if (errno != ENOENT)
			*r = TETHER_ERR_SYS;
		return errno == ENOENT ? tether_strdup("") : NULL;
	}
	if (fseek(f, 0, SEEK_END) != 0 || (sz = ftell(f)) < 0 ||
	    sz > CONF_FILE_MAX || fseek(f, 0, SEEK_SET) != 0) {
		*r = TETHER_ERR_TOO_LARGE;
		fclose(f);
		return NULL;
	}
	text = tether_malloc((size_t)sz + 1);
	if (text != NULL)
		len = fread(text, 1, (size_t)sz, f);
	fclose(f);
	if (text == NULL) {
		*r = TETHER_ERR_NOMEM;
		return NULL;
	}
	text[len] = '\0';
	for (start = text; *start != '\0';) {
		char *p = start;

		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '[') {
			memmove(text, start, strlen(start) + 1);
			return text;
		}
		p = strchr(start, '\n');
		if (p == NULL)
			break;
		start = p + 1;
	}
	text[0] = '\0';
	return text;
}

int agent_config_save_identity(const struct agent_config *c, char *err,
			       size_t errlen)
{
	char tmp[1100];
	char *rest;
	size_t i;
	FILE *f;
	int r, fd;

	if (c->path == NULL || strlen(c->path) >= 1024)
		return TETHER_ERR_INVALID;
	rest = read_sections(c->path, &r);
	if (rest == NULL)
		return conf_error(err, errlen, c->path, 0, r,
				  "cannot read it: %s", tether_strerror(r));
	r = make_parent(c->path);
	if (r != 0) {
		r = conf_error(err, errlen, c->path, 0, r,
			       "cannot create its directory: %s",
			       strerror(errno));
		goto out;
	}
	snprintf(tmp, sizeof(tmp), "%s.XXXXXX", c->path);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		r = conf_error(err, errlen, c->path, 0, TETHER_ERR_SYS,
			       "cannot write it: %s", strerror(errno));
		goto out;
	}
	f = fdopen(fd, "w");
	if (f == NULL) {
		close(fd);
		unlink(tmp);
		r = TETHER_ERR_NOMEM;
		goto out;
	}
	fputs("# tether-agent identity, written by tether-agent enroll.\n"
	      "# [check NAME] sections below are yours: enroll keeps them.\n"
	      "# See docs/agent-config.md.\n",
	      f);
	if (c->relay != NULL)
		put_kv(f, "relay", c->relay);
	if (c->fingerprint != NULL)
		put_kv(f, "fingerprint", c->fingerprint);
	if (c->name != NULL)
		put_kv(f, "name", c->name);
	if (c->key != NULL)
		put_key(f, c->path, c->key);
	for (i = 0; i < c->labels.n; i++) {
		char kv[TETHER_ID_NAME_MAX + TETHER_ID_LABEL_VALUE_MAX + 2];

		snprintf(kv, sizeof(kv), "%s=%s", c->labels.v[i].key,
			 c->labels.v[i].value);
		put_kv(f, "label", kv);
	}
	for (i = 0; i < c->forward_targets.n; i++) {
		const struct agent_target *t = &c->forward_targets.t[i];

		fprintf(f,
			strchr(t->host, ':') != NULL
			    ? "allow_forward = [%s]:%u\n"
			    : "allow_forward = %s:%u\n",
			t->host, t->port);
	}
	if (rest[0] != '\0')
		fprintf(f, "\n%s", rest);
	if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
		fclose(f);
		unlink(tmp);
		r = conf_error(err, errlen, c->path, 0, TETHER_ERR_SYS,
			       "cannot write it: %s", strerror(errno));
		goto out;
	}
	if (fclose(f) != 0 || rename(tmp, c->path) != 0) {
		unlink(tmp);
		r = conf_error(err, errlen, c->path, 0, TETHER_ERR_SYS,
			       "cannot write it: %s", strerror(errno));
		goto out;
	}
	r = 0;
out:
	tether_free(rest);
	return r;
}

/* ---- Labels ---- */

const char *agent_labels_get(const struct agent_labels *l, const char *key)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (strcmp(l->v[i].key, key) == 0)
			return l->v[i].value;
	return NULL;
}

int agent_labels_set(struct agent_labels *l, const char *key, const char *value)
{
	struct tether_ctrl_label *grown;
	char *k, *v = tether_strdup(value);
	size_t i;

	if (v == NULL)
		return TETHER_ERR_NOMEM;
	for (i = 0; i < l->n; i++) {
		if (strcmp(l->v[i].key, key) == 0) {
			tether_free((char *)l->v[i].value);
			l->v[i].value = v;
			return 0;
		}
	}
	k = tether_strdup(key);
	grown = k != NULL ? tether_reallocarray(l->v, l->n + 1, sizeof(*l->v))
			  : NULL;
	if (grown == NULL) {
		tether_free(k);
		tether_free(v);
		return TETHER_ERR_NOMEM;
	}
	l->v = grown;
	l->v[l->n].key = k;
	l->v[l->n].value = v;
	l->n++;
	return 0;
}

int agent_labels_copy(struct agent_labels *to, const struct agent_labels *from)
{
	size_t i;

	for (i = 0; i < from->n; i++) {
		if (agent_labels_set(to, from->v[i].key, from->v[i].value) !=
		    0) {
			agent_labels_free(to);
			return TETHER_ERR_NOMEM;
		}
	}
	return 0;
}

void agent_labels_free(struct agent_labels *l)
{
	size_t i;

	/* The strings are ours: const only as the ctrl struct lends them. */
	for (i = 0; i < l->n; i++) {
		tether_free((char *)l->v[i].key);
		tether_free((char *)l->v[i].value);
	}
	tether_free(l->v);
	l->v = NULL;
	l->n = 0;
}
