/*
 * Health checks of an enrolled agent (check.h): the checks' timers and
 * runs, the SOFT/HARD state machine, the check messages made of the
 * results, and "tether-agent check", which runs every check once.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <tether/alloc.h>
#include <tether/err.h>
#include <tether/num.h>

#include "diag/text.h"
#include "service/builtin.h"
#include "service/check.h"
#include "service/config.h"
#include "service/plugin.h"
#include "service/range.h"
#include "session/cli.h"

#define CHECK_INTERVAL_DEFAULT 60
#define CHECK_TIMEOUT_DEFAULT 10
#define CHECK_RETRIES_DEFAULT 3
#define CHECK_SECONDS_MAX (7 * 86400)
#define CHECK_RETRIES_MAX 10
/* A built-in that has not returned this long after its timeout is hung. */
#define CHECK_WATCHDOG_GRACE_MS 1000

struct check;

/* A built-in's run on the thread pool; outlives its check if it hangs. */
struct check_work {
	uv_work_t req;
	struct check *ck;
	struct agent_builtin b; /* a copy: the thread reads only this */
	struct agent_check_result res;
	bool abandoned; /* the watchdog gave up on it */
};

struct check {
	struct agent_checks *owner;
	const char *name; /* the config's */
	unsigned interval_ms;
	unsigned retry_ms;
	unsigned timeout_ms;
	unsigned max_attempts;
	enum tether_ticket_on ticket_on;
	bool is_builtin;
	struct agent_builtin b;
	char **argv; /* command checks */
	uv_timer_t timer;
	uv_timer_t watchdog;
	struct agent_check_status st;
	bool running;
	uint64_t started; /* loop time of the run's start */
	struct agent_plugin *plugin;
	struct check_work *work; /* in flight, maybe abandoned */
};

struct agent_checks {
	uv_loop_t *loop;
	agent_check_result_cb cb;
	void *arg;
	struct check *c;
	size_t n;
	bool dry_run;
	bool freeing;
	unsigned pending; /* open handles and works in flight */
};

void agent_check_advance(struct agent_check_status *s,
			 enum tether_check_state next, unsigned max_attempts)
{
	bool was_ok = !s->started || s->state == TETHER_CHECK_OK;

	if (max_attempts < 1)
		max_attempts = 1;
	s->started = true;
	if (next == TETHER_CHECK_OK) {
		/* A recovery from SOFT is itself SOFT. */
		s->hard = was_ok || s->hard;
		s->attempt = 1;
	} else if (was_ok) {
		s->attempt = 1;
		s->hard = max_attempts == 1;
	} else if (!s->hard) {
		s->attempt++;
		if (s->attempt >= max_attempts) {
			s->attempt = max_attempts;
			s->hard = true;
		}
	} else {
		s->attempt = max_attempts;
	}
	s->state = next;
}

void agent_result_free(struct agent_result *r)
{
	if (r == NULL)
		return;
	tether_free(r->check);
	tether_free(r->output);
	agent_perfdata_free(&r->perf);
	tether_free(r);
}

/* The check message of a finished run; NULL without memory. */
static struct agent_result *result_new(struct check *ck,
				       const struct agent_check_result *res)
{
	char out[AGENT_CHECK_OUTPUT_MAX + 1];
	uint64_t ms = uv_now(ck->owner->loop) - ck->started;
	struct agent_result *r = tether_calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	agent_text_clean_n(res->output, strlen(res->output), AGENT_TEXT_TABS,
			   out, sizeof(out));
	r->check = tether_strdup(ck->name);
	r->output = tether_strdup(out);
	if (r->check == NULL || r->output == NULL ||
	    agent_perfdata_parse(res->perf != NULL ? res->perf : "",
				 &r->perf) != 0) {
		agent_result_free(r);
		return NULL;
	}
	r->msg = (struct tether_ctrl_check){
	    .check = r->check,
	    .state = ck->st.state,
	    .type = ck->st.hard ? TETHER_CHECK_HARD : TETHER_CHECK_SOFT,
	    .attempt = ck->st.attempt,
	    .max_attempts = ck->max_attempts,
	    .output = r->output,
	    .perfdata = r->perf.v,
	    .nperfdata = r->perf.n,
	    .ts = (int64_t)time(NULL),
	    .duration_ms = (int64_t)ms,
	    .ticket_on = ck->ticket_on,
	};
	return r;
}

