"""RBAC as the apiserver enforces it, from the Roles, ClusterRoles and bindings stored in the API.

The embedded API has no authentication, so `Identities` names callers by the prefix of their User-Agent
(`ttsfleet-operator/` and `kopf/` → the operator's ServiceAccount); anyone else is an administrator, as
a developer's kubectl is. A named caller may do only what its bindings grant, and is answered 403 in
the apiserver's own words otherwise — so tests run the operator under the chart's real rules. Creating
or changing an object whose ownerReference sets `blockOwnerDeletion` also needs `update` on the owner's
`finalizers` subresource, as the OwnerReferencesPermissionEnforcement admission plugin asks (OpenShift
and hardened clusters run it). Pure functions over the stored objects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ttsfleet.devcluster.apiserver.storage import Body

RBAC_GROUP = "rbac.authorization.k8s.io"
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"


@dataclass(frozen=True, slots=True)
class Attributes:
    """What one request asks to do, in RBAC's terms."""

    verb: str
    api_group: str
    resource: str  # with "/subresource" when there is one
    namespace: str
    name: str


@dataclass(frozen=True, slots=True)
class Identities:
    """User-Agent prefix → the user the request runs as (e.g. a ServiceAccount's user name)."""

    by_agent_prefix: Mapping[str, str]

    def user_of(self, user_agent: str) -> str | None:
        """The user of a request, or None for an (unrestricted) administrator."""
        for prefix, user in self.by_agent_prefix.items():
            if user_agent.startswith(prefix):
                return user
        return None


def service_account_user(namespace: str, name: str) -> str:
    """The user name a ServiceAccount's token authenticates as."""
    return f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}"


def _is_subject(subject: Mapping[str, Any], user: str, binding_namespace: str) -> bool:
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "User":
        return bool(name == user)
    if kind == "ServiceAccount":
        return user == service_account_user(subject.get("namespace") or binding_namespace, str(name))
    if kind == "Group":
        groups = {"system:authenticated"}
        if user.startswith(SERVICE_ACCOUNT_PREFIX):
            namespace = user.removeprefix(SERVICE_ACCOUNT_PREFIX).split(":")[0]
            groups |= {"system:serviceaccounts", f"system:serviceaccounts:{namespace}"}
        return name in groups
    return False


def _matches(values: Iterable[str], wanted: str) -> bool:
    listed = list(values or ())
    return "*" in listed or wanted in listed


def _rule_allows(rule: Mapping[str, Any], request: Attributes) -> bool:
    names = rule.get("resourceNames") or []
    return (
        _matches(rule.get("verbs") or [], request.verb)
        and _matches(rule.get("apiGroups") or [], request.api_group)
        and _matches(rule.get("resources") or [], request.resource)
        and (not names or request.name in names)
    )


RoleLookup = Callable[[str, str, str], Body | None]  # (kind, namespace, name) → the role, if stored


def is_allowed(user: str, request: Attributes, bindings: Iterable[Body], role_of: RoleLookup) -> bool:
    """Some binding of `user` (cluster-wide, or in the request's namespace) has a rule allowing it."""
    for binding in bindings:
        metadata = binding.get("metadata") or {}
        namespace = metadata.get("namespace") or ""
        if namespace and namespace != request.namespace:
            continue  # a RoleBinding grants only in its own namespace
        if not any(_is_subject(s, user, namespace) for s in binding.get("subjects") or ()):
            continue
        ref = binding.get("roleRef") or {}
        role = role_of(
            str(ref.get("kind")), namespace if ref.get("kind") == "Role" else "", str(ref.get("name"))
        )
        if role is not None and any(_rule_allows(rule, request) for rule in role.get("rules") or ()):
            return True
    return False


def forbidden_message(user: str, request: Attributes, qualified_resource: str) -> str:
    """The apiserver's wording of a refusal (kubectl prints it after `Error from server (Forbidden)`)."""
    resource, _, subresource = request.resource.partition("/")
    subject = f'{qualified_resource} "{request.name}"' if request.name else qualified_resource
    what = f'resource "{resource}"' + (f' subresource "{subresource}"' if subresource else "")
    where = f' in the namespace "{request.namespace}"' if request.namespace else " at the cluster scope"
    return (
        f'{subject} is forbidden: User "{user}" cannot {request.verb} {what} '
        f'in API group "{request.api_group}"{where}'
    )


def owner_finalizer_checks(
    body: Any, namespace: str, plural_of: Callable[[str, str], tuple[str, str] | None]
) -> list[Attributes]:
    """The `update …/finalizers` checks an object's blocking ownerReferences need (admission plugin)."""
    if not isinstance(body, dict):
        return []
    checks = []
    for ref in (body.get("metadata") or {}).get("ownerReferences") or ():
        if not isinstance(ref, dict) or not ref.get("blockOwnerDeletion"):
            continue
        found = plural_of(str(ref.get("apiVersion")), str(ref.get("kind")))
        if found is not None:
            group, plural = found
            checks.append(
                Attributes("update", group, f"{plural}/finalizers", namespace, str(ref.get("name")))
            )
    return checks
