# shellcheck shell=bash
# Reconciler e2e tests, sourced by tests/e2e/run.sh (which defines the
# helpers: k, expect_*, wait_for, jq_is, expect_jq, converged, metric,
# deploy_status, deploy_ready, dcond, ...). Each test runs in a subshell with
# its own namespace $NS and log dir $TDIR; `fail` ends it.
#
# There is no controller-manager: Deployments get a status only when a test
# patches it, and nothing is garbage collected (deleting an InferenceService
# leaves its Deployment; not tested here).

# The labels, selector and ownerReferences every owned object must carry.
std_labels() {
	jq -cn --arg n "$1" '{"app.kubernetes.io/instance": $n, "app.kubernetes.io/name": "inference-server",
		"app.kubernetes.io/component": "model-server", "app.kubernetes.io/managed-by": "inference-operator",
		"app.kubernetes.io/part-of": "inference-operator"}'
}
std_selector() { jq -cn --arg n "$1" '{"app.kubernetes.io/instance": $n, "app.kubernetes.io/name": "inference-server"}'; }
std_owner() {
	jq -cn --arg n "$1" --arg uid "$2" '[{apiVersion: "ai.example.com/v1", kind: "InferenceService", name: $n,
		uid: $uid, controller: true, blockOwnerDeletion: true}]'
}

# The managed part of a Deployment / Service (jq filters over `get -o json`).
DEPLOY_VIEW='{labels: .metadata.labels, ownerReferences: .metadata.ownerReferences, replicas: .spec.replicas,
	selector: .spec.selector.matchLabels, templateLabels: .spec.template.metadata.labels,
	containers: [.spec.template.spec.containers[] | {name, image, args, ports,
		readinessPath: .readinessProbe.httpGet.path, limits: .resources.limits}],
	affinity: .spec.template.spec.affinity, tolerations: .spec.template.spec.tolerations}'
SERVICE_VIEW='{labels: .metadata.labels, ownerReferences: .metadata.ownerReferences, type: .spec.type,
	selector: .spec.selector, ports: [.spec.ports[] | {name, port, targetPort, protocol}]}'
TOLERATIONS='[{"key":"nvidia.com/gpu","operator":"Exists","effect":"NoSchedule"}]'

# expected_deploy NAME UID REPLICAS MODEL BATCH PRODUCTS_JSON: DEPLOY_VIEW of
# what the reconciler must write.
expected_deploy() {
	jq -cn --argjson labels "$(std_labels "$1")" --argjson sel "$(std_selector "$1")" \
		--argjson owner "$(std_owner "$1" "$2")" --argjson replicas "$3" --arg model "$4" --arg batch "$5" \
		--argjson products "$6" --argjson tol "$TOLERATIONS" --arg image "$MODEL_IMAGE" '{
		labels: $labels, ownerReferences: $owner, replicas: $replicas, selector: $sel, templateLabels: $labels,
		containers: [{name: "model-server", image: $image,
			args: ["--model", $model, "--max-num-seqs", $batch, "--port", "8000"],
			ports: [{name: "http", containerPort: 8000, protocol: "TCP"}],
			readinessPath: "/health", limits: {"nvidia.com/gpu": "1"}}],
		affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [
			{matchExpressions: [{key: "nvidia.com/gpu.product", operator: "In", values: $products}]}]}}},
		tolerations: $tol}'
}
expected_service() {
	jq -cn --argjson labels "$(std_labels "$1")" --argjson sel "$(std_selector "$1")" \
		--argjson owner "$(std_owner "$1" "$2")" '{labels: $labels, ownerReferences: $owner, type: "ClusterIP",
		selector: $sel, ports: [{name: "http", port: 8000, targetPort: "http", protocol: "TCP"}]}'
}

# isvc_uid NAME: metadata.uid of an InferenceService.
isvc_uid() { "$KUBECTL" -n "$NS" get isvc "$1" -o jsonpath='{.metadata.uid}'; }

# --- create -------------------------------------------------------------------

