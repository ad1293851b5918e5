"""PROTOCOL.md, "REST": bodies, formats, headers and errors of `POST /v1/speak`."""

from __future__ import annotations

import io

import httpx
import pytest
import soundfile

from tests.support.speaking import SpeakTarget
from ttsfleet import wavfile
from ttsfleet.protocol import SAMPLE_RATES, Encoding, ErrorBody

SENTENCE = "Hello from the emulator."


def _post(target: SpeakTarget, params: dict[str, str] | None = None, **kwargs: object) -> httpx.Response:
    headers = kwargs.pop("headers", target.auth_headers)
    return httpx.post(
        f"{target.http_url}/v1/speak",
        params=params if params is not None else {"encoding": "linear16"},
        headers=headers,  # type: ignore[arg-type]
        timeout=10,
        **kwargs,  # type: ignore[arg-type]
    )


def test_json_body_answers_a_wav_with_metadata_headers(speak_target: SpeakTarget) -> None:
    response = _post(speak_target, json={"text": SENTENCE})
    assert response.status_code == 200
    assert response.headers["content-type"] == "audio/wav"
    assert response.headers["dg-model-name"] == speak_target.default_model
    assert response.headers["dg-char-count"] == str(len(SENTENCE))
    assert response.headers["dg-request-id"]
    fmt, pcm = wavfile.parse(response.content)
    assert (fmt.encoding, fmt.sample_rate) == (Encoding.LINEAR16, 24000)
    assert len(pcm) > 24000


def test_plain_text_body_is_accepted(speak_target: SpeakTarget) -> None:
    as_json = _post(speak_target, json={"text": SENTENCE})
    as_text = _post(
        speak_target,
        content=SENTENCE.encode(),
        headers={**speak_target.auth_headers, "content-type": "text/plain"},
    )
    assert as_text.status_code == 200
    assert as_text.content == as_json.content


def test_container_none_answers_bare_pcm(speak_target: SpeakTarget) -> None:
    wav = _post(speak_target, {"encoding": "linear16", "sample_rate": "16000"}, json={"text": SENTENCE})
    bare = _post(
        speak_target,
        {"encoding": "linear16", "sample_rate": "16000", "container": "none"},
        json={"text": SENTENCE},
    )
    assert bare.headers["content-type"] == "audio/l16;rate=16000"
    assert wavfile.parse(wav.content)[1] == bare.content


@pytest.mark.parametrize(
    ("encoding", "sample_rate"),
    [
        pytest.param(encoding, rate, id=f"{encoding.value}-{rate}")
        for encoding in (Encoding.LINEAR16, Encoding.MULAW, Encoding.ALAW)
        for rate in SAMPLE_RATES[encoding]
    ],
)
def test_every_pcm_encoding_and_rate_in_a_wav(
    speak_target: SpeakTarget, encoding: Encoding, sample_rate: int
) -> None:
    response = _post(
        speak_target, {"encoding": encoding.value, "sample_rate": str(sample_rate)}, json={"text": SENTENCE}
    )
    assert response.status_code == 200
    fmt, pcm = wavfile.parse(response.content)
    assert (fmt.encoding, fmt.sample_rate) == (encoding, sample_rate)
    bytes_per_sample = 2 if encoding is Encoding.LINEAR16 else 1
    assert 0.8 < len(pcm) / bytes_per_sample / sample_rate < 3.0


@pytest.mark.parametrize(
    ("params", "content_type", "sample_rate", "file_format"),
    [
        pytest.param({}, "audio/mpeg", 22050, "MP3", id="default-mp3"),
        pytest.param({"encoding": "mp3", "bit_rate": "32000"}, "audio/mpeg", 22050, "MP3", id="mp3-32k"),
        pytest.param({"encoding": "opus"}, "audio/ogg", 48000, "OGG", id="opus-in-ogg"),
        pytest.param({"encoding": "flac", "sample_rate": "16000.0"}, "audio/flac", 16000, "FLAC", id="flac"),
    ],
)
def test_compressed_encodings_answer_real_files(
    speak_target: SpeakTarget, params: dict[str, str], content_type: str, sample_rate: int, file_format: str
) -> None:
    response = _post(speak_target, params, json={"text": SENTENCE})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == content_type
    info = soundfile.info(io.BytesIO(response.content))
    assert (info.format, info.samplerate, info.channels) == (file_format, sample_rate, 1)
    assert 0.8 < info.duration < 3.0


def test_aac_gets_a_400_that_says_the_emulator_does_not_produce_it(speak_target: SpeakTarget) -> None:
    response = _post(speak_target, {"encoding": "aac"}, json={"text": SENTENCE})
    assert response.status_code == 400
    body = ErrorBody.parse(response.content)
    assert body is not None
    assert "does not produce aac" in body.err_msg


@pytest.mark.parametrize(
    ("params", "kwargs", "status", "err_code"),
    [
        pytest.param(
            {"encoding": "linear16", "model": "aura-zz-en"},
            {"json": {"text": "hi"}},
            400,
            "UNKNOWN_MODEL",
            id="model",
        ),
        pytest.param(
            {"encoding": "linear16", "sample_rate": "11025"},
            {"json": {"text": "hi"}},
            400,
            "INVALID_QUERY_PARAMETER",
            id="rate",
        ),
        pytest.param({"encoding": "linear16"}, {"json": {"text": "  "}}, 400, "EMPTY_TEXT", id="empty-text"),
        pytest.param(
            {"encoding": "linear16"}, {"json": {"words": "hi"}}, 400, "Bad Request", id="no-text-field"
        ),
        pytest.param(
            {"encoding": "linear16"}, {"json": {"text": "a" * 2001}}, 413, "PAYLOAD_TOO_LARGE", id="too-long"
        ),
        pytest.param(
            {"encoding": "linear16"},
            {"content": b"<speak/>", "headers": {"content-type": "application/xml"}},
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            id="content-type",
        ),
    ],
)
def test_rest_errors_have_status_and_body(
    speak_target: SpeakTarget, params: dict[str, str], kwargs: dict[str, object], status: int, err_code: str
) -> None:
    if "headers" in kwargs:
        kwargs = {**kwargs, "headers": {**speak_target.auth_headers, **kwargs["headers"]}}  # type: ignore[dict-item]
    response = _post(speak_target, params, **kwargs)
    assert response.status_code == status
    body = ErrorBody.parse(response.content)
    assert body is not None
    assert body.err_code == err_code
    assert body.request_id == response.headers["dg-request-id"]
    assert response.headers["dg-error"] == body.err_msg


def test_rest_without_credentials_is_401(speak_target: SpeakTarget) -> None:
    response = _post(speak_target, headers={}, json={"text": SENTENCE})
    assert response.status_code == 401
    body = ErrorBody.parse(response.content)
    assert body is not None and body.err_code == "INVALID_AUTH"


def test_rest_audio_equals_websocket_audio_for_the_same_text(speak_target: SpeakTarget) -> None:
    import asyncio

    from tests.support.speaking import connect, receive_frame, speak_and_flush

    async def over_websocket() -> bytes:
        async with await connect(speak_target) as ws:
            await receive_frame(ws)
            return (await speak_and_flush(ws, SENTENCE)).audio

    rest_pcm = wavfile.parse(_post(speak_target, json={"text": SENTENCE}).content)[1]
    assert asyncio.run(over_websocket()) == rest_pcm
