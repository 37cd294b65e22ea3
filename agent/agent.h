/*
 * tether-agent, the customer side: private interfaces between its files.
 *
 * agent-session.c and agent-chan.c speak the protocol (relay link, pairing,
 * sealed channels).  agent-exec.c (commands on pipes) and agent-pty.c
 * (shells on a pseudo-terminal) spawn and feed processes and know nothing
 * of links, keys or frames: they talk to agent-chan.c only through the
 * small typed calls and callbacks below, so that moving them behind a
 * privilege boundary later means putting those calls on a pipe.
 * agent-file.c runs file transfers: agent-chan.c hands it a file
 * channel's sealed messages and the channel as a struct tether_xfer_io;
 * agent-forward.c makes a forward channel's TCP connection the same way,
 * with the channel as a struct agent_forward_io.
 * agent-term.c is the customer's own terminal (live view, keys).
 */
#ifndef TETHER_AGENT_H
#define TETHER_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include <tether/code.h>
#include <tether/link.h>
#include <tether/proto.h>
#include <tether/spake2.h>
#include <tether/tls.h>
#include <tether/xfer.h>

#define AGENT_PROG "tether-agent"

#ifndef TETHER_VERSION
#define TETHER_VERSION "0.1.0"
#endif

/* Sizes of the strings shown to the customer (after cleaning). */
#define AGENT_NAME_MAX 64
#define AGENT_TITLE_MAX 256
#define AGENT_HOST_MAX 256

/* Reconnect back-off, milliseconds. */
#define AGENT_BACKOFF_MIN_MS 500
#define AGENT_BACKOFF_MAX_MS 30000

/* Concurrent channels one technician may keep open on this machine. */
#define AGENT_CHAN_MAX 64

/* Largest read from a child's output pipe: one channel data chunk. */
#define AGENT_PROC_CHUNK TETHER_CHANNEL_CHUNK

/* Channel kinds the customer allowed: the info's "capabilities". */
#define AGENT_CAP_EXEC 0x1u
#define AGENT_CAP_SHELL 0x2u
#define AGENT_CAP_FILE 0x4u
#define AGENT_CAP_FORWARD 0x8u
#define AGENT_CAP_DIAG 0x10u

struct agent_chan;
struct agent_file;
struct agent_forward;
struct agent_proc;
struct agent_pty;
struct agent_prompt;

/* --view / --no-view; by default the view is on when stdout is a terminal. */
enum agent_view {
	AGENT_VIEW_AUTO,
	AGENT_VIEW_ON,
	AGENT_VIEW_OFF,
};

/* What the technician sees about this machine (agent-facts.c). */
struct agent_facts {
	char hostname[AGENT_HOST_MAX];
	char os[AGENT_TITLE_MAX];
	char user[AGENT_NAME_MAX];
};

/* Directories a file transfer may reach: realpath'ed, without duplicates. */
struct agent_roots {
	char **dirs;
	size_t n;
};

/* Forward targets the customer allowed beforehand (--allow-forward). */
struct agent_target {
	char host[AGENT_HOST_MAX]; /* as written, without [] around IPv6 */
	uint16_t port;
};

struct agent_targets {
	struct agent_target *t;
	size_t n;
};

/* How far the pairing has come; the session survives reconnects. */
enum agent_phase {
	AGENT_PH_START,	  /* nothing claimed yet */
	AGENT_PH_CONSENT, /* join_ok in, asking the customer */
	AGENT_PH_PAKE,	  /* pake sent, waiting for pake_ok */
	AGENT_PH_CONFIRM, /* resume token held, waiting for confirm */
	AGENT_PH_PAIRED,  /* Ke held: channels may open */
};

/* Where the current relay connection is. */
enum agent_conn {
	AGENT_CONN_NONE,   /* no link (backing off, or asking) */
	AGENT_CONN_PROBE,  /* connection made only to learn the fingerprint */
	AGENT_CONN_TLS,	   /* connecting */
	AGENT_CONN_HELLO,  /* hello sent, waiting for welcome */
	AGENT_CONN_RESUME, /* resume sent, waiting for resume_ok */
	AGENT_CONN_READY,  /* talking */
};

struct agent {
	uv_loop_t *loop;
	struct tether_tls_ctx *tls;
	struct tether_link_ctx *lctx;
	struct tether_link *link;
	enum agent_phase phase;
	enum agent_conn conn;

