/*
 * End-to-end: what happens to a session code that is wrong, expired, used
 * twice or guessed at, and to commands for tickets that cannot run them
 * (docs/cli.md messages and exit codes, docs/protocol.md pairing).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <tether/code.h>
#include <tether/crypto.h>
#include <tether/frame.h>
#include <tether/proto.h>
#include <tether/sign.h>
#include <tether/spake2.h>

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

/*
 * The ticket's code (old_code) was burned for reason: its code_burned row
 * says so with the nameplate and where the join came from, and the next
 * invite tells the technician (a note on stderr, "burned" in --json);
 * the one after that, whose previous code was only replaced, does not.
 */
static void expect_burned_noted(const char *ticket, const char *old_code,
				const char *reason)
{
	char np[16], want[160];
	json_t *t, *row, *j, *b;
	struct h_res res;

	snprintf(np, sizeof(np), "%.*s", (int)strcspn(old_code, "-"), old_code);
	t = h_ticket_show(ticket);
	row = h_audit_event(t, "code_burned", NULL);
	cr_assert(row != NULL, "no code_burned row: %s", h_audit_names(t));
	row = json_object_get(row, "detail");
	cr_assert_str_eq(json_string_value(json_object_get(row, "nameplate")),
			 np);
	cr_assert_str_eq(json_string_value(json_object_get(row, "reason")),
			 reason);
	cr_assert(strncmp(json_string_value(json_object_get(row, "addr")),
			  "127.", 4) == 0,
		  "code_burned addr: %s", json_dumps(row, 0));
	json_decref(t);

	h_console_ok(&res, NULL, "invite", ticket, "--json", NULL);
	j = json_loads(res.out, 0, NULL);
	b = json_object_get(j, "burned");
	cr_assert(json_is_object(b), "invite --json lacks burned: %s", res.out);
	cr_assert_str_eq(json_string_value(json_object_get(b, "nameplate")),
			 np);
	cr_assert_str_eq(json_string_value(json_object_get(b, "reason")),
			 reason);
	cr_assert(json_is_string(json_object_get(b, "at")), "%s", res.out);
	if (strcmp(reason, "wrong code") == 0)
		snprintf(want, sizeof(want),
			 "note: the previous code %s-... was burned by a "
			 "wrong entry at ",
			 np);
	else
		snprintf(want, sizeof(want),
			 "note: the previous code %s-... was burned at ", np);
	cr_assert(strstr(res.err, want) != NULL, "invite's stderr lacks %s: %s",
		  want, res.err);
	json_decref(j);
	h_res_free(&res);

	h_console_ok(&res, NULL, "invite", ticket, NULL);
	cr_assert(strstr(res.err, "note:") == NULL,
		  "a replaced code is not burned: %s", res.err);
	h_res_free(&res);
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

	/*
	 * The technician's command is the one that finds out, and is told
	 * at once who burned the code, from where, and what to do.
	 */
	h_exec(&res, NULL, ticket, cmd);
	snprintf(want, sizeof(want),
		 "tether: the code for %s was burned by a wrong guess (from "
		 "127.0.0.1:",
		 ticket);
	h_expect_fail(&res, 255, want,
		      "tether exec after a join with a wrong code");
	snprintf(want, sizeof(want),
		 "); run: tether invite %s for a new code\n", ticket);
	cr_assert(strstr(res.err, want) != NULL &&
		      strchr(res.err, '\n') == res.err + strlen(res.err) - 1,
		  "one line ending \"%s\" expected: %s", want, res.err);
	h_res_free(&res);
	expect_agent_exit(&a, 1,
			  "tether-agent: the code is wrong; ask your "
			  "technician for the code again",
			  "agent with a wrong code");
	/* And nothing of the ticket reached the customer. */
	{
		char *out = h_proc_output(&a);

		cr_assert(strstr(out, "cannot print") == NULL &&
			      strstr(out, "wants to connect") == NULL &&
			      strstr(out, ticket) == NULL,
			  "a wrong code showed the ticket: %s", out);
		free(out);
	}

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
	expect_burned_noted(ticket, code, "wrong code");
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
	/* The sweep that expired it wrote its row, once. */
	{
		json_t *ev = h_audit_event(t, "invite_expired", NULL);
		json_t *audit = json_object_get(t, "audit"), *row;
		const char *np;
		size_t k;
		int rows = 0;

		cr_assert(ev != NULL, "no invite_expired row: %s",
			  h_audit_names(t));
		np = json_string_value(json_object_get(
		    json_object_get(ev, "detail"), "nameplate"));
		cr_assert(np != NULL && strncmp(code, np, strlen(np)) == 0 &&
			      code[strlen(np)] == '-',
			  "invite_expired names nameplate %s, the code was %s",
			  np, code);
		json_array_foreach (audit, k, row)
			rows += strcmp(json_string_value(
					   json_object_get(row, "event")),
				       "invite_expired") == 0;
		cr_assert_eq(rows, 1, "invite_expired rows: %d", rows);
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
		 "tether: %s is closed (run: tether ticket reopen %s to work "
		 "on it again)\n",
		 ticket, ticket);
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

/*
 * Without a terminal and without --yes or --allow nobody can consent:
 * declined once the technician's console proved the code (the question
 * comes only then), and that console hears it.
 */
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
	h_wait_joined(ticket, 15000, &a);
	snprintf(want, sizeof(want),
		 "tether: the customer declined the invite for %s (run: tether "
		 "invite %s to ask again)\n",
		 ticket, ticket);
	h_exec(&res, NULL, ticket, cmd);
	h_expect(&res, 255, "", want, "exec when the customer cannot consent");
	h_res_free(&res);
	expect_agent_exit(&a, 1,
			  "tether-agent: no terminal to ask for consent; "
			  "pass --yes or --allow to pre-approve",
			  "agent without --yes or terminal");
	wait_session_state(ticket, "declined");
	/* Declined, the code is spent: nothing can run on the ticket. */
	h_exec(&res, NULL, ticket, cmd);
	h_expect(&res, 255, "", want,
		 "exec after the customer could not consent");
	h_res_free(&res);
	h_relay_stop(&r);
}

