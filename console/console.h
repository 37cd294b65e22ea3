/*
 * The technician console `tether`: the types and functions its files
 * share, one heading per file, from the ground floor up: a file uses only
 * what is declared above its own heading.  Conventions: commands return
 * the process exit status; helpers return 0 on success and -1 after
 * printing one "tether: ..." line (console_error()), so every failure is
 * reported exactly once, where it is understood best.  Parsers of the
 * command line return -1 to go on, else the exit status to return.
 */
#ifndef TETHER_CONSOLE_H
#define TETHER_CONSOLE_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>
#include <uv.h>

#include <tether/client.h>
#include <tether/ctrl.h>
#include <tether/frame.h>
#include <tether/id.h>
#include <tether/seal.h>
#include <tether/sign.h>
#include <tether/spake2.h>
#include <tether/tls.h>

/* Exit statuses for our own failures (ssh's convention) and bad usage. */
#define CONSOLE_EXIT_FAIL 255
#define CONSOLE_EXIT_USAGE 2

#define CONSOLE_HOST_MAX 256
#define CONSOLE_HOSTPORT_MAX (CONSOLE_HOST_MAX + 8)
#define CONSOLE_NAME_MAX 128
#define CONSOLE_REASON_MAX 256
#define CONSOLE_PATH_MAX 4096

/* console-error.c: one-line messages on standard error. */
void console_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*
 * "tether: WHAT" and then text (from the network, or another person:
 * printed with control characters replaced) on one line.
 */
void console_error_text(const char *what, const char *text);
/*
 * The terminal is raw (console-tty.c says so): lines end in "\r\n", as
 * "\n" alone would stair.  Async-signal-safe.
 */
void console_error_raw(bool raw);

/* console-fd.c */
/*
 * Writes all of buf to fd, retrying interrupted and partial writes, and
 * waiting when the descriptor was left non-blocking by whoever shares it:
 * 0 or -errno.
 */
int console_fd_write_all(int fd, const void *buf, size_t len);

/* console-json.c: --json output. */
/* v, indented, and a newline on standard output; 0, or -1 once reported. */
int console_json_print(const json_t *v);
/*
 * n rows of a list part (size bytes apart at rows, borrowed) printed as
 * one JSON array, each as the protocol writes it; as console_json_print().
 */
int console_json_print_rows(enum tether_ctrl_part part, const void *rows,
			    size_t n, size_t size);
/*
 * A path as a new JSON string (NULL: ""): names need not be UTF-8 and
 * JSON strings must be, so such a name shows "?" for every byte outside
 * ASCII.  NULL on no memory.
 */
json_t *console_json_path(const char *s);

/*
 * console-opts.c: the prologue every command's option parsing shares:
 * -h/--help, --json, the T-N operand, the operand count and the usage
 * errors, each followed by "(see: tether CMD --help)" and exit 2.
 */
/* getopt_long's value for --json (and -j where shorts lists it). */
#define CONSOLE_OPT_JSON 0x200
/* The first value a command may give a long option without a short one. */
#define CONSOLE_OPT_OWN 0x100

#define CONSOLE_OPTS_JSON 0x1u	   /* --json */
#define CONSOLE_OPTS_TICKET 0x2u   /* the first operand is T-N */
#define CONSOLE_OPTS_IN_ORDER 0x4u /* options end at the first operand */
#define CONSOLE_OPTS_REST 0x8u	   /* the first "--" ends what is parsed */
#define CONSOLE_OPTS_LONG_MAX 12   /* a command's own long options */

/* A command's options and operands, as console_opts_parse() reads them. */
struct console_opts {
	const char *name;   /* "invite": for the usage errors */
	const char *usage;  /* --help prints it on standard output */
	const char *shorts; /* the command's own short options, getopt's way */
	const struct option *longs; /* its own long options, or NULL */
	unsigned flags;		    /* CONSOLE_OPTS_* */
	int min;		    /* operands, the T-N included */
	int max;		    /* -1: no limit */
	const char *need;	    /* the usage error for another count */
	/*
	 * One of the command's own options (arg is console_opts_parse()'s):
	 * -1 to go on, else the exit status once reported.  May be NULL.
	 */
	int (*option)(void *arg, int opt, char *optarg);
};

