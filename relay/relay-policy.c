/*
 * Who may do what: the table of relay-policy.h, applied once before a
 * console request is dispatched; refusals audited at a bounded rate per
 * technician; and revocation, when a technician loses a ticket or their
 * role (or is removed), of the consoles, channels and sessions they may
 * no longer have.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tether/crypto.h>
#include <tether/err.h>
#include <tether/id.h>
#include <tether/link.h>
#include <tether/log.h>
#include <tether/num.h>
#include <tether/proto.h>

#include "relay-policy.h"
#include "relay.h"

#define AT(member) offsetof(union tether_ctrl_body, member)

/* One row per console request: the roles, the rule, where its ticket is. */
/* A table reads best as one: kept as written. */
/* clang-format off */
const struct relay_policy_row relay_policy_rows[TETHER_CTRL_TYPES] = {
    [TETHER_CTRL_TICKET_NEW] = {RELAY_WORKERS, RELAY_RULE_NONE, RELAY_TARGET_NONE, 0, "create tickets"},
    [TETHER_CTRL_TICKET_LIST] = {RELAY_ANY_ROLE, RELAY_RULE_NONE, RELAY_TARGET_NONE, 0, "list tickets"},
    [TETHER_CTRL_TICKET_SHOW] = {RELAY_ANY_ROLE, RELAY_RULE_SEE, RELAY_TARGET_TICKET, AT(ticket_show.ticket), "see"},
    [TETHER_CTRL_TICKET_COMMENT] = {RELAY_WORKERS, RELAY_RULE_SEE, RELAY_TARGET_TICKET, AT(ticket_comment.ticket), "comment on"},
    [TETHER_CTRL_TICKET_REOPEN] = {RELAY_WORKERS, RELAY_RULE_ACT, RELAY_TARGET_TICKET, AT(ticket_ref.ticket), "reopen"},
    [TETHER_CTRL_TICKET_CLOSE] = {RELAY_WORKERS, RELAY_RULE_ACT, RELAY_TARGET_TICKET, AT(ticket_close.ticket), "close"},
    [TETHER_CTRL_TICKET_ASSIGN] = {RELAY_WORKERS, RELAY_RULE_ASSIGN, RELAY_TARGET_TICKET, AT(ticket_assign.ticket), "assign"},
    [TETHER_CTRL_INVITE] = {RELAY_WORKERS, RELAY_RULE_ACT, RELAY_TARGET_TICKET, AT(invite.ticket), "invite a customer to"},
    [TETHER_CTRL_ATTACH] = {RELAY_WORKERS, RELAY_RULE_ACT, RELAY_TARGET_TICKET, AT(ticket_ref.ticket), "attach to"},
    [TETHER_CTRL_CONFIRM] = {RELAY_WORKERS, RELAY_RULE_ACT, RELAY_TARGET_SESSION, AT(confirm.session), "confirm the session of"},
    [TETHER_CTRL_PAKE_FAILED] = {RELAY_WORKERS, RELAY_RULE_ACT, RELAY_TARGET_SESSION, AT(session_ref.session), "end the session of"},
    [TETHER_CTRL_OPEN] = {RELAY_WORKERS, RELAY_RULE_ACT, RELAY_TARGET_SESSION, AT(open.session), "open channels on"},
    [TETHER_CTRL_CLOSE] = {RELAY_WORKERS, RELAY_RULE_ACT, RELAY_TARGET_CHANNEL, AT(channel_ref.channel), "close channels on"},
    [TETHER_CTRL_AGENTS] = {RELAY_ANY_ROLE, RELAY_RULE_NONE, RELAY_TARGET_NONE, 0, "list agents"},
    [TETHER_CTRL_HEALTH] = {RELAY_ANY_ROLE, RELAY_RULE_NONE, RELAY_TARGET_NONE, 0, "see health checks"},
    [TETHER_CTRL_DIAG_ATTACH] = {RELAY_WORKERS, RELAY_RULE_ACT, RELAY_TARGET_TICKET, AT(diag_attach.ticket), "attach diagnostics to"},
    [TETHER_CTRL_DIAG_GET] = {RELAY_ANY_ROLE, RELAY_RULE_SEE, RELAY_TARGET_TICKET, AT(ticket_ref.ticket), "read the diagnostics of"},
    [TETHER_CTRL_SESSIONS] = {RELAY_ANY_ROLE, RELAY_RULE_NONE, RELAY_TARGET_NONE, 0, "list sessions"},
    [TETHER_CTRL_TECH_ADD] = {RELAY_ADMINS, RELAY_RULE_NONE, RELAY_TARGET_NONE, 0, "add technicians"},
    [TETHER_CTRL_TECH_REMOVE] = {RELAY_ADMINS, RELAY_RULE_NONE, RELAY_TARGET_NONE, 0, "remove technicians"},
    [TETHER_CTRL_TECH_LIST] = {RELAY_ADMINS, RELAY_RULE_NONE, RELAY_TARGET_NONE, 0, "list technicians"},
    [TETHER_CTRL_TECH_ROLE] = {RELAY_ADMINS, RELAY_RULE_NONE, RELAY_TARGET_NONE, 0, "change roles"},
    [TETHER_CTRL_ENROLL_TOKEN] = {RELAY_ADMINS, RELAY_RULE_NONE, RELAY_TARGET_NONE, 0, "issue enrolment tokens"},
};
/* clang-format on */

