/*
 * The relay's durable state behind one narrow interface: technicians,
 * tickets, sessions, the append-only hash-chained audit trail, enrolled
 * agents with their checks, and attachments.  Callers get C structs; the
 * store owns no JSON, no formatting and no policy.  Texts it is given as
 * JSON (facts, labels, audit details, perfdata, pairing info, bundles) are
 * opaque strings it keeps and gives back.  Times are Unix seconds (int64),
 * ticket ids plain numbers; the relay words them (tether/ctrl.h, id.h).
 * What a result means (is a check flapping, is a bundle wanted) the relay
 * decides from the facts the store reports.
 *
 * The functions below check their arguments, clear their out-parameters
 * on entry, free whatever a failed backend call left half-filled, and
 * dispatch through struct relay_store_ops to a backend: relay-store-
 * sqlite.c today (SQLite, WAL, synchronous=FULL so that an acknowledged
 * write survives a crash); a second backend implements the same ops.
 * Every action returns 0 or a negative TETHER_ERR_*: TETHER_ERR_NOMEM,
 * TETHER_ERR_DB for the backend's own failures, and the ones each
 * prototype names.  A failed write changes nothing.
 */
#ifndef RELAY_STORE_H
#define RELAY_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The protocol's vocabulary (session states, ticket status...): enums only. */
#include <tether/crypto.h>
#include <tether/code.h>
#include <tether/proto.h>
#include <tether/sign.h>
#include <tether/spake2.h>
#include <tether/id.h>

struct relay_store;

#define RELAY_STORE_HASH_LEN TETHER_SHA256_LEN
#define RELAY_STORE_SESSION_STATES (TETHER_SESSION_DECLINED + 1)
#define RELAY_STORE_CHECK_STATES (TETHER_CHECK_UNKNOWN + 1)
#define RELAY_STORE_STATUSES (TETHER_TICKET_CLOSED + 1)
#define RELAY_STORE_SOURCES (TETHER_SOURCE_HEALTH + 1)

/*
 * relay-store-open.c: opens (creating if needed, mode 0600) the store at
 * where, a file path for the SQLite backend.  *out is closed with
 * relay_store_close().
 */
int relay_store_open(const char *where, struct relay_store **out);
/* NULL is fine. */
void relay_store_close(struct relay_store *st);

/* ---- Technicians ---- */

struct relay_store_tech {
	int64_t id;
	char name[TETHER_ID_NAME_MAX + 1];
	enum tether_tech_role role;
	int64_t created_at;
	uint8_t token_hash[RELAY_STORE_HASH_LEN]; /* SHA-256 of the login
						     token's secret; zero in
						     lists */
	/* The key `tether login` registered; not in lists. */
	bool has_key;
	uint8_t pubkey[TETHER_SIGN_PUB_LEN];
	/* token_hash registered a key already: the token is spent. */
	bool token_spent;
	int64_t token_expires_at; /* Unix seconds; 0: never; not in lists */
};

/*
 * name must be a name (tether_id_name_valid); TETHER_ERR_EXISTS if taken,
 * TETHER_ERR_INVALID for bad arguments.  *id (may be NULL): the new id,
 * never one a removed technician had.
 */
int relay_store_tech_add(struct relay_store *st, const char *name,
			 enum tether_tech_role role,
			 const uint8_t token_hash[RELAY_STORE_HASH_LEN],
			 int64_t *id);
/* TETHER_ERR_NOT_FOUND if no technician has this name. */
int relay_store_tech_remove(struct relay_store *st, const char *name);
/* The technician with this id gets role; TETHER_ERR_NOT_FOUND. */
int relay_store_tech_set_role(struct relay_store *st, int64_t id,
			      enum tether_tech_role role);
/* Fills *out (nothing to free); TETHER_ERR_NOT_FOUND. */
int relay_store_tech_get(struct relay_store *st, int64_t id,
			 struct relay_store_tech *out);
/* The same by name; TETHER_ERR_NOT_FOUND. */
int relay_store_tech_by_name(struct relay_store *st, const char *name,
			     struct relay_store_tech *out);
/*
 * Registers pubkey as technician id's key (replacing any earlier one) and
 * so spends the login token whose hash is token_hash, in one write:
 * TETHER_ERR_EXPIRED if that is no longer the technician's unspent token
 * (spent meanwhile, replaced, or the technician removed).
 */
