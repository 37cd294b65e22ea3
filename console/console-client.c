/*
 * The console's connection to the relay: one struct tether_client (the
 * pin, hello and welcome, keepalive pings, request ids, every control
 * message decoded through ctrl) on a libuv loop of the command's own.
 * Commands are short-lived: each connects once, waits for the answers it
 * needs (console_client_call()), and closes.  Traffic that answers nothing
 * it waits for (channel data, the relay's "close" of a channel, answers to
 * requests sent without waiting) goes to the hooks the command installs.
 * Here too: the words for a connection that failed or went away, and for
 * an "err" answer, from its code.
 */
#include <string.h>

#include <tether/err.h>
#include <tether/link.h>

#include "console.h"

static struct console_client *owner(struct tether_client *tc)
{
	return tether_client_arg(tc);
}

static void copy(char *out, size_t len, const char *s)
{
	if (s == NULL || snprintf(out, len, "%s", s) >= (int)len)
		out[0] = '\0';
}

static void on_trust(struct tether_client *tc, const char *fp)
{
	struct console_client *c = owner(tc);

	if (c->trust == NULL || c->trust(c->relay, fp) != 0) {
		c->untrusted = true;
		return;
	}
	if (tether_client_trust(tc) != 0) {
		console_error("cannot connect to %s: out of memory", c->relay);
		c->untrusted = true;
	}
}

/* w is the auth_ok that followed the welcome: the key was accepted. */
static void on_welcome(struct tether_client *tc,
		       const struct tether_ctrl_msg *w)
{
	struct console_client *c = owner(tc);
	const struct tether_ctrl_auth_ok *b = &w->body.auth_ok;

	copy(c->technician, sizeof(c->technician), b->technician);
	copy(c->role, sizeof(c->role),
	     b->has_role ? tether_ctrl_name_of(tech_role, b->role) : NULL);
	c->welcomed = true;
}

static void on_ctrl(struct tether_client *tc, struct tether_ctrl_msg *m)
{
	struct console_client *c = owner(tc);

	if (c->hooks.on_ctrl != NULL)
		c->hooks.on_ctrl(c->hooks.arg, m);
}

static void on_data(struct tether_client *tc, const struct tether_frame *f)
{
	struct console_client *c = owner(tc);

	if (c->hooks.on_data != NULL)
		c->hooks.on_data(c->hooks.arg, f);
	else
		tether_link_close_error(tether_client_link(tc),
					TETHER_ERR_PROTOCOL,
					"unexpected data frame");
}

static void on_drain(struct tether_client *tc)
{
	struct console_client *c = owner(tc);

	if (c->hooks.on_drain != NULL)
		c->hooks.on_drain(c->hooks.arg);
}

/* Nobody retries: a console command reports the loss and ends. */
static void on_down(struct tether_client *tc, int err, const char *why,
		    enum tether_client_phase phase)
{
	struct console_client *c = owner(tc);

	copy(c->down_why, sizeof(c->down_why), why);
	c->down_err = err;
	c->down_phase = phase;
	c->down = true;
}

static const struct tether_client_cbs client_cbs = {
    .on_trust = on_trust,
    .on_welcome = on_welcome,
    .on_ctrl = on_ctrl,
    .on_data = on_data,
    .on_drain = on_drain,
    .on_down = on_down,
};

/*
 * The certificate is not the one it had to be.  Given on the command line,
 * the --fingerprint is at fault (nothing was pinned); pinned, the relay
 * changed or someone is in between, and only a person who checked the new
 * fingerprint with the relay's operator may pin it instead, as ssh leaves
 * a changed host key to the person.
 */
