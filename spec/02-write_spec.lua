-- Contract, "Guarantees" 1 and 2, first projection: the target holds
-- exactly the payload, in the ..data layout, with exact modes and owners.
local aw = require("atomicwriter")
local H = require("helpers")

describe("a first write", function()
  local target
  before_each(function() target = H.tmpdir("write") end)
  after_each(H.cleanup)

  it("publishes the payload in the ..data layout and returns true", function()
    local payload = { podName = "pod-1\n", ["user/labels"] = "a=b\n", ["user/deep/x"] = "x" }
    assert.is_true(aw.write(target, payload))
    H.assert_layout(target, payload)
    assert.are.equal("pod-1\n", H.read(target .. "/podName"))
    assert.are.equal("a=b\n", H.read(target .. "/user/labels"))
  end)

  it("takes a payload with a metatable for what pairs() gives (__pairs where Lua has it)", function()
    local real = { a = "1", ["b/c"] = "2", d = { data = "3", mode = "0600" } }
    local plain = { x = "only", y = "strings" }
    for _, inner in ipairs({ real, plain }) do
      local proxy = setmetatable({}, {
        __pairs = function() return next, inner, nil end,
        __index = inner,
      })
      local expect = {}
      for k, v in pairs(proxy) do expect[k] = v end
      local t = H.tmpdir("write-proxy")
      assert.is_true(aw.write(t, proxy))
      H.assert_layout(t, expect)
    end
  end)

  it("names the version directory after the UTC time, to the nanosecond", function()
    assert.is_true(aw.write(target, { a = "1" }))
    local v = H.versions(target)[1]
    local y, mo, d = v:match("^%.%.(%d%d%d%d)_(%d%d)_(%d%d)_%d%d_%d%d_%d%d%.%d%d%d%d%d%d%d%d%d$")
    assert.are.equal(os.date("!%Y_%m_%d"), y .. "_" .. mo .. "_" .. d)
  end)

  it("publishes an empty payload: ..data exists and points at an empty version", function()
    assert.is_true(aw.write(target, {}))
    H.assert_layout(target, {})
    assert.are.same({}, H.ls(target .. "/..data"))
  end)

  it("keeps binary data byte for byte, every byte value", function()
    local all = {}
    for i = 0, 255 do all[#all + 1] = string.char(i) end
    local bytes = table.concat(all):rep(300)
    assert.is_true(aw.write(target, { bin = bytes, nul = "\0\0\0" }))
    assert.are.equal(bytes, H.read(target .. "/bin"))
    assert.are.equal("\0\0\0", H.read(target .. "/nul"))
  end)

  it("writes empty files", function()
    assert.is_true(aw.write(target, { empty = "", ["d/empty"] = { data = "" } }))
    assert.are.equal("", H.read(target .. "/empty"))
    assert.are.equal(0, H.lstat(target .. "/..data/d/empty").size)
  end)

  it("writes a large file (8 MiB) whole", function()
    local big = string.rep("0123456789abcdef", 512 * 1024)
    assert.is_true(aw.write(target, { big = big }))
    assert.are.equal(big, H.read(target .. "/big"))
  end)

  it("writes dotfiles and names with spaces, newlines and UTF-8", function()
    local payload = { [".hidden"] = "h", ["a dir/.env"] = "e", ["new\nline"] = "n", ["é/ü"] = "u" }
    assert.is_true(aw.write(target, payload))
    H.assert_layout(target, payload)
  end)

  it("writes deep paths", function()
    local deep = "a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/t/file"
    assert.is_true(aw.write(target, { [deep] = "deep", ["a/b/other"] = "o" }))
    assert.are.equal("deep", H.read(target .. "/" .. deep))
    assert.are.equal(tonumber("755", 8), H.mode(target .. "/..data/a/b/c/d/e/f/g"))
  end)

  it("gives each file its mode exactly, default 0644, octal strings or integers", function()
    assert.is_true(aw.write(target, {
      default = "x",
      ro = { data = "x", mode = "0444" },
      o = { data = "x", mode = "0o600" },
      short = { data = "x", mode = "640" },
      int = { data = "x", mode = 256 },
      none = { data = "x", mode = 0 },
      all = { data = "x", mode = 511 },
    }))
    local d = target .. "/..data/"
    assert.are.equal(tonumber("644", 8), H.mode(d .. "default"))
    assert.are.equal(tonumber("444", 8), H.mode(d .. "ro"))
    assert.are.equal(tonumber("600", 8), H.mode(d .. "o"))
    assert.are.equal(tonumber("640", 8), H.mode(d .. "short"))
    assert.are.equal(tonumber("400", 8), H.mode(d .. "int"))
    assert.are.equal(0, H.mode(d .. "none"))
    assert.are.equal(tonumber("777", 8), H.mode(d .. "all"))
  end)

  it("sets exact modes whatever the umask (umask 0777 and 0022 in a child)", function()
    for _, umask in ipairs({ "0777", "0022", "0000" }) do
      local dir = H.tmpdir("umask")
      local ok, out = H.lua(([[
        local aw = require("atomicwriter")
        assert(aw.write(%q, { ["d/f"] = { data = "x", mode = "0666" }, g = { data = "y", mode = "0751" } }))
      ]]):format(dir), "umask " .. umask .. ";")
      assert(ok, out)
      assert.are.equal(tonumber("666", 8), H.mode(dir .. "/..data/d/f"))
      assert.are.equal(tonumber("751", 8), H.mode(dir .. "/..data/g"))
      assert.are.equal(tonumber("755", 8), H.mode(dir .. "/..data/d"))
      assert.are.equal(tonumber("755", 8), H.mode(dir .. "/..data"))
    end
  end)

  -- Root opens a directory whatever its mode; any other user needs the
  -- owner's read and search bits, which a umask of 0777 leaves out of the
  -- directories the writer makes (it gives them 0755 once open). Run as
  -- nobody when the specs run as root.
  it("sets exact modes under umask 0777 as a user without root too", function()
    local dir = H.tmpdir("umask-user")
    local code = ([[
      local aw = require("atomicwriter")
      assert(aw.write(%q, { ["d/e/f"] = { data = "x", mode = "0640" }, g = "y" }))
      assert(aw.write(%q, { ["d/e/f"] = { data = "x", mode = "0640" }, g = "y", ["h/i"] = "z" }))
    ]]):format(dir, dir)
    local ok, out
    if H.is_root then
      assert(H.sh("chown 65534:65534 " .. H.quote(dir)))
      ok, out = H.lua_as_nobody(code, "umask 0777;")
    else
      ok, out = H.lua(code, "umask 0777;")
    end
    assert(ok, out)
    H.assert_layout(dir, { ["d/e/f"] = "x", g = "y", ["h/i"] = "z" })
    for _, d in ipairs({ "", "/d", "/d/e", "/h" }) do
      assert.are.equal(tonumber("755", 8), H.mode(dir .. "/..data" .. d), d)
    end
    assert.are.equal(tonumber("640", 8), H.mode(dir .. "/..data/d/e/f"))
    assert.are.equal(tonumber("644", 8), H.mode(dir .. "/..data/g"))
  end)

  H.root_it("sets owners when given", function()
    assert.is_true(aw.write(target, {
      both = { data = "x", uid = 1234, gid = 5678 },
      uonly = { data = "x", uid = 4321 },
      gonly = { data = "x", gid = 8765 },
      mine = "x",
    }))
    local d = target .. "/..data/"
    assert.are.same({ 1234, 5678 }, { H.lstat(d .. "both").uid, H.lstat(d .. "both").gid })
    assert.are.same({ 4321, 0 }, { H.lstat(d .. "uonly").uid, H.lstat(d .. "uonly").gid })
    assert.are.same({ 0, 8765 }, { H.lstat(d .. "gonly").uid, H.lstat(d .. "gonly").gid })
    assert.are.same({ 0, 0 }, { H.lstat(d .. "mine").uid, H.lstat(d .. "mine").gid })
  end)

  H.root_it("keeps the exact mode after a change of owner", function()
    assert.is_true(aw.write(target, { f = { data = "x", mode = "0750", uid = 1000, gid = 1000 } }))
    assert.are.equal(tonumber("750", 8), H.mode(target .. "/..data/f"))
  end)

  it("fails with EPERM naming the file when it may not give a file away", function()
    local code = ([[
      local aw = require("atomicwriter")
      print(aw.write(%q, { f = { data = "x", uid = 0 } }))
    ]]):format(target)
    local ok, out
    if H.is_root then
      assert(H.sh("chmod 755 " .. H.quote(target) .. " && chown 65534 " .. H.quote(target)))
      ok, out = H.lua_as_nobody(code)
    else
      ok, out = H.lua(code)
    end
    assert(ok, out)
    assert.truthy(out:find("\tEPERM\n$"), out)
    assert.truthy(out:find('set owner of "f"', 1, true), out)
    assert.are.same({}, H.ls(target))
  end)

  it("fails with ENOENT naming the target when it does not exist", function()
    local ok, msg, code = aw.write(target .. "/nope", { a = "1" })
    assert.is_nil(ok)
    assert.are.equal("ENOENT", code)
    assert.truthy(msg:find(target .. "/nope", 1, true), msg)
  end)

  it("fails with ENOTDIR when the target is a file", function()
    H.write_file(target .. "/file", "x")
    local ok, _, code = aw.write(target .. "/file", { a = "1" })
    assert.is_nil(ok)
    assert.are.equal("ENOTDIR", code)
  end)

  it("accepts sync = false and writes the same layout", function()
    local payload = { a = "1", ["b/c"] = "2" }
    assert.is_true(aw.write(target, payload, { sync = false }))
    H.assert_layout(target, payload)
  end)

  it('accepts sync = "syncfs" and sync = "fsync" (the method) and writes the same layout', function()
    for i, method in ipairs({ "syncfs", "fsync" }) do
      local payload = { a = tostring(i), ["b/c"] = "2", ["b/d/e"] = "3" }
      assert.is_true(aw.write(target, payload, { sync = method }))
      H.assert_layout(target, payload)
      assert.is_true(assert(aw.new(target, { sync = method })):write({ a = "new" .. i }))
    end
    local ok, err = pcall(aw.write, target, {}, { sync = "fdatasync" })
    assert.is_false(ok)
    assert.truthy(tostring(err):find('option \'sync\' must be a boolean, "syncfs" or "fsync", not string', 1, true),
      tostring(err))
  end)
end)

describe("a writer object", function()
  local target
  before_each(function() target = H.tmpdir("writer") end)
  after_each(H.cleanup)

  it("writes with the options it was made with", function()
    local w = assert(aw.new(target, { sync = false, log_context = "ctx" }))
    assert.is_true(w:write({ a = "1" }))
    assert.is_false(w:write({ a = "1" }))
    local ok, msg, code = w:write({ ["/x"] = "1" })
    assert.is_nil(ok)
    assert.are.equal("invalid", code)
    assert.are.equal("ctx: ", msg:sub(1, 5))
    assert.truthy(tostring(w):find("atomicwriter.writer", 1, true))
  end)

  it("is refused with nil, message, code when the target is not a directory", function()
    local w, msg, code = aw.new(target .. "/missing")
    assert.is_nil(w)
    assert.are.equal("ENOENT", code)
    assert.truthy(msg:find(target .. "/missing", 1, true))
    H.write_file(target .. "/file", "x")
    w, msg, code = aw.new(target .. "/file")
    assert.is_nil(w)
    assert.are.equal("ENOTDIR", code)
  end)

  it("raises when write is called without the object or a table", function()
    local w = assert(aw.new(target))
    assert.has_error(function() w.write({ a = "1" }) end)
    assert.has_error(function() w:write("a") end)
  end)
end)
