/*
 * Unit tests for the relay's per-address failure limiter (relay-limit.c):
 * a table of RELAY_RATE_SLOTS addresses with their failures in a sliding
 * window.  A peer that cycles source addresses must neither fill the
 * table with addresses that never failed (refusing everyone else) nor
 * wash out the slots of addresses that are being throttled.  No loop, no
 * peers: a zeroed struct relay holds the table, and a window is made to
 * run out by moving its start back.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay.h"

static struct relay *relay_new(void)
{
	struct relay *r = calloc(1, sizeof(*r));

	cr_assert(r != NULL);
	return r;
}

/* "127.X.Y.Z:port", a different address for every n. */
static const char *addr_of(unsigned n, char *buf, size_t len)
{
	snprintf(buf, len, "127.%u.%u.%u:%u", (n >> 16) & 255, (n >> 8) & 255,
		 n & 255, 40000 + n % 1000);
	return buf;
}

static unsigned slots_used(const struct relay *r)
{
	unsigned i, n = 0;

	for (i = 0; i < RELAY_RATE_SLOTS; i++)
		if (r->rates[i].addr[0] != '\0')
			n++;
	return n;
}

static void fail_times(struct relay *r, const char *addr, unsigned n)
{
	while (n-- > 0)
		relay_rate_fail(r, addr);
}

/* Every window in the table ends now: as if a minute had passed. */
static void age_all(struct relay *r)
{
	unsigned i;

	for (i = 0; i < RELAY_RATE_SLOTS; i++)
		if (r->rates[i].addr[0] != '\0')
			r->rates[i].window_start =
			    relay_now_ms() - RELAY_JOIN_WINDOW_MS - 1;
}

Test(relay_limit, five_failures_a_minute_then_refused)
{
	struct relay *r = relay_new();

	cr_assert(!relay_rate_limited(r, "10.0.0.1:1000"));
	fail_times(r, "10.0.0.1:1000", RELAY_JOIN_FAILS_MAX - 1);
	cr_assert(!relay_rate_limited(r, "10.0.0.1:1000"));
	/* The port does not matter: the address is limited. */
	relay_rate_fail(r, "10.0.0.1:2000");
	cr_assert(relay_rate_limited(r, "10.0.0.1:3000"));
	cr_assert(!relay_rate_limited(r, "10.0.0.2:1000"));
	free(r);
}

Test(relay_limit, ipv6_counts_per_64)
{
	struct relay *r = relay_new();

	fail_times(r, "[2001:db8:1:2:3::4]:5", RELAY_JOIN_FAILS_MAX);
	cr_assert(relay_rate_limited(r, "[2001:db8:1:2:ffff::1]:6"));
	cr_assert(!relay_rate_limited(r, "[2001:db8:1:3::1]:6"));
	free(r);
}

/*
 * A /64 is 64 bits whatever the spelling: a run of zeros written "::"
 * before the fourth group, or upper-case digits, must not give each host
 * of the network its own allowance.
 */
Test(relay_limit, ipv6_64_whatever_the_spelling)
{
	struct relay *r = relay_new();

	fail_times(r, "[2001:db8::a:b:c:d]:5", RELAY_JOIN_FAILS_MAX);
	cr_assert(relay_rate_limited(r, "[2001:db8::1]:6"));
	cr_assert(relay_rate_limited(r, "[2001:DB8:0:0:ffff::]:7"));
	cr_assert(!relay_rate_limited(r, "[2001:db8:0:1::]:6"));
	free(r);
	r = relay_new();
	fail_times(r, "[::1]:5", RELAY_JOIN_FAILS_MAX);
	cr_assert(relay_rate_limited(r, "[::2]:6"));
	cr_assert(!relay_rate_limited(r, "127.0.0.1:6"));
	free(r);
	/* IPv4 clients of a dual-stack listener stay one host each. */
	r = relay_new();
	fail_times(r, "[::ffff:10.0.0.1]:5", RELAY_JOIN_FAILS_MAX);
	cr_assert(relay_rate_limited(r, "10.0.0.1:6"));
	cr_assert(!relay_rate_limited(r, "[::ffff:10.0.0.2]:6"));
	free(r);
}

/*
 * Asking is no failure: addresses that only ask take no slot, so that
 * however many there are, nobody is refused for a table they filled.
 */
