/*
 * End-to-end: the whole life of a ticket as a technician and a customer
 * see it (docs/cli.md): relay init, technicians, login, ticket, invite,
 * agent join, remote commands with their output, input and exit status,
 * the audit trail, and closing the ticket, which ends the agent.
 */
#include <dirent.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "harness.h"

TestSuite(flow, .init = h_setup, .fini = h_teardown);

static bool matches(const char *re, const char *s)
{
	regex_t rx;
	bool ok;

	cr_assert(regcomp(&rx, re, REG_EXTENDED | REG_NOSUB) == 0, "regcomp");
	ok = regexec(&rx, s, 0, NULL, 0) == 0;
	regfree(&rx);
	return ok;
}

/* `ticket list --status S --json` holds id?  Accepts [..] or {tickets}. */
static bool list_has(const char *status, const char *id)
{
	json_error_t jerr;
	struct h_res res;
	json_t *j, *arr, *t;
	bool found = false;
	size_t i;

	h_console_ok(&res, NULL, "ticket", "list", "--status", status, "--json",
		     NULL);
	j = json_loads(res.out, 0, &jerr);
	cr_assert(j, "ticket list --json: not JSON: %s", res.out);
	arr = json_is_array(j) ? j : json_object_get(j, "tickets");
	cr_assert(json_is_array(arr), "ticket list --json: no array: %s",
		  res.out);
	json_array_foreach (arr, i, t) {
		const char *tid = json_string_value(json_object_get(t, "id"));

		if (tid && strcmp(tid, id) == 0)
			found = true;
	}
	json_decref(j);
	h_res_free(&res);
	return found;
}

/* A technician added with the relay's CLI can log in with its token. */
static void check_technician(const struct h_relay *r)
{
	char cfg[H_PATH_MAX], env[H_PATH_MAX + 32], want[128];
	char token[H_TOKEN_MAX];
	const char *envv[] = {env, NULL};
	struct h_opts o = {.env = envv};
	struct h_res res;

	h_technician_add(r, "bob", "technician", token, sizeof(token));
	/* Bob has his own console configuration. */
	h_path(cfg, sizeof(cfg), "bob-config");
	cr_assert(mkdir(cfg, 0700) == 0, "mkdir %s", cfg);
	snprintf(env, sizeof(env), "XDG_CONFIG_HOME=%s", cfg);
	h_console(&res, &o, "login", r->addr, "--token", token, "--fingerprint",
		  r->fingerprint, NULL);
	h_expect(&res, 0, NULL, NULL, "tether login (bob)");
	snprintf(want, sizeof(want), "Logged in to %s as bob (technician)",
		 r->addr);
	cr_assert(strstr(res.out, want), "login said \"%s\", expected \"%s\"",
		  res.out, want);
	h_res_free(&res);
	h_console(&res, &o, "ticket", "list", NULL);
	h_expect(&res, 0, NULL, NULL, "tether ticket list (bob)");
	h_res_free(&res);
}

static void expect_mode(const char *path, mode_t mode)
{
	struct stat st;

	cr_assert(stat(path, &st) == 0, "%s is missing", path);
	cr_assert_eq(st.st_mode & 07777, mode, "%s has mode %o, expected %o",
		     path, (unsigned)(st.st_mode & 07777), (unsigned)mode);
}

/* Secrets on disk are private: the relay's key, the console's state. */
static void check_modes(const struct h_relay *r)
{
	char p[2 * H_PATH_MAX], dir[H_PATH_MAX + 64];
	struct dirent *e;
	int files = 0;
	DIR *d;

	expect_mode(r->data, 0700);
	snprintf(p, sizeof(p), "%s/key.pem", r->data);
	expect_mode(p, 0600);
	snprintf(p, sizeof(p), "%s/config/tether/config.json", h_dir());
	expect_mode(p, 0600);
	snprintf(dir, sizeof(dir), "%s/config/tether/sessions", h_dir());
	expect_mode(dir, 0700);
	d = opendir(dir);
	cr_assert(d, "cannot list %s", dir);
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		cr_assert(snprintf(p, sizeof(p), "%s/%s", dir, e->d_name) <
			      (int)sizeof(p),
			  "path too long");
		expect_mode(p, 0600);
		files++;
	}
	closedir(d);
	cr_assert(files > 0, "no session file in %s after an invite", dir);
}

