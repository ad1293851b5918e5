"""Where the extension under test speaks: the emulator directly, or a gateway in front of it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from tests.support.servers import ServerProcess

EMULATOR_KEY = "emulator-key-for-extension-tests"
PARAMS_KEYS = frozenset({"api_key", "model", "encoding", "sample_rate"})


def ten_properties(base_url: str, key: str, **extra: Any) -> dict[str, Any]:
    """Properties as a TEN graph gives them: the key and Deepgram settings in `params`, the rest on top."""
    params = {"api_key": key, "sample_rate": 16000, **extra.pop("params", {})}
    params.update({key: extra.pop(key) for key in PARAMS_KEYS & set(extra)})
    return {"base_url": base_url, "params": params, **extra}


@dataclass
class Target:
    """Where the extension speaks: the emulator directly, or a gateway in front of it."""

    name: str
    base_url: str
    token: str
    upstream: ServerProcess

    def properties(self, **extra: Any) -> dict[str, Any]:
        """TEN's property shape for this target; Deepgram settings among `extra` go into `params`."""
        return ten_properties(self.base_url, self.token, **extra)

    def reset_upstream(self) -> None:
        """Counters zeroed and faults cleared."""
        httpx.post(self.upstream.base_url + "/_emulator/reset", timeout=5.0).raise_for_status()

    def upstream_stats(self) -> dict[str, Any]:
        return dict(httpx.get(self.upstream.base_url + "/_emulator/stats", timeout=5.0).json())

    def set_upstream_faults(self, *specs: str) -> None:
        httpx.post(
            self.upstream.base_url + "/_emulator/faults", json={"faults": list(specs)}, timeout=5.0
        ).raise_for_status()
