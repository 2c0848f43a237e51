"""`costguard serve` with several worker processes answers like one, and still evaluates once per cycle."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx

from tests.helpers.processes import VENV_BIN, free_port, process, wait_http

ROOT = Path(__file__).resolve().parents[2]


def test_serve_with_two_worker_processes(tmp_path):
    costguard = str(VENV_BIN / "costguard")
    port = free_port()
    env = {"COSTGUARD_PORT": str(port), "COSTGUARD_EVALUATION_INTERVAL_SECONDS": "1", "COSTGUARD_WEB_WORKERS": "2"}
    subprocess.run(
        [costguard, "budgets", "apply", str(ROOT / "budgets")],
        cwd=tmp_path,
        env={**os.environ, **env},
        check=True,
        capture_output=True,
    )
    created = subprocess.run(
        [costguard, "tokens", "create", "--role", "admin"],
        cwd=tmp_path,
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        text=True,
    )
    secret = created.stdout.strip().splitlines()[-1]
    base = f"http://127.0.0.1:{port}"
    with process([costguard, "serve"], env=env, cwd=tmp_path, log=tmp_path / "serve.log"):
        wait_http(f"{base}/readyz", timeout=60)
        headers = {"Authorization": f"Bearer {secret}"}
        batch = [
            {"event_id": f"w{i}", "timestamp": "2026-12-04T10:00:00Z", "tenant": "acme", "cost": "1"} for i in range(50)
        ]
        answers = [httpx.post(f"{base}/v1/usage", json=batch, headers=headers, timeout=30).json() for _ in range(4)]
        assert answers[0] == {"accepted": 50, "duplicates": 0}
        assert all(a == {"accepted": 0, "duplicates": 50} for a in answers[1:])
        log = (tmp_path / "serve.log").read_text()
        assert log.count("Started server process") >= 2, log[-2000:]
