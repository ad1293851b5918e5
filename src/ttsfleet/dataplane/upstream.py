"""The upstream speak WebSocket, over the `websockets` library: the only module that imports it.

Every websockets or OS error is translated here into the gateway's error tree (`errors.py`), most
specific first, so the pool and the relay never see a foreign exception.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import structlog
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, WebSocketException
from websockets.frames import Frame, Opcode
from websockets.protocol import Event, State

from ttsfleet.dataplane import errors
from ttsfleet.dataplane.seams import AudioTap, UpstreamSocket
from ttsfleet.protocol import (
    REQUEST_ID_HEADERS,
    ErrorBody,
    Metadata,
    SpeakOptions,
    parse_server_message,
    read_response_header,
)
from ttsfleet.protocol.headers import ERROR_HEADER

log = structlog.get_logger(__name__)

SPEAK_PATH = "/v1/speak"
# Audio frames are a few KiB; a megabyte-sized frame from upstream means something is wrong.
MAX_FRAME_BYTES = 1 << 20


@contextmanager
def translated_errors() -> Iterator[None]:
    """Turn websockets' and the OS's errors into ours, chained."""
    try:
        yield
    except ConnectionClosed as error:
        frame = error.rcvd
        raise errors.error_for_close(frame.code if frame else None, frame.reason if frame else "") from error
    except InvalidStatus as error:
        response = error.response
        raw = bytes(response.body or b"")
        body = ErrorBody.parse(raw)
        detail = (body.err_msg if body else "") or response.headers.get("dg-error", "")
        answer = errors.UpstreamAnswer(
            response.status_code,
            raw,
            response.headers.get("content-type", "application/json"),
            read_response_header(response.headers, REQUEST_ID_HEADERS) or (body.request_id if body else ""),
            response.headers.get(ERROR_HEADER, ""),
        )
        raise errors.error_for_status(response.status_code, detail[:200], answer) from error
    except (InvalidHandshake, WebSocketException) as error:
        raise errors.UpstreamProtocolError(
            f"upstream handshake or framing failed: {type(error).__name__}"
        ) from error
    except OSError as error:
        raise errors.UpstreamUnavailable(f"upstream connection failed: {type(error).__name__}") from error


class TappedConnection(ClientConnection):
    """A client connection that offers each whole binary frame to a tap before queuing it for `recv`.

    Relayed there and then, an audio frame skips what `recv` costs per frame: websockets' message
    queue, a future, a task switch into the relay and its deadline's arm and disarm. Order is kept by
    offering a frame only while no message waits to be read (`unread`: read them with `read`, never
    `recv`) and no fragmented one is under way.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tap: AudioTap | None = None
        self.unread = 0  # whole messages queued and not yet returned by `read`
        self._mid_message = False

    def process_event(self, event: Event) -> None:
        if isinstance(event, Frame) and event.opcode in _DATA_OPCODES:
            if (
                self.tap is not None
                and event.fin
                and event.opcode is Opcode.BINARY
                and not self.unread
                and not self._mid_message
                and self._tapped(self.tap, bytes(event.data))  # a parsed frame holds a bytearray
            ):
                return
            self._mid_message = not event.fin
            if event.fin:
                self.unread += 1
        super().process_event(event)

    async def read(self) -> str | bytes:
        """The next message not taken by the tap (`recv`, counted out of `unread`)."""
        message = await self.recv()
        self.unread -= 1
        return message

    async def send_texts(self, texts: Iterable[str]) -> None:
        """Text messages framed one by one and written together (`send_data`): an utterance's Speak
        and Flush leave in one system call, where a `send` each costs a write each."""
        async with self.send_context():
            for text in texts:
                self.protocol.send_text(text.encode())

    def send_texts_now(self, texts: Iterable[str]) -> bool:
        """`send_texts` where it would not wait: the connection open and its writes not paused (what
        `send_context` waits for); False, having sent nothing, otherwise. No task switch before the
        write, so text read from a client can leave in the same pass of the loop."""
        if self.protocol.state is not State.OPEN or self.paused or self.transport.is_closing():
            return False
        for text in texts:
            self.protocol.send_text(text.encode())
        self.send_data()
        return True

    def send_data(self) -> None:
        """What the protocol has to send, its frames in one write: websockets writes each frame with a
        write of its own. An empty chunk, always the last, asks for a half-close, as websockets does it."""
        pending = self.protocol.data_to_send()
        frames = [data for data in pending if data]
        if frames:
            self.transport.write(frames[0] if len(frames) == 1 else b"".join(frames))
        if len(frames) < len(pending):
            if not self.transport.can_write_eof():
                self.transport.close()  # TLS: no half-close
                return
            # Its errors are not documented (uvloop raises RuntimeError); websockets ignores them too.
            with contextlib.suppress(Exception):
                self.transport.write_eof()

    def _tapped(self, tap: AudioTap, audio: bytes) -> bool:
        try:
            return tap(audio)
        except Exception as error:
            # Raised here, it would end this upstream socket; the frame goes the ordinary way instead,
            # where the relay meets the same fault in its own task and answers it as it always has.
            log.warning(
                "audio tap failed; the socket's frames go through receive", error=type(error).__name__
            )
            self.tap = None
            return False


