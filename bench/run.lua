--- bench/run.lua - the atomicwriter benchmark driver (see bench/README.md).
--
-- Times aw.write in this process with a monotonic clock (benchclock.now_ns)
-- and interleaves it, batch by batch, with bench/build/floor, a C program
-- that makes only the system calls a first projection cannot avoid. Runs on
-- a tmpfs and on the ordinary disk, prints one line per workload and ends
-- with a table. A measurement: it always exits 0 once it ran.
--
-- Usage (from the repository root, paths as bench/bench.mk sets them):
--   lua5.4 bench/run.lua                      the benchmark
--   lua5.4 bench/run.lua w4child DIR W I      (internal) W4's module side
--   lua5.4 bench/run.lua profile WL DIR N     N calls of workload WL into
--        DIR/t0 .. DIR/t<N-1> (existing, empty), nothing removed: for strace
--        and valgrind (bench/profile.sh)
-- Environment:
--   BENCH_QUICK=1       a smoke run (~15 s)
--   BENCH_SCALE=x       multiply every time budget by x
--   BENCH_FS=tmpfs,disk which file systems (default both)
--   BENCH_WORKLOADS="W1 W5"  only these workloads (default all)
--   BENCH_BUSY=1        also W6b, W6fb: W6, W6f while another process dirties the file system
--   BENCH_DISK_DIR=dir  where to make the on-disk temp dir (default /var/tmp)
--   BENCH_FLOOR=path    the floor program (default bench/build/floor)
--   BENCH_FILES="1000 10000 100000"  the scaling rows' sizes (W1, W2L, W3 with
--                       100 files per directory, tmpfs only); "" for none
--   BENCH_SCALING_FS=tmpfs,disk  where the scaling rows run (default tmpfs)

if not math.type then
  error("bench/run.lua needs Lua 5.3 or later (integer division, math.type)")
end

local clock = require("benchclock")
local util = require("util")
local aw = require("atomicwriter")

local format, rep, concat = string.format, string.rep, table.concat
local now = clock.now_ns

local MiB = 1048576
local SCALING_FS = os.getenv("BENCH_SCALING_FS") or "tmpfs"
local QUICK = os.getenv("BENCH_QUICK") == "1"
local BUSY = os.getenv("BENCH_BUSY") == "1"
local SCALE = (tonumber(os.getenv("BENCH_SCALE") or "") or 1) * (QUICK and 0.07 or 1)
local MAX_ROUNDS = QUICK and 2 or 8   -- floor/module batch pairs per workload
local KMIN = QUICK and 1 or 3         -- measured iterations per batch, at least
local WARM = 1                        -- untimed warm-up calls per batch
local FLOOR = os.getenv("BENCH_FLOOR") or "bench/build/floor"

-- The interpreter running this script, to start the W4 child with.
local LUA, SELF = util.interpreter("lua5.4"), arg and arg[0] or "bench/run.lua"
local shq, sh, say = util.shq, util.sh, util.say

------------------------------------------------------------------------
-- Workloads
------------------------------------------------------------------------

-- The shapes. Names are those bench/floor.c makes: "dNN/fNNNN" with file
-- i in subdirectory i / (files / subdirs), or "fNNNN" at top level.
local SHAPES = {
  W1 = { files = 1000, size = 1024, subdirs = 10 },
  W4 = { files = 10, size = 10 * MiB, subdirs = 0 },
  W5 = { files = 1, size = 100, subdirs = 0 },
}
SHAPES.W2, SHAPES.W3, SHAPES.W6, SHAPES.W2L = SHAPES.W1, SHAPES.W1, SHAPES.W1, SHAPES.W1
SHAPES.W7 = SHAPES.W1
SHAPES.W6f, SHAPES.W6b, SHAPES.W6fb = SHAPES.W1, SHAPES.W1, SHAPES.W1
SHAPES.W5u = SHAPES.W5

