-- make demo: project a sample payload into a temporary directory, update
-- it, and show the tree before and after (links shown, nothing followed).
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
-- `make demo LUA=...` points AW_CPATH at that version's module (mk/lua.mk).
package.cpath = assert(os.getenv("AW_CPATH"), "run it with `make demo` (AW_CPATH names the module's build)") ..
  ";" .. package.cpath
local aw = require("atomicwriter")

local function sh(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("*a")
  p:close()
  return out
end

local function show(title, target)
  print(("== %s"):format(title))
  io.write(sh("cd '" .. target .. "' && ls -la --time-style=+%T . && " ..
    "for d in ..data/ ..data/*/; do [ -d \"$d\" ] && echo && echo \"$d:\" && ls -la --time-style=+%T \"$d\"; done"))
  print()
end

local target = sh("mktemp -d /tmp/atomicwriter-demo.XXXXXX"):gsub("%s+$", "")
print("target: " .. target .. "\n")

local writer = assert(aw.new(target, { log_context = "demo" }))
assert(writer:write({
  podName = "web-1\n",
  ["user/labels"] = "app=web\ntier=front\n",
  ["tls/cert.pem"] = { data = "-----BEGIN CERTIFICATE-----\n...\n", mode = "0444" },
  ["tls/key.pem"] = { data = "-----BEGIN PRIVATE KEY-----\n...\n", mode = "0400" },
}))
show("after the first write", target)

print("same payload again ->", tostring(writer:write({
  podName = "web-1\n",
  ["user/labels"] = "app=web\ntier=front\n",
  ["tls/cert.pem"] = { data = "-----BEGIN CERTIFICATE-----\n...\n", mode = "0444" },
  ["tls/key.pem"] = { data = "-----BEGIN PRIVATE KEY-----\n...\n", mode = "0400" },
})), "(nothing published)\n")

-- The update: labels change, tls goes away, a new file appears.
assert(writer:write({
  podName = "web-1\n",
  ["user/labels"] = "app=web\ntier=back\n",
  ["app.conf"] = "listen 8080\n",
}))
show("after the update (labels changed, tls removed, app.conf added)", target)

print("a refused payload ->", select(2, writer:write({ ["../escape"] = "x" })))
print("user/labels reads: " .. sh("cat '" .. target .. "/user/labels'"))
os.execute("rm -rf '" .. target .. "'")
