"""Every query parameter and enum value of `/v1/speak` in Deepgram's specs (openapi.yml for REST,
asyncapi.yml for the WebSocket), walked against the emulator and the gateway.

Each case asserts what the client receives and what reached the upstream: the emulator records every
speak request's query (`GET /_emulator/requests`), so behind the gateway it is a recording upstream,
and on its own it records what the client sent. The parameter lists come from the spec files, so a
parameter Deepgram adds fails here until it is handled.
"""

from __future__ import annotations

import io
import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import soundfile
import websockets

from tests.support import deepgram_spec
from tests.support.speaking import SpeakTarget, connect, receive_frame, speak_and_flush
from ttsfleet.emulator.context import model_uuid
from ttsfleet.protocol import SAMPLE_RATES, Encoding, ErrorBody

REST = deepgram_spec.rest_speak_parameters()
WEBSOCKET = deepgram_spec.websocket_speak_parameters()
# Parameters the walk sets itself or that have no enumerated values: each gets its own cases below.
_COUNTER = itertools.count()


@dataclass(frozen=True)
class SpecTarget:
    """A server under test and the emulator that records what reached Deepgram's place."""

    speak: SpeakTarget
    recorder_url: str
    via_gateway: bool

    def recorded(self) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.recorder_url}/_emulator/requests", timeout=5.0)
        return list(response.json()["requests"])

    def callbacks(self) -> list[dict[str, Any]]:
        return list(httpx.get(f"{self.recorder_url}/_emulator/callbacks", timeout=5.0).json()["callbacks"])


@pytest.fixture
def spec_target(speak_target: SpeakTarget, recorder_url: str) -> SpecTarget:
    return SpecTarget(speak_target, recorder_url, via_gateway=recorder_url not in speak_target.http_url)


def _fresh_text() -> str:
    """A sentence the gateway's cache has never seen, so the request must reach upstream."""
    return f"Checking option number {next(_COUNTER)} {uuid.uuid4().hex[:6]}."


def _fresh_speed(base: float) -> str:
    """A speed no other case used (as a gateway spells it): a pool key of the case's own."""
    return f"{base + next(_COUNTER) % 97 / 1000:g}"


def _new_records(target: SpecTarget, before: list[dict[str, Any]], transport: str) -> list[dict[str, Any]]:
    seen = {record["request_id"] for record in before}
    return [r for r in target.recorded() if r["request_id"] not in seen and r["transport"] == transport]


def _post(target: SpecTarget, params: list[tuple[str, str]], text: str) -> httpx.Response:
    return httpx.post(
        f"{target.speak.http_url}/v1/speak",
        params=params,
        json={"text": text},
        headers=target.speak.auth_headers,
        timeout=20.0,
    )


# --- REST -------------------------------------------------------------------------------------------


def _rest_query_for(name: str, value: str) -> list[tuple[str, str]]:
    """A whole valid query that sets `name` to `value`, in the format the value needs."""
    if name == "encoding":
        return [("encoding", value)]
    if name == "container":
        return [("encoding", "opus" if value == "ogg" else "linear16"), ("container", value)]
    if name == "sample_rate":
        encoding = next(e for e in (Encoding.LINEAR16, Encoding.MP3) if int(value) in SAMPLE_RATES[e])
        return [("encoding", encoding.value), ("sample_rate", value)]
    if name == "bit_rate":
        return [("encoding", "mp3"), ("bit_rate", value)]
    return [("encoding", "linear16"), ("container", "none"), (name, value)]


def _rest_cases() -> Iterator[Any]:
    for name, parameter in REST.items():
        if name == "model":
            continue  # every voice has its own walk below
        values = (
            parameter.values
            or {
                "callback": ("https://hooks.example.com/tts",),
                "tag": ("team-voice",),
                "speed": ("0.8", "1.2"),
            }[name]
        )
        for value in values:
            yield pytest.param(name, value, id=f"{name}={value}")


_EXPECTED_TYPE = {
    "linear16": "audio/l16;rate=24000",
    "mulaw": "audio/basic;rate=8000",
    "alaw": "audio/x-alaw-basic;rate=8000",
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "flac": "audio/flac",
}


