#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Start a local test control plane on 127.0.0.1 only.
#   CLUSTER_MODE=plain (default): etcd + kube-apiserver; no kubelet, scheduler
#     or controller-manager (see README.md).
#   CLUSTER_MODE=gpu: a simulated GPU cluster: also kube-scheduler and
#     kube-controller-manager (same k8s.io/kubernetes build, their own client
#     certificates and RBAC identities, leader election off) and nodesim,
#     which registers the nodes of CLUSTER_PROFILE (default
#     profiles/gpu-pool.yaml) and plays their kubelets (gpu.sh).
#
# Debian packages needed (apt-get install -y ...): openssl curl util-linux
# (flock, setsid) coreutils; plus Go >= 1.26 for build.sh. up.sh installs
# openssl/curl with apt-get when they are missing and it runs as root.
#
# Writes to $CLUSTER_DIR (default <repo>/build/cluster):
#   kubeconfig       admin (O=system:masters) kubeconfig, certificates inline
#   state.env        PIDs, ports, binaries, temp dir, cert paths (shell-sourceable)
#   etcd.log, kube-apiserver.log (gpu: also kube-scheduler.log,
#   kube-controller-manager.log, nodesim.log)
# Reuses a running control plane only if state.env's PIDs are really this
# CLUSTER_DIR's etcd/kube-apiserver and /readyz answers; anything else that
# state.env records is stopped and cleaned before starting afresh.
#
# A running cluster of another mode or profile is stopped and replaced.
#
# Env: CLUSTER_DIR, CLUSTER_MODE, CLUSTER_PROFILE, READY_TIMEOUT (s, default
# 120), NODESIM_ARGS (extra nodesim flags, e.g. "--ready-delay=5s"),
# IO_APISERVER_PROFILING=true (kube-apiserver's /debug/pprof, for finding
# where the API server spends its CPU in a benchmark), plus build.sh's.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$SCRIPT_DIR/lib.sh"

READY_TIMEOUT="${READY_TIMEOUT:-120}"

need_tools() {
	local missing=() t
	for t in openssl curl flock setsid; do command -v "$t" >/dev/null || missing+=("$t"); done
	[ ${#missing[@]} -eq 0 ] && return 0
	local pkgs=()
	for t in "${missing[@]}"; do
		case "$t" in openssl) pkgs+=(openssl) ;; curl) pkgs+=(curl) ;; *) pkgs+=(util-linux) ;; esac
	done
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		log "installing ${pkgs[*]} with apt-get"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${pkgs[@]}" >/dev/null ||
			{ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${pkgs[@]}" >/dev/null; } ||
			die "apt-get install ${pkgs[*]} failed"
	else
		die "missing ${missing[*]}: apt-get install ${pkgs[*]}"
	fi
}
need_tools

take_lock

# --- reuse a healthy control plane, or clean up a stale one --------------------
if load_state; then
	marker="${CLUSTER_TMP_DIR:+$CLUSTER_TMP_DIR/}"
	want_profile=""
	[ "$CLUSTER_MODE" = gpu ] && want_profile="$(cd "$(dirname "$CLUSTER_PROFILE")" 2>/dev/null && pwd)/$(basename "$CLUSTER_PROFILE")"
	if [ "${STATE_MODE:-plain}" != "$CLUSTER_MODE" ] || [ "$STATE_PROFILE" != "$want_profile" ]; then
		log "the running cluster is mode ${STATE_MODE:-plain}${STATE_PROFILE:+ ($STATE_PROFILE)}, asked for $CLUSTER_MODE${want_profile:+ ($want_profile)}: replacing it"
	elif pid_is_ours "$ETCD_PID" "$ETCD_BIN" "$marker" &&
		pid_is_ours "$APISERVER_PID" "$APISERVER_BIN" "$marker" &&
		readyz && [ -f "$KUBECONFIG_FILE" ] &&
		{ [ "$CLUSTER_MODE" = plain ] || gpu_parts_ours; }; then
		log "already running ($CLUSTER_MODE): https://127.0.0.1:$APISERVER_PORT (etcd pid $ETCD_PID, kube-apiserver pid $APISERVER_PID)"
		log "kubeconfig: $KUBECONFIG_FILE"
		exit 0
	else
		log "stale or half-started control plane recorded in $STATE_FILE: stopping and cleaning it"
	fi
	stop_recorded 5
else
	rm -f "$KUBECONFIG_FILE"
fi

