-- Test helpers shared by the specs: temporary targets, inspecting the
-- on-disk layout without following links, and child processes.
-- Debian has no luaposix for Lua 5.4; lfs (a busted dependency) and the
-- shell cover what the specs need.
-- Portable to Lua 5.1-5.4 and LuaJIT: under 5.1 and LuaJIT os.execute
-- returns a wait status (truthy even on failure) and a popen handle's close
-- returns true whatever the exit status, so check commands with H.sh, or
-- H.spawn and H.finish, never with `assert(os.execute(...))` or `p:close()`.
local lfs = require("lfs")
local assert = require("luassert")

local H = {}

-- busted's `it` and `pending` for the helpers below (a required module
-- does not see the spec file's environment, which holds them).
local busted = require("busted")

H.LUA = os.getenv("LUA") or "lua5.4"

-- The Lua C path entry (a "?" template) that finds atomicwriter.core:
-- AW_CPATH (spec/run.sh sets it from the Makefile), or else the first
-- entry of package.cpath that finds it, as busted's own require does
-- (.busted's cpath, luarocks test's).
local function module_cpath()
  local set = os.getenv("AW_CPATH")
  if set and set ~= "" then
    return (set:match("^[^;]+"))
  end
  for template in package.cpath:gmatch("[^;]+") do
    local f = io.open((template:gsub("%?", "atomicwriter/core")), "rb")
    if f then
      f:close()
      return template
    end
  end
  error("spec/helpers.lua: no atomicwriter.core on package.cpath: build it (make), or set AW_CPATH")
end
H.CPATH = module_cpath()
H.MODULE = H.CPATH:gsub("%?", "atomicwriter/core", 1)
H.is_root = (io.popen("id -u"):read("*l") == "0")

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
H.quote = q

