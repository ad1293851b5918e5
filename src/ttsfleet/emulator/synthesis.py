"""Real speech for the emulator: eSpeak NG (from the `espeakng-loader` wheel) driven through ctypes.

eSpeak NG carries state from one utterance into the next (pitch flutter, harmonic phases), so each call
loads the library, synthesizes under one process-wide lock and unloads it (~2 ms): output is a pure
function of its inputs. Without the library, deterministic tones stand in and `fallback_reason` says why.
"""

from __future__ import annotations

import _ctypes
import asyncio
import collections
import ctypes
import enum
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ttsfleet import audio
from ttsfleet.protocol.formats import Encoding

NATIVE_RATE = 22050  # eSpeak NG's output rate (Hz); the fallback uses it too
DEFAULT_VOICE = "en-us"
NORMAL_WPM = 175  # espeakRATE_NORMAL: speed 1.0
MIN_WPM, MAX_WPM = 80, 450  # espeakRATE_MINIMUM and espeakRATE_MAXIMUM

# speak_lib.h values.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000  # report a missing data directory instead of calling exit()
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAMETER_RATE = 1
_EE_OK = 0
_RAND_SEED = 1  # breathy voices draw noise from eSpeak's own generator: pin it
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)

# The library's state is process-wide, whichever Synthesizer uses it.
_ENGINE_LOCK = threading.Lock()


class Backend(enum.StrEnum):
    """What produces the audio."""

    ESPEAK_NG = "espeak-ng"
    FALLBACK = "fallback"


class SynthesisError(RuntimeError):
    """eSpeak NG refused to synthesize."""


class UnknownVoice(SynthesisError, ValueError):
    """eSpeak NG has no voice of that name."""


def speed_to_wpm(speed: float) -> int:
    """eSpeak's words-per-minute rate for a Deepgram speed factor (1.0 is 175 wpm)."""
    if speed <= 0:
        raise ValueError(f"speed must be positive, not {speed}")
    return min(MAX_WPM, max(MIN_WPM, round(NORMAL_WPM * speed)))


def clean_text(text: str) -> str:
    """Text eSpeak can take as a C string: control characters (NUL included) become spaces."""
    return "".join(" " if ord(char) < 32 or ord(char) == 127 else char for char in text).strip()


def fallback_waveform(text: str, speed: float = 1.0, sample_rate: int = NATIVE_RATE) -> audio.Samples:
    """A tone per character (pitch from the code point), silence per space: speech-like in length only."""
    text = clean_text(text)
    if not text:
        return np.zeros(0, dtype=np.int16)
    # About 68 ms per character matches 175 wpm; continuous phase avoids clicks between tones.
    per_char = max(1, round(sample_rate * 0.068 / speed))
    frequencies = np.array([0.0 if char.isspace() else 180.0 + 35.0 * (ord(char) % 24) for char in text])
    per_sample = np.repeat(frequencies, per_char)
    phase = np.cumsum(2.0 * np.pi * per_sample / sample_rate)
    fade = min(per_char // 2, round(sample_rate * 0.005))
    envelope = np.ones(per_char)
    if fade:
        ramp = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, fade))
        envelope[:fade], envelope[-fade:] = ramp, ramp[::-1]
    amplitude = np.tile(envelope, len(text)) * np.repeat(frequencies > 0, per_char) * 8000.0
    return np.rint(amplitude * np.sin(phase)).astype(np.int16)


def _declare(library: ctypes.CDLL) -> None:
    """Argument types of the calls used, so ctypes converts and checks them."""
    library.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    library.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
    library.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    library.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    library.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
    library.espeak_Synth.argtypes = [
        ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
        ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
    ]  # fmt: skip


