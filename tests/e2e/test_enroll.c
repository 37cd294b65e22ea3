/*
 * End-to-end: enrolled agents (docs/protocol.md "Enrolled agents",
 * docs/cli.md).  tether-agent enroll against a real relay with tokens
 * from tether-relay enroll-token: what it writes, and that a used,
 * expired or unpinned enrolment leaves nothing behind; tether-agent run:
 * authentication, check results reaching the relay (and none lost while
 * the relay was away), a key the relay does not know, a key others may
 * read, SIGTERM, and diagnostics sent for a proactive ticket.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "harness.h"

TestSuite(enroll, .init = h_setup, .fini = h_teardown);

/* Well-formed but belongs to no certificate. */
#define FAKE_FP "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define AUTH_WAIT_MS 15000
#define CHECKS_OK "[check alive]\ncommand = /bin/true\ninterval = 1\n"

/* DIR/NAME/agent.conf for an agent called name. */
static const char *conf_path(char *buf, size_t len, const char *name)
{
	char rel[128];

	snprintf(rel, sizeof(rel), "%s/agent.conf", name);
	return h_path(buf, len, rel);
}

/*
 * tether-agent enroll --relay ADDR --token TOK --name NAME --config
 * DIR/NAME/agent.conf with fp (NULL: the relay's; "": none) and --yes
 * when yes; no status check.
 */
static void enroll(struct h_res *res, const struct h_relay *r, const char *tok,
		   const char *name, const char *fp, bool yes)
{
	char conf[H_PATH_MAX];
	const char *argv[16];
	int n = 0;

	conf_path(conf, sizeof(conf), name);
	argv[n++] = h_agent_bin();
	argv[n++] = "enroll";
	argv[n++] = "--relay";
	argv[n++] = r->addr;
	argv[n++] = "--token";
	argv[n++] = tok;
	argv[n++] = "--name";
	argv[n++] = name;
	argv[n++] = "--config";
	argv[n++] = conf;
	argv[n++] = "--label";
	argv[n++] = "site=Berlin office";
	if (fp == NULL || fp[0] != '\0') {
		argv[n++] = "--fingerprint";
		argv[n++] = fp != NULL ? fp : r->fingerprint;
	}
	if (yes)
		argv[n++] = "--yes";
	argv[n] = NULL;
	h_run(res, NULL, argv);
	/* The token is a secret: never echoed back. */
	cr_assert(strstr(res->out, tok) == NULL &&
		      strstr(res->err, tok) == NULL,
		  "enroll printed the token: %s%s", res->out, res->err);
}

/* A fresh token, then enroll name with it; asserts success. */
static void enroll_ok(const struct h_relay *r, const char *name)
{
	char tok[H_TOKEN_MAX];
	struct h_res res;

	h_enroll_token(r, NULL, tok, sizeof(tok));
	enroll(&res, r, tok, name, NULL, false);
	h_expect(&res, 0, NULL, "", "tether-agent enroll");
	cr_assert(strstr(res.out, "enrolled as ") != NULL, "enroll said: %s",
		  res.out);
	h_res_free(&res);
}

static mode_t mode_of(const char *path)
{
	struct stat st;

	cr_assert(stat(path, &st) == 0, "%s is missing", path);
	return st.st_mode & 07777;
}

static bool exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* A refused enrolment leaves no directory, config or key behind. */
static void expect_nothing_left(const char *name)
{
	char dir[H_PATH_MAX];

	h_path(dir, sizeof(dir), name);
	cr_assert(!exists(dir), "a failed enroll left %s behind", dir);
}

/* tether-agent run --config DIR/NAME/agent.conf in the background. */
static void run_start(struct h_proc *p, const char *name)
{
	char conf[H_PATH_MAX];
	const char *argv[] = {h_agent_bin(), "run", "--config", conf, NULL};

	conf_path(conf, sizeof(conf), name);
	h_proc_start(p, name, argv, NULL);
}

static int count(const char *hay, const char *needle)
{
	int n = 0;

	while ((hay = strstr(hay, needle)) != NULL) {
		n++;
		hay += strlen(needle);
	}
	return n;
}

