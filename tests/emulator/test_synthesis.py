"""eSpeak NG synthesis: deterministic, cached, off the event loop, with a reported fallback."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from ttsfleet import audio
from ttsfleet.emulator import synthesis
from ttsfleet.protocol.formats import Encoding

SENTENCES = ["hello from the emulator", "turn left at the next light", "What time is it? Half past nine."]


@pytest.fixture(scope="module")
def uncached() -> synthesis.Synthesizer:
    """A synthesizer without a cache, so every call reaches eSpeak NG."""
    return synthesis.Synthesizer(cache_entries=0)


@pytest.fixture(scope="module")
def fallback() -> synthesis.Synthesizer:
    return synthesis.Synthesizer(library_path="/nonexistent/libespeak-ng.so")


def test_espeak_ng_loads_from_the_wheel(uncached: synthesis.Synthesizer) -> None:
    assert uncached.backend == "espeak-ng"
    assert uncached.fallback_reason is None
    assert uncached.native_rate == 22050


def test_speech_is_int16_audio_of_plausible_length(uncached: synthesis.Synthesizer) -> None:
    samples = uncached.synthesize("hello from the emulator")
    assert samples.dtype == np.int16
    assert 0.8 < samples.size / uncached.native_rate < 3.0
    assert np.abs(samples.astype(np.int32)).max() > 3000


def test_the_same_input_gives_byte_identical_audio_whatever_came_before(
    uncached: synthesis.Synthesizer,
) -> None:
    first = {text: uncached.synthesize(text).tobytes() for text in SENTENCES}
    for text in reversed(SENTENCES):
        uncached.synthesize(text, speed=1.3)
        assert uncached.synthesize(text).tobytes() == first[text]
    assert synthesis.Synthesizer(cache_entries=0).synthesize(SENTENCES[0]).tobytes() == first[SENTENCES[0]]


def test_concurrent_threads_get_the_same_audio_as_sequential_calls(uncached: synthesis.Synthesizer) -> None:
    expected = [uncached.synthesize(text).tobytes() for text in SENTENCES]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda text: uncached.synthesize(text).tobytes(), SENTENCES * 4))
    assert results == expected * 4


def test_a_faster_speed_gives_shorter_audio(uncached: synthesis.Synthesizer) -> None:
    lengths = [uncached.synthesize(SENTENCES[1], speed=speed).size for speed in (0.7, 1.0, 1.5)]
    assert lengths[0] > lengths[1] > lengths[2]


@pytest.mark.parametrize("text", ["", "   ", "\n\t", "\x00"])
def test_blank_text_gives_no_audio(uncached: synthesis.Synthesizer, text: str) -> None:
    assert uncached.synthesize(text).size == 0


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("?!...", id="punctuation"),
        pytest.param("😀🚀", id="emoji"),
        pytest.param("…—«»", id="typographic"),
        pytest.param("<speak>&amp;</speak>", id="markup"),
        pytest.param("a\x00b\x07c", id="control-characters"),
    ],
)
def test_odd_text_gives_audio_without_crashing(uncached: synthesis.Synthesizer, text: str) -> None:
    samples = uncached.synthesize(text)
    assert samples.dtype == np.int16


def test_an_unknown_voice_is_refused(uncached: synthesis.Synthesizer) -> None:
    with pytest.raises(synthesis.UnknownVoice, match="no-such-voice"):
        uncached.synthesize("hello", voice="no-such-voice")
    assert uncached.synthesize("hello").size > 0


@pytest.mark.parametrize(("speed", "wpm"), [(1.0, 175), (0.7, 122), (1.5, 262), (0.1, 80), (5.0, 450)])
def test_speed_maps_onto_espeak_words_per_minute(speed: float, wpm: int) -> None:
    assert synthesis.speed_to_wpm(speed) == wpm


def test_speed_must_be_positive(uncached: synthesis.Synthesizer) -> None:
    with pytest.raises(ValueError, match="positive"):
        uncached.synthesize("hello", speed=0)


def test_results_are_cached_read_only_and_evicted_least_recently_used_first() -> None:
    synthesizer = synthesis.Synthesizer(cache_entries=2)
    first = synthesizer.synthesize("one")
    assert synthesizer.synthesize("one") is first
    assert not first.flags.writeable
    synthesizer.synthesize("two")
    synthesizer.synthesize("one")  # "one" is now the most recently used
    synthesizer.synthesize("three")  # evicts "two"
    assert synthesizer.synthesize("one") is first
    second = synthesizer.synthesize("two")
    assert synthesizer.synthesize("two") is second


async def test_async_synthesis_leaves_the_event_loop_running() -> None:
    synthesizer = synthesis.Synthesizer(cache_entries=0)
    text = "The gateway keeps warm upstream connections for every voice. " * 30
    saw_synthesis_running = False

    async def heartbeat() -> None:
        nonlocal saw_synthesis_running
        while True:
            saw_synthesis_running |= synthesis._ENGINE_LOCK.locked()
            await asyncio.sleep(0)

    beat = asyncio.create_task(heartbeat(), name="heartbeat")
    try:
        samples = await synthesizer.synthesize_async(text)
    finally:
        beat.cancel()
        with pytest.raises(asyncio.CancelledError):
            await beat
    assert samples.size > 0
    assert saw_synthesis_running


@pytest.mark.parametrize(
    ("encoding", "rate"),
    [
        pytest.param(Encoding.LINEAR16, 24000, id="linear16-24000"),
        pytest.param(Encoding.MULAW, 8000, id="mulaw-8000"),
        pytest.param(Encoding.ALAW, 16000, id="alaw-16000"),
    ],
)
async def test_render_resamples_and_encodes_what_synthesis_produced(
    uncached: synthesis.Synthesizer, encoding: Encoding, rate: int
) -> None:
    native = uncached.synthesize("seven green apples")
    rendered = await uncached.render_async("seven green apples", 1.0, encoding, rate)
    expected = audio.encode_pcm(audio.resample(native, uncached.native_rate, rate), encoding)
    assert rendered == expected


def test_a_bad_library_path_selects_the_fallback_and_says_why(fallback: synthesis.Synthesizer) -> None:
    assert fallback.backend == "fallback"
    assert fallback.fallback_reason is not None
    assert "/nonexistent/libespeak-ng.so" in fallback.fallback_reason


def test_a_data_path_without_espeak_data_selects_the_fallback(tmp_path: Path) -> None:
    synthesizer = synthesis.Synthesizer(data_path=str(tmp_path))
    assert synthesizer.backend == "fallback"
    assert synthesizer.fallback_reason is not None
    assert "no eSpeak NG data" in synthesizer.fallback_reason


def test_the_fallback_is_deterministic_tones_that_follow_speed(fallback: synthesis.Synthesizer) -> None:
    samples = fallback.synthesize("hello there")
    assert samples.size > 0
    assert np.array_equal(samples, synthesis.fallback_waveform("hello there"))
    assert fallback.synthesize("hello there", speed=1.5).size < samples.size
    assert fallback.synthesize("   ").size == 0
    assert len(fallback.render("hello there", 1.0, Encoding.MULAW, 8000)) == -(-samples.size * 8000 // 22050)


def test_fallback_tones_are_silent_at_spaces_and_pitched_by_character() -> None:
    per_char = round(22050 * 0.068)
    samples = synthesis.fallback_waveform("a b")
    assert samples.size == 3 * per_char
    assert not samples[per_char : 2 * per_char].any()
    assert samples[:per_char].any() and samples[2 * per_char :].any()
    assert not np.array_equal(samples[:per_char], samples[2 * per_char :])
