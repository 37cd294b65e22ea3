/*
 * The health-check engine: ranges, perfdata, command splitting, the
 * SOFT/HARD state machine, config files, every built-in against this
 * machine, and real Debian monitoring plugins run on a libuv loop.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <tether/alloc.h>
#include <tether/err.h>
#include <tether/num.h>

#include <tether/ctrl.h>

#include "../require.h"
#include "service/builtin.h"
#include "service/check.h"
#include "service/config.h"
#include "service/plugin.h"
#include "service/range.h"

#define PLUGINS "/usr/lib/nagios/plugins"

static char tmpdir[256];

static void make_tmpdir(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_check.XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
	char cmd[400];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	cr_expect_eq(system(cmd), 0);
}

/* Writes text to tmpdir/name; returns the path (static). */
static const char *write_file(const char *name, const char *text, int mode)
{
	static char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	cr_assert_eq(fclose(f), 0);
	cr_assert_eq(chmod(path, (mode_t)mode), 0);
	return path;
}

static double now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- ranges ---- */

static bool alert(const char *range, double v)
{
	struct agent_range r;

	cr_assert_eq(agent_range_parse(range, &r), 0, "range %s", range);
	cr_assert_str_eq(r.text, range);
	return agent_range_alert(&r, v);
}

Test(check, range_plain_is_zero_to_n)
{
	cr_expect(alert("10", -0.5));
	cr_expect(alert("10", 10.5));
	cr_expect_not(alert("10", 0));
	cr_expect_not(alert("10", 10));
	cr_expect_not(alert("10", 5));
}

Test(check, range_open_ended)
{
	cr_expect(alert("10:", 9.99));
	cr_expect_not(alert("10:", 10));
	cr_expect_not(alert("10:", 1e12));
	cr_expect(alert("~:10", 10.01));
	cr_expect_not(alert("~:10", -1e12));
	cr_expect_not(alert("~:10", 10));
}

Test(check, range_outside_and_inside)
{
	cr_expect(alert("10:20", 9));
	cr_expect(alert("10:20", 21));
	cr_expect_not(alert("10:20", 10));
	cr_expect_not(alert("10:20", 15));
	cr_expect_not(alert("10:20", 20));
	cr_expect(alert("@10:20", 10));
	cr_expect(alert("@10:20", 15));
	cr_expect(alert("@10:20", 20));
	cr_expect_not(alert("@10:20", 9.9));
	cr_expect_not(alert("@10:20", 20.1));
	cr_expect(alert("-5:-1", 0));
	cr_expect(alert("1.5e1", 16));
	cr_expect(alert("30:", 9));
	cr_expect_not(alert("7:", 9));
}

Test(check, range_bad_ones_rejected)
{
	static const char *const bad[] = {
	    "",
	    "abc",
	    "10:5",
	    "1:2:3",
	    ":10",
	    "@",
	    "~",
	    "10x",
	    "inf",
	    "nan",
	    "0x10",
	    "10 ",
	    " 10",
	    "@@1",
	    "~:",
	    "1:~",
	    "-",
	    "1e",
	    ".",
	    "1..2",
	    "12345678901234567890123456789012345678901234567890123456789012345",
	};
	struct agent_range r;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = agent_range_parse(bad[i], &r);

		/* "~:" is everything: a range, which never alerts. */
		if (strcmp(bad[i], "~:") == 0) {
			cr_expect_eq(rc, 0);
			cr_expect_not(agent_range_alert(&r, 1e300));
			continue;
		}
		cr_expect_eq(rc, TETHER_ERR_FORMAT, "'%s': %s", bad[i],
			     tether_strerror(rc));
		cr_expect_not(r.set);
	}
}

/* ---- perfdata ---- */

/* Parsed perfdata as the check message carries it. */
static json_t *perf(const char *text)
{
	struct agent_perfdata p;
	struct tether_ctrl_perfdata part;
	json_t *a;

	cr_assert_eq(agent_perfdata_parse(text, &p), 0);
	part.perfdata = p.v;
	part.nperfdata = p.n;
	a = tether_ctrl_part_to_json(TETHER_CTRL_PART_PERFDATA, &part);
	agent_perfdata_free(&p);
	cr_assert_not_null(a);
	cr_assert(json_is_array(a));
	return a;
}

static void expect_num(const json_t *e, const char *key, double v)
{
	const json_t *x = json_object_get(e, key);

	cr_assert(json_is_number(x), "%s is not a number", key);
	cr_expect_float_eq(json_number_value(x), v, 1e-9, "%s", key);
}

static void expect_null(const json_t *e, const char *key)
{
	cr_expect(json_is_null(json_object_get(e, key)), "%s is not null", key);
}

static const char *str(const json_t *e, const char *key)
{
	const char *s = json_string_value(json_object_get(e, key));

	cr_assert_not_null(s, "%s is not a string", key);
	return s;
}

Test(check, perfdata_guideline_examples)
{
	json_t *a =
	    perf("time=0.002722s;;;0.000000 size=4072B;;;0 "
		 "load1=0.000;5.000;10.000;0; 'used %'=42%;80;90;0;100");
	json_t *e;

	cr_assert_eq(json_array_size(a), 4);
	e = json_array_get(a, 0);
	cr_expect_str_eq(str(e, "label"), "time");
	expect_num(e, "value", 0.002722);
	cr_expect_str_eq(str(e, "uom"), "s");
	expect_null(e, "warn");
	expect_null(e, "crit");
	expect_num(e, "min", 0);
	expect_null(e, "max");
	e = json_array_get(a, 1);
	expect_num(e, "value", 4072);
	cr_expect_str_eq(str(e, "uom"), "B");
	e = json_array_get(a, 2);
	cr_expect_str_eq(str(e, "warn"), "5.000");
	cr_expect_str_eq(str(e, "crit"), "10.000");
	cr_expect_str_eq(str(e, "uom"), "");
	e = json_array_get(a, 3);
	cr_expect_str_eq(str(e, "label"), "used %");
	cr_expect_str_eq(str(e, "uom"), "%");
	expect_num(e, "max", 100);
	json_decref(a);
}

