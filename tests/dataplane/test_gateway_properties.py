"""Property-based tests against a real gateway process: whatever a client sends, the gateway never answers
500, never crashes, and closes only with the protocol's own codes and reasons.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.dataplane.gateways import FLEET_TOKEN, RunningGateway, running_gateway
from tests.support.servers import running_emulator
from ttsfleet.protocol import CloseReason, Closure, ErrorBody

# Client-caused closes (PROTOCOL.md, "Limits and close codes") and the normal one; 1011 would be ours.
ALLOWED_CLOSES = {
    (int(Closure.for_reason(reason).code), reason.value)
    for reason in (
        CloseReason.NONE,
        CloseReason.BINARY_MESSAGE,
        CloseReason.INVALID_MESSAGE,
        CloseReason.CHARACTER_BUDGET,
        CloseReason.FRAME_TOO_BIG,
        CloseReason.SPEAK_TOO_BIG,
    )
}
DOCUMENTED_REST_STATUSES = {200, 400, 401, 413, 415, 429}
PROPERTIES = settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
GENEROUS_LIMITS = {"TTSFLEET_LIMITS__CHARS_PER_MINUTE_PER_TOKEN": "10000000"}

# Text: any code point, control characters and lone surrogates included (json.dumps escapes them).
texts = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()), max_size=40)
frames = st.one_of(
    st.builds(lambda text: json.dumps({"type": "Speak", "text": text}), texts),
    st.just(json.dumps({"type": "Flush"})),
    st.just(json.dumps({"type": "Clear"})),
    st.just(json.dumps({"type": "Close"})),
    st.binary(min_size=1, max_size=64),
    st.text(max_size=30),  # mostly malformed JSON
    st.builds(lambda kind: json.dumps({"type": kind}), st.text(max_size=10)),
    st.builds(lambda value: json.dumps({"type": "Speak", "text": value}), st.integers() | st.none()),
    st.builds(lambda n: json.dumps({"type": "Speak", "text": "a" * n}), st.sampled_from([2001, 70000])),
)


@pytest.fixture(scope="module")
def gateway(process_logs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    with (
        running_emulator(process_logs, name="property-upstream") as upstream,
        running_gateway(
            process_logs,
            upstream,
            tmp_path_factory.mktemp("props"),
            env=GENEROUS_LIMITS,
            name="property-gateway",
        ) as running,
    ):
        yield running
        assert running.process.process is not None and running.process.process.poll() is None
        assert httpx.get(running.process.base_url + "/livez", timeout=5.0).status_code == 200
        logs = running.process.logs()
        assert "session crashed" not in logs and "Traceback" not in logs and "task failed" not in logs


def _exchange(gateway: RunningGateway, sequence: list[str | bytes]) -> tuple[int, str] | None:
    """Send the frames, then Close; the close the gateway sent (None when it sent none)."""
    with connect(
        gateway.target.speak_url(),
        additional_headers={"Authorization": f"Token {FLEET_TOKEN}"},
        max_size=None,
        open_timeout=10,
        close_timeout=10,
    ) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "Metadata"
        try:
            for frame in [*sequence, json.dumps({"type": "Close"})]:
                ws.send(frame)
            while True:
                message = ws.recv(timeout=15)
                if isinstance(message, str):
                    assert json.loads(message)["type"] in {"Flushed", "Cleared", "Warning"}
        except ConnectionClosed:
            pass
        received = ws.protocol.close_rcvd
    return (received.code, received.reason) if received is not None else None


@PROPERTIES
@given(sequence=st.lists(frames, max_size=8))
def test_any_frame_sequence_ends_in_a_protocol_close(
    gateway: RunningGateway, sequence: list[str | bytes]
) -> None:
    closure = _exchange(gateway, sequence)
    assert closure in ALLOWED_CLOSES, f"close {closure} is not one of the protocol's client closes"
    assert httpx.get(gateway.process.base_url + "/livez", timeout=5.0).status_code == 200


queries = st.dictionaries(
    st.sampled_from(["model", "encoding", "sample_rate", "container", "speed", "bit_rate", "tag", "x"]),
    st.one_of(
        st.sampled_from(["aura-2-thalia-en", "linear16", "mulaw", "mp3", "wav", "none", "8000", "1.2", "-1"]),
        st.text(max_size=12),
    ),
    max_size=4,
)
content_types = st.sampled_from(
    [
        "application/json",
        "text/plain",
        "text/plain; charset=utf-8",
        "application/xml",
        "",
        "multipart/form-data",
    ]
)
bodies = st.one_of(
    st.binary(max_size=80),
    st.builds(lambda text: json.dumps({"text": text}).encode(), texts),
    st.builds(lambda text: text.encode("utf-8", "surrogatepass"), texts),
    st.builds(lambda value: json.dumps(value).encode(), st.lists(st.integers(), max_size=3) | st.none()),
    st.just(json.dumps({"text": "b" * 2001}).encode()),
)


@PROPERTIES
@given(query=queries, content_type=content_types, body=bodies, authorized=st.booleans())
def test_any_rest_request_gets_a_documented_status_and_a_json_error(
    gateway: RunningGateway, query: dict[str, str], content_type: str, body: bytes, authorized: bool
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    if authorized:
        headers["Authorization"] = f"Token {FLEET_TOKEN}"
    answer = httpx.post(
        gateway.process.base_url + "/v1/speak", params=query, content=body, headers=headers, timeout=15.0
    )
    assert answer.status_code in DOCUMENTED_REST_STATUSES, answer.text
    if answer.status_code != 200:
        error: Any = ErrorBody.parse(answer.content)
        assert error is not None and error.request_id == answer.headers["dg-request-id"]
        assert answer.headers["dg-error"]


@PROPERTIES
@given(query=queries)
def test_any_upgrade_query_is_accepted_or_refused_with_a_documented_status(
    gateway: RunningGateway, query: dict[str, str]
) -> None:
    url = str(httpx.URL(gateway.target.speak_url(), params=query))
    refused: InvalidStatus | None = None
    try:
        with connect(
            url, additional_headers={"Authorization": f"Token {FLEET_TOKEN}"}, open_timeout=10
        ) as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "Metadata"
    except InvalidStatus as error:
        refused = error
    if refused is not None:
        response = refused.response
        assert response.status_code == 400
        body = ErrorBody.parse(bytes(response.body or b""))
        assert body is not None and body.request_id == response.headers["dg-request-id"]
