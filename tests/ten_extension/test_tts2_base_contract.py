"""What TEN's TTS2 base class expects beyond audio: usage metrics, update_configs, dumps on disk as
audio arrives, and no secret in any log line."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from ten_runtime import StatusCode

from ten_extension.deepgram_tts2_python import dumping
from tests.ten_extension.harness import Harness
from tests.ten_extension.targets import Target

METADATA = {"session_id": "session-1", "turn_id": 1}
RATE = 16000


def usage_reports(tts: Harness) -> list[dict[str, Any]]:
    return [m["metrics"] for m in tts.data("metrics") if "recv_audio_duration" in m["metrics"]]


async def test_usage_metrics_count_characters_in_and_audio_out_per_request_and_in_total(
    emulator_target: Target,
) -> None:
    first, second = "The first request has some words.", "And the second has a few more words."
    async with Harness(emulator_target.properties()) as tts:
        tts.text("use-1", first, metadata=METADATA)
        tts.text("use-2", second, metadata=METADATA)
        views = await tts.wait_ends(2)
        await tts.wait_for(lambda: len(usage_reports(tts)) >= 2, "a usage report per request")
    reports = usage_reports(tts)
    assert len(reports) == 3  # one per request, one more as the extension stops
    for report, view, text in zip(reports[:2], views, (first, second), strict=True):
        assert report["input_characters"] == report["output_characters"] == len(text)
        assert report["recv_audio_duration"] == pytest.approx(view.duration_ms(RATE), abs=1)
    assert reports[-1]["total_input_characters"] == len(first) + len(second)
    assert reports[-1]["total_recv_audio_duration"] == pytest.approx(
        sum(view.duration_ms(RATE) for view in views), abs=1
    )


async def test_update_configs_takes_effect_from_the_next_request_and_a_bad_one_changes_nothing(
    emulator_target: Target,
) -> None:
    async with Harness(emulator_target.properties()) as tts:
        tts.text("cfg-1", "Spoken at sixteen kilohertz.", metadata=METADATA)
        await tts.wait_ends(1)
        good = await tts.update_configs({"params": {"sample_rate": 8000}})
        tts.text("cfg-2", "Spoken at eight kilohertz.", metadata=METADATA)
        await tts.wait_ends(2)
        bad = await tts.update_configs({"params": {"sample_rate": 44100}})
        tts.text("cfg-3", "Still at eight kilohertz.", metadata=METADATA)
        views = await tts.wait_ends(3)
    assert good.get_status_code() == StatusCode.OK
    assert bad.get_status_code() == StatusCode.ERROR
    message, _ = bad.get_property_string("message")
    assert "sample_rate" in message
    rates = [{frame.frame.sample_rate for frame in view.frames if frame.frame} for view in views]
    assert rates == [{16000}, {8000}, {8000}]
    assert all(view.end is not None and view.end["reason"] == 1 for view in views)


async def test_update_configs_during_a_request_leaves_that_request_as_it_began(
    emulator_target: Target,
) -> None:
    long_text = " ".join(f"Sentence {n} keeps this request speaking." for n in range(4))
    properties = emulator_target.properties(params={"emulator_fault": "slow:frame_delay_ms=30"})
    async with Harness(properties) as tts:
        tts.text("mid-1", long_text, metadata=METADATA)
        await tts.wait_for(lambda: "frame" in tts.names(), "the first frame")
        result = await tts.update_configs({"params": {"sample_rate": 8000}})
        assert not tts.data("tts_audio_end"), "the request ended before the update: nothing was tested"
        tts.text("mid-2", "After the update.", metadata=METADATA)
        views = await tts.wait_ends(2, deadline_s=60.0)
    assert result.get_status_code() == StatusCode.OK
    rates = [{frame.frame.sample_rate for frame in view.frames if frame.frame} for view in views]
    assert rates == [{16000}, {8000}]
    assert [view.end["reason"] for view in views if view.end] == [1, 1]


async def test_a_dump_is_written_while_the_request_still_speaks(
    emulator_target: Target, tmp_path: Path
) -> None:
    long_text = " ".join(f"Sentence {n} of a request that takes a while to say." for n in range(6))
    # Frames paced 50 ms apart: the request speaks for seconds.
    properties = emulator_target.properties(
        dump=True, dump_path=str(tmp_path), params={"emulator_fault": "slow:frame_delay_ms=50"}
    )
    dump = dumping.dump_file(str(tmp_path), "dump-1")
    async with Harness(properties) as tts:
        tts.text("dump-1", long_text, metadata=METADATA)
        await tts.wait_for(
            lambda: dump.exists() and dump.stat().st_size >= 6400 and not tts.data("tts_audio_end"),
            "audio on disk before the request ends",
        )
        (view,) = await tts.wait_ends(1, deadline_s=60.0)
    assert dump.read_bytes() == b"".join(frame.frame.get_buf() for frame in view.frames if frame.frame)


async def test_no_log_line_carries_the_key(emulator_target: Target, caplog: pytest.LogCaptureFixture) -> None:
    secret = "sk-never-in-a-log-0123456789"
    caplog.set_level(logging.DEBUG)
    # An undocumented query parameter's value may be a secret too (a signature, a key): it is masked.
    properties = emulator_target.properties(api_key=secret, params={"signature": "query-secret-42"})
    async with Harness(properties) as tts:
        tts.text("secret-1", "The key stays out of the logs.", metadata=METADATA)
        (view,) = await tts.wait_ends(1)
    assert view.frames  # the key was used
    lines = [message for _, message in tts.env.logs] + [record.getMessage() for record in caplog.records]
    assert any("api_key=set" in line for line in lines)
    assert any("signature=***" in line for line in lines)
    assert not [line for line in lines if secret in line or "query-secret-42" in line]
