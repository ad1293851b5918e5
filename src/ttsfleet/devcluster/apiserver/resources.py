"""The resource table: what the embedded API serves, with scope, kinds and subresources.

Built-in resources are the ones the fleet, kopf and kubectl touch; custom resources join the table when
their CustomResourceDefinition is stored (see `crds.py`). Add-on kinds (the Prometheus Operator's
ServiceMonitor and PrometheusRule) are not built in: as on a real cluster, their group answers 404 until
their CRDs are applied. Objects are stored per group and plural, not
per version, as the real apiserver does for the served versions of one resource.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

# Every verb the emulator implements, as discovery should announce them.
ALL_VERBS: tuple[str, ...] = (
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
)


@dataclass(frozen=True, slots=True)
class ScaleSpec:
    """Where a resource keeps what its /scale subresource shows (JSON paths with a leading dot)."""

    spec_replicas_path: str = ".spec.replicas"
    status_replicas_path: str = ".status.replicas"
    # None: no selector in the Scale status. A path may point at a string or at a LabelSelector object.
    label_selector_path: str | None = None


@dataclass(frozen=True, slots=True)
class ResourceSpec:
    """One served resource in one group/version."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    has_status: bool = False
    scale: ScaleSpec | None = None
    verbs: tuple[str, ...] = ALL_VERBS
    # The version whose objects are stored; other served versions are views of the same objects.
    storage: bool = True
    # Declared by a CRD: no strategic-merge patches (no patch strategies are known for it), and its
    # objects are checked against the CRD's schema (`custom.py`).
    custom: bool = False
    # The CRD version's openAPIV3Schema (None: a built-in resource).
    schema: Mapping[str, Any] | None = field(default=None, compare=False, hash=False)
    # A CRD version's additionalPrinterColumns, for the Tables `kubectl get` asks for (see `tables.py`).
    printer_columns: tuple[Mapping[str, Any], ...] = field(default=(), compare=False, hash=False)

    @property
    def api_version(self) -> str:
        """The `apiVersion` of objects of this resource ("v1" for the core group)."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> str:
        """The group/version as discovery spells it ("v1" for the core group)."""
        return self.api_version

    @property
    def qualified_name(self) -> str:
        """`plural.group` as Kubernetes names a resource in messages ("pods" in the core group)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def storage_key(self) -> tuple[str, str]:
        """Objects of all versions of a resource live under this key."""
        return (self.group, self.plural)


def _spec(
    group_version: str,
    plural: str,
    kind: str,
    *,
    namespaced: bool = True,
    short_names: tuple[str, ...] = (),
    categories: tuple[str, ...] = (),
    has_status: bool = False,
    scale: ScaleSpec | None = None,
) -> ResourceSpec:
    group, _, version = group_version.rpartition("/")
    return ResourceSpec(
        group=group,
        version=version,
        plural=plural,
        kind=kind,
        namespaced=namespaced,
        singular=kind.lower(),
        short_names=short_names,
        categories=categories,
        has_status=has_status,
        scale=scale,
    )


# Deployments and ReplicaSets show their structured selector in Scale status as a string.
_WORKLOAD_SCALE = ScaleSpec(label_selector_path=".spec.selector")

