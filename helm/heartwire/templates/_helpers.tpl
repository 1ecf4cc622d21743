{{/*
Templates that take a context with `.Values` (heartwire's values) and `.Release`: either this
chart's own context, or `(dict "Values" .Values.heartwire "Release" .Release)` from a chart that
includes heartwire. They never read `.Chart`, so that both render the same names.
*/}}

{{/* The base name: "heartwire" unless nameOverride. */}}
{{- define "heartwire.name" -}}
{{- default "heartwire" .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The resource name prefix: "<release>-heartwire", or the release name when it contains it. */}}
{{- define "heartwire.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := include "heartwire.name" . }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels that select this release's pods. */}}
{{- define "heartwire.selectorLabels" -}}
app.kubernetes.io/name: {{ include "heartwire.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of every resource this chart renders (chart context only). */}}
{{- define "heartwire.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "heartwire.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The ConfigMap that holds heartwire.yaml. */}}
{{- define "heartwire.configMapName" -}}
{{- printf "%s-config" (include "heartwire.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The agent image. Without a tag, the chart's appVersion, spelled out because an including chart's
`.Chart` is its own; the chart tests hold it equal to Chart.yaml and the workspace version.
*/}}
{{- define "heartwire.image" -}}
{{- $image := .Values.image }}
{{- if $image.digest }}
{{- printf "%s@%s" $image.repository $image.digest }}
{{- else }}
{{- printf "%s:%s" $image.repository (default "0.1.0" $image.tag) }}
{{- end }}
{{- end }}

{{/* The config file's path inside the sidecar. */}}
{{- define "heartwire.configPath" -}}
{{- printf "%s/heartwire.yaml" (trimSuffix "/" .Values.volumes.config.mountPath) }}
{{- end }}

{{/*
heartwire.yaml: `.Values.config` with `http.address` set from `metrics.port`, so that the
container port, the probes and the Service cannot disagree with the agent. Socket paths must lie
in the shared volume: the root filesystem is read-only and the app sees nothing else.
*/}}
{{- define "heartwire.config" -}}
{{- $config := deepCopy (default dict .Values.config) }}
{{- $http := default dict (get $config "http") }}
{{- if hasKey $http "address" }}
{{- fail "config.http.address is set by the chart: set metrics.port instead" }}
{{- end }}
{{- $_ := set $http "address" (printf "0.0.0.0:%d" (int .Values.metrics.port)) }}
{{- $_ := set $config "http" $http }}
{{- $dir := printf "%s/" (trimSuffix "/" .Values.volumes.sockets.mountPath) }}
{{- $listen := default dict (get $config "listen") }}
{{- range $key := list "unix_datagram" "unix_stream" }}
{{- $socket := default dict (get $listen $key) }}
{{- if and $socket.enabled $socket.path (not (hasPrefix $dir (toString $socket.path))) }}
{{- fail (printf "config.listen.%s.path (%s) must lie inside volumes.sockets.mountPath (%s), the directory shared with the app" $key $socket.path $dir) }}
{{- end }}
{{- end }}
{{- $state := default dict (get $config "state") }}
{{- $stateDir := printf "%s/" (trimSuffix "/" .Values.volumes.state.mountPath) }}
{{- if and $state.path (not (hasPrefix $stateDir (toString $state.path))) }}
{{- fail (printf "config.state.path (%s) must lie inside volumes.state.mountPath (%s): the root filesystem is read-only" $state.path $stateDir) }}
{{- end }}
{{- toYaml $config }}
{{- end }}

{{/* `k8s.pod.name=$(K8S_POD_NAME),…` plus otel.resourceAttributes, sorted by key. */}}
{{- define "heartwire.resourceAttributes" -}}
{{- $attributes := list "k8s.pod.name=$(K8S_POD_NAME)" "k8s.pod.uid=$(K8S_POD_UID)" "k8s.namespace.name=$(K8S_NAMESPACE_NAME)" "k8s.node.name=$(K8S_NODE_NAME)" (printf "k8s.container.name=%s" .Values.sidecar.name) }}
{{- range $key, $value := .Values.otel.resourceAttributes }}
{{- $attributes = append $attributes (printf "%s=%s" $key (toString $value)) }}
{{- end }}
{{- join "," $attributes }}
{{- end }}

{{/* An HTTP probe on the metrics port; the context is (list $root $probe). */}}
{{- define "heartwire.probe" -}}
{{- $root := index . 0 }}
{{- $probe := index . 1 -}}
httpGet:
  path: {{ $probe.path }}
  port: {{ $root.Values.metrics.port }}
periodSeconds: {{ $probe.periodSeconds }}
timeoutSeconds: {{ $probe.timeoutSeconds }}
failureThreshold: {{ $probe.failureThreshold }}
{{- end }}

{{/*
The sidecar: one entry for a pod's `initContainers`. `restartPolicy: Always` makes it a native
sidecar (Kubernetes 1.29+): it starts before the app containers, is restarted if it dies, and
stops only after they have exited, so it sees their last lines.
*/}}
{{- define "heartwire.sidecar" -}}
- name: {{ .Values.sidecar.name }}
  image: {{ include "heartwire.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  restartPolicy: Always
  args:
    - serve
    - --config
    - {{ include "heartwire.configPath" . }}
  ports:
    - name: {{ .Values.metrics.portName }}
      containerPort: {{ .Values.metrics.port }}
      protocol: TCP
  env:
    - name: K8S_POD_NAME
      valueFrom:
        fieldRef:
          fieldPath: metadata.name
    - name: K8S_POD_UID
      valueFrom:
        fieldRef:
          fieldPath: metadata.uid
    - name: K8S_NAMESPACE_NAME
      valueFrom:
        fieldRef:
          fieldPath: metadata.namespace
    - name: K8S_NODE_NAME
      valueFrom:
        fieldRef:
          fieldPath: spec.nodeName
    - name: OTEL_SERVICE_NAME
      value: {{ default (include "heartwire.fullname" .) .Values.otel.serviceName | quote }}
    - name: OTEL_RESOURCE_ATTRIBUTES
      value: {{ include "heartwire.resourceAttributes" . | quote }}
    - name: RUST_LOG
      value: {{ .Values.sidecar.logLevel | quote }}
    {{- with .Values.sidecar.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  startupProbe:
    {{- include "heartwire.probe" (list . .Values.probes.startup) | nindent 4 }}
  livenessProbe:
    {{- include "heartwire.probe" (list . .Values.probes.liveness) | nindent 4 }}
  readinessProbe:
    {{- include "heartwire.probe" (list . .Values.probes.readiness) | nindent 4 }}
  resources:
    {{- toYaml .Values.sidecar.resources | nindent 4 }}
  securityContext:
    runAsNonRoot: true
    runAsUser: {{ .Values.sidecar.runAsUser }}
    runAsGroup: {{ .Values.sidecar.runAsGroup }}
    readOnlyRootFilesystem: true
    allowPrivilegeEscalation: false
    capabilities:
      drop:
        - ALL
    seccompProfile:
      type: RuntimeDefault
  volumeMounts:
    {{- include "heartwire.socketMount" . | nindent 4 }}
    - name: {{ .Values.volumes.config.name }}
      mountPath: {{ .Values.volumes.config.mountPath }}
      readOnly: true
    - name: {{ .Values.volumes.state.name }}
      mountPath: {{ .Values.volumes.state.mountPath }}
{{- end }}

{{/* The socket directory's mount: one entry for the app container's `volumeMounts`. */}}
{{- define "heartwire.socketMount" -}}
- name: {{ .Values.volumes.sockets.name }}
  mountPath: {{ .Values.volumes.sockets.mountPath }}
{{- end }}

{{/* The sidecar's volumes: entries for the pod's `volumes`. */}}
{{- define "heartwire.volumes" -}}
- name: {{ .Values.volumes.sockets.name }}
  emptyDir:
    {{- with .Values.volumes.sockets.medium }}
    medium: {{ . }}
    {{- end }}
    sizeLimit: {{ .Values.volumes.sockets.sizeLimit }}
- name: {{ .Values.volumes.config.name }}
  configMap:
    name: {{ include "heartwire.configMapName" . }}
- name: {{ .Values.volumes.state.name }}
  emptyDir:
    {{- with .Values.volumes.state.medium }}
    medium: {{ . }}
    {{- end }}
    sizeLimit: {{ .Values.volumes.state.sizeLimit }}
{{- end }}

{{/* The rule groups of the PrometheusRule: prometheusRule.groups, else the rule file in
prometheusRule.ruleFile, else files/rules.yaml (both `heartwire rules` output). */}}
{{- define "heartwire.ruleGroups" -}}
{{- $values := .Values.prometheusRule }}
{{- if and $values.groups $values.ruleFile }}
{{- fail "prometheusRule: set groups or ruleFile, not both" }}
{{- end }}
{{- $groups := $values.groups }}
{{- if not $groups }}
{{- $source := ternary "prometheusRule.ruleFile" "files/rules.yaml" (not (empty $values.ruleFile)) }}
{{- $file := ($values.ruleFile | default (.Files.Get "files/rules.yaml")) | fromYaml }}
{{- if hasKey $file "Error" }}
{{- fail (printf "%s is not valid YAML: %s" $source $file.Error) }}
{{- end }}
{{- $groups = $file.groups }}
{{- if not $groups }}
{{- fail (printf "%s has no rule groups: give it `heartwire rules` output, or set prometheusRule.groups" $source) }}
{{- end }}
{{- end }}
{{- toYaml $groups }}
{{- end }}
