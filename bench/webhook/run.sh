#!/usr/bin/env bash
# bench/webhook/run.sh BIN BUILDDIR — admission webhook throughput, latency
# and RSS against the stack's floor (floor.c).  Called by `make bench-webhook`
# after bench/webhook/Makefile built BUILDDIR/load and BUILDDIR/floor.
#
# Both servers run side by side on 127.0.0.1 (an idle server costs nothing)
# and their loads are interleaved: floor, /validate, /mutate, repeated REPS
# times per connection count, the median run (by reviews/s) reported.  The
# machine has 2 cores shared by server, generator and anything else running,
# so interleaving keeps a burst of outside load from skewing one side only.
#
# Knobs (environment): BENCH_REPS (5), BENCH_N1 requests at 1 connection
# (20000), BENCH_N requests at 50/200 connections (100000), BENCH_WARMUP
# (2000), BENCH_CONNS ("1 50 200"), BENCH_THREADS generator threads at
# >1 connection (2; always 1 at 1 connection), BENCH_SETTLE seconds idle
# before the last RSS reading (6: one period of the operator's heap trim,
# server/serve.c, plus one).
#
# RSS growth is reported two ways, both against the reading before any load:
# the peak (VmHWM) through each connection level, and VmRSS once the
# server has been idle BENCH_SETTLE seconds after all of them.
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 BIN BUILDDIR" >&2
    exit 2
fi
BIN=$1
BUILDDIR=$2
HERE=$(cd "$(dirname "$0")" && pwd)
LOAD=$BUILDDIR/load
FLOOR=$BUILDDIR/floor
REPS=${BENCH_REPS:-5}
N1=${BENCH_N1:-20000}
NC=${BENCH_N:-100000}
WARMUP=${BENCH_WARMUP:-2000}
CONNS=${BENCH_CONNS:-1 50 200}
THREADS=${BENCH_THREADS:-2}
SETTLE=${BENCH_SETTLE:-6}
JSON_OUT=$BUILDDIR/webhook-bench.json

TMP=$(mktemp -d /tmp/webhook-bench.XXXXXX)
PIDS=()

# Stop what we started (by pid), bounded: SIGTERM, 10 s grace, SIGKILL.
stop_pid() {
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_server NAME CMD... — sets STARTED_PID and STARTED_PORT once the
# server logged its "port" (it logs that only after it listens).
start_server() {
    local name=$1 port=""
    shift
    "$@" 2>"$TMP/$name.log" &
    STARTED_PID=$!
    PIDS+=("$STARTED_PID")
    for _ in $(seq 100); do
        port=$(grep -o '"port":[0-9]*' "$TMP/$name.log" | head -n1 | cut -d: -f2 || true)
        [ -n "$port" ] && [ "$port" != 0 ] && break
        kill -0 "$STARTED_PID" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$port" ] || [ "$port" = 0 ]; then
        echo "bench: $name did not start; its log:" >&2
        cat "$TMP/$name.log" >&2
        exit 1
    fi
    STARTED_PORT=$port
}

# rss TARGET PID LABEL — appends "rss TARGET LABEL VmRSS VmHWM" (kB).
rss() {
    if ! kill -0 "$2" 2>/dev/null; then
        echo "bench: $1 (pid $2) is gone; its log:" >&2
        cat "$TMP/$1.log" >&2
        exit 1
    fi
    awk -v t="$1" -v l="$3" '/^VmRSS:/ { r = $2 } /^VmHWM:/ { h = $2 }
        END { print "rss", t, l, r, h }' "/proc/$2/status" >>"$TMP/results"
}

# load TARGET PID PORT ROUTE CONNS — one measured run, appended to results.
load() {
    local target=$1 pid=$2 port=$3 route=$4 conns=$5 n=$NC t=$THREADS out
    if [ "$conns" = 1 ]; then n=$N1; t=1; fi
    if ! out=$(timeout 180 "$LOAD" --port "$port" --path "$route" \
                   --ca "$TMP/certs/ca.crt" --body "$TMP/review.json" \
                   --conns "$conns" --threads "$t" --requests "$n" \
                   --warmup "$WARMUP" --timeout 60 --pid "$pid" \
                   2>"$TMP/load.err"); then
        echo "bench: load generator failed against $target $route c=$conns:" >&2
        cat "$TMP/load.err" >&2
        exit 1
    fi
    if [ -s "$TMP/load.err" ]; then
        sed "s|^|bench: $target $route c=$conns: |" "$TMP/load.err" >&2
    fi
    echo "run $target $route $conns $out" >>"$TMP/results"
    printf '.' >&2
}

"$BIN" certs --out "$TMP/certs" --dns localhost --ip 127.0.0.1 >/dev/null
cat >"$TMP/review.json" <<'EOF'
{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"705ab4f5-6393-11e8-b7cc-42010a800002","kind":{"group":"ai.example.com","version":"v1","kind":"InferenceService"},"resource":{"group":"ai.example.com","version":"v1","resource":"inferenceservices"},"name":"llama","namespace":"default","operation":"CREATE","userInfo":{"username":"admin"},"object":{"apiVersion":"ai.example.com/v1","kind":"InferenceService","metadata":{"name":"llama","namespace":"default"},"spec":{"model":"meta-llama/Llama-3.1-8B-Instruct","gpuType":"h100"}}}}
EOF
: >"$TMP/results"
echo "meta loadavg_start $(cut -d' ' -f1 /proc/loadavg)" >>"$TMP/results"

