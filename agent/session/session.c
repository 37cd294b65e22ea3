/*
 * The agent's relay session (docs/protocol.md, "Agent messages" and
 * "Pairing"): connecting with a pinned fingerprint (or after the customer
 * trusted the one shown), hello and join, the customer's consent, SPAKE2
 * as party B and key confirmation, keepalive, and resuming with back-off
 * when the connection drops.  Channel messages go to agent-chan.c.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <tether/alloc.h>
#include <tether/buf.h>
#include <tether/crypto.h>
#include <tether/err.h>
#include <tether/log.h>

#include "agent.h"


#define CAPS_MAX 512

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

int agent_send(struct agent *a, json_t *msg)
{
	int r;

	if (msg == NULL)
		return TETHER_ERR_NOMEM;
	if (a->link == NULL)
		r = TETHER_ERR_CLOSED;
	else
		r = tether_link_send_json(a->link, msg);
	json_decref(msg);
	return r;
}

int agent_send_hello(struct tether_link *l)
{
	json_t *hello = json_pack("{s:s,s:s,s:i}", "t", "hello", "role",
				  "agent", "version", TETHER_PROTOCOL_VERSION);
	int r =
	    hello != NULL ? tether_link_send_json(l, hello) : TETHER_ERR_NOMEM;

	json_decref(hello);
	return r;
}

json_t *agent_ctrl_parse(struct tether_link *l, const struct tether_frame *f,
			 const char **t)
{
	json_t *msg = json_loadb((const char *)f->payload, f->len,
				 JSON_REJECT_DUPLICATES, NULL);

	*t = json_string_value(json_object_get(msg, "t"));
	if (json_is_object(msg) && *t != NULL)
		return msg;
	json_decref(msg);
	tether_link_close_error(l, TETHER_ERR_PROTOCOL,
				"malformed control message");
	return NULL;
}

static void send_type(struct agent *a, const char *type)
{
	agent_send(a, json_pack("{s:s}", "t", type));
}

static void connect_relay(struct agent *a, bool probe)
{
	a->conn = probe ? AGENT_CONN_PROBE : AGENT_CONN_TLS;
	a->link = tether_link_connect(a->loop, a->lctx, a->host, a->port,
				      a->has_pin ? a->pin : NULL, &link_cbs, a);
	if (a->link == NULL) {
		a->conn = AGENT_CONN_NONE;
		agent_warn("cannot connect to %s:%d: out of memory", a->host,
			   a->port);
		agent_finish(a, 1);
	}
}

static bool closed_by_error_frame(const struct tether_link *l, int reason)
{
	(void)l;
	return reason == TETHER_ERR_REFUSED;
}

/* Fails the session on a message that makes no sense now. */
static void protocol_error(struct agent *a, const char *what)
{
	tether_log_warn("relay sent %s out of turn", what);
	if (a->link != NULL)
		tether_link_close_error(a->link, TETHER_ERR_PROTOCOL,
					"unexpected message");
}

static void on_trust(void *ctx, bool yes)
{
	struct agent *a = ctx;

	a->prompt = NULL;
	if (!yes) {
		agent_warn("relay not trusted");
		agent_finish(a, 1);
		return;
	}
	memcpy(a->pin, a->probe_fp, sizeof(a->pin));
	a->has_pin = true;
	connect_relay(a, false);
}

/* Trust on first use: the probe connection told us the fingerprint. */
static void ask_trust(struct agent *a)
{
	agent_say("relay %s:%d has fingerprint %s", a->host, a->port,
		  a->probe_fp);
	agent_say("check it with your technician before you go on");
	if (agent_prompt_start(a->loop, "Trust this relay? [y/N] ", on_trust, a,
			       &a->prompt) != 0) {
		agent_warn("no terminal to confirm the relay fingerprint; "
			   "pass --fingerprint or --yes");
		agent_finish(a, 1);
	}
}