int relay_store_tech_register_key(
    struct relay_store *st, int64_t id,
    const uint8_t token_hash[RELAY_STORE_HASH_LEN],
    const uint8_t pubkey[TETHER_SIGN_PUB_LEN]);
/*
 * Gives technician name a new login token (its hash), unspent; the
 * registered key stays until the token registers another.  *id (may be
 * NULL): the technician's.  TETHER_ERR_NOT_FOUND if there is none.
 */
int relay_store_tech_set_token(struct relay_store *st, const char *name,
			       const uint8_t token_hash[RELAY_STORE_HASH_LEN],
			       int64_t *id);
/*
 * Technician id's login token stops registering keys at expires_at (Unix
 * seconds).  TETHER_ERR_NOT_FOUND; TETHER_ERR_INVALID for a time <= 0.
 */
int relay_store_tech_token_expires(struct relay_store *st, int64_t id,
				   int64_t expires_at);
/*
 * *changed: whether another process (tether-relay technician remove on
 * the relay host) has committed to the store since the last call; the
 * first call says true.  Cheap enough for a timer: the running relay
 * re-checks its consoles' technicians only when it says so.
 */
int relay_store_changed_elsewhere(struct relay_store *st, bool *changed);
/* *out: *n technicians by id, freed with relay_store_techs_free(). */
int relay_store_tech_list(struct relay_store *st, struct relay_store_tech **out,
			  size_t *n);
void relay_store_techs_free(struct relay_store_tech *v, size_t n);

/* ---- Tickets ---- */

/* Strings are the struct's own: relay_store_ticket_clear() frees them. */
struct relay_store_ticket {
	int64_t id;
	char *title;
	char *customer; /* NULL: none */
	enum tether_ticket_status status;
	enum tether_ticket_source source;
	int64_t created_at;
	int64_t closed_at;     /* 0: open */
	char *resolution;      /* NULL: none */
	char *created_by;      /* the technician's name then; NULL: the relay */
	int64_t created_by_id; /* their id (never reused); 0: the relay */
	int64_t assignee_id;   /* the technician it is assigned to; 0: none */
	char *assignee;	       /* their name then; NULL: unassigned */
};

/*
 * created_by is a technician id whose name the ticket keeps (0 or an
 * unknown id: none).  TETHER_ERR_INVALID without a title.
 */
int relay_store_ticket_new(struct relay_store *st, const char *title,
			   const char *customer,
			   enum tether_ticket_source source, int64_t created_by,
			   int64_t *id);
/* Fills *out (clear it); TETHER_ERR_NOT_FOUND. */
int relay_store_ticket_get(struct relay_store *st, int64_t id,
			   struct relay_store_ticket *out);
/* Frees t's strings and zeroes it; NULL is fine. */
void relay_store_ticket_clear(struct relay_store_ticket *t);
/*
 * Which tickets a list holds: every member narrows it (zero, false or
 * NULL: not), all of them together.  Texts match as substrings, ignoring
 * the case of ASCII letters, with LIKE's wildcards taken literally.  A
 * new criterion is a new member here and a clause in the backend's one
 * WHERE, which the count of the rest shares.
 */
struct relay_store_ticket_filter {
	bool has_status;
	enum tether_ticket_status status;
	bool has_source;
	enum tether_ticket_source source;
	const char *customer; /* in the customer */
	const char *search;   /* in the title or the customer */
	int64_t before;	      /* ids below this one */
	size_t limit;	      /* at most this many; 0: no limit */
	/* assigned to technician assignee_id, or to nobody when it is 0 */
	bool has_assignee;
	int64_t assignee_id;
	/*
	 * 0: every ticket; else a technician's id: those that technician
	 * may see, unassigned, assigned to them or created by them.  The
	 * same rule as relay_policy_may_see() (relay-policy.c), kept in
	 * step with it, so that a page is full and its count of the rest
	 * is of what they may see.
	 */
	int64_t visible_to;
};

/*
 * *out: *n tickets, newest first, that f lets through (NULL: all), freed
 * with relay_store_tickets_free(); *more (may be NULL): how many more
 * match beyond the limit.  TETHER_ERR_INVALID for a status or source out
 * of range, or a negative id.
 */
int relay_store_ticket_list(struct relay_store *st,
			    const struct relay_store_ticket_filter *f,
			    struct relay_store_ticket **out, size_t *n,
			    int64_t *more);
