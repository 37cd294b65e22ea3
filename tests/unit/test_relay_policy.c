/*
 * The policy table and decision (relay/relay-policy.h): every console
 * request has a row; each role against tickets of their own, another's
 * and the unassigned queue; the reason line a refusal carries.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "relay-policy.h"

static const struct relay_policy_tech admin = {1, "ann", TETHER_TECH_ADMIN};
static const struct relay_policy_tech carol = {2, "carol",
					       TETHER_TECH_TECHNICIAN};
static const struct relay_policy_tech audrey = {3, "audrey",
						TETHER_TECH_AUDITOR};
/* T-1 carol's (assigned), T-2 bob's, T-3 unassigned, T-4 unassigned and
 * created by carol, T-5 created by carol and given to bob. */
static const struct relay_policy_ticket mine = {1, 2, 2, "carol", "carol"};
static const struct relay_policy_ticket bobs = {2, 4, 4, "bob", "bob"};
static const struct relay_policy_ticket queue = {3, 0, 0, NULL, NULL};
static const struct relay_policy_ticket made = {4, 2, 0, NULL, "carol"};
static const struct relay_policy_ticket given = {5, 2, 4, "bob", "carol"};

/*
 * Every request a console may send is in the table, with a verb; hello
 * and auth are the opening's (relay-hello.c), never dispatched.
 */
Test(relay_policy, every_console_request_has_a_row)
{
	int t;

	for (t = 0; t < TETHER_CTRL_TYPES; t++) {
		bool request = (tether_ctrl_type_dirs(t) & TETHER_CTRL_C2R) &&
			       t != TETHER_CTRL_PING && t != TETHER_CTRL_PONG &&
			       t != TETHER_CTRL_HELLO && t != TETHER_CTRL_AUTH;

		if (!request)
			continue;
		cr_assert_neq(relay_policy_rows[t].roles, 0u, "%s has no row",
			      tether_ctrl_type_name(t));
		cr_assert_not_null(relay_policy_rows[t].verb);
		/* Admins may do everything. */
		cr_assert(relay_policy_rows[t].roles &
			  RELAY_ROLE(TETHER_TECH_ADMIN));
	}
}

static bool allows(enum tether_ctrl_type t, const struct relay_policy_tech *w,
		   const struct relay_policy_ticket *tk, bool self)
{
	char why[256];

	return relay_policy_allows(t, w, tk, self, why, sizeof(why));
}

Test(relay_policy, technicians_act_on_their_own)
{
	static const enum tether_ctrl_type acts[] = {
	    TETHER_CTRL_TICKET_CLOSE, TETHER_CTRL_INVITE,
	    TETHER_CTRL_ATTACH,	      TETHER_CTRL_CONFIRM,
	    TETHER_CTRL_OPEN,	      TETHER_CTRL_CLOSE,
	    TETHER_CTRL_DIAG_ATTACH,  TETHER_CTRL_PAKE_FAILED};
	size_t i;

	for (i = 0; i < sizeof(acts) / sizeof(acts[0]); i++) {
		cr_assert(allows(acts[i], &carol, &mine, false));
		cr_assert(allows(acts[i], &carol, &made, false));
		cr_assert(!allows(acts[i], &carol, &bobs, false));
		cr_assert(!allows(acts[i], &carol, &queue, false));
		cr_assert(!allows(acts[i], &carol, &given, false));
		cr_assert(allows(acts[i], &admin, &bobs, false));
		cr_assert(!allows(acts[i], &audrey, &mine, false));
	}
	/* Reading: theirs, the queue, what they made; never another's. */
	cr_assert(allows(TETHER_CTRL_TICKET_SHOW, &carol, &queue, false));
	cr_assert(allows(TETHER_CTRL_TICKET_SHOW, &carol, &given, false));
	cr_assert(!allows(TETHER_CTRL_TICKET_SHOW, &carol, &bobs, false));
	cr_assert(!allows(TETHER_CTRL_DIAG_GET, &carol, &bobs, false));
	cr_assert(allows(TETHER_CTRL_TICKET_SHOW, &audrey, &bobs, false));
	cr_assert(allows(TETHER_CTRL_DIAG_GET, &audrey, &bobs, false));
	/* Assigning: take from the queue, give one's own away. */
	cr_assert(allows(TETHER_CTRL_TICKET_ASSIGN, &carol, &queue, true));
	cr_assert(!allows(TETHER_CTRL_TICKET_ASSIGN, &carol, &queue, false));
	cr_assert(allows(TETHER_CTRL_TICKET_ASSIGN, &carol, &mine, false));
	cr_assert(!allows(TETHER_CTRL_TICKET_ASSIGN, &carol, &bobs, true));
	cr_assert(!allows(TETHER_CTRL_TICKET_ASSIGN, &audrey, &queue, true));
	/* Administration is the admins'. */
	cr_assert(!allows(TETHER_CTRL_TECH_ADD, &carol, NULL, false));
	cr_assert(!allows(TETHER_CTRL_ENROLL_TOKEN, &audrey, NULL, false));
	cr_assert(allows(TETHER_CTRL_TECH_ROLE, &admin, NULL, false));
	cr_assert(!allows(TETHER_CTRL_TICKET_NEW, &audrey, NULL, false));
	cr_assert(allows(TETHER_CTRL_TICKET_NEW, &carol, NULL, false));
	cr_assert(allows(TETHER_CTRL_HEALTH, &audrey, NULL, false));
}

Test(relay_policy, refusals_say_who_what_and_why)
{
	char why[256];

	cr_assert(!relay_policy_allows(TETHER_CTRL_TICKET_CLOSE, &carol, &bobs,
				       false, why, sizeof(why)));
	cr_assert_str_eq(why, "carol (technician) may not close T-2: it is "
			      "assigned to bob");
	cr_assert(!relay_policy_allows(TETHER_CTRL_OPEN, &audrey, &mine, false,
				       why, sizeof(why)));
	cr_assert_str_eq(why, "audrey (auditor) may not open channels on T-1: "
			      "auditors only read");
	cr_assert(!relay_policy_allows(TETHER_CTRL_TECH_LIST, &carol, NULL,
				       false, why, sizeof(why)));
	cr_assert_str_eq(why, "carol (technician) may not list technicians: "
			      "only admins may");
	cr_assert(!relay_policy_allows(TETHER_CTRL_INVITE, &carol, &queue,
				       false, why, sizeof(why)));
	cr_assert(strstr(why, "tether ticket assign T-3 me") != NULL, "%s",
		  why);
}