static void on_timer(uv_timer_t *t);

static void schedule(struct check *ck, uint64_t delay)
{
	if (ck->owner->dry_run || ck->owner->freeing)
		return;
	uv_timer_start(&ck->timer, on_timer, delay, 0);
}

static void finish(struct check *ck, struct agent_check_result *res)
{
	struct agent_checks *cs = ck->owner;
	uint64_t took = uv_now(cs->loop) - ck->started, next;
	struct agent_result *r;

	ck->running = false;
	uv_timer_stop(&ck->watchdog);
	if (cs->freeing) {
		tether_free(res->perf);
		return;
	}
	agent_check_advance(&ck->st, res->state, ck->max_attempts);
	r = result_new(ck, res);
	tether_free(res->perf);
	res->perf = NULL;
	/* The next run counts from this one's start, as Nagios does. */
	next = ck->st.state != TETHER_CHECK_OK && !ck->st.hard
		   ? ck->retry_ms
		   : ck->interval_ms;
	schedule(ck, next > took ? next - took : 0);
	if (r != NULL)
		cs->cb(cs->arg, r);
}

/* A result the engine makes itself (could not start, hung). */
static void finish_unknown(struct check *ck, const char *why)
{
	struct agent_check_result res;

	memset(&res, 0, sizeof(res));
	res.state = TETHER_CHECK_UNKNOWN;
	snprintf(res.output, sizeof(res.output), "%s", why);
	finish(ck, &res);
}

static void maybe_free(struct agent_checks *cs)
{
	size_t i;

	if (!cs->freeing || cs->pending > 0)
		return;
	for (i = 0; i < cs->n; i++) {
		agent_argv_free(cs->c[i].argv);
	}
	tether_free(cs->c);
	tether_free(cs);
}

static void work_run(uv_work_t *req)
{
	struct check_work *w = req->data;

	agent_builtin_run(&w->b, &w->res);
}

static void work_done(uv_work_t *req, int status)
{
	struct check_work *w = req->data;
	struct check *ck = w->ck;
	struct agent_checks *cs = ck->owner;

	ck->work = NULL;
	if (w->abandoned || status != 0) {
		tether_free(w->res.perf);
	} else {
		finish(ck, &w->res);
	}
	tether_free(w);
	cs->pending--;
	maybe_free(cs);
}

static void on_watchdog(uv_timer_t *t)
{
	struct check *ck = t->data;
	char why[128];

	if (ck->work == NULL || ck->work->abandoned)
		return;
	/* The thread stays stuck (a hung NFS statvfs); we stop waiting. */
	ck->work->abandoned = true;
	snprintf(why, sizeof(why), "check timed out after %u s",
		 ck->timeout_ms / 1000);
	finish_unknown(ck, why);
}

static void plugin_done(void *arg, const struct agent_plugin_end *e)
{
	struct check *ck = arg;
	struct agent_check_result res;

	ck->plugin = NULL;
	memset(&res, 0, sizeof(res));
	if (ck->is_builtin)
		agent_builtin_systemd_result(&ck->b, e, &res);
	else
		agent_plugin_result(e, ck->timeout_ms, &res);
	finish(ck, &res);
}

static void run_builtin(struct check *ck)
{
	struct agent_checks *cs = ck->owner;
	struct check_work *w;

	if (ck->work != NULL) {
		finish_unknown(ck, "the previous run has not returned (hung?)");
		return;
	}
	w = tether_calloc(1, sizeof(*w));
	if (w == NULL) {
		finish_unknown(ck, "out of memory");
		return;
	}
	w->req.data = w;
	w->ck = ck;
	w->b = ck->b;
	if (uv_queue_work(cs->loop, &w->req, work_run, work_done) != 0) {
		tether_free(w);
		finish_unknown(ck, "cannot queue the check");
		return;
	}
	ck->work = w;
	cs->pending++;
	uv_timer_start(&ck->watchdog, on_watchdog,
		       (uint64_t)ck->timeout_ms + CHECK_WATCHDOG_GRACE_MS, 0);
}

