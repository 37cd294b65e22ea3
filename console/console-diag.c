/*
 * `tether diag T-N [-o FILE] [--json] [--saved]`: asks the ticket's agent
 * for a diagnostics bundle on a `diag` channel (docs/protocol.md,
 * "Diagnostics"), shows it, and saves it on the ticket with diag_attach;
 * --saved shows the newest bundle the ticket already holds (diag_get).
 *
 * The channel is driven here rather than by console-chan.c: its STDOUT is
 * one JSON document to parse, not a stream for our standard output, and
 * the connection stays open afterwards for the diag_attach request.
 *
 * The bundle comes from the customer's machine, so every string in it is
 * printed through console_print_clean(), and the summary tolerates any
 * section being missing, of another shape, or {"error": ...}.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <tether/alloc.h>
#include <tether/buf.h>
#include <tether/bundle.h>
#include <tether/chan.h>
#include <tether/crypto.h>
#include <tether/diagview.h>
#include <tether/err.h>
#include <tether/link.h>
#include <tether/msg.h>
#include <tether/proto.h>

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
	char ticket[CONSOLE_TICKET_MAX];
	const char *out_file;
	bool json;
	bool saved;
};

/* One diag channel and what came back on it. */
struct diag_run {
	struct console_client c;
	struct console_config cfg;
	struct tether_chan *chan;
	uint32_t channel;
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
	bool got_exit;
	bool got_close;
	bool got_error;
	bool failed;
	int status;
	char failure[DIAG_REASON_MAX];
};

static void fail(struct diag_run *d, const char *what, const char *detail)
{
	if (d->failed || d->got_close)
		return;
	d->failed = true;
	snprintf(d->failure, sizeof(d->failure), "%s%s", what,
		 detail != NULL ? detail : "");
}

static bool running(const struct diag_run *d)
{
	return !d->failed && !d->got_close && !d->c.closed;
}

/* ---- Progress: one line on a terminal while the agent collects ---------- */

static void progress_draw(struct diag_run *d)
{
	uint64_t secs = (uv_now(&d->c.loop) - d->start_ms) / 1000;

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
	struct diag_run *d = t->data;

	if (running(d))
		progress_draw(d);
}

/* ---- The channel -------------------------------------------------------- */

static void send_failed(struct diag_run *d, int err)
{
	/* A closing link says why itself, once the loop has run. */
	if (err != TETHER_ERR_CLOSED)
		fail(d, "cannot send: ", tether_strerror(err));
}

static void take_stdout(struct diag_run *d, const uint8_t *p, size_t n)
{
	size_t cap;
	char *out;
	int err;

	if (n > DIAG_OUT_MAX - d->out_len) {
		fail(d, "the diagnostics bundle is over 16 MiB", NULL);
		return;
	}
	if (d->out_len + n + 1 > d->out_cap) {
		cap = d->out_cap != 0 ? d->out_cap : 64 * 1024;
		while (cap < d->out_len + n + 1)
			cap *= 2;
		out = realloc(d->out, cap);
		if (out == NULL) {
			fail(d, "out of memory", NULL);
			return;
		}
		d->out = out;
		d->out_cap = cap;
	}
	memcpy(d->out + d->out_len, p, n);
	d->out_len += n;
	d->out[d->out_len] = '\0';
	/* Kept in memory is as good as written out: credit it at once. */
	err = tether_chan_consumed(d->chan, d->c.link, n);
	if (err != 0)
		send_failed(d, err);
}

static void take_stderr(struct diag_run *d, const uint8_t *p, size_t n)
{
	size_t room = DIAG_ERR_MAX - d->err_len;
	int err;

	if (n < room)
		room = n;
	memcpy(d->err + d->err_len, p, room);
	d->err_len += room;
	d->err[d->err_len] = '\0';
	err = tether_chan_consumed(d->chan, d->c.link, n);
	if (err != 0)
		send_failed(d, err);
}

/*
 * A body that did not decode (err, not 0) ends the run: "malformed
 * WHAT" from the agent, or our own lack of memory.
 */
static void bad_body(struct diag_run *d, int err, const char *what)
{
	if (err == TETHER_ERR_NOMEM)
		fail(d, "out of memory", NULL);
	else
		fail(d, "channel protocol error: ", what);
}

/* EOF(1) or EOF(2): one of the collector's outputs is over. */
static void on_eof_msg(struct diag_run *d, const uint8_t *body, size_t len)
{
	struct tether_msg_eof m;
	int err = tether_msg_decode_eof(body, len, &m);

	if (err == 0 && m.stream == TETHER_MSG_STREAM_STDIN)
		err = TETHER_ERR_FORMAT;
	if (err != 0)
		bad_body(d, err, "malformed EOF");
}

