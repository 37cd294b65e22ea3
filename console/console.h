/*
 * The technician console `tether`: shared types and the functions the
 * command files use.  Conventions: commands return the process exit status;
 * helpers return 0 on success and -1 after printing one "tether: ..." line,
 * so every failure is reported exactly once, where it is understood best.
 */
#ifndef TETHER_CONSOLE_H
#define TETHER_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>
#include <uv.h>

#include <tether/frame.h>
#include <tether/seal.h>
#include <tether/spake2.h>
#include <tether/tls.h>

/* Exit statuses for our own failures (ssh's convention) and bad usage. */
#define CONSOLE_EXIT_FAIL 255
#define CONSOLE_EXIT_USAGE 2

/* console_request(): the relay answered with an "err" message. */
#define CONSOLE_EREMOTE 1

#define CONSOLE_HOST_MAX 256
#define CONSOLE_HOSTPORT_MAX (CONSOLE_HOST_MAX + 8)
#define CONSOLE_TICKET_MAX 24
#define CONSOLE_SESSION_MAX 64
#define CONSOLE_NAME_MAX 128
#define CONSOLE_REASON_MAX 256

/* What `tether login` stored: the relay, our token, the pinned cert. */
struct console_config {
	char relay[CONSOLE_HOSTPORT_MAX]; /* normalised "HOST:PORT" */
	char host[CONSOLE_HOST_MAX];
	int port;
	char fingerprint[TETHER_TLS_FP_LEN];
	char *token; /* secret: wiped by console_config_clear() */
};

/* Callbacks for traffic that is not the answer to a request (channels). */
struct console_hooks {
	void (*on_data)(void *arg, const struct tether_frame *f);
	void (*on_ctrl)(void *arg, json_t *msg);
	void (*on_drain)(void *arg);
	void *arg;
};

/* Party A's secrets between `tether invite` and the first channel. */
struct console_pair {
	char password[64]; /* "word-word-word" */
	uint8_t x[TETHER_SPAKE2_SCALAR_LEN];
	uint8_t w[TETHER_SPAKE2_W_LEN];
	char pake_hex[2 * TETHER_SPAKE2_ELEM_LEN + 1]; /* pA, public */
};

/* One connection to the relay and the loop it lives on. */
struct console_client {
	uv_loop_t loop;
	uv_timer_t ping;
	struct tether_tls_ctx *tls;
	struct tether_link_ctx *lctx;
	struct tether_link *link;
	struct console_hooks hooks;
	const char *token; /* borrowed until the hello is sent */
	char relay[CONSOLE_HOSTPORT_MAX];
	char fingerprint[TETHER_TLS_FP_LEN]; /* what the relay presented */
	char technician[CONSOLE_NAME_MAX];
	char role[32];
	json_int_t next_id;
	json_int_t want_id;
	json_t *answer;
	int close_err;
	char close_reason[CONSOLE_REASON_MAX];
	bool loop_ready;
	bool ping_ready;
	bool opened;   /* TLS up and pin matched */
	bool welcomed; /* hello accepted */
	bool closed;   /* on_close ran; link is gone */
	bool want_hello;
};

/* console-table.c: aligned text tables for people. */
#define CONSOLE_TABLE_COLS 8
/*
 * Cells are owned copies (NULL or empty ones print as "-"), each with a
 * colour or none, and a row may have one more line printed under it.
 */
struct console_table {
	size_t ncol;
	size_t ncell;
	size_t cap;
	char **cells;
	const char **colors; /* escape sequence per cell, or NULL */
	char **extra;	     /* a line under the row, or NULL */
	bool failed;	     /* out of memory: printing says so */
};

/* An empty table of ncol columns; heads (ncol of them) its first row. */
void console_table_init(struct console_table *t, size_t ncol,
			const char *const *heads);
void console_table_add(struct console_table *t, const char *s);
/* color: an escape sequence for this cell, or NULL. */
void console_table_add_color(struct console_table *t, const char *s,
			     const char *color);
