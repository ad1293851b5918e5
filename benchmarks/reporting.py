"""From level results to `latest.json`, the issue's targets (PASS/FAIL), a markdown table and TTFB plots.

Pure but for the files it writes: figures are computed from the summaries of one run, so every ratio
compares scenarios measured side by side. Ratios use the 200-session level (present in quick and full
runs); the 500-session targets are SKIP when the run had no 500 level.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.scenarios import LevelResult

REFERENCE_SESSIONS = 200
LARGE_SESSIONS = 500
SCALE_SESSIONS = (500, 1000, 2000)  # added TTFB reported at each; one pod's targets at 1,000
POD_SESSIONS = 1000
# One pod serves a level while warm sessions' added TTFB stays within these (the issue's bounds).
SERVES_P95_MS = 1.0
SERVES_P99_MS = 5.0

Summaries = Mapping[str, Mapping[int, Mapping[str, Any]]]


@dataclass(frozen=True, slots=True)
class Target:
    """One of the issue's targets, checked against a figure of this run."""

    name: str
    figure: str
    limit: float
    at_most: bool  # True: figure ≤ limit passes; False: figure ≥ limit passes

    def verdict(self, value: float | None) -> str:
        if value is None or math.isnan(value):
            return "SKIP"
        passed = value <= self.limit if self.at_most else value >= self.limit
        return "PASS" if passed else "FAIL"


TARGETS = (
    Target("added TTFB p50 at 200 sessions ≤ 2 ms", "added_ttfb_p50_ms", 2.0, True),
    Target("added TTFB p95 at 200 sessions ≤ 5 ms", "added_ttfb_p95_ms", 5.0, True),
    Target("cold TTFB ratio ≤ 0.5", "cold_ttfb_ratio", 0.5, True),
    Target("cache-hit TTFB p95 ≤ 5 ms", "cache_hit_ttfb_p95_ms", 5.0, True),
    Target("no errors at 500 sessions", "errors_at_500", 0, True),
    Target("added frame gap p95 at 500 sessions ≤ 10 ms", "added_frame_gap_p95_ms_at_500", 10.0, True),
    Target("gateway RSS at 500 sessions ≤ 200 MB", "rss_mb_at_500", 200.0, True),
    Target("upstream socket ratio ≥ 5", "upstream_socket_ratio", 5.0, False),
    Target("added TTFB p95 at 1000 sessions ≤ 1 ms", "added_ttfb_p95_ms_at_1000", SERVES_P95_MS, True),
    Target("added TTFB p99 at 1000 sessions ≤ 5 ms", "added_ttfb_p99_ms_at_1000", SERVES_P99_MS, True),
    Target("no errors at 1000 sessions", "errors_at_1000", 0, True),
    Target("gateway RSS at 1000 sessions ≤ 200 MB", "rss_mb_at_1000", 200.0, True),
    Target("sockets ≤ 1.1 x the Flush floor at 1000 sessions", "sockets_over_floor_at_1000", 1.1, True),
    Target("added TTFB p99 at 2000 sessions ≤ 5 ms", "added_ttfb_p99_ms_at_2000", SERVES_P99_MS, True),
    Target(
        "gateway CPU per audio minute ≤ 3 x nginx (1000 sessions)",
        "gateway_cpu_per_audio_minute_vs_nginx_at_1000",
        3.0,
        True,
    ),
    Target("operator converges 1000 backends in ≤ 60 s", "operator_converge_s_at_1000", 60.0, True),
    Target("operator RSS with 1000 backends ≤ 250 MB", "operator_rss_mb_at_1000", 250.0, True),
)
OPERATOR_BACKENDS = 1000  # the size the operator targets are set for; other sizes report, not check


def _get(summaries: Summaries, scenario: str, sessions: int, *path: str) -> float | None:
    node: Any = summaries.get(scenario, {}).get(sessions)
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return float(node) if isinstance(node, int | float) else None


def _difference(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 2)


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else round(a / b, 3)


