/*
 * tether-agent run: the enrolled agent as a long-running service
 * (docs/protocol.md, "Enrolled agents").  It proves its identity to the
 * pinned relay by signing the welcome's challenge, sends the results of
 * its health checks in order (queued while the relay is away, dropped
 * only when the bound forces it), answers the relay's diag_request with a
 * bundle collected by a child process, and reconnects forever.  It opens
 * no channels: technicians reach an enrolled machine only through what
 * it reports.  One line per event goes to stderr, for the journal.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <tether/alloc.h>
#include <tether/bundle.h>
#include <tether/crypto.h>
#include <tether/err.h>
#include <tether/log.h>
#include <tether/sign.h>

#include "agent.h"

#define EXIT_USAGE 2
#define ERR_MAX 512
/* What the relay says when our signature does not verify. */
#define AUTH_FAILED "agent authentication failed"

/* The collector runs as a child: bounded in time, output and number. */
#define DIAG_FILE "/proc/self/exe"
#define DIAG_TIMEOUT_MS 20000
#define DIAG_OUT_MAX (4u * 1024 * 1024)
#define DIAG_ERR_MAX 256
#define DIAG_JOBS_MAX 2
/* Answers held for the next connection when the link went away. */
#define DIAG_PENDING_MAX 4

enum svc_conn {
	SVC_NONE,  /* backing off */
	SVC_TLS,   /* connecting */
	SVC_HELLO, /* hello sent, waiting for welcome */
	SVC_AUTH,  /* auth sent, waiting for auth_ok */
	SVC_READY, /* authenticated: results flow */
};

struct diag_job;

struct svc {
	uv_loop_t *loop;
	struct agent_config cfg;
	char host[AGENT_HOST_MAX];
	int port;
	struct tether_tls_ctx *tls;
	struct tether_link_ctx *lctx;
	struct tether_link *link;
	enum svc_conn conn;
	struct tether_sign_key *key;
	struct agent_checks *checks;
	struct agent_queue *queue;
	json_t *hard;	 /* check name -> its last HARD state */
	json_t *pending; /* diag answers waiting for a connection */
	bool authed_once;
	uv_timer_t ping_timer;
	uv_timer_t retry_timer;
	uv_signal_t sigint;
	uv_signal_t sigterm;
	uint64_t last_rx;
	unsigned backoff_ms;
	struct diag_job *jobs;
	unsigned njobs;
	bool ending;
};

struct diag_job {
	struct svc *s;
	struct diag_job *next;
	json_t *ticket; /* as the relay sent it */
	char shown[AGENT_NAME_MAX];
	uv_process_t proc;
	uv_pipe_t out;
	uv_pipe_t err;
	uv_timer_t timer;
	unsigned open; /* handles not closed yet */
	unsigned live; /* of proc, out, err: not yet exited or at EOF */
	bool out_done;
	bool err_done;
	char *buf;
	size_t len;
	char errbuf[DIAG_ERR_MAX];
	size_t errlen;
	int64_t status;
	int term_signal;
	const char *failed; /* why, if we stopped it */
	bool killed;
};

static const char run_usage[] =
    "usage: " AGENT_PROG " run [--config FILE] [-v]\n";

/* ---- Sending -------------------------------------------------------- */

static bool ready(const struct svc *s)
{
	return s->link != NULL && s->conn == SVC_READY;
}

/* Sends msg (a borrowed reference) if connected. */
static int send_json(struct svc *s, const json_t *msg)
{
	if (s->link == NULL)
		return TETHER_ERR_CLOSED;
	return tether_link_send_json(s->link, msg);
}

static void send_type(struct svc *s, const char *type)
{
	json_t *msg = json_pack("{s:s}", "t", type);

	if (msg != NULL)
		send_json(s, msg);
	json_decref(msg);
}

static void flush_queue(struct svc *s)
{
	size_t i, n = agent_queue_len(s->queue);

	for (i = 0; i < n && ready(s); i++)
		send_json(s, agent_queue_at(s->queue, i));
	if (n > 0)
		tether_log_debug("sent %zu queued check results", n);
}

