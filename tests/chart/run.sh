#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Chart, in-cluster and image tests (`make test-chart`): the Helm chart
# rendered, linted and applied to a real kube-apiserver; the operator run the
# way a pod runs it, under ONLY the chart's RBAC; the OCI image built without a
# container engine and run with chroot.
#
#   1. tests/cluster/helm.sh (helm, pinned, cached) and tests/cluster/up.sh with
#      CLUSTER_DIR (default build/cluster-chart: its own control plane, so it
#      never meets the e2e suite's webhooks), reused when already running.
#   2. Runs the tests in TESTS in order (later ones build on the release that
#      helm_install made); prints PASS/FAIL/PENDING per test, a failed test's
#      commands and outputs, and a closing line "N passed, N failed, N skipped"
#      (PENDING and root-only tests without root count as skipped). Exit 0 only
#      if none failed.
#   3. Always stops the operators it started and uninstalls its release; the
#      control plane is stopped only if this run started it (CHART_KEEP_CLUSTER=1
#      keeps it).
#
# No pod ever runs (no kubelet): the in-cluster tests run the real binary on
# this host (and inside the image's root filesystem with chroot) with the
# chart's args and the token that `kubectl create token` mints for the chart's
# ServiceAccount, in a service-account directory laid out like the kubelet's.
# The chart's webhook configurations name a Service that only kube-proxy could
# reach, so InferenceServices are created in the release namespace, which both
# configurations exclude (asserted each time): no Service ClusterIP is ever
# dialled. The webhook behind the operator's self-signed certificate is
# checked the way the API server would call it: TLS to the Service's DNS name
# (resolved to 127.0.0.1) trusting the injected caBundle. Nothing leaves
# 127.0.0.1.
#
# Env: IO_BIN (default build/inference-operator), CLUSTER_DIR, CHART_WORK_DIR
# (default build/chart-test), CHART_ONLY=REGEX, CHART_KEEP_CLUSTER=1,
# IMAGE_MAX_BYTES (compressed layer bound, default 8000000), KUBECTL.
# Needs: jq, curl, openssl, umoci (installed with apt-get when missing and
# root), Go (first helm build), root for the chroot tests.
set -u -o pipefail

CT_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$CT_SRC/../.." && pwd)"
CLUSTER_SCRIPTS="$REPO_ROOT/tests/cluster"
export CLUSTER_DIR="${CLUSTER_DIR:-$REPO_ROOT/build/cluster-chart}"
WORK="${CHART_WORK_DIR:-$REPO_ROOT/build/chart-test}"
mkdir -p "$WORK" && WORK="$(cd "$WORK" && pwd)" || { echo "[chart] ERROR: cannot create $WORK" >&2; exit 1; }
IO_BIN="${IO_BIN:-$REPO_ROOT/build/inference-operator}"
CHART="$REPO_ROOT/charts/inference-operator"
CHART_ONLY="${CHART_ONLY:-}"
CHART_KEEP_CLUSTER="${CHART_KEEP_CLUSTER:-0}"
IMAGE_MAX_BYTES="${IMAGE_MAX_BYTES:-8000000}"
RELEASE=inference-operator # fullname = release name = "inference-operator"
SA_NAME=inference-operator
WEBHOOK_NAME=inference-operator
TLS_SECRET=inference-operator-tls
LEASE_NAME=inference-operator

IO_LOG_TAG="chart"
# shellcheck source=../cluster/operator.sh
. "$CLUSTER_SCRIPTS/operator.sh"

TESTS=(
	helm_lint
	values_schema
	render_defaults
	render_modes
	flags_coverage
	dry_run_server
	helm_install
	incluster_reconcile
	selfsigned_certificates
	rbac_negative
	token_rotation
	leader_election_lease
	image_build
	image_layout
	image_chroot_version
	image_chroot_webhook
	image_chroot_incluster
	dockerfile_equivalent
	helm_upgrade_modes
	helm_uninstall
)

say() { echo "[chart $(date +%H:%M:%S)] $*"; }
die() {
	echo "[chart] ERROR: $*" >&2
	exit 1
}

