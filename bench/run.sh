#!/usr/bin/env bash
# The operator benchmark (`make bench`): inference-operator against its
# controller-runtime and kube-rs peers on the local control plane.
# All flags go to bench/harness/bench.py (--help lists them), e.g.
#   bench/run.sh --n 1000 --only ours,rust --runs 3
# Needs: python3, go, cargo (bench/build.sh builds the peers into the cache),
# gnuplot for the chart (installed with apt-get if missing and root).
set -euo pipefail
BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if ! command -v gnuplot >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "[bench/run.sh] installing gnuplot-nox for the chart" >&2
	apt-get install -y gnuplot-nox >/dev/null 2>&1 ||
		{ apt-get update >/dev/null 2>&1 && apt-get install -y gnuplot-nox >/dev/null 2>&1; } ||
		echo "[bench/run.sh] could not install gnuplot-nox: no chart" >&2
fi
exec python3 -B "$BENCH_DIR/harness/bench.py" "$@"
