"""The test configs shipped for TEN's TTS test suite (tests/configs/, the files and shape it loads), run as
that suite runs them: placeholders rendered from the environment, then the scenario each file serves."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.ten_extension.harness import Harness
from tests.ten_extension.targets import Target

PACKAGE = Path(__file__).resolve().parents[2] / "ten_extension" / "deepgram_tts2_python"
CONFIGS = PACKAGE / "tests" / "configs"
# The files TEN's tts_guarder opens by name from --config_dir.
GUARDER_FILES = {
    "property_basic_audio_setting1.json",
    "property_basic_audio_setting2.json",
    "property_dump.json",
    "property_invalid.json",
    "property_miss_required.json",
}
METADATA = {"session_id": "session-1", "turn_id": 1}
_PLACEHOLDER = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?:\|([^}]*))?\}")


def rendered(name: str, environ: Mapping[str, str]) -> dict[str, Any]:
    """A config as TEN loads it: each `${env:NAME|default}` replaced by the variable or its default."""

    def value(match: re.Match[str]) -> str:
        if match.group(1) in environ:
            return environ[match.group(1)]
        assert match.group(2) is not None, f"{name}: ${{env:{match.group(1)}}} has no default"
        return match.group(2)

    loaded: dict[str, Any] = json.loads(_PLACEHOLDER.sub(value, (CONFIGS / name).read_text()))
    return loaded


def environ_for(target: Target) -> dict[str, str]:
    return {"TTSFLEET_BASE_URL": target.base_url, "TTSFLEET_TOKEN": target.token}


def test_the_guarder_files_are_all_there_in_ten_shape() -> None:
    assert {path.name for path in CONFIGS.glob("*.json")} == GUARDER_FILES
    for name in GUARDER_FILES:
        config = rendered(name, {})
        assert "api_key" in config["params"], name
        assert "token" not in config, name


@pytest.mark.parametrize(
    ("name", "rate"),
    [
        pytest.param("property_basic_audio_setting1.json", 24000, id="setting1"),
        pytest.param("property_basic_audio_setting2.json", 16000, id="setting2"),
    ],
)
async def test_the_audio_setting_configs_speak_at_their_rates(
    target: Target, name: str, rate: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # dump_path is relative, as the suite has it
    async with Harness(rendered(name, environ_for(target))) as tts:
        tts.text("setting-1", "The audio settings are honoured.", metadata=METADATA)
        (view,) = await tts.wait_ends(1)
    assert view.end is not None and view.end["reason"] == 1 and view.frames
    assert {frame.frame.sample_rate for frame in view.frames if frame.frame} == {rate}
    assert len(list((tmp_path / "tests" / "keep_dump_output").glob("*.pcm"))) == 1


async def test_the_dump_config_writes_one_file_per_request(
    target: Target, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    async with Harness(rendered("property_dump.json", environ_for(target))) as tts:
        for index in range(3):
            tts.text(f"dump-{index}", f"Dump request number {index}.", metadata=METADATA)
        await tts.wait_ends(3)
    assert len(list((tmp_path / "dump").glob("*.pcm"))) == 3


async def test_the_invalid_key_config_gets_a_fatal_error(gateway_target: Target) -> None:
    async with Harness(rendered("property_invalid.json", environ_for(gateway_target))) as tts:
        tts.text("1", "Hello, world!", metadata=METADATA)
        await tts.wait_for(lambda: bool(tts.data("error")), "the first error")
    assert tts.data("error")[0]["code"] == -1000


async def test_the_missing_key_config_fails_at_init_with_nothing_sent(target: Target) -> None:
    async with Harness(rendered("property_miss_required.json", environ_for(target))) as tts:
        assert [(error["id"], error["code"]) for error in tts.data("error")] == [("", -1000)]
    assert target.upstream_stats()["sockets_total"] == 0
