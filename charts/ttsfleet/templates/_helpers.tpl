{{/*
Names, labels, images and RBAC rules shared by every template of the chart.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "ttsfleet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The prefix of every object name: fullnameOverride, else the release name with the chart name. */}}
{{- define "ttsfleet.fullname" -}}
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

{{- define "ttsfleet.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Labels of every object. Call with (dict "ctx" $ "component" "operator").
*/}}
{{- define "ttsfleet.labels" -}}
helm.sh/chart: {{ include "ttsfleet.chart" .ctx }}
{{ include "ttsfleet.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: ttsfleet
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
{{- end -}}

{{/*
The labels that select pods: never change for a release (Deployment selectors are immutable).
*/}}
{{- define "ttsfleet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ttsfleet.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "ttsfleet.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "ttsfleet.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
An image reference from {repository, tag, digest}: a digest pins it; the tag defaults to appVersion.
Call with (dict "image" .Values.image "ctx" $).
*/}}
{{- define "ttsfleet.image" -}}
{{- $tag := default .ctx.Chart.AppVersion .image.tag -}}
{{- if .image.digest -}}
{{- printf "%s@%s" .image.repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" .image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* True (non-empty) when the operator serves a list of namespaces instead of the cluster. */}}
{{- define "ttsfleet.namespaced" -}}
{{- if .Values.operator.watchNamespaces -}}true{{- end -}}
{{- end -}}

{{/*
RBAC rules for everything the operator does inside a namespace it serves. Used by the ClusterRole
(cluster mode) and by each namespace's Role (namespaced mode). No wildcards; see docs/security.md.
*/}}
{{- define "ttsfleet.namespacedRules" -}}
# TTSBackends: watched, patched by kopf (its finalizer and progress annotations), status written.
- apiGroups: ["ttsfleet.io"]
  resources: ["ttsbackends"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["ttsfleet.io"]
  resources: ["ttsbackends/status"]
  verbs: ["patch"]
# Children carry blockOwnerDeletion: true; where OwnerReferencesPermissionEnforcement admits objects
# (OpenShift, hardened clusters), setting it needs update on the owner's finalizers, or every create
# is refused with 403. No finalizer is ever written through it.
- apiGroups: ["ttsfleet.io"]
  resources: ["ttsbackends/finalizers"]
  verbs: ["update"]
# Children of a TTSBackend: read by name, created or patched when their rendering changes, deleted when
# the spec stops asking for them. Deployments and HPAs are also watched (label-filtered), for probe ticks:
# the HPA's replicas and conditions are mirrored into the backend's status.
- apiGroups: [""]
  resources: ["configmaps", "services"]
  verbs: ["get", "create", "patch", "delete"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "create", "patch", "delete"]
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["get", "create", "patch", "delete"]
{{- if .Values.rbac.serviceMonitors }}
- apiGroups: ["monitoring.coreos.com"]
  resources: ["servicemonitors"]
  verbs: ["get", "create", "patch", "delete"]
{{- end }}
# Secrets: read-only, and never by name. The operator fingerprints the Deepgram key to follow rotations
# and lists and watches only Secrets labelled ttsfleet.io/watch=true (RBAC cannot scope by label;
# docs/security.md), so it needs no `get`: a Secret without the label stays invisible to it.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["list", "watch"]
{{- if .Values.rbac.keyRotation }}
# Key rotation (spec.keyManagement): the operator writes the minted key into the key Secret.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["patch"]
{{- end }}
# Pods: watched by label to read each gateway's /statusz (fleet status, key fingerprints).
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch"]
# Events with domain reasons (CredentialRotated, UpstreamAuthFailed, ...), posted by kopf and by us.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- if and .Values.operator.peering.enabled (include "ttsfleet.namespaced" .) }}
# kopf peering, namespaced flavour: one KopfPeering per served namespace.
- apiGroups: ["kopf.dev"]
  resources: ["kopfpeerings"]
  verbs: ["list", "watch", "patch"]
{{- end }}
{{- end -}}

{{/*
RBAC rules for cluster-scoped objects kopf reads: CRDs for resource discovery in both modes;
ClusterKopfPeerings only when serving the whole cluster with peering on.
*/}}
{{- define "ttsfleet.clusterRules" -}}
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["list", "watch"]
{{- if not (include "ttsfleet.namespaced" .) }}
{{- if .Values.operator.peering.enabled }}
- apiGroups: ["kopf.dev"]
  resources: ["clusterkopfpeerings"]
  verbs: ["list", "watch", "patch"]
{{- end }}
{{- end }}
{{- end -}}
