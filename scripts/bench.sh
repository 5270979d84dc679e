#!/usr/bin/env bash
# scripts/bench.sh - run herald_bench's scenarios (called by `make bench`).
#
# Builds herald and herald_bench (release, build/), and for each scenario starts
# a fresh server pinned to CPU 0 on a free loopback port (herald with a generated
# config, io_threads 1; or soketi with --server soketi), runs the scenario with the
# load generator pinned to CPU 1, and stops the server. Every scenario's output
# goes to OUT/<scenario>.txt and its JSON line to OUT/results.jsonl.
# The default run (every scenario) takes about 6.5 minutes.
#
#   scripts/bench.sh                              every scenario against herald
#   scripts/bench.sh --scenario fanout            one scenario (repeat the option for more)
#   scripts/bench.sh --server soketi              the same against soketi 1.6.1 ($SOKETI_PEER_DIR/start.sh PORT)
#   scripts/bench.sh --target 127.0.0.1:6001 --server-pid PID [--metrics-url 127.0.0.1:9601]
#                                                 against a server that is already running
#   scripts/bench.sh --quick                      small sizes, a smoke test (~1 minute)
#   scripts/bench.sh -- --payload 200             extra options for every herald_bench call
#   scripts/bench.sh --scenario soak [--duration 120]  the soak (an hour unless --duration; not in the default set)
#   scripts/bench.sh --scenario publish --server-cpus 0-3 --io-threads 4 --client-cpus 4-7 -- --procs 4
#                                                 herald on 4 cores, the load generator on 4 others
#
# Options: --scenario NAME, --server herald|soketi, --target HOST:PORT, --server-pid PID,
#   --metrics-url HOST:PORT, --app-id ID, --app-key KEY, --app-secret SECRET, --out DIR,
#   --quick, --no-build, --duration S (soak only; default 3600, 120 with --quick),
#   --server-cpus LIST (taskset list for the server, default 0), --client-cpus LIST (for
#   herald_bench, default 1), --io-threads N (herald's io_threads, default 1; soketi has one).
# Scenarios: connect connect-19k fanout fanout-max client-events churn churn-rst storm
#   storm-sync (herald with cleanup.async_enabled false; only with a managed herald), publish, soak.
# Environment: SOKETI_PEER_DIR (soketi install, default ~/.cache/herald-peers/soketi),
#   BENCH_SERVER_CPU (0), BENCH_CLIENT_CPU (1) (the options win), BENCH_HERALD_BIN (build/herald),
#   BENCH_BIN (build/herald_bench).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SCENARIOS=()
SERVER=herald
TARGET=""
SERVER_PID=""
METRICS_URL=""
APP_ID=app-id APP_KEY=app-key APP_SECRET=app-secret
OUT=""
QUICK=0
BUILD=1
EXTRA=()
DURATION="" HPORT="" APP_EXTRA=""
SERVER_CPU=${BENCH_SERVER_CPU:-0}
CLIENT_CPU=${BENCH_CLIENT_CPU:-1}
CPUS_GIVEN=0
IO_THREADS=1
SOKETI_DIR=${SOKETI_PEER_DIR:-$HOME/.cache/herald-peers/soketi}

die() { echo "bench.sh: $*" >&2; exit 1; }

while [[ $# -gt 0 ]]; do
  case $1 in
    --scenario) SCENARIOS+=("$2"); shift 2 ;;
    --server) SERVER=$2; shift 2 ;;
    --target) TARGET=$2; shift 2 ;;
    --server-pid) SERVER_PID=$2; shift 2 ;;
    --metrics-url) METRICS_URL=$2; shift 2 ;;
    --app-id) APP_ID=$2; shift 2 ;;
    --app-key) APP_KEY=$2; shift 2 ;;
    --app-secret) APP_SECRET=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --no-build) BUILD=0; shift ;;
    --) shift; EXTRA=("$@"); break ;;
    --duration) DURATION=$2; shift 2 ;;
    --server-cpus) SERVER_CPU=$2; CPUS_GIVEN=1; shift 2 ;;
    --client-cpus) CLIENT_CPU=$2; CPUS_GIVEN=1; shift 2 ;;
    --io-threads) IO_THREADS=$2; shift 2 ;;
    -h|--help) sed -n '2,36p' "$0"; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
