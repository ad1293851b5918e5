"""Added TTFB is measured against the best path without a gateway: a baseline's own tail never flatters."""

from __future__ import annotations

from typing import Any

from benchmarks.reporting import scale_figures


def _level(p50: float, p95: float, p99: float, kept_its_model: bool = True) -> dict[str, Any]:
    return {"ttfb_ms": {"p50": p50, "p95": p95, "p99": p99}, "emulator_kept_its_model": kept_its_model}


def test_each_quantile_is_measured_against_the_lower_of_the_trusted_baselines() -> None:
    summaries = {
        "direct_persistent": {1000: _level(90.6, 91.6, 127.5)},  # a stall of its own at one second
        "nginx_proxy": {1000: _level(90.8, 91.7, 93.7)},
        "gateway_warm": {1000: _level(92.7, 95.4, 102.5)},
    }
    figures = scale_figures(summaries)
    assert figures["added_ttfb_p50_ms_at_1000"] == 2.1
    assert figures["added_ttfb_p99_ms_at_1000"] == 8.8  # not -25 against direct's tail


def test_a_baseline_whose_emulator_fell_behind_is_not_used() -> None:
    summaries = {
        "direct_persistent": {1000: _level(90.0, 90.0, 90.0, kept_its_model=False)},
        "nginx_proxy": {1000: _level(91.0, 92.0, 94.0)},
        "gateway_warm": {1000: _level(92.0, 94.0, 97.0)},
    }
    assert scale_figures(summaries)["added_ttfb_p99_ms_at_1000"] == 3.0