def headline_figures(summaries: Summaries) -> dict[str, float | int | None]:
    """The issue's top-level figures, from one run's summaries."""
    ref, large = REFERENCE_SESSIONS, LARGE_SESSIONS
    top_level = max((n for n in summaries.get("gateway_warm", {}) if n > 1), default=ref)
    sockets = _get(summaries, "gateway_warm", top_level, "upstream_sockets_max")
    return {
        "added_ttfb_p50_ms": _difference(
            _get(summaries, "gateway_warm", ref, "ttfb_ms", "p50"),
            _get(summaries, "direct_persistent", ref, "ttfb_ms", "p50"),
        ),
        "added_ttfb_p95_ms": _difference(
            _get(summaries, "gateway_warm", ref, "ttfb_ms", "p95"),
            _get(summaries, "direct_persistent", ref, "ttfb_ms", "p95"),
        ),
        "nginx_added_ttfb_p50_ms": _difference(
            _get(summaries, "nginx_proxy", ref, "ttfb_ms", "p50"),
            _get(summaries, "direct_persistent", ref, "ttfb_ms", "p50"),
        ),
        "cold_ttfb_ratio": _ratio(
            _get(summaries, "gateway_cold", ref, "ttfb_ms", "p50"),
            _get(summaries, "direct_cold", ref, "ttfb_ms", "p50"),
        ),
        "cache_hit_ttfb_p95_ms": _get(summaries, "gateway_cache_hit", ref, "ttfb_ms", "p95"),
        "gateway_cpu_per_audio_minute_vs_nginx": _ratio(
            _get(summaries, "gateway_warm", ref, "proxy_cpu_s_per_audio_minute"),
            _get(summaries, "nginx_proxy", ref, "proxy_cpu_s_per_audio_minute"),
        ),
        "gateway_cpu_s_per_audio_minute": _get(
            summaries, "gateway_warm", ref, "proxy_cpu_s_per_audio_minute"
        ),
        "upstream_socket_ratio": _ratio(float(top_level), sockets),
        "upstream_socket_ratio_sessions": top_level,
        "rss_mb_at_500": _get(summaries, "gateway_warm", large, "proxy_rss_peak_mb"),
        "errors_at_500": _get(summaries, "gateway_warm", large, "errors"),
        "added_frame_gap_p95_ms_at_500": _difference(
            _get(summaries, "gateway_warm", large, "frame_gap_ms", "p95"),
            _get(summaries, "direct_persistent", large, "frame_gap_ms", "p95"),
        ),
        "fault_mix_error_share_at_200": _ratio(
            _get(summaries, "gateway_faults", ref, "errors"),
            _get(summaries, "gateway_faults", ref, "utterances"),
        ),
    }


