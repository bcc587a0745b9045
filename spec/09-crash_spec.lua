-- Contract, Guarantees 3 and 5 under real faults: an update from A to B is
-- run once under strace to list every system call it makes; then, once
-- per call, the writer is killed (SIGKILL) at that call, and once per call
-- the call fails with EIO. After each run a reader sees A or B whole
-- through ..data, and the next write leaves exactly B and a clean target.
-- The sweep runs for a small payload, for one big enough that the writer
-- keeps a manifest (..manifest) and trusts it for the update, for an
-- update that keeps 2 superseded versions (X and A stay kept, whole), and
-- for a rollback from A to a kept B (published again by hard links).
local H = require("helpers")
local aw = require("atomicwriter")

local A = { a = "A1", ["d/b"] = "same", ["d/c"] = "A3", gone = "A4" }
local B = { a = "B1", ["d/b"] = "same", ["d/c"] = "B3", new = "B5" }
local CHILD_B = '{ a = "B1", ["d/b"] = "same", ["d/c"] = "B3", new = "B5" }'

local CHILD = [[
  local aw = require("atomicwriter")
  local B = %s
  for i = 1, %d do B["d/e" .. i] = "E" .. i end
  %s
  io.open("/aw-crash-marker-begin")
  local T = %q
  local ok, msg, code = %s
  io.open("/aw-crash-marker-end")
  print(ok, msg, code)
]]

local W = { a = "W1", w = "W2" }
local X = { a = "X1", ["d/b"] = "X2", x = "X3" }

local SWEEPS = {
  { label = "", extra = 0 },
  -- 8 more unchanged files: the manifest is kept, and A's is settled
  -- (mtimes set in the past) so that the update trusts it
  { label = " (with a manifest)", extra = 8 },
  -- history: W, X, then A published with keep = 2, their record aged past
  -- the reader grace; the child publishes B: X and A stay kept, W goes
  { label = " (keep = 2)", extra = 0, history = { W, X, "A" }, age = true,
    call = "aw.write(T, B, { keep = 2 })" },
  -- rollback: B then A published with keep = 2, the child rolls back to B
  { label = " (a rollback)", extra = 0, history = { "B", "A" }, call = "aw.rollback(T)" },
  -- B's files from sources (issue 17): each looked at, d/b compared by
  -- reading (the same bytes: linked), the others copied (FICLONE tried,
  -- copy_file_range), given the source's mtime; a manifest saved. The
  -- core's work alone: run under the default Lua only.
  { label = " (sources)", extra = 0, sources = true, lua = "lua5.4" },
}

local function with_extra(payload, extra)
  local p = {}
  for k, v in pairs(payload) do p[k] = v end
  for i = 1, extra do p["d/e" .. i] = "E" .. i end
  return p
end

