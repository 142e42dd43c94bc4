#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# End-to-end tests: the operator as shipped (admission webhook + reconciler)
# seen through a real kube-apiserver and kubectl (tests/cluster), run by
# `make e2e`.
#
# What it does:
#   1. tests/cluster/up.sh: reuses a healthy control plane in $CLUSTER_DIR
#      (default build/cluster) or builds (cached) and starts one.
#   2. Starts its own operator ($IO_BIN serve --kubeconfig
#      $CLUSTER_DIR/kubeconfig --listen 127.0.0.1:0: webhook + reconciler),
#      installs the committed CRD, registers the webhooks at the operator's
#      port (tests/cluster/operator.sh) and waits for /readyz (watch caches
#      synced).
#   3. Runs every test_* function listed in TESTS (the reconciler's are in
#      reconciler.sh, the high-availability ones, two leader-electing
#      replicas each, in ha.sh), in order, each in a subshell with its own fresh
#      namespace; prints PASS/FAIL per test (with the test's commands, waits
#      and outputs when it fails); removes the namespace's objects after it.
#   4. Always stops its operator. Control plane: if up.sh found it already
#      running, it is left running (webhook configurations removed, so nothing
#      points at a dead port); if this run started it, this run stops it
#      (E2E_KEEP_CLUSTER=1 keeps it).
#   5. Closing line: "N passed, N failed". Exit 0 only if none failed.
#
# Env: IO_BIN (default build/inference-operator), CLUSTER_DIR, E2E_WORK_DIR
# (default build/e2e: certificates, operator.log, per-test logs),
# E2E_KEEP_CLUSTER=1, E2E_ONLY=REGEX (run only matching tests),
# E2E_SERVE_ARGS (default "--kubeconfig $CLUSTER_DIR/kubeconfig"; the mode
# flags given to serve; with "--webhook-only" the reconciler tests are skipped),
# KUBECTL (default: the kubectl tests/cluster/build.sh built).
# Runs of this script on one CLUSTER_DIR are serialised by a lock.
set -u -o pipefail

E2E_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$E2E_SRC/../.." && pwd)"
CLUSTER_SCRIPTS="$REPO_ROOT/tests/cluster"
export CLUSTER_DIR="${CLUSTER_DIR:-$REPO_ROOT/build/cluster}"
WORK="${E2E_WORK_DIR:-$REPO_ROOT/build/e2e}"
IO_BIN="${IO_BIN:-$REPO_ROOT/build/inference-operator}"
E2E_KEEP_CLUSTER="${E2E_KEEP_CLUSTER:-0}"
E2E_ONLY="${E2E_ONLY:-}"
SERVE_ARGS=() # set in setup (the default names the cluster's kubeconfig)
RECONCILER=1  # 0 when SERVE_ARGS has --webhook-only

IO_LOG_TAG="e2e"
# shellcheck source=../cluster/operator.sh
. "$CLUSTER_SCRIPTS/operator.sh"

VALIDATE_PREFIX="admission webhook \"$IO_VALIDATE_WEBHOOK\" denied the request: "
GPU_T4_MSG='spec.gpuType: Unsupported value: "T4": supported values: "A100", "H100", "L40S"'

TESTS=(
	invalid_create_denied
	valid_create_defaults
	dry_run_server
	update_denied
	scale_subresource
	printer_columns
	explain_gpu_type
	unknown_field
	name_validation
	examples
	ratcheting_warning
	webhook_down_fail_closed
	reconcile_create
	reconcile_spec_edits
	reconcile_reverts_hand_edits
	reconcile_recreates_deleted
	reconcile_status_transitions
	reconcile_pod_status
	reconcile_events
	reconcile_invalid_spec
	apiserver_restart
	restart_no_writes
	ha_one_leader
	ha_kill_leader
	ha_sigterm_handover
	ha_cold_standby
	ha_apiserver_down
	burst_create
	scale_500
)
# Tests that need the reconciler (skipped when E2E_SERVE_ARGS has --webhook-only).
RECONCILER_TESTS=(reconcile_create reconcile_spec_edits reconcile_reverts_hand_edits
	reconcile_recreates_deleted reconcile_status_transitions reconcile_pod_status reconcile_events reconcile_invalid_spec
	apiserver_restart restart_no_writes ha_one_leader ha_kill_leader ha_sigterm_handover ha_cold_standby ha_apiserver_down
	burst_create scale_500)
SCALE_N="${E2E_SCALE_N:-500}"             # objects created at once by scale_500
SCALE_TIMEOUT="${E2E_SCALE_TIMEOUT:-180}" # s for all of them to converge
# What the reconciler writes (reconciler/rc_desired.c).
MODEL_IMAGE="vllm/vllm-openai:v0.6.3"
H100_PRODUCTS='["NVIDIA-H100-80GB-HBM3","NVIDIA-H100-SXM5-80GB","NVIDIA-H100-PCIe","NVIDIA-H100-NVL"]'

say() { echo "[e2e $(date +%H:%M:%S)] $*"; }

# ---------------------------------------------------------------------------
# Helpers for tests. Tests run in a subshell; `fail` ends the test.
# ---------------------------------------------------------------------------

fail() {
	echo "ASSERTION FAILED: $*"
	exit 1
}

# k ARGS...: kubectl in the test's namespace. Never fails itself: sets KRC
# (exit code), KOUT, KERR, and logs the command and its output to the test
# log (shown when the test fails).
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
expect_fail() { [ "$KRC" != 0 ] || fail "$1: expected a non-zero exit, got 0"; }
expect_err_has() { [[ "$KERR" == *"$1"* ]] || fail "stderr lacks: $1"; }
expect_err_lacks() { [[ "$KERR" != *"$1"* ]] || fail "stderr should not contain: $1"; }
expect_out_has() { [[ "$KOUT" == *"$1"* ]] || fail "stdout lacks: $1"; }
expect_eq() { [ "$1" = "$2" ] || fail "$3: got '$1', want '$2'"; }

