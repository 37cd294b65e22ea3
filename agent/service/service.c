/*
 * tether-agent run: the enrolled agent as a long-running service
 * (docs/protocol.md, "Enrolled agents").  As the attended session does, it
 * runs on the relay client (tether/client.h), here always pinned to the
 * fingerprint of its enrolment: the client connects, says hello, proves the
 * agent's identity by signing the welcome's challenge with the agent's key,
 * pings and reconnects forever with back-off, and this file sends the
 * results of its health checks in order (queued while the relay is away,
 * dropped only when the bound forces it) and answers the relay's diag_request
 * with a bundle collected by a child process (diagjob.c).  It opens no
 * channels: technicians reach an enrolled machine only through what it reports.
 * One line per event goes to stderr, for the journal.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <tether/alloc.h>
#include <tether/client.h>
#include <tether/crypto.h>
#include <tether/err.h>
#include <tether/id.h>
#include <tether/link.h>
#include <tether/log.h>
#include <tether/proto.h>
#include <tether/sign.h>

#include "diag/text.h"
#include "service/check.h"
#include "service/config.h"
#include "service/diagjob.h"
#include "service/queue.h"
#include "service/service.h"
#include "session/cli.h"
#include "session/term.h"

#define EXIT_USAGE 2
#define ERR_MAX 512
#define HARD_LINE_MAX 256
/* What the relay says when our signature does not verify. */
#define AUTH_FAILED "agent authentication failed"
/* Answers held for the next connection when the link went away. */
#define DIAG_PENDING_MAX 4

enum svc_conn {
	SVC_DOWN,  /* connecting, authenticating, or backing off */
	SVC_READY, /* authenticated: results flow */
};

/* A check's last HARD state, for the journal's lines. */
struct hard_state {
	const char *name; /* the config's */
	bool known;
	enum tether_check_state state;
};

/* A diag answer waiting for a connection. */
struct pending {
	int64_t ticket;
	char *bundle;
	char *error;
};

struct svc {
	uv_loop_t *loop;
	struct agent_config cfg;
	struct agent_target relay;
	struct tether_client *client;
	enum svc_conn conn;
	struct tether_sign_key *key;
	struct agent_checks *checks;
	struct agent_queue *queue;
	struct hard_state *hard; /* one per configured check */
	struct pending pending[DIAG_PENDING_MAX];
	size_t npending;
	struct agent_diagjobs *diag;
	bool authed_once;
	uv_signal_t sigint;
	uv_signal_t sigterm;
	bool ending;
};

static const char run_usage[] =
    "usage: " AGENT_PROG " run [--config FILE] [-v]\n";

/* ---- Sending -------------------------------------------------------- */

static bool ready(const struct svc *s)
{
	return s->client != NULL && tether_client_ready(s->client) &&
	       s->conn == SVC_READY;
}

static int send_msg(struct svc *s, enum tether_ctrl_type t, const void *body)
{
	if (s->client == NULL)
		return TETHER_ERR_CLOSED;
	return tether_client_send(s->client, t, body);
}

static void flush_queue(struct svc *s)
{
	size_t i, n = agent_queue_len(s->queue);

	for (i = 0; i < n && ready(s); i++)
		send_msg(s, TETHER_CTRL_CHECK, agent_queue_at(s->queue, i));
	if (n > 0)
		tether_log_debug("sent %zu queued check results", n);
}

static void pending_clear(struct pending *p)
{
	tether_free(p->bundle);
	tether_free(p->error);
	memset(p, 0, sizeof(*p));
}

/* The oldest held answer leaves the list. */
static void pending_drop(struct svc *s)
{
	pending_clear(&s->pending[0]);
	memmove(&s->pending[0], &s->pending[1],
		(s->npending - 1) * sizeof(s->pending[0]));
	s->npending--;
	memset(&s->pending[s->npending], 0, sizeof(s->pending[0]));
}

static int send_diag(struct svc *s, int64_t ticket, const char *bundle,
		     const char *error)
{
	const struct tether_ctrl_diag m = {
	    .ticket = ticket, .bundle = bundle, .error = error};

	return send_msg(s, TETHER_CTRL_DIAG, &m);
}

static void flush_pending(struct svc *s)
{
	struct pending *p;

	while (ready(s) && s->npending > 0) {
		p = &s->pending[0];
		send_diag(s, p->ticket, p->bundle, p->error);
		pending_drop(s);
	}
}

