/*
 * Unit tests for drawing nameplates (relay/relay-nameplate.c): the range
 * grows by powers of ten to stay twenty times the nameplates held, draws
 * are uniform over it, a busy nameplate is never handed out, and the
 * point of it all: with the range full to its limit, a one-digit slip
 * (n - 1 or n + 1) of a live nameplate lands on another live one about
 * one time in twenty at most.  The busy predicate is a bitmap.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tether/code.h>
#include <tether/err.h>
#include <tether/num.h>

#include "relay.h"

/* Nameplates below this are tracked; tests keep to ranges within. */
#define SPACE 100000

struct taken {
	unsigned char *bit;
	unsigned calls;
	unsigned busy_calls;
	bool all_busy;
};

static struct taken *taken_new(void)
{
	struct taken *t = calloc(1, sizeof(*t));

	cr_assert_not_null(t);
	t->bit = calloc(SPACE, 1);
	cr_assert_not_null(t->bit);
	return t;
}

static void taken_free(struct taken *t)
{
	free(t->bit);
	free(t);
}

static uint64_t value_of(const char *nameplate)
{
	uint64_t v;

	cr_assert(tether_code_nameplate_valid(nameplate), "\"%s\"", nameplate);
	cr_assert_eq(tether_num_parse_u64(nameplate, 1, SPACE - 1, &v), 0,
		     "\"%s\"", nameplate);
	return v;
}

static bool is_busy(void *ctx, const char *nameplate)
{
	struct taken *t = ctx;
	uint64_t v;
	bool busy;

	t->calls++;
	if (t->all_busy)
		return true;
	if (tether_num_parse_u64(nameplate, 1, SPACE - 1, &v) != 0)
		return false;
	busy = t->bit[v] != 0;
	t->busy_calls += busy;
	return busy;
}

static void range_of(uint64_t held, uint32_t lo, uint32_t hi)
{
	uint32_t l = 0, h = 0;

	cr_assert_eq(relay_nameplate_range(held, &l, &h), 0, "held %llu",
		     (unsigned long long)held);
	cr_assert(l == lo && h == hi, "held %llu: [%u, %u], wanted [%u, %u]",
		  (unsigned long long)held, l, h, lo, hi);
}

/* Two digits for a handful of invites, one more at each tenfold. */
Test(relay_nameplate, range_grows_by_powers_of_ten)
{
	range_of(0, 1, 99);
	range_of(3, 1, 99); /* 20 x 4 = 80 <= 99 */
	range_of(4, 1, 999);
	range_of(48, 1, 999); /* 20 x 49 = 980 */
	range_of(49, 1, 9999);
	range_of(498, 1, 9999);
	range_of(499, 1, 99999);
	range_of(4999998, 1, 99999999);
}

/* Whatever is held, the range has room twenty times over. */
Test(relay_nameplate, range_is_sparse)
{
	uint32_t lo, hi;
	uint64_t held;

	for (held = 0; held < 5000000;
	     held = held < 100 ? held + 1 : held * 3 / 2) {
		cr_assert_eq(relay_nameplate_range(held, &lo, &hi), 0);
		cr_assert_geq((uint64_t)(hi - lo + 1),
			      RELAY_NAMEPLATE_SPARSE * (held + 1), "held %llu",
			      (unsigned long long)held);
		cr_assert_leq(hi, 99999999u);
		/* Never a digit more than needed: short codes to read out. */
		if (hi > 99)
			cr_assert_lt((uint64_t)(hi / 10 - lo + 1),
				     RELAY_NAMEPLATE_SPARSE * (held + 1),
				     "held %llu: [%u, %u] is too wide",
				     (unsigned long long)held, lo, hi);
	}
	/* Past what eight digits can hold: the widest, and it says so. */
	cr_assert_eq(relay_nameplate_range(5000000, &lo, &hi),
		     TETHER_ERR_LIMIT);
	cr_assert_eq(hi, 99999999u);
	cr_assert_eq(relay_nameplate_range(UINT64_MAX, &lo, &hi),
		     TETHER_ERR_LIMIT);
}

/*
 * Uniform over 1..99: 99 x 400 draws, each nameplate's count within
 * 5 standard deviations of 400 (sd ~ 20), and a chi-square over all of
 * them below the 99.99th percentile for 98 degrees of freedom (~156).
 */
Test(relay_nameplate, uniform_within_the_range)
{
	enum { N = 99, PER = 400 };
	struct taken *t = taken_new();
	unsigned count[N + 1] = {0};
	char np[TETHER_CODE_NAMEPLATE_MAX + 1];
	double chi = 0;
	unsigned i;

	for (i = 0; i < N * PER; i++) {
		uint64_t v;

		cr_assert_eq(
		    relay_nameplate_draw(0, is_busy, t, np, sizeof(np)), 0);
		v = value_of(np);
		cr_assert(v >= 1 && v <= N, "%s is outside 1..99", np);
		count[v]++;
	}
	for (i = 1; i <= N; i++) {
		double d = (double)count[i] - PER;

		cr_assert(count[i] > PER - 100 && count[i] < PER + 100,
			  "%u drawn %u times of %u", i, count[i], N * PER);
		chi += d * d / PER;
	}
	cr_assert_lt(chi, 156.0, "chi-square %.1f over 98 degrees", chi);
	cr_assert_eq(t->calls, N * PER, "one look-up per free draw");
	taken_free(t);
}

