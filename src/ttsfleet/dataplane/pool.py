"""The pool of upstream speak sockets, keyed by (model, encoding, sample_rate, speed), leased per utterance.

This module is the I/O side: leasing and releasing, opening and closing, and the maintenance loop that
keeps spares per key in use, forgets keys idle for `idle_key_ttl_s`, recycles sockets before the age
limit, pings idle ones and retires sockets of an old key after their utterance (`sockets.py` holds the
socket model, budgets, choice and the spare policy). Spares (the warm minimum, or a share of the key's
recent peak of leased sockets when that is more) open in the background as soon as a lease takes the
key below its target, and also when the key's idle sockets have fewer Flushes left than `spare_lead_s`
of leases at its recent rate would spend, so an utterance in a burst or a rising load finds a socket
already open instead of paying the handshake. The rate planned for is the key's recent lease rate, or
the rate its connected sessions will lease at (`session_opened`), whichever is more, and the spares
cover one handshake's worth of it (`sockets.handshake_cover`). On an utterance's path a socket opens
only when no idle one fits and no connect is already on its way for the waiter, so open sockets stay
within the peak leased + spares + the Flush budget kept in hand.

Every socket, spares included, counts against `socket_limit`: `max_sockets`, or this pod's share of the
fleet's upstream socket budget when that is lower (`set_socket_share`). A lowered share closes idle
sockets at once and leased ones when their utterance ends; nothing opens until the pod is within it.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
from collections.abc import Collection

import structlog

from ttsfleet.dataplane import credentials, errors, sockets
from ttsfleet.dataplane.breaker import CircuitBreaker
from ttsfleet.dataplane.seams import Clock, CredentialSource, UpstreamConnector, UpstreamSocket
from ttsfleet.dataplane.settings import PoolSettings, TimeoutSettings
from ttsfleet.dataplane.sockets import PooledSocket, PoolKey, ReleaseOutcome, SocketState
from ttsfleet.protocol import Clear, Cleared, Metadata, SocketLimits, parse_server_message
from ttsfleet.supervision import Supervisor

log = structlog.get_logger(__name__)

# Maintenance runs at least this often; changes (a lease, a release, a new key) wake it sooner.
MAINTENANCE_TICK_S = 1.0
# The lease rate that the spares and `spare_lead_s` follow is the highest over these windows: half a
# second follows a rising load within a couple of handshakes, 2 s smooths one burst, and 10 s keeps the
# rate across the pauses between an agent crowd's bursts.
LEASE_RATE_WINDOWS_S = (0.5, 2.0, 10.0)
# A window's lease rate is its leases over the time they span, at least this (about one handshake),
# once it holds LEASE_RATE_MIN_LEASES: a crowd that starts speaking shows at its rate after a few leases.
LEASE_RATE_MIN_SPAN_S = 0.25
LEASE_RATE_MIN_LEASES = 3
# What a handshake is assumed to take before the pool has timed one: Deepgram's is ~250 ms.
ASSUMED_HANDSHAKE_S = 0.25
# The handshake time the spares cover is the slowest of this many recent ones.
HANDSHAKE_SAMPLES = 16


class Pool:
    """Upstream sockets for every key; `run` is its maintenance loop."""

    def __init__(
        self,
        connector: UpstreamConnector,
        credentials: CredentialSource,
        breaker: CircuitBreaker,
        clock: Clock,
        settings: PoolSettings,
        timeouts: TimeoutSettings,
        limits: SocketLimits,
        default_key: PoolKey,
    ) -> None:
        self._connector = connector
        self._credentials = credentials
        self._breaker = breaker
        self._clock = clock
        self._settings = settings
        self._timeouts = timeouts
        self._limits = limits
        self._default_key = default_key
        self._sockets: dict[int, PooledSocket] = {}
        self._ids = itertools.count(1)
        self._connecting: dict[PoolKey, int] = {}
        self._waiting: dict[PoolKey, int] = {}
        self._keys_used: dict[PoolKey, float] = {}
        self._peaks: dict[PoolKey, sockets.PeakWindow] = {}  # leased sockets per key, recent peak
        # Busy sockets per key, kept by `_move` on every state change: a lease and a release record the
        # count for the peak without a scan of every open socket (two per utterance at 1,000 sessions).
        self._busy: dict[PoolKey, int] = {}
        # Idle sockets per key, kept the same way: a lease and the spare sizing look at the key's idle
        # sockets (a few dozen at 1,000 sessions), not at every open socket with its budget windows.
        self._idle: dict[PoolKey, dict[int, PooledSocket]] = {}
        self._lease_rates: dict[PoolKey, sockets.LeaseRate] = {}
        self._handshakes = sockets.HandshakeTime(ASSUMED_HANDSHAKE_S, HANDSHAKE_SAMPLES)
        self._sessions: dict[PoolKey, sockets.SessionUtterances] = {}
        self._session_cover: dict[PoolKey, int] = {}  # the cover the key's sessions asked for last
        self._next_sweep_at = 0.0
        self._warmed = settings.warm_min_per_key == 0
        self._changed = asyncio.Event()
        # A maintenance pass waiting for the loop's next turn (`_wake`), run in the pool's own context.
        self._maintenance: asyncio.Handle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # set while `run` runs
        self._context = contextvars.copy_context()
        self._tasks = Supervisor("pool")
        self._models: dict[str, Metadata] = {}  # model → the Metadata of its latest socket
        self._rechecking = False
        self._recheck_at = 0.0
        self._share: int | None = None  # this pod's share of the fleet's socket budget; None: no budget
        self.opened_total = 0
        # Sockets opened while an utterance waited for them: each is a handshake in some utterance's TTFB.
        self.opened_on_demand_total = 0
        # Leases that found no idle socket with budget and waited: for their own handshake (also counted
        # above), a spare's still in flight, or a socket coming free.
        self.lease_waits_total = 0

    # --- figures ----------------------------------------------------------------------------------

    @property
    def open_sockets(self) -> int:
        return len(self._sockets)

    @property
    def leased_sockets(self) -> int:
        return sum(s.state in (SocketState.LEASED, SocketState.RETIRING) for s in self._sockets.values())

    @property
    def connecting(self) -> int:
        return sum(self._connecting.values())

    @property
    def handshake_s(self) -> float:
        """How long an upstream handshake takes, as the spares plan for it (the slowest recent one)."""
        return self._handshakes.seconds

    @property
    def socket_limit(self) -> int:
        """Sockets (open and connecting) this pod may hold: `max_sockets`, or its share if lower."""
        if self._share is None:
            return self._settings.max_sockets
        return min(self._settings.max_sockets, self._share)

    @property
    def socket_share(self) -> int | None:
        """This pod's share of the fleet's upstream socket budget; None when there is no budget."""
        return self._share

    def set_socket_share(self, share: int | None) -> None:
        """Apply a new share: over it, idle sockets close now (least recently used first), leased ones
        when their utterance ends, and nothing opens until the pod is within it again."""
        self._share = share
        idle = sorted(self._every_idle(), key=lambda s: s.last_used_at)
        for pooled in idle[: max(0, self.open_sockets + self.connecting - self.socket_limit)]:
            self._close(pooled)
        self._notify()
        self._wake()

    @property
    def is_over_limit(self) -> bool:
        """More sockets open or connecting than `socket_limit` (just after a lower share arrived)."""
        return self.open_sockets + self.connecting > self.socket_limit

    @property
    def warmed(self) -> bool:
        """The default key's warm minimum has been open, or a connect failed (upstream is known to be
        unreachable or refusing): either way waiting longer will not warm the pool."""
        return self._warmed

    # --- leasing ----------------------------------------------------------------------------------

    def prepare(self, key: PoolKey) -> None:
        """An utterance for `key` has begun (its first text): give the key its warm minimum now, to hide
        the handshake. Called for utterances only, never for a connect: an idle session costs no socket."""
        self._keys_used[key] = self._clock.monotonic()
        self._wake()

    def session_opened(self, key: PoolKey) -> None:
        """A client session of `key` connected: on a key already spoken on, the spares grow with the
        lease rate its sessions will make (`session_utterance_interval_s`) before any of them speaks."""
        interval_s = self._settings.session_utterance_interval_s
        if interval_s == 0:
            return  # turned off: spares follow the leases alone
        now = self._clock.monotonic()
        counted = self._sessions.get(key)
        if counted is None:
            counted = self._sessions[key] = sockets.SessionUtterances(
                1.0 / interval_s, self._settings.spare_window_s, now
            )
        counted.opened(now)
        if key in self._keys_used:
            cover = sockets.handshake_cover(counted.expected_rate(now), self.handshake_s)
            if cover > self._session_cover.get(key, 0):  # wake the pool only when it has more to open
                self._session_cover[key] = cover
                self._wake()

    def session_closed(self, key: PoolKey) -> None:
        counted = self._sessions.get(key)
        if counted is None:
            return
        counted.closed(self._clock.monotonic())
        if counted.sessions == 0 and key not in self._keys_used:
            del self._sessions[key]  # an unspoken voice's idle sessions leave nothing behind

    def _expected_rate(self, key: PoolKey, now: float) -> float:
        """Leases a second to plan spares for: what the key leased lately, or what its connected
        sessions will lease at their learned rate, whichever is more."""
        counted = self._sessions.get(key)
        if counted is None:
            return self.lease_rate(key)
        expected = counted.expected_rate(now)
        self._session_cover[key] = sockets.handshake_cover(expected, self.handshake_s)
        return max(self.lease_rate(key), expected)

    def known_model(self, model: str) -> Metadata | None:
        """What upstream's latest socket for `model` said about it; None before any socket opened."""
        return self._models.get(model)

    def lease_now(self, key: PoolKey, chars: int) -> PooledSocket | None:
        """An idle socket of `key` with room for `chars` and one flush, leased at once; None where there
        is none (then `lease` waits for one)."""
        self._keys_used[key] = self._clock.monotonic()
        chosen = self._pick(key, chars)
        return None if chosen is None else self._hand_out(chosen, chars)

    async def lease(self, key: PoolKey, chars: int) -> PooledSocket:
        """An idle socket of `key` with room for `chars` and one flush, or a new one; raises UpstreamError."""
        chosen = self.lease_now(key, chars)
        if chosen is not None:  # the usual case: no timeout to set up for a wait that never comes
            return chosen
        self.lease_waits_total += 1
        try:
            async with asyncio.timeout(self._timeouts.connect_s):
                while True:
                    chosen = self._pick(key, chars)
                    if chosen is not None:
                        return self._hand_out(chosen, chars)
                    if self._connecting.get(key, 0) > self._waiting.get(key, 0):
                        await self._wait_for_change(key)  # a connect for this key will free up
                        continue
                    if self._has_room():
                        return self._hand_out(await self._open(key, leased=True), chars)
                    await self._wait_for_change(key)
        except TimeoutError:
            raise errors.PoolExhausted(f"no upstream socket within {self._timeouts.connect_s:g} s") from None

    def release(self, pooled: PooledSocket, outcome: ReleaseOutcome) -> None:
        """Give the socket back; never blocks, so it is safe in `finally` blocks of cancelled tasks."""
        pooled.last_used_at = self._clock.monotonic()
        if (
            outcome is ReleaseOutcome.BROKEN
            or pooled.state is SocketState.RETIRING
            or not self._is_reusable(pooled)
            or self.is_over_limit
        ):
            self._close(pooled)
        elif outcome is ReleaseOutcome.DIRTY:
            self._move(pooled, SocketState.CLEARING)
            self._tasks.spawn(f"clear-{pooled.id}", self._clear(pooled))
        else:
            self._move(pooled, SocketState.IDLE)
        self._record_busy(pooled.key)
        self._notify()

    def _hand_out(self, pooled: PooledSocket, chars: int) -> PooledSocket:
        self._move(pooled, SocketState.LEASED)
        now = self._clock.monotonic()
        pooled.charge(now, chars)
        self._lease_rate(pooled.key).record(now)
        counted = self._sessions.get(pooled.key)
        if counted is not None:
            counted.uttered()
        self._record_busy(pooled.key)
        self._wake()  # the key may have dropped below its spares: maintenance opens more
        return pooled

    def _lease_rate(self, key: PoolKey) -> sockets.LeaseRate:
        rate = self._lease_rates.get(key)
        if rate is None:
            rate = self._lease_rates[key] = sockets.LeaseRate(
                LEASE_RATE_WINDOWS_S, LEASE_RATE_MIN_SPAN_S, LEASE_RATE_MIN_LEASES
            )
        return rate

    def lease_rate(self, key: PoolKey) -> float:
        """New leases a second for `key`, as the spare policy sees it."""
        return self._lease_rate(key).per_second(self._clock.monotonic())

    def _record_busy(self, key: PoolKey) -> None:
        peaks = self._peaks.get(key)
        if peaks is None:
            peaks = self._peaks[key] = sockets.PeakWindow(self._settings.spare_window_s)
        peaks.record(self._clock.monotonic(), self._busy.get(key, 0))

    def busy_sockets(self, key: PoolKey) -> int:
        """Sockets of `key` taken by an utterance or cleaning up after one."""
        return self._busy.get(key, 0)

    def idle_sockets(self, key: PoolKey) -> Collection[PooledSocket]:
        """Sockets of `key` waiting for an utterance (a live view: copy it to change the pool meanwhile)."""
        return self._idle.get(key, {}).values()

    def _every_idle(self) -> list[PooledSocket]:
        """The idle sockets of every key (a copy: closing them changes the index)."""
        return [pooled for idle in self._idle.values() for pooled in idle.values()]

    def _move(self, pooled: PooledSocket, state: SocketState) -> None:
        """Every state change of a pooled socket goes here, so that the busy counts and the idle index
        stay exact."""
        was_busy, was_idle = sockets.is_busy(pooled), pooled.state is SocketState.IDLE
        pooled.transition(state)
        change = sockets.is_busy(pooled) - was_busy
        if change:
            busy = self._busy.get(pooled.key, 0) + change
            if busy:
                self._busy[pooled.key] = busy
            else:
                del self._busy[pooled.key]
        if was_idle != (state is SocketState.IDLE):
            self._index_idle(pooled)

    def _index_idle(self, pooled: PooledSocket) -> None:
        if pooled.state is SocketState.IDLE:
            self._idle.setdefault(pooled.key, {})[pooled.id] = pooled
            return
        idle = self._idle.get(pooled.key)
        if idle is not None:
            idle.pop(pooled.id, None)
            if not idle:
                del self._idle[pooled.key]

    def _pick(self, key: PoolKey, chars: int) -> PooledSocket | None:
        now = self._clock.monotonic()
        generation = self._credentials.generation
        utterance_s, max_age_s = self._timeouts.utterance_s, self._settings.max_socket_age_s
        return sockets.pick(
            self.idle_sockets(key),
            chars,
            now,
            self._limits,
            lambda s: s.is_reusable(now, generation, utterance_s, max_age_s),
        )

    def _is_reusable(self, pooled: PooledSocket) -> bool:
        return pooled.is_reusable(
            self._clock.monotonic(),
            self._credentials.generation,
            self._timeouts.utterance_s,
            self._settings.max_socket_age_s,
        )

    def _has_room(self) -> bool:
        if self.open_sockets + self.connecting < self.socket_limit:
            return True
        if self.is_over_limit:
            return False  # a lowered share: sockets close as they come back, none is swapped
        # Full: an idle socket of a key nobody waits for may make way.
        idle = self._every_idle()
        if idle:
            self._close(min(idle, key=lambda s: s.last_used_at))
            return True
        return False

    async def _wait_for_change(self, key: PoolKey) -> None:
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            await self._changed.wait()
        finally:
            self._waiting[key] -= 1

    def _notify(self) -> None:
        """Wake every waiter: the event they wait on is set and a fresh one takes its place."""
        self._changed.set()
        self._changed = asyncio.Event()

    # --- opening and closing ----------------------------------------------------------------------

    async def _open(self, key: PoolKey, *, leased: bool) -> PooledSocket:
        api_key = self._credentials.key
        if api_key is None:
            raise errors.UpstreamAuthFailed("no Deepgram key is loaded")
        if not self._breaker.allow():
            raise errors.CircuitOpen("the upstream circuit breaker is open")
        generation = self._credentials.generation
        self._connecting[key] = self._connecting.get(key, 0) + 1
        began = self._clock.monotonic()
        try:
            socket, metadata = await self._connector.connect(key.options, api_key)
        except errors.UpstreamError as error:
            self._record_connect_failure(error, generation)
            raise
        except BaseException:
            self._breaker.release_probe()
            raise
        finally:
            self._connecting[key] -= 1
            self._notify()
        self._breaker.record_success()
        self._handshakes.record(self._clock.monotonic() - began)
        if generation == self._credentials.generation:
            self._credentials.report(True, fresh_handshake=True)
        pooled = PooledSocket(
            next(self._ids), key, socket, self._clock.monotonic(), generation, self._limits.window_s
        )
        self._sockets[pooled.id] = pooled  # no await since the notify: waiters see it when they run
        self._index_idle(pooled)
        if not self._warmed and key == self._default_key:
            opened = sum(s.key == key for s in self._sockets.values())
            self._warmed = opened >= min(self._settings.warm_min_per_key, self.socket_limit)
        details = parse_server_message(metadata)
        if isinstance(details, Metadata):
            self._models[key.model] = details
        self.opened_total += 1
        if leased:
            self.opened_on_demand_total += 1
        log.debug(
            "upstream socket opened", socket=pooled.id, upstream_request_id=socket.request_id, warm=not leased
        )
        return pooled

    def _record_connect_failure(self, error: errors.UpstreamError, generation: int) -> None:
        self._warmed = True  # readiness now follows the key and breaker, not the warm minimum
        if error.error_class is errors.ErrorClass.AUTH and generation == self._credentials.generation:
            self._credentials.report(False, fresh_handshake=True)
        self._breaker.record_error(error)
        log.warning("upstream connect failed", error_class=error.error_class.value, error=str(error))

    def _close(self, pooled: PooledSocket) -> None:
        if pooled.state is SocketState.CLOSED:
            return
        self._move(pooled, SocketState.CLOSED)
        self._sockets.pop(pooled.id, None)
        self._tasks.spawn(f"close-{pooled.id}", self._close_socket(pooled.socket))
        self._wake()

    async def _close_socket(self, socket: UpstreamSocket) -> None:
        try:
            async with asyncio.timeout(self._timeouts.connect_s):
                await socket.close()
        except TimeoutError:
            log.warning("upstream socket close timed out")

    async def _clear(self, pooled: PooledSocket) -> None:
        """Clear an abandoned utterance and drain its audio until Cleared; close the socket if that fails."""
        try:
            async with asyncio.timeout(self._timeouts.first_byte_s + self._timeouts.inter_chunk_s):
                await pooled.socket.send_texts(Clear().to_json())
                while True:
                    frame = await pooled.socket.receive()
                    if isinstance(frame, str) and isinstance(parse_server_message(frame), Cleared):
                        break
        except (TimeoutError, errors.UpstreamError):
            self._close(pooled)
        else:
            if pooled.state is SocketState.CLEARING and self._is_reusable(pooled) and not self.is_over_limit:
                self._move(pooled, SocketState.IDLE)
            else:
                self._close(pooled)
        self._record_busy(pooled.key)
        self._notify()

    # --- maintenance ------------------------------------------------------------------------------

    def credentials_changed(self) -> None:
        """Retire sockets of older keys: idle ones now, leased ones after their utterance."""
        for pooled in list(self._sockets.values()):
            if pooled.generation == self._credentials.generation:
                continue
            if pooled.state is SocketState.IDLE:
                self._close(pooled)
            elif pooled.state is SocketState.LEASED:
                self._move(pooled, SocketState.RETIRING)
        self._wake()

    async def run(self) -> None:
        """Keep spares, recycle and ping, until cancelled; then close every socket."""
        self._keys_used[self._default_key] = self._clock.monotonic()
        # A ticker wakes maintenance at least once a tick; leases and releases wake it in between. One
        # timer a tick, not a timeout set up and torn down for every wakeup (one per lease).
        tick_s = min(MAINTENANCE_TICK_S, self._settings.idle_ping_interval_s / 4)
        loop = asyncio.get_running_loop()
        ticker: asyncio.TimerHandle | None = None

        def tick() -> None:
            nonlocal ticker
            self._wake()
            ticker = loop.call_later(tick_s, tick)

        # Its own context, not that of whichever utterance asks for a pass: the spares it spawns log
        # under no utterance's id.
        self._context = contextvars.copy_context()
        self._loop = loop
        ticker = loop.call_later(tick_s, tick)
        try:
            self._maintain()
            await loop.create_future()  # passes run from `_wake` until cancelled
        finally:
            self._loop = None
            ticker.cancel()
            if self._maintenance is not None:
                self._maintenance.cancel()
                self._maintenance = None
            for pooled in list(self._sockets.values()):
                self._close(pooled)
            await self._tasks.close()

    def _wake(self) -> None:
        """Ask for a maintenance pass in the loop's next turn: one, however many ask before it. A
        callback, not a task woken by an event: a lease asks after every utterance's start."""
        if self._loop is not None and self._maintenance is None:
            self._maintenance = self._loop.call_soon(self._maintain_now, context=self._context)

    def _maintain_now(self) -> None:
        self._maintenance = None
        try:
            self._maintain()
        except Exception:
            log.exception("pool maintenance failed; the next pass tries again")

    def _maintain(self) -> None:
        now = self._clock.monotonic()
        self._maybe_recheck_key(now)
        if now >= self._next_sweep_at:
            self._sweep_idle(now)
            self._next_sweep_at = now + MAINTENANCE_TICK_S
        for key, used_at in list(self._keys_used.items()):
            if key != self._default_key and now - used_at > self._settings.idle_key_ttl_s:
                self._forget(key)
                continue
            peaks = self._peaks.get(key)
            missing = sockets.sockets_to_open(
                self.idle_sockets(key),
                self._connecting.get(key, 0),
                peaks.peak(now) if peaks else 0,
                self._expected_rate(key, now),
                self.handshake_s,
                now,
                self._settings,
                self._limits,
            )
            while missing > 0 and self._can_warm():
                self._connecting[key] = self._connecting.get(key, 0) + 1  # counted until the task runs
                self._tasks.spawn(f"spare-{key.model}", self._warm(key))
                missing -= 1

    def _sweep_idle(self, now: float) -> None:
        """Recycle idle sockets past their age or key, and ping those idle for a while. Once a tick, not
        on every lease: a lease never takes an unusable socket (`_pick` checks), so this only tidies."""
        for pooled in self._every_idle():
            if not self._is_reusable(pooled):
                self._close(pooled)  # recycled: the spares replace it
            elif not pooled.pinging and now - pooled.last_used_at >= self._settings.idle_ping_interval_s:
                pooled.pinging = True
                self._tasks.spawn(f"ping-{pooled.id}", self._ping(pooled))

    def _forget(self, key: PoolKey) -> None:
        """Nobody used `key` for `idle_key_ttl_s`: no spares for it, and its idle sockets close."""
        del self._keys_used[key]
        self._peaks.pop(key, None)
        self._lease_rates.pop(key, None)
        self._session_cover.pop(key, None)
        counted = self._sessions.get(key)
        if counted is not None and counted.sessions == 0:
            del self._sessions[key]
        for pooled in list(self.idle_sockets(key)):
            self._close(pooled)
        log.debug("idle pool key forgotten", model=key.model, encoding=key.encoding.value)

    def _maybe_recheck_key(self, now: float) -> None:
        """A refused key is re-checked with a fresh handshake on a bounded schedule (seconds), not only
        when some socket happens to be recycled; the handshake's answer judges it (credentials.py)."""
        if (
            not self._credentials.doubted
            or self.open_sockets + self.connecting >= self.socket_limit
            or self._rechecking
            or self._credentials.key is None
            or now < self._recheck_at
        ):
            return
        self._rechecking = True
        self._tasks.spawn("key-recheck", self._recheck_key())

    async def _recheck_key(self) -> None:
        try:
            pooled = await self._open(self._default_key, leased=False)
        except errors.UpstreamError:
            return  # judged and logged by _open; the schedule tries again
        finally:
            self._rechecking = False
            delay_s = credentials.recheck_delay_s(self._credentials.refusals)
            self._recheck_at = self._clock.monotonic() + delay_s
        pooled.last_used_at = self._clock.monotonic()  # a spare like any other

    def _can_warm(self) -> bool:
        return (
            self._credentials.key is not None
            and self._credentials.valid is not False  # a refused key is only re-checked, on its schedule
            and self.open_sockets + self.connecting < self.socket_limit
            and self._breaker.state.value != "open"
        )

    async def _warm(self, key: PoolKey) -> None:
        self._connecting[key] -= 1
        try:
            pooled = await self._open(key, leased=False)
        except errors.UpstreamError:
            return  # logged and counted by _open; the next tick tries again
        pooled.last_used_at = self._clock.monotonic()
        if self.is_over_limit:
            self._close(pooled)  # the share was lowered while it connected

    async def _ping(self, pooled: PooledSocket) -> None:
        try:
            async with asyncio.timeout(self._timeouts.connect_s):
                await pooled.socket.ping()
        except (TimeoutError, errors.UpstreamError):
            if pooled.state is SocketState.IDLE:
                self._close(pooled)
        else:
            if pooled.state is SocketState.IDLE:
                pooled.last_used_at = self._clock.monotonic()
        finally:
            pooled.pinging = False
