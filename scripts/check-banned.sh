#!/usr/bin/env bash
# Fails if C sources use what the house style bans:
#  - unbounded string functions and unchecked parsing, everywhere;
#  - the strto* family outside common/src/num.c, the one checked parser
#    (bench/ holds stand-alone tools that do not link libtether);
#  - raw malloc/calloc/realloc in the library and the programs outside
#    common/src/alloc.c, so that every allocation can be failed in tests
#    (tests and fuzz targets may use the C library's own: a fuzz target
#    wants an exact-size buffer for ASan to guard).
# Run by `meson test` (suite: style).
set -u
root=${1:-$(dirname "$0")/..}
cd "$root" || exit 2
status=0
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.c' -o -name '*.h')
# A line that is a comment (or continues one) is not code.
code_only() { grep -vE '^\S+:[0-9]+:\s*(\*|/\*|//)'; }

banned='\b(sprintf|vsprintf|strcpy|strcat|strncpy|strncat|strtok|gets|atoi|atol|atoll|sscanf)[[:space:]]*\('
if hits=$(grep -nE "$banned" $files | code_only); then
	echo "banned functions used:"; echo "$hits"; status=1
fi

strto='\bstrto(l|ll|ul|ull|d|f|ld|imax|umax)[[:space:]]*\('
parsing=$(printf '%s\n' $files | grep -vE '^(common/src/num\.c|bench/)')
if hits=$(grep -nE "$strto" $parsing | code_only); then
	echo "strto* outside common/src/num.c (use tether_num_*, tether/num.h):"
	echo "$hits"; status=1
fi

product=$(printf '%s\n' $files | grep -E '^(common|agent|relay|console)/' |
	grep -v '^common/src/alloc\.c$')
if hits=$(grep -nE '\b(malloc|calloc|realloc)[[:space:]]*\(' $product |
	grep -vE 'tether_|OPENSSL_|CRYPTO_' | code_only); then
	echo "raw allocation (use tether_malloc and friends, tether/alloc.h):"
	echo "$hits"; status=1
fi
[ $status = 0 ] && echo "no banned functions"
exit $status