Test(check, perfdata_quoted_labels_and_ranges)
{
	json_t *a = perf("'/ used'=12MB;80:;@90:95;0;100 'it''s'=1c "
			 "a=U;1;2 z=-1.5e3ms us=3us kb=1KB tb=2TB odd=7foo");
	json_t *e;

	cr_assert_eq(json_array_size(a), 8);
	e = json_array_get(a, 0);
	cr_expect_str_eq(str(e, "label"), "/ used");
	cr_expect_str_eq(str(e, "uom"), "MB");
	cr_expect_str_eq(str(e, "warn"), "80:");
	cr_expect_str_eq(str(e, "crit"), "@90:95");
	e = json_array_get(a, 1);
	cr_expect_str_eq(str(e, "label"), "it's");
	cr_expect_str_eq(str(e, "uom"), "c");
	e = json_array_get(a, 2);
	expect_null(e, "value");
	e = json_array_get(a, 3);
	expect_num(e, "value", -1500);
	cr_expect_str_eq(str(e, "uom"), "ms");
	/* Units outside the guideline's list are kept, not refused. */
	cr_expect_str_eq(str(json_array_get(a, 7), "uom"), "foo");
	json_decref(a);
}

Test(check, perfdata_missing_fields_and_garbage)
{
	json_t *a = perf("  x=1 =5 noequals y=abc 'unquoted=5 ");
	json_t *b = perf("ok=1;;;; bad=1;x;y;z;w c=2;;");
	char junk[4096];
	size_t i;

	cr_assert_eq(json_array_size(a), 1);
	cr_expect_str_eq(str(json_array_get(a, 0), "label"), "x");
	json_decref(a);
	cr_assert_eq(json_array_size(b), 3);
	expect_null(json_array_get(b, 1), "warn");
	expect_null(json_array_get(b, 1), "min");
	expect_num(json_array_get(b, 2), "value", 2);
	json_decref(b);
	/* Random bytes: never a crash, whatever comes out is an array. */
	srand(7);
	for (i = 0; i + 1 < sizeof(junk); i++)
		junk[i] = (char)(rand() % 255 + 1);
	junk[sizeof(junk) - 1] = '\0';
	json_decref(perf(junk));
	json_decref(perf("''=1 '=1 ''''=2 =;;;; ;;;; ''"));
}

/* ---- commands and plugin output ---- */

Test(check, command_split_quotes)
{
	char **argv;
	const char *why;

	cr_assert_eq(agent_command_split("  /bin/echo a 'b c' \"d \\\"e\\\"\" "
					 "f\\ g 'it'\"'\"'s' \"x\\n\" ''",
					 &argv, &why),
		     0);
	cr_assert_str_eq(argv[0], "/bin/echo");
	cr_expect_str_eq(argv[1], "a");
	cr_expect_str_eq(argv[2], "b c");
	cr_expect_str_eq(argv[3], "d \"e\"");
	cr_expect_str_eq(argv[4], "f g");
	cr_expect_str_eq(argv[5], "it's");
	cr_expect_str_eq(argv[6], "x\\n");
	cr_expect_str_eq(argv[7], "");
	cr_expect_null(argv[8]);
	agent_argv_free(argv);
}

/* Each refusal has its own code and words (the config error shows them). */
static void split_refused(const char *text, int err, const char *want)
{
	char **argv;
	const char *why;
	int r;

	r = agent_command_split(text, &argv, &why);
	cr_expect_eq(r, err, "'%.40s': %s", text, tether_strerror(r));
	cr_expect_null(argv);
	cr_expect(why != NULL && strcmp(why, want) == 0,
		  "'%.40s': reason \"%s\", want \"%s\"", text,
		  why ? why : "(none)", want);
}

Test(check, command_split_errors)
{
	/* 4096 bytes in one word, and 65 words, are over the limits. */
	char *long_word = tether_malloc(4097 + 8);
	char *many = tether_malloc(65 * 2 + 1);

	cr_assert(long_word && many);
	memcpy(long_word, "/bin/x ", 7);
	memset(long_word + 7, 'a', 4096);
	long_word[7 + 4096] = '\0';
	for (int i = 0; i < 65; i++)
		memcpy(many + 2 * i, "a ", 2);
	many[65 * 2] = '\0';
	split_refused("", TETHER_ERR_FORMAT, "empty command");
	split_refused("   ", TETHER_ERR_FORMAT, "empty command");
	split_refused("/bin/x 'open", TETHER_ERR_FORMAT, "unterminated '");
	split_refused("/bin/x \"open", TETHER_ERR_FORMAT, "unterminated \"");
	split_refused("/bin/x \\", TETHER_ERR_FORMAT, "backslash at the end");
	split_refused(long_word, TETHER_ERR_TOO_LARGE, "word too long");
	split_refused(many, TETHER_ERR_LIMIT, "too many arguments");
	tether_free(long_word);
	tether_free(many);
}

Test(check, plugin_output_multiline_perfdata)
{
	static const char out[] = "DISK OK - free space | a=1 b=2\r\n"
				  "long text 1\n"
				  "long text 2 | c=3\n"
				  "d=4;5;6\n";
	struct agent_check_result res;
	json_t *a;

	memset(&res, 0, sizeof(res));
	cr_assert_eq(agent_plugin_parse_output(out, sizeof(out) - 1, &res), 0);
	cr_expect_str_eq(res.output, "DISK OK - free space");
	cr_assert_not_null(res.perf);
	a = perf(res.perf);
	cr_expect_eq(json_array_size(a), 4);
	cr_expect_str_eq(str(json_array_get(a, 3), "label"), "d");
	json_decref(a);
	tether_free(res.perf);

	memset(&res, 0, sizeof(res));
	cr_assert_eq(agent_plugin_parse_output("no newline", 10, &res), 0);
	cr_expect_str_eq(res.output, "no newline");
	cr_expect_null(res.perf);
}

/* ---- state machine ---- */

struct step {
	enum tether_check_state in;
	enum tether_check_state state;
	bool hard;
	unsigned attempt;
};

