/*
 * Health of enrolled agents (docs/protocol.md, "Enrolled agents"): check
 * results decided on (relay_health_decide, the policy as a pure function),
 * stored and acknowledged, proactive tickets opened or noted on hard state
 * changes, diagnostics bundles requested for those tickets and attached,
 * and the console's views of agents and checks.
 *
 * A result is acknowledged only once it is durably stored, so an agent
 * resends whatever a relay crash lost; the seq makes a resent result a
 * no-op.  The store reports what it holds; what that means is decided
 * here.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <tether/alloc.h>
#include <tether/bundle.h>
#include <tether/err.h>
#include <tether/log.h>
#include <tether/proto.h>

#include "relay.h"

/* Stored perfdata text is bounded; longer is dropped, not refused. */
#define PERFDATA_MAX 4096
/* How far ahead of the relay's clock an agent's timestamp may be. */
#define CLOCK_SLACK_S 300

/* ---- The policy ---- */

void relay_health_decide(const struct relay_store_check_prev *prev,
			 enum tether_ticket_on on,
			 struct relay_store_result *res,
			 struct relay_health_decision *d)
{
	const struct relay_store_check *was = prev->found ? &prev->check : NULL;
	bool flapping = was != NULL && was->flapping;
	bool alarm;
	int64_t changes;

	memset(d, 0, sizeof(*d));
	/* A check never seen before was fine as far as anyone knew. */
	d->prev_hard = was != NULL ? was->hard_state : TETHER_CHECK_OK;
	res->hard_change = false;
	res->flapping = flapping;
	res->hard_state = d->prev_hard;
	res->since =
	    was != NULL && was->state == res->state ? was->since : res->ts;
	res->hard_since = res->ts;
	if (res->seq <= prev->last_seq) {
		d->verdict = RELAY_HEALTH_DUPLICATE;
		return;
	}
	if (was == NULL && prev->nchecks >= RELAY_CHECKS_MAX) {
		d->verdict = RELAY_HEALTH_OVER_LIMIT;
		return;
	}
	d->verdict = RELAY_HEALTH_RECORD;
	if (res->type == TETHER_CHECK_HARD)
		res->hard_state = res->state;
	res->hard_change =
	    res->type == TETHER_CHECK_HARD && res->state != d->prev_hard;
	if (!res->hard_change) {
		if (was != NULL)
			res->hard_since = was->hard_since;
		return;
	}
	/* This change counts in its own window. */
	changes = prev->hard_changes + 1;
	d->ticket_id = prev->ticket_open ? was->ticket_id : 0;
	/*
	 * A flapping check gets one note, then silence until a change finds
	 * the hour before it otherwise quiet.
	 */
	if (changes >= RELAY_FLAP_CHANGES && !flapping) {
		res->flapping = true;
		d->action = d->ticket_id != 0 ? RELAY_HEALTH_NOTE_FLAPPING
					      : RELAY_HEALTH_NOTHING;
		return;
	}
	if (flapping && changes <= 1)
		res->flapping = flapping = false;
	if (flapping)
		return;
	alarm = on != TETHER_TICKET_ON_NEVER &&
		(res->state == TETHER_CHECK_CRITICAL ||
		 (res->state == TETHER_CHECK_WARNING &&
		  on == TETHER_TICKET_ON_WARNING));
	if (d->ticket_id == 0)
		d->action = alarm ? RELAY_HEALTH_OPEN : RELAY_HEALTH_NOTHING;
	else
		d->action = res->state == TETHER_CHECK_OK
				? RELAY_HEALTH_NOTE_RECOVERED
				: RELAY_HEALTH_NOTE_CHANGE;
}

int relay_health_diag_wanted(struct relay *r, int64_t agent_id,
			     int64_t ticket_id, bool *wanted)
{
	struct relay_store_attachment *att = NULL;
	size_t n = 0, i;
	bool holds;
	int rc;

	*wanted = false;
	rc = relay_store_health_holds_ticket(r->store, agent_id, ticket_id,
					     &holds);
	if (rc == 0 && holds)
		rc = relay_store_ticket_attachments(r->store, ticket_id, &att,
						    &n);
	if (rc != 0 || !holds)
		return rc;
	/* A technician's bundle does not answer the relay's request. */
	*wanted = true;
	for (i = 0; i < n; i++)
		if (strcmp(att[i].kind, "diag") == 0 &&
		    strncmp(att[i].source, "agent:", 6) == 0)
			*wanted = false;
	relay_store_attachments_free(att, n);
	return 0;
}

