"""The relay's timeouts and retries on fake upstreams, in virtual loop time (looptime): each phase's
deadline (connect, first byte, inter-chunk gap, utterance total) ends the wait exactly when it says.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from tests.dataplane.fakes import (
    RELAY_TIMEOUTS,
    SCRIPTED_OPTIONS,
    FakeConnector,
    FakeRest,
    FakeSocket,
    PoolHarness,
    relaying,
    running_pool,
    scripted,
)
from tests.support.waiting import wait_until
from ttsfleet.dataplane import errors
from ttsfleet.dataplane.cache import AudioCache
from ttsfleet.dataplane.metrics import Metrics
from ttsfleet.dataplane.retrying import RetryPolicy
from ttsfleet.dataplane.seams import LoopClock
from ttsfleet.dataplane.sockets import PoolKey
from ttsfleet.dataplane.utterances import Synthesizer, UtteranceResult
from ttsfleet.protocol import Clear, Flush, Speak

pytestmark = pytest.mark.looptime

TIMEOUTS = RELAY_TIMEOUTS
OPTIONS = SCRIPTED_OPTIONS


class Sink:
    """An AudioSink that keeps what it got."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.began: list[str] = []

    @property
    def bytes_sent(self) -> int:
        return sum(len(chunk) for chunk in self.chunks)

    async def begin(self, content_type: str, source: str) -> None:
        self.began.append(source)

    async def audio(self, chunk: bytes) -> None:
        self.chunks.append(chunk)

    def audio_now(self, chunk: bytes) -> bool:
        self.chunks.append(chunk)
        return True


@dataclass
class Relay:
    synthesizer: Synthesizer
    harness: PoolHarness
    rest: FakeRest
    metrics: Metrics

    async def speak(self, *, websocket: bool = True) -> tuple[UtteranceResult | Exception, float, Sink]:
        """One utterance; its result (or error), the loop seconds it took, and what reached the sink."""
        sink = Sink()
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            result: UtteranceResult | Exception = await self.synthesizer.speak(
                OPTIONS, "Timeouts end waits.", sink, websocket=websocket
            )
        except errors.GatewayError as error:
            result = error
        return result, loop.time() - started, sink


@pytest.fixture
def connector() -> FakeConnector:
    return FakeConnector()


@pytest.fixture
def rest() -> FakeRest:
    return FakeRest()


@pytest.fixture
async def relay(connector: FakeConnector, rest: FakeRest) -> AsyncIterator[Relay]:
    clock = LoopClock()
    async with running_pool(clock, connector, TIMEOUTS) as harness:
        metrics = Metrics()
        synthesizer = relaying(harness, rest, metrics, TIMEOUTS)
        yield Relay(synthesizer, harness, rest, metrics)


async def test_a_healthy_socket_relays_every_chunk_in_no_time(relay: Relay, connector: FakeConnector) -> None:
    connector.make = scripted(FakeSocket(chunks=3))
    result, elapsed, sink = await relay.speak()
    assert isinstance(result, UtteranceResult) and result.source == "websocket"
    assert len(sink.chunks) == 3 and elapsed == pytest.approx(0)


async def test_no_first_byte_in_time_retries_on_another_socket(
    relay: Relay, connector: FakeConnector
) -> None:
    connector.make = scripted(FakeSocket(stall_after=0))
    result, elapsed, _ = await relay.speak()
    assert isinstance(result, UtteranceResult) and result.attempts == 2
    assert elapsed == pytest.approx(TIMEOUTS.first_byte_s)
    assert relay.metrics.registry.get_sample_value("ttsfleet_retries_total") == 1


async def test_a_gap_after_audio_ends_the_utterance_without_retry(
    relay: Relay, connector: FakeConnector
) -> None:
    connector.make = scripted(FakeSocket(chunks=5, stall_after=2))
    result, elapsed, sink = await relay.speak()
    assert isinstance(result, errors.UpstreamTimeout)
    assert "inter-chunk gap" in str(result)
    assert elapsed == pytest.approx(TIMEOUTS.inter_chunk_s)
    assert len(sink.chunks) == 2


@pytest.mark.parametrize(
    ("gap_s", "completes"),
    [
        pytest.param(0.9, True, id="slow-within-the-gap"),
        pytest.param(1.1, False, id="slower-than-the-gap"),
    ],
)
async def test_slow_frames_complete_only_within_the_gap(
    relay: Relay, connector: FakeConnector, gap_s: float, completes: bool
) -> None:
    connector.make = scripted(FakeSocket(chunks=4, gap_s=gap_s))
    result, elapsed, sink = await relay.speak()
    if completes:
        assert isinstance(result, UtteranceResult)
        assert elapsed == pytest.approx(4 * gap_s)
    else:
        assert isinstance(result, errors.UpstreamTimeout)
        assert elapsed == pytest.approx(gap_s + TIMEOUTS.inter_chunk_s)  # first byte in time, then the gap
        assert len(sink.chunks) == 1


async def test_a_connect_that_never_answers_falls_back_to_rest_after_the_connect_timeout(
    relay: Relay, connector: FakeConnector
) -> None:
    connector.hang = True
    result, elapsed, sink = await relay.speak()
    assert isinstance(result, UtteranceResult) and result.source == "rest_fallback"
    assert elapsed == pytest.approx(TIMEOUTS.connect_s)
    assert sink.began == ["rest_fallback"] and len(relay.rest.requests) == 1