/* What console_opts_parse() found. */
struct console_args {
	bool json;
	int64_t ticket;				/* CONSOLE_OPTS_TICKET */
	char ticket_name[TETHER_ID_TICKET_LEN]; /* "T-N", as we write it */
	int argc;				/* the operands after T-N */
	char **argv;
	bool has_rest; /* CONSOLE_OPTS_REST: a "--" came */
	int rest_argc; /* the words after it */
	char **rest_argv;
};

/*
 * Parses argv (argv[0] is the command's name) as o describes, passing arg
 * to o->option: -1 to go on with *a filled in, else the exit status (0
 * after --help, 2 after a usage error) once reported.  IN_ORDER also
 * skips one "--" right after T-N.
 */
int console_opts_parse(const struct console_opts *o, int argc, char **argv,
		       void *arg, struct console_args *a);
int console_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/*
 * Reports what getopt_long() rejected (opt ':' for a missing value) and
 * returns the usage status.  Only the option's name is shown:
 * "--token=SECRET" given to the wrong command must not echo the secret.
 */
int console_bad_option(const char *cmd, int opt, char **argv);
/*
 * A number typed on the command line (or stored from it): decimal digits
 * only, in [min, max]: 0, or -1 (not reported).
 */
int console_opts_number(const char *s, uint64_t min, uint64_t max,
			uint64_t *out);
/*
 * A duration typed on the command line: "90s", "10m", "2h", "2d" or
 * plain seconds, from 1 to max seconds: 0, or -1 (not reported).
 */
int console_opts_duration(const char *arg, uint64_t max, int64_t *secs);
/* A T-N (or N) operand into *id and name: 0, or the usage status. */
int console_opts_ticket(const char *cmd, const char *arg, int64_t *id,
			char *name, size_t len);

/* console-tty.c: the local terminal while `tether shell` or ssh runs. */
/* Raw mode on fd (restored at exit and on fatal signals): 0 or -1. */
int console_tty_raw(int fd);
void console_tty_restore(void);
/* The window size of fd: 0, or -1 with 80x24. */
int console_tty_size(int fd, uint16_t *cols, uint16_t *rows);

/*
 * ssh's escapes on a terminal, for `tether shell` and `tether ssh`: "~"
 * right after a CR or LF (or first of all) and the byte after it,
 * wherever the reads split them.  "~." disconnects, "~?" prints the list,
 * "~~" sends one "~"; "~" and anything else goes out as typed.
 */
struct console_tty_escapes {
	bool line_start; /* start it true */
	bool tilde;	 /* a "~" is held back */
};

/*
 * Copies p[0..n) less the escapes into out (room for n + 1 bytes: a
 * held-back "~" may come out) and sets *outlen; true when "~." was typed,
 * out then holding what came before it.
 */
bool console_tty_escapes_filter(struct console_tty_escapes *e, const uint8_t *p,
				size_t n, uint8_t *out, size_t *outlen);

/* console-audit.c: a ticket's audit rows as lines for people. */
/* What ev says, after its time and actor ("channel exec opened"). */
void console_audit_describe(const struct tether_ctrl_audit_row *ev, char *buf,
			    size_t len);
/*
 * Prints n rows as "  HH:MM:SS ACTOR WHAT", with a line for the date
 * (UTC) whenever it changes from *day (days since 1970; start with 0),
 * which it updates, so that pages printed one after another read as one.
 */
void console_audit_print(const struct tether_ctrl_audit_row *rows, size_t n,
			 int64_t *day);

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
	const char **colors;		/* escape sequence per cell, or NULL */
	char **extra;			/* a line under the row, or NULL */
	bool failed;			/* out of memory: printing says so */
	size_t max[CONSOLE_TABLE_COLS]; /* a column's widest; 0: any */
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
/* A time of the protocol (Unix seconds, 0: none) as ISO-8601 UTC. */
void console_table_add_time(struct console_table *t, int64_t when);
/* A line printed under the row just completed (tether_malloc'd, owned). */
void console_table_extra(struct console_table *t, char *line);
/*
 * Column col prints at most width columns: longer cells end in "..."
 * (titles typed by anyone must not push a row past the terminal).
 */
void console_table_limit(struct console_table *t, size_t col, size_t width);
/*
 * Prints the table, every line indented by indent spaces.  cut_last: the
 * terminal's width, the last column is cut to what remains of it (0:
 * never cut).  0, or -1 once reported.
 */
int console_table_print(const struct console_table *t, int indent,
			size_t cut_last);
void console_table_free(struct console_table *t);

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

