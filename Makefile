# udrv: the README's two commands are `make demo` and `make check`.
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
CMAKE_GEN  := cmake -S . -DCMAKE_BUILD_TYPE=RelWithDebInfo

.PHONY: all build demo check check-unit check-integration check-vm check-fuzz check-asan \
        bench deps format clean

all: build

deps:
	@scripts/deps.sh build vm

build: deps
	@$(CMAKE_GEN) -B $(BUILD) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# The main job. Until the NVMe driver lands: the sample device and driver over vfio-user.
demo: build
	@scripts/demo.sh $(BUILD)

# Every tier. Sanitizer run of unit+integration first, so the full run's CTest summary is last.
check: deps check-asan
	@$(CMAKE_GEN) -B $(BUILD) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

check-asan: deps
	@$(CMAKE_GEN) -B $(ASAN_BUILD) -DUDRV_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	@cd $(ASAN_BUILD) && ctest --output-on-failure -j $(JOBS) -L 'unit|integration'

check-unit check-integration check-vm check-fuzz: build
	@cd $(BUILD) && ctest --output-on-failure -L $(subst check-,,$@)

bench:
	@scripts/deps.sh build bench
	@$(CMAKE_GEN) -B build-bench -DUDRV_BENCH=ON -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build build-bench -j $(JOBS)
	@build-bench/bench/ring_bench
	@bench/nvme_bench.sh build-bench

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-bench
