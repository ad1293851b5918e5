"""Counters the tests and benchmarks read through `GET /_emulator/stats`.

Billed characters are kept per key fingerprint, never per key.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from ttsfleet.fingerprints import fingerprint_secret

RECENT_REQUESTS = 512
# First frames whose lateness is kept: enough for a benchmark level's utterances, bounded for long runs.
RECENT_FIRST_BYTES = 20000


@dataclass(slots=True)
class Stats:
    open_sockets: int = 0
    peak_open_sockets: int = 0
    sockets_total: int = 0
    requests_total: int = 0
    rest_requests_total: int = 0
    refused_total: Counter[int] = field(default_factory=Counter)
    closes_total: Counter[str] = field(default_factory=Counter)
    chars_by_key: Counter[str] = field(default_factory=Counter)
    open_sockets_by_key: Counter[str] = field(default_factory=Counter)
    flushes_total: int = 0
    clears_total: int = 0
    audio_bytes_total: int = 0
    faults_applied: Counter[str] = field(default_factory=Counter)
    # What reached the emulator, for tests that check what a client or gateway forwarded.
    recent_requests: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=RECENT_REQUESTS))
    callbacks: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=RECENT_REQUESTS))
    # How far behind its latency model each first audio frame left (ms): the emulator's own saturation,
    # so that a benchmark never mistakes it for the latency of what stands between it and the client.
    first_byte_late_ms: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT_FIRST_BYTES))

    def request_seen(self, transport: str, query: list[tuple[str, str]], request_id: str) -> None:
        """Remember a speak request's query (never its text or credentials)."""
        self.recent_requests.append({"transport": transport, "query": query, "request_id": request_id})

    def socket_opened(self, secret: str) -> None:
        self.open_sockets += 1
        self.sockets_total += 1
        self.peak_open_sockets = max(self.peak_open_sockets, self.open_sockets)
        self.open_sockets_by_key[fingerprint_secret(secret)] += 1

    def socket_closed(self, secret: str, code: int, reason: str) -> None:
        self.open_sockets -= 1
        key = fingerprint_secret(secret)
        self.open_sockets_by_key[key] -= 1
        if self.open_sockets_by_key[key] <= 0:
            del self.open_sockets_by_key[key]
        self.closes_total[f"{code} {reason}".strip()] += 1

    def open_for_key(self, secret: str) -> int:
        return self.open_sockets_by_key.get(fingerprint_secret(secret), 0)

    def bill(self, secret: str, chars: int) -> None:
        self.chars_by_key[fingerprint_secret(secret)] += chars

    def reset(self) -> None:
        """Zero every counter but the sockets that are still open."""
        still_open = self.open_sockets
        by_key = Counter(self.open_sockets_by_key)
        fresh = Stats()
        for name in Stats.__slots__:
            setattr(self, name, getattr(fresh, name))
        self.open_sockets = still_open
        self.peak_open_sockets = still_open
        self.open_sockets_by_key = by_key

    def to_json(self) -> dict[str, Any]:
        return {
            "open_sockets": self.open_sockets,
            "peak_open_sockets": self.peak_open_sockets,
            "sockets_total": self.sockets_total,
            "requests_total": self.requests_total,
            "rest_requests_total": self.rest_requests_total,
            "refused_total": {str(status): n for status, n in self.refused_total.items()},
            "closes_total": dict(self.closes_total),
            "chars_by_key": dict(self.chars_by_key),
            "open_sockets_by_key": dict(self.open_sockets_by_key),
            "flushes_total": self.flushes_total,
            "clears_total": self.clears_total,
            "audio_bytes_total": self.audio_bytes_total,
            "faults_applied": dict(self.faults_applied),
            "first_byte_late_ms": _distribution(self.first_byte_late_ms),
        }


def _distribution(values: deque[float]) -> dict[str, float | int]:
    ordered = sorted(values)
    if not ordered:
        return {"count": 0}

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {"count": len(ordered), "p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "max": at(1.0)}