# --- binaries ----------------------------------------------------------------------
# Build as a separate process (its own lock; it must not inherit ours).
if [ "$CLUSTER_MODE" = gpu ]; then
	[ -r "$CLUSTER_PROFILE" ] || die "CLUSTER_PROFILE $CLUSTER_PROFILE is not a readable file"
	CLUSTER_PROFILE="$(cd "$(dirname "$CLUSTER_PROFILE")" && pwd)/$(basename "$CLUSTER_PROFILE")"
	export K8S_TOOLS="${K8S_TOOLS:-kube-apiserver kubectl kube-scheduler kube-controller-manager}"
	for t in kube-apiserver kube-scheduler kube-controller-manager; do
		[[ " $K8S_TOOLS " == *" $t "* ]] || die "CLUSTER_MODE=gpu needs $t in K8S_TOOLS ($K8S_TOOLS)"
	done
fi
"$SCRIPT_DIR/build.sh" 9>&-
ETCD_BIN="$CONTROLPLANE_CACHE_DIR/etcd"
APISERVER_BIN="$CONTROLPLANE_CACHE_DIR/kube-apiserver"
if [ ! -x "$ETCD_BIN" ] || [ ! -x "$APISERVER_BIN" ]; then
	die "build.sh left no binaries in $CONTROLPLANE_CACHE_DIR"
fi
STATE_MODE="$CLUSTER_MODE" STATE_PROFILE=""
SCHEDULER_BIN="" KCM_BIN="" NODESIM_BIN=""
if [ "$CLUSTER_MODE" = gpu ]; then
	STATE_PROFILE="$CLUSTER_PROFILE"
	SCHEDULER_BIN="$CONTROLPLANE_CACHE_DIR/kube-scheduler"
	KCM_BIN="$CONTROLPLANE_CACHE_DIR/kube-controller-manager"
	NODESIM_BIN="$("$SCRIPT_DIR/nodesim/build.sh" 9>&-)" || die "building the node simulator failed"
	for b in "$SCHEDULER_BIN" "$KCM_BIN" "$NODESIM_BIN"; do
		[ -x "$b" ] || die "no $b after the build"
	done
fi

# --- free loopback ports -----------------------------------------------------------
# Random ports below the usual ephemeral range (32768+), so outgoing
# connections cannot already hold them; skip any port in use. free_port runs in
# a $(...) subshell, so the caller appends each pick to CHOSEN_PORTS.
CHOSEN_PORTS=" "
port_busy() {
	if command -v ss >/dev/null; then
		[ -n "$(ss -Htan "sport = :$1" 2>/dev/null)" ] && return 0
	fi
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
free_port() {
	local i p
	for ((i = 0; i < 200; i++)); do
		p=$((20000 + RANDOM % 12000))
		case "$CHOSEN_PORTS" in *" $p "*) continue ;; esac
		port_busy "$p" && continue
		echo "$p"
		return 0
	done
	die "no free loopback port found in 200 tries"
}

# --- state -------------------------------------------------------------------------
CLUSTER_TMP_DIR="$(mktemp -d "${TMPDIR:-/tmp}/${TMP_PREFIX}XXXXXX")"
PKI="$CLUSTER_TMP_DIR/pki"
mkdir -p "$PKI" "$CLUSTER_TMP_DIR/etcd" "$CLUSTER_TMP_DIR/apiserver"
chmod 700 "$CLUSTER_TMP_DIR"
ETCD_CLIENT_PORT="$(free_port)"
CHOSEN_PORTS+="$ETCD_CLIENT_PORT "
ETCD_PEER_PORT="$(free_port)"
CHOSEN_PORTS+="$ETCD_PEER_PORT "
APISERVER_PORT="$(free_port)"
CHOSEN_PORTS+="$APISERVER_PORT "
SCHEDULER_PORT="" KCM_PORT=""
if [ "$CLUSTER_MODE" = gpu ]; then
	SCHEDULER_PORT="$(free_port)"
	CHOSEN_PORTS+="$SCHEDULER_PORT "
	KCM_PORT="$(free_port)"
	CHOSEN_PORTS+="$KCM_PORT "
fi
ETCD_PID="" APISERVER_PID="" SCHEDULER_PID="" KCM_PID="" NODESIM_PID=""
CA_CERT="$PKI/ca.crt" ADMIN_CERT="$PKI/admin.crt" ADMIN_KEY="$PKI/admin.key"

