/*
 * End-to-end tests of `tether ssh T-N` and `tether forward T-N` (docs/cli.md,
 * docs/protocol.md "Forwarding") against a real OpenSSH server: each test
 * starts its own sshd on a free loopback port with a throwaway host key and
 * an authorized throwaway ed25519 key (ssh-keygen), joins an agent that may
 * forward to it (--allow-forward 127.0.0.1:PORT) and drives the console as a
 * technician would.  HOME is a directory of the test's own, so ~/.ssh
 * (known_hosts, id_ed25519) is the test's and never the tester's, and
 * SSH_AUTH_SOCK is unset unless a test starts its own ssh-agent.
 *
 * Covered: a remote command's streams and exit status, command words
 * joined for the remote shell exactly as OpenSSH's ssh joins them,
 * known_hosts with --accept-new (and the entry read back by OpenSSH
 * itself), an interactive session in a real terminal, an unknown host key
 * confirmed on the terminal and refused without one, a changed host key
 * (also with --accept-new), authentication with -i and through ssh-agent, a
 * key the server does not accept, `tether forward` used by the stock
 * OpenSSH client (twice at once, and on a chosen local port), SIGINT, the
 * agent's default policy refusing a target and an allowed target that is
 * down (console message, closed connection, what the customer is told,
 * audit).  `tether sftp` (the sshd serves internal-sftp): put and get of
 * 64 MiB checked by SHA-256 on disk with mode and mtime kept, into
 * directories, ls (plain, -l, --json), a missing file, a missing remote
 * directory, a directory without -r, and transfers cut off by a file size
 * limit (the sshd's for put, the console's for get) leaving nothing under
 * the final name.  Every refused command is one that would leave a mark
 * (touch MARKER), and the same command is shown to leave it once allowed.
 * Every wait has a deadline.
 *
 * Without /usr/sbin/sshd the tests skip (apt-get install openssh-server
 * openssh-client; scripts/install-deps.sh does).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "harness.h"

#define COLS 100
#define ROWS 30
/* The first console command of a ticket also pairs it with the agent. */
#define FIRST_MS 30000
#define SCREEN_MS 15000
#define EXIT_MS 15000
#define FORWARD_MS 10000
#define AUDIT_MS 5000
#define STOP_MS 5000

static struct h_session sess;
static struct h_sshd sshd;
static struct h_tmux tmux;
/* DIR/home: the HOME of every program the test starts. */
static char home[H_PATH_MAX];
/* HOME/.ssh/known_hosts */
static char known_hosts[H_PATH_MAX];
/* USER@127.0.0.1:PORT of the sshd */
static char target[128];
/* "127.0.0.1:PORT" of the sshd, for --allow-forward */
static char sshd_addr[64];
/* A port nothing listens on, also allowed: "127.0.0.1:PORT" */
static int dead_port;
static char dead_addr[64];
/* A key sshd accepts, outside ~/.ssh: DIR/keys/tech (and .pub). */
static char tech_key[H_PATH_MAX];

static void fini(void)
{
	h_tmux_stop(&tmux);
	h_sshd_stop(&sshd);
	h_teardown();
}

TestSuite(ssh, .init = h_setup, .fini = fini);

/* ---- Set-up ------------------------------------------------------------- */

/* What HOME/.ssh/id_ed25519 is. */
enum home_key {
	KEY_AUTHORIZED,	  /* the tech key itself */
	KEY_UNAUTHORIZED, /* a key sshd does not know */
	KEY_NONE,	  /* no key in ~/.ssh */
};

static void need_sshd(void)
{
	static const char why[] = "OpenSSH is not installed: the ssh and "
				  "forward tests need /usr/sbin/sshd and "
				  "ssh-keygen (apt-get install openssh-server "
				  "openssh-client)";

	if (h_sshd_available())
		return;
	h_tool_missing(why);
	/* A skipped test does not get its .fini. */
	h_teardown();
	cr_skip_test("%s", why);
}

static void need_tmux(void)
{
	static const char why[] = "tmux is not installed: the interactive "
				  "ssh tests need a real terminal (apt-get "
				  "install tmux)";

	if (h_tmux_available())
		return;
	h_tool_missing(why);
	h_teardown();
	cr_skip_test("%s", why);
}

static void mkdir_or_fail(const char *path)
{
	cr_assert(mkdir(path, 0700) == 0, "mkdir %s: %s", path,
		  strerror(errno));
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	cr_assert(f, "cannot write %s: %s", path, strerror(errno));
	fputs(text, f);
	cr_assert(fclose(f) == 0, "cannot write %s", path);
}

static bool exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/*
 * sshd with its own host key, HOME with ~/.ssh as keys says, and a relay
 * with a ticket and a joined agent; with allow, the agent may forward to
 * the sshd and to dead_port, else it has the default policy (127.0.0.1:22
 * only).
 */
static void start(const char *title, bool allow, enum home_key keys)
{
	char ssh_dir[H_PATH_MAX], dir[H_PATH_MAX], id[H_PATH_MAX];
	char pub[H_PATH_MAX + 8];
	const char *args[] = {"--allow-forward", sshd_addr, "--allow-forward",
			      dead_addr, NULL};
	struct h_agent_opts ao = {.args = args};

	need_sshd();
	h_path(home, sizeof(home), "home");
	mkdir_or_fail(home);
	mkdir_or_fail(h_path(ssh_dir, sizeof(ssh_dir), "home/.ssh"));
	h_path(known_hosts, sizeof(known_hosts), "home/.ssh/known_hosts");
	/*
	 * Inherited by every child: the console's ~/.ssh is the test's, the
	 * tester's ssh-agent stays out, and the agent's shells (if any) get
	 * an empty home.
	 */
	setenv("HOME", home, 1);
	unsetenv("SSH_AUTH_SOCK");
	setenv("HISTFILE", "/dev/null", 1);

	h_sshd_start(&sshd, "sshd");
	snprintf(target, sizeof(target), "%s@127.0.0.1:%d", sshd.user,
		 sshd.port);
	snprintf(sshd_addr, sizeof(sshd_addr), "127.0.0.1:%d", sshd.port);
	dead_port = h_free_port();
	snprintf(dead_addr, sizeof(dead_addr), "127.0.0.1:%d", dead_port);

	mkdir_or_fail(h_path(dir, sizeof(dir), "keys"));
	h_path(tech_key, sizeof(tech_key), "keys/tech");
	h_ssh_keygen(tech_key, "tether-e2e-tech");
	snprintf(pub, sizeof(pub), "%s.pub", tech_key);
	h_sshd_authorize(&sshd, pub);

	h_path(id, sizeof(id), "home/.ssh/id_ed25519");
	if (keys == KEY_AUTHORIZED) {
		char *k = h_read_file(tech_key, NULL);
		char idpub[H_PATH_MAX + 32], *kp = h_read_file(pub, NULL);

		cr_assert(k && kp, "cannot read %s", tech_key);
		write_file(id, k);
		cr_assert(chmod(id, 0600) == 0, "chmod %s", id);
		snprintf(idpub, sizeof(idpub), "%s.pub", id);
		write_file(idpub, kp);
		free(k);
		free(kp);
	} else if (keys == KEY_UNAUTHORIZED) {
		h_ssh_keygen(id, "tether-e2e-stranger");
	}

	h_session_start_ex(&sess, title, NULL, allow ? &ao : NULL);
}

/* The sshd's name in known_hosts as tether ssh writes it by default. */
static const char *known_name(void)
{
	static char name[48];

	snprintf(name, sizeof(name), "tether.%.16s.127.0.0.1.%d", sess.ticket,
		 sshd.port);
	return name;
}

/* Is the sshd's host key in known_hosts under known_name(), as OpenSSH
 * itself reads the file (hashed names included)? */
