/*
 * The store's SQLite backend (relay-store.h): one database file in WAL
 * mode with synchronous=FULL, so that an acknowledged write survives a
 * crash.
 *
 * Every statement is prepared with bound parameters: no SQL text is ever
 * built from input.  Removing a technician deletes the row so that the name
 * can be added again; ids come from AUTOINCREMENT so that a stale id (in a
 * session, or inside a token) can never name a later technician, and
 * tickets keep a copy of their creator's name for history.  Enums are kept
 * as the words of this file's tables (the schema's CHECKs name them), and
 * the SPAKE2 values as hex text, as databases made before had them.
 *
 * The audit table is append-only (triggers abort UPDATE and DELETE) and
 * hash-chained: each row stores SHA-256 over the previous row's hash and a
 * length-prefixed encoding of its own fields, so editing, inserting or
 * deleting any row except the newest breaks the verification.
 *
 * SQLite allocates through tether_malloc() (sqlite3_config before the
 * library starts), so the OOM tests walk its allocations as well as ours.
 */
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <tether/alloc.h>
#include <tether/crypto.h>
#include <tether/err.h>
#include <tether/log.h>

#include "relay-store.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define SCHEMA_VERSION 2
#define BUSY_TIMEOUT_MS 5000
#define LIVE_STATES "('waiting','joined','paired')"
/* Results kept per check in health_history. */
#define HISTORY_KEEP 500

struct sq_store {
	struct relay_store base;
	sqlite3 *db;
	int64_t data_version; /* PRAGMA data_version at the last look */
	bool data_version_known;
};

static struct sq_store *sq(struct relay_store *st)
{
	return (struct sq_store *)(void *)((char *)st -
					   offsetof(struct sq_store, base));
}

/* ---- SQLite's allocator -------------------------------------------------- */

/*
 * SQLite asks for the size of a block it holds (xSize), so each block
 * carries it in a header, one max_align_t long so that the block keeps
 * the 8-byte alignment SQLite needs.
 */
union sq_header {
	size_t size;
	max_align_t align;
};

static void *sq_mem_malloc(int n)
{
	union sq_header *h;

	if (n <= 0)
		return NULL;
	h = tether_malloc(sizeof(*h) + (size_t)n);
	if (h == NULL)
		return NULL;
	h->size = (size_t)n;
	return h + 1;
}

static void sq_mem_free(void *p)
{
	if (p != NULL)
		tether_free((union sq_header *)p - 1);
}

static void *sq_mem_realloc(void *p, int n)
{
	union sq_header *h;

	if (p == NULL)
		return sq_mem_malloc(n);
	if (n <= 0)
		return NULL;
	h = tether_reallocarray((union sq_header *)p - 1, 1,
				sizeof(*h) + (size_t)n);
	if (h == NULL)
		return NULL;
	h->size = (size_t)n;
	return h + 1;
}

static int sq_mem_size(void *p)
{
	return p != NULL ? (int)((union sq_header *)p - 1)->size : 0;
}

static int sq_mem_roundup(int n)
{
	return (n + 7) & ~7;
}

static int sq_mem_init(void *arg)
{
	(void)arg;
	return SQLITE_OK;
}

static void sq_mem_shutdown(void *arg)
{
	(void)arg;
}

/*
 * Once per process, before SQLite starts.  If it has started already (a
 * program that used SQLite before opening the store) it keeps malloc().
 */
static void sq_route_allocator(void)
{
	static const sqlite3_mem_methods methods = {
	    sq_mem_malloc,  sq_mem_free, sq_mem_realloc,  sq_mem_size,
	    sq_mem_roundup, sq_mem_init, sq_mem_shutdown, NULL,
	};
	static bool done;

	if (done)
		return;
	done = true;
	if (sqlite3_config(SQLITE_CONFIG_MALLOC, &methods) != SQLITE_OK)
		tether_log_debug("SQLite started already: it keeps malloc()");
}

/* ---- Words of the enums, as the schema keeps them --------------------------
 */

struct sq_words {
	const char *const *w;
	size_t n;
};

static const char *const role_w[] = {
    [TETHER_TECH_ADMIN] = "admin",
    [TETHER_TECH_TECHNICIAN] = "technician",
    [TETHER_TECH_AUDITOR] = "auditor",
};
static const char *const status_w[] = {
    [TETHER_TICKET_OPEN] = "open",
    [TETHER_TICKET_CLOSED] = "closed",
};
static const char *const source_w[] = {
    [TETHER_SOURCE_MANUAL] = "manual",
    [TETHER_SOURCE_HEALTH] = "health",
};
static const char *const session_w[] = {
    [TETHER_SESSION_WAITING] = "waiting",
    [TETHER_SESSION_JOINED] = "joined",
    [TETHER_SESSION_PAIRED] = "paired",
    [TETHER_SESSION_ENDED] = "ended",
    [TETHER_SESSION_BURNED] = "burned",
    [TETHER_SESSION_EXPIRED] = "expired",
    [TETHER_SESSION_DECLINED] = "declined",
};
static const char *const state_w[] = {
    [TETHER_CHECK_OK] = "OK",
    [TETHER_CHECK_WARNING] = "WARNING",
    [TETHER_CHECK_CRITICAL] = "CRITICAL",
    [TETHER_CHECK_UNKNOWN] = "UNKNOWN",
};
static const char *const type_w[] = {
    [TETHER_CHECK_SOFT] = "SOFT",
    [TETHER_CHECK_HARD] = "HARD",
};
_Static_assert(ARRAY_SIZE(session_w) == RELAY_STORE_SESSION_STATES,
	       "a word for every session state");
_Static_assert(ARRAY_SIZE(state_w) == RELAY_STORE_CHECK_STATES,
	       "a word for every check state");
_Static_assert(ARRAY_SIZE(status_w) == RELAY_STORE_STATUSES &&
		   ARRAY_SIZE(source_w) == RELAY_STORE_SOURCES,
	       "a word for every ticket status and source");

#define WORDS(t) ((struct sq_words){(t), ARRAY_SIZE(t)})

/* ---- Statement helpers ------------------------------------------------ */

enum db_arg_type { DB_INT, DB_ID, DB_TEXT, DB_HASH };

/* One bound parameter; DB_ID binds NULL for 0, DB_TEXT/DB_HASH for NULL. */
struct db_arg {
	enum db_arg_type type;
	int64_t i;
	const void *p;
};

#define A_INT(v)                                                               \
	{                                                                      \
		.type = DB_INT, .i = (v)                                       \
	}
#define A_ID(v)                                                                \
	{                                                                      \
		.type = DB_ID, .i = (v)                                        \
	}
#define A_TEXT(v)                                                              \
	{                                                                      \
		.type = DB_TEXT, .p = (v)                                      \
	}
#define A_HASH(v)                                                              \
	{                                                                      \
		.type = DB_HASH, .p = (v)                                      \
	}
/* Expands to "array, count" for the helpers below. */
#define DB_ARGS(...)                                                           \
	(const struct db_arg[]){__VA_ARGS__},                                  \
	    sizeof((const struct db_arg[]){__VA_ARGS__}) /                     \
		sizeof(struct db_arg)

/*
 * Maps the connection's last error to a TETHER_ERR_*.  Constraint failures
 * are the caller's mistake or an expected conflict, and no memory is the
 * OOM tests' daily bread, so only the rest is logged.
 */
static int db_err(struct sq_store *s, const char *sql)
{
	switch (sqlite3_extended_errcode(s->db)) {
	case SQLITE_CONSTRAINT_UNIQUE:
	case SQLITE_CONSTRAINT_PRIMARYKEY:
		return TETHER_ERR_EXISTS;
	case SQLITE_CONSTRAINT_FOREIGNKEY:
		return TETHER_ERR_NOT_FOUND;
	case SQLITE_CONSTRAINT_CHECK:
	case SQLITE_CONSTRAINT_NOTNULL:
		return TETHER_ERR_INVALID;
	case SQLITE_NOMEM:
	case SQLITE_IOERR_NOMEM:
		return TETHER_ERR_NOMEM;
	}
	tether_log_err(TETHER_ERR_DB, "sqlite: %s (in: %.60s)",
		       sqlite3_errmsg(s->db), sql);
	return TETHER_ERR_DB;
}

static int db_bind_one(sqlite3_stmt *stmt, int idx, const struct db_arg *a)
{
	if (a->type == DB_INT || (a->type == DB_ID && a->i != 0))
		return sqlite3_bind_int64(stmt, idx, a->i);
	if (a->type == DB_ID || !a->p)
		return sqlite3_bind_null(stmt, idx);
	if (a->type == DB_TEXT)
		return sqlite3_bind_text(stmt, idx, a->p, -1, SQLITE_STATIC);
	return sqlite3_bind_blob(stmt, idx, a->p, TETHER_SHA256_LEN,
				 SQLITE_STATIC);
}

/* Prepares sql and binds args to ?1..?n. */
static int db_prepare(struct sq_store *s, const char *sql,
		      const struct db_arg *args, size_t nargs,
		      sqlite3_stmt **out)
{
	sqlite3_stmt *stmt = NULL;
	int rc;
	size_t i;

	rc = sqlite3_prepare_v2(s->db, sql, -1, &stmt, NULL);
	for (i = 0; i < nargs && rc == SQLITE_OK; i++)
		rc = db_bind_one(stmt, (int)i + 1, &args[i]);
	if (rc != SQLITE_OK) {
		rc = db_err(s, sql);
		sqlite3_finalize(stmt);
		stmt = NULL;
	}
	*out = stmt;
	return rc;
}

/* 1 for a row, 0 when done, else a negative error. */
static int db_step(struct sq_store *s, sqlite3_stmt *stmt)
{
	int rc = sqlite3_step(stmt);

	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return db_err(s, sqlite3_sql(stmt));
}

/* Runs a statement that returns no rows; changes (may be NULL) gets the
 * number of rows it touched. */
static int db_run(struct sq_store *s, const char *sql,
		  const struct db_arg *args, size_t nargs, int *changes)
{
	sqlite3_stmt *stmt;
	int r;

	r = db_prepare(s, sql, args, nargs, &stmt);
	if (r)
		return r;
	r = db_step(s, stmt);
	if (r > 0)
		r = 0;
	if (!r && changes)
		*changes = sqlite3_changes(s->db);
	sqlite3_finalize(stmt);
	return r;
}

/* Runs an INSERT; *id (may be NULL) gets the new row's id. */
static int db_insert(struct sq_store *s, const char *sql,
		     const struct db_arg *args, size_t nargs, int64_t *id)
{
	int r = db_run(s, sql, args, nargs, NULL);

	if (!r && id)
		*id = sqlite3_last_insert_rowid(s->db);
	return r;
}

