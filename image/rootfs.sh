#!/usr/bin/env bash
# image/rootfs.sh BIN DEST — lay out the container image's root filesystem in
# DEST (which must not exist or be empty): the binary, exactly the shared
# libraries it loads (none for the default static PIE), and a passwd/group
# entry for the non-root user. Nothing else: no shell, no package manager, no
# CA bundle (the operator trusts the in-cluster CA from its service-account
# directory).
#
#   /usr/local/bin/inference-operator          the binary, stripped of debug info
#   /etc/passwd, /etc/group                    nonroot (65532) only
# and only for a dynamic binary (make STATIC=0 or LEAN=0):
#   /lib64/ld-linux-x86-64.so.2                the dynamic loader (PT_INTERP)
#   /lib/x86_64-linux-gnu/lib*.so.N            every library ldd resolves, by soname
#
# A static binary (no PT_INTERP) needs nothing else: glibc 2.36 has the
# files/dns NSS modules inside libc, and the operator never resolves a user
# name nor loads a locale or iconv module.
#
# Shared by image/build.sh (umoci, no Docker) and the Dockerfile's build stage,
# so both images hold the same files. Libraries the binary would dlopen at run
# time go in EXTRA_LIBS (space-separated paths); none are needed today: a full
# run (webhook + reconciler + TLS client + shutdown) under strace opens only the
# ldd set (GnuTLS loads no PKCS#11 module unless asked to).
#
# Env: STRIP (default 1: strip --strip-unneeded the copy of BIN),
#      SOURCE_DATE_EPOCH (default: the last commit's time, else 0) for mtimes,
#      EXTRA_LIBS (see above).
# Needs: ldd (libc-bin), strip (binutils), coreutils.
set -euo pipefail

die() { echo "[rootfs.sh] ERROR: $*" >&2; exit 1; }
[ $# -eq 2 ] || die "usage: $0 BIN DEST"
bin="$1" dest="$2"
[ -x "$bin" ] || die "$bin is not an executable (run make)"
if [ -e "$dest" ] && [ -n "$(ls -A "$dest")" ]; then die "$dest is not empty"; fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
epoch="${SOURCE_DATE_EPOCH:-$(git -C "$here" log -1 --format=%ct 2>/dev/null || echo 0)}"

umask 022
mkdir -p "$dest/usr/local/bin" "$dest/etc"

# The binary (a stripped copy: debug info is for the build tree, not the image).
install -m 0755 "$bin" "$dest/usr/local/bin/inference-operator"
if [ "${STRIP:-1}" = 1 ]; then
	strip --strip-unneeded "$dest/usr/local/bin/inference-operator"
fi

# Libraries: what the dynamic loader resolves for the binary, at the paths it
# printed (the loader's default search path, so no ld.so.cache is needed).
# The ELF interpreter decides static or dynamic: ldd's wording and exit
# status for a static binary differ between glibc versions.
interp="$(readelf -l "$bin" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')" \
	|| die "readelf -l $bin failed (not an ELF executable?)"
libs=""
if [ -n "$interp" ]; then
	ldd_out="$(ldd "$bin")" || die "ldd $bin failed although it names the interpreter $interp"
	if grep -q 'not found' <<<"$ldd_out"; then
		die "ldd: missing libraries:"$'\n'"$(grep 'not found' <<<"$ldd_out")"
	fi
	libs="$(awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$ldd_out")"
fi
for lib in $libs ${EXTRA_LIBS:-}; do
	case "$lib" in /*) ;; *) die "not an absolute library path: $lib" ;; esac
	mkdir -p "$dest$(dirname "$lib")"
	# -L: the file the soname symlink points at, under the soname.
	cp -L "$lib" "$dest$lib"
	case "$lib" in */ld-linux*) chmod 0755 "$dest$lib" ;; *) chmod 0644 "$dest$lib" ;; esac
done
[ -z "$interp" ] || [ -f "$dest$interp" ] || die "the ELF interpreter $interp is not in ldd's list"

# The non-root user the image runs as (USER 65532:65532). No shell exists, so
# the login shell is a path that is not there.
printf 'nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin\n' >"$dest/etc/passwd"
printf 'nonroot:x:65532:\n' >"$dest/etc/group"
chmod 0644 "$dest/etc/passwd" "$dest/etc/group"

# Reproducible metadata: root-owned, one timestamp.
chown -R 0:0 "$dest" 2>/dev/null || true
find "$dest" -exec touch -h -d "@$epoch" {} +
