"""A client that stops reading is closed with 1011 NET-0002 once its bounded send buffer stays full."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import websockets

from tests.dataplane.gateways import FLEET_TOKEN, running_gateway
from tests.support.servers import eventually, running_emulator
from tests.support.speaking import wait_closed

SMALL_BUFFER = {
    "TTSFLEET_LIMITS__CLIENT_SEND_BUFFER_BYTES": "65536",
    "TTSFLEET_TIMEOUTS__INTER_CHUNK_S": "0.5",
}


async def test_a_client_that_stops_reading_is_closed_with_net_0002(
    process_logs: Path, tmp_path: Path
) -> None:
    with (
        running_emulator(process_logs, name="slow-client-upstream") as upstream,
        running_gateway(
            process_logs, upstream, tmp_path, env=SMALL_BUFFER, name="slow-client-gateway"
        ) as gateway,
    ):
        url = gateway.target.speak_url(encoding="linear16", sample_rate=48000)
        # max_queue=1 and a small read limit: the client stops reading from TCP almost at once.
        async with websockets.connect(
            url, additional_headers={"Authorization": f"Token {FLEET_TOKEN}"}, max_queue=1, max_size=None
        ) as ws:
            ws.transport.set_write_buffer_limits(high=1024)  # keep our own frames flowing regardless
            ws.transport.pause_reading()
            for _ in range(2):  # 2 x 1100 characters: within the 2400-per-minute budget
                await ws.send(
                    json.dumps({"type": "Speak", "text": "A long story that nobody listens to. " * 30})
                )
                await ws.send(json.dumps({"type": "Flush"}))

            def closed_slow_client() -> bool:
                metrics = httpx.get(gateway.process.base_url + "/metrics", timeout=5.0).text
                return 'ttsfleet_client_closes_total{reason="NET-0002"} 1.0' in metrics

            await eventually(closed_slow_client, 30.0, "the gateway to give up on the slow client")
            ws.transport.resume_reading()
            assert await wait_closed(ws, deadline_s=30.0) in ((1011, "NET-0002"), (None, None))
        assert gateway.status()["sessions"]["active"] == 0
