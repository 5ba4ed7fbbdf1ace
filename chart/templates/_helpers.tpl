{{/*
Names. Every name is cut to 63 characters (a DNS label); a component suffix is
kept whole by cutting the base instead.
*/}}
{{- define "bind-ha.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "bind-ha.fullname" -}}
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

{{/* "<fullname>-<suffix>" within 63 characters: bind-ha.suffixed (list . "dns") */}}
{{- define "bind-ha.suffixed" -}}
{{- $root := index . 0 }}
{{- $suffix := index . 1 }}
{{- $base := include "bind-ha.fullname" $root | trunc (int (sub 62 (len $suffix))) | trimSuffix "-" }}
{{- printf "%s-%s" $base $suffix }}
{{- end }}

{{/*
The StatefulSet's name is cut to 52 characters: its pods carry the label
controller-revision-hash=<name>-<10 characters>, which must fit in 63.
*/}}
{{- define "bind-ha.statefulSetName" -}}
{{- include "bind-ha.fullname" . | trunc 52 | trimSuffix "-" }}
{{- end }}

{{- define "bind-ha.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "bind-ha.leaseName" -}}
{{- include "bind-ha.suffixed" (list . "leader") }}
{{- end }}

{{- define "bind-ha.headlessServiceName" -}}
{{- include "bind-ha.suffixed" (list . "headless") }}
{{- end }}

{{- define "bind-ha.dnsServiceName" -}}
{{- include "bind-ha.suffixed" (list . "dns") }}
{{- end }}

{{- define "bind-ha.primaryServiceName" -}}
{{- include "bind-ha.suffixed" (list . "primary") }}
{{- end }}

{{- define "bind-ha.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "bind-ha.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "bind-ha.tsigSecretName" -}}
{{- if .Values.tsig.existingSecret }}
{{- .Values.tsig.existingSecret }}
{{- else }}
{{- include "bind-ha.suffixed" (list . "tsig") }}
{{- end }}
{{- end }}

{{/* An image reference: repository@digest when a digest is given (immutable), else repository:tag. */}}
{{- define "bind-ha.imageRef" -}}
{{- $image := index . 0 }}
{{- if $image.digest }}
{{- printf "%s@%s" $image.repository $image.digest }}
{{- else }}
{{- printf "%s:%s" $image.repository (index . 1) }}
{{- end }}
{{- end }}

{{- define "bind-ha.image" -}}
{{- include "bind-ha.imageRef" (list .Values.image (default .Chart.AppVersion .Values.image.tag)) }}
{{- end }}

{{- define "bind-ha.exporterImage" -}}
{{- include "bind-ha.imageRef" (list .Values.metrics.exporter.image .Values.metrics.exporter.image.tag) }}
{{- end }}

{{/*
The ConfigMaps carrying code are immutable and named after their content: a
change of code is a new ConfigMap, which the pod template names, so pods roll
onto it while running pods keep the one they mounted.
*/}}
{{- define "bind-ha.pythonConfigMapName" -}}
{{- $hash := (.Files.Glob "files/bind_ha/*.{py,j2}").AsConfig | sha256sum | trunc 10 }}
{{- include "bind-ha.suffixed" (list . (printf "python-%s" $hash)) }}
{{- end }}

{{- define "bind-ha.hooksConfigMapName" -}}
{{- $hash := (.Files.Glob "files/hooks/*.py").AsConfig | sha256sum | trunc 10 }}
{{- include "bind-ha.suffixed" (list . (printf "hooks-%s" $hash)) }}
{{- end }}

{{/* The StatefulSet's pod names (the agent may patch only these): NAME-0 .. NAME-(replicaCount-1). */}}
{{- define "bind-ha.podNames" -}}
{{- $names := list }}
{{- range $ordinal := until (int .Values.replicaCount) }}
{{- $names = append $names (printf "%s-%d" (include "bind-ha.statefulSetName" $) $ordinal) }}
{{- end }}
{{- toJson $names }}
{{- end }}

{{/* Cluster-scoped admission policy: unique per namespace and release. */}}
{{- define "bind-ha.admissionPolicyName" -}}
{{- printf "%s.%s.bind-ha.io" .Release.Namespace (include "bind-ha.fullname" .) }}
{{- end }}

{{/* The TSIG secret's length in bytes: the algorithm's hash length (what tsig-keygen makes). */}}
{{- define "bind-ha.tsigSecretBytes" -}}
{{- get (dict "hmac-sha224" 28 "hmac-sha256" 32 "hmac-sha384" 48 "hmac-sha512" 64) .Values.tsig.algorithm }}
{{- end }}

{{/* Response rate limiting on? (rrl.mode auto: when a Service reaches beyond the cluster) */}}
{{- define "bind-ha.rrlEnabled" -}}
{{- $external := or (ne .Values.service.dns.type "ClusterIP") (ne .Values.service.primary.type "ClusterIP") }}
{{- if or (eq .Values.rrl.mode "always") (and (eq .Values.rrl.mode "auto") $external) }}true{{ end }}
{{- end }}

{{/* Labels: selector labels are name, instance and component only. */}}
{{- define "bind-ha.labels" -}}
helm.sh/chart: {{ include "bind-ha.chart" . }}
app.kubernetes.io/name: {{ include "bind-ha.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ default .Chart.AppVersion .Values.image.tag | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: bind-ha
{{- end }}

{{- define "bind-ha.selectorLabels" -}}
app.kubernetes.io/name: {{ include "bind-ha.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: server
{{- end }}

{{/* The agent's BIND_HA_PEER_SELECTOR: the selector labels as k=v,k=v. */}}
{{- define "bind-ha.peerSelector" -}}
{{- $pairs := list }}
{{- range $key, $value := include "bind-ha.selectorLabels" . | fromYaml }}
{{- $pairs = append $pairs (printf "%s=%s" $key $value) }}
{{- end }}
{{- join "," $pairs }}
{{- end }}

{{/* Where the pods find their files (settings.py's ENVIRONMENT table). */}}
{{- define "bind-ha.paths" -}}
python: /opt/bind-ha/python
package: /opt/bind-ha/python/bind_ha
hooks: /opt/bind-ha/hooks
zonesFile: /etc/bind-ha/zones/zones.yaml
zonesDir: /etc/bind-ha/zones.d
tsigDir: /etc/bind-ha/tsig
runDir: /var/run/bind-ha
dataDir: /var/lib/bind-ha
{{- end }}

{{- define "bind-ha.hasZonesDir" -}}
{{- if or .Values.zonesConfigMap .Values.zonesVolume }}true{{ end }}
{{- end }}

{{/* Environment shared by the init, agent and named containers. */}}
{{- define "bind-ha.env" -}}
{{- $paths := include "bind-ha.paths" . | fromYaml -}}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_UID
  valueFrom:
    fieldRef:
      fieldPath: metadata.uid
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: POD_IP
  valueFrom:
    fieldRef:
      fieldPath: status.podIP
- name: PYTHONPATH
  value: {{ $paths.python }}
- name: PYTHONDONTWRITEBYTECODE
  value: "1"
- name: PYTHONUNBUFFERED
  value: "1"
- name: BIND_HA_LEASE_NAME
  value: {{ include "bind-ha.leaseName" . }}
- name: BIND_HA_PEER_SELECTOR
  value: {{ include "bind-ha.peerSelector" . | quote }}
- name: BIND_HA_LEASE_DURATION
  value: {{ .Values.election.leaseDurationSeconds | toString | quote }}
- name: BIND_HA_RENEW_DEADLINE
  value: {{ .Values.election.renewDeadlineSeconds | toString | quote }}
- name: BIND_HA_RETRY_PERIOD
  value: {{ .Values.election.retryPeriodSeconds | toString | quote }}
- name: BIND_HA_DNS_PORT
  value: "5353"
- name: BIND_HA_TERMINATION_GRACE_PERIOD  # what is left of the grace period once named gets SIGTERM
  value: {{ sub (int .Values.terminationGracePeriodSeconds) (int .Values.shutdownDelaySeconds) | toString | quote }}
- name: BIND_HA_RUN_DIR
  value: {{ $paths.runDir }}
- name: BIND_HA_DATA_DIR
  value: {{ $paths.dataDir }}
- name: BIND_HA_ZONES_FILE
  value: {{ $paths.zonesFile }}
{{- if include "bind-ha.hasZonesDir" . }}
- name: BIND_HA_ZONES_DIR
  value: {{ $paths.zonesDir }}
{{- end }}
- name: BIND_HA_ZONES_DIR_TYPE
  value: {{ .Values.zonesDirType }}
- name: BIND_HA_TSIG_DIR
  value: {{ $paths.tsigDir }}
- name: BIND_HA_TSIG_ALGORITHM
  value: {{ .Values.tsig.algorithm }}
- name: BIND_HA_TRANSFER_KEY_NAME
  value: {{ .Values.tsig.transferKeyName }}
- name: BIND_HA_UPDATE_KEY_NAME
  value: {{ .Values.tsig.updateKeyName }}
- name: BIND_HA_LOG_FORMAT
  value: {{ .Values.agent.logFormat }}
- name: BIND_HA_LOG_LEVEL
  value: {{ .Values.agent.logLevel }}
{{- with .Values.tsig.clients }}
- name: BIND_HA_TSIG_CLIENTS
  value: {{ toJson . | quote }}
{{- end }}
- name: BIND_HA_UPDATE_KEY_TRANSFERS
  value: {{ .Values.tsig.updateKeyTransfers }}
- name: BIND_HA_UPDATE_FORWARDING
  value: {{ .Values.updateForwarding | toString | quote }}
{{- if include "bind-ha.rrlEnabled" . }}
- name: BIND_HA_RRL_RESPONSES_PER_SECOND
  value: {{ .Values.rrl.responsesPerSecond | toString | quote }}
- name: BIND_HA_RRL_WINDOW
  value: {{ .Values.rrl.window | toString | quote }}
- name: BIND_HA_RRL_SLIP
  value: {{ .Values.rrl.slip | toString | quote }}
- name: BIND_HA_RRL_EXEMPT
  value: {{ concat (list "127.0.0.0/8" "::1/128") .Values.rrl.exemptClients | join "," | quote }}
{{- end }}
- name: BIND_HA_ZONE_MAX_BYTES
  value: {{ .Values.zoneLimits.maxBytes | int64 | toString | quote }}
- name: BIND_HA_ZONE_MAX_RECORDS
  value: {{ .Values.zoneLimits.maxRecords | int64 | toString | quote }}
- name: BIND_HA_ZONE_COMPILE_TIMEOUT
  value: {{ .Values.zoneLimits.compileTimeoutSeconds | toString | quote }}
- name: BIND_HA_ZONE_COMPILE_MEMORY
  value: {{ .Values.zoneLimits.compileMemoryMiB | int64 | toString | quote }}
{{- end }}

{{/* Mounts of the Python package and the hook scripts (read-only ConfigMaps). */}}
{{- define "bind-ha.scriptMounts" -}}
{{- $paths := include "bind-ha.paths" . | fromYaml -}}
- name: python
  mountPath: {{ $paths.package }}
  readOnly: true
- name: hooks
  mountPath: {{ $paths.hooks }}
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- end }}

{{/* The agent's API credentials, mounted only where the API is used (init, agent). */}}
{{- define "bind-ha.apiMount" -}}
- name: kube-api-access
  mountPath: /var/run/secrets/kubernetes.io/serviceaccount
  readOnly: true
{{- end }}

{{/* Mounts of the zone sources and the TSIG secrets (init and agent). */}}
{{- define "bind-ha.zoneMounts" -}}
{{- $paths := include "bind-ha.paths" . | fromYaml -}}
- name: zones
  mountPath: {{ dir $paths.zonesFile }}
  readOnly: true
{{- if include "bind-ha.hasZonesDir" . }}
- name: zones-dir
  mountPath: {{ $paths.zonesDir }}
  readOnly: true
{{- end }}
- name: tsig
  mountPath: {{ $paths.tsigDir }}
  readOnly: true
{{- end }}

{{- define "bind-ha.stateMounts" -}}
{{- $paths := include "bind-ha.paths" . | fromYaml -}}
- name: run
  mountPath: {{ $paths.runDir }}
- name: data
  mountPath: {{ $paths.dataDir }}
{{- end }}

{{/*
Pod anti-affinity preset (antiAffinity: soft | hard | none), merged into
`affinity` unless that already holds a podAntiAffinity.
*/}}
{{- define "bind-ha.affinity" -}}
{{- $affinity := deepCopy .Values.affinity }}
{{- if and (ne .Values.antiAffinity "none") (not (hasKey $affinity "podAntiAffinity")) }}
{{- $term := dict "labelSelector" (dict "matchLabels" (include "bind-ha.selectorLabels" . | fromYaml)) "topologyKey" .Values.antiAffinityTopologyKey }}
{{- if eq .Values.antiAffinity "hard" }}
{{- $_ := set $affinity "podAntiAffinity" (dict "requiredDuringSchedulingIgnoredDuringExecution" (list $term)) }}
{{- else }}
{{- $_ := set $affinity "podAntiAffinity" (dict "preferredDuringSchedulingIgnoredDuringExecution" (list (dict "weight" 100 "podAffinityTerm" $term))) }}
{{- end }}
{{- end }}
{{- if $affinity }}
{{- toYaml $affinity }}
{{- end }}
{{- end }}

{{/* topologySpreadConstraints, each given this release's labelSelector when it has none. */}}
{{- define "bind-ha.topologySpreadConstraints" -}}
{{- $constraints := list }}
{{- range .Values.topologySpreadConstraints }}
{{- $constraint := deepCopy . }}
{{- if not (hasKey $constraint "labelSelector") }}
{{- $_ := set $constraint "labelSelector" (dict "matchLabels" (include "bind-ha.selectorLabels" $ | fromYaml)) }}
{{- end }}
{{- $constraints = append $constraints $constraint }}
{{- end }}
{{- if $constraints }}
{{- toYaml $constraints }}
{{- end }}
{{- end }}

{{/* A Service's type-dependent fields (service.dns and service.primary share them). */}}
{{- define "bind-ha.serviceSpec" -}}
type: {{ .type }}
{{- if .clusterIP }}
clusterIP: {{ .clusterIP }}
{{- end }}
{{- if and (ne .type "ClusterIP") .externalTrafficPolicy }}
externalTrafficPolicy: {{ .externalTrafficPolicy }}
{{- end }}
{{- if eq .type "LoadBalancer" }}
{{- with .loadBalancerClass }}
loadBalancerClass: {{ . }}
{{- end }}
{{- with .loadBalancerSourceRanges }}
loadBalancerSourceRanges:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
{{- end }}

{{/* The two ports of a DNS Service: UDP and TCP on .port, to the named container. */}}
{{- define "bind-ha.servicePorts" -}}
{{- range $protocol := list "UDP" "TCP" }}
- name: dns-{{ lower $protocol }}
  port: {{ $.port }}
  protocol: {{ $protocol }}
  targetPort: {{ ternary "dns" "dns-tcp" (eq $protocol "UDP") }}
  {{- if and (has $.type (list "NodePort" "LoadBalancer")) $.nodePort }}
  nodePort: {{ $.nodePort }}
  {{- end }}
{{- end }}
{{- end }}

{{/*
Seconds a probe asked with ?wait= may wait for its condition at start: its timeout less a
second, so the answer reaches the kubelet before it gives up.
*/}}
{{- define "bind-ha.probeWait" -}}
{{- max 0 (sub (int .timeoutSeconds) 1) -}}
{{- end }}
