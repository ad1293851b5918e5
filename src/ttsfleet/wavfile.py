"""Mono WAV files: the RIFF/WAVE header for PCM and G.711 audio, and reading one back.

The standard library's struct only, no numpy, so the gateway's `ttsfleet say` writes WAV files without
the emulator's audio libraries. Parsing reads plain `fmt ` chunks (PCM, mu-law, A-law), not
WAVE_FORMAT_EXTENSIBLE.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from ttsfleet.protocol.formats import BYTES_PER_SAMPLE, AudioFormat, Container, Encoding

__all__ = ["ParsedWav", "WavError", "header", "parse"]

# WAVE format tags (RFC 2361): PCM, ITU G.711 A-law, ITU G.711 mu-law.
_FORMAT_TAGS: dict[Encoding, int] = {Encoding.LINEAR16: 1, Encoding.ALAW: 6, Encoding.MULAW: 7}
_ENCODINGS_BY_TAG = {tag: encoding for encoding, tag in _FORMAT_TAGS.items()}
# Streaming servers do not know the length up front and write the largest size instead; readers
# then take everything up to the end of the stream.
_UNKNOWN_SIZE = 0xFFFFFFFF


class WavError(ValueError):
    """The bytes are not a mono WAV file this module can read."""


class ParsedWav(NamedTuple):
    """A WAV file's audio format (container `wav`) and its PCM data bytes."""

    format: AudioFormat
    pcm: bytes


def header(encoding: Encoding, sample_rate: int, data_bytes: int | None) -> bytes:
    """RIFF/WAVE header for mono PCM; `data_bytes=None` writes unknown (streaming) sizes."""
    tag = _FORMAT_TAGS.get(encoding)
    if tag is None:
        raise ValueError(f"{encoding} is not a PCM encoding: use linear16, mulaw or alaw")
    width = BYTES_PER_SAMPLE[encoding]
    # Non-PCM tags carry cbSize (0 here), so their fmt chunk is 18 bytes. The fact chunk the spec
    # asks of them is left out: its sample count is unknown when streaming and readers skip it.
    extra = b"" if encoding is Encoding.LINEAR16 else struct.pack("<H", 0)
    fmt = struct.pack("<HHIIHH", tag, 1, sample_rate, sample_rate * width, width, width * 8) + extra
    if data_bytes is None:
        riff_size = data_size = _UNKNOWN_SIZE
    else:
        data_size = data_bytes
        riff_size = 4 + (8 + len(fmt)) + 8 + data_bytes + data_bytes % 2
    return (
        b"RIFF" + struct.pack("<I", riff_size) + b"WAVE"
        + b"fmt " + struct.pack("<I", len(fmt)) + fmt
        + b"data" + struct.pack("<I", data_size)
    )  # fmt: skip


def parse(data: bytes) -> ParsedWav:
    """The format and PCM bytes of a mono linear16, mu-law or A-law WAV file."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise WavError("not a RIFF/WAVE file")
    audio_format: AudioFormat | None = None
    position = 12
    while position + 8 <= len(data):
        chunk_id = data[position : position + 4]
        (size,) = struct.unpack_from("<I", data, position + 4)
        body = data[position + 8 : position + 8 + size]
        if chunk_id == b"fmt ":
            audio_format = _parse_fmt(body)
        elif chunk_id == b"data":
            if audio_format is None:
                raise WavError("data chunk before fmt chunk")
            return ParsedWav(audio_format, body)  # an unknown size reads to the end of the file
        position += 8 + size + size % 2  # chunks are word-aligned
    raise WavError("no data chunk")


def _parse_fmt(body: bytes) -> AudioFormat:
    if len(body) < 16:
        raise WavError("fmt chunk too short")
    tag, channels, sample_rate, _, _, bits = struct.unpack_from("<HHIIHH", body)
    encoding = _ENCODINGS_BY_TAG.get(tag)
    if encoding is None:
        raise WavError(f"unsupported WAVE format tag {tag:#06x}")
    if channels != 1:
        raise WavError(f"only mono is supported, not {channels} channels")
    if bits != BYTES_PER_SAMPLE[encoding] * 8:
        raise WavError(f"{encoding} needs {BYTES_PER_SAMPLE[encoding] * 8} bits per sample, not {bits}")
    return AudioFormat(encoding, sample_rate, Container.WAV)
