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

{{- define "vpcep.gatewayChannelServiceName" -}}
{{- printf "%s-gateway-channel" (include "vpcep.prefix" .) -}}
{{- end -}}

{{- define "vpcep.gatewayChannelSecretName" -}}
{{- printf "%s-gateway-channel-tls" (include "vpcep.prefix" .) -}}
{{- end -}}

{{- /* Where the gateway agents reach the operator's gateway channel (R45). */ -}}
{{- define "vpcep.gatewayChannelURL" -}}
{{- printf "https://%s.%s.svc:%d" (include "vpcep.gatewayChannelServiceName" .) .Release.Namespace (int .Values.gateway.apiChannel.port) -}}
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
{{- $operatorPorts := list (int .Values.operator.healthPort) (int .Values.operator.readinessPort) (int .Values.webhook.port) }}
{{- if ne (len $operatorPorts) (len (uniq $operatorPorts)) }}
{{- fail (printf "operator.healthPort (%v), operator.readinessPort (%v) and webhook.port (%v) must differ" .Values.operator.healthPort .Values.operator.readinessPort .Values.webhook.port) }}
{{- end }}
{{- end -}}

{{/* The operator's rights in each namespace it serves: every namespace (in its ClusterRole) or, with
     watchNamespaces, those and its own (a Role in each). See docs/rbac.md. */}}
{{- define "vpcep.operatorNamespacedRules" -}}
# The four kinds: reconcile, add/remove the finalizer, keep kopf's progress annotations.
- apiGroups: [vpcep.io]
  resources: [endpointservices, endpoints, whitelists, endpointconnections]
  verbs: [get, list, watch, patch, update]
- apiGroups: [vpcep.io]
  resources: [endpointservices/status, endpoints/status, whitelists/status, endpointconnections/status]
  verbs: [get, patch, update]
# The operator creates and removes the provider-side EndpointConnection of each Endpoint (R10).
- apiGroups: [vpcep.io]
  resources: [endpointconnections]
  verbs: [create, delete]
# Backends: a Service or a Pod in the provider namespace (R1), watched as metadata only.
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
# The consumer-namespace ClusterIP Service of each Endpoint (its node IP, R18) and its EndpointSlice;
# Services are also backends (read above).
- apiGroups: [""]
  resources: [services]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [get, list, watch, create, patch, update, delete]
# Provider-side ingress from the gateways (R31) and consumer-side egress for Gateway-type endpoints (R38).
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, list, watch, create, patch, update, delete]
# The quota ConfigMap vpcep-quota in each tenant namespace (R41); `create` cannot be limited by name.
# No list/watch: the operator watches ConfigMaps in its own namespace only (Role below).
- apiGroups: [""]
  resources: [configmaps]
  verbs: [create]
- apiGroups: [""]
  resources: [configmaps]
  resourceNames: [vpcep-quota]
  verbs: [get, patch, update, delete]
# Every state change is an Event on the object (R39).
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [create, patch, update]
{{- end -}}

{{/* With watchNamespaces: the namespaces served (the listed ones plus the release namespace), sorted. */}}
{{- define "vpcep.servedNamespaces" -}}
{{- toJson (dict "list" (append .Values.watchNamespaces .Release.Namespace | uniq | sortAlpha)) -}}
{{- end -}}

{{/* With watchNamespaces: namespaces of cloud-service backends outside the served ones (e.g. kube-system). */}}
{{- define "vpcep.backendOnlyNamespaces" -}}
{{- $served := (include "vpcep.servedNamespaces" . | fromJson).list }}
{{- $extra := list }}
{{- range .Values.cloudServices }}
{{- $ns := .backend.namespace | default $.Release.Namespace }}
{{- if not (has $ns $served) }}{{ $extra = append $extra $ns }}{{ end }}
{{- end }}
{{- toJson (dict "list" ($extra | uniq | sortAlpha)) -}}
{{- end -}}

{{/* Who may reach the admission webhook port (R46), as {"list": [CIDR...], "found": how}: webhook.allowedCIDRs
     when set; otherwise the API server's own addresses, read at install from the EndpointSlice kube-apiserver
     keeps for the `kubernetes` Service (Helm's lookup); where Helm cannot look (`helm template`, GitOps
     renderers) every source, which NOTES.txt reports. */}}
{{- define "vpcep.webhookSources" -}}
{{- $cidrs := list }}
{{- $found := "values" }}
{{- if .Values.webhook.allowedCIDRs }}
{{- $cidrs = .Values.webhook.allowedCIDRs }}
{{- else }}
{{- $slice := lookup "discovery.k8s.io/v1" "EndpointSlice" "default" "kubernetes" }}
{{- range ($slice.endpoints | default list) }}
{{- range .addresses }}
{{- $cidrs = append $cidrs (printf "%s/%s" . (ternary "128" "32" (contains ":" .))) }}
{{- end }}
{{- end }}
{{- $found = "api-server" }}
{{- if not $cidrs }}
{{- $cidrs = list "0.0.0.0/0" "::/0" }}
{{- $found = "everyone" }}
{{- end }}
{{- end }}
{{- toJson (dict "list" ($cidrs | uniq) "found" $found) -}}
{{- end -}}

{{- /* The API server's own addresses and ports, as kube-apiserver publishes them in the `kubernetes` Service and
     EndpointSlice of `default`, read by `helm install/upgrade` (lookup). Where Helm cannot read the cluster
     (`helm template`, GitOps renderers) `found` is false and the callers fall back (R45). */}}
{{- define "vpcep.apiServerEndpoints" -}}
{{- $cidrs := list }}
{{- $rules := list }}
{{- $slice := lookup "discovery.k8s.io/v1" "EndpointSlice" "default" "kubernetes" }}
{{- $slicePorts := list }}
{{- range ($slice.ports | default list) }}{{ $slicePorts = append $slicePorts .port }}{{ end }}
{{- range ($slice.endpoints | default list) }}
{{- range .addresses }}
{{- $cidr := printf "%s/%s" . (ternary "128" "32" (contains ":" .)) }}
{{- $cidrs = append $cidrs $cidr }}
{{- $rules = append $rules (dict "cidr" $cidr "ports" $slicePorts) }}
{{- end }}
{{- end }}
{{- $service := lookup "v1" "Service" "default" "kubernetes" }}
{{- if $service }}
{{- $servicePorts := list }}
{{- range ($service.spec.ports | default list) }}{{ $servicePorts = append $servicePorts .port }}{{ end }}
{{- range ($service.spec.clusterIPs | default (list $service.spec.clusterIP)) }}
{{- $cidr := printf "%s/%s" . (ternary "128" "32" (contains ":" .)) }}
{{- $cidrs = append $cidrs $cidr }}
{{- $rules = append $rules (dict "cidr" $cidr "ports" $servicePorts) }}
{{- end }}
{{- end }}
{{- toJson (dict "cidrs" ($cidrs | uniq) "rules" $rules "found" (gt (len $slicePorts) 0)) -}}
{{- end -}}
