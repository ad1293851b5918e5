"""ConfigMap, Secret and emptyDir volumes as files in a pod's own directory, and the path map into them.

Each volume becomes `<pod dir>/volumes/<volume name>/`; a container path under a mountPath maps to the
same relative path there (`PathMap.local`). Files are replaced atomically (write, then rename), so a
reader sees the old or the new content, never half of it: this is how the kubelet's refresh of a
mounted Secret reaches a gateway that re-reads its key file. subPath mounts are not emulated.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

DEFAULT_MODE = 0o644


@dataclass(frozen=True, slots=True)
class SourceRef:
    """The object a volume is filled from: `("Secret", "aura-en-deepgram")`."""

    kind: str
    name: str


@dataclass(frozen=True, slots=True)
class Mount:
    """A container mountPath and the local directory standing in for it."""

    mount_path: PurePosixPath
    local_dir: Path


@dataclass(frozen=True, slots=True)
class PathMap:
    """Container paths to local paths, longest mountPath first."""

    mounts: tuple[Mount, ...]

    def local(self, container_path: str) -> str | None:
        """The local path for a container path under a mount, or None if no mount covers it."""
        path = PurePosixPath(container_path)
        for mount in self.mounts:
            if path == mount.mount_path or mount.mount_path in path.parents:
                return str(mount.local_dir / path.relative_to(mount.mount_path))
        return None

    def rewrite(self, value: str) -> str:
        """`value` with a mounted container path swapped for its local path; anything else as it is."""
        return self.local(value) or value if value.startswith("/") else value


def volume_source(volume: Mapping[str, Any]) -> SourceRef | None:
    """Which ConfigMap or Secret fills a volume; None for emptyDir and kinds not emulated."""
    if "secret" in volume:
        return SourceRef("Secret", str(volume["secret"].get("secretName", "")))
    if "configMap" in volume:
        return SourceRef("ConfigMap", str(volume["configMap"].get("name", "")))
    return None


def volume_files(volume: Mapping[str, Any], source: Mapping[str, Any] | None) -> dict[str, bytes] | None:
    """File name → content for a ConfigMap or Secret volume; None while the source is missing."""
    if source is None:
        return None
    if "secret" in volume:
        data = {key: base64.b64decode(value) for key, value in (source.get("data") or {}).items()}
        data.update({key: str(value).encode() for key, value in (source.get("stringData") or {}).items()})
        items = volume["secret"].get("items")
    else:
        data = {key: str(value).encode() for key, value in (source.get("data") or {}).items()}
        data.update({key: base64.b64decode(value) for key, value in (source.get("binaryData") or {}).items()})
        items = volume["configMap"].get("items")
    if not items:
        return data
    return {str(item.get("path") or item["key"]): data[item["key"]] for item in items if item["key"] in data}


def volume_mode(volume: Mapping[str, Any]) -> int:
    """The file mode a volume asks for (defaultMode), owner-readable at least."""
    for kind in ("secret", "configMap"):
        if kind in volume:
            return int(volume[kind].get("defaultMode", DEFAULT_MODE)) | 0o400
    return DEFAULT_MODE


def write_files(directory: Path, files: Mapping[str, bytes], mode: int) -> bool:
    """Make `directory` hold exactly `files`; returns whether anything changed. Atomic per file."""
    directory.mkdir(parents=True, exist_ok=True)
    changed = False
    for name, content in files.items():
        target = directory / name
        if target.is_file() and target.read_bytes() == content:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.with_name(f".{target.name}.tmp")
        staging.write_bytes(content)
        staging.chmod(mode)
        staging.replace(target)
        changed = True
    for stale in directory.rglob("*"):
        relative = stale.relative_to(directory).as_posix()
        if stale.is_file() and relative not in files and not stale.name.startswith("."):
            stale.unlink()
            changed = True
    return changed


def path_map(
    pod_dir: Path, volumes: Sequence[Mapping[str, Any]], mounts: Sequence[Mapping[str, Any]]
) -> PathMap:
    """The container's mounts mapped into the pod directory (mounts of unknown volumes are left out)."""
    known = {str(volume["name"]) for volume in volumes}
    entries = [
        Mount(PurePosixPath(str(mount["mountPath"])), pod_dir / "volumes" / str(mount["name"]))
        for mount in mounts
        if mount.get("name") in known
    ]
    entries.sort(key=lambda mount: len(mount.mount_path.parts), reverse=True)
    return PathMap(tuple(entries))


def materialise(
    pod_dir: Path,
    volumes: Sequence[Mapping[str, Any]],
    lookup: Mapping[SourceRef, Mapping[str, Any] | None],
) -> tuple[list[SourceRef], bool]:
    """Write every volume of a pod; returns the sources still missing and whether any file changed."""
    missing, changed = [], False
    for volume in volumes:
        directory = pod_dir / "volumes" / str(volume["name"])
        source = volume_source(volume)
        if source is None:
            directory.mkdir(parents=True, exist_ok=True)  # emptyDir and the like: an empty directory
            continue
        files = volume_files(volume, lookup.get(source))
        if files is None:
            missing.append(source)
            continue
        changed = write_files(directory, files, volume_mode(volume)) or changed
    return missing, changed
