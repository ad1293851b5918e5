"""One backend's reconcile and status refresh: gather facts, call the pure functions, apply the results.

Everything here goes through `kube.KubeClient` and `probing.Prober`; the decisions are made by
`rendering`, `applying.apply_child`, `status.compute_status` and `events.transitions`. A status patch is
written only when the computed status differs from the stored one, so an idle backend writes nothing.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ttsfleet.operator import (
    api,
    applying,
    conditions,
    errors,
    events,
    kube,
    metering,
    probing,
    rendering,
    share_writing,
    sharing,
    status,
)
from ttsfleet.operator.facts import DeploymentFacts, FleetFacts, HpaFacts, KeyDigest, SecretFacts, SecretState
from ttsfleet.operator.metrics import OperatorMetrics
from ttsfleet.operator.rendering.meta import WATCHED_SECRETS
from ttsfleet.operator.settings import OperatorSettings

Body = Mapping[str, Any]
Clock = Callable[[], datetime.datetime]


def utc_now() -> datetime.datetime:
    """The wall clock, timezone-aware."""
    return datetime.datetime.now(datetime.UTC)


@dataclass
class Runtime:
    """What the handlers share: settings, the API client (set at login), the prober, metrics, locks."""

    settings: OperatorSettings
    prober: probing.Prober
    metrics: OperatorMetrics
    clock: Clock = utc_now
    client: kube.KubeClient | None = None
    _locks: dict[tuple[str, str], asyncio.Lock] = field(default_factory=dict)
    # The generation each backend was last reconciled at: probes wait for the first reconcile.
    reconciled: dict[tuple[str, str], int] = field(default_factory=dict)
    # The Deepgram key (Secret, key and fingerprint) each backend was last reconciled with: what its
    # pods were given, and what a Secret event is compared with before anything is read from the API.
    applied_keys: dict[tuple[str, str], SecretFacts] = field(default_factory=dict)
    # Optional children the last reconcile could not write (their kind is absent or not granted), as
    # messages: probe ticks keep reporting them without reading the API again.
    skipped_children: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    # The status this operator last computed per backend. A probe tick may run before the watch has
    # delivered the status the reconcile just wrote; comparing with the body kopf hands over would
    # then see every new reason again and post its Event twice.
    last_status: dict[tuple[str, str], api.TTSBackendStatus] = field(default_factory=dict)
    # The division of the fleet-wide budgets last written per backend (the shares ConfigMap).
    divisions: dict[tuple[str, str], sharing.Division] = field(default_factory=dict)
    # status.usage as last written per backend: the watch may hand over a body from before that write,
    # and counting from its older counters would count the same characters twice.
    usage: dict[tuple[str, str], api.UsageStatus] = field(default_factory=dict)
    # Reconciles running at once (set from the settings in __post_init__). Each holds its rendered
    # children and the API's answers; a thousand at once (a start, a CRD-wide change) made the
    # operator's peak memory, not its steady state.
    reconcile_slots: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self.reconcile_slots = asyncio.Semaphore(self.settings.max_concurrent_reconciles)

    @property
    def kube(self) -> kube.KubeClient:
        """The API client; kopf logs in before any handler runs."""
        if self.client is None:
            raise RuntimeError("not logged in to the API yet")
        return self.client

    def lock(self, namespace: str, name: str) -> asyncio.Lock:
        """Serialises reconciles, secret reactions and probes of one backend."""
        return self._locks.setdefault((namespace, name), asyncio.Lock())

    def forget(self, namespace: str, name: str) -> None:
        """Drop what is kept about a deleted backend."""
        self._locks.pop((namespace, name), None)
        self.reconciled.pop((namespace, name), None)
        self.applied_keys.pop((namespace, name), None)
        self.skipped_children.pop((namespace, name), None)
        self.last_status.pop((namespace, name), None)
        self.divisions.pop((namespace, name), None)
        self.usage.pop((namespace, name), None)
        self.metrics.forget(namespace, name)


Key = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Watched:
    """What the operator's watches (kopf indexes) hold, by (namespace, name); a probe tick reads these.

    `secrets` has only Secrets labelled for watching; a Secret or Deployment not found here is read from
    the API instead (not watched, or its watch event has not arrived yet). Pods are by backend name.
    HPAs are watched so a probe tick mirrors what the HPA controller last wrote without a read.
    """

    secrets: Mapping[Key, Collection[Mapping[str, KeyDigest]]]
    deployments: Mapping[Key, Collection[DeploymentFacts]]
    pods: Mapping[Key, Collection[Mapping[str, Any]]]
    autoscalers: Mapping[Key, Collection[HpaFacts]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a reconcile or refresh did, for the handler to log, post and count."""

    changed: tuple[applying.Applied, ...] = ()
    notices: tuple[events.Notice, ...] = ()
    status_written: bool = False
    spec_problems: tuple[str, ...] = ()


