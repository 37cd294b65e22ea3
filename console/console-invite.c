/*
 * `tether invite T-N [--expires 10m] [--json]`: asks the relay for a
 * nameplate on the ticket, posting pA and the text the customer will be
 * shown ("info", which also enters the confirmation AAD), keeps x and w in
 * the session file, and prints NAMEPLATE-word-word-word alone on stdout.
 * The words exist only on this line and in the customer's hands; the hint
 * on stderr says CODE rather than repeat them.
 */
#include <string.h>
#include <time.h>

#include <tether/alloc.h>
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

/* The ticket's title, which the customer is shown: *title to free. */
static int fetch_title(struct console_client *c, int64_t ticket,
		       const char *name, char **title)
{
	/* The title alone is wanted: the smallest page of the audit. */
	const struct tether_ctrl_ticket_show req = {.ticket = ticket,
						    .limit = 1};
	struct tether_ctrl_msg ans;
	int r;

	*title = NULL;
	r = console_client_call(c, TETHER_CTRL_TICKET_SHOW, &req, &ans);
	if (r == CONSOLE_EREMOTE)
		console_client_report_err(&ans.body.err, name);
	if (r == 0) {
		*title = tether_strdup(ans.body.ticket_ok.ticket.title);
		if (*title == NULL) {
			console_error("out of memory");
			r = -1;
		}
	}
	tether_ctrl_msg_free(&ans);
	return r == 0 ? 0 : -1;
}

/* The longest prefix of s within max bytes that ends on a character. */
static size_t utf8_cut(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n <= max)
		return n;
	for (n = max; n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80; n--)
		;
	return n;
}

/*
 * What the customer is shown, as compact JSON text: the agent shows it
 * and both sides MAC it verbatim.  NULL once reported.
 */
static char *make_info(const char *technician, const char *ticket, char *title)
{
	const struct tether_ctrl_info info = {
	    .technician = technician[0] != '\0' ? technician : NULL,
	    .ticket = ticket,
	    .title = title,
	    .capabilities = tether_ctrl_kind_words,
	    .ncapabilities = tether_ctrl_kind_nwords,
	};
	char *text = NULL;

	/* A health ticket's title may be longer than an info carries. */
	title[utf8_cut(title, TETHER_CTRL_TITLE_MAX)] = '\0';
	if (tether_ctrl_part_encode(TETHER_CTRL_PART_INFO, &info, &text,
				    NULL) != 0)
		console_error("cannot describe the request to the customer");
	return text;
}

/* The answer as JSON, with the code and the ticket in front. */
static int print_json(const char *code, const char *ticket,
		      const struct tether_ctrl_invite_ok *ok)
{
	json_t *ans = tether_ctrl_answer_to_json(TETHER_CTRL_INVITE, 1, ok);
	json_t *obj = json_pack("{s:s, s:s}", "code", code, "ticket", ticket);
	int r = -1;

	if (ans != NULL && obj != NULL && json_object_del(ans, "t") == 0 &&
	    json_object_del(ans, "id") == 0 &&
	    json_object_update(obj, ans) == 0)
		r = console_json_print(obj);
	else
		console_error("out of memory");
	json_decref(ans);
	json_decref(obj);
	return r;
}

/*
 * The ticket's previous code was burned (a join with its nameplate and
 * other words, or one abandoned): the technician learns why it stopped
 * working, and that the new code replaces it.
 */
static void print_burned(const struct tether_ctrl_burned *b)
{
	char when[16] = "";
	time_t t = (time_t)b->at;
	struct tm tm;

	if (b->at != 0 && localtime_r(&t, &tm) != NULL &&
	    strftime(when, sizeof(when), " at %H:%M", &tm) == 0)
		when[0] = '\0';
	if (b->reason != NULL && strcmp(b->reason, "wrong code") == 0)
		fprintf(stderr,
			"note: the previous code %s-... was burned by a wrong "
			"entry%s\n",
			b->nameplate, when);
	else
		fprintf(stderr,
			"note: the previous code %s-... was burned%s (%s)\n",
			b->nameplate, when,
			b->reason != NULL ? b->reason : "reason not known");
}

