# shellcheck shell=bash
# shellcheck source-path=SCRIPTDIR
# Shared by up.sh and down.sh (sourced, not run). Expects SCRIPT_DIR set.

# shellcheck source=versions.env
. "$SCRIPT_DIR/versions.env"

REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
CLUSTER_DIR="${CLUSTER_DIR:-$REPO_ROOT/build/cluster}"
mkdir -p "$CLUSTER_DIR"
CLUSTER_DIR="$(cd "$CLUSTER_DIR" && pwd)"
STATE_FILE="$CLUSTER_DIR/state.env"
KUBECONFIG_FILE="$CLUSTER_DIR/kubeconfig"
# Temp dirs made by up.sh are named like this; cleanup removes nothing else.
TMP_PREFIX="inference-operator-cluster."
# CLUSTER_MODE=plain: etcd + kube-apiserver only (fast; most tests).
# CLUSTER_MODE=gpu: plus kube-scheduler, kube-controller-manager and the node
# simulator running the GPU pool of CLUSTER_PROFILE (see README.md).
CLUSTER_MODE="${CLUSTER_MODE:-plain}"
case "$CLUSTER_MODE" in plain | gpu) ;; *)
	echo "[$(basename "$0")] ERROR: CLUSTER_MODE must be plain or gpu, not '$CLUSTER_MODE'" >&2
	exit 2
	;;
esac
CLUSTER_PROFILE="${CLUSTER_PROFILE:-$SCRIPT_DIR/profiles/gpu-pool.yaml}"

log() { echo "[$(basename "$0") $(date +%H:%M:%S)] $*"; }
die() { echo "[$(basename "$0")] ERROR: $*" >&2; exit 1; }

# Serialise up.sh/down.sh on one CLUSTER_DIR. fd 9 must not leak into the
# daemons (up.sh closes it when starting them).
take_lock() {
	exec 9>"$CLUSTER_DIR/.lock"
	flock -w 300 9 || die "another up.sh/down.sh holds $CLUSTER_DIR/.lock (waited 300 s)"
}

# Clear the variables that state.env sets, then load it if present.
load_state() {
	CLUSTER_TMP_DIR="" ETCD_PID="" ETCD_BIN="" APISERVER_PID="" APISERVER_BIN=""
	APISERVER_PORT="" CA_CERT="" ADMIN_CERT="" ADMIN_KEY=""
	STATE_MODE="" STATE_PROFILE="" SCHEDULER_PID="" SCHEDULER_BIN="" SCHEDULER_PORT=""
	KCM_PID="" KCM_BIN="" KCM_PORT="" NODESIM_PID="" NODESIM_BIN=""
	[ -f "$STATE_FILE" ] || return 1
	# shellcheck disable=SC1090
	. "$STATE_FILE"
}

# pid_is_ours PID BIN MARKER: PID is alive, runs BIN (argv[0]) and has an
# argument containing MARKER (our temp dir), so a reused PID is never touched.
pid_is_ours() {
	local pid="$1" bin="$2" marker="$3" argv0 args
	[[ "$pid" =~ ^[0-9]+$ ]] && [ -n "$bin" ] && [ -n "$marker" ] || return 1
	[ -r "/proc/$pid/cmdline" ] || return 1
	args="$(tr '\0' '\n' 2>/dev/null <"/proc/$pid/cmdline")" || return 1
	argv0="$(head -n 1 <<<"$args")"
	[ "$argv0" = "$bin" ] || return 1
	grep -qF -- "$marker" <<<"$args"
}

# component_healthy PORT: a kube-scheduler / kube-controller-manager secure
# port answers /healthz with "ok" (self-signed serving certificate).
component_healthy() {
	[ -n "$1" ] && [ "$(curl -sSk --max-time 5 "https://127.0.0.1:$1/healthz" 2>/dev/null)" = ok ]
}

# gpu_parts_ours: the recorded scheduler, controller-manager and node
# simulator all run and are this cluster's.
gpu_parts_ours() {
	local marker="${CLUSTER_TMP_DIR:+$CLUSTER_TMP_DIR/}"
	pid_is_ours "$SCHEDULER_PID" "$SCHEDULER_BIN" "$marker" &&
		pid_is_ours "$KCM_PID" "$KCM_BIN" "$marker" &&
		pid_is_ours "$NODESIM_PID" "$NODESIM_BIN" "$marker" &&
		component_healthy "$SCHEDULER_PORT" && component_healthy "$KCM_PORT"
}

# readyz: the apiserver recorded in the state answers /readyz with "ok".
readyz() {
	[ -n "$APISERVER_PORT" ] && [ -f "$CA_CERT" ] && [ -f "$ADMIN_CERT" ] || return 1
	[ "$(curl -sS --max-time 5 --cacert "$CA_CERT" --cert "$ADMIN_CERT" --key "$ADMIN_KEY" \
		"https://127.0.0.1:$APISERVER_PORT/readyz" 2>/dev/null)" = ok ]
}

# stop_pid NAME PID BIN MARKER GRACE: SIGTERM, wait up to GRACE s, then SIGKILL.
stop_pid() {
	local name="$1" pid="$2" bin="$3" marker="$4" grace="$5" i
	if ! pid_is_ours "$pid" "$bin" "$marker"; then
		[ -n "$pid" ] && log "$name (pid $pid) not running (or not ours): nothing to stop"
		return 0
	fi
	log "stopping $name (pid $pid)"
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < grace * 5; i++)); do
		pid_is_ours "$pid" "$bin" "$marker" || return 0
		sleep 0.2
	done
	log "$name (pid $pid) still up after $grace s: SIGKILL"
	kill -KILL "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		pid_is_ours "$pid" "$bin" "$marker" || return 0
		sleep 0.1
	done
	die "$name (pid $pid) survived SIGKILL"
}

# stop_recorded [GRACE]: stop whatever state.env records (SIGTERM, GRACE s,
# default 20, then SIGKILL) and remove its temp dir, state and kubeconfig.
# Logs are kept. With etcd gone, kube-apiserver's graceful shutdown hangs, so
# it then gets at most 5 s (as does everything when up.sh cleans a stale one).
stop_recorded() {
	local grace="${1:-20}"
	if ! load_state; then
		rm -f "$KUBECONFIG_FILE"
		return 0
	fi
	local marker="${CLUSTER_TMP_DIR:+$CLUSTER_TMP_DIR/}"
	local api_grace="$grace"
	if [ "$api_grace" -gt 5 ] && ! pid_is_ours "$ETCD_PID" "$ETCD_BIN" "$marker"; then
		api_grace=5 # etcd is gone: kube-apiserver would not shut down gracefully
	fi
	# The clients first: the simulator, scheduler and controller-manager
	# would only log errors once the API server is gone.
	stop_pid nodesim "$NODESIM_PID" "$NODESIM_BIN" "$marker" "$grace"
	stop_pid kube-scheduler "$SCHEDULER_PID" "$SCHEDULER_BIN" "$marker" "$grace"
	stop_pid kube-controller-manager "$KCM_PID" "$KCM_BIN" "$marker" "$grace"
	stop_pid kube-apiserver "$APISERVER_PID" "$APISERVER_BIN" "$marker" "$api_grace"
	stop_pid etcd "$ETCD_PID" "$ETCD_BIN" "$marker" "$grace"
	case "$(basename "$CLUSTER_TMP_DIR")" in
	"$TMP_PREFIX"*) [ -d "$CLUSTER_TMP_DIR" ] && rm -rf -- "$CLUSTER_TMP_DIR" ;;
	esac
	rm -f "$STATE_FILE" "$KUBECONFIG_FILE"
}
