{{/*
Checks values.schema.json cannot express (or that must hold even with
--skip-schema-validation). Every message names the value at fault.
Included once, from server-statefulset.yaml.
*/}}
{{- define "bind-ha.validate" -}}
{{- $v := .Values }}
{{- if lt (int $v.replicaCount) 1 }}
{{- fail (printf "replicaCount must be at least 1 (got %v)" $v.replicaCount) }}
{{- end }}
{{- include "bind-ha.validateElection" $v.election }}
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
{{- if le $retry 0.0 }}
{{- fail (printf "election.retryPeriodSeconds must be greater than 0 (got %v)" .retryPeriodSeconds) }}
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
{{- end }}
{{- end }}