/* A diag answer: now, or with the next connection. */
static void on_diag_answer(void *arg, int64_t ticket, const char *bundle,
			   const char *error)
{
	struct svc *s = arg;
	struct pending *p;

	if (ready(s) && send_diag(s, ticket, bundle, error) == 0)
		return;
	if (s->npending >= DIAG_PENDING_MAX)
		pending_drop(s);
	p = &s->pending[s->npending];
	p->ticket = ticket;
	p->bundle = bundle != NULL ? tether_strdup(bundle) : NULL;
	p->error = error != NULL ? tether_strdup(error) : NULL;
	if ((bundle != NULL && p->bundle == NULL) ||
	    (error != NULL && p->error == NULL)) {
		tether_log_warn("no memory to hold a diagnostics answer");
		pending_clear(p);
		return;
	}
	s->npending++;
}

/* ---- Check results -------------------------------------------------- */

static struct hard_state *hard_of(struct svc *s, const char *name)
{
	size_t i;

	for (i = 0; i < s->cfg.nchecks; i++)
		if (strcmp(s->hard[i].name, name) == 0)
			return &s->hard[i];
	return NULL;
}

/* HARD state changes are what an operator greps the journal for. */
static void log_hard_change(struct svc *s, const struct tether_ctrl_check *r)
{
	struct hard_state *h = hard_of(s, r->check);
	char line[HARD_LINE_MAX];

	if (r->type != TETHER_CHECK_HARD || h == NULL)
		return;
	if (h->known && h->state == r->state)
		return;
	/* A first result that is OK is no change worth a line. */
	if (h->known || r->state != TETHER_CHECK_OK) {
		agent_text_clean(r->output, line, sizeof(line));
		agent_term_warn(
		    NULL, "check %s is %s%s%s (HARD): %s", r->check,
		    tether_ctrl_name_of(check_state, r->state),
		    h->known ? ", was " : "",
		    h->known ? tether_ctrl_name_of(check_state, h->state) : "",
		    line);
	}
	h->known = true;
	h->state = r->state;
}

static void on_result(void *arg, struct agent_result *r)
{
	struct svc *s = arg;
	int64_t seq;

	if (s->ending) {
		agent_result_free(r);
		return;
	}
	log_hard_change(s, &r->msg);
	seq = agent_queue_push(s->queue, r);
	tether_log_debug("check %s: %s %s, #%lld%s", r->msg.check,
			 tether_ctrl_name_of(check_state, r->msg.state),
			 tether_ctrl_name_of(check_type, r->msg.type),
			 (long long)seq, ready(s) ? "" : " (queued)");
	if (ready(s))
		send_msg(s, TETHER_CTRL_CHECK, &r->msg);
}

/* ---- The relay connection ------------------------------------------- */

static void on_open(struct tether_client *c, const char *fp, bool newly)
{
	struct svc *s = tether_client_arg(c);

	(void)fp;
	(void)newly;
	agent_term_warn(NULL, "connected to %s", s->cfg.relay);
}

/*
 * Let in: the client signed the relay's challenge with our key, and w is
 * the auth_ok that answered it.
 */
static void on_welcome(struct tether_client *c, const struct tether_ctrl_msg *w)
{
	struct svc *s = tether_client_arg(c);
	const struct tether_ctrl_auth_ok *m = &w->body.auth_ok;

	/* acked is optional only because consoles get auth_ok too. */
	if (!m->has_acked) {
		tether_link_close_error(tether_client_link(c),
					TETHER_ERR_PROTOCOL,
					"auth_ok without acked");
		return;
	}
	/*
	 * A fresh process numbers its results from 1 until it learns
	 * where the relay is; the relay also outranks us if it holds
	 * more than we ever sent (another run with this identity).
	 */
	if (!s->authed_once || m->acked >= agent_queue_next_seq(s->queue))
		agent_queue_renumber(s->queue, m->acked + 1);
	else
		agent_queue_ack(s->queue, m->acked);
	s->authed_once = true;
	s->conn = SVC_READY;
	tether_client_backoff_reset(s->client);
	agent_term_warn(NULL,
			"authenticated as %s (%zu queued results to send)",
			s->cfg.name, agent_queue_len(s->queue));
	flush_queue(s);
	flush_pending(s);
}

