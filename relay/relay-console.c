/*
 * Console requests (docs/protocol.md, "Console requests"): tickets, invites,
 * attaching to a session, key confirmation and channel opening; enrolled
 * agents' views are relay-health.c's.  Every request carries an id that
 * the answer echoes.  Dispatch is a table indexed by the request's type.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tether/alloc.h>
#include <tether/code.h>
#include <tether/crypto.h>
#include <tether/err.h>
#include <tether/frame.h>
#include <tether/link.h>
#include <tether/log.h>
#include <tether/proto.h>

#include "relay.h"

/* A burned nameplate stays out of use this long. */
#define BURNED_NAMEPLATE_S 3600

/* ---- Tickets as answers ---- */

static void ticket_view(const struct relay_store_ticket *t,
			struct tether_ctrl_ticket *v)
{
	memset(v, 0, sizeof(*v));
	v->id = t->id;
	v->title = t->title;
	v->customer = t->customer;
	v->status = t->status;
	v->source = t->source;
	v->created_at = t->created_at;
	v->closed_at = t->closed_at;
	v->resolution = t->resolution;
	v->created_by = t->created_by;
	v->assignee = t->assignee;
}

/* What ticket_show's answer points into, freed by detail_free(). */
struct ticket_detail {
	struct relay_store_session *sessions;
	size_t nsessions;
	struct relay_store_audit *audit;
	size_t naudit;
	struct relay_store_attachment *att;
	size_t natt;
	struct relay_store_comment *comments;
	size_t ncomments;
	struct tether_ctrl_session_row *session_rows;
	struct tether_ctrl_part_msg *facts;
	struct tether_ctrl_audit_row *audit_rows;
	struct tether_ctrl_attachment_row *att_rows;
	struct tether_ctrl_comment_row *comment_rows;
};

static void detail_free(struct ticket_detail *d)
{
	size_t i;

	for (i = 0; d->facts != NULL && i < d->nsessions; i++)
		tether_ctrl_part_free(&d->facts[i]);
	for (i = 0; d->audit_rows != NULL && i < d->naudit; i++)
		json_decref(d->audit_rows[i].detail);
	tether_free(d->facts);
	tether_free(d->session_rows);
	tether_free(d->audit_rows);
	tether_free(d->att_rows);
	tether_free(d->comment_rows);
	relay_store_comments_free(d->comments, d->ncomments);
	relay_store_sessions_free(d->sessions, d->nsessions);
	relay_store_audits_free(d->audit, d->naudit);
	relay_store_attachments_free(d->att, d->natt);
}

/* Never info, PAKE values or tokens: a session as a ticket shows it. */
static void session_view(const struct relay_store_session *s,
			 struct tether_ctrl_part_msg *facts,
			 struct tether_ctrl_session_row *v)
{
	char why[TETHER_CTRL_WHY_MAX];

	v->nameplate = s->nameplate;
	v->state = s->state;
	v->created_at = s->created_at;
	v->expires_at = s->expires_at;
	v->has_agent =
	    s->agent_facts != NULL &&
	    tether_ctrl_part_decode(TETHER_CTRL_PART_FACTS, s->agent_facts,
				    strlen(s->agent_facts), facts, why,
				    sizeof(why)) == 0;
	if (v->has_agent)
		v->agent = facts->body.facts;
}

/* An audit detail as it was given: JSON if it is, else the text. */
static void audit_view(const struct relay_store_audit *a,
		       struct tether_ctrl_audit_row *v)
{
	v->id = a->id;
	v->ts = a->ts;
	v->actor = a->actor;
	v->event = a->event;
	v->detail = NULL;
	if (a->detail != NULL) {
		v->detail = json_loads(a->detail, JSON_DECODE_ANY, NULL);
		if (v->detail == NULL)
			v->detail = json_string(a->detail);
	}
}

static void comment_view(const struct relay_store_comment *c,
			 struct tether_ctrl_comment_row *v)
{
	v->id = c->id;
	v->by = c->author;
	v->at = c->created_at;
	v->text = c->text;
}

/* The page ticket_show asks for, in the store's terms. */
static void audit_page_of(const struct tether_ctrl_ticket_show *sh,
			  struct relay_store_audit_page *pg)
{
	pg->before = sh->before;
	pg->after = sh->after;
	pg->limit =
	    sh->limit > 0 ? (size_t)sh->limit : TETHER_CTRL_PAGE_DEFAULT;
}

static int fill_detail(struct relay *r, int64_t id,
		       const struct tether_ctrl_ticket_show *sh,
		       struct ticket_detail *d, struct tether_ctrl_ticket *v)
{
	struct relay_store_audit_page pg;
	size_t i;
	int rc;

	audit_page_of(sh, &pg);
	rc = relay_store_ticket_sessions(r->store, id, &d->sessions,
					 &d->nsessions);
	if (!rc)
		rc = relay_store_ticket_audit_page(r->store, id, &pg, &d->audit,
						   &d->naudit, &v->audit_more);
	if (!rc)
		rc = relay_store_ticket_attachments(r->store, id, &d->att,
						    &d->natt);
	if (!rc)
		rc = relay_store_ticket_comments(
		    r->store, id, TETHER_CTRL_COMMENTS_SHOWN, &d->comments,
		    &d->ncomments, &v->comments_more);
	if (rc)
		return rc;
	d->comment_rows =
	    tether_calloc(d->ncomments + 1, sizeof(*d->comment_rows));
	if (!d->comment_rows)
		return TETHER_ERR_NOMEM;
	for (i = 0; i < d->ncomments; i++)
		comment_view(&d->comments[i], &d->comment_rows[i]);
	v->comments = d->comment_rows;
	v->ncomments = d->ncomments;
	d->session_rows =
	    tether_calloc(d->nsessions + 1, sizeof(*d->session_rows));
	d->facts = tether_calloc(d->nsessions + 1, sizeof(*d->facts));
	d->audit_rows = tether_calloc(d->naudit + 1, sizeof(*d->audit_rows));
	d->att_rows = tether_calloc(d->natt + 1, sizeof(*d->att_rows));
	if (!d->session_rows || !d->facts || !d->audit_rows || !d->att_rows)
		return TETHER_ERR_NOMEM;
	for (i = 0; i < d->nsessions; i++)
		session_view(&d->sessions[i], &d->facts[i],
			     &d->session_rows[i]);
	for (i = 0; i < d->naudit; i++)
		audit_view(&d->audit[i], &d->audit_rows[i]);
	for (i = 0; i < d->natt; i++) {
		d->att_rows[i].kind = d->att[i].kind;
		d->att_rows[i].source = d->att[i].source;
		d->att_rows[i].created_at = d->att[i].created_at;
		d->att_rows[i].size = d->att[i].size;
	}
	v->has_detail = true;
	v->sessions = d->session_rows;
	v->nsessions = d->nsessions;
	v->audit = d->audit_rows;
	v->naudit = d->naudit;
	v->attachments = d->att_rows;
	v->nattachments = d->natt;
	return 0;
}

