/*
 * The agent's channel dispatch (agent/session/chan.c) driven without a
 * network: a fake struct agent_chan_io records the control messages the
 * channels send and opens their sealed frames with the console's end of
 * the channel, and the test plays the console with the same keys.  Spawns
 * are refused unless a test lets the real ones through.
 */
#include <criterion/criterion.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <tether/alloc.h>
#include <tether/buf.h>
#include <tether/chan.h>
#include <tether/ctrl.h>
#include <tether/err.h>
#include <tether/frame.h>
#include <tether/msg.h>
#include <tether/proto.h>

#include "../agent_chan_fake.h"
#include "session/chan.h"
#include "session/cli.h"
#include "session/file.h"
#include "session/term.h"

#define CHANNEL 7
#define CTRL_MAX 64

/* One sealed message the agent sent, as the console opened it. */
struct got {
	uint8_t msg;
	uint8_t *body;
	size_t len;
};

struct fake {
	uv_loop_t loop;
	struct agent_term *term;
	struct agent_chans *cs;
	struct agent_file_policy files;
	struct agent_targets forwards;
	bool real_spawn;
	/* The console's end, once the agent said opened. */
	struct tether_chan *console;
	uint8_t ke[16];
	uint8_t nonce_c[TETHER_SEAL_NONCE_LEN];
	/* What the agent sent. */
	enum tether_ctrl_type ctrl[CTRL_MAX];
	char *ctrl_text[CTRL_MAX];
	size_t nctrl;
	struct got *got;
	size_t ngot;
	size_t stdout_bytes;
	FILE *lines; /* the customer's lines */
	char *lines_buf;
	size_t lines_len;
};

static int fake_ctrl(void *arg, enum tether_ctrl_type t, const void *body)
{
	struct fake *f = arg;
	const struct tether_ctrl_opened *o = body;
	char *text;
	int r;

	r = tether_ctrl_encode(t, 0, body, &text, NULL);
	cr_assert_eq(r, 0, "the agent sent a %s its peer refuses",
		     tether_ctrl_type_name(t));
	cr_assert_lt(f->nctrl, CTRL_MAX);
	f->ctrl[f->nctrl] = t;
	f->ctrl_text[f->nctrl++] = text;
	if (t == TETHER_CTRL_OPENED) {
		f->console =
		    tether_chan_new((uint32_t)o->channel, true, f->ke,
				    sizeof(f->ke), f->nonce_c, o->nonce);
		cr_assert_not_null(f->console);
	}
	return 0;
}

static int fake_frame(void *arg, const uint8_t *raw, size_t len)
{
	struct fake *f = arg;
	const struct tether_frame fr = fake_frame_of(CHANNEL, raw, len);
	const uint8_t *body;
	struct got *g;
	uint8_t msg;
	size_t n;

	cr_assert_not_null(f->console, "data before opened");
	/* The console's own checks: seal, order and our window. */
	cr_assert_eq(tether_chan_open(f->console, &fr, &msg, &body, &n), 0,
		     "the agent sent a frame the console refuses");
	if (msg == TETHER_MSG_STDOUT) {
		/* Counted, not kept: the big output test sends megabytes. */
		f->stdout_bytes += n;
		return 0;
	}
	g = tether_reallocarray(f->got, f->ngot + 1, sizeof(*f->got));
	cr_assert_not_null(g);
	f->got = g;
	g = &f->got[f->ngot++];
	g->msg = msg;
	g->len = n;
	g->body = tether_malloc(n + 1);
	memcpy(g->body, body, n);
	g->body[n] = '\0';
	return 0;
}

static bool fake_room(void *arg)
{
	(void)arg;
	return true;
}

static int fake_spawn(void *arg, uv_loop_t *loop, const struct agent_spawn *sp,
		      const struct agent_proc_cbs *cbs, void *ctx,
		      struct agent_proc **out)
{
	struct fake *f = arg;

	if (f->real_spawn)
		return agent_proc_spawn(loop, sp, cbs, ctx, out);
	return fake_no_spawn(arg, loop, sp, cbs, ctx, out);
}

