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
            "params": {
                "api_key": "t",
                "sample_rate": "16000",
                "speed": 1.2,
                "mip_opt_out": True,
                "emulator_fault": ["a:b=1", "c"],
                "tag": None,
            },
        }
    )
    assert settings.url == (
        "ws://aura-en.voice.svc.cluster.local:8080/v1/speak?model=aura-2-thalia-en&encoding=linear16"
        "&sample_rate=16000&speed=1.2&mip_opt_out=true&emulator_fault=a%3Ab%3D1&emulator_fault=c"
    )
    assert settings.sample_rate == 16000


def test_ten_stock_properties_keep_their_meaning() -> None:
    """TEN's deepgram_tts property block: settings in params win over the top level, none reach the query."""
    settings = config.parse_config(
        {
            "dump": True,
            "dump_path": "/var/dumps",
            "model": "aura-2-thalia-en",
            "params": {
                "api_key": "dg-key",
                "base_url": "wss://api.deepgram.com/v1/speak",
                "model": "aura-2-luna-en",
                "encoding": "linear16",
                "sample_rate": 16000,
                "container": "none",
            },
        }
    )
    assert settings.url == (
        "wss://api.deepgram.com/v1/speak?model=aura-2-luna-en&encoding=linear16&sample_rate=16000&container=none"
    )
    assert (settings.api_key, settings.endpoint, settings.dump, settings.dump_path) == (
        "dg-key",
        "base_url",
        True,
        "/var/dumps",
    )


def test_backend_wins_over_a_stock_base_url_and_deepgram_is_the_last_resort() -> None:
    stock = {"params": {"api_key": "t", "base_url": "wss://api.deepgram.com/v1/speak"}}
    fleet = config.parse_config({**stock, "backend": "aura-en.voice"})
    assert fleet.url.startswith("ws://aura-en.voice.svc.cluster.local:8080/v1/speak?")
    assert fleet.endpoint == "backend"
    alone = config.parse_config({"params": {"api_key": "t"}})
    assert alone.url.startswith("wss://api.deepgram.com/v1/speak?")
    assert alone.endpoint == "deepgram"


def test_the_key_and_query_secrets_never_show() -> None:
    settings = config.parse_config(
        {"base_url": "wss://user:pw@api.deepgram.com", "params": {"api_key": "secret", "sig": "hush"}}
    )
    assert "secret" not in repr(settings) and "secret" not in settings.describe()
    assert "hush" not in settings.describe() and "pw" not in settings.describe()
    assert "sig=***" in settings.describe() and "model=aura-2-thalia-en" in settings.describe()


def test_an_update_merges_params_key_by_key() -> None:
    current = {"backend": "a.b", "params": {"api_key": "t", "model": "m1", "speed": 1.1}}
    assert config.merged(current, {"params": {"model": "m2"}, "dump": True}) == {
        "backend": "a.b",
        "params": {"api_key": "t", "model": "m2", "speed": 1.1},
        "dump": True,
    }


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        pytest.param({"backend": "a.b"}, "params.api_key", id="no-key"),
        pytest.param({"backend": "a.b", "params": {"api_key": ""}}, "params.api_key", id="empty-key"),
        pytest.param({"params": {"api_key": "t", "sample_rate": 44100}}, "sample_rate", id="rate"),
        pytest.param({"params": {"api_key": "t", "encoding": "mulaw"}}, "encoding", id="encoding"),
        pytest.param({"params": {"api_key": "t", "container": "wav"}}, "container", id="container"),
        pytest.param({"params": {"api_key": "t"}, "base_url": "ftp://x"}, "base_url", id="scheme"),
        pytest.param({"params": {"api_key": "t"}, "backend": "a.b", "port": "eighty"}, "port", id="port"),
        pytest.param({"params": {"api_key": "t"}, "backend": "A.b"}, "backend", id="backend"),
        pytest.param({"params": "api_key=t"}, "params", id="params-not-an-object"),
    ],
)
def test_bad_settings_fail_naming_the_property(raw: dict[str, object], named: str) -> None:
    with pytest.raises(errors.ConfigError, match=named) as failure:
        config.parse_config(raw)
    assert failure.value.fatal
