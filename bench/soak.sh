#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Soak (a bench, not CI): `make soak`.
#
# One operator (webhook + reconciler, as shipped) on a private control plane
# (CLUSTER_DIR, default build/cluster-soak) for SOAK_MINUTES (30) under:
#   - steady webhook load: bench/webhook's load generator (LOAD_BIN) sending
#     SOAK_LOAD_BATCH (1000) /validate reviews over 4 keep-alive connections, then
#     pausing SOAK_LOAD_PAUSE (1) s, in a loop;
#   - churn of SOAK_OBJECTS (1000) InferenceServices in namespace soak:
#     each round deletes a slice of SOAK_SLICE of them (and their Deployments
#     and Services, as the garbage collector this control plane lacks would),
#     creates them again, and scales another slice (spec changes);
#   - kube-apiserver SIGKILLed and restarted (2 s down) every
#     SOAK_RESTART_EVERY s (180).
# Prints the operator's RSS every minute.  At the end the churn stops, every
# object is made to exist, and the run fails if
#   - any InferenceService is not converged SOAK_CONVERGE_TIMEOUT (300) s
#     later (status for its generation, exactly one Deployment and one
#     Service owned by it, replicas right, nothing else), or
#   - RSS grows without bound: the least-squares slope of the samples in the
#     second half of the run is above SOAK_RSS_SLOPE_KB (64) KB/min AND the
#     second half's peak is above the first half's peak by more than 5 %
#     (a working set that has settled passes, whatever its noise).
# Writes the curve to build/soak/rss.tsv (minute, RSS kB, InferenceServices).
set -u -o pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/.." && pwd)"
CLUSTER_SCRIPTS="$REPO_ROOT/tests/cluster"
export CLUSTER_DIR="${CLUSTER_DIR:-$REPO_ROOT/build/cluster-soak}"
IO_BIN="${IO_BIN:-$REPO_ROOT/build/inference-operator}"
LOAD_BIN="${LOAD_BIN:-$REPO_ROOT/build/bench/load}"
WORK="$REPO_ROOT/build/soak"
MINUTES="${SOAK_MINUTES:-30}"
OBJECTS="${SOAK_OBJECTS:-1000}"
SLICE="${SOAK_SLICE:-100}"
RESTART_EVERY="${SOAK_RESTART_EVERY:-180}"
LOAD_BATCH="${SOAK_LOAD_BATCH:-1000}"
LOAD_PAUSE="${SOAK_LOAD_PAUSE:-1}"
CONVERGE_TIMEOUT="${SOAK_CONVERGE_TIMEOUT:-300}"
SLOPE_KB="${SOAK_RSS_SLOPE_KB:-64}"
NS=soak

# shellcheck disable=SC2034 # read by operator.sh
IO_LOG_TAG="soak"
# shellcheck source=../tests/cluster/operator.sh
. "$CLUSTER_SCRIPTS/operator.sh"

say() { echo "[soak $(date +%H:%M:%S)] $*"; }
die() {
	echo "[soak] ERROR: $*" >&2
	exit 1
}

OP_STATE="$WORK/operator.env" OP_LOGF="$WORK/operator.log" CERTS="$WORK/certs"
CLUSTER_WAS_RUNNING=0 CLUSTER_STARTED=0 BG_PIDS=()

cleanup() {
	set +e
	local p
	: >"$WORK/stop"
	for p in "${BG_PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null
	done
	for p in "${BG_PIDS[@]}"; do
		wait "$p" 2>/dev/null
	done
	io_stop "$OP_STATE"
	if [ "$CLUSTER_STARTED" = 1 ] && [ "$CLUSTER_WAS_RUNNING" = 0 ]; then
		say "stopping the control plane this run started"
		"$CLUSTER_SCRIPTS/down.sh" | sed 's/^/  /'
	elif [ "$CLUSTER_STARTED" = 1 ]; then
		"$KUBECTL" delete namespace "$NS" --wait=false >/dev/null 2>&1
		io_unregister_webhooks
	fi
}
trap cleanup EXIT
trap 'echo interrupted; exit 130' INT TERM

