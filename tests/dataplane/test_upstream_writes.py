"""An utterance leaves for the upstream in one write: its Speak messages and its Flush together, framed
as messages of their own, which a real upstream (an emulator process) answers as it answers them sent
one by one."""

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


async def test_speaks_and_their_flush_leave_in_one_write(shared_emulator: ServerProcess) -> None:
    parts = ("The first half of what is said, ", "and the second half of it.")
    socket, _ = await WebSocketConnector(f"ws://127.0.0.1:{shared_emulator.port}", 5).connect(OPTIONS, KEY)
    assert isinstance(socket, WebSocketUpstream)
    try:
        counted = CountedWrites(socket._connection.transport)
        socket._connection.transport = counted
        await socket.send_texts(*(Speak(part).to_json() for part in parts), Flush().to_json())
        assert counted.writes == 1
        target = SpeakTarget(shared_emulator.ws_url, shared_emulator.base_url, KEY)
        alone = await spoken_alone(
            target,
            "".join(parts),
            model=OPTIONS.model,
            encoding=OPTIONS.encoding.value,
            sample_rate=OPTIONS.sample_rate,
        )
        assert await spoken(socket) == alone
    finally:
        await socket.close()
