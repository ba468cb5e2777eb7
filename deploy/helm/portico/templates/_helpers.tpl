{{/* Names and labels shared by every template. */}}
{{- define "portico.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "portico.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "portico.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "portico.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "portico.selectorLabels" -}}
app.kubernetes.io/name: {{ include "portico.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "portico.image" -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end -}}

{{- define "portico.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "portico.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "portico.secretName" -}}
{{- default (printf "%s-secrets" (include "portico.fullname" .)) .Values.existingSecret -}}
{{- end -}}

{{- define "portico.tenantNamespace" -}}
{{- printf "%s%s" .prefix .id | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The gateway pod's terminationGracePeriodSeconds: its drain (gateway.config.server.drain_timeout_ms,
the gateway's default 30000 when unset, rounded up to seconds) plus the time it takes to close its
backends, ledger writer, journal, audit log and trace exporter (gateway.shutdown.closeGraceSeconds),
plus the preStop hook's sleep before the SIGTERM (gateway.shutdown.preStopSleepSeconds).
*/}}
{{- define "portico.terminationGracePeriodSeconds" -}}
{{- $server := default dict .Values.gateway.config.server -}}
{{- $drainMs := 30000 -}}
{{- if hasKey $server "drain_timeout_ms" -}}
{{- $drainMs = int64 $server.drain_timeout_ms -}}
{{- end -}}
{{- add (div (add $drainMs 999) 1000) (int64 .Values.gateway.shutdown.closeGraceSeconds) (int64 (default 0 .Values.gateway.shutdown.preStopSleepSeconds)) -}}
{{- end -}}
