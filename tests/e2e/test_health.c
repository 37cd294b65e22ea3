/*
 * Health checks of enrolled agents, end to end: a real relay, a real agent
 * enrolled with a one-time token and running its checks (Debian's
 * monitoring plugins and a scripted plugin whose state the test sets),
 * and the console's `tether health` and ticket views.  Proactive tickets
 * open once after the retries, get the agent's diagnostics bundle and a
 * recovery note; a flapping check does not spam; results made while the
 * relay is down arrive after the reconnect, in order, none lost (read back
 * from the relay's database).
 */
#include <errno.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"

#define PLUGINS "/usr/lib/nagios/plugins"

TestSuite(health, .init = h_setup, .fini = h_teardown);

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* The scripted plugin: exits with the state written in DIR/state. */
static void make_plugin(char *path, size_t len)
{
	char state[H_PATH_MAX], text[2 * H_PATH_MAX + 512];

	h_path(path, len, "scripted");
	h_path(state, sizeof(state), "state");
	snprintf(text, sizeof(text),
		 "#!/bin/sh\n"
		 "s=$(cat '%s' 2>/dev/null || echo OK)\n"
		 "case \"$s\" in\n"
		 "OK) echo \"SCRIPTED OK - fine | value=1;5;10;0;\"; exit 0;;\n"
		 "WARNING) echo \"SCRIPTED WARNING - hmm | value=6;5;10;0;\";"
		 " exit 1;;\n"
		 "CRITICAL) echo \"SCRIPTED CRITICAL - broken |"
		 " value=11;5;10;0;\"; exit 2;;\n"
		 "esac\necho \"SCRIPTED UNKNOWN - $s\"; exit 3\n",
		 state);
	h_append_file(path, text);
	cr_assert_eq(chmod(path, 0755), 0);
}

static void set_state(const char *state)
{
	char path[H_PATH_MAX], tmp[H_PATH_MAX];
	FILE *fp;

	h_path(path, sizeof(path), "state");
	h_path(tmp, sizeof(tmp), "state.tmp");
	fp = fopen(tmp, "w");
	cr_assert_not_null(fp);
	fprintf(fp, "%s\n", state);
	cr_assert_eq(fclose(fp), 0);
	cr_assert_eq(rename(tmp, path), 0);
}

/* Health tickets now (tether ticket list --json filtered); caller decrefs. */
static json_t *health_tickets(void)
{
	json_t *all, *out = json_array(), *t;
	json_error_t jerr;
	struct h_res res;
	const char *src;
	size_t i;

	h_console_ok(&res, NULL, "ticket", "list", "--json", NULL);
	all = json_loads(res.out, 0, &jerr);
	cr_assert(json_is_array(all), "ticket list --json: %s", res.out);
	json_array_foreach (all, i, t) {
		src = json_string_value(json_object_get(t, "source"));
		if (src && strcmp(src, "health") == 0)
			json_array_append(out, t);
	}
	json_decref(all);
	h_res_free(&res);
	return out;
}

/* Counts audit events of the ticket whose name is exactly event. */
static int audit_count(json_t *ticket, const char *event)
{
	json_t *ev;
	const char *name;
	size_t i;
	int n = 0;

	json_array_foreach (json_object_get(ticket, "audit"), i, ev) {
		name = json_string_value(json_object_get(ev, "event"));
		n += name && strcmp(name, event) == 0;
	}
	return n;
}

/* Polls tether health until check has state (and type, if not NULL). */
static bool wait_state(const char *check, const char *state, const char *type,
		       int timeout_ms)
{
	json_t *all, *c;
	int waited;
	bool ok = false;

	for (waited = 0; waited < timeout_ms && !ok; waited += 250) {
		all = h_health(NULL);
		c = h_health_check(all, check);
		ok = c &&
		     !strcmp(json_string_value(json_object_get(c, "state")),
			     state) &&
		     (!type ||
		      !strcmp(json_string_value(json_object_get(c, "type")),
			      type));
		json_decref(all);
		if (!ok)
			sleep_ms(250);
	}
	return ok;
}

/* How many times needle is in the process's output so far. */
static int output_count(const struct h_proc *p, const char *needle)
{
	char *out = h_proc_output(p), *at;
	int n = 0;

	for (at = out; at && (at = strstr(at, needle)) != NULL; at++)
		n++;
	free(out);
	return n;
}

