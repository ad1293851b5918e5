"""The Service proxy against the real apiserver: a selector-less Service with hand-written EndpointSlices
over two local TCP servers, so the test decides exactly when an endpoint turns terminating."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.controlplane.conftest import NAMESPACE
from tests.support.waiting import wait_until
from ttsfleet.devcluster import kubeapi
from ttsfleet.devcluster.controlplane import pki
from ttsfleet.devcluster.controlplane.launcher import ControlPlane
from ttsfleet.devcluster.serviceproxy import ServiceProxy

pytestmark = pytest.mark.slow

SERVICE = "proxied"
SLICES = f"/apis/discovery.k8s.io/v1/namespaces/{NAMESPACE}/endpointslices"
DELAY_S = 1.5
ADDRESSES = ("10.244.9.1", "10.244.9.2")
PORT = 8080


def _slice(terminating: bool) -> dict[str, Any]:
    """Two endpoints; the second terminating (not ready, still serving) when asked."""
    second = {"ready": not terminating, "serving": True, "terminating": terminating}
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{SERVICE}-manual",
            "labels": {
                "kubernetes.io/service-name": SERVICE,
                "endpointslice.kubernetes.io/managed-by": "tests.ttsfleet.io",
            },
        },
        "addressType": "IPv4",
        "ports": [{"name": "tcp", "port": PORT, "protocol": "TCP"}],
        "endpoints": [
            {
                "addresses": [ADDRESSES[0]],
                "conditions": {"ready": True, "serving": True, "terminating": False},
            },
            {"addresses": [ADDRESSES[1]], "conditions": second},
        ],
    }


@contextlib.asynccontextmanager
async def backends() -> AsyncIterator[dict[str, int]]:
    """Two TCP servers answering with their own pod address, keeping the connection open."""
    servers = []

    def answering(address: str) -> Any:
        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(address.encode() + b"\n")
            await writer.drain()
            await reader.read()  # hold the connection until the client ends it
            writer.close()

        return answer

    for address in ADDRESSES:
        servers.append(await asyncio.start_server(answering(address), "127.0.0.1", 0))
    try:
        yield {a: int(s.sockets[0].getsockname()[1]) for a, s in zip(ADDRESSES, servers, strict=True)}
    finally:
        for server in servers:
            server.close()


async def _who(port: int) -> tuple[str, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    return (await reader.readline()).decode().strip(), writer


async def test_a_terminating_endpoint_takes_no_new_connections_after_the_propagation_delay(
    control_plane: ControlPlane,
) -> None:
    proxy_pair = pki.issue_client(control_plane.credentials, "proxy-only", "system:kube-proxy")
    context = control_plane.client_tls(proxy_pair)
    async with (
        backends() as ports,
        kubeapi.KubeApi(control_plane.server, tls=context) as api,
        httpx.AsyncClient(base_url=control_plane.server, verify=control_plane.admin_tls()) as admin,
    ):
        service = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": SERVICE},
            "spec": {"ports": [{"name": "tcp", "port": PORT}]},
        }
        (await admin.post(f"/api/v1/namespaces/{NAMESPACE}/services", json=service)).raise_for_status()
        (await admin.post(SLICES, json=_slice(terminating=False))).raise_for_status()

        def resolve(address: str, port: int) -> tuple[str, int] | None:
            return ("127.0.0.1", ports[address]) if address in ports and port == PORT else None

        proxy = ServiceProxy(api, resolve, propagation_delay_s=DELAY_S)
        running = asyncio.create_task(proxy.run())
        try:
            await wait_until(
                lambda: len(proxy.endpoints(NAMESPACE, SERVICE, "tcp")) == 2, 30, "both endpoints"
            )
            listener = proxy.address(NAMESPACE, SERVICE, "tcp")
            assert listener is not None
            # Connections spread over both endpoints; one stays open across the change.
            held: dict[str, asyncio.StreamWriter] = {}
            for _ in range(40):
                name, writer = await _who(listener[1])
                if name in held:
                    writer.close()
                else:
                    held[name] = writer
                if len(held) == 2:
                    break
            assert set(held) == set(ADDRESSES)

            loop = asyncio.get_running_loop()
            changed = loop.time()
            (
                await admin.put(f"{SLICES}/{SERVICE}-manual", json=await _with_version(admin))
            ).raise_for_status()
            await wait_until(
                lambda: len(proxy.endpoints(NAMESPACE, SERVICE, "tcp")) == 1,
                10,
                "the terminating endpoint out",
            )
            # Not before the propagation delay: a real node's proxy lags the API the same way.
            assert loop.time() - changed >= DELAY_S * 0.9
            for _ in range(20):
                name, writer = await _who(listener[1])
                writer.close()
                assert name == ADDRESSES[0]
            # The open connection to the terminating endpoint is not cut.
            held[ADDRESSES[1]].write(b"still here")
            await held[ADDRESSES[1]].drain()
            assert not held[ADDRESSES[1]].is_closing()
            for writer in held.values():
                writer.close()
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)


async def _with_version(admin: httpx.AsyncClient) -> dict[str, Any]:
    current = (await admin.get(f"{SLICES}/{SERVICE}-manual")).json()
    body = _slice(terminating=True)
    body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
    return body
