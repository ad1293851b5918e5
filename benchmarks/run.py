"""`make bench` / `make bench-quick`: every benchmark, side by side in one run, with the issue's targets.

Writes `benchmarks/results/latest.json`, `latest.md` and `ttfb-*.png` (quick runs: under
`benchmarks/results/quick/`); prints each level as it ends and
PASS/FAIL/SKIP per target next to its figure (targets are reported, never asserted: the exit code is 0
whenever the run itself worked). The emulator, the gateway and nginx run on CPU 0, this load generator
(uvloop) on CPU 1.

    python -m benchmarks.run [--quick] [--scenarios a,b] [--levels n=s,…] [--profile [--profile-sessions N]]
                             [--skip-capacity] [--skip-operator]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx

from benchmarks import emulator_capacity, operator_scale, processes, profiling, reporting, scenarios
from benchmarks.scenarios import LevelResult

RESULTS_DIR = Path(__file__).resolve().parent / "results"
# Sessions → seconds of load per level. Level 1 speaks back to back; its length is capped by the
# per-session utterance count (18, under Deepgram's 20 flushes a minute on a direct socket).
QUICK_LEVELS = {1: 4.0, 50: 6.0, 200: 8.0}
FULL_LEVELS = {1: 12.0, 50: 20.0, 200: 30.0, 500: 30.0}
# Full runs only, and only for the scenarios the scale targets compare (`Scenario.scale`): one pod at
# 1,000 and 2,000 sessions. 40 s spans two conversation cycles, so sockets spend their Flush budgets.
SCALE_LEVELS = {1000: 40.0, 2000: 40.0}
PROFILE_SESSIONS = 200
PROFILE_SECONDS = 20.0
# TTSBackends for the operator scale phase: the size in full runs, a fifth of it in quick ones.
OPERATOR_BACKENDS = {"full": 1000, "quick": 200}
OPERATOR_IDLE_TICKS = {"full": 10, "quick": 3}

T = TypeVar("T")


def _run_on_uvloop(coroutine: Coroutine[Any, Any, T]) -> T:
    """The load generator runs on uvloop, so that it is never the bottleneck."""
    import uvloop

    return uvloop.run(coroutine)


def _machine() -> dict[str, Any]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.machine(),
    )
    nginx = subprocess.run([processes.ensure_nginx(), "-v"], capture_output=True, text=True, check=False)
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "nginx": nginx.stderr.strip().removeprefix("nginx version: "),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "pinning": {
            "emulator, gateway, nginx": processes.SERVER_CPU,
            "load generator": processes.LOADGEN_CPU,
        },
    }


async def _profile_gateway(
    emulator: processes.Server, workdir: Path, client: httpx.AsyncClient, out_dir: Path, sessions: int
) -> dict[str, Any]:
    """An extra gateway_warm level at `sessions` with py-spy attached; its figures stay out of the table."""
    scenario = next(s for s in scenarios.SCENARIOS if s.name == "gateway_warm")
    raw_path = out_dir / f"profile-gateway-warm-{sessions}.txt"
    with scenarios.proxy_for(scenario, emulator, workdir / "profile", sessions) as proxy:
        assert proxy is not None
        await scenarios.wait_for_warm_pool(client, proxy)
        with profiling.sampling(proxy.pid, raw_path, PROFILE_SECONDS) as sampled:
            result = await scenarios.run_level(scenario, emulator, proxy, sessions, PROFILE_SECONDS, client)
    if not sampled or not raw_path.exists():
        return {"error": "py-spy is not installed (pip install py-spy)"}
    return {
        "scenario": "gateway_warm",
        "sessions": sessions,
        "raw_stacks": raw_path.name,
        "level_while_sampled": result.summary(),
        **profiling.hot_paths(raw_path),
    }


async def _run_all(
    chosen: list[scenarios.Scenario],
    levels: Mapping[int, float],
    scale_levels: Mapping[int, float],
    profile_sessions: int | None,
    out_dir: Path,
) -> tuple[list[LevelResult], dict[str, Any], dict[str, Any] | None]:
    with tempfile.TemporaryDirectory(prefix="ttsfleet-bench-") as tmp:
        workdir = Path(tmp)
        with processes.emulator(workdir) as emulator:
            async with httpx.AsyncClient() as client:
                health = (await client.get(emulator.base_url + "/_emulator/healthz")).json()
                results: list[LevelResult] = []
                for scenario in chosen:
                    its_levels = {**levels, **scale_levels} if scenario.scale else levels
                    results += await scenarios.run_scenario(scenario, emulator, its_levels, workdir, client)
                profiled = (
                    await _profile_gateway(emulator, workdir, client, out_dir, profile_sessions)
                    if profile_sessions
                    else None
                )
    return results, health, profiled


def _operator_scale(mode: str) -> dict[str, Any]:
    """The operator scale phases (`operator_scale.py`), with every CPU: the API and operator share them."""
    os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    try:
        return asyncio.run(
            operator_scale.measure(
                OPERATOR_BACKENDS[mode], probe_interval_s=1.0, idle_ticks=OPERATOR_IDLE_TICKS[mode]
            )
        )
    finally:
        os.sched_setaffinity(0, {processes.LOADGEN_CPU})


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="levels 1, 50, 200 and short runs (under 3 minutes)"
    )
    parser.add_argument("--scenarios", default="", help="comma-separated scenario names (default: all)")
    parser.add_argument("--levels", default="", help="override: sessions=seconds,… e.g. 1=4,50=6")
    parser.add_argument(
        "--profile", action="store_true", help="also sample the gateway with py-spy at 200 sessions"
    )
    parser.add_argument(
        "--profile-sessions", type=int, default=PROFILE_SESSIONS, help="sessions of the profiled level"
    )
    parser.add_argument("--skip-capacity", action="store_true", help="skip the emulator capacity benchmark")
    parser.add_argument("--skip-operator", action="store_true", help="skip the operator scale benchmark")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="where results go")
    return parser.parse_args()


def main() -> int:
    args = _parse_args()
    started = time.monotonic()
    os.sched_setaffinity(0, {processes.LOADGEN_CPU})
    # Quick runs never overwrite the full run's files, which docs/performance.md quotes.
    out_dir: Path = args.out / "quick" if args.quick else args.out
    out_dir.mkdir(parents=True, exist_ok=True)
    levels = QUICK_LEVELS if args.quick else FULL_LEVELS
    if args.levels:
        levels = {int(n): float(s) for n, s in (pair.split("=") for pair in args.levels.split(","))}
    names = [n for n in args.scenarios.split(",") if n]
    unknown = set(names) - {s.name for s in scenarios.SCENARIOS}
    if unknown:
        print(f"unknown scenarios: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    chosen = [s for s in scenarios.SCENARIOS if s.name in names or (not names and not s.by_name_only)]
    scale_levels = SCALE_LEVELS if not args.quick and not args.levels else {}

    if not args.quick and not args.skip_capacity:
        saved_argv = sys.argv
        sys.argv = ["emulator_capacity", "--levels", "50,100,150,200,300", "--seconds", "8"]
        try:
            emulator_capacity.main()
        finally:
            sys.argv = saved_argv

    machine = _machine()
    results, health, profiled = _run_on_uvloop(
        _run_all(chosen, levels, scale_levels, args.profile_sessions if args.profile else None, out_dir)
    )
    summaries: dict[str, dict[int, dict[str, Any]]] = {}
    for result in results:
        summaries.setdefault(result.scenario, {})[result.record.sessions] = result.summary()
    scale = None if args.skip_operator else _operator_scale("quick" if args.quick else "full")
    figures = {
        **reporting.headline_figures(summaries),
        **reporting.scale_figures(summaries),
        **reporting.operator_figures(scale),
    }
    checks = reporting.check_targets(figures)
    command = "make bench-quick" if args.quick else "make bench"
    report: dict[str, Any] = {
        "generated_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else "full",
        "command": command,
        "machine": machine,
        "latency_model": health.get("latency"),
        "levels_seconds": {str(n): s for n, s in sorted(levels.items())},
        **figures,
        "targets": checks,
        "scenarios": {
            name: {str(n): s for n, s in sorted(by_level.items())} for name, by_level in summaries.items()
        },
    }
    if profiled is not None:
        report["profile"] = profiled
    if scale is not None:
        report["operator_scale"] = scale
    report["wall_s"] = round(time.monotonic() - started, 1)
    (out_dir / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    mode, wall_s = report["mode"], report["wall_s"]
    header = f"Generated {report['generated_at']} by `{command}` ({mode} mode, wall {wall_s} s)."
    (out_dir / "latest.md").write_text(reporting.markdown(summaries, figures, checks, header))
    plots = reporting.plot_ttfb(results, out_dir)
    if not plots:
        print("matplotlib is not installed: no TTFB plots (pip install matplotlib)")

    print()
    for check in checks:
        print(f"{check['verdict']:4}  {check['target']}: {check['value']}")
    for name, value in figures.items():
        print(f"      {name} = {value}")
    for n in reporting.SCALE_SESSIONS:
        if figures.get(f"sockets_at_{n}") is not None:
            print(
                f"      {n} sessions: {figures[f'sockets_at_{n}']:g} upstream sockets against Deepgram's"
                f" Flush floor of {figures[f'flush_floor_sockets_at_{n}']:g} (target within 10 %)"
            )
    print(
        f"wrote {out_dir / 'latest.json'}, {out_dir / 'latest.md'} and {len(plots)} plots"
        f" in {report['wall_s']} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