static void walk(unsigned max, const struct step *steps, size_t n)
{
	struct agent_check_status s;
	size_t i;

	memset(&s, 0, sizeof(s));
	for (i = 0; i < n; i++) {
		agent_check_advance(&s, steps[i].in, max);
		cr_expect_eq(s.state, steps[i].state, "step %zu state", i);
		cr_expect_eq(s.hard, steps[i].hard, "step %zu hard", i);
		cr_expect_eq(s.attempt, steps[i].attempt, "step %zu attempt",
			     i);
	}
}

#define OK TETHER_CHECK_OK
#define WARN TETHER_CHECK_WARNING
#define CRIT TETHER_CHECK_CRITICAL
#define UNKN TETHER_CHECK_UNKNOWN

Test(check, state_soft_then_hard_then_recovery)
{
	static const struct step s[] = {
	    {OK, OK, true, 1},	    {OK, OK, true, 1},
	    {CRIT, CRIT, false, 1}, {CRIT, CRIT, false, 2},
	    {WARN, WARN, true, 3},  {CRIT, CRIT, true, 3},
	    {UNKN, UNKN, true, 3},  {OK, OK, true, 1},
	    {OK, OK, true, 1},
	};

	walk(3, s, sizeof(s) / sizeof(s[0]));
}

Test(check, state_soft_recovery)
{
	static const struct step s[] = {
	    {WARN, WARN, false, 1}, {OK, OK, false, 1},	    {OK, OK, true, 1},
	    {CRIT, CRIT, false, 1}, {CRIT, CRIT, false, 2}, {OK, OK, false, 1},
	    {CRIT, CRIT, false, 1},
	};

	walk(3, s, sizeof(s) / sizeof(s[0]));
}

Test(check, state_one_retry_is_hard_at_once)
{
	static const struct step s[] = {
	    {CRIT, CRIT, true, 1}, {WARN, WARN, true, 1}, {OK, OK, true, 1},
	    {UNKN, UNKN, true, 1}, {OK, OK, true, 1},
	};

	walk(1, s, sizeof(s) / sizeof(s[0]));
}

Test(check, state_names)
{
	cr_expect_str_eq(tether_ctrl_name_of(check_state, TETHER_CHECK_WARNING),
			 "WARNING");
	cr_expect_eq(tether_ctrl_word_of(check_state, "CRITICAL"), 2);
	cr_expect_eq(tether_ctrl_word_of(check_state, "nope"), -1);
}

/* ---- config files ---- */

/* Loads text and builds its checks; the error, or "" when it loads. */
static const char *conf_error(const char *text)
{
	static char err[1024];
	struct agent_config c;
	struct agent_checks *cs = NULL;
	const char *path = write_file("agent.conf", text, 0600);
	int r;

	err[0] = 'x';
	r = agent_config_load(path, &c, err, sizeof(err));
	if (r != 0) {
		cr_expect_neq(err[0], '\0');
		return err;
	}
	r = agent_checks_new(NULL, &c, NULL, NULL, true, &cs, err, sizeof(err));
	if (r == 0) {
		cr_expect_eq(err[0], '\0');
		agent_checks_free(cs);
	}
	agent_config_free(&c);
	return err;
}

/* err must be "tmpdir/agent.conf:LINE: what". */
static void expect_error(const char *text, int line, const char *what)
{
	const char *err = conf_error(text);
	char want[1024];

	snprintf(want, sizeof(want), "%s/agent.conf:%d: %s", tmpdir, line,
		 what);
	cr_expect_str_eq(err, want);
}

Test(check, config_errors_have_line_numbers, .init = make_tmpdir,
     .fini = remove_tmpdir)
{
	char plain[1024], want[1024];

	expect_error("relay = r:1\nbogus = 1\n", 2, "unknown key 'bogus'");
	expect_error("# c\n\n[service x]\n", 3, "unknown section 'service x'");
	expect_error("[check a]\nbuiltin = memory\n[check a]\n", 3,
		     "duplicate check 'a' (first on line 1)");
	expect_error("[check a b]\n", 1,
		     "invalid check name 'a b' (1 to 64 of A-Z a-z 0-9 _ . -)");
	expect_error("name = \"open\n", 1,
		     "unterminated quoted value for 'name'");
	expect_error("\n[check a]\ninterval = 5\n", 2,
		     "check 'a' needs builtin = NAME or command = PATH");
	expect_error("[check a]\nbuiltin = memory\npath = /\n", 3,
		     "unknown key 'path' for builtin memory");
	expect_error("[check a]\nbuiltin = disk\nwarning = 10:5\n", 3,
		     "invalid warning '10:5' (not a range: want N, N:, ~:N, "
		     "N:M or @N:M)");
	expect_error("[check a]\nbuiltin = nope\n", 2,
		     "unknown builtin 'nope'");
	expect_error("[check a]\ncommand = /no/such/plugin -x\n", 2,
		     "command '/no/such/plugin': No such file or directory");
	expect_error("[check a]\ncommand = check_disk -w 1\n", 2,
		     "command 'check_disk' is not an absolute path");
	snprintf(plain, sizeof(plain), "[check a]\ncommand = %s\n",
		 write_file("plain", "x", 0644));
	snprintf(want, sizeof(want),
		 "command '%s/plain' is not an executable "
		 "file",
		 tmpdir);
	expect_error(plain, 2, want);
	expect_error("[check a]\ncommand = /bin/true 'x\n", 2,
		     "invalid command (unterminated ')");
	expect_error("[check a]\nbuiltin = load\n\ncommand = /bin/true\n", 4,
		     "check 'a' has more than one builtin or command (first "
		     "on line 2)");
	expect_error("[check a]\nbuiltin = load\ninterval = 0\n", 3,
		     "invalid interval '0' (whole seconds, at least 1)");
	expect_error("[check a]\nbuiltin = load\nretries = 99\n", 3,
		     "invalid retries '99' (1 to 10)");
	expect_error("[check a]\nbuiltin = load\nticket = sometimes\n", 3,
		     "invalid ticket 'sometimes' (critical, warning or never)");
	expect_error("[check a]\ncommand = /bin/true\nwarning = 1\n", 3,
		     "unknown key 'warning'");
	expect_error("[check a]\nbuiltin = tcp_port\n", 1,
		     "check 'a': tcp_port needs port = N");
	expect_error("[check a]\nbuiltin = process\nname = x\nmatch = y\n", 1,
		     "check 'a': process needs either name or match");
	expect_error("relay = nocolon\n", 1,
		     "invalid relay 'nocolon' (want HOST:PORT)");
	expect_error("allow_forward = ::1:22\n", 1,
		     "invalid allow_forward '::1:22' (write an IPv6 address "
		     "as [ADDRESS]:PORT)");
	expect_error("label = a=1\nlabel = a=2\n", 2, "duplicate label 'a'");
	expect_error("name = a\nname = b\n", 2, "duplicate key 'name'");
	expect_error("key\n", 1, "want KEY = VALUE");
	cr_expect_str_eq(conf_error("[check a]\nbuiltin = memory\n"), "");
}