static bool known_by_openssh(const char *file)
{
	char host[64], pub[H_PATH_MAX + 8];
	const char *argv[] = {"ssh-keygen", "-F", host, "-f", file, NULL};
	struct h_res res;
	char *key, *blob;
	bool found;

	snprintf(host, sizeof(host), "%s", known_name());
	snprintf(pub, sizeof(pub), "%s.pub", sshd.host_key);
	key = h_ssh_pubkey(pub);
	blob = strchr(key, ' ') + 1;
	h_run(&res, NULL, argv);
	found = res.status == 0 && strstr(res.out, blob) != NULL;
	h_res_free(&res);
	free(key);
	return found;
}

/* The sshd's host key fingerprint, "SHA256:...", into buf. */
static void host_fingerprint(char *buf, size_t len)
{
	char pub[H_PATH_MAX + 8];
	const char *argv[] = {"ssh-keygen", "-l", "-E", "sha256",
			      "-f",	    pub,  NULL};
	struct h_res res;
	char *fp, *end;

	snprintf(pub, sizeof(pub), "%s.pub", sshd.host_key);
	h_run(&res, NULL, argv);
	h_expect(&res, 0, NULL, NULL, "ssh-keygen -l");
	/* "256 SHA256:... comment (ED25519)" */
	fp = strstr(res.out, "SHA256:");
	cr_assert(fp, "ssh-keygen -l: %s", res.out);
	end = fp + strcspn(fp, " \n");
	cr_assert((size_t)(end - fp) < len, "fingerprint too long");
	memcpy(buf, fp, (size_t)(end - fp));
	buf[end - fp] = '\0';
	h_res_free(&res);
}

static char *agent_output(void)
{
	return h_proc_output(&sess.agent);
}

static char *sshd_log(void)
{
	char *s = h_read_file(sshd.log, NULL);

	return s ? s : strdup("(no sshd log)");
}

/* Asserts status, with everything that explains a surprise. */
static void expect_status(const struct h_res *res, int status, const char *what)
{
	char *agent, *log;

	if (res->status == status)
		return;
	agent = agent_output();
	log = sshd_log();
	cr_assert_fail("%s: exit status %d, expected %d\nstdout: %s\n"
		       "stderr: %s\nagent: %s\nsshd log: %s",
		       what, res->status, status, res->out, res->err, agent,
		       log);
}

static const struct h_opts first_opts = {.timeout_ms = FIRST_MS};

/*
 * The stock OpenSSH client with nothing of the tester's (no config file,
 * no ssh-agent, the tech key only), known hosts in kh with
 * StrictHostKeyChecking=strict: `ssh -p port USER@127.0.0.1 cmd...`.
 */
struct stock_ssh {
	char port[16];
	char alias[128];
	char kh[H_PATH_MAX + 32];
	char strict[48];
	char user_at[96];
	const char *argv[40];
};

static const char *const *stock_ssh(struct stock_ssh *x, int port,
				    const char *kh, const char *strict,
				    const char *const *cmd)
{
	int n = 0;

	snprintf(x->port, sizeof(x->port), "%d", port);
	/* tether ssh's name for the sshd, which OpenSSH finds by alias. */
	snprintf(x->alias, sizeof(x->alias), "HostKeyAlias=%s", known_name());
	snprintf(x->kh, sizeof(x->kh), "UserKnownHostsFile=%s", kh);
	snprintf(x->strict, sizeof(x->strict), "StrictHostKeyChecking=%s",
		 strict);
	snprintf(x->user_at, sizeof(x->user_at), "%s@127.0.0.1", sshd.user);
	x->argv[n++] = "ssh";
	x->argv[n++] = "-F";
	x->argv[n++] = "/dev/null";
	x->argv[n++] = "-p";
	x->argv[n++] = x->port;
	x->argv[n++] = "-i";
	x->argv[n++] = tech_key;
	x->argv[n++] = "-o";
	x->argv[n++] = "IdentitiesOnly=yes";
	x->argv[n++] = "-o";
	x->argv[n++] = x->alias;
	x->argv[n++] = "-o";
	x->argv[n++] = x->kh;
	x->argv[n++] = "-o";
	x->argv[n++] = "GlobalKnownHostsFile=/dev/null";
	x->argv[n++] = "-o";
	x->argv[n++] = x->strict;
	x->argv[n++] = "-o";
	x->argv[n++] = "BatchMode=yes";
	x->argv[n++] = "-o";
	x->argv[n++] = "LogLevel=ERROR";
	x->argv[n++] = x->user_at;
	for (int i = 0; cmd[i]; i++) {
		cr_assert(n < 39, "too many command words");
		x->argv[n++] = cmd[i];
	}
	x->argv[n] = NULL;
	return x->argv;
}

/*
 * `tether ssh TICKET TARGET -- cmd...` and OpenSSH's ssh straight to the
 * sshd with the same words give the same status, stdout and stderr: ssh
 * joins the words with spaces for the remote shell, and so does tether.
 */
static void same_as_openssh(const char *const *cmd, const char *what)
{
	char cfg[H_PATH_MAX], xdg[H_PATH_MAX + 32];
	const char *env[] = {xdg, NULL};
	const struct h_opts o = {.env = env, .timeout_ms = FIRST_MS};
	const char *argv[44] = {h_console_bin(), "ssh", sess.ticket, target,
				"--"};
	struct stock_ssh x;
	struct h_res t, s;
	int n = 5;

	for (int i = 0; cmd[i]; i++) {
		cr_assert(n < 43, "too many command words");
		argv[n++] = cmd[i];
	}
	argv[n] = NULL;
	/* The console's config home, as h_console() sets it. */
	snprintf(xdg, sizeof(xdg), "XDG_CONFIG_HOME=%s",
		 h_path(cfg, sizeof(cfg), "config"));
	h_run(&t, &o, argv);
	h_run(&s, NULL, stock_ssh(&x, sshd.port, known_hosts, "yes", cmd));
	cr_assert(t.status == s.status && !strcmp(t.out, s.out) &&
		      !strcmp(t.err, s.err),
		  "%s: tether ssh and OpenSSH's ssh differ\n"
		  "tether ssh: status %d, stdout \"%s\", stderr \"%s\"\n"
		  "ssh:        status %d, stdout \"%s\", stderr \"%s\"",
		  what, t.status, t.out, t.err, s.status, s.out, s.err);
	h_res_free(&t);
	h_res_free(&s);
}

/* ---- A remote command ---------------------------------------------------- */

Test(ssh, command_streams_status_and_known_hosts, .timeout = 180)
{
	const char *script[] = {"sh", "-c", "echo out; echo err >&2; exit 7",
				NULL};
	const char *spaced[] = {"echo", "a   b", "'c  d'", NULL};
	char want[160];
	struct h_res res;
	struct stat st;
	char *kh;

	start("ssh command", true, KEY_AUTHORIZED);
	cr_assert(!exists(known_hosts), "%s exists before the first ssh",
		  known_hosts);

	/* One word: the remote user's shell runs it, as with ssh. */
	h_console(&res, &first_opts, "ssh", sess.ticket, target, "--accept-new",
		  "--", "echo out; echo err >&2; exit 7", NULL);
	expect_status(&res, 7, "tether ssh --accept-new -- 'echo out; ...'");
	cr_assert_str_eq(res.out, "out\n",
			 "tether ssh: stdout \"%s\", expected \"out\\n\"\n"
			 "stderr: %s",
			 res.out, res.err);
	cr_assert(strstr(res.err, "err\n"),
		  "tether ssh: the remote stderr \"err\" is not on stderr: "
		  "\"%s\"",
		  res.err);
	snprintf(want, sizeof(want),
		 "Warning: Permanently added '%s' (ED25519) to the "
		 "list of known hosts.\n",
		 known_name());
	cr_assert(strstr(res.err, want),
		  "tether ssh --accept-new: no \"%s\" "
		  "on stderr: \"%s\"",
		  want, res.err);
	h_res_free(&res);

	kh = h_read_file(known_hosts, NULL);
	cr_assert(kh, "--accept-new did not write %s", known_hosts);
	cr_assert(stat(known_hosts, &st) == 0 && (st.st_mode & 0777) == 0600,
		  "%s has mode %o, expected 0600", known_hosts,
		  (unsigned)(st.st_mode & 0777));
	cr_assert(known_by_openssh(known_hosts),
		  "ssh-keygen -F %s does not find the sshd's host "
		  "key in %s:\n%s",
		  known_name(), known_hosts, kh);
	free(kh);

	/* Known now: no --accept-new needed, and nothing said about it. */
	h_console(&res, NULL, "ssh", sess.ticket, target, "--", "echo", "again",
		  NULL);
	expect_status(&res, 0, "second tether ssh without --accept-new");
	cr_assert_str_eq(res.out, "again\n",
			 "second tether ssh: stdout \"%s\"\nstderr: %s",
			 res.out, res.err);
	cr_assert_str_eq(res.err, "",
			 "second tether ssh: stderr \"%s\", expected nothing",
			 res.err);
	h_res_free(&res);

	/* Several words reach the remote shell as ssh sends them. */
	same_as_openssh(script, "-- sh -c 'echo out; echo err >&2; exit 7'");
	same_as_openssh(spaced, "-- echo 'a   b' \"'c  d'\"");
}

