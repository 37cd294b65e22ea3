/*
 * The console's files under $XDG_CONFIG_HOME/tether (else ~/.config/tether):
 * config.json (relay, technician, pinned fingerprint), technician.key (the
 * technician's Ed25519 private key, PKCS#8 PEM), known_relays (one
 * "HOST:PORT SHA256:..." line per relay ever trusted, like ssh's
 * known_hosts) and sessions/<id>.json (SPAKE2 state, later the session key).
 * Directories are 0700 and files 0600; every write goes to a temporary file
 * that is renamed over the old one, so a crash never leaves half a file.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <tether/alloc.h>
#include <tether/crypto.h>
#include <tether/err.h>
#include <tether/proto.h>
#include <tether/sign.h>

#include "console.h"

#define PATH_LEN 4096

static const char not_logged_in[] =
    "not logged in (run: tether login HOST:PORT --token TOKEN)";
static const char key_name[] = "technician.key";
static const char key_pending_name[] = "technician.key.new";

int console_config_parse_relay(const char *arg, char *host, size_t hostlen,
			       int *port, char *norm, size_t normlen)
{
	const char *colon, *hstart, *hend;
	uint64_t p = TETHER_DEFAULT_PORT;
	bool v6 = false;
	size_t hlen;
	int n;

	if (arg == NULL || *arg == '\0')
		return -1;
	if (arg[0] == '[') {
		hstart = arg + 1;
		hend = strchr(hstart, ']');
		if (hend == NULL)
			return -1;
		colon = hend[1] == ':' ? hend + 1 : NULL;
		if (hend[1] != '\0' && colon == NULL)
			return -1;
		v6 = true;
	} else {
		hstart = arg;
		colon = strrchr(arg, ':');
		/* A bare IPv6 address has several colons and no port. */
		if (colon != NULL && strchr(arg, ':') != colon)
			return -1;
		hend = colon != NULL ? colon : arg + strlen(arg);
	}
	hlen = (size_t)(hend - hstart);
	if (hlen == 0 || hlen >= hostlen)
		return -1;
	if (colon != NULL && console_opts_number(colon + 1, 1, 65535, &p) != 0)
		return -1;
	memcpy(host, hstart, hlen);
	host[hlen] = '\0';
	if (strpbrk(host, " \t\r\n/") != NULL)
		return -1;
	*port = (int)p;
	n = snprintf(norm, normlen, v6 ? "[%s]:%d" : "%s:%d", host, (int)p);
	if (n < 0 || (size_t)n >= normlen)
		return -1;
	return 0;
}

