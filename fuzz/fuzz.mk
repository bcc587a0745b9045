# fuzz/fuzz.mk - the libFuzzer harnesses (fuzz/README.md). Included by the
# top Makefile; uses its CORE_SRC, CORE_HDR, WARN and its `deps` rule.
#   make fuzz       each harness for FUZZ_TIME seconds (default 600)
#   make fuzz-ci    each for FUZZ_CI_TIME seconds (default 60), from .ci/run
# Both replay the seeds and reproducers in fuzz/corpus/<name>/ first, grow
# a working corpus in build/fuzz/corpus/<name>/, and end with a line
# "N passed, M failed" (one per harness; a crash or failed check fails it).
# Clang and its runtimes come from Debian (clang-14, libclang-rt-14-dev),
# installed by `make deps-fuzz` when missing.

FUZZ_CC      ?= clang-14
FUZZ_NAMES    = paths manifest roundtrip errfmt
FUZZ_BINS     = $(FUZZ_NAMES:%=build/fuzz/%)
FUZZ_CFLAGS   = -std=c99 $(WARN) -g -O1 -fno-omit-frame-pointer \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -Icsrc
FUZZ_TIME    ?= 600
FUZZ_CI_TIME ?= 60
FUZZ_DEB_PKGS = clang-14 libclang-rt-14-dev

.PHONY: fuzz fuzz-ci fuzz-build deps-fuzz
deps-fuzz:
	@$(MAKE) --no-print-directory deps DEB_PKGS="$(FUZZ_DEB_PKGS)"

build/fuzz/%: fuzz/%.c fuzz/fuzz.h $(CORE_SRC) $(CORE_HDR)
	@mkdir -p build/fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(CORE_SRC)

fuzz-build: deps-fuzz
	$(MAKE) --no-print-directory $(FUZZ_BINS)

fuzz: fuzz-build
	sh fuzz/run.sh $(FUZZ_TIME) $(FUZZ_NAMES)

fuzz-ci: fuzz-build
	sh fuzz/run.sh $(FUZZ_CI_TIME) $(FUZZ_NAMES)