# expect_denied MSG...: the last command failed with the validating
# webhook's denial, and every MSG is one of the "; "-separated field
# messages that follow "denied the request: ".
expect_denied() {
	expect_fail "denied request"
	expect_err_has "Error from server (Forbidden)"
	expect_err_has "$VALIDATE_PREFIX"
	local rest="${KERR#*"$VALIDATE_PREFIX"}" m part found
	rest="$(head -n 1 <<<"$rest")"
	for m in "$@"; do
		found=0
		while IFS= read -r part; do
			[ "$part" = "$m" ] && found=1
		done <<<"${rest//; /$'\n'}"
		[ "$found" = 1 ] || fail "denial lacks the field message: $m"
	done
}

# isvc NAME SPEC_JSON: an InferenceService manifest (JSON).
isvc() {
	printf '{"apiVersion":"ai.example.com/v1","kind":"InferenceService","metadata":{"name":"%s"},"spec":%s}\n' "$1" "$2"
}

# get_json NAME: read the stored object back (kubectl get -o json) into KOUT.
get_json() {
	k get isvc "$1" -o json
	expect_ok "kubectl get isvc $1 -o json"
}
# jqv FILTER: apply a jq filter to KOUT.
jqv() { jq -r "$1" <<<"$KOUT"; }

expect_not_stored() {
	k get isvc "$1" -o name
	expect_fail "get isvc $1 (must not exist)"
	expect_err_has "NotFound"
}

# start_operator [SERVE_FLAGS...]: start the e2e operator (new port) with the
# default mode flags plus SERVE_FLAGS, register the webhooks at its port and,
# with the reconciler on, wait for /readyz (its watch caches synced).
start_operator() {
	io_start "$E2E_OP_STATE" "$IO_BIN" "$E2E_CERTS" "$E2E_OP_LOG" "${SERVE_ARGS[@]}" "$@" || return 1
	io_register_webhooks "$OP_PORT" "$E2E_CERTS/ca.crt" || return 1
	if [ "$RECONCILER" = 1 ]; then
		io_wait_ready "$E2E_OP_STATE" || return 1
	fi
}

# restart_operator [SERVE_FLAGS...]: stop the e2e operator, start_operator.
restart_operator() {
	io_stop "$E2E_OP_STATE" || return 1
	start_operator "$@" || return 1
	echo "  (operator restarted: pid $OP_PID, port $OP_PORT, flags: ${SERVE_ARGS[*]} $*)"
}

# --- reconciler helpers ------------------------------------------------------

# now_ns / since T0: nanosecond clock and the seconds elapsed since T0 (0.1 s).
now_ns() { date +%s%N; }
since() { awk -v a="$1" -v b="$(now_ns)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }'; }

# wait_for DESC TIMEOUT CMD...: run CMD every WAIT_INTERVAL s (default 0.25)
# until it succeeds. After TIMEOUT seconds the test fails with DESC and CMD's
# last output (conditions print what they saw when they are not met). Logs
# the time it took.
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
		sleep "${WAIT_INTERVAL:-0.25}"
	done
	echo "  ok after $(since "$t0") s"
}

# kjson KIND NAME: the object as JSON on stdout (no logging; for conditions).
kjson() { "$KUBECTL" -n "$NS" get "$1" "$2" -o json; }

# jq_is KIND NAME FILTER WANT: FILTER (jq -c -r) of the object is WANT (JSON
# objects and arrays compare with keys sorted); prints what it got otherwise.
# Used as a wait_for condition and by expect_jq.
jq_is() {
	local json got
	json="$(kjson "$1" "$2" 2>&1)" || { echo "get $1 $2: $json"; return 1; }
	got="$(jq -c -r "$3" <<<"$json" 2>&1)" || { echo "jq $3: $got"; return 1; }
	[ "$got" = "$4" ] && return 0
	# JSON values compare with their keys sorted.
	if [[ "$4" == "["* || "$4" == "{"* ]] && [ "$(jq -S -c . <<<"$got" 2>/dev/null)" = "$(jq -S -c . <<<"$4" 2>/dev/null)" ]; then
		return 0
	fi
	echo "$1/$2 $3: got '$got', want '$4'"
	return 1
}
# expect_jq KIND NAME FILTER WANT: the same as an assertion.
expect_jq() {
	local msg
	msg="$(jq_is "$@")" || fail "$msg"
	echo "  ok: $1/$2 $3 = $4"
}

# exists KIND NAME / absent KIND NAME: conditions.
exists() { "$KUBECTL" -n "$NS" get "$1" "$2" -o name; }
absent() {
	local err
	if err="$("$KUBECTL" -n "$NS" get "$1" "$2" -o name 2>&1)"; then
		echo "$1/$2 exists"
		return 1
	fi
	[[ "$err" == *NotFound* ]] || { echo "$err"; return 1; }
}

# cond NAME TYPE FIELD: jq filter for a field of the InferenceService
# condition TYPE (empty when the condition is missing).
cond() { printf '[.status.conditions[]? | select(.type == "%s") | .%s][0] // ""' "$1" "$2"; }

# converged NAME: the InferenceService's status has caught up with its spec
# (status.observedGeneration == metadata.generation) and its Deployment and
# Service exist.
converged() {
	jq_is isvc "$1" '.status.observedGeneration == .metadata.generation' true &&
		exists deploy "$1" && exists svc "$1"
}

