/*
 * The relay client against a small relay of the test's own on loopback:
 * pinning, the trust-on-first-use probe that says nothing, taking the
 * first certificate and keeping it for reconnects, hello and welcome,
 * the challenge signed with the console's key (with the console's label),
 * requests and their answers, pings, newer messages ignored, malformed
 * ones refused, an ERROR frame from the relay, and the back-off.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <tether/client.h>
#include <tether/ctrl.h>
#include <tether/err.h>
#include <tether/link.h>
#include <tether/proto.h>
#include <tether/sign.h>
#include <tether/tls.h>

enum relay_act {
	ACT_WELCOME,	 /* welcome, answer requests, ping once */
	ACT_DROP_FIRST,	 /* welcome, then drop the first connection */
	ACT_ERROR_FRAME, /* ERROR "go away" to the hello */
	ACT_BAD_WELCOME, /* a welcome with a string version */
	ACT_NEWER_MSG,	 /* welcome, then a message of a newer relay */
};

struct fake {
	uv_loop_t loop;
	uv_tcp_t server;
	uv_timer_t deadline;
	int port;
	enum relay_act act;
	struct tether_link *peer;
	unsigned connections;
	unsigned hellos;
	unsigned pongs;
	char last_hello_token[64];
	uint8_t pubkey[TETHER_SIGN_PUB_LEN]; /* the hello's */
	uint8_t challenge[TETHER_AGENT_CHALLENGE_LEN];
	unsigned signatures_ok; /* auths whose signature verified */
	char error_seen[256];	/* an ERROR frame the client sent */
	bool timed_out;
};

struct owner {
	struct fake *f;
	struct tether_client *c;
	unsigned opens, welcomes, downs, trusts, ctrls;
	bool newly_pinned;
	int down_err;
	char down_why[256];
	enum tether_client_phase down_phase;
	bool retry; /* reconnect after the first down */
	bool done;
	bool nest;     /* on_welcome tries the blocking calls */
	int nested[2]; /* what _call() and _wait_ready() said there */
};

static char tmpdir[64] = "/tmp/tether-client-XXXXXX";
static char cert_path[128], key_path[128], tech_key_path[128];
static struct tether_sign_key *tech_key;
static char cert_fp[TETHER_TLS_FP_LEN];
static struct tether_tls_ctx *stls;
static struct tether_link_ctx *sctx;

static void setup(void)
{
	signal(SIGPIPE, SIG_IGN);
	cr_assert_not_null(mkdtemp(tmpdir));
	snprintf(cert_path, sizeof(cert_path), "%s/cert.pem", tmpdir);
	snprintf(key_path, sizeof(key_path), "%s/key.pem", tmpdir);
	cr_assert_eq(tether_tls_cert_generate(cert_path, key_path, "relay.test",
					      cert_fp),
		     0);
	snprintf(tech_key_path, sizeof(tech_key_path), "%s/tech.key", tmpdir);
	cr_assert_eq(tether_sign_key_generate(tech_key_path, (uint8_t[32]){0}),
		     0);
	cr_assert_eq(tether_sign_key_load(tech_key_path, &tech_key, NULL), 0);
	stls = tether_tls_ctx_new_server(cert_path, key_path);
	cr_assert_not_null(stls);
	sctx = tether_link_ctx_new(stls);
	cr_assert_not_null(sctx);
}

static void teardown(void)
{
	tether_link_ctx_free(sctx);
	tether_tls_ctx_free(stls);
	tether_sign_key_free(tech_key);
	unlink(tech_key_path);
	unlink(cert_path);
	unlink(key_path);
	rmdir(tmpdir);
}

TestSuite(client, .init = setup, .fini = teardown);

/* ---- The relay's side ---- */

static void relay_send(struct fake *f, enum tether_ctrl_type t, const void *b)
{
	size_t len;
	char *text;

	cr_assert_eq(tether_ctrl_encode(t, 0, b, &text, &len), 0);
	tether_link_send(f->peer, TETHER_FRAME_CTRL, 0, text, len);
	free(text);
}

