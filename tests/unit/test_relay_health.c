/*
 * Unit tests for the relay's health policy, relay_health_decide(): a pure
 * function from what the store holds about a check and a new result to
 * what the relay records and does (docs/protocol.md, "Proactive tickets").
 * No store, no peers: the store's answer is written out by hand.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "relay.h"

#define T0 1800000000 /* some Unix time */

/* What the store holds: a known check in a hard state, quiet so far. */
static struct relay_store_check_prev known(enum tether_check_state hard)
{
	struct relay_store_check_prev p;

	memset(&p, 0, sizeof(p));
	p.last_seq = 10;
	p.nchecks = 1;
	p.found = true;
	snprintf(p.check.check, sizeof(p.check.check), "disk");
	p.check.state = hard;
	p.check.type = TETHER_CHECK_HARD;
	p.check.ts = T0 - 60;
	p.check.since = T0 - 600;
	p.check.hard_state = hard;
	p.check.hard_since = T0 - 600;
	return p;
}

static struct relay_store_result
result(int64_t seq, enum tether_check_state state, enum tether_check_type type)
{
	struct relay_store_result r;

	memset(&r, 0, sizeof(r));
	r.seq = seq;
	r.check = "disk";
	r.state = state;
	r.type = type;
	r.attempt = type == TETHER_CHECK_HARD ? 3 : 1;
	r.max_attempts = 3;
	r.ts = T0;
	return r;
}

static struct relay_health_decision
decide(const struct relay_store_check_prev *p, enum tether_ticket_on on,
       struct relay_store_result *r)
{
	struct relay_health_decision d;

	relay_health_decide(p, on, r, &d);
	return d;
}

Test(relay_health, soft_results_keep_the_hard_state)
{
	struct relay_store_check_prev p = known(TETHER_CHECK_OK);
	struct relay_store_result r =
	    result(11, TETHER_CHECK_CRITICAL, TETHER_CHECK_SOFT);
	struct relay_health_decision d =
	    decide(&p, TETHER_TICKET_ON_CRITICAL, &r);

	cr_assert_eq(d.verdict, RELAY_HEALTH_RECORD);
	cr_assert_not(r.hard_change);
	cr_assert_eq(r.hard_state, TETHER_CHECK_OK);
	cr_assert_eq(r.hard_since, T0 - 600, "the hard state did not move");
	cr_assert_eq(r.since, T0, "the state did");
	cr_assert_eq(d.action, RELAY_HEALTH_NOTHING);
}

Test(relay_health, hard_critical_opens_a_ticket)
{
	struct relay_store_check_prev p = known(TETHER_CHECK_OK);
	struct relay_store_result r =
	    result(11, TETHER_CHECK_CRITICAL, TETHER_CHECK_HARD);
	struct relay_health_decision d =
	    decide(&p, TETHER_TICKET_ON_CRITICAL, &r);

	cr_assert(r.hard_change);
	cr_assert_eq(d.prev_hard, TETHER_CHECK_OK);
	cr_assert_eq(r.hard_state, TETHER_CHECK_CRITICAL);
	cr_assert_eq(r.hard_since, T0);
	cr_assert_eq(d.action, RELAY_HEALTH_OPEN);
}

Test(relay_health, a_new_check_was_ok)
{
	struct relay_store_check_prev p;
	struct relay_store_result r =
	    result(1, TETHER_CHECK_OK, TETHER_CHECK_HARD);
	struct relay_health_decision d;

	memset(&p, 0, sizeof(p));
	d = decide(&p, TETHER_TICKET_ON_CRITICAL, &r);
	cr_assert_eq(d.verdict, RELAY_HEALTH_RECORD);
	cr_assert_not(r.hard_change, "OK after nothing is no change");
	cr_assert_eq(r.since, T0);
	r = result(1, TETHER_CHECK_WARNING, TETHER_CHECK_HARD);
	d = decide(&p, TETHER_TICKET_ON_CRITICAL, &r);
	cr_assert(r.hard_change);
	cr_assert_eq(d.action, RELAY_HEALTH_NOTHING,
		     "WARNING opens nothing unless the check asks");
	d = decide(&p, TETHER_TICKET_ON_WARNING, &r);
	cr_assert_eq(d.action, RELAY_HEALTH_OPEN);
	r = result(1, TETHER_CHECK_CRITICAL, TETHER_CHECK_HARD);
	d = decide(&p, TETHER_TICKET_ON_NEVER, &r);
	cr_assert_eq(d.action, RELAY_HEALTH_NOTHING);
}

Test(relay_health, duplicates_and_checks_over_the_limit)
{
	struct relay_store_check_prev p = known(TETHER_CHECK_OK);
	struct relay_store_result r =
	    result(10, TETHER_CHECK_CRITICAL, TETHER_CHECK_HARD);
	struct relay_health_decision d =
	    decide(&p, TETHER_TICKET_ON_CRITICAL, &r);

	cr_assert_eq(d.verdict, RELAY_HEALTH_DUPLICATE);
	cr_assert_eq(d.action, RELAY_HEALTH_NOTHING);
	memset(&p, 0, sizeof(p));
	p.nchecks = RELAY_CHECKS_MAX;
	r = result(11, TETHER_CHECK_CRITICAL, TETHER_CHECK_HARD);
	d = decide(&p, TETHER_TICKET_ON_CRITICAL, &r);
	cr_assert_eq(d.verdict, RELAY_HEALTH_OVER_LIMIT);
	cr_assert_not(r.hard_change);
	/* A known check goes on at the limit. */
	p = known(TETHER_CHECK_OK);
	p.nchecks = RELAY_CHECKS_MAX;
	d = decide(&p, TETHER_TICKET_ON_CRITICAL, &r);
	cr_assert_eq(d.verdict, RELAY_HEALTH_RECORD);
}