static void on_ctrl(struct tether_client *c, struct tether_ctrl_msg *m)
{
	struct svc *s = tether_client_arg(c);

	if (m->type == TETHER_CTRL_CHECK_ACK && s->conn == SVC_READY)
		agent_queue_ack(s->queue, m->body.check_ack.seq);
	else if (m->type == TETHER_CTRL_DIAG_REQUEST && s->conn == SVC_READY)
		agent_diagjobs_request(s->diag, m->body.diag_request.ticket);
	else
		tether_log_debug("control message \"%s\" ignored",
				 tether_ctrl_type_name(m->type));
}

static void on_down(struct tether_client *c, int err, const char *why,
		    enum tether_client_phase phase)
{
	struct svc *s = tether_client_arg(c);
	enum svc_conn conn = s->conn;
	unsigned delay;

	(void)phase;
	s->conn = SVC_DOWN;
	if (err == TETHER_ERR_FINGERPRINT)
		agent_term_warn(NULL,
				"REFUSING relay %s: its certificate does not "
				"match the pinned fingerprint %s (relay "
				"replaced or connection intercepted); nothing "
				"was sent",
				s->cfg.relay, s->cfg.fingerprint);
	else if (strcmp(why, AUTH_FAILED) == 0)
		agent_term_warn(NULL,
				"%s: the relay does not accept this agent's "
				"key for \"%s\" (%s); enroll again if it was "
				"replaced",
				AUTH_FAILED, s->cfg.name, s->cfg.key);
	else if (conn == SVC_READY)
		agent_term_warn(NULL, "disconnected: %s", why);
	else
		agent_term_warn(NULL, "no connection to the relay: %s", why);
	delay = tether_client_retry(c);
	agent_term_warn(NULL, "reconnecting in %u.%u s", delay / 1000,
			delay % 1000 / 100);
}

static const struct tether_client_cbs client_cbs = {
    .on_open = on_open,
    .on_welcome = on_welcome,
    .on_ctrl = on_ctrl,
    .on_down = on_down,
};

/* ---- Start and stop ------------------------------------------------- */

static void stop(struct svc *s)
{
	if (s->ending)
		return;
	s->ending = true;
	agent_checks_free(s->checks);
	s->checks = NULL;
	agent_diagjobs_free(s->diag);
	s->diag = NULL;
	uv_close((uv_handle_t *)&s->sigint, NULL);
	uv_close((uv_handle_t *)&s->sigterm, NULL);
	tether_client_close(s->client);
	s->client = NULL;
}

static void on_signal(uv_signal_t *h, int signo)
{
	struct svc *s = h->data;

	agent_term_warn(NULL, "stopping (%s)",
			signo == SIGTERM ? "SIGTERM" : "SIGINT");
	stop(s);
}

/* Returns -1 to go on, else the exit status. */
static int parse_args(int argc, char **argv, const char **config)
{
	bool missing = false;
	const char *v;
	int i;

	for (i = 2; i < argc; i++) {
		const char *arg = argv[i];

		if ((v = agent_opt_value(argc, argv, &i, "--config", &missing)))
			*config = v;
		else if (strcmp(arg, "-v") == 0 ||
			 strcmp(arg, "--verbose") == 0)
			tether_log_set_level(TETHER_LOG_DEBUG);
		else if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			fputs(run_usage, stdout);
			return 0;
		} else {
			fprintf(stderr, AGENT_PROG " run: %s: %s\n",
				missing ? "option needs a value"
					: "unknown argument",
				arg);
			fputs(run_usage, stderr);
			return EXIT_USAGE;
		}
	}
	return -1;
}