/*
 * Shortens the answer's audit page (or, with no audit left, its comments)
 * until it fits one frame, however many rows or however long their
 * details: rows go from the far side of the page (the oldest of a page
 * taken backwards, the newest of one taken with after), and the ticket's
 * "more" counts them, so the next page asks for them again.
 */
static void fit_frame(struct relay_request *q, bool forward,
		      struct tether_ctrl_ticket_ok *ok)
{
	struct tether_ctrl_ticket *v = &ok->ticket;
	size_t len, drop, *n;
	char *text;

	for (;;) {
		if (tether_ctrl_encode_answer(q->m->type, q->m->id, ok, &text,
					      &len) != 0)
			return;
		tether_free(text);
		if (len <= TETHER_FRAME_MAX)
			return;
		n = v->naudit > 0 ? &v->naudit : &v->ncomments;
		if (*n == 0)
			return; /* the reply says "narrow the request" */
		/* In proportion to the excess, and at least one row. */
		drop = (size_t)((double)*n * (double)(len - TETHER_FRAME_MAX) /
				    (double)len +
				1);
		if (drop > *n)
			drop = *n;
		if (n == &v->naudit) {
			if (!forward)
				v->audit += drop;
			v->audit_more += (int64_t)drop;
		} else {
			v->comments += drop; /* the oldest comments */
			v->comments_more += (int64_t)drop;
		}
		*n -= drop;
	}
}

/*
 * Answers q with ticket id; with sh, its sessions, comments and the page
 * of its audit that sh asks for.
 */
static void answer_ticket(struct relay_request *q, int64_t id,
			  const struct tether_ctrl_ticket_show *sh)
{
	struct ticket_detail d = {0};
	struct tether_ctrl_ticket_ok ok;
	struct relay_store_ticket t;
	int rc;

	rc = relay_store_ticket_get(q->r->store, id, &t);
	ticket_view(&t, &ok.ticket);
	if (!rc && sh != NULL) {
		rc = fill_detail(q->r, id, sh, &d, &ok.ticket);
		if (!rc)
			fit_frame(q, sh->after != 0, &ok);
	}
	if (rc)
		relay_refuse(q, TETHER_CTRL_E_INTERNAL, "cannot read ticket");
	else
		relay_answer(q, &ok);
	detail_free(&d);
	relay_store_ticket_clear(&t);
}

/*
 * The ticket a request names, which must exist (and be open when
 * must_be_open); answers the error itself.  *name: "T-N" for messages.
 */
static int want_ticket(struct relay_request *q, int64_t id, bool must_be_open,
		       char name[TETHER_ID_TICKET_LEN])
{
	struct relay_store_ticket t;
	int rc;

	tether_id_ticket_format(id, name, TETHER_ID_TICKET_LEN);
	rc = relay_store_ticket_get(q->r->store, id, &t);
	if (rc == TETHER_ERR_NOT_FOUND)
		relay_refuse(q, TETHER_CTRL_E_NOT_FOUND, "no such ticket %s",
			     name);
	else if (rc != 0)
		relay_refuse(q, TETHER_CTRL_E_INTERNAL, "cannot read ticket");
	else if (must_be_open && t.status != TETHER_TICKET_OPEN)
		rc = TETHER_ERR_STATE;
	if (rc == TETHER_ERR_STATE)
		relay_refuse(q, TETHER_CTRL_E_STATE,
			     "%s is closed (run: tether ticket reopen %s to "
			     "work on it again)",
			     name, name);
	relay_store_ticket_clear(&t);
	return rc;
}

/* The ticket_assigned row: from and to are names, NULL for nobody. */
static void audit_assigned(struct relay_request *q, int64_t id,
			   const char *from, const char *to)
{
	char name[TETHER_ID_TICKET_LEN];

	tether_id_ticket_format(id, name, sizeof(name));
	relay_audit(q->r, q->actor, id, 0, "ticket_assigned",
		    json_pack("{s:s, s:s?, s:s?, s:s}", "ticket", name, "from",
			      from, "to", to, "by", q->p->tech.name));
}

static void ticket_new(struct relay_request *q)
{
	const struct tether_ctrl_ticket_new *tn = &q->m->body.ticket_new;
	int64_t id;

	if (relay_store_ticket_new(q->r->store, tn->title, tn->customer,
				   TETHER_SOURCE_MANUAL, q->p->tech.id,
				   &id) != 0) {
		relay_refuse(q, TETHER_CTRL_E_INTERNAL, "cannot store ticket");
		return;
	}
	relay_audit(q->r, q->actor, id, 0, "ticket_created", NULL);
	/* Whoever opens a ticket works it until it is given away. */
	if (relay_store_ticket_assign(q->r->store, id, q->p->tech.id) == 0)
		audit_assigned(q, id, NULL, q->p->tech.name);
	answer_ticket(q, id, NULL);
}

/*
 * The assignee ticket_list asks for into f; answers the error itself.
 * "me" and "nobody" are flags on the wire, so a technician named "me"
 * is found by name like any other.
 */
static int want_assignee(struct relay_request *q,
			 const struct tether_ctrl_ticket_list *tl,
			 struct relay_store_ticket_filter *f)
{
	struct relay_store_tech t;
	int rc = 0;