/* ---- Check results ---- */

/* An audit row on the ticket about this check. */
static void note(struct relay_peer *p, int64_t ticket_id, const char *event,
		 const struct relay_store_result *res, const char *extra)
{
	char actor[RELAY_ACTOR_MAX];

	relay_audit(
	    p->relay, relay_actor(p, actor, sizeof(actor)), ticket_id, 0, event,
	    json_pack("{s:s, s:s, s:s, s:s, s:s*}", "agent", p->agent_name,
		      "check", res->check, "state",
		      tether_ctrl_name_of(check_state, res->state), "output",
		      res->output ? res->output : "", "note", extra));
}

static void open_ticket(struct relay_peer *p,
			const struct relay_store_result *res)
{
	struct relay *r = p->relay;
	struct tether_ctrl_diag_request want = {0};
	char title[TETHER_CTRL_TITLE_MAX + 1], t[TETHER_ID_TICKET_LEN];

	snprintf(title, sizeof(title), "%s: %s is %s", p->agent_name,
		 res->check, tether_ctrl_name_of(check_state, res->state));
	if (relay_store_ticket_new(r->store, title, p->agent_name,
				   TETHER_SOURCE_HEALTH, 0,
				   &want.ticket) != 0 ||
	    relay_store_health_set_ticket(r->store, p->agent_id, res->check,
					  want.ticket) != 0) {
		tether_log_err(TETHER_ERR_DB, "cannot open a ticket for %s",
			       title);
		return;
	}
	tether_id_ticket_format(want.ticket, t, sizeof(t));
	tether_log_info("opened %s: %s", t, title);
	note(p, want.ticket, "health_open", res, NULL);
	relay_send(p, TETHER_CTRL_DIAG_REQUEST, &want);
}

/* What a recorded hard change does to the check's ticket. */
static void act(struct relay_peer *p, const struct relay_store_result *res,
		const struct relay_health_decision *d)
{
	switch (d->action) {
	case RELAY_HEALTH_NOTHING:
		break;
	case RELAY_HEALTH_OPEN:
		open_ticket(p, res);
		break;
	case RELAY_HEALTH_NOTE_CHANGE:
		note(p, d->ticket_id, "health_change", res, NULL);
		break;
	case RELAY_HEALTH_NOTE_RECOVERED:
		note(p, d->ticket_id, "health_recovered", res, NULL);
		break;
	case RELAY_HEALTH_NOTE_FLAPPING:
		note(p, d->ticket_id, "health_flapping", res,
		     "flapping: notes held until it has been steady for an "
		     "hour");
		break;
	}
}

/* The result as the store records it; *perf (freed by the caller) holds
 * its perfdata text. */
static void result_of(const struct tether_ctrl_check *c,
		      struct relay_store_result *res, char **perf)
{
	struct tether_ctrl_perfdata pd = {c->perfdata, c->nperfdata};
	int64_t now = time(NULL);

	memset(res, 0, sizeof(*res));
	*perf = NULL;
	res->seq = c->seq;
	res->check = c->check;
	res->state = c->state;
	res->type = c->type;
	res->attempt = c->attempt;
	res->max_attempts = c->max_attempts;
	res->output = c->output != NULL ? c->output : "";
	/* A clock far off is the agent's problem, not the history's. */
	res->ts = c->ts > 0 && c->ts < now + CLOCK_SLACK_S ? c->ts : now;
	/* Perfdata beyond what is worth a row is dropped, not refused. */
	if (c->nperfdata > 0 &&
	    tether_ctrl_part_encode(TETHER_CTRL_PART_PERFDATA, &pd, perf,
				    NULL) == 0 &&
	    strlen(*perf) > PERFDATA_MAX) {
		tether_free(*perf);
		*perf = NULL;
	}
	res->perfdata = *perf;
}

int relay_health_store(struct relay *r, int64_t agent_id,
		       enum tether_ticket_on on, struct relay_store_result *res,
		       struct relay_health_decision *d)
{
	struct relay_store_check_prev prev;
	int err;

