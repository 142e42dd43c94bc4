#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Pretend that all pods of a Deployment are ready, as the deployment
# controller would report it. The local control plane has no kubelet and no
# controller-manager, so nothing else ever writes a Deployment's status.
#
#   tests/demo/simulate-ready.sh NAME [NAMESPACE]
#
# Patches the status subresource of Deployment NAME (namespace default
# "default"): observedGeneration = metadata.generation, replicas =
# readyReplicas = updatedReplicas = availableReplicas = spec.replicas,
# conditions Available=True and Progressing=True (NewReplicaSetAvailable).
# The operator then reports the InferenceService NAME Ready.
# KUBECONFIG defaults to build/demo/kubeconfig (the demo's control plane).
set -euo pipefail

DEMO_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$DEMO_SRC/../.." && pwd)"
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	echo "usage: $0 NAME [NAMESPACE]" >&2
	exit 2
fi
name="$1" ns="${2:-default}"
export KUBECONFIG="${KUBECONFIG:-$REPO_ROOT/build/demo/kubeconfig}"
# shellcheck source=../cluster/env.sh
. "$REPO_ROOT/tests/cluster/env.sh"
[ -n "$KUBECTL" ] || { echo "no kubectl (tests/cluster/build.sh builds one)" >&2; exit 1; }
command -v jq >/dev/null || { echo "jq not found: apt-get install jq" >&2; exit 1; }

read -r gen replicas < <("$KUBECTL" -n "$ns" get deploy "$name" \
	-o jsonpath='{.metadata.generation} {.spec.replicas}{"\n"}')
[ -n "${replicas:-}" ] || { echo "Deployment $ns/$name has no spec.replicas" >&2; exit 1; }
now="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
patch="$(jq -cn --argjson g "$gen" --argjson r "$replicas" --arg now "$now" --arg rs "$name-5d8f7c" '{status: {
	observedGeneration: $g, replicas: $r, readyReplicas: $r, updatedReplicas: $r, availableReplicas: $r,
	conditions: [
		{type: "Available", status: "True", reason: "MinimumReplicasAvailable",
		 message: "Deployment has minimum availability.", lastUpdateTime: $now, lastTransitionTime: $now},
		{type: "Progressing", status: "True", reason: "NewReplicaSetAvailable",
		 message: "ReplicaSet \"\($rs)\" has successfully progressed.", lastUpdateTime: $now, lastTransitionTime: $now}]}}')"
"$KUBECTL" -n "$ns" patch deploy "$name" --subresource=status --type=merge -p "$patch"