static void on_exit_msg(struct diag_run *d, const uint8_t *body, size_t len)
{
	struct tether_msg_exit m;
	uint32_t value;
	int err;

	if ((err = tether_msg_decode_exit(body, len, &m)) != 0) {
		bad_body(d, err, "malformed EXIT");
		return;
	}
	value = m.value;
	if (m.how == TETHER_MSG_EXIT_SIGNAL)
		value = value > 127 ? 255 : 128 + value;
	d->status = value > 255 ? 255 : (int)value;
	d->got_exit = true;
}

static void on_error_msg(struct diag_run *d, const uint8_t *body, size_t len)
{
	struct tether_msg_error m;
	int err;

	if ((err = tether_msg_decode_error(body, len, &m)) != 0) {
		bad_body(d, err, "malformed ERROR");
		return;
	}
	progress_clear(d);
	d->got_error = true;
	fputs("tether: remote: ", stderr);
	console_print_clean(stderr, m.reason);
	fputc('\n', stderr);
	tether_msg_clear_error(&m);
}

static void on_data(void *arg, const struct tether_frame *f)
{
	struct diag_run *d = arg;
	const uint8_t *body;
	uint8_t msg;
	size_t len;
	int err;

	if (!running(d))
		return;
	err = tether_chan_open(d->chan, f, &msg, &body, &len);
	if (err != 0) {
		fail(d,
		     err == TETHER_ERR_AUTH ? "channel integrity check failed"
					    : "channel protocol error: ",
		     err == TETHER_ERR_AUTH ? NULL : tether_strerror(err));
		return;
	}
	switch (msg) {
	case TETHER_MSG_STDOUT:
		take_stdout(d, body, len);
		break;
	case TETHER_MSG_STDERR:
		take_stderr(d, body, len);
		break;
	case TETHER_MSG_EOF:
		on_eof_msg(d, body, len);
		break;
	case TETHER_MSG_EXIT:
		on_exit_msg(d, body, len);
		break;
	case TETHER_MSG_WINDOW:
		/* Applied by tether_chan_open(); we send no data. */
		break;
	case TETHER_MSG_ERROR:
		on_error_msg(d, body, len);
		break;
	case TETHER_MSG_CLOSE:
		if (tether_msg_decode_empty(body, len) != 0)
			fail(d, "channel protocol error: ", "malformed CLOSE");
		else
			d->got_close = true;
		break;
	default:
		fail(d, "channel protocol error: ", "unexpected message");
		break;
	}
}

/* The relay closes our channel when the agent's connection goes away. */
static void on_ctrl(void *arg, json_t *msg)
{
	struct diag_run *d = arg;
	const char *reason = console_json_str(msg, "reason");

	if (strcmp(console_json_str(msg, "t"), "close") != 0 ||
	    json_integer_value(json_object_get(msg, "channel")) != d->channel)
		return;
	fail(d,
	     "connection lost: ", reason != NULL ? reason : "channel closed");
}

/* Opens the diag channel on the ticket's session: 0, or -1 once reported. */
static int open_diag(struct diag_run *d, const char *ticket)
{
	uint8_t ke[TETHER_SPAKE2_KE_LEN], nonce_c[TETHER_SEAL_NONCE_LEN];
	json_t *session = NULL, *req, *ans = NULL;
	int err, ret = -1;

	if (console_attach(&d->c, ticket, &session, ke) != 0)
		goto out;
	req = console_open_request(session, TETHER_KIND_NAME_DIAG, nonce_c);
	if (req == NULL)
		goto out;
	err = console_request(&d->c, req, &ans);
	if (err == CONSOLE_EREMOTE)
		console_report_answer(ans, NULL);
	if (err == 0)
		ret = console_open_answer(ans, ke, nonce_c, &d->channel,
					  &d->chan);
out:
	tether_wipe(ke, sizeof(ke));
	json_decref(session);
	json_decref(ans);
	return ret;
}

/*
 * EXEC with no arguments starts the agent's own collector; EOF(0) at once,
 * as it reads nothing from us.  0 or TETHER_ERR_*.
 */
static int send_request(struct diag_run *d)
{
	const struct tether_msg_exec m = {.argc = 0, .argv = NULL};
	struct tether_buf *b = tether_buf_new(sizeof(uint32_t));
	int err = b != NULL ? tether_msg_encode_exec(b, &m) : TETHER_ERR_NOMEM;

	if (err == 0)
		err = tether_chan_send(d->chan, d->c.link, TETHER_MSG_EXEC,
				       tether_buf_ptr(b), tether_buf_len(b));
	tether_buf_free(b);
	if (err == 0)
		err = console_send_stdin_eof(d->chan, d->c.link);
	return err;
}

