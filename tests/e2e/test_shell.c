/*
 * End-to-end tests of `tether shell T-N`, driven as a technician would:
 * the console runs in a real terminal (a pane of a private tmux server)
 * and the test types keys and reads the screen back, or, without a
 * terminal, with stdin and stdout as files and pipes (like ssh -T).
 *
 * Covered: echo, TERM and the window size at open and after a resize, a
 * full-screen program, the ~ escapes, the remote shell's exit status, a
 * sane local terminal on every exit path, binary-safe streams without a
 * PTY, clean-up on the agent when the console dies, the console's exit
 * when the agent or the relay dies, the relay's audit of shell channels,
 * and two shells at once.  Every wait has a deadline.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "harness.h"

#define COLS 100
#define ROWS 30
/* The first shell of a ticket also pairs the console with the agent. */
#define FIRST_MS 20000
#define SCREEN_MS 10000
#define EXIT_MS 10000
#define GONE_MS 5000
#define BINARY_SIZE (16u << 20)

static struct h_tmux tmux;
static struct h_session sess;
static char wrapper_path[H_PATH_MAX];

static void fini(void)
{
	h_tmux_stop(&tmux);
	h_teardown();
}

TestSuite(shell, .init = h_setup, .fini = fini);

/*
 * What each pane runs: records the terminal settings (stty -g) and TERM,
 * runs the console, then records the settings again and the console's
 * exit status.  The status file is written last and by rename, so that a
 * test that finds it also finds the settings.  The pane then stays a
 * while so that its screen can be read; it goes with the tmux server.
 */
static const char wrapper[] = "tag=$1; shift\n"
			      "stty -g > \"$D/$tag.before\"\n"
			      "printf '%s\\n' \"$TERM\" > \"$D/$tag.term\"\n"
			      "\"$TETHER\" shell \"$TICKET\" \"$@\"\n"
			      "st=$?\n"
			      "stty -g > \"$D/$tag.after\"\n"
			      "printf '%s\\n' \"$st\" > \"$D/$tag.st\"\n"
			      "mv \"$D/$tag.st\" \"$D/$tag.exit\"\n"
			      "exec sleep 120\n";

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	cr_assert(f, "cannot write %s: %s", path, strerror(errno));
	fputs(text, f);
	cr_assert(fclose(f) == 0, "cannot write %s", path);
}

/* CI installs tmux (and must); elsewhere its absence only skips. */
static void need_tmux(void)
{
	static const char why[] = "tmux is not installed: the interactive "
				  "shell tests need a real terminal "
				  "(apt-get install tmux)";

	if (h_tmux_available())
		return;
	h_tool_missing(why);
	/* A skipped test does not get its .fini. */
	h_teardown();
	cr_skip_test("%s", why);
}

/* A relay, an agent joined to a new ticket, and (with tmux) a terminal. */
static void start(const char *title, bool terminal)
{
	char home[H_PATH_MAX];

	/*
	 * The agent's login shell takes HOME from the agent, which takes it
	 * from us: an empty home keeps the tester's dotfiles out (a profile
	 * that waits on a lock stalls shells started at once) and the
	 * commands typed here out of their shell history.
	 */
	h_path(home, sizeof(home), "home");
	cr_assert(mkdir(home, 0700) == 0, "mkdir %s: %s", home,
		  strerror(errno));
	setenv("HOME", home, 1);
	h_session_start(&sess, title, NULL);
	if (!terminal)
		return;
	h_tmux_start(&tmux);
	h_path(wrapper_path, sizeof(wrapper_path), "pane.sh");
	write_file(wrapper_path, wrapper);
}

/*
 * A terminal called name, COLS x ROWS, running `tether shell TICKET`
 * through the wrapper; its files are DIR/name.*.
 */
