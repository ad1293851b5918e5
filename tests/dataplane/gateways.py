"""Gateway processes for tests: `ttsfleet dataplane` on a free port, with its own key and tokens files."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.servers import ServerProcess
from tests.support.speaking import SpeakTarget
from tests.support.waiting import wait_for
from ttsfleet.devcluster.ports import free_port

FLEET_TOKEN = "fleet-token-for-gateway-tests"
OTHER_TOKEN = "second-fleet-token"
DEEPGRAM_KEY = "deepgram-key-for-gateway-tests"


@dataclass
class RunningGateway:
    """A gateway process, the files it reads, and a client's view of it."""

    process: ServerProcess
    key_file: Path
    tokens_file: Path
    upstream: ServerProcess

    @property
    def target(self) -> SpeakTarget:
        return SpeakTarget(ws_url=self.process.ws_url, http_url=self.process.base_url, token=FLEET_TOKEN)

    def status(self) -> dict[str, Any]:
        response = httpx.get(self.process.base_url + "/statusz", timeout=5.0)
        response.raise_for_status()
        return dict(response.json())

    def upstream_stats(self) -> dict[str, Any]:
        return dict(httpx.get(self.upstream.base_url + "/_emulator/stats", timeout=5.0).json())

    def open_fds(self) -> int:
        """File descriptors the gateway process holds (sockets included)."""
        assert self.process.process is not None
        return sum(1 for _ in Path(f"/proc/{self.process.process.pid}/fd").iterdir())

    def metric(self, sample_name: str) -> float | None:
        """One sample of the gateway's `/metrics` as Prometheus reads it (None: not exposed)."""
        text = httpx.get(self.process.base_url + "/metrics", timeout=5.0).text
        samples = (sample for family in text_string_to_metric_families(text) for sample in family.samples)
        return next((float(sample.value) for sample in samples if sample.name == sample_name), None)

    def is_ready(self) -> bool:
        return httpx.get(self.process.base_url + "/readyz", timeout=5.0).status_code == 200


@contextlib.contextmanager
def running_gateway(
    log_dir: Path,
    upstream: ServerProcess,
    workdir: Path,
    env: dict[str, str] | None = None,
    extra_args: tuple[str, ...] = (),
    name: str = "gateway",
    wait_ready: bool = True,
) -> Iterator[RunningGateway]:
    """A gateway on a free port with its own key and tokens files under `workdir`."""
    workdir.mkdir(parents=True, exist_ok=True)
    key_file = workdir / "deepgram-key"
    key_file.write_text(DEEPGRAM_KEY + "\n")
    tokens_file = workdir / "tokens"
    tokens_file.write_text(f"# fleet tokens\n{FLEET_TOKEN}\n{OTHER_TOKEN}\n")
    port = free_port()
    process = ServerProcess(
        name=name,
        args=[
            "dataplane",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--pod-name",
            f"{name}-{port}",
            "--upstream-url",
            upstream.ws_url,
            "--deepgram-key-file",
            str(key_file),
            "--client-tokens-file",
            str(tokens_file),
            *extra_args,
        ],
        port=port,
        log_path=log_dir / f"{name}-{port}.log",
        env={"TTSFLEET_CREDENTIALS__POLL_INTERVAL_S": "0.2", **(env or {})},
    )
    process.start("/livez")
    gateway = RunningGateway(process, key_file, tokens_file, upstream)
    try:
        if wait_ready:
            wait_for(gateway.is_ready, 10.0, "the gateway to be ready")
        yield gateway
    finally:
        process.stop()
