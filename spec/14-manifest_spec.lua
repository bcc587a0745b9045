-- The manifest (target/..manifest): with 8 or more small files the writer
-- remembers each file's settled identity and keyed digest, and a later
-- write trusts them instead of reading the files. Guarantee 1 must hold all
-- the same: a file changed, replaced, re-moded, added or removed behind
-- the writer's back is seen, and a damaged, stale or foreign manifest is
-- never believed.
local aw = require("atomicwriter")
local H = require("helpers")

local PAYLOAD = {}
for i = 1, 12 do PAYLOAD[("d%d/f%02d"):format(i % 3, i)] = ("content of file %02d\n"):format(i) end
PAYLOAD["top"] = "top level\n"

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

-- Sets every file and directory of the current version an hour back, as
-- time would: the manifest's identities are then settled at once.
local function age(target)
  assert(H.sh("find " .. H.quote(target .. "/..data/") .. " -exec touch -h -m -d '-1 hour' {} +"))
end

-- Overwrites the start of a file in place: same inode, same size.
local function scribble(path)
  local f = assert(io.open(path, "r+b"))
  f:write("CONTENT")
  f:close()
end

-- Publishes PAYLOAD, and lets a no-op record a settled manifest.
local function settled(target)
  assert.is_not_nil(aw.write(target, PAYLOAD))
  age(target)
  assert.is_false(aw.write(target, PAYLOAD))
  assert.are.equal("file", H.lstat(target .. "/..manifest").mode)
end

