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
# The source is patched with scripts/lws-patches/*.patch (why: each patch's
# own comments, and docs/ARCHITECTURE.md).
#
# Pinned: the upstream version must be LWS_VERSION; the Debian revision that
# was built is recorded in .deps/lws/VERSION. The build runs in a temporary
# folder and replaces .deps/lws only when it succeeded.
#
# Idempotent: does nothing when .deps/lws matches this script's options and
# patches.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DEPS=$ROOT/.deps
PREFIX=$DEPS/lws
LWS_VERSION=4.1.6
OPTIONS=(-DCMAKE_BUILD_TYPE=Release -DLWS_WITH_SHARED=OFF -DLWS_WITH_STATIC=ON -DLWS_STATIC_PIC=ON
         -DLWS_WITH_LIBEV=ON -DLWS_WITH_EVLIB_PLUGINS=OFF -DLWS_WITHOUT_TESTAPPS=ON
         -DLWS_WITH_MINIMAL_EXAMPLES=OFF -DLWS_WITHOUT_EXTENSIONS=ON -DLWS_IPV6=ON -DLWS_UNIX_SOCK=ON
         "-DCMAKE_C_FLAGS=-Wno-error=deprecated-declarations -fno-strict-aliasing")
PATCHES=("$ROOT"/scripts/lws-patches/*.patch)
STAMP="libwebsockets $LWS_VERSION ${OPTIONS[*]} $(cat "${PATCHES[@]}" | sha256sum | cut -c1-16)"

if [[ -f $PREFIX/lib/libwebsockets.a && -f $PREFIX/.stamp && "$(cat "$PREFIX/.stamp")" == "$STAMP" ]]; then
  exit 0
fi

# apt-get source needs deb-src entries. Debian images ship only binary ones:
# add the source twin of each configured Debian entry for this release (same
# mirror, suites, components and key), nothing else.
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
has_deb_src() {
  grep -rqsE '^\s*(deb-src\s|Types:.*deb-src)' /etc/apt/sources.list /etc/apt/sources.list.d/
}
release_suite() { # does the list of suites name this release?
  local s
  for s in "$@"; do [[ $s == "$codename" || $s == "$codename"-* ]] && return 0; done
  return 1
}
add_deb_src() {
  local out=/etc/apt/sources.list.d/herald-deb-src.sources f tmp
  tmp=$(mktemp)
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f $f && $f != "$out" ]] || continue
    # one deb822 stanza per paragraph; keep binary-only Debian ones of this release
    awk -v cn="$codename" 'BEGIN { RS = ""; ORS = "\n\n" }
      /(^|\n)Types:[ \t]*deb[ \t]*(\n|$)/ {
        n = split($0, lines, "\n"); ok = 0
        for (i = 1; i <= n; i++) if (lines[i] ~ /^Suites:/) {
          m = split(lines[i], w, /[ \t]+/)
          for (j = 2; j <= m; j++) if (w[j] == cn || index(w[j], cn "-") == 1) ok = 1
        }
        if (ok) { sub(/Types:[ \t]*deb/, "Types: deb-src"); print }
      }' "$f" >>"$tmp"
  done
  if [[ -f /etc/apt/sources.list ]]; then
    while read -r type rest; do
      [[ $type == deb ]] || continue
      read -r -a words <<<"$rest"
      local i=0
      [[ ${words[0]} == \[* ]] && i=1 # [signed-by=...] options
      release_suite "${words[$((i + 1))]:-}" && echo "deb-src $rest" >>"$tmp.list"
    done </etc/apt/sources.list
    [[ -s $tmp.list ]] && mv "$tmp.list" /etc/apt/sources.list.d/herald-deb-src.list
    rm -f "$tmp.list"
  fi
  if [[ -s $tmp ]]; then mv "$tmp" "$out"; else rm -f "$tmp"; fi
  apt-get update -qq || true
}
has_deb_src || add_deb_src

echo "deps: building libwebsockets $LWS_VERSION from Debian's source (release, libev, herald's patches) into .deps/lws"
WORK=$(mktemp -d "$DEPS/lws-work.XXXXXX" 2>/dev/null || { mkdir -p "$DEPS" && mktemp -d "$DEPS/lws-work.XXXXXX"; })
trap 'rm -rf "$WORK"' EXIT
(cd "$WORK" && apt-get source -qq libwebsockets >"$WORK/source.log" 2>&1) ||
  { tail -n 20 "$WORK/source.log" >&2; echo "deps: apt-get source libwebsockets failed" >&2; exit 1; }
src=$WORK/libwebsockets-$LWS_VERSION
[[ -d $src ]] || { echo "deps: expected libwebsockets $LWS_VERSION, apt-get source gave: $(ls "$WORK")" >&2; exit 1; }
for p in "${PATCHES[@]}"; do
  patch -d "$src" -p1 --forward --quiet <"$p" || { echo "deps: $p does not apply" >&2; exit 1; }
done
deb_version=$(cd "$src" && dpkg-parsechangelog -S Version 2>/dev/null || echo "$LWS_VERSION")
cmake -S "$src" -B "$WORK/build" -DCMAKE_INSTALL_PREFIX="$WORK/prefix" "${OPTIONS[@]}" >"$WORK/cmake.log" 2>&1 ||
  { tail -n 30 "$WORK/cmake.log" >&2; exit 1; }
cmake --build "$WORK/build" -j"$(nproc)" >"$WORK/build.log" 2>&1 ||
  { grep -m 20 -B 2 -A 6 'error' "$WORK/build.log" >&2; exit 1; }
cmake --install "$WORK/build" >/dev/null
echo "$STAMP" >"$WORK/prefix/.stamp"
printf 'libwebsockets %s (Debian source %s), patches: %s\n' "$LWS_VERSION" "$deb_version" \
  "$(cd "$ROOT/scripts/lws-patches" && ls -- *.patch | tr '\n' ' ')" >"$WORK/prefix/VERSION"
rm -rf "$PREFIX.old"
[[ -d $PREFIX ]] && mv "$PREFIX" "$PREFIX.old"
mv "$WORK/prefix" "$PREFIX"
rm -rf "$PREFIX.old" "$DEPS"/lws-src "$DEPS"/lws-build "$DEPS"/lws-*.log
cat "$PREFIX/VERSION"