Test(check, config_loads_everything, .init = make_tmpdir, .fini = remove_tmpdir)
{
	struct agent_config c;
	char err[512], want[512];
	const char *path;

	path = write_file("agent.conf",
			  "# identity\n"
			  "relay = relay.example.com:7443  # the relay\n"
			  "fingerprint = SHA256:abc\n"
			  "name = web-01\n"
			  "label = role=web\n"
			  "label = \"site=Paris #3 \\\"x\\\"\"\n"
			  "allow_forward = [::1]:5432\n"
			  "allow_forward = db.local:5432\n"
			  "\n"
			  "[check root]\n"
			  "  builtin = disk   \n"
			  "warning=70\n"
			  "[ check  load ]\n"
			  "builtin = load\n",
			  0600);
	cr_assert_eq(agent_config_load(path, &c, err, sizeof(err)), 0, "%s",
		     err);
	cr_expect_str_eq(c.relay, "relay.example.com:7443");
	cr_expect_str_eq(c.fingerprint, "SHA256:abc");
	cr_expect_str_eq(c.name, "web-01");
	snprintf(want, sizeof(want), "%s/agent.key", tmpdir);
	cr_expect_str_eq(c.key, want);
	cr_expect_str_eq(agent_labels_get(&c.labels, "role"), "web");
	cr_expect_str_eq(agent_labels_get(&c.labels, "site"), "Paris #3 \"x\"");
	cr_assert_eq(c.forward_targets.n, 2);
	cr_expect_str_eq(c.forward_targets.t[0].host, "::1");
	cr_expect_eq(c.forward_targets.t[0].port, 5432);
	cr_assert_eq(c.nchecks, 2);
	cr_expect_str_eq(c.checks[0].name, "root");
	cr_expect_eq(c.checks[0].line, 10);
	cr_assert_eq(c.checks[0].n, 2);
	cr_expect_str_eq(c.checks[0].kv[1].key, "warning");
	cr_expect_str_eq(c.checks[0].kv[1].value, "70");
	cr_expect_eq(c.checks[0].kv[1].line, 12);
	cr_expect_str_eq(c.checks[1].name, "load");
	agent_config_free(&c);
}

Test(check, config_save_identity_keeps_checks, .init = make_tmpdir,
     .fini = remove_tmpdir)
{
	static const char checks[] = "[check root]\n"
				     "# my own comment\n"
				     "builtin = disk   # odd spacing kept\n";
	struct agent_config c, back;
	char path[512], err[512], *text;
	struct stat st;
	FILE *f;
	long n;

	snprintf(path, sizeof(path), "%s/new/dir/agent.conf", tmpdir);
	memset(&c, 0, sizeof(c));
	c.path = path;
	c.relay = "relay.example.com:7443";
	c.name = "web-01";
	cr_assert_eq(agent_labels_set(&c.labels, "role", "web"), 0);
	cr_assert_eq(agent_labels_set(&c.labels, "note", " a # b "), 0);
	cr_assert_eq(agent_config_save_identity(&c, err, sizeof(err)), 0, "%s",
		     err);
	cr_assert_eq(stat(path, &st), 0);
	cr_expect_eq(st.st_mode & 0777, 0600);
	snprintf(err, sizeof(err), "%s/new", tmpdir);
	cr_assert_eq(stat(err, &st), 0);
	cr_expect_eq(st.st_mode & 0777, 0700);

	/* The user adds checks; enroll runs again with a new name. */
	f = fopen(path, "a");
	cr_assert_not_null(f);
	fprintf(f, "\n%s", checks);
	fclose(f);
	c.name = "web-02";
	cr_assert_eq(agent_config_save_identity(&c, err, sizeof(err)), 0, "%s",
		     err);
	agent_labels_free(&c.labels);

	cr_assert_eq(agent_config_load(path, &back, err, sizeof(err)), 0, "%s",
		     err);
	cr_expect_str_eq(back.name, "web-02");
	cr_expect_str_eq(back.relay, "relay.example.com:7443");
	cr_expect_str_eq(agent_labels_get(&back.labels, "note"), " a # b ");
	cr_expect_eq(back.nchecks, 1);
	agent_config_free(&back);
	f = fopen(path, "r");
	cr_assert_not_null(f);
	text = tether_calloc(1, 65536);
	n = (long)fread(text, 1, 65535, f);
	fclose(f);
	cr_expect_gt(n, 0);
	cr_expect_not_null(strstr(text, checks), "sections not kept:\n%s",
			   text);
	cr_expect_null(strstr(text, "key ="), "default key written");
	tether_free(text);
}

Test(check, config_default_path)
{
	char p[512];
	bool was_root = geteuid() == 0;

	if (was_root) {
		agent_config_default_path(p, sizeof(p));
		cr_expect_str_eq(p, "/etc/tether/agent.conf");
		/* This test runs in its own process: become a user. */
		cr_assert_eq(seteuid(65534), 0);
	}
	setenv("XDG_CONFIG_HOME", "/x/cfg", 1);
	agent_config_default_path(p, sizeof(p));
	cr_expect_str_eq(p, "/x/cfg/tether/agent.conf");
	unsetenv("XDG_CONFIG_HOME");
	setenv("HOME", "/home/someone", 1);
	agent_config_default_path(p, sizeof(p));
	cr_expect_str_eq(p, "/home/someone/.config/tether/agent.conf");
	/* Back to root: LeakSanitizer's exit check cannot run as nobody. */
	if (was_root)
		cr_assert_eq(seteuid(0), 0);
}

