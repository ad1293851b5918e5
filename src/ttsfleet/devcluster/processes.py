"""Processes the local fleet starts beside its cluster: spawned into a log file, awaited, stopped.

Shared by both ways `dev up` runs (the real control plane and the embedded API): the Deepgram emulator
and the operator are child processes in their own sessions, stopped with SIGTERM and then SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

START_DEADLINE_S = 60.0


async def spawn(argv: Sequence[str], log: Path, env: Mapping[str, str]) -> asyncio.subprocess.Process:
    """Start `argv` with `env` on top of ours, its output appended to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as stream:
        return await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=stream,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, **env},
            start_new_session=True,
        )


async def wait_answers(url: str, process: asyncio.subprocess.Process, what: str) -> None:
    """Until `url` answers below 500; fails when the process exits or the deadline passes."""
    deadline = time.monotonic() + START_DEADLINE_S
    async with httpx.AsyncClient(timeout=1.0, trust_env=False) as http:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise RuntimeError(f"{what} exited with {process.returncode} (see its log)")
            with contextlib.suppress(httpx.TransportError):
                if (await http.get(url)).status_code < 500:
                    return
            await asyncio.sleep(0.1)  # polling a process we cannot watch, bounded by the deadline
    raise RuntimeError(f"{what} did not answer {url} within {START_DEADLINE_S} s")


async def stop(process: asyncio.subprocess.Process | None, deadline_s: float = 20.0) -> None:
    """SIGTERM, then SIGKILL after `deadline_s`; nothing for a process that is gone or None."""
    if process is None or process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        async with asyncio.timeout(deadline_s):
            await process.wait()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


async def start_emulator(port: int, args: Sequence[str], log: Path) -> tuple[asyncio.subprocess.Process, str]:
    """The Deepgram emulator on `port`, once it answers; the process and its ws:// URL."""
    argv = [sys.executable, "-m", "ttsfleet", "emulator", "--port", str(port), *args]
    emulator = await spawn(argv, log, {})
    try:
        await wait_answers(f"http://127.0.0.1:{port}/_emulator/healthz", emulator, "the emulator")
    except BaseException:
        await stop(emulator)
        raise
    return emulator, f"ws://127.0.0.1:{port}"
