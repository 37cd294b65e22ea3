/*
 * Console requests (docs/protocol.md, "Console requests"): tickets, invites,
 * attaching to a session, key confirmation and channel opening.  Every
 * request carries an id that the answer echoes.  Dispatch is a table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tether/code.h>
#include <tether/crypto.h>
#include <tether/err.h>
#include <tether/log.h>
#include <tether/proto.h>
#include <tether/seal.h>
#include <tether/spake2.h>

#include "relay.h"

#define TITLE_MAX 200
#define INFO_MAX 4096
#define RESOLUTION_MAX 2000

struct request {
	struct relay_peer *p;
	struct relay *r;
	json_t *msg;
	int64_t id;
	char actor[96];
};

int relay_parse_ticket(const char *s, int64_t *id)
{
	char *end;
	long long v;

	*id = 0;
	if (s == NULL || (s[0] != 'T' && s[0] != 't') || s[1] != '-')
		return TETHER_ERR_FORMAT;
	v = strtoll(s + 2, &end, 10);
	if (end == s + 2 || *end != '\0' || v <= 0)
		return TETHER_ERR_FORMAT;
	*id = v;
	return TETHER_OK;
}

static const char *str_field(struct request *q, const char *key)
{
	return json_string_value(json_object_get(q->msg, key));
}

/* Looks up the request's "ticket"; answers the error itself. */
static int want_ticket(struct request *q, int64_t *id, bool must_be_open)
{
	const char *t = str_field(q, "ticket");
	char status[16];

	if (relay_parse_ticket(t, id) != 0) {
		relay_reply_err(q->p, q->id, "bad_request",
				"ticket must look like T-1");
		return TETHER_ERR_FORMAT;
	}
	if (tether_store_ticket_brief(q->r->store, *id, NULL, 0, status,
				      sizeof(status)) != 0) {
		relay_reply_err(q->p, q->id, "not_found", "no such ticket %s",
				t);
		return TETHER_ERR_NOT_FOUND;
	}
	if (must_be_open && strcmp(status, "open") != 0) {
		relay_reply_err(q->p, q->id, "state", "ticket %s is closed", t);
		return TETHER_ERR_STATE;
	}
	return TETHER_OK;
}

static void reply_ticket(struct request *q, int64_t id, bool detail)
{
	json_t *t = NULL;

	if (tether_store_ticket_get(q->r->store, id, detail, &t) != 0) {
		relay_reply_err(q->p, q->id, "internal", "cannot read ticket");
		return;
	}
	relay_reply_ok(q->p, q->id, json_pack("{s:o}", "ticket", t));
}

static void ticket_new(struct request *q)
{
	const char *title = str_field(q, "title");
	const char *customer = str_field(q, "customer");
	int64_t id;

	if (title == NULL || *title == '\0' || strlen(title) > TITLE_MAX ||
	    (customer != NULL && strlen(customer) > TITLE_MAX)) {
		relay_reply_err(q->p, q->id, "bad_request",
				"a ticket needs a title of 1 to %d bytes",
				TITLE_MAX);
		return;
	}
	if (tether_store_ticket_new(q->r->store, title, customer, "manual",
				    q->p->tech.id, &id) != 0) {
		relay_reply_err(q->p, q->id, "internal", "cannot store ticket");
		return;
	}
	relay_audit(q->r, q->actor, id, 0, "ticket_created", NULL);
	reply_ticket(q, id, false);
}

static void ticket_list(struct request *q)
{
	const char *status = str_field(q, "status");
	json_t *list = NULL;

	if (status != NULL && strcmp(status, "open") != 0 &&
	    strcmp(status, "closed") != 0) {
		relay_reply_err(q->p, q->id, "bad_request",
				"status must be open or closed");
		return;
	}
	if (tether_store_ticket_list(q->r->store, status, &list) != 0) {
		relay_reply_err(q->p, q->id, "internal", "cannot list tickets");
		return;
	}
	relay_reply_ok(q->p, q->id, json_pack("{s:o}", "tickets", list));
}

static void ticket_show(struct request *q)
{
	int64_t id;

	if (want_ticket(q, &id, false) == 0)
		reply_ticket(q, id, true);
}

