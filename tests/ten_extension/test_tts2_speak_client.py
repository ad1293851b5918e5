"""The speak client on its own, against the emulator: events, refusals, closed sockets, retries."""

from __future__ import annotations

import asyncio
import random

import pytest

from ten_extension.deepgram_tts2_python import backoff, connecting, errors, speak_client
from tests.ten_extension.targets import Target

DEADLINE_S = 10.0


def url(target: Target, **query: str) -> str:
    extra = "".join(f"&{key}={value}" for key, value in query.items())
    return f"{target.base_url}/v1/speak?model=aura-2-thalia-en&encoding=linear16&sample_rate=16000{extra}"


async def next_event(conn: speak_client.SpeakConnection) -> speak_client.Event:
    async with asyncio.timeout(DEADLINE_S):
        return await conn.events.get()


def test_warnings_are_read_in_both_spellings_and_unknown_types_are_skipped() -> None:
    live = speak_client.parse_text_frame('{"type":"Warning","warn_code":"EXCESSIVE_FLUSH","warn_msg":"slow"}')
    spec = speak_client.parse_text_frame('{"type":"Warning","code":"EXCESSIVE_FLUSH","description":"slow"}')
    assert live == spec == speak_client.Warning("EXCESSIVE_FLUSH", "slow")
    assert speak_client.parse_text_frame('{"type":"Metadata","request_id":"r"}') is None
    assert speak_client.parse_text_frame('{"type":"SomethingNew"}') is None
    assert speak_client.parse_text_frame("not json") is None


def test_server_errors_are_read_in_both_spellings() -> None:
    body = speak_client.parse_text_frame('{"type":"Error","err_code":"E1","err_msg":"broken"}')
    spec = speak_client.parse_text_frame('{"type":"Error","code":"E1","description":"broken"}')
    assert body == spec == speak_client.ServerError("E1", "broken")


async def test_speak_and_flush_give_audio_then_flushed(emulator_target: Target) -> None:
    conn = await speak_client.open_connection(url(emulator_target), emulator_target.token, DEADLINE_S)
    try:
        await conn.speak("Hello there.")
        await conn.flush()
        events = [await next_event(conn)]
        while not isinstance(events[-1], speak_client.Flushed):
            events.append(await next_event(conn))
    finally:
        await conn.close()
    assert isinstance(events[0], speak_client.Audio)
    assert events[-1] == speak_client.Flushed(0)


async def test_the_client_never_offers_compression(emulator_target: Target) -> None:
    # The emulator, like any uvicorn server, accepts permessage-deflate when offered; audio then went
    # through zlib on the server and was inflated here, frame by frame, for speech that does not compress.
    conn = await speak_client.open_connection(url(emulator_target), emulator_target.token, DEADLINE_S)
    try:
        ws = conn._ws  # the handshake's headers are not part of the connection's interface
        assert ws.request is not None and ws.response is not None
        assert "Sec-WebSocket-Extensions" not in ws.request.headers
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
    finally:
        await conn.close()


async def test_a_server_closed_socket_is_reported_and_sends_fail_at_once(emulator_target: Target) -> None:
    target = url(emulator_target, emulator_fault="close:reason=NET-0001:after_ms=50")
    conn = await speak_client.open_connection(target, emulator_target.token, DEADLINE_S)
    assert await next_event(conn) == speak_client.Closed(1011, "NET-0001")
    with pytest.raises(errors.ConnectionLost) as lost:
        await conn.speak("Too late.")
    assert (lost.value.code, lost.value.reason, lost.value.retryable) == (1011, "NET-0001", True)
    await conn.close()


@pytest.mark.parametrize(
    ("status", "fatal", "retryable"),
    [
        pytest.param(401, True, False, id="401"),
        pytest.param(429, False, True, id="429"),
        pytest.param(503, False, True, id="503"),
    ],
)
async def test_refused_upgrades_carry_their_status(
    emulator_target: Target, status: int, fatal: bool, retryable: bool
) -> None:
    with pytest.raises(errors.HandshakeRefused) as refused:
        await speak_client.open_connection(
            url(emulator_target, emulator_fault=f"refuse:status={status}"), emulator_target.token, DEADLINE_S
        )
    assert (refused.value.status, refused.value.fatal, refused.value.retryable) == (status, fatal, retryable)
    assert refused.value.vendor_code == str(status)


async def test_the_connector_backs_off_between_attempts_and_gives_up_on_fatal_refusals(
    emulator_target: Target,
) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    def connector(attempts: int) -> connecting.Connector:
        return connecting.Connector(
            url(emulator_target),
            emulator_target.token,
            DEADLINE_S,
            attempts,
            backoff.Backoff(0.1, 3.0, random.Random(1)),
            sleep=sleep,
        )

    emulator_target.set_upstream_faults("refuse:status=503:count=2")
    conn = await connector(5).open()
    await conn.close()
    assert len(slept) == 2 and all(0 <= delay <= 0.4 for delay in slept)

    slept.clear()
    emulator_target.set_upstream_faults("refuse:status=401")
    with pytest.raises(errors.HandshakeRefused):
        await connector(5).open()
    assert slept == []
