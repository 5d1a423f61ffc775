{{/* Names */}}
{{- define "mloop.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "mloop.fullname" -}}
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

{{- define "mloop.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels: every object; selector labels take the component as an argument. */}}
{{- define "mloop.labels" -}}
helm.sh/chart: {{ include "mloop.chart" . }}
app.kubernetes.io/name: {{ include "mloop.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: mloop
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "mloop.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mloop.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "mloop.componentLabels" -}}
{{ include "mloop.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "mloop.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "mloop.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "mloop.configMapName" -}}
{{- default (printf "%s-project" (include "mloop.fullname" .)) .Values.existingConfigMap }}
{{- end }}

{{- define "mloop.claimName" -}}
{{- default (printf "%s-workspace" (include "mloop.fullname" .)) .Values.persistence.existingClaim }}
{{- end }}

{{- define "mloop.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* mloop.yaml: the raw text wins over the map; the project needs name, data.source and data.target. */}}
{{- define "mloop.configYaml" -}}
{{- if .Values.configYaml }}
{{- .Values.configYaml }}
{{- else }}
{{- $cfg := required "config (mloop.yaml as a map) or configYaml is required" .Values.config }}
{{- $_ := required "config.name is required (mloop.yaml: name)" $cfg.name }}
{{- $data := required "config.data is required (mloop.yaml: data.source, data.target)" $cfg.data }}
{{- $_ := required "config.data.source is required" $data.source }}
{{- $_ := required "config.data.target is required" $data.target }}
{{- toYaml $cfg }}
{{- end }}
{{- end }}

{{/* The files of the project ConfigMap mounted into projectDir. */}}
{{- define "mloop.projectFiles" -}}
{{- if .Values.bakedProject.enabled }}
{{- toJson (list) }}
{{- else if .Values.existingConfigMap }}
{{- toJson .Values.existingConfigMapKeys }}
{{- else if .Values.contractYaml }}
{{- toJson (list "mloop.yaml" "contract.yaml") }}
{{- else }}
{{- toJson (list "mloop.yaml") }}
{{- end }}
{{- end }}

{{/* Resources with an optional nvidia.com/gpu count added to requests and limits. */}}
{{- define "mloop.resources" -}}
{{- $res := deepCopy (default dict .resources) }}
{{- if gt (int .gpu) 0 }}
{{- $limits := default dict $res.limits }}
{{- $_ := set $limits "nvidia.com/gpu" (int .gpu) }}
{{- $_ := set $res "limits" $limits }}
{{- $requests := default dict $res.requests }}
{{- $_ := set $requests "nvidia.com/gpu" (int .gpu) }}
{{- $_ := set $res "requests" $requests }}
{{- end }}
{{- toYaml $res }}
{{- end }}

{{/* Environment of every mloop container. */}}
{{- define "mloop.env" -}}
- name: MLOOP_CONFIG
  value: {{ printf "%s/mloop.yaml" .Values.projectDir | quote }}
- name: HOME
  value: /tmp
- name: MPLCONFIGDIR
  value: /tmp/matplotlib
- name: XDG_CACHE_HOME
  value: /tmp/.cache
- name: PYTHONDONTWRITEBYTECODE
  value: "1"
{{- if .Values.apiKeys.existingSecret }}
- name: MLOOP_SERVE__API_KEYS_FILE
  value: {{ printf "/etc/mloop/secrets/%s" .Values.apiKeys.key | quote }}
{{- end }}
{{- with .Values.predictionLog.existingSecret }}
- name: {{ include "mloop.predictionLog.variable" $ }}
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Values.predictionLog.key }}
{{- end }}
{{- range .Values.secretEnv }}
- name: {{ required "secretEnv[].name is required" .name }}
  valueFrom:
    secretKeyRef:
      name: {{ required "secretEnv[].secretName is required" .secretName }}
      key: {{ required "secretEnv[].key is required" .key }}
{{- end }}
{{- with .Values.env }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "mloop.envFrom" -}}
{{- range .Values.envFromSecrets }}
- secretRef:
    name: {{ . }}
{{- end }}
{{- end }}

{{- define "mloop.volumeMounts" -}}
- name: workspace
  mountPath: {{ .Values.projectDir }}
{{- range (include "mloop.projectFiles" . | fromJsonArray) }}
- name: project-files
  mountPath: {{ printf "%s/%s" $.Values.projectDir . }}
  subPath: {{ . }}
  readOnly: true
{{- end }}
- name: tmp
  mountPath: /tmp
{{- if .Values.apiKeys.existingSecret }}
- name: api-keys
  mountPath: /etc/mloop/secrets
  readOnly: true
{{- end }}
{{- end }}

{{- define "mloop.volumes" -}}
- name: workspace
{{- if .Values.persistence.enabled }}
  persistentVolumeClaim:
    claimName: {{ include "mloop.claimName" . }}
{{- else }}
  emptyDir: {}
{{- end }}
{{- if not .Values.bakedProject.enabled }}
- name: project-files
  configMap:
    name: {{ include "mloop.configMapName" . }}
{{- end }}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
{{- if .Values.apiKeys.existingSecret }}
- name: api-keys
  secret:
    secretName: {{ .Values.apiKeys.existingSecret }}
    defaultMode: 0440
    items:
      - key: {{ .Values.apiKeys.key }}
        path: {{ .Values.apiKeys.key }}
{{- end }}
{{- end }}

{{/* Pod-level settings shared by every pod: service account, security context, pull secrets. */}}
{{- define "mloop.podCommon" -}}
serviceAccountName: {{ include "mloop.serviceAccountName" . }}
automountServiceAccountToken: {{ .Values.serviceAccount.automountServiceAccountToken }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end }}

{{/* Rolls the pods when the project files change (they are mounted with subPath, which never updates). */}}
{{- define "mloop.checksumAnnotation" -}}
{{- if .Values.bakedProject.enabled }}
checksum/project: baked
{{- else }}
checksum/project: {{ printf "%s\n%s" (include "mloop.configYaml" .) .Values.contractYaml | sha256sum }}
{{- end }}
{{- end }}

{{/* The container of a job pod (monitor, retrain, train): .root is the top context, .args the mloop arguments. */}}
{{- define "mloop.jobContainer" -}}
- name: {{ .name }}
  image: {{ include "mloop.image" .root }}
  imagePullPolicy: {{ .root.Values.image.pullPolicy }}
  command:
    {{- toYaml .root.Values.image.command | nindent 4 }}
  args:
    {{- toYaml .args | nindent 4 }}
  env:
    {{- include "mloop.env" .root | nindent 4 }}
  {{- with (include "mloop.envFrom" .root) }}
  envFrom:
    {{- . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml .root.Values.securityContext | nindent 4 }}
  resources:
    {{- include "mloop.resources" (dict "resources" .resources "gpu" .gpu) | nindent 4 }}
  volumeMounts:
    {{- include "mloop.volumeMounts" .root | nindent 4 }}
{{- end }}

{{/* The pod template spec of a job pod: .c is the component's values (nodeSelector, tolerations and
affinity there win over jobs.*). */}}
{{- define "mloop.jobPodSpec" -}}
{{- include "mloop.podCommon" .root }}
restartPolicy: Never
{{- include "mloop.initContainers" .root }}
{{- with (default .root.Values.jobs.nodeSelector .c.nodeSelector) }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (default .root.Values.jobs.tolerations .c.tolerations) }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (default .root.Values.jobs.affinity .c.affinity) }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
containers:
  {{- include "mloop.jobContainer" . | nindent 2 }}
volumes:
  {{- include "mloop.volumes" .root | nindent 2 }}
{{- end }}

{{- define "mloop.jobPodMetadata" -}}
labels:
  {{- include "mloop.selectorLabels" (dict "root" .root "component" .component) | nindent 2 }}
  {{- with .root.Values.jobs.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
annotations:
  {{- include "mloop.checksumAnnotation" .root | nindent 2 }}
  {{- with .root.Values.jobs.podAnnotations }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}

{{- /* Egress of every mloop pod: DNS, the API of the release, then the configured rules. */}}
{{- define "mloop.egressRules" -}}
- ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
- to:
    - podSelector:
        matchLabels:
          {{- include "mloop.selectorLabels" (dict "root" . "component" "server") | nindent 10 }}
  ports:
    - port: {{ .Values.server.port }}
      protocol: TCP
{{- with .Values.networkPolicy.egress }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* With a project baked into the image: copy it into the workspace volume before mloop starts. */}}
{{- define "mloop.initContainers" -}}
{{- if .Values.bakedProject.enabled }}
initContainers:
  - name: seed-project
    image: {{ include "mloop.image" . }}
    imagePullPolicy: {{ .Values.image.pullPolicy }}
    command: [cp, -a, {{ printf "%s/." .Values.projectDir | quote }}, /seed/]
    securityContext:
      {{- toYaml .Values.securityContext | nindent 6 }}
    resources:
      requests:
        cpu: 50m
        memory: 64Mi
      limits:
        cpu: 500m
        memory: 256Mi
    volumeMounts:
      - name: workspace
        mountPath: /seed
{{- end }}
{{- end }}

{{/* The streaming consumer (`mloop stream`): its object names, its consumer group, KEDA's Redis settings. */}}
{{- define "mloop.stream.fullname" -}}
{{- printf "%s-stream" (include "mloop.fullname" . | trunc 56 | trimSuffix "-") }}
{{- end }}

{{- define "mloop.stream.group" -}}
{{- default (include "mloop.fullname" .) .Values.stream.group }}
{{- end }}

{{- define "mloop.stream.metricsPort" -}}
{{- $port := int (default 0 .Values.stream.metrics.port) }}
{{- if not $port }}
{{- fail "stream.metrics.port is required: the probes and Prometheus read the consumer's /metrics there" }}
{{- end }}
{{- $port }}
{{- end }}

{{/* KEDA's redis-streams settings as JSON: each value from stream.keda.redis, else from stream.source. */}}
{{- define "mloop.stream.redis" -}}
{{- $source := .Values.stream.source }}
{{- $r := .Values.stream.keda.redis }}
{{- $url := dict }}
{{- if regexMatch "^rediss?://" $source }}
{{- $url = urlParse $source }}
{{- end }}
{{- $hint := "set stream.keda.redis.address and stream.keda.redis.stream, or use a redis:// stream.source (or stream.keda.trigger: prometheus)" }}
{{- $address := $r.address }}
{{- if not $address }}
{{- $address = required (printf "stream.keda.redis.address: stream.source is not a redis:// URI; %s" $hint) $url.host }}
{{- if not (regexMatch ":[0-9]+$" $address) }}
{{- $address = printf "%s:6379" $address }}
{{- end }}
{{- end }}
{{- $stream := $r.stream }}
{{- if not $stream }}
{{- $param := regexFind "(^|&)stream=[^&]+" (default "" $url.query) }}
{{- $stream = required (printf "stream.keda.redis.stream: stream.source names no ?stream=; %s" $hint) (regexReplaceAll "^&?stream=" $param "") }}
{{- end }}
{{- $db := toString $r.databaseIndex }}
{{- if eq $db "" }}
{{- $db = default "0" (trimAll "/" (default "" $url.path)) }}
{{- end }}
{{- if not (regexMatch "^[0-9]+$" $db) }}
{{- fail (printf "stream.keda.redis.databaseIndex %q is not a number (the /DB of a redis:// URI)" $db) }}
{{- end }}
{{- $tls := toString $r.enableTLS }}
{{- if eq $tls "" }}
{{- $tls = toString (eq (default "" $url.scheme) "rediss") }}
{{- end }}
{{- toJson (dict "address" $address "stream" $stream "databaseIndex" $db "enableTLS" $tls) }}
{{- end }}

{{/* The prediction log. PostgreSQL when predictionLog.existingSecret is set, when `secretEnv` or `env` sets
MLOOP_MONITOR__PREDICTIONS_URL, or when the chart's mloop.yaml names monitor.predictions_url; SQLite otherwise.
A literal URL (env value, mloop.yaml) must be PostgreSQL's and carry no password: that belongs in a Secret. */}}
{{- define "mloop.predictionLog.variable" -}}MLOOP_MONITOR__PREDICTIONS_URL{{- end }}

{{- define "mloop.predictionLog.checkLiteral" -}}
{{- if not (regexMatch "^postgres(ql)?(\\+psycopg)?://" .url) }}
{{- fail (printf "%s is not a PostgreSQL URL (postgresql://user@host:5432/db): the prediction log is SQLite unless it names a PostgreSQL one" .where) }}
{{- end }}
{{- if or (regexMatch "://[^/@]*:[^/@]*@" .url) (regexMatch "(?i)[?&]password=" .url) }}
{{- fail (printf "%s carries a password in plain text: keep the URL in an existing Secret and set predictionLog.existingSecret (or secretEnv) instead" .where) }}
{{- end }}
{{- end }}

{{/* "true" when the prediction log is PostgreSQL, "" when SQLite; fails on a literal URL with a password. */}}
{{- define "mloop.predictionLog.postgres" -}}
{{- $var := include "mloop.predictionLog.variable" . }}
{{- $found := list }}
{{- if .Values.predictionLog.existingSecret }}
{{- $_ := required "predictionLog.key is required (the key of predictionLog.existingSecret holding the URL)" .Values.predictionLog.key }}
{{- $found = append $found "predictionLog.existingSecret" }}
{{- end }}
{{- range .Values.secretEnv }}
{{- if eq (toString .name) $var }}
{{- $found = append $found "secretEnv" }}
{{- end }}
{{- end }}
{{- range .Values.env }}
{{- if eq (toString .name) $var }}
{{- if hasKey . "value" }}
{{- include "mloop.predictionLog.checkLiteral" (dict "url" (toString .value) "where" (printf "env %s" $var)) }}
{{- end }}
{{- $found = append $found "env" }}
{{- end }}
{{- end }}
{{- if gt (len $found) 1 }}
{{- fail (printf "%s is set more than once (%s): set it in one place" $var (join ", " $found)) }}
{{- end }}
{{- $config := dict }}
{{- if not (or .Values.existingConfigMap .Values.bakedProject.enabled) }}
{{- $config = ternary (fromYaml .Values.configYaml) (default dict .Values.config) (ne .Values.configYaml "") }}
{{- end }}
{{- $url := "" }}
{{- if kindIs "map" $config.monitor }}
{{- $url = toString (default "" $config.monitor.predictions_url) }}
{{- end }}
{{- if $url }}
{{- include "mloop.predictionLog.checkLiteral" (dict "url" $url "where" "monitor.predictions_url in mloop.yaml") }}
{{- end }}
{{- if or $found $url }}true{{- end }}
{{- end }}

{{/* Refuses a SQLite prediction log that more than one pod of the server or of the stream consumer would write. */}}
{{- define "mloop.predictionLog.check" -}}
{{- if not (include "mloop.predictionLog.postgres" .) }}
{{- $many := list }}
{{- if .Values.autoscaling.enabled }}
{{- if gt (int .Values.autoscaling.maxReplicas) 1 }}
{{- $many = append $many (printf "autoscaling.maxReplicas is %d" (int .Values.autoscaling.maxReplicas)) }}
{{- end }}
{{- else if gt (int .Values.server.replicaCount) 1 }}
{{- $many = append $many (printf "server.replicaCount is %d" (int .Values.server.replicaCount)) }}
{{- end }}
{{- if .Values.stream.enabled }}
{{- if .Values.stream.keda.enabled }}
{{- if gt (int .Values.stream.keda.maxReplicaCount) 1 }}
{{- $many = append $many (printf "stream.keda.maxReplicaCount is %d" (int .Values.stream.keda.maxReplicaCount)) }}
{{- end }}
{{- else if gt (int .Values.stream.replicas) 1 }}
{{- $many = append $many (printf "stream.replicas is %d" (int .Values.stream.replicas)) }}
{{- end }}
{{- end }}
{{- if $many }}
{{- fail (printf "%s with the SQLite prediction log: SQLite (.mloop/predictions.db in the workspace) is safe only for writers on one node, and pods without a shared volume each keep a log of their own. Use the PostgreSQL prediction log (predictionLog.existingSecret: an existing Secret holding its postgresql:// URL) or run one replica." (join " and " $many)) }}
{{- end }}
{{- end }}
{{- end }}