int relay_ticket_end_session(struct relay *r, int64_t ticket_id,
			     const char *reason)
{
	struct tether_store_session ss;
	struct relay_session *s;

	if (tether_store_session_live_for_ticket(r->store, ticket_id, &ss) != 0)
		return TETHER_ERR_NOT_FOUND;
	s = relay_session_find(r, ss.id);
	if (s != NULL)
		relay_session_end(r, s, "ended", reason);
	else
		tether_store_session_set_state(r->store, ss.id, "ended");
	tether_store_session_clear(&ss);
	return TETHER_OK;
}

static void ticket_close(struct request *q)
{
	const char *resolution = str_field(q, "resolution");
	int64_t id;
	int rc;

	if (resolution == NULL || *resolution == '\0' ||
	    strlen(resolution) > RESOLUTION_MAX) {
		relay_reply_err(q->p, q->id, "bad_request",
				"closing a ticket needs a resolution");
		return;
	}
	if (want_ticket(q, &id, false) != 0)
		return;
	rc = tether_store_ticket_close(q->r->store, id, resolution);
	if (rc == TETHER_ERR_STATE) {
		relay_reply_err(q->p, q->id, "state",
				"ticket %s is already "
				"closed",
				str_field(q, "ticket"));
		return;
	}
	if (rc != 0) {
		relay_reply_err(q->p, q->id, "internal", "cannot close ticket");
		return;
	}
	relay_ticket_end_session(q->r, id, "ticket closed");
	relay_audit(q->r, q->actor, id, 0, "ticket_closed",
		    json_pack("{s:s}", "resolution", resolution));
	reply_ticket(q, id, false);
}

/*
 * The shortest free nameplate, picked at random among those of its length,
 * as magic-wormhole does; a burned one stays out of use for an hour so a
 * guesser cannot retry the same number at once.
 */
static int allocate_nameplate(struct relay *r, char *out, size_t len)
{
	struct tether_store_session ss;
	uint32_t lo = 1, span = 9, v;
	int digits, tries, busy;

	for (digits = 1; digits <= TETHER_CODE_NAMEPLATE_MAX; digits++) {
		for (tries = 0; tries < 32; tries++) {
			if (tether_random_uniform(span, &v) != 0)
				return TETHER_ERR_CRYPTO;
			snprintf(out, len, "%u", lo + v);
			busy = tether_store_nameplate_in_use(r->store, out);
			if (!busy && tether_store_session_by_nameplate(
					 r->store, out, &ss) == 0) {
				busy = strcmp(ss.state, "burned") == 0 &&
				       time(NULL) - ss.created_at < 3600;
				tether_store_session_clear(&ss);
			}
			if (!busy)
				return TETHER_OK;
		}
		lo *= 10;
		span *= 10;
	}
	return TETHER_ERR_LIMIT;
}

static void invite(struct request *q)
{
	const char *info = str_field(q, "info"), *pake = str_field(q, "pake");
	uint8_t pa[TETHER_SPAKE2_ELEM_LEN];
	json_int_t expires = TETHER_INVITE_TTL_DEFAULT;
	struct tether_store_session ss;
	char nameplate[16];
	int64_t tid, sid, expires_at;

	if (want_ticket(q, &tid, true) != 0)
		return;
	json_unpack(q->msg, "{s?I}", "expires", &expires);
	if (info == NULL || strlen(info) > INFO_MAX || pake == NULL ||
	    tether_hex_decode(pake, pa, sizeof(pa)) != 0 || expires < 1 ||
	    expires > TETHER_INVITE_TTL_MAX) {
		relay_reply_err(q->p, q->id, "bad_request",
				"invite needs info, a SPAKE2 message and an "
				"expiry of 1 s to 24 h");
		return;
	}
	if (tether_store_session_live_for_ticket(q->r->store, tid, &ss) == 0) {
		struct relay_session *s = relay_session_find(q->r, ss.id);

		tether_store_session_clear(&ss);
		if (s != NULL && s->agent != NULL) {
			relay_reply_err(q->p, q->id, "state",
					"an agent is connected to %s; close "
					"the ticket or let the customer leave "
					"first",
					str_field(q, "ticket"));
			return;
		}
		relay_ticket_end_session(q->r, tid, "replaced by a new invite");
	}
	if (allocate_nameplate(q->r, nameplate, sizeof(nameplate)) != 0) {
		relay_reply_err(q->p, q->id, "limit", "no free nameplate");
		return;
	}
	expires_at = time(NULL) + expires;
	if (tether_store_session_new(q->r->store, tid, q->p->tech.id, nameplate,
				     expires_at, info, pake, &sid) != 0) {
		relay_reply_err(q->p, q->id, "internal", "cannot store invite");
		return;
	}
	relay_audit(q->r, q->actor, tid, sid, "invite_created",
		    json_pack("{s:s, s:I}", "nameplate", nameplate,
			      "expires_in", expires));
	relay_reply_ok(q->p, q->id,
		       json_pack("{s:s, s:I, s:I}", "nameplate", nameplate,
				 "session", (json_int_t)sid, "expires_at",
				 (json_int_t)expires_at));
}