[[ $SERVER == herald || $SERVER == soketi ]] || die "--server must be herald or soketi"
[[ $IO_THREADS =~ ^[0-9]+$ && $IO_THREADS -le 64 ]] || die "--io-threads wants 0..64 (0: one per CPU)"
cpu_list_ok() { [[ $1 =~ ^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$ ]]; }
cpu_list_ok "$SERVER_CPU" || die "--server-cpus wants a taskset list (e.g. 0 or 0-3 or 0,2)"
cpu_list_ok "$CLIENT_CPU" || die "--client-cpus wants a taskset list (e.g. 1 or 4-7)"
[[ $SERVER == soketi && $IO_THREADS != 1 ]] && echo "bench.sh: --io-threads ignored: soketi runs one thread" >&2
if [[ ${#SCENARIOS[@]} -eq 0 ]]; then
  SCENARIOS=(connect connect-19k fanout fanout-max client-events churn churn-rst storm publish)
  [[ $SERVER == herald && -z $TARGET ]] && SCENARIOS+=(storm-sync)
fi
OUT=${OUT:-build/bench-results/$(date +%Y%m%d-%H%M%S)-${TARGET:+external}${TARGET:-$SERVER}}
mkdir -p "$OUT"

if [[ $(nproc) -lt 2 && $CPUS_GIVEN == 0 ]]; then SERVER_CPU=0 CLIENT_CPU=0; fi
PIN_SERVER=(taskset -c "$SERVER_CPU")
PIN_CLIENT=(taskset -c "$CLIENT_CPU")

if [[ $BUILD == 1 ]]; then
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build -j"$(nproc)" --target herald_bench $([[ $SERVER == herald && -z $TARGET ]] && echo herald)
fi
BENCH=${BENCH_BIN:-$ROOT/build/herald_bench}
HERALD=${BENCH_HERALD_BIN:-$ROOT/build/herald}
[[ -x $BENCH ]] || die "$BENCH missing (build failed?)"

# A free TCP port below the ephemeral range (so client sockets never take it).
free_port() {
  local p
  for p in $(shuf -i 20000-30000 -n 200); do
    if [[ -z $(ss -Htln "sport = :$p") ]]; then echo "$p"; return; fi
  done
  die "no free port"
}

wait_listen() { # port pid
  for _ in $(seq 1 200); do
    [[ -n $(ss -Htln "sport = :$1") ]] && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

SPID="" PORT="" MPORT=""
start_herald() { # extra JSON members for the config, e.g. "cleanup": {...}
  PORT=$(free_port) MPORT=$(free_port)
  local cfg=$OUT/herald-$PORT.json
  cat > "$cfg" <<EOF
{
  "host": "127.0.0.1", "port": $PORT, "io_threads": $IO_THREADS, "log_level": "warn",
  "shutdown_grace_period": 1,
  "app_manager": {"driver": "memory", "array": {"apps": [
    {"id": "$APP_ID", "key": "$APP_KEY", "secret": "$APP_SECRET", "enabled": true,
     "enable_client_messages": true, "max_connections": 0, "max_client_events_per_second": 0${APP_EXTRA:+,
     $APP_EXTRA}}
  ]}},
  "metrics": {"enabled": true, "host": "127.0.0.1", "port": $MPORT}${1:+,
  $1}
}
EOF
  "${PIN_SERVER[@]}" "$HERALD" --config "$cfg" >>"$OUT/server.log" 2>&1 &
  SPID=$!
  wait_listen "$PORT" "$SPID" || die "herald did not start (see $OUT/server.log)"
}

start_soketi() {
  [[ -x $SOKETI_DIR/start.sh ]] || die "soketi missing: $SOKETI_DIR/start.sh PORT must start soketi 1.6.1 on PORT (docs/BENCHMARKS.md, Quick start)"
  PORT=$(free_port) MPORT=""
  SOKETI_DEFAULT_APP_ID=$APP_ID SOKETI_DEFAULT_APP_KEY=$APP_KEY SOKETI_DEFAULT_APP_SECRET=$APP_SECRET \
  SOKETI_DEFAULT_APP_ENABLE_CLIENT_MESSAGES=true SOKETI_METRICS_SERVER_PORT=$(free_port) \
    "${PIN_SERVER[@]}" "$SOKETI_DIR/start.sh" "$PORT" >>"$OUT/server.log" 2>&1 &
  SPID=$!
  wait_listen "$PORT" "$SPID" || die "soketi did not start (see $OUT/server.log)"
}

stop_server() {
  [[ -n $SPID ]] || return 0
  kill -TERM "$SPID" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$SPID" 2>/dev/null || true
  wait "$SPID" 2>/dev/null || true
  SPID=""
}
trap stop_server EXIT

# Scenario name -> herald_bench arguments (moderate defaults; --quick shrinks them).
scenario_args() {
  local q=$QUICK
  case $1 in
    connect)       echo "connect -n $((q ? 2000 : 10000)) --connect-rate 2000 --hold $((q ? 2 : 5))" ;;
    connect-19k)   echo "connect -n $((q ? 4000 : 19000)) --connect-rate 2000 --hold $((q ? 2 : 5))" ;;
    fanout)        echo "fanout -n 1000 --channels 10 --rate 400 --duration $((q ? 5 : 15))" ;;
    fanout-max)    echo "fanout -n 1000 --channels 10 --rate 0 --publishers 16 --duration $((q ? 5 : 15))" ;;
    client-events) echo "client-events -n 1000 --rate 10 --duration $((q ? 5 : 15))" ;;
    churn)         echo "churn --concurrency 50 --warmup 3 --duration $((q ? 5 : 15))" ;;
    churn-rst)     echo "churn --concurrency 50 --warmup 3 --duration $((q ? 5 : 15)) --rst" ;;
    storm|storm-sync) echo "storm -n $((q ? 4000 : 19000)) --connect-rate 4000 --rounds 2" ;;
    publish)       echo "publish --publishers 1,8,32 --payload 100,10000 --batch 1,10 --warmup 1 --duration $((q ? 2 : 5))" ;;
    soak)          echo "soak --duration ${DURATION:-$((q ? 120 : 3600))} --csv $OUT/soak.csv" ;;
    *) die "unknown scenario $1" ;;
  esac
}

