/*
 * The relay client (tether/client.h): one state machine for every program
 * that dials the relay.  A connection goes CONNECTING -> OPEN (TLS up, pin
 * checked, hello sent) -> READY (welcomed), by way of AUTH (the challenge
 * signed, auth_ok awaited) for a client with a key; a probe connection
 * stops at OPEN and hands the fingerprint to on_trust.  Whatever ends a
 * connection ends up in on_link_close, which tells the owner once through
 * on_down.
 */
#include <stdio.h>
#include <string.h>

#include <tether/alloc.h>
#include <tether/client.h>
#include <tether/crypto.h>
#include <tether/err.h>
#include <tether/id.h>
#include <tether/link.h>
#include <tether/log.h>
#include <tether/proto.h>
#include <tether/sign.h>

struct tether_client {
	uv_loop_t *loop;
	struct tether_client_opts o;
	struct tether_client_cbs cbs;
	void *arg;
	struct tether_tls_ctx *tls;
	struct tether_link_ctx *lctx;
	struct tether_link *link;
	uv_timer_t ping;
	uv_timer_t retry;
	int handles; /* open uv handles; freed when 0 after close */
	enum tether_client_phase phase;
	bool probing;
	bool probed; /* the probe saw a certificate */
	bool closing;
	char pin[TETHER_TLS_FP_LEN]; /* "" until known */
	char seen[TETHER_TLS_FP_LEN];
	/* Who the relay let in: a registered key signs in as this again. */
	char technician[TETHER_ID_NAME_MAX + 1];
	uint64_t last_rx; /* uv_now() of the last frame */
	unsigned backoff_ms;
	int64_t next_id;
	/* tether_client_call(): the answer awaited, and where it goes. */
	int64_t want_id;
	struct tether_ctrl_msg *answer;
	bool answered;
	/* tether_client_wait_ready() / _call(): the last connection's end. */
	bool down;
	int down_err;
	/* Inside one of them: uv_run() is not re-entrant. */
	bool blocking;
};

static void on_open(struct tether_link *l);
static void on_frame(struct tether_link *l, const struct tether_frame *f);
static void on_drain(struct tether_link *l);
static void on_link_close(struct tether_link *l, int reason);

static const struct tether_link_cbs link_cbs = {
    .on_open = on_open,
    .on_frame = on_frame,
    .on_drain = on_drain,
    .on_close = on_link_close,
};

unsigned tether_client_backoff_next(unsigned *base_ms)
{
	unsigned base = *base_ms;
	uint32_t jitter = 0;

	if (base < TETHER_CLIENT_BACKOFF_MIN_MS)
		base = TETHER_CLIENT_BACKOFF_MIN_MS;
	if (tether_random_uniform(base / 2 + 1, &jitter) != 0)
		jitter = base / 4;
	*base_ms = base >= TETHER_CLIENT_BACKOFF_MAX_MS / 2
		       ? TETHER_CLIENT_BACKOFF_MAX_MS
		       : base * 2;
	return base - base / 4 + jitter;
}

/* Frees the client once nothing of it is left open. */
static void maybe_free(struct tether_client *c)
{
	if (c->closing && c->handles == 0 && c->link == NULL) {
		tether_link_ctx_free(c->lctx);
		tether_tls_ctx_free(c->tls);
		tether_free(c);
	}
}

static void on_handle_closed(uv_handle_t *h)
{
	struct tether_client *c = h->data;

	c->handles--;
	maybe_free(c);
}

struct tether_client *tether_client_new(uv_loop_t *loop,
					const struct tether_client_opts *opts,
					const struct tether_client_cbs *cbs,
					void *arg)
{
	struct tether_client *c = tether_calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->tls = tether_tls_ctx_new_client();
	c->lctx = c->tls != NULL ? tether_link_ctx_new(c->tls) : NULL;
	if (c->lctx == NULL) {
		tether_tls_ctx_free(c->tls);
		tether_free(c);
		return NULL;
	}
	c->loop = loop;
	c->o = *opts;
	c->cbs = *cbs;
	c->arg = arg;
	c->backoff_ms = TETHER_CLIENT_BACKOFF_MIN_MS;
	if (opts->pin != NULL)
		snprintf(c->pin, sizeof(c->pin), "%s", opts->pin);
	uv_timer_init(loop, &c->ping);
	uv_timer_init(loop, &c->retry);
	c->ping.data = c->retry.data = c;
	c->handles = 2;
	return c;
}

