"""Stand-in for `AsyncTTS2BaseExtension`, following TEN_TTS2.md: queueing, buffering, flush, finish_request.

- Inputs are queued and handed to `request_tts` one at a time. While a request is in progress, inputs for
  other request ids are buffered per id; `finish_request` releases the first buffered id.
- A flush blocks new inputs, empties the queue and the buffers, calls `cancel_tts()` if a request is in
  progress, forgets every request, then sends `tts_flush_end` echoing the flush. The running
  `request_tts` is not cancelled.
- It never sends tts_audio_start/tts_audio_end itself.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import enum
import json
import traceback
import uuid
from typing import Any

from ten_runtime import AsyncExtension, AsyncTenEnv, AudioFrame, AudioFrameDataFmt, Data

from .message import ModuleError, ModuleMetrics, ModuleType, TTSAudioEndReason
from .struct import TTSFlush, TTSTextInput


class RequestState(enum.Enum):
    QUEUED = "queued"
    PROCESSING = "processing"
    FINALIZING = "finalizing"
    COMPLETED = "completed"


class AsyncTTS2BaseExtension(AsyncExtension, abc.ABC):
    """Base of TTS2 extensions; subclasses implement request_tts, vendor and the audio format."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.ten_env: AsyncTenEnv = None  # type: ignore[assignment]
        self.input_queue: asyncio.Queue[TTSTextInput | None] = asyncio.Queue()
        self.loop_task: asyncio.Task[None] | None = None
        self.leftover_bytes = b""
        self.metadatas: dict[str, dict[str, Any]] = {}
        self.request_states: dict[str, RequestState] = {}
        self._processing_request_id: str | None = None
        self._pending_messages: dict[str, list[TTSTextInput]] = {}
        self._flush_complete_event = asyncio.Event()
        self._flush_complete_event.set()
        self._put_lock = asyncio.Lock()
        self.current_audio_request_id: str | None = None
        self.request_tts_calls: list[TTSTextInput] = []  # for tests: what reached request_tts, in order

    # -- lifecycle --------------------------------------------------------------------------------
    async def on_init(self, ten_env: AsyncTenEnv) -> None:
        self.ten_env = ten_env

    async def on_start(self, ten_env: AsyncTenEnv) -> None:
        if self.loop_task is None:
            self.loop_task = asyncio.get_running_loop().create_task(self._process_input_queue())

    async def on_stop(self, ten_env: AsyncTenEnv) -> None:
        await self._flush_input_items()
        if self.loop_task is not None:
            self.loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.loop_task
            self.loop_task = None

    # -- inputs -----------------------------------------------------------------------------------
    async def on_data(self, ten_env: AsyncTenEnv, data: Data) -> None:
        payload, _ = data.get_property_to_json("")
        if data.get_name() == "tts_text_input":
            try:
                text_input = TTSTextInput.model_validate_json(payload)
            except ValueError as exc:
                ten_env.log_warn(f"invalid tts_text_input: {exc}")
                return
            async with self._put_lock:
                await self._flush_complete_event.wait()
                if text_input.request_id not in self.request_states:
                    self._forget_completed()
                    self.request_states[text_input.request_id] = RequestState.QUEUED
                    if text_input.metadata:
                        self.metadatas[text_input.request_id] = text_input.metadata
                await self.input_queue.put(text_input)
        elif data.get_name() == "tts_flush":
            try:
                flush = TTSFlush.model_validate_json(payload)
            except ValueError as exc:
                ten_env.log_warn(f"invalid tts_flush: {exc}")
                return
            async with self._put_lock:
                self._flush_complete_event.clear()
            try:
                await self._flush_input_items()
                result = Data.create("tts_flush_end")
                result.set_property_from_json(
                    None, json.dumps({"flush_id": flush.flush_id, "metadata": flush.metadata})
                )
                await ten_env.send_data(result)
            finally:
                self._flush_complete_event.set()

    def _forget_completed(self) -> None:
        for request_id in [
            rid for rid, state in self.request_states.items() if state is RequestState.COMPLETED
        ]:
            self.request_states.pop(request_id, None)
            self.metadatas.pop(request_id, None)

    async def _flush_input_items(self) -> None:
        while not self.input_queue.empty():
            self.input_queue.get_nowait()
        self._pending_messages.clear()
        current = self._processing_request_id
        if current is not None and self.request_states.get(current) is not RequestState.COMPLETED:
            self.leftover_bytes = b""
            await self.cancel_tts()
        self.request_states.clear()
        self.metadatas.clear()
        self._processing_request_id = None
        self.current_audio_request_id = None

    async def _process_input_queue(self) -> None:
        while True:
            text_input = await self.input_queue.get()
            if text_input is None:
                return
            request_id = text_input.request_id
            if self._processing_request_id is not None and request_id != self._processing_request_id:
                self._pending_messages.setdefault(request_id, []).append(text_input)
                continue
            if self._processing_request_id != request_id:
                self._processing_request_id = request_id
                self._move(request_id, RequestState.PROCESSING)
            if text_input.text_input_end:
                self._move(request_id, RequestState.FINALIZING)
            try:
                self.request_tts_calls.append(text_input)
                await self.request_tts(text_input)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.ten_env.log_error(f"request_tts failed: {traceback.format_exc()}")

    def _move(self, request_id: str, state: RequestState) -> None:
        if self.request_states.get(request_id) is not RequestState.COMPLETED:
            self.request_states[request_id] = state

    async def finish_request(
        self,
        request_id: str,
        reason: TTSAudioEndReason = TTSAudioEndReason.REQUEST_END,
        error: ModuleError | None = None,
    ) -> None:
        """Report the error (if any), mark the request completed and release the next buffered request."""
        if error is not None:
            await self.send_tts_error(request_id, error)
        self.request_states[request_id] = RequestState.COMPLETED
        if self.current_audio_request_id == request_id:
            self.current_audio_request_id = None
        if self._processing_request_id != request_id:
            return
        self._processing_request_id = None
        if self._pending_messages:
            next_id = next(iter(self._pending_messages))
            buffered = self._pending_messages.pop(next_id)
            self._processing_request_id = next_id
            async with self._put_lock:
                for message in buffered:
                    await self.input_queue.put(message)

    # -- outputs ----------------------------------------------------------------------------------
    def update_metadata(self, request_id: str | None, extra: dict[str, Any] | None) -> dict[str, Any]:
        metadata = dict(self.metadatas.get(request_id, {})) if request_id else {}
        metadata.update(extra or {})
        return metadata

    async def _send(self, name: str, payload: dict[str, Any]) -> None:
        data = Data.create(name)
        data.set_property_from_json(None, json.dumps(payload))
        await self.ten_env.send_data(data)

    async def send_tts_audio_start(
        self, request_id: str, turn_id: int = -1, extra_metadata: dict[str, Any] | None = None
    ) -> None:
        self.current_audio_request_id = request_id
        await self._send(
            "tts_audio_start",
            {"request_id": request_id, "metadata": self.update_metadata(request_id, extra_metadata)},
        )

    async def send_tts_audio_end(
        self,
        request_id: str,
        request_event_interval_ms: int,
        request_total_audio_duration_ms: int,
        turn_id: int = -1,
        reason: TTSAudioEndReason = TTSAudioEndReason.REQUEST_END,
        extra_metadata: dict[str, Any] | None = None,
    ) -> None:
        await self._send(
            "tts_audio_end",
            {
                "request_id": request_id,
                "request_event_interval_ms": request_event_interval_ms,
                "request_total_audio_duration_ms": request_total_audio_duration_ms,
                "reason": int(reason),
                "metadata": self.update_metadata(request_id, extra_metadata),
            },
        )
        if self.current_audio_request_id == request_id:
            self.current_audio_request_id = None

    async def send_tts_audio_data(self, audio_data: bytes, timestamp: int = 0) -> None:
        """Send whole samples as a pcm_frame; an odd trailing byte waits for the next call."""
        width = self.synthesize_audio_sample_width() * self.synthesize_audio_channels()
        combined = self.leftover_bytes + audio_data
        usable = len(combined) - len(combined) % width
        self.leftover_bytes = combined[usable:]
        if not usable:
            return
        frame = AudioFrame.create("pcm_frame")
        frame.set_sample_rate(self.synthesize_audio_sample_rate())
        frame.set_bytes_per_sample(self.synthesize_audio_sample_width())
        frame.set_number_of_channels(self.synthesize_audio_channels())
        frame.set_data_fmt(AudioFrameDataFmt.INTERLEAVE)
        frame.set_samples_per_channel(usable // width)
        frame.set_timestamp(timestamp)
        frame.alloc_buf(usable)
        frame.set_property_from_json(
            "metadata", json.dumps(self.metadatas.get(self.current_audio_request_id or "", {}))
        )
        buf = frame.lock_buf()
        buf[:] = combined[:usable]
        frame.unlock_buf(buf)
        await self.ten_env.send_audio_frame(frame)

    async def send_tts_error(
        self,
        request_id: str | None,
        error: ModuleError,
        turn_id: int = -1,
        extra_metadata: dict[str, Any] | None = None,
    ) -> None:
        vendor_info = error.vendor_info.model_dump() if error.vendor_info else {}
        await self._send(
            "error",
            {
                "id": request_id or "",
                "code": error.code,
                "module": ModuleType.TTS.value,
                "message": error.message,
                "vendor_info": vendor_info,
                "metadata": self.update_metadata(request_id, extra_metadata),
            },
        )

    async def send_tts_ttfb_metrics(
        self,
        request_id: str,
        ttfb_ms: int,
        turn_id: int = -1,
        extra_metadata: dict[str, Any] | None = None,
    ) -> None:
        metrics = ModuleMetrics(
            id=uuid.uuid4().hex,
            module=ModuleType.TTS.value,
            vendor=self.vendor(),
            metrics={"ttfb": ttfb_ms},
            metadata=self.update_metadata(request_id, extra_metadata),
        )
        await self._send("metrics", metrics.model_dump())

    # -- what subclasses provide ------------------------------------------------------------------
    @abc.abstractmethod
    def vendor(self) -> str: ...

    @abc.abstractmethod
    async def request_tts(self, t: TTSTextInput) -> None: ...

    @abc.abstractmethod
    def synthesize_audio_sample_rate(self) -> int: ...

    def synthesize_audio_channels(self) -> int:
        return 1

    def synthesize_audio_sample_width(self) -> int:
        return 2

    async def cancel_tts(self) -> None:
        return None

    async def update_configs(self, configs: dict[str, Any]) -> None:
        return None