/* ---- The decision ---- */

static bool unassigned(const struct relay_policy_ticket *t)
{
	return t->assignee_id == 0;
}

/*
 * relay_store_ticket_filter's visible_to is this rule in the store's SQL
 * (relay-store-sqlite.c, TICKET_WHERE), for ticket lists: change the two
 * together.
 */
bool relay_policy_may_see(const struct relay_policy_tech *who,
			  const struct relay_policy_ticket *t)
{
	if (who->role != TETHER_TECH_TECHNICIAN)
		return true;
	return unassigned(t) || t->assignee_id == who->id ||
	       t->created_by_id == who->id;
}

bool relay_policy_may_act(const struct relay_policy_tech *who,
			  const struct relay_policy_ticket *t)
{
	if (who->role == TETHER_TECH_ADMIN)
		return true;
	if (who->role != TETHER_TECH_TECHNICIAN)
		return false;
	/* Once assigned, a ticket is its assignee's alone: giving it away
	 * takes it from its creator too. */
	return t->assignee_id == who->id ||
	       (unassigned(t) && t->created_by_id == who->id);
}

/* Why a technician may not act on t, in words. */
static void not_theirs(const struct relay_policy_ticket *t, const char *name,
		       char *out, size_t len)
{
	if (!unassigned(t))
		snprintf(out, len, "it is assigned to %s",
			 t->assignee != NULL ? t->assignee : "someone else");
	else
		snprintf(out, len,
			 "it is in the unassigned queue (run: tether ticket "
			 "assign %s me)",
			 name);
}

bool relay_policy_allows(enum tether_ctrl_type type,
			 const struct relay_policy_tech *who,
			 const struct relay_policy_ticket *t, bool to_self,
			 char *why, size_t len)
{
	const struct relay_policy_row *row;
	char name[TETHER_ID_TICKET_LEN] = "", because[160];
	bool ok;

	if ((unsigned)type >= TETHER_CTRL_TYPES ||
	    (unsigned)who->role > TETHER_TECH_AUDITOR)
		return false;
	row = &relay_policy_rows[type];
	if (t != NULL)
		tether_id_ticket_format(t->id, name, sizeof(name));
	if ((row->roles & RELAY_ROLE(who->role)) == 0) {
		snprintf(because, sizeof(because), "%s",
			 who->role == TETHER_TECH_AUDITOR ? "auditors only read"
							  : "only admins may");
		ok = false;
	} else if (t == NULL || who->role == TETHER_TECH_ADMIN) {
		return true;
	} else {
		switch (row->rule) {
		case RELAY_RULE_SEE:
			ok = relay_policy_may_see(who, t);
			break;
		case RELAY_RULE_ACT:
			ok = relay_policy_may_act(who, t);
			break;
		case RELAY_RULE_ASSIGN:
			ok = relay_policy_may_act(who, t) ||
			     (unassigned(t) && to_self);
			break;
		default:
			ok = true;
		}
		if (ok)
			return true;
		if (row->rule == RELAY_RULE_ASSIGN && unassigned(t))
			snprintf(because, sizeof(because),
				 "from the unassigned queue a technician may "
				 "only take it (run: tether ticket assign %s "
				 "me)",
				 name);
		else
			not_theirs(t, name, because, sizeof(because));
	}
	snprintf(why, len, "%s (%s) may not %s%s%s: %s", who->name,
		 tether_ctrl_name_of(tech_role, who->role), row->verb,
		 name[0] != '\0' ? " " : "", name, because);
	return ok;
}

