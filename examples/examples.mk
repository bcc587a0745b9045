# examples/examples.mk - the two examples (examples/README.md):
#   embed-host  a C host embedding Lua, with the module linked in statically
#               and lua/atomicwriter/init.lua compiled into the binary
#   c-only      the C core alone (csrc/aw.h, libatomicwriter.a), no Lua
# built in $(LUA_BUILD)/examples/ (mk/lua.mk: build/examples/ for Lua 5.4,
# build/<lua>/examples/ for any other), as each Lua's module is kept apart.
#
# Included by the top-level Makefile after its `all` rule: it uses that
# file's variables (CC, CFLAGS, LDFLAGS, LUA, LUA_INCDIR, LUA_VERSION) and
# its rule for $(STATICLIB), and mk/lua.mk's LUA_BUILD. Including it twice is harmless, so this also
# works whether or not the top Makefile includes it:
#   make -f Makefile -f examples/examples.mk examples

ifndef AW_EXAMPLES_MK
AW_EXAMPLES_MK := 1

ifeq ($(STATICLIB),)
$(error examples/examples.mk: include it after the top Makefile's variables (STATICLIB is not set))
endif

EX_DIR     = $(LUA_BUILD)/examples
EX_CFLAGS  = -std=c99 -Wall -Wextra -Werror $(CPPFLAGS) $(CFLAGS) $(STACK_CLASH)
# Debian: liblua5.4.so from liblua5.4-dev; LuaJIT's library has its own name.
EX_LUALIB ?= $(if $(filter luajit,$(LUA_NAME)),-lluajit-5.1,-llua$(LUA_VERSION))
EX_LIBS    = $(EX_LUALIB) -lm -ldl

.PHONY: examples
examples: $(EX_DIR)/embed-host $(EX_DIR)/c-only

# init.lua as a C byte array: od is in coreutils (xxd may be missing), and
# an array, unlike a string literal, has no length limit and no escaping.
$(EX_DIR)/init_lua.h: lua/atomicwriter/init.lua examples/examples.mk
	@mkdir -p $(EX_DIR)
	od -An -v -tu1 lua/atomicwriter/init.lua > $@.bytes
	{ echo '/* Generated from lua/atomicwriter/init.lua by examples/examples.mk. */'; \
	  echo 'static const unsigned char aw_embed_init_lua[] = {'; \
	  sed 's/[0-9][0-9]*/&,/g' $@.bytes; \
	  echo '};'; } > $@.tmp
	rm -f $@.bytes
	mv $@.tmp $@

# The binding, compiled for an executable (the module's copy is -fPIC).
$(EX_DIR)/aw_lua.o: csrc/aw_lua.c csrc/aw.h csrc/compat.h
	@mkdir -p $(EX_DIR)
	$(CC) $(EX_CFLAGS) -Icsrc -I$(LUA_INCDIR) -c csrc/aw_lua.c -o $@

$(EX_DIR)/host.o: examples/embed/host.c $(EX_DIR)/init_lua.h
	$(CC) $(EX_CFLAGS) -I$(EX_DIR) -I$(LUA_INCDIR) -c examples/embed/host.c -o $@

$(EX_DIR)/embed-host: $(EX_DIR)/host.o $(EX_DIR)/aw_lua.o $(STATICLIB)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(EX_DIR)/host.o $(EX_DIR)/aw_lua.o $(STATICLIB) $(EX_LIBS)

# c-only includes the header by its installed name, atomicwriter.h: from
# $(INC_BUILD) here, from pkg-config's Cflags against an installed copy
# (make example-pkgconfig, docs/install.md).
$(EX_DIR)/c-only: examples/c-only/main.c $(INC_BUILD)/atomicwriter.h $(STATICLIB)
	@mkdir -p $(EX_DIR)
	$(CC) $(EX_CFLAGS) -I$(INC_BUILD) $(LDFLAGS) -o $@ examples/c-only/main.c $(STATICLIB)

endif
