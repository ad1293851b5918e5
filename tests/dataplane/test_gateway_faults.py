"""Chaos: every fault the emulator injects, on WS and on the REST fallback, against one gateway process.

Each case speaks on a fresh pool key (its own speed), so the pool has to connect under the fault; global
faults (`POST /_emulator/faults`, `count=N` for the next N connections) make it hit. Every utterance
completes or ends in an explicit close within its timeout, no socket leaks, and the gateway's counters
agree with what the clients saw and with the REST requests the emulator counted.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families

from tests.dataplane.gateways import RunningGateway, running_gateway
from tests.support.servers import ServerProcess, running_emulator
from tests.support.speaking import Received, connect, receive_frame, receive_until
from tests.support.waiting import eventually

SHORT_TIMEOUTS = {
    "TTSFLEET_TIMEOUTS__CONNECT_S": "2",
    "TTSFLEET_TIMEOUTS__FIRST_BYTE_S": "0.5",
    "TTSFLEET_TIMEOUTS__INTER_CHUNK_S": "0.5",
    "TTSFLEET_TIMEOUTS__UTTERANCE_S": "8",
    "TTSFLEET_BREAKER__FAILURE_THRESHOLD": "1000",  # each case starts with a closed breaker
    "TTSFLEET_CACHE__ENABLED": "false",
    "TTSFLEET_POOL__IDLE_KEY_TTL_S": "2",  # the keys of finished cases give their sockets back
}
UTTERANCE_DEADLINE_S = 8 + 2.0
SENTENCE = "Faults must never hang a speaker, whatever the upstream does to the socket."
NET_REASONS = ("NET-0000", "NET-0001", "NET-0002", "NET-0003")
WS_REFUSED = "refuse:status=503:on=ws"  # every WS connect fails: utterances go to the REST fallback
COUNTED = ("utterances", "errors", "retries", "fallbacks")
_speeds = (f"{0.7 + i / 100:.2f}" for i in itertools.count(1) if i != 30)  # 1.00 is the default key


@dataclass(frozen=True)
class Case:
    faults: tuple[str, ...]
    completes: bool
    error_classes: frozenset[str] = frozenset()  # the classes the gateway may count for this fault
    via_rest: bool | None = None  # whether the REST fallback is used (None: either)
    clients: int = 1


def _case(*faults: str, completes: bool, classes: str = "", via_rest: bool | None, clients: int = 1) -> Case:
    return Case(tuple(faults), completes, frozenset(classes.split()), via_rest, clients)


def _ws_cases() -> Iterator[object]:
    for status, completes, classes in (
        (401, False, "auth"),
        (403, False, "auth"),
        (429, True, ""),
        (503, True, ""),
    ):
        yield pytest.param(
            _case(f"refuse:status={status}:on=ws", completes=completes, classes=classes, via_rest=completes),
            id=f"ws-refuse-{status}",
        )
    for reason in NET_REASONS:
        yield pytest.param(
            _case(
                f"close:reason={reason}:after_bytes=2000:on=ws",
                completes=False,
                classes="transient",
                via_rest=False,
            ),
            id=f"ws-close-{reason}-after-bytes",
        )
        yield pytest.param(
            _case(
                f"close:reason={reason}:after_ms=150:on=ws",
                "slow:frame_delay_ms=60:on=ws",
                completes=False,
                classes="transient",
                via_rest=False,
            ),
            id=f"ws-close-{reason}-after-ms",
        )
    yield pytest.param(
        _case(
            "close:reason=NET-0000:after_bytes=0:on=ws:count=1",
            completes=True,
            classes="transient",
            via_rest=False,
        ),
        id="ws-close-before-audio-retried-on-another-socket",
    )
    yield pytest.param(
        _case("close:reason=NET-0000:after_ms=0:on=ws", completes=True, classes="transient", via_rest=True),
        id="ws-close-at-once-every-socket-ends-on-rest",
    )
    yield pytest.param(
        _case("stall:on=ws", completes=True, classes="transient", via_rest=True), id="ws-stall-before-audio"
    )
    yield pytest.param(
        _case("stall:after_bytes=2000:on=ws", completes=False, classes="transient", via_rest=False),
        id="ws-stall-after-audio",
    )
    yield pytest.param(
        _case("slow:frame_delay_ms=20:on=ws", completes=True, via_rest=False), id="ws-slow-within-the-gap"
    )
    yield pytest.param(
        _case("slow:frame_delay_ms=700:on=ws", completes=True, classes="transient", via_rest=True),
        id="ws-slow-beyond-the-first-byte",
    )
    yield pytest.param(
        _case("reset:on=ws", completes=True, classes="transient", via_rest=True), id="ws-reset-before-audio"
    )
    yield pytest.param(
        _case("reset:after_bytes=2000:on=ws", completes=False, classes="transient", via_rest=False),
        id="ws-reset-after-bytes",
    )
    yield pytest.param(
        _case(
            "reset:after_ms=150:on=ws",
            "slow:frame_delay_ms=60:on=ws",
            completes=False,
            classes="transient",
            via_rest=False,
        ),
        id="ws-reset-after-ms",
    )
    yield pytest.param(
        _case(
            "concurrency:limit={open_plus_one}:on=ws",
            "slow:frame_delay_ms=30:on=ws",
            completes=True,
            via_rest=True,
            clients=3,
        ),
        id="ws-concurrency-limit-per-key",
    )
    yield pytest.param(
        _case("max_age:seconds=0.3:on=ws", completes=True, via_rest=False), id="ws-max-age-while-idle"
    )
    yield pytest.param(
        _case(
            "max_age:seconds=0.15:on=ws",
            "slow:frame_delay_ms=60:on=ws",
            completes=False,
            classes="transient",
            via_rest=False,
        ),
        id="ws-max-age-mid-audio",
    )


def _rest_cases() -> Iterator[object]:
    for status, classes in ((401, "auth"), (403, "auth"), (429, "rate_limited"), (503, "transient")):
        yield pytest.param(
            _case(
                WS_REFUSED, f"refuse:status={status}:on=rest", completes=False, classes=classes, via_rest=True
            ),
            id=f"rest-refuse-{status}",
        )
    yield pytest.param(
        _case(
            WS_REFUSED,
            "refuse:status=429:on=rest:count=1",
            completes=True,
            classes="rate_limited",
            via_rest=True,
        ),
        id="rest-refuse-429-once-is-retried",
    )
    for after_bytes, completes in ((0, False), (2000, False)):
        yield pytest.param(
            _case(
                WS_REFUSED,
                f"close:reason=NET-0000:after_bytes={after_bytes}:on=rest",
                completes=completes,
                classes="transient",
                via_rest=True,
            ),
            id=f"rest-cut-after-{after_bytes}-bytes",
        )
    yield pytest.param(
        _case(
            WS_REFUSED,
            "close:reason=NET-0000:after_bytes=0:on=rest:count=1",
            completes=True,
            classes="transient",
            via_rest=True,
        ),
        id="rest-cut-once-is-retried",
    )
    yield pytest.param(
        _case(WS_REFUSED, "stall:on=rest", completes=False, classes="transient", via_rest=True),
        id="rest-stall-before-audio",
    )
    yield pytest.param(
        _case(WS_REFUSED, "stall:on=rest:count=1", completes=True, classes="transient", via_rest=True),
        id="rest-stall-once-is-retried",
    )
    yield pytest.param(
        _case(
            WS_REFUSED, "stall:after_bytes=2000:on=rest", completes=False, classes="transient", via_rest=True
        ),
        id="rest-stall-after-audio",
    )
    yield pytest.param(
        _case(WS_REFUSED, "slow:frame_delay_ms=20:on=rest", completes=True, via_rest=True), id="rest-slow"
    )
    for after_bytes in (0, 2000):
        yield pytest.param(
            _case(
                WS_REFUSED,
                f"reset:after_bytes={after_bytes}:on=rest",
                completes=False,
                classes="transient",
                via_rest=True,
            ),
            id=f"rest-reset-after-{after_bytes}-bytes",
        )


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


def _counters(gateway: RunningGateway) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The gateway's counted samples (`_total`), keyed by metric name and labels."""
    text = httpx.get(gateway.process.base_url + "/metrics", timeout=5.0).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        if family.name.removeprefix("ttsfleet_") in COUNTED
        for sample in family.samples
        if sample.name.endswith("_total")
    }


