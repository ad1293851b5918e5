"""An utterance leaves for the upstream in one write: its Speak messages and its Flush together, framed
as messages of their own, which a real upstream (an emulator process) answers as it answers them sent
one by one. `send_texts_now` writes them without a task switch, or, where it would have to wait, sends
nothing and says so."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.support.servers import ServerProcess
from tests.support.speaking import SpeakTarget, spoken_alone
from ttsfleet.dataplane.upstream import WebSocketConnector, WebSocketUpstream
from ttsfleet.protocol import Encoding, Flush, Flushed, Speak, SpeakOptions, parse_server_message

OPTIONS = SpeakOptions(model="aura-2-thalia-en", encoding=Encoding.LINEAR16, sample_rate=24000)
KEY = "any-key-the-emulator-takes"


class CountedWrites:
    """A transport that counts the writes passed through it."""

    def __init__(self, transport: Any) -> None:
        self._transport = transport
        self.writes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


async def spoken(socket: WebSocketUpstream) -> bytes:
    audio = bytearray()
    async with asyncio.timeout(10):
        while True:
            frame = await socket.receive()
            if isinstance(frame, bytes):
                audio += frame
            elif isinstance(parse_server_message(frame), Flushed):
                return bytes(audio)


async def spoken_alone_by(emulator: ServerProcess, text: str) -> bytes:
    """The audio the emulator speaks for `text` on a socket of its own: what a shared socket must match."""
    target = SpeakTarget(emulator.ws_url, emulator.base_url, KEY)
    return await spoken_alone(
        target, text, model=OPTIONS.model, encoding=OPTIONS.encoding.value, sample_rate=OPTIONS.sample_rate
    )


async def test_texts_sent_now_are_written_before_the_call_returns_and_answered_in_full(
    shared_emulator: ServerProcess,
) -> None:
    text = "Written before the call returns."
    socket, _ = await WebSocketConnector(f"ws://127.0.0.1:{shared_emulator.port}", 5).connect(OPTIONS, KEY)
    assert isinstance(socket, WebSocketUpstream)
    try:
        counted = CountedWrites(socket._connection.transport)
        socket._connection.transport = counted
        assert socket.send_texts_now(Speak(text).to_json(), Flush().to_json())
        assert counted.writes == 1
        assert await spoken(socket) == await spoken_alone_by(shared_emulator, text)
    finally:
        await socket.close()
    # Closed: nothing is written, and the caller learns it must take the waiting way.
    writes = counted.writes
    assert not socket.send_texts_now(Speak(text).to_json(), Flush().to_json())
    assert counted.writes == writes


async def test_texts_are_not_sent_now_while_the_network_has_not_taken_earlier_writes(
    shared_emulator: ServerProcess,
) -> None:
    socket, _ = await WebSocketConnector(f"ws://127.0.0.1:{shared_emulator.port}", 5).connect(OPTIONS, KEY)
    assert isinstance(socket, WebSocketUpstream)
    try:
        connection = socket._connection
        connection.pause_writing()  # what the transport calls over its high-water mark
        counted = CountedWrites(connection.transport)
        connection.transport = counted
        assert not socket.send_texts_now(Speak("Later.").to_json(), Flush().to_json())
        assert counted.writes == 0
        connection.resume_writing()
        assert socket.send_texts_now(Speak("Now.").to_json(), Flush().to_json())
        assert counted.writes == 1
    finally:
        await socket.close()


async def test_speaks_and_their_flush_leave_in_one_write(shared_emulator: ServerProcess) -> None:
    parts = ("The first half of what is said, ", "and the second half of it.")
    socket, _ = await WebSocketConnector(f"ws://127.0.0.1:{shared_emulator.port}", 5).connect(OPTIONS, KEY)
    assert isinstance(socket, WebSocketUpstream)
    try:
        counted = CountedWrites(socket._connection.transport)
        socket._connection.transport = counted
        await socket.send_texts(*(Speak(part).to_json() for part in parts), Flush().to_json())
        assert counted.writes == 1
        assert await spoken(socket) == await spoken_alone_by(shared_emulator, "".join(parts))
    finally:
        await socket.close()
