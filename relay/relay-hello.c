/*
 * A new peer's opening (docs/protocol.md, "Opening"): hello says who it
 * is; a console proves it with its technician token, an agent gets the
 * challenge an enrolled one signs.  Until then nothing but hello, ping and
 * pong is accepted.
 */
#include <string.h>

#include <tether/crypto.h>
#include <tether/err.h>
#include <tether/log.h>
#include <tether/num.h>
#include <tether/proto.h>

#include "relay.h"

#define EXPECTED_HELLO "expected hello with protocol version 1"

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

static void welcome_console(struct relay_peer *p, const char *token)
{
	struct relay *r = p->relay;
	struct tether_ctrl_welcome w = {.version = TETHER_PROTOCOL_VERSION};
	char actor[RELAY_ACTOR_MAX];

	/* Token guessing costs a slot in the same limiter as code guessing,
	 * and a throttled source writes no audit rows. */
	if (relay_rate_limited(r, p->addr)) {
		r->stats.auth_failures++;
		relay_drop(p, TETHER_ERR_LIMIT,
			   "too many attempts, wait a minute");
		return;
	}
	if (token_tech(r, token, &p->tech) != 0) {
		r->stats.auth_failures++;
		relay_rate_fail(r, p->addr);
		relay_audit(r, relay_actor(p, actor, sizeof(actor)), 0, 0,
			    "auth_failed", json_pack("{s:s}", "addr", p->addr));
		relay_drop(p, TETHER_ERR_AUTH, "invalid token");
		return;
	}
	p->role = RELAY_PEER_CONSOLE;
	tether_link_set_max_payload(p->link, TETHER_FRAME_MAX);
	w.technician = p->tech.name;
	w.has_role = true;
	w.role = p->tech.role;
	relay_send(p, TETHER_CTRL_WELCOME, &w);
}

static void welcome_agent(struct relay_peer *p)
{
	struct tether_ctrl_welcome w = {.version = TETHER_PROTOCOL_VERSION,
					.has_challenge = true};

	/* Fresh per connection: a signature cannot be replayed. */
	if (tether_random(p->challenge, sizeof(p->challenge)) != 0) {
		relay_drop(p, TETHER_ERR_INTERNAL, "internal error");
		return;
	}
	p->role = RELAY_PEER_AGENT;
	tether_link_set_max_payload(p->link, TETHER_FRAME_MAX);
	memcpy(w.challenge, p->challenge, sizeof(w.challenge));
	relay_send(p, TETHER_CTRL_WELCOME, &w);
}

void relay_hello_message(struct relay_peer *p, int r,
			 const struct tether_ctrl_msg *m, const char *why)
{
	const struct tether_ctrl_hello *h = &m->body.hello;

	/* A hello with bad members, or what is no message at all. */
	if (r != 0 &&
	    (m->type == TETHER_CTRL_HELLO ||
	     (m->type == TETHER_CTRL_TYPES && r != TETHER_ERR_NOT_FOUND))) {
		relay_drop_malformed(p, why);
		return;
	}
	if (r != 0 || m->type != TETHER_CTRL_HELLO ||
	    h->version != TETHER_PROTOCOL_VERSION) {
		relay_drop(p, TETHER_ERR_PROTOCOL, EXPECTED_HELLO);
		return;
	}
	if (h->role == TETHER_ROLE_AGENT)
		welcome_agent(p);
	else if (h->token != NULL)
		welcome_console(p, h->token);
	else
		relay_drop(p, TETHER_ERR_PROTOCOL, EXPECTED_HELLO);
}