def _delta(
    before: dict[tuple[str, tuple[tuple[str, str], ...]], float],
    after: dict[tuple[str, tuple[tuple[str, str], ...]], float],
    name: str,
) -> dict[str, float]:
    """Growth of one counter by its (single) label value, or under "" when it has no labels."""
    grown: dict[str, float] = {}
    for (sample, labels), value in after.items():
        if sample == f"ttsfleet_{name}_total" and value != before.get((sample, labels), 0.0):
            grown[labels[0][1] if labels else ""] = value - before.get((sample, labels), 0.0)
    return grown


async def _speak_once(gateway: RunningGateway, speed: str) -> tuple[Received, tuple[int, str] | None, float]:
    """One utterance: what arrived, the close it ended with (None: Flushed), and how long it took."""
    received = Received()
    started = time.monotonic()
    async with await connect(gateway.target, speed=speed) as ws:
        await receive_frame(ws)
        await ws.send(json.dumps({"type": "Speak", "text": SENTENCE}))
        await ws.send(json.dumps({"type": "Flush"}))
        try:
            await receive_until(ws, "Flushed", received, deadline_s=UTTERANCE_DEADLINE_S)
        except websockets.ConnectionClosed as closed:
            frame = closed.rcvd
            assert frame is not None, "the gateway must close with a code, not drop the connection"
            return received, (frame.code, frame.reason), time.monotonic() - started
    return received, None, time.monotonic() - started