/* Polls until the agent's output holds needle at least n times. */
static bool wait_count(const struct h_proc *p, const char *needle, int n,
		       int timeout_ms)
{
	int waited;

	for (waited = 0; waited < timeout_ms; waited += 100) {
		char *out = h_proc_output(p);
		int c = count(out, needle);

		free(out);
		if (c >= n)
			return true;
		usleep(100 * 1000);
	}
	return false;
}

/* The relay's agents listing entry for name (caller decrefs), or NULL. */
static json_t *agent_entry(const char *name)
{
	struct h_res res;
	json_t *all, *v, *found = NULL;
	size_t i;

	h_console_ok(&res, NULL, "agents", "--json", NULL);
	all = json_loads(res.out, 0, NULL);
	cr_assert(json_is_array(all), "tether agents --json: %s", res.out);
	json_array_foreach (all, i, v) {
		const char *n = json_string_value(json_object_get(v, "name"));

		if (n != NULL && strcmp(n, name) == 0)
			found = json_incref(v);
	}
	json_decref(all);
	h_res_free(&res);
	return found;
}

/* sqlite3 on the relay's database; the output, trimmed (caller frees). */
static char *sql(const struct h_relay *r, const char *query)
{
	char db[H_PATH_MAX + 16];
	const char *argv[] = {"sqlite3", db, query, NULL};
	struct h_res res;
	char *out;

	snprintf(db, sizeof(db), "%s/tether.db", r->data);
	h_run(&res, NULL, argv);
	h_expect(&res, 0, NULL, NULL, query);
	out = strdup(h_chomp(res.out));
	h_res_free(&res);
	return out;
}

/* Results the relay holds for agent name. */
static long history_count(const struct h_relay *r, const char *name)
{
	char q[256], *out;
	long n;

	snprintf(q, sizeof(q),
		 "SELECT count(*) FROM health_history h JOIN agents a ON "
		 "a.id = h.agent_id WHERE a.name = '%s';",
		 name);
	out = sql(r, q);
	n = h_number(out, NULL);
	free(out);
	return n;
}

static void stop_agent(struct h_proc *p)
{
	int st;
	char *out;

	h_proc_signal(p, SIGTERM);
	st = h_proc_wait(p, 5000);
	out = h_proc_output(p);
	cr_assert_eq(st, 0, "run after SIGTERM: status %d: %s", st, out);
	free(out);
}

Test(enroll, enroll_writes_identity_and_run_reports, .timeout = 120)
{
	char conf[H_PATH_MAX], key[H_PATH_MAX], dir[H_PATH_MAX];
	struct h_relay r;
	struct h_proc a;
	json_t *e = NULL;
	char *text;
	int i;

	h_relay_up(&r, NULL);
	h_login(&r);
	enroll_ok(&r, "web1");
	conf_path(conf, sizeof(conf), "web1");
	h_path(key, sizeof(key), "web1/agent.key");
	h_path(dir, sizeof(dir), "web1");
	cr_assert_eq(mode_of(dir), 0700, "config directory mode %o",
		     mode_of(dir));
	cr_assert_eq(mode_of(conf), 0600, "config mode %o", mode_of(conf));
	cr_assert_eq(mode_of(key), 0600, "key mode %o", mode_of(key));
	text = h_read_file(conf, NULL);
	cr_assert(strstr(text, "name = web1") != NULL, "config: %s", text);
	cr_assert(strstr(text, r.fingerprint) != NULL, "config: %s", text);
	cr_assert(strstr(text, r.addr) != NULL, "config: %s", text);
	cr_assert(strstr(text, "site=Berlin office") != NULL, "config: %s",
		  text);
	free(text);

	h_append_file(conf, "\n" CHECKS_OK);
	run_start(&a, "web1");
	cr_assert(h_proc_wait_output(&a, "authenticated as web1", AUTH_WAIT_MS),
		  "run did not authenticate: %s", h_proc_output(&a));
	/* Results arrive: the relay lists the agent connected and OK. */
	for (i = 0; i < 100; i++) {
		json_decref(e);
		e = agent_entry("web1");
		if (e != NULL &&
		    json_is_true(json_object_get(e, "connected")) &&
		    history_count(&r, "web1") >= 2)
			break;
		usleep(100 * 1000);
	}
	cr_assert(e != NULL, "tether agents does not list web1");
	cr_assert(json_is_true(json_object_get(e, "connected")),
		  "web1 not connected: %s", json_dumps(e, 0));
	cr_assert(history_count(&r, "web1") >= 2,
		  "the relay holds fewer than 2 results of web1");
	cr_assert_str_eq(json_string_value(json_object_get(
			     json_object_get(e, "labels"), "site")),
			 "Berlin office");
	json_decref(e);
	stop_agent(&a);
	h_relay_stop(&r);
}