void relay_store_tickets_free(struct relay_store_ticket *v, size_t n);
/*
 * Assigns the ticket to technician tech_id, whose name it keeps (0:
 * nobody).  TETHER_ERR_NOT_FOUND for no such ticket, or no such
 * technician (nothing changes then).
 */
int relay_store_ticket_assign(struct relay_store *st, int64_t id,
			      int64_t tech_id);
/* TETHER_ERR_NOT_FOUND; TETHER_ERR_STATE if already closed. */
int relay_store_ticket_close(struct relay_store *st, int64_t id,
			     const char *resolution);
/*
 * A closed ticket becomes open again, its closed_at and resolution
 * cleared (the audit keeps them).  TETHER_ERR_NOT_FOUND; TETHER_ERR_STATE
 * if it is open.
 */
int relay_store_ticket_reopen(struct relay_store *st, int64_t id);

/* ---- Comments on tickets ---- */

/* Strings are the comment's own: relay_store_comments_free() frees them. */
struct relay_store_comment {
	int64_t id;
	int64_t ticket_id;
	int64_t created_at;
	char *author; /* the technician's name then */
	char *text;
};

/*
 * Adds a comment by author (a name, kept as text) to a ticket: *id (may
 * be NULL) its id.  TETHER_ERR_NOT_FOUND for a missing ticket,
 * TETHER_ERR_INVALID without author or text.
 */
int relay_store_comment_add(struct relay_store *st, int64_t ticket_id,
			    const char *author, const char *text, int64_t *id);
/*
 * *out: the newest *n (at most limit; 0: all) comments of a ticket, oldest
 * first; *more (may be NULL): how many older ones there are besides.
 */
int relay_store_ticket_comments(struct relay_store *st, int64_t ticket_id,
				size_t limit, struct relay_store_comment **out,
				size_t *n, int64_t *more);
void relay_store_comments_free(struct relay_store_comment *v, size_t n);

/* ---- Sessions ---- */

/* Strings are the struct's own: relay_store_session_clear() frees them. */
struct relay_store_session {
	int64_t id;
	int64_t ticket_id;
	int64_t technician_id;
	char nameplate[TETHER_CODE_NAMEPLATE_MAX + 1];
	enum tether_session_state state;
	int64_t created_at;
	int64_t expires_at;
	char *info; /* JSON text the console posted (in the SPAKE2 AAD) */
	bool has_pake_a;
	uint8_t pake_a[TETHER_SPAKE2_ELEM_LEN];
	bool has_pake_b; /* the agent's half: pake_b and conf_b */
	uint8_t pake_b[TETHER_SPAKE2_ELEM_LEN];
	uint8_t conf_b[TETHER_SPAKE2_CONF_LEN];
	char *agent_facts; /* JSON text, or NULL */
	bool has_resume;
	uint8_t resume_hash[RELAY_STORE_HASH_LEN];
};

/*
 * A waiting session.  pake_a may be NULL.  TETHER_ERR_NOT_FOUND for a
 * missing ticket, TETHER_ERR_EXISTS if a live session holds the nameplate,
 * TETHER_ERR_INVALID for a nameplate that is not one.
 */
int relay_store_session_new(struct relay_store *st, int64_t ticket_id,
			    int64_t technician_id, const char *nameplate,
			    int64_t expires_at, const char *info,
			    const uint8_t *pake_a, int64_t *id);
/* These fill *out (clear it); TETHER_ERR_NOT_FOUND if there is none. */
int relay_store_session_get(struct relay_store *st, int64_t id,
			    struct relay_store_session *out);
/* The newest session with this nameplate, whatever its state. */
int relay_store_session_by_nameplate(struct relay_store *st,
				     const char *nameplate,
				     struct relay_store_session *out);
/* The newest session of a ticket that is waiting, joined or paired. */
int relay_store_session_live_for_ticket(struct relay_store *st,
					int64_t ticket_id,
					struct relay_store_session *out);
/* The newest session of a ticket, whatever its state. */
int relay_store_session_latest_for_ticket(struct relay_store *st,
					  int64_t ticket_id,
					  struct relay_store_session *out);
/* Frees s's strings and wipes it (the resume hash too); NULL is fine. */
void relay_store_session_clear(struct relay_store_session *s);
/* *out: *n sessions of a ticket, oldest first; relay_store_sessions_free(). */
int relay_store_ticket_sessions(struct relay_store *st, int64_t ticket_id,
				struct relay_store_session **out, size_t *n);
