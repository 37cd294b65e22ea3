/*
 * `tether invite T-N [--expires 10m] [--json]`: asks the relay for a
 * nameplate on the ticket, posting pA and the text the customer will be
 * shown ("info", which also enters the confirmation AAD), keeps x and w in
 * the session file, and prints NAMEPLATE-word-word-word alone on stdout.
 * The words exist only on this line and in the customer's hands; the hint
 * on stderr says CODE rather than repeat them.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tether/code.h>
#include <tether/crypto.h>
#include <tether/proto.h>

#include "console.h"

static const char invite_usage[] =
	"Usage: tether invite T-N [--expires DURATION] [--json]\n"
	"\n"
	"Prints a one-time code (7-word-word-word) for the customer, who runs\n"
	"tether-agent join CODE.  DURATION is 90s, 10m, 2h or seconds\n"
	"(default 10m, at most 24h).\n";

/* The ticket's title, which the customer is shown with the request. */
static int fetch_title(struct console_client *c, const char *ticket,
		       char **title)
{
	json_t *ans;
	const char *t;
	int r;

	*title = NULL;
	r = console_request(c, json_pack("{s:s, s:s}", "t", "ticket_show",
					 "ticket", ticket),
			    &ans);
	if (r == CONSOLE_EREMOTE)
		console_report_answer(ans, ticket);
	if (r == 0) {
		t = console_json_str(json_object_get(ans, "ticket"), "title");
		*title = strdup(t != NULL ? t : "");
		if (*title == NULL) {
			console_error("out of memory");
			r = -1;
		}
	}
	json_decref(ans);
	return r == 0 ? 0 : -1;
}

/* Compact JSON text: the agent shows it and both sides MAC it verbatim. */
static char *make_info(const char *technician, const char *ticket,
		       const char *title)
{
	json_t *obj;
	char *text;

	obj = json_pack("{s:s, s:s, s:s, s:[s, s, s, s, s]}", "technician",
			technician, "ticket", ticket, "title", title,
			"capabilities", TETHER_KIND_NAME_EXEC, TETHER_KIND_NAME_SHELL,
			TETHER_KIND_NAME_FILE, TETHER_KIND_NAME_FORWARD,
			TETHER_KIND_NAME_DIAG);
	text = obj != NULL ? json_dumps(obj, JSON_COMPACT) : NULL;
	json_decref(obj);
	if (text == NULL)
		console_error("out of memory");
	return text;
}

/* expires_at as text, whether the relay sent ISO-8601 or Unix seconds. */
static void format_expiry(const json_t *v, char *out, size_t len)
{
	time_t t;
	struct tm tm;

	if (json_is_string(v)) {
		snprintf(out, len, "%s", json_string_value(v));
		return;
	}
	t = (time_t)json_integer_value(v);
	if (!json_is_integer(v) || gmtime_r(&t, &tm) == NULL ||
	    strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, len, "?");
}

static int print_code(const char *ticket, const char *code,
		      const json_t *ans, const struct console_config *cfg,
		      long secs, bool as_json)
{
	char expiry[64];
	json_t *obj;
	int r = 0;

	format_expiry(json_object_get(ans, "expires_at"), expiry,
		      sizeof(expiry));
	if (as_json) {
		obj = json_pack("{s:s, s:s, s:O, s:O, s:s}", "code", code,
				"ticket", ticket, "nameplate",
				json_object_get(ans, "nameplate"), "session",
				json_object_get(ans, "session"), "expires_at",
				expiry);
		if (obj == NULL)
			console_error("out of memory");
		r = obj != NULL ? console_json_print(obj) : -1;
		json_decref(obj);
	} else {
		printf("%s\n", code);
	}
	fflush(stdout);
	fprintf(stderr,
		"Give the customer this code; on their machine they run:\n"
		"  tether-agent join CODE --relay %s --fingerprint %s\n"
		"The code works once and expires at ",
		cfg->relay, cfg->fingerprint);
	console_print_clean(stderr, expiry);
	fprintf(stderr, " (in %ld min %ld s).\n", secs / 60, secs % 60);
	return r;
}

/* Everything after option parsing; the connection is open. */
static int invite(struct console_client *c, const struct console_config *cfg,
		  const char *ticket, long secs, bool as_json)
{
	struct console_pair p;
	char code[TETHER_CODE_MAX];
	char *title = NULL, *info = NULL;
	const char *nameplate;
	json_t *ans = NULL;
	int r, ret = -1;

	memset(&p, 0, sizeof(p));
	if (fetch_title(c, ticket, &title) != 0 ||
	    (info = make_info(c->technician, ticket, title)) == NULL ||
	    console_pair_start(&p) != 0)
		goto out;
	r = console_request(c,
			    json_pack("{s:s, s:s, s:I, s:s, s:s}", "t",
				      "invite", "ticket", ticket, "expires",
				      (json_int_t)secs, "info", info, "pake",
				      p.pake_hex),
			    &ans);
	if (r == CONSOLE_EREMOTE)
		console_report_answer(ans, ticket);
	if (r != 0)
		goto out;
	nameplate = console_json_str(ans, "nameplate");
	if (!tether_code_nameplate_valid(nameplate)) {
		console_error("the relay sent a malformed nameplate");
		goto out;
	}
	if (console_pair_save(json_object_get(ans, "session"), ticket,
			      nameplate, info, &p) != 0)
		goto out;
	r = snprintf(code, sizeof(code), "%s-%s", nameplate, p.password);
	if (r < 0 || (size_t)r >= sizeof(code)) {
		console_error("code too long");
		goto out;
	}
	ret = print_code(ticket, code, ans, cfg, secs, as_json);
out:
	tether_wipe(code, sizeof(code));
	console_pair_wipe(&p);
	json_decref(ans);
	free(info);
	free(title);
	return ret;
}

int console_invite(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "expires", required_argument, NULL, 'e' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char ticket[CONSOLE_TICKET_MAX];
	long secs = TETHER_INVITE_TTL_DEFAULT;
	struct console_config cfg;
	struct console_client c;
	bool as_json = false;
	int opt, status = CONSOLE_EXIT_FAIL;

	optind = 0;
	while ((opt = getopt_long(argc, argv, ":e:jh", opts, NULL)) != -1) {
		switch (opt) {
		case 'e':
			if (console_parse_duration(optarg, &secs) != 0)
				return console_usage_error(
					"invite",
					"bad --expires %s (90s, 10m, 2h or "
					"seconds, at most 24h)",
					optarg);
			break;
		case 'j':
			as_json = true;
			break;
		case 'h':
			fputs(invite_usage, stdout);
			return 0;
		default:
			return console_bad_option("invite", opt, argv);
		}
	}
	if (argc - optind != 1)
		return console_usage_error("invite", "expected one T-N");
	if (console_ticket_arg("invite", argv[optind], ticket, sizeof(ticket)))
		return CONSOLE_EXIT_USAGE;
	if (console_connect(&c, &cfg) == 0 &&
	    invite(&c, &cfg, ticket, secs, as_json) == 0)
		status = 0;
	console_client_close(&c);
	console_config_clear(&cfg);
	return status;
}
