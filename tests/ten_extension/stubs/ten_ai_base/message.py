"""Error, metrics and end-reason types (ModuleErrorCode is a str-mixin enum with int values, as upstream)."""

from __future__ import annotations

import enum
from typing import Any

from pydantic import BaseModel


class ModuleType(str, enum.Enum):  # noqa: UP042 - upstream spells it so
    ASR = "asr"
    LLM = "llm"
    TTS = "tts"
    MLLM = "mllm"
    AVATAR = "avatar"
    TURN = "turn"


class ModuleMetricKey(str, enum.Enum):  # noqa: UP042 - upstream spells it so
    TTS_TTFB = "ttfb"


class ModuleErrorCode(str, enum.Enum):  # noqa: UP042 - upstream: a str enum with int values
    OK = 0
    FATAL_ERROR = -1000
    NON_FATAL_ERROR = 1000


class ModuleErrorVendorInfo(BaseModel):
    vendor: str = ""
    code: str = ""
    message: str = ""


class ModuleError(BaseModel):
    id: str = ""
    module: str = ""
    code: int = 0
    message: str = ""
    vendor_info: ModuleErrorVendorInfo | None = None
    metadata: dict[str, Any] = {}


class ModuleMetrics(BaseModel):
    id: str = ""
    module: str = ""
    vendor: str = ""
    metrics: dict[str, Any] = {}
    metadata: dict[str, Any] = {}


class TTSAudioEndReason(enum.IntEnum):
    REQUEST_END = 1
    INTERRUPTED = 2
    ERROR = 3