[ -x "$IO_BIN" ] || die "IO_BIN=$IO_BIN is not an executable (run make)"
[ -x "$LOAD_BIN" ] || die "LOAD_BIN=$LOAD_BIN is not an executable (make -C bench/webhook)"
command -v jq >/dev/null || die "jq not found"
[[ "$MINUTES" =~ ^[0-9]+$ ]] && [ "$MINUTES" -ge 2 ] || die "SOAK_MINUTES must be a whole number >= 2"
rm -rf "$WORK" && mkdir -p "$WORK" || die "cannot create $WORK"

say "control plane: tests/cluster/up.sh (CLUSTER_DIR=$CLUSTER_DIR)"
"$CLUSTER_SCRIPTS/up.sh" 2>&1 | tee "$WORK/up.log" | sed 's/^/  /'
[ "${PIPESTATUS[0]}" = 0 ] || die "up.sh failed"
CLUSTER_STARTED=1
grep -q "already running: " "$WORK/up.log" && CLUSTER_WAS_RUNNING=1
export KUBECONFIG="$CLUSTER_DIR/kubeconfig"
# shellcheck source=../tests/cluster/env.sh
. "$CLUSTER_SCRIPTS/env.sh"

io_certs "$CERTS" || die "certificates"
io_start "$OP_STATE" "$IO_BIN" "$CERTS" "$OP_LOGF" --kubeconfig "$KUBECONFIG" || die "operator"
PORT="$OP_PORT" PID="$OP_PID"
io_install_crd || die "CRD"
io_register_webhooks "$PORT" "$CERTS/ca.crt" || die "webhooks"
io_wait_ready "$OP_STATE" || die "operator not ready"
"$KUBECTL" create namespace "$NS" >/dev/null 2>&1
say "operator pid $PID port $PORT; $OBJECTS objects, slices of $SLICE, API server restart every $RESTART_EVERY s, $MINUTES min"

name() { printf 'soak-%04d' "$1"; }
# list FROM TO: a v1 List of InferenceServices FROM..TO (wrapping at OBJECTS).
list() {
	local i j sep=""
	printf '{"apiVersion":"v1","kind":"List","items":['
	for ((i = $1; i <= $2; i++)); do
		j=$((i % OBJECTS))
		printf '%s{"apiVersion":"ai.example.com/v1","kind":"InferenceService","metadata":{"name":"%s"},"spec":{"model":"org/m-%d","gpuType":"A100","replicas":%d}}' \
			"$sep" "$(name "$j")" "$j" $((j % 3))
		sep=","
	done
	printf ']}\n'
}
names() {
	local i
	for ((i = $1; i <= $2; i++)); do name $((i % OBJECTS)); echo; done
}
stopped() { [ -e "$WORK/stop" ]; }

list 0 $((OBJECTS - 1)) | "$KUBECTL" -n "$NS" create -f - >/dev/null 2>"$WORK/create.err" ||
	die "initial create: $(tail -n 3 "$WORK/create.err")"

