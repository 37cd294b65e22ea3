/*
 * Out-of-memory walk over every store operation the relay uses (and the
 * relay's own steps over the store): the 1st, 2nd, ... allocation fails
 * (tether_alloc_fail_after(); SQLite allocates through tether_malloc too)
 * until the operation runs to its end without meeting the failure.  Each
 * failure must be clean: TETHER_ERR_NOMEM (or the documented answer of a
 * predicate), the database exactly as before (a hash of every table), the
 * audit chain whole, and under ASan nothing leaked.
 */
#include <criterion/criterion.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "relay.h"
#include "tether/alloc.h"
#include "tether/crypto.h"
#include "tether/err.h"

static char dir[64];
static char path[128];
static struct relay_store *st;
static sqlite3 *raw;

/* What the seed put there, for operations to work on. */
static struct {
	int64_t tech;
	int64_t ticket;
	int64_t session; /* joined */
	int64_t agent;
	int64_t seq;	  /* the agent's newest result */
	unsigned counter; /* for names and nameplates not used yet */
	uint8_t hash[32]; /* of the current token (prepare makes one) */
	int64_t scratch;  /* what prepare made for run */
} seed;

static uint8_t pake[TETHER_SPAKE2_ELEM_LEN];
static uint8_t conf[TETHER_SPAKE2_CONF_LEN];
static uint8_t rh[32];

static const char *const tables[] = {
    "technicians", "tickets", "sessions",	"audit",       "enroll_tokens",
    "agents",	   "health",  "health_history", "attachments",
};

/* SHA-256 over every row of every table, as hex. */
static void fingerprint(char out[65])
{
	uint8_t digest[32];
	char *acc = NULL;
	size_t len = 0, i;
	FILE *f = open_memstream(&acc, &len);

	cr_assert_not_null(f);
	for (i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		char sql[96];
		sqlite3_stmt *stmt;
		int c;

		snprintf(sql, sizeof(sql), "SELECT * FROM %s ORDER BY rowid",
			 tables[i]);
		cr_assert_eq(sqlite3_prepare_v2(raw, sql, -1, &stmt, NULL),
			     SQLITE_OK, "%s", sqlite3_errmsg(raw));
		fprintf(f, "[%s]", tables[i]);
		while (sqlite3_step(stmt) == SQLITE_ROW) {
			for (c = 0; c < sqlite3_column_count(stmt); c++) {
				int type = sqlite3_column_type(stmt, c);
				const void *v = sqlite3_column_blob(stmt, c);
				int n = sqlite3_column_bytes(stmt, c);

				fprintf(f, "%d:", type);
				if (v != NULL && n > 0)
					fwrite(v, 1, (size_t)n, f);
				fputc('|', f);
			}
			fputc('\n', f);
		}
		sqlite3_finalize(stmt);
	}
	fclose(f);
	cr_assert_eq(tether_sha256(acc, len, digest), 0);
	free(acc);
	tether_hex_encode(digest, sizeof(digest), out, 65);
}

