"""status.usage from the pods' billed-characters counters (pure: the reports and the time are arguments).

Each pod's process counts the characters it synthesized upstream since it started and names the start
(`usage.boot` in /statusz). The growth of a counter since it was last read is added to the bucket of
now; a counter under a new boot is a restarted process, so all of it is new. A pod first seen by an
existing ledger counts in full (its characters were never counted); a brand-new ledger takes the
counters it finds as its starting point, so history from before counting began is not put into the
last hour. Characters a process counted after its last read and before it died are lost (at most one
probe interval's worth). Buckets are 5 minutes wide, merged into hours once older than an hour, and
dropped after a day, so the windows move in 5-minute steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from ttsfleet.operator import api, fleet

BUCKET = timedelta(minutes=5)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
# A pod not seen for this long is gone; should its process answer again, all of its counter is new.
FORGET_AFTER = DAY


def _floor(moment: datetime, width: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + ((moment - epoch) // width) * width


def count_new_characters(
    counters: Sequence[api.PodCounter], reports: Sequence[fleet.PodReport], *, fresh: bool, now: datetime
) -> tuple[int, list[api.PodCounter]]:
    """Characters counted by the pods since their counters were last read, and the counters to keep."""
    known = {counter.pod: counter for counter in counters}
    new_characters = 0
    for report in reports:
        if not report.pod or not report.usage.boot:
            continue  # an older gateway without a counter
        before = known.get(report.pod)
        characters = report.usage.billed_characters
        same_process = before is not None and before.boot == report.usage.boot
        if before is not None and same_process and characters >= before.characters:
            new_characters += characters - before.characters
            if characters == before.characters and now - before.seen < HOUR:
                continue  # unchanged: an idle fleet writes no status (seen is refreshed hourly)
        elif not fresh:
            new_characters += characters  # a restarted process, or a pod never read before
        known[report.pod] = api.PodCounter(
            pod=report.pod, boot=report.usage.boot, characters=characters, seen=now
        )
    kept = [counter for counter in known.values() if now - counter.seen <= FORGET_AFTER]
    return new_characters, sorted(kept, key=lambda counter: counter.pod)


def add_to_buckets(
    buckets: Sequence[api.UsageBucket], characters: int, now: datetime
) -> list[api.UsageBucket]:
    """`characters` added at `now`; buckets older than an hour merged into hours, older than a day dropped."""
    totals: dict[tuple[datetime, int], int] = {}
    entries = [*buckets]
    if characters:
        entries.append(api.UsageBucket(start=_floor(now, BUCKET), minutes=5, characters=characters))
    for bucket in entries:
        if bucket.start <= now - DAY:
            continue
        if bucket.start < _floor(now, BUCKET) - HOUR:
            key = (_floor(bucket.start, HOUR), 60)
        else:
            key = (bucket.start, bucket.minutes)
        totals[key] = totals.get(key, 0) + bucket.characters
    return [
        api.UsageBucket(start=start, minutes=minutes, characters=total)
        for (start, minutes), total in sorted(totals.items())
    ]


def window(buckets: Sequence[api.UsageBucket], since: datetime, price: float) -> api.UsageWindow:
    """Characters in buckets that started at or after `since`, and their cost at `price` per 1,000."""
    characters = sum(bucket.characters for bucket in buckets if bucket.start >= since)
    return api.UsageWindow(characters=characters, estimated_cost_usd=round(characters / 1000 * price, 6))


def next_usage(
    previous: api.UsageStatus | None,
    statusz: Sequence[object],
    price_per_thousand_characters: float,
    now: datetime,
) -> api.UsageStatus:
    """The usage to write after a probe at `now` that read `statusz` (parsed JSON of each pod)."""
    reports = fleet.readable_reports([report for report in statusz if isinstance(report, dict)])
    fresh = previous is None
    new_characters, counters = count_new_characters(
        previous.counters if previous else (), reports, fresh=fresh, now=now
    )
    buckets = add_to_buckets(previous.buckets if previous else (), new_characters, now)
    hour_start = _floor(now, BUCKET) - HOUR + BUCKET  # the twelve 5-minute buckets up to now
    return api.UsageStatus(
        last_hour=window(buckets, hour_start, price_per_thousand_characters),
        last_day=window(buckets, now - DAY, price_per_thousand_characters),
        price_per_thousand_characters=price_per_thousand_characters,
        since=previous.since if previous and previous.since else now,
        counters=counters,
        buckets=buckets,
    )
