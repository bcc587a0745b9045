#!/bin/sh
# Runs each named harness (built by fuzz/fuzz.mk in build/fuzz/) for SECONDS
# seconds: first the seeds and reproducers of fuzz/corpus/<name>/, then new
# inputs, kept in build/fuzz/corpus/<name>/ (the seeds stay untouched). A
# crash, a failed check, a leak or a timeout saves the input as
# build/fuzz/artifacts/<name>-crash-... and fails that harness.
# Prints one summary line per harness (runs, coverage, corpus) and ends with
# "N passed, M failed" (.ci/run sums it). Usage: sh fuzz/run.sh SECONDS NAME...
# The whole log of each run is build/fuzz/<name>.log.
secs=$1
shift
passed=0 failed=0
mkdir -p build/fuzz/artifacts
for name in "$@"; do
  case $name in
    paths) max_len=10000 ;;       # room for a 4097-byte path and 256-byte elements
    manifest) max_len=8192 ;;
    *) max_len=4096 ;;
  esac
  log=build/fuzz/$name.log
  mkdir -p "build/fuzz/corpus/$name"
  "build/fuzz/$name" -max_total_time="$secs" -timeout=30 -rss_limit_mb=2560 \
    -max_len=$max_len -print_final_stats=1 -artifact_prefix="build/fuzz/artifacts/$name-" \
    "build/fuzz/corpus/$name" "fuzz/corpus/$name" >"$log" 2>&1
  status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  last=$(grep -E '^#[0-9]+' "$log" | grep 'cov:' | tail -n 1)
  cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
  ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
  corp=$(echo "$last" | sed -n 's/.* corp: \([0-9]*\).*/\1/p')
  if [ "$status" -eq 0 ]; then
    passed=$((passed + 1))
    echo "fuzz $name: ok, ${runs:-?} runs in ${secs} s, cov ${cov:-?} ft ${ft:-?}, corpus ${corp:-?}"
  else
    failed=$((failed + 1))
    echo "fuzz $name: FAILED (exit $status) after ${runs:-?} runs; the input is in build/fuzz/artifacts/:"
    grep -E 'check failed|ERROR:|SUMMARY|runtime error|Test unit written' "$log" | head -n 20
  fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