static void on_open(struct tether_link *l)
{
	struct agent *a = tether_link_data(l);
	char fp[TETHER_TLS_FP_LEN];

	if (tether_link_peer_fingerprint(l, fp) != 0) {
		tether_link_set_close_reason(l, "cannot read the relay "
						"certificate");
		tether_link_close(l, TETHER_ERR_TLS);
		return;
	}
	if (a->conn == AGENT_CONN_PROBE) {
		/* Nothing is said on a relay the customer has not trusted. */
		memcpy(a->probe_fp, fp, sizeof(a->probe_fp));
		tether_link_close(l, TETHER_OK);
		return;
	}
	if (!a->has_pin) {
		agent_say("relay %s:%d has fingerprint %s (accepted: --yes)",
			  a->host, a->port, fp);
		/* Reconnects must reach the same relay. */
		memcpy(a->pin, fp, sizeof(a->pin));
		a->has_pin = true;
	}
	a->conn = AGENT_CONN_HELLO;
	a->last_rx = uv_now(a->loop);
	agent_send_hello(l);
}

static void on_drain(struct tether_link *l)
{
	agent_chan_drain(tether_link_data(l));
}

static void on_retry(uv_timer_t *t)
{
	struct agent *a = t->data;

	if (!a->ended)
		connect_relay(a, false);
}

/* Jittered exponential back-off: base +- 25%, base doubling to 30 s. */
unsigned agent_backoff_next(unsigned *backoff_ms)
{
	unsigned base = *backoff_ms;
	uint32_t jitter = 0;

	if (tether_random_uniform(base / 2 + 1, &jitter) != 0)
		jitter = base / 4;
	*backoff_ms =
	    base >= AGENT_BACKOFF_MAX_MS / 2 ? AGENT_BACKOFF_MAX_MS : base * 2;
	return base - base / 4 + jitter;
}

static void schedule_reconnect(struct agent *a)
{
	unsigned delay = agent_backoff_next(&a->backoff_ms);

	agent_say("relay connection lost, reconnecting in %u.%u s",
		  delay / 1000, delay % 1000 / 100);
	a->conn = AGENT_CONN_NONE;
	uv_timer_start(&a->retry_timer, on_retry, delay, 0);
}

static void on_link_close(struct tether_link *l, int reason)
{
	struct agent *a = tether_link_data(l);
	enum agent_conn conn = a->conn;

	if (a->link == l)
		a->link = NULL;
	if (a->ended)
		return;
	a->conn = AGENT_CONN_NONE;
	/* Channels do not survive their connection. */
	agent_chan_abort_all(a);
	if (conn == AGENT_CONN_PROBE && a->probe_fp[0] != '\0') {
		ask_trust(a);
		return;
	}
	if (a->resume != NULL && conn != AGENT_CONN_PROBE &&
	    reason != TETHER_ERR_FINGERPRINT &&
	    !(conn == AGENT_CONN_RESUME && closed_by_error_frame(l, reason))) {
		schedule_reconnect(a);
		return;
	}
	agent_warn("%s", tether_link_close_reason(l));
	agent_finish(a, 1);
}

static void on_ping_timer(uv_timer_t *t)
{
	struct agent *a = t->data;
	struct tether_link *l = a->link;

	if (l == NULL || !tether_link_is_open(l) || a->conn < AGENT_CONN_HELLO)
		return;
	/*
	 * A relay that stopped answering pings is gone, unless it merely
	 * stopped reading us (back-pressure): then our output is stuck.
	 */
	if (uv_now(a->loop) - a->last_rx > TETHER_IDLE_TIMEOUT_MS &&
	    tether_link_pending(l) == 0) {
		tether_link_set_close_reason(l, "relay stopped answering");
		tether_link_close(l, TETHER_ERR_EXPIRED);
		return;
	}
	send_type(a, "ping");
}

static void on_welcome(struct agent *a)
{
	if (a->conn != AGENT_CONN_HELLO) {
		protocol_error(a, "welcome");
		return;
	}
	tether_link_set_max_payload(a->link, TETHER_FRAME_MAX);
	if (a->resume != NULL) {
		a->conn = AGENT_CONN_RESUME;
		agent_send(a,
			   json_pack("{s:s,s:O,s:s}", "t", "resume", "session",
				     a->session, "token", a->resume));
		return;
	}
	a->conn = AGENT_CONN_READY;
	agent_send(a, json_pack("{s:s,s:s,s:{s:s,s:s,s:s}}", "t", "join",
				"nameplate", a->nameplate, "facts", "hostname",
				a->facts.hostname, "os", a->facts.os, "user",
				a->facts.user));
}

