-- Contract, Guarantee 5 (the repair half): whatever a killed writer left
-- in the target, the next write leaves a clean target, and never removes
-- what a reader can currently see before the swap.
local aw = require("atomicwriter")
local H = require("helpers")

describe("recovery at the start of a write", function()
  local target
  local A = { a = "A1", ["d/b"] = "A2", gone = "A3" }
  local B = { a = "B1", ["d/b"] = "A2", new = "B4" }

  before_each(function()
    target = H.tmpdir("recover")
    assert.is_true(aw.write(target, A))
  end)
  after_each(H.cleanup)

  local function sh(cmd)
    local ok, out = H.sh("cd " .. H.quote(target) .. " && " .. cmd)
    assert(ok, out)
  end

  it("removes a stale ..data_tmp and the half-built version it points at", function()
    sh("mkdir -p ..2020_01_01_00_00_00.000000001/d && echo half > ..2020_01_01_00_00_00.000000001/a" ..
      " && ln -s ..2020_01_01_00_00_00.000000001 ..data_tmp")
    assert.is_true(aw.write(target, B))
    H.assert_layout(target, B)
  end)

  it("removes a stale ..data_tmp even when the payload is unchanged", function()
    sh("ln -s ..2020_01_01_00_00_00.000000001 ..data_tmp && mkdir ..2020_01_01_00_00_00.000000001")
    assert.is_false(aw.write(target, A))
    H.assert_layout(target, A)
  end)

  it("removes orphan version directories, deep ones included", function()
    sh("mkdir -p ..2020_01_01_00_00_00.000000001/x/y/z ..2021_02_03_04_05_06.123456789" ..
      " ..2019_01_01_00_00_00.kubeletRandom1 && touch ..2020_01_01_00_00_00.000000001/x/y/z/f" ..
      " && ln -s /etc ..2020_01_01_00_00_00.000000001/x/etc-link")
    assert.is_true(aw.write(target, B))
    H.assert_layout(target, B)
    assert.truthy(H.lstat("/etc/passwd"), "a link inside an orphan was not followed")
  end)

  it("creates a visible link that a crash after the swap left missing", function()
    -- a writer killed between the swap and the links: ..data is B, "new" has no link
    assert.is_true(aw.write(target, B))
    os.remove(target .. "/new")
    assert.is_true(aw.write(target, { a = "B1", ["d/b"] = "A2", new = "B4", more = "5" }))
    assert.are.equal("B4", H.read(target .. "/new"))
  end)

  it("removes links of gone names and the old version a crash left behind", function()
    -- a writer killed after the swap, before removing "gone" and the old version
    local old = H.versions(target)[1]
    sh("cp -a " .. old .. " ..2020_01_01_00_00_00.000000001")
    assert.is_true(aw.write(target, B))
    sh("ln -s ..data/gone gone")
    assert.is_false(aw.write(target, B))
    H.assert_layout(target, B)
  end)

  it("publishes over a ..data that points at a version that no longer exists", function()
    sh("rm -rf " .. H.versions(target)[1])
    assert.is_true(aw.write(target, A))
    H.assert_layout(target, A)
  end)

  it("never removes the version ..data points at before the swap", function()
    local current = H.versions(target)[1]
    local fd = io.open(target .. "/" .. current .. "/a", "rb")  -- a reader holding the old version
    sh("mkdir ..2000_01_01_00_00_00.000000001")
    -- a refused write (conflict) must leave the current version alone
    H.write_file(target .. "/new", "user file")
    local ok, _, code = aw.write(target, B)
    assert.is_nil(ok)
    assert.are.equal("conflict", code)
    assert.are.equal(current, H.readlink(target .. "/..data"))
    assert.are.equal("A1", H.read(target .. "/a"))
    assert.are.equal("A1", fd:read("*a"))
    fd:close()
  end)
end)