static void setup(struct fake *f, unsigned caps)
{
	struct agent_term_opts to = {.view = AGENT_VIEW_OFF,
				     .unattended = true};
	struct agent_chans_cfg cc;
	size_t i;

	signal(SIGPIPE, SIG_IGN);
	memset(f, 0, sizeof(*f));
	cr_assert_eq(uv_loop_init(&f->loop), 0);
	f->lines = open_memstream(&f->lines_buf, &f->lines_len);
	cr_assert_not_null(f->lines);
	to.out = to.err = f->lines;
	f->term = agent_term_new(&f->loop, &to);
	cr_assert_not_null(f->term);
	cc = (struct agent_chans_cfg){
	    .loop = &f->loop,
	    .term = f->term,
	    .files = &f->files,
	    .forwards = &f->forwards,
	    .io = {.ctrl = fake_ctrl,
		   .frame = fake_frame,
		   .room = fake_room,
		   .spawn = fake_spawn,
		   .spawn_pty = fake_no_spawn_pty,
		   .arg = f},
	};
	f->cs = agent_chans_new(&cc);
	cr_assert_not_null(f->cs);
	for (i = 0; i < sizeof(f->ke); i++)
		f->ke[i] = (uint8_t)(i + 1);
	memset(f->nonce_c, 0xc5, sizeof(f->nonce_c));
	if (caps != 0)
		agent_chans_pair(f->cs, f->ke, sizeof(f->ke), caps);
}

static void teardown(struct fake *f)
{
	size_t i;

	agent_chans_free(f->cs);
	agent_term_free(f->term);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	cr_expect_eq(uv_loop_close(&f->loop), 0, "handles left open");
	for (i = 0; i < f->nctrl; i++)
		tether_free(f->ctrl_text[i]);
	for (i = 0; i < f->ngot; i++)
		tether_free(f->got[i].body);
	tether_free(f->got);
	tether_chan_free(f->console);
	fclose(f->lines);
	free(f->lines_buf);
	agent_file_policy_free(&f->files);
	agent_targets_free(&f->forwards);
}

static void open_chan(struct fake *f, enum tether_kind kind)
{
	struct tether_ctrl_chan_open m = {
	    .channel = CHANNEL, .kind = kind, .technician = "alice"};

	memcpy(m.nonce, f->nonce_c, sizeof(m.nonce));
	agent_chans_open(f->cs, &m);
}

/* The console seals msg and the relay delivers it to the agent. */
static int deliver_raw(void *arg, const uint8_t *raw, size_t len)
{
	struct fake *f = arg;
	const struct tether_frame fr = fake_frame_of(CHANNEL, raw, len);

	agent_chans_frame(f->cs, &fr);
	return 0;
}

static void console_send(struct fake *f, uint8_t msg, const void *body,
			 size_t len)
{
	cr_assert_eq(
	    tether_chan_send_to(f->console, deliver_raw, f, msg, body, len), 0);
}

static void console_exec(struct fake *f, char **argv, uint32_t argc)
{
	const struct tether_msg_exec m = {.argc = argc, .argv = argv};
	struct tether_buf *b = tether_buf_new(4096);

	cr_assert_eq(tether_msg_encode_exec(b, &m), 0);
	console_send(f, TETHER_MSG_EXEC, tether_buf_ptr(b), tether_buf_len(b));
	tether_buf_free(b);
}

static bool sent_ctrl(const struct fake *f, enum tether_ctrl_type t,
		      const char *part)
{
	size_t i;

	for (i = 0; i < f->nctrl; i++)
		if (f->ctrl[i] == t &&
		    (part == NULL || strstr(f->ctrl_text[i], part) != NULL))
			return true;
	return false;
}

static const struct got *sent_msg(const struct fake *f, uint8_t msg, size_t nth)
{
	size_t i;

	for (i = 0; i < f->ngot; i++)
		if (f->got[i].msg == msg && nth-- == 0)
			return &f->got[i];
	return NULL;
}

static bool said(struct fake *f, const char *part)
{
	fflush(f->lines);
	return f->lines_buf != NULL && strstr(f->lines_buf, part) != NULL;
}

Test(agent_chan, open_before_pairing_is_refused)
{
	struct fake f;

	setup(&f, 0);
	open_chan(&f, TETHER_KIND_EXEC);
	cr_expect(sent_ctrl(&f, TETHER_CTRL_OPEN_FAILED, "not paired"));
	cr_expect_eq(agent_chans_count(f.cs), 0);
	teardown(&f);
}

Test(agent_chan, kind_not_consented_is_refused)
{
	struct fake f;

	setup(&f, AGENT_CAP(TETHER_KIND_EXEC));
	open_chan(&f, TETHER_KIND_SHELL);
	cr_expect(sent_ctrl(&f, TETHER_CTRL_OPEN_FAILED,
			    "the customer did not allow shell"));
	cr_expect(said(&f, "alice asked for a shell, which you did not allow; "
			   "refused"));
	cr_expect_eq(agent_chans_count(f.cs), 0);
	teardown(&f);
}

