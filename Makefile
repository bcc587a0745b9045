# atomicwriter - build, test, demo, install.
# Variables follow LuaRocks' names; override any of them on the command line
# (make check LUA=lua5.3). LUA is one of lua5.1 lua5.2 lua5.3 lua5.4 luajit
# (a name on PATH, or a path to one of them).

# LUA, LUA_VERSION, LUA_INCDIR, and where each Lua's build goes (MODDIR,
# LUA_BUILD): mk/lua.mk.
include mk/lua.mk
BUSTED     ?= /usr/bin/busted

CC         ?= cc
# Packagers' flags reach every compile (CPPFLAGS, CFLAGS) and every link
# (CFLAGS, LDFLAGS): `dpkg-buildflags` exports them (spec/20-release).
CPPFLAGS   ?=
CFLAGS     ?= -O2 -g
LDFLAGS    ?=
WARN       ?= -Wall -Wextra -Werror
LIBFLAG    ?= -shared
PREFIX     ?= /usr/local
LIBDIR     ?= $(PREFIX)/lib/lua/$(LUA_VERSION)
LUADIR     ?= $(PREFIX)/share/lua/$(LUA_VERSION)
BINDIR     ?= $(PREFIX)/bin
INCDIR     ?= $(PREFIX)/include
ARDIR      ?= $(PREFIX)/lib
DATADIR    ?= $(PREFIX)/share
MANDIR     ?= $(DATADIR)/man
DOCDIR     ?= $(DATADIR)/doc/atomicwriter
PCDIR      ?= $(ARDIR)/pkgconfig
DESTDIR    ?=
# The release (csrc/aw.h's AW_VERSION) and the shared library's ABI: its
# soname changes only when the ABI breaks (aw.h's ABI policy, abi/).
VERSION   := $(shell awk '/^\#define AW_VERSION_(MAJOR|MINOR|PATCH) /{v = v s $$3; s = "."} \
  /^\#define AW_VERSION "/{w = $$3; gsub(/"/, "", w)} END{print v ? v : w}' csrc/aw.h)
SOVERSION  = 1
SONAME     = libatomicwriter.so.$(SOVERSION)
SOFILE     = $(SONAME).0.0

CORE_SRC   = csrc/aw_error.c csrc/aw_path.c csrc/aw_fs.c csrc/aw_write.c \
             csrc/aw_compare.c csrc/aw_read.c csrc/aw_watch.c csrc/aw_manifest.c \
             csrc/aw_history.c csrc/aw_changes.c csrc/aw_hash.c \
             csrc/aw_sys.c csrc/aw_source.c
CORE_HDR   = csrc/aw.h csrc/aw_internal.h csrc/aw_sys.h
BUILD      = build/$(LUA_NAME)
CORE_PIC   = $(CORE_SRC:csrc/%.c=$(BUILD)/%.o)
# The module goes to $(MODDIR) (mk/lua.mk); spec/run.sh reaches it through
# AW_CPATH (busted --cpath, child processes).
MODULE     = $(MODDIR)/atomicwriter/core.so
STATICLIB  = $(LUA_BUILD)/libatomicwriter.a
SHAREDLIB  = $(LUA_BUILD)/$(SOFILE)
# The installed header's name, atomicwriter.h, for the examples in the tree.
INC_BUILD  = $(LUA_BUILD)/include
STACK_HOST = $(LUA_BUILD)/stack-host
SPEC_ENV   = LUA=$(LUA) BUSTED=$(BUSTED) AW_CPATH='$(AW_CPATH)'
# Stack probes, so that a frame larger than a guard page faults cleanly
# instead of landing in other memory; only where the compiler has them
# (gcc 8+, clang 11+), probed once per run of make.
STACK_CLASH := $(shell $(CC) $(CFLAGS) -Werror -fstack-clash-protection -x c -c /dev/null \
  -o /dev/null 2>/dev/null && echo -fstack-clash-protection)
