/*
 * Agent messages (docs/protocol.md, "Agent messages"): claiming a nameplate,
 * storing the agent's SPAKE2 half, resuming after a dropped connection, key
 * confirmation results, channel opens and the session's end.  Failed joins
 * are rate-limited per source address.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <tether/alloc.h>
#include <tether/code.h>
#include <tether/crypto.h>
#include <tether/err.h>
#include <tether/log.h>
#include <tether/proto.h>
#include <tether/seal.h>
#include <tether/spake2.h>

#include "relay.h"

#define FACTS_MAX 2048
#define RESUME_LEN 32

struct relay_session *relay_session_find(struct relay *r, int64_t id)
{
	struct relay_session *s;

	for (s = r->sessions; s != NULL; s = s->next)
		if (s->id == id)
			return s;
	return NULL;
}

static void session_free(struct relay *r, struct relay_session *s)
{
	struct relay_session **pp;

	for (pp = &r->sessions; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	if (s->agent != NULL)
		s->agent->session = NULL;
	tether_free(s->facts);
	tether_free(s);
}

void relay_session_end(struct relay *r, struct relay_session *s,
		       const char *state, const char *reason)
{
	tether_store_session_set_state(r->store, s->id, state);
	if (s->confirmer != NULL)
		relay_reply_err(s->confirmer, s->confirm_id, "state",
				"session ended: %s", reason);
	if (s->agent != NULL) {
		relay_channels_close_peer(r, s->agent, reason);
		relay_send(s->agent, json_pack("{s:s, s:s}", "t", "ended",
					       "reason", reason));
	}
	session_free(r, s);
}

/* A new in-memory session, linked into the relay's list; NULL on no memory. */
static struct relay_session *session_add(struct relay *r,
					 const struct tether_store_session *ss)
{
	struct relay_session *s = tether_calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->id = ss->id;
	s->ticket_id = ss->ticket_id;
	snprintf(s->nameplate, sizeof(s->nameplate), "%s", ss->nameplate);
	s->next = r->sessions;
	r->sessions = s;
	return s;
}

static void join_failed(struct relay_peer *p, int64_t ticket_id,
			int64_t session_id, const char *nameplate,
			const char *why)
{
	relay_rate_fail(p->relay, p->addr);
	p->relay->stats.code_failures++;
	relay_audit(p->relay, "agent", ticket_id, session_id, "join_failed",
		    json_pack("{s:s, s:s, s:s}", "nameplate", nameplate, "addr",
			      p->addr, "why", why));
	relay_drop(p, TETHER_ERR_AUTH, "unknown or expired code");
}

static void join(struct relay_peer *p, json_t *msg)
{
	struct relay *r = p->relay;
	const char *nameplate = NULL;
	struct tether_store_session ss;
	struct relay_session *s;
	json_t *facts = NULL;
	char *text;

	if (p->session != NULL) {
		relay_drop(p, TETHER_ERR_PROTOCOL, "already joined");
		return;
	}
	if (relay_rate_limited(r, p->addr)) {
		relay_drop(p, TETHER_ERR_LIMIT,
			   "too many attempts, wait a minute");
		return;
	}
	if (json_unpack(msg, "{s:s, s?o}", "nameplate", &nameplate, "facts",
			&facts) != 0 ||
	    !tether_code_nameplate_valid(nameplate) ||
	    (facts != NULL && !json_is_object(facts))) {
		join_failed(p, 0, 0, "?", "malformed");
		return;
	}
	if (tether_store_session_by_nameplate(r->store, nameplate, &ss) != 0) {
		join_failed(p, 0, 0, nameplate, "unknown");
		return;
	}
	if (strcmp(ss.state, "waiting") != 0 || ss.expires_at <= time(NULL) ||
	    relay_session_find(r, ss.id) != NULL) {
		join_failed(p, ss.ticket_id, ss.id, nameplate,
			    strcmp(ss.state, "waiting") != 0 ? ss.state
			    : ss.expires_at <= time(NULL)    ? "expired"
							     : "claimed");
		tether_store_session_clear(&ss);
		return;
	}
	s = session_add(r, &ss);
	if (s == NULL) {
		tether_store_session_clear(&ss);
		relay_drop(p, TETHER_ERR_NOMEM, "out of memory");
		return;
	}
	s->agent = p;
	p->session = s;
	/* Facts are kept until pake, when the session row is written. */
	text = facts != NULL ? json_dumps(facts, JSON_COMPACT) : NULL;
	if (text != NULL && strlen(text) <= FACTS_MAX)
		s->facts = tether_strdup(text);
	free(text);
	relay_send(p, json_pack("{s:s, s:I, s:s, s:s, s:I, s:s}", "t",
				"join_ok", "session", (json_int_t)ss.id,
				"pake_a", ss.pake_a != NULL ? ss.pake_a : "",
				"info", ss.info != NULL ? ss.info : "",
				"expires_at", (json_int_t)ss.expires_at,
				"nameplate", nameplate));
	tether_store_session_clear(&ss);
}

