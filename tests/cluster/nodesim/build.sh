#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Build the node simulator into the control-plane cache, in a directory named
# after a hash of its sources (so a changed simulator is rebuilt and an
# unchanged one never is), and print the binary's path on stdout.
# Needs Go >= 1.26; the modules are those kube-apiserver's build already
# fetched (client-go v0.37.2), else the Go module proxy.
set -euo pipefail

NODESIM_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../versions.env
. "$NODESIM_SRC/../versions.env"

die() { echo "[nodesim/build.sh] ERROR: $*" >&2; exit 1; }
command -v go >/dev/null || die "go not found in PATH (need Go >= 1.26)"

hash="$(cd "$NODESIM_SRC" && cat go.mod go.sum ./*.go | sha256sum | cut -c1-16)"
out_dir="$CONTROLPLANE_CACHE_DIR/nodesim-$hash"
if [ -x "$out_dir/nodesim" ]; then
	echo "$out_dir/nodesim"
	exit 0
fi
mkdir -p "$CONTROLPLANE_CACHE_DIR"
tmp="$(mktemp -d "$CONTROLPLANE_CACHE_DIR/nodesim.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
start=$SECONDS
(cd "$NODESIM_SRC" && GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-mod=readonly -trimpath -buildvcs=false" \
	go build -ldflags "-s -w" -o "$tmp/nodesim" .) >&2 || die "go build of the node simulator failed"
echo "[nodesim/build.sh] built in $((SECONDS - start)) s -> $out_dir/nodesim" >&2
# A concurrent build may have finished first: either result is the same.
mkdir -p "$out_dir"
mv -f "$tmp/nodesim" "$out_dir/nodesim"
echo "$out_dir/nodesim"