@pytest.mark.parametrize("case", [*_ws_cases(), *_rest_cases()])
async def test_every_fault_ends_in_audio_or_an_explicit_close_in_time_and_is_counted(
    chaos: RunningGateway, case: Case
) -> None:
    await eventually(chaos.is_ready, 10.0, "the gateway to be ready (a refused key recovers)")
    speed = next(_speeds)
    before, stats_before = _counters(chaos), chaos.upstream_stats()
    specs = [spec.format(open_plus_one=stats_before["open_sockets"] + 1) for spec in case.faults]
    _set_faults(chaos.upstream, specs)
    try:
        results = await asyncio.gather(*(_speak_once(chaos, speed) for _ in range(case.clients)))
    finally:
        _set_faults(chaos.upstream, [])
    after, stats_after = _counters(chaos), chaos.upstream_stats()

    for received, closure, elapsed in results:
        assert elapsed < UTTERANCE_DEADLINE_S
        if case.completes:
            assert closure is None, f"expected audio, got close {closure}"
            assert received.types[-2:] == ["Audio", "Flushed"]
        else:
            assert closure == (1011, "NET-0000"), "a failed utterance closes with 1011 NET-0000 (retry)"
            assert "Flushed" not in received.types

    outcomes = _delta(before, after, "utterances")
    assert outcomes == ({"completed": case.clients} if case.completes else {"failed": case.clients})
    errors = _delta(before, after, "errors")
    assert set(errors) <= case.error_classes
    retries = _delta(before, after, "retries").get("", 0.0)
    assert sum(errors.values()) == retries + outcomes.get("failed", 0)  # every error: retried or final
    fallbacks = _delta(before, after, "fallbacks").get("", 0.0)
    assert fallbacks == stats_after["rest_requests_total"] - stats_before["rest_requests_total"]
    if case.via_rest is not None:
        assert (fallbacks > 0) is case.via_rest

    def pool_matches_upstream() -> bool:
        status = chaos.status()["upstream"]
        return (
            status["leased_sockets"] == 0 and chaos.upstream_stats()["open_sockets"] == status["open_sockets"]
        )

    await eventually(pool_matches_upstream, 10.0, "upstream sockets to match the pool (no leak)")
