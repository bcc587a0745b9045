#!/bin/sh
# Runs busted under $LUA (optionally under $WRAP, e.g. valgrind) and ends
# with the line "N passed, M failed" (CI reads it); exits non-zero when a
# test failed or errored, or when busted or the wrapper itself failed.
# Usage: LUA=lua5.4 sh spec/run.sh [busted arguments or spec files]
# AW_CPATH is the Lua C path of the module built for $LUA (the Makefile sets
# it, and says it when asked: make print-cpath, from mk/lua.mk); busted and
# the specs' child processes (spec/helpers.lua) load atomicwriter.core from it.
# Against an installed copy (make installcheck) AW_LPATH replaces this
# checkout's ./lua, and AW_CLI, AW_INSTALLED say where the rest is
# (spec/helpers.lua).
LUA=${LUA:-lua5.4}
BUSTED=${BUSTED:-/usr/bin/busted}
AW_CPATH=${AW_CPATH:-$(make -s --no-print-directory print-cpath LUA="$LUA")} || exit 1
export AW_CPATH
lpath=
if [ -n "${AW_LPATH:-}" ]; then
  export AW_LPATH
  lpath="--lpath=$AW_LPATH;./spec/?.lua"
fi
out=$(mktemp)
rc=$(mktemp)
trap 'rm -f "$out" "$rc"' EXIT
{ $WRAP "$LUA" "$BUSTED" --cpath="$AW_CPATH" ${lpath:+"$lpath"} --output=TAP "$@"; echo $? > "$rc"; } 2>&1 | tee "$out"
sh "$(dirname "$0")/tap_summary.sh" "$out" "$(cat "$rc")"
