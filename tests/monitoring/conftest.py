"""What the real gateway and operator export, scraped once per test session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.monitoring.scrapes import Exported, gateway_scrape, operator_scrape


@pytest.fixture(scope="session")
def gateway_exports(process_logs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exported]:
    with gateway_scrape(process_logs, tmp_path_factory.mktemp("monitoring-gateway")) as exported:
        yield exported


@pytest.fixture(scope="session")
def operator_exports(process_logs: Path) -> Exported:
    return operator_scrape(process_logs)
