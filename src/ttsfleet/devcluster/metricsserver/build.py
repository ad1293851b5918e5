"""Build the pinned metrics-server into a cache outside the work tree; a second build is a no-op.

Run as `make metrics-server` (or `python -m ttsfleet.devcluster.metricsserver.build`). The version comes
from `metricsserver/go.mod`, the one place it is written; the cache is keyed by it and by a hash of the
module's files and the Go version, as the control plane's is.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

from ttsfleet.devcluster.controlplane import build as controlplane_build

# The pinned module sits at the repository root, beside the control plane's (a dev-only tool that runs
# from a checkout).
MODULE_DIR = Path(__file__).resolve().parents[4] / "metricsserver"
PACKAGE = "sigs.k8s.io/metrics-server"
PROGRAM = "metrics-server"
CACHE_VARIABLE = "TTSFLEET_METRICS_SERVER_CACHE"
BUILD_HINT = "run `make metrics-server` (docs/development.md)"
# What `metrics-server --version` reports, as the project's own release build sets it.
VERSION_PACKAGE = "k8s.io/component-base/version"


class MissingMetricsServer(RuntimeError):
    """metrics-server is not in the build cache."""


def version(module: Path = MODULE_DIR) -> str:
    """The metrics-server version the module requires (e.g. `v0.9.0`)."""
    found = re.search(rf"^\s*{re.escape(PACKAGE)}\s+(v\S+)", (module / "go.mod").read_text(), re.MULTILINE)
    if found is None:
        raise MissingMetricsServer(f"{module / 'go.mod'} does not require {PACKAGE}")
    return found.group(1)


def cache_dir(pinned: str) -> Path:
    """The version's folder under $TTSFLEET_METRICS_SERVER_CACHE, else under
    ${XDG_CACHE_HOME:-~/.cache}/ttsfleet/metrics-server."""
    explicit = os.environ.get(CACHE_VARIABLE)
    if explicit:
        return Path(explicit) / pinned
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ttsfleet" / "metrics-server" / pinned


def locate() -> Path:
    """The built program of the pinned version."""
    program = cache_dir(version()) / PROGRAM
    if not (program.is_file() and os.access(program, os.X_OK)):
        raise MissingMetricsServer(f"{program} is missing: {BUILD_HINT}")
    return program


def build_key(module: Path, go: Path) -> str:
    """What decides the program: the module's files and the toolchain's version."""
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum"):
        digest.update((module / name).read_bytes())
    go_version = subprocess.run([str(go), "env", "GOVERSION"], capture_output=True, text=True, check=True)
    digest.update(go_version.stdout.encode())
    return digest.hexdigest()


def up_to_date(target: Path, key: str) -> bool:
    stamp = target / controlplane_build.STAMP
    return (target / PROGRAM).is_file() and stamp.is_file() and stamp.read_text().strip() == key


def build(module: Path, target: Path, go: Path) -> None:
    pinned = version(module)
    env = controlplane_build.go_environment()
    package = f"{PACKAGE}/cmd/{PROGRAM}"
    print(f"resolving {PROGRAM} {pinned}: modules not yet in the module cache are downloaded", flush=True)
    total = controlplane_build.count_packages(go, module, env, [package])
    print(f"building {PROGRAM} from {total} packages into {target}", flush=True)
    flags = f"-s -w -X {VERSION_PACKAGE}.gitVersion={pinned} -X {VERSION_PACKAGE}.gitTreeState=clean"

    def compile_into(staging: Path) -> None:
        argv = [str(go), "build", "-v", "-trimpath", "-ldflags", flags, "-o", f"{staging}/", package]
        controlplane_build.run_with_progress(argv, module, env, total)

    controlplane_build.fill_atomically(target, build_key(module, go), compile_into)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--module", type=Path, default=MODULE_DIR, help="the Go module to build")
    parser.add_argument("--force", action="store_true", help="rebuild even when the cache is current")
    args = parser.parse_args(argv)
    go = controlplane_build.go_command()
    target = cache_dir(version(args.module))
    current = not args.force and up_to_date(target, build_key(args.module, go))
    return controlplane_build.build_unless_current(
        PROGRAM, target, current, lambda: build(args.module, target, go)
    )


if __name__ == "__main__":
    sys.exit(main())