/* uname -a on the agent equals uname -a here (same machine). */
static void check_uname(const char *ticket)
{
	const char *local_argv[] = {"uname", "-a", NULL};
	const char *cmd[] = {"uname", "-a", NULL};
	struct h_res local, res;

	h_run(&local, NULL, local_argv);
	h_expect(&local, 0, NULL, NULL, "local uname -a");
	h_exec(&res, NULL, ticket, cmd);
	h_expect(&res, 0, local.out, "", "tether exec T-1 -- uname -a");
	h_res_free(&local);
	h_res_free(&res);
}

static void check_exec(const char *ticket)
{
	const char *streams[] = {"sh", "-c", "echo out; echo err >&2; exit 3",
				 NULL};
	const char *cat[] = {"cat", NULL};
	const char *term[] = {"sh", "-c", "kill -TERM $$", NULL};
	struct h_opts in = {.stdin_data = "hello\n", .stdin_len = 6};
	struct h_res res;

	h_exec(&res, NULL, ticket, streams);
	h_expect(&res, 3, "out\n", "err\n",
		 "tether exec -- sh -c 'echo out; "
		 "echo err >&2; exit 3'");
	h_res_free(&res);

	h_exec(&res, &in, ticket, cat);
	h_expect(&res, 0, "hello\n", "", "tether exec -- cat <<< hello");
	h_res_free(&res);

	h_exec(&res, NULL, ticket, term);
	h_expect(&res, 128 + SIGTERM, "", NULL,
		 "tether exec -- sh -c 'kill -TERM $$'");
	h_res_free(&res);
}

/* Two commands at once on one session, each with its own output. */
static void check_concurrent(const char *ticket)
{
	const char *second[] = {"echo", "second", NULL};
	struct h_proc bg;
	struct h_res res;
	char *out;
	int st;

	h_console_start(&bg, "exec-bg", "exec", ticket, "--", "sh", "-c",
			"sleep 2; echo first", NULL);
	h_exec(&res, NULL, ticket, second);
	h_expect(&res, 0, "second\n", "",
		 "tether exec -- echo second "
		 "(while another exec runs)");
	h_res_free(&res);
	cr_assert(h_proc_alive(&bg),
		  "the first exec should still be running (sleep 2)");
	st = h_proc_wait(&bg, 15000);
	out = h_proc_output(&bg);
	cr_assert_eq(st, 0, "background exec: status %d: %s", st, out);
	cr_assert(h_file_contains(bg.out, "first\n", 6),
		  "background exec output: %s", out);
	free(out);
}

static void check_audit(const char *ticket)
{
	static const char *const events[] = {
	    "ticket_created", "invite_created", "agent_joined",
	    "paired",	      "channel_open",	"channel_close",
	};
	json_t *t = h_ticket_show(ticket);
	char *names = h_audit_names(t);

	cr_assert(json_array_size(json_object_get(t, "audit")) > 0,
		  "ticket show: empty audit trail");
	for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++)
		cr_assert(h_audit_has(t, events[i]),
			  "audit of %s lacks \"%s\": %s", ticket, events[i],
			  names);
	free(names);
	json_decref(t);
}

