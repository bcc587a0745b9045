# bench/bench.mk - the atomicwriter benchmark (bench/README.md).
# Run from the repository root, after the module is built:
#   make bench                          (the top-level Makefile calls this file)
#   make -f bench/bench.mk              the same, without rebuilding the module
#   BENCH_QUICK=1 make bench            a ~15 s smoke run
#   make -f bench/bench.mk profile      syscall counts per call (strace), module vs floor

LUA        ?= lua5.4
LUA_INCDIR ?= /usr/include/$(LUA)
CC         ?= cc
BENCH_CFLAGS ?= -O2
BENCH_WARN = -Wall -Wextra -Werror
B          = bench/build

BENCH_ENV  = LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='csrc/?.so;$(B)/?.so;;'

.PHONY: run tools profile clean

run: tools
	$(BENCH_ENV) $(LUA) bench/run.lua

tools: $(B)/floor $(B)/benchclock.so

$(B)/floor: bench/floor.c
	@mkdir -p $(B)
	$(CC) -std=c99 $(BENCH_CFLAGS) $(BENCH_WARN) -o $@ bench/floor.c

$(B)/benchclock.so: bench/clock.c
	@mkdir -p $(B)
	$(CC) -std=c99 $(BENCH_CFLAGS) $(BENCH_WARN) -fPIC -shared -I$(LUA_INCDIR) -o $@ bench/clock.c

profile: tools
	$(BENCH_ENV) LUA=$(LUA) sh bench/profile.sh

clean:
	rm -rf $(B)
