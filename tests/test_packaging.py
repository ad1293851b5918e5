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
