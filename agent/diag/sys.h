/*
 * The sections about the machine itself (sys.c): os, uptime, cpu,
 * memory, disks, mounts, packages and time.  Each returns a new
 * reference, a section or {"error": why}; NULL only without memory.
 */
#ifndef TETHER_AGENT_DIAG_SYS_H
#define TETHER_AGENT_DIAG_SYS_H

#include <jansson.h>

#include "diag/sample.h"

/* The CPU and swap counters of s, and its time. */
void agent_diag_snap_sys(struct agent_diag_snap *s);
json_t *agent_diag_os(void);
json_t *agent_diag_uptime(void);
/* CPU and memory from the counters of a and b, a taken first. */
json_t *agent_diag_cpu(const struct agent_diag_snap *a,
		       const struct agent_diag_snap *b);
json_t *agent_diag_memory(const struct agent_diag_snap *a,
			  const struct agent_diag_snap *b);
json_t *agent_diag_disks(void);
json_t *agent_diag_mounts(void);
json_t *agent_diag_packages(void);
json_t *agent_diag_time(void);

#endif /* TETHER_AGENT_DIAG_SYS_H */