Test(enroll, used_token_is_refused, .timeout = 60)
{
	char tok[H_TOKEN_MAX];
	struct h_relay r;
	struct h_res res;

	h_relay_up(&r, NULL);
	h_enroll_token(&r, NULL, tok, sizeof(tok));
	enroll(&res, &r, tok, "first", NULL, false);
	h_expect(&res, 0, NULL, "", "enroll with a fresh token");
	h_res_free(&res);
	enroll(&res, &r, tok, "second", NULL, false);
	h_expect_fail(&res, 1,
		      "enrollment failed: invalid or expired enrollment token",
		      "enroll with a used token");
	h_res_free(&res);
	expect_nothing_left("second");
	h_relay_stop(&r);
}

Test(enroll, expired_token_is_refused, .timeout = 60)
{
	char tok[H_TOKEN_MAX];
	struct h_relay r;
	struct h_res res;

	h_relay_up(&r, NULL);
	h_enroll_token(&r, "1s", tok, sizeof(tok));
	sleep(2);
	enroll(&res, &r, tok, "late", NULL, false);
	h_expect_fail(&res, 1, "invalid or expired enrollment token",
		      "enroll with an expired token");
	h_res_free(&res);
	expect_nothing_left("late");
	h_relay_stop(&r);
}

Test(enroll, relay_pin, .timeout = 60)
{
	char tok[H_TOKEN_MAX], conf[H_PATH_MAX];
	struct h_relay r;
	struct h_res res;
	char *text;

	h_relay_up(&r, NULL);
	h_enroll_token(&r, NULL, tok, sizeof(tok));
	enroll(&res, &r, tok, "pinned", FAKE_FP, false);
	h_expect_fail(&res, 1, "fingerprint mismatch",
		      "enroll with a wrong fingerprint");
	h_res_free(&res);
	expect_nothing_left("pinned");

	/* No pin and nobody to ask: refused, the token still good. */
	enroll(&res, &r, tok, "asked", "", false);
	h_expect_fail(&res, 1, "no terminal to confirm the relay fingerprint",
		      "enroll without a fingerprint or a terminal");
	h_res_free(&res);
	expect_nothing_left("asked");

	/* --yes takes the fingerprint shown and saves it as the pin. */
	enroll(&res, &r, tok, "trusting", "", true);
	h_expect(&res, 0, NULL, NULL, "enroll --yes");
	cr_assert(strstr(res.out, r.fingerprint) != NULL,
		  "the fingerprint was not shown: %s", res.out);
	h_res_free(&res);
	text = h_read_file(conf_path(conf, sizeof(conf), "trusting"), NULL);
	cr_assert(strstr(text, r.fingerprint) != NULL, "config: %s", text);
	free(text);
	h_relay_stop(&r);
}

Test(enroll, another_agents_key_fails_authentication, .timeout = 60)
{
	char ka[H_PATH_MAX], kb[H_PATH_MAX], cmd[2 * H_PATH_MAX + 16];
	struct h_relay r;
	struct h_proc a;

	h_relay_up(&r, NULL);
	enroll_ok(&r, "alpha");
	enroll_ok(&r, "beta");
	h_path(ka, sizeof(ka), "alpha/agent.key");
	h_path(kb, sizeof(kb), "beta/agent.key");
	snprintf(cmd, sizeof(cmd), "cp -p '%s' '%s'", kb, ka);
	cr_assert(system(cmd) == 0, "%s", cmd);
	run_start(&a, "alpha");
	cr_assert(
	    h_proc_wait_output(&a, "agent authentication failed", AUTH_WAIT_MS),
	    "no authentication failure: %s", h_proc_output(&a));
	/* It keeps trying (with back-off) rather than exiting. */
	usleep(500 * 1000);
	cr_assert(h_proc_alive(&a), "run gave up: %s", h_proc_output(&a));
	cr_assert(!wait_count(&a, "authenticated as", 1, 100),
		  "authenticated with another agent's key");
	stop_agent(&a);
	h_relay_stop(&r);
}

