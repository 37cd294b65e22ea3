/*
 * Health of enrolled agents (docs/protocol.md, "Enrolled agents"): check
 * results stored and acknowledged, proactive tickets opened or noted on
 * hard state changes, diagnostics bundles requested for those tickets and
 * attached, and the console's views of agents and checks.
 *
 * A result is acknowledged only once it is durably stored, so an agent
 * resends whatever a relay crash lost; the seq makes a resent result a
 * no-op.  Ticket decisions are made after the store says what changed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tether/bundle.h>
#include <tether/err.h>
#include <tether/log.h>
#include <tether/proto.h>

#include "relay.h"

#define CHECK_NAME_MAX 64
#define OUTPUT_MAX 1024
#define PERFDATA_MAX 4096
/* Hard changes within the hour that make a check flapping. */
#define FLAP_CHANGES 4

static const char *const states[] = {"OK", "WARNING", "CRITICAL", "UNKNOWN",
				      NULL};
static const char *const types[] = {"SOFT", "HARD", NULL};
static const char *const ticket_ons[] = {"critical", "warning", "never",
					 NULL};

/*
 * Copies at most max bytes of the UTF-8 text s (jansson validated it) into
 * out, cut before a character rather than inside one: a clipped sequence
 * would be stored, and every later view of the health table would fail to
 * make a JSON string of it.
 */
