/*
 * `tether ssh`, the part before a channel opens: the server's host key
 * against ~/.ssh/known_hosts, then user authentication in OpenSSH's order
 * (ssh-agent, key files, keyboard-interactive, password).  Runs on the ssh
 * thread with a blocking libssh2 session; questions go to /dev/tty, never
 * to standard input (which belongs to the remote command), as OpenSSH and
 * `tether login` do.  Failures are words in j->error, printed by the main
 * thread once everything is torn down.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <tether/alloc.h>
#include <tether/crypto.h>

#include <libssh2.h>

#include "console.h"

#define LINE_MAX_LEN 8192
#define TRIES 3

/*
 * libssh2 allocates through our wrappers too, so that what it frees (the
 * answers to keyboard-interactive prompts) is ours to allocate.
 */
static LIBSSH2_ALLOC_FUNC(ssh_alloc)
{
	(void)abstract;
	return tether_malloc(count);
}

static LIBSSH2_REALLOC_FUNC(ssh_realloc)
{
	(void)abstract;
	return tether_reallocarray(ptr, count, 1);
}

static LIBSSH2_FREE_FUNC(ssh_free)
{
	(void)abstract;
	tether_free(ptr);
}

LIBSSH2_SESSION *console_ssh_session_new(void *abstract)
{
	return libssh2_session_init_ex(ssh_alloc, ssh_free, ssh_realloc,
				       abstract);
}

