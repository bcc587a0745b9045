# Static analysis, part of `make check` (under $(DEFAULT_LUA) only, as
# memcheck: none of it depends on the Lua version): `make lint` runs
#   lint-cppcheck  Debian's cppcheck over csrc/ (warning, performance and
#                  portability checks, every #if configuration: --force);
#                  suppressions in mk/cppcheck.supp, each with its reason
#   lint-luacheck  luacheck over lua/, bin/, spec/, bench/, examples/, types/,
#                  configured (with a reason for every ignore) in .luacheckrc
#   lint-analyze   clang's static analyzer over csrc/, every finding an error
# cppcheck's "style" checks are not a gate: under the #if configurations
# of other platforms they report members and assignments as unused that
# one platform uses, and the rest is taste.
# Cost on an idle 2-core machine: cppcheck ~3 s, luacheck ~1 s, the
# analyzer ~1.5 s a file; the C checks leave a stamp per input in
# build/lint/ and run again only when a source or header changed.
CPPCHECK ?= cppcheck
LUACHECK ?= luacheck
CLANG    ?= clang
LINT_DIR  = build/lint
LINT_C    = $(CORE_SRC) csrc/aw_lua.c
LINT_LUA  = lua bin/atomicwriter spec bench examples types mk

.PHONY: lint lint-cppcheck lint-luacheck lint-analyze
lint: lint-cppcheck lint-luacheck lint-analyze

lint-cppcheck: $(LINT_DIR)/cppcheck.ok
$(LINT_DIR)/cppcheck.ok: $(LINT_C) $(CORE_HDR) csrc/compat.h mk/cppcheck.supp
	@mkdir -p $(LINT_DIR)
	@echo "cppcheck csrc/"
	@$(CPPCHECK) -q --force --std=c99 --enable=warning,performance,portability \
	  --error-exitcode=1 --inline-suppr --suppressions-list=mk/cppcheck.supp \
	  -Icsrc $(LINT_C) || \
	  { echo "lint-cppcheck: FAILED: cppcheck reports the problems above" \
	    "(fix them, or suppress a false positive in mk/cppcheck.supp with its reason)"; exit 1; }
	@touch $@

lint-luacheck:
	@echo "luacheck $(LINT_LUA)"
	@$(LUACHECK) -q --no-color --formatter plain $(LINT_LUA) || \
	  { echo "lint-luacheck: FAILED: luacheck reports the warnings above" \
	    "(fix them, or ignore one in .luacheckrc with its reason)"; exit 1; }

LINT_ANALYZED = $(LINT_C:csrc/%.c=$(LINT_DIR)/%.analyzed)
lint-analyze: $(LINT_ANALYZED)
	@echo "clang --analyze csrc/: clean"
$(LINT_DIR)/%.analyzed: csrc/%.c $(CORE_HDR) csrc/compat.h
	@mkdir -p $(LINT_DIR)
	@$(CLANG) --analyze -Xanalyzer -analyzer-werror -std=c99 -Icsrc -I$(LUA_INCDIR) \
	  -o /dev/null $< || \
	  { echo "lint-analyze: FAILED: clang --analyze reports the problems above in $<"; exit 1; }
	@touch $@
