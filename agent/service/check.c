/*
 * Health checks of an enrolled agent: each [check NAME] section becomes a
 * check run on a timer, a built-in on the thread pool or a plugin as a
 * child process, and each result goes through the Nagios SOFT/HARD state
 * machine before it is handed on in the wire form of docs/protocol.md.
 * Also "tether-agent check", which runs every check once.
 */
#include <errno.h>
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

#include "agent.h"

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
	const char *ticket_on;
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

static const char *const state_names[] = {"OK", "WARNING", "CRITICAL",
					  "UNKNOWN"};

const char *agent_check_state_name(enum agent_check_state s)
{
	if ((unsigned)s > AGENT_CHECK_UNKNOWN)
		return "UNKNOWN";
	return state_names[s];
}

int agent_check_state_parse(const char *name)
{
	int i;

	for (i = 0; i < 4; i++)
		if (strcmp(name, state_names[i]) == 0)
			return i;
	return -1;
}

void agent_check_advance(struct agent_check_status *s,
			 enum agent_check_state next, unsigned max_attempts)
{
	bool was_ok = !s->started || s->state == AGENT_CHECK_OK;

	if (max_attempts < 1)
		max_attempts = 1;
	s->started = true;
	if (next == AGENT_CHECK_OK) {
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

/* Copies text as valid UTF-8 without control characters. */
static void clean(const char *in, char *out, size_t outlen)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t n = 0;

	while (*p != '\0' && n + 1 < outlen) {
		size_t len = 1, i;

		if (*p >= 0xc2 && *p <= 0xdf)
			len = 2;
		else if (*p >= 0xe0 && *p <= 0xef)
			len = 3;
		else if (*p >= 0xf0 && *p <= 0xf4)
			len = 4;
		else if (*p < 0x20 || *p == 0x7f || *p >= 0x80)
			len = 0;
		for (i = 1; i < len; i++)
			if ((p[i] & 0xc0) != 0x80)
				len = 0;
		/* Overlong and surrogate forms, and C1 controls. */
		if ((len == 3 && p[0] == 0xe0 && p[1] < 0xa0) ||
		    (len == 3 && p[0] == 0xed && p[1] >= 0xa0) ||
		    (len == 4 && p[0] == 0xf0 && p[1] < 0x90) ||
		    (len == 4 && p[0] == 0xf4 && p[1] >= 0x90) ||
		    (len == 2 && p[0] == 0xc2 && p[1] < 0xa0))
			len = 0;
		if (len == 0) {
			out[n++] = *p == '\t' ? ' ' : '?';
			p++;
			continue;
		}
		if (n + len >= outlen)
			break;
		memcpy(out + n, p, len);
		n += len;
		p += len;
	}
	out[n] = '\0';
}

static json_t *result_json(struct check *ck, struct agent_check_result *res)
{
	char out[AGENT_CHECK_OUTPUT_MAX + 1];
	uint64_t ms = uv_now(ck->owner->loop) - ck->started;
	json_t *perf = agent_perfdata_parse(res->perf != NULL ? res->perf : "");

	clean(res->output, out, sizeof(out));
	if (perf == NULL)
		return NULL;
	return json_pack(
	    "{s:s, s:s, s:s, s:I, s:I, s:s, s:o, s:I, s:I, s:s}", "check",
	    ck->name, "state", agent_check_state_name(ck->st.state), "type",
	    ck->st.hard ? "HARD" : "SOFT", "attempt",
	    (json_int_t)ck->st.attempt, "max_attempts",
	    (json_int_t)ck->max_attempts, "output", out, "perfdata", perf, "ts",
	    (json_int_t)time(NULL), "duration_ms", (json_int_t)ms, "ticket_on",
	    ck->ticket_on);
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
	json_t *j;

	ck->running = false;
	uv_timer_stop(&ck->watchdog);
	if (cs->freeing) {
		tether_free(res->perf);
		return;
	}
	agent_check_advance(&ck->st, res->state, ck->max_attempts);
	j = result_json(ck, res);
	tether_free(res->perf);
	res->perf = NULL;
	/* The next run counts from this one's start, as Nagios does. */
	next = ck->st.state != AGENT_CHECK_OK && !ck->st.hard ? ck->retry_ms
							      : ck->interval_ms;
	schedule(ck, next > took ? next - took : 0);
	if (j != NULL)
		cs->cb(cs->arg, j);
}

/* A result the engine makes itself (could not start, hung). */
static void finish_unknown(struct check *ck, const char *why)
{
	struct agent_check_result res;

	memset(&res, 0, sizeof(res));
	res.state = AGENT_CHECK_UNKNOWN;
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
	unsigned long v;
	char *end;

	if (*s < '0' || *s > '9')
		return TETHER_ERR_FORMAT;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > CHECK_SECONDS_MAX)
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
	unsigned long n;
	char *end;

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
		errno = 0;
		n = strtoul(v, &end, 10);
		if (*v < '0' || *v > '9' || errno != 0 || *end != '\0' ||
		    n < 1 || n > CHECK_RETRIES_MAX)
			return conf_err(err, errlen, file, kv->line,
					"invalid retries '%s' (1 to %d)", v,
					CHECK_RETRIES_MAX);
		ck->max_attempts = (unsigned)n;
	} else if (strcmp(k, "ticket") == 0) {
		if (strcmp(v, "critical") == 0)
			ck->ticket_on = "critical";
		else if (strcmp(v, "warning") == 0)
			ck->ticket_on = "warning";
		else if (strcmp(v, "never") == 0)
			ck->ticket_on = "never";
		else
			return conf_err(err, errlen, file, kv->line,
					"invalid ticket '%s' (critical, "
					"warning or never)",
					v);
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
	ck->ticket_on = "critical";
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
	struct agent_checks *checks;
	json_t *results; /* name -> result */
	size_t want;
};

