"""Reconnection delays: exponential backoff with full jitter, at least a server's Retry-After. Pure."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before attempt `n` (0 = the first retry) is uniform in [0, min(cap, base·2ⁿ)]."""

    base_s: float = 0.1
    cap_s: float = 3.0
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def delay_s(self, attempt: int, retry_after_s: float | None = None) -> float:
        """Seconds to wait; a Retry-After wins over the jitter but is held to the cap."""
        ceiling = min(self.cap_s, self.base_s * (2 ** max(0, attempt)))
        jittered = self.rng.uniform(0.0, ceiling)
        if retry_after_s is not None and retry_after_s > 0:
            return min(self.cap_s, max(retry_after_s, jittered))
        return jittered
