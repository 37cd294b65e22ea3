/*
 * tether-agent join (join.h): the command line (docs/cli.md), the code
 * (parsed, turned into the SPAKE2 w and wiped at once), the customer's
 * policy (--allow-write, --allow-read, --allow-forward), then the session
 * on its own event loop.
 */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <tether/code.h>
#include <tether/crypto.h>
#include <tether/ctrl.h>
#include <tether/err.h>
#include <tether/id.h>
#include <tether/log.h>
#include <tether/proto.h>
#include <tether/spake2.h>

#include "diag/text.h"
#include "session/cli.h"
#include "session/file.h"
#include "session/forward.h"
#include "session/join.h"
#include "session/session.h"
#include "session/term.h"

/* What the command line says. */
struct join {
	struct agent_target relay;
	const char *pin;
	bool yes;
	bool has_allow;
	unsigned allow; /* 1 << enum tether_kind */
	enum agent_view view;
	struct agent_file_policy files;
	struct agent_targets forwards;
	/* Secrets: the nameplate is kept, w wiped after the session. */
	char nameplate[TETHER_CODE_NAMEPLATE_MAX + 1];
	uint8_t w[TETHER_SPAKE2_W_LEN];
};

static const char usage_text[] =
    "usage: " AGENT_PROG " join CODE --relay HOST:PORT "
    "[--fingerprint SHA256:...] [--yes]\n"
    "                    [--allow CAP[,CAP]...] [--view | --no-view]\n"
    "                    [--allow-write DIR]... "
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
    "  --allow CAP[,CAP]...      allow only these of what the technician\n"
    "                            asks for (exec, shell, file, forward,\n"
    "                            diag) without asking; you are shown\n"
    "                            what was asked and what was allowed\n"
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

