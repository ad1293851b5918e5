"""Key management (PROTOCOL.md, "Key management"), auth modes, and the admin counters."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from tests.support.servers import ServerProcess, running_emulator
from tests.support.speaking import SpeakTarget, connect, receive_frame, speak_and_flush
from tests.support.waiting import eventually
from ttsfleet.fingerprints import fingerprint_secret

ADMIN_KEY = "admin-key-for-tests"
PROJECT = "proj-1"


@pytest.fixture(scope="module")
def strict_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """An emulator that accepts only ADMIN_KEY and the keys created through its API."""
    logs: Path = tmp_path_factory.mktemp("strict")
    with running_emulator(logs, ["--api-key", ADMIN_KEY], name="strict-emulator") as server:
        yield server


def _keys_url(server: ServerProcess, key_id: str = "") -> str:
    return f"{server.base_url}/v1/projects/{PROJECT}/keys" + (f"/{key_id}" if key_id else "")


def _admin() -> dict[str, str]:
    return {"Authorization": f"Token {ADMIN_KEY}"}


async def test_a_created_key_speaks_until_it_is_deleted(strict_emulator: ServerProcess) -> None:
    created = httpx.post(
        _keys_url(strict_emulator), headers=_admin(), json={"comment": "rotation", "scopes": ["usage:write"]}
    )
    assert created.status_code == 200
    body = created.json()
    assert set(body) >= {"api_key_id", "key", "comment", "scopes"}
    new_key = SpeakTarget(strict_emulator.ws_url, strict_emulator.base_url, body["key"])
    async with await connect(new_key) as open_socket:
        await receive_frame(open_socket)
        listed = httpx.get(_keys_url(strict_emulator), headers=_admin()).json()["api_keys"]
        assert [item["api_key"]["api_key_id"] for item in listed] == [body["api_key_id"]]
        assert "key" not in listed[0]["api_key"]  # the secret is shown once, at creation
        shown = httpx.get(_keys_url(strict_emulator, body["api_key_id"]), headers=_admin())
        assert shown.json()["item"]["member"]["api_key"]["comment"] == "rotation"

        deleted = httpx.delete(_keys_url(strict_emulator, body["api_key_id"]), headers=_admin())
        assert deleted.status_code == 200
        with pytest.raises(websockets.InvalidStatus) as refused:
            await connect(new_key)
        assert refused.value.response.status_code == 401
        # A socket opened before the deletion keeps working.
        assert (await speak_and_flush(open_socket, "Still speaking.")).types == ["Audio", "Flushed"]
    gone = httpx.get(_keys_url(strict_emulator, body["api_key_id"]), headers=_admin())
    assert gone.status_code == 404


async def test_strict_mode_refuses_unknown_keys(strict_emulator: ServerProcess) -> None:
    stranger = SpeakTarget(strict_emulator.ws_url, strict_emulator.base_url, "not-a-key")
    with pytest.raises(websockets.InvalidStatus) as refused:
        await connect(stranger)
    assert refused.value.response.status_code == 401


def test_key_api_needs_a_valid_key_and_a_well_formed_body(strict_emulator: ServerProcess) -> None:
    assert httpx.get(_keys_url(strict_emulator)).status_code == 401
    assert httpx.get(_keys_url(strict_emulator), headers={"Authorization": "Token nope"}).status_code == 401
    for bad in (
        {"scopes": ["x"]},
        {"comment": "c"},
        {"comment": "c", "scopes": []},
        {"comment": "c", "scopes": ["x"], "time_to_live_in_seconds": -5},
    ):
        response = httpx.post(_keys_url(strict_emulator), headers=_admin(), json=bad)
        assert response.status_code == 400, bad
        assert response.json()["err_msg"]
    assert httpx.delete(_keys_url(strict_emulator, "no-such-id"), headers=_admin()).status_code == 404


async def test_an_expired_key_is_refused(strict_emulator: ServerProcess) -> None:
    created = httpx.post(
        _keys_url(strict_emulator),
        headers=_admin(),
        json={"comment": "old", "scopes": ["usage:write"], "expiration_date": "2020-01-01T00:00:00Z"},
    ).json()
    with pytest.raises(websockets.InvalidStatus) as refused:
        await connect(SpeakTarget(strict_emulator.ws_url, strict_emulator.base_url, created["key"]))
    assert refused.value.response.status_code == 401


def _token(key: str) -> dict[str, str]:
    return {"Authorization": f"Token {key}"}


def _create(server: ServerProcess, key: str, **body: object) -> httpx.Response:
    return httpx.post(_keys_url(server), headers=_token(key), json=body)


def test_key_api_bodies_follow_the_openapi_schemas(strict_emulator: ServerProcess) -> None:
    created = _create(strict_emulator, ADMIN_KEY, comment="shapes", scopes=["usage:write"], tags=["t"])
    body = created.json()
    # CreateKeyV1Response: api_key_id, key, comment, scopes, tags, expiration_date.
    assert set(body) <= {"api_key_id", "key", "comment", "scopes", "tags", "expiration_date"}
    listed = httpx.get(_keys_url(strict_emulator), headers=_admin()).json()["api_keys"]
    mine = next(item for item in listed if item["api_key"]["api_key_id"] == body["api_key_id"])
    assert set(mine) == {"member", "api_key"} and set(mine["member"]) == {"member_id", "email"}
    assert mine["api_key"]["created"].endswith("Z")
    shown = httpx.get(_keys_url(strict_emulator, body["api_key_id"]), headers=_admin()).json()
    assert shown["item"]["member"]["api_key"]["tags"] == ["t"]
    assert "key" not in shown["item"]["member"]["api_key"]
    assert httpx.delete(_keys_url(strict_emulator, body["api_key_id"]), headers=_admin()).json() == {
        "message": "Successfully deleted the API key!"
    }


def test_list_filters_by_status(strict_emulator: ServerProcess) -> None:
    long_ago = "2020-01-01T00:00:00Z"
    past = _create(
        strict_emulator, ADMIN_KEY, comment="past", scopes=["usage:write"], expiration_date=long_ago
    )
    past = past.json()
    live = _create(strict_emulator, ADMIN_KEY, comment="live", scopes=["usage:write"]).json()

    def ids(status: str) -> set[str]:
        answer = httpx.get(_keys_url(strict_emulator), headers=_admin(), params={"status": status})
        return {item["api_key"]["api_key_id"] for item in answer.json()["api_keys"]}

    assert past["api_key_id"] in ids("expired") and past["api_key_id"] not in ids("active")
    assert live["api_key_id"] in ids("active") and live["api_key_id"] not in ids("expired")
    bad = httpx.get(_keys_url(strict_emulator), headers=_admin(), params={"status": "revoked"})
    assert bad.status_code == 400


async def test_scopes_separate_key_management_from_speaking(strict_emulator: ServerProcess) -> None:
    manager = _create(strict_emulator, ADMIN_KEY, comment="manager", scopes=["keys:write"]).json()["key"]
    speaker = _create(strict_emulator, manager, comment="speaker", scopes=["usage:write"])
    assert speaker.status_code == 200  # a key-management key mints speaking keys
    with pytest.raises(websockets.InvalidStatus) as refused:  # but cannot speak itself
        await connect(SpeakTarget(strict_emulator.ws_url, strict_emulator.base_url, manager))
    assert refused.value.response.status_code == 403
    assert refused.value.response.headers["dg-error"] == "The API key lacks the usage:write scope."
    speaking = speaker.json()["key"]
    denied = _create(strict_emulator, speaking, comment="escalate", scopes=["keys:write"])
    assert (denied.status_code, denied.json()["err_code"]) == (403, "INSUFFICIENT_PERMISSIONS")
    assert httpx.get(_keys_url(strict_emulator), headers=_token(speaking)).status_code == 403
    reader = _create(strict_emulator, ADMIN_KEY, comment="reader", scopes=["keys:read"]).json()["key"]
    assert httpx.get(_keys_url(strict_emulator), headers=_token(reader)).status_code == 200
    cannot_delete = httpx.delete(
        _keys_url(strict_emulator, speaker.json()["api_key_id"]), headers=_token(reader)
    )
    assert cannot_delete.status_code == 403


async def test_a_key_is_refused_at_the_first_handshake_after_its_time_to_live(
    strict_emulator: ServerProcess,
) -> None:
    created = _create(
        strict_emulator, ADMIN_KEY, comment="short", scopes=["usage:write"], time_to_live_in_seconds=1
    ).json()
    target = SpeakTarget(strict_emulator.ws_url, strict_emulator.base_url, created["key"])
    async with await connect(target) as open_socket:
        await receive_frame(open_socket)

    def expired() -> bool:
        answer = httpx.get(_keys_url(strict_emulator), headers=_admin(), params={"status": "expired"})
        return created["api_key_id"] in {item["api_key"]["api_key_id"] for item in answer.json()["api_keys"]}

    await eventually(expired, 10.0, "the key listed as expired")
    with pytest.raises(websockets.InvalidStatus) as refused:
        await connect(target)
    assert refused.value.response.status_code == 401


async def test_stats_count_sockets_requests_and_characters_per_key_fingerprint(
    emulator: ServerProcess,
) -> None:
    target = SpeakTarget(emulator.ws_url, emulator.base_url, "billing-key")
    async with await connect(target) as ws:
        await receive_frame(ws)
        during = httpx.get(f"{emulator.base_url}/_emulator/stats").json()
        assert during["open_sockets"] == 1
        await speak_and_flush(ws, "Twelve chars")
    httpx.post(
        f"{emulator.base_url}/v1/speak",
        params={"encoding": "linear16"},
        headers=target.auth_headers,
        json={"text": "abc"},
    ).raise_for_status()
    stats = httpx.get(f"{emulator.base_url}/_emulator/stats").json()
    assert stats["sockets_total"] == 1
    assert stats["requests_total"] == 2
    assert stats["chars_by_key"] == {fingerprint_secret("billing-key"): 15}
    assert "billing-key" not in json.dumps(stats)


async def test_reset_zeroes_counters(emulator: ServerProcess) -> None:
    target = SpeakTarget(emulator.ws_url, emulator.base_url, "reset-key")
    async with await connect(target) as ws:
        await receive_frame(ws)
    httpx.post(f"{emulator.base_url}/_emulator/reset").raise_for_status()
    stats = httpx.get(f"{emulator.base_url}/_emulator/stats").json()
    assert (stats["sockets_total"], stats["requests_total"], stats["chars_by_key"]) == (0, 0, {})


def test_rest_headers_can_use_the_live_spelling(tmp_path: Path) -> None:
    with running_emulator(tmp_path, ["--rest-headers", "x-dg"], name="xdg-emulator") as server:
        response = httpx.post(
            f"{server.base_url}/v1/speak",
            params={"encoding": "linear16"},
            headers={"Authorization": "Token k"},
            json={"text": "hello"},
        )
    assert response.status_code == 200
    assert response.headers["x-dg-model-name"] == "aura-asteria-en"
    assert response.headers["x-dg-characters"] == "5"
    assert response.headers["x-dg-request-id"]
    assert "dg-model-name" not in response.headers


async def test_warning_spelling_can_be_the_live_one_only(tmp_path: Path) -> None:
    args = ["--warning-spelling", "live"]
    with running_emulator(tmp_path, args, name="live-warning-emulator") as server:
        target = SpeakTarget(server.ws_url, server.base_url, "k")
        async with await connect(target) as ws:
            await receive_frame(ws)
            for _ in range(21):
                await ws.send(json.dumps({"type": "Flush"}))
            while True:
                frame = await receive_frame(ws)
                if frame.type == "Warning":
                    break
    assert frame.text == {
        "type": "Warning",
        "warn_code": "EXCESSIVE_FLUSH",
        "warn_msg": frame.text["warn_msg"],
    }


def test_open_mode_is_logged_at_start(tmp_path: Path) -> None:
    with running_emulator(tmp_path, name="open-emulator") as server:
        logs = server.logs()
    assert "every non-empty key is accepted" in logs


def test_bad_settings_fail_at_start_naming_the_setting(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "ttsfleet", "emulator", "--realtime-factor", "-1"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "realtime_factor" in result.stderr


async def test_stats_report_how_late_first_frames_left_against_the_latency_model(
    emulator: ServerProcess,
) -> None:
    # Benchmarks read this to tell the emulator's own saturation from the latency of what they measure.
    httpx.post(f"{emulator.base_url}/_emulator/reset").raise_for_status()
    target = SpeakTarget(emulator.ws_url, emulator.base_url, "late-key")
    async with await connect(target) as ws:
        await receive_frame(ws)
        await speak_and_flush(ws, "Two first frames.")
        await speak_and_flush(ws, "Two first frames.")
    late = httpx.get(f"{emulator.base_url}/_emulator/stats").json()["first_byte_late_ms"]
    assert late["count"] == 2
    assert 0 <= late["p50"] <= late["p95"] <= late["p99"] <= late["max"]
    httpx.post(f"{emulator.base_url}/_emulator/reset").raise_for_status()
    assert httpx.get(f"{emulator.base_url}/_emulator/stats").json()["first_byte_late_ms"] == {"count": 0}
