/*
 * The relay's durable state in SQLite; see relay-store.h for the API.
 *
 * Every statement is prepared with bound parameters: no SQL text is ever
 * built from input.  Removing a technician deletes the row so that the name
 * can be added again; ids come from AUTOINCREMENT so that a stale id (in a
 * session, or inside a token) can never name a later technician, and
 * tickets keep a copy of their creator's name for history.
 *
 * The audit table is append-only (triggers abort UPDATE and DELETE) and
 * hash-chained: each row stores SHA-256 over the previous row's hash and a
 * length-prefixed encoding of its own fields, so editing, inserting or
 * deleting any row except the newest breaks tether_store_audit_verify().
 */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include "relay-store.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tether/alloc.h"
#include "tether/crypto.h"
#include "tether/err.h"
#include "tether/log.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define FIELD_SIZE(type, member) sizeof(((type *)0)->member)

#define SCHEMA_VERSION 1
#define BUSY_TIMEOUT_MS 5000
#define LIVE_STATES "('waiting','joined','paired')"

struct tether_store {
	sqlite3 *db;
};

static const char schema_sql[] =
	"CREATE TABLE IF NOT EXISTS technicians ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" name TEXT UNIQUE NOT NULL,"
	" role TEXT NOT NULL CHECK(role IN ('admin','technician')),"
	" token_hash BLOB NOT NULL CHECK(length(token_hash) = 32),"
	" created_at INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS tickets ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" title TEXT NOT NULL,"
	" customer TEXT,"
	" status TEXT NOT NULL CHECK(status IN ('open','closed')),"
	" source TEXT NOT NULL CHECK(source IN ('manual','health')),"
	" created_by TEXT,"
	" created_at INTEGER NOT NULL,"
	" closed_at INTEGER,"
	" resolution TEXT);"
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
	 * skips tether_store_nameplate_in_use() or races another process. */
	"CREATE UNIQUE INDEX IF NOT EXISTS sessions_live_nameplate"
	" ON sessions(nameplate) WHERE state IN " LIVE_STATES ";"
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
	"PRAGMA user_version = 1;";

/* ---- Statement helpers ------------------------------------------------ */

enum db_arg_type { DB_INT, DB_ID, DB_TEXT, DB_HASH };

/* One bound parameter; DB_ID binds NULL for 0, DB_TEXT/DB_HASH for NULL. */
struct db_arg {
	enum db_arg_type type;
	int64_t i;
	const void *p;
};

#define A_INT(v) { .type = DB_INT, .i = (v) }
#define A_ID(v) { .type = DB_ID, .i = (v) }
#define A_TEXT(v) { .type = DB_TEXT, .p = (v) }
#define A_HASH(v) { .type = DB_HASH, .p = (v) }
/* Expands to "array, count" for the helpers below. */
#define DB_ARGS(...)                                                           \
	(const struct db_arg[]){ __VA_ARGS__ },                                \
		sizeof((const struct db_arg[]){ __VA_ARGS__ }) /               \
			sizeof(struct db_arg)

/*
 * Maps the connection's last error to a TETHER_ERR_*.  Constraint failures
 * are the caller's mistake or an expected conflict, so only the rest is
 * logged.
 */
static int db_err(struct tether_store *st, const char *sql)
{
	switch (sqlite3_extended_errcode(st->db)) {
	case SQLITE_CONSTRAINT_UNIQUE:
	case SQLITE_CONSTRAINT_PRIMARYKEY:
		return TETHER_ERR_EXISTS;
	case SQLITE_CONSTRAINT_FOREIGNKEY:
		return TETHER_ERR_NOT_FOUND;
	case SQLITE_CONSTRAINT_CHECK:
	case SQLITE_CONSTRAINT_NOTNULL:
		return TETHER_ERR_INVALID;
	}
	tether_log_err(TETHER_ERR_DB, "sqlite: %s (in: %.60s)",
		       sqlite3_errmsg(st->db), sql);
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
static int db_prepare(struct tether_store *st, const char *sql,
		      const struct db_arg *args, size_t nargs,
		      sqlite3_stmt **out)
{
	sqlite3_stmt *stmt = NULL;
	int rc;
	size_t i;

	rc = sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL);
	for (i = 0; i < nargs && rc == SQLITE_OK; i++)
		rc = db_bind_one(stmt, (int)i + 1, &args[i]);
	if (rc != SQLITE_OK) {
		rc = db_err(st, sql);
		sqlite3_finalize(stmt);
		stmt = NULL;
	}
	*out = stmt;
	return rc;
}

/* 1 for a row, 0 when done, else a negative error. */
static int db_step(struct tether_store *st, sqlite3_stmt *stmt)
{
	int rc = sqlite3_step(stmt);

	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return db_err(st, sqlite3_sql(stmt));
}

/* Runs a statement that returns no rows; changes (may be NULL) gets the
 * number of rows it touched. */
static int db_run(struct tether_store *st, const char *sql,
		  const struct db_arg *args, size_t nargs, int *changes)
{
	sqlite3_stmt *stmt;
	int r;

	r = db_prepare(st, sql, args, nargs, &stmt);
	if (r)
		return r;
	r = db_step(st, stmt);
	if (r > 0)
		r = 0;
	if (!r && changes)
		*changes = sqlite3_changes(st->db);
	sqlite3_finalize(stmt);
	return r;
}

/* 1 if the query returns a row, 0 if not, else a negative error. */
static int db_exists(struct tether_store *st, const char *sql,
		     const struct db_arg *args, size_t nargs)
{
	sqlite3_stmt *stmt;
	int r;

	r = db_prepare(st, sql, args, nargs, &stmt);
	if (r)
		return r;
	r = db_step(st, stmt);
	sqlite3_finalize(stmt);
	return r;
}

/* Constant SQL only (schema, transaction control). */
static int db_exec(struct tether_store *st, const char *sql)
{
	if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return db_err(st, sql);
	return 0;
}

/*
 * Ends a transaction: commit on success, else (or if the commit fails,
 * which can leave it open) roll back, and return the first error.
 */
static int db_end(struct tether_store *st, int r)
{
	if (!r)
		r = db_exec(st, "COMMIT");
	if (r && !sqlite3_get_autocommit(st->db))
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	return r;
}

/* ---- Column readers --------------------------------------------------- */

/* Copies a text column (NULL reads as "") into buf. */
static int col_copy(sqlite3_stmt *stmt, int col, char *buf, size_t len)
{
	const unsigned char *s = sqlite3_column_text(stmt, col);
	size_t n = (size_t)sqlite3_column_bytes(stmt, col);

	if (!s && sqlite3_column_type(stmt, col) != SQLITE_NULL)
		return TETHER_ERR_NOMEM;
	if (n >= len)
		return TETHER_ERR_TOO_LARGE;
	if (n)
		memcpy(buf, s, n);
	buf[n] = '\0';
	return 0;
}

