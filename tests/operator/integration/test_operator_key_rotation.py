"""Scheduled key rotation against the emulator's key API, on a time-compressed schedule.

Stand-in pods follow the key Secret as the reload path does (they report the fingerprint of whatever
the Secret holds), and a speaker opens a fresh socket for every utterance with the key the pods hold
now, the whole time: a key deleted while a pod still holds it fails an utterance. The operator is
stopped and started between and inside rotations; every old key the operator minted is refused by the
emulator once its rotation is over, and no key it minted is left behind.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.operator.integration.conftest import (  # type: ignore[import-not-found]
    BACKENDS,
    DEPLOYMENTS,
    MERGE,
    NAMESPACE,
    SECRETS,
    OperatorFactory,
    StandInGateways,
    backend,
    events_with,
    fingerprint,
    get,
    ready_pod,
    secret,
)
from tests.support.helm import NAMESPACED_VALUES, Manifest, rbac_objects, render
from tests.support.servers import ServerProcess, running_emulator
from tests.support.speaking import SpeakTarget, connect, receive_frame, speak_and_flush
from tests.support.waiting import wait_until
from ttsfleet.operator import key_rotation

OWNER_KEY = "owner-key-for-rotation-tests"
PROJECT = "proj-rotation"
PODS = ("aura-en-a", "aura-en-b")
ROTATION_DEADLINE_S = 60.0


@pytest.fixture(scope="module")
def chart_rbac(helm: Any) -> list[Manifest]:
    """The chart's RBAC with `rbac.keyRotation` on, as a team that rotates keys installs it: the
    operator may then patch the key Secret, and still never `get` a Secret by name."""
    return rbac_objects(render(helm, [NAMESPACED_VALUES], ["rbac.keyRotation=true"]), [NAMESPACE])


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[ServerProcess]:
    with running_emulator(tmp_path, ["--api-key", OWNER_KEY], name="rotation-emulator") as server:
        yield server


@dataclass
class Deepgram:
    """The emulator's key API, as the project owner sees it."""

    server: ServerProcess
    http: httpx.AsyncClient

    def _url(self, key_id: str = "") -> str:
        return f"{self.server.base_url}/v1/projects/{PROJECT}/keys" + (f"/{key_id}" if key_id else "")

    async def create(self, comment: str, scopes: list[str]) -> dict[str, Any]:
        answer = await self.http.post(self._url(), json={"comment": comment, "scopes": scopes})
        answer.raise_for_status()
        body: dict[str, Any] = answer.json()
        return body

    async def exists(self, key_id: str) -> bool:
        return (await self.http.get(self._url(key_id))).status_code == 200

    async def minted_for_backend(self) -> set[str]:
        listed = (await self.http.get(self._url())).json()["api_keys"]
        prefix = key_rotation.comment_prefix(NAMESPACE, "aura-en")
        return {
            item["api_key"]["api_key_id"] for item in listed if item["api_key"]["comment"].startswith(prefix)
        }

    async def refuses(self, key: str) -> bool:
        target = SpeakTarget(self.server.ws_url, self.server.base_url, key)
        try:
            async with await connect(target):
                return False
        except websockets.InvalidStatus as refused:
            return refused.response.status_code == 401


@pytest.fixture
async def deepgram(emulator: ServerProcess) -> AsyncIterator[Deepgram]:
    async with httpx.AsyncClient(headers={"Authorization": f"Token {OWNER_KEY}"}, timeout=10.0) as http:
        yield Deepgram(emulator, http)


