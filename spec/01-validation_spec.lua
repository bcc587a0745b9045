-- Contract, "Validation": a refused payload changes nothing on disk, the
-- code is "invalid", and the message names the target and the path.
local aw = require("atomicwriter")
local H = require("helpers")

describe("validation", function()
  local target, before

  before_each(function()
    target = H.tmpdir("valid")
    assert.is_true(aw.write(target, { keep = "published\n" }))
    before = H.snapshot(target)
  end)
  after_each(H.cleanup)

  local function refused(payload, path_in_message)
    local ok, msg, code = aw.write(target, payload)
    assert.is_nil(ok)
    assert.are.equal("invalid", code)
    assert.truthy(msg:find(target, 1, true), "message names the target: " .. msg)
    if path_in_message then
      assert.truthy(msg:find(path_in_message, 1, true), "message names the path: " .. msg)
    end
    assert.are.equal(before, H.snapshot(target), "target untouched")
    return msg
  end

  it("refuses an empty path", function()
    refused({ [""] = "x" }, '""')
  end)

  it("refuses an absolute path", function()
    refused({ ["/etc/passwd"] = "x" }, "/etc/passwd")
  end)

  it("refuses a path with a '..' element", function()
    refused({ ["a/../../b"] = "x" }, "a/../../b")
    refused({ ["a/.."] = "x" }, "a/..")
  end)

  it("refuses a first element that starts with '..' (reserved names)", function()
    refused({ ["..data"] = "x" }, "..data")
    refused({ ["..foo/bar"] = "x" }, "..foo/bar")
    refused({ ["./..data_tmp"] = "x" }, "..data_tmp")
  end)

  it("accepts '..' inside a later element's name", function()
    assert.is_true(aw.write(target, { ["a/..b"] = "x", ["c..d"] = "y" }))
  end)

  it("refuses an element longer than 255 bytes", function()
    refused({ ["d/" .. string.rep("e", 256)] = "x" }, "d/eee")
    assert.is_true(aw.write(target, { ["d/" .. string.rep("e", 255)] = "x" }))
  end)

  it("refuses a path longer than 4096 bytes", function()
    local long = string.rep(string.rep("p", 99) .. "/", 41) .. "f"   -- 4101 bytes
    refused({ [long] = "x" }, "ppp")
    local fits = string.rep(string.rep("p", 99) .. "/", 40) .. string.rep("f", 96) -- 4096
    assert.are.equal(4096, #fits)
    assert.is_true(aw.write(target, { [fits] = "x" }))
  end)

  it("refuses a path containing a NUL byte, escaping it in the message", function()
    refused({ ["a\0b"] = "x" }, "a\\x00b")
  end)

  it("refuses paths that clean to '.'", function()
    refused({ ["."] = "x" })
    refused({ ["./"] = "x" })
    refused({ ["//"] = "x" })
  end)

  it("cleans paths: doubled slashes, ./ elements and a trailing slash", function()
    assert.is_true(aw.write(target, { ["foo//bar"] = "1", ["./baz"] = "2", ["q/./r/"] = "3" }))
    H.assert_layout(target, { ["foo/bar"] = "1", baz = "2", ["q/r"] = "3" })
  end)

  it("refuses two keys that clean to the same path, naming it", function()
    refused({ ["a/b"] = "1", ["a//b"] = "2" }, "a/b")
  end)

  it("refuses a path that is both a file and a directory", function()
    refused({ a = "1", ["a/b"] = "2" }, '"a"')
    refused({ ["x/y"] = "1", ["x/y/z/w"] = "2", ["x/y-"] = "3" }, "x/y")
  end)

  it("refuses the whole payload for one invalid entry", function()
    refused({ good = "1", ["/bad"] = "2", other = "3" }, "/bad")
    assert.is_nil(H.lstat(target .. "/good"))
  end)

  it("refuses a file spec that is neither a string nor a table", function()
    refused({ a = 42 }, '"a"')
    refused({ a = true }, '"a"')
  end)

  it("refuses a table spec without string data", function()
    refused({ a = { mode = "0644" } }, "data")
    refused({ a = { data = 5 } }, "data")
  end)

  it("refuses an unknown field in a table spec, such as a typo", function()
    refused({ a = { data = "x", mdoe = "0600" } }, "mdoe")
  end)

  it("counts the 4096 bytes once the path is cleaned", function()
    assert.is_true(aw.write(target, { ["a" .. ("/"):rep(5000) .. "b"] = "x" }))
    assert.are.equal("x", H.read(target .. "/a/b"))
  end)

  it("refuses a non-string key", function()
    refused({ "positional" }, "keys")
  end)

  it("refuses a decimal look-alike mode such as 644 with a hint", function()
    local msg = refused({ a = { data = "x", mode = 644 } }, '"a"')
    assert.truthy(msg:find('"0644"', 1, true), msg)
    assert.truthy(msg:find("420", 1, true), msg)
  end)

  it("refuses modes outside 0-0777 and malformed mode strings", function()
    refused({ a = { data = "x", mode = 512 } }, "mode")
    refused({ a = { data = "x", mode = -1 } }, "mode")
    refused({ a = { data = "x", mode = 1.5 } }, "mode")
    refused({ a = { data = "x", mode = "0888" } }, "mode")
    refused({ a = { data = "x", mode = "01777" } }, "mode")
    refused({ a = { data = "x", mode = "rw-r--r--" } }, "mode")
    refused({ a = { data = "x", mode = {} } }, "mode")
  end)

  it("refuses owners that are not whole numbers in range", function()
    refused({ a = { data = "x", uid = -1 } }, "uid")
    refused({ a = { data = "x", gid = 1.5 } }, "gid")
    refused({ a = { data = "x", uid = "root" } }, "uid")
    refused({ a = { data = "x", gid = 2 ^ 32 } }, "gid")
  end)

  -- Lua 5.3+ writes 2^32 as "4294967296.0" and raises in format("%d", 1e300);
  -- 5.1 and LuaJIT print floats as "4294967296": messages read the same on all.
  it("writes numbers in messages the same under every Lua", function()
    assert.truthy(refused({ a = { data = "x", gid = 2 ^ 32 } }, "gid"):find("not 4294967296$"))
    assert.truthy(refused({ a = { data = "x", uid = 0 / 0 } }, "uid"):find("not nan$"))
    refused({ a = { data = "x", mode = 2 ^ 53 } }, "mode 9007199254740992 is not within")
    refused({ a = { data = "x", mode = 1e300 } }, "mode 1e+300 is not within")
    refused({ a = { data = "x", mode = math.huge } }, "mode inf is not within")
    refused({ a = { data = "x", mode = 0 / 0 } }, "not nan")
    refused({ [2 ^ 53] = "x" }, '"9007199254740992"')
  end)

  it("takes math.huge as no timeout and raises for a NaN timeout", function()
    assert.has_error(function() aw.write(target, {}, { timeout = 0 / 0 }) end)
    assert.are.equal(before, H.snapshot(target))
    assert.is_true(aw.write(target, { keep = "published\n", more = "x" }, { timeout = math.huge }))
    assert.is_true(aw.write(target, { keep = "published\n" }, { timeout = 1e300 }))
  end)

  it("raises for programming errors: target, payload or options of the wrong type", function()
    assert.has_error(function() aw.write(nil, {}) end)
    assert.has_error(function() aw.write(42, {}) end)
    assert.has_error(function() aw.write(target, "payload") end)
    assert.has_error(function() aw.write(target, {}, "opts") end)
    assert.has_error(function() aw.write(target, {}, { sync = "yes" }) end)
    assert.has_error(function() aw.write(target, {}, { synk = true }) end)
    assert.has_error(function() aw.new(target, { timeout = -1 }) end)
    assert.are.equal(before, H.snapshot(target))
  end)

  it("raises in every function for an option it does not take, naming the option", function()
    for _, case in ipairs({
      { "write", function() aw.write(target, {}, { poll = true }) end, "poll" },
      { "new", function() aw.new(target, { poll = true }) end, "poll" },
      { "read", function() aw.read(target, { sync = false }) end, "sync" },
      { "read", function() aw.read(target, { timeout = 1 }) end, "timeout" },
      { "version", function() aw.version(target, { poll = true }) end, "poll" },
      { "watch", function() aw.watch(target, { sync = true }) end, "sync" },
      { "watch", function() aw.watch(target, { timeout = 1 }) end, "timeout" },
    }) do
      local ok, err = pcall(case[2])
      assert.is_false(ok, case[1] .. " took " .. case[3])
      assert.truthy(tostring(err):find("unknown option " .. case[3] .. " for " .. case[1], 1, true),
        tostring(err))
    end
    -- and each takes its own
    assert.is_not_nil(aw.write(target, { keep = "published\n" }, { sync = false, timeout = 1, log_context = "c" }))
    assert.truthy(aw.new(target, { sync = false, timeout = 1, log_context = "c" }))
    assert.truthy(aw.read(target, { log_context = "c" }))
    assert.truthy(aw.version(target, { log_context = "c" }))
    assert.truthy(aw.watch(target, { poll = true, log_context = "c" })):close()
  end)

  it("refuses a target path holding a NUL byte, in every call", function()
    local bad = target .. "\0/../elsewhere"
    for _, call in ipairs({
      function() return aw.write(bad, { a = "1" }) end,
      function() return aw.new(bad) end,
      function() return aw.read(bad) end,
      function() return aw.version(bad) end,
      function() return aw.watch(bad) end,
    }) do
      local ok, msg, code = call()
      assert.is_nil(ok)
      assert.are.equal("invalid", code)
      assert.truthy(msg:find("NUL", 1, true), msg)
    end
    assert.are.equal(before, H.snapshot(target))
  end)

  it("cleans one path as write does, or refuses it with the same reason (aw.clean_path)", function()
    for given, clean in pairs({ ["a"] = "a", ["foo//bar"] = "foo/bar", ["./bar"] = "bar", ["a/b/"] = "a/b",
      ["./a/./b//c/."] = "a/b/c", [".x/..y"] = ".x/..y" }) do
      assert.are.equal(clean, aw.clean_path(given), given)
    end
    for given, why in pairs({ [""] = "empty", ["/a"] = "absolute", ["a/../b"] = "'..' element",
      ["..data/x"] = "reserved", ["./."] = "cleans to '.'", ["a\0b"] = "NUL",
      [string.rep("x", 256)] = "longer than 255", [string.rep("d/", 2048) .. "f"] = "longer than 4096" }) do
      local ok, msg, code = aw.clean_path(given)
      assert.is_nil(ok, given)
      assert.are.equal("invalid", code)
      assert.truthy(msg:find("^invalid payload path \""), msg)
      assert.truthy(msg:find(why, 1, true), msg)
    end
    assert.has_error(function() aw.clean_path(nil) end)
  end)

  it("prefixes messages with log_context", function()
    local ok, msg = aw.write(target, { ["/abs"] = "x" }, { log_context = "myapp" })
    assert.is_nil(ok)
    assert.are.equal("myapp: " .. target, msg:sub(1, #target + 7))
  end)

  -- aw.write's common call is checked and read whole in C (core.write_plain);
  -- anything init.lua must check or send on, it declines (no values, no
  -- error), so that the Lua side raises or refuses as before.
  it("leaves to init.lua every call the C fast path does not take whole", function()
    local core = require("atomicwriter.core")
    local declined = {
      { 1, { a = "x" } }, { target, "x" }, { target, { a = "x" }, "opts" },
      { target .. "\0x", { a = "x" } },
      { target, { a = { data = "x" } } }, { target, { [1] = "x" } },
      { target, setmetatable({ a = "x" }, {}) },
      { target, { a = "x" }, setmetatable({}, {}) },
      { target, { a = "x" }, { bogus = true } }, { target, { a = "x" }, { [1] = true } },
      { target, { a = "x" }, { poll = true } },
      { target, { a = "x" }, { sync = "sometimes" } }, { target, { a = "x" }, { sync = 1 } },
      { target, { a = "x" }, { ["sync\0x"] = true } }, { target, { a = "x" }, { sync = "fsync\0" } },
      { target, { a = "x" }, { timeout = -1 } }, { target, { a = "x" }, { timeout = 0 / 0 } },
      { target, { a = "x" }, { timeout = "1" } },
      { target, { a = "x" }, { keep = -1 } }, { target, { a = "x" }, { keep = 1.5 } },
      { target, { a = "x" }, { keep = 1e6 + 1 } }, { target, { a = "x" }, { keep = 0 / 0 } },
      { target, { a = "x" }, { log_context = 1 } }, { target, { a = "x" }, { progress = true } },
      { target, { a = "x" }, { changes = 1 } }, { target, { a = "x" }, { checksum = "yes" } },
      { target, { a = "x" }, { modes = 0 } },
    }
    for i, args in ipairs(declined) do
      assert.are.equal(0, select("#", core.write_plain(args[1], args[2], args[3])), "case " .. i)
    end
    assert.are.equal(before, H.snapshot(target), "target untouched")
    -- what it takes, it writes as aw.write's checks and defaults would
    local ok, v = core.write_plain(target, { a = "x" }, { sync = false, timeout = 1.5, keep = 2.0,
      log_context = "ctx", changes = false, checksum = true, modes = true, progress = function() end })
    assert.is_true(ok)
    assert.truthy(v:find("^%.%."), v)
    assert.are.equal(2, select("#", core.write_plain(target, { a = "y" })))
  end)

  it("validates before looking at the target", function()
    local ok, _, code = aw.write(target .. "/missing", { ["../x"] = "x" })
    assert.is_nil(ok)
    assert.are.equal("invalid", code)
  end)
end)
