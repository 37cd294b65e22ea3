/*
 * tether-agent: the program a customer runs to let a technician in.
 * Command line (docs/cli.md), the code (parsed, turned into the SPAKE2 w
 * and wiped at once), the event loop, and the few output helpers every
 * file shares.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tether/alloc.h>
#include <tether/crypto.h>
#include <tether/err.h>
#include <tether/log.h>

#include "agent.h"

#define EXIT_USAGE 2
#define FP_PREFIX "SHA256:"
#define FP_B64_LEN 43

static const char usage_text[] =
    "usage: " AGENT_PROG " join CODE --relay HOST:PORT "
    "[--fingerprint SHA256:...] [--yes]\n"
    "                    [--view | --no-view] [--allow-write DIR]... "
    "[--allow-read DIR]...\n"
    "                    [--allow-forward HOST:PORT]...\n"
    "       " AGENT_PROG " enroll --relay HOST:PORT --token TOKEN "
    "[--fingerprint SHA256:...]\n"
    "                    [--name NAME] [--label KEY=VALUE]... "
    "[--config FILE] [--yes] [--json]\n"
    "       " AGENT_PROG " run [--config FILE] [-v]\n"
    "       " AGENT_PROG " check [--config FILE] [--json]\n"
    "       " AGENT_PROG " diag [--json] [-o FILE]\n"
    "       " AGENT_PROG " --help | --version\n";

static const char help_text[] =
    "\n"
    "Lets a technician run commands and shells on this computer, copy\n"
    "files to and from it, and connect through it to TCP ports (such as\n"
    "its ssh server), for one support ticket.  CODE is the code the\n"
    "technician gave you.\n"
    "\n"
    "  --relay HOST:PORT         the relay your technician named\n"
    "  --fingerprint SHA256:...  the relay's fingerprint; without it\n"
    "                            you are shown it and asked\n"
    "  --yes                     do not ask: trust the relay and\n"
    "                            allow the connection\n"
    "  --no-view                 do not show what the technician's\n"
    "                            shells print (shown by default when\n"
    "                            the output is a terminal)\n"
    "  --view                    show it even when it is not\n"
    "  --allow-write DIR         let file transfers write only in DIR\n"
    "                            (repeatable; default: your home\n"
    "                            directory and /tmp)\n"
    "  --allow-read DIR          let file transfers read only in DIR\n"
    "                            (repeatable; default: any file you\n"
    "                            can read)\n"
    "  --allow-forward HOST:PORT let the technician connect to HOST:PORT\n"
    "                            (repeatable; 127.0.0.1:22 and\n"
    "                            localhost:22 are always allowed; you\n"
    "                            are asked about any other target, and\n"
    "                            without a terminal it is refused)\n"
    "  -v, --verbose             log details to stderr\n"
    "\n"
    "Each command the technician runs, each file copied and each\n"
    "connection forwarded is shown here.  Press Ctrl-C to end the\n"
    "session.  While a shell is open, press v to show or hide it, and q\n"
    "to end the session.\n";

static void vsay(FILE *fp, const char *fmt, va_list ap)
{
	/* Not in the middle of a line a shell printed in the live view. */
	agent_term_newline();
	fputs(AGENT_PROG ": ", fp);
	vfprintf(fp, fmt, ap);
	fputc('\n', fp);
	fflush(fp);
}

void agent_say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay(stdout, fmt, ap);
	va_end(ap);
}

void agent_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay(stderr, fmt, ap);
	va_end(ap);
}

/*
 * Length of the valid UTF-8 sequence at s (0 if invalid or a C1 control):
 * no overlong forms, no surrogates, nothing above U+10FFFF.
 */
static size_t utf8_len(const unsigned char *s)
{
	unsigned cp, min;
	size_t n, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		cp = s[0] & 0x1f;
		min = 0xa0; /* U+0080..U+009F are C1 controls */
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		cp = s[0] & 0x0f;
		min = 0x800;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		cp = s[0] & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

void agent_clean(const char *in, char *out, size_t outlen)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t pos = 0, n;

	if (outlen == 0)
		return;
	while (*s != '\0') {
		n = utf8_len(s);
		if (n == 1 && (*s < 0x20 || *s == 0x7f))
			n = 0;
		if (n == 0) {
			if (pos + 1 >= outlen)
				break;
			out[pos++] = '?';
			s++;
			continue;
		}
		if (pos + n >= outlen)
			break;
		memcpy(out + pos, s, n);
		pos += n;
		s += n;
	}
	out[pos] = '\0';
}

