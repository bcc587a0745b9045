-- aw.watch: each published version reported exactly once, none missed,
-- the timeout honoured; it survives the target emptied and refilled.
local aw = require("atomicwriter")
local H = require("helpers")

-- Every version the watcher reports until it is quiet for `quiet` seconds.
local function drain(w, quiet)
  local got = {}
  for _ = 1, 10000 do
    local v = w:wait(quiet or 0.3)
    if not v then break end
    got[#got + 1] = v
  end
  return got
end

-- The build's own backend (inotify on Linux, kqueue on macOS and the BSDs,
-- poll in a portable build or elsewhere), then polling forced.
local modes = { aw.platform.watch, "poll" }
if modes[1] == "poll" then table.remove(modes) end

describe("aw.platform", function()
  it("names what this build uses where systems differ", function()
    local p = aw.platform
    assert.truthy(({ getdents64 = true, readdir = true })[p.listing])
    assert.truthy(({ getrandom = true, arc4random_buf = true, getentropy = true })[p.random])
    assert.truthy(({ syncfs = true, fsync = true })[p.sync])
    assert.truthy(({ inotify = true, kqueue = true, poll = true })[p.watch])
    assert.truthy(({ ["ficlone copy_file_range read"] = true, ["ficlone read"] = true,
      ["copy_file_range read"] = true, read = true })[p.copy])
  end)
end)