# ---------------------------------------------------------------------------
# Helpers for tests (each test runs in a subshell; `fail` ends it)
# ---------------------------------------------------------------------------

fail() {
	echo "ASSERTION FAILED: $*"
	exit 1
}
# pending REASON: the test cannot run yet (counted as skipped, not passed).
pending() {
	echo "$*" >"$TDIR/pending"
	exit 3
}
# note TEXT: printed under the PASS line.
note() { echo "$*" >>"$TDIR/note"; }
# needs TEST...: an earlier test this one builds on must have passed.
needs() {
	local t
	for t in "$@"; do
		[ -f "$WORK/passed/$t" ] || fail "needs test $t, which did not pass in this run"
	done
}
passed_mark() { mkdir -p "$WORK/passed" && : >"$WORK/passed/$1"; }

# run CMD...: run CMD, never failing itself: sets RC, OUT, ERR and logs the
# command with its output (shown when the test fails).
run() {
	echo "+ $*"
	RC=0
	"$@" >"$TDIR/out" 2>"$TDIR/err" || RC=$?
	OUT="$(cat "$TDIR/out")"
	ERR="$(cat "$TDIR/err")"
	echo "  exit $RC"
	[ -z "$OUT" ] || head -c 4000 "$TDIR/out" | sed 's/^/  stdout| /'
	[ -z "$ERR" ] || head -c 4000 "$TDIR/err" | sed 's/^/  stderr| /'
}
# run_in STDIN_FILE CMD...: run with STDIN_FILE as standard input.
run_in() {
	local in="$1"
	shift
	echo "+ $* < $(basename "$in")"
	RC=0
	"$@" <"$in" >"$TDIR/out" 2>"$TDIR/err" || RC=$?
	OUT="$(cat "$TDIR/out")"
	ERR="$(cat "$TDIR/err")"
	echo "  exit $RC"
	[ -z "$OUT" ] || head -c 4000 "$TDIR/out" | sed 's/^/  stdout| /'
	[ -z "$ERR" ] || head -c 4000 "$TDIR/err" | sed 's/^/  stderr| /'
}
expect_ok() { [ "$RC" = 0 ] || fail "$1: expected exit 0, got $RC"; }
expect_fail() { [ "$RC" != 0 ] || fail "$1: expected a non-zero exit, got 0"; }
expect_err_has() { [[ "$ERR" == *"$1"* ]] || fail "stderr lacks: $1"; }
expect_out_has() { [[ "$OUT" == *"$1"* ]] || fail "stdout lacks: $1"; }
expect_eq() { [ "$1" = "$2" ] || fail "$3: got '$1', want '$2'"; }

# expect_json_eq GOT WANT WHAT: equal JSON values (object keys sorted).
expect_json_eq() {
	local got want
	got="$(jq -S . <<<"$1" 2>/dev/null)" || fail "$3: not JSON: $1"
	want="$(jq -S . <<<"$2")" || fail "$3: the expected value is not JSON"
	if [ "$got" != "$want" ]; then
		echo "  $3 differs (- want, + got):"
		diff -u <(echo "$want") <(echo "$got") | tail -n +3 | sed 's/^/  /'
		fail "$3 is not as expected"
	fi
	echo "  ok: $3"
}

# kc ARGS: kubectl as the cluster admin. ksa ARGS: as the chart's
# ServiceAccount (the token file of the service-account directory).
kc() { "$KUBECTL" --kubeconfig "$ADMIN_KCFG" "$@"; }
ksa() { "$KUBECTL" --kubeconfig "$SA_KCFG" "$@"; }
helmc() { "$HELM" --kubeconfig "$ADMIN_KCFG" "$@"; }

