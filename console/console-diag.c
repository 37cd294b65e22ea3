/*
 * `tether diag T-N [-o FILE] [--json] [--saved]`: asks the ticket's agent
 * for a diagnostics bundle on a `diag` channel (docs/protocol.md,
 * "Diagnostics"), shows it, and saves it on the ticket with diag_attach;
 * --saved shows the newest bundle the ticket already holds (diag_get).
 *
 * The channel is console-run.c's; this file is its output sink: STDOUT is
 * one JSON document kept in memory to parse, STDERR the collector's
 * warnings, kept to be printed as "tether: remote: LINE" at the end; the
 * outcome is the collector's status and whether its output parsed, and
 * the still open connection then carries the diag_attach request.  While
 * it runs, a terminal shows how long it has taken.
 *
 * The bundle comes from the customer's machine, so every string in it is
 * printed cleaned, and the summary (tether/diagview.h) tolerates any
 * section being missing, of another shape, or {"error": ...}.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <tether/alloc.h>
#include <tether/buf.h>
#include <tether/bundle.h>
#include <tether/chan.h>
#include <tether/diagview.h>
#include <tether/err.h>
#include <tether/msg.h>
#include <tether/text.h>

#include "console.h"

/* A bundle larger than this is not one: the collector keeps far below. */
#define DIAG_OUT_MAX (16u * 1024 * 1024)
/* The collector's warnings we keep; more is noise. */
#define DIAG_ERR_MAX (64u * 1024)
#define DIAG_REASON_MAX 1024

static const char diag_usage[] =
    "Usage: tether diag T-N [-o FILE] [--json] [--saved]\n"
    "\n"
    "Collects a diagnostics bundle on the machine whose agent joined T-N,\n"
    "shows a summary (problems first) and saves the bundle on the ticket.\n"
    "  -o FILE   also write the whole bundle as JSON to FILE (mode 0600;\n"
    "            - for standard output, instead of the summary)\n"
    "  --json    print the whole bundle as JSON instead of the summary\n"
    "  --saved   show the newest bundle saved on T-N (no session needed)\n";

struct diag_args {
	struct console_args args; /* the ticket */
	const char *out_file;
	bool json;
	bool saved;
};

/* What comes back on the diag channel, and the progress line meanwhile. */
struct diag_run {
	const struct diag_args *a;
	uv_timer_t tick;
	bool tick_ready;
	bool progress; /* standard error is a terminal */
	bool drawn;
	uint64_t start_ms;
	char *out; /* STDOUT: the bundle's JSON text */
	size_t out_len;
	size_t out_cap;
	char err[DIAG_ERR_MAX + 1]; /* STDERR, cut at DIAG_ERR_MAX */
	size_t err_len;
	json_t *bundle; /* parsed, once the collector ended well */
};

/* ---- Progress: one line on a terminal while the agent collects ---------- */

static void progress_draw(struct diag_run *d, uv_loop_t *loop)
{
	uint64_t secs = (uv_now(loop) - d->start_ms) / 1000;

	fprintf(stderr, "\r\033[Kcollecting diagnostics\xe2\x80\xa6 %llus",
		(unsigned long long)secs);
	fflush(stderr);
	d->drawn = true;
}

static void progress_clear(struct diag_run *d)
{
	if (d->drawn)
		fputs("\r\033[K", stderr);
	d->drawn = false;
}

static void on_tick(uv_timer_t *t)
{
	progress_draw(t->data, t->loop);
}

/* ---- The sink ----------------------------------------------------------- */

static void take_stdout(struct console_run *r, struct diag_run *d,
			const uint8_t *p, size_t n)
{
	size_t cap;
	char *out;

	if (n > DIAG_OUT_MAX - d->out_len) {
		console_run_fail(r, "the diagnostics bundle is over 16 MiB",
				 NULL);
		return;
	}
	if (d->out_len + n + 1 > d->out_cap) {
		cap = d->out_cap != 0 ? d->out_cap : 64 * 1024;
		while (cap < d->out_len + n + 1)
			cap *= 2;
		out = tether_reallocarray(d->out, cap, 1);
		if (out == NULL) {
			console_run_fail(r, "out of memory", NULL);
			return;
		}
		d->out = out;
		d->out_cap = cap;
	}
	memcpy(d->out + d->out_len, p, n);
	d->out_len += n;
	d->out[d->out_len] = '\0';
}