test_reconcile_create() {
	k create -f - <<<"$(isvc llama '{"model":"meta-llama/Meta-Llama-3-8B-Instruct","gpuType":"h100","replicas":2}')"
	expect_ok "create"
	get_json llama
	local uid gen
	uid="$(jqv .metadata.uid)"
	gen="$(jqv .metadata.generation)"
	wait_for "Deployment, Service and status of llama" 20 converged llama

	k get deploy llama -o json --show-managed-fields
	expect_ok "get deploy llama"
	expect_json_eq "$(jqv "$DEPLOY_VIEW")" \
		"$(expected_deploy llama "$uid" 2 meta-llama/Meta-Llama-3-8B-Instruct 32 "$H100_PRODUCTS")" \
		"Deployment llama (labels, ownerReferences, replicas, selector, container, affinity, tolerations)"
	[[ "$(jqv '.spec.template.spec.containers[0].readinessProbe.httpGet.port')" =~ ^(http|8000)$ ]] ||
		fail "readinessProbe.httpGet.port is not the model server's port (http/8000)"
	expect_eq "$(jqv '[.metadata.managedFields[] | select(.manager == "inference-operator") | .operation] | unique | join(",")')" \
		Apply "managedFields of fieldManager inference-operator (server-side apply)"

	k get svc llama -o json --show-managed-fields
	expect_ok "get svc llama"
	expect_json_eq "$(jqv "$SERVICE_VIEW")" "$(expected_service llama "$uid")" \
		"Service llama (labels, ownerReferences, type, selector, ports)"
	expect_eq "$(jqv '[.metadata.managedFields[] | select(.manager == "inference-operator") | .operation] | unique | join(",")')" \
		Apply "Service managedFields of inference-operator"

	# Status: no Deployment status exists yet (no controller-manager).
	get_json llama
	expect_eq "$(jqv .status.endpoint)" "http://llama.$NS.svc:8000" "status.endpoint"
	expect_eq "$(jqv .status.observedGeneration)" "$gen" "status.observedGeneration"
	expect_eq "$(jqv .status.selector)" "app.kubernetes.io/instance=llama,app.kubernetes.io/name=inference-server" "status.selector"
	[[ "$(jqv .status.phase)" =~ ^(Pending|Progressing)$ ]] || fail "status.phase: got '$(jqv .status.phase)', want Pending or Progressing"
	expect_eq "$(jqv '[.status.replicas, .status.readyReplicas] | map(tostring) | join(" ")')" "0 0" "status.replicas, readyReplicas"
	expect_eq "$(jqv '[.status.conditions[].type] | sort | join(",")')" "Degraded,Progressing,Ready" "condition types"
	expect_eq "$(jqv "[.status.conditions[] | select((.reason | length) > 0 and (.message | type) == \"string\"
		and (.lastTransitionTime | test(\"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$\"))
		and .observedGeneration == $gen)] | length")" 3 "conditions with reason, message, lastTransitionTime and observedGeneration $gen"
	expect_eq "$(jqv "$(cond Ready status)")" False "Ready"
	expect_eq "$(jqv "$(cond Progressing status)")" True "Progressing (a rollout is pending)"
	expect_eq "$(jqv "$(cond Degraded status)")" False "Degraded"

	# The printer columns show the status.
	k get isvc llama --no-headers
	expect_ok "get isvc llama"
	[[ "$KOUT" =~ ^llama\ +meta-llama/Meta-Llama-3-8B-Instruct\ +H100\ +2\ +0\ +(Pending|Progressing)\ +http://llama\.$NS\.svc:8000\  ]] ||
		fail "kubectl get isvc row: $KOUT"
}

# --- spec edits -------------------------------------------------------------------

test_reconcile_spec_edits() {
	k create -f - <<<"$(isvc edit '{"model":"m1","gpuType":"A100","replicas":1}')"
	expect_ok "create"
	wait_for "edit converged" 20 converged edit
	local svc_rv gen
	svc_rv="$("$KUBECTL" -n "$NS" get svc edit -o jsonpath='{.metadata.resourceVersion}')"

	k scale isvc edit --replicas=3
	expect_ok "kubectl scale isvc edit --replicas=3"
	wait_for "Deployment edit: replicas 3" 20 jq_is deploy edit .spec.replicas 3
	k patch isvc edit --type=merge -p '{"spec":{"replicas":0}}'
	expect_ok "patch spec.replicas 0"
	wait_for "Deployment edit: replicas 0" 20 jq_is deploy edit .spec.replicas 0

	k patch isvc edit --type=merge -p '{"spec":{"maxBatchSize":64}}'
	expect_ok "patch spec.maxBatchSize 64"
	wait_for "Deployment edit: --max-num-seqs 64" 20 jq_is deploy edit '.spec.template.spec.containers[0].args' \
		'["--model","m1","--max-num-seqs","64","--port","8000"]'

	k patch isvc edit --type=merge -p '{"spec":{"model":"org/m2","gpuType":"l40s"}}'
	expect_ok "patch spec.model and spec.gpuType"
	wait_for "Deployment edit: --model org/m2" 20 jq_is deploy edit '.spec.template.spec.containers[0].args' \
		'["--model","org/m2","--max-num-seqs","64","--port","8000"]'
	wait_for "Deployment edit: affinity to the L40S products" 20 jq_is deploy edit \
		'.spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values' \
		'["NVIDIA-L40S"]'
	expect_jq deploy edit .spec.replicas 0

	get_json edit
	gen="$(jqv .metadata.generation)"
	[ "$gen" -ge 5 ] || fail "metadata.generation $gen after four spec edits"
	wait_for "status.observedGeneration $gen" 20 jq_is isvc edit .status.observedGeneration "$gen"
	expect_jq isvc edit "[.status.conditions[] | select(.observedGeneration == $gen)] | length" 3
	# The Service does not depend on these fields: never rewritten.
	expect_jq svc edit .metadata.resourceVersion "$svc_rv"
}

# --- hand edits are reverted --------------------------------------------------------

test_reconcile_reverts_hand_edits() {
	k create -f - <<<"$(isvc hand '{"model":"m","gpuType":"H100","replicas":2}')"
	expect_ok "create"
	wait_for "hand converged" 20 converged hand
	local d0 s0 dupd0 supd0 uid
	uid="$(isvc_uid hand)"
	d0="$(kjson deploy hand | jq -c "$DEPLOY_VIEW")"
	s0="$(kjson svc hand | jq -c "$SERVICE_VIEW")"
	expect_json_eq "$d0" "$(expected_deploy hand "$uid" 2 m 32 "$H100_PRODUCTS")" "Deployment hand before the edits"
	dupd0="$(metric "$APPLIES{kind=\"Deployment\",result=\"updated\"}")"
	supd0="$(metric "$APPLIES{kind=\"Service\",result=\"updated\"}")"
	local img='.spec.template.spec.containers[0].image' args='.spec.template.spec.containers[0].args'

	k set image deploy/hand model-server=example.com/evil:1
	expect_ok "kubectl set image"
	wait_for "image reverted to $MODEL_IMAGE" 15 jq_is deploy hand "$img" "$MODEL_IMAGE"

	k scale deploy hand --replicas=5
	expect_ok "kubectl scale deploy --replicas=5"
	wait_for "Deployment replicas reverted to 2" 15 jq_is deploy hand .spec.replicas 2

	k patch deploy hand --type=json -p '[{"op":"remove","path":"/spec/template/spec/tolerations/0"}]'
	expect_ok "remove the toleration (json patch)"
	wait_for "toleration restored" 15 jq_is deploy hand .spec.template.spec.tolerations "$TOLERATIONS"

	k patch deploy hand --type=json -p '[{"op":"replace","path":"/spec/template/spec/containers/0/args/3","value":"999"}]'
	expect_ok "change --max-num-seqs (json patch)"
	wait_for "args restored" 15 jq_is deploy hand "$args" '["--model","m","--max-num-seqs","32","--port","8000"]'

	k patch deploy hand --type=json -p '[{"op":"remove","path":"/spec/template/spec/affinity"},
		{"op":"replace","path":"/spec/template/spec/containers/0/resources/limits/nvidia.com~1gpu","value":"8"}]'
	expect_ok "remove the node affinity and raise the GPU limit (json patch)"
	wait_for "affinity and GPU limit restored" 15 jq_is deploy hand \
		'[(.spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values | length),
		  .spec.template.spec.containers[0].resources.limits["nvidia.com/gpu"]]' '[4,"1"]'

	# The watch selects on this label: removing it makes the Deployment leave
	# the operator's watch (a DELETED event); the label must come back.
	k label deploy hand app.kubernetes.io/managed-by-
	expect_ok "remove the managed-by label"
	wait_for "managed-by label restored" 15 jq_is deploy hand '.metadata.labels["app.kubernetes.io/managed-by"]' inference-operator

	# Without an ownerReference the change can only be mapped back to the
	# InferenceService through the object's old state (or its name).
	k patch deploy hand --type=json -p '[{"op":"remove","path":"/metadata/ownerReferences"}]'
	expect_ok "remove the Deployment's ownerReferences"
	wait_for "Deployment ownerReferences restored" 15 jq_is deploy hand .metadata.ownerReferences "$(std_owner hand "$uid")"

	k patch svc hand --type=merge -p '{"spec":{"selector":{"app.kubernetes.io/instance":"other"}}}'
	expect_ok "change the Service selector"
	wait_for "Service selector restored" 15 jq_is svc hand .spec.selector "$(std_selector hand)"
	k patch svc hand --type=json -p '[{"op":"replace","path":"/spec/ports/0/targetPort","value":9999}]'
	expect_ok "change the Service targetPort"
	wait_for "Service targetPort restored" 15 jq_is svc hand '.spec.ports[0].targetPort' http

	# The status is the operator's too: a hand-written one is corrected.
	k patch isvc hand --subresource=status --type=merge -p '{"status":{"phase":"Ready","readyReplicas":5}}'
	expect_ok "hand-write the InferenceService status"
	wait_for "status corrected" 15 jq_is isvc hand '[.status.phase, .status.readyReplicas]' '["Pending",0]'
	k patch isvc hand --subresource=status --type=json -p '[{"op":"remove","path":"/status/conditions"}]'
	expect_ok "remove the status conditions"
	wait_for "conditions restored" 15 jq_is isvc hand '[.status.conditions[].type] | sort' '["Degraded","Progressing","Ready"]'

	expect_json_eq "$(kjson deploy hand | jq -c "$DEPLOY_VIEW")" "$d0" "Deployment hand after the edits"
	expect_json_eq "$(kjson svc hand | jq -c "$SERVICE_VIEW")" "$s0" "Service hand after the edits"
	metric_ge "$APPLIES{kind=\"Deployment\",result=\"updated\"}" $((dupd0 + 7)) || fail "Deployment updates not counted"
	metric_ge "$APPLIES{kind=\"Service\",result=\"updated\"}" $((supd0 + 2)) || fail "Service updates not counted"
}

# --- deleted objects are recreated --------------------------------------------------

test_reconcile_recreates_deleted() {
	k create -f - <<<"$(isvc gone '{"model":"m","gpuType":"A100"}')"
	expect_ok "create"
	wait_for "gone converged" 20 converged gone
	local uid d_uid s_uid
	uid="$(isvc_uid gone)"
	d_uid="$(kjson deploy gone | jq -r .metadata.uid)"
	s_uid="$(kjson svc gone | jq -r .metadata.uid)"

	k delete deploy gone
	expect_ok "delete the Deployment"
	wait_for "Deployment recreated (new uid)" 20 jq_is deploy gone ".metadata.uid != \"$d_uid\"" true
	k delete svc gone
	expect_ok "delete the Service"
	wait_for "Service recreated (new uid)" 20 jq_is svc gone ".metadata.uid != \"$s_uid\"" true

	d_uid="$(kjson deploy gone | jq -r .metadata.uid)"
	s_uid="$(kjson svc gone | jq -r .metadata.uid)"
	k delete deploy,svc gone
	expect_ok "delete both"
	wait_for "Deployment recreated again" 20 jq_is deploy gone ".metadata.uid != \"$d_uid\"" true
	wait_for "Service recreated again" 20 jq_is svc gone ".metadata.uid != \"$s_uid\"" true

	expect_json_eq "$(kjson deploy gone | jq -c "$DEPLOY_VIEW")" \
		"$(expected_deploy gone "$uid" 1 m 32 '["NVIDIA-A100-SXM4-40GB","NVIDIA-A100-SXM4-80GB","NVIDIA-A100-PCIE-40GB","NVIDIA-A100-80GB-PCIe"]')" \
		"recreated Deployment gone"
	expect_json_eq "$(kjson svc gone | jq -c "$SERVICE_VIEW")" "$(expected_service gone "$uid")" "recreated Service gone"
}

# --- status follows the Deployment ---------------------------------------------------

# ready_ltt NAME: lastTransitionTime of the Ready condition.
ready_ltt() { kjson isvc "$1" | jq -r "$(cond Ready lastTransitionTime)"; }
# expect_later A B WHAT: timestamp B is strictly after A (RFC 3339, 1 s).
expect_later() {
	[[ "$2" > "$1" ]] || fail "$3: lastTransitionTime $2 is not after $1"
	echo "  ok: $3: $1 -> $2"
}

test_reconcile_status_transitions() {
	local t0 t1 t2 t3 t4 msg
	k create -f - <<<"$(isvc st '{"model":"m","gpuType":"A100","replicas":2}')"
	expect_ok "create"
	wait_for "st converged" 20 converged st
	expect_jq isvc st "$(cond Ready status)" False
	t0="$(ready_ltt st)"

	# Half way: 1 of 2 ready. Still not Ready; the False condition keeps its time.
	sleep 1.1
	deploy_status st "\"replicas\":2,\"updatedReplicas\":2,\"readyReplicas\":1,\"availableReplicas\":1,\"conditions\":[$(
		dcond Available False MinimumReplicasUnavailable "Deployment does not have minimum availability."),$(
		dcond Progressing True ReplicaSetUpdated "ReplicaSet \"st-5d8f7c\" is progressing.")]"
	wait_for "status.readyReplicas 1" 15 jq_is isvc st .status.readyReplicas 1
	expect_jq isvc st .status.phase Progressing
	expect_jq isvc st "$(cond Ready status)" False
	expect_jq isvc st "$(cond Ready lastTransitionTime)" "$t0"

	# All ready.
	sleep 1.1
	deploy_ready st 2
	wait_for "phase Ready" 15 jq_is isvc st .status.phase Ready
	expect_jq isvc st "$(cond Ready status)" True
	expect_jq isvc st '[.status.replicas, .status.readyReplicas]' '[2,2]'
	expect_jq isvc st "$(cond Degraded status)" False
	t1="$(ready_ltt st)"
	expect_later "$t0" "$t1" "Ready False -> True"

	# A third (surge) pod of the current template, not ready: status.replicas
	# changes, Ready stays True and keeps its time. (Ready also needs no pods
	# of an old template: status.replicas <= updatedReplicas.)
	sleep 1.1
	deploy_status st "\"replicas\":3,\"updatedReplicas\":3,\"readyReplicas\":2,\"availableReplicas\":2"
	wait_for "status.replicas 3" 15 jq_is isvc st .status.replicas 3
	expect_jq isvc st "$(cond Ready status)" True
	expect_jq isvc st "$(cond Ready lastTransitionTime)" "$t1"

	# Scale up: the Deployment's generation moves past what its status has
	# observed, so the InferenceService is not Ready until it catches up.
	sleep 1.1
	k scale isvc st --replicas=3
	expect_ok "scale isvc st to 3"
	wait_for "Deployment st: replicas 3, generation 2" 15 jq_is deploy st '[.spec.replicas, .metadata.generation]' '[3,2]'
	wait_for "Ready False (the Deployment has not observed generation 2)" 15 jq_is isvc st "$(cond Ready status)" False
	expect_jq isvc st '.status.phase == "Pending" or .status.phase == "Progressing"' true
	expect_jq isvc st .status.observedGeneration 2
	t2="$(ready_ltt st)"
	expect_later "$t1" "$t2" "Ready True -> False (scale up)"
	sleep 1.1
	deploy_ready st 3
	wait_for "phase Ready with 3 replicas" 15 jq_is isvc st '[.status.phase, .status.readyReplicas]' '["Ready",3]'
	t3="$(ready_ltt st)"
	expect_later "$t2" "$t3" "Ready False -> True (3 replicas)"

	# The rollout fails: Ready=False with the Deployment's reason and message.
	sleep 1.1
	msg="ReplicaSet \"st-6b9d4f\" has timed out progressing."
	deploy_status st "\"replicas\":3,\"updatedReplicas\":3,\"readyReplicas\":3,\"availableReplicas\":3,\"conditions\":[$(
		dcond Available True MinimumReplicasAvailable "Deployment has minimum availability."),$(
		dcond Progressing False ProgressDeadlineExceeded "$msg")]"
	wait_for "phase Failed" 15 jq_is isvc st .status.phase Failed
	expect_jq isvc st "$(cond Ready status)" False
	expect_jq isvc st "$(cond Ready reason)" ProgressDeadlineExceeded
	expect_jq isvc st "$(cond Ready message)" "$msg"
	expect_jq isvc st "$(cond Degraded status)" True
	expect_jq isvc st "$(cond Degraded reason)" ProgressDeadlineExceeded
	t4="$(ready_ltt st)"
	expect_later "$t3" "$t4" "Ready True -> False (ProgressDeadlineExceeded)"

	# Recovers, then fails to create pods (ReplicaFailure).
	sleep 1.1
	deploy_ready st 3
	wait_for "phase Ready again" 15 jq_is isvc st .status.phase Ready
	expect_jq isvc st "$(cond Degraded status)" False
	msg='pods "st-6b9d4f-x2v9q" is forbidden: exceeded quota: gpu, requested: nvidia.com/gpu=1, used: nvidia.com/gpu=8, limited: nvidia.com/gpu=8'
	deploy_status st "\"replicas\":3,\"updatedReplicas\":3,\"readyReplicas\":3,\"availableReplicas\":3,\"conditions\":[$(
		dcond Available True MinimumReplicasAvailable "Deployment has minimum availability."),$(
		dcond Progressing True ReplicaSetUpdated "ReplicaSet \"st-6b9d4f\" is progressing."),$(
		dcond ReplicaFailure True FailedCreate "$msg")]"
	wait_for "phase Failed (ReplicaFailure)" 15 jq_is isvc st .status.phase Failed
	expect_jq isvc st "[$(cond Ready status), $(cond Ready reason), $(cond Ready message)]" \
		"$(jq -cn --arg m "$msg" '["False","FailedCreate",$m]')"
	expect_jq isvc st "$(cond Degraded status)" True
}

