"""Find the speak endpoint: a fleet backend's Service (`<name>.<namespace>`) or an explicit base URL.

Pure string work, no DNS: Kubernetes resolves `<name>.<namespace>.svc.<cluster domain>` for us.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

SPEAK_PATH = "/v1/speak"

# RFC 1123 labels, as Kubernetes requires for Service and namespace names.
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_SCHEMES = {"ws": "ws", "wss": "wss", "http": "ws", "https": "wss"}

QueryValue = str | int | float | bool | Sequence[str | int | float | bool]

# Query parameters Deepgram documents for /v1/speak: their values are settings, safe to log. Any other
# value (a key someone passed as a parameter, a signed token, …) is masked in logs.
PUBLIC_QUERY_KEYS = frozenset(
    {"model", "encoding", "sample_rate", "container", "speed", "mip_opt_out", "bit_rate", "tag"}
)
MASK = "***"


def service_base_url(backend: str, cluster_domain: str = "cluster.local", port: int = 8080) -> str:
    """`aura-en.voice` → `ws://aura-en.voice.svc.cluster.local:8080`; raises ValueError on a bad name."""
    parts = backend.strip().split(".")
    if len(parts) != 2 or not all(_LABEL.match(part) for part in parts):
        raise ValueError(f"backend must be '<name>.<namespace>' (DNS labels), got {backend!r}")
    domain = cluster_domain.strip().strip(".")
    if not domain:
        raise ValueError("cluster_domain must not be empty")
    if not 0 < port < 65536:
        raise ValueError(f"port must be 1-65535, got {port}")
    name, namespace = parts
    return f"ws://{name}.{namespace}.svc.{domain}:{port}"


def _query_text(value: str | int | float | bool) -> str:
    # Deepgram reads booleans as lowercase words.
    return str(value).lower() if isinstance(value, bool) else str(value)


def speak_url(base_url: str, query: Mapping[str, QueryValue]) -> str:
    """The WebSocket URL for /v1/speak under `base_url`, with `query` appended (lists repeat the key)."""
    parts = urlsplit(base_url.strip())
    scheme = _SCHEMES.get(parts.scheme.lower())
    if scheme is None or not parts.netloc:
        raise ValueError(f"base_url must be a ws://, wss://, http:// or https:// URL, got {base_url!r}")
    path = parts.path.rstrip("/")
    if not path.endswith(SPEAK_PATH):
        path += SPEAK_PATH
    pairs: list[tuple[str, str]] = []
    for key, value in query.items():
        values: Sequence[str | int | float | bool] = (
            value if isinstance(value, list | tuple) else [value]  # type: ignore[list-item]
        )
        pairs.extend((key, _query_text(item)) for item in values)
    encoded = urlencode(pairs)
    combined = "&".join(piece for piece in (parts.query, encoded) if piece)
    return urlunsplit((scheme, parts.netloc, path, combined, ""))


def redacted_url(url: str) -> str:
    """`url` fit for a log line: user info dropped, values of undocumented query parameters masked."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    netloc = f"{host}:{parts.port}" if parts.port else host
    pairs = [
        (key, value if key in PUBLIC_QUERY_KEYS else MASK)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(pairs, safe="*"), ""))
