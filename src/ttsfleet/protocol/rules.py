"""Per-socket rules of the speak WebSocket as sans-I/O state machines.

`ServerSocketRules` is what a server keeps for one client socket: the text buffer, sequence ids,
the character and flush budgets, the size limits and the idle/age deadlines. Feed it frames with the
time they arrived; it returns what to do, or raises ProtocolViolation carrying the close frame.

`ClientSocketTracker` is what a client keeps: which audio to discard after a Clear, and which
Flushed ends which flush. Both take time as an argument and never touch a socket.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from ttsfleet.protocol.codes import CloseReason, Closure
from ttsfleet.protocol.messages import (
    Clear,
    Cleared,
    Close,
    Flush,
    Flushed,
    ProtocolViolation,
    ServerMessage,
    Speak,
    Warning,
    WarningCode,
    parse_client_message,
)


@dataclass(frozen=True, slots=True)
class SocketLimits:
    """Deepgram's per-socket limits (PROTOCOL.md, "Limits and close codes"); all configurable."""

    max_speak_chars: int = 2000  # one Speak over this → 1009 BIG-0001
    max_chars_per_window: int = 2400  # more within the window → 1008 DATA-0001
    max_flushes_per_window: int = 20  # more within the window → Warning EXCESSIVE_FLUSH, flush skipped
    window_s: float = 60.0
    max_frame_bytes: int = 65536  # a text frame over this → 1009 BIG-0000
    idle_timeout_s: float = 60.0  # nothing from the client for this long → 1011 NET-0001
    max_socket_age_s: float = 3600.0  # older → 1011 NET-0003


# --- what the server should do after a frame -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TextBuffered:
    """Text was appended to the buffer; `chars` are billed."""

    chars: int


@dataclass(frozen=True, slots=True)
class SynthesisRequested:
    """A Flush: synthesize `text`, stream its audio, then send Flushed(sequence_id)."""

    text: str
    sequence_id: int


@dataclass(frozen=True, slots=True)
class FlushRefused:
    """A Flush over the budget: send `warning`; the buffer is kept and nothing is synthesized."""

    warning: Warning


@dataclass(frozen=True, slots=True)
class ClearRequested:
    """A Clear: drop the buffer and pending audio, then send Cleared(sequence_id)."""

    sequence_id: int


@dataclass(frozen=True, slots=True)
class CloseRequested:
    """The client asked to close normally (1000)."""


ServerAction = TextBuffered | SynthesisRequested | FlushRefused | ClearRequested | CloseRequested


@dataclass(slots=True)
class SlidingWindow:
    """Amounts with timestamps, summed over the last `window_s` seconds, as Deepgram's budgets count."""

    window_s: float
    entries: deque[tuple[float, int]] = field(default_factory=deque)
    total: int = 0

    def expire(self, now: float) -> None:
        while self.entries and self.entries[0][0] <= now - self.window_s:
            _, amount = self.entries.popleft()
            self.total -= amount

    def sum(self, now: float) -> int:
        """What the window holds at `now`."""
        # Asked for every idle socket on every lease: no call when nothing has expired.
        if self.entries and self.entries[0][0] <= now - self.window_s:
            self.expire(now)
        return self.total

    def add(self, now: float, amount: int) -> None:
        self.expire(now)
        self.entries.append((now, amount))
        self.total += amount

    def would_exceed(self, now: float, amount: int, limit: int) -> bool:
        self.expire(now)
        return self.total + amount > limit