/* A JSON value as a cell: strings as they are, the rest compact. */
void console_table_add_json(struct console_table *t, const json_t *v);
/* A line printed under the row just completed (malloc'd, owned now). */
void console_table_extra(struct console_table *t, char *line);
/*
 * Prints the table, every line indented by indent spaces.  cut_last: the
 * terminal's width, the last column is cut to what remains of it (0:
 * never cut).  0, or -1 once reported.
 */
int console_table_print(const struct console_table *t, int indent,
			size_t cut_last);
void console_table_free(struct console_table *t);

/* console-util.c */
void console_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void console_print_clean(FILE *fp, const char *s);
size_t console_clean_width(const char *s);
/* A path as a new JSON string, non-UTF-8 bytes shown as '?'. */
json_t *console_json_path(const char *s);
int console_parse_hostport(const char *arg, char *host, size_t hostlen,
			   int *port, char *norm, size_t normlen);
int console_parse_ticket(const char *arg, char *out, size_t outlen);
int console_parse_duration(const char *arg, long *secs);
bool console_fingerprint_valid(const char *fp);
bool console_session_id_valid(const char *id);
int console_session_id(const json_t *v, char *out, size_t outlen);
const char *console_json_str(const json_t *obj, const char *key);
int console_json_print(const json_t *v);
int console_write_all(int fd, const void *buf, size_t len);

/* console-config.c */
int console_config_dir(char *out, size_t outlen, bool create);
int console_config_load(struct console_config *cfg);
int console_config_save(const char *relay, const char *token,
			const char *fingerprint);
void console_config_clear(struct console_config *cfg);
int console_known_lookup(const char *relay, char *fp, size_t fplen);
int console_known_add(const char *relay, const char *fp);
int console_session_save(const char *session, const json_t *obj);
int console_session_load(const char *session, json_t **out);
/*
 * Takes the per-session lock that serialises first-time pairing between
 * consoles of this user (waits up to CONSOLE_LOCK_WAIT_MS); returns an fd
 * for console_session_unlock(), or -1 after printing why.
 */
int console_session_lock(const char *session);
void console_session_unlock(int fd);
#define CONSOLE_LOCK_WAIT_MS 30000

/* console-client.c */
int console_client_connect(struct console_client *c, const char *relay,
			   const char *host, int port, const char *pin,
			   const char *token);
int console_connect(struct console_client *c, struct console_config *cfg);
int console_request(struct console_client *c, json_t *req, json_t **answer);
void console_run_once(struct console_client *c);
void console_report_lost(const struct console_client *c);
void console_report_answer(const json_t *ans, const char *ticket);
void console_client_close(struct console_client *c);
int console_call(json_t *req, const char *ticket, json_t **answer);

/* console-pair.c */
int console_pair_start(struct console_pair *p);
void console_pair_wipe(struct console_pair *p);
int console_pair_save(const json_t *session, const char *ticket,
		      const char *nameplate, const char *info,
		      const struct console_pair *p);
int console_pair_key(struct console_client *c, const char *ticket,
		     const json_t *attach, uint8_t ke[TETHER_SPAKE2_KE_LEN]);

/* console-tty.c: the local terminal while `tether shell` runs on it. */
int console_tty_raw(int fd);
void console_tty_restore(void);
bool console_tty_is_raw(void);
const char *console_eol(void);
int console_tty_size(int fd, uint16_t *cols, uint16_t *rows);

/*
 * ssh's escapes on a terminal, for `tether shell` and `tether ssh`: "~"
 * right after a CR or LF (or first of all) and the byte after it,
 * wherever the reads split them.  "~." disconnects, "~?" prints the list,
 * "~~" sends one "~"; "~" and anything else goes out as typed.
 */
struct console_escapes {
	bool line_start; /* start it true */
	bool tilde;	 /* a "~" is held back */
};

/*
 * Copies p[0..n) less the escapes into out (room for n + 1 bytes: a
 * held-back "~" may come out) and sets *outlen; true when "~." was typed,
 * out then holding what came before it.
 */