static void seed_store(void)
{
	struct relay_store_result res = {
	    .check = "disk",
	    .state = TETHER_CHECK_CRITICAL,
	    .type = TETHER_CHECK_HARD,
	    .attempt = 1,
	    .max_attempts = 1,
	    .output = "DISK CRITICAL",
	    .perfdata = "[{\"label\":\"used\",\"value\":99}]",
	    .hard_state = TETHER_CHECK_CRITICAL,
	    .hard_change = true,
	};
	uint8_t h[32], pub[32];
	int64_t id;

	memset(pake, 0xaa, sizeof(pake));
	memset(conf, 0xcc, sizeof(conf));
	memset(rh, 0x5a, sizeof(rh));
	memset(h, 1, sizeof(h));
	memset(pub, 0x42, sizeof(pub));
	cr_assert_eq(
	    relay_store_tech_add(st, "alice", TETHER_TECH_ADMIN, h, &seed.tech),
	    0);
	cr_assert_eq(relay_store_ticket_new(st, "seeded", "ACME",
					    TETHER_SOURCE_MANUAL, seed.tech,
					    &seed.ticket),
		     0);
	cr_assert_eq(relay_store_session_new(st, seed.ticket, seed.tech, "11",
					     time(NULL) + 600, "{\"v\":1}",
					     pake, &seed.session),
		     0);
	cr_assert_eq(relay_store_session_join(st, seed.session,
					      "{\"os\":\"linux\"}", pake, conf,
					      rh),
		     0);
	cr_assert_eq(relay_store_audit(st, "tech:alice", seed.ticket,
				       seed.session, "seeded", "{\"n\":1}"),
		     0);
	cr_assert_eq(relay_store_comment_add(st, seed.ticket, "alice",
					     "seeded note", NULL),
		     0);
	cr_assert_eq(relay_store_enroll_token_new(st, h, time(NULL) + 600), 0);
	cr_assert_eq(
	    relay_store_agent_enroll(st, h, "db-01", pub, "{\"env\":\"prod\"}",
				     "{\"os\":\"linux\"}", &seed.agent, NULL),
	    0);
	res.seq = seed.seq = 1;
	res.ts = res.since = res.hard_since = time(NULL);
	cr_assert_eq(relay_store_health_record(st, seed.agent, &res), 0);
	cr_assert_eq(
	    relay_store_health_set_ticket(st, seed.agent, "disk", seed.ticket),
	    0);
	cr_assert_eq(relay_store_attach(st, seed.ticket, "diag", "agent:db-01",
					"AAAA", &id),
		     0);
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/tether-oom-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/relay.db", dir);
	cr_assert_eq(relay_store_open(path, &st), 0);
	cr_assert_eq(sqlite3_open_v2(path, &raw, SQLITE_OPEN_READONLY, NULL),
		     SQLITE_OK);
	memset(&seed, 0, sizeof(seed));
	seed_store();
}

static void teardown(void)
{
	char file[160];
	static const char *const suffixes[] = {"", "-wal", "-shm"};
	size_t i;

	sqlite3_close(raw);
	relay_store_close(st);
	for (i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		snprintf(file, sizeof(file), "%s%s", path, suffixes[i]);
		unlink(file);
	}
	snprintf(file, sizeof(file), "%s/other.db", dir);
	for (i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		char f2[200];

		snprintf(f2, sizeof(f2), "%s%s", file, suffixes[i]);
		unlink(f2);
	}
	rmdir(dir);
}

TestSuite(store_oom, .init = setup, .fini = teardown, .timeout = 280);

/*
 * One operation: prepare (may be NULL) sets up what run needs, without
 * failures; run does it, frees what it got, and returns its result.
 */
struct oom_op {
	const char *name;
	void (*prepare)(void);
	int (*run)(void);
};

static void walk(const struct oom_op *op)
{
	char before[65], after[65];
	unsigned long n, left;
	int r;

	for (n = 1;; n++) {
		cr_assert_lt(n, 100000, "%s never ran to its end", op->name);
		if (op->prepare != NULL)
			op->prepare();
		fingerprint(before);
		tether_alloc_fail_after(n);
		r = op->run();
		left = tether_alloc_fail_after(0);
		if (r != 0) {
			cr_assert_eq(r, TETHER_ERR_NOMEM,
				     "%s: allocation %lu failed: %s", op->name,
				     n, tether_strerror(r));
			fingerprint(after);
			cr_assert_str_eq(before, after,
					 "%s: allocation %lu failed and the "
					 "database changed",
					 op->name, n);
		}
		cr_assert_eq(relay_store_audit_verify(st), 0,
			     "%s: allocation %lu broke the audit chain",
			     op->name, n);
		/* The failure was never reached: the whole operation ran. */
		if (left != 0) {
			cr_assert_eq(r, 0, "%s failed without a failure: %s",
				     op->name, tether_strerror(r));
			break;
		}
	}
}

/* ---- Technicians ---- */

static void next_name(char *buf, size_t len, const char *stem)
{
	snprintf(buf, len, "%s-%u", stem, ++seed.counter);
}

static int op_tech_add(void)
{
	uint8_t h[32] = {7};
	char name[32];
	int64_t id;

	next_name(name, sizeof(name), "tech");
	return relay_store_tech_add(st, name, TETHER_TECH_TECHNICIAN, h, &id);
}

static void prep_tech_remove(void)
{
	uint8_t h[32] = {8};
	char name[32];

	snprintf(name, sizeof(name), "gone-%u", seed.counter + 1);
	cr_assert_eq(
	    relay_store_tech_add(st, name, TETHER_TECH_TECHNICIAN, h, NULL), 0);
}

