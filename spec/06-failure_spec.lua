-- Contract, Guarantee 5 (the failure half): a write that fails on a real
-- system error returns nil, message, errno-name; the published version
-- stays whole and readable; the half-built version is removed; the next
-- write succeeds and leaves a clean target.
local aw = require("atomicwriter")
local H = require("helpers")

local A = { a = "A1", ["d/b"] = "A2", gone = "A3" }
local B = { a = "B1", ["d/b"] = "A2", new = "B4", big = string.rep("x", 1024 * 1024) }

-- Writes B from a child process under a shell prefix; returns its printed result.
local function child_write(target, pre, opts)
  local ok, out = H.lua(([[
    local aw = require("atomicwriter")
    local H = require("helpers")
    local unpack = table.unpack or unpack
    local B = { a = "B1", ["d/b"] = "A2", new = "B4", big = string.rep("x", 1024 * 1024) }
    local function pack(...) return { n = select("#", ...), ... } end
    local before = H.open_fds()
    local r = pack(aw.write(%q, B, %s))
    -- a failed write closes every descriptor it opened
    print(H.open_fds() == before and "fds kept" or ("fds " .. before .. " -> " .. H.open_fds()))
    print(unpack(r, 1, r.n))
  ]]):format(target, opts or "nil"), pre)
  return ok, out
end

-- The target still publishes A whole, and holds nothing half-built.
local function assert_still_A(target)
  H.assert_layout(target, A)
  assert.are.equal("A1", H.read(target .. "/a"))
end

describe("a failing write", function()
  local target
  before_each(function()
    target = H.tmpdir("fail")
    assert.is_true(aw.write(target, A))
  end)
  after_each(H.cleanup)

  it("on a file too large (RLIMIT_FSIZE): EFBIG, A intact, next write clean", function()
    local ok, out = child_write(target, "trap '' XFSZ; ulimit -f 64;")
    assert(ok, out)
    assert.truthy(out:find("^fds kept\nnil\t"), out)
    assert.truthy(out:find("\tEFBIG\n$"), out)
    assert.truthy(out:find('create file "big"', 1, true) or out:find('write file "big"', 1, true), out)
    assert_still_A(target)
    assert.is_true(aw.write(target, B))
    H.assert_layout(target, B)
  end)

  it("on a source too large to copy (RLIMIT_FSIZE): EFBIG, naming both paths, A intact", function()
    local big = target .. ".big"
    assert(H.sh("head -c 1048576 /dev/zero > " .. H.quote(big)))
    local ok, out = H.lua(([[
      local aw = require("atomicwriter")
      local H = require("helpers")
      collectgarbage()   -- a directory iterator of lfs left to the collector
      local before = H.open_fds()
      local r = { aw.write(%q, { a = "B1", big = { source = %q } }) }
      collectgarbage()
      print(H.open_fds() == before and "fds kept" or ("fds " .. before .. " -> " .. H.open_fds()))
      print(r[1], r[2], r[3])
    ]]):format(target, big), "trap '' XFSZ; ulimit -f 64;")
    os.remove(big)
    assert(ok, out)
    assert.truthy(out:find("^fds kept\nnil\t"), out)
    assert.truthy(out:find("\tEFBIG\n$"), out)
    assert.truthy(out:find('"big" from source "' .. big .. '"', 1, true), out)
    assert_still_A(target)
    assert.is_true(aw.write(target, B))
    H.assert_layout(target, B)
  end)

  if H.is_root then
    it("on a permission error: EACCES, A intact, next write clean", function()
      assert(H.sh("chown -R 65534:65534 " .. H.quote(target) .. " && chmod 555 " .. H.quote(target)))
      local ok, out = H.lua_as_nobody(([[
          local aw = require("atomicwriter")
          print(aw.write(%q, { a = "B1" }))
        ]]):format(target))
      assert(ok, out)
      assert.truthy(out:find("\tEACCES\n$"), out)
      assert.truthy(out:find("create version directory", 1, true), out)
      assert_still_A(target)
      assert(H.sh("chmod 755 " .. H.quote(target)))
      assert.is_true(aw.write(target, B))
      H.assert_layout(target, B)
    end)
  else
    it("on a permission error: EACCES, A intact, next write clean", function()
      assert(H.sh("chmod 555 " .. H.quote(target)))
      local ok, msg, code = aw.write(target, B)
      assert.is_nil(ok)
      assert.are.equal("EACCES", code, msg)
      assert_still_A(target)
      assert(H.sh("chmod 755 " .. H.quote(target)))
      assert.is_true(aw.write(target, B))
    end)
  end

  H.strace_it("on a failing rename (injected EIO): EIO, A intact, next write clean", function()
    local ok, out = child_write(target, H.strace("-f -e inject=rename,renameat,renameat2:error=EIO"))
    assert(ok, out)
    assert.truthy(out:find("\tEIO\n$"), out)
    assert.truthy(out:find('swap "..data"', 1, true), out)
    assert_still_A(target)
    assert.is_true(aw.write(target, B))
    H.assert_layout(target, B)
  end)

  H.strace_it("on a failing sync (injected EIO on syncfs, or the first fsync): EIO, A intact", function()
    local call = aw.platform.sync == "syncfs" and "syncfs" or "fsync"
    local ok, out = child_write(target, H.strace("-f -e inject=" .. call .. ":error=EIO:when=1"))
    assert(ok, out)
    assert.truthy(out:find("\tEIO\n$"), out)
    assert_still_A(target)
  end)
end)