/* Without a terminal: a shell without a PTY, stdin passed on with EOF. */
Test(ssh, no_terminal_stdin_and_signals, .timeout = 180)
{
	static const char script[] = "echo piped; tty -s || echo no-tty; "
				     "exit 4\n";
	const struct h_opts shell_in = {.stdin_data = script,
					.stdin_len = sizeof(script) - 1,
					.timeout_ms = FIRST_MS};
	char in[H_PATH_MAX], out[H_PATH_MAX], a[65], b[65];
	struct h_opts cat = {
	    .stdin_file = in, .stdout_file = out, .timeout_ms = FIRST_MS};
	struct h_res res;

	start("ssh without a terminal", true, KEY_AUTHORIZED);
	h_console(&res, &shell_in, "ssh", sess.ticket, target, "--accept-new",
		  NULL);
	expect_status(&res, 4, "tether ssh with a script on stdin");
	cr_assert_str_eq(res.out, "piped\nno-tty\n",
			 "tether ssh < script: stdout \"%s\"\nstderr: %s",
			 res.out, res.err);
	h_res_free(&res);

	/* More than a channel window each way, byte for byte. */
	h_path(in, sizeof(in), "random.in");
	h_path(out, sizeof(out), "random.out");
	h_write_random(in, 9u << 20);
	h_console(&res, &cat, "ssh", sess.ticket, target, "--", "cat", NULL);
	expect_status(&res, 0, "tether ssh -- cat < 9 MiB");
	h_sha256_file(in, a);
	h_sha256_file(out, b);
	cr_assert_str_eq(a, b, "tether ssh -- cat: 9 MiB in, other bytes out");
	h_res_free(&res);

	/* A remote command killed by a signal: 128 + its number. */
	h_console(&res, NULL, "ssh", sess.ticket, target, "--", "kill -TERM $$",
		  NULL);
	expect_status(&res, 128 + SIGTERM, "tether ssh -- 'kill -TERM $$'");
	h_res_free(&res);
}

/* The file OpenSSH's own client would also accept. */
Test(ssh, known_hosts_entry_works_for_openssh, .timeout = 180)
{
	const char *cmd[] = {"echo", "stock", NULL};
	struct stock_ssh x;
	struct h_res res;

	start("known_hosts for openssh", true, KEY_AUTHORIZED);
	h_console(&res, &first_opts, "ssh", sess.ticket, target, "--accept-new",
		  "--", "true", NULL);
	expect_status(&res, 0, "tether ssh --accept-new -- true");
	h_res_free(&res);

	h_run(&res, NULL, stock_ssh(&x, sshd.port, known_hosts, "yes", cmd));
	h_expect(&res, 0, "stock\n", NULL,
		 "OpenSSH ssh with StrictHostKeyChecking=yes and the "
		 "known_hosts tether wrote");
	h_res_free(&res);
}

/* ---- Host keys ----------------------------------------------------------- */

/* "touch DIR/marker" in cmd: a remote command whose effect shows here. */
static void marker_command(char *marker, size_t mlen, char *cmd, size_t clen)
{
	h_path(marker, mlen, "marker");
	snprintf(cmd, clen, "touch %s", marker);
}

Test(ssh, unknown_host_key_without_terminal_is_refused, .timeout = 180)
{
	char marker[H_PATH_MAX], cmd[H_PATH_MAX + 16], fp[128], want[256];
	struct h_res res;

	start("unknown host key", true, KEY_AUTHORIZED);
	host_fingerprint(fp, sizeof(fp));
	marker_command(marker, sizeof(marker), cmd, sizeof(cmd));
	h_console(&res, &first_opts, "ssh", sess.ticket, target, "--", cmd,
		  NULL);
	expect_status(&res, 255,
		      "tether ssh to an unknown host key, no "
		      "terminal, no --accept-new");
	snprintf(want, sizeof(want),
		 "tether: host key for %s is not known (ED25519 "
		 "%s); pass --accept-new to trust it\n",
		 known_name(), fp);
	cr_assert_str_eq(res.err, want,
			 "tether ssh: stderr \"%s\", expected "
			 "\"%s\"",
			 res.err, want);
	h_res_free(&res);
	cr_assert(!exists(marker),
		  "the remote command ran although the host key was not "
		  "accepted");
	cr_assert(!exists(known_hosts) || !known_by_openssh(known_hosts),
		  "the unknown host key was added to %s without consent",
		  known_hosts);

	/* The same command once the key is accepted: it leaves its mark. */
	h_console(&res, NULL, "ssh", sess.ticket, target, "--accept-new", "--",
		  cmd, NULL);
	expect_status(&res, 0, "tether ssh --accept-new -- touch MARKER");
	cr_assert(exists(marker), "tether ssh -- touch %s did not run", marker);
	h_res_free(&res);
}

/* known_hosts with one entry for the sshd's known_name(): pub's key. */
static void write_host_key(const char *pub)
{
	char line[512];
	char *key = h_ssh_pubkey(pub);

	snprintf(line, sizeof(line), "%s %s\n", known_name(), key);
	write_file(known_hosts, line);
	free(key);
}

/*
 * Host keys are filed per ticket unless named: another customer's sshd,
 * also "127.0.0.1" from its agent, is then unknown rather than "changed".
 * --host-key-alias files it under a name that outlives the ticket.
 */
Test(ssh, host_key_alias_names_the_entry, .timeout = 180)
{
	struct h_res res;
	char *kh;

	start("host key alias", true, KEY_AUTHORIZED);
	h_console(&res, &first_opts, "ssh", sess.ticket, target,
		  "--host-key-alias", "acme-web01", "--accept-new", "--",
		  "true", NULL);
	expect_status(&res, 0, "tether ssh --host-key-alias --accept-new");
	h_res_free(&res);
	kh = h_read_file(known_hosts, NULL);
	cr_assert(kh && strncmp(kh, "acme-web01 ssh-ed25519 ", 23) == 0,
		  "known_hosts: %s", kh);
	free(kh);
	/* Known under the alias; under the ticket's name it is not. */
	h_console(&res, &first_opts, "ssh", sess.ticket, target,
		  "--host-key-alias", "acme-web01", "--", "true", NULL);
	expect_status(&res, 0, "tether ssh --host-key-alias, known");
	h_res_free(&res);
	h_console(&res, &first_opts, "ssh", sess.ticket, target, "--", "true",
		  NULL);
	expect_status(&res, 255, "tether ssh without the alias");
	cr_assert(strstr(res.err, "is not known"), "stderr: %s", res.err);
	h_res_free(&res);
	h_console(&res, &first_opts, "ssh", sess.ticket, target,
		  "--host-key-alias", "bad,name", "--", "true", NULL);
	expect_status(&res, 2, "tether ssh --host-key-alias bad,name");
	h_res_free(&res);
}