static void term_open(const char *name)
{
	char d[H_PATH_MAX + 8], bin[H_PATH_MAX + 16], ticket[H_ID_MAX + 16];
	char cfg[H_PATH_MAX], xdg[H_PATH_MAX + 32];
	const char *env[] = {d, bin, ticket, xdg, NULL};
	const char *argv[] = {"sh", wrapper_path, name, NULL};

	snprintf(d, sizeof(d), "D=%s", h_dir());
	snprintf(bin, sizeof(bin), "TETHER=%s", h_console_bin());
	snprintf(ticket, sizeof(ticket), "TICKET=%s", sess.ticket);
	snprintf(xdg, sizeof(xdg), "XDG_CONFIG_HOME=%s",
		 h_path(cfg, sizeof(cfg), "config"));
	h_term_new(&tmux, name, COLS, ROWS, env, argv);
}

static char *agent_output(void)
{
	return h_proc_output(&sess.agent);
}

/* Reads DIR/name.suffix, waiting up to ms for it; NULL if absent. */
static char *pane_file(const char *name, const char *suffix, int ms)
{
	char file[64], path[H_PATH_MAX];

	snprintf(file, sizeof(file), "%s.%s", name, suffix);
	return h_wait_file(h_path(path, sizeof(path), file), ms);
}

/*
 * Asserts that needle shows up on name's screen (or scroll-back).  A
 * console that has already exited fails at once, with its status.
 */
static void expect_screen(const char *name, const char *needle, int ms,
			  const char *what)
{
	char *screen, *agent, *st = NULL;

	for (int waited = 0; waited < ms; waited += 250) {
		if (h_term_wait(&tmux, name, needle, 250))
			return;
		st = pane_file(name, "exit", 0);
		if (st)
			break;
	}
	if (h_term_wait(&tmux, name, needle, 0))
		return;
	screen = h_term_screen(&tmux, name, true);
	agent = agent_output();
	if (st)
		cr_assert_fail("%s: \"%s\" not on the screen: tether shell "
			       "exited with status %s.\n"
			       "Screen of %s:\n%s\nAgent: %s",
			       what, needle, h_chomp(st), name, screen, agent);
	cr_assert_fail("%s: \"%s\" not on the screen after %d ms.\n"
		       "Screen of %s:\n%s\nAgent: %s",
		       what, needle, ms, name, screen, agent);
}

static void type_line(const char *name, const char *line)
{
	h_term_type(&tmux, name, line);
	h_term_key(&tmux, name, "Enter");
}

static long parse_long(const char *s, const char *what)
{
	char *end;
	long v;

	errno = 0;
	v = h_number(s, &end);
	cr_assert(errno == 0 && end != s && (*end == '\n' || !*end),
		  "%s: not a number: \"%s\"", what, s);
	return v;
}

/* The console's exit status in pane name, once it has exited. */
static int wait_exit(const char *name, int ms, const char *what)
{
	char *s = pane_file(name, "exit", ms);
	char *screen;
	int st;

	if (!s) {
		screen = h_term_screen(&tmux, name, true);
		cr_assert_fail("%s: tether shell still running after %d ms.\n"
			       "Screen of %s:\n%s\nAgent: %s",
			       what, ms, name, screen, agent_output());
	}
	st = (int)parse_long(s, "exit status");
	free(s);
	return st;
}

/* The local terminal's settings are what they were before tether ran. */
static void expect_sane(const char *name, const char *what)
{
	char *before = pane_file(name, "before", 0);
	char *after = pane_file(name, "after", 0);

	cr_assert(before && after, "%s: stty -g not recorded", what);
	cr_assert_str_eq(after, before,
			 "%s: the terminal was not restored:\n"
			 "stty -g before: %safter:         %s",
			 what, before, after);
	free(before);
	free(after);
}

/* Pid of the remote shell in pane name (it writes $$ to a file). */
static pid_t remote_shell_pid(const char *name)
{
	char line[H_PATH_MAX + 64], path[H_PATH_MAX];
	char file[64], *s;
	pid_t pid;

	snprintf(file, sizeof(file), "%s.pid", name);
	h_path(path, sizeof(path), file);
	snprintf(line, sizeof(line), "echo $$ > %s; echo \"P=$((5+5)).\"",
		 path);
	type_line(name, line);
	expect_screen(name, "P=10.", FIRST_MS,
		      "the remote shell's first "
		      "command");
	s = h_wait_file(path, 2000);
	cr_assert(s, "the remote shell did not write %s", path);
	pid = (pid_t)parse_long(s, "remote shell pid");
	free(s);
	return pid;
}

