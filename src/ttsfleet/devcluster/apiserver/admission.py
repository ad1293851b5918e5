"""Validation before storing, as the apiserver does it: a refused object gets 422 and is not stored.

Built-in kinds the operator writes are checked against the upstream OpenAPI schemas (the
kubernetes-validate package's, for `UPSTREAM_VERSION`) and, for pod templates, against the rules the
apiserver's own validation code adds (no negative quantities, requests within limits, well-formed
tolerations, nodeSelector keys and node affinity). Custom resources are checked against their CRD's
`openAPIV3Schema` and its CEL rules (`x-kubernetes-validations`, run by cel-python) after applying the
schema's defaults, as the apiserver does — so a `/scale` write the CRD's rules forbid is refused too.
Defaults are applied for the check only; stored objects keep what the client sent.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Iterator, Mapping
from typing import Any

import celpy
import jsonschema
import referencing
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError
from kubernetes_validate import utils as schemas

from ttsfleet.devcluster.apiserver import errors, scale
from ttsfleet.devcluster.apiserver.resources import ResourceSpec
from ttsfleet.devcluster.apiserver.storage import Body
from ttsfleet.operator import rendering
from ttsfleet.operator.api import podchecks

UPSTREAM_VERSION = "1.33"
# Built-in kinds are checked against upstream schemas when the operator renders them (other built-ins,
# written by kopf, kubectl and the local fleet's controllers, are stored as sent).
VALIDATED_BUILTINS = frozenset(rendering.MANAGED_KINDS)
CEL_RULES_KEY = "x-kubernetes-validations"
_CEL = celpy.Environment()


def check(spec: ResourceSpec, body: Body) -> None:
    """Raise 422 when the API would refuse `body` as an object of `spec`."""
    name = str((body.get("metadata") or {}).get("name") or "")
    if spec.custom:
        problems = custom_problems(spec.schema, body) if spec.schema is not None else []
        problems += scale_problems(spec, body)
    elif (spec.api_version, spec.kind) in VALIDATED_BUILTINS:  # custom ones (ServiceMonitor) are above
        problems = builtin_problems(body)
    else:
        problems = []
    if problems:
        kind = f"{spec.kind}.{spec.group}" if spec.group else spec.kind
        raise errors.invalid(kind, name, ", ".join(problems))


def scale_problems(spec: ResourceSpec, body: Body) -> list[str]:
    """The `/scale` subresource's replicas path must hold an integer, whatever the schema says (the
    apiserver checks it apart from the schema, so an open schema does not lift it)."""
    if spec.scale is None:
        return []
    path = spec.scale.spec_replicas_path
    value = scale.read_path(body, path)
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return []
    kind = type(value).__name__
    return [f"{path}: Invalid value: {path} accessor error: {value} is of the type {kind}, expected int64"]


# -- built-in kinds --------------------------------------------------------------------------------


@functools.cache
def _upstream_validator(api_version: str, kind: str) -> jsonschema.protocols.Validator:
    version = [v for v in schemas.all_versions() if schemas.major_minor(v) <= UPSTREAM_VERSION][-1]
    folder = f"kubernetes-json-schema/v{version}-local"
    # The package's file naming: "networking.k8s.io/v1" -> "networking-v1", "v1" -> "v1".
    slug = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    schema = schemas.schema_contents(f"{folder}/{kind.lower()}-{slug}.json", UPSTREAM_VERSION)
    definitions = schemas.schema_contents(f"{folder}/_definitions.json", UPSTREAM_VERSION)
    registry = referencing.Resource.from_contents(definitions) @ (
        referencing.Resource.from_contents(schema) @ referencing.Registry()
    )
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


def builtin_problems(body: Body) -> list[str]:
    """Schema violations and pod-template rules broken by a built-in object."""
    validator = _upstream_validator(str(body["apiVersion"]), str(body["kind"]))
    problems = [
        f"{_path(error.absolute_path)}: Invalid value: {error.message}"
        for error in validator.iter_errors(body)
    ]
    if problems:
        return problems
    template = ((body.get("spec") or {}).get("template") or {}).get("spec")
    return pod_problems(template, "spec.template.spec") if isinstance(template, dict) else []


def _path(parts: Any) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text.lstrip(".") or "<root>"


def _negative(value: Any) -> bool:
    amount = podchecks.quantity_amount(value)
    return amount is not None and amount < 0


def pod_problems(pod: Mapping[str, Any], where: str) -> list[str]:
    """The apiserver's pod-spec rules its schema does not carry."""
    problems = []
    for index, container in enumerate(pod.get("containers") or ()):
        resources = container.get("resources") or {}
        requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
        prefix = f"{where}.containers[{index}].resources"
        for part, amounts in (("requests", requests), ("limits", limits)):
            problems += [
                f"{prefix}.{part}[{key}]: Invalid value: {value!r}: must be greater than or equal to 0"
                for key, value in sorted(amounts.items())
                if _negative(value)
            ]
        problems += [f"{prefix}{problem}" for problem in podchecks.resource_problems(requests, limits)]
    problems += [
        f"{where}{problem}" for problem in podchecks.node_selector_problems(pod.get("nodeSelector") or {})
    ]
    problems += [
        f"{where}{problem}" for problem in podchecks.toleration_problems(pod.get("tolerations") or [])
    ]
    problems += [f"{where}{problem}" for problem in podchecks.affinity_problems(pod.get("affinity") or {})]
    return problems


