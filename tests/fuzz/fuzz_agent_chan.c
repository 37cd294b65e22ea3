/*
 * libFuzzer target for the agent's real channel dispatch
 * (agent/session/chan.c, with file.c and forward.c behind it): what a
 * technician's console can make an attended agent do.  The channels run
 * on a fake struct agent_chan_io, with no network and no children: every
 * spawn is refused, forwards never get to connect (the loop does not run
 * until every channel is closed), and file transfers see only a scratch
 * directory that is $HOME for them: they read its one file (a.txt) and
 * write into its in/, emptied after each input.  So only parsing, state
 * handling and the transfer engine run.
 *
 * Input: byte 0 picks the channel kind ((b0 & 0x7f) % 5: exec, shell, file,
 * forward, diag); bit 7 set leaves the kind out of what the customer
 * allowed, so the open is refused.  The rest is records "u16 length |
 * message byte | body": each is sealed by the console's end of the
 * channel (as the console would, so it authenticates and reaches the
 * dispatch) and delivered; length 0xffff is the relay's close of the
 * channel instead, 0xfffe the link draining.
 *
 * Invariants: every control message the agent sends is one its peer
 * accepts (the encoder checks the schema), and every sealed frame it
 * sends opens on the console's end: right keys, right order, within the
 * console's window.
 */
#include <ftw.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <tether/alloc.h>
#include <tether/chan.h>
#include <tether/ctrl.h>
#include <tether/err.h>
#include <tether/frame.h>
#include <tether/msg.h>
#include <tether/proto.h>

#include "../agent_chan_fake.h"
#include "fuzz.h"
#include "session/chan.h"
#include "session/cli.h"
#include "session/file.h"
#include "session/term.h"

#define CHANNEL 1
#define REC_CLOSE 0xffffu
#define REC_DRAIN 0xfffeu

struct fuzz {
	struct agent_chans *cs;
	struct tether_chan *console;
	uint8_t ke[16];
	uint8_t nonce_c[TETHER_SEAL_NONCE_LEN];
	enum tether_kind kind;
};

static int fake_ctrl(void *arg, enum tether_ctrl_type t, const void *body)
{
	struct fuzz *z = arg;
	const struct tether_ctrl_opened *o = body;
	char *text = NULL;

	CHECK(tether_ctrl_encode(t, 0, body, &text, NULL) !=
	      TETHER_ERR_INVALID);
	tether_free(text);
	if (t == TETHER_CTRL_OPENED && z->console == NULL) {
		z->console =
		    tether_chan_new((uint32_t)o->channel, true, z->ke,
				    sizeof(z->ke), z->nonce_c, o->nonce);
		if (z->console != NULL && z->kind == TETHER_KIND_FILE)
			tether_chan_set_window(z->console, TETHER_FILE_WINDOW);
	}
	return 0;
}

static int fake_frame(void *arg, const uint8_t *raw, size_t len)
{
	struct fuzz *z = arg;
	const struct tether_frame f = fake_frame_of(CHANNEL, raw, len);
	const uint8_t *body;
	uint8_t msg;
	size_t n;

	CHECK(z->console != NULL);
	CHECK(tether_chan_open(z->console, &f, &msg, &body, &n) == 0);
	return 0;
}

static bool fake_room(void *arg)
{
	(void)arg;
	return true;
}

/* The console's message, sealed and delivered to the agent. */
static int deliver(void *arg, const uint8_t *raw, size_t len)
{
	struct fuzz *z = arg;
	const struct tether_frame f = fake_frame_of(CHANNEL, raw, len);

	agent_chans_frame(z->cs, &f);
	return 0;
}

/* What every input shares: the loop, quiet lines, the scratch root. */
static uv_loop_t loop;
static FILE *lines;
static struct agent_file_policy files;
static const struct agent_targets forwards;
static char dir[] = "/tmp/tether-fuzz-chan-XXXXXX";
static char in_dir[sizeof(dir) + 3];

static int remove_one(const char *path, const struct stat *st, int flag,
		      struct FTW *ftw)
{
	(void)st;
	(void)flag;
	if (ftw->level > 0)
		remove(path);
	return 0;
}