static void flush_pending(struct svc *s)
{
	while (ready(s) && json_array_size(s->pending) > 0) {
		send_json(s, json_array_get(s->pending, 0));
		json_array_remove(s->pending, 0);
	}
}

/* A diag answer: now, or with the next connection. */
static void send_or_hold(struct svc *s, json_t *msg)
{
	if (ready(s) && send_json(s, msg) == 0) {
		json_decref(msg);
		return;
	}
	if (json_array_size(s->pending) >= DIAG_PENDING_MAX)
		json_array_remove(s->pending, 0);
	json_array_append_new(s->pending, msg);
}

/* ---- Check results -------------------------------------------------- */

/* HARD state changes are what an operator greps the journal for. */
static void log_hard_change(struct svc *s, const json_t *r)
{
	const char *name = json_string_value(json_object_get(r, "check"));
	const char *state = json_string_value(json_object_get(r, "state"));
	const char *type = json_string_value(json_object_get(r, "type"));
	const char *out = json_string_value(json_object_get(r, "output"));
	const char *was;
	char line[AGENT_TITLE_MAX];

	if (name == NULL || state == NULL || type == NULL ||
	    strcmp(type, "HARD") != 0)
		return;
	was = json_string_value(json_object_get(s->hard, name));
	if (was != NULL && strcmp(was, state) == 0)
		return;
	/* A first result that is OK is no change worth a line. */
	if (was != NULL || strcmp(state, "OK") != 0) {
		agent_clean(out != NULL ? out : "", line, sizeof(line));
		agent_warn("check %s is %s%s%s (HARD): %s", name, state,
			   was != NULL ? ", was " : "", was != NULL ? was : "",
			   line);
	}
	json_object_set_new(s->hard, name, json_string(state));
}

static void on_result(void *arg, json_t *result)
{
	struct svc *s = arg;
	int64_t seq;

	if (result == NULL)
		return;
	if (s->ending ||
	    json_object_set_new(result, "t", json_string("check")) != 0) {
		json_decref(result);
		return;
	}
	log_hard_change(s, result);
	seq = agent_queue_push(s->queue, result);
	tether_log_debug("check %s: %s %s, #%lld%s",
			 json_string_value(json_object_get(result, "check")),
			 json_string_value(json_object_get(result, "state")),
			 json_string_value(json_object_get(result, "type")),
			 (long long)seq, ready(s) ? "" : " (queued)");
	if (ready(s))
		send_json(s, result);
}

/* ---- Diagnostics ---------------------------------------------------- */

static void job_closed(uv_handle_t *h)
{
	struct diag_job *j = h->data;
	struct svc *s = j->s;
	struct diag_job **pp;

	if (--j->open > 0)
		return;
	for (pp = &s->jobs; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == j) {
			*pp = j->next;
			break;
		}
	}
	s->njobs--;
	json_decref(j->ticket);
	tether_free(j->buf);
	tether_free(j);
}

static void job_close(struct diag_job *j)
{
	uv_close((uv_handle_t *)&j->timer, job_closed);
	uv_close((uv_handle_t *)&j->out, job_closed);
	uv_close((uv_handle_t *)&j->err, job_closed);
	uv_close((uv_handle_t *)&j->proc, job_closed);
}

static void job_step(struct diag_job *j);

/* A pipe is at its end (or no longer read). */
static void pipe_done(struct diag_job *j, uv_pipe_t *p)
{
	bool *done = p == &j->out ? &j->out_done : &j->err_done;

	if (*done)
		return;
	*done = true;
	uv_read_stop((uv_stream_t *)p);
	job_step(j);
}

/*
 * The whole process group: the collector may have started tools.  Its
 * pipes are not waited for, in case something escaped the group and
 * holds them open.
 */
static void job_kill(struct diag_job *j, const char *why)
{
	if (j->killed)
		return;
	j->killed = true;
	if (j->failed == NULL)
		j->failed = why;
	if (j->status == -1 && j->proc.pid > 0)
		uv_kill(-j->proc.pid, SIGKILL);
	pipe_done(j, &j->out);
	pipe_done(j, &j->err);
}

/*
 * A bundle over the packed limit loses its biggest parts, one at a time,
 * rather than all of it.
 */
