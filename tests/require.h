/*
 * Tools that the tests use and tether does not (tmux, sshd, promtool, the
 * monitoring plugins).  Where one is missing its tests skip on a
 * developer's machine, but fail where the tools must be there: in CI
 * (CI set, as CI services set it) or with TETHER_REQUIRE_TOOLS=1, which
 * scripts/test.sh exports.  Otherwise a broken install-deps.sh would
 * quietly turn those tests into skips.
 */
#ifndef TETHER_TESTS_REQUIRE_H
#define TETHER_TESTS_REQUIRE_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static inline bool test_env_on(const char *var)
{
	const char *v = getenv(var);

	return v != NULL && v[0] != '\0' && strcmp(v, "0") != 0 &&
	       strcmp(v, "false") != 0;
}

/* True if a missing tool is a failure here rather than a skip. */
static inline bool test_tools_required(void)
{
	return test_env_on("CI") || test_env_on("TETHER_REQUIRE_TOOLS");
}

#endif /* TETHER_TESTS_REQUIRE_H */
