-- Files from sources (issue 17): a file spec { source = path } gets the
-- bytes of that file, copied inside the kernel; the source's identity is
-- recorded in the manifest, so that an unchanged source is neither read
-- nor copied again; checksum = true compares bytes; a source changed
-- during the write fails it with "changed", and a bad source fails it
-- naming both paths, with nothing published.
local aw = require("atomicwriter")
local H = require("helpers")
local lfs = require("lfs")

-- A source tree: a, d/b (0600), d/e/c (0755), empty.
local function make_src(dir)
  assert(H.sh("mkdir -p " .. H.quote(dir .. "/d/e")))
  H.write_file(dir .. "/a", "alpha\n")
  H.write_file(dir .. "/d/b", string.rep("b", 100000))
  H.write_file(dir .. "/d/e/c", "#!/bin/sh\n")
  H.write_file(dir .. "/empty", "")
  assert(H.sh("chmod 600 " .. H.quote(dir .. "/d/b") .. " && chmod 755 " .. H.quote(dir .. "/d/e/c")))
end

-- Sources' mtimes in the past: settled, so that the manifest records them.
local function settle(dir)
  assert(H.sh("find " .. H.quote(dir) .. " -type f -exec touch -m -d @1700000000.25 {} +"))
end

-- A fresh root named for `name`: root/src holds make_src's tree, root/t
-- an empty target. Returns root, src, target.
local function fresh_tree(name)
  local root = H.tmpdir(name)
  local src, target = root .. "/src", root .. "/t"
  make_src(src)
  assert(H.sh("mkdir " .. H.quote(target)))
  return root, src, target
end

local function published(target)
  return H.files(target .. "/..data/")
end

