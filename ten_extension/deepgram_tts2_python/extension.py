"""The TEN TTS2 extension: TEN's requests in, the fleet's speak protocol out, every TTS2 rule kept.

This module is the only glue to the TEN runtime: it turns the Speaker's callbacks into tts_audio_start,
frames, metrics, tts_audio_end and finish_request, and TEN's flush into a cancel. Every handler catches
and reports, because an exception escaping a TEN handler ends the whole process.
"""

from __future__ import annotations

import json
import time
import traceback
from collections import deque
from dataclasses import dataclass
from typing import Any

from ten_ai_base.const import LOG_CATEGORY_KEY_POINT, LOG_CATEGORY_VENDOR
from ten_ai_base.message import (
    ModuleError,
    ModuleErrorCode,
    ModuleErrorVendorInfo,
    ModuleType,
    TTSAudioEndReason,
)
from ten_ai_base.struct import TTSTextInput
from ten_ai_base.tts2 import AsyncTTS2BaseExtension
from ten_runtime import AsyncTenEnv

from . import backoff, chunking, config, connecting, dumping, errors, streaming

VENDOR = "deepgram"
# Ended request ids remembered so late inputs for them release the queue instead of starting over.
FINISHED_MEMORY = 256


@dataclass
class _Output:
    """What has been sent to TEN for one request."""

    request_id: str
    first_text_at: float | None = None
    started_at: float | None = None
    audio_bytes: int = 0
    ended: bool = False


