/*
 * `tether login HOST:PORT --token TOKEN [--fingerprint SHA256:...]`: decides
 * which certificate to trust (known_relays first, then --fingerprint, else
 * ask the person at the terminal, trust on first use), proves the token with
 * a hello, and only then stores the relay, token and pin.  A relay whose
 * certificate differs from the one pinned for HOST:PORT is refused outright,
 * as ssh refuses a changed host key; the token is never sent to it.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <tether/alloc.h>
#include <tether/crypto.h>

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
 * fp.  0 if the person said yes; -1 (reported) otherwise.
 */
static int ask_trust(const char *relay, const char *fp)
{
	char answer[16];
	FILE *tty;
	int ret = -1;

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

/* Learns the fingerprint the relay presents, without saying hello. */
static int probe_fingerprint(const char *relay, const char *host, int port,
			     char fp[TETHER_TLS_FP_LEN])
{
	struct console_client c;
	int r;

	r = console_client_connect(&c, relay, host, port, NULL, NULL);
	if (r == 0 && !console_fingerprint_valid(c.fingerprint)) {
		console_error("cannot read the certificate of %s", relay);
		r = -1;
	}
	if (r == 0)
		memcpy(fp, c.fingerprint, TETHER_TLS_FP_LEN);
	console_client_close(&c);
	return r;
}

/* Picks the pin for relay; the rules are in the header comment. */
static int choose_pin(const char *relay, const char *host, int port,
		      const char *given, char pin[TETHER_TLS_FP_LEN],
		      bool *known)
{
	char fp[TETHER_TLS_FP_LEN];
	int r;

	r = console_known_lookup(relay, pin, TETHER_TLS_FP_LEN);
	if (r < 0)
		return -1;
	*known = r == 0;
	if (*known) {
		if (given != NULL && strcmp(given, pin) != 0) {
			console_error("relay certificate fingerprint %s does "
				      "not match the pinned %s",
				      given, pin);
			return -1;
		}
		return 0;
	}
	if (given != NULL) {
		snprintf(pin, TETHER_TLS_FP_LEN, "%s", given);
		return 0;
	}
	if (probe_fingerprint(relay, host, port, fp) != 0 ||
	    ask_trust(relay, fp) != 0)
		return -1;
	memcpy(pin, fp, TETHER_TLS_FP_LEN);
	return 0;
}

int console_login(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "token", required_argument, NULL, 't' },
		{ "fingerprint", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char host[CONSOLE_HOST_MAX], relay[CONSOLE_HOSTPORT_MAX];
	char pin[TETHER_TLS_FP_LEN];
	const char *token_arg = NULL, *fp_arg = NULL;
	struct console_client c;
	char *token = NULL;
	bool known = false, connected = false;
	int opt, port, status = CONSOLE_EXIT_FAIL;

	optind = 0;
	while ((opt = getopt_long(argc, argv, ":t:f:h", opts, NULL)) != -1) {
		switch (opt) {
		case 't':
			token_arg = optarg;
			break;
		case 'f':
			fp_arg = optarg;
			break;
		case 'h':
			fputs(login_usage, stdout);
			return 0;
		default:
			return console_bad_option("login", opt, argv);
		}
	}
	if (argc - optind != 1)
		return console_usage_error("login", "expected HOST:PORT");
	if (console_parse_hostport(argv[optind], host, sizeof(host), &port,
				   relay, sizeof(relay)) != 0)
		return console_usage_error("login", "bad relay address %s",
					   argv[optind]);
	if (token_arg == NULL)
		return console_usage_error("login", "--token is required");
	if (fp_arg != NULL && !console_fingerprint_valid(fp_arg))
		return console_usage_error("login",
					   "bad fingerprint (expected "
					   "SHA256: and 43 base64 characters)");

	token = strcmp(token_arg, "-") == 0 ? read_token_stdin()
					     : tether_strdup(token_arg);
	if (token == NULL)
		goto out;
	if (!token_valid(token)) {
		console_error("malformed token");
		goto out;
	}
	if (choose_pin(relay, host, port, fp_arg, pin, &known) != 0)
		goto out;
	connected = true;
	if (console_client_connect(&c, relay, host, port, pin, token) != 0)
		goto out;
	if ((!known && console_known_add(relay, pin) != 0) ||
	    console_config_save(relay, token, pin) != 0)
		goto out;
	printf("Logged in to %s as ", relay);
	console_print_clean(stdout, c.technician);
	printf(" (");
	console_print_clean(stdout, c.role);
	printf(")\n");
	status = 0;
out:
	if (connected)
		console_client_close(&c);
	if (token != NULL)
		tether_freezero(token, strlen(token));
	return status;
}
