#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# End-to-end tests on the simulated GPU cluster (`make e2e-gpu`): the operator
# against kube-apiserver + kube-scheduler + kube-controller-manager and the
# node simulator's GPU pool (tests/cluster/up.sh with CLUSTER_MODE=gpu,
# tests/cluster/profiles/gpu-pool.yaml: 4 H100 nodes with 8 GPUs, 2 A100 with
# 8, 2 L40S with 4, 2 CPU-only nodes). Pods really get scheduled, really
# become Ready (or crash-loop), and the real garbage collector removes what an
# InferenceService owns.
#
#   1. up.sh in $CLUSTER_DIR (default build/gpu-cluster, apart from the plain
#      cluster of `make e2e`): reused while healthy, else started.
#   2. Its own operator with --gpus-per-replica $GPUS_PER_REPLICA (default 4:
#      the pool holds 8 such H100 pods, 4 A100 and 2 L40S), CRD, webhooks.
#   3. Each test_* in TESTS in a subshell with its own namespace, deleted (and
#      waited for: the namespace controller runs here) after it, so the next
#      test finds the pool's GPUs free. PASS/FAIL per test, with its log when
#      it fails; a closing "N passed, N failed"; exit 0 only if none failed.
#   4. Always stops its operator and deletes the nodes the tests added; stops
#      the cluster if this run started it (E2E_KEEP_CLUSTER=1 keeps it).
#
# The two status-reason tests (gpu_unschedulable_then_nodes_added,
# gpu_crashloop_never_ready) check the contract of the pod-aware status:
# Ready=False with reason Unschedulable (message with the scheduler's
# "Insufficient nvidia.com/gpu") or CrashLoopBackOff (message naming the pod).
#
# Env: IO_BIN, CLUSTER_DIR, E2E_GPU_WORK_DIR (default build/e2e-gpu),
# E2E_KEEP_CLUSTER=1, E2E_ONLY=REGEX, GPUS_PER_REPLICA, KUBECTL.
set -u -o pipefail

E2E_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$E2E_SRC/../.." && pwd)"
CLUSTER_SCRIPTS="$REPO_ROOT/tests/cluster"
export CLUSTER_MODE=gpu
export CLUSTER_DIR="${CLUSTER_DIR:-$REPO_ROOT/build/gpu-cluster}"
WORK="${E2E_GPU_WORK_DIR:-$REPO_ROOT/build/e2e-gpu}"
IO_BIN="${IO_BIN:-$REPO_ROOT/build/inference-operator}"
E2E_KEEP_CLUSTER="${E2E_KEEP_CLUSTER:-0}"
E2E_ONLY="${E2E_ONLY:-}"
GPUS_PER_REPLICA="${GPUS_PER_REPLICA:-4}"

# Timeouts (s): generous, the machine may be shared; each is a bound on an
# outcome, never an assertion on speed.
READY_TIMEOUT=120   # an InferenceService's pods scheduled, started and counted ready
GONE_TIMEOUT=120    # the garbage collector / namespace controller removing objects
NEVER_READY_WINDOW=15 # s a crash-looping InferenceService is watched for never being Ready
SAMPLE_INTERVAL=0.5

# The pool (tests/cluster/profiles/gpu-pool.yaml) and what the tests count on.
H100_PRODUCTS_RE='^NVIDIA-H100-'
A100_PRODUCTS_RE='^NVIDIA-A100-'
L40S_PRODUCTS_RE='^NVIDIA-L40S$'
CRASH_MODEL="sim-crashloop/broken-model" # nodesim --crashloop-model-prefix
ADDED_NODES_FILE="" # set in setup: nodes the tests created, deleted at the end

# shellcheck disable=SC2034 # read by operator.sh
IO_LOG_TAG="e2e-gpu"
# shellcheck source=../cluster/operator.sh
. "$CLUSTER_SCRIPTS/operator.sh"

TESTS=(
	gpu_placement
	gpu_ready_follows_pods
	gpu_scale_moves_pods
	gpu_unschedulable_then_nodes_added
	gpu_delete_garbage_collects
	gpu_crashloop_never_ready
	gpu_crashloop_rollout
)

