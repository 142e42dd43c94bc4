#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# layout/profile.sh — profile what the operator runs and reads, and write
# layout/hot.ld, the link order of the static binary (`make layout`).
#
#   1. Starts the local control plane (tests/cluster/up.sh, plain mode) in
#      $LAYOUT_WORK/cluster, installs the CRD.
#   2. Traced pass: the operator under valgrind lackey (--trace-mem=yes),
#      every instruction fetch and data read piped through layout/touch.c,
#      in three runs: webhook + reconciler with leader election, under the
#      workload below; reconciler alone (the benchmark's mode); the
#      webhook alone with self-signed certificates (the chart's default:
#      CA and key generation, Secret, caBundle injection).
#   3. layout/order.py turns the touched byte ranges into layout/hot.ld;
#      make relinks.
#   4. Native passes (LAYOUT_PASSES, default 4): the same runs without
#      valgrind, under `perf record -e page-faults`; any fault in the cold
#      part of the binary (what valgrind's CPU did not show: glibc's and
#      nettle's CPU-specific paths) moves its section to the hot part;
#      relink; stop when a pass adds nothing.
#
# The workload: InferenceServices created through the webhooks (defaults,
# normalisation, a denial), a scale, a spec edit, a Deployment made ready,
# a Deployment and a Service deleted behind the operator's back, deletions,
# /metrics, /healthz, /readyz.  Error paths are left out on purpose: they
# are rare, and cold is where they belong.
#
# Needs: the static build (make, the default), valgrind, perf (Debian's
# linux-perf), jq, Go for the control plane.  ~15 minutes.
# LAYOUT_REUSE_TRACES=1 keeps traces newer than the binary (step 2).  Leaves the
# control plane running only if it was already running.
set -euo pipefail

LAYOUT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$LAYOUT_DIR/.." && pwd)"
BIN="${IO_BIN:-$REPO/build/inference-operator}"
WORK="${LAYOUT_WORK:-$REPO/build/layout}"
PASSES="${LAYOUT_PASSES:-4}"
HOT_LD="$LAYOUT_DIR/hot.ld"
# Bounds: a traced operator runs ~50x slower than a native one.
TRACED_WAIT_S=900
NATIVE_WAIT_S=90
OBJECTS=12

say() { echo "[layout $(date +%H:%M:%S)] $*" >&2; }
die() { echo "[layout] ERROR: $*" >&2; exit 1; }

for t in valgrind perf jq python3 cc readelf; do
	command -v "$t" >/dev/null || die "$t is missing (apt-get install valgrind linux-perf jq python3 binutils)"
done
[ -x "$BIN" ] && [ -s "$BIN.map" ] || die "$BIN or its link map $BIN.map is missing: run make (STATIC=1)"

mkdir -p "$WORK"
export CLUSTER_DIR="$WORK/cluster"
started_cluster=0
if ! { [ -f "$CLUSTER_DIR/state.env" ] && "$REPO/tests/cluster/up.sh" >/dev/null 2>&1; }; then
	"$REPO/tests/cluster/up.sh" >&2
	started_cluster=1
fi
# shellcheck source=../tests/cluster/env.sh
. "$REPO/tests/cluster/env.sh"
IO_LOG_TAG="layout"
# shellcheck source=../tests/cluster/operator.sh
. "$REPO/tests/cluster/operator.sh"
export KUBECONFIG="$CLUSTER_DIR/kubeconfig"
OP_PID_RUNNING=""
cleanup() {
	[ -z "$OP_PID_RUNNING" ] || kill -KILL "$OP_PID_RUNNING" 2>/dev/null || true
	"$KUBECTL" delete validatingwebhookconfiguration,mutatingwebhookconfiguration \
		"$IO_WEBHOOK_CONFIG" --ignore-not-found >/dev/null 2>&1 || true
	[ "$started_cluster" = 0 ] || "$REPO/tests/cluster/down.sh" >/dev/null 2>&1 || true
}
trap cleanup EXIT

