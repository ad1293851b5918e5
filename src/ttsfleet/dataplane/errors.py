"""The gateway's error tree, with wire meaning attached, and upstream error classification.

Every refusal and failure the gateway answers is a GatewayError, and `answers.py` alone turns one into
the wire: an open session's close frame, or a refused upgrade's or request's HTTP status, Deepgram's
JSON error body, `dg-error` and `retry-after`. Most classes carry their meaning as class attributes; a
Refusal (its ErrorCode) and a ProtocolBroken (its close) carry it per instance. The protocol package is
the layer below and never imports the gateway: sessions translate the ProtocolViolation its rules raise
into a ProtocolBroken where they feed it frames.

GatewayError                      1011 NET-0000 / 500
├── Refusal                       admission said no: status from its ErrorCode (400, 401, 404, 413, 415,
│                                 429, 503 with retry-after); before any session or synthesis begins
├── ClientFault                   the client broke a rule: never retried
│   ├── ProtocolBroken            the protocol's close: 1003 MESSAGE-0000, 1008 DATA-000x, 1009 BIG-000x
│   ├── TextRejected              1008 DATA-0000 / 400
│   ├── CharacterBudgetExceeded   1008 DATA-0001 / 429 (per-token bucket)
│   └── SlowClient                1011 NET-0002 (send buffer full)
└── UpstreamError                 carries an ErrorClass that decides retries; err_msg cut to 200 chars
    ├── UpstreamUnavailable       transient: connect failure, 5xx, 1011 close, reset
    │   ├── UpstreamTimeout       transient: connect, first byte, gap or total deadline
    │   ├── CircuitOpen           transient: the breaker refused the attempt
    │   └── PoolExhausted         transient: max_sockets leased, none freed in time
    ├── UpstreamRateLimited       rate_limited: 429
    ├── UpstreamAuthFailed        auth: 401/403, or no key at all
    ├── UpstreamRejected          client_error: 400/413/415, 1008/1009 close
    └── UpstreamProtocolError     upstream_protocol: a message out of order, a skipped flush
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar

from ttsfleet.protocol import (
    HTTP_STATUS_OF_ERROR,
    CloseCode,
    CloseReason,
    Closure,
    ErrorCode,
    ProtocolViolation,
)

MAX_UPSTREAM_DETAIL_CHARS = 200  # of an upstream failure's description in our answer: it may quote upstream


class ErrorClass(enum.StrEnum):
    """How an upstream failure is treated: retried, counted by the breaker, or passed on."""

    TRANSIENT = "transient"
    RATE_LIMITED = "rate_limited"
    AUTH = "auth"
    CLIENT_ERROR = "client_error"
    UPSTREAM_PROTOCOL = "upstream_protocol"


class GatewayError(Exception):
    """Root of every error the gateway answers in the protocol's own terms."""

    closure: Closure = Closure.for_reason(CloseReason.INTERNAL)
    http_status: int = 500
    err_code: ErrorCode = ErrorCode.INTERNAL
    retry_after_s: int | None = None  # seconds a refused client should wait before trying again

    @property
    def err_msg(self) -> str:
        """What the client reads, in the error body and in `dg-error`."""
        return str(self)


