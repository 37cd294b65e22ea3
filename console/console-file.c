/*
 * `tether put T-N LOCAL... REMOTE` and `tether get T-N REMOTE... LOCAL`:
 * one file channel each.  Its own part is the arguments, the opening PUT
 * or GET, and the glue between console-run.c's driver and the shared
 * transfer engine (tether/xfer.h): for put the console is the sender, for
 * get the receiver.  What it prints: one "tether: PATH: REASON" line per
 * entry that failed, progress on a terminal, and with --json a summary on
 * standard output.  Exit status: 0 when every entry arrived verified, 1
 * when some failed (as scp), 255 when the connection or the protocol did,
 * 2 for bad usage.
 */
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <tether/alloc.h>
#include <tether/buf.h>
#include <tether/chan.h>
#include <tether/err.h>
#include <tether/msg.h>
#include <tether/proto.h>
#include <tether/text.h>
#include <tether/xfer.h>

#include "console.h"

/* Exit status when some entries did not arrive, or LOCAL is unusable. */
#define EXIT_SOME_FAILED 1

static const char file_usage[] =
    "Usage: tether put T-N [-r] [-q] [--no-compress] [--json] LOCAL... "
    "REMOTE\n"
    "       tether get T-N [-r] [-q] [--no-compress] [--json] REMOTE... "
    "LOCAL\n"
    "\n"
    "Copies files to (put) or from (get) the machine whose agent joined\n"
    "T-N.  Relative remote paths are relative to the customer's home;\n"
    "get expands globs (*, ?, [...]) on the agent, so quote them.  A\n"
    "destination that is an existing directory receives the items inside\n"
    "it; otherwise it is the new name of the single item.  Every file is\n"
    "checked with SHA-256 and appears under its final name only once it\n"
    "verified; the same command run again after a broken transfer\n"
    "resumes each partial file where it stopped.\n"
    "\n"
    "Options:\n"
    "  -r, --recursive    copy directories with their trees\n"
    "  -q, --quiet        no progress display\n"
    "      --no-compress  never compress what crosses\n"
    "      --json         print a summary as JSON on standard output\n"
    "  -h, --help         show this help\n"
    "\n"
    "Exit status: 0 when everything arrived, 1 when some entries failed\n"
    "(each says why on standard error), 2 for bad usage, 255 when the\n"
    "connection or the protocol failed (run the command again to resume).\n";

enum { OPT_NO_COMPRESS = CONSOLE_OPT_OWN };

/* One put or get, from the command line to the summary. */
struct file_cmd {
	const char *cmd; /* "put" or "get" */
	bool put;
	bool json;
	bool quiet;
	unsigned int flags;	  /* TETHER_XFER_RECURSIVE, _NO_COMPRESS */
	struct console_args args; /* the ticket and the operands */
	char **srcs;
	int nsrc;
	const char *dest;
	struct console_run *run;
	struct tether_xfer_io io;
	struct tether_xfer_cbs cbs;
	struct tether_xfer_send *send; /* put */
	struct tether_xfer_recv *recv; /* get */
	struct console_progress progress;
	json_t *files; /* --json: the entries so far */
	bool json_nomem;
	bool done; /* both XFER_ENDs crossed: the outcome is known */
	double seconds;
	uint64_t failures;
	uint64_t bytes; /* sizes of the files that arrived */
	uint64_t sent;
	uint64_t wire;
};

/* The engine's channel: the runner, once it has opened one. */
static int io_send(void *arg, uint8_t msg, const void *body, size_t len)
{
	struct file_cmd *x = arg;

	if (x->run == NULL)
		return TETHER_ERR_CLOSED;
	return console_run_send_msg(x->run, msg, body, len);
}

static size_t io_window(void *arg)
{
	struct file_cmd *x = arg;

	return x->run != NULL ? console_run_window(x->run) : 0;
}

static int io_consumed(void *arg, size_t n)
{
	struct file_cmd *x = arg;

	if (x->run == NULL)
		return TETHER_ERR_CLOSED;
	return console_run_consumed(x->run, n);
}

