"""Parsing and writing messages, options, headers and error bodies."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ttsfleet.protocol import (
    Cleared,
    CloseCode,
    CloseReason,
    Closure,
    Container,
    Encoding,
    ErrorBody,
    Flushed,
    InvalidOptions,
    Metadata,
    SpeakOptions,
    Transport,
    UnknownMessage,
    UnknownModel,
    Warning,
    WarningSpelling,
    error_code_for_status,
    is_retryable_status,
    parse_server_message,
    parse_speak_options,
    read_credential,
)
from ttsfleet.protocol.headers import HeaderStyle, read_response_header, rest_metadata_headers


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(
            '{"type":"Warning","code":"EXCESSIVE_FLUSH","description":"slow down"}', id="documented"
        ),
        pytest.param('{"type":"Warning","warn_code":"EXCESSIVE_FLUSH","warn_msg":"slow down"}', id="live"),
    ],
)
def test_warnings_are_read_in_both_spellings(raw: str) -> None:
    assert parse_server_message(raw) == Warning("EXCESSIVE_FLUSH", "slow down")


@pytest.mark.parametrize("spelling", list(WarningSpelling))
def test_warnings_written_in_any_spelling_read_back(spelling: WarningSpelling) -> None:
    warning = Warning("EXCESSIVE_FLUSH", "slow down")
    assert parse_server_message(warning.to_json(spelling)) == warning


@pytest.mark.parametrize(
    "message",
    [Metadata("r", "aura-asteria-en", "v", "u"), Flushed(3), Cleared(0)],
    ids=["metadata", "flushed", "cleared"],
)
def test_server_messages_round_trip(message: Metadata | Flushed | Cleared) -> None:
    assert parse_server_message(message.to_json()) == message


@given(st.text(max_size=200))
def test_unknown_or_malformed_server_messages_never_raise(raw: str) -> None:
    parsed = parse_server_message(raw)
    assert parsed is not None


def test_unknown_types_and_bad_fields_are_unknown_messages() -> None:
    assert isinstance(parse_server_message('{"type":"Shiny"}'), UnknownMessage)
    assert isinstance(parse_server_message('{"type":"Flushed","sequence_id":"x"}'), UnknownMessage)
    assert isinstance(parse_server_message("[1]"), UnknownMessage)


@pytest.mark.parametrize(
    ("query", "transport", "expected"),
    [
        pytest.param({}, Transport.WEBSOCKET, SpeakOptions(), id="ws-defaults"),
        pytest.param(
            {"encoding": "mulaw"},
            Transport.WEBSOCKET,
            SpeakOptions(encoding=Encoding.MULAW, sample_rate=8000),
            id="mulaw-default-rate",
        ),
        pytest.param(
            {"encoding": "linear16"},
            Transport.REST,
            SpeakOptions(encoding=Encoding.LINEAR16, sample_rate=24000, container=Container.WAV),
            id="rest-pcm-defaults-to-wav",
        ),
        pytest.param(
            {}, Transport.REST, SpeakOptions(encoding=Encoding.MP3, sample_rate=22050), id="rest-mp3"
        ),
        pytest.param(
            {"speed": "1.2", "mip_opt_out": "true", "model": "aura-2-thalia-en"},
            Transport.WEBSOCKET,
            SpeakOptions(model="aura-2-thalia-en", speed=1.2, mip_opt_out=True),
            id="speed-and-opt-out",
        ),
    ],
)
def test_speak_options_are_parsed_with_defaults(
    query: dict[str, str], transport: Transport, expected: SpeakOptions
) -> None:
    assert parse_speak_options(query, transport) == expected


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ({"encoding": "opus"}, "encoding"),
        ({"sample_rate": "22050"}, "sample_rate"),
        ({"sample_rate": "x"}, "sample_rate"),
        ({"container": "wav"}, "container"),
        ({"speed": "0.5"}, "speed"),
        ({"mip_opt_out": "maybe"}, "mip_opt_out"),
    ],
)
def test_bad_options_name_their_parameter(query: dict[str, str], parameter: str) -> None:
    with pytest.raises(InvalidOptions) as error:
        parse_speak_options(query, Transport.WEBSOCKET)
    assert error.value.parameter == parameter


def test_models_must_be_known_unless_any_is_allowed() -> None:
    with pytest.raises(UnknownModel):
        parse_speak_options({"model": "aura-zork-en"}, Transport.WEBSOCKET)
    assert (
        parse_speak_options({"model": "aura-zork-en"}, Transport.WEBSOCKET, known_models=None).model
        == "aura-zork-en"
    )
    with pytest.raises(UnknownModel):
        parse_speak_options({"model": "nova-3"}, Transport.WEBSOCKET, known_models=None)


def test_options_write_a_query_that_parses_back() -> None:
    options = SpeakOptions(model="aura-2-thalia-en", encoding=Encoding.ALAW, sample_rate=16000, speed=0.8)
    from urllib.parse import parse_qsl

    assert parse_speak_options(dict(parse_qsl(options.to_query())), Transport.WEBSOCKET) == options


@pytest.mark.parametrize(
    ("authorization", "subprotocols", "secret", "via_subprotocol"),
    [
        ("Token abc", None, "abc", False),
        ("token   abc ", None, "abc", False),
        ("Bearer jwt.x.y", None, "jwt.x.y", False),
        (None, ["token", "abc"], "abc", True),
        ("Basic abc", None, None, False),
        ("Token ", None, None, False),
        (None, ["chat"], None, False),
        (None, None, None, False),
    ],
)
def test_credentials_are_read_from_header_or_subprotocol(
    authorization: str | None, subprotocols: list[str] | None, secret: str | None, via_subprotocol: bool
) -> None:
    credential = read_credential(authorization, subprotocols)
    assert (credential.secret if credential else None) == secret
    if credential:
        assert credential.via_subprotocol is via_subprotocol


def test_rest_metadata_headers_in_either_style_read_back() -> None:
    for style in HeaderStyle:
        headers = rest_metadata_headers(style, "rid", "aura-asteria-en", 12)
        assert read_response_header(headers, ("dg-request-id", "x-dg-request-id")) == "rid"
        assert read_response_header(headers, ("dg-char-count", "x-dg-characters")) == "12"


def test_closures_and_error_bodies() -> None:
    assert Closure.for_reason(CloseReason.SOCKET_TOO_OLD) == Closure(
        CloseCode.INTERNAL_ERROR, CloseReason.SOCKET_TOO_OLD
    )
    assert Closure.for_reason(CloseReason.DRAINING).is_retryable
    assert not Closure.for_reason(CloseReason.INVALID_MESSAGE).is_retryable
    assert Closure.parse(1011, "NET-0000") == Closure.for_reason(CloseReason.INTERNAL)
    assert Closure.parse(4000, "x") is None
    body = ErrorBody("INVALID_AUTH", "no", "rid")
    assert ErrorBody.parse(body.to_json()) == body
    assert ErrorBody.parse(b"<html>") is None
    assert ErrorBody.parse(json.dumps([1])) is None
    assert error_code_for_status(401) == "INVALID_AUTH"
    assert error_code_for_status(502) == "INTERNAL_SERVER_ERROR"
    assert error_code_for_status(418) == "Bad Request"
    assert [is_retryable_status(s) for s in (429, 503, 500, 400, 401)] == [True, True, True, False, False]