Test(enroll, run_refuses_bad_config_and_open_key, .timeout = 60)
{
	char conf[H_PATH_MAX], key[H_PATH_MAX];
	const char *argv[] = {h_agent_bin(), "run", "--config", conf, NULL};
	struct h_relay r;
	struct h_res res;

	h_relay_up(&r, NULL);
	enroll_ok(&r, "loose");
	conf_path(conf, sizeof(conf), "loose");
	h_path(key, sizeof(key), "loose/agent.key");
	cr_assert(chmod(key, 0644) == 0);
	h_run(&res, NULL, argv);
	h_expect_fail(&res, 1, "group or others may read this key",
		      "run with a world-readable key");
	h_res_free(&res);

	cr_assert(chmod(key, 0600) == 0);
	h_append_file(conf, "\n[check broken]\nbuiltin = no-such-builtin\n");
	h_run(&res, NULL, argv);
	h_expect_fail(&res, 2, "agent.conf:", "run with a bad check");
	h_res_free(&res);
	h_relay_stop(&r);
}

/*
 * Results made while the relay is down wait in the queue and arrive,
 * numbered without a gap, once it is back.
 */
Test(enroll, reconnects_and_delivers_queued_results, .timeout = 120)
{
	char conf[H_PATH_MAX], *seqs, *gaps;
	struct h_relay r;
	struct h_proc a;
	long before, after;
	int i;

	h_relay_up(&r, NULL);
	enroll_ok(&r, "steady");
	h_append_file(conf_path(conf, sizeof(conf), "steady"), "\n" CHECKS_OK);
	run_start(&a, "steady");
	cr_assert(
	    h_proc_wait_output(&a, "authenticated as steady", AUTH_WAIT_MS),
	    "run did not authenticate: %s", h_proc_output(&a));
	for (i = 0; i < 50 && history_count(&r, "steady") < 2; i++)
		usleep(100 * 1000);
	h_relay_stop(&r);
	before = history_count(&r, "steady");
	cr_assert(h_proc_wait_output(&a, "reconnecting in", 5000),
		  "no reconnect: %s", h_proc_output(&a));
	sleep(3);
	h_relay_start(&r, r.addr, NULL);
	cr_assert(wait_count(&a, "authenticated as steady", 2, 40000),
		  "did not authenticate again: %s", h_proc_output(&a));
	for (i = 0; i < 50 && history_count(&r, "steady") < before + 3; i++)
		usleep(100 * 1000);
	after = history_count(&r, "steady");
	cr_assert(after >= before + 3,
		  "results made while the relay was down were lost: %ld "
		  "before, %ld after",
		  before, after);
	/* One result per seq, 1.. without holes. */
	seqs = sql(&r, "SELECT count(DISTINCT seq) = count(*) AND "
		       "min(seq) = 1 AND max(seq) = count(*) FROM "
		       "health_history;");
	gaps = seqs;
	cr_assert_str_eq(gaps, "1", "seq numbers have gaps or repeats");
	free(seqs);
	stop_agent(&a);
	h_relay_stop(&r);
}

/*
 * A check that goes HARD CRITICAL makes the relay open a ticket and ask
 * for diagnostics, which the agent collects in a child and sends.
 */
Test(enroll, critical_check_gets_diagnostics, .timeout = 120)
{
	char conf[H_PATH_MAX];
	struct h_relay r;
	struct h_proc a;
	json_t *t = NULL;
	int i;

	h_relay_up(&r, NULL);
	h_login(&r);
	enroll_ok(&r, "sick");
	h_append_file(
	    conf_path(conf, sizeof(conf), "sick"),
	    "\n[check gone]\ncommand = /bin/ls /nonexistent-tether-test\n"
	    "interval = 60\nretries = 1\n");
	run_start(&a, "sick");
	cr_assert(
	    h_proc_wait_output(&a, "diagnostics for T-1 collected", 60000),
	    "no diagnostics sent: %s", h_proc_output(&a));
	cr_assert(h_proc_wait_output(&a, "check gone is CRITICAL", 100),
		  "the HARD change was not logged: %s", h_proc_output(&a));
	for (i = 0; i < 50; i++) {
		json_decref(t);
		t = h_ticket_show("T-1");
		if (h_audit_has(t, "diag_attached"))
			break;
		usleep(100 * 1000);
	}
	cr_assert(h_audit_has(t, "diag_attached"),
		  "the relay did not attach the bundle: %s", h_audit_names(t));
	json_decref(t);
	stop_agent(&a);
	h_relay_stop(&r);
}