void relay_store_sessions_free(struct relay_store_session *v, size_t n);
/* True if a waiting, joined or paired session holds the nameplate (or on
 * an error, so that the caller picks another). */
bool relay_store_nameplate_in_use(struct relay_store *st,
				  const char *nameplate);
/*
 * How many nameplates are held into *n: by a waiting, joined or paired
 * session, or by a burned session created at or after burned_since (the
 * caller keeps those out of use for a while).
 */
int relay_store_nameplates_held(struct relay_store *st, int64_t burned_since,
				int64_t *n);
/*
 * Records the agent's side (facts may be NULL, resume_hash too): the
 * session becomes joined, if it is waiting and unexpired; else
 * TETHER_ERR_EXPIRED (still waiting, past its expiry), TETHER_ERR_STATE
 * (not waiting) or TETHER_ERR_NOT_FOUND.
 */
int relay_store_session_join(struct relay_store *st, int64_t id,
			     const char *agent_facts,
			     const uint8_t pake_b[TETHER_SPAKE2_ELEM_LEN],
			     const uint8_t conf_b[TETHER_SPAKE2_CONF_LEN],
			     const uint8_t *resume_hash);
/* TETHER_ERR_NOT_FOUND. */
int relay_store_session_set_state(struct relay_store *st, int64_t id,
				  enum tether_session_state state);
/*
 * Waiting sessions whose expiry is <= now become expired; *out: the *n
 * sessions that did, as they are now (for their audit rows), freed with
 * relay_store_sessions_free().
 */
int relay_store_session_expire(struct relay_store *st, int64_t now,
			       struct relay_store_session **out, size_t *n);

/* ---- Audit ---- */

/* Strings are the row's own: relay_store_audits_free() frees them. */
struct relay_store_audit {
	int64_t id; /* its place in the whole trail */
	int64_t ts;
	int64_t session_id; /* 0: none */
	char *actor;
	char *event;
	char *detail; /* as given (JSON text by the relay's habit), or NULL */
};

/*
 * Appends a row: actor and event as given, ticket_id and session_id (0:
 * none), detail (may be NULL).  Each row stores SHA-256 over the previous
 * row's hash and its own fields, so editing, inserting or deleting any but
 * the newest breaks relay_store_audit_verify().
 */
int relay_store_audit(struct relay_store *st, const char *actor,
		      int64_t ticket_id, int64_t session_id, const char *event,
		      const char *detail);
/* 0 if every row matches the chain; TETHER_ERR_CRYPTO if not. */
int relay_store_audit_verify(struct relay_store *st);
/* *out: *n rows of a ticket, oldest first; relay_store_audits_free(). */
int relay_store_ticket_audit(struct relay_store *st, int64_t ticket_id,
			     struct relay_store_audit **out, size_t *n);
void relay_store_audits_free(struct relay_store_audit *v, size_t n);

/*
 * A page of a ticket's audit, keyed by row id.  Neither bound: the newest
 * limit rows; before: the newest limit rows with a lower id; after: the
 * oldest limit rows with a higher id (not both).
 */
struct relay_store_audit_page {
	int64_t before; /* 0: none */
	int64_t after;	/* 0: none */
	size_t limit;	/* >= 1 */
};

/*
 * *out: the page's *n rows, oldest first; *more (may be NULL): the
 * ticket's rows beyond the page on the side it was taken from (older
 * ones, or newer ones with after).  TETHER_ERR_INVALID for both bounds or
 * no limit.
 */
int relay_store_ticket_audit_page(struct relay_store *st, int64_t ticket_id,
				  const struct relay_store_audit_page *pg,
				  struct relay_store_audit **out, size_t *n,
				  int64_t *more);

/* ---- Counts, for metrics ---- */

struct relay_store_counts {
	int64_t sessions[RELAY_STORE_SESSION_STATES];
	int64_t tickets[RELAY_STORE_STATUSES][RELAY_STORE_SOURCES];
	int64_t checks[RELAY_STORE_CHECK_STATES]; /* by latest state */
	int64_t agents;				  /* enrolled */
};

int relay_store_counts(struct relay_store *st, struct relay_store_counts *out);

/* ---- Enrolled agents (docs/protocol.md, "Enrolled agents") ---- */

struct relay_store_agent {
	int64_t id;
	char name[TETHER_ID_NAME_MAX + 1];
	uint8_t pubkey[TETHER_SIGN_PUB_LEN];
	int64_t last_seq; /* the newest check result stored */
};

