"""One utterance from text to audio: cache, leased upstream socket, retries, REST fallback, timeouts.

Audio goes to an `AudioSink` as it arrives, byte for byte. Retries happen only while the sink has
received nothing of this utterance; after that a failure ends the utterance with an explicit error.

An utterance is begun (`Synthesizer.begin`) where its text is read, without waiting: the cache is looked
up and, on a miss, an idle upstream socket is leased and the text sent upstream there and then. The rest
(`Synthesizer.finish`) runs in a task of its own. Under load every pass of the event loop waits behind
every other connection's callbacks; the text no longer waits for the passes that start that task.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Protocol, TypeVar

import structlog

from ttsfleet import logs
from ttsfleet.dataplane import errors, tracing
from ttsfleet.dataplane.breaker import CircuitBreaker
from ttsfleet.dataplane.cache import AudioCache, CacheKey
from ttsfleet.dataplane.deadlines import MovingDeadline
from ttsfleet.dataplane.metrics import Metrics
from ttsfleet.dataplane.pool import Pool
from ttsfleet.dataplane.retrying import RetryPolicy
from ttsfleet.dataplane.seams import Clock, CredentialSource, RestSpeaker
from ttsfleet.dataplane.settings import TimeoutSettings
from ttsfleet.dataplane.sockets import PooledSocket, PoolKey, ReleaseOutcome
from ttsfleet.protocol import Flush, Flushed, SocketLimits, Speak, SpeakOptions, Warning, parse_server_message

log = structlog.get_logger(__name__)
_T = TypeVar("_T")

CACHE_FRAME_BYTES = 8192  # frames replayed from the cache; the sink paces them
# Only failures to get a socket send an utterance to REST; auth or bad requests would fail there too.
_FALLBACK_ERRORS = (errors.UpstreamUnavailable, errors.UpstreamRateLimited, errors.UpstreamProtocolError)


class AudioSink(Protocol):
    """Where an utterance's audio goes (a client socket, a REST response)."""

    @property
    def bytes_sent(self) -> int: ...

    async def begin(self, content_type: str, source: str) -> None:
        """Called once before the first audio of REST answers and cache hits: headers can go out."""
        ...

    async def audio(self, chunk: bytes) -> None: ...

    def audio_now(self, chunk: bytes) -> bool:
        """Take audio at once without waiting, or return False having done nothing."""
        ...


class Utterance:
    """An utterance as `Synthesizer.begin` left it: its cache lookup done and, perhaps, its first socket
    leased with the text already sent. `Synthesizer.finish` runs it; one that will never run (a Clear, the
    session's end) is `abandon`ed, so a socket it holds goes back to the pool."""

    __slots__ = ("_pool", "_socket", "cache_key", "cached", "id", "options", "started", "text", "websocket")

    def __init__(
        self,
        options: SpeakOptions,
        text: str,
        websocket: bool,
        started: float,
        cache_key: CacheKey | None,
        cached: tuple[bytes, str] | None,
        socket: PooledSocket | None,
        pool: Pool,
    ) -> None:
        self.id = secrets.token_hex(8)
        self.options = options
        self.text = text
        self.websocket = websocket
        self.started = started
        self.cache_key = cache_key  # None: the cache does not take part (off, or a callback request)
        self.cached = cached
        self._socket = socket
        self._pool = pool

    def take_socket(self) -> PooledSocket | None:
        """The socket leased by `begin`, its text sent, handed over once; None if there was none."""
        socket, self._socket = self._socket, None
        return socket

    def abandon(self) -> None:
        """This utterance will not run on: a socket not yet taken goes back to be cleared of its text."""
        socket = self.take_socket()
        if socket is not None:
            self._pool.release(socket, ReleaseOutcome.DIRTY)


@dataclass(frozen=True, slots=True)
class UtteranceResult:
    source: str  # cache | websocket | rest_fallback | rest
    bytes: int
    attempts: int
    upstream_request_id: str


