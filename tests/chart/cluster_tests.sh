# shellcheck shell=bash
# The chart installed into the real API server, and the operator run the way a
# pod runs it (the chart's args, a service-account token, no kubeconfig) under
# only the chart's RBAC. Sourced by run.sh.

# review_t4: an AdmissionReview the validating webhook must deny.
review_t4() {
	printf '%s' '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1","kind":{"group":"ai.example.com","version":"v1","kind":"InferenceService"},"resource":{"group":"ai.example.com","version":"v1","resource":"inferenceservices"},"name":"x","namespace":"ns","operation":"CREATE","userInfo":{"username":"u"},"object":{"apiVersion":"ai.example.com/v1","kind":"InferenceService","metadata":{"name":"x","namespace":"ns"},"spec":{"model":"m","gpuType":"T4","replicas":1,"maxBatchSize":32}}}}'
}

test_helm_install() {
	run helmc install "$RELEASE" "$CHART" --namespace "$NS" --create-namespace --timeout 60s
	expect_ok "helm install"
	expect_out_has "STATUS: deployed"
	run helmc status "$RELEASE" -n "$NS" -o json
	expect_ok "helm status"
	expect_eq "$(jq -r .info.status <<<"$OUT")" deployed "release status"
	run kc wait --for=condition=Established --timeout=60s crd/inferenceservices.ai.example.com
	expect_ok "the CRD from crds/ is Established"
	run kc -n "$NS" get serviceaccount/"$SA_NAME" deployment/"$RELEASE" service/"$RELEASE" \
		poddisruptionbudget/"$RELEASE" role/"$RELEASE" rolebinding/"$RELEASE" -o name
	expect_ok "namespaced objects exist"
	run kc get clusterrole/"$RELEASE" clusterrolebinding/"$RELEASE" validatingwebhookconfiguration/"$WEBHOOK_NAME" \
		mutatingwebhookconfiguration/"$WEBHOOK_NAME" -o name
	expect_ok "cluster-scoped objects exist"
	run kc get validatingwebhookconfiguration,mutatingwebhookconfiguration "$WEBHOOK_NAME" -o json
	expect_json_eq "$(jq -c '[.items[].webhooks[0].clientConfig]' <<<"$OUT")" \
		"[{\"service\":{\"name\":\"$RELEASE\",\"namespace\":\"$NS\",\"path\":\"/validate\",\"port\":443}},
		  {\"service\":{\"name\":\"$RELEASE\",\"namespace\":\"$NS\",\"path\":\"/mutate\",\"port\":443}}]" \
		"stored clientConfig: the Service, no caBundle (selfSigned: the operator injects it)"
	run kc -n "$NS" get secret "$TLS_SECRET" -o name
	expect_fail "no TLS Secret before the operator runs"
	note "release $RELEASE deployed in $NS; the API server stored all 12 objects and the CRD"
}

test_incluster_reconcile() {
	needs helm_install
	# The service-account directory as the kubelet projects it.
	mkdir -p "$SA_DIR"
	run kc -n "$NS" create secret generic tokenbind-1 --from-literal=purpose=token-binding
	expect_ok "create the Secret the first token is bound to"
	mint_token "$SA_DIR/token" --duration=10m --bound-object-kind=Secret --bound-object-name=tokenbind-1
	cp "$CLUSTER_CA" "$SA_DIR/ca.crt" && printf '%s' "$NS" >"$SA_DIR/namespace" && chmod 0644 "$SA_DIR"/* ||
		fail "could not lay out $SA_DIR"
	cat >"$SA_KCFG" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster: {server: "https://127.0.0.1:$APISERVER_PORT", certificate-authority: "$SA_DIR/ca.crt"}
users:
- name: sa
  user: {tokenFile: "$SA_DIR/token"}
contexts:
- name: sa
  context: {cluster: local, user: sa, namespace: "$NS"}
current-context: sa
EOF
	run ksa auth whoami -o jsonpath='{.status.userInfo.username}'
	expect_ok "kubectl auth whoami with the token"
	expect_eq "$OUT" "system:serviceaccount:$NS:$SA_NAME" "the token's user"

	local args
	mapfile -t args < <(chart_serve_args)
	[ ${#args[@]} -gt 10 ] || fail "could not render the chart's args"
	echo "  chart args: ${args[*]}"
	# The pod's emptyDir: empty; selfSigned fills it.
	rm -rf "$WORK/tls-main"
	op_start main "$WORK/tls-main" "${args[@]}"
	wait_for "/readyz of the operator (certificate in place, caches synced)" 60 op_ready main
	grep -E '"msg":"(ensuring the webhook certificate|reconciler started|became leader)"' "$P_LOG" | sed 's/^/  log| /'
	grep '"reconciler started"' "$P_LOG" | grep -q "127.0.0.1:$APISERVER_PORT" ||
		fail "the reconciler did not start against the in-cluster API server"

	isvc_create llama H100
	expect_reconciled llama
	no_forbidden "$P_LOG"
	local rss hwm
	rss="$(awk '/^VmRSS/ { print $2 }' "/proc/$P_PID/status")"
	hwm="$(awk '/^VmHWM/ { print $2 }' "/proc/$P_PID/status")"
	# (A sanitizer build's shadow memory is not what ships.)
	[ "$SANITIZED" = 1 ] || [ "$hwm" -lt $((64 * 1024)) ] || fail "peak RSS ${hwm} KiB exceeds the chart's 64Mi limit"
	note "the chart's args, token + ca.crt + namespace, no kubeconfig: certificate bootstrapped, caches synced, Lease taken, reconciled with status and Events; RSS ${rss} KiB (peak ${hwm} KiB) vs 16Mi request / 64Mi limit"
}

# selfSigned mode with only the chart's RBAC: the operator created the Secret,
# injected the caBundle, wrote the pair into its emptyDir; the webhook is
# trusted the way the API server calls it; a broken Secret is renewed in the
# background (update) and the running operator reloads it without a restart.
test_selfsigned_certificates() {
	needs incluster_reconcile
	op_running main || fail "the in-cluster operator is not running"
	local sec uid kind
	run kc -n "$NS" get secret "$TLS_SECRET" -o json
	expect_ok "the operator created Secret $TLS_SECRET"
	sec="$OUT"
	expect_eq "$(jq -r .type <<<"$sec")" kubernetes.io/tls "Secret type"
	for kind in tls.crt tls.key ca.crt; do
		jq -r --arg k "$kind" '.data[$k] // ""' <<<"$sec" | base64 -d >"$TDIR/s.$kind" || fail "decode $kind"
		[ -s "$TDIR/s.$kind" ] || fail "the Secret has no $kind"
	done
	uid="$(jq -r .metadata.uid <<<"$sec")"
	run openssl x509 -in "$TDIR/s.tls.crt" -noout -ext subjectAltName
	expect_out_has "DNS:$SVC_DNS"
	run openssl verify -CAfile "$TDIR/s.ca.crt" "$TDIR/s.tls.crt"
	expect_ok "tls.crt is signed by the Secret's CA"
	for kind in validatingwebhookconfiguration mutatingwebhookconfiguration; do
		kc get "$kind" "$WEBHOOK_NAME" -o jsonpath='{.webhooks[0].clientConfig.caBundle}' | base64 -d >"$TDIR/bundle.$kind"
		cmp -s "$TDIR/bundle.$kind" "$TDIR/s.ca.crt" || fail "$kind: caBundle is not the Secret's CA"
		echo "  ok: $kind caBundle = the Secret's ca.crt"
	done
	cmp -s "$P_CERTS/tls.crt" "$TDIR/s.tls.crt" && cmp -s "$P_CERTS/ca.crt" "$TDIR/s.ca.crt" ||
		fail "the cert dir does not hold the Secret's pair"
	expect_eq "$(stat -c %a "$P_CERTS/tls.key")" 600 "tls.key mode in the cert dir"

	# The API server's view: TLS to the Service name, trusting the injected caBundle.
	run tls_get "$P_PORT" "$TDIR/bundle.mutatingwebhookconfiguration" /healthz
	expect_ok "TLS to $SVC_DNS with the caBundle"
	review_t4 >"$TDIR/review.json"
	run tls_get "$P_PORT" "$TDIR/bundle.validatingwebhookconfiguration" /validate -H 'Content-Type: application/json' \
		--data-binary "@$TDIR/review.json"
	expect_ok "POST /validate"
	expect_eq "$(jq -r .response.allowed <<<"$OUT")" false "a T4 InferenceService is denied"

	# Background renewal: restart with a short check interval (a pod restart
	# keeps its emptyDir), break the Secret, watch it heal and reload.
	local args reloads
	mapfile -t args < <(chart_serve_args --set certs.selfSigned.checkInterval=2)
	[ ${#args[@]} -gt 10 ] || fail "could not render the chart's args"
	op_stop main
	op_start main "$WORK/tls-main" "${args[@]}"
	wait_for "/readyz after the restart" 60 op_ready main
	reloads="$(grep -c '"serving certificate reloaded"' "$P_LOG")"
	run kc -n "$NS" patch secret "$TLS_SECRET" --type=merge -p \
		"{\"data\":{\"tls.crt\":\"$(b64 "$TEST_CERTS/tls.crt")\",\"tls.key\":\"$(b64 "$TEST_CERTS/tls.key")\"}}"
	expect_ok "admin replaces the Secret's pair with one for other names and another CA"
	healed() {
		kc -n "$NS" get secret "$TLS_SECRET" -o json | jq -r '.data["tls.crt"]' | base64 -d >"$TDIR/h.crt" &&
			openssl verify -CAfile "$TDIR/s.ca.crt" "$TDIR/h.crt" >/dev/null 2>&1 && ! cmp -s "$TDIR/h.crt" "$TDIR/s.tls.crt"
	}
	wait_for "the operator renews the Secret (same CA, new serving certificate)" 30 healed
	expect_eq "$(kc -n "$NS" get secret "$TLS_SECRET" -o jsonpath='{.metadata.uid}')" "$uid" "Secret uid (updated, not recreated)"
	on_disk() { cmp -s "$P_CERTS/tls.crt" "$TDIR/h.crt"; }
	wait_for "the renewed pair in the cert dir" 30 on_disk
	reloaded() { [ "$(grep -c '"serving certificate reloaded"' "$P_LOG")" -gt "$reloads" ]; }
	wait_for "hot reload without a restart (pid $P_PID)" 30 reloaded
	served() { openssl s_client -connect "127.0.0.1:$P_PORT" -servername "$SVC_DNS" </dev/null 2>/dev/null | openssl x509 >"$TDIR/served.crt" && cmp -s "$TDIR/served.crt" "$TDIR/h.crt"; }
	wait_for "the new certificate served" 30 served
	kc get validatingwebhookconfiguration "$WEBHOOK_NAME" -o jsonpath='{.webhooks[0].clientConfig.caBundle}' | base64 -d |
		cmp -s - "$TDIR/s.ca.crt" || fail "caBundle changed (the CA must be kept across renewals)"
	no_forbidden "$P_LOG"
	note "Secret created (SANs for $SVC_DNS, signed by its CA), caBundle injected into both configurations, pair in the emptyDir; TLS to the Service name with the caBundle answers /validate; a broken Secret renewed in place (update) and reloaded by the running process; CA and caBundle kept"
}

test_rbac_negative() {
	needs incluster_reconcile
	local other="$NS-other"
	local yes=(
		"list inferenceservices.ai.example.com -A"
		"watch inferenceservices.ai.example.com -A"
		"patch inferenceservices.ai.example.com --subresource=status -n $other"
		"update inferenceservices.ai.example.com --subresource=status -n $other"
		"create deployments.apps -n $other"
		"patch deployments.apps -n $other"
		"watch deployments.apps -A"
		"create services -n $other"
		"list services -A"
		"list pods -A"
		"watch pods -A"
		"get pods -n $NS"
		"create events.events.k8s.io -n $other"
		"get validatingwebhookconfigurations.admissionregistration.k8s.io/$WEBHOOK_NAME"
		"patch mutatingwebhookconfigurations.admissionregistration.k8s.io/$WEBHOOK_NAME"
		"get secrets/$TLS_SECRET -n $NS"
		"update secrets/$TLS_SECRET -n $NS"
		"create secrets -n $NS"
		"get leases.coordination.k8s.io/$LEASE_NAME -n $NS"
		"update leases.coordination.k8s.io/$LEASE_NAME -n $NS"
		"create leases.coordination.k8s.io -n $NS"
	)
	local no=(
		"get secrets -n kube-system"
		"get secrets/$TLS_SECRET -n $other"
		"list secrets -n $NS"
		"watch secrets -n $NS"
		"get secrets/tokenbind-1 -n $NS"
		"delete secrets/$TLS_SECRET -n $NS"
		"patch secrets/$TLS_SECRET -n $NS"
		"create secrets -n $other"
		"patch validatingwebhookconfigurations.admissionregistration.k8s.io/other-webhooks"
		"get mutatingwebhookconfigurations.admissionregistration.k8s.io/other-webhooks"
		"delete validatingwebhookconfigurations.admissionregistration.k8s.io/$WEBHOOK_NAME"
		"update validatingwebhookconfigurations.admissionregistration.k8s.io/$WEBHOOK_NAME"
		"list validatingwebhookconfigurations.admissionregistration.k8s.io"
		"create mutatingwebhookconfigurations.admissionregistration.k8s.io"
		"create pods -n $other"
		"delete pods -n $other"
		"patch pods -n $other"
		"update pods --subresource=status -n $other"
		"delete deployments.apps -n $other"
		"update deployments.apps -n $other"
		"create inferenceservices.ai.example.com -n $other"
		"update inferenceservices.ai.example.com -n $other"
		"delete inferenceservices.ai.example.com -n $other"
		"list events.events.k8s.io -n $other"
		"create events -n $other"
		"get configmaps -n $NS"
		"get nodes"
		"create clusterrolebindings.rbac.authorization.k8s.io"
		"bind clusterroles.rbac.authorization.k8s.io"
		"impersonate serviceaccounts -n $NS"
		"create serviceaccounts/token -n $NS"
		"get leases.coordination.k8s.io/other -n $NS"
		"list leases.coordination.k8s.io -n $NS"
		"delete leases.coordination.k8s.io/$LEASE_NAME -n $NS"
		"patch leases.coordination.k8s.io/$LEASE_NAME -n $NS"
		"create leases.coordination.k8s.io -n $other"
		"update leases.coordination.k8s.io/$LEASE_NAME -n kube-system"
		"create customresourcedefinitions.apiextensions.k8s.io"
	)
	local q
	for q in "${yes[@]}"; do
		# shellcheck disable=SC2086
		run ksa auth can-i $q
		expect_eq "$OUT" yes "can-i $q"
	done
	for q in "${no[@]}"; do
		# shellcheck disable=SC2086
		run ksa auth can-i $q
		expect_eq "$OUT" no "can-i $q"
	done

	# Real requests, not only the authorizer's opinion.
	local who="User \"system:serviceaccount:$NS:$SA_NAME\" cannot"
	kc get namespace "$other" >/dev/null 2>&1 || { run kc create namespace "$other" && expect_ok "create namespace $other"; }
	run kc -n "$other" create secret generic not-yours --from-literal=k=v
	expect_ok "admin creates a Secret in another namespace"
	run ksa -n "$other" get secret not-yours
	expect_fail "read a Secret in another namespace"
	expect_err_has "$who get resource \"secrets\" in API group \"\" in the namespace \"$other\""
	run ksa -n "$NS" get secret tokenbind-1
	expect_fail "read another Secret in its own namespace"
	expect_err_has "$who get resource \"secrets\""
	run ksa -n kube-system get secrets
	expect_fail "list Secrets"
	expect_err_has "$who list resource \"secrets\""
	run ksa -n "$NS" get secret "$TLS_SECRET" -o name
	expect_ok "read its own TLS Secret, by name"
	printf '{"apiVersion":"admissionregistration.k8s.io/v1","kind":"ValidatingWebhookConfiguration","metadata":{"name":"other-webhooks"},"webhooks":[]}\n' >"$TDIR/other.json"
	run_in "$TDIR/other.json" kc apply -f -
	expect_ok "admin creates another webhook configuration"
	run ksa patch validatingwebhookconfiguration other-webhooks --type=merge -p '{"metadata":{"labels":{"touched":"yes"}}}'
	expect_fail "kubectl patch of another webhook configuration"
	expect_err_has "$who get resource \"validatingwebhookconfigurations\""
	# The PATCH request itself, as the operator sends it (kubectl reads first).
	sa_patch() {
		curl -sS --max-time 5 --cacert "$SA_DIR/ca.crt" -H "Authorization: Bearer $(cat "$SA_DIR/token")" \
			-H 'Content-Type: application/merge-patch+json' -X PATCH -d '{"metadata":{"labels":{"touched":"yes"}}}' \
			-w '\n%{http_code}' "https://127.0.0.1:$APISERVER_PORT/apis/admissionregistration.k8s.io/v1/$1"
	}
	run sa_patch validatingwebhookconfigurations/other-webhooks
	expect_eq "$(tail -n 1 <<<"$OUT")" 403 "PATCH another webhook configuration"
	[[ "$(sed '$d' <<<"$OUT" | jq -r .message)" == *"$who patch resource \"validatingwebhookconfigurations\""* ]] ||
		fail "the 403 does not name the patch verb"
	run sa_patch "mutatingwebhookconfigurations/$WEBHOOK_NAME?dryRun=All"
	expect_eq "$(tail -n 1 <<<"$OUT")" 200 "PATCH its own webhook configuration (dry run)"
	run ksa -n "$other" delete pod no-such-pod
	expect_fail "delete a pod"
	expect_err_has "$who delete resource \"pods\""
	printf '{"apiVersion":"ai.example.com/v1","kind":"InferenceService","metadata":{"name":"by-sa","namespace":"%s"},"spec":{"model":"m","gpuType":"A100"}}\n' "$NS" >"$TDIR/sa-isvc.json"
	run_in "$TDIR/sa-isvc.json" ksa create -f -
	expect_fail "create an InferenceService"
	expect_err_has "$who create resource \"inferenceservices\""
	run kc delete validatingwebhookconfiguration other-webhooks
	note "${#yes[@]} allowed and ${#no[@]} denied permissions checked with kubectl auth can-i; denials confirmed by real requests (another namespace's Secret, another Secret by name, listing Secrets, PATCH of another webhook configuration, pods, creating InferenceServices)"
}

test_token_rotation() {
	needs incluster_reconcile
	op_running main || fail "the in-cluster operator is not running"
	local old new mark reread
	old="$(cat "$SA_DIR/token")"
	run "$KUBECTL" --kubeconfig /dev/null --server "https://127.0.0.1:$APISERVER_PORT" --certificate-authority "$CLUSTER_CA" \
		--token "$old" auth whoami -o name
	expect_ok "the current token (bound to Secret tokenbind-1) is valid"
	mark="$(wc -l <"$P_LOG")"
	old_rejected() {
		! "$KUBECTL" --kubeconfig /dev/null --server "https://127.0.0.1:$APISERVER_PORT" --certificate-authority "$CLUSTER_CA" \
			--token "$old" auth whoami -o name 2>&1 | grep -v -q Unauthorized
	}

	# Rotate as the kubelet does (a new token replaces the file by rename), then
	# revoke the old one: deleting the object it is bound to invalidates it.
	run kc -n "$NS" create secret generic tokenbind-2 --from-literal=purpose=token-binding
	mint_token "$SA_DIR/token" --duration=10m --bound-object-kind=Secret --bound-object-name=tokenbind-2
	new="$(cat "$SA_DIR/token")"
	[ "$new" != "$old" ] || fail "the new token equals the old one"
	run kc -n "$NS" delete secret tokenbind-1
	expect_ok "delete Secret tokenbind-1"
	wait_for "the API server rejects the old token (401)" 30 old_rejected
	isvc_create after-rotation L40S
	expect_reconciled after-rotation
	op_ready main || fail "/readyz not 200 after the rotation"
	reread="$(tail -n "+$((mark + 1))" "$P_LOG" | grep -c 'kube request got 401; retrying with the re-read token')"
	tail -n "+$((mark + 1))" "$P_LOG" | grep -E '401|token' | head -n 5 | sed 's/^/  log| /'

	# Once more, revoking the second token too.
	mint_token "$SA_DIR/token" --duration=10m
	run kc -n "$NS" delete secret tokenbind-2
	old="$new"
	wait_for "the API server rejects the second token" 30 old_rejected
	isvc_create after-second-rotation A100
	expect_reconciled after-second-rotation
	no_forbidden "$P_LOG"
	if [ "$reread" -gt 0 ]; then
		note "token file replaced (rename) and the old token revoked (its bound Secret deleted): the operator got 401, re-read the file and carried on ($reread retries logged); twice"
	else
		note "token file replaced (rename) and the old token revoked (its bound Secret deleted): the operator re-read the file (periodic refresh) and carried on; twice"
	fi
}

# Leader election with only the chart's Role: the operator holds the Lease; a
# second replica with the same args waits (and converges on the same
# certificate); SIGTERM of the leader releases the Lease and the second one
# takes over and reconciles.
test_leader_election_lease() {
	needs incluster_reconcile
	op_running main || fail "the in-cluster operator is not running"
	local p1="$P_PID" log1="$P_LOG" h1 h2 t1 args
	trap 'op_stop second' EXIT
	lease() { kc -n "$NS" get lease "$LEASE_NAME" -o json; }
	holder() { lease | jq -e '.spec.holderIdentity // "" | length > 0' >/dev/null; }
	wait_for "Lease $NS/$LEASE_NAME held" 30 holder
	h1="$(lease | jq -r .spec.holderIdentity)"
	grep -q '"msg":"became leader"' "$log1" || fail "the operator did not log becoming leader"
	t1="$(lease | jq -r .spec.renewTime)"
	renewed() { [ "$(lease | jq -r .spec.renewTime)" != "$t1" ]; }
	wait_for "Lease renewed by $h1" 20 renewed

	mapfile -t args < <(chart_serve_args)
	[ ${#args[@]} -gt 10 ] || fail "could not render the chart's args"
	rm -rf "$WORK/tls-second"
	op_start second "$WORK/tls-second" "${args[@]}"
	wait_for "/readyz of the second replica" 60 op_ready second
	local p2="$P_PID" log2="$P_LOG"
	cmp -s "$WORK/tls-second/tls.crt" "$WORK/tls-main/tls.crt" || fail "the replicas serve different certificates"
	sleep 3
	expect_eq "$(lease | jq -r .spec.holderIdentity)" "$h1" "holder while both run"
	! grep -q '"msg":"became leader"' "$log2" || fail "the second replica became leader while the first holds the Lease"

	echo "  stopping the leader (pid $p1); it releases the Lease"
	op_stop main
	grep -q '"msg":"lease released"' "$log1" || fail "the leader did not release the Lease on SIGTERM"
	took_over() { grep -q '"msg":"became leader"' "$log2"; }
	wait_for "the second replica takes the Lease" 30 took_over
	h2="$(lease | jq -r .spec.holderIdentity)"
	[ "$h2" != "$h1" ] && [ -n "$h2" ] || fail "holder after the handover: '$h2' (before: '$h1')"
	isvc_create after-failover A100
	expect_reconciled after-failover
	op_stop second
	no_forbidden "$log1" "$log2"
	note "Lease $LEASE_NAME held and renewed; a second replica (pid $p2) served the same certificate, waited, took over when the leader (pid $p1) released the Lease on SIGTERM, and reconciled"
}

test_helm_upgrade_modes() {
	needs helm_install
	local ca_before
	ca_before="$(kc get validatingwebhookconfiguration "$WEBHOOK_NAME" -o jsonpath='{.webhooks[0].clientConfig.caBundle}')"
	run helmc upgrade "$RELEASE" "$CHART" -n "$NS" --reuse-values --set operator.workers=6 --timeout 60s
	expect_ok "helm upgrade, still selfSigned"
	if [ -n "$ca_before" ]; then
		expect_eq "$(kc get validatingwebhookconfiguration "$WEBHOOK_NAME" -o jsonpath='{.webhooks[0].clientConfig.caBundle}')" \
			"$ca_before" "the caBundle the operator injected survives helm upgrade"
	fi

	run kc -n "$NS" create secret tls my-tls --cert "$TEST_CERTS/tls.crt" --key "$TEST_CERTS/tls.key"
	expect_ok "create the provided TLS Secret"
	# shellcheck disable=SC2046
	run helmc upgrade "$RELEASE" "$CHART" -n "$NS" $(provided_values) --set leaderElection.enabled=false --set replicaCount=1 --timeout 60s
	expect_ok "helm upgrade to provided mode, one replica without leader election"
	run kc get validatingwebhookconfiguration,mutatingwebhookconfiguration "$WEBHOOK_NAME" -o json
	jq -e --arg ca "$(b64 "$TEST_CERTS/ca.crt")" '[.items[].webhooks[0].clientConfig.caBundle] | all(. == $ca)' <<<"$OUT" >/dev/null ||
		fail "caBundle of the provided CA not in both configurations"
	run kc -n "$NS" get deployment "$RELEASE" -o jsonpath='{.spec.template.spec.volumes[0].secret.secretName}'
	expect_eq "$OUT" my-tls "mounted Secret"
	run kc -n "$NS" get role,rolebinding,poddisruptionbudget -l app.kubernetes.io/instance="$RELEASE" -o name
	expect_eq "$OUT" "" "no Role/RoleBinding (no Secret, no Lease) and no PodDisruptionBudget (one replica)"
	local q
	for q in "get leases.coordination.k8s.io/$LEASE_NAME -n $NS" "create leases.coordination.k8s.io -n $NS" \
		"get secrets/$TLS_SECRET -n $NS" "create secrets -n $NS" \
		"patch validatingwebhookconfigurations.admissionregistration.k8s.io/$WEBHOOK_NAME"; do
		# shellcheck disable=SC2086
		run ksa auth can-i $q
		expect_eq "$OUT" no "can-i $q (provided mode, no leader election)"
	done
	for q in "list inferenceservices.ai.example.com -A" "patch deployments.apps -n $NS"; do
		# shellcheck disable=SC2086
		run ksa auth can-i $q
		expect_eq "$OUT" yes "can-i $q (the reconciler's rules stay)"
	done

	run helmc upgrade "$RELEASE" "$CHART" -n "$NS" --set certs.mode=certManager --timeout 60s
	expect_ok "helm upgrade to certManager mode"
	run kc -n "$NS" get issuer "$RELEASE-selfsigned" -o name
	expect_ok "Issuer stored"
	run kc -n "$NS" get certificate "$RELEASE" -o jsonpath='{.spec.secretName}'
	expect_eq "$OUT" "$TLS_SECRET" "Certificate secretName"
	run kc get mutatingwebhookconfiguration "$WEBHOOK_NAME" -o jsonpath='{.metadata.annotations.cert-manager\.io/inject-ca-from}'
	expect_eq "$OUT" "$NS/$RELEASE" "inject-ca-from annotation"
	run helmc history "$RELEASE" -n "$NS" -o json
	note "upgrades keep the injected caBundle; selfSigned -> provided (1 replica, no leader election) -> certManager: RBAC follows the values (Secret/webhook access only in selfSigned, Lease only with leader election); revision $(jq -r '.[-1].revision' <<<"$OUT")"
}

test_helm_uninstall() {
	needs helm_install
	op_stop main
	run helmc uninstall "$RELEASE" -n "$NS" --timeout 60s
	expect_ok "helm uninstall"
	run kc get validatingwebhookconfiguration,mutatingwebhookconfiguration,clusterrole,clusterrolebinding \
		-l app.kubernetes.io/instance="$RELEASE" -o name
	expect_eq "$OUT" "" "cluster-scoped objects left"
	run kc -n "$NS" get serviceaccount,deployment,service,poddisruptionbudget,role,rolebinding,issuer,certificate \
		-l app.kubernetes.io/instance="$RELEASE" -o name
	expect_eq "$OUT" "" "namespaced objects left"
	run kc get crd inferenceservices.ai.example.com -o name
	expect_ok "the CRD stays (helm never deletes crds/)"
	if [ -f "$WORK/passed/incluster_reconcile" ]; then
		run kc -n "$NS" get secret "$TLS_SECRET" -o name
		expect_ok "the Secret the operator created stays (not helm's)"
		run kc -n "$NS" delete secret "$TLS_SECRET"
	fi
	note "uninstall removes everything but the CRD and the Secret the operator created (documented)"
}