/* What a PUT wrote goes, so that inputs do not pile files up. */
static void empty_in_dir(void)
{
	nftw(in_dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int remove_all(const char *path, const struct stat *st, int flag,
		      struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static void remove_dir(void)
{
	nftw(dir, remove_all, 16, FTW_DEPTH | FTW_PHYS);
}

static void init_once(void)
{
	static bool done;
	char path[sizeof(dir) + 8];
	const char *why;
	FILE *fp;

	if (done)
		return;
	done = true;
	signal(SIGPIPE, SIG_IGN);
	CHECK(uv_loop_init(&loop) == 0);
	/* TETHER_FUZZ_VERBOSE=1 shows the customer's lines, for seeds. */
	lines = getenv("TETHER_FUZZ_VERBOSE") != NULL ? stderr
						      : fopen("/dev/null", "w");
	CHECK(lines != NULL);
	CHECK(mkdtemp(dir) != NULL);
	atexit(remove_dir);
	snprintf(in_dir, sizeof(in_dir), "%s/in", dir);
	snprintf(path, sizeof(path), "%s/a.txt", dir);
	fp = fopen(path, "w");
	CHECK(fp != NULL && fputs("hello", fp) >= 0 && fclose(fp) == 0);
	CHECK(mkdir(in_dir, 0700) == 0);
	/* Relative paths of GET and PUT are relative to the home. */
	CHECK(setenv("HOME", dir, 1) == 0);
	CHECK(agent_file_allow(&files.read, dir, &why) == 0);
	CHECK(agent_file_allow(&files.write, in_dir, &why) == 0);
}

static void run_records(struct fuzz *z, const uint8_t *p, size_t n)
{
	const struct tether_ctrl_chan_close close = {.channel = CHANNEL};
	size_t len;

	while (n >= 2) {
		len = (size_t)p[0] << 8 | p[1];
		p += 2;
		n -= 2;
		if (len == REC_CLOSE) {
			agent_chans_close(z->cs, &close);
			continue;
		}
		if (len == REC_DRAIN) {
			agent_chans_drain(z->cs);
			continue;
		}
		if (len == 0 || len > n)
			break;
		/* A console would not overrun its window: neither do we. */
		if (z->console != NULL)
			tether_chan_send_to(z->console, deliver, z, p[0], p + 1,
					    len - 1);
		p += len;
		n -= len;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct agent_term_opts to = {.view = AGENT_VIEW_OFF,
				     .unattended = true};
	struct tether_ctrl_chan_open open = {.channel = CHANNEL,
					     .technician = "fuzz"};
	struct agent_chans_cfg cc;
	struct agent_term *term;
	struct fuzz z;
	size_t i;

	if (size < 1)
		return 0;
	init_once();
	memset(&z, 0, sizeof(z));
	for (i = 0; i < sizeof(z.ke); i++)
		z.ke[i] = (uint8_t)i;
	memset(z.nonce_c, 0x5c, sizeof(z.nonce_c));
	z.kind = (enum tether_kind)((data[0] & 0x7f) % TETHER_KINDS);
	to.out = to.err = lines;
	term = agent_term_new(&loop, &to);
	cc = (struct agent_chans_cfg){
	    .loop = &loop,
	    .term = term,
	    .files = &files,
	    .forwards = &forwards,
	    .io = {.ctrl = fake_ctrl,
		   .frame = fake_frame,
		   .room = fake_room,
		   .spawn = fake_no_spawn,
		   .spawn_pty = fake_no_spawn_pty,
		   .arg = &z},
	};
	z.cs = term != NULL ? agent_chans_new(&cc) : NULL;
	if (z.cs != NULL) {
		agent_chans_pair(z.cs, z.ke, sizeof(z.ke),
				 (data[0] & 0x80) != 0 ? 0 : AGENT_CAP(z.kind));
		open.kind = z.kind;
		memcpy(open.nonce, z.nonce_c, sizeof(open.nonce));
		agent_chans_open(z.cs, &open);
		run_records(&z, data + 1, size - 1);
	}
	/* Everything closes before the loop runs: nothing connects. */
	agent_chans_free(z.cs);
	agent_term_free(term);
	uv_run(&loop, UV_RUN_DEFAULT);
	tether_chan_free(z.console);
	empty_in_dir();
	return 0;
}
