/*
 * The canary for tests/leakcheck.c: in a build with LeakSanitizer the
 * leaking tests here must fail, and meson registers them with
 * should_fail: true, so the suite goes red the day leak detection in unit
 * tests stops working.  The clean test must pass: it shows that what
 * Criterion itself allocates is not taken for a leak, so the others fail
 * for their leak and nothing else.
 */
#include <string.h>

#include <criterion/criterion.h>

#include <tether/alloc.h>

/* Set by the test, dropped by the suite's .fini. */
static char *held;

/*
 * Out of line and through a volatile pointer, so the compiler can neither
 * drop the allocation nor keep its address in a register or stack slot
 * that LeakSanitizer would scan.
 */
static __attribute__((noinline)) void leak(size_t n)
{
	char *volatile p = tether_malloc(n);

	cr_assert_not_null(p);
	memset(p, 0x5a, n);
	p = NULL;
}

Test(leakcheck, frees_everything)
{
	char *p = tether_malloc(4243);

	cr_assert_not_null(p);
	memset(p, 0, 4243);
	cr_log_info("Criterion's own allocations are no leak");
	tether_free(p);
}

/* 4242 bytes: the size to look for in the report. */
Test(leakcheck, leaks_in_test)
{
	leak(4242);
}

/*
 * The memory is still reachable when the test ends and only lost in the
 * suite's .fini: the check must run after that, or it would see nothing.
 */
static void drop_held(void)
{
	held = NULL;
}

TestSuite(leakcheck_fini, .fini = drop_held);

Test(leakcheck_fini, leaks_in_fini)
{
	held = tether_malloc(4244);
	cr_assert_not_null(held);
	memset(held, 0x5a, 4244);
}

/*
 * Criterion itself ignores an assertion that fails in a .fini; with
 * leakcheck.c the fixture runs while the test still counts, so checks
 * made there (the e2e harness's h_teardown()) fail their test.
 * Registered with should_fail in every build.
 */
static void fail_in_fini(void)
{
	cr_assert_fail("a fixture's assertion must fail its test");
}

TestSuite(fixture_assert, .fini = fail_in_fini);

Test(fixture_assert, fails_in_fini)
{
}