/* console-config.c: the console's files (docs/cli.md). */
/*
 * What `tether login` stored: the relay, the technician, the pinned cert,
 * and the technician's key (never the login token, which is spent).
 */
struct console_config {
	char relay[CONSOLE_HOSTPORT_MAX]; /* normalised "HOST:PORT" */
	char host[CONSOLE_HOST_MAX];
	int port;
	char fingerprint[TETHER_TLS_FP_LEN];
	char technician[TETHER_ID_NAME_MAX + 1];
	struct tether_sign_key *key; /* freed by console_config_clear() */
};

/*
 * "HOST:PORT", "[V6ADDR]:PORT", or HOST alone for the default port: 0, or
 * -1 (not reported).  norm gets the spelling used as the key in
 * known_relays and config.json.
 */
int console_config_parse_relay(const char *arg, char *host, size_t hostlen,
			       int *port, char *norm, size_t normlen);
int console_config_dir(char *out, size_t outlen, bool create);
/* cfg is cleared first; 0, or -1 once reported ("not logged in ..."). */
int console_config_load(struct console_config *cfg);
int console_config_save(const char *relay, const char *technician,
			const char *fingerprint);
/*
 * The technician's private key (technician.key, 0600), or with pending
 * the one a login is making (technician.key.new), renamed over it only
 * once the relay registered it.  0, or -1 once reported.
 */
int console_config_key_path(char *out, size_t outlen, bool pending);
/*
 * The login stored here, without loading the key: 0 with its relay and
 * technician and *has_key (the key file is there), 1 if there is none
 * (or it cannot be read), -1 once reported.
 */
int console_config_peek(char *relay, size_t relaylen, char *technician,
			size_t techlen, bool *has_key);
void console_config_clear(struct console_config *cfg);
/*
 * Forgets the login (config.json), the technician's key (*had_key: it was
 * there) and every session file (sessions/: the
 * SPAKE2 state and session keys), keeping known_relays (public pins, as
 * ssh keeps known_hosts).  relay: the login's "HOST:PORT" ("" if none
 * could be read); *had_login: config.json was there; *sessions: how many
 * session files went.  0, or -1 after printing why (what could be removed
 * is gone).
 */
int console_config_forget(char *relay, size_t relaylen, bool *had_login,
			  bool *had_key, unsigned *sessions);
/* 0 with relay's pinned fingerprint, 1 if never trusted, -1 once said. */
/* `tether logout` (console-logout.c). */
int console_logout(int argc, char **argv);
int console_config_known_lookup(const char *relay, char *fp, size_t fplen);
int console_config_known_add(const char *relay, const char *fp);
/* relay's entries in known_relays give way to one for fp. */
int console_config_known_replace(const char *relay, const char *fp);
/* sessions/<session>.json: 0; load: 1 without one, *out the object. */
int console_config_session_save(int64_t session, const json_t *obj);
int console_config_session_load(int64_t session, json_t **out);
/*
 * Takes the per-session lock that serialises first-time pairing between
 * consoles of this user (waits up to CONSOLE_LOCK_WAIT_MS); returns an fd
 * for console_config_session_unlock(), or -1 after printing why.
 */
int console_config_session_lock(int64_t session);
void console_config_session_unlock(int fd);
#define CONSOLE_LOCK_WAIT_MS 30000

/*
 * console-client.c: the console's connection to the relay, one struct
 * tether_client on a loop of its own, and the answers to its requests.
 */
/* console_client_call(): the relay answered with an "err" message. */
#define CONSOLE_EREMOTE 1

/* Traffic that answers nothing we wait for (channels, async requests). */
struct console_hooks {
	void (*on_data)(void *arg, const struct tether_frame *f);
	/* m may be taken apart (tether_ctrl_decode_answer()) but not kept. */
	void (*on_ctrl)(void *arg, struct tether_ctrl_msg *m);
	void (*on_drain)(void *arg);
	void *arg;
};

struct console_client {
	uv_loop_t loop;
	struct tether_client *tc;
	struct console_config cfg; /* console_client_open()'s login */
	struct console_hooks hooks;
	char relay[CONSOLE_HOSTPORT_MAX];
	char technician[TETHER_ID_NAME_MAX + 1]; /* "" if the relay said none */
	char role[16];				 /* "" likewise */
	/* Asked when the relay is not pinned: 0 to trust fp. */
	int (*trust)(const char *relay, const char *fp);
	char down_why[CONSOLE_REASON_MAX];
	int down_err;
	enum tether_client_phase down_phase;
	/* What the certificate had to match ("" for none), and whether it
	 * was the technician's --fingerprint rather than a pin. */
	char pin[TETHER_TLS_FP_LEN];
	bool pin_given;
	bool loop_ready;
	bool welcomed;
	bool down;	/* the connection is gone (down_why says why) */
	bool untrusted; /* trust said no (and said so) */
};

