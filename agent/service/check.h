/*
 * Health checks of an enrolled agent (check.c): each [check NAME] section
 * of the config becomes a check run on a timer, a built-in on the thread
 * pool or a plugin as a child process, and each result goes through the
 * Nagios SOFT/HARD state machine before it is handed on as the check
 * message of docs/protocol.md.  Also "tether-agent check".
 */
#ifndef TETHER_AGENT_SERVICE_CHECK_H
#define TETHER_AGENT_SERVICE_CHECK_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include <tether/ctrl.h>

#include "service/config.h"
#include "service/range.h"

struct agent_checks;

/*
 * A finished check run as the check message carries it, owning its
 * strings and perfdata (msg points into them); seq is 0 until the
 * results queue numbers it.
 */
struct agent_result {
	struct tether_ctrl_check msg;
	char *check;
	char *output;
	struct agent_perfdata perf;
};

/* Frees r and what it owns.  NULL is fine. */
void agent_result_free(struct agent_result *r);

/* A finished run, handed to the callee (who frees it). */
typedef void (*agent_check_result_cb)(void *arg, struct agent_result *r);

/*
 * Parses every [check] section of cfg (unknown keys, bad ranges, missing
 * plugins are errors: "FILE:LINE: what" in err) and, unless dry_run,
 * schedules them on loop: the first run of each within its interval
 * (spread), then every interval, or every retry_interval while SOFT.
 * cfg must outlive the checks.
 */
int agent_checks_new(uv_loop_t *loop, const struct agent_config *cfg,
		     agent_check_result_cb cb, void *arg, bool dry_run,
		     struct agent_checks **out, char *err, size_t errlen);
/* How many checks were configured. */
size_t agent_checks_count(const struct agent_checks *c);
/* Runs every check once now (tether-agent check). */
void agent_checks_run_all(struct agent_checks *c);
/* Stops timers and kills running plugins; frees once handles are closed. */
void agent_checks_free(struct agent_checks *c);

/* A check's place in the SOFT/HARD state machine. */
struct agent_check_status {
	bool started; /* a result was seen */
	enum tether_check_state state;
	bool hard;
	unsigned attempt;
};

/* Moves s on by one result, as Nagios does with max_attempts "retries". */
void agent_check_advance(struct agent_check_status *s,
			 enum tether_check_state next, unsigned max_attempts);
/*
 * tether-agent check [--config FILE] [--json] (argv[1] is "check"): the
 * exit status, the worst state, or 2 for a bad config.
 */
int agent_check_main(int argc, char **argv);

#endif /* TETHER_AGENT_SERVICE_CHECK_H */
