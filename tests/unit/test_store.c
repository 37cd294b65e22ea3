/*
 * Unit tests for relay/relay-store.c.  Each test gets a fresh database in
 * its own mkdtemp() directory; a raw sqlite3 connection stands in for an
 * attacker or an operator poking at the file behind the store's back.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif

#include <criterion/criterion.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "relay-store.h"
#include "tether/alloc.h"
#include "tether/crypto.h"
#include "tether/err.h"

static char dir[64];
static char path[128];
static struct tether_store *st;

static void path_with(char *buf, size_t len, const char *suffix)
{
	int n = snprintf(buf, len, "%s%s", path, suffix);

	cr_assert(n > 0 && (size_t)n < len);
}

static void setup(void)
{
	int n;

	n = snprintf(dir, sizeof(dir), "/tmp/tether-store-XXXXXX");
	cr_assert(n > 0 && (size_t)n < sizeof(dir));
	cr_assert_not_null(mkdtemp(dir));
	n = snprintf(path, sizeof(path), "%s/relay.db", dir);
	cr_assert(n > 0 && (size_t)n < sizeof(path));
	cr_assert_eq(tether_store_open(path, &st), 0);
}

static void teardown(void)
{
	static const char *const suffixes[] = { "", "-wal", "-shm" };
	char file[160];
	size_t i;

	tether_store_close(st);
	st = NULL;
	for (i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		path_with(file, sizeof(file), suffixes[i]);
		unlink(file);
	}
	rmdir(dir);
}

TestSuite(store, .init = setup, .fini = teardown);

/* A second connection to the same file, as an outsider would open it. */
static sqlite3 *raw_open(void)
{
	sqlite3 *db = NULL;

	cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL),
		     SQLITE_OK);
	return db;
}

static int raw_exec(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

static void hash_of(uint8_t h[32], uint8_t seed)
{
	int i;

	for (i = 0; i < 32; i++)
		h[i] = (uint8_t)(seed + i);
}

static int64_t add_tech(const char *name, const char *role)
{
	uint8_t h[32];
	int64_t id = 0;

	hash_of(h, (uint8_t)name[0]);
	cr_assert_eq(tether_store_tech_add(st, name, role, h, &id), 0);
	cr_assert_gt(id, 0);
	return id;
}

static int64_t add_ticket(const char *title, int64_t by)
{
	int64_t id = 0;

	cr_assert_eq(tether_store_ticket_new(st, title, "ACME", "manual", by,
					     &id),
		     0);
	return id;
}

static int64_t add_session(int64_t ticket, const char *nameplate,
			   int64_t expires_at)
{
	int64_t id = 0;

	cr_assert_eq(tether_store_session_new(st, ticket, 1, nameplate,
					      expires_at, "{\"v\":1}", "aa01",
					      &id),
		     0);
	return id;
}

static const char *jstr(json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

/* True if the file holds needle anywhere in its first 1 MiB. */
static bool file_contains(const char *file, const char *needle)
{
	static char buf[1 << 20];
	FILE *f = fopen(file, "rb");
	size_t n;

	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	return memmem(buf, n, needle, strlen(needle)) != NULL;
}

static bool is_iso_time(const char *s)
{
	return s && strlen(s) == 20 && s[4] == '-' && s[10] == 'T' &&
	       s[13] == ':' && s[19] == 'Z';
}

Test(store, open_creates_private_wal_db)
{
	char wal[160];
	struct stat sb;
	sqlite3 *db;
	sqlite3_stmt *stmt;

	cr_assert_eq(stat(path, &sb), 0);
	cr_assert_eq(sb.st_mode & 0777, 0600);
	path_with(wal, sizeof(wal), "-wal");
	cr_assert_eq(stat(wal, &sb), 0, "no -wal file");
	cr_assert_eq(sb.st_mode & 0077, 0);

	db = raw_open();
	cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt,
					NULL),
		     SQLITE_OK);
	cr_assert_eq(sqlite3_step(stmt), SQLITE_ROW);
	cr_assert_str_eq((const char *)sqlite3_column_text(stmt, 0), "wal");
	sqlite3_finalize(stmt);
	cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &stmt,
					NULL),
		     SQLITE_OK);
	cr_assert_eq(sqlite3_step(stmt), SQLITE_ROW);
	cr_assert_eq(sqlite3_column_int(stmt, 0), 1);
	sqlite3_finalize(stmt);
	sqlite3_close(db);
}

Test(store, open_tightens_existing_file)
{
	struct tether_store *again = NULL;
	struct stat sb;

	tether_store_close(st);
	st = NULL;
	cr_assert_eq(chmod(path, 0644), 0);
	cr_assert_eq(tether_store_open(path, &again), 0);
	cr_assert_eq(stat(path, &sb), 0);
	cr_assert_eq(sb.st_mode & 0777, 0600);
	st = again;
}

Test(store, open_rejects_newer_schema)
{
	struct tether_store *again = NULL;
	sqlite3 *db = raw_open();

	cr_assert_eq(raw_exec(db, "PRAGMA user_version = 99"), SQLITE_OK);
	sqlite3_close(db);
	cr_assert_eq(tether_store_open(path, &again), TETHER_ERR_DB);
	cr_assert_null(again);
}

