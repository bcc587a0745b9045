--- atomicwriter: project a set of files into a directory atomically.
--
-- The Lua side of the module: defaults, the file-spec forms (a string, or
-- a table with data, mode, uid, gid), octal mode strings, options, and the
-- writer object. The algorithm and every system call live in the C core,
-- reached through `atomicwriter.core`.
-- @module atomicwriter

local core = require("atomicwriter.core")

local M = { _VERSION = core._VERSION, platform = core.platform }

local DEFAULT_MODE = 420        -- 0644
local MAX_MODE = 511            -- 0777
local MAX_ID = core.MAX_ID      -- aw.h's AW_MAX_ID: (uid_t)-1 means "unchanged" to chown

local floor, type, pairs, tostring, tonumber, error, setmetatable =
  math.floor, type, pairs, tostring, tonumber, error, setmetatable
local format = string.format

local function is_whole(v)
  return type(v) == "number" and v == floor(v) and v == v
end

--- A value as text for a message, numbers written the same under every Lua
-- (5.3+ writes 2^32 as "4294967296.0", 5.1 as "4294967296"; NaN's sign
-- varies; format("%d") raises on 5.3+ for a float beyond the integers).
local function show(v)
  if type(v) ~= "number" then
    return tostring(v)
  elseif v ~= v then
    return "nan"
  elseif v == floor(v) and v >= -2^53 and v <= 2^53 then
    return format("%.0f", v)
  end
  return format("%.14g", v)
end

--- Quotes a payload path for a message, escaping bytes a terminal would not print.
local function quote(path)
  return '"' .. path:gsub('[%c"\\\127]', function(c)
    return format("\\x%02x", c:byte())
  end) .. '"'
end

local function refuse(target, opts, path, why)
  local prefix = opts.log_context and (opts.log_context .. ": ") or ""
  return nil, format("%s%s: invalid file spec %s: %s", prefix, target, quote(path), why), "invalid"
end

-- Mode: an integer 0..0777, or an octal string such as "0644" or "0o644".
local function parse_mode(mode)
  if mode == nil then
    return DEFAULT_MODE
  end
  if type(mode) == "string" then
    local digits = mode:match("^0[oO]([0-7]+)$") or mode:match("^([0-7]+)$")
    local n = digits and #digits <= 4 and tonumber(digits, 8)
    if n and n <= MAX_MODE then
      return n
    end
    return nil, format("mode %q is not an octal permission within 0000-0777", mode)
  end
  if not is_whole(mode) then
    return nil, format("mode must be an integer or an octal string, not %s", show(mode))
  end
  if mode >= 0 and mode <= MAX_MODE then
    return mode
  end
  local text = show(mode)
  if text:match("^[0-7][0-7][0-7]$") then
    return nil, format("mode %s is not a permission (0-0777): Lua has no octal literals; " ..
      "write the string \"0%s\" or the number %d", text, text, tonumber(text, 8))
  end
  return nil, format("mode %s is not within 0-0777 (0-511)", text)
end

local function parse_id(v, field)
  if v == nil then
    return false
  end
  if is_whole(v) and v >= 0 and v <= MAX_ID then
    return v
  end
  return nil, format("%s must be a whole number within 0-%d, not %s", field, MAX_ID, show(v))
end

local SPEC_FIELDS = { data = true, source = true, mode = true, uid = true, gid = true }
local FROM_SOURCE = -1   -- mode: the source's permission bits

-- Turns the payload into the flat list the core reads: path, data|false,
-- mode, uid|false, gid|false, source|false per file. Returns list, count
-- or nil, message, code.
local function flatten(target, payload, opts)
  local list, n = {}, 0
  for path, spec in pairs(payload) do
    if type(path) ~= "string" then
      return refuse(target, opts, show(path), "payload keys must be strings (paths)")
    end
    local data, mode, uid, gid, source, why = spec, DEFAULT_MODE, false, false, false
    if type(spec) == "table" then
      for field in pairs(spec) do
        if not SPEC_FIELDS[field] then
          return refuse(target, opts, path, "unknown field " .. show(field) ..
            " (a file spec has data or source, mode, uid, gid)")
        end
      end
      data, source = spec.data, spec.source
      if source ~= nil then
        if data ~= nil then
          return refuse(target, opts, path, "a file spec has either 'data' or 'source', not both")
        elseif type(source) ~= "string" or source == "" or source:find("\0", 1, true) then
          return refuse(target, opts, path, "field 'source' must be a path (a non-empty string " ..
            "without NUL bytes), not " .. (type(source) == "string" and quote(source) or type(source)))
        end
        data = false
      elseif type(data) ~= "string" then
        return refuse(target, opts, path, "field 'data' must be a string, not " .. type(data))
      else
        source = false
      end
      mode, why = parse_mode(spec.mode)
      if source and spec.mode == nil then mode = FROM_SOURCE end
      if not mode then return refuse(target, opts, path, "field 'mode': " .. why) end
      uid, why = parse_id(spec.uid, "field 'uid'")
      if uid == nil then return refuse(target, opts, path, why) end
      gid, why = parse_id(spec.gid, "field 'gid'")
      if gid == nil then return refuse(target, opts, path, why) end
    elseif type(spec) ~= "string" then
      return refuse(target, opts, path, "a file spec is a string or a table, not " .. type(spec))
    end
    local at = n * 6
    list[at + 1], list[at + 2], list[at + 3], list[at + 4], list[at + 5], list[at + 6] =
      path, data, mode, uid, gid, source
    n = n + 1
  end
  return list, n