/* AAD = prefix + nameplate + " " + info, as the console computed it. */
static struct tether_buf *pake_aad(const struct agent *a)
{
	size_t plen = strlen(TETHER_PAKE_AAD_PREFIX);
	size_t nlen = strlen(a->nameplate), ilen = strlen(a->info);
	struct tether_buf *b = tether_buf_new(plen + nlen + 1 + ilen);

	if (b == NULL)
		return NULL;
	if (tether_buf_put(b, TETHER_PAKE_AAD_PREFIX, plen) != 0 ||
	    tether_buf_put(b, a->nameplate, nlen) != 0 ||
	    tether_buf_put(b, " ", 1) != 0 ||
	    tether_buf_put(b, a->info, ilen) != 0) {
		tether_buf_free(b);
		return NULL;
	}
	return b;
}

/* The customer said yes: SPAKE2 as party B, then pake {pB, cB}. */
static void consented(struct agent *a)
{
	uint8_t pb[TETHER_SPAKE2_ELEM_LEN], cb[TETHER_SPAKE2_CONF_LEN];
	char pb_hex[2 * sizeof(pb) + 1], cb_hex[2 * sizeof(cb) + 1];
	struct tether_buf *aad = NULL;
	const char *fail = "internal error";
	int r;

	a->pake = tether_spake2_new(TETHER_SPAKE2_B, TETHER_PAKE_ID_A,
				    strlen(TETHER_PAKE_ID_A), TETHER_PAKE_ID_B,
				    strlen(TETHER_PAKE_ID_B), a->w);
	/* The state holds what it needs; w is not needed again. */
	tether_wipe(a->w, sizeof(a->w));
	a->have_w = false;
	if (a->pake == NULL || tether_spake2_start(a->pake, pb) != 0)
		goto fail;
	if ((aad = pake_aad(a)) == NULL)
		goto fail;
	r = tether_spake2_finish(a->pake, a->pake_a, tether_buf_ptr(aad),
				 tether_buf_len(aad), cb);
	if (r != 0) {
		fail = "invalid key exchange message from the relay";
		goto fail;
	}
	if (tether_hex_encode(pb, sizeof(pb), pb_hex, sizeof(pb_hex)) != 0 ||
	    tether_hex_encode(cb, sizeof(cb), cb_hex, sizeof(cb_hex)) != 0)
		goto fail;
	a->phase = AGENT_PH_PAKE;
	agent_send(a, json_pack("{s:s,s:s,s:s}", "t", "pake", "pake_b", pb_hex,
				"conf_b", cb_hex));
	goto out;
fail:
	agent_warn("pairing failed: %s", fail);
	send_type(a, "decline");
	agent_finish(a, 1);
out:
	tether_buf_free(aad);
	tether_wipe(cb, sizeof(cb));
	tether_wipe(cb_hex, sizeof(cb_hex));
}

static void on_consent(void *ctx, bool yes)
{
	struct agent *a = ctx;

	a->prompt = NULL;
	if (a->ended)
		return;
	if (!yes) {
		send_type(a, "decline");
		agent_say("connection declined");
		agent_finish(a, 1);
		return;
	}
	consented(a);
}

/*
 * "exec (run commands as bob), shell (...), other" from the info's
 * capabilities, and the channel kinds they allow into a->caps.  The info
 * is part of the pairing AAD, so the relay cannot widen them.
 */
