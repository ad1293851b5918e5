"""The Service proxy of the local fleet on the real control plane: kube-proxy's job, in user space.

It follows Services and EndpointSlices (published by the real EndpointSlice controller) and opens one
loopback listener per Service port. Each connection goes to a random ready endpoint, as kube-proxy's
iptables and nftables modes choose per connection; terminating or unready endpoints take no new
connections, and an endpoint's change reaches the proxy `propagation_delay_s` after the API shows it —
the lag a real node's proxy has, which a graceful drain must cover. Endpoint addresses are pod IPs;
`resolve` turns one into the loopback address its process listens on (the node agent's port map).
Bytes are relayed as they are, so HTTP and WebSocket both pass. With `services_file`, every Service's
first port is listed there as `{"<name>.<namespace>": "ws://127.0.0.1:PORT"}` (what clients of the
local fleet read to find a backend by name), replaced atomically whenever the listeners change.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ttsfleet.devcluster import kubeapi

logger = logging.getLogger(__name__)

BUFFER_BYTES = 64 * 1024
# How late an EndpointSlice change reaches the proxy: about what a real node's kube-proxy lags.
DEFAULT_PROPAGATION_DELAY_S = 1.0
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
Key = tuple[str, str]
PortKey = tuple[str, str, str]  # namespace, Service, port name
Resolve = Callable[[str, int], tuple[str, int] | None]


def ready_endpoints(
    slices: Mapping[Key, Mapping[str, Any]], service: Key, port_name: str
) -> list[tuple[str, int]]:
    """(address, port) of every ready endpoint of a Service port, over all its EndpointSlices.
    A terminating endpoint is never ready in a slice (the controller reports it `serving` at most)."""
    found: list[tuple[str, int]] = []
    for (namespace, _), body in slices.items():
        labels = body["metadata"].get("labels") or {}
        if namespace != service[0] or labels.get(SERVICE_NAME_LABEL) != service[1]:
            continue
        port = next(
            (p.get("port") for p in body.get("ports") or () if (p.get("name") or "") == port_name), None
        )
        if port is None:
            continue
        for endpoint in body.get("endpoints") or ():
            conditions = endpoint.get("conditions") or {}
            if conditions.get("ready") is not False and not conditions.get("terminating"):
                found.extend((str(address), int(port)) for address in endpoint.get("addresses") or ())
    return found


@dataclass
class ServiceProxy:
    """Run with `await proxy.run()` until cancelled; `address(namespace, service, port)` is where to dial."""

    api: kubeapi.KubeApi
    resolve: Resolve
    propagation_delay_s: float = DEFAULT_PROPAGATION_DELAY_S
    services_file: Path | None = None
    _services: dict[Key, dict[str, Any]] = field(default_factory=dict)
    _slices: dict[Key, dict[str, Any]] = field(default_factory=dict)
    _listeners: dict[PortKey, asyncio.Server] = field(default_factory=dict)
    _relays: set[asyncio.Task[None]] = field(default_factory=set)

    def address(self, namespace: str, service: str, port_name: str = "") -> tuple[str, int] | None:
        """The loopback address serving a Service port, once the proxy has seen the Service."""
        server = self._listeners.get((namespace, service, port_name))
        if server is None:
            return None
        host, port = server.sockets[0].getsockname()[:2]
        return str(host), int(port)

    async def run(self) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._follow_services(), name="watch services")
                group.create_task(self._follow_slices(), name="watch endpointslices")
        finally:
            await asyncio.shield(self.close())

    async def close(self) -> None:
        """Stop listening and cut open relays."""
        for server in self._listeners.values():
            server.close()
        for task in list(self._relays):
            task.cancel()
        await asyncio.gather(*self._relays, return_exceptions=True)
        self._listeners.clear()

    async def _follow_services(self) -> None:
        async for event in self.api.watch(kubeapi.SERVICES):
            if event.type == "SYNCED":
                self._services = {_key(body): body for body in event.snapshot}
            elif event.type == "DELETED":
                self._services.pop(_key(event.object), None)
            else:
                self._services[_key(event.object)] = event.object
            await self._sync_listeners()

    async def _follow_slices(self) -> None:
        loop = asyncio.get_running_loop()
        async for event in self.api.watch(kubeapi.ENDPOINTSLICES):
            # Every change lands after the same delay, so changes keep their order.
            loop.call_later(self.propagation_delay_s, self._apply_slice_event, event)

    def _apply_slice_event(self, event: kubeapi.WatchEvent) -> None:
        if event.type == "SYNCED":
            self._slices = {_key(body): body for body in event.snapshot}
        elif event.type == "DELETED":
            self._slices.pop(_key(event.object), None)
        else:
            self._slices[_key(event.object)] = event.object

    async def _sync_listeners(self) -> None:
        wanted: set[PortKey] = {
            (key[0], key[1], str(port.get("name") or ""))
            for key, service in self._services.items()
            for port in (service.get("spec") or {}).get("ports") or ()
            if port.get("protocol", "TCP") == "TCP"
        }
        for port_key in set(self._listeners) - wanted:
            self._listeners.pop(port_key).close()
        for port_key in wanted - set(self._listeners):
            self._listeners[port_key] = await asyncio.start_server(
                functools.partial(self._accept, port_key), "127.0.0.1", 0
            )
            logger.info("service %s/%s port %r at %s", *port_key, self.address(*port_key))
        self._publish()

    def service_urls(self) -> dict[str, str]:
        """`{"<name>.<namespace>": "ws://127.0.0.1:PORT"}`: each Service's first TCP port."""
        urls: dict[str, str] = {}
        for (namespace, name), service in sorted(self._services.items()):
            ports = [
                p for p in (service.get("spec") or {}).get("ports") or () if p.get("protocol", "TCP") == "TCP"
            ]
            address = self.address(namespace, name, str(ports[0].get("name") or "")) if ports else None
            if address is not None:
                urls[f"{name}.{namespace}"] = f"ws://{address[0]}:{address[1]}"
        return urls

    def _publish(self) -> None:
        if self.services_file is None:
            return
        staging = self.services_file.with_name(f".{self.services_file.name}.tmp")
        staging.write_text(json.dumps(self.service_urls(), indent=2, sort_keys=True) + "\n")
        staging.replace(self.services_file)

    def endpoints(self, namespace: str, service: str, port_name: str = "") -> list[tuple[str, int]]:
        """The ready endpoints of a Service port as the proxy sees them now (after the delay)."""
        return ready_endpoints(self._slices, (namespace, service), port_name)

    def pick(self, port_key: PortKey) -> tuple[str, int] | None:
        """A random ready endpoint of the Service port, as a loopback address; None without one."""
        candidates = [
            local
            for address, port in ready_endpoints(self._slices, port_key[:2], port_key[2])
            if (local := self.resolve(address, port)) is not None
        ]
        return random.choice(candidates) if candidates else None  # spreading load, not secrecy

    async def _accept(
        self, port_key: PortKey, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._relays.add(task)
        try:
            target = self.pick(port_key)
            if target is None:
                logger.debug("service %s/%s has no ready endpoint; connection closed", *port_key[:2])
                return
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection(*target)
            except OSError:
                return
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(_copy(reader, upstream_writer))
                    group.create_task(_copy(upstream_reader, writer))
            finally:
                upstream_writer.close()
        finally:
            writer.close()
            self._relays.discard(task)


async def _copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Relay one direction; at its end, half-close the sink so the peer sees it."""
    with contextlib.suppress(ConnectionError, OSError):
        while chunk := await source.read(BUFFER_BYTES):
            sink.write(chunk)
            await sink.drain()
    with contextlib.suppress(OSError, RuntimeError):
        if sink.can_write_eof():
            sink.write_eof()


def _key(body: Mapping[str, Any]) -> Key:
    return (str(body["metadata"].get("namespace", "")), str(body["metadata"]["name"]))