/* Ends the run for an error the engine returned, in words. */
static void engine_failed(struct file_cmd *x, int err)
{
	switch (err) {
	case TETHER_ERR_CLOSED:
		/* The link is going: the runner says why once it has. */
		break;
	case TETHER_ERR_NOMEM:
		console_run_fail(x->run, "out of memory", NULL);
		break;
	case TETHER_ERR_PROTOCOL:
	case TETHER_ERR_FORMAT:
	case TETHER_ERR_TOO_LARGE:
	case TETHER_ERR_TRAILING_DATA:
	case TETHER_ERR_INCOMPLETE:
		console_run_fail(
		    x->run, "channel protocol error: ", tether_strerror(err));
		break;
	default:
		/* A send that failed was reported already; the first wins. */
		console_run_fail(
		    x->run, "file transfer failed: ", tether_strerror(err));
		break;
	}
}

/* Both XFER_ENDs crossed: the agent's CLOSE follows, with our status. */
static void check_done(struct file_cmd *x)
{
	uint64_t failures;
	bool done;

	if (x->done || !console_run_active(x->run))
		return;
	done = x->put ? tether_xfer_send_done(x->send)
		      : tether_xfer_recv_done(x->recv);
	if (!done)
		return;
	x->done = true;
	x->seconds = console_progress_seconds(&x->progress);
	failures = x->put ? tether_xfer_send_failures(x->send)
			  : tether_xfer_recv_failures(x->recv);
	if (failures > x->failures)
		x->failures = failures;
	console_run_set_status(x->run, x->failures > 0 ? EXIT_SOME_FAILED : 0);
}

/* Sends what the window allows (put: we are the sender). */
static void pump(struct file_cmd *x)
{
	int err;

	if (!x->put || x->done || !console_run_active(x->run))
		return;
	err = tether_xfer_send_pump(x->send);
	if (err != 0)
		engine_failed(x, err);
}

static void file_msg(struct console_run *r, void *arg, uint8_t msg,
		     const uint8_t *body, size_t len)
{
	struct file_cmd *x = arg;
	int err;

	(void)r;
	if (x->put)
		err = tether_xfer_send_input(x->send, msg, body, len);
	else
		err = tether_xfer_recv_input(x->recv, msg, body, len);
	if (err != 0) {
		engine_failed(x, err);
		return;
	}
	/* An ACCEPT lets a file's blocks go. */
	pump(x);
	check_done(x);
}

static void file_room(struct console_run *r, void *arg)
{
	(void)r;
	pump(arg);
}

static void json_add_file(struct file_cmd *x, const struct tether_xfer_file *f)
{
	json_t *o;

	if (x->files == NULL || x->json_nomem)
		return;
	o = json_pack(
	    "{s:o, s:o, s:s, s:I, s:s, s:I, s:I, s:I, s:I, s:b, s:o}", "path",
	    console_json_path(f->path), "local", console_json_path(f->local),
	    "type", tether_xfer_type_name(f->type), "size", (json_int_t)f->size,
	    "sha256", f->sha256, "offset", (json_int_t)f->offset, "sent",
	    (json_int_t)f->sent, "wire", (json_int_t)f->wire, "ms",
	    (json_int_t)f->ms, "ok", f->ok, "reason",
	    console_json_path(f->ok ? "" : f->reason));
	if (o == NULL || json_array_append_new(x->files, o) != 0)
		x->json_nomem = true;
}

/* One entry finished: a failure says why, a file that arrived shows so. */
static void file_entry(void *arg, const struct tether_xfer_file *f)
{
	struct file_cmd *x = arg;

	if (!f->ok) {
		x->failures++;
		console_progress_clear(&x->progress);
		fputs("tether: ", stderr);
		tether_text_print_clean(stderr, f->path);
		fputs(": ", stderr);
		tether_text_print_clean(stderr, f->reason != NULL &&
							f->reason[0] != '\0'
						    ? f->reason
						    : "failed");
		fputc('\n', stderr);
	} else if (f->type == TETHER_XFER_FILE) {
		x->bytes += f->size;
		console_progress_file_done(&x->progress, f->path, f->size,
					   f->offset, f->sent, f->ms);
	}
	x->sent += f->sent;
	x->wire += f->wire;
	json_add_file(x, f);
}