static void relay_frame(struct tether_link *l, const struct tether_frame *f0)
{
	struct fake *f = tether_link_data(l);
	struct tether_ctrl_welcome w = {.version = TETHER_PROTOCOL_VERSION,
					.has_challenge = true};
	struct tether_ctrl_auth_ok let_in = {
	    .technician = "alice", .has_role = true, .role = TETHER_TECH_ADMIN};
	uint8_t signed_msg[128];
	struct tether_ctrl_msg m;
	char why[TETHER_CTRL_WHY_MAX];
	size_t n = 0;

	cr_assert_eq(tether_ctrl_decode(f0->payload, f0->len, TETHER_CTRL_C2R,
					&m, why, sizeof(why)),
		     0, "%s", why);
	switch (m.type) {
	case TETHER_CTRL_HELLO:
		f->hellos++;
		cr_assert_eq(m.body.hello.role, TETHER_ROLE_CONSOLE);
		snprintf(f->last_hello_token, sizeof(f->last_hello_token), "%s",
			 m.body.hello.token ? m.body.hello.token : "");
		/* A token registers the key; a reconnect signs in with it. */
		if (m.body.hello.token != NULL) {
			cr_assert(m.body.hello.has_pubkey);
			memcpy(f->pubkey, m.body.hello.pubkey,
			       sizeof(f->pubkey));
		} else {
			cr_assert_str_eq(m.body.hello.technician, "alice");
		}
		if (f->act == ACT_ERROR_FRAME) {
			tether_link_close_error(l, TETHER_ERR_AUTH, "go away");
			break;
		}
		if (f->act == ACT_BAD_WELCOME) {
			const char *bad =
			    "{\"t\":\"welcome\",\"version\":\"1\"}";

			tether_link_send(l, TETHER_FRAME_CTRL, 0, bad,
					 strlen(bad));
			break;
		}
		memset(f->challenge, f->connections, sizeof(f->challenge));
		memcpy(w.challenge, f->challenge, sizeof(w.challenge));
		relay_send(f, TETHER_CTRL_WELCOME, &w);
		break;
	case TETHER_CTRL_AUTH:
		/* The console's label and key: an agent's would not pass. */
		cr_assert_null(m.body.auth.agent);
		cr_assert_eq(tether_sign_console_auth_message(
				 f->challenge, f->pubkey, signed_msg,
				 sizeof(signed_msg), &n),
			     0);
		cr_assert_eq(tether_sign_verify(f->pubkey, signed_msg, n,
						m.body.auth.sig),
			     0, "the challenge signed with the hello's key");
		f->signatures_ok++;
		relay_send(f, TETHER_CTRL_AUTH_OK, &let_in);
		relay_send(f, TETHER_CTRL_PING, NULL);
		if (f->act == ACT_NEWER_MSG) {
			const char *newer =
			    "{\"t\":\"teleport\",\"to\":\"mars\"}";

			tether_link_send(l, TETHER_FRAME_CTRL, 0, newer,
					 strlen(newer));
		}
		if (f->act == ACT_DROP_FIRST && f->connections == 1)
			tether_link_close(l, TETHER_OK);
		break;
	case TETHER_CTRL_PONG:
		f->pongs++;
		break;
	case TETHER_CTRL_TICKET_LIST: {
		struct tether_ctrl_ticket t = {.id = 7,
					       .title = "printer",
					       .status = TETHER_TICKET_OPEN,
					       .created_at = 1765000000};
		struct tether_ctrl_ticket_list_ok ok = {&t, 1, 0};
		size_t len;
		char *text;

		cr_assert_eq(tether_ctrl_encode_answer(TETHER_CTRL_TICKET_LIST,
						       m.id, &ok, &text, &len),
			     0);
		tether_link_send(l, TETHER_FRAME_CTRL, 0, text, len);
		free(text);
		break;
	}
	case TETHER_CTRL_TICKET_SHOW: {
		size_t len;
		char *text;

		cr_assert_eq(
		    tether_ctrl_encode_err(m.id, TETHER_CTRL_E_NOT_FOUND,
					   "no such ticket T-9", &text, &len),
		    0);
		tether_link_send(l, TETHER_FRAME_CTRL, 0, text, len);
		free(text);
		break;
	}
	default:
		break;
	}
	tether_ctrl_msg_free(&m);
}

