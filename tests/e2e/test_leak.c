/*
 * End-to-end: the harness sees what the programs leak.  With test hooks,
 * TETHER_TEST_LEAK=1 makes tether-agent lose 4242 bytes (agent/main.c);
 * in a LeakSanitizer build the report must reach the test, both when the
 * test stops the agent itself and when h_teardown() stops it.  The
 * second one fails by design: tests/meson.build runs suite leak_teardown
 * on its own with should_fail: true.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "harness.h"

TestSuite(leak, .init = h_setup, .fini = h_teardown);
TestSuite(leak_teardown, .init = h_setup, .fini = h_teardown);

/* Skips unless the agent can leak on purpose and someone would notice. */
static void need_leak_detection(void)
{
	const char *why = NULL;

	if (!h_leak_detect())
		why = "needs a build with LeakSanitizer "
		      "(-Db_sanitize=address,undefined)";
	else if (!h_test_hooks())
		why = "needs a build with -Dtest_hooks=true (TETHER_TEST_LEAK)";
	if (why == NULL)
		return;
	/* A skipped test does not get its .fini. */
	h_teardown();
	cr_skip_test("%s", why);
}

static void leaking_session(struct h_session *s)
{
	static const char *const env[] = {"TETHER_TEST_LEAK=1", NULL};
	struct h_agent_opts o = {.env = env};

	h_session_start_ex(s, "a leaking agent", NULL, &o);
}

Test(leak, agent_leak_fails_the_stop, .timeout = 60)
{
	struct h_session s;
	char *why;

	need_leak_detection();
	leaking_session(&s);
	why = h_proc_stop_why(&s.agent, SIGTERM);
	cr_assert_not_null(why, "the agent lost 4242 bytes and its stop was "
				"called clean");
	cr_assert(strstr(why, "ERROR: LeakSanitizer: detected memory leaks"),
		  "no LeakSanitizer report: %s", why);
	cr_assert(strstr(why, "Direct leak of 4242 byte(s) in 1 object(s)"),
		  "the report is not about the 4242 bytes: %s", why);
	free(why);
	/* Consumed: nothing is left for h_teardown() to find. */
	cr_assert_null(h_sanitizer_reports(0, false));
	h_relay_stop(&s.relay);
}

/* The same agent without the hook stops clean: the check is no fluke. */
Test(leak, clean_agent_stops_clean, .timeout = 60)
{
	struct h_session s;
	char *why;

	h_session_start(&s, "a tidy agent", NULL);
	why = h_proc_stop_why(&s.agent, SIGTERM);
	cr_assert_null(why, "a clean agent's stop: %s", why);
	h_relay_stop(&s.relay);
}

/*
 * Left running, as most tests leave their agents: h_teardown() stops it
 * and must fail this test on the report.
 */
Test(leak_teardown, agent_leak_fails_teardown, .timeout = 60)
{
	struct h_session s;

	need_leak_detection();
	leaking_session(&s);
}
