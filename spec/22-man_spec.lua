-- The manual page man/atomicwriter.1: man(1) renders it without a
-- warning, and it describes every command, option and environment
-- variable that `atomicwriter --help` and each command's --help list.
local H = require("helpers")

local PAGE = "man/atomicwriter.1"
local CLI = H.ENV .. H.CLI

local function help(args)
  local ok, out = H.sh(CLI .. " " .. args)
  assert(ok, out)
  return out
end

-- The page's source as text: roff's escapes for hyphens, fonts and
-- quotes dropped, so that "\-\-keep" reads "--keep".
local function page_text()
  local src = assert(H.read(PAGE))
  return (src:gsub("\\%-", "-"):gsub("\\f[BIRP]", ""):gsub("\\%(%a%a", ""):gsub("\\c", ""))
end

local function has_word(text, word)
  local pat = "%f[%w%-_]" .. word:gsub("%p", "%%%0") .. "%f[^%w%-_]"
  return text:find(pat) ~= nil
end

describe("the manual page", function()
  it("renders without a warning (man --warnings)", function()
    if not H.has("man") then return pending("man(1) is not installed") end
    local err = os.tmpname()
    -- Without a sanitizer preloaded (make sanitize): man's helpers are not ours.
    local ok, out = H.sh("env -u LD_PRELOAD man --warnings -l " .. PAGE .. " 2>" .. H.quote(err) .. " >/dev/null")
    local warnings = H.read(err)
    os.remove(err)
    assert(ok, out)
    assert.are.equal("", warnings)
  end)

  it("describes every command, option and hook variable of --help", function()
    local text = page_text()
    local main = help("--help")
    local commands = {}
    for line in (main:match("\ncommands:\n(.-)\n\n") or ""):gmatch("[^\n]+") do
      commands[#commands + 1] = line:match("^  (%l+) ")   -- not a continuation line
    end
    assert.is_true(#commands >= 5, "no commands found in --help:\n" .. main)
    local texts = { main }
    for _, name in ipairs(commands) do
      assert.truthy(text:find("\n%.TP\n%.B " .. name .. "%f[%s]"), PAGE .. " has no entry for the command " .. name)
      texts[#texts + 1] = help(name .. " --help")
    end
    local seen = 0
    for _, t in ipairs(texts) do
      for option in t:gmatch("%f[%w%-]%-%-?%a[%w%-]*") do
        seen = seen + 1
        assert.truthy(has_word(text, option), PAGE .. " does not mention the option " .. option)
      end
      for var in t:gmatch("ATOMICWRITER_%u+") do
        assert.truthy(has_word(text, var), PAGE .. " does not mention " .. var)
      end
    end
    assert.is_true(seen >= 8, "too few options found in the help texts")
  end)
end)
