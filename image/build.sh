#!/usr/bin/env bash
# image/build.sh [BIN] — build the operator's container image without a
# container engine: an OCI image layout, archived as one tar file
# (build/image/inference-operator.tar), loadable with e.g.
#   skopeo copy oci-archive:build/image/inference-operator.tar docker://REGISTRY/inference-operator:TAG
#   podman load -i build/image/inference-operator.tar
#   ctr -n k8s.io images import build/image/inference-operator.tar
#
# One layer: the root filesystem from image/rootfs.sh (the binary, exactly the
# shared libraries it loads -- none for the default static PIE -- and a nonroot
# passwd/group entry). Config: user 65532:65532, entrypoint the binary, cmd
# ["serve"], no shell, no env.
#
# The layout is written directly (tar, gzip -9, sha256sum, jq) rather than with
# umoci: umoci 0.4.7 compresses layers at a fixed lower level (8.5 MB here,
# 7.9 MB with gzip -9) and stamps the build time. The result is byte-for-byte
# reproducible for a given binary: every timestamp is SOURCE_DATE_EPOCH
# (default: the last commit's time). tests/chart/run.sh reads the archive back
# with umoci (an independent implementation) and runs the binary inside it.
#
# Env: BIN (default build/inference-operator; also the first argument),
#      OUT (default build/image/inference-operator.tar), TAG (default: the
#      version `BIN --version` prints), SOURCE_DATE_EPOCH, STRIP (rootfs.sh).
# Prints the archive path, digests and sizes.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
die() { echo "[image/build.sh] ERROR: $*" >&2; exit 1; }

BIN="${1:-${BIN:-$repo/build/inference-operator}}"
OUT="${OUT:-$repo/build/image/inference-operator.tar}"
for t in jq gzip sha256sum tar ldd strip readelf; do
	command -v "$t" >/dev/null || die "$t is needed (apt-get install jq gzip coreutils tar libc-bin binutils)"
done
[ -x "$BIN" ] || die "$BIN not found or not executable (run make)"

export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct 2>/dev/null || echo 0)}"
created="$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)"
version="$("$BIN" --version | awk '{ print $NF; exit }')"
TAG="${TAG:-$version}"
TAG="$(tr -c 'A-Za-z0-9_.\n-' '_' <<<"$TAG")"
[[ "$TAG" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || die "bad tag '$TAG'"
arch="$(dpkg --print-architecture 2>/dev/null || echo amd64)"
revision="$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)"

mkdir -p "$(dirname "$OUT")"
work="$(mktemp -d "$(dirname "$OUT")/.image-build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
layout="$work/layout"
mkdir -p "$layout/blobs/sha256"

# blob FILE: move FILE into the layout under its digest; print "digest size".
blob() {
	local d s
	d="$(sha256sum "$1" | cut -d' ' -f1)"
	s="$(stat -c %s "$1")"
	mv -f "$1" "$layout/blobs/sha256/$d"
	echo "sha256:$d $s"
}
# Deterministic tar of DIR's contents (sorted, fixed owner and time, no
# atime/ctime), entries named without a leading "./".
det_tar() {
	(cd "$1" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort |
		tar --no-recursion --null --files-from=<(tr '\n' '\0') \
			--numeric-owner --owner=0 --group=0 --mtime="@$SOURCE_DATE_EPOCH" \
			--format=gnu -cf -)
}

# --- layer ---------------------------------------------------------------------------
"$here/rootfs.sh" "$BIN" "$work/rootfs"
det_tar "$work/rootfs" >"$work/layer.tar"
diff_id="sha256:$(sha256sum "$work/layer.tar" | cut -d' ' -f1)"
unpacked="$(stat -c %s "$work/layer.tar")"
gzip -9 -n <"$work/layer.tar" >"$work/layer.tar.gz"
read -r layer_digest layer_size < <(blob "$work/layer.tar.gz")

# --- config, manifest, index ---------------------------------------------------------
jq -cn --arg created "$created" --arg arch "$arch" --arg diff "$diff_id" \
	--arg version "$version" --arg rev "$revision" '{
	created: $created, architecture: $arch, os: "linux",
	config: {
		User: "65532:65532",
		Entrypoint: ["/usr/local/bin/inference-operator"],
		Cmd: ["serve"],
		WorkingDir: "/",
		Labels: {
			"org.opencontainers.image.title": "inference-operator",
			"org.opencontainers.image.version": $version,
			"org.opencontainers.image.revision": $rev
		}
	},
	rootfs: { type: "layers", diff_ids: [$diff] },
	history: [{ created: $created, created_by: "image/build.sh: image/rootfs.sh (binary, its shared libraries if any, nonroot user)" }]
}' >"$work/config.json"
read -r config_digest config_size < <(blob "$work/config.json")

jq -cn --arg cd "$config_digest" --argjson cs "$config_size" \
	--arg ld "$layer_digest" --argjson ls "$layer_size" --arg created "$created" '{
	schemaVersion: 2,
	mediaType: "application/vnd.oci.image.manifest.v1+json",
	config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: $cd, size: $cs },
	layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: $ld, size: $ls }],
	annotations: { "org.opencontainers.image.created": $created }
}' >"$work/manifest.json"
read -r manifest_digest manifest_size < <(blob "$work/manifest.json")

jq -cn --arg md "$manifest_digest" --argjson ms "$manifest_size" --arg tag "$TAG" --arg arch "$arch" '{
	schemaVersion: 2,
	mediaType: "application/vnd.oci.image.index.v1+json",
	manifests: [{
		mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $md, size: $ms,
		platform: { architecture: $arch, os: "linux" },
		annotations: { "org.opencontainers.image.ref.name": $tag }
	}]
}' >"$layout/index.json"
printf '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
find "$layout" -type d -exec chmod 0755 {} + && find "$layout" -type f -exec chmod 0644 {} +

# --- archive ---------------------------------------------------------------------------
det_tar "$layout" >"$work/image.tar"
mv -f "$work/image.tar" "$OUT"

bin_size="$(stat -c %s "$BIN")"
shipped_size="$(stat -c %s "$work/rootfs/usr/local/bin/inference-operator")"
cat <<EOF
image:      $OUT (tag $TAG, $arch)
manifest:   $manifest_digest
layer:      $layer_digest
compressed: $layer_size bytes (layer, gzip -9); archive $(stat -c %s "$OUT") bytes
unpacked:   $unpacked bytes (layer tar; $(du -sb "$work/rootfs" | cut -f1) bytes of files)
binary:     $shipped_size bytes in the image (stripped), $bin_size bytes in the build tree
EOF