Test(store, tech_add_get_remove)
{
	struct tether_store_tech t;
	uint8_t h[32];
	int64_t id;

	id = add_tech("alice", "admin");
	cr_assert_eq(tether_store_tech_get(st, id, &t), 0);
	cr_assert_eq(t.id, id);
	cr_assert_str_eq(t.name, "alice");
	cr_assert_str_eq(t.role, "admin");
	hash_of(h, 'a');
	cr_assert_arr_eq(t.token_hash, h, 32);

	cr_assert_eq(tether_store_tech_remove(st, "alice"), 0);
	cr_assert_eq(tether_store_tech_get(st, id, &t), TETHER_ERR_NOT_FOUND);
	cr_assert_eq(tether_store_tech_remove(st, "alice"),
		     TETHER_ERR_NOT_FOUND);
	cr_assert_eq(tether_store_tech_remove(st, "nobody"),
		     TETHER_ERR_NOT_FOUND);
}

Test(store, tech_duplicate_name_exists_until_removed)
{
	uint8_t h[32];
	int64_t first;
	int64_t second;

	hash_of(h, 7);
	first = add_tech("bob", "technician");
	cr_assert_eq(tether_store_tech_add(st, "bob", "admin", h, NULL),
		     TETHER_ERR_EXISTS);
	cr_assert_eq(tether_store_tech_remove(st, "bob"), 0);
	second = add_tech("bob", "technician");
	/* A stale id must never name the new technician. */
	cr_assert_neq(first, second);
}

Test(store, tech_add_rejects_bad_input)
{
	char longname[80];
	uint8_t h[32] = { 0 };

	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	cr_assert_eq(tether_store_tech_add(st, "eve", "root", h, NULL),
		     TETHER_ERR_INVALID);
	cr_assert_eq(tether_store_tech_add(st, "", "admin", h, NULL),
		     TETHER_ERR_INVALID);
	cr_assert_eq(tether_store_tech_add(st, longname, "admin", h, NULL),
		     TETHER_ERR_INVALID);
}

Test(store, tech_token_hash_stored_exactly)
{
	const char *token = "tok_super_secret_value";
	uint8_t h[32];
	sqlite3_stmt *stmt;
	sqlite3 *db;
	char wal[160];

	cr_assert_eq(tether_sha256(token, strlen(token), h), 0);
	cr_assert_eq(tether_store_tech_add(st, "carol", "technician", h, NULL),
		     0);
	db = raw_open();
	cr_assert_eq(sqlite3_prepare_v2(db,
					"SELECT token_hash FROM technicians"
					" WHERE name = 'carol'",
					-1, &stmt, NULL),
		     SQLITE_OK);
	cr_assert_eq(sqlite3_step(stmt), SQLITE_ROW);
	cr_assert_eq(sqlite3_column_bytes(stmt, 0), 32);
	cr_assert_arr_eq(sqlite3_column_blob(stmt, 0), h, 32);
	sqlite3_finalize(stmt);
	sqlite3_close(db);

	/* Only the hash reaches the files, never the token. */
	path_with(wal, sizeof(wal), "-wal");
	cr_assert(file_contains(wal, "carol"), "the probe itself works");
	cr_assert_not(file_contains(path, token));
	cr_assert_not(file_contains(wal, token));
}

Test(store, tech_list)
{
	json_t *arr = NULL;
	json_t *e;

	add_tech("alice", "admin");
	add_tech("bob", "technician");
	cr_assert_eq(tether_store_tech_list(st, &arr), 0);
	cr_assert_eq(json_array_size(arr), 2);
	e = json_array_get(arr, 1);
	cr_assert_str_eq(jstr(e, "name"), "bob");
	cr_assert_str_eq(jstr(e, "role"), "technician");
	cr_assert(json_is_integer(json_object_get(e, "id")));
	cr_assert(is_iso_time(jstr(e, "created_at")));
	cr_assert_null(json_object_get(e, "token_hash"));
	json_decref(arr);
}

Test(store, ticket_new_get)
{
	int64_t alice = add_tech("alice", "admin");
	int64_t id = add_ticket("Printer on fire", alice);
	json_t *t = NULL;

	cr_assert_eq(id, 1);
	cr_assert_eq(tether_store_ticket_get(st, id, false, &t), 0);
	cr_assert_str_eq(jstr(t, "id"), "T-1");
	cr_assert_str_eq(jstr(t, "title"), "Printer on fire");
	cr_assert_str_eq(jstr(t, "customer"), "ACME");
	cr_assert_str_eq(jstr(t, "status"), "open");
	cr_assert_str_eq(jstr(t, "source"), "manual");
	cr_assert_str_eq(jstr(t, "created_by"), "alice");
	cr_assert(is_iso_time(jstr(t, "created_at")));
	cr_assert(json_is_null(json_object_get(t, "closed_at")));
	cr_assert(json_is_null(json_object_get(t, "resolution")));
	cr_assert_null(json_object_get(t, "sessions"));
	json_decref(t);

	cr_assert_eq(tether_store_ticket_get(st, 99, false, &t),
		     TETHER_ERR_NOT_FOUND);
	cr_assert_null(t);
}

Test(store, ticket_created_by_unknown_is_null)
{
	int64_t a = add_ticket("no creator", 0);
	int64_t b = add_ticket("ghost creator", 4242);
	json_t *t = NULL;

	cr_assert_eq(tether_store_ticket_get(st, a, false, &t), 0);
	cr_assert(json_is_null(json_object_get(t, "created_by")));
	json_decref(t);
	cr_assert_eq(tether_store_ticket_get(st, b, false, &t), 0);
	cr_assert(json_is_null(json_object_get(t, "created_by")));
	json_decref(t);
}

