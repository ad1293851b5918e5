"""A Service's local address: a TCP balancer on loopback spreading connections over its ready pods.

Round-robin per connection (kube-proxy picks per connection too), skipping pods that are not ready or
are terminating; with no pod to take it, a connection is closed at once, as a Service without
endpoints refuses. Bytes are relayed as they are, so WebSocket and HTTP both pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable, Sequence

logger = logging.getLogger(__name__)

BUFFER_BYTES = 64 * 1024
Backends = Callable[[], Sequence[int]]


class Balancer:
    """Listens on 127.0.0.1 and relays each connection to the next ready backend port."""

    def __init__(self, name: str, backends: Backends, port: int = 0) -> None:
        self.name = name
        self._backends = backends
        self._requested_port = port
        self._server: asyncio.Server | None = None
        self._turn = itertools.count()
        self._relays: set[asyncio.Task[None]] = set()

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

    def pick(self) -> int | None:
        """The next backend port in turn, or None when no pod is ready."""
        ports = list(self._backends())
        if not ports:
            return None
        return ports[next(self._turn) % len(ports)]

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
