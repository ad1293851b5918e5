"""The gateway Deployment: restricted pods, drained exits, hash-driven rollouts, spread placement."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ttsfleet import contracts
from ttsfleet.operator import api, rendering
from ttsfleet.operator.rendering import OwnerRef, config, draining

BackendOf = Callable[..., api.TTSBackend]


def deployment_of(backend: api.TTSBackend, owner: OwnerRef, secret_hash: str | None = None) -> dict[str, Any]:
    return rendering.render_deployment(backend, owner, config.config_hash(backend.spec), secret_hash)


def pod_of(deployment: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return pod


def test_pods_meet_pod_security_restricted(backend_of: BackendOf, owner: OwnerRef) -> None:
    pod = pod_of(deployment_of(backend_of(), owner))
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    tmp = next(mount for mount in container["volumeMounts"] if mount["mountPath"] == "/tmp")
    assert next(volume for volume in pod["volumes"] if volume["name"] == tmp["name"])["emptyDir"]


def test_container_runs_the_dataplane_with_the_mounted_config(backend_of: BackendOf, owner: OwnerRef) -> None:
    (container,) = pod_of(deployment_of(backend_of(), owner))["containers"]
    assert container["args"] == ["ttsfleet", "dataplane", "--config", "/etc/ttsfleet/config.yaml"]
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert container["env"][0]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}


def test_probes_keep_liveness_away_from_upstream_health(backend_of: BackendOf, owner: OwnerRef) -> None:
    (container,) = pod_of(deployment_of(backend_of(), owner))["containers"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    assert container["startupProbe"]["httpGet"] == {"path": "/livez", "port": "http"}


def test_secrets_are_whole_volumes_at_the_contract_paths(backend_of: BackendOf, owner: OwnerRef) -> None:
    backend = backend_of(deepgram={"apiKeySecretRef": {"name": "dg", "key": "key-2026"}})
    pod = pod_of(deployment_of(backend, owner))
    (container,) = pod["containers"]
    mounts = {mount["name"]: mount for mount in container["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert all("subPath" not in mount for mount in mounts.values())
    key_mount, key_volume = mounts["deepgram-key"], volumes["deepgram-key"]["secret"]
    key_file = f"{key_mount['mountPath']}/{key_volume['items'][0]['path']}"
    assert key_file == contracts.DEEPGRAM_KEY_FILE
    assert key_volume["secretName"] == "dg"
    assert key_volume["items"][0]["key"] == "key-2026"
    tokens_file = (
        f"{mounts['client-tokens']['mountPath']}/{volumes['client-tokens']['secret']['items'][0]['path']}"
    )
    assert tokens_file == contracts.TOKENS_FILE
    assert volumes["config"]["configMap"]["name"] == "aura-en-config"


def test_no_tokens_volume_when_auth_is_off(backend_of: BackendOf, owner: OwnerRef) -> None:
    pod = pod_of(deployment_of(backend_of(auth={"enabled": False, "clientTokensSecretRef": None}), owner))
    assert "client-tokens" not in {volume["name"] for volume in pod["volumes"]}
    assert "client-tokens" not in {mount["name"] for mount in pod["containers"][0]["volumeMounts"]}


def test_grace_period_covers_propagation_drain_and_shutdown(backend_of: BackendOf, owner: OwnerRef) -> None:
    backend = backend_of(rollout={"drainTimeoutSeconds": 90, "preStopDelaySeconds": 7})
    pod = pod_of(deployment_of(backend, owner))
    assert pod["terminationGracePeriodSeconds"] >= 90 + 7
    pre_stop = pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[:2] == ["python3", "-c"]
    assert pre_stop[3:] == ["7"]  # waits while the endpoint goes; the SIGTERM after it drains
    compile(pre_stop[2], "<preStop>", "exec")


def test_rollout_surges_and_never_drops_a_ready_pod(backend_of: BackendOf, owner: OwnerRef) -> None:
    spec = deployment_of(backend_of(rollout={"maxSurge": 2, "minReadySeconds": 9}), owner)["spec"]
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 2},
    }
    assert spec["minReadySeconds"] == 9
    assert spec["progressDeadlineSeconds"] == 600


@pytest.mark.parametrize(
    ("overrides", "replicas"),
    [
        pytest.param({}, 1, id="default-one"),
        pytest.param({"replicas": 4}, 4, id="fixed"),
        pytest.param({"autoscaling": {}}, None, id="hpa-owns-replicas"),
    ],
)
def test_replicas_are_written_only_without_an_autoscaler(
    backend_of: BackendOf, owner: OwnerRef, overrides: dict[str, Any], replicas: int | None
) -> None:
    assert deployment_of(backend_of(**overrides), owner)["spec"].get("replicas") == replicas


def test_config_hash_goes_on_the_pod_template(backend_of: BackendOf, owner: OwnerRef) -> None:
    backend = backend_of()
    annotations = deployment_of(backend, owner, "fp")["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {"ttsfleet.io/config-hash": config.config_hash(backend.spec)}


def test_restart_rotation_puts_the_key_fingerprint_on_the_template(
    backend_of: BackendOf, owner: OwnerRef
) -> None:
    backend = backend_of(rotation={"strategy": "restart"})
    annotations = deployment_of(backend, owner, "0123456789ab")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["ttsfleet.io/secret-hash"] == "0123456789ab"
    unknown = deployment_of(backend, owner, None)["spec"]["template"]["metadata"]["annotations"]
    assert "ttsfleet.io/secret-hash" not in unknown


def test_pods_spread_over_zones_and_hosts_per_replica_set(backend_of: BackendOf, owner: OwnerRef) -> None:
    constraints = pod_of(deployment_of(backend_of(), owner))["topologySpreadConstraints"]
    assert [constraint["topologyKey"] for constraint in constraints] == [
        "topology.kubernetes.io/zone",
        "kubernetes.io/hostname",
    ]
    assert all(constraint["matchLabelKeys"] == ["pod-template-hash"] for constraint in constraints)
    assert all(constraint["whenUnsatisfiable"] == "ScheduleAnyway" for constraint in constraints)


def test_spreading_can_be_turned_off(backend_of: BackendOf, owner: OwnerRef) -> None:
    pod = pod_of(deployment_of(backend_of(scheduling={"topologySpread": {"enabled": False}}), owner))
    assert "topologySpreadConstraints" not in pod


def test_scheduling_fields_pass_through(backend_of: BackendOf, owner: OwnerRef) -> None:
    scheduling = {
        "nodeSelector": {"pool": "voice"},
        "tolerations": [{"key": "voice", "operator": "Exists"}],
        "affinity": {"nodeAffinity": {"x": 1}},
        "priorityClassName": "voice-critical",
    }
    pod = pod_of(deployment_of(backend_of(scheduling=scheduling), owner))
    assert pod["nodeSelector"] == {"pool": "voice"}
    assert pod["tolerations"] == [{"key": "voice", "operator": "Exists"}]
    assert pod["affinity"] == {"nodeAffinity": {"x": 1}}
    assert pod["priorityClassName"] == "voice-critical"


def test_resources_and_pull_policy_come_from_the_spec(backend_of: BackendOf, owner: OwnerRef) -> None:
    backend = backend_of(
        resources={"requests": {"cpu": 2}, "limits": {"memory": "1Gi"}}, imagePullPolicy="Always"
    )
    (container,) = pod_of(deployment_of(backend, owner))["containers"]
    # A given map replaces the default map, as the apiserver's defaulting does.
    assert container["resources"] == {"requests": {"cpu": 2}, "limits": {"memory": "1Gi"}}
    assert container["imagePullPolicy"] == "Always"


def test_termination_grace_adds_the_margin() -> None:
    rollout = api.RolloutSpec(drain_timeout_seconds=10, pre_stop_delay_seconds=2)
    assert draining.termination_grace_seconds(rollout) == 12 + draining.SHUTDOWN_MARGIN_S
