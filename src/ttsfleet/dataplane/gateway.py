"""The gateway's parts, wired once from settings, with their background tasks and their state.

`Gateway` owns the pool, credentials, tokens, cache, limits, breakers, metrics and lifecycle; the app
module only routes requests to it. Seams (connector, REST speaker, clock) can be swapped for tests.
"""

from __future__ import annotations

import asyncio
import socket
import uuid

import structlog

from ttsfleet.dataplane import admission, limits, status
from ttsfleet.dataplane.breaker import CircuitBreaker
from ttsfleet.dataplane.cache import AudioCache
from ttsfleet.dataplane.credentials import KeyFile
from ttsfleet.dataplane.draining import Lifecycle, Phase
from ttsfleet.dataplane.fallback import HttpRestSpeaker
from ttsfleet.dataplane.metrics import Metrics, StateReaders
from ttsfleet.dataplane.pool import Pool
from ttsfleet.dataplane.retrying import RetryPolicy
from ttsfleet.dataplane.seams import Clock, LoopClock, RestSpeaker, UpstreamConnector
from ttsfleet.dataplane.sessions import SessionContext
from ttsfleet.dataplane.settings import LoadedSettings
from ttsfleet.dataplane.shares import Share, ShareFile
from ttsfleet.dataplane.sockets import PoolKey
from ttsfleet.dataplane.tokens import Revocations, TokenStore
from ttsfleet.dataplane.upgrades import UpgradePacer
from ttsfleet.dataplane.upstream import WebSocketConnector
from ttsfleet.dataplane.utterances import Synthesizer
from ttsfleet.protocol import SocketLimits, SpeakOptions
from ttsfleet.supervision import Supervisor

log = structlog.get_logger(__name__)