	memset(d, 0, sizeof(*d));
	err = relay_store_health_get(r->store, agent_id, res->check,
				     res->ts - RELAY_FLAP_WINDOW_S, &prev);
	if (err == 0)
		relay_health_decide(&prev, on, res, d);
	relay_store_check_prev_clear(&prev);
	if (err != 0 || d->verdict == RELAY_HEALTH_DUPLICATE)
		return err;
	if (d->verdict == RELAY_HEALTH_OVER_LIMIT)
		return relay_store_agent_set_seq(r->store, agent_id, res->seq);
	err = relay_store_health_record(r->store, agent_id, res);
	/* Stored meanwhile after all: as resent as any duplicate. */
	if (err == TETHER_ERR_EXISTS) {
		d->verdict = RELAY_HEALTH_DUPLICATE;
		err = 0;
	}
	return err;
}

void relay_health_check(struct relay_peer *p, const struct tether_ctrl_msg *m)
{
	const struct tether_ctrl_check *c = &m->body.check;
	struct tether_ctrl_check_ack ack = {.seq = c->seq};
	struct relay *r = p->relay;
	struct relay_health_decision d;
	struct relay_store_result res;
	char *perf;
	int err;

	result_of(c, &res, &perf);
	err = relay_health_store(r, p->agent_id, c->ticket_on, &res, &d);
	if (err != 0) {
		/*
		 * Not acknowledged, and the connection goes: acks are
		 * cumulative, so acknowledging a later result would make the
		 * agent forget this one.  It reconnects and resends from the
		 * last stored seq.
		 */
		tether_log_err(err, "cannot store a result of %s/%s",
			       p->agent_name, c->check);
		relay_drop(p, TETHER_ERR_INTERNAL, "cannot store the result");
		goto out;
	}
	/* Acknowledged all the same, so that the agent's other results flow. */
	if (d.verdict == RELAY_HEALTH_OVER_LIMIT && !p->checks_over_limit) {
		tether_log_warn("agent %s: more than %d checks; results of %s "
				"and other new ones are dropped",
				p->agent_name, RELAY_CHECKS_MAX, c->check);
		p->checks_over_limit = true;
	}
	if (d.verdict == RELAY_HEALTH_RECORD && c->dropped > 0)
		relay_audit(r, "relay", 0, 0, "health_dropped",
			    json_pack("{s:s, s:I}", "agent", p->agent_name,
				      "dropped", (json_int_t)c->dropped));
	if (d.verdict == RELAY_HEALTH_RECORD && res.hard_change) {
		tether_log_info("%s/%s: HARD %s -> %s", p->agent_name, c->check,
				tether_ctrl_name_of(check_state, d.prev_hard),
				tether_ctrl_name_of(check_state, res.state));
		act(p, &res, &d);
	}
	relay_send(p, TETHER_CTRL_CHECK_ACK, &ack);
out:
	tether_free(perf);
}

/*
 * Checks a packed bundle piece by piece (never built: relay memory stays
 * flat), stores it on the ticket and audits it.  TETHER_ERR_DB if the
 * store failed, else the check's error.
 */
static int attach_bundle(struct relay *r, int64_t tid, const char *actor,
			 const char *bundle)
{
	int err = tether_bundle_check(bundle, NULL);

	if (err != 0)
		return err;
	if (relay_store_attach(r->store, tid, "diag", actor, bundle, NULL))
		return TETHER_ERR_DB;
	relay_audit(r, actor, tid, 0, "diag_attached",
		    json_pack("{s:s, s:I}", "source", actor, "size",
			      (json_int_t)strlen(bundle)));
	return 0;
}

void relay_health_diag(struct relay_peer *p, const struct tether_ctrl_msg *m)
{
	const struct tether_ctrl_diag *dg = &m->body.diag;
	char actor[RELAY_ACTOR_MAX], t[TETHER_ID_TICKET_LEN];
	struct relay *r = p->relay;
	bool wanted = false;
	int err;

	/*
	 * Only a ticket this agent's check opened and that has no bundle
	 * from it yet: an agent cannot fill others.  Asked of the store, so
	 * an answer that waited out a reconnect still lands.
	 */
	if (relay_health_diag_wanted(r, p->agent_id, dg->ticket, &wanted) !=
		0 ||
	    !wanted) {
		tether_id_ticket_format(dg->ticket, t, sizeof(t));
		tether_log_warn("agent %s: unrequested diagnostics for %s",
				p->agent_name, t);
		return;
	}
	relay_actor(p, actor, sizeof(actor));
	if (dg->bundle == NULL) {
		relay_audit(r, actor, dg->ticket, 0, "diag_failed",
			    json_pack("{s:s}", "reason",
				      dg->error ? dg->error : "no bundle"));
		return;
	}
	err = attach_bundle(r, dg->ticket, actor, dg->bundle);
	if (err != 0)
		relay_audit(r, actor, dg->ticket, 0, "diag_failed",
			    json_pack("{s:s}", "reason", tether_strerror(err)));
}

