"""The operator's watch filters select what rendering writes: its children and its gateway pods."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ttsfleet.operator import api, rendering
from ttsfleet.operator.rendering import OwnerRef, meta

BackendOf = Callable[..., api.TTSBackend]
EVERYTHING = {"autoscaling": {"minReplicas": 2}, "networkPolicy": {"enabled": True}}


def selected(selector: str, labels: Mapping[str, str]) -> bool:
    """Whether an equality-based label selector, as the API reads it, matches `labels`."""
    return all(
        labels.get(key) == value for key, _, value in (part.partition("=") for part in selector.split(","))
    )


def test_the_children_filter_selects_every_rendered_child(backend_of: BackendOf, owner: OwnerRef) -> None:
    for child in rendering.render_children(backend_of(**EVERYTHING), owner, None):
        labels = child["metadata"]["labels"]
        assert selected(meta.MANAGED_CHILDREN, labels), child["kind"]
        assert meta.CHILD_LABELS.items() <= labels.items(), child["kind"]


def test_the_pod_filter_selects_the_deployments_pods(backend_of: BackendOf, owner: OwnerRef) -> None:
    (deployment,) = (
        child
        for child in rendering.render_children(backend_of(), owner, None)
        if child["kind"] == "Deployment"
    )
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selected(meta.GATEWAY_PODS, labels)
    assert meta.GATEWAY_POD_LABELS.items() <= labels.items()


def test_the_secret_filter_is_the_watch_label() -> None:
    assert meta.WATCHED_SECRETS == "ttsfleet.io/watch=true"
    assert selected(meta.WATCHED_SECRETS, meta.SECRET_LABELS)