class Gateway:
    """One gateway process's state and parts."""

    def __init__(
        self,
        loaded: LoadedSettings,
        *,
        connector: UpstreamConnector | None = None,
        rest: RestSpeaker | None = None,
        clock: Clock | None = None,
    ) -> None:
        settings = self.settings = loaded.settings
        self.config_hash = loaded.config_hash
        self.pod = settings.server.pod_name or socket.gethostname()
        self.boot_id = uuid.uuid4().hex[:12]
        self.clock = clock or LoopClock()
        self.metrics = Metrics()
        self.lifecycle = Lifecycle()
        self.credentials = KeyFile(settings.credentials.deepgram_key_file)
        self.tokens = TokenStore(settings.auth.client_tokens_file) if settings.auth.enabled else None
        self.revocations = Revocations()
        breaker = settings.breaker
        self.ws_breaker = CircuitBreaker(
            self.clock, breaker.failure_threshold, breaker.open_s, breaker.half_open_max_probes
        )
        self.rest_breaker = CircuitBreaker(
            self.clock, breaker.failure_threshold, breaker.open_s, breaker.half_open_max_probes
        )
        self.cache = (
            AudioCache(self.clock, settings.cache.max_bytes, settings.cache.ttl_s)
            if settings.cache.enabled
            else None
        )
        timeouts = settings.timeouts
        self._rest = rest or HttpRestSpeaker(
            settings.upstream.effective_rest_url,
            timeouts.connect_s,
            max(timeouts.first_byte_s, timeouts.inter_chunk_s),
        )
        speak = settings.speak
        self.default_options = SpeakOptions(
            model=speak.default_model, encoding=speak.default_encoding, sample_rate=speak.default_sample_rate
        )
        self.pool = Pool(
            connector or WebSocketConnector(settings.upstream.url, timeouts.connect_s),
            self.credentials,
            self.ws_breaker,
            self.clock,
            settings.pool,
            timeouts,
            SocketLimits(),
            PoolKey.of(self.default_options),
        )
        self.credentials.on_change(self.pool.credentials_changed)
        retry = settings.retry
        self.synthesizer = Synthesizer(
            self.pool,
            self._rest,
            self.credentials,
            self.rest_breaker,
            self.cache,
            RetryPolicy(retry.max_attempts, retry.base_delay_s, retry.max_delay_s),
            timeouts,
            self.metrics,
            self.clock,
        )
        self.sessions = limits.SessionLimiter(settings.limits.max_sessions)
        connections = settings.connections
        self.upgrades = UpgradePacer(connections.max_upgrading, connections.max_upgrades_waiting)
        self.limiter = limits.CharacterLimiter(self.clock, settings.limits.chars_per_minute_per_token)
        self.shares = ShareFile(settings.shares.file, self.pod) if settings.shares.file else None
        if settings.shares.required:
            self.pool.set_socket_share(0)  # no upstream socket before the operator's division arrives
        if self.shares is not None:
            self.shares.on_change(self._apply_share)
        self.session_context = SessionContext(
            synthesizer=self.synthesizer,
            pool=self.pool,
            limiter=self.limiter,
            metrics=self.metrics,
            clock=self.clock,
            max_speak_chars=settings.limits.max_speak_chars,
            send_buffer_bytes=settings.limits.client_send_buffer_bytes,
            slow_client_grace_s=timeouts.inter_chunk_s,
        )
        self.tasks = Supervisor("gateway")
        self.metrics.watch_state(
            StateReaders(
                open_sockets=lambda: self.pool.open_sockets,
                leased_sockets=lambda: self.pool.leased_sockets,
                breaker_state=lambda: self.ws_breaker.state.value,
                credential_reloads=lambda: self.credentials.reloads,
                cache_bytes=lambda: self.cache.bytes_held if self.cache else 0,
                socket_limit=lambda: self.pool.socket_limit,
                handshakes=lambda: self.pool.opened_total,
                handshakes_on_demand=lambda: self.pool.opened_on_demand_total,
                lease_waits=lambda: self.pool.lease_waits_total,
                upgrades_queued=lambda: self.upgrades.queued,
                upgrades_waiting=lambda: self.upgrades.waiting,
            )
        )

    async def start(self) -> None:
        """Load the key and tokens, start the pool and the file polls; then serve."""
        await self.credentials.refresh()
        if self.tokens is not None:
            await asyncio.to_thread(self.tokens.reload)
        interval_s = self.settings.credentials.poll_interval_s
        self.tasks.spawn("pool", self.pool.run())
        self.tasks.spawn("credential-poll", self.credentials.poll(interval_s))
        if self.shares is not None:
            await self.shares.refresh()
            self.tasks.spawn("share-poll", self.shares.poll(interval_s))
        if self.tokens is not None:
            self.tasks.spawn("token-poll", self._poll_tokens(interval_s))
        self.lifecycle.transition(Phase.SERVING)
        log.info(
            "gateway serving",
            pod=self.pod,
            fingerprint=self.credentials.fingerprint,
            auth=self.tokens is not None,
            config_hash=self.config_hash,
        )

    async def stop(self) -> None:
        await self.tasks.close()
        aclose = getattr(self._rest, "aclose", None)
        if aclose is not None:
            await aclose()

    async def drain(self) -> bool:
        return await self.lifecycle.drain(self.settings.drain.timeout_s)

    async def _poll_tokens(self, interval_s: float) -> None:
        assert self.tokens is not None
        while True:
            await asyncio.sleep(interval_s)
            if await asyncio.to_thread(self.tokens.reload):
                revoked = self.revocations.tokens_changed(self.tokens)
                log.info("client tokens reloaded", tokens=self.tokens.count, sessions_revoked=revoked)

    def _apply_share(self, share: Share) -> None:
        """Take a new division: the socket share (or none without a budget) and the per-token rate."""
        self.pool.set_socket_share(share.upstream_sockets)
        per_token = share.chars_per_minute_per_token
        self.limiter.set_rate(per_token if per_token else self.settings.limits.chars_per_minute_per_token)

    def check_serving(self) -> None:
        """Raise the Refusal a new session or request gets while draining or without a usable key.

        Three fields, read on every connect: `facts()` builds the whole /statusz snapshot.
        """
        admission.check_serving(
            self.lifecycle.is_draining, bool(self.credentials.key), self.credentials.valid is False
        )

    def facts(self) -> status.StatusFacts:
        share = self.shares.share if self.shares is not None else None
        return status.StatusFacts(
            pod=self.pod,
            serving=self.lifecycle.phase is Phase.SERVING,
            draining=self.lifecycle.is_draining,
            sessions_active=self.sessions.active,
            sessions_total=self.sessions.total,
            utterances_active=self.metrics.utterances_in_flight,
            utterances_total=self.metrics.utterances_started,
            open_sockets=self.pool.open_sockets,
            leased_sockets=self.pool.leased_sockets,
            breaker=self.ws_breaker.state.value,
            fingerprint=self.credentials.fingerprint,
            credential_valid=self.credentials.valid,
            credential_reloads=self.credentials.reloads,
            config_hash=self.config_hash,
            upstream_warmed=self.pool.warmed,
            credential_problem=self.credentials.problem,
            connecting_sockets=self.pool.connecting,
            share_required=self.settings.shares.required,
            share_revision=share.revision if share else None,
            socket_share=self.pool.socket_share,
            chars_share=self.limiter.chars_per_minute,
            boot_id=self.boot_id,
            billed_characters=self.metrics.characters_billed,
            sockets_opened=self.pool.opened_total,
            sockets_opened_on_demand=self.pool.opened_on_demand_total,
            lease_waits=self.pool.lease_waits_total,
            handshake_ms=self.pool.handshake_s * 1000,
        )
