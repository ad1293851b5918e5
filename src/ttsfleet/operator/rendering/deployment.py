"""The gateway Deployment: hardened pods, drained on exit, rolled by hash, spread over failure domains.

The replica count is written only when no autoscaler owns it; config (and, in restart rotation,
key) changes roll out through pod-template annotations with maxUnavailable 0.
"""

from __future__ import annotations

from typing import Any

from ttsfleet import contracts
from ttsfleet.operator import api
from ttsfleet.operator.rendering import config, draining, meta

CONTAINER_NAME = "gateway"
# A fixed non-root identity; the image must not need root (Pod Security "restricted").
RUN_AS_UID = 10001
SECRET_FILE_MODE = 0o440
REVISION_HISTORY_LIMIT = 5
TMP_SIZE_LIMIT = "256Mi"
ZONE_KEY = "topology.kubernetes.io/zone"
HOSTNAME_KEY = "kubernetes.io/hostname"


def render_deployment(
    backend: api.TTSBackend, owner: meta.OwnerRef, config_hash: str, secret_hash: str | None = None
) -> dict[str, Any]:
    """The Deployment; `secret_hash` (the key's fingerprint) rolls pods only in restart rotation."""
    spec = backend.spec
    deployment_spec: dict[str, Any] = {
        "selector": {"matchLabels": meta.selector_labels(backend)},
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": spec.rollout.max_surge},
        },
        "minReadySeconds": spec.rollout.min_ready_seconds,
        "progressDeadlineSeconds": spec.rollout.progress_deadline_seconds,
        "revisionHistoryLimit": REVISION_HISTORY_LIMIT,
        "template": _pod_template(backend, config_hash, secret_hash),
    }
    if spec.fixed_replicas is not None:
        deployment_spec["replicas"] = spec.fixed_replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta.metadata(backend, owner),
        "spec": deployment_spec,
    }


def _pod_template(backend: api.TTSBackend, config_hash: str, secret_hash: str | None) -> dict[str, Any]:
    spec = backend.spec
    annotations = {meta.CONFIG_HASH_ANNOTATION: config_hash}
    if spec.rotation.strategy is api.RotationStrategy.RESTART and secret_hash is not None:
        annotations[meta.SECRET_HASH_ANNOTATION] = secret_hash
    pod_spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        # Service links would add an env var per Service in the namespace: noise, and a leak of names.
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS_UID,
            "runAsGroup": RUN_AS_UID,
            "fsGroup": RUN_AS_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "terminationGracePeriodSeconds": draining.termination_grace_seconds(spec.rollout),
        "containers": [_container(spec)],
        "volumes": _volumes(backend),
    }
    pod_spec.update(_scheduling(backend))
    return {"metadata": {"labels": meta.labels(backend), "annotations": annotations}, "spec": pod_spec}


def _container(spec: api.TTSBackendSpec) -> dict[str, Any]:
    mounts = [
        {"name": "config", "mountPath": contracts.CONFIG_DIR, "readOnly": True},
        {"name": "deepgram-key", "mountPath": contracts.DEEPGRAM_KEY_DIR, "readOnly": True},
        {"name": "shares", "mountPath": contracts.SHARES_DIR, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - a private emptyDir, not a shared /tmp
    ]
    if spec.auth.enabled:
        mounts.insert(2, {"name": "client-tokens", "mountPath": contracts.TOKENS_DIR, "readOnly": True})
    return {
        "name": CONTAINER_NAME,
        "image": spec.image,
        "imagePullPolicy": spec.image_pull_policy.value,
        "args": ["ttsfleet", "dataplane", "--config", contracts.CONFIG_FILE],
        "env": [
            {"name": "TTSFLEET_SERVER__POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        ],
        "ports": [{"name": "http", "containerPort": config.CONTAINER_PORT, "protocol": "TCP"}],
        # Startup and liveness ask only whether the process is alive: a refused key or an unreachable
        # Deepgram must never restart pods. Readiness asks whether a new session can be taken.
        "startupProbe": _http_probe("/livez", period_s=2, timeout_s=2, failures=30),
        "readinessProbe": _http_probe("/readyz", period_s=5, timeout_s=2, failures=2),
        "livenessProbe": _http_probe("/livez", period_s=10, timeout_s=3, failures=3),
        "lifecycle": {"preStop": draining.render_pre_stop(spec.rollout)},
        "resources": {"requests": dict(spec.resources.requests), "limits": dict(spec.resources.limits)},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": mounts,
    }


def _http_probe(path: str, *, period_s: int, timeout_s: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period_s,
        "timeoutSeconds": timeout_s,
        "failureThreshold": failures,
    }


def _secret_volume(name: str, ref: api.SecretKeyRef, file_name: str) -> dict[str, Any]:
    # A whole-volume mount (never subPath): the kubelet refreshes it when the Secret changes.
    return {
        "name": name,
        "secret": {
            "secretName": ref.name,
            "items": [{"key": ref.key, "path": file_name}],
            "defaultMode": SECRET_FILE_MODE,
        },
    }


def _volumes(backend: api.TTSBackend) -> list[dict[str, Any]]:
    spec = backend.spec
    volumes = [
        {"name": "config", "configMap": {"name": meta.config_map_name(backend.metadata.name)}},
        _secret_volume("deepgram-key", spec.deepgram.api_key_secret_ref, contracts.DEEPGRAM_KEY_NAME),
        # Optional: the operator writes it after the first division; until then a pod has no share.
        {"name": "shares", "configMap": {"name": meta.shares_config_map_name(backend), "optional": True}},
        {"name": "tmp", "emptyDir": {"sizeLimit": TMP_SIZE_LIMIT}},
    ]
    tokens = spec.auth.client_tokens_secret_ref
    if spec.auth.enabled and tokens is not None:
        volumes.insert(2, _secret_volume("client-tokens", tokens, contracts.TOKENS_NAME))
    return volumes


def _scheduling(backend: api.TTSBackend) -> dict[str, Any]:
    scheduling = backend.spec.scheduling
    out: dict[str, Any] = {}
    if scheduling.node_selector:
        out["nodeSelector"] = dict(scheduling.node_selector)
    if scheduling.tolerations:
        out["tolerations"] = [dict(toleration) for toleration in scheduling.tolerations]
    if scheduling.affinity:
        out["affinity"] = dict(scheduling.affinity)
    if scheduling.priority_class_name:
        out["priorityClassName"] = scheduling.priority_class_name
    spread = scheduling.topology_spread
    if spread.enabled:
        out["topologySpreadConstraints"] = [
            {
                "topologyKey": key,
                "maxSkew": spread.max_skew,
                "whenUnsatisfiable": spread.when_unsatisfiable.value,
                "labelSelector": {"matchLabels": meta.selector_labels(backend)},
                # Spread each ReplicaSet on its own, so a rollout does not skew against old pods.
                "matchLabelKeys": ["pod-template-hash"],
            }
            for key in (ZONE_KEY, HOSTNAME_KEY)
        ]
    return out
