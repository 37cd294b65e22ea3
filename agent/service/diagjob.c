/*
 * Diagnostics for the relay (diagjob.h).  The collector runs as a child,
 * so a stuck read of /proc or a slow tool cannot stall the service: in its
 * own process group (a stuck tool goes with it), its stdout read up to
 * 4 MiB, the start of its stderr kept for the reason, killed after 20 s.
 * A bundle over the packed limit loses its bulkiest sections first.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include <tether/alloc.h>
#include <tether/bundle.h>
#include <tether/err.h>
#include <tether/id.h>
#include <tether/log.h>

#include "diag/text.h"
#include "service/diagjob.h"
#include "session/term.h"

#define ERR_MAX 512
#define DIAG_FILE "/proc/self/exe"
#define DIAG_TIMEOUT_MS 20000
#define DIAG_OUT_MAX (4u * 1024 * 1024)
#define DIAG_ERR_MAX 256
#define DIAG_JOBS_MAX 2

struct diag_job {
	struct agent_diagjobs *d;
	struct diag_job *next;
	int64_t ticket;
	char shown[TETHER_ID_TICKET_LEN];
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

struct agent_diagjobs {
	uv_loop_t *loop;
	agent_diagjob_cb cb;
	void *arg;
	struct diag_job *jobs;
	unsigned njobs;
	bool freeing;
};

static void maybe_free(struct agent_diagjobs *d)
{
	if (d->freeing && d->jobs == NULL)
		tether_free(d);
}

static void job_closed(uv_handle_t *h)
{
	struct diag_job *j = h->data;
	struct agent_diagjobs *d = j->d;
	struct diag_job **pp;

	if (--j->open > 0)
		return;
	for (pp = &d->jobs; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == j) {
			*pp = j->next;
			break;
		}
	}
	d->njobs--;
	tether_free(j->buf);
	tether_free(j);
	maybe_free(d);
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

/* The collector is done: its bundle, or why there is none. */
static void job_answer(struct diag_job *j)
{
	char why[ERR_MAX], first[DIAG_ERR_MAX];
	char *packed = NULL, *nl;
	json_t *bundle = NULL;
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
		agent_term_warn(NULL, "diagnostics for %s failed: %s", j->shown,
				why);
		j->d->cb(j->d->arg, j->ticket, NULL, why);
	} else {
		agent_term_warn(NULL,
				"diagnostics for %s collected (%zu bytes "
				"packed)",
				j->shown, strlen(packed));
		j->d->cb(j->d->arg, j->ticket, packed, NULL);
	}
	tether_free(packed);
}

/* Once the child is reaped and both pipes ended: answer and clean up. */
static void job_step(struct diag_job *j)
{
	if (--j->live > 0)
		return;
	uv_timer_stop(&j->timer);
	if (!j->d->freeing)
		job_answer(j);
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
	r = uv_spawn(j->d->loop, &j->proc, &o);
	if (r != 0)
		return r;
	uv_read_start((uv_stream_t *)&j->out, on_job_alloc, on_job_read);
	uv_read_start((uv_stream_t *)&j->err, on_job_alloc, on_job_read);
	return 0;
}

static void refuse(struct agent_diagjobs *d, int64_t ticket, const char *shown,
		   const char *why)
{
	agent_term_warn(NULL, "diagnostics for %s refused: %s", shown, why);
	d->cb(d->arg, ticket, NULL, why);
}

void agent_diagjobs_request(struct agent_diagjobs *d, int64_t ticket)
{
	char shown[TETHER_ID_TICKET_LEN];
	struct diag_job *j;
	int r;

	if (tether_id_ticket_format(ticket, shown, sizeof(shown)) != 0) {
		tether_log_warn("diag_request without a valid ticket ignored");
		return;
	}
	if (d->njobs >= DIAG_JOBS_MAX) {
		refuse(d, ticket, shown, "diagnostics already running");
		return;
	}
	j = tether_calloc(1, sizeof(*j));
	if (j == NULL) {
		refuse(d, ticket, shown, "out of memory");
		return;
	}
	j->d = d;
	j->ticket = ticket;
	memcpy(j->shown, shown, sizeof(j->shown));
	j->status = -1;
	uv_pipe_init(d->loop, &j->out, 0);
	uv_pipe_init(d->loop, &j->err, 0);
	uv_timer_init(d->loop, &j->timer);
	j->proc.data = j->out.data = j->err.data = j->timer.data = j;
	j->open = 4;
	j->live = 3;
	j->next = d->jobs;
	d->jobs = j;
	d->njobs++;
	r = job_spawn(j);
	if (r != 0) {
		j->killed = true; /* nothing to kill, nothing to read */
		refuse(d, ticket, shown, uv_strerror(r));
		/* A process handle that never started closes like the rest. */
		job_close(j);
		return;
	}
	uv_timer_start(&j->timer, on_job_timeout, DIAG_TIMEOUT_MS, 0);
	agent_term_warn(NULL, "collecting diagnostics for %s", shown);
}

struct agent_diagjobs *agent_diagjobs_new(uv_loop_t *loop, agent_diagjob_cb cb,
					  void *arg)
{
	struct agent_diagjobs *d = tether_calloc(1, sizeof(*d));

	if (d == NULL)
		return NULL;
	d->loop = loop;
	d->cb = cb;
	d->arg = arg;
	return d;
}

void agent_diagjobs_free(struct agent_diagjobs *d)
{
	struct diag_job *j;

	if (d == NULL || d->freeing)
		return;
	d->freeing = true;
	for (j = d->jobs; j != NULL; j = j->next)
		job_kill(j, "the agent is stopping");
	maybe_free(d);
}
