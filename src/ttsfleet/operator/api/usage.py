"""status.usage: characters billed and their estimated cost over the last hour and day, per backend.

Written by the operator apart from the reconcile's status write (`USAGE_FIELD`); the counters and
buckets it is computed from are kept here too, so an operator restart neither loses nor counts twice.
"""

from __future__ import annotations

from pydantic import Field

from ttsfleet.operator.api.base import ApiModel
from ttsfleet.operator.api.times import Timestamp

# Written by the usage step after each probe, apart from the reconcile's status write.
USAGE_FIELD = "usage"


class UsageWindow(ApiModel):
    """Characters billed within a window and what they cost at the spec's price."""

    characters: int = Field(0, ge=0, description="Characters synthesized upstream (cache hits excluded).")
    # Named for its unit: a float is fine for an estimate, never for an invoice.
    estimated_cost_usd: float = Field(
        0.0, ge=0, description="characters / 1000 x deepgram.pricePerThousandCharacters, in US dollars."
    )


class PodCounter(ApiModel):
    """The last billed-characters counter read from one pod's process (`boot` names the process)."""

    pod: str = Field(max_length=253, description="Pod name.")
    boot: str = Field(max_length=64, description="Random per process start: a new one means a restart.")
    characters: int = Field(ge=0, description="The counter as last read.")
    seen: Timestamp = Field(description="When it was last read.")


class UsageBucket(ApiModel):
    """Characters counted within one interval (5 minutes within the last hour, 60 before)."""

    start: Timestamp = Field(description="Start of the interval.")
    minutes: int = Field(ge=1, le=60, description="Length of the interval.")
    characters: int = Field(ge=0, description="Characters counted in it.")


class UsageStatus(ApiModel):
    """Billed characters and estimated cost, from the pods' monotonic per-process counters."""

    last_hour: UsageWindow = Field(
        default_factory=UsageWindow, description="Within the last hour (5-minute steps)."
    )
    last_day: UsageWindow = Field(default_factory=UsageWindow, description="Within the last 24 hours.")
    price_per_thousand_characters: float = Field(
        default=0.0, ge=0, description="The price the estimate used."
    )
    since: Timestamp | None = Field(default=None, description="When counting began; shorter windows before.")
    counters: list[PodCounter] = Field(default_factory=list, description="Per-pod counters last read.")
    buckets: list[UsageBucket] = Field(
        default_factory=list, description="Counted characters over the last day."
    )
