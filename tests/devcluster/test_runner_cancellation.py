"""The pod runner stops when cancelled, even when the cancellation meets a wake-up.

Python 3.11's `asyncio.wait_for` returns the result of what it awaited, and drops the cancellation, when
both arrive in the same pass of the loop (CPython gh-86296, fixed in 3.12). A reconcile loop parked in it
then kept running after the test's cancel, and the runner never finished stopping: seen once in CI as
a two-minute timeout. `asyncio.timeout` keeps the cancellation; the lint bans `wait_for` for this.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.support.waiting import wait_until
from ttsfleet.devcluster import kubeapi
from ttsfleet.devcluster.apiserver import ApiServer
from ttsfleet.devcluster.runner import Runner, RunnerSettings

STOP_DEADLINE_S = 10.0


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
        runner.wake()
        task.cancel()  # in the same pass of the loop as the wake-up
        # Waited on without cancelling it again: a second cancel could not end a loop that drops them.
        stopped, _ = await asyncio.wait({task}, timeout=STOP_DEADLINE_S)
        assert stopped, f"the runner still ran {STOP_DEADLINE_S} s after it was cancelled"
        assert task.cancelled()
