#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# `make demo-down`: stop what `make demo` started: the operator (the PID
# recorded in build/demo/operator.env, only while it still runs that binary)
# and the demo control plane (tests/cluster/down.sh on build/demo/cluster);
# then remove the demo's state (certificates, kubeconfig, PID files; down.sh
# removes etcd data and the cluster's keys). Logs are kept
# (build/demo/operator.log, build/demo/cluster/*.log). Safe when nothing runs.
set -euo pipefail

DEMO_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$DEMO_SRC/../.." && pwd)"
CLUSTER_SCRIPTS="$REPO_ROOT/tests/cluster"
DEMO_DIR="${DEMO_DIR:-$REPO_ROOT/build/demo}"

IO_LOG_TAG="demo-down"
# shellcheck source=../cluster/operator.sh
. "$CLUSTER_SCRIPTS/operator.sh"

if [ ! -d "$DEMO_DIR" ]; then
	echo "[demo-down] nothing to stop ($DEMO_DIR does not exist)"
	exit 0
fi
DEMO_DIR="$(cd "$DEMO_DIR" && pwd)"
export CLUSTER_DIR="$DEMO_DIR/cluster"

exec 8>"$DEMO_DIR/.lock"
if ! flock -w 600 8; then
	echo "[demo-down] ERROR: another make demo / demo-down holds $DEMO_DIR/.lock" >&2
	exit 1
fi

if io_load "$DEMO_DIR/operator.env"; then
	echo "[demo-down] stopping the operator (pid $OP_PID)"
fi
io_stop "$DEMO_DIR/operator.env"

"$CLUSTER_SCRIPTS/down.sh" 8>&-

rm -rf -- "${DEMO_DIR:?}/certs" "${DEMO_DIR:?}/bin"
rm -f -- "$DEMO_DIR/kubeconfig" "$DEMO_DIR/operator.env" "$DEMO_DIR/operator.pid"
echo "[demo-down] stopped; logs kept in $DEMO_DIR"
