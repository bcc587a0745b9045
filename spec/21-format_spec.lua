-- The on-disk records state their format (CHANGELOG.md, "Targets written
-- by another release"): a ..history of a newer format is refused with code
-- "format" and left alone; a ..manifest of another format, only a cache,
-- is ignored (never believed) and replaced by this release's own.
local aw = require("atomicwriter")
local H = require("helpers")
local lfs = require("lfs")

-- A target with one kept version, a current one, and a directory that a
-- format-1 record does not list (a newer writer's kept version, say).
local function kept_target(target)
  local _, v1 = aw.write(target, { a = "1" }, { keep = 1 })
  local _, v2 = aw.write(target, { a = "2" }, { keep = 1 })
  local unlisted = "..2001_01_01_00_00_00.000000001"
  assert(lfs.mkdir(target .. "/" .. unlisted))
  H.write_file(target .. "/" .. unlisted .. "/a", "kept by a newer writer")
  return v1, v2, unlisted
end

-- Rewrites ..history's first line as a newer release's.
local function plant(target, header)
  local record = assert(H.read(target .. "/..history"))
  H.write_file(target .. "/..history", header .. record:gsub("^[^\n]*\n", "") .. "a-later-field 1\n")
end

describe("a ..history of a newer format", function()
  local target
  before_each(function() target = H.tmpdir("format") end)
  after_each(H.cleanup)

  it("is refused by write, rollback, versions and a kept read, with code format, and left alone", function()
    local v1, v2 = kept_target(target)
    plant(target, "atomicwriter history 2\n")
    local before = H.snapshot(target)
    local function refused(what, ok, msg, code)
      assert.is_nil(ok, what)
      assert.are.equal("format", code, what .. ": " .. tostring(msg))
      assert.truthy(msg:find(target, 1, true), msg)
      assert.truthy(msg:find("..history", 1, true), msg)
      assert.truthy(msg:find("format 2", 1, true), msg)
    end
    refused("write", aw.write(target, { a = "3" }, { keep = 1 }))
    refused("write keep 0", aw.write(target, { a = "3" }))
    refused("no-op write", aw.write(target, { a = "2" }, { keep = 1 }))
    refused("writer", assert(aw.new(target)):write({ a = "3" }))
    refused("rollback", aw.rollback(target))
    refused("rollback to", aw.rollback(target, v1))
    refused("versions", aw.versions(target))
    refused("read kept", aw.read(target, v1))
    assert.are.equal(before, H.snapshot(target), "nothing changed")
    -- What needs no record keeps working.
    assert.are.equal(v2, aw.version(target))
    assert.are.same({ a = "2" }, H.contents(assert(aw.read(target))))
    assert.are.equal("2", select(1, assert(aw.read(target, v2))).a.data)
  end)

  it("names a format over 9 too; a malformed first line is damage, as before", function()
    kept_target(target)
    plant(target, "atomicwriter history 12345678901234567890\n")
    local ok, msg, code = aw.versions(target)
    assert.is_nil(ok)
    assert.are.equal("format", code, msg)
    assert.truthy(msg:find("over 9", 1, true), msg)
    for _, header in ipairs({ "atomicwriter history 0\n", "atomicwriter history 2x\n",
      "atomicwriter history \n", "atomicwriter history 2" }) do
      plant(target, header)
      local list, why = aw.versions(target)
      assert.is_table(list, header .. ": " .. tostring(why))
    end
  end)

  it("makes the command exit 1 with the message", function()
    kept_target(target)
    plant(target, "atomicwriter history 3\n")
    local ok, out = H.sh(H.ENV .. H.CLI .. " versions " .. H.quote(target) ..
      " 2>&1; echo \"exit=$?\"")
    assert(ok, out)
    assert.truthy(out:find("format 3", 1, true), out)
    assert.truthy(out:find("exit=1\n", 1, true), out)
  end)
end)

describe("a ..manifest of another format", function()
  local target
  before_each(function() target = H.tmpdir("format") end)
  after_each(H.cleanup)

  local PAYLOAD = {}
  for i = 1, 10 do PAYLOAD["f" .. i] = ("content %02d\n"):format(i) end

  it("is never believed, and is replaced by this release's", function()
    assert.is_true(aw.write(target, PAYLOAD))
    assert(H.sh("find " .. H.quote(target .. "/..data/") .. " -exec touch -h -m -d '-1 hour' {} +"))
    assert.is_false(aw.write(target, PAYLOAD))
    local m = assert(H.read(target .. "/..manifest"))
    local magic = m:sub(1, 8)
    assert.truthy(magic:match("^AWMANIF%d$"), magic)
    H.write_file(target .. "/..manifest", "AWMANIF9" .. m:sub(9))
    -- A change behind the writer's back that keeps the file's identity
    -- (inode, size, mtime): only a manifest that was believed would miss it.
    local f = target .. "/..data/f3"
    assert(H.sh("cp -p " .. H.quote(f) .. " " .. H.quote(f .. ".keep")))
    local out = assert(io.open(f, "r+b"))   -- in place: same inode, same size
    out:write("CONTENT")
    out:close()
    assert(H.sh("touch -m -r " .. H.quote(f .. ".keep") .. " " .. H.quote(f) .. " && rm " .. H.quote(f .. ".keep")))
    assert.is_true(aw.write(target, PAYLOAD), "the change was seen")
    assert.are.same(PAYLOAD, H.contents(assert(aw.read(target))))
    assert.is_false(aw.write(target, PAYLOAD))
    assert.are.equal(magic, assert(H.read(target .. "/..manifest")):sub(1, 8), "rewritten in this format")
  end)
end)