for _, mode in ipairs(modes) do
  describe("aw.watch (" .. mode .. ")", function()
    local target, opts
    before_each(function()
      target = H.tmpdir("watch")
      opts = { poll = mode == "poll" }
    end)
    after_each(H.cleanup)

    it("honours the timeout when nothing is published", function()
      local w = assert(aw.watch(target, opts))
      local t0 = H.now_ms()
      assert.is_nil(w:wait(0.3))
      local waited = H.now_ms() - t0
      assert.is_true(waited >= 280 and waited < 2000, "waited " .. waited .. " ms")
      assert.is_nil(w:wait(0))
      w:close()
    end)

    it("returns a version already published with wait(0), without waiting", function()
      local w = assert(aw.watch(target, opts))
      assert.is_true(aw.write(target, { a = "1" }))
      assert.are.equal(aw.version(target), w:wait(0))
      assert.is_nil(w:wait(0))
      w:close()
    end)

    it("does not report the version current when it starts", function()
      assert.is_true(aw.write(target, { a = "0" }))
      local w = assert(aw.watch(target, opts))
      assert.is_nil(w:wait(0.3))
      assert.is_true(aw.write(target, { a = "1" }))
      assert.are.equal(aw.version(target), w:wait(2))
      w:close()
    end)

    if mode == "inotify" then
      it("reports each of 50 writes by another process once, in order, none missed", function()
        local w = assert(aw.watch(target, opts))
        assert.is_number(w:fd())
        local ok, out = H.lua(([[
          local aw = require("atomicwriter")
          for i = 1, 50 do
            assert(aw.write(%q, { n = tostring(i), ["d/x"] = "x" }, { sync = false }))
            print(aw.version(%q))
            assert(aw.write(%q, { n = tostring(i), ["d/x"] = "x" }) == false)  -- no-op: no report
            aw.write(%q, { ["/bad"] = "x" })                                  -- refused: no report
          end
        ]]):format(target, target, target, target))
        assert(ok, out)
        local expected = {}
        for v in out:gmatch("[^\n]+") do expected[#expected + 1] = v end
        assert.are.equal(50, #expected)
        local got = drain(w)
        print(("# watch: 50 writes, %d reports"):format(#got))
        assert.are.same(expected, got)
        w:close()
      end)

      it("does not report a failed write's half-built version", function()
        assert.is_true(aw.write(target, { a = "1" }))
        local w = assert(aw.watch(target, opts))
        H.write_file(target .. "/b", "user file")
        assert.are.equal("conflict", select(3, aw.write(target, { a = "2", b = "x" })))
        assert.is_true(aw.write(target, { a = "3" }))
        assert.are.same({ aw.version(target) }, drain(w))
        w:close()
      end)
    elseif mode == "kqueue" then
      it("has a descriptor for event loops, readable after a write, and reports it", function()
        local w = assert(aw.watch(target, opts))
        assert.is_number(w:fd())
        for i = 1, 5 do
          assert.is_true(aw.write(target, { n = tostring(i) }))
          assert.are.equal(aw.version(target), w:wait(2))
        end
        assert.is_nil(w:wait(0.3))
        w:close()
      end)
    else
      it("has no descriptor and reports each version it sees once", function()
        local w = assert(aw.watch(target, opts))
        assert.is_nil(w:fd())
        local seen = {}
        for i = 1, 5 do
          assert.is_true(aw.write(target, { n = tostring(i) }))
          seen[#seen + 1] = aw.version(target)
          assert.are.equal(seen[#seen], w:wait(2))
        end
        assert.is_nil(w:wait(0.3))
        w:close()
      end)
    end

    it("survives the target emptied and filled again", function()
      local w = assert(aw.watch(target, opts))
      assert.is_true(aw.write(target, { a = "1" }))
      assert.are.equal(aw.version(target), w:wait(2))
      assert(H.sh("rm -rf " .. H.quote(target) .. "/* " .. H.quote(target) .. "/..?*"))
      assert.are.same({}, H.ls(target))
      assert.is_true(aw.write(target, { a = "2" }))
      assert.are.equal(aw.version(target), w:wait(2))
      w:close()
    end)

    it("survives the target directory removed and made again", function()
      local w = assert(aw.watch(target, opts))
      assert(H.sh("rm -rf " .. H.quote(target) .. " && mkdir " .. H.quote(target)))
      H.sh("sleep 0.3")
      assert.is_true(aw.write(target, { a = "again" }))
      assert.are.equal(aw.version(target), w:wait(3))
      assert.is_nil(w:wait(0.3))
      w:close()
    end)

    it("closes once, from close, __gc or __close alike", function()
      local w = assert(aw.watch(target, opts))
      w:close()
      w:close()
      assert.truthy(tostring(w):find("closed", 1, true))
      assert.has_error(function() w:wait(0) end)
      local _ = aw.watch(target, opts)
      _ = nil
      collectgarbage()
      collectgarbage()
    end)

    it("fails with nil, message, code for a missing target", function()
      local w, msg, code = aw.watch(target .. "/missing", opts)
      assert.is_nil(w)
      assert.are.equal("ENOENT", code)
      assert.truthy(msg:find(target .. "/missing", 1, true))
    end)
  end)
end

describe("a watcher's failure", function()
  after_each(H.cleanup)

  -- A build that polls (aw.platform.watch "poll") waits in nanosleep: no
  -- poll(2) to fail.
  local events_it = aw.platform.watch == "poll" and function(name)
    pending(name .. " (this build polls)")
  end or H.strace_it
  events_it("names the target and the log context, not the call (injected EIO on poll)", function()
    local target = H.tmpdir("watch")
    local ok, out = H.lua(([[
      local aw = require("atomicwriter")
      local w = assert(aw.watch(%q, { log_context = "ctx" }))
      print(tostring(w))
      print(w:wait(5))
    ]]):format(target), H.strace("-e inject=poll,ppoll:error=EIO"))
    assert(ok, out)
    assert.truthy(out:find("atomicwriter.watcher (" .. target .. ")\n", 1, true), out)
    assert.truthy(out:find("\nnil\tctx: " .. target .. ": ", 1, true), out)
    assert.truthy(out:find("\tEIO\n$"), out)
  end)
end)

-- watcher:fd() is the watcher's: a host polls it and never reads it. Some
-- hosts close it anyway (lsyncd on a reload), and the number may then name
-- another file: the watcher reads only its own duplicate, and close and
-- __gc close the number only while it still names the watcher's instance.
-- Checked from C (build/watch-fd, spec/watch_fd.c), where a host can close
-- a descriptor and take the number for another file.
if aw.platform.watch ~= "poll" then
  describe("a watcher whose host closed its descriptor", function()
    -- `make` builds it; a checkout `luarocks make` built has only the module.
    local built, why = H.make("build/watch-fd")
    if not built then
      pending("checked from C (cannot build build/watch-fd: " .. why .. ")")
      return
    end
    local target
    before_each(function() target = H.tmpdir("watch-fd") end)
    after_each(H.cleanup)

    local function run(pre, args)
      local ok, out = H.sh((pre or "") .. " ./build/watch-fd " .. H.quote(target) .. " " .. (args or ""))
      assert.is_nil(out:find("FAIL", 1, true), out)
      assert(ok, out)
      return out
    end

    it("still reports, and its close leaves alone the file that took the number", function()
      local out = run()
      assert.truthy(out:find("ok aw_watch_close left /dev/null open", 1, true), out)
      assert.truthy(out:find("ok and its own", 1, true), out)
    end)

    it("runs clean under valgrind: no error, no leak, no descriptor left #valgrind", function()
      local out = run("valgrind -q --error-exitcode=99 --leak-check=full --track-fds=yes 2>&1")
      -- every descriptor open at exit came from the shell (--track-fds)
      for fd, next_line in out:gmatch("Open file descriptor (%d+):[^\n]*\n([^\n]*)") do
        assert.truthy(next_line:find("inherited from parent", 1, true), "descriptor " .. fd .. " left open:\n" .. out)
      end
    end)

    -- The same through the binding's __gc, where LuaJIT's FFI lets a Lua
    -- host close a descriptor as lsyncd does.
    local has_ffi = pcall(require, "ffi")
    ;(has_ffi and it or pending)("is collected without closing the file that took the number (LuaJIT FFI)", function()
      local ffi = require("ffi")
      pcall(ffi.cdef, "int open(const char *path, int flags); int close(int fd); " ..
        "long read(int fd, void *buf, unsigned long n);")
      local w = assert(aw.watch(target))
      local fd = w:fd()
      assert.are.equal(0, ffi.C.close(fd))                 -- the host closes it
      H.write_file(target .. ".mine", "still mine")
      local mine = ffi.C.open(target .. ".mine", 0)         -- and takes the number
      assert.are.equal(fd, mine)
      assert.is_true(aw.write(target, { a = "1" }))
      assert.are.equal(aw.version(target), w:wait(5))      -- the watcher reads its own
      w = nil
      collectgarbage()
      collectgarbage()
      local buf = ffi.new("char[64]")
      assert.are.equal(10, tonumber(ffi.C.read(mine, buf, 64)), "the number is still open")
      assert.are.equal("still mine", ffi.string(buf, 10))
      ffi.C.close(mine)
    end)

    -- kcmp(2) tells the watcher's instance from any other; without it (a
    -- seccomp filter, a kernel without CONFIG_KCMP) the identity and
    -- /proc/self/fdinfo must match: any other file is still told apart,
    -- a twin inotify instance with the same watch is not (the documented
    -- limit, left out here).
    H.strace_it("tells another file apart without kcmp (injected ENOSYS)", function()
      local out = run(H.strace("-e inject=kcmp:error=ENOSYS"), "no-twin")
      assert.truthy(out:find("ok aw_watch_close left /dev/null open", 1, true), out)
    end)
  end)
end
