"""Ingest benchmark: raw binary COPY vs ``costguard ingest`` vs ``POST /v1/usage``, same PostgreSQL, same run.

Generates N usage records as JSON Lines, then in a throwaway database measures
1. raw binary COPY of the same rows (pre-encoded) into a table indexed exactly like usage_records,
   and once more without its BRIN index on batch_id (which costguard's COPY path needs),
2. ``costguard ingest FILE`` as a separate process (its peak RSS is reported too),
3. ``POST /v1/usage`` in 1,000-record NDJSON batches from 2 concurrent clients against a real
   ``costguard serve`` on a loopback port,
and prints records/s for each and the ratio to raw COPY. Usage:

    make bench-ingest                 # N = 1,000,000
    make bench-ingest N=100000        # smaller
    .venv/bin/python bench/ingest.py --records 100000
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg

from costguard.schema import upgrade_to_head
from costguard.usage.schemas import parse_usage
from costguard.usage.staging import COLUMNS, TYPES

ADMIN_URL = os.environ.get("COSTGUARD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
BIN = Path(sys.executable).parent
TENANTS = [f"tenant-{i:02d}" for i in range(20)]
PIPELINES = ["summarize", "chat", "extract", "classify", None]
MODELS = ["gpt-4o", "gpt-4o-mini", "claude-sonnet", "llama-70b", None]


def generate(path: Path, n: int, seed: int = 7) -> None:
    """N records over a month: 20 tenants, 5 pipelines, 5 models, per-request costs with up to 10 places."""
    rng = random.Random(seed)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    with path.open("w") as out:
        for i in range(n):
            at = (start + timedelta(seconds=i * 2.5 + rng.random())).isoformat().replace("+00:00", "Z")
            pipeline, model = rng.choice(PIPELINES), rng.choice(MODELS)
            tokens_in, tokens_out = rng.randint(10, 8000), rng.randint(1, 2000)
            cost = f"0.{rng.randint(1, 99_999_999):010d}"
            out.write(
                f'{{"event_id": "req-{i:09d}", "timestamp": "{at}", "tenant": "{rng.choice(TENANTS)}", '
                f'"pipeline": {"null" if pipeline is None else chr(34) + pipeline + chr(34)}, '
                f'"model": {"null" if model is None else chr(34) + model + chr(34)}, "cost": "{cost}", '
                f'"currency": "USD", "kind": "usage", '
                f'"attributes": {{"input_tokens": {tokens_in}, "output_tokens": {tokens_out}}}}}\n'
            )


def encode_copy_payload(conn: psycopg.Connection, source: Path, target: Path) -> None:
    """Untimed: the same rows as COPY BINARY bytes (via an unindexed scratch table), for the raw baseline."""
    import json
    from decimal import Decimal

    now = datetime.now(UTC)
    with conn.cursor() as cur:
        cur.execute("CREATE UNLOGGED TABLE raw_scratch (LIKE usage_records)")
        columns = f"{COLUMNS}, ingested_at"
        with cur.copy(f"COPY raw_scratch ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types([*TYPES[:8], "jsonb", "text", "timestamptz"])
            with source.open() as lines:
                for line in lines:
                    r = parse_usage(json.loads(line, parse_float=Decimal), currency="USD")
                    copy.write_row(
                        (
                            r.tenant,
                            r.event_id,
                            r.timestamp,
                            r.pipeline,
                            r.model,
                            r.cost,
                            r.currency,
                            r.kind,
                            r.attributes,
                            r.content_hash,
                            now,
                        )
                    )
        with target.open("wb") as out, cur.copy(f"COPY raw_scratch ({columns}) TO STDOUT (FORMAT BINARY)") as copy:
            for block in copy:
                out.write(block)
        cur.execute("DROP TABLE raw_scratch")
    conn.commit()


def raw_copy(url: str, payload: Path, *, table: str = "raw_usage", without: str | None = None) -> float:
    """Timed: stream the pre-encoded rows into an identically indexed table (less ``without``) and commit."""
    with psycopg.connect(url) as conn:
        conn.execute(f"CREATE TABLE {table} (LIKE usage_records INCLUDING ALL)")
        if without is not None:
            [name] = conn.execute(
                "SELECT indexname FROM pg_indexes WHERE tablename = %s AND indexdef LIKE %s", (table, f"%{without}%")
            ).fetchone() or [None]
            conn.execute(f"DROP INDEX {name}")
        conn.commit()
        conn.execute("CHECKPOINT")
        started = time.perf_counter()
        statement = f"COPY {table} ({COLUMNS}, ingested_at) FROM STDIN (FORMAT BINARY)"
        with conn.cursor() as cur, cur.copy(statement) as copy, payload.open("rb") as data:
            while block := data.read(1 << 20):
                copy.write(block)
        conn.commit()
        return time.perf_counter() - started


def file_ingest(sa_url: str, path: Path) -> tuple[float, int, str]:
    """Timed: ``costguard ingest FILE`` as its own process; returns seconds, peak RSS (KiB) and its summary."""
    env = {**os.environ, "COSTGUARD_DATABASE_URL": sa_url}
    started = time.perf_counter()
    proc = subprocess.Popen(
        [str(BIN / "costguard"), "ingest", str(path)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    out = proc.stdout.read().decode()
    err = proc.stderr.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"costguard ingest failed ({proc.returncode}): {err}")
    return elapsed, usage.ru_maxrss, out.strip().splitlines()[-1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def batches(path: Path, size: int) -> Iterator[bytes]:
    with path.open("rb") as lines:
        chunk: list[bytes] = []
        for line in lines:
            chunk.append(line)
            if len(chunk) == size:
                yield b"".join(chunk)
                chunk = []
        if chunk:
            yield b"".join(chunk)


def http_ingest(sa_url: str, path: Path, *, batch: int, clients: int, web_workers: int, log: Path) -> float:
    """Timed: POST every batch once, from ``clients`` threads, to a real ``costguard serve`` process."""
    port = free_port()
    env = {
        **os.environ,
        "COSTGUARD_DATABASE_URL": sa_url,
        "COSTGUARD_PORT": str(port),
        "COSTGUARD_HOST": "127.0.0.1",
        "COSTGUARD_WEB_WORKERS": str(web_workers),
    }
    created = subprocess.run(
        [str(BIN / "costguard"), "tokens", "create", "--role", "ingest", "--name", "bench"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    secret = created.stdout.strip().splitlines()[-1]
    with log.open("wb") as log_file:
        server = subprocess.Popen(
            [str(BIN / "costguard"), "serve", "--no-scheduler"],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit(f"costguard serve did not start; see {log}")
                time.sleep(0.2)
            source = batches(path, batch)
            lock = threading.Lock()
            failures: list[str] = []
            headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/x-ndjson"}

            def client() -> None:
                with httpx.Client(base_url=base, headers=headers, timeout=120) as http:
                    while True:
                        with lock:
                            body = next(source, None)
                        if body is None or failures:
                            return
                        # One connection per batch, as independent senders behind a load balancer:
                        # two long-lived connections sometimes both land on one of the server's
                        # processes (it accepts them), which halved the throughput of some runs.
                        response = http.post("/v1/usage", content=body, headers={"Connection": "close"})
                        if response.status_code != 200:
                            failures.append(f"{response.status_code} {response.text[:300]}")

            threads = [threading.Thread(target=client) for _ in range(clients)]
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.perf_counter() - started
            if failures:
                raise SystemExit(f"HTTP ingest failed: {failures[0]}")
            return elapsed
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()


def count(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM usage_records").fetchone()
        return int(row[0]) if row else 0


def checkpoint(url: str) -> None:
    """Untimed: write out the dirty pages of the previous step, so that no step pays for another's."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=int(os.environ.get("N", 1_000_000)))
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--web-workers", type=int, default=2, help="COSTGUARD_WEB_WORKERS of the server")
    args = parser.parse_args()
    n = args.records
    name = f"costguard_bench_{uuid.uuid4().hex[:8]}"
    base = ADMIN_URL.rsplit("/", 1)[0]
    url = f"{base}/{name}"
    sa_url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        with tempfile.TemporaryDirectory(prefix="costguard-bench-") as tmp:
            work = Path(tmp)
            data, payload = work / "usage.jsonl", work / "usage.copy"
            print(f"generating {n:,} records ...", flush=True)
            generate(data, n)
            upgrade_to_head(sa_url)
            with psycopg.connect(url) as conn:
                encode_copy_payload(conn, data, payload)
            size = data.stat().st_size
            print(f"data: {size / 2**20:,.0f} MiB JSON Lines, {payload.stat().st_size / 2**20:,.0f} MiB COPY binary")

            copy_s = raw_copy(url, payload)
            # The same without the BRIN index on batch_id, which only costguard's design needs:
            # the ratios against this one show what that index costs the comparison.
            bare_s = raw_copy(url, payload, table="raw_usage_bare", without="USING brin")
            checkpoint(url)
            file_s, rss_kib, line = file_ingest(sa_url, data)
            assert count(url) == n, "file ingest did not store every record"
            with psycopg.connect(url) as conn:
                conn.execute("TRUNCATE usage_records, usage_rollup_pending, usage_batches")
            checkpoint(url)
            http_s = http_ingest(
                sa_url,
                data,
                batch=args.batch,
                clients=args.clients,
                web_workers=args.web_workers,
                log=work / "serve.log",
            )
            assert count(url) == n, "HTTP ingest did not store every record"

            rates = {
                "raw COPY (binary, indexed)": n / copy_s,
                "raw COPY, without the batch_id BRIN index": n / bare_s,
                "costguard ingest FILE": n / file_s,
                f"POST /v1/usage ({args.batch}/batch, {args.clients} clients)": n / http_s,
            }
            seconds = [copy_s, bare_s, file_s, http_s]
            raw, bare = rates["raw COPY (binary, indexed)"], rates["raw COPY, without the batch_id BRIN index"]
            print(f"\n{'method':<44}{'seconds':>10}{'records/s':>14}{'vs COPY':>10}{'vs COPY w/o BRIN':>18}")
            for (label, rate), secs in zip(rates.items(), seconds, strict=True):
                print(f"{label:<44}{secs:>10.2f}{rate:>14,.0f}{rate / raw:>10.2f}{rate / bare:>18.2f}")
            print(f"\ncostguard ingest: peak RSS {rss_kib / 1024:,.0f} MiB; its summary: {line}")
            print("targets: file >= 0.70 x COPY, HTTP >= 0.30 x COPY, peak RSS < 300 MiB")
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
