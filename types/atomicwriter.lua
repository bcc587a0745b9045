---@meta atomicwriter
-- Definitions of the atomicwriter module for lua-language-server (LuaLS):
-- completion, hover and type checks in an editor; never loaded by Lua.
-- Point LuaLS at this directory (docs/editors.md), e.g. in .luarc.json:
--   { "workspace.library": ["/usr/local/share/atomicwriter/types"] }
-- spec/23-meta_spec.lua checks that every function and method of the
-- module is declared here, and nothing that does not exist.

---@alias atomicwriter.ErrorCode
---| "invalid"   # the payload fails validation; nothing on disk changed
---| "conflict"  # the target holds an entry the writer did not create where it needs one
---| "busy"      # another writer held the lock past `timeout`
---| "noversion" # a version neither current nor kept
---| "format"    # ..history is in a newer release's format
---| string      # the POSIX errno name of the failing system call ("ENOENT", "ENOSPC", ...)

---A file of a payload: its bytes and, optionally, mode and owners.
---@class atomicwriter.FileSpec
---@field data? string the file's bytes (any values, any length); or `source`
---@field source? string the path of a regular file whose bytes it gets, copied in the kernel (not with `data`); mode: the source's unless given
---@field mode? integer|string 0-0777, or an octal string ("0644", "644", "0o644"); default 0644
---@field uid? integer owner (needs the right to give files away); default: the writer
---@field gid? integer group; default: the writer's

---Relative path -> the file's data (mode 0644), or a file spec.
---@alias atomicwriter.Payload table<string, string|atomicwriter.FileSpec>

---@class atomicwriter.WriteOptions
---@field sync? boolean|"syncfs"|"fsync" reach stable storage (default true; a string picks the method)
---@field timeout? number seconds to wait for another writer's lock (default: forever; 0 tries once)
---@field log_context? string a prefix for messages
---@field keep? integer superseded versions to keep (default 0; for rollback, as many as are kept)
---@field changes? boolean also return the paths added, changed and removed
---@field checksum? boolean compare every file's bytes instead of trusting unchanged sources' identities (docs/trees.md)
---@field progress? fun(files: integer, bytes: integer, seconds: number) called at most every 0.1 s while the version is built
---@field modes? boolean false: modes neither set, checked nor compared (file systems without them: ntfs-3g, vfat)

---@class atomicwriter.ReadOptions
---@field log_context? string a prefix for messages

