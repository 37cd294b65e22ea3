/*
 * tether-agent enroll: gives this machine a lasting identity on a relay
 * (docs/protocol.md, "Enrolled agents").  A new Ed25519 key is made
 * beside the config, the relay is trusted as join trusts it (a pin given,
 * or the fingerprint shown and accepted, through the same relay client),
 * the one-time token is spent with enroll, and only once the relay has
 * said enrolled are the key and
 * the config put in place: a failed enrolment leaves any earlier identity
 * as it was and no new files behind.
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <tether/alloc.h>
#include <tether/client.h>
#include <tether/crypto.h>
#include <tether/err.h>
#include <tether/id.h>
#include <tether/log.h>
#include <tether/sign.h>
#include <tether/tls.h>

#include "diag/text.h"
#include "service/config.h"
#include "service/enroll.h"
#include "session/cli.h"
#include "session/facts.h"
#include "session/term.h"

#define EXIT_USAGE 2
#define KEY_FILE "agent.key"
#define KEY_TMP_SUFFIX ".new"
#define TOKEN_MAX 128
/* From connecting to enrolled, not counting the customer's answer. */
#define ENROLL_TIMEOUT_MS 30000

struct enroll {
	uv_loop_t *loop;
	struct tether_client *client;
	struct agent_term *term;
	struct agent_question question;
	bool asking;
	uv_timer_t timer;
	uv_signal_t sigint;
	uv_signal_t sigterm;
	bool handles_up;
	bool ended;
	int exit_code;

	const char *relay; /* as given */
	struct agent_target target;
	char pin[TETHER_TLS_FP_LEN]; /* given, or the relay's once seen */
	bool has_pin;
	bool yes;
	bool json;
	bool enrolled;

	char token[TOKEN_MAX + 1]; /* secret: never printed */
	char name[TETHER_ID_NAME_MAX + 1];
	struct agent_labels labels;
	uint8_t pub[TETHER_SIGN_PUB_LEN];
	struct agent_facts facts;
};

static const char enroll_usage[] =
    "usage: " AGENT_PROG " enroll --relay HOST:PORT --token TOKEN "
    "[--fingerprint SHA256:...]\n"
    "                    [--name NAME] [--label KEY=VALUE]... "
    "[--config FILE] [--yes] [--json]\n";

/* The host name as an agent name: other bytes become '-', at most 64. */
static void name_from_host(const char *host, char *out, size_t outlen)
{
	size_t i;

	for (i = 0; host[i] != '\0' && i < TETHER_ID_NAME_MAX && i + 1 < outlen;
	     i++)
		out[i] = tether_id_name_char(host[i]) ? host[i] : '-';
	out[i] = '\0';
	if (i == 0)
		snprintf(out, outlen, "agent");
}

/*
 * KEY=VALUE: the key as a name, the value printable text (no control
 * characters, no line breaks, valid UTF-8) that the config file and relay
 * can hold.
 */
static int add_label(struct agent_labels *labels, const char *spec,
		     const char **why)
{
	char key[TETHER_ID_NAME_MAX + 1], clean[TETHER_ID_LABEL_VALUE_MAX + 1];
	const char *value;

	if (tether_id_label_parse(spec, key, sizeof(key), &value, why) != 0)
		return TETHER_ERR_FORMAT;
	agent_text_clean(value, clean, sizeof(clean));
	if (strcmp(clean, value) != 0) {
		*why = "a label value may not hold control characters";
		return TETHER_ERR_FORMAT;
	}
	if (labels->n >= TETHER_CTRL_LABELS_MAX &&
	    agent_labels_get(labels, key) == NULL) {
		*why = "too many labels";
		return TETHER_ERR_LIMIT;
	}
	return agent_labels_set(labels, key, value);
}

static int usage(const char *msg, const char *arg)
{
	return agent_text_usage(AGENT_PROG " enroll", enroll_usage, msg, arg);
}

