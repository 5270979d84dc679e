#!/usr/bin/env bash
# Installs what herald needs on Debian 12 (run as root), only what is missing.
#   scripts/deps.sh build   - compiler, CMake and the C libraries
#   scripts/deps.sh test    - the above plus Node.js, redis-server, clang with libFuzzer
#                             (make fuzz, scripts/fuzz.sh), chromium (the multinode page's
#                             headless test) and the npm test packages
#   scripts/deps.sh multinode - build plus Node.js, redis-server and test/multinode's npm
#                             packages: what make multinode (the browser playground) needs
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_PKGS=(build-essential cmake pkg-config libcjson-dev libcurl4-openssl-dev libssl-dev
            libhiredis-dev libev-dev libcap-dev dpkg-dev)
# libclang-rt-14-dev holds libFuzzer and the sanitizer runtimes; clang-14
# only recommends it, and recommends are not installed here.
TEST_PKGS=(libcunit1-dev openssl nodejs npm redis-server curl clang libclang-rt-14-dev chromium)
MULTINODE_PKGS=(nodejs npm redis-server)

missing=()
want=("${BUILD_PKGS[@]}")
[[ "${1:-build}" == test ]] && want+=("${TEST_PKGS[@]}")
[[ "${1:-build}" == multinode ]] && want+=("${MULTINODE_PKGS[@]}")
for p in "${want[@]}"; do
  # nodejs/npm may come from elsewhere (e.g. a preinstalled Node): accept the commands
  if [[ $p == nodejs ]] && command -v node >/dev/null; then continue; fi
  if [[ $p == npm ]] && command -v npm >/dev/null; then continue; fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

scripts/build-lws.sh

npm_dirs=()
[[ "${1:-build}" == test ]] && npm_dirs=(test/integration test/multinode)
[[ "${1:-build}" == multinode ]] && npm_dirs=(test/multinode)
if ((${#npm_dirs[@]})); then
  for d in "${npm_dirs[@]}"; do
    if [[ -f $d/package-lock.json && ( ! -d $d/node_modules || $d/package-lock.json -nt $d/node_modules ) ]]; then
      (cd "$d" && npm ci --no-audit --no-fund --loglevel=error)
      touch "$d/node_modules"
    fi
  done
fi