	/* From the command line. */
	char host[AGENT_HOST_MAX];
	int port;
	char pin[TETHER_TLS_FP_LEN]; /* pinned fingerprint, once known */
	bool has_pin;
	bool yes;
	enum agent_view view;
	char probe_fp[TETHER_TLS_FP_LEN];
	struct agent_facts facts;
	/* --allow-write (default: home and /tmp) and --allow-read roots. */
	struct agent_roots write_roots;
	struct agent_roots read_roots; /* none: anything the user can read */
	/* --allow-forward targets, besides TETHER_FORWARD_HOST and localhost.
	 */
	struct agent_targets forward_targets;

	/* Secrets: never printed, wiped when no longer needed. */
	char nameplate[TETHER_CODE_NAMEPLATE_MAX + 1];
	uint8_t w[TETHER_SPAKE2_W_LEN];
	bool have_w;
	struct tether_spake2 *pake;
	uint8_t ke[TETHER_SPAKE2_KE_LEN];
	bool have_ke;
	char *resume; /* resume token */

	/* The session, as the relay and the console described it. */
	json_t *session; /* id exactly as the relay sent it */
	uint8_t pake_a[TETHER_SPAKE2_ELEM_LEN];
	char *info; /* console's info text: part of the AAD */
	char technician[AGENT_NAME_MAX];
	char ticket[AGENT_NAME_MAX];
	char title[AGENT_TITLE_MAX];
	unsigned caps; /* AGENT_CAP_*, as the customer consented */

	struct agent_prompt *prompt;
	uv_timer_t ping_timer;
	uv_timer_t retry_timer;
	uv_signal_t sigint;
	uv_signal_t sigterm;
	uv_signal_t sighup;
	uint64_t last_rx; /* loop time of the last frame from the relay */
	unsigned backoff_ms;

	struct agent_chan *chans;
	unsigned nchans;

	bool ended;
	int exit_code;
};

/* main.c */
/* Prints "tether-agent: ..." as one line on stdout (events). */
void agent_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "tether-agent: ..." as one line on stderr (errors). */
void agent_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*
 * Copies peer-supplied text for a terminal: control characters (C0, DEL
 * and UTF-8 encoded C1) become '?'; truncated to fit out.
 */
void agent_clean(const char *in, char *out, size_t outlen);
/*
 * The value of --name VALUE or --name=VALUE at argv[*i] (*i moves past a
 * separate value); NULL if it is not this option, with *missing set when
 * the value is missing.
 */
const char *agent_opt_value(int argc, char **argv, int *i, const char *name,
			    bool *missing);
/* "SHA256:" and 43 characters of unpadded base64. */
bool agent_fingerprint_valid(const char *fp);

/* agent-session.c */
/* Sets up timers and signals and starts connecting; 0 or TETHER_ERR_*. */
int agent_session_start(struct agent *a);
/*
 * Ends the session with an exit code: stops children, timers, signals and
 * the link; uv_run() returns once their handles are closed.  Idempotent.
 */
void agent_finish(struct agent *a, int code);
/*
 * The customer ends the session for everyone (Ctrl-C, q, SIGTERM, a hung
 * up terminal): tells the relay, then agent_finish(a, 0).
 */
void agent_leave(struct agent *a);
/* Sends a CTRL message and drops the reference to msg (NULL is NOMEM). */
int agent_send(struct agent *a, json_t *msg);
/* Wipes and frees whatever secrets and session data are still held. */
void agent_session_free(struct agent *a);

/* agent-chan.c */
/* Relay's open {channel, kind, nonce, technician}. */
void agent_chan_open(struct agent *a, const json_t *msg);
/* Relay's close {channel}: the console went away; stop the command. */
void agent_chan_close(struct agent *a, const json_t *msg);
/* A DATA frame for one of our channels. */
void agent_chan_frame(struct agent *a, const struct tether_frame *f);
/* The link drained below its low-water mark: output may flow again. */
void agent_chan_drain(struct agent *a);
/* The link is gone or we are leaving: stop every command, send nothing. */
void agent_chan_abort_all(struct agent *a);

/* agent-file.c */
/* What agent_file_start(), _input() and _pump() return besides errors. */
#define AGENT_FILE_MORE 0 /* the transfer goes on */
#define AGENT_FILE_DONE 1 /* it is over: agent-chan.c sends CLOSE */

/*
 * The console's first message on a file channel (GET or PUT): checks the
 * policy and starts the engine on io.  AGENT_FILE_MORE with the transfer
 * in *out; AGENT_FILE_DONE when the request was refused (ERROR is sent,
 * the customer told, the refusal audited); or a TETHER_ERR_* with why in
 * *why (static text) for a malformed request or no memory, and
 * TETHER_ERR_CLOSED when the link is going away.  *out is set only with
 * AGENT_FILE_MORE.
 */
