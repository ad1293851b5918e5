"""Running the API: in-process for tests (`running_apiserver`) or as a long-lived process (`serve`).

Both listen on 127.0.0.1 (a free port unless one is given). Open watch streams are ended before the
HTTP server stops, so shutdown never waits on them.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import kmock

from ttsfleet.devcluster.apiserver.emulator import ApiServer
from ttsfleet.devcluster.apiserver.kubeconfig import write_kubeconfig

# A standalone server keeps this many requests for kmock's assertions (memory stays bounded).
STANDALONE_REQUEST_HISTORY = 10_000


@contextlib.asynccontextmanager
async def running_apiserver(
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    kubeconfig: Path | None = None,
    bookmark_interval_s: float = 10.0,
    request_history_limit: int | None = None,
) -> AsyncIterator[ApiServer]:
    """An `ApiServer` served over HTTP for the duration of the block; `.base_url` says where."""
    server = ApiServer(bookmark_interval_s=bookmark_interval_s, request_history_limit=request_history_limit)
    async with server, kmock.Server(server, host=host, port=port):
        try:
            if kubeconfig is not None:
                write_kubeconfig(kubeconfig, server.base_url)
            yield server
        finally:
            server.close_watches()


async def serve(*, host: str = "127.0.0.1", port: int | None = None, kubeconfig: Path | None = None) -> None:
    """Serve until SIGINT or SIGTERM; prints the URL once listening (the kubeconfig is written first)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with running_apiserver(
        host=host, port=port, kubeconfig=kubeconfig, request_history_limit=STANDALONE_REQUEST_HISTORY
    ) as server:
        print(f"ttsfleet devcluster apiserver listening on {server.base_url}", flush=True)
        await stop.wait()
