{{/* Prefix of every namespaced object: the release name (release "vpcep" gives vpcep-operator, vpcep-gateway). */}}
{{- define "vpcep.prefix" -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "vpcep.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{- define "vpcep.labels" -}}
app.kubernetes.io/part-of: vpcep
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Pod selector labels; the gateway ones are also what provider NetworkPolicies admit (R31). */}}
{{- define "vpcep.operatorSelector" -}}
app.kubernetes.io/name: vpcep-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "vpcep.gatewaySelector" -}}
app.kubernetes.io/name: vpcep-gateway
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "vpcep.webhookServiceName" -}}
{{- printf "%s-webhook" (include "vpcep.prefix" .) -}}
{{- end -}}

{{- define "vpcep.webhookSecretName" -}}
{{- printf "%s-webhook-tls" (include "vpcep.prefix" .) -}}
{{- end -}}

{{/* Pod-level and container-level hardening shared by both Deployments (R36). */}}
{{- define "vpcep.podSecurity" -}}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Cross-field checks JSON schema cannot express; each names the keys to fix. */}}
{{- define "vpcep.validate" -}}
{{- $ports := .Values.gateway.ports }}
{{- if lt (int $ports.last) (int $ports.first) }}
{{- fail (printf "gateway.ports.last (%v) must be >= gateway.ports.first (%v)" $ports.last $ports.first) }}
{{- end }}
{{- $health := int .Values.gateway.healthPort }}
{{- if and (ge $health (int $ports.first)) (le $health (int $ports.last)) }}
{{- fail (printf "gateway.healthPort (%v) lies inside gateway.ports (%v-%v), which endpoints use" $health $ports.first $ports.last) }}
{{- end }}
{{- end -}}
