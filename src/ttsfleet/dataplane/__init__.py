"""The gateway: a hardened, Deepgram-compatible data plane in front of Deepgram's streaming TTS.

It never imports the emulator or the operator; its contract with the operator is its settings file
and `/statusz` (docs/contracts.md). Only `upstream.py` imports websockets' client and only
`fallback.py` imports httpx; pure modules (settings, errors, answers, breaker, retrying, cache,
limits, status, sockets) do no I/O and never log; import contracts in pyproject.toml check all
three. Other components use just the settings and the `serving.run` entry point.
"""

from ttsfleet.dataplane.settings import GatewaySettings, LoadedSettings, SettingsError, load_settings

__all__ = ["GatewaySettings", "LoadedSettings", "SettingsError", "load_settings"]