IO_BIN="$BIN" io_certs "$WORK/certs"
io_install_crd
cc -O2 -Wall -Wextra -Werror -o "$WORK/touch" "$LAYOUT_DIR/touch.c"
# Where valgrind maps a PIE (amd64: 0x108000) and how far the image reaches.
TRACE_BASE=0x108000
IMAGE_SIZE=$(readelf -lW "$BIN" | python3 -c 'import sys
print(hex(max(int(w[2], 16) + int(w[5], 16) for w in (l.split() for l in sys.stdin) if w[:1] == ["LOAD"])))')

# --- the workload ------------------------------------------------------------

k() { "$KUBECTL" "$@"; }
# wait_until SECONDS CMD...: poll CMD every second, bounded.
wait_until() {
	local limit=$1 deadline
	shift
	deadline=$((SECONDS + limit))
	until "$@" >/dev/null 2>&1; do
		[ "$SECONDS" -lt "$deadline" ] || { say "gave up waiting for: $*"; return 1; }
		sleep 1
	done
}
all_converged() {
	local ns=$1 want=$2 n
	n=$(k -n "$ns" get isvc -o json | jq '[.items[] | select(.status.observedGeneration == .metadata.generation)] | length')
	[ "$n" -ge "$want" ]
}
isvc_yaml() { # NAME SPEC_JSON
	jq -cn --arg n "$1" --argjson s "$2" '{apiVersion: "ai.example.com/v1", kind: "InferenceService", metadata: {name: $n}, spec: $s}'
}
workload() { # NS PORT WAIT_S WEBHOOK(0/1)
	local ns=$1 port=$2 limit=$3 webhook=$4 i now
	k create namespace "$ns" >/dev/null
	for ((i = 0; i < OBJECTS; i++)); do
		case $((i % 4)) in
		0) isvc_yaml "w-$i" '{"model":"org/m","gpuType":"H100","replicas":1,"maxBatchSize":16}' ;;
		1) isvc_yaml "w-$i" '{"model":"org/m","gpuType":"a100"}' ;;
		2) isvc_yaml "w-$i" '{"model":"org/m","gpuType":" L40S ","replicas":2}' ;;
		3) isvc_yaml "w-$i" '{"model":"org/m","gpuType":"A100","replicas":0}' ;;
		esac | k -n "$ns" create -f - >/dev/null 2>&1 || true
	done
	if [ "$webhook" = 1 ]; then
		k -n "$ns" create -f "$REPO/examples/invalid/too-big-on-t4.yaml" >/dev/null 2>&1 || true
	fi
	wait_until "$limit" all_converged "$ns" "$OBJECTS" || true
	k -n "$ns" scale isvc w-0 --replicas=3 >/dev/null || true
	k -n "$ns" patch isvc w-3 --type=merge -p '{"spec":{"maxBatchSize":64}}' >/dev/null || true
	now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
	k -n "$ns" patch deploy w-4 --subresource=status --type=merge -p "{\"status\":{\"observedGeneration\":1,\"replicas\":1,\"readyReplicas\":1,\"updatedReplicas\":1,\"availableReplicas\":1,\"conditions\":[{\"type\":\"Available\",\"status\":\"True\",\"reason\":\"MinimumReplicasAvailable\",\"message\":\"Deployment has minimum availability.\",\"lastUpdateTime\":\"$now\",\"lastTransitionTime\":\"$now\"}]}}" >/dev/null || true
	k -n "$ns" delete deploy w-5 >/dev/null || true
	k -n "$ns" delete svc w-6 >/dev/null || true
	k -n "$ns" delete isvc w-7 w-8 >/dev/null || true
	for path in metrics healthz readyz; do
		curl -sk "https://127.0.0.1:$port/$path" >/dev/null || true
	done
	wait_until "$limit" k -n "$ns" get deploy w-5 || true
	wait_until "$limit" all_converged "$ns" $((OBJECTS - 2)) || true
}

# --- one run of the operator ---------------------------------------------------

# run_operator MODE NAME WRAPPER... -- SERVE_ARGS...: start, work, stop.
# MODE: full (webhook + reconciler), reconciler, selfsigned.
run_operator() {
	local mode=$1 name=$2 wrap=() args=() log="$WORK/$2.log" limit port pid ns
	shift 2
	while [ "$1" != "--" ]; do wrap+=("$1"); shift; done
	shift
	args=("$@")
	limit=$NATIVE_WAIT_S
	LEASE_ARGS=()
	if [ "${wrap[0]}" = valgrind ]; then
		# ~50x slower: a TLS handshake takes seconds, a Lease renewal too.
		limit=$TRACED_WAIT_S
		args+=(--kube-connect-timeout 120 --kube-request-timeout 300)
		LEASE_ARGS=(--leader-election-lease-duration 900 --leader-election-renew-deadline 600
			--leader-election-retry-period 10)
	fi
	ns="layout-$name-$RANDOM"
	: >"$log"
	case $mode in
	full) args+=(--cert-dir "$WORK/certs" --kubeconfig "$KUBECONFIG" --leader-elect
		--leader-election-namespace default "${LEASE_ARGS[@]}") ;;
	reconciler) args+=(--cert-dir "$WORK/certs" --kubeconfig "$KUBECONFIG" --reconciler-only) ;;
	selfsigned)
		rm -rf "$WORK/ss-certs"
		k delete secret -n default layout-webhook-tls --ignore-not-found >/dev/null
		# The configurations the chart installs, for the caBundle injection.
		io_webhook_yaml 1 "$WORK/certs/ca.crt" | k apply -f - >/dev/null
		args+=(--webhook-only --kubeconfig "$KUBECONFIG" --cert-mode selfSigned
			--cert-dir "$WORK/ss-certs" --operator-namespace default
			--cert-secret layout-webhook-tls --webhook-service layout-webhook) ;;
	esac
	"${wrap[@]}" "$BIN" serve --listen 127.0.0.1:0 "${args[@]}" >"$log" 2>&1 &
	pid=$!
	OP_PID_RUNNING=$pid
	local deadline=$((SECONDS + limit))
	until port=$(grep -m1 '"msg":"serving"' "$log" | sed -n 's/.*"port":\([0-9][0-9]*\).*/\1/p') && [ -n "$port" ]; do
		kill -0 "$pid" 2>/dev/null || die "$name: the operator exited; see $log"
		[ "$SECONDS" -lt "$deadline" ] || die "$name: not serving after $limit s; see $log"
		sleep 0.5
	done
	wait_until "$limit" curl -sfk "https://127.0.0.1:$port/readyz" || die "$name: not ready; see $log"
	[ -z "${ON_READY:-}" ] || "$ON_READY" "$pid"
	case $mode in
	full)
		IO_WEBHOOK_TIMEOUT=30 IO_ACTIVE_TIMEOUT=$limit io_register_webhooks "$port" "$WORK/certs/ca.crt" ||
			say "$name: the webhooks did not answer in time; the workload goes on"
		workload "$ns" "$port" "$limit" 1 ;;
	reconciler) workload "$ns" "$port" "$limit" 0 ;;
	selfsigned) wait_until "$limit" test -s "$WORK/ss-certs/tls.crt" || true ;;
	esac
	# Under perf the operator is perf's child: it gets the SIGTERM, perf
	# ends with it.
	kill -TERM "$(pgrep -P "$pid" -n || echo "$pid")"
	wait "$pid" || true
	OP_PID_RUNNING=""
	k delete validatingwebhookconfiguration,mutatingwebhookconfiguration \
		"$IO_WEBHOOK_CONFIG" --ignore-not-found >/dev/null 2>&1 || true
	say "$name: done"
}

