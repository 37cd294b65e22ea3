/*
 * Who may stay connected.  `tether-relay technician remove` runs as
 * another process on the relay host and only writes the store, so the
 * running relay looks every RELAY_ACCESS_CHECK_MS: when the store says
 * someone else wrote to it (or a login here registered a new key), the
 * technician of every console is read again: a console whose technician
 * is gone, or whose key is no longer the registered one, is cut off at
 * once, its channels closed towards the agents with the reason, and
 * audited; one whose role changed loses what the new role may not do
 * (relay-policy.c).
 */
#include <stdio.h>

#include <tether/crypto.h>
#include <tether/err.h>
#include <tether/link.h>
#include <tether/log.h>
#include <tether/proto.h>

#include "relay.h"

/*
 * A role changed on the relay host: what the technician may no longer do
 * is cut (relay-policy.c), once per technician.
 */
static void role_changed(struct relay *r, struct relay_peer *p,
			 const struct relay_store_tech *t)
{
	char why[TETHER_CTRL_REASON_MAX];

	tether_log_info("technician %s is now %s", t->name,
			tether_ctrl_name_of(tech_role, t->role));
	snprintf(why, sizeof(why),
		 "your role was changed to %s on the relay host",
		 tether_ctrl_name_of(tech_role, t->role));
	relay_policy_revoke(r, p->tech.id, t->role, "relay", why);
}

void relay_access_recheck(struct relay *r)
{
	struct relay_store_tech t;
	struct relay_peer *p;
	bool changed = false;
	int rc;

	/* data_version has moved on: a console skipped on an error is
	 * looked at again until its lookup answers. */
	if (!r->access_retry &&
	    (relay_store_changed_elsewhere(r->store, &changed) != 0 ||
	     !changed))
		return;
	r->access_retry = false;
	for (p = r->peers; p != NULL; p = p->next) {
		/* One already closing was cut, or is going anyway. */
		if (p->role != RELAY_PEER_CONSOLE || p->link == NULL ||
		    !tether_link_is_open(p->link))
			continue;
		/* Only NOT_FOUND cuts: a store error is no verdict, yet. */
		rc = relay_store_tech_get(r->store, p->tech.id, &t);
		if (rc == TETHER_ERR_NOT_FOUND)
			relay_policy_cut_off(r, p, "relay", "was removed",
					     TETHER_REASON_TECH_REMOVED);
		else if (rc == 0 && (!t.has_key ||
				     !tether_ct_equal(t.pubkey, p->tech.pubkey,
						      sizeof(t.pubkey))))
			relay_policy_cut_off(r, p, "relay",
					     "logged in with a new key",
					     TETHER_REASON_TECH_KEY_REPLACED);
		else if (rc != 0)
			r->access_retry = true;
		else if (t.role != p->tech.role)
			role_changed(r, p, &t);
		tether_wipe(&t, sizeof(t));
	}
}