/* ---- the engine on a loop ---- */

/* A result as the relay would read it (seq set, as the queue would). */
static json_t *result_json(struct agent_result *r)
{
	json_t *j;

	r->msg.seq = 1;
	j = tether_ctrl_to_json(TETHER_CTRL_CHECK, 0, &r->msg);
	agent_result_free(r);
	cr_assert_not_null(j, "a result the codec refuses");
	return j;
}

static void on_result(void *arg, struct agent_result *r)
{
	cr_assert_eq(json_array_append_new(arg, result_json(r)), 0);
}

/* Runs every check of config text once; the results, by name. */
static json_t *run_checks(const char *text, double *secs)
{
	struct agent_checks *cs;
	struct agent_config c;
	json_t *arr = json_array(), *byname = json_object(), *e;
	char err[1024];
	double t0 = now_mono();
	uv_loop_t loop;
	size_t i;

	cr_assert_eq(agent_config_load(write_file("run.conf", text, 0600), &c,
				       err, sizeof(err)),
		     0, "%s", err);
	cr_assert_eq(uv_loop_init(&loop), 0);
	cr_assert_eq(agent_checks_new(&loop, &c, on_result, arr, true, &cs, err,
				      sizeof(err)),
		     0, "%s", err);
	cr_assert_eq(agent_checks_count(cs), c.nchecks);
	agent_checks_run_all(cs);
	while (json_array_size(arr) < c.nchecks &&
	       uv_run(&loop, UV_RUN_ONCE) != 0)
		;
	if (secs != NULL)
		*secs = now_mono() - t0;
	agent_checks_free(cs);
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_expect_eq(uv_loop_close(&loop), 0, "handles left open");
	cr_assert_eq(json_array_size(arr), c.nchecks);
	json_array_foreach (arr, i, e) {
		json_object_set(byname, str(e, "check"), e);
	}
	json_decref(arr);
	agent_config_free(&c);
	return byname;
}

/* The wire form every result has. */
static json_t *result(json_t *all, const char *name, const char *state)
{
	json_t *r = json_object_get(all, name);

	cr_assert_not_null(r, "no result for %s", name);
	cr_expect_str_eq(str(r, "state"), state, "%s: %s", name,
			 str(r, "output"));
	cr_expect(json_is_integer(json_object_get(r, "attempt")));
	cr_expect(json_is_integer(json_object_get(r, "max_attempts")));
	cr_expect(json_is_integer(json_object_get(r, "ts")));
	cr_expect(json_is_integer(json_object_get(r, "duration_ms")));
	cr_expect(json_is_array(json_object_get(r, "perfdata")));
	cr_expect_leq(strlen(str(r, "output")), AGENT_CHECK_OUTPUT_MAX);
	(void)str(r, "ticket_on");
	return r;
}

/* The value of perfdata entry label. */
static double perf_value(const json_t *r, const char *label)
{
	const json_t *e;
	size_t i;

	json_array_foreach (json_object_get(r, "perfdata"), i, e) {
		if (strcmp(str(e, "label"), label) == 0) {
			cr_assert(json_is_number(json_object_get(e, "value")));
			return json_number_value(json_object_get(e, "value"));
		}
	}
	cr_assert_fail("no perfdata %s in %s", label,
		       json_dumps(json_object_get(r, "perfdata"), 0));
	return 0;
}

static const char *state_for(double v, double w, double c)
{
	return v > c ? "CRITICAL" : v > w ? "WARNING" : "OK";
}

/* ---- built-ins against this machine ---- */

Test(check, builtin_disk_memory_load_swap, .init = make_tmpdir,
     .fini = remove_tmpdir)
{
	json_t *all, *r;
	struct statvfs sv;
	double pct, used, avail, l[3];
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	all = run_checks("[check root]\nbuiltin = disk\n"
			 "[check ino]\nbuiltin = inodes\npath = /\n"
			 "[check mem]\nbuiltin = memory\nticket = warning\n"
			 "[check swap]\nbuiltin = swap\n"
			 "[check load]\nbuiltin = load\n"
			 "[check loadcpu]\nbuiltin = load\nper_cpu = yes\n"
			 "warning = 1000\ncritical = 2000\n",
			 NULL);
	cr_assert_eq(statvfs("/", &sv), 0);
	used = (double)(sv.f_blocks - sv.f_bfree) * sv.f_frsize;
	avail = (double)sv.f_bavail * sv.f_frsize;
	pct = 100 * used / (used + avail);
	r = json_object_get(all, "root");
	r = result(all, "root", state_for(pct, 80, 90));
	cr_expect_eq(strncmp(str(r, "output"), "DISK ", 5), 0);
	cr_expect_not_null(strstr(str(r, "output"), "% used ("));
	cr_expect_float_eq(perf_value(r, "used_pct"), pct, 0.5);
	cr_expect_str_eq(str(r, "ticket_on"), "critical");

	r = json_object_get(all, "ino");
	cr_assert_not_null(r);
	cr_expect_eq(strncmp(str(r, "output"), "INODES ", 7), 0);

	r = json_object_get(all, "mem");
	cr_assert_not_null(r);
	cr_expect_eq(strncmp(str(r, "output"), "MEMORY ", 7), 0);
	cr_expect_gt(perf_value(r, "used_pct"), 0);
	cr_expect_lt(perf_value(r, "used_pct"), 100);
	cr_expect_str_eq(str(r, "ticket_on"), "warning");

	r = json_object_get(all, "swap");
	cr_assert_not_null(r);
	if (strstr(str(r, "output"), "no swap") != NULL)
		result(all, "swap", "OK");
	else
		cr_expect_geq(perf_value(r, "used_pct"), 0);

	cr_assert_eq(getloadavg(l, 3), 3);
	r = json_object_get(all, "load");
	cr_assert_not_null(r);
	cr_expect_float_eq(perf_value(r, "load1"), l[0], 1.0);
	perf_value(r, "load5");
	perf_value(r, "load15");
	r = result(all, "loadcpu", "OK");
	cr_expect_float_eq(perf_value(r, "load1"), l[0] / ncpu, 1.0);
	cr_expect_not_null(strstr(str(r, "output"), "per CPU"));
	json_decref(all);
}

