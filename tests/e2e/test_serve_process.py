"""`costguard serve` as a real process on the embedded default, as `make run` starts it."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx

from tests.helpers.processes import VENV_BIN, free_port, process, wait_http

ROOT = Path(__file__).resolve().parents[2]


def test_serve_on_a_fresh_folder_prints_a_token_and_evaluates(tmp_path):
    costguard = str(VENV_BIN / "costguard")
    env = {"COSTGUARD_PORT": str(free_port()), "COSTGUARD_EVALUATION_INTERVAL_SECONDS": "1"}
    subprocess.run(
        [costguard, "budgets", "apply", str(ROOT / "budgets")],
        cwd=tmp_path,
        env={**os.environ, **env},
        check=True,
        capture_output=True,
    )
    subprocess.run([costguard, "demo"], cwd=tmp_path, check=True, capture_output=True)
    log = tmp_path / "serve.log"
    base = f"http://127.0.0.1:{env['COSTGUARD_PORT']}"
    with process([costguard, "serve"], env=env, cwd=tmp_path, log=log):
        wait_http(f"{base}/healthz")
        wait_http(f"{base}/readyz", timeout=30)
        deadline = time.monotonic() + 10
        while "admin token" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        lines = log.read_text().splitlines()
        token = lines[lines.index(next(line for line in lines if "admin token" in line)) + 1].strip()
        statuses = httpx.get(f"{base}/v1/status", headers={"Authorization": f"Bearer {token}"}).json()
        assert {s["state"] for s in statuses} >= {"ok", "approaching", "exceeded"}
        metrics = httpx.get(f"{base}/metrics").text
        assert "costguard_budget_utilization_ratio{" in metrics
        assert httpx.get(f"{base}/v1/status").status_code == 401
