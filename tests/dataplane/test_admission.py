"""Admission's refusals in the protocol's terms: status, JSON body, a `dg-error` that is a valid header."""

from __future__ import annotations

import json

import pytest

from ttsfleet.dataplane.answers import header_safe, http_answer
from ttsfleet.dataplane.errors import Refusal
from ttsfleet.protocol import ErrorCode


@pytest.mark.parametrize(
    ("message", "header"),
    [
        pytest.param("Invalid credentials.", "Invalid credentials.", id="ascii-unchanged"),
        pytest.param("No such model: 'Ā'", "No such model: '\\u0100'", id="non-latin-escaped"),
        pytest.param("model 'é'", "model '\\xe9'", id="latin-1-escaped-too"),
        pytest.param("a\r\nSet-Cookie: x", "a??Set-Cookie: x", id="no-header-injection"),
        pytest.param("tab\there\x7f", "tab?here?", id="controls-replaced"),
    ],
)
def test_dg_error_is_printable_ascii_whatever_the_message_quotes(message: str, header: str) -> None:
    assert header_safe(message) == header
    answer = http_answer(Refusal(ErrorCode.UNKNOWN_MODEL, message), "r", {})
    assert answer.headers["dg-error"] == header
    assert json.loads(answer.body)["err_msg"] == message  # the body keeps the message as it is


def test_a_draining_refusal_asks_clients_to_retry_after_a_second() -> None:
    answer = http_answer(
        Refusal(ErrorCode.UNAVAILABLE, "draining", retry_after_s=1), "r", {"dg-request-id": "r"}
    )
    assert answer.status == 503
    assert answer.headers == {
        "dg-request-id": "r",
        "dg-error": "draining",
        "retry-after": "1",
    }