@dataclass
class Pods:
    """Stand-in pods that re-read the key Secret (unless paused), and the keys the Secret has held."""

    api: httpx.AsyncClient
    gateways: StandInGateways
    config_hash: str = ""
    following: bool = True
    key: str = ""
    seen: list[str] = field(default_factory=list)

    async def follow(self) -> None:
        while True:
            body = await get(self.api, f"{SECRETS}/deepgram")
            value = base64.b64decode(body["data"]["api-key"]).decode() if body else ""
            if value not in self.seen:
                self.seen.append(value)
            if self.following and value and self.config_hash:
                self.key = value
                for pod in PODS:
                    self.gateways.report(pod, fingerprint=fingerprint(value), config_hash=self.config_hash)
            await asyncio.sleep(0.05)  # the kubelet's refresh of a mounted Secret, compressed


@dataclass
class Speaker:
    """Speaks one utterance per fresh socket with the key the pods hold, until stopped."""

    server: ServerProcess
    pods: Pods
    spoken: int = 0
    failures: list[str] = field(default_factory=list)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    @contextlib.asynccontextmanager
    async def speaking(self) -> AsyncIterator[None]:
        """Speak in the background; on exit, finish the utterance in flight (never cancel a socket)."""
        self.stopping.clear()
        task = asyncio.create_task(self.run())
        try:
            yield
        finally:
            self.stopping.set()
            await task

    async def run(self) -> None:
        while not self.stopping.is_set():
            key = self.pods.key
            try:
                async with await connect(SpeakTarget(self.server.ws_url, self.server.base_url, key)) as ws:
                    await receive_frame(ws)
                    received = await speak_and_flush(ws, "The key rotates while we speak.")
                if received.types[-1] != "Flushed":
                    self.failures.append(f"utterance ended with {received.types[-1]}")
                self.spoken += 1
            except websockets.InvalidStatus as refused:
                self.failures.append(f"refused {refused.response.status_code}")
            await asyncio.sleep(0.05)  # an agent's pace between utterances; the embedded API shares this loop


def managed(server: ServerProcess, **overrides: Any) -> dict[str, Any]:
    return backend(
        replicas=2,
        keyManagement={
            "adminKeySecretRef": {"name": "deepgram-admin"},
            "projectId": PROJECT,
            "managementUrl": server.base_url,
            "intervalSeconds": 2,
            "gracePeriodSeconds": 1,
            "expirySlackSeconds": 60,
            **overrides,
        },
    )


async def _key_rotation(api: httpx.AsyncClient) -> dict[str, Any]:
    body = await get(api, f"{BACKENDS}/aura-en")
    return dict(((body or {}).get("status") or {}).get("keyRotation") or {})


async def rotated(api: httpx.AsyncClient, count: int) -> dict[str, Any] | None:
    """The record once `count` rotations are complete and the previous key is deleted."""
    record = await _key_rotation(api)
    done = record.get("rotations", 0) >= count and not record.get("retiringKeyId")
    return record if done and not record.get("pendingKeyId") else None


@contextlib.asynccontextmanager
async def background(*runs: Any) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(run()) for run in runs]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def setup_fleet(api: httpx.AsyncClient, deepgram: Deepgram, **overrides: Any) -> str:
    """Secrets (a hand-made speaking key, a keys:write admin key) and a managed backend; the admin key."""
    human = await deepgram.create("made by hand", ["usage:write"])
    admin = await deepgram.create("rotation admin", ["keys:write"])
    (await api.post(SECRETS, json=secret("deepgram", "api-key", human["key"]))).raise_for_status()
    admin_secret = secret("deepgram-admin", "admin-key", admin["key"])
    (await api.post(SECRETS, json=admin_secret)).raise_for_status()
    (await api.post(BACKENDS, json=managed(deepgram.server, **overrides))).raise_for_status()
    for pod in PODS:
        await ready_pod(api, pod)
    return str(admin["key"])