# expect_json_eq GOT WANT WHAT: equal JSON values (keys sorted); on mismatch
# fail with a diff.
expect_json_eq() {
	local got want
	got="$(jq -S . <<<"$1")" || fail "$3: not JSON: $1"
	want="$(jq -S . <<<"$2")" || fail "$3: expected value is not JSON"
	if [ "$got" != "$want" ]; then
		echo "  $3 differs (- want, + got):"
		diff -u <(echo "$want") <(echo "$got") | tail -n +3 | sed 's/^/  /'
		fail "$3 is not as expected"
	fi
	echo "  ok: $3 as expected"
}

# metric 'NAME{LABELS}': one sample of the running e2e operator's /metrics
# (0 when the series is absent); fails the test when /metrics does not answer.
metric() {
	local text
	text="$(io_metrics "$E2E_OP_STATE")" || fail "GET /metrics of the e2e operator failed"
	awk -v s="$1" '$1 == s { v = $2 } END { print (v == "" ? 0 : v) }' <<<"$text"
}
# metric_ge 'NAME{LABELS}' MIN: condition.
metric_ge() {
	local v
	v="$(metric "$1")"
	awk -v v="$v" -v m="$2" 'BEGIN { exit !(v + 0 >= m + 0) }' && return 0
	echo "$1 = $v, want >= $2"
	return 1
}

APPLIES='inference_operator_applies_total'
STATUS_WRITES='inference_operator_status_writes_total'
RECONCILE_OK='controller_runtime_reconcile_total{controller="inferenceservice",result="success"}'

# deploy_status NAME JSON_FIELDS: patch the Deployment's status subresource
# (there is no controller-manager to do it) with observedGeneration = its
# metadata.generation plus JSON_FIELDS (a JSON object's members, e.g.
# '"replicas":2,"readyReplicas":2'), as the deployment controller would.
deploy_status() {
	local gen
	gen="$("$KUBECTL" -n "$NS" get deploy "$1" -o jsonpath='{.metadata.generation}')" ||
		fail "read the generation of Deployment $1"
	k patch deploy "$1" --subresource=status --type=merge -p "{\"status\":{\"observedGeneration\":$gen,$2}}"
	expect_ok "patch the status of Deployment $1"
}
# dcond TYPE STATUS REASON MESSAGE: one Deployment condition (JSON).
dcond() {
	local now
	now="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	jq -cn --arg t "$1" --arg s "$2" --arg r "$3" --arg m "$4" --arg now "$now" \
		'{type: $t, status: $s, reason: $r, message: $m, lastUpdateTime: $now, lastTransitionTime: $now}'
}
# deploy_ready NAME N: status of a finished rollout of N ready replicas.
deploy_ready() {
	local avail prog
	avail="$(dcond Available True MinimumReplicasAvailable "Deployment has minimum availability.")"
	prog="$(dcond Progressing True NewReplicaSetAvailable "ReplicaSet \"$1-5d8f7c\" has successfully progressed.")"
	deploy_status "$1" "\"replicas\":$2,\"readyReplicas\":$2,\"updatedReplicas\":$2,\"availableReplicas\":$2,\"conditions\":[$avail,$prog]"
}

# ---------------------------------------------------------------------------
# Tests (the reconciler's are in reconciler.sh)
# ---------------------------------------------------------------------------

# shellcheck source=reconciler.sh
. "$E2E_SRC/reconciler.sh"
# shellcheck source=ha.sh
. "$E2E_SRC/ha.sh"

test_invalid_create_denied() {
	k create -f - <<<"$(isvc bad-multi '{"model":"-bad","replicas":100000,"gpuType":"T4","maxBatchSize":0}')"
	expect_denied \
		"spec.model: Invalid value: \"-bad\": must consist of letters, digits and '.', '_', '-', '/', ':', '@', '+', '=', and may not start with '-'" \
		"spec.replicas: Invalid value: 100000: must be between 0 and 64" \
		"$GPU_T4_MSG" \
		"spec.maxBatchSize: Invalid value: 0: must be between 1 and 4096"
	expect_not_stored bad-multi

	# Required fields; replicas/maxBatchSize are defaulted by the CRD schema.
	k create -f - <<<"$(isvc bad-empty '{}')"
	expect_denied "spec.model: Required value" "spec.gpuType: Required value"
	expect_not_stored bad-empty

	k get isvc -o name
	expect_ok "list"
	expect_eq "$KOUT" "" "objects in the namespace"
}

test_valid_create_defaults() {
	k create -f - <<<"$(isvc llama '{"model":"meta-llama/Meta-Llama-3-8B-Instruct","gpuType":"h100"}')"
	expect_ok "create valid"
	expect_out_has "inferenceservice.ai.example.com/llama created"
	get_json llama
	expect_eq "$(jqv .spec.replicas)" 1 "spec.replicas"
	expect_eq "$(jqv .spec.maxBatchSize)" 32 "spec.maxBatchSize"
	expect_eq "$(jqv .spec.gpuType)" H100 "spec.gpuType (normalised by the mutating webhook)"
	expect_eq "$(jqv .spec.model)" meta-llama/Meta-Llama-3-8B-Instruct "spec.model"
	expect_eq "$(jqv '.metadata.labels["app.kubernetes.io/managed-by"]')" inference-operator "managed-by label"

	# Explicit values (including replicas 0) are kept.
	k create -f - <<<"$(isvc mistral '{"model":"mistralai/Mistral-7B-Instruct-v0.3","gpuType":"A100","replicas":0,"maxBatchSize":64}')"
	expect_ok "create valid with explicit values"
	get_json mistral
	expect_eq "$(jqv .spec.replicas)" 0 "spec.replicas"
	expect_eq "$(jqv .spec.maxBatchSize)" 64 "spec.maxBatchSize"
	expect_eq "$(jqv .spec.gpuType)" A100 "spec.gpuType"
	expect_eq "$(jqv '.metadata.labels["app.kubernetes.io/managed-by"]')" inference-operator "managed-by label"
}