class DeepgramTTS2Extension(AsyncTTS2BaseExtension):
    """A TTS2 extension speaking Deepgram's protocol to a ttsfleet backend (or to Deepgram)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.config: config.TTSConfig | None = None
        self.speaker: streaming.Speaker | None = None
        self._properties: dict[str, Any] = {}
        self._pending_config: config.TTSConfig | None = None
        self._fatal: errors.SpeakError | None = None
        self._dumper: dumping.Dumper | None = None
        self._output: _Output | None = None
        self._finished: deque[str] = deque(maxlen=FINISHED_MEMORY)

    # -- lifecycle --------------------------------------------------------------------------------
    async def on_init(self, ten_env: AsyncTenEnv) -> None:
        await super().on_init(ten_env)
        try:
            raw_json, _ = await ten_env.get_property_to_json("")
            raw = json.loads(raw_json or "{}")
            if not isinstance(raw, dict):
                raise errors.ConfigError("the extension's properties must be an object")
            self._properties = raw
            await self._use(config.parse_config(raw))
        except (errors.ConfigError, ValueError) as exc:
            self._fatal = exc if isinstance(exc, errors.SpeakError) else errors.ConfigError(str(exc))
            ten_env.log_error(f"invalid configuration: {self._fatal}", category=LOG_CATEGORY_KEY_POINT)
            await self._report_error("", self._fatal)
        except Exception:
            ten_env.log_error(f"on_init failed: {traceback.format_exc()}")

    async def on_start(self, ten_env: AsyncTenEnv) -> None:
        await super().on_start(ten_env)
        await self._warm_up()

    async def on_stop(self, ten_env: AsyncTenEnv) -> None:
        try:
            if self.speaker is not None:
                await self.speaker.close()
            if self._dumper is not None:
                await self._dumper.close()
        except Exception:
            ten_env.log_error(f"closing the speak socket failed: {traceback.format_exc()}")
        await super().on_stop(ten_env)

    async def update_configs(self, configs: dict[str, Any]) -> None:
        """New properties (TEN's shape, `params` merged key by key), used from the next request on.

        Invalid ones raise, so the base answers the command with an error and the old settings stay.
        """
        properties = config.merged(self._properties, configs)
        updated = config.parse_config(properties)
        self._properties = properties
        if self._output is None or self._output.ended:
            await self._use(updated)
            await self._warm_up()
        else:
            self._pending_config = updated  # a request is speaking: its voice and rate stay
            self.ten_env.log_info(
                f"configuration for the next request: {updated.describe()}", category=LOG_CATEGORY_KEY_POINT
            )

    async def _use(self, settings: config.TTSConfig) -> None:
        """Speak with `settings` from now on: a new speaker (the old one's socket is closed)."""
        if self.speaker is not None:
            await self.speaker.close()
        if self._dumper is not None:
            await self._dumper.close()
        self.config, self._pending_config, self._fatal = settings, None, None
        self.ten_env.log_info(f"configured: {settings.describe()}", category=LOG_CATEGORY_KEY_POINT)
        if settings.endpoint == "deepgram":
            self.ten_env.log_warn(
                "no 'backend' or 'base_url' set: speaking to Deepgram directly",
                category=LOG_CATEGORY_KEY_POINT,
            )
        connector = connecting.Connector(
            settings.url,
            settings.api_key,
            settings.connect_timeout_s,
            settings.connect_attempts,
            backoff.Backoff(settings.backoff_base_s, settings.backoff_cap_s),
        )
        self.speaker = streaming.Speaker(
            connector, self, settings.sentence_flush_chars, settings.response_timeout_s
        )
        self._dumper = dumping.Dumper(settings.dump_path) if settings.dump else None

    async def _warm_up(self) -> None:
        """Open the first socket early: warm for the first request, and bad credentials seen at once."""
        if self.speaker is None:
            return
        try:
            await self.speaker.start()
        except errors.SpeakError as exc:
            if exc.fatal:
                self._fatal = exc
                await self._report_error("", exc)
            else:
                self.ten_env.log_warn(f"backend not reachable yet, retrying per request: {exc}")
        except Exception:
            self.ten_env.log_error(f"warming up the speak socket failed: {traceback.format_exc()}")

    # -- TTS2 hooks -------------------------------------------------------------------------------
    def vendor(self) -> str:
        return VENDOR

    def synthesize_audio_sample_rate(self) -> int:
        return self.config.sample_rate if self.config is not None else 24000

    async def request_tts(self, t: TTSTextInput) -> None:
        try:
            await self._request_tts(t)
        except Exception as exc:
            self.ten_env.log_error(f"request_tts failed: {traceback.format_exc()}")
            output = self._output
            if output is not None and output.request_id == t.request_id and not output.ended:
                await self._end(output, TTSAudioEndReason.ERROR, errors.SpeakError(str(exc)))

    async def cancel_tts(self) -> None:
        try:
            output = self._output
            if output is None or output.ended:
                return
            if self.speaker is not None:
                await self.speaker.cancel(output.request_id)
            await self._end(output, TTSAudioEndReason.INTERRUPTED)
        except Exception:
            self.ten_env.log_error(f"cancel_tts failed: {traceback.format_exc()}")

    async def _request_tts(self, t: TTSTextInput) -> None:
        request_id = t.request_id
        if request_id in self._finished:
            # A late input for a request already ended: release the queue, say nothing more.
            self.ten_env.log_info(f"input for finished request {request_id} ignored")
            await self.finish_request(request_id)
            return
        self.metrics_add_input_characters(len(t.text))
        output = self._output
        if output is None or output.request_id != request_id:
            if self._pending_config is not None:
                await self._use(self._pending_config)
            output = self._output = _Output(request_id)
            if self._fatal is not None or self.speaker is None:
                await self._end(
                    output, TTSAudioEndReason.ERROR, self._fatal or errors.ConfigError("not configured")
                )
                return
            try:
                await self.speaker.begin(request_id)
            except errors.SpeakError as exc:
                if exc.fatal:
                    self._fatal = exc
                await self._end(output, TTSAudioEndReason.ERROR, exc)
                return
        assert self.speaker is not None
        if chunking.is_speakable(t.text):
            if output.first_text_at is None:
                output.first_text_at = time.monotonic()
            self.metrics_add_output_characters(len(t.text))
        self.ten_env.log_debug(f"speak {len(t.text)} chars for {request_id}", category=LOG_CATEGORY_VENDOR)
        await self.speaker.say(request_id, t.text)
        if t.text_input_end:
            await self.speaker.finish(request_id)

    # -- Speaker sink -----------------------------------------------------------------------------
    async def audio_arrived(self, request_id: str, audio: bytes) -> None:
        output = self._output
        if output is None or output.request_id != request_id or output.ended:
            return
        if output.started_at is None:
            await self._start(output)
            ttfb_ms = int((time.monotonic() - (output.first_text_at or output.started_at or 0)) * 1000)
            await self.send_tts_ttfb_metrics(
                request_id=request_id, ttfb_ms=ttfb_ms, extra_metadata={"model": self._model()}
            )
        output.audio_bytes += len(audio)
        self.metrics_add_recv_audio_chunks(audio)
        await self.send_tts_audio_data(audio)
        if self._dumper is not None:
            await self._dumper.add(request_id, audio)

    async def request_done(self, request_id: str) -> None:
        output = self._output
        if output is not None and output.request_id == request_id:
            await self._end(output, TTSAudioEndReason.REQUEST_END)

    async def request_failed(self, request_id: str, error: errors.SpeakError) -> None:
        output = self._output
        if output is not None and output.request_id == request_id:
            await self._end(output, TTSAudioEndReason.ERROR, error)

    # -- outputs ----------------------------------------------------------------------------------
    def _model(self) -> str:
        return self.config.model if self.config is not None else ""

    async def _start(self, output: _Output) -> None:
        output.started_at = time.monotonic()
        await self.send_tts_audio_start(request_id=output.request_id)

    async def _end(
        self, output: _Output, reason: TTSAudioEndReason, error: errors.SpeakError | None = None
    ) -> None:
        """The request's single tts_audio_end, then finish_request (except on interrupt: the base does it)."""
        if output.ended:
            return
        output.ended = True
        self._finished.append(output.request_id)
        if output.started_at is None:
            await self._start(output)
        started_at = output.started_at or time.monotonic()
        bytes_per_second = self.synthesize_audio_sample_rate() * self.synthesize_audio_sample_width()
        await self.send_tts_audio_end(
            request_id=output.request_id,
            request_event_interval_ms=int((time.monotonic() - started_at) * 1000),
            request_total_audio_duration_ms=output.audio_bytes * 1000 // bytes_per_second,
            reason=reason,
        )
        if self._dumper is not None:
            await self._dumper.finish(output.request_id)
        await self.send_usage_metrics(output.request_id)
        if reason is not TTSAudioEndReason.INTERRUPTED:
            module_error = self._module_error(error) if error is not None else None
            await self.finish_request(output.request_id, reason=reason, error=module_error)

    def _module_error(self, error: errors.SpeakError) -> ModuleError:
        code = ModuleErrorCode.FATAL_ERROR if error.fatal else ModuleErrorCode.NON_FATAL_ERROR
        return ModuleError(
            message=str(error),
            module=ModuleType.TTS,
            code=int(code.value),
            vendor_info=ModuleErrorVendorInfo(
                vendor=VENDOR, code=error.vendor_code, message=error.vendor_message
            ),
        )

    async def _report_error(self, request_id: str, error: errors.SpeakError) -> None:
        await self.send_tts_error(request_id=request_id, error=self._module_error(error))
