/*
 * Control messages (CTRL frames, docs/protocol.md "Control messages"): the
 * one owner of their types, wire names, members and limits.  Every CTRL
 * payload any program sends is built by tether_ctrl_encode*() from a C
 * struct, and every one it receives is checked and taken apart by
 * tether_ctrl_decode*() into one: member types, string lengths, number
 * ranges, word lists and unknown members are checked here and nowhere else,
 * in both directions.  Programs switch on enum tether_ctrl_type; none of
 * them compares a message-type string.
 *
 * A message is a JSON object whose member "t" is its wire name.  The same
 * wire name can mean different messages in different directions ("open"
 * from a console is a request, from the relay to an agent a channel
 * opening), so a message type is a wire name and the directions it travels
 * in; a decoder is told which directions it accepts.  A wire name is
 * unique within one direction (a unit test checks it); decoding with
 * several directions at once takes the first type of the table that
 * matches, so a receiver that knows its peer decodes with that one
 * direction.
 *
 * Requests (console to relay) carry an integer "id" >= 1; the relay answers
 * with "ok" (the members of the request's answer, decoded with
 * tether_ctrl_decode_answer()) or "err" (a code and a message).
 *
 * Parts are the objects nested in messages (a ticket, an agent's facts,
 * the pairing info): they have codecs of their own for where they travel
 * as JSON text (the pairing info inside "invite", facts in the relay's
 * database).
 *
 * Bump TETHER_PROTOCOL_VERSION (proto.h) if any message changes meaning.
 */
#ifndef TETHER_CTRL_H
#define TETHER_CTRL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <tether/proto.h>
#include <tether/seal.h>
#include <tether/sign.h>
#include <tether/spake2.h>

/* Directions a message travels in: a bit set. */
#define TETHER_CTRL_C2R 0x1u /* console to relay */
#define TETHER_CTRL_R2C 0x2u /* relay to console */
#define TETHER_CTRL_A2R 0x4u /* agent to relay */
#define TETHER_CTRL_R2A 0x8u /* relay to agent */
#define TETHER_CTRL_TO_RELAY (TETHER_CTRL_C2R | TETHER_CTRL_A2R)
#define TETHER_CTRL_ANY 0xfu

/*
 * The message types: X(NAME, "wire name", directions).  The one table of
 * wire names; append new types, never renumber.
 */
#define TETHER_CTRL_TYPE_MAP(X)                                                \
	/* either side, any time */                                            \
	X(PING, "ping", TETHER_CTRL_ANY)                                       \
	X(PONG, "pong", TETHER_CTRL_ANY)                                       \
	/* opening */                                                          \
	X(HELLO, "hello", TETHER_CTRL_TO_RELAY)                                \
	X(WELCOME, "welcome", TETHER_CTRL_R2C | TETHER_CTRL_R2A)               \
	/* answers to console requests */                                      \
	X(OK, "ok", TETHER_CTRL_R2C)                                           \
	X(ERR, "err", TETHER_CTRL_R2C)                                         \
	/* console requests */                                                 \
	X(TICKET_NEW, "ticket_new", TETHER_CTRL_C2R)                           \
	X(TICKET_LIST, "ticket_list", TETHER_CTRL_C2R)                         \
	X(TICKET_SHOW, "ticket_show", TETHER_CTRL_C2R)                         \
	X(TICKET_CLOSE, "ticket_close", TETHER_CTRL_C2R)                       \
	X(INVITE, "invite", TETHER_CTRL_C2R)                                   \
	X(ATTACH, "attach", TETHER_CTRL_C2R)                                   \
	X(CONFIRM, "confirm", TETHER_CTRL_C2R)                                 \
	X(PAKE_FAILED, "pake_failed", TETHER_CTRL_C2R)                         \
	X(OPEN, "open", TETHER_CTRL_C2R)                                       \
	X(CLOSE, "close", TETHER_CTRL_C2R)                                     \
	X(AGENTS, "agents", TETHER_CTRL_C2R)                                   \
	X(HEALTH, "health", TETHER_CTRL_C2R)                                   \
	X(DIAG_ATTACH, "diag_attach", TETHER_CTRL_C2R)                         \
	X(DIAG_GET, "diag_get", TETHER_CTRL_C2R)                               \
	X(SESSIONS, "sessions", TETHER_CTRL_C2R)                               \
	/* a channel ends (relay to either end, agent to relay) */             \
	X(CHAN_CLOSE, "close",                                                 \
	  TETHER_CTRL_R2C | TETHER_CTRL_R2A | TETHER_CTRL_A2R)                 \
	/* attended agents: pairing and the session */                         \
	X(JOIN, "join", TETHER_CTRL_A2R)                                       \
	X(JOIN_OK, "join_ok", TETHER_CTRL_R2A)                                 \
	X(PAKE, "pake", TETHER_CTRL_A2R)                                       \
	X(PAKE_OK, "pake_ok", TETHER_CTRL_R2A)                                 \
	X(DECLINE, "decline", TETHER_CTRL_A2R)                                 \
	X(RESUME, "resume", TETHER_CTRL_A2R)                                   \
	X(RESUME_OK, "resume_ok", TETHER_CTRL_R2A)                             \
	X(AGENT_CONFIRM, "confirm", TETHER_CTRL_R2A)                           \
	X(CONFIRMED, "confirmed", TETHER_CTRL_A2R)                             \
	X(CHAN_OPEN, "open", TETHER_CTRL_R2A)                                  \
	X(OPENED, "opened", TETHER_CTRL_A2R)                                   \
	X(OPEN_FAILED, "open_failed", TETHER_CTRL_A2R)                         \
	X(XFER_REPORT, "xfer", TETHER_CTRL_A2R)                                \
	X(FORWARD_REPORT, "forward", TETHER_CTRL_A2R)                          \
	X(ENDED, "ended", TETHER_CTRL_R2A)                                     \
	X(LEAVE, "leave", TETHER_CTRL_A2R)                                     \
	/* enrolled agents */                                                  \
	X(ENROLL, "enroll", TETHER_CTRL_A2R)                                   \
	X(ENROLLED, "enrolled", TETHER_CTRL_R2A)                               \
	X(AUTH, "auth", TETHER_CTRL_A2R | TETHER_CTRL_C2R)                     \
	X(AUTH_OK, "auth_ok", TETHER_CTRL_R2A | TETHER_CTRL_R2C)               \
	X(CHECK, "check", TETHER_CTRL_A2R)                                     \
	X(CHECK_ACK, "check_ack", TETHER_CTRL_R2A)                             \
	X(DIAG_REQUEST, "diag_request", TETHER_CTRL_R2A)                       \
	X(DIAG, "diag", TETHER_CTRL_A2R)                                       \
	/* console requests, continued ("technician_add" would be 14 bytes:    \
	 * jansson 2.14 overflows its lexer's buffer on a 14-byte string       \
	 * when an allocation fails, as the OOM tests make) */                 \
	X(TICKET_COMMENT, "comment", TETHER_CTRL_C2R)                          \
	X(TICKET_REOPEN, "ticket_reopen", TETHER_CTRL_C2R)                     \
	X(TICKET_ASSIGN, "ticket_assign", TETHER_CTRL_C2R)                     \
	X(TECH_ADD, "technician_create", TETHER_CTRL_C2R)                      \
	X(TECH_REMOVE, "technician_remove", TETHER_CTRL_C2R)                   \
	X(TECH_LIST, "technician_list", TETHER_CTRL_C2R)                       \
	X(TECH_ROLE, "technician_role", TETHER_CTRL_C2R)                       \
	X(ENROLL_TOKEN, "enroll_token", TETHER_CTRL_C2R)