# --- pods say why they are not ready -------------------------------------------------

# mkpod NAME OWNER: a pod of OWNER's Deployment as its ReplicaSet would create
# it (labels of the pod template, controller ownerReference to a ReplicaSet;
# no scheduler or kubelet here, so nothing runs it).
mkpod() {
	jq -cn --arg n "$1" --argjson labels "$(std_labels "$2")" --arg rs "$2-5d8f7c" --arg img "$MODEL_IMAGE" '{
		apiVersion: "v1", kind: "Pod",
		metadata: {name: $n, labels: ($labels + {"pod-template-hash": "5d8f7c"}),
			ownerReferences: [{apiVersion: "apps/v1", kind: "ReplicaSet", name: $rs,
				uid: "0b5e8c1e-6a4f-4d0e-9a44-0d6a7e0c1f11", controller: true, blockOwnerDeletion: true}]},
		spec: {containers: [{name: "model-server", image: $img, resources: {limits: {"nvidia.com/gpu": "1"}}}]}}'
}
# pod_status NAME STATUS_JSON: set a pod's status as the scheduler or kubelet would.
pod_status() {
	k patch pod "$1" --subresource=status --type=merge -p "{\"status\":$2}"
	expect_ok "patch the status of pod $1"
}
POD_T="2026-01-01T00:00:00Z"
UNSCHED_MSG="0/10 nodes are available: 4 Insufficient nvidia.com/gpu, 6 node(s) didn't match Pod's node affinity/selector. preemption: 0/10 nodes are available: 4 No preemption victims found for incoming pod, 6 Preemption is not helpful for scheduling."

