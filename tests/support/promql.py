"""The series a PromQL expression reads: metric names and the labels its selectors match on.

Enough of PromQL's lexical structure for the expressions the chart ships (rules and the dashboard):
strings, label-matcher blocks, range brackets, grouping clauses, functions and aggregations. It is a
reader for tests, not a validator: promtool checks the syntax.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

AGGREGATIONS = frozenset(
    {
        "sum",
        "avg",
        "min",
        "max",
        "count",
        "group",
        "stddev",
        "stdvar",
        "topk",
        "bottomk",
        "quantile",
        "count_values",
    }
)
GROUPING = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "inf", "nan"}) | GROUPING | AGGREGATIONS
_TOKEN = re.compile(
    r"""
    (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*')
  | (?P<matchers>\{[^}]*\})
  | (?P<range>\[[^\]]*\])
  | (?P<number>\d+(?:\.\d+)?(?:e[+-]?\d+)?(?:ms|[smhdwy])?(?![a-zA-Z0-9_:]))  # also a duration (offset 5m)
  | (?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<open>\()
  | (?P<other>\S)
    """,
    re.VERBOSE,
)
_MATCHER = re.compile(
    r"""([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*(?:"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*')"""
)


@dataclass(frozen=True)
class Selector:
    """One vector selector: its metric name and the label names it matches on."""

    metric: str
    labels: frozenset[str]


def selectors(expr: str) -> list[Selector]:
    """Every vector selector of `expr` that names a metric, in order."""
    tokens = [(match.lastgroup, match.group()) for match in _TOKEN.finditer(expr)]
    found: list[Selector] = []
    index = 0
    while index < len(tokens):
        kind, text = tokens[index]
        following = tokens[index + 1] if index + 1 < len(tokens) else (None, "")
        if kind == "name" and text in GROUPING and following[0] == "open":
            index = _after_parenthesis(tokens, index + 1)  # a label list, not series
            continue
        if kind == "name" and text not in KEYWORDS and following[0] != "open":
            labels = frozenset(_MATCHER.findall(following[1])) if following[0] == "matchers" else frozenset()
            found.append(Selector(text, labels))
        index += 1
    return found


def _after_parenthesis(tokens: list[tuple[str | None, str]], open_index: int) -> int:
    depth = 0
    for index in range(open_index, len(tokens)):
        depth += tokens[index][1] == "("
        depth -= tokens[index][1] == ")"
        if depth == 0:
            return index + 1
    return len(tokens)