class Synthesizer:
    """Turns (options, text) into audio on a sink, as reliably as the upstream allows."""

    def __init__(
        self,
        pool: Pool,
        rest: RestSpeaker,
        credentials: CredentialSource,
        rest_breaker: CircuitBreaker,
        cache: AudioCache | None,
        policy: RetryPolicy,
        timeouts: TimeoutSettings,
        metrics: Metrics,
        clock: Clock,
    ) -> None:
        self._pool = pool
        self._rest = rest
        self._credentials = credentials
        self._rest_breaker = rest_breaker
        self._cache = cache
        self._policy = policy
        self._timeouts = timeouts
        self._metrics = metrics
        self._clock = clock
        self._upstream_limits = SocketLimits()

    def begin(self, options: SpeakOptions, text: str, *, websocket: bool) -> Utterance:
        """What of an utterance can be done without waiting, done now: the cache looked up and, for a
        socket utterance the cache does not hold, an idle socket leased and the text sent upstream."""
        started = self._clock.monotonic()
        cache_key: CacheKey | None = None
        cached: tuple[bytes, str] | None = None
        # With a callback, Deepgram answers with a request id and delivers the audio elsewhere: no audio
        # to keep, and each such request must reach Deepgram.
        if self._cache is not None and options.callback is None:
            cache_key = CacheKey.of(options, text)
            cached = self._cache.get(cache_key)
        socket = None
        if websocket and cached is None:
            socket = self._pool.lease_now(PoolKey.of(options), len(text))
            if socket is not None and not self._sent_now(socket, text):
                socket = None  # the attempt leases and sends the usual way, in the utterance's own task
        return Utterance(options, text, websocket, started, cache_key, cached, socket, self._pool)

    def _sent_now(self, pooled: PooledSocket, text: str) -> bool:
        """The text sent on `pooled` at once; if not, the socket goes back (closed if it broke)."""
        try:
            if pooled.socket.send_texts_now(*self._frames(text)):
                return True
            outcome = ReleaseOutcome.CLEAN  # nothing was sent: not open, or its writes paused
        except errors.UpstreamError:
            outcome = ReleaseOutcome.BROKEN
        self._pool.release(pooled, outcome)
        return False

    def _frames(self, text: str) -> list[str]:
        """An utterance's text as upstream takes it: Speaks of at most its limit, then a Flush."""
        limit = self._upstream_limits.max_speak_chars
        frames = [Speak(text[start : start + limit]).to_json() for start in range(0, len(text), limit)]
        frames.append(Flush().to_json())
        return frames

    async def speak(
        self,
        options: SpeakOptions,
        text: str,
        sink: AudioSink,
        *,
        websocket: bool,
        token_id: str | None = None,
    ) -> UtteranceResult:
        """Synthesize `text`; WS first (REST fallback) for sockets, REST for REST; raises GatewayError.

        `token_id` (the fleet token's fingerprint) labels the billed characters.
        """
        return await self.finish(self.begin(options, text, websocket=websocket), sink, token_id)

    async def finish(
        self, utterance: Utterance, sink: AudioSink, token_id: str | None = None
    ) -> UtteranceResult:
        """Run a begun utterance to its end; raises GatewayError."""
        options, text = utterance.options, utterance.text
        traced = {"utterance_id": utterance.id, "chars": len(text), "model": options.model}
        with logs.bound(utterance_id=utterance.id), tracing.span("utterance", traced) as span:
            try:
                result = await self._speak(utterance, sink)
            except errors.GatewayError as error:
                self._metrics.utterance_failed()
                log.info("utterance failed", chars=len(text), error=type(error).__name__, detail=str(error))
                raise
            finally:
                utterance.abandon()  # a socket `begin` leased that no attempt took
            elapsed = self._clock.monotonic() - utterance.started
            tracing.annotate(
                span, {"source": result.source, "upstream_request_id": result.upstream_request_id}
            )
            self._metrics.utterance_completed(result.source, elapsed)
            if result.source != "cache":
                self._metrics.billed(token_id or "none", options.model, len(text))
            log.info(
                "utterance completed",
                chars=len(text),
                source=result.source,
                bytes=result.bytes,
                attempts=result.attempts,
                upstream_request_id=result.upstream_request_id,
                duration_ms=round(elapsed * 1000, 1),
            )
            return result

    async def _speak(self, utterance: Utterance, sink: AudioSink) -> UtteranceResult:
        started, key = utterance.started, utterance.cache_key
        if key is not None:  # the cache takes part: `begin` looked it up
            hit = utterance.cached
            if hit is not None:
                self._metrics.cache_hits.inc()
                await self._replay(hit[0], hit[1], sink, started)
                return UtteranceResult("cache", len(hit[0]), 0, "")
            self._metrics.cache_misses.inc()
        recorder = _Recorder(sink, self, started)
        attempts = 0
        try:
            async with asyncio.timeout(self._timeouts.utterance_s):
                while True:
                    attempts += 1
                    try:
                        # After failed sockets, the last attempt takes another path (REST), not a socket.
                        last = utterance.websocket and attempts > 1 and attempts >= self._policy.max_attempts
                        source, request_id = await self._attempt(utterance, recorder, last)
                        break
                    except errors.UpstreamError as error:
                        self._metrics.errors.labels(error_class=error.error_class.value).inc()
                        if not self._policy.should_retry(error, attempts, recorder.bytes_sent > 0):
                            raise
                        self._metrics.retries.inc()
                        log.info("utterance retried", attempt=attempts, error_class=error.error_class.value)
                        await asyncio.sleep(self._policy.delay_s(error, attempts))
        except TimeoutError:
            self._metrics.errors.labels(error_class=errors.ErrorClass.TRANSIENT.value).inc()
            raise errors.UpstreamTimeout(
                f"utterance took longer than {self._timeouts.utterance_s:g} s"
            ) from None
        if key is not None and self._cache is not None and recorder.kept is not None:
            self._cache.put(key, bytes(recorder.kept), recorder.content_type)
        return UtteranceResult(source, recorder.bytes_sent, attempts, request_id)

    async def _attempt(self, utterance: Utterance, recorder: _Recorder, last: bool) -> tuple[str, str]:
        options, text = utterance.options, utterance.text
        if not utterance.websocket:
            return "rest", await self._over_rest(options, text, recorder, "rest")
        if last:
            return "rest_fallback", await self._over_rest(options, text, recorder, "rest_fallback")
        pooled = utterance.take_socket()  # the first attempt's, if `begin` sent its text already
        sent = pooled is not None
        if pooled is None:
            try:
                pooled = await self._pool.lease(PoolKey.of(options), len(text))
            except _FALLBACK_ERRORS as error:
                if recorder.bytes_sent:
                    raise
                log.info("falling back to REST", error_class=error.error_class.value, detail=str(error))
                return "rest_fallback", await self._over_rest(options, text, recorder, "rest_fallback")
        recorder.source = "websocket"
        return "websocket", await self._over_socket(pooled, text, recorder, sent=sent)

    async def _over_socket(self, pooled: PooledSocket, text: str, recorder: _Recorder, *, sent: bool) -> str:
        socket = pooled.socket
        outcome = ReleaseOutcome.BROKEN
        try:
            async with self._in_time("WebSocket") as deadline:
                # Audio the client can take at once is relayed as it arrives; the rest comes here.
                socket.tap_audio(_AudioTap(recorder, deadline))
                if not sent:
                    frames = self._frames(text)
                    if not socket.send_texts_now(*frames):
                        await socket.send_texts(*frames)
                while True:
                    frame = await deadline.next(socket.receive())
                    if isinstance(frame, bytes):
                        deadline.audio_came()
                        await recorder.audio(frame)
                        continue
                    message = parse_server_message(frame)
                    if isinstance(message, Flushed):
                        outcome = ReleaseOutcome.CLEAN
                        return socket.request_id
                    if isinstance(message, Warning):
                        log.warning(
                            "upstream warning", code=message.code, upstream_request_id=socket.request_id
                        )
                        if message.code == "EXCESSIVE_FLUSH":
                            outcome = ReleaseOutcome.DIRTY  # the text is still buffered upstream
                            raise errors.UpstreamProtocolError("upstream skipped the flush (EXCESSIVE_FLUSH)")
        except errors.SlowClient:
            outcome = ReleaseOutcome.DIRTY
            raise
        except BaseException as error:
            if isinstance(error, asyncio.CancelledError):
                outcome = ReleaseOutcome.DIRTY  # a Clear from the client: the socket itself is fine
            raise
        finally:
            socket.tap_audio(None)
            self._pool.release(pooled, outcome)

    async def _over_rest(self, options: SpeakOptions, text: str, recorder: _Recorder, source: str) -> str:
        key = self._credentials.key
        if key is None:
            raise errors.UpstreamAuthFailed("no Deepgram key is loaded")
        if not self._rest_breaker.allow():
            raise errors.CircuitOpen("the REST upstream circuit breaker is open")
        if source == "rest_fallback":
            self._metrics.fallbacks.inc()  # counted once the request goes upstream, not when refused
        generation = self._credentials.generation
        recorder.source = source
        try:
            async with self._rest.speak(options, text, key) as answer:
                await recorder.begin(answer.content_type)
                async with self._in_time("REST") as deadline:
                    while True:
                        try:
                            chunk = await deadline.next(anext(answer.chunks))
                        except StopAsyncIteration:
                            break
                        deadline.audio_came()
                        await recorder.audio(chunk)
        except errors.UpstreamError as error:
            if error.error_class is errors.ErrorClass.AUTH and generation == self._credentials.generation:
                self._credentials.report(False, fresh_handshake=False)  # one REST 401 is only a doubt
            self._rest_breaker.record_error(error)
            raise
        except BaseException:
            self._rest_breaker.release_probe()
            raise
        self._rest_breaker.record_success()
        if generation == self._credentials.generation:
            self._credentials.report(True, fresh_handshake=False)
        return answer.request_id

    @contextlib.asynccontextmanager
    async def _in_time(self, upstream: str) -> AsyncIterator[_FrameDeadline]:
        """One deadline for a relay's frames, moved per frame; a frame too late raises UpstreamTimeout.

        A `MovingDeadline`, not `asyncio.wait_for` (a task per frame) nor a rescheduled `asyncio.timeout`
        (a new timer per move, two per frame).
        """
        deadline = _FrameDeadline(MovingDeadline(), self._timeouts)
        try:
            async with deadline.moving:
                yield deadline
        except TimeoutError:
            if not deadline.moving.expired():
                raise
            raise errors.UpstreamTimeout(f"upstream {upstream} {deadline.overrun}") from None

    async def _replay(self, audio: bytes, content_type: str, sink: AudioSink, started: float) -> None:
        await sink.begin(content_type, "cache")
        for start in range(0, len(audio), CACHE_FRAME_BYTES):
            if start == 0:
                self._metrics.first_byte("cache", self._clock.monotonic() - started)
            await sink.audio(audio[start : start + CACHE_FRAME_BYTES])


