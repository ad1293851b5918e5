"""The distribution holds every sub-package, and every package says what it is for (STYLE.md rule 3).

`__all__` ordering is checked by ruff (RUF022) in `make lint`.
"""

from __future__ import annotations

import ast
import email.parser
import os
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support import imports
from tests.support.servers import free_port, running_emulator, wait_for
from ttsfleet import wavfile

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


def _own_extras(requirements: list[str]) -> set[str]:
    """The project's extras that `requirements` pull in by naming ttsfleet itself."""
    found: set[str] = set()
    for line in requirements:
        requirement = Requirement(line)
        if canonicalize_name(requirement.name) == "ttsfleet":
            found |= requirement.extras
    return found


def test_the_embedded_api_needs_are_a_dev_only_extra() -> None:
    project = PYPROJECT["project"]
    assert not {_distribution(r) for r in project["dependencies"]} & EMBEDDED_API_DISTRIBUTIONS
    extras = project["optional-dependencies"]
    assert {_distribution(r) for r in extras[EMBEDDED_API_EXTRA]} == EMBEDDED_API_DISTRIBUTIONS
    assert EMBEDDED_API_EXTRA in _own_extras(extras["dev"]), "make install (the dev extra) brings it"


def _build_wheel(workdir: Path) -> Path:
    """The ttsfleet wheel, built from a copy of the sources (an in-tree build would leave build/ behind)."""
    source = workdir / "source"
    shutil.copytree(SOURCES, source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    dist = workdir / "dist"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(dist), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = dist.glob("ttsfleet-*.whl")
    return wheel


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.mark.slow
def test_the_production_wheel_holds_no_embedded_api(wheel: Path) -> None:
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


# --- one extra per component --------------------------------------------------------------------------


@dataclass(frozen=True)
class ComponentInstall:
    """An install of the core plus `extras`, and the modules it must be able to run."""

    extras: tuple[str, ...]
    roots: tuple[str, ...]
    left_out: tuple[str, ...] = ()


# The CLI's module-level imports belong to every install; its commands load their component lazily.
CLI = "ttsfleet.cli"
EMBEDDED_API = "ttsfleet.devcluster.apiserver"
INSTALLS = {
    # `ttsfleet dataplane`, and `ttsfleet say` (helm test runs it from the gateway's image).
    "gateway": ComponentInstall(("gateway",), ("ttsfleet.dataplane", "ttsfleet.client", "ttsfleet.wavfile")),
    "operator": ComponentInstall(("operator",), ("ttsfleet.operator",)),
    "emulator": ComponentInstall(("emulator",), ("ttsfleet.emulator",)),
    "local-fleet": ComponentInstall(
        ("local-fleet",), ("ttsfleet.devcluster", "ttsfleet.demo"), (EMBEDDED_API,)
    ),
    "embedded-api": ComponentInstall(("local-fleet", "embedded-api"), (EMBEDDED_API,)),
}
EXTRAS = PYPROJECT["project"]["optional-dependencies"]
CORE = PYPROJECT["project"]["dependencies"]


def _closure(install: ComponentInstall) -> set[str]:
    return imports.install_closure([*CORE, f"ttsfleet[{','.join(install.extras)}]"], EXTRAS)


def _imported(install: ComponentInstall) -> dict[str, set[str]]:
    modules = imports.third_party_modules(install.roots, (CLI,), install.left_out)
    return imports.distributions_of(modules)


@pytest.mark.parametrize("name", sorted(INSTALLS))
def test_every_library_a_component_imports_comes_with_its_extra(name: str) -> None:
    install = INSTALLS[name]
    brought = _closure(install)
    for module, providers in sorted(_imported(install).items()):
        assert providers, f"{module} is imported by the {name} install but not installed here"
        assert providers & brought, (
            f"{module} ({', '.join(sorted(providers))}) is imported by the {name} install, "
            f"but ttsfleet[{','.join(install.extras)}] does not bring it"
        )


def _listed(requirements: list[str]) -> set[str]:
    """Distributions named directly (not the project's own extras)."""
    names = {canonicalize_name(Requirement(line).name) for line in requirements}
    return names - {"ttsfleet"}


@pytest.mark.parametrize("name", sorted(INSTALLS))
def test_every_distribution_an_extra_lists_is_imported_by_its_component(name: str) -> None:
    imported = set().union(*_imported(INSTALLS[name]).values())
    unused = _listed(EXTRAS[name]) - imported
    assert not unused, f"the {name} extra lists what its component never imports: {sorted(unused)}"


def test_every_core_dependency_is_imported_by_the_package() -> None:
    every = ComponentInstall((), ("ttsfleet",))
    unused = _listed(CORE) - set().union(*_imported(every).values())
    assert not unused, f"core dependencies nothing imports: {sorted(unused)}"


def test_a_distribution_listed_twice_carries_the_same_pins() -> None:
    """Extras share libraries (httpx, starlette, uvicorn): each keeps one set of pins."""
    pins: dict[str, set[str]] = {}
    for requirements in [CORE, *EXTRAS.values()]:
        for line in requirements:
            requirement = Requirement(line)
            key = canonicalize_name(requirement.name)
            if key != "ttsfleet":
                pins.setdefault(key, set()).add(str(requirement))
    differing = {name: sorted(found) for name, found in pins.items() if len(found) > 1}
    assert not differing, f"one distribution, several pins: {differing}"


def _absence_check(dockerfile: str) -> list[str]:
    """The `python -c … find_spec …` command of an image's build: the modules it must not hold."""
    text = (ROOT / dockerfile).read_text().replace("\\\n", " ")
    (command,) = [part for part in text.split("&&") if "find_spec" in part]
    return shlex.split(command)


# image: (its Dockerfile, the other components' own modules its import check must name; it may name more)
IMAGES = {
    "gateway": (
        "Dockerfile.dataplane",
        {"kopf", "kubernetes", "kmock", "espeakng_loader", "soundfile", "numpy"},
    ),
    "operator": (
        "Dockerfile.operator",
        {"fastapi", "uvicorn", "kmock", "espeakng_loader", "soundfile", "numpy"},
    ),
    "emulator": ("Dockerfile.emulator", {"kopf", "kubernetes", "kmock", "fastapi"}),
}


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_an_images_install_leaves_the_other_components_out(name: str) -> None:
    dockerfile, must_lack = IMAGES[name]
    checked = set(_absence_check(dockerfile)[3:])
    assert must_lack <= checked, f"{dockerfile}'s import check misses {sorted(must_lack - checked)}"
    brought = _closure(INSTALLS[name])
    for module, providers in sorted(imports.distributions_of(checked).items()):
        assert providers, f"{module} is not installed here, so nothing shows which distribution it is"
        assert not providers & brought, f"ttsfleet[{name}] brings {module} ({', '.join(sorted(providers))})"


# --- an install with one extra, for real ---------------------------------------------------------------


def _venv_with(wheel: Path, extra: str, directory: Path) -> Path:
    """A fresh virtual environment holding `ttsfleet[extra]` from `wheel` and PyPI; its bin folder."""
    subprocess.run([sys.executable, "-m", "venv", str(directory)], check=True, timeout=120)
    installed = subprocess.run(
        [
            str(directory / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--find-links",
            str(wheel.parent),
            f"ttsfleet[{extra}]",
        ],
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr
    return directory / "bin"


def _clean_env() -> dict[str, str]:
    """No virtualenv, PYTHONPATH or TTSFLEET_* settings of the test run leaking into the fresh install."""
    return {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONSAFEPATH") and not key.startswith("TTSFLEET_")
    }


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=cwd, env=_clean_env(), capture_output=True, text=True, timeout=60, check=False
    )


def _install_as_in_the_image(
    wheel: Path, name: str, others: dict[tuple[str, ...], str], workdir: Path
) -> Path:
    """A fresh venv with only `ttsfleet[name]`, passing its image's own check that the other components
    are absent; the CLI runs, and each command of `others` answers with the extra it needs."""
    dockerfile, _ = IMAGES[name]
    bin_dir = _venv_with(wheel, name, workdir / "venv")
    absent = _run([str(bin_dir / "python"), *_absence_check(dockerfile)[1:]], workdir)
    assert absent.returncode == 0, f"the {name} install holds {absent.stderr.strip()}"
    version = _run([str(bin_dir / "ttsfleet"), "version"], workdir)
    assert version.stdout.strip() == PYPROJECT["project"]["version"], version.stderr
    for command, extra in others.items():
        done = _run([str(bin_dir / "ttsfleet"), *command], workdir)
        assert done.returncode == 2, done.stdout + done.stderr
        assert "Traceback" not in done.stderr, done.stderr
        (line,) = done.stderr.strip().splitlines()
        assert f"pip install 'ttsfleet[{extra}]'" in line, line
    return bin_dir


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_gateway_extra_alone_serves_the_gateway_and_say(wheel: Path, tmp_path: Path) -> None:
    others = {("operator",): "operator", ("emulator",): "emulator", ("dev", "status"): "local-fleet"}
    bin_dir = _install_as_in_the_image(wheel, "gateway", others, tmp_path)

    key_file = tmp_path / "deepgram-key"
    key_file.write_text("packaging-test-key\n")
    port = free_port()
    log_path = tmp_path / "gateway.log"
    with running_emulator(tmp_path) as upstream, log_path.open("wb") as log:
        gateway = subprocess.Popen(
            [
                str(bin_dir / "ttsfleet"),
                "dataplane",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--upstream-url",
                upstream.ws_url,
                "--deepgram-key-file",
                str(key_file),
                "--no-auth",
            ],
            cwd=tmp_path,
            env=_clean_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:

            def ready() -> bool:
                assert gateway.poll() is None, f"the gateway exited:\n{log_path.read_text()}"
                try:
                    return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1.0).status_code == 200
                except httpx.TransportError:
                    return False

            wait_for(ready, 60, lambda: f"the gateway's /readyz:\n{log_path.read_text()}")
            output = tmp_path / "said.wav"
            said = _run(
                [
                    str(bin_dir / "ttsfleet"),
                    "say",
                    "Hello.",
                    "-o",
                    str(output),
                    "--url",
                    f"ws://127.0.0.1:{port}",
                ],
                tmp_path,
            )
            assert said.returncode == 0, said.stdout + said.stderr
            parsed = wavfile.parse(output.read_bytes())
            assert parsed.format.sample_rate == 24000 and len(parsed.pcm) > 0.2 * 2 * 24000
        finally:
            gateway.terminate()
            gateway.wait(30)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_operator_extra_alone_loads_the_operator(wheel: Path, tmp_path: Path) -> None:
    others = {("dataplane",): "gateway", ("say", "Hi."): "gateway", ("emulator",): "emulator"}
    bin_dir = _install_as_in_the_image(wheel, "operator", others, tmp_path)
    loads = _run([str(bin_dir / "python"), "-c", "import ttsfleet.operator.running"], tmp_path)
    assert loads.returncode == 0, loads.stderr