/* The ticket's live session with its agent here; answers errors itself. */
static struct relay_session *want_live(struct request *q,
				       struct tether_store_session *ss)
{
	const char *t = str_field(q, "ticket");
	struct relay_session *s;
	int64_t tid;

	if (want_ticket(q, &tid, true) != 0)
		return NULL;
	if (tether_store_session_live_for_ticket(q->r->store, tid, ss) != 0) {
		relay_reply_err(q->p, q->id, "state",
				"there is no invite for "
				"%s (run: tether invite %s)",
				t, t);
		return NULL;
	}
	if (strcmp(ss->state, "waiting") == 0) {
		if (ss->expires_at <= time(NULL))
			relay_reply_err(q->p, q->id, "state",
					"the invite for "
					"%s expired; run tether invite %s",
					t, t);
		else
			relay_reply_err(q->p, q->id, "no_agent",
					"no agent has joined %s yet", t);
		goto fail;
	}
	s = relay_session_find(q->r, ss->id);
	if (s == NULL || s->agent == NULL) {
		relay_reply_err(q->p, q->id, "no_agent",
				"the agent for %s is not connected", t);
		goto fail;
	}
	return s;
fail:
	tether_store_session_clear(ss);
	return NULL;
}

static void attach(struct request *q)
{
	struct tether_store_session ss;
	struct relay_session *s;
	json_t *m, *facts;

	s = want_live(q, &ss);
	if (s == NULL)
		return;
	facts =
	    ss.agent_facts != NULL ? json_loads(ss.agent_facts, 0, NULL) : NULL;
	m = json_pack("{s:I, s:s, s:s, s:o}", "session", (json_int_t)ss.id,
		      "state", ss.state, "nameplate", ss.nameplate, "agent",
		      facts != NULL ? facts : json_null());
	if (strcmp(ss.state, "joined") == 0 && ss.pake_b != NULL &&
	    ss.conf_b != NULL) {
		json_object_set_new(m, "pake_b", json_string(ss.pake_b));
		json_object_set_new(m, "conf_b", json_string(ss.conf_b));
	}
	relay_reply_ok(q->p, q->id, m);
	tether_store_session_clear(&ss);
}

/* The session named by the request's "session", with its agent here. */
static struct relay_session *want_session(struct request *q,
					  const char *need_state)
{
	json_int_t sid = json_integer_value(json_object_get(q->msg, "session"));
	struct tether_store_session ss;
	struct relay_session *s;
	bool ok;

	if (tether_store_session_get(q->r->store, sid, &ss) != 0) {
		relay_reply_err(q->p, q->id, "not_found", "no such session");
		return NULL;
	}
	ok = strcmp(ss.state, need_state) == 0;
	tether_store_session_clear(&ss);
	if (!ok) {
		relay_reply_err(q->p, q->id, "state", "the session is not %s",
				need_state);
		return NULL;
	}
	s = relay_session_find(q->r, sid);
	if (s == NULL || s->agent == NULL) {
		relay_reply_err(q->p, q->id, "no_agent",
				"the agent is not connected");
		return NULL;
	}
	return s;
}

static void confirm(struct request *q)
{
	const char *conf = str_field(q, "conf");
	uint8_t c[TETHER_SPAKE2_CONF_LEN];
	struct relay_session *s;

	if (conf == NULL || tether_hex_decode(conf, c, sizeof(c)) != 0) {
		relay_reply_err(q->p, q->id, "bad_request", "bad confirmation");
		return;
	}
	s = want_session(q, "joined");
	if (s == NULL)
		return;
	if (s->confirmer != NULL) {
		relay_reply_err(q->p, q->id, "state",
				"another console is confirming this session");
		return;
	}
	if (s->confirm_pending) {
		relay_reply_err(q->p, q->id, "state",
				"a confirmation is already under way");
		return;
	}
	s->confirmer = q->p;
	s->confirm_id = q->id;
	s->confirm_pending = true;
	relay_send(s->agent,
		   json_pack("{s:s, s:s}", "t", "confirm", "conf", conf));
	relay_hold_while_full(q->p, s->agent);
}

