/*
 * End-to-end: what the customer is shown and allows once the code is
 * proven (docs/protocol.md "Pairing", docs/cli.md "tether-agent join"):
 * the ticket info that only the right code opens, and that a relay cannot
 * alter; a subset of the requested capabilities, given with --allow or at
 * the prompt (a list, or one by one), which the relay and the agent both
 * hold the technician to; and a forward target asked about once.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "harness.h"

TestSuite(consent, .init = h_setup, .fini = h_teardown);

#define EXIT_MS 10000

/* The words of a JSON array of strings, joined by commas. */
static char *words_of(json_t *a)
{
	char buf[256] = "";
	size_t i, pos = 0;
	json_t *v;

	json_array_foreach (a, i, v) {
		int n = snprintf(buf + pos, sizeof(buf) - pos, "%s%s",
				 i > 0 ? "," : "", json_string_value(v));

		cr_assert(n > 0 && (size_t)n < sizeof(buf) - pos);
		pos += (size_t)n;
	}
	return strdup(buf);
}

/* The ticket's consent row: what was requested and what allowed. */
static void expect_consent(const char *ticket, const char *allowed)
{
	json_t *t = h_ticket_show(ticket), *row, *d;
	char *got, *req;

	row = h_audit_event(t, "consent", NULL);
	cr_assert(row != NULL, "no consent row: %s", h_audit_names(t));
	d = json_object_get(row, "detail");
	got = words_of(json_object_get(d, "allowed"));
	req = words_of(json_object_get(d, "requested"));
	cr_assert_str_eq(got, allowed, "consent allowed: %s", json_dumps(d, 0));
	cr_assert_str_eq(req, "exec,shell,file,forward,diag",
			 "consent requested: %s", json_dumps(d, 0));
	cr_assert_str_eq(json_string_value(json_object_get(row, "actor")),
			 "agent");
	free(got);
	free(req);
	json_decref(t);
}

static void expect_consent_all(const char *ticket)
{
	expect_consent(ticket, "exec,shell,file,forward,diag");
}

/* An exec that works, and a shell that the customer did not allow. */
static void expect_exec_not_shell(const char *ticket)
{
	const char *cmd[] = {"echo", "granted", NULL};
	char want[128];
	struct h_res res;

	h_exec(&res, NULL, ticket, cmd);
	h_expect(&res, 0, "granted\n", "", "exec the customer allowed");
	h_res_free(&res);
	h_console(&res, NULL, "shell", ticket, NULL);
	snprintf(want, sizeof(want),
		 "tether: the customer did not allow shell for %s\n", ticket);
	h_expect(&res, 255, "", want, "shell the customer did not allow");
	h_res_free(&res);
}

/*
 * A relay that alters the sealed info (the test hook flips a digit of
 * what it forwards) gets nothing shown: the agent refuses the session,
 * says so, and the code is spent.
 */
Test(consent, tampered_info_is_refused, .timeout = 60)
{
	static const char *const env[] = {"TETHER_TEST_TAMPER_INFO=1", NULL};
	const char *cmd[] = {"true", NULL};
	struct h_session s;
	struct h_res res;
	char *out;
	json_t *t;

	if (!h_test_hooks())
		cr_skip_test("needs -Dtest_hooks=true");
	h_session_start(&s, "Tampered QZX title", env);
	h_exec(&res, NULL, s.ticket, cmd);
	h_expect_fail(&res, 255, "was burned",
		      "exec when the relay alters the info");
	h_res_free(&res);
	cr_assert_eq(h_proc_wait(&s.agent, EXIT_MS), 1, "the agent goes on");
	out = h_proc_output(&s.agent);
	cr_assert(strstr(out,
			 "tether-agent: the invitation did not arrive "
			 "intact; ask your technician for a new code") != NULL,
		  "agent: %s", out);
	cr_assert(strstr(out, "QZX") == NULL &&
		      strstr(out, "wants to connect") == NULL,
		  "the altered info was shown: %s", out);
	free(out);
	t = h_ticket_show(s.ticket);
	cr_assert(h_audit_has(t, "code_burned") && !h_audit_has(t, "paired"),
		  "audit: %s", h_audit_names(t));
	json_decref(t);
	h_relay_stop(&s.relay);
}

/*
 * --allow exec,diag grants exactly those without asking: the customer is
 * shown what was requested and what was allowed, the grant is audited,
 * and a shell is refused by the relay with the customer's words.
 */
Test(consent, allow_grants_a_subset, .timeout = 60)
{
	static const char *const args[] = {"--allow", "exec,diag", NULL};
	const struct h_agent_opts o = {.args = args};
	struct h_session s;
	char *out;

	h_session_start_ex(&s, "subset", NULL, &o);
	expect_exec_not_shell(s.ticket);
	expect_consent(s.ticket, "exec,diag");
	out = h_proc_output(&s.agent);
	cr_assert(strstr(out, "requested capabilities: exec (run commands") &&
		      strstr(out, "tether-agent: allowed: exec, diag; not "
				  "allowed: shell, file, forward (--allow)"),
		  "agent: %s", out);
	free(out);
	h_proc_stop(&s.agent, SIGTERM);
	h_relay_stop(&s.relay);
}

