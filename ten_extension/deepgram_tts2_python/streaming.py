"""The request engine: requests streamed in order over one speak socket, each ending exactly once.

Speak per chunk; Flush at the request's end and at sentence ends past a threshold. One pump task per
socket reads its events. A cancel sends Clear and audio is dropped until Cleared. A socket lost between
requests is replaced lazily; one lost before a request got audio is replaced and the text replayed.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from . import budgets, chunking, connecting, deadlines, errors, speak_client

log = logging.getLogger(__name__)

EXCESSIVE_FLUSH = "EXCESSIVE_FLUSH"
# A request is replayed on a new socket at most this often: a socket that always dies is a failure.
MAX_REPLAYS = 2


class SpeakerSink(Protocol):
    """Where a request's audio and outcome go (the TEN extension, or a test)."""

    async def audio_arrived(self, request_id: str, audio: bytes) -> None: ...
    async def request_done(self, request_id: str) -> None: ...
    async def request_failed(self, request_id: str, error: errors.SpeakError) -> None: ...


class Phase(enum.Enum):
    OPEN = "open"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass
class _Request:
    request_id: str
    texts: list[str] = field(default_factory=list)  # everything said, for a replay before any audio
    unflushed: list[str] = field(default_factory=list)
    tail: str = ""
    input_ended: bool = False
    audio_bytes: int = 0
    replays: int = 0
    phase: Phase = Phase.OPEN

    @property
    def unflushed_chars(self) -> int:
        return sum(len(text) for text in self.unflushed)


@dataclass(frozen=True, slots=True)
class _PendingFlush:
    request_id: str
    epoch: int  # how many Clears preceded it on this socket


