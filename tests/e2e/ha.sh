# shellcheck shell=bash
# High-availability e2e tests (leader election on a Lease), sourced by
# tests/e2e/run.sh (which defines the helpers: k, expect_*, wait_for, jq_is,
# isvc, now_ns, since, ...). Each test runs in a subshell with its own
# namespace $NS and log dir $TDIR; `fail` ends it.
#
# Every test runs two replicas of the operator as separate processes
# ("a" and "b"): `serve <E2E serve flags> --leader-elect
# --leader-election-namespace $NS` (Lease "inference-operator", the default
# name, in the test's namespace, so each test starts from a fresh Lease), each
# with its own port, certificate dir (a copy of the e2e certificates: one CA,
# so the webhook configurations can point at either) and log
# ($TDIR/op-a.log, op-b.log). "a" is started first and waited for until it
# leads; then "b" starts as the standby.
#
# The e2e operator (no leader election: it would reconcile too) is stopped
# for the duration of each test; the runner restarts it, and points the
# webhooks back at it, before the next test. The webhook configurations point
# at "b", the replica no test kills or stops (ha_one_leader also points them
# at "a" for a while: both replicas serve admission).
#
# A sampler scrapes both replicas' leader_election_master_status every 0.3 s
# for the whole failover part of a test ($TDIR/leaders.txt); no sample may
# show two leaders.

HA_DIR="$WORK/ha"               # replicas' state files and certificate dirs
HA_N="${E2E_HA_N:-20}"          # InferenceServices before the failover
HA_M="${E2E_HA_M:-10}"          # created right after it
HA_LEASE="inference-operator"   # the default --leader-election-id
HA_MASTER="leader_election_master_status{name=\"$HA_LEASE\"}"
# Short timings for the kill -9 test (the others use the defaults 15/10/2).
HA_SHORT_LEASE=6 HA_SHORT_RENEW=4 HA_SHORT_RETRY=1
HA_SHORT=(--leader-election-lease-duration "$HA_SHORT_LEASE"
	--leader-election-renew-deadline "$HA_SHORT_RENEW" --leader-election-retry-period "$HA_SHORT_RETRY")
HA_DOWN="${E2E_HA_APISERVER_DOWN:-20}" # s the kube-apiserver stays down in ha_apiserver_down
declare -A HA_PID HA_PORT HA_ID
HA_SAMPLER=""

# ha_stop_all: stop every replica recorded in $HA_DIR (the runner calls this
# at setup and cleanup, for replicas an interrupted test left running).
ha_stop_all() {
	local f
	for f in "$HA_DIR"/*.env; do
		[ -f "$f" ] || continue
		io_stop "$f" 5 || return 1
	done
}

# ha_begin: stop the e2e operator (it would reconcile without the Lease);
# on the test's exit, stop the sampler and the replicas.
ha_begin() {
	trap ha_cleanup EXIT
	io_stop "$E2E_OP_STATE" || fail "stop the e2e operator"
	echo "  (e2e operator stopped for this test; the runner restarts it afterwards)"
}
ha_cleanup() {
	[ -z "$HA_SAMPLER" ] || kill "$HA_SAMPLER" 2>/dev/null
	ha_stop_all
}

# ha_start R [FLAGS...]: start replica R with leader election and FLAGS, wait
# for /readyz (the webhook serves; the watch caches synced, on every replica);
# sets HA_PID[R], HA_PORT[R] and HA_ID[R] (the identity it logged).
ha_start() {
	local r="$1" dir="$HA_DIR/$1" state="$HA_DIR/$1.env" logf="$TDIR/op-$1.log"
	shift
	io_stop "$state" || fail "stop an old replica $r"
	{ mkdir -p "$dir" && cp -f "$E2E_CERTS/ca.crt" "$E2E_CERTS/tls.crt" "$E2E_CERTS/tls.key" "$dir/"; } ||
		fail "certificates for replica $r"
	echo "+ start replica $r: serve ${SERVE_ARGS[*]} --leader-elect --leader-election-namespace $NS $*"
	io_start "$state" "$IO_BIN" "$dir" "$logf" "${SERVE_ARGS[@]}" \
		--leader-elect --leader-election-namespace "$NS" "$@" || fail "start replica $r"
	HA_PID[$r]="$OP_PID" HA_PORT[$r]="$OP_PORT"
	io_wait_ready "$state" || fail "replica $r: /readyz"
	HA_ID[$r]="$(sed -n 's/.*"msg":"leader election started".*"identity":"\([^"]*\)".*/\1/p' "$logf" | tail -n 1)"
	[ -n "${HA_ID[$r]}" ] || fail "replica $r logged no 'leader election started' with its identity"
	echo "  replica $r: pid ${HA_PID[$r]}, port ${HA_PORT[$r]}, identity ${HA_ID[$r]}"
}