-- The scaling rows: W1, W2L and W3 at each size of BENCH_FILES, 100 files
-- per directory (issue 18). Named "W1/10k" and so on.
local SCALING = {}
for n in (os.getenv("BENCH_FILES") or "1000 10000 100000"):gmatch("%d+") do
  n = tonumber(n)
  if n >= 100 then
    local label = n % 1000 == 0 and format("%dk", n // 1000) or tostring(n)
    SCALING[#SCALING + 1] = { files = n, label = label }
    local shape = { files = n, size = 1024, subdirs = n // 100 }
    for _, w in ipairs({ "W1", "W2L", "W3" }) do SHAPES[w .. "/" .. label] = shape end
  end
end

local function path_of(shape, i)
  if shape.subdirs > 0 then
    return format("d%02d/f%04d", i // (shape.files // shape.subdirs), i)
  end
  return format("f%04d", i)
end

-- n strings concatenated by ONE concat instruction: the result is built in
-- place, no intermediate strings (keeps W4's peak RSS honest).
local concat_n = setmetatable({}, { __index = function(t, n)
  local idx = {}
  for i = 1, n do idx[i] = format("p[%d]", i) end
  local f = assert(load("local p = ... return " .. concat(idx, "..")))
  t[n] = f
  return f
end })

local chunk_cache = {}
local function filler(n)
  if not chunk_cache[n] then chunk_cache[n] = rep("x", n) end
  return chunk_cache[n]
end

-- The bytes of file i: a 9-byte header naming it and the variant, then 'x'.
local function data_of(i, size, variant)
  local hdr = format("%s%07d\n", variant, i)
  if size <= #hdr then
    return hdr:sub(1, size)
  end
  local rest = size - #hdr
  if rest <= MiB then
    return hdr .. filler(rest)
  end
  local parts, n = { hdr }, 1
  while rest > 0 do
    local c = rest >= MiB and MiB or rest
    n = n + 1
    parts[n] = filler(c)
    rest = rest - c
  end
  return concat_n[n](parts)
end

-- Payload `variant` ("a" or "b"): "b" differs from "a" in exactly one file
-- (the middle one), same size and mode.
local function payload_of(shape, variant)
  local p, changed = {}, shape.files // 2
  for i = 0, shape.files - 1 do
    p[path_of(shape, i)] = data_of(i, shape.size, i == changed and variant or "a")
  end
  return p
end

local function payload_bytes(shape)
  return shape.files * shape.size
end

------------------------------------------------------------------------
-- Statistics
------------------------------------------------------------------------

local sorted_copy, quantile, median = util.sorted_copy, util.quantile, util.median

-- Interquartile range relative to the median, in percent.
local function spread(t)
  local s = sorted_copy(t)
  if #s < 4 then return 0 end
  return 100 * (quantile(s, 0.75) - quantile(s, 0.25)) / quantile(s, 0.5)
end

local function ms(ns)
  if not ns then return "-" end
  if ns < 1e6 then return format("%.1f us", ns / 1e3) end
  return format("%.2f ms", ns / 1e6)
end

local function mib(kib)
  if not kib then return "-" end
  return format("%.1f MiB", kib / 1024)
end

------------------------------------------------------------------------
-- Floor batches (a separate process timing itself)
------------------------------------------------------------------------

local function floor_batch(shape, sync, dir, warm, iters, flags)
  local cmd = format("%s -d %s -n %d -b %d -D %d -w %d -i %d%s%s", shq(FLOOR), shq(dir),
    shape.files, shape.size, shape.subdirs, warm, iters, sync and " -s" or "", flags or "")
  local out, ok = sh(cmd)
  local line = out:match("\nns ([%d ]+)")
  if not ok or not line then
    error("floor failed: " .. cmd .. "\n" .. out, 0)
  end
  local t = {}
  for v in line:gmatch("%d+") do t[#t + 1] = tonumber(v) end
  return t, tonumber(out:match("maxrss_kib (%d+)"))
end

------------------------------------------------------------------------
-- Module batches (this process; W4 in a child of its own)
------------------------------------------------------------------------

local function check(ok, err, code, want, what)
  if ok ~= want then
    error(format("%s: aw.write returned %s, %s, %s (expected %s)", what,
      tostring(ok), tostring(err), tostring(code), tostring(want)), 0)
  end
end

-- One first projection into a fresh target; returns the timed ns.
local function first_once(dir, name, payload, opts)
  local target = dir .. "/" .. name
  assert(clock.mkdir(target))
  local t0 = now()
  local ok, err, code = aw.write(target, payload, opts)
  local t = now() - t0
  check(ok, err, code, true, target)
  -- Untimed: remove the target, and flush that removal now rather than in
  -- the next timed call (the floor does the same).
  assert(clock.rmtree(target))
  assert(clock.syncfs(dir))
  return t
end

-- A module batch state per workload: kind "first" (fresh target each
-- iteration), "update" (alternate payloads a, b on one target), "noop"
-- (payload a again and again on one target).
local function new_module_side(kind, shape, dir, sync)
  local side = { kind = kind, dir = dir, opts = { sync = sync }, n = 0 }
  side.a = payload_of(shape, "a")
  if kind == "update" then side.b = payload_of(shape, "b") end
  if kind == "rollback" then   -- a kept, b current: each call rolls back to the other
    side.opts.keep = 1
    side.b = payload_of(shape, "b")
  end
  if kind ~= "first" then
    side.target = dir .. "/m-steady"
    assert(clock.mkdir(side.target))
    check(aw.write(side.target, side.a, side.opts), nil, nil, true, side.target)
    side.cur = "a"
  end
  if kind == "rollback" then
    check(aw.write(side.target, side.b, side.opts), nil, nil, true, side.target)
  end
  return side
end

-- Untimed, before a timed rollback: the versions' publish times (..data's
-- mtime, the record's) set a minute back, as if the rollbacks came more
-- than the one-second reader grace apart; the steady state then removes
-- the version the history drops in every call, as the floor removes the
-- old version.
local function age_history(target)
  local back = os.time() - 60
  assert(clock.age(target .. "/..data", back))
  local f = assert(io.open(target .. "/..history", "rb"))
  local record = f:read("*a")
  f:close()
  record = record:gsub("\n(%.%.[%w_.]+) %d+ %d+", "\n%1 " .. back .. " 0")
  f = assert(io.open(target .. "/..history", "wb"))
  f:write(record)
  f:close()
end

local function module_once(side)
  side.n = side.n + 1
  if side.kind == "first" then
    return first_once(side.dir, "m" .. side.n, side.a, side.opts)
  end
  local payload, want = side.a, false
  if side.kind == "update" then
    side.cur = side.cur == "a" and "b" or "a"
    payload, want = side[side.cur], true
  end
  if side.kind == "rollback" then age_history(side.target) end
  assert(clock.syncfs(side.dir))   -- untimed: the previous call's dirt flushed
  local t0 = now()
  local ok, err, code
  if side.kind == "rollback" then
    want = true
    ok, err, code = aw.rollback(side.target, nil, side.opts)
  else
    ok, err, code = aw.write(side.target, payload, side.opts)
  end
  local t = now() - t0
  check(ok, err, code, want, side.target)
  return t
end

local function module_batch(side, warm, iters)
  local t = {}
  for _ = 1, warm do module_once(side) end
  for i = 1, iters do t[i] = module_once(side) end
  return t
end

local function close_module_side(side)
  if side.target then assert(clock.rmtree(side.target)) end
end

-- W4's module side runs in a child process so that its peak RSS is W4's
-- own; the child prints its times and memory (see w4child below).
local function w4_batch(dir, warm, iters)
  local cmd = format("%s %s w4child %s %d %d", shq(LUA), shq(SELF), shq(dir), warm, iters)
  local out, ok = sh(cmd)
  local line = out:match("ns ([%d ]+)")
  if not ok or not line then
    error("W4 child failed: " .. cmd .. "\n" .. out, 0)
  end
  local t = {}
  for v in line:gmatch("%d+") do t[#t + 1] = tonumber(v) end
  return t, {
    peak = tonumber(out:match("peak_kib (%d+)")),
    build_peak = tonumber(out:match("build_peak_kib (%d+)")),
    write_peak = tonumber(out:match("write_peak_kib (%-?%d+)")),
    before = tonumber(out:match("rss_before_kib (%d+)")),
  }
end

------------------------------------------------------------------------
-- One workload on one file system
------------------------------------------------------------------------

-- spec: name, shape, kind ("first"|"update"|"noop"|"w4"), sync, budget (s).
-- The floor is a first projection of the whole payload (the floor of an
-- update or a no-op is that of a first projection: what it must beat),
-- except where spec.floor_flags says otherwise (W2L: floor -u; W3's
-- scaling rows: floor -t, a stat of every file).
-- BENCH_BUSY=1 adds W6b and W6fb: W6 and W6f while a shell loop keeps
-- writing 16 MiB files to the same file system, never syncing them (the
-- last four kept): syncfs must flush that data too, fsync of the write's
-- own files need not. Returns the function that stops it.
local function start_busy(dir)
  local flag = dir .. "/busy.run"
  assert(io.open(flag, "w")):close()
  os.execute(format("sh -c 'i=0; while [ -e %s ]; do dd if=/dev/zero of=%s/busy.$i bs=1M count=16 " ..
    "status=none; rm -f %s/busy.$((i-4)); i=$((i+1)); done; rm -f %s/busy.[0-9]*' >/dev/null 2>&1 &",
    shq(flag), shq(dir), shq(dir), shq(dir)))
  return function()
    os.remove(flag)
    sh("sleep 1")   -- the loop's last dd ends, and it removes its files
  end
end

local function measure(fs, spec)
  local shape, dir = SHAPES[spec.name], fs.dir
  local budget_ns = spec.budget * SCALE * 1e9
  local res = { fs = fs.label, name = spec.name, mod = {}, floor = {} }
  local side

  if spec.kind ~= "w4" then
    side = new_module_side(spec.kind, shape, dir, spec.sync)
  end
  -- Probe (not in quick runs): one untimed floor run and one module call,
  -- to size the batches.
  local rounds, k = 2, KMIN
  if not QUICK then
    local p0 = now()
    floor_batch(shape, spec.sync, dir, 0, 1, spec.floor_flags)
    local cost_floor = now() - p0
    p0 = now()
    if spec.kind == "w4" then w4_batch(dir, 0, 1) else module_once(side) end
    local cost_mod = now() - p0
    -- Iterations per side the budget allows (the probes include process
    -- start-up and set-up: an upper bound of the cost), split into as many
    -- alternating rounds as possible, each batch of KMIN or more after a
    -- warm-up. A slow machine gets 2 rounds of KMIN: it runs over budget
    -- rather than measure nothing.
    local n = math.floor(budget_ns / (cost_floor + cost_mod))
    rounds = math.max(2, math.min(MAX_ROUNDS, n // (KMIN + WARM)))
    k = math.max(KMIN, math.min(spec.kmax or 200, n // rounds - WARM))
  end
  res.k, res.rounds, res.round_ratios = k, rounds, {}

  local reset_ok = clock.reset_peak()
  local peak = 0
  for r = 1, rounds do
    local order = (r % 2 == 1) and { "floor", "module" } or { "module", "floor" }
    local fmed, mmed
    for _, who in ipairs(order) do
      if who == "floor" then
        local t, rss = floor_batch(shape, spec.sync, dir, WARM, k, spec.floor_flags)
        for _, v in ipairs(t) do res.floor[#res.floor + 1] = v end
        res.floor_rss = math.max(res.floor_rss or 0, rss or 0)
        fmed = median(t)
      elseif spec.kind == "w4" then
        local t, m = w4_batch(dir, WARM, k)
        for _, v in ipairs(t) do res.mod[#res.mod + 1] = v end
        if m.peak and m.peak > peak then
          peak = m.peak
          res.w4 = m
        end
        mmed = median(t)
      else
        local t = module_batch(side, WARM, k)
        for _, v in ipairs(t) do res.mod[#res.mod + 1] = v end
        peak = math.max(peak, clock.peak_kib())
        mmed = median(t)
      end
    end
    res.round_ratios[r] = mmed / fmed
  end
  if side then close_module_side(side) end
  res.peak = peak
  res.peak_note = (spec.kind == "w4" and "W4 process") or
    (reset_ok and "driver, this workload" or "driver, since start")
  res.mod_med, res.floor_med = median(res.mod), median(res.floor)
  res.pooled = res.mod_med / res.floor_med
  res.mod_spread, res.floor_spread = spread(res.mod), spread(res.floor)
  local rr = sorted_copy(res.round_ratios)
  res.rr_med, res.rr_min, res.rr_max = median(rr), rr[1], rr[#rr]
  -- The ratio judged: the median of the per-round ratios. Each round pairs
  -- a floor batch and a module batch run back to back, so a burst of load
  -- from elsewhere on the machine skews one round, not the verdict; the
  -- ratio of the pooled medians is printed beside it.
  res.ratio = res.rr_med
  return res
end

------------------------------------------------------------------------
-- Targets
------------------------------------------------------------------------

local W4_RSS_LIMIT_KIB = (payload_bytes(SHAPES.W4) + 8 * MiB) / 1024

-- What each workload's ratio is held to; "vs" names the denominator.
local TARGETS = {
  W1 = { max = 1.10, what = "module/floor" },
  W2 = { max = 0.50, what = "W2/W1floor", note = "well under W1's floor: <= 0.50" },
  W3 = { max = 0.22, what = "W3/W1floor", note = "a small fraction of W1's floor: <= 0.22" },
  W4 = { max = 1.05, what = "module/floor" },
  W5 = { max = 1.25, what = "module/floor" },
  W5u = { what = "W5u/W5floor", note = "information only" },
  W2L = { max = 1.25, what = "W2/linkfloor" },
  W7 = { what = "W7/linkfloor", note = "info: rollback vs links" },
  W6 = { max = 1.15, what = "module/floor" },
  W6f = { max = 1.15, what = "module/floor" },
  W6b = { what = "module/floor", note = "info: W6, file system busy" },
  W6fb = { what = "module/floor", note = "info: W6f, file system busy" },
}

for _, sc in ipairs(SCALING) do
  TARGETS["W1/" .. sc.label] = TARGETS.W1
  TARGETS["W2L/" .. sc.label] = TARGETS.W2L
  TARGETS["W3/" .. sc.label] = { what = "W3/statfloor", note = "info; per file: below" }
end

local function verdicts(res)
  local t = TARGETS[res.name]
  local v = {}
  if t.max then
    v[#v + 1] = { ok = res.ratio <= t.max, text = format("%s %.2f <= %.2f", t.what, res.ratio, t.max) }
  end
  if res.name == "W4" then
    v[#v + 1] = { ok = res.peak <= W4_RSS_LIMIT_KIB,
      text = format("peak RSS %s <= %s", mib(res.peak), mib(W4_RSS_LIMIT_KIB)) }
  end
  return v
end

------------------------------------------------------------------------
-- File systems
------------------------------------------------------------------------

local function mktemp_d(parent, name)
  local out, ok = sh(format("mktemp -d %s", shq(parent .. "/" .. name .. ".XXXXXX")))
  out = out:gsub("%s+$", "")
  if ok and out ~= "" then return out end
  return nil, out
end

local function setup_fs(which, notes)
  if which == "tmpfs" then
    local is_root = (sh("id -u")):match("^0") ~= nil
    if is_root then
      local dir = mktemp_d("/tmp", "awbench-tmpfs")
      if dir then
        local out, ok = sh(format("mount -t tmpfs -o size=3g,mode=0755 awbench %s", shq(dir)))
        if ok and clock.fstype(dir) == "tmpfs" then
          return { label = "tmpfs", dir = dir, mounted = true, where = dir .. " (tmpfs mounted for the run)" }
        end
        notes[#notes + 1] = "mount -t tmpfs failed (" .. out:gsub("%s+$", "") .. ")"
        sh("rmdir " .. shq(dir))
      end
    else
      notes[#notes + 1] = "not root: cannot mount a tmpfs"
    end
    if clock.fstype("/dev/shm") == "tmpfs" then
      local dir = mktemp_d("/dev/shm", "awbench")
      if dir then
        notes[#notes + 1] = "tmpfs: using /dev/shm instead of a mount of our own"
        return { label = "tmpfs", dir = dir, where = dir .. " (/dev/shm)" }
      end
    end
    notes[#notes + 1] = "no tmpfs available: tmpfs runs skipped"
    return nil
  end
  local cands = { os.getenv("BENCH_DISK_DIR"), "/var/tmp", "/tmp", "bench/build" }
  for i = 1, 4 do
    local parent = cands[i]
    if parent and parent ~= "" then
      local t = clock.fstype(parent)
      if t and t ~= "tmpfs" and t ~= "ramfs" then
        local dir = mktemp_d(parent, "awbench-disk")
        if dir then
          local df = sh("df -h " .. shq(dir) .. " | tail -1")
          return { label = "disk", dir = dir, where = format("%s (%s; %s)", dir, t, df:gsub("%s+", " "):gsub(" $", "")) }
        end
      end
    end
  end
  notes[#notes + 1] = "no on-disk directory found: disk runs skipped"
  return nil
end

local function teardown_fs(fs)
  if not fs then return end
  clock.rmtree(fs.dir .. "/m-steady")
  if fs.mounted then
    sh("umount " .. shq(fs.dir))
    sh("rmdir " .. shq(fs.dir))
  else
    clock.rmtree(fs.dir)
  end
end

------------------------------------------------------------------------
-- Modes
------------------------------------------------------------------------

-- W4's module side, in a process of its own.
local function w4child(dir, warm, iters)
  local shape = SHAPES.W4
  local payload = payload_of(shape, "a")
  collectgarbage("collect")
  local build_peak = clock.peak_kib()
  local before = clock.rss_kib()
  local reset = clock.reset_peak()
  local opts = { sync = false }
  local t = {}
  for k = 1, warm + iters do
    local v = first_once(dir, "w" .. k, payload, opts)
    if k > warm then t[#t + 1] = v end
  end
  local write_peak = reset and clock.peak_kib() or -1
  local ts = {}
  for i = 1, #t do ts[i] = format("%d", t[i]) end
  print("ns " .. concat(ts, " "))
  print(format("build_peak_kib %d", build_peak))
  print(format("write_peak_kib %d", write_peak))
  print(format("rss_before_kib %d", before))
  -- The process's own peak: the larger of the two phases (ru_maxrss is not
  -- reset by clear_refs, and would equal it without a reset).
  print(format("peak_kib %d", math.max(build_peak, write_peak, clock.maxrss_kib())))
end

-- N calls of one workload, for strace / valgrind; see bench/profile.sh.
local function profile(name, dir, n)
  local shape = assert(SHAPES[name], "unknown workload " .. tostring(name))
  name = name:match("^[^/]+")             -- a scaling row: its load's calls
  if name == "W2L" then name = "W2" end   -- the same module calls as W2
  local sync = (name == "W6" and "syncfs") or (name == "W6f" and "fsync") or false
  local opts = { sync = sync }
  local a = payload_of(shape, "a")
  local b = (name == "W2" or name == "W5u") and payload_of(shape, "b")
  if name == "W2" or name == "W3" or name == "W5u" then
    local target = dir .. "/t0"
    check(aw.write(target, a, opts), nil, nil, true, target)
    local cur = "a"
    for _ = 1, n do
      if b then
        cur = cur == "a" and "b" or "a"
        check(aw.write(target, cur == "a" and a or b, opts), nil, nil, true, target)
      else
        check(aw.write(target, a, opts), nil, nil, false, target)
      end
    end
  else
    for k = 0, n - 1 do
      local target = format("%s/t%d", dir, k)
      check(aw.write(target, a, opts), nil, nil, true, target)
    end
  end
end

local WORKLOADS = {
  { name = "W1", kind = "first", sync = false, budget = 12 },
  { name = "W2", kind = "update", sync = false, budget = 8 },
  { name = "W2L", kind = "update", sync = false, budget = 6, floor_flags = " -u" },
  { name = "W7", kind = "rollback", sync = false, budget = 6, floor_flags = " -u" },
  { name = "W3", kind = "noop", sync = false, budget = 6 },
  { name = "W5", kind = "first", sync = false, budget = 5, kmax = 400 },
  { name = "W5u", kind = "update", sync = false, budget = 3, kmax = 400 },
  { name = "W6", kind = "first", sync = "syncfs", budget = 14 },
  { name = "W6f", kind = "first", sync = "fsync", budget = 14, floor_flags = " -f" },
  { name = "W6b", kind = "first", sync = "syncfs", budget = 14, busy = true },
  { name = "W6fb", kind = "first", sync = "fsync", budget = 14, floor_flags = " -f", busy = true },
  { name = "W4", kind = "w4", sync = false, budget = 14, kmax = 30 },
}
for _, sc in ipairs(SCALING) do
  local budget = sc.files >= 100000 and 16 or sc.files >= 10000 and 10 or 6
  WORKLOADS[#WORKLOADS + 1] = { name = "W1/" .. sc.label, kind = "first", sync = false,
    budget = budget, scaling = sc }
  WORKLOADS[#WORKLOADS + 1] = { name = "W2L/" .. sc.label, kind = "update", sync = false,
    budget = budget, floor_flags = " -u", scaling = sc }
  WORKLOADS[#WORKLOADS + 1] = { name = "W3/" .. sc.label, kind = "noop", sync = false,
    budget = budget, floor_flags = " -t", scaling = sc }
end

local DESCR = {
  W1 = "first projection, 1000 x 1 KiB in 10 subdirs",
  W2 = "update, 1 of 1000 files changed (floor: W1's)",
  W2L = "W2 again, against the floor of an update by hard links (floor -u)",
  W7 = "rollback of W1's payload to the kept version (keep = 1), against floor -u",
  W3 = "no-op, identical payload again (floor: W1's)",
  W4 = "first projection, 10 x 10 MiB",
  W5 = "first projection, 1 x 100 B (per-call overhead)",
  W5u = "update of a 1 x 100 B payload (floor: W5's)",
  W6 = "W1 with sync = \"syncfs\" (floor: one syncfs)",
  W6f = "W1 with sync = \"fsync\" (floor: fsync of each file and directory)",
  W6b = "W6 while another process writes unsynced data to the same file system",
  W6fb = "W6f while another process writes unsynced data to the same file system",
}
for _, sc in ipairs(SCALING) do
  local what = format("%d x 1 KiB, 100 per directory", sc.files)
  DESCR["W1/" .. sc.label] = "first projection, " .. what
  DESCR["W2L/" .. sc.label] = "update of 1 file, " .. what .. " (floor: floor -u)"
  DESCR["W3/" .. sc.label] = "no-op, " .. what .. " (floor: a stat of each file, floor -t)"
end

local function main()
  local t_start = now()
  local notes, results, systems = {}, {}, {}
  local want = os.getenv("BENCH_FS") or "tmpfs,disk"
  local only
  if os.getenv("BENCH_WORKLOADS") then
    only = {}
    for w in os.getenv("BENCH_WORKLOADS"):gmatch("[%w/]+") do only[w] = true end
  end
  say("atomicwriter benchmark%s: %s, module %s; up to %d alternating rounds of floor/module batches",
    QUICK and " (BENCH_QUICK=1: smoke run)" or "", _VERSION, aw._VERSION or "?", MAX_ROUNDS)
  local ok, err = pcall(function()
    for _, which in ipairs({ "tmpfs", "disk" }) do
      if want:find(which, 1, true) then
        local fs = setup_fs(which, notes)
        if fs then systems[#systems + 1] = fs end
      end
    end
    for _, n in ipairs(notes) do say("note: %s", n) end
    for _, fs in ipairs(systems) do
      say("")
      say("== %s: %s", fs.label, fs.where)
      for _, spec in ipairs(WORKLOADS) do
        if only and not only[spec.name] then goto skip end
        if spec.busy and not BUSY then goto skip end
        if spec.scaling and not SCALING_FS:find(fs.label, 1, true) then goto skip end
        local stop = spec.busy and start_busy(fs.dir)
        collectgarbage("collect")   -- a big row's payloads gone before the next row's peak
        local ok_m, r = pcall(measure, fs, spec)
        if stop then stop() end
        if not ok_m then error(r, 0) end
        results[#results + 1] = r
        local extra = ""
        if r.w4 then
          extra = format("; W4 process: build peak %s, RSS before write %s, peak during write %s",
            mib(r.w4.build_peak), mib(r.w4.before), r.w4.write_peak >= 0 and mib(r.w4.write_peak) or "n/a")
        end
        say("%-3s %s\n    module %s (IQR %.0f%%)  floor %s (IQR %.0f%%)  n=%d+%d in %d rounds" ..
          "  ratio of pooled medians %.3f (per round: median %.3f, %.3f..%.3f)  peak RSS %s [%s]%s",
          r.name, DESCR[r.name], ms(r.mod_med), r.mod_spread, ms(r.floor_med), r.floor_spread,
          #r.mod, #r.floor, r.rounds, r.pooled, r.rr_med, r.rr_min, r.rr_max, mib(r.peak), r.peak_note, extra)
        ::skip::
      end
    end
  end)
  for _, fs in ipairs(systems) do teardown_fs(fs) end
  if not ok then
    say("benchmark aborted: %s", tostring(err))
    return
  end

  -- The table: one row per check (W4 has two: time and peak RSS).
  say("")
  say("Summary (module, floor: medians of all calls; ratio: module / floor, the median of the")
  say("per-round ratios, judged; pooled: the ratio of the two medians, for comparison. W2, W3")
  say("against W1's floor (W3/n: against a stat of every file, floor -t), W5u against W5's, W2L")
  say("(W2) and W7 (a rollback) against the floor of an update by hard links)")
  local head = format("%-6s %-8s %11s %11s %7s %7s  %-24s %10s  %s",
    "fs", "load", "module", "floor", "ratio", "pooled", "target", "peak RSS", "result")
  say("%s", head)
  say("%s", rep("-", #head + 2))
  local pass, fail = 0, 0
  for _, r in ipairs(results) do
    local t = TARGETS[r.name]
    local vs = verdicts(r)
    local function row(name, mod, floor_, ratio, pooled, target, result)
      say("%-6s %-8s %11s %11s %7s %7s  %-24s %10s  %s", r.fs, name, mod, floor_, ratio, pooled,
        target, mib(r.peak), result)
    end
    local ratio, pooled = format("%.3f", r.ratio), format("%.3f", r.pooled)
    if not t.max then
      row(r.name, ms(r.mod_med), ms(r.floor_med), ratio, pooled, t.note, "info")
    end
    for i, v in ipairs(vs) do
      if v.ok then pass = pass + 1 else fail = fail + 1 end
      local verdict = v.ok and "PASS" or "FAIL"
      if i == 1 then
        row(r.name, ms(r.mod_med), ms(r.floor_med), ratio, pooled, format("%s <= %.2f", t.what, t.max), verdict)
      else
        row(r.name .. "rss", "", "", "", "", format("peak RSS <= %s", mib(W4_RSS_LIMIT_KIB)), verdict)
      end
    end
  end
  -- Scaling: W3's cost per file at each size against its cost at the
  -- smallest (target: <= 1.20 at 100k), per file system.
  local by = {}
  for _, r in ipairs(results) do by[r.fs .. " " .. r.name] = r end
  for _, fs in ipairs(systems) do
    local base = SCALING[1] and by[fs.label .. " W3/" .. SCALING[1].label]
    if base then
      local per0 = base.mod_med / SCALING[1].files
      for i = 2, #SCALING do
        local r = by[fs.label .. " W3/" .. SCALING[i].label]
        if r then
          local g = (r.mod_med / SCALING[i].files) / per0
          local met = g <= 1.20
          if met then pass = pass + 1 else fail = fail + 1 end
          say("%-6s W3 per file: %.2f us at %s, %.2f us at %s: %.2fx (target <= 1.20)  %s", fs.label,
            per0 / 1e3, SCALING[1].label, r.mod_med / SCALING[i].files / 1e3, SCALING[i].label, g,
            met and "PASS" or "FAIL")
          -- the floor's own growth: a stat of every file (floor -t), the
          -- least any no-op that notices a change behind its back pays
          say("%-6s   floor, a stat per file: %.2f us at %s, %.2f us at %s: %.2fx (information)",
            fs.label, base.floor_med / SCALING[1].files / 1e3, SCALING[1].label,
            r.floor_med / SCALING[i].files / 1e3, SCALING[i].label,
            (r.floor_med / SCALING[i].files) / (base.floor_med / SCALING[1].files))
          -- the same against each row's own floor (paired, so a machine
          -- busier during one row than the other moves it less)
          say("%-6s   paired: W3/statfloor %.3f at %s, %.3f at %s: %.2fx (information)", fs.label,
            base.ratio, SCALING[1].label, r.ratio, SCALING[i].label, r.ratio / base.ratio)
        end
      end
    end
  end
  -- W2L beside the least an update that keeps its unchanged files and
  -- notices a change behind its back must do: the links (floor -u) plus a
  -- stat of every file (floor -t, W3's row of the same size).
  for _, fs in ipairs(systems) do
    for _, sc in ipairs(SCALING) do
      local u, w3 = by[fs.label .. " W2L/" .. sc.label], by[fs.label .. " W3/" .. sc.label]
      if u and w3 then
        say("%-6s W2L/%s against floor -u plus a stat per file (%.2f + %.2f ms): %.3f (information)",
          fs.label, sc.label, u.floor_med / 1e6, w3.floor_med / 1e6,
          u.mod_med / (u.floor_med + w3.floor_med))
      end
    end
  end
  say("")
  say("%d PASS, %d FAIL (a measurement: exit status 0 either way); %.0f s", pass, fail,
    (now() - t_start) / 1e9)
end

local mode = arg and arg[1]
if mode == "w4child" then
  w4child(arg[2], tonumber(arg[3]), tonumber(arg[4]))
elseif mode == "profile" then
  profile(arg[2], arg[3], tonumber(arg[4]))
else
  main()
end
