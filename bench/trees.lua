--- bench/trees.lua - the tree rows of the benchmark (issue 17; bench/README.md).
--
-- Makes a tree of mixed sizes (large files plus thousands of small ones),
-- then times whole processes, paired and interleaved round by round:
--   T1   first publish: `atomicwriter project` against `cp -a`, without and
--        with a sync at the end (project's default syncfs; cp -a then
--        `sync -f`)
--   T2   the same tree again, unchanged: project against `rsync -a`'s no-op
--   T3   one file changed: project against copying that file plus the floor
--        of an update by links (`cp -al` of the published tree)
--   RSS  peak RSS of project (a first publish) against the same command
--        that writes nothing (`atomicwriter --version`: interpreter and
--        module) and against listing the tree only (read_tree, sources)
-- on disk, on tmpfs, and on an xfs image with reflink=1 on a loop device
-- in direct-I/O mode (when mounting works; so that a sync reaches the disk
-- below, as on a real xfs, not only the image file's page cache), where T1
-- is also held against `cp -a --reflink=never` (T1r, T1rs) and against the
-- floor of a reflinked copy (bench/build/clonetree: per file only open,
-- create, FICLONE and two closes), and filefrag shows the extents shared.
--
-- Each row's ratio is the median, over whole rotations of the order (two
-- rounds for two sides, three for three), of aw's seconds over the
-- baseline's in that rotation: a rotation's load hits both sides, and each
-- side takes every place in the order once. The medians of each side's
-- seconds, the per-round and the per-rotation ratios are printed too.
--
-- Environment:
--   BENCH_TREE_MB=1024        the tree's size in MiB (the machine is shared)
--   BENCH_TREE_ROUNDS=6       timed rounds per row (each side once a round;
--                             a multiple of 2 and 3: whole rotations)
--   BENCH_TREE_FS=disk,tmpfs,xfs
--   BENCH_TREE_ROWS="T1 T3"   only these rows (T1 T1s T1r T2 T3 RSS; T1r
--                             brings T1rs and the clonetree floor)
--   BENCH_DISK_DIR=/var/tmp   where the disk tree and the xfs image go
-- A measurement: it exits 0 once it ran, and prints what it measured.

local clock = require("benchclock")
local util = require("util")

local format = string.format
local now = clock.now_ns
local MiB = 1048576
local shq, sh, must, say, median = util.shq, util.sh, util.must, util.say, util.median

local TREE_MB = tonumber(os.getenv("BENCH_TREE_MB") or "") or 1024
local ROUNDS = tonumber(os.getenv("BENCH_TREE_ROUNDS") or "") or 6
local WHICH = os.getenv("BENCH_TREE_FS") or "disk,tmpfs,xfs"
local DISK = os.getenv("BENCH_DISK_DIR") or "/var/tmp"
local ROWS = os.getenv("BENCH_TREE_ROWS")   -- "T1 T3": only those (default all)
local CLONETREE = "bench/build/clonetree"

local function want(name)
  return not ROWS or (" " .. ROWS .. " "):find(" " .. name .. " ", 1, true) ~= nil
end

local LUA = util.interpreter("lua5.4")
local CLI = LUA .. " bin/atomicwriter"

-- Seconds one shell command takes (it must succeed).
local function timed(cmd)
  local t0 = now()
  must(cmd)
  return (now() - t0) / 1e9
end

------------------------------------------------------------------------
-- The tree
------------------------------------------------------------------------

