"""Agents speaking through a Service while pods come and go, keeping score of every utterance.

An utterance counts as delivered when its audio arrives up to Flushed. A socket closed with 1012
(Service Restart) before any audio of the utterance arrived is a drain between utterances: the agent
opens a new socket and says the same sentence again, as a real agent reconnects. Anything else — audio
cut off, another close code, a timeout — is a lost utterance.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import websockets

from ttsfleet import client
from ttsfleet.protocol import CloseCode, Encoding, SpeakOptions

SENTENCE = "Sentence {} of a steady load: the quick brown fox jumps over the lazy dog."
# Below the protocol's 20 flushes per 60 s on one socket (PROTOCOL.md): an agent then reconnects.
UTTERANCES_PER_SESSION = 10
OPTIONS = SpeakOptions(model="aura-2-thalia-en", encoding=Encoding.LINEAR16, sample_rate=16000)


@dataclass
class Score:
    """What a crowd of agents saw."""

    delivered: int = 0
    drained: int = 0  # 1012 between utterances, said again on a new socket
    refused_connections: int = 0  # nothing was said on them
    lost: list[str] = field(default_factory=list)


class _Drained(Exception):
    """The socket was closed for a drain before the utterance began: say it again elsewhere."""


async def _say(session: client.SpeakClient, text: str, score: Score) -> None:
    try:
        utterance = await session.speak(text)
    except client.SpeakFailed as failed:
        code = failed.closure.code if failed.closure else None
        if code == CloseCode.SERVICE_RESTART and failed.partial_audio_bytes == 0:
            raise _Drained from failed
        score.lost.append(f"{text!r}: {failed} after {failed.partial_audio_bytes} bytes")
        raise _Drained from failed  # a new socket for what follows
    except websockets.ConnectionClosed as closed:  # the close arrived before Speak could be sent
        if closed.rcvd is not None and closed.rcvd.code == CloseCode.SERVICE_RESTART:
            raise _Drained from closed
        score.lost.append(f"{text!r}: closed {closed.rcvd}")
        raise _Drained from closed
    if len(utterance.audio) < 1000:
        score.lost.append(f"{text!r}: only {len(utterance.audio)} bytes")
    else:
        score.delivered += 1


async def _agent(url: str, name: str, pause_s: float, stop: asyncio.Event, score: Score) -> None:
    said = 0
    while not stop.is_set():
        try:
            async with client.SpeakClient(url, "unused", OPTIONS) as session:
                for _ in range(UTTERANCES_PER_SESSION):
                    if stop.is_set():
                        return
                    # Distinct text each time, so every utterance goes upstream (no cache hits).
                    await _say(session, SENTENCE.format(f"{name}-{said}"), score)
                    said += 1
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(pause_s):  # the agent's own pace
                            await stop.wait()
        except _Drained:
            score.drained += 1
        except (client.SpeakFailed, OSError, websockets.InvalidHandshake):
            score.refused_connections += 1  # the connection itself failed: nothing was said on it


@contextlib.asynccontextmanager
async def crowd(url: str, name: str, agents: int, pause_s: float = 0.0) -> AsyncIterator[Score]:
    """`agents` agents speaking through `url` until the block ends (each finishes its utterance)."""
    score = Score()
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(_agent(url, f"{name}{i}", pause_s, stop, score), name=f"agent {name}{i}")
        for i in range(agents)
    ]
    try:
        yield score
    finally:
        stop.set()
        await asyncio.gather(*tasks)
