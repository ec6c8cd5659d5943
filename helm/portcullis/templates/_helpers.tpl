{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "portcullis.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name: release-chart, unless the release name already contains the chart name. */}}
{{- define "portcullis.fullname" -}}
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

{{- define "portcullis.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "portcullis.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "portcullis.selectorLabels" -}}
app.kubernetes.io/name: {{ include "portcullis.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "portcullis.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "portcullis.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "portcullis.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* config.admin.tls makes the whole admin plane HTTPS, probes and scrapes included. */}}
{{- define "portcullis.adminScheme" -}}
{{- if dig "admin" "tls" "" .Values.config }}HTTPS{{ else }}HTTP{{ end }}
{{- end }}

{{/* The Secret and key PORTCULLIS_REDIS_URL comes from; empty when Redis is not configured. */}}
{{- define "portcullis.redisSecretName" -}}
{{- if .Values.redis.existingSecret }}
{{- .Values.redis.existingSecret }}
{{- else if .Values.redis.url }}
{{- printf "%s-redis" (include "portcullis.fullname" .) }}
{{- end }}
{{- end }}

{{/*
The gateway config file: .Values.config with the files of .Values.policies appended to policyFiles and, when the
chart provides PORTCULLIS_REDIS_URL, an empty `redis` section (its url defaults to that variable) unless the config
has one. Shared by the ConfigMap and the restartOnConfigChange checksum, so both always see the same text.
*/}}
{{- define "portcullis.configYaml" -}}
{{- $config := deepCopy .Values.config }}
{{- if and (include "portcullis.redisSecretName" .) (not (hasKey $config "redis")) }}
{{- $_ := set $config "redis" (dict) }}
{{- end }}
{{- $files := default (list) $config.policyFiles }}
{{- range $name, $_ := .Values.policies }}
{{- $files = append $files (printf "policies/%s.yaml" $name) }}
{{- end }}
{{- if $files }}
{{- $_ := set $config "policyFiles" $files }}
{{- end }}
{{- toYaml $config }}
{{- end }}

{{/*
The chart's ports and the gateway's config describe the same sockets; a mismatch would leave probes, Services or
NetworkPolicies pointing at ports nothing listens on, so rendering stops with the reason instead.
*/}}
{{- define "portcullis.validate" -}}
{{- $config := .Values.config }}
{{- $adminAddress := dig "admin" "address" "127.0.0.1" $config }}
{{- if not (has $adminAddress (list "0.0.0.0" "::")) }}
{{- fail (printf "config.admin.address is %s: it must be 0.0.0.0 or :: so kubelet probes and Prometheus reach the admin port on the pod IP" $adminAddress) }}
{{- end }}
{{- if ne (int (dig "admin" "port" 9901 $config)) (int .Values.ports.admin) }}
{{- fail "config.admin.port must equal ports.admin" }}
{{- end }}
{{- $edge := false }}
{{- range $config.listeners }}
{{- if eq (int .port) (int $.Values.ports.https) }}
{{- $edge = true }}
{{- end }}
{{- end }}
{{- if not $edge }}
{{- fail "no listener in config.listeners uses ports.https" }}
{{- end }}
{{- if and (hasKey $config "redis") (not (dig "redis" "url" "" $config)) (not (include "portcullis.redisSecretName" .)) }}
{{- fail "config.redis has no url: set redis.url or redis.existingSecret (they provide PORTCULLIS_REDIS_URL)" }}
{{- end }}
{{- if .Values.egress.enabled }}
{{- $egress := required "egress.enabled needs config.egress, the egress proxy's configuration" $config.egress }}
{{- if not (has (dig "listener" "address" "127.0.0.1" $egress) (list "0.0.0.0" "::")) }}
{{- fail "config.egress.listener.address must be 0.0.0.0 or :: so workloads in other pods can reach the proxy" }}
{{- end }}
{{- if ne (int $egress.listener.port) (int .Values.ports.egress) }}
{{- fail "config.egress.listener.port must equal ports.egress" }}
{{- end }}
{{- /* `required` lets an empty list through: an egress NetworkPolicy for no namespace would guard nothing. */}}
{{- if and .Values.egress.networkPolicy.enabled (empty .Values.egress.networkPolicy.workloadNamespaces) }}
{{- fail "egress.networkPolicy.workloadNamespaces must name the namespaces that use the egress proxy" }}
{{- end }}
{{- else if $config.egress }}
{{- fail "config.egress is set but egress.enabled is false: the proxy would run with no Service and no NetworkPolicy" }}
{{- end }}
{{- end }}
