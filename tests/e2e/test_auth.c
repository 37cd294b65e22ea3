/*
 * End-to-end: who may talk to the relay and which relay the programs trust.
 * Login tokens (bad, spent, revoked) and technician keys (registered at
 * login, 0600, another technician's, damaged, replaced by a new login),
 * certificate pinning (a made-up fingerprint, another relay's fingerprint,
 * a relay replaced behind a pinned address), an unreachable relay, and the
 * agent's own pin check (docs/cli.md).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <sqlite3.h>

#include <tether/id.h>
#include <tether/sign.h>

#include "harness.h"

TestSuite(auth, .init = h_setup, .fini = h_teardown);

static int audit_rows(const struct h_relay *r, const char *event,
		      const char *part);

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
	cr_assert_eq(audit_rows(&r, "auth_failed", "\"unknown technician\""),
		     1);
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
	/* The admin's ticket is carol's once given to her (relay-policy.c). */
	h_console_ok(&res, NULL, "ticket", "assign", s.ticket, "carol", NULL);
	h_res_free(&res);
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

/* ---- Technician keys -------------------------------------------------- */

/*
 * Audit rows of event whose detail holds part (NULL: any), read-only from
 * the relay's database: the rows without a ticket are nowhere else.
 */
static int audit_rows(const struct h_relay *r, const char *event,
		      const char *part)
{
	char db[H_PATH_MAX + 16];
	sqlite3_stmt *st = NULL;
	sqlite3 *h = NULL;
	int n = -1;

	snprintf(db, sizeof(db), "%s/tether.db", r->data);
	cr_assert_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL),
		     SQLITE_OK, "%s", db);
	sqlite3_busy_timeout(h, 2000);
	cr_assert_eq(sqlite3_prepare_v2(h,
					"SELECT COUNT(*) FROM audit WHERE"
					" event = ?1 AND (?2 IS NULL OR"
					" instr(detail, ?2) > 0)",
					-1, &st, NULL),
		     SQLITE_OK);
	sqlite3_bind_text(st, 1, event, -1, SQLITE_STATIC);
	if (part != NULL)
		sqlite3_bind_text(st, 2, part, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(h);
	return n;
}

/* Replaces path with len bytes of data. */
static void write_bytes(const char *path, const void *data, size_t len)
{
	FILE *fp = fopen(path, "w");

	cr_assert(fp != NULL, "cannot write %s", path);
	cr_assert_eq(fwrite(data, 1, len, fp), len);
	cr_assert_eq(fclose(fp), 0);
}

/* A console configuration of its own (XDG_CONFIG_HOME) under name. */
struct desk {
	char cfg[H_PATH_MAX];
	char env[H_PATH_MAX + 32];
	const char *envv[2];
	struct h_opts o;
};

static void desk_init(struct desk *d, const char *name)
{
	h_path(d->cfg, sizeof(d->cfg), name);
	cr_assert(mkdir(d->cfg, 0700) == 0, "mkdir %s", d->cfg);
	snprintf(d->env, sizeof(d->env), "XDG_CONFIG_HOME=%s", d->cfg);
	d->envv[0] = d->env;
	d->envv[1] = NULL;
	memset(&d->o, 0, sizeof(d->o));
	d->o.env = d->envv;
}

/* The test's own configuration's file name, into path. */
static const char *cfg_file(char *path, size_t len, const char *name)
{
	char cfg[H_PATH_MAX];

	h_path(cfg, sizeof(cfg), "config");
	snprintf(path, len, "%s/tether/%s", cfg, name);
	return path;
}

/* The fingerprint of the key in the file at path. */
static void key_fingerprint(const char *path, char *fp, size_t len)
{
	uint8_t pub[TETHER_SIGN_PUB_LEN];
	struct tether_sign_key *k = NULL;

	cr_assert_eq(tether_sign_key_load(path, &k, pub), 0, "%s", path);
	tether_sign_key_free(k);
	cr_assert_eq(tether_sign_key_fingerprint(pub, fp, len), 0);
}

/*
 * tether login makes the key (0600) and registers it; the config keeps
 * no token, the token is spent (a second login with it is refused and
 * audited), and command after command signs in with the key.
 */
