#!/bin/sh
# bench/profile.sh - system calls per aw.write call, module vs floor.
#
# For each workload, runs the module (bench/run.lua profile ...) and the
# floor (bench/build/floor -k) under `strace -f -c`, once with 0 (floor: 1)
# calls and once with N more, and prints the difference divided by N: the
# system calls of one call, start-up and payload building cancelled out.
# The targets are made beforehand by this script, so no mkdir of a target
# is counted. Runs in a tmpfs (/dev/shm) unless PROFILE_DIR says otherwise.
#
#   make -f bench/bench.mk profile            (sets LUA_PATH / LUA_CPATH)
#   PROFILE_N=50 PROFILE_WORKLOADS="W1 W3" make -f bench/bench.mk profile
set -eu

LUA=${LUA:-lua5.4}
N=${PROFILE_N:-20}
WORKLOADS=${PROFILE_WORKLOADS:-"W1 W2 W3 W5 W5u W6"}
FLOOR=${BENCH_FLOOR:-bench/build/floor}
PARENT=${PROFILE_DIR:-/dev/shm}

command -v strace >/dev/null 2>&1 || { echo "profile.sh: strace not found" >&2; exit 1; }
base=$(mktemp -d "$PARENT/awprof.XXXXXX")
trap 'rm -rf "$base"' EXIT INT TERM

# strace -c table -> "name calls" lines
counts() {
  awk '$1 ~ /^[0-9.]+$/ && $NF != "total" { print $NF, $4 }' "$1"
}

# make_targets DIR COUNT: DIR/t0 .. DIR/t<COUNT-1>
make_targets() {
  mkdir -p "$1"
  i=0
  while [ "$i" -lt "$2" ]; do mkdir "$1/t$i"; i=$((i + 1)); done
}

# strace_module WORKLOAD CALLS OUT
strace_module() {
  d="$base/m$2"
  rm -rf "$d"
  case $1 in W2|W3|W5u) make_targets "$d" 1 ;; *) make_targets "$d" "$2" ;; esac
  strace -f -c -o "$3" "$LUA" bench/run.lua profile "$1" "$d" "$2" >/dev/null
  rm -rf "$d"
}

# strace_floor WORKLOAD ITERS OUT
strace_floor() {
  case $1 in
    W1|W2|W3) args="-n 1000 -b 1024 -D 10" ;;
    W6) args="-n 1000 -b 1024 -D 10 -s" ;;
    W5|W5u) args="-n 1 -b 100 -D 0" ;;
    *) echo "profile.sh: no floor for $1 (W2L's floor, floor -u, makes its own targets)" >&2
       exit 2 ;;
  esac
  d="$base/f$2"
  rm -rf "$d"
  make_targets "$d" "$2"
  # shellcheck disable=SC2086
  strace -f -c -o "$3" "$FLOOR" -d "$d" $args -w 0 -i "$2" -k >/dev/null
  rm -rf "$d"
}

for w in $WORKLOADS; do
  strace_module "$w" 0 "$base/m0.txt"
  strace_module "$w" "$N" "$base/mN.txt"
  strace_floor "$w" 1 "$base/f0.txt"
  strace_floor "$w" "$((N + 1))" "$base/fN.txt"
  counts "$base/m0.txt" > "$base/m0"
  counts "$base/mN.txt" > "$base/mN"
  counts "$base/f0.txt" > "$base/f0"
  counts "$base/fN.txt" > "$base/fN"
  case $w in W2|W3) fl="W1's floor" ;; W5u) fl="W5's floor" ;; *) fl="floor" ;; esac
  echo
  echo "== $w: system calls per call (mean of $N calls; tmpfs at $PARENT), module vs $fl"
  awk -v n="$N" '
    FNR == 1 { f++ }
    f == 1 { m0[$1] = $2; names[$1] = 1 }
    f == 2 { mN[$1] = $2; names[$1] = 1 }
    f == 3 { f0[$1] = $2; names[$1] = 1 }
    f == 4 { fN[$1] = $2; names[$1] = 1 }
    END {
      printf "%-18s %10s %10s %10s\n", "syscall", "module", "floor", "extra"
      for (s in names) {
        m = (mN[s] - m0[s]) / n; fl = (fN[s] - f0[s]) / n
        if (m < 0.05 && m > -0.05 && fl < 0.05 && fl > -0.05) continue
        line[s] = sprintf("%-18s %10.1f %10.1f %+10.1f", s, m, fl, m - fl)
        tm += m; tf += fl
      }
      n_ = 0
      for (s in line) keys[++n_] = s
      # sort by extra, descending (insertion sort: few names)
      for (i = 2; i <= n_; i++) {
        k = keys[i]; j = i - 1
        while (j > 0 && (mN[keys[j]] - m0[keys[j]] - fN[keys[j]] + f0[keys[j]]) < (mN[k] - m0[k] - fN[k] + f0[k])) {
          keys[j + 1] = keys[j]; j--
        }
        keys[j + 1] = k
      }
      for (i = 1; i <= n_; i++) print line[keys[i]]
      printf "%-18s %10.1f %10.1f %+10.1f\n", "total", tm, tf, tm - tf
    }' "$base/m0" "$base/mN" "$base/f0" "$base/fN"
done
