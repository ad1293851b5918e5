"""The gateway end to end over real processes: round trip, same audio, Clear, auth, REST, multiplexing."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families

from tests.dataplane.gateways import DEEPGRAM_KEY, FLEET_TOKEN, OTHER_TOKEN, RunningGateway, running_gateway
from tests.support.servers import running_emulator
from tests.support.speaking import (
    RECEIVE_DEADLINE_S,
    SpeakTarget,
    connect,
    receive_frame,
    receive_until,
    speak_and_flush,
    wait_closed,
)
from tests.support.waiting import eventually
from ttsfleet.dataplane.settings import PoolSettings
from ttsfleet.dataplane.sockets import spare_target
from ttsfleet.fingerprints import fingerprint_secret
from ttsfleet.protocol import ErrorBody

SENTENCE = "The quick brown fox jumps over the lazy dog."
LONG_TEXT = " ".join(["This sentence makes a long utterance for interrupting."] * 12)


async def test_speak_round_trip_answers_metadata_audio_and_flushed(gateway: RunningGateway) -> None:
    async with await connect(gateway.target) as ws:
        assert ws.response is not None
        request_id = ws.response.headers["dg-request-id"]
        assert ws.response.headers["x-ttsfleet-pod"].startswith("gateway-")
        metadata = await receive_frame(ws)
        assert metadata.type == "Metadata"
        assert metadata.text is not None and metadata.text["request_id"] == request_id
        received = await speak_and_flush(ws, SENTENCE)
        assert received.types == ["Audio", "Flushed"]
        assert received.frames[-1].text == {"type": "Flushed", "sequence_id": 0}
        second = await speak_and_flush(ws, "And again.")
        assert second.frames[-1].text == {"type": "Flushed", "sequence_id": 1}
        await ws.send(json.dumps({"type": "Close"}))
        assert await wait_closed(ws) == (1000, "")


@pytest.mark.parametrize(
    ("encoding", "sample_rate"),
    [
        pytest.param("linear16", 24000, id="linear16-24000"),
        pytest.param("mulaw", 8000, id="mulaw-8000"),
        pytest.param("alaw", 16000, id="alaw-16000"),
    ],
)
async def test_audio_through_the_gateway_is_byte_identical_to_the_emulators(
    gateway: RunningGateway, encoding: str, sample_rate: int
) -> None:
    direct_target = SpeakTarget(gateway.upstream.ws_url, gateway.upstream.base_url, DEEPGRAM_KEY)
    text = f"Byte for byte, {encoding} at {sample_rate} hertz."
    results = []
    for target in (gateway.target, direct_target):
        async with await connect(target, encoding=encoding, sample_rate=sample_rate) as ws:
            await receive_frame(ws)
            await ws.send(json.dumps({"type": "Speak", "text": text[:20]}))
            await ws.send(json.dumps({"type": "Speak", "text": text[20:]}))
            await ws.send(json.dumps({"type": "Flush"}))
            results.append((await receive_until(ws, "Flushed")).audio)
    assert len(results[0]) > 1000
    assert results[0] == results[1]


async def test_audio_goes_out_uncompressed_though_the_client_offers_deflate(gateway: RunningGateway) -> None:
    # websockets offers permessage-deflate unless told not to, as do many Deepgram clients built on it:
    # speech does not compress, and zlib on every frame cost most of the relay's CPU.
    async with await connect(gateway.target) as ws:
        assert ws.request is not None and ws.response is not None
        assert "permessage-deflate" in ws.request.headers.get("Sec-WebSocket-Extensions", "")
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        await receive_frame(ws)
        assert (await speak_and_flush(ws, SENTENCE)).types == ["Audio", "Flushed"]


async def test_clear_stops_audio_and_no_audio_follows_cleared(gateway: RunningGateway) -> None:
    async with await connect(gateway.target) as ws:
        await receive_frame(ws)
        await ws.send(json.dumps({"type": "Speak", "text": LONG_TEXT}))
        await ws.send(json.dumps({"type": "Flush"}))
        await ws.send(json.dumps({"type": "Clear"}))
        received = await receive_until(ws, "Cleared")
        assert received.frames[-1].text == {"type": "Cleared", "sequence_id": 0}
        assert "Flushed" not in received.types
        # Nothing of the cleared utterance may follow; the next utterance works on the same session.
        after = await speak_and_flush(ws, "Fresh start.")
        assert after.types == ["Audio", "Flushed"]
        assert after.frames[-1].text == {"type": "Flushed", "sequence_id": 1}


async def test_a_clear_behind_the_flush_that_began_an_utterance_clears_it_upstream_and_leaks_no_socket(
    gateway: RunningGateway,
) -> None:
    # With the key warm, the text goes upstream where its Flush is read, so a Clear right behind it
    # must be carried upstream too, and the socket must come back for the next utterance.
    async with await connect(gateway.target) as ws:
        await receive_frame(ws)
        await speak_and_flush(ws, SENTENCE)  # the key is warm: an idle socket waits
        before = gateway.upstream_stats()
        for message in ({"type": "Speak", "text": LONG_TEXT}, {"type": "Flush"}, {"type": "Clear"}):
            await ws.send(json.dumps(message))
        received = await receive_until(ws, "Cleared")
        assert received.frames[-1].text == {"type": "Cleared", "sequence_id": 0}
        assert "Flushed" not in received.types
        after = await eventually(
            lambda: (stats := gateway.upstream_stats())["clears_total"] > before["clears_total"] and stats,
            what="the Clear carried upstream",
        )
        assert after["flushes_total"] == before["flushes_total"] + 1  # the cleared text had gone up
        await eventually(
            lambda: gateway.status()["upstream"]["leased_sockets"] == 0, what="no socket left leased"
        )
        again = await speak_and_flush(ws, "Fresh start.")
        assert again.types == ["Audio", "Flushed"]
        assert again.frames[-1].text == {"type": "Flushed", "sequence_id": 2}


async def test_clear_mid_stream_after_audio_began_still_ends_with_cleared_only(
    process_logs: Path, tmp_path: Path
) -> None:
    # Paced upstream: frame i leaves (i + 1) times 20 ms late, so the utterance is surely still under way
    # when the Clear arrives. An unpaced one may have sent all its audio by then, and Flushed before
    # Cleared is then the right answer, not a fault.
    with (
        running_emulator(
            process_logs, ["--fault", "slow:frame_delay_ms=20"], name="clear-upstream"
        ) as upstream,
        running_gateway(process_logs, upstream, tmp_path, name="clear-gateway") as gateway,
    ):
        async with await connect(gateway.target) as ws:
            await receive_frame(ws)
            await ws.send(json.dumps({"type": "Speak", "text": LONG_TEXT}))
            await ws.send(json.dumps({"type": "Flush"}))
            first = await receive_frame(ws)
            assert first.type == "Audio"
            await ws.send(json.dumps({"type": "Clear"}))
            received = await receive_until(ws, "Cleared")
            assert "Flushed" not in received.types
            await ws.send(json.dumps({"type": "Close"}))
            # Nothing of the cleared utterance follows its Cleared, up to the close.
            async with asyncio.timeout(RECEIVE_DEADLINE_S):
                tail = [message async for message in ws]
            assert tail == []
            assert ws.close_code == 1000


@pytest.mark.parametrize(
    ("headers", "params", "status"),
    [
        pytest.param({}, {}, 401, id="no-credential"),
        pytest.param({"Authorization": "Token not-a-fleet-token"}, {}, 401, id="wrong-token"),
        pytest.param(
            {"Authorization": f"Token {DEEPGRAM_KEY}"}, {}, 401, id="deepgram-key-is-not-a-fleet-token"
        ),
        pytest.param(
            {"Authorization": f"Token {FLEET_TOKEN}"}, {"model": "aura-nobody-en"}, 400, id="bad-model"
        ),
        pytest.param(
            {"Authorization": f"Token {FLEET_TOKEN}"}, {"encoding": "mp3"}, 400, id="rest-only-encoding"
        ),
        pytest.param({"Authorization": f"Token {FLEET_TOKEN}"}, {"sample_rate": "11025"}, 400, id="bad-rate"),
    ],
)
async def test_refused_upgrades_answer_status_dg_error_and_json_body(
    gateway: RunningGateway, headers: dict[str, str], params: dict[str, str], status: int
) -> None:
    with pytest.raises(websockets.InvalidStatus) as refused:
        await connect(gateway.target, headers=headers, **params)
    response = refused.value.response
    assert response.status_code == status
    assert response.headers["dg-error"]
    body = ErrorBody.parse(bytes(response.body or b""))
    assert body is not None
    assert body.request_id == response.headers["dg-request-id"]
    assert body.err_msg == response.headers["dg-error"]


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Authorization": f"Bearer {OTHER_TOKEN}"}, id="bearer"),
        pytest.param({"Authorization": f"token {FLEET_TOKEN}"}, id="lowercase-scheme"),
    ],
)
async def test_every_credential_form_of_the_protocol_is_accepted(
    gateway: RunningGateway, headers: dict[str, str]
) -> None:
    async with await connect(gateway.target, headers=headers) as ws:
        assert (await receive_frame(ws)).type == "Metadata"


async def test_browser_subprotocol_token_is_accepted_and_token_selected(gateway: RunningGateway) -> None:
    async with websockets.connect(
        gateway.target.speak_url(),
        subprotocols=["token", FLEET_TOKEN],  # type: ignore[list-item]
    ) as ws:
        assert ws.subprotocol == "token"
        assert (await receive_frame(ws)).type == "Metadata"


async def test_protocol_violations_close_with_the_protocols_codes(gateway: RunningGateway) -> None:
    cases = [
        ("not json", (1008, "DATA-0000")),
        (json.dumps({"type": "Speak", "text": "x" * 2001}), (1009, "BIG-0001")),
    ]
    for frame, expected in cases:
        async with await connect(gateway.target) as ws:
            await receive_frame(ws)
            await ws.send(frame)
            assert await wait_closed(ws) == expected
    async with await connect(gateway.target) as ws:
        await receive_frame(ws)
        await ws.send(b"\x00\x01")
        assert await wait_closed(ws) == (1003, "MESSAGE-0000")


def test_rest_relay_streams_audio_and_serves_repeats_from_the_cache(gateway: RunningGateway) -> None:
    url = gateway.process.base_url + "/v1/speak?model=aura-2-thalia-en&encoding=linear16&sample_rate=16000"
    text = "REST through the gateway."
    auth = {"Authorization": f"Token {FLEET_TOKEN}"}
    first = httpx.post(url, json={"text": text}, headers=auth, timeout=10.0)
    assert first.status_code == 200, first.text
    assert first.headers["x-ttsfleet-cache"] == "miss"
    assert first.headers["content-type"] == "audio/wav"
    assert first.headers["dg-char-count"] == str(len(text))
    direct = httpx.post(
        gateway.upstream.base_url + "/v1/speak?model=aura-2-thalia-en&encoding=linear16&sample_rate=16000",
        json={"text": text},
        headers={"Authorization": f"Token {DEEPGRAM_KEY}"},
        timeout=10.0,
    )
    assert first.content == direct.content
    second = httpx.post(url, content=text, headers={**auth, "content-type": "text/plain"}, timeout=10.0)
    assert second.headers["x-ttsfleet-cache"] == "hit"
    assert second.content == first.content


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        pytest.param({}, b'{"text": "hi"}', 401, id="no-token"),
        pytest.param({"content-type": "application/xml"}, b"<text/>", 415, id="media-type"),
        pytest.param({"content-type": "application/json"}, b'{"text": ""}', 400, id="empty"),
        pytest.param(
            {"content-type": "application/json"}, json.dumps({"text": "y" * 2001}).encode(), 413, id="long"
        ),
    ],
)
def test_rest_refusals_use_the_protocols_statuses(
    gateway: RunningGateway, headers: dict[str, str], body: bytes, status: int
) -> None:
    if status != 401:
        headers = {**headers, "Authorization": f"Token {FLEET_TOKEN}"}
    answer = httpx.post(gateway.process.base_url + "/v1/speak", content=body, headers=headers, timeout=10.0)
    assert answer.status_code == status
    parsed = ErrorBody.parse(answer.content)
    assert parsed is not None and parsed.request_id == answer.headers["dg-request-id"]


async def test_many_mostly_idle_sessions_share_few_upstream_sockets(
    process_logs: Path, tmp_path: Path
) -> None:
    with (
        running_emulator(process_logs, name="multiplex-upstream") as upstream,
        running_gateway(process_logs, upstream, tmp_path, name="multiplex-gateway") as gateway,
    ):
        await _hundred_sessions_ten_speaking(gateway)


async def _hundred_sessions_ten_speaking(gateway: RunningGateway) -> None:
    sessions = [await connect(gateway.target) for _ in range(100)]
    try:
        for ws in sessions:
            assert (await receive_frame(ws)).type == "Metadata"
        for wave in range(10):
            speakers = sessions[wave * 10 : wave * 10 + 10]
            results = await asyncio.gather(
                *(speak_and_flush(ws, f"Wave {wave}, speaker {i} talks.") for i, ws in enumerate(speakers))
            )
            assert all(r.types == ["Audio", "Flushed"] for r in results)
    finally:
        await asyncio.gather(*(ws.close() for ws in sessions))
    stats = gateway.upstream_stats()
    # The documented spare policy: half the peak of 10 leased, or the leases of one handshake at the
    # lease rate when that is more (waves back to back are tens of utterances a second), at most
    # max_spare_per_key, above the 10 leased.
    spares = spare_target(
        peak_leased=10, settings=PoolSettings(), handshake_cover=PoolSettings().max_spare_per_key
    )
    assert stats["peak_open_sockets"] <= 10 + spares
    assert gateway.status()["sessions"]["total"] >= 100


def test_metrics_and_status_report_what_happened(gateway: RunningGateway) -> None:
    status = gateway.status()
    assert status["credential"] == {
        "fingerprint": fingerprint_secret(DEEPGRAM_KEY),
        "valid": True,
        "reloads": 0,
    }
    assert status["upstream"]["breaker"] == "closed"
    assert status["ready"] is True and status["draining"] is False
    metrics = httpx.get(gateway.process.base_url + "/metrics", timeout=5.0).text
    for name in (
        "ttsfleet_ttfb_seconds_bucket",
        "ttsfleet_utterance_duration_seconds_bucket",
        "ttsfleet_sessions_active",
        "ttsfleet_upstream_sockets",
        "ttsfleet_breaker_state",
        "ttsfleet_cache_hits_total",
        "ttsfleet_credential_reloads_total",
        "ttsfleet_retries_total",
        "ttsfleet_fallbacks_total",
    ):
        assert name in metrics


def test_collector_passes_are_timed_by_generation(gateway: RunningGateway) -> None:
    # A full pass stops every session's audio for its length: SREs see them beside the TTFB histogram.
    # The gateway runs one as it starts serving (before freezing what lives as long as the process).
    metrics = httpx.get(gateway.process.base_url + "/metrics", timeout=5.0).text
    full_passes = [
        sample.value
        for family in text_string_to_metric_families(metrics)
        if family.name == "ttsfleet_gc_pause_seconds"
        for sample in family.samples
        if sample.name == "ttsfleet_gc_pause_seconds_count" and sample.labels["generation"] == "2"
    ]
    assert full_passes and full_passes[0] >= 1


def test_no_log_line_holds_the_key_or_a_token(gateway: RunningGateway) -> None:
    logs = gateway.process.logs()
    assert "session opened" in logs
    for secret in (DEEPGRAM_KEY, FLEET_TOKEN, OTHER_TOKEN):
        assert secret not in logs
    assert "quick brown fox" not in logs
    assert "session crashed" not in logs and "task failed" not in logs