bool console_escapes_filter(struct console_escapes *e, const uint8_t *p,
			    size_t n, uint8_t *out, size_t *outlen);

/*
 * console-chan.c: one channel on a ticket, shared by exec and shell.  The
 * command describes itself with ops and gets a struct console_run to talk
 * through while the channel is open.
 */
struct console_run;
struct tether_buf;

struct console_run_ops {
	const char *kind; /* TETHER_KIND_EXEC or TETHER_KIND_SHELL */
	/* Bytes the input filter may add to one read (a held-back "~"). */
	size_t input_slack;
	/*
	 * The channel is open: send the opening message and set up what the
	 * command needs.  0, or -1 once reported.
	 */
	int (*start)(struct console_run *r, void *arg);
	/*
	 * Standard input as read, to pass on with console_run_input();
	 * NULL forwards it as it is.
	 */
	void (*input)(struct console_run *r, void *arg, const uint8_t *p,
		      size_t n);
	/*
	 * The stream is over (start was called, whatever it returned); runs
	 * before anything about the outcome is printed.  May be NULL.
	 */
	void (*finish)(struct console_run *r, void *arg);
	/*
	 * Sealed messages the runner does not know (file transfers); NULL
	 * makes them a protocol error.  Failures go to console_run_fail().
	 */
	void (*on_msg)(struct console_run *r, void *arg, uint8_t msg,
		       const uint8_t *body, size_t len);
	/* Window came back or the link drained; may be NULL. */
	void (*on_room)(struct console_run *r, void *arg);
	/* The command reads no standard input (it sends no STDIN). */
	bool no_stdin;
	void *arg;
};

int console_run(const char *ticket, const struct console_run_ops *ops);
int console_run_send(struct console_run *r, uint8_t msg, struct tether_buf *b,
		     int built);
void console_run_input(struct console_run *r, const uint8_t *p, size_t n);
void console_run_disconnect(struct console_run *r);
/* Ends the run with a reason printed at the end (the first one wins). */
void console_run_fail(struct console_run *r, const char *what,
		      const char *detail);
/* The outcome, as an EXIT message would set it (commands without one). */
void console_run_set_status(struct console_run *r, int status);
/* Still streaming: no failure, no CLOSE, no disconnect. */
bool console_run_active(const struct console_run *r);
/* Seals and sends one message; a failure ends the run (reported there). */
int console_run_send_msg(struct console_run *r, uint8_t msg,
			 const void *body, size_t len);
/* Data bytes we may send now: 0 while the link is over high water. */
size_t console_run_window(const struct console_run *r);
/* Received data bytes are used up: credit them back. */
int console_run_consumed(struct console_run *r, size_t n);
uv_loop_t *console_run_loop(struct console_run *r);
const char *console_run_ticket(const struct console_run *r);
/*
 * Parses "CMD [--help] T-N [--] ARGS..." for exec and shell: -1 with the
 * ticket copied and *first the index of ARGS, else the exit status to
 * return (0 after --help; usage errors name need).
 */
int console_run_args(const char *cmd, const char *usage, const char *need,
		     int argc, char **argv, char *ticket, size_t len,
		     int *first);

/*
 * Shared with console-forward.c, which opens its channels without waiting:
 * an "open" request with a fresh nonce (NULL once reported), and the
 * channel its "ok" answer opened (0, or -1 once reported).
 */
struct tether_chan;
json_t *console_open_request(const json_t *session, const char *kind,
			     uint8_t nonce_c[TETHER_SEAL_NONCE_LEN]);
int console_open_answer(const json_t *ans, const uint8_t *ke,
			const uint8_t nonce_c[TETHER_SEAL_NONCE_LEN],
			uint32_t *channel, struct tether_chan **chan);
/* Seals EOF(0), the end of what we send, on chan: 0 or TETHER_ERR_*. */
int console_send_stdin_eof(struct tether_chan *chan, struct tether_link *l);
/* Attach and key: 0 with the session id in *session, or -1 once reported. */
int console_attach(struct console_client *c, const char *ticket,
		   json_t **session, uint8_t ke[TETHER_SPAKE2_KE_LEN]);