static void pake_failed(struct request *q)
{
	struct relay_session *s = want_session(q, "joined");

	if (s == NULL)
		return;
	q->r->stats.pake_failures++;
	relay_audit(q->r, q->actor, s->ticket_id, s->id, "pake_failed",
		    json_pack("{s:s, s:s}", "nameplate", s->nameplate, "by",
			      "console"));
	relay_session_end(q->r, s, "burned", "wrong code");
	relay_reply_ok(q->p, q->id, NULL);
}

static void open_channel(struct request *q)
{
	const char *kind = str_field(q, "kind"), *nonce = str_field(q, "nonce");
	uint8_t n[TETHER_SEAL_NONCE_LEN];
	struct relay_channel *c;
	struct relay_session *s;

	if (!relay_kind_valid(kind) || nonce == NULL ||
	    tether_hex_decode(nonce, n, sizeof(n)) != 0) {
		relay_reply_err(q->p, q->id, "bad_request",
				"open needs kind exec, shell, file or forward "
				"and a "
				"32-byte "
				"nonce");
		return;
	}
	s = want_session(q, "paired");
	if (s == NULL)
		return;
	if (relay_channels_pending(q->r, s->id) >= RELAY_PENDING_OPENS_MAX) {
		relay_reply_err(q->p, q->id, "limit",
				"too many channels waiting for the agent");
		return;
	}
	c = relay_channel_new(q->r, kind, q->p, s->agent, s->id, s->ticket_id);
	if (c == NULL) {
		relay_reply_err(q->p, q->id, "limit", "no more channels");
		return;
	}
	c->open_id = q->id;
	relay_send(s->agent,
		   json_pack("{s:s, s:I, s:s, s:s, s:s}", "t", "open",
			     "channel", (json_int_t)c->id, "kind", kind,
			     "nonce", nonce, "technician", q->p->tech.name));
	relay_hold_while_full(q->p, s->agent);
}

static void close_channel(struct request *q)
{
	json_int_t id = json_integer_value(json_object_get(q->msg, "channel"));
	struct relay_channel *c = relay_channel_find(q->r, (uint32_t)id);

	if (c == NULL || c->console != q->p) {
		relay_reply_err(q->p, q->id, "not_found", "no such channel");
		return;
	}
	relay_channel_close(q->r, c, "closed by the technician", false, true);
	relay_reply_ok(q->p, q->id, NULL);
}

/* Enrolled agents and diagnostics live in relay-health.c. */
static void agents(struct request *q)
{
	relay_health_agents(q->p, q->id, q->msg);
}

static void health(struct request *q)
{
	relay_health_list(q->p, q->id, q->msg);
}

static void diag_attach(struct request *q)
{
	relay_health_diag_attach(q->p, q->id, q->msg);
}

static void diag_get(struct request *q)
{
	relay_health_diag_get(q->p, q->id, q->msg);
}

static const struct {
	const char *type;
	void (*fn)(struct request *q);
	bool admin_only;
} handlers[] = {
    {"ticket_new", ticket_new, false},	 {"ticket_list", ticket_list, false},
    {"ticket_show", ticket_show, false}, {"ticket_close", ticket_close, false},
    {"invite", invite, false},		 {"attach", attach, false},
    {"confirm", confirm, false},	 {"pake_failed", pake_failed, false},
    {"open", open_channel, false},	 {"close", close_channel, false},
    {"agents", agents, false},		 {"health", health, false},
    {"diag_attach", diag_attach, false}, {"diag_get", diag_get, false},
};

void relay_console_message(struct relay_peer *p, const char *type, json_t *msg)
{
	struct request q = {.p = p, .r = p->relay, .msg = msg};
	json_t *id = json_object_get(msg, "id");
	size_t i;

	if (!json_is_integer(id) || json_integer_value(id) <= 0) {
		relay_drop(p, TETHER_ERR_PROTOCOL, "request without an id");
		return;
	}
	q.id = json_integer_value(id);
	relay_actor(p, q.actor, sizeof(q.actor));
	for (i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++) {
		if (strcmp(type, handlers[i].type) != 0)
			continue;
		if (handlers[i].admin_only &&
		    strcmp(p->tech.role, "admin") != 0) {
			relay_reply_err(p, q.id, "auth", "admins only");
			return;
		}
		handlers[i].fn(&q);
		return;
	}
	relay_reply_err(p, q.id, "bad_request", "unknown request %.40s", type);
}