static void relay_close(struct tether_link *l, int reason)
{
	struct fake *f = tether_link_data(l);

	if (reason == TETHER_ERR_REFUSED)
		snprintf(f->error_seen, sizeof(f->error_seen), "%s",
			 tether_link_close_reason(l));
	if (f->peer == l)
		f->peer = NULL;
}

static const struct tether_link_cbs relay_cbs = {
    .on_frame = relay_frame,
    .on_close = relay_close,
};

static void on_connection(uv_stream_t *server, int status)
{
	struct fake *f = server->data;

	cr_assert_eq(status, 0);
	f->connections++;
	f->peer = tether_link_accept(server, sctx, &relay_cbs, f);
	cr_assert_not_null(f->peer);
}

static void on_deadline(uv_timer_t *t)
{
	struct fake *f = t->data;

	f->timed_out = true;
	uv_stop(&f->loop);
}

static void fake_start(struct fake *f, enum relay_act act)
{
	struct sockaddr_in addr;
	struct sockaddr_storage ss;
	int n = sizeof(ss);

	memset(f, 0, sizeof(*f));
	f->act = act;
	cr_assert_eq(uv_loop_init(&f->loop), 0);
	uv_tcp_init(&f->loop, &f->server);
	f->server.data = f;
	uv_ip4_addr("127.0.0.1", 0, &addr);
	cr_assert_eq(uv_tcp_bind(&f->server, (struct sockaddr *)&addr, 0), 0);
	cr_assert_eq(uv_listen((uv_stream_t *)&f->server, 8, on_connection), 0);
	uv_tcp_getsockname(&f->server, (struct sockaddr *)&ss, &n);
	f->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	uv_timer_init(&f->loop, &f->deadline);
	f->deadline.data = f;
	uv_timer_start(&f->deadline, on_deadline, 20000, 0);
}

/* Closes what is left and checks that every handle was closed. */
static void fake_stop(struct fake *f)
{
	if (f->peer != NULL)
		tether_link_close(f->peer, TETHER_OK);
	uv_close((uv_handle_t *)&f->server, NULL);
	uv_close((uv_handle_t *)&f->deadline, NULL);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	cr_assert_not(f->timed_out, "timed out");
	cr_assert_eq(uv_loop_close(&f->loop), 0, "handles left open");
}

/* ---- The owner's side ---- */

static void on_open(struct tether_client *c, const char *fp, bool newly)
{
	struct owner *o = tether_client_arg(c);

	o->opens++;
	o->newly_pinned |= newly;
	cr_assert_str_eq(fp, cert_fp);
}

static void on_trust(struct tether_client *c, const char *fp)
{
	struct owner *o = tether_client_arg(c);

	o->trusts++;
	cr_assert_str_eq(fp, cert_fp);
	/* Nothing was said on the connection that fetched it. */
	cr_assert_eq(o->f->hellos, 0);
	cr_assert_eq(tether_client_trust(c), 0);
}

static void on_welcome(struct tether_client *c, const struct tether_ctrl_msg *w)
{
	struct owner *o = tether_client_arg(c);

	o->welcomes++;
	cr_assert_eq(w->type, TETHER_CTRL_AUTH_OK);
	cr_assert_str_eq(w->body.auth_ok.technician, "alice");
	if (o->nest) {
		struct tether_ctrl_ticket_list req = {0};
		struct tether_ctrl_msg ans;

		o->nested[0] =
		    tether_client_call(c, TETHER_CTRL_TICKET_LIST, &req, &ans);
		o->nested[1] = tether_client_wait_ready(c);
	}
}

static void on_ctrl(struct tether_client *c, struct tether_ctrl_msg *m)
{
	struct owner *o = tether_client_arg(c);

	o->ctrls++;
}

static void on_down(struct tether_client *c, int err, const char *why,
		    enum tether_client_phase phase)
{
	struct owner *o = tether_client_arg(c);

	o->downs++;
	o->down_err = err;
	o->down_phase = phase;
	snprintf(o->down_why, sizeof(o->down_why), "%s", why);
	if (o->retry && o->downs == 1)
		tether_client_retry(c);
	else
		o->done = true;
}

static const struct tether_client_cbs owner_cbs = {
    .on_open = on_open,
    .on_trust = on_trust,
    .on_welcome = on_welcome,
    .on_ctrl = on_ctrl,
    .on_down = on_down,
};

