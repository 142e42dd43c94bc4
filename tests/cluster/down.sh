#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Stop the local test control plane that up.sh recorded in $CLUSTER_DIR/state.env
# (default <repo>/build/cluster): exactly the recorded PIDs, and only if they
# still run the recorded etcd/kube-apiserver binary with this cluster's temp
# dir. SIGTERM, up to STOP_GRACE seconds (default 20), then SIGKILL. Removes
# the temp dir (etcd data, certificates), state.env and kubeconfig; keeps the
# logs. Safe when nothing is up.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$SCRIPT_DIR/lib.sh"

STOP_GRACE="${STOP_GRACE:-20}"
[[ "$STOP_GRACE" =~ ^[0-9]+$ ]] || die "STOP_GRACE must be a number of seconds"
take_lock
if [ ! -f "$STATE_FILE" ]; then
	rm -f "$KUBECONFIG_FILE"
	log "nothing recorded in $STATE_FILE: nothing to stop"
	exit 0
fi
stop_recorded "$STOP_GRACE"
log "stopped; logs kept in $CLUSTER_DIR"
