"""Errors of the speak client, each carrying what the extension reports and whether a retry may help.

SpeakError
├── ConfigError          a property is missing or invalid (fatal, nothing was sent)
├── HandshakeRefused     the upgrade was answered with an HTTP status (400/401/403 fatal, 429/5xx not)
├── ConnectionLost       the socket closed or reset (1011/1012/1001/1006 retryable)
├── VendorReported       the server said what went wrong in a message of its own
│   ├── ServerError      an `Error` message (the request fails, the socket is replaced)
│   └── FlushSkipped     a Flush skipped with `EXCESSIVE_FLUSH` (part of a request would have no audio)
└── SpeakTimeout         the server went silent while audio was owed
"""

from __future__ import annotations

# Close codes after which a new socket is expected to work (PROTOCOL.md, "Limits and close codes";
# 1012 is the gateway's drain, 1001 going away, 1006 an abnormal close without a frame).
RETRYABLE_CLOSE_CODES = frozenset({1001, 1006, 1011, 1012, 1013})


class SpeakError(Exception):
    """Root of the tree: something kept a request from producing its audio."""

    fatal: bool = False
    retryable: bool = False

    @property
    def vendor_code(self) -> str:
        """The vendor's own status or close code, as TEN's vendor_info wants it (a string)."""
        return ""

    @property
    def vendor_message(self) -> str:
        return str(self)


class ConfigError(SpeakError):
    """A property is missing or invalid; raised before anything goes on the wire."""

    fatal = True


class HandshakeRefused(SpeakError):
    """The WebSocket upgrade was refused with an HTTP status."""

    def __init__(self, status: int, body: str = "", retry_after_s: float | None = None) -> None:
        super().__init__(f"handshake refused with HTTP {status}: {body[:200]}")
        self.status = status
        self.body = body[:200]  # bodies may echo request details: keep them short in logs
        self.retry_after_s = retry_after_s

    @property
    def fatal(self) -> bool:  # type: ignore[override]
        # Bad credentials, no access, or parameters the server rejects: retrying cannot help.
        return self.status in (400, 401, 403)

    @property
    def retryable(self) -> bool:  # type: ignore[override]
        return self.status == 429 or self.status >= 500

    @property
    def vendor_code(self) -> str:
        return str(self.status)

    @property
    def vendor_message(self) -> str:
        return self.body


class ConnectionLost(SpeakError):
    """The socket closed (with a close frame or without one) while it was needed."""

    def __init__(self, code: int | None, reason: str = "") -> None:
        super().__init__(f"connection closed with {code} {reason}".strip())
        self.code = code
        self.reason = reason

    @property
    def retryable(self) -> bool:  # type: ignore[override]
        return self.code is None or self.code in RETRYABLE_CLOSE_CODES

    @property
    def vendor_code(self) -> str:
        return "" if self.code is None else str(self.code)

    @property
    def vendor_message(self) -> str:
        return self.reason


class VendorReported(SpeakError):
    """A failure the server named in a message of its own, with its code and description."""

    def __init__(self, what: str, code: str, message: str) -> None:
        super().__init__(f"{what}: {code} {message}".strip())
        self.code = code
        self.message = message

    @property
    def vendor_code(self) -> str:
        return self.code

    @property
    def vendor_message(self) -> str:
        return self.message


class ServerError(VendorReported):
    """The server sent `{"type": "Error", …}`: the request cannot complete on this socket."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__("the server reported an error", code, message)


class FlushSkipped(VendorReported):
    """The server skipped a Flush (`EXCESSIVE_FLUSH`): the text before it would never be spoken."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__("the server skipped a Flush", code, message)


class SpeakTimeout(SpeakError):
    """The server stopped answering while audio, Flushed or Cleared was owed."""

    retryable = True
