"""Input from the network, handled without trusting its shape: JSON of any depth, strings quoted back.

`json.loads` recurses once per nesting level and raises RecursionError (not ValueError) past the
interpreter's limit, so deeply nested input must be caught here or it surfaces as a server fault.
Client strings quoted into error messages, headers and logs are cut short: a 10 KB model name or a
64 KiB message `type` is whatever text the client sent.
"""

from __future__ import annotations

import json
from typing import Any

QUOTE_CHARS = 40  # enough to recognise a mistyped name; never a sentence of text


def load_json(raw: str | bytes) -> Any:
    """`json.loads`, with nesting beyond the interpreter's recursion limit reported as ValueError."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise ValueError("JSON nests too deeply") from None


def quoted(value: object, limit: int = QUOTE_CHARS) -> str:
    """`value` as a short quoted string for a message: its repr, cut to `limit` characters with its length."""
    if not isinstance(value, str):
        return f"a {type(value).__name__}"
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}… ({len(value)} characters)"
