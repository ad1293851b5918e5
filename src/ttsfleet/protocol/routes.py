"""The routes of Deepgram's speak API that servers here answer, and how they refuse the ones they don't.

Flux TTS (`/v2/speak`, asyncapi.yml and openapi.yml) is not served yet: a request for it gets 404, as an
unsupported route does, with a message that says so — never a status that reads as bad credentials.
"""

from __future__ import annotations

SPEAK_PATH = "/v1/speak"
FLUX_SPEAK_PATH = "/v2/speak"
UNSUPPORTED_ROUTE_STATUS = 404
FLUX_UNSUPPORTED_MESSAGE = (
    "Flux TTS (/v2/speak) is not supported by this server yet; use /v1/speak (Aura voices)."
)
