{{/* Names, labels and the operator's command line. */}}

{{- define "inference-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the release name when it already contains the chart name. */}}
{{- define "inference-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "inference-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "inference-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "inference-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "inference-operator.labels" -}}
helm.sh/chart: {{ include "inference-operator.chart" . }}
{{ include "inference-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "inference-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "inference-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The TLS Secret mounted at certs.mountPath. */}}
{{- define "inference-operator.certSecretName" -}}
{{- if eq .Values.certs.mode "provided" }}
{{- required "certs.secretName is required in provided mode" .Values.certs.secretName }}
{{- else }}
{{- default (printf "%s-tls" (include "inference-operator.fullname" .)) .Values.certs.secretName }}
{{- end }}
{{- end }}

{{- define "inference-operator.webhookConfigName" -}}
{{- default (include "inference-operator.fullname" .) .Values.webhook.configurationName }}
{{- end }}

{{- define "inference-operator.leaseName" -}}
{{- default (include "inference-operator.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{- define "inference-operator.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* Cross-field checks the schema cannot express. */}}
{{- define "inference-operator.validate" -}}
{{- $o := .Values.operator }}
{{- if not (and (le (int $o.minReplicas) (int $o.defaultReplicas)) (le (int $o.defaultReplicas) (int $o.maxReplicas))) }}
{{- fail (printf "operator: need minReplicas <= defaultReplicas <= maxReplicas (got %v, %v, %v)" $o.minReplicas $o.defaultReplicas $o.maxReplicas) }}
{{- end }}
{{- if gt (int $o.defaultBatchSize) (int $o.maxBatchSize) }}
{{- fail (printf "operator: need defaultBatchSize <= maxBatchSize (got %v, %v)" $o.defaultBatchSize $o.maxBatchSize) }}
{{- end }}
{{- $le := .Values.leaderElection }}
{{- if and $le.enabled (le (int $le.leaseDuration) (int $le.renewDeadline)) }}
{{- fail (printf "leaderElection: need leaseDuration > renewDeadline (got %v, %v)" $le.leaseDuration $le.renewDeadline) }}
{{- end }}
{{- $ss := .Values.certs.selfSigned }}
{{- if ge (int $ss.renewBeforeDays) (int $ss.validityDays) }}
{{- fail (printf "certs.selfSigned: need renewBeforeDays < validityDays (got %v, %v)" $ss.renewBeforeDays $ss.validityDays) }}
{{- end }}
{{- if and (eq .Values.certs.mode "provided") (not .Values.certs.caBundle) }}
{{- fail "certs.caBundle (base64 PEM of the CA that signed certs.secretName) is required in provided mode" }}
{{- end }}
{{- if and .Values.certs.caBundle (ne .Values.certs.mode "provided") }}
{{- fail (printf "certs.caBundle is only used in provided mode (mode is %s)" .Values.certs.mode) }}
{{- end }}
{{- end }}

{{/*
`serve` flags, one "--flag=value" per line. Only paths and the listen port are
fixed by the chart; everything else comes from .Values.operator.
*/}}
{{- define "inference-operator.args" -}}
{{- $o := .Values.operator -}}
- serve
- --listen={{ $o.listenAddress }}:9443
- --cert-dir={{ .Values.certs.mountPath }}
- --log-level={{ $o.logLevel }}
- --threads={{ $o.threads }}
- --max-connections={{ $o.maxConnections }}
- --idle-timeout={{ $o.idleTimeout }}
- --header-timeout={{ $o.headerTimeout }}
- --request-timeout={{ $o.requestTimeout }}
- --cert-reload-interval={{ $o.certReloadInterval }}
- --shutdown-timeout={{ $o.shutdownTimeout }}
{{- with $o.tlsPriorities }}
- --tls-priorities={{ . }}
{{- end }}
{{- with $o.watchNamespace }}
- --namespace={{ . }}
{{- end }}
- --workers={{ $o.workers }}
- --burst-workers={{ $o.burstWorkers }}
- --requeue-after={{ $o.requeueAfter }}
- --watch-timeout={{ $o.watchTimeout }}
- --kube-request-timeout={{ $o.kubeRequestTimeout }}
- --kube-connect-timeout={{ $o.kubeConnectTimeout }}
- --error-backoff-base-ms={{ $o.errorBackoffBaseMs }}
- --error-backoff-max={{ $o.errorBackoffMax }}
- --qps={{ $o.qps }}
- --burst={{ $o.burst }}
- --event-qps={{ $o.eventQps }}
- --event-burst={{ $o.eventBurst }}
- --model-server-image={{ $o.modelServerImage }}
- --gpus-per-replica={{ $o.gpusPerReplica }}
{{- if $o.gpuProducts }}
{{- $entries := list }}
{{- range $gpu := keys $o.gpuProducts | sortAlpha }}
{{- $entries = append $entries (printf "%s=%s" $gpu (join "|" (get $o.gpuProducts $gpu))) }}
{{- end }}
- --gpu-products={{ join ";" $entries }}
{{- end }}
- --gpu-types={{ join "," $o.gpuTypes }}
- --min-replicas={{ $o.minReplicas }}
- --max-replicas={{ $o.maxReplicas }}
- --default-replicas={{ $o.defaultReplicas }}
- --max-batch-size={{ $o.maxBatchSize }}
- --default-batch-size={{ $o.defaultBatchSize }}
{{- if .Values.leaderElection.enabled }}
- --leader-elect
- --leader-election-namespace={{ .Release.Namespace }}
- --leader-election-id={{ include "inference-operator.leaseName" . }}
- --leader-election-lease-duration={{ .Values.leaderElection.leaseDuration }}
- --leader-election-renew-deadline={{ .Values.leaderElection.renewDeadline }}
- --leader-election-retry-period={{ .Values.leaderElection.retryPeriod }}
- --leader-elect-warm-standby={{ .Values.leaderElection.warmStandby }}
{{- end }}
- --operator-namespace={{ .Release.Namespace }}
- --cert-mode={{ .Values.certs.mode }}
{{- if eq .Values.certs.mode "selfSigned" }}
{{- $ss := .Values.certs.selfSigned }}
- --cert-secret={{ include "inference-operator.certSecretName" . }}
- --webhook-service={{ include "inference-operator.fullname" . }}
- --webhook-config-name={{ include "inference-operator.webhookConfigName" . }}
- --cert-validity-days={{ $ss.validityDays }}
- --cert-renew-before-days={{ $ss.renewBeforeDays }}
- --cert-check-interval={{ $ss.checkInterval }}
{{- end }}
{{- range $o.extraArgs }}
- {{ . }}
{{- end }}
{{- end }}

{{/* The reconciler's rules (rbac.yaml puts them in a ClusterRole or a Role). */}}
{{- define "inference-operator.reconcilerRules" }}
  - apiGroups: ["ai.example.com"]
    resources: ["inferenceservices"]
    verbs: ["get", "list", "watch"]
  - apiGroups: ["ai.example.com"]
    resources: ["inferenceservices/status"]
    verbs: ["update", "patch"]
  - apiGroups: ["apps"]
    resources: ["deployments"]
    verbs: ["get", "list", "watch", "create", "patch"]
  - apiGroups: [""]
    resources: ["services"]
    verbs: ["get", "list", "watch", "create", "patch"]
  - apiGroups: [""]
    resources: ["pods"]
    verbs: ["get", "list", "watch"]
  - apiGroups: ["events.k8s.io"]
    resources: ["events"]
    verbs: ["create", "patch"]
{{- end }}