static int pack_bundle(json_t *bundle, char **packed)
{
	static const char *const bulky[] = {
	    "logs", "processes", "packages", "listening", "systemd", "mounts"};
	json_t *sections = json_object_get(bundle, "sections");
	size_t i;
	int r;

	r = tether_bundle_pack(bundle, packed);
	for (i = 0; r == TETHER_ERR_TOO_LARGE && json_is_object(sections) &&
		    i < sizeof(bulky) / sizeof(bulky[0]);
	     i++) {
		if (json_object_get(sections, bulky[i]) == NULL)
			continue;
		json_object_set_new(
		    sections, bulky[i],
		    json_pack("{s:s}", "error",
			      "left out: the bundle was too large"));
		r = tether_bundle_pack(bundle, packed);
	}
	return r;
}

/* The diag answer for ticket: {"bundle": ...} or {"error": ...}. */
static json_t *diag_msg(const json_t *ticket, const char *key,
			const char *value)
{
	return json_pack("{s:s,s:O,s:s}", "t", "diag", "ticket", ticket, key,
			 value);
}

/* The collector is done: its bundle, or why there is none. */
static json_t *job_answer(struct diag_job *j)
{
	char why[ERR_MAX], first[DIAG_ERR_MAX];
	json_t *bundle = NULL, *msg;
	char *packed = NULL, *nl;
	int r;

	why[0] = '\0';
	memcpy(first, j->errbuf, j->errlen);
	first[j->errlen] = '\0';
	if ((nl = strchr(first, '\n')) != NULL)
		*nl = '\0';
	if (j->failed != NULL)
		snprintf(why, sizeof(why), "%s", j->failed);
	else if (j->term_signal != 0)
		snprintf(why, sizeof(why), "diagnostics killed by signal %d",
			 j->term_signal);
	else if (j->status != 0)
		snprintf(why, sizeof(why),
			 "diagnostics exited with status "
			 "%lld%s%s",
			 (long long)j->status, first[0] != '\0' ? ": " : "",
			 first);
	else if ((bundle = json_loadb(j->buf != NULL ? j->buf : "", j->len, 0,
				      NULL)) == NULL ||
		 !json_is_object(bundle))
		snprintf(why, sizeof(why), "diagnostics output is not JSON");
	else if ((r = pack_bundle(bundle, &packed)) != 0)
		snprintf(why, sizeof(why), "cannot pack the bundle: %s",
			 tether_strerror(r));
	json_decref(bundle);
	if (why[0] != '\0') {
		agent_warn("diagnostics for %s failed: %s", j->shown, why);
		msg = diag_msg(j->ticket, "error", why);
	} else {
		agent_warn("diagnostics for %s collected (%zu bytes packed)",
			   j->shown, strlen(packed));
		msg = diag_msg(j->ticket, "bundle", packed);
	}
	free(packed);
	return msg;
}

/* Once the child is reaped and both pipes ended: answer and clean up. */
static void job_step(struct diag_job *j)
{
	json_t *msg;

	if (--j->live > 0)
		return;
	uv_timer_stop(&j->timer);
	msg = j->s->ending ? NULL : job_answer(j);
	if (msg != NULL)
		send_or_hold(j->s, msg);
	job_close(j);
}

static void on_job_exit(uv_process_t *p, int64_t status, int term_signal)
{
	struct diag_job *j = p->data;

	j->status = status;
	j->term_signal = term_signal;
	job_step(j);
}

static void on_job_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	/* Where what is not kept is read into and forgotten. */
	static char sink[4096];
	struct diag_job *j = h->data;
	size_t want;
	char *nb;

	(void)hint;
	if ((uv_pipe_t *)h == &j->err) {
		/* Only the start of stderr is kept. */
		if (j->errlen + 1 < sizeof(j->errbuf))
			*buf = uv_buf_init(
			    j->errbuf + j->errlen,
			    (unsigned)(sizeof(j->errbuf) - 1 - j->errlen));
		else
			*buf = uv_buf_init(sink, sizeof(sink));
		return;
	}
	if (j->len > DIAG_OUT_MAX) {
		*buf = uv_buf_init(sink, sizeof(sink));
		return;
	}
	want = j->len + 64 * 1024;
	if (want > DIAG_OUT_MAX + 1)
		want = DIAG_OUT_MAX + 1;
	nb = tether_reallocarray(j->buf, want, 1);
	if (nb == NULL) {
		*buf = uv_buf_init(NULL, 0);
		return;
	}
	j->buf = nb;
	*buf = uv_buf_init(j->buf + j->len, (unsigned)(want - j->len));
}