say() { echo "[e2e-gpu $(date +%H:%M:%S)] $*"; }

# --- helpers (a test runs in a subshell; `fail` ends it) ---------------------

fail() {
	echo "ASSERTION FAILED: $*"
	exit 1
}
note() { echo "$*" >>"$TDIR/note"; echo "  note: $*"; }

# k ARGS...: kubectl in the test's namespace; sets KRC, KOUT, KERR and logs.
k() {
	echo "+ kubectl -n $NS $*"
	KRC=0
	"$KUBECTL" -n "$NS" "$@" >"$TDIR/out" 2>"$TDIR/err" || KRC=$?
	KOUT="$(cat "$TDIR/out")"
	KERR="$(cat "$TDIR/err")"
	echo "  exit $KRC"
	[ -z "$KOUT" ] || sed 's/^/  stdout| /' "$TDIR/out"
	[ -z "$KERR" ] || sed 's/^/  stderr| /' "$TDIR/err"
}
expect_ok() { [ "$KRC" = 0 ] || fail "$1: expected exit 0, got $KRC"; }
expect_eq() { [ "$1" = "$2" ] || fail "$3: got '$1', want '$2'"; }

now_ns() { date +%s%N; }
since() { awk -v a="$1" -v b="$(now_ns)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }'; }

# wait_for DESC TIMEOUT CMD...: until CMD succeeds; fail after TIMEOUT s with
# CMD's last output.
wait_for() {
	local desc="$1" timeout="$2" t0 deadline
	shift 2
	echo "+ wait_for (up to ${timeout} s): $desc"
	t0="$(now_ns)"
	deadline=$((SECONDS + timeout))
	until "$@" >"$TDIR/wait.out" 2>&1; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			echo "  last check: $*"
			sed 's/^/  | /' "$TDIR/wait.out"
			fail "timed out after ${timeout} s waiting for: $desc"
		fi
		sleep 0.25
	done
	echo "  ok after $(since "$t0") s"
}

# isvc NAME SPEC_JSON: an InferenceService manifest.
isvc() {
	printf '{"apiVersion":"ai.example.com/v1","kind":"InferenceService","metadata":{"name":"%s"},"spec":%s}\n' "$1" "$2"
}
create_isvc() {
	k create -f - <<<"$(isvc "$1" "$2")"
	expect_ok "create InferenceService $1"
}

# The selector the operator puts on an InferenceService's pods.
sel() { echo "app.kubernetes.io/instance=$1,app.kubernetes.io/name=inference-server"; }
# pods_json NAME: the InferenceService's pods (no logging; for conditions).
pods_json() { "$KUBECTL" -n "$NS" get pods -l "$(sel "$1")" -o json; }
isvc_json() { "$KUBECTL" -n "$NS" get isvc "$1" -o json; }

# isvc_state NAME: "PHASE READY_REPLICAS READY_STATUS REASON" of the status.
ISVC_STATE='[.status.phase // "-", (.status.readyReplicas // 0 | tostring),
	([.status.conditions[]? | select(.type == "Ready") | .status][0] // "-"),
	([.status.conditions[]? | select(.type == "Ready") | .reason][0] // "-")] | join(" ")'
isvc_state() { isvc_json "$1" | jq -r "$ISVC_STATE"; }

# isvc_ready NAME N: phase Ready, readyReplicas N, Ready=True, and N pods
# Running and ready (no others left over).
isvc_ready() {
	local st pods
	st="$(isvc_state "$1")" || return 1
	pods="$(pods_json "$1" | jq -r '[.items[] | select(.metadata.deletionTimestamp == null)] |
		"\(length) \([.[] | select(.status.phase == "Running" and
			([.status.conditions[]? | select(.type == "Ready") | .status][0] == "True"))] | length)"')" || return 1
	echo "isvc $1: $st; pods (total ready): $pods"
	[[ "$st" == "Ready $2 True "* ]] && [ "$pods" = "$2 $2" ]
}

# pod_count NAME N: exactly N pods (terminating ones included) exist.
pod_count() {
	local n
	n="$(pods_json "$1" | jq '.items | length')" || return 1
	echo "$n pods of $1, want $2"
	[ "$n" = "$2" ]
}

