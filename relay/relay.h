/*
 * The relay's private declarations: the server, its peers (consoles and
 * agents), live sessions and routed channels, grouped by the file that
 * defines them, lowest first.  The relay authenticates technicians, pairs
 * a console with an agent through a session, and forwards sealed DATA
 * frames verbatim; it never holds a channel key.
 *
 * Rooms import downward only: relay-peer.c (a peer's life as data) and
 * relay-listen.c at the bottom, then relay-limit.c, relay-nameplate.c,
 * relay-route.c,
 * relay-session.c, relay-admin.c (technicians and tokens, for both the
 * command line and the console), relay-policy.c (who may do what, and
 * revocation), relay-enroll.c, relay-health.c, the message modules
 * relay-hello.c, relay-agent.c and relay-console.c, relay-access.c (who
 * may stay connected), relay-metrics.c, and
 * relay-server.c (the event loop) on top; the store (relay-store.h) and
 * the metrics listener's request parser (relay-metrics-req.h) are below
 * them all.
 */
#ifndef TETHER_RELAY_H
#define TETHER_RELAY_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include <tether/ctrl.h>
#include <tether/frame.h>
#include <tether/id.h>
#include <tether/link.h>
#include <tether/tls.h>

#include "relay-store.h"

enum relay_role {
	RELAY_PEER_NEW,
	RELAY_PEER_CONSOLE,
	RELAY_PEER_AGENT,
	RELAY_ROLES
};

struct relay;
struct relay_session;

struct relay_peer {
	struct relay *relay;
	struct tether_link *link; /* NULL once the link has closed */
	enum relay_role role;
	struct relay_store_tech tech; /* consoles */
	int64_t ticket_id; /* consoles: the ticket last acted on; 0: none */
	struct relay_session *session; /* agents, once joined */
	struct relay_peer *blocked_on; /* paused until this one drains */
	uint64_t written;	       /* its link's output at the last tick */
	uint64_t output_moved;	       /* ms: last written, or had none */
	/* Enrolled agents, once authenticated (agent_id != 0). */
	int64_t agent_id;
	char agent_name[TETHER_ID_NAME_MAX + 1];
	uint8_t challenge[TETHER_AGENT_CHALLENGE_LEN]; /* sent in welcome,
							  signed in auth */
	/*
	 * A console between welcome and auth: tech is the technician its
	 * hello named, or its login token's, with tech.pubkey the key to
	 * check the signature with (registering: the key it brought).
	 */
	bool console_pending;
	bool registering;
	bool checks_over_limit; /* warned about more checks than kept */
	uint64_t connected_at;	/* ms */
	uint64_t last_seen;	/* ms */
	char addr[64];
	struct relay_peer *next;
	struct relay_peer *prev;
};

/* A session with an agent on the relay right now (or claimed by one). */
struct relay_session {
	int64_t id;
	int64_t ticket_id;
	char nameplate[TETHER_CTRL_NAMEPLATE_MAX + 1];
	bool pake_sent;		      /* the agent's pB reached the store */
	char *facts;		      /* agent facts (JSON) until pake */
	struct relay_peer *agent;     /* NULL while disconnected */
	char agent_addr[64];	      /* where it joined (or resumed) from */
	struct relay_peer *confirmer; /* console waiting on "confirmed" */
	int64_t confirm_id;
	bool confirm_pending; /* cA sent to the agent, no answer yet */
	int64_t since;	      /* Unix seconds: claimed by its agent */
	/* That cA: the same console confirming again may take over. */
	uint8_t confirm_conf[TETHER_SPAKE2_CONF_LEN];
	/*
	 * AGENT_CAP-like bits (1 << enum tether_kind) of what the customer
	 * allowed, from the agent's "confirmed"; all when not known (a
	 * session resumed after a relay restart), the agent refusing too.
	 */
	unsigned allowed;
	struct relay_session *next;
};

struct relay_channel {
	uint32_t id;
	int64_t session_id;
	int64_t ticket_id;
	enum tether_kind kind;
	struct relay_peer *console;
	struct relay_peer *agent;
	int64_t open_id; /* console request waiting for "opened" */
	bool opened;
	uint64_t opened_at; /* ms */
	uint64_t bytes_c2a;
	uint64_t bytes_a2c;
	struct relay_channel *next;
};

