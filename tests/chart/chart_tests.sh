# shellcheck shell=bash
# Chart tests without an install: lint, schema, rendering, flag coverage and
# server-side dry runs. Sourced by run.sh.

# Value sets used by several tests (helm --set arguments, one set per line).
provided_values() {
	echo "--set certs.mode=provided --set certs.secretName=my-tls --set certs.caBundle=$(b64 "$TEST_CERTS/ca.crt")"
}
VALUE_SETS_STATIC=(
	""
	"--set certs.mode=certManager"
	"--set certs.mode=certManager --set certs.certManager.issuerRef.name=corp-ca --set certs.certManager.issuerRef.kind=ClusterIssuer --set certs.certManager.issuerRef.group=cert-manager.io"
	"--set certs.selfSigned.validityDays=90 --set certs.selfSigned.renewBeforeDays=10 --set certs.selfSigned.checkInterval=30"
	"--set leaderElection.enabled=false --set replicaCount=1"
	"--set operator.watchNamespace=WATCHNS"
	"--set priorityClassName=system-cluster-critical --set replicaCount=3 --set podDisruptionBudget.minAvailable=2"
	"--set replicaCount=1 --set webhook.failurePolicy=Ignore --set webhook.excludeNamespaces={ml-system} --set topologySpreadConstraints=null"
)
# value_sets: every set, with the provided-mode one and WATCHNS filled in.
value_sets() {
	local s
	for s in "${VALUE_SETS_STATIC[@]}"; do echo "${s//WATCHNS/$NS-watch}"; done
	provided_values
}

test_helm_lint() {
	local set n=0
	while IFS= read -r set; do
		# shellcheck disable=SC2086 # set is a list of helm arguments
		run "$HELM" lint --strict "$CHART" --namespace "$NS" $set
		expect_ok "helm lint --strict $set"
		expect_out_has "1 chart(s) linted, 0 chart(s) failed"
		[[ "$OUT" != *"[WARNING]"* && "$OUT" != *"[ERROR]"* ]] || fail "helm lint reported warnings or errors"
		n=$((n + 1))
	done < <(value_sets)
	run "$HELM" package "$CHART" --destination "$TDIR"
	expect_ok "helm package"
	run "$HELM" show crds "$TDIR/inference-operator-0.1.0.tgz"
	expect_ok "helm show crds"
	[ "$OUT" = "$(cat "$CHART/crds/inferenceservices.ai.example.com.yaml")" ] ||
		fail "the packaged chart's CRD differs from crds/ (the generated file)"
	note "helm lint --strict clean for $n value sets; packaged chart carries the generated CRD"
}

test_values_schema() {
	local cases=(
		"--set replicaCount=0|at '/replicaCount'"
		"--set nosuchkey=1|additional properties 'nosuchkey' not allowed"
		"--set operator.gpuTpyes={A100}|additional properties 'gpuTpyes' not allowed"
		"--set operator.logLevel=verbose|at '/operator/logLevel'"
		"--set operator.workers=65|at '/operator/workers'"
		"--set operator.burstWorkers=-1|at '/operator/burstWorkers'"
		"--set certs.mode=vault|at '/certs/mode'"
		"--set webhook.failurePolicy=Sometimes|at '/webhook/failurePolicy'"
		"--set webhook.timeoutSeconds=31|at '/webhook/timeoutSeconds'"
		"--set certs.caBundle=not*base64|at '/certs/caBundle'"
		"--set operator.extraArgs={serve}|at '/operator/extraArgs/0'"
		"--set image.pullPolicy=Sometimes|at '/image/pullPolicy'"
		"--set operator.minReplicas=5|need minReplicas <= defaultReplicas <= maxReplicas"
		"--set leaderElection.renewDeadline=15|need leaseDuration > renewDeadline"
		"--set leaderElection.retryPeriod=0|at '/leaderElection/retryPeriod'"
		"--set leaderElection.warmStandby=sometimes|at '/leaderElection/warmStandby'"
		"--set operator.defaultBatchSize=5000|need defaultBatchSize <= maxBatchSize"
		"--set certs.mode=provided --set certs.secretName=x|certs.caBundle (base64 PEM of the CA"
		"--set certs.caBundle=QUJD|certs.caBundle is only used in provided mode"
		"--set certs.selfSigned.renewBeforeDays=400|need renewBeforeDays < validityDays"
		"--set certs.operatorFlags=true|additional properties 'operatorFlags' not allowed"
		"--set serviceAccount.create=false|serviceAccount.name is required"
	)
	local c set want
	for c in "${cases[@]}"; do
		set="${c%%|*}" want="${c#*|}"
		# shellcheck disable=SC2086
		run "$HELM" template "$RELEASE" "$CHART" --namespace "$NS" $set
		expect_fail "helm template $set must be refused"
		expect_err_has "$want"
	done
	note "${#cases[@]} bad value sets refused with the field named (schema) or a clear message (cross-field checks)"
}