/* mkdir that accepts an existing directory. */
static int make_dir(const char *path)
{
	struct stat st;

	if (mkdir(path, 0700) == 0)
		return 0;
	if (errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	console_error("cannot create %s: %s", path, strerror(errno));
	return -1;
}

static int join(char *out, size_t outlen, const char *a, const char *b)
{
	int n = snprintf(out, outlen, "%s/%s", a, b);

	if (n < 0 || (size_t)n >= outlen) {
		console_error("path too long: %s/%s", a, b);
		return -1;
	}
	return 0;
}

/* The config directory; with create, makes it (and its parent) 0700. */
int console_config_dir(char *out, size_t outlen, bool create)
{
	const char *xdg = getenv("XDG_CONFIG_HOME");
	const char *home = getenv("HOME");
	char base[PATH_LEN];
	struct passwd *pw;
	int n;

	/* The XDG spec says to ignore a relative XDG_CONFIG_HOME. */
	if (xdg != NULL && xdg[0] == '/') {
		n = snprintf(base, sizeof(base), "%s", xdg);
	} else {
		if (home == NULL || home[0] != '/') {
			pw = getpwuid(getuid());
			home = pw != NULL ? pw->pw_dir : NULL;
		}
		if (home == NULL) {
			console_error("cannot find the home directory");
			return -1;
		}
		n = snprintf(base, sizeof(base), "%s/.config", home);
	}
	if (n < 0 || (size_t)n >= sizeof(base)) {
		console_error("config path too long");
		return -1;
	}
	if (join(out, outlen, base, "tether") != 0)
		return -1;
	if (create && (make_dir(base) != 0 || make_dir(out) != 0))
		return -1;
	return 0;
}

static int config_path(char *out, size_t outlen, const char *name, bool create)
{
	char dir[PATH_LEN];

	if (console_config_dir(dir, sizeof(dir), create) != 0)
		return -1;
	return join(out, outlen, dir, name);
}

static int fsync_dir(const char *path)
{
	char dir[PATH_LEN];
	char *slash;
	int fd, r;

	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return -1;
	slash = strrchr(dir, '/');
	if (slash == NULL)
		return 0;
	*slash = '\0';
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	r = fsync(fd);
	close(fd);
	return r;
}

/* Replaces path with data (mode 0600) through a temporary file. */
static int write_file(const char *path, const void *data, size_t len)
{
	char tmp[PATH_LEN];
	int fd;

	if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp)) {
		console_error("path too long: %s", path);
		return -1;
	}
	fd = mkstemp(tmp);
	if (fd < 0) {
		console_error("cannot write %s: %s", path, strerror(errno));
		return -1;
	}
	if (fchmod(fd, 0600) != 0 || console_fd_write_all(fd, data, len) != 0 ||
	    fsync(fd) != 0) {
		console_error("cannot write %s: %s", tmp, strerror(errno));
		goto out_unlink;
	}
	if (close(fd) != 0) {
		fd = -1;
		console_error("cannot write %s: %s", tmp, strerror(errno));
		goto out_unlink;
	}
	fd = -1;
	if (rename(tmp, path) != 0) {
		console_error("cannot rename %s to %s: %s", tmp, path,
			      strerror(errno));
		goto out_unlink;
	}
	/* The rename itself must survive a crash too. */
	fsync_dir(path);
	return 0;

out_unlink:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return -1;
}

/* Writes a JSON object, wiping the serialised copy: it may hold secrets. */
static int write_json(const char *path, const json_t *obj)
{
	char *text;
	size_t len;
	int r;

	text = json_dumps(obj, JSON_INDENT(2));
	if (text == NULL) {
		console_error("out of memory");
		return -1;
	}
	len = strlen(text);
	text[len] = '\n';
	r = write_file(path, text, len + 1);
	tether_freezero(text, len + 1);
	return r;
}

/* 0 with *out, 1 if the file does not exist, -1 (reported) otherwise. */
static int read_json(const char *path, json_t **out)
{
	json_error_t jerr;
	json_t *v;

	*out = NULL;
	if (access(path, F_OK) != 0 && errno == ENOENT)
		return 1;
	v = json_load_file(path, 0, &jerr);
	if (v == NULL) {
		console_error("cannot read %s: %s", path, jerr.text);
		return -1;
	}
	if (!json_is_object(v)) {
		console_error("%s: not a JSON object", path);
		json_decref(v);
		return -1;
	}
	*out = v;
	return 0;
}

