"""`ttsfleet.extras`: which distributions each extra brings, read from Requires-Dist lines.

The commands' answer when an extra is missing is tested on real installs in tests/test_packaging.py.
"""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from ttsfleet import extras

PYPROJECT = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())

REQUIRES_DIST = [
    "pydantic<3,>=2.10",
    'fastapi<1,>=0.115; extra == "gateway"',
    'uvicorn[standard]<0.55,>=0.54; extra == "gateway"',
    "kopf<1.46,>=1.45 ; extra == 'operator'",
    'numpy<3,>=2.0; extra == "emulator"',
    'ttsfleet[emulator,gateway]; extra == "local-fleet"',
    'cryptography>=43; extra == "local-fleet"',
    'ttsfleet[local-fleet]; extra == "dev"',
    'pytest<10,>=9; extra == "dev"',
]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        pytest.param("gateway", {"fastapi", "uvicorn"}, id="gateway"),
        pytest.param("operator", {"kopf"}, id="single-quoted-marker"),
        pytest.param("local-fleet", {"cryptography", "fastapi", "uvicorn", "numpy"}, id="own-extras"),
        pytest.param(
            "dev", {"pytest", "cryptography", "fastapi", "uvicorn", "numpy"}, id="nested-own-extras"
        ),
        pytest.param("nonexistent", set(), id="unknown-extra"),
    ],
)
def test_an_extra_brings_its_own_lines_and_those_of_the_extras_it_names(
    extra: str, expected: set[str]
) -> None:
    assert extras.extra_distributions(REQUIRES_DIST, extra) == expected


def test_extras_that_name_each_other_do_not_loop() -> None:
    lines = ['ttsfleet[b]; extra == "a"', 'ttsfleet[a]; extra == "b"', 'httpx; extra == "b"']
    assert extras.extra_distributions(lines, "a") == {"httpx"}


def _expanded(extra: str) -> set[str]:
    found: set[str] = set()
    for line in PYPROJECT["project"]["optional-dependencies"][extra]:
        requirement = Requirement(line)
        if requirement.name == "ttsfleet":
            for named in requirement.extras:
                found |= _expanded(named)
        else:
            found.add(requirement.name)
    return found


@pytest.mark.parametrize("extra", ["gateway", "operator", "emulator", "local-fleet"])
def test_the_installed_metadata_gives_each_extra_what_pyproject_lists(extra: str) -> None:
    """What `ttsfleet <command>` checks is pyproject's list (stale after a pyproject change until
    `make install` reinstalls the project)."""
    requirements = importlib.metadata.requires(extras.PROJECT) or []
    assert extras.extra_distributions(requirements, extra) == _expanded(extra)