static void on_job_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	struct diag_job *j = st->data;

	if (n == 0)
		return;
	if (n < 0) {
		if (n == UV_ENOBUFS)
			job_kill(j, "out of memory");
		pipe_done(j, (uv_pipe_t *)st);
		return;
	}
	if (st == (uv_stream_t *)&j->err) {
		if (buf->base == j->errbuf + j->errlen)
			j->errlen += (size_t)n;
		return;
	}
	j->len += (size_t)n;
	if (j->len > DIAG_OUT_MAX)
		job_kill(j, "diagnostics output over 4 MiB");
}

static void on_job_timeout(uv_timer_t *t)
{
	job_kill(t->data, "diagnostics took longer than 20 s");
}

static int job_spawn(struct diag_job *j)
{
	char *args[] = {AGENT_PROG, "diag", "--json", NULL};
	uv_stdio_container_t stdio[3];
	uv_process_options_t o;
	int r;

	memset(&o, 0, sizeof(o));
	stdio[0].flags = UV_IGNORE;
	stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	stdio[1].data.stream = (uv_stream_t *)&j->out;
	stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	stdio[2].data.stream = (uv_stream_t *)&j->err;
	o.file = DIAG_FILE;
	o.args = args;
	o.stdio = stdio;
	o.stdio_count = 3;
	o.exit_cb = on_job_exit;
	/* Its own process group, so a stuck tool goes with it. */
	o.flags = UV_PROCESS_DETACHED;
	r = uv_spawn(j->s->loop, &j->proc, &o);
	if (r != 0)
		return r;
	uv_read_start((uv_stream_t *)&j->out, on_job_alloc, on_job_read);
	uv_read_start((uv_stream_t *)&j->err, on_job_alloc, on_job_read);
	return 0;
}

static void diag_refuse(struct svc *s, const json_t *ticket, const char *shown,
			const char *why)
{
	agent_warn("diagnostics for %s refused: %s", shown, why);
	send_or_hold(s, diag_msg(ticket, "error", why));
}

static void on_diag_request(struct svc *s, const json_t *msg)
{
	const json_t *ticket = json_object_get(msg, "ticket");
	char shown[AGENT_NAME_MAX];
	struct diag_job *j;
	int r;

	if (!json_is_string(ticket) ||
	    json_string_length(ticket) >= AGENT_NAME_MAX) {
		tether_log_warn("diag_request without a valid ticket ignored");
		return;
	}
	agent_clean(json_string_value(ticket), shown, sizeof(shown));
	if (s->njobs >= DIAG_JOBS_MAX) {
		diag_refuse(s, ticket, shown, "diagnostics already running");
		return;
	}
	j = tether_calloc(1, sizeof(*j));
	if (j == NULL) {
		diag_refuse(s, ticket, shown, "out of memory");
		return;
	}
	j->s = s;
	j->ticket = json_incref((json_t *)ticket);
	memcpy(j->shown, shown, sizeof(j->shown));
	j->status = -1;
	uv_pipe_init(s->loop, &j->out, 0);
	uv_pipe_init(s->loop, &j->err, 0);
	uv_timer_init(s->loop, &j->timer);
	j->proc.data = j->out.data = j->err.data = j->timer.data = j;
	j->open = 4;
	j->live = 3;
	j->next = s->jobs;
	s->jobs = j;
	s->njobs++;
	r = job_spawn(j);
	if (r != 0) {
		j->killed = true; /* nothing to kill, nothing to read */
		diag_refuse(s, ticket, shown, uv_strerror(r));
		/* A process handle that never started closes like the rest. */
		job_close(j);
		return;
	}
	uv_timer_start(&j->timer, on_job_timeout, DIAG_TIMEOUT_MS, 0);
	agent_warn("collecting diagnostics for %s", shown);
}

/* ---- The relay connection ------------------------------------------- */

