"""The gateway and the operator export their process's health on their own /metrics.

Memory, CPU, open file descriptors against their limit, and the garbage collector: what an SRE reads
before an OOM kill or an fd exhaustion, and what TTSBackendPodMemoryNearLimit and
TTSBackendPodFdsNearLimit alert on.
"""

from __future__ import annotations

import resource

import pytest

from tests.monitoring.scrapes import Exported

PROCESS_SERIES = (
    "process_resident_memory_bytes",
    "process_virtual_memory_bytes",
    "process_cpu_seconds_total",
    "process_open_fds",
    "process_max_fds",
    "process_start_time_seconds",
    "python_gc_objects_collected_total",
    "python_gc_collections_total",
    "python_info",
)


@pytest.fixture(params=["gateway", "operator"])
def exported(request: pytest.FixtureRequest) -> Exported:
    fixture: Exported = request.getfixturevalue(f"{request.param}_exports")
    return fixture


def test_process_series_are_exported(exported: Exported) -> None:
    missing = [name for name in PROCESS_SERIES if name not in exported.names]
    assert not missing, f"not exported: {missing}"


def test_process_figures_are_the_processs_own(exported: Exported) -> None:
    """Plausible figures of a live Python process, and the fd limit it inherited from its parent."""
    assert 10 * 2**20 < exported.value("process_resident_memory_bytes") < 2 * 2**30
    assert exported.value("process_cpu_seconds_total") > 0
    open_fds, max_fds = exported.value("process_open_fds"), exported.value("process_max_fds")
    assert 3 <= open_fds < max_fds
    assert max_fds == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
