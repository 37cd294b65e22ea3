/*
 * Live sessions: the sessions an agent has claimed (joined, paired, or
 * waiting for its reconnect), found by id, added on join or resume, and
 * ended with their state stored, the agent told why and its channels
 * closed; a ticket's live session ends the same way when the ticket
 * closes or a new invite replaces it; the "sessions" request lists them.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <tether/alloc.h>
#include <tether/crypto.h>
#include <tether/err.h>
#include <tether/id.h>
#include <tether/log.h>

#include "relay.h"

struct relay_session *relay_session_find(struct relay *r, int64_t id)
{
	struct relay_session *s;

	for (s = r->sessions; s != NULL; s = s->next)
		if (s->id == id)
			return s;
	return NULL;
}

struct relay_session *relay_session_add(struct relay *r,
					const struct relay_store_session *ss)
{
	struct relay_session *s = tether_calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->id = ss->id;
	s->ticket_id = ss->ticket_id;
	s->allowed = ~0u;
	snprintf(s->nameplate, sizeof(s->nameplate), "%s", ss->nameplate);
	s->since = (int64_t)time(NULL);
	s->next = r->sessions;
	r->sessions = s;
	return s;
}

static void session_unlink(struct relay *r, struct relay_session *s)
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
		       enum tether_session_state state, const char *reason)
{
	struct tether_ctrl_ended ended = {.reason = reason};

	relay_store_session_set_state(r->store, s->id, state);
	if (s->confirmer != NULL)
		relay_reply_err(s->confirmer, s->confirm_id,
				TETHER_CTRL_E_STATE, "session ended: %s",
				reason);
	if (s->agent != NULL) {
		relay_channels_close_peer(r, s->agent, reason);
		relay_send(s->agent, TETHER_CTRL_ENDED, &ended);
	}
	session_unlink(r, s);
}

void relay_session_burned_words(const struct relay_session *s, char *out,
				size_t len)
{
	char name[TETHER_ID_TICKET_LEN];

	tether_id_ticket_format(s->ticket_id, name, sizeof(name));
	snprintf(out, len,
		 "the code for %s was burned by a wrong guess (from %s); run: "
		 "tether invite %s for a new code",
		 name, s->agent_addr[0] ? s->agent_addr : "an unknown address",
		 name);
}

void relay_session_burn(struct relay *r, struct relay_session *s,
			const char *actor, const char *reason)
{
	char words[TETHER_CTRL_MESSAGE_MAX];

	/*
	 * Its own row, so that whoever reads the ticket later (the next
	 * invite, an attach) finds when the code went, why, and where the
	 * join that burned it came from, the agent being gone by then.
	 */
	relay_audit(r, actor, s->ticket_id, s->id, "code_burned",
		    json_pack("{s:s, s:s, s:s}", "nameplate", s->nameplate,
			      "addr", s->agent_addr, "reason", reason));
	/*
	 * A console waiting on the session hears it now, and what to do,
	 * rather than a bare "session ended" or a timeout.
	 */
	if (s->confirmer != NULL) {
		relay_session_burned_words(s, words, sizeof(words));
		relay_reply_err(s->confirmer, s->confirm_id,
				TETHER_CTRL_E_PAKE_FAILED, "%s", words);
		s->confirmer = NULL;
	}
	relay_session_end(r, s, TETHER_SESSION_BURNED, reason);
}

int relay_session_end_ticket(struct relay *r, const char *actor,
			     int64_t ticket_id, const char *reason)
{
	struct relay_store_session ss;
	struct relay_session *s;
	int rc;

	rc = relay_store_session_live_for_ticket(r->store, ticket_id, &ss);
	if (rc != 0)
		return rc;
	/*
	 * The technician ends it, not the customer: no agent message says
	 * so in the audit, this row does (whether or not an agent is on).
	 */
	relay_audit(r, actor, ticket_id, ss.id, "session_ended",
		    json_pack("{s:s, s:s, s:s}", "nameplate", ss.nameplate,
			      "was",
			      tether_ctrl_name_of(session_state, ss.state),
			      "reason", reason));
	s = relay_session_find(r, ss.id);
	if (s != NULL)
		relay_session_end(r, s, TETHER_SESSION_ENDED, reason);
	else
		rc = relay_store_session_set_state(r->store, ss.id,
						   TETHER_SESSION_ENDED);
	relay_store_session_clear(&ss);
	return rc;
}

void relay_sessions_expire(struct relay *r)
{
	struct relay_store_session *v = NULL;
	size_t n = 0, i;
	int rc;

	rc = relay_store_session_expire(r->store, (int64_t)time(NULL), &v, &n);
	if (rc != 0)
		tether_log_err(rc, "expiring invites");
	/* A code that ran out unused ends its session: the trail says so. */
	for (i = 0; i < n; i++)
		relay_audit(r, "relay", v[i].ticket_id, v[i].id,
			    "invite_expired",
			    json_pack("{s:s}", "nameplate", v[i].nameplate));
	relay_store_sessions_free(v, n);
}

