"""Text to the bytes a client asked for: synthesize, resample, encode — off the event loop.

Results are cached per (text, speed, encoding, rate, voice): synthesis is deterministic, and benchmarks
replay the same sentences thousands of times. Each Deepgram voice speaks with the eSpeak NG voice of
its language (one per language); PCM comes bare, mp3, opus and flac as whole files (`codecs`).
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict

from ttsfleet import audio
from ttsfleet.emulator import codecs
from ttsfleet.emulator.synthesis import DEFAULT_VOICE, Synthesizer
from ttsfleet.protocol import DEFAULT_MODEL, Encoding, voice_language

_Key = tuple[str, float, Encoding, int, str]

# The eSpeak NG voice for each language Deepgram's voices speak (the suffix of `aura-2-kara-de`).
ESPEAK_VOICES: dict[str, str] = {
    "en": "en-us",
    "es": "es",
    "de": "de",
    "fr": "fr",
    "nl": "nl",
    "it": "it",
    "ja": "ja",
}


def espeak_voice(model: str) -> str:
    """The eSpeak NG voice that speaks for `model`; English for a language eSpeak is not mapped for."""
    return ESPEAK_VOICES.get(voice_language(model), DEFAULT_VOICE)


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

    def render(
        self, text: str, speed: float, encoding: Encoding, sample_rate: int, model: str = DEFAULT_MODEL
    ) -> bytes:
        voice = espeak_voice(model)
        key = (text, speed, encoding, sample_rate, voice)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        samples = self.synthesizer.synthesize(text, speed=speed, voice=voice)
        resampled = audio.resample(samples, self.synthesizer.native_rate, sample_rate)
        if encoding in codecs.COMPRESSED_ENCODINGS:
            encoded = codecs.encode_compressed(resampled, sample_rate, encoding)
        else:
            encoded = audio.encode_pcm(resampled, encoding)
        if self.cache_entries:
            with self._lock:
                self._cache[key] = encoded
                while len(self._cache) > self.cache_entries:
                    self._cache.popitem(last=False)
        return encoded

    async def render_async(
        self, text: str, speed: float, encoding: Encoding, sample_rate: int, model: str = DEFAULT_MODEL
    ) -> bytes:
        """Render in a worker thread: synthesis takes tens of milliseconds and must not block the loop."""
        cached = self._cache.get((text, speed, encoding, sample_rate, espeak_voice(model)))
        if cached is not None:
            return cached
        return await asyncio.to_thread(self.render, text, speed, encoding, sample_rate, model)
