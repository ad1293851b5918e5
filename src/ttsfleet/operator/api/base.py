"""The base every TTSBackend API model shares: camelCase on the wire, frozen values, CEL rules.

A cross-field rule is declared once as a `CelRule`: its CEL text goes into the CRD for the apiserver,
and its Python predicate runs when a model is built, so the operator sees exactly what the apiserver
would have rejected (kmock, and old apiservers, do not run CEL).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import to_jsonable_python

CEL_RULES_KEY = "x-kubernetes-validations"
PRESERVE_UNKNOWN_KEY = "x-kubernetes-preserve-unknown-fields"
# Several broken rules on one object travel in one pydantic error, one rule per line.
RULE_SEPARATOR = "\n"


@dataclass(frozen=True, slots=True)
class CelRule:
    """One cross-field rule: the CEL the apiserver runs and the Python predicate the operator runs."""

    rule: str
    message: str
    check: Callable[[Any], bool]
    field_path: str | None = None

    def describe(self) -> str:
        """The failure as `<fieldPath>: <message>` (fieldPath relative, starting with a dot)."""
        return f"{self.field_path or ''}: {self.message}"

    def to_schema(self) -> dict[str, str]:
        """The `x-kubernetes-validations` entry for this rule."""
        entry = {"rule": self.rule, "message": self.message}
        if self.field_path is not None:
            entry["fieldPath"] = self.field_path
        return entry


def _extend_schema(schema: dict[str, Any], model: type[Any]) -> None:
    if getattr(model, "preserve_unknown_fields", False):
        schema[PRESERVE_UNKNOWN_KEY] = True
    rules: tuple[CelRule, ...] = getattr(model, "cel_rules", ())
    if rules:
        schema[CEL_RULES_KEY] = [rule.to_schema() for rule in rules]
    # pydantic leaves factory defaults out of the schema; the apiserver should apply the non-empty ones
    # (empty ones would only add noise to every object).
    for name, field in model.model_fields.items():
        prop = schema.get("properties", {}).get(field.alias or name)
        if prop is None or "default" in prop or field.default_factory is None:
            continue
        value = to_jsonable_python(field.default_factory(), by_alias=True)
        if value:
            prop["default"] = value


class ApiModel(BaseModel):
    """A part of the TTSBackend API: camelCase aliases, unknown fields refused, immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
        frozen=True,
        use_enum_values=False,
        json_schema_extra=_extend_schema,
    )
    cel_rules: ClassVar[tuple[CelRule, ...]] = ()
    # True where others write next to us (kopf keeps its progress in status): the apiserver keeps
    # unknown fields there instead of pruning them.
    preserve_unknown_fields: ClassVar[bool] = False

    @model_validator(mode="after")
    def _check_cel_rules(self) -> Self:
        failed = [rule.describe() for rule in type(self).cel_rules if not rule.check(self)]
        if failed:
            raise ValueError(RULE_SEPARATOR.join(failed))
        return self


def group(factory: Callable[[], Any], description: str) -> Any:
    """A nested settings group that is always present: `default: {}` lets the apiserver fill it in."""
    return Field(default_factory=factory, description=description, json_schema_extra={"default": {}})


def free_form(description: str, *, default_factory: Callable[[], Any] = dict) -> Any:
    """A Kubernetes-shaped value passed through verbatim (affinity, tolerations…): never pruned.

    Its pydantic type is `dict[str, Any]` (or a list of them); the CRD generator turns the open
    `additionalProperties` into `x-kubernetes-preserve-unknown-fields`.
    """
    return Field(default_factory=default_factory, description=description)