test_render_defaults() {
	render_json
	local want_kinds sel
	want_kinds="ClusterRole/$RELEASE
ClusterRole/$RELEASE-isvc-edit
ClusterRole/$RELEASE-isvc-view
ClusterRoleBinding/$RELEASE
Deployment/$RELEASE
MutatingWebhookConfiguration/$WEBHOOK_NAME
PodDisruptionBudget/$RELEASE
Role/$RELEASE
RoleBinding/$RELEASE
Service/$RELEASE
ServiceAccount/$SA_NAME
ValidatingWebhookConfiguration/$WEBHOOK_NAME"
	[ "$(kinds)" = "$want_kinds" ] || fail "rendered objects: $(kinds | tr '\n' ' ') want: $(tr '\n' ' ' <<<"$want_kinds")"
	expect_eq "$(jq -r '[.[] | select(.kind | test("^(Deployment|Service|ServiceAccount|Role|RoleBinding|PodDisruptionBudget)$")) | .metadata.namespace] | unique | join(",")' <<<"$R")" \
		"$NS" "namespace of every namespaced object"

	local d c
	d="$(obj Deployment "$RELEASE")"
	c="$(jq -c '.spec.template.spec.containers[0]' <<<"$d")"
	sel="$(jq -c '.spec.selector.matchLabels' <<<"$d")"
	expect_eq "$(jq -r .spec.replicas <<<"$d")" 2 "replicas"
	expect_json_eq "$(jq -c .resources <<<"$c")" \
		'{"requests":{"cpu":"10m","memory":"16Mi"},"limits":{"cpu":"200m","memory":"64Mi"}}' "resources"
	expect_json_eq "$(jq -c .securityContext <<<"$c")" \
		'{"runAsNonRoot":true,"runAsUser":65532,"runAsGroup":65532,"readOnlyRootFilesystem":true,"allowPrivilegeEscalation":false,"privileged":false,"capabilities":{"drop":["ALL"]},"seccompProfile":{"type":"RuntimeDefault"}}' \
		"container securityContext"
	expect_json_eq "$(jq -c .spec.template.spec.securityContext <<<"$d")" \
		'{"runAsNonRoot":true,"runAsUser":65532,"runAsGroup":65532,"fsGroup":65532,"seccompProfile":{"type":"RuntimeDefault"}}' \
		"pod securityContext"
	expect_json_eq "$(jq -c '[.startupProbe.httpGet, .livenessProbe.httpGet, .readinessProbe.httpGet]' <<<"$c")" \
		'[{"path":"/healthz","port":"webhook","scheme":"HTTPS"},{"path":"/healthz","port":"webhook","scheme":"HTTPS"},{"path":"/readyz","port":"webhook","scheme":"HTTPS"}]' \
		"startup, liveness and readiness probes"
	expect_json_eq "$(jq -c .ports <<<"$c")" '[{"name":"webhook","containerPort":9443,"protocol":"TCP"}]' "container port"
	expect_eq "$(jq -r '.args[0]' <<<"$c")" serve "first argument"
	jq -e '.args | index("--listen=0.0.0.0:9443") and index("--cert-dir=/etc/inference-operator/tls")' <<<"$c" >/dev/null ||
		fail "args lack --listen=0.0.0.0:9443 / --cert-dir=/etc/inference-operator/tls"
	expect_json_eq "$(jq -c '[.args[] | select(test("^--leader-elect"))]' <<<"$c")" \
		"[\"--leader-elect\",\"--leader-election-namespace=$NS\",\"--leader-election-id=$LEASE_NAME\",
		  \"--leader-election-lease-duration=15\",\"--leader-election-renew-deadline=10\",\"--leader-election-retry-period=2\",
		  \"--leader-elect-warm-standby=true\"]" \
		"leader election flags"
	expect_json_eq "$(jq -c '[.args[] | select(test("^--(operator-namespace|cert-(mode|secret|validity|renew|check)|webhook-)"))]' <<<"$c")" \
		"[\"--operator-namespace=$NS\",\"--cert-mode=selfSigned\",\"--cert-secret=$TLS_SECRET\",\"--webhook-service=$RELEASE\",
		  \"--webhook-config-name=$WEBHOOK_NAME\",\"--cert-validity-days=365\",\"--cert-renew-before-days=30\",\"--cert-check-interval=60\"]" \
		"certificate flags (selfSigned)"
	expect_json_eq "$(jq -c .volumeMounts <<<"$c")" '[{"name":"tls","mountPath":"/etc/inference-operator/tls","readOnly":false}]' "cert volume mount"
	expect_json_eq "$(jq -c .spec.template.spec.volumes <<<"$d")" \
		'[{"name":"tls","emptyDir":{"medium":"Memory","sizeLimit":"1Mi"}}]' "cert volume (selfSigned: in-memory emptyDir the operator fills)"
	expect_eq "$(jq -r .spec.template.spec.serviceAccountName <<<"$d")" "$SA_NAME" "serviceAccountName"
	expect_eq "$(jq -r '.spec.template.spec.priorityClassName // "none"' <<<"$d")" none "priorityClassName by default"
	expect_json_eq "$(jq -c '[.spec.template.spec.topologySpreadConstraints[] | {topologyKey, labelSelector, whenUnsatisfiable}]' <<<"$d")" \
		"[{\"topologyKey\":\"kubernetes.io/hostname\",\"labelSelector\":{\"matchLabels\":$sel},\"whenUnsatisfiable\":\"ScheduleAnyway\"},{\"topologyKey\":\"topology.kubernetes.io/zone\",\"labelSelector\":{\"matchLabels\":$sel},\"whenUnsatisfiable\":\"ScheduleAnyway\"}]" \
		"topologySpreadConstraints"
	expect_json_eq "$(jq -c .spec.strategy.rollingUpdate <<<"$d")" '{"maxUnavailable":0,"maxSurge":1}' "rolling update"

	local svc
	svc="$(obj Service "$RELEASE")"
	expect_json_eq "$(jq -c '.spec.ports' <<<"$svc")" '[{"name":"webhook","port":443,"targetPort":"webhook","protocol":"TCP"}]' "Service ports (443 -> webhook = 9443)"
	expect_json_eq "$(jq -c '.spec.selector' <<<"$svc")" "$sel" "Service selector"
	expect_json_eq "$(obj PodDisruptionBudget "$RELEASE" | jq -c .spec)" "{\"maxUnavailable\":1,\"selector\":{\"matchLabels\":$sel}}" "PodDisruptionBudget"

	local kind hook path w
	for kind in Validating Mutating; do
		if [ "$kind" = Validating ]; then hook=validate path=/validate; else hook=mutate path=/mutate; fi
		w="$(obj "${kind}WebhookConfiguration" "$WEBHOOK_NAME" | jq -c '.webhooks')"
		expect_eq "$(jq -r length <<<"$w")" 1 "$kind: number of webhooks"
		expect_json_eq "$(jq -c '.[0] | del(.reinvocationPolicy)' <<<"$w")" "{
			\"name\": \"$hook.inferenceservices.ai.example.com\",
			\"admissionReviewVersions\": [\"v1\"], \"sideEffects\": \"None\", \"failurePolicy\": \"Fail\",
			\"timeoutSeconds\": 10, \"matchPolicy\": \"Equivalent\",
			\"rules\": [{\"apiGroups\": [\"ai.example.com\"], \"apiVersions\": [\"v1\"], \"operations\": [\"CREATE\", \"UPDATE\"],
				\"resources\": [\"inferenceservices\", \"inferenceservices/scale\"], \"scope\": \"Namespaced\"}],
			\"namespaceSelector\": {\"matchExpressions\": [{\"key\": \"kubernetes.io/metadata.name\", \"operator\": \"NotIn\",
				\"values\": [\"$NS\", \"kube-system\"]}]},
			\"clientConfig\": {\"service\": {\"name\": \"$RELEASE\", \"namespace\": \"$NS\", \"path\": \"$path\", \"port\": 443}}
		}" "${kind}WebhookConfiguration (no caBundle: selfSigned injects it at run time)"
	done

	expect_json_eq "$(obj ClusterRole "$RELEASE" | jq -c .rules)" "$(expected_cluster_rules reconciler webhooks)" "ClusterRole rules"
	expect_json_eq "$(obj Role "$RELEASE" | jq -c .rules)" "$(expected_role_rules lease secret)" "Role rules (release namespace)"
	expect_json_eq "$(jq -c '[.[] | select(.kind == "ClusterRoleBinding" or .kind == "RoleBinding") | {kind: .kind, role: .roleRef.name, subjects}]' <<<"$R")" \
		"[{\"kind\":\"ClusterRoleBinding\",\"role\":\"$RELEASE\",\"subjects\":[{\"kind\":\"ServiceAccount\",\"name\":\"$SA_NAME\",\"namespace\":\"$NS\"}]},
		  {\"kind\":\"RoleBinding\",\"role\":\"$RELEASE\",\"subjects\":[{\"kind\":\"ServiceAccount\",\"name\":\"$SA_NAME\",\"namespace\":\"$NS\"}]}]" \
		"bindings to the chart's ServiceAccount"
	note "12 objects; Deployment, probes, securityContext, webhooks and RBAC rules match exactly"
}