/* Sends the request, then waits for CLOSE. */
static void collect(struct diag_run *d)
{
	int err;

	d->c.hooks.on_data = on_data;
	d->c.hooks.on_ctrl = on_ctrl;
	d->c.hooks.arg = d;
	d->start_ms = uv_now(&d->c.loop);
	if (d->progress && uv_timer_init(&d->c.loop, &d->tick) == 0) {
		d->tick_ready = true;
		d->tick.data = d;
		uv_timer_start(&d->tick, on_tick, 0, 1000);
	}
	err = send_request(d);
	if (err != 0)
		send_failed(d, err);
	while (running(d))
		console_run_once(&d->c);
	if (d->tick_ready) {
		uv_timer_stop(&d->tick);
		uv_close((uv_handle_t *)&d->tick, NULL);
		d->tick_ready = false;
	}
	progress_clear(d);
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
			fputs("tether: remote: ", stderr);
			console_print_clean(stderr, line);
			fputc('\n', stderr);
		}
		p += nl != NULL ? n + 1 : n;
	}
}

/*
 * What the run came to: 0 with the bundle in *bundle, or the exit status
 * once reported (1 for the collector's failure, 255 for ours).
 */
static int outcome(struct diag_run *d, json_t **bundle)
{
	json_error_t jerr;

	*bundle = NULL;
	print_remote_stderr(d);
	if (d->failed) {
		fputs("tether: ", stderr);
		console_print_clean(stderr, d->failure);
		fputc('\n', stderr);
		return CONSOLE_EXIT_FAIL;
	}
	if (!d->got_close) {
		console_report_lost(&d->c);
		return CONSOLE_EXIT_FAIL;
	}
	if (d->got_error)
		return 1;
	if (!d->got_exit) {
		console_error("the diagnostics collector ended without a "
			      "status");
		return 1;
	}
	if (d->status != 0) {
		console_error("the diagnostics collector failed (status %d)",
			      d->status);
		return 1;
	}
	*bundle =
	    json_loadb(d->out != NULL ? d->out : "", d->out_len, 0, &jerr);
	if (!json_is_object(*bundle)) {
		json_decref(*bundle);
		*bundle = NULL;
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
	char *text = json_dumps(bundle, JSON_INDENT(2));
	size_t len;
	int fd, err;

	if (text == NULL) {
		console_error("out of memory");
		return -1;
	}
	len = strlen(text);
	text[len++] = '\n'; /* over the NUL: written by length */
	if (strcmp(path, "-") == 0) {
		fflush(stdout);
		err = console_write_all(STDOUT_FILENO, text, len);
		if (err != 0)
			console_error("writing standard output: %s",
				      strerror(-err));
		free(text);
		return err != 0 ? -1 : 0;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		console_error("%s: %s", path, strerror(errno));
		free(text);
		return -1;
	}
	/* A file that was there keeps no wider mode: a bundle is private. */
	err = fchmod(fd, 0600) != 0 ? -errno : 0;
	if (err == 0)
		err = console_write_all(fd, text, len);
	if (close(fd) != 0 && err == 0)
		err = -errno;
	if (err != 0)
		console_error("%s: %s", path, strerror(-err));
	free(text);
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
			.subject = a->ticket,
			.saved_at = saved_at,
			.source = source,
			.color = isatty(STDOUT_FILENO) && getenv("NO_COLOR") == NULL,
		};

		tether_diagview_print(stdout, bundle, &o);
	}
	return 0;
}

/* diag_attach on the open connection: 0, or the exit status once said. */
static int save(struct diag_run *d, const struct diag_args *a,
		const json_t *bundle)
{
	bool quiet_stdout =
	    a->json || (a->out_file != NULL && strcmp(a->out_file, "-") == 0);
	char *packed = NULL;
	char size[32];
	json_t *ans = NULL;
	json_int_t n;
	int err, ret = 1;

	err = tether_bundle_pack(bundle, &packed);
	if (err == TETHER_ERR_TOO_LARGE) {
		console_error("the bundle is too large to save on %s (over "
			      "%u KiB packed)",
			      a->ticket, TETHER_BUNDLE_MAX / 1024);
		return 1;
	}
	if (err != 0) {
		console_error("cannot pack the bundle: %s",
			      tether_strerror(err));
		return 1;
	}
	err = console_request(&d->c,
			      json_pack("{s:s, s:s, s:s}", "t", "diag_attach",
					"ticket", a->ticket, "bundle", packed),
			      &ans);
	if (err == CONSOLE_EREMOTE) {
		fprintf(stderr, "tether: not saved on %s: ", a->ticket);
		console_print_clean(stderr, console_json_str(ans, "message"));
		fputc('\n', stderr);
	} else if (err != 0) {
		ret = CONSOLE_EXIT_FAIL;
	} else {
		n = json_integer_value(json_object_get(ans, "size"));
		console_format_size(n > 0 ? (uint64_t)n : strlen(packed), size,
				    sizeof(size));
		fflush(stdout);
		fprintf(quiet_stdout ? stderr : stdout, "saved on %s (%s)\n",
			a->ticket, size);
		ret = 0;
	}
	json_decref(ans);
	free(packed);
	return ret;
}

