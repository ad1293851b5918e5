"""How many paced speak sockets one emulator process sustains on one core, and what synthesis costs.

The emulator is pinned to CPU 0 and the load generator to CPU 1. At each level, every socket speaks a
sentence, waits for Flushed, and speaks again; a level is sustained when the emulator keeps its own
latency model: first byte within 25 ms of the configured 90 ms at p95, and frame gaps within 25 ms of the
paced 25 ms at p95, with no errors.

    python -m benchmarks.emulator_capacity [--levels 50,100,200,400] [--seconds 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import websockets

from benchmarks.loadgen import SENTENCES
from benchmarks.scenarios import percentile

FIRST_BYTE_MS = 90.0
FRAME_MS = 100.0
REALTIME_FACTOR = 4.0
PACED_GAP_MS = FRAME_MS / REALTIME_FACTOR
TOLERANCE_MS = 25.0


@dataclass
class LevelResult:
    sockets: int
    utterances: int = 0
    errors: int = 0
    first_byte_ms: list[float] = field(default_factory=list)
    gap_ms: list[float] = field(default_factory=list)
    cpu_percent: float = 0.0

    @property
    def sustained(self) -> bool:
        return (
            self.errors == 0
            and percentile(self.first_byte_ms, 0.95) <= FIRST_BYTE_MS + TOLERANCE_MS
            and percentile(self.gap_ms, 0.95) <= PACED_GAP_MS + TOLERANCE_MS
        )

    def summary(self) -> dict[str, float | int | bool]:
        return {
            "sockets": self.sockets,
            "utterances": self.utterances,
            "errors": self.errors,
            "first_byte_ms_p50": round(percentile(self.first_byte_ms, 0.5), 1),
            "first_byte_ms_p95": round(percentile(self.first_byte_ms, 0.95), 1),
            "frame_gap_ms_p95": round(percentile(self.gap_ms, 0.95), 1),
            "emulator_cpu_percent": round(self.cpu_percent, 1),
            "sustained": self.sustained,
        }


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _socket_loop(url: str, index: int, stop_at: float, result: LevelResult) -> None:
    loop = asyncio.get_running_loop()
    try:
        async with websockets.connect(
            url, additional_headers={"Authorization": "Token bench"}, max_size=None, open_timeout=30
        ) as ws:
            await ws.recv()  # Metadata
            turn = index
            while loop.time() < stop_at:
                text = SENTENCES[turn % len(SENTENCES)]
                turn += 1
                await ws.send(json.dumps({"type": "Speak", "text": text}))
                flushed_at = loop.time()
                await ws.send('{"type":"Flush"}')
                last: float | None = None
                while True:
                    async with asyncio.timeout(30):
                        message = await ws.recv()
                    now = loop.time()
                    if isinstance(message, bytes):
                        if last is None:
                            result.first_byte_ms.append((now - flushed_at) * 1000)
                        else:
                            result.gap_ms.append((now - last) * 1000)
                        last = now
                    elif '"Flushed"' in message:
                        break
                result.utterances += 1
    except Exception:
        result.errors += 1


async def _run_level(url: str, sockets: int, seconds: float, pid: int) -> LevelResult:
    result = LevelResult(sockets)
    loop = asyncio.get_running_loop()
    stop_at = loop.time() + seconds
    cpu_before, wall_before = _cpu_seconds(pid), time.monotonic()
    await asyncio.gather(*(_socket_loop(url, i, stop_at, result) for i in range(sockets)))
    result.cpu_percent = 100 * (_cpu_seconds(pid) - cpu_before) / (time.monotonic() - wall_before)
    return result


def _run(coroutine: Coroutine[Any, Any, LevelResult]) -> LevelResult:
    """Run on uvloop when it is installed: the load generator must not be the bottleneck."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def _synthesis_ms_per_sentence() -> float:
    from ttsfleet.emulator.synthesis import Synthesizer

    synthesizer = Synthesizer(cache_entries=0)
    timings = []
    for sentence in SENTENCES * 3:
        started = time.perf_counter()
        synthesizer.synthesize(sentence)
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--levels", default="50,100,200,400")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--port", type=int, default=8977)
    args = parser.parse_args()
    os.sched_setaffinity(0, {1})
    emulator = subprocess.Popen(
        [sys.executable, "-m", "ttsfleet", "emulator", "--port", str(args.port), "--log-level", "WARNING"],
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        os.sched_setaffinity(emulator.pid, {0})
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{args.port}/_emulator/healthz", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)  # waiting for the process to listen, with a deadline
        url = f"ws://127.0.0.1:{args.port}/v1/speak"
        results = []
        for level in (int(n) for n in args.levels.split(",")):
            summary = _run(_run_level(url, level, args.seconds, emulator.pid)).summary()
            results.append(summary)
            print(json.dumps(summary), flush=True)
        sustained = [r["sockets"] for r in results if r["sustained"]]
        report = {
            "synthesis_ms_per_sentence_median": round(_synthesis_ms_per_sentence(), 2),
            "levels": results,
            "max_sustained_sockets_one_core": max(sustained) if sustained else 0,
            "latency_model": {
                "first_byte_ms": FIRST_BYTE_MS,
                "frame_ms": FRAME_MS,
                "realtime_factor": REALTIME_FACTOR,
            },
        }
        out = Path("benchmarks/results/emulator_capacity.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
        print(json.dumps({k: v for k, v in report.items() if k != "levels"}))
        return 0
    finally:
        emulator.terminate()
        emulator.wait(10)


if __name__ == "__main__":
    sys.exit(main())
