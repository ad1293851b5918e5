"""One client speak session: read and validate frames, run utterances in order, answer in the protocol.

Three tasks share a TaskGroup: the reader (frames → `ServerSocketRules` → actions), the driver (one
utterance at a time, Flushed with the client's own sequence ids) and the sender. Clear cancels the
running utterance, drops queued audio and answers Cleared; draining closes with 1012 between utterances.
A Flush read while the driver waits for work begins its utterance there and then (`Synthesizer.begin`):
the text goes upstream before the driver and the utterance's task have had their turns of the loop.
"""

from __future__ import annotations

import asyncio
import enum
import math
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from ttsfleet.dataplane import answers, errors, limits
from ttsfleet.dataplane.metrics import Metrics
from ttsfleet.dataplane.pool import Pool
from ttsfleet.dataplane.seams import Clock
from ttsfleet.dataplane.sending import ClientGone, ClientSender, SegmentSink, WriteNow
from ttsfleet.dataplane.sockets import PoolKey
from ttsfleet.dataplane.utterances import Synthesizer, Utterance
from ttsfleet.protocol import (
    NORMAL_CLOSURE,
    Cleared,
    ClearRequested,
    CloseReason,
    CloseRequested,
    Closure,
    Flushed,
    FlushRefused,
    ProtocolViolation,
    ServerAction,
    ServerSocketRules,
    SocketLimits,
    SpeakOptions,
    SynthesisRequested,
    TextBuffered,
)

log = structlog.get_logger(__name__)

CLOSE_FLUSH_S = 2.0  # time to send what is queued before a graceful close
DRAIN_CLOSURE = Closure.for_reason(CloseReason.DRAINING)
REVOKED_CLOSURE = Closure.for_reason(CloseReason.TOKEN_REVOKED)


class SessionState(enum.Enum):
    """A client session's lifecycle; `Session.transition` is the only way to change it."""

    OPEN = "open"
    DRAINING = "draining"  # closes with 1012 once no utterance is in flight
    CLOSING = "closing"
    CLOSED = "closed"


_TRANSITIONS = {
    SessionState.OPEN: {SessionState.DRAINING, SessionState.CLOSING},
    SessionState.DRAINING: {SessionState.CLOSING},
    SessionState.CLOSING: {SessionState.CLOSED},
    SessionState.CLOSED: set(),
}


class ClientSocket(Protocol):
    """What a session needs of starlette's WebSocket."""

    async def receive(self) -> Any: ...

    async def send_text(self, data: str) -> None: ...

    async def send_bytes(self, data: bytes) -> None: ...

    async def close(self, code: int = 1000, reason: str | None = None) -> None: ...


@dataclass(frozen=True, slots=True)
class _Segment:
    text: str
    sequence_id: int
    epoch: int
    begun: Utterance | None = None  # begun where it was read; abandoned if it never runs


_CLOSE = object()  # queued after a Close: finish what came before, then close normally


@dataclass(frozen=True)
class SessionContext:
    """What every session shares."""

    synthesizer: Synthesizer
    pool: Pool
    limiter: limits.CharacterLimiter
    metrics: Metrics
    clock: Clock
    max_speak_chars: int
    send_buffer_bytes: int
    slow_client_grace_s: float


