"""The gateway settings file (docs/contracts.md) rendered from a spec, and the ConfigMap holding it.

Only what the spec decides is written; the gateway keeps its own defaults for the rest (timeouts,
retry, breaker). Serialisation is fixed (insertion order, block style) so equal specs hash equally.
"""

from __future__ import annotations

from typing import Any

import yaml

from ttsfleet import contracts, fingerprints
from ttsfleet.operator import api
from ttsfleet.operator.rendering import meta

CONTAINER_PORT = 8080
# How often the gateway stats the mounted key; the kubelet's own sync delay (~1 min) dominates anyway.
KEY_POLL_INTERVAL_S = 1.0


def render_gateway_config(spec: api.TTSBackendSpec) -> dict[str, Any]:
    """The settings document the gateway reads with `--config`."""
    deepgram = spec.deepgram
    auth: dict[str, Any] = {"enabled": spec.auth.enabled}
    if spec.auth.enabled:
        auth["client_tokens_file"] = contracts.TOKENS_FILE
    return {
        "server": {"host": "0.0.0.0", "port": CONTAINER_PORT},
        "upstream": {"url": deepgram.url, "rest_url": deepgram.rest_url},
        "credentials": {
            "deepgram_key_file": contracts.DEEPGRAM_KEY_FILE,
            "poll_interval_s": KEY_POLL_INTERVAL_S,
        },
        "auth": auth,
        "speak": {
            "default_model": deepgram.model,
            "allowed_models": list(deepgram.allowed_models),
            "default_encoding": deepgram.encoding.value,
            "allowed_encodings": [encoding.value for encoding in api.SpeakEncoding],
            "default_sample_rate": deepgram.effective_sample_rate,
            "tag_token_owner": deepgram.tag_token_owner,
        },
        "pool": {
            "warm_min_per_key": deepgram.pool.warm_sockets_per_key,
            "max_sockets": deepgram.pool.max_sockets,
        },
        "cache": {
            "enabled": spec.cache.enabled,
            "max_bytes": spec.cache.max_bytes,
            "ttl_s": spec.cache.ttl_seconds,
        },
        "limits": {
            "max_sessions": spec.limits.max_sessions,
            "max_speak_chars": spec.limits.max_speak_chars,
            "chars_per_minute_per_token": spec.limits.chars_per_minute_per_token,
            "client_send_buffer_bytes": spec.limits.client_send_buffer_bytes,
        },
        "shares": {"file": contracts.SHARES_FILE, "required": deepgram.socket_budget is not None},
        "drain": {"timeout_s": spec.rollout.drain_timeout_seconds},
        "logging": {"level": spec.log_level.value, "format": "json"},
    }


def render_config_yaml(spec: api.TTSBackendSpec) -> str:
    """The settings file's text, byte-for-byte stable for equal specs."""
    return yaml.safe_dump(render_gateway_config(spec), sort_keys=False, default_flow_style=False, width=1000)


def config_hash(spec: api.TTSBackendSpec) -> str:
    """The hash pods report in /statusz `config.hash` once they run this spec's settings."""
    return fingerprints.hash_config(render_config_yaml(spec).encode())


def render_config_map(backend: api.TTSBackend, owner: meta.OwnerRef) -> dict[str, Any]:
    """The ConfigMap with `config.yaml`, annotated with its hash."""
    body = meta.metadata(backend, owner, meta.config_map_name(backend.metadata.name))
    body["annotations"] = {meta.CONFIG_HASH_ANNOTATION: config_hash(backend.spec)}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": body,
        "data": {contracts.CONFIG_KEY: render_config_yaml(backend.spec)},
    }