/* A relay, a logged-in admin, an agent enrolled as name with checks. */
static void enrolled(struct h_relay *r, struct h_proc *agent, const char *name,
		     const char *checks, char *conf, size_t conflen)
{
	h_relay_up(r, NULL);
	h_login(r);
	h_path(conf, conflen, "agent.conf");
	h_enroll(r, name, conf);
	h_append_file(conf, checks);
	h_agent_run(agent, "agent", conf);
	cr_assert(h_proc_wait_output(agent, "authenticated", 15000),
		  "agent did not authenticate: %s", h_proc_output(agent));
}

Test(health, plugins_and_a_proactive_ticket, .timeout = 240)
{
	struct h_relay r;
	struct h_proc agent;
	char conf[H_PATH_MAX], plugin[H_PATH_MAX], checks[4096];
	json_t *all, *c, *tickets, *t;
	const char *plugins[] = {"p_disk", "p_load", "p_procs", "p_tcp"};
	const char *tid;
	bool saw_soft = false;
	int i, waited;

	cr_assert(access(PLUGINS "/check_disk", X_OK) == 0,
		  "monitoring-plugins-basic is not installed");
	make_plugin(plugin, sizeof(plugin));
	set_state("OK");
	h_relay_init(&r, "relay");
	h_relay_start(&r, NULL, NULL);
	snprintf(checks, sizeof(checks),
		 "\n[check p_disk]\ncommand = " PLUGINS "/check_disk -w 1%% "
		 "-c 1%% -p /\ninterval = 2\n"
		 "\n[check p_load]\ncommand = " PLUGINS "/check_load -w "
		 "500,500,500 -c 900,900,900\ninterval = 2\n"
		 "\n[check p_procs]\ncommand = " PLUGINS "/check_procs -c 1: "
		 "-C tether-agent\ninterval = 2\n"
		 "\n[check p_tcp]\ncommand = " PLUGINS "/check_tcp -H "
		 "127.0.0.1 -p %d\ninterval = 2\n"
		 "\n[check disk_root]\nbuiltin = disk\npath = /\n"
		 "warning = 99.9\ncritical = 99.99\ninterval = 2\n"
		 "\n[check scripted]\ncommand = %s\ninterval = 1\n"
		 "retry_interval = 1\nretries = 3\n",
		 r.port, plugin);
	/* h_relay_up would init again: do its second half by hand. */
	h_login(&r);
	h_path(conf, sizeof(conf), "agent.conf");
	h_enroll(&r, "web-01", conf);
	h_append_file(conf, checks);
	h_agent_run(&agent, "agent", conf);
	cr_assert(h_proc_wait_output(&agent, "authenticated", 15000),
		  "agent did not authenticate: %s", h_proc_output(&agent));

	/* The real plugins report OK with their perfdata parsed. */
	for (i = 0; i < 4; i++)
		cr_assert(wait_state(plugins[i], "OK", NULL, 20000),
			  "%s never OK", plugins[i]);
	all = h_health("web-01");
	for (i = 0; i < 4; i++) {
		c = h_health_check(all, plugins[i]);
		cr_assert(json_array_size(json_object_get(c, "perfdata")) > 0,
			  "%s: no perfdata: %s", plugins[i], json_dumps(c, 0));
	}
	json_decref(all);
	cr_assert(wait_state("disk_root", "OK", NULL, 10000));
	tickets = health_tickets();
	cr_assert_eq(json_array_size(tickets), 0);
	json_decref(tickets);

	/* CRITICAL: SOFT for the retries, no ticket, then HARD and one. */
	set_state("CRITICAL");
	for (waited = 0; waited < 20000; waited += 200) {
		all = h_health("web-01");
		c = h_health_check(all, "scripted");
		if (!strcmp(json_string_value(json_object_get(c, "state")),
			    "CRITICAL") &&
		    !strcmp(json_string_value(json_object_get(c, "type")),
			    "SOFT")) {
			/*
			 * The HARD result may land between the two reads
			 * (retries are 1 s apart, a console run can take
			 * longer on a loaded machine).  The relay stores a
			 * result before it opens a ticket for it, so a
			 * ticket seen now is a bug only if the check is
			 * still SOFT when read again.
			 */
			tickets = health_tickets();
			if (json_array_size(tickets) > 0) {
				json_t *again = h_health("web-01");
				json_t *c2 = h_health_check(again, "scripted");

				cr_assert_str_eq(
				    json_string_value(
					json_object_get(c2, "type")),
				    "HARD", "ticket opened on a SOFT state");
				json_decref(again);
			}
			json_decref(tickets);
			saw_soft = true;
		}
		if (!strcmp(json_string_value(json_object_get(c, "type")),
			    "HARD") &&
		    !strcmp(json_string_value(json_object_get(c, "state")),
			    "CRITICAL")) {
			json_decref(all);
			break;
		}
		json_decref(all);
		sleep_ms(200);
	}
	cr_assert(saw_soft, "never saw the SOFT CRITICAL attempts");
	cr_assert(wait_state("scripted", "CRITICAL", "HARD", 1000));
	/* Stays CRITICAL for a while: still one ticket. */
	sleep_ms(3000);
	tickets = health_tickets();
	cr_assert_eq(json_array_size(tickets), 1, "health tickets: %s",
		     json_dumps(tickets, 0));
	tid = json_string_value(
	    json_object_get(json_array_get(tickets, 0), "id"));
	cr_assert(strstr(json_string_value(json_object_get(
			     json_array_get(tickets, 0), "title")),
			 "web-01: scripted is CRITICAL"));
	/* The diagnostics bundle arrives on the ticket. */
	for (waited = 0; waited < 20000; waited += 250) {
		t = h_ticket_show(tid);
		if (audit_count(t, "diag_attached") > 0)
			break;
		json_decref(t);
		t = NULL;
		sleep_ms(250);
	}
	cr_assert_not_null(t, "no diagnostics on %s", tid);
	cr_assert_eq(audit_count(t, "health_open"), 1);
	cr_assert_eq(json_array_size(json_object_get(t, "attachments")), 1);
	json_decref(t);
	{
		struct h_res res;

		h_console_ok(&res, NULL, "ticket", "show", tid, NULL);
		cr_assert(strstr(res.out, "Attachments:") &&
			      strstr(res.out, "agent:web-01"),
			  "ticket show: %s", res.out);
		h_res_free(&res);
	}
	{
		struct h_res res;
		json_error_t jerr;
		json_t *b;

		h_console_ok(&res, NULL, "diag", tid, "--saved", "--json",
			     NULL);
		b = json_loads(res.out, 0, &jerr);
		cr_assert(json_is_object(json_object_get(b, "sections")),
			  "saved bundle: %.300s", res.out);
		json_decref(b);
		h_res_free(&res);
	}

	/* Recovery: a note on the same ticket, no new ticket. */
	set_state("OK");
	cr_assert(wait_state("scripted", "OK", "HARD", 15000));
	for (waited = 0; waited < 10000; waited += 250) {
		t = h_ticket_show(tid);
		if (audit_count(t, "health_recovered") == 1)
			break;
		json_decref(t);
		t = NULL;
		sleep_ms(250);
	}
	cr_assert_not_null(t, "no recovery note on %s", tid);
	json_decref(t);
	json_decref(tickets);
	tickets = health_tickets();
	cr_assert_eq(json_array_size(tickets), 1);
	json_decref(tickets);

	/* tether agents shows it connected. */
	{
		struct h_res res;
		json_error_t jerr;
		json_t *a;

		h_console_ok(&res, NULL, "agents", "--json", NULL);
		a = json_loads(res.out, 0, &jerr);
		cr_assert_eq(json_array_size(a), 1, "agents: %s", res.out);
		cr_assert(json_is_true(
		    json_object_get(json_array_get(a, 0), "connected")));
		json_decref(a);
		h_res_free(&res);
	}
	h_proc_signal(&agent, SIGTERM);
	cr_assert_eq(h_proc_wait(&agent, 5000), 0, "agent exit: %s",
		     h_proc_output(&agent));
}

