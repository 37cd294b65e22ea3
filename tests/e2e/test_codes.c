/*
 * End-to-end: what happens to a session code that is wrong, expired, used
 * twice or guessed at, and to commands for tickets that cannot run them
 * (docs/cli.md messages and exit codes, docs/protocol.md pairing).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include <tether/code.h>

#include "harness.h"

TestSuite(codes, .init = h_setup, .fini = h_teardown);

#define AGENT_EXIT_MS 10000

/* A relay with the admin logged in and ticket T-1 open. */
static void relay_with_ticket(struct h_relay *r, char *ticket, size_t len)
{
	h_relay_up(r, NULL);
	h_login(r);
	h_ticket_new("cannot print", ticket, len);
}

/*
 * Waits for the agent to end with status; its output must contain part,
 * the reason (docs/cli.md words it).
 */
static void expect_agent_exit(struct h_proc *a, int status, const char *part,
			      const char *what)
{
	int st = h_proc_wait(a, AGENT_EXIT_MS);
	char *out = h_proc_output(a);

	cr_assert_eq(st, status,
		     "%s: agent status %d, expected %d (-1: still running "
		     "after %d ms): %s",
		     what, st, status, AGENT_EXIT_MS, out);
	cr_assert(strstr(out, part), "%s: agent output lacks \"%s\": %s", what,
		  part, out);
	free(out);
}

/* The same nameplate with the first word replaced by another one. */
static void wrong_code(const char *code, char *out, size_t len)
{
	const char *w1 = strchr(code, '-');
	const char *w2;
	const char *other;

	cr_assert(w1, "code %s", code);
	w2 = strchr(w1 + 1, '-');
	cr_assert(w2, "code %s", code);
	other = tether_code_word(0);
	if (strncmp(w1 + 1, other, (size_t)(w2 - w1 - 1)) == 0 &&
	    strlen(other) == (size_t)(w2 - w1 - 1))
		other = tether_code_word(1);
	snprintf(out, len, "%.*s-%s%s", (int)(w1 - code), code, other, w2);
}

static bool has_session_state(json_t *t, const char *state)
{
	json_t *s;
	size_t i;

	json_array_foreach (json_object_get(t, "sessions"), i, s) {
		const char *st = json_string_value(json_object_get(s, "state"));

		if (st && strcmp(st, state) == 0)
			return true;
	}
	return false;
}

Test(codes, wrong_code, .timeout = 90)
{
	const char *cmd[] = {"true", NULL};
	char ticket[H_ID_MAX], code[H_CODE_MAX], bad[H_CODE_MAX], *names;
	char want[192];
	struct h_relay r;
	struct h_proc a;
	struct h_res res;
	json_t *t;

	relay_with_ticket(&r, ticket, sizeof(ticket));
	h_invite(ticket, NULL, code, sizeof(code));
	wrong_code(code, bad, sizeof(bad));
	cr_assert_str_neq(code, bad);

	/* The relay cannot tell: the nameplate is right, so it joins. */
	h_agent_start(&a, &r, bad, NULL);
	h_wait_joined(ticket, 15000, &a);

	h_exec(&res, NULL, ticket, cmd);
	h_expect_fail(&res, 255, "key confirmation failed",
		      "tether exec after a join with a wrong code");
	h_res_free(&res);
	expect_agent_exit(&a, 1, "tether-agent: session ended: wrong code",
			  "agent with a wrong code");

	t = h_ticket_show(ticket);
	names = h_audit_names(t);
	cr_assert(h_audit_has(t, "pake") || h_audit_has(t, "fail"),
		  "no failure in the audit: %s", names);
	cr_assert(has_session_state(t, "burned"),
		  "the session is not burned: %s", json_dumps(t, 0));
	free(names);
	json_decref(t);

	/* A burned code is gone for good, and the console says why. */
	h_exec(&res, NULL, ticket, cmd);
	snprintf(want, sizeof(want),
		 "tether: the code for %s was burned: a wrong code was "
		 "entered (run: tether invite %s for a new code)\n",
		 ticket, ticket);
	h_expect(&res, 255, "", want, "exec on a burned session");
	h_res_free(&res);
	h_relay_stop(&r);
}

