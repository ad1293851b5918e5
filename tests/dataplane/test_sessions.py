"""One client session on fakes (client socket, upstream sockets), in virtual loop time: ordering, Clear,
protocol closes, Close, drain and upstream failures, each answered in the protocol's own terms.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.dataplane.fakes import (
    RELAY_TIMEOUTS,
    SCRIPTED_OPTIONS,
    FakeClient,
    FakeConnector,
    FakeRest,
    FakeSocket,
    relaying,
    running_pool,
    scripted,
)
from tests.support.waiting import wait_until
from ttsfleet.dataplane import limits
from ttsfleet.dataplane.metrics import Metrics
from ttsfleet.dataplane.pool import Pool
from ttsfleet.dataplane.seams import LoopClock
from ttsfleet.dataplane.sessions import Session, SessionContext, SessionState
from ttsfleet.dataplane.sockets import PoolKey
from ttsfleet.protocol import Closure

pytestmark = pytest.mark.looptime

TIMEOUTS = RELAY_TIMEOUTS
OPTIONS = SCRIPTED_OPTIONS
METADATA = json.dumps({"type": "Metadata", "request_id": "r"})


@dataclass
class Running:
    client: FakeClient
    session: Session
    task: asyncio.Task[Closure | None]
    connector: FakeConnector
    pool: Pool

    async def frame(self) -> Any:
        """The next frame the gateway sent: parsed JSON, or audio bytes."""
        async with asyncio.timeout(30):
            frame = await self.client.outbox.get()
        return frame if isinstance(frame, bytes) else json.loads(frame)

    async def frames_until(self, message_type: str) -> list[Any]:
        frames = [await self.frame()]
        while isinstance(frames[-1], bytes) or frames[-1]["type"] != message_type:
            frames.append(await self.frame())
        return frames

    async def ended(self) -> Closure | None:
        async with asyncio.timeout(30):
            return await self.task

    def say(self, *messages: dict[str, Any]) -> None:
        for message in messages:
            self.client.send(json.dumps(message))


SPEAK = {"type": "Speak", "text": "Sessions keep order."}
FLUSH = {"type": "Flush"}


@pytest.fixture
def connector() -> FakeConnector:
    return FakeConnector()


@pytest.fixture
async def running(connector: FakeConnector) -> AsyncIterator[Running]:
    clock = LoopClock()
    async with running_pool(clock, connector, TIMEOUTS) as harness:
        metrics = Metrics()
        synthesizer = relaying(harness, FakeRest(), metrics, TIMEOUTS)
        ctx = SessionContext(
            synthesizer=synthesizer,
            pool=harness.pool,
            limiter=limits.CharacterLimiter(clock, 20000),
            metrics=metrics,
            clock=clock,
            max_speak_chars=2000,
            send_buffer_bytes=1 << 20,
            slow_client_grace_s=TIMEOUTS.inter_chunk_s,
        )
        client = FakeClient()
        session = Session(client, OPTIONS, "token-a", ctx)
        task = asyncio.create_task(session.run(METADATA), name="test:session")
        run = Running(client, session, task, connector, harness.pool)
        assert (await run.frame())["type"] == "Metadata"
        yield run
        if not task.done():
            client.leave()
        # Bounded: a session that cannot end is the test's failure, not a hang of the suite.
        done, _ = await asyncio.wait({task}, timeout=30)
        assert done, "the session did not end after its client left"


def _types(frames: list[Any]) -> list[str]:
    collapsed: list[str] = []
    for frame in frames:
        kind = "Audio" if isinstance(frame, bytes) else frame["type"]
        if not (kind == "Audio" and collapsed and collapsed[-1] == "Audio"):
            collapsed.append(kind)
    return collapsed


async def test_flushes_answer_audio_then_flushed_with_the_clients_sequence_ids(running: Running) -> None:
    running.say(SPEAK, FLUSH, FLUSH, SPEAK, FLUSH)
    first = await running.frames_until("Flushed")
    assert _types(first) == ["Audio", "Flushed"] and first[-1]["sequence_id"] == 0
    assert await running.frame() == {"type": "Flushed", "sequence_id": 1}  # nothing buffered: at once
    third = await running.frames_until("Flushed")
    assert _types(third) == ["Audio", "Flushed"] and third[-1]["sequence_id"] == 2


async def _speaking_into_a_stall(running: Running, connector: FakeConnector) -> None:
    """An utterance whose audio has begun and never ends."""
    connector.make = scripted(FakeSocket(chunks=3, stall_after=1))
    running.say(SPEAK, FLUSH)
    assert isinstance(await running.frame(), bytes)


@pytest.mark.parametrize("clears", [1, 2], ids=["one-clear", "a-second-before-the-first-took"])
async def test_clear_answers_cleared_and_no_audio_of_the_cleared_utterance_follows(
    running: Running, connector: FakeConnector, clears: int
) -> None:
    await _speaking_into_a_stall(running, connector)
    running.say(*[{"type": "Clear"}] * clears)
    for sequence_id in range(clears):
        assert await running.frame() == {"type": "Cleared", "sequence_id": sequence_id}
    running.say({"type": "Speak", "text": "Fresh start."}, FLUSH)
    after = await running.frames_until("Flushed")
    assert _types(after) == ["Audio", "Flushed"] and after[-1]["sequence_id"] == 1


async def test_a_clear_as_the_session_is_cut_still_ends_the_session(
    running: Running, connector: FakeConnector
) -> None:
    # The Clear cancels the utterance as the session's end cancels everything: the session still ends.
    await _speaking_into_a_stall(running, connector)
    running.say({"type": "Clear"})
    running.session.cut()
    ended = await running.ended()
    assert ended is not None and (int(ended.code), ended.reason.value) == (1012, "SERVICE-RESTART")


@pytest.mark.parametrize(
    ("frame", "closure"),
    [
        pytest.param(b"\x00", (1003, "MESSAGE-0000"), id="binary"),
        pytest.param("not json", (1008, "DATA-0000"), id="not-json"),
        pytest.param('{"type": "Shout"}', (1008, "DATA-0000"), id="unknown-type"),
        pytest.param(json.dumps({"type": "Speak", "text": "x" * 2001}), (1009, "BIG-0001"), id="long-speak"),
        pytest.param('{"type": "Speak", "text": "\\ud800"}', (1008, "DATA-0000"), id="lone-surrogate"),
    ],
)
async def test_protocol_violations_close_with_the_protocols_codes(
    running: Running, frame: str | bytes, closure: tuple[int, str]
) -> None:
    if isinstance(frame, bytes):
        running.client.send_binary(frame)
    else:
        running.client.send(frame)
    ended = await running.ended()
    assert ended is not None and (int(ended.code), ended.reason.value) == closure
    assert running.client.closed is not None and running.client.closed.result() == closure
    assert running.session.state is SessionState.CLOSED


async def test_close_finishes_pending_flushes_then_closes_normally(running: Running) -> None:
    running.say(SPEAK, FLUSH, {"type": "Close"})
    assert _types(await running.frames_until("Flushed")) == ["Audio", "Flushed"]
    ended = await running.ended()
    assert ended is not None and int(ended.code) == 1000
    assert running.client.closed is not None and running.client.closed.result() == (1000, "")


async def test_a_drain_lets_the_utterance_finish_then_closes_with_1012(
    running: Running, connector: FakeConnector
) -> None:
    connector.make = lambda: FakeSocket(chunks=4, gap_s=0.5)
    running.say(SPEAK, FLUSH)
    assert isinstance(await running.frame(), bytes)
    running.session.begin_drain()
    assert running.session.state is SessionState.DRAINING
    assert _types(await running.frames_until("Flushed")) == ["Audio", "Flushed"]
    ended = await running.ended()
    assert ended is not None and (int(ended.code), ended.reason.value) == (1012, "SERVICE-RESTART")


async def test_an_idle_session_closes_with_1012_as_soon_as_the_drain_begins(running: Running) -> None:
    running.session.begin_drain()
    ended = await running.ended()
    assert ended is not None and int(ended.code) == 1012


async def test_an_upstream_failure_after_audio_closes_with_1011_net_0000(
    running: Running, connector: FakeConnector
) -> None:
    connector.make = lambda: FakeSocket(chunks=3, stall_after=1)
    running.say(SPEAK, FLUSH)
    assert isinstance(await running.frame(), bytes)
    ended = await running.ended()
    assert ended is not None and (int(ended.code), ended.reason.value) == (1011, "NET-0000")


async def test_a_client_that_leaves_ends_the_session_without_a_close_frame(running: Running) -> None:
    running.client.leave()
    assert await running.ended() is None
    assert running.client.closed is None


KEY = PoolKey.of(OPTIONS)


async def _spoken_once(running: Running) -> None:
    """One utterance spoken and done: the key's socket waits idle for the next."""
    running.say(SPEAK, FLUSH)
    await running.frames_until("Flushed")
    await wait_until(lambda: list(running.pool.idle_sockets(KEY)), what="the socket back in the pool")


