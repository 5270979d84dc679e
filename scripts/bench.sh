#!/usr/bin/env bash
# scripts/bench.sh - run herald_bench's scenarios (called by `make bench`).
#
# Builds herald and herald_bench (release, build/), and for each scenario starts
# a fresh server pinned to CPU 0 on a free loopback port (herald with a generated
# config, io_threads 1; or soketi with --server soketi; or herald_bench's one-write
# floor with --server floor), runs the scenario with the
# load generator pinned to CPU 1, and stops the server. Every scenario's output
# goes to OUT/<scenario>.txt and its JSON line to OUT/results.jsonl.
# The default run (every scenario) takes about 6.5 minutes.
#
#   scripts/bench.sh                              every scenario against herald
#   scripts/bench.sh --scenario fanout            one scenario (repeat the option for more)
#   scripts/bench.sh --server soketi              the same against soketi 1.6.1 ($SOKETI_PEER_DIR/start.sh PORT)
#   scripts/bench.sh --server floor --scenario fanout   the one-write floor (herald_bench floor-server,
#                                                 bench/floor_server.c) on the same CPU: fanout and fanout-max only
#   scripts/bench.sh --server all --scenario fanout     herald, soketi and the floor in turn (same run)
#   scripts/bench.sh --target 127.0.0.1:6001 --server-pid PID [--metrics-url 127.0.0.1:9601]
#                                                 against a server that is already running
#   scripts/bench.sh --quick                      small sizes, a smoke test (~1 minute)
#   scripts/bench.sh -- --payload 200             extra options for every herald_bench call
#   scripts/bench.sh --scenario soak [--duration 120]  the soak (an hour unless --duration; not in the default set)
#   scripts/bench.sh --scenario publish --server-cpus 0-3 --io-threads 4 --client-cpus 4-7 -- --procs 4
#                                                 herald on 4 cores, the load generator on 4 others
#   scripts/bench.sh --server both --scenario cluster --scenario presence-churn --scenario presence-churn-cluster \
#     --scenario kill-reap                        cluster runs (redis-server + two nodes), herald then soketi
#
# Cluster scenarios start a fresh redis-server and two nodes A and B for each run: redis-server and A on
# the server CPUs, B on the client CPUs with herald_bench (docs/CLUSTER.md, benchmark plan). herald nodes
# get HERALD_ADAPTER_DRIVER=redis (BENCH_CLUSTER_DRIVER=local to try the harness without Redis: then nothing
# crosses nodes), soketi nodes SOKETI_ADAPTER_DRIVER=redis; both with a random key prefix.
#   cluster-fanout          the fanout load, subscribers split over A and B, publishes to A
#   cluster-fanout-b        the same with every subscriber on B
#   cluster                 = fanout (single-node baseline) cluster-fanout cluster-fanout-b
#   presence-churn          the churn load with a new presence user every cycle, one server (the baseline)
#   presence-churn-cluster  the same with the loops split over A and B, and presence observers on both
#   kill-reap               500 presence members on B, observers on A, kill -9 B: time to the last member_removed
#
# Options: --scenario NAME, --server herald|soketi|floor|both|all (both: herald then soketi; all: herald,
#   soketi, floor; floor skips every scenario but fanout and fanout-max), --target HOST:PORT, --server-pid PID,
#   --metrics-url HOST:PORT, --app-id ID, --app-key KEY, --app-secret SECRET, --out DIR,
#   --quick, --no-build, --duration S (soak only; default 3600, 120 with --quick),
#   --server-cpus LIST (taskset list for the server, default 0), --client-cpus LIST (for
#   herald_bench, default 1), --io-threads N (herald's io_threads, default 1; soketi has one).
# Scenarios: connect connect-19k fanout fanout-max client-events churn churn-rst storm
#   storm-sync (herald with cleanup.async_enabled false; only with a managed herald), publish, soak,
#   presence-churn; cluster (a group), cluster-fanout cluster-fanout-b presence-churn-cluster kill-reap
#   (these four start their own servers: not with --target).
# Environment: SOKETI_PEER_DIR (soketi install, default ~/.cache/herald-peers/soketi),
#   BENCH_SERVER_CPU (0), BENCH_CLIENT_CPU (1) (the options win), BENCH_HERALD_BIN (build/herald),
#   BENCH_BIN (build/herald_bench), BENCH_CLUSTER_DRIVER (redis), BENCH_REDIS_SERVER (redis-server).
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
    -h|--help) sed -n '2,51p' "$0"; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