/* Takes the token and wipes it from argv, so ps no longer shows it. */
static int take_token(struct enroll *e, char *arg)
{
	size_t n = strlen(arg), i;

	for (i = 0; i < n; i++)
		if (arg[i] <= ' ' || arg[i] > '~')
			break;
	if (n == 0 || n > TOKEN_MAX || i < n) {
		tether_wipe(arg, n);
		return TETHER_ERR_FORMAT;
	}
	memcpy(e->token, arg, n + 1);
	tether_wipe(arg, n);
	return 0;
}

/* argv[1] is "enroll".  Returns -1 to go on, else the exit status. */
static int parse_args(int argc, char **argv, struct enroll *e,
		      const char **config)
{
	bool missing = false, have_token = false;
	char what[128];
	const char *fp = NULL, *name = NULL, *v, *why;
	char *tok;
	int i;

	for (i = 2; i < argc; i++) {
		const char *arg = argv[i];

		if ((v = agent_opt_value(argc, argv, &i, "--relay", &missing)))
			e->relay = v;
		else if ((v = agent_opt_value(argc, argv, &i, "--token",
					      &missing))) {
			/* The same bytes, writable: argv[i] or after '='. */
			tok = argv[i] + (v - argv[i]);
			if (take_token(e, tok) != 0)
				return usage("invalid --token", NULL);
			have_token = true;
		} else if ((v = agent_opt_value(argc, argv, &i, "--fingerprint",
						&missing)))
			fp = v;
		else if ((v = agent_opt_value(argc, argv, &i, "--name",
					      &missing)))
			name = v;
		else if ((v = agent_opt_value(argc, argv, &i, "--label",
					      &missing))) {
			if (add_label(&e->labels, v, &why) != 0)
				return usage(why, v);
		} else if ((v = agent_opt_value(argc, argv, &i, "--config",
						&missing)))
			*config = v;
		else if (missing)
			return usage("option needs a value", arg);
		else if (strcmp(arg, "--yes") == 0 || strcmp(arg, "-y") == 0)
			e->yes = true;
		else if (strcmp(arg, "--json") == 0)
			e->json = true;
		else if (strcmp(arg, "--verbose") == 0 ||
			 strcmp(arg, "-v") == 0)
			tether_log_set_level(TETHER_LOG_DEBUG);
		else if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			fputs(enroll_usage, stdout);
			return 0;
		} else
			return usage("unknown argument", arg);
	}
	if (missing)
		return usage("option needs a value", argv[argc - 1]);
	if (e->relay == NULL)
		return usage("missing --relay HOST:PORT", NULL);
	/* As written: the config keeps it and run splits it the same way. */
	if (agent_target_parse(e->relay, 0, &e->target, &why) != 0) {
		snprintf(what, sizeof(what), "invalid --relay (%s)", why);
		return usage(what, e->relay);
	}
	if (!have_token)
		return usage("missing --token TOKEN", NULL);
	if (fp != NULL) {
		if (!tether_id_fingerprint_valid(fp))
			return usage("invalid --fingerprint (want SHA256:...)",
				     fp);
		memcpy(e->pin, fp, strlen(fp) + 1);
		e->has_pin = true;
	}
	if (name != NULL && !tether_id_name_valid(name))
		return usage("invalid --name (1 to 64 letters, digits, _.-)",
			     name);
	agent_facts_gather(&e->facts);
	if (name != NULL)
		snprintf(e->name, sizeof(e->name), "%s", name);
	else
		name_from_host(e->facts.hostname, e->name, sizeof(e->name));
	return -1;
}

/* ---- Files ---------------------------------------------------------- */

/*
 * Makes dir and missing parents, mode 0700 (the key and config are
 * secrets of this machine); *made gets the topmost one made (caller
 * frees) so a failure can take them away again.
 */
static int make_dirs(const char *dir, char **made)
{
	char *copy, *parent;
	struct stat st;
	int r;

	if (stat(dir, &st) == 0)
		return S_ISDIR(st.st_mode) ? 0 : TETHER_ERR_SYS;
	if (errno != ENOENT)
		return TETHER_ERR_SYS;
	copy = tether_strdup(dir);
	if (copy == NULL)
		return TETHER_ERR_NOMEM;
	parent = dirname(copy);
	r = strcmp(parent, dir) == 0 ? TETHER_ERR_SYS : make_dirs(parent, made);
	tether_free(copy);
	if (r != 0)
		return r;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return TETHER_ERR_SYS;
	if (*made == NULL && (*made = tether_strdup(dir)) == NULL)
		return TETHER_ERR_NOMEM;
	return 0;
}