@pytest.mark.parametrize(("name", "value"), list(_rest_cases()))
def test_rest_option_reaches_upstream_and_the_client_gets_what_it_asked(
    spec_target: SpecTarget, name: str, value: str
) -> None:
    query = _rest_query_for(name, value)
    before = spec_target.recorded()
    response = _post(spec_target, query, _fresh_text())
    if (name, value) == ("encoding", "aac"):
        # The emulator produces no aac: refused clearly, and the gateway relays that refusal as it came.
        assert response.status_code == 400
        body = ErrorBody.parse(response.content)
        assert body is not None
        assert (body.err_code, "does not produce aac" in body.err_msg) == ("INVALID_QUERY_PARAMETER", True)
        assert body.request_id in {r["request_id"] for r in _new_records(spec_target, before, "rest")}
        return
    assert response.status_code == 200, response.text
    reached = _new_records(spec_target, before, "rest")
    assert len(reached) == 1, reached
    forwarded = [tuple(pair) for pair in reached[0]["query"]]
    if (name, value) == ("mip_opt_out", "false") and spec_target.via_gateway:
        assert ("mip_opt_out", "true") not in forwarded  # the default: a gateway may leave it out
    else:
        assert (name, value) in forwarded
    if name == "callback":
        # Deepgram answers with a request id and calls the URL itself; nobody here calls it.
        assert response.json().keys() == {"request_id"}
        recorded = [c for c in spec_target.callbacks() if c["request_id"] == reached[0]["request_id"]]
        assert [(c["url"], c["method"]) for c in recorded] == [(value, "POST")]
        return
    if name == "callback_method":
        return  # without a callback it changes nothing; the pair reached upstream
    encoding = dict(query)["encoding"]
    if encoding in ("mp3", "opus", "flac"):
        info = soundfile.info(io.BytesIO(response.content))
        assert info.format == {"mp3": "MP3", "opus": "OGG", "flac": "FLAC"}[encoding]
        if name == "sample_rate":
            assert info.samplerate == int(value)
    elif dict(query).get("container", "wav") == "wav":  # REST wraps PCM in wav unless told not to
        assert response.headers["content-type"] == "audio/wav"
    elif name == "sample_rate":
        assert response.headers["content-type"] == f"audio/l16;rate={value}"
    else:
        assert response.headers["content-type"] == _EXPECTED_TYPE[encoding]


def test_rest_callback_method_reaches_upstream_with_its_callback(spec_target: SpecTarget) -> None:
    for method in REST["callback_method"].values:
        before = spec_target.recorded()
        url = f"https://hooks.example.com/{method.lower()}"
        response = _post(spec_target, [("callback", url), ("callback_method", method)], _fresh_text())
        assert response.status_code == 200, response.text
        (reached,) = _new_records(spec_target, before, "rest")
        recorded = [c for c in spec_target.callbacks() if c["request_id"] == reached["request_id"]]
        assert [(c["url"], c["method"]) for c in recorded] == [(url, method)]


def test_rest_tags_reach_upstream_each_one(spec_target: SpecTarget) -> None:
    before = spec_target.recorded()
    response = _post(
        spec_target, [("encoding", "linear16"), ("tag", "team-a"), ("tag", "project-b")], _fresh_text()
    )
    assert response.status_code == 200
    (reached,) = _new_records(spec_target, before, "rest")
    assert [value for name, value in reached["query"] if name == "tag"] == ["team-a", "project-b"]


def test_rest_defaults_are_the_specs(spec_target: SpecTarget) -> None:
    """No parameters at all: Deepgram's defaults (mp3, aura-asteria-en)."""
    before = spec_target.recorded()
    response = _post(spec_target, [], _fresh_text())
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/mpeg"
    assert response.headers["dg-model-name"] == REST["model"].default
    assert soundfile.info(io.BytesIO(response.content)).format == "MP3"
    (reached,) = _new_records(spec_target, before, "rest")
    assert ("model", REST["model"].default) in [tuple(pair) for pair in reached["query"]] or (
        not spec_target.via_gateway
    )


@pytest.mark.parametrize("voice", deepgram_spec.spec_voices())
def test_every_spec_voice_speaks_over_rest(spec_target: SpecTarget, voice: str) -> None:
    response = _post(spec_target, [("model", voice), ("encoding", "linear16")], "Hello.")
    assert response.status_code == 200, response.text
    assert response.headers["dg-model-name"] == voice


def test_integral_floats_are_accepted_as_the_sdk_sends_them(spec_target: SpecTarget) -> None:
    before = spec_target.recorded()
    response = _post(spec_target, [("encoding", "linear16"), ("sample_rate", "16000.0")], _fresh_text())
    assert response.status_code == 200, response.text
    assert audio_rate(response.content) == 16000
    assert len(_new_records(spec_target, before, "rest")) == 1


def audio_rate(wav: bytes) -> int:
    return int(soundfile.info(io.BytesIO(wav)).samplerate)


def test_upstream_refusals_reach_the_client_as_deepgram_sent_them(spec_target: SpecTarget) -> None:
    """A well-formed voice Deepgram does not know: its own 400 body, err_code and request id."""
    before = spec_target.recorded()
    response = _post(spec_target, [("model", "aura-2-nobody-en"), ("encoding", "linear16")], "Hi.")
    assert response.status_code == 400
    body = ErrorBody.parse(response.content)
    assert body is not None
    assert body.err_code == "UNKNOWN_MODEL"
    assert body.request_id in {r["request_id"] for r in _new_records(spec_target, before, "rest")}
    assert response.headers["dg-request-id"] == body.request_id


