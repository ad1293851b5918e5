"""The distribution holds every sub-package, and every package says what it is for (STYLE.md rule 3).

`__all__` ordering is checked by ruff (RUF022) in `make lint`.
"""

from __future__ import annotations

import ast
import email.parser
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "src"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# Development tools that source checkouts import from the tree and the wheel leaves out.
DEV_ONLY_PACKAGES = {"ttsfleet.devcluster.apiserver"}
EMBEDDED_API_EXTRA = "embedded-api"
EMBEDDED_API_DISTRIBUTIONS = {"kmock", "jsonschema", "kubernetes-validate", "cel-python"}


def _packages_on_disk() -> dict[str, Path]:
    return {
        ".".join(init.parent.relative_to(SOURCES).parts): init
        for init in SOURCES.rglob("__init__.py")
        if "__pycache__" not in init.parts
    }


def test_the_repository_root_holds_no_importable_package() -> None:
    """`python -m …` from the root must never find a folder shadowing an installed or stdlib module."""
    at_root = {path.parent.name for path in ROOT.glob("*/__init__.py")}
    assert at_root <= {"tests", "benchmarks"}, "the package's code lives under src/"
    assert not at_root & sys.stdlib_module_names
    assert sorted(path.name for path in SOURCES.iterdir() if path.suffix != ".egg-info") == ["ttsfleet"]


def test_modules_run_from_the_root_without_safe_path_mode() -> None:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONSAFEPATH"}
    done = subprocess.run(
        [sys.executable, "-c", "import operator, ttsfleet.operator; print(operator.__file__)"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "ttsfleet" not in done.stdout, "the standard library's operator module, not ours"


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
    shutil.copytree(SOURCES, source / "src", ignore=shutil.ignore_patterns("__pycache__"))
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
    in_wheel = {".".join(Path(name).parent.parts) for name in names if name.endswith("/__init__.py")}
    assert in_wheel == set(_packages_on_disk()) - DEV_ONLY_PACKAGES, "every sub-package but the dev tools"
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