# Hidden by default: the shared library exports what aw.h marks AW_API,
# the module only luaopen_atomicwriter_core (it links the static library
# with MODULE_LDFLAGS, which hide an archive's symbols).
VISIBILITY ?= -fvisibility=hidden
MODULE_LDFLAGS ?= -Wl,--exclude-libs,ALL
ALL_CFLAGS = -std=c99 $(WARN) $(CPPFLAGS) $(CFLAGS) $(STACK_CLASH) -fPIC $(VISIBILITY)

# Debian packages `make check` installs when they are missing: the selected
# interpreter and its headers (lua5.1's are liblua5.1-0-dev), and the tools.
# Debian's lua-busted, lua-filesystem and lua-penlight serve every version.
# LuaJIT comes in two that conflict: luajit, and OpenResty's luajit2, whose
# libluajit2-5.1-2 libnginx-mod-http-lua pulls in; both give the luajit
# command and luajit-2.1 headers, so use the one the machine has.
installed = $(shell dpkg-query -W -f='$${Status}' $(1) 2>/dev/null | grep -q 'ok installed' && echo yes)
LUAJIT_PKGS ?= $(if $(call installed,libluajit2-5.1-2),luajit2 libluajit2-5.1-dev,luajit libluajit-5.1-dev)
LUA_DEB_PKGS = $(if $(filter luajit,$(LUA_NAME)),$(LUAJIT_PKGS),$(LUA_NAME) \
  lib$(LUA_NAME)$(if $(filter lua5.1,$(LUA_NAME)),-0)-dev)
DEB_PKGS   ?= $(LUA_DEB_PKGS) lua-busted luarocks pkg-config valgrind strace procps \
  lua-check cppcheck clang man-db abigail-tools binutils file \
  time xfsprogs e2fsprogs util-linux bsdutils rsync

# The interpreters check-matrix runs the suite under.
LUAS       ?= lua5.1 lua5.2 lua5.3 lua5.4 luajit
# `make check` ends with memcheck; MEMCHECK=no leaves it out.
MEMCHECK   ?= yes
# `make check` runs the static analysis (mk/lint.mk); LINT=no leaves it out.
# Assigned, not ?=: make's built-in LINT is "lint" (the old lint program).
LINT        = yes

.PHONY: check-oom check-fs deps-fs all check check-matrix deps deps-lua spec stack-usage memcheck sanitize demo bench install \
  print-cpath install-data installcheck dist check-rock check-dist abi-baseline abi-check clean clean-module \
  print
all: $(MODULE) $(STATICLIB) $(SHAREDLIB) examples build/hash-vectors build/error-format \
  build/watch-fd $(STACK_HOST)

$(BUILD)/%.o: csrc/%.c $(CORE_HDR) csrc/compat.h
	@mkdir -p $(BUILD)
	$(CC) $(ALL_CFLAGS) -I$(LUA_INCDIR) -c $< -o $@

$(MODULE): $(BUILD)/aw_lua.o $(STATICLIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LIBFLAG) $(LDFLAGS) -o $@ $^ $(MODULE_LDFLAGS)

$(STATICLIB): $(CORE_PIC)
	@mkdir -p $(dir $@)
	rm -f $@
	$(AR) rcs $@ $^

# libatomicwriter.so.1.0.0, soname libatomicwriter.so.1, and its links.
$(SHAREDLIB): $(CORE_PIC)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LIBFLAG) $(LDFLAGS) -Wl,-soname,$(SONAME) -Wl,--no-undefined -o $@ $^
	ln -sf $(SOFILE) $(LUA_BUILD)/$(SONAME)
	ln -sf $(SONAME) $(LUA_BUILD)/libatomicwriter.so

$(INC_BUILD)/atomicwriter.h: csrc/aw.h
	@mkdir -p $(dir $@)
	cp csrc/aw.h $@

# The embedding examples: a C host with the module linked in, and a
# C-only user of the core library (examples/README.md).
include examples/examples.mk
# Static analysis: make lint (cppcheck, luacheck, clang --analyze).
include mk/lint.mk
# The libFuzzer harnesses: make fuzz, make fuzz-ci (fuzz/README.md).
include fuzz/fuzz.mk