Test(flow, full, .timeout = 180)
{
	struct h_relay r;
	struct h_proc agent;
	struct h_res res;
	char want[256], code[H_CODE_MAX], *out;
	json_t *t;
	int st;

	h_relay_up(&r, NULL);
	check_technician(&r);

	h_console(&res, NULL, "login", r.addr, "--token", r.admin_token,
		  "--fingerprint", r.fingerprint, NULL);
	h_expect(&res, 0, NULL, NULL, "tether login");
	snprintf(want, sizeof(want), "Logged in to %s as admin (admin)",
		 r.addr);
	cr_assert(strstr(res.out, want), "login said \"%s\", expected \"%s\"",
		  res.out, want);
	h_res_free(&res);

	h_console(&res, NULL, "ticket", "new", "printer on fire", "--customer",
		  "ACME", NULL);
	h_expect(&res, 0, "T-1\n", NULL, "tether ticket new");
	h_res_free(&res);

	h_console(&res, NULL, "invite", "T-1", NULL);
	h_expect(&res, 0, NULL, NULL, "tether invite T-1");
	cr_assert(matches("^[1-9][0-9]*-[a-z]+-[a-z]+-[a-z]+\n$", res.out),
		  "invite printed \"%s\", expected a code alone on stdout",
		  res.out);
	cr_assert(res.err_len > 0, "invite: no hint for the customer on "
				   "stderr");
	snprintf(code, sizeof(code), "%s", h_chomp(res.out));
	h_res_free(&res);

	check_modes(&r);

	h_agent_start(&agent, &r, code, NULL);
	h_wait_joined("T-1", 15000, &agent);

	check_uname("T-1");
	cr_assert(h_proc_wait_output(&agent,
				     "paired with admin for T-1 "
				     "\"printer on fire\"",
				     5000),
		  "agent did not report the pairing: %s",
		  h_proc_output(&agent));
	cr_assert(h_proc_wait_output(&agent, "admin runs: uname -a", 5000),
		  "agent did not report the command: %s",
		  h_proc_output(&agent));
	check_exec("T-1");
	check_concurrent("T-1");
	check_audit("T-1");

	h_console(&res, NULL, "ticket", "close", "T-1", "--resolution", "done",
		  NULL);
	h_expect(&res, 0, NULL, NULL, "tether ticket close T-1");
	h_res_free(&res);
	st = h_proc_wait(&agent, 10000);
	out = h_proc_output(&agent);
	cr_assert_eq(st, 0,
		     "agent after ticket close: status %d (-1: still "
		     "running after 10 s): %s",
		     st, out);
	free(out);

	h_console(&res, NULL, "ticket", "list", NULL);
	h_expect(&res, 0, NULL, NULL, "tether ticket list");
	cr_assert(strstr(res.out, "T-1") && strstr(res.out, "printer on fire"),
		  "ticket list does not show T-1: %s", res.out);
	h_res_free(&res);
	cr_assert(list_has("closed", "T-1"), "T-1 not in closed tickets");
	cr_assert(!list_has("open", "T-1"), "T-1 still in open tickets");
	t = h_ticket_show("T-1");
	cr_assert_str_eq(json_string_value(json_object_get(t, "status")),
			 "closed", "status of closed T-1");
	cr_assert_str_eq(json_string_value(json_object_get(t, "resolution")),
			 "done", "resolution of T-1");
	cr_assert(h_audit_has(t, "ticket_closed"), "no ticket_closed event");
	json_decref(t);

	h_relay_stop(&r);
}

/* Without a terminal there is nobody to ask: login must insist. */
Test(flow, login_needs_fingerprint, .timeout = 60)
{
	struct h_relay r;
	struct h_res res;

	h_relay_up(&r, NULL);
	h_console(&res, NULL, "login", r.addr, "--token", r.admin_token, NULL);
	h_expect_fail(&res, 255,
		      "without a terminal; check it and pass --fingerprint",
		      "tether login without --fingerprint or terminal");
	cr_assert(strstr(res.err, r.fingerprint),
		  "the refusal does not show the fingerprint %s: %s",
		  r.fingerprint, res.err);
	h_res_free(&res);

	/* Nothing was pinned or saved. */
	h_console(&res, NULL, "ticket", "list", NULL);
	h_expect_fail(&res, 255, "not logged in",
		      "tether ticket list after a refused login");
	h_res_free(&res);
	h_relay_stop(&r);
}

Test(flow, help, .timeout = 30)
{
	struct h_res res;

	h_console(&res, NULL, "--help", NULL);
	h_expect(&res, 0, NULL, NULL, "tether --help");
	cr_assert(strstr(res.out, "login") && strstr(res.out, "exec"),
		  "tether --help does not list the commands: %s", res.out);
	h_res_free(&res);
}

/*
 * Runs `exec -- echo back` until it works.  While the agent is still
 * reconnecting the console may only say that it is not connected.
 */
static void exec_until_back(const char *ticket, int timeout_ms)
{
	const char *cmd[] = {"echo", "back", NULL};
	int tries = timeout_ms / 500;
	struct h_res res;

	for (int i = 0;; i++) {
		h_exec(&res, NULL, ticket, cmd);
		if (res.status == 0)
			break;
		cr_assert(strstr(res.err, "is not connected") && i < tries,
			  "exec while the agent reconnects: status %d: %s",
			  res.status, res.err);
		h_res_free(&res);
		usleep(500 * 1000);
	}
	h_expect(&res, 0, "back\n", "", "tether exec -- echo back");
	h_res_free(&res);
}

