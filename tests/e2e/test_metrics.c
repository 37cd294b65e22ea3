/*
 * End-to-end: the relay's HTTP side door.  /metrics must follow the
 * Prometheus text format and count what happened (a session, forwarded
 * bytes, a bad token); /healthz answers; malformed, oversized, slow and
 * wrong-method requests get a 4xx and the relay keeps serving everyone.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"

TestSuite(metrics, .init = h_setup, .fini = h_teardown);

struct metered {
	struct h_relay relay;
	int metrics_port;
};

/* tether-relay run with an ephemeral metrics port, read from its stdout. */
static void start(struct metered *m)
{
	const char *argv[] = {h_relay_bin(),	  "run",	 "--data",
			      m->relay.data,	  "--listen",	 "127.0.0.1:0",
			      "--metrics-listen", "127.0.0.1:0", NULL};
	char *out, *p;

	h_relay_init(&m->relay, "relay");
	h_proc_start(&m->relay.proc, "relay", argv, NULL);
	cr_assert(h_proc_wait_output(&m->relay.proc, "/metrics\n", 10000),
		  "relay printed no metrics address");
	out = h_proc_output(&m->relay.proc);
	p = strstr(out, "listening on 127.0.0.1:");
	cr_assert(p != NULL, "no listening line: %s", out);
	m->relay.port =
	    (int)h_number(p + strlen("listening on 127.0.0.1:"), NULL);
	snprintf(m->relay.addr, sizeof(m->relay.addr), "127.0.0.1:%d",
		 m->relay.port);
	p = strstr(out, "metrics on http://127.0.0.1:");
	cr_assert(p != NULL, "no metrics line: %s", out);
	m->metrics_port =
	    (int)h_number(p + strlen("metrics on http://127.0.0.1:"), NULL);
	free(out);
	cr_assert(m->relay.port > 0 && m->metrics_port > 0);
}

/*
 * Sends req (len bytes) to the metrics port and reads the answer until the
 * relay closes; returns the HTTP status and the whole answer in *resp.
 */
