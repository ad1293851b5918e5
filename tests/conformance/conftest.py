"""The conformance suite runs against every server that claims the speak protocol.

Today that is the emulator; the gateway joins by adding a parameter to `speak_target`.
"""

from __future__ import annotations

import pytest

from tests.support.servers import ServerProcess
from tests.support.speaking import SpeakTarget


@pytest.fixture
def speak_target(emulator: ServerProcess) -> SpeakTarget:
    return SpeakTarget(ws_url=emulator.ws_url, http_url=emulator.base_url, token="conformance-key")
