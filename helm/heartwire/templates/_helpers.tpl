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
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* `annotations:` with commonAnnotations and `extra` (a map), or nothing; the context is
(list $root $extra). */}}
{{- define "heartwire.annotations" -}}
{{- $root := index . 0 }}
{{- $all := merge (deepCopy (default dict (index . 1))) (default dict $root.Values.commonAnnotations) }}
{{- with $all }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
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
{{- $registry := (default dict .Values.global).imageRegistry }}
{{- $repository := ternary (printf "%s/%s" (trimSuffix "/" (toString $registry)) $image.repository) $image.repository (not (empty $registry)) }}
{{- if $image.digest }}
{{- printf "%s@%s" $repository $image.digest }}
{{- else }}
{{- printf "%s:%s" $repository (default "0.1.0" $image.tag) }}
{{- end }}
{{- end }}

{{/* The pod's `imagePullSecrets` entries for the sidecar's image: global.imagePullSecrets, then
imagePullSecrets (a parent chart puts them into its pod spec: a container cannot carry them). */}}
{{- define "heartwire.imagePullSecrets" -}}
{{- $secrets := concat (default list (default dict .Values.global).imagePullSecrets) (default list .Values.imagePullSecrets) | uniq }}
{{- with $secrets }}
{{- toYaml . }}
{{- end }}
{{- end }}

{{/*
The Prometheus scrape job of this release's heartwire targets, `<namespace>/<fullname>`: the
chart's monitor sets it as the targets' `job` label and HeartwireDown matches `up{job=…}` on it,
so the alert follows this release's pods whatever the sidecar container is called, and other
releases' heartwire targets can neither mask nor trip it.
*/}}
{{- define "heartwire.scrapeJob" -}}
{{- printf "%s/%s" .Release.Namespace (include "heartwire.fullname" .) }}
{{- end }}

{{/*
sha256 of the restart-only (`Fixed`) sections of the rendered heartwire.yaml: a pod annotation
`checksum/config` over it rolls the pods when one of them changes. The live sections (jobs,
workers, defaults, statsd, alerts, dashboard) are left out: the agent reloads them in place.
*/}}
{{- define "heartwire.configChecksum" -}}
{{- $config := include "heartwire.config" . | fromYaml }}
{{- $fixed := dict }}
{{- range $key := list "listen" "http" "pipeline" "shutdown" "limits" "buckets" "families" "otlp" "textfile" "state" }}
{{- if hasKey $config $key }}
{{- $_ := set $fixed $key (get $config $key) }}
{{- end }}
{{- end }}
{{- toJson $fixed | sha256sum }}
{{- end }}

{{/* A Prometheus duration (`1m30s`, `500ms`) in milliseconds. */}}
{{- define "heartwire.durationMs" -}}
{{- $units := dict "ms" 1 "s" 1000 "m" 60000 "h" 3600000 "d" 86400000 "w" 604800000 "y" 31536000000 }}
{{- $ms := 0 }}
{{- range $part := regexFindAll "[0-9]+(ms|y|w|d|h|m|s)" (toString .) -1 }}
{{- $unit := regexReplaceAll "^[0-9]+" $part "" }}
{{- $count := regexReplaceAll "[a-z]+$" $part "" | int64 }}
{{- $ms = add $ms (mul $count (get $units $unit)) }}
{{- end }}
{{- $ms }}
{{- end }}

{{/*
The memory (MiB) the agent can hold at worst with the rendered config, the arithmetic of
agent/src/config/default.yaml with its defaults for unset keys:
  32 MiB (binary, runtimes, HTTP buffers)
  + queue_batches × max over the datagram listeners of (batch_datagrams × max_datagram_bytes)
  + queue_batches × 16 KiB (stream batches)
  + (listen.udp.receive_threads - 1) × batch_datagrams × max_datagram_bytes of listen.udp (the
    receive buffers of each UDP receive thread past the first; the first's are in the 32 MiB)
  + queue_batches × batch_datagrams × max_datagram_bytes of listen.udp when
    listen.udp.parse_on_receive (the budget of the parsed lines in flight)
  + limits.max_series × 1 KiB (0.5 KiB per series at most, as much again for the rendered and
    gzipped /metrics page)
rounded up. The state file's emptyDir is not in it (with medium Memory, add its sizeLimit).
*/}}
{{- define "heartwire.memoryMi" -}}
{{- $config := include "heartwire.config" . | fromYaml }}
{{- $queue := (default 256 (default dict $config.pipeline).queue_batches) | int64 }}
{{- $listen := default dict $config.listen }}
{{- $batch := 0 | int64 }}
{{- range $key := list "udp" "unix_datagram" }}
{{- $listener := default dict (get $listen $key) }}
{{- $bytes := mul ((default 64 $listener.batch_datagrams) | int64) ((default 8192 $listener.max_datagram_bytes) | int64) }}
{{- if gt (int64 $bytes) $batch }}
{{- $batch = int64 $bytes }}
{{- end }}
{{- end }}
{{- $udp := default dict (get $listen "udp") }}
{{- $threads := sub ((default 1 $udp.receive_threads) | int64) 1 }}
{{- $receive := mul $threads (mul ((default 64 $udp.batch_datagrams) | int64) ((default 8192 $udp.max_datagram_bytes) | int64)) }}
{{- $parsed := 0 | int64 }}
{{- if $udp.parse_on_receive }}
{{- $parsed = mul $queue (mul ((default 64 $udp.batch_datagrams) | int64) ((default 8192 $udp.max_datagram_bytes) | int64)) }}
{{- end }}
{{- $series := (default 100000 (default dict $config.limits).max_series) | int64 }}
{{- $total := add (mul 32 1048576) (mul $queue $batch) (mul $queue 16384) $receive $parsed (mul $series 1024) }}
{{- div (add $total 1048575) 1048576 }}
{{- end }}

{{/* The sidecar's resources: sidecar.resources, or a preset whose memory limit is
heartwire.memoryMi: `guaranteed` (requests = limits, cpu sidecar.presetCpu) or `derived`
(sidecar.resources.requests, limits cpu sidecar.presetCpu). */}}
{{- define "heartwire.resources" -}}
{{- $sidecar := .Values.sidecar }}
{{- $preset := default "" $sidecar.resourcesPreset }}
{{- if eq $preset "" }}
{{- toYaml $sidecar.resources }}
{{- else }}
{{- $limits := dict "cpu" $sidecar.presetCpu "memory" (printf "%sMi" (include "heartwire.memoryMi" .)) }}
{{- $requests := ternary $limits (default dict $sidecar.resources.requests) (eq $preset "guaranteed") }}
{{- toYaml (dict "requests" $requests "limits" $limits) }}
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
    # What the agent does when its config is invalid at start: `default` serves with the
    # embedded default config and reports heartwire_config_last_reload_successful 0 (the app is
    # never held back by a config typo); `exit` stops with status 64.
    - name: HEARTWIRE_ON_INVALID_CONFIG
      value: {{ default "default" .Values.sidecar.onInvalidConfig | quote }}
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
    {{- include "heartwire.resources" . | nindent 4 }}
  {{- with .Values.sidecar.securityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
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

{{/* The command that generates the rules of this release's config, for messages and NOTES. */}}
{{- define "heartwire.rulesCommand" -}}
heartwire rules --config my-heartwire.yaml --format prometheus-operator --scrape-job {{ include "heartwire.scrapeJob" . }}{{ if not .Values.monitor.honorLabels }} --honor-labels false{{ end }} > my-rules.yaml, then --set-file prometheusRule.ruleFile=my-rules.yaml
{{- end }}

{{/*
The rule groups of the PrometheusRule, `heartwire rules` output: prometheusRule.groups, else
prometheusRule.ruleFile (a rule file, or the PrometheusRule `--format prometheus-operator`
prints), else files/rules.yaml (the chart's default config; only while the config names no
jobs, workers, alerts or families). Its scrape job placeholder becomes heartwire.scrapeJob. Then
prometheusRule.disabled drops alerts, and extraLabels and alertLabels add labels.
*/}}
{{- define "heartwire.ruleGroups" -}}
{{- $values := .Values.prometheusRule }}
{{- $config := default dict .Values.config }}
{{- $command := include "heartwire.rulesCommand" . }}
{{- if and $values.groups $values.ruleFile }}
{{- fail "prometheusRule: set groups or ruleFile, not both" }}
{{- end }}
{{- $groups := $values.groups }}
{{- $source := "prometheusRule.groups" }}
{{- if not $groups }}
{{- if $values.ruleFile }}
{{- $source = "prometheusRule.ruleFile" }}
{{- $file := $values.ruleFile | fromYaml }}
{{- if hasKey $file "Error" }}
{{- fail (printf "prometheusRule.ruleFile is not valid YAML: %s" $file.Error) }}
{{- end }}
{{- $groups = (default dict $file.spec).groups | default $file.groups }}
{{- else }}
{{- $source = "files/rules.yaml" }}
{{- $own := list }}
{{- range $key := list "jobs" "workers" "alerts" "families" }}
{{- if get $config $key }}
{{- $own = append $own (printf "config.%s" $key) }}
{{- end }}
{{- end }}
{{- if $own }}
{{- fail (printf "prometheusRule: %s set, but the chart's files/rules.yaml has no rules for them: generate the rules of this config: %s" (join ", " $own) $command) }}
{{- end }}
{{- if not .Values.monitor.honorLabels }}
{{- fail (printf "prometheusRule: monitor.honorLabels=false renames heartwire's job label exported_job, and the chart's files/rules.yaml reads `job`: generate the rules with %s" $command) }}
{{- end }}
{{- $file := .Files.Get "files/rules.yaml" | replace "HEARTWIRE_SCRAPE_JOB" (include "heartwire.scrapeJob" .) | fromYaml }}
{{- $groups = $file.groups }}
{{- end }}
{{- if not $groups }}
{{- fail (printf "%s has no rule groups: give it `heartwire rules` output, or set prometheusRule.groups" $source) }}
{{- end }}
{{- end }}
{{- $exprs := list }}
{{- $alerts := list }}
{{- range $group := $groups }}
{{- range $rule := $group.rules }}
{{- $exprs = append $exprs (toString $rule.expr) }}
{{- with $rule.alert }}
{{- $alerts = append $alerts . }}
{{- end }}
{{- end }}
{{- end }}
{{- $allExprs := join "\n" $exprs }}
{{- range $job := keys (default dict $config.jobs) | sortAlpha }}
{{- if not (contains (printf "job=\"%s\"" $job) $allExprs) }}
{{- fail (printf "%s has no rule about job %s (config.jobs.%s): regenerate the rules of this config: %s" $source $job $job $command) }}
{{- end }}
{{- end }}
{{- range $name := concat (default list $values.disabled) (keys (default dict $values.alertLabels)) }}
{{- if not (has $name $alerts) }}
{{- fail (printf "prometheusRule names alert %s, which the rules do not have (they have %s)" $name (join ", " ($alerts | uniq | sortAlpha))) }}
{{- end }}
{{- end }}
{{- $out := list }}
{{- range $group := $groups }}
{{- $rules := list }}
{{- range $rule := $group.rules }}
{{- if and $rule.alert (has $rule.alert (default list $values.disabled)) }}
{{- continue }}
{{- end }}
{{- $rule = deepCopy $rule }}
{{- if and $rule.alert (eq $rule.alert "HeartwireDown") $.Values.monitor.enabled (not (contains (printf "job=\"%s\"" (include "heartwire.scrapeJob" $)) (toString $rule.expr))) }}
{{- fail (printf "%s: HeartwireDown does not match this release's scrape job (up{job=\"%s\"}, set by the monitor): %s" $source (include "heartwire.scrapeJob" $) $command) }}
{{- end }}
{{- if $rule.alert }}
{{- $labels := mergeOverwrite (deepCopy (default dict $rule.labels)) (default dict $values.extraLabels) (default dict (get (default dict $values.alertLabels) $rule.alert)) }}
{{- if $labels }}
{{- $_ := set $rule "labels" $labels }}
{{- end }}
{{- end }}
{{- $rules = append $rules $rule }}
{{- end }}
{{- if $rules }}
{{- $out = append $out (set (deepCopy $group) "rules" $rules) }}
{{- end }}
{{- end }}
{{- if not $out }}
{{- fail "prometheusRule.disabled leaves no rule: set prometheusRule.enabled=false instead" }}
{{- end }}
{{- toYaml $out }}
{{- end }}
