"""The relay-cost benchmark's summary: medians per proxy, and each gateway's ratio to nginx's own round."""

from __future__ import annotations

from benchmarks.relay_cost import Measured, emulator_options, summarize


def _round(
    nginx_cpu: float, gateway_cpu: float, deflate_cpu: float, ttfb_ms: tuple[float, float] = (2.0, 3.0)
) -> list[Measured]:
    gateway_ttfb = (ttfb_ms[0] + 1.0, ttfb_ms[1] + 2.0)
    return [
        Measured("nginx", 1000, 10, nginx_cpu, 10.0, *ttfb_ms),
        Measured("gateway", 1000, 10, gateway_cpu, 10.0, *gateway_ttfb),
        Measured("gateway_deflate_client", 1000, 10, deflate_cpu, 10.0, *gateway_ttfb),
    ]


def test_ratios_are_taken_within_a_round_before_the_median() -> None:
    # A slow round slows every proxy alike: the ratio of medians would mix rounds, the median of ratios not.
    results = [*_round(0.04, 0.12, 0.36), *_round(0.08, 0.20, 0.24), *_round(0.05, 0.15, 0.15)]
    summary = summarize(results)
    assert summary["nginx_us_per_frame"] == 50.0
    assert summary["gateway_us_per_frame"] == 150.0
    assert summary["gateway_vs_nginx"] == 3.0
    assert summary["gateway_deflate_client_vs_nginx"] == 3.0


def test_added_ttfb_is_the_gateways_less_nginxs_of_the_same_round() -> None:
    # A round where everything was slow adds to nginx's figure as much as to the gateway's.
    results = [*_round(0.04, 0.12, 0.12), *_round(0.04, 0.12, 0.12, (20.0, 40.0)), *_round(0.04, 0.12, 0.12)]
    summary = summarize(results)
    assert summary["gateway_added_ttfb_p50_ms"] == 1.0
    assert summary["gateway_added_ttfb_p95_ms"] == 2.0


def test_the_emulator_paces_frames_at_the_factor_asked() -> None:
    assert emulator_options(8.0)[2:4] == ("--realtime-factor", "8")
    assert emulator_options(1.0)[2:4] == ("--realtime-factor", "1")  # each frame on its own, as live
