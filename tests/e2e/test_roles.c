/*
 * End-to-end: roles and ticket ownership (docs/security.md, "Roles and
 * ownership").  Real technicians, each with a console configuration of
 * their own, against one relay: every console request by each role, on
 * tickets of their own, another's and the unassigned queue; refusals
 * that change nothing and are audited (at a bounded rate); the admins'
 * commands with --json; and revocation: a lowered role or a ticket given
 * away cuts a running `tether exec` and `tether forward` within a second.
 */
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

TestSuite(roles, .init = h_setup, .fini = h_teardown);

/* A technician with a console configuration of their own. */
struct who {
	char name[32];
	char env[H_PATH_MAX + 32];
	const char *envv[2];
	struct h_opts o;
};

static void who_login(struct who *w, const struct h_relay *r, const char *name,
		      const char *role)
{
	char cfg[H_PATH_MAX], tag[48], token[H_TOKEN_MAX];
	struct h_res res;

	memset(w, 0, sizeof(*w));
	snprintf(w->name, sizeof(w->name), "%s", name);
	h_technician_add(r, name, role, token, sizeof(token));
	snprintf(tag, sizeof(tag), "%s-config", name);
	h_path(cfg, sizeof(cfg), tag);
	cr_assert(mkdir(cfg, 0700) == 0, "mkdir %s", cfg);
	snprintf(w->env, sizeof(w->env), "XDG_CONFIG_HOME=%s", cfg);
	w->envv[0] = w->env;
	w->o.env = w->envv;
	h_console(&res, &w->o, "login", r->addr, "--token", token,
		  "--fingerprint", r->fingerprint, NULL);
	h_expect(&res, 0, NULL, NULL, "tether login");
	h_res_free(&res);
}

/* A refusal by role: exit 255 and a reason line that says so. */
static void expect_refused(const struct h_res *res, const char *what)
{
	cr_assert_eq(res->status, 255,
		     "%s: exit %d, expected 255 (out: %s, "
		     "err: %s)",
		     what, res->status, res->out, res->err);
	cr_assert(strstr(res->err, " may not ") != NULL,
		  "%s: no reason line: %s", what, res->err);
	cr_assert(strchr(res->err, '\n') == res->err + strlen(res->err) - 1,
		  "%s: more than one line: %s", what, res->err);
}

/* Not refused by role (it may fail for another reason). */
static void expect_not_refused(const struct h_res *res, const char *what)
{
	cr_assert(strstr(res->err, " may not ") == NULL, "%s: refused: %s",
		  what, res->err);
}

#define AS(w, res, ...) h_console((res), &(w)->o, __VA_ARGS__, NULL)
#define AS_ADMIN(res, ...) h_console((res), NULL, __VA_ARGS__, NULL)

static void new_ticket(const struct who *w, const char *title, char *id,
		       size_t len)
{
	struct h_res res;

	if (w == NULL)
		AS_ADMIN(&res, "ticket", "new", title);
	else
		AS(w, &res, "ticket", "new", title);
	h_expect(&res, 0, NULL, NULL, "tether ticket new");
	h_chomp(res.out);
	snprintf(id, len, "%s", res.out);
	h_res_free(&res);
}

