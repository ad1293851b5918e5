"""The upstream pool on fake sockets: spares, reuse, budgets, rotation, recycling, Clear on release."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import structlog

from tests.dataplane.fakes import DEFAULT_KEY, FakeConnector, ManualClock, PoolHarness, running_pool
from ttsfleet import logs
from ttsfleet.dataplane import errors
from ttsfleet.dataplane.sockets import PooledSocket, PoolKey, ReleaseOutcome, SocketState
from ttsfleet.protocol import Encoding

KEY = DEFAULT_KEY
OTHER = PoolKey("aura-2-thalia-en", Encoding.MULAW, 8000, 1.0)


async def settled(condition: Callable[[], bool], turns: int = 2000) -> None:
    """Let the loop run until `condition` holds (fake I/O completes within a few turns)."""
    for _ in range(turns):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


@pytest.fixture
async def harness() -> AsyncIterator[PoolHarness]:
    async with running_pool(ManualClock()) as running:
        yield running


async def test_the_default_key_is_kept_warm(harness: PoolHarness) -> None:
    await settled(lambda: harness.pool.open_sockets == 1)
    assert harness.pool.leased_sockets == 0
    assert harness.connector.opened[0][1] == "key-one"


async def test_a_lease_reuses_the_warm_socket_and_the_pool_rewarms(harness: PoolHarness) -> None:
    await settled(lambda: harness.pool.open_sockets == 1)
    leased = await harness.pool.lease(KEY, chars=10)
    assert len(harness.connector.opened) == 1
    await settled(lambda: harness.pool.open_sockets == 2)  # the warm minimum is idle sockets
    harness.pool.release(leased, ReleaseOutcome.CLEAN)
    assert leased.state is SocketState.IDLE
    again = await harness.pool.lease(KEY, chars=10)
    assert len(harness.connector.opened) == 2
    assert again.state is SocketState.LEASED


async def test_a_socket_out_of_character_budget_is_passed_over_until_the_window_moves(
    harness: PoolHarness,
) -> None:
    await settled(lambda: harness.pool.open_sockets == 1)
    first = await harness.pool.lease(KEY, chars=2000)
    await settled(lambda: harness.pool.open_sockets == 2)
    harness.pool.release(first, ReleaseOutcome.CLEAN)
    second = await harness.pool.lease(KEY, chars=1000)
    assert second is not first  # first has only 400 characters left in its minute
    harness.pool.release(second, ReleaseOutcome.CLEAN)
    harness.clock.advance(60)
    third = await harness.pool.lease(KEY, chars=1000)
    assert third.chars.sum(harness.clock.now) == 1000


async def test_keys_get_their_own_sockets(harness: PoolHarness) -> None:
    await settled(lambda: harness.pool.open_sockets == 1)
    other = await harness.pool.lease(OTHER, chars=5)
    assert other.key == OTHER
    assert harness.connector.opened[-1][0].encoding is Encoding.MULAW


async def test_a_new_key_retires_sockets_after_their_utterance(harness: PoolHarness) -> None:
    await settled(lambda: harness.pool.open_sockets == 1)
    leased = await harness.pool.lease(KEY, chars=5)
    await settled(lambda: harness.pool.open_sockets == 2)
    harness.credentials.rotate("key-two")
    harness.pool.credentials_changed()
    assert leased.state is SocketState.RETIRING
    await settled(lambda: any(key == "key-two" for _, key, _ in harness.connector.opened))
    harness.pool.release(leased, ReleaseOutcome.CLEAN)
    assert leased.state is SocketState.CLOSED
    await settled(lambda: all(not s.open for _, key, s in harness.connector.opened if key == "key-one"))
    fresh = await harness.pool.lease(KEY, chars=5)
    assert fresh.generation == harness.credentials.generation


async def test_sockets_are_recycled_before_the_age_limit(harness: PoolHarness) -> None:
    await settled(lambda: harness.pool.open_sockets == 1)
    first_socket = harness.connector.opened[0][2]
    harness.clock.advance(3300 - 60)  # no longer enough age left for a whole utterance
    harness.pool.prepare(KEY)
    await settled(lambda: not first_socket.open and harness.pool.open_sockets == 1)
    assert len(harness.connector.opened) == 2


async def test_idle_sockets_are_pinged(harness: PoolHarness) -> None:
    await settled(lambda: harness.pool.open_sockets == 1)
    harness.clock.advance(20)
    harness.pool.prepare(KEY)
    await settled(lambda: harness.connector.opened[0][2].pings == 1)


async def test_a_dirty_release_clears_the_socket_before_reuse(harness: PoolHarness) -> None:
    await settled(lambda: harness.pool.open_sockets == 1)
    leased = await harness.pool.lease(KEY, chars=5)
    harness.pool.release(leased, ReleaseOutcome.DIRTY)
    assert leased.state is SocketState.CLEARING
    await settled(lambda: leased.state is SocketState.IDLE)
    assert harness.connector.opened[0][2].sent[-1] == '{"type":"Clear"}'


async def test_a_broken_release_closes_the_socket(harness: PoolHarness) -> None:
    await settled(lambda: harness.pool.open_sockets == 1)
    leased = await harness.pool.lease(KEY, chars=5)
    harness.pool.release(leased, ReleaseOutcome.BROKEN)
    assert leased.state is SocketState.CLOSED
    await settled(lambda: not harness.connector.opened[0][2].open)


async def test_busy_and_idle_sockets_are_kept_per_key_through_every_way_out_of_a_lease(
    harness: PoolHarness,
) -> None:
    def idle(key: PoolKey) -> set[PooledSocket]:
        return set(harness.pool.idle_sockets(key))

    await settled(lambda: harness.pool.open_sockets == 1)
    first, second = await harness.pool.lease(KEY, chars=5), await harness.pool.lease(KEY, chars=5)
    other = await harness.pool.lease(OTHER, chars=5)
    assert (harness.pool.busy_sockets(KEY), harness.pool.busy_sockets(OTHER)) == (2, 1)
    assert not idle(KEY) & {first, second} and other not in idle(OTHER)
    harness.pool.release(first, ReleaseOutcome.DIRTY)
    assert harness.pool.busy_sockets(KEY) == 2  # still clearing: not free for the next utterance
    assert first not in idle(KEY)
    await settled(lambda: first.state is SocketState.IDLE)
    assert harness.pool.busy_sockets(KEY) == 1 and first in idle(KEY)
    harness.credentials.rotate("key-two")
    harness.pool.credentials_changed()
    assert second.state is SocketState.RETIRING and harness.pool.busy_sockets(KEY) == 1
    assert first not in idle(KEY)  # idle with the old key: closed at once
    harness.pool.release(second, ReleaseOutcome.CLEAN)
    harness.pool.release(other, ReleaseOutcome.BROKEN)
    assert (harness.pool.busy_sockets(KEY), harness.pool.busy_sockets(OTHER)) == (0, 0)
    assert second not in idle(KEY) and not idle(OTHER)
    generation = harness.credentials.generation
    everywhere = {s for key in (KEY, OTHER) for s in harness.pool.idle_sockets(key)}
    assert all(s.state is SocketState.IDLE and s.generation == generation for s in everywhere)


async def test_without_a_key_leases_fail_as_auth_errors(harness: PoolHarness) -> None:
    harness.credentials.key = None
    with pytest.raises(errors.UpstreamAuthFailed):
        await harness.pool.lease(OTHER, chars=5)


async def test_failed_connects_open_the_breaker_and_then_leases_fail_fast(harness: PoolHarness) -> None:
    await settled(lambda: harness.pool.open_sockets == 1)
    harness.connector.fail_with = errors.UpstreamUnavailable("down")
    for _ in range(2):
        with pytest.raises(errors.UpstreamUnavailable):
            await harness.pool.lease(OTHER, chars=5)
    with pytest.raises(errors.CircuitOpen):
        await harness.pool.lease(OTHER, chars=5)


async def test_refused_keys_are_reported(harness: PoolHarness) -> None:
    harness.connector.fail_with = errors.UpstreamAuthFailed("401")
    with pytest.raises(errors.UpstreamAuthFailed):
        await harness.pool.lease(OTHER, chars=5)
    assert harness.credentials.reports[-1] is False


async def test_a_full_pool_makes_waiters_fail_after_the_connect_timeout(harness: PoolHarness) -> None:
    leases = [await harness.pool.lease(OTHER, chars=1) for _ in range(4)]
    assert harness.pool.open_sockets == 4
    with pytest.raises(errors.PoolExhausted):
        await harness.pool.lease(OTHER, chars=1)
    harness.pool.release(leases[0], ReleaseOutcome.CLEAN)
    assert (await harness.pool.lease(OTHER, chars=1)) is leases[0]


async def test_the_pool_knows_a_models_details_once_a_socket_of_it_opened(harness: PoolHarness) -> None:
    assert harness.pool.known_model("aura-2-luna-en") is None
    await settled(lambda: harness.pool.open_sockets == 1)
    known = harness.pool.known_model(KEY.model)
    assert known is not None and (known.model_version, known.model_uuid) == ("v1", "uuid-1")


async def test_a_key_unused_for_its_ttl_loses_its_idle_sockets_but_the_default_key_stays(
    harness: PoolHarness,
) -> None:
    await settled(lambda: harness.pool.open_sockets == 1)
    harness.pool.release(await harness.pool.lease(OTHER, chars=1), ReleaseOutcome.CLEAN)
    await settled(lambda: harness.pool.open_sockets == 2)
    other_socket = next(s for options, _, s in harness.connector.opened if options.encoding is Encoding.MULAW)
    harness.clock.advance(599)
    harness.pool.prepare(KEY)
    await settled(lambda: harness.pool.connecting == 0)
    assert other_socket.open
    harness.clock.advance(2)
    harness.pool.prepare(KEY)
    await settled(lambda: not other_socket.open)
    assert harness.pool.open_sockets == 1
    assert harness.connector.opened[0][2].open  # the default key's warm socket


def idle(harness: PoolHarness) -> int:
    return sum(s.state is SocketState.IDLE for s in harness.pool._sockets.values())


async def test_spares_follow_the_recent_peak_of_leased_sockets_and_open_in_the_background() -> None:
    async with running_pool(ManualClock(), max_sockets=16, spare_ratio=0.5) as harness:
        await settled(lambda: harness.pool.open_sockets == 1)
        leases = [await harness.pool.lease(KEY, chars=1) for _ in range(6)]
        await settled(lambda: idle(harness) == 3)  # half the peak of 6
        await settled(lambda: harness.pool.connecting == 0)
        assert harness.pool.open_sockets == 6 + 3
        for leased in leases:
            harness.pool.release(leased, ReleaseOutcome.CLEAN)
        opened = len(harness.connector.opened)
        burst = [await harness.pool.lease(KEY, chars=1) for _ in range(6)]
        assert len(harness.connector.opened) == opened  # the burst found its sockets open
        await settled(lambda: idle(harness) == 3)
        for leased in burst:
            harness.pool.release(leased, ReleaseOutcome.CLEAN)


async def test_spares_follow_the_load_down_once_the_peak_left_the_window() -> None:
    async with running_pool(ManualClock(), max_sockets=32, spare_ratio=1.0) as harness:
        leases = [await harness.pool.lease(KEY, chars=1) for _ in range(8)]
        for leased in leases:
            harness.pool.release(leased, ReleaseOutcome.CLEAN)
        harness.clock.advance(61)  # the peak of 8 is forgotten
        busy = [await harness.pool.lease(KEY, chars=1) for _ in range(6)]
        await settled(lambda: idle(harness) == 6)  # a spare per leased socket, for the peak of 6
        await settled(lambda: harness.pool.connecting == 0)
        for _ in range(50):
            await asyncio.sleep(0)
        assert harness.pool.open_sockets == 6 + 6
        for leased in busy:
            harness.pool.release(leased, ReleaseOutcome.CLEAN)


async def test_the_pool_is_warmed_once_the_default_keys_minimum_is_open() -> None:
    async with running_pool(ManualClock()) as harness:
        assert not harness.pool.warmed
        await settled(lambda: harness.pool.warmed)
        assert harness.pool.open_sockets == 1


async def test_an_unreachable_upstream_counts_as_warmed() -> None:
    down = FakeConnector(fail_with=errors.UpstreamUnavailable("down"))
    async with running_pool(ManualClock(), down) as harness:
        await settled(lambda: harness.pool.warmed)
        assert harness.pool.open_sockets == 0


async def test_a_socket_opened_for_a_waiting_utterance_is_counted_as_on_demand() -> None:
    async with running_pool(ManualClock(), max_sockets=4) as harness:
        await settled(lambda: harness.pool.open_sockets == 1)
        first = await harness.pool.lease(KEY, chars=1)  # the warm socket
        assert (harness.pool.opened_total, harness.pool.opened_on_demand_total) == (1, 0)
        second = await harness.pool.lease(KEY, chars=1)  # nothing idle, nothing connecting yet
        assert harness.pool.opened_on_demand_total == 1
        await settled(lambda: harness.pool.connecting == 0)
        assert harness.pool.opened_total > harness.pool.opened_on_demand_total  # spares are not counted
        for leased in (first, second):
            harness.pool.release(leased, ReleaseOutcome.CLEAN)


class GatedConnector(FakeConnector):
    """Connects only once `gate` opens: a handshake in flight for as long as the test says."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def connect(self, options: Any, key: str) -> Any:
        await self.gate.wait()
        return await super().connect(options, key)


