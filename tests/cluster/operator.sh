# shellcheck shell=bash
# Run inference-operator against the local control plane (sourced, not run):
# certificates, start/stop of the binary, the CRD and the webhook
# registrations. Used by tests/e2e/run.sh and tests/demo/demo.sh.
#
#   . tests/cluster/operator.sh
#   export KUBECONFIG=... KUBECTL=...     # tests/cluster/env.sh sets KUBECTL
#   io_certs DIR
#   io_start STATE BIN CERT_DIR LOG --kubeconfig FILE [more serve flags...]   # full operator
#   io_start STATE BIN CERT_DIR LOG --webhook-only [more serve flags...]      # webhook alone
#   io_install_crd
#   io_register_webhooks "$OP_PORT" DIR/ca.crt      # applies, then waits until active
#   io_wait_ready STATE                              # /readyz: the reconciler's caches synced
#   io_metric STATE 'inference_operator_status_writes_total'   # one /metrics sample
#   io_stop STATE
#
# STATE (e.g. DIR/operator.env) is a shell-sourceable file that io_start writes
# (OP_PID, OP_PORT, OP_BIN, OP_CERT_DIR, OP_LOG, OP_ARGS), with the bare PID in
# DIR/operator.pid beside it; io_running, io_stop and io_load read it. A PID is signalled only while
# /proc/PID/cmdline still shows the recorded binary and certificate dir, so a
# reused PID is never touched.
#
# Everything listens on and talks to 127.0.0.1 only. Every wait is bounded.
# Functions return non-zero on failure (with a message on stderr); none exits.
# The operator it starts does not inherit fds 8 and 9 (callers may hold locks
# on them).

IO_LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
IO_REPO_ROOT="$(cd "$IO_LIB_DIR/../.." && pwd)"
IO_CRD_FILE="$IO_REPO_ROOT/charts/inference-operator/crds/inferenceservices.ai.example.com.yaml"
IO_CRD_NAME="inferenceservices.ai.example.com"
IO_WEBHOOK_CONFIG="${IO_WEBHOOK_CONFIG:-inference-operator}"
IO_VALIDATE_WEBHOOK="validate.inferenceservices.ai.example.com"
IO_MUTATE_WEBHOOK="mutate.inferenceservices.ai.example.com"
IO_START_TIMEOUT="${IO_START_TIMEOUT:-30}"   # s until /healthz answers
IO_STOP_GRACE="${IO_STOP_GRACE:-15}"         # s after SIGTERM (serve's --shutdown-timeout is 10)
IO_ACTIVE_TIMEOUT="${IO_ACTIVE_TIMEOUT:-30}" # s until a new registration takes effect
IO_READY_TIMEOUT="${IO_READY_TIMEOUT:-60}"   # s until /readyz (watch caches synced)
# IO_WEBHOOK_TIMEOUT: the registrations' timeoutSeconds (default 5; at most
# 30; layout/profile.sh's operator runs under valgrind).

io_log() { echo "[${IO_LOG_TAG:-operator.sh} $(date +%H:%M:%S)] $*" >&2; }
io_err() { echo "[${IO_LOG_TAG:-operator.sh}] ERROR: $*" >&2; }

io_kubectl() {
	if [ -z "${KUBECTL:-}" ]; then
		io_err "KUBECTL is not set (source tests/cluster/env.sh)"
		return 127
	fi
	"$KUBECTL" "$@"
}

# io_certs DIR: CA + serving certificate for 127.0.0.1/localhost in DIR
# (ca.crt, tls.crt, tls.key). The binary keeps a valid existing set.
io_certs() {
	local dir="$1"
	mkdir -p "$dir" || return 1
	"${IO_BIN:?IO_BIN: path of the inference-operator binary}" certs --out "$dir" \
		--ip 127.0.0.1 --dns localhost >/dev/null ||
		{ io_err "inference-operator certs --out $dir failed"; return 1; }
	if [ ! -s "$dir/ca.crt" ] || [ ! -s "$dir/tls.crt" ] || [ ! -s "$dir/tls.key" ]; then
		io_err "certs: $dir lacks ca.crt/tls.crt/tls.key"
		return 1
	fi
}

# io_load STATE: clear the OP_* variables, then source STATE if it exists.
io_load() {
	OP_PID="" OP_PORT="" OP_BIN="" OP_CERT_DIR="" OP_LOG="" OP_ARGS=""
	[ -f "$1" ] || return 1
	# shellcheck disable=SC1090
	. "$1"
}

