"""OpenTelemetry spans, only when an OTLP endpoint is configured; otherwise every span is a no-op.

opentelemetry-api is always installed and is a no-op by itself; exporting needs the `otel` extra
(opentelemetry-sdk and the OTLP/HTTP exporter), set up here when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
Span attributes carry ids, models and counts only: never a key, a token or the text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import structlog
from opentelemetry import trace

log = structlog.get_logger(__name__)

ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT"
_enabled = False
_shutdown: list[Callable[[], None]] = []


def configure(environ: Mapping[str, str], service_name: str = "ttsfleet-dataplane") -> bool:
    """Install an OTLP exporter when the endpoint variable is set and the SDK is present."""
    global _enabled
    if not environ.get(ENDPOINT_ENV):
        return False
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # type: ignore[import-not-found,unused-ignore]
        from opentelemetry.sdk.resources import Resource  # type: ignore[import-not-found,unused-ignore]
        from opentelemetry.sdk.trace import TracerProvider  # type: ignore[import-not-found,unused-ignore]
        from opentelemetry.sdk.trace.export import BatchSpanProcessor  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        log.warning(
            "tracing requested but the opentelemetry SDK is not installed (pip install ttsfleet[otel])"
        )
        return False
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _shutdown.append(provider.shutdown)
    _enabled = True
    return True


def shutdown() -> None:
    """Export what is still batched; called once the server has stopped."""
    while _shutdown:
        _shutdown.pop()()


def span(name: str, attributes: Mapping[str, Any] | None = None) -> AbstractContextManager[Any]:
    """A span around a block when tracing is on; a null context otherwise (no cost on hot paths)."""
    if not _enabled:
        return nullcontext()
    return _span(name, attributes or {})


@contextmanager
def _span(name: str, attributes: Mapping[str, Any]) -> Iterator[Any]:
    tracer = trace.get_tracer("ttsfleet.dataplane")
    with tracer.start_as_current_span(name, attributes=dict(attributes)) as current:
        yield current


def annotate(current: Any, attributes: Mapping[str, Any]) -> None:
    """Add attributes to a span from `span` (nothing when tracing is off)."""
    if current is not None:
        current.set_attributes(dict(attributes))
