"""The pool-maintenance benchmark times the real sizing and choice over idle sockets with spent budgets."""

from __future__ import annotations

from benchmarks.pool_maintenance import LIMITS, NOW, idle_sockets, measure
from ttsfleet.dataplane.sockets import idle_budget


def test_the_sockets_timed_have_spent_different_parts_of_their_budgets() -> None:
    budget = idle_budget(idle_sockets(30), NOW, LIMITS)
    # 0 to 14 Flushes spent each, twice over: all are spares, and their Flushes left differ.
    assert budget.spares == 30
    assert budget.flushes_left == 30 * LIMITS.max_flushes_per_window - 2 * sum(range(15))


def test_a_measure_gives_each_pass_its_time() -> None:
    cost = measure(20, passes=5)
    assert cost.sockets == 20
    assert cost.sizing_us > 0 and cost.pick_us > 0
    assert cost.sizing_us_per_socket == cost.sizing_us / 20