static void take_stderr(struct diag_run *d, const uint8_t *p, size_t n)
{
	size_t room = DIAG_ERR_MAX - d->err_len;

	if (n < room)
		room = n;
	memcpy(d->err + d->err_len, p, room);
	d->err_len += room;
	d->err[d->err_len] = '\0';
}

/* Kept in memory is as good as written out: the driver credits it. */
static void diag_output(struct console_run *r, void *arg, int fd,
			const uint8_t *p, size_t n)
{
	if (fd == STDOUT_FILENO)
		take_stdout(r, arg, p, n);
	else
		take_stderr(arg, p, n);
}

static void diag_clear(struct console_run *r, void *arg)
{
	(void)r;
	progress_clear(arg);
}

/*
 * EXEC with no arguments starts the agent's own collector; EOF(0) at once,
 * as it reads nothing from us.
 */
static int diag_start(struct console_run *r, void *arg)
{
	const struct tether_msg_exec m = {.argc = 0, .argv = NULL};
	struct tether_buf *b = tether_buf_new(sizeof(uint32_t));
	int built = b != NULL ? tether_msg_encode_exec(b, &m) : 0;
	struct diag_run *d = arg;
	uv_loop_t *loop = console_run_loop(r);

	d->start_ms = uv_now(loop);
	if (d->progress && uv_timer_init(loop, &d->tick) == 0) {
		d->tick_ready = true;
		d->tick.data = d;
		uv_timer_start(&d->tick, on_tick, 0, 1000);
	}
	if (console_run_send(r, TETHER_MSG_EXEC, b, built) != 0)
		return -1;
	console_run_input_end(r);
	return 0;
}

/* The collector's warnings, one "tether: remote: LINE" each. */
static void print_remote_stderr(const struct diag_run *d)
{
	const char *p = d->err, *nl;
	char line[DIAG_REASON_MAX];
	size_t n;

	while (*p != '\0') {
		nl = strchr(p, '\n');
		n = nl != NULL ? (size_t)(nl - p) : strlen(p);
		if (n > 0) {
			snprintf(line, sizeof(line), "%.*s", (int)n, p);
			console_error_text("remote: ", line);
		}
		p += nl != NULL ? n + 1 : n;
	}
}

/* Before the outcome: the progress line goes, the warnings come. */
static void diag_finish(struct console_run *r, void *arg)
{
	struct diag_run *d = arg;

	(void)r;
	if (d->tick_ready) {
		uv_timer_stop(&d->tick);
		uv_close((uv_handle_t *)&d->tick, NULL);
		d->tick_ready = false;
	}
	progress_clear(d);
	print_remote_stderr(d);
}

/*
 * The channel ran to its end: 0 with the bundle parsed, or 1 for the
 * collector's failure, once reported.
 */
static int diag_end(struct console_run *r, void *arg,
		    const struct console_run_result *res)
{
	struct diag_run *d = arg;
	json_error_t jerr;

	(void)r;
	if (res->error)
		return 1;
	if (!res->exited) {
		console_error("the diagnostics collector ended without a "
			      "status");
		return 1;
	}
	if (res->status != 0) {
		console_error("the diagnostics collector failed (status %d)",
			      res->status);
		return 1;
	}
	d->bundle =
	    json_loadb(d->out != NULL ? d->out : "", d->out_len, 0, &jerr);
	if (!json_is_object(d->bundle)) {
		json_decref(d->bundle);
		d->bundle = NULL;
		console_error("the agent sent a malformed bundle: %s",
			      jerr.text[0] != '\0' ? jerr.text
						   : "not a JSON object");
		return 1;
	}
	return 0;
}

/* ---- Output and saving -------------------------------------------------- */

