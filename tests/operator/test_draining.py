"""The preStop hook, run for real: it only waits; SIGTERM (tests/dataplane) drains the gateway."""

from __future__ import annotations

import subprocess
import sys
import time

from ttsfleet.operator import api
from ttsfleet.operator.rendering import draining


def test_pre_stop_waits_for_the_delay_then_ends_cleanly() -> None:
    command = draining.render_pre_stop(api.RolloutSpec(pre_stop_delay_seconds=1))["exec"]["command"]
    assert command[0] == "python3"
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, *command[1:]], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started >= 1.0


def test_pre_stop_talks_to_no_endpoint() -> None:
    # Draining is SIGTERM's job: a hook that called an HTTP route would need that route on the network.
    command = draining.render_pre_stop(api.RolloutSpec())["exec"]["command"]
    assert not any("http" in part or "/drain" in part for part in command)