static void file_progress(void *arg, const struct tether_xfer_progress *p)
{
	struct file_cmd *x = arg;

	console_progress_update(&x->progress, p->path, p->file_done,
				p->file_size, p->total_done);
}

/* PUT: the destination.  GET: the paths or globs asked for. */
static int build_open(const struct file_cmd *x, struct tether_buf *b)
{
	const struct tether_msg_put put = {.flags = (uint8_t)x->flags,
					   .dest = x->dest};
	const struct tether_msg_get get = {.flags = (uint8_t)x->flags,
					   .n = (uint32_t)x->nsrc,
					   .paths = x->srcs};

	return x->put ? tether_msg_encode_put(b, &put)
		      : tether_msg_encode_get(b, &get);
}

static int file_start(struct console_run *r, void *arg)
{
	struct file_cmd *x = arg;
	struct tether_buf *b = tether_buf_new(TETHER_CHAN_BODY_MAX);
	int built = b != NULL ? build_open(x, b) : 0;

	x->run = r;
	/* The clock starts as the channel opens: --json's "seconds". */
	console_progress_init(&x->progress,
			      !x->quiet && isatty(STDERR_FILENO) == 1,
			      (x->flags & TETHER_XFER_RECURSIVE) != 0);
	if (console_run_send(r, x->put ? TETHER_MSG_PUT : TETHER_MSG_GET, b,
			     built) != 0)
		return -1;
	/* The sender never waits for an answer to PUT: entries follow. */
	pump(x);
	return 0;
}

static void file_finish(struct console_run *r, void *arg)
{
	struct file_cmd *x = arg;

	(void)r;
	console_progress_finish(&x->progress, x->done);
}

/* The driver's own lines ("tether: remote: ...") start on a clean line. */
static void file_clear(struct console_run *r, void *arg)
{
	struct file_cmd *x = arg;

	(void)r;
	console_progress_clear(&x->progress);
}

/* --json, on standard output; 0 or -1 once reported. */
static int print_summary(const struct file_cmd *x)
{
	/* Milliseconds are plenty, and print without binary noise. */
	double secs = (double)(long long)(x->seconds * 1000 + 0.5) / 1000;
	json_t *o;
	int ret = -1;

	if (x->json_nomem) {
		console_error("out of memory");
		return -1;
	}
	o = json_pack("{s:s, s:s, s:b, s:O, s:I, s:I, s:I, s:f, s:I}", "ticket",
		      x->args.ticket_name, "direction", x->put ? "put" : "get",
		      "ok", x->failures == 0, "files", x->files, "bytes",
		      (json_int_t)x->bytes, "sent", (json_int_t)x->sent, "wire",
		      (json_int_t)x->wire, "seconds", secs, "failures",
		      (json_int_t)x->failures);
	if (o == NULL)
		console_error("out of memory");
	else
		ret = console_json_print(o);
	json_decref(o);
	return ret;
}

/*
 * get with several REMOTEs needs a directory to put them in; the engine
 * checks the rest (a missing parent, one glob matching several).
 */