describe("a file from a source", function()
  local src, target
  before_each(function()
    local _
    _, src, target = fresh_tree("src")
  end)
  after_each(H.cleanup)

  it("gets the source's bytes, mode (unless given) and mtime", function()
    settle(src)
    local ok, version = aw.write(target, {
      a = { source = src .. "/a" },
      ["d/b"] = { source = src .. "/d/b" },
      ["x/c"] = { source = src .. "/d/e/c", mode = "0640" },
      empty = { source = src .. "/empty" },
      inline = "data too",
    })
    assert.is_true(ok, version)
    H.assert_layout(target, { a = "alpha\n", ["d/b"] = string.rep("b", 100000),
      ["x/c"] = "#!/bin/sh\n", empty = "", inline = "data too" })
    assert.are.equal(tonumber("644", 8), H.mode(target .. "/a"))
    assert.are.equal(tonumber("600", 8), H.mode(target .. "/d/b"))
    assert.are.equal(tonumber("640", 8), H.mode(target .. "/x/c"))
    assert.are.equal(1700000000, lfs.attributes(target .. "/d/b", "modification"))
    -- a different inode: a copy, never a link to the source
    assert.are_not.equal(lfs.attributes(src .. "/a", "ino"), lfs.attributes(target .. "/a", "ino"))
  end)

  it("comes from read_tree(dir, { sources = true }), which reads no bytes", function()
    local files, skipped = aw.read_tree(src .. "/", { sources = true })
    assert.are.equal(0, skipped)
    assert.are.same({ source = src .. "/d/b", mode = tonumber("600", 8) },
      { source = files["d/b"].source, mode = files["d/b"].mode })
    assert.is_nil(files["d/b"].data)
    assert.is_true((aw.write(target, files)))
    assert.are.same(H.files(src), published(target))
  end)

  it("comes from read_tree(dir, { sources = true, modes = false }) without a look at any file", function()
    local files, skipped = aw.read_tree(src, { sources = true, modes = false })
    assert.are.equal(0, skipped)
    assert.are.same({ source = src .. "/d/b" }, files["d/b"])
    assert.has_error(function() aw.read_tree(src, { sources = true, modes = 0 }) end)
    assert.is_true((aw.write(target, files)))
    assert.are.same(H.files(src), published(target))   -- modes: the sources', at the write
    assert.are.equal(tonumber("600", 8), H.mode(target .. "/d/b"))
    assert.are.equal(tonumber("755", 8), H.mode(target .. "/d/e/c"))
    -- owners need the look: they bring the mode back
    local owned = aw.read_tree(src, { sources = true, modes = false, owners = true })
    assert.are.same(tonumber("600", 8), owned["d/b"].mode)
    if not H.has_strace() then
      return pending("strace is not installed: the listing's calls are not counted")
    end
    local log = target .. ".trace"
    local ok, out = H.lua(([[
      local aw = require("atomicwriter")
      local n = 0
      for _ in pairs(assert(aw.read_tree(%q, { sources = true, modes = false }))) do n = n + 1 end
      print(n)
    ]]):format(src), H.strace("-e trace=%stat,%file", log))
    assert(ok, out)
    assert.are.equal("4", out:match("^%d+"))
    local trace = H.read(log)
    for _, name in ipairs({ "a", "b", "c", "empty" }) do
      assert.is_nil(trace:find('"' .. name .. '"', 1, true), trace)
    end
  end)

  it("is not read again while its source is unchanged: a no-op costs a stat per file", function()
    settle(src)
    local files = aw.read_tree(src, { sources = true })
    assert.is_true((aw.write(target, files)))
    assert.is_false((aw.write(target, files)))   -- settles the directories too
    if not H.has_strace() then
      return pending("strace is not installed: the no-op's reads are not counted")
    end
    local log = target .. ".trace"
    local ok, out = H.lua(([[
      local aw = require("atomicwriter")
      local files = assert(aw.read_tree(%q, { sources = true }))
      print(aw.write(%q, files))
    ]]):format(src, target), H.strace("-e trace=openat,open,read,copy_file_range,ioctl", log))
    assert(ok, out)
    assert.truthy(out:find("^false\t"), out)
    local trace = H.read(log)
    assert.is_nil(trace:find('open[a-z]*%([^\n]*' .. src:gsub("%p", "%%%0") .. '/[^\n]*O_RDONLY[^\n]*= %d'), trace)
    assert.is_nil(trace:find("copy_file_range"), trace)
  end)

  it("is copied again when its source changed; the unchanged files are linked", function()
    settle(src)
    local files = aw.read_tree(src, { sources = true })
    assert.is_true((aw.write(target, files)))
    local ino_b = lfs.attributes(target .. "/d/b", "ino")
    H.write_file(src .. "/a", "alpha, changed\n")
    local ok, version, changes = aw.write(target, files, { changes = true })
    assert.is_true(ok, version)
    assert.are.same({ added = {}, changed = { "a" }, removed = {} }, changes)
    assert.are.equal("alpha, changed\n", H.read(target .. "/a"))
    assert.are.equal(ino_b, lfs.attributes(target .. "/d/b", "ino"), "d/b hard-linked")
    -- touched, same bytes: compared, not published again; the new
    -- identity is learned and the next no-op reads nothing
    assert(H.sh("touch -m -d @1700000100 " .. H.quote(src .. "/d/b")))
    assert.is_false((aw.write(target, files)))
  end)

  it("notices a published file changed behind the writer's back", function()
    settle(src)
    local files = aw.read_tree(src, { sources = true })
    assert.is_true((aw.write(target, files)))
    assert.is_false((aw.write(target, files)))
    local f = assert(io.open(target .. "/a", "r+b"))
    f:write("ALPHA")
    f:close()
    assert.is_true((aw.write(target, files)))
    assert.are.equal("alpha\n", H.read(target .. "/a"))
  end)

  it("with checksum = true compares bytes: a same-size, same-mtime rewrite is caught", function()
    settle(src)
    local files = aw.read_tree(src, { sources = true })
    assert.is_true((aw.write(target, files)))
    -- the quick check's blind spot: same inode, same size, mtime put back
    local f = assert(io.open(src .. "/a", "r+b"))
    f:write("ALPHA\n")
    f:close()
    settle(src)
    assert.is_false((aw.write(target, files)), "the quick check misses it (documented)")
    assert.are.equal("alpha\n", H.read(target .. "/a"))
    local ok, version, changes = aw.write(target, files, { checksum = true, changes = true })
    assert.is_true(ok, version)
    assert.are.same({ "a" }, changes.changed)
    assert.are.equal("ALPHA\n", H.read(target .. "/a"))
    assert.is_false((aw.write(target, files, { checksum = true })))
  end)

  it("checksum = true also compares data files' bytes, whatever the manifest says", function()
    local payload = {}
    for i = 1, 10 do payload["f" .. i] = "data " .. i end
    assert.is_true((aw.write(target, payload)))
    assert.is_false((aw.write(target, payload)))
    assert.is_false((aw.write(target, payload, { checksum = true })))
    payload.f3 = "other"
    assert.is_true((aw.write(target, payload, { checksum = true })))
    H.assert_layout(target, payload)
  end)

  it("reports progress: files and bytes placed, and seconds", function()
    local calls = {}
    local files = aw.read_tree(src, { sources = true })
    assert.is_true((aw.write(target, files, { progress = function(n, bytes, s)
      calls[#calls + 1] = { n, bytes, s }
    end })))
    assert.is_true(#calls >= 1)
    assert.are.equal(1, calls[1][1])
    assert.is_true(calls[#calls][2] <= 6 + 100000 + 10)
    assert.is_true(calls[1][3] >= 0)
    -- an error in the progress function stops the calls, not the write
    H.write_file(src .. "/a", "again\n")
    assert.is_true((aw.write(target, files, { progress = function() error("boom") end })))
    assert.are.equal("again\n", H.read(target .. "/a"))
  end)

  -- The progress function runs inside the write, after the first file is
  -- placed: a payload of strings the write reads in place must not lose
  -- them to the collector when it empties the payload there.
  for _, via in ipairs({ "aw.write", "a writer's write" }) do
    it("keeps the payload's strings alive when a progress function empties it (" .. via .. ")",
      function()
        local payload, want, junk = {}, {}, nil
        for i = 1, 8 do
          payload["f" .. i] = string.rep(string.char(64 + i), 100000)
          want["f" .. i] = string.rep(string.char(64 + i), 100000)   -- another string
        end
        local opts = { sync = false, progress = function()
          for k in pairs(payload) do payload[k] = nil end
          collectgarbage()
          collectgarbage()
          junk = {}
          for i = 1, 64 do junk[i] = string.rep("Z", 100000 + i) end
        end }
        local ok, msg
        if via == "aw.write" then
          ok, msg = aw.write(target, payload, opts)
        else
          ok, msg = aw.new(target, opts):write(payload)
        end
        assert.is_true(ok, msg)
        assert.is_table(junk)
        H.assert_layout(target, want)
      end)
  end
end)

describe("a bad source", function()
  local root, src, target
  before_each(function()
    root, src, target = fresh_tree("badsrc")
    assert.is_true((aw.write(target, { a = "published" })))
  end)
  after_each(H.cleanup)

  local function refused(spec, code, why, core)
    local before = H.snapshot(target)
    local ok, msg, got = aw.write(target, { a = "new", ["x/y"] = spec })
    assert.is_nil(ok)
    assert.are.equal(code, got, msg)
    assert.truthy(msg:find('"x/y"', 1, true), msg)
    if core then   -- the core's messages name the source too
      assert.truthy(msg:find(spec.source, 1, true), msg)
    end
    assert.truthy(msg:find(why, 1, true), msg)
    assert.are.equal(before, H.snapshot(target), "nothing published")
  end

  it("missing: ENOENT, naming both paths", function()
    refused({ source = root .. "/nothing" }, "ENOENT", "No such file", true)
  end)

  it("a directory, a FIFO, a device: invalid", function()
    refused({ source = src .. "/d" }, "invalid", "is a directory", true)
    assert(H.sh("mkfifo " .. H.quote(root .. "/fifo")))
    refused({ source = root .. "/fifo" }, "invalid", "not a regular file", true)
    refused({ source = "/dev/null" }, "invalid", "not a regular file", true)
  end)

  it("given with data, empty, or not a string: invalid", function()
    refused({ source = src .. "/a", data = "x" }, "invalid", "either 'data' or 'source'")
    refused({ source = "" }, "invalid", "field 'source'")
    refused({ source = 5 }, "invalid", "field 'source'")
    refused({ source = "a\0b" }, "invalid", "field 'source'")
  end)

  H.root_it("unreadable by the writer: EACCES, naming both paths", function()
    assert(H.sh("chmod 600 " .. H.quote(src .. "/a") .. " && chmod 711 " .. H.quote(root) ..
      " " .. H.quote(src) .. " && chown -R 65534:65534 " .. H.quote(target)))
    assert(H.sh("chown 0:0 " .. H.quote(src .. "/a")))
    local before = H.snapshot(target)
    local ok, out = H.lua_as_nobody(([[
      local aw = require("atomicwriter")
      print(aw.write(%q, { a = "new", ["x/y"] = { source = %q } }))
    ]]):format(target, src .. "/a"))
    assert(ok, out)
    assert.truthy(out:find("^nil\t"), out)
    assert.truthy(out:find("\tEACCES\n$"), out)
    assert.truthy(out:find('"x/y" from source "' .. src .. '/a"', 1, true), out)
    assert.are.equal(before, H.snapshot(target), "nothing published")
  end)
end)

describe("a source changed during the write", function()
  local root, target
  before_each(function()
    root = H.tmpdir("changing")
    target = root .. "/t"
    assert(H.sh("mkdir " .. H.quote(target)))
    assert.is_true((aw.write(target, { a = "published" })))
  end)
  after_each(H.cleanup)

  -- The progress function runs inside the write: after the first file is
  -- placed, and every 16 MiB of a copy. It changes a source there, at a
  -- point fixed by the write's own order (paths sorted), not by timing.
  local function changed_by(payload, change)
    local before = H.snapshot(target)
    local ok, msg, code = aw.write(target, payload, { progress = change })
    assert.is_nil(ok, msg)
    assert.are.equal("changed", code, msg)
    assert.are.equal(before, H.snapshot(target), "nothing published")
    assert.is_true((aw.write(target, { a = "next" })), "the next write is clean")
    H.assert_layout(target, { a = "next" })
    return msg
  end

  it("while it is copied (appended to mid-copy): changed, naming both paths", function()
    local big = root .. "/big"
    assert(H.sh("truncate -s 40M " .. H.quote(big)))
    local done = false
    local msg = changed_by({ big = { source = big } }, function()
      if not done then
        done = true
        local f = assert(io.open(big, "ab"))
        f:write("more")
        f:close()
      end
    end)
    assert.truthy(msg:find('copy "big" from source "' .. big .. '"', 1, true), msg)
    assert.truthy(msg:find("the source changed during the write", 1, true), msg)
  end)

  it("after it was looked at, before its copy: changed", function()
    H.write_file(root .. "/s1", "one")
    H.write_file(root .. "/s2", "two")
    local msg = changed_by({ a1 = { source = root .. "/s1" }, b2 = { source = root .. "/s2" } },
      function() H.write_file(root .. "/s2", "TWO, longer") end)
    assert.truthy(msg:find('"b2" from source "' .. root .. '/s2"', 1, true), msg)
  end)

  it("replaced by another file before its copy: changed", function()
    H.write_file(root .. "/s1", "one")
    H.write_file(root .. "/s2", "two")
    changed_by({ a1 = { source = root .. "/s1" }, b2 = { source = root .. "/s2" } }, function()
      H.write_file(root .. "/s3", "two")
      os.rename(root .. "/s3", root .. "/s2")
    end)
  end)

  -- The source is opened for its copy without an fstat first (the check
  -- after the copy compares with what the stat under the lock saw): what
  -- the copy makes of a directory or a FIFO in its place still reads as
  -- "changed", whichever call failed on it.
  for _, kind in ipairs({ "directory", "FIFO" }) do
    it("replaced by a " .. kind .. " before its copy: changed", function()
      H.write_file(root .. "/s1", "one")
      H.write_file(root .. "/s2", "two")
      local msg = changed_by({ a1 = { source = root .. "/s1" }, b2 = { source = root .. "/s2" } },
        function()
          assert(os.remove(root .. "/s2"))
          assert(H.sh((kind == "FIFO" and "mkfifo " or "mkdir ") .. H.quote(root .. "/s2")))
        end)
      assert.truthy(msg:find('"b2" from source "' .. root .. '/s2"', 1, true), msg)
    end)
  end
end)

describe("atomicwriter project", function()
  local root, src, target
  before_each(function()
    root, src, target = fresh_tree("project")
  end)
  after_each(H.cleanup)

  local function project(args, pre)
    return H.exec((pre or "") .. H.ENV .. H.CLI .. " project " .. args .. " " ..
      H.quote(src) .. " " .. H.quote(target))
  end

  it("copies from sources; --checksum finds a same-size, same-mtime rewrite", function()
    settle(src)
    local status, out, err = project("--no-sync")
    assert.are.equal(0, status, err)
    assert.truthy(out:find("^published "), out)
    assert.are.equal("", err, "no progress when stderr is no terminal")
    assert.are.same(H.files(src), published(target))
    status, out = project("--no-sync")
    assert.truthy(out:find("^unchanged "), out)
    local f = assert(io.open(src .. "/a", "r+b"))
    f:write("ALPHA\n")
    f:close()
    settle(src)
    status, out = project("--no-sync")
    assert.truthy(out:find("^unchanged "), out)   -- the quick check's blind spot
    status, out, err = project("--no-sync --checksum")
    assert.are.equal(0, status, err)
    assert.truthy(out:find("^published "), out)
    assert.are.equal("ALPHA\n", H.read(target .. "/a"))
  end)

  it("shows progress on a terminal only (script(1) gives it one)", function()
    if not H.has("script") then
      return pending("script (util-linux) is not installed: no terminal to test on")
    end
    local cmd = H.ENV .. H.CLI .. " project --no-sync " .. H.quote(src) .. " " ..
      H.quote(target)
    local ok, out = H.sh("script -qec " .. H.quote(cmd) .. " /dev/null")
    assert(ok, out)
    assert.truthy(out:find("\ratomicwriter: 4/4 files, 0.1 MiB, [%d.]+ MiB/s"), out)
    assert.truthy(out:find("published "), out)
    -- the same with stderr to a file: the terminal is stdout's only
    local log = root .. "/stderr"
    assert(H.sh("rm -rf " .. H.quote(target) .. " && mkdir " .. H.quote(target)))
    ok, out = H.sh("script -qec " .. H.quote(cmd .. " 2>" .. H.quote(log)) .. " /dev/null")
    assert(ok, out)
    assert.truthy(out:find("published "), out)
    assert.are.equal("", H.read(log))
    assert.is_nil(out:find("MiB/s", 1, true), out)
  end)
end)

-- Memory grows with the number of files, never their bytes: the peak RSS
-- of projecting 1 GiB (four sparse 256 MiB files, on a tmpfs where there
-- is one: the copy makes them real there, ~1 s) is held to 32 MiB above
-- the same command that writes nothing (--version). A measure of memory,
-- not of time; the C core's alone, so under the default Lua only.
describe("the peak memory of a projection", function()
  after_each(H.cleanup)

  local name = "of 1 GiB is at most 32 MiB above the command's that writes nothing"
  if H.LUA:match("[^/]*$") ~= "lua5.4" then
    pending(name .. " (the core's memory: measured under lua5.4 only)")
  elseif not H.has("/usr/bin/time") then
    pending(name .. " (/usr/bin/time is not installed)")
  else
    it(name, function()
      local root
      if H.sh("test -d /dev/shm -a -w /dev/shm") then   -- a tmpfs: no disk writes
        local ok, out = H.sh("mktemp -d /dev/shm/aw-rss.XXXXXX")
        assert(ok, out)
        root = out:gsub("%s+$", "")
      else
        root = H.tmpdir("rss")
      end
      local src, target = root .. "/src", root .. "/t"
      assert(H.sh(("mkdir -p %s/d %s && for i in 1 2 3 4; do truncate -s 256M %s/d/big$i; done && " ..
        "echo small > %s/small"):format(H.quote(src), H.quote(target), H.quote(src), H.quote(src))))
      local function peak(args)
        local log = root .. "/time"
        local status, _, err = H.exec(H.ENV .. "/usr/bin/time -o " .. H.quote(log) .. " -f '%M' " ..
          H.CLI .. " " .. args)
        assert.are.equal(0, status, err)
        return tonumber(H.read(log):match("(%d+)%s*$"))
      end
      local ok, err = pcall(function()
        local base = peak("--version")
        local kib = peak("project --no-sync " .. H.quote(src) .. " " .. H.quote(target))
        print(("# peak RSS: project of 1 GiB %.1f MiB, --version %.1f MiB"):format(kib / 1024, base / 1024))
        assert.is_true(kib - base <= 32 * 1024, ("project's peak %d KiB, --version's %d KiB"):format(kib, base))
        assert.are.equal(256 * 1048576, lfs.attributes(target .. "/d/big4", "size"))
      end)
      H.sh("rm -rf " .. H.quote(root))
      assert(ok, err)
    end)
  end
end)

-- A reflink where the file system shares extents: an xfs image with
-- reflink=1 on a loop device (root, mkfs.xfs, filefrag); the published
-- file's extents are flagged shared with its source's. Elsewhere (ext4,
-- tmpfs) the other specs above copy. The core's work: default Lua only.
describe("a source on a file system with reflinks", function()
  local name = "is cloned, not copied: its extents are shared (xfs reflink=1, loop image)"
  if H.LUA:match("[^/]*$") ~= "lua5.4" then
    pending(name .. " (the core's work: run under lua5.4 only)")
  elseif not aw.platform.copy:find("ficlone", 1, true) then
    pending(name .. " (this build does not clone: aw.platform.copy = \"" .. aw.platform.copy .. "\")")
  elseif not H.is_root then
    pending(name .. " (mounting a loop image needs root)")
  elseif not H.has("mkfs.xfs filefrag losetup") then
    pending(name .. " (mkfs.xfs, filefrag or losetup is not installed)")
  else
    it(name .. " #root", function()
      local root = H.tmpdir("reflink")
      local img, mnt = root .. "/xfs.img", root .. "/mnt"
      local ok, out = H.sh(("mkdir %s && truncate -s 512M %s && mkfs.xfs -q -m reflink=1 %s && " ..
        "mount -o loop %s %s"):format(H.quote(mnt), H.quote(img), H.quote(img), H.quote(img), H.quote(mnt)))
      if not ok then
        H.sh("umount " .. H.quote(mnt) .. " 2>/dev/null")
        return pending("no loop mount of an xfs image here: " .. out)
      end
      local ran, err = pcall(function()
        local src, target = mnt .. "/src", mnt .. "/t"
        assert(H.sh(("mkdir %s %s && head -c 4194304 /dev/urandom > %s/big && echo small > %s/small")
          :format(H.quote(src), H.quote(target), H.quote(src), H.quote(src))))
        local files = aw.read_tree(src, { sources = true })
        assert.is_true((aw.write(target, files)))
        assert.are.same(H.files(src), published(target))
        local _, frag = H.sh("filefrag -v " .. H.quote(target .. "/big"))
        assert.truthy(frag:find("shared", 1, true), "the published file's extents are shared: " .. frag)
        -- a changed source is cloned again; the unchanged one is linked
        assert(H.sh("head -c 4194304 /dev/urandom > " .. H.quote(src .. "/big")))
        assert.is_true((aw.write(target, files)))
        assert.are.same(H.files(src), published(target))
      end)
      H.sh("umount " .. H.quote(mnt))
      assert(ran, err)
    end)
  end
end)
