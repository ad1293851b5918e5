"""The preStop hook that drains a gateway pod before the kubelet sends SIGTERM.

A Kubernetes httpGet hook cannot POST, so the hook runs a short stdlib-only Python script in the
gateway container: wait while the endpoint disappears, POST /drain, then wait (bounded) until
/statusz shows no open sessions. Only then may SIGTERM come: uvicorn cuts open WebSockets at once.
"""

from __future__ import annotations

from typing import Any

from ttsfleet.operator import api
from ttsfleet.operator.rendering import config

# Slack past the preStop hook for the interpreter's start and uvicorn's own shutdown, in seconds.
SHUTDOWN_MARGIN_S = 15
_POLL_INTERVAL_S = 0.5

DRAIN_SCRIPT = f"""\
import json, sys, time, urllib.request
port, delay_s, drain_s = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
base = "http://127.0.0.1:%d" % port
time.sleep(delay_s)
try:
    urllib.request.urlopen(urllib.request.Request(base + "/drain", method="POST"), timeout=5).close()
except OSError:
    sys.exit(0)
deadline = time.monotonic() + drain_s
while time.monotonic() < deadline:
    try:
        with urllib.request.urlopen(base + "/statusz", timeout=2) as reply:
            if not json.load(reply)["sessions"]["active"]:
                break
    except (OSError, ValueError, KeyError, TypeError):
        break
    time.sleep({_POLL_INTERVAL_S})
"""


def render_pre_stop(rollout: api.RolloutSpec) -> dict[str, Any]:
    """The container's `lifecycle.preStop` handler."""
    command = [
        "python3",
        "-c",
        DRAIN_SCRIPT,
        str(config.CONTAINER_PORT),
        str(rollout.pre_stop_delay_seconds),
        str(rollout.drain_timeout_seconds),
    ]
    return {"exec": {"command": command}}


def termination_grace_seconds(rollout: api.RolloutSpec) -> int:
    """Grace period covering endpoint propagation, the drain, and shutdown."""
    return rollout.pre_stop_delay_seconds + rollout.drain_timeout_seconds + SHUTDOWN_MARGIN_S
