"""One speak WebSocket, served as Deepgram serves it (PROTOCOL.md, "WebSocket").

Three tasks share a socket: the receiver applies client frames to the sans-I/O rules, the worker
synthesizes and streams one flush at a time (paced by the latency model), and the watchdog closes
idle, old or fault-scheduled sockets. The first to decide how the socket ends wins; the others are
cancelled. A Clear bumps an epoch, so queued and in-flight audio of earlier text is dropped at the
next frame boundary and Cleared follows the last frame already sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from dataclasses import dataclass, replace

import structlog
from starlette.websockets import WebSocket

from ttsfleet.emulator.access import Admission
from ttsfleet.emulator.connection import ConnectionHandle
from ttsfleet.emulator.context import MODEL_VERSION, EmulatorContext, model_uuid
from ttsfleet.emulator.latency import split_frames
from ttsfleet.protocol import (
    Cleared,
    ClearRequested,
    CloseReason,
    CloseRequested,
    Closure,
    Flushed,
    FlushRefused,
    Metadata,
    ProtocolViolation,
    ServerSocketRules,
    SynthesisRequested,
    TextBuffered,
)

log = structlog.get_logger(__name__)


class Ending(enum.Enum):
    """How the socket ends besides a close frame."""

    CLIENT_GONE = "client-gone"
    RESET = "reset"


@dataclass(frozen=True, slots=True)
class _FlushJob:
    text: str
    sequence_id: int
    epoch: int
    received_at: float


@dataclass(frozen=True, slots=True)
class _ClearJob:
    sequence_id: int
    epoch: int


@dataclass(frozen=True, slots=True)
class _CloseJob:
    epoch: int


_Job = _FlushJob | _ClearJob | _CloseJob


class SpeakSocket:
    """The server side of one accepted speak WebSocket."""

    def __init__(
        self,
        websocket: WebSocket,
        ctx: EmulatorContext,
        admission: Admission,
        request_id: str,
        handle: ConnectionHandle | None,
    ) -> None:
        self.websocket = websocket
        self.ctx = ctx
        self.options = admission.options
        self.faults = admission.faults
        self.secret = admission.credential.secret
        self.request_id = request_id
        self.handle = handle
        self.loop = asyncio.get_running_loop()
        limits = ctx.settings.socket_limits
        if self.faults.max_age_s is not None:
            limits = replace(limits, max_socket_age_s=self.faults.max_age_s)
        self.opened_at = self.loop.time()
        self.rules = ServerSocketRules(limits, opened_at=self.opened_at)
        self.jobs: asyncio.Queue[_Job] = asyncio.Queue()
        self.epoch = 0
        self.audio_bytes_sent = 0
        self.stalled = False
        self.ending: Closure | Ending | None = None
        self.decided = asyncio.Event()
        self.send_lock = asyncio.Lock()

    # --- the end of the socket ------------------------------------------------------------------

    def end(self, how: Closure | Ending) -> None:
        """Decide how the socket ends; only the first decision counts."""
        if self.ending is None:
            self.ending = how
            self.decided.set()

    async def run(self) -> None:
        """Serve the socket until it ends, then close it as decided."""
        await self.send_text(
            Metadata(
                self.request_id, self.options.model, MODEL_VERSION, model_uuid(self.options.model)
            ).to_json()
        )
        # Three tasks scoped to this socket, cancelled together once its ending is decided: a scope,
        # not long-lived work, so no `ttsfleet.supervision.Supervisor` (its failures are logged below).
        tasks = [
            asyncio.create_task(self._receive_loop(), name=f"emulator-receive-{self.request_id}"),
            asyncio.create_task(self._work_loop(), name=f"emulator-work-{self.request_id}"),
            asyncio.create_task(self._watchdog(), name=f"emulator-watchdog-{self.request_id}"),
        ]
        try:
            await self.decided.wait()
        finally:
            for task in tasks:
                task.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            for task, result in zip(tasks, results, strict=True):
                if isinstance(result, Exception):
                    log.error("task failed", task=task.get_name(), error=repr(result))
        await self._close()

    async def _close(self) -> None:
        ending = self.ending
        if isinstance(ending, Closure):
            with contextlib.suppress(Exception):  # the peer may already be gone
                await self.websocket.close(int(ending.code), ending.reason.value)
        elif ending is Ending.RESET:
            if self.handle is not None:
                self.handle.reset()
            else:  # no transport to reset in-process: the nearest observable thing
                with contextlib.suppress(Exception):
                    await self.websocket.close(1011, CloseReason.INTERNAL.value)

    # --- sending ----------------------------------------------------------------------------------

    async def send_text(self, text: str) -> None:
        async with self.send_lock:
            await self.websocket.send_text(text)

    async def send_bytes(self, data: bytes) -> None:
        async with self.send_lock:
            await self.websocket.send_bytes(data)

    # --- the three tasks --------------------------------------------------------------------------

    async def _receive_loop(self) -> None:
        try:
            while True:
                message = await self.websocket.receive()
                if message["type"] == "websocket.disconnect":
                    self.end(Ending.CLIENT_GONE)
                    return
                now = self.loop.time()
                if message.get("bytes") is not None:
                    self.rules.receive_binary(now)
                text = message.get("text")
                if text is None:
                    continue
                await self._apply(self.rules.receive_text(text, now), now)
        except ProtocolViolation as violation:
            log.info("protocol violation", request_id=self.request_id, detail=str(violation))
            self.end(violation.closure)

    async def _apply(self, action: object, now: float) -> None:
        if isinstance(action, TextBuffered):
            self.ctx.stats.bill(self.secret, action.chars)
        elif isinstance(action, SynthesisRequested):
            self.ctx.stats.flushes_total += 1
            self.jobs.put_nowait(_FlushJob(action.text, action.sequence_id, self.epoch, now))
        elif isinstance(action, FlushRefused):
            if not self.stalled:
                await self.send_text(action.warning.to_json(self.ctx.settings.warning_spelling))
        elif isinstance(action, ClearRequested):
            self.ctx.stats.clears_total += 1
            self.epoch += 1
            self.jobs.put_nowait(_ClearJob(action.sequence_id, self.epoch))
        elif isinstance(action, CloseRequested):
            self.jobs.put_nowait(_CloseJob(self.epoch))

    async def _work_loop(self) -> None:
        while True:
            job = await self.jobs.get()
            if job.epoch < self.epoch:
                continue  # cleared before it was served
            if isinstance(job, _ClearJob):
                await self._hold_if_stalled()
                await self.send_text(Cleared(job.sequence_id).to_json())
            elif isinstance(job, _CloseJob):
                self.end(Closure.for_reason(CloseReason.NONE))
                return
            else:
                await self._stream(job)

    async def _hold_if_stalled(self) -> None:
        if self.stalled:
            await asyncio.Event().wait()  # stall: say nothing, ever, until the client leaves

    async def _stream(self, job: _FlushJob) -> None:
        encoding, rate = self.options.encoding, self.options.sample_rate
        audio = (
            await self.ctx.renderer.render_async(
                job.text, self.options.speed, encoding, rate, self.options.model
            )
            if job.text
            else b""
        )
        latency = self.ctx.latency
        extra_delay_s = self.faults.frame_delay_ms / 1000
        for index, frame in enumerate(split_frames(audio, latency.frame_bytes(encoding, rate))):
            await self._check_byte_faults()
            send_at = job.received_at + latency.frame_offset_s(index, extra_delay_s)
            if latency.jitter_ms:
                send_at += self.ctx.rng.uniform(0, latency.jitter_ms) / 1000
            delay = send_at - self.loop.time()
            if delay > 0:
                await asyncio.sleep(delay)  # pacing: the latency model, not synchronisation
            if job.epoch < self.epoch:
                return  # a Clear arrived: the rest of this audio is dropped
            await self.send_bytes(frame)
            if index == 0:
                self.ctx.stats.first_byte_late_ms.append(max(0.0, self.loop.time() - send_at) * 1000)
            self.audio_bytes_sent += len(frame)
            self.ctx.stats.audio_bytes_total += len(frame)
        await self._check_byte_faults()
        if job.epoch == self.epoch:
            await self.send_text(Flushed(job.sequence_id).to_json())

    async def _check_byte_faults(self) -> None:
        await self._check_time_faults()
        close = self.faults.close
        if close is not None and close.after_bytes is not None and self.audio_bytes_sent >= close.after_bytes:
            assert close.reason is not None
            self.ctx.stats.faults_applied[f"close:{close.reason}"] += 1
            self.end(Closure.for_reason(close.reason))
            await asyncio.Event().wait()
        reset = self.faults.reset
        if reset is not None and reset.after_bytes is not None and self.audio_bytes_sent >= reset.after_bytes:
            self.ctx.stats.faults_applied["reset"] += 1
            self.end(Ending.RESET)
            await asyncio.Event().wait()
        if (
            self.faults.stall_after_bytes is not None
            and self.audio_bytes_sent >= self.faults.stall_after_bytes
        ):
            if not self.stalled:
                self.ctx.stats.faults_applied["stall"] += 1
            self.stalled = True
            await asyncio.Event().wait()

    async def _check_time_faults(self) -> None:
        """Time-scheduled faults are due at their instant even if the watchdog has not run yet.

        With instant latency a whole utterance can stream within one loop iteration; checking before
        every frame keeps `after_ms` exact whatever the scheduling.
        """
        for at, ending, name in self._scheduled_faults():
            if self.loop.time() >= at:
                if self.ending is None:  # the watchdog may have fired it already: count it once
                    self.ctx.stats.faults_applied[name] += 1
                self.end(ending)
                await asyncio.Event().wait()

    def _scheduled_faults(self) -> list[tuple[float, Closure | Ending, str]]:
        close, reset = self.faults.close, self.faults.reset
        scheduled: list[tuple[float, Closure | Ending, str]] = []
        if close is not None and close.after_ms is not None and close.reason is not None:
            closure = Closure.for_reason(close.reason)
            scheduled.append((self.opened_at + close.after_ms / 1000, closure, "close"))
        if reset is not None and reset.after_ms is not None:
            scheduled.append((self.opened_at + reset.after_ms / 1000, Ending.RESET, "reset"))
        return scheduled

    async def _watchdog(self) -> None:
        scheduled = self._scheduled_faults()
        while True:
            if self.handle is not None:
                self.rules.receive_activity(max(self.rules.last_received_at, self.handle.last_received_at))
            now = self.loop.time()
            due = self.rules.due_closure(now)
            if due is not None:
                self.end(due)
                return
            for at, ending, name in scheduled:
                if now >= at:
                    self.ctx.stats.faults_applied[name] += 1
                    self.end(ending)
                    return
            wake_at = min([self.rules.next_deadline(), *(at for at, _, _ in scheduled)])
            # Pings only show through the handle, so look again at least once a second.
            await asyncio.sleep(min(max(wake_at - now, 0.001), 1.0))