Test(store, ticket_time_is_iso_utc)
{
	int64_t id = add_ticket("when", 0);
	json_t *t = NULL;
	sqlite3 *db = raw_open();

	/* 2026-11-23T10:00:00Z */
	cr_assert_eq(raw_exec(db, "UPDATE tickets SET created_at = 1795428000"),
		     SQLITE_OK);
	sqlite3_close(db);
	cr_assert_eq(tether_store_ticket_get(st, id, false, &t), 0);
	cr_assert_str_eq(jstr(t, "created_at"), "2026-11-23T10:00:00Z");
	json_decref(t);
}

Test(store, ticket_rejects_bad_source)
{
	int64_t id = 0;

	cr_assert_eq(tether_store_ticket_new(st, "x", NULL, "email", 0, &id),
		     TETHER_ERR_INVALID);
	cr_assert_eq(tether_store_ticket_new(st, NULL, NULL, "manual", 0, &id),
		     TETHER_ERR_INVALID);
}

Test(store, ticket_list_by_status)
{
	json_t *arr = NULL;

	add_ticket("one", 0);
	add_ticket("two", 0);
	add_ticket("three", 0);
	cr_assert_eq(tether_store_ticket_close(st, 2, "fixed"), 0);

	cr_assert_eq(tether_store_ticket_list(st, NULL, &arr), 0);
	cr_assert_eq(json_array_size(arr), 3);
	/* newest first */
	cr_assert_str_eq(jstr(json_array_get(arr, 0), "id"), "T-3");
	cr_assert_str_eq(jstr(json_array_get(arr, 2), "id"), "T-1");
	json_decref(arr);

	cr_assert_eq(tether_store_ticket_list(st, "open", &arr), 0);
	cr_assert_eq(json_array_size(arr), 2);
	cr_assert_str_eq(jstr(json_array_get(arr, 0), "id"), "T-3");
	cr_assert_str_eq(jstr(json_array_get(arr, 1), "id"), "T-1");
	json_decref(arr);

	cr_assert_eq(tether_store_ticket_list(st, "closed", &arr), 0);
	cr_assert_eq(json_array_size(arr), 1);
	cr_assert_str_eq(jstr(json_array_get(arr, 0), "title"), "two");
	json_decref(arr);

	cr_assert_eq(tether_store_ticket_list(st, "pending", &arr),
		     TETHER_ERR_INVALID);
}

Test(store, ticket_close)
{
	int64_t id = add_ticket("close me", 0);
	char title[32];
	char status[16];
	json_t *t = NULL;

	cr_assert_eq(tether_store_ticket_close(st, id, "rebooted"), 0);
	cr_assert_eq(tether_store_ticket_close(st, id, "again"),
		     TETHER_ERR_STATE);
	cr_assert_eq(tether_store_ticket_close(st, 77, "x"),
		     TETHER_ERR_NOT_FOUND);

	cr_assert_eq(tether_store_ticket_get(st, id, false, &t), 0);
	cr_assert_str_eq(jstr(t, "status"), "closed");
	cr_assert_str_eq(jstr(t, "resolution"), "rebooted");
	cr_assert(is_iso_time(jstr(t, "closed_at")));
	json_decref(t);

	cr_assert_eq(tether_store_ticket_brief(st, id, title, sizeof(title),
					       status, sizeof(status)),
		     0);
	cr_assert_str_eq(title, "close me");
	cr_assert_str_eq(status, "closed");
}

Test(store, ticket_brief)
{
	int64_t id = add_ticket("a fairly long title", 0);
	char small[4];
	char status[16];

	cr_assert_eq(tether_store_ticket_brief(st, id, NULL, 0, status,
					       sizeof(status)),
		     0);
	cr_assert_str_eq(status, "open");
	cr_assert_eq(tether_store_ticket_brief(st, id, small, sizeof(small),
					       NULL, 0),
		     TETHER_ERR_TOO_LARGE);
	cr_assert_eq(tether_store_ticket_brief(st, 5, NULL, 0, NULL, 0),
		     TETHER_ERR_NOT_FOUND);
}

Test(store, session_new_get)
{
	int64_t t = add_ticket("s", 0);
	int64_t exp = (int64_t)time(NULL) + 600;
	int64_t id = add_session(t, "42", exp);
	struct tether_store_session s;

	cr_assert_eq(tether_store_session_get(st, id, &s), 0);
	cr_assert_eq(s.id, id);
	cr_assert_eq(s.ticket_id, t);
	cr_assert_eq(s.technician_id, 1);
	cr_assert_str_eq(s.nameplate, "42");
	cr_assert_str_eq(s.state, "waiting");
	cr_assert_eq(s.expires_at, exp);
	cr_assert_gt(s.created_at, 0);
	cr_assert_str_eq(s.info, "{\"v\":1}");
	cr_assert_str_eq(s.pake_a, "aa01");
	cr_assert_null(s.pake_b);
	cr_assert_null(s.conf_b);
	cr_assert_null(s.agent_facts);
	cr_assert_not(s.has_resume);
	tether_store_session_clear(&s);

	cr_assert_eq(tether_store_session_get(st, 999, &s),
		     TETHER_ERR_NOT_FOUND);
}

