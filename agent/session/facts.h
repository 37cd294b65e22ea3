/*
 * What the technician sees about this machine: host name, operating
 * system and the user commands run as.  Sent with join (attended) and
 * enroll (enrolled), shown in the customer's consent lines.
 */
#ifndef TETHER_AGENT_SESSION_FACTS_H
#define TETHER_AGENT_SESSION_FACTS_H

#include <tether/ctrl.h>

/* Sizes of the strings shown to the customer (after cleaning). */
#define AGENT_FACT_HOST_MAX 256
#define AGENT_FACT_OS_MAX 256
#define AGENT_FACT_USER_MAX 64

struct agent_facts {
	char hostname[AGENT_FACT_HOST_MAX];
	char os[AGENT_FACT_OS_MAX];
	char user[AGENT_FACT_USER_MAX];
};

/* Fills f, every field valid UTF-8 without controls; never fails. */
void agent_facts_gather(struct agent_facts *f);
/* The facts as a control message part, borrowing f's strings. */
void agent_facts_ctrl(const struct agent_facts *f,
		      struct tether_ctrl_facts *out);

#endif /* TETHER_AGENT_SESSION_FACTS_H */