static int print_code(const char *ticket, const char *code,
		      const struct tether_ctrl_invite_ok *ok,
		      const struct console_config *cfg, int64_t secs,
		      bool as_json)
{
	char expiry[TETHER_CTRL_TIME_LEN];
	int r = 0;

	if (tether_ctrl_time_format(ok->expires_at, expiry) != 0)
		snprintf(expiry, sizeof(expiry), "?");
	if (as_json)
		r = print_json(code, ticket, ok);
	else
		printf("%s\n", code);
	fflush(stdout);
	if (ok->has_burned)
		print_burned(&ok->burned);
	fprintf(stderr,
		"Give the customer this code; on their machine they run:\n"
		"  tether-agent join CODE --relay %s --fingerprint %s\n"
		"The code works once and expires at %s (in %lld min %lld s).\n",
		cfg->relay, cfg->fingerprint, expiry, (long long)(secs / 60),
		(long long)(secs % 60));
	return r;
}

/* Everything after option parsing; the connection is open. */
static int invite(struct console_client *c, const struct console_args *a,
		  int64_t secs)
{
	struct tether_ctrl_invite req = {.ticket = a->ticket, .expires = secs};
	const struct tether_ctrl_invite_ok *ok;
	struct tether_ctrl_msg ans;
	struct console_pair p;
	char code[TETHER_CODE_MAX];
	char *title = NULL, *info = NULL;
	int r, ret = -1;

	memset(&p, 0, sizeof(p));
	memset(&ans, 0, sizeof(ans));
	if (fetch_title(c, a->ticket, a->ticket_name, &title) != 0 ||
	    (info = make_info(c->technician, a->ticket_name, title)) == NULL ||
	    console_pair_start(&p) != 0)
		goto out;
	req.info = info;
	memcpy(req.pake, p.pa, sizeof(req.pake));
	r = console_client_call(c, TETHER_CTRL_INVITE, &req, &ans);
	if (r == CONSOLE_EREMOTE)
		console_client_report_err(&ans.body.err, a->ticket_name);
	if (r != 0)
		goto out;
	ok = &ans.body.invite_ok;
	if (console_pair_save(ok->session, a->ticket_name, ok->nameplate, info,
			      &p) != 0)
		goto out;
	r = snprintf(code, sizeof(code), "%s-%s", ok->nameplate, p.password);
	if (r < 0 || (size_t)r >= sizeof(code)) {
		console_error("code too long");
		goto out;
	}
	ret = print_code(a->ticket_name, code, ok, &c->cfg, secs, a->json);
out:
	tether_wipe(code, sizeof(code));
	console_pair_wipe(&p);
	tether_ctrl_msg_free(&ans);
	tether_free(info);
	tether_free(title);
	return ret;
}

static int invite_option(void *arg, int opt, char *optarg)
{
	(void)opt;
	if (console_opts_duration(optarg, TETHER_INVITE_TTL_MAX, arg) != 0)
		return console_usage_error("invite",
					   "bad --expires %s (90s, 10m, 2h or "
					   "seconds, at most 24h)",
					   optarg);
	return -1;
}

static const struct option invite_longs[] = {
    {"expires", required_argument, NULL, 'e'},
    {NULL, 0, NULL, 0},
};

static const struct console_opts invite_opts = {
    .name = "invite",
    .usage = invite_usage,
    .shorts = "e:j",
    .longs = invite_longs,
    .flags = CONSOLE_OPTS_JSON | CONSOLE_OPTS_TICKET,
    .min = 1,
    .max = 1,
    .need = "expected one T-N",
    .option = invite_option,
};

int console_invite(int argc, char **argv)
{
	int64_t secs = TETHER_INVITE_TTL_DEFAULT;
	struct console_client c;
	struct console_args a;
	int status = CONSOLE_EXIT_FAIL;

	status = console_opts_parse(&invite_opts, argc, argv, &secs, &a);
	if (status >= 0)
		return status;
	status = CONSOLE_EXIT_FAIL;
	if (console_client_open(&c) == 0 && invite(&c, &a, secs) == 0)
		status = 0;
	console_client_close(&c);
	return status;
}
