/*
 * External check plugins (Nagios plugin API): the command line split
 * without a shell, the child spawned in its own process group with its
 * output captured and capped, killed at its timeout, and its exit code and
 * first line read the way Nagios reads them.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tether/alloc.h>
#include <tether/err.h>

#include "service/plugin.h"

#define ARGV_MAX 64
#define WORD_MAX 4096
/* After the plugin exits, how long a grandchild may hold its pipes. */
#define PLUGIN_EOF_GRACE_MS 500

void agent_argv_free(char **argv)
{
	size_t i;

	if (argv == NULL)
		return;
	for (i = 0; argv[i] != NULL; i++)
		tether_free(argv[i]);
	tether_free(argv);
}

static bool blank(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

/* One word at *pp into word; *pp moves past it.  why on error. */
static int split_word(const char **pp, char *word, const char **why)
{
	const char *p = *pp;
	size_t n = 0;
	char q = 0;

	for (; *p != '\0' && (q != 0 || !blank(*p)); p++) {
		char ch = *p;

		if (q == 0 && (ch == '\'' || ch == '"')) {
			q = ch;
			continue;
		}
		if (q != 0 && ch == q) {
			q = 0;
			continue;
		}
		if (ch == '\\' && q != '\'') {
			if (p[1] == '\0') {
				*why = "backslash at the end";
				return TETHER_ERR_FORMAT;
			}
			/* In "..." only \" and \\ escape, as in sh. */
			if (q != '"' || p[1] == '"' || p[1] == '\\')
				ch = *++p;
		}
		if (n + 1 >= WORD_MAX) {
			*why = "word too long";
			return TETHER_ERR_TOO_LARGE;
		}
		word[n++] = ch;
	}
	if (q != 0) {
		*why = q == '\'' ? "unterminated '" : "unterminated \"";
		return TETHER_ERR_FORMAT;
	}
	word[n] = '\0';
	*pp = p;
	return 0;
}

int agent_command_split(const char *s, char ***argv, const char **why)
{
	char **v, *word;
	size_t n = 0;
	int r = TETHER_ERR_NOMEM;

	*argv = NULL;
	*why = "out of memory";
	v = tether_calloc(ARGV_MAX + 1, sizeof(*v));
	word = tether_malloc(WORD_MAX);
	if (v == NULL || word == NULL)
		goto out;
	for (;;) {
		while (blank(*s))
			s++;
		if (*s == '\0')
			break;
		if (n == ARGV_MAX) {
			*why = "too many arguments";
			r = TETHER_ERR_LIMIT;
			goto out;
		}
		r = split_word(&s, word, why);
		if (r != 0)
			goto out;
		r = TETHER_ERR_NOMEM;
		v[n] = tether_strdup(word);
		if (v[n++] == NULL)
			goto out;
	}
	if (n == 0) {
		*why = "empty command";
		r = TETHER_ERR_FORMAT;
		goto out;
	}
	*argv = v;
	v = NULL;
	*why = NULL;
	r = 0;
out:
	agent_argv_free(v);
	tether_free(word);
	return r;
}

/* Appends s[0..n) to the growing string *dst (space separated). */
static int append(char **dst, const char *s, size_t n)
{
	size_t old = *dst != NULL ? strlen(*dst) : 0, i;
	char *grown;

	grown = tether_reallocarray(*dst, old + n + 2, 1);
	if (grown == NULL)
		return TETHER_ERR_NOMEM;
	if (old > 0)
		grown[old++] = ' ';
	for (i = 0; i < n; i++)
		grown[old + i] = s[i] == '\0' ? ' ' : s[i];
	grown[old + n] = '\0';
	*dst = grown;
	return 0;
}

int agent_plugin_parse_output(const char *out, size_t len,
			      struct agent_check_result *res)
{
	const char *nl = memchr(out, '\n', len);
	size_t first = nl != NULL ? (size_t)(nl - out) : len, text, i;
	const char *bar = memchr(out, '|', first), *rest, *bar2;
	int r = 0;

	res->perf = NULL;
	text = bar != NULL ? (size_t)(bar - out) : first;
	while (text > 0 && (blank(out[text - 1]) || out[text - 1] == '\0'))
		text--;
	i = 0;
	while (i < text && blank(out[i]))
		i++;
	if (text - i > AGENT_CHECK_OUTPUT_MAX)
		text = i + AGENT_CHECK_OUTPUT_MAX;
	memcpy(res->output, out + i, text - i);
	res->output[text - i] = '\0';
	if (bar != NULL)
		r = append(&res->perf, bar + 1,
			   first - (size_t)(bar + 1 - out));
	if (r != 0 || nl == NULL)
		return r;
	/* Long text lines; perfdata again after the first '|' among them. */
	rest = nl + 1;
	bar2 = memchr(rest, '|', len - (size_t)(rest - out));
	if (bar2 != NULL)
		r = append(&res->perf, bar2 + 1,
			   len - (size_t)(bar2 + 1 - out));
	return r;
}

struct agent_plugin {
	uv_process_t proc;
	uv_pipe_t out;
	uv_pipe_t err;
	uv_timer_t timer;
	agent_plugin_cb cb;
	void *arg;
	int pid;
	unsigned timeout_ms;
	unsigned open; /* handles not closed yet */
	bool exited;   /* reaped: its process handle may close */
	bool out_eof;
	bool err_eof;
	bool done; /* cb called or cancelled: report nothing more */
	bool closing;
	bool timed_out;
	int how;
	int value;
	size_t olen;
	size_t elen;
	char obuf[AGENT_PLUGIN_OUTPUT_MAX];
	char ebuf[AGENT_PLUGIN_OUTPUT_MAX];
	char rbuf[16384];
};

static void on_close(uv_handle_t *h)
{
	struct agent_plugin *p = h->data;

	if (--p->open == 0)
		tether_free(p);
}

static void close_one(struct agent_plugin *p, uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, on_close);
}