test_dry_run_server() {
	isvc dry-bad '{"model":"m","replicas":65,"gpuType":"T4"}' >"$TDIR/bad.json"
	k apply --dry-run=server -f "$TDIR/bad.json"
	expect_denied "spec.replicas: Invalid value: 65: must be between 0 and 64" "$GPU_T4_MSG"
	expect_not_stored dry-bad

	isvc dry-good '{"model":"m","gpuType":"l40s"}' >"$TDIR/good.json"
	k apply --dry-run=server -f "$TDIR/good.json"
	expect_ok "dry-run apply of a valid object"
	expect_out_has "inferenceservice.ai.example.com/dry-good created (server dry run)"
	# The dry run goes through the mutating webhook too.
	k apply --dry-run=server -f "$TDIR/good.json" -o json
	expect_ok "dry-run apply -o json"
	expect_eq "$(jqv .spec.gpuType)" L40S "dry-run spec.gpuType"
	expect_eq "$(jqv .spec.replicas)" 1 "dry-run spec.replicas"
	expect_eq "$(jqv '.metadata.labels["app.kubernetes.io/managed-by"]')" inference-operator "dry-run label"
	expect_not_stored dry-good
	k get isvc -o name
	expect_eq "$KOUT" "" "objects in the namespace after dry runs"

	# A dry-run UPDATE: denied when invalid, accepted but not stored when valid.
	k apply -f "$TDIR/good.json"
	expect_ok "apply (for real)"
	isvc dry-good '{"model":"m","gpuType":"T4"}' >"$TDIR/upd-bad.json"
	k apply --dry-run=server -f "$TDIR/upd-bad.json"
	expect_denied "$GPU_T4_MSG"
	isvc dry-good '{"model":"m","gpuType":"l40s","replicas":5}' >"$TDIR/upd-good.json"
	k apply --dry-run=server -f "$TDIR/upd-good.json"
	expect_ok "dry-run apply of a valid update"
	expect_out_has "configured (server dry run)"
	get_json dry-good
	expect_eq "$(jqv .spec.replicas)" 1 "stored spec.replicas after dry-run update"
	expect_eq "$(jqv .spec.gpuType)" L40S "stored spec.gpuType after dry-run update"
}

test_update_denied() {
	k create -f - <<<"$(isvc upd '{"model":"m","gpuType":"H100"}')"
	expect_ok "create"
	k patch isvc upd --type merge -p '{"spec":{"gpuType":"T4"}}'
	expect_denied "$GPU_T4_MSG"
	k patch isvc upd --type merge -p '{"spec":{"replicas":65,"maxBatchSize":5000}}'
	expect_denied "spec.replicas: Invalid value: 65: must be between 0 and 64" \
		"spec.maxBatchSize: Invalid value: 5000: must be between 1 and 4096"
	get_json upd
	expect_eq "$(jqv .spec.gpuType)" H100 "spec.gpuType after denied patch"
	expect_eq "$(jqv .spec.replicas)" 1 "spec.replicas after denied patch"

	# A valid UPDATE passes, normalised by the mutating webhook.
	k patch isvc upd --type merge -p '{"spec":{"gpuType":"a100","replicas":4}}'
	expect_ok "valid patch"
	get_json upd
	expect_eq "$(jqv .spec.gpuType)" A100 "spec.gpuType after valid patch"
	expect_eq "$(jqv .spec.replicas)" 4 "spec.replicas after valid patch"
}

test_scale_subresource() {
	k create -f - <<<"$(isvc sc '{"model":"m","gpuType":"A100"}')"
	expect_ok "create"
	k scale isvc sc --replicas=65
	expect_denied "spec.replicas: Invalid value: 65: must be between 0 and 64"
	get_json sc
	expect_eq "$(jqv .spec.replicas)" 1 "spec.replicas after denied scale"

	k scale isvc sc --replicas=3
	expect_ok "scale to 3"
	expect_out_has "inferenceservice.ai.example.com/sc scaled"
	get_json sc
	expect_eq "$(jqv .spec.replicas)" 3 "spec.replicas after scale"

	k scale isvc sc --replicas=64
	expect_ok "scale to the upper bound 64"
	k get isvc sc --subresource=scale -o json
	expect_ok "get scale subresource"
	expect_eq "$(jqv .kind)" Scale "scale subresource kind"
	expect_eq "$(jqv .spec.replicas)" 64 "Scale spec.replicas"
	k scale isvc sc --replicas=0
	expect_ok "scale to the lower bound 0"
	get_json sc
	expect_eq "$(jqv .spec.replicas)" 0 "spec.replicas after scale to 0"
}

test_printer_columns() {
	k create -f - <<<"$(isvc pc '{"model":"microsoft/Phi-3-mini-4k-instruct","gpuType":"l40s","replicas":2}')"
	expect_ok "create"
	k get isvc
	expect_ok "kubectl get isvc"
	[[ "$(head -n 1 <<<"$KOUT")" =~ ^NAME\ +MODEL\ +GPU\ +REPLICAS\ +READY\ +PHASE\ +ENDPOINT\ +AGE$ ]] ||
		fail "header is not NAME MODEL GPU REPLICAS READY PHASE ENDPOINT AGE: $(head -n 1 <<<"$KOUT")"
	expect_eq "$(awk '$1 == "pc" { print $2, $3, $4 }' <<<"$KOUT")" \
		"microsoft/Phi-3-mini-4k-instruct L40S 2" "row pc: MODEL GPU REPLICAS"
	k get isvc pc -o custom-columns=AGE:.metadata.creationTimestamp --no-headers
	expect_ok "creationTimestamp"
	[ -n "$KOUT" ] || fail "no creationTimestamp"
}