/* An agent as the console's list shows it; relay_store_agent_rows_free(). */
struct relay_store_agent_row {
	char name[TETHER_ID_NAME_MAX + 1];
	char *labels; /* JSON text, or NULL */
	char *facts;  /* JSON text, or NULL */
	int64_t enrolled_at;
	int64_t last_seen;			    /* 0: never */
	int64_t checks;				    /* how many */
	int64_t by_state[RELAY_STORE_CHECK_STATES]; /* of them, by state */
};

/* Stores an enrolment token's hash, valid until expires_at. */
int relay_store_enroll_token_new(struct relay_store *st,
				 const uint8_t token_hash[RELAY_STORE_HASH_LEN],
				 int64_t expires_at);
/*
 * Spends the token and registers name with pubkey in one transaction:
 * TETHER_ERR_NOT_FOUND for an unknown or spent token, TETHER_ERR_EXPIRED
 * for an expired one.  An agent of the same name gets the new key
 * (*replaced true).  labels and facts: JSON texts, may be NULL.  *id and
 * *replaced may be NULL.
 */
int relay_store_agent_enroll(struct relay_store *st,
			     const uint8_t token_hash[RELAY_STORE_HASH_LEN],
			     const char *name,
			     const uint8_t pubkey[TETHER_SIGN_PUB_LEN],
			     const char *labels, const char *facts, int64_t *id,
			     bool *replaced);
/* Fills *out (nothing to free); TETHER_ERR_NOT_FOUND. */
int relay_store_agent_get(struct relay_store *st, const char *name,
			  struct relay_store_agent *out);
/* Sets last_seen to now. */
int relay_store_agent_seen(struct relay_store *st, int64_t id);
/*
 * Records seq as the agent's newest result without storing one (a result
 * the relay acknowledges but does not keep), and last_seen.
 */
int relay_store_agent_set_seq(struct relay_store *st, int64_t id, int64_t seq);
/* *out: *n agents by name; relay_store_agent_rows_free(). */
int relay_store_agent_list(struct relay_store *st,
			   struct relay_store_agent_row **out, size_t *n);
void relay_store_agent_rows_free(struct relay_store_agent_row *v, size_t n);

/* ---- Checks of enrolled agents ---- */

/* A check's latest result and hard state; strings are its own. */
struct relay_store_check {
	char agent[TETHER_ID_NAME_MAX + 1];
	char check[TETHER_ID_NAME_MAX + 1];
	enum tether_check_state state;
	enum tether_check_type type;
	int64_t attempt;
	int64_t max_attempts;
	char *output;	/* NULL: none */
	char *perfdata; /* JSON text, or NULL */
	int64_t ts;	/* of the result */
	int64_t since;	/* in this state since */
	enum tether_check_state hard_state;
	int64_t hard_since;
	int64_t ticket_id; /* the ticket its checks opened; 0: none */
	bool flapping;
};

/* What the store holds about a check before a new result. */
struct relay_store_check_prev {
	int64_t last_seq; /* the agent's newest stored seq */
	int64_t nchecks;  /* checks the agent has */
	bool found;	  /* this one among them: check is filled */
	struct relay_store_check check;
	bool ticket_open;     /* check.ticket_id is a ticket still open */
	int64_t hard_changes; /* results that changed its hard state, with a
				 ts after the time asked about */
};

/*
 * One result to record, with what the relay decided about it (since,
 * hard_state, hard_since, hard_change, flapping).  Strings borrowed.
 */
struct relay_store_result {
	int64_t seq;
	const char *check;
	enum tether_check_state state;
	enum tether_check_type type;
	int64_t attempt;
	int64_t max_attempts;
	const char *output;   /* may be NULL */
	const char *perfdata; /* JSON text, or NULL */
	int64_t ts;
	int64_t since;
	enum tether_check_state hard_state;
	int64_t hard_since;
	bool hard_change;
	bool flapping;
};

/*
 * What the store holds about agent_id's check: the agent's counters and,
 * if the check is known, its row, whether its ticket is open, and how many
 * results changed its hard state after the time since.  *out: clear with
 * relay_store_check_prev_clear().  TETHER_ERR_NOT_FOUND for no such agent.
 */
int relay_store_health_get(struct relay_store *st, int64_t agent_id,
			   const char *check, int64_t since,
			   struct relay_store_check_prev *out);