static int connect_link(struct tether_client *c)
{
	c->phase = TETHER_CLIENT_CONNECTING;
	c->probing = c->pin[0] == '\0' && !c->o.accept_any && !c->o.no_hello;
	c->probed = false;
	c->link = tether_link_connect(c->loop, c->lctx, c->o.host, c->o.port,
				      c->pin[0] != '\0' ? c->pin : NULL,
				      &link_cbs, c);
	return c->link != NULL ? TETHER_OK : TETHER_ERR_NOMEM;
}

int tether_client_start(struct tether_client *c)
{
	return connect_link(c);
}

int tether_client_trust(struct tether_client *c)
{
	if (c->closing || c->link != NULL || c->seen[0] == '\0')
		return TETHER_ERR_STATE;
	memcpy(c->pin, c->seen, sizeof(c->pin));
	return connect_link(c);
}

static void on_retry(uv_timer_t *t)
{
	struct tether_client *c = t->data;
	int r;

	if (c->closing || c->link != NULL)
		return;
	r = connect_link(c);
	if (r != 0 && c->cbs.on_down != NULL) {
		c->down = true;
		c->down_err = r;
		c->cbs.on_down(c, r, tether_strerror(r), c->phase);
	}
}

unsigned tether_client_retry(struct tether_client *c)
{
	unsigned delay = tether_client_backoff_next(&c->backoff_ms);

	if (!c->closing)
		uv_timer_start(&c->retry, on_retry, delay, 0);
	return delay;
}

void tether_client_backoff_reset(struct tether_client *c)
{
	c->backoff_ms = TETHER_CLIENT_BACKOFF_MIN_MS;
}

void tether_client_close(struct tether_client *c)
{
	if (c == NULL || c->closing)
		return;
	c->closing = true;
	uv_timer_stop(&c->ping);
	uv_timer_stop(&c->retry);
	uv_close((uv_handle_t *)&c->ping, on_handle_closed);
	uv_close((uv_handle_t *)&c->retry, on_handle_closed);
	/* Lets a last leave, decline or confirmed go out first. */
	if (c->link != NULL)
		tether_link_close(c->link, TETHER_OK);
}

static int send_text(struct tether_client *c, char *text, size_t len)
{
	int r;

	r = c->link != NULL
		? tether_link_send(c->link, TETHER_FRAME_CTRL, 0, text, len)
		: TETHER_ERR_CLOSED;
	tether_freezero(text, len);
	return r;
}

int tether_client_send(struct tether_client *c, enum tether_ctrl_type t,
		       const void *body)
{
	size_t len;
	char *text;
	int r;

	if (c->link == NULL || c->closing)
		return TETHER_ERR_CLOSED;
	r = tether_ctrl_encode(t, 0, body, &text, &len);
	return r != 0 ? r : send_text(c, text, len);
}

int tether_client_request(struct tether_client *c, enum tether_ctrl_type t,
			  const void *body, int64_t *id)
{
	int64_t n = c->next_id + 1;
	size_t len;
	char *text;
	int r;

	if (id != NULL)
		*id = 0;
	if (c->link == NULL || c->closing)
		return TETHER_ERR_CLOSED;
	r = tether_ctrl_encode(t, n, body, &text, &len);
	if (r == 0)
		r = send_text(c, text, len);
	if (r != 0)
		return r;
	c->next_id = n;
	if (id != NULL)
		*id = n;
	return TETHER_OK;
}