# ready_reason NAME REASON FRAGMENT: Ready=False with REASON and a message
# containing FRAGMENT; phase not Ready.
ready_reason() {
	local j
	j="$(isvc_json "$1")" || return 1
	jq -r '"phase \(.status.phase); Ready: " + ([.status.conditions[]? | select(.type == "Ready") |
		"\(.status) \(.reason): \(.message)"][0] // "none")' <<<"$j"
	jq -e --arg r "$2" --arg f "$3" '.status.phase != "Ready" and
		([.status.conditions[]? | select(.type == "Ready" and .status == "False" and .reason == $r and
			(.message | contains($f)))] | length == 1)' <<<"$j" >/dev/null
}

# check_pods NAME N PRODUCT_RE: N pods, each on a node whose
# nvidia.com/gpu.product matches PRODUCT_RE, each requesting (and limited to)
# GPUS_PER_REPLICA nvidia.com/gpu, each tolerating the GPU taint. Notes the
# placement.
check_pods() {
	local name="$1" n="$2" re="$3" pods nodes pod node gpus_req gpus_lim tol product placed=""
	pods="$(pods_json "$name")" || fail "list the pods of $name"
	expect_eq "$(jq '.items | length' <<<"$pods")" "$n" "number of pods of $name"
	nodes="$("$KUBECTL" get nodes -o json)" || fail "list the nodes"
	while IFS=' ' read -r pod node gpus_req gpus_lim tol; do
		[ -n "$pod" ] || continue
		product="$(jq -r --arg n "$node" '.items[] | select(.metadata.name == $n) |
			.metadata.labels["nvidia.com/gpu.product"] // "none"' <<<"$nodes")"
		[[ "$product" =~ $re ]] || fail "pod $pod runs on $node (gpu.product '$product'), not a node matching $re"
		expect_eq "$gpus_req" "$GPUS_PER_REPLICA" "pod $pod nvidia.com/gpu request"
		expect_eq "$gpus_lim" "$GPUS_PER_REPLICA" "pod $pod nvidia.com/gpu limit"
		expect_eq "$tol" true "pod $pod tolerates the nvidia.com/gpu NoSchedule taint"
		placed+="$node($product) "
	done < <(jq -r '.items[] | [.metadata.name, (.spec.nodeName // "none"),
		(.spec.containers[0].resources.requests["nvidia.com/gpu"] // "none"),
		(.spec.containers[0].resources.limits["nvidia.com/gpu"] // "none"),
		([.spec.tolerations[]? | select(.key == "nvidia.com/gpu" and .effect == "NoSchedule")] | length > 0)] |
		map(tostring) | join(" ")' <<<"$pods")
	echo "  ok: $n pods of $name on $placed"
	note "$name: $n pods x $GPUS_PER_REPLICA nvidia.com/gpu on ${placed% }"
}

# --- tests -------------------------------------------------------------------

test_gpu_placement() {
	create_isvc h100 '{"model":"meta-llama/Meta-Llama-3-70B-Instruct","gpuType":"H100","replicas":3}'
	create_isvc a100 '{"model":"mistralai/Mistral-7B-Instruct-v0.3","gpuType":"A100","replicas":2}'
	create_isvc l40s '{"model":"microsoft/Phi-3-mini-4k-instruct","gpuType":"L40S","replicas":1}'
	wait_for "h100 Ready with 3 ready pods" "$READY_TIMEOUT" isvc_ready h100 3
	wait_for "a100 Ready with 2 ready pods" "$READY_TIMEOUT" isvc_ready a100 2
	wait_for "l40s Ready with 1 ready pod" "$READY_TIMEOUT" isvc_ready l40s 1
	check_pods h100 3 "$H100_PRODUCTS_RE"
	check_pods a100 2 "$A100_PRODUCTS_RE"
	check_pods l40s 1 "$L40S_PRODUCTS_RE"
	# The Service reaches the ready pods (the EndpointSlice controller runs).
	wait_for "EndpointSlice of h100 lists 3 ready pod IPs" 60 endpoints_ready h100 3
	k get pods -o wide
}

# endpoints_ready NAME N: the Service's EndpointSlices list N ready endpoints.
endpoints_ready() {
	local n
	n="$("$KUBECTL" -n "$NS" get endpointslices -l "kubernetes.io/service-name=$1" -o json |
		jq '[.items[].endpoints[]? | select(.conditions.ready == true)] | length')" || return 1
	echo "$n ready endpoints for Service $1, want $2"
	[ "$n" = "$2" ]
}

test_gpu_ready_follows_pods() {
	local want=4 deadline st ready phase pods_ready seen="" last=""
	create_isvc follow "{\"model\":\"m\",\"gpuType\":\"H100\",\"replicas\":$want}"
	# Read the InferenceService, then its pods: pods here only ever become
	# ready, so readyReplicas may lag the pods but must never lead them, and
	# phase Ready must mean every replica's pod is ready.
	deadline=$((SECONDS + READY_TIMEOUT))
	while :; do
		st="$(isvc_state follow)" || fail "get isvc follow"
		pods_ready="$(pods_json follow | jq '[.items[] | select([.status.conditions[]? |
			select(.type == "Ready") | .status][0] == "True")] | length')" || fail "list pods"
		read -r phase ready _ <<<"$st"
		[ "$ready" -le "$pods_ready" ] || fail "status.readyReplicas $ready ahead of the $pods_ready ready pods"
		if [ "$phase" = Ready ]; then
			if [ "$ready" != "$want" ] || [ "$pods_ready" != "$want" ]; then
				fail "phase Ready with readyReplicas $ready and $pods_ready ready pods (want $want)"
			fi
		fi
		[ "$ready" != "$last" ] && { seen+="$ready "; last="$ready"; echo "  readyReplicas $ready ($st; $pods_ready pods ready)"; }
		[ "$phase" = Ready ] && break
		[ "$SECONDS" -lt "$deadline" ] || fail "not Ready after $READY_TIMEOUT s (readyReplicas seen: $seen)"
		sleep "$SAMPLE_INTERVAL"
	done
	[[ "$seen" == "0 "* ]] || fail "readyReplicas did not start at 0 (seen: $seen)"
	note "readyReplicas went ${seen% } while pods became ready; never ahead of them"
	check_pods follow "$want" "$H100_PRODUCTS_RE"
}

