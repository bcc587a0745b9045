-- stack_sysbench.lua - a sysbench script (Debian's sysbench runs LuaJIT
-- on worker threads with 64 KiB C stacks by default) that writes,
-- compares and reads with the module, as a host whose 64 KiB stacks a
-- 64 KiB buffer on the stack once overflowed did: each
-- thread projects into its own target; every event publishes a payload
-- (a 100 KB file compared by reading), writes it again (a no-op),
-- reads it back and has an invalid payload refused. Run by
-- spec/19-stack_spec.lua under LUA=luajit when sysbench is installed:
--   AW_ROOT=$PWD AW_TARGETS=DIR sysbench spec/stack_sysbench.lua \
--     --threads=2 --events=200 --time=0 [--thread-stack-size=64K] run
local root = os.getenv("AW_ROOT")
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. package.path
package.cpath = (os.getenv("AW_CPATH") or root .. "/build/luajit/?.so") .. ";" .. package.cpath
local aw, target, n

function thread_init()
  aw = require("atomicwriter")
  target = os.getenv("AW_TARGETS") .. "/t" .. sysbench.tid
  assert(os.execute("mkdir -p '" .. target .. "'"))
  n = 0
end

function event()
  n = n + 1
  local payload = { ["big.bin"] = ("x"):rep(100000), ["conf/n"] = tostring(n % 3), a = "a" }
  assert(aw.write(target, payload, { sync = false }) ~= nil)
  assert(aw.write(target, payload, { sync = false }) == false)
  local files = assert(aw.read(target))
  assert(files["conf/n"].data == tostring(n % 3))
  local _, msg, code = aw.write(target, { ["../x"] = "x" })
  assert(code == "invalid", msg)
end
