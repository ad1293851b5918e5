"""The proxy's CPU once every session is connected, and what each connect cost, from a level's marks."""

from __future__ import annotations

import pytest

from benchmarks import loadgen
from benchmarks.scenarios import RAMP_S, LevelResult

MINUTE_OF_AUDIO = int(loadgen.AUDIO_BYTES_PER_S * 60)


def _level(cpu_s: float, at_ramp_s: float | None, at_stop_s: float | None) -> LevelResult:
    """1,000 sessions for 30 s: a minute of audio begun in the ramp, four after it, one after the stop."""
    record = loadgen.LevelRecord(sessions=1000)
    for started, size in ((1.0, MINUTE_OF_AUDIO), (RAMP_S, 4 * MINUTE_OF_AUDIO), (30.5, MINUTE_OF_AUDIO)):
        record.utterances += 1
        record.ttfb_ms.append(90.0)
        record.utterance_ms.append(500.0)
        record.started_s.append(started)
        record.audio_bytes_each.append(size)
        record.audio_bytes += size
    return LevelResult(
        "gateway_warm",
        0.1,
        30.0,
        record,
        proxy_cpu_s=cpu_s,
        proxy_cpu_at_ramp_s=at_ramp_s,
        proxy_cpu_at_stop_s=at_stop_s,
    )


def test_steady_cpu_counts_only_the_audio_begun_between_the_ramp_and_the_stop() -> None:
    level = _level(cpu_s=2.5, at_ramp_s=1.1, at_stop_s=2.3)
    assert level.steady_audio_minutes == pytest.approx(4.0)
    assert level.steady_cpu_per_audio_minute() == pytest.approx(0.3)
    # The whole level's figure (rounded to 4 places) spreads the connects over all of its audio.
    assert level.summary()["proxy_cpu_s_per_audio_minute"] == pytest.approx(2.5 / 6, abs=1e-4)


def test_the_ramp_beyond_its_own_audio_is_what_the_connects_cost() -> None:
    level = _level(cpu_s=2.5, at_ramp_s=1.1, at_stop_s=2.3)
    # 1.1 s in the ramp, of which its minute of audio at the steady 0.3 s: 0.8 s for 1,000 connects.
    assert level.connect_cpu_ms_per_session() == pytest.approx(0.8)


def test_a_level_without_marks_reports_neither() -> None:
    level = _level(cpu_s=2.5, at_ramp_s=None, at_stop_s=None)
    assert level.steady_cpu_per_audio_minute() is None
    assert level.connect_cpu_ms_per_session() is None
    assert level.summary()["proxy_connect_cpu_ms_per_session"] is None