static int op_tech_remove(void)
{
	char name[32];

	next_name(name, sizeof(name), "gone");
	return relay_store_tech_remove(st, name);
}

static int op_changed_elsewhere(void)
{
	bool changed;

	return relay_store_changed_elsewhere(st, &changed);
}

static int op_tech_get(void)
{
	struct relay_store_tech t;
	int r = relay_store_tech_get(st, seed.tech, &t);

	if (r == 0)
		cr_assert_str_eq(t.name, "alice");
	return r;
}

static int op_tech_list(void)
{
	struct relay_store_tech *v;
	size_t n;
	int r = relay_store_tech_list(st, &v, &n);

	if (r == 0)
		cr_assert_geq(n, 1);
	relay_store_techs_free(v, n);
	return r;
}

/* ---- Tickets ---- */

static int op_ticket_new(void)
{
	int64_t id;

	return relay_store_ticket_new(st, "printer on fire", "ACME",
				      TETHER_SOURCE_MANUAL, seed.tech, &id);
}

static int op_ticket_get(void)
{
	struct relay_store_ticket t;
	int r = relay_store_ticket_get(st, seed.ticket, &t);

	if (r == 0)
		cr_assert_str_eq(t.created_by, "alice");
	relay_store_ticket_clear(&t);
	return r;
}

static int op_ticket_list(void)
{
	struct relay_store_ticket_filter open = {.has_status = true,
						 .status = TETHER_TICKET_OPEN,
						 .search = "o%_",
						 .limit = 1};
	struct relay_store_ticket *v;
	int64_t more;
	size_t n;
	int r = relay_store_ticket_list(st, NULL, &v, &n, NULL);

	relay_store_tickets_free(v, n);
	if (r == 0)
		r = relay_store_ticket_list(st, &open, &v, &n, &more);
	relay_store_tickets_free(v, n);
	return r;
}

static void prep_ticket(void)
{
	cr_assert_eq(relay_store_ticket_new(st, "to close", NULL,
					    TETHER_SOURCE_HEALTH, 0,
					    &seed.scratch),
		     0);
}

static int op_ticket_close(void)
{
	return relay_store_ticket_close(st, seed.scratch, "fixed it");
}

static int op_ticket_sessions(void)
{
	struct relay_store_session *v;
	size_t n;
	int r = relay_store_ticket_sessions(st, seed.ticket, &v, &n);

	if (r == 0)
		cr_assert_str_eq(v[0].agent_facts, "{\"os\":\"linux\"}");
	relay_store_sessions_free(v, n);
	return r;
}

static int op_ticket_audit(void)
{
	struct relay_store_audit *v;
	size_t n;
	int r = relay_store_ticket_audit(st, seed.ticket, &v, &n);

	if (r == 0)
		cr_assert_str_eq(v[0].detail, "{\"n\":1}");
	relay_store_audits_free(v, n);
	return r;
}

static int op_ticket_audit_page(void)
{
	const struct relay_store_audit_page pg = {.limit = 1};
	struct relay_store_audit *v;
	int64_t more;
	size_t n;
	int r =
	    relay_store_ticket_audit_page(st, seed.ticket, &pg, &v, &n, &more);

	if (r == 0)
		cr_assert_str_eq(v[0].detail, "{\"n\":1}");
	relay_store_audits_free(v, n);
	return r;
}

static int op_ticket_comments(void)
{
	struct relay_store_comment *v;
	int64_t more;
	size_t n;
	int r = relay_store_ticket_comments(st, seed.ticket, 1, &v, &n, &more);

	if (r == 0)
		cr_assert_str_eq(v[0].text, "seeded note");
	relay_store_comments_free(v, n);
	return r;
}

static int op_comment_add(void)
{
	return relay_store_comment_add(st, seed.ticket, "alice", "one more",
				       NULL);
}

static void prep_closed(void)
{
	prep_ticket();
	cr_assert_eq(relay_store_ticket_close(st, seed.scratch, "done"), 0);
}

static int op_ticket_reopen(void)
{
	return relay_store_ticket_reopen(st, seed.scratch);
}

static int op_ticket_attachments(void)
{
	struct relay_store_attachment *v;
	size_t n;
	int r = relay_store_ticket_attachments(st, seed.ticket, &v, &n);

	if (r == 0)
		cr_assert_str_eq(v[0].source, "agent:db-01");
	relay_store_attachments_free(v, n);
	return r;
}