class _Espeak:
    """One library file and data directory; every call loads, uses and unloads the library."""

    def __init__(self, library_path: str, data_path: str) -> None:
        self._library_path = library_path
        self._data_path = data_path.encode()

    @contextmanager
    def _loaded(self, voice: str) -> Iterator[tuple[ctypes.CDLL, list[audio.Samples]]]:
        chunks: list[audio.Samples] = []

        def collect(wav: ctypes._Pointer[ctypes.c_short], count: int, _events: int | None) -> int:
            if wav and count > 0:
                chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).astype(np.int16))
            return 0  # 0 = go on synthesizing

        callback = _SYNTH_CALLBACK(collect)
        with _ENGINE_LOCK:
            library = ctypes.CDLL(self._library_path)
            try:
                _declare(library)
                library.espeak_Initialize(
                    _AUDIO_OUTPUT_SYNCHRONOUS, 0, self._data_path, _INITIALIZE_DONT_EXIT
                )
                library.espeak_SetSynthCallback(callback)
                if library.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
                    raise UnknownVoice(f"eSpeak NG has no voice {voice!r}")
                library.espeak_ng_SetRandSeed(_RAND_SEED)
                yield library, chunks
            finally:
                library.espeak_Terminate()
                # Unloading drops every static the library kept, so the next load starts clean.
                _ctypes.dlclose(library._handle)

    def probe(self) -> None:
        """Load the library and the default voice once; raises what stops them."""
        with self._loaded(DEFAULT_VOICE):
            pass

    def synthesize(self, text: str, wpm: int, voice: str) -> audio.Samples:
        encoded = text.encode("utf-8") + b"\0"
        with self._loaded(voice) as (library, chunks):
            library.espeak_SetParameter(_PARAMETER_RATE, wpm, 0)
            status = library.espeak_Synth(
                encoded, len(encoded), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
            )
            if status != _EE_OK:
                raise SynthesisError(f"espeak_Synth failed with status {status}")
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)


def _default_paths() -> tuple[str, str]:
    # Imported here: a missing wheel means the fallback, not an import error for the emulator.
    import espeakng_loader

    return str(espeakng_loader.get_library_path()), str(espeakng_loader.get_data_path())


class Synthesizer:
    """Text to 22.05 kHz int16 speech; deterministic, thread-safe, with an LRU cache of results."""

    def __init__(
        self, library_path: str | None = None, data_path: str | None = None, cache_entries: int = 128
    ) -> None:
        self._cache: collections.OrderedDict[tuple[str, float, str], audio.Samples] = (
            collections.OrderedDict()
        )
        self._cache_entries = cache_entries
        self._cache_lock = threading.Lock()
        self._engine: _Espeak | None = None
        self.fallback_reason: str | None = None
        try:
            if library_path is None or data_path is None:
                default_library, default_data = _default_paths()
                library_path = library_path or default_library
                data_path = data_path or default_data
            if not Path(data_path, "phontab").is_file():
                raise FileNotFoundError(f"no eSpeak NG data in {data_path}")
            engine = _Espeak(library_path, data_path)
            engine.probe()
        except (ImportError, OSError, RuntimeError, AttributeError) as error:
            self.fallback_reason = f"{type(error).__name__}: {error}"
        else:
            self._engine = engine

    @property
    def backend(self) -> Backend:
        """`espeak-ng`, or `fallback` when the library could not load (see `fallback_reason`)."""
        return Backend.FALLBACK if self._engine is None else Backend.ESPEAK_NG

    @property
    def native_rate(self) -> int:
        """Sample rate of `synthesize`'s output (Hz)."""
        return NATIVE_RATE

    def synthesize(self, text: str, speed: float = 1.0, voice: str = DEFAULT_VOICE) -> audio.Samples:
        """Speech for `text` at `native_rate`; empty for blank text. The array is read-only (cached)."""
        wpm = speed_to_wpm(speed)
        cleaned = clean_text(text)
        if not cleaned:
            return np.zeros(0, dtype=np.int16)
        key = (cleaned, speed, voice)
        with self._cache_lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        if self._engine is None:
            samples = fallback_waveform(cleaned, speed, NATIVE_RATE)
        else:
            samples = self._engine.synthesize(cleaned, wpm, voice)
        samples.setflags(write=False)
        self._remember(key, samples)
        return samples

    def _remember(self, key: tuple[str, float, str], samples: audio.Samples) -> None:
        if self._cache_entries <= 0:
            return
        with self._cache_lock:
            self._cache[key] = samples
            self._cache.move_to_end(key)
            while len(self._cache) > self._cache_entries:
                self._cache.popitem(last=False)

    async def synthesize_async(
        self, text: str, speed: float = 1.0, voice: str = DEFAULT_VOICE
    ) -> audio.Samples:
        """`synthesize` on a worker thread, so the event loop keeps running."""
        return await asyncio.to_thread(self.synthesize, text, speed, voice)

    def render(
        self, text: str, speed: float, encoding: Encoding, sample_rate: int, voice: str = DEFAULT_VOICE
    ) -> bytes:
        """Headerless audio for `text` in `encoding` at `sample_rate`: what the emulator streams."""
        samples = self.synthesize(text, speed, voice)
        return audio.encode_pcm(audio.resample(samples, NATIVE_RATE, sample_rate), encoding)

    async def render_async(
        self, text: str, speed: float, encoding: Encoding, sample_rate: int, voice: str = DEFAULT_VOICE
    ) -> bytes:
        """`render` on a worker thread."""
        return await asyncio.to_thread(self.render, text, speed, encoding, sample_rate, voice)
