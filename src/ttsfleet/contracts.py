"""What the gateway and the operator agree on beside the speak protocol (docs/contracts.md).

The components never import each other, so the facts both sides must spell alike live here: where
the operator mounts the files the gateway reads, and the breaker states `/statusz` reports. Plain
data, no I/O.
"""

from __future__ import annotations

import enum

# The gateway settings file: a ConfigMap key, mounted whole at CONFIG_DIR.
CONFIG_DIR = "/etc/ttsfleet"
CONFIG_KEY = "config.yaml"
CONFIG_FILE = f"{CONFIG_DIR}/{CONFIG_KEY}"
# The Deepgram key and the fleet tokens: one Secret key each, mounted whole (the kubelet refreshes them).
DEEPGRAM_KEY_DIR = "/var/run/ttsfleet/deepgram"
DEEPGRAM_KEY_NAME = "key"
DEEPGRAM_KEY_FILE = f"{DEEPGRAM_KEY_DIR}/{DEEPGRAM_KEY_NAME}"
TOKENS_DIR = "/var/run/ttsfleet/tokens"
TOKENS_NAME = "tokens"
TOKENS_FILE = f"{TOKENS_DIR}/{TOKENS_NAME}"
# The shares file, outside CONFIG_DIR: a mount point inside a read-only ConfigMap volume could not be
# created.
SHARES_DIR = "/var/run/ttsfleet/shares"
SHARES_KEY = "shares.json"
SHARES_FILE = f"{SHARES_DIR}/{SHARES_KEY}"


class BreakerState(enum.StrEnum):
    """A gateway's upstream circuit breaker, as `/statusz` `upstream.breaker` and the
    `ttsfleet_breaker_state` metric's `state` label name it."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
