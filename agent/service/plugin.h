/*
 * External check plugins (Nagios plugin API, plugin.c): the command line
 * split without a shell, the child in its own process group with its
 * output captured and capped, killed at its timeout, and its exit code
 * and first line read the way Nagios reads them.
 */
#ifndef TETHER_AGENT_SERVICE_PLUGIN_H
#define TETHER_AGENT_SERVICE_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "service/result.h"

/* Plugin output kept per stream; the rest is read and dropped. */
#define AGENT_PLUGIN_OUTPUT_MAX (8u * 1024)

/*
 * Splits a command line without a shell: blanks separate words, '...'
 * is literal, "..." and a backslash outside quotes escape.  *argv is
 * NULL-terminated; free with agent_argv_free().  why on error.
 */
int agent_command_split(const char *s, char ***argv, const char **why);
void agent_argv_free(char **argv);
/*
 * A plugin's output (stdout as read, capped) into res->output and
 * res->perf: the first line is the status, perfdata follows the first '|'
 * of it and the first '|' of any later line (docs/agent-config.md).
 */
int agent_plugin_parse_output(const char *out, size_t len,
			      struct agent_check_result *res);

/* How a plugin run ended. */
struct agent_plugin_end {
	bool timed_out; /* killed at the timeout */
	int how;	/* 0 exited with value, 1 killed by signal value */
	int value;
	const char *out; /* stdout, at most AGENT_PLUGIN_OUTPUT_MAX */
	size_t outlen;
	const char *err; /* stderr, likewise */
	size_t errlen;
};

struct agent_plugin;
typedef void (*agent_plugin_cb)(void *arg, const struct agent_plugin_end *e);

/*
 * Spawns argv[0] (an absolute path, no shell) in its own process group,
 * stdin /dev/null, capturing stdout and stderr.  At timeout_ms the group
 * is killed with SIGKILL.  cb is called once, when it has exited and its
 * pipes are at EOF (or at the timeout); the plugin frees itself after.
 * A negative UV_E* if it could not be spawned (no cb then).
 */
int agent_plugin_start(uv_loop_t *loop, char *const *argv, unsigned timeout_ms,
		       agent_plugin_cb cb, void *arg,
		       struct agent_plugin **out);
/* Kills the process group; no cb afterwards.  Frees itself. */
void agent_plugin_cancel(struct agent_plugin *p);
/* The Nagios reading of a plugin's end: exit code 0..3 and its output. */
void agent_plugin_result(const struct agent_plugin_end *e, unsigned timeout_ms,
			 struct agent_check_result *res);

#endif /* TETHER_AGENT_SERVICE_PLUGIN_H */