Test(relay_limit, lookups_take_no_slot)
{
	struct relay *r = relay_new();
	char a[64];
	unsigned i;

	for (i = 1; i <= 4 * RELAY_RATE_SLOTS; i++)
		cr_assert(!relay_rate_limited(r, addr_of(i, a, sizeof(a))),
			  "%s refused without a failure after %u others asked",
			  a, i - 1);
	cr_assert_eq(slots_used(r), 0, "lookups took %u slots", slots_used(r));
	free(r);
}

/* A throttled address stays throttled however many others fail once. */
Test(relay_limit, rotating_failures_keep_the_throttled)
{
	struct relay *r = relay_new();
	char a[64];
	unsigned i;

	fail_times(r, "10.9.9.9:1", RELAY_JOIN_FAILS_MAX);
	for (i = 1; i <= 40 * RELAY_RATE_SLOTS; i++)
		relay_rate_fail(r, addr_of(i, a, sizeof(a)));
	cr_assert(relay_rate_limited(r, "10.9.9.9:1"),
		  "rotating addresses evicted a throttled one");
	free(r);
}

/*
 * A table full of live one-failure slots still takes a newcomer's
 * failures (evicting one of those, never a throttled address), and a
 * newcomer that has not failed is not refused.
 */
Test(relay_limit, full_table_still_counts_newcomers)
{
	struct relay *r = relay_new();
	char a[64];
	unsigned i;

	fail_times(r, "10.9.9.9:1", RELAY_JOIN_FAILS_MAX);
	for (i = 1; i < RELAY_RATE_SLOTS; i++)
		relay_rate_fail(r, addr_of(i, a, sizeof(a)));
	cr_assert_eq(slots_used(r), RELAY_RATE_SLOTS);
	cr_assert(!relay_rate_limited(r, "10.1.1.1:1"),
		  "a newcomer refused because the table is full");
	fail_times(r, "10.1.1.1:1", RELAY_JOIN_FAILS_MAX - 1);
	cr_assert(!relay_rate_limited(r, "10.1.1.1:1"));
	relay_rate_fail(r, "10.1.1.1:1");
	cr_assert(relay_rate_limited(r, "10.1.1.1:1"),
		  "a newcomer's failures were not counted in a full table");
	cr_assert(relay_rate_limited(r, "10.9.9.9:1"),
		  "the throttled address was evicted");
	free(r);
}

/* Run-out windows go first, before any live one. */
Test(relay_limit, expired_slots_go_first)
{
	struct relay *r = relay_new();
	char a[64];
	unsigned i;

	for (i = 1; i <= RELAY_RATE_SLOTS; i++)
		relay_rate_fail(r, addr_of(i, a, sizeof(a)));
	age_all(r);
	/* One live throttled address and one live single failure. */
	fail_times(r, "10.9.9.9:1", RELAY_JOIN_FAILS_MAX);
	relay_rate_fail(r, "10.8.8.8:1");
	for (i = 1000; i < 1000 + RELAY_RATE_SLOTS - 2; i++)
		relay_rate_fail(r, addr_of(i, a, sizeof(a)));
	cr_assert(relay_rate_limited(r, "10.9.9.9:1"));
	relay_rate_fail(r, "10.8.8.8:2");
	relay_rate_fail(r, "10.8.8.8:3");
	fail_times(r, "10.8.8.8:4", RELAY_JOIN_FAILS_MAX - 3);
	cr_assert(relay_rate_limited(r, "10.8.8.8:1"),
		  "a live slot went before a run-out one");
	free(r);
}

/* A window that ran out forgets its failures, and counting starts anew. */
Test(relay_limit, window_runs_out)
{
	struct relay *r = relay_new();

	fail_times(r, "10.0.0.1:1", RELAY_JOIN_FAILS_MAX);
	cr_assert(relay_rate_limited(r, "10.0.0.1:1"));
	age_all(r);
	cr_assert(!relay_rate_limited(r, "10.0.0.1:1"));
	fail_times(r, "10.0.0.1:1", RELAY_JOIN_FAILS_MAX - 1);
	cr_assert(!relay_rate_limited(r, "10.0.0.1:1"));
	relay_rate_fail(r, "10.0.0.1:1");
	cr_assert(relay_rate_limited(r, "10.0.0.1:1"));
	free(r);
}
