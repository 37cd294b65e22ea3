/*
 * Who may stay connected.  `tether-relay technician remove` runs as
 * another process on the relay host and only writes the store, so the
 * running relay looks every RELAY_ACCESS_CHECK_MS: when the store says
 * someone else wrote to it (or a login here registered a new key), the
 * technician of every console is read again, and a console whose
 * technician is gone, or whose key is no longer the registered one, is
 * cut off at once, its channels closed towards the agents with the
 * reason, and audited.
 */
#include <tether/crypto.h>
#include <tether/err.h>
#include <tether/link.h>
#include <tether/log.h>
#include <tether/proto.h>

#include "relay.h"

/* Cuts p off: every channel, then the connection, each with the reason. */
static void cut_off(struct relay *r, struct relay_peer *p, const char *why,
		    const char *reason)
{
	unsigned n = relay_channels_of(r, p);

	tether_log_info("technician %s %s: closing %s (%u channel%s)",
			p->tech.name, why, p->addr, n, n == 1 ? "" : "s");
	relay_audit(r, "relay", 0, 0, "technician_cut_off",
		    json_pack("{s:s, s:I, s:s, s:I, s:s}", "technician",
			      p->tech.name, "id", (json_int_t)p->tech.id,
			      "addr", p->addr, "channels", (json_int_t)n,
			      "reason", reason));
	relay_channels_close_peer(r, p, reason);
	relay_drop(p, TETHER_ERR_AUTH, reason);
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
			cut_off(r, p, "was removed",
				TETHER_REASON_TECH_REMOVED);
		else if (rc == 0 && (!t.has_key ||
				     !tether_ct_equal(t.pubkey, p->tech.pubkey,
						      sizeof(t.pubkey))))
			cut_off(r, p, "logged in with a new key",
				TETHER_REASON_TECH_KEY_REPLACED);
		else if (rc != 0)
			r->access_retry = true;
		tether_wipe(&t, sizeof(t));
	}
}
