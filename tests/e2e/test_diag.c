/*
 * End-to-end: `tether diag` against a real agent (docs/cli.md): the bundle
 * has every section docs/protocol.md lists, the summary starts with the
 * problems and shows the root filesystem, -o writes a private JSON file,
 * and the bundle is saved on the ticket, where --saved finds it again.
 * Also the console's side of the enrolled-agent listings on a relay that
 * has none.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "harness.h"

TestSuite(diag, .init = h_setup, .fini = h_teardown);

/* Collecting runs tools on the agent's machine: give it time. */
#define DIAG_TIMEOUT_MS 120000

static const char *const section_names[] = {
    "os",	 "uptime",  "cpu",    "memory",	  "disks",
    "mounts",	 "network", "routes", "dns",	  "listening",
    "processes", "systemd", "logs",   "packages", "time",
};

static json_t *parse_bundle(const char *text, const char *what)
{
	json_error_t jerr;
	json_t *b = json_loads(text, 0, &jerr);

	cr_assert(json_is_object(b), "%s: not a JSON object (%s): %.400s", what,
		  jerr.text, text);
	return b;
}

/* The shape docs/protocol.md gives a bundle, with every section there. */
static void check_bundle(const json_t *b, const char *what)
{
	const json_t *sections = json_object_get(b, "sections");
	const json_t *problems = json_object_get(b, "problems"), *p;
	size_t i;

	cr_assert_eq(json_integer_value(json_object_get(b, "version")), 1,
		     "%s: version is not 1", what);
	cr_assert(json_is_string(json_object_get(b, "collected_at")),
		  "%s: no collected_at", what);
	cr_assert(json_is_integer(json_object_get(b, "duration_ms")),
		  "%s: no duration_ms", what);
	cr_assert(json_is_array(problems), "%s: no problems array", what);
	json_array_foreach (problems, i, p) {
		const char *sev =
		    json_string_value(json_object_get(p, "severity"));

		cr_assert(sev && (strcmp(sev, "critical") == 0 ||
				  strcmp(sev, "warning") == 0),
			  "%s: problem %zu has severity %s", what, i,
			  sev ? sev : "(none)");
		cr_assert(json_is_string(json_object_get(p, "what")),
			  "%s: problem %zu says nothing", what, i);
	}
	cr_assert(json_is_object(sections), "%s: no sections object", what);
	for (i = 0; i < sizeof(section_names) / sizeof(section_names[0]); i++)
		cr_assert(
		    json_is_object(json_object_get(sections, section_names[i])),
		    "%s: section %s is missing", what, section_names[i]);
}

static const char *collected_at(const json_t *b)
{
	return json_string_value(json_object_get(b, "collected_at"));
}

Test(diag, json_bundle_saved_on_ticket, .timeout = 300)
{
	struct h_opts o = {.timeout_ms = DIAG_TIMEOUT_MS};
	struct h_session s;
	struct h_res res, saved;
	json_t *b, *b2, *t;
	char want[64];

	h_session_start(&s, "diag json", NULL);
	h_console(&res, &o, "diag", s.ticket, "--json", NULL);
	h_expect(&res, 0, NULL, NULL, "tether diag --json");
	b = parse_bundle(res.out, "tether diag --json");
	check_bundle(b, "tether diag --json");
	/* With --json, stdout is the bundle alone: the note goes to stderr. */
	snprintf(want, sizeof(want), "saved on %s (", s.ticket);
	cr_assert(strstr(res.err, want), "no \"%s\" on stderr: %s", want,
		  res.err);

	h_console(&saved, NULL, "diag", s.ticket, "--saved", "--json", NULL);
	h_expect(&saved, 0, NULL, NULL, "tether diag --saved --json");
	b2 = parse_bundle(saved.out, "tether diag --saved --json");
	cr_assert_str_eq(collected_at(b2), collected_at(b),
			 "the saved bundle is another one");
	check_bundle(b2, "tether diag --saved --json");

	/* The relay notes the attachment on the ticket. */
	t = h_ticket_show(s.ticket);
	cr_assert(h_audit_has(t, "diag_attached"),
		  "no diag_attached event in the audit: %s", h_audit_names(t));
	json_decref(t);

	json_decref(b);
	json_decref(b2);
	h_res_free(&res);
	h_res_free(&saved);
}

