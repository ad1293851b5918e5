"""Closing a session ends its connection at once: the gateway lets go of the TCP connection as soon as its
last bytes are sent, not a poll later (real gateway and emulator processes)."""

from __future__ import annotations

import time
from pathlib import Path

from tests.dataplane.gateways import running_gateway
from tests.support.servers import running_emulator
from tests.support.speaking import connect, receive_frame, speak_and_flush
from ttsfleet.dataplane.connections import CLOSE_POLL_S

SENTENCE = "Goodbye, and thank you for listening."
# Well under the close poll's interval: the old code held every closing connection for a whole poll
# (its Close frame, just sent, counted as not taken until the client's delayed ACK).
PROMPT_S = CLOSE_POLL_S / 2


async def test_a_client_close_frame_ends_the_connection_without_waiting_for_a_poll(
    process_logs: Path, tmp_path: Path
) -> None:
    with (
        running_emulator(process_logs, name="closing-upstream") as upstream,
        running_gateway(process_logs, upstream, tmp_path, name="closing-gateway") as gateway,
    ):
        took: list[float] = []
        for _ in range(3):
            ws = await connect(gateway.target)
            await receive_frame(ws)  # Metadata
            assert (await speak_and_flush(ws, SENTENCE)).audio
            began = time.monotonic()
            await ws.close()  # the client's close handshake waits for the server to end TCP
            took.append(time.monotonic() - began)
            assert ws.close_code == 1000
        assert max(took) < PROMPT_S, took