static int check_local_dest(const struct file_cmd *x)
{
	struct stat st;

	if (x->put || x->nsrc < 2)
		return 0;
	if (stat(x->dest, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	fputs("tether: ", stderr);
	tether_text_print_clean(stderr, x->dest);
	fputs(": not a directory (several REMOTEs need one)\n", stderr);
	return -1;
}

/* The engine's end for this side; 0, or the exit status once reported. */
static int make_engine(struct file_cmd *x)
{
	char err[TETHER_MSG_REASON_MAX];
	int i;

	x->io.send = io_send;
	x->io.window = io_window;
	x->io.consumed = io_consumed;
	x->io.arg = x;
	x->cbs.on_file = file_entry;
	x->cbs.on_progress = file_progress;
	x->cbs.arg = x;
	if (x->json && (x->files = json_array()) == NULL)
		goto nomem;
	if (!x->put) {
		if (check_local_dest(x) != 0)
			return EXIT_SOME_FAILED;
		err[0] = '\0';
		x->recv = tether_xfer_recv_new(x->dest, &x->io, &x->cbs, err,
					       sizeof(err));
		/* Only what was asked for may land: the agent is not trusted.
		 */
		if (x->recv != NULL &&
		    tether_xfer_recv_expect(x->recv, x->srcs, (size_t)x->nsrc,
					    x->flags) != 0)
			goto nomem;
		if (x->recv != NULL)
			return 0;
		/* The reason names the path at fault (LOCAL or its parent). */
		console_error_text("", err[0] != '\0' ? err : x->dest);
		return EXIT_SOME_FAILED;
	}
	x->send = tether_xfer_send_new(&x->io, &x->cbs, x->flags);
	if (x->send == NULL)
		goto nomem;
	for (i = 0; i < x->nsrc; i++)
		if (tether_xfer_send_add(x->send, x->srcs[i], NULL) != 0)
			goto nomem;
	return 0;
nomem:
	console_error("out of memory");
	return CONSOLE_EXIT_FAIL;
}

static const struct option file_longs[] = {
    {"recursive", no_argument, NULL, 'r'},
    {"quiet", no_argument, NULL, 'q'},
    {"no-compress", no_argument, NULL, OPT_NO_COMPRESS},
    {NULL, 0, NULL, 0},
};

static int file_option(void *arg, int opt, char *optarg)
{
	struct file_cmd *x = arg;

	(void)optarg;
	if (opt == 'r')
		x->flags |= TETHER_XFER_RECURSIVE;
	else if (opt == 'q')
		x->quiet = true;
	else
		x->flags |= TETHER_XFER_NO_COMPRESS;
	return -1;
}

/* put's; get has its own name and words for the operands. */
static const struct console_opts file_opts = {
    .name = "put",
    .usage = file_usage,
    .shorts = "rq",
    .longs = file_longs,
    .flags = CONSOLE_OPTS_JSON | CONSOLE_OPTS_TICKET,
    .min = 3,
    .max = -1,
    .need = "expected T-N LOCAL... REMOTE",
    .option = file_option,
};

/* Options and operands; -1 to go on, else the exit status to return. */
static int parse_args(struct file_cmd *x, int argc, char **argv)
{
	struct console_opts o = file_opts;
	struct console_args *a = &x->args;
	int i, r;

	if (!x->put) {
		o.name = "get";
		o.need = "expected T-N REMOTE... LOCAL";
	}
	r = console_opts_parse(&o, argc, argv, x, a);
	if (r >= 0)
		return r;
	x->json = a->json;
	x->srcs = a->argv;
	x->nsrc = a->argc - 1;
	x->dest = a->argv[a->argc - 1];
	if (!x->put && x->nsrc > TETHER_MSG_PATTERNS_MAX)
		return console_usage_error(x->cmd, "at most %d REMOTEs",
					   TETHER_MSG_PATTERNS_MAX);
	for (i = 0; i < a->argc; i++)
		if (a->argv[i][0] == '\0')
			return console_usage_error(x->cmd, "empty path");
	return -1;
}

static int file_main(const char *cmd, bool put, int argc, char **argv)
{
	struct file_cmd x;
	const struct console_run_ops ops = {
	    .kind = TETHER_KIND_FILE,
	    .no_stdin = true,
	    .start = file_start,
	    .finish = file_finish,
	    .clear = file_clear,
	    .on_msg = file_msg,
	    .on_room = file_room,
	    .arg = &x,
	};
	int status;

	memset(&x, 0, sizeof(x));
	x.cmd = cmd;
	x.put = put;
	status = parse_args(&x, argc, argv);
	if (status >= 0)
		return status;
	status = make_engine(&x);
	if (status == 0) {
		status = console_run(x.args.ticket, x.args.ticket_name, &ops);
		/* A summary only for a transfer that ran to its end. */
		if (x.json && x.done &&
		    (status == 0 || status == EXIT_SOME_FAILED) &&
		    print_summary(&x) != 0)
			status = CONSOLE_EXIT_FAIL;
	}
	tether_xfer_send_free(x.send);
	tether_xfer_recv_free(x.recv);
	json_decref(x.files);
	return status;
}

int console_put(int argc, char **argv)
{
	return file_main("put", true, argc, argv);
}

int console_get(int argc, char **argv)
{
	return file_main("get", false, argc, argv);
}
