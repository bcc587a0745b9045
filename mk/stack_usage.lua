-- stack_usage.lua - bounds the C stack that the core and the binding need,
-- from gcc's call graph (-fcallgraph-info=su: one .ci file per object,
-- each function's frame size and the calls it makes after inlining).
--
-- Usage: lua mk/stack_usage.lua FRAME_LIMIT CHAIN_LIMIT aw.h FILE.ci...
-- Fails (exit 1) on: a frame over FRAME_LIMIT bytes; a frame whose size
-- is dynamic and unbounded (alloca, a variable-length array); a call
-- through a pointer in the binding; recursion among our functions
-- (a cycle has no bound); a chain of our frames, from any function no
-- other of ours calls (the API, the binding's Lua entries), over
-- CHAIN_LIMIT bytes; a function aw.h declares that is not in the graph
-- (a renamed file, a changed .ci format). Frames of the C library and of the Lua API are not
-- in the graph: CHAIN_LIMIT leaves room for them below the 16 KiB budget,
-- and spec/16-stack_spec.lua measures a whole run, theirs included.
-- A call through a pointer in the core (aw_walk's visitor) is bounded as
-- a call of any core function that no function of ours calls directly:
-- that is what a callback whose address is taken looks like in the graph
-- (aw_walk's visitors, qsort's comparators). One also called directly
-- would escape this; the binding has no such calls.
-- Prints the deepest frame and the deepest chain. Runs under Lua 5.1-5.4.

local frame_limit = tonumber(arg[1])
local chain_limit = tonumber(arg[2])
if not frame_limit or not chain_limit or not arg[4] then
  io.stderr:write("usage: stack_usage.lua FRAME_LIMIT CHAIN_LIMIT aw.h FILE.ci...\n")
  os.exit(2)
end

-- The public API: every function aw.h declares.
local api = {}
do
  local f = assert(io.open(arg[3]))
  local text = f:read("*a"):gsub("/%*.-%*/", "")   -- declarations, not comments
  f:close()
  for name in text:gmatch("[%w_]+%s*%*?%s*(aw_[%w_]+)%s*%(") do api[name] = true end
end

local nodes = {}     -- title -> { name, where, size, kind }
local calls = {}     -- title -> { title = true, ... }
local called = {}    -- title -> true when one of our functions calls it
local problems = {}

local function problem(fmt, ...)
  problems[#problems + 1] = string.format(fmt, ...)
end

for i = 4, #arg do
  local f = assert(io.open(arg[i]))
  for line in f:lines() do
    local title, label = line:match('^node: { title: "([^"]*)" label: "([^"]*)"')
    if title then
      local name, where, size, kind = label:match("^(.-)\\n(.-)\\n(%d+) bytes %((.-)%)")
      if size then   -- one of ours: compiled here, with a frame size
        nodes[title] = { name = name, where = where, size = tonumber(size), kind = kind }
        calls[title] = calls[title] or {}
      end
    end
    local from, to = line:match('^edge: { sourcename: "([^"]*)" targetname: "([^"]*)"')
    if from then
      calls[from] = calls[from] or {}
      calls[from][to] = true
    end
  end
  f:close()
end
if not next(nodes) then
  io.stderr:write("stack_usage.lua: no function with a frame size in the .ci files\n")
  os.exit(2)
end

-- Frames: their size, and whether gcc could bound it.
local deepest_frame
for title, n in pairs(nodes) do
  if n.kind:find("dynamic") and not n.kind:find("bounded") then
    problem("%s (%s): frame of dynamic, unbounded size", n.name, n.where)
  end
  if n.size > frame_limit then
    problem("%s (%s): frame of %d bytes, over the limit of %d", n.name, n.where, n.size, frame_limit)
  end
  if not deepest_frame or n.size > nodes[deepest_frame].size then
    deepest_frame = title
  end
  for to in pairs(calls[title]) do
    if nodes[to] then called[to] = true end
  end
end

-- Calls through a pointer: to any core function none of ours calls.
local callbacks = {}
for title in pairs(nodes) do
  if not called[title] and not api[title] and not nodes[title].where:find("aw_lua%.c:") then
    callbacks[#callbacks + 1] = title
  end
end
table.sort(callbacks)
for title, n in pairs(nodes) do
  if calls[title]["__indirect_call"] then
    if n.where:find("aw_lua%.c:") then
      problem("%s (%s): a call through a pointer in the binding", n.name, n.where)
    else
      local names = {}
      for _, cb in ipairs(callbacks) do
        if cb ~= title then
          calls[title][cb] = true
          called[cb] = true
          names[#names + 1] = nodes[cb].name
        end
      end
      print(string.format("stack usage: %s calls through a pointer, bounded as a call of any of: %s",
        n.name, table.concat(names, ", ")))
    end
  end
end

-- Chains: the most stack any call from a function needs, in our frames.
local worst, next_in_chain, state = {}, {}, {}
local function chain(title, path)
  if state[title] == "done" then return worst[title] end
  if state[title] == "open" then
    local names = {}
    for _, t in ipairs(path) do names[#names + 1] = nodes[t].name end
    names[#names + 1] = nodes[title].name
    problem("recursion, so no bound: %s", table.concat(names, " -> "))
    return 0
  end
  state[title] = "open"
  path[#path + 1] = title
  local best, best_to = 0, nil
  for to in pairs(calls[title]) do
    if nodes[to] then
      local w = chain(to, path)
      if w > best then best, best_to = w, to end
    end
  end
  path[#path] = nil
  state[title] = "done"
  worst[title] = nodes[title].size + best
  next_in_chain[title] = best_to
  return worst[title]
end

-- Entries: what no function of ours calls (the binding's Lua functions,
-- callbacks), and the public API.
local roots = {}
for title in pairs(nodes) do
  chain(title, {})
  if not called[title] or api[title] then roots[#roots + 1] = title end
end
for name in pairs(api) do
  if not nodes[name] then problem("%s, declared in aw.h, is not in the call graph", name) end
end
table.sort(roots, function(a, b)
  if worst[a] ~= worst[b] then return worst[a] > worst[b] end
  return a < b
end)

local function describe(title)
  local parts, t = {}, title
  while t do
    parts[#parts + 1] = string.format("%s %d", nodes[t].name, nodes[t].size)
    t = next_in_chain[t]
  end
  return table.concat(parts, " -> ")
end

local top = nodes[deepest_frame]
print(string.format("stack usage: deepest frame %s (%s) %d bytes (limit %d)",
  top.name, top.where, top.size, frame_limit))
print(string.format("stack usage: deepest chain %d bytes (limit %d): %s",
  worst[roots[1]], chain_limit, describe(roots[1])))
print("stack usage: each entry (aw.h's API, and what none of ours calls), its deepest chain in bytes:")
for _, title in ipairs(roots) do
  print(string.format("  %6d  %s", worst[title], nodes[title].name))
  if worst[title] > chain_limit then
    problem("%s: a chain of %d bytes, over the limit of %d: %s", nodes[title].name,
      worst[title], chain_limit, describe(title))
  end
end
for _, p in ipairs(problems) do
  print("stack usage: FAIL " .. p)
end
if #problems > 0 then os.exit(1) end
print(string.format("stack usage: ok, %d functions", (function()
  local n = 0
  for _ in pairs(nodes) do n = n + 1 end
  return n
end)()))
