"""Which kmock reaction answers a request, in time independent of how many requests came before.

kmock decides whether a reaction "sees" a request by iterating the reaction's view of the request
history and looking for that request by identity: exact for every view kmock has (slices, unions,
exclusions), but each request then costs a scan of the history. The embedded API keeps thousands of
requests for tests and serves thousands more to an operator at scale, so that scan was nearly all of
its CPU. Most views are chains of filters and priorities over the root; for those, whether the request
passes is decided by the criteria along the chain alone. Other views keep kmock's exact check.

This reads kmock 0.8's view classes (pinned in pyproject.toml); `tests/devcluster` covers reactions
that are filters, slices and priorities.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import kmock
from kmock._internal import dsl


def sees(view: dsl.View, request: kmock.Request, root: dsl.Root) -> bool:
    """Whether `request` reaches `view`; `root` already holds it (it was recorded before matching)."""
    current = view
    while True:
        if current is root:
            return True
        if type(current) is dsl.Filter:
            if not current.criteria(request):
                return False
            current = current._source
        elif type(current) is dsl.Priority:
            current = current._source
        else:  # slices, groups, exclusions, streams: only the history decides
            return request in current


def by_priority(reactions: Sequence[dsl.Reaction]) -> list[dsl.Reaction]:
    """Reactions in the order kmock tries them: highest priority first, ties in registration order.

    Priorities are tuples of different lengths (`fallback ** N` nests a sub-priority); padding them
    with zeros makes (100, 0) outrank (100, -1) as kmock intends.
    """
    priorities = [reaction.priorities for reaction in reactions]
    width = max((len(priority) for priority in priorities), default=0)
    padded = [tuple(priority) + (0.0,) * (width - len(priority)) for priority in priorities]
    order = sorted(range(len(reactions)), key=lambda index: tuple(-p for p in padded[index]))
    return [reactions[index] for index in order]


def candidates(
    reactions: Iterable[dsl.Reaction], request: kmock.Request, root: dsl.Root
) -> Iterable[dsl.Reaction]:
    """The enabled reactions that see `request`, best first, checked lazily (the first usually answers)."""
    for reaction in by_priority(list(reactions)):
        if not reaction._disabled.is_set() and sees(reaction._source, request, root):
            yield reaction
