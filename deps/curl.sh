#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# deps/curl.sh — a lean static libcurl for the LEAN=1 build (the default).
#
# Debian's libcurl-gnutls costs the operator ~5 MB of RSS: it links libssh2
# (and through it OpenSSL's libcrypto), Kerberos, LDAP, SASL, RTMP, libpsl,
# libidn2, brotli and zstd, all loaded and relocated at startup though the
# operator only speaks HTTPS to one API server.  This builds libcurl from
# Debian's curl source package with HTTP/HTTPS over GnuTLS, gzip, the
# threaded resolver and the proxy variables, and nothing else; see
# deps/lib.sh for the cache and how the source is fetched.  ~1 minute cold
# on 2 cores.
#
#   deps/curl.sh            build if missing; print the prefix on stdout
#   deps/curl.sh --prefix   print the prefix only (no network, no build)
#
# Version: CURL_DEB_VERSION, default the installed libcurl3-gnutls's source
# version (so LEAN=0 and LEAN=1 run the same curl code and patches).
# Needs: build-essential, pkg-config, dpkg-dev, libgnutls28-dev,
# zlib1g-dev (.ci/run installs them).  Progress goes to
# stderr, the build log to <prefix>.log.
set -euo pipefail
DEP_NAME=curl
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

# Kept: http, https (GnuTLS), gzip (zlib: the client sends
# Accept-Encoding), the threaded resolver (timeouts with CURLOPT_NOSIGNAL),
# IPv6, the https_proxy/no_proxy variables with Basic auth
# (kube_config_file.c tells users to set https_proxy), Debian's CA path,
# and the error strings (without them every failure reads "Error"; with
# them gtls.c needs the date parser).  Not HTTP/2: the client speaks
# HTTP/1.1 (kube_client.c says why), so nghttp2 would be dead weight.
CONFIGURE_FLAGS=(
    --disable-shared --enable-static --with-pic
    --disable-dependency-tracking --disable-silent-rules
    --disable-debug --disable-curldebug --enable-optimize
    --enable-symbol-hiding --disable-libcurl-option --disable-manual
    --with-gnutls --without-nghttp2 --with-zlib
    --enable-threaded-resolver --disable-ares --enable-ipv6
    --enable-http --enable-proxy --enable-http-auth
    --disable-ftp --disable-file --disable-ldap --disable-ldaps --disable-rtsp
    --disable-dict --disable-telnet --disable-tftp --disable-pop3
    --disable-imap --disable-smb --disable-smtp --disable-gopher --disable-mqtt
    --disable-unix-sockets --disable-cookies --disable-doh --disable-mime
    --disable-netrc --disable-progress-meter --disable-dnsshuffle
    --disable-get-easy-options --disable-alt-svc --disable-hsts
    --disable-websockets --disable-headers-api
    --disable-ntlm --disable-ntlm-wb --disable-crypto-auth --disable-tls-srp
    --disable-sspi
    --without-libssh2 --without-libssh --without-wolfssh --without-librtmp
    --without-libpsl --without-libidn2 --without-brotli --without-zstd
    --without-gssapi --without-libgsasl --without-hyper --without-ngtcp2
    --without-nghttp3 --without-quiche --without-msh3
    --without-ca-bundle --with-ca-path=/etc/ssl/certs --without-ca-fallback
    --without-zsh-functions-dir --without-fish-functions-dir
)
# Debian's hardening, no debug info; sections so the operator's link drops
# what it never calls.  -Os: the code is mapped whole (the kernel maps
# file pages around each fault), so smaller text is smaller RSS; the hot
# crypto is in nettle's assembly, not here.
BUILD_CFLAGS="-Os -fstack-protector-strong -fstack-clash-protection \
-fcf-protection -ffunction-sections -fdata-sections"
BUILD_CPPFLAGS="-D_FORTIFY_SOURCE=2"

version=${CURL_DEB_VERSION:-$(dep_deb_version libcurl3-gnutls libcurl4 curl)} \
    || dep_die "no Debian curl package installed to take the source version" \
               "from: apt-get install libcurl3-gnutls, or set CURL_DEB_VERSION"
prefix=$(printf '%s\n' "${CONFIGURE_FLAGS[@]}" "$BUILD_CFLAGS" "$BUILD_CPPFLAGS" \
         | dep_prefix curl "$version")

if [ "${1:-}" = "--prefix" ] || [ -f "$prefix/.done" ]; then
    echo "$prefix"
    exit 0
fi
dep_begin "$prefix" || { echo "$prefix"; exit 0; }
start=$(date +%s)
log=$prefix.log
: >"$log"
work=$(mktemp -d "$DEPS_CACHE/.curl-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
dep_apt_source curl "$version" "$work" "$log"
src=$(dep_srcdir "$work" curl)

# Debian's packaging patches touch configure.ac/Makefile.am only to rename
# the shared library and tune curl-config; the shipped configure and
# Makefile.in (maintainer mode is off) build the upstream layout, with
# every Debian source patch applied.  No autoreconf needed.
dep_say "configure (log: $log)"
( cd "$src" && ./configure --prefix="$prefix" "${CONFIGURE_FLAGS[@]}" \
      CC="${CC:-cc}" CFLAGS="$BUILD_CFLAGS" \
      CPPFLAGS="$BUILD_CPPFLAGS -DCURL_PATCHSTAMP=\\\"$version\\\"" ) >>"$log" 2>&1 \
    || { tail -20 "$log" >&2; dep_die "configure failed; see $log"; }
dep_say "make ($(nproc) jobs)"
make -C "$src/lib" -j"$(nproc)" >>"$log" 2>&1 \
    || { tail -20 "$log" >&2; dep_die "make failed; see $log"; }
rm -rf "$prefix"
{ make -C "$src/lib" install && make -C "$src/include" install \
    && install -D -m 644 "$src/libcurl.pc" "$prefix/lib/pkgconfig/libcurl.pc"; } \
    >>"$log" 2>&1 || { tail -20 "$log" >&2; dep_die "install failed; see $log"; }
rm -f "$prefix"/lib/*.la
{
    echo "debian-version: $version"
    echo "cc: $("${CC:-cc}" -dumpfullversion 2>/dev/null || echo unknown)"
    echo "configure: ${CONFIGURE_FLAGS[*]}"
    echo "cflags: $BUILD_CFLAGS $BUILD_CPPFLAGS"
    echo "features: $(sh "$src/curl-config" --features | tr '\n' ' ')"
    echo "protocols: $(sh "$src/curl-config" --protocols | tr '\n' ' ')"
} >"$prefix/BUILD-INFO"
touch "$prefix/.done"
dep_say "done in $(( $(date +%s) - start )) s: $prefix"
echo "$prefix"