static void describe_caps(struct agent *a, const json_t *caps, char *out,
			  size_t outlen)
{
	char word[AGENT_NAME_MAX], item[2 * AGENT_NAME_MAX + 32];
	size_t pos = 0, n, i;
	const json_t *v;
	json_t *one = NULL;

	out[0] = '\0';
	if (json_is_string(caps))
		caps = one = json_pack("[O]", caps);
	if (!json_is_array(caps) || json_array_size(caps) == 0) {
		snprintf(out, outlen, "none stated");
		goto out;
	}
	json_array_foreach(caps, i, v)
	{
		unsigned cap = 0;

		if (!json_is_string(v))
			continue;
		agent_clean(json_string_value(v), word, sizeof(word));
		if (strcmp(word, TETHER_KIND_NAME_EXEC) == 0) {
			cap = AGENT_CAP_EXEC;
			snprintf(item, sizeof(item),
				 "exec (run commands as %s)", a->facts.user);
		} else if (strcmp(word, TETHER_KIND_NAME_SHELL) == 0) {
			cap = AGENT_CAP_SHELL;
			snprintf(item, sizeof(item),
				 "shell (interactive terminal as %s)",
				 a->facts.user);
		} else if (strcmp(word, TETHER_KIND_NAME_FILE) == 0) {
			cap = AGENT_CAP_FILE;
			snprintf(item, sizeof(item),
				 "file (copy files to and from this machine "
				 "as %s)",
				 a->facts.user);
		} else if (strcmp(word, TETHER_KIND_NAME_FORWARD) == 0) {
			cap = AGENT_CAP_FORWARD;
			snprintf(item, sizeof(item),
				 "forward (connect to TCP ports on this "
				 "machine or its network)");
		} else if (strcmp(word, TETHER_KIND_NAME_DIAG) == 0) {
			cap = AGENT_CAP_DIAG;
			snprintf(item, sizeof(item),
				 "diag (a report on this machine's health: "
				 "disks, memory, network, processes, recent "
				 "errors; passwords removed)");
		} else {
			snprintf(item, sizeof(item), "%s", word);
		}
		n = strlen(item);
		/* Only what the customer is shown is allowed. */
		if (pos + n + 2 >= outlen)
			break;
		if (pos > 0) {
			memcpy(out + pos, ", ", 2);
			pos += 2;
		}
		memcpy(out + pos, item, n + 1);
		pos += n;
		a->caps |= cap;
	}
out:
	json_decref(one);
}

static void copy_clean(const json_t *obj, const char *key, const char *dflt,
		       char *out, size_t outlen)
{
	const char *s = json_string_value(json_object_get(obj, key));

	agent_clean(s != NULL ? s : dflt, out, outlen);
}

static void on_join_ok(struct agent *a, const json_t *msg)
{
	const char *pake_a = json_string_value(json_object_get(msg, "pake_a"));
	const char *info = json_string_value(json_object_get(msg, "info"));
	json_t *session = json_object_get(msg, "session");
	char caps[CAPS_MAX], policy[CAPS_MAX];
	json_t *ij = NULL;
	int r;

	if (a->phase != AGENT_PH_START || a->conn != AGENT_CONN_READY) {
		protocol_error(a, "join_ok");
		return;
	}
	if (info != NULL)
		ij = json_loads(info, JSON_REJECT_DUPLICATES, NULL);
	if (session == NULL || json_is_null(session) || pake_a == NULL ||
	    !json_is_object(ij) ||
	    tether_hex_decode(pake_a, a->pake_a, sizeof(a->pake_a)) != 0) {
		agent_warn("the relay sent a malformed invitation");
		send_type(a, "decline");
		agent_finish(a, 1);
		goto out;
	}
	a->session = json_incref(session);
	a->info = tether_strdup(info);
	if (a->info == NULL) {
		agent_warn("out of memory");
		agent_finish(a, 1);
		goto out;
	}
	copy_clean(ij, "technician", "someone", a->technician,
		   sizeof(a->technician));
	copy_clean(ij, "ticket", "?", a->ticket, sizeof(a->ticket));
	copy_clean(ij, "title", "", a->title, sizeof(a->title));
	describe_caps(a, json_object_get(ij, "capabilities"), caps,
		      sizeof(caps));
	agent_say("%s wants to connect to this computer for %s \"%s\"",
		  a->technician, a->ticket, a->title);
	agent_say("requested capabilities: %s", caps);
	/* What "file" means here is the customer's to know before yes. */
	if ((a->caps & AGENT_CAP_FILE) != 0) {
		agent_file_describe_policy(a, policy, sizeof(policy));
		agent_say("file transfers may %s", policy);
	}
	if ((a->caps & AGENT_CAP_FORWARD) != 0) {
		agent_forward_describe_policy(a, policy, sizeof(policy));
		agent_say("forwarding may connect to %s; %s", policy,
			  isatty(STDIN_FILENO)
			      ? "you will be asked about any other target"
			      : "any other target is refused");
	}
	a->phase = AGENT_PH_CONSENT;
	if (a->yes) {
		agent_say("allowed (--yes)");
		consented(a);
		goto out;
	}
	r = agent_prompt_start(a->loop, "Allow? [y/N] ", on_consent, a,
			       &a->prompt);
	if (r != 0) {
		send_type(a, "decline");
		agent_warn("no terminal to ask for consent; "
			   "pass --yes to pre-approve");
		agent_finish(a, 1);
	}
out:
	json_decref(ij);
}