def _meta(body: Body) -> tuple[str, str, int]:
    metadata = body.get("metadata") or {}
    return str(metadata["namespace"]), str(metadata["name"]), int(metadata.get("generation") or 0)


def stored_status(body: Body) -> api.TTSBackendStatus | None:
    """The status as stored, or None when there is none (or it is not ours)."""
    raw = dict(body.get("status") or {})
    raw.pop("kopf", None)
    if not raw:
        return None
    try:
        return api.TTSBackendStatus.model_validate(
            {
                **raw,
                "conditions": [
                    c.model_dump(by_alias=True) for c in conditions.parse_conditions(raw.get("conditions"))
                ],
            }
        )
    except ValueError:
        return None


async def read_secret(
    client: kube.KubeClient, namespace: str, ref: api.SecretKeyRef, *, single: bool = False
) -> SecretFacts:
    """A referenced Secret key as facts: only its fingerprint is kept.

    Listed by name within the Secrets labelled for watching, never fetched by name: a Secret without
    the label stays invisible to the operator, as its watch and the docs promise (SecretMissing).
    """
    body = await watched_secret(client, namespace, ref.name)
    return SecretFacts.from_secret(ref.name, ref.key, body, single=single)


async def watched_secret(client: kube.KubeClient, namespace: str, name: str) -> dict[str, Any] | None:
    """A Secret labelled for watching, listed by name (never fetched by name: RBAC cannot scope `get`
    by label, so the operator holds no `get` on Secrets and an unlabelled one stays invisible)."""
    listed = await client.list(
        kube.SECRETS, namespace, label_selector=WATCHED_SECRETS, field_selector=f"metadata.name={name}"
    )
    return next((item for item in listed if item.get("metadata", {}).get("name") == name), None)


async def _secret(
    client: kube.KubeClient,
    namespace: str,
    ref: api.SecretKeyRef,
    watched: Watched | None,
    *,
    single: bool = False,
) -> SecretFacts:
    for keys in watched.secrets.get((namespace, ref.name), ()) if watched is not None else ():
        return SecretFacts.from_fingerprints(ref.name, ref.key, keys, single=single)
    return await read_secret(client, namespace, ref, single=single)


async def _deployment(
    client: kube.KubeClient, namespace: str, name: str, watched: Watched | None
) -> DeploymentFacts | None:
    for facts in watched.deployments.get((namespace, name), ()) if watched is not None else ():
        return facts
    body = await client.get_or_none(kube.DEPLOYMENTS, namespace, name)
    return DeploymentFacts.from_deployment(body) if body is not None else None


async def _autoscaler(
    client: kube.KubeClient, namespace: str, name: str, watched: Watched | None
) -> HpaFacts | None:
    for facts in watched.autoscalers.get((namespace, name), ()) if watched is not None else ():
        return facts
    body = await client.get_or_none(kube.HPAS, namespace, name)
    return HpaFacts.from_hpa(body) if body is not None else None


async def _probe(
    runtime: Runtime, namespace: str, backend: api.TTSBackend, watched: Watched | None
) -> tuple[list[Mapping[str, Any]], tuple[dict[str, Any], ...]]:
    if watched is not None:
        pods: list[Mapping[str, Any]] = list(watched.pods.get((namespace, backend.metadata.name), ()))
    else:
        selector = rendering.selector_string(backend)
        pods = list(await runtime.kube.list(kube.PODS, namespace, label_selector=selector))
    result = await runtime.prober.probe(pods)
    if result.failures:
        runtime.metrics.probe_failures.inc(result.failures)
    return pods, result.reports