start_server floor "$FLOOR" "$TMP/certs" 0
FLOOR_PID=$STARTED_PID FLOOR_PORT=$STARTED_PORT
start_server ours "$BIN" serve --webhook-only --listen 127.0.0.1:0 --cert-dir "$TMP/certs"
OURS_PID=$STARTED_PID OURS_PORT=$STARTED_PORT
rss floor "$FLOOR_PID" before
rss ours "$OURS_PID" before

echo "bench: floor :$FLOOR_PORT, ours :$OURS_PORT; conns [$CONNS] x $REPS reps," \
     "$N1/$NC requests per run, loadavg $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for c in $CONNS; do
    for rep in $(seq "$REPS"); do
        load floor "$FLOOR_PID" "$FLOOR_PORT" /validate "$c"
        load ours "$OURS_PID" "$OURS_PORT" /validate "$c"
        load ours "$OURS_PID" "$OURS_PORT" /mutate "$c"
        # After the first rep too: growth over identical repeats hints at a
        # leak, where growth from one level to the next is working set.
        if [ "$rep" = 1 ]; then
            rss floor "$FLOOR_PID" "after_c${c}_rep1"
            rss ours "$OURS_PID" "after_c${c}_rep1"
        fi
    done
    rss floor "$FLOOR_PID" "after_c$c"
    rss ours "$OURS_PID" "after_c$c"
done
echo >&2
rss floor "$FLOOR_PID" after
rss ours "$OURS_PID" after
sleep "$SETTLE"
rss floor "$FLOOR_PID" settled
rss ours "$OURS_PID" settled
TLS_DESC=$(grep -o '"tls":"[^"]*"' "$TMP/results" | head -n1 | cut -d'"' -f4)
{
    echo "meta loadavg_end $(cut -d' ' -f1 /proc/loadavg)"
    echo "meta reps $REPS"
    echo "meta cpus $(nproc)"
    echo "meta tls $TLS_DESC"
    echo "meta settle $SETTLE"
} >>"$TMP/results"

mkdir -p "$BUILDDIR"
awk -v json="$JSON_OUT" -f "$HERE/report.awk" "$TMP/results"
echo "JSON: $JSON_OUT"
# Figures are reported, not judged; but a run with failed reviews is void.
if grep -q '"failed":[1-9]\|"warmup_failed":[1-9]' "$TMP/results"; then
    echo "bench: some reviews failed (see above): the figures are not valid" >&2
    exit 1
fi
