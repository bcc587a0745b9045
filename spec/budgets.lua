-- spec/budgets.lua - what one call may cost, counted (spec/24-budgets_spec.lua
-- holds the module to it in `make check`; issue 18). Every number has its
-- reason; docs/performance.md has the whole per-call accounting.
--
-- syscalls: the system calls of one call of each operation of
-- spec/budget_calls.lua, name by name, from `strace -f -c` of two runs
-- (runs: the numbers of calls; the difference is divided by their
-- difference, so start-up, loading and the first write cancel out). The
-- count must match exactly: one call more fails, and so does one fewer
-- (lower the budget then, saying which call went). Memory calls (brk,
-- mmap, ...) are left out: they follow the allocator and the collector.
-- Counted with umask 022 on the file system of $TMPDIR (or /tmp).
--
-- instructions: callgrind's instructions per call (the whole Lua call:
-- argument handling, init.lua, the core), under `lua` only, with a
-- tolerance: more than `tolerance` above the budget fails, more than
-- `tolerance` below prints a reminder to lower it.
--
-- A change that needs a call more: add it here with the reason, in the
-- same commit, and in docs/performance.md's accounting.
--
-- Each budget is { count, reason }. Calls that every write makes, for the
-- same reason whatever the payload, are written once below and named in
-- each operation; a call whose count or reason differs is written out.

-- The operations of spec/budget_calls.lua, as the spec names them.
local WHAT = {
  w5 = "first publish of one 100-byte file",
  update = "update of a one-file payload",
  noop = "no-op of 1000 files in 10 directories",
  w1 = "first publish of 1000 files in 10 directories",
}

local LOCK = { 1, "the writer lock on the target" }
local SCAN = { 2, "the recovery scan of the target: one read, one that says the end" }
local SWAP = { 1, "..data_tmp over ..data: the atomic swap" }
local MODES_KEPT = { 1, "fstat of the version directory, once per write: does the file system keep" ..
  " modes (ntfs-3g without permissions does not: the write fails rather than publish 0777;" ..
  " issue 19, docs/filesystems.md)" }

-- One operation's budget: its name (for WHAT), the numbers of calls of
-- its two runs, and its counts (`calls` for system calls, `budget` for
-- instructions).
local function op(name, runs, t)
  t.what, t.runs = WHAT[name], runs
  return t
end