Test(ssh, changed_host_key_is_a_hard_error, .timeout = 180)
{
	char marker[H_PATH_MAX], cmd[H_PATH_MAX + 16];
	char other[H_PATH_MAX], pub[H_PATH_MAX + 8], fp[128], want[256];
	struct h_res res;
	char *before, *after;

	start("changed host key", true, KEY_AUTHORIZED);
	h_path(other, sizeof(other), "keys/other_host_key");
	h_ssh_keygen(other, "not-the-sshd");
	snprintf(pub, sizeof(pub), "%s.pub", other);
	write_host_key(pub);
	before = h_read_file(known_hosts, NULL);
	marker_command(marker, sizeof(marker), cmd, sizeof(cmd));
	host_fingerprint(fp, sizeof(fp));
	snprintf(want, sizeof(want),
		 "tether: host key for %s has changed! The server "
		 "now presents ED25519 key %s",
		 known_name(), fp);

	h_console(&res, &first_opts, "ssh", sess.ticket, target, "--", cmd,
		  NULL);
	expect_status(&res, 255, "tether ssh with a changed host key");
	cr_assert(strstr(res.err, want),
		  "tether ssh: stderr does not say the host key has changed: "
		  "\"%s\"",
		  res.err);
	h_res_free(&res);

	/* --accept-new accepts new keys, never changed ones (as OpenSSH). */
	h_console(&res, NULL, "ssh", sess.ticket, target, "--accept-new", "--",
		  cmd, NULL);
	expect_status(&res, 255,
		      "tether ssh --accept-new with a changed host key");
	cr_assert(strstr(res.err, want),
		  "tether ssh --accept-new: stderr does not say the host key "
		  "has changed: \"%s\"",
		  res.err);
	h_res_free(&res);

	cr_assert(!exists(marker),
		  "the remote command ran although the host key changed");
	after = h_read_file(known_hosts, NULL);
	cr_assert(after && !strcmp(before, after),
		  "known_hosts was modified:\nbefore: %s\nafter: %s", before,
		  after ? after : "(gone)");
	free(before);
	free(after);

	/* With the right key recorded the same command runs. */
	snprintf(pub, sizeof(pub), "%s.pub", sshd.host_key);
	write_host_key(pub);
	h_console(&res, NULL, "ssh", sess.ticket, target, "--", cmd, NULL);
	expect_status(&res, 0, "tether ssh once known_hosts has the right key");
	cr_assert(exists(marker), "tether ssh -- touch %s did not run", marker);
	h_res_free(&res);
}

/* ---- Authentication ------------------------------------------------------ */

Test(ssh, key_not_accepted_without_terminal, .timeout = 180)
{
	char marker[H_PATH_MAX], cmd[H_PATH_MAX + 16];
	struct h_res res;

	start("wrong key", true, KEY_UNAUTHORIZED);
	marker_command(marker, sizeof(marker), cmd, sizeof(cmd));
	h_console(&res, &first_opts, "ssh", sess.ticket, target, "--accept-new",
		  "--", cmd, NULL);
	expect_status(&res, 255, "tether ssh with a key sshd does not accept");
	cr_assert(strstr(res.err, "tether: Permission denied (publickey"),
		  "tether ssh: stderr does not say \"Permission denied\": "
		  "\"%s\"",
		  res.err);
	h_res_free(&res);
	cr_assert(!exists(marker), "the remote command ran without "
				   "authentication");

	/* The same command with the key sshd knows (-i): it runs. */
	h_console(&res, NULL, "ssh", sess.ticket, target, "-i", tech_key, "--",
		  cmd, NULL);
	expect_status(&res, 0, "tether ssh -i KEY -- touch MARKER");
	cr_assert(exists(marker), "tether ssh -- touch %s did not run", marker);
	h_res_free(&res);
}

Test(ssh, identity_file_option, .timeout = 180)
{
	struct h_res res;

	/* ~/.ssh/id_ed25519 is refused; -i names the key that works. */
	start("ssh -i", true, KEY_UNAUTHORIZED);
	h_console(&res, &first_opts, "ssh", sess.ticket, target, "--accept-new",
		  "-i", tech_key, "--", "echo", "by-i", NULL);
	expect_status(&res, 0, "tether ssh -i KEY");
	cr_assert_str_eq(res.out, "by-i\n", "tether ssh -i: stdout \"%s\"",
			 res.out);
	h_res_free(&res);
}

Test(ssh, ssh_agent_authentication, .timeout = 180)
{
	char sock[H_PATH_MAX], sock_env[H_PATH_MAX + 16];
	const char *agent_argv[] = {"ssh-agent", "-D", "-a", sock, NULL};
	const char *add_argv[] = {"ssh-add", tech_key, NULL};
	const char *env[] = {sock_env, NULL};
	struct h_opts o = {.env = env, .timeout_ms = FIRST_MS};
	struct h_proc agent;
	struct h_res res;
	char *out;

	/* No key in ~/.ssh: only the ssh-agent has one. */
	start("ssh-agent", true, KEY_NONE);
	h_path(sock, sizeof(sock), "agent.sock");
	snprintf(sock_env, sizeof(sock_env), "SSH_AUTH_SOCK=%s", sock);
	h_proc_start(&agent, "ssh-agent", agent_argv, NULL);
	for (int i = 0; i < 100 && !exists(sock); i++)
		usleep(50 * 1000);
	out = h_proc_output(&agent);
	cr_assert(exists(sock), "ssh-agent made no socket: %s", out);
	free(out);
	h_run(&res, &o, add_argv);
	h_expect(&res, 0, NULL, NULL, "ssh-add");
	h_res_free(&res);

	h_console(&res, &o, "ssh", sess.ticket, target, "--accept-new", "--",
		  "echo", "by-agent", NULL);
	expect_status(&res, 0, "tether ssh with the key in ssh-agent");
	cr_assert_str_eq(res.out, "by-agent\n",
			 "tether ssh via ssh-agent: stdout \"%s\"", res.out);
	h_res_free(&res);
	h_proc_kill(&agent);
}

/* ---- In a real terminal -------------------------------------------------- */

/*
 * What each pane runs: records the terminal settings (stty -g) and TERM,
 * runs the console, records the settings again and then its exit status
 * into DIR/TAG.exit (by rename, so a reader never sees half of it); the
 * pane then stays so that its screen can be read.
 */
static const char wrapper[] = "tag=$1; shift\n"
			      "stty -g > \"$D/$tag.before\"\n"
			      "printf '%s\\n' \"$TERM\" > \"$D/$tag.term\"\n"
			      "\"$TETHER\" ssh \"$TICKET\" \"$@\"\n"
			      "st=$?\n"
			      "stty -g > \"$D/$tag.after\"\n"
			      "printf '%s\\n' \"$st\" > \"$D/$tag.st\"\n"
			      "mv \"$D/$tag.st\" \"$D/$tag.exit\"\n"
			      "exec sleep 120\n";