BUILTIN_RESOURCES: tuple[ResourceSpec, ...] = (
    _spec("v1", "namespaces", "Namespace", namespaced=False, short_names=("ns",), has_status=True),
    _spec("v1", "secrets", "Secret"),
    _spec("v1", "configmaps", "ConfigMap", short_names=("cm",)),
    _spec("v1", "services", "Service", short_names=("svc",), has_status=True, categories=("all",)),
    _spec("v1", "endpoints", "Endpoints", short_names=("ep",)),
    _spec("v1", "events", "Event", short_names=("ev",)),
    _spec("v1", "pods", "Pod", short_names=("po",), has_status=True, categories=("all",)),
    _spec("v1", "serviceaccounts", "ServiceAccount", short_names=("sa",)),
    _spec(
        "apps/v1",
        "deployments",
        "Deployment",
        short_names=("deploy",),
        has_status=True,
        scale=_WORKLOAD_SCALE,
        categories=("all",),
    ),
    _spec(
        "apps/v1",
        "replicasets",
        "ReplicaSet",
        short_names=("rs",),
        has_status=True,
        scale=_WORKLOAD_SCALE,
        categories=("all",),
    ),
    _spec(
        "autoscaling/v2",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        short_names=("hpa",),
        has_status=True,
        categories=("all",),
    ),
    _spec("policy/v1", "poddisruptionbudgets", "PodDisruptionBudget", short_names=("pdb",), has_status=True),
    _spec("networking.k8s.io/v1", "networkpolicies", "NetworkPolicy", short_names=("netpol",)),
    _spec("discovery.k8s.io/v1", "endpointslices", "EndpointSlice"),
    _spec("coordination.k8s.io/v1", "leases", "Lease"),
    _spec("events.k8s.io/v1", "events", "Event", short_names=("ev",)),
    _spec("rbac.authorization.k8s.io/v1", "roles", "Role"),
    _spec("rbac.authorization.k8s.io/v1", "rolebindings", "RoleBinding"),
    _spec("rbac.authorization.k8s.io/v1", "clusterroles", "ClusterRole", namespaced=False),
    _spec("rbac.authorization.k8s.io/v1", "clusterrolebindings", "ClusterRoleBinding", namespaced=False),
    _spec(
        "apiextensions.k8s.io/v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        namespaced=False,
        short_names=("crd", "crds"),
        has_status=True,
    ),
)

CRD_RESOURCE = BUILTIN_RESOURCES[-1]
NAMESPACE_RESOURCE = BUILTIN_RESOURCES[0]


@dataclass
class ResourceRegistry:
    """The served resources, by group/version/plural; custom ones are added and removed at run time."""

    _specs: dict[tuple[str, str, str], ResourceSpec] = field(default_factory=dict)
    # Which CRD (by name) declared which specs, so deleting or changing the CRD withdraws them.
    _by_crd: dict[str, tuple[ResourceSpec, ...]] = field(default_factory=dict)

    @classmethod
    def with_builtins(cls) -> ResourceRegistry:
        """A registry serving the built-in table."""
        registry = cls()
        for spec in BUILTIN_RESOURCES:
            registry._specs[(spec.group, spec.version, spec.plural)] = spec
        return registry

    def find(self, group: str, version: str, plural: str) -> ResourceSpec | None:
        """The spec served at /{group}/{version}/{plural}, if any."""
        return self._specs.get((group, version, plural))

    def find_kind(self, api_version: str, kind: str) -> ResourceSpec | None:
        """The spec for an object's apiVersion and kind (used by garbage collection)."""
        for spec in self._specs.values():
            if spec.api_version == api_version and spec.kind == kind:
                return spec
        return None

    def storage_spec(self, group: str, plural: str) -> ResourceSpec | None:
        """The storage version's spec of a resource, whatever version a request used."""
        candidates = sorted(
            (not s.storage, s.version) for s in self._specs.values() if s.storage_key == (group, plural)
        )
        return self._specs[(group, candidates[0][1], plural)] if candidates else None

    def __iter__(self) -> Iterator[ResourceSpec]:
        return iter(sorted(self._specs.values(), key=lambda s: (s.group, s.version, s.plural)))

    def replace_crd(self, crd_name: str, specs: tuple[ResourceSpec, ...]) -> None:
        """Serve what a CRD declares now, withdrawing what it declared before."""
        self.remove_crd(crd_name)
        for spec in specs:
            self._specs[(spec.group, spec.version, spec.plural)] = spec
        self._by_crd[crd_name] = specs

    def remove_crd(self, crd_name: str) -> tuple[ResourceSpec, ...]:
        """Stop serving a CRD's resources; returns what was withdrawn."""
        specs = self._by_crd.pop(crd_name, ())
        for spec in specs:
            self._specs.pop((spec.group, spec.version, spec.plural), None)
        return specs