int agent_file_start(struct agent *a, uint32_t channel, const char *technician,
		     const struct tether_xfer_io *io, uint8_t msg,
		     const uint8_t *body, size_t len, struct agent_file **out,
		     const char **why);
/* Every later sealed message but WINDOW, CLOSE and ERROR; as above. */
int agent_file_input(struct agent_file *f, uint8_t msg, const uint8_t *body,
		     size_t len, const char **why);
/* Window came back or the link drained: send more; as above. */
int agent_file_pump(struct agent_file *f, const char **why);
/* Stops the transfer (a partial file stays, to resume).  NULL is fine. */
void agent_file_free(struct agent_file *f);
/*
 * Adds dir, resolved with realpath(), to roots (--allow-write,
 * --allow-read); on failure why says why (static text).
 */
int agent_file_allow(struct agent_roots *roots, const char *dir,
		     const char **why);
/* After the options: the default write roots, home and /tmp, if none. */
int agent_file_policy_init(struct agent *a);
/* "write in ROOTS and read ..." for the customer, cut to fit out. */
void agent_file_describe_policy(const struct agent *a, char *out,
				size_t outlen);
void agent_file_policy_free(struct agent *a);

/* agent-forward.c */
/* What agent_forward_start() and _input() return besides errors. */
#define AGENT_FORWARD_MORE 0 /* the forward goes on */
#define AGENT_FORWARD_DONE 1 /* it is over: agent-chan.c sends CLOSE */

/*
 * A forward channel as agent-forward.c sees it.  send, window and
 * consumed are as in struct tether_xfer_io.  done: the forward ended by
 * itself (a refusal or failure already told the console with ERROR, the
 * target hung up, both directions finished); with why NULL agent-chan.c
 * sends CLOSE and the control close, else it fails the channel with why.
 * closed: after agent_forward_close(), every handle is closed and the
 * forward is freed once this returns.  Neither is called from within
 * agent_forward_start(), _input(), _pump() or _close().
 */
struct agent_forward_io {
	int (*send)(void *arg, uint8_t msg, const void *body, size_t len);
	size_t (*window)(void *arg);
	int (*consumed)(void *arg, size_t n);
	void (*done)(void *arg, const char *why);
	void (*closed)(void *arg);
	void *arg;
};

/*
 * The console's first message on a forward channel (FORWARD): checks the
 * policy, asks the customer if need be, and starts connecting.
 * AGENT_FORWARD_MORE with the forward in *out (which later reports through
 * io->done); AGENT_FORWARD_DONE when the target was refused at once (ERROR
 * sent, the customer told, the refusal reported to the relay); or a
 * TETHER_ERR_* with why in *why (static text) for a malformed request or
 * no memory.  *out is set only with AGENT_FORWARD_MORE.
 */
int agent_forward_start(struct agent *a, uint32_t channel,
			const char *technician,
			const struct agent_forward_io *io, uint8_t msg,
			const uint8_t *body, size_t len,
			struct agent_forward **out, const char **why);
/* Every later sealed message but WINDOW and ERROR (CLOSE too); as above. */
int agent_forward_input(struct agent_forward *f, uint8_t msg,
			const uint8_t *body, size_t len, const char **why);
/* Window came back or the link drained: read from the target again. */
void agent_forward_pump(struct agent_forward *f);
/*
 * Stops the forward (the prompt, the lookup, the connection), sending
 * nothing more; io->closed follows once every handle is closed.
 */
void agent_forward_close(struct agent_forward *f);
/* Adds HOST:PORT or [V6]:PORT (--allow-forward); why says why not. */
int agent_forward_allow(struct agent *a, const char *spec, const char **why);
/* "127.0.0.1:22, localhost:22; you are asked about ..." for the customer. */
void agent_forward_describe_policy(const struct agent *a, char *out,
				   size_t outlen);
void agent_forward_policy_free(struct agent *a);

/* agent-exec.c */
enum agent_stream {
	AGENT_STDOUT = 1, /* the numbers of EOF messages */
	AGENT_STDERR = 2,
};

/* What agent-exec.c and agent-pty.c report back about their child. */
struct agent_proc_cbs {
	/* len <= the credit given; the data is valid only during the call. */
	void (*on_output)(void *ctx, enum agent_stream s, const uint8_t *data,
			  size_t len);
	void (*on_eof)(void *ctx, enum agent_stream s);
	/* n bytes given to agent_*_write() are written (or dropped). */
	void (*on_written)(void *ctx, size_t n);
	/* how: 0 exited with value, 1 killed by signal value. */
	void (*on_exit)(void *ctx, int how, uint32_t value);
	/* Every handle is closed; the proc is freed after this returns. */
	void (*on_closed)(void *ctx);
};