class Speaker:
    """Streams requests over a speak socket; see the module docstring for the rules it keeps."""

    def __init__(
        self,
        connector: connecting.Connector,
        sink: SpeakerSink,
        sentence_flush_chars: int = 80,
        response_timeout_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._connector = connector
        self._sink = sink
        self._sentence_flush_chars = sentence_flush_chars
        self._response_timeout_s = response_timeout_s
        self._clock = clock
        self._lock = asyncio.Lock()
        self._conn: speak_client.SpeakConnection | None = None
        self._budget = budgets.SocketBudget()
        self._current: _Request | None = None
        self._flushes: deque[_PendingFlush] = deque()
        self._clears: deque[int] = deque()
        self._epoch = 0
        self._cleared = asyncio.Event()
        self._cleared.set()
        self._last_progress = clock()
        self._pumps: set[asyncio.Task[None]] = set()
        self.sockets_opened = 0

    # -- what the extension (and tests) can see ---------------------------------------------------
    @property
    def current_request_id(self) -> str | None:
        return self._current.request_id if self._current else None

    @property
    def is_clearing(self) -> bool:
        """Whether a Clear still waits for its Cleared (audio is being dropped)."""
        return bool(self._clears)

    @property
    def owes_audio(self) -> bool:
        """Whether a Flush or Clear still waits for the server's answer."""
        return bool(self._flushes or self._clears)

    @property
    def is_connected(self) -> bool:
        return self._conn is not None and self._conn.is_open

    # -- requests ---------------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the first socket early: warm for the first request, and bad credentials seen at once."""
        async with self._lock:
            await self._ensure_connection(attempts=1)

    async def begin(self, request_id: str) -> None:
        """Make `request_id` the current request on a usable socket; raises SpeakError if none can be had."""
        if self._clears:
            try:
                async with deadlines.timeout(self._response_timeout_s):
                    await self._cleared.wait()
            except TimeoutError:
                log.warning("no Cleared within %.1f s: replacing the socket", self._response_timeout_s)
        async with self._lock:
            if self._conn is not None and (
                self._clears or not self._budget.has_room_for_request(self._clock())
            ):
                await self._drop_connection()  # stalled Clear, or near Deepgram's per-socket limits
            self._current = _Request(request_id)
            await self._ensure_connection()

    async def say(self, request_id: str, text: str) -> None:
        """Send one chunk of the request's text; a Flush follows at a sentence end past the threshold."""
        async with self._lock:
            request = self._open_request(request_id)
            if request is None or not chunking.is_speakable(text):
                return
            piece = chunking.joined(request.tail, text)
            request.texts.append(piece)
            request.unflushed.append(piece)
            request.tail = piece
            if not await self._send_text(request, piece):
                return
            if (
                request.unflushed_chars >= self._sentence_flush_chars
                and chunking.ends_sentence(piece)
                # Keep one Flush in reserve for the request's end.
                and self._budget.flushes_left(self._clock()) > 1
            ):
                await self._send_flush(request)

    async def finish(self, request_id: str) -> None:
        """No more text for the request: flush what waits, and end it once its audio is all in."""
        async with self._lock:
            request = self._open_request(request_id)
            if request is None:
                return
            request.input_ended = True
            if request.unflushed:
                await self._send_flush(request)
            await self._complete_if_done(request)

    async def cancel(self, request_id: str | None = None) -> bool:
        """Stop the current request (Clear upstream); True if it was still open. No callback follows."""
        async with self._lock:
            request = self._current
            if request is None or request.phase is not Phase.OPEN:
                return False
            if request_id is not None and request.request_id != request_id:
                return False
            request.phase = Phase.CANCELLED
            if request.texts and self._conn is not None and self._conn.is_open:
                self._epoch += 1
                self._clears.append(self._epoch)
                self._cleared.clear()
                self._last_progress = self._clock()
                try:
                    await self._conn.clear()
                except errors.ConnectionLost:
                    await self._drop_connection()
            return True

    async def close(self) -> None:
        """Close the socket and stop its pump; the current request, if open, gets no further callback."""
        async with self._lock:
            if self._current is not None and self._current.phase is Phase.OPEN:
                self._current.phase = Phase.CANCELLED
            await self._drop_connection()
        for task in list(self._pumps):
            task.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)

    # -- sending (lock held) ----------------------------------------------------------------------
    def _open_request(self, request_id: str) -> _Request | None:
        request = self._current
        if request is None or request.request_id != request_id or request.phase is not Phase.OPEN:
            return None
        return request

    async def _send_text(self, request: _Request, text: str) -> bool:
        try:
            conn = await self._ensure_connection()
            for piece in chunking.split_for_speak(text):
                await conn.speak(piece)
                self._budget.spend_chars(len(piece), self._clock())
        except errors.ConnectionLost as exc:
            return await self._recover(self._conn, exc)
        except errors.SpeakError as exc:
            await self._fail(request, exc)
            return False
        return True

    async def _send_flush(self, request: _Request) -> None:
        request.unflushed.clear()
        self._flushes.append(_PendingFlush(request.request_id, self._epoch))
        self._budget.spend_flush(self._clock())
        self._last_progress = self._clock()
        conn = self._conn
        try:
            if conn is None:
                raise errors.ConnectionLost(None, "no socket")
            await conn.flush()
        except errors.ConnectionLost as exc:
            await self._recover(conn, exc)

    async def _ensure_connection(
        self, after_failure: bool = False, attempts: int | None = None
    ) -> speak_client.SpeakConnection:
        if self._conn is not None and self._conn.is_open:
            return self._conn
        if self._conn is not None:
            await self._drop_connection()
        conn = await self._connector.open(after_failure=after_failure, attempts=attempts)
        self.sockets_opened += 1
        self._conn = conn
        self._budget = budgets.SocketBudget()
        pump = asyncio.create_task(self._pump(conn), name=f"speak-pump-{self.sockets_opened}")
        self._pumps.add(pump)
        pump.add_done_callback(self._pump_exited)
        return conn

    def _pump_exited(self, task: asyncio.Task[None]) -> None:
        self._pumps.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("speak pump failed", exc_info=task.exception())

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        self._forget_socket_state()
        if conn is not None:
            await conn.close()

    def _forget_socket_state(self) -> None:
        self._flushes.clear()
        self._clears.clear()
        self._cleared.set()

    # -- outcomes (lock held) ---------------------------------------------------------------------
    async def _complete_if_done(self, request: _Request) -> None:
        owed = any(flush.request_id == request.request_id for flush in self._flushes)
        if request.phase is Phase.OPEN and request.input_ended and not request.unflushed and not owed:
            request.phase = Phase.DONE
            await self._sink.request_done(request.request_id)

    async def _fail(self, request: _Request, error: errors.SpeakError) -> None:
        if request.phase is Phase.OPEN:
            request.phase = Phase.FAILED
            await self._sink.request_failed(request.request_id, error)

    async def _recover(self, conn: speak_client.SpeakConnection | None, error: errors.SpeakError) -> bool:
        """`conn` is gone: replay the current request on a new socket if nothing was heard, else fail it."""
        if conn is not self._conn:
            return self._current is not None and self._current.phase is Phase.OPEN  # already handled
        owed = any(
            self._current is not None and flush.request_id == self._current.request_id
            for flush in self._flushes
        )
        self._conn = None
        self._forget_socket_state()
        if conn is not None:
            await conn.close()
        request = self._current
        if request is None or request.phase is not Phase.OPEN or not request.texts:
            return True  # nothing in flight: the next request opens a socket
        if owed and request.audio_bytes > 0:
            await self._fail(request, error)  # half an utterance cannot be redone without repeating it
            return False
        if not error.retryable or request.replays >= MAX_REPLAYS:
            await self._fail(request, error)
            return False
        request.replays += 1
        replay = request.texts if owed else list(request.unflushed)
        flush_again = owed
        log.info("speak socket lost (%s): replaying %d chunk(s) on a new socket", error, len(replay))
        try:
            new_conn = await self._ensure_connection(after_failure=True)
            for piece in chunking.split_for_speak("".join(replay)):
                await new_conn.speak(piece)
                self._budget.spend_chars(len(piece), self._clock())
        except errors.SpeakError as exc:
            await self._fail(request, exc)
            return False
        if flush_again:
            await self._send_flush(request)
        return True

    # -- receiving (one pump per socket) ----------------------------------------------------------
    async def _pump(self, conn: speak_client.SpeakConnection) -> None:
        while True:
            try:
                async with deadlines.timeout(self._response_timeout_s):
                    event = await conn.events.get()
            except TimeoutError:
                async with self._lock:
                    if conn is not self._conn:
                        return
                    owed = bool(self._flushes or self._clears)
                    if owed and self._clock() - self._last_progress >= self._response_timeout_s:
                        log.warning("speak socket silent for %.1f s: replacing it", self._response_timeout_s)
                        await self._recover(conn, errors.SpeakTimeout("no audio, Flushed or Cleared in time"))
                        return
                continue
            async with self._lock:
                if conn is not self._conn:
                    return  # replaced: whatever it still says belongs to nobody
                self._last_progress = self._clock()
                if isinstance(event, speak_client.Closed):
                    await self._recover(conn, errors.ConnectionLost(event.code, event.reason))
                    return
                await self._handle(event)

    async def _handle(self, event: speak_client.Event) -> None:
        request = self._current
        if isinstance(event, speak_client.Audio):
            if self._clears or request is None or request.phase is not Phase.OPEN:
                return  # audio of cleared text, or for a request already over
            request.audio_bytes += len(event.data)
            await self._sink.audio_arrived(request.request_id, event.data)
        elif isinstance(event, speak_client.Flushed):
            if self._flushes and (not self._clears or self._flushes[0].epoch < self._epoch):
                self._flushes.popleft()
            if request is not None:
                await self._complete_if_done(request)
        elif isinstance(event, speak_client.Cleared):
            if self._clears:
                epoch = self._clears.popleft()
                self._flushes = deque(flush for flush in self._flushes if flush.epoch >= epoch)
            if not self._clears:
                self._cleared.set()
        elif isinstance(event, speak_client.Warning):
            log.warning("speak socket warning %s: %s", event.code, event.message)
            if event.code == EXCESSIVE_FLUSH:
                # The server counts Flushes more strictly than our budget: spend the rest of it, so the
                # next request starts on a fresh socket instead of being skipped too.
                self._budget.exhaust_flushes(self._clock())
                if self._flushes:
                    skipped = self._flushes.pop()  # the server skipped the Flush it just received
                    if request is not None and request.request_id == skipped.request_id:
                        await self._fail(request, errors.FlushSkipped(event.code, event.message))
        elif isinstance(event, speak_client.ServerError):
            # The server gave up on this socket: fail the request now (waiting would only run into the
            # response timeout) and start the next request on a new socket.
            log.warning("speak socket error %s: %s", event.code, event.message)
            if request is not None:
                await self._fail(request, errors.ServerError(event.code, event.message))
            await self._drop_connection()
