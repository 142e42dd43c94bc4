#!/usr/bin/env bash
# Flag strings are split into words on purpose throughout.
# shellcheck disable=SC2086
# Build the libFuzzer targets into build/fuzz/ (or $FUZZ_BUILD).
#
#   fuzz/build.sh            build what is out of date
#   fuzz/build.sh TARGET...  only those targets
#
# Product sources are compiled here, directly, with the sanitizers and
# coverage (-fsanitize=fuzzer-no-link,address,undefined): nothing comes
# from the main build tree, so LEAN/CC/CFLAGS of `make` do not matter.
# Each target links only the .c files it needs.  Objects are rebuilt when
# their source, a header they include, or the flags change.
#
# Needs: clang-14 and libclang-rt-14-dev (libFuzzer), plus the project's
# pkg-config packages (apt-get install -y clang-14 libclang-rt-14-dev).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
OUT=${FUZZ_BUILD:-$ROOT/build/fuzz}
CC=${FUZZ_CC:-clang-14}

command -v "$CC" >/dev/null || {
	echo "fuzz/build.sh: $CC not found: apt-get install -y clang-14 libclang-rt-14-dev" >&2
	exit 1
}

PKGS="libmicrohttpd gnutls libcurl libcjson yaml-0.1"
SAN="-fsanitize=address,undefined -fno-sanitize-recover=all"
BASE="-g -O1 -fno-omit-frame-pointer -std=c17 -pthread \
  -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L \
  -Iserver -Iwebhook -Icerts -Ireconciler $(pkg-config --cflags $PKGS)"
WARN="-Wall -Wextra -Wshadow -Wstrict-prototypes -Wvla -Wformat=2 -Wno-format-nonliteral"
LIB_FLAGS="$BASE $WARN -fsanitize=fuzzer-no-link $SAN"
TGT_FLAGS="$BASE $WARN -Werror -Ifuzz -fsanitize=fuzzer $SAN"
LIBS="-Wl,--as-needed $(pkg-config --libs $PKGS) -lm -pthread"

# What each target links besides its own fuzz/<target>.c.
WEBHOOK="webhook/isvc_fields.c webhook/isvc_rules.c"
CACHE="reconciler/rc_cache.c reconciler/rc_desired.c reconciler/rc_status.c \
  reconciler/rc_map.c reconciler/rc_pods.c reconciler/rc_pool.c $WEBHOOK"
declare -A SRCS=(
	[fuzz_admission]="webhook/wh_admit.c webhook/wh_mutate.c webhook/wh_patch.c webhook/wh_json.c webhook/wh_arena.c \
	  webhook/wh_review.c server/base64.c $WEBHOOK"
	# kube_watch.c brings the client it would stream with (never called).
	[fuzz_watch_lines]="reconciler/kube_watch.c reconciler/kube_lines.c \
	  reconciler/kube_client.c reconciler/kube_token.c reconciler/kube_ratelimit.c \
	  server/log.c server/clock.c $CACHE"
	[fuzz_kubeconfig]="reconciler/kube_config.c reconciler/kube_config_file.c \
	  reconciler/kube_config_util.c server/base64.c server/wholefile.c \
	  server/kname.c"
	[fuzz_cache_decoders]="$CACHE"
)
TARGETS=(fuzz_admission fuzz_watch_lines fuzz_kubeconfig fuzz_cache_decoders)
[ $# -gt 0 ] && TARGETS=("$@")

mkdir -p "$OUT/obj"
# A change of compiler or flags rebuilds everything.
STAMP="$CC $($CC --version | head -1) | $LIB_FLAGS | $TGT_FLAGS | $LIBS"
if [ "$(cat "$OUT/flags" 2>/dev/null)" != "$STAMP" ]; then
	rm -rf "$OUT/obj"
	mkdir -p "$OUT/obj"
	printf '%s\n' "$STAMP" >"$OUT/flags"
fi

# True when $1 (an object) is older than anything in its dep file $2.
stale() {
	local obj=$1 dep=$2 f
	[ -f "$obj" ] && [ -f "$dep" ] || return 0
	# A make-style dep file: "obj: a.c b.h \" ...; the rule's first word
	# is the object itself.
	# shellcheck disable=SC2013
	for f in $(sed -e 's/\\$//' -e 's/^[^:]*://' "$dep"); do
		[ "$f" -nt "$obj" ] && return 0
		[ -e "$f" ] || return 0
	done
	return 1
}

# compile SRC OBJ FLAGS...
compile() {
	local src=$1 obj=$2
	shift 2
	if stale "$obj" "$obj.d"; then
		mkdir -p "$(dirname "$obj")"
		echo "  CC    $src"
		# shellcheck disable=SC2068
		$CC $@ -MMD -MF "$obj.d" -c "$src" -o "$obj"
	fi
}

for t in "${TARGETS[@]}"; do
	[ -n "${SRCS[$t]+x}" ] || { echo "fuzz/build.sh: unknown target $t" >&2; exit 2; }
	objs=()
	for s in ${SRCS[$t]}; do
		o="$OUT/obj/${s%.c}.o"
		compile "$s" "$o" $LIB_FLAGS
		objs+=("$o")
	done
	compile "fuzz/$t.c" "$OUT/obj/fuzz/$t.o" $TGT_FLAGS
	bin="$OUT/$t"
	relink=0
	[ -f "$bin" ] || relink=1
	for o in "$OUT/obj/fuzz/$t.o" "${objs[@]}"; do
		[ "$o" -nt "$bin" ] && relink=1
	done
	if [ $relink = 1 ]; then
		echo "  LD    $bin"
		$CC $TGT_FLAGS -o "$bin" "$OUT/obj/fuzz/$t.o" "${objs[@]}" $LIBS
	fi
done
echo "fuzz/build.sh: ${TARGETS[*]} in $OUT"