test_reconcile_pod_status() {
	k create -f - <<<"$(isvc ps '{"model":"m","gpuType":"H100","replicas":1}')"
	expect_ok "create"
	wait_for "ps converged" 20 converged ps
	"$KUBECTL" -n "$NS" create serviceaccount default >/dev/null 2>&1 # no controller-manager makes it
	k create -f - <<<"$(mkpod ps-5d8f7c-x2v9q ps)"
	expect_ok "create the pod"
	deploy_status ps "\"replicas\":1,\"updatedReplicas\":1,\"readyReplicas\":0,\"availableReplicas\":0,\"conditions\":[$(
		dcond Available False MinimumReplicasUnavailable "Deployment does not have minimum availability."),$(
		dcond Progressing True ReplicaSetUpdated "ReplicaSet \"ps-5d8f7c\" is progressing.")]"

	# The scheduler cannot place it: the InferenceService says why.
	pod_status ps-5d8f7c-x2v9q "$(jq -cn --arg m "$UNSCHED_MSG" --arg t "$POD_T" '{phase: "Pending",
		conditions: [{type: "PodScheduled", status: "False", reason: "Unschedulable", message: $m, lastTransitionTime: $t}]}')"
	wait_for "Ready=False reason Unschedulable" 15 jq_is isvc ps "[$(cond Ready status), $(cond Ready reason)]" '["False","Unschedulable"]'
	expect_jq isvc ps "$(cond Ready message)" "$UNSCHED_MSG"
	expect_jq isvc ps "[$(cond Degraded status), $(cond Degraded reason)]" '["True","Unschedulable"]'
	expect_jq isvc ps .status.phase Pending

	# The scheduler rewrites its message (the cluster changed): a change of
	# messages alone is held back (at most one such write per 30 s per
	# object), then written by a later reconcile (at the latest the resync).
	local d0 msg2="0/11 nodes are available: 5 Insufficient nvidia.com/gpu, 6 node(s) didn't match Pod's node affinity/selector."
	d0="$(metric inference_operator_status_writes_deferred_total)"
	pod_status ps-5d8f7c-x2v9q "$(jq -cn --arg m "$msg2" --arg t "$POD_T" '{phase: "Pending",
		conditions: [{type: "PodScheduled", status: "False", reason: "Unschedulable", message: $m, lastTransitionTime: $t}]}')"
	wait_for "a message-only status write held back" 15 metric_ge inference_operator_status_writes_deferred_total $((d0 + 1))
	expect_jq isvc ps "$(cond Ready message)" "$UNSCHED_MSG"
	wait_for "the new scheduler message written (within the 30 s bound + resync)" 50 jq_is isvc ps "$(cond Ready message)" "$msg2"
	expect_jq isvc ps "[$(cond Ready status), $(cond Ready reason)]" '["False","Unschedulable"]'

	# Scheduled, but the model server crash-loops. Even when the Deployment's
	# counters claim the replica is ready, Ready stays False.
	pod_status ps-5d8f7c-x2v9q "$(jq -cn --arg t "$POD_T" '{phase: "Running",
		conditions: [{type: "PodScheduled", status: "True", lastTransitionTime: $t},
			{type: "Ready", status: "False", reason: "ContainersNotReady", lastTransitionTime: $t}],
		containerStatuses: [{name: "model-server", image: "vllm/vllm-openai:v0.6.3", imageID: "", ready: false,
			restartCount: 4, state: {waiting: {reason: "CrashLoopBackOff",
				message: "back-off 1m20s restarting failed container=model-server pod=ps-5d8f7c-x2v9q"}},
			lastState: {terminated: {exitCode: 137, reason: "OOMKilled", startedAt: $t, finishedAt: $t}}}]}')"
	wait_for "Ready=False reason CrashLoopBackOff" 15 jq_is isvc ps "[$(cond Ready status), $(cond Ready reason)]" '["False","CrashLoopBackOff"]'
	expect_jq isvc ps "$(cond Ready message)" "pod ps-5d8f7c-x2v9q container model-server: back-off 1m20s restarting failed container=model-server pod=ps-5d8f7c-x2v9q; last terminated: OOMKilled, exit code 137"
	expect_jq isvc ps "$(cond Degraded reason)" CrashLoopBackOff
	deploy_ready ps 1
	wait_for "status.readyReplicas 1 (from the Deployment)" 15 jq_is isvc ps .status.readyReplicas 1
	expect_jq isvc ps "[$(cond Ready status), $(cond Ready reason)]" '["False","CrashLoopBackOff"]'

	# Kubelet status updates that change nothing status uses cost no write.
	local w0
	wait_for "status writes settle" 15 jq_is isvc ps "$(cond Ready reason)" CrashLoopBackOff
	sleep 1
	w0="$(metric "$STATUS_WRITES")"
	k patch pod ps-5d8f7c-x2v9q --subresource=status --type=merge -p '{"status":{"podIP":"10.244.1.7","hostIP":"10.0.0.7"}}'
	expect_ok "an unrelated pod status change"
	sleep 2
	expect_eq "$(metric "$STATUS_WRITES")" "$w0" "status writes after an unrelated pod change"

	# Recovers: the pod is ready, and so is the InferenceService.
	pod_status ps-5d8f7c-x2v9q "$(jq -cn --arg t "$POD_T" '{phase: "Running",
		conditions: [{type: "PodScheduled", status: "True", lastTransitionTime: $t},
			{type: "Ready", status: "True", lastTransitionTime: $t}],
		containerStatuses: [{name: "model-server", image: "vllm/vllm-openai:v0.6.3", imageID: "", ready: true,
			restartCount: 5, state: {running: {startedAt: $t}}}]}')"
	wait_for "Ready=True" 15 jq_is isvc ps "[$(cond Ready status), $(cond Ready reason)]" '["True","AllReplicasReady"]'
	expect_jq isvc ps "$(cond Degraded status)" False
	expect_jq isvc ps .status.phase Ready

	# The pod goes away (deleted; its ReplicaSet would make another): no
	# problem left to report, the Deployment alone decides again.
	k delete pod ps-5d8f7c-x2v9q --wait=false
	expect_ok "delete the pod"
	wait_for "pod cache empty" 15 metric_le_pods 0
}
# metric_le_pods N: the operator's pod cache holds at most N pods.
metric_le_pods() {
	local v
	v="$(metric 'inference_operator_cache_objects{kind="Pod"}')"
	[ "$v" -le "$1" ] && return 0
	echo "pods in the cache: $v, want <= $1"
	return 1
}

