"""Speech recognition for round-trip checks: did this audio say that phrase at that rate?

pocketsphinx's bundled US English model, constrained by a JSGF grammar of the candidate phrases:
free-form recognition of eSpeak speech is useless, a grammar makes it exact. Decoders are cached per
phrase list and are not thread-safe; tests call this from one thread.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

import numpy as np
from pocketsphinx import Decoder

from ttsfleet import audio
from ttsfleet.protocol.formats import Encoding

MODEL_RATE = 16000  # the bundled acoustic model is trained on 16 kHz audio

# Short, distinct phrases that eSpeak NG says and pocketsphinx recognises at every rate and
# encoding the tests use, at speeds 0.7 to 1.5. ("the speech fleet is ready" fails at 8 kHz: the
# fricatives of "speech" fall above the telephone band.)
TEST_PHRASES: tuple[str, ...] = (
    "the fleet is ready",
    "hello from the emulator",
    "turn left at the next light",
    "seven green apples",
    "please call back tomorrow morning",
    "open the window quietly",
)

_GRAMMAR_NAME = "phrases"
_PADDING_S = 0.3  # silence around the audio so the decoder sees a start and an end
_NOISE_FLOOR = 10.0  # standard deviation of the added noise, in int16 steps


def grammar(phrases: Sequence[str]) -> str:
    """A JSGF grammar that accepts exactly one of `phrases`."""
    for phrase in phrases:
        if not re.fullmatch(r"[a-z]+( [a-z]+)*", phrase):
            raise ValueError(f"phrases must be lower-case words separated by spaces, not {phrase!r}")
    alternatives = " | ".join(phrases)
    return f"#JSGF V1.0;\ngrammar {_GRAMMAR_NAME};\npublic <phrase> = {alternatives};\n"


@functools.lru_cache(maxsize=8)
def _decoder(phrases: tuple[str, ...]) -> Decoder:
    decoder = Decoder(lm=None, samprate=MODEL_RATE, loglevel="FATAL")
    decoder.add_jsgf_string(_GRAMMAR_NAME, grammar(phrases))
    decoder.activate_search(_GRAMMAR_NAME)
    return decoder


def recognise(
    pcm: bytes, encoding: Encoding, sample_rate: int, phrases: Sequence[str] = TEST_PHRASES
) -> str | None:
    """The phrase the audio says, read as declared (`encoding`, `sample_rate`), or None."""
    samples = audio.resample(audio.decode_pcm(pcm, encoding), sample_rate, MODEL_RATE)
    padding = np.zeros(round(MODEL_RATE * _PADDING_S), dtype=np.int16)
    padded = np.concatenate([padding, samples, padding])
    # Digital silence has no energy to take a logarithm of and upsets cepstral mean normalisation;
    # a fixed low noise floor (about -70 dBFS) stands in for a microphone's.
    noise = np.random.default_rng(0).normal(0.0, _NOISE_FLOOR, padded.size)
    padded = np.clip(padded + np.rint(noise), -32768, 32767).astype(np.int16)
    decoder = _decoder(tuple(phrases))
    decoder.start_utt()
    decoder.process_raw(padded.astype("<i2").tobytes(), full_utt=True)
    decoder.end_utt()
    hypothesis = decoder.hyp()
    if hypothesis is None or hypothesis.hypstr not in phrases:
        return None
    return str(hypothesis.hypstr)
