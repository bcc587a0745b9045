#!/bin/sh
# Runs busted under $LUA and ends with the line "N passed, M failed"
# (CI reads it); exits non-zero when any test failed or errored.
# Usage: LUA=lua5.4 sh spec/run.sh [busted arguments, e.g. --run=crash]
LUA=${LUA:-lua5.4}
BUSTED=${BUSTED:-/usr/bin/busted}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$LUA" "$BUSTED" --output=TAP "$@" | tee "$out"
status=$?
passed=$(grep -c '^ok ' "$out" | tr -d ' ')
skipped=$(grep -c '^ok .*# SKIP' "$out" | tr -d ' ')
failed=$(grep -c '^not ok ' "$out" | tr -d ' ')
passed=$((passed - skipped))
if [ "$passed" -eq 0 ] && [ "$failed" -eq 0 ]; then
  failed=1   # busted itself failed (no plan): count it
  echo "busted ran no test"
fi
echo "$passed passed, $failed failed${skipped:+ ($skipped pending)}"
[ "$failed" -eq 0 ]
