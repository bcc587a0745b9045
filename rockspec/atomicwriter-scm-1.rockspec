rockspec_format = "3.0"
package = "atomicwriter"
version = "scm-1"
source = {
  -- `luarocks make` builds this checkout; `luarocks install` of this
  -- rockspec clones the project's main branch.
  url = "git+https://github.com/atomicwriter/atomicwriter.git",
}
description = {
  summary = "Project a set of files into a directory atomically (the kubelet ..data layout)",
  detailed = [[
A Lua module with a C core that publishes configuration, certificates or
any file set so that a reader never sees a half-written file or a mix of
two versions: files live in a timestamped version directory, ..data is a
symlink to it swapped with one rename, and each top-level name is a
symlink through ..data. Durable (fsync), crash-safe, locked, and it never
follows a symlink it did not create.
]],
  license = "MIT",
  homepage = "https://github.com/atomicwriter/atomicwriter",
}
-- Run on Linux (glibc, musl), compiled for macOS (docs/platforms.md). The
-- BSDs have their code paths (kqueue, arc4random_buf) but no toolchain
-- here to check them: not claimed.
supported_platforms = { "linux", "macosx" }
dependencies = {
  "lua >= 5.1, < 5.5",   -- 5.1, 5.2, 5.3, 5.4 and LuaJIT are tested
}
build = {
  type = "builtin",
  modules = {
    ["atomicwriter.core"] = {
      sources = {
        "csrc/aw_error.c", "csrc/aw_path.c", "csrc/aw_fs.c",
        "csrc/aw_write.c", "csrc/aw_compare.c", "csrc/aw_read.c", "csrc/aw_watch.c", "csrc/aw_manifest.c",
        "csrc/aw_history.c", "csrc/aw_changes.c", "csrc/aw_hash.c", "csrc/aw_sys.c", "csrc/aw_source.c", "csrc/aw_lua.c",
      },
      incdirs = { "csrc" },
      -- only luaopen_atomicwriter_core is exported (csrc/aw.h)
      defines = { "AW_LUA_MODULE" },
    },
    atomicwriter = "lua/atomicwriter/init.lua",
  },
  install = {
    bin = { atomicwriter = "bin/atomicwriter" },
    -- Into the rock's directory (`luarocks show --rock-dir atomicwriter`),
    -- conf/: the manual page (man -M <dir>/conf/man atomicwriter) and the
    -- lua-language-server definitions (docs/editors.md). README.md,
    -- CHANGELOG.md and LICENSE go to its doc/ (LuaRocks' default docs).
    conf = {
      ["man/man1/atomicwriter.1"] = "man/atomicwriter.1",
      ["types/atomicwriter.lua"] = "types/atomicwriter.lua",
    },
  },
}
-- Not type "busted": it wants busted as a rock, from a rocks server when
-- missing; the script runs busted as a rock or Debian's (spec/luarocks_test.lua).
test = {
  type = "command",
  script = "spec/luarocks_test.lua",
}