static void on_open(struct tether_link *l);
static void on_frame(struct tether_link *l, const struct tether_frame *f);
static void on_link_close(struct tether_link *l, int reason);

static const struct tether_link_cbs link_cbs = {
    .on_open = on_open,
    .on_frame = on_frame,
    .on_close = on_link_close,
};

static void schedule_reconnect(struct svc *s);

static void connect_relay(struct svc *s)
{
	tether_log_debug("connecting to %s", s->cfg.relay);
	s->conn = SVC_TLS;
	/* The saved pin, always: a run never trusts on first use. */
	s->link = tether_link_connect(s->loop, s->lctx, s->host, s->port,
				      s->cfg.fingerprint, &link_cbs, s);
	if (s->link == NULL) {
		s->conn = SVC_NONE;
		agent_warn("cannot connect to %s: out of memory", s->cfg.relay);
		schedule_reconnect(s);
	}
}

static void on_retry(uv_timer_t *t)
{
	struct svc *s = t->data;

	if (!s->ending)
		connect_relay(s);
}

static void schedule_reconnect(struct svc *s)
{
	unsigned delay = agent_backoff_next(&s->backoff_ms);

	agent_warn("reconnecting in %u.%u s", delay / 1000, delay % 1000 / 100);
	s->conn = SVC_NONE;
	uv_timer_start(&s->retry_timer, on_retry, delay, 0);
}

static void on_open(struct tether_link *l)
{
	struct svc *s = tether_link_data(l);

	agent_warn("connected to %s", s->cfg.relay);
	s->conn = SVC_HELLO;
	s->last_rx = uv_now(s->loop);
	if (agent_send_hello(l) != 0)
		tether_link_close(l, TETHER_ERR_NOMEM);
}

static void on_link_close(struct tether_link *l, int reason)
{
	struct svc *s = tether_link_data(l);
	enum svc_conn conn = s->conn;
	const char *why = tether_link_close_reason(l);

	if (s->link == l)
		s->link = NULL;
	if (s->ending)
		return;
	if (reason == TETHER_ERR_FINGERPRINT)
		agent_warn("REFUSING relay %s: its certificate does not match "
			   "the pinned fingerprint %s (relay replaced or "
			   "connection intercepted); nothing was sent",
			   s->cfg.relay, s->cfg.fingerprint);
	else if (strcmp(why, AUTH_FAILED) == 0)
		agent_warn("%s: the relay does not accept this agent's key "
			   "for \"%s\" (%s); enroll again if it was replaced",
			   AUTH_FAILED, s->cfg.name, s->cfg.key);
	else if (conn == SVC_READY)
		agent_warn("disconnected: %s", why);
	else
		agent_warn("no connection to the relay: %s", why);
	schedule_reconnect(s);
}

static void on_welcome(struct svc *s, const json_t *msg)
{
	const char *hex = json_string_value(json_object_get(msg, "challenge"));
	uint8_t challenge[TETHER_AGENT_CHALLENGE_LEN];
	uint8_t sig[TETHER_SIGN_SIG_LEN];
	uint8_t m[sizeof(TETHER_AGENT_AUTH_CONTEXT) +
		  TETHER_AGENT_CHALLENGE_LEN + AGENT_NAME_MAX + 1];
	char sig_hex[2 * TETHER_SIGN_SIG_LEN + 1];
	json_t *auth;
	size_t mlen;

	if (s->conn != SVC_HELLO) {
		tether_link_close_error(s->link, TETHER_ERR_PROTOCOL,
					"unexpected welcome");
		return;
	}
	if (hex == NULL ||
	    tether_hex_decode(hex, challenge, sizeof(challenge)) != 0) {
		tether_link_set_close_reason(s->link, "the relay sent no valid "
						      "challenge (does it know "
						      "enrolled agents?)");
		tether_link_close(s->link, TETHER_ERR_PROTOCOL);
		return;
	}
	if (tether_sign_auth_message(challenge, s->cfg.name, m, sizeof(m),
				     &mlen) != 0 ||
	    tether_sign(s->key, m, mlen, sig) != 0 ||
	    tether_hex_encode(sig, sizeof(sig), sig_hex, sizeof(sig_hex)) !=
		0) {
		tether_link_set_close_reason(s->link, "cannot sign the "
						      "challenge");
		tether_link_close(s->link, TETHER_ERR_CRYPTO);
		return;
	}
	tether_link_set_max_payload(s->link, TETHER_FRAME_MAX);
	s->conn = SVC_AUTH;
	auth = json_pack("{s:s,s:s,s:s}", "t", "auth", "agent", s->cfg.name,
			 "sig", sig_hex);
	if (auth == NULL || send_json(s, auth) != 0)
		tether_link_close(s->link, TETHER_ERR_NOMEM);
	json_decref(auth);
}