Test(store, session_new_needs_ticket_and_free_nameplate)
{
	int64_t t = add_ticket("s", 0);
	int64_t exp = (int64_t)time(NULL) + 600;

	cr_assert_eq(tether_store_session_new(st, 55, 1, "7", exp, NULL, NULL,
					      NULL),
		     TETHER_ERR_NOT_FOUND);
	add_session(t, "7", exp);
	cr_assert_eq(tether_store_session_new(st, t, 1, "7", exp, NULL, NULL,
					      NULL),
		     TETHER_ERR_EXISTS);
	cr_assert_eq(tether_store_session_new(st, t, 1, "1234567890123456",
					      exp, NULL, NULL, NULL),
		     TETHER_ERR_INVALID);
}

Test(store, session_by_nameplate_newest)
{
	int64_t t = add_ticket("s", 0);
	int64_t exp = (int64_t)time(NULL) + 600;
	int64_t old = add_session(t, "9", exp);
	int64_t young;
	struct tether_store_session s;

	cr_assert_eq(tether_store_session_set_state(st, old, "ended"), 0);
	young = add_session(t, "9", exp);
	cr_assert_eq(tether_store_session_by_nameplate(st, "9", &s), 0);
	cr_assert_eq(s.id, young);
	tether_store_session_clear(&s);
	cr_assert_eq(tether_store_session_set_state(st, young, "burned"), 0);
	/* whatever its state */
	cr_assert_eq(tether_store_session_by_nameplate(st, "9", &s), 0);
	cr_assert_eq(s.id, young);
	cr_assert_str_eq(s.state, "burned");
	tether_store_session_clear(&s);
	cr_assert_eq(tether_store_session_by_nameplate(st, "10", &s),
		     TETHER_ERR_NOT_FOUND);
}

Test(store, session_live_for_ticket)
{
	int64_t t = add_ticket("s", 0);
	int64_t other = add_ticket("o", 0);
	int64_t exp = (int64_t)time(NULL) + 600;
	int64_t a = add_session(t, "11", exp);
	int64_t b = add_session(t, "12", exp);
	struct tether_store_session s;

	add_session(other, "13", exp);
	cr_assert_eq(tether_store_session_live_for_ticket(st, t, &s), 0);
	cr_assert_eq(s.id, b);
	tether_store_session_clear(&s);
	cr_assert_eq(tether_store_session_set_state(st, b, "declined"), 0);
	cr_assert_eq(tether_store_session_live_for_ticket(st, t, &s), 0);
	cr_assert_eq(s.id, a);
	tether_store_session_clear(&s);
	cr_assert_eq(tether_store_session_set_state(st, a, "ended"), 0);
	cr_assert_eq(tether_store_session_live_for_ticket(st, t, &s),
		     TETHER_ERR_NOT_FOUND);
}

Test(store, session_join_once)
{
	int64_t t = add_ticket("s", 0);
	int64_t id = add_session(t, "21", (int64_t)time(NULL) + 600);
	struct tether_store_session s;
	uint8_t rh[32];

	hash_of(rh, 0x90);
	cr_assert_eq(tether_store_session_join(st, id, "{\"os\":\"linux\"}",
					       "bb02", "cc03", rh),
		     0);
	cr_assert_eq(tether_store_session_join(st, id, "{}", "dd", "ee", rh),
		     TETHER_ERR_STATE);
	cr_assert_eq(tether_store_session_join(st, 404, "{}", "dd", "ee", rh),
		     TETHER_ERR_NOT_FOUND);

	cr_assert_eq(tether_store_session_get(st, id, &s), 0);
	cr_assert_str_eq(s.state, "joined");
	cr_assert_str_eq(s.agent_facts, "{\"os\":\"linux\"}");
	cr_assert_str_eq(s.pake_b, "bb02");
	cr_assert_str_eq(s.conf_b, "cc03");
	cr_assert(s.has_resume);
	cr_assert_arr_eq(s.resume_hash, rh, 32);
	tether_store_session_clear(&s);
}

Test(store, session_join_refuses_expired)
{
	int64_t t = add_ticket("s", 0);
	int64_t id = add_session(t, "22", (int64_t)time(NULL) - 1);

	cr_assert_eq(tether_store_session_join(st, id, NULL, "bb", "cc", NULL),
		     TETHER_ERR_EXPIRED);
}

Test(store, session_set_state)
{
	int64_t t = add_ticket("s", 0);
	int64_t id = add_session(t, "31", (int64_t)time(NULL) + 600);
	struct tether_store_session s;

	cr_assert_eq(tether_store_session_set_state(st, id, "paired"), 0);
	cr_assert_eq(tether_store_session_get(st, id, &s), 0);
	cr_assert_str_eq(s.state, "paired");
	tether_store_session_clear(&s);
	cr_assert_eq(tether_store_session_set_state(st, id, "bogus"),
		     TETHER_ERR_INVALID);
	cr_assert_eq(tether_store_session_set_state(st, 321, "ended"),
		     TETHER_ERR_NOT_FOUND);
}