# render OUTFILE [HELM ARGS...]: `helm template` of the chart as release
# $RELEASE in namespace $NS into OUTFILE (YAML); sets RC/OUT/ERR.
render() {
	local outf="$1"
	shift
	echo "+ helm template $RELEASE $CHART --namespace $NS $*"
	RC=0
	"$HELM" template "$RELEASE" "$CHART" --namespace "$NS" "$@" >"$outf" 2>"$TDIR/err" || RC=$?
	ERR="$(cat "$TDIR/err")"
	[ -z "$ERR" ] || sed 's/^/  stderr| /' "$TDIR/err"
	expect_ok "helm template $*"
}
# render_json [HELM ARGS...]: the rendered objects as one JSON array in R
# (converted by kubectl, client-side).
render_json() {
	render "$TDIR/render.yaml" "$@"
	R="$(kc create --dry-run=client -o json -f "$TDIR/render.yaml" | jq -s .)" ||
		fail "could not convert the rendered YAML to JSON"
	[ "$(jq length <<<"$R")" -gt 0 ] || fail "nothing rendered"
}
# obj KIND NAME: one rendered object (JSON) from R; "null" when absent.
obj() { jq -c --arg k "$1" --arg n "$2" '[.[] | select(.kind == $k and .metadata.name == $n)][0]' <<<"$R"; }
# kinds: "Kind/name" of every rendered object, sorted, one per line.
kinds() { jq -r '.[] | .kind + "/" + .metadata.name' <<<"$R" | LC_ALL=C sort; }
# args_of [HELM ARGS...]: the rendered operator container's args, one per line.
args_of() {
	render_json "$@" >&2
	jq -r '.[] | select(.kind == "Deployment") | .spec.template.spec.containers[0].args[]' <<<"$R"
}

