#!/usr/bin/env bash
# Fails if C sources use functions the house style bans (unbounded string
# functions, unchecked number parsing) or raw malloc/free in common/ outside
# alloc.c.  Run by `meson test` (suite: style).
set -u
root=${1:-$(dirname "$0")/..}
cd "$root" || exit 2
banned='\b(sprintf|vsprintf|strcpy|strcat|strncpy|strncat|strtok|gets|atoi|atol|atoll|sscanf)[[:space:]]*\('
status=0
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.c' -o -name '*.h')
if hits=$(grep -nE "$banned" $files | grep -vE '^\S+:[0-9]+:\s*(\*|/\*|//)'); then
	echo "banned functions used:"; echo "$hits"; status=1
fi
common=$(printf '%s\n' $files | grep '^common/src/' | grep -v 'alloc.c$')
if hits=$(grep -nE '\b(malloc|calloc|realloc)[[:space:]]*\(' $common | grep -vE 'tether_|OPENSSL_|CRYPTO_|^\S+:[0-9]+:\s*(\*|/\*)'); then
	echo "raw allocation in common/ (use tether_malloc and friends):"; echo "$hits"; status=1
fi
[ $status = 0 ] && echo "no banned functions"
exit $status