# --- events ------------------------------------------------------------------------

# events_of NAME REASON: the events.k8s.io/v1 Events about InferenceService
# NAME with REASON (a JSON array).
events_of() {
	"$KUBECTL" -n "$NS" get events.events.k8s.io -o json |
		jq -c --arg n "$1" --arg r "$2" '[.items[] | select(.regarding.kind == "InferenceService"
			and .regarding.name == $n and .reason == $r)]'
}
has_event() {
	local ev
	ev="$(events_of "$1" "$2")" || return 1
	[ "$(jq length <<<"$ev")" -ge 1 ] && return 0
	echo "no $2 event about $1; events in $NS:"
	"$KUBECTL" -n "$NS" get events.events.k8s.io -o json |
		jq -c '.items[] | {reason, type, regarding: .regarding.name, note}'
	return 1
}

test_reconcile_events() {
	k create -f - <<<"$(isvc ev '{"model":"m","gpuType":"L40S"}')"
	expect_ok "create"
	local uid ev
	uid="$(isvc_uid ev)"
	wait_for "ev converged" 20 converged ev
	wait_for "a Created event about ev" 15 has_event ev Created
	ev="$(events_of ev Created)"
	echo "  Created event: $ev"
	expect_eq "$(jq length <<<"$ev")" 1 "number of Created events"
	expect_eq "$(jq -r '.[0] | [.type, .regarding.apiVersion, .regarding.uid, .regarding.namespace] | join(" ")' <<<"$ev")" \
		"Normal ai.example.com/v1 $uid $NS" "Created event: type, regarding"
	[ -n "$(jq -r '.[0].reportingController // ""' <<<"$ev")" ] || fail "Created event has no reportingController"
	[ -n "$(jq -r '.[0].action // ""' <<<"$ev")" ] || fail "Created event has no action"
	[[ "$(jq -r '.[0].note' <<<"$ev")" == *Deployment* ]] || fail "Created event note does not name the Deployment"

	# A hand edit that gets reverted is an update.
	k set image deploy/ev model-server=example.com/evil:1
	expect_ok "set image"
	wait_for "image reverted" 15 jq_is deploy ev '.spec.template.spec.containers[0].image' "$MODEL_IMAGE"
	wait_for "an Updated event about ev" 15 has_event ev Updated
	expect_eq "$(events_of ev Created | jq length)" 1 "number of Created events after the update"
}

