"""One error tree, answered once: every refusal and violation is a GatewayError, and only `answers` reads
an error's wire meaning (close frame, HTTP status, error body, `dg-error`, `retry-after`)."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from ttsfleet.dataplane import admission, answers, errors
from ttsfleet.dataplane.settings import SpeakSettings
from ttsfleet.dataplane.tokens import TokenStore
from ttsfleet.protocol import (
    HTTP_STATUS_OF_ERROR,
    Closure,
    ErrorBody,
    ErrorCode,
    ProtocolViolation,
    ServerSocketRules,
    SocketLimits,
    Transport,
)

DATAPLANE = Path(errors.__file__).parent
WIRE_MEANING = {"closure", "http_status", "retry_after_s"}  # what only errors.py and answers.py may read


def _subclasses(root: type[errors.GatewayError]) -> Iterator[type[errors.GatewayError]]:
    yield root
    for child in root.__subclasses__():
        yield from _subclasses(child)


def _violations() -> Iterator[ProtocolViolation]:
    """Every violation the protocol's server-side rules raise, one frame each."""
    limits = SocketLimits(max_speak_chars=10, max_chars_per_window=15, max_frame_bytes=200)
    frames: list[str | bytes] = [
        b"\x00",
        "x" * 201,
        "not json",
        '{"type": "Shout"}',
        json.dumps({"type": "Speak", "text": "x" * 11}),
    ]
    for frame in frames:
        rules = ServerSocketRules(limits, 0.0)
        try:
            if isinstance(frame, bytes):
                rules.receive_binary(1.0)
            else:
                rules.receive_text(frame, 1.0)
        except ProtocolViolation as violation:
            yield violation
        else:
            raise AssertionError(f"the rules took {frame!r}")
    rules = ServerSocketRules(limits, 0.0)
    rules.receive_text(json.dumps({"type": "Speak", "text": "x" * 10}), 1.0)
    with pytest.raises(ProtocolViolation) as budget:
        rules.receive_text(json.dumps({"type": "Speak", "text": "x" * 10}), 2.0)
    yield budget.value


def _instances() -> Iterator[errors.GatewayError]:
    for cls in _subclasses(errors.GatewayError):
        if cls is errors.Refusal:
            yield from (errors.Refusal(code, f"refused: {code.value}") for code in ErrorCode)
        elif cls is errors.ProtocolBroken:
            yield from (errors.ProtocolBroken.of(violation) for violation in _violations())
        else:
            yield cls(f"failed: {cls.__name__}")


def test_the_trees_drawing_names_every_class_of_the_tree() -> None:
    doc = errors.__doc__ or ""
    drawn = re.findall(r"^[│├└─ ]*([A-Z][A-Za-z]+) ", doc[doc.index("\nGatewayError ") :], re.MULTILINE)
    assert set(drawn) == {cls.__name__ for cls in _subclasses(errors.GatewayError)}


@pytest.mark.parametrize("error", list(_instances()), ids=lambda error: f"{type(error).__name__}-{error}")
def test_every_gateway_error_answers_in_the_protocols_terms(error: errors.GatewayError) -> None:
    closure = answers.closure_for(error)
    assert closure == Closure.for_reason(closure.reason)  # a close the protocol defines, code and reason
    answer = answers.http_answer(error, "request-1", {"dg-request-id": "request-1"})
    assert 400 <= answer.status <= 599
    body = ErrorBody.parse(answer.body)
    assert body == ErrorBody(answer.err_code.value, str(error), "request-1")
    assert answer.headers["dg-error"] == answers.header_safe(body.err_msg)
    if isinstance(error, errors.Refusal):
        assert answer.status == HTTP_STATUS_OF_ERROR[error.err_code]


def test_an_error_that_is_not_the_gateways_closes_as_an_internal_failure() -> None:
    assert answers.closure_for(RuntimeError("bug")) == answers.closure_for(errors.GatewayError("x"))
    assert answers.closure_for(RuntimeError("bug")).reason.value == "NET-0000"


def test_a_protocol_violation_becomes_a_client_fault_that_closes_as_the_protocol_decided() -> None:
    closes = set()
    for violation in _violations():
        broken = errors.ProtocolBroken.of(violation)
        assert isinstance(broken, errors.ClientFault)
        assert answers.closure_for(broken) == violation.closure
        closes.add((int(violation.closure.code), violation.closure.reason.value))
    assert closes == {
        (1003, "MESSAGE-0000"),
        (1009, "BIG-0000"),
        (1008, "DATA-0000"),
        (1009, "BIG-0001"),
        (1008, "DATA-0001"),
    }


def test_an_upstream_failures_answer_cuts_its_description() -> None:
    answer = answers.http_answer(errors.UpstreamTimeout("u" * 500), "r", {})
    assert (answer.status, answer.err_code) == (504, ErrorCode.UNAVAILABLE)
    assert json.loads(answer.body)["err_msg"] == "u" * errors.MAX_UPSTREAM_DETAIL_CHARS


def _refusal(check: object, *args: object) -> errors.GatewayError:
    assert callable(check)
    with pytest.raises(errors.GatewayError) as refused:
        check(*args)
    return refused.value


def test_every_admission_check_refuses_with_a_gateway_error(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("fleet-token\n")
    store = TokenStore(tokens)
    store.reload()
    speak = SpeakSettings()
    refusals = [
        _refusal(admission.check_serving, True, True, False),
        _refusal(admission.check_serving, False, False, False),
        _refusal(admission.check_auth, store, "Token wrong", None),
        _refusal(admission.resolve_options, [("model", "not a voice")], Transport.WEBSOCKET, speak),
        _refusal(admission.resolve_options, [("encoding", "wav")], Transport.WEBSOCKET, speak),
        _refusal(admission.check_capacity, False),
    ]
    statuses = [(answers.http_answer(refusal, "r", {}).status, refusal.retry_after_s) for refusal in refusals]
    assert statuses == [(503, 1), (503, 1), (401, None), (400, None), (400, None), (429, 1)]


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(DATAPLANE.glob("*.py")):
        yield path.stem, ast.parse(path.read_text(), str(path))


def test_only_the_answers_module_reads_an_errors_wire_meaning() -> None:
    readers = {
        (name, node.attr)
        for name, tree in _modules()
        if name not in {"errors", "answers"}
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in WIRE_MEANING
    }
    assert readers == set()


def test_the_protocols_violation_is_translated_in_one_place() -> None:
    mentions = {
        name
        for name, tree in _modules()
        for node in ast.walk(tree)
        if isinstance(node, ast.Name) and node.id == "ProtocolViolation"
    }
    assert mentions == {"errors", "sessions"}  # ProtocolBroken.of, and where sessions feed the rules