enum tether_ctrl_type {
/* An X-macro expansion is not an expression: kept as written. */
/* clang-format off */
#define TETHER_CTRL_ENUM_(name, wire, dirs) TETHER_CTRL_##name,
	TETHER_CTRL_TYPE_MAP(TETHER_CTRL_ENUM_)
#undef TETHER_CTRL_ENUM_
	TETHER_CTRL_TYPES /* how many */
	/* clang-format on */
};

/*
 * Error codes of "err" answers: X(NAME, "wire code").  A console words the
 * ones it understands itself and shows the relay's message for the rest.
 */
#define TETHER_CTRL_CODE_MAP(X)                                                \
	X(BAD_REQUEST, "bad_request")                                          \
	X(NOT_FOUND, "not_found")                                              \
	X(STATE, "state")                                                      \
	X(NO_AGENT, "no_agent")                                                \
	X(AUTH, "auth")                                                        \
	X(PAKE_FAILED, "pake_failed")                                          \
	X(DECLINED, "declined")                                                \
	X(LIMIT, "limit")                                                      \
	X(INTERNAL, "internal")                                                \
	X(FORBIDDEN, "forbidden")

enum tether_ctrl_code {
/* An X-macro expansion is not an expression: kept as written. */
/* clang-format off */
#define TETHER_CTRL_CODE_ENUM_(name, wire) TETHER_CTRL_E_##name,
	TETHER_CTRL_CODE_MAP(TETHER_CTRL_CODE_ENUM_)
#undef TETHER_CTRL_CODE_ENUM_
	TETHER_CTRL_CODES
	/* clang-format on */
};

/* Wire names; NULL for a value out of range. */
const char *tether_ctrl_type_name(enum tether_ctrl_type t);
/* The directions a type travels in (TETHER_CTRL_C2R...); 0 out of range. */
unsigned tether_ctrl_type_dirs(enum tether_ctrl_type t);
const char *tether_ctrl_code_name(enum tether_ctrl_code c);

/*
 * Word lists the messages use (members decoded into the enums of
 * tether/proto.h); each has a table of wire words, indexed by the enum,
 * and a parser.
 */
#define TETHER_CTRL_WORD_LISTS(X)                                              \
	X(role, ROLE, "console", "agent")                                      \
	X(kind, KIND, "exec", "shell", "file", "forward", "diag")              \
	X(check_state, CHECK_STATE, "OK", "WARNING", "CRITICAL", "UNKNOWN")    \
	X(check_type, CHECK_TYPE, "SOFT", "HARD")                              \
	X(ticket_on, TICKET_ON, "critical", "warning", "never")                \
	X(xfer_dir, XFER_DIR, "put", "get")                                    \
	X(xfer_type, XFER_TYPE, "skip", "file", "dir", "symlink")              \
	X(status, STATUS, "open", "closed")                                    \
	X(source, SOURCE, "manual", "health")                                  \
	X(tech_role, TECH_ROLE, "admin", "technician", "auditor")              \
	X(session_state, SESSION_STATE, "waiting", "joined", "paired",         \
	  "ended", "burned", "expired", "declined")

