"""Emulator settings: one frozen model built once at start from flags, a config file and defaults.

Every latency and limit is a setting so tests can make the emulator instant or realistic, and so
its figures can be reported next to benchmark results.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator

from ttsfleet.protocol import HeaderStyle, SocketLimits, WarningSpelling
from ttsfleet.protocol.formats import KNOWN_MODELS


class SettingsError(ValueError):
    """A setting is invalid; the message names it."""


class EmulatorSettings(BaseModel, frozen=True):
    """Everything the emulator can be told at start."""

    host: str = Field(default="127.0.0.1", description="Address to listen on.")
    port: int = Field(default=8900, ge=0, le=65535, description="Port to listen on; 0 picks a free one.")
    api_keys: tuple[str, ...] = Field(
        default=(),
        description="Keys accepted besides those created through the key API. Empty: any non-empty key.",
    )
    project_id: str = Field(default="emulator-project", description="Project id keys are listed under.")
    handshake_delay_ms: float = Field(
        default=150.0,
        ge=0,
        description="Added before an upgrade is answered: TLS plus a round trip to a region.",
    )
    first_byte_ms: float = Field(
        default=90.0, ge=0, description="From Flush (or a REST request) to the first audio."
    )
    realtime_factor: float = Field(
        default=4.0,
        ge=0,
        description="Audio seconds streamed per wall-clock second after the first frame; 0 = unpaced.",
    )
    frame_ms: float = Field(
        default=100.0, gt=0, le=2000, description="Audio per binary frame, in milliseconds."
    )
    jitter_ms: float = Field(
        default=0.0, ge=0, description="Uniform random extra delay per frame, in milliseconds."
    )
    idle_timeout_s: float = Field(
        default=60.0, gt=0, description="Nothing from the client this long → 1011 NET-0001."
    )
    max_socket_age_s: float = Field(
        default=3600.0, gt=0, description="Sockets older than this → 1011 NET-0003."
    )
    max_speak_chars: int = Field(default=2000, gt=0, description="One Speak over this → 1009 BIG-0001.")
    max_chars_per_window: int = Field(
        default=2400, gt=0, description="Characters per window → 1008 DATA-0001."
    )
    max_flushes_per_window: int = Field(
        default=20, gt=0, description="Flushes per window before EXCESSIVE_FLUSH."
    )
    window_s: float = Field(default=60.0, gt=0, description="The window the two budgets above count over.")
    max_frame_bytes: int = Field(default=65536, gt=0, description="A text frame over this → 1009 BIG-0000.")
    rest_max_chars: int = Field(default=2000, gt=0, description="REST text over this → 413.")
    max_sockets_per_key: int = Field(
        default=0, ge=0, description="Open sockets per key before 429; 0 = no limit."
    )
    rest_header_style: HeaderStyle = Field(
        default=HeaderStyle.DOCUMENTED,
        description="REST metadata headers: dg-* (documented) or x-dg-* (live).",
    )
    warning_spelling: WarningSpelling = Field(
        default=WarningSpelling.BOTH,
        description="Warning fields: code/description, warn_code/warn_msg, or both.",
    )
    accept_any_model: bool = Field(
        default=False, description="Accept any well-formed aura model name, not only the known catalogue."
    )
    faults: tuple[str, ...] = Field(
        default=(), description="Faults applied to every connection (see docs/emulator.md)."
    )
    seed: int = Field(default=0, description="Seed for request ids and jitter.")
    synthesis_cache_entries: int = Field(default=256, ge=0, description="Synthesized texts kept in memory.")

    @field_validator("faults")
    @classmethod
    def _faults_parse(cls, faults: tuple[str, ...]) -> tuple[str, ...]:
        from ttsfleet.emulator import faults as fault_specs

        for spec in faults:
            fault_specs.parse_fault(spec)
        return faults

    @property
    def socket_limits(self) -> SocketLimits:
        return SocketLimits(
            max_speak_chars=self.max_speak_chars,
            max_chars_per_window=self.max_chars_per_window,
            max_flushes_per_window=self.max_flushes_per_window,
            window_s=self.window_s,
            max_frame_bytes=self.max_frame_bytes,
            idle_timeout_s=self.idle_timeout_s,
            max_socket_age_s=self.max_socket_age_s,
        )

    @property
    def known_models(self) -> frozenset[str] | None:
        return None if self.accept_any_model else KNOWN_MODELS

    @property
    def is_open_auth(self) -> bool:
        """Without configured keys every non-empty key is accepted (and logged at start)."""
        return not self.api_keys


def load_settings(values: Mapping[str, Any], config_file: Path | None = None) -> EmulatorSettings:
    """Settings from a config file overlaid by explicit values; raises SettingsError naming the field."""
    merged: dict[str, Any] = {}
    if config_file is not None:
        try:
            text = config_file.read_text()
        except OSError as error:
            raise SettingsError(f"config: cannot read {config_file}: {error.strerror}") from None
        loaded = json.loads(text) if config_file.suffix == ".json" else yaml.safe_load(text)
        if not isinstance(loaded, dict):
            raise SettingsError(f"config: {config_file} must hold a mapping")
        merged.update(loaded)
    merged.update({key: value for key, value in values.items() if value is not None})
    try:
        return EmulatorSettings(**merged)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "settings"
        raise SettingsError(f"{field}: {first['msg']}") from None
