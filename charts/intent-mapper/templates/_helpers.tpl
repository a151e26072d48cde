{{/* Hand-written: hack/helmchart/static/templates/_helpers.tpl, copied by make helm. */}}

{{/* The chart's name and version, as the helm.sh/chart label carries them. */}}
{{- define "intent-mapper.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The manager's image; the agents run it too unless agent.image names another. */}}
{{- define "intent-mapper.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/* Labels every object carries besides its own. */}}
{{- define "intent-mapper.labels" -}}
helm.sh/chart: {{ include "intent-mapper.chart" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}

{{/*
IntentMapper cluster's spec, from the values. The manager's settings go here as well as
to its flags: while IntentMapper exists its spec wins over the flags.
*/}}
{{- define "intent-mapper.intentMapperSpec" -}}
{{- $agent := dict }}
{{- range $key, $value := omit .Values.agent "intervals" }}
{{- /* empty means unset: resources {} keeps the agent's measured defaults */}}
{{- if or $value (kindIs "bool" $value) }}
{{- $_ := set $agent $key $value }}
{{- end }}
{{- end }}
{{- if not $agent.imagePullPolicy }}
{{- $_ := set $agent "imagePullPolicy" .Values.image.pullPolicy }}
{{- end }}
agent:
  {{- toYaml $agent | nindent 2 }}
intervals:
  {{- with .Values.agent.intervals }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
  {{- with .Values.manager.flushInterval }}
  flush: {{ . | quote }}
  {{- end }}
  {{- with .Values.manager.lastSeenStep }}
  lastSeenStep: {{ . | quote }}
  {{- end }}
{{- with .Values.manager.retention }}
retention: {{ . | quote }}
{{- end }}
{{- with .Values.manager.maxPathsPerCall }}
maxPathsPerCall: {{ . }}
{{- end }}
{{- with .Values.kafka }}
kafka:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