/* *out gets a tether_strdup() of a text column, or NULL for SQL NULL. */
static int col_dup(sqlite3_stmt *stmt, int col, char **out)
{
	const unsigned char *s;

	*out = NULL;
	if (sqlite3_column_type(stmt, col) == SQLITE_NULL)
		return 0;
	s = sqlite3_column_text(stmt, col);
	if (s)
		*out = tether_strdup((const char *)s);
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
	if (sqlite3_column_bytes(stmt, col) != TETHER_SHA256_LEN || !p)
		return TETHER_ERR_FORMAT;
	memcpy(out, p, TETHER_SHA256_LEN);
	*has = true;
	return 0;
}

/* ---- Rows as JSON ----------------------------------------------------- */

enum col_kind {
	COL_INT,
	COL_TEXT,
	COL_TIME,	/* ISO-8601 UTC string */
	COL_TICKET,	/* "T-<n>" */
	COL_AGENT,	/* parsed JSON object, else null */
	COL_DETAIL,	/* parsed JSON if valid, else the string */
};

struct col_spec {
	const char *key;
	enum col_kind kind;
};

/* The keys of a SELECT's columns, in order. */
struct row_shape {
	const struct col_spec *cols;
	size_t n;
};

#define SHAPE(cols) { cols, ARRAY_SIZE(cols) }

static json_t *json_time(sqlite3_stmt *stmt, int col)
{
	time_t t = (time_t)sqlite3_column_int64(stmt, col);
	struct tm tm;
	char buf[32];

	/* Null also for times before 1970 or after 9999, which we never
	 * write, rather than fail the whole answer. */
	if (sqlite3_column_type(stmt, col) == SQLITE_NULL || t < 0 ||
	    !gmtime_r(&t, &tm) || tm.tm_year > 9999 - 1900)
		return json_null();
	if (!strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm))
		return json_null();
	return json_string(buf);
}

static json_t *json_ticket_id(sqlite3_stmt *stmt, int col)
{
	char buf[32];
	int n;

	n = snprintf(buf, sizeof(buf), "T-%lld",
		     (long long)sqlite3_column_int64(stmt, col));
	if (n < 0 || (size_t)n >= sizeof(buf))
		return NULL;
	return json_string(buf);
}

/* Text that may hold JSON: parsed if it does (an object only if
 * want_object), else the string itself (nothing if want_object). */
static json_t *json_parsed(sqlite3_stmt *stmt, int col, bool want_object)
{
	const char *s = (const char *)sqlite3_column_text(stmt, col);
	size_t n = (size_t)sqlite3_column_bytes(stmt, col);
	json_t *v;

	if (!s)
		return json_null();
	v = json_loadb(s, n, want_object ? 0 : JSON_DECODE_ANY, NULL);
	if (want_object && v && !json_is_object(v)) {
		json_decref(v);
		v = NULL;
	}
	if (!v)
		v = want_object ? json_null() : json_stringn(s, n);
	return v;
}

/* NULL on allocation failure (or text that is not UTF-8). */
static json_t *col_json(sqlite3_stmt *stmt, int col, enum col_kind kind)
{
	const char *s;

	switch (kind) {
	case COL_INT:
		return json_integer(sqlite3_column_int64(stmt, col));
	case COL_TIME:
		return json_time(stmt, col);
	case COL_TICKET:
		return json_ticket_id(stmt, col);
	case COL_AGENT:
		return json_parsed(stmt, col, true);
	case COL_DETAIL:
		return json_parsed(stmt, col, false);
	case COL_TEXT:
		break;
	}
	s = (const char *)sqlite3_column_text(stmt, col);
	if (!s)
		return json_null();
	return json_stringn(s, (size_t)sqlite3_column_bytes(stmt, col));
}

static int row_json(sqlite3_stmt *stmt, const struct row_shape *shape,
		    json_t **out)
{
	json_t *obj = json_object();
	int r = obj ? 0 : TETHER_ERR_NOMEM;
	size_t i;

	for (i = 0; i < shape->n && !r; i++) {
		/* set_new takes the value even when it fails */
		if (json_object_set_new(obj, shape->cols[i].key,
					col_json(stmt, (int)i,
						 shape->cols[i].kind)))
			r = TETHER_ERR_NOMEM;
	}
	if (r) {
		json_decref(obj);
		obj = NULL;
	}
	*out = obj;
	return r;
}

/* *out: new JSON array with one object per row of the query. */
static int query_json(struct tether_store *st, const char *sql,
		      const struct db_arg *args, size_t nargs,
		      const struct row_shape *shape, json_t **out)
{
	sqlite3_stmt *stmt = NULL;
	json_t *arr = json_array();
	json_t *row;
	int r;

	*out = NULL;
	if (!arr)
		return TETHER_ERR_NOMEM;
	r = db_prepare(st, sql, args, nargs, &stmt);
	if (r)
		goto out;
	while ((r = db_step(st, stmt)) == 1) {
		r = row_json(stmt, shape, &row);
		if (r)
			goto out;
		if (json_array_append_new(arr, row)) {
			r = TETHER_ERR_NOMEM;
			goto out;
		}
	}
out:
	sqlite3_finalize(stmt);
	if (r)
		json_decref(arr);
	else
		*out = arr;
	return r;
}

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

static int check_wal(struct tether_store *st)
{
	sqlite3_stmt *stmt;
	const char *mode;
	int r;

	r = db_prepare(st, "PRAGMA journal_mode = WAL", NULL, 0, &stmt);
	if (r)
		return r;
	r = db_step(st, stmt);
	if (r == 1) {
		mode = (const char *)sqlite3_column_text(stmt, 0);
		r = mode && !strcmp(mode, "wal") ? 0 : TETHER_ERR_DB;
	} else if (r == 0) {
		r = TETHER_ERR_DB;
	}
	if (r)
		tether_log_err(r, "cannot switch the database to WAL");
	sqlite3_finalize(stmt);
	return r;
}

static int check_version(struct tether_store *st)
{
	sqlite3_stmt *stmt;
	int r;

	r = db_prepare(st, "PRAGMA user_version", NULL, 0, &stmt);
	if (r)
		return r;
	r = db_step(st, stmt);
	if (r == 1 && sqlite3_column_int64(stmt, 0) > SCHEMA_VERSION) {
		tether_log_err(TETHER_ERR_DB, "database schema is newer (%lld)",
			       (long long)sqlite3_column_int64(stmt, 0));
		r = TETHER_ERR_DB;
	} else if (r == 1) {
		r = 0;
	}
	sqlite3_finalize(stmt);
	return r;
}

