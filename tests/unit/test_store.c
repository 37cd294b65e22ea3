/*
 * Unit tests for the relay's store (relay/relay-store.h, the SQLite
 * backend).  Each test gets a fresh database in its own mkdtemp()
 * directory; a raw sqlite3 connection stands in for an attacker or an
 * operator poking at the file behind the store's back.  Where the relay
 * decides what a stored fact means (a hard change, a wanted bundle) the
 * test asks the relay's own function over this store.
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

#include "relay-policy.h"
#include "relay.h"
#include "tether/alloc.h"
#include "tether/crypto.h"
#include "tether/err.h"

static char dir[64];
static char path[128];
static struct relay_store *st;

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
	cr_assert_eq(relay_store_open(path, &st), 0);
}

/* Closes the store and removes its files (the database, -wal, -shm). */
static void remove_db(void)
{
	static const char *const suffixes[] = {"", "-wal", "-shm"};
	char file[160];
	size_t i;

	relay_store_close(st);
	st = NULL;
	for (i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		path_with(file, sizeof(file), suffixes[i]);
		unlink(file);
	}
}

static void teardown(void)
{
	remove_db();
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

/* SPAKE2 values are bytes to the store; any will do here. */
static uint8_t pake_a[TETHER_SPAKE2_ELEM_LEN];
static uint8_t pake_b[TETHER_SPAKE2_ELEM_LEN];
static uint8_t conf_b[TETHER_SPAKE2_CONF_LEN];

static void fill_pake(void)
{
	memset(pake_a, 0xaa, sizeof(pake_a));
	memset(pake_b, 0xbb, sizeof(pake_b));
	memset(conf_b, 0xcc, sizeof(conf_b));
}

static int64_t add_tech(const char *name, enum tether_tech_role role)
{
	uint8_t h[32];
	int64_t id = 0;

	hash_of(h, (uint8_t)name[0]);
	cr_assert_eq(relay_store_tech_add(st, name, role, h, &id), 0);
	cr_assert_gt(id, 0);
	return id;
}

static int64_t add_ticket(const char *title, int64_t by)
{
	int64_t id = 0;

	cr_assert_eq(relay_store_ticket_new(st, title, "ACME",
					    TETHER_SOURCE_MANUAL, by, &id),
		     0);
	return id;
}

static int64_t add_session(int64_t ticket, const char *nameplate,
			   int64_t expires_at)
{
	int64_t id = 0;

	fill_pake();
	cr_assert_eq(relay_store_session_new(st, ticket, 1, nameplate,
					     expires_at, "{\"v\":1}", pake_a,
					     &id),
		     0);
	return id;
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

/* A stored time is about now. */
static bool is_now(int64_t t)
{
	int64_t now = (int64_t)time(NULL);

	return t > now - 60 && t <= now + 1;
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
	cr_assert_eq(
	    sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, NULL),
	    SQLITE_OK);
	cr_assert_eq(sqlite3_step(stmt), SQLITE_ROW);
	cr_assert_str_eq((const char *)sqlite3_column_text(stmt, 0), "wal");
	sqlite3_finalize(stmt);
	cr_assert_eq(
	    sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &stmt, NULL),
	    SQLITE_OK);
	cr_assert_eq(sqlite3_step(stmt), SQLITE_ROW);
	cr_assert_eq(sqlite3_column_int(stmt, 0), 2);
	sqlite3_finalize(stmt);
	sqlite3_close(db);
}

Test(store, open_tightens_existing_file)
{
	struct relay_store *again = NULL;
	struct stat sb;

	relay_store_close(st);
	st = NULL;
	cr_assert_eq(chmod(path, 0644), 0);
	cr_assert_eq(relay_store_open(path, &again), 0);
	cr_assert_eq(stat(path, &sb), 0);
	cr_assert_eq(sb.st_mode & 0777, 0600);
	st = again;
}

Test(store, open_rejects_newer_schema)
{
	struct relay_store *again = NULL;
	sqlite3 *db = raw_open();

	cr_assert_eq(raw_exec(db, "PRAGMA user_version = 99"), SQLITE_OK);
	sqlite3_close(db);
	cr_assert_eq(relay_store_open(path, &again), TETHER_ERR_DB);
	cr_assert_null(again);
}

Test(store, tech_add_get_remove)
{
	struct relay_store_tech t;
	uint8_t h[32];
	int64_t id;

	id = add_tech("alice", TETHER_TECH_ADMIN);
	cr_assert_eq(relay_store_tech_get(st, id, &t), 0);
	cr_assert_eq(t.id, id);
	cr_assert_str_eq(t.name, "alice");
	cr_assert_eq(t.role, TETHER_TECH_ADMIN);
	cr_assert(is_now(t.created_at));
	hash_of(h, 'a');
	cr_assert_arr_eq(t.token_hash, h, 32);
	memset(&t, 0x5a, sizeof(t));
	cr_assert_eq(relay_store_tech_by_name(st, "alice", &t), 0);
	cr_assert_eq(t.id, id);
	cr_assert_eq(t.role, TETHER_TECH_ADMIN);
	cr_assert_eq(relay_store_tech_by_name(st, "alicia", &t),
		     TETHER_ERR_NOT_FOUND);
	cr_assert_eq(t.id, 0, "a failed lookup leaves nothing behind");

	cr_assert_eq(relay_store_tech_remove(st, "alice"), 0);
	cr_assert_eq(relay_store_tech_get(st, id, &t), TETHER_ERR_NOT_FOUND);
	cr_assert_str_eq(t.name, "", "a failed get leaves nothing behind");
	cr_assert_eq(relay_store_tech_remove(st, "alice"),
		     TETHER_ERR_NOT_FOUND);
	cr_assert_eq(relay_store_tech_remove(st, "nobody"),
		     TETHER_ERR_NOT_FOUND);
}

Test(store, tech_duplicate_name_exists_until_removed)
{
	uint8_t h[32];
	int64_t first;
	int64_t second;

	hash_of(h, 7);
	first = add_tech("bob", TETHER_TECH_TECHNICIAN);
	cr_assert_eq(
	    relay_store_tech_add(st, "bob", TETHER_TECH_ADMIN, h, NULL),
	    TETHER_ERR_EXISTS);
	cr_assert_eq(relay_store_tech_remove(st, "bob"), 0);
	second = add_tech("bob", TETHER_TECH_TECHNICIAN);
	/* A stale id must never name the new technician. */
	cr_assert_neq(first, second);
}

