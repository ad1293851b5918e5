"""Lifecycle under load: drain (SIGTERM) and key rotation, on real gateway and emulator processes."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import pytest
import websockets

from tests.dataplane.gateways import DEEPGRAM_KEY, running_gateway
from tests.support.servers import running_emulator
from tests.support.speaking import Received, connect, receive_frame, speak_and_flush, wait_closed
from tests.support.waiting import eventually
from ttsfleet.fingerprints import fingerprint_secret

# Paced like the real service (first audio after 50 ms, 8x real time), so utterances are in flight on SIGTERM.
PACED = ("--handshake-delay-ms", "0", "--first-byte-ms", "50", "--realtime-factor", "8")
SENTENCE = "Draining must never cut a sentence in the middle of a word."


async def _speak_until_closed(
    ws: websockets.ClientConnection,
) -> tuple[list[Received], tuple[int | None, str | None]]:
    """Speak one utterance after another; return every utterance's frames and the close frame."""
    utterances: list[Received] = []
    try:
        while True:
            current = Received()
            utterances.append(current)
            await ws.send(json.dumps({"type": "Speak", "text": SENTENCE}))
            await ws.send(json.dumps({"type": "Flush"}))
            while not current.types or current.types[-1] != "Flushed":
                current.frames.append(await receive_frame(ws, deadline_s=20.0))
    except websockets.ConnectionClosed:
        pass
    return utterances, await wait_closed(ws)


async def test_sigterm_drain_finishes_utterances_and_closes_with_1012_between_them(
    process_logs: Path, tmp_path: Path
) -> None:
    with (
        running_emulator(process_logs, latency=PACED, name="drain-upstream") as upstream,
        running_gateway(process_logs, upstream, tmp_path, name="drain-gateway") as gateway,
    ):
        sockets = [await connect(gateway.target) for _ in range(20)]
        idle = await connect(gateway.target)
        for ws in [*sockets, idle]:
            await receive_frame(ws)
        speakers = [asyncio.create_task(_speak_until_closed(ws)) for ws in sockets]
        await eventually(lambda: gateway.status()["utterances"]["active"] >= 10, 10.0, "utterances in flight")
        gateway.process.signal(signal.SIGTERM)
        results = await asyncio.gather(*speakers)
        assert await wait_closed(idle) == (1012, "SERVICE-RESTART")
        assert gateway.process.process is not None
        assert await asyncio.to_thread(gateway.process.process.wait, 30) == 0
    for utterances, closure in results:
        assert closure == (1012, "SERVICE-RESTART")
        finished, last = utterances[:-1], utterances[-1]
        assert all(u.types == ["Audio", "Flushed"] for u in finished)
        # The last one was sent as the drain closed the socket: it got nothing, never half an utterance.
        assert last.types in ([], ["Audio", "Flushed"])
    assert sum(len(u) for u, _ in results) > 20


async def test_a_draining_pod_refuses_new_upgrades_with_503_and_retry_after_then_exits(
    process_logs: Path, tmp_path: Path
) -> None:
    slow = ("--handshake-delay-ms", "0", "--first-byte-ms", "0", "--realtime-factor", "1")
    with (
        running_emulator(process_logs, latency=slow, name="drain-refusal-upstream") as upstream,
        running_gateway(process_logs, upstream, tmp_path, name="drain-refusal-gateway") as gateway,
    ):
        session = await connect(gateway.target)
        await receive_frame(session)
        await session.send(json.dumps({"type": "Speak", "text": SENTENCE * 3}))
        await session.send(json.dumps({"type": "Flush"}))
        await receive_frame(session)  # audio flows: the utterance (seconds long) keeps the drain going
        gateway.process.signal(signal.SIGTERM)
        await eventually(lambda: not gateway.is_ready(), 5.0, "the drain to make the pod unready")
        assert gateway.status()["draining"] is True
        with pytest.raises(websockets.InvalidStatus) as refused:
            await connect(gateway.target)
        assert refused.value.response.status_code == 503
        assert refused.value.response.headers["retry-after"] == "1"
        assert await wait_closed(session) == (1012, "SERVICE-RESTART")
        assert gateway.process.process is not None
        assert await asyncio.to_thread(gateway.process.process.wait, 30) == 0