return {
  syscalls = {
    -- The floor (bench/floor.c) makes 11: open target, mkdirat + openat
    -- of the version, openat + write + close of the file (0644 at once
    -- under umask 022; 0600 and an fchmod where the umask clears bits),
    -- symlinkat + renameat of ..data, symlinkat of the visible name, two
    -- closes. Before issue 18: 17 (an fchmod of the version and of the
    -- file that umask 022 makes needless, and a readlinkat of the ..data
    -- the recovery scan had not met).
    w5 = op("w5", { 2, 12 }, { calls = {
      openat = { 3, "the target; the version directory; the file (created 0644: under umask 022" ..
        " neither it nor the directory needs an fchmod)" },
      flock = LOCK,
      getdents64 = SCAN,   -- it also says whether ..data exists: none here, so no readlinkat
      mkdirat = { 1, "the version directory" },
      newfstatat = MODES_KEPT,
      write = { 1, "the file's bytes" },
      symlinkat = { 2, "..data_tmp; the visible name" },
      renameat = SWAP,
      close = { 3, "the file; the version; the target (releases the lock)" },
    } }),
    -- A one-file payload has no manifest (under MANIFEST_MIN_FILES): the
    -- current file is opened, its attributes taken and its bytes read.
    -- Before issue 18: 31 (two fchmods, an fstatat of the current version
    -- before opening it, an fstat of it for a manifest it has not,
    -- opening it again to remove it, and listing it to remove it).
    update = op("update", { 2, 12 }, { calls = {
      openat = { 5, "the target; the current version (open says whether it is a directory," ..
        " and the removal uses it); the current file (compare); the new version; the new file" },
      flock = LOCK,
      readlinkat = { 2, "..data; the visible name (ours?)" },
      newfstatat = { 2, "the current file (type, size, mode); the new version directory" ..
        " (modes kept? issue 19); the version's identity is taken only for a manifest," ..
        " which a one-file payload has not" },
      getdents64 = { 2, "the recovery scan of the target (the old version is removed by the" ..
        " names the writer knows: no listing)" },
      read = { 1, "the current file's bytes (compare)" },
      mkdirat = { 1, "the new version" },
      write = { 1, "the new file's bytes" },
      symlinkat = { 1, "..data_tmp (the visible name is already ours)" },
      renameat = SWAP,
      unlinkat = { 2, "the old file; the old version directory" },
      close = { 5, "the compared file; the current version (after its removal);" ..
        " the new file; the new version; the target" },
    } }),
    -- Steady state: the manifest knows every file and directory.
    noop = op("noop", { 2, 5 }, { calls = {
      openat = { 13, "the target; the current version; ..manifest; each of the 10 directories" },
      flock = LOCK,
      readlinkat = { 11, "..data; each of the 10 visible names (ours?)" },
      newfstatat = { 1012, "..manifest's size; the version's identity; each directory's (10)" ..
        " and each file's (1000) identity against the manifest" },
      getdents64 = SCAN,
      read = { 1, "..manifest" },
      close = { 13, "..manifest; the 10 directories; the version; the target" },
    } }),
    -- no fchmod: under umask 022 mkdirat's 0755 and open's 0644 are exact
    w1 = op("w1", { 1, 3 }, { calls = {
      openat = { 1012, "the target; the version; 10 directories; 1000 files" },
      flock = LOCK,
      getdents64 = SCAN,   -- no ..data in it: no readlinkat
      mkdirat = { 11, "the version; 10 directories" },
      newfstatat = MODES_KEPT,
      write = { 1000, "1000 files" },
      symlinkat = { 11, "..data_tmp; 10 visible names" },
      renameat = SWAP,
      close = { 1012, "1000 files; 10 directories; the version; the target" },
    } }),
  },
  instructions = {
    lua = "lua5.4", tolerance = 0.03,
    w5 = op("w5", { 5, 25 }, {
      median_of = { 3, "one count moves by up to 4 % between runs (10.8k-11.4k in seven runs at" ..
        " 11.05k: Lua's string hashes are seeded per process, its collector's steps fall" ..
        " differently), past the tolerance: one outlier of three no longer decides" },
      budget = { 11050, "11.0k measured (lua5.4, glibc 2.36, gcc 12 -O2) once aw.write's common" ..
        " call (a strings-only payload, options of the right types) was checked and read whole" ..
        " in C (core.write_plain) instead of by init.lua's checks (its pairs loop over the" ..
        " options alone was 2.5k, the target's NUL search 0.4k, the payload's type check 0.5k," ..
        " the vararg pass of the results 1k); 17.7k once a write made no" ..
        " large allocation (issue 18, third round: the writer's state on the stack, its path" ..
        " scratch sized by the payload's longest path, its scratch error only on a failure," ..
        " the recovery scan's first 1 KiB on the stack; glibc takes its slow paths for requests" ..
        " over 1 KiB), the plan's entries not calloc'd and the version name's UTC by arithmetic" ..
        " instead of gmtime_r; 19.5k before, once init.lua" ..
        " stopped copying the options into a table of its own per call and the binding read a" ..
        " few files into an array on its stack (21.7k before; the counts move by 1-4 % with the" ..
        " allocator's state, Lua's allocations of the same call): init.lua's" ..
        " argument checks, the binding, the plan, the writer; 24.4k before the version name" ..
        " and the result's version were formatted without snprintf (issue 18), 20.4k then;" ..
        " +0.6k for the sources, checksum and progress options (issue 17: two more option" ..
        " arguments, the sources' pass over the plan); +0.7k for issue 19 (the version" ..
        " directory's fstat: modes kept?; the modes option; the leftovers' bookkeeping)" },
    }),
    noop = op("noop", { 2, 5 }, {
      budget = { 4810000, "4.80 M measured: the Lua side's 1000 paths, validating and sorting" ..
        " them, the keyed digest of 1 MiB of payload (SipHash-1-3 since manifest format 3," ..
        " its rounds unrolled: 7.0-7.3 M in all with format 2's SipHash-2-4), the manifest's" ..
        " lookups and its MAC; 5.31 M before the plan's own merge sort (glibc's qsort moved" ..
        " each 16-byte key with memcpy and compared through a pointer: -0.19 M), the first" ..
        " differing byte of a path comparison found from the XOR of 8 bytes, and the MAC made" ..
        " SipHash-1-3 (-0.39 M: it is read at every write)" },
    }),
  },
}
