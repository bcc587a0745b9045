-- The C sources are listed twice, for two builds: the Makefile's CORE_SRC
-- (plus the binding, csrc/aw_lua.c) and each rockspec's module sources
-- (`luarocks make`). The lists must agree, and name every csrc/*.c.
local H = require("helpers")
local lfs = require("lfs")

local function set_of(list)
  local set = {}
  for _, v in ipairs(list) do set[v] = true end
  return set
end

local sorted_keys = H.sorted_keys

-- CORE_SRC as the Makefile writes it (continued lines included).
local function makefile_sources()
  local text = assert(H.read("Makefile"))
  local value = assert(text:match("\nCORE_SRC%s*=%s*(.-[^\\])\n"), "CORE_SRC in the Makefile")
  local list = {}
  for word in value:gsub("\\\n", " "):gmatch("%S+") do list[#list + 1] = word end
  return list
end

-- A rockspec is Lua that sets globals: run it in a table of its own.
local function rockspec_sources(path)
  local env = {}
  local text = assert(H.read(path))
  local chunk
  if setfenv then
    chunk = assert(loadstring(text, path))
    setfenv(chunk, env)
  else
    chunk = assert(load(text, path, "t", env))
  end
  chunk()
  return assert(env.build.modules["atomicwriter.core"].sources, path .. ": the module's sources")
end

describe("the C sources", function()
  it("are the same in the Makefile and in every rockspec, and every csrc/*.c is built", function()
    local make = set_of(makefile_sources())
    make["csrc/aw_lua.c"] = true
    local on_disk = {}
    for name in lfs.dir("csrc") do
      if name:match("%.c$") then on_disk["csrc/" .. name] = true end
    end
    assert.are.same(sorted_keys(on_disk), sorted_keys(make), "Makefile's CORE_SRC and csrc/aw_lua.c")
    local rockspecs = 0
    for name in lfs.dir("rockspec") do
      if name:match("%.rockspec$") then
        rockspecs = rockspecs + 1
        assert.are.same(sorted_keys(make), sorted_keys(set_of(rockspec_sources("rockspec/" .. name))),
          "rockspec/" .. name)
      end
    end
    assert.is_true(rockspecs > 0)
  end)
end)
