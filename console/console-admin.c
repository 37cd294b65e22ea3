/*
 * `tether technician add|remove|list|role` and `tether enroll-token`: the
 * relay's administration over the network, for admins (the relay refuses
 * others with a reason line).  One request each; --json prints the
 * protocol's objects, the text is for people.  A new technician's login
 * token and an enrolment token are shown once, as tether-relay shows
 * them on the relay host.
 */
#include <string.h>

#include <tether/text.h>

#include "console.h"

static const char technician_usage[] =
    "Usage: tether technician add NAME [--role admin|technician|auditor] "
    "[--json]\n"
    "       tether technician remove NAME [--json]\n"
    "       tether technician list [--json]\n"
    "       tether technician role NAME admin|technician|auditor [--json]\n"
    "\n"
    "Admins only.  add prints the new technician's one-time login token\n"
    "(default role: technician).  remove and a lower role take effect at\n"
    "once: the technician's open channels and sessions they may no longer\n"
    "have are closed, with the reason, within a second.\n";

static const char enroll_usage[] =
    "Usage: tether enroll-token [--ttl DURATION] [--json]\n"
    "\n"
    "Admins only.  Prints a one-time token for tether-agent enroll,\n"
    "valid for DURATION (90s, 15m, 1h, 2d; default 1h, at most 30d).\n";

enum tech_sub { T_ADD, T_REMOVE, T_LIST, T_ROLE, T_SUBS };

static const char *const tech_subs[] = {"add", "remove", "list", "role"};
/* Operands each takes, the subcommand's own word included. */
static const int tech_operands[] = {2, 2, 1, 3};

struct tech_args {
	const char *role;
	struct console_args args;
};

static int tech_option(void *arg, int opt, char *optarg)
{
	struct tech_args *a = arg;

	(void)opt;
	a->role = optarg;
	return -1;
}

static const struct option tech_longs[] = {
    {"role", required_argument, NULL, 'r'},
    {NULL, 0, NULL, 0},
};

static const struct console_opts tech_opts = {
    .name = "technician",
    .usage = technician_usage,
    .shorts = "r:j",
    .longs = tech_longs,
    .flags = CONSOLE_OPTS_JSON,
    .min = 1,
    .max = 3,
    .need = "expected add, remove, list or role (see: tether technician "
	    "--help)",
    .option = tech_option,
};

static int role_word(const char *s, enum tether_tech_role *role)
{
	int r = tether_ctrl_word_of(tech_role, s);

	if (r < 0)
		return console_usage_error("technician",
					   "the role is admin, technician or "
					   "auditor, not '%s'",
					   s);
	*role = (enum tether_tech_role)r;
	return 0;
}

static int print_tech_list(const struct tether_ctrl_tech_list_ok *ok, bool json)
{
	static const char *const heads[] = {"ID", "NAME", "ROLE", "CREATED"};
	struct console_table t;
	json_t *arr;
	char id[24];
	size_t i;
	int r;

	if (json) {
		arr = tether_ctrl_answer_to_json(TETHER_CTRL_TECH_LIST, 1, ok);
		r = console_json_print(json_object_get(arr, "technicians"));
		json_decref(arr);
		return r;
	}
	console_table_init(&t, 4, heads);
	for (i = 0; i < ok->ntechnicians; i++) {
		const struct tether_ctrl_tech_row *v = &ok->technicians[i];

		snprintf(id, sizeof(id), "%lld", (long long)v->id);
		console_table_add(&t, id);
		console_table_add(&t, v->name);
		console_table_add(&t, tether_ctrl_name_of(tech_role, v->role));
		console_table_add_time(&t, v->created_at);
	}
	r = console_table_print(&t, 0, 0);
	console_table_free(&t);
	return r;
}

/* The answer of sub, as --json (the answer's members) or a line. */
static int print_tech(enum tech_sub sub, const struct tech_args *a,
		      const struct tether_ctrl_msg *ans,
		      enum tether_ctrl_type type)
{
	const struct tether_ctrl_tech_ok *ok = &ans->body.tech_ok;
	const struct tether_ctrl_tech_add_ok *add = &ans->body.tech_add_ok;
	const struct tether_ctrl_tech_row *t =
	    sub == T_ADD ? &add->technician : &ok->technician;
	const char *role = tether_ctrl_name_of(tech_role, t->role);
	json_t *v;
	int r;

	if (sub == T_LIST)
		return print_tech_list(&ans->body.tech_list_ok, a->args.json);
	if (a->args.json) {
		v = tether_ctrl_answer_to_json(type, 1, &ans->body);
		/* The envelope ("t", "id") is the protocol's, not the
		 * answer's. */
		json_object_del(v, "t");
		json_object_del(v, "id");
		r = console_json_print(v);
		json_decref(v);
		return r;
	}
	if (sub == T_ADD)
		printf("Token for %s (%s), shown once: %s\n", t->name, role,
		       add->token);
	else if (sub == T_REMOVE)
		printf("Removed %s\n", t->name);
	else if (ok->has_from && ok->from == t->role)
		printf("%s is already %s\n", t->name, role);
	else
		printf("%s is now %s (was %s)\n", t->name, role,
		       tether_ctrl_name_of(tech_role, ok->from));
	return 0;
}

