-- spec/budget_calls.lua - the calls whose cost spec/24-budgets_spec.lua
-- holds to spec/budgets.lua: `LUA spec/budget_calls.lua OP DIR N` makes N
-- calls of operation OP in DIR and nothing else after loading the module
-- and building the payload (both the same whatever N, so that the
-- difference of two runs with different N is the cost of the calls alone).
--   w5      first publish of one 100-byte file, into DIR/t1 .. DIR/tN
--           (made beforehand, empty)
--   w1      first publish of 1000 files x 1 KiB in 10 subdirectories,
--           into DIR/t1 .. DIR/tN
--   update  DIR/t0 holds a one-file payload; each call writes the other of
--           two 100-byte contents (one file changed)
--   noop    DIR/t0 holds the 1000-file payload; each call writes it again
-- DIR/t0 is written once before the calls (whatever N, N = 0 included)
-- and left to settle for 0.1 s.
-- Runs under Lua 5.1-5.4 and LuaJIT; LUA_CPATH must find atomicwriter.core.
local aw = require("atomicwriter")

local op, dir, n = arg[1], arg[2], tonumber(arg[3])
assert(op and dir and n, "usage: budget_calls.lua w5|w1|update|noop DIR N")

local function payload(files, size, subdirs, variant)
  local p = {}
  local per = subdirs > 0 and files / subdirs or files
  for i = 0, files - 1 do
    local name = subdirs > 0 and string.format("d%02d/f%04d", math.floor(i / per), i)
      or string.format("f%04d", i)
    local head = string.format("%s%07d\n", variant, i)
    p[name] = head .. string.rep("x", size - #head)
  end
  return p
end

local function write(target, files, want_changed)
  local changed, err = aw.write(target, files, { sync = false })
  if changed == nil then
    error(target .. ": " .. tostring(err))
  end
  if changed ~= want_changed then
    error(target .. ": changed = " .. tostring(changed) .. ", expected " .. tostring(want_changed))
  end
end

local opts_one = op == "w5" or op == "update"
local a = opts_one and payload(1, 100, 0, "a") or payload(1000, 1024, 10, "a")
local b = op == "update" and payload(1, 100, 0, "b")
if op == "update" or op == "noop" then
  write(dir .. "/t0", a, true)
  -- the comparison trusts what it saw only once its mtime lies 20 ms in
  -- the past (aw_compare.c, is_settled): wait, so every run counts the same
  os.execute("sleep 0.1")
  local cur = a
  for _ = 1, n do
    if b then
      cur = cur == a and b or a
      write(dir .. "/t0", cur, true)
    else
      write(dir .. "/t0", a, false)
    end
  end
elseif op == "w5" or op == "w1" then
  for k = 1, n do
    write(dir .. "/t" .. k, a, true)
  end
else
  error("unknown operation " .. op)
end
