-- luacheck configuration (make lint-luacheck, part of make check): lua/, bin/,
-- spec/, bench/, examples/, types/, mk/. Every ignore below says why.

-- The module runs on Lua 5.1 to 5.4 and LuaJIT, and picks per version
-- (setfenv or load's env, unpack or table.unpack): the union of them all.
std = "max"

-- Long lines are test names and error messages, which read better whole;
-- the limit stops anything longer.
max_line_length = 150

ignore = {
  -- `not (x >= y)` is how a number is refused when it is NaN too:
  -- `x < y` is false for NaN and would let it through.
  "581",
}

files["spec"] = {
  std = "+busted",
  ignore = {
    -- A spec names every value a call returns, as the API documents them
    -- (ok, msg, code), also when it asserts only some; and it sets a
    -- reference to nil so that the collector can take the object.
    "311",
    -- A local helper takes the target or payload it works on by the same
    -- name as the enclosing block's (spec 18), and spec 09 rebinds the
    -- payloads A and B per sweep: the shadowing is the point.
    "421", "431",
  },
}

-- Run by spec/stack_host.c inside its C stack host, which defines these.
files["spec/stack_calls.lua"] = { read_globals = { "host_depth", "host_lock", "host_unlock" } }

-- A sysbench script (spec/19-stack_spec.lua runs it): sysbench calls the
-- global functions it defines, and gives it the global `sysbench`.
files["spec/stack_sysbench.lua"] = { globals = { "thread_init", "event" }, read_globals = { "sysbench" } }

-- Definitions for lua-language-server: functions without bodies, whose
-- arguments are there to be documented, on classes no code reads.
files["types"] = { ignore = { "212", "241" } }
