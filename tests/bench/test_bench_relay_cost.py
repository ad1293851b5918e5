"""The relay-cost benchmark's summary: medians per proxy, and each gateway's ratio to nginx's own round."""

from __future__ import annotations

from benchmarks.relay_cost import Measured, summarize


def _round(nginx_cpu: float, gateway_cpu: float, deflate_cpu: float) -> list[Measured]:
    return [
        Measured("nginx", 1000, 10, nginx_cpu, 10.0),
        Measured("gateway", 1000, 10, gateway_cpu, 10.0),
        Measured("gateway_deflate_client", 1000, 10, deflate_cpu, 10.0),
    ]


def test_ratios_are_taken_within_a_round_before_the_median() -> None:
    # A slow round slows every proxy alike: the ratio of medians would mix rounds, the median of ratios not.
    results = [*_round(0.04, 0.12, 0.36), *_round(0.08, 0.20, 0.24), *_round(0.05, 0.15, 0.15)]
    summary = summarize(results)
    assert summary["nginx_us_per_frame"] == 50.0
    assert summary["gateway_us_per_frame"] == 150.0
    assert summary["gateway_vs_nginx"] == 3.0
    assert summary["gateway_deflate_client_vs_nginx"] == 3.0
