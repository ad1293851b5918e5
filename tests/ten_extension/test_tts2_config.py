"""Settings and discovery: backends to Service URLs, base URLs, params, errors naming the property."""

from __future__ import annotations

import pytest

from ten_extension.deepgram_tts2_python import config, discovery, errors


def test_a_backend_resolves_to_its_service_in_the_cluster_domain() -> None:
    assert discovery.service_base_url("aura-en.voice") == "ws://aura-en.voice.svc.cluster.local:8080"
    assert discovery.service_base_url("aura-en.voice", "corp.example", 8080) == (
        "ws://aura-en.voice.svc.corp.example:8080"
    )


@pytest.mark.parametrize(
    "backend",
    [
        pytest.param("aura-en", id="no-namespace"),
        pytest.param("Aura.voice", id="uppercase"),
        pytest.param("a.b.c", id="three-parts"),
        pytest.param("-x.voice", id="leading-dash"),
    ],
)
def test_a_malformed_backend_is_refused(backend: str) -> None:
    with pytest.raises(ValueError, match="backend"):
        discovery.service_base_url(backend)


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        pytest.param("wss://api.deepgram.com", "wss://api.deepgram.com/v1/speak?model=m", id="deepgram"),
        pytest.param("https://api.deepgram.com/", "wss://api.deepgram.com/v1/speak?model=m", id="https"),
        pytest.param("ws://gw:80/v1/speak", "ws://gw:80/v1/speak?model=m", id="full-path"),
        pytest.param("ws://gw/prefix?x=1", "ws://gw/prefix/v1/speak?x=1&model=m", id="prefix-and-query"),
    ],
)
def test_speak_url_appends_the_path_and_the_query(base_url: str, expected: str) -> None:
    assert discovery.speak_url(base_url, {"model": "m"}) == expected


def test_params_pass_through_and_lists_repeat_the_key() -> None:
    settings = config.parse_config(
        {
            "backend": "aura-en.voice",
            "token": "t",
            "sample_rate": "16000",
            "params": {"speed": 1.2, "mip_opt_out": True, "emulator_fault": ["a:b=1", "c"]},
        }
    )
    assert settings.url == (
        "ws://aura-en.voice.svc.cluster.local:8080/v1/speak?model=aura-2-thalia-en&encoding=linear16"
        "&sample_rate=16000&speed=1.2&mip_opt_out=true&emulator_fault=a%3Ab%3D1&emulator_fault=c"
    )
    assert settings.sample_rate == 16000


def test_base_url_wins_over_backend_and_the_token_never_shows() -> None:
    settings = config.parse_config(
        {"backend": "x.y", "base_url": "wss://api.deepgram.com", "token": "secret"}
    )
    assert settings.url.startswith("wss://api.deepgram.com/v1/speak?")
    assert "secret" not in repr(settings) and "secret" not in settings.describe()


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        pytest.param({"backend": "a.b"}, "token", id="no-token"),
        pytest.param({"token": "t"}, "backend", id="no-endpoint"),
        pytest.param({"token": "t", "backend": "a.b", "sample_rate": 44100}, "sample_rate", id="rate"),
        pytest.param({"token": "t", "backend": "a.b", "encoding": "mulaw"}, "encoding", id="encoding"),
        pytest.param({"token": "t", "backend": "a.b", "params": {"model": "x"}}, "params", id="reserved"),
        pytest.param({"token": "t", "base_url": "ftp://x"}, "base_url", id="scheme"),
        pytest.param({"token": "t", "backend": "a.b", "port": "eighty"}, "port", id="port"),
    ],
)
def test_bad_settings_fail_naming_the_property(raw: dict[str, object], named: str) -> None:
    with pytest.raises(errors.ConfigError, match=named) as failure:
        config.parse_config(raw)
    assert failure.value.fatal