async def test_text_flushed_while_the_session_waits_is_upstream_before_the_next_frame_is_read(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Under load each task switch waits behind every other connection's callbacks: the utterance's text
    # must leave where its Flush was read, not once the driver and then the utterance's task had a turn.
    await _spoken_once(running)
    sent_at_each_read: list[list[Any]] = []
    receive = running.client.receive

    async def noting_receive() -> dict[str, Any]:
        sent = (json.loads(text) for _, _, upstream in running.connector.opened for text in upstream.sent)
        sent_at_each_read.append(list(sent))
        return await receive()

    monkeypatch.setattr(running.client, "receive", noting_receive)
    second = {"type": "Speak", "text": "Sent where it was read."}
    running.say(second, FLUSH)
    await running.frames_until("Flushed")
    # The reader's last read began as soon as it had handled the Flush: the text was upstream by then.
    assert second in sent_at_each_read[-1]


async def test_a_clear_right_after_the_flush_clears_the_begun_text_upstream_and_keeps_the_socket(
    running: Running,
) -> None:
    await _spoken_once(running)
    never = {"type": "Speak", "text": "Never heard."}
    running.say(never, FLUSH, {"type": "Clear"})
    assert await running.frame() == {"type": "Cleared", "sequence_id": 0}
    # The text had gone upstream; its socket is cleared of it and serves on, and no socket is leaked.
    (upstream,) = [s for _, _, s in running.connector.opened if json.dumps(never) in s.sent]
    await wait_until(lambda: upstream.sent[-1] == '{"type":"Clear"}', what="the begun text cleared")
    await wait_until(lambda: running.pool.busy_sockets(KEY) == 0, what="no socket busy")
    running.say(SPEAK, FLUSH)
    after = await running.frames_until("Flushed")
    assert _types(after) == ["Audio", "Flushed"] and after[-1]["sequence_id"] == 2
    assert all(socket.open for _, _, socket in running.connector.opened)


async def test_a_client_leaving_right_after_its_flush_leaves_no_socket_leased(running: Running) -> None:
    await _spoken_once(running)
    running.say({"type": "Speak", "text": "Begun, then nobody listens."}, FLUSH)
    running.client.leave()
    assert await running.ended() is None
    await wait_until(lambda: running.pool.busy_sockets(KEY) == 0, what="no socket busy")
    assert running.pool.leased_sockets == 0
