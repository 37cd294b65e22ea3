/*
 * The console's connection to the relay: TLS with the pinned fingerprint,
 * hello/welcome, keepalive pings, and one request helper that sends
 * {"t":..., "id":N} and runs the loop until the answer with that id comes
 * back.  Traffic that answers nothing (channel data, "close" for a channel)
 * goes to the hooks the exec command installs.  Everything runs on the
 * client's own libuv loop; commands are short-lived, so each opens one
 * connection and closes it when done.
 */
#include <string.h>

#include <tether/err.h>
#include <tether/link.h>
#include <tether/proto.h>

#include "console.h"

static int send_json(struct console_client *c, json_t *msg)
{
	int r;

	if (msg == NULL)
		return TETHER_ERR_NOMEM;
	r = c->link != NULL ? tether_link_send_json(c->link, msg)
			    : TETHER_ERR_CLOSED;
	json_decref(msg);
	return r;
}

static void on_ping_timer(uv_timer_t *t)
{
	struct console_client *c = t->data;

	send_json(c, json_pack("{s:s}", "t", "ping"));
}

static void on_open(struct tether_link *l)
{
	struct console_client *c = tether_link_data(l);
	json_t *hello;

	c->opened = true;
	if (tether_link_peer_fingerprint(l, c->fingerprint) != 0)
		c->fingerprint[0] = '\0';
	if (!c->want_hello)
		return;
	hello = json_pack("{s:s, s:s, s:i, s:s}", "t", "hello", "role",
			  "console", "version", TETHER_PROTOCOL_VERSION,
			  "token", c->token);
	if (send_json(c, hello) != 0)
		tether_link_close(l, TETHER_ERR_NOMEM);
}

static void copy_field(char *out, size_t outlen, const json_t *msg,
		       const char *key)
{
	const char *s = console_json_str(msg, key);

	if (snprintf(out, outlen, "%s", s != NULL ? s : "?") >= (int)outlen)
		out[0] = '\0';
}

static void handle_welcome(struct console_client *c, json_t *msg)
{
	json_t *v = json_object_get(msg, "version");

	if (strcmp(console_json_str(msg, "t"), "welcome") != 0 ||
	    json_integer_value(v) != TETHER_PROTOCOL_VERSION) {
		tether_link_close_error(c->link, TETHER_ERR_PROTOCOL,
					"expected welcome for version 1");
		return;
	}
	copy_field(c->technician, sizeof(c->technician), msg, "technician");
	copy_field(c->role, sizeof(c->role), msg, "role");
	c->welcomed = true;
	/* Authenticated now: the relay may send full-size frames. */
	tether_link_set_max_payload(c->link, TETHER_FRAME_MAX);
	uv_timer_start(&c->ping, on_ping_timer, TETHER_PING_INTERVAL_MS,
		       TETHER_PING_INTERVAL_MS);
}

static void handle_ctrl(struct console_client *c, const struct tether_frame *f)
{
	json_t *msg;
	const char *t;

	msg = json_loadb((const char *)f->payload, f->len, 0, NULL);
	t = console_json_str(msg, "t");
	if (!json_is_object(msg) || t == NULL) {
		tether_link_close_error(c->link, TETHER_ERR_PROTOCOL,
					"malformed control message");
		goto out;
	}
	if (!c->welcomed) {
		handle_welcome(c, msg);
	} else if (strcmp(t, "ping") == 0) {
		send_json(c, json_pack("{s:s}", "t", "pong"));
	} else if (strcmp(t, "pong") == 0) {
		/* Only proves liveness; nothing to do. */
	} else if ((strcmp(t, "ok") == 0 || strcmp(t, "err") == 0) &&
		   c->want_id != 0 && c->answer == NULL &&
		   json_integer_value(json_object_get(msg, "id")) ==
			   c->want_id) {
		c->answer = json_incref(msg);
	} else if (c->hooks.on_ctrl != NULL) {
		c->hooks.on_ctrl(c->hooks.arg, msg);
	}
out:
	json_decref(msg);
}

