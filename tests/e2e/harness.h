/*
 * End-to-end test harness: starts the real tether-relay, tether-agent and
 * tether programs on loopback inside a per-test temporary directory and
 * drives them as a user would.  Criterion runs every test in its own
 * process, so the harness keeps that test's state (scratch directory,
 * children to clean up) in file-scope variables: call h_setup() and
 * h_teardown() as the suite's .init and .fini.
 *
 * Helpers that start or run something assert on failure (cr_assert), so a
 * test reads as the sequence of user actions it checks.
 */
#ifndef TETHER_E2E_HARNESS_H
#define TETHER_E2E_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

#define H_PATH_MAX 512
#define H_FP_MAX 128
#define H_TOKEN_MAX 256
#define H_ADDR_MAX 64
#define H_ID_MAX 32
#define H_CODE_MAX 128

/* Default limit for one command run to completion, milliseconds. */
#define H_RUN_TIMEOUT_MS 30000

/*
 * Per-test setup and cleanup (Criterion .init / .fini).  h_teardown()
 * stops what the test left running: relays and agents with SIGTERM, and
 * they must exit with status 0 within 5 s (a tether program that dies
 * of the signal never ran its leak check); consoles with SIGTERM too,
 * and they may die of it; anything else with SIGKILL.  A program that
 * crashed (SIGSEGV, SIGABRT, ...) without being waited for, one that
 * did not stop in time and any sanitizer report fail the test; with
 * tests/leakcheck.c an assertion in a .fini counts.
 */
void h_setup(void);
void h_teardown(void);

/* The test's scratch directory, and "DIR/name" in buf (asserts on fit). */
const char *h_dir(void);
const char *h_path(char *buf, size_t len, const char *name);
/* Binaries from TETHER_{RELAY,AGENT,CONSOLE}_BIN (asserted set). */
const char *h_relay_bin(void);
const char *h_agent_bin(void);
const char *h_console_bin(void);
/* True when the programs were built with -Dtest_hooks=true. */
bool h_test_hooks(void);
/*
 * For a test about to skip because a tool is missing (why says which):
 * fails it instead where the tools are required (tests/require.h: CI or
 * TETHER_REQUIRE_TOOLS=1 set), else returns so the caller can skip.
 */
void h_tool_missing(const char *why);

/*
 * Sanitizer builds (TETHER_SANITIZE=1 from tests/meson.build).  Every
 * program the harness starts writes its ASan, LSan and UBSan reports to
 * DIR/sanitizer/report.PID instead of its stderr: the harness adds
 * log_path to the ASAN_OPTIONS and UBSAN_OPTIONS it inherits (plus
 * fast_unwind_on_malloc=1, which the test binary itself runs without).
 * Any report fails the test: h_proc_stop() and h_relay_stop() look for
 * that process's, h_teardown() for all of them.  h_leak_detect() is true
 * when the build has LeakSanitizer (TETHER_LEAK_DETECT=1).
 */
bool h_sanitized(void);
bool h_leak_detect(void);
/*
 * The reports of pid (0: of every process) so far, one after the other,
 * or NULL if there are none; consume removes them.  Caller frees.
 */
char *h_sanitizer_reports(pid_t pid, bool consume);

/* ---- Running a command to completion ---------------------------------- */

struct h_opts {
	/* stdin: these bytes, else this file, else /dev/null. */
	const void *stdin_data;
	size_t stdin_len;
	const char *stdin_file;
	/* stdout goes to this file instead of memory (big output). */
	const char *stdout_file;
	/* Extra "NAME=value" entries, NULL-terminated; override inherited. */
	const char *const *env;
	/* 0 means H_RUN_TIMEOUT_MS. */
	int timeout_ms;
};

struct h_res {
	/* Exit code, or 128 + signal number when killed by a signal. */
	int status;
	/* NUL-terminated captures (out is empty with stdout_file). */
	char *out;
	size_t out_len;
	char *err;
	size_t err_len;
};

