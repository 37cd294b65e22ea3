/*
 * The prologue of every command's option parsing: getopt_long with the
 * command's own options plus -h/--help and, where it has one, --json; the
 * operand count; the T-N operand in its canonical form; and the usage
 * errors, one line each ending "(see: tether CMD --help)", exit 2.  What
 * each command accepts is docs/cli.md's; this file only makes them say it
 * the same way.
 */
#include <stdarg.h>
#include <string.h>

#include <tether/num.h>

#include "console.h"

int console_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fputs("tether: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see: tether %s%s--help)\n", cmd != NULL ? cmd : "",
		cmd != NULL ? " " : "");
	return CONSOLE_EXIT_USAGE;
}

int console_bad_option(const char *cmd, int opt, char **argv)
{
	const char *arg = argv[optind - 1];
	size_t len = strcspn(arg, "=");

	if (opt == ':')
		return console_usage_error(cmd, "option %.*s needs a value",
					   (int)len, arg);
	return console_usage_error(cmd, "unknown option %.*s", (int)len, arg);
}

int console_opts_ticket(const char *cmd, const char *arg, int64_t *id,
			char *name, size_t len)
{
	if (tether_id_ticket_parse_arg(arg, id) != 0 ||
	    tether_id_ticket_format(*id, name, len) != 0)
		return console_usage_error(cmd, "bad ticket %s (expected T-N)",
					   arg);
	return 0;
}

int console_opts_number(const char *s, uint64_t min, uint64_t max,
			uint64_t *out)
{
	const char *p = s;
	uint64_t v;

	/* Digits only, as people type them: leading zeros are fine. */
	if (s == NULL || *s < '0' || *s > '9' ||
	    tether_num_scan_u64(&p, &v) != 0 || *p != '\0' || v < min ||
	    v > max)
		return -1;
	*out = v;
	return 0;
}

/*
 * getopt_long's tables for o: its own options, then --json and --help.
 * 0, or -1 if o has more long options than there is room for (our bug).
 */
static int tables(const struct console_opts *o, char *shorts, size_t slen,
		  struct option *longs)
{
	static const struct option json = {"json", no_argument, NULL,
					   CONSOLE_OPT_JSON};
	static const struct option help = {"help", no_argument, NULL, 'h'};
	static const struct option end = {NULL, 0, NULL, 0};
	size_t n = 0;
	int w;

	/* "+": stop at the first operand; ":": we word the errors. */
	w = snprintf(shorts, slen, "%s:%sh",
		     (o->flags & CONSOLE_OPTS_IN_ORDER) != 0 ? "+" : "",
		     o->shorts != NULL ? o->shorts : "");
	if (w < 0 || (size_t)w >= slen)
		return -1;
	for (; o->longs != NULL && o->longs[n].name != NULL; n++)
		if (n == CONSOLE_OPTS_LONG_MAX)
			return -1;
		else
			longs[n] = o->longs[n];
	if ((o->flags & CONSOLE_OPTS_JSON) != 0)
		longs[n++] = json;
	longs[n++] = help;
	longs[n] = end;
	return 0;
}

/* The operands: their count, T-N, and what follows a "--" (REST). */
static int operands(const struct console_opts *o, int argc, int nargs,
		    char **argv, struct console_args *a)
{
	int nops = nargs - optind;

	if (nops < o->min || (o->max >= 0 && nops > o->max))
		return console_usage_error(o->name, "%s", o->need);
	a->argc = nops;
	a->argv = argv + optind;
	if ((o->flags & CONSOLE_OPTS_TICKET) != 0) {
		if (console_opts_ticket(o->name, a->argv[0], &a->ticket,
					a->ticket_name,
					sizeof(a->ticket_name)) != 0)
			return CONSOLE_EXIT_USAGE;
		a->argc--;
		a->argv++;
		if ((o->flags & CONSOLE_OPTS_IN_ORDER) != 0 && a->argc > 0 &&
		    strcmp(a->argv[0], "--") == 0) {
			a->argc--;
			a->argv++;
		}
	}
	if (nargs < argc) {
		a->has_rest = true;
		a->rest_argc = argc - nargs - 1;
		a->rest_argv = argv + nargs + 1;
	}
	return -1;
}

int console_opts_parse(const struct console_opts *o, int argc, char **argv,
		       void *arg, struct console_args *a)
{
	struct option longs[CONSOLE_OPTS_LONG_MAX + 3];
	char shorts[64];
	int opt, r, i, nargs = argc;

	memset(a, 0, sizeof(*a));
	if (tables(o, shorts, sizeof(shorts), longs) != 0) {
		console_error("internal error: too many options for %s",
			      o->name);
		return CONSOLE_EXIT_FAIL;
	}
	/* REST: everything after "--" is the command's, options or not. */
	for (i = 1; (o->flags & CONSOLE_OPTS_REST) != 0 && i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			nargs = i;
			break;
		}
	}
	/* Each command parses its own argv from the start. */
	optind = 0;
	while ((opt = getopt_long(nargs, argv, shorts, longs, NULL)) != -1) {
		if (opt == 'h') {
			fputs(o->usage, stdout);
			return 0;
		}
		if (opt == ':' || opt == '?')
			return console_bad_option(o->name, opt, argv);
		/* -j too, for the commands whose shorts list it. */
		if ((o->flags & CONSOLE_OPTS_JSON) != 0 &&
		    (opt == CONSOLE_OPT_JSON || opt == 'j')) {
			a->json = true;
			continue;
		}
		r = o->option != NULL ? o->option(arg, opt, optarg)
				      : console_bad_option(o->name, opt, argv);
		if (r >= 0)
			return r;
	}
	return operands(o, argc, nargs, argv, a);
}

int console_opts_duration(const char *arg, uint64_t max, int64_t *secs)
{
	static const char units[] = "smhd";
	static const uint64_t scale[] = {1, 60, 3600, 86400};
	const char *u;
	char num[16];
	size_t len;
	uint64_t v, mult = 1;

	if (arg == NULL || (len = strlen(arg)) == 0 || len >= sizeof(num))
		return -1;
	memcpy(num, arg, len + 1);
	u = strchr(units, num[len - 1]);
	if (u != NULL && *u != '\0') {
		mult = scale[u - units];
		num[len - 1] = '\0';
	}
	if (console_opts_number(num, 1, max, &v) != 0 || v > max / mult)
		return -1;
	*secs = (int64_t)(v * mult);
	return 0;
}
