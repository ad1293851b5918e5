"""Pure audio conversions shared by the emulator, the gateway and the tests: numpy only, no I/O.

Resampling (windowed-sinc polyphase), G.711 mu-law and A-law (ITU-T G.191 reference rules) and PCM
encoding for the three WebSocket encodings; only mono audio. WAV headers are `ttsfleet.wav`'s, which
needs no numpy (the gateway's `ttsfleet say` writes WAV files without the emulator's libraries).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from ttsfleet.protocol.formats import BYTES_PER_SAMPLE, Encoding

Samples = npt.NDArray[np.int16]

__all__ = [
    "Samples",
    "decode_alaw",
    "decode_mulaw",
    "decode_pcm",
    "encode_alaw",
    "encode_mulaw",
    "encode_pcm",
    "resample",
]

# --- resampling -------------------------------------------------------------------------------------

# The pass band ends at 88% of the lower Nyquist frequency; with 20 zero crossings per side and a
# Kaiser window of beta 8.6 (about 85 dB stop band) the transition band closes right at Nyquist, so
# nothing above the new Nyquist frequency folds back.
_ROLLOFF = 0.88
_ZERO_CROSSINGS = 20
_KAISER_BETA = 8.6
# Above this many matrix entries (8 bytes each) the block matrix gets wasteful: odd rate pairs such
# as 22050 -> 22051 take the per-sample gather path instead.
_MAX_BLOCK_ENTRIES = 1 << 21


@functools.lru_cache(maxsize=32)
def _phase_filters(up: int, down: int) -> tuple[npt.NDArray[np.float64], int]:
    """One low-pass FIR per output phase (row), its taps at input offsets -K+1..K; and K."""
    cutoff = 0.5 * _ROLLOFF * min(1.0, up / down)  # cycles per input sample
    half_width = _ZERO_CROSSINGS / (2.0 * cutoff)  # input samples either side of the output instant
    k = math.ceil(half_width)
    offsets = np.arange(-k + 1, k + 1, dtype=np.float64)
    fractions = np.arange(up, dtype=np.float64) / up
    distance = offsets[None, :] - fractions[:, None]
    ratio = np.clip(1.0 - (distance / half_width) ** 2, 0.0, None)
    window = np.where(np.abs(distance) <= half_width, np.i0(_KAISER_BETA * np.sqrt(ratio)), 0.0)
    taps = np.sinc(2.0 * cutoff * distance) * window
    # Unit gain at DC for every phase, so a constant signal stays exactly constant.
    taps /= taps.sum(axis=1, keepdims=True)
    taps.setflags(write=False)
    return taps, k


@functools.lru_cache(maxsize=32)
def _block_matrix(up: int, down: int) -> npt.NDArray[np.float64]:
    """Maps `down + 2K` input samples to `up` output samples: one period of the phase pattern."""
    taps, k = _phase_filters(up, down)
    steps = np.arange(up, dtype=np.int64) * down
    starts, phases = steps // up, steps % up
    matrix = np.zeros((up, int(starts[-1]) + 2 * k), dtype=np.float64)
    for row in range(up):
        matrix[row, starts[row] : starts[row] + 2 * k] = taps[phases[row]]
    matrix.setflags(write=False)
    return matrix


def resample(samples: Samples, from_rate: int, to_rate: int) -> Samples:
    """Samples at `to_rate`, band-limited to the lower Nyquist frequency; a copy when rates match."""
    if from_rate <= 0 or to_rate <= 0:
        raise ValueError(f"sample rates must be positive, not {from_rate} and {to_rate}")
    source = np.asarray(samples, dtype=np.int16)
    if from_rate == to_rate:
        return source.copy()
    divisor = math.gcd(from_rate, to_rate)
    up, down = to_rate // divisor, from_rate // divisor
    out_count = -(-source.size * up // down)
    if out_count == 0:
        return np.zeros(0, dtype=np.int16)
    taps, k = _phase_filters(up, down)
    if up * (down + 2 * k) <= _MAX_BLOCK_ENTRIES:
        filtered = _resample_blocks(source, up, down, k, out_count)
    else:
        filtered = _resample_gather(source, up, down, taps, k, out_count)
    return np.clip(np.rint(filtered), -32768, 32767).astype(np.int16)


def _padded(source: Samples, k: int, tail: int) -> npt.NDArray[np.float64]:
    # K-1 zeros ahead so output n's window starts at padded index floor(n * down / up).
    padded = np.zeros(k - 1 + source.size + tail, dtype=np.float64)
    padded[k - 1 : k - 1 + source.size] = source
    return padded


def _resample_blocks(source: Samples, up: int, down: int, k: int, out_count: int) -> npt.NDArray[np.float64]:
    # Output n = b*up + r reads inputs from b*down on: one matrix product does every block at once.
    matrix = _block_matrix(up, down)
    blocks = -(-out_count // up)
    padded = _padded(source, k, blocks * down + matrix.shape[1])
    frames = sliding_window_view(padded, matrix.shape[1])[: blocks * down : down]
    return (frames @ matrix.T).reshape(-1)[:out_count]


def _resample_gather(
    source: Samples, up: int, down: int, taps: npt.NDArray[np.float64], k: int, out_count: int
) -> npt.NDArray[np.float64]:
    steps = np.arange(out_count, dtype=np.int64) * down
    padded = _padded(source, k, 2 * k)
    windows = sliding_window_view(padded, 2 * k)[steps // up]
    filtered: npt.NDArray[np.float64] = np.einsum("ij,ij->i", windows, taps[steps % up])
    return filtered


# --- G.711 ------------------------------------------------------------------------------------------

# Encoders follow the ITU-T G.191 reference (g711.c): negative samples take their one's complement
# before quantising, mu-law works on the top 14 bits plus a bias of 33, A-law on the top 12 bits.
# Both are lookup tables over all 65536 int16 values, built once from the segment rules.
_ALL_INT16 = np.arange(-32768, 32768, dtype=np.int32)


def _bit_length(values: npt.NDArray[np.int32]) -> npt.NDArray[np.int32]:
    return np.frexp(values.astype(np.float64))[1].astype(np.int32)


def _mulaw_encode_table() -> npt.NDArray[np.uint8]:
    magnitude = np.where(_ALL_INT16 < 0, ~_ALL_INT16, _ALL_INT16) >> 2
    biased = np.minimum(magnitude + 33, 0x1FFF)
    segment = _bit_length(biased) - 5  # 1..8
    mantissa = (biased >> segment) & 0x0F
    code = ((8 - segment) << 4) | (0x0F - mantissa)
    table: npt.NDArray[np.uint8] = np.where(_ALL_INT16 >= 0, code | 0x80, code).astype(np.uint8)
    return table


def _mulaw_decode_table() -> npt.NDArray[np.int16]:
    inverted = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (inverted >> 4) & 0x07
    mantissa = inverted & 0x0F
    step = 4 << (exponent + 1)
    magnitude = (0x80 << exponent) + step * mantissa + step // 2 - 4 * 33
    return np.where(inverted & 0x80, -magnitude, magnitude).astype(np.int16)


def _alaw_encode_table() -> npt.NDArray[np.uint8]:
    magnitude = np.where(_ALL_INT16 < 0, ~_ALL_INT16, _ALL_INT16) >> 4  # 0..2047
    exponent = np.maximum(_bit_length(magnitude) - 4, 0)
    shifted = magnitude >> np.maximum(exponent - 1, 0)
    code = np.where(exponent > 0, (exponent << 4) + shifted - 16, magnitude)
    code = np.where(_ALL_INT16 >= 0, code | 0x80, code)
    return (code ^ 0x55).astype(np.uint8)


def _alaw_decode_table() -> npt.NDArray[np.int16]:
    codes = np.arange(256, dtype=np.int32)
    toggled = (codes ^ 0x55) & 0x7F
    exponent = toggled >> 4
    mantissa = toggled & 0x0F
    mantissa = np.where(exponent > 0, mantissa + 16, mantissa)
    magnitude = ((mantissa << 4) + 0x08) << np.maximum(exponent - 1, 0)
    table: Samples = np.where(codes & 0x80, magnitude, -magnitude).astype(np.int16)
    return table


_MULAW_ENCODE = _mulaw_encode_table()
_MULAW_DECODE = _mulaw_decode_table()
_ALAW_ENCODE = _alaw_encode_table()
_ALAW_DECODE = _alaw_decode_table()
for _table in (_MULAW_ENCODE, _MULAW_DECODE, _ALAW_ENCODE, _ALAW_DECODE):
    _table.setflags(write=False)


def encode_mulaw(samples: Samples) -> npt.NDArray[np.uint8]:
    """G.711 mu-law codes of int16 samples."""
    return _MULAW_ENCODE[np.asarray(samples, dtype=np.int16).astype(np.int32) + 32768]


def decode_mulaw(codes: npt.NDArray[np.uint8]) -> Samples:
    """int16 samples of G.711 mu-law codes."""
    return _MULAW_DECODE[np.asarray(codes, dtype=np.uint8)]


def encode_alaw(samples: Samples) -> npt.NDArray[np.uint8]:
    """G.711 A-law codes of int16 samples."""
    return _ALAW_ENCODE[np.asarray(samples, dtype=np.int16).astype(np.int32) + 32768]


def decode_alaw(codes: npt.NDArray[np.uint8]) -> Samples:
    """int16 samples of G.711 A-law codes."""
    return _ALAW_DECODE[np.asarray(codes, dtype=np.uint8)]


# --- headerless PCM ---------------------------------------------------------------------------------


def _require_pcm(encoding: Encoding) -> None:
    if encoding not in BYTES_PER_SAMPLE:
        raise ValueError(f"{encoding} is not a PCM encoding: use linear16, mulaw or alaw")


def encode_pcm(samples: Samples, encoding: Encoding) -> bytes:
    """Wire bytes of int16 samples: little-endian s16 for linear16, one byte per sample for G.711."""
    _require_pcm(encoding)
    if encoding is Encoding.MULAW:
        return encode_mulaw(samples).tobytes()
    if encoding is Encoding.ALAW:
        return encode_alaw(samples).tobytes()
    return np.asarray(samples, dtype=np.int16).astype("<i2").tobytes()


def decode_pcm(data: bytes, encoding: Encoding) -> Samples:
    """int16 samples of wire bytes; a trailing odd byte of linear16 is ignored."""
    _require_pcm(encoding)
    if encoding is Encoding.MULAW:
        return decode_mulaw(np.frombuffer(data, dtype=np.uint8))
    if encoding is Encoding.ALAW:
        return decode_alaw(np.frombuffer(data, dtype=np.uint8))
    usable = len(data) - len(data) % 2
    return np.frombuffer(data[:usable], dtype="<i2").astype(np.int16)