test_explain_gpu_type() {
	# The CRD's OpenAPI is published asynchronously after the CRD is
	# Established: retry for up to 30 s.
	local deadline=$((SECONDS + 30)) flat
	while :; do
		k explain inferenceservice.spec.gpuType
		flat="$(tr -s ' \n' '  ' <<<"$KOUT")"
		[ "$KRC" = 0 ] && [[ "$flat" == *"Allowed: A100, H100, L40S"* ]] && break
		[ "$SECONDS" -lt "$deadline" ] || break
		sleep 1
	done
	expect_ok "kubectl explain inferenceservice.spec.gpuType"
	expect_out_has "KIND:       InferenceService"
	expect_out_has "VERSION:    v1"
	expect_out_has "FIELD: gpuType <string>"
	# kubectl wraps the description: compare with whitespace collapsed.
	[[ "$flat" == *"GPU model the pods are scheduled on, from the operator's --gpu-types; matched case-insensitively and stored in its canonical spelling. Allowed: A100, H100, L40S. Required."* ]] ||
		fail "explain lacks the field table's description of gpuType"

	k explain inferenceservice.spec.replicas
	expect_ok "kubectl explain inferenceservice.spec.replicas"
	flat="$(tr -s ' \n' '  ' <<<"$KOUT")"
	[[ "$flat" == *"Between 0 and 64. Defaults to 1."* ]] || fail "explain spec.replicas lacks bounds/default"
}

# The API server decodes a custom resource against its structural schema
# before admission: unknown fields are either rejected (kubectl's default
# --validate=strict) or dropped with a warning (--validate=warn) or silently
# (--validate=false). The webhook never sees them, so its own
# "spec: unknown field ..., ignored" warning cannot reach a kubectl user.
test_unknown_field() {
	local obj
	obj="$(isvc unk '{"model":"m","gpuType":"A100","fooBar":1}')"
	k create -f - <<<"$obj"
	expect_fail "create with an unknown field (strict)"
	expect_err_has 'strict decoding error: unknown field "spec.fooBar"'
	expect_err_lacks "admission webhook"
	expect_not_stored unk

	k create --validate=warn -f - <<<"$obj"
	expect_ok "create --validate=warn"
	expect_err_has 'Warning: unknown field "spec.fooBar"'
	expect_err_lacks "spec: unknown field"
	get_json unk
	expect_eq "$(jqv '.spec | has("fooBar")')" false "spec.fooBar pruned"
	expect_eq "$(jqv .spec.gpuType)" A100 "spec.gpuType"

	k create --validate=false -f - <<<"$(isvc unk2 '{"model":"m","gpuType":"A100","fooBar":1}')"
	expect_ok "create --validate=false"
	expect_err_lacks "Warning"
	get_json unk2
	expect_eq "$(jqv '.spec | has("fooBar")')" false "spec.fooBar pruned"
	expect_eq "$(jqv '.metadata.labels["app.kubernetes.io/managed-by"]')" inference-operator "managed-by label"
}

