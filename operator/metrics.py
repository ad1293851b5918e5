"""The operator's Prometheus metrics, on their own registry and port.

Names carry the `ttsfleet_operator_` prefix, except `ttsfleet_backend_ready`, which describes a
backend rather than the operator (alerts and the dashboard join it with the gateways' metrics).
"""

from __future__ import annotations

import contextlib
import threading
from wsgiref.simple_server import WSGIServer

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge


class OperatorMetrics:
    """Counters and gauges the handlers update; `serve` exposes them over HTTP."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.reconciles = Counter(
            "ttsfleet_operator_reconciles",
            "Reconciles of TTSBackends, by outcome (changed, unchanged, invalid_spec).",
            ["outcome"],
            registry=self.registry,
        )
        self.reconcile_errors = Counter(
            "ttsfleet_operator_reconcile_errors",
            "Reconciles that failed, by error class (retried by kopf).",
            ["error"],
            registry=self.registry,
        )
        self.probe_failures = Counter(
            "ttsfleet_operator_probe_failures",
            "Pods whose /statusz could not be fetched.",
            registry=self.registry,
        )
        self.status_refreshes = Counter(
            "ttsfleet_operator_status_refreshes",
            "Timer ticks that refreshed a backend's status (one per backend per probe interval).",
            registry=self.registry,
        )
        self.status_writes = Counter(
            "ttsfleet_operator_status_writes",
            "Status patches written (an idle backend writes none).",
            registry=self.registry,
        )
        self.backends = Gauge(
            "ttsfleet_operator_backends",
            "TTSBackends served, by their Ready condition status.",
            ["ready"],
            registry=self.registry,
        )
        self.backend_ready = Gauge(
            "ttsfleet_backend_ready",
            "1 when the backend's Ready condition is True and describes its latest generation, else 0.",
            ["namespace", "name"],
            registry=self.registry,
        )
        self._ready: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def set_ready(self, namespace: str, name: str, ready: str, converged: bool) -> None:
        """Record a backend's Ready status (True/False/Unknown) and whether it is converged."""
        self.backend_ready.labels(namespace, name).set(1 if converged else 0)
        with self._lock:
            self._ready[(namespace, name)] = ready
            self._recount()

    def forget(self, namespace: str, name: str) -> None:
        """Drop a deleted backend's series."""
        with contextlib.suppress(KeyError):
            self.backend_ready.remove(namespace, name)
        with self._lock:
            self._ready.pop((namespace, name), None)
            self._recount()

    def _recount(self) -> None:
        for value in ("True", "False", "Unknown"):
            self.backends.labels(value).set(sum(state == value for state in self._ready.values()))

    def serve(self, port: int, host: str = "0.0.0.0") -> None:
        """Serve /metrics on a daemon thread (prometheus_client's own server)."""
        self._server, self._thread = prometheus_client.start_http_server(
            port, addr=host, registry=self.registry
        )

    def close(self) -> None:
        """Stop the HTTP server, if serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