# Churn: delete a slice (+ what GC would delete), recreate it, scale the next.
churn() {
	local round=0 a b c
	while ! stopped; do
		a=$(((round * SLICE) % OBJECTS))
		b=$((a + SLICE - 1))
		mapfile -t del < <(names "$a" "$b")
		"$KUBECTL" -n "$NS" delete isvc "${del[@]}" --wait=false >/dev/null 2>&1
		"$KUBECTL" -n "$NS" delete deploy,svc "${del[@]}" --ignore-not-found --wait=false >/dev/null 2>&1
		list "$a" "$b" | "$KUBECTL" -n "$NS" create -f - >/dev/null 2>&1
		c=$((b + 1))
		mapfile -t sc < <(names "$c" $((c + SLICE - 1)))
		"$KUBECTL" -n "$NS" scale isvc "${sc[@]}" --replicas=$((round % 4)) >/dev/null 2>&1
		round=$((round + 1))
		echo "$round" >"$WORK/churn.rounds"
		sleep 2
	done
}
load() {
	local body="$WORK/review.json" n=0
	cat >"$body" <<'EOF'
{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"705ab4f5-6393-11e8-b7cc-42010a800002","kind":{"group":"ai.example.com","version":"v1","kind":"InferenceService"},"resource":{"group":"ai.example.com","version":"v1","resource":"inferenceservices"},"name":"llama","namespace":"default","operation":"CREATE","userInfo":{"username":"admin"},"object":{"apiVersion":"ai.example.com/v1","kind":"InferenceService","metadata":{"name":"llama","namespace":"default"},"spec":{"model":"meta-llama/Llama-3.1-8B-Instruct","gpuType":"h100"}}}}
EOF
	while ! stopped; do
		"$LOAD_BIN" --port "$PORT" --path /validate --ca "$CERTS/ca.crt" --body "$body" \
			--conns 4 --threads 1 --requests "$LOAD_BATCH" --warmup 0 --timeout 30 \
			>>"$WORK/load.jsonl" 2>>"$WORK/load.err" || echo "load round failed" >>"$WORK/load.err"
		n=$((n + LOAD_BATCH))
		echo "$n" >"$WORK/load.count"
		sleep "$LOAD_PAUSE"
	done
}
restarts() {
	local n=0
	while ! stopped; do
		local t=$((SECONDS + RESTART_EVERY))
		while ! stopped && [ "$SECONDS" -lt "$t" ]; do sleep 1; done
		stopped && break
		"$CLUSTER_SCRIPTS/restart-apiserver.sh" --down-for 2 >>"$WORK/restarts.log" 2>&1 &&
			n=$((n + 1))
		echo "$n" >"$WORK/restarts.count"
	done
}
churn &
BG_PIDS+=($!)
load &
BG_PIDS+=($!)
restarts &
BG_PIDS+=($!)

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$PID/status" 2>/dev/null; }
printf 'minute\trss_kb\tisvcs\n' >"$WORK/rss.tsv"
START=$SECONDS
for ((minute = 1; minute <= MINUTES; minute++)); do
	while [ $((SECONDS - START)) -lt $((minute * 60)) ]; do sleep 1; done
	io_pid_is_ours "$PID" "$OP_BIN" "$OP_CERT_DIR" || die "the operator (pid $PID) died; see $OP_LOGF"
	rss="$(rss_kb)"
	# One page: a chunked list cut short by a restart would undercount.
	n="$("$KUBECTL" -n "$NS" get isvc -o name --chunk-size=0 2>/dev/null | wc -l)" || n="?"
	printf '%d\t%s\t%s\n' "$minute" "$rss" "$n" >>"$WORK/rss.tsv"
	say "minute $minute: RSS $rss kB; isvcs $n; churn rounds $(cat "$WORK/churn.rounds" 2>/dev/null || echo 0);" \
		"reviews $(cat "$WORK/load.count" 2>/dev/null || echo 0); API server restarts $(cat "$WORK/restarts.count" 2>/dev/null || echo 0)"
done

say "stopping the churn, the load and the restarts"
: >"$WORK/stop"
for p in "${BG_PIDS[@]}"; do wait "$p" 2>/dev/null; done
BG_PIDS=()
# Objects a round was deleting when it stopped: create what is missing.
list 0 $((OBJECTS - 1)) | "$KUBECTL" -n "$NS" create -f - >/dev/null 2>&1

