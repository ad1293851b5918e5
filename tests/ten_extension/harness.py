"""Drive the real extension through the TEN stand-in and read back what it sent, request by request."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from ten_runtime import AsyncTenEnv, Cmd, CmdResult, Data, Sent

from ten_extension.deepgram_tts2_python.extension import DeepgramTTS2Extension

DEADLINE_S = 15.0


@dataclass
class RequestView:
    """One request's outputs: start, frames and end, as the extension sent them."""

    request_id: str
    start: dict[str, Any]
    frames: list[Sent] = field(default_factory=list)
    end: dict[str, Any] | None = None
    metrics_before_end: int = 0

    @property
    def audio_bytes(self) -> int:
        return sum(len(frame.frame.get_buf()) for frame in self.frames if frame.frame is not None)

    def duration_ms(self, sample_rate: int) -> float:
        return self.audio_bytes / (sample_rate * 2) * 1000


class OrderViolation(AssertionError):
    """The outputs broke start → frames → end."""


class Harness:
    """An extension instance on a recording env; inputs are delivered as the runtime does, as tasks."""

    def __init__(self, properties: dict[str, Any]) -> None:
        self.env = AsyncTenEnv(properties=properties)
        self.ext = DeepgramTTS2Extension("tts")
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Harness:
        await self.ext.on_configure(self.env)
        await self.ext.on_init(self.env)
        await self.ext.on_start(self.env)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.ext.on_stop(self.env)
        await self.ext.on_deinit(self.env)

    def _deliver(self, data: Data) -> asyncio.Task[None]:
        task = asyncio.create_task(self.ext.on_data(self.env, data))
        self._tasks.append(task)
        return task

    def text(
        self, request_id: str, text: str, end: bool = True, metadata: dict[str, Any] | None = None
    ) -> asyncio.Task[None]:
        data = Data.create("tts_text_input")
        payload = {
            "request_id": request_id,
            "text": text,
            "text_input_end": end,
            "metadata": metadata if metadata is not None else {"session_id": "s1", "turn_id": 1},
        }
        data.set_property_from_json(None, json.dumps(payload))
        return self._deliver(data)

    def flush(self, flush_id: str, metadata: dict[str, Any] | None = None) -> asyncio.Task[None]:
        data = Data.create("tts_flush")
        data.set_property_from_json(None, json.dumps({"flush_id": flush_id, "metadata": metadata or {}}))
        return self._deliver(data)

    async def update_configs(self, configs: dict[str, Any]) -> CmdResult:
        """Send the `update_configs` command as the runtime would and return its result."""
        cmd = Cmd.create("update_configs")
        cmd.set_property_from_json(None, json.dumps(configs))
        answered = len(self.env.results)
        await self.ext.on_cmd(self.env, cmd)
        await self.wait_for(lambda: len(self.env.results) > answered, "the update_configs result")
        return self.env.results[answered]

    # -- reading what was sent --------------------------------------------------------------------
    def data(self, name: str) -> list[dict[str, Any]]:
        return [sent.payload for sent in self.env.sent if sent.kind == "data" and sent.name == name]

    def names(self) -> list[str]:
        """Everything sent, frames as "frame", in order."""
        return ["frame" if sent.kind == "audio" else sent.name for sent in self.env.sent]

    def requests(self) -> list[RequestView]:
        """Per-request views; raises OrderViolation if start → frames → end was broken anywhere."""
        views: list[RequestView] = []
        current: RequestView | None = None
        metrics = 0
        for index, sent in enumerate(self.env.sent):
            if sent.kind == "audio":
                if current is None or current.end is not None:
                    raise OrderViolation(f"frame #{index} outside a request: {self.names()}")
                current.frames.append(sent)
            elif sent.name == "tts_audio_start":
                if current is not None and current.end is None:
                    raise OrderViolation(f"start of {sent.payload['request_id']} inside {current.request_id}")
                current = RequestView(sent.payload["request_id"], sent.payload)
                views.append(current)
                metrics = 0
            elif sent.name == "metrics":
                metrics += 1
            elif sent.name == "tts_audio_end":
                if current is None or current.end is not None:
                    raise OrderViolation(f"end without start: {sent.payload}")
                if current.request_id != sent.payload["request_id"]:
                    raise OrderViolation(f"end of {sent.payload['request_id']} inside {current.request_id}")
                current.end = sent.payload
                current.metrics_before_end = metrics
        return views

    def ended(self) -> list[RequestView]:
        return [view for view in self.requests() if view.end is not None]

    async def wait_for(self, condition: Any, what: str, deadline_s: float = DEADLINE_S) -> None:
        await self.env.wait_for(condition, deadline_s, what)

    async def wait_ends(self, count: int, deadline_s: float = DEADLINE_S) -> list[RequestView]:
        await self.wait_for(
            lambda: len(self.data("tts_audio_end")) >= count, f"{count} tts_audio_end", deadline_s
        )
        return self.ended()
