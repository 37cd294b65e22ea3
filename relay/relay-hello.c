/*
 * A new peer's opening (docs/protocol.md, "Opening"): hello says who it
 * is and welcome carries a fresh challenge.  A console signs it with its
 * technician's registered key, or, logging in, with the key it registers
 * by spending a one-time login token; an enrolled agent signs it with its
 * key (relay-enroll.c).  Until then nothing but hello, auth, ping and
 * pong is accepted.  Every refusal counts in the limiter that guards codes
 * and tokens, and is audited (but a throttled source writes no rows).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <tether/crypto.h>
#include <tether/err.h>
#include <tether/log.h>
#include <tether/num.h>
#include <tether/proto.h>
#include <tether/sign.h>

#include "relay.h"

#define EXPECTED_HELLO                                                         \
	"expected hello with protocol version " TETHER_PROTOCOL_VERSION_TEXT

/*
 * The technician of a token tt_<id>_<secret>: the id is looked up and the
 * secret's hash compared in constant time.  TETHER_ERR_AUTH otherwise.
 */
static int token_tech(struct relay *r, const char *token,
		      struct relay_store_tech *tech)
{
	uint8_t hash[TETHER_SHA256_LEN];
	const char *p = token;
	uint64_t id = 0;

	if (strncmp(p, "tt_", 3) != 0)
		return TETHER_ERR_AUTH;
	p += 3;
	/* Digits right away: the scanner would skip blanks. */
	if (*p < '0' || *p > '9' || tether_num_scan_u64(&p, &id) != 0 ||
	    id < 1 || id > INT64_MAX || *p != '_')
		return TETHER_ERR_AUTH;
	p++;
	if (relay_store_tech_get(r->store, (int64_t)id, tech) != 0 ||
	    tether_sha256(p, strlen(p), hash) != 0 ||
	    !tether_ct_equal(hash, tech->token_hash, sizeof(hash))) {
		tether_wipe(tech, sizeof(*tech));
		return TETHER_ERR_AUTH;
	}
	return TETHER_OK;
}

/* A console refused: counted, audited with the reason, dropped. */
static void refuse_console(struct relay_peer *p, const char *technician,
			   const char *why, const char *message)
{
	struct relay *r = p->relay;
	char actor[RELAY_ACTOR_MAX];

	r->stats.auth_failures++;
	relay_rate_fail(r, p->addr);
	relay_audit(r, relay_actor(p, actor, sizeof(actor)), 0, 0,
		    "auth_failed",
		    json_pack("{s:s, s:s?, s:s}", "addr", p->addr, "technician",
			      technician, "reason", why));
	tether_wipe(&p->tech, sizeof(p->tech));
	relay_drop(p, TETHER_ERR_AUTH, message);
}

/* A login token that registered a key already: what to ask for. */
static void refuse_spent(struct relay_peer *p)
{
	char msg[160 + TETHER_ID_NAME_MAX];

	snprintf(msg, sizeof(msg),
		 "this login token was already used; ask an admin for a new "
		 "one (tether-relay technician token %s)",
		 p->tech.name);
	refuse_console(p, p->tech.name, "login token already used", msg);
}

/* Logging in: the token must be the technician's and unspent. */
static int login_tech(struct relay_peer *p, const struct tether_ctrl_hello *h)
{
	if (token_tech(p->relay, h->token, &p->tech) != 0) {
		refuse_console(p, NULL, "invalid login token", "invalid token");
		return -1;
	}
	if (p->tech.token_spent) {
		refuse_spent(p);
		return -1;
	}
	if (p->tech.token_expires_at != 0 &&
	    (int64_t)time(NULL) >= p->tech.token_expires_at) {
		char msg[160 + TETHER_ID_NAME_MAX];

		snprintf(msg, sizeof(msg),
			 "this login token has expired (a login token is "
			 "good for 7 days); ask an admin for a new one "
			 "(tether-relay technician token %s)",
			 p->tech.name);
		refuse_console(p, p->tech.name, "login token expired", msg);
		return -1;
	}
	memcpy(p->tech.pubkey, h->pubkey, sizeof(p->tech.pubkey));
	p->registering = true;
	return 0;
}

/* Refused for what the store says of name: "technician NAME SAYS". */
static void refuse_tech(struct relay_peer *p, const char *name, const char *why,
			const char *says)
{
	char msg[160 + TETHER_ID_NAME_MAX];

	snprintf(msg, sizeof(msg), "technician %s %s", name, says);
	refuse_console(p, name, why, msg);
}

/* Signing in with a key: the technician must exist and have one. */
static int key_tech(struct relay_peer *p, const char *name)
{
	int rc;

	rc = relay_store_tech_by_name(p->relay->store, name, &p->tech);
	if (rc != 0 && rc != TETHER_ERR_NOT_FOUND) {
		relay_drop(p, TETHER_ERR_INTERNAL, "internal error");
		return -1;
	}
	/* Removed or never added: the row is gone either way. */
	if (rc == TETHER_ERR_NOT_FOUND) {
		refuse_tech(p, name, "unknown technician",
			    "is not known to this relay (removed, or never "
			    "added; ask an admin)");
		return -1;
	}
	/* Only a login spends the token: its hash has no business here. */
	tether_wipe(p->tech.token_hash, sizeof(p->tech.token_hash));
	if (!p->tech.has_key) {
		refuse_tech(p, name, "no key registered",
			    "has no key registered (log in with a login "
			    "token: tether login HOST:PORT --token TOKEN)");
		return -1;
	}
	return 0;
}

