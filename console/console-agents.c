/*
 * `tether agents [--json]` and `tether health [AGENT] [-v] [--json]`: the
 * enrolled agents the relay knows and their latest check results
 * (docs/protocol.md, "Enrolled agents"), one request each.  --json prints
 * the rows as the protocol writes them; the tables are for people: states
 * in colour and outputs cut to the width only when standard output is a
 * terminal, so a pipe gets whole lines without escape sequences.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <tether/alloc.h>

#include "console.h"

static const char agents_usage[] =
    "Usage: tether agents [--json]\n"
    "\n"
    "Lists the enrolled agents: name, worst check state, whether it is\n"
    "connected, when the relay last heard from it, labels, host and OS.\n";

static const char health_usage[] =
    "Usage: tether health [AGENT] [-v] [--json]\n"
    "\n"
    "Shows the latest result of every check of every enrolled agent (or\n"
    "of AGENT): state, SOFT or HARD, since when, and the plugin's output;\n"
    "-v adds the performance data.\n";

static bool stdout_tty(void)
{
	return isatty(STDOUT_FILENO) != 0;
}

static size_t stdout_cols(void)
{
	struct winsize ws;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) != 0 || ws.ws_col == 0)
		return 80;
	return ws.ws_col;
}

/* The colour of a check state, on a terminal that wants colour. */
static const char *state_color(enum tether_check_state state)
{
	static const char *const colors[] = {
	    [TETHER_CHECK_OK] = "\033[32m",
	    [TETHER_CHECK_WARNING] = "\033[33m",
	    [TETHER_CHECK_CRITICAL] = "\033[1;31m",
	    [TETHER_CHECK_UNKNOWN] = "\033[35m",
	};

	if (!stdout_tty() || getenv("NO_COLOR") != NULL ||
	    (unsigned)state >= sizeof(colors) / sizeof(colors[0]))
		return NULL;
	return colors[state];
}

/* "12s ago", "5m ago", ... from Unix time (0: never), else "-". */
static void format_ago(int64_t t, char *out, size_t len)
{
	int64_t now = (int64_t)time(NULL);
	long long d;

	if (t == 0) {
		snprintf(out, len, "-");
		return;
	}
	/* A clock a little ahead of ours is still "now". */
	d = t < now ? (long long)(now - t) : 0;
	if (d < 60)
		snprintf(out, len, "%llds ago", d);
	else if (d < 3600)
		snprintf(out, len, "%lldm ago", d / 60);
	else if (d < 86400)
		snprintf(out, len, "%lldh ago", d / 3600);
	else
		snprintf(out, len, "%lldd ago", d / 86400);
}

/* "k=v,k=v" from the labels. */
static void labels_text(const struct tether_ctrl_agent_row *a, char *out,
			size_t len)
{
	size_t used = 0, i;
	int n;

	out[0] = '\0';
	for (i = 0; i < a->nlabels; i++) {
		n = snprintf(out + used, len - used, "%s%s=%s",
			     used > 0 ? "," : "", a->labels[i].key,
			     a->labels[i].value);
		if (n < 0 || (size_t)n >= len - used)
			return;
		used += (size_t)n;
	}
}

static void host_text(const struct tether_ctrl_agent_row *a, char *out,
		      size_t len)
{
	const char *host = a->has_facts ? a->facts.hostname : NULL;
	const char *os = a->has_facts ? a->facts.os : NULL;

	if (host == NULL && os == NULL)
		snprintf(out, len, "-");
	else if (os == NULL)
		snprintf(out, len, "%s", host);
	else
		snprintf(out, len, "%s (%s)", host != NULL ? host : "?", os);
}

static int print_agents(const struct tether_ctrl_agents_ok *ok)
{
	static const char *const heads[] = {"NAME",	 "STATE",  "CONNECTED",
					    "LAST SEEN", "LABELS", "HOST/OS"};
	struct console_table t;
	char labels[512], host[600], ago[32];
	size_t i;
	int r;

	console_table_init(&t, 6, heads);
	for (i = 0; i < ok->nagents; i++) {
		const struct tether_ctrl_agent_row *a = &ok->agents[i];

		labels_text(a, labels, sizeof(labels));
		host_text(a, host, sizeof(host));
		format_ago(a->last_seen, ago, sizeof(ago));
		console_table_add(&t, a->name);
		if (a->has_worst)
			console_table_add_color(
			    &t, tether_ctrl_name_of(check_state, a->worst),
			    state_color(a->worst));
		else
			console_table_add(&t, NULL);
		console_table_add(&t, a->connected ? "yes" : "no");
		console_table_add(&t, a->connected ? "now" : ago);
		console_table_add(&t, labels);
		console_table_add(&t, host);
	}
	r = console_table_print(&t, 0, 0);
	console_table_free(&t);
	return r;
}