Test(store, session_expire)
{
	int64_t t = add_ticket("s", 0);
	int64_t now = (int64_t)time(NULL);
	int64_t due = add_session(t, "41", now - 10);
	int64_t edge = add_session(t, "42", now);
	int64_t later = add_session(t, "43", now + 600);
	int64_t joined = add_session(t, "44", now + 5);
	struct tether_store_session s;
	int n = -1;

	cr_assert_eq(tether_store_session_join(st, joined, NULL, "b", "c",
					       NULL),
		     0);
	cr_assert_eq(tether_store_session_expire(st, now + 5, &n), 0);
	cr_assert_eq(n, 2);
	cr_assert_eq(tether_store_session_get(st, due, &s), 0);
	cr_assert_str_eq(s.state, "expired");
	tether_store_session_clear(&s);
	cr_assert_eq(tether_store_session_get(st, edge, &s), 0);
	cr_assert_str_eq(s.state, "expired");
	tether_store_session_clear(&s);
	cr_assert_eq(tether_store_session_get(st, later, &s), 0);
	cr_assert_str_eq(s.state, "waiting");
	tether_store_session_clear(&s);
	cr_assert_eq(tether_store_session_get(st, joined, &s), 0);
	cr_assert_str_eq(s.state, "joined");
	tether_store_session_clear(&s);
	cr_assert_eq(tether_store_session_expire(st, now + 5, NULL), 0);
}

Test(store, nameplate_in_use)
{
	int64_t t = add_ticket("s", 0);
	int64_t id = add_session(t, "51", (int64_t)time(NULL) + 600);

	cr_assert(tether_store_nameplate_in_use(st, "51"));
	cr_assert_not(tether_store_nameplate_in_use(st, "52"));
	cr_assert_eq(tether_store_session_join(st, id, NULL, "b", "c", NULL),
		     0);
	cr_assert(tether_store_nameplate_in_use(st, "51"));
	cr_assert_eq(tether_store_session_set_state(st, id, "paired"), 0);
	cr_assert(tether_store_nameplate_in_use(st, "51"));
	cr_assert_eq(tether_store_session_set_state(st, id, "ended"), 0);
	cr_assert_not(tether_store_nameplate_in_use(st, "51"));
}

Test(store, session_clear_frees_and_zeroes)
{
	int64_t t = add_ticket("s", 0);
	int64_t id = add_session(t, "61", (int64_t)time(NULL) + 600);
	struct tether_store_session s;
	uint8_t rh[32];

	hash_of(rh, 1);
	cr_assert_eq(tether_store_session_join(st, id, "{\"a\":1}", "b", "c",
					       rh),
		     0);
	cr_assert_eq(tether_store_session_get(st, id, &s), 0);
	/* ASan reports a leak if any string survives. */
	tether_store_session_clear(&s);
	cr_assert_null(s.info);
	cr_assert_null(s.pake_a);
	cr_assert_null(s.pake_b);
	cr_assert_null(s.conf_b);
	cr_assert_null(s.agent_facts);
	cr_assert_not(s.has_resume);
	cr_assert_eq(s.resume_hash[0], 0);
	tether_store_session_clear(&s);
	tether_store_session_clear(NULL);
}

Test(store, ticket_detail_sessions_and_audit)
{
	int64_t t = add_ticket("detail", 0);
	int64_t id = add_session(t, "71", (int64_t)time(NULL) + 600);
	json_t *obj = NULL;
	json_t *sess;
	json_t *aud;
	json_t *e;

	add_session(add_ticket("other", 0), "72", (int64_t)time(NULL) + 600);
	cr_assert_eq(tether_store_session_join(st, id, "{\"os\":\"linux\"}",
					       "bb", "cc", NULL),
		     0);
	cr_assert_eq(tether_store_audit(st, "tech:alice", t, 0, "created",
					 "{\"n\":1}"),
		     0);
	cr_assert_eq(tether_store_audit(st, "relay", 0, 0, "startup", NULL),
		     0);
	cr_assert_eq(tether_store_audit(st, "agent", t, id, "joined",
					 "not json"),
		     0);
	cr_assert_eq(tether_store_audit(st, "relay", t, id, "ended", NULL), 0);

	cr_assert_eq(tether_store_ticket_get(st, t, true, &obj), 0);
	sess = json_object_get(obj, "sessions");
	cr_assert_eq(json_array_size(sess), 1);
	e = json_array_get(sess, 0);
	cr_assert_str_eq(jstr(e, "nameplate"), "71");
	cr_assert_str_eq(jstr(e, "state"), "joined");
	cr_assert(is_iso_time(jstr(e, "created_at")));
	cr_assert(is_iso_time(jstr(e, "expires_at")));
	cr_assert_str_eq(jstr(json_object_get(e, "agent"), "os"), "linux");
	cr_assert_eq(json_object_size(e), 5, "no secrets or PAKE values");

	aud = json_object_get(obj, "audit");
	cr_assert_eq(json_array_size(aud), 3);
	e = json_array_get(aud, 0);
	cr_assert_str_eq(jstr(e, "event"), "created");
	cr_assert_str_eq(jstr(e, "actor"), "tech:alice");
	cr_assert(is_iso_time(jstr(e, "ts")));
	cr_assert_eq(json_integer_value(json_object_get(
			     json_object_get(e, "detail"), "n")),
		     1);
	e = json_array_get(aud, 1);
	cr_assert_str_eq(jstr(e, "event"), "joined");
	cr_assert_str_eq(jstr(e, "detail"), "not json");
	e = json_array_get(aud, 2);
	cr_assert_str_eq(jstr(e, "event"), "ended");
	cr_assert(json_is_null(json_object_get(e, "detail")));
	json_decref(obj);
}

Test(store, ticket_detail_agent_null_when_absent)
{
	int64_t t = add_ticket("detail", 0);
	json_t *obj = NULL;
	json_t *e;

	add_session(t, "81", (int64_t)time(NULL) + 600);
	cr_assert_eq(tether_store_ticket_get(st, t, true, &obj), 0);
	e = json_array_get(json_object_get(obj, "sessions"), 0);
	cr_assert(json_is_null(json_object_get(e, "agent")));
	cr_assert_eq(json_array_size(json_object_get(obj, "audit")), 0);
	json_decref(obj);
}