static void on_ping_timer(uv_timer_t *t)
{
	struct tether_client *c = t->data;
	struct tether_link *l = c->link;

	if (l == NULL || !tether_link_is_open(l))
		return;
	/*
	 * A relay that stopped answering pings is gone, unless it merely
	 * stopped reading us (back-pressure): then our output is stuck.
	 */
	if (uv_now(c->loop) - c->last_rx > TETHER_IDLE_TIMEOUT_MS &&
	    tether_link_pending(l) == 0) {
		tether_link_set_close_reason(l, "relay stopped answering");
		tether_link_close(l, TETHER_ERR_EXPIRED);
		return;
	}
	tether_client_send(c, TETHER_CTRL_PING, NULL);
}

static void on_open(struct tether_link *l)
{
	struct tether_client *c = tether_link_data(l);
	struct tether_ctrl_hello hello = {
	    .role = c->o.role,
	    .version = TETHER_PROTOCOL_VERSION,
	    .technician = c->o.token == NULL ? c->o.technician : NULL,
	    .token = c->o.token,
	};
	bool newly = false;
	int r;

	if (tether_link_peer_fingerprint(l, c->seen) != 0) {
		tether_link_set_close_reason(l, "cannot read the relay "
						"certificate");
		tether_link_close(l, TETHER_ERR_TLS);
		return;
	}
	if (c->probing) {
		/* Nothing is said to a relay nobody has trusted yet. */
		c->probed = true;
		tether_link_close(l, TETHER_OK);
		return;
	}
	if (c->pin[0] == '\0' && c->o.accept_any) {
		/* Reconnects must reach the same relay. */
		memcpy(c->pin, c->seen, sizeof(c->pin));
		newly = true;
	}
	c->phase = TETHER_CLIENT_OPEN;
	c->last_rx = uv_now(c->loop);
	if (c->cbs.on_open != NULL)
		c->cbs.on_open(c, c->seen, newly);
	if (c->link != l || c->closing || c->o.no_hello)
		return;
	/* Logging in: the key to register comes with the token. */
	hello.has_pubkey = c->o.token != NULL && c->o.key != NULL &&
			   tether_sign_key_public(c->o.key, hello.pubkey) == 0;
	r = tether_client_send(c, TETHER_CTRL_HELLO, &hello);
	/* The token is not needed again on this connection. */
	c->o.token = NULL;
	if (r != 0) {
		tether_link_close(l, r);
		return;
	}
	uv_timer_start(&c->ping, on_ping_timer, TETHER_PING_INTERVAL_MS,
		       TETHER_PING_INTERVAL_MS);
}

static void protocol_error(struct tether_client *c, const char *why)
{
	char text[TETHER_CTRL_WHY_MAX + 32];

	snprintf(text, sizeof(text), "malformed control message: %s", why);
	tether_log_warn("relay sent a %s", text);
	tether_link_close_error(c->link, TETHER_ERR_PROTOCOL, text);
}

/* What this client signs: an agent's message or a console's. */
static int auth_message(const struct tether_client *c, const uint8_t *challenge,
			uint8_t *msg, size_t cap, size_t *len)
{
	uint8_t pub[TETHER_SIGN_PUB_LEN];

	if (c->o.role == TETHER_ROLE_AGENT)
		return c->o.agent != NULL
			   ? tether_sign_auth_message(challenge, c->o.agent,
						      msg, cap, len)
			   : TETHER_ERR_INVALID;
	if (tether_sign_key_public(c->o.key, pub) != 0)
		return TETHER_ERR_CRYPTO;
	return tether_sign_console_auth_message(challenge, pub, msg, cap, len);
}

/* Signs the welcome's challenge and sends it in auth. */
static void answer_challenge(struct tether_client *c,
			     const struct tether_ctrl_welcome *w)
{
	uint8_t msg[sizeof(TETHER_AGENT_AUTH_CONTEXT) +
		    TETHER_AGENT_CHALLENGE_LEN + TETHER_ID_NAME_MAX +
		    TETHER_SIGN_PUB_LEN];
	struct tether_ctrl_auth a = {
	    .agent = c->o.role == TETHER_ROLE_AGENT ? c->o.agent : NULL};
	size_t len = 0;
	int r;

	/* An older relay's welcome, or one that knows no enrolled agents. */
	if (!w->has_challenge) {
		tether_link_close_error(c->link, TETHER_ERR_PROTOCOL,
					"the relay sent no challenge to sign");
		return;
	}
	if (auth_message(c, w->challenge, msg, sizeof(msg), &len) != 0 ||
	    tether_sign(c->o.key, msg, len, a.sig) != 0) {
		tether_link_set_close_reason(c->link,
					     "cannot sign the challenge");
		tether_link_close(c->link, TETHER_ERR_CRYPTO);
		return;
	}
	c->phase = TETHER_CLIENT_AUTH;
	r = tether_client_send(c, TETHER_CTRL_AUTH, &a);
	if (r != 0)
		tether_link_close(c->link, r);
}

