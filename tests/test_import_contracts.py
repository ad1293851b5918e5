"""The import contracts in pyproject.toml bite: each one breaks when a module takes an import it forbids.

Each case copies the package, appends one import to one module and runs `lint-imports` on the copy with
the repository's own configuration, so what is checked is the very contract `make lint` runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "ttsfleet"
CONFIG = ROOT / "pyproject.toml"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
CONTRACT_IDS = {
    contract["id"] for contract in tomllib.loads(CONFIG.read_text())["tool"]["importlinter"]["contracts"]
}


@dataclass(frozen=True)
class Violation:
    """`import <imported>`, appended to one module of the copy, which `contract` forbids."""

    contract: str
    module: str  # dotted, under ttsfleet
    imported: str

    @property
    def path(self) -> Path:
        return Path(*self.module.split(".")[1:]).with_suffix(".py")


VIOLATIONS = {
    "gateway-imports-operator": Violation(
        "components", "ttsfleet.dataplane.gateway", "ttsfleet.operator.fleet"
    ),
    "protocol-imports-a-layer-above": Violation("cli-on-top", "ttsfleet.protocol.codes", "ttsfleet.client"),
    "emulator-imports-websockets": Violation("websockets", "ttsfleet.emulator.streaming", "websockets"),
    "gateway-pool-imports-websockets": Violation("websockets", "ttsfleet.dataplane.pool", "websockets"),
    "upstream-socket-imports-httpx": Violation("httpx", "ttsfleet.dataplane.upstream", "httpx"),
    "emulator-imports-httpx": Violation("httpx", "ttsfleet.emulator.rest", "httpx"),
    "gateway-imports-kopf": Violation("kubernetes-libraries", "ttsfleet.dataplane.app", "kopf"),
    "local-fleet-imports-kmock": Violation("kmock", "ttsfleet.devcluster.fleet", "kmock"),
    "protocol-logs": Violation("protocol-sans-io", "ttsfleet.protocol.messages", "logging"),
    "protocol-imports-asyncio": Violation("protocol-sans-io", "ttsfleet.protocol.rules", "asyncio"),
    "breaker-imports-the-pool": Violation(
        "dataplane-pure", "ttsfleet.dataplane.breaker", "ttsfleet.dataplane.pool"
    ),
    "limits-import-websockets": Violation("dataplane-pure", "ttsfleet.dataplane.limits", "websockets"),
    "cache-logs": Violation("dataplane-pure", "ttsfleet.dataplane.cache", "structlog"),
    "rendering-imports-the-api-client": Violation(
        "operator-pure", "ttsfleet.operator.rendering.deployment", "ttsfleet.operator.kube"
    ),
    "conditions-import-kopf": Violation("operator-pure", "ttsfleet.operator.conditions", "kopf"),
    "rotation-machine-imports-asyncio": Violation(
        "operator-pure", "ttsfleet.operator.key_rotation", "asyncio"
    ),
}


def _lint_imports(package_root: Path, *contracts: str) -> subprocess.CompletedProcess[str]:
    """`lint-imports` on the package under `package_root`, with the repository's configuration."""
    selected = [arg for contract in contracts for arg in ("--contract", contract)]
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", *selected, str(CONFIG)],
        cwd=package_root,
        env={**os.environ, "PYTHONPATH": str(package_root)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _copy_of_the_package(tmp_path: Path) -> Path:
    shutil.copytree(PACKAGE, tmp_path / "ttsfleet", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_the_package_keeps_every_contract(tmp_path: Path) -> None:
    result = _lint_imports(_copy_of_the_package(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(CONTRACT_IDS)} kept, 0 broken." in result.stdout


def test_every_contract_has_a_violation_that_breaks_it() -> None:
    assert {violation.contract for violation in VIOLATIONS.values()} == CONTRACT_IDS


@pytest.mark.parametrize("violation", [pytest.param(v, id=case) for case, v in VIOLATIONS.items()])
def test_a_forbidden_import_breaks_its_contract(tmp_path: Path, violation: Violation) -> None:
    root = _copy_of_the_package(tmp_path)
    module = root / "ttsfleet" / violation.path
    module.write_text(module.read_text() + f"\nimport {violation.imported}  # injected\n")
    result = _lint_imports(root, violation.contract)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "BROKEN" in result.stdout
    assert f"{violation.module} -> {violation.imported}" in " ".join(result.stdout.split())
