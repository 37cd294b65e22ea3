/*
 * The enrolled agent's check results on their way to the relay: numbered
 * when made and kept until the relay's cumulative check_ack covers them
 * (docs/protocol.md, "Enrolled agents").
 */
#ifndef TETHER_AGENT_SERVICE_QUEUE_H
#define TETHER_AGENT_SERVICE_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include <tether/ctrl.h>

struct agent_queue;
struct agent_result;

/* An empty queue of at most cap results; NULL without memory. */
struct agent_queue *agent_queue_new(size_t cap);
/* Frees the queue and its results.  NULL is fine. */
void agent_queue_free(struct agent_queue *q);
/*
 * Takes r, gives it the next seq and returns that seq.  A full queue
 * drops its oldest result first and adds it (with what that result
 * itself carried) to the "dropped" count of the new oldest, so the relay
 * learns of the gap with the next result sent.
 */
int64_t agent_queue_push(struct agent_queue *q, struct agent_result *r);
/* The relay holds every result up to seq: they leave the queue. */
void agent_queue_ack(struct agent_queue *q, int64_t seq);
/* Renumbers the queued results from first on; the next push follows. */
void agent_queue_renumber(struct agent_queue *q, int64_t first);
/* The seq the next push gets. */
int64_t agent_queue_next_seq(const struct agent_queue *q);
size_t agent_queue_len(const struct agent_queue *q);
/* The i-th oldest queued message (borrowed), NULL past the end. */
const struct tether_ctrl_check *agent_queue_at(const struct agent_queue *q,
					       size_t i);

#endif /* TETHER_AGENT_SERVICE_QUEUE_H */
