"""Label and field selectors as list and watch requests carry them (`labelSelector`, `fieldSelector`).

Labels: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`, comma-separated (all must hold).
Fields: `path=v`, `path==v`, `path!=v` on any dotted path (`metadata.name`, `status.phase`, `type`);
a missing field compares as the empty string, as the apiserver does. Pure functions, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from ttsfleet.devcluster.apiserver import errors

Predicate = Callable[[Mapping[str, Any]], bool]

_SET_TERM = re.compile(r"^\s*(?P<key>[^\s!=,()]+)\s+(?P<op>in|notin)\s+\((?P<values>[^)]*)\)\s*$")
_EQ_TERM = re.compile(r"^\s*(?P<key>[^\s!=,()]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^\s,()]*)\s*$")
_EXISTS_TERM = re.compile(r"^\s*(?P<neg>!?)\s*(?P<key>[^\s!=,()]+)\s*$")


def _split_terms(selector: str) -> list[str]:
    """Split on commas outside parentheses (`a in (x,y),b` is two terms)."""
    terms: list[str] = []
    depth, start = 0, 0
    for index, char in enumerate(selector):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            terms.append(selector[start:index])
            start = index + 1
    terms.append(selector[start:])
    return [term for term in terms if term.strip()]


def _label_term(term: str) -> Callable[[Mapping[str, str]], bool]:
    if match := _SET_TERM.match(term):
        key, op = match["key"], match["op"]
        values = {value.strip() for value in match["values"].split(",") if value.strip()}
        if op == "in":
            return lambda labels: labels.get(key) in values
        # `notin` also holds when the label is absent.
        return lambda labels: labels.get(key) not in values
    if match := _EQ_TERM.match(term):
        key, op, value = match["key"], match["op"], match["value"]
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if match := _EXISTS_TERM.match(term):
        key, negated = match["key"], bool(match["neg"])
        return lambda labels: (key in labels) != negated
    raise errors.bad_request(f"unable to parse requirement: {term!r}")


def label_predicate(selector: str | None) -> Predicate:
    """A test of an object's `metadata.labels` against a label selector (None or "" matches all)."""
    terms = [_label_term(term) for term in _split_terms(selector or "")]

    def matches(obj: Mapping[str, Any]) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(term(labels) for term in terms)

    return matches


def _field_value(obj: Mapping[str, Any], path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return ""
        value = value[part]
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def field_predicate(selector: str | None) -> Predicate:
    """A test of an object's fields against a field selector (None or "" matches all)."""
    tests: list[tuple[str, bool, str]] = []
    for term in _split_terms(selector or ""):
        match = _EQ_TERM.match(term)
        if match is None:
            raise errors.bad_request(f"invalid field selector: {term!r}")
        tests.append((match["key"], match["op"] != "!=", match["value"]))

    def matches(obj: Mapping[str, Any]) -> bool:
        return all((_field_value(obj, path) == value) == equal for path, equal, value in tests)

    return matches


def selector_string(selector: Mapping[str, Any]) -> str:
    """A LabelSelector object (`matchLabels`, `matchExpressions`) written as a selector string."""
    terms = [f"{key}={value}" for key, value in sorted((selector.get("matchLabels") or {}).items())]
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = ",".join(expression.get("values") or [])
        terms.append(
            {
                "In": f"{key} in ({values})",
                "NotIn": f"{key} notin ({values})",
                "Exists": key,
                "DoesNotExist": f"!{key}",
            }[operator]
        )
    return ",".join(terms)


def request_predicate(params: Mapping[str, str]) -> Predicate:
    """Both selectors of a request's query combined."""
    by_labels = label_predicate(params.get("labelSelector"))
    by_fields = field_predicate(params.get("fieldSelector"))
    return lambda obj: by_labels(obj) and by_fields(obj)