/* HOST:PORT, [V6]:PORT, or HOST alone for the default port. */
static int parse_relay(const char *s, struct agent *a)
{
	const char *h = s, *hend, *port = NULL;
	uint16_t p;
	size_t hl;

	if (s[0] == '[') {
		h = s + 1;
		hend = strchr(h, ']');
		if (hend == NULL || (hend[1] != ':' && hend[1] != '\0'))
			return TETHER_ERR_FORMAT;
		if (hend[1] == ':')
			port = hend + 2;
	} else {
		hend = strchr(s, ':');
		if (hend != NULL && strchr(hend + 1, ':') != NULL)
			return TETHER_ERR_FORMAT; /* bare IPv6: use [] */
		if (hend != NULL)
			port = hend + 1;
		else
			hend = s + strlen(s);
	}
	hl = (size_t)(hend - h);
	if (hl == 0 || hl >= sizeof(a->host))
		return TETHER_ERR_FORMAT;
	memcpy(a->host, h, hl);
	a->host[hl] = '\0';
	a->port = TETHER_DEFAULT_PORT;
	if (port == NULL)
		return 0;
	if (agent_parse_port(port, &p) != 0)
		return TETHER_ERR_FORMAT;
	a->port = p;
	return 0;
}

bool agent_fingerprint_valid(const char *fp)
{
	size_t i, plen = strlen(FP_PREFIX);

	if (strncmp(fp, FP_PREFIX, plen) != 0 ||
	    strlen(fp) != plen + FP_B64_LEN)
		return false;
	for (i = plen; fp[i] != '\0'; i++) {
		char c = fp[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '+' || c == '/'))
			return false;
	}
	return true;
}

static int usage(const char *msg, const char *arg)
{
	if (msg != NULL)
		fprintf(stderr, AGENT_PROG ": %s%s%s\n", msg,
			arg != NULL ? ": " : "", arg != NULL ? arg : "");
	fputs(usage_text, stderr);
	return EXIT_USAGE;
}

/*
 * "--allow-write DIR: No such file or directory", then the usage (also
 * for a bad --allow-forward).
 */
static int bad_root(const char *opt, const char *dir, const char *why)
{
	char what[512];

	snprintf(what, sizeof(what), "%s %s", opt, dir);
	return usage(what, why);
}

static int help(void)
{
	fputs(usage_text, stdout);
	fputs(help_text, stdout);
	return 0;
}

const char *agent_opt_value(int argc, char **argv, int *i, const char *name,
			    bool *missing)
{
	size_t n = strlen(name);
	const char *arg = argv[*i];

	if (strncmp(arg, name, n) != 0)
		return NULL;
	if (arg[n] == '=')
		return arg + n + 1;
	if (arg[n] != '\0')
		return NULL;
	if (*i + 1 >= argc) {
		*missing = true;
		return NULL;
	}
	return argv[++*i];
}

/*
 * Fills a from the command line; *code_arg is the index of CODE.
 * Returns -1 to go on, else the exit status.
 */
static int parse_args(int argc, char **argv, struct agent *a, int *code_arg)
{
	bool missing = false, verbose = false;
	const char *relay = NULL, *fp = NULL, *v, *why;
	int i;

	*code_arg = 0;
	if (argc < 2)
		return usage(NULL, NULL);
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
		return help();
	if (strcmp(argv[1], "--version") == 0) {
		puts(AGENT_PROG " " TETHER_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "join") != 0)
		return usage("unknown command", argv[1]);
	for (i = 2; i < argc; i++) {
		const char *arg = argv[i];

		if ((v = agent_opt_value(argc, argv, &i, "--relay", &missing)))
			relay = v;
		else if ((v = agent_opt_value(argc, argv, &i, "--fingerprint",
					      &missing)))
			fp = v;
		else if ((v = agent_opt_value(argc, argv, &i, "--allow-write",
					      &missing))) {
			if (agent_file_allow(&a->write_roots, v, &why) != 0)
				return bad_root("--allow-write", v, why);
		} else if ((v = agent_opt_value(argc, argv, &i, "--allow-read",
						&missing))) {
			if (agent_file_allow(&a->read_roots, v, &why) != 0)
				return bad_root("--allow-read", v, why);
		} else if ((v = agent_opt_value(argc, argv, &i,
						"--allow-forward", &missing))) {
			if (agent_forward_allow(a, v, &why) != 0)
				return bad_root("--allow-forward", v, why);
		} else if (missing)
			return usage("option needs a value", arg);
		else if (strcmp(arg, "--yes") == 0 || strcmp(arg, "-y") == 0)
			a->yes = true;
		else if (strcmp(arg, "--view") == 0)
			a->view = AGENT_VIEW_ON;
		else if (strcmp(arg, "--no-view") == 0)
			a->view = AGENT_VIEW_OFF;
		else if (strcmp(arg, "--verbose") == 0 ||
			 strcmp(arg, "-v") == 0)
			verbose = true;
		else if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
			return help();
		else if (arg[0] == '-' && arg[1] != '\0')
			return usage("unknown option", arg);
		else if (*code_arg != 0)
			return usage("more than one code given (quote a code "
				     "with spaces)",
				     NULL);
		else
			*code_arg = i;
	}
	if (missing)
		return usage("option needs a value", argv[argc - 1]);
	if (*code_arg == 0)
		return usage("missing CODE", NULL);
	if (relay == NULL)
		return usage("missing --relay HOST:PORT", NULL);
	if (parse_relay(relay, a) != 0)
		return usage("invalid --relay (want HOST:PORT)", relay);
	if (fp != NULL) {
		if (!agent_fingerprint_valid(fp))
			return usage("invalid --fingerprint (want SHA256:...)",
				     fp);
		memcpy(a->pin, fp, strlen(fp) + 1);
		a->has_pin = true;
	}
	if (agent_file_policy_init(a) != 0) {
		agent_warn("out of memory");
		return 1;
	}
	if (verbose)
		tether_log_set_level(TETHER_LOG_DEBUG);
	return -1;
}

