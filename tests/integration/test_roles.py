"""Every role and tenant binding against every endpoint, table-driven."""

from __future__ import annotations

import pytest

from costguard.auth.service import revoke_token
from costguard.db import transaction, utcnow
from tests.helpers.app import add_budget, make_api, token, usage

ACME = {"id": "acme-b", "tenant": "acme", "amount": "10"}
GLOBEX = {"id": "globex-b", "tenant": "globex", "amount": "10"}

# (method, path, body) -> the status each caller gets.
ENDPOINTS = {
    "post_usage": ("POST", "/v1/usage", [usage("e1", "1", tenant="acme")]),
    "post_usage_globex": ("POST", "/v1/usage", [usage("e2", "1", tenant="globex")]),
    "list_budgets": ("GET", "/v1/budgets", None),
    "get_acme": ("GET", "/v1/budgets/acme-b", None),
    "get_globex": ("GET", "/v1/budgets/globex-b", None),
    "create_acme": ("POST", "/v1/budgets", {"id": "acme-new", "tenant": "acme", "amount": "5"}),
    "create_globex": ("POST", "/v1/budgets", {"id": "globex-new", "tenant": "globex", "amount": "5"}),
    "put_acme": ("PUT", "/v1/budgets/acme-b", {**ACME, "amount": "11"}),
    "delete_globex": ("DELETE", "/v1/budgets/globex-b", None),
    "history": ("GET", "/v1/budgets/acme-b/history", None),
    "audit": ("GET", "/v1/audit", None),
    "status": ("GET", "/v1/status", None),
    "status_globex": ("GET", "/v1/status?tenant=globex", None),
    "alerts": ("GET", "/v1/alerts", None),
    "metrics": ("GET", "/metrics", None),
    "healthz": ("GET", "/healthz", None),
    "runbook": ("GET", "/runbooks/CostBudgetExceeded", None),
}
OPEN = {"metrics": 200, "healthz": 200, "runbook": 200}
READS = {
    "list_budgets": 200,
    "get_acme": 200,
    "get_globex": 200,
    "history": 200,
    "audit": 200,
    "status": 200,
    "status_globex": 200,
    "alerts": 200,
}
WRITES = {"create_acme": 201, "create_globex": 201, "put_acme": 200, "delete_globex": 204}
INGEST = {"post_usage": 200, "post_usage_globex": 200}


def expected(caller: str) -> dict[str, int]:
    denied_writes = dict.fromkeys(WRITES, 403)
    denied_reads = dict.fromkeys(READS, 403)
    denied_ingest = dict.fromkeys(INGEST, 403)
    table = {
        "none": {**dict.fromkeys(READS, 401), **dict.fromkeys(WRITES, 401), **dict.fromkeys(INGEST, 401)},
        "revoked": {**dict.fromkeys(READS, 401), **dict.fromkeys(WRITES, 401), **dict.fromkeys(INGEST, 401)},
        "admin": {**READS, **WRITES, **INGEST},
        "finance": {**READS, **WRITES, **denied_ingest},
        "viewer": {**READS, **denied_writes, **denied_ingest},
        "ingest": {**denied_reads, **denied_writes, **INGEST},
        "acme-finance": {
            **READS,
            "get_globex": 404,
            "status_globex": 403,
            **WRITES,
            "create_globex": 403,
            "delete_globex": 404,
            **denied_ingest,
        },
        "acme-ingest": {**denied_reads, **denied_writes, "post_usage": 200, "post_usage_globex": 403},
    }
    return {**OPEN, **table[caller]}


@pytest.mark.parametrize(
    "caller", ["none", "revoked", "admin", "finance", "viewer", "ingest", "acme-finance", "acme-ingest"]
)
def test_every_role_and_binding_against_every_endpoint(db, caller):
    api = make_api(db)
    add_budget(db, ACME)
    add_budget(db, GLOBEX)
    secrets = {
        "admin": api.tokens["admin"],
        "finance": api.tokens["finance"],
        "viewer": api.tokens["viewer"],
        "ingest": api.tokens["ingest"],
        "acme-finance": token(db, "finance", tenant="acme"),
        "acme-ingest": token(db, "ingest", tenant="acme"),
        "revoked": token(db, "admin", name="old"),
    }
    if caller == "revoked":
        from costguard.auth.service import list_tokens

        with transaction(db.factory) as session:
            old = next(t for t in list_tokens(session) if t.name == "old")
            revoke_token(session, old.id, now=utcnow())
    got = {}
    for name, (method, path, body) in ENDPOINTS.items():
        headers = {} if caller == "none" else {"Authorization": f"Bearer {secrets[caller]}"}
        if method in ("PUT", "DELETE"):
            budget_id = path.rsplit("/", 1)[1]
            etag = api.client.get(f"/v1/budgets/{budget_id}", headers=api.headers("admin")).headers.get("etag", "")
            headers["If-Match"] = etag
        got[name] = api.client.request(method, path, json=body, headers=headers).status_code
    assert got == expected(caller)


def test_tenant_bound_reader_sees_only_its_tenant(db):
    api = make_api(db)
    add_budget(db, ACME)
    add_budget(db, GLOBEX)
    add_budget(db, {"id": "every", "tenant": "*", "amount": "10"})
    api.post_usage([usage("a", "1", tenant="acme"), usage("g", "1", tenant="globex")], role="admin")
    from datetime import UTC, datetime

    from costguard.evaluation.jobs import run_evaluation_cycle

    run_evaluation_cycle(db.factory, api.settings, at=datetime(2026, 12, 4, tzinfo=UTC))
    secret = token(db, "viewer", tenant="acme")
    headers = {"Authorization": f"Bearer {secret}"}
    assert {b["id"] for b in api.client.get("/v1/budgets", headers=headers).json()} == {"acme-b", "every"}
    assert {s["tenant"] for s in api.client.get("/v1/status", headers=headers).json()} == {"acme"}
    audit = api.client.get("/v1/audit", headers=headers).json()
    assert {a["budget"] for a in audit} == {"acme-b", "every"}


def test_template_budget_has_one_status_per_tenant(db):
    from datetime import UTC, datetime

    from costguard.evaluation.jobs import run_evaluation_cycle

    api = make_api(db)
    add_budget(db, {"id": "every", "tenant": "*", "amount": "10", "model": "gpt-4o"})
    api.post_usage(
        [
            usage("a", "9", tenant="acme", model="gpt-4o"),
            usage("g", "2", tenant="globex", model="gpt-4o"),
            usage("x", "50", tenant="globex", model="other"),
        ]
    )
    run_evaluation_cycle(db.factory, api.settings, at=datetime(2026, 12, 4, tzinfo=UTC))
    statuses = api.client.get("/v1/status", headers=api.headers("viewer")).json()
    assert [(s["tenant"], s["spend"], s["state"]) for s in statuses] == [
        ("acme", "9", "approaching"),
        ("globex", "2", "ok"),
    ]
