"""Stand-in for ten_ai_base 0.7's `AsyncTTS2BaseExtension`, behaving as the published base class does.

What it keeps of the real one (read from TEN-framework/ten-framework, ten_ai_base/interface/tts2.py):
- Inputs are queued and handed to `request_tts` one at a time. Inputs for another request id than the
  one in progress are held per id; `finish_request` of the current one releases the first held id.
- Every request id moves QUEUED → PROCESSING → FINALIZING → COMPLETED (QUEUED and PROCESSING may go
  straight to COMPLETED). A move the table does not allow is logged as a warning and ignored, never
  raised. COMPLETED ids are forgotten when a new id arrives and on flush.
- A flush blocks new inputs, empties the queue and the held inputs, calls `cancel_tts()` if a request
  is in progress and not completed, forgets every request, then sends `tts_flush_end` echoing the flush.
  The running `request_tts` coroutine is not cancelled.
- An exception from `request_tts` is logged and the queue goes on.
- Cmd `update_configs`: the command's properties go to `update_configs()`; the result is OK, or ERROR
  with `{"message": …}` when it raises. Every other command is answered OK.
- Usage metrics: `metrics_add_*` counters, `send_usage_metrics` (a `metrics` message with characters and
  received audio duration in ms, the per-period counters then reset), sent once more in `on_stop`.
- It never sends tts_audio_start/tts_audio_end itself.
"""

from __future__ import annotations

import abc
import asyncio
import enum
import json
import traceback
import uuid
from typing import Any

from ten_runtime import (
    AsyncExtension,
    AsyncTenEnv,
    AudioFrame,
    AudioFrameDataFmt,
    Cmd,
    CmdResult,
    Data,
    StatusCode,
)

from .const import LOG_CATEGORY_KEY_POINT
from .message import ModuleError, ModuleMetricKey, ModuleMetrics, ModuleType, TTSAudioEndReason
from .struct import TTSFlush, TTSTextInput

CMD_UPDATE_CONFIGS = "update_configs"


class RequestState(enum.Enum):
    QUEUED = "queued"
    PROCESSING = "processing"
    FINALIZING = "finalizing"
    COMPLETED = "completed"


