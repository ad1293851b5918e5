"""The real control plane's tests share the suite-wide `control_plane` fixture (tests/support/
controlplane.py, registered in tests/conftest.py); each test works in objects it names itself."""

from __future__ import annotations

from tests.support.controlplane import NAMESPACE, ROOT

__all__ = ["NAMESPACE", "ROOT"]