static void on_pake_ok(struct agent *a, const json_t *msg)
{
	const char *token = json_string_value(json_object_get(msg, "resume"));

	if (a->phase != AGENT_PH_PAKE || token == NULL || token[0] == '\0') {
		protocol_error(a, "pake_ok");
		return;
	}
	a->resume = tether_strdup(token);
	if (a->resume == NULL) {
		agent_warn("out of memory");
		agent_finish(a, 1);
		return;
	}
	a->phase = AGENT_PH_CONFIRM;
}

static void on_confirm(struct agent *a, const json_t *msg)
{
	const char *hex = json_string_value(json_object_get(msg, "conf"));
	uint8_t conf[TETHER_SPAKE2_CONF_LEN];
	bool ok;

	/* pake_ok comes first, but nothing is lost by taking it early. */
	if ((a->phase != AGENT_PH_CONFIRM && a->phase != AGENT_PH_PAKE) ||
	    a->pake == NULL) {
		protocol_error(a, "confirm");
		return;
	}
	ok = hex != NULL && tether_hex_decode(hex, conf, sizeof(conf)) == 0 &&
	     tether_spake2_verify(a->pake, conf) == 0 &&
	     tether_spake2_get_ke(a->pake, a->ke) == 0;
	tether_spake2_free(a->pake);
	a->pake = NULL;
	agent_send(a, json_pack("{s:s,s:b}", "t", "confirmed", "ok", ok));
	if (!ok) {
		agent_warn("session ended: wrong code");
		agent_finish(a, 1);
		return;
	}
	a->have_ke = true;
	a->phase = AGENT_PH_PAIRED;
	agent_say("paired with %s for %s \"%s\"", a->technician, a->ticket,
		  a->title);
}

static void on_resume_ok(struct agent *a)
{
	if (a->conn != AGENT_CONN_RESUME) {
		protocol_error(a, "resume_ok");
		return;
	}
	a->conn = AGENT_CONN_READY;
	a->backoff_ms = AGENT_BACKOFF_MIN_MS;
	agent_say("reconnected");
}

static void on_ended(struct agent *a, const json_t *msg)
{
	const char *s = json_string_value(json_object_get(msg, "reason"));
	char reason[AGENT_TITLE_MAX];

	agent_clean(s != NULL ? s : "no reason given", reason, sizeof(reason));
	/* Closing the ticket is the normal end; anything else is not. */
	if (strcmp(reason, "ticket closed") == 0) {
		agent_say("session ended: %s", reason);
		agent_finish(a, 0);
	} else {
		agent_warn("session ended: %s", reason);
		agent_finish(a, 1);
	}
}

static void handle_ctrl(struct agent *a, const char *t, const json_t *msg)
{
	bool ready = a->conn == AGENT_CONN_READY;

	if (strcmp(t, "ping") == 0)
		send_type(a, "pong");
	else if (strcmp(t, "pong") == 0)
		return;
	else if (strcmp(t, "welcome") == 0)
		on_welcome(a);
	else if (strcmp(t, "join_ok") == 0)
		on_join_ok(a, msg);
	else if (strcmp(t, "pake_ok") == 0)
		on_pake_ok(a, msg);
	else if (strcmp(t, "confirm") == 0)
		on_confirm(a, msg);
	else if (strcmp(t, "resume_ok") == 0)
		on_resume_ok(a);
	else if (strcmp(t, "ended") == 0)
		on_ended(a, msg);
	else if (strcmp(t, "open") == 0 && ready)
		agent_chan_open(a, msg);
	else if (strcmp(t, "close") == 0 && ready)
		agent_chan_close(a, msg);
	else
		tether_log_debug("control message \"%s\" ignored", t);
}