end

-- The options each function takes, with their types: an option another
-- function takes is as much a mistake here as a misspelt one.
local OPTIONS = {
  write = { sync = "boolean", timeout = "number", log_context = "string", keep = "number",
    changes = "boolean", checksum = "boolean", progress = "function",
    modes = "boolean" },
  rollback = { sync = "boolean", timeout = "number", log_context = "string", keep = "number",
    changes = "boolean", modes = "boolean" },
  versions = { log_context = "string" },
  read = { log_context = "string" },
  read_tree = { log_context = "string", owners = "boolean", sources = "boolean", modes = "boolean" },
  version = { log_context = "string" },
  watch = { poll = "boolean", log_context = "string" },
}
OPTIONS.new = OPTIONS.write
-- sync = "syncfs" | "fsync" chooses the method (aw.h's AW_SYNC_FS, AW_SYNC_FILES).
local SYNC_METHODS = { syncfs = core.SYNC_FS, fsync = core.SYNC_FILES }

-- No options: what check_options returns for nil (never written to).
local NO_OPTIONS = {}

-- Checks the options of `fname` (a programming error raises) and returns
-- them as given (NO_OPTIONS for nil): nothing is copied, so that a call
-- allocates no table of its own. sync_of and timeout_ms read the defaults.
local function check_options(fname, opts, level)
  if opts == nil then
    return NO_OPTIONS
  end
  if type(opts) ~= "table" then
    error("bad argument (options): table expected, got " .. type(opts), level + 1)
  end
  local known = OPTIONS[fname]
  for k, v in pairs(opts) do
    local want = known[k]
    if not want then
      error(format("unknown option %s for %s", show(k), fname), level + 1)
    end
    if type(v) ~= want and not (k == "sync" and SYNC_METHODS[v]) then
      error(format("option '%s' must be a %s%s, not %s", k, want,
        k == "sync" and ', "syncfs" or "fsync"' or "", type(v)), level + 1)
    end
  end
  local timeout, keep = opts.timeout, opts.keep
  if timeout and not (timeout >= 0) then   -- NaN too
    error("option 'timeout' must be >= 0 seconds", level + 1)
  end
  if keep and not (is_whole(keep) and keep >= 0 and keep <= 1e6) then
    error("option 'keep' must be a whole number of versions >= 0", level + 1)
  end
  return opts
end

-- The core's sync argument for checked options: true by default, a
-- method's number for "syncfs" and "fsync".
local function sync_of(opts)
  local sync = opts.sync
  if sync == nil then
    return true
  end
  return SYNC_METHODS[sync] or sync
end

-- Milliseconds for the core, -1 for forever: no timeout, math.huge, or one
-- beyond what a 32-bit long holds (2^31 - 1 ms, about 24.8 days).
local MAX_TIMEOUT_MS = 2147483647

local function timeout_ms(opts)
  local timeout = opts.timeout
  if not timeout then
    return -1
  end
  local ms = floor(timeout * 1000.0 + 0.5)   -- a float: an integer timeout would wrap
  if ms > MAX_TIMEOUT_MS then
    return -1
  end
  return ms
end

-- Raises for an argument of the wrong type: a programming error, blamed
-- on the caller `level` frames up.
local function check_type(fname, n, value, want, level)
  if type(value) ~= want then
    error(format("bad argument #%d to '%s' (%s expected, got %s)", n, fname, want, type(value)),
      level + 1)
  end
end

-- Checks the target argument of `fname` and the options (raising for a
-- programming error); returns the checked options, or nil, message,
-- "invalid" when the target path holds a NUL byte (the system would cut
-- it there and act on another path).
local function target_options(fname, target, opts)
  check_type(fname, 1, target, "string", 3)
  local checked = check_options(fname, opts, 3)
  if target:find("\0", 1, true) then
    local prefix = checked.log_context and (checked.log_context .. ": ") or ""
    return nil, prefix .. quote(target) .. ": the target path contains a NUL byte", "invalid"
  end
  return checked
end

-- A payload with any file spec: checked and flattened here, then core.write.
local function write_flat(target, payload, opts)
  local list, n, code = flatten(target, payload, opts)
  if not list then
    return nil, n, code
  end
  return core.write(target, list, n, sync_of(opts), timeout_ms(opts), opts.log_context,
    opts.keep, opts.changes, opts.checksum, opts.progress,
    opts.modes)
end

-- The values a write returned, as many as the core returned: true|false,
-- version [, changes [, leftover message]], or nil, message, code [, true]
-- (ok, v non-nil; x, y nil when not returned).
local function results(ok, v, x, y)
  if y ~= nil then
    return ok, v, x, y
  elseif x ~= nil or ok == nil then
    return ok, v, x
  end
  return ok, v
end

local function do_write(target, payload, opts)
  -- the common case, strings only, is checked and read in C; it returns
  -- nothing for any other payload, which goes through write_flat.
  -- (sync_of and timeout_ms written out, and no vararg: the per-call
  -- instructions of a one-file write, issue 18)
  local sync, timeout = opts.sync, opts.timeout
  if sync == nil then
    sync = true
  else
    sync = SYNC_METHODS[sync] or sync
  end
  timeout = timeout and timeout_ms(opts) or -1
  local ok, v, x, y = core.write_strings(target, payload, sync, timeout, opts.log_context,
    opts.keep, opts.changes, opts.checksum, opts.progress, opts.modes)
  if ok == nil and v == nil then   -- nothing: not strings only
    return write_flat(target, payload, opts)
  end
  return results(ok, v, x, y)
end

-- A function(target [, opts]) that checks both (raising for a programming
-- error, nil, message, code for a target with a NUL byte), then returns
-- run(target, checked options); `fname` names it in errors and picks its
-- option set.
local function with_target(fname, run)
  return function(target, opts)
    local checked, msg, code = target_options(fname, target, opts)
    if not checked then
      return nil, msg, code
    end
    return run(target, checked)
  end
end

-- (target [, version] [, opts]): the version is optional before the options.
local function version_and_options(fname, version, opts)
  if type(version) == "table" and opts == nil then
    return nil, version
  end
  if version ~= nil then
    check_type(fname, 2, version, "string", 3)
  end
  return version, opts
end

-- As with_target, for function(target [, version] [, opts]): run(target,
-- version or nil, checked options).
local function with_version(fname, run)
  return function(target, version, opts)
    version, opts = version_and_options(fname, version, opts)
    local checked, msg, code = target_options(fname, target, opts)
    if not checked then
      return nil, msg, code
    end
    return run(target, version, checked)
  end
end

--- Publishes `payload` as the new version of `target`.
-- @tparam string target an existing directory
-- @tparam table payload relative path -> data string, or
--   `{ data = string, mode = integer|octal-string, uid = integer, gid = integer }`,
--   or `{ source = path, ... }`: the bytes of the file at `path`, copied in
--   the kernel (mode: the source's unless given)
-- @tparam[opt] table opts `sync` (default true; or "syncfs", "fsync" to
--   choose the method), `timeout` (seconds to wait
--   for another writer; default forever), `log_context` (message prefix),
--   `keep` (superseded versions to keep, default 0), `changes` (true:
--   also return what changed), `checksum` (true: compare every file's
--   bytes, trusting no recorded identity), `progress` (function(files,
--   bytes, seconds), called at most every 0.1 s while files are placed)
-- @treturn boolean true when a new version was published, false when the
--   target already held exactly this payload
-- @treturn string the version published (or, for false, the current one)
-- @treturn[opt] table with `changes`: `{ added = {...}, changed = {...},
--   removed = {...} }`, sorted paths
-- @return or nil, message, code ("invalid", "conflict", "busy", errno name)
function M.write(target, payload, opts)
  -- the common call (a string target, a payload of strings only, options
  -- as check_options accepts them) is checked and read whole in C, which
  -- returns nothing for any other: checked here then, raising as it must
  local ok, v, x, y = core.write_plain(target, payload, opts)
  if ok ~= nil or v ~= nil then
    return results(ok, v, x, y)
  end
  local checked, msg, code = target_options("write", target, opts)
  check_type("write", 2, payload, "table", 2)
  if not checked then
    return nil, msg, code
  end
  return do_write(target, payload, checked)
end

local Writer = {}
Writer.__index = Writer
Writer.__name = "atomicwriter.writer"

function Writer.__tostring(self)
  return format("atomicwriter.writer (%s)", self.target)
end

--- Publishes `payload` into the writer's target with the writer's options.
-- @see write
function Writer:write(payload)
  if getmetatable(self) ~= Writer then
    error("bad argument #1 to 'write' (atomicwriter.writer expected)", 2)
  end
  check_type("write", 1, payload, "table", 2)
  return do_write(self.target, payload, self.opts)
end

--- Creates a writer bound to `target` and `opts`.
-- @treturn table a writer, or nil, message, code when target is not an
--   existing directory
-- @function new
M.new = with_target("new", function(target, checked)
  local ok, msg, code = core.check_target(target, checked.log_context)
  if not ok then
    return nil, msg, code
  end
  local opts = {}   -- the writer's own: later changes to the caller's table do not reach it
  for k, v in pairs(checked) do opts[k] = v end
  return setmetatable({ target = target, opts = opts }, Writer)
end)

--- Reads the current version of `target` whole, through one resolution
-- of ..data (one version even while a writer swaps).
-- @tparam[opt] string version a kept version's name (see `versions`)
--   instead of the current one
-- @tparam[opt] table opts `log_context`
-- @treturn table path -> `{ data = string, mode = integer, uid = integer, gid = integer }`
-- @treturn string the version's name, "" when nothing is published yet
-- @return or nil, message, code ("noversion" when `version` is not kept)
-- @function read
M.read = with_version("read", function(target, version, checked)
  return core.read(target, checked.log_context, version)
end)

--- The published version and the kept ones, newest first.
-- @tparam[opt] table opts `log_context`
-- @treturn table `{ { name = string, published = seconds (UTC, a number
--   with fractions), current = boolean }, ... }`, the current version
--   first; empty when nothing is published
-- @return or nil, message, code
-- @function versions
M.versions = with_target("versions", function(target, checked)
  return core.versions(target, checked.log_context)
end)

--- Publishes again the content of a kept version, as a new version whose
-- files are hard links to the kept ones (nothing is copied); every step
-- of a write follows (lock, swap, links, sync, history).
-- @tparam[opt] string version the kept version (default: the newest kept)
-- @tparam[opt] table opts as `write`'s; `keep` defaults to as many
--   versions as are kept now
-- @return as `write`; nil, message, "noversion" when the version is not kept
-- @function rollback
M.rollback = with_version("rollback", function(target, version, checked)
  return core.rollback(target, version, sync_of(checked), timeout_ms(checked), checked.log_context,
    checked.keep or -1, checked.changes, nil, nil, checked.modes)
end)

--- The name of the current version of `target`.
-- @tparam[opt] table opts `log_context`
-- @treturn string the name, "" when nothing is published yet (so that
--   `assert` tells it from a failure)
-- @return or nil, message, code
-- @function version
M.version = with_target("version", function(target, checked)
  return core.version(target, checked.log_context)
end)

--- Reads every regular file below the directory `dir` (any directory, not
-- a target), with its mode: a payload for `write` (mirroring a tree, as
-- the command-line tool's `project` does). Without `owners`, the files
-- carry no uid and gid, so that writing them needs no right to give files
-- away. Symlinks and special files are not followed: they are skipped and
-- counted together.
-- @tparam[opt] table opts `log_context`; `owners = true` adds each file's
--   uid and gid; `sources = true` reads no bytes: each spec names its file
--   (`{ source = dir .. "/" .. path, mode = integer }`) for `write` to copy
--   in the kernel; with `sources`, `modes = false` leaves the mode out and
--   looks at no file (the listing's types only): `write` then gives each
--   file its source's mode, taken under its lock
-- @treturn table path -> `{ data = string, mode = integer }` (and `uid`,
--   `gid` with `owners`)
-- @treturn integer the number of entries skipped: symlinks and special
--   files (devices, FIFOs, sockets), one count
-- @return or nil, message, code
-- @function read_tree
M.read_tree = with_target("read_tree", function(dir, checked)
  return core.read_tree(dir, checked.log_context, checked.owners, checked.sources, checked.modes)
end)

--- Cleans a payload path as `write` does ("a//b/" -> "a/b", "./a" -> "a"),
-- for looking up a path a user gave in what `read` returns.
-- @treturn string the clean path
-- @return or nil, message, "invalid" when `write` would refuse the path
function M.clean_path(path)
  check_type("clean_path", 1, path, "string", 2)
  return core.clean_path(path)
end

--- Watches `target` for published versions: `watcher:wait([seconds])`
-- returns each new version's name once (nil on timeout), `watcher:fd()`
-- a descriptor for poll/select (nil when polling; the watcher's: poll it,
-- never read or close it), `watcher:close()`.
-- @tparam[opt] table opts `poll = true` polls ..data every 100 ms instead
--   of using inotify (for NFS or FUSE); `log_context`
-- @return a watcher, or nil, message, code
-- @function watch
M.watch = with_target("watch", function(target, checked)
  return core.watch(target, checked.poll, checked.log_context)
end)

return M
