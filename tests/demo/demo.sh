#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# `make demo`: the operator running for real on a simulated GPU cluster.
#
#   1. the simulated GPU cluster (tests/cluster/up.sh, CLUSTER_MODE=gpu) in
#      build/demo/cluster: kube-apiserver, etcd, kube-scheduler,
#      kube-controller-manager and the node simulator's pool
#      (tests/cluster/profiles/gpu-pool.yaml: H100, A100, L40S and CPU nodes);
#      built into the cache the first time (~8 min on 2 cores), reused while
#      it runs; `kubectl get nodes` with their GPU labels;
#   2. the full operator, `inference-operator serve --kubeconfig
#      build/demo/cluster/kubeconfig` (webhook + reconciler), in the background
#      (own session, log build/demo/operator.log, PID in build/demo/operator.pid),
#      reused while healthy, on the same control plane and with the binary
#      unchanged, else restarted; waits for /readyz (watch caches synced);
#   3. CRD + webhook configurations (kubectl apply: idempotent);
#   4. the examples/ InferenceServices; once every one is Ready (its pods
#      scheduled onto nodes of its GPU type and started by the simulator),
#      `kubectl get isvc` and `kubectl get pods -o wide`;
#   5. one rejected create; build/demo/kubeconfig and the next steps.
#      `make demo-down` stops it all.
#
# Separate from the e2e control plane (build/cluster), so tests and the demo
# never touch each other. Safe to run again. Everything on 127.0.0.1.
#
# Env: IO_BIN (default build/inference-operator), DEMO_DIR (default build/demo),
# CLUSTER_PROFILE (the GPU pool, default tests/cluster/profiles/gpu-pool.yaml),
# DEMO_SERVE_ARGS (default "--kubeconfig $DEMO_DIR/cluster/kubeconfig"; the
# flags given to serve; "--webhook-only" shows the webhook alone).
set -euo pipefail

DEMO_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$DEMO_SRC/../.." && pwd)"
CLUSTER_SCRIPTS="$REPO_ROOT/tests/cluster"
DEMO_DIR="${DEMO_DIR:-$REPO_ROOT/build/demo}"
IO_BIN="${IO_BIN:-$REPO_ROOT/build/inference-operator}"
INVALID_EXAMPLE="examples/invalid/too-big-on-t4.yaml"
WAIT_SECONDS=30   # bound of each wait on the operator
READY_SECONDS=120 # bound of the wait for the examples' pods to be scheduled and ready

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
export CLUSTER_DIR="$DEMO_DIR/cluster" CLUSTER_MODE=gpu
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

step "simulated GPU cluster on 127.0.0.1: kube-apiserver, etcd, kube-scheduler, kube-controller-manager, simulated nodes (built once into the cache; the first build takes several minutes)"
"$CLUSTER_SCRIPTS/up.sh" 8>&- 2>&1 | tee "$DEMO_DIR/up.log" | sed 's/^/    /'
[ "${PIPESTATUS[0]}" = 0 ] || die "tests/cluster/up.sh failed"
cluster_reused=0
grep -q "already running: " "$DEMO_DIR/up.log" && cluster_reused=1
export KUBECONFIG="$CLUSTER_DIR/kubeconfig"
ln -sfn cluster/kubeconfig "$DEMO_DIR/kubeconfig"
# shellcheck source=../cluster/env.sh
. "$CLUSTER_SCRIPTS/env.sh"
[ -n "$KUBECTL" ] || die "no kubectl (tests/cluster/build.sh builds one)"
step "kubectl get nodes -L nvidia.com/gpu.product,nvidia.com/gpu.count"
"$KUBECTL" get nodes -L nvidia.com/gpu.product,nvidia.com/gpu.count | sed 's/^/    /'

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
	echo "    waiting (up to $READY_SECONDS s each) for their pods to be scheduled onto their GPU nodes and become ready"
	for ex in "${EXAMPLES[@]}"; do
		WAIT_SECONDS=$READY_SECONDS wait_until "InferenceService $ex to turn Ready" phase_is "$ex" Ready
	done
	step "kubectl get isvc   (every one Ready: its pods run)"
	"$KUBECTL" get isvc | sed 's/^/    /'
	step "kubectl get pods -o wide   (each on a node of its gpuType: sim-h100-*, sim-a100-*, sim-l40s-*)"
	"$KUBECTL" get pods -o wide | sed 's/^/    /'
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
}    kubectl get isvc,deploy,rs,pods,svc -o wide
    kubectl get nodes -L nvidia.com/gpu.product,nvidia.com/gpu.count
    kubectl scale isvc mistral-7b --replicas=3        # two more pods on the A100 nodes
    kubectl scale isvc phi-3-mini --replicas=10       # more than the 8 L40S GPUs: Ready=False, reason Unschedulable
    kubectl get isvc phi-3-mini -o jsonpath='{.status.conditions[?(@.type=="Ready")].message}'
    kubectl set image deploy/mistral-7b model-server=nginx   # a hand edit: reverted at once
    kubectl delete isvc llama-3-8b                    # the garbage collector removes its Deployment, pods, Service
    kubectl get events.events.k8s.io                  # Created / Updated events of the operator
    kubectl scale isvc mistral-7b --replicas=100      # denied: must be between 0 and 64
    kubectl explain inferenceservice.spec
    curl -s --cacert $rel_demo_dir/certs/ca.crt https://127.0.0.1:$OP_PORT/metrics | grep ^inference_operator_
    tail -f $rel_demo_dir/operator.log
    make demo-down                                    # stop the operator and the cluster

    The nodes are simulated (tests/cluster/nodesim): no container really runs;
    a pod turns Running and Ready 2-5 s after the scheduler binds it, and one
    serving a model named sim-crashloop/... crash-loops, e.g.
    kubectl create -f - <<<'{"apiVersion":"ai.example.com/v1","kind":"InferenceService","metadata":{"name":"broken"},"spec":{"model":"sim-crashloop/broken","gpuType":"H100"}}'
EOF