# --- invalid spec stored while the webhook was off ---------------------------------

test_reconcile_invalid_spec() {
	# Always re-register, even when the test fails half way.
	trap 'io_register_webhooks "$OP_PORT" "$E2E_CERTS/ca.crt" >/dev/null 2>&1' EXIT
	echo "+ unregister the webhook configurations"
	io_unregister_webhooks || fail "delete the webhook configurations"
	# The API server notices the deletion asynchronously: retry the create
	# while it is still denied.
	local deadline=$((SECONDS + 30))
	while :; do
		k create -f - <<<"$(isvc broken '{"model":"m","gpuType":"T4","replicas":100}')"
		[ "$KRC" = 0 ] && break
		[[ "$KERR" == *"denied the request"* ]] || fail "create without webhooks failed for another reason"
		[ "$SECONDS" -lt "$deadline" ] || fail "the webhooks were still called 30 s after being unregistered"
		sleep 0.3
	done
	echo "+ re-register the webhook configurations"
	io_register_webhooks "$OP_PORT" "$E2E_CERTS/ca.crt" || fail "re-register the webhooks"
	trap - EXIT

	local m1='spec.replicas: Invalid value: 100: must be between 0 and 64'
	wait_for "Degraded=True reason InvalidSpec" 20 jq_is isvc broken "[$(cond Degraded status), $(cond Degraded reason)]" '["True","InvalidSpec"]'
	get_json broken
	local msg
	msg="$(jqv "$(cond Degraded message)")"
	[[ "$msg" == *"$m1"* ]] || fail "Degraded message lacks: $m1 (got: $msg)"
	[[ "$msg" == *"$GPU_T4_MSG"* ]] || fail "Degraded message lacks: $GPU_T4_MSG (got: $msg)"
	expect_eq "$(jqv "[$(cond Ready status), $(cond Ready reason)] | join(\" \")")" "False InvalidSpec" "Ready condition"
	expect_eq "$(jqv .status.phase)" Failed "status.phase"
	expect_eq "$(jqv .status.observedGeneration)" "$(jqv .metadata.generation)" "status.observedGeneration"
	local out
	out="$(absent deploy broken)" || fail "$out"
	out="$(absent svc broken)" || fail "$out"
	wait_for "an InvalidSpec event" 15 has_event broken InvalidSpec
	expect_eq "$(events_of broken InvalidSpec | jq -r '.[0].type')" Warning "InvalidSpec event type"
	# Still no Deployment a moment later (no retry creates one).
	sleep 1
	out="$(absent deploy broken)" || fail "$out"

	# Fixed through the webhook: the Deployment appears, Degraded clears.
	k patch isvc broken --type=merge -p '{"spec":{"gpuType":"a100","replicas":2}}'
	expect_ok "fix the spec"
	wait_for "Deployment broken with 2 replicas" 20 jq_is deploy broken .spec.replicas 2
	wait_for "Degraded=False" 20 jq_is isvc broken "$(cond Degraded status)" False
}

# --- kube-apiserver crash ------------------------------------------------------------

WATCH_RESOURCES="inferenceservices deployments services pods"

test_apiserver_restart() {
	k create -f - <<<"$(isvc before '{"model":"m","gpuType":"A100"}')"
	expect_ok "create before"
	wait_for "before converged" 20 converged before
	local res
	declare -A r0
	for res in $WATCH_RESOURCES; do
		r0[$res]="$(metric "inference_operator_watch_restarts_total{resource=\"$res\"}")"
	done
	echo "  watch restarts before: $(for res in $WATCH_RESOURCES; do printf '%s=%s ' "$res" "${r0[$res]}"; done)"

	echo "+ tests/cluster/restart-apiserver.sh 2   (SIGKILL, 2 s down, same flags)"
	"$CLUSTER_SCRIPTS/restart-apiserver.sh" 2 8>&- 2>&1 | sed 's/^/  /'
	[ "${PIPESTATUS[0]}" = 0 ] || fail "restart-apiserver.sh failed"
	io_wait_webhooks "$OP_PORT" || fail "webhooks not active after the API server restart"

	# Changes after the restart reach the operator through its new watches.
	k create -f - <<<"$(isvc after '{"model":"m","gpuType":"H100","replicas":2}')"
	expect_ok "create after the restart"
	k scale isvc before --replicas=3
	expect_ok "scale before"
	k delete svc before
	expect_ok "delete Service before"
	k set image deploy/before model-server=example.com/evil:1
	expect_ok "set image on Deployment before"

	wait_for "after converged" 45 converged after
	expect_jq deploy after .spec.replicas 2
	wait_for "Deployment before scaled to 3" 45 jq_is deploy before .spec.replicas 3
	wait_for "Service before recreated" 45 exists svc before
	wait_for "Deployment before image reverted" 45 jq_is deploy before '.spec.template.spec.containers[0].image' "$MODEL_IMAGE"
	wait_for "before: status observedGeneration 2" 45 jq_is isvc before .status.observedGeneration 2
	for res in $WATCH_RESOURCES; do
		wait_for "watch restart counted for $res" 30 metric_ge "inference_operator_watch_restarts_total{resource=\"$res\"}" $((r0[$res] + 1))
	done
	io_readyz "$OP_PORT" "$E2E_CERTS/ca.crt" || fail "operator /readyz not ok after the API server restart"
}

