"""`make demo`: bring up what exists of the local fleet, speak a sentence into `out/demo.wav`.

Today the fleet is one gateway in front of the Deepgram emulator, speaking through a fleet token; the
operator and the embedded cluster join as they land. `DEMO_ONCE=1` exits after writing the WAV;
otherwise the processes keep running until Ctrl-C so you can speak to them yourself.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from rich.console import Console

SENTENCE = "the speech fleet is ready"
OUTPUT = Path("out/demo.wav")
console = Console()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "ttsfleet", *args],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONSAFEPATH": "1"},  # the repo's operator/ must not shadow the stdlib
        )


def _wait_until_answers(
    url: str, process: subprocess.Popen[bytes], log: Path, deadline_s: float = 30, ready: bool = False
) -> None:
    """Poll `url` with a deadline until it answers (with 200 when `ready`)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url} exited early; see {log}:\n{log.read_text()[-2000:]}")
        try:
            status = httpx.get(url, timeout=1).status_code
            if status == 200 or (not ready and status < 500):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)  # polling a condition with a deadline
    raise SystemExit(f"{url} did not answer within {deadline_s} s; see {log}")


DEEPGRAM_KEY = "demo-deepgram-key"
FLEET_TOKEN = "demo-fleet-token"


def main() -> int:
    work = Path("out")
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    (work / "deepgram-key").write_text(DEEPGRAM_KEY + "\n")
    (work / "fleet-tokens").write_text(FLEET_TOKEN + "\n")
    emulator_port, gateway_port = _free_port(), _free_port()
    console.print("[bold]ttsfleet demo[/bold]: a gateway in front of the Deepgram emulator (real speech)")
    processes: list[subprocess.Popen[bytes]] = []
    try:
        emulator = _start(
            ["emulator", "--port", str(emulator_port), "--api-key", DEEPGRAM_KEY], logs / "emulator.log"
        )
        processes.append(emulator)
        _wait_until_answers(
            f"http://127.0.0.1:{emulator_port}/_emulator/healthz", emulator, logs / "emulator.log"
        )
        gateway = _start(
            [
                "dataplane",
                "--host",
                "127.0.0.1",
                "--port",
                str(gateway_port),
                "--pod-name",
                "demo-gateway",
                "--upstream-url",
                f"ws://127.0.0.1:{emulator_port}",
                "--deepgram-key-file",
                str(work / "deepgram-key"),
                "--client-tokens-file",
                str(work / "fleet-tokens"),
            ],
            logs / "gateway.log",
        )
        processes.append(gateway)
        _wait_until_answers(
            f"http://127.0.0.1:{gateway_port}/readyz", gateway, logs / "gateway.log", ready=True
        )
        console.print(f"  emulator (Deepgram stand-in) on ws://127.0.0.1:{emulator_port}")
        console.print(
            f"  gateway on ws://127.0.0.1:{gateway_port} (clients use a fleet token, never the key)"
        )
        said = subprocess.run(
            [
                sys.executable,
                "-m",
                "ttsfleet",
                "say",
                SENTENCE,
                "-o",
                str(OUTPUT),
                "--url",
                f"ws://127.0.0.1:{gateway_port}",
                "--token",
                FLEET_TOKEN,
            ],
            check=False,
            env={**os.environ, "PYTHONSAFEPATH": "1"},
        )
        if said.returncode != 0:
            return said.returncode
        status = httpx.get(f"http://127.0.0.1:{gateway_port}/statusz").json()
        upstream = httpx.get(f"http://127.0.0.1:{emulator_port}/_emulator/stats").json()
        console.print(
            f"  gateway: ready={status['ready']} sessions={status['sessions']['total']} "
            f"upstream sockets={status['upstream']['open_sockets']} breaker={status['upstream']['breaker']} "
            f"key fingerprint={status['credential']['fingerprint']}"
        )
        console.print(f"  Deepgram side: characters billed per key fingerprint {upstream['chars_by_key']}")
        console.print(f"[green]wrote {OUTPUT}[/green] — play it with any audio player")
        if os.environ.get("DEMO_ONCE"):
            return 0
        console.print(
            f"running; try: ttsfleet say 'hello' --url ws://127.0.0.1:{gateway_port} --token {FLEET_TOKEN}"
            f"   metrics: http://127.0.0.1:{gateway_port}/metrics   (Ctrl-C stops)"
        )
        stop_signals = {signal.SIGINT, signal.SIGTERM}
        signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
        signal.sigwait(stop_signals)
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            process.wait(30)


if __name__ == "__main__":
    sys.exit(main())
