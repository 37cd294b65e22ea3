/*
 * Enrolled agents (docs/protocol.md, "Enrolled agents"): spending a
 * one-time enrolment token to register an agent's Ed25519 key, and
 * authenticating an agent by its signature over the challenge sent in
 * welcome.  Failures of either are rate-limited per address with the same
 * limiter as codes and tokens, and audited.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tether/crypto.h>
#include <tether/err.h>
#include <tether/log.h>
#include <tether/proto.h>
#include <tether/sign.h>

#include "relay.h"

#define LABELS_MAX 32
#define LABEL_LEN_MAX 128
#define FACTS_MAX 2048

static bool agent_name_ok(const char *s)
{
	return relay_name_valid(s, TETHER_STORE_AGENT_NAME_MAX);
}

/* An object of at most LABELS_MAX short strings (NULL is fine). */
static bool valid_labels(const json_t *labels)
{
	const char *k;
	json_t *v;

	if (labels == NULL)
		return true;
	if (!json_is_object(labels) || json_object_size(labels) > LABELS_MAX)
		return false;
	json_object_foreach((json_t *)labels, k, v)
		if (!json_is_string(v) || strlen(k) > LABEL_LEN_MAX ||
		    json_string_length(v) > LABEL_LEN_MAX)
			return false;
	return true;
}

/* Common end of a refused enrolment or authentication. */
static void refuse(struct relay_peer *p, const char *event, const char *name,
		   const char *reason)
{
	struct relay *r = p->relay;

	r->stats.auth_failures++;
	relay_rate_fail(r, p->addr);
	relay_audit(r, "relay", 0, 0, event,
		    json_pack("{s:s, s:s?}", "addr", p->addr, "agent",
			      agent_name_ok(name) ? name : NULL));
	relay_drop(p, TETHER_ERR_AUTH, reason);
}

void relay_enroll(struct relay_peer *p, json_t *msg)
{
	struct relay *r = p->relay;
	const char *token = NULL, *name = NULL, *pub_hex = NULL;
	json_t *labels = NULL, *facts = NULL;
	uint8_t hash[TETHER_SHA256_LEN], pub[TETHER_SIGN_PUB_LEN];
	char *labels_text = NULL, *facts_text = NULL;
	bool replaced = false;
	int64_t id = 0;
	int err;

	if (p->session != NULL || p->agent_id != 0) {
		relay_drop(p, TETHER_ERR_PROTOCOL, "enroll on a busy connection");
		return;
	}
	if (relay_rate_limited(r, p->addr)) {
		relay_drop(p, TETHER_ERR_LIMIT,
			   "too many attempts, wait a minute");
		return;
	}
	if (json_unpack(msg, "{s:s, s:s, s:s, s?o, s?o}", "token", &token,
			"name", &name, "pubkey", &pub_hex, "labels", &labels,
			"facts", &facts) != 0 ||
	    !agent_name_ok(name) || !valid_labels(labels) ||
	    (facts != NULL && !json_is_object(facts)) ||
	    strlen(pub_hex) != 2 * sizeof(pub) ||
	    tether_hex_decode(pub_hex, pub, sizeof(pub)) != 0) {
		relay_drop(p, TETHER_ERR_PROTOCOL, "malformed enroll");
		return;
	}
	if (tether_sha256(token, strlen(token), hash) != 0) {
		relay_drop(p, TETHER_ERR_INTERNAL, "internal error");
		return;
	}
	labels_text = labels ? json_dumps(labels, JSON_COMPACT) : NULL;
	facts_text = facts ? json_dumps(facts, JSON_COMPACT) : NULL;
	if (facts_text != NULL && strlen(facts_text) > FACTS_MAX) {
		free(facts_text);
		facts_text = NULL;
	}
	err = tether_store_agent_enroll(r->store, hash, name, pub, labels_text,
					facts_text, &id, &replaced);
	free(labels_text);
	free(facts_text);
	if (err == TETHER_ERR_NOT_FOUND || err == TETHER_ERR_EXPIRED) {
		refuse(p, "enroll_failed", name,
		       "invalid or expired enrollment token");
		return;
	}
	if (err != 0) {
		relay_drop(p, TETHER_ERR_INTERNAL, "cannot store the agent");
		return;
	}
	tether_log_info("agent %s enrolled from %s%s", name, p->addr,
			replaced ? " (new key)" : "");
	relay_audit(r, "relay", 0, 0, "enroll",
		    json_pack("{s:s, s:s, s:b}", "agent", name, "addr",
			      p->addr, "replaced", replaced));
	relay_send(p, json_pack("{s:s, s:s}", "t", "enrolled", "agent", name));
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

void relay_enroll_auth(struct relay_peer *p, json_t *msg)
{
	struct relay *r = p->relay;
	struct tether_store_agent agent;
	uint8_t sig[TETHER_SIGN_SIG_LEN];
	uint8_t signed_msg[sizeof(TETHER_AGENT_AUTH_CONTEXT) +
			   TETHER_AGENT_CHALLENGE_LEN +
			   TETHER_STORE_AGENT_NAME_MAX];
	const char *name = NULL, *sig_hex = NULL;
	struct relay_peer *old;
	size_t len = 0;

	if (p->session != NULL || p->agent_id != 0) {
		relay_drop(p, TETHER_ERR_PROTOCOL, "auth on a busy connection");
		return;
	}
	if (relay_rate_limited(r, p->addr)) {
		relay_drop(p, TETHER_ERR_LIMIT,
			   "too many attempts, wait a minute");
		return;
	}
	if (json_unpack(msg, "{s:s, s:s}", "agent", &name, "sig", &sig_hex) !=
		    0 ||
	    !agent_name_ok(name) || strlen(sig_hex) != 2 * sizeof(sig) ||
	    tether_hex_decode(sig_hex, sig, sizeof(sig)) != 0) {
		relay_drop(p, TETHER_ERR_PROTOCOL, "malformed auth");
		return;
	}
	/* An unknown name costs the same as a bad signature. */
	if (tether_store_agent_get(r->store, name, &agent) != 0 ||
	    tether_sign_auth_message(p->challenge, name, signed_msg,
				     sizeof(signed_msg), &len) != 0 ||
	    tether_sign_verify(agent.pubkey, signed_msg, len, sig) != 0) {
		refuse(p, "agent_auth_failed", name,
		       "agent authentication failed");
		return;
	}
	/* The newest connection wins: the old one is likely half-dead. */
	old = relay_enrolled_peer(r, name);
	if (old != NULL)
		relay_drop(old, TETHER_ERR_CLOSED,
			   "replaced by a new connection");
	p->agent_id = agent.id;
	snprintf(p->agent_name, sizeof(p->agent_name), "%s", agent.name);
	tether_store_agent_seen(r->store, agent.id);
	tether_log_info("agent %s connected from %s", name, p->addr);
	relay_send(p, json_pack("{s:s, s:I}", "t", "auth_ok", "acked",
				(json_int_t)agent.last_seq));
}
