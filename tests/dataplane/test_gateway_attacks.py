"""The gateway attacked at the transport: raw sockets on loopback against a real gateway process.

Each attack is bounded (a few connections, a few hundred KiB) and each expectation is the protocol's own
answer within a deadline: 404 for drain, 414/431 for oversized heads, 408 for slow heads and bodies,
413 for large bodies, the oldest idle connection dropped beyond the pending cap, close 1008 for an
unfinished fragmented message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from tests.dataplane.gateways import FLEET_TOKEN, RunningGateway, running_gateway
from tests.support.servers import ServerProcess
from tests.support.speaking import wait_closed
from tests.support.waiting import eventually

ANSWER_DEADLINE_S = 10.0
# A REST speak request with a valid token, up to its body's framing.
SPEAK_HEAD = (
    b"POST /v1/speak HTTP/1.1\r\nhost: x\r\ncontent-type: text/plain\r\n"
    b"authorization: Token " + FLEET_TOKEN.encode() + b"\r\n"
)
# Short deadlines so the tests wait seconds, not the defaults' tens of seconds.
SHORT_DEADLINES = {
    "TTSFLEET_CONNECTIONS__HEAD_TIMEOUT_S": "1",
    "TTSFLEET_CONNECTIONS__BODY_TIMEOUT_S": "1",
    "TTSFLEET_CONNECTIONS__FRAGMENT_TIMEOUT_S": "1",
}


@pytest.fixture(scope="module")
def guarded(
    process_logs: Path, module_emulator: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningGateway]:
    with running_gateway(
        process_logs, module_emulator, tmp_path_factory.mktemp("guarded"), env=SHORT_DEADLINES, name="guarded"
    ) as running:
        yield running


@contextlib.asynccontextmanager
async def raw_connection(
    gateway: RunningGateway,
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.process.port)
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def answer_of(reader: asyncio.StreamReader, deadline_s: float = ANSWER_DEADLINE_S) -> bytes:
    """Everything the gateway sends until it closes the connection (b"" if it closes without a word)."""
    chunks = []
    async with asyncio.timeout(deadline_s):
        with contextlib.suppress(ConnectionResetError):
            while chunk := await reader.read(65536):
                chunks.append(chunk)
    return b"".join(chunks)


async def send_until_answered(writer: asyncio.StreamWriter, piece: bytes, answer: asyncio.Task[bytes]) -> int:
    """Write `piece` again and again until the gateway answers or closes (8 MiB at most); bytes written."""
    sent = 0
    with contextlib.suppress(ConnectionError):
        while sent < 8 << 20 and not answer.done():
            writer.write(piece)
            await writer.drain()
            sent += len(piece)
            await asyncio.sleep(0)  # drain() need not yield: let the answer be read
    return sent


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def error_lines(gateway: RunningGateway) -> list[str]:
    return [line for line in gateway.process.logs().splitlines() if '"level": "error"' in line.lower()]


# --- drain ---------------------------------------------------------------------------------------------


def test_nobody_on_the_network_can_drain_the_pod(guarded: RunningGateway) -> None:
    base = guarded.process.base_url
    assert httpx.post(base + "/drain", timeout=5.0).status_code == 404
    assert httpx.get(base + "/drain", timeout=5.0).status_code == 404
    assert guarded.is_ready()
    assert guarded.status()["draining"] is False


# --- heads -----------------------------------------------------------------------------------------------


async def test_an_endless_url_is_refused_with_414(guarded: RunningGateway) -> None:
    async with raw_connection(guarded) as (reader, writer):
        writer.write(b"GET /" + b"a" * 40_000)  # never ends: no space, no version, no CRLF
        await writer.drain()
        assert status_of(await answer_of(reader)) == 414


async def test_too_many_header_fields_are_refused_with_431(guarded: RunningGateway) -> None:
    async with raw_connection(guarded) as (reader, writer):
        writer.write(b"GET /livez HTTP/1.1\r\nhost: x\r\n" + b"x-a: b\r\n" * 200 + b"\r\n")
        await writer.drain()
        assert status_of(await answer_of(reader)) == 431


async def test_an_endless_header_is_refused_with_431_before_it_grows(guarded: RunningGateway) -> None:
    async with raw_connection(guarded) as (reader, writer):
        writer.write(b"GET /livez HTTP/1.1\r\nx-endless: ")
        answer = asyncio.create_task(reader.read(65536))  # the first bytes of an answer
        sent = await send_until_answered(writer, b"v" * 16384, answer)
        assert status_of(await answer) == 431
        assert sent < 8 << 20  # answered while the header was still growing


async def test_malformed_heads_are_counted_not_logged_line_by_line(guarded: RunningGateway) -> None:
    """A line per malformed request would let anyone on the network write the pod's log at line rate."""
    garbage = b"\x16\x03\x01\x02\x00 not http\r\n\r\n"  # what a TLS client or a scanner sends
    for _ in range(20):
        async with raw_connection(guarded) as (reader, writer):
            writer.write(garbage)
            await writer.drain()
            assert status_of(await answer_of(reader)) == 400
    async with raw_connection(guarded) as (reader, writer):
        writer.write(b"GET /livez HTTP/1.1\r\nhost: x\r\n" + b"x-a: b\r\n" * 200 + b"\r\n")
        await writer.drain()
        assert status_of(await answer_of(reader)) == 431
    metrics = httpx.get(guarded.process.base_url + "/metrics", timeout=5.0).text
    counted = {
        line.split("{", 1)[1].split("}", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("ttsfleet_refusals_total{")
    }
    assert counted.get('status="400"', 0) >= 20 and counted.get('status="431"', 0) >= 1, counted
    assert "Invalid HTTP request" not in guarded.process.logs()


# --- deadlines and the pending-connection cap --------------------------------------------------------------


async def test_a_silent_connection_is_closed_at_the_head_deadline(guarded: RunningGateway) -> None:
    async with raw_connection(guarded) as (reader, _):
        assert status_of(await answer_of(reader, deadline_s=5.0)) == 408


async def test_a_trickled_head_is_cut_at_the_head_deadline(guarded: RunningGateway) -> None:
    async with raw_connection(guarded) as (reader, writer):
        writer.write(b"GET /livez HTTP/1.1\r\n")

        async def trickle() -> None:
            with contextlib.suppress(ConnectionError):
                for _ in range(100):  # bounded: 20 s at most, far past the 1 s head deadline
                    writer.write(b"x-a: b\r\n")
                    await writer.drain()
                    await asyncio.sleep(0.2)  # the attack's pace, not a wait for a condition

        trickler = asyncio.create_task(trickle())
        try:
            assert status_of(await answer_of(reader, deadline_s=5.0)) == 408
        finally:
            trickler.cancel()


async def test_an_endless_chunked_body_is_cut_at_the_body_deadline(guarded: RunningGateway) -> None:
    async with raw_connection(guarded) as (reader, writer):
        writer.write(SPEAK_HEAD + b"transfer-encoding: chunked\r\n\r\n")

        async def trickle() -> None:
            with contextlib.suppress(ConnectionError):
                for _ in range(100):
                    writer.write(b"1\r\na\r\n")
                    await writer.drain()
                    await asyncio.sleep(0.2)  # the attack's pace

        trickler = asyncio.create_task(trickle())
        try:
            assert status_of(await answer_of(reader, deadline_s=5.0)) == 408
        finally:
            trickler.cancel()


async def test_idle_connections_beyond_the_cap_leave_the_pod_answering(
    process_logs: Path, module_emulator: ServerProcess, tmp_path: Path
) -> None:
    env = {"TTSFLEET_CONNECTIONS__MAX_PENDING": "20", "TTSFLEET_CONNECTIONS__HEAD_TIMEOUT_S": "60"}
    with running_gateway(process_logs, module_emulator, tmp_path, env=env, name="capped") as gateway:
        baseline = gateway.open_fds()
        sockets = [await asyncio.open_connection("127.0.0.1", gateway.process.port) for _ in range(100)]
        try:
            async with httpx.AsyncClient() as client:
                assert (await client.get(gateway.process.base_url + "/livez", timeout=5.0)).status_code == 200
            await eventually(
                lambda: gateway.open_fds() <= baseline + 20, 10.0, "idle sockets beyond the cap dropped"
            )
        finally:
            for _, writer in sockets:
                writer.close()


async def test_a_crowd_that_connects_before_it_writes_is_not_dropped_as_idle(
    process_logs: Path, module_emulator: ServerProcess, tmp_path: Path
) -> None:
    """A crowd reconnecting at once is accepted faster than its clients write their requests: beyond the
    cap on connections without a request head, yet none of them idle. Every one is answered."""
    env = {"TTSFLEET_CONNECTIONS__MAX_PENDING": "5"}
    with running_gateway(process_logs, module_emulator, tmp_path, env=env, name="crowded") as gateway:
        crowd = [await asyncio.open_connection("127.0.0.1", gateway.process.port) for _ in range(30)]
        try:
            for _, writer in crowd:  # each request written once all are connected
                writer.write(b"GET /livez HTTP/1.1\r\nhost: gateway\r\nconnection: close\r\n\r\n")
            answers = await asyncio.gather(*(answer_of(reader) for reader, _ in crowd))
        finally:
            for _, writer in crowd:
                writer.close()
        assert [status_of(answer) if answer else None for answer in answers] == [200] * len(crowd)


def test_the_open_file_limit_is_raised_to_the_hard_limit(
    process_logs: Path, module_emulator: ServerProcess, tmp_path: Path
) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard <= 256:
        pytest.fail(f"this machine's hard open-file limit ({hard}) leaves nothing to raise")
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))  # inherited by the gateway
    try:
        gateway_cm = running_gateway(process_logs, module_emulator, tmp_path, name="fd-limit")
        gateway = gateway_cm.__enter__()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        assert gateway.process.process is not None
        limits = Path(f"/proc/{gateway.process.process.pid}/limits").read_text()
        (line,) = [line for line in limits.splitlines() if line.startswith("Max open files")]
        assert int(line.split()[3]) == min(hard, 1 << 20)
    finally:
        gateway_cm.__exit__(None, None, None)