static int http(const struct metered *m, const char *req, size_t len,
		char **resp)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	size_t cap = 1 << 20, n = 0;
	struct pollfd pfd;
	char *buf = malloc(cap + 1);
	int fd, status = 0;
	ssize_t r;

	cr_assert(buf != NULL);
	sa.sin_port = htons((uint16_t)m->metrics_port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert(fd >= 0 &&
		      connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0,
		  "cannot connect to the metrics port");
	if (len > 0)
		cr_assert(write(fd, req, len) == (ssize_t)len);
	pfd.fd = fd;
	pfd.events = POLLIN;
	while (n < cap && poll(&pfd, 1, 10000) == 1) {
		r = read(fd, buf + n, cap - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = '\0';
	if (strncmp(buf, "HTTP/1.1 ", 9) == 0)
		status = (int)h_number(buf + 9, NULL);
	*resp = buf;
	return status;
}

static int get(const struct metered *m, const char *path, char **resp)
{
	char req[2048];
	int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n\r\n",
			 path);

	return http(m, req, (size_t)n, resp);
}

/* Every sample line is NAME{labels} VALUE, after a TYPE line for NAME. */
static void expect_exposition_format(const char *body)
{
	regex_t sample, type;
	char *copy = strdup(body), *line, *save = NULL;
	char typed[4096] = " ";
	size_t used = 1;

	cr_assert_eq(regcomp(&sample,
			     "^([a-z_]+)(\\{[a-z_]+=\"[a-z_]+\""
			     "(,[a-z_]+=\"[a-z_]+\")*\\})? [0-9]+$",
			     REG_EXTENDED),
		     0);
	cr_assert_eq(
	    regcomp(&type, "^# TYPE ([a-z_]+) (gauge|counter)$", REG_EXTENDED),
	    0);
	for (line = strtok_r(copy, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		regmatch_t mt[2];
		char name[128];

		if (strncmp(line, "# HELP ", 7) == 0)
			continue;
		if (regexec(&type, line, 2, mt, 0) == 0) {
			used += (size_t)snprintf(
			    typed + used, sizeof(typed) - used, "%.*s ",
			    (int)(mt[1].rm_eo - mt[1].rm_so),
			    line + mt[1].rm_so);
			cr_assert(used < sizeof(typed));
			continue;
		}
		cr_assert_eq(regexec(&sample, line, 2, mt, 0), 0,
			     "not a sample line: '%s'", line);
		snprintf(name, sizeof(name), " %.*s ",
			 (int)(mt[1].rm_eo - mt[1].rm_so), line + mt[1].rm_so);
		cr_assert(strstr(typed, name) != NULL,
			  "sample before its TYPE line: '%s'", line);
	}
	regfree(&sample);
	regfree(&type);
	free(copy);
}

/* The value of the sample line that starts with name (labels included). */
/*
 * promtool (Debian's prometheus package) lints the exposition.  Missing
 * promtool skips the check on a developer's machine but fails where the
 * tools are required (h_tool_missing): scripts/install-deps.sh installs it.
 */
static void expect_promtool_accepts(const char *exposition)
{
	const char *argv[] = {"promtool", "check", "metrics", NULL};
	struct h_opts o = {.stdin_data = exposition,
			   .stdin_len = strlen(exposition)};
	struct h_res res;

	if (access("/usr/bin/promtool", X_OK) != 0) {
		h_tool_missing("promtool is not installed (apt-get install "
			       "prometheus)");
		cr_log_warn("promtool not installed: format checked by regex "
			    "only");
		return;
	}
	h_run(&res, &o, argv);
	cr_assert_eq(res.status, 0, "promtool check metrics: %s%s", res.out,
		     res.err);
	h_res_free(&res);
}

static long long sample(const char *body, const char *name)
{
	char key[256];
	const char *p;

	snprintf(key, sizeof(key), "\n%s", name);
	p = strstr(body, key);
	cr_assert(p != NULL, "metric %s missing in:\n%s", name, body);
	return h_number(p + strlen(key), NULL);
}

Test(metrics, counts_a_session, .timeout = 120)
{
	const char *cmd[] = {"echo", "metered", NULL};
	struct h_opts bad = {.env = (const char *const[]){
				 "XDG_CONFIG_HOME=/nonexistent-tether", NULL}};
	char ticket[H_ID_MAX], code[H_CODE_MAX], *body;
	struct h_proc agent;
	struct metered m;
	struct h_res res;
	char fake[256];

	start(&m);
	h_login(&m.relay);
	h_ticket_new("metered", ticket, sizeof(ticket));
	h_invite(ticket, NULL, code, sizeof(code));
	h_agent_start(&agent, &m.relay, code, NULL);
	h_wait_joined(ticket, 15000, &agent);
	h_exec(&res, NULL, ticket, cmd);
	h_expect(&res, 0, "metered\n", "", "tether exec -- echo");
	h_res_free(&res);
	/* A login with a made-up token must show as an auth failure. */
	snprintf(fake, sizeof(fake), "tt_1_%064d", 0);
	h_console(&res, &bad, "login", m.relay.addr, "--token", fake,
		  "--fingerprint", m.relay.fingerprint, NULL);
	h_expect_fail(&res, 255, "tether: relay refused: invalid token",
		      "tether login with a made-up token");
	h_res_free(&res);

	cr_assert_eq(get(&m, "/metrics", &body), 200, "%s", body);
	cr_assert(strstr(body, "Content-Type: text/plain; version=0.0.4"));
	expect_exposition_format(strstr(body, "\r\n\r\n") + 4);
	expect_promtool_accepts(strstr(body, "\r\n\r\n") + 4);
	cr_assert_eq(sample(body, "tether_relay_connections{kind=\"agent\"} "),
		     1);
	cr_assert_eq(sample(body, "tether_relay_agents_connected "), 1);
	cr_assert_eq(sample(body, "tether_relay_sessions{state=\"paired\"} "),
		     1);
	cr_assert_eq(sample(body, "tether_relay_tickets{status=\"open\","
				  "source=\"manual\"} "),
		     1);
	cr_assert_geq(sample(body, "tether_relay_handshakes_total "), 5);
	cr_assert_eq(sample(body, "tether_relay_auth_failures_total "), 1);
	cr_assert_gt(sample(body, "tether_relay_forwarded_bytes_total "), 0);
	cr_assert_gt(sample(body, "tether_relay_forwarded_frames_total "), 0);
	free(body);
	cr_assert_eq(get(&m, "/healthz", &body), 200, "%s", body);
	free(body);
	h_proc_kill(&agent);
	h_relay_stop(&m.relay);
}

/* Enrolled agents and their checks, once one check has gone CRITICAL. */
Test(metrics, counts_enrolled_agents_and_checks, .timeout = 120)
{
	char conf[H_PATH_MAX], flag[H_PATH_MAX], checks[2 * H_PATH_MAX + 256];
	char *body = NULL;
	struct h_proc agent;
	struct metered m;
	int waited;

	start(&m);
	h_login(&m.relay);
	h_path(conf, sizeof(conf), "agent.conf");
	h_path(flag, sizeof(flag), "flag");
	h_append_file(flag, "x");
	h_enroll(&m.relay, "metered-01", conf);
	/* One check OK (the file is there), one CRITICAL (it is not). */
	snprintf(checks, sizeof(checks),
		 "\n[check here]\nbuiltin = file_age\npath = %s\n"
		 "interval = 1\nretries = 1\n"
		 "\n[check gone]\nbuiltin = file_age\npath = %s.missing\n"
		 "interval = 1\nretries = 1\n",
		 flag, flag);
	h_append_file(conf, checks);
	h_agent_run(&agent, "agent", conf);
	for (waited = 0; waited < 20000; waited += 250) {
		free(body);
		cr_assert_eq(get(&m, "/metrics", &body), 200, "%s", body);
		if (strstr(body, "tether_relay_checks{state=\"critical\"} 1") &&
		    strstr(body, "tether_relay_checks{state=\"ok\"} 1") &&
		    strstr(body, "source=\"health\"} 1"))
			break;
		usleep(250000);
	}
	expect_exposition_format(strstr(body, "\r\n\r\n") + 4);
	expect_promtool_accepts(strstr(body, "\r\n\r\n") + 4);
	cr_assert_eq(sample(body, "tether_relay_checks{state=\"ok\"} "), 1);
	cr_assert_eq(sample(body, "tether_relay_checks{state=\"critical\"} "),
		     1);
	cr_assert_eq(sample(body, "tether_relay_enrolled_agents "), 1);
	cr_assert_eq(sample(body, "tether_relay_enrolled_agents_connected "),
		     1);
	cr_assert_eq(sample(body, "tether_relay_tickets{status=\"open\","
				  "source=\"health\"} "),
		     1);
	free(body);
	h_proc_signal(&agent, SIGTERM);
	cr_assert_eq(h_proc_wait(&agent, 5000), 0);
	/* The relay notices the agent left. */
	for (waited = 0, body = NULL; waited < 5000; waited += 100) {
		free(body);
		cr_assert_eq(get(&m, "/metrics", &body), 200, "%s", body);
		if (sample(body, "tether_relay_enrolled_agents_connected ") ==
		    0)
			break;
		usleep(100000);
	}
	cr_assert_eq(sample(body, "tether_relay_enrolled_agents_connected "),
		     0);
	free(body);
	h_relay_stop(&m.relay);
}

Test(metrics, bad_requests_get_4xx, .timeout = 120)
{
	static const char big_header[] = "GET /metrics HTTP/1.1\r\nX-Pad: ";
	static const char post[] =
	    "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
	static const char garbage[] = "\x16\x03\x01garbage\r\n\r\n";
	char url[1200], *req, *body;
	struct metered m;
	size_t n;

	start(&m);
	cr_assert_eq(get(&m, "/nope", &body), 404, "%s", body);
	free(body);
	cr_assert_eq(http(&m, post, sizeof(post) - 1, &body), 405, "%s", body);
	free(body);
	cr_assert_eq(http(&m, garbage, sizeof(garbage) - 1, &body), 400, "%s",
		     body);
	free(body);
	memset(url, 'a', sizeof(url) - 1);
	url[0] = '/';
	url[sizeof(url) - 1] = '\0';
	cr_assert_eq(get(&m, url, &body), 414, "%s", body);
	free(body);
	/* 64 KiB of one header: refused, not buffered. */
	n = strlen(big_header) + 65536;
	req = malloc(n);
	cr_assert(req != NULL);
	memcpy(req, big_header, strlen(big_header));
	memset(req + strlen(big_header), 'x', 65536);
	cr_assert_geq(http(&m, req, n, &body), 400, "%s", body);
	free(body);
	free(req);
	/* A client that says nothing is answered 408 after the timeout. */
	cr_assert_eq(http(&m, "", 0, &body), 408, "%s", body);
	free(body);
	cr_assert_eq(get(&m, "/metrics", &body), 200, "%s", body);
	free(body);
	h_login(&m.relay);
	h_relay_stop(&m.relay);
}
