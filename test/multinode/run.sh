#!/usr/bin/env bash
# Starts the multinode playground: redis-server (nothing persisted), herald nodes A, B, C on 6001, 6002,
# 6003 joined through it, and the dev web server on 6100 that serves the page; prints the page URL.
# Ctrl-C stops everything. Builds build/herald first when it is missing (release, like make run), and
# installs this folder's npm packages when they are missing or older than the lock file.
#
#   test/multinode/run.sh
#   MULTINODE_PORTS=7001,7002,7003 MULTINODE_METRICS_PORTS=9701,9702,9703 MULTINODE_WEB_PORT=7100 \
#     MULTINODE_REDIS_PORT=0 test/multinode/run.sh        # other ports (0 = any free one)
#   MULTINODE_NODE_TIMEOUT_MS=3000 ...                      # reap a dead node sooner (default 10000)
#   MULTINODE_DRIVER=local ...                              # three independent nodes, for comparison
#   HERALD_BIN=build-asan/herald ...                        # another build
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

for cmd in node npm redis-server; do
  command -v "$cmd" >/dev/null || { echo "multinode: $cmd is missing: run scripts/deps.sh multinode (as root)" >&2; exit 1; }
done

if [[ -z ${HERALD_BIN:-} && ! -x $repo/build/herald ]]; then
  echo "multinode: building build/herald (release)..."
  cmake -S "$repo" -B "$repo/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$repo/build" -j"$(nproc)" --target herald
fi

if [[ ! -d $here/node_modules || $here/package-lock.json -nt $here/node_modules ]]; then
  echo "multinode: installing npm packages (npm ci)..."
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
  touch "$here/node_modules"
fi

# node runs in the background so that this shell's trap sees Ctrl-C at once; node stops the
# children (each in its own process group, so the terminal's SIGINT does not reach them half-way).
node "$here/stack.js" &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null || true; wait "$pid"; exit 0' INT TERM HUP
wait "$pid"
