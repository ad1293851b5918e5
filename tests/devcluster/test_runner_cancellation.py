"""The pod runner stops when cancelled, even when the cancellation meets a wake-up.

A reconcile loop parked in Python 3.11's `asyncio.wait_for` kept running after the test's cancel, and the
runner never finished stopping: seen once in CI as a two-minute timeout (tests/support/cancelling.py).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.support.cancelling import cancel_as_it_wakes
from tests.support.waiting import wait_until
from ttsfleet.devcluster import kubeapi
from ttsfleet.devcluster.apiserver import ApiServer
from ttsfleet.devcluster.runner import Runner, RunnerSettings


async def test_a_cancel_that_meets_a_wake_up_still_stops_the_runner(
    apiserver: ApiServer, tmp_path: Path
) -> None:
    async with kubeapi.KubeApi(apiserver.base_url) as api:
        settings = RunnerSettings(state_dir=tmp_path / "state")
        runner = Runner(api, settings)
        task = asyncio.create_task(runner.run(), name="runner")
        # The Services file is the last thing a reconcile pass writes: once it is there, the loop has
        # gone back to waiting for the next wake-up.
        await wait_until(settings.services_file.exists, 10, "the first reconcile pass")
        await cancel_as_it_wakes(task, runner.wake)
