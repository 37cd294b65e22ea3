/*
 * Channel routing: which console and agent a channel joins, verbatim
 * forwarding of sealed DATA frames between them with byte counts, and
 * back-pressure (a sender is paused while its destination's queue is over
 * the high-water mark, and resumed when it drains).
 */
#include <stdio.h>
#include <string.h>

#include <tether/alloc.h>
#include <tether/err.h>
#include <tether/log.h>
#include <tether/proto.h>

#include "relay.h"

static struct relay_channel **bucket(struct relay *r, uint32_t id)
{
	return &r->channels[id % RELAY_CHANNEL_BUCKETS];
}

struct relay_channel *relay_channel_new(struct relay *r, enum tether_kind kind,
					struct relay_peer *console,
					struct relay_peer *agent,
					int64_t session_id, int64_t ticket_id)
{
	struct relay_channel *c, **b;

	if (r->next_channel == 0)
		return NULL; /* ids are never reused; 4 billion is enough */
	c = tether_calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->id = r->next_channel++;
	c->kind = kind;
	c->console = console;
	c->agent = agent;
	c->session_id = session_id;
	c->ticket_id = ticket_id;
	c->opened_at = relay_now_ms();
	b = bucket(r, c->id);
	c->next = *b;
	*b = c;
	return c;
}

struct relay_channel *relay_channel_find(struct relay *r, int64_t id)
{
	struct relay_channel *c;

	if (id < 1 || id > UINT32_MAX)
		return NULL;
	for (c = *bucket(r, (uint32_t)id); c != NULL; c = c->next)
		if (c->id == id)
			return c;
	return NULL;
}

static void tell_close(struct relay_peer *p, uint32_t id, const char *reason)
{
	struct tether_ctrl_chan_close m = {.channel = id, .reason = reason};

	relay_send(p, TETHER_CTRL_CHAN_CLOSE, &m);
}

void relay_channel_close(struct relay *r, struct relay_channel *c,
			 const char *reason, bool tell_console, bool tell_agent)
{
	struct relay_channel **pp;

	if (tell_console)
		tell_close(c->console, c->id, reason);
	if (tell_agent)
		tell_close(c->agent, c->id, reason);
	/* Only an opened channel had its channel_open row to pair with. */
	if (c->opened)
		relay_audit(
		    r, "relay", c->ticket_id, c->session_id, "channel_close",
		    json_pack("{s:I, s:s, s:I, s:I, s:I, s:s}", "channel",
			      (json_int_t)c->id, "kind",
			      tether_ctrl_name_of(kind, c->kind),
			      "bytes_to_agent", (json_int_t)c->bytes_c2a,
			      "bytes_to_console", (json_int_t)c->bytes_a2c,
			      "duration_ms",
			      (json_int_t)(relay_now_ms() - c->opened_at),
			      "reason", reason));
	for (pp = bucket(r, c->id); *pp != NULL; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	tether_free(c);
}

void relay_channels_close_peer(struct relay *r, struct relay_peer *p,
			       const char *reason)
{
	struct relay_channel *c, *next;
	unsigned i;

	for (i = 0; i < RELAY_CHANNEL_BUCKETS; i++) {
		for (c = r->channels[i]; c != NULL; c = next) {
			next = c->next;
			if (c->console == p) {
				if (c->open_id == 0 || c->opened)
					relay_channel_close(r, c, reason, false,
							    true);
				else
					c->console = NULL;
			} else if (c->agent == p) {
				if (!c->opened && c->open_id != 0 &&
				    c->console != NULL)
					relay_reply_err(c->console, c->open_id,
							TETHER_CTRL_E_NO_AGENT,
							"the agent went away");
				relay_channel_close(r, c, reason, true, false);
			}
		}
	}
}

void relay_forward(struct relay_peer *from, const struct tether_frame *f)
{
	struct relay *r = from->relay;
	struct relay_channel *c = relay_channel_find(r, f->channel);
	struct relay_peer *to;

	if (c == NULL) {
		/*
		 * Frames may still be in flight on a channel the other side
		 * just closed; ids are never reused, so a known-old id is
		 * dropped quietly and only a never-issued one is an error.
		 */
		if (f->channel < r->next_channel)
			return;
		relay_drop(from, TETHER_ERR_PROTOCOL,
			   "data on unknown channel");
		return;
	}
	if (!c->opened) {
		relay_drop(from, TETHER_ERR_PROTOCOL,
			   "data on a channel that is not open");
		return;
	}
	if (c->console == from) {
		to = c->agent;
		c->bytes_c2a += f->len;
	} else if (c->agent == from) {
		to = c->console;
		c->bytes_a2c += f->len;
	} else {
		relay_drop(from, TETHER_ERR_PROTOCOL,
			   "data on a channel that is not yours");
		return;
	}
	if (to == NULL || to->link == NULL)
		return;
	if (tether_link_send_raw(to->link, f->raw, f->raw_len) != 0)
		return;
	r->stats.frames_forwarded++;
	r->stats.bytes_forwarded += f->len;
	relay_hold_while_full(from, to);
}

unsigned relay_channels_pending(struct relay *r, int64_t session_id)
{
	struct relay_channel *c;
	unsigned i, n = 0;

	for (i = 0; i < RELAY_CHANNEL_BUCKETS; i++)
		for (c = r->channels[i]; c != NULL; c = c->next)
			if (c->session_id == session_id && !c->opened)
				n++;
	return n;
}

unsigned relay_channels_of(struct relay *r, const struct relay_peer *p)
{
	struct relay_channel *c;
	unsigned i, n = 0;

	for (i = 0; i < RELAY_CHANNEL_BUCKETS; i++)
		for (c = r->channels[i]; c != NULL; c = c->next)
			if (c->console == p)
				n++;
	return n;
}

size_t relay_channels_kinds(struct relay *r, int64_t session_id,
			    enum tether_kind *kinds, size_t max)
{
	struct relay_channel *c;
	size_t n = 0;
	unsigned i;

	for (i = 0; i < RELAY_CHANNEL_BUCKETS; i++)
		for (c = r->channels[i]; c != NULL && n < max; c = c->next)
			if (c->session_id == session_id && c->opened)
				kinds[n++] = c->kind;
	return n;
}

void relay_hold_while_full(struct relay_peer *from, struct relay_peer *to)
{
	if (to == NULL || to->link == NULL || from->link == NULL ||
	    !tether_link_over_high_water(to->link))
		return;
	from->blocked_on = to;
	tether_link_pause(from->link);
}

void relay_drained(struct relay_peer *p)
{
	struct relay_peer *q;

	for (q = p->relay->peers; q != NULL; q = q->next) {
		if (q->blocked_on != p)
			continue;
		q->blocked_on = NULL;
		q->last_seen = relay_now_ms();
		if (q->link != NULL)
			tether_link_resume(q->link);
	}
}
