/*
 * The console's option prologue (console/console-opts.c): --help and
 * --json, -j only where a command lists it, the T-N operand in its
 * canonical form, operand counts and their usage error, options that end
 * at the first operand, the words after "--", a command's own options,
 * and what a usage error prints (never an option's value).
 */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/redirect.h>

#include "console.h"

/* The options the tests see, and what the command's own option got. */
struct seen {
	int opts;
	int last;
	const char *value;
};

static int own_option(void *arg, int opt, char *optarg)
{
	struct seen *s = arg;

	s->opts++;
	s->last = opt;
	s->value = optarg;
	if (optarg != NULL && strcmp(optarg, "bad") == 0)
		return console_usage_error("demo", "bad value");
	return -1;
}

static const struct option demo_longs[] = {
    {"expires", required_argument, NULL, 'e'},
    {"flag", no_argument, NULL, CONSOLE_OPT_OWN},
    {NULL, 0, NULL, 0},
};

static const struct console_opts demo = {
    .name = "demo",
    .usage = "Usage: tether demo T-N\n",
    .shorts = "e:j",
    .longs = demo_longs,
    .flags = CONSOLE_OPTS_JSON | CONSOLE_OPTS_TICKET,
    .min = 1,
    .max = 2,
    .need = "expected T-N [X]",
    .option = own_option,
};

/*
 * Parses the NULL-terminated words (argv[0] first) with o; *a points into
 * them, so the words are arrays of the test's own (W()).
 */
#define W(...) ((char *[]){__VA_ARGS__, NULL})

static int parse_words(const struct console_opts *o, struct seen *s,
		       struct console_args *a, char **words)
{
	int n = 0;

	while (words[n] != NULL)
		n++;
	memset(s, 0, sizeof(*s));
	return console_opts_parse(o, n, words, s, a);
}

/* What the test wrote on standard error so far. */
static void stderr_is(const char *want)
{
	fflush(stderr);
	cr_assert_stderr_eq_str(want);
}

TestSuite(console_opts, .init = cr_redirect_stderr);

Test(console_opts, ticket_json_and_own_options)
{
	char **w1 = W("demo", "--json", "t-12", "-e", "10m", "x");
	char **w2 = W("demo", "7", "-j", "--flag");
	struct console_args a;
	struct seen s;

	cr_assert_eq(parse_words(&demo, &s, &a, w1), -1);
	cr_assert(a.json);
	cr_assert_eq(a.ticket, 12);
	cr_assert_str_eq(a.ticket_name, "T-12");
	cr_assert_eq(a.argc, 1);
	cr_assert_str_eq(a.argv[0], "x");
	cr_assert_eq(s.opts, 1);
	cr_assert_eq(s.last, 'e');
	cr_assert_str_eq(s.value, "10m");
	cr_assert_not(a.has_rest);
	/* A bare N is a ticket too, and -j means --json here. */
	cr_assert_eq(parse_words(&demo, &s, &a, w2), -1);
	cr_assert_eq(a.ticket, 7);
	cr_assert_str_eq(a.ticket_name, "T-7");
	cr_assert(a.json);
	cr_assert_eq(s.last, CONSOLE_OPT_OWN);
	cr_assert_eq(a.argc, 0);
	stderr_is("");
}

Test(console_opts, help_goes_to_stdout_and_exits_0)
{
	char **w1 = W("demo", "-h");
	char **w2 = W("demo", "T-1", "--help");
	struct console_args a;
	struct seen s;

	cr_redirect_stdout();
	cr_assert_eq(parse_words(&demo, &s, &a, w1), 0);
	cr_assert_eq(parse_words(&demo, &s, &a, w2), 0);
	fflush(stdout);
	cr_assert_stdout_eq_str("Usage: tether demo T-N\n"
				"Usage: tether demo T-N\n");
}