PER_SOCKET_UTTERANCES = 19  # 50 sockets, 19 each: more than the 500 utterances the test waits for
# All 50 sockets share one fleet token; its per-minute budget (20 000 by default) is not what this test is
# about, and a fast machine speaks the ~36 000 characters above well within a minute.
ROOMY_TOKEN_BUDGET = {"TTSFLEET_LIMITS__CHARS_PER_MINUTE_PER_TOKEN": "1000000"}


async def test_key_rotation_under_load_loses_no_utterance_and_bills_the_new_key(
    process_logs: Path, tmp_path: Path
) -> None:
    new_key = "rotated-deepgram-key"
    with (
        running_emulator(process_logs, name="rotation-upstream") as upstream,
        running_gateway(
            process_logs, upstream, tmp_path, name="rotation-gateway", env=ROOMY_TOKEN_BUDGET
        ) as gateway,
    ):
        sockets = [await connect(gateway.target) for _ in range(50)]
        for ws in sockets:
            await receive_frame(ws)
        stop = asyncio.Event()

        async def keep_speaking(ws: websockets.ClientConnection) -> int:
            spoken = 0
            # Like a real client, stay inside a socket's budgets (20 Flushes, 2400 characters a minute):
            # on a fast machine an unbounded loop trips DATA-0001 or EXCESSIVE_FLUSH, not the rotation.
            while not stop.is_set() and spoken < PER_SOCKET_UTTERANCES:
                received = await speak_and_flush(ws, f"Rotation keeps speaking, round {spoken}.")
                assert received.types == ["Audio", "Flushed"]
                spoken += 1
            return spoken

        speakers = [asyncio.create_task(keep_speaking(ws)) for ws in sockets]
        await eventually(
            lambda: gateway.status()["utterances"]["total"] >= 100, 20.0, "load before the rotation"
        )
        staged = gateway.key_file.with_suffix(".new")
        staged.write_text(new_key + "\n")
        staged.replace(gateway.key_file)  # how a Secret volume swaps its files: atomically
        await eventually(
            lambda: gateway.status()["credential"]["fingerprint"] == fingerprint_secret(new_key),
            10.0,
            "the new key",
        )
        rotated_at = gateway.status()["utterances"]["total"]
        await eventually(
            lambda: gateway.status()["utterances"]["total"] >= rotated_at + 200,
            20.0,
            "load after the rotation",
        )
        old_billed = gateway.upstream_stats()["chars_by_key"].get(fingerprint_secret(DEEPGRAM_KEY), 0)
        await eventually(
            lambda: gateway.status()["utterances"]["total"] >= rotated_at + 400, 20.0, "more load"
        )
        stop.set()
        counts = await asyncio.gather(*speakers)
        stats = gateway.upstream_stats()
        status = gateway.status()
        await asyncio.gather(*(ws.close() for ws in sockets))
    assert all(count > 0 for count in counts)
    assert stats["chars_by_key"].get(fingerprint_secret(DEEPGRAM_KEY), 0) == old_billed
    assert stats["chars_by_key"][fingerprint_secret(new_key)] > 0
    assert status["credential"] == {"fingerprint": fingerprint_secret(new_key), "valid": True, "reloads": 1}


async def test_a_refused_key_makes_the_gateway_unready_and_a_good_one_recovers_it(
    process_logs: Path, tmp_path: Path
) -> None:
    with (
        running_emulator(
            process_logs, extra_args=("--api-key", "the-only-good-key"), name="auth-upstream"
        ) as upstream,
        running_gateway(process_logs, upstream, tmp_path, name="auth-gateway", wait_ready=False) as gateway,
    ):
        await eventually(
            lambda: gateway.status()["credential"]["valid"] is False, 10.0, "the key to be refused"
        )
        assert not gateway.is_ready()
        with pytest.raises(websockets.InvalidStatus) as refused:
            await connect(gateway.target)
        assert refused.value.response.status_code == 503
        gateway.key_file.write_text("the-only-good-key\n")
        await eventually(gateway.is_ready, 10.0, "readiness with the good key")
        async with await connect(gateway.target) as ws:
            await receive_frame(ws)
            assert (await speak_and_flush(ws, "Good key.")).types == ["Audio", "Flushed"]
