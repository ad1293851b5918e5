"""The gateway's settings: grouped frozen models matching docs/contracts.md, built once at start.

Precedence is flags > `TTSFLEET_<GROUP>__<FIELD>` environment > config file (YAML/JSON) > defaults.
A bad value fails here, with a message naming the setting; nothing else reads the environment.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ttsfleet import contracts
from ttsfleet.fingerprints import hash_config
from ttsfleet.protocol import (
    DEFAULT_VOICE,
    SAMPLE_RATES,
    WEBSOCKET_ENCODINGS,
    Encoding,
    is_well_formed_voice,
)

ENV_PREFIX = "TTSFLEET_"
CONFIG_ENV = "TTSFLEET_CONFIG"


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names it."""


class _Group(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ServerSettings(_Group):
    host: str = Field(default="0.0.0.0", description="Address to listen on; all interfaces in a pod.")
    port: int = Field(default=8080, ge=0, le=65535, description="TCP port of /v1/speak and the probes.")
    pod_name: str = Field(
        default="", description="Reported in /statusz and x-ttsfleet-pod; host name if empty."
    )


class UpstreamSettings(_Group):
    url: str = Field(default="wss://api.deepgram.com", description="Deepgram's WebSocket base URL (ws/wss).")
    rest_url: str | None = Field(
        default=None,
        description="REST base URL for the fallback and REST relay; derived from `url` when null.",
    )

    @model_validator(mode="after")
    def _check_schemes(self) -> UpstreamSettings:
        if urlsplit(self.url).scheme not in ("ws", "wss") or not urlsplit(self.url).netloc:
            raise ValueError(f"upstream.url must be a ws:// or wss:// URL, not {self.url!r}")
        if self.rest_url is not None and (
            urlsplit(self.rest_url).scheme not in ("http", "https") or not urlsplit(self.rest_url).netloc
        ):
            raise ValueError(f"upstream.rest_url must be an http:// or https:// URL, not {self.rest_url!r}")
        return self

    @property
    def effective_rest_url(self) -> str:
        """The REST base URL: given, or the WS URL with ws→http and wss→https."""
        if self.rest_url is not None:
            return self.rest_url.rstrip("/")
        parts = urlsplit(self.url)
        scheme = "https" if parts.scheme == "wss" else "http"
        return urlunsplit((scheme, parts.netloc, parts.path, "", "")).rstrip("/")


class CredentialSettings(_Group):
    deepgram_key_file: Path = Field(
        default=Path(contracts.DEEPGRAM_KEY_FILE),
        description="Mounted Secret file holding the Deepgram key; re-read on change, never logged.",
    )
    poll_interval_s: float = Field(
        default=1.0, gt=0, description="Seconds between reads of the key and token files (Secret updates)."
    )


class AuthSettings(_Group):
    enabled: bool = Field(
        default=True, description="Require a fleet token; disable only on trusted networks."
    )
    client_tokens_file: Path = Field(
        default=Path(contracts.TOKENS_FILE), description="Fleet tokens, one per line."
    )


class SpeakSettings(_Group):
    default_model: str = Field(
        default=DEFAULT_VOICE, description="Model when the client names none; Deepgram's default unless set."
    )
    allowed_models: list[str] = Field(
        default=[], description="Models clients may ask for; [] = any well-formed voice."
    )
    tag_token_owner: bool = Field(
        default=False,
        description="Add a usage tag naming the fleet token (its id) to REST requests (Deepgram's reports).",
    )
    default_encoding: Encoding = Field(default=Encoding.LINEAR16, description="Encoding when none is asked.")
    allowed_encodings: list[Encoding] = Field(
        default=[Encoding.LINEAR16, Encoding.MULAW, Encoding.ALAW],
        description="Encodings clients may ask for.",
    )
    default_sample_rate: int = Field(default=24000, description="Sample rate (Hz) of the default encoding.")

    @model_validator(mode="after")
    def _check_defaults(self) -> SpeakSettings:
        if self.default_encoding not in WEBSOCKET_ENCODINGS:
            raise ValueError(
                f"speak.default_encoding must be linear16, mulaw or alaw, not {self.default_encoding}"
            )
        if self.default_sample_rate not in SAMPLE_RATES[self.default_encoding]:
            raise ValueError(
                f"speak.default_sample_rate {self.default_sample_rate} not for {self.default_encoding}"
            )
        for voice in (self.default_model, *self.allowed_models):
            if not is_well_formed_voice(voice):
                raise ValueError(f"speak: {voice!r} is not a voice name (aura-<voice>-<lang>)")
        if self.allowed_models and self.default_model not in self.allowed_models:
            raise ValueError("speak.default_model must be one of speak.allowed_models")
        if self.allowed_encodings and self.default_encoding not in self.allowed_encodings:
            raise ValueError("speak.default_encoding must be one of speak.allowed_encodings")
        return self


class PoolSettings(_Group):
    warm_min_per_key: int = Field(
        default=1, ge=0, description="Idle upstream sockets kept open per (model, encoding, rate, speed)."
    )
    max_sockets: int = Field(
        default=64, ge=1, description="Upstream sockets per pod; Deepgram's concurrency limit is per project."
    )
    max_socket_age_s: float = Field(
        default=3300, gt=0, le=3600, description="Recycle before Deepgram's 60-minute socket age limit."
    )
    idle_ping_interval_s: float = Field(
        default=20, gt=0, description="Ping idle sockets this often; there is no KeepAlive message for TTS."
    )
    idle_key_ttl_s: float = Field(
        default=600,
        gt=0,
        description="A key (other than the default) unused this long loses its warm minimum and idle sockets;"
        " ten minutes keeps a voice warm across an agent's pauses without holding sockets for dead ones.",
    )
    spare_ratio: float = Field(
        default=0.5,
        ge=0,
        le=4,
        description="Idle sockets kept per key as a share of its peak leased sockets over `spare_window_s`"
        " (0.5 = one spare per two busy; 0.25 measurably left bursts paying handshakes at 200 sessions,"
        " docs/performance.md): an utterance that finds no idle socket pays a whole upstream handshake"
        " (~250 ms) before its first byte. 0 keeps only the warm minimum.",
    )
    spare_window_s: float = Field(
        default=60,
        gt=0,
        description="Seconds the peak of leased sockets is remembered for `spare_ratio`: Deepgram's Flush"
        " budget is per minute, and a minute spans several turns of a conversation, so spares outlast the"
        " pauses between bursts yet follow the load down within a minute.",
    )
    spare_lead_s: float = Field(
        default=1.0,
        ge=0,
        le=60,
        description="Seconds of new leases, at the key's recent lease rate, whose Flushes the key's sockets"
        " keep in hand: each socket takes 20 Flushes a minute, so a busy key spends its sockets' budget"
        " steadily, and opening the next socket before the budget runs out keeps utterances from waiting"
        " for a handshake (~250 ms). One second covers a handshake several times over, yet at 10 % speaking"
        " costs only ~1 socket per 400 sessions above Deepgram's Flush floor;"
        " 0 turns it off (spares then follow only the peak of leased sockets).",
    )
    session_utterance_interval_s: float = Field(
        default=20.0,
        ge=0,
        description="Seconds between the utterances a session is assumed to start, until the pod has seen"
        " its own sessions of the key speak for `spare_window_s` (then it learns the interval from them):"
        " 20 s is an agent speaking 10 % of the time in 2 s sentences. Spares are kept for the lease rate"
        " the key's connected sessions would make at that interval, so a crowd that connects at once (a"
        " fleet's reconnect, a cold pod) finds them open when it starts to speak, instead of paying the"
        " first handshakes. Only keys already spoken on (and the default key) count sessions, so idle"
        " sessions of unspoken voices still hold no socket. 0 turns it off.",
    )
    max_spare_per_key: int = Field(
        default=16,
        ge=0,
        description="Most idle sockets `spare_ratio` may ask for per key (the warm minimum is kept even"
        " above it): idle sockets still count against Deepgram's per-project concurrency limit.",
    )


class TimeoutSettings(_Group):
    connect_s: float = Field(default=5, gt=0, description="TCP + TLS + upgrade + Metadata of a new socket.")
    first_byte_s: float = Field(default=5, gt=0, description="From Flush to the first audio byte.")
    inter_chunk_s: float = Field(default=5, gt=0, description="Longest gap between audio frames.")
    utterance_s: float = Field(default=60, gt=0, description="From Flush to Flushed, whatever happens.")


class RetrySettings(_Group):
    max_attempts: int = Field(default=3, ge=1, description="Attempts per utterance, the first included.")
    base_delay_s: float = Field(
        default=0.05, ge=0, description="Backoff base; doubled per attempt, full jitter."
    )
    max_delay_s: float = Field(
        default=1.0, ge=0, description="Backoff cap, to stay within first-byte budgets."
    )

    @model_validator(mode="after")
    def _check_order(self) -> RetrySettings:
        if self.max_delay_s < self.base_delay_s:
            raise ValueError("retry.max_delay_s must not be smaller than retry.base_delay_s")
        return self


class BreakerSettings(_Group):
    failure_threshold: int = Field(default=5, ge=1, description="Consecutive upstream failures that open it.")
    open_s: float = Field(default=10, gt=0, description="Seconds open before a half-open probe.")
    half_open_max_probes: int = Field(default=1, ge=1, description="Concurrent probes while half-open.")


class CacheSettings(_Group):
    enabled: bool = Field(default=True, description="Serve repeated utterances from memory.")
    max_bytes: int = Field(default=64 * 1024 * 1024, ge=0, description="Audio bytes held, LRU beyond this.")
    ttl_s: float = Field(default=3600, gt=0, description="Seconds an entry lives; voices may be updated.")


class LimitSettings(_Group):
    max_sessions: int = Field(default=1000, ge=1, description="Client WebSocket sessions per pod.")
    max_speak_chars: int = Field(default=2000, ge=1, description="Characters in one Speak (Deepgram: 2000).")
    chars_per_minute_per_token: int = Field(
        default=20000, ge=1, description="Token bucket per fleet token, refilled per minute."
    )
    client_send_buffer_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="Audio queued for a slow client before 1011 NET-0002."
    )


