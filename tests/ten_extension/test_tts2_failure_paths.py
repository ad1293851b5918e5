"""The paths a live service takes rarely: a server `Error`, a socket lost or silent before any audio, a
Flush skipped for EXCESSIVE_FLUSH, a Clear never answered — each against real servers."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.servers import ServerProcess, running_emulator
from tests.ten_extension.harness import Harness
from tests.ten_extension.scripted_server import ScriptedSpeakServer, audio_then_flushed
from tests.ten_extension.targets import EMULATOR_KEY, Target, ten_properties

METADATA = {"session_id": "session-1", "turn_id": 1}
# Short enough that a stall is noticed quickly, long enough for a loaded machine to keep up.
RESPONSE_TIMEOUT_S = 1.0
SERVER_ERROR = {"type": "Error", "err_code": "SYNTHESIS-FAILED", "err_msg": "could not synthesize"}


def errors_of(tts: Harness) -> list[tuple[int, dict[str, str]]]:
    return [(error["code"], error["vendor_info"]) for error in tts.data("error")]


def reasons(tts: Harness) -> list[tuple[str, int]]:
    return [(end["request_id"], end["reason"]) for end in tts.data("tts_audio_end")]


@pytest.fixture(scope="module")
def slow_first_byte_emulator(process_logs: Path) -> Iterator[ServerProcess]:
    """Audio starts 1.5 s after a Flush: a socket can be lost while a request waits for its audio."""
    latency = ("--handshake-delay-ms", "0", "--first-byte-ms", "1500", "--realtime-factor", "0")
    with running_emulator(process_logs, latency=latency, name="slow-first-byte") as server:
        yield server


@pytest.fixture(scope="module")
def strict_flush_emulator(
    process_logs: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """Two Flushes per socket and minute, where Deepgram allows twenty and the client budgets for that."""
    settings = tmp_path_factory.mktemp("strict-flush") / "emulator.json"
    settings.write_text(json.dumps({"max_flushes_per_window": 2}))
    with running_emulator(process_logs, ["--config", str(settings)], name="strict-flush") as server:
        yield server


async def test_a_server_error_ends_the_request_at_once_and_the_next_gets_a_new_socket() -> None:
    def answer(socket: int, flush: int) -> list[str | bytes]:
        return [json.dumps(SERVER_ERROR)] if socket == 0 else audio_then_flushed(flush)

    async with (
        ScriptedSpeakServer(answer) as server,
        Harness(ten_properties(server.ws_url, EMULATOR_KEY)) as tts,
    ):
        asked_at = time.monotonic()
        tts.text("err-1", "The server cannot say this.", metadata=METADATA)
        await tts.wait_ends(1)
        ended_after_s = time.monotonic() - asked_at
        tts.text("err-2", "A new socket says this.", metadata=METADATA)
        views = await tts.wait_ends(2)

    assert reasons(tts) == [("err-1", 3), ("err-2", 1)]
    # Long before the 10 s response timeout a silent socket would need.
    assert ended_after_s < 3.0
    assert errors_of(tts) == [
        (1000, {"vendor": "deepgram", "code": "SYNTHESIS-FAILED", "message": "could not synthesize"})
    ]
    assert views[1].frames
    assert len(server.received) == 2


async def test_close_is_sent_before_the_socket_is_closed_on_stop() -> None:
    async with (
        ScriptedSpeakServer() as server,
        Harness(ten_properties(server.ws_url, EMULATOR_KEY)) as tts,
    ):
        tts.text("bye-1", "Said before stopping.", metadata=METADATA)
        await tts.wait_ends(1)
    (messages,) = server.received
    assert [message["type"] for message in messages] == ["Speak", "Flush", "Close"]


async def test_text_is_replayed_on_a_new_socket_when_the_socket_is_lost_before_any_audio(
    slow_first_byte_emulator: ServerProcess,
) -> None:
    target = Target("slow", slow_first_byte_emulator.ws_url, EMULATOR_KEY, slow_first_byte_emulator)
    target.reset_upstream()
    target.set_upstream_faults("close:reason=NET-0000:after_ms=400:count=1")  # the warm socket
    async with Harness(target.properties()) as tts:
        tts.text("lost-1", "Replayed on the next socket.", metadata=METADATA)
        (view,) = await tts.wait_ends(1)
    assert reasons(tts) == [("lost-1", 1)] and view.frames
    assert not tts.data("error")
    stats = target.upstream_stats()
    assert stats["faults_applied"] == {"close": 1}
    assert stats["sockets_total"] == 2


async def test_a_socket_silent_before_any_audio_is_replaced_and_the_text_replayed(
    emulator_target: Target,
) -> None:
    emulator_target.set_upstream_faults("stall:after_bytes=0:count=1")
    async with Harness(emulator_target.properties(response_timeout_s=RESPONSE_TIMEOUT_S)) as tts:
        tts.text("quiet-1", "Nothing comes back at first.", metadata=METADATA)
        (view,) = await tts.wait_ends(1)
    assert reasons(tts) == [("quiet-1", 1)] and view.frames
    assert not tts.data("error")
    assert emulator_target.upstream_stats()["sockets_total"] == 2


async def test_a_socket_silent_mid_audio_ends_the_request_with_an_error_after_the_timeout(
    emulator_target: Target,
) -> None:
    emulator_target.set_upstream_faults("stall:after_bytes=3200:count=1")
    async with Harness(emulator_target.properties(response_timeout_s=RESPONSE_TIMEOUT_S)) as tts:
        asked_at = time.monotonic()
        tts.text("stall-1", "Half of this is heard, then nothing.", metadata=METADATA)
        (first,) = await tts.wait_ends(1)
        ended_after_s = time.monotonic() - asked_at
        tts.text("stall-2", "The next request speaks on a new socket.", metadata=METADATA)
        views = await tts.wait_ends(2)
    assert reasons(tts) == [("stall-1", 3), ("stall-2", 1)]
    assert first.frames and views[1].frames
    assert RESPONSE_TIMEOUT_S <= ended_after_s < RESPONSE_TIMEOUT_S + 3.0
    assert [code for code, _ in errors_of(tts)] == [1000]


async def test_a_clear_never_answered_costs_one_timeout_then_a_new_socket(emulator_target: Target) -> None:
    emulator_target.set_upstream_faults("stall:after_bytes=3200:count=1")  # one frame, then silence
    async with Harness(emulator_target.properties(response_timeout_s=RESPONSE_TIMEOUT_S)) as tts:
        tts.text("clear-1", "Interrupted after its first frame, and never Cleared.", metadata=METADATA)
        await tts.wait_for(lambda: "frame" in tts.names(), "the first frame")
        await tts.flush("flush-1")
        asked_at = time.monotonic()
        tts.text("clear-2", "Spoken on a fresh socket.", metadata=METADATA)
        await tts.wait_ends(2)
        answered_after_s = time.monotonic() - asked_at
    assert reasons(tts) == [("clear-1", 2), ("clear-2", 1)]
    assert answered_after_s < RESPONSE_TIMEOUT_S + 3.0
    assert not tts.data("error")
    stats = emulator_target.upstream_stats()
    assert stats["clears_total"] == 1 and stats["sockets_total"] == 2


async def test_a_flush_skipped_for_excessive_flush_fails_its_request_and_the_next_uses_a_new_socket(
    strict_flush_emulator: ServerProcess,
) -> None:
    target = Target("strict", strict_flush_emulator.ws_url, EMULATOR_KEY, strict_flush_emulator)
    target.reset_upstream()
    async with Harness(target.properties()) as tts:
        for index in range(4):
            tts.text(f"flush-{index}", f"Short request number {index}.", metadata=METADATA)
        await tts.wait_ends(4)
    assert reasons(tts) == [("flush-0", 1), ("flush-1", 1), ("flush-2", 3), ("flush-3", 1)]
    ((code, vendor_info),) = errors_of(tts)
    assert code == 1000 and vendor_info["code"] == "EXCESSIVE_FLUSH"
    assert target.upstream_stats()["sockets_total"] == 2