relink() {
	make -C "$REPO" --no-print-directory >/dev/null 2>"$WORK/make.err" ||
		{ cat "$WORK/make.err" >&2; die "make failed"; }
}

# --- traced pass ---------------------------------------------------------------
touched=()
for mode in full reconciler selfsigned; do
	out="$WORK/touched-$mode.txt"
	touched+=(--touched "$out")
	if [ "${LAYOUT_REUSE_TRACES:-0}" = 1 ] && [ -s "$out" ] && [ "$out" -nt "$BIN" ]; then
		say "traced run: $mode: reusing $out (LAYOUT_REUSE_TRACES=1)"
		continue
	fi
	say "traced run: $mode (valgrind lackey; minutes)"
	# The trace goes to fd 9, through touch, into $out.
	exec 9> >("$WORK/touch" "$TRACE_BASE" "$IMAGE_SIZE" >"$out" 2>"$WORK/touch-$mode.err")
	run_operator "$mode" "traced-$mode" valgrind --tool=lackey --trace-mem=yes --log-fd=9 -- 
	exec 9>&-
	wait_until 120 test -s "$WORK/touch-$mode.err" || die "touch did not finish for $mode"
done
cp "$BIN.map" "$WORK/traced.map"
python3 "$LAYOUT_DIR/order.py" --map "$WORK/traced.map" "${touched[@]}" >"$WORK/hot.ld"
cp "$WORK/hot.ld" "$HOT_LD"
relink

# --- native passes -------------------------------------------------------------
# The load address of the operator under perf (perf's child).
record_base() {
	local op
	op=$(pgrep -P "$1" -n) || die "no operator under perf ($1)"
	grep -m1 " $BIN\$" "/proc/$op/maps" | cut -d- -f1 >"$WORK/base-$CUR"
}
for ((pass = 1; pass <= PASSES; pass++)); do
	faults=()
	cp "$BIN.map" "$WORK/native.map"
	for mode in full reconciler selfsigned; do
		CUR="$mode-$pass"
		say "native pass $pass: $mode (perf page-faults)"
		ON_READY=record_base run_operator "$mode" "native-$CUR" \
			perf record -q -e page-faults -c 1 -d -o "$WORK/pf-$CUR.data" -- 
		# perf's child is the operator: its mapping was read at /readyz.
		perf script -i "$WORK/pf-$CUR.data" -F addr 2>/dev/null >"$WORK/pf-$CUR.txt"
		faults+=(--faults "$WORK/pf-$CUR.txt" --fault-base "0x$(cat "$WORK/base-$CUR")")
	done
	before=$(grep -c '^    \*' "$HOT_LD")
	args=()
	for ((i = 0; i < ${#faults[@]}; i += 4)); do
		python3 "$LAYOUT_DIR/order.py" --map "$WORK/native.map" --keep "$HOT_LD" \
			"${faults[@]:i:4}" >"$WORK/hot-$pass.ld"
		cp "$WORK/hot-$pass.ld" "$HOT_LD"
	done
	after=$(grep -c '^    \*' "$HOT_LD")
	say "native pass $pass: $((after - before)) sections moved to the hot part"
	relink
	[ "$after" -gt "$before" ] || break
done
say "wrote $HOT_LD"
