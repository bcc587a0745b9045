# bench/bench.mk - the atomicwriter benchmark (bench/README.md).
# Run from the repository root, after the module is built:
#   make bench                          (the top-level Makefile calls this file)
#   make -f bench/bench.mk              the same, without rebuilding the module
#   BENCH_QUICK=1 make bench            a ~15 s smoke run
#   make -f bench/bench.mk profile      syscall counts per call (strace), module vs floor
#   make -f bench/bench.mk trees        the tree rows alone (BENCH_TREE_MB=256 for a smaller tree)

# LUA, LUA_INCDIR, and where $(LUA)'s module is (AW_CPATH): the build's rule.
include mk/lua.mk
CC         ?= cc
BENCH_CFLAGS ?= -O2
BENCH_WARN = -Wall -Wextra -Werror
B          = bench/build
# The floor is plain C, one for every Lua; the clock module is $(LUA)'s.
CLOCK_DIR  = $(LUA_BUILD)/bench

BENCH_ENV  = LUA_PATH='lua/?.lua;lua/?/init.lua;bench/?.lua;;' LUA_CPATH='$(AW_CPATH);./$(CLOCK_DIR)/?.so;;'

.PHONY: run trees tools profile clean

# BENCH_TREES=0 leaves out the tree rows (bench/trees.lua; BENCH_TREE_MB).
run: tools
	$(BENCH_ENV) $(LUA) bench/run.lua
	@if [ "$(BENCH_TREES)" != 0 ]; then echo; $(BENCH_ENV) $(LUA) bench/trees.lua; fi

trees: tools
	$(BENCH_ENV) $(LUA) bench/trees.lua

tools: $(B)/floor $(B)/clonetree $(CLOCK_DIR)/benchclock.so

$(B)/floor: bench/floor.c
	@mkdir -p $(B)
	$(CC) -std=c99 $(BENCH_CFLAGS) $(BENCH_WARN) -o $@ bench/floor.c

# The floor of a reflinked tree copy (trees.lua's T1r): Linux's FICLONE.
$(B)/clonetree: bench/clonetree.c
	@mkdir -p $(B)
	$(CC) -std=c99 $(BENCH_CFLAGS) $(BENCH_WARN) -o $@ bench/clonetree.c

$(CLOCK_DIR)/benchclock.so: bench/clock.c
	@mkdir -p $(CLOCK_DIR)
	$(CC) -std=c99 $(BENCH_CFLAGS) $(BENCH_WARN) -fPIC -shared -I$(LUA_INCDIR) -o $@ bench/clock.c

profile: tools
	$(BENCH_ENV) LUA=$(LUA) sh bench/profile.sh

clean:
	rm -rf $(B)