static int copy_str(char *out, size_t outlen, const char *s)
{
	int n;

	if (s == NULL)
		return -1;
	n = snprintf(out, outlen, "%s", s);
	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

int console_config_key_path(char *out, size_t outlen, bool pending)
{
	return config_path(out, outlen, pending ? key_pending_name : key_name,
			   true);
}

/* Loads the key, or says what is wrong with its file and what to do. */
static int load_key(const char *relay, struct tether_sign_key **key)
{
	char path[PATH_LEN];
	int r;

	if (config_path(path, sizeof(path), key_name, false) != 0)
		return -1;
	r = tether_sign_key_load(path, key, NULL);
	if (r == TETHER_ERR_NOT_FOUND)
		console_error("the technician key %s is missing; log in again "
			      "with a new login token from an admin (run: "
			      "tether logout, then tether login %s --token "
			      "TOKEN)",
			      path, relay);
	else if (r == TETHER_ERR_PERM)
		console_error("the technician key %s may be read by others; "
			      "refusing to use it (run: chmod 600 %s)",
			      path, path);
	else if (r == TETHER_ERR_FORMAT)
		console_error("the technician key %s is damaged (not an "
			      "Ed25519 key); log in again with a new login "
			      "token from an admin (run: tether logout, then "
			      "tether login %s --token TOKEN)",
			      path, relay);
	else if (r != 0)
		console_error("cannot read the technician key %s: %s", path,
			      tether_strerror(r));
	return r == 0 ? 0 : -1;
}

int console_config_load(struct console_config *cfg)
{
	char path[PATH_LEN], norm[CONSOLE_HOSTPORT_MAX];
	const char *relay, *tech, *fp;
	json_t *obj = NULL;
	int r, ret = -1;

	memset(cfg, 0, sizeof(*cfg));
	if (config_path(path, sizeof(path), "config.json", false) != 0)
		return -1;
	r = read_json(path, &obj);
	if (r == 1)
		console_error("%s", not_logged_in);
	if (r != 0)
		return -1;
	relay = json_string_value(json_object_get(obj, "relay"));
	tech = json_string_value(json_object_get(obj, "technician"));
	fp = json_string_value(json_object_get(obj, "fingerprint"));
	if (relay == NULL || !tether_id_name_valid(tech) ||
	    !tether_id_fingerprint_valid(fp) ||
	    console_config_parse_relay(relay, cfg->host, sizeof(cfg->host),
				       &cfg->port, norm, sizeof(norm)) != 0 ||
	    copy_str(cfg->relay, sizeof(cfg->relay), norm) != 0 ||
	    copy_str(cfg->technician, sizeof(cfg->technician), tech) != 0 ||
	    copy_str(cfg->fingerprint, sizeof(cfg->fingerprint), fp) != 0) {
		console_error("%s is damaged; %s", path, not_logged_in);
		goto out;
	}
	ret = load_key(cfg->relay, &cfg->key);
out:
	json_decref(obj);
	return ret;
}

int console_config_peek(char *relay, size_t relaylen, char *technician,
			size_t techlen, bool *has_key)
{
	char path[PATH_LEN];
	json_t *obj = NULL;
	int r;

	*has_key = false;
	if (config_path(path, sizeof(path), "config.json", false) != 0)
		return -1;
	/* A damaged file is no login: the new one replaces it. */
	if (access(path, F_OK) != 0 ||
	    (obj = json_load_file(path, 0, NULL)) == NULL)
		return 1;
	r = copy_str(relay, relaylen,
		     json_string_value(json_object_get(obj, "relay"))) != 0 ||
		    copy_str(technician, techlen,
			     json_string_value(
				 json_object_get(obj, "technician"))) != 0
		? 1
		: 0;
	json_decref(obj);
	if (r == 0 && config_path(path, sizeof(path), key_name, false) == 0)
		*has_key = access(path, F_OK) == 0;
	return r;
}

int console_config_save(const char *relay, const char *technician,
			const char *fingerprint)
{
	char path[PATH_LEN];
	json_t *obj;
	int r;

	if (config_path(path, sizeof(path), "config.json", true) != 0)
		return -1;
	obj = json_pack("{s:s, s:s, s:s}", "relay", relay, "technician",
			technician, "fingerprint", fingerprint);
	if (obj == NULL) {
		console_error("out of memory");
		return -1;
	}
	r = write_json(path, obj);
	json_decref(obj);
	return r;
}

/* Removes path; a file already gone counts as removed. */
static int remove_file(const char *path, bool *was)
{
	*was = false;
	if (unlink(path) == 0) {
		*was = true;
		return 0;
	}
	if (errno == ENOENT)
		return 0;
	console_error("cannot remove %s: %s", path, strerror(errno));
	return -1;
}

int console_config_forget(char *relay, size_t relaylen, bool *had_login,
			  bool *had_key, unsigned *sessions)
{
	char dir[PATH_LEN], path[PATH_LEN];
	json_error_t jerr;
	struct dirent *e;
	json_t *v;
	bool was;
	DIR *d;
	int ret = 0;

	*had_login = false;
	*sessions = 0;
	if (relaylen > 0)
		relay[0] = '\0';
	if (config_path(path, sizeof(path), "config.json", false) != 0)
		return -1;
	/* Which relay, for the message; a damaged file goes all the same. */
	v = json_load_file(path, 0, &jerr);
	if (copy_str(relay, relaylen,
		     json_string_value(json_object_get(v, "relay"))) != 0 &&
	    relaylen > 0)
		relay[0] = '\0';
	json_decref(v);
	if (remove_file(path, had_login) != 0)
		ret = -1;
	/* The key is the technician's identity here: it goes too. */
	*had_key = false;
	if (config_path(path, sizeof(path), key_name, false) != 0 ||
	    remove_file(path, had_key) != 0)
		ret = -1;
	if (config_path(path, sizeof(path), key_pending_name, false) != 0 ||
	    remove_file(path, &was) != 0)
		ret = -1;
	if (config_path(dir, sizeof(dir), "sessions", false) != 0)
		return -1;
	d = opendir(dir);
	if (d == NULL) {
		if (errno == ENOENT)
			return ret;
		console_error("cannot read %s: %s", dir, strerror(errno));
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (join(path, sizeof(path), dir, e->d_name) != 0) {
			ret = -1;
			continue;
		}
		if (remove_file(path, &was) != 0)
			ret = -1;
		/* The .lock files hold no secret; the .json files do. */
		else if (was && strstr(e->d_name, ".json") != NULL)
			(*sessions)++;
	}
	closedir(d);
	return ret;
}

void console_config_clear(struct console_config *cfg)
{
	tether_sign_key_free(cfg->key);
	cfg->key = NULL;
}

/*
 * Reads known_relays whole; *out is NUL-terminated (empty if the file does
 * not exist) and freed by the caller.
 */
static int read_known(const char *path, char **out, size_t *lenp)
{
	char *data = NULL;
	size_t len = 0, cap = 0;
	ssize_t n;
	int fd, ret = -1;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno != ENOENT) {
		console_error("cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	for (;;) {
		if (cap - len < 4096 + 1) {
			char *p;

			if (cap > (1u << 20)) {
				console_error("%s is too large", path);
				goto out;
			}
			cap = cap * 2 + 8192;
			p = tether_reallocarray(data, cap, 1);
			if (p == NULL) {
				console_error("out of memory");
				goto out;
			}
			data = p;
		}
		if (fd < 0)
			break;
		n = read(fd, data + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			console_error("cannot read %s: %s", path,
				      strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	data[len] = '\0';
	*out = data;
	*lenp = len;
	data = NULL;
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	tether_free(data);
	return ret;
}

/*
 * Looks relay up in known_relays: 0 with its fingerprint, 1 if it was never
 * trusted, -1 (reported) on failure.
 */
int console_config_known_lookup(const char *relay, char *fp, size_t fplen)
{
	char path[PATH_LEN];
	char *data, *line, *save = NULL, *key, *val;
	size_t len;
	int ret = 1;

	if (config_path(path, sizeof(path), "known_relays", false) != 0 ||
	    read_known(path, &data, &len) != 0)
		return -1;
	for (line = strtok_r(data, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		char *fsave = NULL;

		key = strtok_r(line, " \t\r", &fsave);
		val = strtok_r(NULL, " \t\r", &fsave);
		if (key == NULL || key[0] == '#' || strcmp(key, relay) != 0)
			continue;
		if (!tether_id_fingerprint_valid(val) ||
		    copy_str(fp, fplen, val) != 0) {
			console_error("%s: bad entry for %s", path, relay);
			ret = -1;
		} else {
			ret = 0;
		}
		break;
	}
	tether_free(data);
	return ret;
}

int console_config_known_add(const char *relay, const char *fp)
{
	char path[PATH_LEN];
	char *data = NULL, *all = NULL;
	size_t len, add, total;
	int n, ret = -1;

	if (config_path(path, sizeof(path), "known_relays", true) != 0 ||
	    read_known(path, &data, &len) != 0)
		return -1;
	add = strlen(relay) + strlen(fp) + 3;
	total = len + add + 1;
	all = tether_malloc(total);
	if (all == NULL) {
		console_error("out of memory");
		goto out;
	}
	/* Keep what is there; make sure the old last line is ended. */
	n = snprintf(all, total, "%s%s%s %s\n", data,
		     len > 0 && data[len - 1] != '\n' ? "\n" : "", relay, fp);
	if (n < 0 || (size_t)n >= total) {
		console_error("known_relays: entry too long");
		goto out;
	}
	ret = write_file(path, all, (size_t)n);
out:
	tether_free(all);
	tether_free(data);
	return ret;
}

int console_config_known_replace(const char *relay, const char *fp)
{
	char path[PATH_LEN];
	char *data = NULL, *all = NULL, *line, *next;
	size_t len, total, at = 0, klen = strlen(relay);
	int n, ret = -1;

	if (config_path(path, sizeof(path), "known_relays", true) != 0 ||
	    read_known(path, &data, &len) != 0)
		return -1;
	total = len + klen + strlen(fp) + 4;
	all = tether_malloc(total);
	if (all == NULL) {
		console_error("out of memory");
		goto out;
	}
	/* Every other line as it was (comments too); relay's lines go. */
	for (line = data; *line != '\0'; line = next) {
		size_t ll, skip = strspn(line, " \t");

		next = strchr(line, '\n');
		next = next != NULL ? next + 1 : line + strlen(line);
		ll = (size_t)(next - line);
		if (strncmp(line + skip, relay, klen) == 0 &&
		    strchr(" \t\r\n", line[skip + klen]) != NULL)
			continue;
		memcpy(all + at, line, ll);
		at += ll;
		if (all[at - 1] != '\n')
			all[at++] = '\n';
	}
	n = snprintf(all + at, total - at, "%s %s\n", relay, fp);
	if (n < 0 || (size_t)n >= total - at) {
		console_error("known_relays: entry too long");
		goto out;
	}
	ret = write_file(path, all, at + (size_t)n);
out:
	tether_free(all);
	tether_free(data);
	return ret;
}

static int session_path_ext(char *out, size_t outlen, int64_t session,
			    const char *ext, bool create)
{
	char dir[PATH_LEN], name[32];

	if (console_config_dir(dir, sizeof(dir), create) != 0 ||
	    join(out, outlen, dir, "sessions") != 0)
		return -1;
	if (create && make_dir(out) != 0)
		return -1;
	if (snprintf(name, sizeof(name), "%" PRId64 "%s", session, ext) >=
	    (int)sizeof(name))
		return -1;
	/* join() into a copy: out is both source and target here. */
	if (snprintf(dir, sizeof(dir), "%s", out) >= (int)sizeof(dir))
		return -1;
	return join(out, outlen, dir, name);
}

static int session_path(char *out, size_t outlen, int64_t session, bool create)
{
	return session_path_ext(out, outlen, session, ".json", create);
}

int console_config_session_lock(int64_t session)
{
	char path[PATH_LEN];
	int fd, tries;

	if (session_path_ext(path, sizeof(path), session, ".lock", true) != 0)
		return -1;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		console_error("cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	/* Another console finishing the pairing holds it while the customer
	 * answers. */
	for (tries = 0; tries < CONSOLE_LOCK_WAIT_MS / 20; tries++) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return fd;
		if (errno != EWOULDBLOCK && errno != EINTR)
			break;
		usleep(20000);
	}
	console_error("another tether is still pairing this session (%s)",
		      path);
	close(fd);
	return -1;
}

void console_config_session_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}

int console_config_session_save(int64_t session, const json_t *obj)
{
	char path[PATH_LEN];

	if (session_path(path, sizeof(path), session, true) != 0)
		return -1;
	return write_json(path, obj);
}

/* 0 with *out, 1 if this console has no file for the session, -1 on error. */
int console_config_session_load(int64_t session, json_t **out)
{
	char path[PATH_LEN];

	*out = NULL;
	if (session_path(path, sizeof(path), session, false) != 0)
		return -1;
	return read_json(path, out);
}
