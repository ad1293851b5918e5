"""`ttsfleet say` and voices: the CLI checks a named voice with the protocol's rules, and names none by
default, so the server's default (the backend's, else Deepgram's) applies."""

from __future__ import annotations

from pathlib import Path

import httpx
from typer.testing import CliRunner

from tests.support.servers import ServerProcess
from ttsfleet import wavfile
from ttsfleet.cli import app


def test_a_malformed_voice_is_refused_before_connecting(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["say", "hi", "--model", "thalia", "--url", "ws://127.0.0.1:9", "-o", str(tmp_path / "x.wav")]
    )
    assert result.exit_code == 2
    assert "thalia" in result.output
    assert not (tmp_path / "x.wav").exists()


def test_without_a_voice_the_server_picks_its_default(emulator: ServerProcess, tmp_path: Path) -> None:
    output = tmp_path / "say.wav"
    result = CliRunner().invoke(
        app, ["say", "hello there", "--url", emulator.ws_url, "--token", "conformance-key", "-o", str(output)]
    )
    assert result.exit_code == 0, result.output
    assert wavfile.parse(output.read_bytes())[0].sample_rate == 24000
    records = httpx.get(f"{emulator.base_url}/_emulator/requests", timeout=5.0).json()["requests"]
    sockets = [dict(record["query"]) for record in records if record["transport"] == "websocket"]
    assert "model" not in sockets[-1]