class ServerSocketRules:
    """One client socket, seen from the server."""

    def __init__(self, limits: SocketLimits, opened_at: float) -> None:
        self.limits = limits
        self.opened_at = opened_at
        self.last_received_at = opened_at
        self.buffer: list[str] = []
        self.next_flush_id = 0
        self.next_clear_id = 0
        self._chars = SlidingWindow(limits.window_s)
        self._flushes = SlidingWindow(limits.window_s)

    @property
    def buffered_text(self) -> str:
        return "".join(self.buffer)

    def receive_binary(self, now: float) -> ServerAction:
        """Binary frames are not part of the protocol: 1003 MESSAGE-0000."""
        self.last_received_at = now
        raise ProtocolViolation(
            Closure.for_reason(CloseReason.BINARY_MESSAGE), "binary frames are not accepted"
        )

    def receive_activity(self, now: float) -> None:
        """Anything from the client (a ping too) resets the idle timer."""
        self.last_received_at = now

    def receive_text(self, text: str, now: float) -> ServerAction:
        """Apply one text frame; raises ProtocolViolation when the socket must close."""
        self.last_received_at = now
        if len(text) > self.limits.max_frame_bytes or len(text.encode()) > self.limits.max_frame_bytes:
            raise ProtocolViolation(
                Closure.for_reason(CloseReason.FRAME_TOO_BIG),
                f"frame larger than {self.limits.max_frame_bytes} bytes",
            )
        message = parse_client_message(text)
        if isinstance(message, Speak):
            return self._speak(message.text, now)
        if isinstance(message, Flush):
            return self._flush(now)
        if isinstance(message, Clear):
            self.buffer.clear()
            sequence_id = self.next_clear_id
            self.next_clear_id += 1
            return ClearRequested(sequence_id)
        assert isinstance(message, Close)
        return CloseRequested()

    def _speak(self, text: str, now: float) -> ServerAction:
        chars = len(text)
        if chars > self.limits.max_speak_chars:
            raise ProtocolViolation(
                Closure.for_reason(CloseReason.SPEAK_TOO_BIG),
                f"Speak has {chars} characters; the limit is {self.limits.max_speak_chars}",
            )
        if self._chars.would_exceed(now, chars, self.limits.max_chars_per_window):
            raise ProtocolViolation(
                Closure.for_reason(CloseReason.CHARACTER_BUDGET),
                f"more than {self.limits.max_chars_per_window} characters within {self.limits.window_s:g} s",
            )
        self._chars.add(now, chars)
        self.buffer.append(text)
        return TextBuffered(chars)

    def _flush(self, now: float) -> ServerAction:
        if self._flushes.would_exceed(now, 1, self.limits.max_flushes_per_window):
            return FlushRefused(
                Warning(
                    WarningCode.EXCESSIVE_FLUSH.value,
                    f"More than {self.limits.max_flushes_per_window} flushes within "
                    f"{self.limits.window_s:g} seconds; this flush was skipped.",
                )
            )
        self._flushes.add(now, 1)
        text = self.buffered_text
        self.buffer.clear()
        sequence_id = self.next_flush_id
        self.next_flush_id += 1
        return SynthesisRequested(text, sequence_id)

    def chars_in_window(self, now: float) -> int:
        """Characters accepted within the last window (what the budget counts)."""
        self._chars.expire(now)
        return self._chars.total

    def flushes_in_window(self, now: float) -> int:
        self._flushes.expire(now)
        return self._flushes.total

    def due_closure(self, now: float) -> Closure | None:
        """The closure the clock calls for now: too old beats idle."""
        if now - self.opened_at >= self.limits.max_socket_age_s:
            return Closure.for_reason(CloseReason.SOCKET_TOO_OLD)
        if now - self.last_received_at >= self.limits.idle_timeout_s:
            return Closure.for_reason(CloseReason.CLIENT_IDLE)
        return None

    def next_deadline(self) -> float:
        """The earliest time `due_closure` could return a closure."""
        return min(
            self.opened_at + self.limits.max_socket_age_s,
            self.last_received_at + self.limits.idle_timeout_s,
        )


class ClientSocketTracker:
    """One socket, seen from the client: discards audio between a Clear and its Cleared."""

    def __init__(self) -> None:
        self.clears_in_flight = 0
        self.flushes_in_flight = 0

    def sent_flush(self) -> None:
        self.flushes_in_flight += 1

    def sent_clear(self) -> None:
        # Audio for text sent before the Clear may still arrive; none of it is wanted.
        self.clears_in_flight += 1
        self.flushes_in_flight = 0

    @property
    def is_discarding(self) -> bool:
        """Whether received audio belongs to cleared text and must be dropped."""
        return self.clears_in_flight > 0

    def received(self, message: ServerMessage) -> None:
        if isinstance(message, Cleared) and self.clears_in_flight:
            self.clears_in_flight -= 1
        elif isinstance(message, Flushed) and self.flushes_in_flight:
            self.flushes_in_flight -= 1
