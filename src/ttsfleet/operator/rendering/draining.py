"""The stop sequence of a gateway pod: preStop waits while its endpoint disappears, SIGTERM drains it.

The gateway drains only on SIGTERM (no drain route exists on any socket, so nobody on the network can
take a backend down) and exits once drained. The preStop hook therefore only keeps the pod serving for
`preStopDelaySeconds` while every proxy and client stops sending it new connections; then the kubelet's
SIGTERM starts the drain, which lets utterances finish, closes sessions with 1012 and exits.
"""

from __future__ import annotations

from typing import Any

from ttsfleet.operator import api

# Slack past the drain for the interpreter's start and uvicorn's own shutdown, in seconds.
SHUTDOWN_MARGIN_S = 15

# The image has Python but need not have a shell or coreutils.
WAIT_SCRIPT = "import sys, time; time.sleep(float(sys.argv[1]))"


def render_pre_stop(rollout: api.RolloutSpec) -> dict[str, Any]:
    """The container's `lifecycle.preStop` handler."""
    return {"exec": {"command": ["python3", "-c", WAIT_SCRIPT, str(rollout.pre_stop_delay_seconds)]}}


def termination_grace_seconds(rollout: api.RolloutSpec) -> int:
    """Grace period covering endpoint propagation, the drain, and shutdown."""
    return rollout.pre_stop_delay_seconds + rollout.drain_timeout_seconds + SHUTDOWN_MARGIN_S
