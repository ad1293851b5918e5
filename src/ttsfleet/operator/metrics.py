"""The operator's Prometheus metrics, on their own registry and port.

Names carry the `ttsfleet_operator_` prefix, except the `ttsfleet_backend_*` gauges, which describe a
backend rather than the operator (alerts and the dashboard join them with the gateways' metrics).
Per-backend series carry `namespace` and `name`. The registry also carries the standard process
series (`process_*`, `python_*`).
"""

from __future__ import annotations

import contextlib
import threading
from wsgiref.simple_server import WSGIServer

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge

from ttsfleet.process_metrics import register_process_collectors


class OperatorMetrics:
    """Counters and gauges the handlers update; `serve` exposes them over HTTP."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        register_process_collectors(self.registry)
        self.reconciles = Counter(
            "ttsfleet_operator_reconciles",
            "Reconciles of TTSBackends, by outcome (changed, unchanged, invalid_spec).",
            ["outcome"],
            registry=self.registry,
        )
        self.reconcile_errors = Counter(
            "ttsfleet_operator_reconcile_errors",
            "Reconciles of a backend that failed, by error class (retried by kopf).",
            ["namespace", "name", "error"],
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
        self.credential_rollout_complete = Gauge(
            "ttsfleet_backend_credential_rollout_complete",
            "1 when every serving pod of the backend uses the key in its Secret, 0 while some do not "
            "(absent when no pod reports).",
            ["namespace", "name"],
            registry=self.registry,
        )
        self._ready: dict[tuple[str, str], str] = {}
        self._error_classes: dict[tuple[str, str], set[str]] = {}
        self._lock = threading.Lock()
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def set_ready(self, namespace: str, name: str, ready: str, converged: bool) -> None:
        """Record a backend's Ready status (True/False/Unknown) and whether it is converged."""
        self.backend_ready.labels(namespace, name).set(1 if converged else 0)
        with self._lock:
            self._ready[(namespace, name)] = ready
            self._recount()

    def set_credential_rollout(self, namespace: str, name: str, complete: bool | None) -> None:
        """Record whether the backend's pods all use its current key (None: no pod reports, no series)."""
        if complete is None:
            with contextlib.suppress(KeyError):
                self.credential_rollout_complete.remove(namespace, name)
        else:
            self.credential_rollout_complete.labels(namespace, name).set(1 if complete else 0)

    def reconcile_failed(self, namespace: str, name: str, error: str) -> None:
        """Count a failed reconcile of a backend by the error's class."""
        self.reconcile_errors.labels(namespace, name, error).inc()
        with self._lock:
            self._error_classes.setdefault((namespace, name), set()).add(error)

    def forget(self, namespace: str, name: str) -> None:
        """Drop a deleted backend's series."""
        with contextlib.suppress(KeyError):
            self.backend_ready.remove(namespace, name)
        self.set_credential_rollout(namespace, name, None)
        with self._lock:
            self._ready.pop((namespace, name), None)
            self._recount()
            error_classes = self._error_classes.pop((namespace, name), set())
        for error in error_classes:
            with contextlib.suppress(KeyError):
                self.reconcile_errors.remove(namespace, name, error)

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
