"""The I/O of scheduled key rotation: a kopf timer per managed backend runs `key_rotation.next_step`.

Each tick reads the backend and the two Secrets fresh (a stale watch body would repeat a step), takes
the step the state machine names, records the outcome in `status.keyRotation` (a key's id before the
key is written anywhere), and reports it as an Event and in metrics. The admin key is read for the
call and dropped; the minted key lives in this process only until it is in the key Secret.
"""

from __future__ import annotations

import base64
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any, cast

import httpx
import kopf
from prometheus_client import Counter, Gauge

from ttsfleet import fingerprints
from ttsfleet.operator import api, errors, kube, reconciling
from ttsfleet.operator import key_rotation as machine
from ttsfleet.operator.deepgram_keys import DeepgramKeys, KeyApiError, MintedKey
from ttsfleet.operator.facts import SecretFacts, SecretState, _secret_value
from ttsfleet.operator.rendering.meta import WATCHED_SECRETS

Action = machine.Action
Record = api.KeyRotationStatus
BackendKey = tuple[str, str]
# Steps per tick at most: a mint is followed at once by its install, a promotion by nothing.
MAX_STEPS_PER_TICK = 4

EVENT_REASONS = {
    Action.MINT: "DeepgramKeyMinted",
    Action.INSTALL: "DeepgramKeyInstalled",
    Action.PROMOTE: "DeepgramKeyRotated",
    Action.RETIRE: "DeepgramKeyDeleted",
    Action.DISCARD: "DeepgramKeyDiscarded",
}
FAILED_REASON = "DeepgramKeyRotationFailed"
BLOCKED_REASONS = ("AdminKeySecretMissing", "AdminKeyShared")

log = logging.getLogger(__name__)


class KeyRotationMetrics:
    """Per-backend series of the rotation, on the operator's registry."""

    def __init__(self, registry: Any) -> None:
        self.steps = Counter(
            "ttsfleet_backend_key_rotation_steps_total",
            "Key rotation steps taken (mint, install, discard, promote, retire) by outcome (ok, failed).",
            ["namespace", "name", "step", "outcome"],
            registry=registry,
        )
        self.failures = Gauge(
            "ttsfleet_backend_key_rotation_failures",
            "Failed key-management calls in a row (0 after a success).",
            ["namespace", "name"],
            registry=registry,
        )
        self.next_rotation = Gauge(
            "ttsfleet_backend_key_rotation_next_timestamp_seconds",
            "When the next scheduled key rotation starts (Unix time).",
            ["namespace", "name"],
            registry=registry,
        )
        self.last_rotation = Gauge(
            "ttsfleet_backend_key_rotation_last_success_timestamp_seconds",
            "When the last key rotation completed (Unix time).",
            ["namespace", "name"],
            registry=registry,
        )

    def observe(self, namespace: str, name: str, record: Record) -> None:
        self.failures.labels(namespace, name).set(record.failures)
        if record.next_rotation is not None:
            self.next_rotation.labels(namespace, name).set(record.next_rotation.timestamp())
        if record.last_rotation is not None:
            self.last_rotation.labels(namespace, name).set(record.last_rotation.timestamp())

    def forget(self, namespace: str, name: str) -> None:
        for gauge in (self.failures, self.next_rotation, self.last_rotation):
            with contextlib.suppress(KeyError):
                gauge.remove(namespace, name)


def stored_record(body: reconciling.Body) -> Record | None:
    raw = (body.get("status") or {}).get(api.KEY_ROTATION_FIELD)
    if not raw:
        return None
    try:
        return Record.model_validate(raw)
    except ValueError:
        return None


def _stored_rollout(body: reconciling.Body) -> api.CredentialRollout | None:
    raw = (body.get("status") or {}).get("credentials")
    try:
        return api.CredentialRollout.model_validate(raw) if raw else None
    except ValueError:
        return None