void console_ssh_error(struct console_ssh *j, const char *fmt, ...)
{
	va_list ap;

	if (j->error[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(j->error, sizeof(j->error), fmt, ap);
	va_end(ap);
}

/* libssh2's words for the last failure. */
const char *console_ssh_last_error(LIBSSH2_SESSION *s)
{
	char *msg = NULL;
	int len = 0;

	libssh2_session_last_error(s, &msg, &len, 0);
	return msg != NULL && msg[0] != '\0' ? msg : "unknown error";
}

/*
 * Asks on the terminal: prompt, then one line into out (echo off unless
 * echo).  0 with a line, -1 without a terminal or at its end.
 */
static int tty_ask(const char *prompt, bool echo, char *out, size_t len)
{
	struct termios tio, saved;
	bool restore = false;
	size_t n = 0;
	ssize_t r;
	char ch;
	int fd, ret = -1;

	out[0] = '\0';
	fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -1;
	if (!echo && tcgetattr(fd, &saved) == 0) {
		tio = saved;
		tio.c_lflag &= ~(tcflag_t)ECHO;
		tio.c_lflag |= ECHONL | ICANON;
		restore = tcsetattr(fd, TCSAFLUSH, &tio) == 0;
	}
	if (console_fd_write_all(fd, prompt, strlen(prompt)) != 0)
		goto out;
	for (;;) {
		r = read(fd, &ch, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			goto out;
		if (ch == '\n' || ch == '\r')
			break;
		if (n + 1 < len)
			out[n++] = ch;
	}
	out[n] = '\0';
	ret = 0;
out:
	if (restore)
		tcsetattr(fd, TCSAFLUSH, &saved);
	close(fd);
	return ret;
}

static bool have_tty(void)
{
	int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/*
 * Host keys.
 */

static int key_bits(int type, const char **name)
{
	switch (type) {
	case LIBSSH2_HOSTKEY_TYPE_RSA:
		*name = "RSA";
		return LIBSSH2_KNOWNHOST_KEY_SSHRSA;
	case LIBSSH2_HOSTKEY_TYPE_DSS:
		*name = "DSA";
		return LIBSSH2_KNOWNHOST_KEY_SSHDSS;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_256:
		*name = "ECDSA";
		return LIBSSH2_KNOWNHOST_KEY_ECDSA_256;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_384:
		*name = "ECDSA";
		return LIBSSH2_KNOWNHOST_KEY_ECDSA_384;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_521:
		*name = "ECDSA";
		return LIBSSH2_KNOWNHOST_KEY_ECDSA_521;
	case LIBSSH2_HOSTKEY_TYPE_ED25519:
		*name = "ED25519";
		return LIBSSH2_KNOWNHOST_KEY_ED25519;
	default:
		*name = "unknown";
		return -1;
	}
}

/*
 * Reads known_hosts line by line: libssh2_knownhost_readfile() stops at
 * the first line it cannot parse (a key type it does not know, a
 * marker), and would miss the entries after it, changed keys included.
 */
static void read_known(LIBSSH2_KNOWNHOSTS *hosts, const char *path)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *fp = fopen(path, "re");

	if (fp == NULL)
		return;
	while ((n = getline(&line, &cap, fp)) > 0)
		libssh2_knownhost_readline(hosts, line, (size_t)n,
					   LIBSSH2_KNOWNHOST_FILE_OPENSSH);
	free(line);
	fclose(fp);
}

/* Appends the new entry, making ~/.ssh if needed; 0 or -1 (j->error). */
static int add_known(struct console_ssh *j, LIBSSH2_KNOWNHOSTS *hosts,
		     const char *name, const char *key, size_t keylen, int bits)
{
	struct libssh2_knownhost *added = NULL;
	char dir[CONSOLE_PATH_MAX], line[LINE_MAX_LEN];
	size_t outlen = 0;
	int fd, ret = -1;

	if (libssh2_knownhost_addc(hosts, name, NULL, key, keylen, NULL, 0,
				   LIBSSH2_KNOWNHOST_TYPE_PLAIN |
				       LIBSSH2_KNOWNHOST_KEYENC_RAW | bits,
				   &added) != 0 ||
	    libssh2_knownhost_writeline(hosts, added, line, sizeof(line) - 1,
					&outlen,
					LIBSSH2_KNOWNHOST_FILE_OPENSSH) != 0) {
		console_ssh_error(j, "cannot write a known_hosts entry");
		return -1;
	}
	if (outlen == 0 || line[outlen - 1] != '\n')
		line[outlen++] = '\n';
	if (snprintf(dir, sizeof(dir), "%s/.ssh", j->home) >=
	    (int)sizeof(dir)) {
		console_ssh_error(j, "home directory name too long");
		return -1;
	}
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		console_ssh_error(j, "%s: %s", dir, strerror(errno));
		return -1;
	}
	fd = open(j->known_hosts, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
		  0600);
	if (fd < 0 || console_fd_write_all(fd, line, outlen) != 0)
		console_ssh_error(j, "%s: %s", j->known_hosts, strerror(errno));
	else
		ret = 0;
	if (fd >= 0 && close(fd) != 0 && ret == 0) {
		console_ssh_error(j, "%s: %s", j->known_hosts, strerror(errno));
		ret = -1;
	}
	if (ret == 0)
		fprintf(stderr,
			"Warning: Permanently added '%s' (%s) to the list of "
			"known hosts.\n",
			name, j->key_type);
	return ret;
}

/* OpenSSH's question; 0 for yes, -1 (j->error) otherwise. */
static int ask_host(struct console_ssh *j, const char *name, const char *fp)
{
	char prompt[1024], answer[64];

	snprintf(prompt, sizeof(prompt),
		 "The authenticity of host '%s' can't be established.\n"
		 "%s key fingerprint is %s.\n"
		 "Are you sure you want to continue connecting (yes/no)? ",
		 name, j->key_type, fp);
	for (;;) {
		if (tty_ask(prompt, true, answer, sizeof(answer)) != 0)
			break;
		if (strcmp(answer, "yes") == 0)
			return 0;
		if (strcmp(answer, "no") == 0)
			break;
		snprintf(prompt, sizeof(prompt), "Please type 'yes' or 'no': ");
	}
	console_ssh_error(j, "host key verification failed");
	return -1;
}

int console_ssh_host_key(struct console_ssh *j, LIBSSH2_SESSION *s)
{
	struct libssh2_knownhost *found = NULL;
	LIBSSH2_KNOWNHOSTS *hosts;
	const char *key, *hash;
	char name[sizeof(j->known_name)], fp[80], b64[64];
	size_t keylen = 0;
	int type = 0, bits, rc, ret = -1;

	key = libssh2_session_hostkey(s, &keylen, &type);
	hash = libssh2_hostkey_hash(s, LIBSSH2_HOSTKEY_HASH_SHA256);
	bits = key_bits(type, &j->key_type);
	if (key == NULL || hash == NULL || bits < 0) {
		console_ssh_error(
		    j, "the server sent a host key of an unknown type");
		return -1;
	}
	if (tether_base64_encode(hash, 32, b64, sizeof(b64)) != 0) {
		console_ssh_error(j, "cannot encode the host key fingerprint");
		return -1;
	}
	snprintf(fp, sizeof(fp), "SHA256:%s", b64);
	/* An alias, like OpenSSH's HostKeyAlias: used as is, no port. */
	snprintf(name, sizeof(name), "%s", j->known_name);
	hosts = libssh2_knownhost_init(s);
	if (hosts == NULL) {
		console_ssh_error(j, "out of memory");
		return -1;
	}
	read_known(hosts, j->known_hosts);
	rc = libssh2_knownhost_checkp(hosts, name, -1, key, keylen,
				      LIBSSH2_KNOWNHOST_TYPE_PLAIN |
					  LIBSSH2_KNOWNHOST_KEYENC_RAW | bits,
				      &found);
	switch (rc) {
	case LIBSSH2_KNOWNHOST_CHECK_MATCH:
		ret = 0;
		break;
	case LIBSSH2_KNOWNHOST_CHECK_MISMATCH:
		console_ssh_error(
		    j,
		    "host key for %s has changed! The server now "
		    "presents %s key %s; if that is expected, "
		    "remove the old entry with: ssh-keygen -R '%s'",
		    name, j->key_type, fp, name);
		break;
	case LIBSSH2_KNOWNHOST_CHECK_NOTFOUND:
		if (j->accept_new)
			ret = add_known(j, hosts, name, key, keylen, bits);
		else if (!have_tty())
			console_ssh_error(
			    j,
			    "host key for %s is not known (%s %s); "
			    "pass --accept-new to trust it",
			    name, j->key_type, fp);
		else if (ask_host(j, name, fp) == 0)
			ret = add_known(j, hosts, name, key, keylen, bits);
		break;
	default:
		console_ssh_error(j, "cannot check the host key: %s",
				  console_ssh_last_error(s));
		break;
	}
	libssh2_knownhost_free(hosts);
	return ret;
}

/*
 * Authentication.
 */

static bool has_method(const char *list, const char *m)
{
	size_t n = strlen(m);
	const char *p = list;

	while ((p = strstr(p, m)) != NULL) {
		if ((p == list || p[-1] == ',') &&
		    (p[n] == ',' || p[n] == '\0'))
			return true;
		p += n;
	}
	return false;
}

static int try_agent(struct console_ssh *j, LIBSSH2_SESSION *s)
{
	struct libssh2_agent_publickey *id = NULL, *prev = NULL;
	LIBSSH2_AGENT *agent;
	const char *sock = getenv("SSH_AUTH_SOCK");
	int ret = -1;

	if (sock == NULL || sock[0] == '\0')
		return -1;
	agent = libssh2_agent_init(s);
	if (agent == NULL)
		return -1;
	if (libssh2_agent_connect(agent) == 0 &&
	    libssh2_agent_list_identities(agent) == 0) {
		while (libssh2_agent_get_identity(agent, &id, prev) == 0) {
			if (libssh2_agent_userauth(agent, j->user, id) == 0) {
				ret = 0;
				break;
			}
			prev = id;
		}
	}
	libssh2_agent_disconnect(agent);
	libssh2_agent_free(agent);
	return ret;
}

/*
 * Whether a private key file needs a passphrase: PEM says so in its
 * headers; the OpenSSH format names its cipher ("none" when it is not
 * encrypted) right after the magic.
 */
static bool key_encrypted(const char *path)
{
	static const char begin[] = "-----BEGIN OPENSSH PRIVATE KEY-----";
	static const char magic[] = "openssh-key-v1";
	unsigned char raw[64];
	char buf[16384], b64[89];
	const char *p;
	size_t n = 0, m = 0, r;
	FILE *fp = fopen(path, "re");
	bool enc = false;

	if (fp == NULL)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	if (strstr(buf, "ENCRYPTED") != NULL)
		return true;
	p = strstr(buf, begin);
	if (p == NULL)
		return false;
	/* The first 88 base64 characters: 66 bytes, plenty for the name. */
	for (p += sizeof(begin) - 1; *p != '\0' && m < 88; p++)
		if (*p != '\n' && *p != '\r')
			b64[m++] = *p;
	b64[m] = '\0';
	if (m < 88 || EVP_DecodeBlock(raw, (unsigned char *)b64, 88) < 40)
		return false;
	r = sizeof(magic);
	if (memcmp(raw, magic, r) != 0)
		return false;
	/* u32 length, then the cipher name. */
	if (raw[r] != 0 || raw[r + 1] != 0 || raw[r + 2] != 0 ||
	    raw[r + 3] > 40)
		return false;
	enc = !(raw[r + 3] == 4 && memcmp(raw + r + 4, "none", 4) == 0);
	return enc;
}

static int try_key(struct console_ssh *j, LIBSSH2_SESSION *s, const char *path,
		   bool named)
{
	char pub[CONSOLE_PATH_MAX], prompt[CONSOLE_PATH_MAX + 64], pass[1024];
	const char *pubp = NULL;
	int i, rc;

	if (access(path, R_OK) != 0) {
		if (named)
			fprintf(stderr,
				"Warning: Identity file %s not accessible: "
				"%s.\n",
				path, strerror(errno));
		return -1;
	}
	if (snprintf(pub, sizeof(pub), "%s.pub", path) < (int)sizeof(pub) &&
	    access(pub, R_OK) == 0)
		pubp = pub;
	if (!key_encrypted(path))
		return libssh2_userauth_publickey_fromfile_ex(
			   s, j->user, (unsigned int)strlen(j->user), pubp,
			   path, NULL) == 0
			   ? 0
			   : -1;
	snprintf(prompt, sizeof(prompt),
		 "Enter passphrase for key '%s': ", path);
	for (i = 0; i < TRIES; i++) {
		/* No terminal, or an empty answer: skip this key. */
		if (tty_ask(prompt, false, pass, sizeof(pass)) != 0 ||
		    pass[0] == '\0')
			break;
		/*
		 * Without the public half libssh2 derives it from the
		 * private one first: a wrong passphrase then fails here
		 * (LIBSSH2_ERROR_FILE), before the server is asked.
		 */
		rc = libssh2_userauth_publickey_fromfile_ex(
		    s, j->user, (unsigned int)strlen(j->user), NULL, path,
		    pass);
		tether_wipe(pass, sizeof(pass));
		if (rc == 0)
			return 0;
		/* Not the passphrase: the server refused the key. */
		if (rc != LIBSSH2_ERROR_FILE)
			break;
	}
	tether_wipe(pass, sizeof(pass));
	return -1;
}

static int try_keys(struct console_ssh *j, LIBSSH2_SESSION *s)
{
	static const char *const defaults[] = {"id_ed25519", "id_ecdsa",
					       "id_rsa"};
	char path[CONSOLE_PATH_MAX];
	size_t i;

	if (j->identity != NULL)
		return try_key(j, s, j->identity, true);
	for (i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
		if (snprintf(path, sizeof(path), "%s/.ssh/%s", j->home,
			     defaults[i]) >= (int)sizeof(path))
			continue;
		if (try_key(j, s, path, false) == 0)
			return 0;
	}
	return -1;
}

/* keyboard-interactive: each prompt on the terminal. */
static void kbd_callback(const char *name, int name_len,
			 const char *instruction, int instruction_len,
			 int num_prompts,
			 const LIBSSH2_USERAUTH_KBDINT_PROMPT *prompts,
			 LIBSSH2_USERAUTH_KBDINT_RESPONSE *responses,
			 void **abstract)
{
	char prompt[1024], answer[1024];
	int i;

	(void)abstract;
	if (name_len > 0 || instruction_len > 0)
		fprintf(stderr, "%.*s%s%.*s\n", name_len, name,
			name_len > 0 && instruction_len > 0 ? "\n" : "",
			instruction_len, instruction);
	for (i = 0; i < num_prompts; i++) {
		snprintf(prompt, sizeof(prompt), "%.*s", (int)prompts[i].length,
			 prompts[i].text);
		if (tty_ask(prompt, prompts[i].echo != 0, answer,
			    sizeof(answer)) != 0)
			answer[0] = '\0';
		/* libssh2 frees the answers with ssh_free(). */
		responses[i].text = tether_strdup(answer);
		responses[i].length = responses[i].text != NULL
					  ? (unsigned int)strlen(answer)
					  : 0;
		tether_wipe(answer, sizeof(answer));
	}
}

static int try_interactive(struct console_ssh *j, LIBSSH2_SESSION *s,
			   const char *methods)
{
	char prompt[CONSOLE_HOST_MAX + 256], pass[1024];
	int i, rc;

	if (!have_tty())
		return -1;
	for (i = 0; has_method(methods, "keyboard-interactive") && i < TRIES;
	     i++) {
		if (libssh2_userauth_keyboard_interactive_ex(
			s, j->user, (unsigned int)strlen(j->user),
			kbd_callback) == 0)
			return 0;
		if (i + 1 < TRIES)
			fputs("Permission denied, please try again.\n", stderr);
	}
	if (!has_method(methods, "password"))
		return -1;
	snprintf(prompt, sizeof(prompt), "%s@%s's password: ", j->user,
		 j->host);
	for (i = 0; i < TRIES; i++) {
		if (tty_ask(prompt, false, pass, sizeof(pass)) != 0)
			break;
		rc = libssh2_userauth_password_ex(
		    s, j->user, (unsigned int)strlen(j->user), pass,
		    (unsigned int)strlen(pass), NULL);
		tether_wipe(pass, sizeof(pass));
		if (rc == 0)
			return 0;
		if (i + 1 < TRIES)
			fputs("Permission denied, please try again.\n", stderr);
	}
	tether_wipe(pass, sizeof(pass));
	return -1;
}

int console_ssh_auth(struct console_ssh *j, LIBSSH2_SESSION *s)
{
	char methods[512];
	const char *list;

	list = libssh2_userauth_list(s, j->user, (unsigned int)strlen(j->user));
	if (list == NULL) {
		/* "none" was enough, or the server went away. */
		if (libssh2_userauth_authenticated(s))
			return 0;
		console_ssh_error(j, "authentication failed: %s",
				  console_ssh_last_error(s));
		return -1;
	}
	snprintf(methods, sizeof(methods), "%s", list);
	if (has_method(methods, "publickey") &&
	    (try_agent(j, s) == 0 || try_keys(j, s) == 0))
		return 0;
	if (try_interactive(j, s, methods) == 0)
		return 0;
	console_ssh_error(j, "Permission denied (%s)", methods);
	return -1;
}