/* Sends the fresh challenge: a signature cannot be replayed. */
static int send_challenge(struct relay_peer *p)
{
	struct tether_ctrl_welcome w = {.version = TETHER_PROTOCOL_VERSION,
					.has_challenge = true};

	if (tether_random(p->challenge, sizeof(p->challenge)) != 0) {
		relay_drop(p, TETHER_ERR_INTERNAL, "internal error");
		return -1;
	}
	memcpy(w.challenge, p->challenge, sizeof(w.challenge));
	relay_send(p, TETHER_CTRL_WELCOME, &w);
	return 0;
}

static void hello_console(struct relay_peer *p,
			  const struct tether_ctrl_hello *h)
{
	/* Token and key guessing cost a slot in the limiter of codes. */
	if (relay_rate_limited(p->relay, p->addr)) {
		p->relay->stats.auth_failures++;
		relay_drop(p, TETHER_ERR_LIMIT,
			   "too many attempts, wait a minute");
		return;
	}
	if (h->token != NULL && !h->has_pubkey) {
		relay_drop(p, TETHER_ERR_PROTOCOL,
			   "a login token comes with the public key to "
			   "register (this tether is older than the relay)");
		return;
	}
	if ((h->token != NULL ? login_tech(p, h)
			      : key_tech(p, h->technician)) != 0)
		return;
	if (send_challenge(p) == 0)
		p->console_pending = true;
}

/* Registers the key the console just proved it holds; spends the token. */
static int register_key(struct relay_peer *p)
{
	struct relay *r = p->relay;
	char fp[TETHER_ID_FINGERPRINT_LEN];
	int rc;

	rc = relay_store_tech_register_key(r->store, p->tech.id,
					   p->tech.token_hash, p->tech.pubkey);
	/* Spent by a login racing this one, or replaced meanwhile. */
	if (rc == TETHER_ERR_EXPIRED) {
		refuse_spent(p);
		return -1;
	}
	if (rc != 0 ||
	    tether_sign_key_fingerprint(p->tech.pubkey, fp, sizeof(fp)) != 0) {
		relay_drop(p, TETHER_ERR_INTERNAL, "cannot store the key");
		return -1;
	}
	tether_wipe(p->tech.token_hash, sizeof(p->tech.token_hash));
	p->tech.has_key = true;
	tether_log_info("technician %s registered key %s from %s", p->tech.name,
			fp, p->addr);
	relay_audit(r, "relay", 0, 0, "technician_key_registered",
		    json_pack("{s:s, s:I, s:s, s:s}", "technician",
			      p->tech.name, "id", (json_int_t)p->tech.id, "key",
			      fp, "addr", p->addr));
	/* Consoles still on the old key are cut on the next look. */
	r->access_retry = true;
	return 0;
}

static void auth_console(struct relay_peer *p, const struct tether_ctrl_auth *a)
{
	uint8_t msg[sizeof(TETHER_CONSOLE_AUTH_CONTEXT) +
		    TETHER_AGENT_CHALLENGE_LEN + TETHER_SIGN_PUB_LEN];
	struct tether_ctrl_auth_ok ok = {.has_role = true};
	char why[96 + 2 * TETHER_ID_NAME_MAX];
	size_t len = 0;

	p->console_pending = false;
	if (a->agent != NULL) {
		relay_drop_malformed(p, "auth: a console names no agent");
		return;
	}
	if (tether_sign_console_auth_message(p->challenge, p->tech.pubkey, msg,
					     sizeof(msg), &len) != 0 ||
	    tether_sign_verify(p->tech.pubkey, msg, len, a->sig) != 0) {
		snprintf(why, sizeof(why),
			 "this console's key is not the one registered for "
			 "technician %s",
			 p->tech.name);
		refuse_console(p, p->tech.name, "wrong key", why);
		return;
	}
	if (p->registering && register_key(p) != 0)
		return;
	p->registering = false;
	p->role = RELAY_PEER_CONSOLE;
	tether_link_set_max_payload(p->link, TETHER_FRAME_MAX);
	ok.technician = p->tech.name;
	ok.role = p->tech.role;
	relay_send(p, TETHER_CTRL_AUTH_OK, &ok);
}

static void welcome_agent(struct relay_peer *p)
{
	p->role = RELAY_PEER_AGENT;
	tether_link_set_max_payload(p->link, TETHER_FRAME_MAX);
	send_challenge(p);
}

void relay_hello_message(struct relay_peer *p, int r,
			 const struct tether_ctrl_msg *m, const char *why)
{
	const struct tether_ctrl_hello *h = &m->body.hello;

	/* A hello or auth with bad members, or what is no message at all. */
	if (r != 0 &&
	    (m->type == TETHER_CTRL_HELLO ||
	     (m->type == TETHER_CTRL_AUTH && p->console_pending) ||
	     (m->type == TETHER_CTRL_TYPES && r != TETHER_ERR_NOT_FOUND))) {
		relay_drop_malformed(p, why);
		return;
	}
	if (r == 0 && p->console_pending && m->type == TETHER_CTRL_AUTH) {
		auth_console(p, &m->body.auth);
		return;
	}
	if (r != 0 || m->type != TETHER_CTRL_HELLO || p->console_pending ||
	    h->version != TETHER_PROTOCOL_VERSION) {
		relay_drop(p, TETHER_ERR_PROTOCOL, EXPECTED_HELLO);
		return;
	}
	if (h->role == TETHER_ROLE_AGENT)
		welcome_agent(p);
	else if (h->token != NULL || h->technician != NULL)
		hello_console(p, h);
	else
		relay_drop(p, TETHER_ERR_PROTOCOL, EXPECTED_HELLO);
}