# --- WebSocket --------------------------------------------------------------------------------------


def _ws_cases() -> Iterator[Any]:
    for name, parameter in WEBSOCKET.items():
        if name == "model":
            continue  # every voice has its own walk below
        for value in parameter.values or ("0.8", "1.25"):
            yield pytest.param(name, value, id=f"{name}={value}")


@pytest.mark.parametrize(("name", "value"), list(_ws_cases()))
async def test_websocket_option_reaches_upstream_and_the_client_gets_what_it_asked(
    spec_target: SpecTarget, name: str, value: str
) -> None:
    params = {name: value}
    if name == "sample_rate" or (name == "encoding" and value == "linear16"):
        params.setdefault("encoding", "linear16")
    # A speed of its own gives the case a pool key of its own: the upstream socket it uses opens now.
    params.setdefault("speed", _fresh_speed(0.9))
    before = spec_target.recorded()
    async with await connect(spec_target.speak, **params) as ws:
        metadata = await receive_frame(ws)
        assert metadata.type == "Metadata"
        received = await speak_and_flush(ws, _fresh_text())
    encoding = Encoding(params.get("encoding", WEBSOCKET["encoding"].default))
    rate = int(params.get("sample_rate", SAMPLE_RATES[encoding][0]))
    seconds = len(received.audio) / (rate * (2 if encoding is Encoding.LINEAR16 else 1))
    # About one sentence of speech at the speed asked: a slower voice speaks the same text for longer.
    assert 0.8 < seconds * float(params["speed"]) < 6.0
    reached = _new_records(spec_target, before, "websocket")
    # What the client named must reach upstream as named; a gateway may leave the default mip_opt_out out.
    expected = {
        k: v for k, v in params.items() if (k, v) != ("mip_opt_out", "false") or not spec_target.via_gateway
    }
    matching = [r for r in reached if expected.items() <= dict(r["query"]).items()]
    assert matching, f"no upstream socket with {expected}: {reached}"


async def test_opted_out_and_opted_in_sessions_never_share_an_upstream_socket(
    spec_target: SpecTarget,
) -> None:
    """mip_opt_out changes what Deepgram does and bills: an opted-out session's audio comes from a
    socket opened with mip_opt_out=true, even right after an opted-in one of the same voice and format."""
    speed = _fresh_speed(1.3)
    for opted_out in ("false", "true"):
        before = spec_target.recorded()
        async with await connect(spec_target.speak, speed=speed, mip_opt_out=opted_out) as ws:
            await receive_frame(ws)
            await speak_and_flush(ws, _fresh_text())
        reached = [dict(r["query"]) for r in _new_records(spec_target, before, "websocket")]
        assert any(q.get("speed") == speed for q in reached), reached
        assert all((q.get("mip_opt_out") == "true") == (opted_out == "true") for q in reached), reached


@pytest.mark.parametrize("voice", deepgram_spec.spec_voices())
async def test_every_spec_voice_opens_a_socket_with_upstreams_metadata(
    spec_target: SpecTarget, voice: str
) -> None:
    async with await connect(spec_target.speak, model=voice) as ws:
        metadata = await receive_frame(ws)
    assert metadata.text is not None
    assert metadata.text["model_name"] == voice
    # The emulator's uuid of the model: on a gateway, what upstream said on the model's first session.
    assert metadata.text["model_uuid"] == model_uuid(voice)
    assert metadata.text["model_version"]


async def test_websocket_refuses_rest_only_parameters_by_name(spec_target: SpecTarget) -> None:
    for name in sorted(set(REST) - set(WEBSOCKET)):
        # container=none is the WebSocket's own (PROTOCOL.md); any other container is REST's.
        value = {"container": "wav", "callback": "https://hooks.example.com/x", "tag": "t"}.get(
            name, REST[name].values[0] if REST[name].values else ""
        )
        with pytest.raises(websockets.InvalidStatus) as refused:
            await connect(spec_target.speak, **{name: value})
        assert refused.value.response.status_code == 400
        body = ErrorBody.parse(bytes(refused.value.response.body or b""))
        assert body is not None and name in body.err_msg


# --- Flux TTS ---------------------------------------------------------------------------------------


async def test_v2_speak_is_refused_as_an_unsupported_route(spec_target: SpecTarget) -> None:
    speak = spec_target.speak
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(
            f"{speak.ws_url}/v2/speak?model=flux-alexis-en", additional_headers=speak.auth_headers
        )
    rest = httpx.post(f"{speak.http_url}/v2/speak", json={"text": "hi"}, headers=speak.auth_headers)
    for status, raw in (
        (refused.value.response.status_code, refused.value.response.body),
        (rest.status_code, rest.content),
    ):
        assert status == 404
        body = ErrorBody.parse(bytes(raw or b""))
        assert body is not None
        assert (body.err_code, "not supported" in body.err_msg) == ("NOT_FOUND", True)