#define RELAY_CHANNEL_BUCKETS 256
#define RELAY_JOIN_FAILS_MAX 5
#define RELAY_JOIN_WINDOW_MS 60000
#define RELAY_RATE_SLOTS 256
#define RELAY_HELLO_TIMEOUT_MS 10000
/* An agent must join or resume this soon after hello. */
#define RELAY_JOIN_TIMEOUT_MS 10000
#define RELAY_MAX_PEERS 20000
#define RELAY_PEERS_PER_ADDR 256
/* Channels a session may have waiting for the agent's "opened". */
#define RELAY_PENDING_OPENS_MAX 16
/* "tech:NAME", "agent:NAME", "peer:ADDR". */
#define RELAY_ACTOR_MAX 96

struct relay_rate {
	char addr[48];
	uint64_t window_start;
	unsigned fails;
};

/* Refusals by role recorded per technician and window (relay-policy.c). */
#define RELAY_REFUSED_ROWS_MAX 10
#define RELAY_REFUSED_WINDOW_MS 60000
#define RELAY_REFUSED_SLOTS 64
struct relay_refusals {
	int64_t tech_id; /* 0: a free slot */
	char name[TETHER_ID_NAME_MAX + 1];
	uint64_t window_start;
	unsigned rows;	     /* refused rows written in the window */
	unsigned unrecorded; /* refusals past RELAY_REFUSED_ROWS_MAX */
};

/* Counters for /metrics; they only grow. */
struct relay_stats {
	uint64_t handshakes;
	uint64_t handshake_failures;
	uint64_t auth_failures;
	uint64_t code_failures;
	uint64_t pake_failures;
	uint64_t protocol_errors;
	uint64_t bytes_forwarded;
	uint64_t frames_forwarded;
};

struct relay {
	uv_loop_t *loop;
	uv_tcp_t listener;
	uv_tcp_t metrics;
	bool metrics_on;
	struct relay_stats stats;
	uv_signal_t sigint;
	uv_signal_t sigterm;
	uv_timer_t tick;
	uv_timer_t access; /* relay_access_recheck() */
	bool access_retry; /* a lookup failed: look again without a change */
	struct relay_store *store;
	struct tether_tls_ctx *tls;
	struct tether_link_ctx *lctx;
	struct relay_peer *peers;
	unsigned npeers;
	struct relay_session *sessions;
	struct relay_channel *channels[RELAY_CHANNEL_BUCKETS];
	uint32_t next_channel;
	struct relay_rate rates[RELAY_RATE_SLOTS];
	struct relay_refusals refusals[RELAY_REFUSED_SLOTS];
	uint64_t refused_window_ms; /* RELAY_REFUSED_WINDOW_MS (tests: less) */
	char fingerprint[TETHER_TLS_FP_LEN]; /* the certificate's, for tokens */
	unsigned max_peers; /* RELAY_MAX_PEERS, less if descriptors are few */
	uint64_t idle_timeout_ms;
	bool stopping;
};

/* A console request being answered: who asked, and the decoded request. */
struct relay_request {
	struct relay_peer *p;
	struct relay *r;
	const struct tether_ctrl_msg *m; /* borrowed for the call */
	char actor[RELAY_ACTOR_MAX];
};

/* relay-peer.c: a peer's life as data, and what every handler says. */
uint64_t relay_now_ms(void);
/* A new peer of r, linked into its list; NULL on no memory. */
struct relay_peer *relay_peer_new(struct relay *r);
/* Unlinks p from its relay and frees it (from its link's close only). */
void relay_peer_free(struct relay_peer *p);
/*
 * Sends p a control message of type t with body (the struct of t, NULL
 * for none), built by tether_ctrl_encode(); nothing once p is closing.
 * A body the schema refuses is logged (a relay bug) and not sent.
 */
void relay_send(struct relay_peer *p, enum tether_ctrl_type t,
		const void *body);
/*
 * Answers request id (of type request) with "ok" and body, its answer
 * struct.  An answer too large for a frame is answered with err limit.
 */
void relay_reply_ok(struct relay_peer *p, enum tether_ctrl_type request,
		    int64_t id, const void *body);
