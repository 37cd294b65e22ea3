/*
 * `tether agents [--json]` and `tether health [AGENT] [-v] [--json]`: the
 * enrolled agents the relay knows and their latest check results
 * (docs/protocol.md, "Enrolled agents"), one request each.  --json prints
 * the relay's array as it came; the tables are for people: states in
 * colour and outputs cut to the width only when standard output is a
 * terminal, so a pipe gets whole lines without escape sequences.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

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
static const char *state_color(const char *state)
{
	if (!stdout_tty() || getenv("NO_COLOR") != NULL || state == NULL)
		return NULL;
	if (strcmp(state, "OK") == 0)
		return "\033[32m";
	if (strcmp(state, "WARNING") == 0)
		return "\033[33m";
	if (strcmp(state, "CRITICAL") == 0)
		return "\033[1;31m";
	if (strcmp(state, "UNKNOWN") == 0)
		return "\033[35m";
	return NULL;
}

/* ISO-8601 UTC ("2024-05-01T10:00:00Z", fractions allowed) or Unix time. */
static bool parse_time(const json_t *v, time_t *out)
{
	struct tm tm;
	const char *s, *end;

	if (json_is_integer(v) || json_is_real(v)) {
		*out = (time_t)json_number_value(v);
		return true;
	}
	s = json_string_value(v);
	if (s == NULL)
		return false;
	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (end == NULL)
		return false;
	if (*end == '.')
		for (end++; *end >= '0' && *end <= '9'; end++)
			;
	if (*end != '\0' && strcmp(end, "Z") != 0 && strcmp(end, "+00:00"))
		return false;
	*out = timegm(&tm);
	return true;
}