static void on_frame(struct tether_link *l, const struct tether_frame *f)
{
	struct console_client *c = tether_link_data(l);

	if (f->type == TETHER_FRAME_CTRL)
		handle_ctrl(c, f);
	else if (c->welcomed && c->hooks.on_data != NULL)
		c->hooks.on_data(c->hooks.arg, f);
	else
		tether_link_close_error(l, TETHER_ERR_PROTOCOL,
					"unexpected data frame");
}

static void on_drain(struct tether_link *l)
{
	struct console_client *c = tether_link_data(l);

	if (c->hooks.on_drain != NULL)
		c->hooks.on_drain(c->hooks.arg);
}

static void on_close(struct tether_link *l, int reason)
{
	struct console_client *c = tether_link_data(l);

	/* The link is freed when this returns: keep the words now. */
	snprintf(c->close_reason, sizeof(c->close_reason), "%s",
		 tether_link_close_reason(l));
	c->close_err = reason;
	c->closed = true;
	c->link = NULL;
	if (c->ping_ready)
		uv_timer_stop(&c->ping);
}

static const struct tether_link_cbs link_cbs = {
	.on_open = on_open,
	.on_frame = on_frame,
	.on_drain = on_drain,
	.on_close = on_close,
};

/* Explains why the connection ended before we were let in. */
static void report_connect_failure(const struct console_client *c)
{
	const char *reason = c->close_reason;
	size_t rl = strlen(c->relay);

	if (!c->opened && c->close_err == TETHER_ERR_FINGERPRINT) {
		/* Already "relay certificate fingerprint X does not ...". */
		console_error("%s", reason);
		return;
	}
	if (c->opened) {
		console_error("relay refused: %s", reason);
		return;
	}
	/* The link's own words may repeat "cannot connect to HOST:PORT: ". */
	if (strncmp(reason, "cannot connect to ", 18) == 0 &&
	    strncmp(reason + 18, c->relay, rl) == 0 &&
	    strncmp(reason + 18 + rl, ": ", 2) == 0)
		reason += 18 + rl + 2;
	console_error("cannot connect to %s: %s", c->relay, reason);
}

/*
 * Connects to the relay.  With a token, returns once the relay welcomed us;
 * without one (a trust-on-first-use probe), once TLS is up, so the caller
 * can read c->fingerprint.  The caller always ends with
 * console_client_close(), whatever this returned.
 */
int console_client_connect(struct console_client *c, const char *relay,
			   const char *host, int port, const char *pin,
			   const char *token)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->relay, sizeof(c->relay), "%s", relay);
	c->token = token;
	c->want_hello = token != NULL;
	if (uv_loop_init(&c->loop) != 0) {
		console_error("cannot start the event loop");
		return -1;
	}
	c->loop_ready = true;
	uv_timer_init(&c->loop, &c->ping);
	c->ping.data = c;
	c->ping_ready = true;
	c->tls = tether_tls_ctx_new_client();
	c->lctx = c->tls != NULL ? tether_link_ctx_new(c->tls) : NULL;
	if (c->lctx == NULL) {
		console_error("cannot set up TLS");
		return -1;
	}
	c->link = tether_link_connect(&c->loop, c->lctx, host, port, pin,
				      &link_cbs, c);
	if (c->link == NULL) {
		console_error("cannot connect to %s: out of memory", relay);
		return -1;
	}
	while (!c->closed && !(c->want_hello ? c->welcomed : c->opened))
		uv_run(&c->loop, UV_RUN_ONCE);
	c->token = NULL;
	if (c->closed) {
		report_connect_failure(c);
		return -1;
	}
	return 0;
}

/* Connects with what `tether login` stored; cfg stays filled for the caller. */
int console_connect(struct console_client *c, struct console_config *cfg)
{
	if (console_config_load(cfg) != 0) {
		memset(c, 0, sizeof(*c));
		return -1;
	}
	return console_client_connect(c, cfg->relay, cfg->host, cfg->port,
				      cfg->fingerprint, cfg->token);
}

void console_run_once(struct console_client *c)
{
	uv_run(&c->loop, UV_RUN_ONCE);
}

