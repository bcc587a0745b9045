-- config.lua - the sample configuration script of examples/embed/host.c.
--
--   embed-host examples/embed/config.lua TARGET [RELEASE]
--
-- The host passes its arguments after the script as `...`, and reads what
-- the script returns as the results of atomicwriter.write: true (a new
-- version was published), false (unchanged), or nil, message, code.
-- Generating files from Lua values is what a host embeds Lua for.
local aw = require("atomicwriter")

local target, release = ...
if not target then
  error("usage: embed-host config.lua TARGET [RELEASE]", 0)
end
release = release or "1"

local settings = { listen = 8080, workers = 4, release = release }

-- "key = value" lines in a stable order: the same settings give the same
-- bytes, so a second run publishes nothing.
local function render(t)
  local keys, lines = {}, {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  for i, k in ipairs(keys) do lines[i] = k .. " = " .. tostring(t[k]) end
  return table.concat(lines, "\n") .. "\n"
end

return aw.write(target, {
  ["app.conf"] = render(settings),
  ["release"] = release .. "\n",
  ["tls/cert.pem"] = { data = "-----BEGIN CERTIFICATE-----\nexample\n-----END CERTIFICATE-----\n",
                       mode = "0444" },
  ["tls/key.pem"] = { data = "-----BEGIN PRIVATE KEY-----\nexample\n-----END PRIVATE KEY-----\n",
                      mode = "0400" },
})
