/*
 * End-to-end: the relay never sees what flows through a session.  A test
 * build of the relay dumps every plaintext byte it reads after TLS
 * (TETHER_PLAINTEXT_DUMP); random markers sent as a command argument, as
 * stdin and back as stdout must round-trip, yet appear nowhere the relay
 * can write: the dump, its database (and WAL) and its logs.  The ticket
 * title, which the relay legitimately handles, must be in the dump: the
 * positive control that proves the dump works.
 */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include <tether/crypto.h>

#include "harness.h"

TestSuite(plaintext, .init = h_setup, .fini = h_teardown);

/* Hex of 16 random bytes: cannot occur by chance. */
static void marker(char hex[33])
{
	unsigned char b[16];

	cr_assert(tether_random(b, sizeof(b)) == 0, "tether_random");
	cr_assert(tether_hex_encode(b, sizeof(b), hex, 33) == 0, "hex");
}

static void expect_absent(const char *path, const char *m, const char *what)
{
	cr_assert(!h_file_contains(path, m, strlen(m)),
		  "%s found in %s (%s): the relay saw session plaintext", what,
		  path, "marker");
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

Test(plaintext, relay_sees_no_content, .timeout = 120)
{
	char dump[H_PATH_MAX], env[H_PATH_MAX + 32], title[64], script[128];
	char m_in[33], m_arg[33], input[40], want[128];
	const char *envv[] = { env, NULL };
	const char *cmd[] = { "sh", "-c", script, NULL };
	const char *markers[] = { m_in, m_arg, NULL };
	struct h_opts o = { .stdin_data = input };
	struct h_session s;
	struct h_res res;
	char tm[33];

	if (!h_test_hooks()) {
		/* A skipped test does not get its .fini. */
		h_teardown();
		cr_skip_test("needs a build with -Dtest_hooks=true "
			     "(TETHER_PLAINTEXT_DUMP)");
	}
	h_path(dump, sizeof(dump), "plaintext.dump");
	snprintf(env, sizeof(env), "TETHER_PLAINTEXT_DUMP=%s", dump);
	marker(tm);
	snprintf(title, sizeof(title), "title-%s", tm);
	marker(m_in);
	marker(m_arg);
	snprintf(input, sizeof(input), "%s\n", m_in);
	o.stdin_len = strlen(input);
	snprintf(script, sizeof(script),
		 "read x; echo \"$x\"; echo MARKER-ARG-%s", m_arg);
	snprintf(want, sizeof(want), "%s\nMARKER-ARG-%s\n", m_in, m_arg);

	h_session_start(&s, title, envv);
	h_exec(&res, &o, s.ticket, cmd);
	h_expect(&res, 0, want, "", "tether exec -- sh -c 'read x; ...'");
	h_res_free(&res);

	cr_assert(h_file_contains(dump, title, strlen(title)),
		  "the dump %s lacks the ticket title: the hook is not "
		  "working, so the check below would prove nothing",
		  dump);
	expect_nowhere(&s.relay, dump, markers);
	/* Shutdown checkpoints the WAL into the database: look again. */
	h_relay_stop(&s.relay);
	expect_nowhere(&s.relay, dump, markers);
}