/* Answers request id with "err": code and a message made from fmt. */
void relay_reply_err(struct relay_peer *p, int64_t id,
		     enum tether_ctrl_code code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The same for the request q being handled. */
void relay_request_init(struct relay_request *q, struct relay_peer *p,
			const struct tether_ctrl_msg *m);
void relay_answer(struct relay_request *q, const void *body);
void relay_refuse(struct relay_request *q, enum tether_ctrl_code code,
		  const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Sends an ERROR frame with reason and closes (counting protocol errors). */
void relay_drop(struct relay_peer *p, int err, const char *reason);
/* Drops p for a message it sent that did not decode: "malformed <why>". */
void relay_drop_malformed(struct relay_peer *p, const char *why);
/*
 * Appends an audit row (ticket_id, session_id: 0 for none); detail (taken,
 * may be NULL) is stored as compact JSON text.  Failures are logged.
 */
void relay_audit(struct relay *r, const char *actor, int64_t ticket_id,
		 int64_t session_id, const char *event, json_t *detail);
/* The same into a store without a running relay (tether-relay's commands). */
void relay_audit_to(struct relay_store *st, const char *actor,
		    int64_t ticket_id, int64_t session_id, const char *event,
		    json_t *detail);
/* "tech:NAME", "agent:NAME", "agent" or "peer:ADDR" (p NULL: "relay"). */
const char *relay_actor(const struct relay_peer *p, char *buf, size_t len);

/* relay-listen.c: listening sockets for the relay and its metrics. */
int relay_parse_listen(const char *listen, struct sockaddr_storage *ss);
/*
 * Initialises tcp (close it whatever happens) and listens on HOST:PORT:
 * 0, UV_EINVAL for a bad address, or the bind/listen error.
 */
int relay_listen(struct relay *r, uv_tcp_t *tcp, const char *listen,
		 int backlog, uv_connection_cb cb);
/* "ip:port" (or "[ip]:port") a TCP handle is bound to. */
void relay_sockname(uv_tcp_t *tcp, char *out, size_t len);

/*
 * relay-limit.c: per-address limits.  Whether addr has used up its
 * failures this minute (a lookup: asking takes no slot), and a failure of
 * addr counted (its first takes a slot, evicting a run-out one first, else
 * the one with the fewest failures).
 */
bool relay_rate_limited(struct relay *r, const char *addr);
void relay_rate_fail(struct relay *r, const char *addr);
bool relay_too_many_from(struct relay *r, const char *addr);

/*
 * relay-nameplate.c: drawing nameplates.  They come from [LO, 10^k - 1],
 * k the fewest digits (at least MIN_DIGITS) that make the range
 * SPARSE times the nameplates held plus one, so that at most one in
 * SPARSE is taken and a one-digit slip seldom finds a live code.
 */
#define RELAY_NAMEPLATE_LO 1
#define RELAY_NAMEPLATE_MIN_DIGITS 2
#define RELAY_NAMEPLATE_SPARSE 20
/* Draws that may find a taken nameplate before the range grows. */
#define RELAY_NAMEPLATE_TRIES 16
/* Whether a drawn nameplate (decimal text) may not be handed out. */
typedef bool (*relay_nameplate_busy_fn)(void *ctx, const char *nameplate);
/*
 * The range for held nameplates into *lo and *hi; TETHER_ERR_LIMIT (and
 * the widest range) if even that is not sparse enough for held.
 */
int relay_nameplate_range(uint64_t held, uint32_t *lo, uint32_t *hi);
/*
 * A nameplate that busy(ctx, ...) says is free, into out (len at least
 * TETHER_CODE_NAMEPLATE_MAX + 1): drawn uniformly from held's range,
 * RELAY_NAMEPLATE_TRIES times, then from ten times the range, up to
 * TETHER_CODE_NAMEPLATE_MAX digits; TETHER_ERR_LIMIT when all were busy,
 * a tether_random() error, or TETHER_ERR_INVALID.
 */
int relay_nameplate_draw(uint64_t held, relay_nameplate_busy_fn busy, void *ctx,
			 char *out, size_t len);

/* relay-route.c: channels, forwarding, back-pressure. */
struct relay_channel *relay_channel_new(struct relay *r, enum tether_kind kind,
					struct relay_peer *console,
					struct relay_peer *agent,
					int64_t session_id, int64_t ticket_id);
struct relay_channel *relay_channel_find(struct relay *r, int64_t id);
void relay_channel_close(struct relay *r, struct relay_channel *c,
			 const char *reason, bool tell_console,
			 bool tell_agent);
void relay_channels_close_peer(struct relay *r, struct relay_peer *p,
			       const char *reason);
void relay_forward(struct relay_peer *from, const struct tether_frame *f);
unsigned relay_channels_pending(struct relay *r, int64_t session_id);
/* How many channels console p has, open or waiting for the agent. */
unsigned relay_channels_of(struct relay *r, const struct relay_peer *p);
/*
 * The kinds of session_id's open channels into kinds (at most max, the
 * rest not named); returns how many it named.
 */
size_t relay_channels_kinds(struct relay *r, int64_t session_id,
			    enum tether_kind *kinds, size_t max);
/* Pauses from while to's output queue is over the high-water mark. */
void relay_hold_while_full(struct relay_peer *from, struct relay_peer *to);
/* p drained (or went): whoever waited on it reads again. */
void relay_drained(struct relay_peer *p);

/* relay-session.c: live sessions. */
struct relay_session *relay_session_find(struct relay *r, int64_t id);
/* A live session for ss, linked into r's list; NULL on no memory. */
struct relay_session *relay_session_add(struct relay *r,
					const struct relay_store_session *ss);
/*
 * Ends s: stores state, answers a waiting confirmer, tells the agent
 * "ended" with reason and closes its channels; s is freed.
 */
void relay_session_end(struct relay *r, struct relay_session *s,
		       enum tether_session_state state, const char *reason);
/*
 * s's code is spent without a pairing (a wrong code, a join abandoned):
 * audited by actor as code_burned with the nameplate, the address the
 * join came from and reason, then ended burned with reason.  s is freed.
 */
/*
 * What a technician is told when a wrong guess burned s's code: "the code
 * for T-N was burned by a wrong guess (from ADDR); run: tether invite T-N
 * for a new code".
 */
void relay_session_burned_words(const struct relay_session *s, char *out,
				size_t len);
void relay_session_burn(struct relay *r, struct relay_session *s,
			const char *actor, const char *reason);
/*
 * Ends the ticket's live session, if any (TETHER_ERR_NOT_FOUND if none),
 * for actor: audited as session_ended with its nameplate, the state it
 * was in and reason.
 */
int relay_session_end_ticket(struct relay *r, const char *actor,
			     int64_t ticket_id, const char *reason);
/*
 * The "sessions" request: the live sessions with their technician,
 * ticket, customer machine and open channels; admins and auditors see
 * every one, a technician the ones they invited.
 */
void relay_sessions_list(struct relay_request *q);
/* p (a console) went: no session waits for its confirmation any more. */
void relay_sessions_forget(struct relay *r, const struct relay_peer *p);
/* Invites past their expiry, unused, become expired, each audited. */
void relay_sessions_expire(struct relay *r);
/* Frees every live session (at shutdown). */
void relay_sessions_free(struct relay *r);

/*
 * relay-admin.c: technicians and enrolment tokens, the one code path of
 * `tether-relay technician ...` on the relay host and of the console's
 * `tether technician ...` over the network.  Each writes the store and its
 * audit row (actor: "relay" or "tech:NAME"; by: who, in the row's detail).
 * 0 or the store's error: TETHER_ERR_EXISTS (a name taken),
 * TETHER_ERR_NOT_FOUND (no such technician), TETHER_ERR_STATE (the only
 * admin would be removed or lowered), TETHER_ERR_INVALID.
 */
#define RELAY_ADMIN_TOKEN_MAX 128
/*
 * A login token registers a key for this long after it is made: one that
 * leaked unused (a chat, a ticket) cannot replace a technician's key
 * months later.
 */
#define RELAY_LOGIN_TOKEN_TTL_S (7 * 86400)
/*
 * A new technician and its one-time login token "tt_<id>_<secret>" into
 * token (only the secret's SHA-256 is stored); *out: the technician.
 */
int relay_admin_tech_add(struct relay_store *st, const char *actor,
			 const char *by, const char *name,
			 enum tether_tech_role role, char *token, size_t toklen,
			 struct relay_store_tech *out);
/*
 * A fresh one-time login token for technician name (a new laptop, a lost
 * key), into token as above: the login it makes replaces the registered
 * key.  *id: the technician's.  Audited technician_token_issued.
 */
int relay_admin_tech_token(struct relay_store *st, const char *actor,
			   const char *by, const char *name, char *token,
			   size_t toklen, int64_t *id);
/* *out: the technician that was removed. */
int relay_admin_tech_remove(struct relay_store *st, const char *actor,
			    const char *by, const char *name,
			    struct relay_store_tech *out);
/* *out: the technician with its new role; *from: the role before. */
int relay_admin_tech_role(struct relay_store *st, const char *actor,
			  const char *by, const char *name,
			  enum tether_tech_role role,
			  struct relay_store_tech *out,
			  enum tether_tech_role *from);
/*
 * A one-time enrolment token "tte_" + 43 base64url characters valid for
 * ttl_s seconds into token (len >= RELAY_ADMIN_TOKEN_MAX); *expires_at.
 */
int relay_admin_enroll_token(struct relay_store *st, const char *actor,
			     const char *by, int64_t ttl_s, char *token,
			     size_t len, int64_t *expires_at);

/*
 * relay-policy.c: the one check before every console request (the table
 * in relay-policy.h), refusals audited per technician at a bounded rate,
 * and revocation: consoles cut off, or cut off the tickets they may no
 * longer act on.
 */
/*
 * Whether q may go on: 0, else it was answered "forbidden" with a reason
 * line and audited as refused.  A request that names a session or a
 * channel is judged by its ticket; one whose ticket, session or channel
 * does not exist goes on, for its handler to say so.
 */
int relay_policy_check(struct relay_request *q);
/*
 * The visible_to of console p's ticket lists (relay_store_ticket_filter):
 * its technician's id when the role limits what it sees, else 0.
 */
int64_t relay_policy_visible_to(const struct relay_peer *p);
/* A window of refusals that ran out gets its row counting the rest. */
void relay_policy_tick(struct relay *r);
/*
 * Technician tech_id now has role: each of their consoles (their role
 * updated) loses the channels on tickets they may no longer act on, the
 * live sessions they opened there end, and a console that had any is
 * dropped; the agent and the console get TETHER_REASON_REVOKED + why,
 * and each ticket gets an access_revoked row by actor.
 */
void relay_policy_revoke(struct relay *r, int64_t tech_id,
			 enum tether_tech_role role, const char *actor,
			 const char *why);
/*
 * Console p may no longer be connected (its technician was removed, or
 * logged in with a new key): every channel, then the connection, each
 * with reason; logged with why ("was removed"), audited by actor.
 */
void relay_policy_cut_off(struct relay *r, struct relay_peer *p,
			  const char *actor, const char *why,
			  const char *reason);

/* relay-enroll.c: enrolment and authentication of enrolled agents. */
void relay_enroll(struct relay_peer *p, const struct tether_ctrl_msg *m);
void relay_enroll_auth(struct relay_peer *p, const struct tether_ctrl_msg *m);
/* The peer of an authenticated agent of this name, or NULL. */
struct relay_peer *relay_enrolled_peer(struct relay *r, const char *name);
/* How many enrolled agents are connected and authenticated. */
unsigned relay_enrolled_connected(struct relay *r);

/* relay-health.c: check results, proactive tickets, diagnostics. */
/* Distinct checks kept per agent: what an agent sends cannot grow the
 * health table (or open tickets) without bound. */
#define RELAY_CHECKS_MAX 256
/* Hard changes within the window that make a check flapping. */
#define RELAY_FLAP_CHANGES 4
#define RELAY_FLAP_WINDOW_S 3600

/* What to do with a result. */
enum relay_health_verdict {
	RELAY_HEALTH_RECORD,	 /* store it */
	RELAY_HEALTH_DUPLICATE,	 /* stored before: acknowledge only */
	RELAY_HEALTH_OVER_LIMIT, /* a check past RELAY_CHECKS_MAX: its seq only
				  */
};
/* What a recorded result does to the check's ticket. */
enum relay_health_action {
	RELAY_HEALTH_NOTHING,
	RELAY_HEALTH_OPEN,	     /* open a ticket for it */
	RELAY_HEALTH_NOTE_CHANGE,    /* note the change on its ticket */
	RELAY_HEALTH_NOTE_RECOVERED, /* note the return to OK */
	RELAY_HEALTH_NOTE_FLAPPING,  /* note that notes are held back */
};
struct relay_health_decision {
	enum relay_health_verdict verdict;
	enum tether_check_state prev_hard; /* hard state before the result */
	enum relay_health_action action;
	int64_t ticket_id; /* the open ticket notes go to */
};
/*
 * The health policy as a pure function: from what the store holds about
 * the check (prev, asked with since = res->ts - RELAY_FLAP_WINDOW_S) and
 * the result (res: seq to ts), fills res->since, hard_state, hard_since,
 * hard_change and flapping, and *d.  A HARD result with another state
 * than the hard one is a hard change; a check with RELAY_FLAP_CHANGES of
 * them in the window is flapping (one note, then none) until a change
 * finds the window otherwise quiet; tickets open on HARD CRITICAL, or
 * HARD WARNING when the check asks (on).
 */
void relay_health_decide(const struct relay_store_check_prev *prev,
			 enum tether_ticket_on on,
			 struct relay_store_result *res,
			 struct relay_health_decision *d);
/*
 * One result of agent_id's check: what the store holds asked for, decided
 * on (relay_health_decide, which fills res and *d) and stored as decided:
 * the result, or for a check over the limit only its seq, or nothing for
 * a duplicate.  0 or the store's error (nothing stored then).
 */
int relay_health_store(struct relay *r, int64_t agent_id,
		       enum tether_ticket_on on, struct relay_store_result *res,
		       struct relay_health_decision *d);
/*
 * Whether agent_id may attach a bundle to ticket_id: one of its checks
 * opened it and no agent's bundle is on it yet.  0, or a store error.
 */
int relay_health_diag_wanted(struct relay *r, int64_t agent_id,
			     int64_t ticket_id, bool *wanted);
/* Agent messages check and diag. */
void relay_health_check(struct relay_peer *p, const struct tether_ctrl_msg *m);
void relay_health_diag(struct relay_peer *p, const struct tether_ctrl_msg *m);
/* Console requests agents, health, diag_attach, diag_get. */
void relay_health_agents(struct relay_request *q);
void relay_health_list(struct relay_request *q);
void relay_health_diag_attach(struct relay_request *q);
void relay_health_diag_get(struct relay_request *q);

/*
 * The message modules.  Each gets what the loop decoded: r is
 * tether_ctrl_decode()'s result, m the message (m->type known even when
 * a member failed), why its words when r is not 0.
 */
/* relay-hello.c: a new peer's hello, ping and pong only. */
void relay_hello_message(struct relay_peer *p, int r,
			 const struct tether_ctrl_msg *m, const char *why);
/* relay-agent.c: agent messages, and an agent's connection ending. */
void relay_agent_message(struct relay_peer *p, int r,
			 const struct tether_ctrl_msg *m, const char *why);
void relay_agent_gone(struct relay_peer *p);
/*
 * relay-console.c: console requests; f is the frame, whose request id is
 * read again when the request did not decode, so that it is answered.
 */
void relay_console_message(struct relay_peer *p, const struct tether_frame *f,
			   int r, const struct tether_ctrl_msg *m,
			   const char *why);

/*
 * relay-access.c: when another process wrote to the store, consoles whose
 * technician is gone are cut off (channels, then connection; audited).
 */
#define RELAY_ACCESS_CHECK_MS 250
void relay_access_recheck(struct relay *r);

/* relay-metrics.c */
int relay_metrics_start(struct relay *r, const char *listen, bool required);

/* relay-server.c: the event loop. */
struct relay_opts {
	const char *data_dir;
	const char *listen;
	const char *metrics_listen; /* "off" disables */
	bool metrics_required; /* given explicitly: failing to bind is fatal */
	unsigned idle_s;
};
int relay_run(const struct relay_opts *o);

#endif /* TETHER_RELAY_H */