/* Audit rows of event whose detail holds every one of the parts. */
static int audit_rows(const struct h_relay *r, const char *event,
		      const char *part1, const char *part2, const char *part3)
{
	sqlite3 *h = h_db_open(r);
	sqlite3_stmt *st = NULL;
	int n = 0;

	cr_assert_eq(sqlite3_prepare_v2(h,
					"SELECT COUNT(*) FROM audit WHERE "
					"event = ?1 AND instr(detail, ?2) > 0"
					" AND instr(detail, ?3) > 0 AND "
					"instr(detail, ?4) > 0",
					-1, &st, NULL),
		     SQLITE_OK);
	sqlite3_bind_text(st, 1, event, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, part1 ? part1 : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, part2 ? part2 : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, part3 ? part3 : "", -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = (int)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(h);
	return n;
}

static json_t *json_of(const struct h_res *res, const char *what)
{
	json_t *j = json_loads(res->out, 0, NULL);

	cr_assert_not_null(j, "%s --json: %s", what, res->out);
	return j;
}

/* Whether a ticket list (--json) holds ticket id. */
static bool lists(const json_t *list, const char *id)
{
	size_t i;
	json_t *t;

	json_array_foreach (list, i, t)
		if (strcmp(json_string_value(json_object_get(t, "id")), id) ==
		    0)
			return true;
	return false;
}

static const char *str_of(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s != NULL ? s : "";
}

/*
 * `tether sessions --json` as w (NULL: the admin) lists exactly the one
 * live session, on ticket, or none when ticket is NULL.
 */
static void expect_sessions(const struct who *w, const char *ticket,
			    const char *what)
{
	struct h_res res;
	json_t *j;

	if (w == NULL)
		AS_ADMIN(&res, "sessions", "--json");
	else
		AS(w, &res, "sessions", "--json");
	h_expect(&res, 0, NULL, NULL, what);
	j = json_of(&res, what);
	cr_assert(json_is_array(j), "%s: %s", what, res.out);
	cr_assert_eq(json_array_size(j), ticket != NULL ? 1 : 0, "%s: %s", what,
		     res.out);
	if (ticket != NULL)
		cr_assert_str_eq(str_of(json_array_get(j, 0), "ticket"), ticket,
				 "%s", what);
	json_decref(j);
	h_res_free(&res);
}

/*
 * Each role against each console request, with and without ownership:
 * carol (technician) has T-c, bob (technician) T-b, T-q is unassigned;
 * audrey is an auditor.
 */
Test(roles, matrix, .timeout = 240)
{
	char tc[H_ID_MAX], tb[H_ID_MAX], tq[H_ID_MAX], t2[H_ID_MAX];
	char code[H_CODE_MAX], want[128];
	struct who carol, bob, audrey;
	struct h_relay r;
	struct h_proc agent;
	struct h_res res;
	json_t *j;

	h_relay_up(&r, NULL);
	h_login(&r);
	who_login(&carol, &r, "carol", "technician");
	who_login(&bob, &r, "bob", "technician");
	who_login(&audrey, &r, "audrey", "auditor");
	new_ticket(&carol, "carol's printer", tc, sizeof(tc));
	new_ticket(&bob, "bob's mail", tb, sizeof(tb));
	new_ticket(NULL, "in the queue", tq, sizeof(tq));
	AS_ADMIN(&res, "ticket", "assign", tq, "none");
	h_expect(&res, 0, NULL, NULL, "admin: ticket assign none");
	h_res_free(&res);

	/* ticket_new: workers yes, auditors no (and nothing is made). */
	AS(&audrey, &res, "ticket", "new", "audit this");
	expect_refused(&res, "auditor: ticket new");
	cr_assert(strstr(res.err, "audrey (auditor) may not create tickets: "
				  "auditors only read") != NULL,
		  "%s", res.err);
	h_res_free(&res);
	AS_ADMIN(&res, "ticket", "list", "--json");
	j = json_of(&res, "ticket list");
	cr_assert_eq(json_array_size(j), 3, "a refused ticket new made one");
	json_decref(j);
	h_res_free(&res);

	/* ticket_list: a technician sees theirs and the queue only. */
	AS(&carol, &res, "ticket", "list", "--json");
	h_expect(&res, 0, NULL, NULL, "carol: ticket list");
	j = json_of(&res, "ticket list");
	cr_assert(lists(j, tc) && lists(j, tq) && !lists(j, tb),
		  "carol sees %s", res.out);
	json_decref(j);
	h_res_free(&res);
	AS(&audrey, &res, "ticket", "list", "--json");
	h_expect(&res, 0, NULL, NULL, "auditor: ticket list");
	j = json_of(&res, "ticket list");
	cr_assert(lists(j, tc) && lists(j, tq) && lists(j, tb),
		  "the auditor sees %s", res.out);
	json_decref(j);
	h_res_free(&res);

	/* ticket_show */
	AS(&carol, &res, "ticket", "show", tq, "--json");
	h_expect(&res, 0, NULL, NULL, "carol: show the queue's ticket");
	h_res_free(&res);
	AS(&carol, &res, "ticket", "show", tb);
	expect_refused(&res, "carol: show bob's ticket");
	snprintf(want, sizeof(want),
		 "carol (technician) may not see %s: it is assigned to bob",
		 tb);
	cr_assert(strstr(res.err, want) != NULL, "%s", res.err);
	h_res_free(&res);
	AS(&audrey, &res, "ticket", "show", tb, "--json");
	h_expect(&res, 0, NULL, NULL, "auditor: show bob's ticket");
	j = json_of(&res, "ticket show");
	cr_assert_str_eq(str_of(j, "assignee"), "bob");
	json_decref(j);
	h_res_free(&res);

	/* ticket_close: a refusal changes nothing and is audited. */
	AS(&carol, &res, "ticket", "close", tb, "--resolution", "mine now");
	expect_refused(&res, "carol: close bob's ticket");
	snprintf(want, sizeof(want),
		 "tether: carol (technician) may not close %s: it is assigned "
		 "to bob\n",
		 tb);
	cr_assert_str_eq(res.err, want);
	h_res_free(&res);
	j = h_ticket_show(tb);
	cr_assert_str_eq(str_of(j, "status"), "open");
	json_decref(j);
	snprintf(want, sizeof(want), "\"ticket\":\"%s\"", tb);
	cr_assert_eq(audit_rows(&r, "refused", "\"technician\":\"carol\"",
				"\"request\":\"ticket_close\"", want),
		     1, "the refusal was not audited once");
	AS(&carol, &res, "ticket", "close", tq, "--resolution", "x");
	expect_refused(&res, "carol: close the queue's ticket");
	cr_assert(strstr(res.err, "unassigned queue") != NULL, "%s", res.err);
	h_res_free(&res);
	AS(&audrey, &res, "ticket", "close", tc, "--resolution", "x");
	expect_refused(&res, "auditor: close");
	h_res_free(&res);

	/* invite */
	AS(&carol, &res, "invite", tb);
	expect_refused(&res, "carol: invite on bob's ticket");
	h_res_free(&res);
	AS(&carol, &res, "invite", tq);
	expect_refused(&res, "carol: invite on the queue's ticket");
	h_res_free(&res);
	AS(&audrey, &res, "invite", tc);
	expect_refused(&res, "auditor: invite");
	h_res_free(&res);
	j = h_ticket_show(tb);
	cr_assert_eq(json_array_size(json_object_get(j, "sessions")), 0,
		     "a refused invite made a session");
	json_decref(j);

	/* attach, confirm, open, close: carol's own session works. */
	AS(&carol, &res, "invite", tc);
	h_expect(&res, 0, NULL, NULL, "carol: invite on her ticket");
	h_chomp(res.out);
	snprintf(code, sizeof(code), "%s", res.out);
	h_res_free(&res);
	h_agent_start(&agent, &r, code, NULL);
	h_wait_joined(tc, 15000, &agent);
	AS(&carol, &res, "exec", tc, "--", "true");
	h_expect(&res, 0, "", "", "carol: exec on her ticket");
	h_res_free(&res);

	/* sessions: every role; a technician sees only their own. */
	expect_sessions(&carol, tc, "carol: sessions");
	expect_sessions(&bob, NULL, "bob: sessions");
	expect_sessions(&audrey, tc, "auditor: sessions");
	expect_sessions(NULL, tc, "admin: sessions");
	AS(&bob, &res, "exec", tc, "--", "true");
	expect_refused(&res, "bob: exec on carol's ticket");
	h_res_free(&res);
	AS(&audrey, &res, "exec", tc, "--", "true");
	expect_refused(&res, "auditor: exec");
	cr_assert(strstr(res.err, "auditors only read") != NULL, "%s", res.err);
	h_res_free(&res);
	AS(&audrey, &res, "forward", tc, "8080:127.0.0.1:80");
	expect_refused(&res, "auditor: forward");
	h_res_free(&res);
	AS(&audrey, &res, "diag", tc);
	expect_refused(&res, "auditor: diag");
	h_res_free(&res);

	/* Reading: agents, health, saved diagnostics. */
	AS(&audrey, &res, "agents", "--json");
	h_expect(&res, 0, NULL, NULL, "auditor: agents");
	h_res_free(&res);
	AS(&audrey, &res, "health", "--json");
	h_expect(&res, 0, NULL, NULL, "auditor: health");
	h_res_free(&res);
	AS(&carol, &res, "agents");
	h_expect(&res, 0, NULL, NULL, "technician: agents");
	h_res_free(&res);
	AS(&audrey, &res, "diag", tb, "--saved");
	expect_not_refused(&res, "auditor: saved diagnostics");
	h_res_free(&res);
	AS(&carol, &res, "diag", tb, "--saved");
	expect_refused(&res, "carol: bob's saved diagnostics");
	h_res_free(&res);

	/* ticket_comment: workers on what they may see, never auditors. */
	AS(&carol, &res, "ticket", "comment", tq, "looked at it");
	h_expect(&res, 0, NULL, NULL, "carol: comment on the queue's ticket");
	h_res_free(&res);
	AS(&carol, &res, "ticket", "comment", tb, "mine now");
	expect_refused(&res, "carol: comment on bob's ticket");
	snprintf(want, sizeof(want),
		 "carol (technician) may not comment on %s: it is assigned to "
		 "bob",
		 tb);
	cr_assert(strstr(res.err, want) != NULL, "%s", res.err);
	h_res_free(&res);
	AS(&audrey, &res, "ticket", "comment", tc, "audited");
	expect_refused(&res, "auditor: comment");
	cr_assert(strstr(res.err, "auditors only read") != NULL, "%s", res.err);
	h_res_free(&res);
	AS(&bob, &res, "ticket", "comment", tb, "on it", "--json");
	h_expect(&res, 0, NULL, NULL, "bob: comment on his ticket");
	h_res_free(&res);
	j = h_ticket_show(tb);
	cr_assert_eq(json_array_size(json_object_get(j, "comments")), 1,
		     "a refused comment was kept");
	json_decref(j);
	j = h_ticket_show(tc);
	cr_assert_eq(json_array_size(json_object_get(j, "comments")), 0,
		     "the auditor's comment was kept");
	json_decref(j);
	snprintf(want, sizeof(want), "\"ticket\":\"%s\"", tb);
	cr_assert_eq(audit_rows(&r, "refused", "\"technician\":\"carol\"",
				"\"request\":\"comment\"", want),
		     1, "the refused comment was not audited once");

	/* ticket_assign: take from the queue, give one's own away. */
	AS(&carol, &res, "ticket", "assign", tb, "me");
	expect_refused(&res, "carol: take bob's ticket");
	h_res_free(&res);
	j = h_ticket_show(tb);
	cr_assert_str_eq(str_of(j, "assignee"), "bob");
	json_decref(j);
	AS(&carol, &res, "ticket", "assign", tq, "bob");
	expect_refused(&res, "carol: give the queue's ticket to bob");
	cr_assert(strstr(res.err, "may only take it") != NULL, "%s", res.err);
	h_res_free(&res);
	AS(&audrey, &res, "ticket", "assign", tq, "me");
	expect_refused(&res, "auditor: assign");
	h_res_free(&res);
	AS(&carol, &res, "ticket", "assign", tq, "me", "--json");
	h_expect(&res, 0, NULL, NULL, "carol: take the queue's ticket");
	j = json_of(&res, "ticket assign");
	cr_assert_str_eq(str_of(j, "assignee"), "carol");
	json_decref(j);
	h_res_free(&res);
	AS(&carol, &res, "ticket", "assign", tq, "bob");
	h_expect(&res, 0, NULL, NULL, "carol: give her ticket to bob");
	snprintf(want, sizeof(want), "%s is assigned to bob\n", tq);
	cr_assert_str_eq(res.out, want);
	h_res_free(&res);
	AS_ADMIN(&res, "ticket", "assign", tq, "audrey");
	h_expect_fail(&res, 255, "audrey is an auditor",
		      "a ticket given to an auditor");
	h_res_free(&res);
	snprintf(want, sizeof(want), "\"ticket\":\"%s\"", tq);
	cr_assert_eq(audit_rows(&r, "ticket_assigned", want,
				"\"from\":\"carol\"", "\"by\":\"carol\""),
		     1, "carol's giving it away was not audited");

	/* Technicians and tokens are the admins'. */
	{
		static const char *const verbs[][4] = {
		    {"technician", "list", NULL, NULL},
		    {"technician", "add", "eve", NULL},
		    {"technician", "remove", "bob", NULL},
		    {"technician", "role", "bob", "admin"},
		    {"enroll-token", NULL, NULL, NULL},
		};
		const struct who *who[] = {&carol, &audrey};
		size_t i, k;

		for (k = 0; k < 2; k++)
			for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
				h_console(&res, &who[k]->o, verbs[i][0],
					  verbs[i][1], verbs[i][2], verbs[i][3],
					  NULL);
				expect_refused(&res, verbs[i][0]);
				h_res_free(&res);
			}
	}
	AS_ADMIN(&res, "technician", "list", "--json");
	h_expect(&res, 0, NULL, NULL, "admin: technician list");
	cr_assert(strstr(res.out, "\"eve\"") == NULL, "a refused add: %s",
		  res.out);
	cr_assert(strstr(res.out, "\"auditor\"") != NULL, "%s", res.out);
	h_res_free(&res);

	/* A technician's own ticket: closed by them. */
	new_ticket(&carol, "second", t2, sizeof(t2));
	AS(&carol, &res, "ticket", "close", t2, "--resolution", "done");
	h_expect(&res, 0, NULL, NULL, "carol: close her ticket");
	h_res_free(&res);

	/* ticket_reopen: workers on what they may act on. */
	AS(&bob, &res, "ticket", "reopen", t2);
	expect_refused(&res, "bob: reopen carol's ticket");
	snprintf(want, sizeof(want),
		 "bob (technician) may not reopen %s: it is assigned to carol",
		 t2);
	cr_assert(strstr(res.err, want) != NULL, "%s", res.err);
	h_res_free(&res);
	AS(&audrey, &res, "ticket", "reopen", t2);
	expect_refused(&res, "auditor: reopen");
	h_res_free(&res);
	j = h_ticket_show(t2);
	cr_assert_str_eq(str_of(j, "status"), "closed",
			 "a refused reopen opened it");
	json_decref(j);
	AS(&carol, &res, "ticket", "reopen", t2, "--json");
	h_expect(&res, 0, NULL, NULL, "carol: reopen her ticket");
	j = json_of(&res, "ticket reopen");
	cr_assert_str_eq(str_of(j, "status"), "open");
	json_decref(j);
	h_res_free(&res);
	AS_ADMIN(&res, "ticket", "close", tb, "--resolution", "done");
	h_expect(&res, 0, NULL, NULL, "admin: close bob's ticket");
	h_res_free(&res);
	AS_ADMIN(&res, "ticket", "reopen", tb);
	h_expect(&res, 0, NULL, NULL, "admin: reopen bob's ticket");
	h_res_free(&res);
	h_proc_stop(&agent, SIGTERM);
	h_relay_stop(&r);
}

