/*
 * `tether exec T-N -- CMD [ARGS...]`: runs CMD remotely (no shell) on an
 * exec channel.  Its own part is the arguments and the EXEC message; the
 * session, the channel and the streaming are console-run.c's.
 */
#include <string.h>

#include <tether/buf.h>
#include <tether/chan.h>
#include <tether/msg.h>
#include <tether/proto.h>

#include "console.h"

static const char exec_usage[] =
    "Usage: tether exec T-N -- CMD [ARGS...]\n"
    "\n"
    "Runs CMD (no shell) on the machine whose agent joined T-N, with this\n"
    "standard input, output and error, and exits with its status (128 +\n"
    "signal if it was killed; 255 for tether's own errors).\n";

struct exec_args {
	int argc;
	char **argv;
};

/* EXEC: the command line, word for word. */
static int exec_start(struct console_run *r, void *arg)
{
	const struct exec_args *a = arg;
	const struct tether_msg_exec m = {.argc = (uint32_t)a->argc,
					  .argv = a->argv};
	struct tether_buf *b = tether_buf_new(TETHER_CHAN_BODY_MAX);
	int built = b != NULL ? tether_msg_encode_exec(b, &m) : 0;

	return console_run_send(r, TETHER_MSG_EXEC, b, built);
}

static const struct console_opts exec_opts = {
    .name = "exec",
    .usage = exec_usage,
    .flags = CONSOLE_OPTS_TICKET | CONSOLE_OPTS_IN_ORDER,
    .min = 1,
    .max = -1,
    .need = "expected T-N -- CMD",
};

int console_exec(int argc, char **argv)
{
	struct console_args args;
	struct exec_args a;
	const struct console_run_ops ops = {
	    .kind = TETHER_KIND_EXEC,
	    .start = exec_start,
	    .arg = &a,
	};
	int ret;

	ret = console_opts_parse(&exec_opts, argc, argv, NULL, &args);
	if (ret >= 0)
		return ret;
	if (args.argc == 0)
		return console_usage_error("exec", "expected CMD after --");

	a.argc = args.argc;
	a.argv = args.argv;
	return console_run(args.ticket, args.ticket_name, &ops);
}