test_gpu_scale_moves_pods() {
	create_isvc scale '{"model":"m","gpuType":"H100","replicas":2}'
	wait_for "scale Ready with 2 ready pods" "$READY_TIMEOUT" isvc_ready scale 2
	k scale isvc scale --replicas=6
	expect_ok "kubectl scale isvc scale --replicas=6"
	wait_for "scale Ready with 6 ready pods" "$READY_TIMEOUT" isvc_ready scale 6
	check_pods scale 6 "$H100_PRODUCTS_RE"
	k scale isvc scale --replicas=1
	expect_ok "kubectl scale isvc scale --replicas=1"
	wait_for "5 pods removed, 1 left" "$GONE_TIMEOUT" pod_count scale 1
	wait_for "scale Ready with 1 ready pod" "$READY_TIMEOUT" isvc_ready scale 1
	check_pods scale 1 "$H100_PRODUCTS_RE"
	k get deploy scale -o jsonpath='{.spec.replicas} {.status.readyReplicas}'
	expect_eq "$KOUT" "1 1" "Deployment scale spec.replicas and readyReplicas"
}

# add_l40s_node NAME: register one more L40S node, as a cluster autoscaler
# would; nodesim runs every node labelled sim.inference-operator.test/simulated.
add_l40s_node() {
	echo "$1" >>"$ADDED_NODES_FILE"
	k apply -f - <<EOF
apiVersion: v1
kind: Node
metadata:
  name: $1
  labels:
    kubernetes.io/hostname: $1
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    sim.inference-operator.test/simulated: "true"
    sim.inference-operator.test/pool: l40s-added
    nvidia.com/gpu.product: NVIDIA-L40S
    nvidia.com/gpu.count: "4"
    nvidia.com/gpu.present: "true"
  annotations:
    sim.inference-operator.test/cpu: "64"
    sim.inference-operator.test/memory: 512Gi
spec:
  taints:
    - key: nvidia.com/gpu
      value: present
      effect: NoSchedule
EOF
	expect_ok "create Node $1"
}

