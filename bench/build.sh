#!/usr/bin/env bash
# Build the benchmark's helpers into the cache (outside the repository):
#   $CACHE/go-peer/inference-operator-go     bench/peers/go   (controller-runtime)
#   $CACHE/rust-peer/release/inference-operator-rust   bench/peers/rust (kube-rs)
#   $CACHE/loadgen                           bench/harness/loadgen
# CACHE = ${XDG_CACHE_HOME:-$HOME/.cache}/inference-operator/bench.
# go and cargo rebuild only what changed; build times go to $CACHE/build-times.txt.
# Env: CARGO_BUILD_JOBS (default 2), GOFLAGS (default -mod=readonly).
set -euo pipefail
BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${BENCH_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/inference-operator/bench}"
mkdir -p "$CACHE/go-peer" "$CACHE/rust-peer"
export GOFLAGS="${GOFLAGS:--mod=readonly}" GOTOOLCHAIN=local
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"

timed() { # timed NAME CMD...: run, then log "NAME seconds" to build-times.txt
	local name="$1" t0 t1
	shift
	t0=$(date +%s%N)
	"$@"
	t1=$(date +%s%N)
	t1=$(((t1 - t0) / 100000000))
	printf '%s %s %d.%d\n' "$(date -u +%FT%TZ)" "$name" $((t1 / 10)) $((t1 % 10)) >>"$CACHE/build-times.txt"
	printf '[bench/build.sh] %s built in %d.%d s\n' "$name" $((t1 / 10)) $((t1 % 10)) >&2
}

command -v go >/dev/null || { echo "[bench/build.sh] go is not installed" >&2; exit 1; }
command -v cargo >/dev/null || { echo "[bench/build.sh] cargo is not installed" >&2; exit 1; }

(cd "$BENCH_DIR/peers/go" && timed go-peer env CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" \
	-o "$CACHE/go-peer/inference-operator-go" .)
(cd "$BENCH_DIR/harness" && timed loadgen env CGO_ENABLED=0 go build -trimpath \
	-o "$CACHE/loadgen" ./loadgen)
(cd "$BENCH_DIR/peers/rust" && timed rust-peer env CARGO_TARGET_DIR="$CACHE/rust-peer" \
	cargo build --release --locked --quiet)
