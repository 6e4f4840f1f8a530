{{/* Names ---------------------------------------------------------------------------------- */}}

{{- define "ngshare-s3.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release name, or release-chart unless the release name already contains the chart's. */}}
{{- define "ngshare-s3.fullname" -}}
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

{{- define "ngshare-s3.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ngshare-s3.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ngshare-s3.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret this chart creates for values given inline (MongoDB URL, S3 keys). */}}
{{- define "ngshare-s3.secretName" -}}
{{- include "ngshare-s3.fullname" . }}
{{- end }}

{{/* Labels --------------------------------------------------------------------------------- */}}

{{- define "ngshare-s3.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ngshare-s3.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: exchange
{{- end }}

{{- define "ngshare-s3.labels" -}}
{{ include "ngshare-s3.selectorLabels" . }}
{{ include "ngshare-s3.metadataLabels" . }}
{{- end }}

{{/* The labels besides the selector's, for objects that must not be selected (the test pod). */}}
{{- define "ngshare-s3.metadataLabels" -}}
helm.sh/chart: {{ include "ngshare-s3.chart" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Settings derived from values ------------------------------------------------------------ */}}

{{/* Replicas: 2 on MongoDB + S3 and 1 embedded unless set; more than 1 embedded is refused. */}}
{{- define "ngshare-s3.replicas" -}}
{{- if .Values.storage.embedded }}
{{- if and (not (kindIs "invalid" .Values.replicas)) (gt (int .Values.replicas) 1) }}
{{- fail (printf "storage.embedded keeps the database and files on one volume, so it runs exactly 1 replica, but replicas is %d. Set replicas to 1 (or leave it empty), or use MongoDB + S3 (storage.embedded=false) for several replicas." (int .Values.replicas)) }}
{{- end }}
{{- 1 }}
{{- else if kindIs "invalid" .Values.replicas }}
{{- 2 }}
{{- else }}
{{- int .Values.replicas }}
{{- end }}
{{- end }}

{{/* Worker processes: .Values.workers, else the pod's CPU limit, else its CPU request, rounded
up ("500m" and "1.5" give 1 and 2); empty when none is set, leaving the service's default. */}}
{{- define "ngshare-s3.workers" -}}
{{- if not (kindIs "invalid" .Values.workers) }}
{{- int .Values.workers }}
{{- else }}
{{- $cpu := dig "limits" "cpu" "" .Values.resources | default (dig "requests" "cpu" "" .Values.resources) | toString }}
{{- if hasSuffix "m" $cpu }}
{{- max 1 (divf (trimSuffix "m" $cpu) 1000 | ceil | int) }}
{{- else if $cpu }}
{{- max 1 (ceil $cpu | int) }}
{{- end }}
{{- end }}
{{- end }}

{{/* The key of the service's API token in z2jh's Secret. */}}
{{- define "ngshare-s3.apiTokenKey" -}}
{{- default (printf "hub.services.%s.apiToken" .Values.jupyterhub.serviceName) .Values.jupyterhub.apiToken.existingSecretKey }}
{{- end }}

{{/* Uploads spool to /tmp, about twice the body size on disk: 2 x maxBodySize + 64 MiB, in MiB. */}}
{{- define "ngshare-s3.spoolSizeLimit" -}}
{{- if .Values.spool.sizeLimit }}
{{- .Values.spool.sizeLimit }}
{{- else }}
{{- $mebibyte := 1048576 }}
{{- $bytes := add (mul 2 (int64 .Values.maxBodySize)) (mul 64 $mebibyte) }}
{{- printf "%dMi" (div (add $bytes (sub $mebibyte 1)) $mebibyte) }}
{{- end }}
{{- end }}

{{/* The kubelet waits for the preStop sleep, then for the service's own drain, then a margin. */}}
{{- define "ngshare-s3.terminationGracePeriodSeconds" -}}
{{- add .Values.shutdown.preStopDelay .Values.shutdown.gracePeriod .Values.shutdown.margin }}
{{- end }}

{{/* MongoDB + S3 need their settings; say which is missing instead of rendering a broken pod. */}}
{{- define "ngshare-s3.validate" -}}
{{- if not .Values.storage.embedded }}
{{- if not (or .Values.mongodb.url .Values.mongodb.existingSecret) }}
{{- fail "MongoDB + S3 mode needs mongodb.url or mongodb.existingSecret (or set storage.embedded=true for the single-pod SQLite + volume mode)." }}
{{- end }}
{{- if not .Values.s3.bucket }}
{{- fail "MongoDB + S3 mode needs s3.bucket (or set storage.embedded=true for the single-pod SQLite + volume mode)." }}
{{- end }}
{{- if and .Values.s3.existingSecret (or .Values.s3.accessKeyId .Values.s3.secretAccessKey) }}
{{- fail "Give the S3 credentials either in s3.existingSecret or as s3.accessKeyId/s3.secretAccessKey, not both." }}
{{- end }}
{{- if ne (empty .Values.s3.accessKeyId) (empty .Values.s3.secretAccessKey) }}
{{- fail "s3.accessKeyId and s3.secretAccessKey go together: set both or neither." }}
{{- end }}
{{- end }}
{{- if and .Values.mongodb.url .Values.mongodb.existingSecret }}
{{- fail "Give the MongoDB URL either as mongodb.url or in mongodb.existingSecret, not both." }}
{{- end }}
{{- end }}

{{/* Whether this chart creates a Secret for values given inline. */}}
{{- define "ngshare-s3.createsSecret" -}}
{{- if and (not .Values.storage.embedded) (or .Values.mongodb.url .Values.s3.accessKeyId) }}true{{ end }}
{{- end }}

{{/* A NetworkPolicy peer for pods of Zero to JupyterHub: their labels, narrowed to one z2jh
release and namespace when those are set. Takes (dict "labels" ... "hub" .Values.networkPolicy.jupyterhub). */}}
{{- define "ngshare-s3.jupyterhubPeer" -}}
{{- $labels := .labels }}
{{- if .hub.release }}
{{- $labels = merge (dict "release" .hub.release) $labels }}
{{- end }}
- podSelector:
    matchLabels:
      {{- toYaml $labels | nindent 6 }}
  {{- if .hub.namespace }}
  namespaceSelector:
    matchLabels:
      kubernetes.io/metadata.name: {{ .hub.namespace | quote }}
  {{- end }}
{{- end }}
