"""The upstream half of a TTSBackend: where Deepgram is, which key, which voice, and client auth."""

from __future__ import annotations

import enum
from typing import Annotated

from pydantic import Field, StringConstraints

from ttsfleet import protocol
from ttsfleet.operator.api.base import ApiModel, CelRule, group

# Deepgram voices appear without notice, so the shape is checked, not a list (protocol.voices).
MODEL_PATTERN = protocol.VOICE_PATTERN
SECRET_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
SECRET_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"

ModelName = Annotated[str, StringConstraints(pattern=MODEL_PATTERN, max_length=protocol.VOICE_MAX_LENGTH)]


class SpeakEncoding(enum.StrEnum):
    """Encodings the gateway serves on its WebSocket face (PROTOCOL.md: only PCM there)."""

    LINEAR16 = protocol.Encoding.LINEAR16.value
    MULAW = protocol.Encoding.MULAW.value
    ALAW = protocol.Encoding.ALAW.value


def _rates_cel() -> str:
    # A CEL map literal from encoding to its allowed rates, built from the protocol's table.
    entries = []
    for encoding in SpeakEncoding:
        rates = ", ".join(str(rate) for rate in protocol.SAMPLE_RATES[protocol.Encoding(encoding)])
        entries.append(f"'{encoding.value}': [{rates}]")
    return "{" + ", ".join(entries) + "}"


def default_sample_rate(encoding: SpeakEncoding) -> int:
    """The rate used when `sampleRate` is left out: the encoding's default (first listed)."""
    return protocol.SAMPLE_RATES[protocol.Encoding(encoding)][0]


def is_allowed_sample_rate(encoding: SpeakEncoding, sample_rate: int) -> bool:
    """Whether Deepgram offers `sample_rate` for `encoding`."""
    return sample_rate in protocol.SAMPLE_RATES[protocol.Encoding(encoding)]


class SecretKeyRef(ApiModel):
    """A key inside a Secret in the backend's namespace."""

    name: str = Field(
        max_length=253,
        pattern=SECRET_NAME_PATTERN,
        description="Name of the Secret, in the backend's namespace.",
    )
    key: str = Field(
        default="api-key",
        max_length=253,
        pattern=SECRET_KEY_PATTERN,
        description="Key inside the Secret's data.",
    )


class TokensSecretRef(SecretKeyRef):
    """A Secret key holding client (fleet) tokens, one per line."""

    key: str = Field(
        default="tokens",
        max_length=253,
        pattern=SECRET_KEY_PATTERN,
        description="Key inside the Secret's data; its value holds one token per line.",
    )


class UpstreamPoolSpec(ApiModel):
    """Warm upstream WebSockets each pod keeps: they save a TLS and WebSocket handshake per utterance."""

    warm_sockets_per_key: int = Field(
        default=1,
        ge=0,
        le=16,
        description="Idle sockets kept open per (model, encoding, sampleRate, speed); 0 opens on demand.",
    )
    max_sockets: int = Field(
        default=64,
        ge=1,
        le=1024,
        description="Upstream sockets per pod at most; Deepgram limits concurrency per project.",
    )


