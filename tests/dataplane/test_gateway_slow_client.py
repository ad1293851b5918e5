"""A client that stops reading is closed with 1011 NET-0002 once its bounded send buffer stays full."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx
import websockets

from tests.dataplane.gateways import FLEET_TOKEN, running_gateway
from tests.support.servers import running_emulator
from tests.support.speaking import wait_closed
from tests.support.waiting import eventually

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
            # Its session slot is free while the client still reads nothing...
            await eventually(lambda: gateway.status()["sessions"]["active"] == 0, 5.0, "the slot freed")
            ws.transport.resume_reading()
            # ...and when it reads again, the documented close follows the audio it was sent.
            assert await wait_closed(ws, deadline_s=30.0) == (1011, "NET-0002")


async def test_a_rest_client_that_never_reads_is_ended_at_the_utterance_deadline(
    process_logs: Path, tmp_path: Path
) -> None:
    env = {"TTSFLEET_TIMEOUTS__UTTERANCE_S": "5"}
    with (
        running_emulator(process_logs, name="rest-reader-upstream") as upstream,
        running_gateway(process_logs, upstream, tmp_path, env=env, name="rest-reader-gateway") as gateway,
    ):
        client = socket.create_connection(("127.0.0.1", gateway.process.port))
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        try:
            body = json.dumps({"text": "A long answer nobody reads. " * 70}).encode()
            client.sendall(
                b"POST /v1/speak?encoding=linear16&sample_rate=48000 HTTP/1.1\r\nhost: x\r\n"
                b"authorization: Token " + FLEET_TOKEN.encode() + b"\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\n\r\n%s" % (len(body), body)
            )
            await eventually(lambda: gateway.status()["utterances"]["total"] >= 1, 10.0, "the utterance")
            # Never read: the gateway must let go of the utterance and of the connection on its own.
            await eventually(
                lambda: gateway.status()["utterances"]["active"] == 0, 20.0, "the stalled response ended"
            )
            client_port = client.getsockname()[1]
            await eventually(
                lambda: not _held_by_gateway(gateway.process.port, client_port),
                20.0,
                "the connection dropped",
            )
        finally:
            client.close()


def _held_by_gateway(gateway_port: int, client_port: int) -> bool:
    """Whether the gateway's end of this loopback connection is open or still has bytes queued for it."""
    local, remote = f":{gateway_port:04X}", f":{client_port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(local) and fields[2].endswith(remote):
            established, unsent = fields[3] == "01", int(fields[4].split(":")[0], 16)
            if established or unsent:
                return True
    return False