/* ---- Console requests ---- */

/*
 * A JSON text the store kept, as a part for an answer; a text that no
 * longer decodes is shown as none rather than fail the answer.
 */
static bool stored_part(enum tether_ctrl_part part, const char *text,
			struct tether_ctrl_part_msg *pm)
{
	char why[TETHER_CTRL_WHY_MAX];

	if (text == NULL) {
		memset(pm, 0, sizeof(*pm));
		return false;
	}
	if (tether_ctrl_part_decode(part, text, strlen(text), pm, why,
				    sizeof(why)) != 0) {
		tether_log_debug("stored %s left out", why);
		return false;
	}
	return true;
}

/* Worst first, as Icinga orders them: CRITICAL, UNKNOWN, WARNING, OK. */
static bool worst_state(const struct relay_store_agent_row *a,
			enum tether_check_state *worst)
{
	static const enum tether_check_state rank[] = {
	    TETHER_CHECK_CRITICAL, TETHER_CHECK_UNKNOWN, TETHER_CHECK_WARNING,
	    TETHER_CHECK_OK};
	size_t i;

	for (i = 0; i < sizeof(rank) / sizeof(rank[0]); i++) {
		if (a->by_state[rank[i]] > 0) {
			*worst = rank[i];
			return true;
		}
	}
	return false;
}

/* What one agent row of the answer points into. */
struct agent_parts {
	struct tether_ctrl_part_msg labels;
	struct tether_ctrl_part_msg facts;
};

static void agent_row_view(struct relay *r,
			   const struct relay_store_agent_row *a,
			   struct agent_parts *parts,
			   struct tether_ctrl_agent_row *v)
{
	memset(v, 0, sizeof(*v));
	v->name = a->name;
	if (stored_part(TETHER_CTRL_PART_LABELS, a->labels, &parts->labels)) {
		v->labels = parts->labels.body.labels.labels;
		v->nlabels = parts->labels.body.labels.nlabels;
	}
	v->has_facts =
	    stored_part(TETHER_CTRL_PART_FACTS, a->facts, &parts->facts);
	if (v->has_facts)
		v->facts = parts->facts.body.facts;
	v->enrolled_at = a->enrolled_at;
	v->last_seen = a->last_seen;
	v->connected = relay_enrolled_peer(r, a->name) != NULL;
	v->has_worst = worst_state(a, &v->worst);
	v->checks = a->checks;
}

void relay_health_agents(struct relay_request *q)
{
	struct tether_ctrl_agents_ok ok = {0};
	struct tether_ctrl_agent_row *views = NULL;
	struct relay_store_agent_row *rows = NULL;
	struct agent_parts *parts = NULL;
	size_t n = 0, i;

	if (relay_store_agent_list(q->r->store, &rows, &n) != 0 ||
	    (n > 0 && ((views = tether_calloc(n, sizeof(*views))) == NULL ||
		       (parts = tether_calloc(n, sizeof(*parts))) == NULL))) {
		relay_refuse(q, TETHER_CTRL_E_INTERNAL, "cannot read agents");
		goto out;
	}
	for (i = 0; i < n; i++)
		agent_row_view(q->r, &rows[i], &parts[i], &views[i]);
	ok.agents = views;
	ok.nagents = n;
	relay_answer(q, &ok);
out:
	for (i = 0; parts != NULL && i < n; i++) {
		tether_ctrl_part_free(&parts[i].labels);
		tether_ctrl_part_free(&parts[i].facts);
	}
	tether_free(parts);
	tether_free(views);
	relay_store_agent_rows_free(rows, n);
}

static void check_view(const struct relay_store_check *c,
		       struct tether_ctrl_part_msg *perf,
		       struct tether_ctrl_check_row *v)
{
	memset(v, 0, sizeof(*v));
	v->agent = c->agent;
	v->check = c->check;
	v->state = c->state;
	v->type = c->type;
	v->attempt = c->attempt;
	v->max_attempts = c->max_attempts;
	v->since = c->since;
	v->last = c->ts;
	v->output = c->output;
	if (stored_part(TETHER_CTRL_PART_PERFDATA, c->perfdata, perf)) {
		v->perfdata = perf->body.perfdata.perfdata;
		v->nperfdata = perf->body.perfdata.nperfdata;
	}
	v->ticket = c->ticket_id;
	v->flapping = c->flapping;
}

