"""Who the gateway trusts, and for how long, against a real gateway in front of a real emulator: the
Deepgram key after a refusal, fleet tokens removed from the file while their sessions speak, a tokens
file written with a byte-order mark, and the fallback count when the REST breaker refuses.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families

from tests.dataplane.gateways import FLEET_TOKEN, OTHER_TOKEN, RunningGateway, running_gateway
from tests.support.servers import ServerProcess
from tests.support.speaking import connect, receive_frame, receive_until, speak_and_flush, wait_closed
from tests.support.waiting import eventually

SENTENCE = "A key refused once is not a key refused for good."


@pytest.fixture
def own_gateway(
    process_logs: Path, reset_upstream: ServerProcess, tmp_path: Path
) -> Iterator[RunningGateway]:
    """A gateway for one test: these tests change its key judgement, its tokens or its breakers."""
    env = {"TTSFLEET_CACHE__ENABLED": "false"}
    with running_gateway(process_logs, reset_upstream, tmp_path, env=env, name="trust-gateway") as running:
        yield running


def _faults(gateway: RunningGateway, *specs: str) -> None:
    httpx.post(
        gateway.upstream.base_url + "/_emulator/faults", json={"faults": list(specs)}
    ).raise_for_status()


def _rest_speak(gateway: RunningGateway, token: str = FLEET_TOKEN) -> httpx.Response:
    return httpx.post(
        gateway.process.base_url + "/v1/speak?encoding=linear16&container=none",
        json={"text": SENTENCE},
        headers={"Authorization": f"Token {token}"},
        timeout=10.0,
    )


def _metric(gateway: RunningGateway, name: str) -> float:
    text = httpx.get(gateway.process.base_url + "/metrics", timeout=5.0).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return float(sample.value)
    return 0.0


async def test_one_refused_rest_request_leaves_the_pod_ready(own_gateway: RunningGateway) -> None:
    _faults(own_gateway, "refuse:status=401:on=rest:count=1")
    assert _rest_speak(own_gateway).status_code == 503  # the fleet's key was refused: not the client's fault
    assert own_gateway.is_ready()
    async with await connect(own_gateway.target) as ws:
        await receive_frame(ws)
        assert (await speak_and_flush(ws, SENTENCE)).types == ["Audio", "Flushed"]


async def test_a_key_judged_bad_is_rechecked_within_seconds_without_a_recycle(
    own_gateway: RunningGateway,
) -> None:
    _faults(own_gateway, "refuse:status=401:on=rest:count=3")
    for _ in range(3):
        assert _rest_speak(own_gateway).status_code == 503
    # Three refusals in a row judge the key; a fresh handshake re-checks it on the schedule and Deepgram
    # (the emulator) accepts it again: the pod is back without any pooled socket being recycled.
    await eventually(own_gateway.is_ready, 5.0, "the key to be accepted again")
    assert own_gateway.status()["credential"]["valid"] is True
    assert _rest_speak(own_gateway).status_code == 200


async def test_a_refused_handshake_judges_the_key_and_the_recheck_is_bounded(
    own_gateway: RunningGateway,
) -> None:
    _faults(own_gateway, "refuse:status=401:on=ws")
    own_gateway.key_file.write_text("a-key-deepgram-refuses\n")  # new key: the pool opens fresh handshakes
    await eventually(lambda: not own_gateway.is_ready(), 5.0, "the refused key to be judged")
    refused_at_judgement = own_gateway.upstream_stats()["refused_total"].get("401", 0)
    await eventually(
        lambda: own_gateway.upstream_stats()["refused_total"].get("401", 0) >= refused_at_judgement + 2,
        8.0,
        "re-checks of the refused key",
    )
    _faults(own_gateway)  # Deepgram takes the key again: the next re-check finds out
    await eventually(own_gateway.is_ready, 15.0, "the key to be accepted again")


async def test_removing_a_token_closes_its_sessions_between_utterances(own_gateway: RunningGateway) -> None:
    _faults(own_gateway, "slow:frame_delay_ms=40:on=ws")  # the utterance in flight lasts a while
    revoked_headers = {"Authorization": f"Token {OTHER_TOKEN}"}
    async with (
        await connect(own_gateway.target, headers=revoked_headers) as revoked,
        await connect(own_gateway.target) as kept,
    ):
        await receive_frame(revoked)
        await receive_frame(kept)
        await revoked.send(json.dumps({"type": "Speak", "text": SENTENCE}))
        await revoked.send(json.dumps({"type": "Flush"}))
        first = await receive_frame(revoked)
        assert first.type == "Audio"
        own_gateway.tokens_file.write_text(f"{FLEET_TOKEN}\n")
        # The utterance in flight finishes whole, then the session closes with a clear reason.
        assert (await receive_until(revoked, "Flushed")).types[-1] == "Flushed"
        assert await wait_closed(revoked) == (1008, "TOKEN-REVOKED")
        assert (await speak_and_flush(kept, SENTENCE)).types == ["Audio", "Flushed"]
    with pytest.raises(websockets.InvalidStatus):
        await connect(own_gateway.target, headers=revoked_headers)


async def test_an_idle_session_of_a_removed_token_closes_at_once(own_gateway: RunningGateway) -> None:
    async with await connect(own_gateway.target, headers={"Authorization": f"Token {OTHER_TOKEN}"}) as ws:
        await receive_frame(ws)
        own_gateway.tokens_file.write_text(f"{FLEET_TOKEN}\n")
        assert await wait_closed(ws, 5.0) == (1008, "TOKEN-REVOKED")


async def test_a_byte_order_mark_does_not_disable_the_first_token(own_gateway: RunningGateway) -> None:
    own_gateway.tokens_file.write_bytes(f"\ufeff{OTHER_TOKEN}\n".encode())
    await eventually(lambda: _rest_speak(own_gateway, FLEET_TOKEN).status_code == 401, 5.0, "the reload")
    assert _rest_speak(own_gateway, OTHER_TOKEN).status_code == 200


async def test_fallbacks_count_only_the_rest_requests_upstream_saw(
    process_logs: Path, reset_upstream: ServerProcess, tmp_path: Path
) -> None:
    env = {
        "TTSFLEET_CACHE__ENABLED": "false",
        "TTSFLEET_BREAKER__FAILURE_THRESHOLD": "2",
        "TTSFLEET_BREAKER__OPEN_S": "60",
    }
    with running_gateway(process_logs, reset_upstream, tmp_path, env=env, name="fallback-gateway") as gateway:
        before = gateway.upstream_stats()["rest_requests_total"]
        _faults(gateway, "refuse:status=503:on=any")
        async with await connect(gateway.target, speed="1.1") as ws:
            await receive_frame(ws)
            for _ in range(4):  # every one fails; the later ones meet open breakers
                await ws.send(json.dumps({"type": "Speak", "text": SENTENCE}))
                await ws.send(json.dumps({"type": "Flush"}))
                if (await wait_closed(ws))[0] is not None:
                    break
        async with await connect(gateway.target, speed="1.2") as again:
            await receive_frame(again)
            await again.send(json.dumps({"type": "Speak", "text": SENTENCE}))
            await again.send(json.dumps({"type": "Flush"}))
            await wait_closed(again)
        seen = gateway.upstream_stats()["rest_requests_total"] - before
        assert _metric(gateway, "ttsfleet_fallbacks_total") == seen


async def test_a_key_file_that_holds_no_key_makes_the_pod_unready_with_the_reason(
    own_gateway: RunningGateway,
) -> None:
    own_gateway.key_file.write_text("k" * 1_000_000)

    def refused_with_reason() -> bool:
        answer = httpx.get(own_gateway.process.base_url + "/readyz", timeout=5.0)
        return answer.status_code == 503 and "larger than 8192 bytes" in str(answer.json()["reason"])

    await eventually(refused_with_reason, 5.0, "the pod to say why it has no key")
    # Sessions and requests are refused as the probe says, in each face's own terms.
    with pytest.raises(websockets.InvalidStatus) as refused:
        await connect(own_gateway.target)
    assert refused.value.response.status_code == 503
    assert b"no usable upstream credential" in refused.value.response.body
    answer = _rest_speak(own_gateway)
    assert answer.status_code == 503
    assert "no usable upstream credential" in answer.json()["err_msg"]
    own_gateway.key_file.write_text("a-proper-key\n")
    await eventually(own_gateway.is_ready, 5.0, "a usable key")
