"""Files that users and CI rely on stay valid: compose file, deploy configs, runbooks for every alert."""

import json
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
    "CostGuardUsageRejections",
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


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_wires_prometheus_alertmanager_blackbox_and_grafana_to_the_deploy_files():
    services = _compose()["services"]
    assert {"blackbox", "grafana"} <= set(services)
    mounts = {
        name: {v.split(":")[0]: v.split(":")[1] for v in service.get("volumes", []) if v.startswith("./")}
        for name, service in services.items()
    }
    assert mounts["prometheus"]["./deploy/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    assert mounts["prometheus"]["./deploy/rules"] == "/etc/prometheus/rules"
    assert mounts["alertmanager"]["./deploy/alertmanager.yml"] == "/etc/alertmanager/alertmanager.yml"
    assert "./deploy/blackbox.yml" in mounts["blackbox"]
    command = " ".join(services["blackbox"]["command"])
    assert f"--config.file={mounts['blackbox']['./deploy/blackbox.yml']}" in command
    assert (ROOT / "deploy" / "rules" / "costguard.rules.yml").is_file()
    for path in (ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"):
        assert json.loads(path.read_text())["panels"], path


def test_prometheus_scrapes_costguard_probes_health_and_loads_the_mounted_rules():
    services = _compose()["services"]
    config = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    [costguard_target] = jobs["costguard"]["static_configs"][0]["targets"]
    assert costguard_target.split(":")[0] in services
    probe = jobs["costguard-probe"]
    assert probe["metrics_path"] == "/probe" and probe["params"]["module"] == ["http_2xx"]
    probed = probe["static_configs"][0]["targets"]
    assert {t.rsplit("/", 1)[1] for t in probed} == {"healthz", "readyz"}
    assert all(t.startswith(f"http://{costguard_target}/") for t in probed)
    exporter = next(r["replacement"] for r in probe["relabel_configs"] if r.get("target_label") == "__address__")
    assert exporter.split(":")[0] in services
    blackbox = yaml.safe_load((ROOT / "deploy" / "blackbox.yml").read_text())
    assert blackbox["modules"]["http_2xx"]["prober"] == "http"
    [alertmanager] = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert alertmanager.split(":")[0] in services
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]


def test_alertmanager_routes_by_severity_and_tenant_to_declared_receivers():
    config = yaml.safe_load((ROOT / "deploy" / "alertmanager.yml").read_text())
    declared = {r["name"] for r in config["receivers"]}
    routes = config["route"]["routes"]

    def walk(route: dict) -> list[dict]:
        return [route, *(r for child in route.get("routes", []) for r in walk(child))]

    every = walk(config["route"])
    assert {r["receiver"] for r in every} <= declared
    matchers = [m for r in every for m in r.get("matchers", [])]
    assert 'severity="critical"' in matchers
    assert any(m.startswith("tenant=") for m in matchers)
    assert routes[-1]["matchers"] == ['severity="critical"']
