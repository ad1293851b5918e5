"""The extension's settings, read from its TEN properties in the shape TEN's own deepgram_tts uses.

TEN's shape: top-level `api_key`, `base_url`, `model`, `encoding`, `sample_rate`, `dump`, `dump_path`
and `params`; a setting inside `params` wins over the top-level one, and every other `params` entry goes
upstream as a query parameter. On top of it: `backend` (`<name>.<namespace>`, the fleet Service, which
wins over `base_url` so a stock property block plus `backend` speaks to the fleet), `cluster_domain`,
`port` and the client's own tuning knobs. The key (a fleet token, or a Deepgram key) is `params.api_key`.

No TEN import here: the extension hands in the property JSON as a dict.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import discovery, errors

# Where TEN's deepgram_tts speaks when no endpoint is given: Deepgram itself.
DEEPGRAM_BASE_URL = "wss://api.deepgram.com"
DEFAULT_MODEL = "aura-2-thalia-en"
# TEN's deepgram_tts default; dumps are a debugging aid the operator of the agent turns on.
DEFAULT_DUMP_PATH = "/tmp"  # noqa: S108
# What the server can stream as linear16 (PROTOCOL.md, WebSocket query).
SAMPLE_RATES = (8000, 16000, 24000, 32000, 48000)
# `params` entries that are settings of the extension, never query parameters.
SETTINGS_IN_PARAMS = ("api_key", "base_url", "backend", "model", "encoding", "sample_rate")


@dataclass(frozen=True, slots=True)
class TTSConfig:
    """Validated settings; `url` is the resolved WebSocket endpoint with every query parameter."""

    url: str
    api_key: str = field(repr=False)  # never printed: it is a fleet token or a Deepgram key
    endpoint: str = "backend"  # how `url` was chosen: "backend", "base_url" or "deepgram"
    model: str = DEFAULT_MODEL
    encoding: str = "linear16"
    sample_rate: int = 24000
    dump: bool = False
    dump_path: str = DEFAULT_DUMP_PATH
    # A Flush at a sentence end once this many characters wait unflushed; less would hurt prosody.
    sentence_flush_chars: int = 80
    connect_timeout_s: float = 10.0
    # From a Flush or Clear to the next audio, Flushed or Cleared; past it the socket is taken as stalled.
    response_timeout_s: float = 10.0
    # Reconnection: attempts and full-jitter backoff bounds; Retry-After is honoured up to the cap.
    connect_attempts: int = 5
    backoff_base_s: float = 0.1
    backoff_cap_s: float = 3.0

    def describe(self) -> str:
        """A log line: the URL with its query secrets masked, the key only as set or missing."""
        key = "set" if self.api_key else "missing"
        return (
            f"url={discovery.redacted_url(self.url)} (from {self.endpoint}) model={self.model} "
            f"encoding={self.encoding} sample_rate={self.sample_rate} dump={self.dump} api_key={key}"
        )


def _text(raw: Mapping[str, Any], key: str, default: str = "", shown_as: str | None = None) -> str:
    value = raw.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise errors.ConfigError(f"property {shown_as or key!r} must be a string")
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


def _split_params(raw: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, discovery.QueryValue]]:
    """(settings with `params` overrides applied, the query parameters left in `params`)."""
    params = raw.get("params") or {}
    if not isinstance(params, Mapping):
        raise errors.ConfigError("property 'params' must be an object")
    settings = dict(raw)
    query: dict[str, discovery.QueryValue] = {}
    for key, value in params.items():
        if key in SETTINGS_IN_PARAMS:
            settings[key] = value
        elif value is not None:
            query[key] = value
    container = query.get("container", "none")
    if container != "none":
        raise errors.ConfigError("property 'params.container' must be 'none' (TEN frames carry raw PCM)")
    return settings, query


def _endpoint(settings: Mapping[str, Any]) -> tuple[str, str]:
    """(base URL, where it came from): backend first, then base_url, then Deepgram."""
    backend = _text(settings, "backend")
    if backend:
        try:
            return discovery.service_base_url(
                backend,
                _text(settings, "cluster_domain", "cluster.local"),
                _number(settings, "port", 8080, int),
            ), "backend"
        except ValueError as exc:
            raise errors.ConfigError(f"property 'backend': {exc}") from exc
    base_url = _text(settings, "base_url")
    if base_url:
        return base_url, "base_url"
    return DEEPGRAM_BASE_URL, "deepgram"


def parse_config(raw: Mapping[str, Any]) -> TTSConfig:
    """Validate the extension's properties; raises ConfigError naming the first bad one."""
    settings, query = _split_params(raw)
    api_key = _text(settings, "api_key", shown_as="params.api_key")
    if not api_key:
        raise errors.ConfigError("property 'params.api_key' is missing (a fleet token, or a Deepgram key)")
    encoding = _text(settings, "encoding", "linear16") or "linear16"
    if encoding != "linear16":
        raise errors.ConfigError("property 'params.encoding' must be 'linear16' (TEN frames carry PCM)")
    sample_rate = _number(settings, "sample_rate", 24000, int)
    if sample_rate not in SAMPLE_RATES:
        raise errors.ConfigError(
            f"property 'params.sample_rate' must be one of {SAMPLE_RATES}, got {sample_rate}"
        )
    model = _text(settings, "model", DEFAULT_MODEL) or DEFAULT_MODEL
    base_url, endpoint = _endpoint(settings)
    try:
        url = discovery.speak_url(
            base_url, {"model": model, "encoding": encoding, "sample_rate": sample_rate, **query}
        )
    except ValueError as exc:
        raise errors.ConfigError(f"property 'base_url': {exc}") from exc
    flush_chars = _number(settings, "sentence_flush_chars", 80, int)
    if flush_chars < 1:
        raise errors.ConfigError("property 'sentence_flush_chars' must be at least 1")
    return TTSConfig(
        url=url,
        api_key=api_key,
        endpoint=endpoint,
        model=model,
        encoding=encoding,
        sample_rate=sample_rate,
        dump=_flag(settings, "dump"),
        dump_path=_text(settings, "dump_path", DEFAULT_DUMP_PATH) or DEFAULT_DUMP_PATH,
        sentence_flush_chars=flush_chars,
        connect_timeout_s=_number(settings, "connect_timeout_s", 10.0, float),
        response_timeout_s=_number(settings, "response_timeout_s", 10.0, float),
        connect_attempts=max(1, _number(settings, "connect_attempts", 5, int)),
    )


def merged(current: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Properties after an `update_configs`: top-level keys replaced, `params` merged key by key."""
    result = dict(current)
    for key, value in update.items():
        if key == "params" and isinstance(value, Mapping) and isinstance(result.get("params"), Mapping):
            result["params"] = {**result["params"], **value}
        else:
            result[key] = value
    return result
