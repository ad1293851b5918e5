"""The process's own health on a component's private registry: memory, CPU, open fds, GC.

The gateway and the operator keep their metrics on their own registries (so tests and embedded runs
never share global state); prometheus-client's default collectors live on the global one, so each
component registers its own instances here. The series are the standard ones every Prometheus
dashboard and alert knows: `process_resident_memory_bytes`, `process_cpu_seconds_total`,
`process_open_fds` / `process_max_fds`, `python_gc_*` and `python_info`.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector


def register_process_collectors(registry: CollectorRegistry) -> None:
    """Add the process, platform and garbage-collector collectors to `registry`."""
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