# --- restart with nothing to do --------------------------------------------------------

# snapshot: kind/name resourceVersion of every InferenceService, Deployment
# and Service in the namespace, sorted.
snapshot() {
	"$KUBECTL" -n "$NS" get isvc,deploy,svc -o json |
		jq -r '.items[] | "\(.kind)/\(.metadata.name) \(.metadata.resourceVersion)"' | sort
}

# expect_no_writes BEFORE WHAT: the namespace's snapshot equals BEFORE and the
# running operator's write counters are all 0.
expect_no_writes() {
	local after s v bad=0
	after="$(snapshot)"
	if [ "$1" != "$after" ]; then
		diff -u <(echo "$1") <(echo "$after") | sed 's/^/  /'
		fail "resourceVersions changed $2"
	fi
	echo "  ok: $(wc -l <<<"$after") resourceVersions unchanged $2"
	for s in "$APPLIES{kind=\"Deployment\",result=\"created\"}" "$APPLIES{kind=\"Deployment\",result=\"updated\"}" \
		"$APPLIES{kind=\"Service\",result=\"created\"}" "$APPLIES{kind=\"Service\",result=\"updated\"}" \
		"$STATUS_WRITES" 'inference_operator_events_total{result="sent"}'; do
		v="$(metric "$s")"
		echo "  $s = $v"
		[ "$v" = 0 ] || bad=1
	done
	[ "$bad" = 0 ] || fail "the restarted operator wrote $2 (the counters above must all be 0)"
	echo "  $RECONCILE_OK = $(metric "$RECONCILE_OK")"
}

# A restart with nothing to do writes nothing: not on the initial list, not
# on the periodic resyncs (--requeue-after 2 here, so two rounds take ~4 s).
test_restart_no_writes() {
	local i n=6 all before t
	for i in $(seq 0 $((n - 1))); do
		isvc "r$i" "{\"model\":\"org/m$i\",\"gpuType\":\"$(echo A100 H100 L40S | cut -d' ' -f$((i % 3 + 1)))\",\"replicas\":$((i % 3)),\"maxBatchSize\":$((16 * (i + 1)))}"
	done >"$TDIR/objs.json"
	k create -f "$TDIR/objs.json"
	expect_ok "create $n InferenceServices"
	for i in $(seq 0 $((n - 1))); do
		wait_for "r$i converged" 20 converged "r$i"
	done
	# One Ready, one Failed: their status must survive the restart untouched too.
	deploy_ready r1 1
	deploy_status r2 "\"replicas\":2,\"conditions\":[$(dcond Progressing False ProgressDeadlineExceeded "ReplicaSet \"r2-1\" has timed out progressing.")]"
	wait_for "r1 Ready" 15 jq_is isvc r1 .status.phase Ready
	wait_for "r2 Failed" 15 jq_is isvc r2 .status.phase Failed
	sleep 1
	before="$(snapshot)"
	echo "$before" >"$TDIR/before.txt"
	sed 's/^/  before| /' "$TDIR/before.txt"
	[ "$(wc -l <<<"$before")" = $((3 * n)) ] || fail "expected $((3 * n)) objects in the namespace"

	restart_operator --requeue-after 2 || fail "restart the operator"
	all="$("$KUBECTL" get isvc -A -o name | wc -l)"
	t="$(now_ns)"
	wait_for "the new operator reconciled all $all InferenceServices" 30 metric_ge "$RECONCILE_OK" "$all"
	echo "  all reconciled $(since "$t") s after /readyz"
	sleep 1 # writes, if any, would follow their reconcile at once
	expect_no_writes "$before" "across an operator restart with nothing to do"

	wait_for "two resyncs of every InferenceService (--requeue-after 2)" 20 metric_ge "$RECONCILE_OK" $((3 * all))
	expect_no_writes "$before" "over two resyncs"
}

# --- a burst of creates: the urgent lane and burst workers -----------------------------------

BURST_N=60
FOLLOW_UPS='controller_runtime_reconcile_total{controller="inferenceservice",result="follow_up"}'
BURST_LIVE='inference_operator_burst_workers{controller="inferenceservice"}'
BURST_STARTED='inference_operator_burst_workers_started_total{controller="inferenceservice"}'

burst_converged() {
	local st want="$BURST_N $BURST_N $BURST_N"
	st="$(scale_state)" || return 1
	echo "deployments services statuses: $st (want $want)"
	[ "$st" = "$want" ]
}
burst_workers_gone() {
	local v
	v="$(metric "$BURST_LIVE")"
	echo "$BURST_LIVE = $v"
	[ "$v" = 0 ]
}

# New InferenceServices go to the urgent lane: the pass that takes one
# applies its Deployment and hands the Service and status to a follow-up
# pass (one Event still names both); with --burst-workers, extra workers
# serve that lane while it is busy and exit once it is empty.
test_burst_create() {
	restart_operator --burst-workers 4 || fail "restart the operator with --burst-workers 4"
	local i file="$TDIR/burst.yaml" dc0 sc0 fu0 bs0
	for ((i = 0; i < BURST_N; i++)); do
		printf -- '---\napiVersion: ai.example.com/v1\nkind: InferenceService\nmetadata:\n  name: b-%03d\nspec:\n  model: org/model-%d\n  gpuType: H100\n' "$i" "$i"
	done >"$file"
	dc0="$(metric "$APPLIES{kind=\"Deployment\",result=\"created\"}")"
	sc0="$(metric "$APPLIES{kind=\"Service\",result=\"created\"}")"
	fu0="$(metric "$FOLLOW_UPS")"
	bs0="$(metric "$BURST_STARTED")"
	"$KUBECTL" -n "$NS" create -f "$file" >"$TDIR/create.out" 2>&1 || { tail -n 20 "$TDIR/create.out"; fail "kubectl create -f of $BURST_N objects"; }
	WAIT_INTERVAL=1 wait_for "$BURST_N Deployments, Services and statuses" 90 burst_converged
	expect_eq "$(($(metric "$APPLIES{kind=\"Deployment\",result=\"created\"}") - dc0))" "$BURST_N" "Deployments created"
	expect_eq "$(($(metric "$APPLIES{kind=\"Service\",result=\"created\"}") - sc0))" "$BURST_N" "Services created"
	# Every new object went Deployment first, then a follow-up.
	metric_ge "$FOLLOW_UPS" $((fu0 + BURST_N)) || fail "fewer follow-up passes than new objects"
	metric_ge "$BURST_STARTED" $((bs0 + 1)) || fail "no burst worker was started"
	# The follow-up sends the one Event, naming what both passes created.
	wait_for "a Created event about b-000" 15 has_event b-000 Created
	local ev
	ev="$(events_of b-000 Created)"
	expect_eq "$(jq length <<<"$ev")" 1 "number of Created events about b-000"
	[[ "$(jq -r '.[0].note' <<<"$ev")" == *"created Deployment"*"created Service"* ]] ||
		fail "Created event does not name both the Deployment and the Service: $(jq -r '.[0].note' <<<"$ev")"
	# Burst workers leave when the burst is over (2 s idle).
	wait_for "burst workers gone" 15 burst_workers_gone
	echo "  Deployment applies that were updates: $(metric "$APPLIES{kind=\"Deployment\",result=\"updated\"}")" \
		"(learned apply results spare the follow-up a second apply)"
	restart_operator || fail "restart the operator with default flags"
}