Test(store, tech_add_rejects_bad_input)
{
	char longname[80];
	uint8_t h[32] = {0};

	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	cr_assert_eq(
	    relay_store_tech_add(st, "eve", (enum tether_tech_role)7, h, NULL),
	    TETHER_ERR_INVALID);
	cr_assert_eq(relay_store_tech_add(st, "", TETHER_TECH_ADMIN, h, NULL),
		     TETHER_ERR_INVALID);
	cr_assert_eq(
	    relay_store_tech_add(st, longname, TETHER_TECH_ADMIN, h, NULL),
	    TETHER_ERR_INVALID);
	cr_assert_eq(
	    relay_store_tech_add(st, "a b", TETHER_TECH_ADMIN, h, NULL),
	    TETHER_ERR_INVALID, "names are names everywhere");
	cr_assert_eq(
	    relay_store_tech_add(st, "eve", TETHER_TECH_ADMIN, NULL, NULL),
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
	cr_assert_eq(
	    relay_store_tech_add(st, "carol", TETHER_TECH_TECHNICIAN, h, NULL),
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

/*
 * A login token registers one key and is spent by it; a new token (the
 * admin's technician token NAME) lets the next login replace the key;
 * removing the technician takes the key with it.
 */
/* A login token past its time registers no key; a new one does. */
Test(store, expired_login_token_registers_nothing)
{
	uint8_t tok1[32], tok2[32], key[32];
	struct relay_store_tech t;
	int64_t id;

	hash_of(tok1, 1);
	hash_of(tok2, 2);
	memset(key, 0x33, sizeof(key));
	cr_assert_eq(
	    relay_store_tech_add(st, "dave", TETHER_TECH_TECHNICIAN, tok1, &id),
	    0);
	cr_assert_eq(relay_store_tech_get(st, id, &t), 0);
	cr_assert_eq(t.token_expires_at, 0, "no expiry unless set");
	cr_assert_eq(relay_store_tech_token_expires(st, id, 1000), 0);
	cr_assert_eq(relay_store_tech_get(st, id, &t), 0);
	cr_assert_eq(t.token_expires_at, 1000);
	cr_assert_eq(relay_store_tech_register_key(st, id, tok1, key),
		     TETHER_ERR_EXPIRED, "an expired token registers nothing");
	cr_assert_eq(relay_store_tech_get(st, id, &t), 0);
	cr_assert_not(t.has_key);
	cr_assert_eq(relay_store_tech_set_token(st, "dave", tok2, NULL), 0);
	cr_assert_eq(relay_store_tech_token_expires(st, id, INT64_MAX / 2), 0);
	cr_assert_eq(relay_store_tech_register_key(st, id, tok2, key), 0);
	cr_assert_eq(relay_store_tech_token_expires(st, id, 0),
		     TETHER_ERR_INVALID);
	cr_assert_eq(relay_store_tech_token_expires(st, 9999, 1000),
		     TETHER_ERR_NOT_FOUND);
}

Test(store, tech_key_registration_spends_the_token)
{
	uint8_t tok1[32], tok2[32], key1[32], key2[32];
	struct relay_store_tech t;
	int64_t id, id2 = 0;

	hash_of(tok1, 1);
	hash_of(tok2, 2);
	memset(key1, 0x11, sizeof(key1));
	memset(key2, 0x22, sizeof(key2));
	cr_assert_eq(relay_store_tech_add(st, "carol", TETHER_TECH_TECHNICIAN,
					  tok1, &id),
		     0);
	cr_assert_eq(relay_store_tech_get(st, id, &t), 0);
	cr_assert_not(t.has_key);
	cr_assert_not(t.token_spent);

	/* Only the technician's own token, once. */
	cr_assert_eq(relay_store_tech_register_key(st, id, tok2, key1),
		     TETHER_ERR_EXPIRED);
	cr_assert_eq(relay_store_tech_register_key(st, id, tok1, key1), 0);
	cr_assert_eq(relay_store_tech_by_name(st, "carol", &t), 0);
	cr_assert(t.has_key);
	cr_assert(t.token_spent);
	cr_assert_arr_eq(t.pubkey, key1, 32);
	cr_assert_arr_eq(t.token_hash, tok1, 32);
	cr_assert_eq(relay_store_tech_register_key(st, id, tok1, key2),
		     TETHER_ERR_EXPIRED, "a spent token registers nothing");
	cr_assert_eq(relay_store_tech_get(st, id, &t), 0);
	cr_assert_arr_eq(t.pubkey, key1, 32, "the key stays");

	/* A new token: unspent, the old key still registered until used. */
	cr_assert_eq(relay_store_tech_set_token(st, "carol", tok2, &id2), 0);
	cr_assert_eq(id2, id);
	cr_assert_eq(relay_store_tech_get(st, id, &t), 0);
	cr_assert_not(t.token_spent);
	cr_assert(t.has_key);
	cr_assert_arr_eq(t.pubkey, key1, 32);
	cr_assert_eq(relay_store_tech_register_key(st, id, tok1, key2),
		     TETHER_ERR_EXPIRED, "the old token is gone");
	cr_assert_eq(relay_store_tech_register_key(st, id, tok2, key2), 0);
	cr_assert_eq(relay_store_tech_get(st, id, &t), 0);
	cr_assert(t.token_spent);
	cr_assert_arr_eq(t.pubkey, key2, 32, "the new login replaced it");
	cr_assert_eq(relay_store_tech_set_token(st, "nobody", tok1, NULL),
		     TETHER_ERR_NOT_FOUND);

	/* The key goes with the technician; a new one of that name has none. */
	cr_assert_eq(relay_store_tech_remove(st, "carol"), 0);
	cr_assert_eq(relay_store_tech_register_key(st, id, tok2, key2),
		     TETHER_ERR_EXPIRED);
	cr_assert_eq(relay_store_tech_add(st, "carol", TETHER_TECH_TECHNICIAN,
					  tok1, &id2),
		     0);
	cr_assert_eq(relay_store_tech_get(st, id2, &t), 0);
	cr_assert_not(t.has_key);
}

Test(store, tech_list)
{
	static const uint8_t zero[32];
	struct relay_store_tech *v = NULL;
	size_t n = 0;

	add_tech("alice", TETHER_TECH_ADMIN);
	add_tech("bob", TETHER_TECH_TECHNICIAN);
	cr_assert_eq(relay_store_tech_list(st, &v, &n), 0);
	cr_assert_eq(n, 2);
	cr_assert_str_eq(v[1].name, "bob");
	cr_assert_eq(v[1].role, TETHER_TECH_TECHNICIAN);
	cr_assert_gt(v[1].id, v[0].id);
	cr_assert(is_now(v[1].created_at));
	cr_assert_arr_eq(v[1].token_hash, zero, 32, "lists carry no hashes");
	relay_store_techs_free(v, n);
}

Test(store, ticket_new_get)
{
	int64_t alice = add_tech("alice", TETHER_TECH_ADMIN);
	int64_t id = add_ticket("Printer on fire", alice);
	struct relay_store_ticket t;

	cr_assert_eq(id, 1);
	cr_assert_eq(relay_store_ticket_get(st, id, &t), 0);
	cr_assert_eq(t.id, 1);
	cr_assert_str_eq(t.title, "Printer on fire");
	cr_assert_str_eq(t.customer, "ACME");
	cr_assert_eq(t.status, TETHER_TICKET_OPEN);
	cr_assert_eq(t.source, TETHER_SOURCE_MANUAL);
	cr_assert_str_eq(t.created_by, "alice");
	cr_assert(is_now(t.created_at));
	cr_assert_eq(t.closed_at, 0);
	cr_assert_null(t.resolution);
	relay_store_ticket_clear(&t);

	cr_assert_eq(relay_store_ticket_get(st, 99, &t), TETHER_ERR_NOT_FOUND);
	cr_assert_null(t.title);
}

Test(store, ticket_created_by_unknown_is_null)
{
	int64_t a = add_ticket("no creator", 0);
	int64_t b = add_ticket("ghost creator", 4242);
	struct relay_store_ticket t;

	cr_assert_eq(relay_store_ticket_get(st, a, &t), 0);
	cr_assert_null(t.created_by);
	relay_store_ticket_clear(&t);
	cr_assert_eq(relay_store_ticket_get(st, b, &t), 0);
	cr_assert_null(t.created_by);
	relay_store_ticket_clear(&t);
}

/* The store keeps Unix seconds; the relay words them through ctrl. */
Test(store, ticket_time_is_iso_utc)
{
	int64_t id = add_ticket("when", 0);
	char when[TETHER_CTRL_TIME_LEN];
	struct relay_store_ticket t;
	sqlite3 *db = raw_open();

	/* 2026-11-23T10:00:00Z */
	cr_assert_eq(raw_exec(db, "UPDATE tickets SET created_at = 1795428000"),
		     SQLITE_OK);
	sqlite3_close(db);
	cr_assert_eq(relay_store_ticket_get(st, id, &t), 0);
	cr_assert_eq(t.created_at, 1795428000);
	cr_assert_eq(tether_ctrl_time_format(t.created_at, when), 0);
	cr_assert_str_eq(when, "2026-11-23T10:00:00Z");
	relay_store_ticket_clear(&t);
}

Test(store, ticket_rejects_bad_source)
{
	int64_t id = 0;

	cr_assert_eq(relay_store_ticket_new(
			 st, "x", NULL, (enum tether_ticket_source)2, 0, &id),
		     TETHER_ERR_INVALID);
	cr_assert_eq(relay_store_ticket_new(st, NULL, NULL,
					    TETHER_SOURCE_MANUAL, 0, &id),
		     TETHER_ERR_INVALID);
}

Test(store, ticket_list_by_status)
{
	struct relay_store_ticket_filter open = {.has_status = true,
						 .status = TETHER_TICKET_OPEN};
	struct relay_store_ticket_filter closed = {
	    .has_status = true, .status = TETHER_TICKET_CLOSED};
	struct relay_store_ticket_filter bogus = {
	    .has_status = true, .status = (enum tether_ticket_status)5};
	struct relay_store_ticket *v = NULL;
	size_t n = 0;

	add_ticket("one", 0);
	add_ticket("two", 0);
	add_ticket("three", 0);
	cr_assert_eq(relay_store_ticket_close(st, 2, "fixed"), 0);

	cr_assert_eq(relay_store_ticket_list(st, NULL, &v, &n, NULL), 0);
	cr_assert_eq(n, 3);
	/* newest first */
	cr_assert_eq(v[0].id, 3);
	cr_assert_eq(v[2].id, 1);
	relay_store_tickets_free(v, n);

	cr_assert_eq(relay_store_ticket_list(st, &open, &v, &n, NULL), 0);
	cr_assert_eq(n, 2);
	cr_assert_eq(v[0].id, 3);
	cr_assert_eq(v[1].id, 1);
	relay_store_tickets_free(v, n);

	cr_assert_eq(relay_store_ticket_list(st, &closed, &v, &n, NULL), 0);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(v[0].title, "two");
	relay_store_tickets_free(v, n);

	cr_assert_eq(relay_store_ticket_list(st, &bogus, &v, &n, NULL),
		     TETHER_ERR_INVALID);
	cr_assert_null(v);
	cr_assert_eq(n, 0);
}

Test(store, ticket_close)
{
	int64_t id = add_ticket("close me", 0);
	struct relay_store_ticket t;

	cr_assert_eq(relay_store_ticket_close(st, id, "rebooted"), 0);
	cr_assert_eq(relay_store_ticket_close(st, id, "again"),
		     TETHER_ERR_STATE);
	cr_assert_eq(relay_store_ticket_close(st, 77, "x"),
		     TETHER_ERR_NOT_FOUND);

	cr_assert_eq(relay_store_ticket_get(st, id, &t), 0);
	cr_assert_eq(t.status, TETHER_TICKET_CLOSED);
	cr_assert_str_eq(t.resolution, "rebooted");
	cr_assert(is_now(t.closed_at));
	cr_assert_str_eq(t.title, "close me");
	relay_store_ticket_clear(&t);
}

Test(store, ticket_reopen_clears_closing)
{
	int64_t id = add_ticket("reopen me", 0);
	struct relay_store_ticket t;

	cr_assert_eq(relay_store_ticket_reopen(st, id), TETHER_ERR_STATE,
		     "an open ticket is not reopened");
	cr_assert_eq(relay_store_ticket_reopen(st, 77), TETHER_ERR_NOT_FOUND);
	cr_assert_eq(relay_store_ticket_close(st, id, "rebooted"), 0);
	cr_assert_eq(relay_store_ticket_reopen(st, id), 0);
	cr_assert_eq(relay_store_ticket_get(st, id, &t), 0);
	cr_assert_eq(t.status, TETHER_TICKET_OPEN);
	cr_assert_null(t.resolution);
	cr_assert_eq(t.closed_at, 0);
	relay_store_ticket_clear(&t);
	cr_assert_eq(relay_store_ticket_close(st, id, "again"), 0,
		     "a reopened ticket closes again");
}

/* The tickets a filter lets through, as "3,1" (newest first); *more. */
static void list_ids(const struct relay_store_ticket_filter *f, char *buf,
		     size_t len, int64_t *more)
{
	struct relay_store_ticket *v = NULL;
	size_t n = 0, i, k = 0;

	cr_assert_eq(relay_store_ticket_list(st, f, &v, &n, more), 0);
	buf[0] = '\0';
	for (i = 0; i < n; i++)
		k += (size_t)snprintf(buf + k, len - k, "%s%lld",
				      i > 0 ? "," : "", (long long)v[i].id);
	relay_store_tickets_free(v, n);
}

static int64_t add_ticket_for(const char *title, const char *customer,
			      enum tether_ticket_source source)
{
	int64_t id = 0;

	cr_assert_eq(
	    relay_store_ticket_new(st, title, customer, source, 0, &id), 0);
	return id;
}

Test(store, ticket_list_filters_in_sql)
{
	struct relay_store_ticket_filter f = {0};
	char ids[256];
	int64_t more = -1;

	add_ticket_for("Printer jams", "ACME / Jo", TETHER_SOURCE_MANUAL);
	add_ticket_for("disk 90% full", "Globex", TETHER_SOURCE_HEALTH);
	add_ticket_for("VPN_down", NULL, TETHER_SOURCE_MANUAL);
	add_ticket_for("printer driver", "acme / Bo", TETHER_SOURCE_MANUAL);
	add_ticket_for("disk 90x full", "Initech", TETHER_SOURCE_HEALTH);
	cr_assert_eq(relay_store_ticket_close(st, 4, "fixed"), 0);

	list_ids(NULL, ids, sizeof(ids), &more);
	cr_assert_str_eq(ids, "5,4,3,2,1");
	cr_assert_eq(more, 0);

	f.has_status = true;
	f.status = TETHER_TICKET_CLOSED;
	list_ids(&f, ids, sizeof(ids), &more);
	cr_assert_str_eq(ids, "4");
	f.status = TETHER_TICKET_OPEN;
	list_ids(&f, ids, sizeof(ids), &more);
	cr_assert_str_eq(ids, "5,3,2,1");

	memset(&f, 0, sizeof(f));
	f.has_source = true;
	f.source = TETHER_SOURCE_HEALTH;
	list_ids(&f, ids, sizeof(ids), &more);
	cr_assert_str_eq(ids, "5,2");

	memset(&f, 0, sizeof(f));
	f.customer = "ACME";
	list_ids(&f, ids, sizeof(ids), &more);
	cr_assert_str_eq(ids, "4,1", "customer: a substring, any case");

	memset(&f, 0, sizeof(f));
	f.search = "PRINTER";
	list_ids(&f, ids, sizeof(ids), &more);
	cr_assert_str_eq(ids, "4,1", "search: the title, any case");
	f.search = "globex";
	list_ids(&f, ids, sizeof(ids), &more);
	cr_assert_str_eq(ids, "2", "search: the customer too");
	f.search = "90%";
	list_ids(&f, ids, sizeof(ids), &more);
	cr_assert_str_eq(ids, "2", "%% is a percent sign, not a wildcard");
	f.search = "N_d";
	list_ids(&f, ids, sizeof(ids), &more);
	cr_assert_str_eq(ids, "3", "_ is an underscore, not any character");
	f.search = "\\";
	list_ids(&f, ids, sizeof(ids), &more);
	cr_assert_str_eq(ids, "", "a backslash matches only itself");

	/* Filters combine, and the count of the rest keeps to them. */
	memset(&f, 0, sizeof(f));
	f.has_status = true;
	f.status = TETHER_TICKET_OPEN;
	f.search = "i";
	f.limit = 2;
	list_ids(&f, ids, sizeof(ids), &more);
	cr_assert_str_eq(ids, "5,2", "3 has no i, 4 is closed");
	cr_assert_eq(more, 1, "1 (Printer) is left");
	f.before = 2;
	list_ids(&f, ids, sizeof(ids), &more);
	cr_assert_str_eq(ids, "1");
	cr_assert_eq(more, 0);

	f.has_source = true;
	f.source = (enum tether_ticket_source)9;
	cr_assert_eq(relay_store_ticket_list(
			 st, &f, &(struct relay_store_ticket *){NULL},
			 &(size_t){0}, NULL),
		     TETHER_ERR_INVALID);
}

Test(store, comments_newest_kept_oldest_first)
{
	struct relay_store_comment *v = NULL;
	int64_t t = add_ticket("noted", 0), id = 0, more = -1;
	size_t n = 0;

	cr_assert_eq(relay_store_comment_add(st, 99, "alice", "x", &id),
		     TETHER_ERR_NOT_FOUND);
	cr_assert_eq(relay_store_comment_add(st, t, "alice", "", &id),
		     TETHER_ERR_INVALID);
	cr_assert_eq(relay_store_comment_add(st, t, "alice", "one", &id), 0);
	cr_assert_eq(id, 1);
	cr_assert_eq(relay_store_comment_add(st, t, "bob", "two", NULL), 0);
	cr_assert_eq(relay_store_comment_add(st, t, "alice", "three", NULL), 0);

	cr_assert_eq(relay_store_ticket_comments(st, t, 0, &v, &n, &more), 0);
	cr_assert_eq(n, 3);
	cr_assert_eq(more, 0);
	cr_assert_str_eq(v[0].text, "one");
	cr_assert_str_eq(v[1].author, "bob");
	cr_assert(is_now(v[2].created_at));
	relay_store_comments_free(v, n);

	cr_assert_eq(relay_store_ticket_comments(st, t, 2, &v, &n, &more), 0);
	cr_assert_eq(n, 2);
	cr_assert_eq(more, 1);
	cr_assert_str_eq(v[0].text, "two");
	cr_assert_str_eq(v[1].text, "three");
	relay_store_comments_free(v, n);
}

/* The ids of an audit page, as "4,5,6"; *more. */
static void page_ids(int64_t ticket, int64_t before, int64_t after,
		     size_t limit, char *buf, size_t len, int64_t *more)
{
	const struct relay_store_audit_page pg = {before, after, limit};
	struct relay_store_audit *v = NULL;
	size_t n = 0, i, k = 0;

	cr_assert_eq(
	    relay_store_ticket_audit_page(st, ticket, &pg, &v, &n, more), 0);
	buf[0] = '\0';
	for (i = 0; i < n; i++)
		k += (size_t)snprintf(buf + k, len - k, "%s%lld",
				      i > 0 ? "," : "", (long long)v[i].id);
	relay_store_audits_free(v, n);
}

Test(store, audit_pages_by_row_id)
{
	const struct relay_store_audit_page both = {3, 2, 5}, none = {0, 0, 0};
	int64_t a = add_ticket("a", 0), b = add_ticket("b", 0), more = -1;
	struct relay_store_audit *v = NULL;
	char ids[256];
	size_t n = 0;
	int i;

	/* Rows 1..10 alternate between the two tickets: a has the odd. */
	for (i = 1; i <= 10; i++)
		cr_assert_eq(relay_store_audit(st, "alice", i % 2 ? a : b, 0,
					       "step", NULL),
			     0);
	page_ids(a, 0, 0, 2, ids, sizeof(ids), &more);
	cr_assert_str_eq(ids, "7,9", "the newest, oldest first");
	cr_assert_eq(more, 3);
	page_ids(a, 7, 0, 2, ids, sizeof(ids), &more);
	cr_assert_str_eq(ids, "3,5");
	cr_assert_eq(more, 1);
	page_ids(a, 3, 0, 2, ids, sizeof(ids), &more);
	cr_assert_str_eq(ids, "1");
	cr_assert_eq(more, 0);
	page_ids(a, 1, 0, 2, ids, sizeof(ids), &more);
	cr_assert_str_eq(ids, "");
	cr_assert_eq(more, 0);

	page_ids(b, 0, 0, 50, ids, sizeof(ids), &more);
	cr_assert_str_eq(ids, "2,4,6,8,10");
	cr_assert_eq(more, 0);
	page_ids(b, 0, 2, 3, ids, sizeof(ids), &more);
	cr_assert_str_eq(ids, "4,6,8", "after: the oldest above the row");
	cr_assert_eq(more, 1, "and how many newer are left");
	page_ids(b, 0, 8, 3, ids, sizeof(ids), &more);
	cr_assert_str_eq(ids, "10");
	cr_assert_eq(more, 0);

	cr_assert_eq(relay_store_ticket_audit_page(st, a, &both, &v, &n, NULL),
		     TETHER_ERR_INVALID);
	cr_assert_eq(relay_store_ticket_audit_page(st, a, &none, &v, &n, NULL),
		     TETHER_ERR_INVALID);
	cr_assert_null(v);
}

/* What the relay reads to check a ticket a request names. */
Test(store, ticket_brief)
{
	int64_t id = add_ticket("a fairly long title", 0);
	struct relay_store_ticket t;

	cr_assert_eq(relay_store_ticket_get(st, id, &t), 0);
	cr_assert_eq(t.status, TETHER_TICKET_OPEN);
	cr_assert_str_eq(t.title, "a fairly long title");
	relay_store_ticket_clear(&t);
	cr_assert_null(t.title, "clear leaves nothing to free twice");
	relay_store_ticket_clear(&t);
	relay_store_ticket_clear(NULL);
	cr_assert_eq(relay_store_ticket_get(st, 5, &t), TETHER_ERR_NOT_FOUND);
}

Test(store, session_new_get)
{
	int64_t t = add_ticket("s", 0);
	int64_t exp = (int64_t)time(NULL) + 600;
	int64_t id = add_session(t, "42", exp);
	struct relay_store_session s;

	cr_assert_eq(relay_store_session_get(st, id, &s), 0);
	cr_assert_eq(s.id, id);
	cr_assert_eq(s.ticket_id, t);
	cr_assert_eq(s.technician_id, 1);
	cr_assert_str_eq(s.nameplate, "42");
	cr_assert_eq(s.state, TETHER_SESSION_WAITING);
	cr_assert_eq(s.expires_at, exp);
	cr_assert_gt(s.created_at, 0);
	cr_assert_str_eq(s.info, "{\"v\":1}");
	cr_assert(s.has_pake_a);
	cr_assert_arr_eq(s.pake_a, pake_a, sizeof(pake_a));
	cr_assert_not(s.has_pake_b);
	cr_assert_null(s.agent_facts);
	cr_assert_not(s.has_resume);
	relay_store_session_clear(&s);

	cr_assert_eq(relay_store_session_get(st, 999, &s),
		     TETHER_ERR_NOT_FOUND);
}

Test(store, session_new_needs_ticket_and_free_nameplate)
{
	int64_t t = add_ticket("s", 0);
	int64_t exp = (int64_t)time(NULL) + 600;

	cr_assert_eq(
	    relay_store_session_new(st, 55, 1, "7", exp, NULL, NULL, NULL),
	    TETHER_ERR_NOT_FOUND);
	add_session(t, "7", exp);
	cr_assert_eq(
	    relay_store_session_new(st, t, 1, "7", exp, NULL, NULL, NULL),
	    TETHER_ERR_EXISTS);
	cr_assert_eq(relay_store_session_new(st, t, 1, "1234567890123456", exp,
					     NULL, NULL, NULL),
		     TETHER_ERR_INVALID);
	cr_assert_eq(
	    relay_store_session_new(st, t, 1, "07", exp, NULL, NULL, NULL),
	    TETHER_ERR_INVALID);
}

Test(store, session_by_nameplate_newest)
{
	int64_t t = add_ticket("s", 0);
	int64_t exp = (int64_t)time(NULL) + 600;
	int64_t old = add_session(t, "9", exp);
	int64_t young;
	struct relay_store_session s;

	cr_assert_eq(
	    relay_store_session_set_state(st, old, TETHER_SESSION_ENDED), 0);
	young = add_session(t, "9", exp);
	cr_assert_eq(relay_store_session_by_nameplate(st, "9", &s), 0);
	cr_assert_eq(s.id, young);
	relay_store_session_clear(&s);
	cr_assert_eq(
	    relay_store_session_set_state(st, young, TETHER_SESSION_BURNED), 0);
	/* whatever its state */
	cr_assert_eq(relay_store_session_by_nameplate(st, "9", &s), 0);
	cr_assert_eq(s.id, young);
	cr_assert_eq(s.state, TETHER_SESSION_BURNED);
	relay_store_session_clear(&s);
	cr_assert_eq(relay_store_session_by_nameplate(st, "10", &s),
		     TETHER_ERR_NOT_FOUND);
}

Test(store, session_live_for_ticket)
{
	int64_t t = add_ticket("s", 0);
	int64_t other = add_ticket("o", 0);
	int64_t exp = (int64_t)time(NULL) + 600;
	int64_t a = add_session(t, "11", exp);
	int64_t b = add_session(t, "12", exp);
	struct relay_store_session s;

	add_session(other, "13", exp);
	cr_assert_eq(relay_store_session_live_for_ticket(st, t, &s), 0);
	cr_assert_eq(s.id, b);
	relay_store_session_clear(&s);
	cr_assert_eq(
	    relay_store_session_set_state(st, b, TETHER_SESSION_DECLINED), 0);
	cr_assert_eq(relay_store_session_live_for_ticket(st, t, &s), 0);
	cr_assert_eq(s.id, a);
	relay_store_session_clear(&s);
	cr_assert_eq(relay_store_session_set_state(st, a, TETHER_SESSION_ENDED),
		     0);
	cr_assert_eq(relay_store_session_live_for_ticket(st, t, &s),
		     TETHER_ERR_NOT_FOUND);
	/* The newest whatever its state: what attach words its refusal by. */
	cr_assert_eq(relay_store_session_latest_for_ticket(st, t, &s), 0);
	cr_assert_eq(s.id, b);
	cr_assert_eq(s.state, TETHER_SESSION_DECLINED);
	relay_store_session_clear(&s);
	cr_assert_eq(relay_store_session_latest_for_ticket(st, 404, &s),
		     TETHER_ERR_NOT_FOUND);
}

Test(store, session_join_once)
{
	int64_t t = add_ticket("s", 0);
	int64_t id = add_session(t, "21", (int64_t)time(NULL) + 600);
	struct relay_store_session s;
	uint8_t rh[32];

	hash_of(rh, 0x90);
	cr_assert_eq(relay_store_session_join(st, id, "{\"os\":\"linux\"}",
					      pake_b, conf_b, rh),
		     0);
	cr_assert_eq(relay_store_session_join(st, id, "{}", pake_b, conf_b, rh),
		     TETHER_ERR_STATE);
	cr_assert_eq(
	    relay_store_session_join(st, 404, "{}", pake_b, conf_b, rh),
	    TETHER_ERR_NOT_FOUND);

	cr_assert_eq(relay_store_session_get(st, id, &s), 0);
	cr_assert_eq(s.state, TETHER_SESSION_JOINED);
	cr_assert_str_eq(s.agent_facts, "{\"os\":\"linux\"}");
	cr_assert(s.has_pake_b);
	cr_assert_arr_eq(s.pake_b, pake_b, sizeof(pake_b));
	cr_assert_arr_eq(s.conf_b, conf_b, sizeof(conf_b));
	cr_assert(s.has_resume);
	cr_assert_arr_eq(s.resume_hash, rh, 32);
	relay_store_session_clear(&s);
}

Test(store, session_join_refuses_expired)
{
	int64_t t = add_ticket("s", 0);
	int64_t id = add_session(t, "22", (int64_t)time(NULL) - 1);

	cr_assert_eq(
	    relay_store_session_join(st, id, NULL, pake_b, conf_b, NULL),
	    TETHER_ERR_EXPIRED);
}

Test(store, session_set_state)
{
	int64_t t = add_ticket("s", 0);
	int64_t id = add_session(t, "31", (int64_t)time(NULL) + 600);
	struct relay_store_session s;

	cr_assert_eq(
	    relay_store_session_set_state(st, id, TETHER_SESSION_PAIRED), 0);
	cr_assert_eq(relay_store_session_get(st, id, &s), 0);
	cr_assert_eq(s.state, TETHER_SESSION_PAIRED);
	relay_store_session_clear(&s);
	cr_assert_eq(relay_store_session_set_state(
			 st, id, (enum tether_session_state)42),
		     TETHER_ERR_INVALID);
	cr_assert_eq(
	    relay_store_session_set_state(st, 321, TETHER_SESSION_ENDED),
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
	struct relay_store_session s, *v = NULL;
	size_t n = 9;

	cr_assert_eq(
	    relay_store_session_join(st, joined, NULL, pake_b, conf_b, NULL),
	    0);
	cr_assert_eq(relay_store_session_expire(st, now + 5, &v, &n), 0);
	cr_assert_eq(n, 2);
	/* What expired comes back, for its audit rows. */
	cr_assert(v[0].id == due || v[1].id == due);
	cr_assert(v[0].id == edge || v[1].id == edge);
	cr_assert_eq(v[0].ticket_id, t);
	cr_assert_eq(v[0].state, TETHER_SESSION_EXPIRED);
	cr_assert(strcmp(v[0].nameplate, "41") == 0 ||
		  strcmp(v[0].nameplate, "42") == 0);
	relay_store_sessions_free(v, n);
	cr_assert_eq(relay_store_session_get(st, due, &s), 0);
	cr_assert_eq(s.state, TETHER_SESSION_EXPIRED);
	relay_store_session_clear(&s);
	cr_assert_eq(relay_store_session_get(st, edge, &s), 0);
	cr_assert_eq(s.state, TETHER_SESSION_EXPIRED);
	relay_store_session_clear(&s);
	cr_assert_eq(relay_store_session_get(st, later, &s), 0);
	cr_assert_eq(s.state, TETHER_SESSION_WAITING);
	relay_store_session_clear(&s);
	cr_assert_eq(relay_store_session_get(st, joined, &s), 0);
	cr_assert_eq(s.state, TETHER_SESSION_JOINED);
	relay_store_session_clear(&s);
	cr_assert_eq(relay_store_session_expire(st, now + 5, &v, &n), 0);
	cr_assert_eq(n, 0, "expired once only");
	cr_assert_null(v);
}

Test(store, nameplate_in_use)
{
	int64_t t = add_ticket("s", 0);
	int64_t id = add_session(t, "51", (int64_t)time(NULL) + 600);

	cr_assert(relay_store_nameplate_in_use(st, "51"));
	cr_assert_not(relay_store_nameplate_in_use(st, "52"));
	cr_assert_eq(
	    relay_store_session_join(st, id, NULL, pake_b, conf_b, NULL), 0);
	cr_assert(relay_store_nameplate_in_use(st, "51"));
	cr_assert_eq(
	    relay_store_session_set_state(st, id, TETHER_SESSION_PAIRED), 0);
	cr_assert(relay_store_nameplate_in_use(st, "51"));
	cr_assert_eq(
	    relay_store_session_set_state(st, id, TETHER_SESSION_ENDED), 0);
	cr_assert_not(relay_store_nameplate_in_use(st, "51"));
}

/*
 * Live nameplates count, ended ones do not, and a burned one only while
 * it is younger than what the caller keeps burned ones out of use for.
 */
Test(store, nameplates_held)
{
	int64_t t = add_ticket("s", 0);
	int64_t now = (int64_t)time(NULL);
	int64_t waiting = add_session(t, "71", now + 600);
	int64_t joined = add_session(t, "72", now + 600);
	int64_t paired = add_session(t, "73", now + 600);
	int64_t ended = add_session(t, "74", now + 600);
	int64_t burned = add_session(t, "75", now + 600);
	int64_t old = add_session(t, "76", now + 600);
	sqlite3 *db;
	int64_t n = -1;

	(void)waiting;
	cr_assert_eq(
	    relay_store_session_join(st, joined, NULL, pake_b, conf_b, NULL),
	    0);
	cr_assert_eq(
	    relay_store_session_set_state(st, paired, TETHER_SESSION_PAIRED),
	    0);
	cr_assert_eq(
	    relay_store_session_set_state(st, ended, TETHER_SESSION_ENDED), 0);
	cr_assert_eq(
	    relay_store_session_set_state(st, burned, TETHER_SESSION_BURNED),
	    0);
	cr_assert_eq(
	    relay_store_session_set_state(st, old, TETHER_SESSION_BURNED), 0);
	db = raw_open();
	cr_assert_eq(raw_exec(db, "UPDATE sessions SET created_at ="
				  " created_at - 7200 WHERE nameplate = '76'"),
		     SQLITE_OK);
	sqlite3_close(db);

	cr_assert_eq(relay_store_nameplates_held(st, now - 3600, &n), 0);
	cr_assert_eq(n, 4, "waiting, joined, paired and the young burned: %lld",
		     (long long)n);
	cr_assert_eq(relay_store_nameplates_held(st, now - 10000, &n), 0);
	cr_assert_eq(n, 5, "both burned: %lld", (long long)n);
	cr_assert_eq(relay_store_nameplates_held(st, now + 10, &n), 0);
	cr_assert_eq(n, 3, "no burned one: %lld", (long long)n);
	cr_assert_eq(relay_store_nameplates_held(st, now, NULL),
		     TETHER_ERR_INVALID);
}

Test(store, session_clear_frees_and_zeroes)
{
	int64_t t = add_ticket("s", 0);
	int64_t id = add_session(t, "61", (int64_t)time(NULL) + 600);
	struct relay_store_session s;
	uint8_t rh[32];

	hash_of(rh, 1);
	cr_assert_eq(
	    relay_store_session_join(st, id, "{\"a\":1}", pake_b, conf_b, rh),
	    0);
	cr_assert_eq(relay_store_session_get(st, id, &s), 0);
	/* ASan reports a leak if any string survives. */
	relay_store_session_clear(&s);
	cr_assert_null(s.info);
	cr_assert_null(s.agent_facts);
	cr_assert_not(s.has_pake_a);
	cr_assert_not(s.has_pake_b);
	cr_assert_not(s.has_resume);
	cr_assert_eq(s.resume_hash[0], 0);
	cr_assert_eq(s.pake_b[0], 0);
	relay_store_session_clear(&s);
	relay_store_session_clear(NULL);
}

Test(store, ticket_detail_sessions_and_audit)
{
	int64_t t = add_ticket("detail", 0);
	int64_t id = add_session(t, "71", (int64_t)time(NULL) + 600);
	struct relay_store_session *sess = NULL;
	struct relay_store_audit *aud = NULL;
	size_t ns = 0, na = 0;

	add_session(add_ticket("other", 0), "72", (int64_t)time(NULL) + 600);
	cr_assert_eq(relay_store_session_join(st, id, "{\"os\":\"linux\"}",
					      pake_b, conf_b, NULL),
		     0);
	cr_assert_eq(
	    relay_store_audit(st, "tech:alice", t, 0, "created", "{\"n\":1}"),
	    0);
	cr_assert_eq(relay_store_audit(st, "relay", 0, 0, "startup", NULL), 0);
	cr_assert_eq(
	    relay_store_audit(st, "agent", t, id, "joined", "not json"), 0);
	cr_assert_eq(relay_store_audit(st, "relay", t, id, "ended", NULL), 0);

	cr_assert_eq(relay_store_ticket_sessions(st, t, &sess, &ns), 0);
	cr_assert_eq(ns, 1);
	cr_assert_str_eq(sess[0].nameplate, "71");
	cr_assert_eq(sess[0].state, TETHER_SESSION_JOINED);
	cr_assert(is_now(sess[0].created_at));
	cr_assert_gt(sess[0].expires_at, sess[0].created_at);
	cr_assert_str_eq(sess[0].agent_facts, "{\"os\":\"linux\"}");
	relay_store_sessions_free(sess, ns);

	/* Details are the texts as given: the store reads none of them. */
	cr_assert_eq(relay_store_ticket_audit(st, t, &aud, &na), 0);
	cr_assert_eq(na, 3);
	cr_assert_str_eq(aud[0].event, "created");
	cr_assert_str_eq(aud[0].actor, "tech:alice");
	cr_assert(is_now(aud[0].ts));
	cr_assert_str_eq(aud[0].detail, "{\"n\":1}");
	cr_assert_str_eq(aud[1].event, "joined");
	cr_assert_str_eq(aud[1].detail, "not json");
	cr_assert_str_eq(aud[2].event, "ended");
	cr_assert_null(aud[2].detail);
	/* Each row names its session (0: none), so a session's end is found. */
	cr_assert_eq(aud[0].session_id, 0);
	cr_assert_eq(aud[1].session_id, id);
	cr_assert_eq(aud[2].session_id, id);
	relay_store_audits_free(aud, na);
}

Test(store, ticket_detail_agent_null_when_absent)
{
	int64_t t = add_ticket("detail", 0);
	struct relay_store_session *sess = NULL;
	struct relay_store_audit *aud = NULL;
	size_t ns = 0, na = 7;

	add_session(t, "81", (int64_t)time(NULL) + 600);
	cr_assert_eq(relay_store_ticket_sessions(st, t, &sess, &ns), 0);
	cr_assert_eq(ns, 1);
	cr_assert_null(sess[0].agent_facts);
	relay_store_sessions_free(sess, ns);
	cr_assert_eq(relay_store_ticket_audit(st, t, &aud, &na), 0);
	cr_assert_eq(na, 0);
	cr_assert_null(aud);
}

/* Every failing allocation in session_get/audit is reported, not leaked
 * (test_store_oom walks every store operation this way). */
Test(store, survives_allocation_failures)
{
	int64_t t = add_ticket("oom", 0);
	int64_t id = add_session(t, "91", (int64_t)time(NULL) + 600);
	struct relay_store_session s;
	unsigned long nth;
	int r;

	cr_assert_eq(
	    relay_store_session_join(st, id, "{}", pake_b, conf_b, NULL), 0);
	for (nth = 1; nth < 16; nth++) {
		tether_alloc_fail_after(nth);
		r = relay_store_session_get(st, id, &s);
		tether_alloc_fail_after(0);
		cr_assert(r == 0 || r == TETHER_ERR_NOMEM);
		if (!r)
			cr_assert_str_eq(s.agent_facts, "{}");
		else
			cr_assert_null(s.info);
		relay_store_session_clear(&s);
	}
	tether_alloc_fail_after(1);
	r = relay_store_audit(st, "relay", t, 0, "oom", NULL);
	tether_alloc_fail_after(0);
	cr_assert_eq(r, TETHER_ERR_NOMEM);
	cr_assert_eq(relay_store_audit(st, "relay", t, 0, "ok", NULL), 0);
	cr_assert_eq(relay_store_audit_verify(st), 0);
}

static void add_audit_rows(void)
{
	cr_assert_eq(relay_store_audit(st, "relay", 0, 0, "startup", NULL), 0);
	cr_assert_eq(relay_store_audit(st, "tech:alice", 1, 0, "created",
				       "{\"title\":\"x\"}"),
		     0);
	cr_assert_eq(relay_store_audit(st, "agent", 1, 2, "joined", "{}"), 0);
}

Test(store, audit_verify_passes)
{
	cr_assert_eq(relay_store_audit_verify(st), 0, "empty chain");
	add_audit_rows();
	cr_assert_eq(relay_store_audit_verify(st), 0);
	cr_assert_eq(relay_store_audit(st, NULL, 0, 0, "x", NULL),
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
	cr_assert_eq(relay_store_audit_verify(st), TETHER_ERR_CRYPTO);
}

Test(store, audit_deletion_detected)
{
	sqlite3 *db;

	add_audit_rows();
	db = raw_open();
	cr_assert_eq(raw_exec(db, "DROP TRIGGER audit_no_delete"), SQLITE_OK);
	cr_assert_eq(raw_exec(db, "DELETE FROM audit WHERE id = 2"), SQLITE_OK);
	sqlite3_close(db);
	cr_assert_eq(relay_store_audit_verify(st), TETHER_ERR_CRYPTO);
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
	cr_assert_eq(relay_store_audit_verify(st), 0);
}

Test(store, reopen_keeps_data)
{
	int64_t alice = add_tech("alice", TETHER_TECH_ADMIN);
	int64_t t = add_ticket("persist", alice);
	struct relay_store_tech tech;
	struct relay_store_ticket tk;
	struct relay_store_audit *aud = NULL;
	size_t na = 0;

	cr_assert_eq(relay_store_audit(st, "tech:alice", t, 0, "created", NULL),
		     0);
	relay_store_close(st);
	st = NULL;
	cr_assert_eq(relay_store_open(path, &st), 0);
	cr_assert_eq(relay_store_tech_get(st, alice, &tech), 0);
	cr_assert_str_eq(tech.name, "alice");
	cr_assert_eq(relay_store_ticket_get(st, t, &tk), 0);
	cr_assert_str_eq(tk.title, "persist");
	relay_store_ticket_clear(&tk);
	cr_assert_eq(relay_store_ticket_audit(st, t, &aud, &na), 0);
	cr_assert_eq(na, 1);
	relay_store_audits_free(aud, na);
	/* the chain continues across opens */
	cr_assert_eq(relay_store_audit(st, "relay", 0, 0, "restart", NULL), 0);
	cr_assert_eq(relay_store_audit_verify(st), 0);
}

/*
 * Another process's commit (tether-relay technician remove next to the
 * running relay) is seen; the store's own writes are not.
 */
Test(store, changed_elsewhere_sees_other_writers_only)
{
	struct relay_store *other = NULL;
	bool changed = false;

	cr_assert_eq(relay_store_changed_elsewhere(st, &changed), 0);
	cr_assert(changed, "the first look says changed");
	cr_assert_eq(relay_store_changed_elsewhere(st, &changed), 0);
	cr_assert_not(changed);
	add_tech("alice", TETHER_TECH_TECHNICIAN);
	cr_assert_eq(relay_store_changed_elsewhere(st, &changed), 0);
	cr_assert_not(changed, "our own write is not elsewhere");
	cr_assert_eq(relay_store_open(path, &other), 0);
	cr_assert_eq(relay_store_tech_remove(other, "alice"), 0);
	relay_store_close(other);
	cr_assert_eq(relay_store_changed_elsewhere(st, &changed), 0);
	cr_assert(changed, "another connection's remove is seen");
	cr_assert_eq(relay_store_changed_elsewhere(st, &changed), 0);
	cr_assert_not(changed);
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
	cr_assert_eq(relay_store_enroll_token_new(st, h, time(NULL) + 60), 0);
	cr_assert_eq(relay_store_agent_enroll(st, h, name, pub,
					      "{\"env\":\"prod\"}", NULL, &id,
					      &replaced),
		     0);
	cr_assert(!replaced);
	return id;
}

Test(store, enroll_token_spent_once_and_expires)
{
	uint8_t h[32], h2[32], pub[32] = {1}, pub2[32] = {2};
	struct relay_store_agent a;
	bool replaced = false;
	int64_t id = 0;

	token_hash("tte_one", h);
	cr_assert_eq(relay_store_agent_enroll(st, h, "web", pub, NULL, NULL,
					      &id, &replaced),
		     TETHER_ERR_NOT_FOUND);
	cr_assert_eq(relay_store_enroll_token_new(st, h, time(NULL) + 60), 0);
	cr_assert_eq(relay_store_agent_enroll(st, h, "web", pub, NULL, NULL,
					      &id, &replaced),
		     0);
	cr_assert_gt(id, 0);
	cr_assert_eq(relay_store_agent_enroll(st, h, "web2", pub, NULL, NULL,
					      &id, &replaced),
		     TETHER_ERR_NOT_FOUND, "a token works once");
	token_hash("tte_old", h2);
	cr_assert_eq(relay_store_enroll_token_new(st, h2, time(NULL) - 1), 0);
	cr_assert_eq(relay_store_agent_enroll(st, h2, "web2", pub, NULL, NULL,
					      &id, &replaced),
		     TETHER_ERR_EXPIRED);
	cr_assert_eq(relay_store_agent_get(st, "web2", &a),
		     TETHER_ERR_NOT_FOUND);

	/* A new token re-keys an existing name. */
	token_hash("tte_two", h2);
	cr_assert_eq(relay_store_enroll_token_new(st, h2, time(NULL) + 60), 0);
	cr_assert_eq(relay_store_agent_enroll(st, h2, "web", pub2, NULL, NULL,
					      &id, &replaced),
		     0);
	cr_assert(replaced);
	cr_assert_eq(relay_store_agent_get(st, "web", &a), 0);
	cr_assert_eq(a.id, id);
	cr_assert_eq(memcmp(a.pubkey, pub2, 32), 0);
}

/* What the relay does with a result: ask, decide, store (relay-health.c). */
static int record(int64_t agent, int64_t seq, enum tether_check_state state,
		  enum tether_check_type type, int64_t ts,
		  struct relay_store_result *res,
		  struct relay_health_decision *d)
{
	struct relay r = {.store = st};

	*res = (struct relay_store_result){
	    .seq = seq,
	    .check = "disk",
	    .state = state,
	    .type = type,
	    .attempt = 1,
	    .max_attempts = 3,
	    .output = "DISK x",
	    .perfdata = "[{\"label\":\"used\",\"value\":1}]",
	    .ts = ts,
	};
	return relay_health_store(&r, agent, TETHER_TICKET_ON_CRITICAL, res, d);
}

/* How many hard changes the store counts for the check after since. */
static int64_t hard_changes(int64_t agent, int64_t since)
{
	struct relay_store_check_prev prev;
	int64_t n;

	cr_assert_eq(relay_store_health_get(st, agent, "disk", since, &prev),
		     0);
	n = prev.hard_changes;
	relay_store_check_prev_clear(&prev);
	return n;
}

Test(store, health_hard_changes_duplicates_and_flaps)
{
	struct relay_store_result res;
	struct relay_health_decision d;
	int64_t a = enrolled_agent("db-01"), tid = 0;
	int64_t t0 = time(NULL) - 600;
	struct relay_store_agent_row *agents = NULL;
	struct relay_store_check *list = NULL;
	struct relay_store_agent ag;
	size_t n = 0;

	cr_assert_eq(
	    record(a, 1, TETHER_CHECK_OK, TETHER_CHECK_HARD, t0, &res, &d), 0);
	cr_assert(!res.hard_change && d.verdict == RELAY_HEALTH_RECORD);
	cr_assert_eq(record(a, 2, TETHER_CHECK_CRITICAL, TETHER_CHECK_SOFT,
			    t0 + 1, &res, &d),
		     0);
	cr_assert(!res.hard_change);
	cr_assert_eq(record(a, 3, TETHER_CHECK_CRITICAL, TETHER_CHECK_HARD,
			    t0 + 2, &res, &d),
		     0);
	cr_assert(res.hard_change);
	cr_assert_eq(d.prev_hard, TETHER_CHECK_OK);
	cr_assert_eq(hard_changes(a, t0 + 2 - 3600), 1);
	/* A resent result is acknowledged but changes nothing. */
	cr_assert_eq(
	    record(a, 3, TETHER_CHECK_OK, TETHER_CHECK_HARD, t0 + 3, &res, &d),
	    0);
	cr_assert_eq(d.verdict, RELAY_HEALTH_DUPLICATE);
	cr_assert_eq(relay_store_agent_get(st, "db-01", &ag), 0);
	cr_assert_eq(ag.last_seq, 3);
	/* The store refuses a stale seq on its own too. */
	res.seq = 3;
	cr_assert_eq(relay_store_health_record(st, a, &res), TETHER_ERR_EXISTS);

	/* The ticket is remembered while open. */
	cr_assert_eq(relay_store_ticket_new(st, "db-01: disk is CRITICAL",
					    "db-01", TETHER_SOURCE_HEALTH, 0,
					    &tid),
		     0);
	cr_assert_eq(relay_store_health_set_ticket(st, a, "disk", tid), 0);
	cr_assert_eq(
	    record(a, 4, TETHER_CHECK_OK, TETHER_CHECK_HARD, t0 + 4, &res, &d),
	    0);
	cr_assert(res.hard_change);
	cr_assert_eq(d.ticket_id, tid);
	cr_assert_eq(hard_changes(a, t0 + 4 - 3600), 2);
	cr_assert_eq(record(a, 5, TETHER_CHECK_CRITICAL, TETHER_CHECK_HARD,
			    t0 + 5, &res, &d),
		     0);
	cr_assert_eq(
	    record(a, 6, TETHER_CHECK_OK, TETHER_CHECK_HARD, t0 + 6, &res, &d),
	    0);
	cr_assert_eq(hard_changes(a, t0 + 6 - 3600), 4);
	cr_assert(res.flapping, "four hard changes in the hour: flapping");
	cr_assert_eq(d.action, RELAY_HEALTH_NOTE_FLAPPING);
	cr_assert_eq(relay_store_ticket_close(st, tid, "fixed"), 0);
	cr_assert_eq(record(a, 7, TETHER_CHECK_WARNING, TETHER_CHECK_HARD,
			    t0 + 7, &res, &d),
		     0);
	cr_assert_eq(d.ticket_id, 0, "a closed ticket is not reused");

	cr_assert_eq(relay_store_health_list(st, "db-01", &list, &n), 0);
	cr_assert_eq(n, 1);
	cr_assert_eq(list[0].state, TETHER_CHECK_WARNING);
	cr_assert_eq(list[0].hard_state, TETHER_CHECK_WARNING);
	cr_assert(list[0].flapping);
	cr_assert_eq(list[0].ticket_id, tid);
	cr_assert_str_eq(list[0].perfdata,
			 "[{\"label\":\"used\",\"value\":1}]");
	relay_store_checks_free(list, n);
	cr_assert_eq(relay_store_health_list(st, "nobody", &list, &n),
		     TETHER_ERR_NOT_FOUND);
	cr_assert_eq(relay_store_agent_list(st, &agents, &n), 0);
	cr_assert_eq(n, 1);
	cr_assert_eq(agents[0].checks, 1);
	cr_assert_eq(agents[0].by_state[TETHER_CHECK_WARNING], 1);
	cr_assert_eq(agents[0].by_state[TETHER_CHECK_CRITICAL], 0);
	cr_assert_str_eq(agents[0].labels, "{\"env\":\"prod\"}");
	relay_store_agent_rows_free(agents, n);
}

Test(store, attachments_newest_first)
{
	struct relay_store_attachment att, *v = NULL;
	int64_t tid = 0;
	size_t n = 0;

	cr_assert_eq(relay_store_ticket_new(st, "x", NULL, TETHER_SOURCE_MANUAL,
					    0, &tid),
		     0);
	cr_assert_eq(relay_store_attachment_latest(st, tid, "diag", &att),
		     TETHER_ERR_NOT_FOUND);
	cr_assert_eq(
	    relay_store_attach(st, tid, "diag", "tech:a", "AAAA", NULL), 0);
	cr_assert_eq(
	    relay_store_attach(st, tid, "diag", "agent:b", "BBBB", NULL), 0);
	cr_assert_eq(relay_store_attachment_latest(st, tid, "diag", &att), 0);
	cr_assert_str_eq(att.data, "BBBB");
	cr_assert_str_eq(att.source, "agent:b");
	cr_assert_eq(att.size, 4);
	cr_assert(is_now(att.created_at));
	relay_store_attachment_clear(&att);
	cr_assert_eq(relay_store_ticket_attachments(st, tid, &v, &n), 0);
	cr_assert_eq(n, 2);
	cr_assert_str_eq(v[0].source, "tech:a");
	cr_assert_null(v[0].data, "lists carry no data");
	relay_store_attachments_free(v, n);
}

/* An agent cannot grow the health table without bound with new names. */
Test(store, health_checks_per_agent_are_bounded)
{
	struct relay_health_decision d;
	int64_t a = enrolled_agent("chatty"), b = enrolled_agent("quiet");
	struct relay r = {.store = st};
	struct relay_store_result res = {
	    .state = TETHER_CHECK_OK,
	    .type = TETHER_CHECK_HARD,
	    .attempt = 1,
	    .max_attempts = 1,
	    .output = "x",
	    .ts = time(NULL),
	};
	struct relay_store_check *list = NULL;
	struct relay_store_agent ag;
	char name[32];
	size_t n = 0;
	int i;

	for (i = 0; i < RELAY_CHECKS_MAX; i++) {
		snprintf(name, sizeof(name), "c%d", i);
		res.check = name;
		res.seq = i + 1;
		cr_assert_eq(relay_health_store(
				 &r, a, TETHER_TICKET_ON_CRITICAL, &res, &d),
			     0, "check %d", i);
	}
	res.check = "one_too_many";
	res.seq = RELAY_CHECKS_MAX + 1;
	cr_assert_eq(
	    relay_health_store(&r, a, TETHER_TICKET_ON_CRITICAL, &res, &d), 0);
	cr_assert(d.verdict == RELAY_HEALTH_OVER_LIMIT && !res.hard_change);
	/* Only its seq was kept: resent, it is a duplicate. */
	cr_assert_eq(relay_store_agent_get(st, "chatty", &ag), 0);
	cr_assert_eq(ag.last_seq, RELAY_CHECKS_MAX + 1);
	cr_assert_eq(
	    relay_health_store(&r, a, TETHER_TICKET_ON_CRITICAL, &res, &d), 0);
	cr_assert_eq(d.verdict, RELAY_HEALTH_DUPLICATE);
	/* Known checks go on; other agents are not affected. */
	res.check = "c0";
	res.seq = RELAY_CHECKS_MAX + 2;
	cr_assert_eq(
	    relay_health_store(&r, a, TETHER_TICKET_ON_CRITICAL, &res, &d), 0);
	cr_assert_eq(d.verdict, RELAY_HEALTH_RECORD);
	res.check = "one_too_many";
	res.seq = 1;
	cr_assert_eq(
	    relay_health_store(&r, b, TETHER_TICKET_ON_CRITICAL, &res, &d), 0);
	cr_assert_eq(d.verdict, RELAY_HEALTH_RECORD);
	cr_assert_eq(relay_store_health_list(st, "chatty", &list, &n), 0);
	cr_assert_eq(n, RELAY_CHECKS_MAX);
	relay_store_checks_free(list, n);
}

Test(store, diag_wanted_only_for_the_checks_own_ticket)
{
	struct relay_store_result res;
	struct relay_health_decision d;
	int64_t a = enrolled_agent("web-a"), b = enrolled_agent("web-b");
	struct relay r = {.store = st};
	int64_t tid = 0;
	bool holds, wanted;

	cr_assert_eq(record(a, 1, TETHER_CHECK_CRITICAL, TETHER_CHECK_HARD,
			    time(NULL), &res, &d),
		     0);
	cr_assert_eq(d.action, RELAY_HEALTH_OPEN);
	cr_assert_eq(relay_store_ticket_new(st, "web-a: disk is CRITICAL",
					    "web-a", TETHER_SOURCE_HEALTH, 0,
					    &tid),
		     0);
	cr_assert_eq(relay_health_diag_wanted(&r, a, tid, &wanted), 0);
	cr_assert_not(wanted);
	cr_assert_eq(relay_store_health_set_ticket(st, a, "disk", tid), 0);
	cr_assert_eq(relay_store_health_holds_ticket(st, a, tid, &holds), 0);
	cr_assert(holds);
	cr_assert_eq(relay_store_health_holds_ticket(st, b, tid, &holds), 0);
	cr_assert_not(holds);
	cr_assert_eq(relay_health_diag_wanted(&r, a, tid, &wanted), 0);
	cr_assert(wanted);
	cr_assert_eq(relay_health_diag_wanted(&r, b, tid, &wanted), 0);
	cr_assert_not(wanted);
	/* A technician's bundle does not answer the agent's request. */
	cr_assert_eq(
	    relay_store_attach(st, tid, "diag", "tech:alice", "AAAA", NULL), 0);
	cr_assert_eq(relay_health_diag_wanted(&r, a, tid, &wanted), 0);
	cr_assert(wanted);
	cr_assert_eq(
	    relay_store_attach(st, tid, "diag", "agent:web-a", "BBBB", NULL),
	    0);
	cr_assert_eq(relay_health_diag_wanted(&r, a, tid, &wanted), 0);
	cr_assert_not(wanted);
}

Test(store, counts_by_state)
{
	struct relay_store_counts c;
	int64_t t = add_ticket("counted", 0);
	int64_t s = add_session(t, "5", (int64_t)time(NULL) + 600);

	add_ticket("second", 0);
	cr_assert_eq(relay_store_ticket_close(st, t, "done"), 0);
	cr_assert_eq(
	    relay_store_session_set_state(st, s, TETHER_SESSION_PAIRED), 0);
	enrolled_agent("counted-01");
	cr_assert_eq(relay_store_counts(st, &c), 0);
	cr_assert_eq(c.sessions[TETHER_SESSION_PAIRED], 1);
	cr_assert_eq(c.sessions[TETHER_SESSION_WAITING], 0);
	cr_assert_eq(c.tickets[TETHER_TICKET_CLOSED][TETHER_SOURCE_MANUAL], 1);
	cr_assert_eq(c.tickets[TETHER_TICKET_OPEN][TETHER_SOURCE_MANUAL], 1);
	cr_assert_eq(c.agents, 1);
	cr_assert_eq(c.checks[TETHER_CHECK_OK], 0);
}

/* Roles change in place; a ticket keeps its assignee's name and id. */
/*
 * Every pair of creator and assignee among nobody, an admin and two
 * technicians: visible_to lets through exactly what
 * relay_policy_may_see() does, its pages are full and their count of
 * the rest is of the visible ones alone.
 */
Test(store, ticket_list_visible_to_is_the_policy)
{
	int64_t who[4] = {0};
	struct relay_store_ticket_filter f = {0};
	struct relay_store_ticket *v = NULL;
	size_t n = 0, i, c, a, seen, pages;
	int64_t more, before;
	char want[256], ids[256];

	who[1] = add_tech("alice", TETHER_TECH_ADMIN);
	who[2] = add_tech("bob", TETHER_TECH_TECHNICIAN);
	who[3] = add_tech("carol", TETHER_TECH_TECHNICIAN);
	for (c = 0; c < 4; c++)
		for (a = 0; a < 4; a++)
			cr_assert_eq(relay_store_ticket_assign(
					 st, add_ticket("t", who[c]), who[a]),
				     0);
	for (i = 2; i < 4; i++) {
		const struct relay_policy_tech tech = {
		    .id = who[i], .role = TETHER_TECH_TECHNICIAN};
		size_t k = 0, total = 0;

		cr_assert_eq(relay_store_ticket_list(st, NULL, &v, &n, NULL),
			     0);
		want[0] = '\0';
		for (c = 0; c < n; c++) {
			const struct relay_policy_ticket pt = {
			    .id = v[c].id,
			    .created_by_id = v[c].created_by_id,
			    .assignee_id = v[c].assignee_id};

			if (!relay_policy_may_see(&tech, &pt))
				continue;
			k += (size_t)snprintf(want + k, sizeof(want) - k,
					      "%s%lld", total ? "," : "",
					      (long long)v[c].id);
			total++;
		}
		relay_store_tickets_free(v, n);
		/* 4 unassigned, 4 assigned to them, 2 more created by them
		 * and given to another */
		cr_assert_eq(total, 10);
		memset(&f, 0, sizeof(f));
		f.visible_to = who[i];
		list_ids(&f, ids, sizeof(ids), &more);
		cr_assert_str_eq(ids, want);
		cr_assert_eq(more, 0);

		/* Pages of 2: full until the last, "more" counting down. */
		f.limit = 2;
		seen = 0;
		pages = 0;
		before = 0;
		do {
			f.before = before;
			cr_assert_eq(
			    relay_store_ticket_list(st, &f, &v, &n, &more), 0);
			seen += n;
			pages++;
			cr_assert_eq(n, seen < total ? 2 : total % 2 ? 1 : 2);
			cr_assert_eq(more, (int64_t)(total - seen));
			before = n > 0 ? v[n - 1].id : 0;
			relay_store_tickets_free(v, n);
		} while (more > 0);
		cr_assert_eq(seen, total);
		cr_assert_eq(pages, 5);
	}
}

Test(store, ticket_list_by_assignee)
{
	int64_t bob = add_tech("bob", TETHER_TECH_TECHNICIAN);
	int64_t carol = add_tech("carol", TETHER_TECH_TECHNICIAN);
	struct relay_store_ticket_filter f = {.has_assignee = true};
	char ids[256];
	int64_t more = -1;

	add_ticket("queue", 0);		       /* 1 */
	add_ticket("bob's", bob);	       /* 2 */
	add_ticket("carol's", carol);	       /* 3 */
	add_ticket("by carol for bob", carol); /* 4 */
	add_ticket("by bob for nobody", bob);  /* 5 */
	cr_assert_eq(relay_store_ticket_assign(st, 2, bob), 0);
	cr_assert_eq(relay_store_ticket_assign(st, 3, carol), 0);
	cr_assert_eq(relay_store_ticket_assign(st, 4, bob), 0);

	f.assignee_id = bob;
	list_ids(&f, ids, sizeof(ids), &more);
	cr_assert_str_eq(ids, "4,2");
	f.assignee_id = carol;
	list_ids(&f, ids, sizeof(ids), &more);
	cr_assert_str_eq(ids, "3");
	f.assignee_id = 0;
	list_ids(&f, ids, sizeof(ids), &more);
	cr_assert_str_eq(ids, "5,1", "0 with has_assignee: nobody's");
	f.limit = 1;
	list_ids(&f, ids, sizeof(ids), &more);
	cr_assert_str_eq(ids, "5");
	cr_assert_eq(more, 1);

	/* With a view: bob's tickets as carol sees them, the one she made. */
	memset(&f, 0, sizeof(f));
	f.has_assignee = true;
	f.assignee_id = bob;
	f.visible_to = carol;
	list_ids(&f, ids, sizeof(ids), &more);
	cr_assert_str_eq(ids, "4");
	f.has_assignee = false;
	list_ids(&f, ids, sizeof(ids), &more);
	cr_assert_str_eq(ids, "5,4,3,1", "2 is bob's alone");

	/* A technician no longer there keeps the tickets still naming them. */
	cr_assert_eq(relay_store_tech_remove(st, "bob"), 0);
	memset(&f, 0, sizeof(f));
	f.has_assignee = true;
	f.assignee_id = bob;
	list_ids(&f, ids, sizeof(ids), &more);
	cr_assert_str_eq(ids, "4,2");

	f.assignee_id = -1;
	cr_assert_eq(relay_store_ticket_list(
			 st, &f, &(struct relay_store_ticket *){NULL},
			 &(size_t){0}, NULL),
		     TETHER_ERR_INVALID);
	f.assignee_id = 0;
	f.visible_to = -2;
	cr_assert_eq(relay_store_ticket_list(
			 st, &f, &(struct relay_store_ticket *){NULL},
			 &(size_t){0}, NULL),
		     TETHER_ERR_INVALID);
}

Test(store, tech_role_and_ticket_assignee)
{
	int64_t alice = add_tech("alice", TETHER_TECH_ADMIN);
	int64_t bob = add_tech("bob", TETHER_TECH_TECHNICIAN);
	int64_t t = add_ticket("printer", alice);
	struct relay_store_tech tech;
	struct relay_store_ticket tk;

	cr_assert_eq(relay_store_tech_set_role(st, bob, TETHER_TECH_AUDITOR),
		     0);
	cr_assert_eq(relay_store_tech_get(st, bob, &tech), 0);
	cr_assert_eq(tech.role, TETHER_TECH_AUDITOR);
	cr_assert_eq(relay_store_tech_set_role(st, 999, TETHER_TECH_ADMIN),
		     TETHER_ERR_NOT_FOUND);
	cr_assert_eq(
	    relay_store_tech_set_role(st, bob, (enum tether_tech_role)9),
	    TETHER_ERR_INVALID);
	cr_assert_eq(relay_store_ticket_get(st, t, &tk), 0);
	cr_assert_eq(tk.created_by_id, alice);
	cr_assert_eq(tk.assignee_id, 0);
	cr_assert_null(tk.assignee);
	relay_store_ticket_clear(&tk);
	cr_assert_eq(relay_store_ticket_assign(st, t, bob), 0);
	cr_assert_eq(relay_store_ticket_assign(st, t, 999),
		     TETHER_ERR_NOT_FOUND);
	cr_assert_eq(relay_store_ticket_assign(st, 999, bob),
		     TETHER_ERR_NOT_FOUND);
	cr_assert_eq(relay_store_tech_remove(st, "bob"), 0);
	/* The name outlives the technician, as created_by does. */
	cr_assert_eq(relay_store_ticket_get(st, t, &tk), 0);
	cr_assert_eq(tk.assignee_id, bob);
	cr_assert_str_eq(tk.assignee, "bob");
	relay_store_ticket_clear(&tk);
	cr_assert_eq(relay_store_ticket_assign(st, t, 0), 0);
	cr_assert_eq(relay_store_ticket_get(st, t, &tk), 0);
	cr_assert_eq(tk.assignee_id, 0);
	cr_assert_null(tk.assignee);
	relay_store_ticket_clear(&tk);
}

/*
 * A version 1 database (two roles, tickets without an assignee) is
 * upgraded on open: rows kept, the auditor role accepted, a creator's id
 * found by name, and a removed technician's id still never reused.
 */
Test(store, upgrades_version_1)
{
	struct relay_store_ticket tk;
	struct relay_store_tech tech;
	uint8_t h[32];
	int64_t id = 0;
	sqlite3 *db;

	remove_db();
	cr_assert_eq(sqlite3_open_v2(path, &db,
				     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
				     NULL),
		     SQLITE_OK);
	cr_assert_eq(
	    raw_exec(
		db, "CREATE TABLE technicians (id INTEGER PRIMARY KEY "
		    "AUTOINCREMENT, name TEXT UNIQUE NOT NULL, role TEXT NOT "
		    "NULL CHECK(role IN ('admin','technician')), token_hash "
		    "BLOB NOT NULL CHECK(length(token_hash) = 32), created_at "
		    "INTEGER NOT NULL);"
		    "CREATE TABLE tickets (id INTEGER PRIMARY KEY "
		    "AUTOINCREMENT, title TEXT NOT NULL, customer TEXT, status "
		    "TEXT NOT NULL, source TEXT NOT NULL, created_by TEXT, "
		    "created_at INTEGER NOT NULL, closed_at INTEGER, "
		    "resolution TEXT);"
		    "INSERT INTO technicians VALUES (1, 'alice', 'admin', "
		    "zeroblob(32), 1), (2, 'bob', 'technician', zeroblob(32), "
		    "2), (3, 'eve', 'technician', zeroblob(32), 3);"
		    "DELETE FROM technicians WHERE name = 'eve';"
		    "INSERT INTO tickets (title, status, source, created_by, "
		    "created_at) VALUES ('old', 'open', 'manual', 'bob', 5);"
		    "PRAGMA user_version = 1;"),
	    SQLITE_OK, "%s", sqlite3_errmsg(db));
	sqlite3_close(db);
	cr_assert_eq(relay_store_open(path, &st), 0);
	cr_assert_eq(relay_store_tech_get(st, 2, &tech), 0);
	cr_assert_str_eq(tech.name, "bob");
	cr_assert_eq(relay_store_tech_set_role(st, 2, TETHER_TECH_AUDITOR), 0);
	hash_of(h, 7);
	cr_assert_eq(
	    relay_store_tech_add(st, "carol", TETHER_TECH_AUDITOR, h, &id), 0);
	cr_assert_eq(id, 4, "eve's id 3 was handed out again: %lld",
		     (long long)id);
	cr_assert_eq(relay_store_ticket_get(st, 1, &tk), 0);
	cr_assert_eq(tk.created_by_id, 2);
	cr_assert_eq(tk.assignee_id, 0);
	relay_store_ticket_clear(&tk);
	db = raw_open();
	{
		sqlite3_stmt *stmt;

		cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA user_version", -1,
						&stmt, NULL),
			     SQLITE_OK);
		cr_assert_eq(sqlite3_step(stmt), SQLITE_ROW);
		cr_assert_eq(sqlite3_column_int(stmt, 0), 2);
		sqlite3_finalize(stmt);
	}
	sqlite3_close(db);
}