Test(agent_chan, channel_in_use)
{
	struct fake f;

	setup(&f, AGENT_CAP(TETHER_KIND_EXEC));
	open_chan(&f, TETHER_KIND_EXEC);
	cr_assert(sent_ctrl(&f, TETHER_CTRL_OPENED, NULL));
	open_chan(&f, TETHER_KIND_EXEC);
	cr_expect(sent_ctrl(&f, TETHER_CTRL_OPEN_FAILED, "channel in use"));
	cr_expect_eq(agent_chans_count(f.cs), 1);
	teardown(&f);
}

Test(agent_chan, refused_exec_ends_like_a_shell_would)
{
	char *argv[] = {"ls", "-l", NULL};
	struct tether_msg_exit ex;
	const struct got *g;
	struct fake f;

	setup(&f, AGENT_CAP(TETHER_KIND_EXEC));
	open_chan(&f, TETHER_KIND_EXEC);
	console_exec(&f, argv, 2);
	cr_expect(said(&f, "alice runs: ls -l"));
	cr_expect(said(&f, "cannot run ls: Permission denied"));
	cr_expect(said(&f, "command exited with status 126"));
	g = sent_msg(&f, TETHER_MSG_STDERR, 0);
	cr_assert_not_null(g);
	cr_expect_str_eq((const char *)g->body,
			 "tether-agent: ls: Permission denied\n");
	cr_expect_not_null(sent_msg(&f, TETHER_MSG_EOF, 0));
	cr_expect_not_null(sent_msg(&f, TETHER_MSG_EOF, 1));
	g = sent_msg(&f, TETHER_MSG_EXIT, 0);
	cr_assert_not_null(g);
	cr_assert_eq(tether_msg_decode_exit(g->body, g->len, &ex), 0);
	cr_expect_eq(ex.how, TETHER_MSG_EXIT_CODE);
	cr_expect_eq(ex.value, 126);
	cr_expect_not_null(sent_msg(&f, TETHER_MSG_CLOSE, 0));
	cr_expect(sent_ctrl(&f, TETHER_CTRL_CHAN_CLOSE, "\"channel\":7"));
	cr_expect_eq(agent_chans_count(f.cs), 0);
	teardown(&f);
}

Test(agent_chan, malformed_exec_fails_the_channel)
{
	static const uint8_t body[] = {0, 0, 0, 1, 0, 0, 0, 2, 'l', 's', 'x'};
	const struct got *g;
	struct fake f;

	setup(&f, AGENT_CAP(TETHER_KIND_EXEC));
	open_chan(&f, TETHER_KIND_EXEC);
	/* One word "ls" and a byte too many. */
	console_send(&f, TETHER_MSG_EXEC, body, sizeof(body));
	g = sent_msg(&f, TETHER_MSG_ERROR, 0);
	cr_assert_not_null(g);
	cr_expect(memmem(g->body, g->len, "malformed exec request", 22));
	cr_expect(
	    sent_ctrl(&f, TETHER_CTRL_CHAN_CLOSE, "malformed exec request"));
	cr_expect(said(&f, "channel 7: malformed exec request"));
	cr_expect_eq(agent_chans_count(f.cs), 0);
	teardown(&f);
}

Test(agent_chan, wrong_first_message_fails_the_channel)
{
	static const uint8_t resize[] = {0, 80, 0, 24};
	struct fake f;

	setup(&f, AGENT_CAP(TETHER_KIND_EXEC));
	open_chan(&f, TETHER_KIND_EXEC);
	console_send(&f, TETHER_MSG_RESIZE, resize, sizeof(resize));
	cr_expect(sent_ctrl(&f, TETHER_CTRL_CHAN_CLOSE, "unexpected message"));
	teardown(&f);
}

Test(agent_chan, diag_runs_the_collector_or_says_why_not)
{
	struct fake f;

	setup(&f, AGENT_CAP(TETHER_KIND_DIAG));
	open_chan(&f, TETHER_KIND_DIAG);
	console_exec(&f, NULL, 0);
	cr_expect(said(&f, "alice collected diagnostics"));
	cr_expect(said(&f, "cannot run tether-agent diag: Permission denied"));
	cr_expect_not_null(sent_msg(&f, TETHER_MSG_EXIT, 0));
	teardown(&f);
}