# --- 500 at once --------------------------------------------------------------------------

# scale_state: counts of converged objects in the namespace, one line:
# "deployments services statuses".
scale_state() {
	local d s i
	d="$("$KUBECTL" -n "$NS" get deploy -o json | jq '[.items[] | select(.metadata.ownerReferences[0].controller == true)] | length')" || return 1
	s="$("$KUBECTL" -n "$NS" get svc -o json | jq '[.items[] | select(.metadata.ownerReferences[0].controller == true)] | length')" || return 1
	i="$("$KUBECTL" -n "$NS" get isvc -o json | jq '[.items[] | select(.status.observedGeneration == .metadata.generation and (.status.endpoint // "") != "")] | length')" || return 1
	echo "$d $s $i"
}
scale_converged() {
	local st
	st="$(scale_state)" || return 1
	echo "deployments services statuses: $st (want $SCALE_N each)"
	[ "$st" = "$SCALE_N $SCALE_N $SCALE_N" ]
}

# requests_total: the operator's API requests so far (all verbs and codes).
requests_total() {
	local text
	text="$(io_metrics "$E2E_OP_STATE")" || fail "GET /metrics of the e2e operator failed"
	awk '$1 ~ /^rest_client_requests_total[{]/ { s += $2 } END { print s + 0 }' <<<"$text"
}

test_scale_500() {
	local i g gpus=(A100 H100 L40S) file="$TDIR/many.yaml" t0 tc dc0 sc0
	for ((i = 0; i < SCALE_N; i++)); do
		g="${gpus[$((i % 3))]}"
		printf -- '---\napiVersion: ai.example.com/v1\nkind: InferenceService\nmetadata:\n  name: s-%03d\nspec:\n  model: org/model-%d\n  gpuType: %s\n  replicas: %d\n  maxBatchSize: %d\n' \
			"$i" "$i" "$g" $((i % 4)) $((8 * (i % 16 + 1)))
	done >"$file"
	dc0="$(metric "$APPLIES{kind=\"Deployment\",result=\"created\"}")"
	sc0="$(metric "$APPLIES{kind=\"Service\",result=\"created\"}")"
	local req0 sw0
	req0="$(requests_total)"
	sw0="$(metric "$STATUS_WRITES")"

	t0="$(now_ns)"
	echo "+ kubectl -n $NS create -f many.yaml ($SCALE_N objects)"
	"$KUBECTL" -n "$NS" create -f "$file" >"$TDIR/create.out" 2>&1 || { tail -n 20 "$TDIR/create.out"; fail "kubectl create -f of $SCALE_N objects"; }
	tc="$(since "$t0")"
	[ "$(grep -c ' created$' "$TDIR/create.out")" = "$SCALE_N" ] || fail "kubectl create did not report $SCALE_N objects created"
	echo "  created in $tc s"

	# Polling lists 3 x $SCALE_N objects: not too often, the CPUs are shared.
	WAIT_INTERVAL=2 wait_for "$SCALE_N Deployments, Services and statuses" "$SCALE_TIMEOUT" scale_converged
	local tconv
	tconv="$(since "$t0")"

	# Exactly one Deployment and one Service per InferenceService, owned by it.
	"$KUBECTL" -n "$NS" get isvc -o json >"$TDIR/isvc.json" || fail "list isvc"
	"$KUBECTL" -n "$NS" get deploy -o json >"$TDIR/deploy.json" || fail "list deploy"
	"$KUBECTL" -n "$NS" get svc -o json >"$TDIR/svc.json" || fail "list svc"
	local mism
	for kind in deploy svc; do
		mism="$(jq -n --slurpfile i "$TDIR/isvc.json" --slurpfile o "$TDIR/$kind.json" '
			($i[0].items | map({key: .metadata.name, value: .metadata.uid}) | from_entries) as $uid |
			[$o[0].items[] | select((.metadata.ownerReferences | length) != 1
				or .metadata.ownerReferences[0].uid != $uid[.metadata.name])] | map(.metadata.name)')"
		[ "$mism" = "[]" ] || fail "$kind objects without exactly one ownerReference to their InferenceService: $mism"
	done
	mism="$(jq -n --slurpfile i "$TDIR/isvc.json" --slurpfile d "$TDIR/deploy.json" '
		($d[0].items | map({key: .metadata.name, value: .spec.replicas}) | from_entries) as $r |
		[$i[0].items[] | select(.spec.replicas != $r[.metadata.name]) | .metadata.name]')"
	[ "$mism" = "[]" ] || fail "Deployments whose replicas differ from their InferenceService: $mism"
	# No duplicate creates: each object was created exactly once.
	expect_eq "$(($(metric "$APPLIES{kind=\"Deployment\",result=\"created\"}") - dc0))" "$SCALE_N" "Deployments created (applies_total)"
	expect_eq "$(($(metric "$APPLIES{kind=\"Service\",result=\"created\"}") - sc0))" "$SCALE_N" "Services created (applies_total)"
	echo "$SCALE_N InferenceServices: kubectl create ${tc} s; all converged ${tconv} s after the create began ($(
		awk -v a="$tconv" -v b="$tc" 'BEGIN { printf "%.1f", a - b }') s after it returned); the operator made $((
		$(requests_total) - req0)) API requests meanwhile, $(($(metric "$STATUS_WRITES") - sw0)) of them status writes" >"$TDIR/note"
}