static void cli_result(void *arg, json_t *result)
{
	struct check_cli *cli = arg;
	const char *name = json_string_value(json_object_get(result, "check"));

	if (name != NULL)
		json_object_set(cli->results, name, result);
	json_decref(result);
}

/* "label=1.5s;10;20;0;" back from the parsed perfdata. */
static void print_perf(FILE *f, const json_t *perf)
{
	static const char *const keys[] = {"warn", "crit", "min", "max"};
	const json_t *e;
	size_t i, k, last;

	json_array_foreach(perf, i, e)
	{
		const char *label =
		    json_string_value(json_object_get(e, "label"));
		const json_t *v = json_object_get(e, "value");
		bool quote = strpbrk(label, " '=") != NULL;

		fputc(' ', f);
		if (quote) {
			const char *p;

			fputc('\'', f);
			for (p = label; *p != '\0'; p++) {
				if (*p == '\'')
					fputc('\'', f);
				fputc(*p, f);
			}
			fputc('\'', f);
		} else {
			fputs(label, f);
		}
		fputc('=', f);
		if (json_is_number(v))
			fprintf(f, "%.15g", json_number_value(v));
		else
			fputc('U', f);
		fputs(json_string_value(json_object_get(e, "uom")), f);
		/* Up to the last field that has a value, as plugins write. */
		for (last = 4; last > 0; last--)
			if (!json_is_null(json_object_get(e, keys[last - 1])))
				break;
		for (k = 0; k < last; k++) {
			const json_t *x = json_object_get(e, keys[k]);

			fputc(';', f);
			if (json_is_string(x))
				fputs(json_string_value(x), f);
			else if (json_is_number(x))
				fprintf(f, "%.15g", json_number_value(x));
		}
	}
}

static int check_usage(void)
{
	fputs("usage: " AGENT_PROG " check [--config FILE] [--json]\n", stderr);
	return 2;
}

int agent_check_main(int argc, char **argv)
{
	char path[1024], err[1024];
	struct agent_config cfg;
	struct check_cli cli;
	bool json = false;
	const char *file = NULL;
	json_t *all = NULL, *res;
	int worst = 0, i;
	uv_loop_t loop;
	size_t k;

	/* argv[1] is "check". */
	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = true;
		else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			file = argv[++i];
		else if (strncmp(argv[i], "--config=", 9) == 0)
			file = argv[i] + 9;
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
	cli.results = json_object();
	if (cli.results == NULL || uv_loop_init(&loop) != 0) {
		fprintf(stderr, AGENT_PROG ": out of memory\n");
		json_decref(cli.results);
		agent_config_free(&cfg);
		return 2;
	}
	if (agent_checks_new(&loop, &cfg, cli_result, &cli, true, &cli.checks,
			     err, sizeof(err)) != 0) {
		fprintf(stderr, AGENT_PROG ": %s\n",
			err[0] != '\0' ? err : "out of memory");
		worst = 2;
		goto out;
	}
	agent_checks_run_all(cli.checks);
	while (json_object_size(cli.results) < cfg.nchecks &&
	       uv_run(&loop, UV_RUN_ONCE) != 0)
		;
	agent_checks_free(cli.checks);
	uv_run(&loop, UV_RUN_DEFAULT);
	all = json_array();
	for (k = 0; all != NULL && k < cfg.nchecks; k++) {
		const char *name = cfg.checks[k].name;
		int st;

		res = json_object_get(cli.results, name);
		st = res != NULL ? agent_check_state_parse(json_string_value(
				       json_object_get(res, "state")))
				 : AGENT_CHECK_UNKNOWN;
		if (st < 0)
			st = AGENT_CHECK_UNKNOWN;
		if (st > worst)
			worst = st;
		if (res == NULL) {
			if (!json)
				printf("%s UNKNOWN - no result\n", name);
			continue;
		}
		json_array_append(all, res);
		if (json)
			continue;
		printf("%s %s - %s", name, agent_check_state_name(st),
		       json_string_value(json_object_get(res, "output")));
		if (json_array_size(json_object_get(res, "perfdata")) > 0) {
			fputs(" |", stdout);
			print_perf(stdout, json_object_get(res, "perfdata"));
		}
		putchar('\n');
	}
	if (json && all != NULL) {
		char *s =
		    json_dumps(all, JSON_INDENT(2) | JSON_REAL_PRECISION(15));

		if (s != NULL)
			puts(s);
		free(s);
	}
	json_decref(all);
out:
	uv_loop_close(&loop);
	json_decref(cli.results);
	agent_config_free(&cfg);
	fflush(stdout);
	return worst;
}