/*
 * console-forward.c: forward channels to one target, any number at once,
 * on one relay connection; each bridges a local stream.  keep_errors keeps
 * the first error about a channel for console_fwd_failure() instead of
 * printing it at once.
 */
struct console_fwd;
/* Connects and attaches to ticket; NULL once reported. */
struct console_fwd *console_fwd_new(const char *ticket, const char *host,
				    int port, bool keep_errors);
void console_fwd_free(struct console_fwd *f);
uv_loop_t *console_fwd_loop(struct console_fwd *f);
void console_fwd_run_once(struct console_fwd *f);
/* A new channel for a connection waiting on server; 0 or -1. */
int console_fwd_accept(struct console_fwd *f, uv_stream_t *server);
/* A new channel for a connected stream socket (owned from now on). */
int console_fwd_add_fd(struct console_fwd *f, int fd);
/* Bridges not yet torn down. */
size_t console_fwd_count(const struct console_fwd *f);
/* The relay connection is gone (console_fwd_report_lost() says why). */
bool console_fwd_lost(const struct console_fwd *f);
void console_fwd_report_lost(const struct console_fwd *f);
const char *console_fwd_failure(const struct console_fwd *f);
/* Gives every channel up; the loop closes their local sides. */
void console_fwd_stop(struct console_fwd *f);

/*
 * console-ssh.c, console-sshauth.c: `tether ssh`.  The SSH client runs on
 * its own thread, over a socket pair bridged to a forward channel; what it
 * knows and what it says at the end.
 */
#define CONSOLE_PATH_MAX 4096
struct _LIBSSH2_SESSION;

struct console_ssh {
	int fd; /* our end of the socket pair */
	const char *user;
	const char *host;
	int port;
	const char *identity; /* -i KEY, or NULL */
	const char *host_key_alias; /* --host-key-alias NAME, or NULL */
	/* The host's name in known_hosts (console_ssh_run() sets it). */
	char known_name[CONSOLE_HOST_MAX + CONSOLE_TICKET_MAX + 16];
	bool accept_new;
	bool pty;
	char *command; /* NULL: a shell */
	char home[CONSOLE_PATH_MAX];
	char known_hosts[CONSOLE_PATH_MAX];
	const char *key_type; /* "ED25519", ... once the key is in */
	/*
	 * The command's part once authenticated, on the ssh thread with a
	 * blocking session it leaves blocking (channels it opened freed);
	 * sets ok and status, or error.
	 */
	void (*body)(struct console_ssh *j, struct _LIBSSH2_SESSION *s,
		     void *arg);
	void *body_arg;
	/* Outcome. */
	bool ok;  /* the remote command ended: status is its status */
	bool bye; /* "~." */
	int status;
	char error[1024]; /* why not, printed by the main thread */
};

