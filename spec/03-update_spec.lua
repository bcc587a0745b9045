-- Contract, Guarantees 1, 2 and 4 across updates: each write leaves
-- exactly its payload; an identical payload publishes nothing.
local aw = require("atomicwriter")
local H = require("helpers")

describe("an update", function()
  local target
  before_each(function() target = H.tmpdir("update") end)
  after_each(H.cleanup)

  local function publish(payload, expect)
    assert.are.equal(expect == nil and true or expect, aw.write(target, payload))
    H.assert_layout(target, payload)
    return H.versions(target)[1]
  end

  it("adds files and top-level names", function()
    publish({ a = "1" })
    publish({ a = "1", b = "2", ["c/d"] = "3" })
    assert.are.equal("3", H.read(target .. "/c/d"))
  end)

  it("deletes files and removes the names that are gone", function()
    publish({ a = "1", b = "2", ["c/d"] = "3", ["c/e"] = "4" })
    publish({ a = "1", ["c/e"] = "4" })
    assert.is_nil(H.lstat(target .. "/b"))
  end)

  it("deletes everything: an empty payload leaves ..data and no names", function()
    publish({ a = "1", ["b/c"] = "2" })
    publish({})
    assert.are.same({}, H.ls(target .. "/..data"))
  end)

  it("adds and deletes in one write", function()
    publish({ old = "1", ["dir/old"] = "2" })
    publish({ new = "3", ["dir/new"] = "4" })
  end)

  it("changes content in place of one nested file", function()
    publish({ ["x/y/z"] = "1", ["x/w"] = "2" })
    publish({ ["x/y/z"] = "changed", ["x/w"] = "2" })
    assert.are.equal("changed", H.read(target .. "/x/y/z"))
  end)

  it("turns a file into a directory and back", function()
    publish({ a = "file" })
    publish({ ["a/b"] = "in dir" })
    publish({ a = "file again" })
  end)

  it("treats a change of mode alone as a change", function()
    local v1 = publish({ a = { data = "x", mode = "0644" } })
    local v2 = publish({ a = { data = "x", mode = "0600" } })
    assert.are_not.equal(v1, v2)
    assert.are.equal(tonumber("600", 8), H.mode(target .. "/a"))
  end)

  H.root_it("treats a change of owner alone as a change", function()
    local v1 = publish({ a = { data = "x", uid = 1000 } })
    local v2 = publish({ a = { data = "x", uid = 1001 } })
    assert.are_not.equal(v1, v2)
    assert.are.equal(1001, H.lstat(target .. "/..data/a").uid)
    publish({ a = { data = "x", uid = 1001, gid = 7 } })
    assert.are.equal(7, H.lstat(target .. "/..data/a").gid)
  end)

  -- The same without root: a file cannot be given away, but the writer's
  -- own uid and groups can be asked for. The same owner is no change;
  -- another is one, so the write tries to publish (and fchown refuses
  -- with EPERM); another of the user's own groups is published.
  it("treats a change of owner alone as a change (as any user)", function()
    local _, ids = H.sh("id -u; id -g; id -G")
    local uid, gid, groups = ids:match("^(%d+)\n(%d+)\n([^\n]*)")
    uid, gid = tonumber(uid), tonumber(gid)
    local v1 = publish({ a = { data = "x" } })
    assert.are.equal(v1, publish({ a = { data = "x", uid = uid, gid = gid } }, false))
    for _, field in ipairs({ "uid", "gid" }) do
      local other = (field == "uid" and uid or gid) + 1
      local ok, msg, code = aw.write(target, { a = { data = "x", [field] = other } })
      if H.is_root then
        assert.is_true(ok, msg)
        assert.are.equal(other, H.lstat(target .. "/..data/a")[field])
        v1 = publish({ a = { data = "x", uid = uid, gid = gid } })   -- back to the writer's own
      elseif not (" " .. groups .. " "):find(" " .. other .. " ", 1, true) then
        assert.is_nil(ok)
        assert.are.equal("EPERM", code, msg)
        assert.truthy(msg:find('set owner of "a"', 1, true), msg)
        assert.are.equal(v1, H.versions(target)[1])   -- nothing published
      end
    end
    for other in groups:gmatch("%d+") do
      if tonumber(other) ~= gid then   -- a second group of the user's
        assert.are_not.equal(v1, publish({ a = { data = "x", gid = tonumber(other) } }))
        assert.are.equal(tonumber(other), H.lstat(target .. "/..data/a").gid)
        break
      end
    end
  end)

  it("returns false for an identical payload and publishes nothing", function()
    local payload = { a = "1", ["b/c"] = { data = "2", mode = "0600" }, e = "" }
    local v1 = publish(payload)
    local link_before = H.lstat(target .. "/..data")
    local snap = H.snapshot(target)
    assert.is_false(aw.write(target, payload))
    assert.are.equal(v1, H.versions(target)[1])
    assert.are.equal(link_before.ino, H.lstat(target .. "/..data").ino)
    assert.are.equal(snap, H.snapshot(target))
  end)

  it("compares with string and table specs alike", function()
    publish({ a = "1" })
    assert.is_false(aw.write(target, { a = { data = "1", mode = 420 } }))
    assert.is_false(aw.write(target, { ["./a"] = { data = "1", mode = "0644" } }))
  end)

  it("sees a file changed behind its back and publishes the payload again", function()
    local payload = { a = "same length", ["d/b"] = "2" }
    publish(payload)
    H.write_file(target .. "/..data/a", "SAME LENGTH")
    publish(payload)
    assert.are.equal("same length", H.read(target .. "/a"))
  end)

  it("sees a mode changed behind its back", function()
    publish({ a = "1" })
    assert(H.sh("chmod 600 " .. H.quote(target .. "/..data/a")))
    publish({ a = "1" })
    assert.are.equal(tonumber("644", 8), H.mode(target .. "/a"))
  end)

  it("sees an extra file added to the version behind its back", function()
    publish({ a = "1", ["d/b"] = "2" })
    H.write_file(target .. "/..data/d/extra", "x")
    publish({ a = "1", ["d/b"] = "2" })
  end)

  it("links unchanged files into the new version instead of rewriting them", function()
    publish({ same = "unchanged", changed = "v1" })
    local ino = H.lstat(target .. "/..data/same").ino
    publish({ same = "unchanged", changed = "v2" })
    assert.are.equal(ino, H.lstat(target .. "/..data/same").ino)
    assert.are.equal(1, H.lstat(target .. "/..data/same").nlink)
  end)

  it("repairs a missing visible link on an identical payload and returns false", function()
    local payload = { a = "1", b = "2" }
    publish(payload)
    os.remove(target .. "/b")
    assert.is_false(aw.write(target, payload))
    H.assert_layout(target, payload)
  end)

  -- One deep path, 2047 directories and 4095 bytes: the comparison once
  -- walked from the version down to each directory it listed, 2.1 million
  -- openat calls (seconds) for a no-op. Each directory is now opened from
  -- its parent, once per pass: a linear bound, with room for the
  -- interpreter's own calls, fails by orders of magnitude on a square.
  H.strace_it("opens each directory of a deep path a bounded number of times", function()
    local depth = 2047
    local path = ("a/"):rep(depth) .. "f"
    assert.are.equal(4095, #path)
    local function openats(content)
      local log = target .. ".count"
      local ok, out = H.lua(([[
        local aw = require("atomicwriter")
        print(aw.write(%q, { [%q] = %q }))
      ]]):format(target, path, content), H.strace("-c -e trace=openat", log))
      assert(ok, out)
      local summary = H.read(log)
      os.remove(log)
      local calls = summary:match("%s(%d+)%s+%d*%s*openat\n")
      assert.is_not_nil(calls, summary)
      return tonumber(calls), out
    end
    local made, why, code = aw.write(target, { [path] = "v1" })
    if (code == "ENAMETOOLONG" or code == "EBADMSG") and os.getenv("AW_FS") then   -- make check-fs
      -- a FUSE file system that hands its server whole paths refuses one
      -- past PATH_MAX (bindfs), or past what a message holds (sshfs: SFTP)
      return pending(os.getenv("AW_FS") .. " refuses a 4 KiB path: " .. why:sub(-40))
    end
    assert.is_true(made, why)
    local first = H.versions(target)[1]
    local n, out = openats("v1")
    assert.truthy(out:find("^false"), out)
    assert.is_true(n < 3 * depth, ("a no-op: %d openat calls for %d levels"):format(n, depth))
    n, out = openats("v2")
    assert.truthy(out:find("^true"), out)
    assert.is_true(n < 6 * depth, ("an update: %d openat calls for %d levels"):format(n, depth))
    assert.are_not.equal(first, H.versions(target)[1])
    assert.are.equal("v2", aw.read(target)[path].data)
  end)

  it("keeps working across many updates", function()
    for i = 1, 50 do
      local payload = { n = tostring(i), ["k/" .. (i % 3)] = "x" }
      publish(payload)
    end
  end)
end)
