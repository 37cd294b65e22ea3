/*
 * tether-agent: the program a customer runs to let a technician in
 * (join), and the enrolled machine's service (enroll, run, check), and
 * the diagnostics collector (diag).  Only the choice of command is made
 * here: each lives in its own room (session/join.c, service/enroll.c,
 * service/service.c, service/check.c, diag/diag.c).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tether/alloc.h>
#include <tether/log.h>

#include "diag/diag.h"
#include "diag/text.h"
#include "service/check.h"
#include "service/enroll.h"
#include "service/service.h"
#include "session/join.h"

#ifndef TETHER_VERSION
#define TETHER_VERSION "0.1.0"
#endif

#ifdef TETHER_TEST_HOOKS
/*
 * TETHER_TEST_LEAK=1 loses 4242 bytes on purpose, so that the e2e tests
 * can show that a leak in the agent fails them (tests/e2e/test_leak.c).
 * Lost at start-up: by exit the stack that held the pointer has been
 * reused, so LeakSanitizer cannot find it there and call it reachable.
 */
static void __attribute__((noinline)) test_leak(void)
{
	char *volatile p;

	if (getenv("TETHER_TEST_LEAK") == NULL)
		return;
	p = tether_malloc(4242);
	if (p != NULL)
		memset(p, 0x5a, 4242);
	p = NULL;
}
#else
#define test_leak() ((void)0)
#endif /* TETHER_TEST_HOOKS */

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";

	/*
	 * A file transfer past RLIMIT_FSIZE gets EFBIG ("File too large")
	 * and fails that file, instead of the signal killing the agent.
	 */
	signal(SIGXFSZ, SIG_IGN);
	test_leak();
	tether_log_set_ident(AGENT_PROG);
	tether_log_set_level(TETHER_LOG_WARN);
	if (strcmp(cmd, "enroll") == 0)
		return agent_enroll_main(argc, argv);
	if (strcmp(cmd, "run") == 0)
		return agent_run_main(argc, argv);
	if (strcmp(cmd, "check") == 0)
		return agent_check_main(argc, argv);
	if (strcmp(cmd, "diag") == 0)
		return agent_diag_main(argc, argv);
	if (strcmp(cmd, "--version") == 0) {
		puts(AGENT_PROG " " TETHER_VERSION);
		return 0;
	}
	/* join, and the usage and help, which are mostly about it. */
	return agent_join_main(argc, argv);
}
