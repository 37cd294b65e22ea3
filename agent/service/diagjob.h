/*
 * An enrolled agent's answers to the relay's diag_request (diagjob.c):
 * the collector (tether-agent diag --json) run as a child, bounded in
 * time, output and number, its bundle packed for the wire.
 */
#ifndef TETHER_AGENT_SERVICE_DIAGJOB_H
#define TETHER_AGENT_SERVICE_DIAGJOB_H

#include <stdint.h>

#include <uv.h>

struct agent_diagjobs;

/*
 * The answer for ticket: the packed bundle, or why there is none (one of
 * them NULL); both valid during the call.
 */
typedef void (*agent_diagjob_cb)(void *arg, int64_t ticket, const char *bundle,
				 const char *error);

/* No jobs yet, on loop; NULL without memory. */
struct agent_diagjobs *agent_diagjobs_new(uv_loop_t *loop, agent_diagjob_cb cb,
					  void *arg);
/*
 * Starts collecting for ticket; a refusal (too many running, no memory,
 * no child) is answered at once through cb.
 */
void agent_diagjobs_request(struct agent_diagjobs *d, int64_t ticket);
/*
 * Kills what runs, answers nothing more, and frees d once every handle
 * is closed.  NULL is fine.
 */
void agent_diagjobs_free(struct agent_diagjobs *d);

#endif /* TETHER_AGENT_SERVICE_DIAGJOB_H */
