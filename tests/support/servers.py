"""Real server processes for tests: start a `ttsfleet` command on a free port and wait until it answers.

Processes log to a file per process so tests can read (and grep) every line they wrote. Waiting is a
condition with a deadline, never a fixed sleep.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.waiting import wait_for
from ttsfleet.devcluster.ports import free_port

START_DEADLINE_S = 30.0


@dataclass
class ServerProcess:
    """A running `python -m ttsfleet …` process."""

    name: str
    args: list[str]
    port: int
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self, ready_path: str, deadline_s: float = START_DEADLINE_S) -> ServerProcess:
        log_file = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ttsfleet", *self.args],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            # Safe-path mode: the repository's `operator/` folder must not shadow the stdlib module.
            env={**os.environ, **self.env},
        )
        log_file.close()

        def answers() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.process.returncode}:\n{self.logs()}")
            try:
                return httpx.get(self.base_url + ready_path, timeout=1.0).status_code < 500
            except httpx.TransportError:
                return False

        wait_for(answers, deadline_s, f"{self.name} to answer {ready_path}")
        return self

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def stop(self, timeout_s: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL if it does not exit in time; returns the exit code."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout_s)


INSTANT_LATENCY = ("--handshake-delay-ms", "0", "--first-byte-ms", "0", "--realtime-factor", "0")


@contextlib.contextmanager
def running_emulator(
    log_dir: Path,
    extra_args: Sequence[str] = (),
    latency: Sequence[str] = INSTANT_LATENCY,
    name: str = "emulator",
) -> Iterator[ServerProcess]:
    """An emulator process on a free port (instant latency unless told otherwise)."""
    port = free_port()
    server = ServerProcess(
        name=name,
        args=["emulator", "--port", str(port), *latency, *extra_args],
        port=port,
        log_path=log_dir / f"{name}-{port}.log",
    )
    server.start("/_emulator/healthz")
    try:
        yield server
    finally:
        server.stop()