/* A child on pipes. */
struct agent_spawn {
	const char *file;  /* the program: PATH search unless it has a '/' */
	char *const *argv; /* NULL-terminated; argv[0] as the child sees it */
	int stop_signal;   /* the first signal of agent_proc_kill() */
};

/*
 * Spawns sp->file (cwd agent_work_dir(), inherited environment) with
 * three pipes in a new session.  Output is read only as far as the
 * credit allows (none at first).  On failure returns a negative errno
 * (libuv's UV_E*), makes no callbacks and cleans up by itself.
 */
int agent_proc_spawn(uv_loop_t *loop, const struct agent_spawn *sp,
		     const struct agent_proc_cbs *cbs, void *ctx,
		     struct agent_proc **out);
/* Output bytes the proc may read from now on (0 pauses both pipes). */
void agent_proc_set_credit(struct agent_proc *p, size_t credit);
/* Queues a copy of data for the child's stdin. */
int agent_proc_write(struct agent_proc *p, const void *data, size_t len);
/* Closes the child's stdin once queued writes are out. */
void agent_proc_close_stdin(struct agent_proc *p);
/*
 * Stops the command: the stop signal to its process group, SIGKILL 2 s
 * later if it is still there; drops its output.  Only on_closed is called
 * afterwards.
 */
void agent_proc_kill(struct agent_proc *p);
/* $HOME if it is a directory we can enter, else the passwd entry's, else /. */
const char *agent_work_dir(void);
/*
 * The user's login shell: $SHELL, else the passwd entry's shell, else
 * /bin/sh (the first that is an executable file); path gets it and arg0
 * "-" + its base name, which makes it a login shell.
 */
void agent_login_shell(char *path, size_t pathlen, char *arg0, size_t arg0len);

/* agent-pty.c */
struct agent_pty_opts {
	const char *file; /* as in struct agent_spawn */
	char *const *argv;
	const char *term; /* TERM for the child ("dumb" if unusable) */
	uint16_t cols;	  /* initial window size (0: unknown) */
	uint16_t rows;
};

/*
 * Starts o->file on a new pseudo-terminal (forkpty): the child leads its
 * own session with the pty as its controlling terminal, cwd
 * agent_work_dir(), TERM set.  Output (one stream, reported as
 * AGENT_STDOUT) is read only as far as the credit allows (none at first);
 * its end is reported as EOF of both streams.  On failure returns a
 * negative errno (UV_E*), makes no callbacks and cleans up by itself.
 */
int agent_pty_spawn(uv_loop_t *loop, const struct agent_pty_opts *o,
		    const struct agent_proc_cbs *cbs, void *ctx,
		    struct agent_pty **out);
/* Output bytes the pty may read from now on (0 pauses it). */
void agent_pty_set_credit(struct agent_pty *p, size_t credit);
/* Writes data to the terminal, queueing what it does not take yet. */
int agent_pty_write(struct agent_pty *p, const void *data, size_t len);
/*
 * The technician's input ended.  A terminal has no end of file to pass
 * on (only the EOF character, wrong for binary input), so queued input is
 * still written and anything later dropped; the pty stays open.
 */
void agent_pty_close_stdin(struct agent_pty *p);
/* New window size (TIOCSWINSZ; the kernel signals SIGWINCH). */
void agent_pty_resize(struct agent_pty *p, uint16_t cols, uint16_t rows);
/*
 * Hangs up: closes the master, SIGHUP to the shell's process group,
 * SIGKILL 2 s later if it is still there.  Only on_closed is called
 * afterwards, once the child is reaped.
 */
void agent_pty_kill(struct agent_pty *p);

/* agent-term.c */
/*
 * The first shell opened: starts the keys (v, q) when stdin is the
 * foreground terminal and prints a hint about them, once.
 */
void agent_term_shell_opened(struct agent *a);
/* Mirrors shell output to stdout while the live view is on. */
void agent_term_view(const uint8_t *data, size_t len);
/* Ends a mirrored half line before an event line is printed. */
void agent_term_newline(void);
/*
 * A question is on the terminal (agent-forward.c): while hold is true
 * the keys are not read and the terminal is in its normal mode, so the
 * customer can type an answer and see it.
 */
void agent_term_hold_keys(bool hold);
/* Puts the terminal back and closes the view and keys.  Idempotent. */
void agent_term_stop(void);
/* Puts the terminal mode back; async-signal-safe, for the last exits. */
void agent_term_restore(void);

