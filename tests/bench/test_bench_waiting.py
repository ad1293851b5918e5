"""The benchmarks' one poll: a truthy result ends it, tolerated errors mean not yet, the deadline names it."""

from __future__ import annotations

import pytest

from benchmarks import waiting


async def test_until_returns_the_result_and_tolerates_errors_meanwhile() -> None:
    answers: list[object] = [OSError("refused"), None, {"replicas": 3}]

    async def check() -> object:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    result = await waiting.until(check, 5.0, "replicas", interval_s=0.001, tolerated=(OSError,))
    assert result == {"replicas": 3}


async def test_until_names_what_it_awaited_and_times_the_wait() -> None:
    async def never() -> bool:
        return False

    with pytest.raises(TimeoutError, match="waiting for the scale-up"):
        await waiting.until(never, 0.01, "the scale-up", interval_s=0.001)

    async def at_once() -> bool:
        return True

    assert 0 <= await waiting.seconds(waiting.until(at_once, 1.0, "nothing")) < 1.0