static int configure(struct tether_store *st, const char *path)
{
	int r;

	if (chmod(path, 0600)) {
		tether_log_err(TETHER_ERR_SYS, "chmod %s: %s", path,
			       strerror(errno));
		return TETHER_ERR_SYS;
	}
	sqlite3_busy_timeout(st->db, BUSY_TIMEOUT_MS);
	/* Refuse SQL that could corrupt the file (writable_schema etc.). */
	sqlite3_db_config(st->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	r = db_exec(st, "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL");
	if (!r)
		r = check_wal(st);
	if (!r)
		r = check_version(st);
	if (!r)
		r = db_exec(st, "BEGIN IMMEDIATE");
	if (!r)
		r = db_end(st, db_exec(st, schema_sql));
	return r;
}

int tether_store_open(const char *path, struct tether_store **out)
{
	struct tether_store *st = NULL;
	int r;

	*out = NULL;
	if (!path || !*path)
		return TETHER_ERR_INVALID;
	r = precreate(path);
	if (r)
		return r;
	st = tether_calloc(1, sizeof(*st));
	if (!st)
		return TETHER_ERR_NOMEM;
	if (sqlite3_open_v2(path, &st->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				    SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		r = st->db ? db_err(st, "open") : TETHER_ERR_NOMEM;
		goto out;
	}
	r = configure(st, path);
out:
	if (r)
		tether_store_close(st);
	else
		*out = st;
	return r;
}

void tether_store_close(struct tether_store *st)
{
	if (!st)
		return;
	sqlite3_close_v2(st->db);
	tether_free(st);
}

/* ---- Technicians ------------------------------------------------------ */

static const struct col_spec tech_cols[] = {
	{ "id", COL_INT },
	{ "name", COL_TEXT },
	{ "role", COL_TEXT },
	{ "created_at", COL_TIME },
};

static bool valid_role(const char *role)
{
	return role && (!strcmp(role, "admin") || !strcmp(role, "technician"));
}

int tether_store_tech_add(struct tether_store *st, const char *name,
			  const char *role, const uint8_t token_hash[32],
			  int64_t *id)
{
	int r;

	/* The name must fit struct tether_store_tech when read back. */
	if (!name || !*name ||
	    strlen(name) >= FIELD_SIZE(struct tether_store_tech, name) ||
	    !valid_role(role) || !token_hash)
		return TETHER_ERR_INVALID;
	r = db_run(st,
		   "INSERT INTO technicians (name, role, token_hash,"
		   " created_at) VALUES (?, ?, ?, ?)",
		   DB_ARGS(A_TEXT(name), A_TEXT(role), A_HASH(token_hash),
			   A_INT(time(NULL))),
		   NULL);
	if (!r && id)
		*id = sqlite3_last_insert_rowid(st->db);
	return r;
}

int tether_store_tech_remove(struct tether_store *st, const char *name)
{
	int changes = 0;
	int r;

	if (!name)
		return TETHER_ERR_INVALID;
	r = db_run(st, "DELETE FROM technicians WHERE name = ?",
		   DB_ARGS(A_TEXT(name)), &changes);
	if (!r && !changes)
		r = TETHER_ERR_NOT_FOUND;
	return r;
}

int tether_store_tech_get(struct tether_store *st, int64_t id,
			  struct tether_store_tech *out)
{
	sqlite3_stmt *stmt;
	bool has = false;
	int r;

	memset(out, 0, sizeof(*out));
	r = db_prepare(st,
		       "SELECT name, role, token_hash FROM technicians"
		       " WHERE id = ?",
		       DB_ARGS(A_INT(id)), &stmt);
	if (r)
		return r;
	r = db_step(st, stmt);
	if (r == 0)
		r = TETHER_ERR_NOT_FOUND;
	if (r == 1)
		r = col_copy(stmt, 0, out->name, sizeof(out->name));
	if (!r)
		r = col_copy(stmt, 1, out->role, sizeof(out->role));
	if (!r)
		r = col_hash(stmt, 2, &has, out->token_hash);
	if (!r && !has)
		r = TETHER_ERR_FORMAT;
	sqlite3_finalize(stmt);
	if (r)
		memset(out, 0, sizeof(*out));
	else
		out->id = id;
	return r;
}

int tether_store_tech_list(struct tether_store *st, json_t **out)
{
	static const struct row_shape shape = SHAPE(tech_cols);

	return query_json(st,
			  "SELECT id, name, role, created_at FROM technicians"
			  " ORDER BY id",
			  NULL, 0, &shape, out);
}

/* ---- Tickets ---------------------------------------------------------- */

#define TICKET_SELECT                                                          \
	"SELECT id, title, customer, status, source, created_at, closed_at,"   \
	" resolution, created_by FROM tickets"

static const struct col_spec ticket_cols[] = {
	{ "id", COL_TICKET },	     { "title", COL_TEXT },
	{ "customer", COL_TEXT },    { "status", COL_TEXT },
	{ "source", COL_TEXT },	     { "created_at", COL_TIME },
	{ "closed_at", COL_TIME },   { "resolution", COL_TEXT },
	{ "created_by", COL_TEXT },
};

/* Never info, PAKE values or the resume hash. */
static const struct col_spec detail_session_cols[] = {
	{ "nameplate", COL_TEXT },
	{ "state", COL_TEXT },
	{ "created_at", COL_TIME },
	{ "expires_at", COL_TIME },
	{ "agent", COL_AGENT },
};

static const struct col_spec detail_audit_cols[] = {
	{ "ts", COL_TIME },
	{ "actor", COL_TEXT },
	{ "event", COL_TEXT },
	{ "detail", COL_DETAIL },
};

static const struct col_spec detail_attachment_cols[] = {
	{ "kind", COL_TEXT },
	{ "source", COL_TEXT },
	{ "created_at", COL_TIME },
	{ "size", COL_INT },
};

static const struct row_shape ticket_shape = SHAPE(ticket_cols);

int tether_store_ticket_new(struct tether_store *st, const char *title,
			    const char *customer, const char *source,
			    int64_t created_by, int64_t *id)
{
	int r;

	if (!title || !source ||
	    (strcmp(source, "manual") && strcmp(source, "health")))
		return TETHER_ERR_INVALID;
	/* The creator's name is copied so that it outlives the technician;
	 * an unknown id (or 0) leaves it NULL. */
	r = db_run(st,
		   "INSERT INTO tickets (title, customer, status, source,"
		   " created_by, created_at) VALUES (?, ?, 'open', ?,"
		   " (SELECT name FROM technicians WHERE id = ?), ?)",
		   DB_ARGS(A_TEXT(title), A_TEXT(customer), A_TEXT(source),
			   A_INT(created_by), A_INT(time(NULL))),
		   NULL);
	if (!r && id)
		*id = sqlite3_last_insert_rowid(st->db);
	return r;
}

/* Sets obj[key] to the array of rows of sql run for a ticket id. */
static int set_detail(struct tether_store *st, json_t *obj, const char *key,
		      const char *sql, int64_t id,
		      const struct row_shape *shape)
{
	json_t *arr;
	int r;

	r = query_json(st, sql, DB_ARGS(A_INT(id)), shape, &arr);
	if (!r && json_object_set_new(obj, key, arr))
		r = TETHER_ERR_NOMEM;
	return r;
}

static int ticket_detail(struct tether_store *st, int64_t id, json_t *obj)
{
	static const struct row_shape sessions = SHAPE(detail_session_cols);
	static const struct row_shape audit = SHAPE(detail_audit_cols);
	static const struct row_shape attachments =
		SHAPE(detail_attachment_cols);
	int r;

	r = set_detail(st, obj, "sessions",
		       "SELECT nameplate, state, created_at, expires_at,"
		       " agent_facts FROM sessions WHERE ticket_id = ?"
		       " ORDER BY id",
		       id, &sessions);
	if (!r)
		r = set_detail(st, obj, "audit",
			       "SELECT ts, actor, event, detail FROM audit"
			       " WHERE ticket_id = ? ORDER BY id",
			       id, &audit);
	if (!r)
		r = set_detail(st, obj, "attachments",
			       "SELECT kind, source, created_at, length(data)"
			       " FROM attachments WHERE ticket_id = ?"
			       " ORDER BY id",
			       id, &attachments);
	return r;
}

int tether_store_ticket_get(struct tether_store *st, int64_t id,
			    bool with_detail, json_t **out)
{
	json_t *arr = NULL;
	json_t *obj = NULL;
	int r;

	*out = NULL;
	r = query_json(st, TICKET_SELECT " WHERE id = ?", DB_ARGS(A_INT(id)),
		       &ticket_shape, &arr);
	if (r)
		goto out;
	obj = json_incref(json_array_get(arr, 0));
	if (!obj)
		r = TETHER_ERR_NOT_FOUND;
	else if (with_detail)
		r = ticket_detail(st, id, obj);
out:
	json_decref(arr);
	if (r)
		json_decref(obj);
	else
		*out = obj;
	return r;
}

int tether_store_ticket_list(struct tether_store *st, const char *status,
			     json_t **out)
{
	*out = NULL;
	if (status && strcmp(status, "open") && strcmp(status, "closed"))
		return TETHER_ERR_INVALID;
	return query_json(st,
			  TICKET_SELECT " WHERE ?1 IS NULL OR status = ?1"
					" ORDER BY id DESC",
			  DB_ARGS(A_TEXT(status)), &ticket_shape, out);
}

int tether_store_ticket_close(struct tether_store *st, int64_t id,
			      const char *resolution)
{
	int changes = 0;
	int r;

	r = db_run(st,
		   "UPDATE tickets SET status = 'closed', closed_at = ?,"
		   " resolution = ? WHERE id = ? AND status = 'open'",
		   DB_ARGS(A_INT(time(NULL)), A_TEXT(resolution), A_INT(id)),
		   &changes);
	if (r || changes)
		return r;
	r = db_exists(st, "SELECT 1 FROM tickets WHERE id = ?",
		      DB_ARGS(A_INT(id)));
	if (r >= 0)
		r = r ? TETHER_ERR_STATE : TETHER_ERR_NOT_FOUND;
	return r;
}

int tether_store_ticket_brief(struct tether_store *st, int64_t id,
			      char *title, size_t title_len, char *status,
			      size_t status_len)
{
	sqlite3_stmt *stmt;
	int r;

	r = db_prepare(st, "SELECT title, status FROM tickets WHERE id = ?",
		       DB_ARGS(A_INT(id)), &stmt);
	if (r)
		return r;
	r = db_step(st, stmt);
	if (r == 0)
		r = TETHER_ERR_NOT_FOUND;
	if (r == 1)
		r = title ? col_copy(stmt, 0, title, title_len) : 0;
	if (!r && status)
		r = col_copy(stmt, 1, status, status_len);
	sqlite3_finalize(stmt);
	return r;
}

/* ---- Sessions --------------------------------------------------------- */

#define SESSION_SELECT                                                         \
	"SELECT id, ticket_id, technician_id, nameplate, state, created_at,"   \
	" expires_at, info, pake_a, pake_b, conf_b, agent_facts, resume_hash"  \
	" FROM sessions"

static bool valid_state(const char *state)
{
	static const char *const states[] = {
		"waiting", "joined", "paired",	 "ended",
		"burned",  "expired", "declined",
	};
	size_t i;

	for (i = 0; state && i < ARRAY_SIZE(states); i++) {
		if (!strcmp(state, states[i]))
			return true;
	}
	return false;
}

/* Fills s from a SESSION_SELECT row. */
static int session_row(sqlite3_stmt *stmt, struct tether_store_session *s)
{
	char **strs[] = { &s->info, &s->pake_a, &s->pake_b, &s->conf_b,
			  &s->agent_facts };
	size_t i;
	int r;

	s->id = sqlite3_column_int64(stmt, 0);
	s->ticket_id = sqlite3_column_int64(stmt, 1);
	s->technician_id = sqlite3_column_int64(stmt, 2);
	s->created_at = sqlite3_column_int64(stmt, 5);
	s->expires_at = sqlite3_column_int64(stmt, 6);
	r = col_copy(stmt, 3, s->nameplate, sizeof(s->nameplate));
	if (!r)
		r = col_copy(stmt, 4, s->state, sizeof(s->state));
	for (i = 0; i < ARRAY_SIZE(strs) && !r; i++)
		r = col_dup(stmt, 7 + (int)i, strs[i]);
	if (!r)
		r = col_hash(stmt, 12, &s->has_resume, s->resume_hash);
	return r;
}

/* Runs a SESSION_SELECT for at most one row into out. */
static int session_query(struct tether_store *st, const char *sql,
			 const struct db_arg *args, size_t nargs,
			 struct tether_store_session *out)
{
	sqlite3_stmt *stmt;
	int r;

	memset(out, 0, sizeof(*out));
	r = db_prepare(st, sql, args, nargs, &stmt);
	if (r)
		return r;
	r = db_step(st, stmt);
	if (r == 0)
		r = TETHER_ERR_NOT_FOUND;
	if (r == 1)
		r = session_row(stmt, out);
	sqlite3_finalize(stmt);
	if (r)
		tether_store_session_clear(out);
	return r;
}

int tether_store_session_new(struct tether_store *st, int64_t ticket_id,
			     int64_t technician_id, const char *nameplate,
			     int64_t expires_at, const char *info,
			     const char *pake_a, int64_t *id)
{
	int r;

	/* The nameplate must fit struct tether_store_session when read. */
	if (!nameplate || !*nameplate ||
	    strlen(nameplate) >=
		    FIELD_SIZE(struct tether_store_session, nameplate))
		return TETHER_ERR_INVALID;
	/* A missing ticket fails the foreign key (NOT_FOUND); a live
	 * nameplate fails sessions_live_nameplate (EXISTS). */
	r = db_run(st,
		   "INSERT INTO sessions (ticket_id, technician_id, nameplate,"
		   " state, created_at, expires_at, info, pake_a)"
		   " VALUES (?, ?, ?, 'waiting', ?, ?, ?, ?)",
		   DB_ARGS(A_INT(ticket_id), A_INT(technician_id),
			   A_TEXT(nameplate), A_INT(time(NULL)),
			   A_INT(expires_at), A_TEXT(info), A_TEXT(pake_a)),
		   NULL);
	if (!r && id)
		*id = sqlite3_last_insert_rowid(st->db);
	return r;
}

int tether_store_session_get(struct tether_store *st, int64_t id,
			     struct tether_store_session *out)
{
	return session_query(st, SESSION_SELECT " WHERE id = ?",
			     DB_ARGS(A_INT(id)), out);
}

int tether_store_session_by_nameplate(struct tether_store *st,
				      const char *nameplate,
				      struct tether_store_session *out)
{
	return session_query(st,
			     SESSION_SELECT " WHERE nameplate = ?"
					    " ORDER BY id DESC LIMIT 1",
			     DB_ARGS(A_TEXT(nameplate)), out);
}

int tether_store_session_live_for_ticket(struct tether_store *st,
					 int64_t ticket_id,
					 struct tether_store_session *out)
{
	return session_query(st,
			     SESSION_SELECT " WHERE ticket_id = ? AND state IN "
			     LIVE_STATES " ORDER BY id DESC LIMIT 1",
			     DB_ARGS(A_INT(ticket_id)), out);
}

void tether_store_session_clear(struct tether_store_session *s)
{
	if (!s)
		return;
	tether_free(s->info);
	tether_free(s->pake_a);
	tether_free(s->pake_b);
	tether_free(s->conf_b);
	tether_free(s->agent_facts);
	/* Also wipes the resume hash. */
	tether_wipe(s, sizeof(*s));
}

bool tether_store_nameplate_in_use(struct tether_store *st,
				   const char *nameplate)
{
	int r;

	r = db_exists(st,
		      "SELECT 1 FROM sessions WHERE nameplate = ?"
		      " AND state IN " LIVE_STATES " LIMIT 1",
		      DB_ARGS(A_TEXT(nameplate)));
	/* On error say "in use", so that the caller picks another. */
	return r != 0;
}

/* Why a join changed nothing: no session, expired, or not waiting. */
static int join_refused(struct tether_store *st, int64_t id)
{
	int r;

	r = db_exists(st, "SELECT 1 FROM sessions WHERE id = ?",
		      DB_ARGS(A_INT(id)));
	if (r == 0)
		return TETHER_ERR_NOT_FOUND;
	if (r < 0)
		return r;
	r = db_exists(st,
		      "SELECT 1 FROM sessions"
		      " WHERE id = ? AND state = 'waiting'",
		      DB_ARGS(A_INT(id)));
	if (r < 0)
		return r;
	return r ? TETHER_ERR_EXPIRED : TETHER_ERR_STATE;
}

int tether_store_session_join(struct tether_store *st, int64_t id,
			      const char *agent_facts, const char *pake_b,
			      const char *conf_b,
			      const uint8_t resume_hash[32])
{
	int changes = 0;
	int r;

	/* Atomic test-and-set: of two racing agents only one gets in.  A
	 * session past its expiry is refused even before the sweep. */
	r = db_run(st,
		   "UPDATE sessions SET state = 'joined', agent_facts = ?,"
		   " pake_b = ?, conf_b = ?, resume_hash = ?"
		   " WHERE id = ? AND state = 'waiting' AND expires_at > ?",
		   DB_ARGS(A_TEXT(agent_facts), A_TEXT(pake_b), A_TEXT(conf_b),
			   A_HASH(resume_hash), A_INT(id), A_INT(time(NULL))),
		   &changes);
	if (!r && !changes)
		r = join_refused(st, id);
	return r;
}

int tether_store_session_set_state(struct tether_store *st, int64_t id,
				   const char *state)
{
	int changes = 0;
	int r;

	if (!valid_state(state))
		return TETHER_ERR_INVALID;
	r = db_run(st, "UPDATE sessions SET state = ? WHERE id = ?",
		   DB_ARGS(A_TEXT(state), A_INT(id)), &changes);
	if (!r && !changes)
		r = TETHER_ERR_NOT_FOUND;
	return r;
}

int tether_store_session_expire(struct tether_store *st, int64_t now, int *n)
{
	int changes = 0;
	int r;

	r = db_run(st,
		   "UPDATE sessions SET state = 'expired'"
		   " WHERE state = 'waiting' AND expires_at <= ?",
		   DB_ARGS(A_INT(now)), &changes);
	if (n)
		*n = r ? 0 : changes;
	return r;
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
	const char *text[3];	/* actor, event, detail (may be NULL) */
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
static int audit_tail(struct tether_store *st, struct audit_row *row)
{
	sqlite3_stmt *stmt;
	bool has = false;
	int r;

	memset(row->prev, 0, sizeof(row->prev));
	row->id = 1;
	r = db_prepare(st,
		       "SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1",
		       NULL, 0, &stmt);
	if (r)
		return r;
	r = db_step(st, stmt);
	if (r == 1) {
		row->id = sqlite3_column_int64(stmt, 0) + 1;
		r = col_hash(stmt, 1, &has, row->prev);
		if (!r && !has)
			r = TETHER_ERR_FORMAT;
	}
	sqlite3_finalize(stmt);
	return r;
}

static int audit_insert(struct tether_store *st, struct audit_row *row)
{
	uint8_t hash[TETHER_SHA256_LEN];
	int r;

	r = audit_tail(st, row);
	if (!r)
		r = audit_hash(row, hash);
	if (r)
		return r;
	/* The id is explicit because the hash covers it. */
	return db_run(st,
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

int tether_store_audit(struct tether_store *st, const char *actor,
		       int64_t ticket_id, int64_t session_id,
		       const char *event, const char *detail)
{
	struct audit_row row = {
		.ts = time(NULL),
		.ticket_id = ticket_id,
		.session_id = session_id,
		.text = { actor, event, detail },
	};
	size_t i;
	int r;

	if (!actor || !event)
		return TETHER_ERR_INVALID;
	for (i = 0; i < 3; i++)
		row.len[i] = row.text[i] ? strlen(row.text[i]) : 0;
	/* IMMEDIATE: read the tail and append under one write lock, so a
	 * second process cannot fork the chain. */
	r = db_exec(st, "BEGIN IMMEDIATE");
	if (!r)
		r = db_end(st, audit_insert(st, &row));
	return r;
}

/* Reads one row of the verify query; the texts point into stmt. */
static int audit_read(sqlite3_stmt *stmt, struct audit_row *row,
		      uint8_t hash[TETHER_SHA256_LEN])
{
	static const int cols[3] = { 2, 5, 6 };	/* actor, event, detail */
	bool has_prev = false;
	bool has_hash = false;
	size_t i;
	int r;

	row->id = sqlite3_column_int64(stmt, 0);
	row->ts = sqlite3_column_int64(stmt, 1);
	row->ticket_id = sqlite3_column_int64(stmt, 3);
	row->session_id = sqlite3_column_int64(stmt, 4);
	for (i = 0; i < 3; i++) {
		row->text[i] =
			(const char *)sqlite3_column_text(stmt, cols[i]);
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
	if (row.id != *last_id + 1 ||
	    memcmp(row.prev, prev, TETHER_SHA256_LEN))
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

int tether_store_audit_verify(struct tether_store *st)
{
	uint8_t prev[TETHER_SHA256_LEN] = { 0 };
	int64_t last_id = 0;
	sqlite3_stmt *stmt;
	int r;

	r = db_prepare(st,
		       "SELECT id, ts, actor, ticket_id, session_id, event,"
		       " detail, prev_hash, hash FROM audit ORDER BY id",
		       NULL, 0, &stmt);
	if (r)
		return r;
	while ((r = db_step(st, stmt)) == 1) {
		r = audit_check(stmt, prev, &last_id);
		if (r)
			break;
	}
	sqlite3_finalize(stmt);
	return r;
}

/* ---- Counts for metrics ----------------------------------------------- */

static const struct col_spec count_session_cols[] = {
	{ "state", COL_TEXT },
	{ "n", COL_INT },
};

static const struct col_spec count_ticket_cols[] = {
	{ "status", COL_TEXT },
	{ "source", COL_TEXT },
	{ "n", COL_INT },
};

static const struct row_shape count_session_shape = SHAPE(count_session_cols);
static const struct row_shape count_ticket_shape = SHAPE(count_ticket_cols);

int tether_store_counts(struct tether_store *st, json_t **out)
{
	json_t *sessions = NULL, *tickets = NULL, *checks = NULL;
	json_t *agents = NULL;
	int r;

	*out = NULL;
	r = query_json(st,
		       "SELECT state, COUNT(*) FROM sessions GROUP BY state"
		       " ORDER BY state",
		       NULL, 0, &count_session_shape, &sessions);
	if (!r)
		r = query_json(st,
			       "SELECT status, source, COUNT(*) FROM tickets"
			       " GROUP BY status, source ORDER BY status, source",
			       NULL, 0, &count_ticket_shape, &tickets);
	if (!r)
		r = query_json(st,
			       "SELECT state, COUNT(*) FROM health"
			       " GROUP BY state ORDER BY state",
			       NULL, 0, &count_session_shape, &checks);
	if (!r)
		r = query_json(st, "SELECT 'enrolled', COUNT(*) FROM agents",
			       NULL, 0, &count_session_shape, &agents);
	if (!r) {
		*out = json_pack("{s:o, s:o, s:o, s:O}", "sessions", sessions,
				 "tickets", tickets, "checks", checks, "agents",
				 json_object_get(json_array_get(agents, 0),
						 "n"));
		json_decref(agents);
		return *out ? 0 : TETHER_ERR_NOMEM;
	}
	json_decref(sessions);
	json_decref(tickets);
	json_decref(checks);
	json_decref(agents);
	return r;
}

/* ---- Enrolled agents -------------------------------------------------- */

int tether_store_enroll_token_new(struct tether_store *st,
				  const uint8_t token_hash[32],
				  int64_t expires_at)
{
	if (!token_hash)
		return TETHER_ERR_INVALID;
	return db_run(st,
		      "INSERT INTO enroll_tokens (token_hash, created_at,"
		      " expires_at) VALUES (?, ?, ?)",
		      DB_ARGS(A_HASH(token_hash), A_INT(time(NULL)),
			      A_INT(expires_at)),
		      NULL);
}

/* Inside the enrol transaction: the token's id if usable. */
static int token_usable(struct tether_store *st, const uint8_t hash[32],
			int64_t *token_id)
{
	sqlite3_stmt *stmt;
	int r;

	r = db_prepare(st,
		       "SELECT id, expires_at, used_at FROM enroll_tokens"
		       " WHERE token_hash = ?",
		       DB_ARGS(A_HASH(hash)), &stmt);
	if (r)
		return r;
	r = db_step(st, stmt);
	if (r == 0 || (r == 1 && sqlite3_column_type(stmt, 2) != SQLITE_NULL))
		r = TETHER_ERR_NOT_FOUND;
	else if (r == 1 && sqlite3_column_int64(stmt, 1) <= time(NULL))
		r = TETHER_ERR_EXPIRED;
	else if (r == 1) {
		*token_id = sqlite3_column_int64(stmt, 0);
		r = 0;
	}
	sqlite3_finalize(stmt);
	return r;
}

static int agent_enroll_tx(struct tether_store *st, const uint8_t hash[32],
			   const char *name, const uint8_t pubkey[32],
			   const char *labels, const char *facts, int64_t *id,
			   bool *replaced)
{
	int64_t token_id = 0, agent_id;
	int changes = 0;
	int r;

	r = token_usable(st, hash, &token_id);
	if (r)
		return r;
	r = db_run(st,
		   "UPDATE agents SET pubkey = ?, labels = ?, facts = ?,"
		   " enrolled_at = ? WHERE name = ?",
		   DB_ARGS(A_HASH(pubkey), A_TEXT(labels), A_TEXT(facts),
			   A_INT(time(NULL)), A_TEXT(name)),
		   &changes);
	if (r)
		return r;
	*replaced = changes > 0;
	if (!changes)
		r = db_run(st,
			   "INSERT INTO agents (name, pubkey, labels, facts,"
			   " enrolled_at) VALUES (?, ?, ?, ?, ?)",
			   DB_ARGS(A_TEXT(name), A_HASH(pubkey),
				   A_TEXT(labels), A_TEXT(facts),
				   A_INT(time(NULL))),
			   NULL);
	if (r)
		return r;
	agent_id = sqlite3_last_insert_rowid(st->db);
	if (changes) {
		sqlite3_stmt *stmt;

		r = db_prepare(st, "SELECT id FROM agents WHERE name = ?",
			       DB_ARGS(A_TEXT(name)), &stmt);
		if (r)
			return r;
		agent_id = db_step(st, stmt) == 1 ?
				   sqlite3_column_int64(stmt, 0) : 0;
		sqlite3_finalize(stmt);
	}
	if (!agent_id)
		return TETHER_ERR_DB;
	*id = agent_id;
	return db_run(st,
		      "UPDATE enroll_tokens SET used_at = ?, agent_id = ?"
		      " WHERE id = ?",
		      DB_ARGS(A_INT(time(NULL)), A_INT(agent_id),
			      A_INT(token_id)),
		      NULL);
}

int tether_store_agent_enroll(struct tether_store *st,
			      const uint8_t token_hash[32], const char *name,
			      const uint8_t pubkey[32], const char *labels,
			      const char *facts, int64_t *id, bool *replaced)
{
	int64_t agent_id = 0;
	bool rep = false;
	int r;

	if (!token_hash || !name || !*name || !pubkey ||
	    strlen(name) > TETHER_STORE_AGENT_NAME_MAX)
		return TETHER_ERR_INVALID;
	r = db_exec(st, "BEGIN IMMEDIATE");
	if (!r)
		r = db_end(st, agent_enroll_tx(st, token_hash, name, pubkey,
					       labels, facts, &agent_id,
					       &rep));
	if (!r && id)
		*id = agent_id;
	if (!r && replaced)
		*replaced = rep;
	return r;
}

int tether_store_agent_get(struct tether_store *st, const char *name,
			   struct tether_store_agent *out)
{
	sqlite3_stmt *stmt;
	const void *key;
	int r;

	memset(out, 0, sizeof(*out));
	if (!name)
		return TETHER_ERR_INVALID;
	r = db_prepare(st,
		       "SELECT id, name, pubkey, last_seq FROM agents"
		       " WHERE name = ?",
		       DB_ARGS(A_TEXT(name)), &stmt);
	if (r)
		return r;
	r = db_step(st, stmt);
	if (r == 0)
		r = TETHER_ERR_NOT_FOUND;
	if (r == 1) {
		out->id = sqlite3_column_int64(stmt, 0);
		r = col_copy(stmt, 1, out->name, sizeof(out->name));
		key = sqlite3_column_blob(stmt, 2);
		if (!r && (!key || sqlite3_column_bytes(stmt, 2) != 32))
			r = TETHER_ERR_FORMAT;
		if (!r)
			memcpy(out->pubkey, key, 32);
		out->last_seq = sqlite3_column_int64(stmt, 3);
	}
	sqlite3_finalize(stmt);
	return r;
}

int tether_store_agent_seen(struct tether_store *st, int64_t id)
{
	return db_run(st, "UPDATE agents SET last_seen = ? WHERE id = ?",
		      DB_ARGS(A_INT(time(NULL)), A_INT(id)), NULL);
}

/* Worst first: CRITICAL, UNKNOWN, WARNING, OK (as Icinga orders them). */
#define STATE_RANK                                                             \
	"CASE state WHEN 'CRITICAL' THEN 3 WHEN 'UNKNOWN' THEN 2"              \
	" WHEN 'WARNING' THEN 1 ELSE 0 END"

static const struct col_spec agent_cols[] = {
	{ "name", COL_TEXT },	     { "labels", COL_AGENT },
	{ "facts", COL_AGENT },	     { "enrolled_at", COL_TIME },
	{ "last_seen", COL_TIME },   { "worst", COL_TEXT },
	{ "checks", COL_INT },
};

int tether_store_agent_list(struct tether_store *st, json_t **out)
{
	static const struct row_shape shape = SHAPE(agent_cols);

	return query_json(
	    st,
	    "SELECT a.name, a.labels, a.facts, a.enrolled_at, a.last_seen,"
	    " (SELECT state FROM health h WHERE h.agent_id = a.id"
	    "  ORDER BY " STATE_RANK " DESC LIMIT 1),"
	    " (SELECT COUNT(*) FROM health h WHERE h.agent_id = a.id)"
	    " FROM agents a ORDER BY a.name",
	    NULL, 0, &shape, out);
}

/* ---- Health ----------------------------------------------------------- */

/* Results kept per check in health_history. */
#define HISTORY_KEEP 500
#define FLAP_WINDOW_S 3600

struct health_prev {
	bool found;
	char state[16];
	char hard_state[16];
	int64_t since;
	int64_t hard_since;
	int64_t ticket_id;
	bool flapping;
};

static int health_prev(struct tether_store *st, int64_t agent_id,
		       const char *check, struct health_prev *hp)
{
	sqlite3_stmt *stmt;
	int r;

	memset(hp, 0, sizeof(*hp));
	r = db_prepare(st,
		       "SELECT state, hard_state, since, hard_since,"
		       " (SELECT t.id FROM tickets t WHERE t.id = h.ticket_id"
		       "  AND t.status = 'open'), flapping"
		       " FROM health h WHERE agent_id = ? AND check_name = ?",
		       DB_ARGS(A_INT(agent_id), A_TEXT(check)), &stmt);
	if (r)
		return r;
	r = db_step(st, stmt);
	if (r == 1) {
		hp->found = true;
		r = col_copy(stmt, 0, hp->state, sizeof(hp->state));
		if (!r)
			r = col_copy(stmt, 1, hp->hard_state,
				     sizeof(hp->hard_state));
		hp->since = sqlite3_column_int64(stmt, 2);
		hp->hard_since = sqlite3_column_int64(stmt, 3);
		hp->ticket_id = sqlite3_column_int64(stmt, 4);
		hp->flapping = sqlite3_column_int64(stmt, 5) != 0;
	}
	sqlite3_finalize(stmt);
	return r < 0 ? r : 0;
}

static int64_t agent_last_seq(struct tether_store *st, int64_t agent_id,
			      int *err)
{
	sqlite3_stmt *stmt;
	int64_t seq = 0;
	int r;

	r = db_prepare(st, "SELECT last_seq FROM agents WHERE id = ?",
		       DB_ARGS(A_INT(agent_id)), &stmt);
	if (!r) {
		r = db_step(st, stmt);
		if (r == 1)
			seq = sqlite3_column_int64(stmt, 0);
		r = r == 0 ? TETHER_ERR_NOT_FOUND : r < 0 ? r : 0;
		sqlite3_finalize(stmt);
	}
	*err = r;
	return seq;
}

static int hard_changes_since(struct tether_store *st, int64_t agent_id,
			      const char *check, int64_t since, int *n)
{
	sqlite3_stmt *stmt;
	int r;

	*n = 0;
	r = db_prepare(st,
		       "SELECT COUNT(*) FROM health_history WHERE agent_id = ?"
		       " AND check_name = ? AND hard_change = 1 AND ts > ?",
		       DB_ARGS(A_INT(agent_id), A_TEXT(check), A_INT(since)),
		       &stmt);
	if (r)
		return r;
	r = db_step(st, stmt);
	if (r == 1)
		*n = (int)sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	return r < 0 ? r : 0;
}

static int health_record_tx(struct tether_store *st, int64_t agent_id,
			    const struct tether_store_result *res,
			    struct tether_store_health_change *out)
{
	bool hard = strcmp(res->type, "HARD") == 0;
	struct health_prev hp;
	const char *hard_state;
	int64_t since, hard_since;
	int r;

	if (res->seq <= agent_last_seq(st, agent_id, &r) || r) {
		out->duplicate = r == 0;
		return r;
	}
	r = health_prev(st, agent_id, res->check, &hp);
	if (r)
		return r;
	if (!hp.found) {
		/* The agent's checks are full: the row at offset MAX-1 exists. */
		r = db_exists(st,
			      "SELECT 1 FROM health WHERE agent_id = ?"
			      " LIMIT 1 OFFSET ?",
			      DB_ARGS(A_INT(agent_id),
				      A_INT(TETHER_STORE_CHECKS_MAX - 1)));
		if (r < 0)
			return r;
		if (r > 0) {
			out->over_limit = true;
			return db_run(st,
				      "UPDATE agents SET last_seq = ?,"
				      " last_seen = ? WHERE id = ?",
				      DB_ARGS(A_INT(res->seq),
					      A_INT(time(NULL)),
					      A_INT(agent_id)),
				      NULL);
		}
	}
	/* A check never seen before was fine as far as anyone knew. */
	snprintf(out->prev_hard, sizeof(out->prev_hard), "%s",
		 hp.found ? hp.hard_state : "OK");
	out->ticket_id = hp.ticket_id;
	out->flapping = hp.flapping;
	out->hard_change = hard && strcmp(res->state, out->prev_hard) != 0;
	since = hp.found && strcmp(hp.state, res->state) == 0 ? hp.since
							       : res->ts;
	hard_state = hard ? res->state : out->prev_hard;
	hard_since = hp.found && !out->hard_change ? hp.hard_since : res->ts;
	r = db_run(st,
		   "INSERT INTO health (agent_id, check_name, state, type,"
		   " attempt, max_attempts, output, perfdata, ts, since,"
		   " hard_state, hard_since) VALUES (?1, ?2, ?3, ?4, ?5, ?6,"
		   " ?7, ?8, ?9, ?10, ?11, ?12)"
		   " ON CONFLICT (agent_id, check_name) DO UPDATE SET"
		   " state = ?3, type = ?4, attempt = ?5, max_attempts = ?6,"
		   " output = ?7, perfdata = ?8, ts = ?9, since = ?10,"
		   " hard_state = ?11, hard_since = ?12",
		   DB_ARGS(A_INT(agent_id), A_TEXT(res->check),
			   A_TEXT(res->state), A_TEXT(res->type),
			   A_INT(res->attempt), A_INT(res->max_attempts),
			   A_TEXT(res->output), A_TEXT(res->perfdata),
			   A_INT(res->ts), A_INT(since), A_TEXT(hard_state),
			   A_INT(hard_since)),
		   NULL);
	if (!r)
		r = db_run(st,
			   "INSERT INTO health_history (agent_id, check_name,"
			   " seq, ts, state, type, attempt, output, perfdata,"
			   " hard_change) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			   DB_ARGS(A_INT(agent_id), A_TEXT(res->check),
				   A_INT(res->seq), A_INT(res->ts),
				   A_TEXT(res->state), A_TEXT(res->type),
				   A_INT(res->attempt), A_TEXT(res->output),
				   A_TEXT(res->perfdata),
				   A_INT(out->hard_change)),
			   NULL);
	if (!r)
		r = db_run(st,
			   "DELETE FROM health_history WHERE agent_id = ?1"
			   " AND check_name = ?2 AND id <= (SELECT id FROM"
			   " health_history WHERE agent_id = ?1 AND"
			   " check_name = ?2 ORDER BY id DESC LIMIT 1"
			   " OFFSET ?3)",
			   DB_ARGS(A_INT(agent_id), A_TEXT(res->check),
				   A_INT(HISTORY_KEEP)),
			   NULL);
	if (!r)
		r = db_run(st,
			   "UPDATE agents SET last_seq = ?, last_seen = ?"
			   " WHERE id = ?",
			   DB_ARGS(A_INT(res->seq), A_INT(time(NULL)),
				   A_INT(agent_id)),
			   NULL);
	if (!r)
		r = hard_changes_since(st, agent_id, res->check,
				       res->ts - FLAP_WINDOW_S,
				       &out->hard_changes_1h);
	return r;
}

int tether_store_health_record(struct tether_store *st, int64_t agent_id,
			       const struct tether_store_result *res,
			       struct tether_store_health_change *out)
{
	int r;

	memset(out, 0, sizeof(*out));
	if (!res || !res->check || !res->state || !res->type)
		return TETHER_ERR_INVALID;
	r = db_exec(st, "BEGIN IMMEDIATE");
	if (!r)
		r = db_end(st, health_record_tx(st, agent_id, res, out));
	return r;
}

int tether_store_health_set_ticket(struct tether_store *st, int64_t agent_id,
				   const char *check, int64_t ticket_id)
{
	return db_run(st,
		      "UPDATE health SET ticket_id = ? WHERE agent_id = ?"
		      " AND check_name = ?",
		      DB_ARGS(A_ID(ticket_id), A_INT(agent_id), A_TEXT(check)),
		      NULL);
}

int tether_store_health_set_flapping(struct tether_store *st,
				     int64_t agent_id, const char *check,
				     bool flapping)
{
	return db_run(st,
		      "UPDATE health SET flapping = ? WHERE agent_id = ?"
		      " AND check_name = ?",
		      DB_ARGS(A_INT(flapping), A_INT(agent_id), A_TEXT(check)),
		      NULL);
}

static const struct col_spec health_cols[] = {
	{ "agent", COL_TEXT },	      { "check", COL_TEXT },
	{ "state", COL_TEXT },	      { "type", COL_TEXT },
	{ "attempt", COL_INT },	      { "max_attempts", COL_INT },
	{ "since", COL_TIME },	      { "last", COL_TIME },
	{ "output", COL_TEXT },	      { "perfdata", COL_DETAIL },
	{ "ticket", COL_TICKET },     { "flapping", COL_INT },
};

int tether_store_health_list(struct tether_store *st, const char *agent,
			     json_t **out)
{
	static const struct row_shape shape = SHAPE(health_cols);
	int r;

	*out = NULL;
	if (agent) {
		r = db_exists(st, "SELECT 1 FROM agents WHERE name = ?",
			      DB_ARGS(A_TEXT(agent)));
		if (r <= 0)
			return r ? r : TETHER_ERR_NOT_FOUND;
	}
	r = query_json(st,
		       "SELECT a.name, h.check_name, h.state, h.type,"
		       " h.attempt, h.max_attempts, h.since, h.ts, h.output,"
		       " h.perfdata, h.ticket_id, h.flapping FROM health h"
		       " JOIN agents a ON a.id = h.agent_id"
		       " WHERE ?1 IS NULL OR a.name = ?1"
		       " ORDER BY a.name, h.check_name",
		       DB_ARGS(A_TEXT(agent)), &shape, out);
	if (r)
		return r;
	/* A ticket column of NULL reads "T-0": say null instead. */
	{
		const char *t;
		json_t *row;
		size_t i;

		json_array_foreach(*out, i, row) {
			t = json_string_value(json_object_get(row, "ticket"));
			if (t && strcmp(t, "T-0") == 0)
				json_object_set_new(row, "ticket", json_null());
		}
	}
	return 0;
}

int tether_store_diag_wanted(struct tether_store *st, int64_t agent_id,
			     int64_t ticket_id)
{
	return db_exists(st,
			 "SELECT 1 FROM health WHERE agent_id = ?1 AND"
			 " ticket_id = ?2 AND NOT EXISTS (SELECT 1 FROM"
			 " attachments WHERE ticket_id = ?2 AND kind = 'diag'"
			 " AND source LIKE 'agent:%')",
			 DB_ARGS(A_INT(agent_id), A_INT(ticket_id)));
}

/* ---- Attachments ------------------------------------------------------ */

int tether_store_attach(struct tether_store *st, int64_t ticket_id,
			const char *kind, const char *source, const char *data,
			int64_t *id)
{
	int r;

	if (!kind || !source || !data)
		return TETHER_ERR_INVALID;
	r = db_run(st,
		   "INSERT INTO attachments (ticket_id, kind, source,"
		   " created_at, data) VALUES (?, ?, ?, ?, ?)",
		   DB_ARGS(A_INT(ticket_id), A_TEXT(kind), A_TEXT(source),
			   A_INT(time(NULL)), A_TEXT(data)),
		   NULL);
	if (!r && id)
		*id = sqlite3_last_insert_rowid(st->db);
	return r;
}

static const struct col_spec attachment_cols[] = {
	{ "data", COL_TEXT },
	{ "created_at", COL_TIME },
	{ "source", COL_TEXT },
};

int tether_store_attachment_latest(struct tether_store *st, int64_t ticket_id,
				   const char *kind, json_t **out)
{
	static const struct row_shape shape = SHAPE(attachment_cols);
	json_t *arr = NULL;
	int r;

	*out = NULL;
	r = query_json(st,
		       "SELECT data, created_at, source FROM attachments"
		       " WHERE ticket_id = ? AND kind = ?"
		       " ORDER BY id DESC LIMIT 1",
		       DB_ARGS(A_INT(ticket_id), A_TEXT(kind)), &shape, &arr);
	if (r)
		return r;
	*out = json_incref(json_array_get(arr, 0));
	json_decref(arr);
	return *out ? 0 : TETHER_ERR_NOT_FOUND;
}