/* agent-facts.c */
/* Fills f; best effort, never fails. */
void agent_facts_gather(struct agent_facts *f);

/* agent-os-release.c */
/*
 * Unquotes an os-release value in place (shell-like: "..." with backslash
 * escapes, '...' literal, or bare).
 */
void agent_os_release_unquote(char *v);

/* agent-prompt.c */
/*
 * Writes question to the controlling terminal and reads one line without
 * blocking the loop; cb gets whether the answer was y/yes.  The prompt
 * frees itself after cb.  TETHER_ERR_NOT_FOUND if there is no terminal.
 */
int agent_prompt_start(uv_loop_t *loop, const char *question,
		       void (*cb)(void *ctx, bool yes), void *ctx,
		       struct agent_prompt **out);
/* Drops the prompt without calling its cb. */
void agent_prompt_cancel(struct agent_prompt *p);

/* agent-config.c: the enrolled agent's config file (docs/agent-config.md). */
/* One "key = value" line of a section, as written. */
struct agent_kv {
	char *key;
	char *value;
	int line;
};

/* A [check NAME] section: agent-check.c interprets its keys. */
struct agent_check_conf {
	char *name;
	int line;
	struct agent_kv *kv;
	size_t n;
};

struct agent_config {
	char *path;	   /* the file read */
	char *relay;	   /* HOST:PORT */
	char *fingerprint; /* SHA256:..., NULL if unset */
	char *name;	   /* the agent's enrolled name */
	char *key;	   /* identity key file (default: agent.key beside path) */
	json_t *labels;	   /* object of strings; never NULL after a load */
	struct agent_check_conf *checks;
	size_t nchecks;
	struct agent_targets forward_targets; /* "allow_forward" lines */
};

/*
 * Where the config lives when --config is not given: /etc/tether/agent.conf
 * for root, else $XDG_CONFIG_HOME/tether/agent.conf (~/.config/...).
 */
void agent_config_default_path(char *out, size_t outlen);
/*
 * Reads and checks path into *c (zeroed first; free with
 * agent_config_free()).  On error returns TETHER_ERR_* with "FILE:LINE:
 * what" in err.
 */
int agent_config_load(const char *path, struct agent_config *c, char *err,
		      size_t errlen);
/*
 * Writes the identity part (relay, fingerprint, name, labels, key) of c
 * to c->path, mode 0600, keeping any [check] sections already in the file
 * (enroll run twice re-enrolls).  err as above.
 */
int agent_config_save_identity(const struct agent_config *c, char *err,
			       size_t errlen);
void agent_config_free(struct agent_config *c);

/* agent-check.c: health checks of an enrolled agent. */
enum agent_check_state {
	AGENT_CHECK_OK = 0,
	AGENT_CHECK_WARNING = 1,
	AGENT_CHECK_CRITICAL = 2,
	AGENT_CHECK_UNKNOWN = 3,
};

struct agent_checks;

/*
 * A finished check run, in the wire form of docs/protocol.md ("check"
 * without "t" and "seq"): a new reference handed to the callee.
 */
typedef void (*agent_check_result_cb)(void *arg, json_t *result);

/*
 * Parses every [check] section of cfg (unknown keys, bad ranges, missing
 * plugins are errors: "FILE:LINE: what" in err) and, unless dry_run,
 * schedules them on loop: the first run of each within its interval
 * (spread), then every interval, or every retry_interval while SOFT.
 */
int agent_checks_new(uv_loop_t *loop, const struct agent_config *cfg,
		     agent_check_result_cb cb, void *arg, bool dry_run,
		     struct agent_checks **out, char *err, size_t errlen);
/* How many checks were configured. */
size_t agent_checks_count(const struct agent_checks *c);
/* Runs every check once now (tether-agent check --now). */
void agent_checks_run_all(struct agent_checks *c);
/* Stops timers and kills running plugins; frees once handles are closed. */
void agent_checks_free(struct agent_checks *c);
const char *agent_check_state_name(enum agent_check_state s);

/* agent-diag.c: the diagnostics bundle (docs/protocol.md "Diagnostics"). */
/*
 * Collects the bundle on this thread (it blocks; tether-agent diag runs it
 * in a child).  Never fails but for memory: unreadable parts become
 * {"error": ...}.  Secrets are already redacted.
 */
json_t *agent_diag_collect(void);
/* tether-agent diag [--json] [-o FILE]. */
int agent_diag_main(int argc, char **argv);

