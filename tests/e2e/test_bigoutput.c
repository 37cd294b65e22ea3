/*
 * End-to-end: bulk data through a session in both directions.  64 MiB of
 * random bytes out of `cat` and 16 MiB into `sha256sum` must arrive intact,
 * which exercises the channel windows, the relay's back-pressure and the
 * 64 KiB chunking (docs/protocol.md) far beyond one window.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <criterion/criterion.h>

#include "harness.h"

TestSuite(bigoutput, .init = h_setup, .fini = h_teardown);

#define OUT_SIZE (64u << 20)
#define IN_SIZE (16u << 20)
#define BULK_TIMEOUT_MS 180000

Test(bigoutput, cat_64m, .timeout = 300)
{
	char src[H_PATH_MAX], dst[H_PATH_MAX], want[65], got[65];
	struct h_opts o = {.stdout_file = dst, .timeout_ms = BULK_TIMEOUT_MS};
	const char *cmd[] = {"cat", src, NULL};
	struct h_session s;
	struct h_res res;
	struct stat st;

	h_session_start(&s, "big output", NULL);
	h_path(src, sizeof(src), "random.bin");
	h_path(dst, sizeof(dst), "received.bin");
	h_write_random(src, OUT_SIZE);

	h_exec(&res, &o, s.ticket, cmd);
	h_expect(&res, 0, NULL, "", "tether exec -- cat 64 MiB");
	h_res_free(&res);
	cr_assert(stat(dst, &st) == 0, "no output file");
	cr_assert_eq(st.st_size, (off_t)OUT_SIZE, "received %lld bytes of %u",
		     (long long)st.st_size, OUT_SIZE);
	h_sha256_file(src, want);
	h_sha256_file(dst, got);
	cr_assert_str_eq(got, want, "64 MiB arrived corrupted");
	cr_assert(h_relay_alive(&s.relay), "relay died");
	h_relay_stop(&s.relay);
}

Test(bigoutput, stdin_16m, .timeout = 300)
{
	char src[H_PATH_MAX], want[65], line[80];
	struct h_opts o = {.stdin_file = src, .timeout_ms = BULK_TIMEOUT_MS};
	const char *cmd[] = {"sha256sum", NULL};
	struct h_session s;
	struct h_res res;

	h_session_start(&s, "big input", NULL);
	h_path(src, sizeof(src), "random.bin");
	h_write_random(src, IN_SIZE);
	h_sha256_file(src, want);
	snprintf(line, sizeof(line), "%s  -\n", want);

	h_exec(&res, &o, s.ticket, cmd);
	h_expect(&res, 0, line, "", "tether exec -- sha256sum < 16 MiB");
	h_res_free(&res);
	cr_assert(h_relay_alive(&s.relay), "relay died");
	h_relay_stop(&s.relay);
}
