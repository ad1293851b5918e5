"""Voice rules and `/v1/speak` options against Deepgram's specs: one source of truth, nothing dropped."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl

import pytest

from scripts import facts_from_spec
from tests.support import deepgram_spec
from ttsfleet.protocol import (
    DEFAULT_MODEL,
    DEFAULT_VOICE,
    KNOWN_VOICES,
    CallbackMethod,
    Container,
    Encoding,
    InvalidOptions,
    Transport,
    UnknownModel,
    parse_speak_options,
    voice_catalog,
    voice_problem,
)


def test_the_committed_spec_facts_are_the_ones_generated_from_the_specs() -> None:
    """The voice catalogue and the `/v1/speak` parameter facts equal a fresh generation from Deepgram's
    specs (this needs the specs beside the clone; every other test reads only the committed facts)."""
    openapi, asyncapi = facts_from_spec.load_spec("openapi.yml"), facts_from_spec.load_spec("asyncapi.yml")
    voices, default = facts_from_spec.spec_voices(openapi)
    stale = "is stale: run `make generate`"
    expected_catalog = facts_from_spec.render_catalog(voices, default, "openapi.yml")
    assert Path(voice_catalog.__file__).read_text() == expected_catalog, f"the voice catalogue {stale}"
    expected_facts = facts_from_spec.render_speak_facts(facts_from_spec.speak_parameters(openapi, asyncapi))
    assert deepgram_spec.FACTS.read_text() == expected_facts, f"{deepgram_spec.FACTS.name} {stale}"


def test_the_default_voice_is_deepgrams_documented_default() -> None:
    assert DEFAULT_VOICE == DEFAULT_MODEL == "aura-asteria-en"
    assert deepgram_spec.rest_speak_parameters()["model"].default == DEFAULT_VOICE
    assert deepgram_spec.websocket_speak_parameters()["model"].default == DEFAULT_VOICE


@pytest.mark.parametrize("transport", list(Transport))
def test_every_voice_in_the_spec_is_accepted(transport: Transport) -> None:
    voices = deepgram_spec.spec_voices()
    assert len(voices) == 103
    assert set(voices) == KNOWN_VOICES
    for voice in voices:
        assert parse_speak_options({"model": voice}, transport).model == voice


def test_an_empty_allow_list_takes_any_well_formed_voice_and_only_those() -> None:
    assert parse_speak_options({"model": "aura-2-newvoice-pt"}, Transport.WEBSOCKET, None).model
    assert parse_speak_options({"model": "aura-2-newvoice-pt"}, Transport.WEBSOCKET, frozenset()).model
    for bad in ("thalia", "aura-2-Thalia-en", "aura-3-x-en", "aura-" + "a" * 70 + "-en"):
        assert voice_problem(bad, None) is not None
        with pytest.raises(UnknownModel):
            parse_speak_options({"model": bad}, Transport.WEBSOCKET, None)
    with pytest.raises(UnknownModel):
        parse_speak_options({"model": "aura-2-luna-en"}, Transport.WEBSOCKET, frozenset({"aura-2-zeus-en"}))


@pytest.mark.parametrize("spelling", ["24000", "24000.0", "24000.00", "2.4e4", " 24000 "])
def test_integral_numbers_are_accepted_in_any_spelling(spelling: str) -> None:
    assert parse_speak_options({"sample_rate": spelling}, Transport.WEBSOCKET).sample_rate == 24000
    doubled = spelling.replace("24", "48").replace("2.4", "4.8")
    assert parse_speak_options({"encoding": "mp3", "bit_rate": doubled}, Transport.REST).bit_rate == 48000


@pytest.mark.parametrize("spelling", ["24000.5", "nan", "inf", "24k", ""])
def test_non_integral_rates_are_refused(spelling: str) -> None:
    if spelling == "":
        assert parse_speak_options({"sample_rate": spelling}, Transport.WEBSOCKET).sample_rate == 24000
        return
    with pytest.raises(InvalidOptions, match="sample_rate"):
        parse_speak_options({"sample_rate": spelling}, Transport.WEBSOCKET)


def test_rest_options_are_all_kept_and_forwarded() -> None:
    options = parse_speak_options(
        [
            ("model", "aura-2-kara-de"),
            ("encoding", "mp3"),
            ("bit_rate", "32000"),
            ("tag", "team-a"),
            ("tag", "project-b"),
            ("callback", "https://hooks.example.com/tts?x=1"),
            ("callback_method", "put"),
            ("mip_opt_out", "true"),
            ("speed", "1.2"),
        ],
        Transport.REST,
    )
    assert options.tags == ("team-a", "project-b")
    assert options.callback_method is CallbackMethod.PUT
    forwarded = parse_qsl(options.to_rest_query())
    assert forwarded == [
        ("model", "aura-2-kara-de"),
        ("encoding", "mp3"),
        ("sample_rate", "22050"),
        ("speed", "1.2"),
        ("mip_opt_out", "true"),
        ("bit_rate", "32000"),
        ("tag", "team-a"),
        ("tag", "project-b"),
        ("callback", "https://hooks.example.com/tts?x=1"),
        ("callback_method", "PUT"),
    ]


@pytest.mark.parametrize(
    ("encoding", "container", "forwarded"),
    [
        (Encoding.OPUS, Container.OGG, "ogg"),  # openapi.yml: opus comes in ogg by default
        (Encoding.LINEAR16, Container.WAV, "wav"),
        (Encoding.MULAW, Container.WAV, "wav"),
        (Encoding.MP3, Container.NONE, None),
        (Encoding.FLAC, Container.NONE, None),
    ],
)
def test_rest_container_defaults_follow_the_spec(
    encoding: Encoding, container: Container, forwarded: str | None
) -> None:
    options = parse_speak_options({"encoding": encoding.value}, Transport.REST)
    assert options.container is container
    assert dict(parse_qsl(options.to_rest_query())).get("container") == forwarded


def test_the_websocket_query_carries_mip_opt_out() -> None:
    options = parse_speak_options({"mip_opt_out": "true"}, Transport.WEBSOCKET)
    assert ("mip_opt_out", "true") in parse_qsl(options.to_query())


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ({"encoding": "mp3", "bit_rate": "64000"}, "bit_rate"),
        ({"encoding": "linear16", "bit_rate": "32000"}, "bit_rate"),
        ({"callback": "ftp://example.com/x"}, "callback"),
        ({"callback": "/relative"}, "callback"),
        ({"callback": "https://x.example", "callback_method": "GET"}, "callback_method"),
        ({"encoding": "opus", "container": "none"}, "container"),
        ({"encoding": "mp3", "container": "wav"}, "container"),
    ],
)
def test_bad_rest_options_are_refused_by_name(query: dict[str, str], parameter: str) -> None:
    with pytest.raises(InvalidOptions) as refused:
        parse_speak_options(query, Transport.REST)
    assert refused.value.parameter == parameter


@pytest.mark.parametrize("parameter", ["bit_rate", "callback", "callback_method", "tag"])
def test_rest_only_options_on_a_socket_are_refused_not_dropped(parameter: str) -> None:
    with pytest.raises(InvalidOptions) as refused:
        parse_speak_options({parameter: "32000"}, Transport.WEBSOCKET)
    assert refused.value.parameter == parameter
