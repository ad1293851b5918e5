"""The gateway's HTTP and WebSocket connections, bounded below the app.

uvicorn's own protocols leave four gaps an attacker on the network can use without a token: httptools
accumulates URLs and headers without limit, nothing times a connection out before its first request,
a request body may trickle forever, and a WebSocket close waits until the client reads (so a client that
stops reading is never closed and its kernel buffers stay). The subclasses here close them, with the
answer each protocol has for it (414, 431, 408, close 1008 DATA-0000), before allocation grows with the
input; the bounds are `connections` settings and docs/security.md lists them.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import http
import logging
import socket
import struct
import sys
import termios
from collections.abc import Callable
from typing import Any, ClassVar, cast

import structlog
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from ttsfleet.dataplane.settings import ConnectionSettings
from ttsfleet.dataplane.upgrades import Turn, UpgradePacer
from ttsfleet.protocol import CloseReason, Closure

log = structlog.get_logger(__name__)

UNFINISHED_MESSAGE_CLOSURE = Closure.for_reason(CloseReason.INVALID_MESSAGE)
# uvicorn and websockets write three INFO lines for every client WebSocket ("[accepted]", "connection
# open", "connection closed") through the stdlib LogRecord path, which repeat our own "session opened"
# and "session closed" and cost a pod taking a thousand sessions more CPU than their upgrades' headers.
# Client sockets log through this logger, which passes warnings and errors only.
CLIENT_SOCKETS_LOGGER = logging.getLogger("ttsfleet.dataplane.client_sockets")
CLIENT_SOCKETS_LOGGER.setLevel(logging.WARNING)
REFUSAL_LINGER_S = 1.0  # a refused client's bytes in flight are read and dropped this long
# A closing connection with unsent bytes is looked at again after CLOSE_FIRST_POLL_S, then twice as long
# each time up to CLOSE_POLL_S: a client that reads is let go within a round trip or two of its last byte,
# one that reads nothing costs a look a second.
CLOSE_FIRST_POLL_S = 0.01
CLOSE_POLL_S = 1.0
# Linux's SIOCOUTQNSD (linux/sockios.h): bytes in a socket's send queue not yet sent. Not SIOCOUTQ, which
# also counts bytes sent but not yet acknowledged: the Close frame just written stays unacknowledged for
# the peer's delayed ACK, and every clean close waited a whole poll for it. Sent bytes need no socket of
# ours: the kernel delivers them after the close. Elsewhere only our own buffer is watched.
_SIOCOUTQNSD = 0x894B
_NOT_SENT: int | None = _SIOCOUTQNSD if sys.platform == "linux" else None
# A connection without a request head may be dropped as idle, when too many wait for theirs, only once
# it has been open this long: a crowd's clients write their requests well within it.
PENDING_GRACE_S = 1.0
# Beyond the cap with requests still unread, the cap is looked at again this soon: they are read within a
# pass or two, and a timer, not the next pass, keeps this from turning into a loop of its own.
PENDING_RECHECK_S = 0.01
# The ASGI scope extension through which a session finds its socket's `write_now` (`sending.WriteNow`)
# and `settle` (its upgrade needs no more CPU for now: the next waiting upgrade may go, `upgrades.py`).
WRITE_NOW_EXTENSION = "ttsfleet.write_now"
# A refused upgrade when too many wait: the client retries after this many seconds.
UPGRADE_RETRY_AFTER_S = 1


class _Refused(Exception):
    """Internal: stops httptools mid-chunk once a request is refused."""


class PendingConnections:
    """Connections without a whole request head yet, oldest first; beyond the cap the oldest idle one is
    dropped.

    Dropping the oldest rather than refusing the newest keeps the pod answering: a probe or a client
    that sends its request at once always gets in, and an attacker's idle sockets are what is let go.
    A connection counts as idle only once it has been open for `PENDING_GRACE_S` and nothing it sent
    waits to be read: a crowd reconnecting at once (a pod restarted behind a Service of a thousand agents) is
    accepted faster than its clients write their requests, and dropping its oldest half at once, as the
    pod did, reset hundreds of sessions that were about to speak. Beyond the cap, at most the
    connections of one grace period are kept longer (`docs/security.md`).
    """

    def __init__(self, cap: int, grace_s: float = PENDING_GRACE_S) -> None:
        self._cap = cap
        self._grace_s = grace_s
        self._waiting: dict[GuardedHttpProtocol, float] = {}  # → when it was accepted
        self._recheck: asyncio.TimerHandle | None = None
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._waiting)

    def add(self, connection: GuardedHttpProtocol) -> None:
        self._waiting.pop(connection, None)  # a kept-alive connection's next request: last in line again
        self._waiting[connection] = connection.loop.time()
        if len(self._waiting) > self._cap and self._recheck is None:
            self._enforce()

    def discard(self, connection: GuardedHttpProtocol) -> None:
        self._waiting.pop(connection, None)

    def _enforce(self) -> None:
        self._recheck = None
        excess = len(self._waiting) - self._cap
        if excess <= 0:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        # Oldest first, and no further than the excess or the first one still in its grace: an attacker's
        # idle sockets are the oldest, so a connection beyond the cap costs a look or two, not one at
        # every pending connection.
        for connection, accepted_at in list(self._waiting.items()):
            if excess == 0:
                return
            if now - accepted_at < self._grace_s:
                self._recheck = loop.call_at(accepted_at + self._grace_s, self._enforce)
                return
            if not connection.has_unread_bytes():
                del self._waiting[connection]
                self.dropped += 1
                excess -= 1
                connection.drop()
        if excess > 0:  # requests waiting to be read: read in the loop's next passes, then looked at again
            self._recheck = loop.call_later(PENDING_RECHECK_S, self._enforce)


def unsent_bytes(transport: asyncio.Transport) -> int:
    """Bytes written but not yet sent to the peer: the transport's buffer and what the kernel still holds
    back (a peer that reads nothing closes its window, and they stay here)."""
    pending = transport.get_write_buffer_size()
    sock = transport.get_extra_info("socket")
    if sock is not None and _NOT_SENT is not None:
        with contextlib.suppress(OSError, ValueError):
            pending += struct.unpack("i", fcntl.ioctl(sock.fileno(), _NOT_SENT, b"\0\0\0\0"))[0]
    return pending


def unread_bytes(transport: asyncio.BaseTransport) -> int:
    """Bytes the peer sent that the kernel holds for us to read."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return 0
    with contextlib.suppress(OSError, ValueError):
        return int(struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0])
    return 0