static int usage(const char *msg, const char *arg)
{
	return agent_text_usage(AGENT_PROG, usage_text, msg, arg);
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

/*
 * "exec,diag" into 1 << enum tether_kind bits; -1 with *why for a word
 * that is not a capability, or none at all.
 */
static int parse_allow(const char *v, unsigned *bits, const char **why)
{
	char word[32];
	size_t n;
	int k;

	*bits = 0;
	while (*v != '\0') {
		n = strcspn(v, ",");
		if (n == 0 || n >= sizeof(word)) {
			*why = "want a list such as exec,diag";
			return -1;
		}
		memcpy(word, v, n);
		word[n] = '\0';
		k = tether_ctrl_word_of(kind, word);
		if (k < 0) {
			*why = "not a capability (exec, shell, file, forward, "
			       "diag)";
			return -1;
		}
		*bits |= 1u << k;
		v += n;
		if (*v == ',')
			v++;
	}
	if (*bits == 0) {
		*why = "want a list such as exec,diag";
		return -1;
	}
	return 0;
}

/*
 * Fills j from the command line; *code_arg is the index of CODE.
 * Returns -1 to go on, else the exit status.
 */
static int parse_args(int argc, char **argv, struct join *j, int *code_arg)
{
	bool missing = false, verbose = false;
	const char *relay = NULL, *v, *why;
	int i;

	*code_arg = 0;
	if (argc < 2)
		return usage(NULL, NULL);
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
		return help();
	if (strcmp(argv[1], "join") != 0)
		return usage("unknown command", argv[1]);
	for (i = 2; i < argc; i++) {
		const char *arg = argv[i];

		if ((v = agent_opt_value(argc, argv, &i, "--relay", &missing)))
			relay = v;
		else if ((v = agent_opt_value(argc, argv, &i, "--fingerprint",
					      &missing)))
			j->pin = v;
		else if ((v = agent_opt_value(argc, argv, &i, "--allow-write",
					      &missing))) {
			if (agent_file_allow(&j->files.write, v, &why) != 0)
				return bad_root("--allow-write", v, why);
		} else if ((v = agent_opt_value(argc, argv, &i, "--allow-read",
						&missing))) {
			if (agent_file_allow(&j->files.read, v, &why) != 0)
				return bad_root("--allow-read", v, why);
		} else if ((v = agent_opt_value(argc, argv, &i, "--allow",
						&missing))) {
			if (parse_allow(v, &j->allow, &why) != 0)
				return bad_root("--allow", v, why);
			j->has_allow = true;
		} else if ((v = agent_opt_value(argc, argv, &i,
						"--allow-forward", &missing))) {
			if (agent_forward_allow(&j->forwards, v, &why) != 0)
				return bad_root("--allow-forward", v, why);
		} else if (missing)
			return usage("option needs a value", arg);
		else if (strcmp(arg, "--yes") == 0 || strcmp(arg, "-y") == 0)
			j->yes = true;
		else if (strcmp(arg, "--view") == 0)
			j->view = AGENT_VIEW_ON;
		else if (strcmp(arg, "--no-view") == 0)
			j->view = AGENT_VIEW_OFF;
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
	if (agent_target_parse(relay, TETHER_DEFAULT_PORT, &j->relay, &why) !=
	    0)
		return usage("invalid --relay (want HOST:PORT)", relay);
	if (j->pin != NULL && !tether_id_fingerprint_valid(j->pin))
		return usage("invalid --fingerprint (want SHA256:...)", j->pin);
	if (agent_file_policy_init(&j->files) != 0) {
		agent_term_warn(NULL, "out of memory");
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
static int take_code(struct join *j, char *code)
{
	char norm[TETHER_CODE_MAX];
	const char *why = NULL, *words;
	int r;

	r = tether_code_parse(code, norm, sizeof(norm), j->nameplate,
			      sizeof(j->nameplate), &why);
	tether_wipe(code, strlen(code));
	if (r != 0) {
		agent_term_warn(NULL, "invalid code: %s",
				why != NULL ? why : tether_strerror(r));
		goto out;
	}
	/* The password is the words part: after the nameplate's dash. */
	words = strchr(norm, '-');
	if (words == NULL) {
		r = TETHER_ERR_FORMAT;
		agent_term_warn(NULL, "invalid code");
		goto out;
	}
	r = tether_spake2_password_to_w(words + 1, TETHER_PAKE_W_SALT, j->w);
	if (r != 0)
		agent_term_warn(NULL, "cannot derive the pairing key: %s",
				tether_strerror(r));
out:
	tether_wipe(norm, sizeof(norm));
	return r;
}

/* The session on a loop of its own. */
static int run(struct join *j)
{
	const struct agent_session_opts o = {
	    .host = j->relay.host,
	    .port = j->relay.port,
	    .pin = j->pin,
	    .yes = j->yes,
	    .has_allow = j->has_allow,
	    .allow = j->allow,
	    .view = j->view,
	    .files = &j->files,
	    .forwards = &j->forwards,
	    .nameplate = j->nameplate,
	    .w = j->w,
	};
	uv_loop_t loop;
	int r;

	/* A child that closes its stdin must not take the agent with it. */
	signal(SIGPIPE, SIG_IGN);
	if (uv_loop_init(&loop) != 0) {
		agent_term_warn(NULL, "cannot start the event loop");
		return 1;
	}
	r = agent_session_run(&loop, &o);
	uv_run(&loop, UV_RUN_NOWAIT);
	uv_loop_close(&loop);
	return r;
}

int agent_join_main(int argc, char **argv)
{
	static struct join j;
	int code_arg, r;

	r = parse_args(argc, argv, &j, &code_arg);
	if (r < 0)
		r = take_code(&j, argv[code_arg]) != 0 ? 1 : run(&j);
	tether_wipe(j.w, sizeof(j.w));
	tether_wipe(j.nameplate, sizeof(j.nameplate));
	agent_file_policy_free(&j.files);
	agent_targets_free(&j.forwards);
	return r;
}
