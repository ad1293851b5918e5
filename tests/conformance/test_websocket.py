"""PROTOCOL.md, "WebSocket": handshake, message order, sequence ids, limits and close codes."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

from tests.support.speaking import (
    SpeakTarget,
    connect,
    receive_frame,
    receive_until,
    speak_and_flush,
    wait_closed,
)
from ttsfleet.protocol import SAMPLE_RATES, Encoding, ErrorBody

SENTENCE = "Hello from the emulator."


async def test_metadata_is_the_first_message_and_names_the_request(speak_target: SpeakTarget) -> None:
    async with await connect(speak_target, model="aura-2-thalia-en") as ws:
        first = await receive_frame(ws)
        assert first.type == "Metadata"
        assert first.text is not None
        assert first.text["model_name"] == "aura-2-thalia-en"
        assert first.text["request_id"] == ws.response.headers["dg-request-id"]
        assert first.text["model_uuid"] and first.text["model_version"]


async def test_speak_then_flush_streams_audio_then_flushed(speak_target: SpeakTarget) -> None:
    async with await connect(speak_target) as ws:
        await receive_frame(ws)
        received = await speak_and_flush(ws, SENTENCE)
        assert received.types == ["Audio", "Flushed"]
        assert received.frames[-1].text == {"type": "Flushed", "sequence_id": 0}
        assert len(received.audio) > 24000  # well over half a second of 24 kHz linear16
        assert len(received.audio) % 2 == 0  # whole samples


async def test_flushed_sequence_ids_count_up_from_zero_per_socket(speak_target: SpeakTarget) -> None:
    async with await connect(speak_target) as ws:
        await receive_frame(ws)
        ids = [(await speak_and_flush(ws, f"Sentence number {n}.")).frames[-1].text for n in range(3)]
        assert [frame["sequence_id"] for frame in ids if frame] == [0, 1, 2]
    async with await connect(speak_target) as ws:
        await receive_frame(ws)
        again = await speak_and_flush(ws, SENTENCE)
        assert again.frames[-1].text == {"type": "Flushed", "sequence_id": 0}


async def test_text_from_several_speaks_is_one_utterance(speak_target: SpeakTarget) -> None:
    async with await connect(speak_target) as ws:
        await receive_frame(ws)
        whole = await speak_and_flush(ws, "Seven green apples.")
        await ws.send(json.dumps({"type": "Speak", "text": "Seven green "}))
        await ws.send(json.dumps({"type": "Speak", "text": "apples."}))
        await ws.send(json.dumps({"type": "Flush"}))
        pieces = await receive_until(ws, "Flushed")
        assert pieces.audio == whole.audio  # deterministic synthesis of the same text


async def test_flush_with_nothing_buffered_answers_flushed_without_audio(speak_target: SpeakTarget) -> None:
    async with await connect(speak_target) as ws:
        await receive_frame(ws)
        await ws.send(json.dumps({"type": "Flush"}))
        received = await receive_until(ws, "Flushed")
        assert received.types == ["Flushed"]


async def test_clear_is_answered_by_cleared_with_its_own_sequence(speak_target: SpeakTarget) -> None:
    async with await connect(speak_target) as ws:
        await receive_frame(ws)
        await speak_and_flush(ws, SENTENCE)
        await ws.send(json.dumps({"type": "Speak", "text": "This text is never spoken."}))
        await ws.send(json.dumps({"type": "Clear"}))
        cleared = await receive_until(ws, "Cleared")
        assert cleared.types == ["Cleared"]
        assert cleared.frames[-1].text == {"type": "Cleared", "sequence_id": 0}
        # The cleared text is gone: a flush now has nothing to say.
        await ws.send(json.dumps({"type": "Flush"}))
        after = await receive_until(ws, "Flushed")
        assert after.types == ["Flushed"]


async def test_close_message_closes_normally(speak_target: SpeakTarget) -> None:
    async with await connect(speak_target) as ws:
        await receive_frame(ws)
        await ws.send(json.dumps({"type": "Close"}))
        assert await wait_closed(ws) == (1000, "")


async def test_close_waits_for_flushed_audio_first(speak_target: SpeakTarget) -> None:
    async with await connect(speak_target) as ws:
        await receive_frame(ws)
        await ws.send(json.dumps({"type": "Speak", "text": SENTENCE}))
        await ws.send(json.dumps({"type": "Flush"}))
        await ws.send(json.dumps({"type": "Close"}))
        received = await receive_until(ws, "Flushed")
        assert received.types == ["Audio", "Flushed"]
        assert await wait_closed(ws) == (1000, "")


@pytest.mark.parametrize(
    ("frame", "code", "reason"),
    [
        pytest.param(b"\x00\x01", 1003, "MESSAGE-0000", id="binary-frame"),
        pytest.param("not json", 1008, "DATA-0000", id="not-json"),
        pytest.param('["Speak"]', 1008, "DATA-0000", id="not-an-object"),
        pytest.param('{"type":"Shout"}', 1008, "DATA-0000", id="unknown-type"),
        pytest.param('{"type":"Speak","text":7}', 1008, "DATA-0000", id="speak-without-text"),
        pytest.param(
            json.dumps({"type": "Speak", "text": "a" * 2001}), 1009, "BIG-0001", id="speak-over-2000"
        ),
        pytest.param(
            json.dumps({"type": "Speak", "text": "a" * 70000}), 1009, "BIG-0000", id="frame-too-large"
        ),
    ],
)
async def test_bad_frames_close_with_the_protocol_code(
    speak_target: SpeakTarget, frame: str | bytes, code: int, reason: str
) -> None:
    async with await connect(speak_target) as ws:
        await receive_frame(ws)
        await ws.send(frame)
        assert await wait_closed(ws) == (code, reason)


async def test_more_than_2400_characters_a_minute_closes_with_data_0001(speak_target: SpeakTarget) -> None:
    async with await connect(speak_target) as ws:
        await receive_frame(ws)
        await ws.send(json.dumps({"type": "Speak", "text": "a" * 2000}))
        await ws.send(json.dumps({"type": "Speak", "text": "b" * 400}))  # exactly 2400: still allowed
        await ws.send(json.dumps({"type": "Speak", "text": "c"}))
        assert await wait_closed(ws) == (1008, "DATA-0001")


async def test_the_21st_flush_in_a_minute_is_skipped_with_a_warning(speak_target: SpeakTarget) -> None:
    async with await connect(speak_target) as ws:
        await receive_frame(ws)
        for _ in range(20):
            await ws.send(json.dumps({"type": "Flush"}))
        for expected in range(20):
            flushed = await receive_until(ws, "Flushed")
            assert flushed.frames[-1].text == {"type": "Flushed", "sequence_id": expected}
        await ws.send(json.dumps({"type": "Speak", "text": "kept"}))
        await ws.send(json.dumps({"type": "Flush"}))
        warning = await receive_frame(ws)
        assert warning.text is not None
        assert warning.text["type"] == "Warning"
        # Both spellings: the documented fields and the ones the live service sends.
        assert warning.text["code"] == warning.text["warn_code"] == "EXCESSIVE_FLUSH"
        assert warning.text["description"] == warning.text["warn_msg"]
        await ws.send(json.dumps({"type": "Clear"}))  # the socket stays usable, the text stays buffered
        cleared = await receive_until(ws, "Cleared")
        assert cleared.types == ["Cleared"]


@pytest.mark.parametrize(
    ("encoding", "sample_rate"),
    [
        pytest.param(encoding, rate, id=f"{encoding.value}-{rate}")
        for encoding in (Encoding.LINEAR16, Encoding.MULAW, Encoding.ALAW)
        for rate in SAMPLE_RATES[encoding]
    ],
)
async def test_every_websocket_encoding_and_rate_streams_audio_of_the_same_duration(
    speak_target: SpeakTarget, encoding: Encoding, sample_rate: int
) -> None:
    async with await connect(speak_target, encoding=encoding.value, sample_rate=sample_rate) as ws:
        await receive_frame(ws)
        received = await speak_and_flush(ws, SENTENCE)
    bytes_per_sample = 2 if encoding is Encoding.LINEAR16 else 1
    assert len(received.audio) % bytes_per_sample == 0
    duration_s = len(received.audio) / bytes_per_sample / sample_rate
    assert 0.8 < duration_s < 3.0  # the same sentence lasts the same whatever the format


async def test_default_encoding_is_linear16_at_24000(speak_target: SpeakTarget) -> None:
    async with await connect(speak_target) as default_ws:
        await receive_frame(default_ws)
        default = await speak_and_flush(default_ws, SENTENCE)
    async with await connect(speak_target, encoding="linear16", sample_rate=24000) as explicit_ws:
        await receive_frame(explicit_ws)
        explicit = await speak_and_flush(explicit_ws, SENTENCE)
    assert default.audio == explicit.audio


async def test_speed_changes_the_duration(speak_target: SpeakTarget) -> None:
    durations = {}
    for speed in ("0.7", "1.5"):
        async with await connect(speak_target, speed=speed) as ws:
            await receive_frame(ws)
            durations[speed] = len((await speak_and_flush(ws, SENTENCE)).audio)
    assert durations["0.7"] > durations["1.5"] * 1.3


# --- handshake --------------------------------------------------------------------------------------


async def _refused(
    target: SpeakTarget, headers: dict[str, str] | None = None, **params: str
) -> tuple[int, dict, ErrorBody]:
    with pytest.raises(websockets.InvalidStatus) as refused:
        await connect(target, headers=headers, **params)
    response = refused.value.response
    body = ErrorBody.parse(response.body)
    assert body is not None, response.body
    return response.status_code, dict(response.headers), body


@pytest.mark.parametrize(
    ("params", "err_code"),
    [
        pytest.param({"model": "aura-nobody-en"}, "UNKNOWN_MODEL", id="unknown-model"),
        pytest.param({"model": "whisper"}, "UNKNOWN_MODEL", id="malformed-model"),
        pytest.param({"encoding": "mp3"}, "INVALID_QUERY_PARAMETER", id="mp3-on-websocket"),
        pytest.param({"encoding": "pcm"}, "INVALID_QUERY_PARAMETER", id="unknown-encoding"),
        pytest.param({"sample_rate": "44100"}, "INVALID_QUERY_PARAMETER", id="rate-not-for-linear16"),
        pytest.param(
            {"encoding": "mulaw", "sample_rate": "24000"}, "INVALID_QUERY_PARAMETER", id="rate-not-for-mulaw"
        ),
        pytest.param({"container": "wav"}, "INVALID_QUERY_PARAMETER", id="container-on-websocket"),
        pytest.param({"speed": "2.0"}, "INVALID_QUERY_PARAMETER", id="speed-too-fast"),
        pytest.param({"speed": "fast"}, "INVALID_QUERY_PARAMETER", id="speed-not-a-number"),
    ],
)
async def test_bad_parameters_refuse_the_upgrade_with_400(
    speak_target: SpeakTarget, params: dict[str, str], err_code: str
) -> None:
    status, headers, body = await _refused(speak_target, **params)
    assert status == 400
    assert body.err_code == err_code
    assert headers["dg-error"] == body.err_msg
    assert headers["dg-request-id"] == body.request_id


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-credentials"),
        pytest.param({"Authorization": "Token "}, id="empty-token"),
        pytest.param({"Authorization": "Basic abc"}, id="wrong-scheme"),
    ],
)
async def test_missing_credentials_refuse_the_upgrade_with_401(
    speak_target: SpeakTarget, headers: dict[str, str]
) -> None:
    status, response_headers, body = await _refused(speak_target, headers=headers)
    assert status == 401
    assert body.err_code == "INVALID_AUTH"
    assert "dg-error" in response_headers


async def test_bearer_credentials_are_accepted(speak_target: SpeakTarget) -> None:
    async with await connect(speak_target, headers={"Authorization": f"Bearer {speak_target.token}"}) as ws:
        assert (await receive_frame(ws)).type == "Metadata"


async def test_browser_subprotocol_credentials_select_token(speak_target: SpeakTarget) -> None:
    async with await websockets.connect(
        speak_target.speak_url(),
        subprotocols=["token", speak_target.token],  # type: ignore[list-item]
    ) as ws:
        assert ws.subprotocol == "token"
        assert (await receive_frame(ws)).type == "Metadata"


async def test_clear_discards_in_flight_audio_and_cleared_follows_it(slow_speak_target: SpeakTarget) -> None:
    """With paced audio the Clear lands mid-utterance: audio may precede Cleared, never follow it."""
    async with await connect(slow_speak_target) as ws:
        await receive_frame(ws)
        await ws.send(
            json.dumps({"type": "Speak", "text": "A long sentence that takes a while to stream out."})
        )
        await ws.send(json.dumps({"type": "Flush"}))
        first = await receive_frame(ws)
        assert first.type == "Audio"
        await ws.send(json.dumps({"type": "Clear"}))
        after_clear = await receive_until(ws, "Cleared")
        assert after_clear.types[-1] == "Cleared"
        assert "Flushed" not in after_clear.types  # the cleared flush never completes
        await ws.send(json.dumps({"type": "Speak", "text": "Next."}))
        await ws.send(json.dumps({"type": "Flush"}))
        nxt = await receive_until(ws, "Flushed")
        assert nxt.frames[-1].text == {"type": "Flushed", "sequence_id": 1}
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):  # nothing else was queued behind
                await ws.recv()
