"""The pacing of WebSocket upgrades (`upgrades.UpgradePacer`): turns, order, refusals."""

from __future__ import annotations

import asyncio

from ttsfleet.dataplane.upgrades import Turn, UpgradePacer


class Waiter:
    """A connection waiting for its turn; records when its turn came."""

    def __init__(self, name: str, started: list[str]) -> None:
        self.name = name
        self._started = started

    def start(self) -> None:
        self._started.append(self.name)


async def test_upgrades_beyond_the_limit_wait_and_start_in_arrival_order() -> None:
    pacer = UpgradePacer(limit=2, max_waiting=10)
    started: list[str] = []
    waiters = [Waiter(name, started) for name in "abcde"]
    turns = [pacer.ask(waiter, waiter.start) for waiter in waiters]
    assert turns == [Turn.NOW, Turn.NOW, Turn.QUEUED, Turn.QUEUED, Turn.QUEUED]
    assert (pacer.under_way, pacer.waiting, pacer.queued) == (2, 3, 3)

    pacer.finished()
    pacer.finished()
    assert started == []  # a turn starts in a later pass of the loop, not inside the one that ended
    await asyncio.sleep(0)
    assert started == ["c", "d"]
    assert (pacer.under_way, pacer.waiting) == (2, 1)

    pacer.finished()
    await asyncio.sleep(0)
    assert started == ["c", "d", "e"]
    pacer.finished()
    pacer.finished()
    assert (pacer.under_way, pacer.waiting) == (0, 0)
    assert pacer.ask(Waiter("f", started), lambda: None) is Turn.NOW


async def test_a_newcomer_never_overtakes_those_waiting() -> None:
    pacer = UpgradePacer(limit=1, max_waiting=10)
    started: list[str] = []
    first, second = Waiter("first", started), Waiter("second", started)
    assert pacer.ask(first, first.start) is Turn.NOW
    assert pacer.ask(second, second.start) is Turn.QUEUED
    pacer.finished()  # `second` is granted the turn, though it starts only in the next pass
    late = Waiter("late", started)
    assert pacer.ask(late, late.start) is Turn.QUEUED
    await asyncio.sleep(0)
    assert started == ["second"]


async def test_beyond_the_waiting_room_an_upgrade_is_refused() -> None:
    pacer = UpgradePacer(limit=1, max_waiting=1)
    assert pacer.ask(object(), lambda: None) is Turn.NOW
    assert pacer.ask(object(), lambda: None) is Turn.QUEUED
    assert pacer.ask(object(), lambda: None) is Turn.REFUSED
    assert (pacer.queued, pacer.waiting) == (1, 1)


async def test_a_connection_that_leaves_while_waiting_gives_up_its_place() -> None:
    pacer = UpgradePacer(limit=1, max_waiting=10)
    started: list[str] = []
    gone, next_in_line = Waiter("gone", started), Waiter("next", started)
    pacer.ask(object(), lambda: None)
    pacer.ask(gone, gone.start)
    pacer.ask(next_in_line, next_in_line.start)
    pacer.withdraw(gone)
    pacer.withdraw(gone)  # connection_lost may come after the place was given up: no harm
    pacer.finished()
    await asyncio.sleep(0)
    assert started == ["next"]
    assert (pacer.under_way, pacer.waiting) == (1, 0)