/*
 * Closes what may be closed now: pipes and timer at once, the process
 * handle only once reaped (closing it earlier would leave a zombie).
 */
static void shut(struct agent_plugin *p)
{
	p->closing = true;
	close_one(p, (uv_handle_t *)&p->out);
	close_one(p, (uv_handle_t *)&p->err);
	close_one(p, (uv_handle_t *)&p->timer);
	if (p->exited)
		close_one(p, (uv_handle_t *)&p->proc);
}

static void report(struct agent_plugin *p)
{
	struct agent_plugin_end e;

	if (p->done)
		return;
	p->done = true;
	memset(&e, 0, sizeof(e));
	e.timed_out = p->timed_out;
	e.how = p->how;
	e.value = p->value;
	e.out = p->obuf;
	e.outlen = p->olen;
	e.err = p->ebuf;
	e.errlen = p->elen;
	p->cb(p->arg, &e);
}

static void maybe_finish(struct agent_plugin *p)
{
	if (p->exited && p->out_eof && p->err_eof) {
		report(p);
		shut(p);
	}
}

static void kill_group(struct agent_plugin *p)
{
	if (p->pid > 0)
		kill(-p->pid, SIGKILL);
}

static void on_timer(uv_timer_t *t)
{
	struct agent_plugin *p = t->data;

	if (!p->exited)
		p->timed_out = true;
	/* Its group, grandchildren holding our pipes included. */
	kill_group(p);
	report(p);
	shut(p);
}