/* agent-redact.c */
/*
 * A copy of text (NUL-terminated) with passwords, tokens, keys, private
 * key blocks, Authorization headers, credentials in URLs and the like
 * replaced by "[REDACTED]"; NULL only without memory.
 */
char *agent_redact(const char *text);

/* agent-service.c and agent-enroll.c: tether-agent enroll / run. */
int agent_enroll_main(int argc, char **argv);
int agent_run_main(int argc, char **argv);

/* ---- enrolled agent service: enroll, run, result queue ---- */
/*
 * agent-session.c: the next reconnect delay (jittered: the base +- 25%)
 * from *backoff_ms, which doubles up to AGENT_BACKOFF_MAX_MS.
 */
unsigned agent_backoff_next(unsigned *backoff_ms);
/* agent-session.c: hello as an agent, first on every connection. */
int agent_send_hello(struct tether_link *l);
/*
 * agent-session.c: a control frame's message (the caller decrefs) and its
 * type in *t; a malformed one closes l with a protocol error: NULL.
 */
json_t *agent_ctrl_parse(struct tether_link *l, const struct tether_frame *f,
			 const char **t);

/* agent-queue.c: check results waiting for the relay's check_ack. */
struct agent_queue;

/* An empty queue of at most cap results; NULL without memory. */
struct agent_queue *agent_queue_new(size_t cap);
/* Frees the queue and drops its results.  NULL is fine. */
void agent_queue_free(struct agent_queue *q);
/*
 * Takes msg (a "check" message without "seq"), gives it the next seq and
 * returns that seq.  A full queue drops its oldest result first and adds
 * it (with what that result itself carried) to the "dropped" count of the
 * new oldest, so the relay learns of the gap with the next result sent.
 */
int64_t agent_queue_push(struct agent_queue *q, json_t *msg);
/* The relay holds every result up to seq: they leave the queue. */
void agent_queue_ack(struct agent_queue *q, int64_t seq);
/* Renumbers the queued results from first on; the next push follows. */
void agent_queue_renumber(struct agent_queue *q, int64_t first);
/* The seq the next push gets. */
int64_t agent_queue_next_seq(const struct agent_queue *q);
size_t agent_queue_len(const struct agent_queue *q);
/* The i-th oldest queued message (borrowed), NULL past the end. */
json_t *agent_queue_at(const struct agent_queue *q, size_t i);
/* ---- end of enrolled agent service ---- */

/* ---- health checks (agent-config.c, agent-check.c, agent-plugin.c,
 * agent-range.c, agent-builtin.c): helpers shared by the engine and its
 * tests ---- */
/* A check or agent name: 1 to 64 of A-Z a-z 0-9 _ . - */
bool agent_config_name_valid(const char *s);
/* One of the characters a name may hold. */
bool agent_config_name_char(char ch);
/* HOST:PORT or [V6]:PORT into *t; why says why not (static text). */
int agent_config_parse_target(const char *spec, struct agent_target *t,
			      const char **why);
/* Decimal 1..65535, digits only; TETHER_ERR_FORMAT for anything else. */
int agent_parse_port(const char *s, uint16_t *port);

/* Longest status line kept from a check, in bytes. */
#define AGENT_CHECK_OUTPUT_MAX 1024
/* Plugin output kept per stream; the rest is read and dropped. */
#define AGENT_PLUGIN_OUTPUT_MAX (8u * 1024)
/* Longest range as written ("@10:20"). */
#define AGENT_RANGE_TEXT_MAX 64

/* A Nagios threshold range (agent-range.c). */
struct agent_range {
	bool set;
	bool inside;  /* '@': alert inside lo..hi, not outside */
	bool lo_inf;  /* '~': no lower end */
	bool hi_inf;  /* "N:": no upper end */
	double lo;
	double hi;
	char text[AGENT_RANGE_TEXT_MAX]; /* as written */
};

/* Parses s into *r; TETHER_ERR_FORMAT if it is not a range. */
int agent_range_parse(const char *s, struct agent_range *r);
/* Whether v calls for an alert (false for an unset range). */
bool agent_range_alert(const struct agent_range *r, double v);
/*
 * Perfdata text ("'label'=value[UOM];[warn];[crit];[min];[max] ...") as a
 * JSON array of {label, value, uom, warn, crit, min, max}; malformed
 * entries are skipped.  NULL only without memory.
 */
json_t *agent_perfdata_parse(const char *text);

/* What one run of a check found. */
struct agent_check_result {
	enum agent_check_state state;
	char output[AGENT_CHECK_OUTPUT_MAX + 1]; /* status line, cleaned */
	char *perf;				 /* perfdata text or NULL */
};