[[ $SERVER =~ ^(herald|soketi|floor|both|all)$ ]] || die "--server must be herald, soketi, floor, both or all"
[[ ($SERVER == both || $SERVER == all || $SERVER == floor) && -n $TARGET ]] &&
  die "--server $SERVER starts the servers itself: not with --target"
[[ $IO_THREADS =~ ^[0-9]+$ && $IO_THREADS -le 64 ]] || die "--io-threads wants 0..64 (0: one per CPU)"
cpu_list_ok() { [[ $1 =~ ^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$ ]]; }
cpu_list_ok "$SERVER_CPU" || die "--server-cpus wants a taskset list (e.g. 0 or 0-3 or 0,2)"
cpu_list_ok "$CLIENT_CPU" || die "--client-cpus wants a taskset list (e.g. 1 or 4-7)"
[[ $SERVER != herald && $IO_THREADS != 1 ]] && echo "bench.sh: --io-threads is herald's only: soketi and the floor run one thread" >&2
# the cluster group, expanded in place
EXPANDED=()
for s in "${SCENARIOS[@]}"; do
  if [[ $s == cluster ]]; then EXPANDED+=(fanout cluster-fanout cluster-fanout-b); else EXPANDED+=("$s"); fi
done
SCENARIOS=("${EXPANDED[@]}")
if [[ ${#SCENARIOS[@]} -eq 0 ]]; then
  SCENARIOS=(connect connect-19k fanout fanout-max client-events churn churn-rst storm publish)
  [[ $SERVER != soketi && -z $TARGET ]] && SCENARIOS+=(storm-sync)
fi
OUT=${OUT:-build/bench-results/$(date +%Y%m%d-%H%M%S)-${TARGET:+external}${TARGET:-$SERVER}}
mkdir -p "$OUT"

if [[ $(nproc) -lt 2 && $CPUS_GIVEN == 0 ]]; then SERVER_CPU=0 CLIENT_CPU=0; fi
PIN_CLIENT=(taskset -c "$CLIENT_CPU")

if [[ $BUILD == 1 ]]; then
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build -j"$(nproc)" --target herald_bench $([[ $SERVER != soketi && $SERVER != floor && -z $TARGET ]] && echo herald)
fi
BENCH=${BENCH_BIN:-$ROOT/build/herald_bench}
HERALD=${BENCH_HERALD_BIN:-$ROOT/build/herald}
REDIS_SERVER=${BENCH_REDIS_SERVER:-redis-server}
CLUSTER_DRIVER=${BENCH_CLUSTER_DRIVER:-redis}
[[ $CLUSTER_DRIVER == redis || $CLUSTER_DRIVER == local ]] || die "BENCH_CLUSTER_DRIVER must be redis or local"
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

SPID="" PORT="" MPORT="" CFG_EXTRA=""
STARTED=()   # every process started for the current scenario (servers, redis-server)

# launch_herald CPUS [VAR=VALUE...]: a herald on a free port, pinned to CPUS, with
# those environment variables added; sets SPID, PORT, MPORT. CFG_EXTRA: extra JSON
# members for the config, e.g. "cleanup": {...} (not exported: herald refuses
# HERALD_* variables it does not know).
launch_herald() {
  local cpus=$1; shift
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
  "metrics": {"enabled": true, "host": "127.0.0.1", "port": $MPORT}${CFG_EXTRA:+,
  $CFG_EXTRA}
}
EOF
  env "$@" taskset -c "$cpus" "$HERALD" --config "$cfg" >>"$OUT/server.log" 2>&1 &
  SPID=$!
  STARTED+=("$SPID")
  wait_listen "$PORT" "$SPID" || die "herald did not start (see $OUT/server.log)"
}

start_herald() { # extra JSON members for the config, e.g. "cleanup": {...}
  CFG_EXTRA=${1:-}
  launch_herald "$SERVER_CPU"
  CFG_EXTRA=
}

# launch_soketi CPUS [VAR=VALUE...]: soketi on a free port; sets SPID, PORT.
launch_soketi() {
  local cpus=$1; shift
  [[ -x $SOKETI_DIR/start.sh ]] || die "soketi missing: $SOKETI_DIR/start.sh PORT must start soketi 1.6.1 on PORT (docs/BENCHMARKS.md, Quick start)"
  PORT=$(free_port) MPORT=""
  env SOKETI_DEFAULT_APP_ID="$APP_ID" SOKETI_DEFAULT_APP_KEY="$APP_KEY" SOKETI_DEFAULT_APP_SECRET="$APP_SECRET" \
    SOKETI_DEFAULT_APP_ENABLE_CLIENT_MESSAGES=true SOKETI_METRICS_SERVER_PORT="$(free_port)" "$@" \
    taskset -c "$cpus" "$SOKETI_DIR/start.sh" "$PORT" >>"$OUT/server.log" 2>&1 &
  SPID=$!
  STARTED+=("$SPID")
  wait_listen "$PORT" "$SPID" || die "soketi did not start (see $OUT/server.log)"
}

start_soketi() { launch_soketi "$SERVER_CPU"; }

# The one-write floor (herald_bench floor-server, bench/floor_server.c) on the server CPUs, as herald
# is; sets SPID, PORT. It prints its counters to server.log when stopped.
start_floor() {
  PORT=$(free_port) MPORT=""
  taskset -c "$SERVER_CPU" "$BENCH" floor-server --port "$PORT" >>"$OUT/server.log" 2>&1 &
  SPID=$!
  STARTED+=("$SPID")
  wait_listen "$PORT" "$SPID" || die "the floor server did not start (see $OUT/server.log)"
}

stop_server() {
  local pid
  for pid in "${STARTED[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${STARTED[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    { wait "$pid"; } 2>/dev/null || true # quiet also for kill-reap's node, killed on purpose
  done
  STARTED=() SPID=""
}
trap stop_server EXIT

# ---- cluster: redis-server and node A on the server CPUs, node B on the client CPUs ----
RPID="" RPORT="" A_PID="" A_PORT="" B_PID="" B_PORT=""

start_redis() {
  RPORT=$(free_port)
  taskset -c "$SERVER_CPU" "$REDIS_SERVER" --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize no --logfile "$OUT/redis-$RPORT.log" >/dev/null 2>&1 &
  RPID=$!
  STARTED+=("$RPID")
  wait_listen "$RPORT" "$RPID" || die "redis-server did not start (see $OUT/redis-$RPORT.log)"
}

# start_cluster herald|soketi: a fresh redis-server, then node A and node B.
start_cluster() {
  local prefix env=()
  prefix=hb$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')
  start_redis
  if [[ $1 == herald ]]; then
    env=(HERALD_ADAPTER_DRIVER="$CLUSTER_DRIVER" HERALD_ADAPTER_REDIS_HOST=127.0.0.1
         HERALD_ADAPTER_REDIS_PORT="$RPORT" HERALD_ADAPTER_REDIS_PREFIX="$prefix")
    launch_herald "$SERVER_CPU" "${env[@]}"; A_PID=$SPID A_PORT=$PORT
    launch_herald "$CLIENT_CPU" "${env[@]}"; B_PID=$SPID B_PORT=$PORT
  else # node discovery (UDP) on a port of its own per process: the Redis adapter does not use it
    env=(SOKETI_ADAPTER_DRIVER=redis SOKETI_DB_REDIS_HOST=127.0.0.1 SOKETI_DB_REDIS_PORT="$RPORT"
         SOKETI_ADAPTER_REDIS_PREFIX="$prefix")
    launch_soketi "$SERVER_CPU" "${env[@]}" SOKETI_CLUSTER_PORT="$(free_port)"; A_PID=$SPID A_PORT=$PORT
    launch_soketi "$CLIENT_CPU" "${env[@]}" SOKETI_CLUSTER_PORT="$(free_port)"; B_PID=$SPID B_PORT=$PORT
  fi
  sleep 1 # registration with Redis (herald: the lease; soketi: its pub/sub subscriptions)
  echo "bench.sh: $1 cluster$([[ $1 == herald ]] && echo " (adapter driver $CLUSTER_DRIVER)"):" \
       "redis-server pid $RPID :$RPORT (CPU $SERVER_CPU), A pid $A_PID :$A_PORT (CPU $SERVER_CPU)," \
       "B pid $B_PID :$B_PORT (CPU $CLIENT_CPU), key prefix $prefix"
}

is_cluster() { [[ $1 == cluster-fanout || $1 == cluster-fanout-b || $1 == presence-churn-cluster || $1 == kill-reap ]]; }

# herald_bench options of a cluster scenario (after start_cluster).
cluster_args() {
  local a=127.0.0.1:$A_PORT b=127.0.0.1:$B_PORT
  local redis="--watch-pid redis=$RPID --redis-url 127.0.0.1:$RPORT"
  local watch="--watch-pid node_a=$A_PID --watch-pid node_b=$B_PID $redis"
  case $1 in
    cluster-fanout)         echo "--targets $a,$b --publish-target $a $watch" ;;
    cluster-fanout-b)       echo "--targets $b --publish-target $a $watch" ;;
    presence-churn-cluster) echo "--targets $a,$b $watch" ;;
    kill-reap)              echo "--targets $b --observe-target $a --kill-pid $B_PID --watch-pid node_a=$A_PID $redis" ;;
  esac
}

