"""Resampling, G.711 and PCM encoding in `ttsfleet.audio`: references, round trips and properties."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ttsfleet import audio
from ttsfleet.protocol.formats import Encoding

ALL_INT16 = np.arange(-32768, 32768, dtype=np.int32).astype(np.int16)
ALL_CODES = np.arange(256, dtype=np.uint8)
int16_arrays = hnp.arrays(np.int16, st.integers(0, 400))


def tone(frequency_hz: float, rate: int, seconds: float = 1.0, amplitude: float = 10000.0) -> audio.Samples:
    t = np.arange(round(rate * seconds)) / rate
    return np.rint(amplitude * np.sin(2 * np.pi * frequency_hz * t)).astype(np.int16)


def dominant_frequency(samples: audio.Samples, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * np.hanning(samples.size)))
    return float(np.argmax(spectrum)) * rate / samples.size


def rms(samples: npt.NDArray[np.generic]) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


# --- resampling -------------------------------------------------------------------------------------


def test_resampling_at_the_same_rate_returns_an_equal_copy() -> None:
    samples = tone(440, 16000, 0.1)
    result = audio.resample(samples, 16000, 16000)
    assert np.array_equal(result, samples)
    assert result is not samples


@pytest.mark.parametrize(
    ("from_rate", "to_rate"),
    [
        pytest.param(22050, 8000, id="22050-8000"),
        pytest.param(22050, 16000, id="22050-16000"),
        pytest.param(22050, 24000, id="22050-24000"),
        pytest.param(22050, 48000, id="22050-48000"),
        pytest.param(48000, 16000, id="48000-16000"),
        pytest.param(8000, 16000, id="8000-16000"),
        pytest.param(22050, 22051, id="odd-ratio-22050-22051"),
    ],
)
def test_resampling_keeps_a_tones_frequency_level_and_length(from_rate: int, to_rate: int) -> None:
    samples = tone(1000, from_rate)
    result = audio.resample(samples, from_rate, to_rate)
    assert result.dtype == np.int16
    assert result.size == -(-samples.size * to_rate // from_rate)
    assert dominant_frequency(result, to_rate) == pytest.approx(1000, abs=2)
    assert rms(result[100:-100]) == pytest.approx(rms(samples[100:-100]), rel=0.01)


@pytest.mark.parametrize(
    ("frequency_hz", "to_rate"),
    [
        pytest.param(4500, 8000, id="4500Hz-to-8000"),
        pytest.param(6000, 8000, id="6000Hz-to-8000"),
        pytest.param(8500, 16000, id="8500Hz-to-16000"),
        pytest.param(10000, 16000, id="10000Hz-to-16000"),
    ],
)
def test_downsampling_removes_tones_above_the_new_nyquist_frequency_instead_of_aliasing(
    frequency_hz: float, to_rate: int
) -> None:
    samples = tone(frequency_hz, 22050)
    result = audio.resample(samples, 22050, to_rate)
    attenuation_db = 20 * np.log10(max(rms(result[200:-200]), 1e-9) / rms(samples))
    assert attenuation_db < -60


def test_a_constant_signal_stays_constant_away_from_the_edges() -> None:
    result = audio.resample(np.full(4410, 1000, dtype=np.int16), 22050, 16000)
    assert np.all(result[100:-100] == 1000)


def test_resampling_is_deterministic_and_clips_to_int16() -> None:
    loud = np.tile(np.array([32767, -32768], dtype=np.int16), 2000)
    first = audio.resample(loud, 22050, 48000)
    assert np.array_equal(first, audio.resample(loud, 22050, 48000))
    assert first.dtype == np.int16


def test_resampling_nothing_gives_nothing() -> None:
    assert audio.resample(np.zeros(0, dtype=np.int16), 22050, 8000).size == 0


def test_both_filtering_paths_agree() -> None:
    samples = tone(700, 22050, 0.2)
    up, down = 320, 147
    taps, k = audio._phase_filters(up, down)
    count = -(-samples.size * up // down)
    blocks = audio._resample_blocks(samples, up, down, k, count)
    gathered = audio._resample_gather(samples, up, down, taps, k, count)
    assert np.allclose(blocks, gathered, atol=1e-6)


@pytest.mark.parametrize(("from_rate", "to_rate"), [(0, 16000), (16000, -1)])
def test_resampling_rejects_rates_that_are_not_positive(from_rate: int, to_rate: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        audio.resample(np.zeros(10, dtype=np.int16), from_rate, to_rate)


# --- G.711 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sample", "code"),
    [
        pytest.param(0, 0xFF, id="zero"),
        pytest.param(-1, 0x7F, id="minus-one"),
        pytest.param(8, 0xFE, id="eight"),
        pytest.param(32767, 0x80, id="max"),
        pytest.param(-32768, 0x00, id="min"),
    ],
)
def test_mulaw_encodes_reference_values(sample: int, code: int) -> None:
    assert audio.encode_mulaw(np.array([sample], dtype=np.int16))[0] == code


@pytest.mark.parametrize(
    ("sample", "code"),
    [
        pytest.param(0, 0xD5, id="zero"),
        pytest.param(-1, 0x55, id="minus-one"),
        pytest.param(32767, 0xAA, id="max"),
        pytest.param(-32768, 0x2A, id="min"),
    ],
)
def test_alaw_encodes_reference_values(sample: int, code: int) -> None:
    assert audio.encode_alaw(np.array([sample], dtype=np.int16))[0] == code


def test_mulaw_decodes_the_g711_segment_table() -> None:
    positive = audio.decode_mulaw(np.arange(0xFF, 0x7F, -1, dtype=np.uint8)).astype(np.int32)
    # Eight segments of sixteen steps; step 8 in the first segment, doubling in each next one.
    steps = np.diff(positive).reshape(-1)
    assert positive[0] == 0 and positive[-1] == 32124
    for segment in range(8):
        inner = steps[segment * 16 : segment * 16 + 15]
        assert np.all(inner == 8 << segment)
    assert np.array_equal(audio.decode_mulaw(np.arange(0x7F, -1, -1, dtype=np.uint8)), -positive)


def test_alaw_decodes_the_g711_segment_table() -> None:
    positive = audio.decode_alaw(np.array([code ^ 0x55 for code in range(0x80, 0x100)], dtype=np.uint8))
    assert positive[0] == 8 and positive[-1] == 32256
    steps = np.diff(positive.astype(np.int32))
    assert np.all(steps[:31] == 16)  # segments 0 and 1 share one step
    for segment in range(2, 8):
        assert np.all(steps[segment * 16 : segment * 16 + 15] == 16 << (segment - 1))
    negative = audio.decode_alaw(np.array([code ^ 0x55 for code in range(0x80)], dtype=np.uint8))
    assert np.array_equal(negative, -positive)


def test_every_mulaw_code_survives_decode_then_encode_except_negative_zero() -> None:
    again = audio.encode_mulaw(audio.decode_mulaw(ALL_CODES))
    assert [int(code) for code in np.nonzero(again != ALL_CODES)[0]] == [0x7F]
    assert again[0x7F] == 0xFF


def test_every_alaw_code_survives_decode_then_encode() -> None:
    assert np.array_equal(audio.encode_alaw(audio.decode_alaw(ALL_CODES)), ALL_CODES)


@pytest.mark.parametrize(
    ("encode", "decode", "worst_error"),
    [
        pytest.param(audio.encode_mulaw, audio.decode_mulaw, 644, id="mulaw"),
        pytest.param(audio.encode_alaw, audio.decode_alaw, 512, id="alaw"),
    ],
)
def test_g711_round_trips_are_monotonic_and_within_half_a_step(
    encode: Callable[[audio.Samples], npt.NDArray[np.uint8]],
    decode: Callable[[npt.NDArray[np.uint8]], audio.Samples],
    worst_error: int,
) -> None:
    restored = decode(encode(ALL_INT16)).astype(np.int32)
    assert np.all(np.diff(restored) >= 0)
    assert int(np.abs(restored - ALL_INT16).max()) == worst_error


@given(int16_arrays)
def test_mulaw_round_trip_error_is_bounded_by_the_segment_step(samples: audio.Samples) -> None:
    restored = audio.decode_mulaw(audio.encode_mulaw(samples)).astype(np.int32)
    magnitude = np.abs(samples.astype(np.int32))
    assert np.all(np.abs(restored - samples) <= (magnitude + 132) // 32 + 1)


@given(int16_arrays)
def test_alaw_round_trip_error_is_bounded_by_the_segment_step(samples: audio.Samples) -> None:
    restored = audio.decode_alaw(audio.encode_alaw(samples)).astype(np.int32)
    magnitude = np.abs(samples.astype(np.int32))
    assert np.all(np.abs(restored - samples) <= np.maximum(8, magnitude // 32) + 1)


# --- headerless PCM ---------------------------------------------------------------------------------


def test_linear16_is_little_endian_signed_16_bit() -> None:
    assert (
        audio.encode_pcm(np.array([1, -1, 256], dtype=np.int16), Encoding.LINEAR16)
        == b"\x01\x00\xff\xff\x00\x01"
    )


@given(int16_arrays)
def test_linear16_round_trips_exactly(samples: audio.Samples) -> None:
    assert np.array_equal(
        audio.decode_pcm(audio.encode_pcm(samples, Encoding.LINEAR16), Encoding.LINEAR16), samples
    )


@given(int16_arrays, st.sampled_from([Encoding.MULAW, Encoding.ALAW]))
def test_g711_pcm_is_one_byte_per_sample_and_decoded_values_survive_another_pass(
    samples: audio.Samples, encoding: Encoding
) -> None:
    data = audio.encode_pcm(samples, encoding)
    assert len(data) == samples.size
    decoded = audio.decode_pcm(data, encoding)
    assert np.array_equal(audio.decode_pcm(audio.encode_pcm(decoded, encoding), encoding), decoded)


def test_decoding_linear16_ignores_a_trailing_odd_byte() -> None:
    assert audio.decode_pcm(b"\x01\x00\x02", Encoding.LINEAR16).tolist() == [1]


@pytest.mark.parametrize("encoding", [Encoding.MP3, Encoding.OPUS])
def test_pcm_functions_refuse_compressed_encodings(encoding: Encoding) -> None:
    with pytest.raises(ValueError, match="not a PCM encoding"):
        audio.encode_pcm(np.zeros(1, dtype=np.int16), encoding)
    with pytest.raises(ValueError, match="not a PCM encoding"):
        audio.decode_pcm(b"\x00", encoding)
