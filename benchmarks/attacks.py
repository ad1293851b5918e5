"""The gateway under transport attacks: RSS and file descriptors before, during and after each one.

Starts a real emulator and gateway on loopback (benchmarks.processes), attacks only them, in bounded
loops, and prints one line per attack. Figures for docs/security.md ("Measured"):

    python -m benchmarks.attacks

Attacks: 64 MiB of small headers, an endless header and an endless URL (no token); 400 silent sockets,
400 trickled heads and 100 endless chunked bodies held 20 s; 1,100 silent sockets and /livez meanwhile;
20 WebSocket clients that stop reading mid-utterance; one REST body of 100 MiB with a valid token.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import websockets

from benchmarks import processes

TOKEN = "attack-bench-token"
HOLD_S = 20.0  # past the 10 s head and body deadlines


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def fds(pid: int) -> int:
    return sum(1 for _ in Path(f"/proc/{pid}/fd").iterdir())


def unsent_mb(port: int) -> float:
    """Bytes the kernel still holds for clients of `port` (send queues on the gateway's side)."""
    local = f":{port:04X}"
    total = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(local):
            total += int(fields[4].split(":")[0], 16)
    return total / 2**20


async def flood(port: int, head: bytes, filler: bytes, limit: int) -> tuple[int, str]:
    """Send `head`, then `filler` until `limit` bytes or the gateway answers/closes; (bytes sent, answer)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answer = asyncio.create_task(reader.read(200))
    sent = 0
    try:
        writer.write(head)
        while sent < limit and not answer.done():
            writer.write(filler)
            await writer.drain()
            sent += len(filler)
            await asyncio.sleep(0)  # drain() need not yield: let the answer be read
    except ConnectionError:
        pass
    try:
        async with asyncio.timeout(2):
            first = await answer
    except (TimeoutError, ConnectionError):
        first = b""
    writer.close()
    return sent, (first.split(b"\r\n", 1)[0].decode(errors="replace") or "no answer")


async def settle(pid: int, resting_fds: int) -> None:
    """Wait (15 s at most) until the previous attack's sockets are gone from the gateway."""
    deadline = time.monotonic() + 15.0
    while fds(pid) > resting_fds + 10 and time.monotonic() < deadline:  # noqa: ASYNC110 - /proc has no event
        await asyncio.sleep(0.1)  # polling the condition, with a deadline


RESTING_FDS: dict[int, int] = {}


async def measured(name: str, pid: int, attack: Callable[[], Awaitable[str]]) -> None:
    await settle(pid, RESTING_FDS.setdefault(pid, fds(pid)))
    before_rss, before_fds = rss_mb(pid), fds(pid)
    highest = before_rss

    async def sample() -> None:
        nonlocal highest
        while True:
            highest = max(highest, rss_mb(pid))
            await asyncio.sleep(0.05)  # the sampling period

    sampler = asyncio.create_task(sample())
    try:
        detail = await attack()
    finally:
        sampler.cancel()
    print(
        f"{name:<32} RSS {before_rss:5.0f} → {rss_mb(pid):5.0f} MiB (highest {highest:5.0f})"
        f"  fds {before_fds:5d} → {fds(pid):5d}  {detail}",
        flush=True,
    )


async def heads(port: int, pid: int) -> None:
    get = b"GET /livez HTTP/1.1\r\nhost: x\r\n"
    for name, head, filler, limit in (
        ("64 MiB of small headers", get, b"x-a: b\r\n" * 2048, 64 << 20),
        ("an endless header", get + b"x-endless: ", b"v" * 16384, 64 << 20),
        ("an endless URL", b"GET /", b"a" * 16384, 100 << 20),
    ):

        async def attack(head: bytes = head, filler: bytes = filler, limit: int = limit) -> str:
            sent, answer = await flood(port, head, filler, limit)
            return f"sent {sent / 2**20:.2f} MiB, answer: {answer}"

        await measured(name, pid, attack)


async def held_connections(port: int, pid: int, base_url: str) -> None:
    async def attack() -> str:
        writers: list[asyncio.StreamWriter] = []
        readers: list[asyncio.StreamReader] = []
        for _ in range(400):  # silent
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            readers.append(reader)
            writers.append(writer)
        trickled: list[tuple[asyncio.StreamWriter, bytes]] = []
        for _ in range(400):  # slowloris
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /livez HTTP/1.1\r\n")
            trickled.append((writer, b"x-a: b\r\n"))
            readers.append(reader)
            writers.append(writer)
        body = (
            b"POST /v1/speak HTTP/1.1\r\nhost: x\r\ncontent-type: text/plain\r\nauthorization: Token "
            + TOKEN.encode()
            + b"\r\ntransfer-encoding: chunked\r\n\r\n"
        )
        for _ in range(100):  # endless chunked bodies
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(body)
            trickled.append((writer, b"1\r\na\r\n"))
            readers.append(reader)
            writers.append(writer)
        peak = fds(pid)
        deadline = time.monotonic() + HOLD_S
        while time.monotonic() < deadline:
            for writer, filler in trickled:
                if not writer.is_closing():
                    with contextlib.suppress(ConnectionError):
                        writer.write(filler)
            await asyncio.sleep(1.0)  # the attack's pace
        cut = 0
        for reader in readers:
            try:
                async with asyncio.timeout(0.01):
                    await reader.read(1)
                cut += 1  # an answer or the end: the gateway cut it
            except ConnectionError:
                cut += 1  # reset by the gateway
            except TimeoutError:
                pass  # still open
        for writer in writers:
            writer.close()
        return f"900 held {HOLD_S:.0f} s: {cut} cut by the gateway; gateway fds at peak {peak}"

    await measured("silent/slowloris/chunked", pid, attack)

    async def exhaust() -> str:
        writers = []
        for _ in range(1100):
            with contextlib.suppress(OSError):
                writers.append((await asyncio.open_connection("127.0.0.1", port))[1])
        peak = fds(pid)
        try:
            async with httpx.AsyncClient() as client:
                live = (await client.get(base_url + "/livez", timeout=5.0)).status_code
        except httpx.HTTPError as error:
            live = type(error).__name__  # type: ignore[assignment]
        for writer in writers:
            writer.close()
        return f"1,100 silent sockets: gateway fds at peak {peak}, /livez meanwhile: {live}"

    await measured("1,100 silent sockets", pid, exhaust)


async def slow_readers(base_url: str, ws_url: str, port: int, pid: int) -> None:
    async def attack() -> str:
        clients = []
        for _ in range(20):
            try:
                ws = await websockets.connect(
                    ws_url + "?encoding=linear16&sample_rate=48000",
                    additional_headers={"Authorization": f"Token {TOKEN}"},
                    max_queue=1,
                    max_size=None,
                )
            except (OSError, websockets.InvalidHandshake) as error:
                return f"could not connect: {type(error).__name__}"
            ws.transport.pause_reading()
            await ws.send(json.dumps({"type": "Speak", "text": "A long story that nobody hears. " * 30}))
            await ws.send(json.dumps({"type": "Flush"}))
            clients.append(ws)
        figures = []
        elapsed = 0.0
        for wait_s in (5.0, 25.0, 15.0):
            await asyncio.sleep(wait_s)  # the measurement's schedule
            async with httpx.AsyncClient() as client:
                status = (await client.get(base_url + "/statusz", timeout=5.0)).json()
            sessions = status["sessions"]["active"]
            elapsed += wait_s
            figures.append(
                f"+{elapsed:.0f} s: {sessions} sessions, {unsent_mb(port):.1f} MiB unsent, {fds(pid)} fds"
            )
        for ws in clients:
            ws.transport.abort()
        return "; ".join(figures)

    await measured("20 WebSocket slow readers", pid, attack)


async def big_body(port: int, pid: int) -> None:
    async def attack() -> str:
        head = (
            b"POST /v1/speak HTTP/1.1\r\nhost: x\r\ncontent-type: text/plain\r\nauthorization: Token "
            + TOKEN.encode()
            + b"\r\ncontent-length: %d\r\n\r\n" % (100 << 20)
        )
        started = time.monotonic()
        sent, answer = await flood(port, head, b"a" * 65536, 100 << 20)
        return f"sent {sent / 2**20:.1f} MiB in {time.monotonic() - started:.1f} s, answer: {answer}"

    await measured("100 MiB REST body (valid token)", pid, attack)


async def main(workdir: Path) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # The servers start with the usual soft limit of 1,024 open files (what the gateway does with it is
    # part of the measurement); this process needs more for its 1,100 sockets.
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 1024), hard))
    with (
        processes.emulator(workdir) as upstream,
        processes.gateway(workdir / "gateway", upstream, [TOKEN], {}) as gateway,
    ):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
        pid = gateway.pid
        print(f"gateway pid {pid}: RSS {rss_mb(pid):.0f} MiB, {fds(pid)} fds at rest", flush=True)
        await heads(gateway.port, pid)
        await held_connections(gateway.port, pid, gateway.base_url)
        await slow_readers(gateway.base_url, gateway.ws_url, gateway.port, pid)
        await big_body(gateway.port, pid)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ttsfleet-attacks-") as tmp:
        asyncio.run(main(Path(tmp)))