/*
 * Parses the code and derives w from its words; the code itself is wiped,
 * also from argv so that ps no longer shows it.  The nameplate is kept.
 */
static int take_code(struct agent *a, char *code)
{
	char norm[TETHER_CODE_MAX];
	const char *why = NULL, *words;
	int r;

	r = tether_code_parse(code, norm, sizeof(norm), a->nameplate,
			      sizeof(a->nameplate), &why);
	tether_wipe(code, strlen(code));
	if (r != 0) {
		agent_warn("invalid code: %s",
			   why != NULL ? why : tether_strerror(r));
		goto out;
	}
	/* The password is the words part: after the nameplate's dash. */
	words = strchr(norm, '-');
	if (words == NULL) {
		r = TETHER_ERR_FORMAT;
		agent_warn("invalid code");
		goto out;
	}
	r = tether_spake2_password_to_w(words + 1, TETHER_PAKE_W_SALT, a->w);
	if (r != 0) {
		agent_warn("cannot derive the pairing key: %s",
			   tether_strerror(r));
		goto out;
	}
	a->have_w = true;
out:
	tether_wipe(norm, sizeof(norm));
	return r;
}

#ifdef TETHER_TEST_HOOKS
/*
 * TETHER_TEST_LEAK=1 loses 4242 bytes on purpose, so that the e2e tests
 * can show that a leak in the agent fails them (tests/e2e/test_leak.c).
 * Lost at start-up: by exit the stack that held the pointer has been
 * reused, so LeakSanitizer cannot find it there and call it reachable.
 */
static void __attribute__((noinline)) test_leak(void)
{
	char *volatile p;

	if (getenv("TETHER_TEST_LEAK") == NULL)
		return;
	p = tether_malloc(4242);
	if (p != NULL)
		memset(p, 0x5a, 4242);
	p = NULL;
}
#else
#define test_leak() do { } while (0)
#endif /* TETHER_TEST_HOOKS */

int main(int argc, char **argv)
{
	static struct agent agent;
	struct agent *a = &agent;
	uv_loop_t loop;
	int code_arg, r;

	/*
	 * A file transfer past RLIMIT_FSIZE gets EFBIG ("File too large")
	 * and fails that file, instead of the signal killing the agent.
	 */
	signal(SIGXFSZ, SIG_IGN);
	test_leak();
	tether_log_set_ident(AGENT_PROG);
	tether_log_set_level(TETHER_LOG_WARN);
	if (argc > 1 && strcmp(argv[1], "enroll") == 0)
		return agent_enroll_main(argc, argv);
	if (argc > 1 && strcmp(argv[1], "run") == 0)
		return agent_run_main(argc, argv);
	if (argc > 1 && strcmp(argv[1], "check") == 0)
		return agent_check_main(argc, argv);
	if (argc > 1 && strcmp(argv[1], "diag") == 0)
		return agent_diag_main(argc, argv);
	r = parse_args(argc, argv, a, &code_arg);
	if (r >= 0)
		goto out;
	if (take_code(a, argv[code_arg]) != 0) {
		r = 1;
		goto out;
	}
	/* A child that closes its stdin must not take the agent with it. */
	signal(SIGPIPE, SIG_IGN);
	if (uv_loop_init(&loop) != 0) {
		agent_warn("cannot start the event loop");
		r = 1;
		goto out;
	}
	a->loop = &loop;
	a->tls = tether_tls_ctx_new_client();
	a->lctx = a->tls != NULL ? tether_link_ctx_new(a->tls) : NULL;
	if (a->lctx == NULL) {
		tether_tls_ctx_free(a->tls);
		agent_warn("cannot set up TLS");
		r = 1;
		goto out_loop;
	}
	agent_session_start(a);
	uv_run(&loop, UV_RUN_DEFAULT);
	r = a->exit_code;
	/* agent_finish() has put the terminal back; this is belt and braces. */
	agent_term_restore();
	uv_run(&loop, UV_RUN_NOWAIT);
	tether_link_ctx_free(a->lctx);
	tether_tls_ctx_free(a->tls);
out_loop:
	uv_run(&loop, UV_RUN_NOWAIT);
	uv_loop_close(&loop);
out:
	agent_session_free(a);
	agent_file_policy_free(a);
	agent_forward_policy_free(a);
	return r;
}