static int diag_live(const struct diag_args *a)
{
	struct diag_run d;
	json_t *bundle = NULL;
	int status = CONSOLE_EXIT_FAIL;

	memset(&d, 0, sizeof(d));
	d.progress = isatty(STDERR_FILENO);
	if (console_connect(&d.c, &d.cfg) != 0 || open_diag(&d, a->ticket) != 0)
		goto out;
	collect(&d);
	status = outcome(&d, &bundle);
	if (status != 0)
		goto out;
	if (show(a, bundle, NULL, NULL) != 0) {
		status = CONSOLE_EXIT_FAIL;
		goto out;
	}
	status = save(&d, a, bundle);
out:
	json_decref(bundle);
	console_client_close(&d.c);
	console_config_clear(&d.cfg);
	tether_chan_free(d.chan);
	free(d.out);
	return status;
}

/* --saved: the newest bundle on the ticket, from the relay's store. */
static int diag_saved(const struct diag_args *a)
{
	struct console_config cfg;
	struct console_client c;
	json_t *ans = NULL, *bundle = NULL;
	const char *code, *msg;
	int err, status = CONSOLE_EXIT_FAIL;

	if (console_connect(&c, &cfg) != 0)
		goto out;
	err = console_request(
	    &c, json_pack("{s:s, s:s}", "t", "diag_get", "ticket", a->ticket),
	    &ans);
	if (err == CONSOLE_EREMOTE) {
		code = console_json_str(ans, "code");
		msg = console_json_str(ans, "message");
		/* not_found is either the ticket or its bundle. */
		if (code != NULL && strcmp(code, "not_found") == 0 &&
		    (msg == NULL || (strstr(msg, "no such ticket") == NULL &&
				     strstr(msg, "no ticket") == NULL))) {
			console_error("no diagnostics saved on %s", a->ticket);
			status = 1;
		} else {
			console_report_answer(ans, a->ticket);
		}
		goto out;
	}
	if (err != 0)
		goto out;
	if (console_json_str(ans, "bundle") == NULL) {
		console_error("no diagnostics saved on %s", a->ticket);
		status = 1;
		goto out;
	}
	err = tether_bundle_unpack(console_json_str(ans, "bundle"), &bundle);
	if (err != 0) {
		console_error("the relay sent a malformed bundle: %s",
			      tether_strerror(err));
		goto out;
	}
	if (show(a, bundle, console_json_str(ans, "created_at"),
		 console_json_str(ans, "source")) == 0)
		status = 0;
out:
	json_decref(bundle);
	json_decref(ans);
	console_client_close(&c);
	console_config_clear(&cfg);
	return status;
}

int console_diag(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"output", required_argument, NULL, 'o'},
	    {"json", no_argument, NULL, 'j'},
	    {"saved", no_argument, NULL, 's'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct diag_args a;
	int opt;

	memset(&a, 0, sizeof(a));
	optind = 0;
	while ((opt = getopt_long(argc, argv, ":o:jh", opts, NULL)) != -1) {
		switch (opt) {
		case 'o':
			if (optarg[0] == '\0')
				return console_usage_error("diag",
							   "empty -o FILE");
			a.out_file = optarg;
			break;
		case 'j':
			a.json = true;
			break;
		case 's':
			a.saved = true;
			break;
		case 'h':
			fputs(diag_usage, stdout);
			return 0;
		default:
			return console_bad_option("diag", opt, argv);
		}
	}
	if (argc - optind != 1)
		return console_usage_error("diag", "expected one T-N");
	if (console_ticket_arg("diag", argv[optind], a.ticket,
			       sizeof(a.ticket)))
		return CONSOLE_EXIT_USAGE;
	return a.saved ? diag_saved(&a) : diag_live(&a);
}
