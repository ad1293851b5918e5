"""Audio from a real upstream socket (an emulator process) reaches the sink whole and in order, whichever
way each frame takes: relayed from the socket's own callback when the sink takes it at once, or through
`receive` when it does not — and never relayed once the utterance is being cancelled (a Clear).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from tests.dataplane.fakes import DEFAULT_KEY, FakeCredentials, FakeRest
from tests.support.servers import ServerProcess
from tests.support.speaking import SpeakTarget, spoken_alone
from ttsfleet.dataplane.breaker import CircuitBreaker
from ttsfleet.dataplane.metrics import Metrics
from ttsfleet.dataplane.pool import Pool
from ttsfleet.dataplane.retrying import RetryPolicy
from ttsfleet.dataplane.seams import LoopClock
from ttsfleet.dataplane.settings import PoolSettings, TimeoutSettings
from ttsfleet.dataplane.upstream import WebSocketConnector
from ttsfleet.dataplane.utterances import Synthesizer
from ttsfleet.protocol import Encoding, SocketLimits, SpeakOptions

OPTIONS = SpeakOptions(model="aura-2-thalia-en", encoding=Encoding.LINEAR16, sample_rate=24000)
TIMEOUTS = TimeoutSettings(connect_s=5, first_byte_s=5, inter_chunk_s=5, utterance_s=30)
# Long enough for many frames at the emulator's 100 ms each.
TEXT = "Every frame of this sentence must arrive once, whole, and in the order it was spoken. " * 3


@dataclass
class WaySink:
    """An AudioSink that refuses `audio_now` for its first `refuse` frames and notes each frame's way."""

    refuse: int = 0
    fail: bool = False  # `audio_now` raises, as a client socket's write might
    on_tapped: list[asyncio.Task[object]] = field(default_factory=list)  # cancelled at the first tapped frame
    chunks: list[bytes] = field(default_factory=list)
    ways: list[str] = field(default_factory=list)

    @property
    def bytes_sent(self) -> int:
        return sum(len(chunk) for chunk in self.chunks)

    async def begin(self, content_type: str, source: str) -> None:
        """Raw audio: nothing to announce."""

    async def audio(self, chunk: bytes) -> None:
        self.chunks.append(chunk)
        self.ways.append("receive")

    def audio_now(self, chunk: bytes) -> bool:
        if self.fail:
            raise RuntimeError("the client's socket broke")
        if self.refuse:
            self.refuse -= 1
            return False
        self.chunks.append(chunk)
        self.ways.append("tap")
        for task in self.on_tapped:
            task.cancel()  # as a client's Clear cancels its utterance
        self.on_tapped.clear()
        return True


@contextlib.asynccontextmanager
async def synthesizer_before(upstream: ServerProcess) -> AsyncIterator[Synthesizer]:
    clock = LoopClock()
    credentials = FakeCredentials(key="any-key-the-emulator-takes")
    pool = Pool(
        WebSocketConnector(f"ws://127.0.0.1:{upstream.port}", TIMEOUTS.connect_s),
        credentials,
        CircuitBreaker(clock, failure_threshold=2, open_s=10, half_open_max_probes=1),
        clock,
        PoolSettings(warm_min_per_key=1, max_sockets=4, max_socket_age_s=3300, spare_ratio=0.25),
        TIMEOUTS,
        SocketLimits(),
        DEFAULT_KEY,
    )
    task = asyncio.create_task(pool.run(), name="test:pool")
    try:
        yield Synthesizer(
            pool,
            FakeRest(),
            credentials,
            CircuitBreaker(clock, failure_threshold=5, open_s=10, half_open_max_probes=1),
            None,
            RetryPolicy(max_attempts=1, base_delay_s=0.0, max_delay_s=0.0),
            TIMEOUTS,
            Metrics(),
            clock,
        )
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def direct_audio(upstream: ServerProcess, text: str) -> bytes:
    """What the emulator answers for `text` on a socket of its own."""
    target = SpeakTarget(upstream.ws_url, upstream.base_url, "any-key-the-emulator-takes")
    return await spoken_alone(
        target, text, model=OPTIONS.model, encoding=OPTIONS.encoding.value, sample_rate=OPTIONS.sample_rate
    )


async def test_audio_a_sink_takes_at_once_is_all_relayed_from_the_sockets_callback(
    shared_emulator: ServerProcess,
) -> None:
    expected = await direct_audio(shared_emulator, TEXT)
    async with synthesizer_before(shared_emulator) as synthesizer:
        for _ in range(3):
            sink = WaySink()
            result = await synthesizer.speak(OPTIONS, TEXT, sink, websocket=True)
            assert result.source == "websocket"
            assert b"".join(sink.chunks) == expected
            assert len(sink.ways) > 5
            assert set(sink.ways) == {"tap"}


@pytest.mark.parametrize("refuse", [1, 3, 1000])
async def test_frames_behind_one_the_sink_refused_wait_their_turn(
    shared_emulator: ServerProcess, refuse: int
) -> None:
    expected = await direct_audio(shared_emulator, TEXT)
    async with synthesizer_before(shared_emulator) as synthesizer:
        for _ in range(3):
            sink = WaySink(refuse=refuse)
            await synthesizer.speak(OPTIONS, TEXT, sink, websocket=True)
            assert b"".join(sink.chunks) == expected
            assert sink.ways[: min(refuse, len(sink.ways))] == ["receive"] * min(refuse, len(sink.ways))


async def test_no_frame_is_relayed_once_the_utterance_is_being_cancelled(
    shared_emulator: ServerProcess,
) -> None:
    async with synthesizer_before(shared_emulator) as synthesizer:
        for _ in range(3):
            sink = WaySink()
            utterance = asyncio.create_task(synthesizer.speak(OPTIONS, TEXT, sink, websocket=True))
            sink.on_tapped.append(utterance)
            with pytest.raises(asyncio.CancelledError):
                await utterance
            # The emulator is unpaced: the rest of the audio was on its way as the cancel came.
            assert sink.ways == ["tap"]
        # The cancelled utterances' sockets went back dirty; the next utterance is whole.
        sink = WaySink()
        await synthesizer.speak(OPTIONS, TEXT, sink, websocket=True)
        assert b"".join(sink.chunks) == await direct_audio(shared_emulator, TEXT)


async def test_a_tap_that_raises_leaves_the_frame_and_the_socket_to_the_ordinary_way(
    shared_emulator: ServerProcess,
) -> None:
    expected = await direct_audio(shared_emulator, TEXT)
    async with synthesizer_before(shared_emulator) as synthesizer:
        sink = WaySink(fail=True)
        result = await synthesizer.speak(OPTIONS, TEXT, sink, websocket=True)
        assert result.attempts == 1  # the upstream socket lived on
        assert b"".join(sink.chunks) == expected
        assert set(sink.ways) == {"receive"}
        # The next utterance's tap is a fresh one.
        sink = WaySink()
        await synthesizer.speak(OPTIONS, TEXT, sink, websocket=True)
        assert set(sink.ways) == {"tap"}
