#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Build the local test control plane (etcd + kube-apiserver) from the Go module
# proxy into the per-version cache dir named in versions.env.
#
# Idempotent: if every binary is there and the stamp matches the pinned
# versions and go.mod/go.sum, it only prints the paths. If the stamp matches
# but a requested tool is missing (e.g. kubectl after an older build.sh that
# built only kube-apiserver), only that tool is built and added. Otherwise it
# builds everything into a temp dir beside the cache dir and renames the
# binaries into place, writing the stamp last, so an interrupted build never
# looks finished.
#
# Needs: Go >= 1.26 (GOTOOLCHAIN=local: no toolchain download), flock
# (util-linux), sha256sum (coreutils); the network only for the Go module proxy.
#
# Env: K8S_TOOLS (default "kube-apiserver kubectl"; any of kube-apiserver
#      kube-controller-manager kube-scheduler kubectl, see the tool lines in
#      apiserver/go.mod), CONTROLPLANE_CACHE_DIR (default from versions.env),
#      BUILD_VERBOSE=1 to stream the whole `go build -v` output.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
. "$SCRIPT_DIR/versions.env"

K8S_TOOLS="${K8S_TOOLS:-kube-apiserver kubectl}"
CACHE_DIR="$CONTROLPLANE_CACHE_DIR"
STAMP="$CACHE_DIR/stamp"

log() { echo "[build.sh $(date +%H:%M:%S)] $*"; }
die() { echo "[build.sh] ERROR: $*" >&2; exit 1; }

# The stamp names the versions, the build inputs and the tools built
# (K8S_TOOLS= line). A change of versions or inputs makes the next run rebuild
# everything; a requested tool that is not listed is built on its own.
stamp_inputs() {
	echo "K8S_VERSION=$K8S_VERSION"
	echo "ETCD_VERSION=$ETCD_VERSION"
	(cd "$SCRIPT_DIR" && sha256sum apiserver/go.mod apiserver/go.sum etcd/go.mod etcd/go.sum)
}
stamp_text() { # TOOLS...
	echo "K8S_VERSION=$K8S_VERSION"
	echo "ETCD_VERSION=$ETCD_VERSION"
	echo "K8S_TOOLS=$*"
	(cd "$SCRIPT_DIR" && sha256sum apiserver/go.mod apiserver/go.sum etcd/go.mod etcd/go.sum)
}
# stamp_ok: the stamp exists and names the current versions and inputs.
stamp_ok() {
	[ -f "$STAMP" ] && [ "$(grep -v '^K8S_TOOLS=' "$STAMP")" = "$(stamp_inputs)" ] && [ -x "$CACHE_DIR/etcd" ]
}
# stamp_tools: the tools the stamp says were built (one line).
stamp_tools() { sed -n 's/^K8S_TOOLS=//p' "$STAMP" 2>/dev/null | head -n 1; }
# missing_tools: requested tools not built (absent, or not in the stamp).
missing_tools() {
	local t out=""
	for t in $K8S_TOOLS; do
		if [ ! -x "$CACHE_DIR/$t" ] || [[ " $(stamp_tools) " != *" $t "* ]]; then out+="$t "; fi
	done
	echo "${out% }"
}
all_present() { stamp_ok && [ -z "$(missing_tools)" ]; }

print_paths() {
	log "binaries in $CACHE_DIR:"
	echo "  etcd: $CACHE_DIR/etcd"
	local t
	for t in $K8S_TOOLS; do echo "  $t: $CACHE_DIR/$t"; done
}

for t in $K8S_TOOLS; do
	case "$t" in
	kube-apiserver|kube-controller-manager|kube-scheduler|kubectl) ;;
	*) die "unknown K8S_TOOLS entry '$t'" ;;
	esac
done

if all_present; then
	log "up to date (k8s $K8S_VERSION, etcd $ETCD_VERSION), nothing to build"
	print_paths
	exit 0
fi

# --- sanity checks -----------------------------------------------------------
command -v go >/dev/null || die "go not found in PATH (need Go >= 1.26)"
command -v flock >/dev/null || die "flock not found (apt-get install util-linux)"
export GOTOOLCHAIN=local
go_minor="$(go env GOVERSION | sed -n 's/^go1\.\([0-9]*\).*/\1/p')"
if [ -z "$go_minor" ] || [ "$go_minor" -lt 26 ]; then
	die "need Go >= 1.26, have $(go env GOVERSION)"
fi
grep -q "^	k8s.io/kubernetes $K8S_VERSION\b" "$SCRIPT_DIR/apiserver/go.mod" ||
	die "apiserver/go.mod does not require k8s.io/kubernetes $K8S_VERSION (versions.env)"
grep -q "k8s.io/api => k8s.io/api v0${K8S_VERSION#v1}\$" "$SCRIPT_DIR/apiserver/go.mod" ||
	die "apiserver/go.mod staging replaces are not at v0${K8S_VERSION#v1}"
grep -q "^	go.etcd.io/etcd/server/v3 $ETCD_VERSION\b" "$SCRIPT_DIR/etcd/go.mod" ||
	die "etcd/go.mod does not require go.etcd.io/etcd/server/v3 $ETCD_VERSION (versions.env)"

# --- one build at a time per cache dir ----------------------------------------
mkdir -p "$(dirname "$CACHE_DIR")"
exec 9>"$CACHE_DIR.lock"
if ! flock -n 9; then
	log "another build.sh holds $CACHE_DIR.lock; waiting (up to 60 min)"
	flock -w 3600 9 || die "timed out waiting for $CACHE_DIR.lock"
fi
if all_present; then
	log "built by a concurrent build.sh"
	print_paths
	exit 0
fi