/* The ids of `tether ticket list ARGS... --json` as w, as "T-3,T-1". */
static void list_as(const struct who *w, char *buf, size_t len, const char *a1,
		    const char *a2, const char *a3, const char *a4)
{
	struct h_res res;
	size_t i, k = 0;
	json_t *j, *t;

	h_console(&res, w != NULL ? &w->o : NULL, "ticket", "list", "--json",
		  a1, a2, a3, a4, NULL);
	h_expect(&res, 0, NULL, NULL, "ticket list --json");
	j = json_of(&res, "ticket list");
	cr_assert(json_is_array(j), "%s", res.out);
	buf[0] = '\0';
	json_array_foreach (j, i, t)
		k += (size_t)snprintf(buf + k, len - k, "%s%s",
				      i > 0 ? "," : "", str_of(t, "id"));
	json_decref(j);
	h_res_free(&res);
}

/*
 * A technician's list is filtered in the relay's one query: pages of
 * --limit 2 over tickets mostly hidden from them are full, and the
 * "more" line counts only what they may see.  --assignee in every form,
 * with "me" and "none" never taken for the technicians of those names.
 */
Test(roles, technician_lists_full_pages_and_by_assignee, .timeout = 120)
{
	static const char *const plan[][2] = {
	    /* who makes it, and to whom it then goes (NULL: left) */
	    {"carol", NULL},  /* T-1 carol's */
	    {"carol", NULL},  /* T-2 carol's */
	    {"bob", NULL},    /* T-3 */
	    {"bob", NULL},    /* T-4 */
	    {NULL, "none"},   /* T-5 the queue */
	    {"bob", NULL},    /* T-6 */
	    {NULL, "carol"},  /* T-7 carol's */
	    {"bob", NULL},    /* T-8 */
	    {"bob", NULL},    /* T-9 */
	    {"carol", "bob"}, /* T-10 bob's, made by carol */
	    {NULL, NULL},     /* T-11 the admin's */
	    {"bob", NULL},    /* T-12 */
	    {NULL, NULL},     /* T-13 to the technician named "me" */
	};
	char id[H_ID_MAX], ids[512], token[H_TOKEN_MAX], path[H_PATH_MAX + 16];
	struct who carol, bob;
	struct h_relay r;
	struct h_res res;
	sqlite3 *db = NULL;
	size_t i;

	h_relay_up(&r, NULL);
	h_login(&r);
	who_login(&carol, &r, "carol", "technician");
	who_login(&bob, &r, "bob", "technician");
	h_technician_add(&r, "me", "technician", token, sizeof(token));
	h_technician_add(&r, "none", "technician", token, sizeof(token));
	for (i = 0; i < sizeof(plan) / sizeof(plan[0]); i++) {
		const struct who *w = plan[i][0] == NULL	       ? NULL
				      : strcmp(plan[i][0], "bob") == 0 ? &bob
								       : &carol;

		new_ticket(w, "t", id, sizeof(id));
		if (plan[i][1] == NULL)
			continue;
		h_console(&res, w != NULL ? &w->o : NULL, "ticket", "assign",
			  id, plan[i][1], NULL);
		h_expect(&res, 0, NULL, NULL, "ticket assign");
		h_res_free(&res);
	}
	/* No console can give a ticket to the technician named "me": the
	 * database beside the running relay can (WAL lets both write). */
	snprintf(path, sizeof(path), "%s/tether.db", r.data);
	cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL),
		     SQLITE_OK, "%s", path);
	sqlite3_busy_timeout(db, 2000);
	cr_assert_eq(sqlite3_exec(db,
				  "UPDATE tickets SET assignee = 'me',"
				  " assignee_id = (SELECT id FROM technicians"
				  " WHERE name = 'me') WHERE id = 13",
				  NULL, NULL, NULL),
		     SQLITE_OK);
	sqlite3_close(db);

	/* carol may see T-10, T-7, T-5, T-2, T-1: in full pages of 2. */
	AS(&carol, &res, "ticket", "list", "--limit", "2");
	h_expect(&res, 0, NULL, NULL, "carol: ticket list --limit 2");
	cr_assert(strstr(res.out, "\nT-10 ") && strstr(res.out, "\nT-7 ") &&
		      !strstr(res.out, "\nT-5 "),
		  "%s", res.out);
	cr_assert(strstr(res.out, "\n3 more: tether ticket list --limit 2 "
				  "--before T-7\n"),
		  "%s", res.out);
	h_res_free(&res);
	AS(&carol, &res, "ticket", "list", "--limit", "2", "--before", "T-7");
	h_expect(&res, 0, NULL, NULL, "carol: the second page");
	cr_assert(strstr(res.out, "\nT-5 ") && strstr(res.out, "\nT-2 "), "%s",
		  res.out);
	cr_assert(strstr(res.out, "\n1 more: tether ticket list --limit 2 "
				  "--before T-2\n"),
		  "%s", res.out);
	h_res_free(&res);
	AS(&carol, &res, "ticket", "list", "--limit", "2", "--before", "T-2",
	   "--json");
	h_expect(&res, 0, NULL, "", "carol: the last page says no more");
	h_res_free(&res);
	list_as(&carol, ids, sizeof(ids), NULL, NULL, NULL, NULL);
	cr_assert_str_eq(ids, "T-10,T-7,T-5,T-2,T-1");
	list_as(&bob, ids, sizeof(ids), "--limit", "3", NULL, NULL);
	cr_assert_str_eq(ids, "T-12,T-10,T-9");
	list_as(NULL, ids, sizeof(ids), "--limit", "2", NULL, NULL);
	cr_assert_str_eq(ids, "T-13,T-12", "the admin sees every ticket");

	/* --assignee NAME|me|none, as the admin and as carol. */
	list_as(NULL, ids, sizeof(ids), "--assignee", "bob", NULL, NULL);
	cr_assert_str_eq(ids, "T-12,T-10,T-9,T-8,T-6,T-4,T-3");
	list_as(NULL, ids, sizeof(ids), "--assignee", "me", NULL, NULL);
	cr_assert_str_eq(ids, "T-11", "me is the admin, not the one named me");
	list_as(NULL, ids, sizeof(ids), "--assignee", "none", NULL, NULL);
	cr_assert_str_eq(ids, "T-5", "none is nobody, not the one named none");
	list_as(&carol, ids, sizeof(ids), "--assignee", "me", NULL, NULL);
	cr_assert_str_eq(ids, "T-7,T-2,T-1");
	list_as(&carol, ids, sizeof(ids), "--assignee", "bob", NULL, NULL);
	cr_assert_str_eq(ids, "T-10", "only bob's that carol may see");
	list_as(&carol, ids, sizeof(ids), "--assignee", "none", NULL, NULL);
	cr_assert_str_eq(ids, "T-5");
	list_as(&carol, ids, sizeof(ids), "--assignee", "none", "--status",
		"closed");
	cr_assert_str_eq(ids, "", "filters combine");
	list_as(&bob, ids, sizeof(ids), "--assignee", "carol", NULL, NULL);
	cr_assert_str_eq(ids, "", "bob may see none of carol's");

	/* The next page keeps --assignee as it was typed. */
	AS(&carol, &res, "ticket", "list", "--assignee", "me", "--limit", "2");
	h_expect(&res, 0, NULL, NULL, "carol: --assignee me --limit 2");
	cr_assert(strstr(res.out, "\n1 more: tether ticket list --assignee me "
				  "--limit 2 --before T-2\n"),
		  "%s", res.out);
	h_res_free(&res);
	AS(&carol, &res, "ticket", "list", "--assignee", "me", "--limit", "2",
	   "--json");
	h_expect(&res, 0, NULL,
		 "1 more: tether ticket list --assignee me --limit 2 --before "
		 "T-2\n",
		 "--json says the rest aside");
	h_res_free(&res);

	/* An unknown name is refused; a bad one is a usage error. */
	AS(&carol, &res, "ticket", "list", "--assignee", "zed");
	h_expect_fail(&res, 255, "no technician zed", "--assignee zed");
	h_res_free(&res);
	AS(&carol, &res, "ticket", "list", "--assignee", "zed", "--json");
	h_expect_fail(&res, 255, "no technician zed", "--assignee zed --json");
	h_res_free(&res);
	AS(&carol, &res, "ticket", "list", "--assignee", "a b");
	h_expect_fail(&res, 2, "--assignee is a technician's name, me or none",
		      "--assignee 'a b'");
	h_res_free(&res);
	AS(&carol, &res, "ticket", "show", "T-1", "--assignee", "me");
	h_expect_fail(&res, 2, "option not valid for ticket show",
		      "show --assignee");
	h_res_free(&res);
	h_relay_stop(&r);
}