/* The whole bundle, pretty, to path (mode 0600) or "-" (stdout). */
static int write_json(const json_t *bundle, const char *path)
{
	bool to_stdout = strcmp(path, "-") == 0;
	char *text = json_dumps(bundle, JSON_INDENT(2));
	size_t len;
	int fd, err;

	if (text == NULL) {
		console_error("out of memory");
		return -1;
	}
	len = strlen(text);
	text[len++] = '\n'; /* over the NUL: written by length */
	if (to_stdout) {
		fflush(stdout);
		err = console_fd_write_all(STDOUT_FILENO, text, len);
	} else {
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		/* A file that was there keeps no wider mode: it is private. */
		err = fd < 0 || fchmod(fd, 0600) != 0 ? -errno : 0;
		if (err == 0)
			err = console_fd_write_all(fd, text, len);
		if (fd >= 0 && close(fd) != 0 && err == 0)
			err = -errno;
	}
	if (err != 0 && to_stdout)
		console_error("writing standard output: %s", strerror(-err));
	else if (err != 0)
		console_error("%s: %s", path, strerror(-err));
	tether_free(text);
	return err != 0 ? -1 : 0;
}

/* Shows bundle as asked: 0, or -1 once reported. */
static int show(const struct diag_args *a, const json_t *bundle,
		const char *saved_at, const char *source)
{
	bool to_stdout = a->out_file != NULL && strcmp(a->out_file, "-") == 0;

	if (a->out_file != NULL && write_json(bundle, a->out_file) != 0)
		return -1;
	if (a->json && !to_stdout)
		return console_json_print(bundle);
	if (!a->json && !to_stdout) {
		struct tether_diagview_opts o = {
		    .subject = a->args.ticket_name,
		    .saved_at = saved_at,
		    .source = source,
		    .color =
			isatty(STDOUT_FILENO) && getenv("NO_COLOR") == NULL,
		};

		tether_diagview_print(stdout, bundle, &o);
	}
	return 0;
}

/* diag_attach on the open connection: 0, or the exit status once said. */
static int save(struct console_client *c, const struct diag_args *a,
		const json_t *bundle)
{
	bool quiet_stdout =
	    a->json || (a->out_file != NULL && strcmp(a->out_file, "-") == 0);
	struct tether_ctrl_diag_attach req = {.ticket = a->args.ticket};
	const char *ticket = a->args.ticket_name;
	struct tether_ctrl_msg ans;
	char *packed = NULL;
	char size[32];
	int err, ret = 1;

	err = tether_bundle_pack(bundle, &packed);
	if (err == TETHER_ERR_TOO_LARGE) {
		console_error("the bundle is too large to save on %s (over "
			      "%u KiB packed)",
			      ticket, TETHER_BUNDLE_MAX / 1024);
		return 1;
	}
	if (err != 0) {
		console_error("cannot pack the bundle: %s",
			      tether_strerror(err));
		return 1;
	}
	req.bundle = packed;
	err = console_client_call(c, TETHER_CTRL_DIAG_ATTACH, &req, &ans);
	if (err == CONSOLE_EREMOTE) {
		fprintf(stderr, "tether: not saved on %s: ", ticket);
		tether_text_print_clean(stderr, ans.body.err.message);
		fputc('\n', stderr);
	} else if (err != 0) {
		ret = CONSOLE_EXIT_FAIL;
	} else {
		tether_text_size(ans.body.diag_attach_ok.size > 0
				     ? (uint64_t)ans.body.diag_attach_ok.size
				     : strlen(packed),
				 size, sizeof(size));
		fflush(stdout);
		fprintf(quiet_stdout ? stderr : stdout, "saved on %s (%s)\n",
			ticket, size);
		ret = 0;
	}
	tether_ctrl_msg_free(&ans);
	tether_free(packed);
	return ret;
}

/* The channel went well: show the bundle, then save it on the ticket. */
static int diag_after(struct console_run *r, void *arg, int status)
{
	struct diag_run *d = arg;

	if (status != 0)
		return status;
	if (show(d->a, d->bundle, NULL, NULL) != 0)
		return CONSOLE_EXIT_FAIL;
	return save(console_run_client(r), d->a, d->bundle);
}