run_one() {
  local name=$1 args target pid metrics
  args=$(scenario_args "$name")
  if [[ -n $TARGET ]]; then
    [[ $name == storm-sync ]] && die "storm-sync needs a managed herald (no --target)"
    target=$TARGET pid=$SERVER_PID metrics=$METRICS_URL
  else
    if [[ $SERVER == soketi ]]; then
      [[ $name == storm-sync ]] && { echo "skip storm-sync (herald only)"; return; }
      start_soketi
    elif [[ $name == storm-sync ]]; then
      start_herald '"cleanup": {"async_enabled": false}'
    elif [[ $name == soak ]]; then # webhooks go to herald_bench's receiver on HPORT
      HPORT=$(free_port)
      APP_EXTRA="\"webhooks\": [{\"url\": \"http://127.0.0.1:$HPORT/\", \"event_types\": [\"channel_occupied\",
       \"channel_vacated\", \"member_added\", \"member_removed\", \"client_event\", \"subscription_count\"]}]"
      start_herald
      APP_EXTRA=
    else
      start_herald
    fi
    target=127.0.0.1:$PORT pid=$SPID metrics=${MPORT:+127.0.0.1:$MPORT}
  fi
  local cmd=("${PIN_CLIENT[@]}" "$BENCH" $args --host "${target%:*}" --port "${target##*:}"
             --app-id "$APP_ID" --app-key "$APP_KEY" --app-secret "$APP_SECRET")
  [[ -n $pid ]] && cmd+=(--server-pid "$pid")
  [[ -n $metrics ]] && cmd+=(--metrics-url "$metrics")
  [[ $name == soak && -n $HPORT && -z $TARGET ]] && cmd+=(--webhook-port "$HPORT")
  cmd+=("${EXTRA[@]}")
  echo "=== $name: ${cmd[*]}" | tee "$OUT/$name.txt"
  local rc=0
  "${cmd[@]}" 2>&1 | tee -a "$OUT/$name.txt" || rc=$?
  tail -n 1 "$OUT/$name.txt" | grep '^{' | sed "s/^{/{\"run\":\"$name\",\"server\":\"${TARGET:+external}${TARGET:-$SERVER}\",/" \
    >> "$OUT/results.jsonl" || true
  [[ -z $TARGET ]] && stop_server
  [[ $rc == 0 ]] || echo "bench.sh: $name exited with $rc" >&2
}

for s in "${SCENARIOS[@]}"; do scenario_args "$s" >/dev/null || exit 1; done
echo "bench.sh: server ${TARGET:-$SERVER} (CPU $SERVER_CPU${TARGET:+, not pinned by bench.sh}$([[ -z $TARGET && $SERVER == herald ]] && echo ", io_threads $IO_THREADS")), load generator on CPU $CLIENT_CPU, results in $OUT"
for s in "${SCENARIOS[@]}"; do run_one "$s"; done
echo "bench.sh: done; JSON lines in $OUT/results.jsonl"
