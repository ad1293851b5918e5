"""What the watches keep: Secret fingerprints (never values) and the parts of pods probing reads."""

from __future__ import annotations

import base64

from ttsfleet import fingerprints
from ttsfleet.operator import probing
from ttsfleet.operator.facts import SecretFacts, SecretState, secret_fingerprints


def encoded(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def test_every_key_is_fingerprinted_and_no_value_is_kept() -> None:
    body = {"data": {"api-key": encoded("dg-one"), "blank": encoded("  "), "bad": "%%%"}}
    kept = secret_fingerprints({**body, "stringData": {"extra": "dg-two"}})
    assert {key: digest.fingerprint for key, digest in kept.items()} == {
        "api-key": fingerprints.fingerprint_secret("dg-one"),
        "bad": None,
        "blank": None,
        "extra": fingerprints.fingerprint_secret("dg-two"),
    }
    assert "dg-one" not in repr(kept)
    assert secret_fingerprints({}) == {}


def test_facts_from_fingerprints_match_facts_from_the_secret() -> None:
    body = {"data": {"api-key": encoded("dg-one"), "blank": ""}}
    body["data"]["huge"] = encoded("k" * 100_000)
    body["data"]["tokens"] = encoded("alpha\nbeta\n")
    for key in ("api-key", "blank", "absent", "huge", "tokens"):
        for single in (True, False):
            from_index = SecretFacts.from_fingerprints(
                "deepgram", key, secret_fingerprints(body), single=single
            )
            assert from_index == SecretFacts.from_secret("deepgram", key, body, single=single)
    assert SecretFacts.from_secret("deepgram", "huge", body, single=True).state is SecretState.KEY_MALFORMED
    assert SecretFacts.from_secret("deepgram", "tokens", body).state is SecretState.PRESENT  # a tokens file
    missing = SecretFacts.from_fingerprints("deepgram", "api-key", None)
    assert missing.state is SecretState.SECRET_MISSING


def pod(**metadata: object) -> dict[str, object]:
    return {
        "metadata": {
            "name": "aura-en-a",
            "namespace": "voice",
            "labels": {"app.kubernetes.io/instance": "aura-en"},
            "annotations": {"statusz-port": "9001", "other": "x" * 1000},
            **metadata,
        },
        "spec": {"containers": [{"name": "gateway", "image": "i"}]},
        "status": {
            "podIP": "10.0.0.7",
            "conditions": [
                {"type": "PodScheduled", "status": "True"},
                {"type": "Ready", "status": "True"},
            ],
        },
    }


def test_a_pod_view_keeps_what_probing_reads_and_nothing_else() -> None:
    view = probing.pod_view(pod(), "statusz-port")
    assert view == {
        "metadata": {"name": "aura-en-a", "namespace": "voice", "annotations": {"statusz-port": "9001"}},
        "status": {"podIP": "10.0.0.7", "conditions": [{"type": "Ready", "status": "True"}]},
    }
    assert probing.is_pod_ready(view)
    url_of = probing.pod_ip_statusz(8080, "statusz-port")
    assert url_of(view) == url_of(pod()) == "http://10.0.0.7:9001/statusz"


def test_a_terminating_pod_stays_not_ready_in_its_view() -> None:
    view = probing.pod_view(pod(deletionTimestamp="2026-11-24T12:00:00Z"))
    assert view["metadata"]["annotations"] == {}
    assert not probing.is_pod_ready(view)
