# shellcheck shell=bash
# The OCI image: built by image/build.sh, read back with umoci (an independent
# implementation), and run with chroot on a read-only root as uid 65532, the
# way the chart's securityContext runs it. Sourced by run.sh.

IMG_DIR="$WORK/image"
IMG_TAR="$IMG_DIR/inference-operator.tar"
IMG_ROOTFS="$IMG_DIR/bundle/rootfs" # unpacked by test_image_layout

need_root() { [ "$(id -u)" = 0 ] || pending "needs root (chroot, mount namespace)"; }
# need_release_build: a sanitizer build (make asan) is not what ships: its
# runtime libraries and shadow memory need /proc and exceed the size bound.
need_release_build() { [ "$SANITIZED" = 0 ] || pending "sanitizer build of the binary; the image is tested with the release build (make test)"; }
# bin_interp: the ELF interpreter IO_BIN names (PT_INTERP); empty for the
# default static PIE, whose image then holds no loader and no libraries.
bin_interp() { readelf -l "$IO_BIN" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p'; }

# rootfs_copy DEST: a private copy of the unpacked image root filesystem.
rootfs_copy() {
	rm -rf "$1" && mkdir -p "$(dirname "$1")" && cp -a "$IMG_ROOTFS" "$1" || fail "copy the image rootfs to $1"
}

# chroot_start ROOT LOG [VAR=VALUE...] -- ARGS...: run the image's entrypoint
# with ARGS inside ROOT as uid/gid 65532, in its own session and mount
# namespace where ROOT is bind-mounted read-only (readOnlyRootFilesystem), with
# only the given environment variables. With CH_RW=HOST_DIR and CH_RW_AT=PATH,
# HOST_DIR is mounted writable at PATH inside (the pod's emptyDir). Sets
# CH_PID; the process is tracked (stop_tracked) and is a child of the calling
# (sub)shell.
chroot_start() {
	local root="$1" logf="$2" envs=()
	shift 2
	while [ $# -gt 0 ] && [ "$1" != "--" ]; do envs+=("$1") && shift; done
	shift
	# shellcheck disable=SC2016 # expanded by the wrapper bash
	env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin setsid unshare -m -- bash -c '
		r="$1" rw="$2" at="$3"; shift 3
		mount --bind "$r" "$r" && mount -o remount,bind,ro "$r" || exit 97
		if [ -n "$rw" ]; then mount --bind "$rw" "$r$at" || exit 98; fi
		exec env -i "$@"' chroot-wrapper "$root" "${CH_RW:-}" "${CH_RW_AT:-}" "${envs[@]}" \
		"$(command -v chroot)" --userspec=65532:65532 "$root" /usr/local/bin/inference-operator "$@" \
		</dev/null >>"$logf" 2>&1 8>&- &
	CH_PID=$!
	track_pid "$CH_PID" "$root"
	echo "  started pid $CH_PID in $root: $* (env: ${envs[*]:-none})"
}
# chroot_port LOG PID: wait (30 s) for the "serving" line; print the port.
chroot_port() {
	local i p
	for ((i = 0; i < 300; i++)); do
		p="$(grep -m 1 '"msg":"serving"' "$1" | sed -n 's/.*"port":\([0-9][0-9]*\).*/\1/p')"
		[ -n "$p" ] && { echo "$p"; return 0; }
		kill -0 "$2" 2>/dev/null || break
		sleep 0.1
	done
	sed 's/^/  log| /' "$1" >&2
	return 1
}
# chroot_stop PID LOG: SIGTERM, wait for the exit (15 s); fails unless exit 0.
chroot_stop() {
	local i rc
	kill -TERM "$1" 2>/dev/null || fail "pid $1 is not running"
	for ((i = 0; i < 150; i++)); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$1" 2>/dev/null && { kill -KILL "$1"; fail "pid $1 ignored SIGTERM for 15 s"; }
	wait "$1"
	rc=$?
	expect_eq "$rc" 0 "exit code after SIGTERM"
	grep -q '"msg":"stopped"' "$2" || fail "no \"stopped\" log line"
}

test_image_build() {
	need_release_build
	local t0 sizes
	t0="$(now_ns)"
	run env OUT="$IMG_TAR" "$REPO_ROOT/image/build.sh" "$IO_BIN"
	expect_ok "image/build.sh"
	sizes="$OUT"
	local secs
	secs="$(since "$t0")"
	run env OUT="$IMG_DIR/again.tar" "$REPO_ROOT/image/build.sh" "$IO_BIN"
	expect_ok "image/build.sh again"
	cmp -s "$IMG_TAR" "$IMG_DIR/again.tar" || fail "two builds of the same binary differ (not reproducible)"
	rm -f "$IMG_DIR/again.tar"
	local layer unpacked binary
	layer="$(sed -n 's/^compressed: *\([0-9]*\) bytes.*/\1/p' <<<"$sizes")"
	unpacked="$(sed -n 's/^unpacked: *\([0-9]*\) bytes.*/\1/p' <<<"$sizes")"
	binary="$(sed -n 's/^binary: *\([0-9]*\) bytes in the image.*/\1/p' <<<"$sizes")"
	[ -n "$layer" ] && [ -n "$unpacked" ] && [ -n "$binary" ] || fail "build.sh did not report the sizes"
	[ "$layer" -le "$IMAGE_MAX_BYTES" ] || fail "compressed image $layer bytes > $IMAGE_MAX_BYTES"
	note "$(awk -v l="$layer" -v u="$unpacked" -v b="$binary" -v a="$(stat -c %s "$IMG_TAR")" 'BEGIN {
		printf "compressed %.2f MB (%d bytes; archive %d), unpacked %.2f MB, binary %d KB stripped", l / 1e6, l, a, u / 1e6, b / 1024 }'); built in ${secs} s, byte-identical on rebuild"
}

test_image_layout() {
	need_release_build
	needs image_build
	local oci="$IMG_DIR/oci" tag manifest config
	rm -rf "$oci" "$IMG_DIR/bundle" && mkdir -p "$oci"
	tar -xf "$IMG_TAR" -C "$oci" || fail "extract $IMG_TAR"
	tag="$(jq -r '.manifests[0].annotations["org.opencontainers.image.ref.name"]' "$oci/index.json")"
	[ "$(jq -r '.manifests | length' "$oci/index.json")" = 1 ] || fail "index.json must list one manifest"
	run umoci unpack --image "$oci:$tag" "$IMG_DIR/bundle"
	expect_ok "umoci unpack (verifies every digest)"
	manifest="$(jq -r '.manifests[0].digest' "$oci/index.json")"
	config="$(jq -r .config.digest "$oci/blobs/sha256/${manifest#sha256:}")"
	expect_json_eq "$(jq -c '.config' "$oci/blobs/sha256/${config#sha256:}" | jq -c 'del(.Labels)')" \
		'{"User":"65532:65532","Entrypoint":["/usr/local/bin/inference-operator"],"Cmd":["serve"],"WorkingDir":"/"}' \
		"image config (non-root user, entrypoint the binary, no env)"
	expect_eq "$(jq -r '.manifests[0].platform.os + "/" + .manifests[0].platform.architecture' "$oci/index.json")" \
		"linux/$(dpkg --print-architecture 2>/dev/null || echo amd64)" "platform"

	# Exactly: the binary, what ldd resolves for it (nothing when it is
	# static), passwd/group, their directories.
	local want got lib interp ldd_out="" execs
	interp="$(bin_interp)" || fail "readelf -l $IO_BIN"
	if [ -n "$interp" ]; then
		ldd_out="$(ldd "$IO_BIN")" || fail "ldd $IO_BIN (a dynamic executable with interpreter $interp)"
	fi
	want="$({
		echo usr/local/bin/inference-operator
		echo etc/passwd
		echo etc/group
		for lib in $(awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$ldd_out"); do
			echo "${lib#/}"
		done
	} | awk -F/ '{ p = ""; for (i = 1; i <= NF; i++) { p = (i == 1 ? $1 : p "/" $i); print p } }' | LC_ALL=C sort -u)"
	got="$(cd "$IMG_ROOTFS" && find . -mindepth 1 | sed 's|^\./||' | LC_ALL=C sort)"
	if [ "$got" != "$want" ]; then
		diff -u <(echo "$want") <(echo "$got") | sed 's/^/  /'
		fail "image files differ from the binary + its ldd libraries + passwd/group (- want, + got)"
	fi
	execs="./usr/local/bin/inference-operator "
	[ -z "$interp" ] || execs=".$interp $execs"
	expect_eq "$(cd "$IMG_ROOTFS" && find . -type f -perm /111 | LC_ALL=C sort | tr '\n' ' ')" "$execs" "executable files"
	if [ -z "$interp" ]; then
		# Static: no shared object anywhere and none asked for by the shipped copy.
		expect_eq "$(find "$IMG_ROOTFS" -name '*.so*' | wc -l)" 0 "shared objects in the image of a static binary"
		expect_eq "$(readelf -d "$IMG_ROOTFS/usr/local/bin/inference-operator" | grep -c '(NEEDED)')" 0 \
			"NEEDED entries of the shipped static binary"
	fi
	[ ! -e "$IMG_ROOTFS/bin/sh" ] && [ ! -e "$IMG_ROOTFS/usr/bin/env" ] || fail "a shell or env in the image"
	expect_eq "$(cat "$IMG_ROOTFS/etc/passwd")" "nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin" "/etc/passwd"
	expect_eq "$(cat "$IMG_ROOTFS/etc/group")" "nonroot:x:65532:" "/etc/group"
	expect_eq "$(find "$IMG_ROOTFS" ! -uid 0 | wc -l)" 0 "files not owned by root"
	expect_eq "$(find "$IMG_ROOTFS" -perm /022 ! -type l | wc -l)" 0 "group/world-writable files"
	note "umoci reads it back; ${interp:-static binary, no loader}; $(grep -c '\.so' <<<"$got") shared objects (= ldd), the binary, passwd/group; nothing else; config user 65532:65532"
}

test_image_chroot_version() {
	need_root
	need_release_build
	needs image_layout
	run chroot --userspec=65532:65532 "$IMG_ROOTFS" /usr/local/bin/inference-operator --version
	expect_ok "--version in the image"
	expect_eq "$OUT" "$("$IO_BIN" --version)" "version in the image"
	local version="$OUT"
	local interp
	interp="$(bin_interp)" || fail "readelf -l $IO_BIN"
	if [ -n "$interp" ]; then
		# Control: the check notices a missing library.
		rootfs_copy "$TDIR/broken"
		rm -f "$TDIR/broken/lib/x86_64-linux-gnu/libcjson.so.1"
		run chroot --userspec=65532:65532 "$TDIR/broken" /usr/local/bin/inference-operator --version
		expect_fail "a rootfs without libcjson.so.1"
		expect_err_has "libcjson.so.1: cannot open shared object file"
		rm -rf "$TDIR/broken"
		note "'$version' as uid 65532 in the image; a library removed from a copy fails with the loader's error"
		return 0
	fi
	# Static: the binary alone is a whole root filesystem (nothing else is
	# loaded), and the control: a root without the binary fails.
	rootfs_copy "$TDIR/bare"
	rm -rf "$TDIR/bare/etc"
	run chroot --userspec=65532:65532 "$TDIR/bare" /usr/local/bin/inference-operator --version
	expect_ok "--version in a root holding only the binary"
	expect_eq "$OUT" "$version" "version in a root holding only the binary"
	rm -f "$TDIR/bare/usr/local/bin/inference-operator"
	run chroot --userspec=65532:65532 "$TDIR/bare" /usr/local/bin/inference-operator --version
	expect_fail "a rootfs without the binary"
	expect_err_has "No such file or directory"
	rm -rf "$TDIR/bare"
	note "'$version' as uid 65532 in the image (static, no loader); also in a root holding only the binary; a root without it fails"
}

test_image_chroot_webhook() {
	need_root
	need_release_build
	needs image_layout
	local r="$TDIR/rootfs" logf="$TDIR/operator.log" port
	rootfs_copy "$r"
	mkdir -p "$r/certs" && cp "$TEST_CERTS/tls.crt" "$TEST_CERTS/tls.key" "$r/certs/" &&
		chown 65532:65532 "$r/certs/tls.key" && chmod 0400 "$r/certs/tls.key" || fail "certificates into the rootfs"
	: >"$logf"
	chroot_start "$r" "$logf" -- serve --webhook-only --listen 127.0.0.1:0 --cert-dir /certs --threads 2
	port="$(chroot_port "$logf" "$CH_PID")" || fail "no serving line from the chroot'd operator"
	run curl -sS --max-time 5 --cacert "$TEST_CERTS/ca.crt" "https://127.0.0.1:$port/healthz"
	expect_ok "GET /healthz"
	expect_eq "$OUT" ok "/healthz"
	run curl -sS --max-time 5 --cacert "$TEST_CERTS/ca.crt" -o /dev/null -w '%{http_code}' "https://127.0.0.1:$port/readyz"
	expect_eq "$OUT" 200 "/readyz"
	printf '%s' '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1","kind":{"group":"ai.example.com","version":"v1","kind":"InferenceService"},"resource":{"group":"ai.example.com","version":"v1","resource":"inferenceservices"},"name":"x","namespace":"ns","operation":"CREATE","userInfo":{"username":"u"},"object":{"apiVersion":"ai.example.com/v1","kind":"InferenceService","metadata":{"name":"x","namespace":"ns"},"spec":{"model":"m","gpuType":"T4","replicas":1,"maxBatchSize":32}}}}' >"$TDIR/review.json"
	run curl -sS --max-time 5 --cacert "$TEST_CERTS/ca.crt" -H 'Content-Type: application/json' --data-binary "@$TDIR/review.json" \
		"https://127.0.0.1:$port/validate"
	expect_ok "POST /validate"
	expect_eq "$(jq -r '.response.allowed' <<<"$OUT")" false "a T4 InferenceService is denied"
	[[ "$(jq -r '.response.status.message' <<<"$OUT")" == *'spec.gpuType: Unsupported value: "T4"'* ]] || fail "denial message"
	run curl -sS --max-time 5 --cacert "$TEST_CERTS/ca.crt" "https://127.0.0.1:$port/metrics"
	expect_out_has "inference_operator_http_requests_total"
	chroot_stop "$CH_PID" "$logf"
	note "serve --webhook-only on a read-only image root as uid 65532: /healthz, /readyz, /validate, /metrics over TLS from outside; clean SIGTERM"
}

# The image + the chart's args + the service-account files where the kubelet
# puts them + a writable directory for the certificates (the emptyDir): the
# closest this machine gets to the pod.
test_image_chroot_incluster() {
	need_root
	need_release_build
	needs image_layout incluster_reconcile
	local r="$TDIR/rootfs" logf="$TDIR/operator.log" sa tlsdir="$TDIR/emptydir" port args=() a
	rootfs_copy "$r"
	sa="$r/var/run/secrets/kubernetes.io/serviceaccount"
	mkdir -p "$sa" "$r/etc/inference-operator/tls" "$tlsdir" && cp "$SA_DIR/token" "$SA_DIR/ca.crt" "$SA_DIR/namespace" "$sa/" &&
		chmod 0644 "$sa"/* && chown 65532:65532 "$tlsdir" && chmod 0770 "$tlsdir" || fail "lay out the pod's mounts"
	# The chart's args verbatim, except the port: loopback, any free port.
	while IFS= read -r a; do
		case "$a" in --listen=*) args+=(--listen=127.0.0.1:0) ;; *) args+=("$a") ;; esac
	done < <(args_of)
	[ ${#args[@]} -gt 10 ] || fail "could not render the chart's args"
	op_stop main # the image's operator must do the work (and take the Lease)
	op_stop second
	: >"$logf"
	CH_RW="$tlsdir" CH_RW_AT=/etc/inference-operator/tls \
		chroot_start "$r" "$logf" KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT="$APISERVER_PORT" -- "${args[@]}"
	port="$(chroot_port "$logf" "$CH_PID")" || fail "no serving line from the chroot'd operator"
	ready() { [ -s "$tlsdir/ca.crt" ] && [ "$(tls_get "$port" "$tlsdir/ca.crt" /readyz -o /dev/null -w '%{http_code}')" = 200 ]; }
	wait_for "/readyz of the image's operator (certificate written to the emptyDir, caches synced)" 60 ready
	grep -E '"msg":"(reconciler started|became leader)"' "$logf" | sed 's/^/  log| /'
	expect_eq "$(stat -c %u "$tlsdir/tls.key")" 65532 "owner of the key it wrote"
	isvc_create from-image H100
	expect_reconciled from-image
	if grep -i -E '"code":403|forbidden|error while loading' "$logf" | head -n 5 | sed 's/^/  log| /' | grep -q .; then
		fail "errors in the image operator's log (above)"
	fi
	chroot_stop "$CH_PID" "$logf"
	note "the image (read-only root, uid 65532, env only KUBERNETES_SERVICE_HOST/PORT) with the chart's args, the SA files at the kubelet's path and a writable emptyDir: certificate from the Secret, Lease, reconcile, status, Events"
}

test_dockerfile_equivalent() {
	need_release_build
	needs image_layout
	local df="$REPO_ROOT/Dockerfile" oci="$IMG_DIR/oci" manifest config cfg pkg
	[ -f "$df" ] || fail "no Dockerfile"
	manifest="$(jq -r '.manifests[0].digest' "$oci/index.json")"
	config="$(jq -r .config.digest "$oci/blobs/sha256/${manifest#sha256:}")"
	cfg="$(jq -c .config "$oci/blobs/sha256/${config#sha256:}")"
	grep -qx 'FROM debian:12 AS build' "$df" || fail "build stage is not FROM debian:12"
	expect_eq "$(grep '^FROM ' "$df" | tail -n 1)" "FROM scratch" "runtime base"
	grep -q 'image/rootfs.sh ' "$df" || fail "the Dockerfile does not lay out the root with image/rootfs.sh"
	grep -qx 'COPY --from=build /rootfs/ /' "$df" || fail "the runtime stage does not copy the rootfs"
	expect_eq "$(sed -n 's/^USER //p' "$df")" "$(jq -r .User <<<"$cfg")" "USER"
	expect_json_eq "$(sed -n 's/^ENTRYPOINT //p' "$df")" "$(jq -c .Entrypoint <<<"$cfg")" "ENTRYPOINT"
	expect_json_eq "$(sed -n 's/^CMD //p' "$df")" "$(jq -c .Cmd <<<"$cfg")" "CMD"
	expect_eq "$(sed -n 's/^WORKDIR //p' "$df" | tail -n 1)" "$(jq -r .WorkingDir <<<"$cfg")" "WORKDIR"
	[ "$(grep -c '^ENV ' "$df")" = 0 ] || fail "ENV in the Dockerfile (the image has none)"
	# Every -dev package CI builds with (but the test framework and the
	# fuzzer's runtime) is in the build stage.
	for pkg in $(grep -o '[a-z0-9.+-]*-dev' "$REPO_ROOT/.ci/run" | sort -u); do
		case "$pkg" in libcriterion-dev | libclang-rt-*-dev) continue ;; esac
		grep -q -- " $pkg\b" "$df" || fail "the Dockerfile's build stage lacks $pkg (in .ci/run)"
	done
	note "same rootfs script, USER/ENTRYPOINT/CMD/WORKDIR as the OCI config, CI's build packages; not built here (no Docker engine on this machine)"
}