# Written at every step, so a failed or interrupted up.sh leaves a state.env
# that the next up.sh (or down.sh) can clean up.
write_state() {
	local v tmp="$STATE_FILE.tmp"
	{
		echo "# written by tests/cluster/up.sh; read by down.sh"
		for v in K8S_VERSION ETCD_VERSION CLUSTER_TMP_DIR ETCD_BIN ETCD_PID ETCD_CLIENT_PORT \
			ETCD_PEER_PORT APISERVER_BIN APISERVER_PID APISERVER_PORT APISERVER_URL \
			CA_CERT ADMIN_CERT ADMIN_KEY KUBECONFIG_FILE STATE_MODE STATE_PROFILE \
			SCHEDULER_BIN SCHEDULER_PID SCHEDULER_PORT KCM_BIN KCM_PID KCM_PORT NODESIM_BIN NODESIM_PID; do
			printf '%s=%q\n' "$v" "${!v}"
		done
	} >"$tmp"
	mv -f "$tmp" "$STATE_FILE"
}
APISERVER_URL="https://127.0.0.1:$APISERVER_PORT"
write_state

# On failure: print the log tail, stop what we started, keep the logs.
on_exit() {
	local rc=$?
	[ "$rc" = 0 ] && return 0
	echo "[up.sh] failed (exit $rc); stopping what was started. Logs: $CLUSTER_DIR/*.log" >&2
	stop_recorded 5 || true
	exit "$rc"
}
trap on_exit EXIT

# --- PKI (openssl) -----------------------------------------------------------------
log "generating CA, serving, admin and service-account keys in $PKI"
gen() { openssl "$@" >>"$PKI/openssl.log" 2>&1 || { cat "$PKI/openssl.log" >&2; die "openssl $1 failed"; }; }
ec_key() { gen genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }
ec_key "$PKI/ca.key"
gen req -x509 -new -key "$PKI/ca.key" -sha256 -days 3650 -subj "/CN=inference-operator-test-ca" \
	-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
	-out "$CA_CERT"
# sign NAME SUBJ EXT: key + certificate signed by the CA
sign() {
	ec_key "$PKI/$1.key"
	gen req -new -key "$PKI/$1.key" -subj "$2" -out "$PKI/$1.csr"
	printf '%s\n' "$3" >"$PKI/$1.ext"
	gen x509 -req -in "$PKI/$1.csr" -CA "$CA_CERT" -CAkey "$PKI/ca.key" -CAcreateserial \
		-sha256 -days 3650 -extfile "$PKI/$1.ext" -out "$PKI/$1.crt"
}
sign apiserver "/CN=kube-apiserver" "$(printf '%s\n' \
	"basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
	"extendedKeyUsage=serverAuth" \
	"subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local")"
sign admin "/O=system:masters/CN=admin" "$(printf '%s\n' \
	"basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
	"extendedKeyUsage=clientAuth")"
gen genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$PKI/sa.key"
gen pkey -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub"

# start NAME LOG BIN ARGS...: start detached (own session, stdin closed, our lock
# fd closed) and print the daemon's PID. The child writes its own PID before
# exec, so it is right even if setsid has to fork.
start() {
	local name="$1" logf="$2" pidf="$CLUSTER_TMP_DIR/$1.pid" i
	shift 2
	: >"$pidf"
	# shellcheck disable=SC2016 # $$, $0 and $@ are for the child bash
	setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidf" "$@" </dev/null >>"$logf" 2>&1 9>&- &
	for ((i = 0; i < 50; i++)); do
		[ -s "$pidf" ] && { cat "$pidf"; return 0; }
		sleep 0.1
	done
	die "$name did not start (no pid after 5 s); see $logf"
}

# wait_for NAME PID LOG TIMEOUT CHECK...: until CHECK succeeds; fail at once if
# the process dies, and after TIMEOUT seconds.
wait_for() {
	local name="$1" pid="$2" logf="$3" timeout="$4" deadline i
	shift 4
	deadline=$((SECONDS + timeout))
	for ((i = 0; i < timeout * 4; i++)); do
		"$@" && return 0
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "----- last 30 lines of $logf -----" >&2
			tail -n 30 "$logf" >&2
			die "$name (pid $pid) exited before becoming ready"
		fi
		[ "$SECONDS" -ge "$deadline" ] && break
		sleep 0.25
	done
	echo "----- last 30 lines of $logf -----" >&2
	tail -n 30 "$logf" >&2
	die "$name not ready after ${timeout} s"
}