Test(codes, expired_code, .timeout = 60)
{
	char ticket[H_ID_MAX], code[H_CODE_MAX];
	struct h_relay r;
	struct h_proc a;

	relay_with_ticket(&r, ticket, sizeof(ticket));
	h_invite(ticket, "1s", code, sizeof(code));
	usleep(2500 * 1000);
	h_agent_start(&a, &r, code, NULL);
	expect_agent_exit(&a, 1, "unknown or expired code",
			  "agent with an expired code");
	cr_assert(h_relay_alive(&r), "relay died");
}

/*
 * A code nobody used runs out: the console says when, before the relay's
 * sweep marks the session expired and after.
 */
Test(codes, expired_code_is_explained, .timeout = 60)
{
	const char *cmd[] = {"true", NULL};
	char ticket[H_ID_MAX], code[H_CODE_MAX], want[128], hint[96];
	struct h_relay r;
	struct h_res res;
	json_t *t = NULL;
	int i;

	relay_with_ticket(&r, ticket, sizeof(ticket));
	h_invite(ticket, "1s", code, sizeof(code));
	usleep(1500 * 1000);
	snprintf(want, sizeof(want),
		 "tether: the code for %s expired unused at ", ticket);
	snprintf(hint, sizeof(hint), " UTC (run: tether invite %s)\n", ticket);
	for (i = 0; i < 2; i++) {
		h_exec(&res, NULL, ticket, cmd);
		h_expect_fail(&res, 255, want, "exec after the code expired");
		cr_assert(strstr(res.err, hint) != NULL &&
			      strchr(res.err, '\n') ==
				  res.err + strlen(res.err) - 1,
			  "exec after the code expired: one line ending "
			  "\"%s\" expected: %s",
			  hint, res.err);
		h_res_free(&res);
		/* The relay's sweep runs each second or so. */
		for (int k = 0; k < 50 && i == 0; k++) {
			json_decref(t);
			t = h_ticket_show(ticket);
			if (has_session_state(t, "expired"))
				break;
			usleep(100 * 1000);
		}
		cr_assert(has_session_state(t, "expired"),
			  "the session did not expire: %s", json_dumps(t, 0));
	}
	json_decref(t);
	h_relay_stop(&r);
}

/* Neither an invite nor a closed ticket leaves the reason to guess. */
Test(codes, no_invite_and_closed_ticket, .timeout = 60)
{
	const char *cmd[] = {"true", NULL};
	char ticket[H_ID_MAX], code[H_CODE_MAX], want[192];
	struct h_relay r;
	struct h_res res;

	relay_with_ticket(&r, ticket, sizeof(ticket));
	h_exec(&res, NULL, ticket, cmd);
	snprintf(want, sizeof(want),
		 "tether: there is no invite for %s (run: tether invite %s)\n",
		 ticket, ticket);
	h_expect(&res, 255, "", want, "exec before any invite");
	h_res_free(&res);

	h_invite(ticket, NULL, code, sizeof(code));
	h_console_ok(&res, NULL, "ticket", "close", ticket, "--resolution",
		     "done", NULL);
	h_res_free(&res);
	snprintf(want, sizeof(want),
		 "tether: %s is closed (it cannot be reopened yet; run: "
		 "tether ticket new TITLE for another)\n",
		 ticket);
	h_exec(&res, NULL, ticket, cmd);
	h_expect(&res, 255, "", want, "exec on a closed ticket");
	h_res_free(&res);
	h_console(&res, NULL, "invite", ticket, NULL);
	h_expect(&res, 255, "", want, "invite on a closed ticket");
	h_res_free(&res);
	h_relay_stop(&r);
}

