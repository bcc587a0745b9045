#!/bin/sh
# Usage: sh spec/tap_summary.sh TAP_FILE STATUS
# The line "N passed, M failed (K pending)" (CI reads it) for busted's TAP
# output in TAP_FILE, STATUS being busted's (or its wrapper's) exit
# status; exits non-zero when a test failed or errored, or when STATUS is.
out=$1
status=$2
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