static struct tether_client *new_client(struct owner *o, struct fake *f,
					const char *pin, bool accept_any)
{
	struct tether_client_opts opts = {.host = "127.0.0.1",
					  .port = f->port,
					  .pin = pin,
					  .accept_any = accept_any,
					  .role = TETHER_ROLE_CONSOLE,
					  .key = tech_key,
					  .token = "tt_1_secret"};

	memset(o, 0, sizeof(*o));
	o->f = f;
	o->c = tether_client_new(&f->loop, &opts, &owner_cbs, o);
	cr_assert_not_null(o->c);
	cr_assert_eq(tether_client_start(o->c), 0);
	return o->c;
}

/* Runs the loop a little: long enough for a ping to be answered. */
static void spin(struct fake *f, unsigned ms)
{
	uint64_t end = uv_now(&f->loop) + ms;

	while (uv_now(&f->loop) < end && !f->timed_out)
		uv_run(&f->loop, UV_RUN_NOWAIT), usleep(1000),
		    uv_update_time(&f->loop);
}

Test(client, pinned_hello_welcome_call_and_ping)
{
	struct tether_ctrl_ticket_list req = {0};
	struct tether_ctrl_ticket_show show = {.ticket = 9};
	struct tether_ctrl_msg ans;
	struct owner o;
	struct fake f;

	fake_start(&f, ACT_WELCOME);
	new_client(&o, &f, cert_fp, false);
	cr_assert_eq(tether_client_wait_ready(o.c), 0);
	cr_assert(tether_client_ready(o.c));
	cr_assert_eq(o.welcomes, 1);
	cr_assert_str_eq(f.last_hello_token, "tt_1_secret");
	cr_assert_eq(f.signatures_ok, 1);
	cr_assert_eq(
	    tether_client_call(o.c, TETHER_CTRL_TICKET_LIST, &req, &ans), 0);
	cr_assert_eq(ans.type, TETHER_CTRL_OK);
	cr_assert_eq(ans.body.ticket_list_ok.ntickets, 1);
	cr_assert_eq(ans.body.ticket_list_ok.tickets[0].id, 7);
	cr_assert_str_eq(ans.body.ticket_list_ok.tickets[0].title, "printer");
	tether_ctrl_msg_free(&ans);
	cr_assert_eq(
	    tether_client_call(o.c, TETHER_CTRL_TICKET_SHOW, &show, &ans), 0);
	cr_assert_eq(ans.type, TETHER_CTRL_ERR);
	cr_assert_eq(ans.body.err.code, TETHER_CTRL_E_NOT_FOUND);
	cr_assert_str_eq(ans.body.err.message, "no such ticket T-9");
	tether_ctrl_msg_free(&ans);
	spin(&f, 50);
	cr_assert_eq(f.pongs, 1, "the relay's ping was answered");
	cr_assert_eq(o.downs, 0);
	tether_client_close(o.c);
	fake_stop(&f);
}

/*
 * uv_run() must not be entered from one of its own callbacks: the
 * blocking calls refuse there, instead of nesting the loop and losing
 * the outer call's answer.
 */
Test(client, blocking_calls_refuse_inside_callbacks)
{
	struct tether_ctrl_ticket_list req = {0};
	struct tether_ctrl_msg ans;
	struct owner o;
	struct fake f;

	fake_start(&f, ACT_WELCOME);
	new_client(&o, &f, cert_fp, false);
	o.nest = true;
	cr_assert_eq(tether_client_wait_ready(o.c), 0);
	cr_assert_eq(o.nested[0], TETHER_ERR_STATE, "call from a callback");
	cr_assert_eq(o.nested[1], TETHER_ERR_STATE, "wait from a callback");
	/* Outside the callbacks both work as before. */
	cr_assert_eq(
	    tether_client_call(o.c, TETHER_CTRL_TICKET_LIST, &req, &ans), 0);
	cr_assert_eq(ans.type, TETHER_CTRL_OK);
	tether_ctrl_msg_free(&ans);
	tether_client_close(o.c);
	fake_stop(&f);
}

