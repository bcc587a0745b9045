-- The reader's side: aw.read gives one whole version through one
-- resolution of ..data, even while a writer swaps; aw.version names it.
local aw = require("atomicwriter")
local H = require("helpers")

describe("aw.read and aw.version", function()
  local target
  before_each(function() target = H.tmpdir("read") end)
  after_each(H.cleanup)

  it("return nothing published yet as an empty table and the version \"\", which assert passes", function()
    local files, version = assert(aw.read(target))
    assert.are.same({}, files)
    assert.are.equal("", version)
    assert.are.equal("", assert(aw.version(target)))
    assert.are.equal(1, select("#", aw.version(target)))
  end)

  it("fail with nil, message, code, which assert raises", function()
    local v, msg, code = aw.version(target .. "/missing", { log_context = "ctx" })
    assert.is_nil(v)
    assert.are.equal("ENOENT", code)
    assert.are.equal("ctx: " .. target .. "/missing", msg:sub(1, #target + 13))
    assert.has_error(function() assert(aw.version(target .. "/missing")) end)
    assert.has_error(function() assert(aw.read(target .. "/missing")) end)
  end)

  it("read every file with data, mode and owner, and the version's name", function()
    assert.is_true(aw.write(target, {
      a = "1", ["d/e/f"] = { data = "\0bin", mode = "0600" }, empty = "",
    }))
    local files, version = aw.read(target)
    assert.are.equal(H.readlink(target .. "/..data"), version)
    assert.are.equal(version, aw.version(target))
    assert.are.same({
      a = { data = "1", mode = 420, uid = files.a.uid, gid = files.a.gid },
      ["d/e/f"] = { data = "\0bin", mode = 384, uid = files.a.uid, gid = files.a.gid },
      empty = { data = "", mode = 420, uid = files.a.uid, gid = files.a.gid },
    }, files)
  end)

  H.root_it("report owners as written", function()
    assert.is_true(aw.write(target, { a = { data = "1", uid = 123, gid = 456 } }))
    local files = aw.read(target)
    assert.are.same({ 123, 456 }, { files.a.uid, files.a.gid })
  end)

  it("read_tree reads any directory as a payload, skipping links and special files", function()
    local src = H.tmpdir("tree")
    assert(H.sh(("cd %s && mkdir -p d/e && printf 1 > a && printf 2 > d/e/f && chmod 600 d/e/f && " ..
      "ln -s /etc/passwd link && mkfifo fifo"):format(H.quote(src))))
    local files, skipped = assert(aw.read_tree(src, { log_context = "ctx" }))
    assert.are.same({   -- no owners unless asked
      a = { data = "1", mode = 420 },
      ["d/e/f"] = { data = "2", mode = 384 },
    }, files)
    assert.are.equal(2, skipped, "the link and the FIFO, one count")
    local uid, gid = H.lstat(src .. "/a").uid, H.lstat(src .. "/a").gid
    local owned = assert(aw.read_tree(src, { owners = true }))
    assert.are.same({
      a = { data = "1", mode = 420, uid = uid, gid = gid },
      ["d/e/f"] = { data = "2", mode = 384, uid = uid, gid = gid },
    }, owned)
    assert.are.same(files, assert(aw.read_tree(src, { owners = false })))
    assert.is_true(aw.write(target, owned))
    assert.are.same(owned, (aw.read(target)))
    assert.has_error(function() aw.read_tree(src, { owners = 1 }) end)
    local ok, msg, code = aw.read_tree(src .. "/missing", { log_context = "ctx" })
    assert.is_nil(ok)
    assert.are.equal("ENOENT", code)
    assert.are.equal("ctx: " .. src .. "/missing", msg:sub(1, #src + 13))
    assert.has_error(function() aw.read_tree(src, { poll = true }) end)
  end)

  H.root_it("read_tree's payload, without owners, is written by a user who does not own the files", function()
    local src = H.tmpdir("tree")
    H.write_file(src .. "/a", "root's")
    assert(H.sh("chown 0:0 " .. H.quote(src .. "/a") .. " && chmod 644 " .. H.quote(src .. "/a") ..
      " && chmod 755 " .. H.quote(src) .. " && chown 65534:65534 " .. H.quote(target)))
    local ok, out = H.lua_as_nobody(([[
      local aw = require("atomicwriter")
      print(aw.write(%q, (assert(aw.read_tree(%q, { owners = true })))))
      print(aw.write(%q, (assert(aw.read_tree(%q)))))
    ]]):format(target, src, target, src))
    assert(ok, out)
    assert.truthy(out:find("^nil\t[^\n]*\tEPERM\n"), out)   -- giving a file to root
    assert.truthy(out:find("\ntrue\t%.%.[%w_.]+\n$"), out)
    assert.are.equal("root's", H.read(target .. "/a"))
    assert.are.equal(65534, H.lstat(target .. "/..data/a").uid)
  end)

  it("fail with nil, message, code naming the target", function()
    local files, msg, code = aw.read(target .. "/missing")
    assert.is_nil(files)
    assert.are.equal("ENOENT", code)
    assert.truthy(msg:find(target .. "/missing", 1, true))
    assert.are.equal("ENOENT", select(3, aw.version(target .. "/missing")))
  end)

  it("refuse a ..data that is a file with code conflict", function()
    H.write_file(target .. "/..data", "not a link")
    assert.are.equal("conflict", select(3, aw.read(target)))
    assert.are.equal("conflict", select(3, aw.version(target)))
  end)

  it("refuse a planted ..data with code conflict", function()
    assert(H.sh("ln -s /etc " .. H.quote(target .. "/..data")))
    assert.are.equal("conflict", select(3, aw.read(target)))
    assert.are.equal("conflict", select(3, aw.version(target)))
  end)

  it("never follow a symlink planted inside the version", function()
    assert.is_true(aw.write(target, { a = "1" }))
    assert(H.sh("ln -s /etc/passwd " .. H.quote(target .. "/..data/passwd")))
    local files = aw.read(target)
    assert.is_nil(files.passwd)
    assert.are.equal("1", files.a.data)
  end)

  it("never walk into a symlink to a directory planted inside the version, or in read_tree's tree", function()
    local outside = H.tmpdir("outside")   -- stands for /etc: a directory with a file
    H.write_file(outside .. "/passwd", "root:x:0:0")
    assert.is_true(aw.write(target, { a = "1", ["d/b"] = "2" }))
    local version = H.readlink(target .. "/..data")
    assert(H.sh(("ln -s %s %s && ln -s .. %s"):format(H.quote(outside),
      H.quote(target .. "/" .. version .. "/etc"), H.quote(target .. "/" .. version .. "/d/up"))))
    local files = assert(aw.read(target))
    assert.are.same({ "a", "d/b" }, H.sorted_keys(files))
    assert.are.same({ "1", "2" }, { files.a.data, files["d/b"].data })
    local kept = assert(aw.read(target, version))
    assert.are.same(files, kept)
    local src = H.tmpdir("tree")
    assert(H.sh(("cd %s && mkdir d && printf 1 > a && ln -s %s etc && ln -s .. d/up"):format(
      H.quote(src), H.quote(outside))))
    local tree, skipped = assert(aw.read_tree(src))
    assert.are.same({ "a" }, H.sorted_keys(tree))
    assert.are.equal(2, skipped)
  end)

  it("always read one whole version while another process writes 300 times", function()
    local function payload(tag)
      return { top = string.rep(tag, 3000), ["d/one"] = tag:lower():rep(9000), ["d/two"] = tag }
    end
    local A, B = payload("A"), payload("B")
    assert.is_true(aw.write(target, A))
    local done = target .. ".done"
    local writer = H.spawn(H.lua_cmd(([[
        local aw = require("atomicwriter")
        local function payload(tag)
          return { top = string.rep(tag, 3000), ["d/one"] = tag:lower():rep(9000), ["d/two"] = tag }
        end
        local A, B = payload("A"), payload("B")
        for i = 1, 300 do assert(aw.write(%q, i %% 2 == 1 and B or A, { sync = false })) end
        io.open(%q, "w"):close()
      ]]):format(target, done)))
    local reads, bad, deadline = 0, 0, os.time() + 60
    local versions = {}
    while not H.lstat(done) and os.time() < deadline do
      local files, version = aw.read(target)
      assert.is_not_nil(files, version)
      local tag = files.top and files.top.data:sub(1, 1)
      local expect = tag == "A" and A or B
      for path, data in pairs(expect) do
        if not files[path] or files[path].data ~= data then bad = bad + 1 end
      end
      for path in pairs(files) do
        if not expect[path] then bad = bad + 1 end
      end
      versions[version] = true
      reads = reads + 1
    end
    local ok, out = H.finish(writer)
    assert.is_true(ok, out)
    local distinct = 0
    for _ in pairs(versions) do distinct = distinct + 1 end
    print(("# read: %d reads during 300 writes, %d distinct versions, %d torn or mixed"):format(
      reads, distinct, bad))
    assert.are.equal(0, bad)
    assert.is_true(reads > 10)
  end)
end)