/* The first line of the visible screen equals want, within ms. */
static void expect_first_line(const char *name, const char *want, int ms,
			      const char *what)
{
	size_t n = strlen(want);
	char *screen = NULL;

	for (int waited = 0;; waited += 50) {
		free(screen);
		screen = h_term_screen(&tmux, name, false);
		if (!strncmp(screen, want, n) &&
		    (screen[n] == '\n' || !screen[n]))
			break;
		cr_assert(waited < ms,
			  "%s: first line is not \"%s\".\n"
			  "Screen of %s:\n%s",
			  what, want, name, screen);
		usleep(50 * 1000);
	}
	free(screen);
}

/* ---- Steps of the interactive session ---------------------------------- */

static void check_echo_and_term(const char *name)
{
	char want[128], *term;

	type_line(name, "echo \"R=$((40+2)).\"");
	expect_screen(name, "R=42.", FIRST_MS, "echo $((6*7)) in the shell");

	term = pane_file(name, "term", 2000);
	cr_assert(term && *h_chomp(term), "no TERM in the pane");
	type_line(name, "echo \"T=$TERM.\"");
	snprintf(want, sizeof(want), "T=%s.", term);
	expect_screen(name, want, SCREEN_MS, "TERM passed to the shell");
	free(term);
}

/* `stty size` in the remote shell says rows x cols of the pane. */
static bool size_shown(const char *name, int ms)
{
	char want[64];
	int cols, rows;

	h_term_size(&tmux, name, &cols, &rows);
	snprintf(want, sizeof(want), "S=%d %d.", rows, cols);
	type_line(name, "echo \"S=$(stty size).\"");
	return h_term_wait(&tmux, name, want, ms);
}

static void check_size(const char *name)
{
	char *screen;
	int cols, rows;

	h_term_size(&tmux, name, &cols, &rows);
	cr_assert(cols == COLS && rows == ROWS, "pane is %dx%d, asked %dx%d",
		  cols, rows, COLS, ROWS);
	if (size_shown(name, SCREEN_MS))
		return;
	screen = h_term_screen(&tmux, name, true);
	cr_assert_fail("stty size in the shell is not the pane's %d %d.\n"
		       "Screen:\n%s",
		       ROWS, COLS, screen);
}

/*
 * After a resize the shell's terminal follows.  The SIGWINCH and the keys
 * of the next command race inside the console, so the command is tried a
 * few times; a console that never passes the size on still fails.
 */
static void check_resize(const char *name, int cols, int rows)
{
	char *screen;
	int c, r;

	h_term_resize(&tmux, name, cols, rows);
	h_term_size(&tmux, name, &c, &r);
	cr_assert(c == cols && r == rows, "tmux resized to %dx%d, not %dx%d", c,
		  r, cols, rows);
	for (int i = 0; i < 5; i++)
		if (size_shown(name, 1500))
			return;
	screen = h_term_screen(&tmux, name, true);
	cr_assert_fail("after resizing the terminal to %dx%d, stty size in "
		       "the shell does not follow.\nScreen:\n%s",
		       cols, rows, screen);
}

/* "~?" at the start of a line prints the escapes and sends nothing. */
static void check_help(const char *name)
{
	h_term_key(&tmux, name, "Enter");
	h_term_type(&tmux, name, "~?");
	expect_screen(name, "~.", SCREEN_MS,
		      "~? at line start should list the escapes (~. ...)");
	type_line(name, "echo \"H=$((3+3)).\"");
	expect_screen(name, "H=6.", SCREEN_MS, "the shell after ~?");
}