describe("a write onto a full file system", function()
  local root, target, mounted
  before_each(function()
    root = H.tmpdir("full")
    target = root .. "/t"
    mounted = H.is_root and H.sh("mkdir " .. H.quote(target) .. " && mount -t tmpfs -o size=512k,mode=0755 aw-full " ..
      H.quote(target))
  end)
  after_each(function()
    if mounted then H.sh("umount " .. H.quote(target)) end
    H.cleanup()
  end)

  it("fails with ENOSPC, keeps A whole, and the next write that fits is clean", function()
    if not mounted then
      pending("cannot mount a small tmpfs here (needs root and mount rights)")
      return
    end
    assert.is_true(aw.write(target, A))
    local ok, msg, code = aw.write(target, B)
    assert.is_nil(ok)
    assert.are.equal("ENOSPC", code, msg)
    assert.truthy(msg:find('"big"', 1, true), msg)
    assert_still_A(target)
    local B2 = { a = "B1", ["d/b"] = "A2", new = "B4", big = string.rep("y", 100 * 1024) }
    assert.is_true(aw.write(target, B2))
    H.assert_layout(target, B2)
  end)

  -- Without root: a user namespace of one's own may mount a small tmpfs
  -- (unshare -Urm), seen only by the child that runs the writes in it.
  it("fails with ENOSPC on a tmpfs in a user namespace, closes its descriptors, next write clean", function()
    if not H.sh("unshare -Urm true") then
      pending("no user namespaces here (unshare -Urm fails)")
      return
    end
    assert(H.sh("mkdir -p " .. H.quote(target)))
    local mount = "unshare -Urm sh -c 'mount -t tmpfs -o size=512k,mode=0755 aw-full \"$0\" && " ..
      "exec \"$@\"' " .. H.quote(target)
    local ok, out = H.lua(([[
      local aw = require("atomicwriter")
      local H = require("helpers")
      local target = %q
      local A = { a = "A1", ["d/b"] = "A2", gone = "A3" }
      local B = { a = "B1", ["d/b"] = "A2", new = "B4", big = string.rep("x", 1024 * 1024) }
      local B2 = { a = "B1", ["d/b"] = "A2", new = "B4", big = string.rep("y", 100 * 1024) }
      assert(H.sh("grep -q ' ' .. target .. ' tmpfs ' /proc/self/mounts"), "the tmpfs is mounted")
      assert(aw.write(target, A) == true)
      local before = H.open_fds()
      local ok, msg, code = aw.write(target, B)
      assert(ok == nil and code == "ENOSPC", tostring(msg) .. " " .. tostring(code))
      assert(msg:find('"big"', 1, true), msg)
      assert(H.open_fds() == before, "a descriptor left open")
      H.assert_layout(target, A)
      assert(aw.write(target, B2) == true)
      H.assert_layout(target, B2)
      print("ENOSPC seen, A kept, B2 written")
    ]]):format(target), mount)
    assert(ok, out)
    assert.are.equal("ENOSPC seen, A kept, B2 written\n", out)
    assert.are.same({}, H.ls(target))   -- the tmpfs went with the namespace
  end)
end)

describe("a failure after the swap", function()
  local target
  before_each(function()
    target = H.tmpdir("late")
    assert.is_true(aw.write(target, { a = "A", gone = "G" }))
  end)
  after_each(H.cleanup)

  local CHILD = [[
    local aw = require("atomicwriter")
    print(aw.write(%q, { a = "B", new = "N" }))
  ]]

  H.strace_it("still finishes the links and the old version, and says the payload is published", function()
    -- the first fsync after the rename is the target's: with syncfs the
    -- first of all, with the fsync method the one after the two files' and
    -- the version's
    local when = aw.platform.sync == "syncfs" and 1 or 4
    local ok, out = H.lua(CHILD:format(target), H.strace("-e inject=fsync:error=EIO:when=" .. when))
    assert(ok, out)
    assert.truthy(out:find("\tEIO\ttrue\n$"), out)
    H.assert_layout(target, { a = "B", new = "N" })
    assert.is_false(aw.write(target, { a = "B", new = "N" }))
  end)

  H.strace_it("reports a name taken during the write as a conflict, not an errno", function()
    -- hold the writer at its second symlinkat (the first visible link) and
    -- meanwhile put a user's file where the link "new" goes
    local p = H.spawn(H.lua_cmd(CHILD:format(target),
      H.strace("-e inject=symlinkat:delay_enter=800000:when=2")))
    H.sh("sleep 0.4")
    H.write_file(target .. "/new", "user file")
    local ok, out = H.finish(p)
    assert(ok, out)
    assert.truthy(out:find("\tconflict\ttrue\n$"), out)
    assert.are.equal("user file", H.read(target .. "/new"))
    assert.are.equal("B", H.read(target .. "/a"))
  end)
end)

describe("a payload nested deeper than the descriptors allow", function()
  local target
  before_each(function() target = H.tmpdir("deep") end)
  after_each(H.cleanup)

  it("fails with EMFILE and leaves the target clean for the next write", function()
    local ok, out = H.lua(([[
      local aw = require("atomicwriter")
      assert(aw.write(%q, { small = "1" }))
      print(aw.write(%q, { [("d/"):rep(200) .. "f"] = "deep" }))
      print(aw.write(%q, { small = "2" }))
    ]]):format(target, target, target), "ulimit -n 64;")
    assert(ok, out)
    assert.truthy(out:find("^nil\t[^\n]*\tEMFILE\ntrue\t%.%.[%d_.]+\n$"), out)
    H.assert_layout(target, { small = "2" })
  end)
end)
