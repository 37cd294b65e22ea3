/*
 * End-to-end: who may talk to the relay and which relay the programs trust.
 * Tokens (bad, revoked), certificate pinning (a made-up fingerprint,
 * another relay's fingerprint, a relay replaced behind a pinned address),
 * an unreachable relay, and the agent's own pin check (docs/cli.md).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"

TestSuite(auth, .init = h_setup, .fini = h_teardown);

/* Well-formed but belongs to no certificate. */
#define FAKE_FP "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

/* The relay still answers a logged-in console. */
static void expect_serving(struct h_relay *r)
{
	struct h_res res;

	cr_assert(h_relay_alive(r), "relay died: see %s", r->log);
	h_console_ok(&res, NULL, "ticket", "list", NULL);
	h_res_free(&res);
}

Test(auth, bad_token, .timeout = 60)
{
	char token[128];
	struct h_relay r;
	struct h_res res;

	h_relay_up(&r, NULL);
	snprintf(token, sizeof(token), "tt_1_%064d", 0);
	h_console(&res, NULL, "login", r.addr, "--token", token,
		  "--fingerprint", r.fingerprint, NULL);
	h_expect_fail(&res, 255, "tether: relay refused: invalid token",
		      "tether login with a wrong token");
	h_res_free(&res);

	h_console(&res, NULL, "login", r.addr, "--token", "not-a-token",
		  "--fingerprint", r.fingerprint, NULL);
	h_expect_fail(&res, 255, "invalid token",
		      "tether login with a malformed token");
	h_res_free(&res);

	h_login(&r);
	expect_serving(&r);
	h_relay_stop(&r);
}

/*
 * Token guessing is throttled per address like code guessing, and a
 * throttled source writes no more audit rows (the table is append-only).
 */
Test(auth, token_guessing_is_throttled, .timeout = 60)
{
	char token[128];
	struct h_relay r;
	struct h_res res;
	int i;

	h_relay_up(&r, NULL);
	for (i = 0; i < 5; i++) {
		snprintf(token, sizeof(token), "tt_1_%064d", i);
		h_console(&res, NULL, "login", r.addr, "--token", token,
			  "--fingerprint", r.fingerprint, NULL);
		h_expect_fail(&res, 255, "invalid token", "a wrong token");
		h_res_free(&res);
	}
	h_console(&res, NULL, "login", r.addr, "--token", token,
		  "--fingerprint", r.fingerprint, NULL);
	h_expect_fail(&res, 255, "too many attempts",
		      "the sixth wrong token in a minute");
	h_res_free(&res);
	cr_assert(h_relay_alive(&r));
	h_relay_stop(&r);
}

Test(auth, revoked_token, .timeout = 60)
{
	struct h_relay r;
	const char *rm[] = {h_relay_bin(), "technician", "remove", "carol",
			    "--data",	   r.data,	 NULL};
	char token[H_TOKEN_MAX];
	struct h_res res;

	h_relay_up(&r, NULL);
	h_technician_add(&r, "carol", "technician", token, sizeof(token));
	h_console(&res, NULL, "login", r.addr, "--token", token,
		  "--fingerprint", r.fingerprint, NULL);
	h_expect(&res, 0, NULL, NULL, "tether login as carol");
	h_res_free(&res);
	expect_serving(&r);

	/* Removing the technician revokes the key at once. */
	h_run(&res, NULL, rm);
	h_expect(&res, 0, NULL, NULL, "tether-relay technician remove carol");
	h_res_free(&res);
	h_console(&res, NULL, "ticket", "list", NULL);
	h_expect_fail(&res, 255,
		      "tether: relay refused: technician carol is not known "
		      "to this relay (removed, or never added; ask an admin)",
		      "tether ticket list with a removed technician's key");
	h_res_free(&res);
	h_relay_stop(&r);
}

Test(auth, not_logged_in, .timeout = 30)
{
	struct h_res res;

	h_console(&res, NULL, "ticket", "list", NULL);
	h_expect_fail(&res, 255,
		      "tether: not logged in (run: tether login HOST:PORT "
		      "--token TOKEN)",
		      "tether ticket list with no configuration");
	h_res_free(&res);
}