static void pake(struct relay_peer *p, json_t *msg)
{
	struct relay *r = p->relay;
	struct relay_session *s = p->session;
	const char *pb = NULL, *cb = NULL;
	uint8_t e[TETHER_SPAKE2_ELEM_LEN], c[TETHER_SPAKE2_CONF_LEN];
	uint8_t tok[RESUME_LEN], hash[TETHER_SHA256_LEN];
	char tokhex[2 * RESUME_LEN + 1];

	if (s == NULL || s->pake_sent) {
		relay_drop(p, TETHER_ERR_PROTOCOL, "pake out of order");
		return;
	}
	if (json_unpack(msg, "{s:s, s:s}", "pake_b", &pb, "conf_b", &cb) != 0 ||
	    tether_hex_decode(pb, e, sizeof(e)) != 0 ||
	    tether_hex_decode(cb, c, sizeof(c)) != 0) {
		relay_drop(p, TETHER_ERR_PROTOCOL, "malformed pake");
		return;
	}
	if (tether_random(tok, sizeof(tok)) != 0 ||
	    tether_hex_encode(tok, sizeof(tok), tokhex, sizeof(tokhex)) != 0 ||
	    tether_sha256(tokhex, strlen(tokhex), hash) != 0) {
		relay_drop(p, TETHER_ERR_INTERNAL, "internal error");
		return;
	}
	if (tether_store_session_join(r->store, s->id, s->facts, pb, cb,
				      hash) != 0) {
		relay_drop(p, TETHER_ERR_STATE, "the code is no longer valid");
		return;
	}
	s->pake_sent = true;
	relay_audit(r, "agent", s->ticket_id, s->id, "agent_joined",
		    json_pack("{s:s, s:s, s:o}", "nameplate", s->nameplate,
			      "addr", p->addr, "facts",
			      s->facts != NULL ? json_loads(s->facts, 0, NULL)
					       : json_null()));
	relay_send(p,
		   json_pack("{s:s, s:s}", "t", "pake_ok", "resume", tokhex));
	tether_wipe(tokhex, sizeof(tokhex));
	tether_wipe(tok, sizeof(tok));
}

static void resume(struct relay_peer *p, json_t *msg)
{
	struct relay *r = p->relay;
	struct tether_store_session ss;
	uint8_t hash[TETHER_SHA256_LEN];
	const char *token = NULL;
	struct relay_session *s;
	json_int_t sid = 0;
	bool ok;

	if (p->session != NULL || relay_rate_limited(r, p->addr)) {
		relay_drop(p, TETHER_ERR_LIMIT,
			   "too many attempts, wait a "
			   "minute");
		return;
	}
	if (json_unpack(msg, "{s:I, s:s}", "session", &sid, "token", &token) !=
		0 ||
	    tether_store_session_get(r->store, sid, &ss) != 0) {
		join_failed(p, 0, 0, "?", "bad resume");
		return;
	}
	tether_sha256(token, strlen(token), hash);
	ok = ss.has_resume &&
	     tether_ct_equal(hash, ss.resume_hash, sizeof(hash)) &&
	     (strcmp(ss.state, "joined") == 0 ||
	      strcmp(ss.state, "paired") == 0);
	if (!ok) {
		join_failed(p, ss.ticket_id, ss.id, ss.nameplate,
			    "bad resume token or session over");
		tether_store_session_clear(&ss);
		return;
	}
	s = relay_session_find(r, sid);
	if (s == NULL) {
		s = session_add(r, &ss);
		if (s == NULL) {
			tether_store_session_clear(&ss);
			relay_drop(p, TETHER_ERR_NOMEM, "out of memory");
			return;
		}
		s->pake_sent = true;
	} else if (s->agent != NULL) {
		/* The old connection is dead but not yet noticed. */
		if (s->confirmer != NULL)
			relay_reply_err(s->confirmer, s->confirm_id, "no_agent",
					"the agent reconnected; try again");
		s->confirmer = NULL;
		s->confirm_pending = false;
		s->agent->session = NULL;
		relay_channels_close_peer(r, s->agent, "agent reconnected");
		relay_drop(s->agent, TETHER_ERR_CLOSED,
			   "replaced by a new "
			   "connection");
	}
	s->agent = p;
	p->session = s;
	relay_audit(r, "agent", s->ticket_id, s->id, "agent_reconnected",
		    json_pack("{s:s}", "addr", p->addr));
	relay_send(
	    p, json_pack("{s:s, s:s}", "t", "resume_ok", "state", ss.state));
	tether_store_session_clear(&ss);
}

