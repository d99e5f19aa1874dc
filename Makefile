# Samsa: top-level wrapper around CMake. `make run` and `make test` work on a
# fresh Debian 12 machine: they install what is missing, build, then run.

SHARED ?= ../shared
BUILD ?= build
BUILD_ASAN ?= build-asan
BUILD_TSAN ?= build-tsan
BUILD_FUZZ ?= build-fuzz
FUZZ_SECONDS ?= 60
JOBS ?= $(shell nproc)

# Debian packages the build and the tests need (checked with dpkg, installed
# with apt-get when running as root).
DEB_PACKAGES := cmake ninja-build gcc clang libclang-rt-14-dev clang-format \
	librdkafka-dev kcat zlib1g-dev liblz4-dev libzstd-dev libsnappy-dev \
	python3 python3-venv maven openjdk-17-jdk-headless nftables

.PHONY: all deps build run cluster test test-unit test-integration test-java test-asan test-tsan fuzz protocol protocol-check \
	format format-check clean bench bench-quick raft-sim repl-sim jepsen

all: build

deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else \
	    echo "missing packages; run: sudo apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

run: build
	mkdir -p data
	./$(BUILD)/bin/samsa-server $(ARGS)

# Three nodes (brokers and controllers) on localhost:9092/9192/9292, data in ./data/node-N.
cluster: build
	tools/cluster.sh ./$(BUILD)/bin/samsa-server $(ARGS)

test-unit: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

VENV ?= .venv
$(VENV)/.installed: tests/integration/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q -r tests/integration/requirements.txt
	touch $@

# Integration tests: real clients against a real samsa-server.
test-integration: build $(VENV)/.installed
	$(VENV)/bin/pytest -q -p no:cacheprovider tests/integration
	$(VENV)/bin/pytest -q -p no:cacheprovider tests/cluster

# Replication under a randomized fault schedule (tests/cluster/jepsen.py, docs/testing-cluster.md):
# make jepsen [JEPSEN_MINUTES=30] [JEPSEN_ARGS="--seed 7 --spare-controller --faults kill_leader,cut_pair"]
# Prints the counts at the end; fails on any anomaly or liveness failure.
JEPSEN_MINUTES ?= 30
jepsen: build $(VENV)/.installed
	$(VENV)/bin/python tests/cluster/jepsen.py --minutes $(JEPSEN_MINUTES) $(JEPSEN_ARGS)

# Java client compatibility (kafka-clients 4.x from Maven Central).
test-java: build
	cd tests/compat/java && mvn -B -ntp test

test: test-unit test-integration test-java

$(BUILD_ASAN)/build.ninja:
	CC=clang cmake -S . -B $(BUILD_ASAN) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DSAMSA_SANITIZE=ON

test-asan: deps $(BUILD_ASAN)/build.ninja
	cmake --build $(BUILD_ASAN) -j $(JOBS)
	cd $(BUILD_ASAN) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -j $(JOBS)

$(BUILD_TSAN)/build.ninja:
	CC=clang cmake -S . -B $(BUILD_TSAN) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSAMSA_TSAN=ON

# ThreadSanitizer over the unit and stress tests. Suppressions (proven false
# positives only, each justified) are in tests/tsan.supp.
test-tsan: deps $(BUILD_TSAN)/build.ninja
	cmake --build $(BUILD_TSAN) -j $(JOBS)
	cd $(BUILD_TSAN) && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/tests/tsan.supp" \
	  ctest --output-on-failure -j $(JOBS)

# The Raft simulation on more seeds than `make test` runs (docs/raft.md):
# make raft-sim SEEDS=100000 [SEED_START=1] [NODES=3|5] [DYNAMIC=1]
SEEDS ?= 20000
SEED_START ?= 1
raft-sim: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS) --target test_raft_sim
	./$(BUILD)/tests/test_raft_sim --seeds $(SEEDS) --start $(SEED_START) $(if $(NODES),--nodes $(NODES)) $(if $(DYNAMIC),--dynamic)

# The replication simulation on more seeds than `make test` runs (docs/cluster.md):
# make repl-sim SEEDS=20000 [SEED_START=1]
repl-sim: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS) --target test_repl_sim
	./$(BUILD)/tests/test_repl_sim --seeds $(SEEDS) --start $(SEED_START)

$(BUILD_FUZZ)/build.ninja:
	CC=clang cmake -S . -B $(BUILD_FUZZ) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSAMSA_FUZZ=ON

fuzz: deps $(BUILD_FUZZ)/build.ninja
	cmake --build $(BUILD_FUZZ) -j $(JOBS) --target fuzz_requests fuzz_records
	mkdir -p $(BUILD_FUZZ)/corpus $(BUILD_FUZZ)/corpus-records
	./$(BUILD_FUZZ)/bin/fuzz_requests -max_total_time=$$(( $(FUZZ_SECONDS) / 2 )) -max_len=4096 \
	  -print_final_stats=1 $(BUILD_FUZZ)/corpus tests/fuzz/seeds $(wildcard tests/vectors/*)
	./$(BUILD_FUZZ)/bin/fuzz_records -max_total_time=$$(( $(FUZZ_SECONDS) / 2 )) -max_len=8192 \
	  -print_final_stats=1 $(BUILD_FUZZ)/corpus-records tests/fuzz/seeds-records

protocol:
	python3 tools/gen_protocol.py --schemas $(SHARED)/kafka-protocol-4.4 --out src/protocol/gen

# Fails when the committed generated code differs from a fresh generation.
protocol-check:
	@tmp=$$(mktemp -d) && \
	python3 tools/gen_protocol.py --schemas $(SHARED)/kafka-protocol-4.4 --out $$tmp && \
	if diff -r -q $$tmp src/protocol/gen; then echo "protocol: generated code is current"; \
	else echo "protocol: src/protocol/gen differs from the schemas; run make protocol"; \
	  rm -rf $$tmp; exit 1; fi; rm -rf $$tmp

FORMAT_FILES = $(shell git ls-files '*.c' '*.h' | grep -v '^src/protocol/gen/')
format:
	clang-format -i $(FORMAT_FILES)
format-check:
	clang-format --dry-run --Werror $(FORMAT_FILES)

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ)

# Samsa against Apache Kafka 4.4 on this machine (bench/run.py; writes bench/results/
# and the comparison section of docs/BENCHMARKS.md), then three-node clusters of each
# with RF=3 topics (bench/cluster.py --replication: acks=all throughput, latency, broker
# CPU, follower catch-up; its own section of docs/BENCHMARKS.md). bench-quick: a short
# subset of both.
BENCH_VENV ?= bench/.venv
$(BENCH_VENV)/.installed: bench/requirements.txt
	python3 -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install -q -r bench/requirements.txt
	touch $@

bench bench-quick: build $(BENCH_VENV)/.installed
	@missing=""; for p in fio iperf3 util-linux; do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi
	bench/kafka-ref/kafka-ref.sh setup
	$(BENCH_VENV)/bin/python bench/run.py $(if $(filter bench-quick,$@),--quick)
	$(BENCH_VENV)/bin/python bench/cluster.py --rounds 0 --replication --doc \
	  $(if $(filter bench-quick,$@),--quick) \
	  --json bench/results/$(if $(filter bench-quick,$@),quick,full)/replication.json