# Scenario name -> herald_bench arguments (moderate defaults; --quick shrinks them).
scenario_args() {
  local q=$QUICK
  case $1 in
    connect)       echo "connect -n $((q ? 2000 : 10000)) --connect-rate 2000 --hold $((q ? 2 : 5))" ;;
    connect-19k)   echo "connect -n $((q ? 4000 : 19000)) --connect-rate 2000 --hold $((q ? 2 : 5))" ;;
    fanout|cluster-fanout|cluster-fanout-b)
                   echo "fanout -n 1000 --channels 10 --rate 400 --duration $((q ? 5 : 15))" ;;
    fanout-max)    echo "fanout -n 1000 --channels 10 --rate 0 --publishers 16 --duration $((q ? 5 : 15))" ;;
    client-events) echo "client-events -n 1000 --rate 10 --duration $((q ? 5 : 15))" ;;
    churn)         echo "churn --concurrency 50 --warmup 3 --duration $((q ? 5 : 15))" ;;
    presence-churn|presence-churn-cluster)
                   echo "churn --concurrency 50 --warmup 3 --duration $((q ? 5 : 15)) --unique-users" ;;
    kill-reap)     echo "kill-reap -n $((q ? 100 : 500)) --channels 10 --duration $((q ? 15 : 30))" ;;
    churn-rst)     echo "churn --concurrency 50 --warmup 3 --duration $((q ? 5 : 15)) --rst" ;;
    storm|storm-sync) echo "storm -n $((q ? 4000 : 19000)) --connect-rate 4000 --rounds 2" ;;
    publish)       echo "publish --publishers 1,8,32 --payload 100,10000 --batch 1,10 --warmup 1 --duration $((q ? 2 : 5))" ;;
    soak)          echo "soak --duration ${DURATION:-$((q ? 120 : 3600))} --csv $OUT/soak.csv" ;;
    *) die "unknown scenario $1" ;;
  esac
}

