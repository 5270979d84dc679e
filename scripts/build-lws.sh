#!/usr/bin/env bash
# scripts/build-lws.sh - builds the libwebsockets herald links against, from
# Debian's own source package, into .deps/lws (called by scripts/deps.sh).
#
# Why not Debian's binary package: it is built without NDEBUG, so lws turns
# on its _DEBUG self-checks, and one of them (run on every socket close)
# walks the whole fd table, one slot per possible file descriptor (ulimit -n)
# and a read of every live connection. With 19 000 connections that was 62 %
# of the io thread during a mass disconnect (docs/BENCHMARKS.md). The same
# source built as a release, with libev (epoll) compiled in, has neither the
# checks nor the plugin loading.
#
# Idempotent: does nothing when .deps/lws matches this script's options.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DEPS=$ROOT/.deps
PREFIX=$DEPS/lws
OPTIONS=(-DCMAKE_BUILD_TYPE=Release -DLWS_WITH_SHARED=OFF -DLWS_WITH_STATIC=ON -DLWS_STATIC_PIC=ON
         -DLWS_WITH_LIBEV=ON -DLWS_WITH_EVLIB_PLUGINS=OFF -DLWS_WITHOUT_TESTAPPS=ON
         -DLWS_WITH_MINIMAL_EXAMPLES=OFF -DLWS_WITHOUT_EXTENSIONS=ON -DLWS_IPV6=ON -DLWS_UNIX_SOCK=ON
         "-DCMAKE_C_FLAGS=-Wno-error=deprecated-declarations -fno-strict-aliasing")
STAMP="libwebsockets ${OPTIONS[*]}"

if [[ -f $PREFIX/lib/libwebsockets.a && -f $PREFIX/.stamp && "$(cat "$PREFIX/.stamp")" == "$STAMP" ]]; then
  exit 0
fi

# apt-get source needs a deb-src entry; Debian images ship only binary ones.
if ! grep -rqs '^\s*\(deb-src\|Types:.*deb-src\)' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
  cat > /etc/apt/sources.list.d/herald-deb-src.sources <<EOF
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: $codename $codename-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  apt-get update -qq
fi

echo "deps: building libwebsockets from Debian's source (release, libev) into .deps/lws"
rm -rf "$DEPS/lws-src" "$DEPS/lws-build" "$PREFIX"
mkdir -p "$DEPS/lws-src"
(cd "$DEPS/lws-src" && apt-get source -qq libwebsockets >/dev/null 2>&1) ||
  { echo "deps: apt-get source libwebsockets failed" >&2; exit 1; }
src=$(find "$DEPS/lws-src" -mindepth 1 -maxdepth 1 -type d -name 'libwebsockets-*' | head -n 1)
[[ -n $src ]] || { echo "deps: libwebsockets source not unpacked" >&2; exit 1; }
cmake -S "$src" -B "$DEPS/lws-build" -DCMAKE_INSTALL_PREFIX="$PREFIX" "${OPTIONS[@]}" >"$DEPS/lws-cmake.log" 2>&1 ||
  { tail -n 30 "$DEPS/lws-cmake.log" >&2; exit 1; }
cmake --build "$DEPS/lws-build" -j"$(nproc)" >"$DEPS/lws-build.log" 2>&1 ||
  { grep -m 20 -B 2 -A 6 'error' "$DEPS/lws-build.log" >&2; exit 1; }
cmake --install "$DEPS/lws-build" >/dev/null
echo "$STAMP" > "$PREFIX/.stamp"
rm -rf "$DEPS/lws-src" "$DEPS/lws-build"
