# shellcheck shell=bash
# The simulated GPU cluster's parts (CLUSTER_MODE=gpu), sourced by up.sh
# after kube-apiserver is ready; uses up.sh's sign, start, wait_for,
# write_state and write_kubeconfig.
#
#  - kube-scheduler and kube-controller-manager, each with its own client
#    certificate for the user the bootstrap RBAC policy binds
#    (system:kube-scheduler, system:kube-controller-manager), its own
#    kubeconfig, leader election off (one of each), secure port on a free
#    loopback port. The controller-manager runs each controller under its own
#    service account (--use-service-account-credentials, tokens from the
#    TokenRequest API), as kubeadm clusters do.
#  - nodesim (tests/cluster/nodesim): the profile's Nodes and their kubelets.
#
# shellcheck disable=SC2153 # SCHEDULER_BIN, KCM_BIN, NODESIM_BIN: set by up.sh
# Controllers: what Deployments, garbage collection and pods need. The
# node-lifecycle controller lifts the node.kubernetes.io/not-ready taint that
# admission puts on every new Node once it reports Ready (and would taint a
# node whose Lease goes stale); pod-garbage-collector removes the pods of a
# deleted Node. No volume, cloud or eviction controllers.
KCM_CONTROLLERS="deployment-controller,replicaset-controller,garbage-collector-controller"
KCM_CONTROLLERS+=",namespace-controller,serviceaccount-controller,root-ca-certificate-publisher-controller"
KCM_CONTROLLERS+=",endpointslice-controller,node-lifecycle-controller,pod-garbage-collector-controller"
GPU_READY_TIMEOUT="${GPU_READY_TIMEOUT:-120}" # s for each part to come up