/* Tildes inside a line are plain characters. */
static void check_midline(const char *name)
{
	type_line(name, "echo \"N~.~?~~$((1+1))\"");
	expect_screen(name, "N~.~?~~2", SCREEN_MS,
		      "~., ~? and ~~ in the middle of a line must pass "
		      "through unchanged");
}

/* "~~" at the start of a line sends one "~". */
static void check_tilde(const char *name)
{
	type_line(name, "echo \"W=$((1+1)).\"; read -r v; echo \"V=[$v]\"");
	expect_screen(name, "W=2.", SCREEN_MS, "echo before read");
	h_term_type(&tmux, name, "~~x");
	h_term_key(&tmux, name, "Enter");
	expect_screen(name, "V=[~x]", SCREEN_MS,
		      "~~ at line start must send a single ~ (read got "
		      "something else)");
}

/*
 * less, a full-screen program: it draws from the top of the screen,
 * pages on a single key press (no Enter: raw mode end to end) by the
 * window's height (it knows the size), and quits on q.
 */
static void check_pager(const char *name)
{
	char path[H_PATH_MAX], line[H_PATH_MAX + 16], want[32];
	FILE *f;
	int cols, rows;

	h_path(path, sizeof(path), "pager.txt");
	f = fopen(path, "w");
	cr_assert(f, "cannot write %s", path);
	for (int i = 1; i <= 300; i++)
		fprintf(f, "line %d\n", i);
	cr_assert(fclose(f) == 0, "cannot write %s", path);

	h_term_size(&tmux, name, &cols, &rows);
	snprintf(line, sizeof(line), "less %s", path);
	type_line(name, line);
	expect_first_line(name, "line 1", SCREEN_MS,
			  "less should draw the file from the top");
	h_term_type(&tmux, name, " ");
	/* One screen is rows - 1 lines of text and the prompt line. */
	snprintf(want, sizeof(want), "line %d", rows);
	expect_first_line(name, want, SCREEN_MS,
			  "Space in less should page by the window height");
	h_term_type(&tmux, name, "q");
	type_line(name, "echo \"Q=$((1+1)).\"");
	expect_screen(name, "Q=2.", SCREEN_MS, "the shell after quitting less");
}

/* Polls ticket show until a shell channel_close is there; the ticket. */
static json_t *wait_shell_audit(const char *ticket)
{
	json_t *t = NULL;
	char *names;

	for (int i = 0; i < 50; i++) {
		json_decref(t);
		t = h_ticket_show(ticket);
		if (h_audit_event(t, "channel_close", "shell"))
			break;
		usleep(100 * 1000);
	}
	names = h_audit_names(t);
	cr_assert(h_audit_event(t, "channel_open", "shell"),
		  "audit of %s has no channel_open with kind shell: %s", ticket,
		  names);
	cr_assert(h_audit_event(t, "channel_close", "shell"),
		  "audit of %s has no channel_close with kind shell: %s",
		  ticket, names);
	free(names);
	return t;
}

static json_int_t detail_int(json_t *ev, const char *key)
{
	json_t *v = json_object_get(json_object_get(ev, "detail"), key);
	char *dump;

	if (json_is_integer(v))
		return json_integer_value(v);
	dump = json_dumps(ev, JSON_COMPACT);
	cr_assert_fail("audit event without integer \"%s\": %s", key, dump);
	return 0;
}

static void check_audit(const char *ticket)
{
	json_t *t = wait_shell_audit(ticket);
	json_t *ev = h_audit_event(t, "channel_close", "shell");
	char *dump = json_dumps(ev, JSON_COMPACT);

	cr_assert(detail_int(ev, "duration_ms") > 0 &&
		      detail_int(ev, "bytes_to_agent") > 0 &&
		      detail_int(ev, "bytes_to_console") > 0,
		  "shell channel_close should have a duration and byte "
		  "counts both ways: %s",
		  dump);
	free(dump);
	json_decref(t);
}

/* ---- Tests ------------------------------------------------------------- */

