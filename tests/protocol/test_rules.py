"""The per-socket rules, fed frames and time directly: no sockets, no clock."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ttsfleet.protocol import (
    Cleared,
    ClearRequested,
    ClientSocketTracker,
    CloseReason,
    CloseRequested,
    Closure,
    Flushed,
    FlushRefused,
    ProtocolViolation,
    ServerSocketRules,
    SocketLimits,
    SynthesisRequested,
    TextBuffered,
)


def speak(text: str) -> str:
    return json.dumps({"type": "Speak", "text": text})


FLUSH, CLEAR, CLOSE = '{"type":"Flush"}', '{"type":"Clear"}', '{"type":"Close"}'


def test_speaks_accumulate_until_a_flush_takes_them() -> None:
    rules = ServerSocketRules(SocketLimits(), opened_at=0)
    assert rules.receive_text(speak("Hello "), 1) == TextBuffered(6)
    assert rules.receive_text(speak("world"), 2) == TextBuffered(5)
    assert rules.receive_text(FLUSH, 3) == SynthesisRequested("Hello world", 0)
    assert rules.receive_text(FLUSH, 4) == SynthesisRequested("", 1)


def test_clear_drops_the_buffer_and_counts_its_own_sequence() -> None:
    rules = ServerSocketRules(SocketLimits(), opened_at=0)
    rules.receive_text(speak("dropped"), 1)
    assert rules.receive_text(CLEAR, 2) == ClearRequested(0)
    assert rules.receive_text(FLUSH, 3) == SynthesisRequested("", 0)
    assert rules.receive_text(CLEAR, 4) == ClearRequested(1)


def test_close_is_a_request_not_a_violation() -> None:
    assert ServerSocketRules(SocketLimits(), 0).receive_text(CLOSE, 1) == CloseRequested()


def test_the_character_budget_slides_with_time() -> None:
    rules = ServerSocketRules(SocketLimits(max_chars_per_window=10, window_s=60), opened_at=0)
    rules.receive_text(speak("a" * 10), 0)
    with pytest.raises(ProtocolViolation) as violation:
        rules.receive_text(speak("b"), 59.9)
    assert violation.value.closure == Closure.for_reason(CloseReason.CHARACTER_BUDGET)
    assert rules.receive_text(speak("b"), 60.0) == TextBuffered(1)  # the first 10 left the window
    assert rules.chars_in_window(60.0) == 1


def test_the_flush_budget_refuses_with_a_warning_and_keeps_the_text() -> None:
    rules = ServerSocketRules(SocketLimits(max_flushes_per_window=2), opened_at=0)
    rules.receive_text(FLUSH, 0)
    rules.receive_text(FLUSH, 1)
    rules.receive_text(speak("kept"), 2)
    refused = rules.receive_text(FLUSH, 3)
    assert isinstance(refused, FlushRefused)
    assert refused.warning.code == "EXCESSIVE_FLUSH"
    assert rules.flushes_in_window(3) == 2
    assert rules.receive_text(FLUSH, 61) == SynthesisRequested("kept", 2)


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        pytest.param(speak("x" * 2001), CloseReason.SPEAK_TOO_BIG, id="speak-too-big"),
        pytest.param(speak("é" * 40000), CloseReason.FRAME_TOO_BIG, id="frame-too-big-in-bytes"),
        pytest.param("{", CloseReason.INVALID_MESSAGE, id="bad-json"),
        pytest.param('{"type":"KeepAlive"}', CloseReason.INVALID_MESSAGE, id="unknown-type"),
    ],
)
def test_violations_carry_the_protocol_closure(frame: str, reason: CloseReason) -> None:
    with pytest.raises(ProtocolViolation) as violation:
        ServerSocketRules(SocketLimits(), 0).receive_text(frame, 1)
    assert violation.value.closure == Closure.for_reason(reason)


def test_binary_frames_are_refused() -> None:
    with pytest.raises(ProtocolViolation) as violation:
        ServerSocketRules(SocketLimits(), 0).receive_binary(1)
    assert violation.value.closure.reason is CloseReason.BINARY_MESSAGE


def test_the_clock_closes_idle_and_old_sockets_age_first() -> None:
    rules = ServerSocketRules(SocketLimits(idle_timeout_s=10, max_socket_age_s=30), opened_at=100)
    assert rules.due_closure(109) is None
    assert rules.next_deadline() == 110
    assert rules.due_closure(110) == Closure.for_reason(CloseReason.CLIENT_IDLE)
    rules.receive_activity(125)
    assert rules.due_closure(130) == Closure.for_reason(CloseReason.SOCKET_TOO_OLD)


def test_a_client_discards_audio_between_clear_and_cleared() -> None:
    tracker = ClientSocketTracker()
    tracker.sent_flush()
    tracker.sent_clear()
    assert tracker.is_discarding
    tracker.received(Flushed(0))  # a late Flushed for cleared text does not end the discarding
    assert tracker.is_discarding
    tracker.received(Cleared(0))
    assert not tracker.is_discarding


@given(st.lists(st.one_of(st.text(max_size=300), st.binary(max_size=50)), max_size=40))
def test_no_frame_sequence_crashes_the_rules(frames: list[str | bytes]) -> None:
    """Whatever arrives, the rules answer with an action or a protocol closure, nothing else."""
    rules = ServerSocketRules(SocketLimits(max_chars_per_window=500), opened_at=0)
    closure = None
    for now, frame in enumerate(frames):
        try:
            if isinstance(frame, bytes):
                rules.receive_binary(now)
            else:
                rules.receive_text(frame, now)
        except ProtocolViolation as violation:
            closure = violation.closure
            break
    assert closure is None or closure.code in (1003, 1008, 1009)


@given(st.lists(st.sampled_from([speak("ab"), FLUSH, CLEAR]), max_size=60))
def test_sequence_ids_count_up_without_gaps(frames: list[str]) -> None:
    rules = ServerSocketRules(SocketLimits(max_flushes_per_window=1000), opened_at=0)
    flush_ids, clear_ids = [], []
    for now, frame in enumerate(frames):
        action = rules.receive_text(frame, now)
        if isinstance(action, SynthesisRequested):
            flush_ids.append(action.sequence_id)
        elif isinstance(action, ClearRequested):
            clear_ids.append(action.sequence_id)
    assert flush_ids == list(range(len(flush_ids)))
    assert clear_ids == list(range(len(clear_ids)))