Test(codes, reused_code, .timeout = 60)
{
	struct h_session s;
	struct h_proc second;

	h_session_start(&s, "reuse", NULL);
	h_agent_start(&second, &s.relay, s.code, NULL);
	expect_agent_exit(&second, 1, "unknown or expired code",
			  "second agent with a used code");
	cr_assert(h_proc_alive(&s.agent),
		  "the first agent died when the code was reused");
}

Test(codes, exec_before_join, .timeout = 60)
{
	const char *cmd[] = {"true", NULL};
	char ticket[H_ID_MAX], code[H_CODE_MAX], want[64];
	struct h_relay r;
	struct h_res res;

	relay_with_ticket(&r, ticket, sizeof(ticket));
	h_invite(ticket, NULL, code, sizeof(code));
	h_exec(&res, NULL, ticket, cmd);
	snprintf(want, sizeof(want), "tether: no agent has joined %s yet",
		 ticket);
	h_expect_fail(&res, 255, want, "tether exec before any agent joined");
	h_res_free(&res);
}

Test(codes, unknown_ticket, .timeout = 60)
{
	const char *cmd[] = {"true", NULL};
	char ticket[H_ID_MAX];
	struct h_relay r;
	struct h_res res;

	relay_with_ticket(&r, ticket, sizeof(ticket));
	h_exec(&res, NULL, "T-9", cmd);
	h_expect_fail(&res, 255, "tether: no such ticket T-9",
		      "tether exec T-9");
	h_res_free(&res);
	h_console(&res, NULL, "ticket", "show", "T-9", NULL);
	h_expect_fail(&res, 255, "tether: no such ticket T-9",
		      "tether ticket show T-9");
	h_res_free(&res);
	h_console(&res, NULL, "invite", "T-9", NULL);
	h_expect_fail(&res, 255, "tether: no such ticket T-9",
		      "tether invite T-9");
	h_res_free(&res);
}

/* Guessing nameplates: five failures a minute per address, then no more. */
Test(codes, rate_limit, .timeout = 120)
{
	char code[H_CODE_MAX], what[64];
	struct h_relay r;
	struct h_proc a;

	h_relay_up(&r, NULL);
	snprintf(code, sizeof(code), "98765432-%s-%s-%s", tether_code_word(0),
		 tether_code_word(1), tether_code_word(2));
	for (int i = 1; i <= 7; i++) {
		snprintf(what, sizeof(what), "join %d with a made-up code", i);
		h_agent_start(&a, &r, code, NULL);
		expect_agent_exit(&a, 1,
				  i <= 5 ? "unknown or expired code"
					 : "too many attempts",
				  what);
	}
	cr_assert(h_relay_alive(&r), "relay died");
	h_relay_stop(&r);
}

/* Waits until one of the ticket's sessions is in state. */
static void wait_session_state(const char *ticket, const char *state)
{
	json_t *t = NULL;
	int i;

	for (i = 0; i < 50; i++) {
		json_decref(t);
		t = h_ticket_show(ticket);
		if (has_session_state(t, state))
			break;
		usleep(200 * 1000);
	}
	cr_assert(has_session_state(t, state), "no %s session: %s", state,
		  json_dumps(t, 0));
	json_decref(t);
}

/* Without a terminal and without --yes nobody can consent: declined. */
Test(codes, no_consent_without_terminal, .timeout = 60)
{
	const char *cmd[] = {"true", NULL};
	char ticket[H_ID_MAX], code[H_CODE_MAX], want[192];
	struct h_relay r;
	struct h_proc a;
	struct h_res res;

	relay_with_ticket(&r, ticket, sizeof(ticket));
	h_invite(ticket, NULL, code, sizeof(code));
	h_agent_start_opts(&a, &r, code, NULL, false);
	expect_agent_exit(&a, 1,
			  "tether-agent: no terminal to ask for consent; "
			  "pass --yes to pre-approve",
			  "agent without --yes or terminal");
	wait_session_state(ticket, "declined");
	/* Declined, the code is spent: nothing can run on the ticket. */
	h_exec(&res, NULL, ticket, cmd);
	snprintf(want, sizeof(want),
		 "tether: the customer declined the invite for %s (run: tether "
		 "invite %s to ask again)\n",
		 ticket, ticket);
	h_expect(&res, 255, "", want,
		 "exec after the customer could not consent");
	h_res_free(&res);
	h_relay_stop(&r);
}

