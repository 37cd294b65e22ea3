/*
 * `tether login HOST:PORT --token TOKEN [--fingerprint SHA256:...]`: decides
 * which certificate to trust (known_relays first, then --fingerprint, else
 * ask the person at the terminal, trust on first use: the client's probe
 * fetches the certificate without saying a word, and its on_trust asks),
 * proves the token with a hello, and only then stores the relay, token and
 * pin.  A relay whose certificate differs from the one pinned for
 * HOST:PORT is refused outright, as ssh refuses a changed host key; the
 * token is never sent to it.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <tether/alloc.h>
#include <tether/crypto.h>
#include <tether/text.h>

#include "console.h"

#define TOKEN_MAX 512

static const char login_usage[] =
    "Usage: tether login HOST:PORT --token TOKEN\n"
    "                    [--fingerprint SHA256:...]\n"
    "\n"
    "Checks TOKEN with the relay at HOST:PORT and stores it with the\n"
    "relay's certificate fingerprint in $XDG_CONFIG_HOME/tether.\n"
    "Without --fingerprint the fingerprint is shown and you are asked to\n"
    "trust it (a terminal is needed).  `--token -` reads the token from\n"
    "standard input, keeping it out of the process list.\n";

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

/* Connects with token and, only once it was accepted, stores it all. */
static int login(const char *relay, const char *host, int port,
		 const char *given, const char *token)
{
	char pin[TETHER_TLS_FP_LEN], fp[TETHER_TLS_FP_LEN];
	char old[TETHER_TLS_FP_LEN];
	struct console_client c;
	bool known = false;
	int status = CONSOLE_EXIT_FAIL;

	if (choose_pin(relay, given, pin, &known, old) != 0)
		return status;
	if (console_client_connect(&c, relay, host, port,
				   pin[0] != '\0' ? pin : NULL,
				   given != NULL && (!known || old[0] != '\0'),
				   token, ask_trust) != 0)
		goto out;
	/* What it presented: the pin, or what the person trusted. */
	snprintf(fp, sizeof(fp), "%s", tether_client_fingerprint(c.tc));
	if ((!known && console_config_known_add(relay, fp) != 0) ||
	    (old[0] != '\0' && console_config_known_replace(relay, fp) != 0) ||
	    console_config_save(relay, token, fp) != 0)
		goto out;
	if (old[0] != '\0')
		console_error("the pinned fingerprint for %s was %s; now %s",
			      relay, old, fp);
	printf("Logged in to %s as ", relay);
	tether_text_print_clean(stdout,
				c.technician[0] != '\0' ? c.technician : "?");
	printf(" (");
	tether_text_print_clean(stdout, c.role[0] != '\0' ? c.role : "?");
	printf(")\n");
	status = 0;
out:
	console_client_close(&c);
	return status;
}

int console_login(int argc, char **argv)
{
	char host[CONSOLE_HOST_MAX], relay[CONSOLE_HOSTPORT_MAX];
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
	if (l.token == NULL)
		return console_usage_error("login", "--token is required");
	if (l.fingerprint != NULL &&
	    !tether_id_fingerprint_valid(l.fingerprint))
		return console_usage_error("login",
					   "bad fingerprint (expected "
					   "SHA256: and 43 base64 characters)");

	status = CONSOLE_EXIT_FAIL;
	token = strcmp(l.token, "-") == 0 ? read_token_stdin()
					  : tether_strdup(l.token);
	if (token == NULL)
		return status;
	if (!token_valid(token))
		console_error("malformed token");
	else
		status = login(relay, host, port, l.fingerprint, token);
	tether_freezero(token, strlen(token));
	return status;
}
