"""The extension finds a backend exactly where the operator says it is (status.endpoint)."""

from __future__ import annotations

from pathlib import Path

import yaml

from ten_extension.deepgram_tts2_python import discovery
from ttsfleet.operator import api
from ttsfleet.operator.rendering.exposure import service_endpoint

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ttsbackend-aura-en.yaml"


def test_default_discovery_matches_the_operators_endpoint_for_the_example_backend() -> None:
    backend = api.TTSBackend.from_body(yaml.safe_load(EXAMPLE.read_text()))
    name = f"{backend.metadata.name}.{backend.metadata.namespace}"
    assert discovery.service_base_url(name) + "/v1/speak" == service_endpoint(backend)