def cancelled(timer: asyncio.TimerHandle | None) -> asyncio.TimerHandle | None:
    """Cancel a timer if there is one; always None, so `self._timer = cancelled(self._timer)` forgets it."""
    if timer is not None:
        timer.cancel()
    return None


def reset(transport: asyncio.Transport) -> None:
    """Drop a connection now, with whatever is queued for it: a plain abort (or close) leaves the kernel an
    orphaned socket that keeps retrying a client that reads nothing, megabytes queued, for minutes."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def _answer(status: int, explanation: str, extra_head: str = "") -> bytes:
    body = explanation.encode()
    phrase = http.HTTPStatus(status).phrase
    head = (
        f"HTTP/1.1 {status} {phrase}\r\ncontent-type: text/plain; charset=utf-8\r\n{extra_head}"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


class FlushingTransport:
    """A transport whose close waits for the client to take what is still unsent, but not forever.

    A plain close hands unsent bytes to the kernel, which keeps an orphaned socket with megabytes queued
    for minutes when the client has stopped reading. Here the socket stays ours until the client has
    taken everything (then a normal close) or has taken nothing for `stall_s` (then a reset).
    Everything else is the real transport's.
    """

    def __init__(self, real: asyncio.Transport, loop: asyncio.AbstractEventLoop, stall_s: float) -> None:
        self._real = real
        self._loop = loop
        self._stall_s = stall_s
        self._closing = False
        self._last_pending = 0
        self._last_progress = 0.0
        self._poll_s = CLOSE_FIRST_POLL_S

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._real.write(data)  # every frame passes here: spared the __getattr__ detour

    def is_closing(self) -> bool:
        return self._closing or self._real.is_closing()

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._last_pending, self._last_progress = unsent_bytes(self._real), self._loop.time()
        self._close_when_taken()

    def _close_when_taken(self) -> None:
        if self._real.is_closing():
            return
        pending = unsent_bytes(self._real)
        if not pending:
            self._real.close()
            return
        now = self._loop.time()
        if pending < self._last_pending:
            self._last_pending, self._last_progress = pending, now
        elif now - self._last_progress >= self._stall_s:
            log.info("client stopped reading; connection reset", unsent_bytes=pending)
            reset(self._real)
            return
        self._loop.call_later(min(self._poll_s, self._stall_s), self._close_when_taken)
        self._poll_s = min(2 * self._poll_s, CLOSE_POLL_S)


class GuardedHttpProtocol(HttpToolsProtocol):
    """httptools with bounded heads, head and body deadlines, and a deadline on stalled writes."""

    settings: ClassVar[ConnectionSettings]
    pending: ClassVar[PendingConnections]
    upgrades: ClassVar[UpgradePacer | None] = None
    write_stall_s: ClassVar[float]
    count_refusal: ClassVar[Callable[[int], None]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = False
        self._head_bytes = 0
        self._url_bytes = 0
        self._header_count = 0
        self._refusal: tuple[int, str] | None = None
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._stall_timer: asyncio.TimerHandle | None = None
        self._output_moved = False
        self._discarding = False

    # --- the request head ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        real = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's
        super().connection_made(FlushingTransport(real, self.loop, self.write_stall_s))  # type: ignore[arg-type]
        self._await_head()

    def _await_head(self) -> None:
        self._in_head = True
        self._head_bytes = self._url_bytes = self._header_count = 0
        self.pending.add(self)
        if self._head_timer is None and not self.transport.is_closing():
            self._head_timer = self.loop.call_later(self.settings.head_timeout_s, self._head_late)

    def _head_done(self) -> None:
        self._in_head = False
        self.pending.discard(self)
        self._head_timer = cancelled(self._head_timer)

    def data_received(self, data: bytes) -> None:
        if self._discarding:
            return
        counted = self._in_head  # a head that starts mid-chunk is counted from the next chunk
        super().data_received(data)
        if counted and self._in_head and self._refusal is None and not self.transport.is_closing():
            self._head_bytes += len(data)
            if self._head_bytes > self.settings.max_head_bytes:
                self._refuse(431, "Request header fields too large.")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._in_head:  # the next request on a kept-alive connection
            self._await_head()

    def on_url(self, url: bytes) -> None:
        self._url_bytes += len(url)
        if self._url_bytes > self.settings.max_url_bytes:
            self._refusal = (414, "URI too long.")
            raise _Refused
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.settings.max_headers:
            self._refusal = (431, "Too many header fields.")
            raise _Refused
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._head_done()
        super().on_headers_complete()
        if self._body_timer is None:
            self._body_timer = self.loop.call_later(self.settings.body_timeout_s, self._body_late)

    def on_message_complete(self) -> None:
        self._cancel_body_timer()
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        # httptools reports an exception raised in our callbacks as a parser error: answer ours instead.
        if self._refusal is not None:
            self._refuse(*self._refusal)
        else:
            type(self).count_refusal(400)
            log.debug("connection refused", status=400, reason=msg)
            super().send_400_response(msg)

    def handle_websocket_upgrade(self) -> None:
        self._head_done()
        self._cancel_body_timer()
        self._cancel_stall_timer()
        turn = Turn.NOW if self.upgrades is None else self.upgrades.ask(self, self._upgrade_in_turn)
        if turn is Turn.NOW:
            super().handle_websocket_upgrade()
        elif turn is Turn.QUEUED:
            self.transport.pause_reading()  # a client waits for the 101; anything sooner waits in the kernel
        else:
            retry = f"retry-after: {UPGRADE_RETRY_AFTER_S}\r\n"
            self._refuse(503, "Too many connections are being set up; retry shortly.", retry)

    def _upgrade_in_turn(self) -> None:
        assert self.upgrades is not None
        if self.transport.is_closing():
            self.upgrades.finished()  # gone while it waited: the turn passes on
            return
        self.transport.resume_reading()
        super().handle_websocket_upgrade()

    # --- deadlines ----------------------------------------------------------------------------------

    def _head_late(self) -> None:
        self._head_timer = None
        self._refuse(408, "Request head not received in time.")

    def _body_late(self) -> None:
        self._body_timer = None
        self._refuse(408, "Request body not received in time.")

    def _refuse(self, status: int, explanation: str, extra_head: str = "") -> None:
        self._head_done()
        self._cancel_body_timer()
        if self.transport.is_closing():
            return
        responding = self.cycle is not None and not self.cycle.response_complete
        if responding:
            self.cycle.disconnected = True  # the app's reads end; its answer is not written
        if not (responding and self.cycle.response_started):
            self.transport.write(_answer(status, explanation, extra_head))
        type(self).count_refusal(status)
        log.debug("connection refused", status=status, reason=explanation)
        self._close_after_answer()

    def _close_after_answer(self) -> None:
        """Close with the client possibly still sending: closing with its bytes unread would reset the
        connection and lose our answer, so stop sending, drop what still comes for a moment, then close."""
        self._discarding = True
        with contextlib.suppress(OSError, RuntimeError, NotImplementedError):
            self.transport.write_eof()
        self.loop.call_later(REFUSAL_LINGER_S, self.transport.close)

    def has_unread_bytes(self) -> bool:
        """Whether the client has sent bytes not read yet (its request may be among them)."""
        return not self.transport.is_closing() and unread_bytes(self.transport) > 0

    def drop(self) -> None:
        """Close at once without an answer: one of too many connections that never sent a request."""
        self._head_done()
        reset(self.transport)

    def pause_writing(self) -> None:
        super().pause_writing()
        self._watch_output()

    def resume_writing(self) -> None:
        self._output_moved = True
        super().resume_writing()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._body_timer is not None and not self.transport.is_closing():
            # Answered before its body ended (413, 401 …): stop reading the rest, however long it is.
            self._cancel_body_timer()
            self._close_after_answer()

    def _watch_output(self) -> None:
        """While a response cannot be written, watch the client: without progress for `write_stall_s`
        (our buffer drained below its low mark, or less left unsent), drop it. A client reading slowly,
        like a player at real time, makes progress and keeps its connection."""
        if self._stall_timer is None:
            pending = unsent_bytes(self.transport)
            if pending:
                self._stall_timer = self.loop.call_later(self.write_stall_s, self._check_output, pending)

    def _check_output(self, before: int) -> None:
        self._stall_timer = None
        pending = unsent_bytes(self.transport)
        if not pending:
            return
        if self._output_moved or pending < before:
            self._output_moved = False
            self._stall_timer = self.loop.call_later(self.write_stall_s, self._check_output, pending)
            return
        log.info("client stopped reading its response; connection dropped", unsent_bytes=pending)
        if self.cycle is not None:
            self.cycle.disconnected = True
        reset(self.transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_done()
        self._cancel_body_timer()
        self._cancel_stall_timer()
        if self.upgrades is not None:
            self.upgrades.withdraw(self)
        super().connection_lost(exc)

    def _cancel_body_timer(self) -> None:
        self._body_timer = cancelled(self._body_timer)

    def _cancel_stall_timer(self) -> None:
        self._stall_timer = cancelled(self._stall_timer)


class GuardedWebSocketProtocol(WebSocketsSansIOProtocol):
    """WebSockets whose close never waits for the client to read, and whose fragments have a deadline;
    and a direct way out for data frames (`write_now`, offered in the scope's extensions)."""

    settings: ClassVar[ConnectionSettings]
    upgrades: ClassVar[UpgradePacer | None] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.logger = CLIENT_SOCKETS_LOGGER
        self.conn.logger = CLIENT_SOCKETS_LOGGER
        self.conn.debug = False  # websockets' DEBUG lines quote headers and frames: never for clients
        self.close_timeout = self.settings.close_timeout_s
        self._fragment_timer: asyncio.TimerHandle | None = None
        # Made only by a paced upgrade (`GuardedHttpProtocol`), so it holds that upgrade's turn.
        self._holds_turn = self.upgrades is not None

    def settle(self) -> None:
        """This upgrade needs no more of the CPU for now (answered, gone, or waiting on upstream): the
        next waiting upgrade may go. Idempotent."""
        if self._holds_turn and self.upgrades is not None:
            self._holds_turn = False
            self.upgrades.finished()

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        if self.close_sent:  # websockets refused the handshake itself
            self.settle()
        else:  # accepted for the app: uvicorn has built its scope
            self.scope["extensions"][WRITE_NOW_EXTENSION] = {"write": self.write_now, "settle": self.settle}

    def write_now(self, frame: str | bytes) -> bool:
        """Write one data frame now if the socket takes it without waiting; False: use the ASGI send.

        Each audio frame through ASGI costs a message dict, starlette's state checks, uvicorn's dispatch
        and a task switch into the sender. This is the same write uvicorn's `websocket.send` makes,
        taken only where that send would not wait or fail: accepted, nothing closing, flow control open.
        """
        if (
            not self.handshake_complete
            or self.close_sent
            or self.disconnected
            or self.initial_response is not None
            or not self.writable.is_set()
            or self.conn.state.name != "OPEN"  # e.g. the client's Close arrived: the ASGI send reports it
        ):
            return False
        if isinstance(frame, bytes):
            self.conn.send_binary(frame)
        else:
            self.conn.send_text(frame.encode())
        self.transport.write(b"".join(self.conn.data_to_send()))  # one frame: join returns it uncopied
        return True

    def handle_cont(self, event: Any) -> None:
        super().handle_cont(event)
        self._time_fragments()

    def handle_text(self, event: Any) -> None:
        super().handle_text(event)
        self._time_fragments()

    def handle_bytes(self, event: Any) -> None:
        super().handle_bytes(event)
        self._time_fragments()

    def _time_fragments(self) -> None:
        if not self.frames:
            self._cancel_fragment_timer()
        elif self._fragment_timer is None:
            self._fragment_timer = self.loop.call_later(
                self.settings.fragment_timeout_s, self._fragments_late
            )

    def _fragments_late(self) -> None:
        self._fragment_timer = None
        if self.close_sent or self.transport.is_closing():
            return
        log.info("client left a fragmented message unfinished; closing")
        closure = UNFINISHED_MESSAGE_CLOSURE
        self.frames = []
        self.queue.put_nowait({"type": "websocket.disconnect", "code": int(closure.code)})
        self.conn.send_close(int(closure.code), closure.reason.value)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        self._drop_later()

    async def send(self, message: Any) -> None:
        if message["type"] == "websocket.close" and self.handshake_complete:
            # A close frame is a few bytes: it goes out even when the client stopped reading (flow control
            # would hold it back forever); the socket is dropped if the client does not answer in time.
            self.writable.set()
        try:
            await super().send(message)
        finally:
            if self._holds_turn and (self.handshake_complete or self.initial_response is not None):
                self.settle()  # the handshake is answered: 101, or the app's refusal
        if message["type"] == "websocket.close" and self.close_timer is not None:
            self._drop_later()

    def _drop_later(self) -> None:
        # uvicorn's timer calls transport.close(), which waits for buffers a silent client never takes.
        if self.close_timer is not None:
            self.close_timer.cancel()
        self.close_timer = self.loop.call_later(self.close_timeout, reset, self.transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_fragment_timer()
        self.settle()
        super().connection_lost(exc)

    def _cancel_fragment_timer(self) -> None:
        self._fragment_timer = cancelled(self._fragment_timer)


class QuietParserWarnings(logging.Filter):
    """Drops uvicorn's warning for each malformed request head. Anyone on the network could otherwise
    write a pod's log at line rate; every such request is counted in `ttsfleet_refusals` instead."""

    MESSAGE = "Invalid HTTP request received."

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != self.MESSAGE


def protocols(
    settings: ConnectionSettings,
    write_stall_s: float,
    count_refusal: Callable[[int], None],
    upgrades: UpgradePacer | None = None,
) -> tuple[type[GuardedHttpProtocol], type[GuardedWebSocketProtocol]]:
    """The protocol classes for one server, sharing its pending-connection count and the turns of its
    WebSocket upgrades (`upgrades`; None: unpaced); `count_refusal` is told the status of every request
    refused at the transport (400, 408, 414, 431, 503)."""
    pending = PendingConnections(settings.max_pending)
    http_class = type(
        "GatewayHttpProtocol",
        (GuardedHttpProtocol,),
        {
            "settings": settings,
            "pending": pending,
            "upgrades": upgrades,
            "write_stall_s": write_stall_s,
            "count_refusal": staticmethod(count_refusal),
        },
    )
    ws_class = type(
        "GatewayWebSocketProtocol", (GuardedWebSocketProtocol,), {"settings": settings, "upgrades": upgrades}
    )
    return http_class, ws_class
