-- The command-line tool, end to end: project, read, watch, help, exit codes.
local aw = require("atomicwriter")
local H = require("helpers")

local CLI = H.CLI

-- Runs the CLI; returns exit status, stdout, stderr.
local function cli(args)
  local err = os.tmpname()
  local p = io.popen(H.ENV .. CLI .. " " .. args .. " 2>" .. H.quote(err) ..
    "; echo \"exit=$?\"")
  local out = p:read("*a")
  p:close()
  local stderr = H.read(err)
  os.remove(err)
  local status = tonumber(out:match("exit=(%d+)\n$"))
  return status, out:gsub("exit=%d+\n$", ""), stderr
end

describe("the atomicwriter command", function()
  local src, target
  before_each(function()
    src, target = H.tmpdir("src"), H.tmpdir("cli")
  end)
  after_each(H.cleanup)

  it("prints help and exits 0 with --help, for each command", function()
    for _, args in ipairs({ "--help", "project --help", "read --help", "watch --help", "help watch" }) do
      local status, out = cli(args)
      assert.are.equal(0, status, args)
      assert.truthy(out:find("usage: atomicwriter", 1, true), args)
    end
  end)

  it("exits 2 with the usage on a usage error", function()
    for _, args in ipairs({ "", "frobnicate", "project onlyone", "read", "watch " .. target,
      "project --bogus a b", "watch --timeout x " .. target .. " -- true" }) do
      local status, _, err = cli(args)
      assert.are.equal(2, status, args)
      assert.truthy(err:find("usage", 1, true) or args == "", args)
    end
  end)

  it("projects a directory tree with its modes, then reports it unchanged", function()
    assert(H.sh(("cd %s && mkdir -p conf/tls && printf 'a=1\\n' > app.conf && printf 'k' > conf/tls/key && " ..
      "chmod 600 conf/tls/key && printf '' > empty && chmod 755 app.conf"):format(H.quote(src))))
    local status, out, err = cli("project " .. H.quote(src) .. " " .. H.quote(target))
    assert.are.equal(0, status, err)
    assert.truthy(out:find("^published %.%.%d"), out)
    H.assert_layout(target, { ["app.conf"] = "a=1\n", ["conf/tls/key"] = "k", empty = "" })
    assert.are.equal(tonumber("600", 8), H.mode(target .. "/conf/tls/key"))
    assert.are.equal(tonumber("755", 8), H.mode(target .. "/app.conf"))
    status, out = cli("project --no-sync " .. H.quote(src) .. " " .. H.quote(target))
    assert.are.equal(0, status)
    assert.truthy(out:find("^unchanged %.%.%d"), out)
  end)

  it("skips symlinks and special files in the source with a warning, never opening them", function()
    assert(H.sh(("cd %s && echo x > f && ln -s /etc/passwd link && mkfifo fifo"):format(H.quote(src))))
    local status, _, err = cli("project " .. H.quote(src) .. " " .. H.quote(target))
    assert.are.equal(0, status, err)
    assert.truthy(err:find("skipped 2", 1, true), err)
    H.assert_layout(target, { f = "x\n" })
  end)

  it("exits 1 with the message naming the path on a failure", function()
    local status, _, err = cli("project " .. H.quote(src) .. " " .. H.quote(target .. "/missing"))
    assert.are.equal(1, status)
    assert.truthy(err:find(target .. "/missing", 1, true), err)
    assert.truthy(err:find("ENOENT", 1, true), err)
    status, _, err = cli("project " .. H.quote(src .. "/nope") .. " " .. H.quote(target))
    assert.are.equal(1, status)
    assert.truthy(err:find(src .. "/nope", 1, true), err)
  end)

  it("reads the current version: a listing, or one file's bytes", function()
    local status, out = cli("read " .. H.quote(target))
    assert.are.equal(0, status)
    assert.are.equal("version none\n", out)
    assert.is_true(aw.write(target, { a = "hello", ["d/b"] = { data = "\0\1", mode = "0600" } }))
    status, out = cli("read " .. H.quote(target))
    assert.are.equal(0, status)
    local uid = H.lstat(target .. "/..data/a").uid
    local gid = H.lstat(target .. "/..data/a").gid
    assert.are.equal(("version %s\n0644 %d:%d 5 a\n0600 %d:%d 2 d/b\n"):format(
      aw.version(target), uid, gid, uid, gid), out)
    status, out = cli("read " .. H.quote(target) .. " d/b")
    assert.are.equal(0, status)
    assert.are.equal("\0\1", out)
    status, out = cli("read " .. H.quote(target) .. " ./d//b/")
    assert.are.equal(0, status)
    assert.are.equal("\0\1", out)
    status = cli("read " .. H.quote(target) .. " nope")
    assert.are.equal(1, status)
    local err
    status, out, err = cli("read " .. H.quote(target) .. " d/../a")
    assert.are.equal(1, status)
    assert.are.equal("", out)
    assert.truthy(err:find(target .. ': invalid payload path "d/../a": the path contains a \'..\' element', 1, true), err)
  end)

  it("watch --once runs the command after the next version, with its name and its words unchanged", function()
    local log = target .. ".log"
    local p = io.popen(H.ENV .. CLI .. " watch --once --timeout 10 " ..
      H.quote(target) .. " -- sh -c 'echo \"$ATOMICWRITER_VERSION $1 $2\" > " .. log .. "; exit 7' sh arg-with-\\'quote" ..
      " '$HOME;*|`x`'  ; echo \"exit=$?\"")
    H.sh("sleep 0.5")
    assert.is_true(aw.write(target, { a = "1" }))
    local out = p:read("*a")
    p:close()
    assert.are.equal("exit=7\n", out:match("exit=%d+\n$"))
    assert.are.equal(aw.version(target) .. " arg-with-'quote $HOME;*|`x`\n", H.read(log))
  end)

  it("watch runs the hook once per version and exits 3 when --timeout passes", function()
    local log = target .. ".log"
    local p = io.popen(H.ENV .. CLI .. " watch --timeout 1.5 " ..
      H.quote(target) .. " -- sh -c 'echo $ATOMICWRITER_VERSION >> " .. log .. "'; echo \"exit=$?\"")
    H.sh("sleep 0.5")
    local versions = {}
    for i = 1, 3 do
      assert.is_true(aw.write(target, { n = tostring(i) }))
      versions[i] = aw.version(target)
      H.sh("sleep 0.2")
    end
    local out = p:read("*a")
    p:close()
    assert.are.equal("exit=3\n", out:match("exit=%d+\n$"))
    assert.are.equal(table.concat(versions, "\n") .. "\n", H.read(log))
  end)
end)
