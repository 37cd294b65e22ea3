/*
 * The relay's durable state in SQLite (WAL, synchronous=FULL so that an
 * acknowledged write survives a crash): technicians, tickets, sessions and
 * the append-only, hash-chained audit trail.  Tokens are stored only as
 * SHA-256 hashes.  All functions return 0 or a negative TETHER_ERR_*.
 * Timestamps are Unix seconds.
 */
#ifndef TETHER_RELAY_STORE_H
#define TETHER_RELAY_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct tether_store;

struct tether_store_tech {
	int64_t id;
	char name[64];
	char role[16];		 /* "admin" or "technician" */
	uint8_t token_hash[32];	 /* SHA-256 of the whole token string */
};

struct tether_store_session {
	int64_t id;
	int64_t ticket_id;
	int64_t technician_id;
	char nameplate[16];
	char state[16];		/* waiting|joined|paired|ended|burned|expired|declined */
	int64_t created_at;
	int64_t expires_at;
	char *info;		/* JSON text posted by the console (SPAKE2 AAD) */
	char *pake_a;		/* hex, or NULL */
	char *pake_b;		/* hex, or NULL */
	char *conf_b;		/* hex, or NULL */
	char *agent_facts;	/* JSON text, or NULL */
	bool has_resume;
	uint8_t resume_hash[32];
};

/*
 * Opens (creating if needed) the database at path, sets WAL and durable
 * commits, creates the schema.  *out is freed with tether_store_close().
 */
int tether_store_open(const char *path, struct tether_store **out);
void tether_store_close(struct tether_store *st);

/* Technicians.  add: TETHER_ERR_EXISTS for a taken name. */
int tether_store_tech_add(struct tether_store *st, const char *name,
			  const char *role, const uint8_t token_hash[32],
			  int64_t *id);
/* TETHER_ERR_NOT_FOUND if no such name. */
int tether_store_tech_remove(struct tether_store *st, const char *name);
int tether_store_tech_get(struct tether_store *st, int64_t id,
			  struct tether_store_tech *out);
/* *out: new JSON array of {id, name, role, created_at}; caller decrefs. */
int tether_store_tech_list(struct tether_store *st, json_t **out);

/* Tickets.  source is "manual" or "health". */
int tether_store_ticket_new(struct tether_store *st, const char *title,
			    const char *customer, const char *source,
			    int64_t created_by, int64_t *id);
/*
 * *out: new JSON object {id: "T-N", title, customer, status, source,
 * created_at, closed_at, resolution, created_by (name)}; with_detail adds
 * "sessions" (array, no secrets or PAKE values) and "audit" (array of
 * {ts, actor, event, detail}).  TETHER_ERR_NOT_FOUND.
 */
int tether_store_ticket_get(struct tether_store *st, int64_t id,
			    bool with_detail, json_t **out);
/* status NULL for all, else "open" or "closed"; newest first. */
int tether_store_ticket_list(struct tether_store *st, const char *status,
			     json_t **out);
/* TETHER_ERR_NOT_FOUND; TETHER_ERR_STATE if already closed. */
int tether_store_ticket_close(struct tether_store *st, int64_t id,
			      const char *resolution);
/* Title and status of a ticket into caller buffers (either may be NULL). */
int tether_store_ticket_brief(struct tether_store *st, int64_t id,
			      char *title, size_t title_len, char *status,
			      size_t status_len);

/* Sessions. */
int tether_store_session_new(struct tether_store *st, int64_t ticket_id,
			     int64_t technician_id, const char *nameplate,
			     int64_t expires_at, const char *info,
			     const char *pake_a, int64_t *id);
/* Fills out (free its strings with _session_clear); TETHER_ERR_NOT_FOUND. */
int tether_store_session_get(struct tether_store *st, int64_t id,
			     struct tether_store_session *out);
/* Newest session with this nameplate whatever its state. */
int tether_store_session_by_nameplate(struct tether_store *st,
				      const char *nameplate,
				      struct tether_store_session *out);
/* Newest session of a ticket in state waiting, joined or paired. */
int tether_store_session_live_for_ticket(struct tether_store *st,
					 int64_t ticket_id,
					 struct tether_store_session *out);
void tether_store_session_clear(struct tether_store_session *s);
/* True if a session in waiting/joined/paired holds this nameplate. */
bool tether_store_nameplate_in_use(struct tether_store *st,
				   const char *nameplate);
/* Records the agent's side: state becomes "joined". */
int tether_store_session_join(struct tether_store *st, int64_t id,
			      const char *agent_facts, const char *pake_b,
			      const char *conf_b,
			      const uint8_t resume_hash[32]);
int tether_store_session_set_state(struct tether_store *st, int64_t id,
				   const char *state);
/* Moves waiting sessions whose expiry is <= now to "expired"; *n (may be
 * NULL) gets how many. */
int tether_store_session_expire(struct tether_store *st, int64_t now, int *n);

/*
 * *out: new JSON object {"sessions": [{state, n}], "tickets": [{status,
 * source, n}], "checks": [{state, n}], "agents": n} with row counts, for
 * metrics.
 */
int tether_store_counts(struct tether_store *st, json_t **out);