# now_ns / since T0: nanosecond clock and seconds since T0.
now_ns() { date +%s%N; }
since() { awk -v a="$1" -v b="$(now_ns)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }'; }
# wait_for DESC TIMEOUT CMD...: until CMD succeeds, every 0.25 s; fails the
# test with CMD's last output after TIMEOUT s.
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

b64() { base64 -w0 <"$1"; }

# --- the operator as a pod would run it ----------------------------------------------

# chart_serve_args [HELM ARGS...]: the Deployment's args as rendered, without
# "serve" and the two flags that name pod paths (--listen, --cert-dir), which
# op_start sets for this host; one per line.
chart_serve_args() {
	args_of "$@" | grep -v -e '^serve$' -e '^--listen=' -e '^--cert-dir='
}

# mint_token FILE [kubectl create token ARGS...]: a token for the chart's
# ServiceAccount (TokenRequest API), written atomically to FILE (mode 0644 so
# the chroot's uid 65532 can read it, as with a projected volume + fsGroup).
mint_token() {
	local f="$1" tok
	shift
	tok="$(kc create token "$SA_NAME" -n "$NS" "$@")" || fail "kubectl create token $SA_NAME $*"
	printf '%s' "$tok" >"$f.tmp.$$" && chmod 0644 "$f.tmp.$$" && mv -f "$f.tmp.$$" "$f" ||
		fail "could not write $f"
	echo "  token for $SA_NAME ($*) written to $f"
}

# op_start NAME CERT_DIR [SERVE FLAGS...]: the operator binary on this host as
# a pod runs it: KUBERNETES_SERVICE_HOST/PORT at the local API server, the
# service-account directory $SA_DIR, no kubeconfig anywhere (KUBECONFIG
# unset, HOME empty), --cert-dir CERT_DIR (the pod's emptyDir: empty at first,
# selfSigned fills it), --listen 127.0.0.1:0. Waits for the "serving" line;
# records PID (tracked), port, log ($WORK/NAME.log) and cert dir in
# $WORK/NAME.env and loads them (op_load).
op_start() {
	local name="$1" certdir="$2" pid i port=""
	shift 2
	mkdir -p "$certdir" "$WORK/empty-home"
	: >"$WORK/$name.log"
	# shellcheck disable=SC2016
	env -u KUBECONFIG HOME="$WORK/empty-home" KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT="$APISERVER_PORT" \
		setsid "$IO_BIN" serve --listen 127.0.0.1:0 --cert-dir "$certdir" --service-account-dir "$SA_DIR" "$@" \
		</dev/null >>"$WORK/$name.log" 2>&1 8>&- &
	pid=$!
	track_pid "$pid" /
	echo "  started $name: pid $pid, cert dir $certdir"
	for ((i = 0; i < 600; i++)); do
		port="$(grep -m 1 '"msg":"serving"' "$WORK/$name.log" | sed -n 's/.*"port":\([0-9][0-9]*\).*/\1/p')"
		[ -n "$port" ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if [ -z "$port" ]; then
		sed 's/^/  log| /' "$WORK/$name.log" | tail -n 20
		fail "$name did not start serving within 60 s"
	fi
	printf 'P_PID=%q\nP_START=%q\nP_PORT=%q\nP_LOG=%q\nP_CERTS=%q\n' "$pid" "$(pid_start "$pid")" "$port" \
		"$WORK/$name.log" "$certdir" >"$WORK/$name.env"
	op_load "$name"
}
# op_load NAME: P_PID, P_START, P_PORT, P_LOG, P_CERTS of a started operator.
op_load() {
	P_PID="" P_START="" P_PORT="" P_LOG="" P_CERTS=""
	[ -f "$WORK/$1.env" ] || return 1
	# shellcheck disable=SC1090
	. "$WORK/$1.env"
}
# op_running NAME: it still runs (same PID and start time).
op_running() { op_load "$1" && [ -n "$P_PID" ] && [ "$(pid_start "$P_PID")" = "$P_START" ]; }
# op_stop NAME: SIGTERM, up to 15 s, then SIGKILL. Safe when it is not running.
op_stop() {
	local i
	op_running "$1" || { rm -f "$WORK/$1.env"; return 0; }
	kill -TERM "$P_PID" 2>/dev/null
	for ((i = 0; i < 150; i++)); do
		[ "$(pid_start "$P_PID")" = "$P_START" ] || break
		sleep 0.1
	done
	[ "$(pid_start "$P_PID")" = "$P_START" ] && kill -KILL "$P_PID" 2>/dev/null
	rm -f "$WORK/$1.env"
}
# tls_get PORT CA PATH [CURL ARGS...]: GET https://<Service DNS name>:PORT/PATH
# on 127.0.0.1, verifying the served certificate against CA for the Service's
# name, as the API server does (it calls the Service with that ServerName).
tls_get() {
	local port="$1" ca="$2" path="$3"
	shift 3
	curl -sS --max-time 5 --resolve "$SVC_DNS:$port:127.0.0.1" --cacert "$ca" "$@" "https://$SVC_DNS:$port$path"
}
# op_ready NAME: /readyz is 200 (certificate in place, caches synced).
op_ready() {
	op_load "$1" && [ -s "$P_CERTS/ca.crt" ] &&
		[ "$(tls_get "$P_PORT" "$P_CERTS/ca.crt" /readyz -o /dev/null -w '%{http_code}' 2>/dev/null)" = 200 ]
}
# no_forbidden LOG...: the operator never got a 403 from the API server.
no_forbidden() {
	if grep -i -E '"code":403|forbidden' "$@" | head -n 5 | sed 's/^/  log| /' | grep -q .; then
		fail "the operator hit Forbidden with the chart's RBAC (above)"
	fi
}

# isvc_create NAME GPU: an InferenceService in the release namespace, which
# both webhook configurations exclude (asserted): the chart's webhooks name a
# Service only kube-proxy could reach, and its ClusterIP is never dialled here.
isvc_create() {
	local sel
	sel="$(kc get validatingwebhookconfiguration,mutatingwebhookconfiguration "$WEBHOOK_NAME" -o json |
		jq -c '[.items[].webhooks[].namespaceSelector.matchExpressions[] | select(.key == "kubernetes.io/metadata.name" and .operator == "NotIn") | .values]')" ||
		fail "cannot read the webhook configurations"
	jq -e --arg ns "$NS" 'length == 2 and all(.[]; index($ns) != null)' <<<"$sel" >/dev/null ||
		fail "namespace $NS is not excluded by both webhook configurations: $sel"
	printf '{"apiVersion":"ai.example.com/v1","kind":"InferenceService","metadata":{"name":"%s","namespace":"%s"},"spec":{"model":"meta/llama-3-8b","gpuType":"%s"}}\n' \
		"$1" "$NS" "$2" >"$TDIR/isvc.json"
	run_in "$TDIR/isvc.json" kc create -f -
	expect_ok "create InferenceService $NS/$1"
}
# reconciled NAME: Deployment and Service exist and the status caught up.
reconciled() {
	kc -n "$NS" get deployment "$1" -o name && kc -n "$NS" get service "$1" -o name &&
		[ "$(kc -n "$NS" get isvc "$1" -o json | jq -r '(.status.observedGeneration // -1) == .metadata.generation')" = true ]
}
# has_event NAME: the operator wrote an events.k8s.io Event about it.
has_event() {
	kc -n "$NS" get events.events.k8s.io -o json |
		jq -e --arg n "$1" '[.items[] | select(.regarding.kind == "InferenceService" and .regarding.name == $n
			and .reportingController == "ai.example.com/inference-operator")] | length > 0' >/dev/null
}
# expect_reconciled NAME: Deployment + Service + status + Event.
expect_reconciled() {
	wait_for "Deployment, Service and status of $NS/$1" 30 reconciled "$1"
	wait_for "an Event about $NS/$1 from the operator" 30 has_event "$1"
	run kc -n "$NS" get isvc "$1" -o jsonpath='{.status.phase}'
	[ -n "$OUT" ] || fail "no status.phase on $1"
}

# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------

# shellcheck source=chart_tests.sh
. "$CT_SRC/chart_tests.sh"
# shellcheck source=cluster_tests.sh
. "$CT_SRC/cluster_tests.sh"
# shellcheck source=image_tests.sh
. "$CT_SRC/image_tests.sh"

# ---------------------------------------------------------------------------
# Runner
# ---------------------------------------------------------------------------

PASSED=0 FAILED=0 SKIPPED=0 FINISHED=0 SETUP_DONE=0 CLUSTER_WAS_RUNNING=0 CLUSTER_STARTED=0
TEST_CERTS="$WORK/test-certs" # a CA + 127.0.0.1 pair for the provided-mode and webhook-only checks
SA_DIR="$WORK/serviceaccount" SA_KCFG="$WORK/sa.kubeconfig"
TRACKED_PIDS="$WORK/tracked-pids"
RUN_START=$SECONDS

# track_pid PID ROOT: remember a process this run started (outside io_start)
# with its start time and root directory, so stop_tracked never signals a
# reused PID.
pid_start() { awk '{ print $22 }' "/proc/$1/stat" 2>/dev/null; }
track_pid() {
	local st i
	for ((i = 0; i < 20; i++)); do
		st="$(pid_start "$1")" && [ -n "$st" ] && break
		sleep 0.05
	done
	echo "$1 $st $2" >>"$TRACKED_PIDS"
}
pid_is_tracked() { [ "$(pid_start "$1")" = "$2" ] && [ "$(readlink "/proc/$1/root" 2>/dev/null)" = "$3" ]; }
# stop_tracked: SIGTERM (15 s, then SIGKILL) every tracked process still ours.
stop_tracked() {
	local pid st root i
	[ -f "$TRACKED_PIDS" ] || return 0
	while read -r pid st root; do
		pid_is_tracked "$pid" "$st" "$root" || continue
		kill -TERM "$pid" 2>/dev/null
		for ((i = 0; i < 150; i++)); do
			pid_is_tracked "$pid" "$st" "$root" || break
			sleep 0.1
		done
		pid_is_tracked "$pid" "$st" "$root" && kill -KILL "$pid" 2>/dev/null
	done <"$TRACKED_PIDS"
	rm -f "$TRACKED_PIDS"
}

cleanup() {
	set +e
	stop_tracked
	if [ "$CLUSTER_STARTED" = 1 ] && [ "$CLUSTER_WAS_RUNNING" = 0 ] && [ "$CHART_KEEP_CLUSTER" != 1 ]; then
		say "stopping the control plane this run started (CHART_KEEP_CLUSTER=1 keeps it)"
		"$CLUSTER_SCRIPTS/down.sh" 8>&- | sed 's/^/  /'
	elif [ "$SETUP_DONE" = 1 ]; then
		say "leaving the control plane running ($ADMIN_KCFG); removing this run's release and objects"
		remove_leftovers
	fi
}