Test(auth, login_registers_key_and_spends_token, .timeout = 90)
{
	char token[H_TOKEN_MAX], path[H_PATH_MAX + 32], want[1024];
	char fp[TETHER_ID_FINGERPRINT_LEN], *text;
	struct h_relay r, two;
	struct h_res res;
	struct desk other;
	struct stat st;
	int i;

	h_relay_up(&r, NULL);
	h_technician_add(&r, "carol", "technician", token, sizeof(token));
	h_console_ok(&res, NULL, "login", r.addr, "--token", token,
		     "--fingerprint", r.fingerprint, NULL);
	snprintf(want, sizeof(want),
		 "Logged in to %s as carol (technician); the login token is "
		 "now spent\n",
		 r.addr);
	h_expect(&res, 0, want, "", "tether login as carol");
	h_res_free(&res);

	cfg_file(path, sizeof(path), "technician.key");
	cr_assert_eq(stat(path, &st), 0, "no key file %s", path);
	cr_assert_eq(st.st_mode & 0777, 0600, "key file mode %o",
		     (unsigned)(st.st_mode & 0777));
	key_fingerprint(path, fp, sizeof(fp));
	cfg_file(path, sizeof(path), "config.json");
	text = h_read_file(path, NULL);
	cr_assert(strstr(text, "\"technician\": \"carol\"") != NULL,
		  "config.json: %s", text);
	cr_assert(strstr(text, "token") == NULL &&
		      strstr(text, token + 3) == NULL,
		  "config.json keeps the token: %s", text);
	free(text);
	cr_assert_eq(audit_rows(&r, "technician_key_registered", fp), 1,
		     "no technician_key_registered row with key %s", fp);
	cr_assert_eq(audit_rows(&r, "technician_key_registered",
				"\"technician\":\"carol\""),
		     1);

	/* Spent: from another desk too, with what to ask for. */
	desk_init(&other, "other-desk");
	h_console(&res, &other.o, "login", r.addr, "--token", token,
		  "--fingerprint", r.fingerprint, NULL);
	h_expect_fail(&res, 255,
		      "tether: relay refused: this login token was already "
		      "used; ask an admin for a new one (tether-relay "
		      "technician token carol)",
		      "a second login with a spent token");
	h_res_free(&res);
	cr_assert_eq(
	    audit_rows(&r, "auth_failed", "\"login token already used\""), 1);
	/* Here, over the key: said before anything is sent. */
	h_console(&res, NULL, "login", r.addr, "--token", token,
		  "--fingerprint", r.fingerprint, NULL);
	snprintf(want, sizeof(want),
		 "tether: already logged in to %s as carol with a key of this "
		 "console (tether logout forgets it, then tether login %s "
		 "--token TOKEN registers a new one; an admin issues the token "
		 "with: tether-relay technician token carol)",
		 r.addr, r.addr);
	h_expect_fail(&res, 255, want, "tether login over a stored key");
	h_res_free(&res);

	/* Each command signs a fresh challenge with the key. */
	for (i = 0; i < 5; i++) {
		h_console_ok(&res, NULL, "ticket", "list", "--json", NULL);
		h_res_free(&res);
	}
	cr_assert_eq(audit_rows(&r, "auth_failed", "carol"), 1,
		     "a keyed command was refused");

	/* A login to another relay replaces this one, and says so. */
	h_relay_init(&two, "two");
	h_relay_start(&two, NULL, NULL);
	h_console(&res, NULL, "login", two.addr, "--token", two.admin_token,
		  "--fingerprint", two.fingerprint, NULL);
	snprintf(want, sizeof(want),
		 "tether: this replaces the login to %s as carol (its key is "
		 "forgotten)\n",
		 r.addr);
	h_expect(&res, 0, NULL, want, "tether login to another relay");
	h_res_free(&res);
	h_console(&res, NULL, "ticket", "list", NULL);
	h_expect(&res, 0, NULL, "", "tether ticket list on relay two");
	h_res_free(&res);
	h_relay_stop(&two);
	h_relay_stop(&r);
}

/*
 * A config whose key is another technician's, a damaged key and one that
 * others may read are refused, each with what to do; the relay audits the
 * wrong key and counts it in the limiter like token guessing.
 */