	if ((tl->assignee != NULL) + tl->assignee_me + tl->unassigned > 1) {
		relay_refuse(q, TETHER_CTRL_E_BAD_REQUEST,
			     "a list is of one assignee: a name, me or none");
		return TETHER_ERR_INVALID;
	}
	f->has_assignee = true;
	if (tl->assignee_me)
		f->assignee_id = q->p->tech.id;
	else if (tl->unassigned)
		f->assignee_id = 0;
	else if (tl->assignee == NULL)
		f->has_assignee = false;
	else
		rc = relay_store_tech_by_name(q->r->store, tl->assignee, &t);
	if (rc == 0 && tl->assignee != NULL) {
		f->assignee_id = t.id;
		tether_wipe(&t, sizeof(t));
	} else if (rc == TETHER_ERR_NOT_FOUND) {
		relay_refuse(q, TETHER_CTRL_E_NOT_FOUND, "no technician %s",
			     tl->assignee);
	} else if (rc != 0) {
		relay_refuse(q, TETHER_CTRL_E_INTERNAL,
			     "cannot read technicians");
	}
	return rc;
}

static void ticket_list(struct relay_request *q)
{
	const struct tether_ctrl_ticket_list *tl = &q->m->body.ticket_list;
	struct relay_store_ticket_filter f = {
	    .has_status = tl->has_status,
	    .status = tl->status,
	    .has_source = tl->has_source,
	    .source = tl->source,
	    .customer = tl->customer,
	    .search = tl->search,
	    .before = tl->before,
	    .limit =
		tl->limit > 0 ? (size_t)tl->limit : TETHER_CTRL_PAGE_DEFAULT,
	    /* In the store's one query, so that pages are full and the
	     * count of the rest is of what this console may see. */
	    .visible_to = relay_policy_visible_to(q->p),
	};
	struct tether_ctrl_ticket_list_ok ok = {0};
	struct tether_ctrl_ticket *views = NULL;
	struct relay_store_ticket *rows = NULL;
	size_t n = 0, i;

	if (want_assignee(q, tl, &f) != 0)
		return;
	if (relay_store_ticket_list(q->r->store, &f, &rows, &n, &ok.more) !=
		0 ||
	    (views = tether_calloc(n + 1, sizeof(*views))) == NULL) {
		relay_refuse(q, TETHER_CTRL_E_INTERNAL, "cannot list tickets");
		goto out;
	}
	for (i = 0; i < n; i++)
		ticket_view(&rows[i], &views[i]);
	ok.tickets = views;
	ok.ntickets = n;
	relay_answer(q, &ok);
out:
	tether_free(views);
	relay_store_tickets_free(rows, n);
}

static void ticket_show(struct relay_request *q)
{
	const struct tether_ctrl_ticket_show *sh = &q->m->body.ticket_show;
	char name[TETHER_ID_TICKET_LEN];

	if (sh->before != 0 && sh->after != 0) {
		relay_refuse(q, TETHER_CTRL_E_BAD_REQUEST,
			     "a page is before a row or after one, not both");
		return;
	}
	if (want_ticket(q, sh->ticket, false, name) == 0)
		answer_ticket(q, sh->ticket, sh);
}

static void ticket_close(struct relay_request *q)
{
	const struct tether_ctrl_ticket_close *tc = &q->m->body.ticket_close;
	char name[TETHER_ID_TICKET_LEN];
	int rc;

	if (want_ticket(q, tc->ticket, false, name) != 0)
		return;
	rc = relay_store_ticket_close(q->r->store, tc->ticket, tc->resolution);
	if (rc == TETHER_ERR_STATE) {
		relay_refuse(q, TETHER_CTRL_E_STATE,
			     "ticket %s is already closed", name);
		return;
	}
	if (rc != 0) {
		relay_refuse(q, TETHER_CTRL_E_INTERNAL, "cannot close ticket");
		return;
	}
	relay_session_end_ticket(q->r, q->actor, tc->ticket, "ticket closed");
	relay_audit(q->r, q->actor, tc->ticket, 0, "ticket_closed",
		    json_pack("{s:s}", "resolution", tc->resolution));
	answer_ticket(q, tc->ticket, NULL);
}

/*
 * The resolution and closing time are cleared on the ticket; its audit
 * keeps them (ticket_closed, and ticket_reopened says what was undone).
 */
static void ticket_reopen(struct relay_request *q)
{
	int64_t id = q->m->body.ticket_ref.ticket;
	char name[TETHER_ID_TICKET_LEN];
	struct relay_store_ticket t;
	int rc;

	tether_id_ticket_format(id, name, sizeof(name));
	rc = relay_store_ticket_get(q->r->store, id, &t);
	if (rc == 0)
		rc = relay_store_ticket_reopen(q->r->store, id);
	if (rc == TETHER_ERR_NOT_FOUND)
		relay_refuse(q, TETHER_CTRL_E_NOT_FOUND, "no such ticket %s",
			     name);
	else if (rc == TETHER_ERR_STATE)
		relay_refuse(q, TETHER_CTRL_E_STATE, "%s is open already",
			     name);
	else if (rc != 0)
		relay_refuse(q, TETHER_CTRL_E_INTERNAL, "cannot reopen ticket");
	if (rc == 0) {
		relay_audit(q->r, q->actor, id, 0, "ticket_reopened",
			    json_pack("{s:s?, s:I}", "resolution", t.resolution,
				      "closed_at", (json_int_t)t.closed_at));
		answer_ticket(q, id, NULL);
	}
	relay_store_ticket_clear(&t);
}

/* The text is the comment table's; the audit says who commented when. */
static void ticket_comment(struct relay_request *q)
{
	const struct tether_ctrl_ticket_comment *tc =
	    &q->m->body.ticket_comment;
	struct tether_ctrl_ticket_comment_ok ok = {.ticket = tc->ticket};
	char name[TETHER_ID_TICKET_LEN];
	int64_t id;

	if (want_ticket(q, tc->ticket, false, name) != 0)
		return;
	if (relay_store_comment_add(q->r->store, tc->ticket, q->p->tech.name,
				    tc->text, &id) != 0) {
		relay_refuse(q, TETHER_CTRL_E_INTERNAL, "cannot store comment");
		return;
	}
	relay_audit(q->r, q->actor, tc->ticket, 0, "ticket_comment",
		    json_pack("{s:s, s:s, s:I}", "ticket", name, "by",
			      q->p->tech.name, "comment", (json_int_t)id));
	ok.comment.id = id;
	ok.comment.by = q->p->tech.name;
	ok.comment.at = time(NULL);
	ok.comment.text = tc->text;
	relay_answer(q, &ok);
}