static void on_auth_ok(struct svc *s, const json_t *msg)
{
	json_t *a = json_object_get(msg, "acked");
	json_int_t acked = json_is_integer(a) ? json_integer_value(a) : 0;

	if (s->conn != SVC_AUTH || acked < 0) {
		tether_link_close_error(s->link, TETHER_ERR_PROTOCOL,
					"unexpected auth_ok");
		return;
	}
	/*
	 * A fresh process numbers its results from 1 until it learns
	 * where the relay is; the relay also outranks us if it holds
	 * more than we ever sent (another run with this identity).
	 */
	if (!s->authed_once || acked >= agent_queue_next_seq(s->queue))
		agent_queue_renumber(s->queue, acked + 1);
	else
		agent_queue_ack(s->queue, acked);
	s->authed_once = true;
	s->conn = SVC_READY;
	s->backoff_ms = AGENT_BACKOFF_MIN_MS;
	agent_warn("authenticated as %s (%zu queued results to send)",
		   s->cfg.name, agent_queue_len(s->queue));
	flush_queue(s);
	flush_pending(s);
}

static void handle_ctrl(struct svc *s, const char *t, const json_t *msg)
{
	json_t *seq;

	if (strcmp(t, "ping") == 0)
		send_type(s, "pong");
	else if (strcmp(t, "pong") == 0)
		return;
	else if (strcmp(t, "welcome") == 0)
		on_welcome(s, msg);
	else if (strcmp(t, "auth_ok") == 0)
		on_auth_ok(s, msg);
	else if (strcmp(t, "check_ack") == 0 && s->conn == SVC_READY) {
		seq = json_object_get(msg, "seq");
		if (json_is_integer(seq))
			agent_queue_ack(s->queue, json_integer_value(seq));
	} else if (strcmp(t, "diag_request") == 0 && s->conn == SVC_READY)
		on_diag_request(s, msg);
	else
		tether_log_debug("control message \"%s\" ignored", t);
}

static void on_frame(struct tether_link *l, const struct tether_frame *f)
{
	struct svc *s = tether_link_data(l);
	json_t *msg;
	const char *t;

	s->last_rx = uv_now(s->loop);
	if (s->ending || f->type != TETHER_FRAME_CTRL)
		return;
	msg = agent_ctrl_parse(l, f, &t);
	if (msg != NULL)
		handle_ctrl(s, t, msg);
	json_decref(msg);
}

static void on_ping_timer(uv_timer_t *t)
{
	struct svc *s = t->data;
	struct tether_link *l = s->link;

	if (l == NULL || !tether_link_is_open(l) || s->conn < SVC_HELLO)
		return;
	/* As agent-session.c: silence is death unless our output is stuck. */
	if (uv_now(s->loop) - s->last_rx > TETHER_IDLE_TIMEOUT_MS &&
	    tether_link_pending(l) == 0) {
		tether_link_set_close_reason(l, "relay stopped answering");
		tether_link_close(l, TETHER_ERR_EXPIRED);
		return;
	}
	send_type(s, "ping");
}

/* ---- Start and stop ------------------------------------------------- */

static void stop(struct svc *s)
{
	struct diag_job *j;

	if (s->ending)
		return;
	s->ending = true;
	agent_checks_free(s->checks);
	s->checks = NULL;
	for (j = s->jobs; j != NULL; j = j->next)
		job_kill(j, "the agent is stopping");
	uv_close((uv_handle_t *)&s->ping_timer, NULL);
	uv_close((uv_handle_t *)&s->retry_timer, NULL);
	uv_close((uv_handle_t *)&s->sigint, NULL);
	uv_close((uv_handle_t *)&s->sigterm, NULL);
	if (s->link != NULL)
		tether_link_close(s->link, TETHER_OK);
}