Test(auth, foreign_or_damaged_key_refused, .timeout = 90)
{
	char token[H_TOKEN_MAX], path[H_PATH_MAX + 32], mine[H_PATH_MAX + 32];
	char want[3 * H_PATH_MAX], *text;
	struct h_relay r;
	struct h_res res;
	struct desk carol;
	int i;

	h_relay_up(&r, NULL);
	h_login(&r);
	h_technician_add(&r, "carol", "technician", token, sizeof(token));
	desk_init(&carol, "carol-desk");
	h_console(&res, &carol.o, "login", r.addr, "--token", token,
		  "--fingerprint", r.fingerprint, NULL);
	h_expect(&res, 0, NULL, "", "tether login as carol");
	h_res_free(&res);

	/* admin's config, carol's key. */
	cfg_file(mine, sizeof(mine), "technician.key");
	snprintf(path, sizeof(path), "%s/tether/technician.key", carol.cfg);
	text = h_read_file(path, NULL);
	write_bytes(mine, text, strlen(text));
	free(text);
	cr_assert_eq(chmod(mine, 0600), 0);
	h_console(&res, NULL, "ticket", "list", NULL);
	h_expect_fail(&res, 255,
		      "tether: relay refused: this console's key is not the "
		      "one registered for technician admin",
		      "admin's config with carol's key");
	h_res_free(&res);
	cr_assert_eq(audit_rows(&r, "auth_failed", "\"wrong key\""), 1);
	/* Carol's own desk is not affected. */
	h_console_ok(&res, &carol.o, "ticket", "list", NULL);
	h_res_free(&res);

	/* Damaged, then readable by others: refused before connecting. */
	write_bytes(mine, "-----BEGIN PRIVATE KEY-----\nnot a key\n", 38);
	cr_assert_eq(chmod(mine, 0600), 0);
	h_console(&res, NULL, "ticket", "list", NULL);
	snprintf(want, sizeof(want),
		 "tether: the technician key %s is damaged (not an Ed25519 "
		 "key); log in again with a new login token from an admin",
		 mine);
	h_expect_fail(&res, 255, want, "a damaged key");
	h_res_free(&res);
	snprintf(path, sizeof(path), "%s/tether/technician.key", carol.cfg);
	text = h_read_file(path, NULL);
	write_bytes(mine, text, strlen(text));
	free(text);
	cr_assert_eq(chmod(mine, 0644), 0);
	h_console(&res, NULL, "ticket", "list", NULL);
	snprintf(want, sizeof(want),
		 "tether: the technician key %s may be read by others; "
		 "refusing to use it (run: chmod 600 %s)",
		 mine, mine);
	h_expect_fail(&res, 255, want, "a key others may read");
	h_res_free(&res);

	/* Wrong keys cost slots in the limiter, as wrong tokens do. */
	cr_assert_eq(chmod(mine, 0600), 0);
	for (i = 0; i < 4; i++) {
		h_console(&res, NULL, "ticket", "list", NULL);
		h_expect_fail(&res, 255, "is not the one registered",
			      "a wrong key again");
		h_res_free(&res);
	}
	h_console(&res, NULL, "ticket", "list", NULL);
	h_expect_fail(&res, 255, "too many attempts",
		      "the sixth wrong key in a minute");
	h_res_free(&res);
	h_relay_stop(&r);
}

/*
 * technician token NAME: a fresh login token (audited); the login it makes
 * replaces the key, the console still on the old key is cut within a
 * second and refused afterwards.
 */