Test(relay_health, an_open_ticket_gets_notes)
{
	struct relay_store_check_prev p = known(TETHER_CHECK_CRITICAL);
	struct relay_store_result r =
	    result(11, TETHER_CHECK_WARNING, TETHER_CHECK_HARD);
	struct relay_health_decision d;

	p.check.ticket_id = 7;
	p.ticket_open = true;
	p.hard_changes = 1;
	d = decide(&p, TETHER_TICKET_ON_CRITICAL, &r);
	cr_assert_eq(d.action, RELAY_HEALTH_NOTE_CHANGE);
	cr_assert_eq(d.ticket_id, 7);
	r = result(11, TETHER_CHECK_OK, TETHER_CHECK_HARD);
	d = decide(&p, TETHER_TICKET_ON_CRITICAL, &r);
	cr_assert_eq(d.action, RELAY_HEALTH_NOTE_RECOVERED);
	/* A closed ticket is not noted on: a new alarm opens another. */
	p.ticket_open = false;
	r = result(11, TETHER_CHECK_OK, TETHER_CHECK_HARD);
	d = decide(&p, TETHER_TICKET_ON_CRITICAL, &r);
	cr_assert_eq(d.action, RELAY_HEALTH_NOTHING);
	cr_assert_eq(d.ticket_id, 0);
	p.check.hard_state = TETHER_CHECK_OK;
	r = result(11, TETHER_CHECK_CRITICAL, TETHER_CHECK_HARD);
	d = decide(&p, TETHER_TICKET_ON_CRITICAL, &r);
	cr_assert_eq(d.action, RELAY_HEALTH_OPEN);
}

/* The fourth hard change within the hour flags the check, with one note. */
Test(relay_health, flapping_after_four_hard_changes_in_an_hour)
{
	struct relay_store_check_prev p = known(TETHER_CHECK_OK);
	struct relay_store_result r =
	    result(11, TETHER_CHECK_CRITICAL, TETHER_CHECK_HARD);
	struct relay_health_decision d;

	p.check.ticket_id = 7;
	p.ticket_open = true;
	p.hard_changes = 2; /* this one is the third */
	d = decide(&p, TETHER_TICKET_ON_CRITICAL, &r);
	cr_assert_not(r.flapping);
	cr_assert_eq(d.action, RELAY_HEALTH_NOTE_CHANGE);
	p.hard_changes = 3; /* this one is the fourth */
	d = decide(&p, TETHER_TICKET_ON_CRITICAL, &r);
	cr_assert(r.flapping);
	cr_assert_eq(d.action, RELAY_HEALTH_NOTE_FLAPPING);
	cr_assert_eq(d.ticket_id, 7);
	/* Without an open ticket there is nothing to note it on. */
	p.ticket_open = false;
	d = decide(&p, TETHER_TICKET_ON_CRITICAL, &r);
	cr_assert(r.flapping);
	cr_assert_eq(d.action, RELAY_HEALTH_NOTHING, "and no ticket opens");
}

Test(relay_health, flapping_holds_notes_back)
{
	struct relay_store_check_prev p = known(TETHER_CHECK_OK);
	struct relay_store_result r =
	    result(11, TETHER_CHECK_CRITICAL, TETHER_CHECK_HARD);
	struct relay_health_decision d;

	p.check.flapping = true;
	p.check.ticket_id = 7;
	p.ticket_open = true;
	p.hard_changes = 6;
	d = decide(&p, TETHER_TICKET_ON_CRITICAL, &r);
	cr_assert(r.hard_change);
	cr_assert(r.flapping, "still flapping");
	cr_assert_eq(d.action, RELAY_HEALTH_NOTHING);
	/* A soft result neither ends it nor notes anything. */
	r = result(12, TETHER_CHECK_OK, TETHER_CHECK_SOFT);
	p.hard_changes = 0;
	d = decide(&p, TETHER_TICKET_ON_CRITICAL, &r);
	cr_assert(r.flapping);
	cr_assert_eq(d.action, RELAY_HEALTH_NOTHING);
}

/* A change that finds the hour before it quiet ends the flapping. */
Test(relay_health, steady_again_after_an_hour)
{
	struct relay_store_check_prev p = known(TETHER_CHECK_OK);
	struct relay_store_result r =
	    result(11, TETHER_CHECK_CRITICAL, TETHER_CHECK_HARD);
	struct relay_health_decision d;

	p.check.flapping = true;
	p.check.ticket_id = 7;
	p.ticket_open = true;
	p.hard_changes = 1; /* one more in the hour: not steady yet */
	d = decide(&p, TETHER_TICKET_ON_CRITICAL, &r);
	cr_assert(r.flapping);
	cr_assert_eq(d.action, RELAY_HEALTH_NOTHING);
	p.hard_changes = 0; /* the hour before was quiet */
	d = decide(&p, TETHER_TICKET_ON_CRITICAL, &r);
	cr_assert_not(r.flapping);
	cr_assert_eq(d.action, RELAY_HEALTH_NOTE_CHANGE, "notes resume");
	p.ticket_open = false;
	d = decide(&p, TETHER_TICKET_ON_CRITICAL, &r);
	cr_assert_not(r.flapping);
	cr_assert_eq(d.action, RELAY_HEALTH_OPEN, "and tickets open again");
}
