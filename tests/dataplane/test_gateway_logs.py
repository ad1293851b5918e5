"""Every log line of a full gateway run (sessions, REST, faults and retries, a refused token, a key
rotation, a drain on SIGTERM, DEBUG level) is free of the Deepgram keys, the fleet tokens and the text.
"""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import httpx
import pytest
import websockets

from tests.dataplane.gateways import DEEPGRAM_KEY, FLEET_TOKEN, OTHER_TOKEN, running_gateway
from tests.support.servers import running_emulator
from tests.support.speaking import connect, receive_frame, speak_and_flush, wait_closed
from tests.support.waiting import eventually
from ttsfleet.fingerprints import fingerprint_secret

NEW_KEY = "rotated-key-that-must-stay-secret"
WRONG_TOKEN = "a-token-nobody-issued"
TEXTS = (
    "Secret plans are spoken, never logged.",
    "Quarterly numbers go to the speaker only.",
    "REST bodies stay out of the logs as well.",
)


async def test_no_log_line_of_a_full_run_holds_a_key_a_token_or_the_text(
    process_logs: Path, tmp_path: Path
) -> None:
    env = {"TTSFLEET_LOGGING__LEVEL": "DEBUG", "TTSFLEET_CACHE__ENABLED": "false"}
    with (
        running_emulator(process_logs, name="logs-upstream") as upstream,
        running_gateway(process_logs, upstream, tmp_path, env=env, name="logs-gateway") as gateway,
    ):
        faults = upstream.base_url + "/_emulator/faults"
        # The first socket of a fresh key closes before audio (a retry); later connects are refused (REST).
        httpx.post(
            faults, json={"faults": ["close:reason=NET-0000:after_bytes=0:on=ws:count=1"]}
        ).raise_for_status()
        headers = {"Authorization": f"Bearer {OTHER_TOKEN}", "x-request-id": "r1"}
        ws = await connect(gateway.target, headers=headers, speed="1.2")
        await receive_frame(ws)
        assert (await speak_and_flush(ws, TEXTS[0])).types == ["Audio", "Flushed"]
        httpx.post(faults, json={"faults": ["refuse:status=503:on=ws"]}).raise_for_status()
        async with await connect(gateway.target, speed="1.3") as fallback:
            await receive_frame(fallback)
            assert (await speak_and_flush(fallback, TEXTS[1])).types == ["Audio", "Flushed"]
        httpx.post(faults, json={"faults": []}).raise_for_status()
        answer = httpx.post(
            gateway.process.base_url + "/v1/speak?encoding=linear16&container=none",
            json={"text": TEXTS[2]},
            headers={"Authorization": f"Token {FLEET_TOKEN}"},
            timeout=10.0,
        )
        assert answer.status_code == 200
        with pytest.raises(websockets.InvalidStatus):
            await connect(gateway.target, headers={"Authorization": f"Token {WRONG_TOKEN}"})
        gateway.key_file.write_text(NEW_KEY + "\n")
        await eventually(
            lambda: gateway.status()["credential"]["fingerprint"] == fingerprint_secret(NEW_KEY),
            10.0,
            "rotation",
        )
        assert (await speak_and_flush(ws, TEXTS[0])).types == ["Audio", "Flushed"]
        gateway.process.signal(signal.SIGTERM)
        assert await wait_closed(ws) == (1012, "SERVICE-RESTART")
        assert gateway.process.process is not None
        assert await asyncio.to_thread(gateway.process.process.wait, 30) == 0
        lines = gateway.process.logs().splitlines()
    events = [json.loads(line).get("event", "") for line in lines]
    for expected in ("utterance retried", "falling back to REST", "request refused", "drained; stopping"):
        assert expected in events
    assert any(event == "upstream socket opened" for event in events)  # DEBUG lines were written
    # Client sockets are logged by our own session lines, not again by uvicorn and websockets per socket.
    assert "session opened" in events
    repeated = ("connection open", "connection closed")
    assert [e for e in events if e in repeated or e.endswith("[accepted]")] == []
    secrets = (DEEPGRAM_KEY, NEW_KEY, FLEET_TOKEN, OTHER_TOKEN, WRONG_TOKEN, *TEXTS)
    leaks = [(number, secret) for number, line in enumerate(lines) for secret in secrets if secret in line]
    assert leaks == []