int console_technician(int argc, char **argv)
{
	union {
		struct tether_ctrl_tech_add add;
		struct tether_ctrl_tech_ref ref;
		struct tether_ctrl_tech_role role;
	} body;
	static const enum tether_ctrl_type types[] = {
	    TETHER_CTRL_TECH_ADD, TETHER_CTRL_TECH_REMOVE,
	    TETHER_CTRL_TECH_LIST, TETHER_CTRL_TECH_ROLE};
	struct tether_ctrl_msg ans;
	struct tech_args a;
	int sub, r;

	memset(&a, 0, sizeof(a));
	memset(&body, 0, sizeof(body));
	r = console_opts_parse(&tech_opts, argc, argv, &a, &a.args);
	if (r >= 0)
		return r;
	sub = tether_ctrl_word(tech_subs, T_SUBS, a.args.argv[0]);
	if (sub < 0)
		return console_usage_error(
		    "technician", "unknown subcommand %s", a.args.argv[0]);
	if (a.args.argc != tech_operands[sub])
		return console_usage_error(
		    "technician", "technician %s takes %s", tech_subs[sub],
		    sub == T_LIST   ? "no operand"
		    : sub == T_ROLE ? "NAME and ROLE"
				    : "one NAME");
	if (a.role != NULL && sub != T_ADD)
		return console_usage_error(
		    "technician", "--role is for technician add (use: tether "
				  "technician role NAME ROLE)");
	if (sub != T_LIST && !tether_id_name_valid(a.args.argv[1]))
		return console_usage_error(
		    "technician", "bad name '%s' (letters, digits, -_. only)",
		    a.args.argv[1]);
	body.add.name = sub != T_LIST ? a.args.argv[1] : NULL;
	body.add.role = TETHER_TECH_TECHNICIAN;
	if (sub == T_ADD && a.role != NULL &&
	    role_word(a.role, &body.add.role) != 0)
		return CONSOLE_EXIT_USAGE;
	if (sub == T_ROLE && role_word(a.args.argv[2], &body.role.role) != 0)
		return CONSOLE_EXIT_USAGE;
	if (console_call(types[sub], sub == T_LIST ? NULL : &body, NULL,
			 &ans) != 0)
		return CONSOLE_EXIT_FAIL;
	r = print_tech((enum tech_sub)sub, &a, &ans, types[sub]);
	tether_ctrl_msg_free(&ans);
	return r == 0 ? 0 : CONSOLE_EXIT_FAIL;
}

static int enroll_option(void *arg, int opt, char *optarg)
{
	int64_t *ttl = arg;

	(void)opt;
	if (console_opts_duration(optarg, 30 * 86400, ttl) != 0)
		return console_usage_error("enroll-token",
					   "--ttl wants a duration from 1s to "
					   "30d (90s, 15m, 1h, 2d)");
	return -1;
}

static const struct option enroll_longs[] = {
    {"ttl", required_argument, NULL, 't'},
    {NULL, 0, NULL, 0},
};

static const struct console_opts enroll_opts = {
    .name = "enroll-token",
    .usage = enroll_usage,
    .shorts = "t:j",
    .longs = enroll_longs,
    .flags = CONSOLE_OPTS_JSON,
    .min = 0,
    .max = 0,
    .need = "enroll-token takes no operand",
    .option = enroll_option,
};

int console_enroll_token(int argc, char **argv)
{
	struct tether_ctrl_enroll_token req = {.ttl =
						   TETHER_ENROLL_TTL_DEFAULT};
	const struct tether_ctrl_enroll_token_ok *ok;
	char when[TETHER_CTRL_TIME_LEN];
	struct tether_ctrl_msg ans;
	struct console_args a;
	json_t *v;
	int r;

	r = console_opts_parse(&enroll_opts, argc, argv, &req.ttl, &a);
	if (r >= 0)
		return r;
	if (console_call(TETHER_CTRL_ENROLL_TOKEN, &req, NULL, &ans) != 0)
		return CONSOLE_EXIT_FAIL;
	ok = &ans.body.enroll_token_ok;
	if (a.json) {
		v = tether_ctrl_answer_to_json(TETHER_CTRL_ENROLL_TOKEN, 1, ok);
		json_object_del(v, "t");
		json_object_del(v, "id");
		r = console_json_print(v);
		json_decref(v);
	} else {
		tether_ctrl_time_format(ok->expires_at, when);
		printf("Enrollment token (one use, valid until %s):\n  %s\n"
		       "On the machine to enroll, as root:\n"
		       "  tether-agent enroll --relay HOST:PORT --token %s "
		       "--fingerprint %s\n",
		       when, ok->token, ok->token, ok->fingerprint);
		r = 0;
	}
	tether_ctrl_msg_free(&ans);
	return r == 0 ? 0 : CONSOLE_EXIT_FAIL;
}
