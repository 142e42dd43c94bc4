#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Faults between the operator and the API server, against the real control
# plane (tests/cluster), run by `make e2e-faults` (part of `make test`).
#
# Two operator processes run from IO_BIN:
#   - the webhook (--webhook-only, talks to nobody): admission keeps working
#     whatever happens to the reconciler, so objects can be created during
#     every fault;
#   - the reconciler under test (--reconciler-only) whose kubeconfig points
#     at tests/faultproxy (FAULTPROXY), a loopback TCP proxy in front of
#     kube-apiserver that passes TLS through and that each test steers:
#     reset, delay, partition, blackhole (half-open), drop.
# It runs with --watch-timeout 20 (so a dead watch is noticed within
# 20 ± 5 + 5 s) and --kube-request-timeout 5.
#
# Each test injects a fault, makes changes during and after it, then checks
# the whole namespace (all the objects every test so far created, not just
# its own): every InferenceService has status.observedGeneration =
# generation and its endpoint, exactly one Deployment and one Service named
# after it, labelled for it, each with exactly one ownerReference (a
# controller reference to its uid), the Deployment's replicas, image and
# model right, and no other Deployment or Service exists.  Then "no hot
# loop": over a window of RATE_WINDOW s after convergence the operator's
# API requests (sum of rest_client_requests_total) must stay within
#     N * RATE_WINDOW / REQUEUE        (N = InferenceServices in its cache:
#                                       at most one request per object per
#                                       resync, though a converged resync
#                                       sends none)
#   + 4 * (ceil(RATE_WINDOW / 15) + 1) (four watches reopened at most every
#                                       15 s: the shortest jittered timeout)
# Output: "PASS name (time)" with the figures, or "FAIL name" with the
# test's log; closing line "N passed, N failed"; exit 0 only if none failed.
#
# Env: IO_BIN, FAULTPROXY (default build/faultproxy), CLUSTER_DIR,
# FAULTS_WORK_DIR (default build/e2e-faults), FAULTS_ONLY=REGEX,
# FAULTS_BURST (500: creates during the operator kill), FAULTS_PARTITION_S
# (60), E2E_KEEP_CLUSTER=1.  Serialised with tests/e2e/run.sh by the same
# lock ($CLUSTER_DIR/.e2e.lock): both register the same webhook names.
set -u -o pipefail

E2E_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$E2E_SRC/../.." && pwd)"
CLUSTER_SCRIPTS="$REPO_ROOT/tests/cluster"
export CLUSTER_DIR="${CLUSTER_DIR:-$REPO_ROOT/build/cluster}"
WORK="${FAULTS_WORK_DIR:-$REPO_ROOT/build/e2e-faults}"
IO_BIN="${IO_BIN:-$REPO_ROOT/build/inference-operator}"
FAULTPROXY="${FAULTPROXY:-$REPO_ROOT/build/faultproxy}"
E2E_KEEP_CLUSTER="${E2E_KEEP_CLUSTER:-0}"
ONLY="${FAULTS_ONLY:-}"
BURST="${FAULTS_BURST:-500}"
PARTITION_S="${FAULTS_PARTITION_S:-60}"

REQUEUE=30           # s, --requeue-after of the reconciler under test
WATCH_TIMEOUT=20     # s, --watch-timeout: dead watch noticed within 20+5+5 s
REQUEST_TIMEOUT=5    # s, --kube-request-timeout
RATE_WINDOW=10       # s over which the request rate is measured
CONVERGE_TIMEOUT=120 # s for everything to converge after a fault ends
MODEL_IMAGE="vllm/vllm-openai:v0.6.3"

# shellcheck disable=SC2034 # read by operator.sh
IO_LOG_TAG="faults"
# shellcheck source=../cluster/operator.sh
. "$CLUSTER_SCRIPTS/operator.sh"

TESTS=(
	baseline
	watch_reset
	request_timeout
	partition
	half_open
	apiserver_kill
	etcd_compaction_410
	status_second_writer
	operator_kill9_burst
)

