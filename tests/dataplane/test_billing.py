"""Billed characters: counted by fleet token fingerprint and model, never the token; cache hits are free."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.dataplane.gateways import FLEET_TOKEN, OTHER_TOKEN, RunningGateway
from tests.support.speaking import connect, receive_frame, speak_and_flush
from ttsfleet.fingerprints import fingerprint_secret
from ttsfleet.protocol.voices import DEFAULT_VOICE

SENTENCE = "Billing counts every character sent upstream."
REST_TEXT = "Twenty characters ok"


def billed(gateway: RunningGateway) -> dict[tuple[str, str], float]:
    text = httpx.get(gateway.process.base_url + "/metrics", timeout=5.0).text
    for secret in (FLEET_TOKEN, OTHER_TOKEN):
        assert secret not in text
    found = {}
    for family in text_string_to_metric_families(text):
        if family.name == "ttsfleet_billed_characters":
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    found[(sample.labels["token"], sample.labels["model"])] = sample.value
    return found


async def test_characters_are_billed_by_token_fingerprint_and_model(gateway: RunningGateway) -> None:
    async with await connect(gateway.target) as ws:
        await receive_frame(ws)
        assert (await speak_and_flush(ws, SENTENCE)).types == ["Audio", "Flushed"]
        assert (await speak_and_flush(ws, SENTENCE)).types == ["Audio", "Flushed"]  # a cache hit
    rest = httpx.post(
        gateway.process.base_url + "/v1/speak",
        params={"model": "aura-asteria-en", "encoding": "linear16"},
        headers={"Authorization": f"Token {OTHER_TOKEN}"},
        json={"text": REST_TEXT},
        timeout=10.0,
    )
    assert rest.status_code == 200
    assert billed(gateway) == {
        (fingerprint_secret(FLEET_TOKEN), DEFAULT_VOICE): len(SENTENCE),  # the gateway's default voice
        (fingerprint_secret(OTHER_TOKEN), "aura-asteria-en"): len(REST_TEXT),
    }
