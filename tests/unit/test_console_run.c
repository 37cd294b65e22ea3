/*
 * The console's channel driver (console/console-run.c) and its output
 * sink, against a small relay of the test's own on loopback that also
 * plays the agent's end of the channel: STDOUT and STDERR reach the sink
 * (and are credited back), EXIT and CLOSE reach its end, the connection is
 * still open for a follow-up request in its after, and a channel the relay
 * closes is "connection lost" without an end.  The console's login and a
 * paired session are files in a temporary XDG_CONFIG_HOME.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/redirect.h>

#include <tether/alloc.h>
#include <tether/buf.h>
#include <tether/chan.h>
#include <tether/crypto.h>
#include <tether/ctrl.h>
#include <tether/err.h>
#include <tether/link.h>
#include <tether/msg.h>
#include <tether/proto.h>
#include <tether/sign.h>
#include <tether/tls.h>

#include "console.h"

#define TICKET 7
#define SESSION 5
#define CHANNEL 9

/* How the agent's end answers EXEC. */
enum act {
	ACT_EXIT,	/* STDOUT, STDERR, EXIT 3, CLOSE */
	ACT_RELAY_CLOSE /* the relay closes the channel instead */
};

struct fake {
	uv_loop_t loop;
	uv_tcp_t server;
	uv_async_t stop;
	pthread_t thread;
	int port;
	enum act act;
	struct tether_link *peer;
	struct tether_chan *chan;
	/* What it saw, read by the test once the thread is joined. */
	bool exec;
	bool eof;
	unsigned requests; /* after the open: the follow-ups */
	bool opened;
	/* The first check that failed on the relay's thread, or 0. */
	int failed_line;
};

/* Criterion's asserts belong to the test's thread: note, check later. */
#define CHECK(f, cond)                                                         \
	do {                                                                   \
		if (!(cond) && (f)->failed_line == 0)                          \
			(f)->failed_line = __LINE__;                           \
	} while (0)

static char dir[64] = "/tmp/tether-console-run-XXXXXX";
static char cert_path[128], key_path[128];
static char cert_fp[TETHER_TLS_FP_LEN];
static uint8_t tech_pub[TETHER_SIGN_PUB_LEN]; /* the console's key */
static uint8_t challenge[TETHER_AGENT_CHALLENGE_LEN];
static struct tether_tls_ctx *stls;
static struct tether_link_ctx *sctx;
static const uint8_t ke[TETHER_SPAKE2_KE_LEN] = {1, 2,	3,  4,	5,  6,	7,  8,
						 9, 10, 11, 12, 13, 14, 15, 16};

static void write_text(const char *name, const char *text)
{
	char path[256];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fp = fopen(path, "w");
	cr_assert_not_null(fp, "%s", path);
	fputs(text, fp);
	cr_assert_eq(fclose(fp), 0);
}

/* A login for port and a session with its key, as tether would keep them. */
static void write_config(int port)
{
	char hex[2 * sizeof(ke) + 1], text[1024];

	cr_assert_eq(tether_hex_encode(ke, sizeof(ke), hex, sizeof(hex)), 0);
	snprintf(text, sizeof(text),
		 "{\"relay\":\"127.0.0.1:%d\",\"technician\":\"alice\","
		 "\"fingerprint\":\"%s\"}\n",
		 port, cert_fp);
	write_text("tether/config.json", text);
	snprintf(text, sizeof(text), "%s/tether/technician.key", dir);
	cr_assert_eq(tether_sign_key_generate(text, tech_pub), 0);
	snprintf(text, sizeof(text),
		 "{\"session\":%d,\"ticket\":\"T-%d\",\"nameplate\":\"3\","
		 "\"info\":\"{}\",\"ke\":\"%s\"}\n",
		 SESSION, TICKET, hex);
	write_text("tether/sessions/5.json", text);
}

