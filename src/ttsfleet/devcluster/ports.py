"""Loopback ports for the local fleet's processes, picked by the kernel.

The port is free when asked and bound later by another process, so a rare race remains; the local
fleet accepts it (a clash fails the start loudly) rather than passing listening sockets around.
"""

from __future__ import annotations

import socket


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
