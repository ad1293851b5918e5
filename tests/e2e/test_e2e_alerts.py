"""The real Prometheus evaluates the chart's rules against the local fleet: an alert fires and resolves.

Prometheus (Debian's `prometheus` package, installed by `make install`) scrapes the operator's /metrics
as the chart's ServiceMonitor does (job `<release>-ttsfleet-metrics`, `honorLabels`) and loads the
PrometheusRule's groups as rendered. Only each alert's `for` is set to 0 s, so the test waits seconds,
not the ten minutes production waits; the expressions are the shipped ones.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.e2e.cluster import Cluster, is_converged
from tests.e2e.conftest import CONVERGE_DEADLINE_S, NAME, NAMESPACE, LocalFleet
from tests.support.helm import CLUSTER_VALUES, RELEASE, RELEASE_NAMESPACE, Manifest, helm, one, render
from tests.support.tools import require_tool
from tests.support.waiting import eventually, wait_for
from ttsfleet.devcluster.ports import free_port

__all__ = ["helm"]  # the fixture

pytestmark = pytest.mark.slow
DEEPGRAM_SECRET = f"/api/v1/namespaces/{NAMESPACE}/secrets/aura-en-deepgram"
ALERT = "TTSBackendNotReady"
ALERT_DEADLINE_S = 60.0
PROMETHEUS_HINT = "run `make install` (it installs Debian's `prometheus` package)"


def fast_rules(manifests: list[Manifest]) -> dict[str, Any]:
    """The PrometheusRule's groups with every alert's `for` at 0 s."""
    groups = one(manifests, "PrometheusRule")["spec"]["groups"]
    return {
        "groups": [
            {
                **group,
                "rules": [{**rule, "for": "0s"} if "alert" in rule else rule for rule in group["rules"]],
            }
            for group in groups
        ]
    }


@contextlib.contextmanager
def running_prometheus(workdir: Path, operator_metrics: str, rules: dict[str, Any]) -> Iterator[str]:
    """Prometheus scraping `operator_metrics` (host:port) every second, evaluating `rules` every second."""
    binary = require_tool("prometheus", PROMETHEUS_HINT)
    (workdir / "rules.yaml").write_text(yaml.safe_dump(rules))
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(workdir / "rules.yaml")],
        "scrape_configs": [
            {
                "job_name": f"{RELEASE}-ttsfleet-metrics",
                "honor_labels": True,
                "static_configs": [
                    {"targets": [operator_metrics], "labels": {"namespace": RELEASE_NAMESPACE}}
                ],
            }
        ],
    }
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (workdir / "prometheus.log").open("ab") as log:
        process = subprocess.Popen(
            [
                str(binary),
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:

        def ready() -> bool:
            assert process.poll() is None, (workdir / "prometheus.log").read_text()
            with contextlib.suppress(httpx.TransportError):
                return httpx.get(f"{url}/-/ready", timeout=1.0).status_code == 200
            return False

        wait_for(ready, 30.0, "Prometheus to be ready")
        yield url
    finally:
        process.terminate()
        process.wait(20)


def alert_states(prometheus: str, name: str) -> list[str]:
    """States (pending, firing) of the named alert's instances for this backend, as Prometheus has them."""
    alerts = httpx.get(f"{prometheus}/api/v1/alerts", timeout=5.0).json()["data"]["alerts"]
    return [
        alert["state"]
        for alert in alerts
        if alert["labels"]["alertname"] == name and alert["labels"].get("name") == NAME
    ]


def scraped_ready(prometheus: str) -> list[str]:
    query = {"query": f'ttsfleet_backend_ready{{namespace="{NAMESPACE}", name="{NAME}"}}'}
    result = httpx.get(f"{prometheus}/api/v1/query", params=query, timeout=5.0).json()["data"]["result"]
    return [sample["value"][1] for sample in result]


async def test_not_ready_fires_when_the_key_secret_is_deleted_and_resolves_when_it_returns(
    local_fleet: LocalFleet, cluster: Cluster, helm: Path, tmp_path: Path
) -> None:
    metrics_port = free_port()
    local_fleet.kill_operator()
    local_fleet.start_operator(metrics_port=metrics_port)
    await cluster.wait_backend(NAMESPACE, NAME, is_converged, CONVERGE_DEADLINE_S, "the backend converged")
    secret = await cluster.get(DEEPGRAM_SECRET)
    assert secret is not None
    with running_prometheus(
        tmp_path, f"127.0.0.1:{metrics_port}", fast_rules(render(helm, [CLUSTER_VALUES]))
    ) as prom:
        await eventually(
            lambda: scraped_ready(prom) == ["1"], ALERT_DEADLINE_S, "Prometheus to scrape Ready=1"
        )
        assert alert_states(prom, ALERT) == []

        (await cluster.http.delete(DEEPGRAM_SECRET)).raise_for_status()
        await eventually(
            lambda: alert_states(prom, ALERT) == ["firing"], ALERT_DEADLINE_S, f"{ALERT} to fire"
        )

        restored = {key: value for key, value in secret.items() if key != "status"}
        restored["metadata"] = {
            key: value for key, value in secret["metadata"].items() if key in ("name", "namespace", "labels")
        }
        await cluster.apply(restored)
        await cluster.wait_backend(
            NAMESPACE, NAME, is_converged, CONVERGE_DEADLINE_S, "the backend Ready again"
        )
        await eventually(lambda: alert_states(prom, ALERT) == [], ALERT_DEADLINE_S, f"{ALERT} to resolve")
