"""Voice rules, in one place for the emulator, the gateway, the operator's API, the CLI and the tools.

A voice name has the shape `aura-<voice>-<lang>` or `aura-2-<voice>-<lang>` (PROTOCOL.md). The voices
Deepgram documents are data taken from its API spec (`voice_catalog`); Deepgram adds voices without
notice, so a server that lets an operator choose checks the shape, and an allow-list when one is set:
an empty allow-list means any well-formed voice. The default is Deepgram's own documented default.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from ttsfleet.protocol.untrusted import quoted
from ttsfleet.protocol.voice_catalog import SPEC_DEFAULT_VOICE, SPEC_VOICES

VOICE_PATTERN = r"^aura(-2)?-[a-z]+-[a-z]{2}$"
VOICE_MAX_LENGTH = 64
DEFAULT_VOICE = SPEC_DEFAULT_VOICE
KNOWN_VOICES: frozenset[str] = frozenset(SPEC_VOICES)

_VOICE_SHAPE = re.compile(VOICE_PATTERN)


def is_well_formed_voice(name: str) -> bool:
    """Whether `name` has the shape of an Aura voice name."""
    return len(name) <= VOICE_MAX_LENGTH and bool(_VOICE_SHAPE.match(name))


def voice_language(name: str) -> str:
    """The two-letter language a well-formed voice speaks (`aura-2-kara-de` → `de`)."""
    return name.rsplit("-", 1)[-1]


def voice_problem(name: str, allowed: Collection[str] | None) -> str | None:
    """Why `name` may not be used, or None: it must be well-formed and, when `allowed` is non-empty,
    one of `allowed`."""
    if not is_well_formed_voice(name):
        return f"No such model: {quoted(name)} (voices look like aura-asteria-en or aura-2-thalia-en)"
    if allowed and name not in allowed:
        return f"No such model: {quoted(name)}"
    return None
