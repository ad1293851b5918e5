"""The Service balancer behaves as kube-proxy: a random endpoint per connection, and removals that lag."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter

from ttsfleet.devcluster.balancer import DEFAULT_PROPAGATION_DELAY_S, Balancer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_each_connection_goes_to_a_random_endpoint_not_in_turn() -> None:
    lb = Balancer("svc", lambda: [8001, 8002, 8003])
    picks = [lb.pick() for _ in range(300)]
    counts = Counter(picks)
    assert set(counts) == {8001, 8002, 8003}
    assert all(count > 50 for count in counts.values()), counts
    # Round-robin would repeat the same three ports in the same order; random picks repeat a port.
    assert any(a == b for a, b in itertools.pairwise(picks)), "picks look round-robin"


def test_a_departed_endpoint_keeps_getting_connections_for_the_propagation_delay() -> None:
    endpoints = [8001, 8002]
    clock = Clock()
    lb = Balancer("svc", lambda: list(endpoints), propagation_delay_s=1.5, clock=clock)
    assert lb.refresh() == [8001, 8002]
    endpoints.remove(8002)  # the pod starts terminating
    clock.now += 0.1
    assert lb.refresh() == [8001, 8002], "kube-proxy has not heard of it yet"
    clock.now += 1.3
    assert lb.refresh() == [8001, 8002]
    clock.now += 0.2
    assert lb.refresh() == [8001]
    # A pod that comes back is an endpoint again at once, and its departure is timed afresh.
    endpoints.append(8002)
    assert lb.refresh() == [8001, 8002]


def test_the_default_delay_is_about_a_second() -> None:
    assert 0.5 <= DEFAULT_PROPAGATION_DELAY_S <= 2.0


async def test_a_connection_during_the_delay_reaches_the_departed_pod() -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"old pod")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    endpoints = [port]
    lb = Balancer("svc", lambda: list(endpoints), propagation_delay_s=60)
    await lb.start()
    try:
        lb.refresh()
        endpoints.clear()
        lb.refresh()
        reader, writer = await asyncio.open_connection("127.0.0.1", lb.port)
        async with asyncio.timeout(5):
            assert await reader.read() == b"old pod"
        writer.close()
    finally:
        await lb.close()
        server.close()
        await server.wait_closed()
