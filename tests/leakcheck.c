/*
 * Fixtures and LeakSanitizer that count: linked into every Criterion test
 * binary (tests/meson.build) with -Wl,--wrap=criterion_internal_test_main.
 *
 * Criterion 2.4 decides whether a test passed when the test's body ends
 * (the TEARDOWN event): an assertion that fails in a .fini is printed and
 * then ignored, and LeakSanitizer, left alone, only looks when the worker
 * process exits, later still, so a leak report is at most a warning that
 * the test "crashed during its setup or teardown" and the test passes.
 *
 * Every test's trampoline (criterion/internal/test.h) hands its body to
 * criterion_internal_test_main().  The wrapper below hands over a body
 * that runs the real one, then the test's .fini and the suite's .fini
 * (and clears them, so that Criterion does not run them again), then asks
 * LeakSanitizer for a report: all of it before the body counts as ended,
 * so a failed assertion in a fixture and a leak both fail the test.  A
 * body that fails an assertion never gets that far, and Criterion runs
 * its fixtures as it always does.
 *
 * Without a leak-detecting sanitizer (no TETHER_LEAKCHECK) the fixtures
 * still move, so that both builds treat them alike; only the leak check
 * is left out.
 */
#include <stddef.h>
#include <string.h>

#include <criterion/criterion.h>

#ifdef TETHER_LEAKCHECK
#include <sanitizer/lsan_interface.h>
#endif

/* Criterion's own, and ours in its place (the linker's --wrap names). */
void __real_criterion_internal_test_main(void (*fn)(void));
void __wrap_criterion_internal_test_main(void (*fn)(void));

/* The real body; each worker process runs one test, so one slot. */
static void (*real_body)(void);

/*
 * The worker's copies of the test and suite descriptions live in an arena
 * that BoxFort packs without regard to alignment, so their fields are
 * read and written with memcpy rather than through the struct.
 */
static void (*take_fini(struct criterion_test_extra_data *data))(void)
{
	static void (*const none)(void) = NULL;
	char *field;
	void (*fini)(void);

	if (data == NULL)
		return NULL;
	field = (char *)data + offsetof(struct criterion_test_extra_data, fini);
	memcpy(&fini, field, sizeof(fini));
	memcpy(field, &none, sizeof(none));
	return fini;
}

static bool parameterized(const struct criterion_test_extra_data *data)
{
	enum criterion_test_kind kind;

	memcpy(&kind,
	       (const char *)data +
		   offsetof(struct criterion_test_extra_data, kind_),
	       sizeof(kind));
	return kind == CR_TEST_PARAMETERIZED;
}

static void body_then_fixtures(void)
{
	void (*test_fini)(void);
	void (*suite_fini)(void);

	real_body();
	/* Taken first: a fixture that fails must not be run twice. */
	test_fini = take_fini(criterion_current_test->data);
	suite_fini = take_fini(criterion_current_suite->data);
	if (test_fini != NULL)
		test_fini();
	if (suite_fini != NULL)
		suite_fini();
#ifdef TETHER_LEAKCHECK
	/*
	 * Recoverable: print the report and go on, so that the assertion
	 * reaches the runner.  It returns 0 when leak detection is off
	 * (detect_leaks=0).
	 */
	if (__lsan_do_recoverable_leak_check() != 0)
		cr_assert_fail("LeakSanitizer found memory that this test or "
			       "its fixtures did not free (report on stderr "
			       "above)");
#endif /* TETHER_LEAKCHECK */
}

void __wrap_criterion_internal_test_main(void (*fn)(void))
{
	/* A parameterized body takes an argument: not ours to call. */
	if (criterion_current_test->data == NULL ||
	    parameterized(criterion_current_test->data)) {
		__real_criterion_internal_test_main(fn);
		return;
	}
	real_body = fn;
	__real_criterion_internal_test_main(body_then_fixtures);
}