static void setup(void)
{
	char path[128];

	signal(SIGPIPE, SIG_IGN);
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/tether", dir);
	cr_assert_eq(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/tether/sessions", dir);
	cr_assert_eq(mkdir(path, 0700), 0);
	setenv("XDG_CONFIG_HOME", dir, 1);
	snprintf(cert_path, sizeof(cert_path), "%s/cert.pem", dir);
	snprintf(key_path, sizeof(key_path), "%s/key.pem", dir);
	cr_assert_eq(tether_tls_cert_generate(cert_path, key_path, "relay.test",
					      cert_fp),
		     0);
	stls = tether_tls_ctx_new_server(cert_path, key_path);
	cr_assert_not_null(stls);
	sctx = tether_link_ctx_new(stls);
	cr_assert_not_null(sctx);
	cr_redirect_stderr();
}

static void teardown(void)
{
	char cmd[128];

	tether_link_ctx_free(sctx);
	tether_tls_ctx_free(stls);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(console_run, .init = setup, .fini = teardown);

/* ---- The relay's side (its own thread and loop) ---- */

static void send_ctrl(struct fake *f, enum tether_ctrl_type t, int64_t id,
		      const void *body, bool answer)
{
	size_t len;
	char *text;

	int r = answer ? tether_ctrl_encode_answer(t, id, body, &text, &len)
		       : tether_ctrl_encode(t, id, body, &text, &len);

	CHECK(f, r == 0);
	if (r == 0)
		tether_link_send(f->peer, TETHER_FRAME_CTRL, 0, text, len);
	tether_free(text);
}

static void open_channel(struct fake *f, const struct tether_ctrl_msg *m)
{
	struct tether_ctrl_open_ok ok = {.channel = CHANNEL};

	CHECK(f, m->body.open.session == SESSION);
	CHECK(f, m->body.open.kind == TETHER_KIND_EXEC);
	CHECK(f, tether_random(ok.nonce, sizeof(ok.nonce)) == 0);
	f->chan = tether_chan_new(CHANNEL, false, ke, sizeof(ke),
				  m->body.open.nonce, ok.nonce);
	CHECK(f, f->chan != NULL);
	f->opened = true;
	send_ctrl(f, TETHER_CTRL_OPEN, m->id, &ok, true);
}

static void relay_ctrl(struct fake *f, const struct tether_frame *fr)
{
	struct tether_ctrl_welcome w = {.version = TETHER_PROTOCOL_VERSION,
					.has_challenge = true};
	const struct tether_ctrl_auth_ok let_in = {
	    .technician = "alice", .has_role = true, .role = TETHER_TECH_ADMIN};
	uint8_t signed_msg[128];
	size_t n = 0;
	const struct tether_ctrl_attach_ok att = {.session = SESSION,
						  .state =
						      TETHER_SESSION_PAIRED,
						  .nameplate = "3"};
	const struct tether_ctrl_ticket_ok tk = {
	    .ticket = {.id = TICKET, .title = "printer"}};
	char why[TETHER_CTRL_WHY_MAX];
	struct tether_ctrl_msg m;

	CHECK(f, tether_ctrl_decode(fr->payload, fr->len, TETHER_CTRL_C2R, &m,
				    why, sizeof(why)) == 0);
	switch (m.type) {
	case TETHER_CTRL_HELLO:
		/* The key signs in: no token is kept to send. */
		CHECK(f, m.body.hello.token == NULL);
		CHECK(f, strcmp(m.body.hello.technician, "alice") == 0);
		CHECK(f, tether_random(challenge, sizeof(challenge)) == 0);
		memcpy(w.challenge, challenge, sizeof(challenge));
		send_ctrl(f, TETHER_CTRL_WELCOME, 0, &w, false);
		break;
	case TETHER_CTRL_AUTH:
		CHECK(f, tether_sign_console_auth_message(
			     challenge, tech_pub, signed_msg,
			     sizeof(signed_msg), &n) == 0);
		CHECK(f, tether_sign_verify(tech_pub, signed_msg, n,
					    m.body.auth.sig) == 0);
		send_ctrl(f, TETHER_CTRL_AUTH_OK, 0, &let_in, false);
		break;
	case TETHER_CTRL_ATTACH:
		CHECK(f, m.body.ticket_ref.ticket == TICKET);
		send_ctrl(f, TETHER_CTRL_ATTACH, m.id, &att, true);
		break;
	case TETHER_CTRL_OPEN:
		open_channel(f, &m);
		break;
	case TETHER_CTRL_TICKET_SHOW:
		f->requests++;
		send_ctrl(f, TETHER_CTRL_TICKET_SHOW, m.id, &tk, true);
		break;
	case TETHER_CTRL_PING:
		send_ctrl(f, TETHER_CTRL_PONG, 0, NULL, false);
		break;
	default:
		break;
	}
	tether_ctrl_msg_free(&m);
}

static void agent_send(struct fake *f, uint8_t msg, const void *body,
		       size_t len)
{
	CHECK(f, tether_chan_send(f->chan, f->peer, msg, body, len) == 0);
}

/* The agent's end of EXEC: output, then the status or the relay's close. */
static void agent_exec(struct fake *f)
{
	const struct tether_msg_exit ex = {.how = TETHER_MSG_EXIT_CODE,
					   .value = 3};
	const struct tether_ctrl_chan_close cl = {
	    .channel = CHANNEL, .reason = "agent disconnected"};
	struct tether_buf *b = tether_buf_new(16);

	agent_send(f, TETHER_MSG_STDOUT, "out", 3);
	agent_send(f, TETHER_MSG_STDERR, "warn\n", 5);
	if (f->act == ACT_RELAY_CLOSE) {
		send_ctrl(f, TETHER_CTRL_CHAN_CLOSE, 0, &cl, false);
	} else {
		CHECK(f, tether_msg_encode_exit(b, &ex) == 0);
		agent_send(f, TETHER_MSG_EXIT, tether_buf_ptr(b),
			   tether_buf_len(b));
		agent_send(f, TETHER_MSG_CLOSE, NULL, 0);
	}
	tether_buf_free(b);
}

static void relay_data(struct fake *f, const struct tether_frame *fr)
{
	struct tether_msg_exec exec;
	const uint8_t *body;
	uint8_t msg;
	size_t len;

	if (f->chan == NULL ||
	    tether_chan_open(f->chan, fr, &msg, &body, &len) != 0) {
		CHECK(f, false);
		return;
	}
	if (msg == TETHER_MSG_EXEC) {
		CHECK(f, tether_msg_decode_exec(body, len, &exec) == 0);
		CHECK(f, exec.argc == 0);
		tether_msg_clear_exec(&exec);
		f->exec = true;
	} else if (msg == TETHER_MSG_EOF) {
		f->eof = true;
		/* EXEC, then EOF(0): the command has started. */
		agent_exec(f);
	}
}

static void relay_frame(struct tether_link *l, const struct tether_frame *fr)
{
	struct fake *f = tether_link_data(l);

	if (fr->type == TETHER_FRAME_CTRL)
		relay_ctrl(f, fr);
	else
		relay_data(f, fr);
}

static void relay_close(struct tether_link *l, int reason)
{
	struct fake *f = tether_link_data(l);

	(void)reason;
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

	CHECK(f, status == 0);
	f->peer = tether_link_accept(server, sctx, &relay_cbs, f);
	CHECK(f, f->peer != NULL);
}

static void on_stop(uv_async_t *a)
{
	struct fake *f = a->data;

	if (f->peer != NULL)
		tether_link_close(f->peer, TETHER_OK);
	uv_close((uv_handle_t *)&f->server, NULL);
	uv_close((uv_handle_t *)&f->stop, NULL);
}

static void *relay_thread(void *arg)
{
	struct fake *f = arg;

	uv_run(&f->loop, UV_RUN_DEFAULT);
	return NULL;
}

static void fake_start(struct fake *f, enum act act)
{
	struct sockaddr_storage ss;
	struct sockaddr_in addr;
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
	uv_async_init(&f->loop, &f->stop, on_stop);
	f->stop.data = f;
	write_config(f->port);
	cr_assert_eq(pthread_create(&f->thread, NULL, relay_thread, f), 0);
}

static void fake_stop(struct fake *f)
{
	uv_async_send(&f->stop);
	cr_assert_eq(pthread_join(f->thread, NULL), 0);
	cr_assert_eq(uv_loop_close(&f->loop), 0, "handles left open");
	tether_chan_free(f->chan);
	cr_assert_eq(f->failed_line, 0, "the relay's check at line %d failed",
		     f->failed_line);
}

/* ---- The console's side: a sink that keeps what it is given ---- */

struct sink {
	char out[64];
	char err[64];
	bool ended;
	struct console_run_result res;
	int after_status; /* the status after() was given; -1: not called */
	int follow_up;	  /* what after()'s request returned */
};

static void append(char *buf, size_t size, const uint8_t *p, size_t n)
{
	size_t used = strlen(buf);

	cr_assert_lt(used + n, size);
	memcpy(buf + used, p, n);
	buf[used + n] = '\0';
}

static int sink_start(struct console_run *r, void *arg)
{
	const struct tether_msg_exec m = {.argc = 0, .argv = NULL};
	struct tether_buf *b = tether_buf_new(16);
	int built = tether_msg_encode_exec(b, &m);

	(void)arg;
	if (console_run_send(r, TETHER_MSG_EXEC, b, built) != 0)
		return -1;
	console_run_input_end(r);
	return 0;
}

static void sink_output(struct console_run *r, void *arg, int fd,
			const uint8_t *p, size_t n)
{
	struct sink *s = arg;

	(void)r;
	if (fd == STDOUT_FILENO)
		append(s->out, sizeof(s->out), p, n);
	else
		append(s->err, sizeof(s->err), p, n);
}

static int sink_end(struct console_run *r, void *arg,
		    const struct console_run_result *res)
{
	struct sink *s = arg;

	(void)r;
	s->ended = true;
	s->res = *res;
	return res->exited ? 40 + res->status : 1;
}

/* The connection is still there: one more request on it. */
static int sink_after(struct console_run *r, void *arg, int status)
{
	const struct tether_ctrl_ticket_show req = {.ticket = TICKET};
	struct tether_ctrl_msg ans;
	struct sink *s = arg;

	s->after_status = status;
	s->follow_up = console_client_call(console_run_client(r),
					   TETHER_CTRL_TICKET_SHOW, &req, &ans);
	if (s->follow_up == 0)
		cr_assert_str_eq(ans.body.ticket_ok.ticket.title, "printer");
	tether_ctrl_msg_free(&ans);
	return status + 100;
}

static int run_sink(struct sink *s)
{
	const struct console_run_ops ops = {
	    .kind = TETHER_KIND_EXEC,
	    .no_stdin = true,
	    .start = sink_start,
	    .output = sink_output,
	    .end = sink_end,
	    .after = sink_after,
	    .arg = s,
	};

	memset(s, 0, sizeof(*s));
	s->after_status = -1;
	return console_run(TICKET, "T-7", &ops);
}

Test(console_run, sink_end_and_a_follow_up_request)
{
	struct sink s;
	struct fake f;
	int status;

	fake_start(&f, ACT_EXIT);
	status = run_sink(&s);
	fake_stop(&f);
	cr_assert(f.opened && f.exec && f.eof);
	cr_assert_str_eq(s.out, "out");
	cr_assert_str_eq(s.err, "warn\n");
	cr_assert(s.ended);
	cr_assert(s.res.exited);
	cr_assert_not(s.res.error);
	cr_assert_eq(s.res.status, 3);
	cr_assert_eq(s.after_status, 43, "after() gets what end() said");
	cr_assert_eq(s.follow_up, 0);
	cr_assert_eq(f.requests, 1, "the follow-up went on the connection");
	cr_assert_eq(status, 143, "the status is after()'s");
	fflush(stderr);
	cr_assert_stderr_eq_str("");
}

Test(console_run, relay_closes_the_channel)
{
	struct sink s;
	struct fake f;
	int status;

	fake_start(&f, ACT_RELAY_CLOSE);
	status = run_sink(&s);
	fake_stop(&f);
	cr_assert_str_eq(s.out, "out");
	cr_assert_not(s.ended, "no CLOSE: the sink's end is not asked");
	cr_assert_eq(s.after_status, CONSOLE_EXIT_FAIL);
	cr_assert_eq(s.follow_up, 0, "the relay connection is still up");
	cr_assert_eq(status, CONSOLE_EXIT_FAIL + 100);
	fflush(stderr);
	cr_assert_stderr_eq_str(
	    "tether: connection lost: agent disconnected\n");
}

Test(console_run, exec_reading_of_a_result)
{
	const struct console_run_result exited = {.exited = true, .status = 7};
	const struct console_run_result error = {.error = true};
	const struct console_run_result none = {0};

	cr_assert_eq(console_run_status(&exited), 7);
	cr_assert_eq(console_run_status(&error), CONSOLE_EXIT_FAIL);
	cr_assert_eq(console_run_status(&none), CONSOLE_EXIT_FAIL);
	fflush(stderr);
	cr_assert_stderr_eq_str(
	    "tether: the remote command ended without a status\n");
}
