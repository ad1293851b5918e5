"""Checks a spec the way the CRD schema and its CEL rules would, returning readable problems.

The apiserver normally rejects bad specs; these checks catch what slipped past it (an old apiserver
without CEL, an emulator without validation, a CRD older than the operator) so the operator can
report Degraded/InvalidSpec instead of failing on every reconcile.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import pydantic

from ttsfleet.operator.api.base import RULE_SEPARATOR
from ttsfleet.operator.api.resource import MAX_NAME_LENGTH, NAME_PATTERN
from ttsfleet.operator.api.spec import TTSBackendSpec


def validate_spec(spec: Mapping[str, Any]) -> list[str]:
    """Problems with a raw spec, each `spec.<path>: <message>`; empty when the spec is valid."""
    try:
        parse_spec(spec)
    except pydantic.ValidationError as error:
        return [problem for entry in error.errors(include_url=False) for problem in _describe(entry)]
    return []


def validate_name(name: str) -> list[str]:
    """Problems with a backend's name, which names its Service and other children."""
    problems = []
    if len(name) > MAX_NAME_LENGTH:
        problems.append(f"metadata.name: must be at most {MAX_NAME_LENGTH} characters")
    if not re.fullmatch(NAME_PATTERN, name):
        problems.append("metadata.name: must be a DNS-1035 label (lower case, starting with a letter)")
    return problems


def parse_spec(spec: Mapping[str, Any]) -> TTSBackendSpec:
    """The spec as a model; raises pydantic.ValidationError (call validate_spec first for messages).

    Strict, as the CRD schema is: `replicas: "3"` is a string where an integer belongs, refused rather
    than coerced. Read in JSON mode, where strictness still takes enum values and timestamps as text.
    """
    return TTSBackendSpec.model_validate_json(json.dumps(dict(spec)), strict=True)


def _describe(entry: Mapping[str, Any]) -> list[str]:
    path = ".".join(["spec", *(str(part) for part in entry["loc"])])
    message = str(entry["msg"])
    if entry["type"] != "value_error":
        return [f"{path}: {message}"]
    problems = []
    for failure in message.removeprefix("Value error, ").split(RULE_SEPARATOR):
        field_path, separator, text = failure.partition(": ")
        if separator and (field_path.startswith(".") or not field_path):
            problems.append(f"{path}{field_path}: {text}")
        else:
            problems.append(f"{path}: {failure}")
    return problems