# --- etcd --------------------------------------------------------------------------
ETCD_LOG="$CLUSTER_DIR/etcd.log"
APISERVER_LOG="$CLUSTER_DIR/kube-apiserver.log"
echo "===== $(date -Is) up.sh: etcd $ETCD_VERSION on 127.0.0.1:$ETCD_CLIENT_PORT =====" >>"$ETCD_LOG"
ETCD_PID="$(start etcd "$ETCD_LOG" "$ETCD_BIN" \
	--name=default \
	--data-dir="$CLUSTER_TMP_DIR/etcd/data" \
	--listen-client-urls="http://127.0.0.1:$ETCD_CLIENT_PORT" \
	--advertise-client-urls="http://127.0.0.1:$ETCD_CLIENT_PORT" \
	--listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
	--initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
	--initial-cluster="default=http://127.0.0.1:$ETCD_PEER_PORT" \
	--initial-cluster-state=new \
	--unsafe-no-fsync=true \
	--quota-backend-bytes=$((2 * 1024 * 1024 * 1024)))"
write_state
log "etcd pid $ETCD_PID, client port $ETCD_CLIENT_PORT, peer port $ETCD_PEER_PORT; waiting for /health"
etcd_healthy() {
	curl -sS --max-time 2 "http://127.0.0.1:$ETCD_CLIENT_PORT/health" 2>/dev/null | grep -q '"health":"true"'
}
wait_for etcd "$ETCD_PID" "$ETCD_LOG" 30 etcd_healthy

# --- kube-apiserver ----------------------------------------------------------------
# Flags modelled on controller-runtime's envtest. Admission: the default plugin
# set (includes MutatingAdmissionWebhook and ValidatingAdmissionWebhook); none
# disabled. Webhooks given as clientConfig.url reach 127.0.0.1 directly.
echo "===== $(date -Is) up.sh: kube-apiserver $K8S_VERSION on 127.0.0.1:$APISERVER_PORT =====" >>"$APISERVER_LOG"
APISERVER_PID="$(start kube-apiserver "$APISERVER_LOG" "$APISERVER_BIN" \
	--etcd-servers="http://127.0.0.1:$ETCD_CLIENT_PORT" \
	--bind-address=127.0.0.1 \
	--advertise-address=127.0.0.1 \
	--secure-port="$APISERVER_PORT" \
	--cert-dir="$CLUSTER_TMP_DIR/apiserver" \
	--tls-cert-file="$PKI/apiserver.crt" \
	--tls-private-key-file="$PKI/apiserver.key" \
	--client-ca-file="$CA_CERT" \
	--authorization-mode=RBAC \
	--service-cluster-ip-range=10.0.0.0/16 \
	--allow-privileged=true \
	--service-account-issuer=https://kubernetes.default.svc.cluster.local \
	--service-account-key-file="$PKI/sa.pub" \
	--service-account-signing-key-file="$PKI/sa.key" \
	--endpoint-reconciler-type=none \
	--profiling=${IO_APISERVER_PROFILING:-false})"
write_state
log "kube-apiserver pid $APISERVER_PID on $APISERVER_URL; waiting for /readyz (up to ${READY_TIMEOUT} s)"
wait_for kube-apiserver "$APISERVER_PID" "$APISERVER_LOG" "$READY_TIMEOUT" readyz

# --- kubeconfig --------------------------------------------------------------------
b64() { base64 -w0 <"$1"; }
# write_kubeconfig FILE USER CERT KEY: a kubeconfig for one client certificate.
write_kubeconfig() {
	(
		umask 077
		cat >"$1.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: inference-operator-test
  cluster:
    server: $APISERVER_URL
    certificate-authority-data: $(b64 "$CA_CERT")
users:
- name: $2
  user:
    client-certificate-data: $(b64 "$3")
    client-key-data: $(b64 "$4")
contexts:
- name: inference-operator-test
  context:
    cluster: inference-operator-test
    user: $2
current-context: inference-operator-test
EOF
	) && mv -f "$1.tmp" "$1"
}
write_kubeconfig "$KUBECONFIG_FILE" admin "$ADMIN_CERT" "$ADMIN_KEY" || die "writing $KUBECONFIG_FILE failed"
write_state

if [ "$CLUSTER_MODE" = gpu ]; then
	# shellcheck source=gpu.sh
	. "$SCRIPT_DIR/gpu.sh"
	start_gpu_parts
fi

log "control plane ready: $APISERVER_URL (k8s $K8S_VERSION, etcd $ETCD_VERSION)"
log "kubeconfig: $KUBECONFIG_FILE"
log "state: $STATE_FILE; logs: $CLUSTER_DIR/*.log; stop with $SCRIPT_DIR/down.sh"
