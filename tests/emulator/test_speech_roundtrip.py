"""The emulator's audio says the right words at the right rate: recognised with a grammar of test phrases."""

from __future__ import annotations

import pytest

from tests.support.recognition import TEST_PHRASES, recognise
from tests.support.servers import ServerProcess
from tests.support.speaking import SpeakTarget, connect, receive_frame, speak_and_flush
from ttsfleet.protocol import Encoding

FORMATS = [
    pytest.param(Encoding.LINEAR16, 16000, id="linear16-16000"),
    pytest.param(Encoding.LINEAR16, 24000, id="linear16-24000"),
    pytest.param(Encoding.LINEAR16, 48000, id="linear16-48000"),
    pytest.param(Encoding.MULAW, 8000, id="mulaw-8000"),
]


async def _speak(emulator: ServerProcess, text: str, encoding: Encoding, sample_rate: int) -> bytes:
    target = SpeakTarget(emulator.ws_url, emulator.base_url, "speech-key")
    async with await connect(target, encoding=encoding.value, sample_rate=sample_rate) as ws:
        await receive_frame(ws)
        return (await speak_and_flush(ws, text)).audio


@pytest.mark.parametrize(("encoding", "sample_rate"), FORMATS)
async def test_each_phrase_is_recognised_from_the_streamed_audio(
    emulator: ServerProcess, encoding: Encoding, sample_rate: int
) -> None:
    for phrase in TEST_PHRASES:
        pcm = await _speak(emulator, phrase, encoding, sample_rate)
        assert recognise(pcm, encoding, sample_rate, TEST_PHRASES) == phrase


@pytest.mark.parametrize(
    ("spoken_rate", "declared_rate"),
    [pytest.param(24000, 48000, id="24k-read-as-48k"), pytest.param(48000, 16000, id="48k-read-as-16k")],
)
async def test_audio_read_at_the_wrong_rate_is_not_recognised(
    emulator: ServerProcess, spoken_rate: int, declared_rate: int
) -> None:
    for phrase in TEST_PHRASES:
        pcm = await _speak(emulator, phrase, Encoding.LINEAR16, spoken_rate)
        assert recognise(pcm, Encoding.LINEAR16, declared_rate, TEST_PHRASES) != phrase
