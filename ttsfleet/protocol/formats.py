"""Audio formats and query options of `/v1/speak` (PROTOCOL.md, "WebSocket" and "REST").

Parsing is pure: it takes the query as a mapping and returns validated options or raises
`InvalidOptions` with a message fit for the client.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from ttsfleet.protocol.untrusted import quoted


class Encoding(enum.StrEnum):
    """Audio encodings Deepgram offers; only the first three exist on the WebSocket."""

    LINEAR16 = "linear16"
    MULAW = "mulaw"
    ALAW = "alaw"
    MP3 = "mp3"
    OPUS = "opus"
    FLAC = "flac"
    AAC = "aac"


class Container(enum.StrEnum):
    """Containers around the audio: only `none` on the WebSocket; `wav` is REST's default for PCM."""

    NONE = "none"
    WAV = "wav"
    OGG = "ogg"


class Transport(enum.StrEnum):
    """Which face of `/v1/speak` a request came through: their rules differ."""

    WEBSOCKET = "websocket"
    REST = "rest"


PCM_ENCODINGS: frozenset[Encoding] = frozenset({Encoding.LINEAR16, Encoding.MULAW, Encoding.ALAW})
WEBSOCKET_ENCODINGS = PCM_ENCODINGS

# Sample rates per encoding, default first.
SAMPLE_RATES: dict[Encoding, tuple[int, ...]] = {
    Encoding.LINEAR16: (24000, 8000, 16000, 32000, 48000),
    Encoding.MULAW: (8000, 16000),
    Encoding.ALAW: (8000, 16000),
    Encoding.MP3: (22050,),
    Encoding.OPUS: (48000,),
    Encoding.FLAC: (48000, 8000, 16000, 22050, 32000),
    Encoding.AAC: (22050,),
}

BYTES_PER_SAMPLE: dict[Encoding, int] = {Encoding.LINEAR16: 2, Encoding.MULAW: 1, Encoding.ALAW: 1}

DEFAULT_MODEL = "aura-asteria-en"
SPEED_RANGE = (0.7, 1.5)
DEFAULT_SPEED = 1.0

# Aura voices (first generation) and Aura-2 voices; names are `aura-<voice>-<lang>` or
# `aura-2-<voice>-<lang>`. Deepgram answers 400 for a model it does not know.
KNOWN_MODELS: frozenset[str] = frozenset(
    [
        f"aura-{voice}-en"
        for voice in (
            "asteria",
            "luna",
            "stella",
            "athena",
            "hera",
            "orion",
            "arcas",
            "perseus",
            "angus",
            "orpheus",
            "helios",
            "zeus",
        )
    ]
    + [
        f"aura-2-{voice}-en"
        for voice in (
            "thalia",
            "andromeda",
            "helena",
            "apollo",
            "arcas",
            "aries",
            "amalthea",
            "asteria",
            "athena",
            "atlas",
            "aurora",
            "callista",
            "cora",
            "cordelia",
            "delia",
            "draco",
            "electra",
            "harmonia",
            "hera",
            "hermes",
            "hyperion",
            "iris",
            "janus",
            "juno",
            "jupiter",
            "luna",
            "mars",
            "minerva",
            "neptune",
            "odysseus",
            "ophelia",
            "orion",
            "orpheus",
            "pandora",
            "phoebe",
            "pluto",
            "saturn",
            "selene",
            "theia",
            "vesta",
            "zeus",
        )
    ]
    + [f"aura-2-{voice}-es" for voice in ("celeste", "estrella", "nestor", "sirio", "carina", "alvaro")]
)

_MODEL_SHAPE = re.compile(r"^aura(-2)?-[a-z]+-[a-z]{2}$")


class InvalidOptions(ValueError):
    """A query parameter is missing, malformed or not allowed; the message names it."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


class UnknownModel(InvalidOptions):
    """The model is well-formed or not, but not one the server offers."""


@dataclass(frozen=True, slots=True)
class AudioFormat:
    """What the audio bytes are: encoding, rate and container."""

    encoding: Encoding
    sample_rate: int
    container: Container = Container.NONE

    @property
    def bytes_per_second(self) -> int:
        """Bytes of PCM per second of audio (PCM encodings only)."""
        return self.sample_rate * BYTES_PER_SAMPLE[self.encoding]

    def duration_ms(self, byte_count: int) -> float:
        """Milliseconds of audio in `byte_count` bytes of headerless PCM."""
        return byte_count * 1000.0 / self.bytes_per_second

    @property
    def content_type(self) -> str:
        """The HTTP content type Deepgram sends for this format."""
        if self.container is Container.WAV:
            return "audio/wav"
        return {
            Encoding.LINEAR16: f"audio/l16;rate={self.sample_rate}",
            Encoding.MULAW: f"audio/basic;rate={self.sample_rate}",
            Encoding.ALAW: f"audio/x-alaw-basic;rate={self.sample_rate}",
            Encoding.MP3: "audio/mpeg",
            Encoding.OPUS: "audio/ogg",
            Encoding.FLAC: "audio/flac",
            Encoding.AAC: "audio/aac",
        }[self.encoding]


@dataclass(frozen=True, slots=True)
class SpeakOptions:
    """Validated options of one `/v1/speak` request; fixed for a WebSocket's life."""

    model: str = DEFAULT_MODEL
    encoding: Encoding = Encoding.LINEAR16
    sample_rate: int = 24000
    container: Container = Container.NONE
    speed: float = DEFAULT_SPEED
    mip_opt_out: bool = False

    @property
    def audio_format(self) -> AudioFormat:
        return AudioFormat(self.encoding, self.sample_rate, self.container)

    def to_query(self) -> str:
        """The query string that asks for exactly these options (defaults left out where safe)."""
        params: dict[str, str] = {
            "model": self.model,
            "encoding": self.encoding.value,
            "sample_rate": str(self.sample_rate),
        }
        if self.container is not Container.NONE:
            params["container"] = self.container.value
        if self.speed != DEFAULT_SPEED:
            params["speed"] = _format_speed(self.speed)
        if self.mip_opt_out:
            params["mip_opt_out"] = "true"
        return urlencode(params)