# Other systems: check-portable, cross-build, cross-test (mk/cross.mk).
include mk/cross.mk

# The digest's reference vectors (spec/15-hash_spec.lua runs it).
build/hash-vectors: spec/hash_vectors.c csrc/aw_hash.c csrc/aw_internal.h csrc/aw.h
	@mkdir -p build
	$(CC) $(ALL_CFLAGS) -Icsrc $(LDFLAGS) -o $@ spec/hash_vectors.c csrc/aw_hash.c

# aw_error_format into buffers of every size (spec/17-error_format_spec.lua).
build/error-format: spec/error_format.c $(STATICLIB)
	$(CC) $(ALL_CFLAGS) -Icsrc $(LDFLAGS) -o $@ spec/error_format.c $(STATICLIB)

# aw_library_version() and AW_VERSION_STRING (spec/20-version_spec.lua).
build/library-version: spec/library_version.c $(STATICLIB)
	$(CC) $(ALL_CFLAGS) -Icsrc $(LDFLAGS) -o $@ spec/library_version.c $(STATICLIB)

# A host that closes the watcher's descriptor (spec/12-watch_spec.lua).
build/watch-fd: spec/watch_fd.c $(STATICLIB)
	$(CC) $(ALL_CFLAGS) -Icsrc $(LDFLAGS) -o $@ spec/watch_fd.c $(STATICLIB)

