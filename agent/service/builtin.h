/*
 * The built-in checks (builtin.c, docs/agent-config.md): disk, inodes,
 * memory, swap, load, process, tcp_port, tls_cert_expiry, file_age and
 * systemd_unit.
 */
#ifndef TETHER_AGENT_SERVICE_BUILTIN_H
#define TETHER_AGENT_SERVICE_BUILTIN_H

#include <stdbool.h>
#include <stdint.h>

#include <tether/id.h>

#include "service/plugin.h"
#include "service/range.h"
#include "service/result.h"
#include "session/cli.h"

enum agent_builtin_kind {
	AGENT_BUILTIN_DISK,
	AGENT_BUILTIN_INODES,
	AGENT_BUILTIN_MEMORY,
	AGENT_BUILTIN_SWAP,
	AGENT_BUILTIN_LOAD,
	AGENT_BUILTIN_PROCESS,
	AGENT_BUILTIN_TCP_PORT,
	AGENT_BUILTIN_TLS_CERT_EXPIRY,
	AGENT_BUILTIN_FILE_AGE,
	AGENT_BUILTIN_SYSTEMD_UNIT,
};

/* A built-in's parameters: a plain value, copied to the thread pool. */
struct agent_builtin {
	enum agent_builtin_kind kind;
	char path[1024]; /* disk, inodes, file_age */
	char host[AGENT_HOST_MAX];
	uint16_t port;
	char servername[AGENT_HOST_MAX];
	char name[TETHER_ID_NAME_MAX]; /* process: exact comm */
	char match[256];	       /* process: cmdline substring */
	char unit[256];		       /* systemd_unit */
	bool per_cpu;		       /* load */
	struct agent_range warn;
	struct agent_range crit;
	unsigned timeout_ms;
};

/* Sets up b for the built-in called name; TETHER_ERR_NOT_FOUND if none. */
int agent_builtin_init(struct agent_builtin *b, const char *name);
/* One parameter key = value; TETHER_ERR_INVALID for a key it lacks. */
int agent_builtin_set(struct agent_builtin *b, const char *key,
		      const char *value, const char **why);
/* After the keys: defaults and required keys; why on error. */
int agent_builtin_finish(struct agent_builtin *b, const char **why);
/*
 * Runs b now and blocks (up to about its timeout): for the thread pool.
 * Not for AGENT_BUILTIN_SYSTEMD_UNIT, which runs systemctl as a plugin.
 */
void agent_builtin_run(const struct agent_builtin *b,
		       struct agent_check_result *res);
/* systemd_unit: whether systemd runs here, the command and its reading. */
bool agent_builtin_have_systemd(void);
void agent_builtin_systemd_argv(const struct agent_builtin *b,
				const char *argv[6]);
void agent_builtin_systemd_result(const struct agent_builtin *b,
				  const struct agent_plugin_end *e,
				  struct agent_check_result *res);

#endif /* TETHER_AGENT_SERVICE_BUILTIN_H */