Test(auth, made_up_fingerprint, .timeout = 60)
{
	struct h_relay r;
	struct h_res res;
	char want[512];

	h_relay_up(&r, NULL);
	h_console(&res, NULL, "login", r.addr, "--token", r.admin_token,
		  "--fingerprint", FAKE_FP, NULL);
	/* Nothing was pinned: the fingerprint at fault is the one given. */
	snprintf(want, sizeof(want),
		 "tether: relay certificate fingerprint %s does not match the "
		 "given --fingerprint %s",
		 r.fingerprint, FAKE_FP);
	h_expect_fail(&res, 255, want,
		      "tether login with a made-up fingerprint");
	cr_assert(strstr(res.err, "pinned") == NULL,
		  "nothing was pinned, yet: %s", res.err);
	h_res_free(&res);
	h_relay_stop(&r);
}

Test(auth, other_relays_fingerprint, .timeout = 60)
{
	struct h_relay one, two;
	struct h_res res;

	h_relay_init(&one, "one");
	h_relay_start(&one, NULL, NULL);
	h_relay_init(&two, "two");
	h_relay_start(&two, NULL, NULL);
	cr_assert_str_neq(one.fingerprint, two.fingerprint);
	h_console(&res, NULL, "login", two.addr, "--token", two.admin_token,
		  "--fingerprint", one.fingerprint, NULL);
	h_expect_fail(&res, 255, "does not match",
		      "tether login to relay two with relay one's "
		      "fingerprint");
	h_res_free(&res);
	h_relay_stop(&one);
	h_relay_stop(&two);
}

/* A different relay answering on a pinned HOST:PORT is a hard error. */
Test(auth, relay_replaced, .timeout = 60)
{
	struct h_relay one, two;
	struct h_res res;
	char want[512];

	h_relay_init(&one, "one");
	h_relay_start(&one, NULL, NULL);
	h_login(&one);
	expect_serving(&one);
	h_relay_stop(&one);

	h_relay_init(&two, "two");
	h_relay_start(&two, one.addr, NULL);
	cr_assert_str_eq(two.addr, one.addr);
	h_console(&res, NULL, "ticket", "list", NULL);
	snprintf(want, sizeof(want),
		 "relay certificate fingerprint %s does not match the "
		 "pinned %s",
		 two.fingerprint, one.fingerprint);
	h_expect_fail(&res, 255, want,
		      "tether ticket list against a replaced relay");
	/* It says how to trust the new certificate, once checked. */
	snprintf(want, sizeof(want), "run: tether login %s --fingerprint %s)\n",
		 one.addr, two.fingerprint);
	cr_assert(strstr(res.err, want) != NULL &&
		      strstr(res.err, "out of band") != NULL,
		  "no re-pin hint \"%s\": %s", want, res.err);
	h_res_free(&res);

	/* Logging in again does not silently re-pin either. */
	h_console(&res, NULL, "login", two.addr, NULL);
	h_expect_fail(&res, 255, "does not match",
		      "tether login to a replaced relay without "
		      "--fingerprint");
	h_res_free(&res);
	/* Nor does a --fingerprint that is not the relay's. */
	h_console(&res, NULL, "login", two.addr, "--fingerprint", FAKE_FP,
		  NULL);
	snprintf(want, sizeof(want),
		 "does not match the given --fingerprint %s", FAKE_FP);
	h_expect_fail(&res, 255, want,
		      "tether login to a replaced relay with a made-up "
		      "--fingerprint");
	h_res_free(&res);
	h_console(&res, NULL, "ticket", "list", NULL);
	h_expect_fail(&res, 255, "does not match the pinned",
		      "tether ticket list after a refused re-pin");
	h_res_free(&res);

	/*
	 * The right fingerprint reaches relay two, which has no key for
	 * this console's admin (it is another relay): nothing is stored.
	 */
	h_console(&res, NULL, "login", two.addr, "--fingerprint",
		  two.fingerprint, NULL);
	h_expect_fail(&res, 255, "technician admin has no key registered",
		      "tether login --fingerprint NEW with relay one's key");
	h_res_free(&res);
	/* A key here is said so before any token is sent. */
	h_console(&res, NULL, "login", two.addr, "--token", two.admin_token,
		  "--fingerprint", two.fingerprint, NULL);
	snprintf(want, sizeof(want),
		 "tether: already logged in to %s as admin with a key of this "
		 "console (tether logout forgets it",
		 two.addr);
	h_expect_fail(&res, 255, want, "tether login over a key");
	h_res_free(&res);
	h_console_ok(&res, NULL, "logout", NULL);
	h_res_free(&res);
	/* The new fingerprint given explicitly replaces the pin. */
	h_console(&res, NULL, "login", two.addr, "--token", two.admin_token,
		  "--fingerprint", two.fingerprint, NULL);
	snprintf(want, sizeof(want),
		 "tether: the pinned fingerprint for %s was %s; now %s\n",
		 two.addr, one.fingerprint, two.fingerprint);
	h_expect(&res, 0, NULL, want, "tether login --fingerprint NEW");
	h_res_free(&res);
	expect_serving(&two);
	h_relay_stop(&two);
}

