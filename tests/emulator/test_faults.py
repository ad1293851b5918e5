"""Every injectable fault is observable by a client exactly as docs/emulator.md says."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import pytest
import websockets

from tests.support.servers import ServerProcess, running_emulator
from tests.support.speaking import (
    SpeakTarget,
    connect,
    receive_frame,
    receive_until,
    speak_and_flush,
    wait_closed,
)
from ttsfleet.protocol import ErrorBody

SENTENCE = "Turn left at the next light."


@pytest.fixture
def target(emulator: ServerProcess) -> SpeakTarget:
    return SpeakTarget(ws_url=emulator.ws_url, http_url=emulator.base_url, token="fault-key")


@pytest.mark.parametrize("status", [401, 403, 429, 503])
async def test_refuse_fault_answers_the_handshake_with_that_status(target: SpeakTarget, status: int) -> None:
    with pytest.raises(websockets.InvalidStatus) as refused:
        await connect(target, emulator_fault=f"refuse:status={status}")
    response = refused.value.response
    assert response.status_code == status
    body = ErrorBody.parse(response.body)
    assert body is not None and body.request_id == response.headers["dg-request-id"]
    assert response.headers["dg-error"]


@pytest.mark.parametrize("status", [401, 403, 429, 503])
def test_refuse_fault_answers_rest_with_that_status(target: SpeakTarget, status: int) -> None:
    response = httpx.post(
        f"{target.http_url}/v1/speak",
        params={"encoding": "linear16", "emulator_fault": f"refuse:status={status}"},
        headers=target.auth_headers,
        json={"text": SENTENCE},
    )
    assert response.status_code == status


@pytest.mark.parametrize("reason", ["NET-0000", "NET-0001", "NET-0002", "NET-0003"])
async def test_close_fault_after_bytes_closes_with_1011_and_the_reason(
    target: SpeakTarget, reason: str
) -> None:
    async with await connect(target, emulator_fault=f"close:reason={reason}:after_bytes=9600") as ws:
        await receive_frame(ws)
        await ws.send(json.dumps({"type": "Speak", "text": SENTENCE}))
        await ws.send(json.dumps({"type": "Flush"}))
        audio = 0
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                frame = await receive_frame(ws)
                assert frame.type == "Audio"  # no Flushed: the socket dies mid-utterance
                audio += len(frame.audio or b"")
        assert 9600 <= audio < 9600 + 4800 + 1  # stops at the first frame boundary past the bound
        assert (ws.protocol.close_rcvd.code, ws.protocol.close_rcvd.reason) == (1011, reason)  # type: ignore[union-attr]


async def test_close_fault_after_ms_closes_an_idle_socket_on_time(target: SpeakTarget) -> None:
    started = time.monotonic()
    async with await connect(target, emulator_fault="close:reason=NET-0000:after_ms=300") as ws:
        await receive_frame(ws)
        assert await wait_closed(ws) == (1011, "NET-0000")
    assert time.monotonic() - started >= 0.3


async def test_stall_fault_sends_nothing_after_the_bound_and_keeps_the_socket_open(
    target: SpeakTarget,
) -> None:
    async with await connect(target, emulator_fault="stall:after_bytes=0") as ws:
        await receive_frame(ws)
        await ws.send(json.dumps({"type": "Speak", "text": SENTENCE}))
        await ws.send(json.dumps({"type": "Flush"}))
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                await ws.recv()
        pong = await ws.ping()
        async with asyncio.timeout(2):  # still alive at the WebSocket level
            await pong


async def test_slow_fault_spaces_frames_out(target: SpeakTarget) -> None:
    async with await connect(target, emulator_fault="slow:frame_delay_ms=40") as ws:
        await receive_frame(ws)
        await ws.send(json.dumps({"type": "Speak", "text": SENTENCE}))
        await ws.send(json.dumps({"type": "Flush"}))
        arrivals = []
        while True:
            frame = await receive_frame(ws)
            if frame.type == "Flushed":
                break
            arrivals.append(time.monotonic())
    # The span, not the smallest gap: one frame read late by a busy test process shortens the gap after it,
    # but no frame can arrive before the emulator has waited its delay for every frame before it.
    assert len(arrivals) >= 4
    span = arrivals[-1] - arrivals[0]
    assert span >= 0.75 * 0.040 * (len(arrivals) - 1)


async def test_reset_fault_drops_the_connection_without_a_close_frame(target: SpeakTarget) -> None:
    async with await connect(target, emulator_fault="reset:after_bytes=4800") as ws:
        await receive_frame(ws)
        await ws.send(json.dumps({"type": "Speak", "text": SENTENCE}))
        await ws.send(json.dumps({"type": "Flush"}))
        with pytest.raises(websockets.ConnectionClosedError):
            while True:
                await receive_frame(ws)
        assert ws.protocol.close_rcvd is None


def test_reset_fault_cuts_a_rest_response(target: SpeakTarget) -> None:
    with pytest.raises(httpx.TransportError):
        httpx.post(
            f"{target.http_url}/v1/speak",
            params={"encoding": "linear16", "emulator_fault": "reset:after_bytes=4800"},
            headers=target.auth_headers,
            json={"text": SENTENCE},
        ).raise_for_status()


def test_close_fault_truncates_a_rest_response(target: SpeakTarget) -> None:
    with pytest.raises(httpx.TransportError):
        httpx.post(
            f"{target.http_url}/v1/speak",
            params={"encoding": "linear16", "emulator_fault": "close:reason=NET-0000:after_bytes=4800"},
            headers=target.auth_headers,
            json={"text": SENTENCE},
        )


async def test_concurrency_fault_refuses_sockets_over_the_limit_per_key(target: SpeakTarget) -> None:
    fault = "concurrency:limit=2"
    async with await connect(target, emulator_fault=fault), await connect(target, emulator_fault=fault):
        with pytest.raises(websockets.InvalidStatus) as refused:
            await connect(target, emulator_fault=fault)
        assert refused.value.response.status_code == 429
        other_key = SpeakTarget(target.ws_url, target.http_url, "another-key")
        async with await connect(other_key, emulator_fault=fault) as ws:  # the limit is per key
            assert (await receive_frame(ws)).type == "Metadata"


async def test_max_age_fault_closes_with_net_0003(target: SpeakTarget) -> None:
    async with await connect(target, emulator_fault="max_age:seconds=0.3") as ws:
        await receive_frame(ws)
        assert await wait_closed(ws) == (1011, "NET-0003")


async def test_global_faults_with_a_count_hit_only_the_next_connections(target: SpeakTarget) -> None:
    response = httpx.post(
        f"{target.http_url}/_emulator/faults", json={"faults": ["refuse:status=503:count=2"]}
    )
    assert response.json() == {"faults": ["refuse:status=503:count=2"]}
    for _ in range(2):
        with pytest.raises(websockets.InvalidStatus) as refused:
            await connect(target)
        assert refused.value.response.status_code == 503
    async with await connect(target) as ws:
        assert (await receive_frame(ws)).type == "Metadata"
    stats = httpx.get(f"{target.http_url}/_emulator/stats").json()
    assert stats["refused_total"] == {"503": 2}


@pytest.mark.parametrize(
    "spec",
    [
        "explode",
        "refuse:status=500",
        "close:reason=DATA-0000",
        "slow",
        "close:after_bytes=-1",
        "stall:bogus=1",
    ],
)
def test_bad_fault_specs_are_refused_clearly(target: SpeakTarget, spec: str) -> None:
    response = httpx.post(f"{target.http_url}/_emulator/faults", json={"faults": [spec]})
    assert response.status_code == 400
    assert spec.split(":")[0] in response.json()["error"]
    per_connection = httpx.post(
        f"{target.http_url}/v1/speak",
        params={"encoding": "linear16", "emulator_fault": spec},
        headers=target.auth_headers,
        json={"text": SENTENCE},
    )
    assert per_connection.status_code == 400


async def test_idle_sockets_close_with_net_0001_and_pings_keep_them_open(process_logs: Path) -> None:
    with running_emulator(process_logs, ["--idle-timeout-s", "0.6"], name="idle-emulator") as server:
        target = SpeakTarget(server.ws_url, server.base_url, "idle-key")
        async with await connect(target) as quiet:
            await receive_frame(quiet)
            assert await wait_closed(quiet) == (1011, "NET-0001")
        async with await websockets.connect(
            target.speak_url(), additional_headers=target.auth_headers, ping_interval=0.1
        ) as pinged:
            await receive_frame(pinged)
            with pytest.raises(TimeoutError):  # pings count as activity: still open after 2 idle periods
                async with asyncio.timeout(1.3):
                    await pinged.recv()
            received = await speak_and_flush(pinged, "Still here.")
            assert received.types == ["Audio", "Flushed"]


async def test_realistic_latency_model_delays_handshake_and_first_byte(process_logs: Path) -> None:
    latency = ("--handshake-delay-ms", "150", "--first-byte-ms", "90", "--realtime-factor", "4")
    with running_emulator(process_logs, latency=latency, name="paced-emulator") as server:
        target = SpeakTarget(server.ws_url, server.base_url, "paced-key")
        started = time.monotonic()
        async with await connect(target) as ws:
            connected = time.monotonic()
            await receive_frame(ws)
            await ws.send(json.dumps({"type": "Speak", "text": SENTENCE}))
            flushed_at = time.monotonic()
            await ws.send(json.dumps({"type": "Flush"}))
            first = await receive_frame(ws)
            first_byte = time.monotonic() - flushed_at
            rest = await receive_until(ws, "Flushed")
            done = time.monotonic() - flushed_at
        assert first.type == "Audio"
        assert connected - started >= 0.15
        assert first_byte >= 0.09
        audio_s = (len(first.audio or b"") + len(rest.audio)) / 48000
        assert done >= 0.09 + (audio_s - 0.1) / 4  # paced at four times real time, not dumped at once
