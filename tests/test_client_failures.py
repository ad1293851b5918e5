"""How `ttsfleet.client` reports an utterance that did not finish: the closure and the audio that came."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from websockets.asyncio.server import ServerConnection, serve

from ttsfleet import client
from ttsfleet.protocol import CloseCode

Handler = Callable[[ServerConnection], Awaitable[None]]


async def metadata(connection: ServerConnection) -> None:
    await connection.send(json.dumps({"type": "Metadata", "request_id": "r", "model_name": "m"}))


async def cut_inside(connection: ServerConnection) -> None:
    """Two audio frames of the utterance, then 1012: a drain that did not wait for the utterance."""
    await metadata(connection)
    await connection.recv()  # Speak
    await connection.recv()  # Flush
    await connection.send(b"\x00" * 640)
    await connection.send(b"\x00" * 320)
    await connection.close(CloseCode.SERVICE_RESTART, "")


async def drained_between(connection: ServerConnection) -> None:
    """1012 before any audio of the utterance: a drain between utterances."""
    await metadata(connection)
    await connection.recv()
    await connection.recv()
    await connection.close(CloseCode.SERVICE_RESTART, "")


@pytest.fixture
async def server(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    handler: Handler = request.param
    async with serve(handler, "127.0.0.1", 0) as running:
        port = next(iter(running.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}"


@pytest.mark.parametrize(
    ("server", "audio_bytes"),
    [pytest.param(cut_inside, 960, id="cut-inside"), pytest.param(drained_between, 0, id="between")],
    indirect=["server"],
)
async def test_a_failed_utterance_says_how_much_of_its_audio_arrived(server: str, audio_bytes: int) -> None:
    async with client.SpeakClient(server, "token") as session:
        with pytest.raises(client.SpeakFailed) as failed:
            await session.speak("Hello.")
    assert failed.value.closure is not None
    assert failed.value.closure.code == CloseCode.SERVICE_RESTART
    assert failed.value.partial_audio_bytes == audio_bytes
