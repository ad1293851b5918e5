"""A crowd that starts speaking at once on a fresh gateway: spares must follow the lease rate, not the peak.

Real processes: the emulator answers every upgrade after a 150 ms handshake, as Deepgram does in a couple
of hundred milliseconds, and the gateway starts with its default pool (one warm socket). Sessions connect
first and then start their utterances at a steady rate, or speak the moment each connects.
Every utterance that found no idle socket and had a socket opened for it shows in `/statusz` as
`upstream.opened.on_demand`: a whole handshake in its time to first byte.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import ClientConnection

from tests.dataplane.gateways import RunningGateway, running_gateway
from tests.support.servers import running_emulator
from tests.support.speaking import connect, receive_frame, speak_and_flush

Crowd = Callable[[RunningGateway], Awaitable[None]]

pytestmark = pytest.mark.timeout(300)

HANDSHAKE_MS = 150
LATENCY = ("--handshake-delay-ms", str(HANDSHAKE_MS), "--first-byte-ms", "20", "--realtime-factor", "8")
SESSIONS = 120
UTTERANCES_A_SECOND = 60.0  # 1,200 agents at 10 % speaking with 2 s sentences


def on_demand_handshakes(gateway: RunningGateway) -> int:
    status = httpx.get(gateway.process.base_url + "/statusz", timeout=5.0).json()
    return int(status["upstream"]["opened"]["on_demand"])


async def speak_at_a_steady_rate(sessions: list[ClientConnection]) -> None:
    """One utterance per session, started UTTERANCES_A_SECOND apart (the load's arrival schedule)."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    speaking = []
    for index, ws in enumerate(sessions):
        await asyncio.sleep(max(0.0, began + index / UTTERANCES_A_SECOND - loop.time()))
        speaking.append(asyncio.create_task(speak_and_flush(ws, f"Agent {index} takes its turn now.")))
    results = await asyncio.gather(*speaking)
    assert all(result.types == ["Audio", "Flushed"] for result in results)


async def connect_then_speak(gateway: RunningGateway) -> None:
    sessions = [await connect(gateway.target) for _ in range(SESSIONS)]
    try:
        for ws in sessions:
            assert (await receive_frame(ws)).type == "Metadata"
        await speak_at_a_steady_rate(sessions)
    finally:
        await asyncio.gather(*(ws.close() for ws in sessions))


async def speak_as_they_connect(gateway: RunningGateway) -> None:
    loop = asyncio.get_running_loop()
    began = loop.time()

    async def agent(index: int) -> None:
        await asyncio.sleep(max(0.0, began + index / UTTERANCES_A_SECOND - loop.time()))
        async with await connect(gateway.target) as ws:
            assert (await receive_frame(ws)).type == "Metadata"
            received = await speak_and_flush(ws, f"Agent {index} speaks as it joins.")
            assert received.types == ["Audio", "Flushed"]

    await asyncio.gather(*(agent(index) for index in range(SESSIONS)))


def handshake_metrics(gateway: RunningGateway) -> dict[str, float]:
    """`ttsfleet_upstream_handshakes_total` by its `waited` label, as Prometheus reads it."""
    text = httpx.get(gateway.process.base_url + "/metrics", timeout=5.0).text
    return {
        sample.labels["waited"]: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "ttsfleet_upstream_handshakes"
        for sample in family.samples
        if sample.name == "ttsfleet_upstream_handshakes_total"
    }


async def waited_for_handshakes(
    process_logs: Path, tmp_path: Path, crowd: Crowd, env: dict[str, str] | None = None
) -> int:
    """How many of the crowd's utterances waited for an upstream handshake, on a fresh gateway; the
    metric SREs alert on says the same as /statusz."""
    with (
        running_emulator(process_logs, latency=LATENCY, name="onset-upstream") as upstream,
        running_gateway(process_logs, upstream, tmp_path, env=env, name="onset-gateway") as gateway,
    ):
        before = on_demand_handshakes(gateway)
        await crowd(gateway)
        waited = on_demand_handshakes(gateway) - before
        opened = httpx.get(gateway.process.base_url + "/statusz", timeout=5.0).json()["upstream"]["opened"]
        assert handshake_metrics(gateway) == {
            "true": opened["on_demand"],
            "false": opened["total"] - opened["on_demand"],
        }
        return waited


async def test_a_crowd_connected_before_it_speaks_finds_spares_open(
    process_logs: Path, tmp_path: Path
) -> None:
    # The crowd here is small and quick (each session speaks within 2 s): the gateway is told so, as a
    # pod learns it from its own sessions within a minute.
    interval = {"TTSFLEET_POOL__SESSION_UTTERANCE_INTERVAL_S": str(SESSIONS / UTTERANCES_A_SECOND)}
    waited = await waited_for_handshakes(process_logs, tmp_path, connect_then_speak, interval)
    # Spares that followed only the peak of leased sockets left 15 % of this crowd waiting for a
    # handshake (18 or 19 of 120 on a quiet machine). The sessions connected on the default key ask for
    # spares at the assumed utterance interval before any of them speaks (0 measured).
    assert waited <= 2, f"{waited} of {SESSIONS} utterances waited for an upstream handshake"


async def test_a_crowd_that_speaks_as_it_connects_waits_for_few_handshakes(
    process_logs: Path, tmp_path: Path
) -> None:
    waited = await waited_for_handshakes(process_logs, tmp_path, speak_as_they_connect)
    # Each session speaks the moment it connects, so its count says little ahead of its lease: the
    # spares follow the lease rate, and what still waits is the onset's first handshakes (6 measured;
    # 18 or 19 with spares that followed only the peak).
    assert waited <= 10, f"{waited} of {SESSIONS} utterances waited for an upstream handshake"
