"""The operator scale benchmark at a small size: it keeps producing the figures `make bench` reports."""

from __future__ import annotations

from benchmarks import operator_scale, reporting


async def test_the_benchmark_measures_convergence_calls_and_memory_of_a_real_operator() -> None:
    figures = await operator_scale.measure(5, probe_interval_s=0.5, idle_ticks=2)
    assert figures["backends"] == 5
    assert 0 < figures["converge_s"] < 60
    # Every first reconcile reads the key and writes its children and status: a handful of calls each.
    assert 5 <= figures["calls_per_create"] <= 40
    assert figures["calls_per_update"] > 0
    assert figures["idle_ticks_counted"] >= 5  # each backend ticked while idle ...
    assert figures["idle_calls_per_tick"] == 0  # ... and read only from the operator's watches
    assert 0 < figures["rss_mib_converged"] <= figures["rss_mib_peak"]


def _verdicts(figures: dict[str, float | int | None]) -> dict[str, str]:
    return {check["figure"]: check["verdict"] for check in reporting.check_targets(figures)}


def test_operator_targets_are_checked_only_at_the_size_they_are_set_for() -> None:
    measured = {"backends": 1000, "converge_s": 28.9, "rss_mib_peak": 231.0}
    checks = _verdicts(reporting.operator_figures(measured))
    assert checks["operator_converge_s_at_1000"] == "PASS"
    assert checks["operator_rss_mb_at_1000"] == "PASS"
    slow = reporting.operator_figures({**measured, "converge_s": 61.0, "rss_mib_peak": 260.0})
    checks = _verdicts(slow)
    assert checks["operator_converge_s_at_1000"] == "FAIL"
    assert checks["operator_rss_mb_at_1000"] == "FAIL"
    smaller = reporting.operator_figures({**measured, "backends": 200})
    assert smaller["operator_converge_s"] == 28.9
    checks = _verdicts(smaller)
    assert checks["operator_converge_s_at_1000"] == "SKIP"
    assert reporting.operator_figures(None) == {}
