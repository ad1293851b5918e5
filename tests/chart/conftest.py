"""The chart rendered once per values set the tests look at."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.helm import CLUSTER_VALUES, NAMESPACED_VALUES, Manifest, helm, render

__all__ = ["helm"]  # the fixture, re-exported for the tests in this folder


@pytest.fixture(scope="session")
def default_manifests(helm: Path) -> list[Manifest]:
    """Default values: cluster mode, peering on, monitoring off."""
    return render(helm)


@pytest.fixture(scope="session")
def cluster_manifests(helm: Path) -> list[Manifest]:
    """Cluster mode with ServiceMonitor, PrometheusRule and dashboard on, peering off."""
    return render(helm, [CLUSTER_VALUES])


@pytest.fixture(scope="session")
def namespaced_manifests(helm: Path) -> list[Manifest]:
    """Namespaced mode (two namespaces) with every optional part on."""
    return render(helm, [NAMESPACED_VALUES])


@pytest.fixture(scope="session", params=["default", "cluster", "namespaced"])
def manifests(
    request: pytest.FixtureRequest,
    default_manifests: list[Manifest],
    cluster_manifests: list[Manifest],
    namespaced_manifests: list[Manifest],
) -> list[Manifest]:
    """Each rendered values set in turn."""
    return {"default": default_manifests, "cluster": cluster_manifests, "namespaced": namespaced_manifests}[
        request.param
    ]