static void report_mismatch(const struct console_client *c)
{
	const char *seen =
	    c->tc != NULL ? tether_client_fingerprint(c->tc) : "";

	if (seen[0] == '\0' || c->pin[0] == '\0')
		/* The link's own "relay certificate fingerprint ...". */
		console_error("%s", c->down_why);
	else if (c->pin_given)
		console_error("relay certificate fingerprint %s does not match "
			      "the given --fingerprint %s (check it with the "
			      "relay's operator; nothing was sent)",
			      seen, c->pin);
	else
		console_error("relay certificate fingerprint %s does not match "
			      "the pinned %s (relay replaced or connection "
			      "intercepted; nothing was sent; if its "
			      "certificate was changed, check %s out of band, "
			      "then run: tether login %s "
			      "--fingerprint %s)",
			      seen, c->pin, seen, c->relay, seen);
}

/* Explains why the connection ended before we were let in. */
static void report_connect_failure(const struct console_client *c)
{
	static const char prefix[] = "cannot connect to ";
	const char *reason = c->down_why;
	size_t pl = sizeof(prefix) - 1, rl = strlen(c->relay);

	if (c->down_err == TETHER_ERR_FINGERPRINT) {
		report_mismatch(c);
		return;
	}
	if (c->down_phase != TETHER_CLIENT_CONNECTING) {
		console_error("relay refused: %s", reason);
		return;
	}
	/* The link's own words may repeat "cannot connect to HOST:PORT: ". */
	if (strncmp(reason, prefix, pl) == 0 &&
	    strncmp(reason + pl, c->relay, rl) == 0 &&
	    strncmp(reason + pl + rl, ": ", 2) == 0)
		reason += pl + rl + 2;
	console_error("cannot connect to %s: %s", c->relay, reason);
}

/* Connects on c's loop, which the caller has made ready. */
static int connect_client(struct console_client *c, const char *host, int port,
			  const char *pin, const struct tether_sign_key *key,
			  const char *technician, const char *token)
{
	const struct tether_client_opts opts = {
	    .host = host,
	    .port = port,
	    .pin = pin,
	    .role = TETHER_ROLE_CONSOLE,
	    .key = key,
	    .technician = technician,
	    .token = token,
	};

	copy(c->pin, sizeof(c->pin), pin != NULL ? pin : "");
	c->tc = tether_client_new(&c->loop, &opts, &client_cbs, c);
	if (c->tc == NULL) {
		console_error("cannot set up TLS");
		return -1;
	}
	if (tether_client_start(c->tc) != 0) {
		console_error("cannot connect to %s: out of memory", c->relay);
		return -1;
	}
	/*
	 * Not tether_client_wait_ready(): a relay nobody trusted leaves the
	 * client idle, with nothing for the loop to wait for.
	 */
	while (!c->welcomed && !c->down && !c->untrusted)
		uv_run(&c->loop, UV_RUN_ONCE);
	if (c->untrusted)
		return -1;
	if (c->down) {
		report_connect_failure(c);
		return -1;
	}
	return 0;
}

static int start_loop(struct console_client *c, const char *relay)
{
	copy(c->relay, sizeof(c->relay), relay);
	if (uv_loop_init(&c->loop) != 0) {
		console_error("cannot start the event loop");
		return -1;
	}
	c->loop_ready = true;
	return 0;
}

int console_client_connect(struct console_client *c, const char *relay,
			   const char *host, int port, const char *pin,
			   bool pin_given, const struct tether_sign_key *key,
			   const char *technician, const char *token,
			   int (*trust)(const char *relay, const char *fp))
{
	memset(c, 0, sizeof(*c));
	c->trust = trust;
	c->pin_given = pin_given;
	if (start_loop(c, relay) != 0)
		return -1;
	return connect_client(c, host, port, pin, key, technician, token);
}

int console_client_open(struct console_client *c)
{
	memset(c, 0, sizeof(*c));
	if (console_config_load(&c->cfg) != 0 ||
	    start_loop(c, c->cfg.relay) != 0)
		return -1;
	return connect_client(c, c->cfg.host, c->cfg.port, c->cfg.fingerprint,
			      c->cfg.key, c->cfg.technician, NULL);
}