start_gpu_parts() {
	local client_ext
	client_ext="$(printf '%s\n' "basicConstraints=critical,CA:FALSE" \
		"keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=clientAuth")"
	log "gpu mode: client certificates for system:kube-scheduler, system:kube-controller-manager, nodesim"
	sign scheduler "/CN=system:kube-scheduler" "$client_ext"
	sign controller-manager "/CN=system:kube-controller-manager" "$client_ext"
	# The simulator plays every node's kubelet at once, so it cannot be one
	# system:node:NAME identity: it gets cluster-admin rights.
	sign nodesim "/O=system:masters/CN=inference-operator-nodesim" "$client_ext"
	local sched_kc="$CLUSTER_TMP_DIR/scheduler.kubeconfig" kcm_kc="$CLUSTER_TMP_DIR/controller-manager.kubeconfig"
	local sim_kc="$CLUSTER_TMP_DIR/nodesim.kubeconfig"
	write_kubeconfig "$sched_kc" system:kube-scheduler "$PKI/scheduler.crt" "$PKI/scheduler.key" || die "writing $sched_kc"
	write_kubeconfig "$kcm_kc" system:kube-controller-manager "$PKI/controller-manager.crt" "$PKI/controller-manager.key" ||
		die "writing $kcm_kc"
	write_kubeconfig "$sim_kc" nodesim "$PKI/nodesim.crt" "$PKI/nodesim.key" || die "writing $sim_kc"
	mkdir -p "$CLUSTER_TMP_DIR/scheduler" "$CLUSTER_TMP_DIR/controller-manager"

	local sched_log="$CLUSTER_DIR/kube-scheduler.log" kcm_log="$CLUSTER_DIR/kube-controller-manager.log"
	local sim_log="$CLUSTER_DIR/nodesim.log"
	echo "===== $(date -Is) up.sh: kube-scheduler $K8S_VERSION on 127.0.0.1:$SCHEDULER_PORT =====" >>"$sched_log"
	SCHEDULER_PID="$(start kube-scheduler "$sched_log" "$SCHEDULER_BIN" \
		--kubeconfig="$sched_kc" \
		--authentication-kubeconfig="$sched_kc" \
		--authorization-kubeconfig="$sched_kc" \
		--bind-address=127.0.0.1 \
		--secure-port="$SCHEDULER_PORT" \
		--cert-dir="$CLUSTER_TMP_DIR/scheduler" \
		--leader-elect=false \
		--profiling=false)"
	write_state
	echo "===== $(date -Is) up.sh: kube-controller-manager $K8S_VERSION on 127.0.0.1:$KCM_PORT =====" >>"$kcm_log"
	KCM_PID="$(start kube-controller-manager "$kcm_log" "$KCM_BIN" \
		--kubeconfig="$kcm_kc" \
		--authentication-kubeconfig="$kcm_kc" \
		--authorization-kubeconfig="$kcm_kc" \
		--bind-address=127.0.0.1 \
		--secure-port="$KCM_PORT" \
		--cert-dir="$CLUSTER_TMP_DIR/controller-manager" \
		--leader-elect=false \
		--use-service-account-credentials=true \
		--controllers="$KCM_CONTROLLERS" \
		--root-ca-file="$CA_CERT" \
		--profiling=false)"
	write_state
	log "kube-scheduler pid $SCHEDULER_PID (:$SCHEDULER_PORT), kube-controller-manager pid $KCM_PID (:$KCM_PORT); waiting for /healthz"
	wait_for kube-scheduler "$SCHEDULER_PID" "$sched_log" "$GPU_READY_TIMEOUT" component_healthy "$SCHEDULER_PORT"
	wait_for kube-controller-manager "$KCM_PID" "$kcm_log" "$GPU_READY_TIMEOUT" component_healthy "$KCM_PORT"
	# The service-account controller, running as its own service account,
	# makes every namespace's "default" ServiceAccount; pods need it.
	wait_for kube-controller-manager "$KCM_PID" "$kcm_log" "$GPU_READY_TIMEOUT" default_sa_exists

	local ready_file="$CLUSTER_TMP_DIR/nodesim.ready" extra=()
	[ -n "${NODESIM_ARGS:-}" ] && read -r -a extra <<<"$NODESIM_ARGS"
	echo "===== $(date -Is) up.sh: nodesim, profile $CLUSTER_PROFILE =====" >>"$sim_log"
	NODESIM_PID="$(start nodesim "$sim_log" "$NODESIM_BIN" \
		--kubeconfig="$sim_kc" \
		--profile="$CLUSTER_PROFILE" \
		--ready-file="$ready_file" \
		"${extra[@]}")"
	write_state
	log "nodesim pid $NODESIM_PID, profile $CLUSTER_PROFILE; waiting for its nodes"
	wait_for nodesim "$NODESIM_PID" "$sim_log" "$GPU_READY_TIMEOUT" test -s "$ready_file"
	wait_for kube-controller-manager "$KCM_PID" "$kcm_log" "$GPU_READY_TIMEOUT" nodes_untainted
	log "simulated GPU cluster up: $(sed -n 's/^nodes=//p' "$ready_file") nodes; kubectl get nodes -L nvidia.com/gpu.product"
}

# default_sa_exists: the default namespace has its "default" ServiceAccount.
default_sa_exists() {
	curl -sSf --max-time 5 --cacert "$CA_CERT" --cert "$ADMIN_CERT" --key "$ADMIN_KEY" -o /dev/null \
		"$APISERVER_URL/api/v1/namespaces/default/serviceaccounts/default" 2>/dev/null
}

# nodes_untainted: no simulated node still carries the not-ready taint (the
# node-lifecycle controller has seen them all Ready), so pods can land.
nodes_untainted() {
	local body
	body="$(curl -sSf --max-time 5 --cacert "$CA_CERT" --cert "$ADMIN_CERT" --key "$ADMIN_KEY" \
		"$APISERVER_URL/api/v1/nodes?labelSelector=sim.inference-operator.test%2Fsimulated%3Dtrue" 2>/dev/null)" || return 1
	[[ "$body" == *'"NodeList"'* ]] && [[ "$body" != *node.kubernetes.io/not-ready* ]]
}
