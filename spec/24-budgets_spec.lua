-- The cost of a call, counted rather than timed (issue 18): the system
-- calls of each operation of spec/budget_calls.lua by strace, and the
-- instructions of a one-file write and of a 1000-file no-op by callgrind,
-- held to spec/budgets.lua. Each count is the difference of two runs with
-- different numbers of calls, divided by the difference: the interpreter's
-- start-up, the module's loading, building the payload and the first
-- write of the target cancel out. Deterministic on a loaded machine.
-- A failure names the budget, the count and the excess; change a budget
-- in spec/budgets.lua only with the reason for the new number.
local H = require("helpers")

local BUDGETS_FILE = "spec/budgets.lua"
local budgets = dofile(BUDGETS_FILE)
local q = H.quote

-- The counts are those of the Linux build of the core: the portable build
-- (check-portable) and the sanitized one make other calls.
local function build_counted()
  if H.CPATH:find("portable", 1, true) or H.CPATH:find("sanitize", 1, true) then
    return false, "the budgets count the calls of the Linux build, not of " .. H.CPATH
  end
  return true
end

-- Runs `op` with n calls in a fresh directory under `wrap` (a command
-- prefix writing to `out`), with umask 022 (the umask decides whether a
-- mode needs an fchmod).
local function run_op(op, n, wrap)
  local dir = H.tmpdir("budget")
  local mk = { "mkdir " .. q(dir .. "/t0") }
  if op == "w5" or op == "w1" then
    for k = 1, n do mk[#mk + 1] = q(dir .. "/t" .. k) end
  end
  local ok, out = H.sh(table.concat(mk, " ") .. " && umask 022 && " .. H.ENV .. wrap .. " " ..
    H.LUA .. " spec/budget_calls.lua " .. op .. " " .. q(dir) .. " " .. n)
  assert(ok, out)
  H.sh("rm -rf " .. q(dir))
end

-- The system calls of `op` made n times: name -> count, from strace -c.
local function syscalls(op, n)
  local log = os.tmpname()
  run_op(op, n, "strace -f -qq -c -o " .. q(log))
  local counts = {}
  for line in io.lines(log) do
    local calls, name = line:match("^%s*[%d.]+%s+[%d.]+%s+%d+%s+(%d+)%s+%d*%s*([%w_]+)%s*$")
    if calls and name ~= "total" then counts[name] = tonumber(calls) end
  end
  os.remove(log)
  return counts
end

-- Memory management follows the allocator and the interpreter's collector,
-- not the module's algorithm: left out of the budgets.
local MEMORY = { brk = true, mmap = true, munmap = true, mremap = true, madvise = true, mprotect = true }

local sorted_keys = H.sorted_keys

local function check_syscalls(op)
  local b = budgets.syscalls[op]
  local n1, n2 = b.runs[1], b.runs[2]
  local c1, c2 = syscalls(op, n1), syscalls(op, n2)
  local per, names = {}, {}
  for k in pairs(c1) do names[k] = true end
  for k in pairs(c2) do names[k] = true end
  for k in pairs(b.calls) do names[k] = true end
  local problems, total, budget_total = {}, 0, 0
  for _, name in ipairs(sorted_keys(names)) do
    if not MEMORY[name] then
      local d = ((c2[name] or 0) - (c1[name] or 0)) / (n2 - n1)
      per[name] = d
      total = total + d
      local want = b.calls[name] and b.calls[name][1] or 0
      budget_total = budget_total + want
      if d ~= want then
        local whole = d == math.floor(d)
        problems[#problems + 1] = string.format("  %-12s %6s per call, budget %d (%s%s); %s", name,
          whole and string.format("%d", d) or string.format("%.2f", d), want,
          d > want and "+" or "", whole and string.format("%d", d - want) or string.format("%.2f", d - want),
          b.calls[name] and "budgeted for: " .. b.calls[name][2] or "no budget for it")
      end
    end
  end
  if #problems > 0 then
    local list = {}
    for _, name in ipairs(sorted_keys(per)) do
      if per[name] ~= 0 then list[#list + 1] = string.format("%s %g", name, per[name]) end
    end
    error(string.format(
      "system-call budget %q (%s): %g calls per call, budget %d (%+g)\n%s\n" ..
      "measured: %s\n" ..
      "(strace -f -c of spec/budget_calls.lua %s with %d and %d calls; memory calls left out.)\n" ..
      "More calls: remove them, or raise the budget in %s with the reason for each call.\n" ..
      "Fewer calls: lower the budget in %s (and say which call went).",
      op, b.what, total, budget_total, total - budget_total, table.concat(problems, "\n"),
      table.concat(list, ", "), op, n1, n2, BUDGETS_FILE, BUDGETS_FILE), 0)
  end
end

-- Instructions (callgrind's Ir) of `op` made n times.
local function instructions(op, n)
  local out = os.tmpname()
  run_op(op, n, "valgrind -q --tool=callgrind --callgrind-out-file=" .. q(out))
  local total
  for line in io.lines(out) do
    total = tonumber(line:match("^totals:%s+(%d+)")) or tonumber(line:match("^summary:%s+(%d+)")) or total
  end
  os.remove(out)
  return assert(total, "no totals in callgrind's output")
end

local function check_instructions(op)
  local b = budgets.instructions[op]
  local tol = budgets.instructions.tolerance
  local n1, n2 = b.runs[1], b.runs[2]
  local counts = {}
  for k = 1, b.median_of and b.median_of[1] or 1 do
    counts[k] = (instructions(op, n2) - instructions(op, n1)) / (n2 - n1)
  end
  table.sort(counts)
  local per = counts[math.ceil(#counts / 2)]
  local budget = b.budget[1]
  local excess = per / budget - 1
  if excess > tol then
    error(string.format(
      "instruction budget %q (%s): %.0f instructions per call, budget %d: %+.1f %% (tolerance %.0f %%)\n" ..
      "(callgrind of %s spec/budget_calls.lua %s with %d and %d calls; the median of %d.)\n" ..
      "Make it cheaper, or raise the budget in %s with the reason.",
      op, b.what, per, budget, 100 * excess, 100 * tol, H.LUA, op, n1, n2, #counts, BUDGETS_FILE), 0)
  end
  if excess < -tol then
    print(string.format("\n# instruction budget %q: %.0f per call, %.1f %% under the budget %d: " ..
      "lower it in %s", op, per, -100 * excess, budget, BUDGETS_FILE))
  end
end

describe("the cost of a call (spec/budgets.lua) #valgrind", function()
  after_each(H.cleanup)

  local counted, why = build_counted()
  for _, op in ipairs({ "w5", "update", "noop", "w1" }) do
    local name = "system calls of " .. op .. ": " .. budgets.syscalls[op].what
    if not counted then
      pending(name .. " (" .. why .. ")")
    else
      H.strace_it(name, function() check_syscalls(op) end)
    end
  end

  -- callgrind under the default Lua only: the counts include the
  -- interpreter's own work, which differs between versions, and valgrind
  -- costs seconds per run.
  local lua = H.LUA:match("[^/]*$")
  for _, op in ipairs({ "w5", "noop" }) do
    local name = "instructions of " .. op .. ": " .. budgets.instructions[op].what
    if not counted then
      pending(name .. " (" .. why .. ")")
    elseif lua ~= budgets.instructions.lua then
      pending(name .. " (counted under " .. budgets.instructions.lua .. " only, this is " .. lua .. ")")
    elseif not H.has("valgrind") then
      pending(name .. " (valgrind is not installed)")
    else
      it(name, function() check_instructions(op) end)
    end
  end
end)
