#!/usr/bin/env bash
# tests/kube/resolve.sh — the shipped binary reaches the real API server
# through a host name that only getaddrinfo can resolve.
#
# Why: the default build is a static PIE, and a static glibc resolves names
# with the files/dns NSS code it carries inside libc (glibc >= 2.34), not
# with libnss_*.so; the linker warns about exactly that. curl answers
# "localhost" itself, so the name must be another one that /etc/hosts maps
# to a loopback address (nothing is added to /etc/hosts): the first such
# name there, else the machine's own host name if it resolves to 127.x.
#
# Checks, each a separate `serve --reconciler-only` of IO_BIN:
#   0. control: server https://io-no-such-host.invalid:PORT fails with curl's
#      "Could not resolve host" (so the checks below can tell).
#   1. server https://NAME:PORT, insecure-skip-tls-verify (the test API
#      server's certificate names only localhost, kubernetes* and IPs): the
#      pods watch syncs, i.e. NAME resolved and the client authenticated.
#   2. the same with the cluster's CA: every request fails with curl's
#      "does not match target host name 'NAME'", i.e. NAME resolved, the TLS
#      handshake happened and the name check is still on.
#
# Env: IO_BIN (default build/inference-operator), CLUSTER_DIR (default
#      <repo>/build/cluster; brought up by tests/cluster/up.sh if needed and
#      then stopped again).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO"
IO_BIN="${IO_BIN:-$REPO/build/inference-operator}"
CLUSTER_DIR="${CLUSTER_DIR:-$REPO/build/cluster}"
export CLUSTER_DIR
WAIT_SECONDS=60 # for one log line; generous: 2 shared cores
STOP_SECONDS=20 # for a SIGTERM'd operator to exit
UNRESOLVABLE=io-no-such-host.invalid

say() { echo "[resolve.sh] $*"; }
die() { echo "[resolve.sh] FAIL: $*" >&2; exit 1; }
[ -x "$IO_BIN" ] || die "$IO_BIN is not an executable (run make)"

# A name from /etc/hosts on a 127.x line, not one curl or glibc special-cases.
NAME="$(awk '$1 ~ /^127\./ { for (i = 2; i <= NF; i++) { if ($i ~ /^#/) break;
	if ($i != "localhost" && $i !~ /\.localhost$/ && $i !~ /^localhost\./) { print $i; exit } } }' /etc/hosts)"
if [ -z "$NAME" ]; then
	h="$(hostname)"
	if getent ahostsv4 "$h" 2>/dev/null | awk '{ print $1 }' | grep -q '^127\.'; then NAME="$h"; fi
fi
[ -n "$NAME" ] || die "no name other than localhost maps to 127.x in /etc/hosts and the host name" \
	"'$(hostname)' does not resolve to 127.x: this test needs one (it adds nothing to /etc/hosts)"
interp="$(readelf -l "$IO_BIN" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')"
kind="static PIE"
[ -z "$interp" ] || kind="dynamic, $interp"
say "binary: $IO_BIN ($kind); name: $NAME"

up_out="$(tests/cluster/up.sh 2>&1)" || { printf '%s\n' "$up_out" >&2; exit 1; }
WORK="$(mktemp -d "${TMPDIR:-/tmp}/io-resolve.XXXXXX")"
PID=""
cleanup() {
	if [ -n "$PID" ]; then kill -KILL "$PID" 2>/dev/null || true; fi
	rm -rf "$WORK"
	if ! grep -q "already running" <<<"$up_out"; then tests/cluster/down.sh >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

# shellcheck disable=SC1091
PORT="$(. "$CLUSTER_DIR/state.env" && echo "$APISERVER_PORT")"
KCFG="$CLUSTER_DIR/kubeconfig"
{ [ -n "$PORT" ] && [ -s "$KCFG" ]; } || die "no API server port or kubeconfig in $CLUSTER_DIR"
grep -q "server: https://127.0.0.1:$PORT\$" "$KCFG" || die "$KCFG does not name https://127.0.0.1:$PORT"
sed "s#server: https://127.0.0.1:$PORT\$#server: https://$NAME:$PORT#" "$KCFG" >"$WORK/verify.kcfg"
sed '/^ *certificate-authority-data:/s/certificate-authority-data: .*/insecure-skip-tls-verify: true/' \
	"$WORK/verify.kcfg" >"$WORK/insecure.kcfg"
grep -q 'insecure-skip-tls-verify: true' "$WORK/insecure.kcfg" || die "could not make the insecure kubeconfig"
"$IO_BIN" certs --out "$WORK/certs" --ip 127.0.0.1 >/dev/null || die "$IO_BIN certs"

# run_until KCFG PATTERN WHAT: start the operator, wait for a log line
# matching PATTERN, stop it; fail (with its log) if the line never comes.
run_until() {
	local kcfg="$1" pattern="$2" what="$3" logf i rc
	logf="$WORK/$(basename "$1" .kcfg).log"
	: >"$logf" # before the start: the loop below may grep before the child opens it
	"$IO_BIN" serve --reconciler-only --listen 127.0.0.1:0 --cert-dir "$WORK/certs" \
		--kubeconfig "$kcfg" </dev/null >"$logf" 2>&1 &
	PID=$!
	for ((i = 0; i < WAIT_SECONDS * 10; i++)); do
		grep -q -E "$pattern" "$logf" && break
		kill -0 "$PID" 2>/dev/null || break
		sleep 0.1
	done
	if ! grep -q -E "$pattern" "$logf"; then
		sed 's/^/  log| /' "$logf" >&2
		die "$what: no log line matching $pattern within ${WAIT_SECONDS}s"
	fi
	grep -m 1 -E "$pattern" "$logf" | cut -c1-240 | sed 's/^/  log| /'
	kill -TERM "$PID"
	for ((i = 0; i < STOP_SECONDS * 10; i++)); do
		kill -0 "$PID" 2>/dev/null || break
		sleep 0.1
	done
	rc=0
	wait "$PID" || rc=$?
	PID=""
	[ "$rc" = 0 ] || die "$what: exit $rc after SIGTERM"
	if [ "$kcfg" != "$WORK/unresolvable.kcfg" ] && grep -q "Could not resolve host" "$logf"; then
		die "$what: a request could not resolve $NAME"
	fi
	say "ok: $what"
}

# Control: a name that cannot resolve (RFC 6761 .invalid) is reported as such.
sed "s#server: https://$NAME:$PORT\$#server: https://$UNRESOLVABLE:$PORT#" "$WORK/insecure.kcfg" >"$WORK/unresolvable.kcfg"
run_until "$WORK/unresolvable.kcfg" "Could not resolve host: $UNRESOLVABLE" \
	"control: https://$UNRESOLVABLE:$PORT is reported unresolvable"
run_until "$WORK/insecure.kcfg" '"msg":"watch synced","watch":"pods"' \
	"https://$NAME:$PORT resolved, pods watch synced"
run_until "$WORK/verify.kcfg" "does not match target host name '$NAME'" \
	"https://$NAME:$PORT resolved, certificate name checked against $NAME"
say "passed"
