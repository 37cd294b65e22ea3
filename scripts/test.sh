#!/usr/bin/env bash
# Installs dependencies, builds tether twice (plain and ASan+UBSan, both with
# -Werror and test hooks) and runs every test in both builds, then fuzzes
# each fuzz target for FUZZ_SECONDS (20) in a clang libFuzzer build
# (scripts/fuzz.sh); each target's run counts as one test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
# A small quarantine keeps freed memory from inflating RSS, which the
# back-pressure test measures; leaks are still reported at exit.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:quarantine_size_mb=16
export LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
# install-deps.sh has just installed tmux, sshd, promtool and the plugins:
# a test that finds one missing fails instead of skipping (tests/require.h).
export TETHER_REQUIRE_TOOLS=1
passed=0; failed=0; status=0
run_suite() {
	local dir=$1; shift
	echo "== build $dir ($*)"
	bash scripts/build.sh "$dir" -Dwerror=true -Dtest_hooks=true "$@"
	echo "== test $dir"
	if meson test -C "$dir" --print-errorlogs --num-processes 2 \
		| tee "$dir/test-output.txt" | grep -vE '^ *[0-9]+/[0-9]+ .* OK ' ; then :; fi
	local ok fail
	# A test registered with should_fail (the leak-detection canaries)
	# passes by failing: meson counts it under Expected Fail.
	ok=$(awk '/^(Ok|Expected Fail):/ {s += $NF} END {print s+0}' "$dir/test-output.txt")
	fail=$(awk '/^(Fail|Unexpected Pass|Timeout):/ {s += $NF} END {print s+0}' "$dir/test-output.txt")
	passed=$((passed + ${ok:-0})); failed=$((failed + fail))
	if [ "${ok:-0}" = 0 ] || [ "$fail" != 0 ]; then status=1; fi
}
run_fuzz() {
	local dir=$1 ok fail
	echo "== fuzz $dir (${FUZZ_SECONDS:-20} s a target)"
	mkdir -p "$dir"
	bash scripts/fuzz.sh "${FUZZ_SECONDS:-20}" "$dir" \
		| tee "$dir/fuzz-output.txt" || status=1
	ok=$(awk '/^fuzz: / {print $2}' "$dir/fuzz-output.txt")
	fail=$(awk '/^fuzz: / {print $4}' "$dir/fuzz-output.txt")
	# No summary: the build or the setup failed, which is one failure.
	passed=$((passed + ${ok:-0})); failed=$((failed + ${fail:-1}))
}
run_suite build-test
run_suite build-asan -Db_sanitize=address,undefined -Db_lundef=false
run_fuzz build-fuzz
echo "tests: $passed passed, $failed failed"
exit $status