/* A loopback port nobody listens on (bound, then released). */
static int closed_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert(fd >= 0, "socket");
	cr_assert(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
		      getsockname(fd, (struct sockaddr *)&sa, &len) == 0,
		  "cannot find a free port");
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

Test(auth, unreachable, .timeout = 60)
{
	char addr[H_ADDR_MAX], want[128];
	struct h_res res;

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", closed_port());
	h_console(&res, NULL, "login", addr, "--token", "tt_1_00",
		  "--fingerprint", FAKE_FP, NULL);
	snprintf(want, sizeof(want), "tether: cannot connect to %s", addr);
	h_expect_fail(&res, 255, want, "tether login to a closed port");
	h_res_free(&res);
}

Test(auth, agent_wrong_fingerprint, .timeout = 60)
{
	char ticket[H_ID_MAX], code[H_CODE_MAX], *out;
	struct h_relay r;
	struct h_proc a;
	int st;

	h_relay_up(&r, NULL);
	h_login(&r);
	h_ticket_new("pin check", ticket, sizeof(ticket));
	h_invite(ticket, NULL, code, sizeof(code));
	h_agent_start(&a, &r, code, FAKE_FP);
	st = h_proc_wait(&a, 10000);
	out = h_proc_output(&a);
	cr_assert_eq(st, 1,
		     "agent with a wrong --fingerprint: status %d "
		     "(-1: still running after 10 s): %s",
		     st, out);
	cr_assert(strstr(out, "does not match"),
		  "agent with a wrong --fingerprint: %s", out);
	free(out);

	/* It stopped before saying anything, so the code is still good. */
	h_agent_start(&a, &r, code, NULL);
	h_wait_joined(ticket, 15000, &a);
	h_relay_stop(&r);
}

/*
 * Without --fingerprint the agent shows the relay's fingerprint and goes on
 * only with --yes (no terminal to ask).
 */