/* Removes the directories make_dirs() made, if they are empty again. */
static void unmake_dirs(const char *leaf, const char *top)
{
	char *copy = tether_strdup(leaf), *d = copy;

	while (d != NULL && rmdir(d) == 0 && strcmp(d, top) != 0)
		d = dirname(d);
	tether_free(copy);
}

/* The directory of path, in a new string. */
static char *dir_of(const char *path)
{
	char *copy = tether_strdup(path), *out = NULL;

	if (copy != NULL)
		out = tether_strdup(dirname(copy));
	tether_free(copy);
	return out;
}

/* "DIR/name" in a new string, DIR the directory of path. */
static char *beside(const char *path, const char *name)
{
	char *copy = tether_strdup(path), *out = NULL;
	const char *dir;
	size_t n;

	if (copy == NULL)
		return NULL;
	dir = dirname(copy);
	n = strlen(dir) + 1 + strlen(name) + 1;
	out = tether_malloc(n);
	if (out != NULL)
		snprintf(out, n, "%s/%s", dir, name);
	tether_free(copy);
	return out;
}

/*
 * The config path made absolute through its (now existing) directory:
 * the service runs from / and must find the key the config names.
 */
static char *absolute_path(const char *path)
{
	char *dcopy = tether_strdup(path), *bcopy = tether_strdup(path);
	char real[PATH_MAX], *out = NULL;
	const char *base;
	size_t n;

	if (dcopy == NULL || bcopy == NULL ||
	    realpath(dirname(dcopy), real) == NULL)
		goto out;
	base = basename(bcopy);
	n = strlen(real) + 1 + strlen(base) + 1;
	out = tether_malloc(n);
	if (out != NULL)
		snprintf(out, n, "%s/%s", strcmp(real, "/") == 0 ? "" : real,
			 base);
out:
	tether_free(dcopy);
	tether_free(bcopy);
	return out;
}

/* ---- The exchange with the relay ------------------------------------ */