# run_one SCENARIO SERVER (herald|soketi|floor, or external with --target)
run_one() {
  local name=$1 server=$2 args target pid metrics label=$1 extra_args=""
  [[ $SERVER == both || $SERVER == all ]] && label=$name-$server
  args=$(scenario_args "$name")
  if [[ $server == floor && $name != fanout && $name != fanout-max ]]; then
    echo "skip $name (floor: fanout only)"; return
  fi
  if [[ -n $TARGET ]]; then
    [[ $name == storm-sync ]] && die "storm-sync needs a managed herald (no --target)"
    is_cluster "$name" && die "$name starts its own cluster: not with --target"
    target=$TARGET pid=$SERVER_PID metrics=$METRICS_URL
  elif is_cluster "$name"; then
    start_cluster "$server"
    target=127.0.0.1:$A_PORT pid="" metrics=""
    extra_args=$(cluster_args "$name")
  else
    if [[ $server == floor ]]; then
      start_floor
    elif [[ $server == soketi ]]; then
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
             --app-id "$APP_ID" --app-key "$APP_KEY" --app-secret "$APP_SECRET" $extra_args)
  [[ -n $pid ]] && cmd+=(--server-pid "$pid")
  [[ -n $metrics ]] && cmd+=(--metrics-url "$metrics")
  [[ $name == soak && -n $HPORT && -z $TARGET ]] && cmd+=(--webhook-port "$HPORT")
  cmd+=("${EXTRA[@]}")
  echo "=== $label ($server): ${cmd[*]}" | tee "$OUT/$label.txt"
  echo "uptime before: $(uptime)" | tee -a "$OUT/$label.txt"
  local rc=0
  "${cmd[@]}" 2>&1 | tee -a "$OUT/$label.txt" || rc=$?
  echo "uptime after: $(uptime)" | tee -a "$OUT/$label.txt"
  grep '^{' "$OUT/$label.txt" | tail -n 1 | sed "s/^{/{\"run\":\"$name\",\"server\":\"$server\",/" \
    >> "$OUT/results.jsonl" || true
  [[ -z $TARGET ]] && stop_server
  if [[ $server == floor ]]; then # its counters: any write that would block means it was not a floor run
    grep '^floor server:' "$OUT/server.log" | tail -n 1 | tee -a "$OUT/$label.txt" || true
  fi
  [[ $rc == 0 ]] || echo "bench.sh: $label exited with $rc" >&2
}

for s in "${SCENARIOS[@]}"; do
  scenario_args "$s" >/dev/null || exit 1
  if is_cluster "$s" && [[ $SERVER != floor ]]; then
    [[ -z $TARGET ]] || die "$s starts its own cluster: not with --target"
    command -v "$REDIS_SERVER" >/dev/null || die "$s needs redis-server ($REDIS_SERVER)"
  fi
done
echo "bench.sh: server ${TARGET:-$SERVER} (CPU $SERVER_CPU${TARGET:+, not pinned by bench.sh}$([[ -z $TARGET && $SERVER != soketi && $SERVER != floor ]] && echo ", herald io_threads $IO_THREADS")), load generator on CPU $CLIENT_CPU, results in $OUT"
SERVERS=("$SERVER")
[[ $SERVER == both ]] && SERVERS=(herald soketi)
[[ $SERVER == all ]] && SERVERS=(herald soketi floor)
[[ -n $TARGET ]] && SERVERS=(external)
for s in "${SCENARIOS[@]}"; do
  for srv in "${SERVERS[@]}"; do run_one "$s" "$srv"; done
done
echo "bench.sh: done; JSON lines in $OUT/results.jsonl"
