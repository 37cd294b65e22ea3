/*
 * `tether login HOST:PORT --token TOKEN [--fingerprint SHA256:...]`: decides
 * which certificate to trust (known_relays first, then --fingerprint, else
 * ask the person at the terminal, trust on first use: the client's probe
 * fetches the certificate without saying a word, and its on_trust asks),
 * makes the technician's Ed25519 key and registers it with a hello that
 * spends the one-time login token, and only then stores the relay, the
 * technician, the key and the pin; the token is not kept.  Without
 * --token, an existing login's key signs in instead (to re-pin a changed
 * certificate with --fingerprint).  A relay whose certificate differs
 * from the one pinned for HOST:PORT is refused outright, as ssh refuses a
 * changed host key; nothing is sent to it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <tether/alloc.h>
#include <tether/crypto.h>
#include <tether/err.h>
#include <tether/sign.h>
#include <tether/text.h>

#include "console.h"

#define TOKEN_MAX 512

static const char login_usage[] =
    "Usage: tether login HOST:PORT --token TOKEN\n"
    "                    [--fingerprint SHA256:...]\n"
    "       tether login HOST:PORT --fingerprint SHA256:...\n"
    "\n"
    "Makes a technician key (technician.key, mode 0600, in\n"
    "$XDG_CONFIG_HOME/tether) and registers it with the relay at\n"
    "HOST:PORT using TOKEN, the one-time login token an admin issued\n"
    "(tether-relay technician add|token NAME); the token is then spent and\n"
    "not stored.  Later commands sign in with the key.  Without\n"
    "--fingerprint the relay's fingerprint is shown and you are asked to\n"
    "trust it (a terminal is needed).  `--token -` reads the token from\n"
    "standard input, keeping it out of the process list.  Without --token,\n"
    "the key of this relay's login signs in and --fingerprint replaces\n"
    "its pin (after a certificate change checked with the operator).\n";

/* Printable ASCII without blanks: what the relay hands out. */
static bool token_valid(const char *t)
{
	size_t i;

	for (i = 0; t[i] != '\0'; i++)
		if (t[i] <= ' ' || t[i] > '~' || i >= TOKEN_MAX)
			return false;
	return i > 0;
}

/* One line of standard input, without its newline; NULL (reported) else. */
static char *read_token_stdin(void)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	char *tok;

	n = getline(&line, &cap, stdin);
	if (n <= 0) {
		console_error("no token on standard input");
		free(line);
		return NULL;
	}
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	tok = tether_strdup(line);
	tether_wipe(line, cap);
	free(line);
	if (tok == NULL)
		console_error("out of memory");
	return tok;
}

/*
 * Asks on the terminal (never stdin, which may be a pipe) whether to trust
 * fp, which the relay presented.  0 if the person said yes; -1 (reported)
 * otherwise.
 */
static int ask_trust(const char *relay, const char *fp)
{
	char answer[16];
	FILE *tty;
	int ret = -1;

	if (!tether_id_fingerprint_valid(fp)) {
		console_error("cannot read the certificate of %s", relay);
		return -1;
	}
	tty = fopen("/dev/tty", "r+e");
	if (tty == NULL) {
		console_error("cannot ask whether to trust relay fingerprint "
			      "%s without a terminal; check it and pass "
			      "--fingerprint",
			      fp);
		return -1;
	}
	fprintf(tty,
		"The relay at %s presents the certificate fingerprint\n"
		"  %s\n"
		"Compare it with the one tether-relay printed.\n"
		"Trust this relay? [y/N] ",
		relay, fp);
	fflush(tty);
	if (fgets(answer, sizeof(answer), tty) != NULL) {
		answer[strcspn(answer, "\r\n")] = '\0';
		if (strcasecmp(answer, "y") == 0 ||
		    strcasecmp(answer, "yes") == 0)
			ret = 0;
	}
	fclose(tty);
	if (ret != 0)
		console_error("relay %s not trusted", relay);
	return ret;
}