/* Config, identity and checks; returns -1 to go on, else the status. */
static int load(struct svc *s, const char *path)
{
	char err[ERR_MAX];
	const char *why;
	size_t i;
	int r;

	if (agent_config_load(path, &s->cfg, err, sizeof(err)) != 0) {
		agent_term_warn(NULL, "%s", err);
		return EXIT_USAGE;
	}
	if (s->cfg.relay == NULL || s->cfg.name == NULL ||
	    s->cfg.fingerprint == NULL || s->cfg.key == NULL) {
		agent_term_warn(NULL,
				"%s: not enrolled (relay, fingerprint, name "
				"or key missing); run " AGENT_PROG
				" enroll first",
				path);
		return EXIT_USAGE;
	}
	if (agent_target_parse(s->cfg.relay, 0, &s->relay, &why) != 0 ||
	    !tether_id_fingerprint_valid(s->cfg.fingerprint)) {
		agent_term_warn(NULL, "%s: invalid relay or fingerprint", path);
		return EXIT_USAGE;
	}
	r = tether_sign_key_load(s->cfg.key, &s->key, NULL);
	if (r == TETHER_ERR_PERM) {
		agent_term_warn(NULL,
				"%s: group or others may read this key; "
				"refusing it (chmod 600 %s)",
				s->cfg.key, s->cfg.key);
		return 1;
	}
	if (r != 0) {
		agent_term_warn(NULL, "%s: cannot load the agent key: %s",
				s->cfg.key, tether_strerror(r));
		return 1;
	}
	s->hard = tether_calloc(s->cfg.nchecks + 1, sizeof(*s->hard));
	if (s->hard == NULL) {
		agent_term_warn(NULL, "out of memory");
		return 1;
	}
	for (i = 0; i < s->cfg.nchecks; i++)
		s->hard[i].name = s->cfg.checks[i].name;
	if (agent_checks_new(s->loop, &s->cfg, on_result, s, false, &s->checks,
			     err, sizeof(err)) != 0) {
		agent_term_warn(NULL, "%s", err);
		return EXIT_USAGE;
	}
	return -1;
}

/* The client, the diagnostics jobs and the queue; false without memory. */
static bool make_parts(struct svc *s)
{
	const struct tether_client_opts o = {
	    .host = s->relay.host,
	    .port = s->relay.port,
	    /* The saved pin, always: a run never trusts on first use. */
	    .pin = s->cfg.fingerprint,
	    .role = TETHER_ROLE_AGENT,
	    /* The client signs each connection's challenge with it. */
	    .key = s->key,
	    .agent = s->cfg.name,
	};

	s->queue = agent_queue_new(TETHER_CHECK_QUEUE_MAX);
	s->diag = agent_diagjobs_new(s->loop, on_diag_answer, s);
	s->client = tether_client_new(s->loop, &o, &client_cbs, s);
	return s->queue != NULL && s->diag != NULL && s->client != NULL;
}

static void start(struct svc *s)
{
	unsigned delay;

	uv_signal_init(s->loop, &s->sigint);
	uv_signal_init(s->loop, &s->sigterm);
	s->sigint.data = s->sigterm.data = s;
	uv_signal_start(&s->sigint, on_signal, SIGINT);
	uv_signal_start(&s->sigterm, on_signal, SIGTERM);
	agent_term_warn(NULL, "agent %s starting: %zu checks, relay %s",
			s->cfg.name, agent_checks_count(s->checks),
			s->cfg.relay);
	tether_log_debug("connecting to %s", s->cfg.relay);
	if (tether_client_start(s->client) != 0) {
		agent_term_warn(NULL, "cannot connect to %s: out of memory",
				s->cfg.relay);
		delay = tether_client_retry(s->client);
		agent_term_warn(NULL, "reconnecting in %u.%u s", delay / 1000,
				delay % 1000 / 100);
	}
}

int agent_run_main(int argc, char **argv)
{
	static struct svc svc;
	struct svc *s = &svc;
	char path[1024];
	const char *config = NULL;
	uv_loop_t loop;
	size_t i;
	int r;

	r = parse_args(argc, argv, &config);
	if (r >= 0)
		return r;
	if (config == NULL) {
		agent_config_default_path(path, sizeof(path));
		config = path;
	}
	/* A child that closes its stdin must not take the agent with it. */
	signal(SIGPIPE, SIG_IGN);
	if (uv_loop_init(&loop) != 0) {
		agent_term_warn(NULL, "cannot start the event loop");
		return 1;
	}
	s->loop = &loop;
	r = load(s, config);
	if (r >= 0)
		goto out;
	if (!make_parts(s)) {
		agent_term_warn(NULL, "out of memory");
		r = 1;
		goto out;
	}
	start(s);
	uv_run(&loop, UV_RUN_DEFAULT);
	r = 0;
out:
	agent_checks_free(s->checks);
	s->checks = NULL;
	agent_diagjobs_free(s->diag);
	tether_client_close(s->client);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	tether_sign_key_free(s->key);
	agent_queue_free(s->queue);
	for (i = 0; i < s->npending; i++)
		pending_clear(&s->pending[i]);
	tether_free(s->hard);
	agent_config_free(&s->cfg);
	return r;
}