# pending_unschedulable NAME N: N pods of NAME are unschedulable for lack of
# nvidia.com/gpu (the scheduler's PodScheduled=False condition).
pending_unschedulable() {
	local n
	n="$(pods_json "$1" | jq '[.items[] | select(.status.conditions[]? | .type == "PodScheduled" and
		.status == "False" and .reason == "Unschedulable" and (.message | contains("Insufficient nvidia.com/gpu")))] | length')" ||
		return 1
	echo "$n unschedulable pods of $1, want $2"
	[ "$n" = "$2" ]
}

test_gpu_unschedulable_then_nodes_added() {
	# 3 replicas x 4 GPUs of L40S; the pool has 2 nodes x 4.
	create_isvc big '{"model":"m","gpuType":"L40S","replicas":3}'
	wait_for "one pod of big unschedulable (Insufficient nvidia.com/gpu)" "$READY_TIMEOUT" pending_unschedulable big 1
	local msg
	msg="$(pods_json big | jq -r '[.items[].status.conditions[]? | select(.type == "PodScheduled" and .status == "False") | .message][0]')"
	echo "  scheduler: $msg"
	note "scheduler: $msg"
	wait_for "big: Ready=False, reason Unschedulable, message with Insufficient nvidia.com/gpu" "$READY_TIMEOUT" \
		ready_reason big Unschedulable "Insufficient nvidia.com/gpu"
	k get isvc big -o jsonpath='{range .status.conditions[?(@.type=="Ready")]}{.reason}: {.message}{end}'
	note "status: $KOUT"
	local st
	st="$(isvc_state big)"
	[[ "$st" != Ready* ]] || fail "big is Ready with a pod unschedulable ($st)"
	add_l40s_node "sim-l40s-added-$NS_IDX"
	wait_for "big Ready with 3 ready pods once the node is added" "$READY_TIMEOUT" isvc_ready big 3
	check_pods big 3 "$L40S_PRODUCTS_RE"
	k get pods -l "$(sel big)" -o jsonpath='{range .items[*]}{.spec.nodeName}{"\n"}{end}'
	[[ "$KOUT" == *"sim-l40s-added-$NS_IDX"* ]] || fail "no pod of big landed on the added node"
}

# gone KIND NAME / none KIND NAME: the object is absent / no object of the
# InferenceService NAME's selector is left.
gone() {
	local err
	if err="$("$KUBECTL" -n "$NS" get "$1" "$2" -o name 2>&1)"; then
		echo "$1/$2 still exists"
		return 1
	fi
	[[ "$err" == *NotFound* ]] || { echo "$err"; return 1; }
}
none() {
	local out
	out="$("$KUBECTL" -n "$NS" get "$1" -l "$(sel "$2")" -o name 2>&1)" || { echo "$out"; return 1; }
	[ -z "$out" ] || { echo "left: $out"; return 1; }
}