-- 3/4 of the bytes in files of about 32 MiB, the rest in files of 1 MiB,
-- and (per GiB) 4000 small files of 1-16 KiB in 40 directories.
local function shape()
  local total = TREE_MB * MiB
  local nl = math.max(1, math.floor(total * 0.75 / (32 * MiB) + 0.5))
  local nsmall = math.max(200, 4000 * TREE_MB // 1024)
  local small_bytes = 0
  for i = 0, nsmall - 1 do small_bytes = small_bytes + 1024 * (1 + i % 16) end
  local lsize = math.floor(total * 0.75 / nl)
  local nm = math.max(1, (total - nl * lsize - small_bytes) // MiB)
  return { nl = nl, lsize = lsize, nm = nm, nsmall = nsmall,
    bytes = nl * lsize + nm * MiB + small_bytes, files = nl + nm + nsmall }
end

local function make_tree(dir, s)
  must(format("mkdir -p %s/big %s/m", shq(dir), shq(dir)))
  for i = 0, 39 do must(format("mkdir -p %s/s/d%02d", shq(dir), i)) end
  for i = 0, s.nl - 1 do   -- random bytes: no file system can compress them away
    must(format("head -c %d /dev/urandom > %s/big/%03d.bin", s.lsize, shq(dir), i))
  end
  local rnd = assert(io.open("/dev/urandom", "rb"))
  local block = rnd:read(MiB)
  rnd:close()
  local function put(path, size, i)
    local f = assert(io.open(path, "wb"))
    local hdr = format("%08d", i)
    f:write(hdr, block:sub(1, size - #hdr))
    f:close()
  end
  for i = 0, s.nm - 1 do put(format("%s/m/%04d", dir, i), MiB, i) end
  for i = 0, s.nsmall - 1 do
    put(format("%s/s/d%02d/%05d.txt", dir, i % 40, i), 1024 * (1 + i % 16), i)
  end
end

------------------------------------------------------------------------
-- File systems
------------------------------------------------------------------------

local function mktemp(parent, name)
  return (must(format("mktemp -d %s", shq(parent .. "/" .. name .. ".XXXXXX"))):gsub("%s+$", ""))
end

local function setup(which, s, notes)
  if which == "disk" then
    local dir = mktemp(DISK, "awtrees-disk")
    return { label = "disk (" .. clock.fstype(dir) .. ")", dir = dir }
  elseif which == "tmpfs" then
    local dir = mktemp("/tmp", "awtrees-tmpfs")
    local size = (s.bytes * 6) // MiB + 256   -- src, t, c, r, the floor's two
    local out, ok = sh(format("mount -t tmpfs -o size=%dm awtrees %s", size, shq(dir)))
    if ok then return { label = "tmpfs", dir = dir, mounted = true } end
    notes[#notes + 1] = "tmpfs: mount failed (" .. out:gsub("%s+$", "") .. "); /dev/shm instead"
    sh("rmdir " .. shq(dir))
    return { label = "tmpfs", dir = mktemp("/dev/shm", "awtrees") }
  elseif which == "xfs" then
    local dir = mktemp(DISK, "awtrees-xfs")
    local img = dir .. ".img"
    local size = (s.bytes * 3) // MiB + 1024
    local out, ok = sh(format("truncate -s %dM %s && mkfs.xfs -q -m reflink=1 %s",
      size, shq(img), shq(img)))
    local dev = ok and (sh("losetup -f --show --direct-io=on " .. shq(img))):gsub("%s+$", "")
    if ok and dev:match("^/dev/loop%d+$") then
      out, ok = sh(format("mount %s %s", shq(dev), shq(dir)))
      if ok then
        return { label = "xfs reflink=1 (loop, dio)", dir = dir, mounted = true, img = img, dev = dev,
          reflink = true }
      end
      sh("losetup -d " .. shq(dev))
    elseif ok then   -- no direct I/O: a sync then stops in the image file's page cache
      out, ok = sh(format("mount -o loop %s %s", shq(img), shq(dir)))
      if ok then
        notes[#notes + 1] = "xfs: losetup --direct-io failed (" .. dev .. "): plain loop mount, " ..
          "so the synced rows stop at the image file's page cache"
        return { label = "xfs reflink=1 (loop)", dir = dir, mounted = true, img = img, reflink = true }
      end
    end
    notes[#notes + 1] = "xfs: no loop mount (" .. out:gsub("%s+$", "") .. "): reflink rows skipped"
    sh(format("rm -f %s; rmdir %s", shq(img), shq(dir)))
    return nil
  end
end

local function teardown(fs)
  if fs.mounted then
    sh("umount " .. shq(fs.dir))
    if fs.dev then sh("losetup -d " .. shq(fs.dev)) end
    sh("rmdir " .. shq(fs.dir))
    if fs.img then os.remove(fs.img) end
  else
    sh("rm -rf " .. shq(fs.dir))
  end
end

------------------------------------------------------------------------
-- Rows
------------------------------------------------------------------------

local results = {}

-- The ratio of a row: for each full rotation of the order (`group`
-- rounds: 2 for two sides, 3 for three), the sum of a's seconds over the
-- sum of b's, and the median of those. A side's place in a round moves
-- its time (on tmpfs the second of two first publishes, with the first's
-- 1 GiB still in memory, took up to 3x longer): over a whole rotation
-- each side has had every place once.
local function row(fs, name, what, a, b, target, group)
  group = group or 2
  local ma, mb = median(a), median(b)
  local ratios, grouped = {}, {}
  for i = 1, math.min(#a, #b) do ratios[i] = a[i] / b[i] end
  for g = 0, #ratios // group - 1 do
    local sa, sb = 0, 0
    for i = g * group + 1, g * group + group do sa, sb = sa + a[i], sb + b[i] end
    grouped[#grouped + 1] = sa / sb
  end
  if #grouped == 0 then grouped = ratios end   -- fewer rounds than a rotation
  local r = { fs = fs.label, name = name, what = what, a = ma, b = mb, ratio = median(grouped),
    target = target }
  results[#results + 1] = r
  local function list(t)
    local out = {}
    for i = 1, #t do out[i] = format("%.2f", t[i]) end
    return table.concat(out, " ")
  end
  say("  %-6s %-44s %8.3f s vs %8.3f s  ratio %.2fx%s   [%s | %s] per round %s, per rotation %s",
    name, what, ma, mb, r.ratio, target and format(" (target <= %.1fx)", target) or "", list(a), list(b),
    list(ratios), list(grouped))
  return r
end

-- Rounds of several sides: each round first runs `reset` (untimed: for a
-- first publish, the removal of every side's output from the round
-- before), then each side's `prep` (untimed) and command, the order
-- rotating from round to round; returns one list of seconds per side.
-- The reset comes before the first side: a side whose prep removed the
-- tree it had just written was slowed by the removal's aftermath (on
-- ext4, rounds of either side took 2-4x longer in first place), which
-- made the per-round ratios swing with the order.
local function rounds_of(reset, sides)
  local out = {}
  for i = 1, #sides do out[i] = {} end
  for r = 1, ROUNDS do
    must(reset)
    for k = 0, #sides - 1 do
      local i = (r - 1 + k) % #sides + 1
      must(sides[i][1])
      local t = out[i]
      t[#t + 1] = timed(sides[i][2])
    end
  end
  return table.unpack(out)
end

-- rounds_of for two sides.
local function pairs_of(reset, prep_a, cmd_a, prep_b, cmd_b)
  return rounds_of(reset, { { prep_a, cmd_a }, { prep_b, cmd_b } })
end

local function peak_kib(cmd)
  local log = os.tmpname()
  must("/usr/bin/time -o " .. shq(log) .. " -f 'peak_kib %M' " .. cmd)
  local f = assert(io.open(log))
  local out = f:read("*a")
  f:close()
  os.remove(log)
  return tonumber(out:match("peak_kib (%d+)"))
end

local function run_fs(fs, s)
  local d = fs.dir
  local src, t, c, r = d .. "/src", d .. "/t", d .. "/c", d .. "/r"
  local t0 = now()
  make_tree(src, s)
  must("sync")
  say("%s: %s; tree of %d files, %.0f MiB made in %.1f s", fs.label, d, s.files, s.bytes / MiB,
    (now() - t0) / 1e9)
  local fresh_t = format("rm -rf %s && mkdir %s && sync", shq(t), shq(t))
  -- a round of first publishes starts from nothing written; each side
  -- starts after a sync (of the side before it in the round)
  local reset = format("rm -rf %s %s %s && mkdir %s && sync", shq(t), shq(c), shq(d .. "/f"), shq(t))
  local project = format("%s project --no-sync %s %s >/dev/null", CLI, shq(src), shq(t))
  local project_sync = format("%s project %s %s >/dev/null", CLI, shq(src), shq(t))

  -- T1
  local a, b
  if want("T1") then
    a, b = pairs_of(reset, "sync", project, "sync", format("cp -a %s %s", shq(src), shq(c)))
    row(fs, "T1", "first publish, no sync: project / cp -a", a, b, not fs.reflink and 1.2 or nil)
  end
  if want("T1s") then
    a, b = pairs_of(reset, "sync", project_sync, "sync",
      format("cp -a %s %s && sync -f %s", shq(src), shq(c), shq(c)))
    row(fs, "T1s", "first publish, synced: project / cp -a + sync -f", a, b,
      not fs.reflink and 1.2 or nil)
  end
  if fs.reflink and want("T1r") then
    -- Judged synced (T1rs: a published tree is meant to be durable, and
    -- only a sync makes cp --reflink=never pay for writing the bytes;
    -- without one it fills the page cache). The floor (clonetree: per file
    -- open, create, FICLONE, close, close, nothing else) shows what any
    -- reflinked copy of these 4246 files costs: 0.15-0.24x of the baseline
    -- on the 2-core VM of 2026-12-07, so 0.2x is at the floor's edge there,
    -- and T1ra/T1ras (project / floor, both steady) measure what the
    -- guarantees add (docs/trees.md, "How fast")
    local floor = format("%s %s %s", CLONETREE, shq(src), shq(d .. "/f"))
    local never = format("cp -a --reflink=never %s %s", shq(src), shq(c))
    local f
    a, b, f = rounds_of(reset, { { "sync", project }, { "sync", never }, { "sync", floor } })
    row(fs, "T1r", "reflink publish, no sync / cp --reflink=never", a, b, nil, 3)
    row(fs, "T1rf", "floor (clonetree), no sync / cp --reflink=never", f, b, nil, 3)
    row(fs, "T1ra", "reflink publish, no sync / floor (clonetree)", a, f, nil, 3)
    a, b, f = rounds_of(reset, { { "sync", project_sync }, { "sync", never .. " && sync -f " .. shq(c) },
      { "sync", floor .. " sync" } })
    local judged = row(fs, "T1rs", "reflink publish, synced / cp --reflink=never + sync", a, b, 0.2, 3)
    local fl = row(fs, "T1rfs", "floor (clonetree), synced / cp --reflink=never + sync", f, b, nil, 3)
    judged.note = format("the floor: %.2fx", fl.ratio)
    row(fs, "T1ras", "reflink publish, synced / floor (clonetree) synced", a, f, nil, 3)
    local big = "big/000.bin"
    local out = sh(format("filefrag -v %s %s", shq(src .. "/" .. big), shq(t .. "/" .. big)))
    local shared = select(2, out:gsub("shared", ""))
    say("  filefrag -v %s (source and published): %d extent lines flagged shared", big, shared)
    results[#results + 1] = { fs = fs.label, name = "T1r", what = "extents flagged shared (filefrag -v)",
      text = tostring(shared) }
  end

  if not (want("T2") or want("T3") or want("RSS")) then return end
  -- T2: the published tree again; one untimed no-op first settles the
  -- directories (their first listing), as any earlier run would have
  must(fresh_t)
  must(project)
  must(project)
  must(format("rm -rf %s && cp -a %s %s && rsync -a %s/ %s/", shq(r), shq(src), shq(r), shq(src), shq(r)))
  a, b = pairs_of("true", "true", project, "true", format("rsync -a %s/ %s/", shq(src), shq(r)))
  row(fs, "T2", "unchanged: project / rsync -a (no-op)", a, b, 2)

  -- T3: one 1 MiB file rewritten in place (new bytes, same size), against
  -- the floor of an update by links (bench/floor.c -u's steps, by
  -- coreutils): cp -al of the current copy, that file copied, the old
  -- copy removed
  local changed = src .. "/m/0001"
  local variant = 0
  local function change()
    variant = variant + 1
    return format("printf 'v%%07d' %d | dd of=%s bs=8 count=1 conv=notrunc status=none",
      variant, shq(changed))
  end
  local fl = d .. "/floor"
  must(format("rm -rf %s && cp -a %s %s", shq(fl), shq(src), shq(fl)))
  a, b = {}, {}
  for round = 1, ROUNDS do
    local function run_a() must(change()); a[#a + 1] = timed(project) end
    local function run_b()
      b[#b + 1] = timed(format("cp -al %s %s.new && rm %s.new/m/0001 && cp -p %s %s.new/m/0001 && " ..
        "rm -rf %s && mv %s.new %s", shq(fl), shq(fl), shq(fl), shq(changed), shq(fl), shq(fl), shq(fl),
        shq(fl)))
    end
    if round % 2 == 1 then run_a(); run_b() else run_b(); run_a() end
  end
  row(fs, "T3", "one file changed: project / cp -al, cp, rm -rf", a, b, 1.5)

  -- RSS
  must(fresh_t)
  local p = peak_kib(project)
  local base = peak_kib(CLI .. " --version >/dev/null")
  local list = peak_kib(format("%s -e %s", LUA, shq(format(
    "local aw = require('atomicwriter') local f = assert(aw.read_tree(%q, { sources = true })) " ..
    "local p = {} for k, v in pairs(f) do p[k] = { source = v.source, mode = v.mode } end", src))))
  say("  RSS    peak of project %.1f MiB, of --version %.1f MiB (+%.1f MiB), of the listing alone %.1f MiB",
    p / 1024, base / 1024, (p - base) / 1024, list / 1024)
  results[#results + 1] = { fs = fs.label, name = "RSS", what = "project's peak above --version's",
    text = format("+%.1f MiB (%.1f vs %.1f; listing alone %.1f) (target <= 32 MiB)",
      (p - base) / 1024, p / 1024, base / 1024, list / 1024) }
end

------------------------------------------------------------------------

local function main()
  local s = shape()
  local notes = {}
  say("bench/trees.lua: %d files, %.0f MiB (%d x %.1f MiB, %d x 1 MiB, %d small of 1-16 KiB); " ..
    "%d rounds per row; %s", s.files, s.bytes / MiB, s.nl, s.lsize / MiB, s.nm, s.nsmall, ROUNDS,
    (sh("cat /proc/loadavg")):gsub("%s+$", ""))
  for which in WHICH:gmatch("[^,%s]+") do
    local ok, fs = pcall(setup, which, s, notes)
    if not ok then
      notes[#notes + 1] = which .. ": " .. tostring(fs)
    elseif fs then
      local ran, err = pcall(run_fs, fs, s)
      if not ran then notes[#notes + 1] = fs.label .. ": " .. tostring(err) end
      teardown(fs)
    end
  end
  say("\ntree rows (%d rounds; seconds: medians; ratio: the median of the per-rotation ratios):", ROUNDS)
  for _, r in ipairs(results) do
    if r.text then
      say("  %-22s %-5s %s: %s", r.fs, r.name, r.what, r.text)
    else
      local ok = r.target and (r.ratio <= r.target and "meets" or "MISSES") or ""
      say("  %-22s %-5s %-44s %7.3f / %7.3f s = %5.2fx %s%s%s", r.fs, r.name, r.what, r.a, r.b, r.ratio,
        ok, r.target and format(" (<= %.1fx)", r.target) or "", r.note and ("; " .. r.note) or "")
    end
  end
  for _, n in ipairs(notes) do say("note: %s", n) end
end

main()
