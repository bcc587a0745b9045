# mk/lua.mk - which Lua, and where its build goes. The one copy of that
# rule: Makefile and bench/bench.mk include this file, examples/examples.mk
# and spec/11 take it from Makefile (`make print`).
#
#   LUA        lua5.1 lua5.2 lua5.3 lua5.4 luajit (a name on PATH, or a path)
#   LUA_BUILD  build/ for Lua 5.4, build/<lua>/ for any other: the static
#              library, the examples, the benchmark's Lua module
#   MODDIR     csrc/ for Lua 5.4 (atomicwriter/core.so in place: the demo's,
#              busted's and the README's default), $(LUA_BUILD) for any other
#   AW_CPATH   the Lua C path that finds that atomicwriter.core
# so that checks under several versions never load or replace each other's.

LUA        ?= lua5.4
LUA_NAME    = $(notdir $(LUA))
LUA_VERSION ?= $(if $(filter luajit,$(LUA_NAME)),5.1,$(patsubst lua%,%,$(LUA_NAME)))
# Debian's layout; pkg-config may not be installed yet when make starts.
LUA_INCDIR ?= /usr/include/$(if $(filter luajit,$(LUA_NAME)),luajit-2.1,lua$(LUA_VERSION))

DEFAULT_LUA = lua5.4
IN_PLACE    = $(filter $(DEFAULT_LUA),$(LUA_NAME))
LUA_BUILD   = $(if $(IN_PLACE),build,build/$(LUA_NAME))
MODDIR      = $(if $(IN_PLACE),csrc,$(LUA_BUILD))
AW_CPATH    = ./$(MODDIR)/?.so