/*
 * One perfdata number as the plugin wrote it: whole numbers without a
 * fraction, the rest shortest; empty for none (NaN).
 */
static void perf_number(double v, char *out, size_t len)
{
	if (isnan(v))
		out[0] = '\0';
	else if (v == floor(v) && fabs(v) < 1e15)
		snprintf(out, len, "%.0f", v);
	else
		snprintf(out, len, "%g", v);
}

/* Appends ";VALUE" to line; false when it is full. */
static bool perf_field(char *line, size_t len, size_t *used, const char *v)
{
	int n = snprintf(line + *used, len - *used, ";%s", v != NULL ? v : "");

	if (n < 0 || (size_t)n >= len - *used)
		return false;
	*used += (size_t)n;
	return true;
}

/* "perfdata: label=VALUEUOM;warn;crit;min;max ..." as Nagios writes it. */
static char *perf_text(const struct tether_ctrl_check_row *c)
{
	char line[4096], val[64], min[64], max[64];
	const struct tether_ctrl_perf *p;
	size_t used, i;
	int n;

	if (c->nperfdata == 0)
		return NULL;
	used = (size_t)snprintf(line, sizeof(line), "perfdata:");
	for (i = 0; i < c->nperfdata; i++) {
		p = &c->perfdata[i];
		perf_number(p->value, val, sizeof(val));
		perf_number(p->min, min, sizeof(min));
		perf_number(p->max, max, sizeof(max));
		n = snprintf(line + used, sizeof(line) - used, " %s=%s%s",
			     p->label, val, p->uom != NULL ? p->uom : "");
		if (n < 0 || (size_t)n >= sizeof(line) - used)
			break;
		used += (size_t)n;
		if (!perf_field(line, sizeof(line), &used, p->warn) ||
		    !perf_field(line, sizeof(line), &used, p->crit) ||
		    !perf_field(line, sizeof(line), &used, min) ||
		    !perf_field(line, sizeof(line), &used, max))
			break;
		/* Trailing empty fields say nothing. */
		while (used > 0 && line[used - 1] == ';')
			line[--used] = '\0';
	}
	return tether_strdup(line);
}

/* "HARD", "SOFT 2/3", and " flapping" while the relay holds notes back. */
static void type_text(const struct tether_ctrl_check_row *c, char *out,
		      size_t len)
{
	size_t used;

	if (c->type == TETHER_CHECK_SOFT)
		snprintf(out, len, "SOFT %lld/%lld", (long long)c->attempt,
			 (long long)c->max_attempts);
	else
		snprintf(out, len, "%s",
			 tether_ctrl_name_of(check_type, c->type));
	used = strlen(out);
	if (c->flapping)
		snprintf(out + used, len - used, " flapping");
}

static int print_health(const struct tether_ctrl_health_ok *ok, bool verbose)
{
	static const char *const heads[] = {"AGENT", "CHECK", "STATE",
					    "TYPE",  "SINCE", "OUTPUT"};
	struct console_table t;
	char type[64], since[32];
	size_t i;
	int r;

	console_table_init(&t, 6, heads);
	for (i = 0; i < ok->nchecks; i++) {
		const struct tether_ctrl_check_row *c = &ok->checks[i];

		type_text(c, type, sizeof(type));
		format_ago(c->since, since, sizeof(since));
		console_table_add(&t, c->agent);
		console_table_add(&t, c->check);
		console_table_add_color(
		    &t, tether_ctrl_name_of(check_state, c->state),
		    state_color(c->state));
		console_table_add(&t, type);
		console_table_add(&t, since);
		console_table_add(&t, c->output);
		if (verbose)
			console_table_extra(&t, perf_text(c));
	}
	r = console_table_print(&t, 0, stdout_tty() ? stdout_cols() : 0);
	console_table_free(&t);
	return r;
}

static const struct console_opts agents_opts = {
    .name = "agents",
    .usage = agents_usage,
    .shorts = "j",
    .flags = CONSOLE_OPTS_JSON,
    .min = 0,
    .max = 0,
    .need = "agents takes no operand",
};