/* A pane called name running `tether ssh TICKET args...` in the wrapper. */
static void term_open(const char *name, const char *const *args)
{
	char d[H_PATH_MAX + 8], bin[H_PATH_MAX + 16], ticket[H_ID_MAX + 16];
	char cfg[H_PATH_MAX], xdg[H_PATH_MAX + 32], home_env[H_PATH_MAX + 8];
	char wrapper_path[H_PATH_MAX];
	const char *env[] = {d, bin, ticket, xdg, home_env, NULL};
	const char *argv[16] = {"sh", wrapper_path, name};
	int n = 3;

	need_tmux();
	h_tmux_start(&tmux);
	h_path(wrapper_path, sizeof(wrapper_path), "pane.sh");
	write_file(wrapper_path, wrapper);
	for (int i = 0; args[i]; i++) {
		cr_assert(n < 15, "too many arguments");
		argv[n++] = args[i];
	}
	argv[n] = NULL;
	snprintf(d, sizeof(d), "D=%s", h_dir());
	snprintf(bin, sizeof(bin), "TETHER=%s", h_console_bin());
	snprintf(ticket, sizeof(ticket), "TICKET=%s", sess.ticket);
	snprintf(xdg, sizeof(xdg), "XDG_CONFIG_HOME=%s",
		 h_path(cfg, sizeof(cfg), "config"));
	snprintf(home_env, sizeof(home_env), "HOME=%s", home);
	h_term_new(&tmux, name, COLS, ROWS, env, argv);
}

static char *pane_file(const char *name, const char *suffix, int ms)
{
	char file[64], path[H_PATH_MAX];

	snprintf(file, sizeof(file), "%s.%s", name, suffix);
	return h_wait_file(h_path(path, sizeof(path), file), ms);
}

/* Asserts that needle shows up on the screen of name within ms. */
static void expect_screen(const char *name, const char *needle, int ms,
			  const char *what)
{
	char *screen, *agent, *log, *st = NULL;

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
	log = sshd_log();
	cr_assert_fail("%s: \"%s\" not on the screen%s%s.\nScreen of %s:\n%s\n"
		       "Agent: %s\nsshd log: %s",
		       what, needle,
		       st ? ": tether ssh exited with status " : " in time",
		       st ? h_chomp(st) : "", name, screen, agent, log);
}

static void type_line(const char *name, const char *line)
{
	h_term_type(&tmux, name, line);
	h_term_key(&tmux, name, "Enter");
}