/*
 * Splits a command line without a shell: blanks separate words, '...'
 * is literal, "..." and a backslash outside quotes escape.  *argv is
 * NULL-terminated; free with agent_argv_free().  why on error.
 */
int agent_command_split(const char *s, char ***argv, const char **why);
void agent_argv_free(char **argv);
/*
 * A plugin's output (stdout as read, capped) into res->output and
 * res->perf: the first line is the status, perfdata follows the first '|'
 * of it and the first '|' of any later line (docs/agent-config.md).
 */
int agent_plugin_parse_output(const char *out, size_t len,
			      struct agent_check_result *res);

/* How a plugin run ended (agent-plugin.c). */
struct agent_plugin_end {
	bool timed_out;	   /* killed at the timeout */
	int how;	   /* 0 exited with value, 1 killed by signal value */
	int value;
	const char *out;   /* stdout, at most AGENT_PLUGIN_OUTPUT_MAX */
	size_t outlen;
	const char *err;   /* stderr, likewise */
	size_t errlen;
};

struct agent_plugin;
typedef void (*agent_plugin_cb)(void *arg, const struct agent_plugin_end *e);

/*
 * Spawns argv[0] (an absolute path, no shell) in its own process group,
 * stdin /dev/null, capturing stdout and stderr.  At timeout_ms the group
 * is killed with SIGKILL.  cb is called once, when it has exited and its
 * pipes are at EOF (or at the timeout); the plugin frees itself after.
 * A negative UV_E* if it could not be spawned (no cb then).
 */
int agent_plugin_start(uv_loop_t *loop, char *const *argv,
		       unsigned timeout_ms, agent_plugin_cb cb, void *arg,
		       struct agent_plugin **out);
/* Kills the process group; no cb afterwards.  Frees itself. */
void agent_plugin_cancel(struct agent_plugin *p);
/* The Nagios reading of a plugin's end: exit code 0..3 and its output. */
void agent_plugin_result(const struct agent_plugin_end *e, unsigned timeout_ms,
			 struct agent_check_result *res);

/* A check's place in the SOFT/HARD state machine (agent-check.c). */
struct agent_check_status {
	bool started; /* a result was seen */
	enum agent_check_state state;
	bool hard;
	unsigned attempt;
};

/* Moves s on by one result, as Nagios does with max_attempts "retries". */
void agent_check_advance(struct agent_check_status *s,
			 enum agent_check_state next, unsigned max_attempts);
/* "OK", ..., "UNKNOWN" into enum; -1 if none. */
int agent_check_state_parse(const char *name);
/*
 * tether-agent check [--config FILE] [--json] (argv[1] is "check"): the
 * exit status, the worst state, or 2 for a bad config.
 */
int agent_check_main(int argc, char **argv);

/* The built-in checks (agent-builtin.c). */
enum agent_builtin_kind {
	AGENT_BUILTIN_DISK,
	AGENT_BUILTIN_INODES,
	AGENT_BUILTIN_MEMORY,
	AGENT_BUILTIN_SWAP,
	AGENT_BUILTIN_LOAD,
	AGENT_BUILTIN_PROCESS,
	AGENT_BUILTIN_TCP_PORT,
	AGENT_BUILTIN_TLS_CERT_EXPIRY,
	AGENT_BUILTIN_FILE_AGE,
	AGENT_BUILTIN_SYSTEMD_UNIT,
};

struct agent_builtin {
	enum agent_builtin_kind kind;
	char path[1024]; /* disk, inodes, file_age */
	char host[AGENT_HOST_MAX];
	uint16_t port;
	char servername[AGENT_HOST_MAX];
	char name[AGENT_NAME_MAX]; /* process: exact comm */
	char match[256];	   /* process: cmdline substring */
	char unit[256];		   /* systemd_unit */
	bool per_cpu;		   /* load */
	struct agent_range warn;
	struct agent_range crit;
	unsigned timeout_ms;
};

/* Sets up b for the built-in called name; TETHER_ERR_NOT_FOUND if none. */
int agent_builtin_init(struct agent_builtin *b, const char *name);
/* One parameter key = value; TETHER_ERR_INVALID for a key it lacks. */
int agent_builtin_set(struct agent_builtin *b, const char *key,
		      const char *value, const char **why);
/* After the keys: defaults and required keys; why on error. */
int agent_builtin_finish(struct agent_builtin *b, const char **why);
/*
 * Runs b now and blocks (up to about its timeout): for the thread pool.
 * Not for AGENT_BUILTIN_SYSTEMD_UNIT, which runs systemctl as a plugin.
 */