static void on_signal(uv_signal_t *h, int signo)
{
	struct svc *s = h->data;

	agent_warn("stopping (%s)", signo == SIGTERM ? "SIGTERM" : "SIGINT");
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
	struct agent_target t;
	const char *why;
	int r;

	if (agent_config_load(path, &s->cfg, err, sizeof(err)) != 0) {
		agent_warn("%s", err);
		return EXIT_USAGE;
	}
	if (s->cfg.relay == NULL || s->cfg.name == NULL ||
	    s->cfg.fingerprint == NULL || s->cfg.key == NULL) {
		agent_warn("%s: not enrolled (relay, fingerprint, name or "
			   "key missing); run " AGENT_PROG " enroll first",
			   path);
		return EXIT_USAGE;
	}
	if (agent_config_parse_target(s->cfg.relay, &t, &why) != 0 ||
	    !agent_fingerprint_valid(s->cfg.fingerprint)) {
		agent_warn("%s: invalid relay or fingerprint", path);
		return EXIT_USAGE;
	}
	memcpy(s->host, t.host, sizeof(s->host));
	s->port = t.port;
	r = tether_sign_key_load(s->cfg.key, &s->key, NULL);
	if (r == TETHER_ERR_PERM) {
		agent_warn("%s: group or others may read this key; refusing "
			   "it (chmod 600 %s)",
			   s->cfg.key, s->cfg.key);
		return 1;
	}
	if (r != 0) {
		agent_warn("%s: cannot load the agent key: %s", s->cfg.key,
			   tether_strerror(r));
		return 1;
	}
	if (agent_checks_new(s->loop, &s->cfg, on_result, s, false, &s->checks,
			     err, sizeof(err)) != 0) {
		agent_warn("%s", err);
		return EXIT_USAGE;
	}
	return -1;
}

static void start(struct svc *s)
{
	s->backoff_ms = AGENT_BACKOFF_MIN_MS;
	uv_timer_init(s->loop, &s->ping_timer);
	uv_timer_init(s->loop, &s->retry_timer);
	uv_signal_init(s->loop, &s->sigint);
	uv_signal_init(s->loop, &s->sigterm);
	s->ping_timer.data = s->retry_timer.data = s;
	s->sigint.data = s->sigterm.data = s;
	uv_signal_start(&s->sigint, on_signal, SIGINT);
	uv_signal_start(&s->sigterm, on_signal, SIGTERM);
	uv_timer_start(&s->ping_timer, on_ping_timer, TETHER_PING_INTERVAL_MS,
		       TETHER_PING_INTERVAL_MS);
	agent_warn("agent %s starting: %zu checks, relay %s", s->cfg.name,
		   agent_checks_count(s->checks), s->cfg.relay);
	connect_relay(s);
}

int agent_run_main(int argc, char **argv)
{
	static struct svc svc;
	struct svc *s = &svc;
	char path[1024];
	const char *config = NULL;
	uv_loop_t loop;
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
		agent_warn("cannot start the event loop");
		return 1;
	}
	s->loop = &loop;
	s->queue = agent_queue_new(TETHER_CHECK_QUEUE_MAX);
	s->hard = json_object();
	s->pending = json_array();
	s->tls = tether_tls_ctx_new_client();
	s->lctx = s->tls != NULL ? tether_link_ctx_new(s->tls) : NULL;
	if (s->queue == NULL || s->hard == NULL || s->pending == NULL ||
	    s->lctx == NULL) {
		agent_warn("out of memory");
		r = 1;
		goto out;
	}
	r = load(s, config);
	if (r >= 0)
		goto out;
	start(s);
	uv_run(&loop, UV_RUN_DEFAULT);
	r = 0;
out:
	agent_checks_free(s->checks);
	s->checks = NULL;
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	tether_link_ctx_free(s->lctx);
	tether_tls_ctx_free(s->tls);
	tether_sign_key_free(s->key);
	agent_queue_free(s->queue);
	json_decref(s->hard);
	json_decref(s->pending);
	agent_config_free(&s->cfg);
	return r;
}
