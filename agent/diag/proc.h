/*
 * The sections about what runs (proc.c): processes, systemd and logs; as
 * in sys.h, each a new reference, NULL only without memory.
 */
#ifndef TETHER_AGENT_DIAG_PROC_H
#define TETHER_AGENT_DIAG_PROC_H

#include <jansson.h>

#include "diag/sample.h"

/* Fills s->procs (NULL, 0 if /proc cannot be listed). */
void agent_diag_snap_procs(struct agent_diag_snap *s);
/* Frees what the snaps put in s. */
void agent_diag_snap_free(struct agent_diag_snap *s);
json_t *agent_diag_processes(const struct agent_diag_snap *a,
			     const struct agent_diag_snap *b);
/* {pid, user, name, cmdline (redacted), rss}; NULL if pid is gone. */
json_t *agent_diag_process(int pid);
json_t *agent_diag_systemd(void);
json_t *agent_diag_logs(void);

#endif /* TETHER_AGENT_DIAG_PROC_H */
