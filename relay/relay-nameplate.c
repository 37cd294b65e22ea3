/*
 * Drawing nameplates (docs/protocol.md, "Pairing"; docs/security.md,
 * "Tokens and codes").  A nameplate is drawn uniformly at random from
 * every number of up to k digits, k the fewest that keep the nameplates
 * held below one in RELAY_NAMEPLATE_SPARSE of the range: a customer who
 * types one digit wrong then lands on another ticket's code about one time
 * in twenty at most, instead of nearly always as with the shortest free
 * number.  The policy is here, in one pure function over a count and a
 * predicate, so that the unit tests can measure it without a relay.
 */
#include <stdio.h>

#include <tether/code.h>
#include <tether/crypto.h>
#include <tether/err.h>

#include "relay.h"

/* 10^digits - 1, the largest nameplate of that many digits. */
static uint32_t top_of(unsigned digits)
{
	uint32_t hi = 9;

	while (--digits > 0)
		hi = hi * 10 + 9;
	return hi;
}

int relay_nameplate_range(uint64_t held, uint32_t *lo, uint32_t *hi)
{
	unsigned digits = RELAY_NAMEPLATE_MIN_DIGITS;
	uint64_t need;

	/* Past this many no range is sparse enough: the widest it is. */
	if (held >= UINT32_MAX / RELAY_NAMEPLATE_SPARSE)
		held = UINT32_MAX / RELAY_NAMEPLATE_SPARSE - 1;
	need = RELAY_NAMEPLATE_SPARSE * (held + 1);
	while (digits < TETHER_CODE_NAMEPLATE_MAX &&
	       (uint64_t)(top_of(digits) - RELAY_NAMEPLATE_LO + 1) < need)
		digits++;
	*lo = RELAY_NAMEPLATE_LO;
	*hi = top_of(digits);
	return (uint64_t)(*hi - *lo + 1) >= need ? 0 : TETHER_ERR_LIMIT;
}

int relay_nameplate_draw(uint64_t held, relay_nameplate_busy_fn busy, void *ctx,
			 char *out, size_t len)
{
	uint32_t lo, hi, v;
	int tries, r;

	if (busy == NULL || out == NULL || len < TETHER_CODE_NAMEPLATE_MAX + 1)
		return TETHER_ERR_INVALID;
	/* A range too small for held still gets its tries: some may be free. */
	(void)relay_nameplate_range(held, &lo, &hi);
	for (;;) {
		/*
		 * A collision is rare (at most one draw in twenty), so that
		 * many in a row means held undercounts what is taken (burned
		 * nameplates, another process): the range grows instead.
		 */
		for (tries = 0; tries < RELAY_NAMEPLATE_TRIES; tries++) {
			/* Rejection sampling: every number equally likely. */
			r = tether_random_uniform(hi - lo + 1, &v);
			if (r != 0)
				return r;
			snprintf(out, len, "%u", (unsigned)(lo + v));
			if (!busy(ctx, out))
				return 0;
		}
		if (hi == top_of(TETHER_CODE_NAMEPLATE_MAX))
			break;
		hi = hi * 10 + 9;
	}
	out[0] = '\0';
	return TETHER_ERR_LIMIT;
}
