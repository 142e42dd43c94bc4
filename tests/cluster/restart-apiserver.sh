#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Crash and restart the kube-apiserver of a running local control plane
# (up.sh's $CLUSTER_DIR, default <repo>/build/cluster); etcd keeps running, so
# every object survives. For tests of clients that must ride out an API
# server outage (watches, retries).
#
#   tests/cluster/restart-apiserver.sh [--down-for SECONDS | SECONDS]
#
# 1. SIGKILL the kube-apiserver PID recorded in state.env (only if it still
#    runs the recorded binary with this cluster's temp dir); print
#    "... killed at <UTC time, ms>" at once (callers running this in the
#    background wait for that line);
# 2. stay down SECONDS (default 1; fractions allowed), so clients see
#    refused connections;
# 3. start the same binary with exactly the arguments it had (read from
#    /proc/PID/cmdline before the kill: same port, certificates, etcd), in its
#    own session, output appended to kube-apiserver.log;
# 4. record the new PID in state.env and wait for /readyz (READY_TIMEOUT s,
#    default 60).
# Prints two lines: the kill (with its UTC time, ms, in the operator's log
# format: 2026-01-02T03:04:05.678Z) and the restart (old and new PID, the UTC
# time /readyz answered, how long the API server was gone).
# Exit non-zero (with the log tail) if the API server does not come back.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$SCRIPT_DIR/lib.sh"

usage() {
	echo "usage: $(basename "$0") [--down-for SECONDS | SECONDS]   (default 1 s down)" >&2
	exit 2
}
DOWN_SECONDS=1
while [ "$#" -gt 0 ]; do
	case "$1" in
	--down-for)
		[ "$#" -ge 2 ] || usage
		DOWN_SECONDS="$2"
		shift 2
		;;
	--down-for=*)
		DOWN_SECONDS="${1#--down-for=}"
		shift
		;;
	-h | --help | -*) usage ;;
	*)
		DOWN_SECONDS="$1" # the original positional form
		shift
		;;
	esac
done
READY_TIMEOUT="${READY_TIMEOUT:-60}"
[[ "$DOWN_SECONDS" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "the down time must be a number of seconds (got '$DOWN_SECONDS')"

utc_ms() { date -u +%Y-%m-%dT%H:%M:%S.%3NZ; }

take_lock
load_state || die "no control plane recorded in $STATE_FILE (run up.sh)"
marker="${CLUSTER_TMP_DIR:+$CLUSTER_TMP_DIR/}"
pid_is_ours "$APISERVER_PID" "$APISERVER_BIN" "$marker" ||
	die "kube-apiserver pid '$APISERVER_PID' recorded in $STATE_FILE is not running (or not ours)"
pid_is_ours "$ETCD_PID" "$ETCD_BIN" "$marker" ||
	die "etcd pid '$ETCD_PID' recorded in $STATE_FILE is not running (or not ours)"

# The exact argv (NUL-separated), taken before the kill.
mapfile -d '' -t argv <"/proc/$APISERVER_PID/cmdline"
if [ "${#argv[@]}" -le 1 ] || [ "${argv[0]}" != "$APISERVER_BIN" ]; then
	die "could not read the arguments of pid $APISERVER_PID"
fi

old_pid="$APISERVER_PID"
t0="$(date +%s%N)"
kill -KILL "$old_pid"
for ((i = 0; i < 100; i++)); do
	pid_is_ours "$old_pid" "$APISERVER_BIN" "$marker" || break
	sleep 0.05
done
pid_is_ours "$old_pid" "$APISERVER_BIN" "$marker" && die "kube-apiserver (pid $old_pid) survived SIGKILL"
log "kube-apiserver pid $old_pid killed at $(utc_ms) (SIGKILL); down for $DOWN_SECONDS s"
# Anything that calls the API server now gets "connection refused".
sleep "$DOWN_SECONDS"

APISERVER_LOG="$CLUSTER_DIR/kube-apiserver.log"
echo "===== $(date -Is) restart-apiserver.sh: pid $old_pid killed (SIGKILL); restarting on 127.0.0.1:$APISERVER_PORT =====" >>"$APISERVER_LOG"
pidf="$CLUSTER_TMP_DIR/kube-apiserver.pid"
: >"$pidf"
# As up.sh starts it: own session, stdin closed, no inherited lock fds (8: the
# e2e lock, 9: ours). The child writes its own PID before exec.
# shellcheck disable=SC2016 # $$, $0 and $@ are for the child bash
setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidf" "${argv[@]}" </dev/null >>"$APISERVER_LOG" 2>&1 8>&- 9>&- &
new_pid=""
for ((i = 0; i < 50; i++)); do
	[ -s "$pidf" ] && { new_pid="$(cat "$pidf")"; break; }
	sleep 0.1
done
[ -n "$new_pid" ] || die "kube-apiserver did not start (no pid after 5 s); see $APISERVER_LOG"

# Record the new PID (state.env is shell-sourceable: rewrite that one line).
tmp="$STATE_FILE.tmp"
sed "s/^APISERVER_PID=.*/APISERVER_PID=$new_pid/" "$STATE_FILE" >"$tmp"
mv -f "$tmp" "$STATE_FILE"
APISERVER_PID="$new_pid"

deadline=$((SECONDS + READY_TIMEOUT))
until readyz; do
	if ! kill -0 "$new_pid" 2>/dev/null; then
		echo "----- last 30 lines of $APISERVER_LOG -----" >&2
		tail -n 30 "$APISERVER_LOG" >&2
		die "kube-apiserver (pid $new_pid) exited before becoming ready"
	fi
	if [ "$SECONDS" -ge "$deadline" ]; then
		echo "----- last 30 lines of $APISERVER_LOG -----" >&2
		tail -n 30 "$APISERVER_LOG" >&2
		die "kube-apiserver (pid $new_pid) not ready after $READY_TIMEOUT s"
	fi
	sleep 0.1
done
t1="$(date +%s%N)"
log "kube-apiserver restarted: pid $old_pid killed, pid $new_pid ready at $(utc_ms) on $APISERVER_URL after $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) / 1e9 }') s down"