Test(check, builtin_process_finds_itself, .init = make_tmpdir,
     .fini = remove_tmpdir)
{
	char comm[64], text[512];
	json_t *all, *r;
	FILE *f = fopen("/proc/self/comm", "r");

	cr_assert_not_null(f);
	cr_assert_not_null(fgets(comm, sizeof(comm), f));
	fclose(f);
	comm[strcspn(comm, "\n")] = '\0';
	snprintf(text, sizeof(text),
		 "[check me]\nbuiltin = process\nname = %s\n"
		 "[check none]\nbuiltin = process\nname = no-such-proc-x\n"
		 "[check few]\nbuiltin = process\nname = %s\ncritical = 0\n"
		 "[check m]\nbuiltin = process\nmatch = no-such-arg-qq\n",
		 comm, comm);
	all = run_checks(text, NULL);
	r = result(all, "me", "OK");
	cr_expect_geq(perf_value(r, "procs"), 1);
	r = result(all, "none", "CRITICAL");
	cr_expect_eq(perf_value(r, "procs"), 0);
	cr_expect_str_eq(str(r, "type"), "SOFT");
	cr_expect_eq(json_integer_value(json_object_get(r, "attempt")), 1);
	cr_expect_eq(json_integer_value(json_object_get(r, "max_attempts")), 3);
	result(all, "few", "CRITICAL");
	result(all, "m", "CRITICAL");
	json_decref(all);
}

