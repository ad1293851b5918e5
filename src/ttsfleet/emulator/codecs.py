"""Compressed encodings of REST `/v1/speak` (mp3, opus in ogg, flac) through libsndfile.

The `soundfile` wheels bundle libsndfile with its mp3 (LAME/mpg123), opus and flac codecs, so pip alone
is enough. aac is not among them: the emulator refuses it with a 400 that says so.
"""

from __future__ import annotations

import io

import soundfile

from ttsfleet import audio
from ttsfleet.protocol import Encoding

# libsndfile's (format, subtype) for each encoding it can write.
_FORMATS: dict[Encoding, tuple[str, str]] = {
    Encoding.MP3: ("MP3", "MPEG_LAYER_III"),
    Encoding.OPUS: ("OGG", "OPUS"),
    Encoding.FLAC: ("FLAC", "PCM_16"),
}
COMPRESSED_ENCODINGS: frozenset[Encoding] = frozenset(_FORMATS)


def encode_compressed(samples: audio.Samples, sample_rate: int, encoding: Encoding) -> bytes:
    """A whole mono file of `samples` (int16 at `sample_rate`) in `encoding`."""
    file_format, subtype = _FORMATS[encoding]
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, sample_rate, format=file_format, subtype=subtype)
    return buffer.getvalue()