async def reconcile(runtime: Runtime, body: Body, *, watched: Watched | None = None) -> Outcome:
    """Bring the children in line with the spec, then refresh the status.

    The key Secret and the children are read from the API (what is written rests on fresh reads);
    the status refresh that follows takes pods and the client-token Secret from `watched`.
    """
    namespace, name, generation = _meta(body)
    problems = tuple(api.validate_name(name) + api.validate_spec(body.get("spec") or {}))
    if problems:
        return await _write_invalid(runtime, body, problems)
    backend = api.TTSBackend.from_body(dict(body))
    owner = rendering.OwnerRef.of(backend)
    key = await read_secret(runtime.kube, namespace, backend.spec.deepgram.api_key_secret_ref, single=True)
    manifests = rendering.render_children(backend, owner, key.fingerprint, runtime.settings.cluster_network)
    applied = []
    for manifest in manifests:
        try:
            applied.append(await applying.apply_child(runtime.kube, manifest))
        except errors.PermanentApiError as exc:
            # The API refused a child the spec rendered (a 422 for what the CRD cannot check, or a
            # 403/404): the spec needs a person, so it is reported like an invalid spec, not retried.
            refused = f"{manifest['kind']} {manifest['metadata']['name']} refused by the API server: {exc}"
            return await _write_invalid(runtime, body, (refused,))
    applied += await applying.prune_children(runtime.kube, namespace, name, owner.uid, manifests)
    runtime.skipped_children[(namespace, name)] = tuple(a.problem for a in applied if a.problem)
    deployment = next((a.body for a in applied if a.kind == "Deployment"), None)
    hpa = next((a.body for a in applied if a.kind == "HorizontalPodAutoscaler"), None)
    outcome = await refresh_status(
        runtime, body, backend=backend, key=key, deployment=deployment, hpa=hpa, watched=watched
    )
    runtime.reconciled[(namespace, name)] = generation
    runtime.applied_keys[(namespace, name)] = key
    changed = tuple(
        a for a in applied if a.outcome not in (applying.Outcome.UNCHANGED, applying.Outcome.SKIPPED)
    )
    notices = outcome.notices
    if changed:
        summary = ", ".join(f"{a.kind} {a.name} {a.outcome}" for a in changed)
        notices = (events.Notice(events.EventType.NORMAL, events.Reason.RECONCILED, summary), *notices)
    return Outcome(changed=changed, notices=notices, status_written=outcome.status_written)


async def refresh_status(
    runtime: Runtime,
    body: Body,
    *,
    backend: api.TTSBackend | None = None,
    key: SecretFacts | None = None,
    deployment: Body | None = None,
    hpa: Body | None = None,
    watched: Watched | None = None,
) -> Outcome:
    """Observe the Deployment, the HPA, the key and the pods; write the status if it changed.

    A reconcile passes what it just read and applied (and the shares ConfigMap is read afresh); a probe
    tick passes `watched`, so an idle backend costs no API reads (only /statusz requests to its pods).
    """
    namespace, name, generation = _meta(body)
    if backend is None and runtime.reconciled.get((namespace, name)) != generation:
        return Outcome()  # not reconciled at this generation yet: the reconcile writes the status
    if backend is None:
        if api.validate_spec(body.get("spec") or {}):
            return Outcome()  # the reconcile reported it; probing a broken spec tells nothing new
        backend = api.TTSBackend.from_body(dict(body))
    client = runtime.kube
    if key is None:
        key = await _secret(client, namespace, backend.spec.deepgram.api_key_secret_ref, watched, single=True)
    tokens_ref = backend.spec.auth.client_tokens_secret_ref if backend.spec.auth.enabled else None
    tokens = await _secret(client, namespace, tokens_ref, watched) if tokens_ref is not None else None
    if deployment is not None:
        rollout: DeploymentFacts | None = DeploymentFacts.from_deployment(deployment)
    else:
        rollout = await _deployment(client, namespace, name, watched)
    pods, statusz = await _probe(runtime, namespace, backend, watched)
    divided = await share_writing.publish(
        client, runtime.divisions, backend, pods, statusz, fresh_read=deployment is not None
    )
    autoscaled = backend.spec.autoscaling is not None
    autoscaler: HpaFacts | None = None
    if hpa is not None:
        autoscaler = HpaFacts.from_hpa(hpa)
    elif autoscaled:
        autoscaler = await _autoscaler(client, namespace, name, watched)
    facts = FleetFacts(
        generation=generation,
        config_hash=rendering.config_hash(backend.spec),
        deepgram_key=key,
        client_tokens=tokens,
        deployment=rollout,
        statusz=statusz,
        skipped_children=runtime.skipped_children.get((namespace, name), ()),
        autoscaled=autoscaled,
        hpa=autoscaler,
    )
    endpoint = rendering.service_endpoint(backend, runtime.settings.cluster_domain)
    outcome = await _write_status(runtime, body, facts, rendering.selector_string(backend), endpoint)
    await _write_usage(runtime, body, backend, statusz)
    if divided is None:
        return outcome
    return replace(outcome, notices=(*outcome.notices, divided))