# Same inputs, some tools missing: build only those (etcd and the others stay).
INCREMENTAL=0
if stamp_ok; then
	INCREMENTAL=1
	BUILT_TOOLS="$(stamp_tools)"
	K8S_TOOLS="$(missing_tools)"
fi

# Leftovers of killed builds (we hold the lock, so none is in progress).
rm -rf -- "$CACHE_DIR".tmp.*
TMP_DIR="$(mktemp -d "$CACHE_DIR.tmp.XXXXXX")"
trap 'rm -rf "$TMP_DIR"' EXIT

# -mod=readonly: go.mod/go.sum are committed and must not change during a build.
export CGO_ENABLED=0
export GOFLAGS="-mod=readonly -trimpath -buildvcs=false"

# Run `go build -v` with a progress line every 100 compiled packages and every
# 50 downloaded modules; the full output goes to a log printed on failure.
go_build() { # name dir out ldflags pkg...
	local name="$1" dir="$2" out="$3" ldflags="$4"
	shift 4
	local blog="$TMP_DIR/$name.build.log"
	local start=$SECONDS
	log "building $name ($*) -> $out"
	if [ "${BUILD_VERBOSE:-0}" = 1 ]; then
		(cd "$dir" && go build -v -o "$out" -ldflags "$ldflags" "$@") 2>&1 | tee "$blog"
	else
		(cd "$dir" && go build -v -o "$out" -ldflags "$ldflags" "$@") 2>&1 | tee "$blog" |
			awk -v name="$name" '
				/^go: downloading / { d++; if (d % 50 == 1) printf("  [%s] downloading modules: %d (%s)\n", name, d, $3 " " $4); fflush(); next }
				/^[A-Za-z0-9._~\/-]+$/ { p++; if (p % 100 == 0) printf("  [%s] compiled %d packages (%s)\n", name, p, $0); fflush(); next }
				{ print "  [" name "] " $0; fflush() }
				END { printf("  [%s] done: %d modules downloaded, %d packages compiled\n", name, d, p) }'
	fi || {
		echo "----- last 40 lines of $name build log -----" >&2
		tail -n 40 "$blog" >&2
		die "building $name failed"
	}
	log "$name built in $((SECONDS - start))s"
}

if [ "$INCREMENTAL" = 1 ]; then
	log "cache has k8s $K8S_VERSION ($BUILT_TOOLS) and etcd $ETCD_VERSION; adding $K8S_TOOLS with $(go env GOVERSION)"
else
	log "building k8s $K8S_VERSION (${K8S_TOOLS}) and etcd $ETCD_VERSION with $(go env GOVERSION)"
fi
log "module cache: $(go env GOMODCACHE), build cache: $(go env GOCACHE), proxy: $(go env GOPROXY)"
log "a cold build downloads ~155 MB of modules and compiles ~2400 packages (about 5 min on 2 cores; kubectl adds 18 small modules and ~30 s)"
total_start=$SECONDS

if [ "$INCREMENTAL" = 0 ]; then
	go_build etcd "$SCRIPT_DIR/etcd" "$TMP_DIR/etcd" "-s -w" go.etcd.io/etcd/server/v3
fi

k8s_minor="${K8S_VERSION#v1.}"
k8s_minor="${k8s_minor%%.*}"
k8s_ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION"
k8s_ldflags+=" -X k8s.io/component-base/version.gitMajor=1"
k8s_ldflags+=" -X k8s.io/component-base/version.gitMinor=$k8s_minor"
k8s_ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"
for t in $K8S_TOOLS; do
	go_build "$t" "$SCRIPT_DIR/apiserver" "$TMP_DIR/$t" "$k8s_ldflags" "k8s.io/kubernetes/cmd/$t"
done

if [ "$INCREMENTAL" = 0 ]; then
	"$TMP_DIR/etcd" --version | head -n 1 | grep -q "${ETCD_VERSION#v}" ||
		die "built etcd does not report version $ETCD_VERSION"
fi
for t in $K8S_TOOLS; do
	case "$t" in
	kube-apiserver)
		"$TMP_DIR/$t" --version | grep -qx "Kubernetes $K8S_VERSION" ||
			die "built kube-apiserver does not report $K8S_VERSION"
		;;
	kubectl)
		"$TMP_DIR/$t" version --client 2>/dev/null | grep -q "^Client Version: $K8S_VERSION\$" ||
			die "built kubectl does not report $K8S_VERSION"
		;;
	esac
done

# Rename each binary into place (same filesystem: atomic), then the stamp.
mkdir -p "$CACHE_DIR"
if [ "$INCREMENTAL" = 1 ]; then
	# The old stamp stays valid for the tools it lists while the new ones
	# are renamed in; the new stamp lists them all.
	for t in $K8S_TOOLS; do mv -f "$TMP_DIR/$t" "$CACHE_DIR/$t"; done
	kept=""
	for t in $BUILT_TOOLS; do [[ " $K8S_TOOLS " == *" $t "* ]] || kept+="$t "; done
	K8S_TOOLS="$kept$K8S_TOOLS"
	# shellcheck disable=SC2086 # word splitting of the tool list is intended
	stamp_text $K8S_TOOLS >"$TMP_DIR/stamp"
else
	rm -f "$STAMP"
	mv -f "$TMP_DIR/etcd" "$CACHE_DIR/etcd"
	for t in $K8S_TOOLS; do mv -f "$TMP_DIR/$t" "$CACHE_DIR/$t"; done
	# shellcheck disable=SC2086
	stamp_text $K8S_TOOLS >"$TMP_DIR/stamp"
fi
mv -f "$TMP_DIR/stamp" "$STAMP"

log "all built in $((SECONDS - total_start))s"
print_paths
