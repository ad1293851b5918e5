"""The gateway's answer on the wire to any error: the one place that reads an error's wire meaning.

An open session ends with the error's close frame; a refused upgrade or a failed REST request gets the
error's HTTP status, Deepgram's JSON error body and `dg-error` (and `retry-after` when waiting helps).
Anything that is not a GatewayError is a fault of ours and closes like the tree's root (1011 NET-0000).
Pure: the app, REST and sessions modules send what these functions return.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ttsfleet.dataplane.errors import GatewayError
from ttsfleet.protocol import Closure, ErrorBody, ErrorCode


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """A refused upgrade's or a failed request's answer: status, JSON error body and headers."""

    status: int
    err_code: ErrorCode
    body: str
    headers: dict[str, str]


def closure_for(error: BaseException) -> Closure:
    """The close frame a session sends when `error` ends it."""
    return error.closure if isinstance(error, GatewayError) else GatewayError.closure


def http_answer(error: GatewayError, request_id: str, headers: Mapping[str, str]) -> HttpAnswer:
    """The HTTP answer to `error`, with `headers` (the request id, the pod) and `dg-error` added."""
    message = error.err_msg
    answer_headers = {**headers, "dg-error": header_safe(message)}
    if error.retry_after_s is not None:
        answer_headers["retry-after"] = str(error.retry_after_s)
    body = ErrorBody(error.err_code.value, message, request_id).to_json()
    return HttpAnswer(error.http_status, error.err_code, body, answer_headers)


def header_safe(text: str) -> str:
    """Printable ASCII for a header value: messages may quote client input (a model name in any script)."""
    escaped = text.encode("ascii", "backslashreplace").decode("ascii")
    return "".join(c if " " <= c <= "~" else "?" for c in escaped)
