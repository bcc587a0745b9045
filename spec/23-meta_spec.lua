-- The lua-language-server definitions (types/atomicwriter.lua, ---@meta):
-- every function of the module and every method of a writer and of a
-- watcher is declared there, and nothing is declared that does not exist.
-- Option and table fields are documentation only, not checked here.
local aw = require("atomicwriter")
local H = require("helpers")

local META = "types/atomicwriter.lua"

-- The function names a table holds (metamethods and the like, "__*", aside).
local function functions_of(t)
  local set = {}
  for k, v in pairs(t) do
    if type(v) == "function" and not k:match("^__") then set[k] = true end
  end
  return H.sorted_keys(set)
end

-- What the file declares: "function <owner>.<name>(" or "<owner>:<name>(".
local function declared(text, owner)
  local set = {}
  for name in text:gmatch("\nfunction " .. owner .. "[.:]([%w_]+)%(") do set[name] = true end
  return H.sorted_keys(set)
end

describe("the lua-language-server definitions", function()
  local text = assert(H.read(META))
  after_each(H.cleanup)

  it("are a ---@meta file that loads as Lua and returns the module's table", function()
    assert.truthy(text:match("^%-%-%-@meta atomicwriter\n"), "first line: ---@meta atomicwriter")
    local chunk = assert(loadfile(META))
    local t = chunk()
    assert.are.same(functions_of(aw), functions_of(t))
  end)

  it("declare every function of the module, and only those", function()
    assert.are.same(functions_of(aw), declared(text, "atomicwriter"))
    -- The module's other fields are in its class.
    local class = assert(text:match("\n%-%-%-@class atomicwriter\n(.-)\nlocal atomicwriter = {}"))
    for k, v in pairs(aw) do
      if type(v) ~= "function" then
        assert.truthy(class:find("---@field " .. k .. " ", 1, true), "no ---@field " .. k)
      end
    end
  end)

  it("declare every method of a writer, and only those", function()
    local w = assert(aw.new(H.tmpdir("meta")))
    assert.are.same(functions_of(getmetatable(w).__index), declared(text, "Writer"))
    assert.truthy(text:find("---@class atomicwriter.Writer\n", 1, true))
  end)

  it("declare every method of a watcher, and only those", function()
    local w = assert(aw.watch(H.tmpdir("meta")))
    local methods = functions_of(getmetatable(w).__index)
    w:close()
    assert.are.same(methods, declared(text, "Watcher"))
    assert.truthy(text:find("---@class atomicwriter.Watcher\n", 1, true))
  end)
end)
