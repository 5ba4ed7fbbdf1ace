{{/*
Checks values.schema.json cannot express (or that must hold even with
--skip-schema-validation). Every message names the value at fault.
Included once, from server-statefulset.yaml.
*/}}
{{- define "bind-ha.validate" -}}
{{- $v := .Values }}
{{- if or (lt (int $v.replicaCount) 1) (gt (int $v.replicaCount) 32) }}
{{- fail (printf "replicaCount must be at least 1 and at most 32 (got %v)" $v.replicaCount) }}
{{- end }}
{{- include "bind-ha.validateSecurity" . }}
{{- include "bind-ha.validateTsigClients" . }}
{{- include "bind-ha.validateRrl" $v.rrl }}
{{- range $field, $name := dict "zonesConfigMap" $v.zonesConfigMap "tsig.existingSecret" $v.tsig.existingSecret }}
{{- if and $name (not (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$" (toString $name))) }}
{{- fail (printf "%s: %q is not a Kubernetes object name (lowercase DNS subdomain)" $field (toString $name)) }}
{{- end }}
{{- end }}
{{- if and $v.zonesVolume (hasKey $v.zonesVolume "hostPath") }}
{{- fail "zonesVolume: a hostPath volume is refused (it would expose the node's files to every pod of the release); use a PersistentVolumeClaim, a ConfigMap or a CSI volume" }}
{{- end }}
{{- range $image := list (list "image.digest" $v.image.digest) (list "metrics.exporter.image.digest" $v.metrics.exporter.image.digest) }}
{{- if and (index $image 1) (not (regexMatch "^sha256:[a-f0-9]{64}$" (toString (index $image 1)))) }}
{{- fail (printf "%s must be sha256: and 64 hex digits (got %q)" (index $image 0) (toString (index $image 1))) }}
{{- end }}
{{- end }}
{{- with $v.zoneLimits }}
{{- if or (lt (int64 .maxBytes) 1024) (lt (int64 .maxRecords) 10) (le (float64 .compileTimeoutSeconds) 0.0) (lt (int64 .compileMemoryMiB) 32) }}
{{- fail "zoneLimits: maxBytes must be at least 1024, maxRecords at least 10, compileTimeoutSeconds above 0 and compileMemoryMiB at least 32" }}
{{- end }}
{{- end }}

{{- include "bind-ha.validateElection" $v.election }}
{{- if gt (add (int $v.shutdownDelaySeconds) 10) (int $v.terminationGracePeriodSeconds) }}
{{- fail (printf "shutdownDelaySeconds (%v) must leave at least 10 s of terminationGracePeriodSeconds (%v) for the handover" $v.shutdownDelaySeconds $v.terminationGracePeriodSeconds) }}
{{- end }}
{{- if not (has $v.antiAffinity (list "soft" "hard" "none")) }}
{{- fail (printf "antiAffinity must be one of soft, hard, none (got %q); for a custom rule set affinity.podAntiAffinity" (toString $v.antiAffinity)) }}
{{- end }}
{{- if not (has $v.zonesDirType (list "static" "dynamic")) }}
{{- fail (printf "zonesDirType must be static or dynamic (got %q)" (toString $v.zonesDirType)) }}
{{- end }}
{{- if and $v.zonesConfigMap $v.zonesVolume }}
{{- fail "zonesConfigMap and zonesVolume are two ways to give the same directory of NAME.zone files: set only one" }}
{{- end }}
{{- include "bind-ha.validateZones" $v.zones }}
{{- include "bind-ha.validateDomain" (list "tsig.transferKeyName" $v.tsig.transferKeyName) }}
{{- include "bind-ha.validateDomain" (list "tsig.updateKeyName" $v.tsig.updateKeyName) }}
{{- if eq ($v.tsig.transferKeyName | lower | trimSuffix ".") ($v.tsig.updateKeyName | lower | trimSuffix ".") }}
{{- fail "tsig.transferKeyName and tsig.updateKeyName must differ: clients holding the update key must not be able to pose as a peer" }}
{{- end }}
{{- with $v.podDisruptionBudget }}
{{- if and .enabled (kindIs "invalid" .minAvailable) (kindIs "invalid" .maxUnavailable) }}
{{- fail "podDisruptionBudget.enabled needs podDisruptionBudget.maxUnavailable or podDisruptionBudget.minAvailable" }}
{{- end }}
{{- end }}
{{- if and $v.metrics.serviceMonitor.enabled (not $v.metrics.enabled) }}
{{- fail "metrics.serviceMonitor.enabled needs metrics.enabled (the ServiceMonitor scrapes the metrics Service)" }}
{{- end }}
{{- range $name := list "dns" "primary" }}
{{- $service := index $v.service $name }}
{{- if and $service.nodePort (not (has $service.type (list "NodePort" "LoadBalancer"))) }}
{{- fail (printf "service.%s.nodePort is only used with service.%s.type NodePort or LoadBalancer (type is %s)" $name $name $service.type) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
client-go's rule, leaseDuration > renewDeadline > 1.2 x retryPeriod, and the agent's: a leader
stops taking writes within renewDeadline + the fence latency (0.5 s) after its last renewal,
and a follower's view of that renewal may be one API request (renewDeadline / 2) late, all
before anyone may take over (leaseDuration). python/bind_ha/settings.py checks the same.
*/}}
{{- define "bind-ha.validateElection" -}}
{{- $lease := float64 .leaseDurationSeconds }}
{{- $renew := float64 .renewDeadlineSeconds }}
{{- $retry := float64 .retryPeriodSeconds }}
{{- if or (le $retry 0.0) (gt $retry 3600.0) }}
{{- fail (printf "election.retryPeriodSeconds must be greater than 0 and at most 3600 (got %v)" .retryPeriodSeconds) }}
{{- end }}
{{- if gt $lease 2147483647.0 }}
{{- fail (printf "election.leaseDurationSeconds must be at most 2147483647 (the Lease's int32; got %v)" .leaseDurationSeconds) }}
{{- end }}
{{- if le $lease $renew }}
{{- fail (printf "election.leaseDurationSeconds (%v) must be greater than election.renewDeadlineSeconds (%v)" .leaseDurationSeconds .renewDeadlineSeconds) }}
{{- end }}
{{- $needed := addf (divf $renew 2.0) 0.5 }}
{{- if le (subf $lease $renew) $needed }}
{{- fail (printf "election.leaseDurationSeconds (%v) - election.renewDeadlineSeconds (%v) must be greater than renewDeadlineSeconds / 2 (the longest API request) + 0.5 s (the fence latency) = %v s: shorten renewDeadlineSeconds or lengthen leaseDurationSeconds" .leaseDurationSeconds .renewDeadlineSeconds $needed) }}
{{- end }}
{{- if le $renew (mulf 1.2 $retry) }}
{{- fail (printf "election.renewDeadlineSeconds (%v) must be greater than 1.2 x election.retryPeriodSeconds (%v)" .renewDeadlineSeconds .retryPeriodSeconds) }}
{{- end }}
{{- end }}

{{/* bind-ha.validateDomain (list "field" value): a domain name as zonemodel.py accepts it. */}}
{{- define "bind-ha.validateDomain" -}}
{{- $field := index . 0 }}
{{- $raw := index . 1 }}
{{- if not (kindIs "string" $raw) }}
{{- fail (printf "%s must be a domain name (got %v)" $field $raw) }}
{{- end }}
{{- $name := $raw | trim | lower | trimSuffix "." }}
{{- if or (not $name) (gt (len $name) 253) }}
{{- fail (printf "%s: %q is not a domain name" $field $raw) }}
{{- end }}
{{- range $label := splitList "." $name }}
{{- if not (regexMatch "^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$" $label) }}
{{- fail (printf "%s: %q is not a domain name (label %q: 1-63 letters, digits, '-' or '_', not starting or ending with '-')" $field $raw $label) }}
{{- end }}
{{- end }}
{{- end }}

{{/* The zones of values: valid names, no name twice, generated or given as a file. */}}
{{- define "bind-ha.validateZones" -}}
{{- $seen := dict }}
{{- range $index, $zone := . }}
{{- $field := printf "zones[%d]" $index }}
{{- include "bind-ha.validateDomain" (list (printf "%s.name" $field) $zone.name) }}
{{- $name := $zone.name | trim | lower | trimSuffix "." }}
{{- if hasKey $seen $name }}
{{- fail (printf "%s.name: zone %q is declared twice (also %s.name); zone names must be unique" $field $name (get $seen $name)) }}
{{- end }}
{{- $_ := set $seen $name $field }}
{{- if $zone.file }}
{{- if or $zone.records $zone.soa $zone.nameservers }}
{{- fail (printf "%s (%s): give either file or soa/nameservers/records, not both" $field $name) }}
{{- end }}
{{- else if not $zone.nameservers }}
{{- fail (printf "%s.nameservers (%s): list at least one name server (or give the whole zone as file)" $field $name) }}
{{- end }}
{{- range $i, $server := $zone.nameservers }}
{{- include "bind-ha.validateHeaderName" (list (printf "%s.nameservers[%d]" $field $i) $server) }}
{{- end }}
{{- range $part := list "mname" "rname" }}
{{- if and $zone.soa (hasKey $zone.soa $part) }}
{{- include "bind-ha.validateHeaderName" (list (printf "%s.soa.%s" $field $part) (index $zone.soa $part)) }}
{{- end }}
{{- end }}
{{- range $part := list "records" "file" }}
{{- if and (hasKey $zone $part) (regexMatch "(?i)\\$include" (toString (index $zone $part))) }}
{{- fail (printf "%s.%s (%s): $INCLUDE is not allowed (a zone source must be self-contained)" $field $part $name) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* bind-ha.validateHeaderName (list "field" value): a name server or SOA name, as zonemodel.header_name. */}}
{{- define "bind-ha.validateHeaderName" -}}
{{- $field := index . 0 }}
{{- $raw := index . 1 }}
{{- if or (not (kindIs "string" $raw)) (gt (len (toString $raw)) 254) (not (regexMatch "^([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\\.)*[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\\.?$" (toString $raw))) }}
{{- fail (printf "%s: %q is not a domain name (letters, digits, '-' and '_' in dot-separated labels)" $field (toString $raw)) }}
{{- end }}
{{- end }}

{{/* No root, no privilege, no hostPath: the chart refuses them whatever the values say. */}}
{{- define "bind-ha.validateSecurity" -}}
{{- $pod := .Values.podSecurityContext | default dict }}
{{- if ne (toString $pod.runAsNonRoot) "true" }}
{{- fail "podSecurityContext.runAsNonRoot must be true (the chart never runs as root)" }}
{{- end }}
{{- range $scope, $context := dict "podSecurityContext" $pod "securityContext" (.Values.securityContext | default dict) }}
{{- range $field := list "runAsUser" "runAsGroup" }}
{{- if and (hasKey $context $field) (eq (int64 (index $context $field)) 0) }}
{{- fail (printf "%s.%s must not be 0 (root)" $scope $field) }}
{{- end }}
{{- end }}
{{- end }}
{{- $container := .Values.securityContext | default dict }}
{{- if $container.privileged }}
{{- fail "securityContext.privileged must be false" }}
{{- end }}
{{- if ne (toString $container.allowPrivilegeEscalation) "false" }}
{{- fail "securityContext.allowPrivilegeEscalation must be false" }}
{{- end }}
{{- if and (hasKey $container "runAsNonRoot") (ne (toString $container.runAsNonRoot) "true") }}
{{- fail "securityContext.runAsNonRoot must be true when set" }}
{{- end }}
{{- if and $container.capabilities $container.capabilities.add }}
{{- fail "securityContext.capabilities.add must be empty (every capability is dropped)" }}
{{- end }}
{{- range $key, $_ := .Values.podLabels }}
{{- if or (hasPrefix "bind-ha.io/" $key) (has $key (list "app.kubernetes.io/name" "app.kubernetes.io/instance" "app.kubernetes.io/component")) }}
{{- fail (printf "podLabels.%s: selector labels and bind-ha.io/ labels are the chart's (the role label routes writes)" $key) }}
{{- end }}
{{- end }}
{{- range $key, $_ := .Values.podAnnotations }}
{{- if hasPrefix "bind-ha.io/" $key }}
{{- fail (printf "podAnnotations.%s: bind-ha.io/ annotations are the agents' own" $key) }}
{{- end }}
{{- end }}
{{- end }}

{{/* tsig.clients: as python/bind_ha/clients.py parses them (names, presets, grants, types). */}}
{{- define "bind-ha.validateTsigClients" -}}
{{- $seen := dict (.Values.tsig.transferKeyName | lower | trimSuffix ".") "tsig.transferKeyName" (.Values.tsig.updateKeyName | lower | trimSuffix ".") "tsig.updateKeyName" "bind-ha-rndc" "the pod-local rndc key" }}
{{- $types := list "A" "AAAA" "CAA" "CNAME" "DNAME" "DS" "HTTPS" "MX" "NAPTR" "NS" "PTR" "SOA" "SRV" "SSHFP" "SVCB" "TLSA" "TXT" "ANY" }}
{{- range $i, $client := .Values.tsig.clients }}
{{- $field := printf "tsig.clients[%d]" $i }}
{{- include "bind-ha.validateDomain" (list (printf "%s.name" $field) $client.name) }}
{{- $name := $client.name | lower | trimSuffix "." }}
{{- if hasKey $seen $name }}
{{- fail (printf "%s.name: key %q is already %s; every key needs its own name" $field $name (get $seen $name)) }}
{{- end }}
{{- $_ := set $seen $name (printf "%s.name" $field) }}
{{- if and $client.preset (not (has $client.preset (list "external-dns" "acme"))) }}
{{- fail (printf "%s.preset must be external-dns or acme (got %q)" $field (toString $client.preset)) }}
{{- end }}
{{- if and (eq (toString $client.preset) "acme") (not $client.names) }}
{{- fail (printf "%s.names: the acme preset needs the domains it may prove" $field) }}
{{- end }}
{{- if and (not $client.preset) (not $client.grants) }}
{{- fail (printf "%s (%s): give a preset (external-dns, acme) or grants" $field $name) }}
{{- end }}
{{- range $list := list "names" "zones" }}
{{- range $j, $item := index $client $list | default list }}
{{- include "bind-ha.validateDomain" (list (printf "%s.%s[%d]" $field $list $j) $item) }}
{{- end }}
{{- end }}
{{- range $j, $grant := $client.grants | default list }}
{{- $where := printf "%s.grants[%d]" $field $j }}
{{- if not (has $grant.match (list "name" "subdomain" "wildcard" "zonesub")) }}
{{- fail (printf "%s.match must be name, subdomain, wildcard or zonesub" $where) }}
{{- end }}
{{- if not $grant.types }}
{{- fail (printf "%s.types must list at least one record type" $where) }}
{{- end }}
{{- range $k, $type := $grant.types }}
{{- if not (has $type $types) }}
{{- fail (printf "%s.types[%d]: %q is not one of %s" $where $k (toString $type) (join ", " $types)) }}
{{- end }}
{{- end }}
{{- if eq $grant.match "zonesub" }}
{{- if $grant.name }}
{{- fail (printf "%s.name: a zonesub grant covers the whole zone and takes no name" $where) }}
{{- end }}
{{- else if eq $grant.match "wildcard" }}
{{- if not (hasPrefix "*." (toString $grant.name)) }}
{{- fail (printf "%s.name: a wildcard grant's name starts with '*.'" $where) }}
{{- end }}
{{- include "bind-ha.validateDomain" (list (printf "%s.name" $where) (trimPrefix "*." $grant.name)) }}
{{- else }}
{{- include "bind-ha.validateDomain" (list (printf "%s.name" $where) $grant.name) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* Response rate limiting: the exempt networks end up in named.conf. */}}
{{- define "bind-ha.validateRrl" -}}
{{- if not (has .mode (list "auto" "always" "never")) }}
{{- fail (printf "rrl.mode must be auto, always or never (got %q)" (toString .mode)) }}
{{- end }}
{{- range $i, $network := .exemptClients }}
{{- if not (regexMatch "^[0-9a-fA-F.:]+(/[0-9]{1,3})?$" (toString $network)) }}
{{- fail (printf "rrl.exemptClients[%d]: %q is not an address or CIDR" $i (toString $network)) }}
{{- end }}
{{- end }}
{{- end }}