void console_report_lost(const struct console_client *c)
{
	console_error("connection lost: %s",
		      c->closed ? c->close_reason : "closed");
}

/*
 * Sends req (consumed) with a fresh id and waits for its answer.  Returns 0
 * with the "ok" message in *answer, CONSOLE_EREMOTE with the "err" message
 * in *answer (the caller words it, see console_report_answer()), or -1 once
 * the connection is gone (reported).
 */
int console_request(struct console_client *c, json_t *req, json_t **answer)
{
	json_int_t id = ++c->next_id;
	int r;

	*answer = NULL;
	if (req == NULL || json_object_set_new(req, "id", json_integer(id))) {
		json_decref(req);
		console_error("out of memory");
		return -1;
	}
	r = send_json(c, req);
	if (r != 0 && r != TETHER_ERR_CLOSED) {
		console_error("cannot send request: %s", tether_strerror(r));
		return -1;
	}
	c->want_id = id;
	while (c->answer == NULL && !c->closed)
		uv_run(&c->loop, UV_RUN_ONCE);
	c->want_id = 0;
	if (c->answer == NULL) {
		console_report_lost(c);
		return -1;
	}
	*answer = c->answer;
	c->answer = NULL;
	return strcmp(console_json_str(*answer, "t"), "ok") == 0
		       ? 0
		       : CONSOLE_EREMOTE;
}

/*
 * One line for an "err" answer.  The messages the CLI contract names are
 * worded here from the code; for anything else the relay's message is
 * meant for people and shown as it is.
 */
void console_report_answer(const json_t *ans, const char *ticket)
{
	const char *code = console_json_str(ans, "code");
	const char *msg = console_json_str(ans, "message");

	if (code == NULL)
		code = "";
	if (ticket != NULL && strcmp(code, "not_found") == 0) {
		console_error("no such ticket %s", ticket);
	} else if (ticket != NULL && strcmp(code, "no_agent") == 0) {
		if (msg != NULL && strstr(msg, "not connected") != NULL)
			console_error("the agent for %s is not connected",
				      ticket);
		else
			console_error("no agent has joined %s yet", ticket);
	} else if (strcmp(code, "pake_failed") == 0) {
		console_error("key confirmation failed: wrong code?");
	} else if (msg != NULL && msg[0] != '\0') {
		fputs("tether: ", stderr);
		console_print_clean(stderr, msg);
		fputc('\n', stderr);
	} else {
		fputs("tether: the relay refused the request: ", stderr);
		console_print_clean(stderr, code[0] != '\0' ? code : "?");
		fputc('\n', stderr);
	}
}

/* Closes the connection (if still open) and waits for every handle. */
void console_client_close(struct console_client *c)
{
	if (!c->loop_ready)
		return;
	if (c->link != NULL && !c->closed)
		tether_link_close(c->link, 0);
	if (c->ping_ready) {
		uv_timer_stop(&c->ping);
		uv_close((uv_handle_t *)&c->ping, NULL);
		c->ping_ready = false;
	}
	uv_run(&c->loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&c->loop) != 0)
		console_error("internal error: handles left open at exit");
	c->loop_ready = false;
	tether_link_ctx_free(c->lctx);
	c->lctx = NULL;
	tether_tls_ctx_free(c->tls);
	c->tls = NULL;
	json_decref(c->answer);
	c->answer = NULL;
}

/*
 * Connects with the stored login, makes one request (req is consumed) and
 * closes: the whole life of the commands that need a single round trip.
 * 0 with the "ok" answer in *answer, or -1 once reported; ticket, if not
 * NULL, words a not_found answer.
 */
int console_call(json_t *req, const char *ticket, json_t **answer)
{
	struct console_config cfg;
	struct console_client c;
	int r = -1;

	*answer = NULL;
	if (console_connect(&c, &cfg) == 0) {
		r = console_request(&c, req, answer);
		req = NULL;
		if (r == CONSOLE_EREMOTE) {
			console_report_answer(*answer, ticket);
			json_decref(*answer);
			*answer = NULL;
			r = -1;
		}
	}
	json_decref(req);
	console_client_close(&c);
	console_config_clear(&cfg);
	return r;
}