Test(console_opts, operand_count_before_the_ticket)
{
	char **w1 = W("demo", "nope", "a", "b");
	char **w2 = W("demo");
	struct console_args a;
	struct seen s;

	cr_assert_eq(parse_words(&demo, &s, &a, w1), CONSOLE_EXIT_USAGE);
	cr_assert_eq(parse_words(&demo, &s, &a, w2), CONSOLE_EXIT_USAGE);
	stderr_is("tether: expected T-N [X] (see: tether demo --help)\n"
		  "tether: expected T-N [X] (see: tether demo --help)\n");
}

Test(console_opts, bad_tickets)
{
	char **w1 = W("demo", "T-007");
	char **w2 = W("demo", "T-+5");
	char **w3 = W("demo", "T-99999999999999999999");
	struct console_args a;
	struct seen s;

	cr_assert_eq(parse_words(&demo, &s, &a, w1), CONSOLE_EXIT_USAGE);
	cr_assert_eq(parse_words(&demo, &s, &a, w2), CONSOLE_EXIT_USAGE);
	cr_assert_eq(parse_words(&demo, &s, &a, w3), CONSOLE_EXIT_USAGE);
	stderr_is("tether: bad ticket T-007 (expected T-N) (see: tether demo "
		  "--help)\n"
		  "tether: bad ticket T-+5 (expected T-N) (see: tether demo "
		  "--help)\n"
		  "tether: bad ticket T-99999999999999999999 (expected T-N) "
		  "(see: tether demo --help)\n");
}

Test(console_opts, usage_errors_do_not_echo_values)
{
	char **w1 = W("demo", "--token=SECRET", "T-1");
	char **w2 = W("demo", "T-1", "-e");
	char **w3 = W("demo", "-e", "bad", "T-1");
	struct console_args a;
	struct seen s;

	cr_assert_eq(parse_words(&demo, &s, &a, w1), CONSOLE_EXIT_USAGE);
	cr_assert_eq(parse_words(&demo, &s, &a, w2), CONSOLE_EXIT_USAGE);
	cr_assert_eq(parse_words(&demo, &s, &a, w3), CONSOLE_EXIT_USAGE);
	stderr_is("tether: unknown option --token (see: tether demo --help)\n"
		  "tether: option -e needs a value (see: tether demo --help)\n"
		  "tether: bad value (see: tether demo --help)\n");
}

Test(console_opts, j_only_where_listed)
{
	static const struct console_opts put = {
	    .name = "put",
	    .usage = "",
	    .shorts = "rq",
	    .flags = CONSOLE_OPTS_JSON,
	    .max = -1,
	};
	char **w1 = W("put", "--json", "x");
	char **w2 = W("put", "-j", "x");
	struct console_args a;
	struct seen s;

	cr_assert_eq(parse_words(&put, &s, &a, w1), -1);
	cr_assert(a.json);
	cr_assert_eq(parse_words(&put, &s, &a, w2), CONSOLE_EXIT_USAGE);
	stderr_is("tether: unknown option -j (see: tether put --help)\n");
}

Test(console_opts, in_order_stops_at_the_ticket_and_skips_dashdash)
{
	static const struct console_opts exec = {
	    .name = "exec",
	    .usage = "",
	    .flags = CONSOLE_OPTS_TICKET | CONSOLE_OPTS_IN_ORDER,
	    .min = 1,
	    .max = -1,
	    .need = "expected T-N -- CMD",
	};
	char **w1 = W("exec", "T-3", "--", "ls", "-l");
	char **w2 = W("exec", "T-3", "uname", "-a");
	char **w3 = W("exec", "--", "T-3");
	struct console_args a;
	struct seen s;

	cr_assert_eq(parse_words(&exec, &s, &a, w1), -1);
	cr_assert_eq(a.argc, 2);
	cr_assert_str_eq(a.argv[0], "ls");
	cr_assert_str_eq(a.argv[1], "-l");
	/* Without "--" the command's options are still not ours. */
	cr_assert_eq(parse_words(&exec, &s, &a, w2), -1);
	cr_assert_eq(a.argc, 2);
	cr_assert_str_eq(a.argv[1], "-a");
	cr_assert_eq(parse_words(&exec, &s, &a, w3), -1);
	cr_assert_eq(a.argc, 0);
	stderr_is("");
}

