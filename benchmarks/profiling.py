"""Sampling the gateway with py-spy while a level runs, and naming its hot paths.

py-spy attaches to the running process from outside (we run as root), so the gateway runs unchanged.
Idle time is not sampled, so samples ÷ rate ≈ CPU seconds. Native frames are not unwound: the event
loop's own C work (uvloop, sockets) shows as self time of `Runner.run`. py-spy writes collapsed stacks
(`--format raw`, one `frame;frame;… count` line each), which `hot_paths` folds into self and inclusive
sample shares per function.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from benchmarks import processes

SAMPLE_RATE_HZ = 200
SHELL_SHARE = 0.7


def py_spy() -> str | None:
    beside_python = Path(sys.executable).with_name("py-spy")
    return str(beside_python) if beside_python.exists() else shutil.which("py-spy")


@contextlib.contextmanager
def sampling(pid: int, out_path: Path, duration_s: float) -> Iterator[bool]:
    """Record `pid` for at most `duration_s` into `out_path`; yields False when py-spy is missing."""
    binary = py_spy()
    if binary is None:
        yield False
        return
    options = ["--rate", str(SAMPLE_RATE_HZ), "--format", "raw", "--nonblocking"]
    options += ["--duration", str(max(1, round(duration_s))), "--output", str(out_path)]
    recorder = subprocess.Popen(
        [binary, "record", "--pid", str(pid), *options],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.sched_setaffinity(recorder.pid, {processes.LOADGEN_CPU})
    try:
        yield True
    finally:
        try:
            recorder.wait(duration_s + 30)
        except subprocess.TimeoutExpired:
            recorder.terminate()
            recorder.wait(10)


def _function(frame: str) -> str:
    # py-spy frames read "function (path/to/module.py:line)"; the line is dropped to group per function.
    name, _, where = frame.partition(" (")
    module = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", "lib/python3.11/"):
        if marker in module:
            module = module.split(marker, 1)[1]
    return f"{name} ({module})"


def hot_paths(raw_path: Path, top: int = 20) -> dict[str, object]:
    """Self and inclusive shares (percent of samples) of the busiest functions in a raw py-spy file."""
    self_samples: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw_path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_function(frame) for frame in stack.split(";")[1:]]  # the first entry names the thread
        if not frames:
            continue
        total += count
        self_samples[frames[-1]] += count
        for function in set(frames):
            inclusive[function] += count

    # Frames on (nearly) every stack are the CLI and the event loop's shell: they say nothing.
    shell = {name for name, n in inclusive.items() if n >= SHELL_SHARE * total}
    for name in shell:
        del inclusive[name]

    def shares(counter: Counter[str]) -> list[list[object]]:
        return [[name, round(100 * n / total, 1)] for name, n in counter.most_common(top)] if total else []

    return {
        "samples": total,
        "sample_rate_hz": SAMPLE_RATE_HZ,
        "self_percent": shares(self_samples),
        "inclusive_percent": shares(inclusive),
    }