-- What the specs test: this checkout by default, or an installed copy
-- (make installcheck, spec/30-release_spec.lua's rock), named by the
-- environment spec/run.sh passes on:
--   AW_CPATH      the Lua C path of atomicwriter.core for H.LUA (above)
--   AW_LPATH      the Lua path of atomicwriter (./lua/?.lua;./lua/?/init.lua)
--   AW_CLI        the installed command-line tool, run as a command;
--                 without it, bin/atomicwriter of this checkout under H.LUA
--   AW_INSTALLED  the root of the installed copy: the checkout's C build
--                 is not used (H.make), spec 30 checks nothing leaks in
H.LPATH = os.getenv("AW_LPATH") or "./lua/?.lua;./lua/?/init.lua"
H.CLI = os.getenv("AW_CLI") and q(os.getenv("AW_CLI")) or (H.LUA .. " bin/atomicwriter")
H.INSTALLED = os.getenv("AW_INSTALLED")

--- package.searchpath, which Lua 5.1 lacks: the first file of `path`
-- (";"-separated templates) that exists for module `name`.
function H.searchpath(name, path)
  local file = name:gsub("%.", "/")
  for template in path:gmatch("[^;]+") do
    local candidate = template:gsub("%?", file)
    local f = io.open(candidate, "rb")
    if f then
      f:close()
      return candidate
    end
  end
  return nil
end

--- Starts a shell command, its stdout and stderr to a pipe; H.finish(p)
-- waits for it. The exit status is printed after the output, since 5.1's
-- close does not report it.
function H.spawn(cmd)
  return assert(io.popen("exec 2>&1; (" .. cmd .. "\n); printf '\\n%d' $?"))
end

--- Waits for a command from H.spawn; returns ok (exit status 0), output.
function H.finish(p)
  local out = p:read("*a")
  p:close()
  local body, status = out:match("^(.*)\n(%d+)$")
  if not body then
    return false, out
  end
  return status == "0", body
end

--- Runs a shell command; returns ok (exit status 0), combined output.
function H.sh(cmd)
  return H.finish(H.spawn(cmd))
end

--- Runs a shell command; returns its exit status, stdout and stderr apart.
function H.exec(cmd)
  local errfile = os.tmpname()
  local p = assert(io.popen("(" .. cmd .. ") 2>" .. q(errfile) .. "; echo \"::status=$?\""))
  local out = p:read("*a")
  p:close()
  local err = H.read(errfile) or ""
  os.remove(errfile)
  local status = tonumber(out:match("::status=(%d+)\n$"))
  return status, (out:gsub("::status=%d+\n$", "")), err
end

--- Wall-clock milliseconds (os.time counts seconds, os.clock CPU time).
function H.now_ms()
  local p = io.popen("date +%s%3N")
  local t = tonumber(p:read("*l"))
  p:close()
  return t
end

local found = {}

--- True when every command named (space-separated) is installed.
function H.has(commands)
  if found[commands] == nil then
    local test = commands:gsub("%S+", "command -v %0 >/dev/null &&") .. " true"
    found[commands] = (H.sh(test)) and true or false
  end
  return found[commands]
end

--- True when strace is installed (the fault-injection specs need it).
function H.has_strace()
  return H.has("strace")
end

--- Builds a target of the Makefile for H.LUA (the examples, the digest's
-- vectors), for a checkout that `luarocks make` built, which has only the
-- module. Returns ok, output.
function H.make(target)
  if H.INSTALLED then
    return false, "the checkout's C build is not used against an installed copy (" .. H.INSTALLED .. ")"
  end
  if not H.has("make cc") then
    return false, "make and a C compiler (cc) are needed to build " .. target
  end
  return H.sh("make -s --no-print-directory " .. target .. " LUA=" .. q(H.LUA))
end

--- The shell prefix (H.lua's `pre`) that runs a child under strace with
-- strace's options `args` ("-f -e inject=syncfs:error=EIO"); the trace
-- goes to `log`, or nowhere.
function H.strace(args, log)
  return "strace -qq -o " .. (log and q(log) or "/dev/null") .. " " .. args
end

-- Tests that cannot run everywhere carry a busted tag, and are reported
-- pending with the reason where they cannot run (as luasystem's nix_it):
--   #strace  runs a child under strace (fault injection, system-call counts)
--   #root    needs root (owners, another user, mounts)
--   #slow    a stress or sweep of many processes and seconds, timing-bound:
--            memcheck and sanitize leave it out
--   #valgrind  runs valgrind itself (spec 11): not under valgrind or ASan
--   #nosanitize  runs programs (flock(1), pkill) that hang with ASan preloaded
-- `busted --exclude-tags=strace,root,slow` runs the rest.

--- `it` for a test that needs strace: tagged #strace, pending without it.
function H.strace_it(name, fn)
  if H.has_strace() then
    busted.it(name .. " #strace", fn)
  else
    busted.pending(name .. " #strace (strace is not installed)")
  end
end

--- `it` for a test that needs root: tagged #root, pending otherwise.
function H.root_it(name, fn)
  if H.is_root then
    busted.it(name .. " #root", fn)
  else
    busted.pending(name .. " #root (needs root)")
  end
end

--- The number of descriptors this process has open (Linux /proc).
function H.open_fds()
  local n = 0
  for _ in lfs.dir("/proc/self/fd") do n = n + 1 end
  return n
end

local made = {}

--- A new empty directory under /tmp, removed by H.cleanup().
function H.tmpdir(tag)
  local base = os.getenv("TMPDIR") or "/tmp"
  local ok, out = H.sh("mktemp -d " .. q(base .. "/aw-" .. (tag or "spec") .. ".XXXXXX"))
  assert(ok, out)
  local dir = out:gsub("%s+$", "")
  made[#made + 1] = dir
  return dir
end

function H.cleanup()
  for i = #made, 1, -1 do
    os.execute("chmod -R u+rwx " .. q(made[i]) .. " 2>/dev/null; rm -rf " .. q(made[i]))
    made[i] = nil
  end
end

function H.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

function H.write_file(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

--- lstat: attributes of the entry itself (a link is not followed).
function H.lstat(path)
  return lfs.symlinkattributes(path)
end

function H.readlink(path)
  local a = lfs.symlinkattributes(path)
  return a and a.mode == "link" and a.target or nil
end

--- Permission bits of `path` (following links) as an integer.
function H.mode(path)
  local a = lfs.attributes(path)
  if not a then return nil end
  local p, m = a.permissions, 0
  for i = 1, 9 do
    m = m * 2 + (p:sub(i, i) ~= "-" and 1 or 0)
  end
  return m
end

--- The keys of table `t`, sorted (a set's members, a payload's paths).
function H.sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

--- Names in a directory, sorted, without . and ..
function H.ls(dir)
  local names = {}
  for name in lfs.dir(dir) do
    if name ~= "." and name ~= ".." then names[#names + 1] = name end
  end
  table.sort(names)
  return names
end

--- The version directories (..YYYY_...) of a target.
function H.versions(target)
  local v = {}
  for _, name in ipairs(H.ls(target)) do
    if name:match("^%.%.%d%d%d%d_%d%d_%d%d_%d%d_%d%d_%d%d%.%w+$") and
        lfs.symlinkattributes(target .. "/" .. name).mode == "directory" then
      v[#v + 1] = name
    end
  end
  return v
end

--- Every file below `dir`, as relative path -> content (directories are
-- walked, nothing is followed; links are reported as "->target").
function H.files(dir, prefix, out)
  out = out or {}
  for _, name in ipairs(H.ls(dir)) do
    local rel = prefix and (prefix .. "/" .. name) or name
    local a = lfs.symlinkattributes(dir .. "/" .. name)
    if a.mode == "directory" then
      H.files(dir .. "/" .. name, rel, out)
    elseif a.mode == "link" then
      out[rel] = "->" .. a.target
    else
      out[rel] = H.read(dir .. "/" .. name)
    end
  end
  return out
end

--- Expected file contents of a payload (spec strings or tables), keyed
-- by the path as given.
function H.contents(payload)
  local t = {}
  for k, v in pairs(payload) do t[k] = type(v) == "table" and v.data or v end
  return t
end

--- Asserts the full layout for `payload` (keys already clean): ..data ->
-- the only version directory, no ..data_tmp, the version holds exactly
-- the payload, one link per top-level name. `others` lists user entries
-- that may also be present.
function H.assert_layout(target, payload, others)
  local versions = H.versions(target)
  assert.are.equal(1, #versions, "exactly one version directory")
  assert.are.equal(versions[1], H.readlink(target .. "/..data"))
  assert.is_nil(H.lstat(target .. "/..data_tmp"), "no ..data_tmp")
  assert.are.equal(tonumber("755", 8), H.mode(target .. "/..data"))
  assert.are.same(H.contents(payload), H.files(target .. "/" .. versions[1]))
  local tops = {}
  for path in pairs(payload) do tops[path:match("^[^/]+")] = true end
  local expect = { ["..data"] = true, [versions[1]] = true }
  for name in pairs(tops) do
    expect[name] = true
    assert.are.equal("..data/" .. name, H.readlink(target .. "/" .. name), "link of " .. name)
  end
  for _, name in ipairs(others or {}) do expect[name] = true end
  local manifest = H.lstat(target .. "/..manifest")   -- the writer's, when kept
  if manifest then
    assert.are.equal("file", manifest.mode, "..manifest is a regular file")
    assert.are.equal("rw-------", manifest.permissions, "..manifest is the writer's only")
    expect["..manifest"] = true
  end
  local got = {}
  for _, name in ipairs(H.ls(target)) do got[name] = true end
  assert.are.same(expect, got)
end

--- A snapshot of everything below `dir` (links not followed), to prove
-- that a refused write changed nothing.
function H.snapshot(dir)
  local ok, out = H.sh("cd " .. q(dir) .. " && find . -printf '%p %y %m %s %U %l\\n' | sort && " ..
    "find . -type f -exec md5sum {} + | sort")
  assert(ok, out)
  return out
end

--- Shell statements that give a child interpreter the tested copy's paths
-- and the module built for H.LUA.
H.ENV = "export LUA_PATH=" .. q(H.LPATH .. ";./spec/?.lua;;") .. " " ..
  "LUA_CPATH=" .. q(H.CPATH .. ";;") .. "; "

--- The shell command that runs Lua code in a child H.LUA with H.ENV;
-- `pre` comes right before the interpreter: shell statements ending in
-- ";" ("umask 077;") or a wrapper command ("strace -f").
function H.lua_cmd(code, pre)
  return H.ENV .. (pre or "") .. " " .. H.LUA .. " -e " .. q(code)
end

--- Runs Lua code in a child interpreter (see H.lua_cmd); returns ok, output.
function H.lua(code, pre)
  return H.sh(H.lua_cmd(code, pre))
end

--- Runs Lua code as user nobody (root only, through setpriv; `pre`: shell
-- statements before it, such as "umask 0777;"), with a
-- world-readable copy of the module: the checkout may sit in a directory
-- that nobody cannot enter.
function H.lua_as_nobody(code, pre)
  local dir = H.tmpdir("nobody")
  local init = assert(H.searchpath("atomicwriter", H.LPATH), "atomicwriter not found in " .. H.LPATH)
  local ok, out = H.sh("mkdir -p " .. q(dir .. "/atomicwriter") .. " && cp " .. q(init:match("^(.*)/")) ..
    "/*.lua " .. q(dir .. "/atomicwriter/") .. " && cp " .. q(H.MODULE) .. " " .. q(dir .. "/atomicwriter/") ..
    " && chmod -R a+rX " .. q(dir))
  assert(ok, out)
  return H.sh("cd / && " .. (pre or "") .. " LUA_PATH=" .. q(dir .. "/?/init.lua;;") .. " LUA_CPATH=" .. q(dir .. "/?.so;;") ..
    " setpriv --reuid=65534 --regid=65534 --clear-groups " .. H.LUA .. " -e " .. q(code))
end

return H