int console_agents(int argc, char **argv)
{
	const struct tether_ctrl_agents_ok *ok;
	struct tether_ctrl_msg ans;
	struct console_args a;
	int r;

	r = console_opts_parse(&agents_opts, argc, argv, NULL, &a);
	if (r >= 0)
		return r;
	if (console_call(TETHER_CTRL_AGENTS, NULL, NULL, &ans) != 0)
		return CONSOLE_EXIT_FAIL;
	ok = &ans.body.agents_ok;
	r = a.json ? console_json_print_rows(TETHER_CTRL_PART_AGENT_ROW,
					     ok->agents, ok->nagents,
					     sizeof(ok->agents[0]))
		   : print_agents(ok);
	tether_ctrl_msg_free(&ans);
	return r == 0 ? 0 : CONSOLE_EXIT_FAIL;
}

static void no_such_agent(const char *name)
{
	console_error_text("no such agent ", name);
}

/* Is name among the enrolled agents?  1 yes, 0 no, -1 once reported. */
static int agent_known(struct console_client *c, const char *name)
{
	const struct tether_ctrl_agents_ok *ok;
	struct tether_ctrl_msg ans;
	size_t i;
	int r;

	r = console_client_call(c, TETHER_CTRL_AGENTS, NULL, &ans);
	if (r == CONSOLE_EREMOTE)
		console_client_report_err(&ans.body.err, NULL);
	if (r == 0) {
		ok = &ans.body.agents_ok;
		for (i = 0; i < ok->nagents; i++)
			if (strcmp(ok->agents[i].name, name) == 0)
				r = 1;
	}
	tether_ctrl_msg_free(&ans);
	return r == 0 || r == 1 ? r : -1;
}

/*
 * The health request on an open connection: 0 with the checks in *ans,
 * or the exit status once reported (1 for an agent nobody enrolled).
 */
static int health_request(struct console_client *c, const char *agent,
			  struct tether_ctrl_msg *ans)
{
	const struct tether_ctrl_health req = {.agent = agent};
	int r;

	r = console_client_call(c, TETHER_CTRL_HEALTH, &req, ans);
	if (r == CONSOLE_EREMOTE) {
		if (agent != NULL &&
		    ans->body.err.code == TETHER_CTRL_E_NOT_FOUND) {
			no_such_agent(agent);
			return 1;
		}
		console_client_report_err(&ans->body.err, NULL);
		return CONSOLE_EXIT_FAIL;
	}
	if (r != 0)
		return CONSOLE_EXIT_FAIL;
	if (agent == NULL || ans->body.health_ok.nchecks > 0)
		return 0;
	/* No checks: an agent without any, or no agent at all. */
	r = agent_known(c, agent);
	if (r == 0)
		no_such_agent(agent);
	return r == 1 ? 0 : r == 0 ? 1 : CONSOLE_EXIT_FAIL;
}

static int health_option(void *arg, int opt, char *optarg)
{
	(void)opt;
	(void)optarg;
	*(bool *)arg = true;
	return -1;
}

static const struct option health_longs[] = {
    {"verbose", no_argument, NULL, 'v'},
    {NULL, 0, NULL, 0},
};

static const struct console_opts health_opts = {
    .name = "health",
    .usage = health_usage,
    .shorts = "jv",
    .longs = health_longs,
    .flags = CONSOLE_OPTS_JSON,
    .min = 0,
    .max = 1,
    .need = "expected at most one AGENT",
    .option = health_option,
};

int console_health(int argc, char **argv)
{
	const struct tether_ctrl_health_ok *ok;
	struct console_client c;
	struct tether_ctrl_msg ans;
	struct console_args a;
	const char *agent;
	bool verbose = false;
	int r;

	r = console_opts_parse(&health_opts, argc, argv, &verbose, &a);
	if (r >= 0)
		return r;
	agent = a.argc > 0 ? a.argv[0] : NULL;
	/* A name that is none cannot be enrolled (and is not sent). */
	if (agent != NULL && !tether_id_name_valid(agent)) {
		no_such_agent(agent);
		return 1;
	}
	memset(&ans, 0, sizeof(ans));
	r = CONSOLE_EXIT_FAIL;
	if (console_client_open(&c) == 0)
		r = health_request(&c, agent, &ans);
	console_client_close(&c);
	if (r == 0) {
		ok = &ans.body.health_ok;
		r = a.json ? console_json_print_rows(TETHER_CTRL_PART_CHECK_ROW,
						     ok->checks, ok->nchecks,
						     sizeof(ok->checks[0]))
			   : print_health(ok, verbose);
		r = r == 0 ? 0 : CONSOLE_EXIT_FAIL;
	}
	tether_ctrl_msg_free(&ans);
	return r;
}