_ALLOWED_MOVES: dict[RequestState | None, frozenset[RequestState]] = {
    None: frozenset({RequestState.QUEUED}),
    RequestState.QUEUED: frozenset({RequestState.PROCESSING, RequestState.COMPLETED}),
    RequestState.PROCESSING: frozenset({RequestState.FINALIZING, RequestState.COMPLETED}),
    RequestState.FINALIZING: frozenset({RequestState.COMPLETED}),
    RequestState.COMPLETED: frozenset(),
}


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
        # Usage: per period (reset after each report) and in total.
        self.output_characters = 0
        self.input_characters = 0
        self.recv_audio_duration = 0.0
        self.recv_audio_chunks_len = 0
        self.total_output_characters = 0
        self.total_input_characters = 0
        self.total_recv_audio_duration = 0.0
        self.total_recv_audio_chunks_len = 0

    # -- request states ---------------------------------------------------------------------------
    def _transition_state(self, request_id: str, new_state: RequestState, reason: str = "") -> bool:
        current = self.request_states.get(request_id)
        if new_state not in _ALLOWED_MOVES[current]:
            self.ten_env.log_warn(
                f"Invalid state transition for request {request_id}: "
                f"{current.value if current else 'None'} -> {new_state.value}"
            )
            return False
        self.request_states[request_id] = new_state
        before = current.value if current else "None"
        self.ten_env.log_info(
            f"Request {request_id} state: {before} -> {new_state.value} {reason}",
            category=LOG_CATEGORY_KEY_POINT,
        )
        return True

    def _cleanup_completed_states(self) -> None:
        for request_id in [
            rid for rid, state in self.request_states.items() if state is RequestState.COMPLETED
        ]:
            self.request_states.pop(request_id, None)
            self.metadatas.pop(request_id, None)

    # -- lifecycle --------------------------------------------------------------------------------
    async def on_init(self, ten_env: AsyncTenEnv) -> None:
        await super().on_init(ten_env)
        self.ten_env = ten_env

    async def on_start(self, ten_env: AsyncTenEnv) -> None:
        await super().on_start(ten_env)
        if self.loop_task is None:
            self.loop_task = asyncio.get_running_loop().create_task(self._process_input_queue(ten_env))

    async def on_stop(self, ten_env: AsyncTenEnv) -> None:
        await self.send_usage_metrics()
        await super().on_stop(ten_env)
        await self._flush_input_items()
        if self.loop_task is not None:
            self.loop_task.cancel()
        await self.input_queue.put(None)

    async def on_cmd(self, ten_env: AsyncTenEnv, cmd: Cmd) -> None:
        ten_env.log_info(f"on_cmd: {cmd.get_name()}")
        if cmd.get_name() != CMD_UPDATE_CONFIGS:
            await ten_env.return_result(CmdResult.create(StatusCode.OK, cmd))
            return
        try:
            content, err = cmd.get_property_to_json("")
            if err is not None:
                raise RuntimeError(f"Failed to get cmd property: {err}")
            await self.update_configs(json.loads(content))
            await ten_env.return_result(CmdResult.create(StatusCode.OK, cmd))
        except Exception as exc:
            ten_env.log_error(f"update_configs failed: {exc}")
            result = CmdResult.create(StatusCode.ERROR, cmd)
            result.set_property_from_json("", json.dumps({"message": str(exc)}))
            await ten_env.return_result(result)

    # -- inputs -----------------------------------------------------------------------------------
    async def on_data(self, ten_env: AsyncTenEnv, data: Data) -> None:
        name = data.get_name()
        if name == "tts_text_input":
            payload, err = data.get_property_to_json("")
            if err is not None:
                raise RuntimeError(f"Failed to get data payload: {err}")
            try:
                text_input = TTSTextInput.model_validate_json(payload)
            except Exception as exc:
                ten_env.log_warn(f"invalid data {name} payload, err {exc}")
                return
            async with self._put_lock:
                await self._flush_complete_event.wait()
                if text_input.request_id not in self.request_states:
                    self._cleanup_completed_states()
                    self._transition_state(text_input.request_id, RequestState.QUEUED, "request received")
                    if text_input.metadata:
                        self.metadatas[text_input.request_id] = text_input.metadata
                await self.input_queue.put(text_input)
        if name == "tts_flush":
            payload, err = data.get_property_to_json("")
            if err is not None:
                raise RuntimeError(f"Failed to get data payload: {err}")
            try:
                flush = TTSFlush.model_validate_json(payload)
            except Exception as exc:
                ten_env.log_warn(f"invalid data {name} payload, err {exc}")
                return
            try:
                async with self._put_lock:
                    self._flush_complete_event.clear()
                await self._flush_input_items()
                result = Data.create("tts_flush_end")
                result.set_property_from_json(
                    None, json.dumps({"flush_id": flush.flush_id, "metadata": flush.metadata})
                )
                await ten_env.send_data(result)
                self._flush_complete_event.set()
            except Exception as exc:
                self._flush_complete_event.set()
                ten_env.log_error(f"Flush operation failed: {exc}")
                raise

    async def _flush_input_items(self) -> None:
        while not self.input_queue.empty():
            self.input_queue.get_nowait()
        self._pending_messages.clear()
        current = self._processing_request_id
        if current is not None:
            state = self.request_states.get(current)
            if state is not None and state is not RequestState.COMPLETED:
                self.leftover_bytes = b""
                await self.cancel_tts()
        self.request_states.clear()
        self.metadatas.clear()
        self._processing_request_id = None
        self.current_audio_request_id = None

    async def _process_input_queue(self, ten_env: AsyncTenEnv) -> None:
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
                self._transition_state(request_id, RequestState.PROCESSING, "start processing")
            try:
                if text_input.text_input_end:
                    self._transition_state(request_id, RequestState.FINALIZING, "received text_input_end")
                await self.request_tts(text_input)
            except asyncio.CancelledError:
                ten_env.log_info("Task cancelled")
            except Exception:
                ten_env.log_error(f"Task failed: {traceback.format_exc()}")

    async def finish_request(
        self,
        request_id: str,
        reason: TTSAudioEndReason = TTSAudioEndReason.REQUEST_END,
        error: ModuleError | None = None,
    ) -> None:
        """Report the error (if any), complete the request and release the next held request id."""
        if error is not None:
            await self.send_tts_error(request_id, error)
        self._transition_state(request_id, RequestState.COMPLETED, f"reason={int(reason)}")
        if self.current_audio_request_id == request_id:
            self.current_audio_request_id = None
        if self._processing_request_id != request_id:
            return
        self._processing_request_id = None
        if self._pending_messages:
            next_id = next(iter(self._pending_messages))
            held = self._pending_messages.pop(next_id)
            self._processing_request_id = next_id
            async with self._put_lock:
                for message in held:
                    await self.input_queue.put(message)

    # -- outputs ----------------------------------------------------------------------------------
    def get_uuid(self) -> str:
        return uuid.uuid4().hex

    def update_metadata(self, request_id: str | None, metadata: dict[str, Any] | None) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        if request_id and request_id in self.metadatas:
            merged = dict(self.metadatas[request_id])
        if metadata:
            merged.update(metadata)
        return merged

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
                "reason": reason.value,
                "metadata": self.update_metadata(request_id, extra_metadata),
            },
        )
        if self.current_audio_request_id == request_id:
            self.current_audio_request_id = None

    async def send_tts_audio_data(self, audio_data: bytes, timestamp: int = 0) -> None:
        """Whole samples as a pcm_frame; a trailing partial sample waits for the next call. Never raises."""
        try:
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
            frame.alloc_buf(usable)
            frame.set_timestamp(timestamp)
            frame.set_property_from_json(
                "metadata", json.dumps(self.metadatas.get(self.current_audio_request_id or "", {}))
            )
            buf = frame.lock_buf()
            buf[:] = combined[:usable]
            frame.unlock_buf(buf)
            await self.ten_env.send_audio_frame(frame)
        except Exception:
            self.ten_env.log_error(f"error send audio frame, {traceback.format_exc()}")

    async def send_tts_error(
        self,
        request_id: str | None,
        error: ModuleError,
        turn_id: int = -1,
        extra_metadata: dict[str, Any] | None = None,
    ) -> None:
        vendor_info = error.vendor_info
        await self._send(
            "error",
            {
                "id": request_id or "",
                "code": error.code,
                "module": ModuleType.TTS.value,
                "message": error.message,
                "vendor_info": vendor_info.model_dump() if vendor_info else {},
                "metadata": self.update_metadata(request_id, extra_metadata),
            },
        )

    async def send_metrics(self, metrics: ModuleMetrics, request_id: str = "") -> None:
        data = Data.create("metrics")
        data.set_property_from_json(None, metrics.model_dump_json())
        await self.ten_env.send_data(data)

    async def send_tts_ttfb_metrics(
        self,
        request_id: str,
        ttfb_ms: int,
        turn_id: int = -1,
        extra_metadata: dict[str, Any] | None = None,
    ) -> None:
        metrics = ModuleMetrics(
            id=self.get_uuid(),
            module=ModuleType.TTS,
            vendor=self.vendor(),
            metrics={ModuleMetricKey.TTS_TTFB.value: ttfb_ms},
            metadata=self.update_metadata(request_id, extra_metadata),
        )
        await self.send_metrics(metrics, request_id)

    # -- usage metrics ----------------------------------------------------------------------------
    def _audio_ms(self, byte_count: int) -> float:
        bytes_per_ms = (
            self.synthesize_audio_channels()
            * self.synthesize_audio_sample_width()
            * self.synthesize_audio_sample_rate()
            / 1000
        )
        return byte_count / bytes_per_ms

    async def metrics_calculate_duration(self) -> None:
        self.recv_audio_duration = self._audio_ms(self.recv_audio_chunks_len)
        self.total_recv_audio_duration = self._audio_ms(self.total_recv_audio_chunks_len)

    def metrics_add_output_characters(self, characters: int) -> None:
        self.output_characters += characters
        self.total_output_characters += characters

    def metrics_add_input_characters(self, characters: int) -> None:
        self.input_characters += characters
        self.total_input_characters += characters

    def metrics_add_recv_audio_chunks(self, chunks: bytes) -> None:
        self.recv_audio_chunks_len += len(chunks)
        self.total_recv_audio_chunks_len += len(chunks)

    def metrics_reset(self) -> None:
        self.output_characters = 0
        self.input_characters = 0
        self.recv_audio_duration = 0.0
        self.recv_audio_chunks_len = 0

    async def send_usage_metrics(
        self, request_id: str = "", extra_metadata: dict[str, Any] | None = None
    ) -> None:
        await self.metrics_calculate_duration()
        metrics = ModuleMetrics(
            id=self.get_uuid(),
            module=ModuleType.TTS,
            vendor=self.vendor(),
            metrics={
                "output_characters": self.output_characters,
                "input_characters": self.input_characters,
                "recv_audio_duration": self.recv_audio_duration,
                "total_output_characters": self.total_output_characters,
                "total_input_characters": self.total_input_characters,
                "total_recv_audio_duration": self.total_recv_audio_duration,
            },
            metadata=self.update_metadata(request_id, extra_metadata),
        )
        await self.send_metrics(metrics, request_id)
        self.metrics_reset()

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
