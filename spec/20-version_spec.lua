-- One version number (csrc/aw.h's AW_VERSION_MAJOR/_MINOR/_PATCH) and
-- everything that repeats it: _VERSION, aw_library_version(), the
-- command's --version, every release rockspec, CHANGELOG.md's top entry,
-- the manual page;
-- and the license the rockspecs claim is the LICENSE file's.
local aw = require("atomicwriter")
local H = require("helpers")

local function header_version()
  local h = assert(H.read("csrc/aw.h"))
  local function part(name)
    return assert(h:match("\n#define AW_VERSION_" .. name .. " (%d+)\n"), "AW_VERSION_" .. name)
  end
  return part("MAJOR") .. "." .. part("MINOR") .. "." .. part("PATCH")
end

-- A rockspec is Lua assigning globals; run it in an empty environment.
local function rockspec(path)
  local env = {}
  local chunk = assert((loadstring or load)(assert(H.read(path)), "@" .. path))
  if setfenv then setfenv(chunk, env) else
    chunk = assert(load(assert(H.read(path)), "@" .. path, "t", env))
  end
  chunk()
  return env
end

local function rockspecs()
  local list = {}
  local p = io.popen("ls rockspec/*.rockspec")
  for path in p:lines() do list[#list + 1] = path end
  p:close()
  return list
end

describe("the version number", function()
  local V = header_version()

  it("is a semantic version in csrc/aw.h", function()
    assert.truthy(V:match("^%d+%.%d+%.%d+$"), V)
  end)

  it("is the module's _VERSION", function()
    assert.are.equal(V, aw._VERSION)
  end)

  it("is aw_library_version() and AW_VERSION_STRING in C", function()
    local built, why = H.make("build/library-version")
    if not built then return pending("cannot build build/library-version: " .. why) end
    local ok, out = H.sh("./build/library-version")
    assert(ok, out)
    assert.are.equal(V .. "\n" .. V .. "\n", out)
  end)

  it("is what `atomicwriter --version` prints, exiting 0", function()
    local ok, out = H.sh(H.ENV .. H.CLI .. " --version")
    assert(ok, out)
    assert.are.equal("atomicwriter " .. V .. "\n", out)
    local _, help = H.sh(H.ENV .. H.CLI .. " --help")
    assert.truthy(help:find("--version", 1, true), "--help lists --version")
  end)

  it("is the version of every release rockspec (all but scm), in its name too", function()
    local releases = 0
    for _, path in ipairs(rockspecs()) do
      local spec = rockspec(path)
      assert.are.equal("atomicwriter", spec.package, path)
      assert.are.equal("rockspec/" .. spec.package .. "-" .. spec.version .. ".rockspec", path)
      if not spec.version:match("^scm%-") and not spec.version:match("^dev%-") then
        releases = releases + 1
        assert.are.equal(V, spec.version:match("^(.-)%-%d+$"), path)
      end
    end
    -- Until the release rockspec lands there may be none; once one exists,
    -- it must be this version's.
    if releases == 0 then
      pending("no release rockspec in rockspec/ yet (only scm)")
    end
  end)

  it("is the manual page's (its .TH line)", function()
    local page = assert(H.read("man/atomicwriter.1"))
    assert.are.equal(V, page:match('\n%.TH ATOMICWRITER 1 %S+ "atomicwriter ([^"]+)"'))
  end)

  it("is CHANGELOG.md's top entry, with a date", function()
    local log = assert(H.read("CHANGELOG.md"))
    local top, date = log:match("\n## (%d+%.%d+%.%d+) %- (%d%d%d%d%-%d%d%-%d%d)\n")
    assert.are.equal(V, top)
    assert.truthy(date)
  end)
end)

describe("the license", function()
  it("is LICENSE's, MIT with a copyright line, and every rockspec says so", function()
    local text = assert(H.read("LICENSE"))
    assert.truthy(text:match("^MIT License\n"), "LICENSE is not the MIT text")
    assert.truthy(text:match("\nCopyright %(c%) %d%d%d%d[%d, -]* %S[^\n]+\n"), "no copyright line")
    assert.truthy(text:find("THE SOFTWARE IS PROVIDED \"AS IS\"", 1, true))
    for _, path in ipairs(rockspecs()) do
      assert.are.equal("MIT", rockspec(path).description.license, path)
    end
  end)
end)
