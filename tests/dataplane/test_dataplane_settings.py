"""Settings: precedence of flags, environment, file and defaults; errors that name the setting."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ttsfleet.dataplane.settings import GatewaySettings, SettingsError, load_settings
from ttsfleet.fingerprints import hash_config

NO_AUTH = {"auth": {"enabled": False}}


def test_defaults_match_the_contract() -> None:
    settings = load_settings(NO_AUTH, {}).settings
    assert settings.pool.warm_min_per_key == 1 and settings.pool.max_sockets == 64
    assert settings.pool.idle_key_ttl_s == 600
    assert settings.timeouts.first_byte_s == 5 and settings.retry.max_attempts == 3
    assert settings.cache.max_bytes == 67108864 and settings.limits.max_sessions == 1000
    assert settings.upstream.effective_rest_url == "https://api.deepgram.com"
    assert settings.connections.max_head_bytes == 32768 and settings.connections.max_pending == 512
    assert set(GatewaySettings.model_fields) == {
        "server",
        "upstream",
        "credentials",
        "auth",
        "speak",
        "pool",
        "timeouts",
        "retry",
        "breaker",
        "cache",
        "limits",
        "connections",
        "shares",
        "drain",
        "logging",
    }
    assert settings.shares.file is None and not settings.shares.required


def test_flags_beat_environment_beat_file(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    content = b"pool: {warm_min_per_key: 3, max_sockets: 10}\nserver: {port: 9000}\nauth: {enabled: false}\n"
    config.write_bytes(content)
    loaded = load_settings(
        {"server": {"port": 7000}},
        {
            "TTSFLEET_POOL__WARM_MIN_PER_KEY": "2",
            "TTSFLEET_SERVER__PORT": "8000",
            "TTSFLEET_CONFIG": str(config),
        },
    )
    assert loaded.settings.server.port == 7000
    assert loaded.settings.pool.warm_min_per_key == 2
    assert loaded.settings.pool.max_sockets == 10
    assert loaded.config_hash == hash_config(content)


def test_rest_url_is_derived_from_the_websocket_url_unless_given() -> None:
    plain = load_settings({**NO_AUTH, "upstream": {"url": "ws://127.0.0.1:8900"}}, {}).settings
    assert plain.upstream.effective_rest_url == "http://127.0.0.1:8900"
    given = load_settings({**NO_AUTH, "upstream": {"url": "wss://a", "rest_url": "https://b/"}}, {}).settings
    assert given.upstream.effective_rest_url == "https://b"


def test_list_settings_come_from_comma_separated_or_json_environment() -> None:
    env = {
        "TTSFLEET_SPEAK__DEFAULT_MODEL": "aura-2-thalia-en",
        "TTSFLEET_SPEAK__ALLOWED_MODELS": "aura-2-thalia-en, aura-2-luna-en",
        "TTSFLEET_SPEAK__ALLOWED_ENCODINGS": '["linear16"]',
    }
    speak = load_settings(NO_AUTH, env).settings.speak
    assert speak.allowed_models == ["aura-2-thalia-en", "aura-2-luna-en"]
    assert [e.value for e in speak.allowed_encodings] == ["linear16"]


@pytest.mark.parametrize(
    ("flags", "environ", "named"),
    [
        pytest.param({"pool": {"max_sockets": 0}}, {}, "pool.max_sockets", id="below-minimum"),
        pytest.param(
            {}, {"TTSFLEET_TIMEOUTS__FIRST_BYTE_S": "soon"}, "timeouts.first_byte_s", id="not-a-number"
        ),
        pytest.param({}, {"TTSFLEET_POOL__WARM_MIN": "1"}, "TTSFLEET_POOL__WARM_MIN", id="unknown-env-field"),
        pytest.param({"upstream": {"url": "http://x"}}, {}, "upstream.url", id="not-websocket"),
        pytest.param(
            {"speak": {"default_sample_rate": 22050}}, {}, "speak.default_sample_rate", id="bad-rate"
        ),
        pytest.param({"retry": {"base_delay_s": 2.0}}, {}, "retry.max_delay_s", id="cap-below-base"),
        pytest.param({"cache": {"size": 1}}, {}, "cache.size", id="unknown-field"),
        pytest.param(
            {}, {"TTSFLEET_POOL__IDLE_KEY_TTL_S": "0"}, "pool.idle_key_ttl_s", id="ttl-not-positive"
        ),
    ],
)
def test_bad_values_fail_at_start_naming_the_setting(
    flags: dict[str, dict[str, object]], environ: dict[str, str], named: str
) -> None:
    with pytest.raises(SettingsError, match=re.escape(named)):
        load_settings({**NO_AUTH, **flags}, environ)


def test_auth_without_a_tokens_file_fails_at_start(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"auth\.client_tokens_file"):
        load_settings({"auth": {"client_tokens_file": tmp_path / "missing"}}, {})


def test_other_tools_variables_are_ignored() -> None:
    load_settings(NO_AUTH, {"TTSFLEET_EMULATOR__PORT": "1", "TTSFLEET_LOG": "x"})


def test_a_broken_config_file_names_the_file(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("pool: [unclosed")
    with pytest.raises(SettingsError, match=r"config\.yaml"):
        load_settings(NO_AUTH, {}, config)


def test_the_default_voice_is_deepgrams_and_voices_are_checked_at_start() -> None:
    assert load_settings(NO_AUTH, {}).settings.speak.default_model == "aura-asteria-en"
    for env in (
        {"TTSFLEET_SPEAK__DEFAULT_MODEL": "thalia"},
        {"TTSFLEET_SPEAK__ALLOWED_MODELS": "aura-asteria-en, Aura-2-Luna-EN"},
    ):
        with pytest.raises(SettingsError, match="not a voice name"):
            load_settings(NO_AUTH, env)