static void on_child_exit(uv_process_t *proc, int64_t status, int sig)
{
	struct agent_plugin *p = proc->data;

	p->exited = true;
	p->how = sig != 0 ? 1 : 0;
	p->value = sig != 0 ? sig : (int)status;
	if (p->closing) {
		close_one(p, (uv_handle_t *)&p->proc);
		return;
	}
	if (!(p->out_eof && p->err_eof))
		uv_timer_start(&p->timer, on_timer, PLUGIN_EOF_GRACE_MS, 0);
	maybe_finish(p);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct agent_plugin *p = h->data;

	*buf = uv_buf_init(p->rbuf, sizeof(p->rbuf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct agent_plugin *p = s->data;
	bool is_out = s == (uv_stream_t *)&p->out;
	char *dst = is_out ? p->obuf : p->ebuf;
	size_t *len = is_out ? &p->olen : &p->elen, take;

	if (nread > 0) {
		/* Keep the start, read and drop the rest: never block it. */
		take = AGENT_PLUGIN_OUTPUT_MAX - *len;
		if ((size_t)nread < take)
			take = (size_t)nread;
		memcpy(dst + *len, buf->base, take);
		*len += take;
		return;
	}
	if (nread == 0)
		return;
	uv_read_stop(s);
	if (is_out)
		p->out_eof = true;
	else
		p->err_eof = true;
	maybe_finish(p);
}

int agent_plugin_start(uv_loop_t *loop, char *const *argv, unsigned timeout_ms,
		       agent_plugin_cb cb, void *arg, struct agent_plugin **out)
{
	uv_process_options_t o;
	uv_stdio_container_t stdio[3];
	struct agent_plugin *p;
	int r;

	*out = NULL;
	p = tether_calloc(1, sizeof(*p));
	if (p == NULL)
		return UV_ENOMEM;
	p->cb = cb;
	p->arg = arg;
	p->timeout_ms = timeout_ms;
	p->proc.data = p;
	p->out.data = p;
	p->err.data = p;
	p->timer.data = p;
	uv_pipe_init(loop, &p->out, 0);
	uv_pipe_init(loop, &p->err, 0);
	uv_timer_init(loop, &p->timer);
	p->open = 4;
	memset(&o, 0, sizeof(o));
	memset(stdio, 0, sizeof(stdio));
	stdio[0].flags = UV_IGNORE; /* /dev/null */
	stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	stdio[1].data.stream = (uv_stream_t *)&p->out;
	stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	stdio[2].data.stream = (uv_stream_t *)&p->err;
	o.file = argv[0];
	o.args = (char **)argv;
	o.cwd = "/";
	o.exit_cb = on_child_exit;
	o.stdio = stdio;
	o.stdio_count = 3;
	/* setsid(): its own process group, which the timeout kills whole. */
	o.flags = UV_PROCESS_DETACHED;
	r = uv_spawn(loop, &p->proc, &o);
	if (r != 0) {
		/* Nothing to reap: every handle may close now. */
		p->done = true;
		p->exited = true;
		shut(p);
		return r;
	}
	p->pid = p->proc.pid;
	uv_read_start((uv_stream_t *)&p->out, on_alloc, on_read);
	uv_read_start((uv_stream_t *)&p->err, on_alloc, on_read);
	uv_timer_start(&p->timer, on_timer, timeout_ms, 0);
	*out = p;
	return 0;
}

void agent_plugin_cancel(struct agent_plugin *p)
{
	if (p == NULL || p->closing)
		return;
	p->done = true;
	kill_group(p);
	shut(p);
}

/* "10 s", "0.5 s" */
static void seconds(unsigned ms, char *out, size_t outlen)
{
	if (ms % 1000 == 0)
		snprintf(out, outlen, "%u s", ms / 1000);
	else
		snprintf(out, outlen, "%.1f s", ms / 1000.0);
}

void agent_plugin_result(const struct agent_plugin_end *e, unsigned timeout_ms,
			 struct agent_check_result *res)
{
	struct agent_check_result parsed;
	char t[32];

	memset(&parsed, 0, sizeof(parsed));
	res->perf = NULL;
	res->state = TETHER_CHECK_UNKNOWN;
	if (e->timed_out) {
		seconds(timeout_ms, t, sizeof(t));
		snprintf(res->output, sizeof(res->output),
			 "plugin timed out after %s", t);
		return;
	}
	/* Nagios reads stdout; stderr only explains a silent failure. */
	if (e->outlen > 0)
		agent_plugin_parse_output(e->out, e->outlen, &parsed);
	else if (e->errlen > 0)
		agent_plugin_parse_output(e->err, e->errlen, &parsed);
	if (e->how == 1 || e->value < 0 || e->value > 3) {
		snprintf(
		    res->output, sizeof(res->output), "plugin %s %d%s%.900s",
		    e->how == 1 ? "killed by signal" : "exited with status",
		    e->value, parsed.output[0] != '\0' ? ": " : "",
		    parsed.output);
		tether_free(parsed.perf);
		return;
	}
	res->state = (enum tether_check_state)e->value;
	if (parsed.output[0] == '\0')
		snprintf(res->output, sizeof(res->output),
			 "(no output from plugin)");
	else
		memcpy(res->output, parsed.output, sizeof(res->output));
	res->perf = parsed.perf;
}
