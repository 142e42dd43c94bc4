#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# deps/cjson.sh — a static libcjson for `make STATIC=1` (Debian ships
# libcjson-dev without a static library).  cJSON is one C file: this
# compiles Debian's cjson source package's cJSON.c into
# <prefix>/lib/libcjson.a and installs <prefix>/include/cjson/cJSON.h; see
# deps/lib.sh for the cache and how the source is fetched.  Seconds.
#
#   deps/cjson.sh            build if missing; print the prefix on stdout
#   deps/cjson.sh --prefix   print the prefix only (no network, no build)
#
# Version: CJSON_DEB_VERSION, default the installed libcjson1's.
set -euo pipefail
DEP_NAME=cjson
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

BUILD_CFLAGS="-O2 -fPIC -fstack-protector-strong -fstack-clash-protection \
-fcf-protection -ffunction-sections -fdata-sections -D_FORTIFY_SOURCE=2"

version=${CJSON_DEB_VERSION:-$(dep_deb_version libcjson1)} \
    || dep_die "libcjson1 is not installed: apt-get install libcjson-dev," \
               "or set CJSON_DEB_VERSION"
prefix=$(printf '%s\n' "$BUILD_CFLAGS" | dep_prefix cjson "$version")

if [ "${1:-}" = "--prefix" ] || [ -f "$prefix/.done" ]; then
    echo "$prefix"
    exit 0
fi
dep_begin "$prefix" || { echo "$prefix"; exit 0; }
start=$(date +%s)
log=$prefix.log
: >"$log"
work=$(mktemp -d "$DEPS_CACHE/.cjson-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
dep_apt_source cjson "$version" "$work" "$log"
src=$(dep_srcdir "$work" cjson)
dep_say "compile cJSON.c"
rm -rf "$prefix"
mkdir -p "$prefix/lib" "$prefix/include/cjson"
# shellcheck disable=SC2086
{ "${CC:-cc}" $BUILD_CFLAGS -c "$src/cJSON.c" -o "$work/cJSON.o" \
    && ar rcs "$prefix/lib/libcjson.a" "$work/cJSON.o" \
    && install -m 644 "$src/cJSON.h" "$prefix/include/cjson/cJSON.h"; } >>"$log" 2>&1 \
    || { tail -20 "$log" >&2; dep_die "build failed; see $log"; }
printf 'debian-version: %s\ncflags: %s\n' "$version" "$BUILD_CFLAGS" >"$prefix/BUILD-INFO"
touch "$prefix/.done"
dep_say "done in $(( $(date +%s) - start )) s: $prefix"
echo "$prefix"