/*
 * The customer answers no at the prompt, which comes once the technician's
 * console has proven the code: the waiting command hears the decline, the
 * session is declined for good (err declined, docs/protocol.md), and a
 * new invite starts afresh.
 */
Test(codes, declined_at_the_prompt, .timeout = 90)
{
	const char *cmd[] = {"true", NULL};
	char ticket[H_ID_MAX], code[H_CODE_MAX], want[192];
	char cfg[H_PATH_MAX], env0[H_PATH_MAX + 32], *err, *screen;
	const char *env[] = {env0, NULL};
	struct h_relay r;
	struct h_tmux tmux = {0};
	struct h_proc ex;
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
	h_wait_joined(ticket, 15000, NULL);
	/* Nothing about the ticket before the console proves the code. */
	screen = h_term_screen(&tmux, "customer", true);
	cr_assert(strstr(screen, "cannot print") == NULL,
		  "the title before confirmation: %s", screen);
	free(screen);
	h_console_start(&ex, "exec-waits", "exec", ticket, "--", "true", NULL);
	cr_assert(h_term_wait(&tmux, "customer", "Allow? [y/N", 15000),
		  "no consent prompt: %s",
		  h_term_screen(&tmux, "customer", true));
	screen = h_term_screen(&tmux, "customer", true);
	cr_assert(strstr(screen, "\"cannot print\"") != NULL,
		  "no title at the prompt: %s", screen);
	free(screen);
	h_term_type(&tmux, "customer", "n");
	h_term_key(&tmux, "customer", "Enter");
	cr_assert_eq(h_proc_wait(&ex, 10000), 255, "the waiting exec");
	snprintf(want, sizeof(want),
		 "tether: the customer declined the invite for %s (run: tether "
		 "invite %s to ask again)",
		 ticket, ticket);
	err = h_read_file(ex.err, NULL);
	cr_assert(err != NULL && strstr(err, want) != NULL,
		  "the waiting exec said: %s", err);
	free(err);
	wait_session_state(ticket, "declined");
	t = h_ticket_show(ticket);
	cr_assert(h_audit_has(t, "declined"), "no declined in the audit: %s",
		  h_audit_names(t));
	json_decref(t);

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

/* ---- One-digit slips (docs/protocol.md, "Pairing") ---- */

#define LIVE 20
#define SLIPS 200
/* Failed joins a source may make before the relay's limit of 5. */
#define SLIPS_PER_SOURCE 4

/*
 * A raw peer of the relay on one TLS connection, from a loopback source
 * address of its own (the relay limits failures per address): what a
 * customer's agent or a technician's console sends, without the
 * programs, so that many joins fit in a test.  Every payload the relay
 * sent it is kept in seen, to look for what it must never have sent.
 */
struct raw_peer {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	uint8_t in[65536];
	size_t in_len;
	char seen[65536];
	size_t seen_len;
	int next_id;
};

static void peer_open(struct raw_peer *p, const struct h_relay *r,
		      const char *src)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	struct sockaddr_in from = {.sin_family = AF_INET};
	struct timeval tv = {5, 0};
	int one = 1;

	memset(p, 0, sizeof(*p));
	p->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert(p->fd >= 0, "socket: %s", strerror(errno));
	cr_assert_eq(inet_pton(AF_INET, src, &from.sin_addr), 1, "%s", src);
	cr_assert(bind(p->fd, (struct sockaddr *)&from, sizeof(from)) == 0,
		  "bind %s: %s", src, strerror(errno));
	sa.sin_port = htons((uint16_t)r->port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(p->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(p->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	/* Small writes after the handshake's: no wait for a delayed ACK. */
	setsockopt(p->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	cr_assert(connect(p->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0,
		  "connect from %s: %s", src, strerror(errno));
	p->ctx = SSL_CTX_new(TLS_client_method());
	cr_assert_not_null(p->ctx);
	/* What is measured is the relay's answer, not the pinning. */
	SSL_CTX_set_verify(p->ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_min_proto_version(p->ctx, TLS1_3_VERSION);
	cr_assert_eq(SSL_CTX_set_alpn_protos(
			 p->ctx, (const unsigned char *)"\x08tether/1", 9),
		     0);
	p->ssl = SSL_new(p->ctx);
	cr_assert_not_null(p->ssl);
	SSL_set_fd(p->ssl, p->fd);
	cr_assert_eq(SSL_connect(p->ssl), 1, "TLS from %s", src);
}

static void peer_close(struct raw_peer *p)
{
	SSL_free(p->ssl);
	SSL_CTX_free(p->ctx);
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
}

/* One frame of the relay's into type and payload; false if none came. */
static bool peer_read(struct raw_peer *p, uint8_t *type, char *payload,
		      size_t len)
{
	size_t n, k;
	int r;

	for (;;) {
		if (p->in_len >= TETHER_FRAME_HEADER_LEN) {
			n = (size_t)p->in[0] << 24 | (size_t)p->in[1] << 16 |
			    (size_t)p->in[2] << 8 | p->in[3];
			if (n >= sizeof(p->in) - TETHER_FRAME_HEADER_LEN)
				return false;
			if (p->in_len >= TETHER_FRAME_HEADER_LEN + n)
				break;
		}
		ERR_clear_error();
		r = SSL_read(p->ssl, p->in + p->in_len,
			     (int)(sizeof(p->in) - p->in_len));
		if (r <= 0)
			return false;
		p->in_len += (size_t)r;
	}
	*type = p->in[4];
	k = n < len - 1 ? n : len - 1;
	memcpy(payload, p->in + TETHER_FRAME_HEADER_LEN, k);
	payload[k] = '\0';
	if (p->seen_len + k + 1 < sizeof(p->seen)) {
		memcpy(p->seen + p->seen_len, payload, k);
		p->seen_len += k;
		p->seen[p->seen_len++] = '\n';
		p->seen[p->seen_len] = '\0';
	}
	p->in_len -= TETHER_FRAME_HEADER_LEN + n;
	memmove(p->in, p->in + TETHER_FRAME_HEADER_LEN + n, p->in_len);
	return true;
}

static bool peer_send(struct raw_peer *p, const char *json)
{
	uint8_t buf[TETHER_FRAME_HEADER_LEN + 4096];
	size_t n = strlen(json);

	cr_assert_lt(n, sizeof(buf) - TETHER_FRAME_HEADER_LEN);
	tether_frame_header_pack(buf, TETHER_FRAME_CTRL, 0, 0, (uint32_t)n);
	memcpy(buf + TETHER_FRAME_HEADER_LEN, json, n);
	ERR_clear_error();
	return SSL_write(p->ssl, buf, (int)(TETHER_FRAME_HEADER_LEN + n)) ==
	       (int)(TETHER_FRAME_HEADER_LEN + n);
}

/* Sends json and reads one CTRL frame back into answer. */
static void peer_call(struct raw_peer *p, const char *json, char *answer,
		      size_t len, const char *what)
{
	uint8_t type = 0;

	cr_assert(peer_send(p, json), "%s: cannot send", what);
	cr_assert(peer_read(p, &type, answer, len), "%s: no answer", what);
	cr_assert_eq(type, TETHER_FRAME_CTRL, "%s: type %u %s", what, type,
		     answer);
}

/*
 * What a customer's agent does with a code up to the point where it waits
 * for the technician's confirmation, from loopback source address src:
 * hello, then join nameplate.  True if the relay answered join_ok (the
 * nameplate led to a live code), with p still open; false (p closed) for
 * "unknown or expired code".
 */
static bool peer_join(struct raw_peer *p, const struct h_relay *r,
		      const char *src, const char *nameplate, char *join_ok,
		      size_t len)
{
	char msg[128];
	uint8_t type = 0;

	peer_open(p, r, src);
	peer_call(p, "{\"t\":\"hello\",\"role\":\"agent\",\"version\":2}",
		  join_ok, len, "agent hello");
	cr_assert(strstr(join_ok, "welcome") != NULL,
		  "hello from %s answered %s", src, join_ok);
	snprintf(msg, sizeof(msg), "{\"t\":\"join\",\"nameplate\":\"%s\"}",
		 nameplate);
	cr_assert(peer_send(p, msg));
	cr_assert(peer_read(p, &type, join_ok, len),
		  "no answer to join %s from %s", nameplate, src);
	if (type == TETHER_FRAME_CTRL && strstr(join_ok, "\"join_ok\"") != NULL)
		return true;
	cr_assert(type == TETHER_FRAME_ERROR &&
		      strstr(join_ok, "unknown or expired code") != NULL,
		  "join %s from %s: type %u %s", nameplate, src, type, join_ok);
	peer_close(p);
	return false;
}

/* As peer_join(), and the connection then drops (the customer gave up). */
static bool raw_join(const struct h_relay *r, const char *src,
		     const char *nameplate)
{
	struct raw_peer p;
	char answer[4096];
	bool joined = peer_join(&p, r, src, nameplate, answer, sizeof(answer));

	if (joined)
		peer_close(&p);
	return joined;
}

static unsigned sessions_burned(const struct h_relay *r)
{
	sqlite3 *h = h_db_open(r);
	sqlite3_stmt *st = NULL;
	unsigned n = 0;

	cr_assert_eq(sqlite3_prepare_v2(h,
					"SELECT COUNT(*) FROM sessions WHERE"
					" state = 'burned'",
					-1, &st, NULL),
		     SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = (unsigned)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(h);
	return n;
}

/* The state of the newest session with this nameplate, into out. */
static const char *state_of_nameplate(const struct h_relay *r,
				      const char *nameplate, char *out,
				      size_t len)
{
	sqlite3 *h = h_db_open(r);
	sqlite3_stmt *st = NULL;

	out[0] = '\0';
	cr_assert_eq(sqlite3_prepare_v2(h,
					"SELECT state FROM sessions WHERE"
					" nameplate = ? ORDER BY id DESC"
					" LIMIT 1",
					-1, &st, NULL),
		     SQLITE_OK);
	sqlite3_bind_text(st, 1, nameplate, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		snprintf(out, len, "%s", sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(h);
	return out;
}

/*
 * Issue 13: with LIVE invites out, nameplates are spread over 1..999, so
 * that few nameplates next to a live one are live too, and a customer who
 * types one digit wrong (n - 1 or n + 1 of a live code) seldom lands on
 * another ticket's code: over SLIPS slips, fewer than 10% do (the
 * shortest free number of old made it nearly all).  A slip that does hit
 * burns that one code (the join goes nowhere) and no other ticket's.
 */
Test(codes, one_digit_slips_rarely_hit_a_live_code, .timeout = 120)
{
	char ticket[LIVE][H_ID_MAX], code[H_CODE_MAX], src[32], np[16];
	unsigned value[LIVE], seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	bool live[LIVE], hit_ticket[LIVE] = {false};
	unsigned i, j, k, near = 0, hits = 0;
	char state[16];
	bool shown = false;
	struct h_relay r;

	h_relay_up(&r, NULL);
	h_login(&r);
	for (i = 0; i < LIVE; i++) {
		h_ticket_new("slips", ticket[i], sizeof(ticket[i]));
		h_invite(ticket[i], NULL, code, sizeof(code));
		value[i] = (unsigned)h_number(code, NULL);
		/* 20 x (19 + 1) <= 999: three digits are enough. */
		cr_assert(value[i] >= 1 && value[i] <= 999, "code %s", code);
		for (j = 0; j < i; j++)
			cr_assert_neq(value[i], value[j], "%s twice", code);
		live[i] = true;
	}
	for (i = 0; i < LIVE; i++)
		for (j = 0; j < LIVE; j++)
			near += value[j] + 1 == value[i] ||
				value[j] == value[i] + 1;
	cr_log_info("live nameplates next to a live one: %u of %u", near,
		    2 * LIVE);
	cr_assert_leq(near * 5, 2 * LIVE, "%u of %u neighbours are live", near,
		      2 * LIVE);

	srand(seed);
	for (k = 0; k < SLIPS; k++) {
		unsigned from = (unsigned)rand() % LIVE, to;
		int hit = -1;

		/* Slips of codes still live: a burned one leads nowhere. */
		while (!live[from])
			from = (from + 1) % LIVE;
		to = value[from] == 1 || rand() % 2 ? value[from] + 1
						    : value[from] - 1;
		for (j = 0; j < LIVE; j++)
			if (live[j] && value[j] == to)
				hit = (int)j;
		snprintf(src, sizeof(src), "127.0.%u.%u",
			 1 + k / SLIPS_PER_SOURCE / 250,
			 1 + k / SLIPS_PER_SOURCE % 250);
		snprintf(np, sizeof(np), "%u", to);
		cr_assert_eq(raw_join(&r, src, np), hit >= 0,
			     "slip %u: %s from %s (seed %u)", k, np, src, seed);
		if (hit >= 0) {
			hits++;
			live[hit] = false;
			hit_ticket[hit] = true;
		}
	}
	cr_log_info("one-digit slips onto a live code: %u of %u", hits, SLIPS);
	cr_assert_lt(hits * 10, SLIPS,
		     "%u of %u slips hit a live code (seed %u)", hits, SLIPS,
		     seed);

	/*
	 * Each hit burned its own code and every other invite still waits,
	 * as the relay's database has it (the burn follows the dropped
	 * connection, so it is waited for).
	 */
	for (k = 0; k < 50 && sessions_burned(&r) != hits; k++)
		usleep(100 * 1000);
	for (i = 0; i < LIVE; i++) {
		snprintf(np, sizeof(np), "%u", value[i]);
		cr_assert_str_eq(
		    state_of_nameplate(&r, np, state, sizeof(state)),
		    hit_ticket[i] ? "burned" : "waiting", "%s (%s)", ticket[i],
		    np);
		if (hit_ticket[i] && !shown) {
			json_t *t = h_ticket_show(ticket[i]);
			json_t *row = h_audit_event(t, "code_burned", NULL);

			cr_assert(row != NULL, "%s: %s", ticket[i],
				  h_audit_names(t));
			cr_assert_str_eq(
			    json_string_value(json_object_get(
				json_object_get(row, "detail"), "reason")),
			    "join abandoned");
			json_decref(t);
			shown = true;
		}
	}
	cr_assert_eq(sessions_burned(&r), hits);
	h_relay_stop(&r);
}

/* ---- Wrong codes show nothing (issue 13) ---- */

#define SHOWN_LIVE 8
#define WRONG_JOINS 1000

/*
 * WRONG_JOINS, or TETHER_TEST_WRONG_JOINS from the environment for a
 * longer soak (bench/wrong-codes).
 */
static unsigned wrong_joins(void)
{
	const char *v = getenv("TETHER_TEST_WRONG_JOINS");
	long long n = v != NULL ? h_number(v, NULL) : 0;

	return n > 0 && n <= 10000000 ? (unsigned)n : WRONG_JOINS;
}

/*
 * The technician's side of a raw session: a console that says hello as
 * admin and signs the welcome's challenge with the key the console's
 * login stored in the test's config (tether/sign.h).
 */
static void tech_open(struct raw_peer *c, const struct h_relay *r)
{
	uint8_t challenge[TETHER_AGENT_CHALLENGE_LEN], msg[256];
	uint8_t pub[TETHER_SIGN_PUB_LEN], sig[TETHER_SIGN_SIG_LEN];
	char key[H_PATH_MAX + 32], cfg[H_PATH_MAX], answer[1024];
	char hex[2 * TETHER_SIGN_SIG_LEN + 1], text[512];
	struct tether_sign_key *k = NULL;
	size_t len = 0;
	json_t *j;

	peer_open(c, r, "127.0.0.1");
	peer_call(c,
		  "{\"t\":\"hello\",\"role\":\"console\",\"version\":2,"
		  "\"technician\":\"admin\"}",
		  answer, sizeof(answer), "console hello");
	j = json_loads(answer, 0, NULL);
	cr_assert(strstr(answer, "welcome") != NULL &&
		      tether_hex_decode(
			  json_string_value(json_object_get(j, "challenge")),
			  challenge, sizeof(challenge)) == 0,
		  "hello: %s", answer);
	json_decref(j);
	snprintf(key, sizeof(key), "%s/tether/technician.key",
		 h_path(cfg, sizeof(cfg), "config"));
	cr_assert_eq(tether_sign_key_load(key, &k, pub), 0, "%s", key);
	cr_assert_eq(tether_sign_console_auth_message(challenge, pub, msg,
						      sizeof(msg), &len),
		     0);
	cr_assert_eq(tether_sign(k, msg, len, sig), 0);
	tether_sign_key_free(k);
	tether_hex_encode(sig, sizeof(sig), hex, sizeof(hex));
	snprintf(text, sizeof(text), "{\"t\":\"auth\",\"sig\":\"%s\"}", hex);
	peer_call(c, text, answer, sizeof(answer), "console auth");
	cr_assert(strstr(answer, "auth_ok") != NULL, "auth: %s", answer);
}

/* req ("{...}" without an id) as the next request; its answer. */
static json_t *tech_ask(struct raw_peer *c, const char *req)
{
	char msg[4096], answer[4096];
	uint8_t type = 0;
	json_t *j = NULL;

	snprintf(msg, sizeof(msg), "{\"id\":%d,%s", ++c->next_id, req + 1);
	cr_assert(peer_send(c, msg), "sending %s", msg);
	for (;;) {
		cr_assert(peer_read(c, &type, answer, sizeof(answer)),
			  "no answer to %s", msg);
		json_decref(j);
		j = json_loads(answer, 0, NULL);
		if (json_integer_value(json_object_get(j, "id")) == c->next_id)
			return j;
	}
}

/* A live invite the test holds party A of (random words: never typed). */
struct live {
	char ticket[H_ID_MAX];
	char title[96];
	char nameplate[16];
	long long session;
	struct tether_spake2 *a;
};

static struct tether_spake2 *pake_party(enum tether_spake2_role role,
					uint8_t msg[TETHER_SPAKE2_ELEM_LEN])
{
	uint8_t w[TETHER_SPAKE2_W_LEN];
	struct tether_spake2 *s;

	cr_assert_eq(tether_random(w, sizeof(w)), 0);
	/* Any scalar mod n will do as a password nobody knows. */
	w[0] &= 0x7f;
	s = tether_spake2_new(role, TETHER_PAKE_ID_A, strlen(TETHER_PAKE_ID_A),
			      TETHER_PAKE_ID_B, strlen(TETHER_PAKE_ID_B), w);
	cr_assert_not_null(s);
	cr_assert_eq(tether_spake2_start(s, msg), 0);
	return s;
}

/*
 * What tether invite sends: pA and the info the customer is to see once
 * the code is proven (technician, ticket, title, capabilities).
 */
static void live_invite(struct raw_peer *c, struct live *l)
{
	uint8_t pa[TETHER_SPAKE2_ELEM_LEN];
	char hex[2 * TETHER_SPAKE2_ELEM_LEN + 1], *info, *req;
	json_t *ans, *j;

	tether_spake2_free(l->a);
	l->a = pake_party(TETHER_SPAKE2_A, pa);
	cr_assert_eq(tether_hex_encode(pa, sizeof(pa), hex, sizeof(hex)), 0);
	j = json_pack("{s:s, s:s, s:s, s:[s, s]}", "technician", "admin",
		      "ticket", l->ticket, "title", l->title, "capabilities",
		      "exec", "shell");
	info = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	j = json_pack("{s:s, s:s, s:s, s:s}", "t", "invite", "ticket",
		      l->ticket, "info", info, "pake", hex);
	req = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	ans = tech_ask(c, req);
	cr_assert_str_eq(json_string_value(json_object_get(ans, "t")), "ok",
			 "invite %s: %s", l->ticket, json_dumps(ans, 0));
	snprintf(l->nameplate, sizeof(l->nameplate), "%s",
		 json_string_value(json_object_get(ans, "nameplate")));
	l->session = json_integer_value(json_object_get(ans, "session"));
	json_decref(ans);
	free(info);
	free(req);
}

/*
 * The technician's next command on l: attach, check the agent's MAC (it
 * fails: the agent had other words), pake_failed, whose answer names the
 * address the wrong guess came from.
 */
static void live_burn(struct raw_peer *c, struct live *l, const char *src)
{
	uint8_t pb[TETHER_SPAKE2_ELEM_LEN], cb[TETHER_SPAKE2_CONF_LEN];
	uint8_t ca[TETHER_SPAKE2_CONF_LEN];
	char req[256], aad[64];
	const char *addr;
	json_t *ans;

	snprintf(req, sizeof(req), "{\"t\":\"attach\",\"ticket\":\"%s\"}",
		 l->ticket);
	ans = tech_ask(c, req);
	cr_assert_str_eq(json_string_value(json_object_get(ans, "state")),
			 "joined", "attach %s: %s", l->ticket,
			 json_dumps(ans, 0));
	cr_assert_eq(
	    tether_hex_decode(json_string_value(json_object_get(ans, "pake_b")),
			      pb, sizeof(pb)),
	    0);
	cr_assert_eq(
	    tether_hex_decode(json_string_value(json_object_get(ans, "conf_b")),
			      cb, sizeof(cb)),
	    0);
	json_decref(ans);
	snprintf(aad, sizeof(aad), "%s%s", TETHER_PAKE_AAD_PREFIX,
		 l->nameplate);
	cr_assert_eq(tether_spake2_finish(l->a, pb, aad, strlen(aad), ca), 0);
	cr_assert_neq(tether_spake2_verify(l->a, cb), 0,
		      "a wrong code confirmed on %s", l->ticket);
	snprintf(req, sizeof(req), "{\"t\":\"pake_failed\",\"session\":%lld}",
		 l->session);
	ans = tech_ask(c, req);
	addr = json_string_value(json_object_get(ans, "addr"));
	cr_assert(addr != NULL && strncmp(addr, src, strlen(src)) == 0 &&
		      addr[strlen(src)] == ':',
		  "pake_failed on %s answered %s (the join came from %s)",
		  l->ticket, json_dumps(ans, 0), src);
	json_decref(ans);
}

/* The agent's half with words of its own (a slip), then pake_ok. */
static void wrong_pake(struct raw_peer *ag, const char *join_ok,
		       const char *nameplate)
{
	uint8_t pa[TETHER_SPAKE2_ELEM_LEN], pb[TETHER_SPAKE2_ELEM_LEN];
	uint8_t cb[TETHER_SPAKE2_CONF_LEN];
	char hb[2 * sizeof(pb) + 1], hc[2 * sizeof(cb) + 1];
	char msg[512], answer[1024], aad[64];
	struct tether_spake2 *b;
	json_t *j = json_loads(join_ok, 0, NULL);

	cr_assert_eq(
	    tether_hex_decode(json_string_value(json_object_get(j, "pake_a")),
			      pa, sizeof(pa)),
	    0, "join_ok: %s", join_ok);
	json_decref(j);
	b = pake_party(TETHER_SPAKE2_B, pb);
	snprintf(aad, sizeof(aad), "%s%s", TETHER_PAKE_AAD_PREFIX, nameplate);
	cr_assert_eq(tether_spake2_finish(b, pa, aad, strlen(aad), cb), 0);
	tether_spake2_free(b);
	tether_hex_encode(pb, sizeof(pb), hb, sizeof(hb));
	tether_hex_encode(cb, sizeof(cb), hc, sizeof(hc));
	snprintf(msg, sizeof(msg),
		 "{\"t\":\"pake\",\"pake_b\":\"%s\",\"conf_b\":\"%s\"}", hb,
		 hc);
	peer_call(ag, msg, answer, sizeof(answer), "pake");
	cr_assert(strstr(answer, "\"pake_ok\"") != NULL, "pake: %s", answer);
}

/* nameplate with one digit changed (never to a leading zero). */
static void slip_digit(const char *nameplate, char *out, size_t len)
{
	size_t n = strlen(nameplate), at = (size_t)rand() % n;
	char d;

	snprintf(out, len, "%s", nameplate);
	do
		d = (char)('0' + rand() % 10);
	while (d == nameplate[at] || (at == 0 && d == '0'));
	out[at] = d;
}

/*
 * Issue 13: WRONG_JOINS joins with a one-character slip, half in the
 * nameplate (mostly unknown; now and then another live code), half in a
 * word (the right nameplate, other words), against SHOWN_LIVE live
 * tickets with distinctive titles.  No byte the relay sends such an agent
 * carries a title, a technician or a ticket; every slip that reached a
 * live code burns it when the technician's console checks the agent's
 * confirmation, which names the address the guess came from, and the
 * agent is told "wrong code" and nothing more.  Raw peers from 127.1.x.y
 * stand for the programs (each failed join from an address of its own);
 * real_slips_print_nothing runs the programs themselves.
 */
Test(codes, wrong_joins_never_show_a_ticket, .timeout = 300)
{
	struct live live[SHOWN_LIVE] = {0};
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	unsigned k, i, misses = 0, slips_hit = 0, words = 0, joins;
	char np[16], src[32], join_ok[4096], end[1024];
	struct raw_peer tech, ag;
	int64_t t0 = 0;
	struct h_relay r;
	uint8_t type;

	h_relay_up(&r, NULL);
	h_login(&r);
	tech_open(&tech, &r);
	for (i = 0; i < SHOWN_LIVE; i++) {
		snprintf(live[i].title, sizeof(live[i].title),
			 "Secret payroll %u of BigCorp QZX", i);
		h_ticket_new(live[i].title, live[i].ticket,
			     sizeof(live[i].ticket));
		live_invite(&tech, &live[i]);
	}
	joins = wrong_joins();
	srand(seed);
	{
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		t0 = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	}
	for (k = 0; k < joins; k++) {
		int hit = -1;

		i = (unsigned)rand() % SHOWN_LIVE;
		if (k % 2 == 0) {
			slip_digit(live[i].nameplate, np, sizeof(np));
			for (unsigned j = 0; j < SHOWN_LIVE; j++)
				if (strcmp(live[j].nameplate, np) == 0)
					hit = (int)j;
		} else {
			snprintf(np, sizeof(np), "%s", live[i].nameplate);
			hit = (int)i;
			words++;
		}
		snprintf(src, sizeof(src), "127.%u.%u.%u", 1 + k / 62500,
			 k / 250 % 250, k % 250 + 1);
		if (!peer_join(&ag, &r, src, np, join_ok, sizeof(join_ok))) {
			cr_assert(hit < 0,
				  "slip %u: %s from %s did not reach "
				  "%s (seed %u)",
				  k, np, src, live[hit].ticket, seed);
			misses++;
			continue;
		}
		cr_assert(hit >= 0,
			  "slip %u: %s from %s joined no live code "
			  "(seed %u)",
			  k, np, src, seed);
		slips_hit += k % 2 == 0;
		wrong_pake(&ag, join_ok, np);
		live_burn(&tech, &live[hit], src);
		cr_assert(peer_read(&ag, &type, end, sizeof(end)) &&
			      strstr(end, "\"ended\"") &&
			      strstr(end, "wrong code"),
			  "slip %u: the agent was told %s", k, end);
		/* Nothing of any ticket ever reached the wrong agent. */
		cr_assert(strstr(ag.seen, "QZX") == NULL &&
			      strstr(ag.seen, "payroll") == NULL &&
			      strstr(ag.seen, "admin") == NULL &&
			      strstr(ag.seen, "T-") == NULL &&
			      strstr(ag.seen, "title") == NULL &&
			      strstr(ag.seen, "technician") == NULL,
			  "slip %u (%s from %s) was sent: %s", k, np, src,
			  ag.seen);
		peer_close(&ag);
		live_invite(&tech, &live[hit]);
	}
	{
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		cr_log_info("%u wrong joins in %lld ms: %u unknown nameplates, "
			    "%u nameplate slips onto a live code, %u word "
			    "slips (seed %u)",
			    joins,
			    (long long)((int64_t)ts.tv_sec * 1000 +
					ts.tv_nsec / 1000000 - t0),
			    misses, slips_hit, words, seed);
	}
	cr_assert_eq(misses + slips_hit + words, joins);
	cr_assert_eq(sessions_burned(&r), slips_hit + words);
	for (i = 0; i < SHOWN_LIVE; i++)
		tether_spake2_free(live[i].a);
	peer_close(&tech);
	h_relay_stop(&r);
}

/* What a customer's agent printed must show nothing of these tickets. */
static void expect_shows_nothing(struct h_proc *a, const char *what,
				 const char *part)
{
	char *out;

	expect_agent_exit(a, 1, part, what);
	out = h_proc_output(a);
	cr_assert(strstr(out, "QZX") == NULL && strstr(out, "admin") == NULL &&
		      strstr(out, "T-") == NULL &&
		      strstr(out, "wants to connect") == NULL &&
		      strstr(out, "capabilities") == NULL,
		  "%s showed: %s", what, out);
	free(out);
}

/*
 * The programs themselves: customers' agents with a code one digit off
 * (a nameplate nobody holds) or one word off (the right nameplate), and
 * the technician's tether exec that finds the latter out.  The agents
 * print that the code is wrong and what to do, nothing of any ticket.
 */
Test(codes, real_slips_print_nothing, .timeout = 120)
{
	const char *cmd[] = {"true", NULL};
	char ticket[2][H_ID_MAX], code[2][H_CODE_MAX], slip[H_CODE_MAX];
	char np[2][16], want[192];
	struct h_relay r;
	struct h_proc a;
	struct h_res res;
	int round;

	h_relay_up(&r, NULL);
	h_login(&r);
	for (int i = 0; i < 2; i++) {
		h_ticket_new(i ? "Merger QZX two" : "Payroll QZX one",
			     ticket[i], sizeof(ticket[i]));
		h_invite(ticket[i], NULL, code[i], sizeof(code[i]));
		nameplate_of(code[i], np[i], sizeof(np[i]));
	}
	for (round = 0; round < 3; round++) {
		/* One digit off, onto no live nameplate. */
		const char *rest = strchr(code[0], '-');
		char slipped[16];

		do
			slip_digit(np[0], slipped, sizeof(slipped));
		while (strcmp(slipped, np[1]) == 0);
		snprintf(slip, sizeof(slip), "%s%s", slipped, rest);
		h_agent_start(&a, &r, slip, NULL);
		expect_shows_nothing(&a, "a nameplate slip",
				     "tether-agent: unknown or expired code; "
				     "check it, or ask your technician for "
				     "the code again");

		/* The right nameplate, a word off: the console finds out. */
		wrong_code(code[1], slip, sizeof(slip));
		h_agent_start(&a, &r, slip, NULL);
		h_wait_joined(ticket[1], 15000, &a);
		h_exec(&res, NULL, ticket[1], cmd);
		snprintf(want, sizeof(want),
			 "tether: the code for %s was burned by a wrong guess "
			 "(from 127.0.0.1:",
			 ticket[1]);
		h_expect_fail(&res, 255, want, "exec after a word slip");
		h_res_free(&res);
		expect_shows_nothing(&a, "a word slip",
				     "tether-agent: the code is wrong; ask "
				     "your technician for the code again");
		h_invite(ticket[1], NULL, code[1], sizeof(code[1]));
		nameplate_of(code[1], np[1], sizeof(np[1]));
	}
	h_relay_stop(&r);
}
