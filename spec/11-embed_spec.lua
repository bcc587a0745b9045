-- The examples, end to end (examples/README.md): a C host that embeds Lua
-- with the module linked in statically (no core.so, init.lua compiled in),
-- and a C program that uses the core library with no Lua at all. Each runs
-- on temporary targets, and once under valgrind.
local lfs = require("lfs")
local H = require("helpers")

local ROOT = lfs.currentdir()
-- Where examples/examples.mk builds for $LUA, as the Makefile says (one
-- rule, mk/lua.mk: build/examples/ for Lua 5.4, build/<lua>/examples/ else).
local EX_DIR = ROOT .. "/" .. (select(2, H.make("print")):match("EX_DIR=(%S+)") or "?")
local HOST = EX_DIR .. "/embed-host"
local C_ONLY = EX_DIR .. "/c-only"
local CONFIG = ROOT .. "/examples/embed/config.lua"
local q = H.quote

local VALGRIND = "valgrind --leak-check=full --error-exitcode=99"

-- `it` for the runs under valgrind: pending where it is not installed.
local function valgrind_it(name, fn)
  if H.has("valgrind") then
    it(name, fn)
  else
    pending(name .. " (valgrind is not installed)")
  end
end

local exec = H.exec

--- Builds the examples (examples.mk guards against being included twice,
-- so this works whether or not the top Makefile includes it).
local function build()
  local ok, out = H.make("-f Makefile -f examples/examples.mk examples")
  assert(ok, "building the examples failed (make examples):\n" .. out)
  for _, bin in ipairs({ HOST, C_ONLY }) do
    assert(lfs.attributes(bin, "mode") == "file", "make examples did not produce " .. bin)
  end
end

--- Writes a configuration script for the host into a temporary directory.
local function script(code)
  local path = H.tmpdir("embed-config") .. "/config.lua"
  H.write_file(path, code)
  return path
end

--- The payload the sample config.lua builds for these arguments, taken
-- from the script itself with a stand-in atomicwriter that records it.
local function sample_payload(...)
  local seen
  local saved = package.loaded["atomicwriter"]
  package.loaded["atomicwriter"] = {
    write = function(_, payload) seen = payload; return true end,
  }
  local ok, err = pcall(assert(loadfile(CONFIG)), ...)
  package.loaded["atomicwriter"] = saved
  assert(ok, err)
  assert(seen, "config.lua did not call atomicwriter.write")
  return seen
end

--- Asserts the exact mode of every file of a payload that names one.
local function assert_modes(target, payload)
  for path, spec in pairs(payload) do
    local want = type(spec) == "table" and spec.mode or 420
    if type(want) == "string" then want = tonumber(want:gsub("^0[oO]", ""), 8) end
    assert.are.equal(want, H.mode(target .. "/..data/" .. path), "mode of " .. path)
  end
end

if H.INSTALLED then
  pending("the examples (" .. select(2, H.make("examples")) .. "; spec 30 builds c-only against it)")
  return
end
if not H.has("make cc") then
  pending("the examples (make and a C compiler, cc, are needed to build them)")
  return
end

