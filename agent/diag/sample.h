/*
 * The activity sample of a collection: counters read twice,
 * AGENT_DIAG_SAMPLE_MS apart (sys.c reads the CPU and swap counters,
 * proc.c every process's CPU time), and turned into rates by the cpu,
 * memory and processes sections.
 */
#ifndef TETHER_AGENT_DIAG_SAMPLE_H
#define TETHER_AGENT_DIAG_SAMPLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How long CPU, swap and process activity are sampled. */
#define AGENT_DIAG_SAMPLE_MS 200

/* CPU time of one process, from /proc/PID/stat. */
struct agent_diag_pticks {
	int pid;
	uint64_t ticks; /* utime + stime */
	uint64_t rss;	/* pages */
};

struct agent_diag_snap {
	uint64_t ms; /* CLOCK_MONOTONIC */
	bool cpu_ok;
	uint64_t cpu_total; /* jiffies */
	uint64_t cpu_idle;  /* idle + iowait */
	bool vm_ok;
	uint64_t pswpin; /* pages */
	uint64_t pswpout;
	struct agent_diag_pticks *procs; /* sorted by pid; owned */
	size_t nprocs;
};

#endif /* TETHER_AGENT_DIAG_SAMPLE_H */