@pytest.mark.timeout(300)  # four rotations and three operator starts on a time-compressed schedule
async def test_scheduled_rotations_keep_every_utterance_and_refuse_each_old_key(
    api: httpx.AsyncClient,
    gateways: StandInGateways,
    operator_running: OperatorFactory,
    deepgram: Deepgram,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    admin_key = await setup_fleet(api, deepgram)
    pods = Pods(api, gateways)
    speaker = Speaker(deepgram.server, pods)
    async with background(pods.follow):
        async with operator_running():
            status = await wait_until(lambda: _status(api), what="the first status")
            pods.config_hash = status["configHash"]
            await wait_until(lambda: pods.key, what="the pods holding a key")
            async with speaker.speaking():
                await wait_until(lambda: rotated(api, 1), ROTATION_DEADLINE_S, "the first rotation")
                human = pods.seen[0]
                assert not await deepgram.refuses(human)  # not minted by the operator: left to its owner

            # A restart while the pods have not picked up the new key yet (waiting for pods).
            pods.following = False
            async with speaker.speaking():
                record = await wait_until(
                    lambda: _in_phase(api, "Installed"), ROTATION_DEADLINE_S, "Installed"
                )
            assert record["reason"] in ("KeyInstalled", "WaitingForPods")
        pods.following = True
        async with speaker.speaking(), operator_running():
            await wait_until(lambda: rotated(api, 2), ROTATION_DEADLINE_S, "the second rotation")
            await _old_keys_refused(deepgram, pods)
            # A restart during the grace period of the previous key.
            await wait_until(
                lambda: _in_phase(api, "Grace"), ROTATION_DEADLINE_S, "the third rotation's grace"
            )
        async with speaker.speaking(), operator_running():
            record = await wait_until(lambda: rotated(api, 3), ROTATION_DEADLINE_S, "the third rotation")
            await _old_keys_refused(deepgram, pods)
            # An on-demand rotation, with the schedule moved far out so that it is the last one.
            patch = {
                "metadata": {"annotations": {"ttsfleet.io/rotate-key": "now"}},
                "spec": {"keyManagement": {"intervalSeconds": 3600}},
            }
            (await api.patch(f"{BACKENDS}/aura-en", json=patch, headers=MERGE)).raise_for_status()
            count = record["rotations"] + 1
            record = await wait_until(lambda: _requested_done(api, count), ROTATION_DEADLINE_S, "on demand")
    await _old_keys_refused(deepgram, pods, final=True)
    assert speaker.failures == [], speaker.failures
    assert speaker.spoken > 20
    assert await deepgram.minted_for_backend() == {record["currentKeyId"]}  # no key left behind
    for reason in ("DeepgramKeyMinted", "DeepgramKeyInstalled", "DeepgramKeyRotated", "DeepgramKeyDeleted"):
        assert await events_with(api, reason), reason
    await _admin_key_nowhere(api, admin_key)
    # The operator's log (its thread logs into the same handlers); the test's own websockets client
    # logs its headers at DEBUG and is left out.
    logged = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("websockets"))
    assert "key rotation of voice/aura-en: promote" in logged
    for key in (admin_key, *pods.seen):
        assert key not in logged


async def test_a_restart_after_minting_discards_the_uninstalled_key_and_the_orphans(
    api: httpx.AsyncClient,
    gateways: StandInGateways,
    operator_running: OperatorFactory,
    deepgram: Deepgram,
) -> None:
    comment = key_rotation.comment_for(NAMESPACE, "aura-en", datetime.now(UTC))
    recorded = await deepgram.create(comment, ["usage:write"])  # minted, recorded, never installed
    orphan = await deepgram.create(comment, ["usage:write"])  # minted, the operator died before recording
    await setup_fleet(api, deepgram, intervalSeconds=3600)
    record = {
        "phase": "Minted",
        "pendingKeyId": recorded["api_key_id"],
        "pendingFingerprint": fingerprint(recorded["key"]),
    }
    patch = {"status": {"keyRotation": record}}
    (await api.patch(f"{BACKENDS}/aura-en/status", json=patch, headers=MERGE)).raise_for_status()
    pods = Pods(api, gateways)
    async with background(pods.follow), operator_running():
        status = await wait_until(lambda: _status(api), what="the first status")
        pods.config_hash = status["configHash"]
        done = await wait_until(lambda: rotated(api, 1), ROTATION_DEADLINE_S, "the rotation")
    assert not await deepgram.exists(recorded["api_key_id"])
    assert not await deepgram.exists(orphan["api_key_id"])
    assert await deepgram.minted_for_backend() == {done["currentKeyId"]}
    assert await events_with(api, "DeepgramKeyDiscarded")