@dataclass
class KeyRotator:
    """Runs rotation ticks for every managed backend of one operator."""

    runtime: reconciling.Runtime
    metrics: KeyRotationMetrics
    held: dict[BackendKey, MintedKey] = field(default_factory=dict)
    _http: httpx.AsyncClient | None = None

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient()
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def tick(self, namespace: str, name: str) -> None:
        """Take the steps due now for one backend (under the backend's lock)."""
        async with self.runtime.lock(namespace, name):
            body = await self.runtime.kube.get_or_none(kube.TTSBACKENDS, namespace, name)
            if body is None or api.validate_spec(body.get("spec") or {}):
                return
            backend = api.TTSBackend.from_body(dict(body))
            spec = backend.spec.key_management
            if spec is None:
                return
            record = stored_record(body)
            for _ in range(MAX_STEPS_PER_TICK):
                record, more = await self._step(body, backend, spec, record)
                if not more:
                    break

    async def _step(
        self,
        body: reconciling.Body,
        backend: api.TTSBackend,
        spec: api.KeyManagementSpec,
        record: Record | None,
    ) -> tuple[Record | None, bool]:
        namespace, name = backend.metadata.namespace or "", backend.metadata.name
        client = self.runtime.kube
        key_ref = backend.spec.deepgram.api_key_secret_ref
        if spec.admin_key_secret_ref.name == key_ref.name:
            message = "the admin key must not share the key Secret (that Secret is mounted into the pods)"
            await self._blocked(body, record, "AdminKeyShared", message)
            return record, False
        admin_body = await reconciling.watched_secret(client, namespace, spec.admin_key_secret_ref.name)
        admin_key = _secret_value(admin_body, spec.admin_key_secret_ref.key) if admin_body else None
        if not admin_key or not admin_key.strip():
            ref = spec.admin_key_secret_ref
            await self._blocked(
                body,
                record,
                "AdminKeySecretMissing",
                f"no key {ref.key!r} in a Secret {ref.name} labelled {WATCHED_SECRETS}",
            )
            return record, False
        key_secret = await reconciling.watched_secret(client, namespace, key_ref.name)
        key_facts = SecretFacts.from_secret(key_ref.name, key_ref.key, key_secret)
        held = self.held.get((namespace, name))
        observed = machine.Observed(
            secret_fingerprint=key_facts.fingerprint,
            rollout=_stored_rollout(body),
            requested=((body.get("metadata") or {}).get("annotations") or {}).get(api.ROTATE_ANNOTATION),
            holding_pending=held is not None
            and record is not None
            and held.api_key_id == record.pending_key_id,
        )
        now = self.runtime.clock()
        step = machine.next_step(spec, record, observed, now)
        if step.action is Action.WAIT:
            news = record is not None and (record.reason, record.message) != (step.reason, step.message)
            if record is not None and news and step.reason != "RetryBackoff":
                record = record.model_copy(update={"reason": step.reason, "message": step.message})
                await self._write(namespace, name, record)
            if record is not None:
                self.metrics.observe(namespace, name, record)
            return record, False
        if step.action is Action.INSTALL and key_facts.state is SecretState.SECRET_MISSING:
            failed = machine.after_failure(record, step, f"Secret {key_ref.name} does not exist", now)
            await self._report_failure(body, namespace, name, step, failed)
            return failed, False
        keys = DeepgramKeys(self.http, spec.management_url, spec.project_id)
        try:
            updated = await self._act(step, keys, admin_key.strip(), backend, spec, record, observed, now)
        except (KeyApiError, errors.ApiError) as error:
            failed = machine.after_failure(record, step, _safe(error), now)
            await self._report_failure(body, namespace, name, step, failed)
            return failed, False
        await self._write(namespace, name, updated)
        self.metrics.steps.labels(namespace, name, step.action.value, "ok").inc()
        self.metrics.observe(namespace, name, updated)
        _event(body, "Normal", EVENT_REASONS[step.action], updated.message)
        log.info("key rotation of %s/%s: %s (%s)", namespace, name, step.action.value, updated.message)
        return updated, step.action in (Action.MINT, Action.DISCARD, Action.RETIRE)

    async def _act(
        self,
        step: machine.Step,
        keys: DeepgramKeys,
        admin_key: str,
        backend: api.TTSBackend,
        spec: api.KeyManagementSpec,
        record: Record | None,
        observed: machine.Observed,
        now: Any,
    ) -> Record:
        namespace, name = backend.metadata.namespace or "", backend.metadata.name
        if step.action is Action.MINT:
            for orphan in machine.orphans(await keys.list(admin_key), record, namespace, name):
                await keys.delete(admin_key, orphan)
                log.info("key rotation of %s/%s: deleted orphaned key %s", namespace, name, orphan)
            assert step.expiration is not None
            minted = await keys.create(
                admin_key, machine.comment_for(namespace, name, now), list(spec.scopes), step.expiration
            )
            self.held[(namespace, name)] = minted
            fingerprint = fingerprints.fingerprint_secret(minted.secret)
            return machine.after_mint(
                record, step, minted.api_key_id, fingerprint, minted.expiration or step.expiration
            )
        assert record is not None
        if step.action is Action.INSTALL:
            minted = self.held[(namespace, name)]
            ref = backend.spec.deepgram.api_key_secret_ref
            data = {ref.key: base64.b64encode(minted.secret.encode()).decode()}
            await self.runtime.kube.merge_patch(kube.SECRETS, namespace, ref.name, {"data": data})
            self.held.pop((namespace, name), None)
            return machine.after_install(record, step)
        if step.action is Action.DISCARD:
            assert step.key_id is not None
            await keys.delete(admin_key, step.key_id)
            self.held.pop((namespace, name), None)
            return machine.after_discard(record, step)
        if step.action is Action.PROMOTE:
            return machine.after_promote(record, step, spec, observed.requested, now)
        assert step.action is Action.RETIRE
        assert step.key_id is not None
        await keys.delete(admin_key, step.key_id)
        return machine.after_retire(record, step)

    async def _blocked(
        self, body: reconciling.Body, record: Record | None, reason: str, message: str
    ) -> None:
        if record is not None and record.reason == reason:
            return
        metadata = body.get("metadata") or {}
        updated = (record or Record()).model_copy(update={"reason": reason, "message": message})
        await self._write(str(metadata["namespace"]), str(metadata["name"]), updated)
        _event(body, "Warning", reason, message)

    async def _report_failure(
        self, body: reconciling.Body, namespace: str, name: str, step: machine.Step, failed: Record
    ) -> None:
        self.metrics.steps.labels(namespace, name, step.action.value, "failed").inc()
        self.metrics.observe(namespace, name, failed)
        _event(body, "Warning", FAILED_REASON, f"{failed.last_error}; retry at {failed.retry_at}")
        log.warning("key rotation of %s/%s: %s", namespace, name, failed.last_error)
        try:
            await self._write(namespace, name, failed)
        except errors.ApiError as error:
            log.warning("key rotation of %s/%s: status not written: %s", namespace, name, _safe(error))

    async def _write(self, namespace: str, name: str, record: Record) -> None:
        # Every field is sent, None included: a merge patch removes what the step cleared.
        patch = {"status": {api.KEY_ROTATION_FIELD: record.model_dump(mode="json", by_alias=True)}}
        await self.runtime.kube.merge_patch(kube.TTSBACKENDS, namespace, name, patch, subresource="status")