static void welcome(struct tether_client *c, struct tether_ctrl_msg *m)
{
	bool keyed = c->o.key != NULL;

	if (c->phase == TETHER_CLIENT_AUTH) {
		if (m->type != TETHER_CTRL_AUTH_OK) {
			tether_link_close_error(c->link, TETHER_ERR_PROTOCOL,
						"expected auth_ok");
			return;
		}
		if (m->body.auth_ok.technician != NULL) {
			snprintf(c->technician, sizeof(c->technician), "%s",
				 m->body.auth_ok.technician);
			c->o.technician = c->technician;
		}
	} else if (m->type != TETHER_CTRL_WELCOME ||
		   m->body.welcome.version != TETHER_PROTOCOL_VERSION) {
		tether_link_close_error(
		    c->link, TETHER_ERR_PROTOCOL,
		    "expected welcome for "
		    "version " TETHER_PROTOCOL_VERSION_TEXT);
		return;
	} else if (keyed) {
		answer_challenge(c, &m->body.welcome);
		return;
	}
	c->phase = TETHER_CLIENT_READY;
	/* Let in: the relay may send full-size frames now. */
	tether_link_set_max_payload(c->link, TETHER_FRAME_MAX);
	if (c->cbs.on_welcome != NULL)
		c->cbs.on_welcome(c, m);
}

static void handle_ctrl(struct tether_client *c, const struct tether_frame *f)
{
	unsigned dirs = c->o.role == TETHER_ROLE_CONSOLE ? TETHER_CTRL_R2C
							 : TETHER_CTRL_R2A;
	char why[TETHER_CTRL_WHY_MAX];
	struct tether_ctrl_msg m;
	int r;

	r = tether_ctrl_decode(f->payload, f->len, dirs, &m, why, sizeof(why));
	if (r == TETHER_ERR_NOMEM) {
		tether_link_close(c->link, r);
		return;
	}
	if (r == TETHER_ERR_NOT_FOUND && c->phase == TETHER_CLIENT_READY) {
		/* A newer relay's message: not ours to understand. */
		tether_log_debug("%s; ignored", why);
		return;
	}
	if (r != 0) {
		protocol_error(c, why);
		return;
	}
	if (m.type == TETHER_CTRL_PING) {
		tether_client_send(c, TETHER_CTRL_PONG, NULL);
	} else if (m.type == TETHER_CTRL_PONG) {
		/* Only proves liveness. */
	} else if (c->phase != TETHER_CLIENT_READY) {
		welcome(c, &m);
	} else if ((m.type == TETHER_CTRL_OK || m.type == TETHER_CTRL_ERR) &&
		   c->want_id != 0 && m.id == c->want_id && !c->answered) {
		tether_client_take(&m, c->answer);
		c->answered = true;
	} else if (c->cbs.on_ctrl != NULL) {
		c->cbs.on_ctrl(c, &m);
	}
	tether_ctrl_msg_free(&m);
}

static void on_frame(struct tether_link *l, const struct tether_frame *f)
{
	struct tether_client *c = tether_link_data(l);

	c->last_rx = uv_now(c->loop);
	if (c->closing)
		return;
	if (f->type == TETHER_FRAME_CTRL)
		handle_ctrl(c, f);
	else if (c->phase == TETHER_CLIENT_READY && c->cbs.on_data != NULL)
		c->cbs.on_data(c, f);
	else
		tether_link_close_error(l, TETHER_ERR_PROTOCOL,
					"unexpected data frame");
}