async def test_a_failing_key_api_is_retried_with_backoff_and_reported(
    api: httpx.AsyncClient, operator_running: OperatorFactory, deepgram: Deepgram
) -> None:
    await setup_fleet(api, deepgram)
    bad_admin = {"data": {"admin-key": base64.b64encode(b"revoked-admin-key").decode()}}
    (await api.patch(f"{SECRETS}/deepgram-admin", json=bad_admin, headers=MERGE)).raise_for_status()
    async with operator_running():
        record = await wait_until(
            lambda: _failed_times(api, 2), ROTATION_DEADLINE_S, "two failed tries in a row"
        )
    assert record["reason"] == "KeyApiFailed"
    assert record["lastError"] == "mint failed: GET keys: HTTP 401 INVALID_AUTH"
    assert await events_with(api, "DeepgramKeyRotationFailed")
    assert await deepgram.minted_for_backend() == set()


async def test_an_admin_key_in_the_mounted_secret_is_refused(
    api: httpx.AsyncClient, operator_running: OperatorFactory, deepgram: Deepgram
) -> None:
    (await api.post(SECRETS, json=secret("deepgram", "api-key", "k"))).raise_for_status()
    shared = managed(deepgram.server, adminKeySecretRef={"name": "deepgram", "key": "admin-key"})
    (await api.post(BACKENDS, json=shared)).raise_for_status()
    async with operator_running():
        record = await wait_until(lambda: _key_rotation(api), what="the key rotation record")
        # kopf posts Events from a queue: wait for it before the operator stops.
        await wait_until(lambda: events_with(api, "AdminKeyShared"), what="the AdminKeyShared Event")
    assert record["reason"] == "AdminKeyShared"


async def _status(api: httpx.AsyncClient) -> dict[str, Any] | None:
    body = await get(api, f"{BACKENDS}/aura-en")
    status = dict((body or {}).get("status") or {})
    return status if status.get("configHash") else None


async def _in_phase(api: httpx.AsyncClient, phase: str) -> dict[str, Any] | None:
    record = await _key_rotation(api)
    return record if record.get("phase") == phase else None


async def _failed_times(api: httpx.AsyncClient, times: int) -> dict[str, Any] | None:
    record = await _key_rotation(api)
    return record if record.get("failures", 0) >= times else None


async def _requested_done(api: httpx.AsyncClient, count: int) -> dict[str, Any] | None:
    record = await rotated(api, count)
    return record if record and record.get("handledRequest") == "now" else None


async def _old_keys_refused(deepgram: Deepgram, pods: Pods, *, final: bool = False) -> None:
    """Keys the operator put in the Secret before the current one are refused at the handshake.

    While the operator runs, the next rotation may already have installed a newer key, so the key
    before the newest may still be in its grace period; once the schedule is quiet, every one is checked.
    """
    minted_before = pods.seen[1:-1] if final else pods.seen[1:-2]
    for old in minted_before:
        assert await deepgram.refuses(old), "an old key still opens sockets"


async def _admin_key_nowhere(api: httpx.AsyncClient, admin_key: str) -> None:
    backend_body = await get(api, f"{BACKENDS}/aura-en")
    events = (await api.get(f"/api/v1/namespaces/{NAMESPACE}/events")).json()
    deployment = await get(api, f"{DEPLOYMENTS}/aura-en")
    for what in (backend_body, events, deployment):
        assert admin_key not in json.dumps(what)
    assert "deepgram-admin" not in json.dumps(deployment)  # never mounted into the gateway pods
