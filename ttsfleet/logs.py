"""Logging setup shared by every process: JSON lines through structlog, context bound per task.

Components log through `structlog.get_logger(__name__)` and bind ids with
`structlog.contextvars.bind_contextvars`; this module only decides the output format. Keys, tokens
and full text are never passed to a logger in the first place (STYLE.md rule 14): log fingerprints
and lengths.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog

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
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric_level)
    # uvicorn's access log repeats what our own request lines say, with full query strings.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)


def _add_component(component: str) -> structlog.typing.Processor:
    def add(_: object, __: str, event: structlog.typing.EventDict) -> structlog.typing.EventDict:
        event.setdefault("component", component)
        return event

    return add
