"""Client sessions speaking in a loop through a backend's Service, as TEN agents do, counting every utterance.

Each session resolves `<name>.<namespace>` through the local fleet's `services.json` (its stand-in for
cluster DNS), speaks the test phrases one after another and compares every utterance's audio with the
emulator's own bytes for that phrase: equal means neither lost nor truncated. Like an agent, a session
that is told to go elsewhere before any audio of an utterance (close 1012 SERVICE-RESTART from a
draining pod, or a refused or dropped handshake) reconnects and says the utterance again; anything else
— audio cut short, wrong audio, a Warning, an error close, a stall — counts as a failed utterance.
A socket may flush 20 times a minute (Deepgram's limit, which the gateway keeps: the 21st Flush is
skipped with a Warning EXCESSIVE_FLUSH), so a session opens a new socket after `FLUSHES_PER_SOCKET`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import websockets

from ttsfleet.protocol import Encoding, SpeakOptions

UTTERANCE_DEADLINE_S = 15.0
PAUSE_S = 0.25  # an agent's pause between sentences: keeps the load light on a two-core machine
RECONNECT_PAUSE_S = 0.05  # an agent's back-off before reconnecting
SERVICE_RESTART = 1012
FLUSHES_PER_SOCKET = 15  # below the 20 a socket may send per minute (ttsfleet.protocol.rules)


@dataclass
class LoadReport:
    """What the sessions saw."""

    completed: int = 0
    failures: list[str] = field(default_factory=list)
    reconnects: int = 0
    pods: set[str] = field(default_factory=set)


class _Reconnect(Exception):
    """The session must reconnect and say the utterance again (nothing of it was received)."""


class SpeakingLoad:
    """`sessions` agents speaking through the Service of `backend`; use as an async context manager."""

    def __init__(
        self,
        services_file: Path,
        backend: str,
        token: str,
        options: SpeakOptions,
        references: Mapping[str, bytes],
        sessions: int = 3,
    ) -> None:
        self.services_file = services_file
        self.backend = backend
        self.token = token
        self.options = options
        self.references = dict(references)
        self.sessions = sessions
        self.report = LoadReport()
        self._stop = asyncio.Event()
        self._progress = asyncio.Event()  # set at every completed or failed utterance
        self.failed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> SpeakingLoad:
        for index in range(self.sessions):
            self._tasks.append(asyncio.create_task(self._session(index), name=f"agent session {index}"))
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    async def completed_at_least(self, count: int, deadline_s: float = 30.0) -> None:
        """Wait until `count` more utterances than now have completed."""
        target = self.report.completed + count
        async with asyncio.timeout(deadline_s):
            while self.report.completed < target and not self.report.failures:
                self._progress.clear()
                await self._progress.wait()

    async def reached_pods(self, count: int, deadline_s: float = 30.0) -> None:
        """Wait until the agents' connections have landed on `count` different pods.

        The Service picks a pod at random per connection, as kube-proxy does, so a few sockets may
        all land on one pod; agents open new ones as they go, and the others are reached in time.
        """
        async with asyncio.timeout(deadline_s):
            while len(self.report.pods) < count and not self.report.failures:
                self._progress.clear()
                await self._progress.wait()

    async def reached_a_pod_outside(self, names: set[str], deadline_s: float = 60.0) -> None:
        """Wait until a connection lands on a pod not in `names` (a replacement).

        A rollout converges while the old pods still drain: they finish the sessions open on them
        (up to the drain timeout) and agents move when they open their next socket.
        """
        async with asyncio.timeout(deadline_s):
            while not self.report.pods - names and not self.report.failures:
                self._progress.clear()
                await self._progress.wait()

    def _fail(self, what: str) -> None:
        self.report.failures.append(what)
        self.failed.set()
        self._progress.set()
        self._stop.set()

    def _url(self) -> str:
        services: dict[str, str] = json.loads(self.services_file.read_text())
        return f"{services[self.backend]}/v1/speak?{self.options.to_query()}"

    async def _session(self, index: int) -> None:
        phrases = sorted(self.references)
        turn = index
        while not self._stop.is_set():
            try:
                async with websockets.connect(
                    self._url(),
                    additional_headers={"Authorization": f"Token {self.token}"},
                    open_timeout=UTTERANCE_DEADLINE_S,
                    max_size=None,
                ) as ws:
                    pod = ws.response.headers.get("x-ttsfleet-pod", "?") if ws.response else "?"
                    self.report.pods.add(pod)
                    async with asyncio.timeout(UTTERANCE_DEADLINE_S):  # Metadata
                        await ws.recv()
                    for _ in range(FLUSHES_PER_SOCKET):
                        if self._stop.is_set():
                            break
                        text = phrases[turn % len(phrases)]
                        await self._utterance(ws, f"session {index} on {pod}", text)
                        turn += 1
                        await asyncio.sleep(PAUSE_S)
                    await ws.send(json.dumps({"type": "Close"}))
            except _Reconnect:
                self.report.reconnects += 1
            except (websockets.InvalidStatus, websockets.InvalidMessage, OSError, EOFError) as refused:
                # A draining pod answers 503; a balancer with no pod closes at once. An agent tries again.
                self.report.reconnects += 1
                if isinstance(refused, websockets.InvalidStatus) and refused.response.status_code != 503:
                    self._fail(f"session {index}: handshake refused: {refused}")
                    return
            except websockets.ConnectionClosed as closed:
                if closed.rcvd is None or closed.rcvd.code != SERVICE_RESTART:
                    self._fail(f"session {index}: closed between utterances: {closed}")
                    return
                self.report.reconnects += 1
            except TimeoutError:
                self._fail(f"session {index}: no Metadata within {UTTERANCE_DEADLINE_S} s")
                return
            if not self._stop.is_set():
                await asyncio.sleep(RECONNECT_PAUSE_S)

    async def _utterance(self, ws: websockets.ClientConnection, where: str, text: str) -> None:
        received: list[bytes] = []
        try:
            await ws.send(json.dumps({"type": "Speak", "text": text}))
            await ws.send(json.dumps({"type": "Flush"}))
            async with asyncio.timeout(UTTERANCE_DEADLINE_S):
                while True:
                    message = await ws.recv()
                    if isinstance(message, bytes):
                        received.append(message)
                    elif (kind := json.loads(message).get("type")) == "Flushed":
                        break
                    elif kind == "Warning":
                        self._fail(f"{where}: {text!r}: a Warning: {message}")
                        return
        except websockets.ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else None
            if not received and code == SERVICE_RESTART:
                raise _Reconnect from None
            self._fail(
                f"{where}: {text!r}: closed with {code} after {sum(map(len, received))} bytes of audio"
            )
            return
        except TimeoutError:
            self._fail(f"{where}: {text!r}: no Flushed within {UTTERANCE_DEADLINE_S} s")
            return
        audio = b"".join(received)
        if audio != self.references[text]:
            expected = len(self.references[text])
            self._fail(f"{where}: {text!r}: {len(audio)} bytes of audio instead of {expected}")
            return
        self.report.completed += 1
        self._progress.set()


def linear16(sample_rate: int, model: str) -> SpeakOptions:
    """The options the load speaks with."""
    return SpeakOptions(model=model, encoding=Encoding.LINEAR16, sample_rate=sample_rate)