/* The admins' commands, each with --json, and their audit rows. */
Test(roles, admin_commands_json, .timeout = 120)
{
	struct h_relay r;
	struct h_res res;
	json_t *j, *t;
	const char *token;

	h_relay_up(&r, NULL);
	h_login(&r);
	AS_ADMIN(&res, "technician", "add", "dave", "--role", "auditor",
		 "--json");
	h_expect(&res, 0, NULL, NULL, "technician add --json");
	j = json_of(&res, "technician add");
	t = json_object_get(j, "technician");
	cr_assert_str_eq(str_of(t, "name"), "dave");
	cr_assert_str_eq(str_of(t, "role"), "auditor");
	token = str_of(j, "token");
	cr_assert(strncmp(token, "tt_", 3) == 0, "token %s", token);
	json_decref(j);
	h_res_free(&res);
	AS_ADMIN(&res, "technician", "add", "dave");
	h_expect_fail(&res, 255, "technician dave already exists",
		      "technician add twice");
	h_res_free(&res);
	AS_ADMIN(&res, "technician", "add", "bad name");
	cr_assert_eq(res.status, 2, "a bad name: %d", res.status);
	h_res_free(&res);
	AS_ADMIN(&res, "technician", "role", "dave", "owner");
	cr_assert_eq(res.status, 2, "a bad role: %d", res.status);
	cr_assert(strstr(res.err, "admin, technician or auditor") != NULL, "%s",
		  res.err);
	h_res_free(&res);
	AS_ADMIN(&res, "technician", "role", "dave", "technician", "--json");
	h_expect(&res, 0, NULL, NULL, "technician role --json");
	j = json_of(&res, "technician role");
	cr_assert_str_eq(str_of(j, "from"), "auditor");
	cr_assert_str_eq(str_of(json_object_get(j, "technician"), "role"),
			 "technician");
	json_decref(j);
	h_res_free(&res);
	AS_ADMIN(&res, "technician", "role", "dave", "technician");
	h_expect(&res, 0, "dave is already technician\n", NULL,
		 "technician role, unchanged");
	h_res_free(&res);
	AS_ADMIN(&res, "technician", "list", "--json");
	h_expect(&res, 0, NULL, NULL, "technician list --json");
	j = json_of(&res, "technician list");
	cr_assert_eq(json_array_size(j), 2, "%s", res.out);
	cr_assert_str_eq(str_of(json_array_get(j, 1), "name"), "dave");
	json_decref(j);
	h_res_free(&res);
	AS_ADMIN(&res, "enroll-token", "--ttl", "15m", "--json");
	h_expect(&res, 0, NULL, NULL, "enroll-token --json");
	j = json_of(&res, "enroll-token");
	cr_assert(strncmp(str_of(j, "token"), "tte_", 4) == 0, "%s", res.out);
	cr_assert_str_eq(str_of(j, "fingerprint"), r.fingerprint);
	cr_assert(str_of(j, "expires_at")[0] != '\0', "%s", res.out);
	json_decref(j);
	h_res_free(&res);
	AS_ADMIN(&res, "enroll-token", "--ttl", "99d");
	cr_assert_eq(res.status, 2, "--ttl 99d: %d", res.status);
	h_res_free(&res);
	/* The relay keeps an admin: the only one is neither lowered nor
	 * removed. */
	AS_ADMIN(&res, "technician", "role", "admin", "technician");
	h_expect_fail(&res, 255, "admin is the only admin",
		      "lowering the only admin");
	h_res_free(&res);
	AS_ADMIN(&res, "technician", "remove", "admin");
	h_expect_fail(&res, 255, "admin is the only admin",
		      "removing the only admin");
	h_res_free(&res);
	AS_ADMIN(&res, "technician", "remove", "dave", "--json");
	h_expect(&res, 0, NULL, NULL, "technician remove --json");
	j = json_of(&res, "technician remove");
	cr_assert_str_eq(str_of(json_object_get(j, "technician"), "name"),
			 "dave");
	json_decref(j);
	h_res_free(&res);
	AS_ADMIN(&res, "technician", "remove", "dave");
	h_expect_fail(&res, 255, "no technician dave", "remove twice");
	h_res_free(&res);
	/* Actor and subject in every row. */
	cr_assert_eq(audit_rows(&r, "technician_added",
				"\"technician\":\"dave\"",
				"\"role\":\"auditor\"", "\"by\":\"admin\""),
		     1);
	cr_assert_eq(audit_rows(&r, "role_changed", "\"technician\":\"dave\"",
				"\"from\":\"auditor\"", "\"by\":\"admin\""),
		     1);
	cr_assert_eq(audit_rows(&r, "technician_removed",
				"\"technician\":\"dave\"", "\"by\":\"admin\"",
				"\"id\":"),
		     1);
	cr_assert_eq(audit_rows(&r, "enroll_token_issued", "\"by\":\"admin\"",
				NULL, NULL),
		     1);
	/* The relay host's commands record who too. */
	cr_assert_eq(audit_rows(&r, "technician_added",
				"\"technician\":\"admin\"", "\"by\":\"relay\"",
				NULL),
		     1);
	h_relay_stop(&r);
}

