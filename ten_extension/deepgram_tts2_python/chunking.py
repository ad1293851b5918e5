"""Text shaping for Speak messages: joining chunks, splitting long ones, spotting sentence ends. Pure."""

from __future__ import annotations

# Deepgram closes with 1009 BIG-0001 above 2000 characters in one Speak (PROTOCOL.md).
MAX_SPEAK_CHARS = 2000
# ASCII and CJK sentence ends (fullwidth forms written as escapes).
_SENTENCE_ENDS = (".", "!", "?", "\u3002", "\uff01", "\uff1f", "\u2026", ";", "\uff1b")
_CLOSERS = "\"')]}\u201d\u2019\u00bb"


def is_speakable(text: str) -> bool:
    """Whether a chunk carries anything to say (whitespace-only chunks are never sent)."""
    return bool(text.strip())


def joined(previous_tail: str, text: str) -> str:
    """`text` as it should follow earlier text: a space where two chunks would otherwise run together."""
    if previous_tail and not previous_tail[-1].isspace() and not text[:1].isspace():
        return " " + text
    return text


def ends_sentence(text: str) -> bool:
    """Whether `text` ends at a sentence boundary (closing quotes and brackets ignored)."""
    return text.rstrip().rstrip(_CLOSERS).endswith(_SENTENCE_ENDS)


def split_for_speak(text: str, max_chars: int = MAX_SPEAK_CHARS) -> list[str]:
    """Pieces of at most `max_chars`, cut at the last whitespace before the limit where there is one."""
    pieces: list[str] = []
    rest = text
    while len(rest) > max_chars:
        cut = rest.rfind(" ", 0, max_chars + 1)
        if cut <= 0:
            cut = max_chars
        pieces.append(rest[:cut])
        rest = rest[cut:]
    if rest:
        pieces.append(rest)
    return pieces
