"""Three gateway processes share one upstream socket budget through a scale change: the emulator's peak
of open sockets never exceeds it, and every utterance is answered.

The division is the operator's own (`sharing.next_division`, fed the gateways' real /statusz), written
to the shares file all three read, as the shares ConfigMap is mounted into every pod.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Iterator
from pathlib import Path

import httpx
import websockets

from benchmarks.socket_budget import write_division
from tests.dataplane.gateways import RunningGateway, running_gateway
from tests.support.servers import ServerProcess, running_emulator
from tests.support.speaking import connect, speak_and_flush
from tests.support.waiting import wait_for
from ttsfleet.operator import sharing

BUDGET = 6
SESSIONS_PER_GATEWAY = 5
# Utterances long enough to overlap: a few hundred milliseconds each at 8x real time.
PACED = ("--handshake-delay-ms", "20", "--first-byte-ms", "50", "--realtime-factor", "8")


@contextlib.contextmanager
def budgeted_gateway(
    log_dir: Path, upstream: ServerProcess, workdir: Path, shares: Path, name: str
) -> Iterator[RunningGateway]:
    env = {"TTSFLEET_SHARES__FILE": str(shares), "TTSFLEET_SHARES__REQUIRED": "true"}
    with running_gateway(log_dir, upstream, workdir / name, env=env, name=name, wait_ready=False) as gateway:
        yield gateway


class Operator:
    """The operator's division step, run against the gateways' own reports."""

    def __init__(self, shares: Path) -> None:
        self.shares = shares
        self.division: sharing.Division | None = None

    def divide(self, gateways: list[RunningGateway]) -> sharing.Division:
        statusz = [gateway.status() for gateway in gateways]
        pods = [str(report["pod"]) for report in statusz]
        self.division = write_division(self.shares, self.division, BUDGET, pods, statusz)
        return self.division

    def converge(self, gateways: list[RunningGateway], wanted: dict[str, int]) -> None:
        """Divide until the shares are `wanted` and every gateway applies the latest revision."""

        def converged() -> bool:
            division = self.divide(gateways)
            reports = [gateway.status() for gateway in gateways]
            return dict(division.sockets) == wanted and all(
                r["share"]["revision"] == division.revision
                and r["upstream"]["open_sockets"] + r["upstream"]["connecting_sockets"]
                <= division.sockets[r["pod"]]
                for r in reports
            )

        wait_for(converged, 30.0, lambda: f"shares {wanted}, at {self.division}", interval_s=0.1)


def pod(gateway: RunningGateway) -> str:
    return str(gateway.status()["pod"])


async def speak_until(gateway: RunningGateway, stop: asyncio.Event, outcomes: list[str]) -> None:
    """One agent session speaking turn after turn until `stop`; each turn's outcome is recorded."""
    async with await connect(gateway.target) as ws:
        for turn in itertools.count():
            if stop.is_set():
                return
            try:
                received = await speak_and_flush(ws, f"Turn {turn} of a conversation that keeps going.")
                outcomes.append("flushed" if received.audio else "silent")
            except (websockets.ConnectionClosed, TimeoutError) as error:
                outcomes.append(type(error).__name__)
                return


async def test_three_gateways_share_a_socket_budget_through_a_scale_change(tmp_path: Path) -> None:
    shares = tmp_path / "shares.json"
    with (
        running_emulator(tmp_path, latency=PACED) as upstream,
        budgeted_gateway(tmp_path, upstream, tmp_path, shares, "pod-a") as a,
        budgeted_gateway(tmp_path, upstream, tmp_path, shares, "pod-b") as b,
    ):
        assert not a.is_ready()  # no share yet: no upstream socket, no sessions routed here
        operator = Operator(shares)
        operator.converge([a, b], {pod(a): 3, pod(b): 3})
        wait_for(lambda: a.is_ready() and b.is_ready(), 10.0, "both gateways ready with their shares")

        stop = asyncio.Event()
        outcomes: list[str] = []
        load = [
            asyncio.create_task(speak_until(g, stop, outcomes))
            for g in (a, b)
            for _ in range(SESSIONS_PER_GATEWAY)
        ]
        await asyncio.to_thread(wait_for, lambda: len(outcomes) >= 20, 30.0, "two gateways under load")

        with budgeted_gateway(tmp_path, upstream, tmp_path, shares, "pod-c") as c:
            await asyncio.to_thread(operator.converge, [a, b, c], {pod(a): 2, pod(b): 2, pod(c): 2})
            await asyncio.to_thread(wait_for, c.is_ready, 10.0, "the third gateway ready with its share")
            load += [asyncio.create_task(speak_until(c, stop, outcomes)) for _ in range(SESSIONS_PER_GATEWAY)]
            done = len(outcomes)
            await asyncio.to_thread(
                wait_for, lambda: len(outcomes) >= done + 30, 30.0, "three gateways under load"
            )
            stop.set()
            await asyncio.gather(*load)

        stats = httpx.get(upstream.base_url + "/_emulator/stats", timeout=5.0).json()
        assert stats["peak_open_sockets"] <= BUDGET, stats
        assert stats["peak_open_sockets"] >= 4  # the budget was in use, not idle
        assert set(outcomes) == {"flushed"}, sorted(set(outcomes))


async def test_at_its_share_an_utterance_waits_for_a_socket_then_takes_the_rest_fallback(
    tmp_path: Path,
) -> None:
    shares = tmp_path / "shares.json"
    # One socket for this pod; a wait short enough for the first utterance (about a second of audio at
    # real time) to still hold it when the wait ends.
    slow = ("--handshake-delay-ms", "0", "--first-byte-ms", "50", "--realtime-factor", "1")
    with running_emulator(tmp_path, latency=slow) as upstream:
        env = {
            "TTSFLEET_SHARES__FILE": str(shares),
            "TTSFLEET_SHARES__REQUIRED": "true",
            "TTSFLEET_TIMEOUTS__CONNECT_S": "0.3",
        }
        with running_gateway(
            tmp_path, upstream, tmp_path / "a", env=env, name="pod-a", wait_ready=False
        ) as a:
            shares.write_text(sharing.Division(1, {pod(a): 1}, socket_budget=1, held={pod(a): 1}).to_json())
            wait_for(a.is_ready, 10.0, "the gateway ready with a share of one socket")
            limit = httpx.get(a.process.base_url + "/metrics", timeout=5.0).text
            assert "ttsfleet_upstream_socket_limit 1.0" in limit
            async with await connect(a.target) as first, await connect(a.target) as second:
                answers = await asyncio.gather(
                    speak_and_flush(first, "The first agent speaks for a little while, holding the socket."),
                    speak_and_flush(second, "The second agent finds no socket free."),
                )
        assert all(received.audio for received in answers)
        stats = httpx.get(upstream.base_url + "/_emulator/stats", timeout=5.0).json()
        assert stats["peak_open_sockets"] == 1 and stats["rest_requests_total"] == 1, stats
        assert "falling back to REST" in a.process.logs()
