"""Deepgram's `/v1/speak` query parameters, their defaults and enums, so conformance walks what Deepgram
documents instead of a hand-made list.

Read from `deepgram_speak_spec.json` beside this module, which `scripts/facts_from_spec.py` generates
from Deepgram's specs (a test fails when it is stale); a clone without the specs still runs every test
but that one.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FACTS = Path(__file__).with_name("deepgram_speak_spec.json")


@dataclass(frozen=True)
class SpecParameter:
    """One query parameter: its JSON type, default and the values the spec enumerates (as strings)."""

    name: str
    type: str  # string | number | boolean | any
    default: str | None
    values: tuple[str, ...]


@functools.cache
def _facts() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(FACTS.read_text())
    return loaded


def _parameters(transport: str) -> dict[str, SpecParameter]:
    return {
        name: SpecParameter(name, raw["type"], raw["default"], tuple(raw["values"]))
        for name, raw in _facts()[transport].items()
    }


def rest_speak_parameters() -> dict[str, SpecParameter]:
    """openapi.yml, `POST /v1/speak`: every query parameter."""
    return _parameters("rest")


def websocket_speak_parameters() -> dict[str, SpecParameter]:
    """asyncapi.yml, channel `/v1/speak`: every query parameter."""
    return _parameters("websocket")


def spec_voices() -> tuple[str, ...]:
    """The voices Deepgram documents (the REST model enum; the WebSocket's model has no enum)."""
    return rest_speak_parameters()["model"].values
