"""The TEN package files: manifest, property defaults with safe placeholders, and addon registration."""

from __future__ import annotations

import json
import re
from pathlib import Path

import ten_runtime

PACKAGE = Path(__file__).resolve().parents[2] / "ten_extension" / "deepgram_tts2_python"


def test_the_manifest_declares_the_extension_its_dependencies_and_the_tts_interface() -> None:
    manifest = json.loads((PACKAGE / "manifest.json").read_text())
    assert (manifest["type"], manifest["name"]) == ("extension", "deepgram_tts2_python")
    assert {(d["name"], d["version"]) for d in manifest["dependencies"]} == {
        ("ten_runtime_python", "0.11"),
        ("ten_ai_base", "0.7"),
    }
    assert manifest["api"]["interface"][0]["import_uri"].endswith("ten_ai_base/api/tts-interface.json")
    properties = json.loads((PACKAGE / "property.json").read_text())
    schema = manifest["api"]["property"]["properties"]
    assert set(properties) <= set(schema)
    assert set(properties["params"]) <= set(schema["params"]["properties"])
    # TEN's deepgram_tts shape: the key and the Deepgram settings live in params.
    assert {"api_key", "model", "encoding", "sample_rate"} <= set(properties["params"])


def test_every_env_placeholder_has_a_default() -> None:
    text = (PACKAGE / "property.json").read_text()
    placeholders = re.findall(r"\$\{env:([^}]*)\}", text)
    assert placeholders
    # Without "|default" an unset variable aborts the TEN process.
    assert all("|" in placeholder for placeholder in placeholders)


def test_the_addon_registers_under_the_package_name_and_creates_the_extension() -> None:
    from ten_extension.deepgram_tts2_python import addon
    from ten_extension.deepgram_tts2_python.extension import DeepgramTTS2Extension

    registered = ten_runtime.registered_addons["deepgram_tts2_python"]
    assert registered is addon.DeepgramTTS2ExtensionAddon
    env = ten_runtime.TenEnv()
    registered().on_create_instance(env, "tts", None)
    assert isinstance(env.created[0], DeepgramTTS2Extension)
