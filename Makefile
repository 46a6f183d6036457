# Task Runner: build, run and test (drives CMake and ctest).
#
#   make / make build   release build in build/ (installs missing packages first)
#   make build-asan     debug build with ASan + UBSan in build-asan/
#   make run            build, then start the local stack (scripts/stack start)
#   make stop           stop the local stack
#   make test           both builds, then every test against a fresh test stack
#   make check          same as make test
#   make bench          scripts/bench, when it exists
#   make soak           SOAK_MINUTES (10) of mixed load under chaos against a
#                       stack of its own (var/soak), then the invariant checker
#                       (tests/soak/soak.py; results in var/soak-results/)
#   make failover-test  primary + synchronous standby; kill -9 the primary
#                       under load, promote the standby (tests/soak/failover.py)
#   make multihost-test two front stacks and 3 workers on one PostgreSQL
#                       (tests/soak/multihost.py)
#   make fuzz           libFuzzer targets (clang) in build-fuzz/, each run
#                       FUZZ_SECONDS (600) at once; findings in build-fuzz/work/
#   make fmt            clang-format the C sources (.clang-format)
#   make clean          remove the build dirs (the var dir is kept)

SHELL := /bin/bash
JOBS ?= 2
CTEST_TIMEOUT ?= 600
C_DIRS := shared fcgi worker tests

.PHONY: all deps deps-test deps-bench build build-asan run stop test check bench soak failover-test multihost-test fuzz fmt clean

all: build

deps:
	scripts/deps run

# What make test and make bench need beyond building and running: make run
# installs none of it.
deps-test:
	scripts/deps test

deps-bench:
	scripts/deps bench

build: deps
	cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
	cmake --build build -j$(JOBS)

build-asan: deps-test
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DTR_SANITIZE=ON
	cmake --build build-asan -j$(JOBS)

run: build
	scripts/stack start

stop:
	scripts/stack stop

# ctest's stack fixture starts the test stack before the integration tests
# and stops it afterwards, failed tests or not; ctest exits non-zero when
# any test failed.
test: deps-test build build-asan
	cd build-asan && ctest --output-on-failure --timeout $(CTEST_TIMEOUT)

check: test

bench: deps-bench build
	@if [ -x scripts/bench ]; then scripts/bench; else echo "bench: not yet (no scripts/bench)"; fi

SOAK_MINUTES ?= 10

soak: deps-test build
	SOAK_MINUTES=$(SOAK_MINUTES) python3 tests/soak/soak.py

failover-test: deps-test build
	python3 tests/soak/failover.py

multihost-test: deps-test build
	python3 tests/soak/multihost.py

FUZZ_SECONDS ?= 600
FUZZ_TARGETS := fuzz_validate fuzz_urlquery fuzz_call_request

fuzz: deps-test
	cmake -S tests/fuzz -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug
	cmake --build build-fuzz -j$(JOBS)
	@pids=(); for t in $(FUZZ_TARGETS); do \
	    tests/fuzz/run-fuzz build-fuzz/$$t $(FUZZ_SECONDS) build-fuzz/work/$$t & pids+=($$!); \
	done; rc=0; for p in "$${pids[@]}"; do wait $$p || rc=1; done; exit $$rc

fmt:
	@command -v clang-format >/dev/null || { echo "fmt: clang-format is not installed (apt-get install clang-format)" >&2; exit 1; }
	find $(C_DIRS) -name '*.[ch]' -print0 2>/dev/null | xargs -0 -r clang-format -i

clean:
	rm -rf build build-asan build-fuzz