class ConnectionSettings(_Group):
    """Bounds on what a connection may hold before and while the app reads it (docs/security.md)."""

    max_url_bytes: int = Field(
        default=16384, ge=256, description="Request target (path and query) length; longer gets 414."
    )
    max_head_bytes: int = Field(
        default=32768, ge=1024, description="Request line and header fields together; larger gets 431."
    )
    max_headers: int = Field(default=100, ge=8, description="Header fields in one request; more gets 431.")
    max_body_bytes: int = Field(
        default=65536,
        ge=1024,
        description="REST request body (Deepgram's 2,000 characters fit many times); larger gets 413.",
    )
    head_timeout_s: float = Field(
        default=10,
        gt=0,
        description="From connect (or the previous response) to a whole request head; then 408 and close.",
    )
    body_timeout_s: float = Field(
        default=10, gt=0, description="From the request head to the end of its body; then 408 and close."
    )
    fragment_timeout_s: float = Field(
        default=10, gt=0, description="An unfinished fragmented WebSocket message; then close 1008 DATA-0000."
    )
    close_timeout_s: float = Field(
        default=5,
        gt=0,
        description="After our close frame, time for the client to read it and answer; then the socket is"
        " dropped with whatever it still buffers.",
    )
    max_pending: int = Field(
        default=512,
        ge=1,
        description="Connections that have not sent a whole request head (so are not yet authenticated);"
        " beyond it the oldest is dropped, so new connections, probes included, are still served.",
    )
    max_upgrading: int = Field(
        default=4,
        ge=1,
        description="WebSocket upgrades set up at once; the others wait their turn in arrival order, so that"
        " a crowd connecting does not stall the audio of sessions already speaking.",
    )
    max_upgrades_waiting: int = Field(
        default=2048,
        ge=0,
        description="WebSocket upgrades waiting for their turn; beyond it an upgrade gets 503 with"
        " Retry-After at once.",
    )