class _FrameDeadline:
    """Arms its deadline around each receive: the first-byte budget until audio came, then the gap.

    Disarmed between frames, so time spent handing audio to a slow client is the sink's to judge.
    """

    def __init__(self, moving: MovingDeadline, timeouts: TimeoutSettings) -> None:
        self.moving = moving
        self._timeouts = timeouts
        self._loop = asyncio.get_running_loop()
        self._got_audio = False
        self._waiting = False

    def audio_came(self) -> None:
        """Audio arrived: from now on the gap's budget; a receive under way waits anew from here."""
        self._got_audio = True
        if self._waiting:
            self.moving.arm(self._loop.time() + self._timeouts.inter_chunk_s)

    @property
    def overrun(self) -> str:
        if self._got_audio:
            return f"inter-chunk gap took longer than {self._timeouts.inter_chunk_s:g} s"
        return f"first byte took longer than {self._timeouts.first_byte_s:g} s"

    async def next(self, receive: Awaitable[_T]) -> _T:
        wait_s = self._timeouts.inter_chunk_s if self._got_audio else self._timeouts.first_byte_s
        self.moving.arm(self._loop.time() + wait_s)
        self._waiting = True
        try:
            return await receive
        finally:
            self._waiting = False
            self.moving.disarm()


class _AudioTap:
    """Relays the upstream's audio from its own callback while the relay waits for Flushed.

    Takes a frame only where the relay's `await` would have sent it at once (`AudioSink.audio_now`), and
    none once the relay's task is being cancelled (a Clear, a timeout): audio after a Cleared must
    never reach the client.
    """

    __slots__ = ("_cancelling", "_deadline", "_recorder", "_task")

    def __init__(self, recorder: _Recorder, deadline: _FrameDeadline) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        self._cancelling = task.cancelling()
        self._recorder = recorder
        self._deadline = deadline

    def __call__(self, chunk: bytes) -> bool:
        if self._task.cancelling() > self._cancelling or not self._recorder.audio_now(chunk):
            return False
        self._deadline.audio_came()
        return True


