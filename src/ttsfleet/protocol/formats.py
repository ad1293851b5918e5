"""Audio formats and query options of `/v1/speak` (PROTOCOL.md, "WebSocket" and "REST").

Parsing is pure: it takes the query as a mapping and returns validated options or raises
`InvalidOptions` with a message fit for the client.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from urllib.parse import urlencode, urlsplit

from ttsfleet.protocol.untrusted import quoted
from ttsfleet.protocol.voices import DEFAULT_VOICE, KNOWN_VOICES, voice_problem


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

DEFAULT_MODEL = DEFAULT_VOICE
KNOWN_MODELS = KNOWN_VOICES
SPEED_RANGE = (0.7, 1.5)
DEFAULT_SPEED = 1.0
# mp3 offers two bit rates (openapi.yml, V1SpeakPostParametersBitRate); other compressed encodings
# take a number Deepgram checks itself.
MP3_BIT_RATES = (32000, 48000)
# Options only REST has (openapi.yml `/v1/speak` post); the WebSocket spec (asyncapi.yml) names none of
# them, so a socket that asks for one is refused rather than silently served without it.
REST_ONLY_PARAMETERS = ("bit_rate", "callback", "callback_method", "tag")


class CallbackMethod(enum.StrEnum):
    """How Deepgram calls a REST request's `callback` URL."""

    POST = "POST"
    PUT = "PUT"


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
    """Validated options of one `/v1/speak` request; fixed for a WebSocket's life.

    `bit_rate`, `tags`, `callback` and `callback_method` exist on REST only.
    """

    model: str = DEFAULT_MODEL
    encoding: Encoding = Encoding.LINEAR16
    sample_rate: int = 24000
    container: Container = Container.NONE
    speed: float = DEFAULT_SPEED
    mip_opt_out: bool = False
    bit_rate: int | None = None
    tags: tuple[str, ...] = ()
    callback: str | None = None
    callback_method: CallbackMethod | None = None

    @property
    def audio_format(self) -> AudioFormat:
        return AudioFormat(self.encoding, self.sample_rate, self.container)

    def _voice_and_format(self) -> list[tuple[str, str]]:
        # An empty model leaves the choice to the server: a backend's default, else Deepgram's.
        params = [("model", self.model)] if self.model else []
        params += [("encoding", self.encoding.value), ("sample_rate", str(self.sample_rate))]
        if self.speed != DEFAULT_SPEED:
            params.append(("speed", _format_speed(self.speed)))
        if self.mip_opt_out:
            params.append(("mip_opt_out", "true"))
        return params

    def to_query(self) -> str:
        """The WebSocket query that asks for exactly these options (defaults left out where safe)."""
        return urlencode(self._voice_and_format())

    def to_rest_query(self) -> str:
        """The REST query for these options: every option Deepgram would act on or bill by.

        REST wraps PCM in WAV unless told otherwise, so PCM always names its container; opus names ogg.
        """
        params = self._voice_and_format()
        if self.encoding in PCM_ENCODINGS or self.container is not Container.NONE:
            params.append(("container", self.container.value))
        if self.bit_rate is not None:
            params.append(("bit_rate", str(self.bit_rate)))
        params.extend(("tag", tag) for tag in self.tags)
        if self.callback is not None:
            params.append(("callback", self.callback))
        if self.callback_method is not None:
            params.append(("callback_method", self.callback_method.value))
        return urlencode(params)

    def with_tag(self, tag: str) -> SpeakOptions:
        """These options with one more usage tag (kept once)."""
        return self if tag in self.tags else dataclasses.replace(self, tags=(*self.tags, tag))


QueryInput = Mapping[str, str] | Iterable[tuple[str, str]]


class _Query:
    """A query's parameters: the last value of each, and every value of repeated ones (`tag`)."""

    def __init__(self, query: QueryInput) -> None:
        pairs = list(query.items()) if isinstance(query, Mapping) else list(query)
        self.values: dict[str, str] = {}
        self.repeated: dict[str, list[str]] = {}
        for name, value in pairs:
            self.values[name] = value
            self.repeated.setdefault(name, []).append(value)

    def get(self, name: str) -> str | None:
        value = self.values.get(name)
        return None if value is None or value == "" else value


def _format_speed(speed: float) -> str:
    return f"{speed:g}"