# --- request bodies --------------------------------------------------------------------------------------


async def test_a_declared_huge_body_is_refused_with_413_before_it_is_sent(guarded: RunningGateway) -> None:
    async with raw_connection(guarded) as (reader, writer):
        writer.write(SPEAK_HEAD + b"content-length: 104857600\r\n\r\n")
        await writer.drain()
        answer = await answer_of(reader, deadline_s=5.0)
        assert status_of(answer) == 413
        assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["err_code"] == "PAYLOAD_TOO_LARGE"


async def test_a_chunked_body_past_the_limit_is_refused_while_it_streams(guarded: RunningGateway) -> None:
    async with raw_connection(guarded) as (reader, writer):
        writer.write(SPEAK_HEAD + b"transfer-encoding: chunked\r\n\r\n")
        answer = asyncio.create_task(reader.read(65536))  # the first bytes of an answer
        sent = await send_until_answered(writer, b"4000\r\n" + b"a" * 16384 + b"\r\n", answer)
        assert status_of(await answer) == 413
        assert sent < 8 << 20  # answered while the body was still streaming


async def test_a_client_leaving_mid_body_is_no_error(guarded: RunningGateway) -> None:
    async with raw_connection(guarded) as (_, writer):
        writer.write(SPEAK_HEAD + b"content-length: 100\r\n\r\nhalf a body")
        await writer.drain()
    await eventually(
        lambda: "client left before its request body ended" in guarded.process.logs(), 5.0, "the log"
    )
    assert error_lines(guarded) == []


# --- WebSocket messages -----------------------------------------------------------------------------------


async def test_an_unfinished_fragmented_message_is_closed_with_1008(guarded: RunningGateway) -> None:
    stalled = asyncio.Event()

    async def fragments() -> AsyncIterator[str]:
        yield '{"type": "Speak", '
        await stalled.wait()  # never set: the message is never finished
        yield '"text": "never"}'

    async with websockets.connect(
        guarded.target.speak_url(), additional_headers={"Authorization": f"Token {FLEET_TOKEN}"}
    ) as ws:
        await ws.recv()  # Metadata
        sender = asyncio.create_task(ws.send(fragments()))
        try:
            assert await wait_closed(ws, deadline_s=5.0) == (1008, "DATA-0000")
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
                await sender
