"""The recognition helper hears synthesized phrases at the declared rate, and nothing otherwise."""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.recognition import TEST_PHRASES, grammar, recognise
from ttsfleet.emulator.synthesis import Synthesizer
from ttsfleet.protocol.formats import Encoding


@pytest.fixture(scope="module")
def synthesizer() -> Synthesizer:
    synthesizer = Synthesizer()
    assert synthesizer.backend == "espeak-ng", synthesizer.fallback_reason
    return synthesizer


@pytest.mark.parametrize(
    ("encoding", "rate"),
    [
        pytest.param(Encoding.LINEAR16, 16000, id="linear16-16000"),
        pytest.param(Encoding.LINEAR16, 24000, id="linear16-24000"),
        pytest.param(Encoding.LINEAR16, 48000, id="linear16-48000"),
        pytest.param(Encoding.MULAW, 8000, id="mulaw-8000"),
    ],
)
@pytest.mark.parametrize("phrase", TEST_PHRASES)
def test_each_phrase_is_recognised_from_synthesized_audio(
    synthesizer: Synthesizer, phrase: str, encoding: Encoding, rate: int
) -> None:
    pcm = synthesizer.render(phrase, 1.0, encoding, rate)
    assert recognise(pcm, encoding, rate, TEST_PHRASES) == phrase


@pytest.mark.parametrize(
    ("spoken_rate", "declared_rate"),
    [
        pytest.param(24000, 48000, id="24k-read-as-48k"),
        pytest.param(24000, 16000, id="24k-read-as-16k"),
        pytest.param(48000, 16000, id="48k-read-as-16k"),
    ],
)
@pytest.mark.parametrize("phrase", TEST_PHRASES)
def test_audio_read_at_the_wrong_rate_is_not_heard_as_the_spoken_phrase(
    synthesizer: Synthesizer, phrase: str, spoken_rate: int, declared_rate: int
) -> None:
    pcm = synthesizer.render(phrase, 1.0, Encoding.LINEAR16, spoken_rate)
    assert recognise(pcm, Encoding.LINEAR16, declared_rate, TEST_PHRASES) != phrase


def test_silence_is_not_a_phrase() -> None:
    assert recognise(bytes(2 * 24000), Encoding.LINEAR16, 24000) is None


def test_noise_is_not_a_phrase() -> None:
    noise = np.random.default_rng(7).normal(0, 3000, 24000).astype("<i2").tobytes()
    assert recognise(noise, Encoding.LINEAR16, 24000) is None


def test_speech_outside_the_grammar_is_not_a_phrase(synthesizer: Synthesizer) -> None:
    pcm = synthesizer.render("the quick brown fox jumps over the lazy dog", 1.0, Encoding.LINEAR16, 24000)
    assert recognise(pcm, Encoding.LINEAR16, 24000) is None


def test_the_grammar_accepts_only_plain_lower_case_words() -> None:
    assert "public <phrase> = seven green apples | open the window quietly;" in grammar(
        ["seven green apples", "open the window quietly"]
    )
    with pytest.raises(ValueError, match="lower-case words"):
        grammar(["Hello, world"])