Test(diag, summary_and_output_file, .timeout = 300)
{
	struct h_opts o = {.timeout_ms = DIAG_TIMEOUT_MS};
	char path[H_PATH_MAX], want[64];
	struct h_session s;
	struct h_res res, saved;
	struct stat st;
	json_t *b, *b2;
	char *text;

	h_session_start(&s, "diag summary", NULL);
	h_path(path, sizeof(path), "bundle.json");
	h_console(&res, &o, "diag", s.ticket, "-o", path, NULL);
	h_expect(&res, 0, NULL, NULL, "tether diag -o FILE");

	/* Problems first, whatever they are, and the root filesystem. */
	cr_assert(strncmp(res.out, "no problems found\n", 18) == 0 ||
		      strncmp(res.out, "CRITICAL", 8) == 0 ||
		      strncmp(res.out, "WARNING", 7) == 0,
		  "the summary does not start with the problems:\n%s", res.out);
	cr_assert(strstr(res.out, "\nDisks:\n"), "no disks table:\n%s",
		  res.out);
	cr_assert(strstr(res.out, "\n  /  "), "no root mount in:\n%s", res.out);
	/* Nothing meant for a terminal when there is none. */
	cr_assert(!strchr(res.out, '\033') && !strchr(res.err, '\033'),
		  "escape sequences without a terminal:\n%s%s", res.out,
		  res.err);
	snprintf(want, sizeof(want), "saved on %s (", s.ticket);
	cr_assert(strstr(res.out, want), "no \"%s\" in:\n%s", want, res.out);

	cr_assert(stat(path, &st) == 0, "-o did not write %s", path);
	cr_assert_eq(st.st_mode & 0777, 0600, "%s has mode %o, expected 600",
		     path, (unsigned)(st.st_mode & 0777));
	text = h_read_file(path, NULL);
	cr_assert(text, "cannot read %s", path);
	b = parse_bundle(text, "the -o file");
	check_bundle(b, "the -o file");

	/* The newest bundle on the ticket is this one. */
	h_console(&saved, NULL, "diag", s.ticket, "--saved", "--json", NULL);
	h_expect(&saved, 0, NULL, NULL, "tether diag --saved --json");
	b2 = parse_bundle(saved.out, "tether diag --saved --json");
	cr_assert_str_eq(collected_at(b2), collected_at(b),
			 "--saved shows another bundle than -o wrote");
	h_res_free(&saved);

	/* The saved one shows as a summary too, with no session needed. */
	h_proc_kill(&s.agent);
	h_console(&saved, NULL, "diag", s.ticket, "--saved", NULL);
	h_expect(&saved, 0, NULL, NULL, "tether diag --saved");
	cr_assert(strstr(saved.out, "\n  /  "), "no root mount in:\n%s",
		  saved.out);

	json_decref(b);
	json_decref(b2);
	free(text);
	h_res_free(&res);
	h_res_free(&saved);
}

Test(diag, nothing_saved_and_usage)
{
	struct h_relay r;
	struct h_res res;
	char ticket[H_ID_MAX];

	h_relay_up(&r, NULL);
	h_login(&r);
	h_ticket_new("no diag yet", ticket, sizeof(ticket));

	h_console(&res, NULL, "diag", ticket, "--saved", NULL);
	h_expect_fail(&res, 1, "no diagnostics saved on", "diag --saved");
	h_res_free(&res);
	/* A ticket that does not exist is not one without diagnostics. */
	h_console(&res, NULL, "diag", "T-999", "--saved", NULL);
	h_expect(&res, 255, "", "tether: no such ticket T-999\n",
		 "diag T-999 --saved");
	h_res_free(&res);
	/* A live diag needs an agent on the ticket. */
	h_console(&res, NULL, "diag", ticket, NULL);
	h_expect_fail(&res, 255, "tether: ", "diag without an agent");
	h_res_free(&res);
	h_console(&res, NULL, "diag", NULL);
	h_expect_fail(&res, 2, "expected one T-N", "diag without T-N");
	h_res_free(&res);
	h_console(&res, NULL, "diag", "x-1", NULL);
	h_expect_fail(&res, 2, "bad ticket", "diag x-1");
	h_res_free(&res);
}

Test(diag, no_enrolled_agents)
{
	struct h_relay r;
	struct h_res res;
	json_t *j;

	h_relay_up(&r, NULL);
	h_login(&r);

	h_console_ok(&res, NULL, "agents", "--json", NULL);
	j = json_loads(res.out, 0, NULL);
	cr_assert(json_is_array(j) && json_array_size(j) == 0,
		  "agents --json on a relay without agents: %s", res.out);
	json_decref(j);
	h_res_free(&res);

	/* The table has its header and nothing else. */
	h_console_ok(&res, NULL, "agents", NULL);
	cr_assert(strncmp(res.out, "NAME", 4) == 0 &&
		      strchr(res.out, '\n') == res.out + strlen(res.out) - 1,
		  "agents: %s", res.out);
	h_res_free(&res);

	h_console_ok(&res, NULL, "health", "--json", NULL);
	j = json_loads(res.out, 0, NULL);
	cr_assert(json_is_array(j) && json_array_size(j) == 0,
		  "health --json on a relay without agents: %s", res.out);
	json_decref(j);
	h_res_free(&res);

	h_console(&res, NULL, "health", "nosuch", NULL);
	h_expect_fail(&res, 1, "no such agent nosuch", "health nosuch");
	h_res_free(&res);
}
