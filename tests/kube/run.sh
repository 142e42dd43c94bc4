#!/usr/bin/env bash
# Run tests/kube (kube_client + kube_watch against a real kube-apiserver).
#
#   tests/kube/run.sh [criterion args...]
#
# Brings up the local control plane with tests/cluster/up.sh (reused when
# already running), reads the server URL and admin credential paths from
# its state.env, builds build/tests/kube if needed, and runs it.
#
# Env: CLUSTER_DIR (default <repo>/build/cluster), BUILD (default build),
#      KUBE_TEST_BIN (a prebuilt binary: skip the build, e.g. a sanitized
#      one), KUBE_TEST_WRAPPER (e.g. "valgrind --error-exitcode=99 ...").
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO"
CLUSTER_DIR="${CLUSTER_DIR:-$REPO/build/cluster}"
BUILD="${BUILD:-build}"
export CLUSTER_DIR

# Leave the control plane as we found it: stop it at exit only if this run
# started it (KUBE_KEEP_CLUSTER=1 keeps it anyway).
up_out="$(tests/cluster/up.sh 2>&1)" || { printf '%s\n' "$up_out" >&2; exit 1; }
printf '%s\n' "$up_out" >&2
if ! grep -q "already running" <<<"$up_out" && [ "${KUBE_KEEP_CLUSTER:-0}" != 1 ]; then
	trap 'tests/cluster/down.sh >/dev/null 2>&1 || true' EXIT
fi

STATE="$CLUSTER_DIR/state.env"
[ -f "$STATE" ] || { echo "run.sh: $STATE missing after up.sh" >&2; exit 1; }
# Read only the four values we need; state.env is shell-quoted (%q).
get() { (set +u; . "$STATE"; printf '%s' "${!1}"); }
IO_KUBE_SERVER="$(get APISERVER_URL)"
IO_KUBE_CA="$(get CA_CERT)"
IO_KUBE_CERT="$(get ADMIN_CERT)"
IO_KUBE_KEY="$(get ADMIN_KEY)"
for f in "$IO_KUBE_CA" "$IO_KUBE_CERT" "$IO_KUBE_KEY"; do
	[ -r "$f" ] || { echo "run.sh: $f (from $STATE) is not readable" >&2; exit 1; }
done
export IO_KUBE_SERVER IO_KUBE_CA IO_KUBE_CERT IO_KUBE_KEY

BIN="${KUBE_TEST_BIN:-$BUILD/tests/kube}"
if [ -z "${KUBE_TEST_BIN:-}" ]; then
	make -s BUILD="$BUILD" "$BUILD/libinference.a"
	# Until the Makefile has a rule: the same flags as the other suites.
	PKGS="libmicrohttpd gnutls libcurl libcjson yaml-0.1"
	mkdir -p "$BUILD/tests"
	# shellcheck disable=SC2046
	${CC:-cc} -std=c17 -O2 -g -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wvla \
		-Wformat=2 -Wno-format-nonliteral -pthread \
		-D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L \
		-Iserver -Iwebhook -Icerts -Ireconciler $(pkg-config --cflags $PKGS) \
		${EXTRA_CFLAGS:-} -o "$BIN" tests/kube/*.c "$BUILD/libinference.a" \
		$(pkg-config --libs $PKGS) -pthread -lm -lcriterion ${EXTRA_LDFLAGS:-}
fi

echo "run.sh: $BIN against $IO_KUBE_SERVER"
# One job: the tests share one API server and measure timings.  Not exec:
# the EXIT trap above must still stop the control plane this run started.
${KUBE_TEST_WRAPPER:-} "$BIN" --jobs=1 "$@"
