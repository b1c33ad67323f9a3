{{/* Names and labels (app.kubernetes.io/*). */}}

{{- define "omniroute.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "omniroute.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The resource name of one component: (dict "root" $ "component" "edge"). */}}
{{- define "omniroute.componentName" -}}
{{- printf "%s-%s" (include "omniroute.fullname" .root) .component -}}
{{- end -}}

{{- define "omniroute.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "omniroute.selectorLabels" -}}
app.kubernetes.io/name: {{ include "omniroute.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "omniroute.labels" -}}
helm.sh/chart: {{ include "omniroute.chart" .root }}
{{ include "omniroute.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: omniroute
{{- end -}}

{{/* Labels of resources that belong to no single component (ConfigMap, Secret). */}}
{{- define "omniroute.commonLabels" -}}
helm.sh/chart: {{ include "omniroute.chart" . }}
app.kubernetes.io/name: {{ include "omniroute.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: omniroute
{{- end -}}

{{- define "omniroute.image" -}}
{{- $svc := index .root.Values .component -}}
{{- $repo := $svc.image.repository | default (printf "%s-%s" .root.Values.image.repository .component) -}}
{{- $tag := $svc.image.tag | default .root.Values.image.tag | default .root.Chart.AppVersion -}}
{{- printf "%s:%s" $repo $tag -}}
{{- end -}}

{{/* The Secret the pods read: the user's existingSecret or the chart's own. */}}
{{- define "omniroute.secretName" -}}
{{- .Values.secrets.existingSecret | default (include "omniroute.fullname" .) -}}
{{- end -}}

{{/* Whether a backing service ("postgresql", "redis", "nats", "qdrant") is bundled: "true" or "". */}}
{{- define "omniroute.bundled" -}}
{{- $b := index .root.Values .component -}}
{{- if and $b.bundled.enabled (not $b.url) -}}true{{- end -}}
{{- end -}}

{{/* The env variable name of a backing service's URL. */}}
{{- define "omniroute.urlEnv" -}}
{{- get (dict "postgresql" "DATABASE_URL" "redis" "REDIS_URL" "nats" "NATS_URL" "qdrant" "QDRANT_URL") . -}}
{{- end -}}

{{/* Fails on combinations that cannot work, with what to do instead. */}}
{{- define "omniroute.validate" -}}
{{- range $c := list "postgresql" "redis" "nats" "qdrant" -}}
{{- $b := index $.Values $c -}}
{{- if and $b.url $.Values.secrets.existingSecret -}}
{{- fail (printf "%s.url is set together with secrets.existingSecret: put %s in that Secret and set %s.bundled.enabled=false" $c (include "omniroute.urlEnv" $c) $c) -}}
{{- end -}}
{{- if and (ne $c "qdrant") (not $b.url) (not $b.bundled.enabled) (not $.Values.secrets.existingSecret) -}}
{{- fail (printf "%s: set %s.url (an external server) or %s.bundled.enabled=true" $c $c $c) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* What each service reads (least privilege: a service gets only the secrets and URLs its settings use). */}}
{{- define "omniroute.needs" -}}
{{- $needs := dict
  "edge" (list "redis" "nats" "qdrant")
  "translator" (list)
  "executor" (list "key" "redis" "nats")
  "usage" (list "postgresql" "nats")
  "dashboard" (list "key" "postgresql" "redis" "nats" "initialPassword") -}}
{{- get $needs . | toJson -}}
{{- end -}}

{{/* The environment from the Secret and the backing services' URLs, for one service (component); may be empty. */}}
{{- define "omniroute.secretEnv" -}}
{{- $root := .root -}}
{{- $secret := include "omniroute.secretName" $root -}}
{{- $needs := include "omniroute.needs" .component | fromJsonArray -}}
{{- if has "key" $needs }}
- name: OMNIROUTE_ENCRYPTION_KEY
  valueFrom:
    secretKeyRef: {name: {{ $secret }}, key: OMNIROUTE_ENCRYPTION_KEY}
{{- end }}
{{- if has "initialPassword" $needs }}
- name: INITIAL_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ $secret }}, key: INITIAL_PASSWORD, optional: true}
{{- end }}
{{- range $c := list "postgresql" "redis" "nats" "qdrant" }}
{{- if has $c $needs }}
{{- $env := include "omniroute.urlEnv" $c }}
{{- $b := index $root.Values $c }}
{{- $host := include "omniroute.componentName" (dict "root" $root "component" $c) }}
{{- if and (include "omniroute.bundled" (dict "root" $root "component" $c)) (eq $c "postgresql") }}
- name: OMNIROUTE_POSTGRES_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ $secret }}, key: OMNIROUTE_POSTGRES_PASSWORD}
- name: DATABASE_URL
  value: {{ printf "postgresql://%s:$(OMNIROUTE_POSTGRES_PASSWORD)@%s:5432/%s" $b.bundled.username $host $b.bundled.database | quote }}
{{- else if include "omniroute.bundled" (dict "root" $root "component" $c) }}
- name: {{ $env }}
  value: {{ printf (get (dict "redis" "redis://%s:6379/0" "nats" "nats://%s:4222" "qdrant" "http://%s:6333") $c) $host | quote }}
{{- else if or $b.url $root.Values.secrets.existingSecret }}
- name: {{ $env }}
  valueFrom:
    secretKeyRef: {name: {{ $secret }}, key: {{ $env }}{{ if eq $c "qdrant" }}, optional: true{{ end }}}
{{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The non-secret settings every service shares: the siblings' addresses and logging. */}}
{{- define "omniroute.sharedConfig" -}}
{{- $r := . -}}
LOG_LEVEL: {{ .Values.logLevel | quote }}
BIND_HOST: "0.0.0.0"
TRANSLATOR_ADDR: {{ printf "%s-headless:%v" (include "omniroute.componentName" (dict "root" $r "component" "translator")) .Values.translator.port | quote }}
EXECUTOR_ADDR: {{ printf "%s-headless:%v" (include "omniroute.componentName" (dict "root" $r "component" "executor")) .Values.executor.port | quote }}
USAGE_ADDR: {{ printf "%s:%v" (include "omniroute.componentName" (dict "root" $r "component" "usage")) .Values.usage.port | quote }}
DASHBOARD_URL: {{ printf "http://%s:%v" (include "omniroute.componentName" (dict "root" $r "component" "dashboard")) .Values.dashboard.port | quote }}
{{- range $k, $v := .Values.env }}
{{ $k }}: {{ $v | toString | quote }}
{{- end }}
{{- end -}}

{{/* One service's own non-secret settings: (dict "root" $ "component" "edge"). */}}
{{- define "omniroute.serviceConfig" -}}
{{- $root := .root -}}
{{- $svc := index $root.Values .component -}}
{{ printf "%s_PORT" (upper .component) }}: {{ $svc.port | toString | quote }}
METRICS_PORT: {{ $svc.metricsPort | toString | quote }}
{{- if eq .component "edge" }}
REQUIRE_API_KEY: {{ $svc.requireApiKey | toString | quote }}
{{- end }}
{{- if has .component (list "translator" "executor") }}
GRPC_MAX_CONNECTION_AGE_S: {{ $root.Values.grpc.maxConnectionAgeSeconds | toString | quote }}
{{- end }}
{{- if eq .component "executor" }}
OMNIROUTE_DATA_DIR: "/var/lib/omniroute"
USAGE_SPOOL_DIR: "/var/lib/omniroute/spool"
{{- end }}
{{- if eq .component "dashboard" }}
OMNIROUTE_DATA_DIR: "/var/lib/omniroute"
COOKIE_SECURE: {{ if or $svc.cookieSecure (and $root.Values.ingress.enabled $root.Values.ingress.tls) }}"true"{{ else }}"false"{{ end }}
{{- end }}
{{- range $k, $v := $svc.env }}
{{ $k }}: {{ $v | toString | quote }}
{{- end }}
{{- end -}}

{{/* What the chart's Secret is made of, as given in the values (not what it generated), for the pods' checksum:
changing a value rolls them, while values generated once and read back on upgrades do not. */}}
{{- define "omniroute.secretInputs" -}}
{{- toJson (list .Values.secrets .Values.postgresql.url .Values.postgresql.bundled.password .Values.redis.url .Values.nats.url .Values.qdrant.url) -}}
{{- end -}}
