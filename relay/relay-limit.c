/*
 * Per-address limits: failed attempts at codes and tokens (a sliding
 * one-minute window), and concurrent connections.  IPv6 addresses count per
 * /64, since one host commonly holds a whole /64.
 */
#include <stdio.h>
#include <string.h>

#include <tether/err.h>

#include "relay.h"

/* The address a peer's "ip:port" is limited under. */
static void limit_key(const char *addr, char *key, size_t len)
{
	const char *colon = strrchr(addr, ':');
	size_t n = colon != NULL ? (size_t)(colon - addr) : strlen(addr);
	unsigned groups = 0;
	size_t i;

	if (addr[0] == '[') {
		/* [a:b:c:d:...]:port -> a:b:c:d::/64 */
		for (i = 1; i < n && addr[i] != ']'; i++) {
			if (addr[i] == ':' && ++groups == 4)
				break;
		}
		snprintf(key, len, "%.*s::/64", (int)(i - 1), addr + 1);
		return;
	}
	snprintf(key, len, "%.*s", (int)n, addr);
}

/* The slot for an address; a new one takes the oldest expired slot. */
static struct relay_rate *rate_slot(struct relay *r, const char *addr)
{
	struct relay_rate *best = NULL;
	uint64_t now = relay_now_ms();
	char key[48];
	unsigned i;

	limit_key(addr, key, sizeof(key));
	for (i = 0; i < RELAY_RATE_SLOTS; i++) {
		struct relay_rate *s = &r->rates[i];

		if (strcmp(s->addr, key) == 0)
			return s;
		if (now - s->window_start > RELAY_JOIN_WINDOW_MS &&
		    (best == NULL || s->window_start < best->window_start))
			best = s;
	}
	/*
	 * Every slot still holds a live window: refuse rather than evict a
	 * throttled address, or rotating addresses would wash out limits.
	 */
	if (best == NULL)
		return NULL;
	memset(best, 0, sizeof(*best));
	snprintf(best->addr, sizeof(best->addr), "%s", key);
	best->window_start = now;
	return best;
}

bool relay_rate_limited(struct relay *r, const char *addr)
{
	struct relay_rate *s = rate_slot(r, addr);

	if (s == NULL)
		return true;
	if (relay_now_ms() - s->window_start > RELAY_JOIN_WINDOW_MS) {
		s->window_start = relay_now_ms();
		s->fails = 0;
	}
	return s->fails >= RELAY_JOIN_FAILS_MAX;
}

void relay_rate_fail(struct relay *r, const char *addr)
{
	struct relay_rate *s = rate_slot(r, addr);

	if (s != NULL)
		s->fails++;
}

bool relay_too_many_from(struct relay *r, const char *addr)
{
	char key[48], other[48];
	struct relay_peer *p;
	unsigned n = 0;

	limit_key(addr, key, sizeof(key));
	for (p = r->peers; p != NULL; p = p->next) {
		if (p->link == NULL)
			continue;
		limit_key(p->addr, other, sizeof(other));
		if (strcmp(key, other) == 0 && ++n > RELAY_PEERS_PER_ADDR)
			return true;
	}
	return false;
}