/* A listening socket on 127.0.0.1; its port. */
static int listener(int *port)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	cr_assert_geq(fd, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(listen(fd, 16), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

Test(check, builtin_tcp_port, .init = make_tmpdir, .fini = remove_tmpdir)
{
	int open_port, closed_port, fd, gone;
	char text[512];
	json_t *all, *r;

	fd = listener(&open_port);
	gone = listener(&closed_port);
	close(gone);
	snprintf(text, sizeof(text),
		 "[check up]\nbuiltin = tcp_port\nport = %d\n"
		 "[check down]\nbuiltin = tcp_port\nhost = 127.0.0.1\n"
		 "port = %d\nretries = 1\n",
		 open_port, closed_port);
	all = run_checks(text, NULL);
	r = result(all, "up", "OK");
	cr_expect_geq(perf_value(r, "time"), 0);
	cr_expect_lt(perf_value(r, "time"), 1);
	r = result(all, "down", "CRITICAL");
	cr_expect_not_null(strstr(str(r, "output"), "connection refused"), "%s",
			   str(r, "output"));
	cr_expect_str_eq(str(r, "type"), "HARD");
	json_decref(all);
	close(fd);
}

Test(check, builtin_file_age, .init = make_tmpdir, .fini = remove_tmpdir)
{
	char text[4096], fresh[512], old[512], ancient[512];
	struct timeval tv[2];
	json_t *all, *r;

	snprintf(fresh, sizeof(fresh), "%s", write_file("fresh", "x", 0600));
	snprintf(old, sizeof(old), "%s", write_file("old", "x", 0600));
	snprintf(ancient, sizeof(ancient), "%s",
		 write_file("ancient", "x", 0600));
	gettimeofday(&tv[0], NULL);
	tv[1] = tv[0];
	tv[1].tv_sec -= 7200;
	cr_assert_eq(utimes(old, tv), 0);
	tv[1].tv_sec -= 2 * 86400;
	cr_assert_eq(utimes(ancient, tv), 0);
	snprintf(text, sizeof(text),
		 "[check fresh]\nbuiltin = file_age\npath = %s\n"
		 "[check old]\nbuiltin = file_age\npath = %s\n"
		 "[check ancient]\nbuiltin = file_age\npath = %s\n"
		 "[check missing]\nbuiltin = file_age\npath = %s/nope\n",
		 fresh, old, ancient, tmpdir);
	all = run_checks(text, NULL);
	r = result(all, "fresh", "OK");
	cr_expect_lt(perf_value(r, "age"), 60);
	r = result(all, "old", "WARNING");
	cr_expect_float_eq(perf_value(r, "age"), 7200, 60);
	r = result(all, "ancient", "CRITICAL");
	r = result(all, "missing", "CRITICAL");
	cr_expect_not_null(strstr(str(r, "output"), "no such file"));
	json_decref(all);
}

/* Runs argv with stdout and stderr to /dev/null; its pid. */
static pid_t spawn_quiet(char *const argv[])
{
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int fd = open("/dev/null", O_RDWR);

		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

Test(check, builtin_tls_cert_expiry, .init = make_tmpdir, .fini = remove_tmpdir,
     .timeout = 60)
{
	char cert[512], key[512], port_s[16], text[512];
	int port, fd, status, i;
	double days;
	json_t *all, *r;
	pid_t pid;

	snprintf(cert, sizeof(cert), "%s/cert.pem", tmpdir);
	snprintf(key, sizeof(key), "%s/key.pem", tmpdir);
	{
		char *const req[] = {"/usr/bin/openssl",
				     "req",
				     "-x509",
				     "-newkey",
				     "ec",
				     "-pkeyopt",
				     "ec_paramgen_curve:prime256v1",
				     "-nodes",
				     "-days",
				     "10",
				     "-subj",
				     "/CN=localhost",
				     "-keyout",
				     key,
				     "-out",
				     cert,
				     NULL};

		pid = spawn_quiet(req);
		cr_assert_eq(waitpid(pid, &status, 0), pid);
		cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	fd = listener(&port);
	close(fd);
	snprintf(port_s, sizeof(port_s), "%d", port);
	{
		char *const srv[] = {"/usr/bin/openssl",
				     "s_server",
				     "-accept",
				     port_s,
				     "-cert",
				     cert,
				     "-key",
				     key,
				     "-quiet",
				     NULL};

		pid = spawn_quiet(srv);
	}
	/* Wait until it listens. */
	for (i = 0; i < 100; i++) {
		struct sockaddr_in sa;
		int c = socket(AF_INET, SOCK_STREAM, 0);

		memset(&sa, 0, sizeof(sa));
		sa.sin_family = AF_INET;
		sa.sin_port = htons((uint16_t)port);
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (connect(c, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(c);
			break;
		}
		close(c);
		usleep(50000);
	}
	cr_assert_lt(i, 100, "openssl s_server did not start");
	snprintf(text, sizeof(text),
		 "[check cert]\nbuiltin = tls_cert_expiry\nhost = 127.0.0.1\n"
		 "port = %d\nservername = localhost\n"
		 "[check nocert]\nbuiltin = tls_cert_expiry\nport = %d\n"
		 "timeout = 2\n",
		 port, port == 65535 ? 1 : port + 1);
	all = run_checks(text, NULL);
	kill(pid, SIGTERM);
	waitpid(pid, &status, 0);
	r = result(all, "cert", "WARNING");
	/* Made with -days 10 a moment ago: 10 days, or 9 and some hours. */
	days = perf_value(r, "days");
	cr_expect(days == 9 || days == 10, "%g days", days);
	cr_expect_not_null(strstr(str(r, "output"), "certificate expires in "),
			   "%s", str(r, "output"));
	result(all, "nocert", "CRITICAL");
	json_decref(all);
}

Test(check, builtin_systemd_unit_without_systemd, .init = make_tmpdir,
     .fini = remove_tmpdir)
{
	json_t *all, *r;
	struct stat st;

	if (stat("/run/systemd/system", &st) == 0)
		cr_skip_test("systemd runs here");
	all = run_checks("[check ssh]\nbuiltin = systemd_unit\n"
			 "unit = ssh.service\n",
			 NULL);
	r = result(all, "ssh", "UNKNOWN");
	cr_expect_not_null(strstr(str(r, "output"), "systemd is not running"));
	json_decref(all);
}

/* ---- real monitoring plugins ---- */

/* Fails where the tools are required (CI installs monitoring-plugins). */
static void need(const char *plugin)
{
	if (access(plugin, X_OK) == 0)
		return;
	cr_assert(!test_tools_required(),
		  "%s is not installed (apt-get install "
		  "monitoring-plugins-basic); it is required here (CI or "
		  "TETHER_REQUIRE_TOOLS=1)",
		  plugin);
	cr_skip_test("%s is not installed", plugin);
}

Test(check, plugins_disk_load_procs_tcp, .init = make_tmpdir,
     .fini = remove_tmpdir, .timeout = 60)
{
	char text[1024];
	json_t *all, *r;
	int port, fd;

	need(PLUGINS "/check_disk");
	need(PLUGINS "/check_tcp");
	fd = listener(&port);
	snprintf(text, sizeof(text),
		 "[check disk]\ncommand = " PLUGINS
		 "/check_disk -w 10%% -c 5%% -p /\n"
		 "[check load]\ncommand = " PLUGINS
		 "/check_load -w 1000,1000,1000 -c 2000,2000,2000\n"
		 "[check procs]\ncommand = " PLUGINS "/check_procs\n"
		 "[check tcp]\ncommand = " PLUGINS
		 "/check_tcp -H 127.0.0.1 -p %d\n"
		 "[check tcpdown]\ncommand = " PLUGINS
		 "/check_tcp -H 127.0.0.1 -p 1\nretries = 1\n",
		 port);
	all = run_checks(text, NULL);
	r = json_object_get(all, "disk");
	cr_assert_not_null(r);
	cr_expect_eq(strncmp(str(r, "output"), "DISK ", 5), 0, "%s",
		     str(r, "output"));
	cr_expect_gt(perf_value(r, "/"), 0);
	r = result(all, "load", "OK");
	cr_expect_geq(perf_value(r, "load1"), 0);
	cr_expect_str_eq(
	    str(json_array_get(json_object_get(r, "perfdata"), 0), "warn"),
	    "1000.000");
	r = result(all, "procs", "OK");
	cr_expect_gt(perf_value(r, "procs"), 0);
	r = result(all, "tcp", "OK");
	cr_expect_geq(perf_value(r, "time"), 0);
	r = result(all, "tcpdown", "CRITICAL");
	cr_expect_str_eq(str(r, "type"), "HARD");
	json_decref(all);
	close(fd);
}

/* Whether pid is gone (or a zombie nobody reaped yet). */
static bool gone(pid_t pid)
{
	char path[64], buf[256];
	FILE *f;
	bool z = false;

	if (kill(pid, 0) != 0 && errno == ESRCH)
		return true;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return true;
	if (fgets(buf, sizeof(buf), f) != NULL) {
		char *p = strrchr(buf, ')');

		z = p != NULL && p[1] == ' ' && p[2] == 'Z';
	}
	fclose(f);
	return z;
}

static pid_t read_pid(const char *name)
{
	char path[512], buf[32] = "";
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "r");
	cr_assert_not_null(f, "%s not written", name);
	cr_assert_not_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	{
		const char *q = buf;
		int64_t pid = 0;

		cr_assert_eq(tether_num_scan_i64(&q, &pid), 0, "%s: %s", name,
			     buf);
		return (pid_t)pid;
	}
}

Test(check, plugin_timeout_kills_its_group, .init = make_tmpdir,
     .fini = remove_tmpdir, .timeout = 30)
{
	char script[1024], text[1024];
	pid_t sh, child;
	json_t *all, *r;
	double secs;
	int i;

	snprintf(script, sizeof(script),
		 "#!/bin/sh\n"
		 "echo $$ > %s/sh.pid\n"
		 "sleep 30 &\n"
		 "echo $! > %s/sleep.pid\n"
		 "wait\n",
		 tmpdir, tmpdir);
	snprintf(text, sizeof(text),
		 "[check slow]\ncommand = %s\ntimeout = 1\n",
		 write_file("slow.sh", script, 0755));
	all = run_checks(text, &secs);
	r = result(all, "slow", "UNKNOWN");
	cr_expect_str_eq(str(r, "output"), "plugin timed out after 1 s");
	cr_expect_lt(secs, 2.0, "took %.2f s", secs);
	sh = read_pid("sh.pid");
	child = read_pid("sleep.pid");
	for (i = 0; i < 50 && !(gone(sh) && gone(child)); i++)
		usleep(20000);
	cr_expect(gone(sh), "plugin %d still there", (int)sh);
	cr_expect(gone(child), "its child %d still there", (int)child);
	json_decref(all);
}

Test(check, plugin_huge_output_capped, .init = make_tmpdir,
     .fini = remove_tmpdir, .timeout = 30)
{
	char text[1024];
	char big[512];
	json_t *all, *r;
	double secs;

	snprintf(big, sizeof(big), "%s",
		 write_file("big.sh",
			    "#!/bin/sh\n"
			    "head -c 1048576 /dev/zero | tr '\\0' x\n"
			    "echo ' | a=1'\n"
			    "exit 1\n",
			    0755));
	snprintf(text, sizeof(text),
		 "[check big]\ncommand = %s\n"
		 "[check lines]\ncommand = %s\n",
		 big,
		 write_file("lines.sh",
			    "#!/bin/sh\n"
			    "echo 'LINES OK - many | first=1'\n"
			    "yes 'long text line' | head -c 1048576\n"
			    "echo 'x | last=2'\n"
			    "echo 'stderr noise' >&2\n",
			    0755));
	all = run_checks(text, &secs);
	cr_expect_lt(secs, 10);
	r = result(all, "big", "WARNING");
	cr_expect_eq(strlen(str(r, "output")), AGENT_CHECK_OUTPUT_MAX);
	r = result(all, "lines", "OK");
	cr_expect_str_eq(str(r, "output"), "LINES OK - many");
	/* The perfdata past the 8 KiB kept is lost with the rest. */
	cr_expect_eq(perf_value(r, "first"), 1);
	json_decref(all);
}

Test(check, plugin_odd_ends, .init = make_tmpdir, .fini = remove_tmpdir,
     .timeout = 30)
{
	char text[4096], a[512], b[512], c[512], d[512];
	json_t *all, *r;

	snprintf(
	    a, sizeof(a), "%s",
	    write_file("five.sh", "#!/bin/sh\necho weird\nexit 5\n", 0755));
	snprintf(b, sizeof(b), "%s",
		 write_file("sig.sh", "#!/bin/sh\nkill -9 $$\n", 0755));
	snprintf(c, sizeof(c), "%s",
		 write_file("err.sh",
			    "#!/bin/sh\necho 'cannot read config' >&2\n"
			    "exit 3\n",
			    0755));
	snprintf(d, sizeof(d), "%s",
		 write_file("args.sh",
			    "#!/bin/sh\necho \"ARGS $# [$1] [$2] | n=$#\"\n"
			    "exit 2\n",
			    0755));
	snprintf(text, sizeof(text),
		 "[check five]\ncommand = %s\n"
		 "[check sig]\ncommand = %s\n"
		 "[check err]\ncommand = %s\n"
		 "[check args]\ncommand = %s 'a b' \"c'd\"\nretries = 1\n"
		 "[check silent]\ncommand = /bin/true\n",
		 a, b, c, d);
	all = run_checks(text, NULL);
	r = result(all, "five", "UNKNOWN");
	cr_expect_str_eq(str(r, "output"),
			 "plugin exited with status 5: weird");
	r = result(all, "sig", "UNKNOWN");
	cr_expect_str_eq(str(r, "output"), "plugin killed by signal 9");
	r = result(all, "err", "UNKNOWN");
	cr_expect_str_eq(str(r, "output"), "cannot read config");
	r = result(all, "args", "CRITICAL");
	cr_expect_str_eq(str(r, "output"), "ARGS 2 [a b] [c'd]");
	cr_expect_str_eq(str(r, "type"), "HARD");
	cr_expect_eq(perf_value(r, "n"), 2);
	r = result(all, "silent", "OK");
	cr_expect_str_eq(str(r, "output"), "(no output from plugin)");
	json_decref(all);
}

/* ---- scheduling ---- */

struct sched {
	json_t *results;
	struct agent_checks *cs;
	double t0;
	double at[3];
};

static void on_sched_result(void *arg, struct agent_result *r)
{
	struct sched *s = arg;
	size_t n = json_array_size(s->results);

	if (n < 3)
		s->at[n] = now_mono() - s->t0;
	json_array_append_new(s->results, result_json(r));
	if (n + 1 == 3)
		agent_checks_free(s->cs);
}

Test(check, schedule_retries_then_interval, .init = make_tmpdir,
     .fini = remove_tmpdir, .timeout = 30)
{
	struct agent_config c;
	struct sched s;
	char err[512];
	uv_loop_t loop;
	json_t *r;

	/* /bin/false exits 1: WARNING every time. */
	cr_assert_eq(
	    agent_config_load(write_file("s.conf",
					 "[check f]\ncommand = /bin/false\n"
					 "interval = 3\nretry_interval = 1\n"
					 "retries = 2\n",
					 0600),
			      &c, err, sizeof(err)),
	    0, "%s", err);
	memset(&s, 0, sizeof(s));
	s.results = json_array();
	cr_assert_eq(uv_loop_init(&loop), 0);
	s.t0 = now_mono();
	cr_assert_eq(agent_checks_new(&loop, &c, on_sched_result, &s, false,
				      &s.cs, err, sizeof(err)),
		     0, "%s", err);
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_expect_eq(uv_loop_close(&loop), 0);
	cr_assert_eq(json_array_size(s.results), 3);
	/* The only check starts at once; retried after 1 s; then 3 s. */
	cr_expect_lt(s.at[0], 0.5, "first at %.2f", s.at[0]);
	cr_expect_float_eq(s.at[1] - s.at[0], 1.0, 0.3);
	cr_expect_float_eq(s.at[2] - s.at[1], 3.0, 0.3);
	r = json_array_get(s.results, 0);
	cr_expect_str_eq(str(r, "state"), "WARNING");
	cr_expect_str_eq(str(r, "type"), "SOFT");
	r = json_array_get(s.results, 1);
	cr_expect_str_eq(str(r, "type"), "HARD");
	cr_expect_eq(json_integer_value(json_object_get(r, "attempt")), 2);
	r = json_array_get(s.results, 2);
	cr_expect_str_eq(str(r, "type"), "HARD");
	cr_expect_str_eq(str(r, "output"), "(no output from plugin)");
	json_decref(s.results);
	agent_config_free(&c);
}
