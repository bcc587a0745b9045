-- stack_calls.lua - every call of the Lua API, with its results checked,
-- for spec/stack_host.c to run on a thread with a small C stack
-- (spec/19-stack_spec.lua). Runs under Lua 5.1-5.4 and LuaJIT.
-- Arguments: the Lua path and the C path of the module (relative ones to
-- the project's root, the host's working directory), an empty target
-- directory. Returns the function that makes the calls, which
-- raises at the first result that is not the one due.
local lpath, cpath, target = ...
package.path = lpath .. ";" .. package.path
package.cpath = cpath
local aw = require("atomicwriter")

local function expect_fail(want_code, ok, msg, code)
  assert(ok == nil, "expected a failure, got " .. tostring(ok))
  assert(code == want_code, ("code %s, not %s: %s"):format(tostring(code), want_code, tostring(msg)))
  assert(type(msg) == "string" and msg:find(target, 1, true), tostring(msg))
  print("  " .. msg .. " (" .. code .. ")")
end

-- The deepest payload path the descriptors allow (stack_host.c's
-- host_depth: 2047 levels, 4095 bytes, where the limit allows).
local deep = ("d/"):rep(host_depth) .. "f"
local big = ("x"):rep(100000)
local payload = {
  a = "a", b = "b", c = "c", ["conf/d"] = "d", ["conf/e"] = "e", ["conf/f"] = "f",
  g = "g", h = "h", i = "i", j = "j",
  ["big.bin"] = { data = big, mode = "0600" },   -- compared by reading, not digest
}
local strings = { one = "1", ["two/2"] = "2" }   -- strings only: core.write_strings
local missing = target .. "/missing"
-- The first write syncs; the rest need not wait for the disk.
local NOSYNC = { sync = false }

-- The calls, for stack_host.c to make on its small thread (with -p, the
-- require above ran on the main thread).
return function()

  print("watch (inotify and polling), write first, update, no-op")
  local watcher = assert(aw.watch(target))
  local poller = assert(aw.watch(target, { poll = true }))
  -- A descriptor where the platform has one (inotify, kqueue), never when polling.
  assert((watcher:fd() ~= nil) == (aw.platform.watch ~= "poll") and not poller:fd())
  assert(aw.write(target, payload) == true)
  assert(aw.write(target, payload, NOSYNC) == false)
  payload["big.bin"].data = big:sub(1, -2) .. "y"   -- the last byte: read to the end
  assert(aw.write(target, payload, { sync = false, timeout = 5 }) == true)
  assert(aw.write(target, payload, NOSYNC) == false)
  -- The deep path only now: a no-op compare of it costs O(depth^2) opens
  -- (seconds), not stack.
  print("write the deepest path")
  payload[deep] = { data = "deep", mode = 292 }
  assert(aw.write(target, payload, NOSYNC) == true)
  local version = assert(aw.version(target))

  print("watch wait")
  if watcher:fd() then                       -- events: every version, in order
    assert(watcher:wait(5))                  -- the first
    assert(watcher:wait(5))                  -- the update
    assert(watcher:wait(5) == version)
  else                                       -- polling: what it saw, up to the last
    local seen
    repeat seen = watcher:wait(5) until seen == nil or seen == version
    assert(seen == version)
  end
  assert(watcher:wait(0) == nil)
  assert(poller:wait(5) == version)

  print("read")
  local files, v = assert(aw.read(target))
  assert(v == version and files["big.bin"].data == payload["big.bin"].data)
  assert(files[deep].data == "deep" and files[deep].mode == 292)
  local tree, skipped = assert(aw.read_tree(target .. "/..data"))
  assert(tree["conf/e"].data == "e" and skipped == 0)
  expect_fail("ENOENT", aw.read(missing))
  expect_fail("ENOENT", aw.read_tree(missing))
  expect_fail("ENOENT", aw.version(missing))

  print("clean_path")
  assert(aw.clean_path("./conf//d/") == "conf/d")
  assert(select(3, aw.clean_path("../x")) == "invalid")

  print("writer object, strings-only payload")
  local w = assert(aw.new(target, { log_context = "stack", sync = false }))
  assert(w:write(strings) == true)
  assert(w:write(strings) == false)
  assert(w:write(payload) == true)
  expect_fail("ENOENT", aw.new(missing))

  print("write (keep, changes), versions, read a kept version, rollback")
  local before = assert(aw.version(target))
  payload.a = "A"
  local ok, v2, changes = aw.write(target, payload, { sync = false, keep = 1, changes = true })
  assert(ok == true and v2 ~= before, tostring(v2))
  assert(changes.changed[1] == "a", "changes")
  local versions = assert(aw.versions(target))
  assert(#versions == 2 and versions[1].current and versions[2].name == before)
  local old = assert(aw.read(target, before))
  assert(old.a.data == "a")
  local rolled, v3 = aw.rollback(target, nil, NOSYNC)
  assert(rolled == true and v3 ~= v2, tostring(v3))
  assert(aw.read(target).a.data == "a")
  expect_fail("noversion", aw.rollback(target, "..2000_01_01_00_00_00.0", NOSYNC))
  expect_fail("ENOENT", aw.versions(missing))

  print("write failures: invalid, missing target, conflict, busy")
  expect_fail("invalid", aw.write(target, { ["../x"] = "x" }))
  expect_fail("invalid", aw.write(target, { a = { data = "x", mode = 644 } }))
  expect_fail("ENOENT", aw.write(missing, payload))
  local f = assert(io.open(target .. "/clash", "w"))
  f:close()
  expect_fail("conflict", aw.write(target, { clash = "x" }))
  os.remove(target .. "/clash")
  host_lock(target)
  expect_fail("busy", aw.write(target, { a = "a" }, { timeout = 0 }))
  expect_fail("busy", aw.write(target, { a = { data = "a", mode = "0600" } }, { timeout = 0 }))
  host_unlock()

  print("watch a missing target, close")
  expect_fail("ENOENT", aw.watch(missing))
  if aw.platform.watch ~= "poll" then         -- (polling sees the newest only)
    assert(watcher:wait(0))                   -- the strings version
    assert(watcher:wait(0))                   -- the payload again
    assert(watcher:wait(0))                   -- the write that kept one
  end
  assert(watcher:wait(0) == v3)               -- the rollback
  assert(watcher:wait(0) == nil)              -- no failure published
  watcher:close()
  poller:close()
  watcher:close()                             -- twice is safe
  assert(not pcall(watcher.wait, watcher))    -- closed: a programming error
  assert(not pcall(aw.write, 1, {}))          -- a raised error on this thread too
  print("ok")
end

