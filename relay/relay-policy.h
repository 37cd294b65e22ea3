/*
 * Who may do what (docs/security.md, "Roles and ownership"): one row per
 * console request giving the roles allowed and the ownership rule, and
 * the decision as a pure function over a technician and a ticket, so
 * that a unit test can walk every request and role.  relay-policy.c
 * applies it once before dispatch (relay_policy_check()).
 */
#ifndef RELAY_POLICY_H
#define RELAY_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tether/ctrl.h>
#include <tether/proto.h>

#define RELAY_ROLE(r) (1u << (r))
#define RELAY_ANY_ROLE                                                         \
	(RELAY_ROLE(TETHER_TECH_ADMIN) | RELAY_ROLE(TETHER_TECH_TECHNICIAN) |  \
	 RELAY_ROLE(TETHER_TECH_AUDITOR))
#define RELAY_WORKERS                                                          \
	(RELAY_ROLE(TETHER_TECH_ADMIN) | RELAY_ROLE(TETHER_TECH_TECHNICIAN))
#define RELAY_ADMINS RELAY_ROLE(TETHER_TECH_ADMIN)

/* What a technician (not an admin) needs of the ticket a request names. */
enum relay_policy_rule {
	RELAY_RULE_NONE,   /* no ticket */
	RELAY_RULE_SEE,	   /* visible: theirs, or in the unassigned queue */
	RELAY_RULE_ACT,	   /* theirs: assigned to them, or unassigned and
			      created by them */
	RELAY_RULE_ASSIGN, /* theirs (to anyone), or unassigned (to them) */
};

/* Where the request names its ticket. */
enum relay_policy_target {
	RELAY_TARGET_NONE,
	RELAY_TARGET_TICKET,  /* a ticket id in the body */
	RELAY_TARGET_SESSION, /* a session id: its ticket */
	RELAY_TARGET_CHANNEL, /* a channel id: its ticket */
};

struct relay_policy_row {
	unsigned roles; /* RELAY_ROLE() bits; 0: not a console request */
	enum relay_policy_rule rule;
	enum relay_policy_target target;
	size_t at; /* offset of the int64_t id in union tether_ctrl_body */
	const char
	    *verb; /* "close" in "carol (technician) may not close T-3" */
};

/* Indexed by request type. */
extern const struct relay_policy_row relay_policy_rows[TETHER_CTRL_TYPES];

/* A ticket as the policy sees it. */
struct relay_policy_ticket {
	int64_t id;
	int64_t created_by_id; /* 0: the relay */
	int64_t assignee_id;   /* 0: unassigned */
	const char *assignee;  /* name; NULL when unassigned */
	const char *created_by;
};

/* The technician asking. */
struct relay_policy_tech {
	int64_t id;
	const char *name;
	enum tether_tech_role role;
};

bool relay_policy_may_see(const struct relay_policy_tech *who,
			  const struct relay_policy_ticket *t);
bool relay_policy_may_act(const struct relay_policy_tech *who,
			  const struct relay_policy_ticket *t);
/*
 * Whether who may make request type about ticket t (NULL: none named, or
 * none found); to_self: a ticket_assign to who.  false with the reason
 * line in why ("carol (technician) may not close T-3: it is assigned to
 * bob") when not.
 */
bool relay_policy_allows(enum tether_ctrl_type type,
			 const struct relay_policy_tech *who,
			 const struct relay_policy_ticket *t, bool to_self,
			 char *why, size_t len);

#endif /* RELAY_POLICY_H */