static void confirmed(struct relay_peer *p, json_t *msg)
{
	struct relay *r = p->relay;
	struct relay_session *s = p->session;
	struct relay_peer *c;
	int ok = 0;

	if (s == NULL || !s->confirm_pending ||
	    json_unpack(msg, "{s:b}", "ok", &ok) != 0) {
		relay_drop(p, TETHER_ERR_PROTOCOL, "unexpected confirmed");
		return;
	}
	/*
	 * The console may have gone meanwhile; the agent's verdict still
	 * stands and is recorded.
	 */
	c = s->confirmer;
	s->confirmer = NULL;
	s->confirm_pending = false;
	if (ok) {
		tether_store_session_set_state(r->store, s->id, "paired");
		relay_audit(r, "agent", s->ticket_id, s->id, "paired",
			    json_pack("{s:s, s:s}", "nameplate", s->nameplate,
				      "technician",
				      c != NULL ? c->tech.name : "?"));
		if (c != NULL)
			relay_reply_ok(c, s->confirm_id, NULL);
		return;
	}
	r->stats.pake_failures++;
	relay_audit(
	    r, "agent", s->ticket_id, s->id, "pake_failed",
	    json_pack("{s:s, s:s}", "nameplate", s->nameplate, "by", "agent"));
	if (c != NULL)
		relay_reply_err(c, s->confirm_id, "pake_failed",
				"key confirmation failed: wrong code?");
	relay_session_end(r, s, "burned", "wrong code");
}

/* The channel named in msg, if this agent is its end. */
static struct relay_channel *agent_channel(struct relay_peer *p, json_t *msg)
{
	json_int_t id = json_integer_value(json_object_get(msg, "channel"));
	struct relay_channel *c;

	c = relay_channel_find(p->relay, (uint32_t)id);
	if (c == NULL || c->agent != p)
		return NULL;
	return c;
}

static void opened(struct relay_peer *p, json_t *msg)
{
	struct relay_channel *c = agent_channel(p, msg);
	const char *nonce = json_string_value(json_object_get(msg, "nonce"));
	uint8_t n[TETHER_SEAL_NONCE_LEN];

	if (c == NULL || c->opened || nonce == NULL ||
	    tether_hex_decode(nonce, n, sizeof(n)) != 0) {
		if (c == NULL && json_integer_value(json_object_get(
				     msg, "channel")) < p->relay->next_channel)
			return; /* the console gave up meanwhile */
		relay_drop(p, TETHER_ERR_PROTOCOL, "unexpected opened");
		return;
	}
	c->opened = true;
	c->opened_at = relay_now_ms();
	if (c->console == NULL) {
		relay_channel_close(p->relay, c, "console disconnected", false,
				    true);
		return;
	}
	relay_audit(
	    p->relay, "agent", c->ticket_id, c->session_id, "channel_open",
	    json_pack("{s:I, s:s, s:s}", "channel", (json_int_t)c->id, "kind",
		      c->kind, "technician", c->console->tech.name));
	relay_reply_ok(c->console, c->open_id,
		       json_pack("{s:I, s:s}", "channel", (json_int_t)c->id,
				 "nonce", nonce));
}