/* --allow takes capability words only. */
Test(consent, allow_rejects_other_words, .timeout = 30)
{
	const char *argv[] = {h_agent_bin(), "join",	"1-a-b-c",   "--relay",
			      "127.0.0.1:1", "--allow", "exec,sudo", NULL};
	struct h_res res;

	h_run(&res, NULL, argv);
	h_expect_fail(&res, 2,
		      "--allow exec,sudo: not a capability (exec, shell, file, "
		      "forward, diag)",
		      "--allow with a word that is not a capability");
	h_res_free(&res);
}

/* A customer at a terminal (tmux), the code joined, a command waiting. */
struct attended {
	struct h_relay r;
	struct h_tmux tmux;
	char ticket[H_ID_MAX];
	char code[H_CODE_MAX];
	struct h_proc ex;
};

static void attended_start(struct attended *a, const char *const *cmd)
{
	char cfg[H_PATH_MAX], env0[H_PATH_MAX + 32];
	const char *env[] = {env0, NULL};

	memset(a, 0, sizeof(*a));
	h_relay_up(&a->r, NULL);
	h_login(&a->r);
	h_ticket_new("attended", a->ticket, sizeof(a->ticket));
	h_invite(a->ticket, NULL, a->code, sizeof(a->code));
	h_tmux_start(&a->tmux);
	snprintf(env0, sizeof(env0), "XDG_CONFIG_HOME=%s",
		 h_path(cfg, sizeof(cfg), "agent-tty"));
	{
		const char *argv[] = {
		    h_agent_bin(), "join",	    a->code,	      "--relay",
		    a->r.addr,	   "--fingerprint", a->r.fingerprint, NULL};

		h_term_new(&a->tmux, "customer", 120, 40, env, argv);
	}
	h_wait_joined(a->ticket, 15000, NULL);
	h_console_start(&a->ex, "waiting", "exec", a->ticket, "--", cmd[0],
			cmd[1], NULL);
	cr_assert(h_term_wait(&a->tmux, "customer", "Allow? [y/N", 15000),
		  "no consent prompt: %s",
		  h_term_screen(&a->tmux, "customer", true));
}

static void answer(struct attended *a, const char *text)
{
	h_term_type(&a->tmux, "customer", text);
	h_term_key(&a->tmux, "customer", "Enter");
}

/* The waiting exec ran once the customer answered. */
static void expect_waiting_exec_ran(struct attended *a)
{
	char *out;

	cr_assert_eq(h_proc_wait(&a->ex, EXIT_MS), 0, "the waiting exec");
	out = h_read_file(a->ex.out, NULL);
	cr_assert(out && strcmp(out, "granted\n") == 0, "exec printed %s", out);
	free(out);
}

static void attended_stop(struct attended *a)
{
	h_tmux_stop(&a->tmux);
	h_relay_stop(&a->r);
}

/*
 * The customer allowed exec and diag (how: the words shown after): shown,
 * the waiting exec ran, a shell is refused, the consent audited.
 */
static void expect_exec_and_diag(struct attended *a, const char *how)
{
	char want[160];

	snprintf(want, sizeof(want),
		 "allowed: exec, diag; not allowed: shell, file, forward (%s)",
		 how);
	cr_assert(h_term_wait(&a->tmux, "customer", want, 10000), "%s",
		  h_term_screen(&a->tmux, "customer", true));
	expect_waiting_exec_ran(a);
	expect_exec_not_shell(a->ticket);
	expect_consent(a->ticket, "exec,diag");
	attended_stop(a);
}

/* At the prompt, a list allows some; a word not requested is asked again. */
Test(consent, prompt_takes_a_list, .timeout = 90)
{
	const char *cmd[] = {"echo", "granted", NULL};
	struct attended a;

	if (!h_tmux_available())
		cr_skip_test("tmux is needed for a terminal to answer in");
	attended_start(&a, cmd);
	answer(&a, "exec,sudo");
	cr_assert(h_term_wait(&a.tmux, "customer",
			      "sudo was not requested; answer y, n", 10000),
		  "no complaint about sudo: %s",
		  h_term_screen(&a.tmux, "customer", true));
	answer(&a, "exec, diag");
	expect_exec_and_diag(&a, "as answered");
}

