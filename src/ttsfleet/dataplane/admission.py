"""Admission of a speak request, WS or REST: ids, drain and credential checks, auth, options, limits.

Each check either passes or raises `errors.Refusal`, whose ErrorCode decides the HTTP status; the app
answers it through `answers.py` as a denial response (WS) or a JSON error (REST), with `dg-error` set.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable

from ttsfleet.dataplane.errors import Refusal
from ttsfleet.dataplane.settings import SpeakSettings
from ttsfleet.dataplane.tokens import AuthOutcome, TokenStore, authenticate
from ttsfleet.protocol import (
    ErrorCode,
    InvalidOptions,
    SpeakOptions,
    Transport,
    UnknownModel,
    parse_speak_options,
)

RETRY_AFTER_S = 1  # a draining pod's clients should reconnect elsewhere at once
_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def new_request_id() -> str:
    return str(uuid.uuid4())


def client_request_id(raw: str | None) -> str | None:
    """The client's x-request-id when it is a sane token; never echoed into logs otherwise."""
    return raw if raw and _CLIENT_REQUEST_ID.match(raw) else None


def check_serving(draining: bool, has_key: bool, key_refused: bool) -> None:
    if draining:
        raise Refusal(ErrorCode.UNAVAILABLE, "This gateway is draining; reconnect.", RETRY_AFTER_S)
    if not has_key or key_refused:
        raise Refusal(ErrorCode.UNAVAILABLE, "This gateway has no usable upstream credential.", RETRY_AFTER_S)


def check_auth(
    store: TokenStore | None, authorization: str | None, subprotocols: list[str] | None
) -> AuthOutcome:
    outcome = authenticate(store, authorization, subprotocols)
    if outcome is None:
        raise Refusal(ErrorCode.INVALID_AUTH, "Invalid credentials.")
    return outcome


def resolve_options(
    query: Iterable[tuple[str, str]], transport: Transport, speak: SpeakSettings
) -> SpeakOptions:
    """The query's options (as pairs: `tag` may repeat) with this gateway's defaults and allow-list
    applied: an empty `allowed_models` lets any well-formed voice through, as Deepgram adds voices
    without notice. Raises Refusal."""
    pairs = list(query)
    named = {name for name, value in pairs if value != ""}
    if "model" not in named:
        pairs.append(("model", speak.default_model))
    if transport is Transport.WEBSOCKET and "encoding" not in named:
        pairs.append(("encoding", speak.default_encoding.value))
        if "sample_rate" not in named:
            pairs.append(("sample_rate", str(speak.default_sample_rate)))
    try:
        options = parse_speak_options(pairs, transport, frozenset(speak.allowed_models) or None)
    except UnknownModel as error:
        raise Refusal(ErrorCode.UNKNOWN_MODEL, str(error)) from None
    except InvalidOptions as error:
        raise Refusal(ErrorCode.INVALID_QUERY_PARAMETER, str(error)) from None
    if (
        transport is Transport.WEBSOCKET
        and speak.allowed_encodings
        and options.encoding not in speak.allowed_encodings
    ):
        raise Refusal(ErrorCode.INVALID_QUERY_PARAMETER, f"encoding {options.encoding} is not offered here")
    return options


def owner_tag(token_id: str | None) -> str | None:
    """The usage tag naming who spent: the fleet token's id (a fingerprint, never the token)."""
    return f"ttsfleet-token-{token_id}" if token_id else None


def check_capacity(has_room: bool) -> None:
    if not has_room:
        raise Refusal(ErrorCode.TOO_MANY_REQUESTS, "This gateway is at its session limit.", RETRY_AFTER_S)
