"""On the local fleet: the operator rotates the Deepgram key itself on a time-compressed schedule while
agents speak, and is SIGKILLed at each step of a rotation.

The operator acts as the chart's ServiceAccount with `rbac.keyRotation` on, mints keys through the
emulator's key API (Deepgram's paths and bodies), writes them into the key Secret, waits until every
real gateway pod serves with the new fingerprint, and deletes the previous key after the grace period.
After each rotation the previous key is refused by the emulator at the handshake; at the end no
utterance failed and the project holds only the current key and the admin key.

A module of its own: it starts its own fleet and leaves the backend's key managed.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import websockets

from tests.e2e.cluster import BACKENDS, Body, Cluster
from tests.e2e.conftest import NAME, NAMESPACE, LocalFleet
from tests.e2e.load import SpeakingLoad
from tests.e2e.test_e2e_fleet import every_pod_runs, while_speaking
from tests.support.speaking import SpeakTarget, connect
from tests.support.waiting import eventually
from ttsfleet.devcluster import manifests, realfleet
from ttsfleet.fingerprints import fingerprint_secret

# A whole load cycle or a fleet of its own: longer than the suite-wide 120 s, bounded all the same.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

BACKEND_PATH = f"{BACKENDS.format(namespace=NAMESPACE)}/{NAME}"
KEY_SECRET = f"/api/v1/namespaces/{NAMESPACE}/secrets/aura-en-deepgram"
OPERATOR_ROLE = f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{realfleet.RELEASE}"
PROJECT = "proj-e2e-rotation"
# The emulator runs in open mode: any key may manage keys until one is created; the project owner's.
OWNER_KEY = "e2e-project-owner"
# Compressed: a rotation (install, the pods' reload, the probe) takes a few seconds here; the slack keeps
# every key valid through the operator's restarts.
KEY_MANAGEMENT = {
    "adminKeySecretRef": {"name": "deepgram-admin"},
    "projectId": PROJECT,
    "intervalSeconds": 8,
    "gracePeriodSeconds": 3,
    "expirySlackSeconds": 600,
}
ROTATION_DEADLINE_S = 90.0


def emulator_http(local_fleet: LocalFleet) -> str:
    assert local_fleet.state.upstream_url is not None
    return str(local_fleet.state.upstream_url).replace("ws://", "http://", 1)


def key_rotation(body: Body) -> dict[str, Any]:
    return dict((body.get("status") or {}).get("keyRotation") or {})


def rotated(count: int) -> Callable[[Body], bool]:
    """`count` rotations complete, the previous key deleted, every pod on the new key."""

    def done(body: Body) -> bool:
        record = key_rotation(body)
        credentials = (body.get("status") or {}).get("credentials") or {}
        return (
            record.get("rotations", 0) >= count
            and not record.get("pendingKeyId")
            and not record.get("retiringKeyId")
            and every_pod_runs(body, str(credentials.get("currentFingerprint")))
        )

    return done


def in_phase(
    phase: str, also: Callable[[dict[str, Any]], bool] = lambda record: True
) -> Callable[[Body], bool]:
    return lambda body: key_rotation(body).get("phase") == phase and also(key_rotation(body))


async def installed_key(cluster: Cluster) -> str:
    secret = await cluster.get(KEY_SECRET)
    assert secret is not None
    return base64.b64decode(secret["data"]["api-key"]).decode()


async def handshake_status(local_fleet: LocalFleet, key: str) -> int:
    """The HTTP status the emulator answers a speak handshake with `key` (101: accepted)."""
    assert local_fleet.state.upstream_url is not None
    try:
        async with await connect(
            SpeakTarget(local_fleet.state.upstream_url, emulator_http(local_fleet), key)
        ):
            return 101
    except websockets.InvalidStatus as refused:
        return refused.response.status_code


class Rotations:
    """Waits on the backend's rotations and checks the keys after each one."""

    def __init__(self, local_fleet: LocalFleet, cluster: Cluster) -> None:
        self.local_fleet = local_fleet
        self.cluster = cluster
        self.keys: list[str] = []  # the installed keys, in order
        self.discarded: list[str] = []  # ids of keys minted, then discarded after a restart

    async def wait(self, what: str, predicate: Callable[[Body], bool]) -> Body:
        return await self.cluster.wait_backend(NAMESPACE, NAME, predicate, ROTATION_DEADLINE_S, what)

    async def completed(self, count: int) -> Body:
        """Rotation `count` is over: every pod serves with its key, which the emulator has been spoken to
        with; the previous key is refused unless the operator did not mint it."""
        body = await self.wait(f"rotation {count} complete", rotated(count))
        key = await installed_key(self.cluster)
        fingerprint = fingerprint_secret(key)
        assert body["status"]["credentials"]["currentFingerprint"] == fingerprint
        assert key not in self.keys, "a rotation installed a key it had installed before"
        previous = self.keys[-1] if self.keys else None
        self.keys.append(key)
        stats_url = f"{emulator_http(self.local_fleet)}/_emulator/stats"
        await eventually(
            lambda: httpx.get(stats_url, timeout=5.0).json()["chars_by_key"].get(fingerprint, 0) > 0,
            30.0,
            f"the pods to speak to the emulator with the key of rotation {count}",
        )
        assert await handshake_status(self.local_fleet, key) == 101
        if previous is not None:
            expected = 401 if count > 1 else 101  # the first key was made by hand: left to its owner
            assert await handshake_status(self.local_fleet, previous) == expected, f"the key before {count}"
        return body

    async def kill_operator_when(self, what: str, predicate: Callable[[Body], bool]) -> Body:
        """SIGKILL the operator as soon as the backend's status shows `predicate`; a replacement starts."""
        body = await self.wait(what, predicate)
        self.local_fleet.kill_operator()
        self.local_fleet.start_operator()
        return body