static int diag_live(const struct diag_args *a)
{
	struct diag_run d;
	const struct console_run_ops ops = {
	    .kind = TETHER_KIND_DIAG,
	    .no_stdin = true,
	    .start = diag_start,
	    .finish = diag_finish,
	    .output = diag_output,
	    .clear = diag_clear,
	    .end = diag_end,
	    .after = diag_after,
	    .arg = &d,
	};
	int status;

	memset(&d, 0, sizeof(d));
	d.a = a;
	d.progress = isatty(STDERR_FILENO);
	status = console_run(a->args.ticket, a->args.ticket_name, &ops);
	json_decref(d.bundle);
	tether_free(d.out);
	return status;
}

/* diag_get's not_found is either the ticket or its bundle. */
static bool no_bundle(const struct tether_ctrl_err *e)
{
	return e->code == TETHER_CTRL_E_NOT_FOUND &&
	       strstr(e->message, "no such ticket") == NULL &&
	       strstr(e->message, "no ticket") == NULL;
}

/* --saved: the newest bundle on the ticket, from the relay's store. */
static int diag_saved(const struct diag_args *a)
{
	const struct tether_ctrl_ticket_ref req = {.ticket = a->args.ticket};
	const char *ticket = a->args.ticket_name;
	const struct tether_ctrl_diag_get_ok *ok;
	char when[TETHER_CTRL_TIME_LEN];
	struct console_client c;
	struct tether_ctrl_msg ans;
	json_t *bundle = NULL;
	int err, status = CONSOLE_EXIT_FAIL;

	memset(&ans, 0, sizeof(ans));
	if (console_client_open(&c) != 0)
		goto out;
	err = console_client_call(&c, TETHER_CTRL_DIAG_GET, &req, &ans);
	if (err == CONSOLE_EREMOTE && no_bundle(&ans.body.err)) {
		console_error("no diagnostics saved on %s", ticket);
		status = 1;
	} else if (err == CONSOLE_EREMOTE) {
		console_client_report_err(&ans.body.err, ticket);
	}
	if (err != 0)
		goto out;
	ok = &ans.body.diag_get_ok;
	err = tether_bundle_unpack(ok->bundle, &bundle);
	if (err != 0) {
		console_error("the relay sent a malformed bundle: %s",
			      tether_strerror(err));
		goto out;
	}
	if (ok->created_at == 0 ||
	    tether_ctrl_time_format(ok->created_at, when) != 0)
		when[0] = '\0';
	if (show(a, bundle, when[0] != '\0' ? when : NULL, ok->source) == 0)
		status = 0;
out:
	json_decref(bundle);
	tether_ctrl_msg_free(&ans);
	console_client_close(&c);
	return status;
}

static const struct option diag_longs[] = {
    {"output", required_argument, NULL, 'o'},
    {"saved", no_argument, NULL, 's'},
    {NULL, 0, NULL, 0},
};

static int diag_option(void *arg, int opt, char *optarg)
{
	struct diag_args *a = arg;

	if (opt == 's') {
		a->saved = true;
	} else if (optarg[0] == '\0') {
		return console_usage_error("diag", "empty -o FILE");
	} else {
		a->out_file = optarg;
	}
	return -1;
}

static const struct console_opts diag_opts = {
    .name = "diag",
    .usage = diag_usage,
    .shorts = "o:j",
    .longs = diag_longs,
    .flags = CONSOLE_OPTS_JSON | CONSOLE_OPTS_TICKET,
    .min = 1,
    .max = 1,
    .need = "expected one T-N",
    .option = diag_option,
};

int console_diag(int argc, char **argv)
{
	struct diag_args a;
	int r;

	memset(&a, 0, sizeof(a));
	r = console_opts_parse(&diag_opts, argc, argv, &a, &a.args);
	if (r >= 0)
		return r;
	a.json = a.args.json;
	return a.saved ? diag_saved(&a) : diag_live(&a);
}