# ha_pair [FLAGS...]: a, then (once a leads) b; both with FLAGS.
ha_pair() {
	ha_start a "$@"
	wait_for "replica a becomes leader" 20 ha_logged a "became leader"
	ha_start b "$@"
	wait_for "replica b sees a as the leader" 20 ha_logged b "leader changed" "\"leader\":\"${HA_ID[a]}\",\"us\":false"
}

# ha_logged R MSG [TEXT]: R's log has a line with msg MSG (and TEXT).
ha_logged() {
	grep -F "\"msg\":\"$2\"" "$TDIR/op-$1.log" | grep -qF -- "${3:-}" && return 0
	echo "replica $1 has not logged \"$2\" ${3:-}; last lines:"
	tail -n 5 "$TDIR/op-$1.log"
	return 1
}
# ha_line R MSG: R's first log line with msg MSG.
ha_line() { grep -m 1 -F "\"msg\":\"$2\"" "$TDIR/op-$1.log"; }
# ha_ts R MSG [SKIP]: the time (epoch ms) of R's first log line with msg MSG
# after its first SKIP lines (default 0).
ha_ts() {
	local ts
	ts="$(tail -n "+$((${3:-0} + 1))" "$TDIR/op-$1.log" | grep -m 1 -F "\"msg\":\"$2\"" |
		sed -n 's/^{"ts":"\([^"]*\)".*/\1/p')"
	[ -n "$ts" ] || fail "replica $1 logged no \"$2\""
	iso_ms "$ts"
}
iso_ms() { date -u -d "$1" +%s%3N; }
now_ms() { date +%s%3N; }
# sec MS: milliseconds as seconds (0.01).
sec() { awk -v m="$1" 'BEGIN { printf "%.2f", m / 1000 }'; }

# ha_scrape R: R's /metrics (fails when it does not answer).
ha_scrape() { io_metrics "$HA_DIR/$1.env"; }
# ha_metric R 'NAME{LABELS}': one sample of R's /metrics (0 when absent);
# fails the test when R does not answer.
ha_metric() {
	local text
	text="$(ha_scrape "$1")" || fail "GET /metrics of replica $1"
	awk -v s="$2" '$1 == s { v = $2 } END { print (v == "" ? 0 : v) }' <<<"$text"
}
# ha_sum R REGEX: the sum of R's samples whose series matches REGEX.
ha_sum() {
	local text
	text="$(ha_scrape "$1")" || fail "GET /metrics of replica $1"
	awk -v re="$2" '$1 ~ re { s += $2 } END { print s + 0 }' <<<"$text"
}
# ha_master R: R's leader_election_master_status, "-" when it does not answer.
ha_master() {
	local text
	text="$(ha_scrape "$1" 2>/dev/null)" || { echo -; return; }
	awk -v s="$HA_MASTER" '$1 == s { v = $2 } END { print (v == "" ? "?" : v) }' <<<"$text"
}
# ha_leaders: "a=1 b=0" (every replica started in this test).
ha_leaders() {
	local r out=""
	for r in $(printf '%s\n' "${!HA_PID[@]}" | sort); do
		out+="$r=$(ha_master "$r") "
	done
	echo "${out% }"
}
# ha_one_leader: condition: exactly one replica reports master status 1 (the
# others 0); prints the leader's name.
ha_one_leader() {
	local st
	st="$(ha_leaders)"
	if [ "$(grep -o '=1' <<<"$st" | wc -l)" = 1 ] && ! grep -qE '=[^01]' <<<"$st"; then
		sed -n 's/.*\b\([a-z]\)=1.*/\1/p' <<<"$st"
		return 0
	fi
	echo "leader_election_master_status: $st (want exactly one 1, the others 0)"
	return 1
}
# expect_leader R: R is the only leader by the metrics, and the Lease names
# R's identity.
expect_leader() {
	local got holder
	got="$(ha_one_leader)" || fail "$got"
	expect_eq "$got" "$1" "the one replica with leader_election_master_status 1 ($(ha_leaders))"
	holder="$("$KUBECTL" -n "$NS" get lease "$HA_LEASE" -o jsonpath='{.spec.holderIdentity}')" ||
		fail "get lease $HA_LEASE"
	expect_eq "$holder" "${HA_ID[$1]}" "Lease $HA_LEASE holderIdentity (replica $1's identity)"
	echo "  ok: replica $1 leads ($(ha_leaders)); Lease holderIdentity $holder"
}

