/*
 * End-to-end: the relay never sees what flows through a session.  A test
 * build of the relay dumps every plaintext byte it reads after TLS
 * (TETHER_PLAINTEXT_DUMP), frame headers, control messages and DATA
 * payloads alike.  Random markers carried by every kind of channel (exec
 * arguments, stdin, stdout and stderr; a PTY shell; file contents both
 * ways; a diagnostics bundle; a TCP forward; an SSH session) and the
 * words of the session code must appear nowhere the relay can write: the
 * dump, its database (and WAL) and its logs.
 *
 * Each case runs twice.  The second time both ends use a null seal
 * (TETHER_TEST_NULL_SEAL, a test hook: plaintext and a zero tag), so the
 * same markers cross inside DATA frames in the clear and must then be in
 * the dump: the positive control, proving that the detector sees DATA
 * frames and that the marker really travelled, so that its absence in the
 * first run means something.  For SSH, whose own encryption hides what is
 * typed, the control is its banner ("SSH-2.0-"), which a sealed channel
 * hides and a null one shows.
 */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <tether/crypto.h>

#include "harness.h"

TestSuite(plaintext, .init = h_setup, .fini = h_teardown);

#define SSH_BANNER "SSH-2.0-OpenSSH"

/* One run: a relay that dumps, an agent joined to its ticket. */
struct run {
	struct h_session s;
	char dump[H_PATH_MAX];
	char env[H_PATH_MAX + 32];
	bool null_seal;
};

/* Hex of 16 random bytes: cannot occur by chance. */
static void marker(char hex[33])
{
	unsigned char b[16];

	cr_assert(tether_random(b, sizeof(b)) == 0, "tether_random");
	cr_assert(tether_hex_encode(b, sizeof(b), hex, 33) == 0, "hex");
}

static void need_hooks(void)
{
	if (h_test_hooks())
		return;
	/* A skipped test does not get its .fini. */
	h_teardown();
	cr_skip_test("needs a build with -Dtest_hooks=true "
		     "(TETHER_PLAINTEXT_DUMP, TETHER_TEST_NULL_SEAL)");
}

static void need_tool(bool have, const char *why)
{
	if (have)
		return;
	h_tool_missing(why);
	h_teardown();
	cr_skip_test("%s", why);
}

/*
 * Starts the run; the null seal (or its absence) is in our environment,
 * so the agent and every console inherit it.  The relay does not seal
 * and does not care.
 */
static void begin(struct run *r, const char *title, bool null_seal,
		  const struct h_agent_opts *ao)
{
	const char *envv[] = {r->env, NULL};

	need_hooks();
	memset(r, 0, sizeof(*r));
	r->null_seal = null_seal;
	if (null_seal)
		setenv("TETHER_TEST_NULL_SEAL", "1", 1);
	else
		unsetenv("TETHER_TEST_NULL_SEAL");
	h_path(r->dump, sizeof(r->dump), "plaintext.dump");
	snprintf(r->env, sizeof(r->env), "TETHER_PLAINTEXT_DUMP=%s", r->dump);
	h_session_start_ex(&r->s, title, envv, ao);
}

static void expect_absent(const char *path, const char *m, const char *what)
{
	cr_assert(!h_file_contains(path, m, strlen(m)),
		  "\"%s\" found in %s (%s): the relay saw session plaintext", m,
		  path, what);
}

/* Every file the relay writes, checked for the markers. */
static void expect_nowhere(const struct h_relay *r, const char *dump,
			   const char *const *markers)
{
	char db[H_PATH_MAX + 16], wal[H_PATH_MAX + 16], out[H_PATH_MAX + 16];

	snprintf(db, sizeof(db), "%s/tether.db", r->data);
	snprintf(wal, sizeof(wal), "%s/tether.db-wal", r->data);
	snprintf(out, sizeof(out), "%s.out", r->data);
	for (int i = 0; markers[i]; i++) {
		expect_absent(dump, markers[i], "plaintext dump");
		expect_absent(db, markers[i], "database");
		expect_absent(wal, markers[i], "database WAL");
		expect_absent(r->log, markers[i], "relay stderr");
		expect_absent(out, markers[i], "relay stdout");
	}
}