/* An event line: on stderr when stdout is for --json. */
static void note(const struct enroll *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void note(const struct enroll *e, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (e->json)
		agent_term_warn(e->term, "%s", line);
	else
		agent_term_say(e->term, "%s", line);
}

static void on_handle_closed(uv_handle_t *h)
{
	(void)h;
}

static void finish(struct enroll *e, int code)
{
	if (e->ended)
		return;
	e->ended = true;
	e->exit_code = code;
	agent_term_end_questions(e->term);
	if (e->asking) {
		e->asking = false;
		agent_term_withdraw(e->term, &e->question);
	}
	if (e->handles_up) {
		uv_close((uv_handle_t *)&e->timer, on_handle_closed);
		uv_close((uv_handle_t *)&e->sigint, on_handle_closed);
		uv_close((uv_handle_t *)&e->sigterm, on_handle_closed);
	}
	agent_term_stop(e->term);
	tether_client_close(e->client);
	e->client = NULL;
}

static void on_timeout(uv_timer_t *t)
{
	struct enroll *e = t->data;

	agent_term_warn(e->term,
			"enrollment failed: the relay did not answer in %d s",
			ENROLL_TIMEOUT_MS / 1000);
	finish(e, 1);
}

static void on_trust_answer(struct agent_question *q, enum agent_answer a)
{
	struct enroll *e = q->arg;

	e->asking = false;
	if (e->ended)
		return;
	if (a == AGENT_ANSWER_NO_TERMINAL) {
		agent_term_warn(e->term,
				"no terminal to confirm the relay fingerprint; "
				"pass --fingerprint or --yes");
		finish(e, 1);
		return;
	}
	if (a != AGENT_ANSWER_YES) {
		agent_term_warn(e->term, "relay not trusted; nothing enrolled");
		finish(e, 1);
		return;
	}
	uv_timer_start(&e->timer, on_timeout, ENROLL_TIMEOUT_MS, 0);
	if (tether_client_trust(e->client) != 0) {
		agent_term_warn(e->term,
				"cannot connect to %s:%d: out of memory",
				e->target.host, e->target.port);
		finish(e, 1);
	}
}

/* The probe said nothing: the admin checks the fingerprint. */
static void on_trust(struct tether_client *c, const char *fp)
{
	struct enroll *e = tether_client_arg(c);

	uv_timer_stop(&e->timer);
	note(e, "relay %s:%d has fingerprint %s", e->target.host,
	     e->target.port, fp);
	note(e, "check it with the relay's administrator before you go on");
	e->question.text = "Trust this relay? [y/N] ";
	e->question.answered = on_trust_answer;
	e->question.arg = e;
	e->asking = true;
	agent_term_ask(e->term, &e->question);
}

static void on_open(struct tether_client *c, const char *fp, bool newly)
{
	struct enroll *e = tether_client_arg(c);

	/* What the config pins: the certificate this relay presented. */
	snprintf(e->pin, sizeof(e->pin), "%s", fp);
	e->has_pin = true;
	if (newly)
		note(e, "relay %s:%d has fingerprint %s (accepted: --yes)",
		     e->target.host, e->target.port, fp);
}

static void on_welcome(struct tether_client *c, const struct tether_ctrl_msg *w)
{
	struct enroll *e = tether_client_arg(c);
	struct tether_ctrl_enroll m = {
	    .token = e->token,
	    .name = e->name,
	    .labels = e->labels.v,
	    .nlabels = e->labels.n,
	    .has_facts = true,
	};
	int r;

	(void)w;
	memcpy(m.pubkey, e->pub, sizeof(m.pubkey));
	agent_facts_ctrl(&e->facts, &m.facts);
	r = tether_client_send(c, TETHER_CTRL_ENROLL, &m);
	/* The link has its own copy once it is encoded. */
	tether_wipe(e->token, sizeof(e->token));
	if (r != 0) {
		agent_term_warn(e->term, "cannot send the enrollment request");
		finish(e, 1);
	}
}

static void on_ctrl(struct tether_client *c, struct tether_ctrl_msg *m)
{
	struct enroll *e = tether_client_arg(c);

	if (m->type != TETHER_CTRL_ENROLLED) {
		tether_log_debug("control message \"%s\" ignored",
				 tether_ctrl_type_name(m->type));
		return;
	}
	if (strcmp(m->body.enrolled.agent, e->name) != 0)
		tether_log_warn("the relay enrolled us as \"%s\"",
				m->body.enrolled.agent);
	e->enrolled = true;
	finish(e, 0);
}

static void on_down(struct tether_client *c, int err, const char *why,
		    enum tether_client_phase phase)
{
	struct enroll *e = tether_client_arg(c);

	(void)phase;
	if (err == TETHER_ERR_FINGERPRINT)
		agent_term_warn(e->term,
				"enrollment failed: relay fingerprint mismatch "
				"(expected %s)",
				e->pin);
	else
		agent_term_warn(e->term, "enrollment failed: %s", why);
	finish(e, 1);
}

static const struct tether_client_cbs client_cbs = {
    .on_open = on_open,
    .on_trust = on_trust,
    .on_welcome = on_welcome,
    .on_ctrl = on_ctrl,
    .on_down = on_down,
};

static void on_signal(uv_signal_t *h, int signo)
{
	struct enroll *e = h->data;

	(void)signo;
	agent_term_warn(e->term, "interrupted; nothing enrolled");
	finish(e, 1);
}

/* Runs the exchange; true once the relay said enrolled. */
static bool talk(struct enroll *e)
{
	const struct agent_term_opts to = {.view = AGENT_VIEW_OFF};
	const struct tether_client_opts co = {
	    .host = e->target.host,
	    .port = e->target.port,
	    .pin = e->has_pin ? e->pin : NULL,
	    /* Without a pin nor --yes, the first connection only probes. */
	    .accept_any = e->yes,
	    .role = TETHER_ROLE_AGENT,
	};
	uv_loop_t loop;

	if (uv_loop_init(&loop) != 0) {
		agent_term_warn(NULL, "cannot start the event loop");
		return false;
	}
	e->loop = &loop;
	e->term = agent_term_new(&loop, &to);
	e->client = e->term != NULL
			? tether_client_new(&loop, &co, &client_cbs, e)
			: NULL;
	if (e->client == NULL) {
		agent_term_free(e->term);
		e->term = NULL;
		agent_term_warn(NULL, "cannot set up TLS");
		uv_run(&loop, UV_RUN_NOWAIT);
		uv_loop_close(&loop);
		return false;
	}
	uv_timer_init(&loop, &e->timer);
	uv_signal_init(&loop, &e->sigint);
	uv_signal_init(&loop, &e->sigterm);
	e->timer.data = e->sigint.data = e->sigterm.data = e;
	e->handles_up = true;
	uv_signal_start(&e->sigint, on_signal, SIGINT);
	uv_signal_start(&e->sigterm, on_signal, SIGTERM);
	uv_timer_start(&e->timer, on_timeout, ENROLL_TIMEOUT_MS, 0);
	if (tether_client_start(e->client) != 0) {
		agent_term_warn(e->term,
				"cannot connect to %s:%d: out of memory",
				e->target.host, e->target.port);
		finish(e, 1);
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	agent_term_free(e->term);
	e->term = NULL;
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	return e->enrolled && e->exit_code == 0;
}

/* ---- Putting it together -------------------------------------------- */

static int set_str(char **field, const char *value)
{
	char *copy = tether_strdup(value);

	if (copy == NULL)
		return TETHER_ERR_NOMEM;
	tether_free(*field);
	*field = copy;
	return 0;
}

/*
 * The identity the relay accepted, into cfg (an earlier config's
 * [check] sections stay where they are), then the file.
 */
static int save_config(struct enroll *e, struct agent_config *cfg,
		       const char *key)
{
	char err[512];
	int r;

	if (set_str(&cfg->relay, e->relay) != 0 ||
	    set_str(&cfg->fingerprint, e->pin) != 0 ||
	    set_str(&cfg->name, e->name) != 0 || set_str(&cfg->key, key) != 0) {
		agent_term_warn(NULL, "out of memory");
		return TETHER_ERR_NOMEM;
	}
	agent_labels_free(&cfg->labels);
	if (agent_labels_copy(&cfg->labels, &e->labels) != 0) {
		agent_term_warn(NULL, "out of memory");
		return TETHER_ERR_NOMEM;
	}
	r = agent_config_save_identity(cfg, err, sizeof(err));
	if (r != 0)
		agent_term_warn(NULL, "%s", err);
	return r;
}

static void report(const struct enroll *e, const char *config, const char *key)
{
	json_t *out;
	char *text;

	/* Not a control message: what enroll --json prints for scripts. */
	if (e->json) {
		out = json_pack("{s:s,s:s,s:s,s:s,s:s}", "agent", e->name,
				"relay", e->relay, "fingerprint", e->pin,
				"config", config, "key", key);
		text = out != NULL ? json_dumps(out, JSON_COMPACT) : NULL;
		if (text != NULL)
			puts(text);
		tether_free(text);
		json_decref(out);
		return;
	}
	agent_term_say(NULL, "enrolled as %s with relay %s (%s)", e->name,
		       e->relay, e->pin);
	agent_term_say(NULL, "identity key: %s", key);
	agent_term_say(NULL, "config: %s", config);
	agent_term_say(NULL,
		       "next: " AGENT_PROG " run --config %s, or install "
		       "tether-agent.service and run systemctl enable --now "
		       "tether-agent",
		       config);
}

/*
 * Reads an existing config (re-enrolment keeps its checks and its key
 * path); a missing one is a fresh start.  Returns -1 to go on, else the
 * exit status.
 */
static int load_existing(const char *path, struct agent_config *cfg)
{
	char err[512];

	if (access(path, F_OK) != 0) {
		memset(cfg, 0, sizeof(*cfg));
		return -1;
	}
	if (agent_config_load(path, cfg, err, sizeof(err)) != 0) {
		agent_term_warn(NULL, "%s", err);
		agent_term_warn(NULL, "fix or remove %s to enroll again", path);
		return EXIT_USAGE;
	}
	return -1;
}

static int enroll(struct enroll *e, const char *config_arg)
{
	char default_path[PATH_MAX];
	char *config = NULL, *key = NULL, *tmp = NULL;
	char *cfgdir = NULL, *keydir = NULL, *made_cfg = NULL, *made_key = NULL;
	struct agent_config cfg;
	bool keep_dirs = false;
	size_t n;
	int r = 1;

	if (config_arg == NULL) {
		agent_config_default_path(default_path, sizeof(default_path));
		config_arg = default_path;
	}
	memset(&cfg, 0, sizeof(cfg));
	if ((cfgdir = dir_of(config_arg)) == NULL)
		goto nomem;
	if (make_dirs(cfgdir, &made_cfg) != 0) {
		agent_term_warn(NULL, "cannot make the directory %s: %s",
				cfgdir, strerror(errno));
		goto out;
	}
	if ((config = absolute_path(config_arg)) == NULL)
		goto nomem;
	/* Absolute, so that a key path read from it is absolute too. */
	if ((r = load_existing(config, &cfg)) >= 0)
		goto out;
	r = 1;
	key =
	    cfg.key != NULL ? tether_strdup(cfg.key) : beside(config, KEY_FILE);
	if (key == NULL || (keydir = dir_of(key)) == NULL)
		goto nomem;
	if (make_dirs(keydir, &made_key) != 0) {
		agent_term_warn(NULL, "cannot make the directory %s: %s",
				keydir, strerror(errno));
		goto out;
	}
	n = strlen(key) + sizeof(KEY_TMP_SUFFIX);
	if (set_str(&cfg.path, config) != 0 || (tmp = tether_malloc(n)) == NULL)
		goto nomem;
	snprintf(tmp, n, "%s%s", key, KEY_TMP_SUFFIX);
	/* A working identity stays until the relay accepted the new one. */
	if ((r = tether_sign_key_generate(tmp, e->pub)) != 0) {
		agent_term_warn(NULL, "cannot write a new key to %s: %s", tmp,
				tether_strerror(r));
		r = 1;
		goto out;
	}
	r = 1;
	if (!talk(e))
		goto out;
	if (rename(tmp, key) != 0) {
		agent_term_warn(
		    NULL,
		    "enrolled, but cannot put the key in place at %s: "
		    "%s",
		    key, strerror(errno));
		goto out;
	}
	/* The key is spent on the relay now: it stays whatever follows. */
	keep_dirs = true;
	if (save_config(e, &cfg, key) != 0) {
		agent_term_warn(NULL,
				"enrolled, but the config was not written; the "
				"key is %s",
				key);
		goto out;
	}
	r = 0;
	report(e, config, key);
	goto out;
nomem:
	agent_term_warn(NULL, "out of memory");
out:
	if (tmp != NULL)
		unlink(tmp);
	if (!keep_dirs && made_key != NULL)
		unmake_dirs(keydir, made_key);
	if (!keep_dirs && made_cfg != NULL)
		unmake_dirs(cfgdir, made_cfg);
	tether_free(config);
	tether_free(key);
	tether_free(tmp);
	tether_free(cfgdir);
	tether_free(keydir);
	tether_free(made_cfg);
	tether_free(made_key);
	agent_config_free(&cfg);
	return r;
}

int agent_enroll_main(int argc, char **argv)
{
	static struct enroll e;
	const char *config = NULL;
	int r;

	/* A child that closes its stdin must not take the agent with it. */
	signal(SIGPIPE, SIG_IGN);
	r = parse_args(argc, argv, &e, &config);
	if (r < 0)
		r = enroll(&e, config);
	tether_wipe(e.token, sizeof(e.token));
	agent_labels_free(&e.labels);
	return r;
}