/*
 * Connects with what `tether login` stored and returns once the relay
 * welcomed us: 0, or -1 once reported.  The caller always ends with
 * console_client_close(), whatever this returned.
 */
int console_client_open(struct console_client *c);
/*
 * The same for relay at host:port, pinned to pin or, without one,
 * trusting what trust() accepts (the probe says nothing to the relay).
 * pin_given: pin is the technician's --fingerprint, not one pinned
 * earlier (a mismatch is worded for it).  key signs the challenge, for
 * technician or, logging in, registered with the login token.  host,
 * pin, key, technician and token stay the caller's until the client is
 * closed.
 */
int console_client_connect(struct console_client *c, const char *relay,
			   const char *host, int port, const char *pin,
			   bool pin_given, const struct tether_sign_key *key,
			   const char *technician, const char *token,
			   int (*trust)(const char *relay, const char *fp));
/* Closes the connection (if still open) and waits for every handle. */
void console_client_close(struct console_client *c);
/*
 * Sends a request built from body (the struct of type t) and waits for
 * its answer: 0 with the "ok" answer decoded in *answer, CONSOLE_EREMOTE
 * with the "err" message in *answer (the caller words it, see
 * console_client_report_err()), or -1 once reported (the connection is
 * gone, the answer was malformed).  *answer is the caller's to free with
 * tether_ctrl_msg_free() in every case.
 */
int console_client_call(struct console_client *c, enum tether_ctrl_type t,
			const void *body, struct tether_ctrl_msg *answer);
/*
 * Sends a request without waiting: its id (its answer comes to the
 * on_ctrl hook), or 0 when it could not be sent (a link that is going
 * away says why itself).
 */
int64_t console_client_request(struct console_client *c,
			       enum tether_ctrl_type t, const void *body);
/*
 * One line for an "err" answer.  The messages the CLI contract names are
 * worded from the code; for the others the relay's message is meant for
 * people and shown as it is.  ticket, if not NULL, words not_found and
 * no_agent.
 */
void console_client_report_err(const struct tether_ctrl_err *e,
			       const char *ticket);
void console_client_report_lost(const struct console_client *c);
/* The link while the connection is up (to send DATA), else NULL. */
struct tether_link *console_client_link(const struct console_client *c);
void console_client_run_once(struct console_client *c);
/*
 * Connects with the stored login, makes one request and closes: the whole
 * life of the commands that need a single round trip.  0 with the "ok"
 * answer in *answer (freed by the caller), or -1 once reported; ticket,
 * if not NULL, words the errors about it.
 */
int console_call(enum tether_ctrl_type t, const void *body, const char *ticket,
		 struct tether_ctrl_msg *answer);

/*
 * console-pair.c: the console's side of pairing, party A of SPAKE2, and
 * the layout of sessions/<id>.json.
 */
/* Party A's secrets between `tether invite` and the first channel. */
struct console_pair {
	char password[64]; /* "word-word-word" */
	uint8_t x[TETHER_SPAKE2_SCALAR_LEN];
	uint8_t w[TETHER_SPAKE2_W_LEN];
	uint8_t pa[TETHER_SPAKE2_ELEM_LEN]; /* public */
};

/* Draws the words and computes pA: 0, or -1 once reported. */
int console_pair_start(struct console_pair *p);
void console_pair_wipe(struct console_pair *p);
/* Keeps x and w for session until the agent has joined. */
int console_pair_save(int64_t session, const char *ticket,
		      const char *nameplate, const char *info,
		      const struct console_pair *p);
/*
 * The session key for the attach answer a of ticket, pairing first if the
 * agent has just joined: 0, or -1 once reported.
 */
int console_pair_key(struct console_client *c, const char *ticket,
		     const struct tether_ctrl_attach_ok *a,
		     uint8_t ke[TETHER_SPAKE2_KE_LEN]);

/*
 * console-session.c: a ticket's session, for the channel driver and the
 * forward bridge: attach and key, then channels opened on it.
 */
