/*
 * Enrolled agents (docs/protocol.md, "Enrolled agents"): spending a
 * one-time enrolment token to register an agent's Ed25519 key, and
 * authenticating an agent by its signature over the challenge sent in
 * welcome.  Failures of either are rate-limited per address with the same
 * limiter as codes and tokens, and audited.
 */
#include <stdio.h>
#include <string.h>

#include <tether/alloc.h>
#include <tether/crypto.h>
#include <tether/err.h>
#include <tether/log.h>
#include <tether/proto.h>
#include <tether/sign.h>

#include "relay.h"

/* Common end of a refused enrolment or authentication. */
static void refuse_agent(struct relay_peer *p, const char *event,
			 const char *name, const char *reason)
{
	struct relay *r = p->relay;

	r->stats.auth_failures++;
	relay_rate_fail(r, p->addr);
	relay_audit(r, "relay", 0, 0, event,
		    json_pack("{s:s, s:s?}", "addr", p->addr, "agent", name));
	relay_drop(p, TETHER_ERR_AUTH, reason);
}

/* What an enrolment brings as the JSON texts the store keeps. */
static int enroll_texts(const struct tether_ctrl_enroll *e, char **labels,
			char **facts)
{
	struct tether_ctrl_labels l = {e->labels, e->nlabels};
	int r = 0;

	*labels = *facts = NULL;
	if (e->nlabels > 0)
		r = tether_ctrl_part_encode(TETHER_CTRL_PART_LABELS, &l, labels,
					    NULL);
	if (r == 0 && e->has_facts)
		r = tether_ctrl_part_encode(TETHER_CTRL_PART_FACTS, &e->facts,
					    facts, NULL);
	if (r != 0) {
		tether_free(*labels);
		*labels = NULL;
	}
	return r;
}

void relay_enroll(struct relay_peer *p, const struct tether_ctrl_msg *m)
{
	const struct tether_ctrl_enroll *e = &m->body.enroll;
	struct tether_ctrl_enrolled ok = {.agent = e->name};
	struct relay *r = p->relay;
	uint8_t hash[TETHER_SHA256_LEN];
	char *labels, *facts;
	bool replaced = false;
	int err;

	if (relay_rate_limited(r, p->addr)) {
		relay_drop(p, TETHER_ERR_LIMIT,
			   "too many attempts, wait a minute");
		return;
	}
	if (tether_sha256(e->token, strlen(e->token), hash) != 0 ||
	    enroll_texts(e, &labels, &facts) != 0) {
		relay_drop(p, TETHER_ERR_INTERNAL, "internal error");
		return;
	}
	err = relay_store_agent_enroll(r->store, hash, e->name, e->pubkey,
				       labels, facts, NULL, &replaced);
	tether_free(labels);
	tether_free(facts);
	if (err == TETHER_ERR_NOT_FOUND || err == TETHER_ERR_EXPIRED) {
		refuse_agent(p, "enroll_failed", e->name,
			     "invalid or expired enrollment token");
		return;
	}
	if (err != 0) {
		relay_drop(p, TETHER_ERR_INTERNAL, "cannot store the agent");
		return;
	}
	tether_log_info("agent %s enrolled from %s%s", e->name, p->addr,
			replaced ? " (new key)" : "");
	relay_audit(r, "relay", 0, 0, "enroll",
		    json_pack("{s:s, s:s, s:b}", "agent", e->name, "addr",
			      p->addr, "replaced", replaced));
	relay_send(p, TETHER_CTRL_ENROLLED, &ok);
}

struct relay_peer *relay_enrolled_peer(struct relay *r, const char *name)
{
	struct relay_peer *q;

	for (q = r->peers; q != NULL; q = q->next)
		if (q->agent_id != 0 && q->link != NULL &&
		    strcmp(q->agent_name, name) == 0)
			return q;
	return NULL;
}

unsigned relay_enrolled_connected(struct relay *r)
{
	struct relay_peer *q;
	unsigned n = 0;

	for (q = r->peers; q != NULL; q = q->next)
		n += q->agent_id != 0 && q->link != NULL;
	return n;
}

void relay_enroll_auth(struct relay_peer *p, const struct tether_ctrl_msg *m)
{
	const struct tether_ctrl_auth *a = &m->body.auth;
	uint8_t signed_msg[sizeof(TETHER_AGENT_AUTH_CONTEXT) +
			   TETHER_AGENT_CHALLENGE_LEN + TETHER_ID_NAME_MAX];
	struct relay *r = p->relay;
	struct tether_ctrl_auth_ok ok;
	struct relay_store_agent agent;
	struct relay_peer *old;
	size_t len = 0;

	if (relay_rate_limited(r, p->addr)) {
		relay_drop(p, TETHER_ERR_LIMIT,
			   "too many attempts, wait a minute");
		return;
	}
	/* The member is optional only because consoles send auth too. */
	if (a->agent == NULL) {
		relay_drop_malformed(p, "auth: member agent is missing");
		return;
	}
	/* An unknown name costs the same as a bad signature. */
	if (relay_store_agent_get(r->store, a->agent, &agent) != 0 ||
	    tether_sign_auth_message(p->challenge, a->agent, signed_msg,
				     sizeof(signed_msg), &len) != 0 ||
	    tether_sign_verify(agent.pubkey, signed_msg, len, a->sig) != 0) {
		refuse_agent(p, "agent_auth_failed", a->agent,
			     "agent authentication failed");
		return;
	}
	/* The newest connection wins: the old one is likely half-dead. */
	old = relay_enrolled_peer(r, a->agent);
	if (old != NULL)
		relay_drop(old, TETHER_ERR_CLOSED,
			   "replaced by a new connection");
	p->agent_id = agent.id;
	snprintf(p->agent_name, sizeof(p->agent_name), "%s", agent.name);
	relay_store_agent_seen(r->store, agent.id);
	tether_log_info("agent %s connected from %s", a->agent, p->addr);
	ok = (struct tether_ctrl_auth_ok){.has_acked = true,
					  .acked = agent.last_seq};
	relay_send(p, TETHER_CTRL_AUTH_OK, &ok);
}