async def test_a_lease_that_waits_for_a_spare_still_connecting_is_counted_as_a_wait() -> None:
    connector = GatedConnector()
    connector.gate.set()
    async with running_pool(ManualClock(), connector, max_sockets=4) as harness:
        await settled(lambda: harness.pool.open_sockets == 1)
        connector.gate.clear()  # from now on handshakes hang until the gate opens
        first = await harness.pool.lease(KEY, chars=1)  # the warm socket; the pool starts a spare
        assert harness.pool.lease_waits_total == 0
        await settled(lambda: harness.pool.connecting >= 1)
        second = asyncio.create_task(harness.pool.lease(KEY, chars=1))
        await settled(lambda: harness.pool.lease_waits_total == 1)
        assert not second.done()  # it waits for the spare's handshake, not one of its own
        connector.gate.set()
        leased = await second
        assert harness.pool.opened_on_demand_total == 0  # so the on-demand count alone missed this wait
        for pooled in (first, leased):
            harness.pool.release(pooled, ReleaseOutcome.CLEAN)


async def test_spares_opened_for_an_utterance_log_under_no_utterance_of_their_own(
    harness: PoolHarness,
) -> None:
    """A maintenance pass runs in the pool's context, not in that of the utterance whose lease asked for it:
    the spare it opens would otherwise log its handshake under that utterance's id."""
    contexts: list[dict[str, Any]] = []
    real_make = harness.connector.make

    def make() -> Any:
        contexts.append(structlog.contextvars.get_contextvars())
        return real_make()

    harness.connector.make = make
    await settled(lambda: harness.pool.open_sockets == 1)

    async def utterance() -> PooledSocket:
        with logs.bound(utterance_id="an-utterance"):
            return await harness.pool.lease(KEY, chars=10)

    leased = await asyncio.create_task(utterance())
    await settled(lambda: harness.pool.open_sockets == 2)  # the spare that replaced the one leased
    harness.pool.release(leased, ReleaseOutcome.CLEAN)
    assert contexts and all("utterance_id" not in bound for bound in contexts)


async def test_a_failing_maintenance_pass_is_logged_and_the_next_one_runs(harness: PoolHarness) -> None:
    await settled(lambda: harness.pool.open_sockets == 1)
    real_maintain, failures = harness.pool._maintain, []

    def failing_once() -> None:
        if not failures:
            failures.append(True)
            raise RuntimeError("maintenance broke")
        real_maintain()

    harness.pool._maintain = failing_once  # type: ignore[method-assign]
    leased = await harness.pool.lease(KEY, chars=10)  # asks for a pass, which fails
    await settled(lambda: bool(failures))
    harness.pool.release(leased, ReleaseOutcome.CLEAN)
    second = await harness.pool.lease(KEY, chars=10)  # asks again: this pass opens the spare
    await settled(lambda: harness.pool.open_sockets == 2)
    harness.pool.release(second, ReleaseOutcome.CLEAN)
