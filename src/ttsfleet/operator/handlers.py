"""kopf handlers (thin): they pick what to do, `reconciling` does it, and Events report it.

`register` puts every handler into the given registry, closed over one `reconciling.Runtime`, so
tests can run several operators (a restart) in one process. Children go with their owner by garbage
collection, so no handler needs a finalizer, but kopf puts its own (`kopf.zalando.org/
KopfFinalizerMarker`) on every TTSBackend because the `probe` timer must be stopped before the object
goes. Deleting a backend therefore waits for a running operator: one deleted while the operator is
down (or uninstalled) stays with a deletionTimestamp, and a namespace deleted meanwhile stays
Terminating, until the operator returns and releases it (or someone removes the finalizer by hand).
Hence the documented uninstall order: TTSBackends first, then the chart, then the CRD.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import kopf

from ttsfleet.operator import api, errors, events, kube, probing, reconciling
from ttsfleet.operator import settings as operator_settings
from ttsfleet.operator.facts import DeploymentFacts, HpaFacts, SecretFacts, secret_fingerprints
from ttsfleet.operator.rendering import meta

GROUP, VERSION, PLURAL = api.GROUP, api.VERSION, api.PLURAL
INSTANCE_LABEL = "app.kubernetes.io/instance"


def post(body: Any, notices: Iterable[events.Notice]) -> None:
    """Post Events on the backend (kopf queues and retries them)."""
    for notice in notices:
        kopf.event(body, type=notice.type.value, reason=notice.reason.value, message=notice.message)


def register(registry: kopf.OperatorRegistry, runtime: reconciling.Runtime) -> None:
    """Register the operator's handlers, bound to `runtime`."""
    config = runtime.settings

    @kopf.on.startup(registry=registry, id="configure")
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        operator_settings.configure_kopf(settings, config)
        if config.metrics_port:
            runtime.metrics.serve(config.metrics_port)

    @kopf.on.login(registry=registry, id="login")
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        info = kube.connection(config.api_server, config.kubeconfig, **kwargs)
        if info is not None:
            # kopf may log in again after a 401; the previous client stays until cleanup (it is tiny).
            runtime.client = kube.KubeClient.from_connection(
                info, kube.Timeouts(read_s=config.api_read_timeout_s), config.api_max_in_flight
            )
        return info

    @kopf.index(GROUP, VERSION, PLURAL, registry=registry, id="backends_by_secret")
    async def backends_by_secret(
        namespace: str | None, name: str, spec: kopf.Spec, **_: Any
    ) -> dict[Any, str]:
        """(namespace, Secret name) → the backends whose Deepgram key is in it."""
        ref = (spec.get("deepgram") or {}).get("apiKeySecretRef") or {}
        return {(namespace, ref["name"]): name} if ref.get("name") else {}

    # Watches instead of reads on every probe tick: what a tick needs of Secrets, Deployments and pods
    # (fingerprints and rollout facts, never Secret values or whole pods), kept current by kopf.
    @kopf.index("", "v1", "secrets", labels=meta.SECRET_LABELS, registry=registry, id="secret_keys")
    async def secret_keys(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
        return {(namespace, name): secret_fingerprints(body)}

    @kopf.index(
        "apps",
        "v1",
        "deployments",
        labels=meta.CHILD_LABELS,
        registry=registry,
        id="deployments",
    )
    async def deployments(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
        return {(namespace, name): DeploymentFacts.from_deployment(body)}

    @kopf.index(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        labels=meta.CHILD_LABELS,
        registry=registry,
        id="autoscalers",
    )
    async def autoscalers(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
        return {(namespace, name): HpaFacts.from_hpa(body)}

    @kopf.index("", "v1", "pods", labels=meta.GATEWAY_POD_LABELS, registry=registry, id="pods")
    async def pods(namespace: str | None, labels: kopf.Labels, body: kopf.Body, **_: Any) -> dict[Any, Any]:
        instance = labels.get(INSTANCE_LABEL)
        view = probing.pod_view(body, config.statusz_port_annotation)
        return {(namespace, instance): view} if instance else {}

    @kopf.on.resume(GROUP, VERSION, PLURAL, registry=registry, id="reconcile")
    @kopf.on.create(GROUP, VERSION, PLURAL, registry=registry, id="reconcile")
    @kopf.on.update(GROUP, VERSION, PLURAL, registry=registry, id="reconcile")
    async def reconcile(body: kopf.Body, name: str, logger: kopf.Logger, **kwargs: Any) -> None:
        namespace = str(body.metadata.namespace)
        async with runtime.lock(namespace, name), runtime.reconcile_slots:
            await _reconcile(runtime, body, logger, _watched(kwargs))

    @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry, id="forget")
    async def forget(event: kopf.RawEvent, body: kopf.Body, name: str, **_: Any) -> None:
        namespace = str(body.metadata.namespace)
        if event.get("type") == "DELETED":
            runtime.forget(namespace, name)

    # The first tick waits one interval: the reconcile that follows a backend's appearance writes its
    # status anyway, so an immediate tick would only race it.
    @kopf.timer(
        GROUP,
        VERSION,
        PLURAL,
        interval=config.probe_interval_s,
        initial_delay=config.probe_interval_s,
        registry=registry,
        id="probe",
    )
    async def probe(body: kopf.Body, name: str, logger: kopf.Logger, **kwargs: Any) -> None:
        namespace = str(body.metadata.namespace)
        watched = _watched(kwargs)
        async with runtime.lock(namespace, name):
            try:
                outcome = await reconciling.refresh_status(runtime, body, watched=watched)
            except errors.ApiError as exc:
                logger.info("status refresh failed, retried next tick: %s", exc)
                return
            finally:
                runtime.metrics.status_refreshes.inc()
        post(body, outcome.notices)

    @kopf.on.event("", "v1", "secrets", labels=meta.SECRET_LABELS, registry=registry, id="secret_changed")
    async def secret_changed(body: kopf.Body, event: kopf.RawEvent, name: str, **kwargs: Any) -> None:
        namespace = str(body.metadata.namespace)
        backends_by_secret: kopf.Index[Any, str] = kwargs["backends_by_secret"]
        for backend_name in backends_by_secret.get((namespace, name), ()):
            async with runtime.lock(namespace, backend_name):
                await _rotate(
                    runtime,
                    namespace,
                    backend_name,
                    name,
                    None if event.get("type") == "DELETED" else body,
                    _watched(kwargs),
                )


def _watched(kwargs: dict[str, Any]) -> reconciling.Watched:
    """The indexes kopf passes to every handler, as what `reconciling` reads instead of the API."""
    return reconciling.Watched(
        secrets=kwargs["secret_keys"],
        deployments=kwargs["deployments"],
        pods=kwargs["pods"],
        autoscalers=kwargs["autoscalers"],
    )


async def _reconcile(
    runtime: reconciling.Runtime, body: kopf.Body, logger: kopf.Logger, watched: reconciling.Watched
) -> None:
    try:
        outcome = await reconciling.reconcile(runtime, body, watched=watched)
    except errors.ApiError as exc:
        runtime.metrics.reconcile_failed(
            str(body.metadata.namespace), str(body.metadata.name), type(exc).__name__
        )
        raise errors.to_kopf(exc) from exc
    if outcome.spec_problems:
        runtime.metrics.reconciles.labels("invalid_spec").inc()
        logger.warning("invalid spec: %s", "; ".join(outcome.spec_problems))
    else:
        runtime.metrics.reconciles.labels("changed" if outcome.changed else "unchanged").inc()
    post(body, outcome.notices)


async def _rotate(
    runtime: reconciling.Runtime,
    namespace: str,
    name: str,
    secret_name: str,
    secret: kopf.Body | None,
    watched: reconciling.Watched,
) -> None:
    """React to a change of a backend's key Secret: reconcile when the key's fingerprint moved."""
    applied = runtime.applied_keys.get((namespace, name))
    if applied is None:
        return  # not reconciled yet (e.g. just started): the reconcile reads the Secret itself
    secret_body = dict(secret) if secret is not None else None
    if (
        secret_name == applied.name
        and SecretFacts.from_secret(applied.name, applied.key, secret_body, single=True) == applied
    ):
        return  # the key this backend uses did not move (a restart's replay, another key): no reads
    backend_body = await runtime.kube.get_or_none(kube.TTSBACKENDS, namespace, name)
    if backend_body is None or api.validate_spec(backend_body.get("spec") or {}):
        return
    backend = api.TTSBackend.from_body(backend_body)
    ref = backend.spec.deepgram.api_key_secret_ref
    key = SecretFacts.from_secret(ref.name, ref.key, secret_body, single=True)
    if applied.fingerprint == key.fingerprint:
        return  # an unrelated change to the Secret (labels, another key)
    try:
        outcome = await reconciling.reconcile(runtime, backend_body, watched=watched)
    except errors.ApiError as exc:
        runtime.metrics.reconcile_failed(namespace, name, type(exc).__name__)
        raise errors.to_kopf(exc) from exc
    strategy = backend.spec.rotation.strategy
    action = (
        "rolling restart of the pods"
        if strategy is api.RotationStrategy.RESTART
        else "pods re-read the mounted key; watch status.credentials"
    )
    rotated = events.Notice(
        events.EventType.NORMAL,
        events.Reason.CREDENTIAL_ROTATED,
        f"Deepgram key {applied.fingerprint} -> {key.fingerprint} ({strategy.value}: {action})",
    )
    post(backend_body, (rotated, *outcome.notices))
    logging.getLogger(__name__).info("credential rotated on %s/%s (%s)", namespace, name, strategy.value)
