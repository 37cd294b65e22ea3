#!/usr/bin/env bash
# Configures and builds a build directory: build.sh DIR [meson options...]
# An existing directory is reconfigured with the options given, so that a
# changed option (say -Db_sanitize) is not silently ignored.
set -euo pipefail
dir=${1:-build}; shift || true
cd "$(dirname "$0")/.."
if [ -f "$dir/build.ninja" ]; then
	meson setup --reconfigure "$dir" "$@" >/dev/null
else
	meson setup "$dir" "$@" >/dev/null
fi
# Quiet when it works; the whole compiler output when it does not.
if ! ninja -C "$dir" >"$dir/build.log" 2>&1; then
	grep -v '^\[[0-9]*/[0-9]*\] ' "$dir/build.log" >&2
	echo "build.sh: building $dir failed (log: $dir/build.log)" >&2
	exit 1
fi
