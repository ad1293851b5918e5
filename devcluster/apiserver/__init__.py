"""An embedded Kubernetes API (kmock's KubernetesEmulator, extended) for operator tests and the local fleet.

Good enough for kopf and `kubectl --validate=false`: resourceVersions, generations, finalizers, watches
with resume and selectors, PUT/patch with conflicts, status and scale subresources, ownerReference GC,
CRDs served once stored, server-side Tables (so `kubectl get ttsb` prints the CRD's columns), and an
audit log. It keeps everything in memory and enforces no schema,
authentication or authorization; it is a developer tool, not a cluster.
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