/* ---- Refusals, audited at a bounded rate ---- */

static void write_unrecorded(struct relay *r, struct relay_refusals *s)
{
	if (s->unrecorded == 0)
		return;
	relay_audit(r, "relay", 0, 0, "refused_unrecorded",
		    json_pack("{s:s, s:I, s:I, s:I}", "technician", s->name,
			      "id", (json_int_t)s->tech_id, "count",
			      (json_int_t)s->unrecorded, "window_ms",
			      (json_int_t)r->refused_window_ms));
	s->unrecorded = 0;
}

static uint64_t refused_window(struct relay *r)
{
	if (r->refused_window_ms == 0) {
		r->refused_window_ms = RELAY_REFUSED_WINDOW_MS;
#ifdef TETHER_TEST_HOOKS
		{
			const char *w = getenv("TETHER_TEST_REFUSED_WINDOW_MS");
			uint64_t v;

			if (w != NULL &&
			    tether_num_parse_u64(w, 1, 3600000, &v) == 0)
				r->refused_window_ms = v;
		}
#endif
	}
	return r->refused_window_ms;
}

/* The technician's slot: theirs, a free one, or the oldest window's. */
static struct relay_refusals *refusal_slot(struct relay *r,
					   const struct relay_peer *p)
{
	struct relay_refusals *s, *oldest = &r->refusals[0];
	size_t i;

	for (i = 0; i < RELAY_REFUSED_SLOTS; i++) {
		s = &r->refusals[i];
		if (s->tech_id == p->tech.id)
			return s;
		if (s->tech_id == 0 || s->window_start < oldest->window_start)
			oldest = s;
	}
	write_unrecorded(r, oldest);
	memset(oldest, 0, sizeof(*oldest));
	oldest->tech_id = p->tech.id;
	snprintf(oldest->name, sizeof(oldest->name), "%s", p->tech.name);
	return oldest;
}

/*
 * A refusal audited: up to RELAY_REFUSED_ROWS_MAX rows per technician and
 * window, then counted, and the count written when the window ends, so
 * that a console in a loop cannot flood the trail.
 */
static void audit_refused(struct relay_request *q, int64_t ticket,
			  const char *why)
{
	struct relay *r = q->r;
	struct relay_refusals *s = refusal_slot(r, q->p);
	uint64_t now = relay_now_ms();
	char name[TETHER_ID_TICKET_LEN];

	if (now - s->window_start >= refused_window(r)) {
		write_unrecorded(r, s);
		s->window_start = now;
		s->rows = 0;
	}
	if (s->rows >= RELAY_REFUSED_ROWS_MAX) {
		s->unrecorded++;
		return;
	}
	s->rows++;
	if (ticket > 0)
		tether_id_ticket_format(ticket, name, sizeof(name));
	relay_audit(r, q->actor, ticket, 0, "refused",
		    json_pack("{s:s, s:s, s:s?, s:s}", "technician",
			      q->p->tech.name, "request",
			      tether_ctrl_type_name(q->m->type), "ticket",
			      ticket > 0 ? name : NULL, "why", why));
}

void relay_policy_tick(struct relay *r)
{
	uint64_t now = relay_now_ms();
	size_t i;

	for (i = 0; i < RELAY_REFUSED_SLOTS; i++) {
		struct relay_refusals *s = &r->refusals[i];

		if (s->tech_id != 0 && s->unrecorded > 0 &&
		    now - s->window_start >= refused_window(r)) {
			write_unrecorded(r, s);
			s->window_start = now;
			s->rows = 0;
		}
	}
}

/* ---- The check ---- */

static void policy_ticket(const struct relay_store_ticket *t,
			  struct relay_policy_ticket *pt)
{
	pt->id = t->id;
	pt->created_by_id = t->created_by_id;
	pt->assignee_id = t->assignee_id;
	pt->assignee = t->assignee;
	pt->created_by = t->created_by;
}

static void policy_tech(const struct relay_peer *p, struct relay_policy_tech *w)
{
	w->id = p->tech.id;
	w->name = p->tech.name;
	w->role = p->tech.role;
}

