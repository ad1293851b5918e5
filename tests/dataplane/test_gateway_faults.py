"""Chaos: for faults the emulator injects, every utterance completes or ends in an explicit error, in time."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from tests.dataplane.gateways import RunningGateway, running_gateway
from tests.support.servers import ServerProcess, running_emulator, wait_for
from tests.support.speaking import Received, connect, receive_frame, receive_until

SHORT_TIMEOUTS = {
    "TTSFLEET_TIMEOUTS__CONNECT_S": "2",
    "TTSFLEET_TIMEOUTS__FIRST_BYTE_S": "1",
    "TTSFLEET_TIMEOUTS__INTER_CHUNK_S": "1",
    "TTSFLEET_TIMEOUTS__UTTERANCE_S": "8",
    "TTSFLEET_BREAKER__FAILURE_THRESHOLD": "100",  # each case starts with a closed breaker
    "TTSFLEET_CACHE__ENABLED": "false",
}
UTTERANCE_DEADLINE_S = 12.0


@pytest.fixture(scope="module")
def chaos(process_logs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    with (
        running_emulator(process_logs, name="chaos-upstream") as upstream,
        running_gateway(
            process_logs, upstream, tmp_path_factory.mktemp("chaos"), env=SHORT_TIMEOUTS, name="chaos-gateway"
        ) as gateway,
    ):
        yield gateway


def _set_faults(upstream: ServerProcess, specs: list[str]) -> None:
    httpx.post(
        upstream.base_url + "/_emulator/faults", json={"faults": specs}, timeout=5.0
    ).raise_for_status()


async def _one_utterance(gateway: RunningGateway, speed: str) -> tuple[Received, tuple[int, str] | None]:
    """Speak once on a fresh pool key (the speed) so the pool must connect under the fault."""
    received = Received()
    async with await connect(gateway.target, speed=speed) as ws:
        await receive_frame(ws)
        await ws.send(json.dumps({"type": "Speak", "text": "Faults must never hang a speaker."}))
        await ws.send(json.dumps({"type": "Flush"}))
        try:
            await receive_until(ws, "Flushed", received, deadline_s=UTTERANCE_DEADLINE_S)
        except websockets.ConnectionClosed as closed:
            frame = closed.rcvd
        else:
            return received, None
    assert frame is not None, "the gateway must close with a code, not drop the connection"
    return received, (frame.code, frame.reason)


@pytest.mark.parametrize(
    ("fault", "speed", "completes"),
    [
        pytest.param("refuse:status=503:on=ws", "0.8", True, id="ws-503-falls-back-to-rest"),
        pytest.param("refuse:status=429:on=ws", "0.85", True, id="ws-429-falls-back-to-rest"),
        pytest.param("reset:on=ws", "0.9", True, id="ws-reset-falls-back-to-rest"),
        pytest.param("close:reason=NET-0000:after_bytes=2000:on=ws", "0.95", False, id="close-after-audio"),
        pytest.param("stall:on=ws", "1.05", True, id="stall-before-audio-ends-on-rest"),
        pytest.param("stall:after_bytes=2000:on=ws", "1.1", False, id="stall-after-audio"),
        pytest.param("slow:frame_delay_ms=20", "1.15", True, id="slow-frames-within-gap"),
        pytest.param(
            "close:reason=NET-0000:after_bytes=0:on=ws:count=1", "1.2", True, id="one-close-is-retried"
        ),
    ],
)
async def test_every_fault_ends_in_audio_or_an_explicit_error_in_time(
    chaos: RunningGateway, fault: str, speed: str, completes: bool
) -> None:
    _set_faults(chaos.upstream, [fault])
    try:
        started = time.monotonic()
        received, closure = await _one_utterance(chaos, speed)
        elapsed = time.monotonic() - started
    finally:
        _set_faults(chaos.upstream, [])
    assert elapsed < UTTERANCE_DEADLINE_S
    if completes:
        assert closure is None
        assert received.types[-2:] == ["Audio", "Flushed"]
    else:
        assert closure is not None and closure[0] == 1011 and closure[1].startswith("NET-")
        assert "Flushed" not in received.types

    def pool_matches_upstream() -> bool:
        return chaos.upstream_stats()["open_sockets"] == chaos.status()["upstream"]["open_sockets"]

    wait_for(pool_matches_upstream, 10.0, "upstream sockets to match the pool (no leak)")


def test_fallbacks_and_errors_are_counted(chaos: RunningGateway) -> None:
    metrics = httpx.get(chaos.process.base_url + "/metrics", timeout=5.0).text
    fallbacks = next(line for line in metrics.splitlines() if line.startswith("ttsfleet_fallbacks_total"))
    assert float(fallbacks.split()[-1]) >= 3
    assert 'ttsfleet_errors_total{error_class="transient"}' in metrics
