"""Real /metrics of a real gateway and a real operator process, parsed into what each exports.

The gateway runs in front of the emulator and speaks one utterance first, so its labelled series have
samples. The operator runs as `ttsfleet operator` against the embedded Kubernetes API with one
TTSBackend to reconcile, so its per-backend series have samples too.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.dataplane.gateways import running_gateway
from tests.operator.integration.conftest import NAMESPACE, backend, secret
from tests.support.servers import ServerProcess, running_emulator
from tests.support.speaking import connect, speak_and_flush
from tests.support.waiting import wait_for
from ttsfleet.devcluster.apiserver import running_apiserver
from ttsfleet.devcluster.ports import free_port
from ttsfleet.operator import crd

BACKEND = "aura-en"
OPERATOR_DEADLINE_S = 30.0
# Series names a family of each type exposes (prometheus-client's text format, OpenMetrics' `_created` aside).
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
    "untyped": ("",),
}


@dataclass(frozen=True)
class Exported:
    """What one process exports: every series name, and the label names seen on each series' samples."""

    text: str
    labels: dict[str, frozenset[str]]

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self.labels)

    def value(self, name: str) -> float:
        """The value of an unlabelled series."""
        for family in text_string_to_metric_families(self.text):
            for sample in family.samples:
                if sample.name == name and not sample.labels:
                    return float(sample.value)
        raise AssertionError(f"{name} is not exported")


def parse(text: str) -> Exported:
    """Series names of every family (samples or not) and the label names on their samples."""
    labels: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for suffix in SUFFIXES[family.type]:
            labels.setdefault(family.name + suffix, set())
        for sample in family.samples:
            labels.setdefault(sample.name, set()).update(sample.labels)
    return Exported(text, {name: frozenset(names) for name, names in labels.items()})


@contextlib.contextmanager
def gateway_scrape(log_dir: Path, workdir: Path) -> Iterator[Exported]:
    """A gateway's /metrics after one spoken utterance."""
    with (
        running_emulator(log_dir, name="monitoring-upstream") as upstream,
        running_gateway(log_dir, upstream, workdir, name="monitoring-gateway") as gateway,
    ):

        async def speak() -> None:
            async with await connect(gateway.target) as ws:
                await speak_and_flush(ws, "metrics for the dashboard")

        asyncio.run(speak())
        yield parse(httpx.get(gateway.process.base_url + "/metrics", timeout=5.0).text)


def operator_scrape(log_dir: Path) -> Exported:
    """An operator's /metrics once it has reconciled one backend."""
    return asyncio.run(_operator_scrape(log_dir))


async def _operator_scrape(log_dir: Path) -> Exported:
    async with running_apiserver() as server, _cluster(server.base_url) as api:
        port = free_port()
        operator = ServerProcess(
            name="monitoring-operator",
            args=[
                *("operator", "--api-server", server.base_url, "--namespace", NAMESPACE),
                *("--metrics-port", str(port), "--probe-interval-s", "0.5"),
            ],
            port=port,
            log_path=log_dir / f"monitoring-operator-{port}.log",
        )
        await asyncio.to_thread(operator.start, "/metrics", OPERATOR_DEADLINE_S)
        try:
            created = await api.post(
                f"/apis/ttsfleet.io/v1alpha1/namespaces/{NAMESPACE}/ttsbackends", json=backend(BACKEND)
            )
            assert created.status_code == 201, created.text
            scraped: list[Exported] = []

            def reconciled() -> bool:
                scraped[:] = [parse(httpx.get(operator.base_url + "/metrics", timeout=5.0).text)]
                return "namespace" in scraped[0].labels.get("ttsfleet_backend_ready", frozenset())

            await asyncio.to_thread(wait_for, reconciled, OPERATOR_DEADLINE_S, "the backend's ready series")
            return scraped[0]
        finally:
            await asyncio.to_thread(operator.stop)


@contextlib.asynccontextmanager
async def _cluster(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, timeout=10.0) as api:
        for path, body in (
            ("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd.build_crd()),
            ("/api/v1/namespaces", {"metadata": {"name": NAMESPACE}}),
            (f"/api/v1/namespaces/{NAMESPACE}/secrets", secret("deepgram", "api-key", "monitoring-test-key")),
        ):
            response = await api.post(path, json=body)
            assert response.status_code == 201, response.text
        yield api
