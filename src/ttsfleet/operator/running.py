"""Assembling and running the operator: one registry, one runtime, kopf's main loop.

`build` is shared by `ttsfleet operator` (through `run`) and the tests, which drive kopf in-process
with `kopf.spawn_tasks` / `kopf.run_tasks`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import kopf

from ttsfleet.logs import configure_logging
from ttsfleet.operator import access, handlers, key_rotating, kube, probing, reconciling
from ttsfleet.operator.metrics import OperatorMetrics
from ttsfleet.operator.settings import OperatorSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Assembly:
    """What kopf needs to run the operator."""

    registry: kopf.OperatorRegistry
    runtime: reconciling.Runtime

    async def aclose(self) -> None:
        """Release what the runtime holds (after kopf has stopped: timers may still use it until then)."""
        self.runtime.metrics.close()
        await self.runtime.prober.aclose()
        if self.runtime.client is not None:
            await self.runtime.client.aclose()


def default_statusz_url(settings: OperatorSettings) -> probing.StatuszUrl:
    """Where the operator asks pods: the pod IP, unless a pod-network table maps it (the local fleet)."""
    if settings.pod_network_file is not None:
        return probing.pod_network_statusz(settings.statusz_port, settings.pod_network_file)
    return probing.pod_ip_statusz(settings.statusz_port, settings.statusz_port_annotation)


def build(
    settings: OperatorSettings,
    *,
    statusz_url: probing.StatuszUrl | None = None,
    metrics: OperatorMetrics | None = None,
    clock: reconciling.Clock = reconciling.utc_now,
) -> Assembly:
    """A fresh registry with every handler, bound to a fresh runtime."""
    prober = probing.Prober(statusz_url or default_statusz_url(settings), settings.probe_timeout_s)
    runtime = reconciling.Runtime(
        settings=settings, prober=prober, metrics=metrics or OperatorMetrics(), clock=clock
    )
    registry = kopf.OperatorRegistry()
    handlers.register(registry, runtime)
    key_rotating.register(registry, runtime)
    return Assembly(registry=registry, runtime=runtime)


def run(settings: OperatorSettings) -> None:
    """Run until SIGINT/SIGTERM (kopf handles the signals and the graceful exit)."""
    configure_logging(settings.log_level, component="operator")
    asyncio.run(_serve(build(settings)))


async def _serve(assembly: Assembly) -> None:
    settings = assembly.runtime.settings
    try:
        await _wait_for_watch_grants(settings)
        await kopf.operator(
            registry=assembly.registry,
            clusterwide=not settings.namespaces,
            namespaces=settings.namespaces,
            liveness_endpoint=settings.liveness_endpoint,
            # kopf has no leader election: peering makes a second operator stand by (docs/operator.md).
            standalone=settings.peering_name is None,
            peering_name=settings.peering_name,
            priority=settings.priority,
        )
    finally:
        await assembly.aclose()


async def _wait_for_watch_grants(settings: OperatorSettings) -> None:
    """Hold kopf back while RBAC refuses a watch it would die on, saying so (see `access`)."""
    info = kube.connection(
        settings.api_server, settings.kubeconfig, logger=logger, settings=kopf.OperatorSettings()
    )
    if info is None:
        return  # kopf's own login will fail and say why
    client = kube.KubeClient.from_connection(info, kube.Timeouts(read_s=settings.api_read_timeout_s))
    try:
        await access.wait_until_granted(
            client,
            settings.namespaces,
            peering=settings.peering_name is not None,
            recheck_s=settings.rbac_recheck_s,
            clock=reconciling.utc_now,
        )
    finally:
        await client.aclose()
