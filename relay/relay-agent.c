/*
 * Agent messages (docs/protocol.md, "Agent messages" and "Enrolled
 * agents"): one table says for each type which handler takes it and in
 * which of an agent's states, checked in one place before the handler
 * runs.  The attended agent's handlers live here: claiming a nameplate,
 * storing the agent's SPAKE2 half, resuming after a dropped connection,
 * key confirmation results, channel opens and reports, and the session's
 * end.  Failed joins are rate-limited per source address.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <tether/alloc.h>
#include <tether/crypto.h>
#include <tether/err.h>
#include <tether/id.h>
#include <tether/log.h>
#include <tether/proto.h>

#include "relay.h"

/* Where an agent's connection is; each table row accepts some. */
enum agent_state {
	AS_NEW = 1u << 0,      /* said hello, nothing since */
	AS_CLAIMED = 1u << 1,  /* joined a session; its pB not stored yet */
	AS_JOINED = 1u << 2,   /* its session has its pB (or was resumed) */
	AS_ENROLLED = 1u << 3, /* authenticated by its key */
};
#define AS_ATTENDED (AS_CLAIMED | AS_JOINED)
#define AS_BUSY (AS_ATTENDED | AS_ENROLLED)

static unsigned agent_state(const struct relay_peer *p)
{
	if (p->agent_id != 0)
		return AS_ENROLLED;
	if (p->session == NULL)
		return AS_NEW;
	return p->session->pake_sent ? AS_JOINED : AS_CLAIMED;
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

/* Why a session cannot be joined, or NULL if it can. */
static const char *unjoinable(struct relay *r,
			      const struct relay_store_session *ss)
{
	if (ss->state != TETHER_SESSION_WAITING)
		return tether_ctrl_name_of(session_state, ss->state);
	if (ss->expires_at <= time(NULL))
		return "expired";
	if (relay_session_find(r, ss->id) != NULL)
		return "claimed";
	return NULL;
}

static void join(struct relay_peer *p, const struct tether_ctrl_msg *m)
{
	const struct tether_ctrl_join *j = &m->body.join;
	struct tether_ctrl_join_ok ok = {0};
	struct relay *r = p->relay;
	struct relay_store_session ss;
	struct relay_session *s;
	const char *why;

	if (relay_rate_limited(r, p->addr)) {
		relay_drop(p, TETHER_ERR_LIMIT,
			   "too many attempts, wait a minute");
		return;
	}
	if (relay_store_session_by_nameplate(r->store, j->nameplate, &ss) !=
	    0) {
		join_failed(p, 0, 0, j->nameplate, "unknown");
		return;
	}
	why = unjoinable(r, &ss);
	if (why != NULL) {
		join_failed(p, ss.ticket_id, ss.id, j->nameplate, why);
		goto out;
	}
	if (!ss.has_pake_a) {
		relay_drop(p, TETHER_ERR_INTERNAL, "the invite is incomplete");
		goto out;
	}
	s = relay_session_add(r, &ss);
	if (s == NULL) {
		relay_drop(p, TETHER_ERR_NOMEM, "out of memory");
		goto out;
	}
	s->agent = p;
	p->session = s;
	snprintf(s->agent_addr, sizeof(s->agent_addr), "%s", p->addr);
	/* Facts are kept until pake, when the session row is written. */
	if (j->has_facts)
		tether_ctrl_part_encode(TETHER_CTRL_PART_FACTS, &j->facts,
					&s->facts, NULL);
	ok.session = ss.id;
	memcpy(ok.pake_a, ss.pake_a, sizeof(ok.pake_a));
	ok.expires_at = ss.expires_at;
	ok.nameplate = j->nameplate;
	relay_send(p, TETHER_CTRL_JOIN_OK, &ok);
out:
	relay_store_session_clear(&ss);
}

/*
 * The hash a resume token is kept as: of its hex text, as the token has
 * always been hashed.
 */
static int resume_hash(const uint8_t tok[TETHER_CTRL_RESUME_LEN],
		       uint8_t hash[TETHER_SHA256_LEN])
{
	char hex[2 * TETHER_CTRL_RESUME_LEN + 1];
	int r;

	r = tether_hex_encode(tok, TETHER_CTRL_RESUME_LEN, hex, sizeof(hex));
	if (r == 0)
		r = tether_sha256(hex, strlen(hex), hash);
	tether_wipe(hex, sizeof(hex));
	return r;
}

static void pake(struct relay_peer *p, const struct tether_ctrl_msg *m)
{
	const struct tether_ctrl_pake *pk = &m->body.pake;
	struct relay *r = p->relay;
	struct relay_session *s = p->session;
	struct tether_ctrl_pake_ok ok;
	uint8_t hash[TETHER_SHA256_LEN];

	if (tether_random(ok.resume, sizeof(ok.resume)) != 0 ||
	    resume_hash(ok.resume, hash) != 0) {
		relay_drop(p, TETHER_ERR_INTERNAL, "internal error");
		goto out;
	}
	if (relay_store_session_join(r->store, s->id, s->facts, pk->pake_b,
				     pk->conf_b, hash) != 0) {
		relay_drop(p, TETHER_ERR_STATE, "the code is no longer valid");
		goto out;
	}
	s->pake_sent = true;
	relay_audit(r, "agent", s->ticket_id, s->id, "agent_joined",
		    json_pack("{s:s, s:s, s:o}", "nameplate", s->nameplate,
			      "addr", p->addr, "facts",
			      s->facts != NULL ? json_loads(s->facts, 0, NULL)
					       : json_null()));
	relay_send(p, TETHER_CTRL_PAKE_OK, &ok);
out:
	tether_wipe(&ok, sizeof(ok));
}

/* Whether the resume token matches a session the agent may come back to. */
static bool resumable(const struct relay_store_session *ss,
		      const uint8_t tok[TETHER_CTRL_RESUME_LEN])
{
	uint8_t hash[TETHER_SHA256_LEN];

	return ss->has_resume && resume_hash(tok, hash) == 0 &&
	       tether_ct_equal(hash, ss->resume_hash, sizeof(hash)) &&
	       (ss->state == TETHER_SESSION_JOINED ||
		ss->state == TETHER_SESSION_PAIRED);
}

/* The old connection of s is dead but not yet noticed: it goes. */
static void replace_agent(struct relay *r, struct relay_session *s)
{
	if (s->confirmer != NULL)
		relay_reply_err(s->confirmer, s->confirm_id,
				TETHER_CTRL_E_NO_AGENT,
				"the agent reconnected; try again");
	s->confirmer = NULL;
	s->confirm_pending = false;
	s->agent->session = NULL;
	relay_channels_close_peer(r, s->agent, "agent reconnected");
	relay_drop(s->agent, TETHER_ERR_CLOSED, "replaced by a new connection");
}

static void resume(struct relay_peer *p, const struct tether_ctrl_msg *m)
{
	const struct tether_ctrl_resume *rs = &m->body.resume;
	struct tether_ctrl_resume_ok ok;
	struct relay *r = p->relay;
	struct relay_store_session ss;
	struct relay_session *s;

	if (relay_rate_limited(r, p->addr)) {
		relay_drop(p, TETHER_ERR_LIMIT,
			   "too many attempts, wait a minute");
		return;
	}
	if (relay_store_session_get(r->store, rs->session, &ss) != 0) {
		join_failed(p, 0, 0, "?", "bad resume");
		return;
	}
	if (!resumable(&ss, rs->token)) {
		join_failed(p, ss.ticket_id, ss.id, ss.nameplate,
			    "bad resume token or session over");
		goto out;
	}
	s = relay_session_find(r, ss.id);
	if (s == NULL) {
		s = relay_session_add(r, &ss);
		if (s == NULL) {
			relay_drop(p, TETHER_ERR_NOMEM, "out of memory");
			goto out;
		}
		s->pake_sent = true;
	} else if (s->agent != NULL) {
		replace_agent(r, s);
	}
	s->agent = p;
	p->session = s;
	snprintf(s->agent_addr, sizeof(s->agent_addr), "%s", p->addr);
	relay_audit(r, "agent", s->ticket_id, s->id, "agent_reconnected",
		    json_pack("{s:s}", "addr", p->addr));
	ok.state = ss.state;
	relay_send(p, TETHER_CTRL_RESUME_OK, &ok);
out:
	relay_store_session_clear(&ss);
}

/* The kinds the customer allowed, as bits; unknown words allow nothing. */
static unsigned allowed_bits(const struct tether_ctrl_confirmed *cf)
{
	unsigned bits = 0;
	size_t i;
	int k;

	for (i = 0; i < cf->nallowed; i++) {
		k = tether_ctrl_word_of(kind, cf->allowed[i]);
		if (k >= 0)
			bits |= 1u << k;
	}
	return bits;
}

static json_t *word_array(const char *const *v, size_t n)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; a != NULL && i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

static void confirmed(struct relay_peer *p, const struct tether_ctrl_msg *m)
{
	const struct tether_ctrl_confirmed *cf = &m->body.confirmed;
	struct relay *r = p->relay;
	struct relay_session *s = p->session;
	struct relay_peer *c;

	if (!s->confirm_pending) {
		relay_drop(p, TETHER_ERR_PROTOCOL, "unexpected confirmed");
		return;
	}
	s->confirm_pending = false;
	if (!cf->ok) {
		/*
		 * The console may have gone meanwhile; the agent's verdict
		 * still stands, and one still waiting hears what burned it.
		 */
		r->stats.pake_failures++;
		relay_audit(r, "agent", s->ticket_id, s->id, "pake_failed",
			    json_pack("{s:s, s:s}", "nameplate", s->nameplate,
				      "by", "agent"));
		relay_session_burn(r, s, "agent", "wrong code");
		return;
	}
	c = s->confirmer;
	s->confirmer = NULL;
	s->allowed = allowed_bits(cf);
	relay_store_session_set_state(r->store, s->id, TETHER_SESSION_PAIRED);
	relay_audit(r, "agent", s->ticket_id, s->id, "paired",
		    json_pack("{s:s, s:s}", "nameplate", s->nameplate,
			      "technician", c != NULL ? c->tech.name : "?"));
	/* What the customer granted of what was asked, in the trail. */
	relay_audit(r, "agent", s->ticket_id, s->id, "consent",
		    json_pack("{s:o, s:o}", "allowed",
			      word_array(cf->allowed, cf->nallowed),
			      "requested",
			      word_array(cf->requested, cf->nrequested)));
	if (c != NULL)
		relay_reply_ok(c, TETHER_CTRL_CONFIRM, s->confirm_id, NULL);
}

/* The channel of this id, if this agent is its end. */
static struct relay_channel *agent_channel(struct relay_peer *p, int64_t id)
{
	struct relay_channel *c = relay_channel_find(p->relay, id);

	if (c == NULL || c->agent != p)
		return NULL;
	return c;
}

static void opened(struct relay_peer *p, const struct tether_ctrl_msg *m)
{
	const struct tether_ctrl_opened *o = &m->body.opened;
	struct relay_channel *c = agent_channel(p, o->channel);
	struct tether_ctrl_open_ok ok = {.channel = o->channel};

	if (c == NULL || c->opened) {
		if (c == NULL && o->channel < p->relay->next_channel)
			return; /* the console gave up meanwhile */
		relay_drop(p, TETHER_ERR_PROTOCOL, "unexpected opened");
		return;
	}
	if (c->console == NULL) {
		/*
		 * The technician left before the channel opened for them: it
		 * never opened, so it closes without the channel_close row
		 * that stands for an audited channel_open.
		 */
		relay_channel_close(p->relay, c, "console disconnected", false,
				    true);
		return;
	}
	c->opened = true;
	c->opened_at = relay_now_ms();
	relay_audit(p->relay, "agent", c->ticket_id, c->session_id,
		    "channel_open",
		    json_pack("{s:I, s:s, s:s}", "channel", (json_int_t)c->id,
			      "kind", tether_ctrl_name_of(kind, c->kind),
			      "technician", c->console->tech.name));
	memcpy(ok.nonce, o->nonce, sizeof(ok.nonce));
	relay_reply_ok(c->console, TETHER_CTRL_OPEN, c->open_id, &ok);
}

static void open_failed(struct relay_peer *p, const struct tether_ctrl_msg *m)
{
	const struct tether_ctrl_open_failed *of = &m->body.open_failed;
	struct relay_channel *c = agent_channel(p, of->channel);
	const char *why = of->reason != NULL ? of->reason : "";

	if (c == NULL || c->opened)
		return;
	if (c->console != NULL)
		relay_reply_err(c->console, c->open_id, TETHER_CTRL_E_STATE,
				"the agent refused the channel: %.200s",
				why[0] != '\0' ? why : "no reason given");
	relay_audit(
	    p->relay, "agent", c->ticket_id, c->session_id, "channel_refused",
	    json_pack("{s:s, s:s}", "kind", tether_ctrl_name_of(kind, c->kind),
		      "reason", why));
	relay_channel_close(p->relay, c, "refused", false, false);
}

static void agent_close(struct relay_peer *p, const struct tether_ctrl_msg *m)
{
	struct relay_channel *c = agent_channel(p, m->body.chan_close.channel);

	if (c == NULL)
		return;
	/* A console still waiting for "opened" must get an answer. */
	if (!c->opened && c->console != NULL)
		relay_reply_err(c->console, c->open_id, TETHER_CTRL_E_STATE,
				"the agent closed the channel");
	relay_channel_close(p->relay, c, "closed by the agent", c->opened,
			    false);
}

/*
 * The agent's account of one transferred entry (docs/protocol.md, "File
 * transfer"): metadata only, bounded by the decoder, kept in the audit.
 * Reports for channels already gone are dropped: the channel's own close
 * is audited anyway.
 */
static void xfer_report(struct relay_peer *p, const struct tether_ctrl_msg *m)
{
	const struct tether_ctrl_xfer_report *x = &m->body.xfer_report;
	struct relay_channel *c = agent_channel(p, x->channel);
	char sha[2 * sizeof(x->sha256) + 1] = "";

	if (c == NULL || c->kind != TETHER_KIND_FILE)
		return;
	if (x->has_sha256)
		tether_hex_encode(x->sha256, sizeof(x->sha256), sha,
				  sizeof(sha));
	relay_audit(p->relay, "agent", c->ticket_id, c->session_id, "xfer",
		    json_pack("{s:I, s:s, s:s, s:s, s:I, s:s, s:I, s:I, s:I, "
			      "s:b, s:s}",
			      "channel", (json_int_t)c->id, "direction",
			      tether_ctrl_name_of(xfer_dir, x->direction),
			      "type", tether_ctrl_name_of(xfer_type, x->type),
			      "path", x->path, "size", (json_int_t)x->size,
			      "sha256", sha, "offset", (json_int_t)x->offset,
			      "sent", (json_int_t)x->sent, "ms",
			      (json_int_t)x->ms, "ok", x->ok, "reason",
			      x->reason != NULL ? x->reason : ""));
}

/*
 * The agent's account of a forward (docs/protocol.md, "Forwarding"): the
 * target it connected to or refused, audited on the ticket.
 */
static void forward_report(struct relay_peer *p,
			   const struct tether_ctrl_msg *m)
{
	const struct tether_ctrl_forward_report *f = &m->body.forward_report;
	struct relay_channel *c = agent_channel(p, f->channel);

	if (c == NULL || c->kind != TETHER_KIND_FORWARD)
		return;
	relay_audit(p->relay, "agent", c->ticket_id, c->session_id, "forward",
		    json_pack("{s:I, s:s, s:I, s:b, s:s}", "channel",
			      (json_int_t)c->id, "host", f->host, "port",
			      (json_int_t)f->port, "ok", f->ok, "reason",
			      f->reason != NULL ? f->reason : ""));
}

/*
 * The customer said no at the consent screen, which the agent shows only
 * once the console's confirmation came with the sealed info: a decline at
 * any other time would rewrite a session nobody was asked about, or one
 * the customer accepted.
 */
static void decline(struct relay_peer *p, const struct tether_ctrl_msg *m)
{
	struct relay_session *s = p->session;
	char name[TETHER_ID_TICKET_LEN];

	(void)m;
	if (!s->confirm_pending) {
		relay_drop(p, TETHER_ERR_PROTOCOL, "decline out of order");
		return;
	}
	s->confirm_pending = false;
	if (s->confirmer != NULL) {
		tether_id_ticket_format(s->ticket_id, name, sizeof(name));
		relay_reply_err(s->confirmer, s->confirm_id,
				TETHER_CTRL_E_DECLINED,
				"the customer declined the invite for %s (run: "
				"tether invite %s to ask again)",
				name, name);
		s->confirmer = NULL;
	}
	relay_audit(p->relay, "agent", s->ticket_id, s->id, "declined", NULL);
	relay_session_end(p->relay, s, TETHER_SESSION_DECLINED, "declined");
}

static void leave(struct relay_peer *p, const struct tether_ctrl_msg *m)
{
	struct relay_session *s = p->session;

	(void)m;
	relay_audit(p->relay, "agent", s->ticket_id, s->id, "agent_left", NULL);
	relay_session_end(p->relay, s, TETHER_SESSION_ENDED,
			  "the customer ended the session");
}

void relay_agent_gone(struct relay_peer *p)
{
	struct relay_session *s = p->session;

	if (p->agent_id != 0) {
		relay_store_agent_seen(p->relay->store, p->agent_id);
		tether_log_info("agent %s disconnected", p->agent_name);
	}
	if (s == NULL)
		return;
	s->agent = NULL;
	p->session = NULL;
	if (s->confirmer != NULL)
		relay_reply_err(s->confirmer, s->confirm_id,
				TETHER_CTRL_E_NO_AGENT, "the agent went away");
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
		relay_session_burn(p->relay, s, "agent", "join abandoned");
		return;
	}
	relay_audit(p->relay, "agent", s->ticket_id, s->id,
		    "agent_disconnected", json_pack("{s:s}", "addr", p->addr));
}

