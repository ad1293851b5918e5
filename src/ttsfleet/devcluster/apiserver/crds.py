"""CustomResourceDefinitions: which resources a stored CRD serves, and the status the apiserver reports.

Names, scope, served/storage versions, the status and scale subresources and each version's schema
(enforced with its CEL rules by `admission.py`) are honoured; stored objects are neither defaulted nor
pruned, and conversion between versions is identity. Pure functions.
"""

from __future__ import annotations

from typing import Any

from ttsfleet.devcluster.apiserver import errors
from ttsfleet.devcluster.apiserver.resources import ResourceSpec, ScaleSpec
from ttsfleet.devcluster.apiserver.storage import Body


def _scale(subresources: dict[str, Any]) -> ScaleSpec | None:
    scale = subresources.get("scale")
    if scale is None:
        return None
    return ScaleSpec(
        spec_replicas_path=scale.get("specReplicasPath", ".spec.replicas"),
        status_replicas_path=scale.get("statusReplicasPath", ".status.replicas"),
        label_selector_path=scale.get("labelSelectorPath"),
    )


def served_resources(crd: Body) -> tuple[ResourceSpec, ...]:
    """One spec per served version of the CRD."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group, plural, kind = spec.get("group"), names.get("plural"), names.get("kind")
    name = (crd.get("metadata") or {}).get("name", "")
    if not group or not plural or not kind:
        raise errors.invalid(
            "customresourcedefinitions.apiextensions.k8s.io",
            name,
            "spec.group, spec.names.plural and spec.names.kind are required",
        )
    if name != f"{plural}.{group}":
        raise errors.invalid(
            "customresourcedefinitions.apiextensions.k8s.io",
            name,
            f'metadata.name: Invalid value: must be spec.names.plural+"."+spec.group ({plural}.{group})',
        )
    versions = [version for version in spec.get("versions") or [] if version.get("served", True)]
    return tuple(
        ResourceSpec(
            group=group,
            version=version["name"],
            plural=plural,
            kind=kind,
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            singular=names.get("singular") or kind.lower(),
            short_names=tuple(names.get("shortNames") or ()),
            categories=tuple(names.get("categories") or ()),
            has_status="status" in (version.get("subresources") or {}),
            scale=_scale(version.get("subresources") or {}),
            storage=bool(version.get("storage", len(versions) == 1)),
            printer_columns=tuple(version.get("additionalPrinterColumns") or ()),
            custom=True,
            schema=(version.get("schema") or {}).get("openAPIV3Schema"),
        )
        for version in versions
    )


def established_status(crd: Body, now: str) -> Body:
    """The status a CRD gets once served: names accepted, Established."""
    names = (crd.get("spec") or {}).get("names") or {}
    conditions = [
        {"type": condition, "status": "True", "reason": reason, "message": message, "lastTransitionTime": now}
        for condition, reason, message in (
            ("NamesAccepted", "NoConflicts", "no conflicts found"),
            ("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        )
    ]
    stored = [v["name"] for v in (crd.get("spec") or {}).get("versions") or [] if v.get("storage")]
    return {"acceptedNames": names, "conditions": conditions, "storedVersions": stored}