class Session:
    """One accepted client WebSocket."""

    def __init__(
        self,
        socket: ClientSocket,
        options: SpeakOptions,
        token_id: str | None,
        ctx: SessionContext,
        write_now: WriteNow | None = None,
    ) -> None:
        self._socket = socket
        self._options = options
        self._token_id = token_id
        self._ctx = ctx
        self.state = SessionState.OPEN
        self._sender = ClientSender(socket, ctx.send_buffer_bytes, ctx.slow_client_grace_s, write_now)
        # The gateway never closes idle clients (agents idle for long) nor old ones (it recycles upstream).
        socket_limits = SocketLimits(
            max_speak_chars=ctx.max_speak_chars, idle_timeout_s=math.inf, max_socket_age_s=math.inf
        )
        self._rules = ServerSocketRules(socket_limits, ctx.clock.monotonic())
        self._queue: asyncio.Queue[_Segment | object] = asyncio.Queue()
        self._epoch = 0
        self._current: asyncio.Task[Any] | None = None
        self._in_utterance = False
        self._closure: Closure | None = None
        self._closure_when_idle: Closure | None = None  # a drain's or a revocation's, due between utterances
        self._ended = asyncio.Event()
        self.utterances = 0

    def transition(self, new: SessionState) -> None:
        if new not in _TRANSITIONS[self.state]:
            raise RuntimeError(f"session: illegal transition {self.state.value} → {new.value}")
        self.state = new

    @property
    def is_idle(self) -> bool:
        """No utterance in flight: nothing buffered, queued or being synthesized."""
        return not self._in_utterance

    def begin_drain(self) -> None:
        """Close with 1012 now if idle, else once the utterance in flight is done."""
        if self.state is SessionState.OPEN:
            self.transition(SessionState.DRAINING)
            self._close_when_idle(DRAIN_CLOSURE)

    def revoke(self) -> None:
        """The session's token left the tokens file: close with 1008 TOKEN-REVOKED now if idle, else once
        the utterance in flight is done (never inside one: its audio was already paid for)."""
        if self.state in (SessionState.OPEN, SessionState.DRAINING):
            log.info("session token revoked", idle=self.is_idle)
            self._close_when_idle(REVOKED_CLOSURE)

    def _close_when_idle(self, closure: Closure) -> None:
        if self._closure_when_idle is None:
            self._closure_when_idle = closure
        self._maybe_close_when_idle()

    def _maybe_close_when_idle(self) -> None:
        if self._closure_when_idle is not None and self.is_idle:
            self._end(self._closure_when_idle)

    def cut(self) -> None:
        """The drain deadline passed: close with 1012 whatever is in flight."""
        self._end(DRAIN_CLOSURE)

    def _end(self, closure: Closure | None) -> None:
        if self._closure is None and not self._ended.is_set():
            self._closure = closure
        self._ended.set()

    async def run(self, metadata_json: str) -> Closure | None:
        """Serve until the client leaves or a closure is due; returns the closure sent (None: client gone)."""
        self._sender.push_text(metadata_json)
        gone = False
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._sender.run(), name="session:send")
                group.create_task(self._read(), name="session:read")
                group.create_task(self._drive(group), name="session:drive")
                await self._ended.wait()
                raise _Stop
        except* _Stop:
            pass
        except* ClientGone:
            gone = True
        except* errors.SlowClient as stalled:  # the sender gave up on a client that stopped reading
            self._end(answers.closure_for(stalled.exceptions[0]))
            log.info("client stopped reading", detail=str(stalled.exceptions[0]))
        finally:
            # Every way out, a crash included: an utterance cut here must not stay counted as active,
            # nor one begun and still queued keep its upstream socket.
            self._drop_queued()
            self._finish_utterance("cut")
        if self.state is not SessionState.CLOSING:
            self.transition(SessionState.CLOSING)
        closure = None if gone else self._closure
        if closure is not None and closure.reason is not CloseReason.SEND_FAILED:
            await self._sender.flush(CLOSE_FLUSH_S)
        if closure is not None:
            await self._close(closure)
        self.transition(SessionState.CLOSED)
        return closure

    async def _close(self, closure: Closure) -> None:
        self._ctx.metrics.client_closes.labels(reason=closure.reason.value or "normal").inc()
        try:
            async with asyncio.timeout(CLOSE_FLUSH_S):
                await self._socket.close(int(closure.code), closure.reason.value)
        except Exception:
            log.debug("client close failed")

    # --- reading ----------------------------------------------------------------------------------

    async def _read(self) -> None:
        while True:
            message = await self._socket.receive()
            if message["type"] == "websocket.disconnect":
                raise ClientGone("client disconnected")
            now = self._ctx.clock.monotonic()
            try:
                action = self._apply_rules(message, now)
                if isinstance(action, TextBuffered):
                    self._buffered(action)
                elif isinstance(action, SynthesisRequested):
                    self._queue_synthesis(action)
                elif isinstance(action, FlushRefused):
                    self._sender.push_text(action.warning.to_json())
                elif isinstance(action, ClearRequested):
                    self._clear(action.sequence_id)
                elif isinstance(action, CloseRequested):
                    self._queue.put_nowait(_CLOSE)
                    return
            except errors.ClientFault as fault:
                closure = answers.closure_for(fault)
                broke = isinstance(fault, errors.ProtocolBroken)
                log.info(
                    "client broke the protocol" if broke else "client refused",
                    reason=closure.reason.value,
                    detail=str(fault),
                )
                self._end(closure)
                return

    def _apply_rules(self, message: Any, now: float) -> ServerAction:
        """One client frame through the protocol's rules; a violation becomes the gateway's error here."""
        try:
            if message.get("bytes") is not None:
                self._rules.receive_binary(now)
            return self._rules.receive_text(message.get("text") or "", now)
        except ProtocolViolation as violation:
            raise errors.ProtocolBroken.of(violation) from violation

    def _buffered(self, action: TextBuffered) -> None:
        self._rules.buffer[-1] = limits.clean_text(self._rules.buffer[-1])
        self._ctx.limiter.charge(self._token_id, action.chars)
        if not self._in_utterance and action.chars:
            self._start_utterance()

    def _start_utterance(self) -> None:
        self._in_utterance = True
        self._ctx.metrics.utterance_started()
        self._ctx.pool.prepare(PoolKey.of(self._options))

    def _finish_utterance(self, outcome: str) -> None:
        if self._in_utterance:
            self._in_utterance = False
            self._ctx.metrics.utterance_ended()
            self.utterances += 1
            log.debug("client utterance ended", outcome=outcome)

    def _queue_synthesis(self, action: SynthesisRequested) -> None:
        begun = None
        if action.text and self._current is None and self._queue.empty():
            # The driver waits for this very segment: its text can go upstream now.
            begun = self._begin(action.text)
        self._queue.put_nowait(_Segment(action.text, action.sequence_id, self._epoch, begun))

    def _begin(self, text: str) -> Utterance:
        return self._ctx.synthesizer.begin(self._options, text, websocket=True)

    def _drop_queued(self) -> None:
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if isinstance(item, _Segment) and item.begun is not None:
                item.begun.abandon()

    def _clear(self, sequence_id: int) -> None:
        self._epoch += 1
        self._drop_queued()
        if self._current is not None and not self._current.done():
            self._current.cancel()
        self._sender.discard_audio()
        self._sender.push_text(Cleared(sequence_id).to_json())
        self._finish_utterance("cleared")
        self._maybe_close_when_idle()

    # --- synthesizing -----------------------------------------------------------------------------

    async def _drive(self, group: asyncio.TaskGroup) -> None:
        while True:
            item = await self._queue.get()
            if item is _CLOSE:
                self._end(NORMAL_CLOSURE)
                return
            assert isinstance(item, _Segment)
            if item.epoch != self._epoch:
                if item.begun is not None:
                    item.begun.abandon()
                continue
            if not item.text:
                self._sender.push_text(Flushed(item.sequence_id).to_json())
            else:
                if not self._in_utterance:
                    self._start_utterance()  # text buffered before a Clear-less epoch change
                sink = SegmentSink(self._sender)
                utterance = item.begun or self._begin(item.text)
                try:
                    self._current = group.create_task(self._utter(utterance, sink), name="session:utter")
                    await asyncio.wait({self._current})
                finally:
                    utterance.abandon()  # its socket, if its task never ran (cancelled before it began)
                current, self._current = self._current, None
                if current.cancelled():
                    continue  # a Clear: its Cleared is already queued
                failure = current.result()
                if failure is not None:
                    self._end(answers.closure_for(failure))
                    return
                if item.epoch == self._epoch:
                    self._sender.push_text(Flushed(item.sequence_id).to_json())
            if self._queue.empty() and not self._rules.buffer:
                self._finish_utterance("flushed")
                self._maybe_close_when_idle()

    async def _utter(self, utterance: Utterance, sink: SegmentSink) -> errors.GatewayError | None:
        """One utterance; a failure is returned, so it ends the session with its close, not the group."""
        try:
            await self._ctx.synthesizer.finish(utterance, sink, self._token_id)
        except errors.GatewayError as error:
            return error
        return None


class _Stop(Exception):
    """Internal: leave the session's TaskGroup."""
