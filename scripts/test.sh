#!/usr/bin/env bash
# Runs every test: unit suites (release, ASan+UBSan, TSan builds) and the
# integration suite against the release, ASan+UBSan and TSan binaries.
# Prints one closing line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/test/tsan.supp"
passed=0 failed=0
step() { # name, command...
  local name=$1; shift
  echo "=== $name"
  if "$@"; then passed=$((passed + 1)); echo "--- ok: $name"; else failed=$((failed + 1)); echo "--- FAILED: $name"; fi
}
for b in build build-asan build-tsan; do
  step "unit ($b)" ctest --test-dir "$b" --output-on-failure
done
for b in build build-asan build-tsan; do
  step "integration ($b)" env HERALD_BIN="$PWD/$b/herald" node --test --test-concurrency=1 test/integration/
done
echo
echo "test steps: $passed passed, $failed failed"
[[ $failed == 0 ]]