class DeepgramSpec(ApiModel):
    """The upstream Deepgram (or Deepgram-compatible) speak API and the defaults clients get."""

    cel_rules = (
        CelRule(
            rule=(
                "!has(self.allowedModels) || size(self.allowedModels) == 0 "
                "|| self.model in self.allowedModels"
            ),
            message="model must be one of allowedModels",
            check=lambda s: not s.allowed_models or s.model in s.allowed_models,
            field_path=".model",
        ),
        CelRule(
            rule=f"!has(self.sampleRate) || self.sampleRate in {_rates_cel()}[self.encoding]",
            message="sampleRate is not offered for this encoding (mulaw and alaw: 8000 or 16000)",
            check=lambda s: s.sample_rate is None or is_allowed_sample_rate(s.encoding, s.sample_rate),
            field_path=".sampleRate",
        ),
    )

    url: str = Field(
        default="wss://api.deepgram.com",
        max_length=2048,
        pattern=r"^wss?://[^\s/]+(/[^\s]*)?$",
        description="WebSocket base URL of the upstream speak API (ws:// only for in-cluster emulators).",
    )
    rest_url: str | None = Field(
        default=None,
        max_length=2048,
        pattern=r"^https?://[^\s/]+(/[^\s]*)?$",
        description="REST base URL for the fallback path; derived from url when left out.",
    )
    api_key_secret_ref: SecretKeyRef = Field(
        description="The Secret key holding the Deepgram API key, mounted as a file and re-read on change."
    )
    model: ModelName = Field(
        default=protocol.DEFAULT_VOICE,
        description="Voice used when a client does not name one (aura-… name); Deepgram's default if unset.",
    )
    allowed_models: list[ModelName] = Field(
        default_factory=list,
        max_length=128,
        description="Voices clients may ask for; empty allows any well-formed aura voice.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    encoding: SpeakEncoding = Field(
        default=SpeakEncoding.LINEAR16, description="Audio encoding used when a client does not name one."
    )
    sample_rate: int | None = Field(
        default=None,
        ge=8000,
        le=48000,
        description="Sample rate in Hz used when a client names none; unset: the encoding's default.",
    )
    tag_token_owner: bool = Field(
        default=False,
        description=(
            "Add a usage tag naming the client's fleet token (its id, never the token) to REST requests, "
            "so Deepgram's usage reports show who spent what."
        ),
    )
    pool: UpstreamPoolSpec = group(UpstreamPoolSpec, "Warm upstream connection pool of each pod.")
    socket_budget: int | None = Field(
        default=None,
        ge=1,
        le=100000,
        description=(
            "Upstream WebSockets all pods together may hold open (warm ones and spares included): the "
            "Deepgram project's concurrency limit, 15 on Pay as You Go and Growth (Deepgram's API Rate "
            "Limits page). Divided among the pods and re-divided as they come and go; a pod waits for "
            "its share before it is ready. Unset: each pod is bounded by pool.maxSockets only."
        ),
    )
    price_per_thousand_characters: float = Field(
        default=0.030,
        ge=0,
        le=1000,
        description=(
            "US dollars per 1,000 characters for status.usage's cost estimate; Deepgram's Pay as You Go "
            "list price for Aura-2 (Aura-1 voices list at 0.015)."
        ),
    )

    @property
    def effective_sample_rate(self) -> int:
        """The default sample rate clients get."""
        return self.sample_rate if self.sample_rate is not None else default_sample_rate(self.encoding)


class AuthSpec(ApiModel):
    """How clients (TEN agents) authenticate to the gateway: fleet tokens, never the Deepgram key."""

    cel_rules = (
        CelRule(
            rule="!self.enabled || has(self.clientTokensSecretRef)",
            message="clientTokensSecretRef is required unless auth is disabled (enabled: false)",
            check=lambda s: not s.enabled or s.client_tokens_secret_ref is not None,
            field_path=".clientTokensSecretRef",
        ),
    )

    enabled: bool = Field(
        default=True,
        description="Require `Authorization: Token <fleet token>`; false opens the backend to any pod.",
    )
    client_tokens_secret_ref: TokensSecretRef | None = Field(
        default=None,
        description="The Secret key holding accepted fleet tokens, one per line (re-read on change).",
    )


class RotationStrategy(enum.StrEnum):
    """How a change of the Deepgram key Secret reaches the pods."""

    RELOAD = "reload"
    RESTART = "restart"


class RotationSpec(ApiModel):
    """Deepgram key rotation."""

    strategy: RotationStrategy = Field(
        default=RotationStrategy.RELOAD,
        description=(
            "reload: pods re-read the mounted key and the operator reports when every pod uses it; "
            "restart: a hash of the Secret on the pod template rolls the pods, draining each."
        ),
    )
