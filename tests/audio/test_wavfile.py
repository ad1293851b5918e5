"""WAV framing in `ttsfleet.wavfile`: byte layouts, round trips, and files other writers made."""

from __future__ import annotations

import io
import struct
import wave

import pytest

from ttsfleet import wavfile
from ttsfleet.protocol.formats import AudioFormat, Container, Encoding


def test_linear16_wav_header_has_the_canonical_44_byte_layout() -> None:
    header = wavfile.header(Encoding.LINEAR16, 24000, 4800)
    assert len(header) == 44
    assert struct.unpack("<4sI4s4sIHHIIHH4sI", header) == (
        b"RIFF", 36 + 4800, b"WAVE", b"fmt ", 16, 1, 1, 24000, 48000, 2, 16, b"data", 4800
    )  # fmt: skip


@pytest.mark.parametrize(("encoding", "tag"), [(Encoding.MULAW, 7), (Encoding.ALAW, 6)])
def test_g711_wav_headers_carry_their_format_tag_8_bits_and_cbsize(encoding: Encoding, tag: int) -> None:
    header = wavfile.header(encoding, 8000, 801)
    assert len(header) == 46
    fields = struct.unpack("<4sI4s4sIHHIIHHH4sI", header)
    assert fields == (b"RIFF", 38 + 801 + 1, b"WAVE", b"fmt ", 18, tag, 1, 8000, 8000, 1, 8, 0, b"data", 801)


def test_streaming_wav_headers_mark_sizes_unknown() -> None:
    header = wavfile.header(Encoding.LINEAR16, 16000, None)
    assert struct.unpack_from("<I", header, 4)[0] == 0xFFFFFFFF
    assert struct.unpack_from("<I", header, 40)[0] == 0xFFFFFFFF


@pytest.mark.parametrize(
    ("encoding", "rate"),
    [
        pytest.param(Encoding.LINEAR16, 24000, id="linear16-24000"),
        pytest.param(Encoding.MULAW, 8000, id="mulaw-8000"),
        pytest.param(Encoding.ALAW, 16000, id="alaw-16000"),
    ],
)
@pytest.mark.parametrize("streaming", [False, True], ids=["sized", "streaming"])
def test_wav_files_parse_back_to_their_format_and_data(
    encoding: Encoding, rate: int, streaming: bool
) -> None:
    pcm = bytes(range(256)) * 3  # any bytes: the data chunk is taken as it is
    data = wavfile.header(encoding, rate, None if streaming else len(pcm)) + pcm
    parsed = wavfile.parse(data)
    assert parsed.format == AudioFormat(encoding, rate, Container.WAV)
    assert parsed.pcm == pcm
    fmt, body = parsed
    assert (fmt, body) == (parsed.format, parsed.pcm)


def test_the_standard_library_reads_our_linear16_wav() -> None:
    pcm = struct.pack("<4h", 0, 1000, -1000, 32767)
    with wave.open(io.BytesIO(wavfile.header(Encoding.LINEAR16, 16000, len(pcm)) + pcm)) as reader:
        assert (reader.getnchannels(), reader.getsampwidth(), reader.getframerate()) == (1, 2, 16000)
        assert reader.readframes(reader.getnframes()) == pcm


def test_parsing_reads_a_file_the_standard_library_wrote_with_extra_chunks_skipped() -> None:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(48000)
        writer.writeframes(b"\x01\x00\x02\x00")
    written = buffer.getvalue()
    # Put an odd-sized LIST chunk (padded to an even length) between fmt and data.
    with_list = written[:36] + b"LIST" + struct.pack("<I", 3) + b"abc\x00" + written[36:]
    parsed = wavfile.parse(with_list)
    assert parsed.format == AudioFormat(Encoding.LINEAR16, 48000, Container.WAV)
    assert parsed.pcm == b"\x01\x00\x02\x00"


def _fmt_chunk(tag: int, channels: int, bits: int) -> bytes:
    return b"fmt " + struct.pack("<IHHIIHH", 16, tag, channels, 8000, 8000, 1, bits)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(b"not a wav file", "not a RIFF/WAVE", id="not-riff"),
        pytest.param(b"RIFF\x00\x00\x00\x00WAVE" + _fmt_chunk(7, 2, 8), "mono", id="stereo"),
        pytest.param(b"RIFF\x00\x00\x00\x00WAVE" + _fmt_chunk(3, 1, 32), "format tag", id="float"),
        pytest.param(b"RIFF\x00\x00\x00\x00WAVE" + _fmt_chunk(7, 1, 16), "bits per sample", id="bad-bits"),
        pytest.param(b"RIFF\x00\x00\x00\x00WAVE" + _fmt_chunk(1, 1, 16), "no data chunk", id="no-data"),
        pytest.param(b"RIFF\x00\x00\x00\x00WAVEdata\x00\x00\x00\x00", "before fmt", id="data-first"),
        pytest.param(b"RIFF\x00\x00\x00\x00WAVEfmt \x04\x00\x00\x00abcd", "too short", id="short-fmt"),
    ],
)
def test_parsing_rejects_what_it_cannot_read(data: bytes, message: str) -> None:
    with pytest.raises(wavfile.WavError, match=message):
        wavfile.parse(data)


@pytest.mark.parametrize("encoding", [Encoding.MP3, Encoding.OPUS])
def test_headers_refuse_compressed_encodings(encoding: Encoding) -> None:
    with pytest.raises(ValueError, match="not a PCM encoding"):
        wavfile.header(encoding, 24000, 100)