/* Every failing allocation in session_get/audit is reported, not leaked. */
Test(store, survives_allocation_failures)
{
	int64_t t = add_ticket("oom", 0);
	int64_t id = add_session(t, "91", (int64_t)time(NULL) + 600);
	struct tether_store_session s;
	unsigned long nth;
	int r;

	cr_assert_eq(tether_store_session_join(st, id, "{}", "b", "c", NULL),
		     0);
	for (nth = 1; nth < 16; nth++) {
		tether_alloc_fail_after(nth);
		r = tether_store_session_get(st, id, &s);
		tether_alloc_fail_after(0);
		cr_assert(r == 0 || r == TETHER_ERR_NOMEM);
		if (!r)
			cr_assert_str_eq(s.agent_facts, "{}");
		else
			cr_assert_null(s.info);
		tether_store_session_clear(&s);
	}
	tether_alloc_fail_after(1);
	r = tether_store_audit(st, "relay", t, 0, "oom", NULL);
	tether_alloc_fail_after(0);
	cr_assert_eq(r, TETHER_ERR_NOMEM);
	cr_assert_eq(tether_store_audit(st, "relay", t, 0, "ok", NULL), 0);
	cr_assert_eq(tether_store_audit_verify(st), 0);
}

static void add_audit_rows(void)
{
	cr_assert_eq(tether_store_audit(st, "relay", 0, 0, "startup", NULL),
		     0);
	cr_assert_eq(tether_store_audit(st, "tech:alice", 1, 0, "created",
					 "{\"title\":\"x\"}"),
		     0);
	cr_assert_eq(tether_store_audit(st, "agent", 1, 2, "joined", "{}"), 0);
}

Test(store, audit_verify_passes)
{
	cr_assert_eq(tether_store_audit_verify(st), 0, "empty chain");
	add_audit_rows();
	cr_assert_eq(tether_store_audit_verify(st), 0);
	cr_assert_eq(tether_store_audit(st, NULL, 0, 0, "x", NULL),
		     TETHER_ERR_INVALID);
}

Test(store, audit_tamper_detected)
{
	sqlite3 *db;

	add_audit_rows();
	db = raw_open();
	cr_assert_eq(raw_exec(db, "DROP TRIGGER audit_no_update"), SQLITE_OK);
	cr_assert_eq(raw_exec(db, "UPDATE audit"
				  " SET detail = '{\"title\":\"y\"}'"
				  " WHERE id = 2"),
		     SQLITE_OK);
	sqlite3_close(db);
	cr_assert_eq(tether_store_audit_verify(st), TETHER_ERR_CRYPTO);
}

Test(store, audit_deletion_detected)
{
	sqlite3 *db;

	add_audit_rows();
	db = raw_open();
	cr_assert_eq(raw_exec(db, "DROP TRIGGER audit_no_delete"), SQLITE_OK);
	cr_assert_eq(raw_exec(db, "DELETE FROM audit WHERE id = 2"),
		     SQLITE_OK);
	sqlite3_close(db);
	cr_assert_eq(tether_store_audit_verify(st), TETHER_ERR_CRYPTO);
}

Test(store, audit_is_append_only)
{
	sqlite3 *db;

	add_audit_rows();
	db = raw_open();
	/* Refused by the triggers, not by a typo or a locked database. */
	cr_assert_eq(raw_exec(db, "UPDATE audit SET detail = 'x'"
				  " WHERE id = 1"),
		     SQLITE_CONSTRAINT, "%s", sqlite3_errmsg(db));
	cr_assert_str_eq(sqlite3_errmsg(db), "audit is append-only");
	cr_assert_eq(raw_exec(db, "DELETE FROM audit WHERE id = 3"),
		     SQLITE_CONSTRAINT, "%s", sqlite3_errmsg(db));
	cr_assert_str_eq(sqlite3_errmsg(db), "audit is append-only");
	sqlite3_close(db);
	cr_assert_eq(tether_store_audit_verify(st), 0);
}

Test(store, reopen_keeps_data)
{
	int64_t alice = add_tech("alice", "admin");
	int64_t t = add_ticket("persist", alice);
	struct tether_store_tech tech;
	json_t *obj = NULL;

	cr_assert_eq(tether_store_audit(st, "tech:alice", t, 0, "created",
					 NULL),
		     0);
	tether_store_close(st);
	st = NULL;
	cr_assert_eq(tether_store_open(path, &st), 0);
	cr_assert_eq(tether_store_tech_get(st, alice, &tech), 0);
	cr_assert_str_eq(tech.name, "alice");
	cr_assert_eq(tether_store_ticket_get(st, t, true, &obj), 0);
	cr_assert_str_eq(jstr(obj, "title"), "persist");
	cr_assert_eq(json_array_size(json_object_get(obj, "audit")), 1);
	json_decref(obj);
	/* the chain continues across opens */
	cr_assert_eq(tether_store_audit(st, "relay", 0, 0, "restart", NULL),
		     0);
	cr_assert_eq(tether_store_audit_verify(st), 0);
}

/* ---- Enrolled agents and health --------------------------------------- */

static void token_hash(const char *token, uint8_t out[32])
{
	cr_assert_eq(tether_sha256(token, strlen(token), out), 0);
}

