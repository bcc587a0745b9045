--- bench/util.lua - what bench/run.lua and bench/trees.lua share: shell
-- commands, output, medians. bench/bench.mk puts bench/ on LUA_PATH.

local format = string.format

local M = {}

--- `s` quoted for sh.
function M.shq(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

--- Runs `cmd` under sh, stderr with stdout: its output, and whether it
-- succeeded.
function M.sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("*a")
  local ok = p:close()
  return out, ok
end

--- M.sh, raising (with the output) when `cmd` fails.
function M.must(cmd)
  local out, ok = M.sh(cmd)
  if not ok then error(cmd .. ": " .. out, 0) end
  return out
end

--- A formatted line on stdout, flushed.
function M.say(...)
  io.stdout:write(format(...), "\n")
  io.stdout:flush()
end

function M.sorted_copy(t)
  local s = {}
  for i = 1, #t do s[i] = t[i] end
  table.sort(s)
  return s
end

--- The q-quantile of the sorted list s (linear between neighbours).
function M.quantile(s, q)
  if #s == 0 then return nil end
  local x = (#s - 1) * q + 1
  local lo = math.floor(x)
  local hi = math.min(lo + 1, #s)
  return s[lo] + (s[hi] - s[lo]) * (x - lo)
end

function M.median(t)
  return M.quantile(M.sorted_copy(t), 0.5)
end

--- The interpreter running the script (arg[-1] and below), else `default`:
-- to start child processes with the same Lua.
function M.interpreter(default)
  local lua, i = default, -1
  while arg and arg[i] do
    lua = arg[i]
    i = i - 1
  end
  return lua
end

return M