/*
 * Appends an audit row: ts, actor ("tech:alice", "agent", "relay"),
 * ticket_id and session_id (0 = none), event name, detail (JSON text or
 * NULL).  Each row stores SHA-256(previous row hash || row fields) so edits
 * break the chain.
 */
int tether_store_audit(struct tether_store *st, const char *actor,
		       int64_t ticket_id, int64_t session_id,
		       const char *event, const char *detail);
/* 0 if every row's hash matches the chain; TETHER_ERR_CRYPTO if not. */
int tether_store_audit_verify(struct tether_store *st);

/* ---- Enrolled agents (docs/protocol.md, "Enrolled agents") ---- */

#define TETHER_STORE_AGENT_NAME_MAX 64

struct tether_store_agent {
	int64_t id;
	char name[TETHER_STORE_AGENT_NAME_MAX + 1];
	uint8_t pubkey[32];
	int64_t last_seq; /* the newest check result stored */
};

/* Stores an enrollment token's SHA-256, valid until expires_at. */
int tether_store_enroll_token_new(struct tether_store *st,
				  const uint8_t token_hash[32],
				  int64_t expires_at);
/*
 * Spends the token and registers agent name with pubkey, in one
 * transaction: TETHER_ERR_NOT_FOUND for an unknown or spent token,
 * TETHER_ERR_EXPIRED for an expired one.  An agent of the same name gets
 * the new key (*replaced true): the token is the admin's word for it.
 * labels and facts are JSON texts (may be NULL).
 */
int tether_store_agent_enroll(struct tether_store *st,
			      const uint8_t token_hash[32], const char *name,
			      const uint8_t pubkey[32], const char *labels,
			      const char *facts, int64_t *id, bool *replaced);
/* TETHER_ERR_NOT_FOUND if no agent has this name. */
int tether_store_agent_get(struct tether_store *st, const char *name,
			   struct tether_store_agent *out);
/* Sets last_seen to now. */
int tether_store_agent_seen(struct tether_store *st, int64_t id);
/*
 * *out: new JSON array of {name, labels, facts, enrolled_at, last_seen,
 * worst (state name, or null without checks), checks (count)}.
 */
int tether_store_agent_list(struct tether_store *st, json_t **out);

/* One check result as the agent sent it (strings borrowed). */
struct tether_store_result {
	int64_t seq;
	const char *check;
	const char *state; /* OK, WARNING, CRITICAL, UNKNOWN */
	const char *type;  /* SOFT, HARD */
	int64_t attempt;
	int64_t max_attempts;
	const char *output;
	const char *perfdata; /* JSON text or NULL */
	int64_t ts;
};

/* What storing a result changed. */
struct tether_store_health_change {
	bool duplicate;	     /* seq not above the last stored: not stored */
	bool over_limit;     /* a new check past TETHER_STORE_CHECKS_MAX:
				only its seq was stored */
	bool hard_change;    /* a HARD result with another state than before */
	char prev_hard[16];  /* the hard state before this result */
	int64_t ticket_id;   /* the check's ticket if it is still open */
	bool flapping;	     /* the check was marked flapping before */
	int hard_changes_1h; /* hard changes in the hour up to this result */
};

/* Distinct checks the relay keeps per agent: what an agent sends cannot
 * grow the health table (or open tickets) without bound. */
#define TETHER_STORE_CHECKS_MAX 256

/*
 * Stores a result (latest state, history, the agent's last_seq) in one
 * durable transaction and says what it changed.  A result of a new check
 * beyond TETHER_STORE_CHECKS_MAX only advances last_seq (over_limit), so
 * that it is acknowledged and the agent's later results still flow.
 */
int tether_store_health_record(struct tether_store *st, int64_t agent_id,
			       const struct tether_store_result *res,
			       struct tether_store_health_change *out);
int tether_store_health_set_ticket(struct tether_store *st, int64_t agent_id,
				   const char *check, int64_t ticket_id);
int tether_store_health_set_flapping(struct tether_store *st,
				     int64_t agent_id, const char *check,
				     bool flapping);
/*
 * *out: new JSON array of {agent, check, state, type, attempt,
 * max_attempts, since, last, output, perfdata, ticket, flapping}, for one
 * agent (TETHER_ERR_NOT_FOUND if unknown) or all (agent NULL).
 */
int tether_store_health_list(struct tether_store *st, const char *agent,
			     json_t **out);

/*
 * 1 if a check of agent_id opened ticket_id and the ticket has no bundle
 * from an agent yet (the relay asked for one), 0 if not, else an error.
 */
int tether_store_diag_wanted(struct tether_store *st, int64_t agent_id,
			     int64_t ticket_id);

/* ---- Attachments (packed diagnostics bundles) ---- */
int tether_store_attach(struct tether_store *st, int64_t ticket_id,
			const char *kind, const char *source, const char *data,
			int64_t *id);
/* *out: {data, created_at, source} of the newest; TETHER_ERR_NOT_FOUND. */
int tether_store_attachment_latest(struct tether_store *st, int64_t ticket_id,
				   const char *kind, json_t **out);

#endif /* TETHER_RELAY_STORE_H */