int64_t relay_policy_visible_to(const struct relay_peer *p)
{
	/* Admins and auditors see every ticket (relay_policy_may_see()). */
	return p->tech.role == TETHER_TECH_TECHNICIAN ? p->tech.id : 0;
}

/*
 * The ticket id a request names into *id (0: none, or none found); a
 * store error is no verdict and is returned as such.
 */
static int request_ticket(struct relay_request *q,
			  const struct relay_policy_row *row, int64_t *id)
{
	struct relay_store_session ss = {0};
	struct relay_channel *c;
	int rc;

	*id = 0;
	if (row->target != RELAY_TARGET_NONE)
		memcpy(id, (const char *)&q->m->body + row->at, sizeof(*id));
	switch (row->target) {
	case RELAY_TARGET_TICKET:
		return 0;
	case RELAY_TARGET_SESSION:
		rc = relay_store_session_get(q->r->store, *id, &ss);
		*id = rc == 0 ? ss.ticket_id : 0;
		relay_store_session_clear(&ss);
		return rc == TETHER_ERR_NOT_FOUND ? 0 : rc;
	case RELAY_TARGET_CHANNEL:
		c = relay_channel_find(q->r, *id);
		*id = c != NULL ? c->ticket_id : 0;
		return 0;
	default:
		*id = 0;
		return 0;
	}
}

int relay_policy_check(struct relay_request *q)
{
	const struct relay_policy_row *row = &relay_policy_rows[q->m->type];
	struct relay_store_ticket t = {0};
	struct relay_policy_ticket pt;
	struct relay_policy_tech w;
	char why[TETHER_CTRL_MESSAGE_MAX];
	bool found = false, to_self = false, ok;
	int64_t tid;
	int rc;

	/*
	 * Only "there is none" lets a request through unjudged (its handler
	 * then says so); a store that cannot answer refuses it, since the
	 * handler's own read a moment later might succeed.
	 */
	rc = request_ticket(q, row, &tid);
	if (rc == 0 && tid > 0) {
		rc = relay_store_ticket_get(q->r->store, tid, &t);
		found = rc == 0;
		if (rc == TETHER_ERR_NOT_FOUND)
			rc = 0;
	}
	if (rc != 0) {
		relay_refuse(q, TETHER_CTRL_E_INTERNAL,
			     "cannot read what the request names; try again");
		relay_store_ticket_clear(&t);
		return rc;
	}
	if (found)
		policy_ticket(&t, &pt);
	if (q->m->type == TETHER_CTRL_TICKET_ASSIGN) {
		const struct tether_ctrl_ticket_assign *a =
		    &q->m->body.ticket_assign;

		to_self = a->me || (a->to != NULL &&
				    strcmp(a->to, q->p->tech.name) == 0);
	}
	policy_tech(q->p, &w);
	ok = relay_policy_allows(q->m->type, &w, found ? &pt : NULL, to_self,
				 why, sizeof(why));
	relay_store_ticket_clear(&t);
	if (ok) {
		/* What revocation looks at when the console has no channel
		 * yet (a forward waiting for its first connection). */
		if (found && row->rule == RELAY_RULE_ACT)
			q->p->ticket_id = tid;
		return 0;
	}
	relay_refuse(q, TETHER_CTRL_E_FORBIDDEN, "%s", why);
	audit_refused(q, found ? tid : 0, why);
	return TETHER_ERR_AUTH;
}

/* ---- Revocation ---- */

void relay_policy_cut_off(struct relay *r, struct relay_peer *p,
			  const char *actor, const char *why,
			  const char *reason)
{
	unsigned n = relay_channels_of(r, p);

	tether_log_info("technician %s %s: closing %s (%u channel%s)",
			p->tech.name, why, p->addr, n, n == 1 ? "" : "s");
	relay_audit(r, actor, 0, 0, "technician_cut_off",
		    json_pack("{s:s, s:I, s:s, s:I, s:s}", "technician",
			      p->tech.name, "id", (json_int_t)p->tech.id,
			      "addr", p->addr, "channels", (json_int_t)n,
			      "reason", reason));
	relay_channels_close_peer(r, p, reason);
	relay_drop(p, TETHER_ERR_AUTH, reason);
}

