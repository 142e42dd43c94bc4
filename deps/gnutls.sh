#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# deps/gnutls.sh — a lean static GnuTLS for the LEAN=1 build (the default).
#
# Debian's libgnutls30 links p11-kit (and through it libffi), libidn2 and
# libunistring: ~0.5 MB of the operator's RSS before it does anything, for
# PKCS#11 tokens and internationalized host names it never uses.  This
# builds GnuTLS from Debian's gnutls28 source package, same version as the
# installed libgnutls30, without p11-kit, TPM, IDN, SRP, anonymous auth,
# DTLS-SRTP, heartbeat, GOST and the certificate-compression codecs, as a
# static library with one section per function so the operator's link keeps
# only what it calls.  Kept: TLS 1.2/1.3, ECDHE/DHE, RSA/ECDSA/EdDSA,
# X.509, PKCS#8/PKCS#12, OCSP (curl's API), PSK (libmicrohttpd's),
# ALPN (HTTP/2), x86-64 acceleration; Debian's trust store file.  Nettle,
# hogweed, GMP and libtasn1 are Debian's static libraries.
#
#   deps/gnutls.sh            build if missing; print the prefix on stdout
#   deps/gnutls.sh --prefix   print the prefix only (no network, no build)
#
# ~3 minutes cold on 2 cores (autoreconf: Debian's patches add a gnulib
# module, as Debian's own build does).  Version: GNUTLS_DEB_VERSION, default
# the installed libgnutls30's source version.  Needs: build-essential,
# pkg-config, dpkg-dev, autoconf, automake, libtool, autopoint, gettext,
# nettle-dev, libgmp-dev, libtasn1-6-dev (.ci/run installs them).
set -euo pipefail
DEP_NAME=gnutls
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

CONFIGURE_FLAGS=(
    --disable-shared --enable-static --with-pic
    --disable-maintainer-mode --disable-dependency-tracking
    --disable-silent-rules
    --disable-doc --disable-manpages --disable-tools --disable-cxx
    --disable-tests --disable-nls --disable-guile --disable-libdane
    --disable-valgrind-tests --disable-full-test-suite
    --without-p11-kit --without-tpm --without-tpm2 --without-idn
    --with-included-unistring
    --without-zlib --without-brotli --without-zstd
    --disable-srp-authentication --disable-anon-authentication
    --disable-dtls-srtp-support --disable-heartbeat-support --disable-gost
    --disable-padlock
    --with-default-trust-store-file=/etc/ssl/certs/ca-certificates.crt
    --with-packager=Debian
)
# -Os: the code is mapped whole (the kernel maps file pages around each
# fault), so smaller text is smaller RSS; the hot crypto is nettle's
# assembly, not GnuTLS's C.
BUILD_CFLAGS="-Os -fstack-protector-strong -fstack-clash-protection \
-fcf-protection -ffunction-sections -fdata-sections"
BUILD_CPPFLAGS="-D_FORTIFY_SOURCE=2"

version=${GNUTLS_DEB_VERSION:-$(dep_deb_version libgnutls30)} \
    || dep_die "libgnutls30 is not installed: apt-get install libgnutls28-dev," \
               "or set GNUTLS_DEB_VERSION"
prefix=$(printf '%s\n' "${CONFIGURE_FLAGS[@]}" "$BUILD_CFLAGS" "$BUILD_CPPFLAGS" \
         | dep_prefix gnutls "$version")

if [ "${1:-}" = "--prefix" ] || [ -f "$prefix/.done" ]; then
    echo "$prefix"
    exit 0
fi
dep_begin "$prefix" || { echo "$prefix"; exit 0; }
start=$(date +%s)
log=$prefix.log
: >"$log"
work=$(mktemp -d "$DEPS_CACHE/.gnutls-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
dep_apt_source gnutls28 "$version" "$work" "$log"
src=$(dep_srcdir "$work" gnutls28)

for t in autoreconf autopoint libtoolize; do
    command -v "$t" >/dev/null \
        || dep_die "$t is missing: apt-get install autoconf automake libtool autopoint"
done
# gtk-doc.m4 ships in the tree; gtkdocize itself is not needed without docs.
dep_say "autoreconf (log: $log)"
( cd "$src" && GTKDOCIZE=true autoreconf -fi ) >>"$log" 2>&1 \
    || { tail -20 "$log" >&2; dep_die "autoreconf failed; see $log"; }
dep_say "configure"
( cd "$src" && ./configure --prefix="$prefix" "${CONFIGURE_FLAGS[@]}" \
      --with-packager-version="$version" \
      CC="${CC:-cc}" CFLAGS="$BUILD_CFLAGS" CPPFLAGS="$BUILD_CPPFLAGS" ) >>"$log" 2>&1 \
    || { tail -20 "$log" >&2; dep_die "configure failed; see $log"; }
dep_say "make ($(nproc) jobs)"
{ make -C "$src/gl" -j"$(nproc)" && make -C "$src/lib" -j"$(nproc)"; } >>"$log" 2>&1 \
    || { tail -20 "$log" >&2; dep_die "make failed; see $log"; }
rm -rf "$prefix"
make -C "$src/lib" install >>"$log" 2>&1 \
    || { tail -20 "$log" >&2; dep_die "install failed; see $log"; }
rm -f "$prefix"/lib/*.la
{
    echo "debian-version: $version"
    echo "cc: $("${CC:-cc}" -dumpfullversion 2>/dev/null || echo unknown)"
    echo "configure: ${CONFIGURE_FLAGS[*]}"
    echo "cflags: $BUILD_CFLAGS $BUILD_CPPFLAGS"
    sed -n '/^configure: summary of build options:/,/^configure: System files:/p' "$log" \
        | sed 's/^/  /'
} >"$prefix/BUILD-INFO"
touch "$prefix/.done"
dep_say "done in $(( $(date +%s) - start )) s: $prefix"
echo "$prefix"
