#!/usr/bin/env bash
# Run every fuzz target for SECONDS each; fail on any crash, leak, timeout,
# out-of-memory or sanitizer report.
#
#   fuzz/run.sh SECONDS [TARGET...]
#
# Each target starts from a copy of its committed seeds (fuzz/corpus/<t>)
# in build/fuzz/run/<t>/corpus, so what it discovers never touches the
# repository; crashers land in build/fuzz/run/<t>/artifacts/.  Prints one
# line per target (execs, execs/s, coverage, corpus growth, peak RSS) and,
# for a failure, the report and the command that reproduces it.
#
# Env: FUZZ_JOBS (targets run in parallel, default 1), FUZZ_BUILD (default
# build/fuzz), FUZZ_ARGS (extra libFuzzer flags).
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2
ROOT=$PWD
SECONDS_EACH=${1:-}
case "$SECONDS_EACH" in
'' | *[!0-9]*) echo "usage: fuzz/run.sh SECONDS [TARGET...]" >&2; exit 2 ;;
esac
shift
OUT=${FUZZ_BUILD:-$ROOT/build/fuzz}
JOBS=${FUZZ_JOBS:-1}
TARGETS=(fuzz_admission fuzz_watch_lines fuzz_kubeconfig fuzz_cache_decoders)
[ $# -gt 0 ] && TARGETS=("$@")

# Longest input per target: a few times the largest real object.
declare -A MAX_LEN=(
	[fuzz_admission]=32768
	[fuzz_watch_lines]=65536
	[fuzz_kubeconfig]=24576
	[fuzz_cache_decoders]=32768
)

FUZZ_BUILD=$OUT fuzz/build.sh "${TARGETS[@]}" || exit 1

export ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=0:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"

# run_one TARGET: fuzz it; its verdict goes to run/<t>/status.
run_one() {
	local t=$1 dir="$OUT/run/$1"
	rm -rf "$dir"
	mkdir -p "$dir/corpus" "$dir/artifacts" "$dir/scratch"
	cp fuzz/corpus/"$t"/* "$dir/corpus/"
	local seeds
	seeds=$(find "$dir/corpus" -type f | wc -l)
	local dict=()
	[ -f "fuzz/$t.dict" ] && dict=(-dict="fuzz/$t.dict")
	# shellcheck disable=SC2086
	FUZZ_SCRATCH="$dir/scratch" "$OUT/$t" \
		-max_total_time="$SECONDS_EACH" -max_len="${MAX_LEN[$t]:-16384}" \
		-timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 \
		-detect_leaks=1 -print_final_stats=1 -artifact_prefix="$dir/artifacts/" \
		"${dict[@]}" ${FUZZ_ARGS:-} "$dir/corpus" >"$dir/log" 2>&1
	local rc=$?
	local bad=""
	[ $rc -eq 0 ] || bad="exit $rc"
	[ -z "$(ls -A "$dir/artifacts")" ] || bad="${bad:+$bad, }artifacts written"
	if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|SUMMARY: ' "$dir/log"; then
		bad="${bad:+$bad, }sanitizer report"
	fi
	local execs rate cov ft corp rss
	final_stat() { sed -n "s/^stat::$1: *//p" "$dir/log" | tail -1; }
	execs=$(final_stat number_of_executed_units)
	rate=$(final_stat average_exec_per_sec)
	rss=$(final_stat peak_rss_mb)
	cov=$(grep -oE 'cov: [0-9]+' "$dir/log" | tail -1 | cut -d' ' -f2)
	ft=$(grep -oE 'ft: [0-9]+' "$dir/log" | tail -1 | cut -d' ' -f2)
	corp=$(grep -oE 'corp: [0-9]+' "$dir/log" | tail -1 | cut -d' ' -f2)
	printf '%s %s: %s, %ss, %s execs (%s/s), cov %s ft %s, corpus %s (seeds %s), peak rss %s MB\n' \
		"$([ -z "$bad" ] && echo ok || echo FAIL)" "$t" "${bad:-clean}" "$SECONDS_EACH" \
		"${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$seeds" \
		"${rss:-?}" >"$dir/status"
	if [ -n "$bad" ]; then
		{
			echo "---- $t: $dir/log (from the report)"
			# The report itself, not ASan's shadow-byte legend after it.
			grep -vE '^#[0-9]+' "$dir/log" |
				sed -n '/ERROR: \|runtime error:\|invariant broken\|SUMMARY: /,$p' |
				grep -vE '^ +(Shadow|Addressable|Partially|Heap|Freed|Stack|Global|Poisoned|Container|Array|Intra|ASan|Left|Right)|^  0x|^=>0x' |
				head -40
			for a in "$dir"/artifacts/*; do
				[ -e "$a" ] || continue
				echo "---- reproduce: $OUT/$t $a"
			done
		} >>"$dir/status"
	fi
}

pids=()
for t in "${TARGETS[@]}"; do
	run_one "$t" &
	pids+=($!)
	while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
done
wait

fail=0
for t in "${TARGETS[@]}"; do
	if [ -f "$OUT/run/$t/status" ]; then
		cat "$OUT/run/$t/status"
		head -1 "$OUT/run/$t/status" | grep -q '^ok ' || fail=1
	else
		echo "FAIL $t: did not run"
		fail=1
	fi
done
[ $fail -eq 0 ] && echo "fuzz: all ${#TARGETS[@]} targets clean" || echo "fuzz: FAILED"
exit $fail
