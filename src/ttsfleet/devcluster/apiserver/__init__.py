"""An embedded Kubernetes API (kmock's KubernetesEmulator, extended) for operator tests and the local fleet.

Good enough for kopf and `kubectl --validate=false`: resourceVersions, generations, finalizers, watches
with resume and selectors, PUT/patch with conflicts, status and scale subresources, ownerReference GC,
CRDs served once stored, server-side Tables (so `kubectl get ttsb` prints the CRD's columns), and an
audit log. Where an operator could tell it from a real API server, it answers as one: add-on groups
404 until their CRDs are applied, RBAC from the stored Roles and bindings for callers named by
User-Agent (403, and `blockOwnerDeletion` needs `update` on the owner's finalizers), 422 for built-in
children failing upstream schemas or pod rules and for custom resources failing their CRD's schema
or CEL rules (/scale included), 415 for strategic merge on custom resources, and kubectl's protobuf
creates. It keeps everything in memory and has no authentication; it is a developer tool, not a cluster.
"""

from ttsfleet.devcluster.apiserver.audit import AuditLog, AuditRecord
from ttsfleet.devcluster.apiserver.emulator import ApiServer
from ttsfleet.devcluster.apiserver.kubeconfig import kubeconfig_document, write_kubeconfig
from ttsfleet.devcluster.apiserver.resources import BUILTIN_RESOURCES, ResourceSpec, ScaleSpec
from ttsfleet.devcluster.apiserver.serving import running_apiserver, serve

__all__ = [
    "BUILTIN_RESOURCES",
    "ApiServer",
    "AuditLog",
    "AuditRecord",
    "ResourceSpec",
    "ScaleSpec",
    "kubeconfig_document",
    "running_apiserver",
    "serve",
    "write_kubeconfig",
]