static void on_drain(struct tether_link *l)
{
	struct tether_client *c = tether_link_data(l);

	if (!c->closing && c->cbs.on_drain != NULL)
		c->cbs.on_drain(c);
}

static void on_link_close(struct tether_link *l, int reason)
{
	struct tether_client *c = tether_link_data(l);
	enum tether_client_phase phase = c->phase;
	char why[256];

	if (c->link == l)
		c->link = NULL;
	uv_timer_stop(&c->ping);
	if (c->closing) {
		maybe_free(c);
		return;
	}
	/* The link is freed when this returns: keep its words. */
	snprintf(why, sizeof(why), "%s", tether_link_close_reason(l));
	/*
	 * What a refused relay presented, so that the owner can word the
	 * mismatch (which pin, and what to pin instead once checked).
	 */
	if (reason == TETHER_ERR_FINGERPRINT &&
	    tether_link_peer_fingerprint(l, c->seen) != 0)
		c->seen[0] = '\0';
	c->phase = TETHER_CLIENT_CONNECTING;
	if (c->probing && c->probed) {
		if (c->cbs.on_trust != NULL)
			c->cbs.on_trust(c, c->seen);
		return;
	}
	c->down = true;
	c->down_err = reason != 0 ? reason : TETHER_ERR_CLOSED;
	if (c->cbs.on_down != NULL)
		c->cbs.on_down(c, c->down_err, why, phase);
}

int tether_client_wait_ready(struct tether_client *c)
{
	enum tether_client_phase want =
	    c->o.no_hello ? TETHER_CLIENT_OPEN : TETHER_CLIENT_READY;

	if (c->blocking)
		return TETHER_ERR_STATE;
	c->down = false;
	c->blocking = true;
	while (!c->down && !c->closing && c->phase < want)
		uv_run(c->loop, UV_RUN_ONCE);
	c->blocking = false;
	if (c->down)
		return c->down_err;
	return c->closing ? TETHER_ERR_CLOSED : TETHER_OK;
}

int tether_client_call(struct tether_client *c, enum tether_ctrl_type t,
		       const void *body, struct tether_ctrl_msg *answer)
{
	char why[TETHER_CTRL_WHY_MAX];
	int64_t id;
	int r;

	memset(answer, 0, sizeof(*answer));
	answer->type = TETHER_CTRL_TYPES;
	if (c->blocking)
		return TETHER_ERR_STATE;
	c->down = false;
	r = tether_client_request(c, t, body, &id);
	if (r != 0)
		return r;
	c->want_id = id;
	c->answer = answer;
	c->answered = false;
	c->blocking = true;
	while (!c->answered && !c->down && !c->closing)
		uv_run(c->loop, UV_RUN_ONCE);
	c->blocking = false;
	c->want_id = 0;
	c->answer = NULL;
	if (!c->answered)
		return c->down ? c->down_err : TETHER_ERR_CLOSED;
	if (answer->type == TETHER_CTRL_ERR)
		return TETHER_OK;
	r = tether_ctrl_decode_answer(answer, t, why, sizeof(why));
	if (r != 0) {
		tether_ctrl_msg_free(answer);
		if (c->link != NULL)
			protocol_error(c, why);
	}
	return r;
}

void tether_client_take(struct tether_ctrl_msg *m, struct tether_ctrl_msg *out)
{
	*out = *m;
	memset(m, 0, sizeof(*m));
	m->type = TETHER_CTRL_TYPES;
}

struct tether_link *tether_client_link(const struct tether_client *c)
{
	return c->link;
}

bool tether_client_ready(const struct tether_client *c)
{
	return c->link != NULL && c->phase == TETHER_CLIENT_READY;
}

enum tether_client_phase tether_client_phase(const struct tether_client *c)
{
	return c->phase;
}

const char *tether_client_fingerprint(const struct tether_client *c)
{
	return c->seen;
}

void *tether_client_arg(const struct tether_client *c)
{
	return c->arg;
}

uv_loop_t *tether_client_loop(const struct tether_client *c)
{
	return c->loop;
}