def scale_figures(summaries: Summaries) -> dict[str, float | int | None]:
    """One pod at 500, 1,000 and 2,000 sessions: added TTFB beside direct sockets of the same run (or
    nginx, `baseline_at_N` = index in BASELINES), the sockets against Deepgram's Flush floor, and the
    largest level one pod serves within the bounds (the scale-out point). A level whose emulator fell
    behind its own latency model measures the emulator, so its added TTFB is left out (None) rather
    than blamed on the gateway."""
    figures: dict[str, float | int | None] = {}
    serves: list[int] = []
    for n in SCALE_SESSIONS:
        baseline = _baseline(summaries, n)
        trusted = baseline is not None and _kept_its_model(summaries, "gateway_warm", n)
        for q in ("p50", "p95", "p99"):
            added = _difference(
                _get(summaries, "gateway_warm", n, "ttfb_ms", q), _best_baseline(summaries, n, q)
            )
            figures[f"added_ttfb_{q}_ms_at_{n}"] = added if trusted else None
        figures[f"baseline_at_{n}"] = BASELINES.index(baseline) if baseline else None
        figures[f"emulator_kept_its_model_at_{n}"] = int(trusted)
        sockets = _get(summaries, "gateway_warm", n, "upstream_sockets_max")
        floor = _get(summaries, "gateway_warm", n, "flush_floor_sockets")
        figures[f"sockets_at_{n}"] = sockets
        figures[f"flush_floor_sockets_at_{n}"] = floor
        figures[f"sockets_over_floor_at_{n}"] = _ratio(sockets, floor)
        # What a tail is made of: handshakes utterances waited for, and slow first bytes in the ramp.
        figures[f"handshakes_on_demand_at_{n}"] = _get(summaries, "gateway_warm", n, "handshakes_on_demand")
        figures[f"lease_waits_at_{n}"] = _get(summaries, "gateway_warm", n, "lease_waits")
        figures[f"slow_ttfb_at_{n}"] = _get(summaries, "gateway_warm", n, "slow_ttfb", "count")
        figures[f"slow_ttfb_in_ramp_at_{n}"] = _get(summaries, "gateway_warm", n, "slow_ttfb", "in_ramp")
        p95, p99 = figures[f"added_ttfb_p95_ms_at_{n}"], figures[f"added_ttfb_p99_ms_at_{n}"]
        errors = _get(summaries, "gateway_warm", n, "errors")
        if (
            p95 is not None
            and p99 is not None
            and p95 <= SERVES_P95_MS
            and p99 <= SERVES_P99_MS
            and errors == 0
        ):
            serves.append(n)
    figures["errors_at_1000"] = _get(summaries, "gateway_warm", POD_SESSIONS, "errors")
    figures["rss_mb_at_1000"] = _get(summaries, "gateway_warm", POD_SESSIONS, "proxy_rss_peak_mb")
    figures["rss_mb_at_2000"] = _get(summaries, "gateway_warm", 2000, "proxy_rss_peak_mb")
    figures["gateway_cpu_per_audio_minute_vs_nginx_at_1000"] = _ratio(
        _get(summaries, "gateway_warm", POD_SESSIONS, "proxy_cpu_s_per_audio_minute"),
        _get(summaries, "nginx_proxy", POD_SESSIONS, "proxy_cpu_s_per_audio_minute"),
    )
    # The same once every session is connected, and the connect storm apart: a level of 30 s spreads
    # 1,000 connects over half a minute of audio, where agents stay connected for hours.
    figures["gateway_steady_cpu_per_audio_minute_vs_nginx_at_1000"] = _ratio(
        _get(summaries, "gateway_warm", POD_SESSIONS, "proxy_cpu_s_per_audio_minute_steady"),
        _get(summaries, "nginx_proxy", POD_SESSIONS, "proxy_cpu_s_per_audio_minute_steady"),
    )
    for scenario in ("gateway_warm", "nginx_proxy"):
        figures[f"{scenario}_connect_cpu_ms_per_session_at_1000"] = _get(
            summaries, scenario, POD_SESSIONS, "proxy_connect_cpu_ms_per_session"
        )
    # The largest measured level one pod serves within the bounds: where it should scale out.
    figures["scale_out_sessions"] = max(serves, default=None)
    return figures


# What added TTFB is measured against, in order: direct sockets, else nginx (a plain hop adds ~0.1 ms),
# when the direct level's own 1 socket per session put the emulator behind its latency model.
BASELINES = ("direct_persistent", "nginx_proxy")


def _kept_its_model(summaries: Summaries, scenario: str, sessions: int) -> bool:
    level = summaries.get(scenario, {}).get(sessions)
    return level is not None and bool(level.get("emulator_kept_its_model", True))


def _best_baseline(summaries: Summaries, sessions: int, quantile: str) -> float | None:
    """The lowest `quantile` TTFB of the BASELINES whose emulator kept its model at `sessions`.

    Not the first one alone: a baseline with a tail of its own (a stall of the machine, its one socket
    per session) would flatter the gateway, so each quantile is taken from the best path without one.
    """
    values = [
        value
        for name in BASELINES
        if _kept_its_model(summaries, name, sessions)
        and (value := _get(summaries, name, sessions, "ttfb_ms", quantile)) is not None
    ]
    return min(values, default=None)


def _baseline(summaries: Summaries, sessions: int) -> str | None:
    """The first of BASELINES measured at `sessions` whose emulator kept its latency model."""
    return next((name for name in BASELINES if _kept_its_model(summaries, name, sessions)), None)


def operator_figures(scale: Mapping[str, Any] | None) -> dict[str, float | int | None]:
    """The operator's headline figures from `operator_scale.measure`; targets only at 1000 backends."""
    if not scale:
        return {}
    at_target_size = scale.get("backends") == OPERATOR_BACKENDS
    # Peak RSS (VmHWM) of the operator processes, in MiB: stricter than the figure at any one moment.
    rss = scale.get("rss_mib_peak")
    return {
        "operator_backends": scale.get("backends"),
        "operator_converge_s": scale.get("converge_s"),
        "operator_rss_peak_mb": rss,
        "operator_calls_per_create": scale.get("calls_per_create"),
        "operator_idle_calls_per_backend_hour": scale.get("idle_calls_per_backend_hour_at_10s"),
        "operator_converge_s_at_1000": scale.get("converge_s") if at_target_size else None,
        "operator_rss_mb_at_1000": rss if at_target_size else None,
    }