def _format_speed(speed: float) -> str:
    return f"{speed:g}"


def _parse_bool(parameter: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no", ""):
        return False
    raise InvalidOptions(parameter, f"{parameter} must be true or false, not {quoted(raw)}")


def parse_speed(raw: str) -> float:
    """Speed as a float inside Deepgram's range."""
    try:
        speed = float(raw)
    except ValueError:
        raise InvalidOptions("speed", f"speed must be a number, not {quoted(raw)}") from None
    low, high = SPEED_RANGE
    if not low <= speed <= high:
        raise InvalidOptions("speed", f"speed must be between {low} and {high}, not {quoted(raw)}")
    return speed


def parse_sample_rate(encoding: Encoding, raw: str | None) -> int:
    """The sample rate for `encoding`: its default when absent, else one of its documented rates."""
    rates = SAMPLE_RATES[encoding]
    if raw is None or raw == "":
        return rates[0]
    try:
        rate = int(raw)
    except ValueError:
        raise InvalidOptions("sample_rate", f"sample_rate must be an integer, not {quoted(raw)}") from None
    if rate not in rates:
        allowed = ", ".join(str(r) for r in sorted(rates))
        raise InvalidOptions(
            "sample_rate", f"sample_rate {rate} is not supported for {encoding}: use {allowed}"
        )
    return rate


def is_well_formed_model(model: str) -> bool:
    """Whether `model` has the shape of an Aura voice name."""
    return bool(_MODEL_SHAPE.match(model))


def parse_model(raw: str | None, known_models: frozenset[str] | None = KNOWN_MODELS) -> str:
    """The model name; `known_models=None` accepts any well-formed name."""
    model = raw or DEFAULT_MODEL
    if not is_well_formed_model(model) or (known_models is not None and model not in known_models):
        raise UnknownModel("model", f"No such model: {quoted(model)}")
    return model


def parse_speak_options(
    query: Mapping[str, str],
    transport: Transport,
    known_models: frozenset[str] | None = KNOWN_MODELS,
) -> SpeakOptions:
    """Validate a `/v1/speak` query for the WebSocket or REST face."""
    model = parse_model(query.get("model"), known_models)
    default_encoding = Encoding.LINEAR16 if transport is Transport.WEBSOCKET else Encoding.MP3
    raw_encoding = query.get("encoding") or default_encoding.value
    try:
        encoding = Encoding(raw_encoding)
    except ValueError:
        raise InvalidOptions("encoding", f"Unsupported encoding: {quoted(raw_encoding)}") from None
    if transport is Transport.WEBSOCKET and encoding not in WEBSOCKET_ENCODINGS:
        raise InvalidOptions(
            "encoding", f"encoding {encoding} is not available on the WebSocket: use linear16, mulaw or alaw"
        )
    sample_rate = parse_sample_rate(encoding, query.get("sample_rate"))
    container = _parse_container(query.get("container"), encoding, transport)
    speed = parse_speed(query["speed"]) if query.get("speed") else DEFAULT_SPEED
    mip_opt_out = _parse_bool("mip_opt_out", query.get("mip_opt_out", "false"))
    return SpeakOptions(model, encoding, sample_rate, container, speed, mip_opt_out)


def _parse_container(raw: str | None, encoding: Encoding, transport: Transport) -> Container:
    if transport is Transport.WEBSOCKET:
        if raw not in (None, "", Container.NONE.value):
            raise InvalidOptions(
                "container", f"container {quoted(raw)} is not available on the WebSocket: use none"
            )
        return Container.NONE
    if raw in (None, ""):
        return Container.WAV if encoding in PCM_ENCODINGS else Container.NONE
    try:
        container = Container(raw)
    except ValueError:
        raise InvalidOptions("container", f"Unsupported container: {quoted(raw)}") from None
    if encoding in PCM_ENCODINGS and container is Container.OGG:
        raise InvalidOptions("container", f"container ogg is not available for {encoding}: use wav or none")
    return container