/*
 * Runs argv (NULL-terminated; argv[0] looked up in PATH unless it has a
 * slash) to completion.  A command still running after the timeout is
 * killed and the test fails.  Free res with h_res_free().
 */
void h_run(struct h_res *res, const struct h_opts *o, const char *const *argv);
void h_res_free(struct h_res *res);

/*
 * Runs the console with the test's own XDG_CONFIG_HOME (o->env may
 * override it); arguments after o end with NULL.  h_console_ok() also
 * asserts exit status 0.
 */
void h_console(struct h_res *res, const struct h_opts *o, ...)
    __attribute__((sentinel));
void h_console_ok(struct h_res *res, const struct h_opts *o, ...)
    __attribute__((sentinel));

/* tether exec TICKET -- cmd... (cmd NULL-terminated); no status check. */
void h_exec(struct h_res *res, const struct h_opts *o, const char *ticket,
	    const char *const *cmd);

/*
 * Asserts status and, where not NULL, the exact stdout and stderr; what
 * names the command in the failure message.
 */
void h_expect(const struct h_res *res, int status, const char *out,
	      const char *err, const char *what);
/* Asserts status (any non-zero if < 0) and that stderr contains part. */
void h_expect_fail(const struct h_res *res, int status, const char *part,
		   const char *what);

/*
 * The decimal number at s (blanks and a '-' allowed first), as strtol()
 * reads one but through tether_num_scan_i64(): *end (may be NULL) after
 * its digits, or s and 0 when there is none.
 */
long long h_number(const char *s, char **end);

/* ---- Background processes --------------------------------------------- */

struct h_proc {
	pid_t pid;	      /* 0 once reaped */
	pid_t ran_as;	      /* the pid, kept: it names its reports */
	int status;	      /* as h_res.status, once reaped */
	char out[H_PATH_MAX]; /* stdout file */
	char err[H_PATH_MAX]; /* stderr file */
};

/*
 * Starts argv in the background with stdout and stderr in files named
 * after tag in the scratch directory, stdin from /dev/null.
 */
void h_proc_start(struct h_proc *p, const char *tag, const char *const *argv,
		  const char *const *env);
/* The console in the background, as h_console(); arguments end with NULL. */
void h_console_start(struct h_proc *p, const char *tag, ...)
    __attribute__((sentinel));
/* Exit status, or -1 if still running after timeout_ms. */
int h_proc_wait(struct h_proc *p, int timeout_ms);
bool h_proc_alive(struct h_proc *p);
/* Sends sig to the process (not reaped). */
void h_proc_signal(struct h_proc *p, int sig);
/* SIGKILL and reap; fine on a reaped process. */
void h_proc_kill(struct h_proc *p);
/*
 * Stops a tether program with sig (SIGTERM or SIGINT) and asserts that it
 * exited with status 0 within 5 s and wrote no sanitizer report.  One
 * that has ended already is only reaped, and fails only if it crashed.
 */
void h_proc_stop(struct h_proc *p, int sig);
/*
 * The same without asserting: what was wrong (exit, the reports), or
 * NULL if the stop was clean.  The reports are consumed, so h_teardown()
 * does not count them again.  Caller frees.
 */
char *h_proc_stop_why(struct h_proc *p, int sig);
/* stdout then stderr of the process so far; caller frees. */
char *h_proc_output(const struct h_proc *p);
/* Waits until stdout or stderr contains needle; false on timeout. */
bool h_proc_wait_output(const struct h_proc *p, const char *needle,
			int timeout_ms);

/* ---- Files ------------------------------------------------------------ */

/* Whole file, NUL-terminated (len may be NULL); NULL if unreadable. */
char *h_read_file(const char *path, size_t *len);
/* True if the file exists and holds the bytes needle[0..n). */
bool h_file_contains(const char *path, const void *needle, size_t n);
/* Writes len random bytes to path. */
void h_write_random(const char *path, size_t len);
/* Lower-case hex SHA-256 of a file into hex (65 bytes). */
void h_sha256_file(const char *path, char hex[65]);
/* Strips one trailing newline in place; returns s. */
char *h_chomp(char *s);