Test(shell, interactive, .timeout = 120)
{
	int st;

	need_tmux();
	start("interactive shell", true);
	term_open("main");
	check_echo_and_term("main");
	check_size("main");
	check_help("main");
	check_midline("main");
	check_tilde("main");
	check_resize("main", 120, 40);
	check_pager("main");

	type_line("main", "exit 3");
	st = wait_exit("main", EXIT_MS, "exit 3");
	cr_assert_eq(st, 3, "tether shell after `exit 3` exited %d", st);
	expect_sane("main", "after exit 3");
	check_audit(sess.ticket);
}

/* "~." after Enter: the console leaves at once, like ssh. */
Test(shell, escape_disconnect, .timeout = 90)
{
	pid_t shell;
	char st_gone;
	int st;

	need_tmux();
	start("escape", true);
	term_open("main");
	shell = remote_shell_pid("main");
	h_term_key(&tmux, "main", "Enter");
	h_term_type(&tmux, "main", "~.");
	st = wait_exit("main", EXIT_MS, "~. after Enter");
	cr_assert_eq(st, 255, "tether shell after ~. exited %d, expected 255",
		     st);
	expect_sane("main", "after ~.");
	st_gone = h_pid_wait_gone(shell, GONE_MS, false);
	cr_assert(!st_gone,
		  "the agent's shell (pid %d) is still there %d ms "
		  "after ~. (state %c; Z: not reaped by the "
		  "agent)\nAgent: %s",
		  (int)shell, GONE_MS, st_gone, agent_output());
}

/* Without a terminal: no PTY, separate streams, the shell's status. */
Test(shell, no_tty, .timeout = 90)
{
	static const char input[] = "echo hi; echo err >&2; exit 4\n";
	struct h_opts o = {.stdin_data = input, .stdin_len = sizeof(input) - 1};
	struct h_res res;
	json_t *t;

	start("no tty", false);
	h_console(&res, &o, "shell", sess.ticket, NULL);
	h_expect(&res, 4, "hi\n", "err\n",
		 "printf 'echo hi; echo err >&2; exit 4\\n' | tether shell");
	h_res_free(&res);
	t = wait_shell_audit(sess.ticket);
	json_decref(t);
}

/* 16 MiB of random bytes there and back, through `shell -- CMD`. */
Test(shell, binary, .timeout = 120)
{
	char local[H_PATH_MAX], remote[H_PATH_MAX], back[H_PATH_MAX];
	char put[H_PATH_MAX + 16], h_local[65], h_remote[65], h_back[65];
	struct h_opts up = {.stdin_file = local, .timeout_ms = 60000};
	struct h_opts down = {.stdout_file = back, .timeout_ms = 60000};
	json_t *t, *ev;
	json_int_t to_agent = 0, to_console = 0;
	struct h_res res;
	size_t i;

	start("binary", false);
	h_path(local, sizeof(local), "random.bin");
	h_path(remote, sizeof(remote), "remote.bin");
	h_path(back, sizeof(back), "back.bin");
	h_write_random(local, BINARY_SIZE);
	h_sha256_file(local, h_local);

	snprintf(put, sizeof(put), "cat > %s", remote);
	h_console(&res, &up, "shell", sess.ticket, "--", "sh", "-c", put, NULL);
	h_expect(&res, 0, "", "",
		 "tether shell T -- sh -c 'cat > FILE' "
		 "< 16 MiB");
	h_res_free(&res);
	h_sha256_file(remote, h_remote);
	cr_assert_str_eq(h_remote, h_local,
			 "16 MiB sent through tether shell arrived changed");

	h_console(&res, &down, "shell", sess.ticket, "--", "cat", remote, NULL);
	h_expect(&res, 0, "", "", "tether shell T -- cat FILE > back");
	h_res_free(&res);
	h_sha256_file(back, h_back);
	cr_assert_str_eq(h_back, h_local,
			 "16 MiB read back through tether shell differ");

	/* The relay counts what it forwarded: at least the data. */
	t = wait_shell_audit(sess.ticket);
	json_array_foreach (json_object_get(t, "audit"), i, ev) {
		const char *name =
		    json_string_value(json_object_get(ev, "event"));
		const char *kind = json_string_value(
		    json_object_get(json_object_get(ev, "detail"), "kind"));

		if (!name || strcmp(name, "channel_close") || !kind ||
		    strcmp(kind, "shell"))
			continue;
		if (detail_int(ev, "bytes_to_agent") > to_agent)
			to_agent = detail_int(ev, "bytes_to_agent");
		if (detail_int(ev, "bytes_to_console") > to_console)
			to_console = detail_int(ev, "bytes_to_console");
	}
	cr_assert(to_agent >= BINARY_SIZE && to_console >= BINARY_SIZE,
		  "audit byte counts %lld to the agent, %lld to the console; "
		  "expected at least %u each",
		  (long long)to_agent, (long long)to_console, BINARY_SIZE);
	json_decref(t);
}

