"""A stand-in for a Kubernetes Service in front of gateway pods: TCP forwarding with endpoint removal.

kube-proxy keeps routing to a pod for a moment after it stops being ready; this one routes new
connections to the first endpoint still in rotation and takes an endpoint out once it answers an
upgrade with 503 (a drain), so a client's retry lands on the next pod, as in a cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class ServiceProxy:
    endpoints: list[tuple[str, int]]
    port: int = 0
    connections: Counter[int] = field(default_factory=Counter)  # by endpoint port
    refusals: Counter[int] = field(default_factory=Counter)  # 503 answers and refused connects
    _current: int = 0
    _server: asyncio.Server | None = None
    _pipes: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def __aenter__(self) -> ServiceProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        while True:
            index = self._current
            host, port = self.endpoints[index]
            self.connections[port] += 1
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection(host, port)
                break
            except OSError:
                # The endpoint's process is gone (a drained pod exits): like a Service, try the next one.
                self.refusals[port] += 1
                if index == len(self.endpoints) - 1:
                    client_writer.close()
                    return
                self._current = index + 1
        up = asyncio.create_task(self._pipe(client_reader, upstream_writer, None))
        down = asyncio.create_task(self._pipe(upstream_reader, client_writer, index))
        self._pipes.update((up, down))
        await asyncio.gather(up, down, return_exceptions=True)
        self._pipes.difference_update((up, down))

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, endpoint: int | None
    ) -> None:
        first = True
        try:
            while chunk := await reader.read(65536):
                if first and endpoint is not None and chunk.startswith(b"HTTP/1.1 503"):
                    self.refusals[self.endpoints[endpoint][1]] += 1
                    # The endpoint is draining: later connections go to the next pod.
                    self._current = min(endpoint + 1, len(self.endpoints) - 1)
                first = False
                writer.write(chunk)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()