void relay_store_check_prev_clear(struct relay_store_check_prev *p);
/*
 * Stores res as the check's latest state, in its history (the newest few
 * hundred results are kept) and as the agent's newest seq and last_seen,
 * in one durable transaction.  TETHER_ERR_EXISTS (nothing stored) if seq
 * is not above the agent's newest: a resent result.
 */
int relay_store_health_record(struct relay_store *st, int64_t agent_id,
			      const struct relay_store_result *res);
/* Remembers the ticket (0: none) the check opened. */
int relay_store_health_set_ticket(struct relay_store *st, int64_t agent_id,
				  const char *check, int64_t ticket_id);
/* Whether a check of agent_id holds ticket_id as its ticket. */
int relay_store_health_holds_ticket(struct relay_store *st, int64_t agent_id,
				    int64_t ticket_id, bool *holds);
/*
 * *out: *n checks by agent and name, of one agent (agent a name;
 * TETHER_ERR_NOT_FOUND if unknown) or all (NULL); relay_store_checks_free().
 */
int relay_store_health_list(struct relay_store *st, const char *agent,
			    struct relay_store_check **out, size_t *n);
void relay_store_checks_free(struct relay_store_check *v, size_t n);

/* ---- Attachments (packed diagnostics bundles) ---- */

/* Strings are the attachment's own: relay_store_attachment_clear(). */
struct relay_store_attachment {
	char *kind;
	char *source; /* who attached it, as given */
	int64_t created_at;
	int64_t size; /* bytes of data */
	char *data;   /* NULL in lists */
};

int relay_store_attach(struct relay_store *st, int64_t ticket_id,
		       const char *kind, const char *source, const char *data,
		       int64_t *id);
/* The newest of this kind, with its data; TETHER_ERR_NOT_FOUND. */
int relay_store_attachment_latest(struct relay_store *st, int64_t ticket_id,
				  const char *kind,
				  struct relay_store_attachment *out);
void relay_store_attachment_clear(struct relay_store_attachment *a);
/* *out: *n of a ticket, oldest first, without data. */
int relay_store_ticket_attachments(struct relay_store *st, int64_t ticket_id,
				   struct relay_store_attachment **out,
				   size_t *n);
void relay_store_attachments_free(struct relay_store_attachment *v, size_t n);

/*
 * ---- For backends ----
 *
 * A backend's ops get arguments already checked and out-parameters
 * cleared (lists NULL with a count of 0).  A list op grows its array
 * with zeroed entries and counts each entry as soon as it exists, so that
 * on failure the caller can free what was filled; a getter likewise
 * leaves what it filled for the caller to clear.  Backends call nothing
 * of relay-store.c.
 */
