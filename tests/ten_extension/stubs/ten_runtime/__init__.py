"""Test stand-in for the TEN runtime's Python binding (0.11): only what deepgram_tts2_python touches.

Outputs are recorded on the AsyncTenEnv in send order; anything outside this surface does not exist, so a
call the real runtime lacks fails loudly here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar


class TenError(Exception):
    """An error value as the runtime returns it (never raised by this stand-in)."""


class _Properties:
    """JSON properties addressed by a dotted path ("" or None = the whole object)."""

    def __init__(self) -> None:
        self._values: dict[str, Any] = {}

    def set_property_from_json(self, path: str | None, value: str) -> TenError | None:
        parsed = json.loads(value)
        if not path:
            if not isinstance(parsed, dict):
                return TenError("the root property must be an object")
            self._values.update(parsed)
        else:
            self._values[path] = parsed
        return None

    def get_property_to_json(self, path: str | None = None) -> tuple[str, TenError | None]:
        if not path:
            return json.dumps(self._values), None
        if path not in self._values:
            return "", TenError(f"no property {path}")
        return json.dumps(self._values[path]), None

    def get_property_string(self, path: str) -> tuple[str, TenError | None]:
        value = self._values.get(path)
        return (value, None) if isinstance(value, str) else ("", TenError(f"{path} is not a string"))

    def get_property_int(self, path: str) -> tuple[int, TenError | None]:
        value = self._values.get(path)
        if isinstance(value, int) and not isinstance(value, bool):
            return value, None
        return 0, TenError(f"{path} is not an int")

    def get_property_bool(self, path: str) -> tuple[bool, TenError | None]:
        value = self._values.get(path)
        return (value, None) if isinstance(value, bool) else (False, TenError(f"{path} is not a bool"))

    def set_property_string(self, path: str, value: str) -> TenError | None:
        self._values[path] = value
        return None

    def set_property_bool(self, path: str, value: bool) -> TenError | None:
        self._values[path] = value
        return None

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(self._values))  # type: ignore[no-any-return]


class Data(_Properties):
    """A named data message."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self._name = name

    @classmethod
    def create(cls, name: str) -> Data:
        return cls(name)

    def get_name(self) -> str:
        return self._name


class Cmd(Data):
    """A named command (only its name and properties are used here)."""


class StatusCode(enum.IntEnum):
    OK = 0
    ERROR = 1


class CmdResult(_Properties):
    """The answer to a command: a status code and properties."""

    def __init__(self, status: StatusCode, target: Cmd) -> None:
        super().__init__()
        self._status = status
        self.target = target

    @classmethod
    def create(cls, status_code: StatusCode, target_cmd: Cmd) -> CmdResult:
        return cls(status_code, target_cmd)

    def get_status_code(self) -> StatusCode:
        return self._status


class AudioFrameDataFmt(enum.IntEnum):
    INTERLEAVE = 1
    NON_INTERLEAVE = 2


