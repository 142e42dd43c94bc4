#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Paths of the local control plane's tools, for scripts and for people.
#
#   . tests/cluster/env.sh            # sets and exports the variables below
#   eval "$(tests/cluster/env.sh)"    # the same from another shell
#   tests/cluster/env.sh              # prints them
#
# K8S_VERSION, ETCD_VERSION, CONTROLPLANE_CACHE_DIR: from versions.env.
# KUBECTL: an already exported $KUBECTL that is executable; else the kubectl
#   that build.sh built into the cache (matches the kube-apiserver version);
#   else the system kubectl, with a warning on stderr (client/server skew);
#   else empty (run tests/cluster/build.sh).
# Sourcing has no other side effects: it builds and starts nothing.

# shellcheck source=versions.env
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/versions.env"

io_env_kubectl() {
	if [ -n "${KUBECTL:-}" ] && [ -x "${KUBECTL}" ]; then
		echo "$KUBECTL"
	elif [ -x "$CONTROLPLANE_CACHE_DIR/kubectl" ]; then
		echo "$CONTROLPLANE_CACHE_DIR/kubectl"
	elif command -v kubectl >/dev/null 2>&1; then
		echo "[env.sh] warning: no kubectl $K8S_VERSION in $CONTROLPLANE_CACHE_DIR (run tests/cluster/build.sh); using $(command -v kubectl)" >&2
		command -v kubectl
	fi
}
KUBECTL="$(io_env_kubectl)"
export K8S_VERSION ETCD_VERSION CONTROLPLANE_CACHE_DIR KUBECTL

# Executed rather than sourced: print the assignments.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	for io_env_v in K8S_VERSION ETCD_VERSION CONTROLPLANE_CACHE_DIR KUBECTL; do
		printf 'export %s=%q\n' "$io_env_v" "${!io_env_v}"
	done
fi