/* 1 if the query returns a row, 0 if not, else a negative error. */
static int db_exists(struct sq_store *s, const char *sql,
		     const struct db_arg *args, size_t nargs)
{
	sqlite3_stmt *stmt;
	int r;

	r = db_prepare(s, sql, args, nargs, &stmt);
	if (r)
		return r;
	r = db_step(s, stmt);
	sqlite3_finalize(stmt);
	return r;
}

/* The first column of the query's one row as a number into *v. */
static int db_int(struct sq_store *s, const char *sql,
		  const struct db_arg *args, size_t nargs, int64_t *v)
{
	sqlite3_stmt *stmt;
	int r;

	*v = 0;
	r = db_prepare(s, sql, args, nargs, &stmt);
	if (r)
		return r;
	r = db_step(s, stmt);
	if (r == 1)
		*v = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	return r == 0 ? TETHER_ERR_NOT_FOUND : r < 0 ? r : 0;
}

/* Constant SQL only (schema, transaction control). */
static int db_exec(struct sq_store *s, const char *sql)
{
	if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return db_err(s, sql);
	return 0;
}

/*
 * Ends a transaction: commit on success, else (or if the commit fails,
 * which can leave it open) roll back, and return the first error.
 */
static int db_end(struct sq_store *s, int r)
{
	if (!r)
		r = db_exec(s, "COMMIT");
	if (r && !sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return r;
}

/* ---- Column readers --------------------------------------------------- */

/* Copies a text column (NULL reads as "") into buf. */
static int col_copy(sqlite3_stmt *stmt, int col, char *buf, size_t len)
{
	const unsigned char *t = sqlite3_column_text(stmt, col);
	size_t n = (size_t)sqlite3_column_bytes(stmt, col);

	if (!t && sqlite3_column_type(stmt, col) != SQLITE_NULL)
		return TETHER_ERR_NOMEM;
	if (n >= len)
		return TETHER_ERR_TOO_LARGE;
	if (n)
		memcpy(buf, t, n);
	buf[n] = '\0';
	return 0;
}

/* *out gets a tether_strdup() of a text column, or NULL for SQL NULL. */
static int col_dup(sqlite3_stmt *stmt, int col, char **out)
{
	const unsigned char *t;

	*out = NULL;
	if (sqlite3_column_type(stmt, col) == SQLITE_NULL)
		return 0;
	t = sqlite3_column_text(stmt, col);
	if (t)
		*out = tether_strdup((const char *)t);
	return *out ? 0 : TETHER_ERR_NOMEM;
}

/* A 32-byte hash column; *has false for NULL, anything else malformed. */
static int col_hash(sqlite3_stmt *stmt, int col, bool *has,
		    uint8_t out[TETHER_SHA256_LEN])
{
	const void *p;

	*has = false;
	if (sqlite3_column_type(stmt, col) == SQLITE_NULL)
		return 0;
	p = sqlite3_column_blob(stmt, col);
	if (!p && sqlite3_column_bytes(stmt, col) == TETHER_SHA256_LEN)
		return TETHER_ERR_NOMEM;
	if (sqlite3_column_bytes(stmt, col) != TETHER_SHA256_LEN || !p)
		return TETHER_ERR_FORMAT;
	memcpy(out, p, TETHER_SHA256_LEN);
	*has = true;
	return 0;
}

/* A hex text column of exactly n bytes; *has false for NULL. */
static int col_hex(sqlite3_stmt *stmt, int col, bool *has, uint8_t *out,
		   size_t n)
{
	const unsigned char *t;

	*has = false;
	if (sqlite3_column_type(stmt, col) == SQLITE_NULL)
		return 0;
	t = sqlite3_column_text(stmt, col);
	if (!t)
		return TETHER_ERR_NOMEM;
	if (tether_hex_decode((const char *)t, out, n) != 0)
		return TETHER_ERR_FORMAT;
	*has = true;
	return 0;
}

/* A text column that must be one of the words; *out its index. */
static int col_word(sqlite3_stmt *stmt, int col, struct sq_words w, int *out)
{
	const char *t = (const char *)sqlite3_column_text(stmt, col);
	size_t i;

	if (!t && sqlite3_column_type(stmt, col) != SQLITE_NULL)
		return TETHER_ERR_NOMEM;
	for (i = 0; t && i < w.n; i++) {
		if (strcmp(t, w.w[i]) == 0) {
			*out = (int)i;
			return 0;
		}
	}
	return TETHER_ERR_FORMAT;
}

/* The same into an enum (they are all int-sized). */
#define COL_ENUM(stmt, col, table, dst)                                        \
	col_word((stmt), (col), WORDS(table), (int *)(void *)(dst))

/* An integer column, 0 for NULL. */
static int64_t col_int(sqlite3_stmt *stmt, int col)
{
	return sqlite3_column_int64(stmt, col);
}

/* ---- Lists ------------------------------------------------------------ */

/* Fills one zeroed item from the current row. */
typedef int (*sq_row_fn)(sqlite3_stmt *stmt, void *item);

/*
 * Runs sql and appends an item of size bytes per row to *out, counting it
 * in *n as soon as it exists (zeroed), so that the caller can free a
 * half-filled list.
 */
static int query_rows(struct sq_store *s, const char *sql,
		      const struct db_arg *args, size_t nargs, size_t size,
		      sq_row_fn fill, void **out, size_t *n)
{
	sqlite3_stmt *stmt = NULL;
	size_t cap = 0;
	char *v = NULL;
	int r;

	r = db_prepare(s, sql, args, nargs, &stmt);
	while (!r && (r = db_step(s, stmt)) == 1) {
		if (*n == cap) {
			size_t want = cap ? 2 * cap : 8;
			char *grown = tether_reallocarray(v, want, size);

			if (!grown) {
				r = TETHER_ERR_NOMEM;
				break;
			}
			v = grown;
			*out = v;
			cap = want;
		}
		memset(v + *n * size, 0, size);
		(*n)++;
		r = fill(stmt, v + (*n - 1) * size);
	}
	sqlite3_finalize(stmt);
	return r;
}

/* The same for at most one row into item; TETHER_ERR_NOT_FOUND for none. */
static int query_one(struct sq_store *s, const char *sql,
		     const struct db_arg *args, size_t nargs, sq_row_fn fill,
		     void *item)
{
	sqlite3_stmt *stmt;
	int r;

	r = db_prepare(s, sql, args, nargs, &stmt);
	if (r)
		return r;
	r = db_step(s, stmt);
	if (r == 0)
		r = TETHER_ERR_NOT_FOUND;
	if (r == 1)
		r = fill(stmt, item);
	sqlite3_finalize(stmt);
	return r;
}

/* ---- Schema ----------------------------------------------------------- */

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS technicians ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " name TEXT UNIQUE NOT NULL,"
    " role TEXT NOT NULL CHECK(role IN ('admin','technician','auditor')),"
    " token_hash BLOB NOT NULL CHECK(length(token_hash) = 32),"
    " created_at INTEGER NOT NULL,"
    /* When the login token stops working (NULL: never, as version 1's). */
    " token_expires_at INTEGER);"
    /* A technician's key, and the hash of the login token that
     * registered it: the token in technicians.token_hash is spent while
     * they are equal; a new token makes them differ. */
    "CREATE TABLE IF NOT EXISTS technician_keys ("
    " technician_id INTEGER PRIMARY KEY"
    "  REFERENCES technicians(id) ON DELETE CASCADE,"
    " pubkey BLOB NOT NULL CHECK(length(pubkey) = 32),"
    " token_hash BLOB NOT NULL CHECK(length(token_hash) = 32),"
    " registered_at INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS tickets ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " title TEXT NOT NULL,"
    " customer TEXT,"
    " status TEXT NOT NULL CHECK(status IN ('open','closed')),"
    " source TEXT NOT NULL CHECK(source IN ('manual','health')),"
    " created_by TEXT,"
    " created_at INTEGER NOT NULL,"
    " closed_at INTEGER,"
    " resolution TEXT,"
    " created_by_id INTEGER,"
    " assignee_id INTEGER,"
    " assignee TEXT);"
    "CREATE TABLE IF NOT EXISTS sessions ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " ticket_id INTEGER NOT NULL REFERENCES tickets(id),"
    " technician_id INTEGER NOT NULL,"
    " nameplate TEXT NOT NULL,"
    " state TEXT NOT NULL CHECK(state IN ('waiting','joined','paired',"
    "  'ended','burned','expired','declined')),"
    " created_at INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL,"
    " info TEXT, pake_a TEXT, pake_b TEXT, conf_b TEXT, agent_facts TEXT,"
    " resume_hash BLOB"
    "  CHECK(resume_hash IS NULL OR length(resume_hash) = 32));"
    "CREATE INDEX IF NOT EXISTS sessions_nameplate ON sessions(nameplate);"
    "CREATE INDEX IF NOT EXISTS sessions_ticket ON sessions(ticket_id);"
    /* A nameplate must lead to one live session only, even if a caller
     * skips the in-use check or races another process. */
    "CREATE UNIQUE INDEX IF NOT EXISTS sessions_live_nameplate"
    " ON sessions(nameplate) WHERE state IN " LIVE_STATES ";"
    /* Burned nameplates stay out of use a while: counted by age. */
    "CREATE INDEX IF NOT EXISTS sessions_burned"
    " ON sessions(created_at) WHERE state = 'burned';"
    "CREATE TABLE IF NOT EXISTS audit ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " ts INTEGER NOT NULL,"
    " actor TEXT NOT NULL,"
    " ticket_id INTEGER,"
    " session_id INTEGER,"
    " event TEXT NOT NULL,"
    " detail TEXT,"
    " prev_hash BLOB NOT NULL,"
    " hash BLOB NOT NULL);"
    "CREATE INDEX IF NOT EXISTS audit_ticket ON audit(ticket_id);"
    "CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit"
    " BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;"
    "CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit"
    " BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;"
    /* Enrolled agents (docs/protocol.md, "Enrolled agents"). */
    "CREATE TABLE IF NOT EXISTS enroll_tokens ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " token_hash BLOB UNIQUE NOT NULL CHECK(length(token_hash) = 32),"
    " created_at INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL,"
    " used_at INTEGER,"
    " agent_id INTEGER);"
    "CREATE TABLE IF NOT EXISTS agents ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " name TEXT UNIQUE NOT NULL,"
    " pubkey BLOB NOT NULL CHECK(length(pubkey) = 32),"
    " labels TEXT, facts TEXT,"
    " enrolled_at INTEGER NOT NULL,"
    " last_seen INTEGER,"
    " last_seq INTEGER NOT NULL DEFAULT 0);"
    /* The latest result of each check, with its hard state and the
     * ticket it opened. */
    "CREATE TABLE IF NOT EXISTS health ("
    " agent_id INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,"
    " check_name TEXT NOT NULL,"
    " state TEXT NOT NULL, type TEXT NOT NULL,"
    " attempt INTEGER NOT NULL, max_attempts INTEGER NOT NULL,"
    " output TEXT, perfdata TEXT,"
    " ts INTEGER NOT NULL, since INTEGER NOT NULL,"
    " hard_state TEXT NOT NULL, hard_since INTEGER NOT NULL,"
    " ticket_id INTEGER, flapping INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (agent_id, check_name));"
    "CREATE TABLE IF NOT EXISTS health_history ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " agent_id INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,"
    " check_name TEXT NOT NULL, seq INTEGER NOT NULL,"
    " ts INTEGER NOT NULL, state TEXT NOT NULL, type TEXT NOT NULL,"
    " attempt INTEGER NOT NULL, output TEXT, perfdata TEXT,"
    " hard_change INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS health_history_check"
    " ON health_history(agent_id, check_name, id);"
    /* Diagnostics bundles, packed (tether/bundle.h). */
    "CREATE TABLE IF NOT EXISTS attachments ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " ticket_id INTEGER NOT NULL REFERENCES tickets(id),"
    " kind TEXT NOT NULL, source TEXT NOT NULL,"
    " created_at INTEGER NOT NULL, data TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS attachments_ticket"
    " ON attachments(ticket_id, kind, id);"
    /* Comments are notes, not evidence: the audit row of each says who
     * commented when, and the text lives here. */
    "CREATE TABLE IF NOT EXISTS comments ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " ticket_id INTEGER NOT NULL REFERENCES tickets(id),"
    " author TEXT NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " text TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS comments_ticket ON comments(ticket_id, id);"
    "PRAGMA user_version = 2;";

/*
 * Version 1 to 2: the auditor role, and tickets' creator id and assignee.
 * A CHECK cannot be altered in SQLite, so the technicians table is set
 * aside, made again by schema_sql and refilled; its AUTOINCREMENT
 * high-water mark is carried over, so that a removed technician's id is
 * never handed out again.  A ticket's creator is found by the name it
 * kept, which is as good as version 1 knew.
 */
static const char migrate_v2_before[] =
    "ALTER TABLE technicians RENAME TO technicians_v1;"
    "ALTER TABLE tickets ADD COLUMN created_by_id INTEGER;"
    "ALTER TABLE tickets ADD COLUMN assignee_id INTEGER;"
    "ALTER TABLE tickets ADD COLUMN assignee TEXT;";
static const char migrate_v2_after[] =
    "INSERT INTO technicians (id, name, role, token_hash, created_at)"
    " SELECT id, name, role, token_hash, created_at FROM technicians_v1;"
    "DELETE FROM sqlite_sequence WHERE name = 'technicians';"
    "UPDATE sqlite_sequence SET name = 'technicians'"
    " WHERE name = 'technicians_v1';"
    "DROP TABLE technicians_v1;"
    "UPDATE tickets SET created_by_id ="
    " (SELECT id FROM technicians WHERE technicians.name ="
    "  tickets.created_by);";

/* ---- Open and close --------------------------------------------------- */

/*
 * Creates a missing database file as 0600 before SQLite opens it, so that
 * neither it nor the -wal and -shm files (which SQLite creates with the
 * database's mode) are ever readable by others.  An existing file is left
 * to chmod() after opening: closing a second descriptor here would drop
 * any POSIX locks this process holds on it.
 */
static int precreate(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	if (fd < 0 && errno == EEXIST)
		return 0;
	if (fd < 0) {
		tether_log_err(TETHER_ERR_SYS, "cannot create %s: %s", path,
			       strerror(errno));
		return TETHER_ERR_SYS;
	}
	close(fd);
	return 0;
}

static int check_wal(struct sq_store *s)
{
	sqlite3_stmt *stmt;
	const char *mode;
	int r;

	r = db_prepare(s, "PRAGMA journal_mode = WAL", NULL, 0, &stmt);
	if (r)
		return r;
	r = db_step(s, stmt);
	if (r == 1) {
		mode = (const char *)sqlite3_column_text(stmt, 0);
		r = mode && !strcmp(mode, "wal") ? 0
		    : mode			 ? TETHER_ERR_DB
						 : TETHER_ERR_NOMEM;
	} else if (r == 0) {
		r = TETHER_ERR_DB;
	}
	if (r == TETHER_ERR_DB)
		tether_log_err(r, "cannot switch the database to WAL");
	sqlite3_finalize(stmt);
	return r;
}

static int check_version(struct sq_store *s)
{
	int64_t v;
	int r;

	r = db_int(s, "PRAGMA user_version", NULL, 0, &v);
	if (!r && v > SCHEMA_VERSION) {
		tether_log_err(TETHER_ERR_DB, "database schema is newer (%lld)",
			       (long long)v);
		r = TETHER_ERR_DB;
	}
	return r;
}

/* Inside the opening transaction: older schemas upgraded, then created. */
static int migrate(struct sq_store *s)
{
	int64_t v;
	int r;

	r = db_int(s, "PRAGMA user_version", NULL, 0, &v);
	if (!r && v == 1)
		r = db_exec(s, migrate_v2_before);
	if (!r)
		r = db_exec(s, schema_sql);
	if (!r && v == 1)
		r = db_exec(s, migrate_v2_after);
	return r;
}

static int configure(struct sq_store *s, const char *path)
{
	int r;

	if (chmod(path, 0600)) {
		tether_log_err(TETHER_ERR_SYS, "chmod %s: %s", path,
			       strerror(errno));
		return TETHER_ERR_SYS;
	}
	sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
	/* Refuse SQL that could corrupt the file (writable_schema etc.). */
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	r = db_exec(s, "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL");
	if (!r)
		r = check_wal(s);
	if (!r)
		r = check_version(s);
	if (!r)
		r = db_exec(s, "BEGIN IMMEDIATE");
	if (!r)
		r = db_end(s, migrate(s));
	return r;
}

static const struct relay_store_ops sq_ops;

int relay_store_sqlite_open(const char *path, struct relay_store **out)
{
	struct sq_store *s;
	int r;

	*out = NULL;
	sq_route_allocator();
	r = precreate(path);
	if (r)
		return r;
	s = tether_calloc(1, sizeof(*s));
	if (!s)
		return TETHER_ERR_NOMEM;
	s->base.ops = &sq_ops;
	if (sqlite3_open_v2(path, &s->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		r = s->db ? db_err(s, "open") : TETHER_ERR_NOMEM;
		goto out;
	}
	r = configure(s, path);
out:
	if (r)
		sq_ops.close(&s->base);
	else
		*out = &s->base;
	return r;
}

static void sq_close(struct relay_store *st)
{
	struct sq_store *s = sq(st);

	sqlite3_close_v2(s->db);
	tether_free(s);
}

/* ---- Technicians ------------------------------------------------------ */

static int sq_tech_add(struct relay_store *st, const char *name,
		       enum tether_tech_role role, const uint8_t *token_hash,
		       int64_t *id)
{
	struct sq_store *s = sq(st);

	return db_insert(s,
			 "INSERT INTO technicians (name, role, token_hash,"
			 " created_at) VALUES (?, ?, ?, ?)",
			 DB_ARGS(A_TEXT(name), A_TEXT(role_w[role]),
				 A_HASH(token_hash), A_INT(time(NULL))),
			 id);
}

static int sq_tech_set_role(struct relay_store *st, int64_t id,
			    enum tether_tech_role role)
{
	int changes = 0;
	int r;

	r = db_run(sq(st), "UPDATE technicians SET role = ? WHERE id = ?",
		   DB_ARGS(A_TEXT(role_w[role]), A_INT(id)), &changes);
	if (!r && !changes)
		r = TETHER_ERR_NOT_FOUND;
	return r;
}

static int sq_tech_remove(struct relay_store *st, const char *name)
{
	int changes = 0;
	int r;

	r = db_run(sq(st), "DELETE FROM technicians WHERE name = ?",
		   DB_ARGS(A_TEXT(name)), &changes);
	if (!r && !changes)
		r = TETHER_ERR_NOT_FOUND;
	return r;
}

/*
 * SQLite's data_version moves when another connection commits, never for
 * this one's own writes: exactly "written elsewhere".
 */
static int sq_changed_elsewhere(struct relay_store *st, bool *changed)
{
	struct sq_store *s = sq(st);
	int64_t v;
	int r;

	r = db_int(s, "PRAGMA data_version", NULL, 0, &v);
	if (r)
		return r;
	*changed = !s->data_version_known || v != s->data_version;
	s->data_version = v;
	s->data_version_known = true;
	return TETHER_OK;
}

/* id, name, role, created_at [, token_hash, key, spent, expires] */
static int tech_row(sqlite3_stmt *stmt, void *item)
{
	struct relay_store_tech *t = item;
	bool has = true;
	int r;

	_Static_assert(TETHER_SIGN_PUB_LEN == TETHER_SHA256_LEN,
		       "a key reads as a hash column");
	t->id = col_int(stmt, 0);
	t->created_at = col_int(stmt, 3);
	r = col_copy(stmt, 1, t->name, sizeof(t->name));
	if (!r)
		r = COL_ENUM(stmt, 2, role_w, &t->role);
	if (!r && sqlite3_column_count(stmt) > 4)
		r = col_hash(stmt, 4, &has, t->token_hash);
	if (!r && !has)
		r = TETHER_ERR_FORMAT;
	if (!r && sqlite3_column_count(stmt) > 7) {
		r = col_hash(stmt, 5, &t->has_key, t->pubkey);
		t->token_spent = col_int(stmt, 6) != 0;
		t->token_expires_at = col_int(stmt, 7);
	}
	return r;
}

#define TECH_SELECT                                                            \
	"SELECT t.id, t.name, t.role, t.created_at, t.token_hash, k.pubkey,"   \
	" coalesce(k.token_hash = t.token_hash, 0),"                           \
	" coalesce(t.token_expires_at, 0) FROM technicians t"                  \
	" LEFT JOIN technician_keys k ON k.technician_id = t.id"

static int sq_tech_get(struct relay_store *st, int64_t id,
		       struct relay_store_tech *out)
{
	return query_one(sq(st), TECH_SELECT " WHERE t.id = ?",
			 DB_ARGS(A_INT(id)), tech_row, out);
}

static int sq_tech_by_name(struct relay_store *st, const char *name,
			   struct relay_store_tech *out)
{
	return query_one(sq(st), TECH_SELECT " WHERE t.name = ?",
			 DB_ARGS(A_TEXT(name)), tech_row, out);
}

/* One statement: the check that the token is unspent and the spend. */
static int sq_tech_register_key(struct relay_store *st, int64_t id,
				const uint8_t *token_hash,
				const uint8_t *pubkey)
{
	int changes = 0;
	int r;

	r = db_run(sq(st),
		   "INSERT OR REPLACE INTO technician_keys (technician_id,"
		   " pubkey, token_hash, registered_at)"
		   " SELECT t.id, ?, t.token_hash, ? FROM technicians t"
		   " WHERE t.id = ?3 AND t.token_hash = ?4 AND"
		   " (t.token_expires_at IS NULL OR t.token_expires_at > ?2)"
		   " AND NOT EXISTS"
		   " (SELECT 1 FROM technician_keys k WHERE"
		   " k.technician_id = t.id AND k.token_hash = t.token_hash)",
		   DB_ARGS(A_HASH(pubkey), A_INT(time(NULL)), A_INT(id),
			   A_HASH(token_hash)),
		   &changes);
	if (!r && !changes)
		r = TETHER_ERR_EXPIRED;
	return r;
}

static int sq_tech_token_expires(struct relay_store *st, int64_t id,
				 int64_t expires_at)
{
	int changes = 0;
	int r;

	r = db_run(sq(st),
		   "UPDATE technicians SET token_expires_at = ? WHERE id = ?",
		   DB_ARGS(A_INT(expires_at), A_INT(id)), &changes);
	if (!r && !changes)
		r = TETHER_ERR_NOT_FOUND;
	return r;
}

static int sq_tech_set_token(struct relay_store *st, const char *name,
			     const uint8_t *token_hash, int64_t *id)
{
	struct sq_store *s = sq(st);
	int changes = 0;
	int r;

	r = db_run(s, "UPDATE technicians SET token_hash = ? WHERE name = ?",
		   DB_ARGS(A_HASH(token_hash), A_TEXT(name)), &changes);
	if (!r && !changes)
		return TETHER_ERR_NOT_FOUND;
	if (!r && id != NULL)
		r = db_int(s, "SELECT id FROM technicians WHERE name = ?",
			   DB_ARGS(A_TEXT(name)), id);
	return r;
}

static int sq_tech_list(struct relay_store *st, struct relay_store_tech **out,
			size_t *n)
{
	return query_rows(sq(st),
			  "SELECT id, name, role, created_at FROM technicians"
			  " ORDER BY id",
			  NULL, 0, sizeof(**out), tech_row, (void **)out, n);
}

/* ---- Tickets ---------------------------------------------------------- */

#define TICKET_SELECT                                                          \
	"SELECT id, title, customer, status, source, created_at, closed_at,"   \
	" resolution, created_by, created_by_id, assignee_id, assignee"        \
	" FROM tickets"

static int ticket_row(sqlite3_stmt *stmt, void *item)
{
	struct relay_store_ticket *t = item;
	int r;

	t->id = col_int(stmt, 0);
	t->created_at = col_int(stmt, 5);
	t->closed_at = col_int(stmt, 6);
	r = col_dup(stmt, 1, &t->title);
	if (!r && !t->title)
		r = TETHER_ERR_FORMAT;
	if (!r)
		r = col_dup(stmt, 2, &t->customer);
	if (!r)
		r = COL_ENUM(stmt, 3, status_w, &t->status);
	if (!r)
		r = COL_ENUM(stmt, 4, source_w, &t->source);
	if (!r)
		r = col_dup(stmt, 7, &t->resolution);
	if (!r)
		r = col_dup(stmt, 8, &t->created_by);
	t->created_by_id = col_int(stmt, 9);
	t->assignee_id = col_int(stmt, 10);
	if (!r)
		r = col_dup(stmt, 11, &t->assignee);
	return r;
}

static int sq_ticket_new(struct relay_store *st, const char *title,
			 const char *customer, enum tether_ticket_source source,
			 int64_t created_by, int64_t *id)
{
	struct sq_store *s = sq(st);

	/* The creator's name is copied so that it outlives the technician;
	 * an unknown id (or 0) leaves it NULL. */
	return db_insert(s,
			 "INSERT INTO tickets (title, customer, status, source,"
			 " created_by, created_by_id, created_at)"
			 " VALUES (?1, ?2, 'open', ?3,"
			 " (SELECT name FROM technicians WHERE id = ?4),"
			 " (SELECT id FROM technicians WHERE id = ?4), ?5)",
			 DB_ARGS(A_TEXT(title), A_TEXT(customer),
				 A_TEXT(source_w[source]), A_INT(created_by),
				 A_INT(time(NULL))),
			 id);
}

static int sq_ticket_get(struct relay_store *st, int64_t id,
			 struct relay_store_ticket *out)
{
	return query_one(sq(st), TICKET_SELECT " WHERE id = ?",
			 DB_ARGS(A_INT(id)), ticket_row, out);
}

/* *more: what the count query finds beyond the n rows a page holds. */
static int count_rest(struct sq_store *s, const char *sql,
		      const struct db_arg *args, size_t nargs, size_t n,
		      int64_t *more)
{
	int64_t total = 0;
	int r;

	r = db_int(s, sql, args, nargs, &total);
	if (!r)
		*more = total > (int64_t)n ? total - (int64_t)n : 0;
	return r;
}

static int sq_ticket_assign(struct relay_store *st, int64_t id, int64_t tech_id)
{
	struct sq_store *s = sq(st);
	int changes = 0;
	int r;

	if (tech_id != 0) {
		r = db_exists(s, "SELECT 1 FROM technicians WHERE id = ?",
			      DB_ARGS(A_INT(tech_id)));
		if (r <= 0)
			return r < 0 ? r : TETHER_ERR_NOT_FOUND;
	}
	/* The name is copied, as created_by is, to outlive the technician. */
	r = db_run(s,
		   "UPDATE tickets SET assignee_id = ?1, assignee ="
		   " (SELECT name FROM technicians WHERE id = ?1)"
		   " WHERE id = ?2",
		   DB_ARGS(A_ID(tech_id), A_INT(id)), &changes);
	if (!r && !changes)
		r = TETHER_ERR_NOT_FOUND;
	return r;
}

/*
 * A substring pattern for LIKE ... ESCAPE '\\' with the text's own % _ and
 * \\ taken literally; *out NULL for no text.  Freed with tether_free().
 */
static int like_pattern(const char *text, char **out)
{
	size_t len, i, k = 0;
	char *p;

	*out = NULL;
	if (text == NULL)
		return 0;
	len = strlen(text);
	if (len > (SIZE_MAX - 3) / 2)
		return TETHER_ERR_TOO_LARGE;
	p = tether_malloc(2 * len + 3);
	if (p == NULL)
		return TETHER_ERR_NOMEM;
	p[k++] = '%';
	for (i = 0; i < len; i++) {
		if (text[i] == '%' || text[i] == '_' || text[i] == '\\')
			p[k++] = '\\';
		p[k++] = text[i];
	}
	p[k++] = '%';
	p[k] = '\0';
	*out = p;
	return 0;
}

/*
 * The one WHERE of ticket lists and of their count: ?1 status, ?2 source,
 * ?3 customer pattern, ?4 title-or-customer pattern, ?5 id bound (0:
 * none), ?6 1 to filter on the assignee ?7 (0: nobody), ?8 the
 * technician whose view it is (0: everyone's).  ?8's clause is
 * relay_policy_may_see() (relay-policy.c) in SQL, a NULL id read as 0
 * as col_int() reads it: change the two together.  A new filter
 * appends a clause with the next number.
 */
#define TICKET_WHERE                                                           \
	" WHERE (?1 IS NULL OR status = ?1)"                                   \
	" AND (?2 IS NULL OR source = ?2)"                                     \
	" AND (?3 IS NULL OR customer LIKE ?3 ESCAPE '\\')"                    \
	" AND (?4 IS NULL OR title LIKE ?4 ESCAPE '\\'"                        \
	" OR customer LIKE ?4 ESCAPE '\\')"                                    \
	" AND (?5 = 0 OR id < ?5)"                                             \
	" AND (?6 = 0 OR IFNULL(assignee_id, 0) = ?7)"                         \
	" AND (?8 = 0 OR IFNULL(assignee_id, 0) IN (0, ?8)"                    \
	" OR created_by_id = ?8)"
#define TICKET_WHERE_ARGS 8

static int ticket_list_tx(struct sq_store *s,
			  const struct relay_store_ticket_filter *f,
			  const char *customer, const char *search,
			  struct relay_store_ticket **out, size_t *n,
			  int64_t *more)
{
	const struct db_arg args[] = {
	    A_TEXT(f->has_status ? status_w[f->status] : NULL),
	    A_TEXT(f->has_source ? source_w[f->source] : NULL),
	    A_TEXT(customer),
	    A_TEXT(search),
	    A_INT(f->before),
	    A_INT(f->has_assignee),
	    A_INT(f->assignee_id),
	    A_INT(f->visible_to),
	    /* LIMIT -1 is none */
	    A_INT(f->limit != 0 && f->limit <= INT64_MAX ? (int64_t)f->limit
							 : -1),
	};
	int r;

	r = query_rows(
	    s, TICKET_SELECT TICKET_WHERE " ORDER BY id DESC LIMIT ?9", args,
	    ARRAY_SIZE(args), sizeof(**out), ticket_row, (void **)out, n);
	if (!r)
		r = count_rest(s, "SELECT COUNT(*) FROM tickets" TICKET_WHERE,
			       args, TICKET_WHERE_ARGS, *n, more);
	return r;
}

static int sq_ticket_list(struct relay_store *st,
			  const struct relay_store_ticket_filter *f,
			  struct relay_store_ticket **out, size_t *n,
			  int64_t *more)
{
	struct sq_store *s = sq(st);
	char *customer = NULL, *search = NULL;
	int r;

	r = like_pattern(f->customer, &customer);
	if (!r)
		r = like_pattern(f->search, &search);
	/* One read transaction: the count is of the list's own snapshot. */
	if (!r)
		r = db_exec(s, "BEGIN");
	if (!r)
		r = db_end(
		    s, ticket_list_tx(s, f, customer, search, out, n, more));
	tether_free(customer);
	tether_free(search);
	return r;
}

/*
 * Runs an UPDATE of ticket id that changes it only in the status it
 * leaves: no change is TETHER_ERR_STATE (it is in the other status) or
 * TETHER_ERR_NOT_FOUND.
 */
static int ticket_move(struct sq_store *s, int64_t id, const char *sql,
		       const struct db_arg *args, size_t nargs)
{
	int changes = 0;
	int r;

	r = db_run(s, sql, args, nargs, &changes);
	if (r || changes)
		return r;
	r = db_exists(s, "SELECT 1 FROM tickets WHERE id = ?",
		      DB_ARGS(A_INT(id)));
	if (r >= 0)
		r = r ? TETHER_ERR_STATE : TETHER_ERR_NOT_FOUND;
	return r;
}

static int sq_ticket_close(struct relay_store *st, int64_t id,
			   const char *resolution)
{
	return ticket_move(
	    sq(st), id,
	    "UPDATE tickets SET status = 'closed', closed_at = ?,"
	    " resolution = ? WHERE id = ? AND status = 'open'",
	    DB_ARGS(A_INT(time(NULL)), A_TEXT(resolution), A_INT(id)));
}

static int sq_ticket_reopen(struct relay_store *st, int64_t id)
{
	return ticket_move(
	    sq(st), id,
	    "UPDATE tickets SET status = 'open', closed_at = NULL,"
	    " resolution = NULL WHERE id = ? AND status = 'closed'",
	    DB_ARGS(A_INT(id)));
}

/* ---- Comments --------------------------------------------------------- */

static int sq_comment_add(struct relay_store *st, int64_t ticket_id,
			  const char *author, const char *text, int64_t *id)
{
	/* A missing ticket fails the foreign key: TETHER_ERR_NOT_FOUND. */
	return db_insert(sq(st),
			 "INSERT INTO comments (ticket_id, author, created_at,"
			 " text) VALUES (?, ?, ?, ?)",
			 DB_ARGS(A_INT(ticket_id), A_TEXT(author),
				 A_INT(time(NULL)), A_TEXT(text)),
			 id);
}

static int comment_row(sqlite3_stmt *stmt, void *item)
{
	struct relay_store_comment *c = item;
	int r;

	c->id = col_int(stmt, 0);
	c->ticket_id = col_int(stmt, 1);
	c->created_at = col_int(stmt, 2);
	r = col_dup(stmt, 3, &c->author);
	if (!r)
		r = col_dup(stmt, 4, &c->text);
	if (!r && (!c->author || !c->text))
		r = TETHER_ERR_FORMAT;
	return r;
}

static int comments_tx(struct sq_store *s, int64_t ticket_id, size_t limit,
		       struct relay_store_comment **out, size_t *n,
		       int64_t *more)
{
	int r;

	r = query_rows(
	    s,
	    "SELECT id, ticket_id, created_at, author, text FROM"
	    " (SELECT * FROM comments WHERE ticket_id = ?1"
	    " ORDER BY id DESC LIMIT ?2) ORDER BY id",
	    DB_ARGS(
		A_INT(ticket_id),
		A_INT(limit != 0 && limit <= INT64_MAX ? (int64_t)limit : -1)),
	    sizeof(**out), comment_row, (void **)out, n);
	if (!r)
		r = count_rest(
		    s, "SELECT COUNT(*) FROM comments WHERE ticket_id = ?",
		    DB_ARGS(A_INT(ticket_id)), *n, more);
	return r;
}

static int sq_ticket_comments(struct relay_store *st, int64_t ticket_id,
			      size_t limit, struct relay_store_comment **out,
			      size_t *n, int64_t *more)
{
	struct sq_store *s = sq(st);
	int r;

	r = db_exec(s, "BEGIN");
	if (!r)
		r = db_end(s, comments_tx(s, ticket_id, limit, out, n, more));
	return r;
}

/* ---- Sessions --------------------------------------------------------- */

#define SESSION_SELECT                                                         \
	"SELECT id, ticket_id, technician_id, nameplate, state, created_at,"   \
	" expires_at, info, pake_a, pake_b, conf_b, agent_facts, resume_hash"  \
	" FROM sessions"

/* Fills a struct relay_store_session from a SESSION_SELECT row. */
static int session_row(sqlite3_stmt *stmt, void *item)
{
	struct relay_store_session *s = item;
	bool has_conf = false;
	int r;

	s->id = col_int(stmt, 0);
	s->ticket_id = col_int(stmt, 1);
	s->technician_id = col_int(stmt, 2);
	s->created_at = col_int(stmt, 5);
	s->expires_at = col_int(stmt, 6);
	r = col_copy(stmt, 3, s->nameplate, sizeof(s->nameplate));
	if (!r)
		r = COL_ENUM(stmt, 4, session_w, &s->state);
	if (!r)
		r = col_dup(stmt, 7, &s->info);
	if (!r)
		r = col_hex(stmt, 8, &s->has_pake_a, s->pake_a,
			    sizeof(s->pake_a));
	if (!r)
		r = col_hex(stmt, 9, &s->has_pake_b, s->pake_b,
			    sizeof(s->pake_b));
	if (!r)
		r = col_hex(stmt, 10, &has_conf, s->conf_b, sizeof(s->conf_b));
	/* The agent's half is both values or neither. */
	if (!r && has_conf != s->has_pake_b)
		r = TETHER_ERR_FORMAT;
	if (!r)
		r = col_dup(stmt, 11, &s->agent_facts);
	if (!r)
		r = col_hash(stmt, 12, &s->has_resume, s->resume_hash);
	return r;
}

static int sq_session_new(struct relay_store *st, int64_t ticket_id,
			  int64_t technician_id, const char *nameplate,
			  int64_t expires_at, const char *info,
			  const uint8_t *pake_a, int64_t *id)
{
	char hex[2 * TETHER_SPAKE2_ELEM_LEN + 1];
	struct sq_store *s = sq(st);

	if (pake_a)
		tether_hex_encode(pake_a, TETHER_SPAKE2_ELEM_LEN, hex,
				  sizeof(hex));
	/* A missing ticket fails the foreign key (NOT_FOUND); a live
	 * nameplate fails sessions_live_nameplate (EXISTS). */
	return db_insert(
	    s,
	    "INSERT INTO sessions (ticket_id, technician_id, nameplate,"
	    " state, created_at, expires_at, info, pake_a)"
	    " VALUES (?, ?, ?, 'waiting', ?, ?, ?, ?)",
	    DB_ARGS(A_INT(ticket_id), A_INT(technician_id), A_TEXT(nameplate),
		    A_INT(time(NULL)), A_INT(expires_at), A_TEXT(info),
		    A_TEXT(pake_a ? hex : NULL)),
	    id);
}

static int sq_session_get(struct relay_store *st, int64_t id,
			  struct relay_store_session *out)
{
	return query_one(sq(st), SESSION_SELECT " WHERE id = ?",
			 DB_ARGS(A_INT(id)), session_row, out);
}

static int sq_session_by_nameplate(struct relay_store *st,
				   const char *nameplate,
				   struct relay_store_session *out)
{
	return query_one(sq(st),
			 SESSION_SELECT " WHERE nameplate = ?"
					" ORDER BY id DESC LIMIT 1",
			 DB_ARGS(A_TEXT(nameplate)), session_row, out);
}

static int sq_session_for_ticket(struct relay_store *st, int64_t ticket_id,
				 bool live_only,
				 struct relay_store_session *out)
{
	return query_one(sq(st),
			 SESSION_SELECT " WHERE ticket_id = ?1 AND (?2 = 0 OR"
					" state IN " LIVE_STATES ")"
					" ORDER BY id DESC LIMIT 1",
			 DB_ARGS(A_INT(ticket_id), A_INT(live_only)),
			 session_row, out);
}

static int sq_ticket_sessions(struct relay_store *st, int64_t ticket_id,
			      struct relay_store_session **out, size_t *n)
{
	return query_rows(sq(st),
			  SESSION_SELECT " WHERE ticket_id = ? ORDER BY id",
			  DB_ARGS(A_INT(ticket_id)), sizeof(**out), session_row,
			  (void **)out, n);
}

static bool sq_nameplate_in_use(struct relay_store *st, const char *nameplate)
{
	int r;

	r = db_exists(sq(st),
		      "SELECT 1 FROM sessions WHERE nameplate = ?"
		      " AND state IN " LIVE_STATES " LIMIT 1",
		      DB_ARGS(A_TEXT(nameplate)));
	return r != 0;
}

static int sq_nameplates_held(struct relay_store *st, int64_t burned_since,
			      int64_t *n)
{
	/* Two counts, so that each can use its partial index. */
	return db_int(
	    sq(st),
	    "SELECT (SELECT COUNT(*) FROM sessions WHERE state IN " LIVE_STATES
	    ") + (SELECT COUNT(*) FROM sessions WHERE"
	    " state = 'burned' AND created_at >= ?)",
	    DB_ARGS(A_INT(burned_since)), n);
}

/* Why a join changed nothing: no session, expired, or not waiting. */
static int join_refused(struct sq_store *s, int64_t id)
{
	int r;

	r = db_exists(s, "SELECT 1 FROM sessions WHERE id = ?",
		      DB_ARGS(A_INT(id)));
	if (r == 0)
		return TETHER_ERR_NOT_FOUND;
	if (r < 0)
		return r;
	r = db_exists(s,
		      "SELECT 1 FROM sessions"
		      " WHERE id = ? AND state = 'waiting'",
		      DB_ARGS(A_INT(id)));
	if (r < 0)
		return r;
	return r ? TETHER_ERR_EXPIRED : TETHER_ERR_STATE;
}

static int sq_session_join(struct relay_store *st, int64_t id,
			   const char *agent_facts, const uint8_t *pake_b,
			   const uint8_t *conf_b, const uint8_t *resume_hash)
{
	char pb[2 * TETHER_SPAKE2_ELEM_LEN + 1],
	    cb[2 * TETHER_SPAKE2_CONF_LEN + 1];
	struct sq_store *s = sq(st);
	int changes = 0;
	int r;

	tether_hex_encode(pake_b, TETHER_SPAKE2_ELEM_LEN, pb, sizeof(pb));
	tether_hex_encode(conf_b, TETHER_SPAKE2_CONF_LEN, cb, sizeof(cb));
	/* Atomic test-and-set: of two racing agents only one gets in.  A
	 * session past its expiry is refused even before the sweep. */
	r = db_run(s,
		   "UPDATE sessions SET state = 'joined', agent_facts = ?,"
		   " pake_b = ?, conf_b = ?, resume_hash = ?"
		   " WHERE id = ? AND state = 'waiting' AND expires_at > ?",
		   DB_ARGS(A_TEXT(agent_facts), A_TEXT(pb), A_TEXT(cb),
			   A_HASH(resume_hash), A_INT(id), A_INT(time(NULL))),
		   &changes);
	if (!r && !changes)
		r = join_refused(s, id);
	return r;
}

static int sq_session_set_state(struct relay_store *st, int64_t id,
				enum tether_session_state state)
{
	int changes = 0;
	int r;

	r = db_run(sq(st), "UPDATE sessions SET state = ? WHERE id = ?",
		   DB_ARGS(A_TEXT(session_w[state]), A_INT(id)), &changes);
	if (!r && !changes)
		r = TETHER_ERR_NOT_FOUND;
	return r;
}

/* One statement: the sessions it expired are exactly the ones it returns. */
static int sq_session_expire(struct relay_store *st, int64_t now,
			     struct relay_store_session **out, size_t *n)
{
	return query_rows(
	    sq(st),
	    "UPDATE sessions SET state = 'expired'"
	    " WHERE state = 'waiting' AND expires_at <= ?"
	    " RETURNING id, ticket_id, technician_id, nameplate, state,"
	    " created_at, expires_at, info, pake_a, pake_b, conf_b,"
	    " agent_facts, resume_hash",
	    DB_ARGS(A_INT(now)), sizeof(**out), session_row, (void **)out, n);
}

/* ---- Audit ------------------------------------------------------------ */

/* The fields a row's hash covers, lengths included so that the encoding
 * is unambiguous (and texts with NULs, written behind our back, count). */
struct audit_row {
	uint8_t prev[TETHER_SHA256_LEN];
	int64_t id;
	int64_t ts;
	int64_t ticket_id;
	int64_t session_id;
	const char *text[3]; /* actor, event, detail (may be NULL) */
	size_t len[3];
};

/* Domain separation, and a version should the encoding ever change. */
static const char audit_tag[] = "tether-audit-v1";

static uint8_t *put_u64(uint8_t *p, uint64_t v)
{
	int i;

	for (i = 7; i >= 0; i--)
		*p++ = (uint8_t)(v >> (8 * i));
	return p;
}

/*
 * SHA-256 of: tag, prev hash, id, ts, ticket_id, session_id (each 8 bytes
 * big-endian), then for actor, event and detail a presence byte and, if
 * present, an 8-byte length and the bytes.
 */
static int audit_hash(const struct audit_row *row,
		      uint8_t out[TETHER_SHA256_LEN])
{
	size_t total = sizeof(audit_tag) + TETHER_SHA256_LEN + 4 * 8;
	uint8_t *buf;
	uint8_t *p;
	size_t i;
	int r;

	for (i = 0; i < 3; i++) {
		if (row->len[i] > SIZE_MAX - 9 - total)
			return TETHER_ERR_TOO_LARGE;
		total += 9 + row->len[i];
	}
	buf = tether_malloc(total);
	if (!buf)
		return TETHER_ERR_NOMEM;
	memcpy(buf, audit_tag, sizeof(audit_tag));
	memcpy(buf + sizeof(audit_tag), row->prev, TETHER_SHA256_LEN);
	p = buf + sizeof(audit_tag) + TETHER_SHA256_LEN;
	p = put_u64(p, (uint64_t)row->id);
	p = put_u64(p, (uint64_t)row->ts);
	p = put_u64(p, (uint64_t)row->ticket_id);
	p = put_u64(p, (uint64_t)row->session_id);
	for (i = 0; i < 3; i++) {
		*p++ = row->text[i] != NULL;
		if (!row->text[i])
			continue;
		p = put_u64(p, row->len[i]);
		memcpy(p, row->text[i], row->len[i]);
		p += row->len[i];
	}
	r = tether_sha256(buf, (size_t)(p - buf), out);
	tether_free(buf);
	return r;
}

/* The next row's id and prev hash: after the newest row, or the first. */
static int audit_tail(struct sq_store *s, struct audit_row *row)
{
	sqlite3_stmt *stmt;
	bool has = false;
	int r;

	memset(row->prev, 0, sizeof(row->prev));
	row->id = 1;
	r = db_prepare(s, "SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1",
		       NULL, 0, &stmt);
	if (r)
		return r;
	r = db_step(s, stmt);
	if (r == 1) {
		row->id = col_int(stmt, 0) + 1;
		r = col_hash(stmt, 1, &has, row->prev);
		if (!r && !has)
			r = TETHER_ERR_FORMAT;
	}
	sqlite3_finalize(stmt);
	return r;
}

static int audit_insert(struct sq_store *s, struct audit_row *row)
{
	uint8_t hash[TETHER_SHA256_LEN];
	int r;

	r = audit_tail(s, row);
	if (!r)
		r = audit_hash(row, hash);
	if (r)
		return r;
	/* The id is explicit because the hash covers it. */
	return db_run(s,
		      "INSERT INTO audit (id, ts, actor, ticket_id, session_id,"
		      " event, detail, prev_hash, hash)"
		      " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
		      DB_ARGS(A_INT(row->id), A_INT(row->ts),
			      A_TEXT(row->text[0]), A_ID(row->ticket_id),
			      A_ID(row->session_id), A_TEXT(row->text[1]),
			      A_TEXT(row->text[2]), A_HASH(row->prev),
			      A_HASH(hash)),
		      NULL);
}

static int sq_audit(struct relay_store *st, const char *actor,
		    int64_t ticket_id, int64_t session_id, const char *event,
		    const char *detail)
{
	struct audit_row row = {
	    .ts = time(NULL),
	    .ticket_id = ticket_id,
	    .session_id = session_id,
	    .text = {actor, event, detail},
	};
	struct sq_store *s = sq(st);
	size_t i;
	int r;

	for (i = 0; i < 3; i++)
		row.len[i] = row.text[i] ? strlen(row.text[i]) : 0;
	/* IMMEDIATE: read the tail and append under one write lock, so a
	 * second process cannot fork the chain. */
	r = db_exec(s, "BEGIN IMMEDIATE");
	if (!r)
		r = db_end(s, audit_insert(s, &row));
	return r;
}

/* Reads one row of the verify query; the texts point into stmt. */
static int audit_read(sqlite3_stmt *stmt, struct audit_row *row,
		      uint8_t hash[TETHER_SHA256_LEN])
{
	static const int cols[3] = {2, 5, 6}; /* actor, event, detail */
	bool has_prev = false;
	bool has_hash = false;
	size_t i;
	int r;

	row->id = col_int(stmt, 0);
	row->ts = col_int(stmt, 1);
	row->ticket_id = col_int(stmt, 3);
	row->session_id = col_int(stmt, 4);
	for (i = 0; i < 3; i++) {
		row->text[i] = (const char *)sqlite3_column_text(stmt, cols[i]);
		row->len[i] = (size_t)sqlite3_column_bytes(stmt, cols[i]);
		if (!row->text[i] &&
		    sqlite3_column_type(stmt, cols[i]) != SQLITE_NULL)
			return TETHER_ERR_NOMEM;
	}
	r = col_hash(stmt, 7, &has_prev, row->prev);
	if (!r)
		r = col_hash(stmt, 8, &has_hash, hash);
	if (r == TETHER_ERR_FORMAT || (!r && (!has_prev || !has_hash)))
		r = TETHER_ERR_CRYPTO;
	return r;
}

/* Checks one row against the chain so far; prev becomes its hash. */
static int audit_check(sqlite3_stmt *stmt, uint8_t prev[TETHER_SHA256_LEN],
		       int64_t *last_id)
{
	uint8_t stored[TETHER_SHA256_LEN];
	uint8_t want[TETHER_SHA256_LEN];
	struct audit_row row;
	int r;

	r = audit_read(stmt, &row, stored);
	if (r)
		return r;
	/* A gap in the ids or a foreign prev_hash means rows went missing. */
	if (row.id != *last_id + 1 || memcmp(row.prev, prev, TETHER_SHA256_LEN))
		r = TETHER_ERR_CRYPTO;
	if (!r)
		r = audit_hash(&row, want);
	if (!r && memcmp(want, stored, TETHER_SHA256_LEN))
		r = TETHER_ERR_CRYPTO;
	if (r == TETHER_ERR_CRYPTO)
		tether_log_err(r, "audit chain broken at row %lld",
			       (long long)row.id);
	memcpy(prev, stored, TETHER_SHA256_LEN);
	*last_id = row.id;
	return r;
}

static int sq_audit_verify(struct relay_store *st)
{
	uint8_t prev[TETHER_SHA256_LEN] = {0};
	struct sq_store *s = sq(st);
	int64_t last_id = 0;
	sqlite3_stmt *stmt;
	int r;

	r = db_prepare(s,
		       "SELECT id, ts, actor, ticket_id, session_id, event,"
		       " detail, prev_hash, hash FROM audit ORDER BY id",
		       NULL, 0, &stmt);
	if (r)
		return r;
	while ((r = db_step(s, stmt)) == 1) {
		r = audit_check(stmt, prev, &last_id);
		if (r)
			break;
	}
	sqlite3_finalize(stmt);
	return r;
}

static int audit_list_row(sqlite3_stmt *stmt, void *item)
{
	struct relay_store_audit *a = item;
	int r;

	a->ts = col_int(stmt, 0);
	r = col_dup(stmt, 1, &a->actor);
	if (!r)
		r = col_dup(stmt, 2, &a->event);
	if (!r && (!a->actor || !a->event))
		r = TETHER_ERR_FORMAT;
	if (!r)
		r = col_dup(stmt, 3, &a->detail);
	a->session_id = col_int(stmt, 4);
	a->id = col_int(stmt, 5);
	return r;
}

#define AUDIT_LIST_COLS "ts, actor, event, detail, session_id, id"

static int sq_ticket_audit(struct relay_store *st, int64_t ticket_id,
			   struct relay_store_audit **out, size_t *n)
{
	return query_rows(sq(st),
			  "SELECT " AUDIT_LIST_COLS " FROM audit"
			  " WHERE ticket_id = ? ORDER BY id",
			  DB_ARGS(A_INT(ticket_id)), sizeof(**out),
			  audit_list_row, (void **)out, n);
}

static int audit_page_tx(struct sq_store *s, int64_t ticket_id,
			 const struct relay_store_audit_page *pg,
			 struct relay_store_audit **out, size_t *n,
			 int64_t *more)
{
	int64_t limit = pg->limit <= INT64_MAX ? (int64_t)pg->limit : -1;
	int r;

	if (pg->after != 0)
		r = query_rows(
		    s,
		    "SELECT " AUDIT_LIST_COLS " FROM audit"
		    " WHERE ticket_id = ?1 AND id > ?2"
		    " ORDER BY id LIMIT ?3",
		    DB_ARGS(A_INT(ticket_id), A_INT(pg->after), A_INT(limit)),
		    sizeof(**out), audit_list_row, (void **)out, n);
	else
		r = query_rows(
		    s,
		    "SELECT " AUDIT_LIST_COLS " FROM"
		    " (SELECT * FROM audit WHERE ticket_id = ?1"
		    " AND (?2 = 0 OR id < ?2)"
		    " ORDER BY id DESC LIMIT ?3) ORDER BY id",
		    DB_ARGS(A_INT(ticket_id), A_INT(pg->before), A_INT(limit)),
		    sizeof(**out), audit_list_row, (void **)out, n);
	if (r || *n == 0)
		return r;
	/* The rest on the far side: past the page's last row, or before
	 * its first. */
	if (pg->after != 0)
		return db_int(
		    s,
		    "SELECT COUNT(*) FROM audit"
		    " WHERE ticket_id = ? AND id > ?",
		    DB_ARGS(A_INT(ticket_id), A_INT((*out)[*n - 1].id)), more);
	return db_int(
	    s, "SELECT COUNT(*) FROM audit WHERE ticket_id = ? AND id < ?",
	    DB_ARGS(A_INT(ticket_id), A_INT((*out)[0].id)), more);
}

static int sq_ticket_audit_page(struct relay_store *st, int64_t ticket_id,
				const struct relay_store_audit_page *pg,
				struct relay_store_audit **out, size_t *n,
				int64_t *more)
{
	struct sq_store *s = sq(st);
	int r;

	r = db_exec(s, "BEGIN");
	if (!r)
		r = db_end(s, audit_page_tx(s, ticket_id, pg, out, n, more));
	return r;
}

/* ---- Counts for metrics ----------------------------------------------- */

/* One GROUP BY row: words of cols columns, then the count. */
struct count_into {
	struct sq_words w[2];
	int cols;
	int64_t *cells; /* [w[0].n][w[1].n] */
};

/* Rows with a word this file does not know are left out. */
static int count_row(sqlite3_stmt *stmt, void *item)
{
	struct count_into *c = item;
	int k[2] = {0, 0};
	int i;

	for (i = 0; i < c->cols; i++) {
		int r = col_word(stmt, i, c->w[i], &k[i]);

		if (r != 0)
			return r == TETHER_ERR_FORMAT ? 0 : r;
	}
	c->cells[(size_t)k[0] * (c->cols > 1 ? c->w[1].n : 1) + (size_t)k[1]] +=
	    col_int(stmt, c->cols);
	return 0;
}

static int count_by(struct sq_store *s, const char *sql, struct count_into *c)
{
	sqlite3_stmt *stmt;
	int r;

	r = db_prepare(s, sql, NULL, 0, &stmt);
	while (!r && (r = db_step(s, stmt)) == 1)
		r = count_row(stmt, c);
	sqlite3_finalize(stmt);
	return r;
}

static int sq_counts(struct relay_store *st, struct relay_store_counts *out)
{
	struct count_into sessions = {{WORDS(session_w)}, 1, out->sessions};
	struct count_into tickets = {
	    {WORDS(status_w), WORDS(source_w)}, 2, &out->tickets[0][0]};
	struct count_into checks = {{WORDS(state_w)}, 1, out->checks};
	struct sq_store *s = sq(st);
	int r;

	r = count_by(s, "SELECT state, COUNT(*) FROM sessions GROUP BY state",
		     &sessions);
	if (!r)
		r = count_by(s,
			     "SELECT status, source, COUNT(*) FROM tickets"
			     " GROUP BY status, source",
			     &tickets);
	if (!r)
		r = count_by(
		    s, "SELECT state, COUNT(*) FROM health GROUP BY state",
		    &checks);
	if (!r)
		r = db_int(s, "SELECT COUNT(*) FROM agents", NULL, 0,
			   &out->agents);
	return r;
}

/* ---- Enrolled agents -------------------------------------------------- */

static int sq_enroll_token_new(struct relay_store *st,
			       const uint8_t *token_hash, int64_t expires_at)
{
	return db_run(
	    sq(st),
	    "INSERT INTO enroll_tokens (token_hash, created_at,"
	    " expires_at) VALUES (?, ?, ?)",
	    DB_ARGS(A_HASH(token_hash), A_INT(time(NULL)), A_INT(expires_at)),
	    NULL);
}

/* Inside the enrol transaction: the token's id if usable. */
static int token_usable(struct sq_store *s, const uint8_t *hash,
			int64_t *token_id)
{
	sqlite3_stmt *stmt;
	int r;

	r = db_prepare(s,
		       "SELECT id, expires_at, used_at FROM enroll_tokens"
		       " WHERE token_hash = ?",
		       DB_ARGS(A_HASH(hash)), &stmt);
	if (r)
		return r;
	r = db_step(s, stmt);
	if (r == 0 || (r == 1 && sqlite3_column_type(stmt, 2) != SQLITE_NULL))
		r = TETHER_ERR_NOT_FOUND;
	else if (r == 1 && col_int(stmt, 1) <= time(NULL))
		r = TETHER_ERR_EXPIRED;
	else if (r == 1) {
		*token_id = col_int(stmt, 0);
		r = 0;
	}
	sqlite3_finalize(stmt);
	return r;
}

static int agent_enroll_tx(struct sq_store *s, const uint8_t *hash,
			   const char *name, const uint8_t *pubkey,
			   const char *labels, const char *facts, int64_t *id,
			   bool *replaced)
{
	int64_t token_id = 0, agent_id;
	int changes = 0;
	int r;

	r = token_usable(s, hash, &token_id);
	if (r)
		return r;
	r = db_run(s,
		   "UPDATE agents SET pubkey = ?, labels = ?, facts = ?,"
		   " enrolled_at = ? WHERE name = ?",
		   DB_ARGS(A_HASH(pubkey), A_TEXT(labels), A_TEXT(facts),
			   A_INT(time(NULL)), A_TEXT(name)),
		   &changes);
	if (r)
		return r;
	*replaced = changes > 0;
	if (!changes)
		r = db_run(s,
			   "INSERT INTO agents (name, pubkey, labels, facts,"
			   " enrolled_at) VALUES (?, ?, ?, ?, ?)",
			   DB_ARGS(A_TEXT(name), A_HASH(pubkey), A_TEXT(labels),
				   A_TEXT(facts), A_INT(time(NULL))),
			   NULL);
	if (r)
		return r;
	r = db_int(s, "SELECT id FROM agents WHERE name = ?",
		   DB_ARGS(A_TEXT(name)), &agent_id);
	if (r)
		return r == TETHER_ERR_NOT_FOUND ? TETHER_ERR_DB : r;
	*id = agent_id;
	return db_run(
	    s,
	    "UPDATE enroll_tokens SET used_at = ?, agent_id = ?"
	    " WHERE id = ?",
	    DB_ARGS(A_INT(time(NULL)), A_INT(agent_id), A_INT(token_id)), NULL);
}

static int sq_agent_enroll(struct relay_store *st, const uint8_t *token_hash,
			   const char *name, const uint8_t *pubkey,
			   const char *labels, const char *facts, int64_t *id,
			   bool *replaced)
{
	struct sq_store *s = sq(st);
	int r;

	r = db_exec(s, "BEGIN IMMEDIATE");
	if (!r)
		r = db_end(s, agent_enroll_tx(s, token_hash, name, pubkey,
					      labels, facts, id, replaced));
	return r;
}

static int agent_key_row(sqlite3_stmt *stmt, void *item)
{
	struct relay_store_agent *a = item;
	const void *key = sqlite3_column_blob(stmt, 2);
	int r;

	a->id = col_int(stmt, 0);
	a->last_seq = col_int(stmt, 3);
	r = col_copy(stmt, 1, a->name, sizeof(a->name));
	if (!r && !key && sqlite3_column_bytes(stmt, 2) == TETHER_SIGN_PUB_LEN)
		r = TETHER_ERR_NOMEM;
	if (!r &&
	    (!key || sqlite3_column_bytes(stmt, 2) != TETHER_SIGN_PUB_LEN))
		r = TETHER_ERR_FORMAT;
	if (!r)
		memcpy(a->pubkey, key, TETHER_SIGN_PUB_LEN);
	return r;
}

static int sq_agent_get(struct relay_store *st, const char *name,
			struct relay_store_agent *out)
{
	return query_one(sq(st),
			 "SELECT id, name, pubkey, last_seq FROM agents"
			 " WHERE name = ?",
			 DB_ARGS(A_TEXT(name)), agent_key_row, out);
}

static int sq_agent_seen(struct relay_store *st, int64_t id)
{
	return db_run(sq(st), "UPDATE agents SET last_seen = ? WHERE id = ?",
		      DB_ARGS(A_INT(time(NULL)), A_INT(id)), NULL);
}

static int sq_agent_set_seq(struct relay_store *st, int64_t id, int64_t seq)
{
	int changes = 0;
	int r;

	r = db_run(sq(st),
		   "UPDATE agents SET last_seq = ?, last_seen = ? WHERE id = ?",
		   DB_ARGS(A_INT(seq), A_INT(time(NULL)), A_INT(id)), &changes);
	if (!r && !changes)
		r = TETHER_ERR_NOT_FOUND;
	return r;
}

static int agent_list_row(sqlite3_stmt *stmt, void *item)
{
	struct relay_store_agent_row *a = item;
	size_t i;
	int r;

	a->enrolled_at = col_int(stmt, 3);
	a->last_seen = col_int(stmt, 4);
	a->checks = col_int(stmt, 5);
	for (i = 0; i < RELAY_STORE_CHECK_STATES; i++)
		a->by_state[i] = col_int(stmt, 6 + (int)i);
	r = col_copy(stmt, 0, a->name, sizeof(a->name));
	if (!r)
		r = col_dup(stmt, 1, &a->labels);
	if (!r)
		r = col_dup(stmt, 2, &a->facts);
	return r;
}

static int sq_agent_list(struct relay_store *st,
			 struct relay_store_agent_row **out, size_t *n)
{
	_Static_assert(RELAY_STORE_CHECK_STATES == 4, "a column per state");

	return query_rows(
	    sq(st),
	    "SELECT a.name, a.labels, a.facts, a.enrolled_at, a.last_seen,"
	    " COUNT(h.agent_id), SUM(h.state = ?1), SUM(h.state = ?2),"
	    " SUM(h.state = ?3), SUM(h.state = ?4)"
	    " FROM agents a LEFT JOIN health h ON h.agent_id = a.id"
	    " GROUP BY a.id ORDER BY a.name",
	    DB_ARGS(A_TEXT(state_w[0]), A_TEXT(state_w[1]), A_TEXT(state_w[2]),
		    A_TEXT(state_w[3])),
	    sizeof(**out), agent_list_row, (void **)out, n);
}

/* ---- Checks ----------------------------------------------------------- */

#define CHECK_SELECT                                                           \
	"SELECT a.name, h.check_name, h.state, h.type, h.attempt,"             \
	" h.max_attempts, h.output, h.perfdata, h.ts, h.since, h.hard_state,"  \
	" h.hard_since, h.ticket_id, h.flapping FROM health h"                 \
	" JOIN agents a ON a.id = h.agent_id"

static int check_row(sqlite3_stmt *stmt, void *item)
{
	struct relay_store_check *c = item;
	int r;

	c->attempt = col_int(stmt, 4);
	c->max_attempts = col_int(stmt, 5);
	c->ts = col_int(stmt, 8);
	c->since = col_int(stmt, 9);
	c->hard_since = col_int(stmt, 11);
	c->ticket_id = col_int(stmt, 12);
	c->flapping = col_int(stmt, 13) != 0;
	r = col_copy(stmt, 0, c->agent, sizeof(c->agent));
	if (!r)
		r = col_copy(stmt, 1, c->check, sizeof(c->check));
	if (!r)
		r = COL_ENUM(stmt, 2, state_w, &c->state);
	if (!r)
		r = COL_ENUM(stmt, 3, type_w, &c->type);
	if (!r)
		r = col_dup(stmt, 6, &c->output);
	if (!r)
		r = col_dup(stmt, 7, &c->perfdata);
	if (!r)
		r = COL_ENUM(stmt, 10, state_w, &c->hard_state);
	return r;
}

static int sq_health_get(struct relay_store *st, int64_t agent_id,
			 const char *check, int64_t since,
			 struct relay_store_check_prev *out)
{
	struct sq_store *s = sq(st);
	int r;

	r = db_int(s, "SELECT last_seq FROM agents WHERE id = ?",
		   DB_ARGS(A_INT(agent_id)), &out->last_seq);
	if (!r)
		r = db_int(s, "SELECT COUNT(*) FROM health WHERE agent_id = ?",
			   DB_ARGS(A_INT(agent_id)), &out->nchecks);
	if (!r) {
		r = query_one(s,
			      CHECK_SELECT " WHERE h.agent_id = ?"
					   " AND h.check_name = ?",
			      DB_ARGS(A_INT(agent_id), A_TEXT(check)),
			      check_row, &out->check);
		out->found = r == 0;
		if (r == TETHER_ERR_NOT_FOUND)
			return 0;
	}
	if (!r) {
		r = db_exists(s,
			      "SELECT 1 FROM tickets WHERE id = ?"
			      " AND status = 'open'",
			      DB_ARGS(A_INT(out->check.ticket_id)));
		out->ticket_open = r == 1;
		r = r < 0 ? r : 0;
	}
	if (!r)
		r = db_int(
		    s,
		    "SELECT COUNT(*) FROM health_history WHERE"
		    " agent_id = ? AND check_name = ? AND"
		    " hard_change = 1 AND ts > ?",
		    DB_ARGS(A_INT(agent_id), A_TEXT(check), A_INT(since)),
		    &out->hard_changes);
	return r;
}

static int health_record_tx(struct sq_store *s, int64_t agent_id,
			    const struct relay_store_result *res)
{
	int changes = 0;
	int r;

	/* The seq guard and the write under one lock: a resent result is
	 * never stored twice. */
	r = db_run(s,
		   "UPDATE agents SET last_seq = ?1, last_seen = ?2"
		   " WHERE id = ?3 AND last_seq < ?1",
		   DB_ARGS(A_INT(res->seq), A_INT(time(NULL)), A_INT(agent_id)),
		   &changes);
	if (!r && !changes) {
		r = db_exists(s, "SELECT 1 FROM agents WHERE id = ?",
			      DB_ARGS(A_INT(agent_id)));
		return r < 0 ? r : r ? TETHER_ERR_EXISTS : TETHER_ERR_NOT_FOUND;
	}
	if (!r)
		r = db_run(
		    s,
		    "INSERT INTO health (agent_id, check_name, state, type,"
		    " attempt, max_attempts, output, perfdata, ts, since,"
		    " hard_state, hard_since, flapping) VALUES (?1, ?2, ?3,"
		    " ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
		    " ON CONFLICT (agent_id, check_name) DO UPDATE SET"
		    " state = ?3, type = ?4, attempt = ?5,"
		    " max_attempts = ?6, output = ?7, perfdata = ?8,"
		    " ts = ?9, since = ?10, hard_state = ?11,"
		    " hard_since = ?12, flapping = ?13",
		    DB_ARGS(A_INT(agent_id), A_TEXT(res->check),
			    A_TEXT(state_w[res->state]),
			    A_TEXT(type_w[res->type]), A_INT(res->attempt),
			    A_INT(res->max_attempts), A_TEXT(res->output),
			    A_TEXT(res->perfdata), A_INT(res->ts),
			    A_INT(res->since), A_TEXT(state_w[res->hard_state]),
			    A_INT(res->hard_since), A_INT(res->flapping)),
		    NULL);
	if (!r)
		r = db_run(
		    s,
		    "INSERT INTO health_history (agent_id, check_name,"
		    " seq, ts, state, type, attempt, output, perfdata,"
		    " hard_change) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		    DB_ARGS(A_INT(agent_id), A_TEXT(res->check),
			    A_INT(res->seq), A_INT(res->ts),
			    A_TEXT(state_w[res->state]),
			    A_TEXT(type_w[res->type]), A_INT(res->attempt),
			    A_TEXT(res->output), A_TEXT(res->perfdata),
			    A_INT(res->hard_change)),
		    NULL);
	if (!r)
		r = db_run(s,
			   "DELETE FROM health_history WHERE agent_id = ?1"
			   " AND check_name = ?2 AND id <= (SELECT id FROM"
			   " health_history WHERE agent_id = ?1 AND"
			   " check_name = ?2 ORDER BY id DESC LIMIT 1"
			   " OFFSET ?3)",
			   DB_ARGS(A_INT(agent_id), A_TEXT(res->check),
				   A_INT(HISTORY_KEEP)),
			   NULL);
	return r;
}

static int sq_health_record(struct relay_store *st, int64_t agent_id,
			    const struct relay_store_result *res)
{
	struct sq_store *s = sq(st);
	int r;

	r = db_exec(s, "BEGIN IMMEDIATE");
	if (!r)
		r = db_end(s, health_record_tx(s, agent_id, res));
	return r;
}

static int sq_health_set_ticket(struct relay_store *st, int64_t agent_id,
				const char *check, int64_t ticket_id)
{
	return db_run(sq(st),
		      "UPDATE health SET ticket_id = ? WHERE agent_id = ?"
		      " AND check_name = ?",
		      DB_ARGS(A_ID(ticket_id), A_INT(agent_id), A_TEXT(check)),
		      NULL);
}

static int sq_health_holds_ticket(struct relay_store *st, int64_t agent_id,
				  int64_t ticket_id, bool *holds)
{
	int r;

	r = db_exists(sq(st),
		      "SELECT 1 FROM health WHERE agent_id = ? AND"
		      " ticket_id = ?",
		      DB_ARGS(A_INT(agent_id), A_INT(ticket_id)));
	*holds = r == 1;
	return r < 0 ? r : 0;
}

static int sq_health_list(struct relay_store *st, const char *agent,
			  struct relay_store_check **out, size_t *n)
{
	struct sq_store *s = sq(st);
	int r;

	if (agent) {
		r = db_exists(s, "SELECT 1 FROM agents WHERE name = ?",
			      DB_ARGS(A_TEXT(agent)));
		if (r <= 0)
			return r ? r : TETHER_ERR_NOT_FOUND;
	}
	return query_rows(s,
			  CHECK_SELECT " WHERE ?1 IS NULL OR a.name = ?1"
				       " ORDER BY a.name, h.check_name",
			  DB_ARGS(A_TEXT(agent)), sizeof(**out), check_row,
			  (void **)out, n);
}

/* ---- Attachments ------------------------------------------------------ */

static int sq_attach(struct relay_store *st, int64_t ticket_id,
		     const char *kind, const char *source, const char *data,
		     int64_t *id)
{
	struct sq_store *s = sq(st);

	return db_insert(s,
			 "INSERT INTO attachments (ticket_id, kind, source,"
			 " created_at, data) VALUES (?, ?, ?, ?, ?)",
			 DB_ARGS(A_INT(ticket_id), A_TEXT(kind), A_TEXT(source),
				 A_INT(time(NULL)), A_TEXT(data)),
			 id);
}

/* kind, source, created_at, size [, data] */
static int attachment_row(sqlite3_stmt *stmt, void *item)
{
	struct relay_store_attachment *a = item;
	int r;

	a->created_at = col_int(stmt, 2);
	a->size = col_int(stmt, 3);
	r = col_dup(stmt, 0, &a->kind);
	if (!r)
		r = col_dup(stmt, 1, &a->source);
	if (!r && (!a->kind || !a->source))
		r = TETHER_ERR_FORMAT;
	if (!r && sqlite3_column_count(stmt) > 4) {
		r = col_dup(stmt, 4, &a->data);
		if (!r && !a->data)
			r = TETHER_ERR_FORMAT;
	}
	return r;
}

static int sq_attachment_latest(struct relay_store *st, int64_t ticket_id,
				const char *kind,
				struct relay_store_attachment *out)
{
	return query_one(sq(st),
			 "SELECT kind, source, created_at, length(data), data"
			 " FROM attachments WHERE ticket_id = ? AND kind = ?"
			 " ORDER BY id DESC LIMIT 1",
			 DB_ARGS(A_INT(ticket_id), A_TEXT(kind)),
			 attachment_row, out);
}

static int sq_ticket_attachments(struct relay_store *st, int64_t ticket_id,
				 struct relay_store_attachment **out, size_t *n)
{
	return query_rows(sq(st),
			  "SELECT kind, source, created_at, length(data)"
			  " FROM attachments WHERE ticket_id = ? ORDER BY id",
			  DB_ARGS(A_INT(ticket_id)), sizeof(**out),
			  attachment_row, (void **)out, n);
}

static const struct relay_store_ops sq_ops = {
    .close = sq_close,
    .tech_add = sq_tech_add,
    .tech_remove = sq_tech_remove,
    .tech_set_role = sq_tech_set_role,
    .changed_elsewhere = sq_changed_elsewhere,
    .tech_get = sq_tech_get,
    .tech_by_name = sq_tech_by_name,
    .tech_register_key = sq_tech_register_key,
    .tech_set_token = sq_tech_set_token,
    .tech_token_expires = sq_tech_token_expires,
    .tech_list = sq_tech_list,
    .ticket_new = sq_ticket_new,
    .ticket_get = sq_ticket_get,
    .ticket_list = sq_ticket_list,
    .ticket_reopen = sq_ticket_reopen,
    .comment_add = sq_comment_add,
    .ticket_comments = sq_ticket_comments,
    .ticket_close = sq_ticket_close,
    .ticket_assign = sq_ticket_assign,
    .session_new = sq_session_new,
    .session_get = sq_session_get,
    .session_by_nameplate = sq_session_by_nameplate,
    .session_for_ticket = sq_session_for_ticket,
    .ticket_sessions = sq_ticket_sessions,
    .nameplate_in_use = sq_nameplate_in_use,
    .nameplates_held = sq_nameplates_held,
    .session_join = sq_session_join,
    .session_set_state = sq_session_set_state,
    .session_expire = sq_session_expire,
    .audit = sq_audit,
    .audit_verify = sq_audit_verify,
    .ticket_audit = sq_ticket_audit,
    .ticket_audit_page = sq_ticket_audit_page,
    .counts = sq_counts,
    .enroll_token_new = sq_enroll_token_new,
    .agent_enroll = sq_agent_enroll,
    .agent_get = sq_agent_get,
    .agent_seen = sq_agent_seen,
    .agent_set_seq = sq_agent_set_seq,
    .agent_list = sq_agent_list,
    .health_get = sq_health_get,
    .health_record = sq_health_record,
    .health_set_ticket = sq_health_set_ticket,
    .health_holds_ticket = sq_health_holds_ticket,
    .health_list = sq_health_list,
    .attach = sq_attach,
    .attachment_latest = sq_attachment_latest,
    .ticket_attachments = sq_ticket_attachments,
};