Test(agent_chan, put_outside_the_roots_is_refused_and_audited)
{
	const struct tether_msg_put put = {.dest = "/"};
	struct tether_buf *b = tether_buf_new(256);
	const struct got *g;
	const char *why;
	struct fake f;

	setup(&f, AGENT_CAP(TETHER_KIND_FILE));
	cr_assert_eq(agent_file_allow(&f.files.write, "/tmp", &why), 0);
	open_chan(&f, TETHER_KIND_FILE);
	cr_assert_eq(tether_chan_set_window(f.console, TETHER_FILE_WINDOW), 0);
	cr_assert_eq(tether_msg_encode_put(b, &put), 0);
	console_send(&f, TETHER_MSG_PUT, tether_buf_ptr(b), tether_buf_len(b));
	tether_buf_free(b);
	cr_expect(said(&f, "alice may not write to /; refused"));
	cr_expect(sent_ctrl(&f, TETHER_CTRL_XFER_REPORT, "\"ok\":false"));
	g = sent_msg(&f, TETHER_MSG_ERROR, 0);
	cr_assert_not_null(g);
	cr_expect(
	    memmem(g->body, g->len, "outside the allowed directories", 31));
	cr_expect_not_null(sent_msg(&f, TETHER_MSG_CLOSE, 0));
	teardown(&f);
}

Test(agent_chan, forward_to_a_target_not_allowed_is_refused)
{
	const struct tether_msg_forward fw = {.host = "10.0.0.1", .port = 5432};
	struct tether_buf *b = tether_buf_new(256);
	struct fake f;

	setup(&f, AGENT_CAP(TETHER_KIND_FORWARD));
	open_chan(&f, TETHER_KIND_FORWARD);
	cr_assert_eq(tether_msg_encode_forward(b, &fw), 0);
	console_send(&f, TETHER_MSG_FORWARD, tether_buf_ptr(b),
		     tether_buf_len(b));
	tether_buf_free(b);
	cr_expect(said(&f, "alice asked to connect to 10.0.0.1:5432, which "
			   "your policy does not allow; refused"));
	cr_expect(sent_ctrl(&f, TETHER_CTRL_FORWARD_REPORT,
			    "not allowed by the customer's policy"));
	cr_expect_not_null(sent_msg(&f, TETHER_MSG_ERROR, 0));
	teardown(&f);
}

/* Runs the loop until the agent's output stops growing for a while. */
static void run_until_quiet(struct fake *f)
{
	size_t before;
	int i, still = 0;

	for (i = 0; i < 2000 && still < 20; i++) {
		before = f->stdout_bytes + f->ngot;
		uv_run(&f->loop, UV_RUN_NOWAIT);
		usleep(5000);
		still = f->stdout_bytes + f->ngot == before ? still + 1 : 0;
	}
}

Test(agent_chan, output_stops_at_the_window_until_credited, .timeout = 30)
{
	char *argv[] = {"head", "-c", "5000000", "/dev/zero", NULL};
	struct fake f;

	setup(&f, AGENT_CAP(TETHER_KIND_EXEC));
	f.real_spawn = true;
	open_chan(&f, TETHER_KIND_EXEC);
	console_exec(&f, argv, 4);
	run_until_quiet(&f);
	/* Not a byte beyond what the console granted. */
	cr_expect_eq(f.stdout_bytes, TETHER_CHANNEL_WINDOW);
	cr_expect_null(sent_msg(&f, TETHER_MSG_EXIT, 0));
	/* The console has written it all out: credit, and the rest comes. */
	cr_assert_eq(
	    tether_chan_consumed_to(f.console, deliver_raw, &f, f.stdout_bytes),
	    0);
	run_until_quiet(&f);
	cr_expect_eq(f.stdout_bytes, 5000000);
	cr_expect_not_null(sent_msg(&f, TETHER_MSG_EXIT, 0));
	teardown(&f);
}

Test(agent_chan, input_written_is_credited_back, .timeout = 30)
{
	char *argv[] = {"sh", "-c", "cat >/dev/null", NULL};
	static uint8_t chunk[TETHER_CHANNEL_CHUNK];
	size_t before, i;
	struct fake f;

	setup(&f, AGENT_CAP(TETHER_KIND_EXEC));
	f.real_spawn = true;
	open_chan(&f, TETHER_KIND_EXEC);
	console_exec(&f, argv, 3);
	before = tether_chan_send_window(f.console);
	for (i = 0; i < 24; i++)
		console_send(&f, TETHER_MSG_STDIN, chunk, sizeof(chunk));
	cr_expect_eq(tether_chan_send_window(f.console),
		     before - 24 * sizeof(chunk));
	run_until_quiet(&f);
	/* A quarter window written: credited back with one WINDOW at least. */
	cr_expect_not_null(sent_msg(&f, TETHER_MSG_WINDOW, 0));
	cr_expect_geq(tether_chan_send_window(f.console),
		      before - 24 * sizeof(chunk) + TETHER_CHANNEL_WINDOW / 4);
	teardown(&f);
}