async def test_stalls_on_every_path_end_at_the_utterance_deadline(
    relay: Relay, connector: FakeConnector, rest: FakeRest
) -> None:
    connector.make = lambda: FakeSocket(stall_after=0)
    rest.stall_after = 0
    result, elapsed, _ = await relay.speak()
    # first byte 3 s on two sockets, then REST (the last attempt) stalls 3 s more: 9 s < 20 s.
    assert isinstance(result, errors.UpstreamTimeout)
    assert elapsed == pytest.approx(3 * TIMEOUTS.first_byte_s)
    assert relay.metrics.registry.get_sample_value("ttsfleet_retries_total") == 2


async def test_the_utterance_total_caps_slow_attempts(relay: Relay, connector: FakeConnector) -> None:
    connector.make = lambda: FakeSocket(chunks=100, gap_s=0.45)  # 45 s of audio, every gap in time
    result, elapsed, sink = await relay.speak()
    assert isinstance(result, errors.UpstreamTimeout) and "utterance took longer" in str(result)
    assert elapsed == pytest.approx(TIMEOUTS.utterance_s)
    assert len(sink.chunks) == int(TIMEOUTS.utterance_s // 0.45)


async def test_rest_answers_stalling_before_audio_time_out_at_the_first_byte_each_attempt(
    relay: Relay, rest: FakeRest
) -> None:
    rest.stall_after = 0
    result, elapsed, _ = await relay.speak(websocket=False)
    assert isinstance(result, errors.UpstreamTimeout) and "REST first byte" in str(result)
    assert elapsed == pytest.approx(3 * TIMEOUTS.first_byte_s)
    assert len(rest.requests) == 3


async def test_rest_errors_are_counted_by_class_and_auth_reports_the_key(
    relay: Relay, rest: FakeRest
) -> None:
    rest.fail_with = errors.UpstreamAuthFailed("401")
    result, _, _ = await relay.speak(websocket=False)
    assert isinstance(result, errors.UpstreamAuthFailed)
    assert relay.harness.credentials.reports[-1] is False
    assert relay.metrics.registry.get_sample_value("ttsfleet_errors_total", {"error_class": "auth"}) == 1


def _sent(connector: FakeConnector, text: str) -> list[FakeSocket]:
    """The sockets `text` was sent on, once per Speak that carried it."""
    speak = Speak(text).to_json()
    return [socket for _, _, socket in connector.opened for sent in socket.sent if sent == speak]


async def _warm(relay: Relay) -> None:
    """One utterance spoken, so that its key has an idle socket (spares may have opened beside it)."""
    result, _, _ = await relay.speak()
    assert isinstance(result, UtteranceResult) and result.source == "websocket"


async def test_a_begun_utterance_has_its_text_upstream_before_it_runs(
    relay: Relay, connector: FakeConnector
) -> None:
    await _warm(relay)
    text = "Sent at once."
    utterance = relay.synthesizer.begin(OPTIONS, text, websocket=True)
    (socket,) = _sent(connector, text)  # before any await
    assert socket.sent[-1] == Flush().to_json()
    sink = Sink()
    result = await relay.synthesizer.finish(utterance, sink)
    assert result.source == "websocket" and result.attempts == 1 and sink.bytes_sent == len(socket.audio)
    assert _sent(connector, text) == [socket]  # not sent twice


async def test_a_socket_that_cannot_take_the_text_at_once_gets_it_the_waiting_way(
    relay: Relay, connector: FakeConnector
) -> None:
    await _warm(relay)
    for _, _, socket in connector.opened:
        socket.writes_paused = True
    text = "Sent when it can be."
    utterance = relay.synthesizer.begin(OPTIONS, text, websocket=True)
    assert utterance.take_socket() is None and _sent(connector, text) == []
    result = await relay.synthesizer.finish(utterance, Sink())
    assert result.source == "websocket" and result.attempts == 1
    assert len(_sent(connector, text)) == 1  # by `send_texts`, once
    assert all(socket.open for _, _, socket in connector.opened)  # given back whole, not closed


async def test_an_abandoned_utterance_gives_its_socket_back_to_be_cleared(
    relay: Relay, connector: FakeConnector
) -> None:
    await _warm(relay)
    key = PoolKey.of(OPTIONS)
    utterance = relay.synthesizer.begin(OPTIONS, "Begun, never run.", websocket=True)
    (socket,) = _sent(connector, "Begun, never run.")
    assert relay.harness.pool.busy_sockets(key) == 1
    utterance.abandon()
    utterance.abandon()  # twice is once
    await wait_until(lambda: relay.harness.pool.busy_sockets(key) == 0, what="the socket cleared")
    assert socket.sent[-1] == Clear().to_json() and socket.open
    assert socket in [pooled.socket for pooled in relay.harness.pool.idle_sockets(key)]


@pytest.mark.parametrize(
    ("callback", "upstream_requests"),
    [
        pytest.param(None, 1, id="kept-and-replayed"),
        pytest.param("https://agent.example/done", 2, id="callback"),
    ],
)
async def test_the_cache_replays_a_repeat_unless_the_request_asks_for_a_callback(
    relay: Relay, rest: FakeRest, callback: str | None, upstream_requests: int
) -> None:
    # A callback request's audio goes to the callback, not to the client: nothing to keep, and each must
    # reach Deepgram.
    cached = Synthesizer(
        relay.harness.pool,
        rest,
        relay.harness.credentials,
        relay.harness.breaker,
        AudioCache(relay.harness.clock, 1 << 20, 60),
        RetryPolicy(max_attempts=1, base_delay_s=0.0, max_delay_s=0.0),
        TIMEOUTS,
        relay.metrics,
        relay.harness.clock,
    )
    options = dataclasses.replace(OPTIONS, callback=callback)
    sources = [(await cached.speak(options, "Said twice.", Sink(), websocket=False)).source for _ in range(2)]
    assert len(rest.requests) == upstream_requests
    assert sources == (["rest", "cache"] if callback is None else ["rest", "rest"])