Test(health, flapping_check_does_not_spam, .timeout = 180)
{
	struct h_relay r;
	struct h_proc agent;
	char conf[H_PATH_MAX], plugin[H_PATH_MAX], checks[1024];
	json_t *tickets, *t;
	const char *tid;
	int i, notes;

	make_plugin(plugin, sizeof(plugin));
	set_state("OK");
	snprintf(checks, sizeof(checks),
		 "\n[check scripted]\ncommand = %s\ninterval = 1\n"
		 "retries = 1\n",
		 plugin);
	enrolled(&r, &agent, "flappy", checks, conf, sizeof(conf));
	cr_assert(wait_state("scripted", "OK", "HARD", 10000));
	for (i = 0; i < 10; i++) {
		set_state(i % 2 == 0 ? "CRITICAL" : "OK");
		cr_assert(wait_state("scripted", i % 2 == 0 ? "CRITICAL" : "OK",
				     "HARD", 10000),
			  "flip %d", i);
	}
	tickets = health_tickets();
	cr_assert_eq(json_array_size(tickets), 1, "tickets: %s",
		     json_dumps(tickets, 0));
	tid = json_string_value(
	    json_object_get(json_array_get(tickets, 0), "id"));
	t = h_ticket_show(tid);
	cr_assert_eq(audit_count(t, "health_open"), 1);
	cr_assert_eq(audit_count(t, "health_flapping"), 1, "audit: %s",
		     h_audit_names(t));
	notes = audit_count(t, "health_change") +
		audit_count(t, "health_recovered");
	/* Open, then at most two notes before the fourth change flags it. */
	cr_assert_leq(notes, 2, "notes while flapping: %s", h_audit_names(t));
	{
		struct h_res res;

		h_console_ok(&res, NULL, "health", "flappy", NULL);
		cr_assert(strstr(res.out, "HARD flapping"), "health: %s",
			  res.out);
		h_res_free(&res);
	}
	json_decref(t);
	json_decref(tickets);
}

