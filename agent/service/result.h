/*
 * What one run of a check found, before the SOFT/HARD state machine
 * (check.c) turns it into a check message: filled by plugins (plugin.c)
 * and built-ins (builtin.c).
 */
#ifndef TETHER_AGENT_SERVICE_RESULT_H
#define TETHER_AGENT_SERVICE_RESULT_H

#include <tether/ctrl.h>

/* Longest status line kept from a check, in bytes. */
#define AGENT_CHECK_OUTPUT_MAX TETHER_CTRL_OUTPUT_MAX

struct agent_check_result {
	enum tether_check_state state;
	char output[AGENT_CHECK_OUTPUT_MAX + 1]; /* status line */
	char *perf; /* perfdata text or NULL; tether_free() it */
};

#endif /* TETHER_AGENT_SERVICE_RESULT_H */
