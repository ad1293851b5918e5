"""Messages of the speak WebSocket: parsing and writing, both directions (PROTOCOL.md, "WebSocket").

Client → server messages are strict: anything that is not one of the four is a protocol violation.
Server → client messages are lenient: unknown types and either Warning spelling are accepted, because
clients must never crash on what a newer server sends.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any

from ttsfleet.protocol.codes import CloseReason, Closure
from ttsfleet.protocol.untrusted import load_json


class MessageType(enum.StrEnum):
    """The `type` field of JSON text frames."""

    SPEAK = "Speak"
    FLUSH = "Flush"
    CLEAR = "Clear"
    CLOSE = "Close"
    METADATA = "Metadata"
    FLUSHED = "Flushed"
    CLEARED = "Cleared"
    WARNING = "Warning"


class WarningCode(enum.StrEnum):
    """Warning codes the server sends."""

    EXCESSIVE_FLUSH = "EXCESSIVE_FLUSH"


class ProtocolViolation(Exception):
    """The client broke the protocol; the socket must close with `closure`."""

    def __init__(self, closure: Closure, detail: str) -> None:
        super().__init__(detail)
        self.closure = closure


# --- client → server -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Speak:
    text: str

    def to_json(self) -> str:
        return json.dumps({"type": MessageType.SPEAK.value, "text": self.text}, ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class Flush:
    def to_json(self) -> str:
        return '{"type":"Flush"}'


@dataclass(frozen=True, slots=True)
class Clear:
    def to_json(self) -> str:
        return '{"type":"Clear"}'


@dataclass(frozen=True, slots=True)
class Close:
    def to_json(self) -> str:
        return '{"type":"Close"}'


ClientMessage = Speak | Flush | Clear | Close


def _invalid(detail: str) -> ProtocolViolation:
    return ProtocolViolation(Closure.for_reason(CloseReason.INVALID_MESSAGE), detail)


def parse_client_message(text: str) -> ClientMessage:
    """Parse one text frame from a client; raises ProtocolViolation (1008 DATA-0000) when malformed."""
    try:
        data: Any = load_json(text)
    except ValueError:
        raise _invalid("message is not valid JSON") from None
    if not isinstance(data, dict):
        raise _invalid("message is not a JSON object")
    kind = data.get("type")
    if kind == MessageType.SPEAK:
        speak_text = data.get("text")
        if not isinstance(speak_text, str):
            raise _invalid("Speak needs a string field 'text'")
        return Speak(speak_text)
    if kind == MessageType.FLUSH:
        return Flush()
    if kind == MessageType.CLEAR:
        return Clear()
    if kind == MessageType.CLOSE:
        return Close()
    # The type is client text: only its length is told, never echoed into a log or a close reason.
    if isinstance(kind, str):
        raise _invalid(f"unknown message type ({len(kind)} characters)")
    raise _invalid("message has no type")


# --- server → client -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Metadata:
    request_id: str
    model_name: str
    model_version: str
    model_uuid: str

    def to_json(self) -> str:
        return json.dumps(
            {
                "type": MessageType.METADATA.value,
                "request_id": self.request_id,
                "model_name": self.model_name,
                "model_version": self.model_version,
                "model_uuid": self.model_uuid,
            }
        )


@dataclass(frozen=True, slots=True)
class Flushed:
    sequence_id: int

    def to_json(self) -> str:
        return json.dumps({"type": MessageType.FLUSHED.value, "sequence_id": self.sequence_id})


@dataclass(frozen=True, slots=True)
class Cleared:
    sequence_id: int

    def to_json(self) -> str:
        return json.dumps({"type": MessageType.CLEARED.value, "sequence_id": self.sequence_id})


@dataclass(frozen=True, slots=True)
class Warning:
    code: str
    description: str

    def to_json(self, spelling: WarningSpelling | None = None) -> str:
        """Write with the documented fields, the live service's, or both (the default)."""
        spelling = spelling or WarningSpelling.BOTH
        body: dict[str, str] = {"type": MessageType.WARNING.value}
        if spelling in (WarningSpelling.DOCUMENTED, WarningSpelling.BOTH):
            body["description"] = self.description
            body["code"] = self.code
        if spelling in (WarningSpelling.LIVE, WarningSpelling.BOTH):
            body["warn_code"] = self.code
            body["warn_msg"] = self.description
        return json.dumps(body)


class WarningSpelling(enum.StrEnum):
    """How a Warning names its fields: the spec's `code`/`description`, or the live `warn_code`/`warn_msg`."""

    DOCUMENTED = "documented"
    LIVE = "live"
    BOTH = "both"


@dataclass(frozen=True, slots=True)
class UnknownMessage:
    """A server message of a type this client does not know: log it and go on."""

    raw: str


ServerMessage = Metadata | Flushed | Cleared | Warning | UnknownMessage


def parse_server_message(text: str) -> ServerMessage:
    """Parse a text frame from the server; never raises on well-formed JSON of an unknown shape."""
    try:
        data: Any = load_json(text)
    except ValueError:
        return UnknownMessage(text)
    if not isinstance(data, dict):
        return UnknownMessage(text)
    kind = data.get("type")
    try:
        if kind == MessageType.METADATA:
            return Metadata(
                request_id=str(data.get("request_id", "")),
                model_name=str(data.get("model_name", "")),
                model_version=str(data.get("model_version", "")),
                model_uuid=str(data.get("model_uuid", "")),
            )
        if kind == MessageType.FLUSHED:
            return Flushed(int(data["sequence_id"]))
        if kind == MessageType.CLEARED:
            return Cleared(int(data["sequence_id"]))
        if kind == MessageType.WARNING:
            code = data.get("code", data.get("warn_code", ""))
            description = data.get("description", data.get("warn_msg", ""))
            return Warning(str(code), str(description))
    except (KeyError, TypeError, ValueError):
        return UnknownMessage(text)
    return UnknownMessage(text)
