"""OpenTelemetry: spans reach an OTLP/HTTP collector only when the endpoint is set, carry the correlation
ids, and never a key, a token or the text. The collector is a tiny HTTP server run by the test.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.dataplane.gateways import DEEPGRAM_KEY, FLEET_TOKEN, OTHER_TOKEN, running_gateway
from tests.support.servers import running_emulator
from tests.support.speaking import connect, receive_frame, speak_and_flush, wait_closed
from tests.support.waiting import eventually
from ttsfleet.dataplane import tracing

TEXT = "Traces carry ids and counts, never what was said."
CORRELATION_ID = "agent-turn-42"


class _Collector(BaseHTTPRequestHandler):
    """Accepts OTLP/HTTP protobuf trace exports and keeps every span with its attributes."""

    spans: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                for span in scope.spans:
                    attributes = {a.key: json.loads(_value_json(a.value)) for a in span.attributes}
                    self.spans.append(
                        {
                            "name": span.name,
                            "trace_id": span.trace_id.hex(),
                            "span_id": span.span_id.hex(),
                            "parent_span_id": span.parent_span_id.hex(),
                            "attributes": attributes,
                        }
                    )
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reads spans, not access lines."""


def _value_json(value: Any) -> str:
    kind = value.WhichOneof("value")
    return json.dumps(getattr(value, kind) if kind else None)


@contextlib.contextmanager
def running_collector() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    _Collector.spans = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, name="otlp-collector", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", _Collector.spans
    finally:
        server.shutdown()
        server.server_close()


def test_without_an_endpoint_nothing_is_configured() -> None:
    assert tracing.configure({}) is False
    assert tracing.configure({"OTEL_EXPORTER_OTLP_ENDPOINT": ""}) is False
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    with tracing.span("session", {"session_id": "x"}) as span:
        assert span is None
    tracing.annotate(span, {"source": "cache"})


async def test_a_speak_produces_session_and_utterance_spans_with_ids_and_no_secrets(
    process_logs: Path, tmp_path: Path
) -> None:
    with running_collector() as (endpoint, spans):
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_BSP_SCHEDULE_DELAY": "50"}
        with (
            running_emulator(process_logs, name="tracing-upstream") as upstream,
            running_gateway(process_logs, upstream, tmp_path, env=env, name="tracing-gateway") as gateway,
        ):
            headers = {**gateway.target.auth_headers, "x-request-id": CORRELATION_ID}
            ws = await connect(gateway.target, headers=headers)
            assert ws.response is not None
            session_id = ws.response.headers["dg-request-id"]
            await receive_frame(ws)
            assert (await speak_and_flush(ws, TEXT)).types == ["Audio", "Flushed"]
            await ws.send(json.dumps({"type": "Close"}))
            assert await wait_closed(ws) == (1000, "")
            await eventually(
                lambda: {"session", "utterance"} <= {s["name"] for s in spans}, 10.0, "the spans to arrive"
            )
    session = next(s for s in spans if s["name"] == "session")
    utterance = next(s for s in spans if s["name"] == "utterance")
    assert session["attributes"]["session_id"] == session_id
    assert session["attributes"]["client_request_id"] == CORRELATION_ID
    assert utterance["trace_id"] == session["trace_id"]
    assert utterance["parent_span_id"] == session["span_id"]
    assert utterance["attributes"]["chars"] == len(TEXT)
    assert utterance["attributes"]["source"] == "websocket"
    assert utterance["attributes"]["upstream_request_id"]
    exported = json.dumps(spans)
    for secret in (DEEPGRAM_KEY, FLEET_TOKEN, OTHER_TOKEN, TEXT, "never what was said"):
        assert secret not in exported
