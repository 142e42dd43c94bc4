#!/usr/bin/env python3
"""layout/order.py — turn a profile of what the operator touched into the
link order of its static binary (layout/hot.ld).

Why: the kernel maps a file's pages 64 KiB at a time around each fault
("fault-around"), so every 64 KiB window of the binary that the process
touches once is resident in full.  Linked in the default order, the code
and constants the operator uses are spread over nearly every window of a
3.4 MB binary (GnuTLS, glibc, nettle, GMP, curl, libmicrohttpd, ours), and
~2.6 MB of it was resident at startup.  Gathered at the front of the text
and of the read-only data, what runs and what is read fills far fewer
windows; the rest is never mapped.

Inputs:
  --map FILE       the GNU ld map (-Wl,-Map) of the profiled binary
  --touched FILE   byte ranges ("first last", hex offsets from the binary's
                   load address) that a valgrind lackey run executed or read
                   (layout/touch.c); several allowed
  --faults FILE    `perf script -F addr` of page faults of a native run
                   (perf record -e page-faults -d), with --fault-base, the
                   load address of that run: what valgrind's CPU did not
                   show (glibc's CPU-specific paths); several allowed
Output (stdout): a GNU ld script, INSERTed before .text and after .rodata.

Input sections are named by archive member and section name, which do not
depend on the layout, so a profile taken on one build orders the next; a
function that is new since the profile is only left among the cold code.
"""
import argparse
import bisect
import re
import sys

# Sections whose order is worth choosing: code and read-only data.
TEXT = re.compile(r"^\.text(\.|$)")
RODATA = re.compile(r"^\.rodata(\.|$)")

# glibc picks one of several implementations of memcpy, strlen, ... by CPU
# (IFUNC), and nettle does the same for AES, SHA and GHASH ("fat" build):
# valgrind's CPU is not the machine's, so when one variant is hot, all are.
GLIBC_VARIANT = re.compile(
    r"-(sse2|sse3|ssse3|sse4_1|sse4_2|avx|avx2|evex|evex512|avx512|erms|"
    r"unaligned|rtm|movbe|bmi2|vec|no-vzeroupper)\b.*$")


def parse_map(path):
    """[(addr, size, section, file)] of the map's input sections, sorted."""
    out = []
    pending = None
    in_memory_map = False
    full = re.compile(r"^ (\.\S+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$")
    name_only = re.compile(r"^ (\.\S+)$")
    rest = re.compile(r"^\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$")
    with open(path) as f:
        for line in f:
            if line.startswith("Linker script and memory map"):
                in_memory_map = True
                continue
            if not in_memory_map:
                continue
            m = full.match(line)
            if m:
                sec, addr, size, obj = m.group(1), m.group(2), m.group(3), m.group(4)
            else:
                n = name_only.match(line)
                if n:
                    pending = n.group(1)
                    continue
                r = rest.match(line)
                if not (r and pending):
                    pending = None
                    continue
                sec, addr, size, obj = pending, r.group(1), r.group(2), r.group(3)
            pending = None
            if not (TEXT.match(sec) or RODATA.match(sec)):
                continue
            addr, size = int(addr, 16), int(size, 16)
            if size and addr:
                out.append((addr, size, sec, obj.strip()))
    out.sort()
    return out


def member(obj):
    """(archive, member) for 'path/libx.a(m.o)', else (None, 'dir/file.o')."""
    m = re.match(r"^(?:.*/)?([^/(]+\.a)\((.+)\)$", obj)
    if m:
        return m.group(1), m.group(2)
    return None, "/".join(obj.split("/")[-2:])


def pattern(sec, obj):
    archive, mem = member(obj)
    where = f"*{archive}:{mem}" if archive else f"*{mem}"
    return f"{where}({sec})"


