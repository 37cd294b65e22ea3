/*
 * Per-address limits: failed attempts at codes and tokens (a sliding
 * one-minute window), and concurrent connections.  IPv6 addresses count per
 * /64, since one host commonly holds a whole /64.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include <tether/err.h>

#include "relay.h"

/*
 * The address a peer's "ip:port" is limited under.  An IPv6 address is
 * read as its 16 bytes and cut to its /64 ("2001:db8::/64"), so that no
 * spelling of it ("::" early, upper case) counts as another network, and
 * an IPv4-mapped one as the IPv4 address it is; one that does not parse
 * is limited as written.
 */
static void limit_key(const char *addr, char *key, size_t len)
{
	const char *colon = strrchr(addr, ':');
	size_t n = colon != NULL ? (size_t)(colon - addr) : strlen(addr);
	/* A /64 with zeros after it prints in at most 21 characters. */
	char text[INET6_ADDRSTRLEN], net[32];
	struct in6_addr a;

	if (addr[0] == '[' && n >= 2 && addr[n - 1] == ']' &&
	    n - 2 < sizeof(text)) {
		memcpy(text, addr + 1, n - 2);
		text[n - 2] = '\0';
		/* An IPv4 client of a dual-stack listener is its IPv4. */
		if (inet_pton(AF_INET6, text, &a) == 1 &&
		    IN6_IS_ADDR_V4MAPPED(&a) &&
		    inet_ntop(AF_INET, a.s6_addr + 12, net, sizeof(net)) !=
			NULL) {
			snprintf(key, len, "%s", net);
			return;
		}
		if (inet_pton(AF_INET6, text, &a) == 1) {
			memset(a.s6_addr + 8, 0, 8);
			if (inet_ntop(AF_INET6, &a, net, sizeof(net)) != NULL) {
				snprintf(key, len, "%s/64", net);
				return;
			}
		}
	}
	snprintf(key, len, "%.*s", (int)n, addr);
}

/* Whether a slot's window has run out (an empty slot has none). */
static bool window_over(const struct relay_rate *s, uint64_t now)
{
	return s->addr[0] == '\0' ||
	       now - s->window_start > RELAY_JOIN_WINDOW_MS;
}

/* The slot that holds key, or NULL: a lookup, nothing is taken. */
static struct relay_rate *find_slot(struct relay *r, const char *key)
{
	unsigned i;

	for (i = 0; i < RELAY_RATE_SLOTS; i++)
		if (r->rates[i].addr[0] != '\0' &&
		    strcmp(r->rates[i].addr, key) == 0)
			return &r->rates[i];
	return NULL;
}

/*
 * The slot a new address's first failure takes.  Empty or run-out slots
 * go first; in a table full of live windows the one with the fewest
 * failures (the oldest of those), so that addresses which fail once and
 * move on evict one another, and a throttled address goes only once every
 * other slot is throttled too.  Some slot is always given: refusing would
 * leave a newcomer's failures uncounted while the table is full.
 */
static struct relay_rate *victim_slot(struct relay *r, uint64_t now)
{
	struct relay_rate *best = NULL, *s;
	unsigned i;

	for (i = 0; i < RELAY_RATE_SLOTS; i++) {
		s = &r->rates[i];
		if (window_over(s, now))
			return s;
		if (best == NULL || s->fails < best->fails ||
		    (s->fails == best->fails &&
		     s->window_start < best->window_start))
			best = s;
	}
	return best;
}

bool relay_rate_limited(struct relay *r, const char *addr)
{
	const struct relay_rate *s;
	char key[48];

	/*
	 * A pure lookup: every attempt asks, and an address that never
	 * failed must take no room, or rotating source addresses would fill
	 * the table and leave none for the addresses that do fail.
	 */
	limit_key(addr, key, sizeof(key));
	s = find_slot(r, key);
	return s != NULL && !window_over(s, relay_now_ms()) &&
	       s->fails >= RELAY_JOIN_FAILS_MAX;
}

void relay_rate_fail(struct relay *r, const char *addr)
{
	uint64_t now = relay_now_ms();
	struct relay_rate *s;
	char key[48];

	limit_key(addr, key, sizeof(key));
	s = find_slot(r, key);
	if (s == NULL) {
		s = victim_slot(r, now);
		memset(s, 0, sizeof(*s));
		snprintf(s->addr, sizeof(s->addr), "%s", key);
	}
	if (s->fails == 0 || window_over(s, now)) {
		s->window_start = now;
		s->fails = 0;
	}
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
