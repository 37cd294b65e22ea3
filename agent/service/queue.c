/*
 * The enrolled agent's check results on their way to the relay: a ring of
 * at most TETHER_CHECK_QUEUE_MAX messages, each numbered when it is made
 * and kept until the relay's cumulative check_ack covers it, so a relay
 * that goes away for a while loses nothing but what the bound forces out
 * (docs/protocol.md, "Enrolled agents").
 */
#include <assert.h>

#include <tether/alloc.h>

#include "agent.h"

struct agent_queue {
	json_t **ring;
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

/* Forgets the oldest message. */
static void pop_oldest(struct agent_queue *q)
{
	json_decref(q->ring[q->head]);
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

static json_int_t dropped_of(const json_t *msg)
{
	return json_integer_value(json_object_get(msg, "dropped"));
}

/*
 * Takes the oldest out; its count (and the gap it carried itself) goes to
 * the next oldest, or is returned when none is left.
 */
static json_int_t drop_oldest(struct agent_queue *q)
{
	json_int_t gap = 1 + dropped_of(q->ring[q->head]);

	pop_oldest(q);
	if (q->n == 0)
		return gap;
	json_object_set_new(q->ring[q->head], "dropped",
			    json_integer(gap + dropped_of(q->ring[q->head])));
	return 0;
}

int64_t agent_queue_push(struct agent_queue *q, json_t *msg)
{
	int64_t seq = q->next_seq++;
	json_int_t gap = 0;

	if (q->n == q->cap)
		gap = drop_oldest(q);
	if (gap > 0)
		json_object_set_new(msg, "dropped", json_integer(gap));
	json_object_set_new(msg, "seq", json_integer(seq));
	q->ring[(q->head + q->n) % q->cap] = msg;
	q->n++;
	return seq;
}

void agent_queue_ack(struct agent_queue *q, int64_t seq)
{
	while (q->n > 0 && json_integer_value(
			       json_object_get(q->ring[q->head], "seq")) <= seq)
		pop_oldest(q);
}

void agent_queue_renumber(struct agent_queue *q, int64_t first)
{
	size_t i;

	for (i = 0; i < q->n; i++)
		json_object_set_new(q->ring[(q->head + i) % q->cap], "seq",
				    json_integer(first + (int64_t)i));
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

json_t *agent_queue_at(const struct agent_queue *q, size_t i)
{
	if (i >= q->n)
		return NULL;
	return q->ring[(q->head + i) % q->cap];
}
