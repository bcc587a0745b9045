# atomicwriter - build, test, demo, install.
# Variables follow LuaRocks' names; override any of them on the command line
# (make check LUA=lua5.3).

LUA        ?= lua5.4
LUA_VERSION ?= $(if $(filter luajit,$(LUA)),5.1,$(patsubst lua%,%,$(LUA)))
# Debian's layout; pkg-config may not be installed yet when make starts.
LUA_INCDIR ?= /usr/include/$(if $(filter luajit,$(LUA)),luajit-2.1,lua$(LUA_VERSION))
BUSTED     ?= /usr/bin/busted

CC         ?= cc
CFLAGS     ?= -O2 -g
WARN       ?= -Wall -Wextra -Werror
LIBFLAG    ?= -shared
PREFIX     ?= /usr/local
LIBDIR     ?= $(PREFIX)/lib/lua/$(LUA_VERSION)
LUADIR     ?= $(PREFIX)/share/lua/$(LUA_VERSION)
BINDIR     ?= $(PREFIX)/bin
INCDIR     ?= $(PREFIX)/include
ARDIR      ?= $(PREFIX)/lib
DESTDIR    ?=

CORE_SRC   = csrc/aw_error.c csrc/aw_path.c csrc/aw_fs.c csrc/aw_write.c
CORE_HDR   = csrc/aw.h csrc/aw_internal.h
BUILD      = build/$(LUA)
CORE_PIC   = $(CORE_SRC:csrc/%.c=$(BUILD)/%.o)
MODULE     = csrc/atomicwriter/core.so
STATICLIB  = build/libatomicwriter.a
ALL_CFLAGS = -std=c99 $(WARN) $(CFLAGS) -fPIC

# Debian packages `make check` installs when they are missing.
DEB_PKGS   ?= lua5.4 liblua5.4-dev lua-busted luarocks pkg-config valgrind strace procps

.PHONY: all check deps spec memcheck demo bench install clean clean-module print
all: $(MODULE) $(STATICLIB)

$(BUILD)/%.o: csrc/%.c $(CORE_HDR) csrc/compat.h
	@mkdir -p $(BUILD)
	$(CC) $(ALL_CFLAGS) -I$(LUA_INCDIR) -c $< -o $@

$(MODULE): $(CORE_PIC) $(BUILD)/aw_lua.o
	@mkdir -p $(dir $@)
	$(CC) $(LIBFLAG) -o $@ $^

$(STATICLIB): $(CORE_PIC)
	ar rcs $@ $^

# Installs what a fresh Debian machine lacks (as root, or through sudo).
deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# The whole suite; ends with a line "N passed, M failed".
check: deps
	$(MAKE) clean-module
	$(MAKE) all
	LUA=$(LUA) BUSTED=$(BUSTED) sh spec/run.sh
	$(MAKE) --no-print-directory memcheck

spec: all
	LUA=$(LUA) BUSTED=$(BUSTED) sh spec/run.sh

# The specs that run in-process under valgrind memcheck: any error or leak
# in the C code fails the run (child processes are not traced; the reader
# and crash specs test timing and other processes, not this one).
VALGRIND = valgrind -q --error-exitcode=99 --leak-check=full \
  --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect
memcheck: all
	LUA=$(LUA) BUSTED=$(BUSTED) WRAP="$(VALGRIND)" sh spec/run.sh \
	  $(filter-out spec/08-readers_spec.lua spec/09-crash_spec.lua,$(wildcard spec/0*_spec.lua))

demo: all
	$(LUA) examples/demo.lua

# Benchmark against the bare system calls (bench/README.md); not part of check.
bench: all
	$(MAKE) -f bench/bench.mk LUA=$(LUA) LUA_INCDIR=$(LUA_INCDIR)

install: all
	install -d $(DESTDIR)$(LIBDIR)/atomicwriter $(DESTDIR)$(LUADIR)/atomicwriter \
	  $(DESTDIR)$(INCDIR) $(DESTDIR)$(ARDIR)
	install -m 0755 $(MODULE) $(DESTDIR)$(LIBDIR)/atomicwriter/core.so
	install -m 0644 lua/atomicwriter/init.lua $(DESTDIR)$(LUADIR)/atomicwriter/init.lua
	install -m 0644 csrc/aw.h $(DESTDIR)$(INCDIR)/aw.h
	install -m 0644 $(STATICLIB) $(DESTDIR)$(ARDIR)/libatomicwriter.a

clean-module:
	rm -f $(MODULE)

clean:
	rm -rf build $(MODULE)

print:
	@echo "LUA=$(LUA) LUA_VERSION=$(LUA_VERSION) LUA_INCDIR=$(LUA_INCDIR)"
	@echo "CC=$(CC) CFLAGS=$(CFLAGS) WARN=$(WARN) LIBFLAG=$(LIBFLAG)"
	@echo "PREFIX=$(PREFIX) LIBDIR=$(LIBDIR) LUADIR=$(LUADIR) BINDIR=$(BINDIR)"
