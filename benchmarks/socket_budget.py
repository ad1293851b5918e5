"""Three gateways sharing one upstream socket budget through a scale change, with figures.

Gateways run as processes before the emulator (its realistic latency model) and read one shares file,
as pods read the shares ConfigMap; the operator's own division step (`sharing.next_division`, fed the
gateways' /statusz) runs every `--tick-s`. Phases: two gateways, a third joins, the third leaves.
Per phase it prints utterances, failures, REST fallbacks, TTFB and the emulator's peak of open sockets
(reset per phase), which must stay within the budget (PASS/FAIL printed, never asserted).

    python -m benchmarks.socket_budget [--budget 6] [--sessions 8] [--seconds 15] [--tick-s 0.5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from benchmarks import loadgen, processes, scenarios
from ttsfleet.operator import fleet, sharing


def write_division(
    shares: Path,
    previous: sharing.Division | None,
    budget: int,
    pods: list[str],
    statusz: list[dict[str, object]],
) -> sharing.Division:
    """The operator's division step over `pods` (all counted, none leaving) given their /statusz,
    written to `shares` atomically, as the kubelet swaps a ConfigMap volume."""
    division = sharing.next_division(
        previous,
        socket_budget=budget,
        chars_per_minute_per_token=10_000_000,  # per-token rates are not what is measured here
        members=pods,
        present=pods,
        reports=fleet.readable_reports(statusz),
    )
    staging = shares.with_name(".shares.tmp")
    staging.write_text(division.to_json())
    staging.replace(shares)
    return division


class Divider:
    """The operator's division step on a timer, over the gateways running now."""

    def __init__(self, shares: Path, budget: int) -> None:
        self.shares = shares
        self.budget = budget
        self.gateways: list[processes.Server] = []
        self.division: sharing.Division | None = None
        self._stop = threading.Event()

    def tick(self) -> None:
        statusz = []
        for gateway in list(self.gateways):
            with contextlib.suppress(httpx.HTTPError, ValueError):
                statusz.append(httpx.get(gateway.base_url + "/statusz", timeout=2).json())
        pods = [gateway.name for gateway in self.gateways]
        self.division = write_division(self.shares, self.division, self.budget, pods, statusz)

    def run(self, tick_s: float) -> None:
        while not self._stop.wait(tick_s):
            self.tick()

    def stop(self) -> None:
        self._stop.set()


def fallbacks(gateway: processes.Server) -> float:
    """REST fallbacks the gateway counted so far."""
    text = httpx.get(gateway.base_url + "/metrics", timeout=5).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "ttsfleet_fallbacks"
        for sample in family.samples
        if sample.name.endswith("_total")
    )


async def phase(
    name: str, gateways: list[processes.Server], emulator: processes.Server, args: argparse.Namespace
) -> bool:
    """Load every gateway for `args.seconds`; print the figures; True when the budget held."""
    async with httpx.AsyncClient(timeout=5) as client:
        (await client.post(emulator.base_url + "/_emulator/reset")).raise_for_status()
    before = {gateway.name: await asyncio.to_thread(fallbacks, gateway) for gateway in gateways}
    records = await asyncio.gather(
        *(
            loadgen.run_level(
                loadgen.SessionPlan(
                    url=gateway.ws_url, speaking_share=0.5, duration_s=args.seconds, seed=index
                ),
                scenarios.tokens(args.sessions),
            )
            for index, gateway in enumerate(gateways)
        )
    )
    async with httpx.AsyncClient(timeout=5) as client:
        stats = (await client.get(emulator.base_url + "/_emulator/stats")).json()
    ttfb = scenarios.distribution([ms for record in records for ms in record.ttfb_ms])
    after = {gateway.name: await asyncio.to_thread(fallbacks, gateway) for gateway in gateways}
    fell_back = sum(after[name] - before[name] for name in after)
    peak = int(stats["peak_open_sockets"])
    held = peak <= args.budget
    print(
        f"{name:28} {len(gateways)} gateways x {args.sessions} sessions: "
        f"{sum(r.utterances for r in records)} utterances, {sum(r.errors for r in records)} failed, "
        f"{fell_back:.0f} REST fallbacks ({stats['rest_requests_total']} REST requests upstream), "
        f"ttfb p50/p95 {ttfb['p50']}/{ttfb['p95']} ms, peak upstream sockets {peak} of {args.budget} "
        f"[{'PASS' if held else 'FAIL'}]",
        flush=True,
    )
    return held


@contextlib.contextmanager
def budgeted(
    workdir: Path, emulator: processes.Server, shares: Path, name: str, sessions: int
) -> Iterator[processes.Server]:
    settings = {
        "TTSFLEET_CACHE__ENABLED": "false",  # every utterance goes upstream: the loop repeats sentences
        "TTSFLEET_SHARES__FILE": str(shares),
        "TTSFLEET_SHARES__REQUIRED": "true",
        "TTSFLEET_CREDENTIALS__POLL_INTERVAL_S": "0.2",
    }
    with processes.gateway(
        workdir / name, emulator, scenarios.tokens(sessions), settings, name, "/livez"
    ) as server:
        yield server


async def wait_ready(gateway: processes.Server, deadline_s: float = 30.0) -> None:
    """Until the gateway holds its share and is ready (a blocking poll in a thread, with a deadline)."""

    def ready() -> None:
        deadline = time.monotonic() + deadline_s
        while httpx.get(gateway.base_url + "/readyz", timeout=2).status_code != 200:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{gateway.name} not ready in {deadline_s} s; see {gateway.log_path}")
            time.sleep(0.1)  # the poll step, bounded by the deadline

    await asyncio.to_thread(ready)


async def main(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="ttsfleet-budget-") as tmp, contextlib.ExitStack() as stack:
        workdir = Path(tmp)
        shares = workdir / "shares.json"
        emulator = stack.enter_context(processes.emulator(workdir))
        divider = Divider(shares, args.budget)
        timer = threading.Thread(target=divider.run, args=(args.tick_s,), name="divider", daemon=True)
        timer.start()
        stack.callback(divider.stop)
        a = stack.enter_context(budgeted(workdir, emulator, shares, "pod-a", args.sessions))
        b = stack.enter_context(budgeted(workdir, emulator, shares, "pod-b", args.sessions))
        divider.gateways = [a, b]
        await asyncio.gather(wait_ready(a), wait_ready(b))
        held = [await phase("two pods", [a, b], emulator, args)]
        with budgeted(workdir, emulator, shares, "pod-c", args.sessions) as c:
            divider.gateways = [a, b, c]
            joined = asyncio.create_task(phase("third pod joins (re-divided)", [a, b], emulator, args))
            await wait_ready(c)
            held.append(await joined)
            held.append(await phase("three pods", [a, b, c], emulator, args))
        divider.gateways = [a, b]  # as the operator does once the pod object is gone (its process exited)
        held.append(await phase("third pod gone", [a, b], emulator, args))
        print(f"budget held in every phase: {'PASS' if all(held) else 'FAIL'}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--budget", type=int, default=6)
    parser.add_argument("--sessions", type=int, default=8, help="client sessions per gateway")
    parser.add_argument("--seconds", type=float, default=15.0, help="load per phase")
    parser.add_argument("--tick-s", type=float, default=0.5, help="division interval (the probe's)")
    raise SystemExit(asyncio.run(main(parser.parse_args())))