struct tether_chan;
/* Attach and key: 0 with the session id in *session, or -1 once reported. */
int console_session_attach(struct console_client *c, int64_t ticket,
			   const char *ticket_name, int64_t *session,
			   uint8_t ke[TETHER_SPAKE2_KE_LEN]);
/* An "open" request for a channel of kind with a fresh nonce; 0 or -1. */
int console_session_open_request(int64_t session, enum tether_kind kind,
				 struct tether_ctrl_open *req);
/*
 * The channel the answer to req opened, keyed from ke and both nonces
 * (*chan freed with tether_chan_free()): 0, or -1 once reported.
 */
int console_session_open_answer(const struct tether_ctrl_open_ok *ok,
				const struct tether_ctrl_open *req,
				const uint8_t *ke, struct tether_chan **chan);
/* The two together, waiting for the answer: 0, or -1 once reported. */
int console_session_open(struct console_client *c, int64_t session,
			 enum tether_kind kind, const uint8_t *ke,
			 struct tether_chan **chan);
/* Seals EOF(0), the end of what we send, on chan: 0 or TETHER_ERR_*. */
int console_session_send_eof(struct tether_chan *chan, struct tether_link *l);

/*
 * console-run.c: the channel driver: one channel on a ticket, shared by
 * exec, shell, put, get and diag.  The command describes itself with ops
 * and gets a struct console_run to talk through while the channel is open.
 */
struct console_run;
struct tether_buf;

/* How the channel ended, for the output sink's end. */
struct console_run_result {
	bool exited; /* EXIT came: status is the remote status */
	bool error;  /* the agent said why in an ERROR (printed already) */
	int status;
};

struct console_run_ops {
	enum tether_kind kind;
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
	/*
	 * The output sink.  output: a STDOUT or STDERR body (fd 1 or 2),
	 * credited back once it returns (NULL: written to our own fd).
	 * clear: the driver is about to print a line of its own on standard
	 * error (a progress display takes its line down; may be NULL).  end:
	 * the channel ran to its CLOSE; returns the exit status, its words
	 * printed (NULL: console_run_status()).  after: the run is over with
	 * status and the relay connection is still open (unless it was
	 * lost), for a follow-up request through console_run_client();
	 * returns the command's exit status (may be NULL).
	 */
	void (*output)(struct console_run *r, void *arg, int fd,
		       const uint8_t *p, size_t n);
	void (*clear)(struct console_run *r, void *arg);
	int (*end)(struct console_run *r, void *arg,
		   const struct console_run_result *res);
	int (*after)(struct console_run *r, void *arg, int status);
	void *arg;
};

/* Connects, attaches, opens and runs the channel: the exit status. */
int console_run(int64_t ticket, const char *ticket_name,
		const struct console_run_ops *ops);
/*
 * exec's reading of a result: the remote status, or 255 with "the remote
 * command ended without a status" (unless an ERROR said why).
 */
int console_run_status(const struct console_run_result *res);
/*
 * Sends msg with b's bytes as its body and frees b.  built is 0 or the
 * first error while filling b (b NULL: it could not be allocated), worded
 * here.  0 once sent or handed to the run loop's report; -1 once reported.
 */
int console_run_send(struct console_run *r, uint8_t msg, struct tether_buf *b,
		     int built);
void console_run_input(struct console_run *r, const uint8_t *p, size_t n);
/* Sends EOF(0) now (once): the command has no input to give. */
void console_run_input_end(struct console_run *r);
void console_run_disconnect(struct console_run *r);
/* Ends the run with a reason printed at the end (the first one wins). */
void console_run_fail(struct console_run *r, const char *what,
		      const char *detail);
/* The outcome, as an EXIT message would set it (commands without one). */
void console_run_set_status(struct console_run *r, int status);
/* Still streaming: no failure, no CLOSE, no disconnect. */
bool console_run_active(const struct console_run *r);
/* Seals and sends one message; a failure ends the run (reported there). */
int console_run_send_msg(struct console_run *r, uint8_t msg, const void *body,
			 size_t len);
/* Data bytes we may send now: 0 while the link is over high water. */
size_t console_run_window(const struct console_run *r);
/* Received data bytes are used up: credit them back. */
int console_run_consumed(struct console_run *r, size_t n);
uv_loop_t *console_run_loop(struct console_run *r);
const char *console_run_ticket(const struct console_run *r);
/* The relay connection, for ops->after's follow-up request. */
struct console_client *console_run_client(struct console_run *r);