/*
 * The customer answers no at the prompt: the session is declined for good
 * (err declined, docs/protocol.md), and a new invite starts afresh.
 */
Test(codes, declined_at_the_prompt, .timeout = 90)
{
	const char *cmd[] = {"true", NULL};
	char ticket[H_ID_MAX], code[H_CODE_MAX], want[192];
	char cfg[H_PATH_MAX], env0[H_PATH_MAX + 32];
	const char *env[] = {env0, NULL};
	struct h_relay r;
	struct h_tmux tmux = {0};
	struct h_res res;
	json_t *t;

	if (!h_tmux_available())
		cr_skip_test("tmux is needed for a terminal to answer in");
	relay_with_ticket(&r, ticket, sizeof(ticket));
	h_invite(ticket, NULL, code, sizeof(code));
	h_tmux_start(&tmux);
	snprintf(env0, sizeof(env0), "XDG_CONFIG_HOME=%s",
		 h_path(cfg, sizeof(cfg), "agent-tty"));
	{
		const char *argv[] = {h_agent_bin(), "join", code,
				      "--relay",     r.addr, "--fingerprint",
				      r.fingerprint, NULL};

		h_term_new(&tmux, "customer", 100, 30, env, argv);
	}
	cr_assert(h_term_wait(&tmux, "customer", "Allow? [y/N]", 15000),
		  "no consent prompt: %s",
		  h_term_screen(&tmux, "customer", true));
	h_term_type(&tmux, "customer", "n");
	h_term_key(&tmux, "customer", "Enter");
	wait_session_state(ticket, "declined");
	t = h_ticket_show(ticket);
	cr_assert(h_audit_has(t, "declined"), "no declined in the audit: %s",
		  h_audit_names(t));
	json_decref(t);

	snprintf(want, sizeof(want),
		 "tether: the customer declined the invite for %s (run: tether "
		 "invite %s to ask again)",
		 ticket, ticket);
	h_exec(&res, NULL, ticket, cmd);
	h_expect_fail(&res, 255, want, "exec after the customer said no");
	h_res_free(&res);
	/* A new invite replaces the declined one. */
	h_invite(ticket, NULL, code, sizeof(code));
	h_exec(&res, NULL, ticket, cmd);
	h_expect_fail(&res, 255, "no agent has joined",
		      "exec after a new invite");
	h_res_free(&res);
	h_tmux_stop(&tmux);
	h_relay_stop(&r);
}

/* --expires takes 90s, 10m, 2h or plain seconds, and nothing else. */
Test(codes, expires_formats, .timeout = 60)
{
	static const char *const good[] = {"90s", "10m", "2h", "300"};
	char ticket[H_ID_MAX], code[H_CODE_MAX];
	struct h_relay r;
	struct h_res res;

	relay_with_ticket(&r, ticket, sizeof(ticket));
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		h_invite(ticket, good[i], code, sizeof(code));
	h_console(&res, NULL, "invite", ticket, "--expires", "soon", NULL);
	h_expect(&res, 2, "",
		 "tether: bad --expires soon (90s, 10m, 2h or seconds, at most "
		 "24h) (see: tether invite --help)\n",
		 "tether invite --expires soon");
	h_res_free(&res);
}

/* The nameplate of a code ("7-word-word-word": "7") into out. */
static const char *nameplate_of(const char *code, char *out, size_t len)
{
	size_t n = strcspn(code, "-");

	cr_assert(n > 0 && n < len, "code %s", code);
	memcpy(out, code, n);
	out[n] = '\0';
	return out;
}

/*
 * The ticket's k-th session (nameplates come back once free, so they do
 * not name one) is ended, and the k-th session_ended row says that it
 * had nameplate, was in state was and ended for reason.
 */
