"""Every query of the dashboard and the alerts reads series that exist.

The names come from real /metrics of a real gateway and a real operator (see scrapes.py), plus the
chart's own recording rules; a panel on a metric nobody exports, or a selector on a label the metric
does not carry, is an empty panel in production. Labels are checked where the scrape has samples (a
labelled family with no sample yet tells its name only).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from tests.monitoring.scrapes import Exported
from tests.support.helm import Manifest, one
from tests.support.promql import Selector, selectors
from ttsfleet.contracts import BreakerState

# Labels Prometheus adds to every scraped series (job, instance) and those the Prometheus Operator adds
# for a ServiceMonitor's target (the gateways' per-backend monitor and the operator's).
TARGET_LABELS = frozenset({"job", "instance", "namespace", "service", "pod", "container", "endpoint"})
# Every recording rule aggregates `by (namespace, service)`, or divides such a recording by a number.
RECORDED_LABELS = frozenset({"namespace", "service"})
# Series from elsewhere that alerts read: Prometheus's own `up`, kube-state-metrics.
EXTERNAL = re.compile(r"up|kube_[a-z_]+")
LABEL_VALUES = re.compile(r"label_values\((?P<expr>.*),\s*\w+\)")
# A `state` matcher (equality or regex alternation) inside a `ttsfleet_breaker_state` selector.
BREAKER_STATE_MATCHER = re.compile(r'ttsfleet_breaker_state\{[^}]*\bstate\s*=~?\s*"(?P<values>[^"]*)"')


def dashboard(manifests: list[Manifest]) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(one(manifests, "ConfigMap")["data"]["ttsfleet.json"])
    return document


def dashboard_queries(manifests: list[Manifest]) -> Iterator[tuple[str, str]]:
    """(where, expression) of every panel target and template variable query."""
    board = dashboard(manifests)
    for panel in board["panels"]:
        for target in panel["targets"]:
            yield f"panel {panel['title']!r} {target['refId']}", target["expr"]
    for variable in board["templating"]["list"]:
        query = variable.get("query")
        if isinstance(query, dict):
            match = LABEL_VALUES.fullmatch(query["query"])
            assert match, f"variable {variable['name']}: not a label_values() query"
            yield f"variable {variable['name']}", match["expr"]


def rules(manifests: list[Manifest]) -> list[dict[str, Any]]:
    groups = one(manifests, "PrometheusRule")["spec"]["groups"]
    return [rule for group in groups for rule in group["rules"]]


def known_labels(
    gateway: Exported, operator: Exported, manifests: list[Manifest]
) -> dict[str, frozenset[str] | None]:
    """Each known series name with its label names (None: exported, labels not seen on a sample)."""
    known: dict[str, frozenset[str] | None] = {}
    for exported in (gateway, operator):
        for name, labels in exported.labels.items():
            seen = (known.get(name) or frozenset()) | labels
            known[name] = seen or None
    for rule in rules(manifests):
        if "record" in rule:
            known[rule["record"]] = RECORDED_LABELS
    return known


def problems(where: str, found: list[Selector], known: dict[str, frozenset[str] | None]) -> list[str]:
    wrong = []
    for selector in found:
        if selector.metric not in known:
            wrong.append(f"{where}: {selector.metric} is not exported")
            continue
        labels = known[selector.metric]
        if labels is not None and not selector.labels <= labels | TARGET_LABELS:
            wrong.append(
                f"{where}: {selector.metric} has no label {sorted(selector.labels - labels - TARGET_LABELS)}"
            )
    return wrong


def test_the_scrapes_saw_both_processes(gateway_exports: Exported, operator_exports: Exported) -> None:
    assert "ttsfleet_sessions_active" in gateway_exports.names
    assert "ttsfleet_backend_ready" in operator_exports.names


def test_every_dashboard_query_reads_exported_series(
    gateway_exports: Exported, operator_exports: Exported, cluster_manifests: list[Manifest]
) -> None:
    known = known_labels(gateway_exports, operator_exports, cluster_manifests)
    wrong = [
        problem
        for where, expr in dashboard_queries(cluster_manifests)
        for problem in problems(where, selectors(expr), known)
    ]
    assert not wrong, "\n".join(wrong)


def test_every_dashboard_query_names_a_series(cluster_manifests: list[Manifest]) -> None:
    empty = [where for where, expr in dashboard_queries(cluster_manifests) if not selectors(expr)]
    assert not empty, f"queries the selector reader found no series in: {empty}"


def test_every_rule_reads_exported_or_recorded_series(
    gateway_exports: Exported, operator_exports: Exported, cluster_manifests: list[Manifest]
) -> None:
    known = known_labels(gateway_exports, operator_exports, cluster_manifests)
    wrong = []
    for rule in rules(cluster_manifests):
        where = rule.get("alert") or rule["record"]
        ours = [selector for selector in selectors(rule["expr"]) if not EXTERNAL.fullmatch(selector.metric)]
        wrong += problems(where, ours, known)
    assert not wrong, "\n".join(wrong)


def test_the_dashboard_shows_the_slos_and_the_processes(cluster_manifests: list[Manifest]) -> None:
    exprs = " ".join(expr for _, expr in dashboard_queries(cluster_manifests))
    for series in (
        "ttsfleet:utterances_failed:error_budget_remaining30d",
        "ttsfleet:ttfb_over_target:error_budget_remaining30d",
        "ttsfleet:utterances_failed:burn_rate1h",
        "ttsfleet:ttfb_over_target:burn_rate1h",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
        "process_max_fds",
        "python_gc_collections_total",
    ):
        assert series in exprs, f"no panel shows {series}"


def test_breaker_states_the_chart_names_are_the_gateways(cluster_manifests: list[Manifest]) -> None:
    """The dashboard and rules match `ttsfleet_breaker_state` on the words `BreakerState` exports."""
    exprs = [expr for _, expr in dashboard_queries(cluster_manifests)]
    exprs += [rule["expr"] for rule in rules(cluster_manifests)]
    named = {
        state
        for expr in exprs
        for match in BREAKER_STATE_MATCHER.finditer(expr)
        for state in match["values"].split("|")
    }
    assert named, "no query matches ttsfleet_breaker_state on its state label"
    assert named <= {state.value for state in BreakerState}, f"unknown breaker states: {sorted(named)}"