# Converged: the same rules as tests/e2e/faults.sh check_all.
check() {
	"$KUBECTL" -n "$NS" get isvc,deploy,svc -o json | jq -r --arg ns "$NS" '
		[.items[] | select(.kind == "InferenceService")] as $i
		| ([.items[] | select(.kind == "Deployment")] | map({key: .metadata.name, value: .}) | from_entries) as $d
		| ([.items[] | select(.kind == "Service")] | map({key: .metadata.name, value: .}) | from_entries) as $s
		| ($i | map({key: .metadata.name, value: .}) | from_entries) as $by
		| [ ($i[] | . as $x | select(
				.status.observedGeneration != .metadata.generation
				or .status.endpoint != "http://\(.metadata.name).\($ns).svc:8000"
				or $d[.metadata.name] == null or $s[.metadata.name] == null
				or ($d[.metadata.name].metadata.ownerReferences | length) != 1
				or $d[.metadata.name].metadata.ownerReferences[0].uid != .metadata.uid
				or ($s[.metadata.name].metadata.ownerReferences | length) != 1
				or $s[.metadata.name].metadata.ownerReferences[0].uid != .metadata.uid
				or $d[.metadata.name].spec.replicas != .spec.replicas) | .metadata.name),
			($d, $s | keys[] | select($by[.] == null) | "orphan \(.)") ] as $bad
		| "isvcs=\($i | length) deployments=\($d | length) services=\($s | length) bad=\($bad | length) \($bad[:5] | join(" "))"'
}
deadline=$((SECONDS + CONVERGE_TIMEOUT))
t0=$SECONDS
while :; do
	summary="$(check 2>&1)"
	[[ "$summary" == "isvcs=$OBJECTS deployments=$OBJECTS services=$OBJECTS bad=0 "* ]] && break
	if [ "$SECONDS" -ge "$deadline" ]; then
		say "NOT CONVERGED after $CONVERGE_TIMEOUT s: $summary"
		CONVERGED=0
		break
	fi
	sleep 2
done
CONVERGED="${CONVERGED:-1}"
[ "$CONVERGED" = 1 ] && say "converged $((SECONDS - t0)) s after the churn stopped: $summary"

# The RSS rule (see the header).
verdict="$(awk -F'\t' -v slope_max="$SLOPE_KB" 'NR > 1 { m[++n] = $1; r[n] = $2 }
	END {
		h = int(n / 2); p1 = 0; p2 = 0; sx = sy = sxx = sxy = 0; k = 0
		for (i = 1; i <= n; i++) {
			if (i <= h) { if (r[i] > p1) p1 = r[i] }
			else { if (r[i] > p2) p2 = r[i]; k++; sx += m[i]; sy += r[i]; sxx += m[i] * m[i]; sxy += m[i] * r[i] }
		}
		slope = (k > 1 && k * sxx - sx * sx != 0) ? (k * sxy - sx * sy) / (k * sxx - sx * sx) : 0
		grow = slope > slope_max && p2 > p1 * 1.05
		printf "%s slope %.1f kB/min over the second half (limit %d), peaks %d -> %d kB\n", grow ? "GROWING" : "bounded", slope, slope_max, p1, p2
	}' "$WORK/rss.tsv")"
say "RSS: $verdict"
echo "--- RSS curve (minute, kB, InferenceServices) ---"
cat "$WORK/rss.tsv"
echo "--- load: $(cat "$WORK/load.count" 2>/dev/null || echo 0) reviews; $(cat "$WORK/load.err" 2>/dev/null | grep -c 'failed') failed rounds;" \
	"churn rounds $(cat "$WORK/churn.rounds" 2>/dev/null || echo 0); API server restarts $(cat "$WORK/restarts.count" 2>/dev/null || echo 0)"
rc=0
[ "$CONVERGED" = 1 ] || { echo "soak: FAIL: objects left unconverged"; rc=1; }
[[ "$verdict" == bounded* ]] || { echo "soak: FAIL: RSS grows without bound"; rc=1; }
[ "$rc" = 0 ] && echo "soak: PASS"
exit "$rc"