/* The enums behind these lists are in tether/proto.h. */

#define TETHER_CTRL_WORDS_DECL_(lname, uname, ...)                             \
	extern const char *const tether_ctrl_##lname##_words[];                \
	extern const size_t tether_ctrl_##lname##_nwords;
TETHER_CTRL_WORD_LISTS(TETHER_CTRL_WORDS_DECL_)
#undef TETHER_CTRL_WORDS_DECL_

/*
 * The index of word s in words (n of them), or -1 (also for NULL): for
 * words that come from a user rather than the wire ("--status open").
 */
int tether_ctrl_word(const char *const *words, size_t n, const char *s);
#define tether_ctrl_word_of(lname, s)                                          \
	tether_ctrl_word(tether_ctrl_##lname##_words,                          \
			 tether_ctrl_##lname##_nwords, (s))
/* The word for value v, or "?" if out of range. */
const char *tether_ctrl_word_name(const char *const *words, size_t n, int v);
#define tether_ctrl_name_of(lname, v)                                          \
	tether_ctrl_word_name(tether_ctrl_##lname##_words,                     \
			      tether_ctrl_##lname##_nwords, (int)(v))

/* ---- Limits ---- */

#define TETHER_CTRL_TOKEN_MAX 256
#define TETHER_CTRL_NAME_MAX 64 /* technicians, agents, checks */
#define TETHER_CTRL_TITLE_MAX 200
#define TETHER_CTRL_RESOLUTION_MAX 2000
#define TETHER_CTRL_INFO_MAX 4096
#define TETHER_CTRL_MESSAGE_MAX 1024
#define TETHER_CTRL_REASON_MAX 512
#define TETHER_CTRL_PATH_MAX 4096
#define TETHER_CTRL_HOST_MAX 255
#define TETHER_CTRL_FACT_MAX 256
#define TETHER_CTRL_LABELS_MAX 32
#define TETHER_CTRL_LABEL_MAX 128
#define TETHER_CTRL_CAPS_MAX 16
#define TETHER_CTRL_OUTPUT_MAX 1024
#define TETHER_CTRL_PERFDATA_MAX 32
#define TETHER_CTRL_RESUME_LEN 32 /* bytes of a resume token */
#define TETHER_CTRL_NAMEPLATE_MAX 8
/*
 * The pairing info sealed under the PAKE key (tether_msg_seal_info()): hex of
 * its cstring body and the tag.
 */
#define TETHER_CTRL_SEALED_INFO_MAX                                            \
	(2 * (4 + TETHER_CTRL_INFO_MAX + TETHER_SEAL_TAG_LEN))
/* An address as the relay words it ("127.0.0.1", "2001:db8::1"). */
#define TETHER_CTRL_ADDR_MAX 64
/* Rows in one answer (tickets, audit events, agents, checks). */
#define TETHER_CTRL_ROWS_MAX 100000
/* Open channels listed for one live session (more are counted, not named). */
#define TETHER_CTRL_LIVE_CHANNELS_MAX 1024
#define TETHER_CTRL_COMMENT_MAX 2000
/* A page of ticket_list or of ticket_show's audit: default and most. */
#define TETHER_CTRL_PAGE_DEFAULT 50
#define TETHER_CTRL_PAGE_MAX 500
/* The newest comments ticket_show carries (comments_more: the rest). */
#define TETHER_CTRL_COMMENTS_SHOWN 100

/* ---- Parts ---- */

/* What an agent tells about its machine. */
struct tether_ctrl_facts {
	const char *hostname; /* optional, each at most TETHER_CTRL_FACT_MAX */
	const char *os;
	const char *user;
};

/*
 * What the console shows the customer, as JSON text: in "invite" for the
 * relay's records, and to the agent only sealed under the PAKE key with the
 * console's key confirmation ("confirm"), so that a wrong code shows
 * nothing and the relay cannot change it.  Unknown capability words are
 * kept: the customer is shown them as they are.
 */
struct tether_ctrl_info {
	const char *technician;
	const char *ticket; /* "T-N" as the console wrote it */
	const char *title;
	const char *const *capabilities;
	size_t ncapabilities;
};

struct tether_ctrl_label {
	const char *key;
	const char *value;
};

/*
 * One Nagios perfdata value: numbers are NaN and ranges NULL where the
 * plugin gave none (null on the wire).
 */
struct tether_ctrl_perf {
	const char *label;
	double value;
	const char *uom;  /* "" if none */
	const char *warn; /* a range as the plugin wrote it ("10:20") */
	const char *crit;
	double min;
	double max;
};

/* A session as a ticket shows it: never info, PAKE values or tokens. */
struct tether_ctrl_session_row {
	const char *nameplate;
	enum tether_session_state state;
	int64_t created_at; /* Unix seconds; 0: none (null on the wire) */
	int64_t expires_at;
	bool has_agent;
	struct tether_ctrl_facts agent;
};

struct tether_ctrl_audit_row {
	int64_t id; /* the row's place in the trail: the key of pages */
	int64_t ts;
	const char *actor;
	const char *event;
	json_t *detail; /* any JSON value, or NULL (null); borrowed */
};

struct tether_ctrl_attachment_row {
	const char *kind;
	const char *source;
	int64_t created_at;
	int64_t size;
};

/* A note a technician left on a ticket. */
struct tether_ctrl_comment_row {
	int64_t id;
	const char *by; /* the technician's name then */
	int64_t at;
	const char *text; /* 1 to TETHER_CTRL_COMMENT_MAX bytes */
};

struct tether_ctrl_ticket {
	int64_t id; /* T-N on the wire */
	const char *title;
	const char *customer; /* NULL: none */
	enum tether_ticket_status status;
	enum tether_ticket_source source;
	int64_t created_at;
	int64_t closed_at;	/* 0: open */
	const char *resolution; /* NULL: none */
	const char *created_by; /* NULL: the relay (health tickets) */
	const char *assignee;	/* NULL: unassigned (the queue) */
	/* ticket_show only (has_detail): */
	bool has_detail;
	const struct tether_ctrl_session_row *sessions;
	size_t nsessions;
	const struct tether_ctrl_attachment_row *attachments;
	size_t nattachments;
	/* one page of the trail, oldest first (ticket_show's before/after) */
	const struct tether_ctrl_audit_row *audit;
	size_t naudit;
	int64_t audit_more; /* rows beyond the page, on the side paged to */
	const struct tether_ctrl_comment_row *comments; /* oldest first */
	size_t ncomments;
	int64_t comments_more; /* older comments not carried */
};

struct tether_ctrl_agent_row {
	const char *name;
	const struct tether_ctrl_label *labels;
	size_t nlabels;
	bool has_facts;
	struct tether_ctrl_facts facts;
	int64_t enrolled_at;
	int64_t last_seen; /* 0: never */
	bool connected;
	bool has_worst; /* false: no checks yet */
	enum tether_check_state worst;
	int64_t checks;
};

/*
 * A live session as `tether sessions` lists it: who works on which ticket
 * with which customer machine, since when, over which open channels.
 */
struct tether_ctrl_live_row {
	int64_t ticket; /* T-N on the wire */
	const char *title;
	const char *technician; /* NULL: no longer a technician */
	const char *nameplate;
	enum tether_session_state state;
	bool connected;	  /* the agent is on the relay now */
	const char *addr; /* where the agent joined from */
	int64_t since;	  /* Unix seconds: joined (or resumed) */
	bool has_agent;
	struct tether_ctrl_facts agent;
	const char *const *channels; /* kinds of the open channels */
	size_t nchannels;
};

struct tether_ctrl_check_row {
	const char *agent;
	const char *check;
	enum tether_check_state state;
	enum tether_check_type type;
	int64_t attempt;
	int64_t max_attempts;
	int64_t since;
	int64_t last;
	const char *output;
	const struct tether_ctrl_perf *perfdata;
	size_t nperfdata;
	int64_t ticket; /* 0: none */
	bool flapping;
};

/* ---- Messages; strings are UTF-8 without NUL ---- */

/*
 * A console names its technician, whose registered key then signs the
 * challenge in auth; or, logging in, brings the one-time login token and
 * the public key to register (and signs with its private half).
 */
struct tether_ctrl_hello {
	enum tether_role role;
	int64_t version;	/* TETHER_PROTOCOL_VERSION */
	const char *technician; /* consoles with a registered key */
	const char *token;	/* consoles logging in; NULL else */
	bool has_pubkey;	/* with token: the key to register */
	uint8_t pubkey[TETHER_SIGN_PUB_LEN];
};

struct tether_ctrl_welcome {
	int64_t version;
	/* The fresh challenge an enrolled agent or a console signs. */
	bool has_challenge;
	uint8_t challenge[TETHER_AGENT_CHALLENGE_LEN];
};

struct tether_ctrl_err {
	enum tether_ctrl_code code;
	const char *message;
};

struct tether_ctrl_ticket_new {
	const char *title;    /* 1 to TETHER_CTRL_TITLE_MAX bytes */
	const char *customer; /* optional */
};

/*
 * Filters of ticket_list, all optional and combined with "and"; the
 * answer is newest first.  New filters are appended as optional members.
 */
struct tether_ctrl_ticket_list {
	bool has_status; /* absent: open and closed */
	enum tether_ticket_status status;
	bool has_source;
	enum tether_ticket_source source;
	const char *customer; /* substring of the customer, any case */
	const char *search;   /* substring of the title or the customer */
	int64_t limit;	      /* at most TETHER_CTRL_PAGE_MAX; 0: 50 */
	int64_t before;	      /* only tickets with a lower id; 0: none */
	/*
	 * At most one of these three: assigned to the technician of that
	 * name, to the technician asking, or to nobody.  me and unassigned
	 * are flags, not names, so that no technician's name is mistaken
	 * for either.
	 */
	const char *assignee;
	bool assignee_me;
	bool unassigned;
};

/*
 * ticket_show: the ticket with a page of its audit trail keyed by audit
 * row id.  Neither before nor after: the newest limit rows; before: the
 * newest limit rows below it; after: the oldest limit rows above it
 * (a zeroed struct asks for the newest page, so callers that want the
 * ticket alone need set nothing else).
 * The page may hold fewer rows than limit so that the answer fits one
 * frame; audit_more then counts the rest.
 */
struct tether_ctrl_ticket_show {
	int64_t ticket;
	int64_t limit;	/* at most TETHER_CTRL_PAGE_MAX; 0: 50 */
	int64_t before; /* 0: none */
	int64_t after;	/* 0: none; not with before */
};

struct tether_ctrl_ticket_comment {
	int64_t ticket;
	const char *text; /* 1 to TETHER_CTRL_COMMENT_MAX bytes */
};

/* ticket_show, attach, diag_get */
struct tether_ctrl_ticket_ref {
	int64_t ticket;
};

struct tether_ctrl_ticket_close {
	int64_t ticket;
	const char *resolution;
};

struct tether_ctrl_invite {
	int64_t ticket;
	int64_t expires;  /* seconds; default TETHER_INVITE_TTL_DEFAULT */
	const char *info; /* JSON text of struct tether_ctrl_info */
	uint8_t pake[TETHER_SPAKE2_ELEM_LEN]; /* pA */
};

struct tether_ctrl_confirm {
	int64_t session;
	uint8_t conf[TETHER_SPAKE2_CONF_LEN]; /* cA */
	const char
	    *info; /* the info sealed under Ke (tether_msg_seal_info()) */
};

struct tether_ctrl_session_ref {
	int64_t session;
};

struct tether_ctrl_open {
	int64_t session;
	enum tether_kind kind;
	uint8_t nonce[TETHER_SEAL_NONCE_LEN]; /* nonce_c */
};

/* close (a console request) */
struct tether_ctrl_channel_ref {
	int64_t channel;
};

struct tether_ctrl_health {
	const char *agent; /* NULL: all */
};

struct tether_ctrl_diag_attach {
	int64_t ticket;
	const char *bundle; /* packed (bundle.h) */
};

struct tether_ctrl_chan_close {
	int64_t channel;
	const char *reason; /* optional */
};

struct tether_ctrl_join {
	const char *nameplate;
	bool has_facts;
	struct tether_ctrl_facts facts;
};

/* No ticket info: that comes sealed, after key confirmation. */
struct tether_ctrl_join_ok {
	int64_t session;
	uint8_t pake_a[TETHER_SPAKE2_ELEM_LEN];
	int64_t expires_at;
	const char *nameplate;
};

struct tether_ctrl_pake {
	uint8_t pake_b[TETHER_SPAKE2_ELEM_LEN];
	uint8_t conf_b[TETHER_SPAKE2_CONF_LEN];
};

struct tether_ctrl_pake_ok {
	uint8_t resume[TETHER_CTRL_RESUME_LEN];
};

struct tether_ctrl_resume {
	int64_t session;
	uint8_t token[TETHER_CTRL_RESUME_LEN];
};

struct tether_ctrl_resume_ok {
	enum tether_session_state state;
};

struct tether_ctrl_agent_confirm {
	uint8_t conf[TETHER_SPAKE2_CONF_LEN];
	const char *info; /* the console's, forwarded opaque */
};

/*
 * The agent's verdict on the console's confirmation and, when it checked
 * out, the customer's consent: the capabilities requested (as the sealed
 * info named them) and those the customer allowed, a subset.
 */
struct tether_ctrl_confirmed {
	bool ok;
	const char *const *allowed;
	size_t nallowed;
	const char *const *requested;
	size_t nrequested;
};

struct tether_ctrl_chan_open {
	int64_t channel;
	enum tether_kind kind;
	uint8_t nonce[TETHER_SEAL_NONCE_LEN]; /* nonce_c */
	const char *technician;
};

struct tether_ctrl_opened {
	int64_t channel;
	uint8_t nonce[TETHER_SEAL_NONCE_LEN]; /* nonce_a */
};

struct tether_ctrl_open_failed {
	int64_t channel;
	const char *reason;
};

/*
 * An agent's account of one transferred entry.  Long paths and reasons
 * are clipped (on a UTF-8 boundary) rather than refused: the audit row is
 * worth keeping.
 */
struct tether_ctrl_xfer_report {
	int64_t channel;
	enum tether_xfer_dir direction;
	const char *path;
	enum tether_xfer_type type;
	int64_t size;
	bool has_sha256; /* "" on the wire when not */
	uint8_t sha256[32];
	int64_t offset;
	int64_t sent;
	int64_t ms;
	bool ok;
	const char *reason; /* "" when ok */
};

struct tether_ctrl_forward_report {
	int64_t channel;
	const char *host;
	int64_t port;
	bool ok;
	const char *reason;
};

struct tether_ctrl_ended {
	const char *reason;
};

struct tether_ctrl_enroll {
	const char *token;
	const char *name;
	uint8_t pubkey[TETHER_SIGN_PUB_LEN];
	const struct tether_ctrl_label *labels;
	size_t nlabels;
	bool has_facts;
	struct tether_ctrl_facts facts;
};

struct tether_ctrl_enrolled {
	const char *agent;
};

/* An enrolled agent's or a console's signature of the challenge. */
struct tether_ctrl_auth {
	const char *agent; /* agents; NULL from consoles (hello named them) */
	uint8_t sig[TETHER_SIGN_SIG_LEN];
};

struct tether_ctrl_auth_ok {
	/* agents: the last check result seq the relay holds */
	bool has_acked;
	int64_t acked;
	/* consoles: who they are now */
	const char *technician;
	bool has_role;
	enum tether_tech_role role;
};

/*
 * A check result.  Output is clipped to TETHER_CTRL_OUTPUT_MAX and
 * perfdata to TETHER_CTRL_PERFDATA_MAX values rather than refused: a
 * chatty plugin is not an attack.
 */
struct tether_ctrl_check {
	int64_t seq; /* >= 1 */
	const char *check;
	enum tether_check_state state;
	enum tether_check_type type;
	int64_t attempt;
	int64_t max_attempts;
	const char *output; /* "" if none */
	const struct tether_ctrl_perf *perfdata;
	size_t nperfdata;
	int64_t ts; /* Unix seconds */
	int64_t duration_ms;
	enum tether_ticket_on ticket_on; /* default critical */
	int64_t dropped;		 /* results lost before this one */
};

struct tether_ctrl_check_ack {
	int64_t seq;
};

/* diag_request */
struct tether_ctrl_diag_request {
	int64_t ticket;
};

struct tether_ctrl_diag {
	int64_t ticket;
	const char *bundle; /* packed; NULL with error */
	const char *error;
};

struct tether_ctrl_ticket_assign {
	int64_t ticket;
	const char *to; /* a technician's name; NULL: nobody (unless me) */
	bool me;	/* to the technician asking */
};

/* technician_add */
struct tether_ctrl_tech_add {
	const char *name;
	enum tether_tech_role role; /* default technician */
};

/* technician_remove */
struct tether_ctrl_tech_ref {
	const char *name;
};

/* technician_role */
struct tether_ctrl_tech_role {
	const char *name;
	enum tether_tech_role role;
};

struct tether_ctrl_enroll_token {
	int64_t ttl; /* seconds; default TETHER_ENROLL_TTL_DEFAULT */
};

/* ---- Answers ("ok" to each request) ---- */

/* A technician as the relay lists them (never a token or its hash). */
struct tether_ctrl_tech_row {
	int64_t id;
	const char *name;
	enum tether_tech_role role;
	int64_t created_at;
};

/* technician_add: the one-time login token, shown once. */
struct tether_ctrl_tech_add_ok {
	struct tether_ctrl_tech_row technician;
	const char *token;
};

/* technician_remove, technician_role (from: the role before). */
struct tether_ctrl_tech_ok {
	struct tether_ctrl_tech_row technician;
	bool has_from;
	enum tether_tech_role from;
};

struct tether_ctrl_tech_list_ok {
	const struct tether_ctrl_tech_row *technicians;
	size_t ntechnicians;
};

struct tether_ctrl_enroll_token_ok {
	const char *token;
	int64_t expires_at;
	const char *fingerprint;
};

/* ticket_new, ticket_show, ticket_close, ticket_reopen */
struct tether_ctrl_ticket_ok {
	struct tether_ctrl_ticket ticket;
};

struct tether_ctrl_ticket_list_ok {
	const struct tether_ctrl_ticket *tickets;
	size_t ntickets;
	int64_t more; /* tickets that match beyond this page */
};

struct tether_ctrl_ticket_comment_ok {
	int64_t ticket;
	struct tether_ctrl_comment_row comment;
};

/* The ticket's previous code, burned by a wrong entry. */
struct tether_ctrl_burned {
	const char *nameplate;
	int64_t at;	    /* Unix seconds; 0: not known (null on the wire) */
	const char *reason; /* "wrong code", "join abandoned"; NULL: unknown */
};

struct tether_ctrl_invite_ok {
	const char *nameplate;
	int64_t session;
	int64_t expires_at;
	bool has_burned; /* "burned" is there only when it was */
	struct tether_ctrl_burned burned;
};

struct tether_ctrl_attach_ok {
	int64_t session;
	enum tether_session_state state;
	const char *nameplate;
	bool has_agent;
	struct tether_ctrl_facts agent;
	/* joined: the agent's SPAKE2 half */
	bool has_pake;
	uint8_t pake_b[TETHER_SPAKE2_ELEM_LEN];
	uint8_t conf_b[TETHER_SPAKE2_CONF_LEN];
};

/* pake_failed's answer: where the join that burned the code came from. */
struct tether_ctrl_pake_failed_ok {
	const char *addr; /* NULL: not known */
};

struct tether_ctrl_open_ok {
	int64_t channel;
	uint8_t nonce[TETHER_SEAL_NONCE_LEN]; /* nonce_a */
};

struct tether_ctrl_agents_ok {
	const struct tether_ctrl_agent_row *agents;
	size_t nagents;
};

struct tether_ctrl_sessions_ok {
	const struct tether_ctrl_live_row *sessions;
	size_t nsessions;
};

struct tether_ctrl_health_ok {
	const struct tether_ctrl_check_row *checks;
	size_t nchecks;
};

struct tether_ctrl_diag_attach_ok {
	int64_t size;
};

struct tether_ctrl_diag_get_ok {
	const char *bundle;
	int64_t created_at;
	const char *source;
};

/* Every message body and answer; which one is in use the type says. */
union tether_ctrl_body {
	struct tether_ctrl_hello hello;
	struct tether_ctrl_welcome welcome;
	struct tether_ctrl_err err;
	struct tether_ctrl_ticket_new ticket_new;
	struct tether_ctrl_ticket_list ticket_list;
	struct tether_ctrl_ticket_show ticket_show;
	struct tether_ctrl_ticket_comment ticket_comment;
	struct tether_ctrl_ticket_ref ticket_ref;
	struct tether_ctrl_ticket_close ticket_close;
	struct tether_ctrl_invite invite;
	struct tether_ctrl_confirm confirm;
	struct tether_ctrl_session_ref session_ref;
	struct tether_ctrl_open open;
	struct tether_ctrl_channel_ref channel_ref;
	struct tether_ctrl_health health;
	struct tether_ctrl_diag_attach diag_attach;
	struct tether_ctrl_chan_close chan_close;
	struct tether_ctrl_join join;
	struct tether_ctrl_join_ok join_ok;
	struct tether_ctrl_pake pake;
	struct tether_ctrl_pake_ok pake_ok;
	struct tether_ctrl_resume resume;
	struct tether_ctrl_resume_ok resume_ok;
	struct tether_ctrl_agent_confirm agent_confirm;
	struct tether_ctrl_confirmed confirmed;
	struct tether_ctrl_chan_open chan_open;
	struct tether_ctrl_opened opened;
	struct tether_ctrl_open_failed open_failed;
	struct tether_ctrl_xfer_report xfer_report;
	struct tether_ctrl_forward_report forward_report;
	struct tether_ctrl_ended ended;
	struct tether_ctrl_enroll enroll;
	struct tether_ctrl_enrolled enrolled;
	struct tether_ctrl_auth auth;
	struct tether_ctrl_auth_ok auth_ok;
	struct tether_ctrl_check check;
	struct tether_ctrl_check_ack check_ack;
	struct tether_ctrl_diag_request diag_request;
	struct tether_ctrl_diag diag;
	struct tether_ctrl_ticket_assign ticket_assign;
	struct tether_ctrl_tech_add tech_add;
	struct tether_ctrl_tech_ref tech_ref;
	struct tether_ctrl_tech_role tech_role;
	struct tether_ctrl_enroll_token enroll_token;
	/* answers */
	struct tether_ctrl_ticket_ok ticket_ok;
	struct tether_ctrl_ticket_list_ok ticket_list_ok;
	struct tether_ctrl_ticket_comment_ok ticket_comment_ok;
	struct tether_ctrl_invite_ok invite_ok;
	struct tether_ctrl_attach_ok attach_ok;
	struct tether_ctrl_pake_failed_ok pake_failed_ok;
	struct tether_ctrl_open_ok open_ok;
	struct tether_ctrl_agents_ok agents_ok;
	struct tether_ctrl_health_ok health_ok;
	struct tether_ctrl_diag_attach_ok diag_attach_ok;
	struct tether_ctrl_diag_get_ok diag_get_ok;
	struct tether_ctrl_sessions_ok sessions_ok;
	struct tether_ctrl_tech_add_ok tech_add_ok;
	struct tether_ctrl_tech_ok tech_ok;
	struct tether_ctrl_tech_list_ok tech_list_ok;
	struct tether_ctrl_enroll_token_ok enroll_token_ok;
};

/*
 * A decoded message.  Its strings, arrays and JSON values live as long as
 * the message: tether_ctrl_msg_free() releases them all.
 */
struct tether_ctrl_msg {
	enum tether_ctrl_type type;
	int64_t id; /* requests and answers; 0 otherwise */
	union tether_ctrl_body body;
	/* Private: what the borrowed members point into. */
	json_t *root_;
	void *blocks_;
};

/* Why a decode failed, in words ("check: member \"seq\" missing"). */
#define TETHER_CTRL_WHY_MAX 160

/*
 * Decodes a CTRL payload into *m, accepting only messages that travel in
 * one of dirs.  An "ok" answer is only taken apart as far as its id: see
 * tether_ctrl_decode_answer().  On failure *m is empty (freeing it is
 * fine) and why (may be NULL) says what was wrong; the return is
 * TETHER_ERR_NOT_FOUND for a type not known in these directions (a newer
 * peer's message, or one sent the wrong way), TETHER_ERR_PROTOCOL for
 * what is not a message at all (not JSON, not an object, no "t") or has
 * an unknown member, TETHER_ERR_FORMAT for a member of the wrong type,
 * length or range, TETHER_ERR_NOMEM.  m->type is set as soon as the type
 * is known, even when a member then fails, so that a caller can word the
 * error after the message ("malformed check"); it is TETHER_CTRL_TYPES
 * before that.
 */
int tether_ctrl_decode(const void *payload, size_t len, unsigned dirs,
		       struct tether_ctrl_msg *m, char *why, size_t whylen);
/*
 * The "id" of a payload that tether_ctrl_decode() refused, so that the
 * receiver can still answer the request it could not read (an unknown
 * type, a member that breaks the schema): 0 with the id (an integer
 * >= 1) in *id, else *id is 0 and the return is TETHER_ERR_PROTOCOL (not
 * JSON, or no memory to read it) or TETHER_ERR_NOT_FOUND (no such id).
 */
int tether_ctrl_request_id(const void *payload, size_t len, int64_t *id);
/*
 * Takes an "ok" message m apart as the answer to a request of type
 * request: m->body then holds the answer's struct (m->type stays
 * TETHER_CTRL_OK).  Errors as tether_ctrl_decode().
 */
int tether_ctrl_decode_answer(struct tether_ctrl_msg *m,
			      enum tether_ctrl_type request, char *why,
			      size_t whylen);
/* Releases what m holds and empties it.  NULL and empty messages are fine. */
void tether_ctrl_msg_free(struct tether_ctrl_msg *m);

/*
 * Encodes a message of type t with body (NULL for types without members;
 * the struct matching t otherwise) and, for requests, id (>= 1; ignored
 * for other types).  The body is checked as a decoder would check it:
 * TETHER_ERR_INVALID (with a log line naming the member) for a value that
 * breaks the schema, so a program cannot send what its peer would refuse.
 * *text: NUL-terminated compact JSON the caller frees with tether_free();
 * *len (may be NULL) its length.
 */
int tether_ctrl_encode(enum tether_ctrl_type t, int64_t id, const void *body,
		       char **text, size_t *len);
/* The "ok" answer to a request of type request, body its answer struct. */
int tether_ctrl_encode_answer(enum tether_ctrl_type request, int64_t id,
			      const void *body, char **text, size_t *len);
/* The "err" answer: message is cut to TETHER_CTRL_MESSAGE_MAX bytes. */
int tether_ctrl_encode_err(int64_t id, enum tether_ctrl_code code,
			   const char *message, char **text, size_t *len);

/*
 * The same encoders into a JSON value (new reference, for --json output
 * of what a program received): NULL on an invalid body or no memory.
 */
json_t *tether_ctrl_to_json(enum tether_ctrl_type t, int64_t id,
			    const void *body);
json_t *tether_ctrl_answer_to_json(enum tether_ctrl_type request, int64_t id,
				   const void *body);

/* ---- Parts as JSON text ---- */

enum tether_ctrl_part {
	TETHER_CTRL_PART_FACTS,	    /* struct tether_ctrl_facts */
	TETHER_CTRL_PART_INFO,	    /* struct tether_ctrl_info */
	TETHER_CTRL_PART_LABELS,    /* struct tether_ctrl_labels: an object */
	TETHER_CTRL_PART_PERFDATA,  /* struct tether_ctrl_perfdata: an array */
	TETHER_CTRL_PART_TICKET,    /* struct tether_ctrl_ticket */
	TETHER_CTRL_PART_AGENT_ROW, /* struct tether_ctrl_agent_row */
	TETHER_CTRL_PART_CHECK_ROW, /* struct tether_ctrl_check_row */
	TETHER_CTRL_PART_LIVE_ROW,  /* struct tether_ctrl_live_row */
	TETHER_CTRL_PARTS
};

/* The list parts: their JSON is the list itself. */
struct tether_ctrl_labels {
	const struct tether_ctrl_label *labels;
	size_t nlabels;
};
struct tether_ctrl_perfdata {
	const struct tether_ctrl_perf *perfdata;
	size_t nperfdata;
};

/* A decoded part: as struct tether_ctrl_msg, body in body. */
struct tether_ctrl_part_msg {
	enum tether_ctrl_part part;
	union {
		struct tether_ctrl_facts facts;
		struct tether_ctrl_info info;
		struct tether_ctrl_labels labels;
		struct tether_ctrl_perfdata perfdata;
		struct tether_ctrl_ticket ticket;
		struct tether_ctrl_agent_row agent_row;
		struct tether_ctrl_check_row check_row;
		struct tether_ctrl_live_row live_row;
	} body;
	json_t *root_;
	void *blocks_;
};

/* As tether_ctrl_encode(), for a part: *text freed with tether_free(). */
int tether_ctrl_part_encode(enum tether_ctrl_part part, const void *body,
			    char **text, size_t *len);
/* As tether_ctrl_to_json(), for a part. */
json_t *tether_ctrl_part_to_json(enum tether_ctrl_part part, const void *body);
/* As tether_ctrl_decode(), for a part in JSON text. */
int tether_ctrl_part_decode(enum tether_ctrl_part part, const void *text,
			    size_t len, struct tether_ctrl_part_msg *m,
			    char *why, size_t whylen);
void tether_ctrl_part_free(struct tether_ctrl_part_msg *m);

/*
 * Times travel as ISO-8601 UTC ("2026-12-07T15:54:05Z"); these are the
 * conversions the codec uses.  format: TETHER_ERR_INVALID for times
 * before 1970 or after 9999 (out needs 21 bytes).  parse: exactly that
 * form, TETHER_ERR_FORMAT otherwise.
 */
#define TETHER_CTRL_TIME_LEN 21
int tether_ctrl_time_format(int64_t t, char out[TETHER_CTRL_TIME_LEN]);
int tether_ctrl_time_parse(const char *s, int64_t *t);

#endif /* TETHER_CTRL_H */