static void on_frame(struct tether_link *l, const struct tether_frame *f)
{
	struct agent *a = tether_link_data(l);
	json_t *msg = NULL;
	const char *t;

	a->last_rx = uv_now(a->loop);
	if (a->ended || a->conn < AGENT_CONN_HELLO)
		return;
	if (f->type == TETHER_FRAME_DATA) {
		if (a->conn == AGENT_CONN_READY && a->phase == AGENT_PH_PAIRED)
			agent_chan_frame(a, f);
		return;
	}
	if (f->type != TETHER_FRAME_CTRL)
		return;
	msg = agent_ctrl_parse(l, f, &t);
	if (msg != NULL)
		handle_ctrl(a, t, msg);
	json_decref(msg);
}

void agent_leave(struct agent *a)
{
	bool talking = a->link != NULL && (a->conn == AGENT_CONN_READY ||
					   a->conn == AGENT_CONN_RESUME);

	if (a->ended)
		return;
	if (talking && a->phase == AGENT_PH_CONSENT)
		send_type(a, "decline");
	else if (talking && a->phase >= AGENT_PH_PAKE)
		send_type(a, "leave");
	agent_say("session ended by the customer");
	agent_finish(a, 0);
}

static void on_signal(uv_signal_t *h, int signo)
{
	(void)signo;
	agent_leave(h->data);
}

int agent_session_start(struct agent *a)
{
	agent_facts_gather(&a->facts);
	a->backoff_ms = AGENT_BACKOFF_MIN_MS;
	uv_timer_init(a->loop, &a->ping_timer);
	uv_timer_init(a->loop, &a->retry_timer);
	uv_signal_init(a->loop, &a->sigint);
	uv_signal_init(a->loop, &a->sigterm);
	uv_signal_init(a->loop, &a->sighup);
	a->ping_timer.data = a->retry_timer.data = a;
	a->sigint.data = a->sigterm.data = a->sighup.data = a;
	uv_signal_start(&a->sigint, on_signal, SIGINT);
	uv_signal_start(&a->sigterm, on_signal, SIGTERM);
	/* The customer's terminal closed: the same, and shells go too. */
	uv_signal_start(&a->sighup, on_signal, SIGHUP);
	uv_timer_start(&a->ping_timer, on_ping_timer, TETHER_PING_INTERVAL_MS,
		       TETHER_PING_INTERVAL_MS);
	/*
	 * Without a pin and without --yes, the first connection only
	 * fetches the fingerprint for the customer to check.
	 */
	connect_relay(a, !a->has_pin && !a->yes);
	return 0;
}

void agent_finish(struct agent *a, int code)
{
	if (a->ended)
		return;
	a->ended = true;
	a->exit_code = code;
	agent_prompt_cancel(a->prompt);
	a->prompt = NULL;
	uv_close((uv_handle_t *)&a->ping_timer, NULL);
	uv_close((uv_handle_t *)&a->retry_timer, NULL);
	uv_close((uv_handle_t *)&a->sigint, NULL);
	uv_close((uv_handle_t *)&a->sigterm, NULL);
	uv_close((uv_handle_t *)&a->sighup, NULL);
	agent_chan_abort_all(a);
	agent_term_stop();
	/* Lets a last leave, decline or confirmed go out first. */
	if (a->link != NULL)
		tether_link_close(a->link, TETHER_OK);
}

void agent_session_free(struct agent *a)
{
	tether_wipe(a->w, sizeof(a->w));
	tether_wipe(a->ke, sizeof(a->ke));
	a->have_w = a->have_ke = false;
	tether_spake2_free(a->pake);
	a->pake = NULL;
	if (a->resume != NULL)
		tether_freezero(a->resume, strlen(a->resume));
	a->resume = NULL;
	tether_free(a->info);
	a->info = NULL;
	json_decref(a->session);
	a->session = NULL;
}