/*
 * Who may give what to whom is relay-policy.c's; here the technician it
 * goes to must exist and may work tickets (an auditor opens no channel),
 * and whoever loses it loses their channels and sessions on it at once.
 */
static void ticket_assign(struct relay_request *q)
{
	const struct tether_ctrl_ticket_assign *a = &q->m->body.ticket_assign;
	const char *to_name = a->me ? q->p->tech.name : a->to;
	char name[TETHER_ID_TICKET_LEN], why[TETHER_CTRL_REASON_MAX];
	struct relay_store_tech to = {0};
	struct relay_store_ticket t;
	int64_t from_id, losers[2];
	char from[TETHER_ID_NAME_MAX + 1] = "";
	size_t i;

	if (want_ticket(q, a->ticket, false, name) != 0)
		return;
	if (to_name != NULL &&
	    relay_store_tech_by_name(q->r->store, to_name, &to) != 0) {
		relay_refuse(q, TETHER_CTRL_E_NOT_FOUND, "no technician %s",
			     to_name);
		return;
	}
	if (to_name != NULL && to.role == TETHER_TECH_AUDITOR) {
		relay_refuse(q, TETHER_CTRL_E_STATE,
			     "%s is an auditor and cannot work tickets",
			     to_name);
		return;
	}
	if (relay_store_ticket_get(q->r->store, a->ticket, &t) != 0) {
		relay_refuse(q, TETHER_CTRL_E_INTERNAL, "cannot read ticket");
		return;
	}
	from_id = t.assignee_id;
	/* Who may lose it: whoever had it, or its creator while it was in
	 * the queue (relay-policy.c says whether they keep it). */
	losers[0] = from_id;
	losers[1] = from_id == 0 ? t.created_by_id : 0;
	if (t.assignee != NULL)
		snprintf(from, sizeof(from), "%s", t.assignee);
	relay_store_ticket_clear(&t);
	if (from_id == to.id) {
		answer_ticket(q, a->ticket, NULL);
		return;
	}
	if (relay_store_ticket_assign(q->r->store, a->ticket, to.id) != 0) {
		relay_refuse(q, TETHER_CTRL_E_INTERNAL, "cannot assign ticket");
		return;
	}
	audit_assigned(q, a->ticket, from_id != 0 ? from : NULL, to_name);
	if (to_name != NULL)
		snprintf(why, sizeof(why), "%s was reassigned to %s by %s",
			 name, to_name, q->p->tech.name);
	else
		snprintf(why, sizeof(why), "%s was unassigned by %s", name,
			 q->p->tech.name);
	for (i = 0; i < 2; i++) {
		struct relay_store_tech old;

		if (losers[i] == 0 || losers[i] == to.id ||
		    relay_store_tech_get(q->r->store, losers[i], &old) != 0)
			continue;
		relay_policy_revoke(q->r, losers[i], old.role, q->actor, why);
		tether_wipe(&old, sizeof(old));
	}
	answer_ticket(q, a->ticket, NULL);
}

/* ---- Invites ---- */

/* Whether a nameplate is taken, or burned too recently to hand out. */
static bool nameplate_busy(void *ctx, const char *nameplate)
{
	struct relay *r = ctx;
	struct relay_store_session ss;
	bool busy;

	if (relay_store_nameplate_in_use(r->store, nameplate))
		return true;
	if (relay_store_session_by_nameplate(r->store, nameplate, &ss) != 0)
		return false;
	busy = ss.state == TETHER_SESSION_BURNED &&
	       time(NULL) - ss.created_at < BURNED_NAMEPLATE_S;
	relay_store_session_clear(&ss);
	return busy;
}

/*
 * A free nameplate drawn at random from a range kept twenty times the
 * nameplates held (relay-nameplate.c), so that a customer's one-digit
 * slip seldom claims another ticket's code; a burned one stays out of use
 * for an hour so a guesser cannot retry the same number at once.
 */
static int allocate_nameplate(struct relay *r, char *out, size_t len)
{
	int64_t held;

	/* Not knowing, assume many: a wider range only lengthens codes. */
	if (relay_store_nameplates_held(
		r->store, time(NULL) - BURNED_NAMEPLATE_S, &held) != 0)
		held = 1000;
	return relay_nameplate_draw((uint64_t)held, nameplate_busy, r, out,
				    len);
}

/* What burned_before() found, for the invite's answer to point into. */
struct burned_note {
	struct relay_store_session last;
	char reason[64];
};

/*
 * If the ticket's last code was burned (a wrong code, a join abandoned),
 * what the technician is told with the new one: its nameplate, when and
 * why (its code_burned row), so they know why the old code stopped
 * working and that the new one replaces it.
 */
static void burned_before(struct relay *r, int64_t ticket,
			  struct burned_note *b,
			  struct tether_ctrl_invite_ok *ok)
{
	struct relay_store_audit *rows = NULL;
	size_t n = 0, i;

	if (relay_store_session_latest_for_ticket(r->store, ticket, &b->last) !=
		0 ||
	    b->last.state != TETHER_SESSION_BURNED)
		return;
	ok->has_burned = true;
	ok->burned.nameplate = b->last.nameplate;
	if (relay_store_ticket_audit(r->store, ticket, &rows, &n) != 0)
		return;
	for (i = n; i-- > 0;) {
		json_t *d;
		const char *np, *why;

		if (strcmp(rows[i].event, "code_burned") != 0 ||
		    rows[i].detail == NULL)
			continue;
		d = json_loads(rows[i].detail, 0, NULL);
		np = json_string_value(json_object_get(d, "nameplate"));
		why = json_string_value(json_object_get(d, "reason"));
		if (np != NULL && strcmp(np, b->last.nameplate) == 0) {
			ok->burned.at = rows[i].ts;
			if (why != NULL) {
				snprintf(b->reason, sizeof(b->reason), "%s",
					 why);
				ok->burned.reason = b->reason;
			}
		}
		json_decref(d);
		if (ok->burned.at != 0)
			break;
	}
	relay_store_audits_free(rows, n);
}