class ShareSettings(_Group):
    """This pod's share of fleet-wide budgets, divided by the operator (docs/contracts.md, "Shares file")."""

    file: Path | None = Field(
        default=None,
        description="The shares file (a mounted ConfigMap), re-read every `credentials.poll_interval_s`;"
        " null: no fleet-wide budgets, the limits here apply as they are.",
    )
    required: bool = Field(
        default=False,
        description="An upstream socket budget is set: open no upstream socket, and report not ready,"
        " until the shares file gives this pod its share.",
    )


class DrainSettings(_Group):
    timeout_s: float = Field(default=60, gt=0, description="Longest drain before remaining sessions are cut.")


class LoggingSettings(_Group):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="INFO", description="Log level.")
    format: Literal["json", "console"] = Field(default="json", description="JSON lines for collectors.")


class GatewaySettings(_Group):
    """Every setting of one gateway process."""

    server: ServerSettings = ServerSettings()
    upstream: UpstreamSettings = UpstreamSettings()
    credentials: CredentialSettings = CredentialSettings()
    auth: AuthSettings = AuthSettings()
    speak: SpeakSettings = SpeakSettings()
    pool: PoolSettings = PoolSettings()
    timeouts: TimeoutSettings = TimeoutSettings()
    retry: RetrySettings = RetrySettings()
    breaker: BreakerSettings = BreakerSettings()
    cache: CacheSettings = CacheSettings()
    limits: LimitSettings = LimitSettings()
    connections: ConnectionSettings = ConnectionSettings()
    shares: ShareSettings = ShareSettings()
    drain: DrainSettings = DrainSettings()
    logging: LoggingSettings = LoggingSettings()