void console_ssh_error(struct console_ssh *j, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
const char *console_ssh_last_error(struct _LIBSSH2_SESSION *s);
/* 0 to go on, -1 with j->error set. */
int console_ssh_host_key(struct console_ssh *j, struct _LIBSSH2_SESSION *s);
int console_ssh_auth(struct console_ssh *j, struct _LIBSSH2_SESSION *s);
/*
 * Shared by `tether ssh` and `tether sftp`: -i KEY and --accept-new (true
 * when opt was one of them; arg is optarg), [USER@][HOST][:PORT] (0, or
 * the usage status once reported, naming cmd), the local user (defaults
 * user, sets j->user, home, known_hosts; 0 or -1 once reported).
 */
#define CONSOLE_SSH_OPT_ACCEPT_NEW 256
#define CONSOLE_SSH_OPT_HOST_KEY_ALIAS 257
/* The first long-option value a command may use for its own options. */
#define CONSOLE_SSH_OPT_NEXT 258
bool console_ssh_option(struct console_ssh *j, int opt, char *arg);
int console_ssh_parse_dest(const char *cmd, const char *arg, char *user,
			   size_t userlen, char *host, size_t hostlen,
			   int *port);
int console_ssh_local_user(struct console_ssh *j, char *user, size_t userlen);
/*
 * Connects to j->host:j->port through a forward channel of ticket and
 * runs j->body on the ssh thread once authenticated; the exit status:
 * j->status when j->ok, else 255 with the cause printed.
 */
int console_ssh_run(struct console_ssh *j, const char *ticket);
/* Non-blocking session: waits for fd in the direction libssh2 needs. */
void console_ssh_wait_socket(struct _LIBSSH2_SESSION *s, int fd);

/* Commands, one file each; argv[0] is the command's own name. */
int console_login(int argc, char **argv);
int console_ticket(int argc, char **argv);
int console_invite(int argc, char **argv);
int console_exec(int argc, char **argv);
int console_shell(int argc, char **argv);
int console_put(int argc, char **argv);
int console_get(int argc, char **argv);
int console_forward(int argc, char **argv);
int console_ssh(int argc, char **argv);
int console_sftp(int argc, char **argv);

/* main.c: shared option handling for the command files. */
int console_usage_error(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int console_bad_option(const char *cmd, int opt, char **argv);
int console_ticket_arg(const char *cmd, const char *arg, char *out,
		       size_t len);

/*
 * console-progress.c: a transfer's progress on standard error, one line
 * per file redrawn in place, for a terminal (the caller decides: enabled
 * false draws nothing but still keeps time).
 */
#define CONSOLE_PROGRESS_NAME_MAX 4096

struct console_progress {
	bool enabled;
	bool total;	/* a running total on each line (-r) */
	bool drawn;	/* a line is up and not finished */
	bool in_file;	/* name is the file under way */
	bool announced; /* "resuming" said for it */
	bool rate_known;
	char name[CONSOLE_PROGRESS_NAME_MAX + 1];
	uint64_t file_done;
	uint64_t file_size;
	uint64_t total_done; /* content bytes across, all files */
	uint64_t files;	     /* files that arrived */
	uint64_t sent;	     /* their content bytes that crossed */
	double start;	     /* CLOCK_MONOTONIC seconds */
	double drawn_at;
	double rate;	/* smoothed, bytes per second */
	double rate_at; /* last sample; 0: none yet */
	uint64_t rate_bytes;
};

void console_progress_init(struct console_progress *p, bool enabled,
			   bool total);
/*
 * name (NULL between files) has file_done of file_size bytes across,
 * counting a resumed prefix; total_done counts this run's bytes only.
 */
void console_progress_update(struct console_progress *p, const char *name,
			     uint64_t file_done, uint64_t file_size,
			     uint64_t total_done);
/* A file arrived: resumed at offset, sent bytes crossed in ms. */
void console_progress_file_done(struct console_progress *p, const char *name,
				uint64_t size, uint64_t offset, uint64_t sent,
				uint64_t ms);
/* Takes the line under way down, before another message is printed. */
void console_progress_clear(struct console_progress *p);
/* Ends the display; summary: "N files, SIZE in S s (RATE)". */
void console_progress_finish(struct console_progress *p, bool summary);
/* Seconds since console_progress_init(). */
double console_progress_seconds(const struct console_progress *p);
/* "512 B", "9.5 KiB", "123 MiB", ... */
void console_format_size(uint64_t n, char *out, size_t len);

/*
 * console-diag.c, console-agents.c: `tether diag`, `tether agents`,
 * `tether health` (docs/cli.md).
 */
int console_diag(int argc, char **argv);
int console_agents(int argc, char **argv);
int console_health(int argc, char **argv);
/* "12s ago", "5m ago", ... from ISO-8601 UTC or Unix time, else "-". */
void console_format_ago(const json_t *v, char *out, size_t len);
/* end console-diag.c, console-agents.c */

#endif /* TETHER_CONSOLE_H */