# -- custom resources ------------------------------------------------------------------------------


def custom_problems(schema: Mapping[str, Any], body: Body) -> list[str]:
    """Violations of a CRD's schema, then of its CEL rules on the defaulted object."""
    problems = [
        f"{_path(error.absolute_path)}: Invalid value: {error.message}"
        for error in _crd_validator(schema).iter_errors(body)
    ]
    if problems:
        return problems
    defaulted = with_defaults(schema, body)
    for rule, node, path in _rules(schema, defaulted, ""):
        if not _holds(rule["rule"], node):
            field = path + str(rule.get("fieldPath") or "")
            problems.append(
                f"{field.lstrip('.') or '<root>'}: Invalid value: {rule.get('message') or rule['rule']}"
            )
    return problems


# Validators by the identity of the schema a CRD version holds (a changed CRD brings a new schema).
_CRD_VALIDATORS: dict[int, tuple[Mapping[str, Any], jsonschema.protocols.Validator]] = {}


def _crd_validator(schema: Mapping[str, Any]) -> jsonschema.protocols.Validator:
    cached = _CRD_VALIDATORS.get(id(schema))
    if cached is None or cached[0] is not schema:
        cached = (schema, jsonschema.Draft202012Validator(dict(schema)))
        _CRD_VALIDATORS[id(schema)] = cached
    return cached[1]


def with_defaults(schema: Mapping[str, Any], value: Any) -> Any:
    """Structural defaulting: absent properties take their schema `default`, recursively."""
    if isinstance(value, dict) and "properties" in schema:
        out = dict(value)
        for name, child in schema["properties"].items():
            if name not in out and "default" in child:
                out[name] = copy.deepcopy(child["default"])
            if name in out:
                out[name] = with_defaults(child, out[name])
        return out
    if isinstance(value, dict) and isinstance(schema.get("additionalProperties"), dict):
        return {key: with_defaults(schema["additionalProperties"], item) for key, item in value.items()}
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [with_defaults(schema["items"], item) for item in value]
    return value


def _rules(schema: Mapping[str, Any], value: Any, path: str) -> Iterator[tuple[Mapping[str, Any], Any, str]]:
    for rule in schema.get(CEL_RULES_KEY) or ():
        yield rule, value, path
    if isinstance(value, dict):
        for name, child in (schema.get("properties") or {}).items():
            if name in value and value[name] is not None:
                yield from _rules(child, value[name], f"{path}.{name}")
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            yield from _rules(schema["items"], item, f"{path}[{index}]")


@functools.cache
def _program(rule: str) -> Any:
    return _CEL.program(_CEL.compile(rule))


def _holds(rule: str, node: Any) -> bool:
    try:
        return bool(_program(rule).evaluate({"self": json_to_cel(node)}))
    except CELEvalError:
        return False