def family(obj):
    """A key shared by the CPU-specific variants of one function."""
    archive, mem = member(obj)
    stem = mem[:-2] if mem.endswith(".o") else mem
    if archive == "libc.a":
        return ("libc", GLIBC_VARIANT.sub("", stem))
    if archive in ("libnettle.a", "libhogweed.a"):
        return ("nettle", re.sub(r"-2$", "", stem))
    return None


def read_ranges(path):
    with open(path) as f:
        return [tuple(int(w, 16) for w in line.split()) for line in f if line.strip()]


def read_faults(path, base):
    out = []
    with open(path) as f:
        for line in f:
            word = line.split()[:1]
            if word:
                try:
                    a = int(word[0], 16)
                except ValueError:
                    continue
                if a >= base:
                    out.append(a - base)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--map", required=True)
    ap.add_argument("--touched", action="append", default=[])
    ap.add_argument("--faults", action="append", default=[])
    ap.add_argument("--fault-base", type=lambda s: int(s, 0), default=0)
    ap.add_argument("--keep", help="an earlier hot.ld whose sections stay hot")
    a = ap.parse_args()

    secs = parse_map(a.map)
    starts = [s[0] for s in secs]
    hot = {}

    def mark(first, last=None):
        """Every section that [first, last] overlaps is hot."""
        last = first if last is None else last
        i = max(bisect.bisect_right(starts, first) - 1, 0)
        while i < len(secs) and secs[i][0] <= last:
            if secs[i][0] + secs[i][1] > first:
                hot[(secs[i][2], secs[i][3])] = secs[i]
            i += 1

    for path in a.touched:
        for first, last in read_ranges(path):
            mark(first, last)
    for path in a.faults:
        for off in read_faults(path, a.fault_base):
            mark(off)
    if a.keep:
        kept = set()
        with open(a.keep) as f:
            for line in f:
                line = line.strip()
                if line.startswith("*") and line.endswith(")"):
                    kept.add(line)
        for s in secs:
            if pattern(s[2], s[3]) in kept:
                hot[(s[2], s[3])] = s

    by_family = {}
    for s in secs:
        k = family(s[3])
        if k:
            by_family.setdefault(k, []).append(s)
    for s in list(hot.values()):
        for v in by_family.get(family(s[3]), []):
            hot[(v[2], v[3])] = v

    chosen = sorted(hot.values())
    text = [s for s in chosen if TEXT.match(s[2])]
    rodata = [s for s in chosen if RODATA.match(s[2])]
    all_text = sum(s[1] for s in secs if TEXT.match(s[2]))
    all_ro = sum(s[1] for s in secs if RODATA.match(s[2]))
    hot_text = sum(s[1] for s in text)
    hot_ro = sum(s[1] for s in rodata)
    print(f"order: hot text {hot_text} of {all_text} bytes ({len(text)} sections), "
          f"hot read-only data {hot_ro} of {all_ro} ({len(rodata)})", file=sys.stderr)

    out = [
        "/* layout/hot.ld — generated by layout/order.py from a profile of the",
        " * operator (layout/profile.sh); do not edit, regenerate: make layout.",
        f" * Hot text {hot_text} of {all_text} bytes, hot read-only data {hot_ro}",
        f" * of {all_ro}: each gathered in one place so the pages the kernel maps",
        " * around each fault hold what runs, not what never does. */",
        "SECTIONS",
        "{",
        "  .text.ordered :",
        "  {",
    ]
    out += [f"    {pattern(s[2], s[3])}" for s in text]
    out += ["  }", "}", "INSERT BEFORE .text;", "", "SECTIONS", "{",
            "  .rodata.ordered :", "  {"]
    out += [f"    {pattern(s[2], s[3])}" for s in rodata]
    # After .rodata, not before: before it, ld puts the section in the
    # executable segment, and constants need not be executable.
    out += ["  }", "}", "INSERT AFTER .rodata;", ""]
    sys.stdout.write("\n".join(out))


if __name__ == "__main__":
    main()