/* ---- Sessions ---- */

static void next_nameplate(char *buf, size_t len)
{
	snprintf(buf, len, "%u", 100 + ++seed.counter);
}

static int op_session_new(void)
{
	char nameplate[16];
	int64_t id;

	next_nameplate(nameplate, sizeof(nameplate));
	return relay_store_session_new(st, seed.ticket, seed.tech, nameplate,
				       time(NULL) + 600, "{\"v\":1}", pake,
				       &id);
}

static int session_check(int r, struct relay_store_session *s)
{
	if (r == 0)
		cr_assert(s->has_pake_b && s->has_resume && s->info != NULL);
	relay_store_session_clear(s);
	return r;
}

static int op_session_get(void)
{
	struct relay_store_session s;

	return session_check(relay_store_session_get(st, seed.session, &s), &s);
}

static int op_session_by_nameplate(void)
{
	struct relay_store_session s;

	return session_check(relay_store_session_by_nameplate(st, "11", &s),
			     &s);
}

static int op_session_for_ticket(void)
{
	struct relay_store_session s;
	int r;

	r = session_check(
	    relay_store_session_live_for_ticket(st, seed.ticket, &s), &s);
	if (r == 0)
		r = relay_store_session_latest_for_ticket(st, seed.ticket, &s);
	relay_store_session_clear(&s);
	return r;
}

/* A predicate: on a failure it says "in use", as documented. */
static int op_nameplate_in_use(void)
{
	return relay_store_nameplate_in_use(st, "99") ? TETHER_ERR_NOMEM : 0;
}

static int op_nameplates_held(void)
{
	int64_t n;
	int r = relay_store_nameplates_held(st, time(NULL) - 3600, &n);

	if (r == 0)
		cr_assert_gt(n, 0, "the seed's joined session holds one");
	return r;
}

static void prep_waiting(void)
{
	char nameplate[16];

	snprintf(nameplate, sizeof(nameplate), "%u", 100 + seed.counter + 1);
	cr_assert_eq(relay_store_session_new(st, seed.ticket, seed.tech,
					     nameplate, time(NULL) + 600, NULL,
					     pake, &seed.scratch),
		     0);
}

static int op_session_join(void)
{
	seed.counter++;
	return relay_store_session_join(st, seed.scratch, "{\"os\":\"x\"}",
					pake, conf, rh);
}

static int op_session_set_state(void)
{
	return relay_store_session_set_state(st, seed.session,
					     TETHER_SESSION_PAIRED);
}

static int op_session_expire(void)
{
	struct relay_store_session *v = NULL;
	size_t n = 0;
	int r = relay_store_session_expire(st, time(NULL), &v, &n);

	relay_store_sessions_free(v, n);
	return r;
}

/* ---- Audit and counts ---- */

static int op_audit(void)
{
	return relay_store_audit(st, "tech:alice", seed.ticket, 0, "oom",
				 "{\"why\":\"a test\"}");
}

static int op_audit_verify(void)
{
	return relay_store_audit_verify(st);
}

static int op_counts(void)
{
	struct relay_store_counts c;
	int r = relay_store_counts(st, &c);

	if (r == 0)
		cr_assert_eq(c.agents, 1);
	return r;
}

/* ---- Enrolled agents ---- */

static void prep_token(void)
{
	memset(seed.hash, 0, sizeof(seed.hash));
	memcpy(seed.hash, &seed.counter, sizeof(seed.counter));
	seed.hash[31] = 0xee;
	seed.counter++;
	cr_assert_eq(
	    relay_store_enroll_token_new(st, seed.hash, time(NULL) + 600), 0);
}

static int op_enroll_token_new(void)
{
	uint8_t h[32] = {0x77};

	memcpy(h + 1, &seed.counter, sizeof(seed.counter));
	seed.counter++;
	return relay_store_enroll_token_new(st, h, time(NULL) + 60);
}

static int op_agent_enroll(void)
{
	uint8_t pub[32] = {9};
	bool replaced;
	int64_t id;

	/* Every other round a new agent, else a new key for db-01. */
	return relay_store_agent_enroll(
	    st, seed.hash, seed.counter % 2 ? "db-01" : "web-01", pub,
	    "{\"env\":\"test\"}", NULL, &id, &replaced);
}