-- The system calls of one write of PAYLOAD in a child, as a list of lines.
local function trace_write(target, payload_code)
  local log = target .. ".trace"
  local ok, out = H.lua(([[
    local aw = require("atomicwriter")
    local p = {}
    for i = 1, 12 do p[("d%%d/f%%02d"):format(i %% 3, i)] = ("content of file %%02d\n"):format(i) end
    p["top"] = "top level\n"
    %s
    io.open("/aw-manifest-marker-begin")
    print(aw.write(%q, p))
    io.open("/aw-manifest-marker-end")
  ]]):format(payload_code or "", target), H.strace("", log))
  assert(ok, out)
  local lines, inside = {}, false
  for line in io.lines(log) do
    if line:find("/aw-manifest-marker-begin", 1, true) then
      inside = true
    elseif line:find("/aw-manifest-marker-end", 1, true) then
      inside = false
    elseif inside then
      lines[#lines + 1] = line
    end
  end
  os.remove(log)
  return lines, out
end

local function count(lines, pattern)
  local n = 0
  for _, line in ipairs(lines) do
    if line:find(pattern) then n = n + 1 end
  end
  return n
end

describe("the manifest", function()
  local target
  before_each(function() target = H.tmpdir("manifest") end)
  after_each(H.cleanup)

  it("is kept from the second write of 8 or more small files, 0600, beside ..data", function()
    assert.is_true(aw.write(target, PAYLOAD))
    assert.is_nil(H.lstat(target .. "/..manifest"), "a first projection has nothing to remember")
    assert.is_false(aw.write(target, PAYLOAD))
    H.assert_layout(target, PAYLOAD, { "..manifest" })
    local m = H.read(target .. "/..manifest")
    assert.are.equal("AWMANIF3", m:sub(1, 8))
    assert.truthy(m:find(H.versions(target)[1], 1, true), "it names the version it describes")
  end)

  it("is not kept for fewer than 8 small files, and is removed when a payload shrinks", function()
    settled(target)
    local small = { a = "1", ["b/c"] = "2" }
    assert.is_true(aw.write(target, small))
    assert.is_nil(H.lstat(target .. "/..manifest"))
    assert.is_false(aw.write(target, small))
    assert.is_nil(H.lstat(target .. "/..manifest"))
    H.assert_layout(target, small)
  end)

  H.strace_it("lets a no-op stat each file and open none of them", function()
    settled(target)
    local lines, out = trace_write(target)
    assert.truthy(out:find("^false"), out)
    local opens = count(lines, '^openat%(%d+, "f%d%d"') + count(lines, '^openat%(%d+, "top"')
    local stats = count(lines, '^newfstatat%(%d+, "f%d%d"') + count(lines, '^statx%(%d+, "f%d%d"') +
      count(lines, '^newfstatat%(%d+, "top"') + count(lines, '^statx%(%d+, "top"')
    assert.are.equal(0, opens, table.concat(lines, "\n"))
    assert.are.equal(13, stats, table.concat(lines, "\n"))
    -- only the target itself is listed (the recovery scan, two getdents64):
    -- no directory of the version
    assert.are.equal(2, count(lines, "^getdents64"), table.concat(lines, "\n"))
  end)

  H.strace_it("lets an update link the unchanged files and write only the changed one", function()
    settled(target)
    local lines, out = trace_write(target, 'p["d1/f04"] = "changed\\n"')
    assert.truthy(out:find("^true"), out)
    assert.are.equal(12, count(lines, "^linkat%("), table.concat(lines, "\n"))
    assert.are.equal(1, count(lines, '^openat%(%d+, "f%d%d", O_WRONLY|O_CREAT'), table.concat(lines, "\n"))
    assert.are.equal(0, count(lines, '^openat%(%d+, "f%d%d", O_RDONLY'), table.concat(lines, "\n"))
    local p = copy(PAYLOAD)
    p["d1/f04"] = "changed\n"
    H.assert_layout(target, p, { "..manifest" })
  end)

  it("publishes a payload that only drops a top-level file, a nested file or a directory", function()
    -- the directories are unchanged since the manifest saw them: their
    -- entries are the old payload's, not the new one's
    for _, drop in ipairs({ { "top" }, { "d1/f04" }, { "d2/f02", "d2/f05", "d2/f08", "d2/f11" } }) do
      local t = H.tmpdir("manifest-drop")
      settled(t)
      assert.is_false(aw.write(t, PAYLOAD))   -- a no-op on a settled manifest
      local p = copy(PAYLOAD)
      for _, path in ipairs(drop) do p[path] = nil end
      assert.is_true(aw.write(t, p), drop[1])
      H.assert_layout(t, p, { "..manifest" })
      assert.is_false(aw.write(t, p))
    end
  end)

  it("sees a file rewritten in place with bytes of the same size", function()
    settled(target)
    scribble(target .. "/..data/d1/f04")
    assert.is_true(aw.write(target, PAYLOAD))
    H.assert_layout(target, PAYLOAD, { "..manifest" })
  end)

  it("sees a file changed in the same clock tick the manifest was recorded", function()
    -- the identities are recent, so they are not trusted yet. On a file
    -- system whose clock moves by ticks, a change in the same tick keeps
    -- the mtime: restoring it by hand shows the same thing. The mtimes are
    -- put a few seconds ahead, so that "recent" does not depend on how fast
    -- the no-op follows the first write (under valgrind, often > 20 ms).
    assert.is_true(aw.write(target, PAYLOAD))
    assert(H.sh("find " .. H.quote(target .. "/..data/") .. " -type f -exec touch -m -d @$(( $(date +%s) + 5 )) {} +"))
    assert.is_false(aw.write(target, PAYLOAD))
    local path = H.quote(target .. "/..data/d1/f04")
    local ok, mtime = H.sh("stat -c %.9Y " .. path)
    assert(ok, mtime)
    scribble(target .. "/..data/d1/f04")
    assert(H.sh("touch -m -d @" .. mtime:gsub("%s+$", "") .. " " .. path))
    assert.is_true(aw.write(target, PAYLOAD))
    H.assert_layout(target, PAYLOAD, { "..manifest" })
  end)

  it("sees a file replaced by another inode of the same size and mtime", function()
    settled(target)
    local path = target .. "/..data/d2/f05"
    H.write_file(target .. "/other", "CONTENT of file 05\n")
    assert(H.sh("touch -r " .. H.quote(path) .. " " .. H.quote(target .. "/other") ..
      " && chmod 644 " .. H.quote(target .. "/other") .. " && mv " .. H.quote(target .. "/other") ..
      " " .. H.quote(path)))
    assert.is_true(aw.write(target, PAYLOAD))
    H.assert_layout(target, PAYLOAD, { "..manifest" })
  end)

  it("sees a change of mode, a file added and a file removed behind its back", function()
    settled(target)
    assert(H.sh("chmod 600 " .. H.quote(target .. "/..data/d0/f03")))
    assert.is_true(aw.write(target, PAYLOAD))
    H.assert_layout(target, PAYLOAD, { "..manifest" })

    settled(target)
    H.write_file(target .. "/..data/d0/planted", "x")
    assert.is_true(aw.write(target, PAYLOAD))
    H.assert_layout(target, PAYLOAD, { "..manifest" })

    settled(target)
    assert(os.remove(target .. "/..data/d2/f05"))
    assert.is_true(aw.write(target, PAYLOAD))
    H.assert_layout(target, PAYLOAD, { "..manifest" })
  end)

  it("sees a directory replaced by a symlink to a copy, and does not follow it", function()
    settled(target)
    local v = target .. "/" .. H.versions(target)[1]
    local copy_dir = H.tmpdir("manifest-copy")
    assert(H.sh("cp -a " .. H.quote(v .. "/d1") .. " " .. H.quote(copy_dir .. "/d1") ..
      " && rm -rf " .. H.quote(v .. "/d1") .. " && ln -s " .. H.quote(copy_dir .. "/d1") .. " " ..
      H.quote(v .. "/d1")))
    local before = H.snapshot(copy_dir)
    assert.is_true(aw.write(target, PAYLOAD))
    H.assert_layout(target, PAYLOAD, { "..manifest" })
    assert.are.equal(before, H.snapshot(copy_dir))
  end)

  it("ignores a damaged manifest, one for another version, and one from another target", function()
    settled(target)
    local good = H.read(target .. "/..manifest")
    -- damaged: one byte flipped in the middle
    local mid = math.floor(#good / 2)
    H.write_file(target .. "/..manifest", good:sub(1, mid - 1) ..
      string.char((good:byte(mid) + 1) % 256) .. good:sub(mid + 1))
    scribble(target .. "/..data/d1/f04")   -- the damaged manifest must not vouch for this
    assert.is_true(aw.write(target, PAYLOAD))
    H.assert_layout(target, PAYLOAD, { "..manifest" })

    -- truncated, and empty
    for _, bad in ipairs({ good:sub(1, 40), "" }) do
      settled(target)
      H.write_file(target .. "/..manifest", bad)
      assert(os.remove(target .. "/..data/top"))
      assert.is_true(aw.write(target, PAYLOAD))
      H.assert_layout(target, PAYLOAD, { "..manifest" })
    end

    -- another target's manifest, whole and valid there, names another version
    local other = H.tmpdir("manifest-other")
    settled(other)
    settled(target)
    assert(H.sh("cp " .. H.quote(other .. "/..manifest") .. " " .. H.quote(target .. "/..manifest")))
    scribble(target .. "/..data/d2/f05")
    assert.is_true(aw.write(target, PAYLOAD))
    H.assert_layout(target, PAYLOAD, { "..manifest" })
  end)

  it("removes a ..manifest_tmp a crashed save left", function()
    settled(target)
    H.write_file(target .. "/..manifest_tmp", "half")
    assert.is_false(aw.write(target, PAYLOAD))
    assert.is_nil(H.lstat(target .. "/..manifest_tmp"))
    H.assert_layout(target, PAYLOAD, { "..manifest" })
  end)

  it("leaves a ..manifest that is a directory or a symlink alone, and works without it", function()
    local outside = H.tmpdir("manifest-outside")
    H.write_file(outside .. "/victim", "keep")
    for _, make in ipairs({ "mkdir", "ln -s " .. H.quote(outside .. "/victim") }) do
      local t = H.tmpdir("manifest-taken")
      assert(H.sh(make .. " " .. H.quote(t .. "/..manifest")))
      local kind = H.lstat(t .. "/..manifest").mode
      assert.is_true(aw.write(t, PAYLOAD))
      assert.is_false(aw.write(t, PAYLOAD))
      local p = copy(PAYLOAD)
      p["d1/f04"] = "changed\n"
      assert.is_true(aw.write(t, p))
      assert.are.equal(kind, H.lstat(t .. "/..manifest").mode)
      assert.are.equal("changed\n", H.read(t .. "/d1/f04"))
    end
    assert.are.equal("keep", H.read(outside .. "/victim"))
  end)

  it("compares big files by reading them, and keeps no digest of them", function()
    local p = copy(PAYLOAD)
    p["big"] = string.rep("b", 40000)
    assert.is_true(aw.write(target, p))
    age(target)
    assert.is_false(aw.write(target, p))
    local f = assert(io.open(target .. "/..data/big", "r+b"))
    f:seek("set", 30000)
    f:write("X")
    f:close()
    assert.is_true(aw.write(target, p))
    H.assert_layout(target, p, { "..manifest" })
  end)
end)