/* ---- The relay -------------------------------------------------------- */

struct h_relay {
	char data[H_PATH_MAX];	    /* --data DIR */
	char fingerprint[H_FP_MAX]; /* "SHA256:..." */
	char admin_token[H_TOKEN_MAX];
	char addr[H_ADDR_MAX]; /* "127.0.0.1:PORT" once running */
	int port;
	char log[H_PATH_MAX]; /* its stderr, kept across restarts */
	struct h_proc proc;
};

/* tether-relay init --data DIR/name --json; fills data, fp, token. */
void h_relay_init(struct h_relay *r, const char *name);
/*
 * tether-relay run on listen (NULL: 127.0.0.1:0), stdout in DIR.out,
 * waiting up to 10 s for its "listening on" line, whose fingerprint must
 * be the one init printed; env as for h_proc_start.  Also restarts a
 * stopped relay (pass its addr to keep the port).
 */
void h_relay_start(struct h_relay *r, const char *listen,
		   const char *const *env);
/* The same with args (NULL-terminated, at most 8) after run's own. */
void h_relay_start_ex(struct h_relay *r, const char *listen,
		      const char *const *args, const char *const *env);
/* Both of the above, for a relay named "relay". */
void h_relay_up(struct h_relay *r, const char *const *env);
/* h_proc_stop(SIGTERM): status 0 within 5 s, no sanitizer report. */
void h_relay_stop(struct h_relay *r);
bool h_relay_alive(struct h_relay *r);

/*
 * tether-relay technician add NAME --role ROLE --data DIR --json; checks
 * the answer and copies the token.
 */
void h_technician_add(const struct h_relay *r, const char *name,
		      const char *role, char *token, size_t len);
/* The relay's database, opened read-only (busy timeout 2 s): close it. */
struct sqlite3;
struct sqlite3 *h_db_open(const struct h_relay *r);

/* ---- User actions ----------------------------------------------------- */

/*
 * tether-relay technician token NAME --data DIR --json: a fresh one-time
 * login token; checks the answer.
 */
void h_technician_token(const struct h_relay *r, const char *name, char *token,
			size_t len);
/*
 * tether login ADDR --token TOKEN --fingerprint FP in the test's config,
 * after forgetting whoever was logged in there (config.json and the key;
 * session files stay, as for a second technician at the same desk);
 * asserts success.
 */
void h_login_as(const struct h_relay *r, const char *token);
/* h_login_as() with a fresh login token for admin. */
void h_login(const struct h_relay *r);
/* tether ticket new TITLE; id gets "T-N". */
void h_ticket_new(const char *title, char *id, size_t len);
/* tether invite T-N [--expires E]; code gets the code. */
void h_invite(const char *ticket, const char *expires, char *code, size_t len);
/* tether ticket show T-N --all --json: the ticket with its whole audit
 * trail (caller decrefs). */
json_t *h_ticket_show(const char *ticket);
/* True if some audit event name of the ticket contains part. */
bool h_audit_has(json_t *ticket, const char *part);
/* Audit event names, comma-separated, for messages; caller frees. */
char *h_audit_names(json_t *ticket);
/*
 * Polls ticket show until a session is joined (or already paired);
 * asserts it happens within timeout_ms.  agent (may be NULL) is the
 * joining agent, whose output goes into the failure message.
 */
void h_wait_joined(const char *ticket, int timeout_ms,
		   const struct h_proc *agent);
/*
 * tether-agent join CODE --relay ADDR --fingerprint FP --yes in the
 * background; fp NULL means the relay's own.
 */
void h_agent_start(struct h_proc *p, const struct h_relay *r, const char *code,
		   const char *fp);
/* The same with a choice: fp "" passes no --fingerprint; yes: --yes. */
void h_agent_start_opts(struct h_proc *p, const struct h_relay *r,
			const char *code, const char *fp, bool yes);

/* A relay, a logged-in console, a ticket with an agent joined to it. */
struct h_session {
	struct h_relay relay;
	char ticket[H_ID_MAX];
	char code[H_CODE_MAX];
	struct h_proc agent;
};