---@class atomicwriter.ReadTreeOptions: atomicwriter.ReadOptions
---@field owners? boolean also return each file's uid and gid
---@field sources? boolean read no bytes: each file gets `source` (dir .. "/" .. path) in place of `data`
---@field modes? boolean with `sources`, false: no stat per file and no `mode` (`write` takes each source's)

---@class atomicwriter.WatchOptions: atomicwriter.ReadOptions
---@field poll? boolean read ..data every 100 ms instead of using events (NFS, FUSE)

---A file as read back.
---@class atomicwriter.File
---@field data string (read_tree with `sources`: absent, see `source`)
---@field source? string read_tree with `sources`: the file's path, for `write` to copy
---@field mode integer
---@field uid? integer (read_tree: only with `owners`)
---@field gid? integer

---What a write changed (with `changes = true`), sorted paths.
---@class atomicwriter.Changes
---@field added string[]
---@field changed string[]
---@field removed string[]

---@class atomicwriter.VersionInfo
---@field name string the version directory's name ("..2026_11_25_10_04_05.123456789")
---@field published number when it was published, seconds since the epoch (UTC, with fractions)
---@field current boolean whether ..data names it
---@field leftover? boolean true for a version a write could not remove yet (listed last)

---What this build uses where systems differ.
---@class atomicwriter.Platform
---@field listing "getdents64"|"readdir"
---@field random "getrandom"|"arc4random_buf"|"getentropy"
---@field sync "syncfs"|"fsync" the method of `sync = true`
---@field watch "inotify"|"kqueue"|"poll"
---@field syncfs boolean
---@field copy string how a source is copied, first choice first: "ficlone copy_file_range read" on Linux, "read" elsewhere

---A writer bound to a target and its options (atomicwriter.new).
---@class atomicwriter.Writer
---@field target string
---@field opts atomicwriter.WriteOptions
local Writer = {}

---Publishes `payload` into the writer's target with its options; as `atomicwriter.write`.
---@param payload atomicwriter.Payload
---@return boolean|nil changed true: published; false: the target already held it; nil: failed
---@return string version_or_message
---@return atomicwriter.Changes|atomicwriter.ErrorCode|nil changes_or_code
---@return boolean|string|nil published_or_leftover failed: true when published all the same; succeeded: a message when an old version was left over
function Writer:write(payload) end

---Reports each version published in a target once, in order (atomicwriter.watch).
---@class atomicwriter.Watcher
local Watcher = {}

---Waits up to `seconds` (default: forever) for the next new version.
---@param seconds? number
---@return string|nil version nil on timeout, or on a failure with a message and a code
---@return string? message
---@return atomicwriter.ErrorCode? code
function Watcher:wait(seconds) end

---A descriptor for poll/select that becomes readable when `wait` may have news,
---or nil when polling. The watcher's: poll it, never read or close it.
---@return integer|nil
function Watcher:fd() end

---Closes the watcher (also on collection and at the end of a to-be-closed variable); safe twice.
function Watcher:close() end

---@class atomicwriter
---@field _VERSION string the library's release, "1.0.0"
---@field platform atomicwriter.Platform
local atomicwriter = {}

---Publishes `payload` as the new version of `target` (an existing directory).
---Raises only for a programming error (an argument or option of the wrong type).
---@param target string
---@param payload atomicwriter.Payload
---@param opts? atomicwriter.WriteOptions
---@return boolean|nil changed true: published; false: the target already held it; nil: failed
---@return string version_or_message the version published (or current), or the message
---@return atomicwriter.Changes|atomicwriter.ErrorCode|nil changes_or_code
---@return boolean|string|nil published_or_leftover failed: true when published all the same; succeeded: a message when an old version was left over
function atomicwriter.write(target, payload, opts) end

---A writer bound to `target` and `opts`, or nil, message, code when `target` is not a directory.
---@param target string
---@param opts? atomicwriter.WriteOptions
---@return atomicwriter.Writer|nil writer
---@return string? message
---@return atomicwriter.ErrorCode? code
function atomicwriter.new(target, opts) end

---Every file of the current version (or of a kept `version`), from one version.
---@param target string
---@param version? string|atomicwriter.ReadOptions a kept version's name, or the options
---@param opts? atomicwriter.ReadOptions
---@return table<string, atomicwriter.File>|nil files
---@return string version_or_message the version read ("" when nothing is published), or the message
---@return atomicwriter.ErrorCode? code
function atomicwriter.read(target, version, opts) end

---The name of the current version: "" when nothing is published.
---@param target string
---@param opts? atomicwriter.ReadOptions
---@return string|nil version
---@return string? message
---@return atomicwriter.ErrorCode? code
function atomicwriter.version(target, opts) end

---The current version and the kept ones, newest first (the current one first).
---@param target string
---@param opts? atomicwriter.ReadOptions
---@return atomicwriter.VersionInfo[]|nil versions
---@return string? message
---@return atomicwriter.ErrorCode? code
function atomicwriter.versions(target, opts) end

---Publishes a kept version (default: the newest kept) again, by hard links.
---@param target string
---@param version? string|atomicwriter.WriteOptions the kept version, or the options
---@param opts? atomicwriter.WriteOptions
---@return boolean|nil changed
---@return string version_or_message
---@return atomicwriter.Changes|atomicwriter.ErrorCode|nil changes_or_code
---@return boolean? published
function atomicwriter.rollback(target, version, opts) end

---Every regular file below any directory, as a payload for `write`, and
---the number of symlinks and special files skipped.
---@param dir string
---@param opts? atomicwriter.ReadTreeOptions
---@return table<string, atomicwriter.File>|nil files
---@return integer|string skipped_or_message
---@return atomicwriter.ErrorCode? code
function atomicwriter.read_tree(dir, opts) end

---A payload path cleaned as `write` cleans it ("a//b/" -> "a/b"), or nil, message, "invalid".
---@param path string
---@return string|nil path
---@return string? message
---@return atomicwriter.ErrorCode? code
function atomicwriter.clean_path(path) end

---A watcher of the versions published in `target` (an existing directory).
---@param target string
---@param opts? atomicwriter.WatchOptions
---@return atomicwriter.Watcher|nil watcher
---@return string? message
---@return atomicwriter.ErrorCode? code
function atomicwriter.watch(target, opts) end

return atomicwriter
