"""Logging setup shared by every process: JSON lines through structlog, context bound per task.

Components log through `structlog.get_logger(__name__)` and bind ids with
`structlog.contextvars.bind_contextvars`; this module only decides the output format. Keys, tokens
and full text are never passed to a logger in the first place (STYLE.md rule 14): log fingerprints
and lengths. Two guards hold for lines written by libraries too (uvicorn logs every WebSocket's path
with its query string, where a browser client's `access_token` travels): query strings are redacted
from every value of every line, and an exception is described by its type and where it was raised,
never by its message, which may quote a key, a token or the text.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import structlog
from structlog.typing import EventDict

LogFormat = Literal["json", "console"]


def configure_logging(level: str = "INFO", fmt: LogFormat = "json", component: str = "ttsfleet") -> None:
    """Route structlog and stdlib logging to stderr as JSON lines (or readable lines for humans)."""
    numeric_level = logging.getLevelName(level.upper())
    if not isinstance(numeric_level, int):
        raise ValueError(f"unknown log level {level!r}")
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_component(component),
    ]
    # Our own lines are rendered by structlog and written straight to stderr: going through a stdlib
    # LogRecord, handler and formatter cost more than the rest of a line (one per utterance). Libraries'
    # lines still come through the stdlib handler below, rendered by the same processors.
    structlog.configure(
        processors=[*shared, describe_exception, redact_queries, renderer],
        logger_factory=structlog.WriteLoggerFactory(sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                describe_exception,
                redact_queries,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric_level)
    # uvicorn's access log repeats what our own request lines say, with full query strings.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)


# `?name=value…` in a URL or path: everything after the `?` goes, whatever the names.
_QUERY = re.compile(r"\?[^\s\"'?#]*=[^\s\"']*")
QUERY_REDACTED = "?[query redacted]"
_TRACEBACK_FRAMES = 8  # the innermost frames: where it failed, and the few calls above


def redact_queries(_: object, __: str, event: EventDict) -> EventDict:
    """Every string value with its URL query strings replaced: they carry credentials and client text."""
    for name, value in event.items():
        if isinstance(value, str) and "?" in value:
            event[name] = _QUERY.sub(QUERY_REDACTED, value)
    return event


def describe_exception(_: object, __: str, event: EventDict) -> EventDict:
    """`exc_info` turned into `exception`: the types of the exception and its causes, and the innermost
    frames (file:line function). Messages are left out: they can quote whatever failed to parse."""
    exc_info = event.pop("exc_info", None)
    error: BaseException | None
    if exc_info is True:
        error = sys.exc_info()[1]
    elif isinstance(exc_info, BaseException):
        error = exc_info
    elif isinstance(exc_info, tuple):
        error = exc_info[1]
    else:
        error = None
    if error is None:
        return event
    chain: list[str] = []
    seen: BaseException | None = error
    while seen is not None and len(chain) < _TRACEBACK_FRAMES:
        chain.append(type(seen).__name__)
        seen = seen.__cause__ or seen.__context__
    frames = traceback.extract_tb(error.__traceback__)[-_TRACEBACK_FRAMES:]
    event["exception"] = {
        "type": " <- ".join(chain),
        "frames": [f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in frames],
    }
    return event


def _add_component(component: str) -> structlog.typing.Processor:
    def add(_: object, __: str, event: EventDict) -> EventDict:
        event.setdefault("component", component)
        return event

    return add


@contextlib.contextmanager
def bound(**values: object) -> Iterator[None]:
    """Bind `values` to every line logged within, then restore exactly what was bound before.

    structlog's `bound_contextvars` does the same after reading every context variable bound so far; this
    resets the variables' own tokens: the gateway binds an id per utterance and per session.
    """
    tokens = structlog.contextvars.bind_contextvars(**values)
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)
