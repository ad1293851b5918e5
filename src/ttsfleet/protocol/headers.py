"""HTTP headers of the speak protocol: credentials in, request ids and REST metadata out.

Credentials come as `Authorization: Token <key>`, `Authorization: Bearer <jwt>`, or, from browsers,
`Sec-WebSocket-Protocol: token, <key>` (the server then selects the scheme as the client spelled it:
a client that offered `Token` fails its handshake if the server answers `token`). REST answers name their
metadata `dg-*` (documented) or `x-dg-*` (seen from newer voices); readers accept both.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass


class Scheme(enum.StrEnum):
    TOKEN = "token"
    BEARER = "bearer"


@dataclass(frozen=True, slots=True)
class Credential:
    """A credential as presented; `subprotocol`: the scheme as offered, for the server to select."""

    scheme: Scheme
    secret: str
    subprotocol: str | None = None

    @property
    def via_subprotocol(self) -> bool:
        return self.subprotocol is not None


SUBPROTOCOL_TOKEN = "token"
# A key or token goes into an `Authorization` header: Deepgram keys are 40 hex digits, its JWTs a few KiB.
MAX_CREDENTIAL_BYTES = 8192


def credential_problem(value: str) -> str | None:
    """Why `value` (stripped) cannot be a key or token in a header, or None when it can."""
    if len(value.encode()) > MAX_CREDENTIAL_BYTES:
        return f"it is larger than {MAX_CREDENTIAL_BYTES} bytes"
    if not all("!" <= c <= "~" for c in value):
        return "it holds whitespace, control or non-ASCII characters"
    return None


def read_credential(authorization: str | None, subprotocols: list[str] | None = None) -> Credential | None:
    """The credential a request presents, or None when there is none (an empty one counts as none)."""
    if authorization:
        scheme, _, secret = authorization.strip().partition(" ")
        secret = secret.strip()
        lowered = scheme.lower()
        if secret and lowered in (Scheme.TOKEN, Scheme.BEARER):
            return Credential(Scheme(lowered), secret)
        return None
    protocols = [p.strip() for p in subprotocols or [] if p.strip()]
    if len(protocols) >= 2 and protocols[0].lower() == SUBPROTOCOL_TOKEN:
        return Credential(Scheme.TOKEN, protocols[1], subprotocol=protocols[0])
    return None


class HeaderStyle(enum.StrEnum):
    """Which names REST metadata headers use."""

    DOCUMENTED = "dg"  # dg-request-id, dg-model-name, dg-char-count
    LIVE = "x-dg"  # x-dg-request-id, x-dg-model-name, x-dg-characters


REQUEST_ID_HEADERS = ("dg-request-id", "x-dg-request-id")
MODEL_NAME_HEADERS = ("dg-model-name", "x-dg-model-name")
CHAR_COUNT_HEADERS = ("dg-char-count", "x-dg-characters")
ERROR_HEADER = "dg-error"


def rest_metadata_headers(style: HeaderStyle, request_id: str, model: str, chars: int) -> dict[str, str]:
    """The metadata headers of a REST answer in `style`."""
    index = 0 if style is HeaderStyle.DOCUMENTED else 1
    return {
        REQUEST_ID_HEADERS[index]: request_id,
        MODEL_NAME_HEADERS[index]: model,
        CHAR_COUNT_HEADERS[index]: str(chars),
    }


def read_response_header(headers: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    """The first of `names` present in `headers` (case-insensitive mappings expected)."""
    for name in names:
        value = headers.get(name)
        if value is not None:
            return value
    return None
