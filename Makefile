# herald - the two commands of README.md, plus the pieces they are made of.
#   make run    install what is missing, build a release build, start herald on config/config.json
#   make test   install what the tests need, build (release, ASan+UBSan, TSan), run every test
#   make fuzz   build the libFuzzer targets (clang) and run each for FUZZ_SECONDS (fuzz/README.md)
JOBS ?= $(shell nproc)
CONFIG ?= config/config.json
FUZZ_SECONDS ?= 600

.PHONY: run test deps deps-test build build-asan build-tsan unit integration bench fuzz clean

run: deps build
	./build/herald --config $(CONFIG)

deps:
	scripts/deps.sh build

deps-test:
	scripts/deps.sh test

build:
	cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build build -j$(JOBS)

build-asan:
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DHERALD_SANITIZE=address >/dev/null
	cmake --build build-asan -j$(JOBS)

build-tsan:
	cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DHERALD_SANITIZE=thread >/dev/null
	cmake --build build-tsan -j$(JOBS)

test: deps-test build build-asan build-tsan
	scripts/test.sh

bench: deps build
	scripts/bench.sh

fuzz: deps-test
	FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh

clean:
	rm -rf build build-asan build-tsan build-dev build-fuzz
