"""The emulator's shared state for one server: settings, keys, counters, faults, speech, ids."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from ttsfleet.emulator.faults import GlobalFaults
from ttsfleet.emulator.keys import KeyStore
from ttsfleet.emulator.latency import LatencyModel
from ttsfleet.emulator.settings import EmulatorSettings
from ttsfleet.emulator.stats import Stats
from ttsfleet.protocol import DEFAULT_MODEL, Encoding

MODEL_VERSION = "2025-01-01.0"


class SpeechRenderer(Protocol):
    """Turns text into encoded audio (eSpeak NG in production, see `synthesis`)."""

    async def render_async(
        self, text: str, speed: float, encoding: Encoding, sample_rate: int, model: str = DEFAULT_MODEL
    ) -> bytes: ...

    @property
    def backend(self) -> str: ...


@dataclass(slots=True)
class EmulatorContext:
    settings: EmulatorSettings
    renderer: SpeechRenderer
    keys: KeyStore = field(init=False)
    stats: Stats = field(default_factory=Stats)
    faults: GlobalFaults = field(init=False)
    latency: LatencyModel = field(init=False)
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.keys = KeyStore(frozenset(self.settings.api_keys))
        self.faults = GlobalFaults(self.settings.faults)
        self.latency = LatencyModel(
            handshake_delay_s=self.settings.handshake_delay_ms / 1000,
            first_byte_s=self.settings.first_byte_ms / 1000,
            realtime_factor=self.settings.realtime_factor,
            frame_ms=self.settings.frame_ms,
            jitter_ms=self.settings.jitter_ms,
        )
        self.rng = random.Random(self.settings.seed)

    def new_request_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def now(self) -> datetime:
        return datetime.now(UTC)

    def reset(self) -> None:
        """Back to the state at start: counters, faults and created keys (open sockets stay)."""
        self.stats.reset()
        self.faults.replace(list(self.settings.faults))
        self.keys.reset()


def model_uuid(model: str) -> str:
    """A stable uuid per model name, as Deepgram's Metadata carries one."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://emulator.ttsfleet.io/models/{model}"))
