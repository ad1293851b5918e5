"""What the apiserver checks on a Deployment's pod template, checked on the spec parts copied into it.

The CRD leaves tolerations and affinity free-form (they are Kubernetes' own shapes, passed through),
and its schema cannot compare two quantities or check a map's keys, so a spec the CRD accepts could
still render a Deployment the apiserver refuses with 422. These checks (pure) catch the common cases
up front, worded as `.<path>: <message>` relative to the group they check; the operator still reports
anything the API refuses later (Degraded, reason InvalidSpec).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from kubernetes.utils.quantity import parse_quantity

# A label key: an optional DNS-subdomain prefix and a slash, then a name (IsQualifiedName in apimachinery).
_LABEL_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_DNS_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_LABEL_VALUE = rf"({_LABEL_NAME})?"
TOLERATION_OPERATORS = ("Exists", "Equal")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def is_label_key(key: str) -> bool:
    """A valid label key (what nodeSelector keys and toleration keys must be)."""
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not re.fullmatch(_DNS_SUBDOMAIN, prefix)):
        return False
    return 0 < len(name) <= 63 and re.fullmatch(_LABEL_NAME, name) is not None


def is_label_value(value: str) -> bool:
    """A valid label value (empty, or up to 63 characters of a label name)."""
    return len(value) <= 63 and re.fullmatch(_LABEL_VALUE, value) is not None


def quantity_amount(value: object) -> Decimal | None:
    """A Kubernetes quantity as a number (250m → 0.25), or None when it is not one."""
    try:
        amount: Decimal = parse_quantity(value)  # type: ignore[no-untyped-call]  # kubernetes is untyped
    except (ValueError, TypeError):
        return None
    return amount


def resource_problems(requests: Mapping[str, int | str], limits: Mapping[str, int | str]) -> list[str]:
    """Requests above their limits (the quantities themselves are checked by the schema)."""
    problems = []
    for name, limit in sorted(limits.items()):
        request = requests.get(name)
        wanted = quantity_amount(request) if request is not None else None
        cap = quantity_amount(limit)
        if wanted is not None and cap is not None and wanted > cap:
            problems.append(f".requests.{name}: must be less than or equal to {name} limit of {limit}")
    return problems


def node_selector_problems(selector: Mapping[str, str]) -> list[str]:
    """nodeSelector keys and values that are not label keys and values."""
    problems = []
    for key, value in sorted(selector.items()):
        if not is_label_key(key):
            problems.append(f".nodeSelector: {key!r} is not a valid label key")
        elif not is_label_value(value):
            problems.append(f".nodeSelector.{key}: {value!r} is not a valid label value")
    return problems


def toleration_problems(tolerations: Sequence[Mapping[str, Any]]) -> list[str]:
    """Tolerations the apiserver refuses: unknown operator or effect, Exists with a value, bad key."""
    problems = []
    for index, toleration in enumerate(tolerations):
        where = f".tolerations[{index}]"
        operator = toleration.get("operator") or "Equal"
        key, value, effect = (
            toleration.get("key") or "",
            toleration.get("value") or "",
            toleration.get("effect"),
        )
        if operator not in TOLERATION_OPERATORS:
            problems.append(f"{where}.operator: must be Exists or Equal, not {operator!r}")
        if operator == "Exists" and value:
            problems.append(f"{where}.value: must be empty when operator is Exists")
        if operator == "Equal" and not key:
            problems.append(f"{where}.key: an empty key requires operator Exists")
        if key and not is_label_key(str(key)):
            problems.append(f"{where}.key: {key!r} is not a valid label key")
        if effect not in (None, "", *TAINT_EFFECTS):
            problems.append(f"{where}.effect: must be one of {', '.join(TAINT_EFFECTS)}, not {effect!r}")
        seconds = toleration.get("tolerationSeconds")
        if seconds is not None and effect != "NoExecute":
            problems.append(f"{where}.tolerationSeconds: only allowed with effect NoExecute")
    return problems


def affinity_problems(affinity: Mapping[str, Any]) -> list[str]:
    """Required node affinity without terms, which matches no node and is refused."""
    node = affinity.get("nodeAffinity") or {}
    required = node.get("requiredDuringSchedulingIgnoredDuringExecution")
    if required is not None and not (required or {}).get("nodeSelectorTerms"):
        path = ".affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms"
        return [f"{path}: must have at least one node selector term"]
    return []
