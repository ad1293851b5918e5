"""The distribution holds every sub-package, and every package says what it is for (STYLE.md rule 3).

`__all__` ordering is checked by ruff (RUF022) in `make lint`.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def _packages_on_disk() -> dict[str, Path]:
    found = {}
    for name, folder in SETUPTOOLS["package-dir"].items():
        base = ROOT / folder
        for init in base.rglob("__init__.py"):
            relative = init.parent.relative_to(base)
            found[".".join([name, *relative.parts])] = init
    return found


def test_every_package_on_disk_is_listed_for_the_wheel() -> None:
    assert set(_packages_on_disk()) == set(SETUPTOOLS["packages"])


@pytest.mark.parametrize(("package", "init"), sorted(_packages_on_disk().items()))
def test_every_package_init_has_a_docstring(package: str, init: Path) -> None:
    assert ast.get_docstring(ast.parse(init.read_text())), f"{package} must say what it is for"


def _copied_into_images() -> set[str]:
    sources = set()
    for dockerfile in ROOT.glob("Dockerfile.*"):
        for line in dockerfile.read_text().splitlines():
            if line.startswith(("COPY ", "ADD ")) and "--from=" not in line:
                sources.update(part.rstrip("/") for part in line.split()[1:-1])
    return sources


def test_the_kind_workflow_runs_when_anything_baked_into_the_images_changes() -> None:
    import yaml

    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "e2e-kind.yml").read_text())
    # PyYAML reads the bare `on:` key as True.
    filters = set(workflow[True]["pull_request"]["paths"])
    missing = {
        source for source in _copied_into_images() if source not in filters and f"{source}/**" not in filters
    }
    assert not missing, (
        f"e2e-kind.yml's paths filter misses what the images are built from: {sorted(missing)}"
    )