static void invite(struct relay_request *q)
{
	const struct tether_ctrl_invite *in = &q->m->body.invite;
	char name[TETHER_ID_TICKET_LEN];
	char nameplate[TETHER_CTRL_NAMEPLATE_MAX + 1];
	struct tether_ctrl_invite_ok ok = {.nameplate = nameplate};
	struct relay_store_session ss;
	struct burned_note note;

	memset(&note, 0, sizeof(note));
	if (want_ticket(q, in->ticket, true, name) != 0)
		return;
	if (relay_store_session_live_for_ticket(q->r->store, in->ticket, &ss) ==
	    0) {
		struct relay_session *s = relay_session_find(q->r, ss.id);

		relay_store_session_clear(&ss);
		if (s != NULL && s->agent != NULL) {
			relay_refuse(q, TETHER_CTRL_E_STATE,
				     "an agent is connected to %s; close the "
				     "ticket or let the customer leave first",
				     name);
			return;
		}
		relay_session_end_ticket(q->r, q->actor, in->ticket,
					 "replaced by a new invite");
	} else {
		/* Only a ticket without a live session can have lost one. */
		burned_before(q->r, in->ticket, &note, &ok);
	}
	if (allocate_nameplate(q->r, nameplate, sizeof(nameplate)) != 0) {
		relay_refuse(q, TETHER_CTRL_E_LIMIT, "no free nameplate");
		goto out;
	}
	ok.expires_at = time(NULL) + in->expires;
	if (relay_store_session_new(q->r->store, in->ticket, q->p->tech.id,
				    nameplate, ok.expires_at, in->info,
				    in->pake, &ok.session) != 0) {
		relay_refuse(q, TETHER_CTRL_E_INTERNAL, "cannot store invite");
		goto out;
	}
	relay_audit(q->r, q->actor, in->ticket, ok.session, "invite_created",
		    json_pack("{s:s, s:I}", "nameplate", nameplate,
			      "expires_in", (json_int_t)in->expires));
	relay_answer(q, &ok);
out:
	relay_store_session_clear(&note.last);
}

/* ---- Sessions ---- */

/*
 * " at 14:02 UTC", or " on 2024-05-01 at 14:02 UTC" before today: the
 * relay's clock in words that a console anywhere can place; "" for none.
 */
static void when_words(int64_t t, char *out, size_t len)
{
	time_t tt = (time_t)t, now = time(NULL);
	struct tm tm, today;
	size_t n;

	out[0] = '\0';
	if (t <= 0 || gmtime_r(&tt, &tm) == NULL ||
	    gmtime_r(&now, &today) == NULL)
		return;
	if (tm.tm_year == today.tm_year && tm.tm_yday == today.tm_yday)
		n = strftime(out, len, " at %H:%M UTC", &tm);
	else
		n = strftime(out, len, " on %Y-%m-%d at %H:%M UTC", &tm);
	if (n == 0)
		out[0] = '\0';
}

/* How a session that is over came to its end, from its audit rows. */
struct session_end {
	int64_t at; /* 0: not recorded */
	char event[32];
	char reason[96]; /* session_ended's, or "" */
};

/* Events that end a session (relay-agent.c, relay-session.c write them). */
static bool ends_session(const char *event)
{
	static const char *const ends[] = {"agent_left", "declined",
					   "pake_failed", "join_abandoned",
					   "session_ended"};
	size_t i;

	for (i = 0; i < sizeof(ends) / sizeof(ends[0]); i++)
		if (strcmp(event, ends[i]) == 0)
			return true;
	return false;
}

/*
 * The newest ending row of ss in its ticket's audit.  The sessions table
 * keeps no end time, and the audit already has one per ending: reading
 * it here, on a refusal only, spares the schema a column.
 */
static void find_end(struct relay *r, const struct relay_store_session *ss,
		     struct session_end *e)
{
	struct relay_store_audit *rows = NULL;
	size_t n = 0, i;

	memset(e, 0, sizeof(*e));
	if (relay_store_ticket_audit(r->store, ss->ticket_id, &rows, &n) != 0)
		return;
	for (i = n; i-- > 0;) {
		const struct relay_store_audit *a = &rows[i];
		json_t *d;

		if (a->session_id != ss->id || !ends_session(a->event))
			continue;
		e->at = a->ts;
		snprintf(e->event, sizeof(e->event), "%s", a->event);
		d = a->detail != NULL ? json_loads(a->detail, 0, NULL) : NULL;
		if (json_is_string(json_object_get(d, "reason")))
			snprintf(
			    e->reason, sizeof(e->reason), "%s",
			    json_string_value(json_object_get(d, "reason")));
		json_decref(d);
		break;
	}
	relay_store_audits_free(rows, n);
}

/*
 * Refuses q for a session the customer declined; true if it was one.
 * Declining is final for that invite: the technician needs a new one.
 */
static bool refuse_declined(struct relay_request *q,
			    const struct relay_store_session *ss)
{
	char name[TETHER_ID_TICKET_LEN];

	if (ss->state != TETHER_SESSION_DECLINED)
		return false;
	tether_id_ticket_format(ss->ticket_id, name, sizeof(name));
	relay_refuse(q, TETHER_CTRL_E_DECLINED,
		     "the customer declined the invite for %s (run: tether "
		     "invite %s to ask again)",
		     name, name);
	return true;
}

static void refuse_expired(struct relay_request *q, const char *name,
			   int64_t expires_at)
{
	char when[48];

	when_words(expires_at, when, sizeof(when));
	relay_refuse(q, TETHER_CTRL_E_STATE,
		     "the code for %s expired unused%s (run: tether invite %s)",
		     name, when, name);
}

