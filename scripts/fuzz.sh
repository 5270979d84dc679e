#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ (clang, ASan + UBSan, into
# build-fuzz) and runs each for FUZZ_SECONDS. Prints one line per target,
# "fuzz <target>: ok (...)" or "fuzz <target>: FAILED (...)", and exits 1
# when any target failed (a crash, a leak, a broken property, a timeout).
#
#   scripts/fuzz.sh [target...]          all targets when none is named
#   FUZZ_SECONDS=600   seconds per target
#   FUZZ_JOBS=2        targets run at once
#   FUZZ_FRESH=1       start from the seeds only, keep nothing found (make test),
#                      results in fuzz/out/test/; otherwise new inputs accumulate
#                      in fuzz/out/<target>/corpus
#
# Crash inputs and the last run's log stay in fuzz/out/[test/]<target>/
# (not versioned). Reproduce one with build-fuzz/fuzz/fuzz_<target> <file>.
set -uo pipefail
cd "$(dirname "$0")/.."
ALL=(ws_message http_api http_head config webhook_payload)
TARGETS=("$@")
((${#TARGETS[@]})) || TARGETS=("${ALL[@]}")
SECS=${FUZZ_SECONDS:-600}
JOBS=${FUZZ_JOBS:-2}
OUT=fuzz/out
[[ ${FUZZ_FRESH:-0} == 1 ]] && OUT=fuzz/out/test

max_len() { # inputs larger than the seeds need buy nothing but time
  case $1 in ws_message | http_api | config) echo 8192 ;; *) echo 4096 ;; esac
}

build() {
  local log=$OUT/build.log
  mkdir -p "$OUT"
  if ! { CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHERALD_FUZZ=ON &&
         cmake --build build-fuzz --target fuzz_all -j"$(nproc)"; } >"$log" 2>&1; then
    tail -40 "$log"
    for t in "${TARGETS[@]}"; do echo "fuzz $t: FAILED (build, see $log)"; done
    exit 1
  fi
}

# One target; writes its result line to $OUT/<target>/result.
run() {
  local t=$1 dir=$OUT/$1 work
  mkdir -p "$dir"
  if [[ ${FUZZ_FRESH:-0} == 1 ]]; then work=$(mktemp -d); else work=$dir/corpus; mkdir -p "$work"; fi
  local dict=() opts
  [[ -f fuzz/$t.dict ]] && dict=(-dict="fuzz/$t.dict")
  opts=(-max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -max_len="$(max_len "$t")" -print_final_stats=1
        -artifact_prefix="$dir/")
  build-fuzz/fuzz/fuzz_"$t" "${opts[@]}" "${dict[@]}" "$work" "fuzz/corpus/$t" >"$dir/last.log" 2>&1
  local rc=$? runs corpus
  runs=$(grep -oE "stat::number_of_executed_units: [0-9]+" "$dir/last.log" | awk '{print $2}')
  corpus=$(find "$work" -type f | wc -l)
  [[ ${FUZZ_FRESH:-0} == 1 ]] && rm -rf "$work"
  if ((rc == 0)); then
    echo "fuzz $t: ok (${runs:-0} runs in $SECS s, $corpus new inputs)" >"$dir/result"
  else
    local art
    art=$(grep -oE "Test unit written to [^ ]+" "$dir/last.log" | tail -1 | awk '{print $5}')
    echo "fuzz $t: FAILED (exit $rc; log $dir/last.log${art:+; input $art})" >"$dir/result"
  fi
}

main() {
  build
  local running=0 failed=0 line t
  for t in "${TARGETS[@]}"; do
    [[ -x build-fuzz/fuzz/fuzz_$t ]] || { mkdir -p "$OUT/$t"; echo "fuzz $t: FAILED (no such target)" >"$OUT/$t/result"; continue; }
    rm -f "$OUT/$t/result"
    run "$t" &
    running=$((running + 1))
    if ((running >= JOBS)); then wait -n; running=$((running - 1)); fi
  done
  wait
  for t in "${TARGETS[@]}"; do
    line=$(cat "$OUT/$t/result" 2>/dev/null || echo "fuzz $t: FAILED (no result)")
    echo "$line"
    [[ $line == *": ok "* ]] || failed=1
  done
  for t in "${TARGETS[@]}"; do
    grep -q ": FAILED" "$OUT/$t/result" 2>/dev/null && { echo "--- $t:"; grep -E "^fuzz:|ERROR|SUMMARY|^    #[0-9] " "$OUT/$t/last.log" | head -30; }
  done
  return $failed
}

# One line, so that editing this file while a long run is going (bash reads
# scripts as it goes) cannot change what the run does next.
main "$@"; exit $?