/*
 * The pin for relay: --fingerprint (given) if there is one, else the one
 * in known_relays; "" leaves it to the person at the terminal
 * (ask_trust()).  *old: the pin a --fingerprint replaces, or "".  A given
 * fingerprint wins over the pinned one because only a person passes it,
 * after checking a changed certificate out of band (the mismatch message
 * says to); the relay must still present it.  0 or -1.
 */
static int choose_pin(const char *relay, const char *given,
		      char pin[TETHER_TLS_FP_LEN], bool *known,
		      char old[TETHER_TLS_FP_LEN])
{
	int r;

	pin[0] = old[0] = '\0';
	r = console_config_known_lookup(relay, pin, TETHER_TLS_FP_LEN);
	if (r < 0)
		return -1;
	*known = r == 0;
	if (given == NULL || (*known && strcmp(given, pin) == 0))
		return 0;
	if (*known)
		snprintf(old, TETHER_TLS_FP_LEN, "%s", pin);
	snprintf(pin, TETHER_TLS_FP_LEN, "%s", given);
	return 0;
}

struct login_args {
	const char *token;
	const char *fingerprint;
};

static int login_option(void *arg, int opt, char *optarg)
{
	struct login_args *l = arg;

	if (opt == 't')
		l->token = optarg;
	else
		l->fingerprint = optarg;
	return -1;
}

static const struct option login_longs[] = {
    {"token", required_argument, NULL, 't'},
    {"fingerprint", required_argument, NULL, 'f'},
    {NULL, 0, NULL, 0},
};

static const struct console_opts login_opts = {
    .name = "login",
    .usage = login_usage,
    .shorts = "t:f:",
    .longs = login_longs,
    .min = 1,
    .max = 1,
    .need = "expected HOST:PORT",
    .option = login_option,
};

/*
 * The key to sign in with, from the file at path: with fresh a new one
 * made there first.  0, or -1 once reported.
 */
static int key_for(bool fresh, const char *path, struct tether_sign_key **key)
{
	uint8_t pub[TETHER_SIGN_PUB_LEN];
	int r;

	if (fresh && (r = tether_sign_key_generate(path, pub)) != 0) {
		console_error("cannot make a technician key in %s: %s", path,
			      tether_strerror(r));
		return -1;
	}
	r = tether_sign_key_load(path, key, NULL);
	if (r != 0)
		console_error("cannot read the technician key %s: %s", path,
			      tether_strerror(r));
	return r == 0 ? 0 : -1;
}

/* Connects and, only once the relay let the key in, stores it all. */
static int login(const char *relay, const char *host, int port,
		 const char *given, const char *technician, const char *token,
		 const char *replaced)
{
	char pin[TETHER_TLS_FP_LEN], fp[TETHER_TLS_FP_LEN];
	char old[TETHER_TLS_FP_LEN], pending[4096], path[4096];
	struct tether_sign_key *key = NULL;
	struct console_client c;
	bool known = false;
	int status = CONSOLE_EXIT_FAIL;

	memset(&c, 0, sizeof(c));
	pending[0] = '\0';
	/* A new key waits beside the stored one until the relay took it. */
	if (choose_pin(relay, given, pin, &known, old) != 0 ||
	    console_config_key_path(pending, sizeof(pending), true) != 0 ||
	    console_config_key_path(path, sizeof(path), false) != 0 ||
	    key_for(token != NULL, token != NULL ? pending : path, &key) != 0)
		goto out;
	if (console_client_connect(&c, relay, host, port,
				   pin[0] != '\0' ? pin : NULL,
				   given != NULL && (!known || old[0] != '\0'),
				   key, technician, token, ask_trust) != 0)
		goto out;
	/* What it presented: the pin, or what the person trusted. */
	snprintf(fp, sizeof(fp), "%s", tether_client_fingerprint(c.tc));
	if (token != NULL && rename(pending, path) != 0) {
		console_error("cannot rename %s to %s: %s", pending, path,
			      strerror(errno));
		goto out;
	}
	if ((!known && console_config_known_add(relay, fp) != 0) ||
	    (old[0] != '\0' && console_config_known_replace(relay, fp) != 0) ||
	    console_config_save(relay, c.technician, fp) != 0)
		goto out;
	if (old[0] != '\0')
		console_error("the pinned fingerprint for %s was %s; now %s",
			      relay, old, fp);
	if (replaced[0] != '\0')
		console_error("this replaces the login to %s (its key is "
			      "forgotten)",
			      replaced);
	printf("Logged in to %s as ", relay);
	tether_text_print_clean(stdout,
				c.technician[0] != '\0' ? c.technician : "?");
	printf(" (");
	tether_text_print_clean(stdout, c.role[0] != '\0' ? c.role : "?");
	printf(")%s\n", token != NULL ? "; the login token is now spent" : "");
	status = 0;
out:
	console_client_close(&c);
	tether_sign_key_free(key);
	/* A key the relay did not take is nobody's. */
	if (token != NULL && pending[0] != '\0')
		unlink(pending);
	return status;
}