/*
 * A loop of refusals cannot flood the trail: ten rows a window, then one
 * row counting the rest when the window ends.
 */
Test(roles, refusals_are_rate_limited, .timeout = 120)
{
	const char *env[] = {"TETHER_TEST_REFUSED_WINDOW_MS=8000", NULL};
	struct who audrey;
	struct h_relay r;
	struct h_res res;
	int i, n = 0;

	if (!h_test_hooks())
		cr_skip_test("needs -Dtest_hooks=true");
	h_relay_up(&r, env);
	h_login(&r);
	who_login(&audrey, &r, "audrey", "auditor");
	for (i = 0; i < 15; i++) {
		AS(&audrey, &res, "ticket", "new", "flood");
		expect_refused(&res, "auditor: ticket new");
		h_res_free(&res);
	}
	cr_assert_eq(
	    audit_rows(&r, "refused", "\"technician\":\"audrey\"", NULL, NULL),
	    10, "refused rows in one window");
	for (i = 0; i < 120 && n == 0; i++) {
		n = audit_rows(&r, "refused_unrecorded",
			       "\"technician\":\"audrey\"", "\"count\":5",
			       NULL);
		usleep(100 * 1000);
	}
	cr_assert_eq(n, 1, "no row counting the 5 unrecorded refusals");
	h_relay_stop(&r);
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* carol at work on her own ticket: a paired session, exec and forward. */
struct work {
	struct h_relay r;
	struct who carol;
	char ticket[H_ID_MAX];
	struct h_proc agent, ex, fwd;
};

/* admin_made: the admin's ticket, assigned to carol (not hers by birth). */
static void carol_at_work(struct work *w, bool admin_made)
{
	const char *ex_argv[] = {h_console_bin(), "exec", w->ticket, "--",
				 "sleep",	  "60",	  NULL};
	const char *fwd_argv[] = {h_console_bin(), "forward", w->ticket, NULL,
				  NULL};
	char code[H_CODE_MAX], spec[64];
	struct h_res res;

	memset(w, 0, sizeof(*w));
	h_relay_up(&w->r, NULL);
	h_login(&w->r);
	who_login(&w->carol, &w->r, "carol", "technician");
	h_technician_add(&w->r, "bob", "technician", code, sizeof(code));
	new_ticket(admin_made ? NULL : &w->carol, "carol's case", w->ticket,
		   sizeof(w->ticket));
	if (admin_made) {
		AS_ADMIN(&res, "ticket", "assign", w->ticket, "carol");
		h_expect(&res, 0, NULL, NULL, "ticket assign to carol");
		h_res_free(&res);
	}
	AS(&w->carol, &res, "invite", w->ticket);
	h_expect(&res, 0, NULL, NULL, "carol: invite");
	h_chomp(res.out);
	snprintf(code, sizeof(code), "%s", res.out);
	h_res_free(&res);
	h_agent_start(&w->agent, &w->r, code, NULL);
	h_wait_joined(w->ticket, 15000, &w->agent);
	AS(&w->carol, &res, "exec", w->ticket, "--", "true");
	h_expect(&res, 0, "", "", "carol: exec true (pairs)");
	h_res_free(&res);
	h_proc_start(&w->ex, "exec", ex_argv, w->carol.envv);
	cr_assert(h_proc_wait_output(&w->agent, "carol runs: sleep 60", 20000),
		  "the agent never ran carol's command: %s",
		  h_proc_output(&w->agent));
	snprintf(spec, sizeof(spec), "%d:127.0.0.1:%d", h_free_port(),
		 w->r.port);
	fwd_argv[3] = spec;
	h_proc_start(&w->fwd, "forward", fwd_argv, w->carol.envv);
	cr_assert(h_proc_wait_output(&w->fwd, "Forwarding 127.0.0.1:", 20000),
		  "tether forward did not start: %s", h_proc_output(&w->fwd));
}

/* Both of carol's commands end within a second of t0, saying why. */
static void expect_cut(struct work *w, int64_t t0, const char *why)
{
	int64_t ex_ms = -1, fwd_ms = -1;
	char *out;
	int st;

	while (mono_ms() - t0 < 5000 && (ex_ms < 0 || fwd_ms < 0)) {
		if (ex_ms < 0 && h_proc_wait(&w->ex, 10) >= 0)
			ex_ms = mono_ms() - t0;
		if (fwd_ms < 0 && h_proc_wait(&w->fwd, 10) >= 0)
			fwd_ms = mono_ms() - t0;
	}
	cr_assert(ex_ms >= 0 && fwd_ms >= 0,
		  "still running 5 s later: exec %s, forward %s",
		  ex_ms < 0 ? "yes" : "no", fwd_ms < 0 ? "yes" : "no");
	fprintf(stderr, "cut off (%s): exec %lld ms, forward %lld ms\n", why,
		(long long)ex_ms, (long long)fwd_ms);
	cr_assert_leq(ex_ms, h_sanitized() ? 2000 : 1000, "exec after %lld ms",
		      (long long)ex_ms);
	cr_assert_leq(fwd_ms, h_sanitized() ? 2000 : 1000,
		      "forward after %lld ms", (long long)fwd_ms);
	st = h_proc_wait(&w->ex, 0);
	cr_assert_eq(st, 255, "exec exited with %d", st);
	out = h_proc_output(&w->ex);
	cr_assert(strstr(out, why) != NULL, "exec did not say why: %s", out);
	free(out);
	out = h_proc_output(&w->fwd);
	cr_assert(strstr(out, why) != NULL, "forward did not say why: %s", out);
	free(out);
	cr_assert(h_proc_wait_output(&w->agent, why, 5000),
		  "the customer was not told why: %s",
		  h_proc_output(&w->agent));
	/* The session carol opened ends too, and the agent with it. */
	cr_assert(h_proc_wait_output(&w->agent, "session ended: access revoked",
				     5000),
		  "the session did not end: %s", h_proc_output(&w->agent));
	cr_assert_geq(h_proc_wait(&w->agent, 5000), 0,
		      "the agent is still running");
	cr_assert(audit_rows(&w->r, "access_revoked",
			     "\"technician\":\"carol\"", why, NULL) >= 1,
		  "no access_revoked row");
}

static void work_end(struct work *w)
{
	/* An agent whose session the relay ended exits by itself. */
	if (h_proc_wait_output(&w->agent, "session ended", 0))
		h_proc_wait(&w->agent, 5000);
	h_proc_stop(&w->agent, SIGTERM);
	h_relay_stop(&w->r);
}

Test(roles, lowered_role_cuts_live_work, .timeout = 120)
{
	struct work w;
	struct h_res res;
	int64_t t0;

	carol_at_work(&w, false);
	t0 = mono_ms();
	AS_ADMIN(&res, "technician", "role", "carol", "auditor");
	h_expect(&res, 0, "carol is now auditor (was technician)\n", NULL,
		 "technician role carol auditor");
	h_res_free(&res);
	expect_cut(&w, t0, "your role was changed to auditor by admin");
	cr_assert_eq(audit_rows(&w.r, "role_changed",
				"\"technician\":\"carol\"",
				"\"to\":\"auditor\"", "\"by\":\"admin\""),
		     1);
	/* And carol, an auditor now, may only read. */
	AS(&w.carol, &res, "exec", w.ticket, "--", "true");
	expect_refused(&res, "carol as an auditor: exec");
	h_res_free(&res);
	AS(&w.carol, &res, "ticket", "show", w.ticket);
	h_expect(&res, 0, NULL, NULL, "carol as an auditor: ticket show");
	h_res_free(&res);
	work_end(&w);
}

Test(roles, lowered_on_the_relay_host_cuts_live_work, .timeout = 120)
{
	struct work w;
	struct h_res res;
	int64_t t0;

	carol_at_work(&w, false);
	t0 = mono_ms();
	{
		const char *argv[] = {h_relay_bin(), "technician", "role",
				      "carol",	     "auditor",	   "--data",
				      w.r.data,	     NULL};

		h_run(&res, NULL, argv);
	}
	h_expect(&res, 0, NULL, NULL, "tether-relay technician role");
	h_res_free(&res);
	expect_cut(&w, t0,
		   "your role was changed to auditor on the relay host");
	cr_assert_eq(audit_rows(&w.r, "role_changed",
				"\"technician\":\"carol\"",
				"\"to\":\"auditor\"", "\"by\":\"relay\""),
		     1);
	work_end(&w);
}

/*
 * The admin gives carol's ticket to "to": her work is cut, saying "T-N
 * what", and the trail has it (to_json: the row's "to").
 */
static void give_away(struct work *w, const char *to, const char *what,
		      const char *to_json)
{
	struct h_res res;
	char why[128];
	int64_t t0 = mono_ms();

	AS_ADMIN(&res, "ticket", "assign", w->ticket, to, "--json");
	h_expect(&res, 0, NULL, NULL, "ticket assign");
	cr_assert(strstr(res.out, "\"assignee\"") != NULL, "%s", res.out);
	h_res_free(&res);
	snprintf(why, sizeof(why), "%s %s", w->ticket, what);
	expect_cut(w, t0, why);
	AS(&w->carol, &res, "exec", w->ticket, "--", "true");
	expect_refused(&res, "carol after losing the ticket: exec");
	h_res_free(&res);
	cr_assert_eq(audit_rows(&w->r, "ticket_assigned", "\"from\":\"carol\"",
				to_json, "\"by\":\"admin\""),
		     1);
	work_end(w);
}

Test(roles, reassigned_ticket_cuts_live_work, .timeout = 120)
{
	struct work w;

	carol_at_work(&w, false);
	give_away(&w, "bob", "was reassigned to bob by admin",
		  "\"to\":\"bob\"");
}

/* The admin's ticket, given to carol and taken back to the queue. */
Test(roles, unassigned_ticket_cuts_live_work, .timeout = 120)
{
	struct work w;

	carol_at_work(&w, true);
	give_away(&w, "none", "was unassigned by admin", "\"to\":null");
}

/* Unassigned, a ticket stays its creator's: nothing is cut. */
Test(roles, creator_keeps_an_unassigned_ticket, .timeout = 120)
{
	struct work w;
	struct h_res res;

	carol_at_work(&w, false);
	AS(&w.carol, &res, "ticket", "assign", w.ticket, "none");
	h_expect(&res, 0, NULL, NULL, "carol: assign none");
	h_res_free(&res);
	usleep(1500 * 1000);
	cr_assert(h_proc_alive(&w.ex) && h_proc_alive(&w.fwd),
		  "carol's work was cut: %s", h_proc_output(&w.ex));
	AS(&w.carol, &res, "exec", w.ticket, "--", "true");
	h_expect(&res, 0, "", "", "carol: exec on her unassigned ticket");
	h_res_free(&res);
	/* Given away, it is cut after all (and the commands end cleanly). */
	AS_ADMIN(&res, "ticket", "assign", w.ticket, "bob");
	h_expect(&res, 0, NULL, NULL, "ticket assign to bob");
	h_res_free(&res);
	cr_assert_eq(h_proc_wait(&w.ex, 5000), 255);
	cr_assert_eq(h_proc_wait(&w.fwd, 5000), 255);
	work_end(&w);
}