void console_client_close(struct console_client *c)
{
	if (c->loop_ready) {
		/* Frees the client once its handles have closed. */
		tether_client_close(c->tc);
		c->tc = NULL;
		uv_run(&c->loop, UV_RUN_DEFAULT);
		if (uv_loop_close(&c->loop) != 0)
			console_error("internal error: handles left open at "
				      "exit");
		c->loop_ready = false;
	}
	console_config_clear(&c->cfg);
}

void console_client_report_lost(const struct console_client *c)
{
	console_error("connection lost: %s", c->down ? c->down_why : "closed");
}

/* Why a request got no answer, once. */
static void report_call_failure(struct console_client *c, int err)
{
	/* A malformed answer: TETHER_ERR_PROTOCOL, or FORMAT for a member. */
	if (err == TETHER_ERR_PROTOCOL || err == TETHER_ERR_FORMAT) {
		/* The client closes the link: its reason has the details. */
		while (!c->down && console_client_link(c) != NULL)
			uv_run(&c->loop, UV_RUN_ONCE);
		console_error("the relay sent a %s",
			      c->down ? c->down_why : "malformed answer");
	} else if (c->down || err == TETHER_ERR_CLOSED) {
		console_client_report_lost(c);
	} else if (err == TETHER_ERR_NOMEM) {
		console_error("out of memory");
	} else {
		console_error("cannot send the request: %s",
			      tether_strerror(err));
	}
}

int console_client_call(struct console_client *c, enum tether_ctrl_type t,
			const void *body, struct tether_ctrl_msg *answer)
{
	int r = tether_client_call(c->tc, t, body, answer);

	if (r != 0) {
		report_call_failure(c, r);
		return -1;
	}
	return answer->type == TETHER_CTRL_ERR ? CONSOLE_EREMOTE : 0;
}

int64_t console_client_request(struct console_client *c,
			       enum tether_ctrl_type t, const void *body)
{
	int64_t id = 0;

	if (tether_client_request(c->tc, t, body, &id) != 0)
		return 0;
	return id;
}

void console_client_report_err(const struct tether_ctrl_err *e,
			       const char *ticket)
{
	const char *msg = e->message != NULL ? e->message : "";

	if (ticket != NULL && e->code == TETHER_CTRL_E_NOT_FOUND) {
		console_error("no such ticket %s", ticket);
	} else if (ticket != NULL && e->code == TETHER_CTRL_E_NO_AGENT) {
		/* One code for both: only the relay's words tell them apart. */
		if (strstr(msg, "not connected") != NULL)
			console_error("the agent for %s is not connected",
				      ticket);
		else
			console_error("no agent has joined %s yet", ticket);
	} else if (e->code == TETHER_CTRL_E_FORBIDDEN) {
		/* The relay words who may not do what, and why. */
		if (msg[0] != '\0')
			console_error_text("", msg);
		else
			console_error("your role does not allow this");
	} else if (e->code == TETHER_CTRL_E_PAKE_FAILED && msg[0] == '\0') {
		console_error("key confirmation failed: wrong code?");
	} else if (msg[0] != '\0') {
		console_error_text("", msg);
	} else {
		console_error("the relay refused the request: %s",
			      tether_ctrl_code_name(e->code));
	}
}

struct tether_link *console_client_link(const struct console_client *c)
{
	return c->tc != NULL ? tether_client_link(c->tc) : NULL;
}

void console_client_run_once(struct console_client *c)
{
	uv_run(&c->loop, UV_RUN_ONCE);
}

int console_call(enum tether_ctrl_type t, const void *body, const char *ticket,
		 struct tether_ctrl_msg *answer)
{
	struct console_client c;
	int r = -1;

	memset(answer, 0, sizeof(*answer));
	answer->type = TETHER_CTRL_TYPES;
	if (console_client_open(&c) == 0) {
		r = console_client_call(&c, t, body, answer);
		if (r == CONSOLE_EREMOTE) {
			console_client_report_err(&answer->body.err, ticket);
			tether_ctrl_msg_free(answer);
			r = -1;
		}
	}
	console_client_close(&c);
	return r;
}