class LoadedSettings(BaseModel):
    """The settings and the hash of the config file they came from (None without a file)."""

    model_config = ConfigDict(frozen=True)

    settings: GatewaySettings
    config_hash: str | None


def load_settings(
    flags: Mapping[str, Mapping[str, Any]],
    environ: Mapping[str, str],
    config_file: Path | None = None,
) -> LoadedSettings:
    """Merge the sources in precedence order and validate once; raises SettingsError."""
    path = config_file or (Path(environ[CONFIG_ENV]) if environ.get(CONFIG_ENV) else None)
    merged: dict[str, Any] = {}
    config_hash = None
    if path is not None:
        content = _read_config(path)
        config_hash = hash_config(content)
        _merge(merged, _parse_config(path, content))
    _merge(merged, _from_environ(environ))
    _merge(merged, {group: dict(values) for group, values in flags.items()})
    try:
        settings = GatewaySettings.model_validate(merged)
    except ValidationError as error:
        raise SettingsError(_describe(error)) from None
    if settings.auth.enabled and not settings.auth.client_tokens_file.is_file():
        raise SettingsError(
            f"auth.client_tokens_file: {settings.auth.client_tokens_file} is not a file "
            "(give --client-tokens-file, or --no-auth to disable client auth)"
        )
    return LoadedSettings(settings=settings, config_hash=config_hash)


def _read_config(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise SettingsError(f"config file {path}: {error.strerror}") from None


def _parse_config(path: Path, content: bytes) -> dict[str, Any]:
    try:
        data = json.loads(content) if path.suffix == ".json" else yaml.safe_load(content)
    except (ValueError, yaml.YAMLError) as error:
        raise SettingsError(f"config file {path} is not valid YAML/JSON: {error}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SettingsError(f"config file {path} must hold a mapping of groups")
    return data


def _from_environ(environ: Mapping[str, str]) -> dict[str, Any]:
    """`TTSFLEET_<GROUP>__<FIELD>` for our groups; other `TTSFLEET_*` names belong to other tools."""
    groups = GatewaySettings.model_fields
    result: dict[str, dict[str, Any]] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        group, _, field = name[len(ENV_PREFIX) :].lower().partition("__")
        if group not in groups:
            continue
        group_model = groups[group].annotation
        assert isinstance(group_model, type)
        assert issubclass(group_model, BaseModel)
        if field not in group_model.model_fields:
            raise SettingsError(f"{name}: {group} has no setting {field!r}")
        is_list = "list" in str(group_model.model_fields[field].annotation)
        result.setdefault(group, {})[field] = _parse_env_value(raw, is_list)
    return result


def _parse_env_value(raw: str, is_list: bool) -> Any:
    if raw.startswith("["):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    if is_list:
        return [item.strip() for item in raw.split(",") if item.strip()]
    return raw


def _merge(target: dict[str, Any], source: Mapping[str, Any]) -> None:
    for key, value in source.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = dict(value) if isinstance(value, Mapping) else value


def _describe(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"]) or "settings"
        message = item["msg"].removeprefix("Value error, ")
        problems.append(f"{location}: {message}" if not message.startswith(location) else message)
    return "; ".join(problems)