# ha_sampler_start / ha_sampler_check: sample every replica's master status
# every 0.3 s into $TDIR/leaders.txt; then assert no sample saw two leaders.
ha_sampler_start() {
	(
		trap - EXIT
		while :; do
			echo "$(date +%H:%M:%S.%3N) $(ha_leaders)"
			sleep 0.3
		done
	) >"$TDIR/leaders.txt" 2>/dev/null &
	HA_SAMPLER=$!
}
ha_sampler_check() {
	kill "$HA_SAMPLER" 2>/dev/null
	wait "$HA_SAMPLER" 2>/dev/null
	HA_SAMPLER=""
	local n bad
	n="$(wc -l <"$TDIR/leaders.txt")"
	bad="$(awk '{ c = 0; for (i = 2; i <= NF; i++) if ($i ~ /=1$/) c++; if (c > 1) print }' "$TDIR/leaders.txt")"
	[ -z "$bad" ] || fail "two replicas reported leader_election_master_status 1 at the same time: $bad"
	[ "$n" -ge 3 ] || fail "the leader sampler took only $n samples"
	echo "  ok: never two leaders in $n samples of leader_election_master_status ($TDIR/leaders.txt)"
}

# ha_create PREFIX FROM COUNT: create InferenceServices PREFIX-FROM ..
# PREFIX-(FROM+COUNT-1) with one multi-document kubectl create.
ha_create() {
	local i g gpus=(A100 H100 L40S) f="$TDIR/$1-$2.yaml"
	for ((i = $2; i < $2 + $3; i++)); do
		g="${gpus[$((i % 3))]}"
		printf -- '---\napiVersion: ai.example.com/v1\nkind: InferenceService\nmetadata:\n  name: %s-%02d\nspec:\n  model: org/model-%d\n  gpuType: %s\n  replicas: %d\n' \
			"$1" "$i" "$i" "$g" $((i % 3))
	done >"$f"
	echo "+ kubectl -n $NS create -f $(basename "$f") ($3 InferenceServices)"
	"$KUBECTL" -n "$NS" create -f "$f" >"$TDIR/create.out" 2>&1 ||
		{ sed 's/^/  | /' "$TDIR/create.out"; fail "kubectl create of $3 InferenceServices"; }
	[ "$(grep -c ' created$' "$TDIR/create.out")" = "$3" ] || fail "kubectl did not report $3 created"
}