class _Recorder:
    """Passes audio to the sink, records TTFB once, and keeps a copy for the cache while it is small."""

    def __init__(self, sink: AudioSink, synthesizer: Synthesizer, started: float) -> None:
        self._sink = sink
        self._synthesizer = synthesizer
        self._started = started
        self.source = "websocket"
        self.content_type = ""
        self.kept: bytearray | None = bytearray() if synthesizer._cache is not None else None

    @property
    def bytes_sent(self) -> int:
        return self._sink.bytes_sent

    async def begin(self, content_type: str) -> None:
        self.content_type = content_type
        if self._sink.bytes_sent == 0:
            await self._sink.begin(content_type, self.source)

    async def audio(self, chunk: bytes) -> None:
        if self._sink.bytes_sent == 0:
            self._first_byte()
        if self.kept is not None:
            self.kept += chunk
        await self._sink.audio(chunk)

    def audio_now(self, chunk: bytes) -> bool:
        first = self._sink.bytes_sent == 0
        if not self._sink.audio_now(chunk):
            return False
        if first:
            self._first_byte()
        if self.kept is not None:
            self.kept += chunk
        return True

    def _first_byte(self) -> None:
        elapsed = self._synthesizer._clock.monotonic() - self._started
        self._synthesizer._metrics.first_byte(self.source, elapsed)