# expected_cluster_rules [reconciler] [webhooks]: the ClusterRole's rules (JSON).
expected_cluster_rules() {
	local parts=() p
	for p in "$@"; do
		case "$p" in
		reconciler) parts+=("$(expected_reconciler_rules)") ;;
		webhooks) parts+=("[{\"apiGroups\":[\"admissionregistration.k8s.io\"],\"resources\":[\"validatingwebhookconfigurations\",\"mutatingwebhookconfigurations\"],\"resourceNames\":[\"$WEBHOOK_NAME\"],\"verbs\":[\"get\",\"patch\"]}]") ;;
		esac
	done
	printf '%s\n' "${parts[@]}" | jq -s -c 'add'
}
expected_reconciler_rules() {
	echo '[{"apiGroups":["ai.example.com"],"resources":["inferenceservices"],"verbs":["get","list","watch"]},
	       {"apiGroups":["ai.example.com"],"resources":["inferenceservices/status"],"verbs":["update","patch"]},
	       {"apiGroups":["apps"],"resources":["deployments"],"verbs":["get","list","watch","create","patch"]},
	       {"apiGroups":[""],"resources":["services"],"verbs":["get","list","watch","create","patch"]},
	       {"apiGroups":[""],"resources":["pods"],"verbs":["get","list","watch"]},
	       {"apiGroups":["events.k8s.io"],"resources":["events"],"verbs":["create","patch"]}]' | jq -c .
}
# expected_role_rules [lease] [secret]: the release namespace Role's rules.
expected_role_rules() {
	local parts=() p
	for p in "$@"; do
		case "$p" in
		lease) parts+=("[{\"apiGroups\":[\"coordination.k8s.io\"],\"resources\":[\"leases\"],\"resourceNames\":[\"$LEASE_NAME\"],\"verbs\":[\"get\",\"update\"]},{\"apiGroups\":[\"coordination.k8s.io\"],\"resources\":[\"leases\"],\"verbs\":[\"create\"]}]") ;;
		secret) parts+=("[{\"apiGroups\":[\"\"],\"resources\":[\"secrets\"],\"resourceNames\":[\"$TLS_SECRET\"],\"verbs\":[\"get\",\"update\"]},{\"apiGroups\":[\"\"],\"resources\":[\"secrets\"],\"verbs\":[\"create\"]}]") ;;
		esac
	done
	printf '%s\n' "${parts[@]}" | jq -s -c 'add'
}