def grants_secret_patch(rule: Body) -> bool:
    return "secrets" in rule.get("resources", ()) and "patch" in rule.get("verbs", ())


async def operator_rules(cluster: Cluster) -> list[Body]:
    """The rules of the operator's ClusterRole, which must let it patch Secrets (`rbac.keyRotation`)."""
    role = await cluster.get(OPERATOR_ROLE)
    assert role is not None
    rules = list(role.get("rules") or ())
    assert any(map(grants_secret_patch, rules)), "the operator may not patch Secrets: rbac.keyRotation is off"
    return rules


async def test_scheduled_rotations_survive_operator_kills_with_no_failed_utterance_or_leaked_key(
    local_fleet: LocalFleet, cluster: Cluster
) -> None:
    owner = httpx.AsyncClient(
        base_url=f"{emulator_http(local_fleet)}/v1/projects/{PROJECT}",
        headers={"Authorization": f"Token {OWNER_KEY}"},
        timeout=10.0,
    )
    async with owner:
        admin = (
            await owner.post("/keys", json={"comment": "rotation admin", "scopes": ["keys:write"]})
        ).json()
    admin_secret = manifests.secret("deepgram-admin", "admin-key", admin["key"], namespace=NAMESPACE)
    await cluster.apply(admin_secret)
    rules = await operator_rules(cluster)
    rotations = Rotations(local_fleet, cluster)

    async def rotate_and_kill(load: SpeakingLoad) -> None:
        rotations.keys.append(await installed_key(cluster))  # the hand-made key the backend started with
        management = {**KEY_MANAGEMENT, "managementUrl": emulator_http(local_fleet)}
        await cluster.patch(BACKEND_PATH, {"spec": {"keyManagement": management}})
        await rotations.completed(1)

        # Minted: the key is recorded, not yet installed. The Secret grant is withdrawn so that the
        # install fails and the rotation holds here; the operator dies holding the key in memory only.
        withdrawn = [rule for rule in rules if not grants_secret_patch(rule)]
        await cluster.patch(OPERATOR_ROLE, {"rules": withdrawn})
        minted = await rotations.kill_operator_when(
            "a minted key the operator may not install",
            in_phase("Minted", lambda record: record.get("failures", 0) >= 1),
        )
        assert key_rotation(minted)["lastError"].startswith("install failed"), key_rotation(minted)
        rotations.discarded.append(key_rotation(minted)["pendingKeyId"])
        await cluster.patch(OPERATOR_ROLE, {"rules": rules})
        await rotations.completed(2)
        await load.completed_at_least(3)

        # Installed: the key is in the Secret, the pods have yet to serve with it.
        await rotations.kill_operator_when(
            "rotation 3 installed", in_phase("Installed", lambda record: record.get("rotations") == 2)
        )
        await rotations.completed(3)
        await load.completed_at_least(3)

        # Grace: every pod serves with the new key; the previous one is deleted when the grace ends.
        await rotations.kill_operator_when(
            "rotation 4 in its grace period", in_phase("Grace", lambda record: record.get("rotations") == 4)
        )
        await rotations.completed(4)
        await load.completed_at_least(3)

    report = await while_speaking(local_fleet, rotate_and_kill)
    assert report.failures == [] and report.completed > 20, report

    body = await cluster.get(BACKEND_PATH)
    assert body is not None
    current = key_rotation(body)["currentKeyId"]
    async with httpx.AsyncClient(headers={"Authorization": f"Token {admin['key']}"}, timeout=10.0) as http:
        listed = (await http.get(f"{emulator_http(local_fleet)}/v1/projects/{PROJECT}/keys")).json()
    ids = {item["api_key"]["api_key_id"] for item in listed["api_keys"]}
    assert not ids & set(rotations.discarded), "the key minted before the restart was not deleted"
    assert ids == {current, admin["api_key_id"]}, "a key minted by the operator was left behind"
    for old in rotations.keys[1:-1]:
        assert await handshake_status(local_fleet, old) == 401