static int wait_exit(const char *name, const char *what)
{
	char *s = pane_file(name, "exit", EXIT_MS);
	char *screen, *end;
	long st;

	if (!s) {
		screen = h_term_screen(&tmux, name, true);
		cr_assert_fail("%s: tether ssh still running after %d ms.\n"
			       "Screen of %s:\n%s",
			       what, EXIT_MS, name, screen);
	}
	errno = 0;
	st = h_number(s, &end);
	cr_assert(errno == 0 && end != s, "%s: exit status \"%s\"", what, s);
	free(s);
	return (int)st;
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

/* The remote shell is up and has a terminal like the pane's. */
static void check_shell(const char *name)
{
	char want[128], *term;

	/* The remote user's real home: keep this session out of its
	 * shell history. */
	type_line(name, "unset HISTFILE");
	type_line(name, "echo \"R=$((40+2)).\"");
	expect_screen(name, "R=42.", FIRST_MS, "echo $((40+2)) over ssh");
	type_line(name, "test -t 0 && echo \"TTY=yes.\"");
	expect_screen(name, "TTY=yes.", SCREEN_MS,
		      "the remote shell has a terminal");
	term = pane_file(name, "term", 2000);
	cr_assert(term && *h_chomp(term), "no TERM in the pane");
	type_line(name, "echo \"T=$TERM.\"");
	snprintf(want, sizeof(want), "T=%s.", term);
	expect_screen(name, want, SCREEN_MS, "TERM passed to the server");
	free(term);
	type_line(name, "echo \"S=$(stty size).\"");
	snprintf(want, sizeof(want), "S=%d %d.", ROWS, COLS);
	expect_screen(name, want, SCREEN_MS, "the window size on the PTY");
}

/* A shell on the far side, then `exit 3`. */
static void interact(const char *name)
{
	check_shell(name);
	type_line(name, "exit 3");
	cr_assert_eq(wait_exit(name, "exit 3"), 3,
		     "tether ssh: the remote shell's exit status 3 was not "
		     "passed on");
	expect_sane(name, "after exit 3");
}

Test(ssh, interactive_session, .timeout = 180)
{
	const char *args[] = {target, "--accept-new", NULL};

	start("interactive ssh", true, KEY_AUTHORIZED);
	term_open("ssh", args);
	interact("ssh");
}

Test(ssh, terminal_confirms_unknown_host_key, .timeout = 180)
{
	const char *args[] = {target, NULL};
	char fp[128];

	start("host key on the terminal", true, KEY_AUTHORIZED);
	host_fingerprint(fp, sizeof(fp));
	term_open("ask", args);
	/* As OpenSSH: the fingerprint is shown before the question. */
	expect_screen("ask", fp, FIRST_MS,
		      "the unknown host key's fingerprint");
	type_line("ask", "yes");
	interact("ask");
	cr_assert(known_by_openssh(known_hosts),
		  "the host key confirmed on the terminal is not in %s",
		  known_hosts);
}

Test(ssh, escapes_list_and_disconnect, .timeout = 180)
{
	const char *args[] = {target, "--accept-new", NULL};

	start("ssh ~.", true, KEY_AUTHORIZED);
	term_open("esc", args);
	check_shell("esc");
	/* ~ counts only at the start of a line; ~? lists, then ~. still works.
	 */
	h_term_key(&tmux, "esc", "Enter");
	h_term_type(&tmux, "esc", "~?");
	expect_screen("esc", "Supported escape sequences:", SCREEN_MS,
		      "the ~? list");
	h_term_type(&tmux, "esc", "~.");
	cr_assert_eq(wait_exit("esc", "~."), 255,
		     "tether ssh: ~. should disconnect with exit 255");
	expect_screen("esc", "Connection to 127.0.0.1 closed.", SCREEN_MS,
		      "the ~. message");
	expect_sane("esc", "after ~.");
}

/* ---- tether forward ------------------------------------------------------ */

/*
 * Starts `tether forward TICKET LPORT:127.0.0.1:PORT` in the background and
 * returns the local port from its "Forwarding 127.0.0.1:LOCAL ->
 * 127.0.0.1:PORT through T-N" line (lport itself unless 0).
 */
static int forward_start(struct h_proc *p, const char *tag, int lport, int port)
{
	static const char pre[] = "Forwarding 127.0.0.1:";
	char spec[64], rest[128], *out, *at, *end;
	long local;

	snprintf(spec, sizeof(spec), "%d:127.0.0.1:%d", lport, port);
	h_console_start(p, tag, "forward", sess.ticket, spec, NULL);
	/* Until the line shows or the console gives up. */
	for (int waited = 0; waited < FIRST_MS; waited += 250)
		if (h_proc_wait_output(p, pre, 250) || !h_proc_alive(p))
			break;
	if (!h_proc_wait_output(p, pre, 0)) {
		out = h_proc_output(p);
		cr_assert_fail("tether forward %s: no \"%s\" line within %d "
			       "ms (%s): %s",
			       spec, pre, FIRST_MS,
			       h_proc_alive(p) ? "running" : "exited", out);
	}
	/* The line may still be arriving; wait for its end. */
	snprintf(rest, sizeof(rest), " -> 127.0.0.1:%d through %s\n", port,
		 sess.ticket);
	h_proc_wait_output(p, rest, FORWARD_MS);
	out = h_proc_output(p);
	at = strstr(out, pre);
	errno = 0;
	local = h_number(at + sizeof(pre) - 1, &end);
	cr_assert(errno == 0 && end != at + sizeof(pre) - 1 && local > 0 &&
		      local < 65536,
		  "tether forward: no local port in: %s", out);
	cr_assert(lport == 0 || local == lport,
		  "tether forward %s listens on %ld", spec, local);
	cr_assert(!strncmp(end, rest, strlen(rest)),
		  "tether forward: expected \"%s%ld%s\" in: %s", pre, local,
		  rest, out);
	free(out);
	return (int)local;
}

/* Forward events of the ticket with ok == want_ok to port. */
static int forward_events(int port, bool want_ok, const char **reason)
{
	json_t *t = h_ticket_show(sess.ticket);
	json_t *audit = json_object_get(t, "audit"), *ev;
	int count = 0;
	size_t i;

	json_array_foreach (audit, i, ev) {
		const char *name =
		    json_string_value(json_object_get(ev, "event"));
		json_t *d = json_object_get(ev, "detail");
		json_t *ok = json_object_get(d, "ok");

		if (!name || strcmp(name, "forward") || !json_is_boolean(ok))
			continue;
		if (json_integer_value(json_object_get(d, "port")) != port ||
		    json_is_true(ok) != want_ok)
			continue;
		if (reason && !*reason) {
			const char *r =
			    json_string_value(json_object_get(d, "reason"));

			*reason = strdup(r ? r : "");
		}
		count++;
	}
	json_decref(t);
	return count;
}

/* Polls the audit until it has at least n such forward events. */
static void expect_forward_audit(int port, bool ok, int n, const char **why)
{
	int got = 0;
	char *names;
	json_t *t;

	for (int waited = 0; waited <= AUDIT_MS; waited += 200) {
		got = forward_events(port, ok, why);
		if (got >= n)
			return;
		if (why && *why) {
			free((char *)*why);
			*why = NULL;
		}
		usleep(200 * 1000);
	}
	t = h_ticket_show(sess.ticket);
	names = json_dumps(json_object_get(t, "audit"), JSON_COMPACT);
	cr_assert_fail("audit: %d forward events to port %d with ok %s, "
		       "expected at least %d: %s",
		       got, port, ok ? "true" : "false", n, names);
}

static void forward_stop(struct h_proc *p)
{
	char *out;
	int st;

	h_proc_signal(p, SIGINT);
	st = h_proc_wait(p, STOP_MS);
	out = h_proc_output(p);
	cr_assert(st >= 0,
		  "tether forward still running %d ms after SIGINT: "
		  "%s",
		  STOP_MS, out);
	cr_assert_eq(st, 0,
		     "tether forward: exit status %d after SIGINT, "
		     "expected 0: %s",
		     st, out);
	free(out);
}

/* A TCP connection to 127.0.0.1:port; -1 if refused. */
static int connect_local(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert(fd >= 0, "socket: %s", strerror(errno));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

Test(ssh, forward_serves_the_stock_ssh_client, .timeout = 180)
{
	const char *hi[] = {"echo", "hi", NULL};
	const char *both[2][4] = {{"sleep 1; echo hi-0", NULL},
				  {"sleep 1; echo hi-1", NULL}};
	struct stock_ssh x[3];
	struct h_proc fwd, fwd2, runs[2];
	char kh[H_PATH_MAX], want[128], *out;
	struct h_res res;
	int local, fixed, fd;

	start("forward", true, KEY_AUTHORIZED);
	local = forward_start(&fwd, "forward", 0, sshd.port);
	h_path(kh, sizeof(kh), "stock_known_hosts");

	h_run(&res, &first_opts, stock_ssh(&x[0], local, kh, "accept-new", hi));
	if (res.status != 0 || strcmp(res.out, "hi\n")) {
		char *f = h_proc_output(&fwd), *a = agent_output();

		cr_assert_fail("ssh -p %d through tether forward: status %d, "
			       "stdout \"%s\"\nssh stderr: %s\n"
			       "tether forward: %s\nagent: %s",
			       local, res.status, res.out, res.err, f, a);
	}
	h_res_free(&res);
	/* The sshd's own host key came through the forward. */
	cr_assert(h_file_contains(kh, "ssh-ed25519", 11),
		  "no host key recorded in %s", kh);

	/* Two connections at once, each its own forward channel. */
	for (int i = 0; i < 2; i++) {
		char tag[16];

		snprintf(tag, sizeof(tag), "stock%d", i);
		h_proc_start(&runs[i], tag,
			     stock_ssh(&x[i + 1], local, kh, "yes", both[i]),
			     NULL);
	}
	for (int i = 0; i < 2; i++) {
		char *f;
		int st = h_proc_wait(&runs[i], FIRST_MS);

		snprintf(want, sizeof(want), "hi-%d\n", i);
		out = h_proc_output(&runs[i]);
		f = h_proc_output(&fwd);
		cr_assert(st == 0 &&
			      h_file_contains(runs[i].out, want, strlen(want)),
			  "concurrent ssh %d through tether forward: status "
			  "%d: %s\ntether forward: %s",
			  i, st, out, f);
		free(out);
		free(f);
	}

	/* Each connection was a forward the agent made and reported. */
	expect_forward_audit(sshd.port, true, 3, NULL);
	/* The customer is told (docs/cli.md, tether-agent, Forwarding). */
	snprintf(want, sizeof(want), "admin connected to 127.0.0.1:%d",
		 sshd.port);
	if (!h_proc_wait_output(&sess.agent, want, AUDIT_MS)) {
		out = agent_output();
		cr_assert_fail("the agent did not tell the customer \"%s\": %s",
			       want, out);
	}
	snprintf(want, sizeof(want), "forward to 127.0.0.1:%d closed after",
		 sshd.port);
	if (!h_proc_wait_output(&sess.agent, want, AUDIT_MS)) {
		out = agent_output();
		cr_assert_fail("the agent did not tell the customer \"%s\": %s",
			       want, out);
	}

	/* A local port of our choosing, next to the first forward. */
	fixed = h_free_port();
	cr_assert_eq(forward_start(&fwd2, "forward2", fixed, sshd.port), fixed);
	h_run(&res, NULL, stock_ssh(&x[0], fixed, kh, "accept-new", hi));
	h_expect(&res, 0, "hi\n", NULL,
		 "ssh through tether forward on a "
		 "chosen local port");
	h_res_free(&res);
	forward_stop(&fwd2);

	forward_stop(&fwd);
	fd = connect_local(local);
	cr_assert(fd < 0,
		  "127.0.0.1:%d still accepts connections after "
		  "tether forward exited",
		  local);
}

/* ---- The agent's policy -------------------------------------------------- */

Test(ssh, default_policy_refuses_other_targets, .timeout = 180)
{
	char marker[H_PATH_MAX], cmd[H_PATH_MAX + 16], buf[256], want[160];
	const char *why = NULL;
	struct pollfd pfd;
	struct h_proc fwd;
	struct h_res res;
	char *out, *log;
	ssize_t n = -1;
	int local, fd;

	/* Default policy: 127.0.0.1:22 only; the sshd port is another. */
	start("forward policy", false, KEY_AUTHORIZED);
	local = forward_start(&fwd, "forward", 0, sshd.port);

	fd = connect_local(local);
	cr_assert(fd >= 0, "cannot connect to tether forward's 127.0.0.1:%d",
		  local);
	/* The console closes the connection once the agent refused. */
	pfd.fd = fd;
	pfd.events = POLLIN;
	if (poll(&pfd, 1, FIRST_MS) == 1) {
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == ECONNRESET)
			n = 0;
	}
	close(fd);
	out = h_proc_output(&fwd);
	cr_assert(n <= 0,
		  "a refused forward: %zd bytes came through the "
		  "local connection (the agent connected?)\n"
		  "tether forward: %s",
		  n, out);
	cr_assert(n == 0,
		  "a refused forward: the local connection was not "
		  "closed within %d ms\ntether forward: %s",
		  FIRST_MS, out);
	free(out);
	snprintf(want, sizeof(want),
		 "tether: remote: 127.0.0.1:%d: not allowed by the customer's "
		 "policy\n",
		 sshd.port);
	if (!h_proc_wait_output(&fwd, want, FORWARD_MS)) {
		out = h_proc_output(&fwd);
		cr_assert_fail("tether forward does not report the refusal "
			       "(\"%s\"): %s",
			       want, out);
	}
	/* One refused connection does not end the forward (as ssh -L). */
	cr_assert(h_proc_alive(&fwd),
		  "tether forward exited (%d) after one refused connection",
		  fwd.status);

	expect_forward_audit(sshd.port, false, 1, &why);
	cr_assert(why && !strcmp(why, "not allowed by the customer's policy"),
		  "audit: the refused forward's reason is \"%s\"",
		  why ? why : "(none)");
	free((char *)why);
	snprintf(want, sizeof(want),
		 "admin asked to connect to 127.0.0.1:%d, which your policy "
		 "does not allow; refused",
		 sshd.port);
	if (!h_proc_wait_output(&sess.agent, want, AUDIT_MS)) {
		out = agent_output();
		cr_assert_fail("the agent did not tell the customer \"%s\": %s",
			       want, out);
	}

	/* The agent never connected to the target. */
	log = sshd_log();
	cr_assert(!strstr(log, "Connection from"),
		  "sshd saw a connection although the agent refused: %s", log);
	free(log);
	forward_stop(&fwd);

	h_path(marker, sizeof(marker), "marker");
	snprintf(cmd, sizeof(cmd), "touch %s", marker);
	h_console(&res, NULL, "ssh", sess.ticket, target, "--accept-new", "--",
		  cmd, NULL);
	expect_status(&res, 255, "tether ssh to a target the agent refuses");
	snprintf(want, sizeof(want),
		 "tether: remote: 127.0.0.1:%d: not allowed by the "
		 "customer's policy",
		 sshd.port);
	cr_assert(strstr(res.err, want),
		  "tether ssh: stderr does not give the agent's reason "
		  "(\"%s\"): \"%s\"",
		  want, res.err);
	cr_assert(!exists(marker), "the remote command ran");
	h_res_free(&res);
}

/* An allowed target with nothing listening: the agent's connection error. */
Test(ssh, allowed_target_down, .timeout = 180)
{
	char dest[128], want[160];
	const char *why = NULL;
	struct h_res res;
	char *out;

	start("target down", true, KEY_AUTHORIZED);
	snprintf(dest, sizeof(dest), "%s@%s", sshd.user, dead_addr);
	h_console(&res, &first_opts, "ssh", sess.ticket, dest, "--accept-new",
		  "--", "true", NULL);
	expect_status(&res, 255,
		      "tether ssh to an allowed port nothing "
		      "listens on");
	snprintf(want, sizeof(want), "tether: remote: %s: connection refused",
		 dead_addr);
	cr_assert(strstr(res.err, want),
		  "tether ssh: stderr does not say \"%s\": \"%s\"", want,
		  res.err);
	h_res_free(&res);

	expect_forward_audit(dead_port, false, 1, &why);
	cr_assert(why && strstr(why, "connection refused"),
		  "audit: the failed forward's reason is \"%s\"",
		  why ? why : "(none)");
	free((char *)why);
	snprintf(want, sizeof(want),
		 "admin could not connect to %s: "
		 "connection refused",
		 dead_addr);
	if (!h_proc_wait_output(&sess.agent, want, AUDIT_MS)) {
		out = agent_output();
		cr_assert_fail("the agent did not tell the customer \"%s\": %s",
			       want, out);
	}
}

/* ---- tether sftp ------------------------------------------------------- */

/*
 * `tether sftp` against the same sshd (with the internal-sftp subsystem):
 * the sshd runs here, so what landed "remotely" is compared on disk.
 */
#define SFTP_MS 120000
#define BIG_MIB 64
/* An mtime both directions must carry over: 2021-01-02 03:04:05 UTC. */
#define OLD_MTIME 1609556645

static const struct h_opts sftp_opts = {.timeout_ms = SFTP_MS};

static void set_mode_mtime(const char *path, mode_t mode, time_t mtime)
{
	struct timespec ts[2] = {{.tv_sec = mtime}, {.tv_sec = mtime}};

	cr_assert(chmod(path, mode) == 0, "chmod %s: %s", path,
		  strerror(errno));
	cr_assert(utimensat(AT_FDCWD, path, ts, 0) == 0, "utimensat %s: %s",
		  path, strerror(errno));
}

/* Same bytes, the given mode and mtime, no part file beside it. */
static void expect_copy(const char *path, const char *want_sha, mode_t mode,
			time_t mtime, const char *what)
{
	char sha[65], part[H_PATH_MAX + 16];
	struct stat st;

	cr_assert(stat(path, &st) == 0, "%s: %s is missing: %s", what, path,
		  strerror(errno));
	h_sha256_file(path, sha);
	cr_assert_str_eq(sha, want_sha, "%s: %s has other bytes", what, path);
	cr_assert_eq(st.st_mode & 07777, mode, "%s: %s has mode %o, not %o",
		     what, path, (unsigned)(st.st_mode & 07777),
		     (unsigned)mode);
	cr_assert_eq(st.st_mtime, mtime, "%s: %s has mtime %lld, not %lld",
		     what, path, (long long)st.st_mtime, (long long)mtime);
	snprintf(part, sizeof(part), "%s.tether-part", path);
	cr_assert(!exists(part), "%s: %s was left behind", what, part);
}

/* The --json summary of one file: its "sha256" and "ok". */
static void expect_summary(const struct h_res *res, const char *dir,
			   const char *sha, const char *what)
{
	json_error_t jerr;
	json_t *o = json_loads(res->out, 0, &jerr), *f;

	cr_assert(o, "%s --json: not JSON (%s): %s", what, jerr.text, res->out);
	f = json_array_get(json_object_get(o, "files"), 0);
	cr_assert(
	    json_is_true(json_object_get(o, "ok")) &&
		!strcmp(json_string_value(json_object_get(o, "direction")),
			dir) &&
		json_array_size(json_object_get(o, "files")) == 1 &&
		json_is_true(json_object_get(f, "ok")) &&
		json_integer_value(json_object_get(f, "size")) ==
		    (json_int_t)BIG_MIB << 20,
	    "%s --json: unexpected summary: %s", what, res->out);
	cr_assert_str_eq(json_string_value(json_object_get(f, "sha256")), sha,
			 "%s --json: sha256 is not the file's: %s", what,
			 res->out);
	json_decref(o);
}

Test(ssh, sftp_put_get_verified, .timeout = 300)
{
	char local[H_PATH_MAX], remote[H_PATH_MAX], rfile[H_PATH_MAX + 8];
	char back[H_PATH_MAX], in_dir[H_PATH_MAX + 16], sha[65];
	struct h_res res;

	start("sftp", true, KEY_AUTHORIZED);
	h_path(local, sizeof(local), "big.bin");
	h_write_random(local, (size_t)BIG_MIB << 20);
	set_mode_mtime(local, 0640, OLD_MTIME);
	h_sha256_file(local, sha);
	mkdir_or_fail(h_path(remote, sizeof(remote), "remote"));
	mkdir_or_fail(h_path(back, sizeof(back), "back"));

	/* put to a new name, with the summary. */
	snprintf(rfile, sizeof(rfile), "%s/copy", remote);
	h_console(&res, &sftp_opts, "sftp", sess.ticket, target, "--accept-new",
		  "--json", "put", local, rfile, NULL);
	expect_status(&res, 0, "tether sftp put 64 MiB");
	expect_copy(rfile, sha, 0640, OLD_MTIME, "tether sftp put");
	expect_summary(&res, "put", sha, "tether sftp put");
	h_res_free(&res);

	/* put into a directory: the file keeps its own name. */
	h_console(&res, &sftp_opts, "sftp", sess.ticket, target, "-q", "put",
		  local, remote, NULL);
	expect_status(&res, 0, "tether sftp put into a directory");
	snprintf(in_dir, sizeof(in_dir), "%s/big.bin", remote);
	expect_copy(in_dir, sha, 0640, OLD_MTIME,
		    "tether sftp put into a directory");
	cr_assert_str_eq(res.out, "", "tether sftp put -q: stdout \"%s\"",
			 res.out);
	h_res_free(&res);

	/* get into a directory, another mode and mtime on the far side. */
	set_mode_mtime(rfile, 0604, OLD_MTIME + 3600);
	h_console(&res, &sftp_opts, "sftp", sess.ticket, target, "--json",
		  "get", rfile, back, NULL);
	expect_status(&res, 0, "tether sftp get 64 MiB");
	snprintf(in_dir, sizeof(in_dir), "%s/copy", back);
	expect_copy(in_dir, sha, 0604, OLD_MTIME + 3600, "tether sftp get");
	expect_summary(&res, "get", sha, "tether sftp get");
	h_res_free(&res);
}

Test(ssh, sftp_ls_and_errors, .timeout = 180)
{
	char local[H_PATH_MAX], remote[H_PATH_MAX], missing[H_PATH_MAX + 16];
	char got[H_PATH_MAX], part[H_PATH_MAX + 16], want[H_PATH_MAX + 64];
	char nodir[H_PATH_MAX + 16];
	json_error_t jerr;
	struct h_res res;
	json_t *o, *e;

	start("sftp ls", true, KEY_AUTHORIZED);
	h_path(local, sizeof(local), "notes.txt");
	write_file(local, "twelve bytes");
	set_mode_mtime(local, 0600, OLD_MTIME);
	mkdir_or_fail(h_path(remote, sizeof(remote), "remote"));
	h_console(&res, &first_opts, "sftp", sess.ticket, target,
		  "--accept-new", "put", local, remote, NULL);
	expect_status(&res, 0, "tether sftp put notes.txt");
	h_res_free(&res);

	h_console(&res, NULL, "sftp", sess.ticket, target, "ls", remote, NULL);
	expect_status(&res, 0, "tether sftp ls");
	cr_assert_str_eq(res.out, "notes.txt\n", "tether sftp ls: \"%s\"",
			 res.out);
	h_res_free(&res);

	h_console(&res, NULL, "sftp", sess.ticket, target, "ls", "-l", remote,
		  NULL);
	expect_status(&res, 0, "tether sftp ls -l");
	cr_assert(!strncmp(res.out, "-rw------- 12 ", 14) &&
		      strstr(res.out, " notes.txt\n"),
		  "tether sftp ls -l: \"%s\"", res.out);
	h_res_free(&res);

	h_console(&res, NULL, "sftp", sess.ticket, target, "--json", "ls",
		  remote, NULL);
	expect_status(&res, 0, "tether sftp --json ls");
	o = json_loads(res.out, 0, &jerr);
	cr_assert(o, "tether sftp --json ls: not JSON: %s", res.out);
	e = json_array_get(json_object_get(o, "entries"), 0);
	cr_assert(json_array_size(json_object_get(o, "entries")) == 1 &&
		      !strcmp(json_string_value(json_object_get(e, "name")),
			      "notes.txt") &&
		      !strcmp(json_string_value(json_object_get(e, "type")),
			      "file") &&
		      !strcmp(json_string_value(json_object_get(e, "mode")),
			      "0600") &&
		      json_integer_value(json_object_get(e, "size")) == 12 &&
		      json_integer_value(json_object_get(e, "mtime")) ==
			  OLD_MTIME,
		  "tether sftp --json ls: %s", res.out);
	json_decref(o);
	h_res_free(&res);

	/* A file the server does not have: its words, exit 1, nothing. */
	snprintf(missing, sizeof(missing), "%s/missing", remote);
	h_path(got, sizeof(got), "got");
	h_console(&res, NULL, "sftp", sess.ticket, target, "get", missing, got,
		  NULL);
	expect_status(&res, 1, "tether sftp get of a missing file");
	snprintf(want, sizeof(want), "tether: %s: No such file\n", missing);
	cr_assert_str_eq(res.err, want, "tether sftp get missing: stderr");
	snprintf(part, sizeof(part), "%s.tether-part", got);
	cr_assert(!exists(got) && !exists(part),
		  "tether sftp get of a missing file left %s", got);
	h_res_free(&res);

	/* Into a remote directory that does not exist. */
	snprintf(nodir, sizeof(nodir), "%s/nodir/x", remote);
	h_console(&res, NULL, "sftp", sess.ticket, target, "put", local, nodir,
		  NULL);
	expect_status(&res, 1, "tether sftp put into a missing directory");
	cr_assert(strstr(res.err, "No such file"),
		  "tether sftp put into a missing directory: \"%s\"", res.err);
	h_res_free(&res);

	/* A directory without -r. */
	h_console(&res, NULL, "sftp", sess.ticket, target, "get", remote, got,
		  NULL);
	expect_status(&res, 1, "tether sftp get of a directory");
	snprintf(want, sizeof(want),
		 "tether: %s is a directory (-r is not supported)\n", remote);
	cr_assert_str_eq(res.err, want, "tether sftp get of a directory");
	h_res_free(&res);
}

/*
 * A transfer that fails halfway leaves nothing under the final name:
 * the sshd (and the sftp server it forks) may write files of 1 MiB at
 * most, the console likewise for get.
 */
Test(ssh, sftp_failed_transfer_leaves_no_half_file, .timeout = 180)
{
	char local[H_PATH_MAX], remote[H_PATH_MAX], dest[H_PATH_MAX + 16];
	char small[H_PATH_MAX], got[H_PATH_MAX], part[H_PATH_MAX + 16];
	struct rlimit lim = {.rlim_cur = 1 << 20, .rlim_max = RLIM_INFINITY};
	struct rlimit old;
	struct h_res res;

	start("sftp failure", true, KEY_AUTHORIZED);
	h_path(local, sizeof(local), "eight.bin");
	h_write_random(local, 8u << 20);
	mkdir_or_fail(h_path(remote, sizeof(remote), "remote"));
	snprintf(dest, sizeof(dest), "%s/eight.bin", remote);
	/* Known to the get below, written before any limit. */
	h_path(small, sizeof(small), "remote/small.bin");
	h_write_random(small, 4u << 20);

	cr_assert(prlimit(sshd.proc.pid, RLIMIT_FSIZE, &lim, NULL) == 0,
		  "prlimit sshd: %s", strerror(errno));
	h_console(&res, &first_opts, "sftp", sess.ticket, target,
		  "--accept-new", "put", local, remote, NULL);
	/* OpenSSH's SFTP server dies of SIGXFSZ: the SFTP session is over. */
	expect_status(&res, 255, "tether sftp put over the server's limit");
	cr_assert(strstr(res.err, "tether: the SSH server ended the SFTP "
				  "session\n"),
		  "tether sftp put over the server's limit: \"%s\"", res.err);
	cr_assert(!exists(dest), "a failed put left %s", dest);
	h_res_free(&res);

	/* get: the console itself may not write more than 1 MiB. */
	h_path(got, sizeof(got), "got.bin");
	cr_assert(getrlimit(RLIMIT_FSIZE, &old) == 0, "getrlimit");
	lim.rlim_max = old.rlim_max;
	cr_assert(setrlimit(RLIMIT_FSIZE, &lim) == 0, "setrlimit: %s",
		  strerror(errno));
	h_console(&res, NULL, "sftp", sess.ticket, target, "get", small, got,
		  NULL);
	cr_assert(setrlimit(RLIMIT_FSIZE, &old) == 0, "setrlimit back");
	expect_status(&res, 1, "tether sftp get over the local limit");
	cr_assert(strstr(res.err, "File too large"),
		  "tether sftp get over the local limit: \"%s\"", res.err);
	snprintf(part, sizeof(part), "%s.tether-part", got);
	cr_assert(!exists(got) && !exists(part),
		  "a failed get left %s or its part file", got);
	h_res_free(&res);
}
