/*
 * A peer's life as data: making and freeing one, and what every handler
 * says to it: control messages built from the ctrl structs, answers to
 * requests (ok or err with an enum tether_ctrl_code), an ERROR frame and
 * close, and the audit rows and actor names that record what it did.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <tether/alloc.h>
#include <tether/err.h>
#include <tether/log.h>

#include "relay.h"

uint64_t relay_now_ms(void)
{
	return uv_hrtime() / 1000000;
}

struct relay_peer *relay_peer_new(struct relay *r)
{
	struct relay_peer *p = tether_calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->relay = r;
	p->connected_at = p->last_seen = p->output_moved = relay_now_ms();
	p->next = r->peers;
	if (r->peers != NULL)
		r->peers->prev = p;
	r->peers = p;
	r->npeers++;
	return p;
}

void relay_peer_free(struct relay_peer *p)
{
	struct relay *r = p->relay;

	if (p->prev != NULL)
		p->prev->next = p->next;
	else
		r->peers = p->next;
	if (p->next != NULL)
		p->next->prev = p->prev;
	r->npeers--;
	tether_wipe(p, sizeof(*p));
	tether_free(p);
}

static bool can_send(const struct relay_peer *p)
{
	return p != NULL && p->link != NULL && tether_link_is_open(p->link);
}

/* Sends an encoded payload (taken) as a CTRL frame. */
static int send_text(struct relay_peer *p, char *text, size_t len)
{
	int r = tether_link_send(p->link, TETHER_FRAME_CTRL, 0, text, len);

	tether_free(text);
	return r;
}

void relay_send(struct relay_peer *p, enum tether_ctrl_type t, const void *body)
{
	char *text;
	size_t len;
	int r;

	if (!can_send(p))
		return;
	r = tether_ctrl_encode(t, 0, body, &text, &len);
	if (r == 0)
		r = send_text(p, text, len);
	if (r != 0 && r != TETHER_ERR_CLOSED)
		tether_log_err(r, "cannot send %s to %s",
			       tether_ctrl_type_name(t), p->addr);
}

static void vreply_err(struct relay_peer *p, int64_t id,
		       enum tether_ctrl_code code, const char *fmt, va_list ap)
{
	char message[TETHER_CTRL_MESSAGE_MAX + 1];
	char *text;
	size_t len;
	int r;

	if (!can_send(p))
		return;
	vsnprintf(message, sizeof(message), fmt, ap);
	r = tether_ctrl_encode_err(id, code, message, &text, &len);
	if (r == 0)
		r = send_text(p, text, len);
	if (r != 0 && r != TETHER_ERR_CLOSED)
		tether_log_err(r, "cannot answer request %lld of %s",
			       (long long)id, p->addr);
}

void relay_reply_err(struct relay_peer *p, int64_t id,
		     enum tether_ctrl_code code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreply_err(p, id, code, fmt, ap);
	va_end(ap);
}

void relay_reply_ok(struct relay_peer *p, enum tether_ctrl_type request,
		    int64_t id, const void *body)
{
	char *text;
	size_t len;
	int r;

	if (!can_send(p))
		return;
	r = tether_ctrl_encode_answer(request, id, body, &text, &len);
	if (r == 0)
		r = send_text(p, text, len);
	/* Never leave a request unanswered, even when the answer is huge. */
	if (r == TETHER_ERR_TOO_LARGE)
		relay_reply_err(
		    p, id, TETHER_CTRL_E_LIMIT,
		    "the answer is over 256 KiB; narrow the request");
	else if (r != 0 && r != TETHER_ERR_CLOSED)
		relay_reply_err(
		    p, id, TETHER_CTRL_E_INTERNAL, "cannot answer %s: %s",
		    tether_ctrl_type_name(request), tether_strerror(r));
}

void relay_request_init(struct relay_request *q, struct relay_peer *p,
			const struct tether_ctrl_msg *m)
{
	q->p = p;
	q->r = p->relay;
	q->m = m;
	relay_actor(p, q->actor, sizeof(q->actor));
}

void relay_answer(struct relay_request *q, const void *body)
{
	relay_reply_ok(q->p, q->m->type, q->m->id, body);
}

void relay_refuse(struct relay_request *q, enum tether_ctrl_code code,
		  const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreply_err(q->p, q->m->id, code, fmt, ap);
	va_end(ap);
}

void relay_drop(struct relay_peer *p, int err, const char *reason)
{
	if (p->link == NULL)
		return;
	if (err == TETHER_ERR_PROTOCOL)
		p->relay->stats.protocol_errors++;
	tether_log_info("closing %s: %s", p->addr, reason);
	tether_link_close_error(p->link, err, reason);
}

void relay_drop_malformed(struct relay_peer *p, const char *why)
{
	char reason[16 + TETHER_CTRL_WHY_MAX];

	snprintf(reason, sizeof(reason), "malformed %s", why);
	relay_drop(p, TETHER_ERR_PROTOCOL, reason);
}

const char *relay_actor(const struct relay_peer *p, char *buf, size_t len)
{
	if (p == NULL)
		return "relay";
	if (p->role == RELAY_PEER_CONSOLE) {
		snprintf(buf, len, "tech:%s", p->tech.name);
		return buf;
	}
	if (p->role == RELAY_PEER_AGENT && p->agent_id != 0) {
		snprintf(buf, len, "agent:%s", p->agent_name);
		return buf;
	}
	if (p->role == RELAY_PEER_AGENT)
		return "agent";
	snprintf(buf, len, "peer:%s", p->addr);
	return buf;
}

void relay_audit(struct relay *r, const char *actor, int64_t ticket_id,
		 int64_t session_id, const char *event, json_t *detail)
{
	relay_audit_to(r->store, actor, ticket_id, session_id, event, detail);
}

void relay_audit_to(struct relay_store *st, const char *actor,
		    int64_t ticket_id, int64_t session_id, const char *event,
		    json_t *detail)
{
	char *text = NULL;
	int rc;

	if (detail != NULL)
		text = json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS);
	rc = relay_store_audit(st, actor, ticket_id, session_id, event, text);
	if (rc != 0)
		tether_log_err(rc, "audit %s", event);
	tether_free(text);
	json_decref(detail);
}