_DATA_OPCODES = frozenset({Opcode.TEXT, Opcode.BINARY, Opcode.CONT})


class WebSocketUpstream:
    """One open upstream socket."""

    def __init__(self, connection: TappedConnection, request_id: str) -> None:
        self._connection = connection
        self._request_id = request_id

    @property
    def request_id(self) -> str:
        return self._request_id

    @property
    def is_open(self) -> bool:
        return self._connection.state is State.OPEN

    async def send_texts(self, *texts: str) -> None:
        with translated_errors():
            await self._connection.send_texts(texts)

    def send_texts_now(self, *texts: str) -> bool:
        with translated_errors():
            return self._connection.send_texts_now(texts)

    async def receive(self) -> str | bytes:
        # Every upstream frame passes here: a plain try costs nothing until an error, where the
        # context manager would build a generator per frame.
        try:
            return await self._connection.read()
        except (WebSocketException, OSError):
            with translated_errors():
                raise

    def tap_audio(self, tap: AudioTap | None) -> None:
        self._connection.tap = tap

    async def ping(self) -> None:
        with translated_errors():
            pong = await self._connection.ping()
            await pong

    async def close(self) -> None:
        # Closing a broken socket: there is nothing left to tell it.
        with contextlib.suppress(WebSocketException, OSError):
            await self._connection.close()


class WebSocketConnector:
    """Opens upstream sockets at `base_url` within `timeout_s`, including the Metadata message."""

    def __init__(self, base_url: str, timeout_s: float) -> None:
        self._base_url = base_url.rstrip("/")
        self._timeout_s = timeout_s

    async def connect(self, options: SpeakOptions, key: str) -> tuple[UpstreamSocket, str]:
        url = f"{self._base_url}{SPEAK_PATH}?{options.to_query()}"
        try:
            async with asyncio.timeout(self._timeout_s):
                with translated_errors():
                    connection = await connect(
                        url,
                        additional_headers={"Authorization": f"Token {key}"},
                        compression=None,  # audio does not compress; deflate only costs CPU
                        open_timeout=None,  # the surrounding timeout covers the whole handshake
                        ping_interval=None,  # the pool pings idle sockets itself
                        max_size=MAX_FRAME_BYTES,
                        proxy=None,
                        create_connection=TappedConnection,
                    )
                assert isinstance(connection, TappedConnection)  # create_connection's class
                request_id = next(
                    (
                        connection.response.headers[h]
                        for h in REQUEST_ID_HEADERS
                        if connection.response and h in connection.response.headers
                    ),
                    "",
                )
                upstream = WebSocketUpstream(connection, request_id)
                try:
                    first = await upstream.receive()
                except BaseException:
                    await connection.close()
                    raise
        except TimeoutError as error:
            raise errors.UpstreamTimeout(
                f"upstream connect took longer than {self._timeout_s:g} s"
            ) from error
        if not isinstance(first, str) or not isinstance(parse_server_message(first), Metadata):
            await connection.close()
            raise errors.UpstreamProtocolError("upstream did not send Metadata first")
        return upstream, first