/*
 * Whether tech w may still act on ticket id.  Revocation runs because
 * something was taken away: a ticket that cannot be read counts as lost,
 * so a store error closes too much rather than too little.
 */
static bool still_may_act(struct relay *r, const struct relay_policy_tech *w,
			  int64_t id)
{
	struct relay_store_ticket t;
	struct relay_policy_ticket pt;
	bool ok;

	if (id <= 0)
		return true;
	if (relay_store_ticket_get(r->store, id, &t) != 0)
		return false;
	policy_ticket(&t, &pt);
	ok = relay_policy_may_act(w, &pt);
	relay_store_ticket_clear(&t);
	return ok;
}

/* Closes p's channels on tickets w may no longer act on: how many. */
static unsigned close_lost_channels(struct relay *r, struct relay_peer *p,
				    const struct relay_policy_tech *w,
				    const char *reason, const char *actor)
{
	struct relay_channel *c, *next;
	unsigned i, n = 0;

	for (i = 0; i < RELAY_CHANNEL_BUCKETS; i++) {
		for (c = r->channels[i]; c != NULL; c = next) {
			next = c->next;
			if (c->console != p ||
			    still_may_act(r, w, c->ticket_id))
				continue;
			relay_audit(r, actor, c->ticket_id, c->session_id,
				    "access_revoked",
				    json_pack("{s:s, s:I, s:s, s:I}",
					      "technician", w->name, "id",
					      (json_int_t)w->id, "reason",
					      reason, "channel",
					      (json_int_t)c->id));
			if (c->open_id != 0 && !c->opened) {
				relay_reply_err(p, c->open_id,
						TETHER_CTRL_E_FORBIDDEN, "%s",
						reason);
				c->console = NULL;
			} else {
				relay_channel_close(r, c, reason, true, true);
			}
			n++;
		}
	}
	return n;
}

/* Live sessions w opened on tickets they may no longer act on end. */
static void end_lost_sessions(struct relay *r,
			      const struct relay_policy_tech *w,
			      const char *reason, const char *actor)
{
	struct relay_session *s, *next;
	struct relay_store_session ss;

	for (s = r->sessions; s != NULL; s = next) {
		bool theirs;

		next = s->next;
		if (relay_store_session_get(r->store, s->id, &ss) != 0)
			continue;
		theirs = ss.technician_id == w->id;
		relay_store_session_clear(&ss);
		if (!theirs || still_may_act(r, w, s->ticket_id))
			continue;
		relay_audit(r, actor, s->ticket_id, s->id, "session_ended",
			    json_pack("{s:s, s:s}", "nameplate", s->nameplate,
				      "reason", reason));
		relay_session_end(r, s, TETHER_SESSION_ENDED, reason);
	}
}

void relay_policy_revoke(struct relay *r, int64_t tech_id,
			 enum tether_tech_role role, const char *actor,
			 const char *why)
{
	char reason[TETHER_CTRL_REASON_MAX];
	struct relay_policy_tech w = {.id = tech_id, .role = role};
	struct relay_store_tech t;
	struct relay_peer *p;

	/* A removed technician is relay_policy_cut_off()'s. */
	if (relay_store_tech_get(r->store, tech_id, &t) != 0)
		return;
	w.name = t.name;
	snprintf(reason, sizeof(reason), "%s%s", TETHER_REASON_REVOKED, why);
	for (p = r->peers; p != NULL; p = p->next) {
		unsigned n;
		bool lost;

		if (p->role != RELAY_PEER_CONSOLE || p->tech.id != tech_id ||
		    p->link == NULL || !tether_link_is_open(p->link))
			continue;
		p->tech.role = role;
		n = close_lost_channels(r, p, &w, reason, actor);
		lost = p->ticket_id != 0 && !still_may_act(r, &w, p->ticket_id);
		if (n == 0 && !lost)
			continue;
		tether_log_info("%s: closing %s (%u channel%s)", reason,
				p->addr, n, n == 1 ? "" : "s");
		if (n == 0)
			relay_audit(r, actor, p->ticket_id, 0, "access_revoked",
				    json_pack("{s:s, s:I, s:s}", "technician",
					      t.name, "id", (json_int_t)tech_id,
					      "reason", reason));
		relay_drop(p, TETHER_ERR_AUTH, reason);
	}
	end_lost_sessions(r, &w, reason, actor);
	tether_wipe(&t, sizeof(t));
}