describe("the embedded host (examples/embed) #valgrind", function()
  local target
  setup(build)
  before_each(function() target = H.tmpdir("embed") end)
  after_each(H.cleanup)

  it("projects the sample configuration with exact modes and prints changed", function()
    local status, out, err = exec(q(HOST) .. " " .. q(CONFIG) .. " " .. q(target))
    assert.are.equal(0, status, err)
    assert.are.equal("changed\n", out)
    assert.are.equal("", err)
    local payload = sample_payload(target)
    H.assert_layout(target, payload)
    assert_modes(target, payload)
    assert.are.equal(tonumber("400", 8), H.mode(target .. "/tls/key.pem"))
    assert.truthy(H.read(target .. "/app.conf"):find("release = 1\n", 1, true))
  end)

  it("prints unchanged and publishes nothing on a second run, changed when an argument changes", function()
    local cmd = q(HOST) .. " " .. q(CONFIG) .. " " .. q(target)
    assert.are.equal(0, (exec(cmd)))
    local first = H.versions(target)[1]
    local status, out, err = exec(cmd)
    assert.are.equal(0, status, err)
    assert.are.equal("unchanged\n", out)
    assert.are.same({ first }, H.versions(target))
    status, out, err = exec(cmd .. " 2")
    assert.are.equal(0, status, err)
    assert.are.equal("changed\n", out)
    H.assert_layout(target, sample_payload(target, "2"))
    assert.are_not.equal(first, H.versions(target)[1])
    assert.are.equal("2\n", H.read(target .. "/release"))
  end)

  it("needs no module on disk: both modules come from package.preload", function()
    local config = script([[
      local target = ...
      assert(type(package.preload["atomicwriter"]) == "function", "atomicwriter not preloaded")
      assert(type(package.preload["atomicwriter.core"]) == "function", "core not preloaded")
      local aw = require("atomicwriter")
      assert(type(package.loaded["atomicwriter.core"]) == "table", "core not loaded")
      return aw.write(target, { a = "1" })
    ]])
    local status, out, err = exec("cd / && LUA_PATH=/nonexistent/?.lua LUA_CPATH=/nonexistent/?.so " ..
      "LUA_PATH_5_4=/nonexistent/?.lua LUA_CPATH_5_4=/nonexistent/?.so " ..
      q(HOST) .. " " .. q(config) .. " " .. q(target))
    assert.are.equal(0, status, err)
    assert.are.equal("changed\n", out)
    H.assert_layout(target, { a = "1" })
  end)

  it("exits 1 with the message and code invalid on stderr for an invalid path, writing nothing", function()
    local config = script('return require("atomicwriter").write(..., { ["../escape"] = "x", ok = "1" })')
    local status, out, err = exec(q(HOST) .. " " .. q(config) .. " " .. q(target))
    assert.are.equal(1, status, err)
    assert.are.equal("", out)
    assert.truthy(err:find(target, 1, true), err)
    assert.truthy(err:find('"../escape"', 1, true), err)
    assert.truthy(err:find("code invalid\n", 1, true), err)
    assert.are.same({}, H.ls(target))
  end)

  it("exits 1 with ENOENT naming the target when it does not exist", function()
    local missing = target .. "/missing"
    local status, out, err = exec(q(HOST) .. " " .. q(CONFIG) .. " " .. q(missing))
    assert.are.equal(1, status, err)
    assert.are.equal("", out)
    assert.truthy(err:find("embed-host: " .. missing .. ": ", 1, true), err)
    assert.truthy(err:find("code ENOENT\n", 1, true), err)
  end)

  it("exits 2 with the error on stderr when the script cannot load, raises or returns something else", function()
    local cases = {
      { "", "usage: " },
      { q(target .. "/nope.lua"), "cannot open" },
      { q(script("this is not Lua")), "config.lua:1: " },   -- a syntax error
      { q(CONFIG), "usage: embed-host config.lua TARGET" },
      { q(script('error("boom from the config")')), "boom from the config" },
      { q(script('return require("atomicwriter").write(1, {})')), "bad argument #1 to 'write'" },
      { q(script("return 42")), "must return the results of atomicwriter.write" },
      { q(script("return")), "not nothing" },
    }
    for _, case in ipairs(cases) do
      local status, out, err = exec(q(HOST) .. " " .. case[1])
      assert.are.equal(2, status, case[1] .. ": " .. err)
      assert.are.equal("", out)
      assert.truthy(err:find(case[2], 1, true), case[1] .. ": " .. err)
    end
  end)

  valgrind_it("runs clean under valgrind: no memory error, no leak (changed, unchanged, failure)", function()
    local cmd = VALGRIND .. " " .. q(HOST) .. " " .. q(CONFIG) .. " "
    local runs = {
      { target, 0, "changed\n" },
      { target, 0, "unchanged\n" },
      { target .. "/missing", 1, "" },
    }
    for _, run in ipairs(runs) do
      local status, out, err = exec(cmd .. q(run[1]))
      assert.are.equal(run[2], status, err)
      assert.are.equal(run[3], out)
      assert.truthy(err:find("ERROR SUMMARY: 0 errors", 1, true), err)
    end
    local invalid = script('return require("atomicwriter").write(..., { ["/abs"] = "x" })')
    local status, _, err = exec(VALGRIND .. " " .. q(HOST) .. " " .. q(invalid) .. " " .. q(target))
    assert.are.equal(1, status, err)
    assert.truthy(err:find("ERROR SUMMARY: 0 errors", 1, true), err)
  end)
end)