/* "each" asks for every capability in turn. */
Test(consent, prompt_asks_for_each, .timeout = 90)
{
	static const char *const answers[] = {"y", "n", "n", "n", "y"};
	const char *cmd[] = {"echo", "granted", NULL};
	static const char *const asked[] = {"Allow exec (", "Allow shell (",
					    "Allow file (", "Allow forward (",
					    "Allow diag ("};
	struct attended a;

	if (!h_tmux_available())
		cr_skip_test("tmux is needed for a terminal to answer in");
	attended_start(&a, cmd);
	answer(&a, "each");
	for (size_t i = 0; i < sizeof(answers) / sizeof(answers[0]); i++) {
		cr_assert(h_term_wait(&a.tmux, "customer", asked[i], 10000),
			  "not asked %s: %s", asked[i],
			  h_term_screen(&a.tmux, "customer", true));
		answer(&a, answers[i]);
	}
	expect_exec_and_diag(&a, "answered one by one");
}

/* A listening socket on 127.0.0.1; its port into *port. */
static int listen_local(int *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert(fd >= 0, "socket: %s", strerror(errno));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
		      listen(fd, 4) == 0 &&
		      getsockname(fd, (struct sockaddr *)&sa, &len) == 0,
		  "listen: %s", strerror(errno));
	*port = ntohs(sa.sin_port);
	return fd;
}

/* How many times needle is on the customer's screen (with history). */
static int screen_count(struct attended *a, const char *needle)
{
	char *s = h_term_screen(&a->tmux, "customer", true), *p = s;
	int n = 0;

	while ((p = strstr(p, needle)) != NULL) {
		n++;
		p += strlen(needle);
	}
	free(s);
	return n;
}

/*
 * One forward channel after another to the same target: the customer is
 * asked the first time only; the second connects at once, and says so.
 */
Test(consent, forward_target_asked_once, .timeout = 90)
{
	const char *cmd[] = {"echo", "granted", NULL};
	char spec[64], question[96], *out;
	struct attended a;
	struct h_proc fwd;
	int lfd, port, local = 0, c, s;
	char *at;

	if (!h_tmux_available())
		cr_skip_test("tmux is needed for a terminal to answer in");
	attended_start(&a, cmd);
	answer(&a, "y");
	expect_waiting_exec_ran(&a);
	lfd = listen_local(&port);
	snprintf(spec, sizeof(spec), "0:127.0.0.1:%d", port);
	h_console_start(&fwd, "forward", "forward", a.ticket, spec, NULL);
	cr_assert(h_proc_wait_output(&fwd, " -> 127.0.0.1:", 10000),
		  "tether forward did not start");
	out = h_proc_output(&fwd);
	at = strstr(out, "Forwarding 127.0.0.1:");
	cr_assert(at != NULL, "tether forward: %s", out);
	local = (int)h_number(at + strlen("Forwarding 127.0.0.1:"), NULL);
	free(out);
	snprintf(question, sizeof(question),
		 "admin wants to connect to 127.0.0.1:%d. Allow? [y/N]", port);
	for (int round = 0; round < 2; round++) {
		struct sockaddr_in sa = {.sin_family = AF_INET};

		c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sa.sin_port = htons((uint16_t)local);
		cr_assert(connect(c, (struct sockaddr *)&sa, sizeof(sa)) == 0,
			  "connect to tether forward: %s", strerror(errno));
		if (round == 0) {
			cr_assert(
			    h_term_wait(&a.tmux, "customer", question, 15000),
			    "not asked: %s",
			    h_term_screen(&a.tmux, "customer", true));
			answer(&a, "y");
		}
		s = accept(lfd, NULL, NULL);
		cr_assert(s >= 0, "the agent did not connect (round %d): %s",
			  round, strerror(errno));
		close(s);
		close(c);
	}
	cr_assert(h_term_wait(&a.tmux, "customer",
			      "again (you allowed it earlier in this session)",
			      10000),
		  "%s", h_term_screen(&a.tmux, "customer", true));
	cr_assert_eq(screen_count(&a, question), 1, "asked again: %s",
		     h_term_screen(&a.tmux, "customer", true));
	h_proc_stop(&fwd, SIGTERM);
	close(lfd);
	attended_stop(&a);
}

/*
 * The technician's command stops while the customer reads the prompt:
 * the next command on the ticket waits for the same answer (the customer
 * is not asked twice) and runs once it comes.
 */
Test(consent, a_stopped_command_leaves_the_answer_to_the_next, .timeout = 90)
{
	const char *cmd[] = {"echo", "granted", NULL};
	struct attended a;

	if (!h_tmux_available())
		cr_skip_test("tmux is needed for a terminal to answer in");
	attended_start(&a, cmd);
	h_proc_kill(&a.ex);
	h_console_start(&a.ex, "waiting-again", "exec", a.ticket, "--", "echo",
			"granted", NULL);
	/* The second command is waiting, not refused. */
	cr_assert_eq(h_proc_wait(&a.ex, 1500), -1,
		     "the second command did not wait: %d", a.ex.status);
	answer(&a, "y");
	expect_waiting_exec_ran(&a);
	cr_assert_eq(screen_count(&a, "Allow? [y/N"), 1,
		     "the customer was asked again: %s",
		     h_term_screen(&a.tmux, "customer", true));
	expect_consent_all(a.ticket);
	attended_stop(&a);
}
