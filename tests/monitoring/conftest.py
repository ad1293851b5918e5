"""What the real gateway and operator export, scraped once per test session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.monitoring.scrapes import Exported, gateway_scrape, operator_scrape
from tests.support.helm import CLUSTER_VALUES, Manifest, helm, render

__all__ = ["helm"]  # the fixture, re-exported for the tests in this folder


@pytest.fixture(scope="session")
def cluster_manifests(helm: Path) -> list[Manifest]:
    """The chart with its PrometheusRule and dashboard on."""
    return render(helm, [CLUSTER_VALUES])


@pytest.fixture(scope="session")
def gateway_exports(process_logs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exported]:
    with gateway_scrape(process_logs, tmp_path_factory.mktemp("monitoring-gateway")) as exported:
        yield exported


@pytest.fixture(scope="session")
def operator_exports(process_logs: Path) -> Exported:
    return operator_scrape(process_logs)