Test(auth, new_token_replaces_key_and_cuts_old, .timeout = 120)
{
	const char *const sleeper[] = {"sleep", "60", NULL};
	char token[H_TOKEN_MAX], path[H_PATH_MAX + 32];
	char old_fp[TETHER_ID_FINGERPRINT_LEN],
	    new_fp[TETHER_ID_FINGERPRINT_LEN];
	struct h_session s;
	struct h_proc ex;
	struct h_res res;
	struct desk laptop;
	int64_t t0, ms = -1;
	char *out;
	int st;

	h_session_start(&s, "new laptop", NULL);
	cfg_file(path, sizeof(path), "technician.key");
	key_fingerprint(path, old_fp, sizeof(old_fp));
	h_console_start(&ex, "exec", "exec", s.ticket, "--", sleeper[0],
			sleeper[1], NULL);
	cr_assert(h_proc_wait_output(&s.agent, "runs: sleep 60", 20000),
		  "the agent never ran the command: %s",
		  h_proc_output(&s.agent));

	{
		const char *argv[] = {h_relay_bin(), "technician", "token",
				      "nobody",	     "--data",	   s.relay.data,
				      NULL};

		h_run(&res, NULL, argv);
		h_expect_fail(&res, 1,
			      "tether-relay: nobody: no such technician",
			      "technician token for nobody");
		h_res_free(&res);
	}
	h_technician_token(&s.relay, "admin", token, sizeof(token));
	cr_assert_eq(audit_rows(&s.relay, "technician_token_issued",
				"\"technician\":\"admin\""),
		     1 + 1, "h_session_start's login took one too");
	/* The old key still works until the new login. */
	h_console_ok(&res, NULL, "ticket", "list", NULL);
	h_res_free(&res);

	desk_init(&laptop, "new-laptop");
	t0 = mono_ms();
	h_console(&res, &laptop.o, "login", s.relay.addr, "--token", token,
		  "--fingerprint", s.relay.fingerprint, NULL);
	h_expect(&res, 0, NULL, "", "tether login on the new laptop");
	h_res_free(&res);
	while (mono_ms() - t0 < 5000 && ms < 0)
		if (h_proc_wait(&ex, 10) >= 0)
			ms = mono_ms() - t0;
	cr_assert(ms >= 0, "the old key's exec still runs 5 s after the login");
	fprintf(stderr, "cut off after a new login: exec %lld ms\n",
		(long long)ms);
	cr_assert_leq(ms, h_sanitized() ? 3000 : 1500,
		      "exec cut off after %lld ms", (long long)ms);
	st = h_proc_wait(&ex, 0);
	out = h_proc_output(&ex);
	cr_assert(st == 255 && strstr(out, "technician key replaced by a new "
					   "login") != NULL,
		  "exec: status %d: %s", st, out);
	free(out);

	h_console(&res, NULL, "ticket", "list", NULL);
	h_expect_fail(&res, 255,
		      "this console's key is not the one registered for "
		      "technician admin",
		      "the old key after the new login");
	h_res_free(&res);
	h_console_ok(&res, &laptop.o, "ticket", "list", NULL);
	h_res_free(&res);
	snprintf(path, sizeof(path), "%s/tether/technician.key", laptop.cfg);
	key_fingerprint(path, new_fp, sizeof(new_fp));
	cr_assert_str_neq(old_fp, new_fp);
	cr_assert_eq(audit_rows(&s.relay, "technician_key_registered", new_fp),
		     1);
	cr_assert_eq(audit_rows(&s.relay, "technician_cut_off",
				"technician key replaced"),
		     1);
	h_proc_stop(&s.agent, SIGTERM);
	h_relay_stop(&s.relay);
}

/*
 * A login token is good for a week: one that leaked unused cannot
 * register a key (and so replace a technician's) after that.  The clock
 * is moved by writing the expiry into the database.
 */
Test(auth, expired_login_token_is_refused, .timeout = 90)
{
	char token[H_TOKEN_MAX], db[H_PATH_MAX + 16];
	struct h_relay r;
	struct h_res res;
	sqlite3 *h = NULL;
	json_t *j;

	h_relay_up(&r, NULL);
	h_technician_add(&r, "erin", "technician", token, sizeof(token));
	/* Made with a week to go. */
	snprintf(db, sizeof(db), "%s/tether.db", r.data);
	cr_assert_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE, NULL),
		     SQLITE_OK, "%s", db);
	sqlite3_busy_timeout(h, 2000);
	{
		sqlite3_stmt *st = NULL;
		long long left = -1;

		cr_assert_eq(sqlite3_prepare_v2(
				 h,
				 "SELECT token_expires_at - created_at FROM "
				 "technicians WHERE name = 'erin'",
				 -1, &st, NULL),
			     SQLITE_OK);
		if (sqlite3_step(st) == SQLITE_ROW)
			left = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
		cr_assert(left >= 7 * 86400 - 5 && left <= 7 * 86400 + 5,
			  "the token is good for %lld s", left);
	}
	cr_assert_eq(
	    sqlite3_exec(h,
			 "UPDATE technicians SET token_expires_at = "
			 "strftime('%s','now') - 1 WHERE name = 'erin'",
			 NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(h);

	h_console(&res, NULL, "login", r.addr, "--token", token,
		  "--fingerprint", r.fingerprint, NULL);
	h_expect_fail(&res, 255,
		      "this login token has expired (a login token is good for "
		      "7 days); ask an admin for a new one (tether-relay "
		      "technician token erin)",
		      "login with an expired token");
	h_res_free(&res);
	cr_assert_eq(audit_rows(&r, "auth_failed", "login token expired"), 1);

	/* A new token starts a new week. */
	h_technician_token(&r, "erin", token, sizeof(token));
	h_console_ok(&res, NULL, "login", r.addr, "--token", token,
		     "--fingerprint", r.fingerprint, NULL);
	h_res_free(&res);
	h_console_ok(&res, NULL, "ticket", "list", "--json", NULL);
	j = json_loads(res.out, 0, NULL);
	cr_assert(json_is_array(j), "ticket list as erin: %s", res.out);
	json_decref(j);
	h_res_free(&res);
	h_relay_stop(&r);
}