Test(auth, agent_without_fingerprint, .timeout = 60)
{
	char ticket[H_ID_MAX], code[H_CODE_MAX], *out;
	struct h_relay r;
	struct h_proc a;
	int st;

	h_relay_up(&r, NULL);
	h_login(&r);
	h_ticket_new("trust on first use", ticket, sizeof(ticket));
	h_invite(ticket, NULL, code, sizeof(code));

	h_agent_start_opts(&a, &r, code, "", false);
	st = h_proc_wait(&a, 10000);
	out = h_proc_output(&a);
	cr_assert_eq(st, 1,
		     "agent without --fingerprint or --yes: status %d "
		     "(-1: still running after 10 s): %s",
		     st, out);
	cr_assert(strstr(out, "tether-agent: no terminal to confirm the relay "
			      "fingerprint; pass --fingerprint or --yes"),
		  "agent without --fingerprint or --yes: %s", out);
	cr_assert(strstr(out, r.fingerprint),
		  "agent did not show the relay fingerprint %s: %s",
		  r.fingerprint, out);
	free(out);

	h_agent_start_opts(&a, &r, code, "", true);
	h_wait_joined(ticket, 15000, &a);
	out = h_proc_output(&a);
	cr_assert(strstr(out, r.fingerprint),
		  "agent did not show the relay fingerprint %s: %s",
		  r.fingerprint, out);
	free(out);
	h_relay_stop(&r);
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Removing a technician cuts the consoles they have open within a second
 * (the relay looks every 250 ms): a running exec and a running forward
 * end with the reason, the customer's agent says so and stops the
 * command, and the trail says who lost access and what was closed.
 */
Test(auth, removal_cuts_live_consoles, .timeout = 120)
{
	const char *const sleeper[] = {"sleep", "60", NULL};
	const char *const one[] = {"true", NULL};
	char token[H_TOKEN_MAX], spec[64], *out;
	struct h_session s;
	struct h_proc ex, fwd;
	struct h_res res;
	int64_t t0, ex_ms = -1, fwd_ms = -1;
	json_t *tk, *ev;
	size_t i;
	int st, cut;

	h_session_start(&s, "revocation", NULL);
	/* Paired by alice; carol then works on the same live session. */
	h_exec(&res, NULL, s.ticket, one);
	h_expect(&res, 0, "", "", "tether exec true");
	h_res_free(&res);
	h_technician_add(&s.relay, "carol", "technician", token, sizeof(token));
	h_login_as(&s.relay, token);
	h_console_start(&ex, "exec", "exec", s.ticket, "--", sleeper[0],
			sleeper[1], NULL);
	cr_assert(h_proc_wait_output(&s.agent, "carol runs: sleep 60", 20000),
		  "the agent never ran carol's command: %s",
		  h_proc_output(&s.agent));
	snprintf(spec, sizeof(spec), "%d:127.0.0.1:%d", h_free_port(),
		 s.relay.port);
	h_console_start(&fwd, "forward", "forward", s.ticket, spec, NULL);
	cr_assert(h_proc_wait_output(&fwd, "Forwarding 127.0.0.1:", 20000),
		  "tether forward did not start: %s", h_proc_output(&fwd));

	/* From before the command: its commit is what the relay sees. */
	t0 = mono_ms();
	{
		const char *rm[] = {h_relay_bin(), "technician", "remove",
				    "carol",	   "--data",	 s.relay.data,
				    NULL};

		h_run(&res, NULL, rm);
	}
	h_expect(&res, 0, NULL, NULL, "tether-relay technician remove carol");
	h_res_free(&res);
	while (mono_ms() - t0 < 5000 && (ex_ms < 0 || fwd_ms < 0)) {
		if (ex_ms < 0 && h_proc_wait(&ex, 10) >= 0)
			ex_ms = mono_ms() - t0;
		if (fwd_ms < 0 && h_proc_wait(&fwd, 10) >= 0)
			fwd_ms = mono_ms() - t0;
	}
	cr_assert(ex_ms >= 0 && fwd_ms >= 0,
		  "still running 5 s after the removal: exec %s, forward %s",
		  ex_ms < 0 ? "yes" : "no", fwd_ms < 0 ? "yes" : "no");
	/* The figure docs/security.md quotes. */
	fprintf(stderr,
		"cut off after removal: exec %lld ms, forward %lld ms\n",
		(long long)ex_ms, (long long)fwd_ms);
	/*
	 * Within a second of the command (the relay looks every 250 ms);
	 * the sanitizer build's command itself may take a second more.
	 */
	cr_assert_leq(ex_ms, h_sanitized() ? 2000 : 1000,
		      "exec cut off after %lld ms", (long long)ex_ms);
	cr_assert_leq(fwd_ms, h_sanitized() ? 2000 : 1000,
		      "forward cut off after %lld ms", (long long)fwd_ms);
	st = h_proc_wait(&ex, 0);
	cr_assert_eq(st, 255, "exec exited with %d: %s", st,
		     h_proc_output(&ex));
	out = h_proc_output(&ex);
	cr_assert(strstr(out, "technician removed") != NULL,
		  "exec did not say why: %s", out);
	free(out);
	out = h_proc_output(&fwd);
	cr_assert(strstr(out, "technician removed") != NULL,
		  "forward did not say why: %s", out);
	free(out);
	cr_assert(h_proc_wait_output(&s.agent,
				     "the technician was removed from the "
				     "relay; stopping the command",
				     5000),
		  "the customer was not told: %s", h_proc_output(&s.agent));
	/* Carol's key is refused from now on. */
	h_console(&res, NULL, "ticket", "list", NULL);
	h_expect_fail(&res, 255, "technician carol is not known to this relay",
		      "carol after removal");
	h_res_free(&res);

	cr_assert(h_file_contains(
		      s.relay.log, "technician carol was removed: closing",
		      strlen("technician carol was removed: closing")),
		  "the relay did not log the cut");
	h_login(&s.relay);
	tk = h_ticket_show(s.ticket);
	/* The exec channel's close row gives the reason. */
	cut = 0;
	json_array_foreach (json_object_get(tk, "audit"), i, ev) {
		json_t *d = json_object_get(ev, "detail");
		const char *why =
		    json_string_value(json_object_get(d, "reason"));

		if (strcmp(json_string_value(json_object_get(ev, "event")),
			   "channel_close") == 0 &&
		    why != NULL && strcmp(why, "technician removed") == 0)
			cut++;
	}
	cr_assert_eq(cut, 1, "channel_close rows for the cut: %d (%s)", cut,
		     h_audit_names(tk));
	json_decref(tk);
	h_proc_stop(&s.agent, SIGTERM);
	h_relay_stop(&s.relay);
}

/* How many *.json files dir holds (-1: none such directory). */
static int json_files(const char *dir)
{
	struct dirent *e;
	DIR *d = opendir(dir);
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		n += strstr(e->d_name, ".json") != NULL;
	closedir(d);
	return n;
}

/*
 * `tether logout` forgets the technician key and the session keys, keeps
 * the pin,
 * and is no error when repeated.
 */
Test(auth, logout_forgets_key_and_session_keys, .timeout = 60)
{
	const char *const one[] = {"true", NULL};
	char cfg[H_PATH_MAX], path[H_PATH_MAX + 32], want[128];
	struct h_session s;
	struct h_res res;
	json_t *j;

	h_session_start(&s, "logout", NULL);
	h_exec(&res, NULL, s.ticket, one);
	h_expect(&res, 0, "", "", "tether exec true");
	h_res_free(&res);
	h_path(cfg, sizeof(cfg), "config");
	snprintf(path, sizeof(path), "%s/tether/sessions", cfg);
	cr_assert_eq(json_files(path), 1, "the paired session's key file");

	h_console_ok(&res, NULL, "logout", NULL);
	snprintf(want, sizeof(want),
		 "Logged out of %s; forgot the technician key and 1 session "
		 "file\n",
		 s.relay.addr);
	h_expect(&res, 0, want, "", "tether logout");
	h_res_free(&res);
	cr_assert_eq(json_files(path), 0, "session files left behind");
	snprintf(path, sizeof(path), "%s/tether/technician.key", cfg);
	cr_assert(access(path, F_OK) != 0, "the technician key left behind");
	snprintf(path, sizeof(path), "%s/tether/config.json", cfg);
	cr_assert(access(path, F_OK) != 0, "config.json left behind");
	snprintf(path, sizeof(path), "%s/tether/known_relays", cfg);
	cr_assert(h_file_contains(path, s.relay.fingerprint,
				  strlen(s.relay.fingerprint)),
		  "the pin went too");

	h_exec(&res, NULL, s.ticket, one);
	h_expect_fail(&res, 255, "not logged in", "exec after logout");
	h_res_free(&res);
	h_console_ok(&res, NULL, "logout", "--json", NULL);
	j = json_loads(res.out, 0, NULL);
	cr_assert(j != NULL, "logout --json: not JSON: %s", res.out);
	cr_assert(json_is_null(json_object_get(j, "relay")));
	cr_assert(json_is_false(json_object_get(j, "logged_out")));
	cr_assert(json_is_false(json_object_get(j, "key_forgotten")));
	cr_assert_eq(
	    json_integer_value(json_object_get(j, "sessions_forgotten")), 0);
	json_decref(j);
	h_res_free(&res);
	h_console(&res, NULL, "logout", "extra", NULL);
	h_expect_fail(&res, 2, "takes no operands", "logout with an operand");
	h_res_free(&res);
	h_proc_stop(&s.agent, SIGTERM);
	h_relay_stop(&s.relay);
}
