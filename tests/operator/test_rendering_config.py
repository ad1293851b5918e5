"""The gateway settings file: only fields the contract names, stable bytes, a hash pods can match."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from ttsfleet import fingerprints
from ttsfleet.operator import api, rendering
from ttsfleet.operator.rendering import OwnerRef, config

ROOT = Path(__file__).resolve().parents[2]
BackendOf = Callable[..., api.TTSBackend]


@pytest.fixture(scope="module")
def contract() -> dict[str, Any]:
    """The settings example in docs/contracts.md."""
    text = (ROOT / "docs" / "contracts.md").read_text()
    match = re.search(r"## Gateway settings file.*?```yaml\n(.*?)```", text, re.S)
    assert match is not None
    loaded: dict[str, Any] = yaml.safe_load(match.group(1))
    return loaded


def test_rendered_settings_use_only_fields_the_contract_names(
    backend_of: BackendOf, contract: dict[str, Any]
) -> None:
    rendered = rendering.render_gateway_config(backend_of().spec)
    for group, fields in rendered.items():
        assert group in contract, group
        assert set(fields) <= set(contract[group]), (group, set(fields) - set(contract[group]))


def test_file_paths_are_the_contracts(backend_of: BackendOf, contract: dict[str, Any]) -> None:
    rendered = rendering.render_gateway_config(backend_of().spec)
    assert rendered["credentials"]["deepgram_key_file"] == contract["credentials"]["deepgram_key_file"]
    assert rendered["auth"]["client_tokens_file"] == contract["auth"]["client_tokens_file"]
    assert rendered["server"]["port"] == contract["server"]["port"] == config.CONTAINER_PORT


def test_spec_values_reach_the_settings(backend_of: BackendOf) -> None:
    spec = backend_of(
        deepgram={
            "url": "ws://emulator.voice:8900",
            "restUrl": "http://emulator.voice:8900",
            "model": "aura-2-zeus-en",
            "allowedModels": ["aura-2-zeus-en"],
            "encoding": "mulaw",
            "tagTokenOwner": True,
            "pool": {"warmSocketsPerKey": 2, "maxSockets": 8},
        },
        cache={"enabled": False, "maxBytes": 1024, "ttlSeconds": 60},
        limits={
            "maxSessions": 5,
            "maxSpeakChars": 100,
            "charsPerMinutePerToken": 10,
            "clientSendBufferBytes": 8192,
        },
        rollout={"drainTimeoutSeconds": 30},
        logLevel="DEBUG",
        auth={"enabled": False, "clientTokensSecretRef": None},
    ).spec
    rendered = rendering.render_gateway_config(spec)
    assert rendered["upstream"] == {
        "url": "ws://emulator.voice:8900",
        "rest_url": "http://emulator.voice:8900",
    }
    assert rendered["speak"]["default_model"] == "aura-2-zeus-en"
    assert rendered["speak"]["allowed_models"] == ["aura-2-zeus-en"]
    assert rendered["speak"]["default_encoding"] == "mulaw"
    assert rendered["speak"]["default_sample_rate"] == 8000
    assert rendered["speak"]["tag_token_owner"] is True
    assert rendered["pool"] == {"warm_min_per_key": 2, "max_sockets": 8}
    assert rendered["cache"] == {"enabled": False, "max_bytes": 1024, "ttl_s": 60}
    assert rendered["limits"]["max_speak_chars"] == 100
    assert rendered["drain"] == {"timeout_s": 30}
    assert rendered["logging"]["level"] == "DEBUG"
    assert rendered["auth"] == {"enabled": False}


def test_equal_specs_render_identical_bytes_and_hash(backend_of: BackendOf) -> None:
    first, second = backend_of().spec, backend_of().spec
    assert config.render_config_yaml(first) == config.render_config_yaml(second)
    assert config.config_hash(first) == config.config_hash(second)
    assert re.fullmatch(r"[0-9a-f]{16}", config.config_hash(first))


def test_a_settings_change_changes_the_hash_but_a_scale_does_not(backend_of: BackendOf) -> None:
    base = config.config_hash(backend_of().spec)
    assert config.config_hash(backend_of(cache={"enabled": False}).spec) != base
    assert config.config_hash(backend_of(replicas=7).spec) == base


def test_config_map_holds_the_file_and_its_hash(backend_of: BackendOf, owner: OwnerRef) -> None:
    backend = backend_of()
    config_map = rendering.render_config_map(backend, owner)
    assert config_map["metadata"]["name"] == "aura-en-config"
    text = config_map["data"]["config.yaml"]
    assert yaml.safe_load(text) == rendering.render_gateway_config(backend.spec)
    # The hash is what the gateway computes over the file's bytes (docs/contracts.md).
    assert config_map["metadata"]["annotations"]["ttsfleet.io/config-hash"] == fingerprints.hash_config(
        text.encode()
    )