/*
 * The console dies (SIGKILL, no goodbye): the agent ends the shell and
 * its command, reaps it, and closes what it opened for it.
 */
Test(shell, console_killed, .timeout = 90)
{
	static const char again[] = "echo ok\n";
	struct h_opts o = {.stdin_data = again, .stdin_len = sizeof(again) - 1};
	char *fds_before, *fds_after;
	int base, now, st;
	pid_t shell, sleeper, console;
	struct h_res res;
	char gone;

	need_tmux();
	start("console killed", true);
	/* A first shell, so that whatever the agent keeps is counted. */
	term_open("warm");
	type_line("warm", "exit 0");
	st = wait_exit("warm", FIRST_MS, "exit 0");
	cr_assert_eq(st, 0, "tether shell after `exit 0` exited %d", st);
	base = h_pid_fds(sess.agent.pid, &fds_before);

	term_open("main");
	shell = remote_shell_pid("main");
	type_line("main", "sleep 1000");
	sleeper = h_pid_child(shell, "sleep", SCREEN_MS);
	cr_assert(sleeper, "sleep 1000 did not start in the remote shell");
	console = h_pid_child(h_term_pid(&tmux, "main"), "tether", 2000);
	cr_assert(console, "cannot find the tether process of the pane");
	kill(console, SIGKILL);

	gone = h_pid_wait_gone(shell, GONE_MS, false);
	cr_assert(!gone,
		  "the agent's shell (pid %d) is still there %d ms "
		  "after the console was killed (state %c; Z: not "
		  "reaped by the agent)\nAgent: %s",
		  (int)shell, GONE_MS, gone, agent_output());
	/* The sleep is not the agent's child: a zombie is not its fault. */
	gone = h_pid_wait_gone(sleeper, GONE_MS, true);
	cr_assert(!gone,
		  "`sleep 1000` (pid %d) in the killed console's "
		  "shell still runs (state %c)",
		  (int)sleeper, gone);

	for (int i = 0; (now = h_pid_fds(sess.agent.pid, NULL)) > base &&
			i < GONE_MS / 100;
	     i++)
		usleep(100 * 1000);
	if (now > base) {
		h_pid_fds(sess.agent.pid, &fds_after);
		cr_assert_fail("the agent has %d open descriptors, %d before "
			       "the shell: leaked.\nBefore:\n%s\nAfter:\n%s",
			       now, base, fds_before, fds_after);
	}
	free(fds_before);

	cr_assert(h_proc_alive(&sess.agent),
		  "the agent died with the "
		  "console: %s",
		  agent_output());
	h_console(&res, &o, "shell", sess.ticket, NULL);
	h_expect(&res, 0, "ok\n", NULL, "tether shell after a killed console");
	h_res_free(&res);
}

