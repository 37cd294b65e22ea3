/*
 * The relay's private declarations: the server, its peers (consoles and
 * agents), live sessions and routed channels.  The relay authenticates
 * technicians, pairs a console with an agent through a session, and
 * forwards sealed DATA frames verbatim; it never holds a channel key.
 */
#ifndef TETHER_RELAY_H
#define TETHER_RELAY_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include <tether/frame.h>
#include <tether/link.h>

#include "relay-store.h"

enum relay_role {
	RELAY_PEER_NEW,
	RELAY_PEER_CONSOLE,
	RELAY_PEER_AGENT,
};

struct relay;
struct relay_session;

struct relay_peer {
	struct relay *relay;
	struct tether_link *link; /* NULL once the link has closed */
	enum relay_role role;
	struct tether_store_tech tech;	 /* consoles */
	struct relay_session *session;	 /* agents, once joined */
	struct relay_peer *blocked_on;	 /* paused until this one drains */
	/* Enrolled agents, once authenticated (agent_id != 0). */
	int64_t agent_id;
	char agent_name[TETHER_STORE_AGENT_NAME_MAX + 1];
	uint8_t challenge[32]; /* sent in welcome, signed in auth */
	bool checks_over_limit; /* warned about more checks than kept */
	uint64_t connected_at;		 /* ms */
	uint64_t last_seen;		 /* ms */
	char addr[64];
	struct relay_peer *next;
	struct relay_peer *prev;
};

/* A session with an agent on the relay right now (or claimed by one). */
struct relay_session {
	int64_t id;
	int64_t ticket_id;
	char nameplate[16];
	bool pake_sent;		     /* the agent's pB reached the store */
	char *facts;		     /* agent facts (JSON) until pake */
	struct relay_peer *agent;    /* NULL while disconnected */
	struct relay_peer *confirmer; /* console waiting on "confirmed" */
	int64_t confirm_id;
	bool confirm_pending;	      /* cA sent to the agent, no answer yet */
	struct relay_session *next;
};

struct relay_channel {
	uint32_t id;
	int64_t session_id;
	int64_t ticket_id;
	char kind[16];
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
/* Bounds on an agent's xfer report. */
#define RELAY_XFER_PATH_MAX 4096
#define RELAY_XFER_REASON_MAX 512
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

struct relay_rate {
	char addr[48];
	uint64_t window_start;
	unsigned fails;
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
	struct tether_store *store;
	struct tether_tls_ctx *tls;
	struct tether_link_ctx *lctx;
	struct relay_peer *peers;
	unsigned npeers;
	struct relay_session *sessions;
	struct relay_channel *channels[RELAY_CHANNEL_BUCKETS];
	uint32_t next_channel;
	struct relay_rate rates[RELAY_RATE_SLOTS];
	unsigned max_peers; /* RELAY_MAX_PEERS, less if descriptors are few */
	uint64_t idle_timeout_ms;
	bool stopping;
};

/* relay-server.c */
struct relay_opts {
	const char *data_dir;
	const char *listen;
	const char *metrics_listen; /* "off" disables */
	bool metrics_required;	    /* given explicitly: failing to bind is fatal */
	unsigned idle_s;
};
int relay_run(const struct relay_opts *o);
int relay_parse_listen(const char *listen, struct sockaddr_storage *ss);
/*
 * Initialises tcp (close it whatever happens) and listens on HOST:PORT:
 * 0, UV_EINVAL for a bad address, or the bind/listen error.
 */
int relay_listen(struct relay *r, uv_tcp_t *tcp, const char *listen,
		 int backlog, uv_connection_cb cb);
void relay_sockname(uv_tcp_t *tcp, char *out, size_t len);
uint64_t relay_now_ms(void);
void relay_send(struct relay_peer *p, json_t *msg);
void relay_reply_ok(struct relay_peer *p, int64_t id, json_t *fields);
void relay_reply_err(struct relay_peer *p, int64_t id, const char *code,
		     const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void relay_drop(struct relay_peer *p, int err, const char *reason);
void relay_audit(struct relay *r, const char *actor, int64_t ticket_id,
		 int64_t session_id, const char *event, json_t *detail);
const char *relay_actor(const struct relay_peer *p, char *buf, size_t len);
/*
 * Names of technicians, agents and checks: 1 to max of A-Z a-z 0-9 _ . -
 * (they appear in titles, logs and metrics).
 */
bool relay_name_valid(const char *s, size_t max);
/* s (may be NULL) is one of the NULL-terminated words. */
bool relay_one_of(const char *s, const char *const *words);

/* relay-console.c */
void relay_console_message(struct relay_peer *p, const char *type,
			   json_t *msg);
int relay_parse_ticket(const char *s, int64_t *id);
int relay_ticket_end_session(struct relay *r, int64_t ticket_id,
			     const char *reason);

/* relay-agent.c */
void relay_agent_message(struct relay_peer *p, const char *type,
			 json_t *msg);
void relay_agent_gone(struct relay_peer *p);
struct relay_session *relay_session_find(struct relay *r, int64_t id);
void relay_session_end(struct relay *r, struct relay_session *s,
		       const char *state, const char *reason);

/* relay-enroll.c: enrolment and authentication of enrolled agents. */
void relay_enroll(struct relay_peer *p, json_t *msg);
void relay_enroll_auth(struct relay_peer *p, json_t *msg);
/* The peer of an authenticated agent of this name, or NULL. */
struct relay_peer *relay_enrolled_peer(struct relay *r, const char *name);
/* How many enrolled agents are connected and authenticated. */
unsigned relay_enrolled_connected(struct relay *r);

/* relay-health.c: check results, proactive tickets, diagnostics. */
void relay_health_agent_message(struct relay_peer *p, const char *type,
				json_t *msg);
/* Console requests agents, health, diag_attach, diag_get. */
void relay_health_agents(struct relay_peer *p, int64_t id, json_t *msg);
void relay_health_list(struct relay_peer *p, int64_t id, json_t *msg);
void relay_health_diag_attach(struct relay_peer *p, int64_t id, json_t *msg);
void relay_health_diag_get(struct relay_peer *p, int64_t id, json_t *msg);

/* relay-limit.c */
bool relay_rate_limited(struct relay *r, const char *addr);
void relay_rate_fail(struct relay *r, const char *addr);
bool relay_too_many_from(struct relay *r, const char *addr);

/* relay-metrics.c */
int relay_metrics_start(struct relay *r, const char *listen, bool required);

/* relay-route.c */
/* The channel kinds a console may open (proto.h); metrics use the order. */
#define RELAY_KINDS 5
extern const char *const relay_kinds[RELAY_KINDS];
bool relay_kind_valid(const char *kind);
struct relay_channel *relay_channel_new(struct relay *r, const char *kind,
					struct relay_peer *console,
					struct relay_peer *agent,
					int64_t session_id, int64_t ticket_id);
struct relay_channel *relay_channel_find(struct relay *r, uint32_t id);
void relay_channel_close(struct relay *r, struct relay_channel *c,
			 const char *reason, bool tell_console,
			 bool tell_agent);
void relay_channels_close_peer(struct relay *r, struct relay_peer *p,
			       const char *reason);
void relay_forward(struct relay_peer *from, const struct tether_frame *f);
unsigned relay_channels_pending(struct relay *r, int64_t session_id);
/* Pauses from while to's output queue is over the high-water mark. */
void relay_hold_while_full(struct relay_peer *from, struct relay_peer *to);
void relay_drained(struct relay_peer *p);

#endif /* TETHER_RELAY_H */