class Refusal(GatewayError):
    """A request or upgrade the gateway will not take; its ErrorCode decides the HTTP status."""

    def __init__(self, err_code: ErrorCode, message: str, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.err_code = err_code
        self.http_status = HTTP_STATUS_OF_ERROR[err_code]
        self.retry_after_s = retry_after_s


class ClientFault(GatewayError):
    """The client broke a rule; the same request would fail again."""


class ProtocolBroken(ClientFault):
    """The client broke the speak protocol; the socket closes as the protocol's rules decided."""

    http_status = 400
    err_code = ErrorCode.BAD_REQUEST

    def __init__(self, closure: Closure, detail: str) -> None:
        super().__init__(detail)
        self.closure = closure

    @classmethod
    def of(cls, violation: ProtocolViolation) -> ProtocolBroken:
        """The gateway's error for a violation the protocol's rules raised."""
        return cls(violation.closure, str(violation))


class TextRejected(ClientFault):
    closure = Closure.for_reason(CloseReason.INVALID_MESSAGE)
    http_status = 400
    err_code = ErrorCode.BAD_REQUEST


class CharacterBudgetExceeded(ClientFault):
    closure = Closure.for_reason(CloseReason.CHARACTER_BUDGET)
    http_status = 429
    err_code = ErrorCode.TOO_MANY_REQUESTS


class SlowClient(ClientFault):
    closure = Closure.for_reason(CloseReason.SEND_FAILED)


class UpstreamError(GatewayError):
    """Deepgram (or whatever stands in for it) failed; `error_class` decides what happens next."""

    error_class: ClassVar[ErrorClass] = ErrorClass.TRANSIENT
    http_status = 502
    err_code = ErrorCode.INTERNAL

    @property
    def err_msg(self) -> str:
        return str(self)[:MAX_UPSTREAM_DETAIL_CHARS] or "synthesis failed"

    @property
    def counts_against_breaker(self) -> bool:
        """Whether this failure says something about the upstream's health (not the request's)."""
        return self.error_class in (
            ErrorClass.TRANSIENT,
            ErrorClass.RATE_LIMITED,
            ErrorClass.UPSTREAM_PROTOCOL,
        )


class UpstreamUnavailable(UpstreamError):
    http_status = 503
    err_code = ErrorCode.UNAVAILABLE


class UpstreamTimeout(UpstreamUnavailable):
    http_status = 504


class CircuitOpen(UpstreamUnavailable):
    @property
    def counts_against_breaker(self) -> bool:
        return False  # the breaker refused; no attempt was made


class PoolExhausted(UpstreamUnavailable):
    @property
    def counts_against_breaker(self) -> bool:
        return False  # our own capacity, not the upstream's health


class UpstreamRateLimited(UpstreamError):
    error_class = ErrorClass.RATE_LIMITED
    http_status = 429
    err_code = ErrorCode.TOO_MANY_REQUESTS


class UpstreamAuthFailed(UpstreamError):
    error_class = ErrorClass.AUTH
    http_status = 503  # the client's token was fine; the fleet's key is not
    err_code = ErrorCode.UNAVAILABLE


@dataclass(frozen=True, slots=True)
class UpstreamAnswer:
    """An upstream REST refusal as it came: relayed to a REST client unchanged (clients branch on
    Deepgram's own `err_code`)."""

    status: int
    body: bytes
    content_type: str
    request_id: str  # upstream's `dg-request-id`, the one the body names
    error_header: str  # upstream's `dg-error`


class UpstreamRejected(UpstreamError):
    error_class = ErrorClass.CLIENT_ERROR
    closure = Closure.for_reason(CloseReason.INVALID_MESSAGE)
    http_status = 400
    err_code = ErrorCode.BAD_REQUEST

    def __init__(self, message: str, answer: UpstreamAnswer | None = None) -> None:
        super().__init__(message)
        self.answer = answer


class UpstreamProtocolError(UpstreamError):
    error_class = ErrorClass.UPSTREAM_PROTOCOL


def error_for_status(status: int, detail: str, answer: UpstreamAnswer | None = None) -> UpstreamError:
    """The error for an upstream HTTP status (a refused upgrade or a REST answer); a client error keeps
    the upstream `answer` to relay."""
    if status in (401, 403):
        return UpstreamAuthFailed(f"upstream refused the key ({status}): {detail}")
    if status == 429:
        return UpstreamRateLimited(f"upstream rate limit (429): {detail}")
    if status >= 500:
        return UpstreamUnavailable(f"upstream error {status}: {detail}")
    if 400 <= status < 500:
        return UpstreamRejected(f"upstream rejected the request ({status}): {detail}", answer)
    return UpstreamProtocolError(f"unexpected upstream status {status}: {detail}")


def error_for_close(code: int | None, reason: str) -> UpstreamError:
    """The error for an upstream socket that closed while an utterance needed it."""
    if code in (CloseCode.POLICY_VIOLATION, CloseCode.MESSAGE_TOO_BIG, CloseCode.UNSUPPORTED_DATA):
        if reason == CloseReason.CHARACTER_BUDGET:
            return UpstreamRateLimited(f"upstream closed {code} {reason}: socket character budget")
        return UpstreamRejected(f"upstream closed {code} {reason}")
    if code == CloseCode.NORMAL:
        return UpstreamProtocolError(f"upstream closed normally mid-utterance ({reason or 'no reason'})")
    return UpstreamUnavailable(f"upstream closed {code} {reason or 'without a reason'}")
