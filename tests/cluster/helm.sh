#!/usr/bin/env bash
# Build helm (pinned) from the Go module proxy into the tool cache beside the
# control plane, once, and print its path:
#
#   HELM="$(tests/cluster/helm.sh)"     # builds on first use (~3 min on 2 cores)
#
# Cache: ${XDG_CACHE_HOME:-$HOME/.cache}/inference-operator/tools/helm-$HELM_VERSION/helm
# (override the directory with TOOLS_CACHE_DIR). A `stamp` written last records
# the version and flags; with it in place this returns at once. Builds are
# serialised by a lock file and written to a temp dir, then renamed into place.
#
# `go install helm.sh/helm/v3/cmd/helm@VERSION` uses helm's own go.mod/go.sum,
# checked against the Go checksum database, so the version pins every
# dependency. The ldflags are those of helm's Makefile: the version string, and
# the Kubernetes minor that `helm template`/`helm lint` assume offline (that of
# helm's client-go, v0.37 -> 1.37, the same minor as the test control plane).
# Needs Go >= 1.25 (helm's go.mod) on PATH; log lines go to stderr.
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.22.0}"
HELM_K8S_MINOR="${HELM_K8S_MINOR:-37}"
TOOLS_CACHE_DIR="${TOOLS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/inference-operator/tools}"
DEST="$TOOLS_CACHE_DIR/helm-$HELM_VERSION"
V=helm.sh/helm/v3
LDFLAGS="-s -w -X $V/internal/version.version=$HELM_VERSION -X $V/internal/version.metadata=
 -X $V/internal/version.gitTreeState=clean
 -X $V/pkg/lint/rules.k8sVersionMajor=1 -X $V/pkg/lint/rules.k8sVersionMinor=$HELM_K8S_MINOR
 -X $V/pkg/chartutil.k8sVersionMajor=1 -X $V/pkg/chartutil.k8sVersionMinor=$HELM_K8S_MINOR"
LDFLAGS="$(tr '\n' ' ' <<<"$LDFLAGS")"
STAMP="helm $HELM_VERSION; ldflags: $LDFLAGS"

log() { echo "[helm.sh $(date +%H:%M:%S)] $*" >&2; }
die() { echo "[helm.sh] ERROR: $*" >&2; exit 1; }

fresh() { [ -x "$DEST/helm" ] && [ "$(cat "$DEST/stamp" 2>/dev/null)" = "$STAMP" ]; }

if ! fresh; then
	command -v go >/dev/null || die "Go is needed to build helm (PATH=$PATH)"
	mkdir -p "$TOOLS_CACHE_DIR"
	exec 8>"$TOOLS_CACHE_DIR/helm-$HELM_VERSION.lock"
	flock -w 900 8 || die "another build holds $TOOLS_CACHE_DIR/helm-$HELM_VERSION.lock (waited 900 s)"
	if ! fresh; then
		tmp="$(mktemp -d "$TOOLS_CACHE_DIR/.helm-build.XXXXXX")"
		trap 'rm -rf "$tmp"' EXIT
		log "building helm $HELM_VERSION from the Go module proxy into $DEST (cold: ~3 min on 2 cores)"
		start=$SECONDS
		GOTOOLCHAIN=local CGO_ENABLED=0 GOBIN="$tmp/bin" \
			go install -trimpath -ldflags "$LDFLAGS" "$V/cmd/helm@$HELM_VERSION" >&2 ||
			die "go install $V/cmd/helm@$HELM_VERSION failed"
		got="$("$tmp/bin/helm" version --template '{{.Version}}')"
		[ "$got" = "$HELM_VERSION" ] || die "built helm reports version '$got', want $HELM_VERSION"
		mkdir -p "$tmp/out"
		mv "$tmp/bin/helm" "$tmp/out/helm"
		printf '%s\n' "$STAMP" >"$tmp/out/stamp"
		rm -rf "$DEST"
		mv "$tmp/out" "$DEST"
		log "helm $HELM_VERSION built in $((SECONDS - start)) s: $DEST/helm"
	fi
fi
echo "$DEST/helm"
