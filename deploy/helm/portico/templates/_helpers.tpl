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

{{/*
The chart's own Secret (the `secrets` map, redis.url, postgres.url), rendered whenever one of them
is set, existingSecret or not: the gateway takes its environment from both.
*/}}
{{- define "portico.chartSecretName" -}}
{{- printf "%s-gateway-env" (include "portico.fullname" .) -}}
{{- end -}}

{{- define "portico.chartSecretEnabled" -}}
{{- if or .Values.secrets .Values.redis.url .Values.postgres.url -}}true{{- end -}}
{{- end -}}

{{/*
The gateway's portico.yaml: gateway.config, where each top-level section it leaves out gets the
chart's default, and a few fields the pod needs are filled in when unset:
  server   host 0.0.0.0 (probes and the Service reach the pod's address), port gateway.port
  admin    token ${PORTICO_ADMIN_TOKEN:-} (secrets.PORTICO_ADMIN_TOKEN or existingSecret; when
           unset each pod generates one and prints it in its log)
  state    distributed on ${PORTICO_REDIS_URL} and ${PORTICO_DATABASE_URL} when redis.url and
           postgres.url are both set, else embedded; data_dir (embedded) gateway.data.mountPath and
           journal_dir gateway.journal.mountPath, both writable volumes (the root filesystem is not)
  tenants  one per entry of `tenants`, its prompt from <id>.system_prompt.txt beside portico.yaml
  models   `default`: the engine (engine.enabled, ${PORTICO_ENGINE_URL}/v1) with `sim`, the
           in-process echo simulator, as fallback while it loads; without the engine, the simulator
  telemetry.tracing  enabled, to otel.endpoint + /v1/traces, when otel.endpoint is set
*/}}
{{- define "portico.gatewayConfig" -}}
{{- $v := .Values -}}
{{- $cfg := deepCopy (default dict $v.gateway.config) -}}
{{- $server := default dict $cfg.server -}}
{{- if not (hasKey $server "host") }}{{ $_ := set $server "host" "0.0.0.0" }}{{ end -}}
{{- if not (hasKey $server "port") }}{{ $_ := set $server "port" (int64 $v.gateway.port) }}{{ end -}}
{{- $_ := set $cfg "server" $server -}}
{{- if not (hasKey $cfg "admin") -}}
{{- $_ := set $cfg "admin" (dict "token" "${PORTICO_ADMIN_TOKEN:-}") -}}
{{- end -}}
{{- if not (hasKey $cfg "state") -}}
{{- if and $v.redis.url $v.postgres.url -}}
{{- $_ := set $cfg "state" (dict "kind" "distributed" "redis" (dict "url" "${PORTICO_REDIS_URL}") "postgres" (dict "url" "${PORTICO_DATABASE_URL}")) -}}
{{- else -}}
{{- $_ := set $cfg "state" (dict "kind" "embedded") -}}
{{- end -}}
{{- end -}}
{{- $state := $cfg.state -}}
{{- if and (kindIs "map" $state) (has (toString $state.kind) (list "embedded" "distributed")) -}}
{{- if and (eq (toString $state.kind) "embedded") (not (hasKey $state "data_dir")) -}}
{{- $_ := set $state "data_dir" $v.gateway.data.mountPath -}}
{{- end -}}
{{- if not (hasKey $state "journal_dir") -}}
{{- $_ := set $state "journal_dir" $v.gateway.journal.mountPath -}}
{{- end -}}
{{- end -}}
{{- if not (hasKey $cfg "tenants") -}}
{{- $tenants := list -}}
{{- range $v.tenants -}}
{{- $t := dict "id" .id "system_prompt_file" (printf "%s.system_prompt.txt" .id) "prompt_policy" "prepend" -}}
{{- with .displayName }}{{ $_ := set $t "display_name" . }}{{ end -}}
{{- with .industry }}{{ $_ := set $t "industry" . }}{{ end -}}
{{- $tenants = append $tenants $t -}}
{{- end -}}
{{- $_ := set $cfg "tenants" $tenants -}}
{{- end -}}
{{- if not (hasKey $cfg "models") -}}
{{- $sim := dict "description" "in-process simulator, echo mode: its answer shows what reached the backend" "backends" (list (dict "id" "sim-echo" "provider" "sim" "sim" (dict "mode" "echo"))) -}}
{{- if $v.engine.enabled -}}
{{- $engine := dict "description" "the chart's engine (built-in llama.cpp engine); the echo simulator as fallback" "backends" (list (dict "id" "engine" "provider" "openai" "base_url" "${PORTICO_ENGINE_URL}/v1")) "fallbacks" (list "sim") -}}
{{- $_ := set $cfg "models" (dict "default" $engine "sim" $sim) -}}
{{- else -}}
{{- $_ := set $cfg "models" (dict "default" $sim) -}}
{{- end -}}
{{- end -}}
{{- with $v.otel.endpoint -}}
{{- $telemetry := default dict $cfg.telemetry -}}
{{- if not (hasKey $telemetry "tracing") -}}
{{- $_ := set $telemetry "tracing" (dict "enabled" true "endpoint" (printf "%s/v1/traces" (trimSuffix "/" .)) "service_name" "portico-gateway") -}}
{{- end -}}
{{- $_ := set $cfg "telemetry" $telemetry -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/* The gateway's effective state kind (embedded, distributed, memory). */}}
{{- define "portico.stateKind" -}}
{{- $cfg := include "portico.gatewayConfig" . | fromYaml -}}
{{- toString $cfg.state.kind -}}
{{- end -}}
