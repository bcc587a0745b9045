-- Packaging and the release (docs/install.md): the C library's exports
-- and soname, packagers' build flags reaching every command,
-- examples/c-only through pkg-config against a DESTDIR, the ABI check,
-- the rockspecs, and the release tarball built and tested by LuaRocks
-- offline; against an installed copy (make installcheck), that nothing
-- of the checkout leaks in.
local lfs = require("lfs")
local H = require("helpers")

local q = H.quote
local ROOT = lfs.currentdir()
local LUA_NAME = H.LUA:match("[^/]*$")
-- The Makefile's settings for H.LUA, or the reason it is not used (an
-- installed copy, no make).
local made, settings = H.make("print")
local function setting(name)
  return (" " .. settings):match("[\n ]" .. name .. "=(%S*)")
end
local DEFAULT_LUA = "lua5.4"

local function starts(s, prefix)
  return s ~= nil and s:sub(1, #prefix) == prefix
end

--- Runs a shell command; asserts it succeeded; returns its output.
local function run(cmd)
  local ok, out = H.sh(cmd)
  assert(ok, cmd .. "\n" .. out)
  return out
end

--- The functions a header declares (comments and preprocessor lines left out).
local function declared(header)
  local text = assert(H.read(header), header)
  text = text:gsub("/%*.-%*/", " "):gsub("\\\n", " "):gsub("\n#[^\n]*", "\n")
  local names = {}
  for name in text:gmatch("(aw_[%w_]+)%s*%(") do names[name] = true end
  return names
end

--- The dynamic symbols a shared object defines, as a set.
local function exported(so)
  local names = {}
  for name in run("nm -D --defined-only " .. q(so)):gmatch("%S+ %u ([%w_@.]+)") do
    names[name] = true
  end
  return names
end

local keys = H.sorted_keys

-- Where the C library is: this checkout's build, or the installed copy.
local function installed_file(pattern)
  if not H.INSTALLED then return nil end
  local ok, out = H.sh("find " .. q(H.INSTALLED) .. " -path " .. q(pattern) .. " | head -n 1")
  local path = ok and out:match("[^\n]+")
  return path
end

local LIB = {}
if H.INSTALLED then
  LIB.shared = installed_file("*/libatomicwriter.so.1")
  LIB.header = installed_file("*/include/atomicwriter.h")
  LIB.pc = installed_file("*/pkgconfig/atomicwriter.pc")
  LIB.why = "the installed copy " .. H.INSTALLED .. " has no C library (a rock installs the Lua module only)"
elseif made then
  LIB.shared = ROOT .. "/" .. setting("SHAREDLIB")
  LIB.header = ROOT .. "/csrc/aw.h"
  LIB.module = ROOT .. "/" .. setting("MODULE")
else
  LIB.why = settings
end

local function lib_it(name, fn)
  if LIB.shared then
    it(name, fn)
  else
    pending(name .. " (" .. LIB.why .. ")")
  end
end

describe("the C library", function()
  setup(function()
    if not H.INSTALLED and made then
      local ok, out = H.make(q(setting("SHAREDLIB")) .. " " .. q(setting("MODULE")))
      assert(ok, out)
    end
  end)

  lib_it("is libatomicwriter.so.1.0.0 with the soname libatomicwriter.so.1, and its links", function()
    local dir = LIB.shared:match("^(.*)/")
    local dynamic = run("readelf -d " .. q(dir .. "/libatomicwriter.so.1.0.0"))
    assert.truthy(dynamic:find("Library soname: [libatomicwriter.so.1]", 1, true), dynamic)
    assert.are.equal("libatomicwriter.so.1.0.0", H.readlink(dir .. "/libatomicwriter.so.1"))
    assert.are.equal("libatomicwriter.so.1", H.readlink(dir .. "/libatomicwriter.so"))
  end)

  lib_it("exports exactly the functions its header declares (nm -D)", function()
    local want = declared(LIB.header)
    assert.is_true(#keys(want) >= 20, "functions found in " .. LIB.header)
    assert.are.same(keys(want), keys(exported(LIB.shared)))
  end)

  -- the module tested (make's, luarocks make's, an installed one, a
  -- rock's: AW_LUA_MODULE) and, in a checkout, make's
  it("is not exported by the Lua module, whose only export is luaopen_atomicwriter_core", function()
    for _, module in ipairs({ H.MODULE, LIB.module }) do
      assert.are.same({ "luaopen_atomicwriter_core" }, keys(exported(module)), module)
    end
  end)
end)

describe("examples/c-only through pkg-config", function()
  local dest, target
  before_each(function()
    target = H.tmpdir("c-only-pc")
  end)
  after_each(H.cleanup)

  --- The sysroot and the pkg-config environment of an installed copy:
  -- this checkout's `make install DESTDIR=...`, or the one installcheck runs on.
  local function installed()
    if H.INSTALLED then
      return H.INSTALLED, LIB.pc
    end
    dest = H.tmpdir("destdir")
    local ok, out = H.make("install DESTDIR=" .. q(dest))
    assert(ok, out)
    return dest, run("find " .. q(dest) .. " -name atomicwriter.pc"):match("[^\n]+")
  end

  local function pkg_config(root, pc, args)
    return "PKG_CONFIG_SYSROOT_DIR=" .. q(root) .. " PKG_CONFIG_PATH=" .. q(pc:match("^(.*)/")) ..
      " PKG_CONFIG_LIBDIR=/nonexistent pkg-config " .. args .. " atomicwriter"
  end

  local name = "builds against a DESTDIR (make install's files), dynamically and with --static, and runs"
  if not (LIB.shared and H.has("pkg-config cc")) then
    pending(name .. " (" .. (LIB.why or "pkg-config and cc are needed") .. ")")
    return
  end
  it(name, function()
    local root, pc = installed()
    assert(pc, "no atomicwriter.pc under " .. root)
    if not H.INSTALLED then   -- this checkout's make install: all of it
      local v = setting("LUA_VERSION")
      local want = { "bin/atomicwriter", "include/atomicwriter.h", "lib/libatomicwriter.a",
        "lib/libatomicwriter.so", "lib/libatomicwriter.so.1", "lib/libatomicwriter.so.1.0.0",
        "lib/lua/" .. v .. "/atomicwriter/core.so", "lib/pkgconfig/atomicwriter.pc",
        "share/atomicwriter/types/atomicwriter.lua",
        "share/doc/atomicwriter/CHANGELOG.md", "share/doc/atomicwriter/LICENSE",
        "share/lua/" .. v .. "/atomicwriter/init.lua", "share/man/man1/atomicwriter.1" }
      local got = run("cd " .. q(root .. "/usr/local") .. " && find . ! -type d | sed 's|^./||' | sort")
      assert.are.equal(table.concat(want, "\n") .. "\n", got)
      assert.are.equal(H.read("LICENSE"), H.read(root .. "/usr/local/share/doc/atomicwriter/LICENSE"))
    end
    local flags = run(pkg_config(root, pc, "--cflags --libs"))
    assert.truthy(starts(flags:match("%-I(%S+)"), root), flags)
    assert.truthy(starts(flags:match("%-L(%S+)"), root), flags)
    local bin = H.tmpdir("c-only-bin")
    local libdir = flags:match("%-L(%S+)")

    -- dynamic: the shared library from the DESTDIR (LD_LIBRARY_PATH)
    run("cc -std=c99 -Wall -Wextra -Werror -o " .. q(bin .. "/dynamic") .. " examples/c-only/main.c $(" ..
      pkg_config(root, pc, "--cflags --libs") .. ")")
    local ldd = run("LD_LIBRARY_PATH=" .. q(libdir) .. " ldd " .. q(bin .. "/dynamic"))
    assert.truthy(ldd:find("libatomicwriter.so.1 => " .. libdir .. "/libatomicwriter.so.1", 1, true), ldd)
    local env = "LD_LIBRARY_PATH=" .. q(libdir) .. " "
    assert.are.equal("changed\n", run(env .. q(bin .. "/dynamic") .. " " .. q(target .. "/") .. " 1 2>&1"))
    assert.are.equal("unchanged\n", run(env .. q(bin .. "/dynamic") .. " " .. q(target) .. " 1 2>&1"))

    -- static: pkg-config --static, linked -static, no dynamic section at all
    run("cc -std=c99 -Wall -Wextra -Werror -static -o " .. q(bin .. "/static") .. " examples/c-only/main.c $(" ..
      pkg_config(root, pc, "--static --cflags --libs") .. ")")
    assert.falsy(run("readelf -d " .. q(bin .. "/static")):find("NEEDED", 1, true))
    assert.are.equal("changed\n", run(q(bin .. "/static") .. " " .. q(target) .. " 2 2>&1"))
    assert.truthy(H.read(target .. "/app.conf"):find("release = 2\n", 1, true))
  end)
end)

describe("packagers' build flags", function()
  local name = "dpkg-buildflags' CPPFLAGS and CFLAGS reach every compile, LDFLAGS every link (make -n)"
  if not made then
    pending(name .. " (" .. settings .. ")")
    return
  end
  it(name, function()
    local flags = {
      CPPFLAGS = "-Wdate-time -D_FORTIFY_SOURCE=2",
      CFLAGS = "-g -O2 -fstack-protector-strong -Wformat -Werror=format-security",
      LDFLAGS = "-Wl,-z,relro",
    }
    if H.has("dpkg-buildflags") then
      for k in pairs(flags) do flags[k] = run("dpkg-buildflags --get " .. k):gsub("%s+$", "") end
    end
    assert.truthy(flags.CPPFLAGS:find("-D_FORTIFY_SOURCE=2", 1, true), flags.CPPFLAGS)
    assert.truthy(flags.LDFLAGS:find("-Wl,-z,relro", 1, true), flags.LDFLAGS)
    local out = run("make -n -B --no-print-directory all install DESTDIR=/nonexistent LUA=" .. q(H.LUA) ..
      " CC=cc CPPFLAGS=" .. q(flags.CPPFLAGS) .. " CFLAGS=" .. q(flags.CFLAGS) .. " LDFLAGS=" .. q(flags.LDFLAGS))
    out = out:gsub("\\\n", " ")
    local compiles, links = 0, 0
    for line in out:gmatch("[^\n]+") do
      if line:match("^cc ") then
        local is_compile = line:find(" -c ", 1, true)
        local want = is_compile and { flags.CPPFLAGS, flags.CFLAGS } or { flags.CFLAGS, flags.LDFLAGS }
        if not is_compile and line:find("%.c ") then   -- compiled and linked at once
          want[#want + 1] = flags.CPPFLAGS
        end
        for _, set in ipairs(want) do
          for flag in set:gmatch("%S+") do
            assert.truthy(line:find(" " .. flag .. " ", 1, true) or line:sub(-#flag - 1) == " " .. flag,
              flag .. " missing from:\n" .. line)
          end
        end
        if is_compile then compiles = compiles + 1 else links = links + 1 end
      end
    end
    print(("\n# %d compiles and %d links of `make all install`, each with the flags"):format(compiles, links))
    assert.is_true(compiles >= 14 and links >= 8, out)
  end)
end)

describe("the ABI check (make abi-check, abi/)", function()
  if not made then
    pending("make abi-check (" .. settings .. ")")
    return
  end
  if not H.has("abidw abidiff") then
    pending("make abi-check (abigail-tools is not installed)")
    return
  end

  it("finds the built library's ABI equal to the committed baseline's, or grown only", function()
    local out = run("make -s --no-print-directory abi-check LUA=" .. q(H.LUA))
    assert.truthy(out:find("abi-check: libatomicwriter.so.1 has the ABI of", 1, true) or
      out:find("abi-check: only additions", 1, true), out)
  end)

  local name = "fails for a grown struct, not with a new soname; passes for a function added #slow"
  if LUA_NAME ~= DEFAULT_LUA then
    pending(name .. " (the C library is the same under every Lua: runs under " .. DEFAULT_LUA .. ")")
    return
  end
  it(name, function()
    local copy = H.tmpdir("abi")
    -- what the Makefile needs to build the library (and include)
    run("tar cf - Makefile mk csrc abi examples fuzz | tar xf - -C " .. q(copy))
    local make = "make -s --no-print-directory -C " .. q(copy) .. " abi-check"
    local header = copy .. "/csrc/aw.h"
    local original = H.read(header)
    H.write_file(header, (original:gsub("\n(  long long gid;)", "\n  int added;\n%1", 1)))
    local ok, out = H.sh(make)
    assert.is_false(ok, out)
    assert.truthy(out:find("breaks the ABI of abi/libatomicwriter.so.1.abi", 1, true), out)
    assert.truthy(out:find("type size changed", 1, true), out)
    ok, out = H.sh(make .. " SOVERSION=2")
    assert(ok, out)
    assert.truthy(out:find("no baseline for libatomicwriter.so.2", 1, true), out)
    -- the header as it was, and one more function
    H.write_file(header, original)
    local f = assert(io.open(copy .. "/csrc/aw_hash.c", "ab"))
    f:write("\nAW_API int aw_abi_spec_added(void);\nAW_API int aw_abi_spec_added(void) { return 1; }\n")
    f:close()
    ok, out = H.sh(make)
    assert(ok, out)
    assert.truthy(out:find("abi-check: only additions", 1, true), out)
    assert.truthy(out:find("aw_abi_spec_added", 1, true), out)
  end)
end)

-- A rockspec is Lua assigning globals: read it in an empty environment.
local function rockspec(path)
  local text = assert(H.read(path), path)
  local env = {}
  local chunk
  if setfenv then
    chunk = assert(loadstring(text, "@" .. path))
    setfenv(chunk, env)
  else
    chunk = assert(load(text, "@" .. path, "t", env))
  end
  chunk()
  return env, text
end

local function release_rockspec()
  for name in lfs.dir("rockspec") do
    if name:match("^atomicwriter%-%d+%.%d+%.%d+%-%d+%.rockspec$") then return "rockspec/" .. name end
  end
end

describe("the release", function()
  local tmp
  before_each(function() tmp = H.tmpdir("release") end)
  after_each(H.cleanup)

  if not H.has("luarocks") then
    pending("the rockspecs (luarocks is not installed)")
    return
  end

  it("luarocks lint passes on every rockspec; the release rockspec's source is its version's tarball", function()
    local n = 0
    for name in lfs.dir("rockspec") do
      if name:match("%.rockspec$") then
        run("luarocks lint " .. q("rockspec/" .. name))
        local spec = rockspec("rockspec/" .. name)
        assert.are.same({ "lua >= 5.1, < 5.5" }, spec.dependencies, name)
        assert.falsy(spec.source.url:find("example%.invalid"), name)
        n = n + 1
      end
    end
    assert.are.equal(2, n)
    local spec = rockspec(assert(release_rockspec(), "no release rockspec"))
    local v = spec.version:match("^(.*)%-%d+$")
    assert.are.equal("https://github.com/atomicwriter/atomicwriter/archive/v" .. v .. ".tar.gz", spec.source.url)
    assert.are.equal("atomicwriter-" .. v, spec.source.dir)
  end)

  local has_git = H.sh("git rev-parse --verify -q HEAD >/dev/null")
  if not (made and has_git) then
    pending("make dist (" .. (made and "not a git checkout" or settings) .. ")")
    return
  end

  --- make dist; returns the tarball's path (in the checkout) and version.
  local function dist()
    local out = run("make -s --no-print-directory dist")
    local version = assert(setting("VERSION"))
    local tarball = "atomicwriter-" .. version .. ".tar.gz"
    assert.truthy(out:find(tarball, 1, true), out)
    return ROOT .. "/" .. tarball, version
  end

  it("make dist: HEAD's files under atomicwriter-VERSION/ but CI's and git's own; the rockspec's sources in it", function()
    local tarball, version = dist()
    local top = "atomicwriter-" .. version .. "/"
    local got = {}
    for line in run("tar tzf " .. q(tarball)):gmatch("[^\n]+") do
      assert.truthy(starts(line, top), line)
      if not line:match("/$") then got[#got + 1] = line:sub(#top + 1) end
    end
    table.sort(got)
    local want = {}
    for path in run("git ls-tree -r --name-only HEAD"):gmatch("[^\n]+") do
      if not (starts(path, ".ci/") or path == ".gitattributes" or path == ".gitignore") then
        want[#want + 1] = path
      end
    end
    table.sort(want)
    assert.are.same(want, got)
    local listed = {}
    for _, path in ipairs(got) do listed[path] = true end
    local spec = rockspec(assert(release_rockspec()))
    assert.are.equal(version .. "-1", spec.version, "the release rockspec is the version's")
    for _, module in pairs(spec.build.modules) do
      for _, src in ipairs(type(module) == "table" and module.sources or { module }) do
        assert.is_true(listed[src], src .. " (rockspec) is not in the tarball")
      end
    end
    for _, path in pairs(spec.build.install.bin) do assert.is_true(listed[path], path) end
    assert.is_true(listed[spec.test.script], spec.test.script)
    os.remove(tarball)
  end)

  local name = "the release rockspec, pointed at the tarball (file://), builds into a tree offline, " ..
    "passes luarocks test there, and the tree's atomicwriter --version answers #slow"
  if LUA_NAME ~= DEFAULT_LUA then
    pending(name .. " (a build of several minutes: runs under " .. DEFAULT_LUA .. ")")
    return
  end
  it(name, function()
    local tarball, version = dist()
    run("mv " .. q(tarball) .. " " .. q(tmp .. "/"))
    local _, text = rockspec(assert(release_rockspec()))
    local local_spec = tmp .. "/atomicwriter-" .. version .. "-1.rockspec"
    local url = "file://" .. tmp .. "/atomicwriter-" .. version .. ".tar.gz"
    local n
    text, n = text:gsub('\n  url = "[^"]*",', '\n  url = "' .. url .. '",', 1)
    assert.are.equal(1, n)
    H.write_file(local_spec, text)
    local tree = tmp .. "/tree"
    local lr = "luarocks --lua-version 5.4 --tree " .. q(tree)
    run("cd " .. q(tmp) .. " && " .. lr .. " build --deps-mode=none " .. q(local_spec) .. " 2>&1")
    local cli = tree .. "/bin/atomicwriter"
    assert.are.same({ "luaopen_atomicwriter_core" }, keys(exported(tree .. "/lib/lua/5.4/atomicwriter/core.so")))
    -- luarocks test of the tarball's specs against the tree (spec/helpers.lua's AW_*)
    run("cd " .. q(tmp) .. " && tar xzf " .. q("atomicwriter-" .. version .. ".tar.gz"))
    local env = "AW_INSTALLED=" .. q(tree) .. " AW_CPATH=" .. q(tree .. "/lib/lua/5.4/?.so") ..
      " AW_LPATH=" .. q(tree .. "/share/lua/5.4/?.lua;" .. tree .. "/share/lua/5.4/?/init.lua") ..
      " AW_CLI=" .. q(cli) .. " "
    local out = run("cd " .. q(tmp .. "/atomicwriter-" .. version) .. " && " .. env .. lr ..
      " test " .. q(local_spec) .. " spec/02-write_spec.lua spec/10-read_spec.lua spec/13-cli_spec.lua " ..
      "spec/30-release_spec.lua 2>&1")
    assert.truthy(out:find("0 failures / 0 errors", 1, true), out)
    assert.truthy(out:find("%d+ successes"), out)
    -- the installed-copy check ran there (it is pending only without AW_INSTALLED)
    assert.falsy(out:find("make installcheck DESTDIR=d", 1, true), out)
    -- the tree's paths, as `luarocks path` gives them to a user of that tree
    assert.are.equal("atomicwriter " .. version .. "\n",
      run("eval \"$(" .. lr .. " path)\" && " .. q(cli) .. " --version"))
  end)
end)

describe("an installed copy", function()
  local name = "loads atomicwriter, atomicwriter.core and the CLI from where it is installed, " ..
    "nothing from the checkout's lua/, csrc/, build/ or bin/"
  if not H.INSTALLED then
    pending(name .. " (make install DESTDIR=d && make installcheck DESTDIR=d)")
    return
  end
  it(name, function()
    local root = H.INSTALLED
    for template in package.path:gmatch("[^;]+") do
      assert.falsy(template:find("^%./lua/") or starts(template, ROOT .. "/lua/"), package.path)
    end
    for template in package.cpath:gmatch("[^;]+") do
      assert.falsy(template:find("^%./csrc/") or template:find("^%./build/") or
        starts(template, ROOT .. "/csrc/") or starts(template, ROOT .. "/build/"), package.cpath)
    end
    assert.truthy(starts(H.searchpath("atomicwriter", package.path), root), package.path)
    assert.truthy(starts(H.searchpath("atomicwriter.core", package.cpath), root), package.cpath)
    local aw = require("atomicwriter")
    assert.truthy(starts(debug.getinfo(aw.write, "S").source, "@" .. root), debug.getinfo(aw.write, "S").source)
    -- a child interpreter (spec/helpers.lua's H.ENV): its paths lead there too
    local ok, out = H.lua("print(package.path) print(package.cpath)")
    assert(ok, out)
    local lpath, cpath = out:match("^([^\n]*)\n([^\n]*)")
    assert.truthy(starts(H.searchpath("atomicwriter", lpath), root), lpath)
    assert.truthy(starts(H.searchpath("atomicwriter.core", cpath), root), cpath)
    -- the command-line tool
    assert.truthy(starts(os.getenv("AW_CLI"), root), tostring(os.getenv("AW_CLI")))
    local target = H.tmpdir("installed")
    run("mkdir " .. q(target .. "/src") .. " " .. q(target .. "/out") .. " && echo hi > " .. q(target .. "/src/a"))
    run(H.ENV .. H.CLI .. " project " .. q(target .. "/src") .. " " .. q(target .. "/out") .. " 2>&1")
    assert.are.equal("hi\n", H.read(target .. "/out/a"))
    H.cleanup()
  end)
end)
