-- Contract, Guarantee 7: writers on one target serialize on the target's
-- lock; opts.timeout bounds the wait (code "busy").
local aw = require("atomicwriter")
local H = require("helpers")

describe("the writer lock #nosanitize", function()
  local target
  before_each(function() target = H.tmpdir("lock") end)
  after_each(H.cleanup)

  -- Holds the target's lock from another process (flock(1)) until released.
  local function hold_lock(seconds)
    local ready = target .. ".ready"
    os.execute(("flock %s sh -c 'touch %s; sleep %s' >/dev/null 2>&1 &"):format(
      H.quote(target), H.quote(ready), seconds))
    for _ = 1, 500 do
      if H.lstat(ready) then os.remove(ready) return end
      H.sh("sleep 0.01")
    end
    error("the lock holder did not start")
  end

  it("gives up after opts.timeout with code busy while another process holds it", function()
    assert.is_true(aw.write(target, { a = "1" }))
    hold_lock(3)
    local t0 = H.now_ms()
    local ok, msg, code = aw.write(target, { a = "2" }, { timeout = 0.3 })
    local waited = H.now_ms() - t0
    assert.is_nil(ok)
    assert.are.equal("busy", code)
    assert.truthy(msg:find(target, 1, true), msg)
    assert.is_true(waited >= 280 and waited < 2500, "waited " .. waited .. " ms")
    assert.are.equal("1", H.read(target .. "/a"))
    ok, msg, code = aw.write(target, { a = "2" }, { timeout = 0 })
    assert.are.equal("busy", code, msg)
  end)

  it("waits for the holder when no timeout is given, then writes", function()
    hold_lock(0.5)
    local t0 = H.now_ms()
    assert.is_true(aw.write(target, { a = "after" }))
    assert.is_true(H.now_ms() - t0 >= 300)
    assert.are.equal("after", H.read(target .. "/a"))
  end)

  it("waits for the holder when the timeout is an integer too long for milliseconds", function()
    if not math.maxinteger then
      pending("integers: Lua 5.3 and later")
      return
    end
    -- a table spec and a writer object: init.lua's conversion, not the binding's
    for _, write in ipairs({
      function() return aw.write(target, { a = { data = "int" } }, { timeout = math.maxinteger }) end,
      function() return aw.new(target, { timeout = math.tointeger(2 ^ 62) }):write({ a = "writer" }) end,
    }) do
      hold_lock(0.5)
      local t0 = H.now_ms()
      local ok, msg = write()
      assert.is_true(ok, msg)
      assert.is_true(H.now_ms() - t0 >= 300)
    end
    assert.are.equal("writer", H.read(target .. "/a"))
  end)

  it("is not left behind: no lock file, and a killed holder releases it", function()
    assert.is_true(aw.write(target, { a = "1" }))
    H.assert_layout(target, { a = "1" })
    os.execute(("flock %s sleep 30 >/dev/null 2>&1 & echo $! > %s"):format(H.quote(target), H.quote(target .. ".pid")))
    H.sh("sleep 0.2")
    local pid = H.read(target .. ".pid"):match("%d+")
    assert.are.equal("busy", select(3, aw.write(target, { a = "2" }, { timeout = 0 })))
    os.execute("pkill -9 -P " .. pid .. " 2>/dev/null; kill -9 " .. pid .. " 2>/dev/null")
    H.sh("sleep 0.2")
    assert.is_true(aw.write(target, { a = "2" }, { timeout = 2 }))
    os.remove(target .. ".pid")
  end)

  it("serializes two processes writing 100 times each: one payload, whole", function()
    local script = [[
      local aw = require("atomicwriter")
      local target, id = %q, %q
      local collisions = 0
      for i = 1, 100 do
        local payload = { who = id, n = tostring(i), ["d/" .. id] = id .. i, ["d/common"] = id }
        local ok, msg, code = aw.write(target, payload, { timeout = 0, sync = false })
        if code == "busy" then
          collisions = collisions + 1
          ok, msg, code = aw.write(target, payload, { sync = false })
        end
        if ok ~= true then error("write " .. i .. ": " .. tostring(msg)) end
      end
      print("collisions " .. collisions)
    ]]
    local p1 = H.spawn(H.lua_cmd(script:format(target, "one")))
    local p2 = H.spawn(H.lua_cmd(script:format(target, "two")))
    local ok1, out1 = H.finish(p1)
    local ok2, out2 = H.finish(p2)
    assert.is_true(ok1, out1)
    assert.is_true(ok2, out2)
    local c1, c2 = tonumber(out1:match("collisions (%d+)")), tonumber(out2:match("collisions (%d+)"))
    print(("# lock: 200 writes, %d collisions (a writer found the lock held)"):format(c1 + c2))
    local who = H.read(target .. "/who")
    assert.truthy(who == "one" or who == "two")
    H.assert_layout(target, { who = who, n = "100", ["d/" .. who] = who .. "100", ["d/common"] = who })
  end)
end)