static void open_failed(struct relay_peer *p, json_t *msg)
{
	struct relay_channel *c = agent_channel(p, msg);
	const char *why = json_string_value(json_object_get(msg, "reason"));

	if (c == NULL || c->opened)
		return;
	if (c->console != NULL)
		relay_reply_err(c->console, c->open_id, "state",
				"the agent refused the channel: %.200s",
				why != NULL ? why : "no reason given");
	relay_audit(p->relay, "agent", c->ticket_id, c->session_id,
		    "channel_refused",
		    json_pack("{s:s, s:s}", "kind", c->kind, "reason",
			      why != NULL ? why : ""));
	relay_channel_close(p->relay, c, "refused", false, false);
}

static void agent_close(struct relay_peer *p, json_t *msg)
{
	struct relay_channel *c = agent_channel(p, msg);

	if (c == NULL)
		return;
	/* A console still waiting for "opened" must get an answer. */
	if (!c->opened && c->console != NULL)
		relay_reply_err(c->console, c->open_id, "state",
				"the agent closed the channel");
	relay_channel_close(p->relay, c, "closed by the agent", c->opened,
			    false);
}

/* Unsigned integer field of an xfer report, or -1. */
static json_int_t count_field(const json_t *msg, const char *key)
{
	json_t *v = json_object_get(msg, key);

	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -1;
	return json_integer_value(v);
}

/*
 * A string field of a report, cut to max bytes on a UTF-8 boundary: a
 * long path is still worth its audit row, and not worth dropping the
 * agent over.  NULL if the field is not a string.
 */
static json_t *clipped(const json_t *msg, const char *key, size_t max)
{
	const char *v = json_string_value(json_object_get(msg, key));
	size_t n;

	if (v == NULL)
		return NULL;
	n = strlen(v);
	if (n <= max)
		return json_string(v);
	n = max;
	while (n > 0 && ((unsigned char)v[n] & 0xc0) == 0x80)
		n--;
	return json_stringn(v, n);
}

