"""Credentials, upstream faults and reconnection, through the real extension against real processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.servers import ServerProcess, running_emulator
from tests.ten_extension.harness import Harness
from tests.ten_extension.targets import Target, ten_properties

METADATA = {"session_id": "session-1", "turn_id": 1}
LONG_TEXT = " ".join(f"Sentence number {n} keeps the audio flowing for a while." for n in range(12))


@pytest.fixture(scope="module")
def keyed_emulator(process_logs: Path) -> Iterator[ServerProcess]:
    with running_emulator(process_logs, ["--api-key", "the-right-key"], name="keyed-upstream") as server:
        yield server


def errors_of(tts: Harness) -> list[tuple[int, str]]:
    return [(error["code"], error["vendor_info"].get("code", "")) for error in tts.data("error")]


async def test_a_wrong_key_is_a_fatal_error_with_the_vendor_status(keyed_emulator: ServerProcess) -> None:
    properties = ten_properties(keyed_emulator.ws_url, "not-the-key")
    async with Harness(properties) as tts:
        await tts.wait_for(lambda: bool(tts.data("error")), "the credential error")
        tts.text("cred-1", "Nobody will hear this.", metadata=METADATA)
        (view,) = await tts.wait_ends(1)
    assert errors_of(tts)[0] == (-1000, "401")
    assert view.end is not None and view.end["reason"] == 3 and not view.frames
    assert all(code == -1000 for code, _ in errors_of(tts))


async def test_a_wrong_fleet_token_is_refused_by_the_gateway_as_fatal(gateway_target: Target) -> None:
    async with Harness(gateway_target.properties(api_key="not-a-fleet-token")) as tts:
        tts.text("cred-2", "Nobody will hear this either.", metadata=METADATA)
        (view,) = await tts.wait_ends(1)
    assert errors_of(tts)[0] == (-1000, "401")
    assert view.end is not None and view.end["reason"] == 3


async def test_a_missing_token_fails_at_init_without_touching_the_backend(target: Target) -> None:
    properties = target.properties(api_key="")
    before = target.upstream_stats()["sockets_total"]
    async with Harness(properties) as tts:
        assert [(error["id"], error["code"]) for error in tts.data("error")] == [("", -1000)]
        tts.text("cred-3", "Still nobody.", metadata=METADATA)
        (view,) = await tts.wait_ends(1)
    assert view.end is not None and view.end["reason"] == 3
    assert target.upstream_stats()["sockets_total"] == before
    assert all(code == -1000 for code, _ in errors_of(tts))


async def test_an_upstream_close_mid_request_ends_it_with_an_error_and_the_next_request_works(
    target: Target,
) -> None:
    target.set_upstream_faults("close:reason=NET-0000:after_bytes=6400:count=1")
    async with Harness(target.properties()) as tts:
        tts.text("mid-1", LONG_TEXT, metadata=METADATA)
        await tts.wait_ends(1)
        tts.text("mid-2", "The next request gets a new socket.", metadata=METADATA)
        views = await tts.wait_ends(2)
    first, second = views
    assert first.end is not None and first.end["reason"] == 3 and first.frames
    assert [code for code, _ in errors_of(tts)] == [1000]
    if target.name == "emulator":
        (error,) = tts.data("error")
        assert error["vendor_info"] == {"vendor": "deepgram", "code": "1011", "message": "NET-0000"}
    assert second.end is not None and second.end["reason"] == 1 and second.frames


async def test_a_socket_closed_with_1011_between_requests_is_replaced_transparently(
    emulator_target: Target,
) -> None:
    # Through a gateway the equivalent is its drain (1012): test_tts2_drain.py.
    target = emulator_target
    target.set_upstream_faults("close:reason=NET-0001:after_ms=300:count=1")
    async with Harness(target.properties()) as tts:
        tts.text("idle-1", "Before the idle close.", metadata=METADATA)
        await tts.wait_ends(1)
        speaker = tts.ext.speaker
        assert speaker is not None
        await tts.wait_for(lambda: not speaker.is_connected, "the server to close the idle socket")
        tts.text("idle-2", "After the idle close.", metadata=METADATA)
        views = await tts.wait_ends(2)
    assert [view.end["reason"] for view in views if view.end] == [1, 1]
    assert not tts.data("error")
    assert speaker.sockets_opened == 2


@pytest.mark.parametrize("status", [pytest.param(503, id="503"), pytest.param(429, id="429")])
async def test_transient_refusals_are_retried_with_backoff(emulator_target: Target, status: int) -> None:
    # A gateway retries its upstream itself; the refusal a gateway client sees is the drain's 503.
    target = emulator_target
    # Two refusals: the warm-up connect and the first retry of the request's connect.
    target.set_upstream_faults(f"refuse:status={status}:count=2")
    async with Harness(target.properties()) as tts:
        tts.text("retry-1", "Spoken after two refusals.", metadata=METADATA)
        (view,) = await tts.wait_ends(1)
    assert view.end is not None and view.end["reason"] == 1 and view.frames
    assert not tts.data("error")
    assert target.upstream_stats()["refused_total"] == {str(status): 2}


async def test_refusals_that_persist_end_the_request_with_a_non_fatal_error(emulator_target: Target) -> None:
    target = emulator_target
    target.set_upstream_faults("refuse:status=429")
    async with Harness(target.properties(connect_attempts=2)) as tts:
        tts.text("busy-1", "Nobody can take this.", metadata=METADATA)
        (view,) = await tts.wait_ends(1)
    assert view.end is not None and view.end["reason"] == 3
    assert errors_of(tts) == [(1000, "429")]
