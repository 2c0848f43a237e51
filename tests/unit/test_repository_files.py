"""Files that users and CI rely on stay valid: compose file, deploy configs, runbooks for every alert."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
ALERTS = [
    "CostBudgetApproaching",
    "CostBudgetExceeded",
    "CostBudgetForecastExceeded",
    "CostBudgetBurnRateHigh",
    "CostSpendAnomaly",
    "CostGuardEvaluationStale",
    "CostGuardUsageFeedStale",
    "CostGuardAlertDeliveryFailing",
]


def test_docker_compose_wires_the_production_processes():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "costguard", "worker", "prometheus", "alertmanager"} <= set(services)
    assert services["costguard"]["command"][:2] == ["costguard", "serve"]
    assert services["worker"]["command"] == ["costguard", "worker"]
    env = services["costguard"]["environment"]
    assert env["COSTGUARD_DATABASE_URL"].startswith("postgresql+psycopg://")
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), source


def test_every_alert_has_a_runbook():
    for alert in ALERTS:
        page = ROOT / "runbooks" / f"{alert}.md"
        assert page.is_file(), alert
        assert page.read_text().startswith(f"# {alert}")


def test_alertmanager_config_inhibits_approaching_while_exceeded():
    config = yaml.safe_load((ROOT / "deploy" / "alertmanager.yml").read_text())
    [rule] = config["inhibit_rules"]
    assert rule["source_matchers"] == ['alertname="CostBudgetExceeded"']
    assert {"budget", "period"} <= set(rule["equal"])
