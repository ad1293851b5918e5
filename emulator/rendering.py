"""Text to the bytes a client asked for: synthesize, resample, encode — off the event loop.

Results are cached per (text, speed, encoding, rate): synthesis is deterministic, and benchmarks
replay the same sentences thousands of times.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict

from ttsfleet import audio
from ttsfleet.emulator.synthesis import Synthesizer
from ttsfleet.protocol import Encoding

_Key = tuple[str, float, Encoding, int]


class Renderer:
    """The emulator's speech renderer (the `SpeechRenderer` seam of `context`)."""

    def __init__(self, synthesizer: Synthesizer | None = None, cache_entries: int = 256) -> None:
        self.synthesizer = synthesizer or Synthesizer()
        self.cache_entries = cache_entries
        self._cache: OrderedDict[_Key, bytes] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def backend(self) -> str:
        return str(self.synthesizer.backend)

    def render(self, text: str, speed: float, encoding: Encoding, sample_rate: int) -> bytes:
        key = (text, speed, encoding, sample_rate)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        samples = self.synthesizer.synthesize(text, speed=speed)
        resampled = audio.resample(samples, self.synthesizer.native_rate, sample_rate)
        encoded = audio.encode_pcm(resampled, encoding)
        if self.cache_entries:
            with self._lock:
                self._cache[key] = encoded
                while len(self._cache) > self.cache_entries:
                    self._cache.popitem(last=False)
        return encoded

    async def render_async(self, text: str, speed: float, encoding: Encoding, sample_rate: int) -> bytes:
        """Render in a worker thread: synthesis takes tens of milliseconds and must not block the loop."""
        key = (text, speed, encoding, sample_rate)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        return await asyncio.to_thread(self.render, text, speed, encoding, sample_rate)