say() { echo "[faults $(date +%H:%M:%S)] $*"; }
die() {
	echo "[faults] ERROR: $*" >&2
	exit 1
}
fail() {
	echo "ASSERTION FAILED: $*"
	exit 1
}
# note TEXT: a figure printed under the test's PASS line.
note() {
	echo "  note: $*"
	echo "$*" >>"$TDIR/note"
}
now_ns() { date +%s%N; }
since() { awk -v a="$1" -v b="$(now_ns)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }'; }

# kc ARGS...: kubectl in the namespace; output to the test log; fails the
# test on a non-zero exit.
kc() {
	echo "+ kubectl -n $NS $*"
	"$KUBECTL" -n "$NS" "$@" >"$TDIR/out" 2>&1 || {
		sed 's/^/  | /' "$TDIR/out"
		fail "kubectl $* failed"
	}
}

# wait_for DESC TIMEOUT CMD...: CMD every 0.5 s until it succeeds; fails the
# test after TIMEOUT s with CMD's last output.
wait_for() {
	local desc="$1" timeout="$2" t0 deadline
	shift 2
	echo "+ wait_for (up to ${timeout} s): $desc"
	t0="$(now_ns)"
	deadline=$((SECONDS + timeout))
	until "$@" >"$TDIR/wait.out" 2>&1; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			sed 's/^/  | /' "$TDIR/wait.out"
			fail "timed out after ${timeout} s waiting for: $desc"
		fi
		sleep 0.5
	done
	WAITED="$(since "$t0")"
	echo "  ok after $WAITED s"
}

# --- the proxy ----------------------------------------------------------------

# proxy CMD [ARG]: one control command; fails the test unless it answers ok.
proxy() {
	local reply
	exec 5<>"/dev/tcp/127.0.0.1/$PROXY_CONTROL_PORT" || fail "proxy control port $PROXY_CONTROL_PORT"
	printf '%s\n' "$*" >&5
	IFS= read -r -t 10 reply <&5
	exec 5>&-
	echo "+ proxy $* -> $reply"
	[[ "$reply" == ok* ]] || fail "proxy $*: $reply"
	PROXY_REPLY="$reply"
}

proxy_start() {
	rm -f "$WORK/proxy.env"
	setsid "$FAULTPROXY" --upstream "$APISERVER_PORT" --ready-file "$WORK/proxy.env" \
		</dev/null >>"$WORK/proxy.log" 2>&1 8>&- &
	PROXY_PID=$!
	echo "$PROXY_PID" >"$WORK/proxy.pid"
	local i
	for ((i = 0; i < 50; i++)); do
		[ -s "$WORK/proxy.env" ] && break
		sleep 0.1
	done
	[ -s "$WORK/proxy.env" ] || die "faultproxy did not start; see $WORK/proxy.log"
	# shellcheck disable=SC1091
	. "$WORK/proxy.env"
}

# proxy_stop: the proxy this or an interrupted earlier run started (by PID,
# only while it still runs FAULTPROXY).
proxy_stop() {
	local pid
	pid="$(cat "$WORK/proxy.pid" 2>/dev/null)" || return 0
	if [[ "$pid" =~ ^[0-9]+$ ]] && [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$(readlink -f "$FAULTPROXY")" ]; then
		kill -TERM "$pid" 2>/dev/null
		for ((i = 0; i < 50; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
	fi
	rm -f "$WORK/proxy.pid"
}

# --- the operators ------------------------------------------------------------

RC_STATE="$WORK/reconciler.env" RC_LOG="$WORK/reconciler.log" RC_CERTS="$WORK/rc-certs"
WH_STATE="$WORK/webhook.env" WH_LOG="$WORK/webhook.log" WH_CERTS="$WORK/certs"
RC_ARGS=()

rc_start() {
	io_start "$RC_STATE" "$IO_BIN" "$RC_CERTS" "$RC_LOG" "${RC_ARGS[@]}" || return 1
	io_wait_ready "$RC_STATE" 90
}

# m 'NAME{LABELS}': one sample of the reconciler's /metrics (0 if absent).
m() {
	local text
	text="$(io_metrics "$RC_STATE")" || fail "GET /metrics of the reconciler failed"
	awk -v s="$1" '$1 == s { v = $2 } END { print (v == "" ? 0 : v) }' <<<"$text"
}
# requests_total: the sum of rest_client_requests_total over verbs and codes.
requests_total() {
	local text
	text="$(io_metrics "$RC_STATE")" || fail "GET /metrics of the reconciler failed"
	awk '$1 ~ /^rest_client_requests_total\{/ { s += $2 } END { print s + 0 }' <<<"$text"
}
# requests_by_verb: "GET=n PATCH=n ..." summed over codes.
requests_by_verb() {
	io_metrics "$RC_STATE" | awk -F'"' '/^rest_client_requests_total\{/ { split($0, f, " "); n[$2] += f[2] }
		END { for (v in n) printf "%s=%d ", v, n[v] }'
}
watch_restarts() { m "inference_operator_watch_restarts_total{resource=\"$1\"}"; }
watch_relists() { m "inference_operator_watch_relists_total{resource=\"$1\"}"; }
WATCHES="inferenceservices deployments services pods"
NWATCHES=4

# metric_ge 'NAME{LABELS}' MIN: a wait condition.
metric_ge() {
	local v
	v="$(m "$1")"
	awk -v v="$v" -v n="$2" 'BEGIN { exit !(v + 0 >= n + 0) }' && return 0
	echo "$1 = $v, want >= $2"
	return 1
}

# --- objects ------------------------------------------------------------------

GPUS=(A100 H100 L40S)
# create_isvcs PREFIX FROM TO: InferenceServices PREFIX-FROM..PREFIX-TO in
# one kubectl create (a v1 List), replicas i % 4, gpuType by i % 3.
isvc_list() {
	local i sep=""
	printf '{"apiVersion":"v1","kind":"List","items":['
	for ((i = $2; i <= $3; i++)); do
		printf '%s{"apiVersion":"ai.example.com/v1","kind":"InferenceService","metadata":{"name":"%s-%03d"},"spec":{"model":"org/model-%d","gpuType":"%s","replicas":%d}}' \
			"$sep" "$1" "$i" "$i" "${GPUS[$((i % 3))]}" $((i % 4))
		sep=","
	done
	printf ']}\n'
}
create_isvcs() {
	isvc_list "$@" >"$TDIR/create.json"
	kc create -f "$TDIR/create.json"
}

# check_all: the namespace is converged and clean (see the header). Prints
# a summary; with problems, the first ten. Non-zero unless all is right.
check_all() {
	local json
	json="$("$KUBECTL" -n "$NS" get isvc,deploy,svc -o json 2>&1)" || { echo "list: $json"; return 1; }
	jq -r --arg image "$MODEL_IMAGE" --arg ns "$NS" '
		.items as $all
		| [$all[] | select(.kind == "InferenceService")] as $isvcs
		| [$all[] | select(.kind == "Deployment")] as $deps
		| [$all[] | select(.kind == "Service")] as $svcs
		| ($isvcs | map({key: .metadata.name, value: .}) | from_entries) as $by
		| def owned($o; $i): ($o.metadata.ownerReferences // []) as $r
			| ($r | length) == 1 and $r[0].uid == $i.metadata.uid and $r[0].controller == true
			  and $r[0].kind == "InferenceService" and $r[0].name == $i.metadata.name;
		  def one($kind; $list; $i): [$list[] | select(.metadata.labels["app.kubernetes.io/instance"] == $i.metadata.name)] as $l
			| if ($l | length) != 1 then "\($kind)s labelled for it: \($l | length)"
			  elif $l[0].metadata.name != $i.metadata.name then "\($kind) \($l[0].metadata.name) is labelled for it"
			  elif (owned($l[0]; $i) | not) then "\($kind) ownerReferences \($l[0].metadata.ownerReferences // [] | tostring)"
			  else empty end;
		[ ($isvcs[] | . as $i
			| [ (if .status.observedGeneration != .metadata.generation then
					"status.observedGeneration \(.status.observedGeneration) != generation \(.metadata.generation)" else empty end),
				(if .status.endpoint != "http://\(.metadata.name).\($ns).svc:8000" then "status.endpoint \(.status.endpoint)" else empty end),
				(if .status.phase == "Hijacked" then "status.phase Hijacked (a second writer'"'"'s) not reverted" else empty end),
				one("Deployment"; $deps; $i), one("Service"; $svcs; $i),
				([$deps[] | select(.metadata.name == $i.metadata.name)][0] as $d
					| if $d == null then empty
					  elif $d.spec.replicas != $i.spec.replicas then "Deployment replicas \($d.spec.replicas) != \($i.spec.replicas)"
					  elif $d.spec.template.spec.containers[0].image != $image then "Deployment image \($d.spec.template.spec.containers[0].image)"
					  elif ($d.spec.template.spec.containers[0].args[1] != $i.spec.model) then "Deployment model \($d.spec.template.spec.containers[0].args[1])"
					  else empty end)
			  ] | map("isvc/\($i.metadata.name): \(.)")[]),
		  ($deps[], $svcs[] | select($by[.metadata.name] == null) | "\(.kind)/\(.metadata.name) has no InferenceService")
		] as $bad
		| "isvcs=\($isvcs | length) deployments=\($deps | length) services=\($svcs | length) problems=\($bad | length)",
		  ($bad[:10][]),
		  (if ($bad | length) > 0 or ($isvcs | length) == 0 then "NOT CONVERGED" else empty end)
	' <<<"$json" >"$TDIR/check.out" || { echo "jq failed"; return 1; }
	cat "$TDIR/check.out"
	! grep -q "NOT CONVERGED" "$TDIR/check.out"
}

# converge: everything in the namespace converges; notes the time and counts.
converge() {
	wait_for "every InferenceService converged (${1:-after the fault})" "${2:-$CONVERGE_TIMEOUT}" check_all
	note "converged in ${WAITED} s: $(head -n 1 "$TDIR/check.out")"
}

# no_hot_loop: over RATE_WINDOW s the reconciler's API requests stay within
# the bound of the header (N from its cache).
no_hot_loop() {
	local n r0 r1 v0 bound
	n="$(m 'inference_operator_cache_objects{kind="InferenceService"}')"
	v0="$(requests_by_verb)"
	r0="$(requests_total)"
	sleep "$RATE_WINDOW"
	r1="$(requests_total)"
	bound=$((n * RATE_WINDOW / REQUEUE + NWATCHES * ((RATE_WINDOW + 14) / 15 + 1)))
	echo "  requests by verb before the window: $v0; after: $(requests_by_verb)"
	note "API requests in ${RATE_WINDOW} s after convergence: $((r1 - r0)) (bound $bound for $n objects)"
	[ $((r1 - r0)) -le "$bound" ] ||
		fail "hot loop: $((r1 - r0)) API requests in ${RATE_WINDOW} s, bound $bound ($n objects, resync ${REQUEUE} s)"
}

# sum_watch FN: FN (watch_restarts or watch_relists) for every watch, "a b c".
sum_watch() {
	local r out=""
	for r in $WATCHES; do out+="$("$1" "$r") "; done
	echo "$out"
}
# all_grew "BEFORE" FN: each watch's counter is above its BEFORE value.
all_grew() {
	local -a before
	read -r -a before <<<"$1"
	local i=0 r v ok=0
	for r in $WATCHES; do
		v="$("$2" "$r")"
		if [ "${v%.*}" -le "${before[$i]%.*}" ]; then
			echo "$2 $r: $v, not above ${before[$i]}"
			ok=1
		fi
		i=$((i + 1))
	done
	return $ok
}
log_since() { tail -c "+$(($1 + 1))" "$RC_LOG"; }
log_size() { stat -c %s "$RC_LOG"; }

# ---------------------------------------------------------------------------
# Tests. They share one namespace, so every check covers every object so
# far. Each ends with the proxy passing traffic.
# ---------------------------------------------------------------------------

test_baseline() {
	create_isvcs base 1 20
	converge "20 created"
	no_hot_loop
}

# Every connection (watches mid-stream, workers' keep-alive connections)
# reset five times while objects are created and a Deployment is scaled by
# hand; the watches resume.
test_watch_reset() {
	local before i
	before="$(sum_watch watch_restarts)"
	for i in 1 2 3 4 5; do
		proxy reset
		create_isvcs reset $((i * 4 - 3)) $((i * 4))
		[ "$i" = 3 ] && kc scale deploy base-001 --replicas=7
		sleep 1
	done
	wait_for "every watch restarted" 60 all_grew "$before" watch_restarts
	converge
	note "proxy: $PROXY_REPLY"
	no_hot_loop
}

# Every byte held 1.5 × the request timeout: requests time out (counted as
# reconcile errors); after the delay ends everything converges.
test_request_timeout() {
	local e0 e1 off
	off="$(log_size)"
	e0="$(m 'controller_runtime_reconcile_total{controller="inferenceservice",result="error"}')"
	proxy delay $((REQUEST_TIMEOUT * 1500))
	create_isvcs slow 1 5
	kc scale isvc base-002 --replicas=3
	wait_for "a reconcile failed on a timed-out request" 60 metric_ge \
		'controller_runtime_reconcile_total{controller="inferenceservice",result="error"}' $((${e0%.*} + 1))
	sleep "$REQUEST_TIMEOUT"
	proxy pass
	e1="$(m 'controller_runtime_reconcile_total{controller="inferenceservice",result="error"}')"
	log_since "$off" | grep -q 'Timeout was reached\|timed out' || fail "no request timeout in the reconciler's log"
	note "reconcile errors during the delay: $((${e1%.*} - ${e0%.*}))"
	converge
	no_hot_loop
}

# PARTITION_S s with nothing through (no bytes, no handshakes); changes made
# meanwhile are picked up once it heals.
test_partition() {
	local t0 before
	before="$(sum_watch watch_restarts)"
	proxy partition "$PARTITION_S"
	t0=$SECONDS
	create_isvcs part 1 5
	kc delete svc base-003
	kc patch isvc base-004 --type merge -p '{"spec":{"model":"org/changed-in-partition"}}'
	sleep $((PARTITION_S - (SECONDS - t0)))
	wait_for "partition over" 10 bash -c "exec 5<>/dev/tcp/127.0.0.1/$PROXY_CONTROL_PORT; echo status >&5; read -r r <&5; echo \"\$r\"; [[ \"\$r\" == *partition_left_s=0.0* ]]"
	converge "after a ${PARTITION_S} s partition"
	# A watch that was between backoff attempts (0.8 s doubling, jittered, up
	# to 30 s) when the partition ended restarts on its next attempt, which
	# may come after convergence: the pod watch is not needed for it.
	wait_for "every watch restarted" 60 all_grew "$before" watch_restarts
	no_hot_loop
}

# Half-open: every current connection stops forwarding but stays open (the
# kernel still ACKs, so TCP keepalive sees nothing); new connections work.
# Only the watch's own idle timer (timeout + 5 s) can notice.
test_half_open() {
	local before off
	before="$(sum_watch watch_restarts)"
	off="$(log_size)"
	proxy blackhole
	proxy pass
	create_isvcs half 1 5
	kc scale isvc base-005 --replicas=2
	wait_for "every watch noticed its dead connection and restarted" $((WATCH_TIMEOUT + WATCH_TIMEOUT / 4 + 5 + 30)) \
		all_grew "$before" watch_restarts
	note "dead watches replaced after ${WAITED} s (idle timer: watch timeout ${WATCH_TIMEOUT} ± $((WATCH_TIMEOUT / 4)) + 5 s)"
	log_since "$off" | grep -q 'connection presumed dead' ||
		{ log_since "$off" | grep 'watch connection failed' | head -n 5; fail "no idle-timeout of a watch in the log"; }
	converge "after the half-open connections were noticed" 60
	# Each watch found its connection dead once; a second time would mean
	# the new attempt went down the same half-open connection (it did, over
	# HTTP/2, until the kube client dropped dead connections).
	local dead
	dead="$(log_since "$off" | grep -c 'connection presumed dead')"
	log_since "$off" | grep 'connection presumed dead' | cut -c1-200
	[ "$dead" -le "$NWATCHES" ] || fail "$dead watch connections presumed dead for $NWATCHES watches: a dead connection was reused"
	note "watch connections presumed dead: $dead (one per watch)"
	no_hot_loop
}

# kube-apiserver SIGKILLed, down 3 s, restarted (etcd untouched): the proxy
# resets every connection it had and refuses new ones meanwhile.
test_apiserver_kill() {
	local before
	before="$(sum_watch watch_restarts)"
	echo "+ tests/cluster/restart-apiserver.sh --down-for 3"
	"$CLUSTER_SCRIPTS/restart-apiserver.sh" --down-for 3 8>&- 2>&1 | sed 's/^/  /'
	[ "${PIPESTATUS[0]}" = 0 ] || fail "restart-apiserver.sh failed"
	io_wait_webhooks "$WH_PORT" || fail "webhooks not active after the API server restart"
	create_isvcs kill 1 5
	kc delete deploy base-006
	converge
	# As after the partition: a watch in backoff restarts on its next attempt.
	wait_for "every watch restarted" 60 all_grew "$before" watch_restarts
	no_hot_loop
}

# etcd_revision: the current etcd revision (etcd's JSON gateway).
etcd_revision() {
	curl -sf --max-time 5 -X POST "http://127.0.0.1:$ETCD_CLIENT_PORT/v3/kv/range" \
		-d '{"key":"Lw==","limit":1,"keys_only":true}' | jq -r .header.revision
}

# The reconciler is cut off (connections reset, new ones refused) while
# objects change; etcd is compacted at its current revision and
# kube-apiserver restarted (its watch cache then starts after the
# compaction): the operator's watches resume from a resourceVersion that no
# longer exists, get 410 Gone and must relist.
test_etcd_compaction_410() {
	local relists rev out off
	relists="$(sum_watch watch_relists)"
	off="$(log_size)"
	proxy drop
	proxy reset
	create_isvcs gone 1 5
	kc delete svc base-007
	kc scale isvc base-008 --replicas=3
	rev="$(etcd_revision)"
	[[ "$rev" =~ ^[0-9]+$ ]] || fail "could not read etcd's revision"
	out="$(curl -sf --max-time 30 -X POST "http://127.0.0.1:$ETCD_CLIENT_PORT/v3/kv/compaction" \
		-d "{\"revision\":\"$rev\",\"physical\":true}")" || fail "etcd compaction at revision $rev failed: $out"
	echo "  etcd compacted at revision $rev: $out"
	"$CLUSTER_SCRIPTS/restart-apiserver.sh" --down-for 1 8>&- 2>&1 | sed 's/^/  /'
	[ "${PIPESTATUS[0]}" = 0 ] || fail "restart-apiserver.sh failed"
	io_wait_webhooks "$WH_PORT" || fail "webhooks not active after the API server restart"
	proxy pass
	# The watches back off while refused (up to 30 s) before they try again.
	wait_for "every watch relisted" 90 all_grew "$relists" watch_relists
	log_since "$off" | grep -E '"(code|status)":410' | head -n 3
	log_since "$off" | grep -qE '"(code|status)":410' || fail "no 410 in the reconciler's log"
	note "relisted after 410 within ${WAITED} s of the proxy passing again"
	converge
	no_hot_loop
}

# A second writer keeps overwriting the status of ten InferenceServices
# (phase Hijacked): it reads an object, replaces its status (wins: the
# operator must revert it), then replaces it again with the resourceVersion
# it read first, now stale (loses with 409 Conflict), and once more with the
# version its first write returned after a pause (wins or loses, whether the
# operator reverted meanwhile or not). Once it stops, everything converges
# and the operator settles. The operator's own status writes are merge
# patches without a resourceVersion, so they cannot conflict: the last
# writer wins, and the operator writes last.
# write_status_as FILE: replace the status from FILE; sets SW (won/lost).
write_status_as() {
	if "$KUBECTL" -n "$NS" replace --subresource=status -f "$1" -o json >"$TDIR/sw.out" 2>"$TDIR/sw.err"; then
		SW=won
	elif grep -q 'Conflict\|the object has been modified' "$TDIR/sw.err"; then
		SW=lost
	else
		cat "$TDIR/sw.err"
		fail "second writer: unexpected error"
	fi
}
test_status_second_writer() {
	local sw0 end won=0 lost=0 name
	sw0="$(m inference_operator_status_writes_total)"
	end=$((SECONDS + 15))
	while [ "$SECONDS" -lt "$end" ]; do
		for name in base-009 base-010 base-011 base-012 base-013 base-014 base-015 base-016 base-017 base-018; do
			"$KUBECTL" -n "$NS" get isvc "$name" -o json | jq '.status.phase = "Hijacked"' >"$TDIR/sw1.json" ||
				fail "second writer: read $name"
			write_status_as "$TDIR/sw1.json"
			[ "$SW" = won ] && won=$((won + 1)) || lost=$((lost + 1))
			[ "$SW" = won ] && jq '.status.phase = "Hijacked"' "$TDIR/sw.out" >"$TDIR/sw2.json"
			write_status_as "$TDIR/sw1.json" # stale now
			[ "$SW" = won ] && won=$((won + 1)) || lost=$((lost + 1))
			if [ -s "$TDIR/sw2.json" ]; then
				sleep 0.2
				write_status_as "$TDIR/sw2.json"
				[ "$SW" = won ] && won=$((won + 1)) || lost=$((lost + 1))
				rm -f "$TDIR/sw2.json"
			fi
		done
	done
	echo "  second writer: $won writes won, $lost lost with 409"
	[ "$won" -gt 0 ] || fail "the second writer never got a write in: nothing for the operator to fight"
	[ "$lost" -gt 0 ] || fail "the second writer never wrote with a stale resourceVersion (no 409)"
	converge "after the second writer stopped" 60
	metric_ge inference_operator_status_writes_total $((${sw0%.*} + 1)) >/dev/null ||
		fail "the operator never rewrote a hijacked status"
	note "second writer: $won status writes won, $lost lost (409); operator status writes meanwhile: $(($(m inference_operator_status_writes_total | cut -d. -f1) - ${sw0%.*}))"
	no_hot_loop
}

# kill -9 of the reconciler while it works through BURST creates, then a
# restart: everything converges with exactly one Deployment and Service each
# (the new process creates only what is missing).
test_operator_kill9_burst() {
	local before_dep created_new pid t0
	isvc_list burst 1 "$BURST" >"$TDIR/burst.json"
	t0="$(now_ns)"
	echo "+ kubectl create -f burst.json ($BURST objects, in the background)"
	"$KUBECTL" -n "$NS" create -f "$TDIR/burst.json" >"$TDIR/burst.out" 2>&1 &
	pid=$!
	before_dep="$(m 'inference_operator_applies_total{kind="Deployment",result="created"}')"
	wait_for "the reconciler created 50 of the burst's Deployments" 120 metric_ge \
		'inference_operator_applies_total{kind="Deployment",result="created"}' $((${before_dep%.*} + 50))
	local at_kill
	at_kill="$(m 'inference_operator_applies_total{kind="Deployment",result="created"}')"
	local still=no
	kill -0 "$pid" 2>/dev/null && still=yes
	io_load "$RC_STATE"
	echo "+ kill -9 $OP_PID (reconciler) after $(since "$t0") s; kubectl create still running: $still"
	kill -KILL "$OP_PID" || fail "kill -9 of the reconciler"
	local i
	for ((i = 0; i < 50; i++)); do
		io_pid_is_ours "$OP_PID" "$OP_BIN" "$OP_CERT_DIR" || break
		sleep 0.1
	done
	io_pid_is_ours "$OP_PID" "$OP_BIN" "$OP_CERT_DIR" && fail "the reconciler survived kill -9"
	rm -f "$RC_STATE"
	rc_start || fail "restart of the reconciler"
	wait "$pid" || {
		tail -n 5 "$TDIR/burst.out"
		fail "kubectl create of the burst failed"
	}
	[ "$(grep -c ' created$' "$TDIR/burst.out")" = "$BURST" ] || fail "kubectl did not create all $BURST"
	converge "after kill -9 mid-burst" 300
	created_new="$(m 'inference_operator_applies_total{kind="Deployment",result="created"}')"
	# The killed process had created at least at_kill - before_dep of them.
	[ "${created_new%.*}" -le $((BURST - (${at_kill%.*} - ${before_dep%.*}))) ] ||
		fail "the restarted reconciler created ${created_new%.*} Deployments, more than the $((BURST - (${at_kill%.*} - ${before_dep%.*}))) the first one could have left"
	note "killed after $((${at_kill%.*} - ${before_dep%.*}))+ of $BURST Deployments (kubectl create still running: $still); the restarted process created ${created_new%.*}; all converged $(since "$t0") s after the burst began"
	no_hot_loop
}

# ---------------------------------------------------------------------------
# Runner
# ---------------------------------------------------------------------------

PASSED=0 FAILED=0 FINISHED=0 CLUSTER_WAS_RUNNING=0 CLUSTER_STARTED=0 SETUP_DONE=0 NS=""
RUN_START=$SECONDS

delete_ns_objects() {
	local r
	for r in "/apis/ai.example.com/v1/namespaces/$1/inferenceservices" \
		"/apis/apps/v1/namespaces/$1/deployments" "/api/v1/namespaces/$1/services"; do
		"$KUBECTL" delete --raw "$r" >/dev/null 2>&1
	done
}

cleanup() {
	set +e
	if [ -n "$NS" ] && [ -n "${KUBECTL:-}" ]; then
		"$KUBECTL" delete namespace "$NS" --wait=false >/dev/null 2>&1
		delete_ns_objects "$NS"
	fi
	io_stop "$RC_STATE"
	io_stop "$WH_STATE"
	proxy_stop
	if [ "$CLUSTER_STARTED" = 1 ] && [ "$CLUSTER_WAS_RUNNING" = 0 ] && [ "$E2E_KEEP_CLUSTER" != 1 ]; then
		say "stopping the control plane this run started (E2E_KEEP_CLUSTER=1 keeps it)"
		"$CLUSTER_SCRIPTS/down.sh" 8>&- | sed 's/^/  /'
	elif [ "$CLUSTER_STARTED" = 1 ] && [ -n "${KUBECTL:-}" ]; then
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

setup() {
	mkdir -p "$WORK" "$CLUSTER_DIR" || die "cannot create $WORK"
	CLUSTER_DIR="$(cd "$CLUSTER_DIR" && pwd)"
	[ -x "$IO_BIN" ] || die "IO_BIN=$IO_BIN is not an executable (run make)"
	[ -x "$FAULTPROXY" ] || die "FAULTPROXY=$FAULTPROXY is not an executable (make build/faultproxy)"
	IO_BIN="$(cd "$(dirname "$IO_BIN")" && pwd)/$(basename "$IO_BIN")"
	export IO_BIN
	command -v jq >/dev/null || die "jq not found: apt-get install jq"
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
	# APISERVER_PORT, ETCD_CLIENT_PORT
	# shellcheck disable=SC1091
	. "$CLUSTER_DIR/state.env"

	io_stop "$RC_STATE" || die "a previous reconciler could not be stopped"
	io_stop "$WH_STATE" || die "a previous webhook could not be stopped"
	proxy_stop
	: >"$WORK/proxy.log"
	proxy_start
	say "faultproxy: 127.0.0.1:$PROXY_PORT -> kube-apiserver 127.0.0.1:$APISERVER_PORT (control $PROXY_CONTROL_PORT)"
	# The reconciler's kubeconfig: the admin one, through the proxy. The API
	# server's certificate is for 127.0.0.1, which the proxy address still is.
	sed "s#https://127.0.0.1:$APISERVER_PORT\\b#https://127.0.0.1:$PROXY_PORT#" "$CLUSTER_DIR/kubeconfig" \
		>"$WORK/proxied.kubeconfig"
	grep -q "127.0.0.1:$PROXY_PORT" "$WORK/proxied.kubeconfig" || die "could not point a kubeconfig at the proxy"

	io_certs "$WH_CERTS" || die "certificates"
	rm -rf "$RC_CERTS" || die "cannot remove $RC_CERTS"
	cp -r "$WH_CERTS" "$RC_CERTS" || die "certificates for the reconciler"
	: >"$WH_LOG"
	: >"$RC_LOG"
	io_start "$WH_STATE" "$IO_BIN" "$WH_CERTS" "$WH_LOG" --webhook-only || die "starting the webhook"
	WH_PORT="$OP_PORT"
	io_install_crd || die "installing the CRD"
	io_register_webhooks "$WH_PORT" "$WH_CERTS/ca.crt" || die "registering the webhooks"
	RC_ARGS=(--reconciler-only --kubeconfig "$WORK/proxied.kubeconfig" --requeue-after "$REQUEUE"
		--watch-timeout "$WATCH_TIMEOUT" --kube-request-timeout "$REQUEST_TIMEOUT")
	rc_start || die "starting the reconciler"
	say "webhook: pid $(cat "${WH_STATE%.env}.pid"), port $WH_PORT; reconciler: serve ${RC_ARGS[*]} (log $RC_LOG)"
}

run_test() {
	local name="$1" rc t0
	TDIR="$WORK/tests/$name"
	rm -rf "$TDIR" && mkdir -p "$TDIR"
	t0="$(now_ns)"
	{
		if ! io_running "$RC_STATE"; then
			echo "the reconciler is not running (an earlier test left it down): restarting it"
			rc_start
		fi &&
			("test_$name")
	} >"$TDIR/log" 2>&1
	rc=$?
	# Whatever the test did, the proxy passes traffic afterwards.
	(proxy pass) >/dev/null 2>&1 || echo "[faults] warning: the proxy did not answer 'pass'"

	if [ "$rc" = 0 ]; then
		PASSED=$((PASSED + 1))
		echo "PASS $name ($(since "$t0") s)"
		[ ! -s "$TDIR/note" ] || sed 's/^/     /' "$TDIR/note"
	else
		FAILED=$((FAILED + 1))
		echo "FAIL $name ($(since "$t0") s; log $TDIR/log)"
		sed 's/^/    /' "$TDIR/log"
	fi
}

setup
SETUP_DONE=1
NS="faults-$(date +%s)"
"$KUBECTL" create namespace "$NS" >/dev/null || die "could not create namespace $NS"
say "setup $((SECONDS - RUN_START)) s; namespace $NS"
T0=$SECONDS
for t in "${TESTS[@]}"; do
	if [ -n "$ONLY" ] && ! [[ "$t" =~ $ONLY ]] && [ "$t" != baseline ]; then
		continue
	fi
	run_test "$t"
done
FINISHED=1
say "tests $((SECONDS - T0)) s, total $((SECONDS - RUN_START)) s"
cleanup
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
