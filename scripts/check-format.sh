#!/usr/bin/env bash
# Fails if a C source is not laid out as clang-format lays it out with the
# repository's .clang-format.  Layout differs between clang-format
# versions, so the check is made with the one Debian 12 ships (14); with
# another version it is skipped (exit 77), unless CI or TETHER_REQUIRE_TOOLS
# is set (scripts/test.sh sets the latter), which makes a missing or other
# clang-format a failure.  To format: clang-format -i FILE.
# Run by `meson test` (suite: style).
set -u
root=${1:-$(dirname "$0")/..}
cd "$root" || exit 2
want=14
cf=""
for c in clang-format-$want clang-format; do
	if command -v "$c" >/dev/null 2>&1; then cf=$c; break; fi
done
if [ -z "$cf" ] || ! "$cf" --version | grep -q "version $want\."; then
	echo "clang-format $want not found (${cf:-none}: $([ -n "$cf" ] && "$cf" --version))"
	if [ -n "${CI:-}" ] || { [ -n "${TETHER_REQUIRE_TOOLS:-}" ] && [ "$TETHER_REQUIRE_TOOLS" != 0 ]; }; then exit 1; fi
	exit 77
fi
# Tracked files; outside a git checkout, every C file but build output.
files=$(git ls-files '*.c' '*.h' 2>/dev/null) ||
	files=$(find . -path './build*' -prune -o \( -name '*.c' -o -name '*.h' \) -print)
bad=0
for f in $files; do
	if ! "$cf" --dry-run --Werror "$f" >/dev/null 2>&1; then
		echo "not formatted: $f"
		bad=1
	fi
done
[ $bad = 0 ] && echo "every C source is formatted ($cf)"
exit $bad