describe("the C-only example (examples/c-only) #valgrind", function()
  local target
  -- What examples/c-only/main.c projects, with release "1".
  local function payload(release)
    return {
      ["app.conf"] = { data = "listen = 8080\nrelease = " .. (release or "1") .. "\n", mode = "0644" },
      ["bin/start.sh"] = { data = "#!/bin/sh\nexec app --config /run/app/app.conf\n", mode = "0755" },
      ["tls/key.pem"] = { data = "-----BEGIN PRIVATE KEY-----\nexample\n-----END PRIVATE KEY-----\n",
                          mode = "0400" },
    }
  end

  setup(build)
  before_each(function() target = H.tmpdir("c-only") end)
  after_each(H.cleanup)

  it("projects its files with exact modes and prints changed", function()
    local status, out, err = exec(q(C_ONLY) .. " " .. q(target))
    assert.are.equal(0, status, err)
    assert.are.equal("changed\n", out)
    assert.are.equal("", err)
    H.assert_layout(target, payload())
    assert_modes(target, payload())
  end)

  it("prints unchanged and publishes nothing on a second run, changed for a new release", function()
    assert.are.equal(0, (exec(q(C_ONLY) .. " " .. q(target))))
    local first = H.versions(target)[1]
    local status, out, err = exec(q(C_ONLY) .. " " .. q(target))
    assert.are.equal(0, status, err)
    assert.are.equal("unchanged\n", out)
    assert.are.same({ first }, H.versions(target))
    status, out, err = exec(q(C_ONLY) .. " " .. q(target) .. " 2")
    assert.are.equal(0, status, err)
    assert.are.equal("changed\n", out)
    H.assert_layout(target, payload("2"))
  end)

  it("exits 1 with aw_error_format's message and code ENOENT when the target does not exist", function()
    local missing = target .. "/missing"
    local status, out, err = exec(q(C_ONLY) .. " " .. q(missing))
    assert.are.equal(1, status, err)
    assert.are.equal("", out)
    assert.truthy(err:find("c-only: " .. missing .. ": ", 1, true), err)
    assert.truthy(err:find("No such file or directory (ENOENT)", 1, true), err)
    assert.truthy(err:find("c-only: code ENOENT\n", 1, true), err)
  end)

  it("exits 1 with code conflict naming the path when a user file holds a name it needs", function()
    H.write_file(target .. "/app.conf", "mine")
    local status, _, err = exec(q(C_ONLY) .. " " .. q(target))
    assert.are.equal(1, status, err)
    assert.truthy(err:find('"app.conf"', 1, true), err)
    assert.truthy(err:find("c-only: code conflict\n", 1, true), err)
    assert.are.equal("mine", H.read(target .. "/app.conf"))
    assert.are.same({ "app.conf" }, H.ls(target))
  end)

  it("exits 2 with a usage line without a target", function()
    local status, out, err = exec(q(C_ONLY))
    assert.are.equal(2, status)
    assert.are.equal("", out)
    assert.truthy(err:find("usage: c-only TARGET", 1, true), err)
  end)

  valgrind_it("runs clean under valgrind: no memory error, no leak (changed, unchanged, failures)", function()
    local conflict = H.tmpdir("c-only-conflict")
    H.write_file(conflict .. "/tls", "mine")
    local runs = {
      { target, 0, "changed\n" },
      { target, 0, "unchanged\n" },
      { target .. "/missing", 1, "" },
      { conflict, 1, "" },
    }
    for _, run in ipairs(runs) do
      local status, out, err = exec(VALGRIND .. " " .. q(C_ONLY) .. " " .. q(run[1]))
      assert.are.equal(run[2], status, err)
      assert.are.equal(run[3], out)
      assert.truthy(err:find("ERROR SUMMARY: 0 errors", 1, true), err)
    end
    H.assert_layout(target, payload())
  end)
end)