/* The agent rides out a relay restart without a new code. */
Test(flow, relay_restart, .timeout = 90)
{
	struct h_session s;

	h_session_start(&s, "restart", NULL);
	exec_until_back(s.ticket, 0);
	h_relay_stop(&s.relay);
	h_relay_start(&s.relay, s.relay.addr, NULL);
	exec_until_back(s.ticket, 30000);
	cr_assert(h_proc_alive(&s.agent), "agent gone after the restart");
	h_relay_stop(&s.relay);
}

/* Ctrl-C at the customer's end ends the session for everyone. */
Test(flow, customer_leaves, .timeout = 60)
{
	const char *cmd[] = {"true", NULL};
	struct h_session s;
	struct h_res res;
	char want[192];
	char *out;
	int st;

	h_session_start(&s, "leaving", NULL);
	exec_until_back(s.ticket, 0);
	h_proc_signal(&s.agent, SIGINT);
	st = h_proc_wait(&s.agent, 10000);
	out = h_proc_output(&s.agent);
	cr_assert_eq(st, 0,
		     "agent after Ctrl-C: status %d (-1: still "
		     "running after 10 s): %s",
		     st, out);
	free(out);
	/* Leaving ends the session: the ticket needs a new invite. */
	h_exec(&res, NULL, s.ticket, cmd);
	snprintf(want, sizeof(want),
		 "tether: the customer ended the session on %s at ", s.ticket);
	h_expect_fail(&res, 255, want, "exec after the customer left");
	snprintf(want, sizeof(want),
		 " UTC (run: tether invite %s for a new code)\n", s.ticket);
	cr_assert(strstr(res.err, want) != NULL &&
		      strchr(res.err, '\n') == res.err + strlen(res.err) - 1,
		  "exec after the customer left: one line ending \"%s\" "
		  "expected: %s",
		  want, res.err);
	h_res_free(&res);
	/* Every command that needs the session says the same. */
	h_console(&res, NULL, "diag", s.ticket, NULL);
	h_expect_fail(&res, 255, "tether: the customer ended the session on ",
		      "diag after the customer left");
	h_res_free(&res);
	h_relay_stop(&s.relay);
}

/* A command cut off by a dying agent is never reported as a clean exit. */
Test(flow, agent_killed_mid_exec, .timeout = 60)
{
	const char *cmd[] = {"true", NULL};
	struct h_session s;
	struct h_proc bg;
	struct h_res res;
	char want[128], *out;
	int st;

	h_session_start(&s, "killed", NULL);
	h_console_start(&bg, "exec-bg", "exec", s.ticket, "--", "sh", "-c",
			"echo started; sleep 30", NULL);
	cr_assert(h_proc_wait_output(&bg, "started", 10000),
		  "the command did not start: %s", h_proc_output(&bg));
	h_proc_kill(&s.agent);
	st = h_proc_wait(&bg, 10000);
	out = h_proc_output(&bg);
	cr_assert_eq(st, 255,
		     "exec whose agent died: status %d, expected "
		     "255 (-1: still running after 10 s): %s",
		     st, out);
	free(out);

	h_exec(&res, NULL, s.ticket, cmd);
	snprintf(want, sizeof(want),
		 "tether: the agent for %s is not "
		 "connected",
		 s.ticket);
	h_expect_fail(&res, 255, want, "tether exec after the agent died");
	h_res_free(&res);
	h_relay_stop(&s.relay);
}

/*
 * Two commands started at once right after the customer joined: both race
 * to finish the pairing.  One confirms, the other must wait for it and use
 * the stored key, not fail (it used to, about half the time).
 */
Test(flow, first_commands_race_to_pair, .timeout = 90)
{
	struct h_proc a, b;
	struct h_session s;
	char *out;
	int st;

	h_session_start(&s, "two at once", NULL);
	h_console_start(&a, "exec-a", "exec", s.ticket, "--", "echo", "one",
			NULL);
	h_console_start(&b, "exec-b", "exec", s.ticket, "--", "echo", "two",
			NULL);
	st = h_proc_wait(&a, 30000);
	out = h_proc_output(&a);
	cr_assert(st == 0 && strstr(out, "one\n") != NULL,
		  "first exec: status %d: %s", st, out);
	free(out);
	st = h_proc_wait(&b, 30000);
	out = h_proc_output(&b);
	cr_assert(st == 0 && strstr(out, "two\n") != NULL,
		  "second exec: status %d: %s", st, out);
	free(out);
	h_proc_kill(&s.agent);
	h_relay_stop(&s.relay);
}
