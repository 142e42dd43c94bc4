# shellcheck shell=bash
# deps/lib.sh — shared by deps/curl.sh, deps/gnutls.sh and deps/cjson.sh
# (sourced).
#
# Each dependency is built from Debian's own source package (so Debian's
# security patches are in) into a cache outside the repo:
#
#   ${XDG_CACHE_HOME:-$HOME/.cache}/inference-operator/deps/
#       NAME-<debian version>-<hash of the configure flags>/{include,lib}
#
# and reused while it is there ("<prefix>/.done").  The source comes through
# a private apt configuration under that cache: a deb-src twin of every
# enabled `deb` source of this machine (same URIs, suites, components and
# Signed-By keyring) with its own lists and cache directories.  /etc/apt is
# never touched, so nothing here can break apt for anyone else, and there
# is no "Conflicting values set for option Signed-By" to run into.

DEPS_CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/inference-operator/deps

dep_say() { echo "deps/${DEP_NAME:-?}: $*" >&2; }
dep_die() { dep_say "$*"; exit 1; }

# dep_deb_version BINPKG...: the source version of the first installed one.
dep_deb_version() {
    local p v
    for p in "$@"; do
        v=$(dpkg-query -W -f='${db:Status-Abbrev} ${source:Version}' "$p" \
                2>/dev/null | awk '/^ii/{print $2}')
        if [ -n "$v" ]; then
            echo "$v"
            return 0
        fi
    done
    return 1
}

# dep_prefix NAME VERSION: the cache prefix for the flags on stdin.
dep_prefix() {
    local hash
    hash=$( { cat; "${CC:-cc}" -dumpfullversion 2>/dev/null; } | sha256sum | cut -c1-12)
    echo "$DEPS_CACHE/$1-${2//[:~]/_}-$hash"
}

# dep_begin PREFIX: take the per-prefix lock; returns 1 if already built
# (by us or by a concurrent build we waited for).
dep_begin() {
    mkdir -p "$DEPS_CACHE"
    exec 9>"$1.lock"
    flock 9
    [ ! -f "$1/.done" ]
}

# dep_apt_source SRCPKG VERSION DIR LOG: `apt-get source SRCPKG=VERSION`
# into DIR through the private deb-src configuration.
dep_apt_source() {
    local pkg=$1 version=$2 dir=$3 log=$4 apt_dir=$DEPS_CACHE/apt f
    mkdir -p "$apt_dir/sources" "$apt_dir/lists/partial" \
             "$apt_dir/cache/archives/partial"
    exec 8>"$apt_dir.lock"
    flock 8
    # deb-src twins of the enabled deb sources: deb822 stanzas with their
    # Types line replaced, one-line entries with deb -> deb-src.
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk '
            BEGIN { RS = ""; FS = "\n" }
            {
                types = ""; enabled = 1; out = ""
                for (i = 1; i <= NF; i++) {
                    if ($i ~ /^[Tt]ypes:/) {
                        types = $i
                        sub(/^[Tt]ypes:[ \t]*/, "", types)
                        out = out "Types: deb-src\n"
                        continue
                    }
                    if ($i ~ /^[Ee]nabled:[ \t]*[Nn][Oo]/)
                        enabled = 0
                    out = out $i "\n"
                }
                if (enabled && (" " types " ") ~ /[ \t]deb[ \t]/)
                    printf "%s\n", out
            }' "$f"
    done >"$apt_dir/sources/deb-src.sources.new"
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        sed -n 's/^[ \t]*deb\([ \t]\)/deb-src\1/p' "$f"
    done >"$apt_dir/sources/deb-src.list.new"
    for f in deb-src.sources deb-src.list; do
        if [ -s "$apt_dir/sources/$f.new" ]; then
            mv "$apt_dir/sources/$f.new" "$apt_dir/sources/$f"
        else
            rm -f "$apt_dir/sources/$f.new" "$apt_dir/sources/$f"
        fi
    done
    [ -n "$(ls -A "$apt_dir/sources")" ] \
        || dep_die "no enabled deb sources in /etc/apt to take deb-src lines from"
    local apt_opts=(
        -o "Dir::Etc::SourceList=/dev/null"
        -o "Dir::Etc::SourceParts=$apt_dir/sources"
        -o "Dir::State::Lists=$apt_dir/lists"
        -o "Dir::Cache=$apt_dir/cache"
        -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache="
    )
    # The download dir is ours (maybe under a private $HOME): no _apt sandbox.
    [ "$(id -u)" -eq 0 ] && apt_opts+=(-o "APT::Sandbox::User=root")
    # (no grep -q: with pipefail, apt-cache's SIGPIPE would count as a miss)
    if ! apt-cache "${apt_opts[@]}" showsrc "$pkg" 2>/dev/null \
            | grep -x "Version: $version" >/dev/null; then
        dep_say "apt-get update of the private deb-src lists"
        apt-get -q "${apt_opts[@]}" update >>"$log" 2>&1 \
            || { tail -5 "$log" >&2; dep_die "apt-get update failed; see $log"; }
    fi
    dep_say "apt-get source $pkg=$version"
    ( cd "$dir" && apt-get -q "${apt_opts[@]}" source "$pkg=$version" ) >>"$log" 2>&1 || {
        tail -5 "$log" >&2
        dep_die "apt-get source $pkg=$version failed (see $log); a version no" \
                "longer in the archive: upgrade the installed package, or set" \
                "the version variable named in deps/$DEP_NAME.sh"
    }
    flock -u 8
}

# dep_srcdir DIR NAME: the unpacked source tree.
dep_srcdir() {
    local d
    d=$(find "$1" -mindepth 1 -maxdepth 1 -type d -name "$2-*" | head -1)
    [ -n "$d" ] || dep_die "no $2-* source tree after apt-get source"
    echo "$d"
}