void console_format_ago(const json_t *v, char *out, size_t len)
{
	time_t t, now = time(NULL);
	long long d;

	if (!parse_time(v, &t)) {
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

/* "k=v,k=v" from an object of labels (an array of strings also goes). */
static void labels_text(const json_t *labels, char *out, size_t len)
{
	const json_t *v;
	const char *k;
	size_t used = 0, i;
	int n;

	out[0] = '\0';
	if (json_is_array(labels)) {
		json_array_foreach(labels, i, v)
		{
			n = snprintf(
			    out + used, len - used, "%s%s", used > 0 ? "," : "",
			    json_string_value(v) ? json_string_value(v) : "?");
			if (n < 0 || (size_t)n >= len - used)
				return;
			used += (size_t)n;
		}
		return;
	}
	json_object_foreach((json_t *)labels, k, v)
	{
		n = snprintf(out + used, len - used, "%s%s=%s",
			     used > 0 ? "," : "", k,
			     json_string_value(v) ? json_string_value(v) : "?");
		if (n < 0 || (size_t)n >= len - used)
			return;
		used += (size_t)n;
	}
}

static void host_text(const json_t *facts, char *out, size_t len)
{
	const char *host = console_json_str(facts, "hostname");
	const char *os = console_json_str(facts, "os");

	if (host == NULL && os == NULL)
		snprintf(out, len, "-");
	else if (os == NULL)
		snprintf(out, len, "%s", host);
	else
		snprintf(out, len, "%s (%s)", host != NULL ? host : "?", os);
}

static int print_agents(const json_t *agents)
{
	static const char *const heads[] = {"NAME",	 "STATE",  "CONNECTED",
					    "LAST SEEN", "LABELS", "HOST/OS"};
	struct console_table t;
	char labels[512], host[512], ago[32];
	const json_t *a, *c;
	const char *worst;
	size_t i;
	int r;

	console_table_init(&t, 6, heads);
	json_array_foreach(agents, i, a)
	{
		worst = console_json_str(a, "worst");
		c = json_object_get(a, "connected");
		labels_text(json_object_get(a, "labels"), labels,
			    sizeof(labels));
		host_text(json_object_get(a, "facts"), host, sizeof(host));
		console_format_ago(json_object_get(a, "last_seen"), ago,
				   sizeof(ago));
		console_table_add(&t, console_json_str(a, "name"));
		console_table_add_color(&t, worst, state_color(worst));
		console_table_add(&t, json_is_true(c) ? "yes" : "no");
		console_table_add(&t, json_is_true(c) ? "now" : ago);
		console_table_add(&t, labels);
		console_table_add(&t, host);
	}
	r = console_table_print(&t, 0, 0);
	console_table_free(&t);
	return r;
}

/* One perfdata value: a number as the plugin wrote it, else empty. */
static void perf_value(const json_t *v, char *out, size_t len)
{
	if (json_is_integer(v))
		snprintf(out, len, "%" JSON_INTEGER_FORMAT,
			 json_integer_value(v));
	else if (json_is_real(v))
		snprintf(out, len, "%g", json_real_value(v));
	else if (json_is_string(v))
		snprintf(out, len, "%s", json_string_value(v));
	else
		out[0] = '\0';
}

/* "perfdata: label=VALUEUOM;warn;crit;min;max ..." as Nagios writes it. */
static char *perf_text(const json_t *perf)
{
	static const char *const keys[] = {"warn", "crit", "min", "max"};
	char line[4096], val[64];
	const char *uom, *label;
	const json_t *p;
	size_t used, i, k;
	int n;

	if (json_array_size(perf) == 0)
		return NULL;
	used = (size_t)snprintf(line, sizeof(line), "perfdata:");
	json_array_foreach(perf, i, p)
	{
		label = console_json_str(p, "label");
		uom = console_json_str(p, "uom");
		perf_value(json_object_get(p, "value"), val, sizeof(val));
		n = snprintf(line + used, sizeof(line) - used, " %s=%s%s",
			     label != NULL ? label : "?", val,
			     uom != NULL ? uom : "");
		if (n < 0 || (size_t)n >= sizeof(line) - used)
			break;
		used += (size_t)n;
		for (k = 0; k < 4; k++) {
			perf_value(json_object_get(p, keys[k]), val,
				   sizeof(val));
			n = snprintf(line + used, sizeof(line) - used, ";%s",
				     val);
			if (n < 0 || (size_t)n >= sizeof(line) - used)
				break;
			used += (size_t)n;
		}
		/* Trailing empty fields say nothing. */
		while (used > 0 && line[used - 1] == ';')
			line[--used] = '\0';
	}
	return strdup(line);
}

static int print_health(const json_t *checks, bool verbose)
{
	static const char *const heads[] = {"AGENT", "CHECK", "STATE",
					    "TYPE",  "SINCE", "OUTPUT"};
	struct console_table t;
	char type[64], since[32];
	const json_t *c;
	const char *state, *ty;
	size_t i;
	int r;

	console_table_init(&t, 6, heads);
	json_array_foreach(checks, i, c)
	{
		state = console_json_str(c, "state");
		ty = console_json_str(c, "type");
		if (ty != NULL && strcmp(ty, "SOFT") == 0)
			snprintf(
			    type, sizeof(type),
			    "SOFT %" JSON_INTEGER_FORMAT
			    "/%" JSON_INTEGER_FORMAT,
			    json_integer_value(json_object_get(c, "attempt")),
			    json_integer_value(
				json_object_get(c, "max_attempts")));
		else
			snprintf(type, sizeof(type), "%s",
				 ty != NULL ? ty : "-");
		/* The relay holds notes back while a check flaps: say so. */
		/* A boolean in ctrl's schema; relays before it sent 1. */
		if (json_is_true(json_object_get(c, "flapping")) ||
		    json_integer_value(json_object_get(c, "flapping")) != 0) {
			size_t used = strlen(type);

			snprintf(type + used, sizeof(type) - used,
				 " flapping");
		}
		console_format_ago(json_object_get(c, "since"), since,
				   sizeof(since));
		console_table_add(&t, console_json_str(c, "agent"));
		console_table_add(&t, console_json_str(c, "check"));
		console_table_add_color(&t, state, state_color(state));
		console_table_add(&t, type);
		console_table_add(&t, since);
		console_table_add(&t, console_json_str(c, "output"));
		if (verbose)
			console_table_extra(
			    &t, perf_text(json_object_get(c, "perfdata")));
	}
	r = console_table_print(&t, 0, stdout_tty() ? stdout_cols() : 0);
	console_table_free(&t);
	return r;
}

/* --json and --help, the only options of both commands (and -v). */
static int parse(const char *cmd, const char *usage, int argc, char **argv,
		 bool *json, bool *verbose)
{
	static const struct option opts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int opt;

	optind = 0;
	while ((opt = getopt_long(argc, argv, verbose != NULL ? ":jvh" : ":jh",
				  opts, NULL)) != -1) {
		switch (opt) {
		case 'j':
			*json = true;
			break;
		case 'v':
			if (verbose == NULL)
				return console_bad_option(cmd, '?', argv);
			*verbose = true;
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			return console_bad_option(cmd, opt, argv);
		}
	}
	return -1;
}

int console_agents(int argc, char **argv)
{
	const json_t *agents;
	json_t *ans = NULL;
	bool json = false;
	int r;

	r = parse("agents", agents_usage, argc, argv, &json, NULL);
	if (r >= 0)
		return r;
	if (optind != argc)
		return console_usage_error("agents", "agents takes no operand");
	if (console_call(json_pack("{s:s}", "t", "agents"), NULL, &ans) != 0)
		return CONSOLE_EXIT_FAIL;
	agents = json_object_get(ans, "agents");
	if (!json_is_array(agents)) {
		console_error("the relay sent an incomplete answer");
		r = -1;
	} else {
		r = json ? console_json_print(agents) : print_agents(agents);
	}
	json_decref(ans);
	return r == 0 ? 0 : CONSOLE_EXIT_FAIL;
}

/* Is name among the enrolled agents?  1 yes, 0 no, -1 once reported. */
static int agent_known(struct console_client *c, const char *name)
{
	const json_t *a;
	json_t *ans = NULL;
	size_t i;
	int r;

	r = console_request(c, json_pack("{s:s}", "t", "agents"), &ans);
	if (r == CONSOLE_EREMOTE)
		console_report_answer(ans, NULL);
	if (r != 0) {
		json_decref(ans);
		return -1;
	}
	r = 0;
	json_array_foreach(json_object_get(ans, "agents"), i, a)
	{
		const char *n = console_json_str(a, "name");

		if (n != NULL && strcmp(n, name) == 0)
			r = 1;
	}
	json_decref(ans);
	return r;
}

/*
 * The health request on an open connection: 0 with the checks in *ans,
 * or the exit status once reported (1 for an agent nobody enrolled).
 */
static int health_request(struct console_client *c, const char *agent,
			  json_t **ans)
{
	const char *code;
	json_t *req;
	int r;

	req = agent != NULL
		  ? json_pack("{s:s, s:s}", "t", "health", "agent", agent)
		  : json_pack("{s:s}", "t", "health");
	r = console_request(c, req, ans);
	if (r == CONSOLE_EREMOTE) {
		code = console_json_str(*ans, "code");
		if (agent != NULL && code != NULL &&
		    strcmp(code, "not_found") == 0) {
			fputs("tether: no such agent ", stderr);
			console_print_clean(stderr, agent);
			fputc('\n', stderr);
			r = 1;
		} else {
			console_report_answer(*ans, NULL);
			r = CONSOLE_EXIT_FAIL;
		}
	} else if (r != 0) {
		r = CONSOLE_EXIT_FAIL;
	} else if (!json_is_array(json_object_get(*ans, "checks"))) {
		console_error("the relay sent an incomplete answer");
		r = CONSOLE_EXIT_FAIL;
	} else if (agent != NULL &&
		   json_array_size(json_object_get(*ans, "checks")) == 0) {
		/* No checks: an agent without any, or no agent at all. */
		r = agent_known(c, agent);
		if (r == 0) {
			fputs("tether: no such agent ", stderr);
			console_print_clean(stderr, agent);
			fputc('\n', stderr);
		}
		r = r == 1 ? 0 : r == 0 ? 1 : CONSOLE_EXIT_FAIL;
	}
	if (r != 0) {
		json_decref(*ans);
		*ans = NULL;
	}
	return r;
}

int console_health(int argc, char **argv)
{
	struct console_config cfg;
	struct console_client c;
	const char *agent = NULL;
	json_t *ans = NULL;
	bool json = false, verbose = false;
	int r;

	r = parse("health", health_usage, argc, argv, &json, &verbose);
	if (r >= 0)
		return r;
	if (argc - optind > 1)
		return console_usage_error("health", "expected at most one "
						     "AGENT");
	if (optind < argc)
		agent = argv[optind];
	r = CONSOLE_EXIT_FAIL;
	if (console_connect(&c, &cfg) == 0)
		r = health_request(&c, agent, &ans);
	console_client_close(&c);
	console_config_clear(&cfg);
	if (r != 0)
		return r;
	if (json)
		r = console_json_print(json_object_get(ans, "checks"));
	else
		r = print_health(json_object_get(ans, "checks"), verbose);
	json_decref(ans);
	return r == 0 ? 0 : CONSOLE_EXIT_FAIL;
}
