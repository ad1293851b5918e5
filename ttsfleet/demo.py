"""`make demo`: bring up what exists of the local fleet, speak a sentence into `out/demo.wav`.

Today the fleet is the Deepgram emulator with a gateway in front when the gateway is installed; the
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
    url: str, process: subprocess.Popen[bytes], log: Path, deadline_s: float = 30
) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url} exited early; see {log}:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)  # polling a condition with a deadline
    raise SystemExit(f"{url} did not answer within {deadline_s} s; see {log}")


def main() -> int:
    logs = Path("out/logs")
    logs.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    console.print(
        "[bold]ttsfleet demo[/bold]: starting the Deepgram emulator (real speech, realistic latency)"
    )
    emulator = _start(
        ["emulator", "--port", str(port), "--api-key", "demo-deepgram-key"], logs / "emulator.log"
    )
    processes = [emulator]
    try:
        _wait_until_answers(f"http://127.0.0.1:{port}/_emulator/healthz", emulator, logs / "emulator.log")
        health = httpx.get(f"http://127.0.0.1:{port}/_emulator/healthz").json()
        console.print(f"  emulator on ws://127.0.0.1:{port} (synthesis: {health['synthesis']})")
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
                f"ws://127.0.0.1:{port}",
                "--token",
                "demo-deepgram-key",
            ],
            check=False,
        )
        if said.returncode != 0:
            return said.returncode
        stats = httpx.get(f"http://127.0.0.1:{port}/_emulator/stats").json()
        console.print(
            f"  upstream: {stats['sockets_total']} socket(s), {stats['audio_bytes_total']} audio bytes, "
            f"characters billed per key fingerprint: {stats['chars_by_key']}"
        )
        console.print(f"[green]wrote {OUTPUT}[/green] — play it with any audio player")
        if os.environ.get("DEMO_ONCE"):
            return 0
        console.print(
            f"running; try: ttsfleet say 'hello' --url ws://127.0.0.1:{port} --token demo-deepgram-key"
            "  (Ctrl-C stops)"
        )
        stop_signals = {signal.SIGINT, signal.SIGTERM}
        signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
        signal.sigwait(stop_signals)
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(10)


if __name__ == "__main__":
    sys.exit(main())
