"""This pod's share of the fleet-wide budgets, read from the shares file the operator writes.

The operator divides a backend's project-wide upstream socket budget and its per-token character
limits among the pods and writes the division into a ConfigMap mounted as a file (docs/contracts.md,
"Shares file"); the pod re-reads it on the same schedule as its key, so a new division reaches it
without a restart. `parse_shares` is pure; `ShareFile` only adds the file and the polling.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger(__name__)

# A division for thousands of pods is a few hundred kilobytes; more than this is not a shares file.
MAX_SHARES_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Share:
    """What one pod may use; None for a budget the backend does not set (the pod's own limits apply)."""

    revision: int
    upstream_sockets: int | None
    chars_per_minute_per_token: int | None
    listed: bool  # the division names this pod (else it got the share for pods not yet counted)


def _limit(entry: Mapping[str, Any], name: str) -> int | None:
    value = entry.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be a whole number >= 0, not {value!r}")
    return value


def parse_shares(raw: bytes, pod: str) -> Share:
    """The share of `pod` in a shares document; raises ValueError when it is not the contract's shape."""
    document = json.loads(raw)
    if not isinstance(document, dict):
        raise ValueError("the shares file must hold a JSON object")
    revision = document.get("revision", 0)
    if not isinstance(revision, int) or isinstance(revision, bool):
        raise ValueError(f"revision must be a whole number, not {revision!r}")
    pods = document.get("pods", {})
    unlisted = document.get("unlisted", {})
    if not isinstance(pods, dict) or not isinstance(unlisted, dict):
        raise ValueError("pods and unlisted must be JSON objects")
    entry = pods.get(pod)
    listed = isinstance(entry, dict)
    chosen: dict[str, Any] = entry if isinstance(entry, dict) else unlisted
    return Share(
        revision=revision,
        upstream_sockets=_limit(chosen, "upstream_sockets"),
        chars_per_minute_per_token=_limit(chosen, "chars_per_minute_per_token"),
        listed=listed,
    )


class ShareFile:
    """The current share of `pod` from `path`; `poll` keeps it current and tells the listeners."""

    def __init__(self, path: Path, pod: str) -> None:
        self._path = path
        self._pod = pod
        self.share: Share | None = None
        self.problem: str | None = None  # why the file could not be read as a shares file
        self._listeners: list[Callable[[Share], None]] = []

    def on_change(self, listener: Callable[[Share], None]) -> None:
        """Call `listener` with every new share."""
        self._listeners.append(listener)

    def load(self) -> bool:
        """Read the file (blocking); True when this pod's share changed.

        A missing or unreadable file keeps the last share: a ConfigMap update swaps a symlink, and a
        broken division must not lift the limits a pod already holds.
        """
        try:
            with self._path.open("rb") as file:
                raw = file.read(MAX_SHARES_BYTES + 1)
            if len(raw) > MAX_SHARES_BYTES:
                raise ValueError(f"larger than {MAX_SHARES_BYTES} bytes")
            share = parse_shares(raw, self._pod)
        except FileNotFoundError:
            return False
        except (OSError, ValueError) as error:
            problem = f"{type(error).__name__}: {error}"[:200]
            if problem != self.problem:
                log.warning("shares file unusable", problem=problem)
            self.problem = problem
            return False
        self.problem = None
        if share == self.share:
            return False
        self.share = share
        log.info(
            "share loaded",
            revision=share.revision,
            upstream_sockets=share.upstream_sockets,
            chars_per_minute_per_token=share.chars_per_minute_per_token,
            listed=share.listed,
        )
        return True

    async def refresh(self) -> bool:
        """Re-read the file in a thread, then tell the listeners (on the loop) when the share changed."""
        changed = await asyncio.to_thread(self.load)
        if changed and self.share is not None:
            for listener in self._listeners:
                listener(self.share)
        return changed

    async def poll(self, interval_s: float) -> None:
        """Refresh every `interval_s` seconds, forever."""
        while True:
            await self.refresh()
            await asyncio.sleep(interval_s)
