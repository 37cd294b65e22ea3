/*
 * The results queue (queue.h): a ring of at most cap results, so that a
 * relay that goes away for a while loses nothing but what the bound
 * forces out.
 */
#include <assert.h>

#include <tether/alloc.h>

#include "service/check.h"
#include "service/queue.h"

struct agent_queue {
	struct agent_result **ring;
	size_t cap;
	size_t head; /* index of the oldest */
	size_t n;
	int64_t next_seq;
};

struct agent_queue *agent_queue_new(size_t cap)
{
	struct agent_queue *q;

	assert(cap > 0);
	q = tether_calloc(1, sizeof(*q));
	if (q == NULL)
		return NULL;
	q->ring = tether_calloc(cap, sizeof(*q->ring));
	if (q->ring == NULL) {
		tether_free(q);
		return NULL;
	}
	q->cap = cap;
	q->next_seq = 1;
	return q;
}

static struct agent_result *at(const struct agent_queue *q, size_t i)
{
	return q->ring[(q->head + i) % q->cap];
}

/* Forgets the oldest result. */
static void pop_oldest(struct agent_queue *q)
{
	agent_result_free(q->ring[q->head]);
	q->ring[q->head] = NULL;
	q->head = (q->head + 1) % q->cap;
	q->n--;
}

void agent_queue_free(struct agent_queue *q)
{
	if (q == NULL)
		return;
	while (q->n > 0)
		pop_oldest(q);
	tether_free(q->ring);
	tether_free(q);
}

/*
 * Takes the oldest out; its count (and the gap it carried itself) goes to
 * the next oldest, or is returned when none is left.
 */
static int64_t drop_oldest(struct agent_queue *q)
{
	int64_t gap = 1 + at(q, 0)->msg.dropped;

	pop_oldest(q);
	if (q->n == 0)
		return gap;
	at(q, 0)->msg.dropped += gap;
	return 0;
}

int64_t agent_queue_push(struct agent_queue *q, struct agent_result *r)
{
	int64_t seq = q->next_seq++;
	int64_t gap = 0;

	if (q->n == q->cap)
		gap = drop_oldest(q);
	r->msg.dropped = gap;
	r->msg.seq = seq;
	q->ring[(q->head + q->n) % q->cap] = r;
	q->n++;
	return seq;
}

void agent_queue_ack(struct agent_queue *q, int64_t seq)
{
	while (q->n > 0 && at(q, 0)->msg.seq <= seq)
		pop_oldest(q);
}

void agent_queue_renumber(struct agent_queue *q, int64_t first)
{
	size_t i;

	for (i = 0; i < q->n; i++)
		at(q, i)->msg.seq = first + (int64_t)i;
	q->next_seq = first + (int64_t)q->n;
}

int64_t agent_queue_next_seq(const struct agent_queue *q)
{
	return q->next_seq;
}

size_t agent_queue_len(const struct agent_queue *q)
{
	return q->n;
}

const struct tether_ctrl_check *agent_queue_at(const struct agent_queue *q,
					       size_t i)
{
	if (i >= q->n)
		return NULL;
	return &at(q, i)->msg;
}
