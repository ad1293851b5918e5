"""Pure rules: Speak splitting and joining, sentence ends, socket budgets, backoff with jitter."""

from __future__ import annotations

import random

import pytest

from ten_extension.deepgram_tts2_python import backoff, budgets, chunking


def test_long_text_is_split_at_whitespace_under_the_speak_limit() -> None:
    text = "word " * 1000
    pieces = chunking.split_for_speak(text)
    assert "".join(pieces) == text
    assert all(len(piece) <= chunking.MAX_SPEAK_CHARS for piece in pieces)
    assert chunking.split_for_speak("x" * 2500) == ["x" * 2000, "x" * 500]


def test_chunks_are_joined_with_a_space_only_where_they_would_run_together() -> None:
    assert chunking.joined("first.", "Second") == " Second"
    assert chunking.joined("first. ", "Second") == "Second"
    assert chunking.joined("", "Second") == "Second"


@pytest.mark.parametrize(
    ("text", "ends"),
    [
        ("Done.", True),
        ('He said "stop!"', True),
        ("Really? ", True),
        ("\u4f60\u597d\u3002", True),
        ("and then", False),
        ("3.5 or", False),
    ],
)
def test_sentence_ends_are_recognised(text: str, ends: bool) -> None:
    assert chunking.ends_sentence(text) is ends


def test_the_socket_budget_slides_with_time() -> None:
    budget = budgets.SocketBudget()
    for second in range(19):
        budget.spend_flush(float(second))
    budget.spend_chars(2000, 0.0)
    assert budget.flushes_left(20.0) == 1
    assert not budget.has_room_for_request(20.0)
    assert budget.flushes_left(61.0) == 20 - 17
    assert budget.chars_left(61.0) == 2400
    assert budget.has_room_for_request(61.0)


def test_backoff_is_full_jitter_under_a_growing_cap_and_honours_retry_after() -> None:
    delays = backoff.Backoff(base_s=0.1, cap_s=3.0, rng=random.Random(7))
    for attempt in range(8):
        assert 0.0 <= delays.delay_s(attempt) <= min(3.0, 0.1 * 2**attempt)
    assert delays.delay_s(0, retry_after_s=1.0) == 1.0
    assert delays.delay_s(0, retry_after_s=30.0) == 3.0
