"""A pod's process supervisor (`devcluster/pods.py`, shared by the node agent and the embedded runner)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tests.support.waiting import eventually
from ttsfleet.devcluster import pods


def sleeping_pod(tmp_path: Path) -> pods.PodProcess:
    """A container that sleeps until it is told to stop (SIGTERM ends it at once)."""
    return pods.PodProcess(
        namespace="voice",
        name="sleeper",
        template_hash="1",
        port=0,
        pod_dir=tmp_path / "pod",
        container={"name": "sleeper"},
        launch=pods.Launch((sys.executable, "-c", "import time; time.sleep(600)"), {}, tmp_path),
        grace_s=10.0,
        readiness=None,
        liveness=None,
        on_change=lambda: None,
    )


async def test_a_pod_being_terminated_is_not_restarted_nor_counted_as_a_restart(tmp_path: Path) -> None:
    """A deleted pod's container exits on SIGTERM: that is its end, not a crash (restartCount stays)."""
    process = sleeping_pod(tmp_path)
    supervising = asyncio.create_task(process.run(), name="pod supervisor")
    await eventually(lambda: process.pid is not None, 10, "the container to start")
    first_pid = process.pid
    await process.terminate()
    async with asyncio.timeout(10):
        await supervising
    assert process.restarts == 0
    assert process.pid == first_pid, "no second container was started"
    assert process.phase is pods.Phase.EXITED