struct relay_store_ops {
	void (*close)(struct relay_store *st);
	int (*tech_add)(struct relay_store *st, const char *name,
			enum tether_tech_role role, const uint8_t *token_hash,
			int64_t *id);
	int (*tech_remove)(struct relay_store *st, const char *name);
	int (*tech_set_role)(struct relay_store *st, int64_t id,
			     enum tether_tech_role role);
	int (*tech_get)(struct relay_store *st, int64_t id,
			struct relay_store_tech *out);
	int (*tech_by_name)(struct relay_store *st, const char *name,
			    struct relay_store_tech *out);
	int (*tech_register_key)(struct relay_store *st, int64_t id,
				 const uint8_t *token_hash,
				 const uint8_t *pubkey);
	int (*tech_set_token)(struct relay_store *st, const char *name,
			      const uint8_t *token_hash, int64_t *id);
	int (*tech_token_expires)(struct relay_store *st, int64_t id,
				  int64_t expires_at);
	int (*tech_list)(struct relay_store *st, struct relay_store_tech **out,
			 size_t *n);
	int (*changed_elsewhere)(struct relay_store *st, bool *changed);
	int (*ticket_new)(struct relay_store *st, const char *title,
			  const char *customer,
			  enum tether_ticket_source source, int64_t created_by,
			  int64_t *id);
	int (*ticket_get)(struct relay_store *st, int64_t id,
			  struct relay_store_ticket *out);
	int (*ticket_list)(struct relay_store *st,
			   const struct relay_store_ticket_filter *f,
			   struct relay_store_ticket **out, size_t *n,
			   int64_t *more);
	int (*ticket_close)(struct relay_store *st, int64_t id,
			    const char *resolution);
	int (*ticket_reopen)(struct relay_store *st, int64_t id);
	int (*comment_add)(struct relay_store *st, int64_t ticket_id,
			   const char *author, const char *text, int64_t *id);
	int (*ticket_comments)(struct relay_store *st, int64_t ticket_id,
			       size_t limit, struct relay_store_comment **out,
			       size_t *n, int64_t *more);
	int (*ticket_assign)(struct relay_store *st, int64_t id,
			     int64_t tech_id);
	int (*session_new)(struct relay_store *st, int64_t ticket_id,
			   int64_t technician_id, const char *nameplate,
			   int64_t expires_at, const char *info,
			   const uint8_t *pake_a, int64_t *id);
	int (*session_get)(struct relay_store *st, int64_t id,
			   struct relay_store_session *out);
	int (*session_by_nameplate)(struct relay_store *st,
				    const char *nameplate,
				    struct relay_store_session *out);
	int (*session_for_ticket)(struct relay_store *st, int64_t ticket_id,
				  bool live_only,
				  struct relay_store_session *out);
	int (*ticket_sessions)(struct relay_store *st, int64_t ticket_id,
			       struct relay_store_session **out, size_t *n);
	bool (*nameplate_in_use)(struct relay_store *st, const char *nameplate);
	int (*nameplates_held)(struct relay_store *st, int64_t burned_since,
			       int64_t *n);
	int (*session_join)(struct relay_store *st, int64_t id,
			    const char *agent_facts, const uint8_t *pake_b,
			    const uint8_t *conf_b, const uint8_t *resume_hash);
	int (*session_set_state)(struct relay_store *st, int64_t id,
				 enum tether_session_state state);
	int (*session_expire)(struct relay_store *st, int64_t now,
			      struct relay_store_session **out, size_t *n);
	int (*audit)(struct relay_store *st, const char *actor,
		     int64_t ticket_id, int64_t session_id, const char *event,
		     const char *detail);
	int (*audit_verify)(struct relay_store *st);
	int (*ticket_audit)(struct relay_store *st, int64_t ticket_id,
			    struct relay_store_audit **out, size_t *n);
	int (*ticket_audit_page)(struct relay_store *st, int64_t ticket_id,
				 const struct relay_store_audit_page *pg,
				 struct relay_store_audit **out, size_t *n,
				 int64_t *more);
	int (*counts)(struct relay_store *st, struct relay_store_counts *out);
	int (*enroll_token_new)(struct relay_store *st,
				const uint8_t *token_hash, int64_t expires_at);
	int (*agent_enroll)(struct relay_store *st, const uint8_t *token_hash,
			    const char *name, const uint8_t *pubkey,
			    const char *labels, const char *facts, int64_t *id,
			    bool *replaced);
	int (*agent_get)(struct relay_store *st, const char *name,
			 struct relay_store_agent *out);
	int (*agent_seen)(struct relay_store *st, int64_t id);
	int (*agent_set_seq)(struct relay_store *st, int64_t id, int64_t seq);
	int (*agent_list)(struct relay_store *st,
			  struct relay_store_agent_row **out, size_t *n);
	int (*health_get)(struct relay_store *st, int64_t agent_id,
			  const char *check, int64_t since,
			  struct relay_store_check_prev *out);
	int (*health_record)(struct relay_store *st, int64_t agent_id,
			     const struct relay_store_result *res);
	int (*health_set_ticket)(struct relay_store *st, int64_t agent_id,
				 const char *check, int64_t ticket_id);
	int (*health_holds_ticket)(struct relay_store *st, int64_t agent_id,
				   int64_t ticket_id, bool *holds);
	int (*health_list)(struct relay_store *st, const char *agent,
			   struct relay_store_check **out, size_t *n);
	int (*attach)(struct relay_store *st, int64_t ticket_id,
		      const char *kind, const char *source, const char *data,
		      int64_t *id);
	int (*attachment_latest)(struct relay_store *st, int64_t ticket_id,
				 const char *kind,
				 struct relay_store_attachment *out);
	int (*ticket_attachments)(struct relay_store *st, int64_t ticket_id,
				  struct relay_store_attachment **out,
				  size_t *n);
};

/* What every backend's store starts with. */
struct relay_store {
	const struct relay_store_ops *ops;
};

/* relay-store-sqlite.c: where is the database file. */
int relay_store_sqlite_open(const char *where, struct relay_store **out);

#endif /* RELAY_STORE_H */
