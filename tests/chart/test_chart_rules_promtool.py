"""The shipped rules under promtool: valid, and each alert fires when it should and stays quiet otherwise.

Every alert has a unit-test file in rule_tests/, in promtool's own format but without `rule_files`: the
test renders the chart, writes the PrometheusRule's groups to a rules file and points the unit tests at
it. Of the annotations only the summary is compared (it shows the labels an alert carries), so the files
state conditions rather than repeat prose. promtool comes from Debian's `prometheus` package, which
`make install` installs; without it these tests fail.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.helm import Manifest, one, render
from tests.support.tools import require_tool

RULE_TESTS = Path(__file__).parent / "rule_tests"
PROMTOOL_HINT = "run `make install` (it installs Debian's `prometheus` package, which ships promtool)"
PROMTOOL_TIMEOUT_S = 120


@pytest.fixture(scope="session")
def promtool() -> Path:
    return require_tool("promtool", PROMTOOL_HINT)


def rule_groups(
    manifests: list[Manifest], annotations: tuple[str, ...] | None = None
) -> list[dict[str, Any]]:
    """The PrometheusRule's groups; with `annotations`, every alert keeps only those annotations."""
    groups: list[dict[str, Any]] = one(manifests, "PrometheusRule")["spec"]["groups"]
    if annotations is None:
        return groups
    return [
        {
            **group,
            "rules": [
                {**rule, "annotations": {k: v for k, v in rule["annotations"].items() if k in annotations}}
                if "alert" in rule
                else rule
                for rule in group["rules"]
            ],
        }
        for group in groups
    ]


def alert_names(manifests: list[Manifest]) -> set[str]:
    return {rule["alert"] for group in rule_groups(manifests) for rule in group["rules"] if "alert" in rule}


def run_promtool(promtool: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(promtool), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=PROMTOOL_TIMEOUT_S,
        check=False,
    )


def unit_test(
    promtool: Path, workdir: Path, groups: list[dict[str, Any]], tests: list[dict[str, Any]]
) -> subprocess.CompletedProcess[str]:
    """`promtool test rules` of `tests` against `groups`, evaluated every minute."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    suite = {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests}
    (workdir / "tests.yaml").write_text(yaml.safe_dump(suite, sort_keys=False))
    return run_promtool(promtool, "test", "rules", "tests.yaml", cwd=workdir)


def test_promtool_accepts_the_shipped_rules(
    promtool: Path, cluster_manifests: list[Manifest], tmp_path: Path
) -> None:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rule_groups(cluster_manifests)}))
    result = run_promtool(promtool, "check", "rules", "--lint-fatal", "rules.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_unit_tests(cluster_manifests: list[Manifest]) -> None:
    assert {path.stem for path in RULE_TESTS.glob("*.yaml")} == alert_names(cluster_manifests)


def _cases_for(alert: str, tests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [case for test in tests for case in test.get("alert_rule_test", []) if case["alertname"] == alert]


@pytest.mark.parametrize("path", sorted(RULE_TESTS.glob("*.yaml")), ids=lambda path: path.stem)
def test_alert_fires_when_it_should_and_stays_quiet_otherwise(
    promtool: Path, cluster_manifests: list[Manifest], tmp_path: Path, path: Path
) -> None:
    tests = yaml.safe_load(path.read_text())["tests"]
    cases = _cases_for(path.stem, tests)
    assert any(case["exp_alerts"] for case in cases), f"{path.name} never expects {path.stem} to fire"
    assert any(not case["exp_alerts"] for case in cases), f"{path.name} never expects {path.stem} to be quiet"
    result = unit_test(promtool, tmp_path, rule_groups(cluster_manifests, ("summary",)), tests)
    assert result.returncode == 0, result.stdout + result.stderr


def test_slo_objectives_and_ttfb_target_are_values(promtool: Path, helm: Path, tmp_path: Path) -> None:
    """A 99 % / 1 s objective: 2 % failures burn 2x (no page), 1 s matches the `le="1.0"` bucket."""
    values = tmp_path / "values.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                "prometheusRule": {
                    "enabled": True,
                    "slo": {
                        "availability": {"objective": 0.99},
                        "latency": {"objective": 0.9, "ttfbTargetSeconds": 1},
                    },
                }
            }
        )
    )
    gateway = 'job="aura-en", namespace="voice", service="aura-en", pod="aura-en-1"'
    tests = [
        {
            "interval": "1m",
            "input_series": [
                {"series": f'ttsfleet_utterances_total{{{gateway}, outcome="failed"}}', "values": "0+2x30"},
                {
                    "series": f'ttsfleet_utterances_total{{{gateway}, outcome="completed"}}',
                    "values": "0+98x30",
                },
                {"series": f'ttsfleet_ttfb_seconds_bucket{{{gateway}, le="1.0"}}', "values": "0+80x30"},
                {"series": f"ttsfleet_ttfb_seconds_count{{{gateway}}}", "values": "0+100x30"},
            ],
            "alert_rule_test": [
                {"eval_time": "20m", "alertname": "TTSBackendAvailabilityBudgetBurn", "exp_alerts": []}
            ],
            "promql_expr_test": [
                {
                    "expr": "round(ttsfleet:utterances_failed:burn_rate1h, 0.01)",
                    "eval_time": "20m",
                    "exp_samples": [{"labels": '{namespace="voice", service="aura-en"}', "value": 2}],
                },
                {
                    "expr": "round(ttsfleet:ttfb_over_target:burn_rate1h, 0.01)",
                    "eval_time": "20m",
                    "exp_samples": [{"labels": '{namespace="voice", service="aura-en"}', "value": 2}],
                },
            ],
        }
    ]
    result = unit_test(promtool, tmp_path / "run", rule_groups(render(helm, [values]), ()), tests)
    assert result.returncode == 0, result.stdout + result.stderr
