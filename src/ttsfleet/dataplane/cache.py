"""A byte-bounded LRU cache of finished utterances' audio, with a time to live.

Keyed by what determines the audio (text, model, encoding, rate, speed, container); entries are
whole utterances only, so a hit replays exactly what the upstream sent. Pure: time is injected.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from ttsfleet.dataplane.seams import Clock
from ttsfleet.protocol import Container, Encoding, SpeakOptions


@dataclass(frozen=True, slots=True)
class CacheKey:
    """What makes two utterances sound the same."""

    text: str
    model: str
    encoding: Encoding
    sample_rate: int
    speed: float
    container: Container = Container.NONE
    bit_rate: int | None = None

    @classmethod
    def of(cls, options: SpeakOptions, text: str) -> CacheKey:
        return cls(
            text,
            options.model,
            options.encoding,
            options.sample_rate,
            options.speed,
            options.container,
            options.bit_rate,
        )


@dataclass(frozen=True, slots=True)
class _Entry:
    audio: bytes
    content_type: str
    stored_at: float


class AudioCache:
    """LRU by bytes; an entry larger than a quarter of the budget is not kept (it would evict too much)."""

    def __init__(self, clock: Clock, max_bytes: int, ttl_s: float) -> None:
        self._clock = clock
        self._max_bytes = max_bytes
        self._ttl_s = ttl_s
        self._entries: OrderedDict[CacheKey, _Entry] = OrderedDict()
        self.bytes_held = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: CacheKey) -> tuple[bytes, str] | None:
        """The audio and its content type, or None when absent or expired."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self._clock.monotonic() - entry.stored_at >= self._ttl_s:
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry.audio, entry.content_type

    def put(self, key: CacheKey, audio: bytes, content_type: str = "") -> bool:
        """Keep `audio` for `key`; False when it is empty or too large to be worth keeping."""
        if not audio or len(audio) * 4 > self._max_bytes:
            return False
        if key in self._entries:
            self._drop(key)
        self._entries[key] = _Entry(audio, content_type, self._clock.monotonic())
        self.bytes_held += len(audio)
        while self.bytes_held > self._max_bytes:
            oldest = next(iter(self._entries))
            self._drop(oldest)
        return True

    def _drop(self, key: CacheKey) -> None:
        entry = self._entries.pop(key)
        self.bytes_held -= len(entry.audio)
