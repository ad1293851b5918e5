"""The pool within this pod's share of the fleet's upstream socket budget (fake sockets)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.dataplane.fakes import DEFAULT_KEY, ManualClock, PoolHarness, running_pool
from tests.dataplane.test_pool import settled
from ttsfleet.dataplane import errors
from ttsfleet.dataplane.sockets import ReleaseOutcome, SocketState

KEY = DEFAULT_KEY


@pytest.fixture
async def harness() -> AsyncIterator[PoolHarness]:
    async with running_pool(ManualClock(), max_sockets=8, spare_ratio=1.0) as running:
        yield running


async def test_a_share_of_zero_closes_the_warm_socket_and_opens_none(harness: PoolHarness) -> None:
    await settled(lambda: harness.pool.open_sockets == 1)
    harness.pool.set_socket_share(0)
    assert harness.pool.open_sockets == 0
    with pytest.raises(errors.PoolExhausted):
        await harness.pool.lease(KEY, chars=5)
    assert len(harness.connector.opened) == 1


async def test_spares_never_take_the_pool_over_its_share(harness: PoolHarness) -> None:
    harness.pool.set_socket_share(2)
    await settled(lambda: harness.pool.open_sockets == 1)
    leased = [await harness.pool.lease(KEY, chars=5), await harness.pool.lease(KEY, chars=5)]
    for _ in range(200):  # maintenance would open spares for the two busy sockets without the share
        await asyncio.sleep(0)
        assert harness.pool.open_sockets + harness.pool.connecting <= 2
    for pooled in leased:
        harness.pool.release(pooled, ReleaseOutcome.CLEAN)


async def test_a_lowered_share_closes_idle_sockets_at_once_and_leased_ones_when_released(
    harness: PoolHarness,
) -> None:
    harness.pool.set_socket_share(3)
    await settled(lambda: harness.pool.open_sockets == 1)
    leased = [await harness.pool.lease(KEY, chars=5) for _ in range(2)]
    await settled(lambda: harness.pool.open_sockets == 3)  # one spare beside the two leased
    harness.pool.set_socket_share(1)
    assert harness.pool.open_sockets == 2  # the idle spare went at once
    harness.pool.release(leased[0], ReleaseOutcome.CLEAN)
    assert leased[0].state is SocketState.CLOSED and harness.pool.open_sockets == 1
    harness.pool.release(leased[1], ReleaseOutcome.CLEAN)
    assert leased[1].state is SocketState.IDLE  # within the share again: kept for the next utterance
    assert not harness.pool.is_over_limit


async def test_a_raised_share_lets_the_pool_open_again(harness: PoolHarness) -> None:
    harness.pool.set_socket_share(0)
    harness.pool.set_socket_share(2)
    await settled(lambda: harness.pool.open_sockets == 1)
    assert (await harness.pool.lease(KEY, chars=5)).state is SocketState.LEASED
