#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# `make demo`: the operator running for real against a local kube-apiserver.
#
#   1. control plane (tests/cluster/up.sh) in build/demo/cluster: built into the
#      cache the first time (~6 min on 2 cores), reused while it runs;
#   2. the full operator, `inference-operator serve --kubeconfig
#      build/demo/cluster/kubeconfig` (webhook + reconciler), in the background
#      (own session, log build/demo/operator.log, PID in build/demo/operator.pid),
#      reused while healthy, on the same control plane and with the binary
#      unchanged, else restarted; waits for /readyz (watch caches synced);
#   3. CRD + webhook configurations (kubectl apply: idempotent);
#   4. the examples/ InferenceServices, then (once the operator has made them)
#      `kubectl get isvc,deploy,svc`;
#   5. readiness simulated for llama-3-8b (tests/demo/simulate-ready.sh patches
#      its Deployment's status: there is no kubelet or controller-manager), which
#      the operator reports as Ready; `kubectl get isvc`;
#   6. one rejected create; build/demo/kubeconfig and the next steps.
#      `make demo-down` stops it all.
#
# Separate from the e2e control plane (build/cluster), so tests and the demo
# never touch each other. Safe to run again. Everything on 127.0.0.1.
#
# Env: IO_BIN (default build/inference-operator), DEMO_DIR (default build/demo),
# DEMO_SERVE_ARGS (default "--kubeconfig $DEMO_DIR/cluster/kubeconfig"; the
# flags given to serve; "--webhook-only" shows the webhook alone).
set -euo pipefail

DEMO_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$DEMO_SRC/../.." && pwd)"
CLUSTER_SCRIPTS="$REPO_ROOT/tests/cluster"
DEMO_DIR="${DEMO_DIR:-$REPO_ROOT/build/demo}"
IO_BIN="${IO_BIN:-$REPO_ROOT/build/inference-operator}"
INVALID_EXAMPLE="examples/invalid/too-big-on-t4.yaml"
READY_EXAMPLE="llama-3-8b" # the example whose readiness is simulated
WAIT_SECONDS=30            # bound of each wait on the operator

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
if [ -n "${DEMO_SERVE_ARGS:-}" ]; then
	read -r -a SERVE_ARGS <<<"$DEMO_SERVE_ARGS"
else
	SERVE_ARGS=(--kubeconfig "$CLUSTER_DIR/kubeconfig")
fi
RECONCILER=1
case " ${SERVE_ARGS[*]} " in *" --webhook-only "*) RECONCILER=0 ;; esac
OP_STATE_FILE="$DEMO_DIR/operator.env"
OP_LOG_FILE="$DEMO_DIR/operator.log"
DEMO_CERTS="$DEMO_DIR/certs"

# One demo.sh/demo-down.sh at a time; fd 8 is not passed to the daemons.
exec 8>"$DEMO_DIR/.lock"
flock -w 600 8 || die "another make demo / demo-down holds $DEMO_DIR/.lock"

step "control plane: kube-apiserver + etcd on 127.0.0.1 (built once into the cache; the first build takes several minutes)"
"$CLUSTER_SCRIPTS/up.sh" 8>&- 2>&1 | tee "$DEMO_DIR/up.log" | sed 's/^/    /'
[ "${PIPESTATUS[0]}" = 0 ] || die "tests/cluster/up.sh failed"
cluster_reused=0
grep -q "already running: " "$DEMO_DIR/up.log" && cluster_reused=1
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
elif [ "$cluster_reused" = 0 ]; then
	replace_reason="pid $OP_PID was started against an earlier control plane"
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
if [ "$RECONCILER" = 1 ]; then
	io_wait_ready "$OP_STATE_FILE" || die "the operator's reconciler did not become ready; see $OP_LOG_FILE"
	echo "    reconciler ready: watching InferenceServices and the Deployments/Services it manages"
fi

step "kubectl apply -f examples/"
(cd "$REPO_ROOT" && "$KUBECTL" apply -f examples/) | sed 's/^/    /'
mapfile -t EXAMPLES < <(cd "$REPO_ROOT" && "$KUBECTL" apply -f examples/ --dry-run=client -o name | sed 's|.*/||')

# wait_until DESC CMD...: poll CMD (quietly) for up to WAIT_SECONDS.
wait_until() {
	local desc="$1" deadline=$((SECONDS + WAIT_SECONDS))
	shift
	until "$@" >/dev/null 2>&1; do
		[ "$SECONDS" -lt "$deadline" ] || die "timed out after $WAIT_SECONDS s waiting for $desc (see $OP_LOG_FILE)"
		sleep 0.25
	done
}
# reconciled NAME: Deployment and Service exist, status caught up with the spec.
reconciled() {
	local gens
	"$KUBECTL" get deploy,svc "$1" -o name >/dev/null || return 1
	gens="$("$KUBECTL" get isvc "$1" -o jsonpath='{.metadata.generation} {.status.observedGeneration}')" || return 1
	[ "${gens% *}" = "${gens#* }" ]
}
# phase_is NAME PHASE: the InferenceService's status.phase.
phase_is() { [ "$("$KUBECTL" get isvc "$1" -o jsonpath='{.status.phase}')" = "$2" ]; }

if [ "$RECONCILER" = 1 ]; then
	echo "    waiting for the operator to create each one's Deployment and Service and write its status"
	for ex in "${EXAMPLES[@]}"; do
		wait_until "the Deployment, Service and status of $ex" reconciled "$ex"
	done
	step "kubectl get isvc,deploy,svc"
	"$KUBECTL" get isvc,deploy,svc | sed 's/^/    /'

	step "simulate readiness of $READY_EXAMPLE: no kubelet here, so patch its Deployment's status"
	echo "    tests/demo/simulate-ready.sh $READY_EXAMPLE   (kubectl patch deploy $READY_EXAMPLE --subresource=status ...)"
	"$DEMO_SRC/simulate-ready.sh" "$READY_EXAMPLE" | sed 's/^/    /'
	wait_until "InferenceService $READY_EXAMPLE to turn Ready" phase_is "$READY_EXAMPLE" Ready
	step "kubectl get isvc   ($READY_EXAMPLE is Ready; the others wait for pods that never run here)"
	"$KUBECTL" get isvc | sed 's/^/    /'
	"$KUBECTL" get isvc "$READY_EXAMPLE" \
		-o jsonpath='{range .status.conditions[*]}    {.type}={.status} {.reason}: {.message}{"\n"}{end}'
else
	step "kubectl get isvc"
	"$KUBECTL" get isvc | sed 's/^/    /'
fi

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
}    kubectl get isvc,deploy,svc
    kubectl scale isvc mistral-7b --replicas=3        # the operator scales its Deployment
    kubectl set image deploy/mistral-7b model-server=nginx   # a hand edit: reverted at once
    tests/demo/simulate-ready.sh mistral-7b           # "pods ready": the InferenceService turns Ready
    kubectl get events.events.k8s.io                  # Created / Updated events of the operator
    kubectl scale isvc llama-3-8b --replicas=100      # denied: must be between 0 and 64
    kubectl explain inferenceservice.spec
    curl -s --cacert $rel_demo_dir/certs/ca.crt https://127.0.0.1:$OP_PORT/metrics | grep ^inference_operator_
    tail -f $rel_demo_dir/operator.log
    make demo-down                                    # stop the operator and the control plane

    Note: this local control plane is only kube-apiserver + etcd: there is no
    kubelet, scheduler or controller-manager, so no pod ever runs, Deployments
    get a status only when you patch it (simulate-ready.sh), and nothing is
    garbage collected. A later issue adds a simulated GPU cluster.
EOF
