"""Where the extension under test speaks: the emulator directly, or a gateway in front of it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from tests.support.servers import ServerProcess

EMULATOR_KEY = "emulator-key-for-extension-tests"


@dataclass
class Target:
    """Where the extension speaks: the emulator directly, or a gateway in front of it."""

    name: str
    base_url: str
    token: str
    upstream: ServerProcess

    def properties(self, **extra: Any) -> dict[str, Any]:
        return {"base_url": self.base_url, "token": self.token, "sample_rate": 16000, **extra}

    def upstream_stats(self) -> dict[str, Any]:
        return dict(httpx.get(self.upstream.base_url + "/_emulator/stats", timeout=5.0).json())

    def set_upstream_faults(self, *specs: str) -> None:
        httpx.post(
            self.upstream.base_url + "/_emulator/faults", json={"faults": list(specs)}, timeout=5.0
        ).raise_for_status()