static int op_agent_get(void)
{
	struct relay_store_agent a;
	int r = relay_store_agent_get(st, "db-01", &a);

	if (r == 0)
		cr_assert_eq(a.id, seed.agent);
	return r;
}

static int op_agent_seen(void)
{
	return relay_store_agent_seen(st, seed.agent);
}

static int op_agent_set_seq(void)
{
	return relay_store_agent_set_seq(st, seed.agent, ++seed.seq);
}

static int op_agent_list(void)
{
	struct relay_store_agent_row *v;
	size_t n;
	int r = relay_store_agent_list(st, &v, &n);

	if (r == 0)
		cr_assert_str_eq(v[0].labels, "{\"env\":\"prod\"}");
	relay_store_agent_rows_free(v, n);
	return r;
}

/* ---- Checks ---- */

static int op_health_get(void)
{
	struct relay_store_check_prev prev;
	int r = relay_store_health_get(st, seed.agent, "disk", 0, &prev);

	if (r == 0)
		cr_assert(prev.found && prev.ticket_open &&
			  prev.check.perfdata != NULL);
	relay_store_check_prev_clear(&prev);
	return r;
}

static int op_health_record(void)
{
	struct relay_store_result res = {
	    .seq = seed.seq + 1,
	    .check = "load",
	    .state = TETHER_CHECK_WARNING,
	    .type = TETHER_CHECK_SOFT,
	    .attempt = 1,
	    .max_attempts = 3,
	    .output = "LOAD WARNING",
	    .perfdata = "[]",
	    .ts = time(NULL),
	    .since = time(NULL),
	    .hard_state = TETHER_CHECK_OK,
	    .hard_since = time(NULL),
	};
	int r = relay_store_health_record(st, seed.agent, &res);

	if (r == 0)
		seed.seq++;
	return r;
}

/* The relay's step: ask, decide, store (relay-health.c). */
static int op_relay_health_store(void)
{
	struct relay r = {.store = st};
	struct relay_health_decision d;
	struct relay_store_result res = {
	    .seq = seed.seq + 1,
	    .check = "disk",
	    .state = seed.seq % 2 ? TETHER_CHECK_OK : TETHER_CHECK_CRITICAL,
	    .type = TETHER_CHECK_HARD,
	    .attempt = 1,
	    .max_attempts = 1,
	    .output = "DISK",
	    .ts = time(NULL),
	};
	int rc = relay_health_store(&r, seed.agent, TETHER_TICKET_ON_CRITICAL,
				    &res, &d);

	if (rc == 0) {
		cr_assert_eq(d.verdict, RELAY_HEALTH_RECORD);
		seed.seq++;
	}
	return rc;
}

static int op_health_set_ticket(void)
{
	return relay_store_health_set_ticket(st, seed.agent, "disk",
					     seed.ticket);
}

static int op_health_holds_ticket(void)
{
	bool holds;
	int r = relay_store_health_holds_ticket(st, seed.agent, seed.ticket,
						&holds);

	if (r == 0)
		cr_assert(holds);
	return r;
}

static int op_diag_wanted(void)
{
	struct relay r = {.store = st};
	bool wanted;
	int rc = relay_health_diag_wanted(&r, seed.agent, seed.ticket, &wanted);

	if (rc == 0)
		cr_assert_not(wanted, "an agent's bundle is there already");
	return rc;
}

static int op_health_list(void)
{
	struct relay_store_check *v;
	size_t n;
	int r = relay_store_health_list(st, NULL, &v, &n);

	relay_store_checks_free(v, n);
	if (r == 0)
		r = relay_store_health_list(st, "db-01", &v, &n);
	if (r == 0)
		cr_assert_str_eq(v[0].output, "DISK CRITICAL");
	relay_store_checks_free(v, n);
	return r;
}

/* ---- Attachments ---- */

static int op_attach(void)
{
	int64_t id;

	return relay_store_attach(st, seed.ticket, "diag", "tech:alice",
				  "QUJDRA", &id);
}

static int op_attachment_latest(void)
{
	struct relay_store_attachment a;
	int r = relay_store_attachment_latest(st, seed.ticket, "diag", &a);

	if (r == 0)
		cr_assert_not_null(a.data);
	relay_store_attachment_clear(&a);
	return r;
}

