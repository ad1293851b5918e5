"""The log format every process uses, in a real interpreter writing to a real stderr: an error line
says which exception and where, never its message; no line carries a URL's query string.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import structlog

from ttsfleet import logs

SECRET = "secret-in-an-exception-message"

_PROGRAM = textwrap.dedent(
    f"""
    import logging
    import structlog
    from ttsfleet.logs import configure_logging

    configure_logging("INFO", "json", component="test")
    log = structlog.get_logger("test")
    try:
        try:
            raise KeyError({SECRET!r})
        except KeyError as error:
            raise ValueError({SECRET!r}) from error
    except ValueError:
        log.exception("it failed")
    try:
        raise RuntimeError({SECRET!r})
    except RuntimeError:
        logging.getLogger("uvicorn.error").exception("library failure")
    logging.getLogger("uvicorn.error").info(
        '%s - "WebSocket %s" [accepted]', "127.0.0.1:1", "/v1/speak?model=x&access_token={SECRET}"
    )
    log.info("url seen", url="http://host/v1/speak?token={SECRET}")
    """
)


def _lines() -> list[dict[str, object]]:
    done = subprocess.run(
        [sys.executable, "-c", _PROGRAM], capture_output=True, text=True, timeout=60, check=True
    )
    assert SECRET not in done.stderr
    return [json.loads(line) for line in done.stderr.splitlines()]


def test_error_lines_name_the_exception_and_where_but_not_its_message() -> None:
    by_event = {str(line["event"]): line for line in _lines()}
    ours = by_event["it failed"]
    assert "exc_info" not in ours
    assert ours["exception"] == {
        "type": "ValueError <- KeyError",
        "frames": [ours["exception"]["frames"][0]],  # type: ignore[index]
    }
    assert str(ours["exception"]["frames"][0]).startswith("<string>:")  # type: ignore[index]
    assert by_event["library failure"]["exception"]["type"] == "RuntimeError"  # type: ignore[index]


def test_query_strings_are_redacted_in_every_line() -> None:
    lines = _lines()
    accepted = next(line for line in lines if "WebSocket" in str(line["event"]))
    assert accepted["event"] == '127.0.0.1:1 - "WebSocket /v1/speak?[query redacted]" [accepted]'
    url = next(line for line in lines if line["event"] == "url seen")
    assert url["url"] == "http://host/v1/speak?[query redacted]"


def test_bound_values_are_restored_exactly_when_the_block_ends() -> None:
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(session_id="outer-session")
    with logs.bound(session_id="inner-session", utterance_id="an-utterance"):
        assert structlog.contextvars.get_contextvars() == {
            "session_id": "inner-session",
            "utterance_id": "an-utterance",
        }
    assert structlog.contextvars.get_contextvars() == {"session_id": "outer-session"}
    structlog.contextvars.clear_contextvars()