# io_pid_is_ours PID BIN CERT_DIR: PID is alive, its argv[0] is BIN and its
# arguments name CERT_DIR.
io_pid_is_ours() {
	local pid="$1" bin="$2" certdir="$3" args
	[[ "$pid" =~ ^[0-9]+$ ]] && [ -n "$bin" ] && [ -n "$certdir" ] || return 1
	args="$(tr '\0' '\n' 2>/dev/null <"/proc/$pid/cmdline")" || return 1
	[ "$(head -n 1 <<<"$args")" = "$bin" ] || return 1
	grep -qxF -- "$certdir" <<<"$args"
}

# io_healthz PORT CA: GET https://127.0.0.1:PORT/healthz answers 200.
io_healthz() {
	[ -n "$1" ] || return 1
	curl -sf --max-time 2 --cacert "$2" -o /dev/null "https://127.0.0.1:$1/healthz" 2>/dev/null
}

# io_readyz PORT CA: GET https://127.0.0.1:PORT/readyz answers 200 (with the
# reconciler on: its three watch caches have synced).
io_readyz() {
	[ -n "$1" ] || return 1
	curl -sf --max-time 2 --cacert "$2" -o /dev/null "https://127.0.0.1:$1/readyz" 2>/dev/null
}

# io_wait_ready STATE [TIMEOUT]: wait (default IO_READY_TIMEOUT s) until the
# operator STATE records answers /readyz. Leaves the OP_* variables loaded.
io_wait_ready() {
	local state="$1" timeout="${2:-$IO_READY_TIMEOUT}" deadline
	io_load "$state" || { io_err "no operator recorded in $state"; return 1; }
	deadline=$((SECONDS + timeout))
	until io_readyz "$OP_PORT" "$OP_CERT_DIR/ca.crt"; do
		if ! io_pid_is_ours "$OP_PID" "$OP_BIN" "$OP_CERT_DIR"; then
			io_err "operator (pid $OP_PID) is not running; last lines of $OP_LOG:"
			tail -n 20 "$OP_LOG" >&2
			return 1
		fi
		if [ "$SECONDS" -ge "$deadline" ]; then
			io_err "operator (pid $OP_PID) not ready (/readyz) after $timeout s; last lines of $OP_LOG:"
			tail -n 20 "$OP_LOG" >&2
			return 1
		fi
		sleep 0.2
	done
}

# io_metrics STATE: print the operator's /metrics (Prometheus text).
io_metrics() {
	io_load "$1" || { io_err "no operator recorded in $1"; return 1; }
	curl -sf --max-time 5 --cacert "$OP_CERT_DIR/ca.crt" "https://127.0.0.1:$OP_PORT/metrics"
}

# io_metric STATE 'NAME{LABELS}': print the value of one sample of /metrics
# (exact series as printed, e.g. 'inference_operator_status_writes_total' or
# 'controller_runtime_reconcile_total{controller="inferenceservice",result="success"}');
# fails when the operator does not answer or has no such series.
io_metric() {
	local text
	text="$(io_metrics "$1")" || return 1
	awk -v s="$2" '$1 == s { print $2; found = 1; exit } END { exit !found }' <<<"$text"
}

# io_running STATE: the operator STATE records runs (our PID, binary and
# certificate dir) and answers /healthz. Leaves the OP_* variables loaded.
io_running() {
	io_load "$1" || return 1
	io_pid_is_ours "$OP_PID" "$OP_BIN" "$OP_CERT_DIR" && io_healthz "$OP_PORT" "$OP_CERT_DIR/ca.crt"
}

# io_binary_replaced STATE: the recorded process runs an executable that has
# since been deleted or replaced (e.g. rebuilt by make).
io_binary_replaced() {
	io_load "$1" || return 1
	local exe
	exe="$(readlink "/proc/$OP_PID/exe" 2>/dev/null)" || return 1
	case "$exe" in *" (deleted)") return 0 ;; esac
	[ "$exe" -ef "$OP_BIN" ] && return 1
	return 0
}

