# herald - the two commands of README.md, plus the pieces they are made of.
#   make run    install what is missing, build a release build, start herald on config/config.json
#   make test   install what the tests need, build (release, ASan+UBSan, TSan), run every test
#   make fuzz   build the libFuzzer targets (clang) and run each for FUZZ_SECONDS (fuzz/README.md)
#   make install  the binary, /etc/herald/config.json (kept if present) and a systemd unit
#   make cluster-test  the multinode tests (test/cluster: redis-server + several nodes) on the release build
#   make multinode  redis-server + three herald nodes over it + a browser page to drive them (test/multinode)
JOBS ?= $(shell nproc)
CONFIG ?= config/config.json
FUZZ_SECONDS ?= 600

.PHONY: run install test deps deps-test build build-herald build-asan build-tsan unit integration bench fuzz clean multinode deps-multinode cluster-test

PREFIX ?= /usr/local

# make run builds only the server (not the unit tests or the benchmark).
run: deps build-herald
	./build/herald --config $(CONFIG)

# Three nodes on 6001-6003 over a local redis-server, the page on http://127.0.0.1:6100/; Ctrl-C stops all.
multinode: deps-multinode build-herald
	test/multinode/run.sh

deps-multinode:
	scripts/deps.sh multinode

build-herald:
	cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build build -j$(JOBS) --target herald

install: deps build-herald
	install -D -m 0755 build/herald $(DESTDIR)$(PREFIX)/bin/herald
	install -d -m 0755 $(DESTDIR)/etc/herald
	[ -f $(DESTDIR)/etc/herald/config.json ] || install -m 0644 config/config.json $(DESTDIR)/etc/herald/config.json
	sed 's|/usr/local/bin/herald|$(PREFIX)/bin/herald|' config/herald.service > herald.service.tmp
	install -D -m 0644 herald.service.tmp $(DESTDIR)/etc/systemd/system/herald.service
	rm -f herald.service.tmp
	@echo "installed $(PREFIX)/bin/herald, /etc/herald/config.json, /etc/systemd/system/herald.service"
	@echo "edit the apps' secrets in /etc/herald/config.json, then: systemctl daemon-reload && systemctl enable --now herald"

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

cluster-test: deps-test build
	HERALD_BIN=$(CURDIR)/build/herald node --test --test-concurrency=1 --test-timeout=120000 test/cluster/*.test.js

bench: deps build
	scripts/bench.sh

fuzz: deps-test
	FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh

clean:
	rm -rf build build-asan build-tsan build-dev build-fuzz