void relay_health_list(struct relay_request *q)
{
	const char *agent = q->m->body.health.agent;
	struct tether_ctrl_health_ok ok = {0};
	struct tether_ctrl_check_row *views = NULL;
	struct tether_ctrl_part_msg *perf = NULL;
	struct relay_store_check *rows = NULL;
	size_t n = 0, i;
	int err;

	err = relay_store_health_list(q->r->store, agent, &rows, &n);
	if (err == 0 && n > 0 &&
	    ((views = tether_calloc(n, sizeof(*views))) == NULL ||
	     (perf = tether_calloc(n, sizeof(*perf))) == NULL))
		err = TETHER_ERR_NOMEM;
	if (err == TETHER_ERR_NOT_FOUND) {
		relay_refuse(q, TETHER_CTRL_E_NOT_FOUND, "no agent named %.64s",
			     agent);
		goto out;
	}
	if (err != 0) {
		relay_refuse(q, TETHER_CTRL_E_INTERNAL, "cannot read health");
		goto out;
	}
	for (i = 0; i < n; i++)
		check_view(&rows[i], &perf[i], &views[i]);
	ok.checks = views;
	ok.nchecks = n;
	relay_answer(q, &ok);
out:
	for (i = 0; perf != NULL && i < n; i++)
		tether_ctrl_part_free(&perf[i]);
	tether_free(perf);
	tether_free(views);
	relay_store_checks_free(rows, n);
}

void relay_health_diag_attach(struct relay_request *q)
{
	const struct tether_ctrl_diag_attach *da = &q->m->body.diag_attach;
	struct tether_ctrl_diag_attach_ok ok = {
	    .size = (int64_t)strlen(da->bundle)};
	char t[TETHER_ID_TICKET_LEN];
	struct relay_store_ticket tk;
	int err;

	err = relay_store_ticket_get(q->r->store, da->ticket, &tk);
	relay_store_ticket_clear(&tk);
	if (err == TETHER_ERR_NOT_FOUND) {
		tether_id_ticket_format(da->ticket, t, sizeof(t));
		relay_refuse(q, TETHER_CTRL_E_NOT_FOUND, "no ticket %s", t);
		return;
	}
	if (err == 0)
		err = attach_bundle(q->r, da->ticket, q->actor, da->bundle);
	if (err == TETHER_ERR_DB || err == TETHER_ERR_NOMEM) {
		relay_refuse(q, TETHER_CTRL_E_INTERNAL,
			     "cannot store the bundle");
		return;
	}
	if (err != 0) {
		relay_refuse(q, TETHER_CTRL_E_BAD_REQUEST, "bundle: %s",
			     tether_strerror(err));
		return;
	}
	relay_answer(q, &ok);
}

void relay_health_diag_get(struct relay_request *q)
{
	int64_t tid = q->m->body.ticket_ref.ticket;
	struct tether_ctrl_diag_get_ok ok = {0};
	struct relay_store_attachment att = {0};
	struct relay_store_ticket tk;
	char t[TETHER_ID_TICKET_LEN];
	int err;

	tether_id_ticket_format(tid, t, sizeof(t));
	/* A ticket that is not there has no bundle either: say which. */
	err = relay_store_ticket_get(q->r->store, tid, &tk);
	relay_store_ticket_clear(&tk);
	if (err == TETHER_ERR_NOT_FOUND) {
		relay_refuse(q, TETHER_CTRL_E_NOT_FOUND, "no such ticket %s",
			     t);
		return;
	}
	err = err != 0 ? err
		       : relay_store_attachment_latest(q->r->store, tid, "diag",
						       &att);
	if (err == TETHER_ERR_NOT_FOUND) {
		relay_refuse(q, TETHER_CTRL_E_NOT_FOUND,
			     "no diagnostics saved on %s", t);
	} else if (err != 0) {
		relay_refuse(q, TETHER_CTRL_E_INTERNAL,
			     "cannot read the bundle");
	} else {
		ok.bundle = att.data;
		ok.created_at = att.created_at;
		ok.source = att.source;
		relay_answer(q, &ok);
	}
	relay_store_attachment_clear(&att);
}
