"""One WebSocket to /v1/speak: typed sends, and a single reader task that turns frames into events.

The reader is the only task that ever receives on the socket (two receivers would steal each other's
frames); everyone else reads `events`. A close, seen by the reader or by a failed send, becomes one
`Closed` event and makes every later send raise `ConnectionLost` at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from dataclasses import dataclass
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from . import deadlines, discovery, errors

log = logging.getLogger(__name__)

_CREDENTIAL = re.compile(r"(authorization:\s*(?:token|bearer))\s+\S+", re.IGNORECASE)
_REQUEST_LINE = re.compile(r"^(> GET )(\S+)")


class _WireRedaction(logging.Filter):
    """websockets logs the handshake at DEBUG, Authorization header and query included: mask both."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _CREDENTIAL.sub(r"\1 ***", message)
        redacted = _REQUEST_LINE.sub(lambda m: m.group(1) + discovery.redacted_url(m.group(2)), redacted)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


# The logger handed to websockets: every line it writes about our sockets passes the redaction.
wire_log = logging.getLogger(f"{__name__}.wire")
wire_log.addFilter(_WireRedaction())


@dataclass(frozen=True, slots=True)
class Audio:
    data: bytes


@dataclass(frozen=True, slots=True)
class Flushed:
    sequence_id: int


@dataclass(frozen=True, slots=True)
class Cleared:
    sequence_id: int


@dataclass(frozen=True, slots=True)
class Warning:  # the protocol's own name for the message
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class ServerError:
    """The server's `Error` message; a close usually follows, but the socket is done either way."""

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Closed:
    code: int | None
    reason: str


Event = Audio | Flushed | Cleared | Warning | ServerError | Closed


def parse_text_frame(text: str) -> Event | None:
    """A server text frame as an event; Metadata and unknown types give None (logged by the caller)."""
    try:
        message: Any = json.loads(text)
    except ValueError:
        return None
    if not isinstance(message, dict):
        return None
    kind = message.get("type")
    if kind == "Flushed":
        return Flushed(int(message.get("sequence_id", -1)))
    if kind == "Cleared":
        return Cleared(int(message.get("sequence_id", -1)))
    if kind == "Warning":
        # The spec says code/description; the live service sends warn_code/warn_msg: accept both.
        code = message.get("warn_code") or message.get("code") or ""
        text_ = message.get("warn_msg") or message.get("description") or ""
        return Warning(str(code), str(text_))
    if kind == "Error":
        # Deepgram's error bodies say err_code/err_msg; the v2 spec says code/description: accept both.
        code = message.get("err_code") or message.get("code") or ""
        text_ = message.get("err_msg") or message.get("description") or message.get("message") or ""
        return ServerError(str(code), str(text_))
    return None


def _retry_after_s(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class SpeakConnection:
    """An open speak socket; create with `open_connection`."""

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws
        self.events: asyncio.Queue[Event] = asyncio.Queue()
        self.closed: Closed | None = None
        self.request_id = ws.response.headers.get("dg-request-id", "") if ws.response else ""
        self._reader = asyncio.create_task(self._read(), name=f"speak-reader-{id(self):x}")

    @property
    def is_open(self) -> bool:
        return self.closed is None

    async def _read(self) -> None:
        try:
            async for frame in self._ws:
                if isinstance(frame, bytes):
                    self.events.put_nowait(Audio(frame))
                    continue
                event = parse_text_frame(frame)
                if event is None:
                    log.debug("speak socket: skipped a text frame (Metadata or unknown type)")
                else:
                    self.events.put_nowait(event)
        except ConnectionClosed:
            pass  # the close code is read below either way
        except Exception:  # a reader must never die silently: report it as a lost connection
            log.exception("speak socket reader failed")
        self._mark_closed()

    def _mark_closed(self) -> None:
        if self.closed is None:
            self.closed = Closed(self._ws.close_code, self._ws.close_reason or "")
            self.events.put_nowait(self.closed)

    async def _send(self, message: dict[str, str]) -> None:
        if self.closed is not None:
            raise errors.ConnectionLost(self.closed.code, self.closed.reason)
        try:
            await self._ws.send(json.dumps(message))
        except ConnectionClosed as exc:
            # The server closed an idle socket we had not noticed yet: say so now, not at the next read.
            self._mark_closed()
            raise errors.ConnectionLost(self._ws.close_code, self._ws.close_reason or "") from exc

    async def speak(self, text: str) -> None:
        await self._send({"type": "Speak", "text": text})

    async def flush(self) -> None:
        await self._send({"type": "Flush"})

    async def clear(self) -> None:
        await self._send({"type": "Clear"})

    async def close(self) -> None:
        """Say `Close`, close now (pending audio is not wanted) and wait for the reader to finish."""
        if self.closed is None:
            # The protocol's own goodbye first, so the server ends the session cleanly rather than
            # seeing a bare close frame.
            with contextlib.suppress(Exception):
                async with deadlines.timeout(1.0):
                    await self._ws.send(json.dumps({"type": "Close"}))
        with contextlib.suppress(Exception):
            async with deadlines.timeout(2.0):
                await self._ws.close()
        if not self._reader.done():
            self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader
        self._mark_closed()


async def open_connection(url: str, token: str, timeout_s: float) -> SpeakConnection:
    """Open a speak socket with `Authorization: Token …`; refusals and failures become SpeakErrors."""
    try:
        ws = await websockets.connect(
            url,
            additional_headers={"Authorization": f"Token {token}"},
            open_timeout=timeout_s,
            max_size=None,  # audio frames are the server's choice; do not cut them
            # Speech does not compress: permessage-deflate (websockets' default offer) only costs CPU on
            # both ends, inflating every frame here.
            compression=None,
            # No proxy discovery: the backend is an in-cluster Service or an explicit URL.
            proxy=None,
            logger=wire_log,
        )
    except InvalidStatus as exc:
        response = exc.response
        body = response.body.decode("utf-8", "replace") if response.body else ""
        raise errors.HandshakeRefused(response.status_code, body, _retry_after_s(response.headers)) from exc
    except InvalidURI:
        # Its text repeats the whole URL, query parameters included: say only what is wrong.
        raise errors.ConnectionLost(None, "handshake failed: the URL is not a valid WebSocket URL") from None
    except InvalidHandshake as exc:
        raise errors.ConnectionLost(None, f"handshake failed: {exc}") from exc
    except (OSError, TimeoutError) as exc:
        raise errors.ConnectionLost(None, f"cannot connect: {exc}") from exc
    return SpeakConnection(ws)