# io_start STATE BIN CERT_DIR LOG [SERVE_FLAGS...]: start
# `BIN serve --listen 127.0.0.1:0 --cert-dir CERT_DIR SERVE_FLAGS...` in its
# own session (it outlives the caller unless stopped), stdin closed, output
# appended to LOG. Waits (IO_START_TIMEOUT) for the "serving" log line, reads
# the port from it and waits for /healthz. INFERENCE_OPERATOR_* variables of
# the caller's environment are not passed on: the flags alone configure it.
# On success sets OP_PID, OP_PORT (and the other OP_*) and writes STATE and
# STATE's .pid file; on failure prints the log tail and stops what it started.
io_start() {
	local state="$1" bin="$2" certdir="$3" logf="$4"
	shift 4
	local pidf="${state%.env}.pid" startf="$state.starting" unset_args=() v i lines
	[ -x "$bin" ] || { io_err "operator binary $bin not found or not executable (run make)"; return 1; }
	[ -s "$certdir/tls.crt" ] || { io_err "no tls.crt in $certdir (io_certs first)"; return 1; }
	bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
	certdir="$(cd "$certdir" && pwd)"
	mkdir -p "$(dirname "$state")" "$(dirname "$logf")" || return 1
	for v in $(compgen -e); do
		case "$v" in INFERENCE_OPERATOR_*) unset_args+=(-u "$v") ;; esac
	done
	touch "$logf"
	lines="$(wc -l <"$logf")"
	: >"$startf"
	# The child writes its own PID before exec (env execs the binary in the
	# same process), so the PID is right even if setsid has to fork.
	# shellcheck disable=SC2016 # $$, $0 and $@ belong to the child bash
	setsid bash -c 'echo $$ >"$0"; exec "$@"' "$startf" \
		env "${unset_args[@]}" "$bin" serve --listen 127.0.0.1:0 --cert-dir "$certdir" "$@" \
		</dev/null >>"$logf" 2>&1 8>&- 9>&- &
	OP_PID=""
	for ((i = 0; i < 50; i++)); do
		[ -s "$startf" ] && { OP_PID="$(cat "$startf")"; break; }
		sleep 0.1
	done
	rm -f "$startf"
	if [ -z "$OP_PID" ]; then
		io_err "operator did not start (no PID after 5 s); see $logf"
		return 1
	fi
	# shellcheck disable=SC2034 # OP_LOG, OP_ARGS: for io_write_state and callers
	OP_BIN="$bin" OP_CERT_DIR="$certdir" OP_LOG="$logf" OP_PORT="" OP_ARGS="$*"
	io_write_state "$state"
	local deadline=$((SECONDS + IO_START_TIMEOUT))
	while :; do
		if [ -z "$OP_PORT" ]; then
			OP_PORT="$(tail -n "+$((lines + 1))" "$logf" | grep -m 1 '"msg":"serving"' |
				sed -n 's/.*"port":\([0-9][0-9]*\).*/\1/p')"
			[ -n "$OP_PORT" ] && io_write_state "$state"
		fi
		if [ -n "$OP_PORT" ] && io_healthz "$OP_PORT" "$certdir/ca.crt"; then
			echo "$OP_PID" >"$pidf"
			return 0
		fi
		if ! kill -0 "$OP_PID" 2>/dev/null; then
			io_err "operator (pid $OP_PID) exited during start; last lines of $logf:"
			tail -n "+$((lines + 1))" "$logf" | tail -n 20 >&2
			rm -f "$state" "$pidf"
			return 1
		fi
		if [ "$SECONDS" -ge "$deadline" ]; then
			io_err "operator (pid $OP_PID) not healthy after ${IO_START_TIMEOUT} s (port '${OP_PORT}'); last lines of $logf:"
			tail -n "+$((lines + 1))" "$logf" | tail -n 20 >&2
			io_stop "$state"
			return 1
		fi
		sleep 0.1
	done
}

io_write_state() {
	local v tmp="$1.tmp"
	{
		echo "# written by tests/cluster/operator.sh io_start"
		for v in OP_PID OP_PORT OP_BIN OP_CERT_DIR OP_LOG OP_ARGS; do
			printf '%s=%q\n' "$v" "${!v}"
		done
	} >"$tmp" && mv -f "$tmp" "$1"
}

# io_stop STATE [GRACE]: SIGTERM the recorded operator, wait up to GRACE s
# (default IO_STOP_GRACE), then SIGKILL; remove STATE and its .pid file.
# Safe when nothing runs.
io_stop() {
	local state="$1" grace="${2:-$IO_STOP_GRACE}" i
	if ! io_load "$state"; then
		rm -f "${state%.env}.pid"
		return 0
	fi
	if io_pid_is_ours "$OP_PID" "$OP_BIN" "$OP_CERT_DIR"; then
		kill -TERM "$OP_PID" 2>/dev/null || true
		for ((i = 0; i < grace * 10; i++)); do
			io_pid_is_ours "$OP_PID" "$OP_BIN" "$OP_CERT_DIR" || break
			sleep 0.1
		done
		if io_pid_is_ours "$OP_PID" "$OP_BIN" "$OP_CERT_DIR"; then
			io_log "operator (pid $OP_PID) still up $grace s after SIGTERM: SIGKILL"
			kill -KILL "$OP_PID" 2>/dev/null || true
			for ((i = 0; i < 50; i++)); do
				io_pid_is_ours "$OP_PID" "$OP_BIN" "$OP_CERT_DIR" || break
				sleep 0.1
			done
		fi
		if io_pid_is_ours "$OP_PID" "$OP_BIN" "$OP_CERT_DIR"; then
			io_err "operator (pid $OP_PID) survived SIGKILL"
			return 1
		fi
	fi
	rm -f "$state" "${state%.env}.pid"
}