/*
 * A failed re-enrolment leaves the working identity alone; a successful
 * one replaces the key and keeps the [check] sections.
 */
Test(enroll, reenroll_keeps_checks_and_survives_failure, .timeout = 90)
{
	char conf[H_PATH_MAX], key[H_PATH_MAX], used[H_TOKEN_MAX];
	char *conf0, *key0, *conf1, *key1;
	struct h_relay r;
	struct h_res res;
	struct h_proc a;

	h_relay_up(&r, NULL);
	h_enroll_token(&r, NULL, used, sizeof(used));
	enroll(&res, &r, used, "again", NULL, false);
	h_expect(&res, 0, NULL, "", "first enroll");
	h_res_free(&res);
	conf_path(conf, sizeof(conf), "again");
	h_path(key, sizeof(key), "again/agent.key");
	h_append_file(conf, "\n" CHECKS_OK);
	conf0 = h_read_file(conf, NULL);
	key0 = h_read_file(key, NULL);

	enroll(&res, &r, used, "again", NULL, false);
	h_expect_fail(&res, 1, "invalid or expired enrollment token",
		      "re-enroll with a used token");
	h_res_free(&res);
	conf1 = h_read_file(conf, NULL);
	key1 = h_read_file(key, NULL);
	cr_assert_str_eq(conf1, conf0, "a failed re-enroll changed the config");
	cr_assert_str_eq(key1, key0, "a failed re-enroll changed the key");
	free(conf1);
	free(key1);

	enroll_ok(&r, "again");
	conf1 = h_read_file(conf, NULL);
	key1 = h_read_file(key, NULL);
	cr_assert(strcmp(key1, key0) != 0, "re-enroll kept the old key");
	cr_assert(strstr(conf1, "[check alive]") != NULL,
		  "re-enroll lost the checks: %s", conf1);
	run_start(&a, "again");
	cr_assert(
	    h_proc_wait_output(&a, "authenticated as again", AUTH_WAIT_MS),
	    "the new key does not authenticate: %s", h_proc_output(&a));
	stop_agent(&a);
	free(conf0);
	free(key0);
	free(conf1);
	free(key1);
	h_relay_stop(&r);
}

/* run never talks to a relay whose certificate is not the pinned one. */
Test(enroll, run_refuses_another_relay_certificate, .timeout = 60)
{
	char conf[H_PATH_MAX], *text, *at;
	struct h_relay r;
	struct h_proc a;
	FILE *f;

	h_relay_up(&r, NULL);
	enroll_ok(&r, "wary");
	conf_path(conf, sizeof(conf), "wary");
	text = h_read_file(conf, NULL);
	at = strstr(text, r.fingerprint);
	cr_assert(at != NULL && strlen(FAKE_FP) == strlen(r.fingerprint),
		  "config: %s", text);
	memcpy(at, FAKE_FP, strlen(FAKE_FP));
	f = fopen(conf, "w");
	cr_assert(f != NULL);
	fputs(text, f);
	fclose(f);
	free(text);
	run_start(&a, "wary");
	cr_assert(h_proc_wait_output(&a, "REFUSING relay", AUTH_WAIT_MS),
		  "no refusal: %s", h_proc_output(&a));
	cr_assert(wait_count(&a, "reconnecting in", 2, AUTH_WAIT_MS),
		  "it did not keep trying: %s", h_proc_output(&a));
	cr_assert(!wait_count(&a, "authenticated as", 1, 100),
		  "authenticated to a relay with another certificate");
	stop_agent(&a);
	h_relay_stop(&r);
}
