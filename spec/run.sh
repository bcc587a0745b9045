#!/bin/sh
# Runs busted under $LUA (optionally under $WRAP, e.g. valgrind) and ends
# with the line "N passed, M failed" (CI reads it); exits non-zero when a
# test failed or errored, or when busted or the wrapper itself failed.
# Usage: LUA=lua5.4 sh spec/run.sh [busted arguments or spec files]
# AW_CPATH is the Lua C path of the module built for $LUA (the Makefile sets
# it, and says it when asked: make print-cpath, from mk/lua.mk); busted and
# the specs' child processes (spec/helpers.lua) load atomicwriter.core from it.
LUA=${LUA:-lua5.4}
BUSTED=${BUSTED:-/usr/bin/busted}
AW_CPATH=${AW_CPATH:-$(make -s --no-print-directory print-cpath LUA="$LUA")} || exit 1
export AW_CPATH
out=$(mktemp)
rc=$(mktemp)
trap 'rm -f "$out" "$rc"' EXIT
{ $WRAP "$LUA" "$BUSTED" --cpath="$AW_CPATH" --output=TAP "$@"; echo $? > "$rc"; } 2>&1 | tee "$out"
status=$(cat "$rc")
passed=$(grep -c '^ok ' "$out")
skipped=$(grep -c '^ok .*# SKIP' "$out")
failed=$(grep -c '^not ok ' "$out")
passed=$((passed - skipped))
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  failed=1
  echo "busted or its wrapper exited with status $status"
fi
echo "$passed passed, $failed failed ($skipped pending)"
[ "$failed" -eq 0 ]