test_gpu_delete_garbage_collects() {
	create_isvc gc '{"model":"m","gpuType":"A100","replicas":2}'
	wait_for "gc Ready with 2 ready pods" "$READY_TIMEOUT" isvc_ready gc 2
	local isvc_uid dep_uid rs_json pods
	isvc_uid="$("$KUBECTL" -n "$NS" get isvc gc -o jsonpath='{.metadata.uid}')"
	dep_uid="$("$KUBECTL" -n "$NS" get deploy gc -o jsonpath='{.metadata.uid}')"
	# The chain the garbage collector follows: InferenceService -> Deployment
	# and Service (the operator's ownerReferences) -> ReplicaSet -> pods.
	k get deploy,svc gc -o json
	expect_ok "get deploy,svc gc"
	expect_eq "$(jq -r --arg u "$isvc_uid" '[.items[] | .metadata.ownerReferences[]? | select(.uid == $u and
		.kind == "InferenceService" and .controller == true and .blockOwnerDeletion == true)] | length' <<<"$KOUT")" 2 \
		"Deployment and Service owned (controller) by the InferenceService"
	rs_json="$("$KUBECTL" -n "$NS" get rs -l "$(sel gc)" -o json)" || fail "list ReplicaSets"
	expect_eq "$(jq -r --arg u "$dep_uid" '[.items[] | select(.metadata.ownerReferences[0].uid == $u)] | length' <<<"$rs_json")" \
		"$(jq '.items | length' <<<"$rs_json")" "ReplicaSets owned by the Deployment"
	pods="$(pods_json gc)" || fail "list pods"
	expect_eq "$(jq -r '[.items[] | select(.metadata.ownerReferences[0].kind == "ReplicaSet")] | length' <<<"$pods")" 2 \
		"pods owned by a ReplicaSet"
	# Stop the operator first: whatever disappears now, only the garbage
	# collector removed it.
	io_stop "$E2E_OP_STATE" || fail "stop the operator"
	echo "  operator stopped"
	k delete isvc gc --wait=false
	expect_ok "kubectl delete isvc gc"
	wait_for "InferenceService gc gone" "$GONE_TIMEOUT" gone isvc gc
	wait_for "Deployment gc garbage-collected" "$GONE_TIMEOUT" gone deploy gc
	wait_for "Service gc garbage-collected" "$GONE_TIMEOUT" gone svc gc
	wait_for "ReplicaSets of gc garbage-collected" "$GONE_TIMEOUT" none rs gc
	wait_for "pods of gc garbage-collected" "$GONE_TIMEOUT" none pods gc
	note "with the operator stopped, the garbage collector removed Deployment, Service, $(jq '.items | length' <<<"$rs_json") ReplicaSet(s) and 2 pods"
}

test_gpu_crashloop_never_ready() {
	create_isvc crash "{\"model\":\"$CRASH_MODEL\",\"gpuType\":\"H100\",\"replicas\":2}"
	wait_for "both pods of crash in CrashLoopBackOff with restarts" "$READY_TIMEOUT" crashlooping crash 2
	local pod
	pod="$(pods_json crash | jq -r '.items[0].metadata.name')"
	wait_for "crash: Ready=False, reason CrashLoopBackOff, message naming a pod" "$READY_TIMEOUT" \
		ready_reason crash CrashLoopBackOff "crash-"
	k get isvc crash -o jsonpath='{range .status.conditions[?(@.type=="Ready")]}{.reason}: {.message}{end}'
	[[ "$KOUT" =~ crash-[a-z0-9]+-[a-z0-9]+ ]] || fail "the Ready message names no pod of crash: $KOUT"
	note "status: $KOUT"
	# Watch it for a while: never Ready, readyReplicas 0, restarts rising.
	local end=$((SECONDS + NEVER_READY_WINDOW)) st samples=0 r0 r1
	r0="$(pods_json crash | jq '[.items[].status.containerStatuses[]?.restartCount] | add')"
	while [ "$SECONDS" -lt "$end" ]; do
		st="$(isvc_state crash)" || fail "get isvc crash"
		[[ "$st" == "Ready "* || "$st" == *" True "* ]] && fail "crash reported Ready while its pods crash-loop: $st"
		[[ "$st" == *" 0 False "* ]] || fail "crash: want readyReplicas 0 and Ready=False, got $st"
		samples=$((samples + 1))
		sleep "$SAMPLE_INTERVAL"
	done
	r1="$(pods_json crash | jq '[.items[].status.containerStatuses[]?.restartCount] | add')"
	[ "$r1" -gt "$r0" ] || fail "restart counts did not rise ($r0 -> $r1) while watched"
	note "never Ready in $samples samples over ${NEVER_READY_WINDOW} s; restarts $r0 -> $r1 (e.g. pod $pod)"
}

