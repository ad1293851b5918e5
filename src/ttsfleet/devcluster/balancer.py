"""A Service's local address: a TCP balancer on loopback spreading connections over its ready pods.

It behaves as kube-proxy does, so rollouts are tested against what a cluster does rather than an
ideal: each connection goes to an endpoint picked at random (iptables mode's probability rules), and a
pod that stops being a ready, non-terminating endpoint keeps receiving new connections for
`propagation_delay_s` (the time an EndpointSlice change takes to reach every node's kube-proxy).
With no endpoint to take it, a connection is closed at once, as a Service without endpoints refuses.
Bytes are relayed as they are, so WebSocket and HTTP both pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Sequence

logger = logging.getLogger(__name__)

BUFFER_BYTES = 64 * 1024
_RANDOM = random.SystemRandom()
# kube-proxy applies an EndpointSlice change about a second after it happens on a small, quiet cluster.
DEFAULT_PROPAGATION_DELAY_S = 1.0
Backends = Callable[[], Sequence[int]]


class Balancer:
    """Listens on 127.0.0.1 and relays each connection to a random endpoint's port."""

    def __init__(
        self,
        name: str,
        backends: Backends,
        port: int = 0,
        *,
        propagation_delay_s: float = DEFAULT_PROPAGATION_DELAY_S,
        choose: Callable[[Sequence[int]], int] = _RANDOM.choice,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._backends = backends
        self._requested_port = port
        self._propagation_delay_s = propagation_delay_s
        self._choose = choose
        self._clock = clock
        self._server: asyncio.Server | None = None
        self._relays: set[asyncio.Task[None]] = set()
        self._current: set[int] = set()
        # Ports that stopped being endpoints, with when: still routed to until the delay has passed.
        self._leaving: dict[int, float] = {}

    @property
    def port(self) -> int:
        """The port it listens on (after `start`)."""
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        """`ws://127.0.0.1:PORT`: the base URL clients speak to."""
        return f"ws://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Start listening."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self._requested_port)

    async def close(self) -> None:
        """Stop listening and cut open relays."""
        if self._server is not None:
            self._server.close()
        for task in list(self._relays):
            task.cancel()
        if self._relays:
            await asyncio.gather(*self._relays, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def refresh(self) -> list[int]:
        """The ports connections may go to now: the endpoints, and those that left less than the delay ago.

        The runner calls it after every change of pods, so a departure is timed from when it happened,
        not from the next connection.
        """
        now = self._clock()
        endpoints = set(self._backends())
        for port in self._current - endpoints:
            self._leaving.setdefault(port, now)
        for port in endpoints:
            self._leaving.pop(port, None)
        for port, since in list(self._leaving.items()):
            if now - since >= self._propagation_delay_s:
                del self._leaving[port]
        self._current = endpoints
        return sorted(endpoints | set(self._leaving))

    def pick(self) -> int | None:
        """A port picked at random among those routed to, or None when there is none."""
        ports = self.refresh()
        return self._choose(ports) if ports else None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._relays.add(task)
        try:
            await self._relay(reader, writer)
        finally:
            self._relays.discard(task)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        port = self.pick()
        if port is None:
            logger.debug("service %s has no ready endpoint; connection closed", self.name)
            writer.close()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            writer.close()
            return
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(_pipe(reader, upstream_writer), name=f"{self.name} to pod")
                group.create_task(_pipe(upstream_reader, writer), name=f"{self.name} from pod")
        finally:
            for end in (writer, upstream_writer):
                end.close()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(BUFFER_BYTES):
            sink.write(data)
            await sink.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        # Half-close towards the sink so the other side sees the end; the peer direction may go on.
        with contextlib.suppress(OSError, RuntimeError):
            if sink.can_write_eof():
                sink.write_eof()
