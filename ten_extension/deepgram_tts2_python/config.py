"""The extension's settings, read once from its TEN properties and validated, naming the bad property.

No TEN import here: the extension hands in the property JSON as a dict.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import discovery, errors

# What the server can stream as linear16 (PROTOCOL.md, WebSocket query).
SAMPLE_RATES = (8000, 16000, 24000, 32000, 48000)
# Query keys the extension sets itself; `params` may not override them.
RESERVED_PARAMS = frozenset({"model", "encoding", "sample_rate", "container"})


@dataclass(frozen=True, slots=True)
class TTSConfig:
    """Validated settings; `url` is the resolved WebSocket endpoint with every query parameter."""

    url: str
    token: str = field(repr=False)  # never printed: it is a fleet token or a Deepgram key
    model: str = "aura-2-thalia-en"
    encoding: str = "linear16"
    sample_rate: int = 24000
    dump: bool = False
    dump_path: str = "."
    # A Flush at a sentence end once this many characters wait unflushed; less would hurt prosody.
    sentence_flush_chars: int = 80
    connect_timeout_s: float = 10.0
    # From a Flush to the next audio, Flushed or Cleared; past it the socket is taken as stalled.
    response_timeout_s: float = 10.0
    # Reconnection: attempts and full-jitter backoff bounds; Retry-After is honoured up to the cap.
    connect_attempts: int = 5
    backoff_base_s: float = 0.1
    backoff_cap_s: float = 3.0

    def describe(self) -> str:
        """A log line: everything but the token, which appears only as set or missing."""
        token = "set" if self.token else "missing"
        return (
            f"url={self.url} model={self.model} encoding={self.encoding} sample_rate={self.sample_rate} "
            f"dump={self.dump} token={token}"
        )


def _text(raw: Mapping[str, Any], key: str, default: str = "") -> str:
    value = raw.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise errors.ConfigError(f"property {key!r} must be a string")
    return value.strip()


def _number(raw: Mapping[str, Any], key: str, default: float, kind: type[int] | type[float]) -> Any:
    value = raw.get(key, default)
    if value in (None, ""):
        return default
    if isinstance(value, bool):
        raise errors.ConfigError(f"property {key!r} must be a number")
    try:
        # `${env:…}` placeholders always produce strings, so numbers may arrive as text.
        return kind(value)
    except (TypeError, ValueError) as exc:
        raise errors.ConfigError(f"property {key!r} must be a number, got {value!r}") from exc


def _flag(raw: Mapping[str, Any], key: str) -> bool:
    value = raw.get(key, False)
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _params(raw: Mapping[str, Any]) -> dict[str, discovery.QueryValue]:
    value = raw.get("params") or {}
    if not isinstance(value, Mapping):
        raise errors.ConfigError("property 'params' must be an object")
    clashing = RESERVED_PARAMS.intersection(value)
    if clashing:
        raise errors.ConfigError(f"property 'params' may not set {sorted(clashing)}: use the properties")
    return dict(value)


def _base_url(raw: Mapping[str, Any]) -> str:
    base_url = _text(raw, "base_url")
    if base_url:
        return base_url
    backend = _text(raw, "backend")
    if not backend:
        raise errors.ConfigError("set property 'backend' (<name>.<namespace>) or 'base_url'")
    try:
        return discovery.service_base_url(
            backend, _text(raw, "cluster_domain", "cluster.local"), _number(raw, "port", 8080, int)
        )
    except ValueError as exc:
        raise errors.ConfigError(f"property 'backend': {exc}") from exc


def parse_config(raw: Mapping[str, Any]) -> TTSConfig:
    """Validate the extension's properties; raises ConfigError naming the first bad one."""
    token = _text(raw, "token")
    if not token:
        raise errors.ConfigError("property 'token' is missing (a fleet token, or a Deepgram key)")
    encoding = _text(raw, "encoding", "linear16") or "linear16"
    if encoding != "linear16":
        raise errors.ConfigError("property 'encoding' must be 'linear16' (TEN frames carry PCM)")
    sample_rate = _number(raw, "sample_rate", 24000, int)
    if sample_rate not in SAMPLE_RATES:
        raise errors.ConfigError(f"property 'sample_rate' must be one of {SAMPLE_RATES}, got {sample_rate}")
    model = _text(raw, "model", "aura-2-thalia-en") or "aura-2-thalia-en"
    query: dict[str, discovery.QueryValue] = {
        "model": model,
        "encoding": encoding,
        "sample_rate": sample_rate,
    }
    query.update(_params(raw))
    try:
        url = discovery.speak_url(_base_url(raw), query)
    except ValueError as exc:
        raise errors.ConfigError(f"property 'base_url': {exc}") from exc
    flush_chars = _number(raw, "sentence_flush_chars", 80, int)
    if flush_chars < 1:
        raise errors.ConfigError("property 'sentence_flush_chars' must be at least 1")
    return TTSConfig(
        url=url,
        token=token,
        model=model,
        encoding=encoding,
        sample_rate=sample_rate,
        dump=_flag(raw, "dump"),
        dump_path=_text(raw, "dump_path", ".") or ".",
        sentence_flush_chars=flush_chars,
        connect_timeout_s=_number(raw, "connect_timeout_s", 10.0, float),
        response_timeout_s=_number(raw, "response_timeout_s", 10.0, float),
        connect_attempts=max(1, _number(raw, "connect_attempts", 5, int)),
    )
