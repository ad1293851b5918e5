"""The distribution holds every sub-package, and every package says what it is for (STYLE.md rule 3).

`__all__` ordering is checked by ruff (RUF022) in `make lint`.
"""

from __future__ import annotations

import ast
import email.parser
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]
# Development tools that source checkouts import from the tree and the wheel leaves out.
DEV_ONLY_PACKAGES = {"ttsfleet.devcluster.apiserver"}
EMBEDDED_API_EXTRA = "embedded-api"
EMBEDDED_API_DISTRIBUTIONS = {"kmock", "jsonschema", "kubernetes-validate", "cel-python"}


def _packages_on_disk() -> dict[str, Path]:
    found = {}
    for name, folder in SETUPTOOLS["package-dir"].items():
        base = ROOT / folder
        for init in base.rglob("__init__.py"):
            relative = init.parent.relative_to(base)
            found[".".join([name, *relative.parts])] = init
    return found


def test_every_package_on_disk_is_listed_for_the_wheel() -> None:
    assert set(_packages_on_disk()) - DEV_ONLY_PACKAGES == set(SETUPTOOLS["packages"])


def _distribution(requirement: str) -> str:
    name = requirement.split(";")[0].strip()
    for separator in "[<>=!~ ":
        name = name.split(separator)[0]
    return name.lower()


def test_the_embedded_api_needs_are_a_dev_only_extra() -> None:
    project = PYPROJECT["project"]
    assert not {_distribution(r) for r in project["dependencies"]} & EMBEDDED_API_DISTRIBUTIONS
    extras = project["optional-dependencies"]
    assert {_distribution(r) for r in extras[EMBEDDED_API_EXTRA]} == EMBEDDED_API_DISTRIBUTIONS
    assert f"ttsfleet[{EMBEDDED_API_EXTRA}]" in extras["dev"], "make install (the dev extra) brings it"


@pytest.mark.slow
def test_the_production_wheel_holds_no_embedded_api(tmp_path: Path) -> None:
    """Built from a copy of the sources (an in-tree build would leave build/ behind)."""
    source = tmp_path / "source"
    for folder in {*SETUPTOOLS["package-dir"].values()}:
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "-w",
            str(tmp_path / "dist"),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("ttsfleet-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata_name = next(name for name in names if name.endswith(".dist-info/METADATA"))
        metadata = email.parser.Parser().parsestr(archive.read(metadata_name).decode())
    assert "ttsfleet/devcluster/__init__.py" in names
    assert not [name for name in names if name.startswith("ttsfleet/devcluster/apiserver/")]
    for requirement in metadata.get_all("Requires-Dist") or []:
        if _distribution(requirement) in EMBEDDED_API_DISTRIBUTIONS:
            assert f'extra == "{EMBEDDED_API_EXTRA}"' in requirement, requirement


def test_dev_up_on_the_embedded_api_without_it_names_the_extra(tmp_path: Path) -> None:
    """An installation without the extra (one of its modules hidden here) gets an answer, not a traceback."""
    hide = "import sys; sys.modules['celpy'] = None; from ttsfleet.cli import main; main()"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            hide,
            "dev",
            "up",
            "--control-plane",
            "embedded",
            "--state-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    said = " ".join((done.stdout + done.stderr).split())
    assert "missing: celpy" in said and f"pip install -e '.[{EMBEDDED_API_EXTRA}]'" in said


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


def test_dev_commands_that_need_no_embedded_api_run_without_it(tmp_path: Path) -> None:
    hide = "import sys; sys.modules['celpy'] = None; from ttsfleet.cli import main; main()"
    done = subprocess.run(
        [sys.executable, "-c", hide, "dev", "status", "--state-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert "no local fleet is running" in done.stdout + done.stderr
