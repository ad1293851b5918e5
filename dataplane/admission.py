"""Admission of a speak request, WS or REST: ids, drain and credential checks, auth, options, limits.

Each check either passes or raises `Refusal`, which carries the HTTP status and the protocol's error
body; the app turns it into a denial response (WS) or a JSON error (REST), with `dg-error` set.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from ttsfleet.dataplane.settings import SpeakSettings
from ttsfleet.dataplane.tokens import AuthOutcome, TokenStore, authenticate
from ttsfleet.protocol import (
    HTTP_STATUS_OF_ERROR,
    KNOWN_MODELS,
    ErrorBody,
    ErrorCode,
    InvalidOptions,
    SpeakOptions,
    Transport,
    UnknownModel,
    parse_speak_options,
)

RETRY_AFTER_S = 1  # a draining pod's clients should reconnect elsewhere at once
_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@dataclass(frozen=True)
class Refusal(Exception):
    """A request the gateway will not take, in the protocol's terms."""

    err_code: ErrorCode
    err_msg: str
    retry_after_s: int | None = None

    @property
    def status(self) -> int:
        return HTTP_STATUS_OF_ERROR[self.err_code]

    def body(self, request_id: str) -> str:
        return ErrorBody(self.err_code.value, self.err_msg, request_id).to_json()

    def headers(self, base: Mapping[str, str]) -> dict[str, str]:
        headers = {**base, "dg-error": header_safe(self.err_msg)}
        if self.retry_after_s is not None:
            headers["retry-after"] = str(self.retry_after_s)
        return headers


def header_safe(text: str) -> str:
    """Printable ASCII for a header value: messages may quote client input (a model name in any script)."""
    escaped = text.encode("ascii", "backslashreplace").decode("ascii")
    return "".join(c if " " <= c <= "~" else "?" for c in escaped)


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


def resolve_options(query: Mapping[str, str], transport: Transport, speak: SpeakSettings) -> SpeakOptions:
    """The query's options with this gateway's defaults and allow-lists applied; raises Refusal."""
    filled = dict(query)
    filled.setdefault("model", speak.default_model)
    if transport is Transport.WEBSOCKET and "encoding" not in filled:
        filled["encoding"] = speak.default_encoding.value
        filled.setdefault("sample_rate", str(speak.default_sample_rate))
    known = frozenset(speak.allowed_models) if speak.allowed_models else KNOWN_MODELS
    try:
        options = parse_speak_options(filled, transport, known)
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


def check_capacity(has_room: bool) -> None:
    if not has_room:
        raise Refusal(ErrorCode.TOO_MANY_REQUESTS, "This gateway is at its session limit.", RETRY_AFTER_S)
