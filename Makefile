# spindle: the commands the README leads with.
#
#   make demo          install what is missing, build (release), run the demo
#   make test          install what is missing, then every test stage:
#                        release  release build, all tests (both backends)
#                        asan     ASan+UBSan build, all tests
#                        tsan     TSan build, the tests labelled multithreaded
#                        clang    Clang build with -Werror, and its tests
#                        aarch64  AArch64 cross build of the context layer, tests under QEMU
#                      A failed stage does not stop the others; the summary at the
#                      end names it and `make test` fails. One stage alone:
#                      `make test-asan`; a few: `make test TEST_STAGES="release tsan"`.
#   make bench         install what benchmarks need, build (release), run them;
#   make bench B=NAME  only the benchmark NAME (B="A B": A and B)
#   make format        clang-format every C++ source
#   make clean         remove build/
#
# Builds and ctest use JOBS=2 parallel jobs (the machines have 2 cores).

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
# The stages share two cores: never run them side by side.
.NOTPARALLEL:

JOBS ?= 2
TEST_STAGES ?= release asan tsan clang aarch64
# 0: the clang stage only builds.
CLANG_TESTS ?= 1
B ?=

ASAN_OPTIONS ?= detect_leaks=1:halt_on_error=1:check_initialization_order=1:strict_init_order=1
UBSAN_OPTIONS ?= print_stacktrace=1:halt_on_error=1
TSAN_OPTIONS ?= halt_on_error=1:second_deadlock_stack=1
# GCC 12's TSan cannot cope with the address layout of kernels that randomize
# mmap with more than 28 bits ("unexpected memory mapping"); run those without ASLR.
TSAN_WRAP := $(shell test "$$(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo 0)" -gt 28 \
  && command -v setarch >/dev/null && echo "setarch $$(uname -m) -R")

CTEST := ctest --output-on-failure -j$(JOBS)

# Keeps a stage's CTest output in build/test-logs/<stage>.log for the final tally.
tally = 2>&1 | { mkdir -p build/test-logs && tee build/test-logs/$(1).log; }

banner = @printf '\n==================== %s ====================\n' "$(1)"

# configure + build one preset
define build_preset
cmake --preset $(1)
cmake --build --preset $(1) --parallel $(JOBS)
endef

.PHONY: help deps build demo test test-release test-asan test-tsan test-clang test-aarch64 \
  bench format clean

help:
	@sed -n '3,/^$$/p' Makefile | sed 's/^# \{0,1\}//'

deps:
	$(call banner,install-deps)
	scripts/install-deps.sh

build:
	$(call banner,build: release)
	$(call build_preset,release)

demo: deps build
	$(call banner,demo)
	build/release/examples/demo

test: deps
	@rm -rf build/test-logs; mkdir -p build/test-logs; \
	failed=(); summary=(); \
	for stage in $(TEST_STAGES); do \
	  t0=$$(date +%s); \
	  if $(MAKE) --no-print-directory test-$$stage; then result=ok; else result=FAILED; failed+=("$$stage"); fi; \
	  summary+=("$$(printf '  %-8s %-7s %5ds' "$$stage" "$$result" "$$(( $$(date +%s) - t0 ))")"); \
	done; \
	printf '\n==================== %s ====================\n' "make test: summary"; \
	printf '%s\n' "$${summary[@]}"; \
	passed=0; failures=0; \
	for log in build/test-logs/*.log; do \
	  line=$$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$$log" | tail -n 1) || true; \
	  [[ -n $$line ]] || continue; \
	  f=$$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$$line"); \
	  n=$$(sed -E 's/.* failed out of ([0-9]+).*/\1/' <<<"$$line"); \
	  passed=$$(( passed + n - f )); failures=$$(( failures + f )); \
	done; \
	if (( $${#failed[@]} )); then echo "make test: FAILED: $${failed[*]}"; fi; \
	echo "$$passed passed, $$failures failed"; \
	if (( $${#failed[@]} )); then exit 1; fi

test-release:
	$(call banner,test release: build and all tests)
	$(call build_preset,release)
	$(CTEST) --test-dir build/release --no-tests=error $(call tally,release)

test-asan:
	$(call banner,test asan: ASan+UBSan build and all tests)
	$(call build_preset,asan)
	ASAN_OPTIONS='$(ASAN_OPTIONS)' UBSAN_OPTIONS='$(UBSAN_OPTIONS)' \
	  $(CTEST) --test-dir build/asan --no-tests=error $(call tally,asan)

test-tsan:
	$(call banner,test tsan: TSan build and the multithreaded tests)
	$(call build_preset,tsan)
	TSAN_OPTIONS='$(TSAN_OPTIONS)' $(TSAN_WRAP) $(CTEST) --test-dir build/tsan -L multithreaded $(call tally,tsan)

test-clang:
	$(call banner,test clang: Clang build with -Werror$(if $(filter 1,$(CLANG_TESTS)), and all tests))
	$(call build_preset,clang)
ifeq ($(CLANG_TESTS),1)
	$(CTEST) --test-dir build/clang --no-tests=error $(call tally,clang)
endif

test-aarch64:
	$(call banner,test aarch64: cross build and tests under QEMU)
	@if [[ -f scripts/test-aarch64.sh ]]; then \
	  bash scripts/test-aarch64.sh $(call tally,aarch64); \
	else \
	  echo "skipped: scripts/test-aarch64.sh does not exist"; \
	fi

bench:
	$(call banner,install-deps --bench)
	scripts/install-deps.sh --bench
	$(call banner,build: release)
	$(call build_preset,release)
	$(call banner,bench$(if $(B),: $(B)))
	python3 bench/run.py --build-dir build/release --update-docs $(foreach b,$(B),--only $(b))

format:
	@command -v clang-format >/dev/null || { echo "make format: clang-format is not installed (apt-get install clang-format)"; exit 1; }
	find include src tests bench examples -type f \
	  \( -name '*.cpp' -o -name '*.hpp' -o -name '*.h' -o -name '*.cc' \) -print0 \
	  | xargs -0 -r clang-format -i

clean:
	rm -rf build
