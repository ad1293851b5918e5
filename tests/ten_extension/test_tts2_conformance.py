"""TEN's tts_guarder scenarios (TEN_TTS2.md) through the real extension: emulator, and gateway in front."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.ten_extension.harness import Harness
from tests.ten_extension.targets import Target

RATE = 16000
DURATION_TOLERANCE_MS = 50
METADATA = {"session_id": "session-1", "turn_id": 1}

APPEND_GROUPS = [
    ["Hello world, this is the first text input.", "This is the second text input for testing.", ""],
    ["And this is the third text input message.", ","],
    ["Now we start the second group of inputs.", "This is the fifth text input message.", " "],
    ["And finally the sixth text input message.", "\U0001f60a"],
    ["This is group five, first text.", "This is group five, second text."],
]


def count_dumps(path: Path) -> int:
    return len(list(path.glob("*.pcm")))


def metadata_for(index: int) -> dict[str, object]:
    return {"session_id": "session-1", "turn_id": index + 1}


async def test_append_groups_stream_in_order_with_exact_durations_and_one_dump_each(
    target: Target, tmp_path: Path
) -> None:
    async with Harness(target.properties(dump=True, dump_path=str(tmp_path))) as tts:
        for index, group in enumerate(APPEND_GROUPS):
            for position, text in enumerate(group):
                tts.text(
                    f"append-{index}", text, end=position == len(group) - 1, metadata=metadata_for(index)
                )
        views = await tts.wait_ends(len(APPEND_GROUPS))

    assert [view.request_id for view in views] == [f"append-{i}" for i in range(len(APPEND_GROUPS))]
    for index, view in enumerate(views):
        assert view.end is not None
        assert view.end["reason"] == 1
        assert view.start["metadata"] == metadata_for(index)
        assert view.end["metadata"] == metadata_for(index)
        assert view.frames, f"{view.request_id} produced no audio"
        assert (
            abs(view.end["request_total_audio_duration_ms"] - view.duration_ms(RATE)) <= DURATION_TOLERANCE_MS
        )
        assert view.metrics_before_end >= 1
        assert all(frame.frame is not None and frame.frame.sample_rate == RATE for frame in view.frames)
    assert not tts.data("error")
    assert count_dumps(tmp_path) == len(APPEND_GROUPS)


async def test_twenty_sequential_requests_all_end_normally(target: Target, tmp_path: Path) -> None:
    async with Harness(target.properties(dump=True, dump_path=str(tmp_path))) as tts:
        for index in range(20):
            tts.text(f"stress-{index}", f"Stress request number {index} is short.", metadata=METADATA)
        views = await tts.wait_ends(20, deadline_s=30.0)
    assert [view.end["reason"] for view in views if view.end] == [1] * 20
    assert not tts.data("error")
    assert count_dumps(tmp_path) == 20


async def test_without_text_input_end_audio_streams_and_the_next_request_waits(target: Target) -> None:
    long_one = (
        "Hello world, this is the first text input, made long enough that the extension flushes it "
        "at the end of the sentence."
    )
    async with Harness(target.properties()) as tts:
        tts.text("open-1", long_one, end=False)
        tts.text(
            "open-1",
            "This is the second text input, also long enough to be flushed at its sentence end.",
            end=False,
        )
        tts.text("open-2", "And this is the third text input message.", end=True)
        speaker = tts.ext.speaker
        assert speaker is not None
        await tts.wait_for(lambda: len(tts.env.sent) > 2, "audio of the open request")
        # Both sentences were flushed upstream; their audio is complete once no Flush is owed any more.
        await tts.wait_for(
            lambda: target.upstream_stats()["flushes_total"] >= 2 and not speaker.owes_audio,
            "both sentences' audio",
        )
        views = tts.requests()
        assert [view.request_id for view in views] == ["open-1"]
        assert views[0].frames and views[0].end is None


async def test_flush_on_first_frame_interrupts_and_later_requests_complete(target: Target) -> None:
    text = "This sentence is long enough to still be streaming when the flush arrives, surely. " * 3
    async with Harness(target.properties()) as tts:
        tts.text("int-1", text, metadata=METADATA)
        tts.text("int-2", "Queued before the flush, dropped by it.", metadata=METADATA)
        await tts.wait_for(lambda: "frame" in tts.names(), "the first frame")
        await tts.flush("flush-1", {"session_id": "session-1", "reason": "barge-in"})
        names_at_flush_end = tts.names()
        tts.text("int-3", "After the flush, this one completes.", metadata=METADATA)
        await tts.wait_for(
            lambda: any(e["request_id"] == "int-3" for e in tts.data("tts_audio_end")), "int-3 end"
        )

    names = tts.names()
    flush_end_at = names.index("tts_flush_end")
    assert names[:flush_end_at] == names_at_flush_end[:flush_end_at]
    ends = tts.data("tts_audio_end")
    assert [(end["request_id"], end["reason"]) for end in ends] == [("int-1", 2), ("int-3", 1)]
    assert names.index("tts_audio_end") < flush_end_at
    assert tts.data("tts_flush_end") == [
        {"flush_id": "flush-1", "metadata": {"session_id": "session-1", "reason": "barge-in"}}
    ]
    # Between flush_end and int-3's start there is nothing: no frame of int-1, none of the dropped int-2.
    assert names[flush_end_at + 1] == "tts_audio_start"
    assert all(view.request_id != "int-2" for view in tts.requests())
    assert not tts.data("error")


async def test_flush_during_long_text_sends_no_frame_after_its_end(target: Target) -> None:
    long_text = " ".join(f"Sentence number {n} keeps the audio flowing for a while." for n in range(30))
    async with Harness(target.properties()) as tts:
        tts.text("long-1", long_text, metadata=METADATA)
        await tts.wait_for(lambda: "frame" in tts.names(), "the first frame")
        await tts.flush("flush-long")
        end_index = tts.names().index("tts_audio_end")
        speaker = tts.ext.speaker
        assert speaker is not None
        # Cleared answers the Clear once no audio of the cleared text can follow.
        await tts.wait_for(lambda: not speaker.is_clearing, "Cleared from upstream")
        tts.text("long-2", "A short sentence after the flush.", metadata=METADATA)
        await tts.wait_ends(2)

    names = tts.names()
    assert tts.data("tts_audio_end")[0]["reason"] == 2
    assert end_index < names.index("tts_flush_end")
    between = names[end_index + 1 : names.index("tts_audio_start", end_index)]
    assert [name for name in between if name != "metrics"] == ["tts_flush_end"]  # usage metrics may follow
    assert len(tts.data("tts_audio_end")) == 2  # a late Flushed never makes a second end


async def test_empty_and_whitespace_final_inputs_end_within_500_ms(target: Target) -> None:
    async with Harness(target.properties()) as tts:
        sent_at = time.monotonic()
        for text in ("", " ", ""):
            tts.text("999", text, metadata=METADATA)
        await tts.wait_ends(1)
        end = next(sent for sent in tts.env.sent if sent.name == "tts_audio_end")
        # Inputs are handled in order: once a later request has ended, all three empty ones were handled.
        tts.text("after-1", "Spoken after the empty ones.", metadata=METADATA)
        await tts.wait_ends(2)
    assert end.at - sent_at < 0.5
    assert end.payload["metadata"] == METADATA
    assert [payload["request_id"] for payload in tts.data("tts_audio_end")] == ["999", "after-1"]
    assert not tts.data("error")


async def test_interleaved_inputs_of_eight_requests_each_complete_in_turn(
    target: Target, tmp_path: Path
) -> None:
    chunks = {
        f"mix-{n}": [f"Request {n} part one.", f"Part two of {n}.", f"And three of {n}."][: 2 + n % 2]
        for n in range(8)
    }
    assert sum(len(texts) for texts in chunks.values()) == 20
    # Extra single-chunk inputs make 23; each request's chunks keep their order, requests interleave.
    order: list[tuple[str, str, bool]] = []
    positions = dict.fromkeys(chunks, 0)
    pending = list(chunks)
    turn = 0
    while pending:
        request_id = pending[turn % len(pending)]
        texts = chunks[request_id]
        index = positions[request_id]
        order.append((request_id, texts[index], index == len(texts) - 1))
        positions[request_id] += 1
        if positions[request_id] == len(texts):
            pending.remove(request_id)
        turn += 1
    order[3:3] = [("mix-0", "", False), ("mix-1", " ", False), ("mix-2", ",", False)]
    assert len(order) == 23
    async with Harness(target.properties(dump=True, dump_path=str(tmp_path))) as tts:
        for request_id, text, end in order:
            tts.text(request_id, text, end=end, metadata=METADATA)
        views = await tts.wait_ends(8, deadline_s=30.0)
    assert sorted(view.request_id for view in views) == sorted(chunks)
    assert all(view.end is not None and view.end["reason"] == 1 and view.frames for view in views)
    assert count_dumps(tmp_path) == 8


@pytest.mark.parametrize("rate", [pytest.param(8000, id="8000"), pytest.param(48000, id="48000")])
async def test_frames_come_at_the_configured_sample_rate(target: Target, rate: int) -> None:
    async with Harness(target.properties(sample_rate=rate)) as tts:
        tts.text("rate-1", "Sample rates must be honoured.", metadata=METADATA)
        (view,) = await tts.wait_ends(1)
    assert view.frames
    assert {frame.frame.sample_rate for frame in view.frames if frame.frame is not None} == {rate}
    assert view.end is not None
    assert abs(view.end["request_total_audio_duration_ms"] - view.duration_ms(rate)) <= DURATION_TOLERANCE_MS


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("   ", id="whitespace"),
        pytest.param("\U0001f60a\U0001f680", id="emoji"),
        pytest.param("?!...,;", id="punctuation"),
        pytest.param("E = mc^2 + (a/b) * 3", id="formula"),
    ],
)
async def test_invalid_text_then_a_valid_sentence_produces_audio(target: Target, text: str) -> None:
    async with Harness(target.properties()) as tts:
        tts.text("bad-1", text, metadata=METADATA)
        tts.text("good-1", "This valid sentence must be spoken.", metadata=METADATA)
        await tts.wait_for(
            lambda: any(v.request_id == "good-1" and v.frames for v in tts.requests()), "audio of good-1", 5.0
        )
        await tts.wait_ends(2)
    assert not [error for error in tts.data("error") if error["code"] == -1000]