-- The calls the update makes, as { name, n }: the n-th call of that name
-- since the child started (strace counts injections per syscall name).
local function trace_update(target, extra, prep, call)
  local log = target .. ".trace"
  local ok, out = H.lua(CHILD:format(CHILD_B, extra, prep, target, call), H.strace("", log))
  assert(ok, out)
  local counts, calls, inside = {}, {}, false
  for line in io.lines(log) do
    local name = line:match("^([%w_]+)%(")
    if name then
      counts[name] = (counts[name] or 0) + 1
      if line:find("/aw-crash-marker-begin", 1, true) then
        inside = true
      elseif line:find("/aw-crash-marker-end", 1, true) then
        inside = false
      elseif inside then
        calls[#calls + 1] = { name = name, n = counts[name], line = line }
      end
    end
  end
  os.remove(log)
  return calls
end

local function version_is(target, payload)
  local v = H.readlink(target .. "/..data")
  return v and H.lstat(target .. "/" .. v) and
    require("luassert.util").deepcompare(H.files(target .. "/" .. v), H.contents(payload), true)
end

-- What a reader sees after the fault: A or B whole, and the visible paths
-- both versions have agree with the version ..data names.
local function assert_whole(target, what, A, B)
  local is_a, is_b = version_is(target, A), version_is(target, B)
  assert.is_true(is_a or is_b, what .. ": ..data shows A or B whole")
  local p = is_a and A or B
  assert.are.equal(p.a, H.read(target .. "/a"), what)
  assert.are.equal(p["d/b"], H.read(target .. "/d/b"), what)
  if is_a then   -- Guarantee 2: B's new name has no link before the swap
    assert.is_nil(H.lstat(target .. "/new"), what .. ": a link to a file not published yet")
  end
  return is_a and "A" or "B"
end

-- With a history: each version ..history lists holds exactly what was
-- published under its name (`published`: version name -> payload); with
-- `clean`, every other version directory is ..data's (no orphan left: a
-- crashed writer's is removed by the next write).
local function assert_kept_whole(target, what, published, clean)
  local listed = {}
  local record = H.read(target .. "/..history")
  for name in (record or ""):gmatch("\n(%.%.[%w_.]+) ") do listed[name] = true end
  local current = H.readlink(target .. "/..data")
  for _, v in ipairs(H.versions(target)) do
    if clean and v ~= current then
      assert.is_true(listed[v] ~= nil, what .. ": " .. v .. " is kept, not an orphan left behind")
    end
  end
  for name in pairs(listed) do
    if H.lstat(target .. "/" .. name) then
      assert.is_not_nil(published[name], what .. ": " .. name .. " was published")
      assert.are.same(H.contents(published[name]), H.files(target .. "/" .. name),
        what .. ": kept version " .. name .. " is whole")
    end
  end
  return listed
end

for _, sweep in ipairs(SWEEPS) do
local A, B, extra = with_extra(A, sweep.extra), with_extra(B, sweep.extra), sweep.extra
local call = sweep.call or "aw.write(T, B)"
local payloads_of = {}   -- per target: version name -> payload
local prep = ""          -- the child's code that turns B into sources

if sweep.lua and H.LUA:match("[^/]*$") ~= sweep.lua then
  pending("an update killed or failing at each of its system calls" .. sweep.label ..
    " (the core's work alone: run under " .. sweep.lua .. " only)")
else
describe("an update killed or failing at each of its system calls" .. sweep.label .. " #slow", function()
  local root, calls
  setup(function()
    root = H.tmpdir("crash")
    if sweep.sources then   -- B's bytes in files: the same path in every run
      local src = root .. "/src"
      for path, data in pairs(B) do
        assert(H.sh("mkdir -p " .. H.quote((src .. "/" .. path):match("^(.*)/"))))
        H.write_file(src .. "/" .. path, data)
      end
      prep = ("local S = %q; for k in pairs(B) do B[k] = { source = S .. '/' .. k } end"):format(src)
    end
  end)
  teardown(H.cleanup)

  -- Every target's path has the same length: the traced child and each
  -- injected one then allocate alike, so the n-th brk or mmap of the trace
  -- is the n-th of the injected run too.
  local made = 0
  local function fresh()
    made = made + 1
    local target = ("%s/t%05d"):format(root, made)
    assert(H.sh("mkdir " .. H.quote(target)))
    payloads_of[target] = {}
    for _, p in ipairs(sweep.history or {}) do
      local payload = p == "A" and A or p == "B" and B or p
      local ok, version = aw.write(target, payload, { keep = 2 })
      assert.is_true(ok, version)
      payloads_of[target][version] = payload
    end
    if not sweep.history then
      assert.is_true(aw.write(target, A))
    end
    if sweep.age then   -- as if published long ago: past the reader grace
      assert(H.sh("sed -i -E 's/^([.][.][^ ]+) [0-9]+ [0-9]+$/\\1 1700000000 0/' " ..
        H.quote(target .. "/..history")))
    end
    if extra > 0 then
      assert(H.sh("find " .. H.quote(target .. "/..data/") .. " -type f -exec touch -m -d @1700000000.5 {} +"))
      assert.is_false(aw.write(target, A))   -- the no-op settles the manifest
      assert.are.equal("file", H.lstat(target .. "/..manifest").mode)
    end
    return target
  end

  H.strace_it("makes a known list of system calls (traced once)", function()
    calls = trace_update(fresh(), extra, prep, call)
    assert.is_true(#calls > 20, "traced " .. #calls .. " calls")
    local names = {}
    for _, c in ipairs(calls) do names[c.name] = true end
    local needed_calls = { "flock", "renameat", "symlinkat", "mkdirat", "linkat", "fsync" }
    if aw.platform.sync == "syncfs" then needed_calls[#needed_calls + 1] = "syncfs" end
    for _, needed in ipairs(needed_calls) do
      if needed ~= "renameat" or not names.renameat2 then
        assert.truthy(names[needed], "the update calls " .. needed)
      end
    end
  end)

  for _, fault in ipairs({ "signal=KILL", "error=EIO" }) do
    H.strace_it("leaves A or B whole after each call fails with " .. fault .. ", and the next write cleans up", function()
      assert(calls, "no trace of the update: the first test failed")
      local seen, skipped, published = 0, 0, { A = 0, B = 0 }
      for i, c in ipairs(calls) do
        -- brk cannot fail with an errno (the kernel returns the old break);
        -- an injected -EIO is taken by malloc for an address and crashes Lua.
        if fault == "error=EIO" and c.name == "brk" then
          skipped = skipped + 1
        else
          local target = fresh()
          local what = ("%s at call %d, %s"):format(fault, i, c.line)
          local _, out = H.lua(CHILD:format(CHILD_B, extra, prep, target, call),
            H.strace(("-e inject=%s:%s:when=%d"):format(c.name, fault, c.n)))
          if fault == "signal=KILL" then
            assert.is_nil(out:find("^true"), what .. ": the kill landed (" .. out .. ")")
          else
            assert.is_nil(out:find("Segmentation"), what .. ": " .. out)
          end
          local whole = assert_whole(target, what, A, B)
          published[whole] = published[whole] + 1
          if sweep.history then
            assert_kept_whole(target, what, payloads_of[target])
            local ok, msg = aw.write(target, B, { keep = 2 })
            assert.is_not_nil(ok, msg)
            assert.are.same(H.contents(B), H.files(target .. "/..data/"), what .. ": next write")
            assert.is_nil(H.lstat(target .. "/..data_tmp"), what .. ": no ..data_tmp")
            assert.is_nil(H.lstat(target .. "/..history_tmp"), what .. ": no ..history_tmp")
            payloads_of[target][H.readlink(target .. "/..data")] = B
            local listed = assert_kept_whole(target, what .. ", next write", payloads_of[target], true)
            assert.is_true(next(listed) ~= nil, what .. ": the history survived")
          else
            local ok, msg = aw.write(target, B)
            assert.is_not_nil(ok, msg)
            H.assert_layout(target, B)
          end
          seen = seen + 1
          assert(H.sh("rm -rf " .. H.quote(target)))
        end
      end
      print(("# crash%s: %d calls, each hit with %s (%d brk skipped): %d left A, %d left B, 0 lost"):format(
        sweep.label, seen, fault, skipped, published.A, published.B))
      assert.are.equal(#calls, seen + skipped)
    end)
  end

  if not sweep.history then   -- the syncs of a plain update; sync = false
  H.strace_it("orders the syncs: data and directories, then the swap, then the target", function()
    local order, before_swap = {}, 0
    for _, c in ipairs(calls or trace_update(fresh(), extra, prep, call)) do
      local name = c.name:match("^rename") and "rename" or c.name
      if name == "fsync" and (order[1] == nil or order[#order] == "fsyncs") then
        order[1] = "fsyncs"   -- a run of fsyncs before anything else
        before_swap = before_swap + 1
      elseif name == "syncfs" or name == "fsync" or name == "rename" or name == "symlinkat" then
        order[#order + 1] = name
      end
    end
    -- syncfs (or an fsync of each file, directory and the version, where the
    -- method is fsync) before the swap; fsync of the target after it, again
    -- after the links (and the manifest's rename, which needs no sync)
    local first = aw.platform.sync == "syncfs" and "syncfs" or "fsyncs"
    local expect = { first, "symlinkat", "rename", "fsync", "symlinkat", "fsync" }
    if extra > 0 or sweep.sources then table.insert(expect, 6, "rename") end   -- a manifest kept
    assert.are.same(expect, order)
    if first == "fsyncs" then   -- B's files (written or linked), "d", the version
      local files = 0
      for _ in pairs(B) do files = files + 1 end
      assert.are.equal(files + 2, before_swap)
    end
  end)

  H.strace_it("makes no sync call with sync = false", function()
    local target = fresh()
    local log = target .. ".trace"
    local ok, out = H.lua(([[
      local aw = require("atomicwriter")
      assert(aw.write(%q, { a = "B1", ["d/b"] = "same" }, { sync = false }))
    ]]):format(target), H.strace("-e trace=fsync,fdatasync,syncfs,sync,sync_file_range", log))
    assert(ok, out)
    assert.are.equal("", H.read(log):gsub("%+%+%+[^\n]*\n", ""))
  end)

  -- The sync calls of one write of B into A's target, with `opts`.
  local function sync_calls(opts)
    local target = fresh()
    local log = target .. ".trace"
    local ok, out = H.lua(([[
      local aw = require("atomicwriter")
      local B = %s
      for i = 1, %d do B["d/e" .. i] = "E" .. i end
      assert(aw.write(%q, B, %s))
    ]]):format(CHILD_B, extra, target, opts), H.strace("-e trace=fsync,fdatasync,syncfs,rename,renameat,renameat2", log))
    assert(ok, out)
    local names = {}
    for line in H.read(log):gmatch("[^\n]+") do
      local name = line:match("^([%w_]+)%(")
      if name then names[#names + 1] = name:match("^rename") and "rename" or name end
    end
    return names
  end

  H.strace_it('with sync = "fsync" fsyncs each file written or linked, each directory and the version before the swap, never syncfs', function()
    local names = sync_calls('{ sync = "fsync" }')
    local files = 0
    for _ in pairs(B) do files = files + 1 end
    local before = 0
    while names[before + 1] == "fsync" do before = before + 1 end
    assert.are.equal(files + 2, before, table.concat(names, " "))
    assert.are.equal("rename", names[before + 1])
    for _, n in ipairs(names) do assert.are_not.equal("syncfs", n) end
  end)

  H.strace_it('with sync = "syncfs" makes one syncfs before the swap where the system has syncfs', function()
    local names = sync_calls('{ sync = "syncfs" }')
    if aw.platform.syncfs then
      assert.are.equal("syncfs", names[1], table.concat(names, " "))
      assert.are.equal("rename", names[2])
    else   -- elsewhere it is the fsync method
      assert.are.same(sync_calls('{ sync = "fsync" }'), names)
    end
  end)

  -- An options table that says nothing of sync keeps the default, true:
  -- each form makes the syncs a write with no options makes.
  H.strace_it("keeps sync = true when an options table leaves sync out", function()
    local forms = {
      ["no options"] = "aw.write(t, p)",
      ["{ timeout = 5 }"] = "aw.write(t, p, { timeout = 5 })",
      ["{ log_context = 'x' }"] = "aw.write(t, p, { log_context = 'x' })",
      ["aw.new(t, { log_context = 'x' })"] = "assert(aw.new(t, { log_context = 'x' })):write(p)",
      ["aw.new(t, { timeout = 1 })"] = "assert(aw.new(t, { timeout = 1 })):write(p)",
      ["{ sync = false }"] = "aw.write(t, p, { sync = false })",
    }
    local counts = {}
    for name, call in pairs(forms) do
      local target = fresh()
      local log = target .. ".trace"
      local ok, out = H.lua(([[
        local aw = require("atomicwriter")
        local t, p = %q, { a = "B1", ["d/b"] = "same" }
        assert(%s)
      ]]):format(target, call), H.strace("-f -e trace=fsync,fdatasync,syncfs", log))
      assert(ok, out)
      local n = 0
      for line in H.read(log):gmatch("[^\n]+") do
        if line:find("sync%w*%(") then n = n + 1 end
      end
      counts[name] = n
    end
    assert.is_true(counts["no options"] >= 3, "syncfs and two fsyncs: " .. counts["no options"])
    assert.are.equal(0, counts["{ sync = false }"])
    for name, n in pairs(counts) do
      if name ~= "{ sync = false }" then
        assert.are.equal(counts["no options"], n, name)
      end
    end
  end)
  end
end)
end   -- the sweep's Lua
end