/*
 * Filling the space the way the relay does (draw with the count held,
 * mark it taken) never hands out a taken one, keeps within the range for
 * the count, and stays sparse: no more than one in twenty of the range
 * is held.
 */
Test(relay_nameplate, never_busy_and_sparse_while_filling)
{
	struct taken *t = taken_new();
	char np[TETHER_CODE_NAMEPLATE_MAX + 1];
	uint64_t held, v;
	uint32_t lo, hi;

	for (held = 0; held < 2000; held++) {
		unsigned before = t->busy_calls;

		cr_assert_eq(
		    relay_nameplate_draw(held, is_busy, t, np, sizeof(np)), 0,
		    "held %llu", (unsigned long long)held);
		v = value_of(np);
		cr_assert_eq(t->bit[v], 0, "%s was handed out twice", np);
		cr_assert_eq(relay_nameplate_range(held, &lo, &hi), 0);
		/* Growing past the range takes 16 collisions: never here. */
		cr_assert(v >= lo && v <= hi, "%s outside [%u, %u]", np, lo,
			  hi);
		cr_assert_lt(t->busy_calls - before, RELAY_NAMEPLATE_TRIES);
		t->bit[v] = 1;
		cr_assert_leq((held + 1) * RELAY_NAMEPLATE_SPARSE,
			      (uint64_t)(hi - lo + 1));
	}
	taken_free(t);
}

/*
 * The scenario measured: at the fullest a range gets (48 live in
 * 1..999, 498 in 1..9999), a customer who types a live nameplate one
 * off lands on another live code at most about one time in twenty; the
 * shortest-free rule of old made that nearly certain.
 */
static double slip_rate(uint64_t live)
{
	struct taken *t = taken_new();
	char np[TETHER_CODE_NAMEPLATE_MAX + 1];
	uint64_t *have = calloc(live, sizeof(*have));
	unsigned hits = 0, slips = 0;
	uint64_t i;
	int d;

	cr_assert_not_null(have);
	for (i = 0; i < live; i++) {
		cr_assert_eq(
		    relay_nameplate_draw(i, is_busy, t, np, sizeof(np)), 0);
		have[i] = value_of(np);
		t->bit[have[i]] = 1;
	}
	for (i = 0; i < live; i++)
		for (d = -1; d <= 1; d += 2) {
			uint64_t n = have[i] + (uint64_t)(int64_t)d;

			slips++;
			if (n > 0 && n < SPACE && t->bit[n])
				hits++;
		}
	free(have);
	taken_free(t);
	return (double)hits / slips;
}

Test(relay_nameplate, one_digit_slips_rarely_hit_a_live_code)
{
	double a = 0, b = 0;
	int round;

	/* Averaged over rounds: one fill of 48 is a small sample. */
	for (round = 0; round < 20; round++)
		a += slip_rate(48) / 20;
	for (round = 0; round < 4; round++)
		b += slip_rate(498) / 4;
	cr_log_info("slips onto a live code: %.2f%% (48 live), %.2f%% "
		    "(498 live)",
		    100 * a, 100 * b);
	cr_assert_lt(a, 0.08, "48 live in 1..999: %.3f of slips hit", a);
	cr_assert_lt(b, 0.08, "498 live in 1..9999: %.3f of slips hit", b);
}

/* A range full of collisions grows; one where everything is taken fails. */
Test(relay_nameplate, collisions_grow_the_range_then_give_up)
{
	struct taken *t = taken_new();
	char np[TETHER_CODE_NAMEPLATE_MAX + 1];
	unsigned i;

	/* held says 0, but 1..99 are all taken (burned, another process). */
	for (i = 1; i <= 99; i++)
		t->bit[i] = 1;
	cr_assert_eq(relay_nameplate_draw(0, is_busy, t, np, sizeof(np)), 0);
	cr_assert(value_of(np) >= 100 && value_of(np) <= 999, "%s", np);

	t->all_busy = true;
	t->calls = 0;
	cr_assert_eq(relay_nameplate_draw(0, is_busy, t, np, sizeof(np)),
		     TETHER_ERR_LIMIT);
	cr_assert_str_eq(np, "");
	/* 2 to 8 digits, RELAY_NAMEPLATE_TRIES each: bounded. */
	cr_assert_eq(t->calls, 7 * RELAY_NAMEPLATE_TRIES);
	cr_assert_eq(relay_nameplate_draw(0, NULL, t, np, sizeof(np)),
		     TETHER_ERR_INVALID);
	cr_assert_eq(relay_nameplate_draw(0, is_busy, t, np, 4),
		     TETHER_ERR_INVALID);
	taken_free(t);
}