test_gpu_crashloop_rollout() {
	create_isvc roll '{"model":"m","gpuType":"A100","replicas":1}'
	wait_for "roll Ready with 1 ready pod" "$READY_TIMEOUT" isvc_ready roll 1
	local old_pod
	old_pod="$(pods_json roll | jq -r '.items[0].metadata.name')"
	# A foreign field on the operator's Deployment: server-side apply leaves
	# fields other managers own alone.
	k patch deploy roll --type=merge -p '{"spec":{"template":{"metadata":{"annotations":{"sim.inference-operator.test/behavior":"crashloop"}}}}}'
	expect_ok "annotate the pod template (kubectl patch)"
	wait_for "the new pod of roll crash-looping" "$READY_TIMEOUT" crashlooping roll 1
	wait_for "roll: Ready=False, reason CrashLoopBackOff" "$READY_TIMEOUT" ready_reason roll CrashLoopBackOff "roll-"
	expect_jq_ann
	k get pod "$old_pod" -o jsonpath='{.status.containerStatuses[0].ready}'
	expect_eq "$KOUT" true "the old pod $old_pod keeps serving during the stuck rollout"
	k get isvc roll -o jsonpath='{range .status.conditions[?(@.type=="Ready")]}{.reason}: {.message}{end}'
	note "status: $KOUT"
}
# expect_jq_ann: the annotation is still on the Deployment's pod template
# after the operator reconciled the change (its status write proves it saw it).
expect_jq_ann() {
	local got
	got="$("$KUBECTL" -n "$NS" get deploy roll -o json | jq -r '.spec.template.metadata.annotations["sim.inference-operator.test/behavior"] // "none"')"
	expect_eq "$got" crashloop "the foreign pod-template annotation after reconciling"
	echo "  ok: annotation kept"
}

# crashlooping NAME N: N pods waiting in CrashLoopBackOff after a restart.
crashlooping() {
	local n
	n="$(pods_json "$1" | jq '[.items[] | select(.status.containerStatuses[0]?.state.waiting.reason == "CrashLoopBackOff"
		and .status.containerStatuses[0].restartCount >= 1)] | length')" || return 1
	echo "$n crash-looping pods of $1, want $2"
	[ "$n" = "$2" ]
}

# --- setup, run, cleanup ------------------------------------------------------

STARTED_CLUSTER=0
SETUP_DONE=0
PASSED=0 FAILED=0

