#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# `make demo`: the operator running for real against a local kube-apiserver.
#
#   1. control plane (tests/cluster/up.sh) in build/demo/cluster: built into the
#      cache the first time (~6 min on 2 cores), reused while it runs;
#   2. `inference-operator serve --webhook-only` in the background (own
#      session, log build/demo/operator.log, PID in build/demo/operator.pid),
#      reused while healthy and the binary is unchanged, else restarted;
#   3. CRD + webhook configurations (kubectl apply: idempotent);
#   4. the examples/ InferenceServices, `kubectl get isvc`, one rejected create;
#   5. build/demo/kubeconfig and the next steps. `make demo-down` stops it all.
#
# Separate from the e2e control plane (build/cluster), so tests and the demo
# never touch each other. Safe to run again. Everything on 127.0.0.1.
#
# Env: IO_BIN (default build/inference-operator), DEMO_DIR (default build/demo),
# DEMO_SERVE_ARGS (default "--webhook-only"; the mode flags given to serve; once
# the reconciler exists: "--kubeconfig $DEMO_DIR/kubeconfig").
set -euo pipefail

DEMO_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$DEMO_SRC/../.." && pwd)"
CLUSTER_SCRIPTS="$REPO_ROOT/tests/cluster"
DEMO_DIR="${DEMO_DIR:-$REPO_ROOT/build/demo}"
IO_BIN="${IO_BIN:-$REPO_ROOT/build/inference-operator}"
read -r -a SERVE_ARGS <<<"${DEMO_SERVE_ARGS:---webhook-only}"
INVALID_EXAMPLE="examples/invalid/too-big-on-t4.yaml"

IO_LOG_TAG="demo"
# shellcheck source=../cluster/operator.sh
. "$CLUSTER_SCRIPTS/operator.sh"

step() { printf '\n==> %s\n' "$*"; }
die() {
	echo "[demo] ERROR: $*" >&2
	exit 1
}

[ -x "$IO_BIN" ] || die "$IO_BIN not found: run make first (make demo builds it)"
IO_BIN="$(cd "$(dirname "$IO_BIN")" && pwd)/$(basename "$IO_BIN")"
export IO_BIN
mkdir -p "$DEMO_DIR"
DEMO_DIR="$(cd "$DEMO_DIR" && pwd)"
export CLUSTER_DIR="$DEMO_DIR/cluster"
OP_STATE_FILE="$DEMO_DIR/operator.env"
OP_LOG_FILE="$DEMO_DIR/operator.log"
DEMO_CERTS="$DEMO_DIR/certs"

# One demo.sh/demo-down.sh at a time; fd 8 is not passed to the daemons.
exec 8>"$DEMO_DIR/.lock"
flock -w 600 8 || die "another make demo / demo-down holds $DEMO_DIR/.lock"

step "control plane: kube-apiserver + etcd on 127.0.0.1 (built once into the cache; the first build takes several minutes)"
"$CLUSTER_SCRIPTS/up.sh" 8>&- 2>&1 | sed 's/^/    /'
export KUBECONFIG="$CLUSTER_DIR/kubeconfig"
ln -sfn cluster/kubeconfig "$DEMO_DIR/kubeconfig"
# shellcheck source=../cluster/env.sh
. "$CLUSTER_SCRIPTS/env.sh"
[ -n "$KUBECTL" ] || die "no kubectl (tests/cluster/build.sh builds one)"

step "operator: $IO_BIN serve ${SERVE_ARGS[*]}"
io_certs "$DEMO_CERTS" || die "certificates"
replace_reason=""
if ! io_load "$OP_STATE_FILE"; then
	replace_reason="none recorded"
elif ! io_running "$OP_STATE_FILE"; then
	replace_reason="pid $OP_PID is not running or not healthy"
elif [ "$OP_ARGS" != "${SERVE_ARGS[*]}" ]; then
	replace_reason="pid $OP_PID runs with other flags ($OP_ARGS)"
elif [ "$OP_BIN" != "$IO_BIN" ]; then
	replace_reason="pid $OP_PID runs another binary ($OP_BIN)"
elif io_binary_replaced "$OP_STATE_FILE"; then
	replace_reason="pid $OP_PID runs a binary that has been rebuilt since"
fi
if [ -z "$replace_reason" ]; then
	echo "    already running: pid $OP_PID, https://127.0.0.1:$OP_PORT (log $OP_LOG_FILE)"
else
	echo "    starting a new operator: $replace_reason"
	io_stop "$OP_STATE_FILE" || die "could not stop the previous demo operator"
	io_start "$OP_STATE_FILE" "$IO_BIN" "$DEMO_CERTS" "$OP_LOG_FILE" "${SERVE_ARGS[@]}" ||
		die "the operator did not start; see $OP_LOG_FILE"
	echo "    started: pid $OP_PID, https://127.0.0.1:$OP_PORT (log $OP_LOG_FILE)"
fi

step "CRD and webhook configurations"
io_install_crd || die "installing the CRD"
io_register_webhooks "$OP_PORT" "$DEMO_CERTS/ca.crt" || die "registering the webhooks"
echo "    CRD $IO_CRD_NAME Established"
echo "    $IO_VALIDATE_WEBHOOK, $IO_MUTATE_WEBHOOK -> https://127.0.0.1:$OP_PORT (failurePolicy: Fail)"

step "kubectl apply -f examples/"
(cd "$REPO_ROOT" && "$KUBECTL" apply -f examples/) | sed 's/^/    /'

step "kubectl get isvc"
"$KUBECTL" get isvc | sed 's/^/    /'

step "kubectl create -f $INVALID_EXAMPLE   (must be rejected)"
rc=0
out="$(cd "$REPO_ROOT" && "$KUBECTL" create -f "$INVALID_EXAMPLE" 2>&1)" || rc=$?
printf '%s\n' "$out" | sed 's/^/    /'
if [ "$rc" = 0 ]; then
	"$KUBECTL" delete -f "$REPO_ROOT/$INVALID_EXAMPLE" --ignore-not-found >/dev/null || true
	die "the invalid example was accepted: the webhook is not working"
fi
[[ "$out" == *"admission webhook \"$IO_VALIDATE_WEBHOOK\" denied the request"* ]] ||
	die "the invalid example failed, but not by the webhook's denial"
echo "    (exit code $rc: the API server called the webhook, which denied it)"

rel_demo_dir="${DEMO_DIR#"$PWD"/}"
path_hint=""
if [ "$KUBECTL" = "$CONTROLPLANE_CACHE_DIR/kubectl" ]; then
	mkdir -p "$DEMO_DIR/bin"
	ln -sfn "$KUBECTL" "$DEMO_DIR/bin/kubectl"
	path_hint="    export PATH=$DEMO_DIR/bin:\$PATH    # kubectl $K8S_VERSION, matching the API server"
fi
step "running in the background; next steps:"
cat <<EOF
    export KUBECONFIG=$DEMO_DIR/kubeconfig
${path_hint:+$path_hint
}    kubectl get isvc
    kubectl scale isvc llama-3-8b --replicas=100      # denied: must be between 0 and 64
    kubectl explain inferenceservice.spec
    tail -f $rel_demo_dir/operator.log
    make demo-down                                    # stop the operator and the control plane
EOF
