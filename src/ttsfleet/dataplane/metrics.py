"""Prometheus metrics of one gateway, all prefixed `ttsfleet_`, on the gateway's own registry.

The registry also carries the standard process series (`process_*`, `python_*`): memory, CPU, fds, GC.

Event counts and latencies are recorded as they happen; state (sockets, breaker, credential reloads)
is read from the components at scrape time, so it can never drift from what /statusz says.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ttsfleet.contracts import BreakerState
from ttsfleet.process_metrics import register_process_collectors

# A young collection takes well under a millisecond; a full one walks every session's objects (tens of
# ms at a thousand sessions), during which no audio moves.
GC_PAUSE_BUCKETS_S = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
# TTFB of a warm socket is ~100 ms; a cold path with a handshake ~300 ms; anything over 2 s is an incident.
TTFB_BUCKETS_S = (0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0)
DURATION_BUCKETS_S = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)


@dataclass(frozen=True)
class StateReaders:
    """Callables reading component state at scrape time."""

    open_sockets: Callable[[], int]
    leased_sockets: Callable[[], int]
    breaker_state: Callable[[], str]
    credential_reloads: Callable[[], int]
    cache_bytes: Callable[[], int]
    socket_limit: Callable[[], int] = lambda: 0
    handshakes: Callable[[], int] = lambda: 0
    handshakes_on_demand: Callable[[], int] = lambda: 0
    lease_waits: Callable[[], int] = lambda: 0
    upgrades_queued: Callable[[], int] = lambda: 0
    upgrades_waiting: Callable[[], int] = lambda: 0


class _StateCollector(Collector):
    def __init__(self, readers: StateReaders) -> None:
        self._readers = readers

    def collect(self) -> Iterator[Metric]:
        sockets = GaugeMetricFamily(
            "ttsfleet_upstream_sockets", "Upstream sockets by state.", labels=["state"]
        )
        sockets.add_metric(["open"], self._readers.open_sockets())
        sockets.add_metric(["leased"], self._readers.leased_sockets())
        yield sockets
        yield GaugeMetricFamily(
            "ttsfleet_upstream_socket_limit",
            "Upstream sockets this pod may hold: pool.max_sockets, or its share of the fleet's budget.",
            value=self._readers.socket_limit(),
        )
        handshakes = CounterMetricFamily(
            "ttsfleet_upstream_handshakes",
            "Upstream sockets opened; waited = an utterance waited for it (no idle socket with budget"
            " was open): a whole handshake in that utterance's time to first byte.",
            labels=["waited"],
        )
        on_demand = self._readers.handshakes_on_demand()
        handshakes.add_metric(["true"], on_demand)
        handshakes.add_metric(["false"], self._readers.handshakes() - on_demand)
        yield handshakes
        yield CounterMetricFamily(
            "ttsfleet_upstream_lease_waits",
            "Utterances that found no idle upstream socket with budget and waited for one: their own"
            " handshake, a spare's still connecting, or a socket coming free (at the pod's share).",
            value=self._readers.lease_waits(),
        )
        yield CounterMetricFamily(
            "ttsfleet_upgrades_queued",
            "Client WebSocket upgrades that waited for their turn (connections.max_upgrading were being"
            " set up): a crowd connecting at once.",
            value=self._readers.upgrades_queued(),
        )
        yield GaugeMetricFamily(
            "ttsfleet_upgrades_waiting",
            "Client WebSocket upgrades waiting for their turn now.",
            value=self._readers.upgrades_waiting(),
        )
        breaker = GaugeMetricFamily(
            "ttsfleet_breaker_state", "Upstream circuit breaker: 1 for the current state.", labels=["state"]
        )
        current = self._readers.breaker_state()
        for state in BreakerState:
            breaker.add_metric([state], 1.0 if state == current else 0.0)
        yield breaker
        yield CounterMetricFamily(
            "ttsfleet_credential_reloads",
            "Deepgram key changes picked up.",
            value=self._readers.credential_reloads(),
        )
        yield GaugeMetricFamily(
            "ttsfleet_cache_bytes", "Audio bytes held by the cache.", value=self._readers.cache_bytes()
        )


class Metrics:
    """The gateway's instruments."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        register_process_collectors(r)
        self.ttfb = Histogram(
            "ttsfleet_ttfb_seconds",
            "From Flush (or REST request) to the first audio byte sent.",
            ["source"],
            buckets=TTFB_BUCKETS_S,
            registry=r,
        )
        self.utterance_duration = Histogram(
            "ttsfleet_utterance_duration_seconds",
            "From Flush to the utterance's last byte.",
            ["source"],
            buckets=DURATION_BUCKETS_S,
            registry=r,
        )
        self.sessions_active = Gauge(
            "ttsfleet_sessions_active", "Open client WebSocket sessions.", registry=r
        )
        self.sessions = Counter("ttsfleet_sessions", "Client WebSocket sessions accepted.", registry=r)
        self.utterances_active = Gauge("ttsfleet_utterances_active", "Utterances in flight.", registry=r)
        self.utterances = Counter("ttsfleet_utterances", "Utterances by outcome.", ["outcome"], registry=r)
        self.errors = Counter("ttsfleet_errors", "Upstream errors by class.", ["error_class"], registry=r)
        self.retries = Counter("ttsfleet_retries", "Utterance attempts after the first.", registry=r)
        # What Deepgram bills: characters of utterances synthesized upstream (cache hits cost nothing).
        # `token` is the fleet token's fingerprint ("none" with auth off), never the token.
        self.billed_characters = Counter(
            "ttsfleet_billed_characters",
            "Characters synthesized upstream (billed by Deepgram), by fleet token fingerprint and model.",
            ["token", "model"],
            registry=r,
        )
        self.fallbacks = Counter(
            "ttsfleet_fallbacks",
            "REST fallback requests sent upstream (an utterance may make several); breaker refusals are not.",
            registry=r,
        )
        self.cache_hits = Counter("ttsfleet_cache_hits", "Utterances served from the cache.", registry=r)
        self.cache_misses = Counter("ttsfleet_cache_misses", "Cache lookups that missed.", registry=r)
        self.refusals = Counter(
            "ttsfleet_refusals", "Refused upgrades and requests by status.", ["status"], registry=r
        )
        self.gc_pauses = Histogram(
            "ttsfleet_gc_pause_seconds",
            "Garbage-collector passes, by generation (2 = a full pass): the whole process stops for each.",
            ["generation"],
            buckets=GC_PAUSE_BUCKETS_S,
            registry=r,
        )
        self.client_closes = Counter(
            "ttsfleet_client_closes",
            "Client sockets closed by the gateway, by reason.",
            ["reason"],
            registry=r,
        )

        # Each label's child, looked up once: `labels()` takes a lock and builds a key on every call, and
        # every utterance records four of these (the fleet tokens and the models are few).
        self._children: dict[tuple[object, tuple[str, ...]], Any] = {}

        # Plain counts for /statusz (reading prometheus values back is not part of its API).
        self.utterances_in_flight = 0
        self.utterances_started = 0
        # Since this process started (the /statusz counter the operator turns into status.usage).
        self.characters_billed = 0

    def first_byte(self, source: str, seconds: float) -> None:
        """An utterance's first audio byte left, `seconds` after its Flush (or REST request)."""
        self._child(self.ttfb, source).observe(seconds)

    def utterance_completed(self, source: str, seconds: float) -> None:
        """An utterance's last byte left, `seconds` after its Flush, from `source`."""
        self._child(self.utterances, "completed").inc()
        self._child(self.utterance_duration, source).observe(seconds)

    def utterance_failed(self) -> None:
        self._child(self.utterances, "failed").inc()

    def _child(self, metric: Any, *labels: str) -> Any:
        """`metric.labels(*labels)`, looked up once per metric and label values."""
        child = self._children.get((metric, labels))
        if child is None:
            child = self._children[(metric, labels)] = metric.labels(*labels)
        return child

    def billed(self, token: str, model: str, chars: int) -> None:
        """Count characters synthesized upstream (not served from the cache)."""
        self._child(self.billed_characters, token, model).inc(chars)
        self.characters_billed += chars

    def utterance_started(self) -> None:
        self.utterances_in_flight += 1
        self.utterances_started += 1
        self.utterances_active.inc()

    def utterance_ended(self) -> None:
        self.utterances_in_flight -= 1
        self.utterances_active.dec()

    def watch_state(self, readers: StateReaders) -> None:
        self.registry.register(_StateCollector(readers))

    def render(self) -> bytes:
        return generate_latest(self.registry)