static int64_t enrolled_agent(const char *name)
{
	uint8_t h[32], pub[32];
	int64_t id = 0;
	bool replaced = true;
	char tok[80];

	snprintf(tok, sizeof(tok), "tte_for_%s", name);
	token_hash(tok, h);
	memset(pub, 0x42, sizeof(pub));
	cr_assert_eq(tether_store_enroll_token_new(st, h, time(NULL) + 60), 0);
	cr_assert_eq(tether_store_agent_enroll(st, h, name, pub,
					       "{\"env\":\"prod\"}", NULL, &id,
					       &replaced),
		     0);
	cr_assert(!replaced);
	return id;
}

Test(store, enroll_token_spent_once_and_expires)
{
	uint8_t h[32], h2[32], pub[32] = { 1 }, pub2[32] = { 2 };
	struct tether_store_agent a;
	bool replaced = false;
	int64_t id = 0;

	token_hash("tte_one", h);
	cr_assert_eq(tether_store_agent_enroll(st, h, "web", pub, NULL, NULL,
					       &id, &replaced),
		     TETHER_ERR_NOT_FOUND);
	cr_assert_eq(tether_store_enroll_token_new(st, h, time(NULL) + 60), 0);
	cr_assert_eq(tether_store_agent_enroll(st, h, "web", pub, NULL, NULL,
					       &id, &replaced),
		     0);
	cr_assert_gt(id, 0);
	cr_assert_eq(tether_store_agent_enroll(st, h, "web2", pub, NULL, NULL,
					       &id, &replaced),
		     TETHER_ERR_NOT_FOUND, "a token works once");
	token_hash("tte_old", h2);
	cr_assert_eq(tether_store_enroll_token_new(st, h2, time(NULL) - 1), 0);
	cr_assert_eq(tether_store_agent_enroll(st, h2, "web2", pub, NULL, NULL,
					       &id, &replaced),
		     TETHER_ERR_EXPIRED);
	cr_assert_eq(tether_store_agent_get(st, "web2", &a),
		     TETHER_ERR_NOT_FOUND);

	/* A new token re-keys an existing name. */
	token_hash("tte_two", h2);
	cr_assert_eq(tether_store_enroll_token_new(st, h2, time(NULL) + 60), 0);
	cr_assert_eq(tether_store_agent_enroll(st, h2, "web", pub2, NULL, NULL,
					       &id, &replaced),
		     0);
	cr_assert(replaced);
	cr_assert_eq(tether_store_agent_get(st, "web", &a), 0);
	cr_assert_eq(a.id, id);
	cr_assert_eq(memcmp(a.pubkey, pub2, 32), 0);
}

static int record(int64_t agent, int64_t seq, const char *state,
		  const char *type, int64_t ts,
		  struct tether_store_health_change *ch)
{
	struct tether_store_result r = {
		.seq = seq, .check = "disk", .state = state, .type = type,
		.attempt = 1, .max_attempts = 3, .output = "DISK x",
		.perfdata = "[{\"label\":\"used\",\"value\":1}]", .ts = ts,
	};

	return tether_store_health_record(st, agent, &r, ch);
}

Test(store, health_hard_changes_duplicates_and_flaps)
{
	struct tether_store_health_change ch;
	int64_t a = enrolled_agent("db-01"), tid = 0;
	int64_t t0 = time(NULL) - 600;
	json_t *list, *agents;
	struct tether_store_agent ag;

	cr_assert_eq(record(a, 1, "OK", "HARD", t0, &ch), 0);
	cr_assert(!ch.hard_change && !ch.duplicate);
	cr_assert_eq(record(a, 2, "CRITICAL", "SOFT", t0 + 1, &ch), 0);
	cr_assert(!ch.hard_change);
	cr_assert_eq(record(a, 3, "CRITICAL", "HARD", t0 + 2, &ch), 0);
	cr_assert(ch.hard_change);
	cr_assert_str_eq(ch.prev_hard, "OK");
	cr_assert_eq(ch.hard_changes_1h, 1);
	/* A resent result is acknowledged but changes nothing. */
	cr_assert_eq(record(a, 3, "OK", "HARD", t0 + 3, &ch), 0);
	cr_assert(ch.duplicate);
	cr_assert_eq(tether_store_agent_get(st, "db-01", &ag), 0);
	cr_assert_eq(ag.last_seq, 3);

	/* The ticket is remembered while open. */
	cr_assert_eq(tether_store_ticket_new(st, "db-01: disk is CRITICAL",
					     "db-01", "health", 0, &tid),
		     0);
	cr_assert_eq(tether_store_health_set_ticket(st, a, "disk", tid), 0);
	cr_assert_eq(record(a, 4, "OK", "HARD", t0 + 4, &ch), 0);
	cr_assert(ch.hard_change);
	cr_assert_eq(ch.ticket_id, tid);
	cr_assert_eq(ch.hard_changes_1h, 2);
	cr_assert_eq(record(a, 5, "CRITICAL", "HARD", t0 + 5, &ch), 0);
	cr_assert_eq(record(a, 6, "OK", "HARD", t0 + 6, &ch), 0);
	cr_assert_eq(ch.hard_changes_1h, 4);
	cr_assert_eq(tether_store_ticket_close(st, tid, "fixed"), 0);
	cr_assert_eq(record(a, 7, "WARNING", "HARD", t0 + 7, &ch), 0);
	cr_assert_eq(ch.ticket_id, 0, "a closed ticket is not reused");

	cr_assert_eq(tether_store_health_list(st, "db-01", &list), 0);
	cr_assert_eq(json_array_size(list), 1);
	cr_assert_str_eq(json_string_value(json_object_get(
				 json_array_get(list, 0), "state")),
			 "WARNING");
	cr_assert(json_is_array(
	    json_object_get(json_array_get(list, 0), "perfdata")));
	json_decref(list);
	cr_assert_eq(tether_store_health_list(st, "nobody", &list),
		     TETHER_ERR_NOT_FOUND);
	cr_assert_eq(tether_store_agent_list(st, &agents), 0);
	cr_assert_str_eq(json_string_value(json_object_get(
				 json_array_get(agents, 0), "worst")),
			 "WARNING");
	cr_assert_str_eq(json_string_value(json_object_get(
				 json_object_get(json_array_get(agents, 0),
						 "labels"),
				 "env")),
			 "prod");
	json_decref(agents);
}