static void run_spawned(struct check *ck, char *const *argv)
{
	char why[AGENT_CHECK_OUTPUT_MAX];
	int r;

	r = agent_plugin_start(ck->owner->loop, argv, ck->timeout_ms,
			       plugin_done, ck, &ck->plugin);
	if (r != 0) {
		snprintf(why, sizeof(why), "cannot run %.900s: %s", argv[0],
			 uv_strerror(r));
		finish_unknown(ck, why);
	}
}

static void run(struct check *ck)
{
	const char *argv[6];

	if (ck->running || ck->owner->freeing)
		return;
	ck->running = true;
	ck->started = uv_now(ck->owner->loop);
	if (!ck->is_builtin) {
		run_spawned(ck, ck->argv);
	} else if (ck->b.kind != AGENT_BUILTIN_SYSTEMD_UNIT) {
		run_builtin(ck);
	} else if (!agent_builtin_have_systemd()) {
		finish_unknown(ck, "SYSTEMD UNKNOWN - systemd is not running");
	} else {
		agent_builtin_systemd_argv(&ck->b, argv);
		run_spawned(ck, (char *const *)argv);
	}
}

static void on_timer(uv_timer_t *t)
{
	run(t->data);
}

/* Whole seconds in [min, CHECK_SECONDS_MAX] as milliseconds. */
static int parse_seconds(const char *s, unsigned min, unsigned *ms)
{
	uint64_t v;

	if (tether_num_parse_u64(s, min, CHECK_SECONDS_MAX, &v) != 0)
		return TETHER_ERR_FORMAT;
	*ms = (unsigned)v * 1000;
	return 0;
}

