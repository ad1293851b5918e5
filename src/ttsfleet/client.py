"""A small speak-protocol client: what `ttsfleet say`, the demo and the benchmarks use.

It speaks to Deepgram, the emulator or a gateway alike (only the base URL and token change),
tracks Clear/Cleared so no stale audio is returned, and raises `SpeakFailed` carrying the close
frame or HTTP refusal in the protocol's own terms.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from types import TracebackType

import websockets
from websockets.asyncio.client import ClientConnection

from ttsfleet.protocol import (
    Clear,
    Cleared,
    ClientSocketTracker,
    Close,
    Closure,
    ErrorBody,
    Flush,
    Flushed,
    Metadata,
    Speak,
    SpeakOptions,
    Warning,
    parse_server_message,
)


class SpeakFailed(Exception):
    """The server refused or ended the exchange; `closure` or `status` says how."""

    def __init__(self, message: str, closure: Closure | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.closure = closure
        self.status = status
        # Audio of the failed utterance received before the failure: above 0, the utterance was cut
        # inside; 0 with a 1012 closure is a drain between utterances (retry on a new socket).
        self.partial_audio_bytes = 0


@dataclass(frozen=True, slots=True)
class Utterance:
    audio: bytes
    sequence_id: int
    first_byte_s: float | None  # from Flush to the first audio frame
    warnings: tuple[Warning, ...] = ()


class SpeakClient:
    """One speak WebSocket; use as an async context manager."""

    def __init__(
        self, base_url: str, token: str, options: SpeakOptions | None = None, timeout_s: float = 30.0
    ) -> None:
        self.url = f"{base_url.rstrip('/')}/v1/speak?{(options or SpeakOptions()).to_query()}"
        self.token = token
        self.timeout_s = timeout_s
        self.metadata: Metadata | None = None
        self._ws: ClientConnection | None = None
        self._tracker = ClientSocketTracker()

    async def __aenter__(self) -> SpeakClient:
        try:
            self._ws = await websockets.connect(
                self.url,
                additional_headers={"Authorization": f"Token {self.token}"},
                open_timeout=self.timeout_s,
                max_size=None,
                compression=None,  # speech does not compress; deflate only costs CPU on both ends
            )
        except websockets.InvalidStatus as refused:
            body = ErrorBody.parse(bytes(refused.response.body or b""))
            detail = body.err_msg if body else refused.response.reason_phrase
            raise SpeakFailed(
                f"refused with {refused.response.status_code}: {detail}", status=refused.response.status_code
            ) from None
        first = parse_server_message(str(await self._receive()))
        if isinstance(first, Metadata):
            self.metadata = first
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._ws is not None:
            try:
                await self._ws.send(Close().to_json())
                async with asyncio.timeout(5):
                    await self._ws.wait_closed()
            except (websockets.ConnectionClosed, TimeoutError):
                pass
            finally:
                await self._ws.close()

    async def _receive(self) -> str | bytes:
        assert self._ws is not None
        try:
            async with asyncio.timeout(self.timeout_s):
                return await self._ws.recv()
        except websockets.ConnectionClosed as closed:
            frame = closed.rcvd
            closure = Closure.parse(frame.code, frame.reason) if frame else None
            how = f"{frame.code} {frame.reason}" if frame else "without a close frame"
            raise SpeakFailed(f"the server closed the socket {how}", closure=closure) from None
        except TimeoutError:
            raise SpeakFailed(f"nothing received within {self.timeout_s} s") from None

    async def speak(self, text: str) -> Utterance:
        """Send `text`, flush, and collect its audio up to Flushed."""
        assert self._ws is not None
        loop = asyncio.get_running_loop()
        await self._ws.send(Speak(text).to_json())
        flushed_at = loop.time()
        await self._ws.send(Flush().to_json())
        self._tracker.sent_flush()
        chunks: list[bytes] = []
        first_byte_s: float | None = None
        warnings: list[Warning] = []
        while True:
            try:
                message = await self._receive()
            except SpeakFailed as failed:
                failed.partial_audio_bytes = sum(map(len, chunks))
                raise
            if isinstance(message, bytes):
                if self._tracker.is_discarding:
                    continue
                if first_byte_s is None:
                    first_byte_s = loop.time() - flushed_at
                chunks.append(message)
                continue
            parsed = parse_server_message(message)
            self._tracker.received(parsed)
            if isinstance(parsed, Warning):
                warnings.append(parsed)
            elif isinstance(parsed, Flushed):
                return Utterance(b"".join(chunks), parsed.sequence_id, first_byte_s, tuple(warnings))

    async def clear(self) -> int:
        """Drop what the server holds; returns Cleared's sequence id."""
        assert self._ws is not None
        await self._ws.send(Clear().to_json())
        self._tracker.sent_clear()
        while True:
            message = await self._receive()
            if isinstance(message, bytes):
                continue  # audio of cleared text
            parsed = parse_server_message(message)
            self._tracker.received(parsed)
            if isinstance(parsed, Cleared):
                return parsed.sequence_id