/*
 * The verdict on a run: sealed, no marker anywhere the relay writes
 * (again after shutdown, which checkpoints the WAL into the database);
 * null-sealed, every marker in the dump.
 */
static void verdict(struct run *r, const char *const *markers)
{
	if (r->null_seal) {
		for (int i = 0; markers[i]; i++)
			cr_assert(
			    h_file_contains(r->dump, markers[i],
					    strlen(markers[i])),
			    "the dump %s lacks \"%s\" although it crossed "
			    "in a DATA frame unsealed: the detector "
			    "does not see channel content, so the "
			    "sealed run would prove nothing",
			    r->dump, markers[i]);
		return;
	}
	expect_nowhere(&r->s.relay, r->dump, markers);
	h_relay_stop(&r->s.relay);
	expect_nowhere(&r->s.relay, r->dump, markers);
}

#define BOTH(name, fn)                                                         \
	Test(plaintext, name, .timeout = 180)                                  \
	{                                                                      \
		fn(false);                                                     \
	}                                                                      \
	Test(plaintext, name##_control, .timeout = 180)                        \
	{                                                                      \
		fn(true);                                                      \
	}

/* ---- exec: arguments, stdin, stdout, stderr ---- */

static void exec_case(bool null_seal)
{
	char m_in[33], m_arg[33], m_err[33], m_title[33];
	char title[64], script[160], input[40], want[128], want_err[64];
	const char *cmd[] = {"sh", "-c", script, NULL};
	const char *markers[] = {m_in, m_arg, m_err, NULL};
	struct h_opts o = {.stdin_data = input};
	struct h_res res;
	struct run r;

	marker(m_title);
	snprintf(title, sizeof(title), "title-%s", m_title);
	marker(m_in);
	marker(m_arg);
	marker(m_err);
	snprintf(input, sizeof(input), "%s\n", m_in);
	o.stdin_len = strlen(input);
	snprintf(script, sizeof(script),
		 "read x; echo \"$x\"; echo ARG-%s; echo ERR-%s >&2", m_arg,
		 m_err);
	snprintf(want, sizeof(want), "%s\nARG-%s\n", m_in, m_arg);
	snprintf(want_err, sizeof(want_err), "ERR-%s\n", m_err);

	begin(&r, title, null_seal, NULL);
	h_exec(&res, &o, r.s.ticket, cmd);
	h_expect(&res, 0, want, want_err, "tether exec -- sh -c '...'");
	h_res_free(&res);
	/* The title is the relay's to see: the dump works at all. */
	cr_assert(h_file_contains(r.dump, title, strlen(title)),
		  "the dump %s lacks the ticket title: the hook is not working",
		  r.dump);
	verdict(&r, markers);
}

BOTH(exec_streams, exec_case)

/* ---- a PTY shell ---- */

static void shell_case(bool null_seal)
{
	char m[33], half1[17], half2[17], line[96], home[H_PATH_MAX];
	char cfg[H_PATH_MAX], xdg[H_PATH_MAX + 32], seal[40];
	const char *env[] = {xdg, seal, NULL};
	const char *argv[4];
	const char *markers[] = {m, NULL};
	struct h_tmux tmux;
	struct run r;
	char *screen;

	need_hooks();
	need_tool(h_tmux_available(),
		  "tmux is not installed: the PTY case needs a real terminal "
		  "(apt-get install tmux)");
	marker(m);
	memcpy(half1, m, 16);
	half1[16] = '\0';
	memcpy(half2, m + 16, 17);
	/* An empty home keeps the tester's dotfiles out of the shell. */
	h_path(home, sizeof(home), "home");
	cr_assert(mkdir(home, 0700) == 0, "mkdir %s: %s", home,
		  strerror(errno));
	setenv("HOME", home, 1);
	setenv("HISTFILE", "/dev/null", 1);
	begin(&r, "plaintext shell", null_seal, NULL);
	memset(&tmux, 0, sizeof(tmux));
	h_tmux_start(&tmux);
	snprintf(xdg, sizeof(xdg), "XDG_CONFIG_HOME=%s",
		 h_path(cfg, sizeof(cfg), "config"));
	snprintf(seal, sizeof(seal), "TETHER_TEST_NULL_SEAL=%s",
		 null_seal ? "1" : "0");
	argv[0] = h_console_bin();
	argv[1] = "shell";
	argv[2] = r.s.ticket;
	argv[3] = NULL;
	h_term_new(&tmux, "sh", 100, 30, env, argv);
	/* Typed in halves, so only the shell's output holds it whole. */
	snprintf(line, sizeof(line), "printf '%%s%%s\\n' %s %s", half1, half2);
	h_term_type(&tmux, "sh", line);
	h_term_key(&tmux, "sh", "Enter");
	if (!h_term_wait(&tmux, "sh", m, 15000)) {
		screen = h_term_screen(&tmux, "sh", true);
		cr_assert_fail("the shell never printed %s:\n%s", m, screen);
	}
	h_term_type(&tmux, "sh", "exit");
	h_term_key(&tmux, "sh", "Enter");
	h_tmux_stop(&tmux);
	verdict(&r, markers);
}

BOTH(pty_shell, shell_case)

/* ---- file contents, put and get ---- */

static void write_marked(const char *path, const char *m)
{
	FILE *f = fopen(path, "w");
	unsigned char noise[4096];

	cr_assert(f != NULL, "cannot write %s: %s", path, strerror(errno));
	cr_assert(tether_random(noise, sizeof(noise)) == 0);
	fwrite(noise, 1, sizeof(noise), f);
	fprintf(f, "\n%s\n", m);
	fwrite(noise, 1, sizeof(noise), f);
	cr_assert(fclose(f) == 0, "cannot write %s", path);
}

static void file_case(bool null_seal)
{
	char m_put[33], m_get[33], remote[H_PATH_MAX], local[H_PATH_MAX];
	char src[H_PATH_MAX], rfile[H_PATH_MAX], landed[H_PATH_MAX + 16];
	char dst[H_PATH_MAX], got[H_PATH_MAX + 16], dst_arg[H_PATH_MAX + 2];
	char remote_arg[H_PATH_MAX + 2];
	char h1[65], h2[65];
	const char *args[] = {"--allow-write", remote, NULL};
	const struct h_agent_opts ao = {.args = args};
	const char *markers[] = {m_put, m_get, NULL};
	struct h_res res;
	struct run r;

	marker(m_put);
	marker(m_get);
	h_path(remote, sizeof(remote), "remote");
	h_path(local, sizeof(local), "local");
	cr_assert(mkdir(remote, 0700) == 0 && mkdir(local, 0700) == 0,
		  "mkdir: %s", strerror(errno));
	h_path(src, sizeof(src), "local/put.bin");
	write_marked(src, m_put);
	h_path(rfile, sizeof(rfile), "remote/get.bin");
	write_marked(rfile, m_get);
	h_path(dst, sizeof(dst), "back");
	cr_assert(mkdir(dst, 0700) == 0, "mkdir: %s", strerror(errno));
	snprintf(remote_arg, sizeof(remote_arg), "%s/", remote);
	snprintf(dst_arg, sizeof(dst_arg), "%s/", dst);

	begin(&r, "plaintext files", null_seal, &ao);
	/* Raw blocks, so that a null seal shows the bytes as they are. */
	h_console(&res, NULL, "put", r.s.ticket, "--no-compress", src,
		  remote_arg, NULL);
	h_expect(&res, 0, NULL, NULL, "tether put --no-compress");
	h_res_free(&res);
	h_console(&res, NULL, "get", r.s.ticket, "--no-compress", rfile,
		  dst_arg, NULL);
	h_expect(&res, 0, NULL, NULL, "tether get --no-compress");
	h_res_free(&res);
	snprintf(landed, sizeof(landed), "%s/put.bin", remote);
	snprintf(got, sizeof(got), "%s/get.bin", dst);
	h_sha256_file(src, h1);
	h_sha256_file(landed, h2);
	cr_assert_str_eq(h1, h2, "put: the file did not land intact");
	h_sha256_file(rfile, h1);
	h_sha256_file(got, h2);
	cr_assert_str_eq(h1, h2, "get: the file did not come back intact");
	verdict(&r, markers);
}

BOTH(file_contents, file_case)

/* ---- a diagnostics bundle ---- */

/*
 * The bundle crosses as the collector wrote it (compact JSON); the start
 * of that text, rebuilt from the copy the console saved, is the marker.
 * On the ticket the relay keeps it packed (zlib and base64), which this
 * text does not survive.
 */
static void diag_case(bool null_seal)
{
	char path[H_PATH_MAX], slice[65];
	const char *markers[] = {slice, NULL};
	json_error_t jerr;
	struct h_res res;
	struct run r;
	json_t *b;
	char *text;

	begin(&r, "plaintext diag", null_seal, NULL);
	h_path(path, sizeof(path), "bundle.json");
	h_console(&res, NULL, "diag", r.s.ticket, "-o", path, NULL);
	h_expect(&res, 0, NULL, NULL, "tether diag -o FILE");
	h_res_free(&res);
	b = json_load_file(path, 0, &jerr);
	cr_assert(json_is_object(b), "%s: %s", path, jerr.text);
	text = json_dumps(b, JSON_COMPACT | JSON_REAL_PRECISION(10));
	cr_assert(text != NULL && strlen(text) > sizeof(slice));
	memcpy(slice, text, sizeof(slice) - 1);
	slice[sizeof(slice) - 1] = '\0';
	free(text);
	json_decref(b);
	verdict(&r, markers);
}

BOTH(diagnostics, diag_case)

/* ---- a TCP forward and an SSH session ---- */

static struct h_sshd sshd;
static char sshd_addr[32];

static void fini_sshd(void)
{
	h_sshd_stop(&sshd);
}

/* sshd on a free port, and an agent allowed to forward to it. */
static void begin_sshd(struct run *r, const char *title, bool null_seal)
{
	static const char *args[] = {"--allow-forward", sshd_addr, NULL};
	static const struct h_agent_opts ao = {.args = args};
	char home[H_PATH_MAX], ssh_dir[H_PATH_MAX];

	need_hooks();
	need_tool(h_sshd_available(),
		  "OpenSSH is not installed: the forward and ssh cases need "
		  "/usr/sbin/sshd and ssh-keygen");
	h_path(home, sizeof(home), "home");
	cr_assert(mkdir(home, 0700) == 0, "mkdir: %s", strerror(errno));
	h_path(ssh_dir, sizeof(ssh_dir), "home/.ssh");
	cr_assert(mkdir(ssh_dir, 0700) == 0, "mkdir: %s", strerror(errno));
	setenv("HOME", home, 1);
	unsetenv("SSH_AUTH_SOCK");
	h_sshd_start(&sshd, "sshd");
	snprintf(sshd_addr, sizeof(sshd_addr), "127.0.0.1:%d", sshd.port);
	begin(r, title, null_seal, &ao);
}

/* Connects to 127.0.0.1:port; the fd. */
static int tcp_connect(int port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET,
				  .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	cr_assert(fd >= 0, "socket: %s", strerror(errno));
	cr_assert(connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0,
		  "connect 127.0.0.1:%d: %s", port, strerror(errno));
	return fd;
}

static void forward_case(bool null_seal)
{
	char m[33], spec[64], line[64], banner[256];
	const char *markers[] = {m, SSH_BANNER, NULL};
	struct h_proc fwd;
	size_t got = 0;
	struct run r;
	ssize_t n;
	int lport, fd;

	marker(m);
	begin_sshd(&r, "plaintext forward", null_seal);
	lport = h_free_port();
	snprintf(spec, sizeof(spec), "%d:%s", lport, sshd_addr);
	h_console_start(&fwd, "forward", "forward", r.s.ticket, spec, NULL);
	cr_assert(h_proc_wait_output(&fwd, "Forwarding 127.0.0.1:", 20000),
		  "tether forward did not start: %s", h_proc_output(&fwd));
	fd = tcp_connect(lport);
	/* The sshd's banner comes back through the channel... */
	while (got < sizeof(banner) - 1 && memchr(banner, '\n', got) == NULL) {
		n = read(fd, banner + got, sizeof(banner) - 1 - got);
		cr_assert(n > 0, "no banner through the forward");
		got += (size_t)n;
	}
	banner[got] = '\0';
	cr_assert(strncmp(banner, SSH_BANNER, strlen(SSH_BANNER)) == 0,
		  "not an ssh banner: %s", banner);
	/* ...and our bytes go to it (it refuses them, which is fine). */
	snprintf(line, sizeof(line), "%s\r\n", m);
	cr_assert(write(fd, line, strlen(line)) == (ssize_t)strlen(line));
	while (read(fd, banner, sizeof(banner)) > 0)
		;
	close(fd);
	h_proc_stop(&fwd, SIGTERM);
	fini_sshd();
	verdict(&r, markers);
}

BOTH(tcp_forward, forward_case)

static void ssh_case(bool null_seal)
{
	char m[33], key[H_PATH_MAX], pub[H_PATH_MAX + 8], target[96];
	char remote_cmd[64], want[48];
	const char *sealed_markers[] = {m, SSH_BANNER, NULL};
	const char *control_markers[] = {SSH_BANNER, NULL};
	const struct h_opts o = {.timeout_ms = 60000};
	struct h_res res;
	struct run r;

	marker(m);
	begin_sshd(&r, "plaintext ssh", null_seal);
	h_path(key, sizeof(key), "tech_key");
	h_ssh_keygen(key, "tether-e2e-plaintext");
	snprintf(pub, sizeof(pub), "%s.pub", key);
	h_sshd_authorize(&sshd, pub);
	snprintf(target, sizeof(target), "%s@%s", sshd.user, sshd_addr);
	snprintf(remote_cmd, sizeof(remote_cmd), "echo %s", m);
	snprintf(want, sizeof(want), "%s\n", m);
	h_console(&res, &o, "ssh", r.s.ticket, target, "-i", key,
		  "--accept-new", "--", remote_cmd, NULL);
	cr_assert(res.status == 0 && strcmp(res.out, want) == 0,
		  "tether ssh: status %d, stdout \"%s\", stderr \"%s\"",
		  res.status, res.out, res.err);
	h_res_free(&res);
	fini_sshd();
	/* SSH hides what was typed even unsealed: its banner is the control. */
	verdict(&r, null_seal ? control_markers : sealed_markers);
}

BOTH(ssh_session, ssh_case)

/* ---- the session code's words ---- */

/*
 * The relay hands out the nameplate and never learns the words: they are
 * the SPAKE2 password.  The control puts the same words through a
 * channel, where a null seal shows them.
 */
static void code_case(bool null_seal)
{
	char words[H_CODE_MAX], want[H_CODE_MAX + 2];
	const char *markers[] = {words, NULL};
	const char *cmd[] = {"echo", words, NULL};
	const char *dash;
	struct h_res res;
	struct run r;

	begin(&r, "plaintext code", null_seal, NULL);
	dash = strchr(r.s.code, '-');
	cr_assert(dash != NULL, "no words in the code %s", r.s.code);
	snprintf(words, sizeof(words), "%s", dash + 1);
	cr_assert(strchr(words, '-') != NULL, "code %s", r.s.code);
	snprintf(want, sizeof(want), "%s\n", words);
	h_exec(&res, NULL, r.s.ticket, cmd);
	h_expect(&res, 0, want, "", "tether exec -- echo WORDS");
	h_res_free(&res);
	verdict(&r, markers);
}

BOTH(code_words, code_case)