/* The scripted check's history in the relay's database, oldest first. */
static void history(const struct h_relay *r, char *states, size_t len,
		    bool *contiguous, int *n)
{
	char db[H_PATH_MAX + 16];
	sqlite3 *h = NULL;
	sqlite3_stmt *st = NULL;
	long long prev = -1, seq;
	size_t used = 0;

	snprintf(db, sizeof(db), "%s/tether.db", r->data);
	cr_assert_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL),
		     SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(h,
					"SELECT seq, state FROM health_history"
					" WHERE check_name = 'scripted'"
					" ORDER BY id",
					-1, &st, NULL),
		     SQLITE_OK);
	*contiguous = true;
	*n = 0;
	states[0] = '\0';
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *s = (const char *)sqlite3_column_text(st, 1);

		seq = sqlite3_column_int64(st, 0);
		if (prev >= 0 && seq != prev + 1)
			*contiguous = false;
		prev = seq;
		(*n)++;
		/* Runs of one state collapse to one letter. */
		if (used == 0 || states[used - 1] != s[0]) {
			cr_assert_lt(used + 1, len);
			states[used++] = s[0];
			states[used] = '\0';
		}
	}
	sqlite3_finalize(st);
	sqlite3_close(h);
}

Test(health, results_made_offline_arrive_in_order, .timeout = 180)
{
	struct h_relay r;
	struct h_proc agent;
	char conf[H_PATH_MAX], plugin[H_PATH_MAX], checks[1024];
	char states[256];
	bool contiguous;
	int n_before, n_after, auths, waited;

	make_plugin(plugin, sizeof(plugin));
	set_state("OK");
	snprintf(checks, sizeof(checks),
		 "\n[check scripted]\ncommand = %s\ninterval = 1\n"
		 "retries = 1\n",
		 plugin);
	enrolled(&r, &agent, "offline", checks, conf, sizeof(conf));
	cr_assert(wait_state("scripted", "OK", "HARD", 10000));
	h_relay_stop(&r);
	history(&r, states, sizeof(states), &contiguous, &n_before);
	/* While the relay is down: WARNING, CRITICAL, UNKNOWN, then OK. */
	set_state("WARNING");
	sleep_ms(2500);
	set_state("CRITICAL");
	sleep_ms(2500);
	set_state("UNKNOWN");
	sleep_ms(2500);
	set_state("OK");
	sleep_ms(2500);
	auths = output_count(&agent, "authenticated");
	h_relay_start(&r, r.addr, NULL);
	/* The back-off may hold the agent up to 30 s after the outage. */
	for (waited = 0;
	     waited < 45000 && output_count(&agent, "authenticated") == auths;
	     waited += 250)
		sleep_ms(250);
	cr_assert_gt(output_count(&agent, "authenticated"), auths,
		     "no reconnect: %s", h_proc_output(&agent));
	/* Everything queued arrives; then the live results go on. */
	cr_assert(wait_state("scripted", "OK", "HARD", 40000));
	sleep_ms(3000);
	history(&r, states, sizeof(states), &contiguous, &n_after);
	cr_assert(contiguous, "a seq is missing from the history");
	cr_assert_geq(n_after - n_before, 8, "only %d new results",
		      n_after - n_before);
	cr_assert(strstr(states, "OWCUO") != NULL,
		  "states in the wrong order or lost: %s", states);
}