Test(client, wrong_pin_says_nothing)
{
	const char *other =
	    "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU";
	struct owner o;
	struct fake f;

	fake_start(&f, ACT_WELCOME);
	new_client(&o, &f, other, false);
	cr_assert_eq(tether_client_wait_ready(o.c), TETHER_ERR_FINGERPRINT);
	cr_assert_eq(o.downs, 1);
	cr_assert_eq(o.down_phase, TETHER_CLIENT_CONNECTING);
	cr_assert(strstr(o.down_why, "does not match") != NULL, "%s",
		  o.down_why);
	cr_assert_eq(o.opens, 0);
	/* What the relay presented, for the owner's words about it. */
	cr_assert_str_eq(tether_client_fingerprint(o.c), cert_fp);
	spin(&f, 50);
	cr_assert_eq(f.hellos, 0);
	tether_client_close(o.c);
	fake_stop(&f);
}

Test(client, probe_then_trust)
{
	struct owner o;
	struct fake f;

	fake_start(&f, ACT_WELCOME);
	new_client(&o, &f, NULL, false);
	cr_assert_eq(tether_client_wait_ready(o.c), 0);
	cr_assert_eq(o.trusts, 1);
	cr_assert_eq(f.connections, 2);
	cr_assert_eq(f.hellos, 1);
	cr_assert_eq(o.welcomes, 1);
	cr_assert(!o.newly_pinned);
	tether_client_close(o.c);
	fake_stop(&f);
}

Test(client, accept_any_pins_for_the_reconnect)
{
	struct owner o;
	struct fake f;

	fake_start(&f, ACT_DROP_FIRST);
	new_client(&o, &f, NULL, true);
	o.retry = true;
	/* Dropped, backed off, came back to the same certificate. */
	while (o.welcomes < 2 && !f.timed_out)
		uv_run(&f.loop, UV_RUN_ONCE);
	cr_assert(o.newly_pinned);
	cr_assert_eq(o.downs, 1);
	cr_assert_eq(o.down_phase, TETHER_CLIENT_READY);
	cr_assert_eq(f.connections, 2);
	cr_assert_eq(o.trusts, 0);
	tether_client_close(o.c);
	fake_stop(&f);
}

Test(client, error_frame_is_refused)
{
	struct owner o;
	struct fake f;

	fake_start(&f, ACT_ERROR_FRAME);
	new_client(&o, &f, cert_fp, false);
	cr_assert_eq(tether_client_wait_ready(o.c), TETHER_ERR_REFUSED);
	cr_assert_str_eq(o.down_why, "go away");
	cr_assert_eq(o.down_phase, TETHER_CLIENT_OPEN);
	tether_client_close(o.c);
	fake_stop(&f);
}

Test(client, malformed_welcome_is_a_protocol_error)
{
	struct owner o;
	struct fake f;

	fake_start(&f, ACT_BAD_WELCOME);
	new_client(&o, &f, cert_fp, false);
	cr_assert_eq(tether_client_wait_ready(o.c), TETHER_ERR_PROTOCOL);
	spin(&f, 50);
	cr_assert(strstr(f.error_seen, "malformed control message: welcome") !=
		      NULL,
		  "relay saw \"%s\"", f.error_seen);
	tether_client_close(o.c);
	fake_stop(&f);
}

Test(client, newer_messages_are_ignored)
{
	struct owner o;
	struct fake f;

	fake_start(&f, ACT_NEWER_MSG);
	new_client(&o, &f, cert_fp, false);
	cr_assert_eq(tether_client_wait_ready(o.c), 0);
	spin(&f, 50);
	cr_assert_eq(o.downs, 0);
	cr_assert_eq(o.ctrls, 0);
	cr_assert(tether_client_ready(o.c));
	tether_client_close(o.c);
	fake_stop(&f);
}

Test(client, backoff_doubles_with_jitter)
{
	unsigned base = TETHER_CLIENT_BACKOFF_MIN_MS, want = base, d, i;

	for (i = 0; i < 12; i++) {
		d = tether_client_backoff_next(&base);
		cr_assert_geq(d, want - want / 4);
		cr_assert_leq(d, want + want / 4);
		want = want >= TETHER_CLIENT_BACKOFF_MAX_MS / 2
			   ? TETHER_CLIENT_BACKOFF_MAX_MS
			   : want * 2;
		cr_assert_eq(base, want);
	}
	cr_assert_eq(base, TETHER_CLIENT_BACKOFF_MAX_MS);
}