# The host of spec/19-stack_spec.lua: the API on a thread with a 32 KiB
# stack, from C (the static library) and from $(LUA) (the module).
$(STACK_HOST): spec/stack_host.c csrc/aw.h $(STATICLIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Icsrc -I$(LUA_INCDIR) $(LDFLAGS) -o $@ spec/stack_host.c \
	  $(STATICLIB) $(EX_LUALIB) -lpthread -lm -ldl

# The out-of-memory sweep (spec/oom_host.c): every allocation of each call
# fails in turn, the core's (wrapped at link time) and the Lua state's;
# under valgrind, default Lua only (~1-2 min). .ci/run runs it.
OOM_HOST = $(LUA_BUILD)/oom-host
$(OOM_HOST): spec/oom_host.c csrc/aw.h $(STATICLIB) $(BUILD)/aw_lua.o
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Icsrc -I$(LUA_INCDIR) $(LDFLAGS) -o $@ spec/oom_host.c \
	  $(BUILD)/aw_lua.o $(STATICLIB) $(EX_LUALIB) -lm -ldl \
	  -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup

# The specs that concern the file system on each one this machine can
# mount (loop images, tmpfs, overlayfs, FUSE), skipping with the reason
# where it cannot (root needed; spec/check_fs.sh; docs/filesystems.md).
# Not in CI: it mounts. deps-fs installs the file systems' tools.
FS_DEB_PKGS ?= e2fsprogs xfsprogs btrfs-progs bindfs sshfs openssh-sftp-server ntfs-3g \
  fuse-overlayfs fusefat exfat-fuse exfatprogs dosfstools
check-fs: all
	LUA=$(LUA) AW_CPATH='$(AW_CPATH)' sh spec/check_fs.sh

deps-fs:
	@$(MAKE) --no-print-directory deps DEB_PKGS="$(FS_DEB_PKGS)"

check-oom: deps $(OOM_HOST)
	@d=$$(mktemp -d /tmp/aw-oom.XXXXXX); rc=0; \
	for m in core lua; do mkdir $$d/$$m && $(VALGRIND) $(OOM_HOST) $$m $$d/$$m || rc=1; done; \
	rm -rf $$d; exit $$rc

# Installs what a fresh Debian machine lacks (as root, or through sudo):
# everything for check, or only the interpreter and headers for the demo.
deps: PKGS = $(DEB_PKGS)
deps-lua: PKGS = $(LUA_DEB_PKGS)
deps deps-lua:
	@missing=""; for p in $(PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# The whole suite under $(LUA); ends with a line "N passed, M failed".
check: deps
	$(MAKE) clean-module
	$(MAKE) all
	$(MAKE) --no-print-directory stack-usage
	$(if $(filter yes,$(LINT)),$(MAKE) --no-print-directory lint)
	$(if $(IN_PLACE),$(MAKE) --no-print-directory abi-check)
	$(SPEC_ENV) sh spec/run.sh
	$(if $(filter yes,$(MEMCHECK)),$(MAKE) --no-print-directory memcheck)

# The suite under every Lua in $(LUAS), one "N passed, M failed" line each
# (.ci/run sums them). memcheck and lint run under $(DEFAULT_LUA) only: the C core
# is the same code under every version, the binding differs only in
# compat.h, and valgrind would add ~25 s per version. `make check LUA=...`
# alone runs it under any version.
check-matrix:
	@rc=0; for l in $(LUAS); do \
	  m=no; [ "$$l" = $(DEFAULT_LUA) ] && m=$(MEMCHECK); \
	  n=no; [ "$$l" = $(DEFAULT_LUA) ] && n=$(LINT); \
	  echo "=== make check LUA=$$l MEMCHECK=$$m LINT=$$n"; \
	  $(MAKE) --no-print-directory check LUA=$$l MEMCHECK=$$m LINT=$$n || rc=1; \
	done; exit $$rc

spec: all
	$(SPEC_ENV) sh spec/run.sh

# The C stack the core and the binding need, from gcc's call graph
# (mk/stack_usage.lua; docs/stack.md). Every call of aw.h and of the
# binding must fit 16 KiB (glibc's PTHREAD_STACK_MIN): hosts run Lua on
# small thread stacks. A frame may hold one aw_error (4.1 KiB: a message
# names a payload path of up to 4096 bytes) and some locals: 5 KiB; any
# bigger buffer goes to the heap. A chain of our frames gets 12 KiB, which
# leaves 4 KiB for the C library's and Lua's frames at its end (spec 19
# measures whole runs on a 32 KiB thread, theirs included).
STACK_CC          ?= gcc
STACK_FRAME_LIMIT ?= 5120
STACK_CHAIN_LIMIT ?= 12288
STACK_DIR          = build/stack-usage-$(LUA_NAME)
STACK_OBJ          = $(CORE_SRC:csrc/%.c=$(STACK_DIR)/%.o) $(STACK_DIR)/aw_lua.o
$(STACK_DIR)/%.o: csrc/%.c $(CORE_HDR) csrc/compat.h
	@mkdir -p $(STACK_DIR)
	$(STACK_CC) $(ALL_CFLAGS) -I$(LUA_INCDIR) -fstack-usage -fcallgraph-info=su -c $< -o $@
stack-usage: $(STACK_OBJ)
	$(LUA) mk/stack_usage.lua $(STACK_FRAME_LIMIT) $(STACK_CHAIN_LIMIT) csrc/aw.h $(STACK_OBJ:.o=.ci)

# The specs under valgrind memcheck: any error or leak in the C code the
# busted process runs fails the run (child processes are not traced). Left
# out by tag (spec/helpers.lua): #slow (the reader stress and the crash
# sweep: timing and other processes) and #valgrind (spec 11 runs its own).
VALGRIND = valgrind -q --error-exitcode=99 --leak-check=full \
  --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect
memcheck: all
	$(SPEC_ENV) WRAP="$(VALGRIND)" sh spec/run.sh --exclude-tags=slow,valgrind

# The in-process specs against a build with AddressSanitizer and
# UndefinedBehaviorSanitizer (preloaded into the stock interpreter, child
# processes included) and the collector running almost constantly, for
# memory errors, undefined behaviour and __gc mistakes valgrind may miss.
# Left out by tag: #slow (timing and other processes), #nosanitize
# (locking uses flock(1) and pkill, which hang under a preloaded ASan) and
# #valgrind (the embed examples, which valgrind checks).
SAN_FLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer
SAN_DIR   = build/sanitize-$(LUA_NAME)
sanitize: deps build/hash-vectors
	$(MAKE) --no-print-directory BUILD=$(SAN_DIR) MODDIR=$(SAN_DIR) \
	  STATICLIB=$(SAN_DIR)/libatomicwriter.a CFLAGS="-O1 -g $(SAN_FLAGS)" \
	  LIBFLAG="-shared $(SAN_FLAGS)" $(SAN_DIR)/atomicwriter/core.so
	LD_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)" \
	  ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  LUA_INIT='collectgarbage("setpause", 0)' \
	  LUA=$(LUA) BUSTED=$(BUSTED) AW_CPATH='./$(SAN_DIR)/?.so' sh spec/run.sh \
	  --exclude-tags=slow,nosanitize,valgrind

demo: deps-lua
	$(MAKE) --no-print-directory all
	AW_CPATH='$(AW_CPATH)' $(LUA) examples/demo.lua

# Benchmark against the bare system calls (bench/README.md); not part of check.
bench: all
	$(MAKE) -f bench/bench.mk LUA=$(LUA) LUA_INCDIR=$(LUA_INCDIR)

# What is not built: the manual page, the license and changelog, and the
# definitions for lua-language-server (docs/editors.md).
install-data:
	install -d $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(DOCDIR) $(DESTDIR)$(DATADIR)/atomicwriter/types
	install -m 0644 man/atomicwriter.1 $(DESTDIR)$(MANDIR)/man1/atomicwriter.1
	install -m 0644 LICENSE CHANGELOG.md $(DESTDIR)$(DOCDIR)/
	install -m 0644 types/atomicwriter.lua $(DESTDIR)$(DATADIR)/atomicwriter/types/atomicwriter.lua

# The Lua module and CLI for $(LUA), and the C library: shared (soname
# libatomicwriter.so.1) and static, the header as atomicwriter.h, and
# atomicwriter.pc for pkg-config (docs/install.md).
install: $(MODULE) $(STATICLIB) $(SHAREDLIB) install-data
	install -d $(DESTDIR)$(LIBDIR)/atomicwriter $(DESTDIR)$(LUADIR)/atomicwriter \
	  $(DESTDIR)$(INCDIR) $(DESTDIR)$(ARDIR) $(DESTDIR)$(PCDIR) $(DESTDIR)$(BINDIR)
	install -m 0755 $(MODULE) $(DESTDIR)$(LIBDIR)/atomicwriter/core.so
	install -m 0644 lua/atomicwriter/init.lua $(DESTDIR)$(LUADIR)/atomicwriter/init.lua
	sed '1s|.*|#!/usr/bin/env $(LUA_NAME)|' bin/atomicwriter > $(DESTDIR)$(BINDIR)/atomicwriter
	chmod 0755 $(DESTDIR)$(BINDIR)/atomicwriter
	install -m 0644 csrc/aw.h $(DESTDIR)$(INCDIR)/atomicwriter.h
	install -m 0644 $(STATICLIB) $(DESTDIR)$(ARDIR)/libatomicwriter.a
	install -m 0755 $(SHAREDLIB) $(DESTDIR)$(ARDIR)/$(SOFILE)
	ln -sf $(SOFILE) $(DESTDIR)$(ARDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(ARDIR)/libatomicwriter.so
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(ARDIR)|' -e 's|@INCDIR@|$(INCDIR)|' \
	  -e 's|@VERSION@|$(VERSION)|' mk/atomicwriter.pc.in > $(DESTDIR)$(PCDIR)/atomicwriter.pc
	chmod 0644 $(DESTDIR)$(PCDIR)/atomicwriter.pc

# The specs against the copy `make install DESTDIR=...` put there, and
# nothing of this checkout's lua/, csrc/ or bin/: LUA_PATH, LUA_CPATH and
# PATH lead into DESTDIR, spec/helpers.lua takes the copy from AW_*, and
# spec/20-release_spec.lua fails if a module or the CLI comes from
# elsewhere. Specs that need the checkout's C build are pending, saying so.
IC_ROOT = $(abspath $(DESTDIR))
IC_LPATH = $(IC_ROOT)$(LUADIR)/?.lua;$(IC_ROOT)$(LUADIR)/?/init.lua
IC_CPATH = $(IC_ROOT)$(LIBDIR)/?.so
installcheck:
	@[ -n "$(DESTDIR)" ] && [ -f "$(IC_ROOT)$(LIBDIR)/atomicwriter/core.so" ] || \
	  { echo "usage: make install DESTDIR=DIR && make installcheck DESTDIR=DIR"; exit 2; }
	PATH='$(IC_ROOT)$(BINDIR)':"$$PATH" LUA_PATH='$(IC_LPATH);;' LUA_CPATH='$(IC_CPATH);;' \
	  AW_INSTALLED='$(IC_ROOT)' AW_LPATH='$(IC_LPATH)' AW_CPATH='$(IC_CPATH)' \
	  AW_CLI='$(IC_ROOT)$(BINDIR)/atomicwriter' LUA=$(LUA) BUSTED=$(BUSTED) sh spec/run.sh

# The ABI of the shared library against the committed baseline of its
# soname (aw.h's ABI policy). abidiff's exit status sets bit 4 for any ABI
# change, bit 8 for an incompatible one (a symbol removed); a type that
# changed (a struct grown, a member moved) is only bit 4, so its summary
# decides: anything Removed or Changed fails, Added (a new function)
# passes with the report. A new soname (SOVERSION) starts a new baseline.
# `make abi-baseline` rewrites the baseline from this build, at a release
# or for a change that aw.h's policy allows (a reserved member used).
# Needs the -g in CFLAGS; paths and locations are left out, so the file
# depends on the code only.
ABI_BASELINE = abi/$(SONAME).abi
ABIDW_FLAGS  = --no-corpus-path --no-comp-dir-path --no-show-locs --drop-undefined-syms \
  --drop-private-types --header-file csrc/aw.h
abi-baseline: $(SHAREDLIB)
	@mkdir -p abi
	abidw $(ABIDW_FLAGS) --out-file $(ABI_BASELINE) $(SHAREDLIB)
abi-check: $(SHAREDLIB)
	@if [ ! -f $(ABI_BASELINE) ]; then \
	  echo "abi-check: no baseline for $(SONAME) ($(ABI_BASELINE)): a new soname starts one (make abi-baseline)"; \
	  exit 0; fi; \
	abidw $(ABIDW_FLAGS) --out-file $(LUA_BUILD)/$(SONAME).abi $(SHAREDLIB) || exit 1; \
	abidiff --no-show-locs $(ABI_BASELINE) $(LUA_BUILD)/$(SONAME).abi > $(LUA_BUILD)/abidiff.txt; rc=$$?; \
	cat $(LUA_BUILD)/abidiff.txt; \
	if [ $$((rc & 3)) -ne 0 ]; then echo "abi-check: abidiff failed ($$rc)"; exit 1; fi; \
	if [ $$((rc & 8)) -ne 0 ] || grep -Eq '[1-9][0-9]* (Removed|Changed)' $(LUA_BUILD)/abidiff.txt; then \
	  echo "abi-check: $(SONAME) breaks the ABI of $(ABI_BASELINE) (aw.h's ABI policy): undo it, or change SOVERSION"; \
	  exit 1; fi; \
	if [ $$rc -ne 0 ]; then echo "abi-check: only additions to $(ABI_BASELINE) (make abi-baseline at the release)"; \
	else echo "abi-check: $(SONAME) has the ABI of $(ABI_BASELINE)"; fi

# The release tarball, atomicwriter-$(VERSION).tar.gz with the top
# directory atomicwriter-$(VERSION)/: the files of HEAD (git archive) but
# those .gitattributes marks export-ignore (CI's and git's own). Commit
# first: the working tree's changes are not in it.
DIST = atomicwriter-$(VERSION)
dist:
	@git rev-parse --verify -q HEAD >/dev/null || { echo "make dist: needs a git checkout"; exit 2; }
	git archive --format=tar.gz --prefix=$(DIST)/ -o $(DIST).tar.gz HEAD
	@echo "$(DIST).tar.gz: $$(tar tzf $(DIST).tar.gz | grep -vc '/$$') files"

# The two other ways to a tested module, as CI runs them (.ci/run; under
# the default Lua, each ends with "N passed, M failed"):
#   check-rock  a fresh clone of HEAD, no make: `luarocks make`, then
#               `luarocks test` (the whole suite)
#   check-dist  `make dist`; the release rockspec, pointed at that tarball
#               by file://, built offline into a tree of its own; then the
#               tarball's whole suite against that tree (`luarocks test`)
ROCK = luarocks --lua-version $(LUA_VERSION)
check-rock:
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	git clone -q . "$$tmp/clone" && cd "$$tmp/clone" && \
	$(ROCK) --tree "$$tmp/tree" make rockspec/atomicwriter-scm-1.rockspec && \
	{ $(ROCK) test rockspec/atomicwriter-scm-1.rockspec -- --output=TAP > "$$tmp/tap" 2>&1; \
	  rc=$$?; cat "$$tmp/tap"; sh spec/tap_summary.sh "$$tmp/tap" $$rc; }
check-dist: dist
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && spec=atomicwriter-$(VERSION)-1.rockspec && \
	tree="$$tmp/tree" && mv $(DIST).tar.gz "$$tmp/" && \
	sed 's|^  url = .*|  url = "file://'"$$tmp"'/$(DIST).tar.gz",|' rockspec/$$spec > "$$tmp/$$spec" && \
	cd "$$tmp" && $(ROCK) --tree "$$tree" build --deps-mode=none $$spec && \
	tar xzf $(DIST).tar.gz && cd $(DIST) && \
	{ AW_INSTALLED="$$tree" AW_CPATH="$$tree/lib/lua/$(LUA_VERSION)/?.so" AW_CLI="$$tree/bin/atomicwriter" \
	  AW_LPATH="$$tree/share/lua/$(LUA_VERSION)/?.lua;$$tree/share/lua/$(LUA_VERSION)/?/init.lua" \
	  $(ROCK) test ../$$spec -- --output=TAP > "$$tmp/tap" 2>&1; \
	  rc=$$?; cat "$$tmp/tap"; sh spec/tap_summary.sh "$$tmp/tap" $$rc; }

clean-module:
	rm -f $(MODULE)

# Also what `luarocks make` builds in the checkout (objects beside their
# sources, the module in ./atomicwriter/).
clean:
	rm -rf build $(MODULE) csrc/*.o atomicwriter/core.so atomicwriter-*.tar.gz
	rmdir csrc/atomicwriter atomicwriter 2>/dev/null || true

print:
	@echo "LUA=$(LUA) LUA_VERSION=$(LUA_VERSION) LUA_INCDIR=$(LUA_INCDIR)"
	@echo "CC=$(CC) CFLAGS=$(CFLAGS) WARN=$(WARN) LIBFLAG=$(LIBFLAG) STACK_CLASH=$(STACK_CLASH)"
	@echo "PREFIX=$(PREFIX) LIBDIR=$(LIBDIR) LUADIR=$(LUADIR) BINDIR=$(BINDIR)"
	@echo "DATADIR=$(DATADIR) MANDIR=$(MANDIR) DOCDIR=$(DOCDIR)"
	@echo "MODULE=$(MODULE) STATICLIB=$(STATICLIB) STACK_HOST=$(STACK_HOST)"
	@echo "LUA_BUILD=$(LUA_BUILD) EX_DIR=$(EX_DIR) AW_CPATH=$(AW_CPATH)"
	@echo "VERSION=$(VERSION) SONAME=$(SONAME) SHAREDLIB=$(SHAREDLIB) INC_BUILD=$(INC_BUILD)"
	@echo "CPPFLAGS=$(CPPFLAGS) LDFLAGS=$(LDFLAGS) VISIBILITY=$(VISIBILITY) MODULE_LDFLAGS=$(MODULE_LDFLAGS)"
	@echo "DEB_PKGS=$(DEB_PKGS)"

# The Lua C path of the module built for $(LUA) (mk/lua.mk): spec/run.sh
# asks for it when AW_CPATH is not set.
print-cpath:
	@echo '$(AW_CPATH)'