/* A session that is over: who or what ended it, when, and what next. */
static void refuse_over(struct relay_request *q,
			const struct relay_store_session *ss, const char *name)
{
	struct session_end e;
	char when[48];

	find_end(q->r, ss, &e);
	when_words(e.at, when, sizeof(when));
	if (ss->state == TETHER_SESSION_BURNED &&
	    strcmp(e.event, "join_abandoned") == 0)
		relay_refuse(q, TETHER_CTRL_E_STATE,
			     "the code for %s was burned: the customer's "
			     "agent left before pairing (run: tether invite "
			     "%s for a new code)",
			     name, name);
	else if (ss->state == TETHER_SESSION_BURNED)
		relay_refuse(q, TETHER_CTRL_E_STATE,
			     "the code for %s was burned: a wrong code was "
			     "entered (run: tether invite %s for a new code)",
			     name, name);
	else if (strcmp(e.event, "session_ended") == 0)
		relay_refuse(q, TETHER_CTRL_E_STATE,
			     "the session on %s was ended%s: %s (run: tether "
			     "invite %s for a new code)",
			     name, when,
			     e.reason[0] ? e.reason : "by the relay", name);
	else if (strcmp(e.event, "agent_left") == 0)
		relay_refuse(q, TETHER_CTRL_E_STATE,
			     "the customer ended the session on %s%s (run: "
			     "tether invite %s for a new code)",
			     name, when, name);
	else
		relay_refuse(q, TETHER_CTRL_E_STATE,
			     "the session on %s has ended (run: tether invite "
			     "%s for a new code)",
			     name, name);
}

/*
 * Why a ticket has no live session: its newest one was declined, ended,
 * burned or expired, or there was never an invite.
 */
static void refuse_no_live(struct relay_request *q, int64_t tid,
			   const char *name)
{
	struct relay_store_session ss;

	if (relay_store_session_latest_for_ticket(q->r->store, tid, &ss) != 0) {
		relay_refuse(
		    q, TETHER_CTRL_E_STATE,
		    "there is no invite for %s (run: tether invite %s)", name,
		    name);
		return;
	}
	if (refuse_declined(q, &ss))
		goto out;
	if (ss.state == TETHER_SESSION_EXPIRED)
		refuse_expired(q, name, ss.expires_at);
	else
		refuse_over(q, &ss, name);
out:
	relay_store_session_clear(&ss);
}

/* The ticket's live session with its agent here; answers errors itself. */
static struct relay_session *want_live(struct relay_request *q,
				       struct relay_store_session *ss)
{
	int64_t tid = q->m->body.ticket_ref.ticket;
	char name[TETHER_ID_TICKET_LEN];
	struct relay_session *s;

	memset(ss, 0, sizeof(*ss));
	if (want_ticket(q, tid, true, name) != 0)
		return NULL;
	if (relay_store_session_live_for_ticket(q->r->store, tid, ss) != 0) {
		refuse_no_live(q, tid, name);
		return NULL;
	}
	if (ss->state == TETHER_SESSION_WAITING) {
		/* Until the relay's sweep marks it expired. */
		if (ss->expires_at <= time(NULL))
			refuse_expired(q, name, ss->expires_at);
		else
			relay_refuse(q, TETHER_CTRL_E_NO_AGENT,
				     "no agent has joined %s yet", name);
		return NULL;
	}
	s = relay_session_find(q->r, ss->id);
	if (s == NULL || s->agent == NULL) {
		relay_refuse(q, TETHER_CTRL_E_NO_AGENT,
			     "the agent for %s is not connected", name);
		return NULL;
	}
	return s;
}

static void attach(struct relay_request *q)
{
	struct tether_ctrl_attach_ok ok = {0};
	struct tether_ctrl_part_msg facts = {0};
	struct relay_store_session ss;
	char why[TETHER_CTRL_WHY_MAX];

	if (want_live(q, &ss) == NULL)
		goto out;
	ok.session = ss.id;
	ok.state = ss.state;
	ok.nameplate = ss.nameplate;
	ok.has_agent =
	    ss.agent_facts != NULL &&
	    tether_ctrl_part_decode(TETHER_CTRL_PART_FACTS, ss.agent_facts,
				    strlen(ss.agent_facts), &facts, why,
				    sizeof(why)) == 0;
	if (ok.has_agent)
		ok.agent = facts.body.facts;
	if (ss.state == TETHER_SESSION_JOINED && ss.has_pake_b) {
		ok.has_pake = true;
		memcpy(ok.pake_b, ss.pake_b, sizeof(ok.pake_b));
		memcpy(ok.conf_b, ss.conf_b, sizeof(ok.conf_b));
	}
	relay_answer(q, &ok);
out:
	tether_ctrl_part_free(&facts);
	relay_store_session_clear(&ss);
}

/* The session the request names, in state need, with its agent here. */
static struct relay_session *want_session(struct relay_request *q, int64_t sid,
					  enum tether_session_state need)
{
	struct relay_store_session ss;
	struct relay_session *s;
	bool declined, ok;

	if (relay_store_session_get(q->r->store, sid, &ss) != 0) {
		relay_refuse(q, TETHER_CTRL_E_NOT_FOUND, "no such session");
		return NULL;
	}
	ok = ss.state == need;
	declined = !ok && refuse_declined(q, &ss);
	relay_store_session_clear(&ss);
	if (declined)
		return NULL;
	if (!ok) {
		relay_refuse(q, TETHER_CTRL_E_STATE, "the session is not %s",
			     tether_ctrl_name_of(session_state, need));
		return NULL;
	}
	s = relay_session_find(q->r, sid);
	if (s == NULL || s->agent == NULL) {
		relay_refuse(q, TETHER_CTRL_E_NO_AGENT,
			     "the agent is not connected");
		return NULL;
	}
	return s;
}

#ifdef TETHER_TEST_HOOKS
/*
 * Test hook: with TETHER_TEST_TAMPER_INFO=1 the relay changes one hex
 * digit of the sealed info it forwards, as a relay that wanted to show
 * the customer another title would; the agent must refuse.  Never
 * compiled into a real build.
 */
static char *tamper_info(const char *info)
{
	const char *v = getenv("TETHER_TEST_TAMPER_INFO");
	char *t;

	if (v == NULL || strcmp(v, "1") != 0 ||
	    (t = tether_strdup(info)) == NULL)
		return NULL;
	t[0] = t[0] == '0' ? '1' : '0';
	return t;
}
#endif

