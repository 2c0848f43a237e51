"""The deploy/ stack for real: Prometheus, Alertmanager and the blackbox exporter (Debian's binaries) with
the deploy/ configs (only targets, ports, paths and intervals rewritten), a `costguard serve` process on a
throwaway PostgreSQL database, and a webhook receiver behind Alertmanager.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import IN_CI, _postgres_reachable
from tests.helpers.databases import throwaway_database
from tests.helpers.processes import VENV_BIN, free_port, process, wait_http
from tests.helpers.receiver import Receiver, http_receiver

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BINARIES = {
    "prometheus": "/usr/bin/prometheus",
    "alertmanager": "/usr/bin/prometheus-alertmanager",
    "blackbox": "/usr/bin/prometheus-blackbox-exporter",
}
BUDGET_ALERTS = {"CostBudgetApproaching", "CostBudgetExceeded"}
RESEND_SECONDS = 2
GROUP_INTERVAL_SECONDS = 2


def _require_binaries() -> None:
    missing = [path for path in BINARIES.values() if not os.access(path, os.X_OK)]
    if missing:
        reason = (
            f"{', '.join(missing)} not installed (Debian: prometheus, prometheus-alertmanager, "
            "prometheus-blackbox-exporter)"
        )
        if IN_CI:
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    problem = _postgres_reachable()
    if problem:
        if IN_CI:
            pytest.fail(f"CI=true but {problem}")
        pytest.skip(problem)


def wait_until(what: str, check: Callable[[], Any], *, timeout: float = 45) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)


@dataclass
class Stack:
    tmp: Path
    receiver: Receiver
    costguard_url: str
    alertmanager_url: str
    prometheus_url: str
    token: str
    start_alertmanager: Callable[[], None]
    stop_alertmanager: Callable[[], None]
    notes: list[str] = field(default_factory=list)

    def post_usage(self, tenant: str, event_id: str, cost: str, at: datetime) -> None:
        record = {"event_id": event_id, "timestamp": at.isoformat(), "tenant": tenant, "cost": cost}
        response = httpx.post(
            f"{self.costguard_url}/v1/usage", json=[record], headers={"Authorization": f"Bearer {self.token}"}
        )
        assert response.status_code == 200, response.text

    def costguard_alerts(self) -> list[dict[str, Any]]:
        return list(
            httpx.get(f"{self.costguard_url}/v1/alerts", headers={"Authorization": f"Bearer {self.token}"}).json()
        )

    def notifications(self, tenant: str) -> list[tuple[str, str, str]]:
        """(receiver path, status, alertname) of each budget alert of ``tenant`` Alertmanager notified about."""
        return [
            (request.path, alert["status"], alert["labels"]["alertname"])
            for request in list(self.receiver.requests)
            for alert in request.json()["alerts"]
            if alert["labels"].get("tenant") == tenant and alert["labels"]["alertname"] in BUDGET_ALERTS
        ]

    def query(self, promql: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.prometheus_url}/api/v1/query", params={"query": promql}).json()
        assert response["status"] == "success", response
        return list(response["data"]["result"])


def _rewrite(text: str, mapping: dict[str, str]) -> str:
    for old, new in mapping.items():
        text = text.replace(old, new)
    return text


def _prometheus_config(tmp: Path, *, costguard: str, alertmanager: str, blackbox: str) -> Path:
    text = _rewrite(
        (DEPLOY / "prometheus.yml").read_text(),
        {
            "costguard:8000": costguard,
            "alertmanager:9093": alertmanager,
            "blackbox:9115": blackbox,
            "/etc/prometheus/rules": str(DEPLOY / "rules"),
        },
    )
    config = yaml.safe_load(text)
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _alertmanager_config(tmp: Path, *, receiver_url: str) -> Path:
    text = _rewrite((DEPLOY / "alertmanager.yml").read_text(), {"http://alert-receiver:9095": receiver_url})
    config = yaml.safe_load(text)
    config["route"].update(group_wait="1s", group_interval=f"{GROUP_INTERVAL_SECONDS}s")
    path = tmp / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _budget(directory: Path, budget_id: str, tenant: str, amount: str) -> None:
    document = {
        "id": budget_id,
        "tenant": tenant,
        "period": "monthly",
        "amount": amount,
        "currency": "USD",
        "thresholds": [0.8],
        "forecast": False,
        "labels": {"team": "e2e"},
    }
    (directory / f"{budget_id}.yaml").write_text(yaml.safe_dump(document))


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    _require_binaries()
    ports = {name: free_port() for name in ("costguard", "alertmanager", "blackbox", "prometheus")}
    loopback = {name: f"127.0.0.1:{port}" for name, port in ports.items()}
    with ExitStack() as stack, http_receiver() as receiver:
        database_url = stack.enter_context(throwaway_database("costguard_e2e"))
        env = {
            "COSTGUARD_DATABASE_URL": database_url,
            "COSTGUARD_HOST": "127.0.0.1",
            "COSTGUARD_PORT": str(ports["costguard"]),
            "COSTGUARD_EXTERNAL_URL": f"http://{loopback['costguard']}",
            "COSTGUARD_EVALUATION_INTERVAL_SECONDS": "1",
            "COSTGUARD_ALERT_RESEND_INTERVAL_SECONDS": str(RESEND_SECONDS),
            "COSTGUARD_ALERT_RETRY_INITIAL_SECONDS": "0.5",
            "COSTGUARD_ALERT_RETRY_MAX_SECONDS": "1",
            "COSTGUARD_ALERTMANAGER_URLS": f"http://{loopback['alertmanager']}",
        }
        full_env = {**os.environ, **env}
        costguard = str(VENV_BIN / "costguard")
        budgets = tmp_path / "budgets"
        budgets.mkdir()
        _budget(budgets, "acme-e2e", "acme", "100")
        _budget(budgets, "globex-e2e", "globex", "10")
        for args in (["migrate"], ["budgets", "apply", str(budgets)]):
            subprocess.run([costguard, *args], env=full_env, cwd=tmp_path, check=True, capture_output=True)
        created = subprocess.run(
            [costguard, "tokens", "create", "--role", "admin"],
            env=full_env,
            cwd=tmp_path,
            check=True,
            capture_output=True,
            text=True,
        )
        token = created.stdout.strip().splitlines()[-1]

        alertmanager_config = _alertmanager_config(tmp_path, receiver_url=receiver.url)
        am_storage = tmp_path / "alertmanager"
        am_process = ExitStack()
        stack.callback(am_process.close)

        def start_alertmanager() -> None:
            am_process.enter_context(
                process(
                    [
                        BINARIES["alertmanager"],
                        f"--config.file={alertmanager_config}",
                        f"--storage.path={am_storage}",
                        f"--web.listen-address={loopback['alertmanager']}",
                        "--cluster.listen-address=",
                    ],
                    log=tmp_path / f"alertmanager-{time.monotonic_ns()}.log",
                )
            )
            wait_http(f"http://{loopback['alertmanager']}/-/ready")

        start_alertmanager()
        stack.enter_context(
            process(
                [
                    BINARIES["blackbox"],
                    f"--config.file={DEPLOY / 'blackbox.yml'}",
                    f"--web.listen-address={loopback['blackbox']}",
                ],
                log=tmp_path / "blackbox.log",
            )
        )
        stack.enter_context(process([costguard, "serve"], env=env, cwd=tmp_path, log=tmp_path / "serve.log"))
        wait_http(f"http://{loopback['costguard']}/readyz")
        prometheus_config = _prometheus_config(
            tmp_path,
            costguard=loopback["costguard"],
            alertmanager=loopback["alertmanager"],
            blackbox=loopback["blackbox"],
        )
        stack.enter_context(
            process(
                [
                    BINARIES["prometheus"],
                    f"--config.file={prometheus_config}",
                    f"--storage.tsdb.path={tmp_path / 'prometheus'}",
                    f"--web.listen-address={loopback['prometheus']}",
                ],
                log=tmp_path / "prometheus.log",
            )
        )
        wait_http(f"http://{loopback['prometheus']}/-/ready")
        yield Stack(
            tmp=tmp_path,
            receiver=receiver,
            costguard_url=f"http://{loopback['costguard']}",
            alertmanager_url=f"http://{loopback['alertmanager']}",
            prometheus_url=f"http://{loopback['prometheus']}",
            token=token,
            start_alertmanager=start_alertmanager,
            stop_alertmanager=am_process.close,
        )


def _usage_time() -> datetime:
    """Seven hours ago when that is still this month (outside the burn-rate windows), else now."""
    now = datetime.now(UTC)
    earlier = now - timedelta(hours=7)
    return earlier if earlier.month == now.month else now


def test_approaching_then_exceeded_reach_the_receiver_once_with_approaching_inhibited(stack: Stack):
    at = _usage_time()
    stack.post_usage("acme", "e2e-1", "85", at)  # 85 %
    wait_until("CostBudgetApproaching at the receiver", lambda: stack.notifications("acme"))
    stack.post_usage("acme", "e2e-2", "20", at)  # 105 %
    wait_until("CostBudgetExceeded at the receiver", lambda: len(stack.notifications("acme")) >= 2)

    def inhibited_approaching() -> list[dict[str, Any]]:
        alerts = httpx.get(
            f"{stack.alertmanager_url}/api/v2/alerts", params={"active": "true", "inhibited": "true"}
        ).json()
        return [
            a
            for a in alerts
            if a["labels"]["alertname"] == "CostBudgetApproaching"
            and a["labels"]["budget"] == "acme-e2e"
            and a["status"]["inhibitedBy"]
        ]

    [approaching] = wait_until("Approaching inhibited in Alertmanager", inhibited_approaching)
    assert approaching["status"]["state"] == "suppressed"

    [utilization] = wait_until(
        "the utilization ratio in Prometheus",
        lambda: [
            r for r in stack.query('costguard_budget_utilization_ratio{budget="acme-e2e"}') if float(r["value"][1]) >= 1
        ],
    )
    assert float(utilization["value"][1]) == pytest.approx(1.05)
    assert utilization["metric"]["tenant"] == "acme" and utilization["metric"]["team"] == "e2e"

    def successful_probes() -> list[dict[str, Any]]:
        found = stack.query('probe_success{job="costguard-probe"} == 1')
        return found if len(found) == 2 else []

    probes = wait_until("both blackbox probes succeeding", successful_probes)
    assert {p["metric"]["instance"].rsplit("/", 1)[1] for p in probes} == {"healthz", "readyz"}

    def evaluated_rule_groups() -> list[dict[str, Any]]:
        groups = httpx.get(f"{stack.prometheus_url}/api/v1/rules").json()["data"]["groups"]
        return groups if all(rule["health"] != "unknown" for g in groups for rule in g["rules"]) else []

    groups = wait_until("the rule file evaluated by Prometheus", evaluated_rule_groups)
    assert {g["file"] for g in groups} == {str(DEPLOY / "rules" / "costguard.rules.yml")}
    assert [(r["name"], r["lastError"]) for g in groups for r in g["rules"] if r["health"] != "ok"] == []

    # Several group intervals and resends later nothing else has arrived: no repeat, no resolve.
    time.sleep(3 * max(GROUP_INTERVAL_SECONDS, RESEND_SECONDS))
    assert stack.notifications("acme") == [
        ("/acme-finops", "firing", "CostBudgetApproaching"),
        ("/acme-finops-page", "firing", "CostBudgetExceeded"),
    ]
    for request in stack.receiver.requests:
        for alert in request.json()["alerts"]:
            if alert["labels"].get("tenant") == "acme":
                assert alert["annotations"]["runbook_url"].endswith(f"/runbooks/{alert['labels']['alertname']}")
                assert alert["generatorURL"] == f"{stack.costguard_url}/budgets/acme-e2e"


def test_an_alert_that_fires_while_alertmanager_is_down_arrives_once_and_never_resolves(stack: Stack):
    stack.stop_alertmanager()
    stack.post_usage("globex", "e2e-outage", "10.5", _usage_time())  # 105 %

    def failed_attempts() -> int:
        exceeded = [a for a in stack.costguard_alerts() if a["alertname"] == "CostBudgetExceeded"]
        if not exceeded or exceeded[0]["status"] != "firing":
            return 0
        [delivery] = exceeded[0]["deliveries"]
        assert delivery["status"] == "pending"
        return int(delivery["attempts"])

    # Down for several resend intervals: at least four failed attempts, one per cycle after backoff.
    outage_started = time.monotonic()
    wait_until("four failed delivery attempts", lambda: failed_attempts() >= 4)
    time.sleep(max(0.0, 3 * RESEND_SECONDS - (time.monotonic() - outage_started)))
    assert stack.notifications("globex") == []

    stack.start_alertmanager()
    wait_until("CostBudgetExceeded at the receiver after the restart", lambda: stack.notifications("globex"))
    time.sleep(3 * max(GROUP_INTERVAL_SECONDS, RESEND_SECONDS))
    received = stack.notifications("globex")
    assert received.count(("/finops-page", "firing", "CostBudgetExceeded")) == 1
    assert [n for n in received if n[1] != "firing"] == []
    assert len(received) == len(set(received))
    [exceeded] = [a for a in stack.costguard_alerts() if a["alertname"] == "CostBudgetExceeded"]
    assert exceeded["status"] == "firing" and exceeded["deliveries"][0]["status"] == "delivered"
    active = httpx.get(f"{stack.alertmanager_url}/api/v2/alerts", params={"active": "true"}).json()
    [in_alertmanager] = [a for a in active if a["labels"]["alertname"] == "CostBudgetExceeded"]
    assert in_alertmanager["status"]["state"] == "active"
    assert datetime.fromisoformat(in_alertmanager["endsAt"]) > datetime.now(UTC)