/* The whole of the above; relay_env as for h_relay_start. */
void h_session_start(struct h_session *s, const char *title,
		     const char *const *relay_env);

/* What an agent gets beyond h_agent_start's arguments. */
struct h_agent_opts {
	/* More arguments after join's own (--allow-write DIR...). */
	const char *const *args;
	/* More "NAME=value" entries for its environment. */
	const char *const *env;
	/*
	 * Non-zero: the agent runs with RLIMIT_FSIZE at this many bytes
	 * and SIGXFSZ ignored, so writes past it fail with EFBIG.
	 */
	unsigned long long fsize;
	/*
	 * Non-zero (we are root): the agent runs as this user and group,
	 * with no supplementary groups, and its config home is theirs.
	 * Whatever else it needs (its home, DIR itself for the sanitizer
	 * reports) is the test's to open up.
	 */
	uid_t uid;
	gid_t gid;
};

/* The uid and gid of "nobody" (65534 where there is no such entry). */
void h_nobody(uid_t *uid, gid_t *gid);

/* h_agent_start (relay's fingerprint, --yes) with o (may be NULL). */
void h_agent_start_ex(struct h_proc *p, const struct h_relay *r,
		      const char *code, const struct h_agent_opts *o);
/* h_session_start whose agent is started with o (may be NULL). */
void h_session_start_ex(struct h_session *s, const char *title,
			const char *const *relay_env,
			const struct h_agent_opts *o);

/* ---- Processes by pid (/proc) ----------------------------------------- */

/* State letter of pid from /proc ('R', 'S', 'Z'...), 0 if there is none. */
char h_pid_state(pid_t pid);
/*
 * Waits until pid is gone; with zombie_ok an unreaped process counts as
 * gone.  Returns 0 if it went in time, else its last state letter.
 */
char h_pid_wait_gone(pid_t pid, int timeout_ms, bool zombie_ok);
/* A child of parent whose name (comm) is comm, polled; 0 if none. */
pid_t h_pid_child(pid_t parent, const char *comm, int timeout_ms);
/*
 * Number of open descriptors of pid (-1 if unreadable); list, when not
 * NULL, gets "fd -> target" lines for messages (caller frees).
 */
int h_pid_fds(pid_t pid, char **list);

/* Polls until path exists and is not empty; its contents, or NULL. */
char *h_wait_file(const char *path, int timeout_ms);

/*
 * The first audit event named event whose detail has "kind": kind
 * (kind NULL: any); a borrowed reference, or NULL.
 */
json_t *h_audit_event(json_t *ticket, const char *event, const char *kind);

/* ---- A real terminal: a private tmux server --------------------------- */

/*
 * Tests that need a person's terminal (raw mode, window size, full-screen
 * programs) run the console in a tmux pane and read the screen back.  The
 * server runs in the foreground (-D) as one of the test's children, on a
 * socket in the scratch directory and without any configuration file, so
 * it dies with the test and never meets the user's own tmux.
 */
struct h_tmux {
	char sock[H_PATH_MAX];
	struct h_proc server;
};

/* True if tmux can be run (tmux -V). */
bool h_tmux_available(void);
/* Starts the server and waits until it answers. */
void h_tmux_start(struct h_tmux *t);
/* kill-server, then makes sure it is gone; fine if never started. */
void h_tmux_stop(struct h_tmux *t);
/* tmux -S SOCK ARGS... (NULL-terminated); asserts status 0. */
void h_tmux_cmd(struct h_tmux *t, struct h_res *res, ...)
    __attribute__((sentinel));

/*
 * A detached session called name, cols x rows, running argv directly (no
 * shell) with env ("NAME=value", NULL-terminated; may be NULL) added.
 */
void h_term_new(struct h_tmux *t, const char *name, int cols, int rows,
		const char *const *env, const char *const *argv);
/* Types text literally (no key names). */
void h_term_type(struct h_tmux *t, const char *name, const char *text);
/* Presses one key by tmux name ("Enter", "C-c", "Space"). */
void h_term_key(struct h_tmux *t, const char *name, const char *key);
/*
 * The screen as text, one line per row, wrapped lines joined; with
 * history, the scroll-back too.  Caller frees.
 */
