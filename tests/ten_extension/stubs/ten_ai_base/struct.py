"""The TTS2 input messages."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class TTSTextInput(BaseModel):
    request_id: str
    text: str
    text_input_end: bool = False
    metadata: dict[str, Any] = {}


class TTSFlush(BaseModel):
    flush_id: str
    metadata: dict[str, Any] = {}