test_render_modes() {
	local d w svc_dns="$RELEASE.$NS.svc"

	echo "== certManager, own self-signed Issuer"
	render_json --set certs.mode=certManager
	expect_json_eq "$(obj Issuer "$RELEASE-selfsigned" | jq -c .spec)" '{"selfSigned":{}}' "Issuer"
	expect_json_eq "$(obj Certificate "$RELEASE" | jq -c '.spec | {secretName, dnsNames, issuerRef, duration, renewBefore, usages}')" \
		"{\"secretName\":\"$TLS_SECRET\",\"dnsNames\":[\"$svc_dns\",\"$svc_dns.cluster.local\"],
		  \"issuerRef\":{\"name\":\"$RELEASE-selfsigned\",\"kind\":\"Issuer\",\"group\":\"cert-manager.io\"},
		  \"duration\":\"2160h\",\"renewBefore\":\"360h\",\"usages\":[\"digital signature\",\"key encipherment\",\"server auth\"]}" "Certificate"
	for w in Validating Mutating; do
		expect_eq "$(obj "${w}WebhookConfiguration" "$WEBHOOK_NAME" | jq -r '.metadata.annotations["cert-manager.io/inject-ca-from"]')" \
			"$NS/$RELEASE" "$w: cert-manager.io/inject-ca-from (namespace/Certificate)"
		expect_eq "$(obj "${w}WebhookConfiguration" "$WEBHOOK_NAME" | jq -r '.webhooks[0].clientConfig.caBundle // "none"')" none "$w: no caBundle"
	done
	expect_json_eq "$(obj ClusterRole "$RELEASE" | jq -c .rules)" "$(expected_cluster_rules reconciler)" "ClusterRole: no webhook-configuration access"
	expect_json_eq "$(obj Role "$RELEASE" | jq -c .rules)" "$(expected_role_rules lease)" "Role: the Lease only (no Secret access)"
	d="$(obj Deployment "$RELEASE")"
	expect_json_eq "$(jq -c '.spec.template.spec.volumes[0].secret' <<<"$d")" "{\"secretName\":\"$TLS_SECRET\",\"defaultMode\":288,\"optional\":true}" \
		"volume: the Secret cert-manager issues (optional until it exists)"
	expect_json_eq "$(jq -c '[.spec.template.spec.containers[0].args[] | select(test("^--(cert-(mode|secret|validity|renew|check)|webhook-)"))]' <<<"$d")" '["--cert-mode=certManager"]' "certificate flags (certManager)"

	echo "== certManager with an existing ClusterIssuer"
	render_json --set certs.mode=certManager --set certs.certManager.issuerRef.name=corp-ca --set certs.certManager.issuerRef.kind=ClusterIssuer
	expect_eq "$(obj Issuer "$RELEASE-selfsigned")" null "no Issuer of our own"
	expect_json_eq "$(obj Certificate "$RELEASE" | jq -c .spec.issuerRef)" '{"name":"corp-ca","kind":"ClusterIssuer"}' "issuerRef"

	echo "== provided"
	# shellcheck disable=SC2046
	render_json $(provided_values)
	for w in Validating Mutating; do
		expect_eq "$(obj "${w}WebhookConfiguration" "$WEBHOOK_NAME" | jq -r '.webhooks[0].clientConfig.caBundle')" \
			"$(b64 "$TEST_CERTS/ca.crt")" "$w: caBundle from certs.caBundle"
	done
	d="$(obj Deployment "$RELEASE")"
	expect_json_eq "$(jq -c '.spec.template.spec.volumes[0].secret' <<<"$d")" '{"secretName":"my-tls","defaultMode":288}' "volume: the provided Secret, not optional"
	expect_eq "$(jq -r '.spec.template.spec.containers[0].volumeMounts[0].readOnly' <<<"$d")" true "mounted read-only"
	expect_json_eq "$(jq -c '[.spec.template.spec.containers[0].args[] | select(test("^--(cert-(mode|secret|validity|renew|check)|webhook-)"))]' <<<"$d")" '["--cert-mode=provided"]' "certificate flags (provided)"
	expect_json_eq "$(obj ClusterRole "$RELEASE" | jq -c .rules)" "$(expected_cluster_rules reconciler)" "ClusterRole: no webhook-configuration access"
	expect_json_eq "$(obj Role "$RELEASE" | jq -c .rules)" "$(expected_role_rules lease)" "Role: the Lease only"

	echo "== selfSigned certificate values"
	render_json --set certs.selfSigned.validityDays=90 --set certs.selfSigned.renewBeforeDays=10 --set certs.selfSigned.checkInterval=30 --set certs.secretName=webhook-tls
	obj Deployment "$RELEASE" | jq -e '.spec.template.spec.containers[0].args | index("--cert-validity-days=90") and index("--cert-renew-before-days=10")
		and index("--cert-check-interval=30") and index("--cert-secret=webhook-tls")' >/dev/null || fail "selfSigned values not rendered"
	obj Role "$RELEASE" | jq -e '[.rules[] | select(.resources == ["secrets"] and .resourceNames)][0].resourceNames == ["webhook-tls"]' >/dev/null ||
		fail "Role not limited to the custom Secret name"

	echo "== leader election off, custom Lease"
	render_json --set leaderElection.enabled=false
	obj Deployment "$RELEASE" | jq -e '[.spec.template.spec.containers[0].args[] | select(test("^--leader"))] | length == 0' >/dev/null ||
		fail "leader election flags rendered while disabled"
	expect_json_eq "$(obj Role "$RELEASE" | jq -c .rules)" "$(expected_role_rules secret)" "Role: the Secret only"
	render_json --set leaderElection.leaseName=io-leader --set leaderElection.leaseDuration=30 --set leaderElection.renewDeadline=20
	obj Deployment "$RELEASE" | jq -e '.spec.template.spec.containers[0].args | index("--leader-election-id=io-leader") and index("--leader-election-lease-duration=30")' >/dev/null ||
		fail "custom Lease flags not rendered"
	obj Role "$RELEASE" | jq -e '.rules[0].resourceNames == ["io-leader"]' >/dev/null || fail "Role not limited to the custom Lease name"
	render_json --set leaderElection.warmStandby=false
	obj Deployment "$RELEASE" | jq -e '[.spec.template.spec.containers[0].args[] | select(test("^--leader-elect-warm-standby"))] == ["--leader-elect-warm-standby=false"]' >/dev/null ||
		fail "leaderElection.warmStandby=false not rendered as --leader-elect-warm-standby=false"

	echo "== one watched namespace"
	render_json --set operator.watchNamespace=team-a
	expect_json_eq "$(obj ClusterRole "$RELEASE" | jq -c .rules)" "$(expected_cluster_rules webhooks)" "ClusterRole: webhook configurations only"
	expect_eq "$(obj Role "$RELEASE-reconciler" | jq -r .metadata.namespace)" team-a "reconciler Role's namespace"
	expect_json_eq "$(obj Role "$RELEASE-reconciler" | jq -c .rules)" "$(expected_reconciler_rules)" "reconciler Role rules"
	expect_eq "$(obj RoleBinding "$RELEASE-reconciler" | jq -r '.subjects[0].namespace')" "$NS" "RoleBinding subject namespace"
	obj Deployment "$RELEASE" | jq -e '.spec.template.spec.containers[0].args | index("--namespace=team-a")' >/dev/null ||
		fail "--namespace=team-a not in args"

	echo "== operator flags, webhook and scheduling values"
	render_json --set-json 'operator.gpuProducts={"H100":["NVIDIA-H100-80GB-HBM3","NVIDIA-H100-PCIe"],"A100":["NVIDIA-A100-SXM4-80GB"]}' \
		--set 'operator.gpuTypes={H100,A100}' --set operator.logLevel=debug --set operator.workers=8 --set operator.burstWorkers=12 \
		--set webhook.failurePolicy=Ignore --set webhook.timeoutSeconds=5 --set 'webhook.excludeNamespaces={ml-system}' \
		--set priorityClassName=system-cluster-critical --set replicaCount=1 --set image.digest=sha256:"$(printf '%064d' 7)"
	d="$(obj Deployment "$RELEASE")"
	jq -e '.spec.template.spec.containers[0].args | index("--gpu-products=A100=NVIDIA-A100-SXM4-80GB;H100=NVIDIA-H100-80GB-HBM3|NVIDIA-H100-PCIe")
		and index("--gpu-types=H100,A100") and index("--log-level=debug") and index("--workers=8") and index("--burst-workers=12")' <<<"$d" >/dev/null ||
		fail "operator flags not rendered: $(jq -c '.spec.template.spec.containers[0].args' <<<"$d")"
	expect_eq "$(jq -r .spec.template.spec.priorityClassName <<<"$d")" system-cluster-critical "priorityClassName"
	expect_eq "$(jq -r '.spec.template.spec.containers[0].image' <<<"$d")" "registry.example.com/inference-operator@sha256:$(printf '%064d' 7)" "image by digest"
	expect_eq "$(obj PodDisruptionBudget "$RELEASE")" null "no PodDisruptionBudget for one replica"
	w="$(obj ValidatingWebhookConfiguration "$WEBHOOK_NAME" | jq -c '.webhooks[0] | {failurePolicy, timeoutSeconds, ns: .namespaceSelector.matchExpressions[0].values}')"
	expect_json_eq "$w" "{\"failurePolicy\":\"Ignore\",\"timeoutSeconds\":5,\"ns\":[\"$NS\",\"kube-system\",\"ml-system\"]}" "webhook values"

	echo "== another release name: resource names follow it, the webhook configurations keep theirs"
	run "$HELM" template ml "$CHART" --namespace "$NS"
	expect_ok "helm template ml"
	[[ "$OUT" == *"name: ml-inference-operator"* && "$OUT" == *"resourceNames: [\"ml-inference-operator-tls\"]"* ]] ||
		fail "release ml: names not derived from it"
	note "certManager (own Issuer / ClusterIssuer), provided, selfSigned values, leader election off / custom Lease, watchNamespace, flags and scheduling values render as intended"
}