/*
 * What is logged in here already: with a token, a key for this relay is
 * refused (logging in again is a choice: logout first), and one for
 * another relay is replaced (other: "RELAY as NAME", else ""); without
 * a token, this relay's technician, whose key signs in.  0, or an exit
 * status.
 */
static int check_existing(const char *relay, const char *token,
			  char *technician, size_t len, char *other,
			  size_t otherlen)
{
	char have[CONSOLE_HOSTPORT_MAX], tech[TETHER_ID_NAME_MAX + 1];
	bool has_key = false;
	int r;

	technician[0] = other[0] = '\0';
	r = console_config_peek(have, sizeof(have), tech, sizeof(tech),
				&has_key);
	if (r < 0)
		return CONSOLE_EXIT_FAIL;
	if (r == 0 && strcmp(have, relay) != 0 && has_key)
		snprintf(other, otherlen, "%s as %s", have, tech);
	if (r == 0 && strcmp(have, relay) == 0 && has_key) {
		if (token == NULL) {
			snprintf(technician, len, "%s", tech);
			return 0;
		}
		console_error("already logged in to %s as %s with a key of "
			      "this console (tether logout forgets it, then "
			      "tether login %s --token TOKEN registers a new "
			      "one; an admin issues the token with: "
			      "tether-relay technician token %s)",
			      relay, tech, relay, tech);
		return CONSOLE_EXIT_FAIL;
	}
	if (token == NULL)
		return console_usage_error("login",
					   "--token is required: there is no "
					   "key for %s here yet",
					   relay);
	return 0;
}

int console_login(int argc, char **argv)
{
	char host[CONSOLE_HOST_MAX], relay[CONSOLE_HOSTPORT_MAX];
	char tech[TETHER_ID_NAME_MAX + 1];
	char other[CONSOLE_HOSTPORT_MAX + TETHER_ID_NAME_MAX + 8];
	struct login_args l = {NULL, NULL};
	struct console_args a;
	char *token = NULL;
	int port, status;

	status = console_opts_parse(&login_opts, argc, argv, &l, &a);
	if (status >= 0)
		return status;
	if (console_config_parse_relay(a.argv[0], host, sizeof(host), &port,
				       relay, sizeof(relay)) != 0)
		return console_usage_error("login", "bad relay address %s",
					   a.argv[0]);
	if (l.fingerprint != NULL &&
	    !tether_id_fingerprint_valid(l.fingerprint))
		return console_usage_error("login",
					   "bad fingerprint (expected "
					   "SHA256: and 43 base64 characters)");

	status = check_existing(relay, l.token, tech, sizeof(tech), other,
				sizeof(other));
	if (status != 0)
		return status;
	if (l.token == NULL)
		return login(relay, host, port, l.fingerprint, tech, NULL, "");
	status = CONSOLE_EXIT_FAIL;
	token = strcmp(l.token, "-") == 0 ? read_token_stdin()
					  : tether_strdup(l.token);
	if (token == NULL)
		return status;
	if (!token_valid(token))
		console_error("malformed token");
	else
		status =
		    login(relay, host, port, l.fingerprint, NULL, token, other);
	tether_freezero(token, strlen(token));
	return status;
}
