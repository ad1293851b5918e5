"""An independent client: Deepgram's official Python SDK (v7), pointed at our server by environment URLs."""

from __future__ import annotations

import io

import soundfile
from deepgram import DeepgramClient
from deepgram.environment import DeepgramClientEnvironment
from deepgram.speak.v1.types import SpeakV1Flush, SpeakV1Flushed, SpeakV1Metadata, SpeakV1Text

from tests.support.servers import ServerProcess
from tests.support.speaking import SpeakTarget
from ttsfleet import wavfile

SENTENCE = "Hello from the emulator."


def _client(target: SpeakTarget) -> DeepgramClient:
    environment = DeepgramClientEnvironment(
        base=target.http_url, production=target.ws_url, agent=target.ws_url, agent_rest=target.http_url
    )
    return DeepgramClient(api_key=target.token, environment=environment)


def test_sdk_speaks_over_the_websocket(speak_target: SpeakTarget) -> None:
    client = _client(speak_target)
    audio_bytes = bytearray()
    with client.speak.v1.connect(model="aura-2-thalia-en", encoding="linear16", sample_rate=16000) as socket:
        first = socket.recv()
        assert isinstance(first, SpeakV1Metadata)
        assert first.model_name == "aura-2-thalia-en"
        socket.send_text(SpeakV1Text(type="Speak", text=SENTENCE))
        socket.send_flush(SpeakV1Flush(type="Flush"))
        while True:
            message = socket.recv()
            if isinstance(message, bytes):
                audio_bytes.extend(message)
                continue
            if isinstance(message, SpeakV1Flushed):
                assert message.sequence_id == 0
                break
        socket.send_close()
    assert len(audio_bytes) > 16000  # over half a second of 16 kHz linear16


def test_sdk_speaks_over_rest(speak_target: SpeakTarget) -> None:
    client = _client(speak_target)
    chunks = client.speak.v1.audio.generate(
        text=SENTENCE, model="aura-2-thalia-en", encoding="linear16", sample_rate=24000, container="wav"
    )
    wav = b"".join(chunks)
    fmt, pcm = wavfile.parse(wav)
    assert fmt.sample_rate == 24000
    assert len(pcm) > 24000


def test_sdk_rest_sends_rates_as_floats_and_defaults_to_mp3(speak_target: SpeakTarget) -> None:
    client = _client(speak_target)
    # The SDK types sample_rate as a float and sends `16000.0`: a whole number all the same.
    wav = b"".join(
        client.speak.v1.audio.generate(
            text=SENTENCE,
            model="aura-2-celeste-es",
            encoding="linear16",
            sample_rate=16000.0,
            container="wav",
        )
    )
    assert wavfile.parse(wav)[0].sample_rate == 16000
    mp3 = b"".join(client.speak.v1.audio.generate(text=SENTENCE))
    assert soundfile.info(io.BytesIO(mp3)).format == "MP3"


def test_sdk_reads_the_project_before_speaking(emulator: ServerProcess) -> None:
    """What Deepgram's clients (its CLI first of all) call before speaking: the key's projects."""
    target = SpeakTarget(ws_url=emulator.ws_url, http_url=emulator.base_url, token="conformance-key")
    projects = _client(target).manage.v1.projects.list().projects or []
    assert len(projects) == 1
    project = _client(target).manage.v1.projects.get(projects[0].project_id or "")
    assert project.project_id == projects[0].project_id