def _parse_bool(parameter: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no", ""):
        return False
    raise InvalidOptions(parameter, f"{parameter} must be true or false, not {quoted(raw)}")


def parse_integral(parameter: str, raw: str) -> int:
    """A whole number in any spelling a client sends: `24000`, `24000.0`, `2.4e4`."""
    try:
        number = Decimal(raw.strip())
    except InvalidOperation:
        raise InvalidOptions(parameter, f"{parameter} must be an integer, not {quoted(raw)}") from None
    if not number.is_finite() or number != number.to_integral_value():
        raise InvalidOptions(parameter, f"{parameter} must be an integer, not {quoted(raw)}")
    return int(number)


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
    rate = parse_integral("sample_rate", raw)
    if rate not in rates:
        allowed = ", ".join(str(r) for r in sorted(rates))
        raise InvalidOptions(
            "sample_rate", f"sample_rate {rate} is not supported for {encoding}: use {allowed}"
        )
    return rate


def parse_bit_rate(encoding: Encoding, raw: str | None) -> int | None:
    """The bit rate asked for, if any: mp3 offers 32000 or 48000; PCM has none to choose."""
    if raw is None:
        return None
    bit_rate = parse_integral("bit_rate", raw)
    if encoding in PCM_ENCODINGS:
        raise InvalidOptions("bit_rate", f"bit_rate is not configurable for {encoding}")
    if encoding is Encoding.MP3 and bit_rate not in MP3_BIT_RATES:
        raise InvalidOptions("bit_rate", f"bit_rate {bit_rate} is not supported for mp3: use 32000 or 48000")
    if bit_rate <= 0:
        raise InvalidOptions("bit_rate", f"bit_rate must be positive, not {quoted(raw)}")
    return bit_rate


def parse_callback(raw: str | None) -> str | None:
    """The callback URL: absolute http(s); Deepgram calls it, never the server that received it."""
    if raw is None:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc or len(raw) > 2048:
        raise InvalidOptions("callback", "callback must be an absolute http or https URL")
    return raw


def is_well_formed_model(model: str) -> bool:
    """Whether `model` has the shape of an Aura voice name."""
    return voice_problem(model, None) is None


def parse_model(raw: str | None, known_models: frozenset[str] | None = KNOWN_MODELS) -> str:
    """The model name; `known_models=None` (or empty) accepts any well-formed name."""
    model = raw or DEFAULT_MODEL
    problem = voice_problem(model, known_models)
    if problem is not None:
        raise UnknownModel("model", problem)
    return model


def parse_speak_options(
    query: QueryInput,
    transport: Transport,
    known_models: frozenset[str] | None = KNOWN_MODELS,
) -> SpeakOptions:
    """Validate a `/v1/speak` query for the WebSocket or REST face (pairs keep repeated `tag`s)."""
    params = _Query(query)
    if transport is Transport.WEBSOCKET:
        for name in REST_ONLY_PARAMETERS:
            if name in params.values:
                raise InvalidOptions(name, f"{name} is not available on the WebSocket; use REST for it")
    model = parse_model(params.get("model"), known_models)
    default_encoding = Encoding.LINEAR16 if transport is Transport.WEBSOCKET else Encoding.MP3
    raw_encoding = params.get("encoding") or default_encoding.value
    try:
        encoding = Encoding(raw_encoding)
    except ValueError:
        raise InvalidOptions("encoding", f"Unsupported encoding: {quoted(raw_encoding)}") from None
    if transport is Transport.WEBSOCKET and encoding not in WEBSOCKET_ENCODINGS:
        raise InvalidOptions(
            "encoding", f"encoding {encoding} is not available on the WebSocket: use linear16, mulaw or alaw"
        )
    sample_rate = parse_sample_rate(encoding, params.get("sample_rate"))
    container = _parse_container(params.get("container"), encoding, transport)
    raw_speed = params.get("speed")
    speed = parse_speed(raw_speed) if raw_speed else DEFAULT_SPEED
    mip_opt_out = _parse_bool("mip_opt_out", params.values.get("mip_opt_out", "false"))
    raw_method = params.get("callback_method")
    try:
        callback_method = CallbackMethod(raw_method.upper()) if raw_method else None
    except ValueError:
        raise InvalidOptions("callback_method", "callback_method must be POST or PUT") from None
    return SpeakOptions(
        model,
        encoding,
        sample_rate,
        container,
        speed,
        mip_opt_out,
        parse_bit_rate(encoding, params.get("bit_rate")),
        tuple(tag for tag in params.repeated.get("tag", []) if tag),
        parse_callback(params.get("callback")),
        callback_method,
    )


def default_container(encoding: Encoding) -> Container:
    """REST's container when none is named: wav around PCM, ogg around opus, none otherwise."""
    if encoding in PCM_ENCODINGS:
        return Container.WAV
    if encoding is Encoding.OPUS:
        return Container.OGG
    return Container.NONE


def _parse_container(raw: str | None, encoding: Encoding, transport: Transport) -> Container:
    if transport is Transport.WEBSOCKET:
        if raw not in (None, Container.NONE.value):
            raise InvalidOptions(
                "container", f"container {quoted(raw)} is not available on the WebSocket: use none"
            )
        return Container.NONE
    if raw is None:
        return default_container(encoding)
    try:
        container = Container(raw)
    except ValueError:
        raise InvalidOptions("container", f"Unsupported container: {quoted(raw)}") from None
    if encoding in PCM_ENCODINGS and container is Container.OGG:
        raise InvalidOptions("container", f"container ogg is not available for {encoding}: use wav or none")
    if encoding is Encoding.OPUS and container is not Container.OGG:
        raise InvalidOptions("container", "opus comes in an ogg container: use container=ogg")
    if encoding not in PCM_ENCODINGS and encoding is not Encoding.OPUS and container is not Container.NONE:
        raise InvalidOptions("container", f"container {container} is not available for {encoding}: use none")
    return container