/*
 * Each type an agent sends: its handler, the states it is accepted in,
 * and the states where it is refused with its own reason; in any other
 * state (an enrolled agent's join, an attended agent's check) the type is
 * as unknown as one not here at all.
 */
static const struct agent_route {
	void (*fn)(struct relay_peer *p, const struct tether_ctrl_msg *m);
	unsigned in;
	unsigned refused_in;
	const char *refusal;
} agent_routes[TETHER_CTRL_TYPES] = {
    [TETHER_CTRL_ENROLL] = {relay_enroll, AS_NEW, AS_BUSY,
			    "enroll on a busy connection"},
    [TETHER_CTRL_AUTH] = {relay_enroll_auth, AS_NEW, AS_BUSY,
			  "auth on a busy connection"},
    [TETHER_CTRL_JOIN] = {join, AS_NEW, AS_ATTENDED, "already joined"},
    [TETHER_CTRL_RESUME] = {resume, AS_NEW, AS_ATTENDED, "already joined"},
    [TETHER_CTRL_PAKE] = {pake, AS_CLAIMED, AS_NEW | AS_JOINED,
			  "pake out of order"},
    [TETHER_CTRL_CONFIRMED] = {confirmed, AS_ATTENDED, AS_NEW, "join first"},
    [TETHER_CTRL_OPENED] = {opened, AS_ATTENDED, AS_NEW, "join first"},
    [TETHER_CTRL_OPEN_FAILED] = {open_failed, AS_ATTENDED, AS_NEW,
				 "join first"},
    [TETHER_CTRL_CHAN_CLOSE] = {agent_close, AS_ATTENDED, AS_NEW, "join first"},
    [TETHER_CTRL_XFER_REPORT] = {xfer_report, AS_ATTENDED, AS_NEW,
				 "join first"},
    [TETHER_CTRL_FORWARD_REPORT] = {forward_report, AS_ATTENDED, AS_NEW,
				    "join first"},
    /* The customer's no to the consent screen, which comes after pake,
     * with the console's confirmation (decline() checks that). */
    [TETHER_CTRL_DECLINE] = {decline, AS_JOINED, AS_NEW | AS_CLAIMED,
			     "decline out of order"},
    [TETHER_CTRL_LEAVE] = {leave, AS_ATTENDED, AS_NEW, "join first"},
    [TETHER_CTRL_CHECK] = {relay_health_check, AS_ENROLLED, AS_NEW,
			   "authenticate first"},
    [TETHER_CTRL_DIAG] = {relay_health_diag, AS_ENROLLED, AS_NEW,
			  "authenticate first"},
};

void relay_agent_message(struct relay_peer *p, int r,
			 const struct tether_ctrl_msg *m, const char *why)
{
	const struct agent_route *route;
	unsigned state = agent_state(p);

	if (r == TETHER_ERR_NOT_FOUND || m->type == TETHER_CTRL_TYPES) {
		if (r == TETHER_ERR_NOT_FOUND)
			relay_drop(p, TETHER_ERR_PROTOCOL, "unknown message");
		else
			relay_drop_malformed(p, why);
		return;
	}
	/* What the agent may send now comes first, then how it sent it. */
	route = &agent_routes[m->type];
	if (route->fn == NULL || !(route->in & state))
		relay_drop(p, TETHER_ERR_PROTOCOL,
			   route->refused_in & state ? route->refusal
						     : "unknown message");
	else if (r != 0)
		relay_drop_malformed(p, why);
	else
		route->fn(p, m);
}
