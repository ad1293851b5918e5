"""The client sender on a fake socket, in loop time: order, bounded audio, Clear, slow and gone clients."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.dataplane.fakes import FakeClient
from ttsfleet.dataplane import errors
from ttsfleet.dataplane.sending import ClientGone, ClientSender, SegmentSink

pytestmark = pytest.mark.looptime

GRACE_S = 5.0


class BrokenClient(FakeClient):
    async def send_bytes(self, data: bytes) -> None:
        raise ConnectionResetError("peer vanished")


@pytest.fixture
async def client() -> FakeClient:
    return FakeClient()


@pytest.fixture
async def running(client: FakeClient) -> AsyncIterator[ClientSender]:
    sender = ClientSender(client, max_bytes=1000, grace_s=GRACE_S)
    task = asyncio.create_task(sender.run(), name="test:sender")
    yield sender
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_frames_go_out_in_the_order_they_were_queued(running: ClientSender, client: FakeClient) -> None:
    sink = SegmentSink(running)
    running.push_text("first")
    await sink.audio(b"a" * 10)
    running.push_text("last")
    assert [await client.outbox.get() for _ in range(3)] == ["first", b"a" * 10, "last"]
    assert sink.bytes_sent == 10


async def test_a_client_that_reads_nothing_is_a_slow_client_after_the_grace(client: FakeClient) -> None:
    sender = ClientSender(client, max_bytes=1000, grace_s=GRACE_S)  # nothing runs the sender: nobody reads
    loop = asyncio.get_running_loop()
    await sender.push_audio(b"x" * 1000)
    started = loop.time()
    with pytest.raises(errors.SlowClient):
        await sender.push_audio(b"y")
    assert loop.time() - started == pytest.approx(GRACE_S)


async def test_one_chunk_larger_than_the_buffer_still_goes_when_the_buffer_is_empty(
    client: FakeClient,
) -> None:
    sender = ClientSender(client, max_bytes=10, grace_s=GRACE_S)
    await sender.push_audio(b"z" * 100)
    assert await sender.flush(1.0)
    assert client.outbox.get_nowait() == b"z" * 100


async def test_discarding_audio_keeps_messages_in_order_and_frees_room(client: FakeClient) -> None:
    sender = ClientSender(client, max_bytes=1000, grace_s=GRACE_S)
    sender.push_text("Metadata")
    await sender.push_audio(b"x" * 1000)
    sender.push_text("Warning")
    assert sender.discard_audio() == 1000
    await sender.push_audio(b"y" * 1000)  # room again, no wait
    sender.push_text("Cleared")
    assert await sender.flush(1.0)
    sent = [client.outbox.get_nowait() for _ in range(client.outbox.qsize())]
    assert sent == ["Metadata", "Warning", b"y" * 1000, "Cleared"]


async def test_a_failed_send_means_the_client_is_gone() -> None:
    sender = ClientSender(BrokenClient(), max_bytes=1000, grace_s=GRACE_S)
    await sender.push_audio(b"x")
    with pytest.raises(ClientGone):
        await sender.run()
    assert sender.gone
    with pytest.raises(ClientGone):
        await sender.push_audio(b"x")


class DirectSocket:
    """A connection's direct writer: takes frames at once until its flow control closes."""

    def __init__(self) -> None:
        self.written: list[str | bytes] = []
        self.open = True

    def write_now(self, frame: str | bytes) -> bool:
        if self.open:
            self.written.append(frame)
        return self.open


async def test_frames_the_socket_can_take_are_on_it_when_the_push_returns(client: FakeClient) -> None:
    direct = DirectSocket()
    sender = ClientSender(client, max_bytes=1000, grace_s=GRACE_S, write_now=direct.write_now)  # no run task
    sender.push_text("Metadata")
    await SegmentSink(sender).audio(b"a" * 10)
    assert direct.written == ["Metadata", b"a" * 10]
    assert client.outbox.empty()


async def test_once_the_socket_waits_later_frames_queue_behind_it_in_order(client: FakeClient) -> None:
    direct = DirectSocket()
    sender = ClientSender(client, max_bytes=1000, grace_s=GRACE_S, write_now=direct.write_now)
    await sender.push_audio(b"a")
    direct.open = False  # the client's buffer filled: flow control
    await sender.push_audio(b"b")
    direct.open = True  # room again, but "b" is still queued: "c" must not overtake it
    sender.push_text("Flushed")
    await sender.push_audio(b"c")
    assert direct.written == [b"a"]
    assert await sender.flush(1.0)
    assert [client.outbox.get_nowait() for _ in range(3)] == [b"b", "Flushed", b"c"]
    await sender.push_audio(b"d")  # the queue is empty again: straight out
    assert direct.written == [b"a", b"d"]


async def test_audio_waiting_for_a_closed_flow_is_still_bounded(client: FakeClient) -> None:
    closed = DirectSocket()
    closed.open = False
    sender = ClientSender(client, max_bytes=1000, grace_s=GRACE_S, write_now=closed.write_now)
    await sender.push_audio(b"x" * 1000)
    with pytest.raises(errors.SlowClient):
        await sender.push_audio(b"y")