static const struct oom_op reads[] = {
    {"tech_get", NULL, op_tech_get},
    {"tech_list", NULL, op_tech_list},
    {"changed_elsewhere", NULL, op_changed_elsewhere},
    {"ticket_get", NULL, op_ticket_get},
    {"ticket_list", NULL, op_ticket_list},
    {"ticket_sessions", NULL, op_ticket_sessions},
    {"ticket_audit", NULL, op_ticket_audit},
    {"ticket_audit_page", NULL, op_ticket_audit_page},
    {"ticket_comments", NULL, op_ticket_comments},
    {"ticket_attachments", NULL, op_ticket_attachments},
    {"session_get", NULL, op_session_get},
    {"session_by_nameplate", NULL, op_session_by_nameplate},
    {"session_for_ticket", NULL, op_session_for_ticket},
    {"nameplate_in_use", NULL, op_nameplate_in_use},
    {"nameplates_held", NULL, op_nameplates_held},
    {"audit_verify", NULL, op_audit_verify},
    {"counts", NULL, op_counts},
    {"agent_get", NULL, op_agent_get},
    {"agent_list", NULL, op_agent_list},
    {"health_get", NULL, op_health_get},
    {"health_holds_ticket", NULL, op_health_holds_ticket},
    {"diag_wanted", NULL, op_diag_wanted},
    {"health_list", NULL, op_health_list},
    {"attachment_latest", NULL, op_attachment_latest},
};

static const struct oom_op writes[] = {
    {"tech_add", NULL, op_tech_add},
    {"tech_remove", prep_tech_remove, op_tech_remove},
    {"ticket_new", NULL, op_ticket_new},
    {"ticket_close", prep_ticket, op_ticket_close},
    {"ticket_reopen", prep_closed, op_ticket_reopen},
    {"comment_add", NULL, op_comment_add},
    {"session_new", NULL, op_session_new},
    {"session_join", prep_waiting, op_session_join},
    {"session_set_state", NULL, op_session_set_state},
    {"session_expire", NULL, op_session_expire},
    {"audit", NULL, op_audit},
    {"enroll_token_new", NULL, op_enroll_token_new},
    {"agent_enroll", prep_token, op_agent_enroll},
    {"agent_seen", NULL, op_agent_seen},
    {"agent_set_seq", NULL, op_agent_set_seq},
    {"health_record", NULL, op_health_record},
    {"relay_health_store", NULL, op_relay_health_store},
    {"health_set_ticket", NULL, op_health_set_ticket},
    {"attach", NULL, op_attach},
};

Test(store_oom, every_read_fails_cleanly)
{
	size_t i;

	for (i = 0; i < sizeof(reads) / sizeof(reads[0]); i++)
		walk(&reads[i]);
}

Test(store_oom, every_write_fails_cleanly)
{
	size_t i;

	for (i = 0; i < sizeof(writes) / sizeof(writes[0]); i++)
		walk(&writes[i]);
}

/* Opening: a new file and an existing one. */
static int open_other(const char *name)
{
	struct relay_store *s2 = NULL;
	char p2[160];
	int r;

	snprintf(p2, sizeof(p2), "%s/%s", dir, name);
	r = relay_store_open(p2, &s2);
	if (r != 0)
		cr_assert_null(s2);
	relay_store_close(s2);
	return r;
}

Test(store_oom, open_fails_cleanly)
{
	unsigned long n, left;
	int r;

	for (n = 1;; n++) {
		cr_assert_lt(n, 100000);
		tether_alloc_fail_after(n);
		r = open_other("other.db");
		left = tether_alloc_fail_after(0);
		cr_assert(r == 0 || r == TETHER_ERR_NOMEM,
			  "open: allocation %lu failed: %s", n,
			  tether_strerror(r));
		/* Whatever a failed open left, the next one makes it whole. */
		cr_assert_eq(open_other("other.db"), 0,
			     "open after allocation %lu failed", n);
		if (left != 0)
			break;
	}
	/* And the seeded store, reopened under the same failures. */
	for (n = 1;; n++) {
		cr_assert_lt(n, 100000);
		tether_alloc_fail_after(n);
		r = open_other("relay.db");
		left = tether_alloc_fail_after(0);
		cr_assert(r == 0 || r == TETHER_ERR_NOMEM,
			  "reopen: allocation %lu failed: %s", n,
			  tether_strerror(r));
		cr_assert_eq(relay_store_audit_verify(st), 0);
		if (left != 0)
			break;
	}
}
