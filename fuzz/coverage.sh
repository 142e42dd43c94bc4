#!/usr/bin/env bash
# Flag strings are split into words on purpose throughout.
# shellcheck disable=SC2086,SC2046
# Line coverage of the product code reached by a fuzz corpus, to see what
# a target never exercises (the seeds or the harness to improve).
#
#   fuzz/coverage.sh TARGET [CORPUS_DIR]     (default: build/fuzz/run/TARGET/corpus,
#                                             else fuzz/corpus/TARGET)
#
# Builds TARGET once more with clang's source-based coverage (no
# sanitizers) into build/fuzz/cov/, replays the corpus, and prints
# llvm-cov's per-file report; build/fuzz/cov/TARGET.txt has the annotated
# source (lines with "0|" never ran).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
t=${1:?usage: fuzz/coverage.sh TARGET [CORPUS_DIR]}
corpus=${2:-build/fuzz/run/$t/corpus}
[ -d "$corpus" ] || corpus=fuzz/corpus/$t
OUT=${FUZZ_BUILD:-build/fuzz}/cov
LLVM=/usr/lib/llvm-14/bin
mkdir -p "$OUT/$t.obj"

# The target's sources, as build.sh lists them.
srcs=$(bash -c 'source <(sed -n "/^WEBHOOK=/,/^)/p" fuzz/build.sh); echo ${SRCS['"$t"']}')
[ -n "$srcs" ] || { echo "fuzz/coverage.sh: unknown target $t" >&2; exit 2; }
PKGS="libmicrohttpd gnutls libcurl libcjson yaml-0.1"
FLAGS="-g -O0 -std=c17 -pthread -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L \
  -Iserver -Iwebhook -Icerts -Ireconciler -Ifuzz $(pkg-config --cflags $PKGS) \
  -fprofile-instr-generate -fcoverage-mapping"
objs=()
for s in $srcs fuzz/$t.c; do
	o="$OUT/$t.obj/$(echo "$s" | tr / _).o"
	clang-14 $FLAGS $([ "$s" = "fuzz/$t.c" ] && echo -fsanitize=fuzzer || echo -fsanitize=fuzzer-no-link) \
		-c "$s" -o "$o"
	objs+=("$o")
done
clang-14 $FLAGS -fsanitize=fuzzer -o "$OUT/$t" "${objs[@]}" \
	-Wl,--as-needed $(pkg-config --libs $PKGS) -lm -pthread
rm -f "$OUT/$t.profraw"
LLVM_PROFILE_FILE="$OUT/$t.profraw" "$OUT/$t" -runs=0 "$corpus" >/dev/null 2>&1
"$LLVM/llvm-profdata" merge -sparse "$OUT/$t.profraw" -o "$OUT/$t.profdata"
"$LLVM/llvm-cov" show "$OUT/$t" -instr-profile="$OUT/$t.profdata" \
	-ignore-filename-regex='fuzz/' >"$OUT/$t.txt"
"$LLVM/llvm-cov" report "$OUT/$t" -instr-profile="$OUT/$t.profdata" \
	-ignore-filename-regex='fuzz/'