cleanup() {
	local n
	[ -n "${E2E_OP_STATE:-}" ] && io_stop "$E2E_OP_STATE"
	if [ -n "$ADDED_NODES_FILE" ] && [ -s "$ADDED_NODES_FILE" ] && [ -n "${KUBECTL:-}" ]; then
		while read -r n; do
			"$KUBECTL" delete node "$n" --ignore-not-found --wait=false >/dev/null 2>&1 || true
		done <"$ADDED_NODES_FILE"
		: >"$ADDED_NODES_FILE"
	fi
	if [ "$STARTED_CLUSTER" = 1 ] && [ "$E2E_KEEP_CLUSTER" != 1 ]; then
		"$CLUSTER_SCRIPTS/down.sh" >"$WORK/down.log" 2>&1 || say "down.sh failed; see $WORK/down.log"
	elif [ "$SETUP_DONE" = 1 ] && [ -n "${KUBECTL:-}" ]; then
		io_unregister_webhooks >/dev/null 2>&1 || true
	fi
}
on_exit() {
	local rc=$?
	trap - EXIT
	cleanup
	exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

setup() {
	mkdir -p "$WORK"
	WORK="$(cd "$WORK" && pwd)"
	command -v jq >/dev/null || { say "jq not found: apt-get install jq"; exit 1; }
	[ -x "$IO_BIN" ] || { say "$IO_BIN not found: run make"; exit 1; }
	IO_BIN="$(cd "$(dirname "$IO_BIN")" && pwd)/$(basename "$IO_BIN")"
	export IO_BIN
	ADDED_NODES_FILE="$WORK/added-nodes"
	: >"$ADDED_NODES_FILE"
	say "simulated GPU cluster in $CLUSTER_DIR (tests/cluster/up.sh, CLUSTER_MODE=gpu)"
	"$CLUSTER_SCRIPTS/up.sh" >"$WORK/up.log" 2>&1 || { tail -n 30 "$WORK/up.log"; say "up.sh failed"; exit 1; }
	grep -q "already running" "$WORK/up.log" || STARTED_CLUSTER=1
	export KUBECONFIG="$CLUSTER_DIR/kubeconfig"
	# shellcheck source=../cluster/env.sh
	. "$CLUSTER_SCRIPTS/env.sh"
	[ -n "$KUBECTL" ] || { say "no kubectl"; exit 1; }
	"$KUBECTL" get nodes -L nvidia.com/gpu.product,nvidia.com/gpu.count | sed 's/^/    /'
	E2E_CERTS="$WORK/certs" E2E_OP_STATE="$WORK/operator.env" E2E_OP_LOG="$WORK/operator.log"
	SERVE_ARGS=(--kubeconfig "$KUBECONFIG" --gpus-per-replica "$GPUS_PER_REPLICA")
	io_certs "$E2E_CERTS" || exit 1
	io_install_crd || exit 1
	start_operator || { say "the operator did not start; see $E2E_OP_LOG"; exit 1; }
	say "operator pid $OP_PID on port $OP_PORT (${SERVE_ARGS[*]})"
}

start_operator() {
	io_start "$E2E_OP_STATE" "$IO_BIN" "$E2E_CERTS" "$E2E_OP_LOG" "${SERVE_ARGS[@]}" &&
		io_register_webhooks "$OP_PORT" "$E2E_CERTS/ca.crt" && io_wait_ready "$E2E_OP_STATE"
}
# ensure_operator: a test (gc) stops the operator; the next one restarts it.
ensure_operator() {
	io_running "$E2E_OP_STATE" && return 0
	io_stop "$E2E_OP_STATE" && start_operator
}

# ns_ready: the test namespace has the "default" ServiceAccount pods need.
ns_ready() { "$KUBECTL" -n "$NS" get serviceaccount default -o name; }

run_test() {
	local name="$1" rc t0
	NS_IDX="$2"
	NS="e2e-gpu-$RUN_ID-$NS_IDX"
	TDIR="$WORK/tests/$name"
	rm -rf "$TDIR"
	mkdir -p "$TDIR"
	t0="$(now_ns)"
	{
		if ! ensure_operator; then
			echo "could not (re)start the operator"
			false
		elif ! "$KUBECTL" create namespace "$NS" >/dev/null; then
			echo "could not create namespace $NS"
			false
		else
			(wait_for "ServiceAccount default in $NS" 60 ns_ready && "test_$name")
		fi
	} >"$TDIR/log" 2>&1
	rc=$?
	if [ "$rc" = 0 ]; then
		PASSED=$((PASSED + 1))
		echo "PASS $name ($(since "$t0")s)"
		[ ! -s "$TDIR/note" ] || sed 's/^/     /' "$TDIR/note"
	else
		FAILED=$((FAILED + 1))
		echo "FAIL $name ($(since "$t0")s, namespace $NS; log $TDIR/log)"
		sed 's/^/    /' "$TDIR/log"
	fi
	# Free the pool for the next test: the namespace controller deletes the
	# objects and nodesim finishes the pods' deletion. Only the pods are
	# waited for: the namespace itself lingers for the controller's requeue
	# delay (the pods' 30 s grace period), which the next test need not wait.
	"$KUBECTL" delete namespace "$NS" --wait=false >/dev/null 2>&1
	local deadline=$((SECONDS + GONE_TIMEOUT))
	until [ -z "$("$KUBECTL" -n "$NS" get pods -o name 2>/dev/null)" ]; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			say "pods of namespace $NS not gone within ${GONE_TIMEOUT} s"
			break
		fi
		sleep 0.25
	done
}

RUN_START=$SECONDS
setup
SETUP_DONE=1
say "setup $((SECONDS - RUN_START)) s"
RUN_ID="$(date +%s)"
idx=0
for t in "${TESTS[@]}"; do
	idx=$((idx + 1))
	if [ -n "$E2E_ONLY" ] && ! [[ "$t" =~ $E2E_ONLY ]]; then
		continue
	fi
	run_test "$t" "$(printf '%02d' "$idx")"
done
say "total $((SECONDS - RUN_START)) s"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
