-- The documentation a newcomer reads first: every link leads somewhere
-- that exists.
local H = require("helpers")

local DOCS = { "README.md", "CHANGELOG.md", "docs/design.md", "docs/history.md",
  "docs/performance.md", "docs/platforms.md", "docs/stack.md", "docs/editors.md",
  "bench/README.md", "fuzz/README.md", "examples/README.md" }

-- The anchor GitHub makes of a heading: lower case, punctuation dropped,
-- spaces to hyphens.
local function anchor(heading)
  return (heading:lower():gsub("[^%w%- ]", ""):gsub(" ", "-"))
end

local function anchors(text)
  local set = {}
  for heading in text:gmatch("\n#+ ([^\n]+)") do set[anchor(heading)] = true end
  return set
end

-- README.md stays short by judgment, not by a byte cap (one caused
-- commits that shaved lines to fit): details go to docs/. Its size is
-- printed for the reader of the run.
describe("the documentation", function()
  it("links only to files and headings that exist", function()
    print(("# README.md: %d bytes"):format(#assert(H.read("README.md"))))
    for _, doc in ipairs(DOCS) do
      local text = assert(H.read(doc), doc)
      local dir = doc:match("^(.*)/") or "."
      for link in text:gmatch("%]%(([^)%s]+)%)") do
        if not link:match("^%a+:") then          -- no http:, mailto:
          local file, frag = link:match("^([^#]*)#?(.*)$")
          local path = file == "" and doc or (dir .. "/" .. file)
          assert.truthy(H.lstat(path), doc .. " links to a missing " .. link)
          if frag ~= "" then
            local target = assert(H.read(path), path)
            assert.truthy(anchors("\n" .. target)[frag], doc .. " links to a missing heading " .. link)
          end
        end
      end
    end
  end)
end)