void agent_builtin_run(const struct agent_builtin *b,
		       struct agent_check_result *res);
/* systemd_unit: whether systemd runs here, the command and its reading. */
bool agent_builtin_have_systemd(void);
void agent_builtin_systemd_argv(const struct agent_builtin *b,
				const char *argv[6]);
void agent_builtin_systemd_result(const struct agent_builtin *b,
				  const struct agent_plugin_end *e,
				  struct agent_check_result *res);
/* ---- end of health checks ---- */

/* ---- diagnostics internals (agent-diag*.c) ---- */
/* How long CPU, swap and process activity are sampled. */
#define AGENT_DIAG_SAMPLE_MS 200

/* CPU time of one process, from /proc/PID/stat. */
struct agent_diag_pticks {
	int pid;
	uint64_t ticks; /* utime + stime */
	uint64_t rss;	/* pages */
};

/* Counters read twice, AGENT_DIAG_SAMPLE_MS apart. */
struct agent_diag_snap {
	uint64_t ms; /* CLOCK_MONOTONIC */
	bool cpu_ok;
	uint64_t cpu_total; /* jiffies */
	uint64_t cpu_idle;  /* idle + iowait */
	bool vm_ok;
	uint64_t pswpin; /* pages */
	uint64_t pswpout;
	struct agent_diag_pticks *procs; /* sorted by pid */
	size_t nprocs;
};

/* agent-diag.c: helpers of every collector. */
/*
 * path with TETHER_TEST_DIAG_ROOT put before /etc, /proc, /sys, /run and
 * /var (test builds only); else path itself.
 */
const char *agent_diag_path(const char *path, char *buf, size_t len);
/*
 * Reads at most max bytes of a file (the diag path of path) into *out,
 * NUL-terminated, the caller frees; 0, or a negative errno (*out NULL).
 */
int agent_diag_read(const char *path, size_t max, char **out, size_t *len);
/* {"error": "permission denied: PATH"} and the like (err: errno > 0). */
json_t *agent_diag_errno(int err, const char *path);
json_t *agent_diag_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
/* A JSON string of at most max bytes of s: valid UTF-8, no controls. */
json_t *agent_diag_str(const char *s, size_t max);
/*
 * Runs argv (PATH search, no shell) with stdin and stderr on /dev/null,
 * collecting at most max bytes of its stdout into *out (NUL-terminated);
 * killed after timeout_ms or when the collection's time is up.  0 with
 * its exit status (or 128 + signal) in *status; TETHER_ERR_NOT_FOUND if
 * it could not be run, TETHER_ERR_EXPIRED on timeout (*out NULL).
 */
int agent_diag_run(char *const argv[], int timeout_ms, size_t max, char **out,
		   int *status);
uint64_t agent_diag_now_ms(void);
/* t as "2024-05-01T10:00:00Z" (UTC); the epoch if it cannot be. */
void agent_diag_iso_time(time_t t, char *out, size_t outlen);
/* Skips blanks, then reads a decimal number and moves *p past it. */
bool agent_diag_u64(const char **p, uint64_t *v);
/* Splits line in place at blanks into at most max fields; their count. */
size_t agent_diag_fields(char *line, char **f, size_t max);

/* agent-diag-sys.c */
void agent_diag_snap_sys(struct agent_diag_snap *s);
json_t *agent_diag_os(void);
json_t *agent_diag_uptime(void);
json_t *agent_diag_cpu(const struct agent_diag_snap *a,
		       const struct agent_diag_snap *b);
json_t *agent_diag_memory(const struct agent_diag_snap *a,
			  const struct agent_diag_snap *b);
json_t *agent_diag_disks(void);
json_t *agent_diag_mounts(void);
json_t *agent_diag_packages(void);
json_t *agent_diag_time(void);

/* agent-diag-net.c */
json_t *agent_diag_network(void);
json_t *agent_diag_routes(void);
json_t *agent_diag_dns(void);
json_t *agent_diag_listening(void);

/* agent-diag-proc.c */
/* Fills s->procs (NULL, 0 if /proc cannot be listed). */
void agent_diag_snap_procs(struct agent_diag_snap *s);
void agent_diag_snap_free(struct agent_diag_snap *s);
json_t *agent_diag_processes(const struct agent_diag_snap *a,
			     const struct agent_diag_snap *b);
/* {pid, user, name, cmdline (redacted), rss}; NULL if pid is gone. */
json_t *agent_diag_process(int pid);
json_t *agent_diag_systemd(void);
json_t *agent_diag_logs(void);
/* ---- end of diagnostics internals ---- */

#endif /* TETHER_AGENT_H */