def check_targets(figures: Mapping[str, float | int | None]) -> list[dict[str, Any]]:
    """PASS, FAIL or SKIP for every target, next to its figure."""
    checks = []
    for target in TARGETS:
        value = figures.get(target.figure)
        number = None if value is None else float(value)
        checks.append(
            {
                "target": target.name,
                "figure": target.figure,
                "value": value,
                "verdict": target.verdict(number),
            }
        )
    return checks


def _cell(value: Any) -> str:
    return "n/a" if value is None else str(value)


def markdown(
    summaries: Summaries, figures: Mapping[str, Any], checks: Sequence[Mapping[str, Any]], header: str
) -> str:
    """The results table, the headline figures and the targets, as markdown."""
    lines = [
        header,
        "",
        "| scenario | sessions | speaking | utterances | errors | TTFB p50 / p95 / p99 (ms) "
        "| frame gap p95 (ms) | upstream sockets | proxy CPU s / audio min | proxy peak RSS (MB) "
        "| emulator CPU | emulator late p99 (ms) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for scenario, levels in summaries.items():
        for sessions, s in sorted(levels.items()):
            ttfb = s["ttfb_ms"]
            lines.append(
                f"| {scenario} | {sessions} | {round(100 * s['speaking_share'])} % "
                f"| {s['utterances']} | {s['errors']} "
                f"| {_cell(ttfb['p50'])} / {_cell(ttfb['p95'])} / {_cell(ttfb['p99'])} "
                f"| {_cell(s['frame_gap_ms']['p95'])} | {s['upstream_sockets_max']} "
                f"| {_cell(s['proxy_cpu_s_per_audio_minute'])} | {_cell(s['proxy_rss_peak_mb'])} "
                f"| {s['emulator_cpu_percent']} % "
                f"| {_cell(s.get('emulator_first_byte_late_ms', {}).get('p99'))}"
                f"{'' if s.get('emulator_kept_its_model', True) else ' (behind its model)'} |"
            )
    lines += ["", "| figure | value |", "|---|---:|"]
    lines += [f"| `{name}` | {_cell(value)} |" for name, value in figures.items()]
    lines += ["", "| target | figure | value | verdict |", "|---|---|---:|:---:|"]
    lines += [f"| {c['target']} | `{c['figure']}` | {_cell(c['value'])} | {c['verdict']} |" for c in checks]
    return "\n".join(lines) + "\n"


def plot_ttfb(results: Sequence[LevelResult], out_dir: Path) -> list[Path]:
    """One PNG per scenario (TTFB CDF per level) and an overview of every scenario at 200 sessions.

    matplotlib is not a dependency of the package; without it no plot is drawn and none is returned.
    """
    try:
        import matplotlib
    except ImportError:
        return []

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    by_scenario: dict[str, list[LevelResult]] = {}
    for result in results:
        by_scenario.setdefault(result.scenario, []).append(result)

    def cdf(axes: Any, values: list[float], label: str) -> None:
        ordered = sorted(max(v, 0.05) for v in values)  # log axis: cache hits can measure 0.0 ms
        if ordered:
            axes.step(
                ordered, [(i + 1) / len(ordered) for i in range(len(ordered))], where="post", label=label
            )

    def finish(axes: Any, title: str, path: Path) -> None:
        axes.set_xscale("log")
        axes.set_xlabel("TTFB (ms, log scale)")
        axes.set_ylabel("share of utterances")
        axes.set_title(title)
        axes.grid(True, which="both", alpha=0.3)
        axes.legend(loc="lower right", fontsize="small")
        axes.figure.tight_layout()
        axes.figure.savefig(path, dpi=90)
        plt.close(axes.figure)
        written.append(path)

    for scenario, levels in by_scenario.items():
        _, axes = plt.subplots(figsize=(6, 3.6))
        for result in levels:
            cdf(axes, result.record.ttfb_ms, f"{result.record.sessions} sessions")
        finish(axes, f"TTFB: {scenario}", out_dir / f"ttfb-{scenario}.png")
    _, axes = plt.subplots(figsize=(7, 4.2))
    for scenario, levels in by_scenario.items():
        for result in levels:
            if result.record.sessions == REFERENCE_SESSIONS:
                cdf(axes, result.record.ttfb_ms, scenario)
    finish(axes, f"TTFB at {REFERENCE_SESSIONS} sessions, every scenario", out_dir / "ttfb-overview.png")
    return written