# io_install_crd: apply the committed CRD and wait until it is Established.
io_install_crd() {
	io_kubectl apply -f "$IO_CRD_FILE" >/dev/null || { io_err "kubectl apply -f $IO_CRD_FILE failed"; return 1; }
	io_kubectl wait --for=condition=Established --timeout=60s "crd/$IO_CRD_NAME" >/dev/null ||
		{ io_err "CRD $IO_CRD_NAME not Established within 60 s"; return 1; }
}

# io_webhook_yaml PORT CA_FILE: the two webhook configurations.
io_webhook_yaml() {
	local port="$1" ca kind name path
	ca="$(base64 -w0 <"$2")" || return 1
	for kind in Validating Mutating; do
		if [ "$kind" = Validating ]; then name="$IO_VALIDATE_WEBHOOK" path=validate; else name="$IO_MUTATE_WEBHOOK" path=mutate; fi
		cat <<EOF
---
apiVersion: admissionregistration.k8s.io/v1
kind: ${kind}WebhookConfiguration
metadata:
  name: $IO_WEBHOOK_CONFIG
  labels:
    app.kubernetes.io/name: inference-operator
webhooks:
  - name: $name
    rules:
      - apiGroups: ["ai.example.com"]
        apiVersions: ["v1"]
        operations: ["CREATE", "UPDATE"]
        resources: ["inferenceservices", "inferenceservices/scale"]
        scope: Namespaced
    clientConfig:
      url: https://127.0.0.1:$port/$path
      caBundle: $ca
    sideEffects: None
    failurePolicy: Fail
    timeoutSeconds: ${IO_WEBHOOK_TIMEOUT:-5}
    admissionReviewVersions: ["v1"]
    matchPolicy: Equivalent
EOF
	done
}

# io_register_webhooks PORT CA_FILE: create or update in place (kubectl apply)
# the Validating- and MutatingWebhookConfiguration, then wait until the API
# server calls the operator on PORT through both.
io_register_webhooks() {
	local port="$1" ca="$2"
	io_webhook_yaml "$port" "$ca" | io_kubectl apply -f - >/dev/null ||
		{ io_err "kubectl apply of the webhook configurations failed"; return 1; }
	io_wait_webhooks "$port"
}

# io_wait_webhooks PORT: the API server picks up webhook configurations
# asynchronously. Probe with server-side dry runs (nothing is stored) in the
# default namespace until an invalid object is denied by the validating webhook
# and a valid one comes back with the mutating webhook's label, and both
# configurations name PORT.
io_wait_webhooks() {
	local port="$1" deadline=$((SECONDS + IO_ACTIVE_TIMEOUT)) out err
	local bad='{"apiVersion":"ai.example.com/v1","kind":"InferenceService","metadata":{"name":"io-probe"},"spec":{"model":"probe","gpuType":"io-probe-invalid"}}'
	local good='{"apiVersion":"ai.example.com/v1","kind":"InferenceService","metadata":{"name":"io-probe"},"spec":{"model":"probe","gpuType":"A100"}}'
	local urls
	urls="$(io_kubectl get validatingwebhookconfiguration,mutatingwebhookconfiguration "$IO_WEBHOOK_CONFIG" \
		-o jsonpath='{range .items[*]}{.webhooks[0].clientConfig.url}{"\n"}{end}')" || return 1
	if [ "$(grep -c "^https://127.0.0.1:$port/" <<<"$urls")" != 2 ]; then
		io_err "webhook configurations do not point at port $port: $urls"
		return 1
	fi
	while :; do
		err="$(io_kubectl create --dry-run=server -n default -f - -o name <<<"$bad" 2>&1 >/dev/null)"
		if [[ "$err" == *"admission webhook \"$IO_VALIDATE_WEBHOOK\" denied the request"* ]]; then
			out="$(io_kubectl create --dry-run=server -n default -f - \
				-o jsonpath='{.metadata.labels.app\.kubernetes\.io/managed-by}' <<<"$good" 2>/dev/null)"
			[ "$out" = inference-operator ] && return 0
		fi
		if [ "$SECONDS" -ge "$deadline" ]; then
			io_err "webhooks on port $port not active after ${IO_ACTIVE_TIMEOUT} s; last probe: ${err:-no error}"
			return 1
		fi
		sleep 0.2
	done
}

# io_unregister_webhooks: delete both webhook configurations (if present).
io_unregister_webhooks() {
	io_kubectl delete validatingwebhookconfiguration,mutatingwebhookconfiguration \
		"$IO_WEBHOOK_CONFIG" --ignore-not-found >/dev/null
}
