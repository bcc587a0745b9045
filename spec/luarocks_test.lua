-- spec/luarocks_test.lua - what `luarocks test` runs (the rockspec's test
-- section): every spec, with busted, under the interpreter LuaRocks runs
-- this script with, against the module `luarocks make` built in this
-- checkout (./atomicwriter/core.so), or else the one `make` built
-- (./csrc/atomicwriter/core.so); or an installed copy, when AW_CPATH (and
-- AW_LPATH, AW_CLI, AW_INSTALLED: spec/helpers.lua) name it.
--
-- Not LuaRocks' `busted` test type: that one wants busted as a rock, and
-- asks a rocks server for it when it is missing; Debian's lua-busted is
-- not a rock. Here busted is whatever `require("busted.runner")` finds: a
-- rock (through luarocks.loader) or Debian's. Specs that need a tool that
-- is missing (make, cc, strace, valgrind, root) say so as pending.
--
--   luarocks make && luarocks test [busted options]
local interpreter = arg[-1] or "lua"
local script = arg[0]

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

if os.getenv("AW_LUAROCKS_TEST") then
  -- The second run, with LUA and AW_CPATH in the environment (the specs'
  -- child processes read them): busted itself.
  pcall(require, "luarocks.loader")
  local ok, runner = pcall(require, "busted.runner")
  if not ok then
    io.stderr:write("luarocks test: busted is not installed for ", interpreter,
      ": `luarocks install busted`, or on Debian `apt-get install lua-busted`\n")
    os.exit(1)
  end
  local args = { "--cpath=" .. os.getenv("AW_CPATH") }
  if os.getenv("AW_LPATH") then args[2] = "--lpath=" .. os.getenv("AW_LPATH") .. ";./spec/?.lua" end
  for i = 1, #arg do args[#args + 1] = arg[i] end
  arg = args   -- luacheck: ignore (busted reads the global arg)
  runner({ standalone = false })
  return
end

-- Given in the environment: an installed copy (spec/30-release_spec.lua).
local cpath = os.getenv("AW_CPATH")
if not cpath and exists("atomicwriter/core.so") then
  cpath = "./?.so"
elseif not cpath and exists("csrc/atomicwriter/core.so") then
  cpath = "./csrc/?.so"
elseif not cpath then
  io.stderr:write("luarocks test: no atomicwriter.core built in this checkout: ",
    "run `luarocks make` (or `make`) first\n")
  os.exit(1)
end
io.stdout:write("luarocks test: ", interpreter, ", atomicwriter.core from ", cpath, "\n")

local words = {}
for i = 1, #arg do words[i] = q(arg[i]) end
local status = os.execute(("AW_LUAROCKS_TEST=1 LUA=%s AW_CPATH=%s %s %s %s"):format(
  q(interpreter), q(cpath), q(interpreter), q(script), table.concat(words, " ")))
-- os.execute: true or 0 on success, whatever the Lua version.
os.exit((status == true or status == 0) and 0 or 1)