void relay_sessions_forget(struct relay *r, const struct relay_peer *p)
{
	struct relay_session *s;

	for (s = r->sessions; s != NULL; s = s->next)
		if (s->confirmer == p)
			s->confirmer = NULL;
}

void relay_sessions_free(struct relay *r)
{
	/* Their agents' links are gone by now. */
	while (r->sessions != NULL) {
		r->sessions->agent = NULL;
		session_unlink(r, r->sessions);
	}
}

/* What one row of the sessions answer points into. */
struct live_parts {
	struct relay_store_session ss;
	struct relay_store_ticket t;
	struct relay_store_tech tech;
	struct tether_ctrl_part_msg facts;
	const char **kinds;
};

static void live_parts_free(struct live_parts *lp)
{
	relay_store_session_clear(&lp->ss);
	relay_store_ticket_clear(&lp->t);
	tether_wipe(&lp->tech, sizeof(lp->tech));
	tether_ctrl_part_free(&lp->facts);
	tether_free(lp->kinds);
}

/* Fills v from s; 0, 1 when q's technician may not see it, else error. */
static int live_view(struct relay_request *q, const struct relay_session *s,
		     struct live_parts *lp, struct tether_ctrl_live_row *v)
{
	enum tether_kind kinds[TETHER_CTRL_LIVE_CHANNELS_MAX];
	char why[TETHER_CTRL_WHY_MAX];
	size_t n, i;
	int rc;

	rc = relay_store_session_get(q->r->store, s->id, &lp->ss);
	if (rc != 0)
		return rc;
	/* Admins and auditors see every session, a technician their own. */
	if (q->p->tech.role == TETHER_TECH_TECHNICIAN &&
	    lp->ss.technician_id != q->p->tech.id)
		return 1;
	rc = relay_store_ticket_get(q->r->store, s->ticket_id, &lp->t);
	if (rc != 0)
		return rc;
	memset(v, 0, sizeof(*v));
	v->ticket = s->ticket_id;
	v->title = lp->t.title;
	if (relay_store_tech_get(q->r->store, lp->ss.technician_id,
				 &lp->tech) == 0)
		v->technician = lp->tech.name;
	v->nameplate = lp->ss.nameplate;
	v->state = lp->ss.state;
	v->connected = s->agent != NULL;
	v->addr = s->agent_addr[0] != '\0' ? s->agent_addr : NULL;
	v->since = s->since;
	v->has_agent =
	    lp->ss.agent_facts != NULL &&
	    tether_ctrl_part_decode(TETHER_CTRL_PART_FACTS, lp->ss.agent_facts,
				    strlen(lp->ss.agent_facts), &lp->facts, why,
				    sizeof(why)) == 0;
	if (v->has_agent)
		v->agent = lp->facts.body.facts;
	n = relay_channels_kinds(q->r, s->id, kinds,
				 TETHER_CTRL_LIVE_CHANNELS_MAX);
	if (n > 0) {
		lp->kinds = tether_calloc(n, sizeof(*lp->kinds));
		if (lp->kinds == NULL)
			return TETHER_ERR_NOMEM;
		for (i = 0; i < n; i++)
			lp->kinds[i] = tether_ctrl_name_of(kind, kinds[i]);
	}
	v->channels = lp->kinds;
	v->nchannels = n;
	return 0;
}

void relay_sessions_list(struct relay_request *q)
{
	struct tether_ctrl_sessions_ok ok = {0};
	struct tether_ctrl_live_row *views = NULL;
	struct live_parts *parts = NULL;
	struct relay_session *s;
	size_t n = 0, i, live = 0;
	int rc = 0;

	for (s = q->r->sessions; s != NULL; s = s->next)
		live++;
	if (live > 0 &&
	    ((views = tether_calloc(live, sizeof(*views))) == NULL ||
	     (parts = tether_calloc(live, sizeof(*parts))) == NULL))
		rc = TETHER_ERR_NOMEM;
	for (s = q->r->sessions; rc == 0 && s != NULL; s = s->next) {
		rc = live_view(q, s, &parts[n], &views[n]);
		if (rc == 1) {
			live_parts_free(&parts[n]);
			memset(&parts[n], 0, sizeof(parts[n]));
			rc = 0;
		} else if (rc == 0) {
			n++;
		}
	}
	if (rc != 0) {
		relay_refuse(q, TETHER_CTRL_E_INTERNAL, "cannot list sessions");
	} else {
		ok.sessions = views;
		ok.nsessions = n;
		relay_answer(q, &ok);
	}
	for (i = 0; parts != NULL && i < live; i++)
		live_parts_free(&parts[i]);
	tether_free(parts);
	tether_free(views);
}