on_exit() {
	local rc=$?
	[ "$FINISHED" = 1 ] && return
	cleanup
	if [ "$SETUP_DONE" = 1 ]; then echo "FAIL run aborted (exit $rc)"; else echo "FAIL setup (exit $rc; see above)"; fi
	echo "$PASSED passed, $((FAILED + 1)) failed, $SKIPPED skipped"
	exit 1
}
trap on_exit EXIT
trap 'echo "interrupted"; exit 130' INT TERM

# install_pkg CMD PKG: apt-get install PKG when CMD is missing (root only).
install_pkg() {
	command -v "$1" >/dev/null && return 0
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		say "installing $2 with apt-get"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$2" >/dev/null 2>&1 ||
			{ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$2" >/dev/null; } ||
			die "apt-get install $2 failed"
	else
		die "$1 not found: apt-get install $2"
	fi
}

# remove_leftovers: this chart's release and cluster-scoped objects, and the
# objects of earlier runs' namespaces (namespaces never finish deleting here:
# no controller-manager), so a reused control plane starts clean.
remove_leftovers() {
	local ns r
	for ns in $(helmc list -A -q -a --filter "^$RELEASE\$" -o json 2>/dev/null | jq -r '.[].namespace'); do
		helmc uninstall "$RELEASE" -n "$ns" --timeout 60s >/dev/null 2>&1
	done
	kc delete validatingwebhookconfiguration,mutatingwebhookconfiguration "$WEBHOOK_NAME" other-webhooks \
		--ignore-not-found >/dev/null 2>&1
	kc delete clusterrole,clusterrolebinding -l "app.kubernetes.io/name=inference-operator,app.kubernetes.io/managed-by=Helm" \
		--ignore-not-found >/dev/null 2>&1
	for ns in $(kc get isvc,deploy,svc -A --ignore-not-found \
		-o jsonpath='{range .items[*]}{.metadata.namespace}{"\n"}{end}' 2>/dev/null | sort -u | grep '^ioc-'); do
		kc delete namespace "$ns" --wait=false >/dev/null 2>&1
		for r in "/apis/ai.example.com/v1/namespaces/$ns/inferenceservices" \
			"/apis/apps/v1/namespaces/$ns/deployments" "/api/v1/namespaces/$ns/services"; do
			kc delete --raw "$r" >/dev/null 2>&1
		done
	done
}

setup() {
	mkdir -p "$WORK" "$CLUSTER_DIR" || die "cannot create $WORK"
	CLUSTER_DIR="$(cd "$CLUSTER_DIR" && pwd)"
	[ -x "$IO_BIN" ] || die "IO_BIN=$IO_BIN is not an executable (run make)"
	# A snapshot: a rebuild during the run must not change the binary under test.
	mkdir -p "$WORK/bin" && cp -f "$IO_BIN" "$WORK/bin/inference-operator.tmp" &&
		mv -f "$WORK/bin/inference-operator.tmp" "$WORK/bin/inference-operator" || die "copy $IO_BIN"
	say "binary under test: $IO_BIN (copied to $WORK/bin/inference-operator)"
	IO_BIN="$WORK/bin/inference-operator"
	export IO_BIN
	install_pkg jq jq
	install_pkg curl curl
	install_pkg openssl openssl
	install_pkg umoci umoci
	rm -rf "$WORK/passed" "$WORK/tests" "$WORK/empty-home"

	# Helm keeps its state under the work dir, not in ~/.config or ~/.cache.
	export HELM_CACHE_HOME="$WORK/helm/cache" HELM_CONFIG_HOME="$WORK/helm/config" HELM_DATA_HOME="$WORK/helm/data"
	HELM="$("$CLUSTER_SCRIPTS/helm.sh")" || die "tests/cluster/helm.sh could not build helm"
	say "helm: $HELM ($("$HELM" version --template '{{.Version}} {{.GoVersion}}'))"

	# One run per control plane at a time. fd 8 is closed for what starts below.
	exec 8>"$CLUSTER_DIR/.chart.lock"
	if ! flock -n 8; then
		say "another run holds $CLUSTER_DIR/.chart.lock; waiting (up to 15 min)"
		flock -w 900 8 || die "timed out waiting for $CLUSTER_DIR/.chart.lock"
	fi
	say "control plane: tests/cluster/up.sh (CLUSTER_DIR=$CLUSTER_DIR)"
	"$CLUSTER_SCRIPTS/up.sh" 8>&- 2>&1 | tee "$WORK/up.log" | sed 's/^/  /'
	local rc="${PIPESTATUS[0]}"
	CLUSTER_STARTED=1
	[ "$rc" = 0 ] || die "tests/cluster/up.sh failed (exit $rc)"
	grep -q "already running: " "$WORK/up.log" && CLUSTER_WAS_RUNNING=1
	# shellcheck disable=SC1091
	APISERVER_PORT="$(. "$CLUSTER_DIR/state.env" && echo "$APISERVER_PORT")"
	CLUSTER_CA="$(. "$CLUSTER_DIR/state.env" && echo "$CA_CERT")"
	ADMIN_KCFG="$CLUSTER_DIR/kubeconfig"
	[ -n "$APISERVER_PORT" ] && [ -s "$CLUSTER_CA" ] || die "no API server port or CA in $CLUSTER_DIR/state.env"
	# kubectl/helm get --kubeconfig explicitly; the operators run without it.
	export KUBECONFIG="$ADMIN_KCFG"
	# shellcheck source=../cluster/env.sh
	. "$CLUSTER_SCRIPTS/env.sh"
	[ -n "$KUBECTL" ] || die "no kubectl (tests/cluster/build.sh builds one)"
	SETUP_DONE=1

	stop_tracked
	remove_leftovers
	kc apply -f "$CT_SRC/cert-manager-crds.yaml" >/dev/null || die "installing the cert-manager stand-in CRDs"
	kc wait --for=condition=Established --timeout=60s crd/issuers.cert-manager.io crd/certificates.cert-manager.io \
		>/dev/null || die "cert-manager stand-in CRDs not Established"
	io_certs "$TEST_CERTS" || die "certificates"

	# Sanitized builds are always dynamic; ldd fails (exit 1, "not a dynamic
	# executable") on the default static PIE, which is then not sanitized.
	SANITIZED=0
	local ldd_out
	ldd_out="$(ldd "$IO_BIN" 2>/dev/null)" || ldd_out=""
	if grep -q -E 'lib(asan|ubsan|tsan)' <<<"$ldd_out"; then SANITIZED=1; fi
	SERVE_HELP="$("$IO_BIN" serve --help 2>&1)"
	say "binary: $IO_BIN ($("$IO_BIN" --version)); sanitized: $SANITIZED"
}

run_test() {
	local name="$1" rc t0 dur
	TDIR="$WORK/tests/$name"
	rm -rf "$TDIR"
	mkdir -p "$TDIR"
	t0="$(now_ns)"
	("test_$name") >"$TDIR/log" 2>&1
	rc=$?
	dur="$(since "$t0")s"
	if [ "$rc" = 0 ]; then
		PASSED=$((PASSED + 1))
		passed_mark "$name"
		echo "PASS $name ($dur)"
		[ ! -s "$TDIR/note" ] || sed 's/^/     /' "$TDIR/note"
	elif [ "$rc" = 3 ] && [ -s "$TDIR/pending" ]; then
		SKIPPED=$((SKIPPED + 1))
		echo "PENDING $name: $(cat "$TDIR/pending")"
	else
		FAILED=$((FAILED + 1))
		echo "FAIL $name ($dur; log $TDIR/log)"
		sed 's/^/    /' "$TDIR/log"
	fi
}

setup
RUN_ID="$(date +%s)"
NS="ioc-$RUN_ID" # the release namespace (InferenceServices are created here too)
SVC_DNS="$RELEASE.$NS.svc"
export NS SVC_DNS
say "release $RELEASE in namespace $NS"
TESTS_START=$SECONDS
for t in "${TESTS[@]}"; do
	if [ -n "$CHART_ONLY" ] && ! [[ "$t" =~ $CHART_ONLY ]]; then
		continue
	fi
	run_test "$t"
done
TESTS_SECONDS=$((SECONDS - TESTS_START))
FINISHED=1
cleanup
say "tests ${TESTS_SECONDS}s, total $((SECONDS - RUN_START))s"
echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
[ "$FAILED" = 0 ]
