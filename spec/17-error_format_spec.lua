-- aw_error_format (csrc/aw.h) given a buffer too small for the whole
-- message: the message it gives is a prefix of the full one, whatever the
-- size, and a buffer of exactly the message's length + 1 holds it whole.
-- Through build/error-format (spec/error_format.c), which formats one
-- error into buffers of every size from 1 up.
local H = require("helpers")
local aw = require("atomicwriter")

local TOOL = "./build/error-format"
-- `make` builds it; a checkout `luarocks make` built has only the module.
local built, why = H.make("build/error-format")

--- The cut messages, one per buffer size, and the full one.
local function formats(args)
  local ok, out = H.sh(TOOL .. " " .. args)
  assert(ok, out)
  local lines = {}
  for line in out:gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
  local full = assert(table.remove(lines):match("^full (.*)$"), out)
  return lines, full
end

local function assert_prefixes(lines, full)
  assert.are.equal(#full + 1, #lines, "one line per size 1 .. #full + 1")
  for size, cut in ipairs(lines) do
    assert.are.equal(full:sub(1, #cut), cut, "size " .. size .. " gives a prefix")
    assert.is_true(#cut <= size - 1, "size " .. size .. " leaves room for the NUL")
  end
  assert.are.equal(full, lines[#lines], "a buffer of strlen + 1 holds it whole")
end

describe("a message cut short by a small buffer", function()
  if not built then
    pending("aw_error_format into small buffers (cannot build build/error-format: " .. why .. ")")
    return
  end

  it("is a prefix of the full one for a refused '../x' (32 bytes gave another path)", function()
    local lines, full = formats(H.quote("../x"))
    assert.are.equal([[t: invalid payload path "../x": the path contains a '..' element]], full)
    assert_prefixes(lines, full)
    assert.are.equal(full:sub(1, 31), lines[32])
  end)

  it("is a prefix of the full one where the path holds escaped bytes", function()
    local lines, full = formats(H.quote('a\t"b\\c\127/..') .. " ctx")
    assert.are.equal([[ctx: t: invalid payload path "a\x09\x22b\x5cc\x7f/..": the path contains a '..' element]],
      full)
    assert_prefixes(lines, full)
    -- an escape goes in whole or not at all
    for _, cut in ipairs(lines) do
      assert.is_nil(cut:match("\\$") or cut:match("\\x$") or cut:match("\\x%x$"), cut)
    end
  end)

  it("escapes bytes that are not well-formed UTF-8, and keeps characters that are", function()
    -- é (c3 a9) and € (e2 82 ac) stay; a stray ff, a surrogate (ed a0 80),
    -- an overlong '/' (c0 af) and a character cut short (c3) are escaped
    local lines, full = formats(H.quote("caf\195\169 \226\130\172 \255 \237\160\128 \192\175 \195/.."))
    assert.are.equal("t: invalid payload path \"caf\195\169 \226\130\172 \\xff \\xed\\xa0\\x80 " ..
      "\\xc0\\xaf \\xc3/..\": the path contains a '..' element", full)
    assert_prefixes(lines, full)
  end)

  it("is a prefix of the full one for a system error (strerror and code)", function()
    local dir = H.tmpdir("errfmt")
    local lines, full = formats("--enoent " .. H.quote(dir .. "/missing"))
    local tail = ": No such file or directory (ENOENT)"
    assert.are.equal(tail, full:sub(-#tail), full)
    assert_prefixes(lines, full)
    H.cleanup()
  end)
end)

-- The binding sizes its buffer with aw_error_format_size: a path made
-- mostly of bytes that are escaped (\x01 is four bytes for one) must still
-- reach Lua whole, with the message's end after it.
describe("a message through the binding", function()
  local DETAIL = ": the path contains a '..' element"

  local function escaped(path)
    return (path:gsub("[%c\"\\]", function(c) return ("\\x%02x"):format(c:byte()) end))
  end

  it("holds a path of 40 control bytes whole (the size counts the escapes)", function()
    local target = H.tmpdir("errfmt")
    local long = {}
    for i = 1, 15 do long[i] = ("\1"):rep(255) end
    for _, path in ipairs({ ("\1"):rep(40) .. "/..", table.concat(long, "/") .. "/.." }) do
      local quoted = '"' .. escaped(path) .. '"'
      local ok, msg, code = aw.write(target, { [path] = "x" }, { log_context = "ctx" })
      assert.is_nil(ok)
      assert.are.equal("invalid", code)
      assert.are.equal("ctx: " .. target .. ": invalid payload path " .. quoted .. DETAIL, msg)
      local none, cmsg = aw.clean_path(path)
      assert.is_nil(none)
      assert.truthy(cmsg:find(quoted .. DETAIL, 1, true), #cmsg .. " bytes: " .. cmsg:sub(-80))
      assert.are.equal(#quoted + #DETAIL, #cmsg - (cmsg:find('"', 1, true) - 1))
    end
    H.cleanup()
  end)
end)