static void clip_utf8(const char *s, char *out, size_t max)
{
	size_t n = strlen(s);

	if (n > max) {
		n = max;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	memcpy(out, s, n);
	out[n] = '\0';
}

static void ticket_name(int64_t id, char *buf, size_t len)
{
	snprintf(buf, len, "T-%lld", (long long)id);
}

/* An audit row on the ticket about this check. */
static void note(struct relay_peer *p, int64_t ticket_id, const char *event,
		 const struct tether_store_result *res, const char *extra)
{
	char actor[96];

	snprintf(actor, sizeof(actor), "agent:%s", p->agent_name);
	relay_audit(p->relay, actor, ticket_id, 0, event,
		    json_pack("{s:s, s:s, s:s, s:s, s:s*}", "agent",
			      p->agent_name, "check", res->check, "state",
			      res->state, "output",
			      res->output ? res->output : "", "note", extra));
}

static void want_diag(struct relay_peer *p, int64_t ticket_id)
{
	char t[32];

	ticket_name(ticket_id, t, sizeof(t));
	relay_send(p, json_pack("{s:s, s:s}", "t", "diag_request", "ticket", t));
}

static void open_ticket(struct relay_peer *p,
			const struct tether_store_result *res)
{
	struct relay *r = p->relay;
	char title[256];
	int64_t tid = 0;

	snprintf(title, sizeof(title), "%s: %s is %s", p->agent_name,
		 res->check, res->state);
	if (tether_store_ticket_new(r->store, title, p->agent_name, "health", 0,
				    &tid) != 0 ||
	    tether_store_health_set_ticket(r->store, p->agent_id, res->check,
					   tid) != 0) {
		tether_log_err(TETHER_ERR_DB, "cannot open a ticket for %s",
			       title);
		return;
	}
	tether_log_info("opened T-%lld: %s", (long long)tid, title);
	note(p, tid, "health_open", res, NULL);
	want_diag(p, tid);
}

/*
 * The proactive part: what a hard change means for the check's ticket.
 * Tickets open on CRITICAL (or WARNING when the check asks for it); an
 * open ticket gets every later change as a note; a flapping check gets
 * one note and then silence until it has been steady for an hour.
 */
static void hard_change(struct relay_peer *p,
			const struct tether_store_result *res,
			const char *ticket_on,
			const struct tether_store_health_change *ch)
{
	struct relay *r = p->relay;
	bool alarm = strcmp(res->state, "CRITICAL") == 0 ||
		     (strcmp(res->state, "WARNING") == 0 &&
		      strcmp(ticket_on, "warning") == 0);
	bool flapping = ch->flapping;

	if (strcmp(ticket_on, "never") == 0)
		alarm = false;
	if (ch->hard_changes_1h >= FLAP_CHANGES && !flapping) {
		flapping = true;
		tether_store_health_set_flapping(r->store, p->agent_id,
						 res->check, true);
		if (ch->ticket_id != 0)
			note(p, ch->ticket_id, "health_flapping", res,
			     "flapping: notes held until it has been steady "
			     "for an hour");
		return;
	}
	if (flapping && ch->hard_changes_1h <= 1) {
		flapping = false;
		tether_store_health_set_flapping(r->store, p->agent_id,
						 res->check, false);
	}
	if (flapping)
		return;
	if (ch->ticket_id == 0) {
		if (alarm)
			open_ticket(p, res);
		return;
	}
	note(p, ch->ticket_id,
	     strcmp(res->state, "OK") == 0 ? "health_recovered"
					   : "health_change",
	     res, NULL);
}

static void check_result(struct relay_peer *p, json_t *msg)
{
	struct relay *r = p->relay;
	struct tether_store_result res = {0};
	struct tether_store_health_change ch;
	const char *ticket_on = "critical", *output = "";
	json_t *perf = NULL;
	json_int_t seq = 0, attempt = 0, max_attempts = 0, ts = 0;
	json_int_t dropped = 0;
	char out[OUTPUT_MAX + 1];
	char *perf_text = NULL;
	int err;

	if (json_unpack(msg, "{s:I, s:s, s:s, s:s, s:I, s:I, s?s, s?o, s:I,"
			" s?s, s?I}",
			"seq", &seq, "check", &res.check, "state", &res.state,
			"type", &res.type, "attempt", &attempt,
			"max_attempts", &max_attempts, "output", &output,
			"perfdata", &perf, "ts", &ts, "ticket_on", &ticket_on,
			"dropped", &dropped) != 0 ||
	    seq <= 0 || !relay_name_valid(res.check, CHECK_NAME_MAX) ||
	    !relay_one_of(res.state, states) || !relay_one_of(res.type, types) ||
	    !relay_one_of(ticket_on, ticket_ons) || attempt < 0 ||
	    max_attempts < 0 || (perf != NULL && !json_is_array(perf))) {
		relay_drop(p, TETHER_ERR_PROTOCOL, "malformed check result");
		return;
	}
	/* Clip rather than refuse: a chatty plugin is not an attack. */
	clip_utf8(output, out, OUTPUT_MAX);
	if (perf != NULL) {
		perf_text = json_dumps(perf, JSON_COMPACT);
		if (perf_text != NULL && strlen(perf_text) > PERFDATA_MAX) {
			free(perf_text);
			perf_text = NULL;
		}
	}
	res.seq = seq;
	res.attempt = attempt;
	res.max_attempts = max_attempts;
	res.output = out;
	res.perfdata = perf_text;
	/* A clock far off is the agent's problem, not the history's. */
	res.ts = ts > 0 && ts < (json_int_t)time(NULL) + 300 ? ts : time(NULL);
	err = tether_store_health_record(r->store, p->agent_id, &res, &ch);
	free(perf_text);
	res.perfdata = NULL;
	if (err != 0) {
		/*
		 * Not acknowledged, and the connection goes: acks are
		 * cumulative, so acknowledging a later result would make the
		 * agent forget this one.  It reconnects and resends from the
		 * last stored seq.
		 */
		tether_log_err(err, "cannot store a result of %s/%s",
			       p->agent_name, res.check);
		relay_drop(p, TETHER_ERR_INTERNAL, "cannot store the result");
		return;
	}
	if (ch.over_limit) {
		/* Acknowledged, so that the agent's other results flow. */
		if (!p->checks_over_limit)
			tether_log_warn("agent %s: more than %d checks; results "
					"of %s and other new ones are dropped",
					p->agent_name, TETHER_STORE_CHECKS_MAX,
					res.check);
		p->checks_over_limit = true;
		relay_send(p, json_pack("{s:s, s:I}", "t", "check_ack", "seq",
					seq));
		return;
	}
	if (!ch.duplicate && dropped > 0)
		relay_audit(r, "relay", 0, 0, "health_dropped",
			    json_pack("{s:s, s:I}", "agent", p->agent_name,
				      "dropped", dropped));
	if (!ch.duplicate && ch.hard_change) {
		tether_log_info("%s/%s: HARD %s -> %s", p->agent_name,
				res.check, ch.prev_hard, res.state);
		hard_change(p, &res, ticket_on, &ch);
	}
	relay_send(p, json_pack("{s:s, s:I}", "t", "check_ack", "seq", seq));
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
	if (tether_store_attach(r->store, tid, "diag", actor, bundle, NULL))
		return TETHER_ERR_DB;
	relay_audit(r, actor, tid, 0, "diag_attached",
		    json_pack("{s:s, s:I}", "source", actor, "size",
			      (json_int_t)strlen(bundle)));
	return 0;
}

static void diag_answer(struct relay_peer *p, json_t *msg)
{
	struct relay *r = p->relay;
	const char *ticket = NULL, *bundle = NULL, *error = NULL;
	char actor[96];
	int64_t tid = 0;
	int err;

	if (json_unpack(msg, "{s:s, s?s, s?s}", "ticket", &ticket, "bundle",
			&bundle, "error", &error) != 0 ||
	    relay_parse_ticket(ticket, &tid) != 0) {
		relay_drop(p, TETHER_ERR_PROTOCOL, "malformed diag");
		return;
	}
	/*
	 * Only a ticket this agent's check opened and that has no bundle
	 * from it yet: an agent cannot fill others.  Asked of the store, so
	 * an answer that waited out a reconnect still lands.
	 */
	if (tether_store_diag_wanted(r->store, p->agent_id, tid) != 1) {
		tether_log_warn("agent %s: unrequested diagnostics for %s",
				p->agent_name, ticket);
		return;
	}
	snprintf(actor, sizeof(actor), "agent:%s", p->agent_name);
	if (bundle == NULL) {
		relay_audit(r, actor, tid, 0, "diag_failed",
			    json_pack("{s:s}", "reason",
				      error ? error : "no bundle"));
		return;
	}
	err = attach_bundle(r, tid, actor, bundle);
	if (err != 0)
		relay_audit(r, actor, tid, 0, "diag_failed",
			    json_pack("{s:s}", "reason", tether_strerror(err)));
}

void relay_health_agent_message(struct relay_peer *p, const char *type,
				json_t *msg)
{
	if (strcmp(type, "check") == 0)
		check_result(p, msg);
	else if (strcmp(type, "diag") == 0)
		diag_answer(p, msg);
	else
		relay_drop(p, TETHER_ERR_PROTOCOL, "unknown message");
}

/* ---- Console requests ---- */

void relay_health_agents(struct relay_peer *p, int64_t id, json_t *msg)
{
	struct relay *r = p->relay;
	json_t *agents = NULL, *a;
	const char *name;
	size_t i;

	(void)msg;
	if (tether_store_agent_list(r->store, &agents) != 0) {
		relay_reply_err(p, id, "internal", "cannot read agents");
		return;
	}
	json_array_foreach(agents, i, a) {
		name = json_string_value(json_object_get(a, "name"));
		json_object_set_new(a, "connected",
				    json_boolean(name != NULL &&
						 relay_enrolled_peer(r, name)));
	}
	relay_reply_ok(p, id, json_pack("{s:o}", "agents", agents));
}

void relay_health_list(struct relay_peer *p, int64_t id, json_t *msg)
{
	const char *agent = json_string_value(json_object_get(msg, "agent"));
	json_t *checks = NULL;
	int err;

	err = tether_store_health_list(p->relay->store, agent, &checks);
	if (err == TETHER_ERR_NOT_FOUND)
		relay_reply_err(p, id, "not_found", "no agent named %.64s",
				agent);
	else if (err != 0)
		relay_reply_err(p, id, "internal", "cannot read health");
	else
		relay_reply_ok(p, id, json_pack("{s:o}", "checks", checks));
}

void relay_health_diag_attach(struct relay_peer *p, int64_t id, json_t *msg)
{
	struct relay *r = p->relay;
	const char *ticket = NULL, *bundle = NULL;
	char actor[96];
	int64_t tid = 0;
	int err;

	if (json_unpack(msg, "{s:s, s:s}", "ticket", &ticket, "bundle",
			&bundle) != 0 ||
	    relay_parse_ticket(ticket, &tid) != 0) {
		relay_reply_err(p, id, "bad_request", "ticket and bundle");
		return;
	}
	if (tether_store_ticket_brief(r->store, tid, NULL, 0, NULL, 0) != 0) {
		relay_reply_err(p, id, "not_found", "no ticket %.32s", ticket);
		return;
	}
	relay_actor(p, actor, sizeof(actor));
	err = attach_bundle(r, tid, actor, bundle);
	if (err == TETHER_ERR_DB) {
		relay_reply_err(p, id, "internal", "cannot store the bundle");
		return;
	}
	if (err != 0) {
		relay_reply_err(p, id, "bad_request", "bundle: %s",
				tether_strerror(err));
		return;
	}
	relay_reply_ok(p, id,
		       json_pack("{s:I}", "size", (json_int_t)strlen(bundle)));
}

void relay_health_diag_get(struct relay_peer *p, int64_t id, json_t *msg)
{
	const char *ticket = json_string_value(json_object_get(msg, "ticket"));
	json_t *att = NULL;
	int64_t tid = 0;
	int err;

	if (ticket == NULL || relay_parse_ticket(ticket, &tid) != 0) {
		relay_reply_err(p, id, "bad_request", "ticket");
		return;
	}
	err = tether_store_attachment_latest(p->relay->store, tid, "diag",
					     &att);
	if (err == TETHER_ERR_NOT_FOUND)
		relay_reply_err(p, id, "not_found",
				"no diagnostics saved on %.32s", ticket);
	else if (err != 0)
		relay_reply_err(p, id, "internal", "cannot read the bundle");
	else {
		json_object_set(att, "bundle", json_object_get(att, "data"));
		json_object_del(att, "data");
		relay_reply_ok(p, id, att);
	}
}