Test(console_opts, rest_after_dashdash)
{
	static const struct console_opts ssh = {
	    .name = "ssh",
	    .usage = "",
	    .shorts = "i:",
	    .flags = CONSOLE_OPTS_TICKET | CONSOLE_OPTS_REST,
	    .min = 1,
	    .max = 2,
	    .need = "expected T-N [USER@][HOST][:PORT] [-- COMMAND...]",
	    .option = own_option,
	};
	char **w1 = W("ssh", "T-2", "-i", "k", "--", "ls", "-i");
	char **w2 = W("ssh", "T-2", "host", "--");
	struct console_args a;
	struct seen s;

	cr_assert_eq(parse_words(&ssh, &s, &a, w1), -1);
	cr_assert_eq(s.opts, 1, "-i after -- is the command's");
	cr_assert_eq(a.argc, 0);
	cr_assert(a.has_rest);
	cr_assert_eq(a.rest_argc, 2);
	cr_assert_str_eq(a.rest_argv[0], "ls");
	cr_assert_str_eq(a.rest_argv[1], "-i");
	cr_assert_eq(parse_words(&ssh, &s, &a, w2), -1);
	cr_assert(a.has_rest);
	cr_assert_eq(a.rest_argc, 0);
	cr_assert_str_eq(a.argv[0], "host");
	stderr_is("");
}

Test(console_opts, numbers)
{
	uint64_t v = 42;

	cr_assert_eq(console_opts_number("22", 1, 65535, &v), 0);
	cr_assert_eq(v, 22);
	cr_assert_eq(console_opts_number("0022", 1, 65535, &v), 0);
	cr_assert_eq(v, 22);
	cr_assert_eq(console_opts_number("0", 1, 65535, &v), -1);
	cr_assert_eq(console_opts_number("65536", 1, 65535, &v), -1);
	cr_assert_eq(console_opts_number("+22", 1, 65535, &v), -1);
	cr_assert_eq(console_opts_number(" 22", 1, 65535, &v), -1);
	cr_assert_eq(console_opts_number("22x", 1, 65535, &v), -1);
	cr_assert_eq(console_opts_number("", 1, 65535, &v), -1);
	cr_assert_eq(
	    console_opts_number("99999999999999999999999", 0, UINT64_MAX, &v),
	    -1);
	cr_assert_eq(v, 22, "a failed parse writes nothing");
}

/* Durations of --expires and --ttl: a unit or seconds, within a bound. */
Test(console_opts, durations)
{
	int64_t s = 0;

	cr_assert_eq(console_opts_duration("90s", 3600, &s), 0);
	cr_assert_eq(s, 90);
	cr_assert_eq(console_opts_duration("10m", 3600, &s), 0);
	cr_assert_eq(s, 600);
	cr_assert_eq(console_opts_duration("2h", 86400, &s), 0);
	cr_assert_eq(s, 7200);
	cr_assert_eq(console_opts_duration("2d", 30 * 86400, &s), 0);
	cr_assert_eq(s, 172800);
	cr_assert_eq(console_opts_duration("45", 3600, &s), 0);
	cr_assert_eq(s, 45);
	cr_assert_eq(console_opts_duration("2h", 3600, &s), -1);
	cr_assert_eq(console_opts_duration("0", 3600, &s), -1);
	cr_assert_eq(console_opts_duration("m", 3600, &s), -1);
	cr_assert_eq(console_opts_duration("5x", 3600, &s), -1);
	cr_assert_eq(console_opts_duration("", 3600, &s), -1);
	cr_assert_eq(console_opts_duration(NULL, 3600, &s), -1);
}
