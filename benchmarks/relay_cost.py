"""What relaying one audio frame costs the gateway, against nginx relaying the same audio in the same run.

    python -m benchmarks.relay_cost [--sessions 16] [--utterances 12] [--rounds 3] [--realtime-factor 8]
                                    [--out DIR]

One emulator streams 100 ms frames (linear16, 24 kHz: 4,800 bytes) at eight times real time (by default)
with no first-byte delay. Each round runs three proxies in turn before it: nginx (the baseline), the
gateway to clients that decline compression, and the gateway to clients that offer permessage-deflate
(websockets' default, and so that of many Deepgram clients). Every session speaks the same two sentences
back to back; the proxy's CPU over a measured pass, after a warm-up pass, is divided by the frames the
clients received; each utterance's time from its Flush to its first audio gives TTFB, and the gateway's
p50 and p95 less nginx's of the same round its added TTFB. The figure is all-in (per-utterance work and
upstream handshakes included), so it is a cost per frame of speech, not of the frame path alone. Rounds
alternate the proxies so that a machine's drift falls on all three.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import websockets

from benchmarks import processes
from benchmarks.scenarios import percentile, tokens

# Eight times real time by default: frames come in bursts, which a run of seconds measures well. At
# `--realtime-factor 1` each frame arrives on its own, as at a live pod, and wakes the proxy by itself.
DEFAULT_REALTIME_FACTOR = 8.0


def emulator_options(realtime_factor: float) -> tuple[str, ...]:
    return ("--frame-ms", "100", "--realtime-factor", f"{realtime_factor:g}", "--first-byte-ms", "0")


TEXT = "A sentence long enough to make a good number of audio frames for the relay to carry. " * 2
SETTINGS = {
    "TTSFLEET_CACHE__ENABLED": "false",  # every utterance goes upstream
    "TTSFLEET_POOL__MAX_SOCKETS": "300",
    "TTSFLEET_LOGGING__LEVEL": "INFO",
}
Proxy = Literal["nginx", "gateway", "gateway_deflate_client"]
PROXIES: tuple[Proxy, ...] = ("nginx", "gateway", "gateway_deflate_client")


@dataclass
class Pass:
    frames: int = 0
    utterances: int = 0
    ttfb_ms: list[float] = field(default_factory=list)  # Flush sent → first audio, per utterance


@dataclass(frozen=True)
class Measured:
    proxy: Proxy
    frames: int
    utterances: int
    cpu_s: float
    wall_s: float
    ttfb_p50_ms: float
    ttfb_p95_ms: float

    @property
    def us_per_frame(self) -> float:
        return self.cpu_s / self.frames * 1e6


async def _session(url: str, token: str, utterances: int, deflate: bool, into: Pass) -> None:
    async with websockets.connect(
        url,
        additional_headers={"Authorization": f"Token {token}"},
        max_size=None,
        compression="deflate" if deflate else None,
        open_timeout=30,
    ) as ws:
        await ws.recv()  # Metadata
        for _ in range(utterances):
            await ws.send(json.dumps({"type": "Speak", "text": TEXT}))
            await ws.send(json.dumps({"type": "Flush"}))
            flushed_at, first = time.perf_counter(), True
            while True:
                async with asyncio.timeout(30):
                    message = await ws.recv()
                if isinstance(message, bytes):
                    if first:
                        into.ttfb_ms.append((time.perf_counter() - flushed_at) * 1000)
                        first = False
                    into.frames += 1
                elif json.loads(message)["type"] == "Flushed":
                    into.utterances += 1
                    break


async def _measure(proxy: Proxy, server: processes.Server, sessions: int, utterances: int) -> Measured:
    url = f"{server.ws_url}?encoding=linear16&sample_rate=24000"
    names = tokens(2 * sessions)  # the warm-up's tokens differ: per-token budgets never bind

    async def one_pass(offset: int, into: Pass) -> None:
        deflate = proxy == "gateway_deflate_client"
        await asyncio.gather(
            *(_session(url, names[offset + i], utterances, deflate, into) for i in range(sessions))
        )

    await one_pass(sessions, Pass())
    measured = Pass()
    cpu_before, began = processes.cpu_seconds(server.pid), time.perf_counter()
    await one_pass(0, measured)
    cpu_s, wall_s = processes.cpu_seconds(server.pid) - cpu_before, time.perf_counter() - began
    p50, p95 = (percentile(measured.ttfb_ms, q) for q in (0.5, 0.95))
    return Measured(proxy, measured.frames, measured.utterances, cpu_s, wall_s, p50, p95)


@contextlib.contextmanager
def _proxy(
    proxy: Proxy, workdir: Path, emulator: processes.Server, sessions: int
) -> Iterator[processes.Server]:
    if proxy == "nginx":
        with processes.nginx(workdir / proxy, emulator) as server:
            yield server
    else:
        with processes.gateway(workdir / proxy, emulator, tokens(2 * sessions), SETTINGS) as server:
            yield server


async def run(
    sessions: int,
    utterances: int,
    rounds: int,
    workdir: Path,
    realtime_factor: float = DEFAULT_REALTIME_FACTOR,
) -> list[Measured]:
    results: list[Measured] = []
    with processes.emulator(workdir, emulator_options(realtime_factor)) as emulator:
        for round_index in range(rounds):
            order = PROXIES if round_index % 2 == 0 else tuple(reversed(PROXIES))
            for proxy in order:
                with _proxy(proxy, workdir / f"round-{round_index}", emulator, sessions) as server:
                    measured = await _measure(proxy, server, sessions, utterances)
                results.append(measured)
                counts = (
                    f"{measured.frames} frames, {measured.utterances} utterances,"
                    f" TTFB p50/p95 {measured.ttfb_p50_ms:.2f}/{measured.ttfb_p95_ms:.2f} ms"
                )
                print(
                    f"round {round_index + 1} {proxy:24} {measured.us_per_frame:7.1f} µs CPU a frame"
                    f" ({counts}, {measured.cpu_s:.2f} s CPU)",
                    flush=True,
                )
    return results


def summarize(results: list[Measured]) -> dict[str, float]:
    """Each proxy's median µs a frame, and each gateway's median ratio to nginx's of the same round."""
    summary: dict[str, float] = {}
    by_proxy = {p: [m for m in results if m.proxy == p] for p in PROXIES}
    for proxy, measured in by_proxy.items():
        summary[f"{proxy}_us_per_frame"] = round(statistics.median(m.us_per_frame for m in measured), 1)
    for proxy in PROXIES[1:]:
        for q in ("p50", "p95"):
            added = [
                getattr(g, f"ttfb_{q}_ms") - getattr(n, f"ttfb_{q}_ms")
                for g, n in zip(by_proxy[proxy], by_proxy["nginx"], strict=True)
            ]
            summary[f"{proxy}_added_ttfb_{q}_ms"] = round(statistics.median(added), 2)
        ratios = [
            g.us_per_frame / n.us_per_frame for g, n in zip(by_proxy[proxy], by_proxy["nginx"], strict=True)
        ]
        summary[f"{proxy}_vs_nginx"] = round(statistics.median(ratios), 2)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=16)
    parser.add_argument(
        "--utterances", type=int, default=12, help="per session and pass (≤ 14: client budget)"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--realtime-factor", type=float, default=DEFAULT_REALTIME_FACTOR)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/relay-cost"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = asyncio.run(
        run(args.sessions, args.utterances, args.rounds, args.out.resolve(), args.realtime_factor)
    )
    summary = summarize(results)
    for key, value in summary.items():
        print(f"  {key} = {value}")
    report = {
        "command": " ".join(["python -m benchmarks.relay_cost", *sys.argv[1:]]),
        "summary": summary,
        "runs": [asdict(m) | {"us_per_frame": round(m.us_per_frame, 1)} for m in results],
    }
    (args.out / "relay-cost.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