Test(store, attachments_newest_first)
{
	int64_t tid = 0;
	json_t *att, *t;

	cr_assert_eq(tether_store_ticket_new(st, "x", NULL, "manual", 0, &tid),
		     0);
	cr_assert_eq(tether_store_attachment_latest(st, tid, "diag", &att),
		     TETHER_ERR_NOT_FOUND);
	cr_assert_eq(tether_store_attach(st, tid, "diag", "tech:a", "AAAA",
					 NULL),
		     0);
	cr_assert_eq(tether_store_attach(st, tid, "diag", "agent:b", "BBBB",
					 NULL),
		     0);
	cr_assert_eq(tether_store_attachment_latest(st, tid, "diag", &att), 0);
	cr_assert_str_eq(json_string_value(json_object_get(att, "data")),
			 "BBBB");
	cr_assert_str_eq(json_string_value(json_object_get(att, "source")),
			 "agent:b");
	json_decref(att);
	cr_assert_eq(tether_store_ticket_get(st, tid, true, &t), 0);
	cr_assert_eq(json_array_size(json_object_get(t, "attachments")), 2);
	json_decref(t);
}

/* An agent cannot grow the health table without bound with new names. */
Test(store, health_checks_per_agent_are_bounded)
{
	struct tether_store_health_change ch;
	int64_t a = enrolled_agent("chatty"), b = enrolled_agent("quiet");
	struct tether_store_result r = {
		.state = "OK", .type = "HARD", .attempt = 1,
		.max_attempts = 1, .output = "x", .ts = time(NULL),
	};
	struct tether_store_agent ag;
	char name[32];
	json_t *list;
	int i;

	for (i = 0; i < TETHER_STORE_CHECKS_MAX; i++) {
		snprintf(name, sizeof(name), "c%d", i);
		r.check = name;
		r.seq = i + 1;
		cr_assert_eq(tether_store_health_record(st, a, &r, &ch), 0,
			     "check %d", i);
	}
	r.check = "one_too_many";
	r.seq = TETHER_STORE_CHECKS_MAX + 1;
	cr_assert_eq(tether_store_health_record(st, a, &r, &ch), 0);
	cr_assert(ch.over_limit && !ch.hard_change);
	/* Only its seq was kept: resent, it is a duplicate. */
	cr_assert_eq(tether_store_agent_get(st, "chatty", &ag), 0);
	cr_assert_eq(ag.last_seq, TETHER_STORE_CHECKS_MAX + 1);
	cr_assert_eq(tether_store_health_record(st, a, &r, &ch), 0);
	cr_assert(ch.duplicate);
	/* Known checks go on; other agents are not affected. */
	r.check = "c0";
	r.seq = TETHER_STORE_CHECKS_MAX + 2;
	cr_assert_eq(tether_store_health_record(st, a, &r, &ch), 0);
	cr_assert(!ch.over_limit && !ch.duplicate);
	r.check = "one_too_many";
	r.seq = 1;
	cr_assert_eq(tether_store_health_record(st, b, &r, &ch), 0);
	cr_assert_eq(tether_store_health_list(st, "chatty", &list), 0);
	cr_assert_eq(json_array_size(list), TETHER_STORE_CHECKS_MAX);
	json_decref(list);
}

Test(store, diag_wanted_only_for_the_checks_own_ticket)
{
	struct tether_store_health_change ch;
	int64_t a = enrolled_agent("web-a"), b = enrolled_agent("web-b");
	int64_t tid = 0;

	cr_assert_eq(record(a, 1, "CRITICAL", "HARD", time(NULL), &ch), 0);
	cr_assert_eq(tether_store_ticket_new(st, "web-a: disk is CRITICAL",
					     "web-a", "health", 0, &tid),
		     0);
	cr_assert_eq(tether_store_diag_wanted(st, a, tid), 0);
	cr_assert_eq(tether_store_health_set_ticket(st, a, "disk", tid), 0);
	cr_assert_eq(tether_store_diag_wanted(st, a, tid), 1);
	cr_assert_eq(tether_store_diag_wanted(st, b, tid), 0);
	/* A technician's bundle does not answer the agent's request. */
	cr_assert_eq(tether_store_attach(st, tid, "diag", "tech:alice", "AAAA",
					 NULL),
		     0);
	cr_assert_eq(tether_store_diag_wanted(st, a, tid), 1);
	cr_assert_eq(tether_store_attach(st, tid, "diag", "agent:web-a",
					 "BBBB", NULL),
		     0);
	cr_assert_eq(tether_store_diag_wanted(st, a, tid), 0);
}
