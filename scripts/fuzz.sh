#!/usr/bin/env bash
# A short fuzzing run: fuzz.sh [SECONDS_PER_TARGET] [BUILD_DIR] [TARGET...]
#
# Configures (once) a clang build with libFuzzer, ASan and UBSan
# (-Dfuzzing=true instruments libtether too), builds every fuzz target
# tests/fuzz/meson.build defines (or only the TARGETs named, e.g.
# fuzz_xfer), and runs each in turn for SECONDS (20 by default) from a
# fresh copy of its seed corpus, one process at a time.
# A target fails on a crash, a sanitizer report, a leak, an input slower
# than 10 s or a run that does not end; what it found stays in
# BUILD_DIR/fuzz-run/TARGET/ (artifacts/ holds the reproducers, log the
# output), and the repository's corpus is never written to.  Prints one
# line per target and "fuzz: N passed, M failed" last; exits 1 if any
# target failed.
set -euo pipefail
secs=${1:-20}
dir=${2:-build-fuzz}
shift $(($# < 2 ? $# : 2))
cd "$(dirname "$0")/.."
root=$PWD
case $secs in
'' | *[!0-9]*) echo "fuzz.sh: SECONDS must be a number" >&2; exit 2 ;;
esac

if [ ! -f "$dir/build.ninja" ]; then
	CC=${FUZZ_CC:-clang} meson setup "$dir" -Dfuzzing=true -Dtests=true \
		-Db_sanitize=address,undefined -Db_lundef=false >/dev/null
fi
# The fuzz targets, as meson knows them: name and binary, one a line.
targets=$(meson introspect "$dir" --targets | python3 -c '
import json, os, sys
for t in json.load(sys.stdin):
    if t["defined_in"].endswith(os.path.join("tests", "fuzz", "meson.build")) \
            and t["type"] == "executable":
        print(t["name"], t["filename"][0])')
if [ -z "$targets" ]; then
	echo "fuzz.sh: no fuzz targets in $dir (is it a -Dfuzzing=true build?)" >&2
	exit 2
fi
if [ $# -gt 0 ]; then
	for want in "$@"; do
		if ! grep -q "^$want " <<<"$targets"; then
			echo "fuzz.sh: no fuzz target $want in $dir" >&2
			exit 2
		fi
	done
	targets=$(awk -v only=" $* " 'index(only, " " $1 " ")' <<<"$targets")
fi
# Only the targets: the rest of the tree is not needed here.
bins=()
while read -r _ bin; do
	bins+=("$(realpath --relative-to="$dir" "$bin")")
done <<<"$targets"
ninja -C "$dir" "${bins[@]}" >/dev/null

# Sanitizer reports end the run with an error libFuzzer reports; leaks
# are checked as libFuzzer goes (LSan) and at exit.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/tests/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

passed=0; failed=0
while read -r name bin; do
	run="$dir/fuzz-run/$name"
	rm -rf "$run"
	mkdir -p "$run/artifacts"
	cp -R "tests/fuzz/corpus/$name" "$run/corpus"
	args=(-max_total_time="$secs" -timeout=10 -rss_limit_mb=2048
	      -print_final_stats=1 -artifact_prefix="$run/artifacts/")
	if [ -f "tests/fuzz/$name.dict" ]; then
		args+=(-dict="tests/fuzz/$name.dict")
	fi
	# libFuzzer stops itself; the outer limit is for a run that hangs
	# outside an input (e.g. in a sanitizer's exit-time leak check).
	rc=0
	timeout --kill-after=10 $((secs + 120)) "$bin" "${args[@]}" \
		"$run/corpus" >"$run/log" 2>&1 || rc=$?
	execs=$(awk '/stat::number_of_executed_units:/ {print $2}' "$run/log")
	cov0=$(awk '/INITED cov:/ {print $4; exit}' "$run/log")
	cov1=$(awk '/(DONE|pulse|NEW|REDUCE) +cov:/ {c = $4} END {print c}' "$run/log")
	case $rc in
	0) what=ok ;;
	70) what="timeout (an input over 10 s)" ;;
	77) what="crash, sanitizer report or leak" ;;
	124 | 137) what="hung (killed after $((secs + 120)) s)" ;;
	*) what="failed (exit $rc)" ;;
	esac
	printf '%-14s %s s, %s runs, cov %s -> %s: %s\n' "$name" "$secs" \
		"${execs:-?}" "${cov0:-?}" "${cov1:-${cov0:-?}}" "$what"
	if [ "$rc" = 0 ]; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		grep -E 'ERROR|invariant failed|runtime error|SUMMARY' "$run/log" |
			head -5 | sed 's/^/    /' || true
		echo "    log: $run/log"
		for a in "$run"/artifacts/*; do
			[ -e "$a" ] && echo "    reproducer: $a ($bin $a)"
		done
	fi
done <<<"$targets"
echo "fuzz: $passed passed, $failed failed"
[ "$failed" = 0 ]