def _safe(error: Exception) -> str:
    """An error as recorded: key-API errors are built key-free; API errors by class and status only."""
    if isinstance(error, KeyApiError):
        return str(error)
    status = getattr(error, "status", None)
    return f"{type(error).__name__}" + (f" (HTTP {status})" if status else "")


def _event(body: reconciling.Body, type_: str, reason: str, message: str) -> None:
    kopf.event(cast(kopf.Body, body), type=type_, reason=reason, message=message)


def register(registry: kopf.OperatorRegistry, runtime: reconciling.Runtime) -> KeyRotator:
    """Register the rotation timer, bound to `runtime`."""
    rotator = KeyRotator(runtime, KeyRotationMetrics(runtime.metrics.registry))

    @kopf.timer(
        api.GROUP,
        api.VERSION,
        api.PLURAL,
        interval=runtime.settings.probe_interval_s,
        when=lambda spec, **_: bool(spec.get("keyManagement")),
        registry=registry,
        id="rotate_key",
    )
    async def rotate_key(name: str, namespace: str | None, logger: kopf.Logger, **_: Any) -> None:
        try:
            await rotator.tick(str(namespace), name)
        except errors.ApiError as error:
            logger.info("key rotation tick failed, retried next tick: %s", _safe(error))

    @kopf.on.delete(
        api.GROUP, api.VERSION, api.PLURAL, registry=registry, id="forget_key_rotation", optional=True
    )
    def forget(name: str, namespace: str | None, **_: Any) -> None:
        rotator.held.pop((str(namespace), name), None)
        rotator.metrics.forget(str(namespace), name)

    @kopf.on.cleanup(registry=registry, id="close_key_rotation")
    async def close(**_: Any) -> None:
        await rotator.aclose()

    return rotator