# ha_counts: one line about the namespace:
#   isvcs=N statuses=N deployments=OWNED/ALL services=OWNED/ALL
# statuses: InferenceServices whose status caught up with the spec
# (observedGeneration = generation, endpoint set); OWNED: objects with
# exactly one ownerReference, a controller reference to the InferenceService
# of the same name (its uid), and the same replicas for Deployments.
ha_counts() {
	"$KUBECTL" -n "$NS" get isvc -o json >"$TDIR/isvc.json" || return 1
	"$KUBECTL" -n "$NS" get deploy -o json >"$TDIR/deploy.json" || return 1
	"$KUBECTL" -n "$NS" get svc -o json >"$TDIR/svc.json" || return 1
	jq -rn --slurpfile i "$TDIR/isvc.json" --slurpfile d "$TDIR/deploy.json" --slurpfile s "$TDIR/svc.json" '
		($i[0].items | map({key: .metadata.name, value: .}) | from_entries) as $by |
		def owned: (.metadata.ownerReferences // []) as $o | ($by[.metadata.name]) as $x |
			$x != null and ($o | length) == 1 and $o[0].controller == true and $o[0].uid == $x.metadata.uid;
		"isvcs=\($i[0].items | length)" +
		" statuses=\([$i[0].items[] | select(.status.observedGeneration == .metadata.generation and
			(.status.endpoint // "") != "")] | length)" +
		" deployments=\([$d[0].items[] | select(owned and .spec.replicas == $by[.metadata.name].spec.replicas)] | length)/\($d[0].items | length)" +
		" services=\([$s[0].items[] | select(owned)] | length)/\($s[0].items | length)"'
}
# ha_converged N: condition: N InferenceServices, all with their status, one
# owned Deployment and Service each, nothing else.
ha_converged() {
	local got
	got="$(ha_counts)" || return 1
	echo "$got"
	[ "$got" = "isvcs=$1 statuses=$1 deployments=$1/$1 services=$1/$1" ]
}
# expect_all_converged N: the final count of a test: every InferenceService
# in the namespace is reconciled.
expect_all_converged() {
	local got
	got="$(ha_counts)" || fail "list the namespace's objects"
	expect_eq "$got" "isvcs=$1 statuses=$1 deployments=$1/$1 services=$1/$1" "final count"
	echo "  ok: all $1 InferenceServices reconciled: $got"
}

# expect_wrote_nothing R: R's write counters are all 0 and it made no
# POST/PUT/PATCH/DELETE request, nor took a key off the work queue.
expect_wrote_nothing() {
	local text v s bad=0
	text="$(ha_scrape "$1")" || fail "GET /metrics of replica $1"
	for s in '^inference_operator_applies_total[{]' '^inference_operator_status_writes_total$' \
		'^inference_operator_events_total[{]result="sent"' '^inference_operator_fenced_writes_total$' \
		'^controller_runtime_reconcile_total[{]' '^rest_client_requests_total[{]method="(POST|PUT|PATCH|DELETE)"'; do
		v="$(awk -v re="$s" '$1 ~ re { n += $2 } END { print n + 0 }' <<<"$text")"
		echo "  replica $1: sum of $s = $v"
		[ "$v" = 0 ] || bad=1
	done
	[ "$bad" = 0 ] || fail "the standby replica $1 wrote or reconciled (the sums above must be 0)"
	echo "  ok: replica $1 wrote nothing; its caches: $(awk '$1 ~ /^inference_operator_cache_objects/ { printf "%s ", $0 }' <<<"$text")"
}

# --- exactly one leader --------------------------------------------------------

# Two replicas with the default timings: exactly one leads (metrics + Lease);
# both serve the webhook; only the leader writes.
test_ha_one_leader() {
	ha_begin
	ha_pair
	expect_leader a
	expect_eq "$(ha_metric a inference_operator_leader_transitions_total)" 1 "replica a's leader transitions"
	expect_eq "$(ha_metric b inference_operator_leader_transitions_total)" 0 "replica b's leader transitions"
	io_readyz "${HA_PORT[b]}" "$E2E_CERTS/ca.crt" || fail "the standby's /readyz is not ok"
	ha_sampler_start

	# Admission on both: the first half through a, the second through b.
	local half=$((HA_N / 2)) m0 ma mb admitted='inference_operator_admissions_total{webhook="/mutate",allowed="true"}'
	io_register_webhooks "${HA_PORT[a]}" "$E2E_CERTS/ca.crt" || fail "register the webhooks at replica a"
	echo "  (webhooks registered at replica a, port ${HA_PORT[a]})"
	m0="$(ha_metric a "$admitted")"
	ha_create ha 0 "$half"
	expect_eq "$(($(ha_metric a "$admitted") - m0))" "$half" "mutating admissions answered by replica a"
	io_register_webhooks "${HA_PORT[b]}" "$E2E_CERTS/ca.crt" || fail "register the webhooks at replica b"
	echo "  (webhooks registered at replica b, port ${HA_PORT[b]})"
	ma="$(ha_metric a "$admitted")" mb="$(ha_metric b "$admitted")"
	ha_create ha "$half" $((HA_N - half))
	ma=$(($(ha_metric a "$admitted") - ma)) mb=$(($(ha_metric b "$admitted") - mb))
	echo "  mutating admissions of the second half: replica a $ma, replica b $mb"
	expect_eq "$((ma + mb))" $((HA_N - half)) "mutating admissions of the second half"
	[ "$mb" -ge 1 ] || fail "the standby replica b answered no admission request"

	local t0
	t0="$(now_ns)"
	wait_for "$HA_N InferenceServices converge" 60 ha_converged "$HA_N"
	local tconv
	tconv="$(since "$t0")"
	sleep 1 # a write by the standby, if any, would have happened by now
	expect_wrote_nothing b
	expect_eq "$(ha_metric b 'inference_operator_cache_objects{kind="InferenceService"}')" "$HA_N" \
		"InferenceServices in the standby's cache (kept warm)"
	expect_eq "$(ha_metric a "$APPLIES{kind=\"Deployment\",result=\"created\"}")" "$HA_N" "Deployments created by the leader"
	expect_eq "$(ha_metric a "$APPLIES{kind=\"Service\",result=\"created\"}")" "$HA_N" "Services created by the leader"
	local sw
	sw="$(ha_metric a "$STATUS_WRITES")"
	[ "$sw" -ge "$HA_N" ] || fail "leader's status writes $sw < $HA_N"
	k get deploy,svc -o json --show-managed-fields
	expect_ok "get deploy,svc"
	KOUT="$(jq -c '[.items[] | [.metadata.managedFields[]? | "\(.manager):\(.operation)"] | unique | join(",")] | unique' <<<"$KOUT")"
	expect_eq "$KOUT" '["inference-operator:Apply"]' "managers of all Deployments and Services (managedFields)"
	expect_leader a
	ha_sampler_check
	expect_all_converged "$HA_N"
	echo "$HA_N converged ${tconv} s after the creates; leader a: $sw status writes; standby b: 0 writes, $mb of $((HA_N - half)) admissions" >"$TDIR/note"
}

# --- kill -9 the leader ----------------------------------------------------------

# Short timings (lease 6 s, renew deadline 4 s, retry 1 s): the standby takes
# over within one lease duration plus a retry period of the kill (it judges
# expiry by its own observation of the last renewal, which can trail the
# kill by up to a retry period, and polls right at that expiry); objects
# created while nobody leads converge afterwards; nothing is created twice.
test_ha_kill_leader() {
	ha_begin
	ha_pair "${HA_SHORT[@]}"
	expect_leader a
	io_register_webhooks "${HA_PORT[b]}" "$E2E_CERTS/ca.crt" || fail "register the webhooks at replica b"
	echo "  (webhooks registered at replica b, port ${HA_PORT[b]}: it survives)"
	ha_create ha 0 "$HA_N"
	wait_for "$HA_N InferenceServices converge" 60 ha_converged "$HA_N"
	local dc sc
	dc="$(ha_metric a "$APPLIES{kind=\"Deployment\",result=\"created\"}")"
	sc="$(ha_metric a "$APPLIES{kind=\"Service\",result=\"created\"}")"
	expect_eq "$dc/$sc" "$HA_N/$HA_N" "Deployments/Services created by replica a"
	expect_wrote_nothing b
	local before
	before="$(owned_versions ha-)"
	ha_sampler_start

	local tkill tb t0 before_leader=""
	echo "+ kill -KILL ${HA_PID[a]} (replica a, the leader)"
	tkill="$(now_ms)"
	t0="$(now_ns)"
	kill -KILL "${HA_PID[a]}" || fail "kill -9 replica a"
	ha_create late "$HA_N" "$HA_M"
	# Nobody leads until the Lease expires: count the Deployments first, then
	# make sure b still had not taken over.
	local nd
	nd="$("$KUBECTL" -n "$NS" get deploy -o name | wc -l)"
	if ! grep -qF '"msg":"became leader"' "$TDIR/op-b.log"; then
		expect_eq "$nd" "$HA_N" "Deployments while no replica leads (the $HA_M new ones must wait)"
		before_leader=" (all $HA_M admitted by b before it led; none reconciled meanwhile)"
	fi
	io_stop "$HA_DIR/a.env"
	unset 'HA_PID[a]'
	wait_for "replica b becomes leader" $((HA_SHORT_LEASE + HA_SHORT_RETRY + 10)) ha_logged b "became leader"
	tb="$(ha_ts b "became leader")"
	local took=$((tb - tkill)) max=$(((HA_SHORT_LEASE + HA_SHORT_RETRY) * 1000 + 500)) min=$(((HA_SHORT_LEASE - HA_SHORT_RETRY) * 1000 - 500))
	echo "  replica b became leader $(sec "$took") s after the kill (lease ${HA_SHORT_LEASE} s + retry ${HA_SHORT_RETRY} s)"
	[ "$took" -le "$max" ] || fail "takeover took $(sec "$took") s, more than lease + retry period (+0.5 s)"
	[ "$took" -ge "$min" ] || fail "takeover after $(sec "$took") s: before the Lease could have expired (lease - retry period)"
	expect_leader b
	expect_eq "$("$KUBECTL" -n "$NS" get lease "$HA_LEASE" -o jsonpath='{.spec.leaseTransitions}')" 1 "Lease leaseTransitions"

	wait_for "all $((HA_N + HA_M)) InferenceServices converge" 60 ha_converged $((HA_N + HA_M))
	local tconv
	tconv="$(since "$t0")"
	# No duplicates: b created exactly the new ones and changed none of a's.
	# (Judged by resourceVersions, not by b's "updated" count: when an
	# InferenceService's status event overtakes its new Deployment's ADDED
	# event on the other watch, one more apply goes out that the API server
	# answers 200 without changing anything.)
	expect_eq "$(ha_metric b "$APPLIES{kind=\"Deployment\",result=\"created\"}")" "$HA_M" "Deployments created by replica b"
	expect_eq "$(ha_metric b "$APPLIES{kind=\"Service\",result=\"created\"}")" "$HA_M" "Services created by replica b"
	expect_eq "$(ha_sum b '^inference_operator_applies_total[{].*result="failed"')" 0 "failed applies of replica b"
	expect_json_eq "$(owned_versions ha-)" "$before" "resourceVersions of a's InferenceServices, Deployments and Services"
	ha_sampler_check
	expect_all_converged $((HA_N + HA_M))
	echo "kill -9: b leader $(sec "$took") s after the kill (lease $HA_SHORT_LEASE s, retry $HA_SHORT_RETRY s, bound $((HA_SHORT_LEASE + HA_SHORT_RETRY)) s); all $((HA_N + HA_M)) converged ${tconv} s after the kill$before_leader" >"$TDIR/note"
}

# --- cold standbys (--leader-elect-warm-standby=false) ------------------------------

# expect_cold R: replica R runs no watch and caches nothing.
expect_cold() {
	local text v
	text="$(ha_scrape "$1")" || fail "GET /metrics of replica $1"
	v="$(awk '$1 == "inference_operator_watches_running" { print $2 }' <<<"$text")"
	expect_eq "$v" 0 "replica $1: inference_operator_watches_running"
	v="$(awk '$1 ~ /^inference_operator_watch_events_total[{]/ { n++ } END { print n + 0 }' <<<"$text")"
	expect_eq "$v" 0 "replica $1: inference_operator_watch_events_total series"
	v="$(awk '$1 ~ /^inference_operator_cache_objects[{]/ { n += $2 } END { print n + 0 }' <<<"$text")"
	expect_eq "$v" 0 "replica $1: objects in its caches"
	echo "  ok: replica $1 is cold (no watch, empty caches)"
}
# owned_versions PREFIX: the resourceVersions of the InferenceServices,
# Deployments and Services named PREFIX* (JSON, by kind/name).
owned_versions() {
	"$KUBECTL" -n "$NS" get isvc,deploy,svc -o json |
		jq -S -c --arg p "$1" '[.items[] | select(.metadata.name | startswith($p)) |
			{key: "\(.kind)/\(.metadata.name)", value: .metadata.resourceVersion}] | from_entries'
}
# watches_running_is R N: condition.
watches_running_is() {
	local v
	v="$(ha_metric "$1" inference_operator_watches_running)"
	[ "$v" = "$2" ] && return 0
	echo "replica $1: inference_operator_watches_running $v, want $2"
	return 1
}

# Short timings, both replicas with --leader-elect-warm-standby=false: the
# standby runs no watch and caches nothing (while the leader works); the
# leader, made to lose the Lease (another holder written into it), stops its
# watches and frees its caches without exiting; the cold standby takes over
# once that holder's Lease expires, lists, and converges what was created
# while nobody led, rewriting nothing of the objects it never watched.
test_ha_cold_standby() {
	ha_begin
	ha_pair --leader-elect-warm-standby=false "${HA_SHORT[@]}"
	expect_leader a
	io_readyz "${HA_PORT[b]}" "$E2E_CERTS/ca.crt" || fail "the cold standby's /readyz is not ok"
	io_register_webhooks "${HA_PORT[b]}" "$E2E_CERTS/ca.crt" || fail "register the webhooks at replica b"
	echo "  (webhooks registered at replica b, port ${HA_PORT[b]}: it survives)"
	local n=5
	wait_for "replica a runs its 4 watches" 20 watches_running_is a 4
	ha_create ha 0 "$n"
	wait_for "$n InferenceServices converge" 30 ha_converged "$n"
	expect_eq "$(ha_metric a 'inference_operator_cache_objects{kind="InferenceService"}')" "$n" "InferenceServices in the leader's cache"
	expect_cold b
	expect_wrote_nothing b
	local before
	before="$(owned_versions ha-)"
	ha_sampler_start

	# Someone else takes the Lease: a steps down, stops watching, frees its caches.
	local now
	now="$(date -u +%Y-%m-%dT%H:%M:%S.000000Z)"
	k patch lease "$HA_LEASE" --type=merge -p "{\"spec\":{\"holderIdentity\":\"intruder\",\"renewTime\":\"$now\",\"acquireTime\":\"$now\"}}"
	expect_ok "write another holder into the Lease"
	wait_for "replica a loses leadership" 15 ha_logged a "lost leadership"
	wait_for "replica a stops its watches" 15 watches_running_is a 0
	expect_cold a
	ha_logged a "standing by: watches stopped, caches freed (cold standby)" >/dev/null ||
		fail "replica a did not log that it stopped its watches"
	expect_eq "$(ha_metric a inference_operator_watch_stops_total)" 1 "replica a's watch stops"

	# Stop a, so the cold standby b is the one to take over.
	io_stop "$HA_DIR/a.env"
	unset 'HA_PID[a]'
	ha_create late "$n" "$n"
	wait_for "replica b becomes leader" $((3 * HA_SHORT_LEASE + 10)) ha_logged b "became leader"
	wait_for "replica b runs its 4 watches" 20 watches_running_is b 4
	wait_for "all $((2 * n)) InferenceServices converge" 60 ha_converged $((2 * n))
	expect_leader b
	expect_eq "$(ha_metric b inference_operator_watch_starts_total)" 1 "replica b's watch starts"
	expect_eq "$(ha_metric b "$APPLIES{kind=\"Deployment\",result=\"created\"}")" "$n" "Deployments created by replica b"
	expect_eq "$(ha_sum b '^inference_operator_applies_total[{].*result="failed"')" 0 "failed applies of replica b"
	# Nothing a made was rewritten by b, whose caches began with its list.
	expect_json_eq "$(owned_versions ha-)" "$before" "resourceVersions of a's InferenceServices, Deployments and Services"
	expect_eq "$(ha_metric b 'inference_operator_cache_objects{kind="InferenceService"}')" $((2 * n)) "InferenceServices in b's cache"
	ha_sampler_check
	expect_all_converged $((2 * n))
	echo "cold standby: no watch and empty caches on the standby; the deposed leader stopped its watches; b listed and converged $n new objects after taking over" >"$TDIR/note"
}

# --- SIGTERM the leader ------------------------------------------------------------

# Default timings: the leader drains its workers and releases the Lease; the
# standby takes it at its next poll, within the 2 s retry period (asserted
# with 0.5 s for the drain, the release and the acquire requests).
test_ha_sigterm_handover() {
	ha_begin
	ha_pair
	expect_leader a
	io_register_webhooks "${HA_PORT[b]}" "$E2E_CERTS/ca.crt" || fail "register the webhooks at replica b"
	echo "  (webhooks registered at replica b, port ${HA_PORT[b]}: it survives)"
	local n=5
	ha_create ha 0 "$n"
	wait_for "$n InferenceServices converge" 30 ha_converged "$n"
	ha_sampler_start

	local tterm i ta tb trel
	echo "+ kill -TERM ${HA_PID[a]} (replica a, the leader)"
	tterm="$(now_ms)"
	kill -TERM "${HA_PID[a]}" || fail "SIGTERM replica a"
	wait_for "replica b becomes leader" 10 ha_logged b "became leader"
	tb="$(ha_ts b "became leader")"
	for ((i = 0; i < 150; i++)); do
		io_pid_is_ours "${HA_PID[a]}" "$IO_BIN" "$HA_DIR/a" || break
		sleep 0.1
	done
	io_pid_is_ours "${HA_PID[a]}" "$IO_BIN" "$HA_DIR/a" && fail "replica a still runs 15 s after SIGTERM"
	io_stop "$HA_DIR/a.env"
	unset 'HA_PID[a]'
	ha_logged a "lost leadership" '"reason":"stopping"' || fail "replica a did not log lost leadership (stopping)"
	ha_logged a "lease released" >/dev/null || fail "replica a did not log 'lease released'"
	ta="$(ha_ts a "lost leadership")"
	trel="$(ha_ts a "lease released")"
	local took=$((tb - tterm))
	echo "  SIGTERM → a stepped down +$(sec $((ta - tterm))) s, released the Lease +$(sec $((trel - tterm))) s; b leader +$(sec "$took") s"
	[ "$trel" -le "$tb" ] || fail "b became leader before a released the Lease"
	[ "$took" -le 2000 ] || fail "handover took $(sec "$took") s (want within 2 s: standbys poll every half retry period)"
	expect_leader b

	ha_create late "$n" "$n"
	wait_for "all $((2 * n)) InferenceServices converge" 30 ha_converged $((2 * n))
	expect_eq "$(ha_metric b "$APPLIES{kind=\"Deployment\",result=\"created\"}")" "$n" "Deployments created by replica b"
	ha_sampler_check
	expect_all_converged $((2 * n))
	echo "SIGTERM: a released the Lease $(sec $((trel - tterm))) s after SIGTERM; b leader $(sec "$took") s after SIGTERM (retry period 2 s)" >"$TDIR/note"
}

# --- kube-apiserver down -------------------------------------------------------------

# Default timings, kube-apiserver SIGKILLed and kept down $HA_DOWN s (etcd
# runs on): the leader cannot renew and steps down at its 10 s renew
# deadline, while the API server is still down; after the restart exactly one
# replica leads again; objects created right after converge.
test_ha_apiserver_down() {
	ha_begin
	ha_pair
	expect_leader a
	io_register_webhooks "${HA_PORT[b]}" "$E2E_CERTS/ca.crt" || fail "register the webhooks at replica b"
	local n=5
	ha_create ha 0 "$n"
	wait_for "$n InferenceServices converge" 30 ha_converged "$n"
	ha_sampler_start

	local la lb rpid tkill tready tlost line
	la="$(wc -l <"$TDIR/op-a.log")"
	lb="$(wc -l <"$TDIR/op-b.log")"
	echo "+ tests/cluster/restart-apiserver.sh --down-for $HA_DOWN   (in the background)"
	"$CLUSTER_SCRIPTS/restart-apiserver.sh" --down-for "$HA_DOWN" 8>&- >"$TDIR/restart.out" 2>&1 &
	rpid=$!
	wait_for "the kube-apiserver is killed" 15 grep -q ' killed at ' "$TDIR/restart.out"
	line="$(grep ' killed at ' "$TDIR/restart.out")"
	echo "  $line"
	tkill="$(iso_ms "$(sed -n 's/.* killed at \([^ ]*\) .*/\1/p' <<<"$line")")"

	wait_for "replica a loses leadership" $((HA_DOWN + 5)) ha_logged a "lost leadership"
	tlost="$(ha_ts a "lost leadership" "$la")"
	ha_line a "lost leadership" | grep -qF '"reason":"renew deadline exceeded"' ||
		fail "reason of a's step-down: $(ha_line a "lost leadership")"
	local took=$((tlost - tkill))
	echo "  replica a stepped down $(sec "$took") s after the kill (renew deadline 10 s, retry 2 s)"
	{ [ "$took" -ge 7500 ] && [ "$took" -le 11000 ]; } ||
		fail "step-down $(sec "$took") s after the kill: want the renew deadline after the last renewal (8–10 s, ±0.5 s)"
	grep -q 'restarted' "$TDIR/restart.out" && fail "the API server was back before a stepped down"
	expect_eq "$(ha_leaders)" "a=0 b=0" "master status while the API server is down"
	# Readiness is about the webhook (and the caches' first sync), not about
	# leading or reaching the API server.
	io_readyz "${HA_PORT[a]}" "$E2E_CERTS/ca.crt" || fail "replica a's /readyz not ok while the API server is down"
	io_readyz "${HA_PORT[b]}" "$E2E_CERTS/ca.crt" || fail "replica b's /readyz not ok while the API server is down"
	echo "  ok: /readyz of both replicas ok while the API server is down"

	local rc=0
	wait "$rpid" || rc=$?
	sed 's/^/  /' "$TDIR/restart.out"
	[ "$rc" = 0 ] || fail "restart-apiserver.sh failed (exit $rc)"
	tready="$(iso_ms "$(sed -n 's/.* ready at \([^ ]*\) .*/\1/p' "$TDIR/restart.out")")"

	local leader tl
	wait_for "exactly one leader after the API server is back" 30 ha_one_leader
	leader="$(ha_one_leader)"
	if [ "$leader" = a ]; then tl="$(ha_ts a "became leader" "$la")"; else tl="$(ha_ts b "became leader" "$lb")"; fi
	echo "  replica $leader leads again $(sec $((tl - tkill))) s after the kill ($(sec $((tl - tready))) s from the API server's /readyz, which can trail its first answers)"
	expect_leader "$leader"

	io_wait_webhooks "${HA_PORT[b]}" || fail "the webhooks at replica b are not called again"
	local t0
	t0="$(now_ns)"
	ha_create late "$n" "$n"
	wait_for "all $((2 * n)) InferenceServices converge" 60 ha_converged $((2 * n))
	local tconv
	tconv="$(since "$t0")"
	expect_leader "$leader"
	ha_sampler_check
	expect_all_converged $((2 * n))
	echo "kube-apiserver down ${HA_DOWN} s: a stepped down $(sec "$took") s after the kill; $leader leader again $(sec $((tl - tkill))) s after the kill ($(sec $((tl - tready))) s from /readyz at $(sec $((tready - tkill))) s); $n new objects converged ${tconv} s after their create began" >"$TDIR/note"
}
