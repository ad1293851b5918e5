"""A crowd connecting at once, on a real gateway process: its upgrades are set up a few at a time, in
turn, and every session opens; beyond the waiting room an upgrade is refused with 503 and Retry-After at
once, never left hanging; either way the pod goes on serving.

The crowd is raw sockets on loopback that write their upgrade requests back to back, so that the gateway
reads many in the same pass of its event loop, as it does when a fleet of agents reconnects.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
from pathlib import Path

from tests.dataplane.gateways import FLEET_TOKEN, RunningGateway, running_gateway
from tests.support.servers import ServerProcess
from tests.support.speaking import connect, receive_frame

CROWD = 100
ANSWER_DEADLINE_S = 20.0


def upgrade_request() -> bytes:
    key = base64.b64encode(os.urandom(16))
    return (
        b"GET /v1/speak?encoding=linear16&sample_rate=24000 HTTP/1.1\r\nhost: gateway\r\n"
        b"upgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-version: 13\r\n"
        b"sec-websocket-key: " + key + b"\r\nauthorization: Token " + FLEET_TOKEN.encode() + b"\r\n\r\n"
    )


async def answer(reader: asyncio.StreamReader) -> tuple[int, bytes, bytes]:
    """The status and head of the gateway's answer, and for a 101 what followed up to its Metadata."""
    async with asyncio.timeout(ANSWER_DEADLINE_S):
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        after = b""
        while status == 101 and b'"Metadata"' not in after:
            chunk = await reader.read(4096)
            assert chunk, "the connection closed before the session's Metadata"
            after += chunk
    return status, head.lower(), after


async def crowd_connects(gateway: RunningGateway) -> list[tuple[int, bytes, bytes]]:
    """CROWD connections open first, then each writes its upgrade request without waiting for any."""
    connections = [await asyncio.open_connection("127.0.0.1", gateway.process.port) for _ in range(CROWD)]
    try:
        for _, writer in connections:
            writer.write(upgrade_request())
        return await asyncio.gather(*(answer(reader) for reader, _ in connections))
    finally:
        for _, writer in connections:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def a_session_opens(gateway: RunningGateway) -> None:
    ws = await connect(gateway.target)
    try:
        assert (await receive_frame(ws)).type == "Metadata"
    finally:
        await ws.close()


async def test_a_crowd_is_set_up_in_turns_and_every_session_opens(
    process_logs: Path, module_emulator: ServerProcess, tmp_path: Path
) -> None:
    env = {"TTSFLEET_CONNECTIONS__MAX_UPGRADING": "2"}
    with running_gateway(process_logs, module_emulator, tmp_path, env=env, name="paced") as gateway:
        await a_session_opens(gateway)  # the model's details are known: later upgrades never wait on upstream
        answers = await crowd_connects(gateway)
        assert [status for status, _, _ in answers] == [101] * CROWD
        queued = gateway.metric("ttsfleet_upgrades_queued_total")
        assert queued is not None and queued > 0, "no upgrade waited: the crowd was not paced"
        assert gateway.metric("ttsfleet_upgrades_waiting") == 0
        await a_session_opens(gateway)


async def test_beyond_the_waiting_room_an_upgrade_gets_503_with_retry_after(
    process_logs: Path, module_emulator: ServerProcess, tmp_path: Path
) -> None:
    env = {"TTSFLEET_CONNECTIONS__MAX_UPGRADING": "1", "TTSFLEET_CONNECTIONS__MAX_UPGRADES_WAITING": "0"}
    with running_gateway(process_logs, module_emulator, tmp_path, env=env, name="full") as gateway:
        await a_session_opens(gateway)
        answers = await crowd_connects(gateway)
        statuses = [status for status, _, _ in answers]
        assert set(statuses) <= {101, 503}, statuses
        refused = [head for status, head, _ in answers if status == 503]
        assert refused, "every upgrade of the crowd was taken at once"
        assert all(b"\r\nretry-after: 1\r\n" in head for head in refused)
        assert gateway.metric("ttsfleet_refusals_total") == len(refused)
        await a_session_opens(gateway)