test_name_validation() {
	local long63 long64 dns1035
	long63="$(printf 'a%.0s' {1..63})"
	long64="${long63}a"
	dns1035="a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name', or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"

	k create -f - <<<"$(isvc "$long64" '{"model":"m","gpuType":"A100"}')"
	expect_denied "metadata.name: Invalid value: \"$long64\": must be no more than 63 characters (it names the Deployment and Service)"
	k create -f - <<<"$(isvc 1llama '{"model":"m","gpuType":"A100"}')"
	expect_denied "metadata.name: Invalid value: \"1llama\": $dns1035"
	k create -f - <<<"$(isvc llama.v3 '{"model":"m","gpuType":"A100"}')"
	expect_denied "metadata.name: Invalid value: \"llama.v3\": $dns1035"
	# generateName: the API server generates the name (prefix + 5 random
	# characters, prefix cut to 58) before admission, so the webhook judges
	# metadata.name, never metadata.generateName.
	k create -f - <<<'{"apiVersion":"ai.example.com/v1","kind":"InferenceService","metadata":{"generateName":"9x-"},"spec":{"model":"m","gpuType":"A100"}}'
	expect_fail "create with generateName 9x-"
	expect_err_has "$VALIDATE_PREFIX"
	[[ "${KERR#*"$VALIDATE_PREFIX"}" =~ ^metadata\.name:\ Invalid\ value:\ \"9x-[a-z0-9]{5}\":\ a\ DNS-1035\ label\  ]] ||
		fail "denial of generateName 9x- is not about the generated metadata.name"
	# Not even a DNS-1123 subdomain: the API server's own validation answers
	# (422) before validating webhooks are called.
	k create -f - <<<"$(isvc Llama '{"model":"m","gpuType":"A100"}')"
	expect_fail "create Llama"
	expect_err_has 'metadata.name: Invalid value: "Llama": a lowercase RFC 1123 subdomain'
	expect_err_lacks "admission webhook"

	k create -f - <<<"$(isvc "$long63" '{"model":"m","gpuType":"A100"}')"
	expect_ok "create with a 63-character name"
	k create -o name -f - <<<'{"apiVersion":"ai.example.com/v1","kind":"InferenceService","metadata":{"generateName":"llama-"},"spec":{"model":"m","gpuType":"A100"}}'
	expect_ok "create with generateName"
	[[ "$KOUT" =~ ^inferenceservice.ai.example.com/llama-[a-z0-9]{5}$ ]] || fail "generated name: $KOUT"
}

test_examples() {
	k apply -f "$REPO_ROOT/examples/"
	expect_ok "kubectl apply -f examples/"
	get_json llama-3-8b
	expect_eq "$(jqv '[.spec.gpuType, .spec.replicas, .spec.maxBatchSize] | join(" ")')" "H100 2 32" "llama-3-8b"
	get_json mistral-7b
	expect_eq "$(jqv '[.spec.gpuType, .spec.replicas, .spec.maxBatchSize] | join(" ")')" "A100 1 64" "mistral-7b"
	get_json phi-3-mini
	expect_eq "$(jqv '[.spec.gpuType, .spec.replicas, .spec.maxBatchSize] | join(" ")')" "L40S 1 32" "phi-3-mini"
	local gen
	gen="$(jqv .metadata.generation)"
	# Applying again is harmless (make demo does it on every run).
	k apply -f "$REPO_ROOT/examples/"
	expect_ok "second kubectl apply -f examples/"
	get_json phi-3-mini
	expect_eq "$(jqv .spec.gpuType)" L40S "phi-3-mini gpuType after re-apply"
	expect_eq "$(jqv .metadata.generation)" "$gen" "phi-3-mini generation after re-apply"

	k create -f "$REPO_ROOT/examples/invalid/too-big-on-t4.yaml"
	expect_denied "spec.replicas: Invalid value: 100: must be between 0 and 64" "$GPU_T4_MSG" \
		"spec.maxBatchSize: Invalid value: 10000: must be between 1 and 4096"
	expect_not_stored too-big-on-t4
}

# UPDATE of a field that was already invalid and is left unchanged is allowed,
# with a warning kubectl prints. An invalid stored object needs looser rules
# first: run an operator with --max-replicas 100, create, then go back to the
# defaults. Also shows that re-registering updates the configurations in place.
test_ratcheting_warning() {
	local uid_before url_before
	uid_before="$("$KUBECTL" get validatingwebhookconfiguration "$IO_WEBHOOK_CONFIG" -o jsonpath='{.metadata.uid}')"
	url_before="$("$KUBECTL" get validatingwebhookconfiguration "$IO_WEBHOOK_CONFIG" -o jsonpath='{.webhooks[0].clientConfig.url}')"
	restart_operator --max-replicas 100 || fail "restart operator with --max-replicas 100"
	k create -f - <<<"$(isvc rat '{"model":"m","gpuType":"A100","replicas":80}')"
	expect_ok "create with replicas 80 under --max-replicas 100"
	restart_operator || fail "restart operator with default rules"

	expect_eq "$("$KUBECTL" get validatingwebhookconfiguration "$IO_WEBHOOK_CONFIG" -o jsonpath='{.metadata.uid}')" \
		"$uid_before" "ValidatingWebhookConfiguration uid after re-registering (updated in place)"
	expect_eq "$("$KUBECTL" get validatingwebhookconfiguration "$IO_WEBHOOK_CONFIG" -o jsonpath='{.webhooks[0].clientConfig.url}')" \
		"https://127.0.0.1:$OP_PORT/validate" "clientConfig.url after re-registering"
	[ "$url_before" != "https://127.0.0.1:$OP_PORT/validate" ] || fail "port did not change across restarts"

	k patch isvc rat --type merge -p '{"spec":{"model":"m2"}}'
	expect_ok "patch another field of an object with an out-of-bounds replicas"
	expect_err_has "Warning: spec.replicas: 80 is outside [0, 64] (unchanged, allowed)"
	get_json rat
	expect_eq "$(jqv '[.spec.model, .spec.replicas] | join(" ")')" "m2 80" "model and replicas after patch"

	k patch isvc rat --type merge -p '{"spec":{"replicas":90}}'
	expect_denied "spec.replicas: Invalid value: 90: must be between 0 and 64"
	k scale isvc rat --replicas=70
	expect_denied "spec.replicas: Invalid value: 70: must be between 0 and 64"
	k scale isvc rat --replicas=10
	expect_ok "scale back into bounds"
	expect_err_lacks "Warning"
}

# failurePolicy Fail: with the operator stopped, writes that need the webhook
# fail with the API server's "failed calling webhook"; deletes (not
# registered) still work. The operator is restarted afterwards. Stopping the
# one process also stops the reconciler: a hand edit made while it is down
# is reverted after the restart (from the initial list), and the object
# created after the restart gets its Deployment.
test_webhook_down_fail_closed() {
	k create -f - <<<"$(isvc victim '{"model":"m","gpuType":"A100"}')"
	expect_ok "create while the webhook is up"
	if [ "$RECONCILER" = 1 ]; then
		k create -f - <<<"$(isvc keeper '{"model":"m","gpuType":"A100"}')"
		expect_ok "create keeper"
		wait_for "Deployment keeper with 1 replica" 20 jq_is deploy keeper .spec.replicas 1
	fi
	io_stop "$E2E_OP_STATE" || fail "stop the operator"
	echo "  (operator stopped)"
	if [ "$RECONCILER" = 1 ]; then
		# Deployments are not subject to our webhooks: this edit goes through.
		k scale deploy keeper --replicas=5
		expect_ok "scale Deployment keeper while the operator is down"
		sleep 1
		expect_jq deploy keeper .spec.replicas 5
	fi

	k create -f - <<<"$(isvc down '{"model":"m","gpuType":"A100"}')"
	expect_fail "create with the webhook down"
	expect_err_has "Error from server (InternalError)"
	expect_err_has "failed calling webhook \"$IO_MUTATE_WEBHOOK\""
	expect_err_has "connect: connection refused"
	expect_not_stored down
	k patch isvc victim --type merge -p '{"spec":{"replicas":2}}'
	expect_fail "patch with the webhook down"
	expect_err_has "failed calling webhook"
	k scale isvc victim --replicas=2
	expect_fail "scale with the webhook down"
	expect_err_has "failed calling webhook"

	k delete isvc victim
	expect_ok "delete with the webhook down"
	expect_not_stored victim

	restart_operator || fail "restart the operator"
	k create -f - <<<"$(isvc down '{"model":"m","gpuType":"A100"}')"
	expect_ok "create after the operator is back"
	if [ "$RECONCILER" = 1 ]; then
		wait_for "Deployment keeper scaled back to 1 after the restart" 20 jq_is deploy keeper .spec.replicas 1
		wait_for "Deployment and Service of 'down'" 20 converged down
	fi
}

# ---------------------------------------------------------------------------
# Runner
# ---------------------------------------------------------------------------

PASSED=0 FAILED=0 SKIPPED=0 FINISHED=0 SETUP_DONE=0 CLUSTER_WAS_RUNNING=0 CLUSTER_STARTED=0
E2E_OP_STATE="$WORK/operator.env" E2E_OP_LOG="$WORK/operator.log" E2E_CERTS="$WORK/certs"
RUN_START=$SECONDS

cleanup() {
	set +e
	ha_stop_all # replicas of an HA test that was interrupted
	if [ -f "$E2E_OP_STATE" ]; then
		say "stopping the e2e operator"
		io_stop "$E2E_OP_STATE"
	fi
	if [ "$CLUSTER_STARTED" = 1 ] && [ "$CLUSTER_WAS_RUNNING" = 0 ] && [ "$E2E_KEEP_CLUSTER" != 1 ]; then
		say "stopping the control plane this run started (E2E_KEEP_CLUSTER=1 keeps it)"
		"$CLUSTER_SCRIPTS/down.sh" 8>&- | sed 's/^/  /'
	elif [ "$CLUSTER_STARTED" = 1 ] && [ -n "${KUBECTL:-}" ]; then
		say "leaving the control plane running ($CLUSTER_DIR/kubeconfig); removing the webhook configurations"
		io_unregister_webhooks
	fi
}

on_exit() {
	local rc=$?
	[ "$FINISHED" = 1 ] && return
	cleanup
	if [ "$SETUP_DONE" = 1 ]; then echo "FAIL run aborted (exit $rc)"; else echo "FAIL setup (exit $rc; see above)"; fi
	echo "$PASSED passed, $((FAILED + 1)) failed"
	exit 1
}
trap on_exit EXIT
trap 'echo "interrupted"; exit 130' INT TERM

die() {
	echo "[e2e] ERROR: $*" >&2
	exit 1
}

setup() {
	mkdir -p "$WORK" "$CLUSTER_DIR" || die "cannot create $WORK"
	CLUSTER_DIR="$(cd "$CLUSTER_DIR" && pwd)"
	if [ -n "${E2E_SERVE_ARGS:-}" ]; then
		read -r -a SERVE_ARGS <<<"$E2E_SERVE_ARGS"
	else
		SERVE_ARGS=(--kubeconfig "$CLUSTER_DIR/kubeconfig")
	fi
	case " ${SERVE_ARGS[*]} " in *" --webhook-only "*) RECONCILER=0 ;; esac
	[ -x "$IO_BIN" ] || die "IO_BIN=$IO_BIN is not an executable (run make)"
	IO_BIN="$(cd "$(dirname "$IO_BIN")" && pwd)/$(basename "$IO_BIN")"
	export IO_BIN
	if ! command -v jq >/dev/null; then
		if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
			say "installing jq with apt-get"
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q jq >/dev/null ||
				{ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q jq >/dev/null; } ||
				die "apt-get install jq failed"
		else
			die "jq not found: apt-get install jq"
		fi
	fi

	# One e2e run per control plane at a time (they share the webhook
	# configuration names). fd 8 is closed for everything started below.
	exec 8>"$CLUSTER_DIR/.e2e.lock"
	if ! flock -n 8; then
		say "another e2e run holds $CLUSTER_DIR/.e2e.lock; waiting (up to 15 min)"
		flock -w 900 8 || die "timed out waiting for $CLUSTER_DIR/.e2e.lock"
	fi

	say "control plane: tests/cluster/up.sh (CLUSTER_DIR=$CLUSTER_DIR)"
	"$CLUSTER_SCRIPTS/up.sh" 8>&- 2>&1 | tee "$WORK/up.log" | sed 's/^/  /'
	local rc="${PIPESTATUS[0]}"
	CLUSTER_STARTED=1
	[ "$rc" = 0 ] || die "tests/cluster/up.sh failed (exit $rc)"
	grep -q "already running: " "$WORK/up.log" && CLUSTER_WAS_RUNNING=1
	export KUBECONFIG="$CLUSTER_DIR/kubeconfig"

	# shellcheck source=../cluster/env.sh
	. "$CLUSTER_SCRIPTS/env.sh"
	[ -n "$KUBECTL" ] || die "no kubectl (tests/cluster/build.sh builds one)"
	say "kubectl: $KUBECTL ($("$KUBECTL" version --client 2>/dev/null | head -n 1))"

	io_certs "$E2E_CERTS" || die "certificates"
	io_stop "$E2E_OP_STATE" || die "a previous e2e operator could not be stopped"
	ha_stop_all || die "replicas left by an earlier HA test could not be stopped"
	clean_stale
	: >"$E2E_OP_LOG"
	io_start "$E2E_OP_STATE" "$IO_BIN" "$E2E_CERTS" "$E2E_OP_LOG" "${SERVE_ARGS[@]}" || die "starting the operator"
	say "operator: pid $OP_PID, https://127.0.0.1:$OP_PORT, serve ${SERVE_ARGS[*]} (log $E2E_OP_LOG)"
	io_install_crd || die "installing the CRD"
	io_register_webhooks "$OP_PORT" "$E2E_CERTS/ca.crt" || die "registering the webhooks"
	if [ "$RECONCILER" = 1 ]; then
		io_wait_ready "$E2E_OP_STATE" || die "the operator's reconciler did not become ready"
		say "CRD installed, webhooks registered and active, reconciler ready"
	else
		say "CRD installed, webhooks registered and active (webhook only: reconciler tests skipped)"
	fi
}

# delete_ns_objects NS: remove the InferenceServices, Deployments and Services
# of a test namespace (one DELETE collection request each). Namespaces never
# finish deleting here (no controller-manager), and nothing is garbage
# collected, so a run cleans up after itself.
delete_ns_objects() {
	local r
	for r in "/apis/ai.example.com/v1/namespaces/$1/inferenceservices" \
		"/apis/apps/v1/namespaces/$1/deployments" "/api/v1/namespaces/$1/services" \
		"/api/v1/namespaces/$1/pods"; do
		"$KUBECTL" delete --raw "$r" >/dev/null 2>&1
	done
}

# clean_stale: objects left in e2e-* namespaces by an interrupted earlier run
# on a reused control plane (the reconciler would otherwise keep them in its
# caches and count them).
clean_stale() {
	local ns
	for ns in $("$KUBECTL" get isvc,deploy,svc,pod -A --ignore-not-found \
		-o jsonpath='{range .items[*]}{.metadata.namespace}{"\n"}{end}' 2>/dev/null | sort -u | grep '^e2e-'); do
		say "removing objects left in namespace $ns by an earlier run"
		"$KUBECTL" delete namespace "$ns" --wait=false >/dev/null 2>&1
		delete_ns_objects "$ns"
	done
}

# ensure_operator: before each test, the operator runs with the default
# flags and the webhooks point at it (a failed test may have left it
# stopped or with other flags).
ensure_operator() {
	if io_running "$E2E_OP_STATE" && [ "$OP_ARGS" = "${SERVE_ARGS[*]}" ]; then
		# A failed test may have left the webhooks unregistered.
		if [ "$("$KUBECTL" get validatingwebhookconfiguration,mutatingwebhookconfiguration "$IO_WEBHOOK_CONFIG" \
			-o jsonpath='{range .items[*]}{.webhooks[0].clientConfig.url}{"\n"}{end}' 2>/dev/null |
			grep -c "^https://127.0.0.1:$OP_PORT/")" != 2 ]; then
			say "webhook configurations missing or stale: registering them again"
			io_register_webhooks "$OP_PORT" "$E2E_CERTS/ca.crt" || return 1
		fi
		[ "$RECONCILER" = 1 ] || return 0
		io_wait_ready "$E2E_OP_STATE"
		return
	fi
	say "operator not running with the default flags: restarting it"
	io_stop "$E2E_OP_STATE" && start_operator
}

run_test() {
	local name="$1" idx="$2" rc t0 t1 dur
	NS="e2e-$RUN_ID-$idx"
	TDIR="$WORK/tests/$name"
	rm -rf "$TDIR"
	if [ "$RECONCILER" = 0 ] && [[ " ${RECONCILER_TESTS[*]} " == *" $name "* ]]; then
		SKIPPED=$((SKIPPED + 1))
		echo "SKIP $name (needs the reconciler; E2E_SERVE_ARGS has --webhook-only)"
		return
	fi
	mkdir -p "$TDIR"
	t0="$(date +%s%N)"
	{
		if ! ensure_operator; then
			echo "could not (re)start the operator"
			false
		elif ! "$KUBECTL" create namespace "$NS" >/dev/null; then
			echo "could not create namespace $NS"
			false
		else
			("test_$name")
		fi
	} >"$TDIR/log" 2>&1
	rc=$?
	t1="$(date +%s%N)"
	dur="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1fs", (b - a) / 1e9 }')"
	if [ "$rc" = 0 ]; then
		PASSED=$((PASSED + 1))
		echo "PASS $name ($dur)"
		[ ! -s "$TDIR/note" ] || sed 's/^/     /' "$TDIR/note"
	else
		FAILED=$((FAILED + 1))
		echo "FAIL $name ($dur, namespace $NS; log $TDIR/log)"
		sed 's/^/    /' "$TDIR/log"
	fi
	# Namespaces never finish deleting here (no controller-manager); the
	# objects in them are removed now. The namespace goes first: nothing can
	# be created in it afterwards, so a reconcile in flight cannot leave an
	# orphan Deployment behind.
	"$KUBECTL" delete namespace "$NS" --wait=false >/dev/null 2>&1
	delete_ns_objects "$NS"
}

setup
SETUP_DONE=1
SETUP_SECONDS=$((SECONDS - RUN_START))
RUN_ID="$(date +%s)"
idx=0
TESTS_START=$SECONDS
for t in "${TESTS[@]}"; do
	idx=$((idx + 1))
	if [ -n "$E2E_ONLY" ] && ! [[ "$t" =~ $E2E_ONLY ]]; then
		continue
	fi
	run_test "$t" "$(printf '%02d' "$idx")"
done
TESTS_SECONDS=$((SECONDS - TESTS_START))
FINISHED=1
cleanup
say "setup ${SETUP_SECONDS}s, tests ${TESTS_SECONDS}s, total $((SECONDS - RUN_START))s"
[ "$SKIPPED" = 0 ] || echo "$SKIPPED skipped"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
