"""`costguard rules`: the shipped rule files are its output, valid for promtool, and pass their unit tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from costguard.alerts.rules import render
from costguard.config import Settings
from costguard.evaluation import logic
from tests.conftest import IN_CI
from tests.helpers.processes import VENV_BIN

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_FILE = ROOT / "deploy" / "rules" / "costguard.rules.yml"
BUDGET_ALERTS_FILE = ROOT / "deploy" / "rules-alternative" / "costguard-budget-alerts.rules.yml"
SELF_MONITORING = {
    "CostGuardEvaluationStale",
    "CostGuardUsageFeedStale",
    "CostGuardAlertDeliveryFailing",
    "CostGuardUsageRejections",
}


def _costguard_rules(*args: str) -> str:
    """`costguard rules` as a user runs it, with no COSTGUARD_ setting in the environment (the defaults)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COSTGUARD_")}
    done = subprocess.run(
        [str(VENV_BIN / "costguard"), "rules", *args], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout


def _rules(text: str) -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(text)["groups"] for rule in group["rules"]]


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if IN_CI:
            pytest.fail("CI=true but promtool (Debian package prometheus) is not installed")
        pytest.skip("promtool is not installed (Debian package prometheus)")
    return found


def test_shipped_rule_files_are_the_output_of_costguard_rules():
    assert DEFAULT_FILE.read_text() == _costguard_rules()
    assert BUDGET_ALERTS_FILE.read_text() == _costguard_rules("--budget-alerts")


def test_default_file_records_cost_rates_and_alerts_on_the_guard_itself_but_not_on_budgets():
    rules = _rules(DEFAULT_FILE.read_text())
    records = {r["record"] for r in rules if "record" in r}
    for window in ("5m", "1h"):
        assert {
            f"tenant:costguard_cost:rate{window}",
            f"tenant_pipeline:costguard_cost:rate{window}",
            f"tenant_model:costguard_cost:rate{window}",
        } <= records
    alerts = {r["alert"] for r in rules if "alert" in r}
    assert alerts == SELF_MONITORING | {"CostSpendAnomaly"}
    assert not alerts & set(logic.SEVERITY), "budget alerts must not be evaluated twice by default"


def test_budget_alert_rules_mirror_costguards_own_alerts_and_severities():
    rules = _rules(BUDGET_ALERTS_FILE.read_text())
    assert {r["alert"]: r["labels"]["severity"] for r in rules} == logic.SEVERITY


@pytest.mark.parametrize("path", [DEFAULT_FILE, BUDGET_ALERTS_FILE], ids=lambda p: p.name)
def test_every_alerting_rule_has_severity_summary_description_and_a_runbook(path: Path):
    for rule in _rules(path.read_text()):
        if "alert" not in rule:
            continue
        name = rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}, name
        assert rule["annotations"]["runbook_url"] == f"http://127.0.0.1:8000/runbooks/{name}"
        assert (ROOT / "runbooks" / f"{name}.md").is_file(), name


def test_runbook_links_follow_the_runbook_base_url_setting():
    text = render(Settings(runbook_base_url="https://wiki.example.com/costguard/"))
    urls = {r["alert"]: r["annotations"]["runbook_url"] for r in _rules(text) if "alert" in r}
    assert urls["CostGuardEvaluationStale"] == "https://wiki.example.com/costguard/CostGuardEvaluationStale"


def test_cost_rates_follow_the_cost_metric_label_setting():
    rules = _rules(render(Settings(cost_metric_labels="tenant")))  # type: ignore[arg-type]
    records = {r["record"] for r in rules if "record" in r}
    assert records == {"tenant:costguard_cost:rate5m", "tenant:costguard_cost:rate1h"}
    [anomaly] = [r for r in rules if r.get("alert") == "CostSpendAnomaly"]
    assert "sum by (tenant, currency)" in anomaly["expr"] and "pipeline" not in anomaly["expr"]


def test_stale_thresholds_follow_the_evaluation_interval_and_feed_settings():
    rules = _rules(render(Settings(evaluation_interval_seconds=10, usage_feed_stale_after_seconds=7200)))
    exprs = {r["alert"]: r["expr"] for r in rules if "alert" in r}
    assert exprs["CostGuardEvaluationStale"].endswith("> 60")  # 3 x 10 s + 30 s, as /readyz
    assert exprs["CostGuardUsageFeedStale"].endswith("> 8100")  # 2 h + one 15-minute bucket


def test_promtool_check_rules_accepts_the_shipped_files():
    done = subprocess.run(
        [_promtool(), "check", "rules", str(DEFAULT_FILE), str(BUDGET_ALERTS_FILE)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("test_file", sorted((ROOT / "tests" / "promtool").glob("*.test.yml")), ids=lambda p: p.name)
def test_promtool_rule_unit_tests_pass(test_file: Path):
    done = subprocess.run([_promtool(), "test", "rules", str(test_file)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
