"""What a careless or hostile client sends, against a real gateway in front of a real emulator: JSON
nested thousands deep, unknown message types full of text, huge model names, credentials in query
strings, the browser subprotocol spelled its own way, and idle sessions that would fill the pool.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import websockets

from tests.dataplane.gateways import FLEET_TOKEN, RunningGateway, running_gateway
from tests.support.servers import ServerProcess
from tests.support.speaking import connect, receive_frame, speak_and_flush, wait_closed
from tests.support.waiting import eventually

SECRET_IN_QUERY = "query-secret-that-must-not-be-logged"
TEXT_AS_TYPE = "Confidential words sent as a message type"


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("depth", [2_000, 30_000])
async def test_deeply_nested_json_on_the_socket_is_a_client_error(
    gateway: RunningGateway, depth: int
) -> None:
    async with await connect(gateway.target) as ws:
        await receive_frame(ws)  # Metadata
        await ws.send(_nested(depth))
        assert await wait_closed(ws) == (1008, "DATA-0000")


@pytest.mark.parametrize("depth", [2_000, 30_000])
def test_deeply_nested_json_on_rest_is_a_400_with_the_error_body(gateway: RunningGateway, depth: int) -> None:
    answer = httpx.post(
        gateway.process.base_url + "/v1/speak",
        content=_nested(depth),
        headers={"Authorization": f"Token {FLEET_TOKEN}", "content-type": "application/json"},
        timeout=10.0,
    )
    assert answer.status_code == 400
    assert answer.json()["err_code"] == "Bad Request"


async def test_a_session_ending_mid_utterance_releases_its_active_utterance(gateway: RunningGateway) -> None:
    async with await connect(gateway.target) as ws:
        await receive_frame(ws)
        await ws.send(json.dumps({"type": "Speak", "text": "An utterance that never gets its Flush."}))
        await eventually(lambda: gateway.status()["utterances"]["active"] >= 1, 5.0, "the utterance to begin")
        await ws.send(_nested(5_000))
        assert (await wait_closed(ws))[0] == 1008
    await eventually(lambda: gateway.status()["utterances"]["active"] == 0, 5.0, "the count to be released")


async def test_unknown_message_types_and_query_credentials_stay_out_of_the_logs(
    gateway: RunningGateway,
) -> None:
    async with await connect(gateway.target, access_token=SECRET_IN_QUERY) as ws:
        await receive_frame(ws)
        await ws.send(json.dumps({"type": TEXT_AS_TYPE * 100}))
        assert await wait_closed(ws) == (1008, "DATA-0000")
    async with await connect(gateway.target, model="aura-asteria-en", access_token=SECRET_IN_QUERY) as ws:
        await receive_frame(ws)
    logs = gateway.process.logs()
    assert "unknown message type" in logs  # the refusal is logged, without what the client typed
    assert TEXT_AS_TYPE not in logs
    assert SECRET_IN_QUERY not in logs
    # The upgrade is logged by our own line (uvicorn's per-socket line, whose query string the log
    # processors redact, tests/test_logs.py, is not written for client sockets any more).
    assert "session opened" in logs


def test_a_huge_model_name_is_not_echoed_into_the_error_header(gateway: RunningGateway) -> None:
    model = "m" * 10_000
    answer = httpx.post(
        gateway.process.base_url + f"/v1/speak?model={model}",
        json={"text": "hello"},
        headers={"Authorization": f"Token {FLEET_TOKEN}"},
        timeout=10.0,
    )
    assert answer.status_code == 400
    assert len(answer.headers["dg-error"]) < 200
    assert len(answer.json()["err_msg"]) < 200


@pytest.mark.parametrize("scheme", ["token", "Token"])
async def test_the_subprotocol_answered_is_the_one_the_client_offered(
    gateway: RunningGateway, scheme: str
) -> None:
    async with websockets.connect(
        gateway.process.ws_url + "/v1/speak",
        subprotocols=[scheme, FLEET_TOKEN],
        open_timeout=10,  # type: ignore[list-item]
    ) as ws:
        assert ws.subprotocol == scheme
        await receive_frame(ws)
        assert (await speak_and_flush(ws, "Browsers send their token this way.")).types == [
            "Audio",
            "Flushed",
        ]


async def test_idle_sessions_open_no_upstream_sockets(
    process_logs: Path, module_emulator: ServerProcess, tmp_path: Path
) -> None:
    """Eighty idle sessions on distinct speeds used to open a warm socket each; now only speaking does."""
    with running_gateway(process_logs, module_emulator, tmp_path, name="idle-gateway") as idle:
        before = idle.status()["upstream"]["open_sockets"]
        sessions = [await connect(idle.target, speed=f"{0.8 + i / 100:.2f}") for i in range(12)]
        try:
            for ws in sessions:
                await receive_frame(ws)
            async with await connect(idle.target, speed="1.25") as speaker:
                await receive_frame(speaker)
                assert (await speak_and_flush(speaker, "Only speaking warms a voice.")).types == [
                    "Audio",
                    "Flushed",
                ]
            # The spoken key gets its spare; none of the twelve idle keys get one.
            await eventually(
                lambda: idle.status()["upstream"]["open_sockets"] >= before + 1,
                5.0,
                "the spoken key's socket",
            )
            assert idle.status()["upstream"]["open_sockets"] <= before + 2
        finally:
            for ws in sessions:
                await ws.close()