/* The agent dies: the console says so and exits 255, terminal restored. */
Test(shell, agent_killed, .timeout = 90)
{
	char *screen;
	int st;

	need_tmux();
	start("agent killed", true);
	term_open("main");
	remote_shell_pid("main");
	type_line("main", "sleep 1000");
	usleep(200 * 1000);
	h_proc_kill(&sess.agent);
	st = wait_exit("main", EXIT_MS, "the agent was killed");
	screen = h_term_screen(&tmux, "main", true);
	cr_assert_eq(st, 255,
		     "tether shell whose agent died exited %d, "
		     "expected 255.\nScreen:\n%s",
		     st, screen);
	cr_assert(strstr(screen, "connection lost"),
		  "tether shell whose agent died should say \"connection "
		  "lost\".\nScreen:\n%s",
		  screen);
	free(screen);
	expect_sane("main", "after the agent died");
}

/*
 * The relay dies: the console says why and exits 255 with the terminal
 * restored; the agent, which lost the shell's channel with its
 * connection, ends the shell.
 */
Test(shell, relay_killed, .timeout = 90)
{
	char *screen, *msg, *eol;
	pid_t shell;
	char gone;
	int st;

	need_tmux();
	start("relay killed", true);
	term_open("main");
	shell = remote_shell_pid("main");
	type_line("main", "sleep 1000");
	cr_assert(h_pid_child(shell, "sleep", SCREEN_MS),
		  "sleep 1000 did not start in the remote shell");
	h_proc_kill(&sess.relay.proc);
	st = wait_exit("main", EXIT_MS, "the relay was killed");
	screen = h_term_screen(&tmux, "main", true);
	cr_assert_eq(st, 255,
		     "tether shell whose relay died exited %d, "
		     "expected 255.\nScreen:\n%s",
		     st, screen);
	msg = strstr(screen, "tether: ");
	cr_assert(msg,
		  "tether shell whose relay died printed no "
		  "\"tether: ...\" message.\nScreen:\n%s",
		  screen);
	eol = strchr(msg, '\n');
	if (eol)
		*eol = '\0';
	cr_log_info("relay killed: the console said \"%s\"", msg);
	free(screen);
	expect_sane("main", "after the relay died");

	gone = h_pid_wait_gone(shell, 2 * GONE_MS, false);
	cr_assert(!gone,
		  "the agent's shell (pid %d) is still there %d ms "
		  "after the relay died (state %c)\nAgent: %s",
		  (int)shell, 2 * GONE_MS, gone, agent_output());
}

/* Two terminals, two shells on one ticket, each on its own. */
Test(shell, two_at_once, .timeout = 90)
{
	char *a, *b;
	int st;

	need_tmux();
	start("two shells", true);
	/*
	 * The first console on a new ticket pairs with the agent; the
	 * second opens once that is done, so that this test is about two
	 * shells, not about two pairings at once.
	 */
	term_open("a");
	type_line("a", "echo \"A=$((1+1)).\"");
	expect_screen("a", "A=2.", FIRST_MS, "the first shell");
	term_open("b");
	type_line("b", "echo \"B=$((2+2)).\"");
	expect_screen("b", "B=4.", FIRST_MS, "the second shell");
	type_line("a", "echo \"D=$((4+4)).\"");
	expect_screen("a", "D=8.", SCREEN_MS,
		      "the first shell while the second is open");
	a = h_term_screen(&tmux, "a", true);
	b = h_term_screen(&tmux, "b", true);
	cr_assert(
	    !strstr(a, "B=4.") && !strstr(b, "A=2.") && !strstr(b, "D=8."),
	    "the shells' output is mixed up.\nFirst:\n%s\nSecond:\n%s", a, b);
	free(a);
	free(b);

	type_line("b", "exit 5");
	st = wait_exit("b", EXIT_MS, "exit 5 in the second shell");
	cr_assert_eq(st, 5, "the second tether shell exited %d, expected 5",
		     st);
	type_line("a", "echo \"C=$((3+3)).\"");
	expect_screen("a", "C=6.", SCREEN_MS,
		      "the first shell after the second one ended");
	type_line("a", "exit 6");
	st = wait_exit("a", EXIT_MS, "exit 6 in the first shell");
	cr_assert_eq(st, 6, "the first tether shell exited %d, expected 6", st);
	expect_sane("a", "first shell");
	expect_sane("b", "second shell");
}