class AudioFrame(_Properties):
    """A PCM frame: format fields plus a buffer filled through lock_buf/unlock_buf."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self._name = name
        self.sample_rate = 0
        self.bytes_per_sample = 0
        self.number_of_channels = 0
        self.samples_per_channel = 0
        self.data_fmt = AudioFrameDataFmt.INTERLEAVE
        self.timestamp = 0
        self._buf = bytearray()
        self._locked = False

    @classmethod
    def create(cls, name: str) -> AudioFrame:
        return cls(name)

    def get_name(self) -> str:
        return self._name

    def set_sample_rate(self, value: int) -> None:
        self.sample_rate = value

    def set_bytes_per_sample(self, value: int) -> None:
        self.bytes_per_sample = value

    def set_number_of_channels(self, value: int) -> None:
        self.number_of_channels = value

    def set_samples_per_channel(self, value: int) -> None:
        self.samples_per_channel = value

    def set_data_fmt(self, value: AudioFrameDataFmt) -> None:
        self.data_fmt = value

    def set_timestamp(self, value: int) -> None:
        self.timestamp = value

    def alloc_buf(self, size: int) -> None:
        self._buf = bytearray(size)

    def lock_buf(self) -> bytearray:
        if self._locked:
            raise RuntimeError("buffer already locked")
        self._locked = True
        return self._buf

    def unlock_buf(self, buf: bytearray) -> None:
        if not self._locked or buf is not self._buf:
            raise RuntimeError("unlock_buf without a matching lock_buf")
        self._locked = False

    def get_buf(self) -> bytes:
        return bytes(self._buf)


@dataclass
class Sent:
    """One message the extension sent, with the monotonic time it was sent."""

    kind: str  # "data" or "audio"
    name: str
    payload: dict[str, Any]
    at: float
    frame: AudioFrame | None = None


@dataclass
class AsyncTenEnv:
    """The extension's view of the runtime; this stand-in records every send and log line."""

    properties: dict[str, Any] = field(default_factory=dict)
    sent: list[Sent] = field(default_factory=list)
    results: list[CmdResult] = field(default_factory=list)
    logs: list[tuple[str, str]] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def get_property_to_json(self, path: str | None = None) -> tuple[str, TenError | None]:
        if not path:
            return json.dumps(self.properties), None
        if path not in self.properties:
            return "", TenError(f"no property {path}")
        return json.dumps(self.properties[path]), None

    def _record(self, entry: Sent) -> None:
        self.sent.append(entry)
        self._changed.set()

    async def send_data(self, data: Data) -> TenError | None:
        self._record(Sent("data", data.get_name(), data.to_dict(), time.monotonic()))
        return None

    async def send_audio_frame(self, frame: AudioFrame) -> TenError | None:
        self._record(Sent("audio", frame.get_name(), frame.to_dict(), time.monotonic(), frame))
        return None

    async def return_result(self, result: CmdResult) -> TenError | None:
        self.results.append(result)
        self._changed.set()
        return None

    async def wait_for(self, condition: Callable[[], bool], deadline_s: float, what: str) -> None:
        """Wait until `condition` holds, re-checked on every send and every 10 ms; fail at the deadline."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + deadline_s
        while not condition():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"timed out after {deadline_s} s waiting for {what}")
            self._changed.clear()
            # The short cap lets conditions on state other than sends (a socket's state) be seen too.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, 0.01)):
                    await self._changed.wait()

    def _log(self, level: str, msg: str, category: str | None = None) -> None:
        self.logs.append((level, msg))

    def log_debug(self, msg: str, category: str | None = None) -> None:
        self._log("debug", msg, category)

    def log_info(self, msg: str, category: str | None = None) -> None:
        self._log("info", msg, category)

    def log_warn(self, msg: str, category: str | None = None) -> None:
        self._log("warn", msg, category)

    def log_error(self, msg: str, category: str | None = None) -> None:
        self._log("error", msg, category)


class AsyncExtension:
    """Lifecycle hooks of an asyncio extension; the defaults do nothing."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def on_configure(self, ten_env: AsyncTenEnv) -> None:
        return None

    async def on_init(self, ten_env: AsyncTenEnv) -> None:
        return None

    async def on_start(self, ten_env: AsyncTenEnv) -> None:
        return None

    async def on_stop(self, ten_env: AsyncTenEnv) -> None:
        return None

    async def on_deinit(self, ten_env: AsyncTenEnv) -> None:
        return None

    async def on_cmd(self, ten_env: AsyncTenEnv, cmd: Cmd) -> None:
        return None

    async def on_data(self, ten_env: AsyncTenEnv, data: Data) -> None:
        return None

    async def on_audio_frame(self, ten_env: AsyncTenEnv, frame: AudioFrame) -> None:
        return None


class TenEnv:
    """The synchronous env an addon sees when asked for an instance."""

    def __init__(self) -> None:
        self.created: list[Any] = []

    def log_info(self, msg: str, category: str | None = None) -> None:
        return None

    def on_create_instance_done(self, instance: Any, context: Any) -> None:
        self.created.append(instance)


class Addon:
    """Base of addons; the runtime calls on_create_instance when a graph names the addon."""

    def on_create_instance(self, ten_env: TenEnv, name: str, context: Any) -> None:
        raise NotImplementedError


registered_addons: dict[str, type[Addon]] = {}
_A = TypeVar("_A", bound=type[Addon])


def register_addon_as_extension(name: str) -> Callable[[_A], _A]:
    """Class decorator: make the addon known under `name`."""

    def register(cls: _A) -> _A:
        registered_addons[name] = cls
        return cls

    return register


__all__ = [
    "Addon",
    "AsyncExtension",
    "AsyncTenEnv",
    "AudioFrame",
    "AudioFrameDataFmt",
    "Cmd",
    "CmdResult",
    "Data",
    "Sent",
    "StatusCode",
    "TenEnv",
    "TenError",
    "register_addon_as_extension",
]
