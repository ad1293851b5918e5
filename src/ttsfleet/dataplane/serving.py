"""Running the gateway: uvicorn driven by hand, so a drain always finishes before uvicorn closes sockets.

uvicorn closes open WebSockets with 1012 as soon as it shuts down; here SIGTERM (and SIGINT) start the
gateway's drain instead, and uvicorn is told to exit only once the drain has ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import resource
import signal
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import structlog
import uvicorn
from prometheus_client import Histogram

from ttsfleet.dataplane import connections, tracing
from ttsfleet.dataplane.app import create_app
from ttsfleet.dataplane.gateway import Gateway
from ttsfleet.dataplane.settings import LoadedSettings
from ttsfleet.logs import configure_logging

log = structlog.get_logger(__name__)
# A full collection walks every object of every session (37-75 ms at 1,000 sessions, during which no
# audio moves), and CPython runs one every 10 collections of the middle generation once the objects
# promoted since the last exceed a quarter of the old ones, which a pod with a thousand sessions reaches
# every few seconds. The gateway leaves little cyclic garbage (an upgrade's HTTP protocol, once per
# connection; docs/performance.md), so full passes can wait ten times longer: p99 at 1,000 sessions went
# from a stall every ~10 s to none in a 30 s level, for ~10 MB more resident.
GEN1_COLLECTIONS_PER_FULL = 100

# Client frames larger than the protocol's own limit reach our rules (1009 BIG-0000) instead of uvicorn's.
WS_MAX_FRAME_BYTES = 1 << 20
# More descriptors than any pod uses (sessions, upstream sockets, pending connections); an unlimited hard
# limit is not taken literally, as some libraries size tables by the soft limit.
FD_LIMIT_CEILING = 1 << 20


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: the gateway decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def run(loaded: LoadedSettings, environ: Mapping[str, str]) -> None:
    """Serve until SIGTERM/SIGINT and the drain after it."""
    settings = loaded.settings
    configure_logging(settings.logging.level, settings.logging.format, component="dataplane")
    # httpx logs every request line with its full URL at INFO; our own utterance lines say more. At DEBUG,
    # websockets logs every header and frame (the key, fleet tokens, the text): as our client, and through
    # uvicorn's server protocol, which hands it the "uvicorn.error" logger. Whatever the gateway's level,
    # those stay above DEBUG, so no secret reaches a line.
    for library in ("httpx", "httpcore", "websockets"):
        logging.getLogger(library).setLevel(logging.WARNING)
    logging.getLogger("uvicorn.error").setLevel(max(logging.INFO, logging.getLogger().getEffectiveLevel()))
    logging.getLogger("uvicorn.error").addFilter(connections.QuietParserWarnings())
    tracing.configure(environ)
    _raise_fd_limit()
    runner_factory = _loop_factory()
    try:
        with asyncio.Runner(loop_factory=runner_factory) as runner:
            runner.run(_serve(loaded))
    finally:
        tracing.shutdown()


def _raise_fd_limit() -> None:
    """Raise the soft limit on open files to the hard limit: each client, upstream socket and pending
    connection is a descriptor, and the usual soft limit (1,024) is below what one pod serves."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = FD_LIMIT_CEILING if hard == resource.RLIM_INFINITY else min(hard, FD_LIMIT_CEILING)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as error:
            log.warning("open-file limit not raised", soft=soft, hard=hard, error=str(error))
            return
    log.info("open-file limit", soft=resource.getrlimit(resource.RLIMIT_NOFILE)[0], hard=hard)


def _loop_factory() -> type[asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.Loop


def _time_collections(pauses: Histogram) -> Callable[[], None]:
    """Observe every collector pass into `pauses` by generation; returns what removes the hook.

    A pass stops every session's audio, so its length is a latency SREs need beside the TTFB histogram.
    """
    started: list[float] = []

    def on_pass(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[:] = [time.perf_counter()]
        elif started:
            pauses.labels(generation=str(info["generation"])).observe(time.perf_counter() - started[0])

    gc.callbacks.append(on_pass)
    return lambda: gc.callbacks.remove(on_pass)


async def _serve(loaded: LoadedSettings) -> None:
    settings = loaded.settings
    gateway = Gateway(loaded)
    refusals = gateway.metrics.refusals
    http_protocol, ws_protocol = connections.protocols(
        settings.connections,
        settings.timeouts.utterance_s,
        lambda status: refusals.labels(status=str(status)).inc(),
        gateway.upgrades,
    )
    config = uvicorn.Config(
        create_app(gateway),
        host=settings.server.host,
        port=settings.server.port,
        http=http_protocol,
        ws=ws_protocol,
        ws_max_size=WS_MAX_FRAME_BYTES,
        # Speech does not compress, yet a client offering permessage-deflate (websockets' default, so
        # many Deepgram clients) had every audio frame run through zlib: most of the relay's CPU.
        ws_per_message_deflate=False,
        lifespan="on",
        log_config=None,
        access_log=False,
        # Nothing here reads the client's address or scheme, so uvicorn's X-Forwarded-* rewriting (a
        # middleware on every connection) has nothing to serve.
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=5,
    )
    server = _Server(config)
    loop = asyncio.get_running_loop()
    stopping: list[asyncio.Task[None]] = []

    async def drain_then_exit() -> None:
        clean = await gateway.drain()
        log.info("drained; stopping", clean=clean)
        server.should_exit = True

    def on_signal(number: int) -> None:
        if stopping:
            log.warning("second signal: exiting now", signal=number)
            server.force_exit = server.should_exit = True
            return
        log.info("signal received: draining", signal=signal.Signals(number).name)
        stopping.append(loop.create_task(drain_then_exit(), name="serving:drain"))

    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, on_signal, number)
    untime = _time_collections(gateway.metrics.gc_pauses)
    # Everything built so far (imported modules, the app, settings) lives as long as the process: out of
    # the collector's sight, a full collection no longer walks it while sessions wait for their audio.
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, GEN1_COLLECTIONS_PER_FULL)
    try:
        await server.serve()
    finally:
        untime()
        for number in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(number)
        for task in stopping:
            if not task.done():
                task.cancel()