# Every `serve` flag is reachable from values, and the rendered args are
# accepted by the real binary's parser (serve ARGS --help parses ARGS first).
test_flags_coverage() {
	local flags rendered missing=() f excluded=" kubeconfig service-account-dir webhook-only reconciler-only help "
	flags="$(grep -o '^  --[a-z0-9-]*' <<<"$SERVE_HELP" | sed 's/^  --//' | sort -u)"
	[ -n "$flags" ] || fail "could not read the flags from serve --help"
	rendered="$(args_of --set operator.tlsPriorities=NORMAL --set operator.watchNamespace=team-a \
		--set-json 'operator.gpuProducts={"A100":["x"],"H100":["y"],"L40S":["z"]}' | sed -n 's/^--\([a-z0-9-]*\).*/\1/p' | sort -u)"
	for f in $flags; do
		[[ "$excluded" == *" $f "* ]] && continue
		grep -qx -- "$f" <<<"$rendered" || missing+=("--$f")
	done
	[ ${#missing[@]} = 0 ] || fail "serve flags with no chart value: ${missing[*]} (add them to values.yaml and _helpers.tpl)"
	echo "  every serve flag but${excluded% } is rendered"

	local set args
	while IFS= read -r set; do
		# shellcheck disable=SC2086
		mapfile -t args < <(args_of $set)
		[ ${#args[@]} -gt 10 ] || fail "could not render the chart's args for: ${set:-defaults}"
		run "$IO_BIN" "${args[@]}" --help
		expect_ok "the binary accepts the chart's args for: ${set:-defaults}"
	done < <(value_sets)
	note "every serve flag except --kubeconfig, --service-account-dir, --webhook-only, --reconciler-only has a value; rendered args parse"
}

test_dry_run_server() {
	local set n=0 objs
	for ns in "$NS" "$NS-watch"; do
		kc get namespace "$ns" >/dev/null 2>&1 || { run kc create namespace "$ns" && expect_ok "create namespace $ns"; }
	done
	while IFS= read -r set; do
		# shellcheck disable=SC2086
		render "$TDIR/render.yaml" --include-crds $set
		objs="$(grep -c '^kind: ' "$TDIR/render.yaml")"
		run kc apply --dry-run=server -f "$TDIR/render.yaml"
		expect_ok "kubectl apply --dry-run=server (${set:-defaults})"
		expect_eq "$(grep -c '(server dry run)$' <<<"$OUT")" "$objs" "objects accepted for: ${set:-defaults}"
		n=$((n + 1))
	done < <(value_sets)
	# The stand-in cert-manager CRDs are strict: a misspelt field is refused.
	render "$TDIR/render.yaml" --set certs.mode=certManager
	sed 's/^  dnsNames:/  dnsName:/' "$TDIR/render.yaml" >"$TDIR/typo.yaml"
	run kc apply --dry-run=server -f "$TDIR/typo.yaml"
	expect_fail "a Certificate with a misspelt field"
	expect_err_has 'unknown field "spec.dnsName"'
	note "$n value sets (incl. the CRD) accepted by kube-apiserver $K8S_VERSION (server-side dry run, strict field validation); certManager kinds against stand-in CRDs"
}