/*
 * console-forward.c: forward channels to one target, any number at once,
 * on one relay connection; each bridges a local stream.  keep_errors keeps
 * the first error about a channel for console_forward_failure() instead
 * of printing it at once.
 */
struct console_forward;
/* Connects and attaches to ticket; NULL once reported. */
struct console_forward *console_forward_new(int64_t ticket,
					    const char *ticket_name,
					    const char *host, int port,
					    bool keep_errors);
void console_forward_free(struct console_forward *f);
uv_loop_t *console_forward_loop(struct console_forward *f);
void console_forward_run_once(struct console_forward *f);
/* A new channel for a connection waiting on server; 0 or -1. */
int console_forward_accept(struct console_forward *f, uv_stream_t *server);
/* A new channel for a connected stream socket (owned from now on). */
int console_forward_add_fd(struct console_forward *f, int fd);
/* Bridges not yet torn down. */
size_t console_forward_count(const struct console_forward *f);
/* The relay connection is gone (console_forward_report_lost() says why). */
bool console_forward_lost(const struct console_forward *f);
void console_forward_report_lost(const struct console_forward *f);
const char *console_forward_failure(const struct console_forward *f);
/* Gives every channel up; the loop closes their local sides. */
void console_forward_stop(struct console_forward *f);

/*
 * console-ssh.c, console-sshauth.c: `tether ssh`.  The SSH client runs on
 * its own thread, over a socket pair bridged to a forward channel; what it
 * knows and what it says at the end.
 */
struct _LIBSSH2_SESSION;

struct console_ssh {
	int fd; /* our end of the socket pair */
	const char *user;
	const char *host;
	int port;
	const char *identity;	    /* -i KEY, or NULL */
	const char *host_key_alias; /* --host-key-alias NAME, or NULL */
	/* The host's name in known_hosts (console_ssh_run() sets it). */
	char known_name[CONSOLE_HOST_MAX + TETHER_ID_TICKET_LEN + 16];
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

/* console-sshauth.c */
void console_ssh_error(struct console_ssh *j, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
const char *console_ssh_last_error(struct _LIBSSH2_SESSION *s);
/* 0 to go on, -1 with j->error set. */
int console_ssh_host_key(struct console_ssh *j, struct _LIBSSH2_SESSION *s);
int console_ssh_auth(struct console_ssh *j, struct _LIBSSH2_SESSION *s);
/* A session whose memory goes through tether_malloc and friends. */
struct _LIBSSH2_SESSION *console_ssh_session_new(void *abstract);

/* console-ssh.c */
/*
 * Shared by `tether ssh` and `tether sftp`: -i KEY, --accept-new and
 * --host-key-alias (true when opt was one of them; arg is optarg),
 * [USER@][HOST][:PORT] (0, or the usage status once reported, naming
 * cmd), the local user (defaults user, sets j->user, home, known_hosts;
 * 0 or -1 once reported).
 */
#define CONSOLE_SSH_OPT_ACCEPT_NEW CONSOLE_OPT_OWN
#define CONSOLE_SSH_OPT_HOST_KEY_ALIAS (CONSOLE_OPT_OWN + 1)
/* The first long-option value a command may use for its own options. */
#define CONSOLE_SSH_OPT_NEXT (CONSOLE_OPT_OWN + 2)
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
int console_ssh_run(struct console_ssh *j, int64_t ticket,
		    const char *ticket_name);
/* Non-blocking session: waits for fd in the direction libssh2 needs. */
void console_ssh_wait_socket(struct _LIBSSH2_SESSION *s, int fd);

/* Commands, one file each; argv[0] is the command's own name. */
int console_login(int argc, char **argv);
int console_ticket(int argc, char **argv);
/*
 * console-admin.c: `tether technician add|remove|list|role` and `tether
 * enroll-token`, for admins, over the network.
 */
int console_technician(int argc, char **argv);
int console_enroll_token(int argc, char **argv);
int console_invite(int argc, char **argv);
int console_exec(int argc, char **argv);
int console_shell(int argc, char **argv);
int console_put(int argc, char **argv);
int console_get(int argc, char **argv);
int console_forward(int argc, char **argv);
int console_ssh(int argc, char **argv);
int console_sftp(int argc, char **argv);
int console_diag(int argc, char **argv);
int console_agents(int argc, char **argv);
int console_health(int argc, char **argv);
int console_sessions(int argc, char **argv);

#endif /* TETHER_CONSOLE_H */
