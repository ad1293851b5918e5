"""Close codes, close reasons and HTTP error bodies of the speak protocol (PROTOCOL.md, "Limits")."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any

from ttsfleet.protocol.untrusted import load_json


class CloseCode(enum.IntEnum):
    """WebSocket close codes the speak protocol uses."""

    NORMAL = 1000
    UNSUPPORTED_DATA = 1003  # a binary frame from the client
    POLICY_VIOLATION = 1008  # bad JSON, unknown type, character budget
    MESSAGE_TOO_BIG = 1009  # frame or Speak over its limit
    INTERNAL_ERROR = 1011  # NET-* reasons: retry on a new socket
    SERVICE_RESTART = 1012  # fleet addition: a draining gateway asks clients to reconnect elsewhere


class CloseReason(enum.StrEnum):
    """Reason strings carried in the close frame's payload."""

    NONE = ""
    BINARY_MESSAGE = "MESSAGE-0000"
    INVALID_MESSAGE = "DATA-0000"
    CHARACTER_BUDGET = "DATA-0001"
    FRAME_TOO_BIG = "BIG-0000"
    SPEAK_TOO_BIG = "BIG-0001"
    INTERNAL = "NET-0000"
    CLIENT_IDLE = "NET-0001"
    SEND_FAILED = "NET-0002"
    SOCKET_TOO_OLD = "NET-0003"
    DRAINING = "SERVICE-RESTART"
    TOKEN_REVOKED = "TOKEN-REVOKED"  # fleet addition: the session's token left the tokens file


_CODE_OF_REASON: dict[CloseReason, CloseCode] = {
    CloseReason.NONE: CloseCode.NORMAL,
    CloseReason.BINARY_MESSAGE: CloseCode.UNSUPPORTED_DATA,
    CloseReason.INVALID_MESSAGE: CloseCode.POLICY_VIOLATION,
    CloseReason.CHARACTER_BUDGET: CloseCode.POLICY_VIOLATION,
    CloseReason.FRAME_TOO_BIG: CloseCode.MESSAGE_TOO_BIG,
    CloseReason.SPEAK_TOO_BIG: CloseCode.MESSAGE_TOO_BIG,
    CloseReason.INTERNAL: CloseCode.INTERNAL_ERROR,
    CloseReason.CLIENT_IDLE: CloseCode.INTERNAL_ERROR,
    CloseReason.SEND_FAILED: CloseCode.INTERNAL_ERROR,
    CloseReason.SOCKET_TOO_OLD: CloseCode.INTERNAL_ERROR,
    CloseReason.DRAINING: CloseCode.SERVICE_RESTART,
    CloseReason.TOKEN_REVOKED: CloseCode.POLICY_VIOLATION,
}

# The reasons a client should answer by opening a new socket and trying again.
RETRYABLE_REASONS: frozenset[CloseReason] = frozenset(
    {
        CloseReason.INTERNAL,
        CloseReason.CLIENT_IDLE,
        CloseReason.SEND_FAILED,
        CloseReason.SOCKET_TOO_OLD,
        CloseReason.DRAINING,
    }
)


@dataclass(frozen=True, slots=True)
class Closure:
    """A close frame: code and reason, always consistent with each other."""

    code: CloseCode
    reason: CloseReason = CloseReason.NONE

    @classmethod
    def for_reason(cls, reason: CloseReason) -> Closure:
        """The closure the protocol prescribes for `reason`."""
        return cls(_CODE_OF_REASON[reason], reason)

    @classmethod
    def parse(cls, code: int, reason: str) -> Closure | None:
        """Recognise a received close frame; None when it is not one of the protocol's."""
        try:
            return cls(CloseCode(code), CloseReason(reason))
        except ValueError:
            return None

    @property
    def is_retryable(self) -> bool:
        """Whether a client should retry on a new socket (PROTOCOL.md: 1011 and the fleet's 1012)."""
        return self.reason in RETRYABLE_REASONS or self.code in (
            CloseCode.INTERNAL_ERROR,
            CloseCode.SERVICE_RESTART,
        )


NORMAL_CLOSURE = Closure(CloseCode.NORMAL)


class ErrorCode(enum.StrEnum):
    """`err_code` values in HTTP error bodies and `dg-error`-refused handshakes."""

    BAD_REQUEST = "Bad Request"
    INVALID_QUERY_PARAMETER = "INVALID_QUERY_PARAMETER"
    UNKNOWN_MODEL = "UNKNOWN_MODEL"
    EMPTY_TEXT = "EMPTY_TEXT"
    INVALID_AUTH = "INVALID_AUTH"
    INSUFFICIENT_PERMISSIONS = "INSUFFICIENT_PERMISSIONS"
    NOT_FOUND = "NOT_FOUND"
    TEXT_TOO_LONG = "PAYLOAD_TOO_LARGE"
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
    TOO_MANY_REQUESTS = "TOO_MANY_REQUESTS"
    INTERNAL = "INTERNAL_SERVER_ERROR"
    UNAVAILABLE = "SERVICE_UNAVAILABLE"


HTTP_STATUS_OF_ERROR: dict[ErrorCode, int] = {
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.INVALID_QUERY_PARAMETER: 400,
    ErrorCode.UNKNOWN_MODEL: 400,
    ErrorCode.EMPTY_TEXT: 400,
    ErrorCode.INVALID_AUTH: 401,
    ErrorCode.INSUFFICIENT_PERMISSIONS: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.TEXT_TOO_LONG: 413,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorCode.TOO_MANY_REQUESTS: 429,
    ErrorCode.INTERNAL: 500,
    ErrorCode.UNAVAILABLE: 503,
}

_ERROR_OF_STATUS: dict[int, ErrorCode] = {
    400: ErrorCode.BAD_REQUEST,
    401: ErrorCode.INVALID_AUTH,
    403: ErrorCode.INSUFFICIENT_PERMISSIONS,
    404: ErrorCode.NOT_FOUND,
    413: ErrorCode.TEXT_TOO_LONG,
    415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    429: ErrorCode.TOO_MANY_REQUESTS,
    500: ErrorCode.INTERNAL,
    503: ErrorCode.UNAVAILABLE,
}


def error_code_for_status(status: int) -> ErrorCode:
    """The err_code to send with an HTTP status when nothing more specific is known."""
    if status in _ERROR_OF_STATUS:
        return _ERROR_OF_STATUS[status]
    return ErrorCode.INTERNAL if status >= 500 else ErrorCode.BAD_REQUEST


@dataclass(frozen=True, slots=True)
class ErrorBody:
    """The JSON body of a refused handshake or failed REST request: `{err_code, err_msg, request_id}`."""

    err_code: str
    err_msg: str
    request_id: str

    def to_json(self) -> str:
        return json.dumps({"err_code": self.err_code, "err_msg": self.err_msg, "request_id": self.request_id})

    @classmethod
    def parse(cls, raw: bytes | str) -> ErrorBody | None:
        """Read an error body; None when it is not one (a proxy's HTML page, say)."""
        try:
            data: Any = load_json(raw)
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(data, dict):
            return None
        return cls(
            err_code=str(data.get("err_code", "")),
            err_msg=str(data.get("err_msg", "")),
            request_id=str(data.get("request_id", "")),
        )


def is_retryable_status(status: int) -> bool:
    """PROTOCOL.md, REST: retry 429 and 5xx only."""
    return status == 429 or status >= 500
