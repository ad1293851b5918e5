"""Which extra brings each component, and the one-line answer when a command's extra is not installed.

The core install holds the CLI and what every component shares; each component's libraries come with
its extra in pyproject.toml (`gateway`, `operator`, `emulator`, `local-fleet`), so an image carries its
own component only. Before a command loads its component it asks `require`, which reads the extra's
distributions from ttsfleet's own installed metadata (pyproject.toml stays the one list) and names the
`pip install` that brings the missing ones, instead of an ImportError from deep inside a component.
"""

from __future__ import annotations

import importlib.metadata
import re
from collections.abc import Iterable
from typing import Literal

__all__ = ["Extra", "ExtraMissing", "extra_distributions", "require"]

Extra = Literal["gateway", "operator", "emulator", "local-fleet"]

PROJECT = "ttsfleet"
_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?")
_EXTRA_MARKER = re.compile(r"""\bextra\s*==\s*["']([^"']+)["']""")


class ExtraMissing(RuntimeError):
    """A command's component is not installed: its extra is missing."""


def extra_distributions(requirements: Iterable[str], extra: str) -> set[str]:
    """Names of the distributions `extra` brings, read from Requires-Dist lines, following the
    project's references to its own extras (`ttsfleet[gateway,operator]`)."""
    by_extra: dict[str, list[tuple[str, list[str]]]] = {}
    for requirement in requirements:
        spec, _, marker = requirement.partition(";")
        named, condition = _NAME.match(spec), _EXTRA_MARKER.search(marker)
        if named is None or condition is None:
            continue
        extras = [item.strip() for item in (named.group(2) or "").split(",") if item.strip()]
        by_extra.setdefault(condition.group(1), []).append((named.group(1), extras))
    found: set[str] = set()
    pending, seen = [extra], set()
    while pending:
        current = pending.pop()
        seen.add(current)
        for name, extras in by_extra.get(current, []):
            if name.lower() == PROJECT:
                pending.extend(item for item in extras if item not in seen)
            else:
                found.add(name)
    return found


def _is_installed(distribution: str) -> bool:
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def require(extra: Extra, command: str) -> None:
    """Raise `ExtraMissing`, naming the `pip install` to run, unless `extra`'s distributions are all
    installed. A source tree run without installing has no metadata to compare with and passes."""
    try:
        requirements = importlib.metadata.requires(PROJECT) or []
    except importlib.metadata.PackageNotFoundError:
        return
    missing = sorted(name for name in extra_distributions(requirements, extra) if not _is_installed(name))
    if missing:
        raise ExtraMissing(
            f"`ttsfleet {command}` needs the {extra} extra (missing: {', '.join(missing)}): "
            f"pip install '{PROJECT}[{extra}]'"
        )