static bool is_hex(const char *s)
{
	for (; *s != '\0'; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}

/*
 * The agent's account of one transferred entry (docs/protocol.md, "File
 * transfer"): metadata only, checked and bounded, kept in the audit.
 * Reports for channels already gone are dropped: the channel's own
 * close is audited anyway.
 */
static void xfer_report(struct relay_peer *p, json_t *msg)
{
	static const char *const dirs[] = {"put", "get", NULL};
	static const char *const types[] = {"file", "dir", "symlink", "skip",
					    NULL};
	struct relay_channel *c = agent_channel(p, msg);
	const char *dir = json_string_value(json_object_get(msg, "direction"));
	const char *type = json_string_value(json_object_get(msg, "type"));
	const char *sha = json_string_value(json_object_get(msg, "sha256"));
	json_t *ok = json_object_get(msg, "ok");
	json_t *path = clipped(msg, "path", RELAY_XFER_PATH_MAX);
	json_t *why = clipped(msg, "reason", RELAY_XFER_REASON_MAX);
	json_int_t size = count_field(msg, "size"),
		   offset = count_field(msg, "offset"),
		   sent = count_field(msg, "sent"), ms = count_field(msg, "ms");

	if (!relay_one_of(dir, dirs) || !relay_one_of(type, types) || path == NULL ||
	    sha == NULL || (strlen(sha) != 0 && strlen(sha) != 64) ||
	    !is_hex(sha) || !json_is_boolean(ok) ||
	    (why == NULL && json_object_get(msg, "reason") != NULL) ||
	    size < 0 || offset < 0 || sent < 0 || ms < 0) {
		json_decref(path);
		json_decref(why);
		relay_drop(p, TETHER_ERR_PROTOCOL, "malformed xfer report");
		return;
	}
	if (c == NULL || strcmp(c->kind, TETHER_KIND_NAME_FILE) != 0) {
		json_decref(path);
		json_decref(why);
		return;
	}
	relay_audit(p->relay, "agent", c->ticket_id, c->session_id, "xfer",
		    json_pack("{s:I, s:s, s:s, s:o, s:I, s:s, s:I, s:I, s:I, "
			      "s:O, s:o}",
			      "channel", (json_int_t)c->id, "direction", dir,
			      "type", type, "path", path, "size", size,
			      "sha256", sha, "offset", offset, "sent", sent,
			      "ms", ms, "ok", ok, "reason",
			      why != NULL ? why : json_string("")));
}

/*
 * The agent's account of a forward (docs/protocol.md, "Forwarding"): the
 * target it connected to or refused, audited on the ticket.
 */
static void forward_report(struct relay_peer *p, json_t *msg)
{
	struct relay_channel *c = agent_channel(p, msg);
	const char *host = json_string_value(json_object_get(msg, "host"));
	json_t *why = clipped(msg, "reason", RELAY_XFER_REASON_MAX);
	json_int_t port = count_field(msg, "port");
	json_t *ok = json_object_get(msg, "ok");

	if (host == NULL || strlen(host) > 255 || port < 0 || port > 65535 ||
	    !json_is_boolean(ok) ||
	    (why == NULL && json_object_get(msg, "reason") != NULL)) {
		json_decref(why);
		relay_drop(p, TETHER_ERR_PROTOCOL, "malformed forward report");
		return;
	}
	if (c == NULL || strcmp(c->kind, TETHER_KIND_NAME_FORWARD) != 0) {
		json_decref(why);
		return;
	}
	relay_audit(p->relay, "agent", c->ticket_id, c->session_id, "forward",
		    json_pack("{s:I, s:s, s:I, s:O, s:o}", "channel",
			      (json_int_t)c->id, "host", host, "port", port,
			      "ok", ok, "reason",
			      why != NULL ? why : json_string("")));
}

static void session_over(struct relay_peer *p, const char *state,
			 const char *event, const char *reason)
{
	struct relay_session *s = p->session;

	if (s == NULL) {
		relay_drop(p, TETHER_ERR_PROTOCOL, "no session");
		return;
	}
	relay_audit(p->relay, "agent", s->ticket_id, s->id, event, NULL);
	relay_session_end(p->relay, s, state, reason);
}

void relay_agent_gone(struct relay_peer *p)
{
	struct relay_session *s = p->session;

	if (p->agent_id != 0) {
		tether_store_agent_seen(p->relay->store, p->agent_id);
		tether_log_info("agent %s disconnected", p->agent_name);
	}
	if (s == NULL)
		return;
	s->agent = NULL;
	p->session = NULL;
	if (s->confirmer != NULL)
		relay_reply_err(s->confirmer, s->confirm_id, "no_agent",
				"the agent went away");
	s->confirmer = NULL;
	s->confirm_pending = false;
	if (!s->pake_sent) {
		/*
		 * A code works once: a claim that went nowhere burns it, and
		 * counts as a failed attempt so that burning codes is no
		 * cheaper than guessing them.
		 */
		relay_rate_fail(p->relay, p->addr);
		relay_audit(p->relay, "agent", s->ticket_id, s->id,
			    "join_abandoned", NULL);
		relay_session_end(p->relay, s, "burned", "join abandoned");
		return;
	}
	relay_audit(p->relay, "agent", s->ticket_id, s->id,
		    "agent_disconnected", json_pack("{s:s}", "addr", p->addr));
}

void relay_agent_message(struct relay_peer *p, const char *type, json_t *msg)
{
	if (strcmp(type, "enroll") == 0)
		relay_enroll(p, msg);
	else if (strcmp(type, "auth") == 0)
		relay_enroll_auth(p, msg);
	else if (p->agent_id != 0)
		relay_health_agent_message(p, type, msg);
	else if (strcmp(type, "join") == 0)
		join(p, msg);
	else if (strcmp(type, "pake") == 0)
		pake(p, msg);
	else if (strcmp(type, "resume") == 0)
		resume(p, msg);
	else if (p->session == NULL)
		relay_drop(p, TETHER_ERR_PROTOCOL, "join first");
	else if (strcmp(type, "confirmed") == 0)
		confirmed(p, msg);
	else if (strcmp(type, "opened") == 0)
		opened(p, msg);
	else if (strcmp(type, "open_failed") == 0)
		open_failed(p, msg);
	else if (strcmp(type, "close") == 0)
		agent_close(p, msg);
	else if (strcmp(type, "xfer") == 0)
		xfer_report(p, msg);
	else if (strcmp(type, "forward") == 0)
		forward_report(p, msg);
	else if (strcmp(type, "decline") == 0)
		session_over(p, "declined", "declined", "declined");
	else if (strcmp(type, "leave") == 0)
		session_over(p, "ended", "agent_left",
			     "the customer ended the session");
	else
		relay_drop(p, TETHER_ERR_PROTOCOL, "unknown message");
}