static int conf_err(char *err, size_t errlen, const char *file, int line,
		    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int conf_err(char *err, size_t errlen, const char *file, int line,
		    const char *fmt, ...)
{
	char what[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(err, errlen, "%s:%d: %s", file, line, what);
	return TETHER_ERR_FORMAT;
}

/* A command: split, and its program an absolute path to an executable. */
static int set_command(struct check *ck, const char *file,
		       const struct agent_kv *kv, char *err, size_t errlen)
{
	const char *why;
	struct stat st;
	int r;

	r = agent_command_split(kv->value, &ck->argv, &why);
	if (r != 0)
		return conf_err(err, errlen, file, kv->line,
				"invalid command (%s)", why);
	if (ck->argv[0][0] != '/')
		return conf_err(err, errlen, file, kv->line,
				"command '%s' is not an absolute path",
				ck->argv[0]);
	if (stat(ck->argv[0], &st) != 0)
		return conf_err(err, errlen, file, kv->line, "command '%s': %s",
				ck->argv[0], strerror(errno));
	/* access() alone says yes to root for any file with an x bit. */
	if (!S_ISREG(st.st_mode) || (st.st_mode & 0111) == 0 ||
	    access(ck->argv[0], X_OK) != 0)
		return conf_err(err, errlen, file, kv->line,
				"command '%s' is not an executable file",
				ck->argv[0]);
	return 0;
}

/* The keys every check has; 1 if key is not one of them. */
static int common_key(struct check *ck, const char *file,
		      const struct agent_kv *kv, bool *retry_set, char *err,
		      size_t errlen)
{
	const char *k = kv->key, *v = kv->value;
	uint64_t n;
	int w;

	if (strcmp(k, "interval") == 0) {
		if (parse_seconds(v, 1, &ck->interval_ms) != 0)
			return conf_err(err, errlen, file, kv->line,
					"invalid interval '%s' (whole seconds, "
					"at least 1)",
					v);
	} else if (strcmp(k, "retry_interval") == 0) {
		if (parse_seconds(v, 1, &ck->retry_ms) != 0)
			return conf_err(err, errlen, file, kv->line,
					"invalid retry_interval '%s' (whole "
					"seconds, at least 1)",
					v);
		*retry_set = true;
	} else if (strcmp(k, "timeout") == 0) {
		if (parse_seconds(v, 1, &ck->timeout_ms) != 0)
			return conf_err(err, errlen, file, kv->line,
					"invalid timeout '%s' (whole seconds, "
					"at least 1)",
					v);
	} else if (strcmp(k, "retries") == 0) {
		if (tether_num_parse_u64(v, 1, CHECK_RETRIES_MAX, &n) != 0)
			return conf_err(err, errlen, file, kv->line,
					"invalid retries '%s' (1 to %d)", v,
					CHECK_RETRIES_MAX);
		ck->max_attempts = (unsigned)n;
	} else if (strcmp(k, "ticket") == 0) {
		w = tether_ctrl_word_of(ticket_on, v);
		if (w < 0)
			return conf_err(err, errlen, file, kv->line,
					"invalid ticket '%s' (critical, "
					"warning or never)",
					v);
		ck->ticket_on = (enum tether_ticket_on)w;
	} else {
		return 1;
	}
	return 0;
}

static int configure(struct check *ck, const struct agent_check_conf *cc,
		     const char *file, char *err, size_t errlen)
{
	const struct agent_kv *kind = NULL;
	bool retry_set = false;
	const char *why;
	size_t i;
	int r;

	ck->name = cc->name;
	ck->interval_ms = CHECK_INTERVAL_DEFAULT * 1000;
	ck->timeout_ms = CHECK_TIMEOUT_DEFAULT * 1000;
	ck->max_attempts = CHECK_RETRIES_DEFAULT;
	ck->ticket_on = TETHER_TICKET_ON_CRITICAL;
	/* builtin or command first: the other keys depend on it. */
	for (i = 0; i < cc->n; i++) {
		const struct agent_kv *kv = &cc->kv[i];

		if (strcmp(kv->key, "builtin") != 0 &&
		    strcmp(kv->key, "command") != 0)
			continue;
		if (kind != NULL)
			return conf_err(err, errlen, file, kv->line,
					"check '%s' has more than one builtin "
					"or command (first on line %d)",
					cc->name, kind->line);
		kind = kv;
	}
	if (kind == NULL)
		return conf_err(err, errlen, file, cc->line,
				"check '%s' needs builtin = NAME or command = "
				"PATH",
				cc->name);
	if (strcmp(kind->key, "command") == 0) {
		r = set_command(ck, file, kind, err, errlen);
		if (r != 0)
			return r;
	} else {
		ck->is_builtin = true;
		if (agent_builtin_init(&ck->b, kind->value) != 0)
			return conf_err(err, errlen, file, kind->line,
					"unknown builtin '%s'", kind->value);
	}
	for (i = 0; i < cc->n; i++) {
		const struct agent_kv *kv = &cc->kv[i];

		if (kv == kind)
			continue;
		r = common_key(ck, file, kv, &retry_set, err, errlen);
		if (r <= 0) {
			if (r < 0)
				return r;
			continue;
		}
		if (!ck->is_builtin)
			return conf_err(err, errlen, file, kv->line,
					"unknown key '%s'", kv->key);
		why = NULL;
		r = agent_builtin_set(&ck->b, kv->key, kv->value, &why);
		if (r == TETHER_ERR_INVALID && why == NULL)
			return conf_err(err, errlen, file, kv->line,
					"unknown key '%s' for builtin %s",
					kv->key, kind->value);
		if (r != 0)
			return conf_err(err, errlen, file, kv->line,
					"invalid %s '%s' (%s)", kv->key,
					kv->value, why != NULL ? why : "?");
	}
	if (!retry_set)
		ck->retry_ms = ck->interval_ms;
	if (ck->is_builtin) {
		ck->b.timeout_ms = ck->timeout_ms;
		if (agent_builtin_finish(&ck->b, &why) != 0)
			return conf_err(err, errlen, file, cc->line,
					"check '%s': %s", cc->name, why);
	}
	return 0;
}

static void on_handle_closed(uv_handle_t *h)
{
	struct check *ck = h->data;
	struct agent_checks *cs = ck->owner;

	cs->pending--;
	maybe_free(cs);
}

int agent_checks_new(uv_loop_t *loop, const struct agent_config *cfg,
		     agent_check_result_cb cb, void *arg, bool dry_run,
		     struct agent_checks **out, char *err, size_t errlen)
{
	struct agent_checks *cs;
	size_t i;
	int r;

	*out = NULL;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	cs = tether_calloc(1, sizeof(*cs));
	if (cs == NULL)
		return TETHER_ERR_NOMEM;
	cs->loop = loop;
	cs->cb = cb;
	cs->arg = arg;
	cs->dry_run = dry_run || loop == NULL;
	/*
	 * tls_cert_expiry writes to sockets the peer may have closed: that
	 * must fail the check, not kill the agent.  Plugins get SIG_DFL back.
	 */
	if (loop != NULL)
		signal(SIGPIPE, SIG_IGN);
	cs->c =
	    tether_calloc(cfg->nchecks > 0 ? cfg->nchecks : 1, sizeof(*cs->c));
	if (cs->c == NULL) {
		tether_free(cs);
		return TETHER_ERR_NOMEM;
	}
	for (i = 0; i < cfg->nchecks; i++) {
		cs->c[i].owner = cs;
		r = configure(&cs->c[i], &cfg->checks[i], cfg->path, err,
			      errlen);
		if (r != 0) {
			cs->n = i + 1;
			cs->freeing = true;
			maybe_free(cs);
			return r;
		}
	}
	cs->n = cfg->nchecks;
	if (loop != NULL) {
		for (i = 0; i < cs->n; i++) {
			struct check *ck = &cs->c[i];

			uv_timer_init(loop, &ck->timer);
			uv_timer_init(loop, &ck->watchdog);
			ck->timer.data = ck;
			ck->watchdog.data = ck;
			cs->pending += 2;
			/* Spread the first runs over each interval. */
			schedule(ck, (uint64_t)ck->interval_ms * i / cs->n);
		}
	}
	*out = cs;
	return 0;
}

size_t agent_checks_count(const struct agent_checks *c)
{
	return c != NULL ? c->n : 0;
}

void agent_checks_run_all(struct agent_checks *c)
{
	size_t i;

	if (c == NULL || c->loop == NULL)
		return;
	for (i = 0; i < c->n; i++) {
		uv_timer_stop(&c->c[i].timer);
		run(&c->c[i]);
	}
}

void agent_checks_free(struct agent_checks *c)
{
	size_t i;

	if (c == NULL || c->freeing)
		return;
	c->freeing = true;
	if (c->loop == NULL) {
		maybe_free(c);
		return;
	}
	for (i = 0; i < c->n; i++) {
		struct check *ck = &c->c[i];

		if (ck->plugin != NULL)
			agent_plugin_cancel(ck->plugin);
		ck->plugin = NULL;
		/* A queued built-in that has not started yet never will. */
		if (ck->work != NULL)
			uv_cancel((uv_req_t *)&ck->work->req);
		uv_close((uv_handle_t *)&ck->timer, on_handle_closed);
		uv_close((uv_handle_t *)&ck->watchdog, on_handle_closed);
	}
	maybe_free(c);
}

/* ---- tether-agent check ---- */

struct check_cli {
	const struct agent_config *cfg;
	struct agent_result **results; /* by the config's order */
	size_t got;
};

static void cli_result(void *arg, struct agent_result *r)
{
	struct check_cli *cli = arg;
	size_t i;

	for (i = 0; i < cli->cfg->nchecks; i++) {
		if (strcmp(cli->cfg->checks[i].name, r->check) == 0 &&
		    cli->results[i] == NULL) {
			cli->results[i] = r;
			cli->got++;
			return;
		}
	}
	agent_result_free(r);
}

/* A perfdata number as plugins write it. */
static void print_num(FILE *f, double v)
{
	if (!isnan(v))
		fprintf(f, "%.15g", v);
}

/* "label=1.5s;10;20;0;" back from the parsed perfdata. */
static void print_perf(FILE *f, const struct tether_ctrl_perf *perf, size_t n)
{
	const struct tether_ctrl_perf *e;
	size_t i, last;
	const char *p;

	for (i = 0; i < n; i++) {
		e = &perf[i];
		fputc(' ', f);
		if (strpbrk(e->label, " '=") != NULL) {
			fputc('\'', f);
			for (p = e->label; *p != '\0'; p++) {
				if (*p == '\'')
					fputc('\'', f);
				fputc(*p, f);
			}
			fputc('\'', f);
		} else {
			fputs(e->label, f);
		}
		fputc('=', f);
		if (isnan(e->value))
			fputc('U', f);
		else
			print_num(f, e->value);
		fputs(e->uom, f);
		/* Up to the last field that has a value, as plugins write. */
		last = !isnan(e->max)	 ? 4
		       : !isnan(e->min)	 ? 3
		       : e->crit != NULL ? 2
		       : e->warn != NULL ? 1
					 : 0;
		if (last >= 1)
			fprintf(f, ";%s", e->warn != NULL ? e->warn : "");
		if (last >= 2)
			fprintf(f, ";%s", e->crit != NULL ? e->crit : "");
		if (last >= 3) {
			fputc(';', f);
			print_num(f, e->min);
		}
		if (last >= 4) {
			fputc(';', f);
			print_num(f, e->max);
		}
	}
}

/*
 * A result as docs/protocol.md's check message without "t" and "seq"
 * (nor "dropped": nothing was queued); NULL without memory.
 */
static json_t *result_json(const struct agent_result *r)
{
	struct tether_ctrl_check m = r->msg;
	json_t *j;

	m.seq = 1;
	j = tether_ctrl_to_json(TETHER_CTRL_CHECK, 0, &m);
	if (j != NULL) {
		json_object_del(j, "t");
		json_object_del(j, "seq");
		json_object_del(j, "dropped");
	}
	return j;
}

static int check_usage(void)
{
	fputs("usage: " AGENT_PROG " check [--config FILE] [--json]\n", stderr);
	return 2;
}

/* One check's line, or its part of the --json array. */
static void report(const char *name, const struct agent_result *r, json_t *all)
{
	if (all != NULL) {
		if (r != NULL)
			json_array_append_new(all, result_json(r));
		return;
	}
	if (r == NULL) {
		printf("%s UNKNOWN - no result\n", name);
		return;
	}
	printf("%s %s - %s", name,
	       tether_ctrl_name_of(check_state, r->msg.state), r->output);
	if (r->perf.n > 0) {
		fputs(" |", stdout);
		print_perf(stdout, r->perf.v, r->perf.n);
	}
	putchar('\n');
}

int agent_check_main(int argc, char **argv)
{
	char path[1024], err[1024];
	struct agent_config cfg;
	struct check_cli cli;
	struct agent_checks *checks = NULL;
	bool missing = false, as_json = false;
	const char *file = NULL, *v;
	json_t *all = NULL;
	int worst = 0, i;
	uv_loop_t loop;
	size_t k;

	/* argv[1] is "check". */
	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			as_json = true;
		else if ((v = agent_opt_value(argc, argv, &i, "--config",
					      &missing)) != NULL)
			file = v;
		else
			return check_usage();
	}
	if (file == NULL) {
		agent_config_default_path(path, sizeof(path));
		file = path;
	}
	if (agent_config_load(file, &cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, AGENT_PROG ": %s\n", err);
		return 2;
	}
	memset(&cli, 0, sizeof(cli));
	cli.cfg = &cfg;
	cli.results = tether_calloc(cfg.nchecks + 1, sizeof(*cli.results));
	if (cli.results == NULL || uv_loop_init(&loop) != 0) {
		fprintf(stderr, AGENT_PROG ": out of memory\n");
		tether_free(cli.results);
		agent_config_free(&cfg);
		return 2;
	}
	if (agent_checks_new(&loop, &cfg, cli_result, &cli, true, &checks, err,
			     sizeof(err)) != 0) {
		fprintf(stderr, AGENT_PROG ": %s\n",
			err[0] != '\0' ? err : "out of memory");
		worst = 2;
		goto out;
	}
	agent_checks_run_all(checks);
	while (cli.got < cfg.nchecks && uv_run(&loop, UV_RUN_ONCE) != 0)
		;
	agent_checks_free(checks);
	uv_run(&loop, UV_RUN_DEFAULT);
	all = as_json ? json_array() : NULL;
	for (k = 0; k < cfg.nchecks; k++) {
		const struct agent_result *r = cli.results[k];
		int st = r != NULL ? (int)r->msg.state : TETHER_CHECK_UNKNOWN;

		if (st > worst)
			worst = st;
		report(cfg.checks[k].name, r, all);
	}
	if (all != NULL) {
		char *text =
		    json_dumps(all, JSON_INDENT(2) | JSON_REAL_PRECISION(15));

		if (text != NULL)
			puts(text);
		tether_free(text);
	}
	json_decref(all);
out:
	uv_loop_close(&loop);
	for (k = 0; k < cfg.nchecks; k++)
		agent_result_free(cli.results[k]);
	tether_free(cli.results);
	agent_config_free(&cfg);
	fflush(stdout);
	return worst;
}