static void expect_end_row(json_t *t, size_t k, const char *nameplate,
			   const char *was, const char *reason)
{
	json_t *s = json_array_get(json_object_get(t, "sessions"), k);
	json_t *a, *d = NULL;
	const char *np, *w, *why;
	size_t i, n = 0;

	cr_assert(s != NULL, "no session %zu: %s", k, json_dumps(t, 0));
	cr_assert_str_eq(json_string_value(json_object_get(s, "nameplate")),
			 nameplate, "session %zu", k);
	cr_assert_str_eq(json_string_value(json_object_get(s, "state")),
			 "ended", "session %zu (%s)", k, nameplate);
	json_array_foreach (json_object_get(t, "audit"), i, a) {
		if (strcmp(json_string_value(json_object_get(a, "event")),
			   "session_ended") == 0 &&
		    n++ == k)
			break;
	}
	cr_assert(a != NULL, "no session_ended row for session %zu: %s", k,
		  h_audit_names(t));
	cr_assert_str_eq(json_string_value(json_object_get(a, "actor")),
			 "tech:admin");
	d = json_object_get(a, "detail");
	np = json_string_value(json_object_get(d, "nameplate"));
	w = json_string_value(json_object_get(d, "was"));
	why = json_string_value(json_object_get(d, "reason"));
	cr_assert(np && strcmp(np, nameplate) == 0 && w &&
		      strcmp(w, was) == 0 && why && strcmp(why, reason) == 0,
		  "session_ended of %s (%s, %s): %s", nameplate, was, reason,
		  json_dumps(a, 0));
}

/*
 * A new invite replaces the ticket's live session when no agent is on
 * it (one with its agent connected is refused): an invite nobody used,
 * or a session whose agent dropped.  Closing the ticket ends its live
 * session too.  Each ended session has its session_ended audit row.
 */
Test(codes, replaced_sessions_are_audited, .timeout = 90)
{
	char ticket[H_ID_MAX], code[H_CODE_MAX], np[3][16];
	struct h_relay r;
	struct h_proc a;
	struct h_res res;
	json_t *t = NULL;
	int i;

	relay_with_ticket(&r, ticket, sizeof(ticket));
	h_invite(ticket, NULL, code, sizeof(code));
	nameplate_of(code, np[0], sizeof(np[0]));
	h_invite(ticket, NULL, code, sizeof(code));
	nameplate_of(code, np[1], sizeof(np[1]));
	t = h_ticket_show(ticket);
	expect_end_row(t, 0, np[0], "waiting", "replaced by a new invite");
	json_decref(t);

	h_agent_start(&a, &r, code, NULL);
	h_wait_joined(ticket, 15000, &a);
	h_console(&res, NULL, "invite", ticket, NULL);
	h_expect_fail(&res, -1, "an agent is connected",
		      "invite while the agent is connected");
	h_res_free(&res);
	/* The connection drops (no leave): the session waits for it. */
	h_proc_kill(&a);
	for (i = 0, t = NULL; i < 50; i++) {
		json_decref(t);
		t = h_ticket_show(ticket);
		if (h_audit_has(t, "agent_disconnected"))
			break;
		usleep(100 * 1000);
	}
	cr_assert(h_audit_has(t, "agent_disconnected"),
		  "the relay did not see the agent go: %s", h_audit_names(t));
	json_decref(t);
	h_invite(ticket, NULL, code, sizeof(code));
	nameplate_of(code, np[2], sizeof(np[2]));
	t = h_ticket_show(ticket);
	expect_end_row(t, 1, np[1], "joined", "replaced by a new invite");
	json_decref(t);

	h_console_ok(&res, NULL, "ticket", "close", ticket, "--resolution",
		     "done", NULL);
	h_res_free(&res);
	t = h_ticket_show(ticket);
	expect_end_row(t, 2, np[2], "waiting", "ticket closed");
	json_decref(t);
	h_relay_stop(&r);
}