static void confirm(struct relay_request *q)
{
	const struct tether_ctrl_confirm *cf = &q->m->body.confirm;
	struct tether_ctrl_agent_confirm ac = {.info = cf->info};
	struct relay_session *s;
	char *tampered = NULL;

	s = want_session(q, cf->session, TETHER_SESSION_JOINED);
	if (s == NULL)
		return;
	if (s->confirmer != NULL) {
		relay_refuse(q, TETHER_CTRL_E_STATE,
			     "another console is confirming this session");
		return;
	}
	if (s->confirm_pending) {
		/*
		 * Its console left while the customer decides: the same
		 * console's next command (the same cA: it is determined by
		 * the transcript) waits for the answer in its place, and the
		 * agent, already asking, is not asked again.
		 */
		if (!tether_ct_equal(cf->conf, s->confirm_conf,
				     sizeof(s->confirm_conf))) {
			relay_refuse(q, TETHER_CTRL_E_STATE,
				     "a confirmation is already under way");
			return;
		}
		s->confirmer = q->p;
		s->confirm_id = q->m->id;
		return;
	}
	/*
	 * The answer waits for the agent's verdict and then the customer's
	 * consent: the info it carries is opaque here, sealed under Ke.
	 */
	s->confirmer = q->p;
	s->confirm_id = q->m->id;
	s->confirm_pending = true;
	memcpy(s->confirm_conf, cf->conf, sizeof(s->confirm_conf));
	memcpy(ac.conf, cf->conf, sizeof(ac.conf));
#ifdef TETHER_TEST_HOOKS
	if ((tampered = tamper_info(cf->info)) != NULL)
		ac.info = tampered;
#endif
	relay_send(s->agent, TETHER_CTRL_AGENT_CONFIRM, &ac);
	relay_hold_while_full(q->p, s->agent);
	tether_free(tampered);
}

static void pake_failed(struct relay_request *q)
{
	struct tether_ctrl_pake_failed_ok ok = {0};
	char addr[TETHER_CTRL_ADDR_MAX + 1];
	struct relay_session *s;

	s = want_session(q, q->m->body.session_ref.session,
			 TETHER_SESSION_JOINED);
	if (s == NULL)
		return;
	/* The technician is told where the wrong guess came from. */
	snprintf(addr, sizeof(addr), "%s", s->agent_addr);
	if (addr[0] != '\0')
		ok.addr = addr;
	q->r->stats.pake_failures++;
	relay_audit(q->r, q->actor, s->ticket_id, s->id, "pake_failed",
		    json_pack("{s:s, s:s}", "nameplate", s->nameplate, "by",
			      "console"));
	relay_session_burn(q->r, s, q->actor, "wrong code");
	relay_answer(q, &ok);
}

/* ---- Channels ---- */

static void open_channel(struct relay_request *q)
{
	const struct tether_ctrl_open *o = &q->m->body.open;
	struct tether_ctrl_chan_open co = {.kind = o->kind,
					   .technician = q->p->tech.name};
	struct relay_channel *c;
	struct relay_session *s;

	s = want_session(q, o->session, TETHER_SESSION_PAIRED);
	if (s == NULL)
		return;
	/* The customer's consent, as the agent reported it (it refuses too). */
	if ((s->allowed & (1u << o->kind)) == 0) {
		char name[TETHER_ID_TICKET_LEN];

		tether_id_ticket_format(s->ticket_id, name, sizeof(name));
		relay_refuse(q, TETHER_CTRL_E_DECLINED,
			     "the customer did not allow %s for %s",
			     tether_ctrl_name_of(kind, o->kind), name);
		relay_audit(q->r, q->actor, s->ticket_id, s->id,
			    "channel_refused",
			    json_pack("{s:s, s:s}", "kind",
				      tether_ctrl_name_of(kind, o->kind),
				      "reason", "not allowed by the customer"));
		return;
	}
	if (relay_channels_pending(q->r, s->id) >= RELAY_PENDING_OPENS_MAX) {
		relay_refuse(q, TETHER_CTRL_E_LIMIT,
			     "too many channels waiting for the agent");
		return;
	}
	c = relay_channel_new(q->r, o->kind, q->p, s->agent, s->id,
			      s->ticket_id);
	if (c == NULL) {
		relay_refuse(q, TETHER_CTRL_E_LIMIT, "no more channels");
		return;
	}
	c->open_id = q->m->id;
	co.channel = c->id;
	memcpy(co.nonce, o->nonce, sizeof(co.nonce));
	relay_send(s->agent, TETHER_CTRL_CHAN_OPEN, &co);
	relay_hold_while_full(q->p, s->agent);
}

static void close_channel(struct relay_request *q)
{
	struct relay_channel *c;

	c = relay_channel_find(q->r, q->m->body.channel_ref.channel);
	if (c == NULL || c->console != q->p) {
		relay_refuse(q, TETHER_CTRL_E_NOT_FOUND, "no such channel");
		return;
	}
	relay_channel_close(q->r, c, "closed by the technician", false, true);
	relay_answer(q, NULL);
}

/* ---- Technicians and tokens (admins; relay-admin.c does the work) ---- */

static void tech_row(const struct relay_store_tech *t,
		     struct tether_ctrl_tech_row *v)
{
	v->id = t->id;
	v->name = t->name;
	v->role = t->role;
	v->created_at = t->created_at;
}

/* A store error of relay-admin.c in the console's words. */
static void refuse_admin(struct relay_request *q, int rc, const char *name)
{
	if (rc == TETHER_ERR_EXISTS)
		relay_refuse(q, TETHER_CTRL_E_STATE,
			     "technician %s already exists", name);
	else if (rc == TETHER_ERR_NOT_FOUND)
		relay_refuse(q, TETHER_CTRL_E_NOT_FOUND, "no technician %s",
			     name);
	else if (rc == TETHER_ERR_STATE)
		relay_refuse(q, TETHER_CTRL_E_STATE,
			     "%s is the only admin (make another admin first)",
			     name);
	else
		relay_refuse(q, TETHER_CTRL_E_INTERNAL, "cannot change %s: %s",
			     name, tether_strerror(rc));
}

static void tech_add(struct relay_request *q)
{
	const struct tether_ctrl_tech_add *a = &q->m->body.tech_add;
	char token[RELAY_ADMIN_TOKEN_MAX];
	struct tether_ctrl_tech_add_ok ok = {.token = token};
	struct relay_store_tech t;
	int rc;

	rc = relay_admin_tech_add(q->r->store, q->actor, q->p->tech.name,
				  a->name, a->role, token, sizeof(token), &t);
	if (rc != 0) {
		refuse_admin(q, rc, a->name);
		return;
	}
	tech_row(&t, &ok.technician);
	relay_answer(q, &ok);
	tether_wipe(token, sizeof(token));
}

