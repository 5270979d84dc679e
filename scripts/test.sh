#!/usr/bin/env bash
# Runs every test: the CUnit suites under the release, ASan+UBSan and TSan
# builds, then the integration suite (real binary on loopback, pusher-js,
# the pusher SDK, raw frames) against each of those binaries, the same suite
# on the Redis adapter and the multinode suite (test/cluster), then the
# multinode page in headless Chromium (release build), then a short
# run of each libFuzzer target (scripts/fuzz.sh, FUZZ_TEST_SECONDS each,
# one test per target). A sanitizer report makes the test that stops the
# server fail. Ends with one line: "tests: N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1"
passed=0 failed=0 steps_failed=0
log=$(mktemp -d)

count_ctest() { # ctest output: "N% tests passed, F tests failed out of T"
  local line t f
  line=$(grep -E "tests passed, [0-9]+ tests? failed out of" "$1" | tail -1)
  t=$(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$line"); f=$(sed -E 's/.*passed, ([0-9]+) tests? failed.*/\1/' <<<"$line")
  passed=$((passed + ${t:-0} - ${f:-0})); failed=$((failed + ${f:-0}))
}
count_node() { # node --test (tap): "# pass N" / "# fail N"
  local p f
  p=$(grep -E "^# pass [0-9]+" "$1" | tail -1 | awk '{print $3}'); f=$(grep -E "^# fail [0-9]+" "$1" | tail -1 | awk '{print $3}')
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
}
count_fuzz() { # scripts/fuzz.sh: "fuzz <target>: ok (...)" or "fuzz <target>: FAILED (...)"
  local p f
  grep -E "^fuzz [a-z_]+: " "$1" || true
  p=$(grep -cE "^fuzz [a-z_]+: ok" "$1"); f=$(grep -cE "^fuzz [a-z_]+: FAILED" "$1")
  passed=$((passed + p)); failed=$((failed + f))
}
step() { # name, counter, command...
  local name=$1 counter=$2 out="$log/$RANDOM.log"; shift 2
  echo "=== $name"
  if "$@" >"$out" 2>&1; then echo "--- ok: $name"; else steps_failed=$((steps_failed + 1)); cat "$out"; echo "--- FAILED: $name"; fi
  grep -E "^# (tests|pass|fail) |tests passed" "$out" || true
  "$counter" "$out"
}

for b in build build-asan build-tsan; do
  step "unit tests ($b)" count_ctest ctest --test-dir "$b" --output-on-failure
done
# The integration runs go side by side: they spend most of their time
# waiting on the server under test (deadlines, timers, sockets), so together
# they take little longer than the slowest alone. Running side by side they
# load the machine, so every wait is stretched (HERALD_TEST_TIMEOUT_SCALE):
# twice for the release build, three times for the slower sanitizer builds.
# Next to the three single-node runs, on the release build: the same suite
# with every herald on the Redis adapter (HERALD_TEST_REDIS=1: one
# redis-server per test file, each herald a cluster of one), the multinode
# suite (test/cluster: two or three nodes over one redis-server), and a short
# TSan pass of two multinode files (fan-out; Redis stopped and restarted).
# They start when the release run ends (it ends first), so that no more
# than five runs share the machine's two cores: with all six at once the
# timing-sensitive tests (deadlines, idle timers) of the first runs missed
# their windows. They wait on servers too, and end about when the TSan
# integration run does.
pids=() outs=() names=()
background() { # name, command...: started now, collected below in start order
  names+=("$1")
  outs+=("$log/background-${#pids[@]}.log")
  shift
  "$@" >"${outs[-1]}" 2>&1 &
  pids+=($!)
}
node_test=(node --test --test-concurrency=1 --test-timeout=300000 --test-reporter=tap)
for b in build build-asan build-tsan; do
  scale=2
  [[ $b != build ]] && scale=3
  background "integration tests ($b)" env HERALD_BIN="$PWD/$b/herald" HERALD_TEST_TIMEOUT_SCALE=$scale \
    "${node_test[@]}" test/integration/*.test.js
done
wait "${pids[0]}"
first_rc=$? # the release run's status, reported in order below
background "integration tests (build, redis adapter)" env HERALD_TEST_REDIS=1 HERALD_BIN="$PWD/build/herald" \
  HERALD_TEST_TIMEOUT_SCALE=2 "${node_test[@]}" test/integration/*.test.js
background "multinode tests (build)" env HERALD_BIN="$PWD/build/herald" HERALD_TEST_TIMEOUT_SCALE=2 \
  "${node_test[@]}" test/cluster/*.test.js
background "multinode tests (build-tsan: fanout, redis_restart)" env HERALD_BIN="$PWD/build-tsan/herald" \
  HERALD_TEST_TIMEOUT_SCALE=3 "${node_test[@]}" test/cluster/fanout.test.js test/cluster/redis_restart.test.js
for i in "${!pids[@]}"; do
  name=${names[$i]}
  echo "=== $name"
  if ((i == 0)); then rc=$first_rc; else wait "${pids[$i]}"; rc=$?; fi
  if ((rc == 0)); then echo "--- ok: $name"; else steps_failed=$((steps_failed + 1)); cat "${outs[$i]}"; echo "--- FAILED: $name"; fi
  grep -E "^# (tests|pass|fail) |^# timing: " "${outs[$i]}" || true # timing: figures the multinode tests measure
  count_node "${outs[$i]}"
done
# The multinode page (test/multinode): redis-server, three release nodes with the redis adapter and the
# playground page driven in headless Chromium; screenshots of each step in test/multinode/artifacts/.
step "multinode page (build, headless chromium)" count_node env HERALD_BIN="$PWD/build/herald" \
  node --test --test-timeout=60000 --test-reporter=tap test/multinode/page.test.js
ls test/multinode/artifacts/*.png 2>/dev/null | sed 's/^/screenshot: /'
fuzz_s=${FUZZ_TEST_SECONDS:-20}
step "fuzz targets (build-fuzz, $fuzz_s s each)" count_fuzz env FUZZ_SECONDS="$fuzz_s" FUZZ_FRESH=1 scripts/fuzz.sh
rm -rf "$log"
echo
echo "tests: $passed passed, $failed failed"
[[ $failed == 0 && $steps_failed == 0 ]]
