{{/* Names, labels, images, security contexts and the checks that fail rendering early. */}}

{{- define "ridgeline.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ridgeline.fullname" -}}
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

{{/* "<fullname>-<component>", e.g. {{ include "ridgeline.componentName" (list . "rasa") }} */}}
{{- define "ridgeline.componentName" -}}
{{- $ctx := index . 0 -}}
{{- printf "%s-%s" (include "ridgeline.fullname" $ctx | trunc 50 | trimSuffix "-") (index . 1) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ridgeline.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ridgeline.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ridgeline.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "ridgeline.labels" -}}
helm.sh/chart: {{ include "ridgeline.chart" . }}
{{ include "ridgeline.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ridgeline
{{- with .Values.environment.name }}
ridgeline.io/environment: {{ . }}
{{- end }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component: (list . "rasa") */}}
{{- define "ridgeline.componentSelectorLabels" -}}
{{ include "ridgeline.selectorLabels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* Labels of one component: (list . "rasa") */}}
{{- define "ridgeline.componentLabels" -}}
{{ include "ridgeline.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* metadata.namespace of every namespaced object */}}
{{- define "ridgeline.namespace" -}}
{{- .Release.Namespace -}}
{{- end -}}

{{/*
An image reference: (dict "image" .Values.rasa.image "ctx" . "tag" "optional default tag").
The tag defaults to the chart's appVersion; a digest wins over the tag; `latest` is refused.
*/}}
{{- define "ridgeline.image" -}}
{{- $ctx := .ctx -}}
{{- $registry := .image.registry | default $ctx.Values.global.imageRegistry -}}
{{- $repo := .image.repository -}}
{{- if $registry }}{{ $repo = printf "%s/%s" $registry $repo }}{{ end -}}
{{- if .image.digest -}}
{{- printf "%s@%s" $repo .image.digest -}}
{{- else -}}
{{- $tag := .image.tag | default .tag | default $ctx.Chart.AppVersion | toString -}}
{{- if eq $tag "latest" -}}
{{- fail (printf "image %s: the tag `latest` is not allowed; pin a version (or a digest)." $repo) -}}
{{- end -}}
{{- printf "%s:%s" $repo $tag -}}
{{- end -}}
{{- end -}}

{{- define "ridgeline.imagePullSecrets" -}}
{{- with .Values.global.imagePullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Pod security context: (list . .Values.rasa) */}}
{{- define "ridgeline.podSecurityContext" -}}
{{- $ctx := index . 0 -}}
{{- $component := index . 1 -}}
{{- toYaml (merge (deepCopy ($component.podSecurityContext | default dict)) (deepCopy $ctx.Values.podSecurityContext)) -}}
{{- end -}}

{{/* Container security context: (list . .Values.rasa) */}}
{{- define "ridgeline.securityContext" -}}
{{- $ctx := index . 0 -}}
{{- $component := index . 1 -}}
{{- toYaml (merge (deepCopy ($component.securityContext | default dict)) (deepCopy $ctx.Values.securityContext)) -}}
{{- end -}}

{{/* ServiceAccount name: (list . "rasa") */}}
{{- define "ridgeline.serviceAccountName" -}}
{{- $ctx := index . 0 -}}
{{- $component := index . 1 -}}
{{- $sa := (index $ctx.Values $component).serviceAccount -}}
{{- if $sa.create -}}
{{- $sa.name | default (include "ridgeline.componentName" (list $ctx $component)) -}}
{{- else -}}
{{- $sa.name | default "default" -}}
{{- end -}}
{{- end -}}

{{/* The Secret every secretKeyRef points at. */}}
{{- define "ridgeline.secretName" -}}
{{- .Values.secrets.existingSecret | default (include "ridgeline.fullname" .) -}}
{{- end -}}

{{/* One env var from the Secret: (list . "DB_PASSWORD" "postgresPassword") */}}
{{- define "ridgeline.secretEnv" -}}
{{- $ctx := index . 0 -}}
- name: {{ index . 1 }}
  valueFrom:
    secretKeyRef:
      name: {{ include "ridgeline.secretName" $ctx }}
      key: {{ index $ctx.Values.secrets.keys (index . 2) }}
{{- end -}}

{{/* The log settings each of our services reads (ridgeline/logs.py): LOG_FORMAT, and the salt of the sender hash. */}}
{{- define "ridgeline.logEnv" -}}
- {name: LOG_FORMAT, value: {{ .Values.logging.format | quote }}}
{{- if .Values.logging.senderSalt }}
{{ include "ridgeline.secretEnv" (list . "LOG_SENDER_SALT" "logSenderSalt") }}
{{- end }}
{{- end -}}

{{/* Stores: what Rasa connects to. */}}
{{- define "ridgeline.postgresHost" -}}
{{- if .Values.postgresql.enabled -}}
{{- include "ridgeline.componentName" (list . "postgresql") -}}
{{- else -}}
{{- .Values.postgresql.external.host -}}
{{- end -}}
{{- end -}}

{{- define "ridgeline.postgresPort" -}}
{{- if .Values.postgresql.enabled }}5432{{ else }}{{ .Values.postgresql.external.port }}{{ end -}}
{{- end -}}

{{- define "ridgeline.redisHost" -}}
{{- if .Values.redis.enabled -}}
{{- include "ridgeline.componentName" (list . "redis") -}}
{{- else -}}
{{- .Values.redis.external.host -}}
{{- end -}}
{{- end -}}

{{- define "ridgeline.redisPort" -}}
{{- if .Values.redis.enabled }}6379{{ else }}{{ .Values.redis.external.port }}{{ end -}}
{{- end -}}

{{/* The LLM's object name: "<fullname>-llm" (built-in) or "<fullname>-vllm". */}}
{{- define "ridgeline.llmName" -}}
{{- include "ridgeline.componentName" (list . (ternary "vllm" "llm" (eq .Values.llm.engine "vllm"))) -}}
{{- end -}}

{{- define "ridgeline.llmBaseUrl" -}}
{{- printf "http://%s.%s.svc:%d/v1" (include "ridgeline.llmName" .) .Release.Namespace (int .Values.llm.service.port) -}}
{{- end -}}

{{/* Model directory on the weights volume: <mountPath>/<repository>/<revision>. */}}
{{- define "ridgeline.modelDir" -}}
{{- printf "%s/%s/%s" (.Values.llm.weights.mountPath | trimSuffix "/") .Values.llm.model.repository (.Values.llm.model.revision | replace "/" "_") -}}
{{- end -}}

{{- define "ridgeline.weightsClaim" -}}
{{- .Values.llm.weights.persistence.existingClaim | default (include "ridgeline.componentName" (list . "llm-weights")) -}}
{{- end -}}

{{/* Rasa serves more than one replica (fixed or autoscaled). */}}
{{- define "ridgeline.rasaScalesOut" -}}
{{- if or (gt (int .Values.rasa.replicaCount) 1) (and .Values.rasa.autoscaling.enabled (gt (int .Values.rasa.autoscaling.maxReplicas) 1)) -}}
true
{{- end -}}
{{- end -}}

{{/* Checks that stop rendering with a sentence saying what to change. */}}
{{- define "ridgeline.validate" -}}
{{- with .Values.environment.namespace -}}
{{- if ne . $.Release.Namespace -}}
{{- fail (printf "these values are for namespace %q (environment.namespace) but the release is in %q; install with --namespace %s." . $.Release.Namespace .) -}}
{{- end -}}
{{- end -}}
{{- if include "ridgeline.rasaScalesOut" . -}}
{{- if not (include "ridgeline.redisHost" .) -}}
{{- fail "rasa runs more than one replica but has no Redis lock store: concurrent messages of one conversation would be handled twice. Set redis.enabled=true or redis.external.host, or run one Rasa replica." -}}
{{- end -}}
{{- if not (include "ridgeline.postgresHost" .) -}}
{{- fail "rasa runs more than one replica but has no PostgreSQL tracker store: each replica would keep its own conversations. Set postgresql.enabled=true or postgresql.external.host, or run one Rasa replica." -}}
{{- end -}}
{{- end -}}
{{- if and (eq .Values.llm.engine "vllm") (not .Values.llm.gpu.enabled) -}}
{{- fail "llm.engine=vllm needs a GPU: set llm.gpu.enabled=true, or use llm.engine=builtin on the CPU." -}}
{{- end -}}
{{- if and .Values.secrets.existingSecret (or .Values.secrets.values.rasaAuthToken .Values.secrets.values.actionServerToken .Values.secrets.values.postgresPassword .Values.secrets.values.redisPassword .Values.secrets.values.llmApiKey .Values.secrets.values.slackBotToken .Values.secrets.values.slackSigningSecret .Values.secrets.values.telegramAccessToken .Values.secrets.values.telegramSecretToken .Values.secrets.values.hfToken .Values.secrets.values.ordersDbUrl) -}}
{{- fail "secrets.existingSecret is set, so secrets.values must stay empty: put the values into that Secret instead." -}}
{{- end -}}
{{- end -}}

{{/* An httpGet probe: (list "/health" "http" .Values.x.livenessProbe) */}}
{{- define "ridgeline.probe" -}}
httpGet:
  path: {{ index . 0 }}
  port: {{ index . 1 }}
{{ toYaml (index . 2) }}
{{- end -}}