char *h_term_screen(struct h_tmux *t, const char *name, bool history);
/* Polls the screen (and scroll-back) until it contains needle. */
bool h_term_wait(struct h_tmux *t, const char *name, const char *needle,
		 int timeout_ms);
/* Resizes the window, so its programs get SIGWINCH. */
void h_term_resize(struct h_tmux *t, const char *name, int cols, int rows);
/* The pane's size as tmux sees it. */
void h_term_size(struct h_tmux *t, const char *name, int *cols, int *rows);
/* Pid of the program the pane started (argv of h_term_new). */
pid_t h_term_pid(struct h_tmux *t, const char *name);

/* ---- OpenSSH: a throwaway sshd on loopback, keys ---------------------- */

/*
 * Tests of `tether ssh` and `tether forward` meet a real OpenSSH server:
 * an sshd that the test starts as one of its children on a free loopback
 * port, with a host key and an authorized keys file of its own in the
 * scratch directory and no system configuration (-f /dev/null).  It runs
 * as the current user, who is the only one it can log in; as root (CI)
 * it needs /run/sshd, which h_sshd_start makes when missing.
 */
struct h_sshd {
	int port;		     /* 127.0.0.1:port */
	char user[64];		     /* the current user's name */
	char host_key[H_PATH_MAX];   /* private; host_key.pub beside it */
	char authorized[H_PATH_MAX]; /* AuthorizedKeysFile */
	char log[H_PATH_MAX];	     /* sshd -E */
	struct h_proc proc;
};

/* True if /usr/sbin/sshd and ssh-keygen can be run. */
bool h_sshd_available(void);
/* The current user's login name into buf (asserts on fit). */
const char *h_user_name(char *buf, size_t len);
/* A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0). */
int h_free_port(void);
/* Polls until a TCP connection to 127.0.0.1:port succeeds. */
bool h_port_wait(int port, int timeout_ms);
/* ssh-keygen -q -t ed25519 -N '' -C comment -f path (and path.pub). */
void h_ssh_keygen(const char *path, const char *comment);
/* "TYPE BASE64" of an OpenSSH public key file (no comment); caller frees. */
char *h_ssh_pubkey(const char *pub_path);
/*
 * Makes DIR/name_host_key and an empty DIR/name_authorized_keys, starts
 * /usr/sbin/sshd -D on 127.0.0.1 and a free port (LogLevel VERBOSE to
 * DIR/name.log, PidFile none, UsePAM no, StrictModes no; as root also
 * PermitRootLogin yes) and waits until it accepts connections.
 */
void h_sshd_start(struct h_sshd *s, const char *name);
/* Appends the public key file pub_path to its authorized keys. */
void h_sshd_authorize(struct h_sshd *s, const char *pub_path);
/* SIGTERM, then SIGKILL after 3 s; fine if never started or gone. */
void h_sshd_stop(struct h_sshd *s);

/* ---- Enrolled agents ---------------------------------------------------- */

/* tether-relay enroll-token --data DIR --json [--ttl TTL]; asserts. */
void h_enroll_token(const struct h_relay *r, const char *ttl, char *token,
		    size_t len);
/*
 * A fresh token, then tether-agent enroll --relay ADDR --token T
 * --fingerprint FP --name NAME --config CONF --json; asserts success.
 */
void h_enroll(const struct h_relay *r, const char *name, const char *conf);
/* Appends text to the file at path (creating it). */
void h_append_file(const char *path, const char *text);
/* tether-agent run --config CONF -v in the background, output as tag. */
void h_agent_run(struct h_proc *p, const char *tag, const char *conf);
/* tether health [AGENT] --json (agent may be NULL): the array. */
json_t *h_health(const char *agent);
/* The check named name in h_health()'s array, or NULL (borrowed). */
json_t *h_health_check(json_t *checks, const char *name);

#endif /* TETHER_E2E_HARNESS_H */