static void tech_remove(struct relay_request *q)
{
	const char *name = q->m->body.tech_ref.name;
	struct tether_ctrl_tech_ok ok = {0};
	struct relay_store_tech t;
	struct relay_peer *p;
	int rc;

	rc = relay_admin_tech_remove(q->r->store, q->actor, q->p->tech.name,
				     name, &t);
	if (rc != 0) {
		refuse_admin(q, rc, name);
		return;
	}
	tech_row(&t, &ok.technician);
	relay_answer(q, &ok);
	/* This process wrote it: relay-access.c would not notice. */
	for (p = q->r->peers; p != NULL; p = p->next)
		if (p->role == RELAY_PEER_CONSOLE && p->tech.id == t.id &&
		    p->link != NULL && tether_link_is_open(p->link))
			relay_policy_cut_off(q->r, p, q->actor, "was removed",
					     TETHER_REASON_TECH_REMOVED);
}

static void tech_list(struct relay_request *q)
{
	struct tether_ctrl_tech_list_ok ok = {0};
	struct tether_ctrl_tech_row *rows = NULL;
	struct relay_store_tech *v = NULL;
	size_t n = 0, i;

	if (relay_store_tech_list(q->r->store, &v, &n) != 0 ||
	    (rows = tether_calloc(n + 1, sizeof(*rows))) == NULL) {
		relay_refuse(q, TETHER_CTRL_E_INTERNAL,
			     "cannot list technicians");
		goto out;
	}
	for (i = 0; i < n; i++)
		tech_row(&v[i], &rows[i]);
	ok.technicians = rows;
	ok.ntechnicians = n;
	relay_answer(q, &ok);
out:
	tether_free(rows);
	relay_store_techs_free(v, n);
}

static void tech_role(struct relay_request *q)
{
	const struct tether_ctrl_tech_role *a = &q->m->body.tech_role;
	struct tether_ctrl_tech_ok ok = {.has_from = true};
	struct relay_store_tech t;
	char why[TETHER_CTRL_REASON_MAX];
	int rc;

	rc = relay_admin_tech_role(q->r->store, q->actor, q->p->tech.name,
				   a->name, a->role, &t, &ok.from);
	if (rc != 0) {
		refuse_admin(q, rc, a->name);
		return;
	}
	tech_row(&t, &ok.technician);
	relay_answer(q, &ok);
	if (ok.from == a->role)
		return;
	snprintf(why, sizeof(why), "your role was changed to %s by %s",
		 tether_ctrl_name_of(tech_role, a->role), q->p->tech.name);
	relay_policy_revoke(q->r, t.id, a->role, q->actor, why);
}

static void enroll_token(struct relay_request *q)
{
	char token[RELAY_ADMIN_TOKEN_MAX];
	struct tether_ctrl_enroll_token_ok ok = {
	    .token = token, .fingerprint = q->r->fingerprint};
	int rc;

	rc = relay_admin_enroll_token(q->r->store, q->actor, q->p->tech.name,
				      q->m->body.enroll_token.ttl, token,
				      sizeof(token), &ok.expires_at);
	if (rc != 0)
		relay_refuse(q, TETHER_CTRL_E_INTERNAL, "cannot make a token");
	else
		relay_answer(q, &ok);
	tether_wipe(token, sizeof(token));
}

/* Each request's handler; relay_policy_check() has let it through. */
static void (*const console_routes[TETHER_CTRL_TYPES])(
    struct relay_request *) = {
    [TETHER_CTRL_TICKET_NEW] = ticket_new,
    [TETHER_CTRL_TICKET_LIST] = ticket_list,
    [TETHER_CTRL_TICKET_SHOW] = ticket_show,
    [TETHER_CTRL_TICKET_CLOSE] = ticket_close,
    [TETHER_CTRL_TICKET_COMMENT] = ticket_comment,
    [TETHER_CTRL_TICKET_REOPEN] = ticket_reopen,
    [TETHER_CTRL_INVITE] = invite,
    [TETHER_CTRL_ATTACH] = attach,
    [TETHER_CTRL_CONFIRM] = confirm,
    [TETHER_CTRL_PAKE_FAILED] = pake_failed,
    [TETHER_CTRL_OPEN] = open_channel,
    [TETHER_CTRL_CLOSE] = close_channel,
    [TETHER_CTRL_AGENTS] = relay_health_agents,
    [TETHER_CTRL_HEALTH] = relay_health_list,
    [TETHER_CTRL_DIAG_ATTACH] = relay_health_diag_attach,
    [TETHER_CTRL_DIAG_GET] = relay_health_diag_get,
    [TETHER_CTRL_SESSIONS] = relay_sessions_list,
    [TETHER_CTRL_TICKET_ASSIGN] = ticket_assign,
    [TETHER_CTRL_TECH_ADD] = tech_add,
    [TETHER_CTRL_TECH_REMOVE] = tech_remove,
    [TETHER_CTRL_TECH_LIST] = tech_list,
    [TETHER_CTRL_TECH_ROLE] = tech_role,
    [TETHER_CTRL_ENROLL_TOKEN] = enroll_token,
};

void relay_console_message(struct relay_peer *p, const struct tether_frame *f,
			   int r, const struct tether_ctrl_msg *m,
			   const char *why)
{
	struct relay_request q;
	int64_t id;

	/* A request with an id gets an answer, whatever else is wrong. */
	if (r != 0 && r != TETHER_ERR_NOMEM &&
	    tether_ctrl_request_id(f->payload, f->len, &id) == 0) {
		if (r == TETHER_ERR_NOT_FOUND)
			relay_reply_err(p, id, TETHER_CTRL_E_BAD_REQUEST,
					"unknown request: %s", why);
		else
			relay_reply_err(p, id, TETHER_CTRL_E_BAD_REQUEST,
					"malformed %s", why);
		return;
	}
	if (r != 0) {
		relay_drop_malformed(p, why);
		return;
	}
	if (console_routes[m->type] == NULL) {
		relay_drop(p, TETHER_ERR_PROTOCOL, "unexpected message");
		return;
	}
	relay_request_init(&q, p, m);
	if (relay_policy_check(&q) == 0)
		console_routes[m->type](&q);
}