async def _write_usage(
    runtime: Runtime, body: Body, backend: api.TTSBackend, statusz: tuple[dict[str, Any], ...]
) -> None:
    """Count the characters the pods billed since the last probe into status.usage (written apart)."""
    namespace, name, _ = _meta(body)
    previous = runtime.usage.get((namespace, name))
    if previous is None:
        stored = (body.get("status") or {}).get(api.USAGE_FIELD)
        try:
            previous = api.UsageStatus.model_validate(stored) if stored else None
        except ValueError:
            previous = None  # not ours to trust: counting starts afresh
    price = backend.spec.deepgram.price_per_thousand_characters
    usage = metering.next_usage(previous, statusz, price, runtime.clock())
    wanted = usage.model_dump(mode="json", by_alias=True, exclude_none=True)
    if previous is None or wanted != previous.model_dump(mode="json", by_alias=True, exclude_none=True):
        patch = {"status": {api.USAGE_FIELD: wanted}}
        await runtime.kube.merge_patch(kube.TTSBACKENDS, namespace, name, patch, subresource="status")
        runtime.metrics.status_writes.inc()
    runtime.usage[(namespace, name)] = usage


async def _write_invalid(runtime: Runtime, body: Body, problems: tuple[str, ...]) -> Outcome:
    generation = _meta(body)[2]
    previous = stored_status(body)
    fingerprint = previous.credentials.current_fingerprint if previous and previous.credentials else None
    facts = FleetFacts(
        generation=generation,
        config_hash=(previous.config_hash if previous else None) or "",
        deepgram_key=SecretFacts("", "", SecretState.PRESENT, fingerprint),
        spec_problems=problems,
    )
    selector = (previous.selector if previous else None) or ""
    endpoint = (previous.endpoint if previous else None) or ""
    outcome = await _write_status(runtime, body, facts, selector, endpoint)
    return Outcome(notices=outcome.notices, status_written=outcome.status_written, spec_problems=problems)


async def _write_status(
    runtime: Runtime, body: Body, facts: FleetFacts, selector: str, endpoint: str
) -> Outcome:
    namespace, name, generation = _meta(body)
    previous = runtime.last_status.get((namespace, name)) or stored_status(body)
    computed = status.compute_status(
        facts,
        previous.conditions if previous else (),
        runtime.clock(),
        selector=selector,
        endpoint=endpoint,
    )
    current = api.TTSBackendStatus.model_validate(computed)
    stored = dict(body.get("status") or {})
    stored.pop("kopf", None)  # not ours to remove
    stored.pop(api.KEY_ROTATION_FIELD, None)  # the key rotator's, written apart
    stored.pop(api.USAGE_FIELD, None)  # the usage step's, written apart
    patch = status.merge_patch(stored, computed)
    written = patch is not None
    if patch is not None:
        await runtime.kube.merge_patch(
            kube.TTSBACKENDS, namespace, name, {"status": patch}, subresource="status"
        )
        runtime.metrics.status_writes.inc()
    runtime.last_status[(namespace, name)] = current
    ready = status.condition_of(current, api.ConditionType.READY)
    runtime.metrics.set_ready(
        namespace, name, ready.status.value if ready else "Unknown", status.is_converged(current, generation)
    )
    rollout = current.credentials
    runtime.metrics.set_credential_rollout(
        namespace, name, rollout.complete if rollout and rollout.pods else None
    )
    return Outcome(notices=tuple(events.transitions(previous, current)), status_written=written)
