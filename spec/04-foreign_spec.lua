-- Contract, Guarantee 6 and the end of Guarantee 1: the writer never
-- follows, writes through or deletes an entry it did not create.
local aw = require("atomicwriter")
local H = require("helpers")

describe("foreign entries in the target", function()
  local root, target, outside, outside_snap

  before_each(function()
    root = H.tmpdir("foreign")
    target = root .. "/target"
    outside = root .. "/elsewhere"
    assert(H.sh("mkdir " .. H.quote(target) .. " " .. H.quote(outside)))
    H.write_file(outside .. "/secret", "do not touch")
    assert(H.sh("mkdir " .. H.quote(outside .. "/..2020_01_01_00_00_00.000000001")))
    outside_snap = H.snapshot(outside)
  end)
  after_each(H.cleanup)

  local function conflict(payload, what)
    local snap = H.snapshot(target)
    local ok, msg, code = aw.write(target, payload)
    assert.is_nil(ok)
    assert.are.equal("conflict", code)
    assert.truthy(msg:find(target, 1, true), msg)
    assert.truthy(msg:find(what, 1, true), "names " .. what .. ": " .. msg)
    assert.are.equal(snap, H.snapshot(target), "target untouched")
    assert.are.equal(outside_snap, H.snapshot(outside), "nothing outside touched")
  end

  it("refuses a planted ..data symlink pointing outside", function()
    assert(H.sh("ln -s ../elsewhere " .. H.quote(target .. "/..data")))
    conflict({ secret = "overwritten?" }, "..data")
  end)

  it("refuses a planted ..data pointing at a version-like name that is a symlink", function()
    assert(H.sh("ln -s ../elsewhere/..2020_01_01_00_00_00.000000001 " ..
      H.quote(target .. "/..2020_01_01_00_00_00.000000001")))
    assert(H.sh("ln -s ..2020_01_01_00_00_00.000000001 " .. H.quote(target .. "/..data")))
    conflict({ a = "1" }, "..data")
  end)

  it("refuses a ..data that is a directory or a file", function()
    assert(H.sh("mkdir " .. H.quote(target .. "/..data")))
    conflict({ a = "1" }, "..data")
    assert(H.sh("rmdir " .. H.quote(target .. "/..data")))
    H.write_file(target .. "/..data", "x")
    conflict({ a = "1" }, "..data")
  end)

  it("refuses a ..data_tmp that is not a symlink", function()
    assert(H.sh("mkdir " .. H.quote(target .. "/..data_tmp")))
    conflict({ a = "1" }, "..data_tmp")
  end)

  it("refuses a visible name held by a user's file", function()
    assert.is_true(aw.write(target, { other = "1" }))
    H.write_file(target .. "/name", "user data")
    conflict({ other = "1", name = "ours" }, '"name"')
    assert.are.equal("user data", H.read(target .. "/name"))
  end)

  it("refuses a visible name held by a user's directory", function()
    assert(H.sh("mkdir " .. H.quote(target .. "/dir")))
    H.write_file(target .. "/dir/inside", "user data")
    conflict({ ["dir/inside"] = "ours" }, '"dir"')
  end)

  it("refuses a visible name held by a foreign symlink and never writes through it", function()
    assert(H.sh("ln -s ../elsewhere " .. H.quote(target .. "/link")))
    conflict({ ["link/secret"] = "overwritten?" }, '"link"')
    assert(H.sh("ln -s ..data/other " .. H.quote(target .. "/name")))
    conflict({ name = "x" }, '"name"')
  end)

  it("leaves alone, across updates and deletes, entries it never created", function()
    H.write_file(target .. "/user-file", "mine")
    assert(H.sh("mkdir " .. H.quote(target .. "/user-dir")))
    assert(H.sh("ln -s ../elsewhere/secret " .. H.quote(target .. "/user-link")))
    assert(H.sh("ln -s ../elsewhere " .. H.quote(target .. "/..2021_01_01_00_00_00.000000001")))
    H.write_file(target .. "/..user-dotdot", "mine too")
    local others = { "user-file", "user-dir", "user-link", "..2021_01_01_00_00_00.000000001", "..user-dotdot" }
    assert.is_true(aw.write(target, { a = "1", ["b/c"] = "2" }))
    H.assert_layout(target, { a = "1", ["b/c"] = "2" }, others)
    assert.is_true(aw.write(target, { d = "3" }))
    H.assert_layout(target, { d = "3" }, others)
    assert.is_true(aw.write(target, {}))
    H.assert_layout(target, {}, others)
    assert.are.equal("mine", H.read(target .. "/user-file"))
    assert.are.equal(outside_snap, H.snapshot(outside))
  end)

  it("does not follow a symlink planted inside the current version", function()
    assert.is_true(aw.write(target, { ["d/f"] = "1", g = "2" }))
    local v = H.versions(target)[1]
    assert(H.sh("ln -s ../../elsewhere " .. H.quote(target .. "/" .. v .. "/d/sneaky")))
    assert(H.sh("rm " .. H.quote(target .. "/" .. v .. "/g") .. " && ln -s ../../elsewhere/secret " ..
      H.quote(target .. "/" .. v .. "/g")))
    assert.is_true(aw.write(target, { ["d/f"] = "1", g = "2" }))
    H.assert_layout(target, { ["d/f"] = "1", g = "2" })
    assert.are.equal(outside_snap, H.snapshot(outside))
  end)

  -- The superseded version is removed by the names the writer knows (its
  -- manifest's, or the payload's), without a listing: a directory of it
  -- swapped for a symlink to a directory outside holding the same names
  -- must not lead the removal there. With few files the payload's names
  -- are used, with eight or more the manifest's.
  for _, n in ipairs({ 1, 12 }) do
    it(("removes an old version whose directory became a symlink without following it (%d files)"):format(n), function()
      local A, B = { ["d/f"] = "A" }, { ["d/f"] = "B" }
      for i = 2, n do A["d/f" .. i], B["d/f" .. i] = "small " .. i, "small " .. i end
      assert.is_true(aw.write(target, A))
      local v = H.versions(target)[1]
      assert(H.sh("mkdir -p " .. H.quote(outside .. "/d")))
      for name in pairs(A) do H.write_file(outside .. "/" .. name, "outside") end
      local before = H.snapshot(outside)
      assert(H.sh("cd " .. H.quote(target .. "/" .. v) .. " && rm -r d && ln -s ../../elsewhere/d d"))
      assert.is_true(aw.write(target, B))
      H.assert_layout(target, B)
      assert.are.equal(before, H.snapshot(outside))
    end)

    it(("removes an old version someone added entries to (%d files)"):format(n), function()
      local A, B = { ["d/f"] = "A" }, { ["d/f"] = "B" }
      for i = 2, n do A["d/f" .. i], B["d/f" .. i] = "small " .. i, "small " .. i end
      assert.is_true(aw.write(target, A))
      assert.is_false(aw.write(target, A))   -- the manifest, when kept, is settled now
      local v = H.versions(target)[1]
      assert(H.sh("cd " .. H.quote(target .. "/" .. v) ..
        " && mkdir -p d/new/deeper e && echo x > d/new/deeper/x && echo y > e/y && echo z > z"))
      assert.is_true(aw.write(target, B))
      H.assert_layout(target, B)
      assert.is_nil(H.lstat(target .. "/" .. v))
    end)
  end

  -- The comparison must not follow a link either: a file of the current
  -- version swapped for a symlink to a file outside with the very same
  -- bytes and mode reads the same through the link, yet the version no
  -- longer holds the payload. With few files every file is read; with
  -- eight or more the manifest is kept and consulted first.
  for _, n in ipairs({ 1, 12 }) do
    it(("republishes a file of the current version replaced by a symlink to the same bytes and mode (%d files)"):format(n), function()
      local payload = { g = { data = "same bytes", mode = "0640" } }
      for i = 2, n do payload["f" .. i] = "small " .. i end
      assert.is_true(aw.write(target, payload))
      assert.is_false(aw.write(target, payload))   -- the manifest, when kept, is settled now
      H.write_file(outside .. "/copy", "same bytes")
      assert(H.sh("chmod 640 " .. H.quote(outside .. "/copy")))
      local before = H.snapshot(outside)
      local v = H.versions(target)[1]
      assert(H.sh("cd " .. H.quote(target .. "/" .. v) .. " && rm g && ln -s ../../elsewhere/copy g"))
      assert.are.equal("same bytes", H.read(target .. "/g"))   -- reads the same through the link
      assert.is_true(aw.write(target, payload))
      assert.are.equal("file", H.lstat(target .. "/..data/g").mode)
      assert.are.equal(tonumber("640", 8), H.mode(target .. "/..data/g"))
      H.assert_layout(target, payload)
      assert.are.equal(before, H.snapshot(outside))
      assert.is_false(aw.write(target, payload))
    end)
  end
end)
