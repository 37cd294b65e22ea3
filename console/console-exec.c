/*
 * `tether exec T-N -- CMD [ARGS...]`: runs CMD remotely (no shell) on an
 * exec channel.  Its own part is the arguments and the EXEC message; the
 * session, the channel and the streaming are console-chan.c's.
 */
#include <getopt.h>
#include <string.h>

#include <tether/buf.h>
#include <tether/chan.h>
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

/* EXEC: u32 argc, argc strings. */
static int exec_start(struct console_run *r, void *arg)
{
	const struct exec_args *a = arg;
	struct tether_buf *b = tether_buf_new(TETHER_CHAN_BODY_MAX);
	int built = b != NULL ? console_run_put_args(b, a->argc, a->argv) : 0;

	return console_run_send(r, TETHER_MSG_EXEC, b, built);
}

int console_exec(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char ticket[CONSOLE_TICKET_MAX];
	struct console_run_ops ops;
	struct exec_args a;
	int opt;

	/* "+": stop at the first operand, CMD's own options are not ours. */
	optind = 0;
	while ((opt = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
		if (opt != 'h')
			return console_bad_option("exec", opt, argv);
		fputs(exec_usage, stdout);
		return 0;
	}
	if (optind >= argc)
		return console_usage_error("exec", "expected T-N -- CMD");
	if (console_ticket_arg("exec", argv[optind], ticket, sizeof(ticket)))
		return CONSOLE_EXIT_USAGE;
	optind++;
	if (optind < argc && strcmp(argv[optind], "--") == 0)
		optind++;
	if (optind >= argc)
		return console_usage_error("exec", "expected CMD after --");

	a.argc = argc - optind;
	a.argv = argv + optind;
	memset(&ops, 0, sizeof(ops));
	ops.kind = TETHER_KIND_EXEC;
	ops.start = exec_start;
	ops.arg = &a;
	return console_run(ticket, &ops);
}
