-- History (opts.keep), the version a write returns, what it changed,
-- aw.versions, aw.read of a kept version, and aw.rollback.
local H = require("helpers")
local aw = require("atomicwriter")
local lfs = require("lfs")

-- Makes the recorded publish times old, as if the versions were published
-- long ago (past the one-second reader grace).
local function age(target)
  assert(H.sh("sed -i -E 's/^([.][.][^ ]+) [0-9]+ [0-9]+$/\\1 1700000000 0/' " ..
    H.quote(target .. "/..history")))
end

local function names_of(list)
  local t = {}
  for i, v in ipairs(list) do t[i] = v.name end
  return t
end

describe("history", function()
  local target
  before_each(function() target = H.tmpdir("history") end)
  after_each(H.cleanup)

  it("keeps nothing by default: one version directory, no ..history (the kubelet's layout)", function()
    assert.is_true(aw.write(target, { a = "1" }))
    assert.is_true(aw.write(target, { a = "2" }))
    H.assert_layout(target, { a = "2" })
    assert.is_nil(H.lstat(target .. "/..history"))
  end)

  it("returns the version published, and the current one for a no-op", function()
    local ok, v1 = aw.write(target, { a = "1" })
    assert.is_true(ok)
    assert.are.equal(H.readlink(target .. "/..data"), v1)
    local same, cur = aw.write(target, { a = "1" })
    assert.is_false(same)
    assert.are.equal(v1, cur)
    local _, v2 = aw.write(target, { a = "2" })
    assert.are_not.equal(v1, v2)
    assert.are.equal(v2, aw.version(target))
  end)

  it("keeps `keep` superseded versions, newest first, and removes older ones", function()
    local v = {}
    for i = 1, 4 do
      local ok, name = aw.write(target, { a = tostring(i), ["d/" .. i] = "x" }, { keep = 2 })
      assert.is_true(ok, name)
      v[i] = name
    end
    age(target)
    local ok, v5 = aw.write(target, { a = "5" }, { keep = 2 })
    assert.is_true(ok, v5)
    assert.are.same({ v5, v[4], v[3] }, names_of(assert(aw.versions(target))))
    table.sort(v)
    local dirs = H.versions(target)
    assert.are.same({ v[3], v[4], v5 }, dirs)
    assert.are.same({ a = "4", ["d/4"] = "x" }, H.files(target .. "/" .. v[4]))
    assert.are.equal("rw-r--r--", H.lstat(target .. "/..history").permissions)
  end)

  it("keeps versions superseded within the last second beyond keep, for readers", function()
    for i = 1, 3 do assert.is_true(aw.write(target, { a = tostring(i) }, { keep = 1 })) end
    assert.are.equal(3, #H.versions(target))
    assert(H.sh("sleep 1.1"))
    assert.is_true(aw.write(target, { a = "4" }, { keep = 1 }))
    assert.are.equal(2, #H.versions(target))
  end)

  it("counts the grace from when a version was superseded, not from when it was published", function()
    local _, v1 = aw.write(target, { a = "1" }, { keep = 1 })
    assert(H.sh("sleep 1.1"))   -- v1 is over a second old, but superseded only now
    local _, v2 = aw.write(target, { a = "2" }, { keep = 1 })
    local ok, v3 = aw.write(target, { a = "3" }, { keep = 1 })
    assert.is_true(ok, v3)
    assert.truthy(H.lstat(target .. "/" .. v1), "v1, superseded under a second ago, stays")
    assert.are.same({ v3, v2, v1 }, names_of(assert(aw.versions(target))))
  end)

  -- The state a failed write must leave as it was: the versions listed
  -- (names, times) and every kept version's files and attributes.
  local function history_state(target)
    local state = {}
    for _, v in ipairs(assert(aw.versions(target))) do
      state[#state + 1] = { v.name, v.published, v.current, H.snapshot(target .. "/" .. v.name) }
    end
    return state
  end

  -- The record's kept versions, without the current one (a failed write
  -- may leave it listed: step 1 of docs/history.md, harmless).
  local function record_lines(target)
    local cur, lines = H.readlink(target .. "/..data"), {}
    for line in H.read(target .. "/..history"):gmatch("[^\n]+") do
      if line:sub(1, #cur + 1) ~= cur .. " " then lines[#lines + 1] = line end
    end
    return lines
  end

  it("leaves ..history and every kept version as they were when a write with keep fails before the swap", function()
    local failures = {
      -- during the build: a file over RLIMIT_FSIZE (EFBIG)
      { pre = "trap '' XFSZ; ulimit -f 64;", code = "EFBIG" },
    }
    if H.has_strace() then   -- at the swap itself: ..data_tmp's symlinkat fails
      failures[2] = { pre = H.strace("-e inject=symlinkat:error=EIO:when=1"), code = "EIO" }
    end
    for _, f in ipairs(failures) do
      local t = H.tmpdir("failkeep")
      for _, data in ipairs({ "W", "X", "A" }) do assert.is_true(aw.write(t, { a = data }, { keep = 2 })) end
      age(t)   -- past the grace: a trim would remove W
      local state, lines = history_state(t), record_lines(t)
      assert.are.equal(3, #state)
      local ok, out = H.lua(([[
        local aw = require("atomicwriter")
        print(aw.write(%q, { a = "B", big = string.rep("x", 1024 * 1024) }, { keep = 2 }))
      ]]):format(t), f.pre)
      assert(ok, out)
      assert.truthy(out:find("^nil\t.*\t" .. f.code .. "\n$"), out)
      assert.are.same(state, history_state(t), f.code)
      assert.are.same(lines, record_lines(t), f.code)
    end
  end)

  it("lists the current and the kept versions with their publish times", function()
    assert.are.same({}, assert(aw.versions(target)))
    local _, v1 = aw.write(target, { a = "1" }, { keep = 1 })
    local before = lfs.symlinkattributes(target .. "/..data").modification
    local _, v2 = aw.write(target, { a = "2" }, { keep = 1 })
    local list = assert(aw.versions(target))
    assert.are.equal(2, #list)
    assert.are.same({ name = v2, current = true }, { name = list[1].name, current = list[1].current })
    assert.are.same({ name = v1, current = false }, { name = list[2].name, current = list[2].current })
    assert.is_true(list[1].published >= list[2].published)
    assert.is_true(math.abs(list[2].published - before) < 2, "v1's time is when ..data moved to it")
    assert.is_true(math.abs(list[1].published - os.time()) < 60)
  end)

  it("reads a kept version, and refuses one that is not kept with code noversion", function()
    local _, v1 = aw.write(target, { a = "1", ["d/b"] = "b1" }, { keep = 1 })
    aw.write(target, { a = "2" }, { keep = 1 })
    local files, version = aw.read(target, v1)
    assert.are.equal(v1, version)
    assert.are.equal("1", files.a.data)
    assert.are.equal("b1", files["d/b"].data)
    local none, msg, code = aw.read(target, "..2001_01_01_00_00_00.1")
    assert.is_nil(none)
    assert.are.equal("noversion", code)
    assert.truthy(msg:find("no such version", 1, true), msg)
    assert.are.equal("noversion", select(3, aw.read(target, "../etc")))
  end)

  it("refuses to read a version directory that is neither current nor kept (an orphan) with noversion", function()
    for _, keep in ipairs({ 0, 1 }) do
      local t = H.tmpdir("orphan")
      aw.write(t, { a = "1" }, { keep = keep })
      aw.write(t, { a = "2" }, { keep = keep })
      local orphan = "..2001_01_01_00_00_00.000000001"
      assert(lfs.mkdir(t .. "/" .. orphan))
      H.write_file(t .. "/" .. orphan .. "/a", "half")
      local files, msg, code = aw.read(t, orphan)
      assert.is_nil(files, "keep = " .. keep)
      assert.are.equal("noversion", code, msg)
    end
  end)

  it("removes a crashed writer's orphan version, never a kept one", function()
    local _, v1 = aw.write(target, { a = "1" }, { keep = 1 })
    local _, v2 = aw.write(target, { a = "2" }, { keep = 1 })
    local orphan = "..2001_01_01_00_00_00.000000001"
    assert(lfs.mkdir(target .. "/" .. orphan))
    H.write_file(target .. "/" .. orphan .. "/a", "half")
    H.write_file(target .. "/..history_tmp", "junk")
    assert.is_false(aw.write(target, { a = "2" }, { keep = 1 }))   -- a no-op recovers too
    assert.is_nil(H.lstat(target .. "/" .. orphan))
    assert.is_nil(H.lstat(target .. "/..history_tmp"))
    assert.are.same({ v1, v2 }, H.versions(target))
  end)

  it("treats every version as kept when ..history is damaged, and rewrites it", function()
    local _, v1 = aw.write(target, { a = "1" }, { keep = 1 })
    aw.write(target, { a = "2" }, { keep = 1 })
    H.write_file(target .. "/..history", "atomicwriter history 1\n..20")   -- cut short
    assert.is_false(aw.write(target, { a = "2" }, { keep = 1 }))
    assert.truthy(H.lstat(target .. "/" .. v1), "nothing removed on a guess")
    assert.are.equal(2, #assert(aw.versions(target)))
    local ok, v3 = aw.write(target, { a = "3" }, { keep = 1 })
    assert.is_true(ok, v3)
    assert.truthy(H.read(target .. "/..history"):find("\nend\n$"))
  end)

  it("refuses a ..history that is not the writer's with code conflict", function()
    assert(lfs.mkdir(target .. "/..history"))
    local ok, msg, code = aw.write(target, { a = "1" }, { keep = 1 })
    assert.is_nil(ok)
    assert.are.equal("conflict", code, msg)
  end)

  it("says what changed with opts.changes: added, changed, removed, sorted", function()
    local ok, _, changes = aw.write(target, { a = "1", b = "1", ["d/x"] = "1" }, { changes = true })
    assert.is_true(ok)
    assert.are.same({ added = { "a", "b", "d/x" }, changed = {}, removed = {} }, changes)
    ok, _, changes = aw.write(target, { a = "1", b = "2", ["d/y"] = "1", c = "1" }, { changes = true })
    assert.is_true(ok)
    assert.are.same({ added = { "c", "d/y" }, changed = { "b" }, removed = { "d/x" } }, changes)
    ok, _, changes = aw.write(target, { a = "1", b = "2", ["d/y"] = "1", c = "1" }, { changes = true })
    assert.is_false(ok)
    assert.are.same({ added = {}, changed = {}, removed = {} }, changes)
    assert.are.equal(2, select("#", aw.write(target, { a = "1" })), "no changes unless asked")
  end)

  it("counts a change of mode alone as changed", function()
    aw.write(target, { a = "1" })
    local _, _, changes = aw.write(target, { a = { data = "1", mode = "0600" } }, { changes = true })
    assert.are.same({ added = {}, changed = { "a" }, removed = {} }, changes)
  end)

  it("keeps history with either sync method", function()
    for _, method in ipairs({ "syncfs", "fsync" }) do
      if method == "fsync" or aw.platform.syncfs then
        local t = H.tmpdir("sync-" .. method)
        local _, v1 = aw.write(t, { a = "1" }, { keep = 1, sync = method })
        local ok, v2 = aw.write(t, { a = "2" }, { keep = 1, sync = method })
        assert.is_true(ok, v2)
        assert.are.same({ v2, v1 }, names_of(assert(aw.versions(t))), method)
      end
    end
  end)

  -- Step 1 of docs/history.md with sync = "fsync": the record is durable
  -- before the swap (syncfs covers it otherwise). strace -y names each
  -- descriptor's file.
  H.strace_it('with sync = "fsync" fsyncs the record, renames it and fsyncs the target before the swap', function()
    aw.write(target, { a = "1" }, { keep = 1 })
    local log = target .. ".trace"
    local ok, out = H.lua(([[
      local aw = require("atomicwriter")
      assert(aw.write(%q, { a = "2" }, { keep = 1, sync = "fsync" }))
    ]]):format(target), H.strace("-y -e trace=fsync,rename,renameat,renameat2", log))
    assert(ok, out)
    local steps = {}
    local tfd = "<" .. target .. ">"
    for line in H.read(log):gmatch("[^\n]+") do
      if line:find("^fsync%(%d+<.*/%.%.history_tmp>%)") then
        steps[#steps + 1] = "fsync record"
      elseif line:find("^fsync%(%d+" .. tfd:gsub("%p", "%%%0") .. "%)") then
        steps[#steps + 1] = "fsync target"
      elseif line:find('^rename.*"%.%.history_tmp".*"%.%.history"') then
        steps[#steps + 1] = "rename record"
      elseif line:find('^rename.*"%.%.data_tmp".*"%.%.data"') then
        steps[#steps + 1] = "swap"
      end
    end
    os.remove(log)
    local trace = table.concat(steps, ", ")
    assert.are.same({ "fsync record", "rename record", "fsync target", "swap" },
      { steps[1], steps[2], steps[3], steps[4] }, trace)
  end)

  it("checks keep", function()
    assert.has_error(function() aw.write(target, {}, { keep = -1 }) end)
    assert.has_error(function() aw.write(target, {}, { keep = 1.5 }) end)
    assert.has_error(function() aw.versions(target, { keep = 1 }) end)
  end)
end)

describe("rollback", function()
  local target
  before_each(function() target = H.tmpdir("rollback") end)
  after_each(H.cleanup)

  it("publishes the previous version again as a new version of hard links", function()
    local _, v1 = aw.write(target, { a = "1", ["d/b"] = "b", old = "o" }, { keep = 1 })
    local _, v2 = aw.write(target, { a = "2", new = "n" }, { keep = 1 })
    local ok, v3, changes = aw.rollback(target, nil, { changes = true })
    assert.is_true(ok, v3)
    assert.are_not.equal(v1, v3)
    assert.are_not.equal(v2, v3)
    assert.are.equal(v3, H.readlink(target .. "/..data"))
    assert.are.same({ added = { "d/b", "old" }, changed = { "a" }, removed = { "new" } }, changes)
    for _, path in ipairs({ "a", "d/b", "old" }) do
      assert.are.equal(lfs.attributes(target .. "/" .. v1 .. "/" .. path).ino,
        lfs.attributes(target .. "/" .. v3 .. "/" .. path).ino, path .. " is a link, not a copy")
    end
    -- visible names follow: new is gone, d and old are back
    assert.is_nil(H.lstat(target .. "/new"))
    assert.are.equal("b", H.read(target .. "/d/b"))
    assert.are.equal("1", H.read(target .. "/a"))
    -- the history keeps as many versions as before by default: v2 now (v1,
    -- superseded within the last second, stays a while for readers)
    local names = names_of(assert(aw.versions(target)))
    assert.are.same({ v3, v2 }, { names[1], names[2] })
  end)

  it("rolls back to a named kept version, and keeps the history it is told to", function()
    local v = {}
    for i = 1, 3 do v[i] = select(2, aw.write(target, { a = tostring(i) }, { keep = 2 })) end
    local ok, v4 = aw.rollback(target, v[1], { keep = 2 })
    assert.is_true(ok, v4)
    assert.are.equal("1", H.read(target .. "/a"))
    age(target)
    assert.is_true(aw.write(target, { a = "5" }, { keep = 2 }))
    assert.are.same({ v[3] }, { names_of(assert(aw.versions(target)))[3] })
  end)

  it("rolls back to the newest kept version by default", function()
    local v = {}
    for i = 1, 3 do v[i] = select(2, aw.write(target, { a = tostring(i) }, { keep = 2 })) end
    assert.are.same({ v[3], v[2], v[1] }, names_of(assert(aw.versions(target))))
    local ok, v4 = aw.rollback(target)
    assert.is_true(ok, v4)
    assert.are.equal("2", H.read(target .. "/a"))
    assert.are.same({ a = "2" }, H.files(target .. "/" .. v4))
  end)

  -- As if every version were published long ago: the record's times and
  -- ..data's own (the current version's), past the reader grace.
  local function age_all(t)
    age(t)
    assert(H.sh("touch -h -d @1700000000 " .. H.quote(t .. "/..data")))
  end

  it("keeps the version rolled back from and the one rolled back to, past the grace", function()
    -- keep = 1: A, B, then a rollback to A
    local _, a = aw.write(target, { x = "A" }, { keep = 1 })
    local _, b = aw.write(target, { x = "B" }, { keep = 1 })
    age_all(target)
    local ok, r = aw.rollback(target)
    assert.is_true(ok, r)
    assert.are.equal("A", H.read(target .. "/x"))
    assert.are.same({ r, b, a }, names_of(assert(aw.versions(target))))
    assert.are.equal("A", assert(aw.read(target, a)).x.data)
    age_all(target)
    local ok2, r2 = aw.rollback(target, a)
    assert.is_true(ok2, r2)
    assert.are.same({ r2, r, b, a }, names_of(assert(aw.versions(target))))
    -- the next write trims the history to its keep as usual
    age_all(target)
    assert.is_true(aw.write(target, { x = "C" }, { keep = 1 }))
    assert.are.same({ r2 }, { names_of(assert(aw.versions(target)))[2] })
    assert.are.equal(2, #H.versions(target))
    -- keep = 2, rolling back to the oldest kept version
    local t = H.tmpdir("rollback-oldest")
    local v = {}
    for i, data in ipairs({ "W", "X", "A" }) do v[i] = select(2, aw.write(t, { x = data }, { keep = 2 })) end
    age_all(t)
    local ok3, r3 = aw.rollback(t, v[1])
    assert.is_true(ok3, r3)
    assert.are.equal("W", H.read(t .. "/x"))
    assert.are.same({ r3, v[3], v[2], v[1] }, names_of(assert(aw.versions(t))))
    -- keep = 0 keeps neither
    age_all(t)
    local ok4, r4 = aw.rollback(t, v[2], { keep = 0 })
    assert.is_true(ok4, r4)
    assert.are.same({ r4 }, names_of(assert(aw.versions(t))))
    assert.are.same({ r4 }, H.versions(t))
  end)

  it("takes options without a version: aw.rollback(target, opts)", function()
    aw.write(target, { x = "A" }, { keep = 1 })
    aw.write(target, { x = "B" }, { keep = 1 })
    local ok, r, changes = aw.rollback(target, { changes = true, sync = false })
    assert.is_true(ok, r)
    assert.are.same({ added = {}, changed = { "x" }, removed = {} }, changes)
    assert.are.equal("A", H.read(target .. "/x"))
  end)

  it("is a no-op for the current version, and fails with noversion when nothing is kept", function()
    local _, v1 = aw.write(target, { a = "1" })
    local same, cur = aw.rollback(target, v1)
    assert.is_false(same)
    assert.are.equal(v1, cur)
    local none, msg, code = aw.rollback(target)
    assert.is_nil(none)
    assert.are.equal("noversion", code)
    assert.truthy(msg:find("no version is kept", 1, true), msg)
    assert.are.equal("noversion", select(3, aw.rollback(target, "..2001_01_01_00_00_00.1")))
  end)

  it("leaves no stale manifest: the next write reads the files once, and sees changes", function()
    local one, two = {}, {}
    for i = 1, 10 do one["f" .. i] = "x" .. i; two["f" .. i] = "x" .. i end
    two.f1 = "changed"
    aw.write(target, one, { keep = 1 })
    aw.write(target, two, { keep = 1 })
    assert.is_false(aw.write(target, two, { keep = 1 }))   -- the manifest describes two
    assert.are.equal("file", H.lstat(target .. "/..manifest").mode)
    assert.is_true(aw.rollback(target))
    assert.is_nil(H.lstat(target .. "/..manifest"), "no manifest of a version that is gone")
    assert.is_false(aw.write(target, one, { keep = 1 }))
    H.write_file(target .. "/..data/f3", "changed behind its back")
    assert.is_true(aw.write(target, one, { keep = 1 }), "a change behind the writer is seen")
  end)

  it("is reported once to a watcher, as a new version", function()
    aw.write(target, { a = "1" }, { keep = 1 })
    aw.write(target, { a = "2" }, { keep = 1 })
    local w = assert(aw.watch(target))
    local _, v3 = aw.rollback(target)
    assert.are.equal(v3, w:wait(5))
    assert.is_nil(w:wait(0))
    w:close()
  end)
end)

describe("the command-line tool's history", function()
  local CLI = H.CLI
  local src, target
  before_each(function() src, target = H.tmpdir("src"), H.tmpdir("clihist") end)
  after_each(H.cleanup)

  local function cli(args)
    return H.sh(H.ENV .. CLI .. " " .. args)
  end

  it("projects with --keep, lists versions, rolls back, and refuses an unknown version", function()
    H.write_file(src .. "/a", "1")
    local ok, out = cli("project --keep 2 " .. H.quote(src) .. " " .. H.quote(target))
    assert(ok, out)
    local v1 = out:match("^published (%.%.[%w_.]+)\n$")
    assert.truthy(v1, out)
    H.write_file(src .. "/a", "2")
    ok, out = cli("project --keep 2 " .. H.quote(src) .. " " .. H.quote(target))
    assert(ok, out)
    local v2 = out:match("^published (%.%.[%w_.]+)\n$")
    assert.are.equal(v2, aw.version(target))
    ok, out = cli("versions " .. H.quote(target))
    assert(ok, out)
    assert.truthy(out:match("^" .. v2:gsub("%.", "%%.") .. " %d%d%d%d%-%d%d%-%d%dT[%d:.]+Z current\n" ..
      v1:gsub("%.", "%%.") .. " %d%d%d%d%-%d%d%-%d%dT[%d:.]+Z\n$"), out)
    ok, out = cli("rollback " .. H.quote(target))
    assert(ok, out)
    assert.truthy(out:match("^published %.%.[%w_.]+\n$"), out)
    assert.are.equal("1", H.read(target .. "/a"))
    ok, out = cli("rollback " .. H.quote(target) .. " " .. v2)
    assert(ok, out)
    assert.are.equal("2", H.read(target .. "/a"))
    ok, out = cli("rollback " .. H.quote(target) .. " ..2001_01_01_00_00_00.1")
    assert.is_false(ok)
    assert.truthy(out:find("no such version", 1, true), out)
    for _, args in ipairs({ "versions --help", "rollback --help" }) do
      ok, out = cli(args)
      assert(ok, out)
      assert.truthy(out:find("usage: atomicwriter", 1, true), args)
    end
    assert.is_false((cli("project --keep -1 " .. H.quote(src) .. " " .. H.quote(target))))
  end)

  it("gives watch hooks the paths added, changed and removed", function()
    assert.is_true(aw.write(target, { a = "1", b = "1", ["d/c"] = "1" }))
    local log = target .. ".log"
    local p = io.popen(H.ENV .. CLI .. " watch --once --timeout 10 " .. H.quote(target) ..
      " -- sh -c 'printf \"%s|%s|%s\" \"$ATOMICWRITER_ADDED\" \"$ATOMICWRITER_CHANGED\" " ..
      "\"$ATOMICWRITER_REMOVED\" > " .. log .. "'; echo \"exit=$?\"")
    H.sh("sleep 0.5")
    assert.is_true(aw.write(target, { a = "2", ["d/c"] = "1", ["d/e"] = "1", f = "1" }))
    local out = p:read("*a")
    p:close()
    assert.are.equal("exit=0\n", out:match("exit=%d+\n$"))
    assert.are.equal("d/e\nf|a|b", H.read(log))
  end)
end)
